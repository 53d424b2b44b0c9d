// SPDX-License-Identifier: GPL-2.0

//! Connections (spec: connection.md, message.md): HELLO, the message queue,
//! SEND and RECV, method-call windows, CONN_INFO/UPDATE, BYEBYE and
//! disconnect.

use crate::bindings;
use crate::cmd::{self, Cmd};
use crate::cred::Creds;
use crate::domain::Charge;
use crate::endpoint::Endpoint;
use crate::errno::{
    Result, EAGAIN, EBADSLT, EBUSY, ECOMM, ECONNRESET, EINVAL, EMLINK, EMSGSIZE, ENXIO, EOPNOTSUPP,
    EPERM, EPIPE, EREMOTEIO, ESRCH, ETIMEDOUT,
};
use crate::file::{CancelWatch, FileRef};
use crate::kvec;
use crate::limits::CONN_MAX_REQUESTS_PENDING;
use crate::message::Kmsg;
use crate::msg;
use crate::names;
use crate::pool::Pool;
use crate::queue::Entry;
use crate::quota::UserQuota;
use crate::reply::{self, Reply};
use crate::uapi::*;
use crate::wait::WaitQueue;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::types::Opaque;

const SPECIAL: u64 =
    (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER | KDBUS_HELLO_MONITOR) as u64;

struct ConnInner {
    attach_send: u64,
    attach_recv: u64,
    /// Queued messages, in arrival order.
    queue: KVec<Entry>,
    /// Receive quota per sending user.
    quotas: KVec<UserQuota>,
    /// Calls this connection made that await a reply.
    requests: KVec<Arc<Reply>>,
    /// Broadcasts that could not be queued here (lost-message counter).
    lost: u64,
    /// Deadline the timeout worker is armed for.
    timer_deadline: Option<u64>,
    /// Ioctls running on the connection (active references).
    ioctls: u32,
}

impl ConnInner {
    /// Checks the receive quota of `uid` for a slice of `size` bytes with
    /// `nfds` descriptors (message.md 13) and charges it.
    fn charge(&mut self, pool: &Pool, uid: u32, size: u64, nfds: u32) -> Result {
        let i = match self.quotas.iter().position(|q| q.uid == uid) {
            Some(i) => i,
            None => {
                self.quotas.push(
                    UserQuota {
                        uid,
                        ..UserQuota::default()
                    },
                    GFP_KERNEL,
                )?;
                self.quotas.len() - 1
            }
        };
        let q = &mut self.quotas[i];
        match q.check(pool.size(), pool.accounted(), size, nfds) {
            Ok(()) => {
                q.charge(size, nfds);
                Ok(())
            }
            Err(e) => {
                if q.is_empty() {
                    kvec::remove(&mut self.quotas, i);
                }
                Err(e)
            }
        }
    }

    /// Releases a receive-quota charge taken when a message was placed.
    fn uncharge(&mut self, accounted: bool, uid: u32, size: u64, nfds: u32) {
        if !accounted {
            return;
        }
        if let Some(i) = self.quotas.iter().position(|q| q.uid == uid) {
            self.quotas[i].uncharge(size, nfds);
            if self.quotas[i].is_empty() {
                kvec::remove(&mut self.quotas, i);
            }
        }
    }

    /// Releases the charge of an entry leaving the queue.
    fn uncharge_entry(&mut self, e: &Entry) {
        self.uncharge(e.accounted, e.quota_uid, e.size, e.nfds);
    }

    /// The queue index RECV returns (message.md 10.2): the oldest message,
    /// or with `use_prio` the oldest of the most urgent ones if it is at
    /// most `max_priority`.
    fn select(&self, use_prio: bool, max_priority: i64) -> Option<usize> {
        if !use_prio {
            return if self.queue.is_empty() { None } else { Some(0) };
        }
        let (i, e) = self
            .queue
            .iter()
            .enumerate()
            .min_by_key(|(i, e)| (e.priority, *i))?;
        if e.priority <= max_priority {
            Some(i)
        } else {
            None
        }
    }
}

