// SPDX-License-Identifier: GPL-2.0

//! Buses (spec: bus.md): KDBUS_CMD_BUS_MAKE, the bus's connections, and bus
//! teardown.

use crate::connection::Connection;
use crate::domain::{Account, AccountKind, Domain};
use crate::endpoint::Endpoint;
use crate::fs::Node;
use crate::glue::cred::{Credential, Kgid, Kuid};
use crate::glue::gfp;
use crate::glue::hash::HashKey;
use crate::glue::random;
use crate::glue::stats::{Kind, Live};
use crate::message::Kmsg;
use crate::metadata::ProcMeta;
use crate::names::Registry;
use crate::policy::PolicyDb;
use crate::proto::bloom::BloomParams;
use crate::proto::cmd::{self, Cmd};
use crate::proto::errno::{Result, EINVAL, ESHUTDOWN};
use crate::proto::names;
use crate::uapi::*;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};

struct BusInner {
    active: bool,
    /// The bus directory, once published; removed when dropped.
    node: Option<Node>,
    /// The charge of the bus to its creator, given back at teardown.
    account: Option<Account>,
    /// The default endpoint first, then custom ones.
    endpoints: KVec<Arc<Endpoint>>,
    /// Connected peers (all types) by id.
    conns: RBTree<u64, Arc<Connection>>,
    /// The monitors among them, by id.
    monitors: RBTree<u64, Arc<Connection>>,
}

/// A bus: a name registry, bloom parameters and endpoints, alive as long as
/// the file descriptor that made it.
#[pin_data]
pub(crate) struct Bus {
    pub(crate) domain: Arc<Domain>,
    /// Bus id, from the domain's counter.
    pub(crate) id: u64,
    /// Random version-4 UUID.
    pub(crate) id128: [u8; 16],
    /// BUS_MAKE flags (`KDBUS_MAKE_ACCESS_*`).
    pub(crate) flags: u64,
    pub(crate) bloom: BloomParams,
    /// Creator metadata connections may query (ATTACH_FLAGS_SEND of BUS_MAKE).
    pub(crate) attach_owner: u64,
    /// The creator's process metadata, taken at BUS_MAKE (bus.md 3).
    pub(crate) creator: ProcMeta,
    /// Creator's effective uid and gid: owners of the bus nodes.
    pub(crate) uid: Kuid,
    pub(crate) gid: Kgid,
    name: KVec<u8>,
    /// Last message sequence number handed out (message.md 11).
    last_seq: AtomicU64,
    /// The name registry.
    #[pin]
    pub(crate) registry: Mutex<Registry>,
    /// The bus policy database (policy holders' and activators' entries).
    #[pin]
    pub(crate) policy: Mutex<PolicyDb>,
    /// The key of the registry's hash table.
    pub(crate) name_key: HashKey,
    /// Broadcast notifications queued in generation order, for the next
    /// flush (`notify.rs`).
    #[pin]
    pub(crate) notifications: Mutex<KVec<Kmsg>>,
    /// Serialises flushes, so notifications reach receivers in order.
    #[pin]
    pub(crate) flush: Mutex<()>,
    #[pin]
    inner: Mutex<BusInner>,
    _live: Live,
}

/// Mode bits for a bus directory or endpoint file made with `flags`: `base`
/// (0o500 or 0o600), copied to group and world as the access flags say.
pub(crate) fn node_mode(flags: u64, base: u16) -> u16 {
    let mut mode = base;
    if flags & (KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD) as u64 != 0 {
        mode |= base >> 3;
    }
    if flags & KDBUS_MAKE_ACCESS_WORLD as u64 != 0 {
        mode |= base >> 6;
    }
    mode
}

impl Bus {
    /// The bus name, `<uid>-<name>`, without NUL.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// The mode of the bus directory.
    pub(crate) fn dir_mode(&self) -> u16 {
        node_mode(self.flags, 0o500)
    }

    /// The mode of the default endpoint file.
    pub(crate) fn file_mode(&self) -> u16 {
        node_mode(self.flags, 0o600)
    }

