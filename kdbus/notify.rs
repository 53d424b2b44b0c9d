// SPDX-License-Identifier: GPL-2.0

//! Kernel notifications of a bus (spec: message.md 11-12, names.md 7):
//! ID_ADD, ID_REMOVE, NAME_ADD, NAME_REMOVE and NAME_CHANGE are queued on
//! the bus while the operation that causes them holds the registry lock,
//! in generation order (each with its sequence number), and delivered
//! after it: whoever flushes takes every queued one, in order, under the
//! bus's flush lock, so every receiver sees them in bus order.
//!
//! Delivery: every monitor, and every ordinary connection whose match
//! entries accept the notification (kernel rules, match.md 4). A receiver
//! that cannot take it has its lost-message counter incremented.

use crate::bus::Bus;
use crate::delivery::copy_to_monitors;
use crate::glue::gfp;
use crate::message::Kmsg;
use crate::proto::matching::Subject;

impl Bus {
    /// Queues a broadcast notification for the next flush; lost if it
    /// cannot be queued for lack of memory.
    pub(crate) fn queue_notification(&self, k: Kmsg) {
        let _ = self.notifications.lock().push(k, gfp());
    }

    /// Delivers every queued notification, in order. Call with no kdbus
    /// lock held.
    pub(crate) fn flush_notifications(&self) {
        let _order = self.flush.lock();
        loop {
            let batch = core::mem::take(&mut *self.notifications.lock());
            if batch.is_empty() {
                break;
            }
            for k in batch.iter() {
                self.deliver_notification(k);
            }
        }
    }

    fn deliver_notification(&self, k: &Kmsg) {
        let _ = copy_to_monitors(self, k, None);
        let Some((ty, payload)) = k.kernel_item() else {
            return;
        };
        let subject = Subject::Kernel { ty, payload };
        let mut next = 0;
        while let Some(c) = self.conn_after(next) {
            next = c.id;
            if !c.is_ordinary() || !c.matches(&subject, |_| false) {
                continue;
            }
            // NAME_*: only for who may see the name (policy.md 5.5).
            if let Some(name) = notified_name(ty, payload) {
                if !c.may_see_name(&c.cred, name) {
                    continue;
                }
            }
            if c.queue(k, None, None, 0).is_err() {
                c.count_lost();
            }
        }
    }
}

/// The name of a NAME_ADD, NAME_REMOVE or NAME_CHANGE payload.
fn notified_name(ty: u32, payload: &[u8]) -> Option<&[u8]> {
    match ty {
        crate::uapi::KDBUS_ITEM_NAME_ADD
        | crate::uapi::KDBUS_ITEM_NAME_REMOVE
        | crate::uapi::KDBUS_ITEM_NAME_CHANGE => {
            let n = payload.get(32..)?;
            Some(n.strip_suffix(&[0]).unwrap_or(n))
        }
        _ => None,
    }
}
