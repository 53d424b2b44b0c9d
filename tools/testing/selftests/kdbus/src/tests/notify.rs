//! Kernel notifications (message.md 11-12, names.md 7, connection.md
//! 9.3): ID_ADD/ID_REMOVE and NAME_ADD/NAME_REMOVE/NAME_CHANGE with their
//! exact payloads and sizes, selection by the kernel match rules
//! (match.md 4), the moments they are (and are not) emitted, their order,
//! monitors, and the release of names by BYEBYE, close and bus teardown.

use kdbus::consts::*;
use kdbus::{Connection, Errno, MatchRule, Notification, MATCH_ID_ANY};

use super::util::{
    self, acquire, expect_notifications, id_add, id_remove, name_add, name_change, name_remove,
    send, to_name, watcher,
};
use crate::check::{diag, expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

const PRIMARY: u64 = NAME_PRIMARY;
const ACQUIRED: u64 = NAME_ACQUIRED;
const QUEUE: u64 = NAME_QUEUE;
const IN_QUEUE: u64 = NAME_IN_QUEUE;
const ANY: u64 = MATCH_ID_ANY;

/// ID_ADD / ID_REMOVE (message.md 12): 136 bytes, `{id, HELLO flags}`,
/// selected by ID_ADD/ID_REMOVE rules with ANY or the exact id, never
/// for monitors, and nothing without an entry.
pub fn id_notifications(ctx: &Ctx) -> TestResult {
    // Whatever a receiver asks for, a notification carries only its item
    // and a TIMESTAMP (message.md 12).
    let greedy = util::hello(ctx, HELLO_ACCEPT_FD, kdbus::ATTACH_ANY)?;
    let all = watcher(ctx, true)?;
    util::watch_all(&greedy)?;
    let rm = ctx.hello()?;
    let none = ctx.hello()?;
    let probe = ctx.hello()?;
    let add_next = ctx.hello()?;
    // IDs come from one counter: the next HELLO gets probe + 2 unless
    // something else takes an ID in between (checked below).
    let predicted = add_next.id() + 1;
    expect_ok(
        "ID_ADD rule for the predicted ID",
        add_next.match_add(&MatchRule::new(1).id_add(predicted)),
    )?;
    let x = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let y = ctx.hello()?;
    expect_ok(
        "ID_REMOVE rule for x",
        rm.match_add(&MatchRule::new(1).id_remove(x.id())),
    )?;
    let mon = util::monitor(ctx)?;
    let (xid, yid) = (x.id(), y.id());
    drop(x);
    drop(y);
    drop(mon);
    let want = [
        id_add(rm.id(), 0),
        id_add(none.id(), 0),
        id_add(probe.id(), 0),
        id_add(add_next.id(), 0),
        id_add(xid, HELLO_ACCEPT_FD),
        id_add(yid, 0),
        id_remove(xid, HELLO_ACCEPT_FD),
        id_remove(yid, 0),
    ];
    expect_notifications(&all, &want, "ID notifications (none for the monitor)")?;
    expect_notifications(&greedy, &want, "the same with attach_flags_recv ~0")?;
    expect_notifications(
        &rm,
        &[id_remove(xid, HELLO_ACCEPT_FD)],
        "ID_REMOVE rule for x",
    )?;
    if xid == predicted {
        expect_notifications(&add_next, &[id_add(xid, HELLO_ACCEPT_FD)], "ID_ADD rule")?;
    } else {
        diag(format!(
            "ID_ADD by id not checked: x got {xid}, predicted {predicted}"
        ));
    }
    util::expect_empty(&none, "connection without entries")?;
    // The exact size of message.md 12's example.
    let z = ctx.hello()?;
    let r = util::recv(&all, "ID_ADD of z")?;
    let m = util::parse(&r, "ID_ADD of z")?;
    ensure_eq!(
        (m.size, r.info().msg_size),
        (136, 136),
        "ID_ADD size and slice"
    );
    ensure_eq!(
        m.items[0].payload.to_vec(),
        [z.id().to_ne_bytes(), 0u64.to_ne_bytes()].concat(),
        "ID_ADD payload"
    );
    expect_ok("FREE", r.free())
}

/// NAME_ADD / NAME_CHANGE / NAME_REMOVE payloads and sizes (message.md 12:
/// NAME_ADD of "a.b" is 160 bytes; item 48 + strlen + 1): old/new ids and
/// flags exactly as names.md 7 lists them.
pub fn name_payloads(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, false)?;
    let p = ctx.hello()?;
    let q = ctx.hello()?;
    let (pid, qid) = (p.id(), q.id());
    let al = NAME_ALLOW_REPLACEMENT;
    acquire(&p, "a.b", al, al | PRIMARY | ACQUIRED, "p")?;
    acquire(
        &q,
        "a.b",
        NAME_REPLACE_EXISTING | QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "q",
    )?;
    expect_ok("q releases", q.name_release("a.b"))?;
    let long = format!("org.{}", "x".repeat(251));
    acquire(&p, &long, 0, PRIMARY | ACQUIRED, "long name")?;
    drop(p);
    let want = [
        (name_add("a.b", (pid, al | PRIMARY)), 160),
        (
            name_change("a.b", (pid, al | PRIMARY), (qid, QUEUE | PRIMARY)),
            160,
        ),
        (name_remove("a.b", (qid, QUEUE | PRIMARY)), 160),
        (name_add(&long, (pid, PRIMARY)), 64 + 304 + 40),
        (name_remove(&long, (pid, PRIMARY)), 64 + 304 + 40),
    ];
    for (i, (n, size)) in want.iter().enumerate() {
        let what = format!("name notification {i}");
        let r = util::recv(&w, &what)?;
        let m = util::parse(&r, &what)?;
        let got = util::check_notification(&m, &r.info(), &what)?;
        ensure_eq!(&got, n, "{what}");
        ensure_eq!(m.size, *size, "{what}: kdbus_msg.size");
        if i == 0 {
            let mut p = Vec::new();
            for v in [0, 0, pid, al | PRIMARY] {
                p.extend_from_slice(&u64::to_ne_bytes(v));
            }
            p.extend_from_slice(b"a.b\0");
            ensure_eq!(m.items[0].payload.to_vec(), p, "{what}: raw payload");
        }
        expect_ok("FREE", r.free())?;
    }
    util::expect_empty(&w, "after the name notifications")
}

