// SPDX-License-Identifier: GPL-2.0

//! Reply trackers: the open method-call windows (spec: message.md 8).
//!
//! A tracker lives in its caller's `requests` list from the call until the
//! reply, a timeout, or the callee's death or RECV_DROP; a call's queue
//! entry at the callee also points at it. Synchronous callers sleep on it.

use crate::errno::{Result, ECANCELED, ECONNRESET, ERESTARTSYS, ETIMEDOUT};
use crate::queue::Entry;
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::time::Ktime;

/// Where a tracker stands.
pub(crate) enum State {
    /// Waiting for the reply.
    Waiting,
    /// A synchronous caller was interrupted by a signal and may resume.
    Interrupted,
    /// Completed: the reply placed in the caller's pool, or an error.
    Done(Result<Entry>),
    /// The result was taken by the caller.
    Taken,
}

/// An outstanding call.
#[pin_data]
pub(crate) struct Reply {
    pub(crate) caller_id: u64,
    /// The connection expected to answer.
    pub(crate) callee_id: u64,
    pub(crate) cookie: u64,
    /// Absolute `CLOCK_MONOTONIC` deadline in ns.
    pub(crate) deadline_ns: u64,
    pub(crate) sync: bool,
    #[pin]
    pub(crate) state: Mutex<State>,
    #[pin]
    cond: CondVar,
}

/// `CLOCK_MONOTONIC` now, in ns.
pub(crate) fn now_ns() -> u64 {
    Ktime::ktime_get().to_ns() as u64
}

impl Reply {
    /// A new tracker.
    pub(crate) fn new(
        caller_id: u64,
        callee_id: u64,
        cookie: u64,
        deadline_ns: u64,
        sync: bool,
    ) -> Result<Arc<Self>> {
        Ok(Arc::pin_init(
            pin_init!(Reply {
                caller_id,
                callee_id,
                cookie,
                deadline_ns,
                sync,
                state <- kernel::new_mutex!(State::Waiting, "kdbus_reply"),
                cond <- kernel::new_condvar!("kdbus_reply_cond"),
            }),
            GFP_KERNEL,
        )?)
    }

    /// Completes the tracker and wakes its caller. If the caller already
    /// stopped waiting, the result is refused and handed back.
    pub(crate) fn complete(
        &self,
        result: Result<Entry>,
    ) -> core::result::Result<(), Result<Entry>> {
        let mut g = self.state.lock();
        if !matches!(*g, State::Waiting | State::Interrupted) {
            return Err(result);
        }
        *g = State::Done(result);
        self.cond.notify_all();
        Ok(())
    }

    /// Closes an asynchronous window (answered or timed out).
    pub(crate) fn close(&self) {
        let mut g = self.state.lock();
        if matches!(*g, State::Waiting | State::Interrupted) {
            *g = State::Taken;
        }
    }

    /// Takes a completed result that nobody will collect.
    pub(crate) fn take_result(&self) -> Option<Result<Entry>> {
        let mut g = self.state.lock();
        match core::mem::replace(&mut *g, State::Taken) {
            State::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Wakes a sleeping caller so it re-checks its connection.
    pub(crate) fn kick(&self) {
        let _g = self.state.lock();
        self.cond.notify_all();
    }

    /// Whether a reply may still complete the tracker.
    pub(crate) fn is_open(&self) -> bool {
        matches!(*self.state.lock(), State::Waiting | State::Interrupted)
    }

    /// Whether the caller was interrupted or the result is waiting for it.
    pub(crate) fn is_resumable(&self) -> bool {
        matches!(*self.state.lock(), State::Interrupted | State::Done(_))
    }

    /// Sleeps until the tracker completes (message.md 8.2 step 4).
    /// `caller_active` tells whether the caller is still connected,
    /// `cancelled` whether its CANCEL_FD became readable.
    pub(crate) fn wait(
        &self,
        caller_active: impl Fn() -> bool,
        cancelled: impl Fn() -> bool,
    ) -> Result<Entry> {
        let mut g = self.state.lock();
        loop {
            if !caller_active() {
                return Err(ECONNRESET);
            }
            if let State::Done(_) = &*g {
                if let State::Done(r) = core::mem::replace(&mut *g, State::Taken) {
                    return r;
                }
            }
            if cancelled() {
                *g = State::Taken;
                return Err(ECANCELED);
            }
            if kernel::current!().signal_pending() {
                *g = State::Interrupted;
                return Err(ERESTARTSYS);
            }
            let now = now_ns();
            if now >= self.deadline_ns {
                *g = State::Taken;
                return Err(ETIMEDOUT);
            }
            *g = State::Waiting;
            // SAFETY: nsecs_to_jiffies has no preconditions.
            let j = unsafe { crate::bindings::nsecs_to_jiffies(self.deadline_ns - now) };
            let _ = self
                .cond
                .wait_interruptible_timeout(&mut g, j.saturating_add(1));
        }
    }
}
