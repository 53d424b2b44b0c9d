// SPDX-License-Identifier: GPL-2.0

//! Reply trackers: the open method-call windows (spec: message.md 8).
//!
//! A tracker lives in its caller's `requests` from the call until the reply,
//! a timeout, or the callee's death or RECV_DROP; the call's queue entry at
//! the callee points at it too. Its state is guarded by the caller's
//! connection lock ([`LockedBy`]): everything that opens, answers, expires
//! or kills a window takes that lock anyway to find the tracker. A
//! synchronous caller sleeps on the tracker's wait queue.

use crate::connection::ConnInner;
use crate::glue::gfp;
use crate::glue::poll::PollCondVar;
use crate::glue::stats::{Kind, Live};
use crate::proto::errno::Result;
use crate::queue::Placed;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, LockedBy, Mutex};

/// Where a tracker stands.
pub(crate) enum State {
    /// Waiting for the reply.
    Waiting,
    /// A synchronous caller was interrupted by a signal and may resume.
    Interrupted,
    /// Completed (synchronous calls): the reply placed in the caller's pool,
    /// or an error.
    Done(Result<Placed>),
    /// Closed: answered, timed out, or the result was taken.
    Closed,
}

impl State {
    /// Whether a reply may still complete the window.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, State::Waiting | State::Interrupted)
    }

    /// Whether a restarted synchronous SEND finds something to resume.
    pub(crate) fn is_resumable(&self) -> bool {
        matches!(self, State::Interrupted | State::Done(_))
    }
}

/// An outstanding call.
#[pin_data]
pub(crate) struct Reply {
    pub(crate) caller_id: u64,
    /// The connection expected to answer; changes when a call to a name
    /// follows it from an activator to an implementer.
    callee: AtomicU64,
    /// The registration id of the name the call was sent to (0: by id).
    pub(crate) name_id: u64,
    pub(crate) cookie: u64,
    /// Absolute `CLOCK_MONOTONIC` deadline in ns.
    pub(crate) deadline_ns: u64,
    pub(crate) sync: bool,
    /// Guarded by the caller's `Connection::inner`.
    pub(crate) state: LockedBy<State, ConnInner>,
    /// A synchronous caller sleeps here.
    #[pin]
    pub(crate) wait: PollCondVar,
    _live: Live,
}

impl Reply {
    /// A new, waiting tracker of a call made by the owner of `caller_lock`.
    pub(crate) fn new(
        caller_lock: &Mutex<ConnInner>,
        caller_id: u64,
        callee_id: u64,
        name_id: u64,
        cookie: u64,
        deadline_ns: u64,
        sync: bool,
    ) -> Result<Arc<Self>> {
        Ok(Arc::pin_init(
            pin_init!(Reply {
                caller_id,
                callee: AtomicU64::new(callee_id),
                name_id,
                cookie,
                deadline_ns,
                sync,
                state: LockedBy::new(caller_lock, State::Waiting),
                wait <- PollCondVar::new(),
                _live: Live::new(Kind::Reply),
            }),
            gfp(),
        )?)
    }

    /// The connection expected to answer.
    pub(crate) fn callee(&self) -> u64 {
        self.callee.load(Ordering::Relaxed)
    }

    /// Expects the answer from `to` instead (names.md 6.3).
    pub(crate) fn retarget(&self, to: u64) {
        self.callee.store(to, Ordering::Relaxed);
    }
}