/// A peer on a bus.
///
/// # Invariants
///
/// `timer` is an initialised delayed work item; it is only armed while
/// `active` is true and is cancelled by disconnect and drop.
#[pin_data(PinnedDrop)]
pub(crate) struct Connection {
    pub(crate) ep: Arc<Endpoint>,
    /// Unique id, from the domain's counter.
    pub(crate) id: u64,
    /// HELLO flags.
    pub(crate) flags: u64,
    pub(crate) pool: Pool,
    /// The user this connection is charged to (global kuid value), also its
    /// accounting user as a sender.
    charged_uid: u32,
    /// CONN_DESCRIPTION from HELLO, without NUL.
    description: Option<KVec<u8>>,
    /// Cleared once, at disconnect (under `inner`); read without locks.
    active: AtomicBool,
    #[pin]
    inner: Mutex<ConnInner>,
    /// Pollers.
    #[pin]
    pub(crate) wait: WaitQueue,
    /// Signalled when the last running ioctl of a disconnected connection
    /// ends.
    #[pin]
    drained: CondVar,
    /// Reply-timeout worker.
    #[pin]
    timer: Opaque<bindings::delayed_work>,
}

// SAFETY: the delayed work item is only used through the workqueue API,
// which is thread-safe.
unsafe impl Send for Connection {}
// SAFETY: as above; all other state is behind locks or atomic.
unsafe impl Sync for Connection {}

#[pinned_drop]
impl PinnedDrop for Connection {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: the work item is initialised (invariant); waiting for it
        // here keeps its callback from outliving the connection.
        unsafe { bindings::cancel_delayed_work_sync(self.timer.get()) };
    }
}

/// An active reference: an ioctl running on a connection. Disconnect waits
/// until none is left (connection.md 9.3 step 1).
pub(crate) struct ActiveRef<'a>(&'a Connection);

impl Drop for ActiveRef<'_> {
    fn drop(&mut self) {
        let mut g = self.0.inner.lock();
        g.ioctls -= 1;
        if !self.0.is_active() {
            self.0.drained.notify_all();
        }
    }
}

/// What HELLO hands back to userspace.
pub(crate) struct HelloReply {
    pub(crate) conn: Arc<Connection>,
    pub(crate) offset: u64,
    pub(crate) items_size: u64,
}

/// Where a command result was placed in the caller's pool.
pub(crate) struct Published {
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) return_flags: u64,
}

/// The reply-timeout worker.
///
/// # Safety
///
/// `work` is the `timer` work item of a live [`Connection`].
unsafe extern "C" fn timer_fn(work: *mut bindings::work_struct) {
    // `work` is the first member of the delayed work, which is `timer`.
    let conn = work
        .cast::<u8>()
        .wrapping_sub(offset_of!(Connection, timer))
        .cast::<Connection>();
    // SAFETY: per the function's contract the connection is live: drop
    // cancels the work synchronously before freeing it.
    unsafe { &*conn }.check_timeouts();
}

fn sanitized_attach(c: &Cmd<'_>, ty: u32) -> Result<Option<u64>> {
    c.item(ty)
        .map(|i| cmd::sanitize_attach(i.u64()))
        .transpose()
}

