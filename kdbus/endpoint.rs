// SPDX-License-Identifier: GPL-2.0

//! Endpoints (spec: endpoint.md): the files connections are made through.
//! Only the default endpoint `bus` exists so far.

use crate::bus::Bus;
use crate::connection::Connection;
use crate::fs::Node;
use crate::glue::cred::{Kgid, Kuid};
use crate::glue::gfp;
use crate::glue::stats::{Kind, Live};
use crate::proto::errno::{Result, ESHUTDOWN};
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
    /// The bus's default endpoint (`bus`), as opposed to a custom one.
    pub(crate) is_default: bool,
    /// `KDBUS_MAKE_ACCESS_*` flags of the endpoint.
    pub(crate) flags: u64,
    /// Owner of the endpoint file.
    pub(crate) uid: Kuid,
    pub(crate) gid: Kgid,
    #[pin]
    inner: Mutex<EndpointInner>,
    _live: Live,
}

impl Endpoint {
    /// A new, active endpoint of `bus`.
    pub(crate) fn new(
        bus: Arc<Bus>,
        is_default: bool,
        flags: u64,
        uid: Kuid,
        gid: Kgid,
    ) -> Result<Arc<Self>> {
        Ok(Arc::pin_init(
            pin_init!(Endpoint {
                bus,
                is_default,
                flags,
                uid,
                gid,
                inner <- kernel::new_mutex!(EndpointInner {
                    active: true,
                    node: None,
                    conns: RBTree::new(),
                }, "kdbus_endpoint"),
                _live: Live::new(Kind::Endpoint),
            }),
            gfp(),
        )?)
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
    }
}
