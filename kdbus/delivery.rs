// SPDX-License-Identifier: GPL-2.0

//! Delivery (spec: message.md 6-9, 12): SEND routing (by id, by name, to
//! activators, broadcasts, unicast signals), copies to monitors, kernel
//! notifications, and the one receiver primitive every path ends in,
//! [`Connection::place`] (plus [`Connection::queue`] for queued kinds).

use crate::bus::Bus;
use crate::connection::{Connection, Sender};
use crate::glue::poll::PollWatch;
use crate::glue::time;
use crate::message::Kmsg;
use crate::pool::Charge;
use crate::proto::errno::{
    Result, EADDRNOTAVAIL, EBADSLT, ECOMM, ECONNRESET, EMSGSIZE, ENXIO, EPERM, EREMCHG, EREMOTEIO,
    ESRCH, ETIMEDOUT,
};
use crate::proto::matching::Subject;
use crate::proto::msg;
use crate::queue::{Placed, Published, Queue, QueueSlot};
use crate::reply::Reply;
use crate::uapi::*;
use kernel::prelude::*;
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
        // Metadata (metadata.md 2-3): chosen for this receiver, collected
        // from the sending thread once per message, rendered for this
        // receiver's namespaces.
        let mask = kmsg.mask_for(self.attach_recv(), &self.consumer.pid_ns);
        let build = || -> Result<Placed> {
            kmsg.collect(mask)?;
            let head = kmsg.head(mask, self.cred.user_ns(), &self.consumer)?;
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
            let p = kmsg.header.priority;
            let placed = Placed::new(self.pool.clone(), offset, size, p, charge, files, kmsg.nfds);
            kmsg.write_into(&self.pool, offset, &head, size)?;
            Ok(placed)
        };
        // Collecting CMDLINE and copying the payload read the sender's
        // memory: both without its active reference, in one suspension.
        match from {
            Some(s) if kmsg.collect_reads_user_memory(mask) || kmsg.reads_user_memory() => {
                s.active.suspended(build)
            }
            _ => build(),
        }
    }

    /// Appends a placed message to the queue (message.md 7.3 step 6) and
    /// wakes pollers; `ECONNRESET` if the connection went away meanwhile.
    pub(crate) fn enqueue(&self, slot: QueueSlot, p: Placed) -> Result {
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

    /// Places and queues `kmsg`; `reply` is the tracker of a call,
    /// `name_id` the registration of the name it was addressed to (0: by
    /// id).
    pub(crate) fn queue(
        self: &Arc<Self>,
        kmsg: &Kmsg,
        from: Option<&mut Sender>,
        reply: Option<Arc<Reply>>,
        name_id: u64,
    ) -> Result {
        let slot = Queue::reserve()?;
        let mut p = self.place(kmsg, from, true)?;
        p.reply = reply;
        p.name_id = name_id;
        self.enqueue(slot, p)
    }

    /// Takes over a message queued at another connection (activator
    /// hand-over, names.md 6.3): copied into this pool and queued.
    pub(crate) fn requeue(self: &Arc<Self>, p: Placed) -> Result {
        if !self.is_monitor() && !self.accepts_fds() && p.has_fds() {
            return Err(ECOMM);
        }
        let slot = Queue::reserve()?;
        let p = p.copy_to(&self.pool)?;
        self.enqueue(slot, p)
    }

    /// Removes the oldest queued message addressed to name registration
    /// `name_id`, to be moved elsewhere.
    pub(crate) fn take_named(&self, name_id: u64) -> KVec<Placed> {
        let mut out = KVec::new();
        loop {
            let next = self.inner.lock().queue.take_named(name_id);
            match next {
                Some(p) => {
                    if let Err(kernel::alloc::AllocError) = out.push(p, crate::glue::gfp()) {
                        // Nowhere to keep it: it is lost to the new holder.
                        continue;
                    }
                }
                None => break,
            }
        }
        out
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
            let _ = self.queue(&k, None, None, 0);
        }
    }

    /// Queues an ID_ADD or ID_REMOVE notification about this connection for
    /// the bus's next flush. Callers hold the registry lock (ordering).
    pub(crate) fn notify_id(&self, ty: u32) {
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&self.id.to_ne_bytes());
        payload[8..].copy_from_slice(&self.flags.to_ne_bytes());
        let bus = &self.ep.bus;
        if let Ok(k) = Kmsg::notification(ty, &payload, msg::DST_BROADCAST, 0, bus.next_seq()) {
            bus.queue_notification(k);
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
        if m.queue(kmsg, from.as_deref_mut(), None, 0).is_err() {
            if let Some(s) = &from {
                s.conn().check_active()?;
            }
            m.count_lost();
        }
    }
    Ok(())
}

