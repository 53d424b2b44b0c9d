// SPDX-License-Identifier: GPL-2.0

//! Messages placed in a receiver's pool (spec: message.md 7.3, 10) and the
//! receiver's queue of them.
//!
//! A [`Placed`] owns everything one delivery took: the slice in the
//! receiver's pool, the receive-quota charge, the references to the files it
//! carries and the reply tracker of a call. Dropping it gives all of them
//! back; [`Placed::publish`] is the explicit step that hands the slice to
//! userspace instead.

use crate::glue::file::File;
use crate::glue::gfp;
use crate::glue::stats::{Kind, Live};
use crate::pool::{Charge, Pool};
use crate::proto::errno::Result;
use crate::reply::Reply;
use crate::uapi::KDBUS_RECV_RETURN_INCOMPLETE_FDS;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation};
use kernel::sync::Arc;
use kernel::types::ARef;

/// A message (or synchronous reply) written into a receiver's pool and not
/// yet handed to userspace.
pub(crate) struct Placed {
    pool: Arc<Pool>,
    /// Slice offset and size in the receiver's pool.
    pub(crate) offset: u64,
    pub(crate) size: u64,
    /// Message priority (lower is more urgent).
    pub(crate) priority: i64,
    /// The receive-quota charge, if the slice is accounted.
    charge: Option<Charge>,
    /// Files to install at RECV, each with the pool offset of its `int`.
    files: KVec<(ARef<File>, u64)>,
    /// The tracker of a call, to resolve if the receiver drops it.
    pub(crate) reply: Option<Arc<Reply>>,
    /// The registration id of the name the message was addressed to (0 if
    /// by id): it follows the name between an activator and an implementer.
    pub(crate) name_id: u64,
    /// FDs (memfds excluded) among `files`.
    nfds: u32,
    /// Whether the kernel still holds the slice.
    held: bool,
    _live: Live,
}

/// Where a delivered result is in the receiver's pool.
pub(crate) struct Published {
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) return_flags: u64,
}

impl Published {
    /// The empty-slice marker (pool.md 4).
    pub(crate) fn empty(pool: &Pool) -> Self {
        Published {
            offset: pool.size(),
            size: 0,
            return_flags: 0,
        }
    }
}

impl Placed {
    /// Takes ownership of a slice at `offset` the caller allocated in `pool`
    /// (with `charge`) and wrote the message into.
    pub(crate) fn new(
        pool: Arc<Pool>,
        offset: u64,
        size: u64,
        priority: i64,
        charge: Option<Charge>,
        files: KVec<(ARef<File>, u64)>,
        nfds: u32,
    ) -> Self {
        Placed {
            pool,
            offset,
            size,
            priority,
            charge,
            files,
            reply: None,
            name_id: 0,
            nfds,
            held: true,
            _live: Live::new(Kind::Placed),
        }
    }

    /// Gives every file a new descriptor in the calling process and writes
    /// the numbers into the pool (message.md 10.5). The pages of the fields
    /// are fetched first, so nothing can fail once the first descriptor is
    /// installed: a number that cannot be allocated (or a receive the LSM
    /// refuses) reads -1 and sets `INCOMPLETE_FDS`. Without `install` the
    /// fields keep the -1 written at placement (PEEK; monitors without
    /// `ACCEPT_FD`). Returns the `kdbus_msg_info.return_flags`.
    pub(crate) fn install_fds(&self, install: bool) -> Result<u64> {
        if !install || self.files.is_empty() {
            return Ok(0);
        }
        let mut patch = self.pool.patch();
        for (_, slot) in self.files.iter() {
            patch.add(*slot)?;
        }
        let mut incomplete = false;
        for (file, slot) in self.files.iter() {
            let fd = file.receive().unwrap_or_else(|_| {
                incomplete = true;
                -1
            });
            patch.write_i32(*slot, fd);
        }
        Ok(if incomplete {
            KDBUS_RECV_RETURN_INCOMPLETE_FDS as u64
        } else {
            0
        })
    }

    /// Whether the message carries FDs (memfds excluded).
    pub(crate) fn has_fds(&self) -> bool {
        self.nfds > 0
    }

    /// The sending user whose quota the message counts against (the kernel
    /// user for unaccounted slices).
    pub(crate) fn charge_uid(&self) -> crate::domain::AccountId {
        self.charge.map_or(crate::domain::KERNEL_ACCOUNT, |c| c.uid)
    }

