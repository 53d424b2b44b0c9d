// SPDX-License-Identifier: GPL-2.0

//! Live-object counters: every kdbus object holds a [`Live`] token of its
//! kind, and module unload reports any kind whose count is not back to zero
//! as a `BUG:` line (the test machinery fails on it). Together with kmemleak
//! this shows that every path gave back what it took: quotas and pool slices
//! live inside the counted pools and messages.

use core::sync::atomic::{AtomicIsize, Ordering};

/// What is counted.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// [`crate::domain::Domain`]
    Domain,
    /// [`crate::bus::Bus`]
    Bus,
    /// [`crate::endpoint::Endpoint`]
    Endpoint,
    /// [`crate::connection::Connection`]
    Connection,
    /// [`crate::pool::Pool`]
    Pool,
    /// [`crate::message::Kmsg`]
    Message,
    /// [`crate::queue::Placed`]: a message or result placed in a pool
    Placed,
    /// [`crate::reply::Reply`]
    Reply,
    /// [`crate::handle::Handle`]: an open kdbus file
    Handle,
    /// [`crate::metadata::ProcMeta`], [`crate::metadata::Faked`],
    /// [`crate::metadata::Rendered`]: metadata snapshots, a message's
    /// collected process metadata, renderings of it
    Metadata,
}

const KINDS: usize = 10;
const NAMES: [&str; KINDS] = [
    "domains",
    "buses",
    "endpoints",
    "connections",
    "pools",
    "messages",
    "placed messages",
    "reply trackers",
    "handles",
    "metadata records",
];

static LIVE: [AtomicIsize; KINDS] = [const { AtomicIsize::new(0) }; KINDS];

/// One live object of a kind; counted from creation to drop.
pub(crate) struct Live(Kind);

impl Live {
    /// Counts a new object.
    pub(crate) fn new(kind: Kind) -> Self {
        LIVE[kind as usize].fetch_add(1, Ordering::Relaxed);
        Live(kind)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reports every kind with live objects (at module unload, when there must
/// be none).
pub(crate) fn report_leaks() {
    for (n, name) in LIVE.iter().zip(NAMES.iter()) {
        let v = n.load(Ordering::Relaxed);
        if v != 0 {
            kernel::pr_err!("BUG: kdbus: {} {} leaked at module unload\n", v, name);
        }
    }
}
