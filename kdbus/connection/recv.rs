// SPDX-License-Identifier: GPL-2.0

//! Receiving (spec: message.md 10, pool.md 5): RECV with PEEK, DROP and
//! priorities, the lost-message counter, FREE, and what poll reports.

use super::Connection;
use crate::proto::errno::{Result, EAGAIN};
use crate::queue::Published;
use crate::uapi::*;
use kernel::sync::Arc;

impl Connection {
    /// KDBUS_CMD_RECV. Returns the result and the lost-message count, which
    /// is reported (and reset) also when the queue has nothing to return.
    pub(crate) fn recv(
        self: &Arc<Self>,
        flags: u64,
        max_priority: i64,
    ) -> (Result<Published>, u64) {
        let drop_msg = flags & KDBUS_RECV_DROP as u64 != 0;
        let peek = flags & KDBUS_RECV_PEEK as u64 != 0 && !drop_msg;
        let use_prio = flags & KDBUS_RECV_USE_PRIORITY as u64 != 0;
        // Monitors without ACCEPT_FD get -1 and no descriptors (message.md
        // 10.5, the spec's recommendation); others only on a real receive.
        let install = !peek && (self.accepts_fds() || !self.is_monitor());
        let mut g = self.inner.lock();
        let mut gone = None;
        let result = match g.queue.select(use_prio, max_priority) {
            None => Err(EAGAIN),
            Some(key) if drop_msg => {
                gone = g.queue.remove(key);
                Ok(Published::empty(&self.pool))
            }
            Some(key) => match g.queue.get(key) {
                None => Err(EAGAIN),
                Some(p) if peek => p.peek().map(|()| Published {
                    offset: p.offset,
                    size: p.size,
                    return_flags: 0,
                }),
                // Descriptors first: if that fails, the message stays queued.
                Some(p) => match p.install_fds(install) {
                    Err(e) => Err(e),
                    Ok(return_flags) => {
                        let out = Published {
                            offset: p.offset,
                            size: p.size,
                            return_flags,
                        };
                        if let Some(node) = g.queue.remove(key) {
                            let (_, placed) = node.to_key_value();
                            placed.hand_over();
                        }
                        Ok(out)
                    }
                },
            },
        };
        let lost = if matches!(result, Ok(_) | Err(EAGAIN)) {
            core::mem::take(&mut g.lost)
        } else {
            0
        };
        drop(g);
        // A dropped call will never be answered (message.md 10.3).
        if let Some(node) = gone {
            let (_, mut placed) = node.to_key_value();
            let call = placed.reply.take();
            drop(placed);
            if let Some(r) = call {
                if let Some(caller) = self.ep.bus.find_conn(r.caller_id) {
                    caller.resolve_dead(&r);
                }
            }
        }
        (result, lost)
    }

    /// Whether a message or a lost-message count is waiting (POLLIN).
    pub(crate) fn has_input(&self) -> bool {
        let g = self.inner.lock();
        !g.queue.is_empty() || g.lost != 0
    }

    /// KDBUS_CMD_FREE (pool.md 5).
    pub(crate) fn free(&self, offset: u64) -> Result {
        if offset == self.pool.size() {
            return Ok(());
        }
        self.pool.free_user(offset)
    }
}