/// TALK for a unicast or call (policy.md 5.2, 6): the sender, with the
/// sending task's credentials, to the receiver.
fn may_talk(s: &Sender, dst: &Connection) -> bool {
    s.conn().may_talk_to(&s.cred, dst)
}

/// TALK for a signal: the receiver, with its connection's credentials, to
/// the sender (policy.md 6).
fn receiver_may_talk(rcv: &Connection, sender: &Connection) -> bool {
    rcv.may_talk_to(&rcv.cred, sender)
}

/// Where a unicast goes.
struct Dest {
    conn: Arc<Connection>,
    /// Registration id of the destination name (0: by id).
    name_id: u64,
}

/// Resolves a unicast's destination (message.md 6).
fn resolve(bus: &Bus, kmsg: &Kmsg, name: Option<&[u8]>) -> Result<Dest> {
    let h = &kmsg.header;
    let Some(name) = name else {
        let conn = bus.find_conn(h.dst_id).ok_or(ENXIO)?;
        if !conn.is_ordinary() {
            return Err(ENXIO);
        }
        return Ok(Dest { conn, name_id: 0 });
    };
    let t = bus.resolve_name(name)?;
    if h.dst_id != 0 && h.dst_id != t.owner {
        return Err(EREMCHG);
    }
    if t.activator && h.flags & KDBUS_MSG_NO_AUTO_START as u64 != 0 {
        return Err(EADDRNOTAVAIL);
    }
    let conn = bus.find_conn(t.owner).ok_or(ESRCH)?;
    Ok(Dest {
        conn,
        name_id: t.name_id,
    })
}

/// Routes a message sent by `s` (message.md 6-9). `name`: the DST_NAME.
/// Returns the reply of a synchronous call, which waits for it (`watch`:
/// its CANCEL_FD).
pub(crate) fn send(
    s: &mut Sender,
    kmsg: &Kmsg,
    name: Option<&[u8]>,
    sync: bool,
    watch: Option<&PollWatch>,
) -> Result<Option<Published>> {
    let conn = s.conn().clone();
    let bus = &conn.ep.bus;
    let h = &kmsg.header;
    if h.is_broadcast() {
        return broadcast(s, kmsg).map(|()| None);
    }
    // A synchronous call already past its deadline is not sent at all
    // (message.md 8.2 step 2, before resolution).
    if sync && h.expects_reply() && h.timeout_or_reply <= time::monotonic_ns() {
        return Err(ETIMEDOUT);
    }
    if h.is_signal() {
        let dst = resolve(bus, kmsg, name)?;
        unicast_signal(s, kmsg, &dst.conn)?;
        return Ok(None);
    }
    if h.is_reply() {
        let dst = resolve(bus, kmsg, name)?;
        return reply(s, &dst.conn, kmsg).map(|()| None);
    }
    let dst = resolve(bus, kmsg, name)?;
    if !may_talk(s, &dst.conn) {
        return Err(EPERM);
    }
    let tracker = match h.expects_reply() {
        true => {
            Some(conn.open_request(dst.conn.id, dst.name_id, h.cookie, h.timeout_or_reply, sync)?)
        }
        false => None,
    };
    let queued = (|| {
        copy_to_monitors(bus, kmsg, Some(s))?;
        let slot = Queue::reserve()?;
        let mut p = dst.conn.place(kmsg, Some(s), true)?;
        p.reply = tracker.clone();
        p.name_id = dst.name_id;
        match name {
            None => dst.conn.enqueue(slot, p),
            // The copy ran without locks: the name may have moved on.
            Some(n) => {
                let no_auto_start = h.flags & KDBUS_MSG_NO_AUTO_START as u64 != 0;
                bus.enqueue_named(n, s, no_auto_start, &dst.conn, slot, p)
            }
        }
    })();
    if let Err(e) = queued {
        if let Some(r) = &tracker {
            conn.remove_request(r);
        }
        return Err(e);
    }
    let Some(r) = tracker else {
        return Ok(None);
    };
    if !sync {
        conn.arm_timer(h.timeout_or_reply);
        return Ok(None);
    }
    conn.wait_reply(s, &r, watch).map(Some)
}

