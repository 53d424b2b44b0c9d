// SPDX-License-Identifier: GPL-2.0

//! Connections (spec: connection.md): HELLO, BYEBYE and disconnect.

use crate::bindings;
use crate::cmd::{self, Cmd};
use crate::cred::Creds;
use crate::domain::Charge;
use crate::endpoint::Endpoint;
use crate::errno::{Result, EBUSY, ECONNRESET, EINVAL, EOPNOTSUPP, EPERM};
use crate::names;
use crate::pool::Pool;
use crate::uapi::*;
use crate::wait::WaitQueue;
use core::mem::offset_of;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

const SPECIAL: u64 =
    (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER | KDBUS_HELLO_MONITOR) as u64;

struct ConnInner {
    active: bool,
    attach_send: u64,
    attach_recv: u64,
}

/// A peer on a bus.
#[pin_data]
pub(crate) struct Connection {
    pub(crate) ep: Arc<Endpoint>,
    /// Unique id, from the domain's counter.
    pub(crate) id: u64,
    /// HELLO flags.
    pub(crate) flags: u64,
    pub(crate) pool: Pool,
    /// The user this connection is charged to (global kuid value).
    charged_uid: u32,
    #[pin]
    inner: Mutex<ConnInner>,
    /// Pollers and blocked senders.
    #[pin]
    pub(crate) wait: WaitQueue,
}

/// What HELLO hands back to userspace.
pub(crate) struct HelloReply {
    pub(crate) conn: Arc<Connection>,
    pub(crate) offset: u64,
    pub(crate) items_size: u64,
}

impl Connection {
    /// KDBUS_CMD_HELLO on `ep` (connection.md 3.2), after generic parsing.
    ///
    /// # Safety
    ///
    /// `file` is the live file the handle was opened as.
    pub(crate) unsafe fn hello(
        ep: &Arc<Endpoint>,
        file: *mut bindings::file,
        c: &Cmd<'_>,
    ) -> Result<HelloReply> {
        let flags = c.flags;
        let pool_size = c.field(offset_of!(kdbus_cmd_hello, pool_size));
        let page = kernel::page::PAGE_SIZE as u64;
        if pool_size == 0 || pool_size % page != 0 {
            return Err(EINVAL);
        }
        if (flags & SPECIAL).count_ones() > 1 {
            return Err(EINVAL);
        }
        let special_named = flags & (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER) as u64;
        let name = c.item(KDBUS_ITEM_NAME);
        match (&name, special_named != 0) {
            (Some(_), false) | (None, true) => return Err(EINVAL),
            (Some(n), true) => {
                if !names::is_valid_well_known(n.str_bytes(), true) {
                    return Err(EINVAL);
                }
            }
            (None, false) => {}
        }
        if flags & KDBUS_HELLO_MONITOR as u64 != 0 && !ep.is_default {
            return Err(EOPNOTSUPP);
        }

        let bus = &ep.bus;
        let domain = &bus.domain;
        // SAFETY: `file` is live (contract).
        let fcreds = unsafe { Creds::of_file(file) };
        // SAFETY: `file` is live (contract).
        let privileged = ep.is_default && unsafe { domain.user_ns.file_capable_ipc_owner(file) };
        let owner = ep.is_default && (fcreds.euid.val == bus.uid.val || privileged);
        if !owner && flags & SPECIAL != 0 {
            return Err(EPERM);
        }
        let faked = [KDBUS_ITEM_CREDS, KDBUS_ITEM_PIDS, KDBUS_ITEM_SECLABEL];
        if !owner && faked.iter().any(|&t| c.item(t).is_some()) {
            return Err(EPERM);
        }
        let attach_send =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_send)))?;
        let attach_recv =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_recv)))?;
        // Activators and policy holders need the name registry and the
        // policy database, which do not exist yet.
        if special_named != 0 {
            return Err(EOPNOTSUPP);
        }

        let id = domain.next_id();
        let pool = Pool::new(pool_size)?;
        let charged_uid = fcreds.uid.val;
        domain.charge(charged_uid, Charge::Conn)?;
        let conn = Arc::pin_init(
            pin_init!(Connection {
                ep: ep.clone(),
                id,
                flags,
                pool,
                charged_uid,
                inner <- kernel::new_mutex!(ConnInner {
                    active: true,
                    attach_send,
                    attach_recv,
                }, "kdbus_conn"),
                wait <- WaitQueue::new(),
            }),
            GFP_KERNEL,
        );
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                domain.uncharge(charged_uid, Charge::Conn);
                return Err(e.into());
            }
        };

        // The HELLO slice: one BLOOM_PARAMETER item (connection.md 3.4).
        let mut item = [0u8; 32];
        for (i, v) in [
            32,
            KDBUS_ITEM_BLOOM_PARAMETER as u64,
            bus.bloom.size,
            bus.bloom.n_hash,
        ]
        .iter()
        .enumerate()
        {
            item[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        let published = conn.pool.publish_result(&item);
        let (offset, _) = match published {
            Ok(p) => p,
            Err(e) => {
                domain.uncharge(charged_uid, Charge::Conn);
                return Err(e);
            }
        };
        if let Err(e) = ep.link(&conn) {
            domain.uncharge(charged_uid, Charge::Conn);
            conn.inner.lock().active = false;
            return Err(e);
        }
        Ok(HelloReply {
            conn,
            offset,
            items_size: item.len() as u64,
        })
    }

    /// Whether the connection has not been disconnected.
    pub(crate) fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// Fails with `ECONNRESET` once disconnected.
    pub(crate) fn check_active(&self) -> Result {
        if self.is_active() {
            Ok(())
        } else {
            Err(ECONNRESET)
        }
    }

    fn is_ordinary(&self) -> bool {
        self.flags & SPECIAL == 0
    }

    /// KDBUS_CMD_BYEBYE (connection.md 9.1).
    pub(crate) fn byebye(&self) -> Result {
        if !self.is_ordinary() {
            return Err(EOPNOTSUPP);
        }
        let queued = 0usize;
        {
            let mut g = self.inner.lock();
            if !g.active {
                return Err(ECONNRESET);
            }
            if queued != 0 {
                return Err(EBUSY);
            }
            g.active = false;
        }
        self.finish_disconnect();
        Ok(())
    }

    /// Disconnects (close, endpoint or bus teardown). Idempotent.
    pub(crate) fn disconnect(&self) {
        {
            let mut g = self.inner.lock();
            if !g.active {
                return;
            }
            g.active = false;
        }
        self.finish_disconnect();
    }

    fn finish_disconnect(&self) {
        self.wait.wake_up_all();
        self.ep.unlink(self);
        self.ep.bus.domain.uncharge(self.charged_uid, Charge::Conn);
    }

    /// KDBUS_CMD_FREE (pool.md 5).
    pub(crate) fn free(&self, offset: u64) -> Result {
        if self.flags & KDBUS_HELLO_POLICY_HOLDER as u64 != 0 {
            return Err(EOPNOTSUPP);
        }
        if offset == self.pool.size() {
            return Ok(());
        }
        self.pool.free_user(offset)
    }

    /// The attach masks `(send, recv)`.
    #[allow(dead_code)]
    pub(crate) fn attach_flags(&self) -> (u64, u64) {
        let g = self.inner.lock();
        (g.attach_send, g.attach_recv)
    }
}
