// SPDX-License-Identifier: GPL-2.0

//! Method-call windows of a connection (spec: message.md 8): the reply
//! trackers of the calls it made, the reply-timeout timer, and the wait of a
//! synchronous call. Tracker states are guarded by this connection's lock.

use super::{Connection, Sender};
use crate::glue::poll::PollWatch;
use crate::glue::time;
use crate::glue::workqueue::DelayedWork;
use crate::proto::errno::{Result, ECANCELED, ECONNRESET, EMLINK, EPIPE, ERESTARTSYS, ETIMEDOUT};
use crate::proto::limits::CONN_MAX_REQUESTS_PENDING;
use crate::queue::{Placed, Published};
use crate::reply::{Reply, State};
use crate::uapi::*;
use kernel::sync::Arc;

impl Connection {
    /// Opens a window for a call to `callee` (`EMLINK` beyond
    /// `CONN_MAX_REQUESTS_PENDING`).
    pub(crate) fn open_request(
        &self,
        callee: u64,
        name_id: u64,
        cookie: u64,
        deadline_ns: u64,
        sync: bool,
    ) -> Result<Arc<Reply>> {
        let r = Reply::new(
            &self.inner,
            self.id,
            callee,
            name_id,
            cookie,
            deadline_ns,
            sync,
        )?;
        let mut g = self.inner.lock();
        if !self.is_active() {
            return Err(ECONNRESET);
        }
        if g.requests.len() >= CONN_MAX_REQUESTS_PENDING {
            return Err(EMLINK);
        }
        g.requests.push(r.clone(), crate::glue::gfp())?;
        Ok(r)
    }

    /// Forgets a tracker; whether it was still listed.
    pub(crate) fn remove_request(&self, r: &Reply) -> bool {
        let gone = {
            let mut g = self.inner.lock();
            let i = g.requests.iter().position(|x| core::ptr::eq(&**x, r));
            i.and_then(|i| crate::glue::kvec::remove(&mut g.requests, i))
        };
        gone.is_some()
    }

    /// The open tracker a reply from `replier` with `cookie` answers. An
    /// asynchronous window closes and leaves the list; a synchronous one
    /// stays until its caller takes the result.
    pub(crate) fn take_open_request(&self, cookie: u64, replier: u64) -> Option<Arc<Reply>> {
        let mut g = self.inner.lock();
        let inner: &super::ConnInner = &g;
        let i = inner.requests.iter().position(|r| {
            r.cookie == cookie && r.callee() == replier && r.state.access(inner).is_open()
        })?;
        let r = g.requests[i].clone();
        if r.sync {
            return Some(r);
        }
        *r.state.access_mut(&mut *g) = State::Closed;
        crate::glue::kvec::remove(&mut g.requests, i)
    }

    /// Hands the result of a synchronous call to its waiting caller (this
    /// connection). If the caller stopped waiting, the result is refused and
    /// handed back, to be dropped by the caller of this function.
    pub(crate) fn complete_sync(
        &self,
        r: &Reply,
        result: Result<Placed>,
    ) -> core::result::Result<(), Result<Placed>> {
        let mut g = self.inner.lock();
        let st = r.state.access_mut(&mut *g);
        if !st.is_open() {
            return Err(result);
        }
        *st = State::Done(result);
        drop(g);
        r.wait.notify_all();
        Ok(())
    }

    /// Tells the caller of `r` (this connection) that its call will never be
    /// answered (callee gone, or it dropped the call): a synchronous caller
    /// wakes with `EPIPE`, an asynchronous one gets REPLY_DEAD. Nothing
    /// happens if the window is already closed.
    pub(crate) fn resolve_dead(self: &Arc<Self>, r: &Arc<Reply>) {
        let mut g = self.inner.lock();
        if !r.state.access_mut(&mut *g).is_open() {
            return;
        }
        if r.sync {
            *r.state.access_mut(&mut *g) = State::Done(Err(EPIPE));
            drop(g);
            r.wait.notify_all();
            return;
        }
        *r.state.access_mut(&mut *g) = State::Closed;
        let i = g.requests.iter().position(|x| Arc::ptr_eq(x, r));
        let gone = i.and_then(|i| crate::glue::kvec::remove(&mut g.requests, i));
        drop(g);
        drop(gone);
        self.notify_reply(KDBUS_ITEM_REPLY_DEAD, r.cookie);
    }

    /// Disconnect step 7 for a dying `callee`: every open window of this
    /// connection that awaits it is resolved as dead, one at a time (no
    /// allocation).
    pub(crate) fn kill_requests_to(self: &Arc<Self>, callee: u64) {
        loop {
            let next = {
                let g = self.inner.lock();
                let inner: &super::ConnInner = &g;
                let found = inner
                    .requests
                    .iter()
                    .find(|r| r.callee() == callee && r.state.access(inner).is_open());
                found.cloned()
            };
            match next {
                Some(r) => self.resolve_dead(&r),
                None => break,
            }
        }
    }