/// A broadcast signal (message.md 9.1): to the monitors first, then to
/// every ordinary connection (the sender included) whose matches accept it
/// and which may talk to the sender. Losses count at the receivers.
fn broadcast(s: &mut Sender, kmsg: &Kmsg) -> Result {
    let sender = s.conn().clone();
    let bus = &sender.ep.bus;
    copy_to_monitors(bus, kmsg, Some(s))?;
    // NAME rules see the sender's names as they are now.
    let names = bus.owned_names(&sender)?;
    let owns = |n: &[u8]| names.iter().any(|(_, x)| x.name.as_slice() == n);
    let subject = Subject::User {
        src: sender.id,
        dst_id: msg::DST_BROADCAST,
        bloom: kmsg.bloom(),
    };
    let mut next = 0;
    while let Some(c) = bus.conn_after(next) {
        next = c.id;
        if !c.is_ordinary() || !c.matches(&subject, owns) || !receiver_may_talk(&c, &sender) {
            continue;
        }
        if c.queue(kmsg, Some(s), None, 0).is_err() {
            sender.check_active()?;
            c.count_lost();
        }
    }
    Ok(())
}

/// A unicast signal (message.md 7.1-7.2): copied to the monitors, then
/// queued only if the receiver's matches accept it and it may talk to the
/// sender; queueing errors are ignored, and not counted as lost.
fn unicast_signal(s: &mut Sender, kmsg: &Kmsg, dst: &Arc<Connection>) -> Result {
    let sender = s.conn().clone();
    let bus = &sender.ep.bus;
    copy_to_monitors(bus, kmsg, Some(s))?;
    if !dst.is_ordinary() || !receiver_may_talk(dst, &sender) {
        return Ok(());
    }
    let names = bus.owned_names(&sender)?;
    let owns = |n: &[u8]| names.iter().any(|(_, x)| x.name.as_slice() == n);
    let subject = Subject::User {
        src: sender.id,
        dst_id: kmsg.header.dst_id,
        bloom: kmsg.bloom(),
    };
    if dst.matches(&subject, owns) {
        let r = dst.queue(kmsg, Some(s), None, 0);
        if r.is_err() {
            sender.check_active()?;
        }
    }
    Ok(())
}

/// A reply (message.md 7.2): no policy; the caller's open window decides.
fn reply(s: &mut Sender, caller: &Arc<Connection>, kmsg: &Kmsg) -> Result {
    let replier = s.conn().id;
    let r = caller
        .take_open_request(kmsg.header.timeout_or_reply, replier)
        .ok_or(EBADSLT)?;
    copy_to_monitors(&caller.ep.bus, kmsg, Some(s))?;
    if !r.sync {
        return caller.queue(kmsg, Some(s), None, 0);
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