    /// KDBUS_CMD_BUS_MAKE in `domain` by a task with `cred` (bus.md 2),
    /// after generic parsing. The bus and its default endpoint exist but are
    /// not published yet (`fs::publish_bus`).
    pub(crate) fn make(domain: &Arc<Domain>, cred: &Credential, c: &Cmd<'_>) -> Result<Arc<Bus>> {
        let name = c.item(KDBUS_ITEM_MAKE_NAME).ok_or(EINVAL)?.str_bytes();
        let bloom_item = c.item(KDBUS_ITEM_BLOOM_PARAMETER).ok_or(EINVAL)?;
        let bloom = BloomParams::new(bloom_item.u64_at(0), bloom_item.u64_at(8))?;
        let attach_owner = match c.item(KDBUS_ITEM_ATTACH_FLAGS_SEND) {
            Some(i) => cmd::sanitize_attach(i.u64())?,
            None => 0,
        };
        let uid = domain.user_ns.map_uid(cred.euid()).ok_or(EINVAL)?;
        names::check_uid_prefix(name, uid)?;
        // Step 7: the creator snapshot, before any lock is taken (it reads
        // the task's memory).
        let creator = ProcMeta::snapshot(cred)?;

        let mut id128 = [0u8; 16];
        random::fill(&mut id128);
        id128[6] = (id128[6] & 0x0f) | 0x40;
        id128[8] = (id128[8] & 0x3f) | 0x80;
        let mut name_buf = KVec::with_capacity(name.len(), gfp())?;
        name_buf.extend_from_slice(name, gfp())?;
        let mut endpoints = KVec::new();
        endpoints.reserve(1, gfp())?;

        let bus = Arc::pin_init(
            pin_init!(Bus {
                domain: domain.clone(),
                id: domain.next_id(),
                id128,
                flags: c.flags,
                bloom,
                attach_owner,
                creator,
                uid: cred.euid(),
                gid: cred.egid(),
                name: name_buf,
                last_seq: AtomicU64::new(0),
                registry <- kernel::new_mutex!(Registry::new(), "kdbus_bus_registry"),
                policy <- kernel::new_mutex!(PolicyDb::new(), "kdbus_bus_policy"),
                name_key: HashKey::random(),
                notifications <- kernel::new_mutex!(KVec::new(), "kdbus_bus_notifications"),
                flush <- kernel::new_mutex!((), "kdbus_bus_flush"),
                inner <- kernel::new_mutex!(BusInner {
                    active: true,
                    node: None,
                    account: None,
                    endpoints,
                    conns: RBTree::new(),
                    monitors: RBTree::new(),
                }, "kdbus_bus"),
                _live: Live::new(Kind::Bus),
            }),
            gfp(),
        )?;
        let ep = Endpoint::new(bus.clone(), true, b"bus", bus.flags, bus.uid, bus.gid)?;
        // Capacity was reserved above.
        let _ = bus.inner.lock().endpoints.push(ep, gfp());
        // The name first (EEXIST), then the creator's bus count (EMFILE).
        let charged = domain.link_bus(&bus).and_then(|()| {
            domain.charge(crate::domain::user_account(cred.uid()), AccountKind::Bus)
        });
        match charged {
            Ok(account) => bus.inner.lock().account = Some(account),
            Err(e) => {
                bus.deactivate();
                return Err(e);
            }
        }
        Ok(bus)
    }

    /// The default endpoint, while the bus is up.
    pub(crate) fn default_endpoint(&self) -> Option<Arc<Endpoint>> {
        let g = self.inner.lock();
        if !g.active {
            return None;
        }
        g.endpoints.first().cloned()
    }

    /// The bus directory, while the bus is up.
    pub(crate) fn dir(&self) -> Option<crate::fs::Dir> {
        let g = self.inner.lock();
        if !g.active {
            return None;
        }
        g.node.as_ref().map(|n| n.dir().clone())
    }

    /// KDBUS_CMD_ENDPOINT_MAKE's object (endpoint.md 2 steps 3-5): a custom
    /// endpoint named `name` (prefix checked), owned by `cred`'s euid and
    /// egid; `EEXIST` if the name is taken, `ESHUTDOWN` if the bus is gone.
    /// Published by `fs::publish_endpoint`.
    pub(crate) fn make_endpoint(
        self: &Arc<Self>,
        name: &[u8],
        flags: u64,
        cred: &Credential,
    ) -> Result<Arc<Endpoint>> {
        let ep = Endpoint::new(self.clone(), false, name, flags, cred.euid(), cred.egid())?;
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        if g.endpoints.iter().any(|e| e.name() == name) {
            return Err(crate::proto::errno::EEXIST);
        }
        g.endpoints.push(ep.clone(), gfp())?;
        Ok(ep)
    }

