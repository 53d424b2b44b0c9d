// SPDX-License-Identifier: GPL-2.0

//! Endpoints (spec: endpoint.md): the files connections are made through.
//! Only the default endpoint `bus` exists so far.

use crate::bindings;
use crate::bus::Bus;
use crate::connection::Connection;
use crate::errno::{Result, ESHUTDOWN};
use crate::kvec::remove_arc;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

struct EndpointInner {
    active: bool,
    conns: KVec<Arc<Connection>>,
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
    pub(crate) uid: bindings::kuid_t,
    pub(crate) gid: bindings::kgid_t,
    #[pin]
    inner: Mutex<EndpointInner>,
}

impl Endpoint {
    /// A new, active endpoint of `bus`.
    pub(crate) fn new(
        bus: Arc<Bus>,
        is_default: bool,
        flags: u64,
        uid: bindings::kuid_t,
        gid: bindings::kgid_t,
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
                    conns: KVec::new(),
                }, "kdbus_endpoint"),
            }),
            GFP_KERNEL,
        )?)
    }

    /// Whether the endpoint is still usable.
    pub(crate) fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// Links a connection made through this endpoint.
    pub(crate) fn link(&self, conn: &Arc<Connection>) -> Result {
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        g.conns.push(conn.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Unlinks a disconnected connection.
    pub(crate) fn unlink(&self, conn: &Connection) {
        let gone = remove_arc(&mut self.inner.lock().conns, conn);
        drop(gone);
    }

    /// Tears the endpoint down: every connection made through it is
    /// disconnected. Idempotent.
    pub(crate) fn deactivate(&self) {
        let conns = {
            let mut g = self.inner.lock();
            g.active = false;
            core::mem::take(&mut g.conns)
        };
        for c in conns.iter() {
            c.disconnect();
        }
    }
}