    /// Moves the message into `pool` (names.md 6.3: activator hand-over):
    /// a new slice there, charged to the same sending user, with the same
    /// bytes, files and tracker; the old slice is given back (or stays
    /// until freed if userspace peeked at it).
    pub(crate) fn copy_to(mut self, pool: &Arc<Pool>) -> Result<Placed> {
        let charge = Charge {
            uid: self.charge_uid(),
            size: self.size,
            nfds: self.nfds,
        };
        let (offset, size) = pool.alloc(self.size, Some(charge))?;
        let copied = pool
            .writer(offset, size)
            .and_then(|mut w| w.copy_from(self.pool.file(), self.offset, self.size));
        if let Err(e) = copied {
            pool.release(offset, Some(charge));
            return Err(e);
        }
        let mut files = KVec::new();
        core::mem::swap(&mut files, &mut self.files);
        for (_, slot) in files.iter_mut() {
            *slot = *slot - self.offset + offset;
        }
        let mut p = Placed::new(
            pool.clone(),
            offset,
            size,
            self.priority,
            Some(charge),
            files,
            self.nfds,
        );
        p.reply = self.reply.take();
        p.name_id = self.name_id;
        Ok(p)
    }

    /// PEEK: publishes the slice to userspace while the kernel keeps
    /// holding it for the queue (pool.md 2: both references).
    pub(crate) fn peek(&self) -> Result {
        self.pool.publish(self.offset, false, None)
    }

    /// RECV's success step: the slice now belongs to userspace, the quota
    /// charge is given back, and the file references and tracker go (the
    /// descriptors were installed).
    pub(crate) fn hand_over(mut self) {
        if self.pool.publish(self.offset, true, self.charge).is_ok() {
            self.held = false;
        }
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        if self.held {
            self.pool.release(self.offset, self.charge);
        }
    }
}

/// A receiver's queue, in arrival order. Nodes are allocated before the
/// receiver's lock is taken ([`Queue::reserve`]), so queueing cannot fail
/// once a message is placed.
pub(crate) struct Queue {
    entries: RBTree<u64, Placed>,
    next: u64,
}

/// A queue node allocated ahead of queueing.
pub(crate) struct QueueSlot(RBTreeNodeReservation<u64, Placed>);

impl Queue {
    pub(crate) fn new() -> Self {
        Queue {
            entries: RBTree::new(),
            next: 0,
        }
    }

    /// Allocates a node for one message.
    pub(crate) fn reserve() -> Result<QueueSlot> {
        Ok(QueueSlot(RBTreeNodeReservation::new(gfp())?))
    }

    /// Appends `p`.
    pub(crate) fn push(&mut self, slot: QueueSlot, p: Placed) {
        self.next += 1;
        self.entries.insert(slot.0.into_node(self.next, p));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.iter().next().is_none()
    }

    /// The key RECV picks (message.md 10.2): the oldest message, or with
    /// `use_prio` the oldest of the most urgent ones if its priority is at
    /// most `max_priority`.
    pub(crate) fn select(&self, use_prio: bool, max_priority: i64) -> Option<u64> {
        if !use_prio {
            return self.entries.keys().next().copied();
        }
        let (k, p) = self.entries.iter().min_by_key(|(k, p)| (p.priority, **k))?;
        if p.priority <= max_priority {
            Some(*k)
        } else {
            None
        }
    }

    pub(crate) fn get(&self, key: u64) -> Option<&Placed> {
        self.entries.get(&key)
    }

    /// Removes the oldest entry addressed to name registration `name_id`.
    pub(crate) fn take_named(&mut self, name_id: u64) -> Option<Placed> {
        let key = self
            .entries
            .iter()
            .find(|(_, p)| p.name_id == name_id)
            .map(|(k, _)| *k)?;
        self.entries.remove(&key)
    }

    /// Removes an entry; the node can be dropped or queued elsewhere.
    pub(crate) fn remove(&mut self, key: u64) -> Option<RBTreeNode<u64, Placed>> {
        self.entries.remove_node(&key)
    }

    /// Removes every entry (disconnect), to be dropped outside the lock.
    pub(crate) fn take_all(&mut self) -> Queue {
        core::mem::replace(self, Queue::new())
    }
}