/// NAME_* rules (match.md 4): same type, old_id.id and new_id.id equal to
/// the notification's or ANY (0 matches only the no-owner side), and the
/// name if the rule has one; flags in rules are ignored.
pub fn name_rules(ctx: &Ctx) -> TestResult {
    let p = ctx.hello()?;
    let q = ctx.hello()?;
    let (pid, qid) = (p.id(), q.id());
    const X: &str = "org.example.X";
    const Y: &str = "org.example.Y";
    let mk = |rule: MatchRule| -> Result<Connection, String> {
        let c = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
        expect_ok("MATCH_ADD", c.match_add(&rule))?;
        Ok(c)
    };
    let every_add = mk(MatchRule::new(1).name_add(0, ANY, None))?;
    let every_remove = mk(MatchRule::new(1).name_remove(ANY, 0, None))?;
    let change_from_p = mk(MatchRule::new(1).name_change(pid, ANY, None))?;
    let change_to_p = mk(MatchRule::new(1).name_change(ANY, pid, None))?;
    let change_of_x = mk(MatchRule::any_name_change(1, Some(X)))?;
    let add_by_q = mk(MatchRule::new(1).name_add(ANY, qid, None))?;
    let add_to_nobody = mk(MatchRule::new(1).name_add(0, 0, None))?;
    let remove_of_y = mk(MatchRule::any_name_remove(1, Some(Y)))?;
    let add_bad_name = mk(MatchRule::any_name_add(1, Some("no such name")))?;
    let change_p_q = mk(MatchRule::new(1).name_change(pid, qid, Some(X)))?;
    // Flags in the rule are ignored.
    let mut flagged = MatchRule::new(1).name_add(0, ANY, Some(Y)).into_cmd();
    flagged.set_u64(32 + 16 + 8, 0xffff);
    flagged.set_u64(32 + 16 + 24, 0xffff);
    let add_y_flags = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    expect_ok(
        "MATCH_ADD with flags in the rule",
        add_y_flags.match_add_raw(&mut flagged),
    )?;

    acquire(
        &p,
        X,
        NAME_ALLOW_REPLACEMENT,
        NAME_ALLOW_REPLACEMENT | PRIMARY | ACQUIRED,
        "1",
    )?;
    acquire(&q, Y, 0, PRIMARY | ACQUIRED, "2")?;
    acquire(&q, X, NAME_REPLACE_EXISTING, PRIMARY | ACQUIRED, "3")?; // CHANGE p -> q
    acquire(&p, X, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "4")?;
    expect_ok("5: q releases X", q.name_release(X))?; // CHANGE q -> p
    expect_ok("6: q releases Y", q.name_release(Y))?; // REMOVE q
    expect_ok("7: p releases X", p.name_release(X))?; // REMOVE p
    acquire(&p, Y, 0, PRIMARY | ACQUIRED, "8")?; // ADD p
    let al = NAME_ALLOW_REPLACEMENT;
    let e1 = name_add(X, (pid, al | PRIMARY));
    let e2 = name_add(Y, (qid, PRIMARY));
    let e3 = name_change(X, (pid, al | PRIMARY), (qid, PRIMARY));
    let e5 = name_change(X, (qid, PRIMARY), (pid, QUEUE | PRIMARY));
    let e6 = name_remove(Y, (qid, PRIMARY));
    let e7 = name_remove(X, (pid, QUEUE | PRIMARY));
    let e8 = name_add(Y, (pid, PRIMARY));
    let cases: Vec<(&str, &Connection, Vec<Notification>)> = vec![
        (
            "every NAME_ADD",
            &every_add,
            vec![e1.clone(), e2.clone(), e8.clone()],
        ),
        (
            "every NAME_REMOVE",
            &every_remove,
            vec![e6.clone(), e7.clone()],
        ),
        ("NAME_CHANGE from p", &change_from_p, vec![e3.clone()]),
        ("NAME_CHANGE to p", &change_to_p, vec![e5.clone()]),
        (
            "NAME_CHANGE of X",
            &change_of_x,
            vec![e3.clone(), e5.clone()],
        ),
        ("NAME_ADD by q", &add_by_q, vec![e2.clone()]),
        ("NAME_ADD to nobody", &add_to_nobody, vec![]),
        ("NAME_REMOVE of Y", &remove_of_y, vec![e6.clone()]),
        ("NAME_ADD of an unknown name", &add_bad_name, vec![]),
        ("NAME_CHANGE p -> q of X", &change_p_q, vec![e3.clone()]),
        (
            "NAME_ADD of Y, flags in the rule",
            &add_y_flags,
            vec![e2, e8],
        ),
    ];
    for (what, c, want) in cases {
        expect_notifications(c, &want, what)?;
    }
    Ok(())
}

