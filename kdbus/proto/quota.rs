// SPDX-License-Identifier: GPL-2.0

//! Receive quotas (spec: message.md 13). Pure.

use crate::proto::errno::{Result, EMFILE, ENOBUFS};
use crate::proto::limits::{CONN_MAX_FDS_PER_USER, CONN_MAX_MSGS};

/// The accounting user of kernel notifications.
pub const KERNEL_USER: u32 = u32::MAX;

/// What one sending user has queued at one receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserQuota {
    /// Accounting user (global kuid value, or [`KERNEL_USER`]).
    pub uid: u32,
    /// Bytes of queued slices.
    pub bytes: u64,
    /// Queued messages.
    pub msgs: u32,
    /// Queued file descriptors.
    pub fds: u32,
}

impl UserQuota {
    /// Checks whether a message of slice size `size` with `fds` descriptors
    /// may be queued, for a receiver whose pool has `pool` bytes of which
    /// `accounted` are held by queued messages.
    pub fn check(&self, pool: u64, accounted: u64, size: u64, fds: u32) -> Result {
        let avail = pool / 2;
        if avail < accounted {
            return Err(ENOBUFS);
        }
        let share = (avail - accounted + self.bytes) / 3;
        if share < self.bytes || share - self.bytes < size {
            return Err(ENOBUFS);
        }
        if self.bytes.saturating_add(size) > u32::MAX as u64 {
            return Err(ENOBUFS);
        }
        if self.msgs >= CONN_MAX_MSGS {
            return Err(ENOBUFS);
        }
        if self.fds as usize + fds as usize > CONN_MAX_FDS_PER_USER {
            return Err(EMFILE);
        }
        Ok(())
    }

    /// Charges a queued message.
    pub fn charge(&mut self, size: u64, fds: u32) {
        self.bytes += size;
        self.msgs += 1;
        self.fds += fds;
    }

    /// Releases a message's charge.
    pub fn uncharge(&mut self, size: u64, fds: u32) {
        self.bytes = self.bytes.saturating_sub(size);
        self.msgs = self.msgs.saturating_sub(1);
        self.fds = self.fds.saturating_sub(fds);
    }

    /// Nothing is charged any more.
    pub fn is_empty(&self) -> bool {
        self.msgs == 0 && self.bytes == 0 && self.fds == 0
    }
}
