//! The TALK check of unicasts between peers that own no names (policy.md
//! 5.2, 6): an ordinary connection may send a plain unicast or a call
//! (also synchronous, also with FDs) to a receiver only if the sending
//! task's effective UID equals the receiver's real UID (the UID that
//! opened the receiver's endpoint) or the sender is an owner connection
//! (opener's euid == the bus creator's euid, or CAP_IPC_OWNER); otherwise
//! EPERM. Replies to an open call are never checked. Other users run in
//! forked children with every id dropped; the buses are world-accessible.

use std::os::fd::{AsRawFd, RawFd};

use kdbus::consts::*;
use kdbus::{BusMaker, Connection, Control, Errno, MsgBuilder};

use super::sys::{self, become_user, Chan, ChildProc};
use super::util::{self, call, msg, reply};
use crate::check::{errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::{require_root, Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

/// The unprivileged user of the tests.
const UID: u32 = 65534;
const GID: u32 = 65534;
/// A second unprivileged user.
const UID2: u32 = 65533;
const GID2: u32 = 65533;

/// The unicasts a sender tries towards `dst`: `(what, message, SEND
/// flags)`. The synchronous call has a 300 ms deadline: when allowed it
/// is queued and times out (nobody answers).
fn attempts(dst: u64, fd: RawFd) -> Vec<(&'static str, MsgBuilder, u64)> {
    vec![
        ("plain unicast", msg(dst, 1, b"plain"), 0),
        ("call", call(dst, 2, 5000), 0),
        ("synchronous call", call(dst, 3, 300), SEND_SYNC_REPLY),
        ("unicast with an FD", msg(dst, 4, b"fd").fds(&[fd]), 0),
    ]
}

/// Every attempt towards `dst` must fail with EPERM.
fn expect_denied(s: &Connection, dst: u64, who: &str) -> TestResult {
    let ev = util::eventfd()?;
    for (what, m, flags) in attempts(dst, ev.as_raw_fd()) {
        expect_errno(&format!("{who}: {what}"), s.send(&m, flags), Errno::EPERM)?;
    }
    Ok(())
}

/// Every attempt towards `dst` must pass the TALK check (the synchronous
/// call then times out unanswered).
fn expect_allowed(s: &Connection, dst: u64, who: &str) -> TestResult {
    let ev = util::eventfd()?;
    for (what, m, flags) in attempts(dst, ev.as_raw_fd()) {
        let r = s.send(&m, flags);
        if flags & SEND_SYNC_REPLY != 0 {
            expect_errno(
                &format!("{who}: {what} (allowed, unanswered)"),
                r,
                Errno::ETIMEDOUT,
            )?;
        } else {
            expect_ok(&format!("{who}: {what}"), r)?;
        }
    }
    Ok(())
}

/// Receives the four attempts' messages from `src` at `r` (cookies 1-4 in
/// order) and closes the received FD.
fn expect_attempts_at(r: &Connection, src: u64, who: &str) -> TestResult {
    for cookie in 1..=4u64 {
        let got = util::recv(r, &format!("{who}: message {cookie}"))?;
        let m = util::parse(&got, who)?;
        ensure_eq!(
            (m.src_id, m.cookie),
            (src, cookie),
            "{who}: sender and cookie of message {cookie}"
        );
        util::close_fds(&m.fds().unwrap_or_default());
        expect_ok("FREE", got.free())?;
    }
    util::expect_empty(r, who)
}

/// A sender of another uid gets EPERM for every kind of unicast to root's
/// connection; the same sender may talk to a receiver of its own uid.
pub fn other_uid(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let r = expect_ok(
        "HELLO of root's receiver",
        Connection::hello(&ep, HELLO_ACCEPT_FD, 0, 0, POOL_SIZE),
    )?;
    let rid = r.id();
    sys::run_as(UID, GID, 20_000, || {
        let s = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        expect_denied(&s, rid, &format!("uid {UID} to root's connection"))?;
        let own = expect_ok(
            "HELLO of a receiver of the same uid",
            Connection::hello(&ep, HELLO_ACCEPT_FD, 0, 0, POOL_SIZE),
        )?;
        expect_allowed(&s, own.id(), &format!("uid {UID} to uid {UID}"))?;
        expect_attempts_at(&own, s.id(), "receiver of the same uid")
    })?;
    util::expect_empty(&r, "root's receiver after the refused unicasts")
}

/// Owner connections may talk to anybody: root (bus creator and
/// CAP_IPC_OWNER) to a connection of another uid, and a connection of
/// the uid that created the bus to root's connection; a third uid on that
/// bus is not an owner (EPERM).
pub fn owner(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    // Root owns the bus: root -> uid 65534.
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let o = ctx.hello_on(&ep)?;
    let oid = o.id();
    let id_chan = Chan::new()?;
    let go = Chan::new()?;
    let child = ChildProc::spawn(|| {
        become_user(UID, GID)?;
        let r = expect_ok(
            "HELLO",
            Connection::hello(&ep, HELLO_ACCEPT_FD, 0, 0, POOL_SIZE),
        )?;
        id_chan.put(r.id())?;
        go.get(20_000, "go")?;
        expect_attempts_at(&r, oid, &format!("uid {UID} receiving from root"))
    })?;
    let rid = id_chan.get(10_000, "receiver id of uid 65534")?;
    let sent = expect_allowed(&o, rid, &format!("root (owner) to uid {UID}"));
    go.put(1)?;
    let got = child.wait(20_000, &format!("uid {UID} receiver"));
    sent?;
    got?;

    // A bus made by uid 65534: its connections of that uid are owners.
    let name = format!("{UID}-{}", ctx.unique_suffix());
    let ep2 = kdbus::bus_path(&ctx.mount, &name);
    let mount = ctx.mount.clone();
    let ready = Chan::new()?;
    let rid_chan = Chan::new()?;
    let done = Chan::new()?;
    let finish = Chan::new()?;
    let maker = ChildProc::spawn(|| {
        become_user(UID, GID)?;
        let control = expect_ok("open control", Control::open(&mount))?;
        let _bus = expect_ok(
            &format!("BUS_MAKE {name} as uid {UID}"),
            BusMaker::new(name.clone())
                .flags(MAKE_ACCESS_WORLD)
                .make(control),
        )?;
        ready.put(1)?;
        let rid = rid_chan.get(10_000, "root's receiver id")?;
        let s = expect_ok("HELLO", Connection::hello(&ep2, 0, 0, 0, POOL_SIZE))?;
        let r = expect_allowed(&s, rid, &format!("uid {UID} (bus creator's euid) to root"));
        done.put(s.id())?;
        // Keep the bus until the parent is done with it.
        finish.get(30_000, "finish")?;
        r
    })?;
    ready.get(10_000, "bus made by uid 65534")?;
    let r = expect_ok(
        "HELLO of root's receiver on the bus of uid 65534",
        Connection::hello(&ep2, HELLO_ACCEPT_FD, 0, 0, POOL_SIZE),
    )?;
    rid_chan.put(r.id())?;
    let sid = done.get(15_000, "the owner's sends")?;
    let third = sys::run_as(UID2, GID2, 20_000, || {
        let s = expect_ok("HELLO", Connection::hello(&ep2, 0, 0, 0, POOL_SIZE))?;
        expect_denied(&s, r.id(), &format!("uid {UID2} (not an owner) to root"))
    });
    let received = expect_attempts_at(&r, sid, "root receiving from the bus creator's uid");
    finish.put(1)?;
    let made = maker.wait(20_000, &format!("bus of uid {UID}"));
    made?;
    third?;
    received
}

/// The callee of another uid may always answer a call (asynchronous or
/// synchronous), while its own unicasts and calls to the caller are
/// EPERM.
pub fn reply_allowed(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let p = ctx.hello_on(&ep)?;
    let pid = p.id();
    let id_chan = Chan::new()?;
    let child = ChildProc::spawn(|| {
        become_user(UID, GID)?;
        let r = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        id_chan.put(r.id())?;
        for (cookie, reply_cookie) in [(1u64, 10u64), (2, 11)] {
            util::expect_readable(&r, 10_000, &format!("call {cookie}"))?;
            super::reply::take_call(&r, pid, cookie)?;
            expect_ok(
                &format!("uid {UID}: reply to root's call {cookie}"),
                r.send(&reply(pid, cookie, reply_cookie), 0),
            )?;
            if cookie == 1 {
                expect_denied(&r, pid, &format!("uid {UID} (callee) to root"))?;
            }
        }
        Ok(())
    })?;
    let rid = id_chan.get(10_000, "callee id")?;
    let parent = (|| -> TestResult {
        util::send(&p, &call(rid, 1, 10_000), "call to uid 65534")?;
        util::expect_readable(&p, 10_000, "the reply of uid 65534")?;
        let got = util::recv(&p, "reply")?;
        let m = util::parse(&got, "reply")?;
        ensure_eq!(
            (m.src_id, m.cookie_reply()),
            (rid, 1),
            "sender and cookie_reply of the reply"
        );
        expect_ok("FREE", got.free())?;
        let r = expect_ok(
            "synchronous call to uid 65534",
            p.send_sync(&call(rid, 2, 5_000)),
        )?;
        let m = util::parse_at(&p, &r.reply, "synchronous reply")?;
        ensure_eq!(
            (m.src_id, m.cookie_reply()),
            (rid, 2),
            "sender and cookie_reply of the synchronous reply"
        );
        expect_ok("FREE of the synchronous reply", p.free(r.reply.offset))?;
        Ok(())
    })();
    let c = child.wait(25_000, &format!("uid {UID} callee"));
    c?;
    parent?;
    match p.recv(0, 0) {
        Err(Errno::EAGAIN) => Ok(()),
        Err(e) => Err(format!("RECV at the caller: {}", errno_name(e))),
        Ok(r) => {
            let m = util::parse(&r, "unexpected")?;
            ensure!(
                false,
                "the caller received a refused message: src {} cookie {}",
                m.src_id,
                m.cookie
            );
            Ok(())
        }
    }
}