    /// Forgets a torn-down custom endpoint.
    pub(crate) fn unlink_endpoint(&self, ep: &Endpoint) {
        let gone = {
            let mut g = self.inner.lock();
            let i = g.endpoints.iter().position(|e| core::ptr::eq(&**e, ep));
            i.and_then(|i| crate::glue::kvec::remove(&mut g.endpoints, i))
        };
        drop(gone);
    }

    /// Keeps the published directory node; `ESHUTDOWN` (and the node is
    /// removed) if the bus was torn down meanwhile.
    pub(crate) fn set_node(&self, node: Node) -> Result {
        let mut g = self.inner.lock();
        if !g.active {
            drop(g);
            drop(node);
            return Err(ESHUTDOWN);
        }
        g.node = Some(node);
        Ok(())
    }

    /// The next message sequence number (message.md 11).
    pub(crate) fn next_seq(&self) -> u64 {
        self.last_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Makes a connection findable by id, and links it into its endpoint, in
    /// one step: `ESHUTDOWN` if either was torn down. Nodes are allocated
    /// before the locks are taken.
    pub(crate) fn link_conn(&self, conn: &Arc<Connection>) -> Result {
        let by_id = RBTreeNodeReservation::new(gfp())?;
        let monitor = match conn.is_monitor() {
            true => Some(RBTreeNodeReservation::new(gfp())?),
            false => None,
        };
        let in_ep = RBTreeNodeReservation::new(gfp())?;
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        conn.ep.link(in_ep, conn)?;
        g.conns.insert(by_id.into_node(conn.id, conn.clone()));
        if let Some(m) = monitor {
            g.monitors.insert(m.into_node(conn.id, conn.clone()));
        }
        Ok(())
    }

    /// Removes a disconnected connection from the bus and its endpoint.
    pub(crate) fn unlink_conn(&self, conn: &Connection) {
        let (a, b, c) = {
            let mut g = self.inner.lock();
            let a = g.conns.remove(&conn.id);
            let b = g.monitors.remove(&conn.id);
            (a, b, conn.ep.unlink(conn))
        };
        // The last references may go here: dropped outside the locks.
        drop((a, b, c));
    }

    fn next_in(tree: &mut RBTree<u64, Arc<Connection>>, after: u64) -> Option<Arc<Connection>> {
        let key = after.checked_add(1)?;
        let cursor = tree.cursor_lower_bound(&key)?;
        Some(cursor.current().1.clone())
    }

    /// The connection with unique id `id`.
    pub(crate) fn find_conn(&self, id: u64) -> Option<Arc<Connection>> {
        self.inner.lock().conns.get(&id).cloned()
    }

    /// The connection with the smallest id above `after`: iterating with it
    /// visits every connection that stays linked, holding no lock between
    /// steps and allocating nothing.
    pub(crate) fn conn_after(&self, after: u64) -> Option<Arc<Connection>> {
        Self::next_in(&mut self.inner.lock().conns, after)
    }

    /// The monitor with the smallest id above `after` (as [`Bus::conn_after`]).
    pub(crate) fn monitor_after(&self, after: u64) -> Option<Arc<Connection>> {
        Self::next_in(&mut self.inner.lock().monitors, after)
    }

    /// Tears the bus down (fs.md 5): endpoints and their connections first,
    /// then the directory; then the name is freed. Idempotent.
    pub(crate) fn deactivate(&self) {
        let (node, endpoints, account) = {
            let mut g = self.inner.lock();
            if !g.active {
                return;
            }
            g.active = false;
            (
                g.node.take(),
                core::mem::take(&mut g.endpoints),
                g.account.take(),
            )
        };
        for ep in endpoints.iter() {
            ep.deactivate();
        }
        drop(endpoints);
        drop(node);
        drop(account);
        self.domain.unlink_bus(self);
    }
}