/// Notifications are emitted exactly at the moments of names.md 7 and no
/// others: joining or leaving a queue, updating flags, releasing a queued
/// record, failed acquires and releases, and an activator joining or
/// leaving behind an owner emit nothing.
pub fn silent_operations(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let p = ctx.hello()?;
    let q = ctx.hello()?;
    let pid = p.id();
    const N: &str = "org.example.Silent";
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p")?;
    expect_notifications(
        &w,
        &[
            id_add(pid, 0),
            id_add(q.id(), 0),
            name_add(N, (pid, PRIMARY)),
        ],
        "setup",
    )?;
    acquire(
        &p,
        N,
        NAME_ALLOW_REPLACEMENT,
        NAME_ALLOW_REPLACEMENT | PRIMARY,
        "flag update",
    )?;
    acquire(&q, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "queue join")?;
    acquire(
        &q,
        N,
        QUEUE | NAME_ALLOW_REPLACEMENT,
        NAME_ALLOW_REPLACEMENT | QUEUE | IN_QUEUE,
        "q update",
    )?;
    acquire(&q, N, 0, 0, "queue leave")?;
    acquire(
        &q,
        N,
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "queue join again",
    )?;
    expect_ok("queued release", q.name_release(N))?;
    expect_errno("failed release", q.name_release(N), Errno::EADDRINUSE)?;
    expect_errno(
        "failed release",
        q.name_release("org.example.None"),
        Errno::ESRCH,
    )?;
    util::acquire_err(
        &q,
        "org.example.Silent",
        0,
        Errno::EEXIST,
        0,
        "failed acquire",
    )?;
    expect_errno(
        "invalid acquire",
        q.name_acquire("bad", 0).map(drop),
        Errno::EINVAL,
    )?;
    util::expect_empty(&w, "after the silent operations")?;
    let act = util::activator(ctx, N)?;
    let aid = act.id();
    drop(act);
    expect_notifications(
        &w,
        &[
            id_add(aid, HELLO_ACTIVATOR | HELLO_ACCEPT_FD),
            id_remove(aid, HELLO_ACTIVATOR | HELLO_ACCEPT_FD),
        ],
        "activator behind an owner comes and goes",
    )?;
    Ok(())
}

