// SPDX-License-Identifier: GPL-2.0

//! Delivery (spec: message.md 6-9, 12): SEND routing, copies to monitors,
//! kernel notifications, and the one receiver primitive every path ends in,
//! [`Connection::place`] (plus [`Connection::queue`] for queued kinds).
//!
//! Routing today: by id; broadcasts and unicast signals reach monitors only
//! (no match database yet), names have no owners yet. The name registry,
//! matches and policy plug in here.

use crate::bus::Bus;
use crate::connection::{Connection, Sender};
use crate::glue::poll::PollWatch;
use crate::glue::time;
use crate::message::Kmsg;
use crate::pool::Charge;
use crate::proto::errno::{
    Result, EBADSLT, ECOMM, ECONNRESET, EMSGSIZE, ENXIO, EPERM, EREMOTEIO, ESRCH, ETIMEDOUT,
};
use crate::proto::msg;
use crate::queue::{Placed, Published, Queue, QueueSlot};
use crate::reply::Reply;
use kernel::sync::Arc;

impl Connection {
    /// The receiver primitive (message.md 7.3 steps 1-5): checks that this
    /// connection can take `kmsg`, allocates a slice in its pool (with
    /// `accounted`, after the receive quota of the message's user allowed
    /// it) and writes the message there: header, items, the metadata this
    /// receiver asked for, and the payload copied straight from the
    /// sender's memory (without the sender's active reference: the copy may
    /// stall on a userfaultfd or FUSE page). The result owns the slice.
    pub(crate) fn place(
        self: &Arc<Self>,
        kmsg: &Kmsg,
        from: Option<&mut Sender>,
        accounted: bool,
    ) -> Result<Placed> {
        if !self.is_active() {
            return Err(ECONNRESET);
        }
        if !self.is_monitor() && !self.accepts_fds() && kmsg.has_fds() {
            return Err(ECOMM);
        }
        let head = kmsg.head(self.attach_recv())?;
        let want = msg::slice_size(head.msg_size, kmsg.payload_size).ok_or(EMSGSIZE)?;
        let charge = accounted.then_some(Charge {
            uid: kmsg.quota_uid,
            size: want,
            nfds: kmsg.nfds,
        });
        let (offset, size) = self.pool.alloc(want, charge)?;
        let files = match kmsg.files_at(offset) {
            Ok(f) => f,
            Err(e) => {
                self.pool.release(offset, charge);
                return Err(e);
            }
        };
        let placed = Placed::new(
            self.pool.clone(),
            offset,
            size,
            kmsg.header.priority,
            charge,
            files,
        );
        let write = || kmsg.write_into(&self.pool, offset, &head, size);
        match from {
            Some(s) if kmsg.reads_user_memory() => s.active.suspended(write)?,
            _ => write()?,
        }
        Ok(placed)
    }

    /// Appends a placed message to the queue (message.md 7.3 step 6) and
    /// wakes pollers; `ECONNRESET` if the connection went away meanwhile.
    fn enqueue(&self, slot: QueueSlot, p: Placed) -> Result {
        let mut g = self.inner.lock();
        if !self.is_active() {
            drop(g);
            drop(p);
            return Err(ECONNRESET);
        }
        g.queue.push(slot, p);
        drop(g);
        self.wait.notify_all();
        Ok(())
    }

    /// Places and queues `kmsg`; `reply` is the tracker of a call.
    pub(crate) fn queue(
        self: &Arc<Self>,
        kmsg: &Kmsg,
        from: Option<&mut Sender>,
        reply: Option<Arc<Reply>>,
    ) -> Result {
        let slot = Queue::reserve()?;
        let mut p = self.place(kmsg, from, true)?;
        p.reply = reply;
        self.enqueue(slot, p)
    }

    /// Counts a broadcast or monitor copy this connection could not take.
    pub(crate) fn count_lost(&self) {
        let mut g = self.inner.lock();
        g.lost = g.lost.saturating_add(1);
        drop(g);
        self.wait.notify_all();
    }

    /// Queues a REPLY_TIMEOUT or REPLY_DEAD notification for `cookie` to
    /// this (calling) connection, after copies to the monitors; failures
    /// are ignored (message.md 12).
    pub(crate) fn notify_reply(self: &Arc<Self>, ty: u32, cookie: u64) {
        let bus = &self.ep.bus;
        if let Ok(k) = Kmsg::notification(ty, &[], self.id, cookie, bus.next_seq()) {
            let _ = copy_to_monitors(bus, &k, None);
            let _ = self.queue(&k, None, None);
        }
    }