impl Connection {
    /// KDBUS_CMD_HELLO on `ep` (connection.md 3.2), after generic parsing.
    ///
    /// # Safety
    ///
    /// `file` is the live file the handle was opened as.
    pub(crate) unsafe fn hello(
        ep: &Arc<Endpoint>,
        file: *mut bindings::file,
        c: &Cmd<'_>,
    ) -> Result<HelloReply> {
        let flags = c.flags;
        let pool_size = c.field(offset_of!(kdbus_cmd_hello, pool_size));
        let page = kernel::page::PAGE_SIZE as u64;
        if pool_size == 0 || pool_size % page != 0 {
            return Err(EINVAL);
        }
        if (flags & SPECIAL).count_ones() > 1 {
            return Err(EINVAL);
        }
        let special_named = flags & (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER) as u64;
        let name = c.item(KDBUS_ITEM_NAME);
        match (&name, special_named != 0) {
            (Some(_), false) | (None, true) => return Err(EINVAL),
            (Some(n), true) => {
                if !names::is_valid_well_known(n.str_bytes(), true) {
                    return Err(EINVAL);
                }
            }
            (None, false) => {}
        }
        if flags & KDBUS_HELLO_MONITOR as u64 != 0 && !ep.is_default {
            return Err(EOPNOTSUPP);
        }

        let bus = &ep.bus;
        let domain = &bus.domain;
        // SAFETY: `file` is live (contract).
        let fcreds = unsafe { Creds::of_file(file) };
        // SAFETY: `file` is live (contract).
        let privileged = ep.is_default && unsafe { domain.user_ns.file_capable_ipc_owner(file) };
        let owner = ep.is_default && (fcreds.euid.val == bus.uid.val || privileged);
        if !owner && flags & SPECIAL != 0 {
            return Err(EPERM);
        }
        let faked = [KDBUS_ITEM_CREDS, KDBUS_ITEM_PIDS, KDBUS_ITEM_SECLABEL];
        if !owner && faked.iter().any(|&t| c.item(t).is_some()) {
            return Err(EPERM);
        }
        let attach_send =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_send)))?;
        let attach_recv =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_recv)))?;
        // Activators and policy holders need the name registry and the
        // policy database, which do not exist yet.
        if special_named != 0 {
            return Err(EOPNOTSUPP);
        }
        let description = match c.item(KDBUS_ITEM_CONN_DESCRIPTION) {
            Some(d) => {
                let mut v = KVec::new();
                v.extend_from_slice(d.str_bytes(), GFP_KERNEL)?;
                Some(v)
            }
            None => None,
        };

        let id = domain.next_id();
        let pool = Pool::new(pool_size)?;
        let charged_uid = fcreds.uid.val;
        domain.charge(charged_uid, Charge::Conn)?;
        let conn = Arc::pin_init(
            pin_init!(Connection {
                ep: ep.clone(),
                id,
                flags,
                pool,
                charged_uid,
                description,
                active: AtomicBool::new(true),
                inner <- kernel::new_mutex!(ConnInner {
                    attach_send,
                    attach_recv,
                    queue: KVec::new(),
                    quotas: KVec::new(),
                    requests: KVec::new(),
                    lost: 0,
                    timer_deadline: None,
                    ioctls: 0,
                }, "kdbus_conn"),
                drained <- kernel::new_condvar!("kdbus_conn_drained"),
                wait <- WaitQueue::new(),
                // SAFETY: `slot` is valid memory for a delayed work item.
                timer <- Opaque::ffi_init(|slot| unsafe {
                    bindings::kdbus_init_delayed_work(slot, Some(timer_fn))
                }),
            }),
            GFP_KERNEL,
        );
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                domain.uncharge(charged_uid, Charge::Conn);
                return Err(e.into());
            }
        };
        // Until it is linked into the bus nobody can see the connection:
        // undo without the disconnect sequence and its notifications.
        // A racing endpoint teardown may have disconnected it already (it
        // was linked into the endpoint): then that undid everything.
        let undo = |e| {
            let was_active = {
                let _g = conn.inner.lock();
                conn.active.swap(false, Ordering::AcqRel)
            };
            if was_active {
                ep.unlink(&conn);
                domain.uncharge(charged_uid, Charge::Conn);
            }
            Err(e)
        };

        // The HELLO slice: one BLOOM_PARAMETER item (connection.md 3.4).
        let mut item = [0u8; 32];
        for (i, v) in [
            32,
            KDBUS_ITEM_BLOOM_PARAMETER as u64,
            bus.bloom.size,
            bus.bloom.n_hash,
        ]
        .iter()
        .enumerate()
        {
            item[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        let (offset, _) = match conn.pool.publish_result(&item) {
            Ok(p) => p,
            Err(e) => return undo(e),
        };
        if let Err(e) = ep.link(&conn) {
            return undo(e);
        }
        if let Err(e) = bus.link_conn(&conn) {
            return undo(e);
        }
        // Linked: from here on, `disconnect` undoes everything.
        if !conn.is_monitor() {
            conn.notify_id(KDBUS_ITEM_ID_ADD);
        }
        Ok(HelloReply {
            conn,
            offset,
            items_size: item.len() as u64,
        })
    }

    /// Whether the connection has not been disconnected.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// Takes an active reference for an ioctl; `ECONNRESET` once
    /// disconnected.
    pub(crate) fn acquire(&self) -> Result<ActiveRef<'_>> {
        let mut g = self.inner.lock();
        if !self.is_active() {
            return Err(ECONNRESET);
        }
        g.ioctls += 1;
        Ok(ActiveRef(self))
    }

    /// An ordinary connection: not an activator, policy holder or monitor.
    pub(crate) fn is_ordinary(&self) -> bool {
        self.flags & SPECIAL == 0
    }

    pub(crate) fn is_monitor(&self) -> bool {
        self.flags & KDBUS_HELLO_MONITOR as u64 != 0
    }

    pub(crate) fn is_policy_holder(&self) -> bool {
        self.flags & KDBUS_HELLO_POLICY_HOLDER as u64 != 0
    }

    // ---------------------------------------------------------------------
    // Placing messages in this connection's pool (message.md 7.3).

    /// Allocates a slice for `kmsg` and writes it there; with `accounted`,
    /// after the receive quota of the message's user allowed it.
    fn place(&self, kmsg: &Kmsg, accounted: bool) -> Result<Entry> {
        if !self.is_active() {
            return Err(ECONNRESET);
        }
        if !self.is_monitor() && self.flags & KDBUS_HELLO_ACCEPT_FD as u64 == 0 && kmsg.has_fds() {
            return Err(ECOMM);
        }
        let attach = self.inner.lock().attach_recv;
        let head = kmsg.head(attach)?;
        let want = msg::slice_size(head.msg_size, kmsg.payload_size).ok_or(EMSGSIZE)?;
        let (offset, size) = {
            let mut g = self.inner.lock();
            // The quota is charged with the requested size; the slice
            // cannot be smaller (8-aligned already).
            if accounted {
                g.charge(&self.pool, kmsg.quota_uid, want, kmsg.nfds)?;
            }
            match self.pool.alloc(want, accounted) {
                Ok(a) => a,
                Err(e) => {
                    g.uncharge(accounted, kmsg.quota_uid, want, kmsg.nfds);
                    return Err(e);
                }
            }
        };
        let placed = kmsg
            .write_into(&self.pool, offset, &head, size)
            .and_then(|()| kmsg.files_at(offset));
        match placed {
            Ok(files) => Ok(Entry {
                offset,
                size,
                priority: kmsg.header.priority,
                accounted,
                quota_uid: kmsg.quota_uid,
                nfds: kmsg.nfds,
                files,
                reply: None,
            }),
            Err(e) => {
                self.inner
                    .lock()
                    .uncharge(accounted, kmsg.quota_uid, size, kmsg.nfds);
                self.pool.release_kernel(offset);
                Err(e)
            }
        }
    }

    /// Gives an entry's slice and quota back (it left the queue unread).
    fn release_entry(&self, e: Entry) {
        self.inner.lock().uncharge_entry(&e);
        self.pool.release_kernel(e.offset);
    }

    /// Queues `kmsg` (message.md 7.3); `reply` is the tracker of a call.
    pub(crate) fn queue(&self, kmsg: &Kmsg, reply: Option<Arc<Reply>>) -> Result {
        let mut e = self.place(kmsg, true)?;
        e.reply = reply;
        {
            let mut g = self.inner.lock();
            if self.is_active() {
                let pushed = g.queue.push(e, GFP_KERNEL);
                drop(g);
                if let Err(kernel::alloc::AllocError) = pushed {
                    return Err(crate::errno::ENOMEM);
                }
                self.wait.wake_up_all();
                return Ok(());
            }
        }
        self.release_entry(e);
        Err(ECONNRESET)
    }

    /// Queues `kmsg` to every monitor of the bus; failures count as lost.
    fn copy_to_monitors(&self, kmsg: &Kmsg) {
        for m in self.ep.bus.monitors().iter() {
            if m.queue(kmsg, None).is_err() {
                m.inner.lock().lost += 1;
            }
        }
    }

    /// Sends a REPLY_TIMEOUT or REPLY_DEAD notification for `cookie` to
    /// this (calling) connection; failures are ignored (message.md 12).
    fn notify_reply(&self, ty: u32, cookie: u64) {
        let seq = self.ep.bus.next_seq();
        if let Ok(k) = Kmsg::notification(ty, &[], self.id, cookie, seq) {
            self.copy_to_monitors(&k);
            let _ = self.queue(&k, None);
        }
    }

    /// Broadcasts an ID_ADD or ID_REMOVE notification about this
    /// connection. Without a match database yet, only monitors receive it.
    fn notify_id(&self, ty: u32) {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&self.id.to_ne_bytes());
        payload[8..].copy_from_slice(&self.flags.to_ne_bytes());
        let seq = self.ep.bus.next_seq();
        if let Ok(k) = Kmsg::notification(ty, &payload, msg::DST_BROADCAST, 0, seq) {
            self.copy_to_monitors(&k);
        }
    }

    // ---------------------------------------------------------------------
    // Method-call windows (message.md 8).

    fn add_request(&self, r: &Arc<Reply>) -> Result {
        let mut g = self.inner.lock();
        if g.requests.len() >= CONN_MAX_REQUESTS_PENDING {
            return Err(EMLINK);
        }
        g.requests.push(r.clone(), GFP_KERNEL)?;
        Ok(())
    }

    fn remove_request(&self, r: &Reply) -> bool {
        let gone = kvec::remove_arc(&mut self.inner.lock().requests, r);
        gone.is_some()
    }

    /// The open tracker a reply from `replier` with `cookie` answers. An
    /// asynchronous tracker leaves the list; a synchronous one stays until
    /// its caller takes the result.
    fn take_open_request(&self, cookie: u64, replier: u64) -> Option<Arc<Reply>> {
        let mut g = self.inner.lock();
        let i = g
            .requests
            .iter()
            .position(|r| r.cookie == cookie && r.callee_id == replier && r.is_open())?;
        if g.requests[i].sync {
            Some(g.requests[i].clone())
        } else {
            kvec::remove(&mut g.requests, i)
        }
    }

    /// The open trackers of calls to `callee`; asynchronous ones leave the
    /// list.
    fn take_requests_to(&self, callee: u64) -> KVec<Arc<Reply>> {
        let mut out = KVec::new();
        let mut g = self.inner.lock();
        let mut i = 0;
        while i < g.requests.len() {
            let r = &g.requests[i];
            if r.callee_id == callee && r.is_open() {
                if r.sync {
                    let _ = out.push(r.clone(), GFP_KERNEL);
                    i += 1;
                } else if let Some(r) = kvec::remove(&mut g.requests, i) {
                    let _ = out.push(r, GFP_KERNEL);
                }
            } else {
                i += 1;
            }
        }
        out
    }

    /// Tells the caller of a call that will never be answered (callee died
    /// or dropped it): a synchronous caller wakes with `EPIPE`, an
    /// asynchronous one gets REPLY_DEAD.
    fn resolve_dead(&self, r: &Arc<Reply>) {
        if r.sync {
            if let Err(Ok(e)) = r.complete(Err(EPIPE)) {
                self.release_entry(e);
            }
        } else {
            self.notify_reply(KDBUS_ITEM_REPLY_DEAD, r.cookie);
        }
    }

    fn arm_timer(&self, deadline: u64) {
        let mut g = self.inner.lock();
        if !self.is_active() || g.timer_deadline.is_some_and(|d| d <= deadline) {
            return;
        }
        g.timer_deadline = Some(deadline);
        let now = reply::now_ns();
        // SAFETY: no preconditions.
        let delay = unsafe { bindings::nsecs_to_jiffies(deadline.saturating_sub(now)) };
        // SAFETY: the work item is initialised (invariant) and we are active.
        unsafe { bindings::kdbus_mod_delayed_work(self.timer.get(), delay as _) };
    }

    /// The timeout worker: expires asynchronous calls with REPLY_TIMEOUT and
    /// silently drops interrupted synchronous ones past their deadline.
    fn check_timeouts(&self) {
        let now = reply::now_ns();
        let mut expired = KVec::new();
        let mut next: Option<u64> = None;
        {
            let mut g = self.inner.lock();
            g.timer_deadline = None;
            let mut i = 0;
            while i < g.requests.len() {
                let r = &g.requests[i];
                let waiting_sync = r.sync && !r.is_resumable();
                if waiting_sync || r.deadline_ns > now {
                    if !waiting_sync {
                        next = Some(next.map_or(r.deadline_ns, |n| n.min(r.deadline_ns)));
                    }
                    i += 1;
                } else if let Some(r) = kvec::remove(&mut g.requests, i) {
                    if expired.push(r, GFP_KERNEL).is_err() {
                        break;
                    }
                }
            }
        }
        for r in expired.iter() {
            if r.sync {
                if let Some(Ok(e)) = r.take_result() {
                    self.release_entry(e);
                }
            } else if r.is_open() {
                r.close();
                self.notify_reply(KDBUS_ITEM_REPLY_TIMEOUT, r.cookie);
            }
        }
        if let Some(d) = next {
            self.arm_timer(d);
        }
    }

    // ---------------------------------------------------------------------
    // SEND (message.md 5-9).

    /// Resumes an interrupted synchronous call with `cookie`, if any.
    pub(crate) fn resumable_call(&self, cookie: u64) -> Option<Arc<Reply>> {
        let g = self.inner.lock();
        g.requests
            .iter()
            .find(|r| r.sync && r.cookie == cookie && r.is_resumable())
            .cloned()
    }

    /// Waits for the reply of a synchronous call and publishes it.
    pub(crate) fn wait_reply(&self, r: &Arc<Reply>, cancel: Option<FileRef>) -> Result<Published> {
        let watch = cancel.map(CancelWatch::new).transpose()?;
        let result = r.wait(
            || self.is_active(),
            || watch.as_ref().is_some_and(|w| w.fired()),
        );
        drop(watch);
        if matches!(result, Err(crate::errno::ERESTARTSYS)) {
            // Kept for the restarted SEND; the timeout worker drops it if
            // the caller never comes back.
            self.arm_timer(r.deadline_ns);
        } else {
            self.remove_request(r);
        }
        let e = result?;
        let installed = match e.install_fds(&self.pool) {
            Ok(i) => i,
            Err(err) => {
                self.release_entry(e);
                return Err(err);
            }
        };
        self.pool.publish(e.offset, true)?;
        Ok(Published {
            offset: e.offset,
            size: e.size,
            return_flags: installed.return_flags(),
        })
    }

    /// Delivers a message this connection sends. Returns the reply of a
    /// synchronous call.
    pub(crate) fn send(
        &self,
        kmsg: &Kmsg,
        named: bool,
        sync: bool,
        cancel: Option<FileRef>,
    ) -> Result<Option<Published>> {
        let h = &kmsg.header;
        let bus = &self.ep.bus;
        if h.is_broadcast() {
            // No match database yet: only monitors receive broadcasts.
            self.copy_to_monitors(kmsg);
            return Ok(None);
        }
        if named {
            // No name registry yet: no name has an owner.
            return Err(ESRCH);
        }
        let dst = bus.find_conn(h.dst_id).ok_or(ENXIO)?;
        if !dst.is_ordinary() {
            return Err(ENXIO);
        }
        if h.is_signal() {
            // Unicast signals need a match at the receiver; there are none.
            self.copy_to_monitors(kmsg);
            return Ok(None);
        }
        if h.is_reply() {
            let r = dst
                .take_open_request(h.timeout_or_reply, self.id)
                .ok_or(EBADSLT)?;
            self.copy_to_monitors(kmsg);
            if !r.sync {
                r.close();
                return dst.queue(kmsg, None).map(|()| None);
            }
            let placed = dst.place(kmsg, false);
            let err = placed.as_ref().err().copied();
            let caller_err = |e| if e == ECOMM { EREMOTEIO } else { e };
            return match r.complete(placed.map_err(caller_err)) {
                Ok(()) => err.map_or(Ok(None), Err),
                Err(refused) => {
                    if let Ok(e) = refused {
                        dst.release_entry(e);
                    }
                    Err(ECONNRESET)
                }
            };
        }
        if h.expects_reply() {
            let deadline = h.timeout_or_reply;
            if sync && deadline <= reply::now_ns() {
                return Err(ETIMEDOUT);
            }
            let r = Reply::new(self.id, dst.id, h.cookie, deadline, sync)?;
            self.add_request(&r)?;
            self.copy_to_monitors(kmsg);
            if let Err(e) = dst.queue(kmsg, Some(r.clone())) {
                self.remove_request(&r);
                return Err(e);
            }
            if !sync {
                self.arm_timer(deadline);
                return Ok(None);
            }
            return self.wait_reply(&r, cancel).map(Some);
        }
        self.copy_to_monitors(kmsg);
        dst.queue(kmsg, None).map(|()| None)
    }

    /// The sender's description, for CONN_DESCRIPTION metadata.
    pub(crate) fn description(&self) -> Option<&[u8]> {
        self.description.as_deref()
    }

    /// The metadata this connection lets others see (`attach_flags_send`).
    pub(crate) fn attach_send(&self) -> u64 {
        self.inner.lock().attach_send
    }

    /// The accounting user of messages this connection sends.
    pub(crate) fn quota_uid(&self) -> u32 {
        self.charged_uid
    }

    // ---------------------------------------------------------------------
    // RECV (message.md 10).

    /// KDBUS_CMD_RECV. Returns the result and the lost-message count, which
    /// is reported (and reset) also when the queue has nothing to return.
    pub(crate) fn recv(&self, flags: u64, max_priority: i64) -> (Result<Published>, u64) {
        let drop_msg = flags & KDBUS_RECV_DROP as u64 != 0;
        let peek = flags & KDBUS_RECV_PEEK as u64 != 0 && !drop_msg;
        let use_prio = flags & KDBUS_RECV_USE_PRIORITY as u64 != 0;
        let mut dead_call = None;
        let mut g = self.inner.lock();
        let result = match g.select(use_prio, max_priority) {
            None => Err(EAGAIN),
            Some(i) if drop_msg => match kvec::remove(&mut g.queue, i) {
                Some(mut e) => {
                    g.uncharge_entry(&e);
                    self.pool.release_kernel(e.offset);
                    dead_call = e.reply.take();
                    Ok(Published {
                        offset: self.pool.size(),
                        size: 0,
                        return_flags: 0,
                    })
                }
                None => Err(EAGAIN),
            },
            Some(i) if peek => {
                let e = &g.queue[i];
                e.blank_fds(&self.pool)
                    .and_then(|()| self.pool.publish(e.offset, false))
                    .map(|()| Published {
                        offset: e.offset,
                        size: e.size,
                        return_flags: 0,
                    })
            }
            // Descriptors first: if that fails, the message stays queued.
            Some(i) => match g.queue[i].install_fds(&self.pool) {
                Err(e) => Err(e),
                Ok(installed) => match kvec::remove(&mut g.queue, i) {
                    Some(e) => {
                        g.uncharge_entry(&e);
                        let _ = self.pool.publish(e.offset, true);
                        Ok(Published {
                            offset: e.offset,
                            size: e.size,
                            return_flags: installed.return_flags(),
                        })
                    }
                    None => Err(EAGAIN),
                },
            },
        };
        let lost = if matches!(result, Ok(_) | Err(EAGAIN)) {
            core::mem::take(&mut g.lost)
        } else {
            0
        };
        drop(g);
        // A dropped call will never be answered (message.md 10.3).
        if let Some(r) = dead_call {
            if let Some(caller) = self.ep.bus.find_conn(r.caller_id) {
                if r.sync || caller.remove_request(&r) {
                    caller.resolve_dead(&r);
                }
            }
        }
        (result, lost)
    }

    /// Whether a message or a lost-message count is waiting (POLLIN).
    pub(crate) fn has_input(&self) -> bool {
        let g = self.inner.lock();
        !g.queue.is_empty() || g.lost != 0
    }

    // ---------------------------------------------------------------------
    // Other commands.

    /// KDBUS_CMD_FREE (pool.md 5).
    pub(crate) fn free(&self, offset: u64) -> Result {
        if offset == self.pool.size() {
            return Ok(());
        }
        self.pool.free_user(offset)
    }

    /// KDBUS_CMD_UPDATE (connection.md 5).
    pub(crate) fn update(&self, c: &Cmd<'_>) -> Result {
        let send = c.item(KDBUS_ITEM_ATTACH_FLAGS_SEND).is_some();
        let recv = c.item(KDBUS_ITEM_ATTACH_FLAGS_RECV).is_some();
        let policy =
            c.item(KDBUS_ITEM_NAME).is_some() || c.item(KDBUS_ITEM_POLICY_ACCESS).is_some();
        let activator = self.flags & KDBUS_HELLO_ACTIVATOR as u64 != 0;
        if (send && (activator || self.is_policy_holder()))
            || (recv && self.is_policy_holder())
            || (policy && !self.is_policy_holder())
        {
            return Err(EOPNOTSUPP);
        }
        let new_send = sanitized_attach(c, KDBUS_ITEM_ATTACH_FLAGS_SEND)?;
        let new_recv = sanitized_attach(c, KDBUS_ITEM_ATTACH_FLAGS_RECV)?;
        let mut g = self.inner.lock();
        if let Some(v) = new_send {
            g.attach_send = v;
        }
        if let Some(v) = new_recv {
            g.attach_recv = v;
        }
        Ok(())
    }

    /// KDBUS_CMD_BYEBYE (connection.md 9.1).
    pub(crate) fn byebye(&self) -> Result {
        if !self.is_ordinary() {
            return Err(EOPNOTSUPP);
        }
        {
            let g = self.inner.lock();
            if !self.is_active() {
                return Err(ECONNRESET);
            }
            if !g.queue.is_empty() {
                return Err(EBUSY);
            }
            // Deactivate under the lock: no message can slip in.
            self.active.store(false, Ordering::Release);
        }
        // BYEBYE runs under its own active reference.
        self.finish_disconnect(1);
        Ok(())
    }

    /// Disconnects (close, endpoint or bus teardown). Idempotent.
    pub(crate) fn disconnect(&self) {
        {
            let _g = self.inner.lock();
            if !self.is_active() {
                return;
            }
            self.active.store(false, Ordering::Release);
        }
        self.finish_disconnect(0);
    }

    /// The disconnect sequence after deactivation (connection.md 9.3);
    /// `own` is 1 when called from an ioctl on this connection.
    fn finish_disconnect(&self, own: u32) {
        let (queue, requests) = {
            let mut g = self.inner.lock();
            g.timer_deadline = None;
            (
                core::mem::take(&mut g.queue),
                core::mem::take(&mut g.requests),
            )
        };
        // 1: wake pollers and our own synchronous caller (ECONNRESET).
        self.wait.wake_up_all();
        for r in requests.iter() {
            r.kick();
        }
        // ... and wait until the other running ioctls are done.
        {
            let mut g = self.inner.lock();
            while g.ioctls > own {
                self.drained.wait(&mut g);
            }
        }
        // 2
        // SAFETY: the work item is initialised; we are inactive, so it is
        // not re-armed.
        unsafe { bindings::cancel_delayed_work_sync(self.timer.get()) };
        // 3
        let bus = &self.ep.bus;
        bus.unlink_conn(self);
        self.ep.unlink(self);
        // 5: queued messages are discarded; callers of queued calls are told
        // in step 7, once per call.
        for e in queue.into_iter() {
            self.release_entry(e);
        }
        drop(requests);
        // 7
        if let Ok(conns) = bus.conns() {
            for c in conns.iter() {
                for r in c.take_requests_to(self.id).iter() {
                    c.resolve_dead(r);
                }
            }
        }
        // 8
        if !self.is_monitor() {
            self.notify_id(KDBUS_ITEM_ID_REMOVE);
        }
        self.ep.bus.domain.uncharge(self.charged_uid, Charge::Conn);
    }
}