/// On disconnect (connection.md 9.3) the names are released in record
/// order (NAME_CHANGE / NAME_REMOVE, nothing for queued records, the
/// activator getting its name back), then ID_REMOVE; seqnums increase;
/// monitors get the very same notifications with the same seqnums.
pub fn disconnect_order(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let other = ctx.hello()?;
    let act = util::activator(ctx, "org.example.D3")?;
    let c = ctx.hello()?;
    let mon = expect_ok(
        "HELLO of a monitor with TIMESTAMP",
        Connection::hello(
            ctx.endpoint(),
            HELLO_MONITOR,
            0,
            ATTACH_TIMESTAMP,
            POOL_SIZE,
        ),
    )?;
    let (oid, aid, cid) = (other.id(), act.id(), c.id());
    let af = HELLO_ACTIVATOR | HELLO_ACCEPT_FD;
    acquire(&other, "org.example.D2", 0, PRIMARY | ACQUIRED, "other D2")?;
    acquire(&c, "org.example.D1", 0, PRIMARY | ACQUIRED, "c D1")?;
    acquire(
        &c,
        "org.example.D2",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "c waits D2",
    )?;
    acquire(&c, "org.example.D3", 0, PRIMARY | ACQUIRED, "c takes D3")?;
    acquire(
        &other,
        "org.example.D4",
        QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "other D4",
    )?;
    acquire(
        &c,
        "org.example.D4",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "c waits D4",
    )?;
    acquire(
        &c,
        "org.example.D5",
        QUEUE,
        QUEUE | PRIMARY | ACQUIRED,
        "c D5",
    )?;
    acquire(
        &other,
        "org.example.D5",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "other waits D5",
    )?;
    send(
        &other,
        &to_name("org.example.D3", 1, b"x"),
        "message to D3 at c",
    )?;
    let setup = vec![
        id_add(oid, 0),
        id_add(aid, af),
        name_add("org.example.D3", (aid, NAME_ACTIVATOR | PRIMARY)),
        id_add(cid, 0),
        name_add("org.example.D2", (oid, PRIMARY)),
        name_add("org.example.D1", (cid, PRIMARY)),
        name_change(
            "org.example.D3",
            (aid, NAME_ACTIVATOR | PRIMARY),
            (cid, PRIMARY),
        ),
        name_add("org.example.D4", (oid, QUEUE | PRIMARY)),
        name_add("org.example.D5", (cid, QUEUE | PRIMARY)),
    ];
    // The activator's ID_ADD/NAME_ADD order is checked by activator-hello:
    // take the first four in any order.
    util::expect_notification_set_prefix(&w, &setup[..4], "setup (activator)")?;
    let ws = expect_notifications(&w, &setup[4..], "setup")?;
    drop(c);
    let teardown = vec![
        name_remove("org.example.D1", (cid, PRIMARY)),
        name_change(
            "org.example.D3",
            (cid, PRIMARY),
            (aid, NAME_ACTIVATOR | PRIMARY),
        ),
        name_change(
            "org.example.D5",
            (cid, QUEUE | PRIMARY),
            (oid, QUEUE | PRIMARY),
        ),
        id_remove(cid, 0),
    ];
    let ws2 = expect_notifications(&w, &teardown, "disconnect")?;
    ensure!(
        ws2[0] > *ws.last().unwrap(),
        "seqnums across the disconnect"
    );
    // The message to D3 went back to the activator.
    let r = util::recv_flags(&act, RECV_PEEK, 0, "activator PEEK")?;
    ensure_eq!(
        util::parse(&r, "PEEK")?.cookie,
        1,
        "message moved back to the activator"
    );
    // The monitor saw the same notifications (after c's ID_ADD) with the
    // same seqnums, plus the unicast to D3.
    let mut mon_seen = Vec::new();
    loop {
        match mon.recv(0, 0) {
            Ok(r) => {
                let m = util::parse(&r, "monitor")?;
                if m.src_id == 0 {
                    let n = util::check_notification(&m, &r.info(), "monitor")?;
                    mon_seen.push((n, m.timestamp().map_or(0, |t| t.seqnum)));
                }
                expect_ok("FREE", r.free())?;
            }
            Err(Errno::EAGAIN) => break,
            Err(e) => return Err(format!("monitor RECV: {e:?}")),
        }
    }
    let watcher_tail: Vec<(Notification, u64)> = setup[4..]
        .iter()
        .cloned()
        .zip(ws.iter().copied())
        .chain(teardown.iter().cloned().zip(ws2.iter().copied()))
        .collect();
    ensure_eq!(
        mon_seen,
        watcher_tail,
        "monitor notifications (with seqnums)"
    );
    Ok(())
}

