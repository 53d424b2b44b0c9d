// SPDX-License-Identifier: GPL-2.0

//! kdbus: D-Bus IPC in the kernel.
//!
//! The crate root only wires modules together and states the lock order.
//!
//! * [`proto`]: the pure protocol code (no kernel calls; also built in
//!   userspace by `tools/testing/proto` for property tests).
//! * [`glue`]: the one FFI boundary; all raw kernel access of the module is
//!   there, behind safe types.
//! * Kernel objects, safe code over the two: [`fs`] (kdbusfs nodes, the
//!   filesystem's operations), [`handle`] (an open file; the only user-memory
//!   boundary), [`domain`], [`bus`], [`endpoint`], [`connection`] (lifecycle;
//!   `connection/calls.rs`: method-call windows and the timer;
//!   `connection/recv.rs`: RECV and FREE), [`delivery`] (SEND routing and the
//!   receiver primitive), [`message`] (a message ready for any receiver),
//!   [`queue`] (a message placed in a pool, and the queue), [`reply`] (reply
//!   trackers), [`pool`] (the receive pool and its quotas), [`info`]
//!   (CONN_INFO, BUS_CREATOR_INFO, LIST), [`metadata`] (process metadata
//!   collected from the calling task, faked metadata, their rendering for a
//!   consumer; `metadata/cache.rs`: a sending connection's last snapshot and
//!   rendering, reused while the task's items are unchanged).
//!
//! # Lock order
//!
//! Outer to inner; a lock may be taken while holding only locks above it.
//! This is the one statement of it (Documentation/architecture.md links
//! here); lockdep checks it on the debug kernel.
//!
//! 1. `Handle::setup` (mutex): serialises the setup ioctls of one file
//!    (BUS_MAKE, HELLO, ENDPOINT_MAKE). They copy from user memory under it,
//!    so the mm's `mmap_lock` nests inside; `mmap` never takes it.
//! 2. `Bus::flush` (mutex): held while the queued kernel notifications are
//!    delivered, so every receiver gets them in bus order. Everything below
//!    may be taken under it.
//! 3. `Bus::registry` (mutex: the name registry; through `LockedBy` also
//!    every name's state and every connection's ownership records). Under
//!    it: linking a connection (levels 4-5), queueing a message addressed
//!    by name after re-checking its owner, and moving messages between an
//!    activator and an implementer (levels 6-7); `Bus::notifications`.
//! 4. `Domain::inner`, `Bus::inner`, then `Endpoint::inner`: a bus links
//!    and unlinks a connection in its endpoint under its own lock;
//!    otherwise none of them is held while another kdbus lock is taken.
//!    Iteration over a bus's connections or monitors holds `Bus::inner` only
//!    to find the next one ([`bus::Bus::conn_after`]).
//! 5. `Bus::policy`, `Endpoint::policy` (mutexes of the policy databases):
//!    leaves, queried with no other kdbus lock held.
//! 6. `Connection::inner`: the queue, the match database, the method-call
//!    windows (whose [`reply::Reply`] states it guards through `LockedBy`),
//!    the counters. Never nested in another connection's. It may be held
//!    while taking `Pool::inner` and `DelayedWork::held`. A synchronous
//!    caller sleeping for its reply and disconnect waiting for running
//!    ioctls release it while they sleep.
//! 7. `Pool::inner` (mutex: slice allocator and receive quotas),
//!    `Bus::notifications` (mutex: the notification queue) and
//!    `DelayedWork::held` (spinlock, around queueing the timeout worker):
//!    leaves. Writing into a pool's pages takes none of our locks (the
//!    writer owns its slice).
//! 8. `Handle::state` (spinlock): innermost, held only to read or set a
//!    handle's state; `mmap` (under `mmap_lock`) and `poll` take it, then
//!    release it before anything else (`poll` then takes
//!    `Connection::inner` to see whether input is waiting).
//!    `ProcCache::inner` (spinlock, a sending connection's metadata cache,
//!    `metadata/cache.rs`): innermost too, taken with no other kdbus lock
//!    held, only to clone or swap the references it holds; what it lets go
//!    of is dropped after it is released.
//!
//! The VFS's inode locks (node creation and removal, in `glue/vfs.rs`) are
//! only taken with no kdbus lock held: nodes are published by [`fs`] from
//! the handle, and [`fs::Node`]s are dropped after their owner's lock is
//! released.
//!
//! Besides locks, two kinds of wait are kept apart from every kdbus lock
//! and from the active reference that disconnect waits for
//! ([`connection::Active`]): user memory (command copies in [`handle`]; the
//! payload copy into a receiver's pool runs with the sender's active
//! reference suspended) and a foreign file's `->poll` (a synchronous call's
//! CANCEL_FD, polled by [`glue::poll::PollWatch`] with no lock and no
//! active reference held). Either can block for as long as userspace likes
//! (a FUSE or userfaultfd page, a FUSE poll).
//!
//! Metadata collection from the calling task ([`metadata`]) takes the
//! task's own locks (the task lock for `comm`, `fs->lock` for its root,
//! `arg_lock`, RCU) and reads its argument block from user memory
//! (CMDLINE). It runs only where that is allowed: at BUS_MAKE and HELLO
//! under `Handle::setup` alone, before any other kdbus lock, and at SEND in
//! `Connection::place` with no kdbus lock held, CMDLINE with the sender's
//! active reference suspended.

// `pin_init!` of the bigger objects expands deeper than the default allows.
#![recursion_limit = "256"]

use kernel::prelude::*;

mod bus;
mod connection;
mod delivery;
mod domain;
mod endpoint;
mod fs;
mod glue;
mod handle;
mod info;
mod matches;
mod message;
mod metadata;
mod names;
mod notify;
mod policy;
mod pool;
mod proto;
mod queue;
mod reply;

/// The kdbus ABI, generated from `uapi/linux/kdbus.h` (in `glue/`).
use glue::uapi;

module! {
    type: Kdbus,
    name: "kdbus",
    author: "kdbus developers",
    description: "D-Bus IPC in the kernel (kdbusfs)",
    license: "GPL",
    alias: ["fs-kdbusfs"],
}

struct Kdbus;

impl kernel::Module for Kdbus {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        fs::register()?;
        pr_info!("kdbusfs registered, mount point /sys/fs/kdbus\n");
        Ok(Kdbus)
    }
}

impl Drop for Kdbus {
    fn drop(&mut self) {
        fs::unregister();
        // No mount and no open file can be left (both pin the module).
        glue::stats::report_leaks();
    }
}