    /// Calls this connection made to name registration `name_id` that await
    /// `from` now await `to` (names.md 6.3 step 1).
    pub(crate) fn retarget_requests(&self, name_id: u64, from: u64, to: u64) {
        let g = self.inner.lock();
        for r in g.requests.iter() {
            if r.name_id == name_id && r.callee() == from {
                r.retarget(to);
            }
        }
    }

    /// Arms the timeout worker for `deadline` unless it is armed earlier.
    pub(crate) fn arm_timer(self: &Arc<Self>, deadline: u64) {
        let mut g = self.inner.lock();
        if !self.is_active() || g.timer_deadline.is_some_and(|d| d <= deadline) {
            return;
        }
        g.timer_deadline = Some(deadline);
        let delay = time::ns_to_jiffies(deadline.saturating_sub(time::monotonic_ns()));
        // Under the lock: arms are serialised, and disconnect (which clears
        // `active` under it) cancels after the last one.
        DelayedWork::arm(self, delay);
    }

    /// The timeout worker: expires asynchronous calls with REPLY_TIMEOUT and
    /// silently drops interrupted synchronous ones past their deadline, one
    /// at a time (no allocation, so none can be lost), then re-arms for the
    /// earliest deadline left.
    pub(crate) fn check_timeouts(self: &Arc<Self>) {
        self.inner.lock().timer_deadline = None;
        loop {
            let now = time::monotonic_ns();
            let expired = {
                let mut g = self.inner.lock();
                let inner: &super::ConnInner = &g;
                let i = inner.requests.iter().position(|r| {
                    let waiting_sync = r.sync && !r.state.access(inner).is_resumable();
                    !waiting_sync && r.deadline_ns <= now
                });
                match i {
                    None => None,
                    Some(i) => match crate::glue::kvec::remove(&mut g.requests, i) {
                        None => None,
                        Some(r) => {
                            let st = core::mem::replace(r.state.access_mut(&mut *g), State::Closed);
                            Some((r, st))
                        }
                    },
                }
            };
            let Some((r, st)) = expired else { break };
            if !r.sync && st.is_open() {
                self.notify_reply(KDBUS_ITEM_REPLY_TIMEOUT, r.cookie);
            }
            // An uncollected synchronous result goes here (outside the lock).
            drop(st);
        }
        let next = {
            let g = self.inner.lock();
            let inner: &super::ConnInner = &g;
            inner
                .requests
                .iter()
                .filter(|r| !r.sync || r.state.access(inner).is_resumable())
                .map(|r| r.deadline_ns)
                .min()
        };
        if let Some(d) = next {
            self.arm_timer(d);
        }
    }

    /// An interrupted synchronous call with `cookie` to resume, if any
    /// (message.md 8.2 step 1).
    pub(crate) fn resumable_call(&self, cookie: u64) -> Option<Arc<Reply>> {
        let g = self.inner.lock();
        let inner: &super::ConnInner = &g;
        inner
            .requests
            .iter()
            .find(|r| r.sync && r.cookie == cookie && r.state.access(inner).is_resumable())
            .cloned()
    }

    /// Waits for the reply of a synchronous call (message.md 8.2 step 4)
    /// and publishes it. The CANCEL_FD's `poll` runs with no kdbus lock and
    /// no active reference held (it may take any lock, or block); the
    /// tracker is then re-checked under the lock.
    pub(crate) fn wait_reply(
        self: &Arc<Self>,
        s: &mut Sender,
        r: &Arc<Reply>,
        watch: Option<&PollWatch>,
    ) -> Result<Published> {
        let result = loop {
            let cancel = match watch {
                Some(w) => s.active.suspended(|| w.poll()),
                None => Ok(false),
            };
            let mut g = self.inner.lock();
            let st = r.state.access_mut(&mut *g);
            if !self.is_active() {
                *st = State::Closed;
                break Err(ECONNRESET);
            }
            if let State::Done(_) = st {
                if let State::Done(res) = core::mem::replace(st, State::Closed) {
                    break res;
                }
            }
            match cancel {
                Ok(true) => {
                    *st = State::Closed;
                    break Err(ECANCELED);
                }
                Ok(false) => {}
                Err(e) => {
                    *st = State::Closed;
                    break Err(e);
                }
            }
            if kernel::current!().signal_pending() {
                *st = State::Interrupted;
                break Err(ERESTARTSYS);
            }
            let now = time::monotonic_ns();
            if now >= r.deadline_ns {
                *st = State::Closed;
                break Err(ETIMEDOUT);
            }
            *st = State::Waiting;
            let timeout = time::ns_to_jiffies(r.deadline_ns - now);
            let g = r
                .wait
                .wait_interruptible_timeout(&self.inner, g, timeout, || {
                    watch.is_some_and(|w| w.triggered())
                });
            drop(g);
        };
        if matches!(result, Err(ERESTARTSYS)) {
            // Kept for the restarted SEND; the timeout worker drops it if
            // the caller never comes back.
            self.arm_timer(r.deadline_ns);
        } else {
            self.remove_request(r);
        }
        let placed = result?;
        let return_flags = placed.install_fds(true)?;
        let out = Published {
            offset: placed.offset,
            size: placed.size,
            return_flags,
        };
        placed.hand_over();
        Ok(out)
    }
}
