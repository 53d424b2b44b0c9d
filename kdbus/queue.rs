// SPDX-License-Identifier: GPL-2.0

//! Queue entries: a message placed in a receiver's pool (spec: message.md
//! 7.3, 10). The queue itself is a `KVec<Entry>` in the connection's inner
//! state, in arrival order.

use crate::errno::Result;
use crate::file::{FdSlot, FileRef};
use crate::pool::Pool;
use crate::reply::Reply;
use crate::uapi::KDBUS_RECV_RETURN_INCOMPLETE_FDS;
use kernel::prelude::*;
use kernel::sync::Arc;

/// One message in a receiver's pool.
pub(crate) struct Entry {
    /// Slice offset and size in the receiver's pool.
    pub(crate) offset: u64,
    pub(crate) size: u64,
    /// Message priority (lower is more urgent).
    pub(crate) priority: i64,
    /// The slice counts against the receive quota of `quota_uid`.
    pub(crate) accounted: bool,
    pub(crate) quota_uid: u32,
    /// FDs (not memfds) the message carries, for the quota.
    pub(crate) nfds: u32,
    /// Files to install at RECV, each with the pool offset of its `int`.
    pub(crate) files: KVec<(FileRef, u64)>,
    /// The tracker of a call, to resolve if the receiver drops it.
    pub(crate) reply: Option<Arc<Reply>>,
}

/// The result of installing an entry's descriptors.
pub(crate) struct Installed {
    /// Some descriptor could not be allocated (its entry reads -1).
    pub(crate) incomplete: bool,
}

impl Installed {
    /// The `kdbus_msg_info.return_flags` this result calls for.
    pub(crate) fn return_flags(&self) -> u64 {
        if self.incomplete {
            KDBUS_RECV_RETURN_INCOMPLETE_FDS as u64
        } else {
            0
        }
    }
}

impl Entry {
    /// Writes -1 into every descriptor field (PEEK, and before RECV).
    pub(crate) fn blank_fds(&self, pool: &Pool) -> Result {
        for (_, slot) in self.files.iter() {
            pool.write(*slot, &(-1i32).to_ne_bytes())?;
        }
        Ok(())
    }

    /// Gives every file a new descriptor in the calling process and writes
    /// the numbers into the pool (message.md 10.5). Descriptors become
    /// visible only after every number was written.
    pub(crate) fn install_fds(&self, pool: &Pool) -> Result<Installed> {
        let mut slots = KVec::with_capacity(self.files.len(), GFP_KERNEL)?;
        let mut incomplete = false;
        for (_, slot) in self.files.iter() {
            let fd = match FdSlot::reserve() {
                Ok(s) => {
                    let n = s.fd();
                    slots.push(Some(s), GFP_KERNEL)?;
                    n
                }
                Err(_) => {
                    incomplete = true;
                    slots.push(None, GFP_KERNEL)?;
                    -1
                }
            };
            pool.write(*slot, &fd.to_ne_bytes())?;
        }
        for ((file, _), slot) in self.files.iter().zip(slots.into_iter()) {
            if let Some(s) = slot {
                s.install(file.clone_ref());
            }
        }
        Ok(Installed { incomplete })
    }
}
