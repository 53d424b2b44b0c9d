//! NAME_ACQUIRE and NAME_RELEASE (names.md 2-5, 9): every case a-f of the
//! acquire table with its exact return_flags, name validity, flags, the
//! 256-record limit, release errors, queue hand-over on release,
//! replacement and disconnect, OWNED_NAME metadata, connection types, and
//! a concurrency test of the registry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{CmdBuf, Connection, Errno, Notification, FLAG_NEGOTIATE};

use super::util::{
    self, acquire, acquire_err, acquire_raw, expect_notifications, expect_records, id_remove, msg,
    name_add, name_change, name_remove, send, to_name, watcher,
};
use crate::check::{errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const ALLOW: u64 = NAME_ALLOW_REPLACEMENT;
const QUEUE: u64 = NAME_QUEUE;
const REPLACE: u64 = NAME_REPLACE_EXISTING;
const PRIMARY: u64 = NAME_PRIMARY;
const IN_QUEUE: u64 = NAME_IN_QUEUE;
const ACQUIRED: u64 = NAME_ACQUIRED;

const N: &str = "org.example.Name";

/// Case a: the first acquirer becomes primary owner. return_flags are the
/// stored flags (ALLOW_REPLACEMENT, QUEUE; REPLACE_EXISTING is never
/// stored) | PRIMARY | ACQUIRED; NAME_ADD(0/0 -> owner/stored|PRIMARY);
/// LIST shows the record with stored|PRIMARY.
pub fn acquire_new(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let a = ctx.hello()?;
    let cases = [
        0,
        ALLOW,
        QUEUE,
        ALLOW | QUEUE,
        REPLACE,
        REPLACE | ALLOW | QUEUE,
    ];
    for (i, flags) in cases.into_iter().enumerate() {
        let name = format!("org.example.New{i}");
        let stored = flags & (ALLOW | QUEUE);
        let what = format!("first acquire with flags {flags:#x}");
        acquire(&a, &name, flags, stored | PRIMARY | ACQUIRED, &what)?;
        expect_notifications(&w, &[name_add(&name, (a.id(), stored | PRIMARY))], &what)?;
        expect_records(&a, &name, &[(a.id(), stored | PRIMARY)], &what)?;
        ensure_eq!(
            util::owner_of(&w, &name)?,
            Some(a.id()),
            "{what}: CONN_INFO by name"
        );
    }
    Ok(())
}

/// Case b: acquiring a name the connection already owns returns 0 with
/// stored | PRIMARY and no ACQUIRED, replaces the stored flags (a later
/// REPLACE_EXISTING sees the new ALLOW_REPLACEMENT), and emits nothing.
pub fn acquire_again(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    acquire(&a, N, ALLOW, ALLOW | PRIMARY | ACQUIRED, "first acquire")?;
    expect_notifications(&w, &[name_add(N, (a.id(), ALLOW | PRIMARY))], "first")?;
    acquire(&a, N, ALLOW, ALLOW | PRIMARY, "same flags again")?;
    acquire(&a, N, 0, PRIMARY, "again without ALLOW_REPLACEMENT")?;
    expect_records(&a, N, &[(a.id(), PRIMARY)], "after dropping ALLOW")?;
    acquire_err(
        &b,
        N,
        REPLACE,
        Errno::EEXIST,
        0,
        "REPLACE_EXISTING after the owner dropped ALLOW_REPLACEMENT",
    )?;
    acquire(&a, N, REPLACE, PRIMARY, "again with REPLACE_EXISTING")?;
    acquire(
        &a,
        N,
        ALLOW | QUEUE,
        ALLOW | QUEUE | PRIMARY,
        "again with ALLOW|QUEUE",
    )?;
    expect_records(&a, N, &[(a.id(), ALLOW | QUEUE | PRIMARY)], "updated")?;
    util::expect_empty(&w, "re-acquires emit no notification")?;
    // Now replaceable: b takes it over, a (stored QUEUE) waits.
    acquire(&b, N, REPLACE, PRIMARY | ACQUIRED, "replacement")?;
    expect_notifications(
        &w,
        &[name_change(
            N,
            (a.id(), ALLOW | QUEUE | PRIMARY),
            (b.id(), PRIMARY),
        )],
        "replacement after the flag update",
    )?;
    expect_records(
        &a,
        N,
        &[(a.id(), ALLOW | QUEUE | IN_QUEUE), (b.id(), PRIMARY)],
        "after replacement",
    )
}

/// Case c: REPLACE_EXISTING against a primary owner with
/// ALLOW_REPLACEMENT moves the requester to the head, jumping queued
/// owners. Without stored QUEUE the old owner silently loses the name (its
/// record is gone; messages it already had stay with it); with QUEUE it
/// becomes second in the queue. NAME_CHANGE carries the old owner's flags
/// with PRIMARY.
pub fn acquire_replace(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let p = ctx.hello()?;
    let q = ctx.hello()?;
    let r = ctx.hello()?;
    let s = ctx.hello()?;

    // Without QUEUE on the old owner.
    acquire(&p, N, ALLOW, ALLOW | PRIMARY | ACQUIRED, "p acquires")?;
    acquire(&q, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "q queues")?;
    send(&s, &to_name(N, 1, b"for p"), "SEND by name while p owns")?;
    acquire(&r, N, REPLACE, PRIMARY | ACQUIRED, "r replaces p")?;
    expect_notifications(
        &w,
        &[
            name_add(N, (p.id(), ALLOW | PRIMARY)),
            name_change(N, (p.id(), ALLOW | PRIMARY), (r.id(), PRIMARY)),
        ],
        "replacement without QUEUE",
    )?;
    expect_records(
        &w,
        N,
        &[(q.id(), QUEUE | IN_QUEUE), (r.id(), PRIMARY)],
        "p lost the name",
    )?;
    expect_errno(
        "p releases the name it lost",
        p.name_release(N),
        Errno::EADDRINUSE,
    )?;
    let d = util::recv_data(&p, s.id(), 1, "p's message addressed by name")?;
    ensure_eq!(d, b"for p".to_vec(), "p keeps its queued message");
    // r jumped q: when r releases, q is next.
    expect_ok("r releases", r.name_release(N))?;
    expect_notifications(
        &w,
        &[name_change(N, (r.id(), PRIMARY), (q.id(), QUEUE | PRIMARY))],
        "release after replacement",
    )?;
    expect_ok("q releases", q.name_release(N))?;
    expect_notifications(&w, &[name_remove(N, (q.id(), QUEUE | PRIMARY))], "q")?;

    // With QUEUE on the old owner.
    let m = "org.example.Queued";
    acquire(
        &p,
        m,
        ALLOW | QUEUE,
        ALLOW | QUEUE | PRIMARY | ACQUIRED,
        "p acquires with QUEUE",
    )?;
    acquire(&q, m, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "q queues")?;
    acquire(
        &r,
        m,
        REPLACE | QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "r replaces p",
    )?;
    expect_notifications(
        &w,
        &[
            name_add(m, (p.id(), ALLOW | QUEUE | PRIMARY)),
            name_change(
                m,
                (p.id(), ALLOW | QUEUE | PRIMARY),
                (r.id(), QUEUE | PRIMARY),
            ),
        ],
        "replacement with QUEUE",
    )?;
    expect_records(
        &w,
        m,
        &[
            (p.id(), ALLOW | QUEUE | IN_QUEUE),
            (q.id(), QUEUE | IN_QUEUE),
            (r.id(), QUEUE | PRIMARY),
        ],
        "p queued second",
    )?;
    expect_ok("r releases", r.name_release(m))?;
    expect_ok("p releases", p.name_release(m))?;
    expect_notifications(
        &w,
        &[
            name_change(
                m,
                (r.id(), QUEUE | PRIMARY),
                (p.id(), ALLOW | QUEUE | PRIMARY),
            ),
            name_change(
                m,
                (p.id(), ALLOW | QUEUE | PRIMARY),
                (q.id(), QUEUE | PRIMARY),
            ),
        ],
        "p was second, q third",
    )?;

    // A queued requester replacing jumps the waiters ahead of it.
    let j = "org.example.Jump";
    acquire(&p, j, ALLOW, ALLOW | PRIMARY | ACQUIRED, "p acquires J")?;
    acquire(&q, j, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "q queues for J")?;
    acquire(&r, j, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "r queues for J")?;
    acquire(
        &r,
        j,
        REPLACE | QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "queued r replaces",
    )?;
    expect_records(
        &w,
        j,
        &[(q.id(), QUEUE | IN_QUEUE), (r.id(), QUEUE | PRIMARY)],
        "r at the head, p gone",
    )?;
    expect_ok("r releases J", r.name_release(j))?;
    expect_notifications(
        &w,
        &[
            name_add(j, (p.id(), ALLOW | PRIMARY)),
            name_change(j, (p.id(), ALLOW | PRIMARY), (r.id(), QUEUE | PRIMARY)),
            name_change(j, (r.id(), QUEUE | PRIMARY), (q.id(), QUEUE | PRIMARY)),
        ],
        "queued replacement",
    )?;

    // REPLACE_EXISTING without ALLOW_REPLACEMENT on the owner: case d or f.
    let o = "org.example.Fixed";
    acquire(&p, o, 0, PRIMARY | ACQUIRED, "p acquires without ALLOW")?;
    acquire_err(&r, o, REPLACE, Errno::EEXIST, 0, "REPLACE_EXISTING refused")?;
    acquire(
        &r,
        o,
        REPLACE | QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "REPLACE_EXISTING|QUEUE queues",
    )?;
    expect_notifications(&w, &[name_add(o, (p.id(), PRIMARY))], "p's new name only")?;
    expect_records(
        &w,
        o,
        &[(p.id(), PRIMARY), (r.id(), QUEUE | IN_QUEUE)],
        "no replacement",
    )
}

/// Case d: with QUEUE a connection waits behind the owner (IN_QUEUE,
/// ACQUIRED only when newly queued); repeating it updates the stored
/// flags but keeps the position; no notification.
pub fn acquire_queue(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let p = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p acquires")?;
    expect_notifications(&w, &[name_add(N, (p.id(), PRIMARY))], "p")?;
    acquire(&a, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "a queues")?;
    acquire(&b, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "b queues")?;
    acquire(&a, N, QUEUE, QUEUE | IN_QUEUE, "a queues again")?;
    acquire(
        &a,
        N,
        QUEUE | ALLOW,
        ALLOW | QUEUE | IN_QUEUE,
        "a queues again with ALLOW",
    )?;
    acquire(
        &b,
        N,
        QUEUE | REPLACE,
        QUEUE | IN_QUEUE,
        "b again with REPLACE_EXISTING (owner not replaceable)",
    )?;
    expect_records(
        &w,
        N,
        &[
            (p.id(), PRIMARY),
            (a.id(), ALLOW | QUEUE | IN_QUEUE),
            (b.id(), QUEUE | IN_QUEUE),
        ],
        "queue",
    )?;
    util::expect_empty(&w, "queueing emits nothing")?;
    ensure_eq!(util::owner_of(&w, N)?, Some(p.id()), "owner while queued");
    // a kept its place ahead of b.
    expect_ok("p releases", p.name_release(N))?;
    expect_ok("a releases", a.name_release(N))?;
    expect_notifications(
        &w,
        &[
            name_change(N, (p.id(), PRIMARY), (a.id(), ALLOW | QUEUE | PRIMARY)),
            name_change(
                N,
                (a.id(), ALLOW | QUEUE | PRIMARY),
                (b.id(), QUEUE | PRIMARY),
            ),
        ],
        "hand-over order a, b",
    )?;
    Ok(())
}

/// Case e: a queued connection that acquires again without QUEUE leaves
/// the queue; return_flags are just the stored flags; no notification.
pub fn acquire_leave_queue(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let p = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p acquires")?;
    acquire(
        &a,
        N,
        QUEUE | ALLOW,
        ALLOW | QUEUE | IN_QUEUE | ACQUIRED,
        "a",
    )?;
    acquire(&b, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "b queues")?;
    acquire(&a, N, ALLOW, ALLOW, "a again without QUEUE")?;
    acquire(&b, N, 0, 0, "b again with flags 0")?;
    expect_records(&w, N, &[(p.id(), PRIMARY)], "a and b left the queue")?;
    expect_errno(
        "a releases after leaving",
        a.name_release(N),
        Errno::EADDRINUSE,
    )?;
    expect_ok("p releases", p.name_release(N))?;
    expect_notifications(
        &w,
        &[
            name_add(N, (p.id(), PRIMARY)),
            name_remove(N, (p.id(), PRIMARY)),
        ],
        "nobody was left waiting",
    )?;
    Ok(())
}

/// Case f: a name owned by someone else, no replacement, no queueing:
/// EEXIST with return_flags = the requested stored flags; no record is
/// left behind and nothing is emitted.
pub fn acquire_eexist(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let p = ctx.hello()?;
    let a = ctx.hello()?;
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p acquires")?;
    expect_notifications(&w, &[name_add(N, (p.id(), PRIMARY))], "p")?;
    for (flags, stored) in [
        (0, 0),
        (ALLOW, ALLOW),
        (REPLACE, 0),
        (REPLACE | ALLOW, ALLOW),
    ] {
        acquire_err(
            &a,
            N,
            flags,
            Errno::EEXIST,
            stored,
            "acquire of an owned name",
        )?;
    }
    expect_records(&w, N, &[(p.id(), PRIMARY)], "after EEXIST")?;
    expect_errno("release after EEXIST", a.name_release(N), Errno::EADDRINUSE)?;
    util::expect_empty(&w, "EEXIST emits nothing")
}

/// Invalid names (names.md 2, no wildcard), unknown flags, missing or
/// duplicate NAME items: EINVAL, and nothing is registered; the longest
/// valid name (255) and names with `_` and `-` work; negotiation writes
/// back 7.
pub fn acquire_invalid(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let a = ctx.hello()?;
    let long255 = format!("a.{}", "b".repeat(253));
    let long256 = format!("{long255}c");
    for bad in [
        "",
        "a",
        "org",
        ".a.b",
        "a.b.",
        "a..b",
        "1a.b",
        "a.1b",
        "a.b$",
        "a.*",
        "org.foo.*",
        "*",
        "*.a",
        ":1.2",
        "a.b c",
        "a/b.c",
        "a.b\u{e9}",
        long256.as_str(),
    ] {
        expect_errno(
            &format!("NAME_ACQUIRE {bad:?}"),
            a.name_acquire(bad, 0).map(drop),
            Errno::EINVAL,
        )?;
    }
    util::expect_empty(&w, "invalid names register nothing")?;
    let nothing = expect_ok("LIST NAMES", a.list_records(LIST_NAMES))?;
    ensure!(nothing.is_empty(), "LIST NAMES after EINVALs: {nothing:?}");
    for ok in ["a.b", "_a.-b", "a1.b2_c-d", "A.B-9", long255.as_str()] {
        acquire(&a, ok, 0, PRIMARY | ACQUIRED, &format!("valid name {ok:?}"))?;
    }
    for f in [
        IN_QUEUE,
        NAME_ACTIVATOR,
        PRIMARY,
        ACQUIRED,
        1 << 7,
        1 << 40,
        1 << 62,
    ] {
        expect_errno(
            &format!("NAME_ACQUIRE flags {f:#x}"),
            a.name_acquire("org.example.Flags", f).map(drop),
            Errno::EINVAL,
        )?;
    }
    let mut c = CmdBuf::name_cmd(FLAG_NEGOTIATE, "org.example.Neg");
    expect_ok("NAME_ACQUIRE negotiation", a.name_acquire_raw(&mut c))?;
    ensure_eq!(c.flags(), 7, "negotiated NAME_ACQUIRE flags");
    let mut c = CmdBuf::cmd(FLAG_NEGOTIATE);
    expect_ok(
        "NAME_ACQUIRE negotiation without NAME",
        a.name_acquire_raw(&mut c),
    )?;
    let mut c = CmdBuf::cmd(0);
    expect_errno(
        "NAME_ACQUIRE without NAME",
        a.name_acquire_raw(&mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::name_cmd(0, "org.example.One");
    c.push_str(ITEM_NAME, "org.example.Two");
    expect_errno(
        "NAME_ACQUIRE with two NAME items",
        a.name_acquire_raw(&mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::name_cmd(0, "org.example.One");
    c.push_u64(ITEM_ID, 1);
    expect_errno(
        "NAME_ACQUIRE with an ID item",
        a.name_acquire_raw(&mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::cmd(0);
    c.push_item(ITEM_NAME, b"org.example.NoNul");
    expect_errno(
        "NAME_ACQUIRE with an unterminated NAME",
        a.name_acquire_raw(&mut c),
        Errno::EINVAL,
    )?;
    for n in ["org.example.Flags", "org.example.Neg", "org.example.One"] {
        ensure_eq!(util::owner_of(&a, n)?, None, "{n} after EINVAL");
    }
    Ok(())
}

/// A connection has at most 256 ownership records, owned and queued
/// alike: the next NAME_ACQUIRE is E2BIG (and registers nothing), a
/// re-acquire of an owned name still works, releasing makes room.
pub fn acquire_limit(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let name = |i: usize| format!("org.example.L{i}");
    for i in 0..256 {
        acquire(&a, &name(i), 0, PRIMARY | ACQUIRED, "filling 256 records")?;
    }
    let (r, _) = acquire_raw(&a, "org.example.Extra", 0);
    expect_errno("the 257th name", r, Errno::E2BIG)?;
    ensure_eq!(
        util::owner_of(&b, "org.example.Extra")?,
        None,
        "E2BIG left a name entry"
    );
    acquire(
        &a,
        &name(7),
        ALLOW,
        ALLOW | PRIMARY,
        "re-acquire at the limit",
    )?;
    acquire(&b, "org.example.Busy", 0, PRIMARY | ACQUIRED, "b's name")?;
    let (r, _) = acquire_raw(&a, "org.example.Busy", QUEUE);
    expect_errno("queueing at the limit", r, Errno::E2BIG)?;
    expect_records(&b, "org.example.Busy", &[(b.id(), PRIMARY)], "no queued a")?;
    expect_ok("release one", a.name_release(&name(0)))?;
    acquire(
        &a,
        "org.example.Busy",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "queued record after a release",
    )?;
    let (r, _) = acquire_raw(&a, "org.example.Extra", 0);
    expect_errno("queued records count", r, Errno::E2BIG)?;
    expect_ok("leave the queue", a.name_release("org.example.Busy"))?;
    acquire(&a, "org.example.Extra", 0, PRIMARY | ACQUIRED, "room again")?;
    let names = expect_ok("LIST NAMES", a.list_records(LIST_NAMES))?;
    ensure_eq!(
        names.iter().filter(|r| r.id == a.id()).count(),
        256,
        "a's listed names"
    );
    Ok(())
}

/// NAME_RELEASE (names.md 4): ESRCH for unknown or invalid names,
/// EADDRINUSE for a name the caller neither owns nor waits for, a queued
/// record is released silently, the owner's release emits NAME_REMOVE and
/// deletes the entry; only NEGOTIATE is a valid flag (writes back 0); the
/// NAME item is mandatory.
pub fn release(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    for n in [N, "not a name", "a.*", "x"] {
        expect_errno(
            &format!("NAME_RELEASE of unknown {n:?}"),
            a.name_release(n),
            Errno::ESRCH,
        )?;
    }
    acquire(&b, N, 0, PRIMARY | ACQUIRED, "b acquires")?;
    expect_errno(
        "release of b's name by a",
        a.name_release(N),
        Errno::EADDRINUSE,
    )?;
    acquire(&a, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "a queues")?;
    expect_ok("a releases its queued record", a.name_release(N))?;
    expect_records(&w, N, &[(b.id(), PRIMARY)], "after the queued release")?;
    expect_errno("a releases again", a.name_release(N), Errno::EADDRINUSE)?;
    for f in [1, QUEUE, 1 << 10] {
        let mut c = CmdBuf::name_cmd(f, N);
        expect_errno(
            &format!("NAME_RELEASE flags {f:#x}"),
            b.name_release_raw(&mut c),
            Errno::EINVAL,
        )?;
    }
    let mut c = CmdBuf::cmd(0);
    expect_errno(
        "NAME_RELEASE without NAME",
        b.name_release_raw(&mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::name_cmd(FLAG_NEGOTIATE, N);
    expect_ok("NAME_RELEASE negotiation", b.name_release_raw(&mut c))?;
    ensure_eq!(c.flags(), 0, "negotiated NAME_RELEASE flags");
    ensure_eq!(util::owner_of(&a, N)?, Some(b.id()), "negotiation released");
    expect_ok("b releases", b.name_release(N))?;
    expect_errno("b releases again", b.name_release(N), Errno::ESRCH)?;
    expect_notifications(
        &w,
        &[
            name_add(N, (b.id(), PRIMARY)),
            name_remove(N, (b.id(), PRIMARY)),
        ],
        "only the owner's acquire and release",
    )?;
    ensure_eq!(util::owner_of(&a, N)?, None, "owner after the release");
    Ok(())
}

/// Queue hand-over over several waiters (names.md 5): the primary's
/// release, BYEBYE and close each pass the name to the next waiter in
/// queue order with NAME_CHANGE (old flags incl. PRIMARY, new stored |
/// PRIMARY); the last one's release is NAME_REMOVE.
pub fn queue_handover(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let p = ctx.hello()?;
    let w1 = ctx.hello()?;
    let w2 = ctx.hello()?;
    let w3 = ctx.hello()?;
    let ids: Vec<u64> = [&p, &w1, &w2, &w3].iter().map(|c| c.id()).collect();
    acquire(&p, N, ALLOW, ALLOW | PRIMARY | ACQUIRED, "p")?;
    acquire(&w1, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "w1")?;
    acquire(
        &w2,
        N,
        QUEUE | ALLOW,
        ALLOW | QUEUE | IN_QUEUE | ACQUIRED,
        "w2",
    )?;
    acquire(&w3, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "w3")?;
    let mut want = vec![
        util::id_add(ids[0], 0),
        util::id_add(ids[1], 0),
        util::id_add(ids[2], 0),
        util::id_add(ids[3], 0),
        name_add(N, (ids[0], ALLOW | PRIMARY)),
    ];
    expect_notifications(&w, &want, "setup")?;
    want.clear();
    expect_ok("p releases", p.name_release(N))?;
    expect_notifications(
        &w,
        &[name_change(
            N,
            (ids[0], ALLOW | PRIMARY),
            (ids[1], QUEUE | PRIMARY),
        )],
        "release: w1 next",
    )?;
    ensure_eq!(util::owner_of(&p, N)?, Some(ids[1]), "owner after p");
    expect_ok("w1 BYEBYE", w1.byebye())?;
    expect_notifications(
        &w,
        &[
            name_change(
                N,
                (ids[1], QUEUE | PRIMARY),
                (ids[2], ALLOW | QUEUE | PRIMARY),
            ),
            id_remove(ids[1], 0),
        ],
        "BYEBYE: w2 next, then ID_REMOVE",
    )?;
    drop(w2);
    expect_notifications(
        &w,
        &[
            name_change(
                N,
                (ids[2], ALLOW | QUEUE | PRIMARY),
                (ids[3], QUEUE | PRIMARY),
            ),
            id_remove(ids[2], 0),
        ],
        "close: w3 next, then ID_REMOVE",
    )?;
    expect_records(&p, N, &[(ids[3], QUEUE | PRIMARY)], "w3 alone")?;
    expect_ok("w3 releases", w3.name_release(N))?;
    expect_notifications(
        &w,
        &[name_remove(N, (ids[3], QUEUE | PRIMARY))],
        "last release",
    )?;
    ensure_eq!(util::owner_of(&p, N)?, None, "owner at the end");
    Ok(())
}

/// An owner with queued waiters disconnects: its names go to the next
/// waiters (NAME_CHANGE per name, in its record order, before its
/// ID_REMOVE); a queued waiter that disconnects emits only ID_REMOVE.
pub fn queue_disconnect(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let p = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let (pid, aid, bid) = (p.id(), a.id(), b.id());
    let (n1, n2, n3) = ("org.example.One", "org.example.Two", "org.example.Three");
    acquire(&p, n2, 0, PRIMARY | ACQUIRED, "p n2")?;
    acquire(&p, n1, QUEUE, QUEUE | PRIMARY | ACQUIRED, "p n1")?;
    acquire(&p, n3, 0, PRIMARY | ACQUIRED, "p n3")?;
    acquire(&a, n2, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "a waits for n2")?;
    acquire(&b, n2, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "b waits for n2")?;
    acquire(&b, n1, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "b waits for n1")?;
    expect_notifications(
        &w,
        &[
            util::id_add(pid, 0),
            util::id_add(aid, 0),
            util::id_add(bid, 0),
            name_add(n2, (pid, PRIMARY)),
            name_add(n1, (pid, QUEUE | PRIMARY)),
            name_add(n3, (pid, PRIMARY)),
        ],
        "setup",
    )?;
    drop(a);
    expect_notifications(&w, &[id_remove(aid, 0)], "queued waiter closes")?;
    drop(p);
    expect_notifications(
        &w,
        &[
            name_change(n2, (pid, PRIMARY), (bid, QUEUE | PRIMARY)),
            name_change(n1, (pid, QUEUE | PRIMARY), (bid, QUEUE | PRIMARY)),
            name_remove(n3, (pid, PRIMARY)),
            id_remove(pid, 0),
        ],
        "owner closes: names in record order, then ID_REMOVE",
    )?;
    expect_records(&w, n1, &[(bid, QUEUE | PRIMARY)], "n1")?;
    expect_records(&w, n2, &[(bid, QUEUE | PRIMARY)], "n2")?;
    expect_records(&w, n3, &[], "n3")
}

/// NAME_ACQUIRE and NAME_RELEASE on a monitor, an activator (and a policy
/// holder, once HELLO allows one) are EOPNOTSUPP, checked before the
/// command is parsed.
pub fn not_ordinary(ctx: &Ctx) -> TestResult {
    let mon = util::monitor(ctx)?;
    let act = util::activator(ctx, "org.example.Act")?;
    let mut special = vec![("monitor", mon), ("activator", act)];
    let mut ph = Connection::hello_cmd(HELLO_POLICY_HOLDER, 0, 0, crate::ctx::POOL_SIZE);
    ph.push_str(ITEM_NAME, "org.example.Policy");
    match Connection::from_hello(
        kdbus::open_endpoint(ctx.endpoint()).map_err(errno_name)?,
        &mut ph,
    ) {
        Ok(c) => special.push(("policy holder", c)),
        Err(Errno::EOPNOTSUPP) => {
            crate::check::diag("policy holders not supported yet (HELLO EOPNOTSUPP)")
        }
        Err(e) => return Err(format!("HELLO of a policy holder: {}", errno_name(e))),
    }
    for (kind, c) in &special {
        expect_errno(
            &format!("NAME_ACQUIRE on a {kind}"),
            c.name_acquire(N, 0).map(drop),
            Errno::EOPNOTSUPP,
        )?;
        expect_errno(
            &format!("NAME_ACQUIRE with bad flags on a {kind}"),
            c.name_acquire_raw(&mut CmdBuf::cmd(1 << 40)),
            Errno::EOPNOTSUPP,
        )?;
        expect_errno(
            &format!("NAME_RELEASE on a {kind}"),
            c.name_release("org.example.Act"),
            Errno::EOPNOTSUPP,
        )?;
        let mut short = CmdBuf::cmd(0);
        short.set_size(8);
        expect_errno(
            &format!("NAME_RELEASE with size 8 on a {kind}"),
            c.name_release_raw(&mut short),
            Errno::EOPNOTSUPP,
        )?;
    }
    Ok(())
}

/// OWNED_NAME metadata in received messages (metadata.md 2.1, 4): a
/// receiver with ATTACH_NAMES gets one item per name the sender owns as
/// primary, in record order, flags = record flags (queued names are not
/// included; NAMES is implicit, the sender's send mask does not matter);
/// without ATTACH_NAMES, or from a sender without names, there is none.
pub fn owned_name_metadata(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let other = ctx.hello()?;
    let r = util::hello(ctx, 0, ATTACH_NAMES)?;
    let plain = ctx.hello()?;
    acquire(&other, "org.example.Other", 0, PRIMARY | ACQUIRED, "other")?;
    acquire(
        &s,
        "org.example.Zed",
        ALLOW,
        ALLOW | PRIMARY | ACQUIRED,
        "s",
    )?;
    acquire(
        &s,
        "org.example.Other",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "s queued",
    )?;
    acquire(
        &s,
        "org.example.Abc",
        QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "s",
    )?;
    let check = |recv: &Connection, want: Vec<(u64, &str)>, what: &str| -> TestResult {
        let m = util::recv(recv, what)?;
        let msg = util::parse(&m, what)?;
        let got: Vec<(u64, String)> = msg
            .owned_names()
            .map_err(|e| format!("{what}: {e}"))?
            .into_iter()
            .map(|o| (o.flags, o.name))
            .collect();
        let want: Vec<(u64, String)> = want.into_iter().map(|(f, n)| (f, n.into())).collect();
        ensure_eq!(got, want, "{what}: OWNED_NAME items (flags, name)");
        for it in msg.items_of(ITEM_OWNED_NAME) {
            let len = it.payload.len() as u64;
            ensure_eq!(it.size, 16 + len, "{what}: OWNED_NAME item size");
        }
        expect_ok("FREE", m.free())
    };
    send(&s, &msg(r.id(), 1, b"x"), "s -> r")?;
    check(
        &r,
        vec![
            (ALLOW | PRIMARY, "org.example.Zed"),
            (QUEUE | PRIMARY, "org.example.Abc"),
        ],
        "message from s",
    )?;
    send(&s, &msg(plain.id(), 2, b"x"), "s -> plain")?;
    check(&plain, vec![], "receiver without ATTACH_NAMES")?;
    send(&plain, &msg(r.id(), 3, b"x"), "plain -> r")?;
    check(&r, vec![], "sender without names")?;
    // Ownership at SEND time: after a release the name is gone.
    expect_ok("s releases Zed", s.name_release("org.example.Zed"))?;
    expect_ok("other releases", other.name_release("org.example.Other"))?;
    send(&s, &msg(r.id(), 4, b"x"), "s -> r again")?;
    check(
        &r,
        vec![
            (QUEUE | PRIMARY, "org.example.Other"),
            (QUEUE | PRIMARY, "org.example.Abc"),
        ],
        "after the release and the hand-over",
    )
}

/// Many threads acquire (with QUEUE) and release the same three names
/// while others send to them by name and a watcher records every name
/// notification. Afterwards: every name has at most one primary, the
/// notification stream of each name is a consistent chain (ADD from
/// nobody, CHANGE/REMOVE from the last owner), the final owner agrees
/// with LIST and CONN_INFO, and nothing was lost.
pub fn race(ctx: &Ctx) -> TestResult {
    const NAMES: [&str; 3] = ["org.example.R0", "org.example.R1", "org.example.R2"];
    const WORKERS: usize = 4;
    const ROUNDS: usize = 60;
    let w = util::hello_pool(ctx, 0, ATTACH_TIMESTAMP, 16 * crate::ctx::POOL_SIZE)?;
    util::watch_names(&w)?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(u64, Notification)>>> = Arc::new(Mutex::new(Vec::new()));
    let conns: Vec<Connection> = (0..WORKERS)
        .map(|_| ctx.hello())
        .collect::<Result<_, _>>()?;
    let senders: Vec<Connection> = (0..2).map(|_| ctx.hello()).collect::<Result<_, _>>()?;
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|sc| {
        // The watcher drains continuously.
        let (stop_w, seen_w, errs_w, wr) = (stop.clone(), seen.clone(), errors.clone(), &w);
        sc.spawn(move || watch_loop(wr, &stop_w, &seen_w, &errs_w));
        let mut workers = Vec::new();
        for (k, c) in conns.iter().enumerate() {
            let errs = errors.clone();
            workers.push(sc.spawn(move || {
                for i in 0..ROUNDS {
                    let name = NAMES[(i + k) % NAMES.len()];
                    let flags = match (i + k) % 3 {
                        0 => QUEUE,
                        1 => QUEUE | ALLOW,
                        _ => REPLACE | QUEUE,
                    };
                    match c.name_acquire(name, flags) {
                        Ok(rf) => {
                            let state = rf & (PRIMARY | IN_QUEUE);
                            if state != PRIMARY && state != IN_QUEUE {
                                errs.lock().unwrap().push(format!(
                                    "acquire {name} {flags:#x}: return_flags {rf:#x} neither PRIMARY nor IN_QUEUE"
                                ));
                            }
                        }
                        Err(e) => errs
                            .lock()
                            .unwrap()
                            .push(format!("acquire {name} {flags:#x}: {e}")),
                    }
                    if i % 2 == 1 {
                        // Releasing may race with a replacement that took
                        // the record away (EADDRINUSE) or emptied the name
                        // (ESRCH).
                        match c.name_release(name) {
                            Ok(()) | Err(Errno::EADDRINUSE) | Err(Errno::ESRCH) => {}
                            Err(e) => errs.lock().unwrap().push(format!("release {name}: {e}")),
                        }
                    }
                }
            }));
        }
        for (k, s) in senders.iter().enumerate() {
            let (stop_s, errs) = (stop.clone(), errors.clone());
            sc.spawn(move || {
                let mut i = 0u64;
                while !stop_s.load(Ordering::SeqCst) && i < 400 {
                    let name = NAMES[(i as usize + k) % NAMES.len()];
                    match s.send(&to_name(name, i + 1, b"x"), 0) {
                        Ok(_) | Err(Errno::ESRCH) => {}
                        // The pools of the workers are never drained.
                        Err(Errno::ENOBUFS) | Err(Errno::EXFULL) => {}
                        Err(e) => errs.lock().unwrap().push(format!("send to {name}: {e}")),
                    }
                    i += 1;
                }
            });
        }
        for h in workers {
            let _ = h.join();
        }
        // Let the watcher catch up, then stop everybody.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
    });
    let errs = errors.lock().unwrap();
    ensure!(errs.is_empty(), "errors during the race: {:?}", *errs);
    let seen = seen.lock().unwrap();
    let owners = check_chains(&seen, &NAMES)?;
    for (name, owner) in NAMES.iter().zip(owners) {
        let recs = util::name_records(&w, name)?;
        let primaries: Vec<u64> = recs
            .iter()
            .filter(|(_, f)| f & PRIMARY != 0)
            .map(|(id, _)| *id)
            .collect();
        ensure!(primaries.len() <= 1, "{name}: several primaries {recs:x?}");
        ensure_eq!(
            primaries.first().copied(),
            owner,
            "{name}: LIST primary vs the last notification"
        );
        ensure_eq!(
            util::owner_of(&w, name)?,
            owner,
            "{name}: CONN_INFO owner vs the last notification"
        );
        for (id, f) in &recs {
            ensure!(
                f & (PRIMARY | IN_QUEUE) == PRIMARY || f & (PRIMARY | IN_QUEUE) == IN_QUEUE,
                "{name}: record of {id} with flags {f:#x}"
            );
        }
    }
    // Everyone leaves: every name ends with NAME_REMOVE, nothing remains.
    let start = Instant::now();
    drop(conns);
    let left = expect_ok(
        "LIST NAMES|QUEUED",
        w.list_records(LIST_NAMES | LIST_QUEUED),
    )?;
    ensure!(
        left.is_empty(),
        "names left after every owner closed: {left:?}"
    );
    ensure!(
        start.elapsed() < Duration::from_secs(20),
        "closing took {:?}",
        start.elapsed()
    );
    Ok(())
}

/// SEND by name (message.md 6): the current owner gets it with dst_id as
/// sent (0, or the owner's id); ESRCH for names without owner (never
/// registered, released, only an invalid name gives EINVAL); EREMCHG when
/// a non-zero dst_id is not the owner (a queued waiter, the sender);
/// after a hand-over the new owner gets what is sent next; a connection
/// may send to its own name.
pub fn send_by_name(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let p = ctx.hello()?;
    let q = ctx.hello()?;
    util::send_err(&s, &to_name(N, 1, b"x"), Errno::ESRCH, "never registered")?;
    util::send_err(
        &s,
        &to_name("a.*", 1, b"x"),
        Errno::EINVAL,
        "wildcard DST_NAME",
    )?;
    util::send_err(
        &s,
        &to_name("nodot", 1, b"x"),
        Errno::EINVAL,
        "invalid DST_NAME",
    )?;
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p")?;
    acquire(&q, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "q")?;
    send(&s, &to_name(N, 2, b"two"), "by name")?;
    send(
        &s,
        &to_name(N, 3, b"three").dst_id(p.id()),
        "by name with p's id",
    )?;
    util::send_err(
        &s,
        &to_name(N, 4, b"x").dst_id(q.id()),
        Errno::EREMCHG,
        "by name with the waiter's id",
    )?;
    util::send_err(
        &s,
        &to_name(N, 4, b"x").dst_id(s.id()),
        Errno::EREMCHG,
        "by name with the sender's id",
    )?;
    util::send_err(
        &s,
        &to_name(N, 4, b"x").dst_id(util::NO_SUCH_ID),
        Errno::EREMCHG,
        "by name with an unknown id",
    )?;
    for (cookie, dst, data) in [(2, 0, &b"two"[..]), (3, p.id(), &b"three"[..])] {
        let r = util::recv(&p, "message by name")?;
        let m = util::parse(&r, "message by name")?;
        ensure_eq!(
            (m.src_id, m.cookie, m.dst_id),
            (s.id(), cookie, dst),
            "message by name: src, cookie, dst_id as sent"
        );
        ensure_eq!(
            m.item(ITEM_DST_NAME).and_then(|i| i.as_str()),
            Some(N),
            "delivered DST_NAME item"
        );
        ensure_eq!(
            m.data().map_err(|e| e.to_string())?,
            data.to_vec(),
            "payload"
        );
        expect_ok("FREE", r.free())?;
    }
    util::expect_empty(&q, "the waiter gets nothing")?;
    send(&p, &to_name(N, 5, b"self"), "to its own name")?;
    ensure_eq!(
        util::recv_data(&p, p.id(), 5, "own name")?,
        b"self".to_vec(),
        "self"
    );
    expect_ok("p releases", p.name_release(N))?;
    send(&s, &to_name(N, 6, b"q"), "after the hand-over")?;
    ensure_eq!(
        util::recv_data(&q, s.id(), 6, "q")?,
        b"q".to_vec(),
        "new owner"
    );
    util::expect_empty(&p, "old owner")?;
    expect_ok("q releases", q.name_release(N))?;
    util::send_err(
        &s,
        &to_name(N, 7, b"x"),
        Errno::ESRCH,
        "after the last release",
    )
}

/// Records the watcher's notifications until `stop` is set and its queue
/// is empty.
fn watch_loop(
    w: &Connection,
    stop: &AtomicBool,
    seen: &Mutex<Vec<(u64, Notification)>>,
    errs: &Mutex<Vec<String>>,
) {
    loop {
        match w.recv(0, 0) {
            Ok(r) => {
                if r.reply.dropped_msgs != 0 {
                    errs.lock().unwrap().push(format!(
                        "watcher lost {} notifications",
                        r.reply.dropped_msgs
                    ));
                }
                let res = util::parse(&r, "watcher").and_then(|m| {
                    let n = util::check_notification(&m, &r.info(), "watcher")?;
                    let seq = m.timestamp().map(|t| t.seqnum).unwrap_or(0);
                    Ok((seq, n))
                });
                match res {
                    Ok(x) => seen.lock().unwrap().push(x),
                    Err(e) => errs.lock().unwrap().push(e),
                }
                let _ = r.free();
            }
            Err(Errno::EAGAIN) => {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                util::wait_readable(w, 20);
            }
            Err(e) => {
                errs.lock().unwrap().push(format!("watcher RECV: {e}"));
                break;
            }
        }
    }
}

/// Checks that the name notifications `seen` (seqnum, notification) form,
/// per name, a consistent chain: increasing seqnums, NAME_ADD only from
/// nobody, every CHANGE/REMOVE from the last owner to someone else (a new
/// owner always with PRIMARY). Returns each name's final owner.
fn check_chains(seen: &[(u64, Notification)], names: &[&str]) -> Result<Vec<Option<u64>>, String> {
    let mut out = Vec::new();
    for name in names {
        let mut owner: Option<u64> = None;
        let mut last_seq = 0;
        for (seq, n) in seen.iter() {
            ensure!(
                *seq > last_seq,
                "watcher seqnums not increasing: {seq} after {last_seq}"
            );
            last_seq = *seq;
            let (kind, c) = match n {
                Notification::NameAdd(c) => ("add", c),
                Notification::NameRemove(c) => ("remove", c),
                Notification::NameChange(c) => ("change", c),
                _ => continue,
            };
            if c.name != *name {
                continue;
            }
            ensure!(
                c.old_id.id == owner.unwrap_or(0),
                "{name}: {kind} from {} while the owner was {owner:?}",
                c.old_id.id
            );
            ensure!(
                c.new_id.id != c.old_id.id,
                "{name}: {kind} from {} to itself",
                c.old_id.id
            );
            match kind {
                "add" => ensure!(owner.is_none(), "{name}: NAME_ADD while owned"),
                "remove" => ensure!(c.new_id.id == 0, "{name}: NAME_REMOVE to {}", c.new_id.id),
                _ => ensure!(c.new_id.id != 0, "{name}: NAME_CHANGE to 0"),
            }
            if c.new_id.id != 0 {
                ensure!(
                    c.new_id.flags & PRIMARY != 0,
                    "{name}: new owner flags {:#x} lack PRIMARY",
                    c.new_id.flags
                );
            }
            owner = (c.new_id.id != 0).then_some(c.new_id.id);
        }
        out.push(owner);
    }
    Ok(out)
}

/// Threads connect, acquire the same names (QUEUE, some replaceable, some
/// replacing), send to them by name and disconnect (close or BYEBYE)
/// concurrently while a watcher records every name notification and ID
/// change. Afterwards every name's chain is consistent and ends with
/// NAME_REMOVE, every connection's ID_REMOVE comes after its last name
/// notification, and the registry is empty.
pub fn race_disconnect(ctx: &Ctx) -> TestResult {
    const NAMES: [&str; 3] = ["org.example.D0", "org.example.D1", "org.example.D2"];
    const WORKERS: usize = 3;
    const ROUNDS: usize = 12;
    let w = util::hello_pool(ctx, 0, ATTACH_TIMESTAMP, 16 * crate::ctx::POOL_SIZE)?;
    util::watch_all(&w)?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(u64, Notification)>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let ep = ctx.endpoint();
    std::thread::scope(|sc| {
        let (stop_w, seen_w, errs_w, wr) = (stop.clone(), seen.clone(), errors.clone(), &w);
        sc.spawn(move || watch_loop(wr, &stop_w, &seen_w, &errs_w));
        let mut workers = Vec::new();
        for k in 0..WORKERS {
            let (errs, ep) = (errors.clone(), ep.clone());
            workers.push(sc.spawn(move || {
                let err = |m: String| errs.lock().unwrap().push(m);
                for i in 0..ROUNDS {
                    let c = match Connection::hello(&ep, 0, 0, 0, 64 * 1024) {
                        Ok(c) => c,
                        Err(e) => return err(format!("HELLO: {e}")),
                    };
                    for (j, name) in NAMES.iter().enumerate() {
                        let flags = match (i + j + k) % 3 {
                            0 => QUEUE,
                            1 => QUEUE | ALLOW,
                            _ => REPLACE | QUEUE | ALLOW,
                        };
                        if let Err(e) = c.name_acquire(name, flags) {
                            err(format!("acquire {name}: {e}"));
                        }
                        match c.send(&to_name(NAMES[(j + 1) % 3], 1, b"x"), 0) {
                            Ok(_) | Err(Errno::ENOBUFS) | Err(Errno::EXFULL) => {}
                            // The receiver may be disconnecting right now,
                            // or the name have no owner at this moment.
                            Err(Errno::ECONNRESET) | Err(Errno::ESRCH) => {}
                            Err(e) => err(format!("send to {name}: {e}")),
                        }
                    }
                    if i % 2 == 0 {
                        match c.byebye() {
                            Ok(()) | Err(Errno::EBUSY) => {}
                            Err(e) => err(format!("BYEBYE: {e}")),
                        }
                    }
                    drop(c);
                }
            }));
        }
        for h in workers {
            let _ = h.join();
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
    });
    let errs = errors.lock().unwrap();
    ensure!(errs.is_empty(), "errors during the race: {:?}", *errs);
    let seen = seen.lock().unwrap();
    let owners = check_chains(&seen, &NAMES)?;
    ensure_eq!(
        owners,
        vec![None, None, None],
        "owners after everybody left"
    );
    let left = expect_ok(
        "LIST NAMES|QUEUED",
        w.list_records(LIST_NAMES | LIST_QUEUED),
    )?;
    ensure!(left.is_empty(), "names left: {left:?}");
    // Nothing about a connection after its ID_REMOVE.
    let mut removed = std::collections::HashSet::new();
    let mut added = 0;
    for (_, n) in seen.iter() {
        match n {
            Notification::IdRemove(i) => {
                ensure!(removed.insert(i.id), "two ID_REMOVE of {}", i.id);
            }
            Notification::IdAdd(_) => added += 1,
            Notification::NameAdd(c)
            | Notification::NameChange(c)
            | Notification::NameRemove(c) => {
                for id in [c.old_id.id, c.new_id.id] {
                    ensure!(
                        !removed.contains(&id),
                        "name notification {n:?} after the ID_REMOVE of {id}"
                    );
                }
            }
            other => return Err(format!("watcher got {other:?}")),
        }
    }
    ensure_eq!(added, WORKERS * ROUNDS, "ID_ADDs");
    ensure_eq!(removed.len(), WORKERS * ROUNDS, "ID_REMOVEs");
    Ok(())
}
