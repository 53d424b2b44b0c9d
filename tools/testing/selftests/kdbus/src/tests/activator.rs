//! Activators (names.md 6, connection.md 3.2 steps 16-19): registration at
//! HELLO, what an activator may do, messages queued at it, the hand-over of
//! queued messages and reply trackers to an implementer and back, and the
//! notifications of each step.

use kdbus::consts::*;
use kdbus::{CmdBuf, Errno, MatchRule, MsgBuilder};

use super::util::{
    self, acquire, expect_notifications, expect_records, id_add, id_remove, msg, name_add,
    name_change, name_remove, send, send_err, to_name, try_activator, watcher,
};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const N: &str = "org.example.Activatable";
const ACT: u64 = NAME_ACTIVATOR;
const PRIMARY: u64 = NAME_PRIMARY;
const IN_QUEUE: u64 = NAME_IN_QUEUE;
const ACQUIRED: u64 = NAME_ACQUIRED;
/// HELLO flags of the activators made by `util::activator`.
const ACT_HELLO: u64 = HELLO_ACTIVATOR | HELLO_ACCEPT_FD;

/// An activator registering for an unowned name becomes its owner:
/// ID_ADD, then NAME_ADD(0/0 -> act/ACTIVATOR|PRIMARY); a second
/// activator for the name is EEXIST; an activator for a name someone owns
/// waits (ACTIVATOR|IN_QUEUE) without a notification; invalid and
/// wildcard names are EINVAL.
pub fn hello(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let act = util::activator(ctx, N)?;
    // (Their order is checked by activator-hello-order.)
    util::expect_notification_set(
        &w,
        &[
            id_add(act.id(), ACT_HELLO),
            name_add(N, (act.id(), ACT | PRIMARY)),
        ],
        "activator HELLO",
    )?;
    expect_records(&w, N, &[(act.id(), ACT | PRIMARY)], "activator in charge")?;
    ensure_eq!(util::owner_of(&w, N)?, Some(act.id()), "CONN_INFO by name");
    match try_activator(ctx, N, 0) {
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("second activator: expected EEXIST, got {e:?}")),
        Ok(c) => return Err(format!("second activator for {N} accepted as {}", c.id())),
    }
    // The failed HELLO may have been visible for a moment (connection.md
    // 3.2 step 21): either nothing or an ID_ADD/ID_REMOVE pair.
    let mut extra = Vec::new();
    while let Ok(r) = w.recv(0, 0) {
        let m = util::parse(&r, "after the refused activator")?;
        extra.push(util::check_notification(&m, &r.info(), "after EEXIST")?);
        expect_ok("FREE", r.free())?;
    }
    crate::check::diag(format!(
        "refused activator HELLO produced {} notification(s)",
        extra.len()
    ));
    match extra.as_slice() {
        [] => {}
        [kdbus::Notification::IdAdd(a), kdbus::Notification::IdRemove(b)]
            if a.id == b.id && a.flags == HELLO_ACTIVATOR && b.flags == HELLO_ACTIVATOR => {}
        other => {
            return Err(format!(
            "refused activator HELLO: expected no notification or ID_ADD+ID_REMOVE, got {other:?}"
        ))
        }
    }
    expect_records(&w, N, &[(act.id(), ACT | PRIMARY)], "after EEXIST")?;

    // Behind an ordinary owner: queued, silent.
    let o = ctx.hello()?;
    let m = "org.example.Owned";
    acquire(&o, m, 0, PRIMARY | ACQUIRED, "o acquires")?;
    let act2 = util::activator(ctx, m)?;
    expect_notifications(
        &w,
        &[
            id_add(o.id(), 0),
            name_add(m, (o.id(), PRIMARY)),
            id_add(act2.id(), ACT_HELLO),
        ],
        "activator behind an owner",
    )?;
    expect_records(
        &w,
        m,
        &[(o.id(), PRIMARY), (act2.id(), ACT | IN_QUEUE)],
        "activator waiting",
    )?;
    ensure_eq!(util::owner_of(&w, m)?, Some(o.id()), "owner stays o");
    // When o releases with nobody queued the waiting activator takes the
    // name, with the messages addressed to it that o had not received.
    let s = ctx.hello()?;
    send(&s, &to_name(m, 1, b"for o"), "by name to o")?;
    send(&s, &msg(o.id(), 2, b"by id"), "by ID to o")?;
    expect_ok("o releases", o.name_release(m))?;
    expect_notifications(
        &w,
        &[
            id_add(s.id(), 0),
            name_change(m, (o.id(), PRIMARY), (act2.id(), ACT | PRIMARY)),
        ],
        "owner releases to the waiting activator",
    )?;
    let r = util::recv_flags(&act2, RECV_PEEK, 0, "activator PEEK")?;
    ensure_eq!(
        util::parse(&r, "PEEK")?.cookie,
        1,
        "the message by name moved to the activator"
    );
    ensure_eq!(
        util::recv_data(&o, s.id(), 2, "o's by-ID message")?,
        b"by id".to_vec(),
        "by-ID message stays"
    );
    util::expect_empty(&o, "o after the release")?;

    for bad in ["a", "a..b", "1a.b", "*", "a.*.b", "org.example.**"] {
        match try_activator(ctx, bad, 0) {
            Err(Errno::EINVAL) => {}
            other => {
                return Err(format!(
                    "activator for {bad:?}: expected EINVAL, got {:?}",
                    other.map(|c| c.id())
                ))
            }
        }
    }
    // (A refused HELLO after step 15 may show up as ID_ADD+ID_REMOVE.)
    while let Ok(r) = w.recv(0, 0) {
        let m = util::parse(&r, "after invalid activators")?;
        match util::check_notification(&m, &r.info(), "after invalid activators")? {
            kdbus::Notification::IdAdd(_) | kdbus::Notification::IdRemove(_) => {}
            other => return Err(format!("invalid activator HELLO produced {other:?}")),
        }
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// The HELLO of an activator for an unowned name queues ID_ADD (step 16)
/// and then NAME_ADD (step 17); both are flushed in that order (step 18,
/// message.md 11): ID_ADD first, with the smaller seqnum.
pub fn hello_order(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let act = util::activator(ctx, N)?;
    expect_notifications(
        &w,
        &[
            id_add(act.id(), ACT_HELLO),
            name_add(N, (act.id(), ACT | PRIMARY)),
        ],
        "activator HELLO (connection.md 3.2 steps 16-18)",
    )?;
    Ok(())
}

/// A trailing `.*` passes HELLO's name check (step 6, for policy
/// holders), but an activator with a wildcard name fails with EINVAL
/// (connection.md 3.2 step 19, names.md 2: wildcards only in policy
/// names) and registers nothing.
pub fn hello_wildcard(ctx: &Ctx) -> TestResult {
    let w = ctx.hello()?;
    for name in ["org.example.*", "org.*"] {
        match try_activator(ctx, name, 0) {
            Err(Errno::EINVAL) => {}
            Err(e) => {
                return Err(format!(
                    "activator for {name:?}: expected EINVAL, got {e:?}"
                ))
            }
            Ok(c) => {
                let recs = util::name_records(&w, name)?;
                return Err(format!(
                    "activator for {name:?}: expected EINVAL, got a connection ({}); LIST shows the records {recs:x?} for the name",
                    c.id()
                ));
            }
        }
        ensure_eq!(util::name_records(&w, name)?, vec![], "records of {name}");
    }
    Ok(())
}

/// An activator cannot be addressed by ID (ENXIO), cannot SEND, acquire or
/// release names, add or remove matches or say BYEBYE (EOPNOTSUPP); it can
/// RECV, FREE and UPDATE its receive mask. NO_AUTO_START to its name is
/// EADDRNOTAVAIL; to an ordinary owner it is delivered.
pub fn restrictions(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    send_err(
        &a,
        &msg(act.id(), 1, b"x"),
        Errno::ENXIO,
        "SEND by ID to an activator",
    )?;
    send_err(
        &act,
        &msg(a.id(), 1, b"x"),
        Errno::EOPNOTSUPP,
        "SEND by an activator",
    )?;
    expect_errno(
        "NAME_ACQUIRE by an activator",
        act.name_acquire("org.example.Other", 0).map(drop),
        Errno::EOPNOTSUPP,
    )?;
    expect_errno(
        "NAME_RELEASE by an activator",
        act.name_release(N),
        Errno::EOPNOTSUPP,
    )?;
    expect_errno(
        "MATCH_ADD by an activator",
        act.match_add(&MatchRule::new(1)),
        Errno::EOPNOTSUPP,
    )?;
    expect_errno(
        "MATCH_REMOVE by an activator",
        act.match_remove(1),
        Errno::EOPNOTSUPP,
    )?;
    expect_errno("BYEBYE by an activator", act.byebye(), Errno::EOPNOTSUPP)?;
    expect_ok(
        "UPDATE of the receive mask by an activator",
        act.update(None, Some(ATTACH_TIMESTAMP)),
    )?;
    expect_errno(
        "UPDATE of the send mask by an activator",
        act.update(Some(0), None),
        Errno::EOPNOTSUPP,
    )?;
    util::expect_empty(&act, "activator before any message")?;
    expect_ok(
        "FREE of the activator's HELLO slice",
        act.free(act.hello_reply().offset),
    )?;

    send_err(
        &a,
        &to_name(N, 2, b"x").flags(MSG_NO_AUTO_START),
        Errno::EADDRNOTAVAIL,
        "NO_AUTO_START to an activator's name",
    )?;
    send_err(
        &a,
        &util::call(0, 3, 5000)
            .dst_name(N)
            .flags(MSG_EXPECT_REPLY | MSG_NO_AUTO_START),
        Errno::EADDRNOTAVAIL,
        "NO_AUTO_START call to an activator's name",
    )?;
    util::expect_empty(&act, "after NO_AUTO_START")?;
    let b = ctx.hello()?;
    acquire(&b, "org.example.Running", 0, PRIMARY | ACQUIRED, "b")?;
    send(
        &a,
        &to_name("org.example.Running", 4, b"x").flags(MSG_NO_AUTO_START),
        "NO_AUTO_START to an ordinary owner",
    )?;
    ensure_eq!(
        util::recv_data(&b, a.id(), 4, "NO_AUTO_START message")?,
        b"x".to_vec(),
        "payload"
    );
    // Addressed by name with the activator's ID as dst_id: accepted
    // (EREMCHG only for a different ID).
    send(
        &a,
        &to_name(N, 5, b"y").dst_id(act.id()),
        "by name with the activator's ID",
    )?;
    send_err(
        &a,
        &to_name(N, 6, b"y").dst_id(b.id()),
        Errno::EREMCHG,
        "by name with another ID",
    )?;
    let r = util::recv_flags(&act, RECV_PEEK, 0, "activator PEEK")?;
    let m = util::parse(&r, "activator PEEK")?;
    ensure_eq!(
        (m.src_id, m.cookie, m.dst_id),
        (a.id(), 5, act.id()),
        "message at the activator (src, cookie, dst_id as sent)"
    );
    expect_ok("FREE of the peeked slice", r.free())?;
    // An activator may DROP.
    let d = util::recv_flags(&act, RECV_DROP, 0, "DROP by the activator")?;
    ensure!(
        d.info().is_empty_marker(act.pool_size()),
        "DROP result {:?}",
        d.info()
    );
    util::expect_empty(&act, "after the DROP")
}

/// Messages to the name queue at the activator (PEEK shows them and leaves
/// them queued); an implementer acquiring the name takes them over in
/// order (calls with their reply trackers: it can answer a call sent while
/// the activator held the name), emits NAME_CHANGE(act/ACTIVATOR|PRIMARY
/// -> impl/PRIMARY) and leaves the activator ACTIVATOR|IN_QUEUE with an
/// empty queue. Messages the implementer got by ID stay first.
pub fn handover(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let s1 = ctx.hello()?;
    let s2 = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let imp = ctx.hello()?;
    expect_notifications(&w, &[name_add(N, (act.id(), ACT | PRIMARY))], "act")?;
    send(&s1, &to_name(N, 11, b"one"), "s1 by name")?;
    send(&s2, &to_name(N, 12, b"two"), "s2 by name")?;
    send(
        &s1,
        &util::call(0, 13, 60_000).dst_name(N),
        "s1 call by name",
    )?;
    send(&s2, &to_name(N, 14, b"four"), "s2 by name")?;
    send(&s1, &msg(imp.id(), 10, b"by id"), "s1 by ID to imp")?;
    // PEEK twice: the same first message, still queued.
    let p1 = util::recv_flags(&act, RECV_PEEK, 0, "PEEK")?;
    let m = util::parse(&p1, "PEEK")?;
    ensure_eq!(
        (m.src_id, m.cookie, m.dst_id),
        (s1.id(), 11, 0),
        "first queued message at the activator"
    );
    let p2 = util::recv_flags(&act, RECV_PEEK, 0, "second PEEK")?;
    ensure_eq!(p2.offset(), p1.offset(), "second PEEK offset");

    acquire(&imp, N, 0, PRIMARY | ACQUIRED, "implementer acquires")?;
    expect_notifications(
        &w,
        &[name_change(
            N,
            (act.id(), ACT | PRIMARY),
            (imp.id(), PRIMARY),
        )],
        "take-over",
    )?;
    expect_records(
        &w,
        N,
        &[(act.id(), ACT | IN_QUEUE), (imp.id(), PRIMARY)],
        "after take-over",
    )?;
    ensure_eq!(util::owner_of(&w, N)?, Some(imp.id()), "owner");
    util::expect_empty(&act, "activator after the hand-over")?;
    // The slice the activator had published by PEEK stays until FREE.
    let m = util::parse(&p1, "peeked slice after the hand-over")?;
    ensure_eq!(m.cookie, 11, "peeked slice still readable");
    expect_ok("FREE of the peeked slice after the hand-over", p1.free())?;
    expect_errno("second FREE of the peeked slice", p1.free(), Errno::ENXIO)?;
    ensure_eq!(
        util::recv_data(&imp, s1.id(), 10, "the message sent by ID")?,
        b"by id".to_vec(),
        "by-ID message first"
    );
    for (src, cookie, data) in [
        (s1.id(), 11, &b"one"[..]),
        (s2.id(), 12, &b"two"[..]),
        (s1.id(), 13, &b"call"[..]),
        (s2.id(), 14, &b"four"[..]),
    ] {
        let what = format!("moved message {cookie}");
        let r = util::recv(&imp, &what)?;
        let m = util::parse(&r, &what)?;
        ensure_eq!(
            (m.src_id, m.cookie, m.dst_id),
            (src, cookie, 0),
            "{what}: src, cookie, dst_id"
        );
        ensure_eq!(
            m.data().map_err(|e| format!("{what}: {e}"))?,
            data.to_vec(),
            "{what}: payload"
        );
        if cookie == 13 {
            ensure!(
                m.flags & MSG_EXPECT_REPLY != 0,
                "{what}: the call lost EXPECT_REPLY"
            );
        }
        expect_ok("FREE", r.free())?;
    }
    util::expect_empty(&imp, "implementer after the moved messages")?;
    // The call's tracker followed: the implementer can answer it.
    send(
        &imp,
        &util::reply(s1.id(), 13, 99),
        "reply by the implementer",
    )?;
    ensure_eq!(
        util::recv_data(&s1, imp.id(), 99, "the reply")?,
        b"reply".to_vec(),
        "reply payload"
    );
    util::expect_empty(&s1, "caller after the reply (no REPLY_DEAD)")
}

/// The name goes back to the activator when the implementer releases it
/// or disconnects with nobody queued: NAME_CHANGE(impl -> act/ACTIVATOR|
/// PRIMARY); messages addressed to the name that the implementer had not
/// received go back to the activator with their trackers (a second
/// implementer can answer the call). The activator disconnecting in
/// charge emits NAME_REMOVE; not in charge, nothing but ID_REMOVE.
pub fn name_back(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let s = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let i1 = ctx.hello()?;
    let i2 = ctx.hello()?;
    let (aid, i1id, i2id) = (act.id(), i1.id(), i2.id());
    // (The order of an activator's ID_ADD and NAME_ADD is checked by
    // activator-hello.)
    util::expect_notification_set(
        &w,
        &[
            id_add(s.id(), 0),
            id_add(aid, ACT_HELLO),
            name_add(N, (aid, ACT | PRIMARY)),
            id_add(i1id, 0),
            id_add(i2id, 0),
        ],
        "setup",
    )?;
    acquire(&i1, N, 0, PRIMARY | ACQUIRED, "i1 acquires")?;
    send(
        &s,
        &util::call(0, 21, 60_000).dst_name(N),
        "call by name to i1",
    )?;
    send(&s, &to_name(N, 22, b"later"), "message by name to i1")?;
    send(&s, &msg(i1id, 23, b"by id"), "message by ID to i1")?;
    expect_ok("i1 releases", i1.name_release(N))?;
    expect_notifications(
        &w,
        &[
            name_change(N, (aid, ACT | PRIMARY), (i1id, PRIMARY)),
            name_change(N, (i1id, PRIMARY), (aid, ACT | PRIMARY)),
        ],
        "take-over and give-back",
    )?;
    expect_records(&w, N, &[(aid, ACT | PRIMARY)], "activator in charge again")?;
    // Only the by-ID message stayed with i1.
    ensure_eq!(
        util::recv_data(&i1, s.id(), 23, "i1's by-ID message")?,
        b"by id".to_vec(),
        "by-ID payload"
    );
    util::expect_empty(&i1, "i1 after the give-back")?;
    let r = util::recv_flags(&act, RECV_PEEK, 0, "activator PEEK after give-back")?;
    let m = util::parse(&r, "PEEK")?;
    ensure_eq!(
        (m.src_id, m.cookie),
        (s.id(), 21),
        "the call is back at the activator"
    );
    // i1 can no longer answer the call.
    expect_errno(
        "reply by the implementer that gave the name back",
        i1.send(&util::reply(s.id(), 21, 1), 0).map(drop),
        Errno::EBADSLT,
    )?;
    // i2 takes it over and answers.
    acquire(&i2, N, 0, PRIMARY | ACQUIRED, "i2 acquires")?;
    let r = util::recv(&i2, "the call at i2")?;
    let m = util::parse(&r, "call at i2")?;
    ensure_eq!((m.src_id, m.cookie), (s.id(), 21), "first message at i2");
    expect_ok("FREE", r.free())?;
    ensure_eq!(
        util::recv_data(&i2, s.id(), 22, "second message at i2")?,
        b"later".to_vec(),
        "payload"
    );
    send(&i2, &util::reply(s.id(), 21, 77), "i2 replies")?;
    ensure_eq!(
        util::recv_data(&s, i2id, 77, "the reply from i2")?,
        b"reply".to_vec(),
        "reply"
    );
    // i2 disconnects: back to the activator, NAME_CHANGE before ID_REMOVE.
    drop(i2);
    expect_notifications(
        &w,
        &[
            name_change(N, (aid, ACT | PRIMARY), (i2id, PRIMARY)),
            name_change(N, (i2id, PRIMARY), (aid, ACT | PRIMARY)),
            id_remove(i2id, 0),
        ],
        "i2 acquires, then closes",
    )?;
    // An activator not in charge leaves silently.
    let o = ctx.hello()?;
    let m2 = "org.example.Second";
    acquire(&o, m2, 0, PRIMARY | ACQUIRED, "o")?;
    let act2 = util::activator(ctx, m2)?;
    let a2id = act2.id();
    drop(act2);
    expect_notifications(
        &w,
        &[
            id_add(o.id(), 0),
            name_add(m2, (o.id(), PRIMARY)),
            id_add(a2id, ACT_HELLO),
            id_remove(a2id, ACT_HELLO),
        ],
        "activator not in charge leaves",
    )?;
    expect_ok("o releases", o.name_release(m2))?;
    expect_notifications(
        &w,
        &[name_remove(m2, (o.id(), PRIMARY))],
        "no activator left",
    )?;
    // The activator in charge leaves: NAME_REMOVE, then ID_REMOVE.
    drop(act);
    expect_notifications(
        &w,
        &[
            name_remove(N, (aid, ACT | PRIMARY)),
            id_remove(aid, ACT_HELLO),
        ],
        "activator in charge leaves",
    )?;
    ensure_eq!(util::owner_of(&w, N)?, None, "name after the activator");
    send_err(
        &s,
        &to_name(N, 30, b"x"),
        Errno::ESRCH,
        "by name afterwards",
    )
}

/// A moved message the implementer cannot take (FDs without ACCEPT_FD) is
/// discarded and counted as lost at the implementer (names.md 6.3); the
/// others still arrive in order.
pub fn move_lost(ctx: &Ctx) -> TestResult {
    let s = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let act = util::activator(ctx, N)?;
    let imp = ctx.hello()?; // no ACCEPT_FD
    let (rd, _wr) = util::pipe()?;
    send(
        &s,
        &to_name(N, 1, b"with fd").fds(&[std::os::fd::AsRawFd::as_raw_fd(&rd)]),
        "by name with an FD (activator accepts FDs)",
    )?;
    send(&s, &to_name(N, 2, b"plain"), "plain by name")?;
    acquire(
        &imp,
        N,
        0,
        PRIMARY | ACQUIRED,
        "implementer without ACCEPT_FD",
    )?;
    util::expect_empty(&act, "activator after the hand-over")?;
    let r = util::recv(&imp, "the plain message")?;
    let m = util::parse(&r, "plain message")?;
    ensure_eq!(m.cookie, 2, "first delivered message");
    ensure_eq!(
        (
            r.reply.dropped_msgs,
            r.reply.return_flags & RECV_RETURN_DROPPED_MSGS
        ),
        (1, RECV_RETURN_DROPPED_MSGS),
        "dropped_msgs and RETURN_DROPPED_MSGS after a discarded move"
    );
    expect_ok("FREE", r.free())?;
    let mut c = CmdBuf::recv(0, 0);
    expect_errno(
        "RECV on the empty queue",
        imp.recv_raw(&mut c),
        Errno::EAGAIN,
    )?;
    ensure_eq!(
        c.u64_at(kdbus::recv_off::DROPPED_MSGS),
        0,
        "dropped_msgs reset"
    );
    // The broadcast rule: an activator receives none.
    let f = util::filter_bits(0, &[]);
    send(
        &s,
        &MsgBuilder::broadcast(&f).cookie(3).vec(b"b"),
        "broadcast",
    )?;
    util::expect_empty(&act, "activator after a broadcast")
}

/// names.md 6.3 step 1: the trackers that move with a name are all those
/// awaiting an answer from the old holder for messages addressed to the
/// name registration - also for calls the old holder already received.
/// An implementer that received a call and then gave the name back can no
/// longer answer it (EBADSLT); the next implementer can, without ever
/// having seen the message. Calls sent by ID keep their tracker.
pub fn tracker_received(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let i1 = ctx.hello()?;
    let i2 = ctx.hello()?;
    acquire(&i1, N, 0, PRIMARY | ACQUIRED, "i1 acquires")?;
    send(&s, &util::call(0, 41, 60_000).dst_name(N), "call by name")?;
    send(&s, &util::call(i1.id(), 42, 60_000), "call by ID")?;
    for cookie in [41, 42] {
        let r = util::recv(&i1, "call at i1")?;
        ensure_eq!(util::parse(&r, "call")?.cookie, cookie, "call at i1");
        expect_ok("FREE", r.free())?;
    }
    expect_ok("i1 releases", i1.name_release(N))?;
    util::expect_empty(&act, "nothing queued moves back")?;
    expect_errno(
        "i1 answers the call by name after giving the name back",
        i1.send(&util::reply(s.id(), 41, 1), 0).map(drop),
        Errno::EBADSLT,
    )?;
    send(
        &i1,
        &util::reply(s.id(), 42, 2),
        "i1 answers the call by ID",
    )?;
    acquire(&i2, N, 0, PRIMARY | ACQUIRED, "i2 acquires")?;
    util::expect_empty(&i2, "i2 gets no message")?;
    send(
        &i2,
        &util::reply(s.id(), 41, 3),
        "i2 answers the moved tracker",
    )?;
    ensure_eq!(
        util::recv_data(&s, i1.id(), 2, "reply by ID")?,
        b"reply".to_vec(),
        "reply 42"
    );
    ensure_eq!(
        util::recv_data(&s, i2.id(), 3, "reply through the moved tracker")?,
        b"reply".to_vec(),
        "reply 41"
    );
    util::expect_empty(&s, "caller")
}

/// Messages are tagged with the name's registration ID (names.md 1, 6.3):
/// a message sent by name to an earlier registration of the same name is
/// not moved when a later registration passes to the activator.
pub fn registration_id(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let i = ctx.hello()?;
    acquire(&i, N, 0, PRIMARY | ACQUIRED, "i acquires (registration 1)")?;
    send(&s, &to_name(N, 1, b"old"), "by name to registration 1")?;
    expect_ok("i releases: the name disappears", i.name_release(N))?;
    ensure_eq!(util::owner_of(&s, N)?, None, "name after the release");
    let act = util::activator(ctx, N)?;
    acquire(
        &i,
        N,
        NAME_REPLACE_EXISTING,
        PRIMARY | ACQUIRED,
        "i takes registration 2 over (REPLACE_EXISTING: case a, never stored)",
    )?;
    send(&s, &to_name(N, 2, b"new"), "by name to registration 2")?;
    expect_ok("i releases to the activator", i.name_release(N))?;
    let r = util::recv_flags(&act, RECV_PEEK, 0, "activator PEEK")?;
    ensure_eq!(util::parse(&r, "PEEK")?.cookie, 2, "moved message");
    expect_ok("FREE", r.free())?;
    ensure_eq!(
        util::recv_data(&i, s.id(), 1, "the message of registration 1")?,
        b"old".to_vec(),
        "registration 1's message stays with i"
    );
    util::expect_empty(&i, "i")
}

/// Moved messages are charged to the original sender's user at the new
/// holder (names.md 6.3 step 2, message.md 13): an implementer with a
/// 16 KiB pool (8 KiB for queued messages, a third of it for one user)
/// takes two of ten 1064-byte messages; the other eight are lost; what
/// is left of the sender's share (602 bytes) takes 600, not 1024.
pub fn move_quota(ctx: &Ctx) -> TestResult {
    const K: u64 = 10;
    let s = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let imp = util::hello_clean(ctx, 0, 0, 16 * 1024)?;
    for i in 0..K {
        let m = util::msg_with_slice(0, i + 1, 1024).dst_name(N);
        send(&s, &m, "by name to the activator")?;
    }
    acquire(&imp, N, 0, PRIMARY | ACQUIRED, "implementer acquires")?;
    util::expect_empty(&act, "activator after the hand-over")?;
    // 2 x 1064 bytes charged: 2730 - 2128 = 602 bytes left for this user.
    send_err(
        &s,
        &util::msg_with_slice(imp.id(), 99, 1024),
        Errno::ENOBUFS,
        "1 KiB by ID after the move",
    )?;
    send(
        &s,
        &util::msg_with_slice(imp.id(), 98, 600),
        "600 bytes fit",
    )?;
    let mut got = Vec::new();
    let mut dropped = 0;
    while let Ok(r) = imp.recv(0, 0) {
        dropped += r.reply.dropped_msgs;
        got.push(util::parse(&r, "moved")?.cookie);
        expect_ok("FREE", r.free())?;
    }
    ensure_eq!((got, dropped), (vec![1, 2, 98], K - 2), "(cookies, lost)");
    send(&s, &msg(imp.id(), 100, b"x"), "by ID after receiving")?;
    Ok(())
}

/// A synchronous call by name to an activator's name blocks until the
/// implementer that took the name over answers it (its tracker moved with
/// the message).
pub fn sync_call(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let imp = ctx.hello()?;
    let cid = c.id();
    std::thread::scope(|sc| -> TestResult {
        let caller = sc.spawn(|| {
            c.send_sync(&util::call(0, 51, 20_000).dst_name(N))
                .map_err(|e| format!("synchronous call: {e:?}"))
                .and_then(|r| {
                    let m = c.message(&r.reply).map_err(|e| format!("the reply: {e}"))?;
                    let got = (m.src_id, m.cookie_reply());
                    expect_ok("FREE of the reply", c.free(r.reply.offset))?;
                    Ok(got)
                })
        });
        util::expect_readable(&act, 10_000, "the call queued at the activator")?;
        acquire(&imp, N, 0, PRIMARY | ACQUIRED, "implementer acquires")?;
        let r = util::recv(&imp, "the call at the implementer")?;
        ensure_eq!(util::parse(&r, "call")?.cookie, 51, "call cookie");
        expect_ok("FREE", r.free())?;
        send(&imp, &util::reply(cid, 51, 52), "the implementer replies")?;
        let got = caller
            .join()
            .map_err(|_| "caller thread panicked".to_string())??;
        ensure_eq!(
            got,
            (imp.id(), 51),
            "the synchronous reply (src_id, cookie_reply)"
        );
        Ok(())
    })?;
    util::expect_empty(&c, "caller after the synchronous reply")
}

/// An implementer closing with a moved call unanswered and queued gives
/// it back to the activator with the name (no REPLY_DEAD); the activator
/// closing then discards it: exactly one REPLY_DEAD to the caller.
pub fn reply_dead(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let imp = ctx.hello()?;
    send(&c, &util::call(0, 61, 60_000).dst_name(N), "call by name")?;
    acquire(&imp, N, 0, PRIMARY | ACQUIRED, "implementer acquires")?;
    drop(imp);
    std::thread::sleep(std::time::Duration::from_millis(100));
    util::expect_empty(&c, "caller after the implementer closed (call moved back)")?;
    let r = util::recv_flags(&act, RECV_PEEK, 0, "activator PEEK")?;
    ensure_eq!(util::parse(&r, "PEEK")?.cookie, 61, "the call is back");
    drop(act);
    util::expect_readable(&c, 3000, "REPLY_DEAD")?;
    util::recv_reply_notification(
        &c,
        61,
        ITEM_REPLY_DEAD,
        "REPLY_DEAD after the activator closed",
    )?;
    std::thread::sleep(std::time::Duration::from_millis(100));
    util::expect_empty(&c, "exactly one REPLY_DEAD")
}

/// Only owners may create activators (connection.md 3.2 step 8): a
/// uid-1000 connection on a world-accessible root bus gets EPERM, and an
/// ordinary HELLO still works for it.
pub fn not_owner(ctx: &Ctx) -> TestResult {
    crate::ctx::require_root(ctx)?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let w = ctx.hello_on(&ep)?;
    util::watch_names(&w)?;
    let got = util::in_child_as(1000, || {
        let fd = kdbus::open_endpoint(&ep).map_err(|e| format!("open: {e:?}"))?;
        let mut cmd = kdbus::Connection::hello_cmd(HELLO_ACTIVATOR, 0, 0, crate::ctx::POOL_SIZE);
        cmd.push_str(ITEM_NAME, N);
        let act = kdbus::Connection::from_hello(fd, &mut cmd).map(|c| c.id());
        let ord = kdbus::Connection::hello(&ep, 0, 0, 0, crate::ctx::POOL_SIZE).map(|c| c.id() > 0);
        Ok(format!("{act:?} {ord:?}"))
    })?;
    ensure_eq!(
        got.as_str(),
        "Err(EPERM) Ok(true)",
        "HELLO as uid 1000: (activator, ordinary)"
    );
    util::expect_empty(&w, "no NAME_ADD for the refused activator")?;
    ensure_eq!(util::owner_of(&w, N)?, None, "owner of the name");
    Ok(())
}

/// Messages move only between the activator and an implementer: an
/// implementer replaced by REPLACE_EXISTING keeps what it had (case c);
/// when the name passes to a queued waiter nothing moves; when the last
/// owner gives the name back to the activator, its messages to the name
/// move. NO_AUTO_START reaches an owner while the activator waits.
pub fn moves_only_with_activator(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let s = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let i1 = ctx.hello()?;
    let i2 = ctx.hello()?;
    let q = ctx.hello()?;
    let (aid, i1id, i2id, qid) = (act.id(), i1.id(), i2.id(), q.id());
    let al = NAME_ALLOW_REPLACEMENT;
    acquire(&i1, N, al, al | PRIMARY | ACQUIRED, "i1 takes over")?;
    send(
        &s,
        &to_name(N, 1, b"i1").flags(MSG_NO_AUTO_START),
        "to i1, NO_AUTO_START",
    )?;
    acquire(
        &i2,
        N,
        NAME_REPLACE_EXISTING,
        PRIMARY | ACQUIRED,
        "i2 replaces i1",
    )?;
    acquire(
        &q,
        N,
        NAME_QUEUE,
        NAME_QUEUE | IN_QUEUE | ACQUIRED,
        "q waits",
    )?;
    send(&s, &to_name(N, 2, b"i2"), "to i2")?;
    expect_ok("i2 releases", i2.name_release(N))?;
    send(&s, &to_name(N, 3, b"q"), "to q")?;
    expect_ok("q releases", q.name_release(N))?;
    expect_notifications(
        &w,
        &[
            name_add(N, (aid, ACT | PRIMARY)),
            name_change(N, (aid, ACT | PRIMARY), (i1id, al | PRIMARY)),
            name_change(N, (i1id, al | PRIMARY), (i2id, PRIMARY)),
            name_change(N, (i2id, PRIMARY), (qid, NAME_QUEUE | PRIMARY)),
            name_change(N, (qid, NAME_QUEUE | PRIMARY), (aid, ACT | PRIMARY)),
        ],
        "activator, i1, i2, q, activator",
    )?;
    ensure_eq!(
        util::recv_data(&i1, s.id(), 1, "i1 keeps its message")?,
        b"i1".to_vec(),
        "i1"
    );
    ensure_eq!(
        util::recv_data(&i2, s.id(), 2, "i2 keeps its message")?,
        b"i2".to_vec(),
        "i2"
    );
    util::expect_empty(&i1, "i1")?;
    util::expect_empty(&i2, "i2")?;
    util::expect_empty(&q, "q's message went back to the activator")?;
    let r = util::recv(&act, "the message given back by q")?;
    ensure_eq!(
        util::parse(&r, "at the activator")?.cookie,
        3,
        "moved message"
    );
    expect_ok("FREE", r.free())?;
    util::expect_empty(&act, "activator")
}

/// Implementers take the name from the activator and give it back
/// (acquire with QUEUE, release) in several threads while others send to
/// the name: every message that SEND accepted ends up exactly once at an
/// implementer or the activator, or is counted as lost; none is
/// duplicated (names.md 6.3 under concurrency; the kernel log is checked
/// for lockdep reports); and no SEND fails with ESRCH, since the name
/// always has an owner (message.md 6).
pub fn race(ctx: &Ctx) -> TestResult {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;
    const IMPLS: usize = 3;
    const SENDERS: usize = 2;
    const PER_SENDER: u64 = 150;
    let act = util::activator(ctx, N)?;
    let impls: Vec<kdbus::Connection> =
        (0..IMPLS).map(|_| ctx.hello()).collect::<Result<_, _>>()?;
    let senders: Vec<kdbus::Connection> = (0..SENDERS)
        .map(|_| ctx.hello())
        .collect::<Result<_, _>>()?;
    let sent = AtomicU64::new(0);
    let esrch = AtomicU64::new(0);
    let lost = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let got: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let drain = |c: &kdbus::Connection| {
        while let Ok(r) = c.recv(0, 0) {
            lost.fetch_add(r.reply.dropped_msgs, Ordering::SeqCst);
            match r.message() {
                Ok(m) => got.lock().unwrap().push((m.src_id, m.cookie)),
                Err(e) => errors.lock().unwrap().push(format!("parse: {e}")),
            }
            let _ = r.free();
        }
    };
    std::thread::scope(|sc| {
        let mut sending = Vec::new();
        for s in &senders {
            let (sent, esrch, errors) = (&sent, &esrch, &errors);
            sending.push(sc.spawn(move || {
                for i in 1..=PER_SENDER {
                    match s.send(&to_name(N, i, b"m"), 0) {
                        Ok(_) => {
                            sent.fetch_add(1, Ordering::SeqCst);
                        }
                        // The name always has an owner (at least the
                        // activator): counted, reported at the end.
                        Err(Errno::ESRCH) => {
                            esrch.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => errors.lock().unwrap().push(format!("send {i}: {e:?}")),
                    }
                }
            }));
        }
        for (k, c) in impls.iter().enumerate() {
            let (done, errors, drain) = (&done, &errors, &drain);
            sc.spawn(move || {
                let mut round = 0;
                while !done.load(Ordering::SeqCst) && round < 200 {
                    round += 1;
                    let flags = if (round + k) % 2 == 0 { NAME_QUEUE } else { 0 };
                    match c.name_acquire(N, flags) {
                        Ok(_) | Err(Errno::EEXIST) => {}
                        Err(e) => errors.lock().unwrap().push(format!("acquire: {e:?}")),
                    }
                    drain(c);
                    match c.name_release(N) {
                        Ok(()) | Err(Errno::EADDRINUSE) => {}
                        Err(e) => errors.lock().unwrap().push(format!("release: {e:?}")),
                    }
                    drain(c);
                }
            });
        }
        // Wait for the senders, then stop the implementers.
        for h in sending {
            let _ = h.join();
        }
        done.store(true, Ordering::SeqCst);
    });
    for c in &impls {
        drain(c);
    }
    drain(&act);
    let errs = errors.lock().unwrap();
    ensure!(errs.is_empty(), "errors: {:?}", *errs);
    let got = got.lock().unwrap();
    let unique: HashSet<&(u64, u64)> = got.iter().collect();
    ensure_eq!(unique.len(), got.len(), "duplicated messages");
    let (sent, lost) = (sent.load(Ordering::SeqCst), lost.load(Ordering::SeqCst));
    crate::check::diag(format!("{sent} sent, {} received, {lost} lost", got.len()));
    ensure_eq!(got.len() as u64 + lost, sent, "received + lost vs sent");
    ensure_eq!(lost, 0, "messages lost (pools and quotas are large enough)");
    let esrch = esrch.load(Ordering::SeqCst);
    ensure!(
        esrch == 0,
        "{esrch} of {} SENDs by name failed with ESRCH although the name always had an \
         owner (the activator at least; message.md 6: ownership cannot change between \
         resolution and queueing) - FINDINGS-7.md F3",
        SENDERS as u64 * PER_SENDER
    );
    Ok(())
}

use super::util::uffd;

/// SEND by name while the name keeps moving between the activator and an
/// implementer: the payload lives in two userfaultfd pages, and each time
/// the kernel's copy of the first page faults, the implementer acquires or
/// releases the name (the page is then supplied and the other one
/// dropped, so every new copy attempt faults again). The name always has
/// an owner, and message.md 6 makes resolution and queueing one step with
/// respect to ownership: the SEND must succeed and the message arrive
/// exactly once, at the activator or the implementer. (Up to 16 faults
/// move the name; after that the pages stay, so a retrying SEND ends.)
pub fn send_while_name_moves(ctx: &Ctx) -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    crate::ctx::require_root(ctx)?;
    const LIMIT: usize = 16;
    let s = ctx.hello()?;
    let act = util::activator(ctx, N)?;
    let imp = ctx.hello()?;
    let ps = kdbus::page_size();
    // SAFETY: a fresh anonymous mapping owned by this test.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * ps,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(region != libc::MAP_FAILED, "mmap failed");
    let base = region as u64;
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        return crate::check::skip(format!("userfaultfd: {:?}", Errno::last()));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let ufd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&ufd);
    let mut api = [uffd::API, 0, 0];
    // SAFETY: ioctls with buffers of the sizes the requests encode.
    ensure!(
        unsafe { libc::ioctl(raw, uffd::IOC_API as _, api.as_mut_ptr()) } == 0,
        "UFFDIO_API: {:?}",
        Errno::last()
    );
    let mut reg = [base, 2 * ps as u64, uffd::MODE_MISSING, 0];
    // SAFETY: as above.
    ensure!(
        unsafe { libc::ioctl(raw, uffd::IOC_REGISTER as _, reg.as_mut_ptr()) } == 0,
        "UFFDIO_REGISTER: {:?}",
        Errno::last()
    );
    let src = vec![0x5au8; ps];
    let stop = AtomicBool::new(false);
    let faults = AtomicUsize::new(0);
    let moves = AtomicUsize::new(0);
    let owned = AtomicBool::new(false);
    let errors: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let res = std::thread::scope(|sc| {
        let (stop, faults, moves, owned, errors, imp, src) =
            (&stop, &faults, &moves, &owned, &errors, &imp, &src);
        sc.spawn(move || {
            // Drops a page so that the next access faults again: a fresh
            // page mapped over it and registered again (the test kernel
            // has no madvise).
            let zap = |page: u64| {
                let at = base + page * ps as u64;
                // SAFETY: replaces a page of our own mapping, which no one
                // accesses right now (the kernel's copy waits on the other
                // page's fault).
                let p = unsafe {
                    libc::mmap(
                        at as *mut _,
                        ps,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    )
                };
                let mut reg = [at, ps as u64, uffd::MODE_MISSING, 0];
                // SAFETY: UFFDIO_REGISTER with a 32-byte uffdio_register.
                let r = unsafe { libc::ioctl(raw, uffd::IOC_REGISTER as _, reg.as_mut_ptr()) };
                if p == libc::MAP_FAILED || r != 0 {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("dropping page {page}: {:?}", Errno::last()));
                }
            };
            while !stop.load(Ordering::SeqCst) {
                let _ = kdbus::poll_once(&ufd, kdbus::PollFlags::POLLIN, 50);
                let mut m = [0u8; 32];
                // SAFETY: reading one uffd_msg into a 32-byte buffer.
                let n = unsafe { libc::read(raw, m.as_mut_ptr().cast(), 32) };
                if n != 32 || m[0] != uffd::EVENT_PAGEFAULT {
                    continue;
                }
                let addr = u64::from_ne_bytes(m[16..24].try_into().unwrap());
                let page = (addr - base) / ps as u64;
                let k = faults.fetch_add(1, Ordering::SeqCst) + 1;
                if k <= LIMIT {
                    if page == 0 {
                        // Move the name, on another thread in case the
                        // registry is locked during the copy.
                        let (tx, rx) = std::sync::mpsc::channel();
                        sc.spawn(move || {
                            let r = if owned.load(Ordering::SeqCst) {
                                imp.name_release(N)
                            } else {
                                imp.name_acquire(N, 0).map(drop)
                            };
                            match r {
                                Ok(()) => {
                                    owned.fetch_xor(true, Ordering::SeqCst);
                                    moves.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(e) => errors.lock().unwrap().push(format!("move: {e:?}")),
                            }
                            let _ = tx.send(());
                        });
                        let _ = rx.recv_timeout(std::time::Duration::from_secs(1));
                        zap(1);
                    } else {
                        zap(0);
                    }
                }
                let mut copy = [
                    base + page * ps as u64,
                    src.as_ptr() as u64,
                    ps as u64,
                    0,
                    0,
                ];
                // SAFETY: UFFDIO_COPY with a 40-byte uffdio_copy.
                unsafe { libc::ioctl(raw, uffd::IOC_COPY as _, copy.as_mut_ptr()) };
            }
        });
        let m = MsgBuilder::new(0)
            .dst_name(N)
            .cookie(1)
            .vec_raw(2 * ps as u64, base);
        let r = s.send(&m, 0).map(drop);
        stop.store(true, Ordering::SeqCst);
        r
    });
    // SAFETY: unmapping our own region after every user is gone.
    unsafe { libc::munmap(region, 2 * ps) };
    let errs = errors.lock().unwrap();
    ensure!(errs.is_empty(), "moving the name: {:?}", *errs);
    let (faults, moves) = (faults.load(Ordering::SeqCst), moves.load(Ordering::SeqCst));
    crate::check::diag(format!("{faults} faults, the name moved {moves} times"));
    ensure!(
        moves > 0,
        "the name never moved during the SEND ({faults} faults)"
    );
    expect_ok(
        &format!(
            "SEND by name while the name moved {moves} times between activator and \
             implementer (always owned; FINDINGS-7.md F3)"
        ),
        res,
    )?;
    let mut copies = 0;
    for c in [&act, &imp] {
        while let Ok(r) = c.recv(0, 0) {
            let m = util::parse(&r, "the message")?;
            ensure_eq!((m.src_id, m.cookie), (s.id(), 1), "message");
            ensure_eq!(
                m.data().map_err(|e| e.to_string())?,
                vec![0x5a; 2 * ps],
                "payload"
            );
            copies += 1;
            expect_ok("FREE", r.free())?;
        }
    }
    ensure_eq!(
        copies,
        1,
        "copies of the message at the activator and the implementer"
    );
    Ok(())
}
