// SPDX-License-Identifier: GPL-2.0

//! Endpoints (spec: endpoint.md): the files connections are made through:
//! the default endpoint `bus`, and custom endpoints made by the bus owner
//! (ENDPOINT_MAKE), each with a policy database of its own
//! (ENDPOINT_UPDATE) that applies, besides the bus's, to every connection
//! made through it.

use crate::bus::Bus;
use crate::connection::Connection;
use crate::fs::Node;
use crate::glue::cred::UserNamespace;
use crate::glue::cred::{Kgid, Kuid};
use crate::glue::gfp;
use crate::glue::stats::{Kind, Live};
use crate::policy::PolicyDb;
use crate::proto::cmd::Cmd;
use crate::proto::errno::{Result, EINVAL, ESHUTDOWN};
use crate::proto::policy::UploadRules;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};

struct EndpointInner {
    active: bool,
    /// The endpoint file, once published; removed when dropped.
    node: Option<Node>,
    /// Connections made through this endpoint, by id.
    conns: RBTree<u64, Arc<Connection>>,
}

/// An endpoint of a bus.
#[pin_data]
pub(crate) struct Endpoint {
    pub(crate) bus: Arc<Bus>,
    /// Id of a custom endpoint, from the domain's endpoint counter (names
    /// its anonymous accounting user); 0 for the default endpoint.
    pub(crate) id: u64,
    /// The file name (`bus`, or `<uid>-<name>`).
    name: KVec<u8>,
    /// The bus's default endpoint (`bus`), as opposed to a custom one.
    pub(crate) is_default: bool,
    /// `KDBUS_MAKE_ACCESS_*` flags of the endpoint.
    pub(crate) flags: u64,
    /// Owner of the endpoint file.
    pub(crate) uid: Kuid,
    pub(crate) gid: Kgid,
    #[pin]
    inner: Mutex<EndpointInner>,
    /// The endpoint's policy database (custom endpoints only).
    #[pin]
    policy: Mutex<PolicyDb>,
    _live: Live,
}

impl Endpoint {
    /// A new, active endpoint of `bus`.
    pub(crate) fn new(
        bus: Arc<Bus>,
        is_default: bool,
        name: &[u8],
        flags: u64,
        uid: Kuid,
        gid: Kgid,
    ) -> Result<Arc<Self>> {
        let mut n = KVec::with_capacity(name.len(), gfp())?;
        n.extend_from_slice(name, gfp())?;
        // Custom endpoints are counted apart: bus and connection ids come
        // from one counter and no endpoint may take a number from it.
        let id = if is_default {
            0
        } else {
            bus.domain.next_endpoint_id()
        };
        Ok(Arc::pin_init(
            pin_init!(Endpoint {
                bus,
                id,
                name: n,
                is_default,
                flags,
                uid,
                gid,
                inner <- kernel::new_mutex!(EndpointInner {
                    active: true,
                    node: None,
                    conns: RBTree::new(),
                }, "kdbus_endpoint"),
                policy <- kernel::new_mutex!(PolicyDb::new(), "kdbus_endpoint_policy"),
                _live: Live::new(Kind::Endpoint),
            }),
            gfp(),
        )?)
    }

    /// The file name.
    pub(crate) fn name(&self) -> &[u8] {
        &self.name
    }

    /// The mode of the endpoint file.
    pub(crate) fn file_mode(&self) -> u16 {
        crate::bus::node_mode(self.flags, 0o600)
    }

    /// The endpoint's policy database; `None` for the default endpoint,
    /// which has none.
    pub(crate) fn policy(&self) -> Option<&Mutex<PolicyDb>> {
        match self.is_default {
            true => None,
            false => Some(&self.policy),
        }
    }

    /// KDBUS_CMD_ENDPOINT_UPDATE (endpoint.md 3): replaces the policy
    /// database as one step; ids in `ns`, the caller's user namespace.
    pub(crate) fn update_policy(&self, c: &Cmd<'_>, ns: &UserNamespace) -> Result {
        if !self.is_active() {
            return Err(ESHUTDOWN);
        }
        let how = UploadRules {
            wildcards: true,
            max_names: None,
            too_many: EINVAL,
        };
        let entries = PolicyDb::build(|| c.items(), how, ns, 0)?;
        let old = self.policy.lock().replace(0, entries)?;
        drop(old);
        Ok(())
    }

    /// Whether the endpoint is still usable.
    pub(crate) fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// Keeps the published file node; `ESHUTDOWN` (and the node is removed)
    /// if the endpoint was torn down meanwhile.
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

    /// Links a connection made through this endpoint (called by the bus,
    /// under its lock, with a node allocated beforehand).
    pub(crate) fn link(
        &self,
        node: RBTreeNodeReservation<u64, Arc<Connection>>,
        conn: &Arc<Connection>,
    ) -> Result {
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        g.conns.insert(node.into_node(conn.id, conn.clone()));
        Ok(())
    }

    /// Unlinks a disconnected connection; the caller drops the reference
    /// outside its locks.
    pub(crate) fn unlink(&self, conn: &Connection) -> Option<Arc<Connection>> {
        self.inner.lock().conns.remove(&conn.id)
    }

    /// Tears the endpoint down: its file is removed and every connection
    /// made through it is disconnected. Idempotent.
    pub(crate) fn deactivate(&self) {
        let (conns, node) = {
            let mut g = self.inner.lock();
            g.active = false;
            (
                core::mem::replace(&mut g.conns, RBTree::new()),
                g.node.take(),
            )
        };
        for c in conns.values() {
            c.disconnect();
        }
        drop(conns);
        drop(node);
        if !self.is_default {
            self.bus.unlink_endpoint(self);
        }
    }
}
