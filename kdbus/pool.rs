// SPDX-License-Identifier: GPL-2.0

//! The receive pool of a connection (spec: pool.md; quotas: message.md 13):
//! a shmem file the kernel writes into and its owner maps read-only, its
//! slice allocator, and the receive quotas of the users that queue messages
//! into it. Allocator and quotas sit behind one lock, so a quota check and
//! the allocation it allows are one step.

use crate::glue::gfp;
use crate::glue::shmem::{Patch, ShmemFile, Writer};
use crate::glue::stats::{Kind, Live};
use crate::glue::vma::VmaNew;
use crate::proto::errno::{Result, EFAULT, EPERM};
use crate::proto::quota::UserQuota;
use crate::proto::slices::{Allocator, Slice};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};

/// A receive-quota charge: what one queued message counts against the
/// quota of its sending user.
#[derive(Clone, Copy)]
pub(crate) struct Charge {
    /// The sending accounting user.
    pub(crate) uid: crate::domain::AccountId,
    /// Slice size.
    pub(crate) size: u64,
    /// FDs (memfds excluded).
    pub(crate) nfds: u32,
}

struct PoolInner {
    slices: Allocator<KVVec<Slice>>,
    /// Receive quota per sending user; a user's entry goes when it is empty.
    quotas: RBTree<crate::domain::AccountId, UserQuota>,
}

/// A connection's receive pool.
#[pin_data]
pub(crate) struct Pool {
    file: ShmemFile,
    #[pin]
    inner: Mutex<PoolInner>,
    _live: Live,
}

impl Pool {
    /// A pool of `size` bytes (non-zero, page aligned: checked by HELLO).
    pub(crate) fn new(size: u64) -> Result<Arc<Self>> {
        let slices = Allocator::new(size, KVVec::new())?;
        let file = ShmemFile::new(size)?;
        Ok(Arc::pin_init(
            pin_init!(Pool {
                file,
                inner <- kernel::new_mutex!(PoolInner { slices, quotas: RBTree::new() }, "kdbus_pool"),
                _live: Live::new(Kind::Pool),
            }),
            gfp(),
        )?)
    }

    /// The pool size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.file.size()
    }

    /// Allocates a slice of `size` bytes (rounded up to 8) held by the
    /// kernel. With a `charge`, the receive quota of its user is checked
    /// first (message.md 13: `ENOBUFS`, `EMFILE`) and charged, and the slice
    /// counts as accounted. Returns the offset and the slice size.
    pub(crate) fn alloc(&self, size: u64, charge: Option<Charge>) -> Result<(u64, u64)> {
        // A user's first charge needs a tree node: allocated before locking.
        let node = match charge {
            Some(_) => Some(RBTreeNodeReservation::new(gfp())?),
            None => None,
        };
        let mut g = self.inner.lock();
        let PoolInner { slices, quotas } = &mut *g;
        let Some(c) = charge else {
            return slices.alloc(size, false);
        };
        let current = quotas.get(&c.uid).copied().unwrap_or_default();
        current.check(slices.size(), slices.accounted(), size, c.nfds)?;
        let r = slices.alloc(size, true)?;
        let mut q = current;
        q.charge(size, c.nfds);
        match quotas.get_mut(&c.uid) {
            Some(e) => *e = q,
            None => {
                if let Some(node) = node {
                    quotas.insert(node.into_node(c.uid, q));
                }
            }
        }
        Ok(r)
    }

    /// Gives back a slice the kernel holds (its message left the queue
    /// unread, or was never queued) and the quota charge it took.
    pub(crate) fn release(&self, offset: u64, charge: Option<Charge>) {
        let mut g = self.inner.lock();
        let _ = g.slices.release_kernel(offset);
        if let Some(c) = charge {
            Self::uncharge(&mut g.quotas, c);
        }
    }

    fn uncharge(quotas: &mut RBTree<crate::domain::AccountId, UserQuota>, c: Charge) {
        if let Some(q) = quotas.get_mut(&c.uid) {
            q.uncharge(c.size, c.nfds);
            if q.is_empty() {
                quotas.remove(&c.uid);
            }
        }
    }

    /// Hands a kernel-held slice to userspace: with `drop_kref` the kernel
    /// lets go of it (and its charge) at once (RECV); without, it stays
    /// queued as well (PEEK).
    pub(crate) fn publish(&self, offset: u64, drop_kref: bool, charge: Option<Charge>) -> Result {
        let mut g = self.inner.lock();
        g.slices.publish(offset, drop_kref)?;
        if drop_kref {
            if let Some(c) = charge {
                Self::uncharge(&mut g.quotas, c);
            }
        }
        Ok(())
    }

    /// Allocates an unaccounted slice, writes `data` into it (zero-padded
    /// to the slice size) and publishes it to userspace: the result of a
    /// command (HELLO, CONN_INFO, LIST). Returns the offset and slice size.
    pub(crate) fn publish_result(&self, data: &[u8]) -> Result<(u64, u64)> {
        let (off, size) = self.alloc(data.len() as u64, None)?;
        let written = self.writer(off, size).and_then(|mut w| {
            w.kernel(data)?;
            w.zero_rest()
        });
        if let Err(e) = written.and_then(|()| self.publish(off, true, None)) {
            self.release(off, None);
            return Err(e);
        }
        Ok((off, size))
    }

    /// KDBUS_CMD_FREE of a published slice (pool.md 5).
    pub(crate) fn free_user(&self, offset: u64) -> Result {
        self.inner.lock().slices.free_user(offset)
    }

    /// A sequential writer of `len` bytes at `off` (inside the pool). The
    /// caller owns the slice (allocated, not yet published).
    pub(crate) fn writer(&self, off: u64, len: u64) -> Result<Writer<'_>> {
        self.file.writer(off, len)
    }

    /// The backing file (to copy from).
    pub(crate) fn file(&self) -> &ShmemFile {
        &self.file
    }

    /// Held pages for in-place writes of descriptor numbers.
    pub(crate) fn patch(&self) -> Patch<'_> {
        self.file.patch()
    }

    /// Maps the pool into `vma`, read-only (pool.md 3): a writable mapping
    /// is `EPERM`, more than the pool's size `EFAULT`; partial mappings at
    /// any page-aligned offset are allowed (access past the end faults).
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        if vma.is_writable() {
            return Err(EPERM);
        }
        if vma.len() > self.size() {
            return Err(EFAULT);
        }
        self.file.mmap(vma)
    }
}