    /// Broadcasts an ID_ADD or ID_REMOVE notification about this
    /// connection. Without a match database yet, only monitors receive it.
    /// Callers hold `Bus::announce`.
    pub(crate) fn notify_id(&self, ty: u32) {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&self.id.to_ne_bytes());
        payload[8..].copy_from_slice(&self.flags.to_ne_bytes());
        let bus = &self.ep.bus;
        let seq = bus.next_seq();
        if let Ok(k) = Kmsg::notification(ty, &payload, msg::DST_BROADCAST, 0, seq) {
            let _ = copy_to_monitors(bus, &k, None);
        }
    }
}

/// Queues `kmsg` to every monitor of `bus`; a copy that fails counts as lost
/// there (message.md 10.4). Fails only if the sender itself was
/// disconnected meanwhile.
pub(crate) fn copy_to_monitors(bus: &Bus, kmsg: &Kmsg, mut from: Option<&mut Sender>) -> Result {
    let mut next = 0;
    while let Some(m) = bus.monitor_after(next) {
        next = m.id;
        if m.queue(kmsg, from.as_deref_mut(), None).is_err() {
            if let Some(s) = &from {
                s.conn().check_active()?;
            }
            m.count_lost();
        }
    }
    Ok(())
}

/// The interim TALK rule (policy.md 5.2 without names or a policy database):
/// owner connections may talk to anyone, others only to connections opened
/// by a user whose real uid is the sending task's effective uid.
fn may_talk(s: &Sender, dst: &Connection) -> bool {
    s.conn().owner || s.cred.euid() == dst.uid
}

/// Routes a message sent by `s` (message.md 6-9). `named`: addressed by
/// DST_NAME. Returns the reply of a synchronous call, which waits for it
/// (`watch`: its CANCEL_FD).
pub(crate) fn send(
    s: &mut Sender,
    kmsg: &Kmsg,
    named: bool,
    sync: bool,
    watch: Option<&PollWatch>,
) -> Result<Option<Published>> {
    let conn = s.conn().clone();
    let bus = &conn.ep.bus;
    let h = &kmsg.header;
    if h.is_broadcast() {
        // No match database yet: only monitors receive broadcasts.
        copy_to_monitors(bus, kmsg, Some(s))?;
        return Ok(None);
    }
    // A synchronous call already past its deadline is not sent at all
    // (message.md 8.2 step 2, before resolution).
    if sync && h.expects_reply() && h.timeout_or_reply <= time::monotonic_ns() {
        return Err(ETIMEDOUT);
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
        copy_to_monitors(bus, kmsg, Some(s))?;
        return Ok(None);
    }
    if h.is_reply() {
        return reply(s, &dst, kmsg).map(|()| None);
    }
    if !may_talk(s, &dst) {
        return Err(EPERM);
    }
    if h.expects_reply() {
        return call(s, &dst, kmsg, sync, watch);
    }
    copy_to_monitors(bus, kmsg, Some(s))?;
    dst.queue(kmsg, Some(s), None).map(|()| None)
}

/// A reply (message.md 7.2): no policy; the caller's open window decides.
fn reply(s: &mut Sender, caller: &Arc<Connection>, kmsg: &Kmsg) -> Result {
    let replier = s.conn().id;
    let r = caller
        .take_open_request(kmsg.header.timeout_or_reply, replier)
        .ok_or(EBADSLT)?;
    copy_to_monitors(&caller.ep.bus, kmsg, Some(s))?;
    if !r.sync {
        return caller.queue(kmsg, Some(s), None);
    }
    // Handed to the blocked caller, never queued (message.md 8.2 step 5).
    let placed = caller.place(kmsg, Some(s), false);
    let err = placed.as_ref().err().copied();
    let for_caller = placed.map_err(|e| if e == ECOMM { EREMOTEIO } else { e });
    match caller.complete_sync(&r, for_caller) {
        Ok(()) => err.map_or(Ok(()), Err),
        Err(refused) => {
            drop(refused);
            Err(ECONNRESET)
        }
    }
}

/// A call (message.md 7.2, 8): a reply tracker, copies to monitors, queued
/// at the callee; a synchronous caller then waits for the reply.
fn call(
    s: &mut Sender,
    dst: &Arc<Connection>,
    kmsg: &Kmsg,
    sync: bool,
    watch: Option<&PollWatch>,
) -> Result<Option<Published>> {
    let conn = s.conn().clone();
    let h = &kmsg.header;
    let deadline = h.timeout_or_reply;
    let r = conn.open_request(dst.id, h.cookie, deadline, sync)?;
    if let Err(e) = copy_to_monitors(&conn.ep.bus, kmsg, Some(s)) {
        conn.remove_request(&r);
        return Err(e);
    }
    if let Err(e) = dst.queue(kmsg, Some(s), Some(r.clone())) {
        conn.remove_request(&r);
        return Err(e);
    }
    if !sync {
        conn.arm_timer(deadline);
        return Ok(None);
    }
    conn.wait_reply(s, &r, watch).map(Some)
}