/// BYEBYE and close release names (NAME_REMOVE / NAME_CHANGE, then
/// ID_REMOVE); a BYEBYE refused with EBUSY releases nothing; a bus
/// teardown disconnects everybody (ECONNRESET) with names held.
pub fn cleanup(ctx: &Ctx) -> TestResult {
    let w = watcher(ctx, true)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let (aid, bid) = (a.id(), b.id());
    acquire(&a, "org.example.A", 0, PRIMARY | ACQUIRED, "a")?;
    acquire(&b, "org.example.A", QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "b")?;
    acquire(&b, "org.example.B", 0, PRIMARY | ACQUIRED, "b")?;
    expect_notifications(
        &w,
        &[
            id_add(aid, 0),
            id_add(bid, 0),
            name_add("org.example.A", (aid, PRIMARY)),
            name_add("org.example.B", (bid, PRIMARY)),
        ],
        "setup",
    )?;
    send(&b, &util::msg(aid, 1, b"pending"), "message to a")?;
    expect_errno("BYEBYE with a queued message", a.byebye(), Errno::EBUSY)?;
    util::expect_empty(&w, "EBUSY released nothing")?;
    ensure_eq!(
        util::owner_of(&w, "org.example.A")?,
        Some(aid),
        "a still owns A"
    );
    util::recv_data(&a, bid, 1, "the pending message")?;
    expect_ok("BYEBYE", a.byebye())?;
    expect_notifications(
        &w,
        &[
            name_change("org.example.A", (aid, PRIMARY), (bid, QUEUE | PRIMARY)),
            id_remove(aid, 0),
        ],
        "BYEBYE",
    )?;
    expect_errno(
        "NAME_RELEASE after BYEBYE",
        a.name_release("org.example.A"),
        Errno::ECONNRESET,
    )?;
    drop(b);
    expect_notifications(
        &w,
        &[
            name_remove("org.example.A", (bid, QUEUE | PRIMARY)),
            name_remove("org.example.B", (bid, PRIMARY)),
            id_remove(bid, 0),
        ],
        "close",
    )?;
    let left = expect_ok(
        "LIST NAMES|QUEUED",
        w.list_records(LIST_NAMES | LIST_QUEUED),
    )?;
    ensure!(left.is_empty(), "names after everybody left: {left:?}");

    // Bus teardown with names, queued records and an activator.
    let bus = ctx.new_bus(0)?;
    let ep = bus.endpoint();
    let c1 = ctx.hello_on(&ep)?;
    let c2 = ctx.hello_on(&ep)?;
    let w2 = ctx.hello_on(&ep)?;
    util::watch_all(&w2)?;
    acquire(&c1, "org.example.T", 0, PRIMARY | ACQUIRED, "c1")?;
    acquire(
        &c2,
        "org.example.T",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "c2",
    )?;
    let fd = kdbus::open_endpoint(&ep).map_err(|e| format!("open: {e}"))?;
    let mut cmd = Connection::hello_cmd(HELLO_ACTIVATOR, 0, 0, POOL_SIZE);
    cmd.push_str(ITEM_NAME, "org.example.U");
    let act = expect_ok(
        "activator on the second bus",
        Connection::from_hello(fd, &mut cmd),
    )?;
    drop(bus);
    for (what, c) in [("c1", &c1), ("c2", &c2), ("watcher", &w2)] {
        expect_errno(
            &format!("NAME_ACQUIRE by {what} after the bus teardown"),
            c.name_acquire("org.example.T", 0).map(drop),
            Errno::ECONNRESET,
        )?;
        expect_errno(
            &format!("MATCH_ADD by {what} after the bus teardown"),
            c.match_add(&MatchRule::new(1)),
            Errno::ECONNRESET,
        )?;
        expect_errno(
            &format!("LIST by {what} after the bus teardown"),
            c.list(LIST_NAMES).map(drop),
            Errno::ECONNRESET,
        )?;
    }
    expect_errno(
        "activator RECV after teardown",
        act.recv(0, 0).map(drop),
        Errno::ECONNRESET,
    )?;
    Ok(())
}
