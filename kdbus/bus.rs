// SPDX-License-Identifier: GPL-2.0

//! Buses (spec: bus.md): KDBUS_CMD_BUS_MAKE and bus teardown.

use crate::bindings;
use crate::bloom::BloomParams;
use crate::cmd::{self, Cmd};
use crate::connection::Connection;
use crate::cred::Creds;
use crate::domain::{Charge, Domain};
use crate::endpoint::Endpoint;
use crate::errno::{Result, EINVAL};
use crate::fs::{self, NodeDentry};
use crate::kvec::remove_arc;
use crate::names;
use crate::uapi::*;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

struct BusInner {
    active: bool,
    /// The bus directory, once created.
    dir: Option<NodeDentry>,
    endpoints: KVec<Arc<Endpoint>>,
    /// Connected peers (all types), by id order of arrival.
    conns: KVec<Arc<Connection>>,
    /// Last message sequence number handed out.
    last_seq: u64,
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
    /// Creator's effective uid and gid: owners of the bus nodes.
    pub(crate) uid: bindings::kuid_t,
    pub(crate) gid: bindings::kgid_t,
    /// Real uid the bus is charged to.
    charged_uid: u32,
    name: KVec<u8>,
    #[pin]
    inner: Mutex<BusInner>,
}

/// Mode bits for a bus directory or endpoint file made with `flags`.
pub(crate) fn node_mode(flags: u64, base: u16) -> u16 {
    // base is 0o500 (dir) or 0o600 (file); group/world copy its bits.
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

    /// KDBUS_CMD_BUS_MAKE in `domain` (bus.md 2), after generic parsing.
    pub(crate) fn make(domain: &Arc<Domain>, c: &Cmd<'_>) -> Result<Arc<Bus>> {
        let name = c.item(KDBUS_ITEM_MAKE_NAME).ok_or(EINVAL)?.str_bytes();
        let bloom_item = c.item(KDBUS_ITEM_BLOOM_PARAMETER).ok_or(EINVAL)?;
        let bloom = BloomParams::new(bloom_item.u64_at(0), bloom_item.u64_at(8))?;
        let attach_owner = match c.item(KDBUS_ITEM_ATTACH_FLAGS_SEND) {
            Some(i) => cmd::sanitize_attach(i.u64())?,
            None => 0,
        };
        let creds = Creds::current();
        let uid = domain.user_ns.map_uid(creds.euid).ok_or(EINVAL)?;
        names::check_uid_prefix(name, uid)?;

        let mut id128 = [0u8; 16];
        // SAFETY: `id128` is a writable buffer of 16 bytes.
        unsafe { bindings::get_random_bytes(id128.as_mut_ptr().cast(), 16) };
        id128[6] = (id128[6] & 0x0f) | 0x40;
        id128[8] = (id128[8] & 0x3f) | 0x80;
        let mut name_buf = KVec::with_capacity(name.len(), GFP_KERNEL)?;
        name_buf.extend_from_slice(name, GFP_KERNEL)?;

        let bus = Arc::pin_init(
            pin_init!(Bus {
                domain: domain.clone(),
                id: domain.next_id(),
                id128,
                flags: c.flags,
                bloom,
                attach_owner,
                uid: creds.euid,
                gid: creds.egid,
                charged_uid: creds.uid.val,
                name: name_buf,
                inner <- kernel::new_mutex!(BusInner {
                    active: true,
                    dir: None,
                    endpoints: KVec::new(),
                    conns: KVec::new(),
                    last_seq: 0,
                }, "kdbus_bus"),
            }),
            GFP_KERNEL,
        )?;
        domain.link_bus(&bus)?;
        if let Err(e) = domain.charge(bus.charged_uid, Charge::Bus) {
            domain.unlink_bus(&bus);
            return Err(e);
        }
        if let Err(e) = bus.activate() {
            bus.deactivate();
            return Err(e);
        }
        Ok(bus)
    }

    /// Creates the bus directory and its default endpoint `bus`.
    fn activate(self: &Arc<Self>) -> Result {
        let dir = fs::create_dir(
            &self.domain,
            &self.name,
            node_mode(self.flags, 0o500),
            self.uid,
            self.gid,
        )?;
        let parent = dir.as_ptr();
        {
            let mut g = self.inner.lock();
            if !g.active {
                drop(g);
                fs::remove_tree(dir);
                return Err(crate::errno::ESHUTDOWN);
            }
            g.dir = Some(dir);
        }
        let ep = Endpoint::new(self.clone(), true, self.flags, self.uid, self.gid)?;
        {
            let mut g = self.inner.lock();
            if !g.active {
                return Err(crate::errno::ESHUTDOWN);
            }
            g.endpoints.push(ep.clone(), GFP_KERNEL)?;
        }
        fs::create_endpoint_file(
            parent,
            b"bus",
            node_mode(self.flags, 0o600),
            self.uid,
            self.gid,
            ep,
        )?;
        Ok(())
    }

    /// The next message sequence number (message.md 11).
    pub(crate) fn next_seq(&self) -> u64 {
        let mut g = self.inner.lock();
        g.last_seq += 1;
        g.last_seq
    }

    /// Makes a connection findable by id; `ESHUTDOWN` once torn down.
    pub(crate) fn link_conn(&self, conn: &Arc<Connection>) -> Result {
        let mut g = self.inner.lock();
        if !g.active {
            return Err(crate::errno::ESHUTDOWN);
        }
        g.conns.push(conn.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Removes a disconnected connection from the bus.
    pub(crate) fn unlink_conn(&self, conn: &Connection) {
        let gone = remove_arc(&mut self.inner.lock().conns, conn);
        drop(gone);
    }

    /// The connection with unique id `id`.
    pub(crate) fn find_conn(&self, id: u64) -> Option<Arc<Connection>> {
        self.inner.lock().conns.iter().find(|c| c.id == id).cloned()
    }

    /// A snapshot of the connected peers, to work on without the bus lock.
    pub(crate) fn conns(&self) -> Result<KVec<Arc<Connection>>> {
        let g = self.inner.lock();
        let mut v = KVec::with_capacity(g.conns.len(), GFP_KERNEL)?;
        for c in g.conns.iter() {
            v.push(c.clone(), GFP_KERNEL)?;
        }
        Ok(v)
    }

    /// A snapshot of the monitors (empty if it cannot be allocated).
    pub(crate) fn monitors(&self) -> KVec<Arc<Connection>> {
        let g = self.inner.lock();
        let mut v = KVec::new();
        for c in g.conns.iter().filter(|c| c.is_monitor()) {
            if v.push(c.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        v
    }

    /// Tears the bus down (fs.md 5): endpoints and their connections first,
    /// then the directory; then the name is freed. Idempotent.
    pub(crate) fn deactivate(&self) {
        let (dir, endpoints) = {
            let mut g = self.inner.lock();
            if !g.active {
                return;
            }
            g.active = false;
            (g.dir.take(), core::mem::take(&mut g.endpoints))
        };
        for ep in endpoints.iter() {
            ep.deactivate();
        }
        drop(endpoints);
        if let Some(dir) = dir {
            fs::remove_tree(dir);
        }
        self.domain.uncharge(self.charged_uid, Charge::Bus);
        self.domain.unlink_bus(self);
    }
}
