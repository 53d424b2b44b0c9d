//! The match database (match.md 2-7): MATCH_ADD validation and errnos,
//! MATCH_REMOVE, the 256-entry limit and REPLACE, and the semantics of
//! every user rule (BLOOM_MASK with generations, NAME, ID, DST_ID), mixed
//! and empty entries, and matches belonging to their connection. Kernel
//! rules (ID_*, NAME_*) are in notify.rs.

use kdbus::consts::*;
use kdbus::{
    BloomParams, CmdBuf, Connection, Errno, MatchRule, MessageType, MsgBuilder, RuleMask,
    SignalFilter, FLAG_NEGOTIATE, MATCH_ID_ANY,
};

use super::util::{self, acquire, broadcast, expect_signal, filter_bits, mask_bits, msg, send};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const BC: u64 = kdbus::DST_ID_BROADCAST;
const BAD: u64 = 0xbad;

/// Receives everything queued at `c` and returns the cookies (FREEing
/// each), checking nothing was lost.
fn drain_cookies(c: &Connection, what: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    loop {
        match c.recv(0, 0) {
            Ok(r) => {
                ensure_eq!(r.reply.dropped_msgs, 0, "{what}: dropped_msgs");
                let m = util::parse(&r, what)?;
                out.push(m.cookie);
                expect_ok("FREE", r.free())?;
            }
            Err(Errno::EAGAIN) => return Ok(out),
            Err(e) => return Err(format!("{what}: RECV: {e}")),
        }
    }
}

/// MATCH_ADD with `rule` must fail with `want`.
fn add_err(c: &Connection, rule: MatchRule, want: Errno, what: &str) -> TestResult {
    expect_errno(&format!("MATCH_ADD {what}"), c.match_add(&rule), want)
}

/// MATCH_ADD validation (match.md 3, abi.md 5.1): flags (REPLACE only, +
/// NEGOTIATE writes back 1), BLOOM_MASK sizes (EDOM unless a non-zero
/// multiple of the bus bloom size), NAME (valid, no wildcard), ID/DST_ID
/// (8 bytes), ID_ADD/ID_REMOVE (16), NAME_* (>= 32, optional string),
/// foreign items; nothing is installed on failure; EOPNOTSUPP for
/// monitors before parsing; ECONNRESET after BYEBYE.
pub fn add_errors(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    // Before a's entries: its ID_ADD would match the entry without rules.
    let b = ctx.hello()?;
    expect_ok(
        "MATCH_ADD REPLACE of a new cookie",
        a.match_add(&MatchRule::new(1).replace()),
    )?;
    for f in [2, 4, 1 << 20] {
        add_err(
            &a,
            MatchRule::new(BAD).flags(f),
            Errno::EINVAL,
            &format!("flags {f:#x}"),
        )?;
    }
    for size in [8u64, 24, 31] {
        let mut c = MatchRule::new(BAD).into_cmd();
        c.set_size(size);
        expect_errno(
            &format!("MATCH_ADD with size {size}"),
            a.match_add_raw(&mut c),
            Errno::EINVAL,
        )?;
        let mut c = CmdBuf::match_cmd(0, BAD);
        c.set_size(size);
        expect_errno(
            &format!("MATCH_REMOVE with size {size}"),
            a.match_remove_raw(&mut c),
            Errno::EINVAL,
        )?;
    }
    let mut c = MatchRule::new(BAD).flags(FLAG_NEGOTIATE).into_cmd();
    expect_ok("MATCH_ADD negotiation", a.match_add_raw(&mut c))?;
    ensure_eq!(c.flags(), 1, "negotiated MATCH_ADD flags");
    for len in [0usize, 8, 56, 65, 72, 120, 200] {
        add_err(
            &a,
            MatchRule::new(BAD).item(ITEM_BLOOM_MASK, &vec![0; len]),
            Errno::EDOM,
            &format!("with a {len}-byte BLOOM_MASK"),
        )?;
    }
    for len in [64usize, 128, 192, 640] {
        expect_ok(
            &format!("MATCH_ADD with a {len}-byte BLOOM_MASK"),
            a.match_add(&MatchRule::new(2).item(ITEM_BLOOM_MASK, &vec![0; len])),
        )?;
    }
    for name in ["a", "a.*", "1a.b", "a..b", "org.example.*"] {
        add_err(
            &a,
            MatchRule::new(BAD).name(name),
            Errno::EINVAL,
            &format!("NAME {name:?}"),
        )?;
    }
    add_err(
        &a,
        MatchRule::new(BAD).item(ITEM_NAME, b"org.example.NoNul"),
        Errno::EINVAL,
        "unterminated NAME",
    )?;
    for (ty, len) in [
        (ITEM_ID, 4usize),
        (ITEM_ID, 16),
        (ITEM_DST_ID, 0),
        (ITEM_DST_ID, 12),
        (ITEM_ID_ADD, 8),
        (ITEM_ID_ADD, 24),
        (ITEM_ID_REMOVE, 0),
        (ITEM_ID_REMOVE, 32),
        (ITEM_NAME_ADD, 24),
        (ITEM_NAME_REMOVE, 16),
        (ITEM_NAME_CHANGE, 0),
    ] {
        add_err(
            &a,
            MatchRule::new(BAD).item(ty, &vec![0; len]),
            Errno::EINVAL,
            &format!("item {ty:#x} with a {len}-byte payload"),
        )?;
    }
    let mut p = vec![0u8; 32];
    p.extend_from_slice(b"abc");
    add_err(
        &a,
        MatchRule::new(BAD).item(ITEM_NAME_ADD, &p),
        Errno::EINVAL,
        "NAME_ADD with an unterminated name",
    )?;
    p.push(0);
    p[..8].copy_from_slice(&MATCH_ID_ANY.to_ne_bytes());
    p[16..24].copy_from_slice(&MATCH_ID_ANY.to_ne_bytes());
    expect_ok(
        "MATCH_ADD NAME_ADD with a name (syntax not checked)",
        a.match_add(&MatchRule::new(3).item(ITEM_NAME_ADD, &p)),
    )?;
    for ty in [
        ITEM_PAYLOAD_VEC,
        ITEM_DST_NAME,
        ITEM_BLOOM_FILTER,
        ITEM_TIMESTAMP,
    ] {
        add_err(
            &a,
            MatchRule::new(BAD).item(ty, &[0; 16]),
            Errno::EINVAL,
            &format!("with an item of type {ty:#x}"),
        )?;
    }
    // A valid rule followed by an invalid one installs nothing.
    add_err(
        &a,
        MatchRule::new(BAD).sender_id(MATCH_ID_ANY).name("x"),
        Errno::EINVAL,
        "valid ID then invalid NAME",
    )?;
    add_err(
        &a,
        MatchRule::new(BAD)
            .sender_id(MATCH_ID_ANY)
            .item(ITEM_BLOOM_MASK, &[0; 8]),
        Errno::EDOM,
        "valid ID then a bad mask",
    )?;
    expect_errno(
        "MATCH_REMOVE of the refused cookie",
        a.match_remove(BAD),
        Errno::EBADSLT,
    )?;
    // Nothing refused got in: a broadcast reaches a only through entry 1
    // (no rules) - exactly once.
    send(&b, &broadcast(&filter_bits(0, &[]), 9), "broadcast")?;
    ensure_eq!(drain_cookies(&a, "a")?, vec![9], "broadcasts at a");

    let mon = util::monitor(ctx)?;
    add_err(&mon, MatchRule::new(1), Errno::EOPNOTSUPP, "on a monitor")?;
    let mut bad = MatchRule::new(1).flags(1 << 30).into_cmd();
    expect_errno(
        "MATCH_ADD with bad flags on a monitor",
        mon.match_add_raw(&mut bad),
        Errno::EOPNOTSUPP,
    )?;
    expect_ok("BYEBYE", b.byebye())?;
    add_err(&b, MatchRule::new(1), Errno::ECONNRESET, "after BYEBYE")?;
    expect_errno(
        "MATCH_REMOVE after BYEBYE",
        b.match_remove(1),
        Errno::ECONNRESET,
    )
}

/// MATCH_REMOVE (match.md 7): removes every entry with the cookie,
/// EBADSLT when there is none; flags only NEGOTIATE (writes back 0); no
/// rule items; EOPNOTSUPP on a monitor.
pub fn remove(ctx: &Ctx) -> TestResult {
    let r = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    expect_errno(
        "MATCH_REMOVE unknown cookie",
        r.match_remove(5),
        Errno::EBADSLT,
    )?;
    for (cookie, src) in [(5, a.id()), (5, b.id()), (6, c.id())] {
        expect_ok(
            "MATCH_ADD ID rule",
            r.match_add(&MatchRule::new(cookie).sender_id(src)),
        )?;
    }
    let f = filter_bits(0, &[1]);
    let round = |base: u64| -> TestResult {
        send(&a, &broadcast(&f, base + 1), "a")?;
        send(&b, &broadcast(&f, base + 2), "b")?;
        send(&c, &broadcast(&f, base + 3), "c").map(drop)
    };
    round(0)?;
    ensure_eq!(
        drain_cookies(&r, "before")?,
        vec![1, 2, 3],
        "before MATCH_REMOVE"
    );
    for fl in [1, MATCH_REPLACE << 1, 1 << 33] {
        let mut cmd = CmdBuf::match_cmd(fl, 5);
        expect_errno(
            &format!("MATCH_REMOVE flags {fl:#x}"),
            r.match_remove_raw(&mut cmd),
            Errno::EINVAL,
        )?;
    }
    let mut cmd = CmdBuf::match_cmd(0, 5);
    cmd.push_u64(ITEM_ID, a.id());
    expect_errno(
        "MATCH_REMOVE with a rule item",
        r.match_remove_raw(&mut cmd),
        Errno::EINVAL,
    )?;
    let mut cmd = CmdBuf::match_cmd(FLAG_NEGOTIATE, 5);
    expect_ok("MATCH_REMOVE negotiation", r.match_remove_raw(&mut cmd))?;
    ensure_eq!(cmd.flags(), 0, "negotiated MATCH_REMOVE flags");
    round(10)?;
    ensure_eq!(
        drain_cookies(&r, "after failed removes")?,
        vec![11, 12, 13],
        "nothing removed yet"
    );
    expect_ok("MATCH_REMOVE 5", r.match_remove(5))?;
    round(20)?;
    ensure_eq!(drain_cookies(&r, "after")?, vec![23], "only cookie 6 left");
    expect_errno("MATCH_REMOVE 5 again", r.match_remove(5), Errno::EBADSLT)?;
    expect_ok("MATCH_REMOVE 6", r.match_remove(6))?;
    round(30)?;
    ensure_eq!(drain_cookies(&r, "empty")?, Vec::<u64>::new(), "no entries");
    let mon = util::monitor(ctx)?;
    expect_errno(
        "MATCH_REMOVE on a monitor",
        mon.match_remove(5),
        Errno::EOPNOTSUPP,
    )
}

/// At most 256 entries (match.md 3): the 257th is EMFILE and installs
/// nothing; REPLACE of an unknown cookie is EMFILE too; REPLACE of a
/// cookie held by entries always leaves room (here: all 256 at once);
/// MATCH_REMOVE makes room.
pub fn limit(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    // Before a's entries: its ID_ADD would match the entry without rules.
    let b = ctx.hello()?;
    for i in 0..256 {
        expect_ok(
            &format!("MATCH_ADD entry {i}"),
            a.match_add(&MatchRule::new(7).sender_id(1000 + i)),
        )?;
    }
    add_err(&a, MatchRule::new(8), Errno::EMFILE, "257th entry")?;
    add_err(
        &a,
        MatchRule::new(8).replace(),
        Errno::EMFILE,
        "REPLACE of an unknown cookie",
    )?;
    expect_errno("MATCH_REMOVE 8", a.match_remove(8), Errno::EBADSLT)?;
    expect_ok(
        "REPLACE of the 256 entries of cookie 7",
        a.match_add(&MatchRule::new(7).replace()),
    )?;
    for i in 0..255 {
        expect_ok(
            &format!("MATCH_ADD after REPLACE {i}"),
            a.match_add(&MatchRule::new(9).sender_id(i + 1)),
        )?;
    }
    add_err(&a, MatchRule::new(10), Errno::EMFILE, "full again")?;
    expect_ok(
        "REPLACE cookie 7 at the limit",
        a.match_add(&MatchRule::new(7).replace()),
    )?;
    expect_ok("MATCH_REMOVE 7", a.match_remove(7))?;
    expect_ok(
        "MATCH_ADD after MATCH_REMOVE",
        a.match_add(&MatchRule::new(10)),
    )?;
    add_err(&a, MatchRule::new(11), Errno::EMFILE, "full once more")?;
    // The REPLACEd entry (no rules) is the one matching everything.
    send(&b, &broadcast(&filter_bits(0, &[]), 5), "broadcast")?;
    ensure_eq!(
        drain_cookies(&a, "a")?,
        vec![5],
        "broadcast through entry 10"
    );
    Ok(())
}

/// KDBUS_MATCH_REPLACE removes every entry with the cookie before adding
/// the new one.
pub fn replace(ctx: &Ctx) -> TestResult {
    let r = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    expect_ok(
        "entry 1 for a",
        r.match_add(&MatchRule::new(1).sender_id(a.id())),
    )?;
    expect_ok(
        "entry 1 for b",
        r.match_add(&MatchRule::new(1).sender_id(b.id())),
    )?;
    let f = filter_bits(0, &[]);
    send(&a, &broadcast(&f, 1), "a")?;
    send(&b, &broadcast(&f, 2), "b")?;
    send(&c, &broadcast(&f, 3), "c")?;
    ensure_eq!(drain_cookies(&r, "before")?, vec![1, 2], "before REPLACE");
    expect_ok(
        "REPLACE cookie 1 with a rule for c",
        r.match_add(&MatchRule::new(1).sender_id(c.id()).replace()),
    )?;
    send(&a, &broadcast(&f, 4), "a")?;
    send(&b, &broadcast(&f, 5), "b")?;
    send(&c, &broadcast(&f, 6), "c")?;
    ensure_eq!(drain_cookies(&r, "after")?, vec![6], "after REPLACE");
    expect_ok("MATCH_REMOVE 1", r.match_remove(1))?;
    expect_errno("MATCH_REMOVE 1 again", r.match_remove(1), Errno::EBADSLT)
}

/// BLOOM_MASK rules (match.md 5): every mask bit must be in the filter; a
/// zero mask matches every filter, an all-ones filter passes every mask;
/// masks and filters built the sd-bus way select by interface/member.
pub fn bloom(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = ctx.hello()?;
    let z = ctx.hello()?;
    let d = ctx.hello()?;
    expect_ok(
        "mask {3, 70, 500}",
        r.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[3, 70, 500]]))),
    )?;
    expect_ok(
        "zero mask",
        z.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[]]))),
    )?;
    let p = BloomParams::DEFAULT;
    let sig = |member: &str| {
        SignalFilter::new()
            .interface("org.example.Iface")
            .member(member)
            .path("/org/example/obj")
            .arg_str("org.example.Arg")
            .filter(p, 0)
    };
    let mask = RuleMask::new()
        .message_type(MessageType::Signal)
        .interface("org.example.Iface")
        .member("Changed")
        .mask(p);
    expect_ok(
        "sd-bus style mask",
        d.match_add(&MatchRule::new(1).bloom_mask(&mask)),
    )?;
    let all: Vec<u64> = (0..512).collect();
    let filters = [
        (1, filter_bits(0, &[3, 70, 500, 100])),
        (2, filter_bits(0, &[3, 70])),
        (3, filter_bits(0, &[])),
        (4, filter_bits(0, &all)),
        (5, filter_bits(0, &[3, 500, 69, 71])),
        (6, sig("Changed")),
        (7, sig("Other")),
    ];
    for (cookie, f) in &filters {
        send(&s, &broadcast(f, *cookie), &format!("broadcast {cookie}"))?;
    }
    ensure_eq!(drain_cookies(&r, "r")?, vec![1, 4], "mask {{3, 70, 500}}");
    ensure_eq!(
        drain_cookies(&z, "z")?,
        vec![1, 2, 3, 4, 5, 6, 7],
        "zero mask"
    );
    let want: Vec<u64> = filters
        .iter()
        .filter(|(_, f)| mask.matches(f))
        .map(|(c, _)| *c)
        .collect();
    ensure_eq!(drain_cookies(&d, "d")?, want.clone(), "sd-bus style mask");
    ensure!(
        want.contains(&6) && !want.contains(&7),
        "mask/filter model: {want:?}"
    );
    Ok(())
}

/// Bloom generations (match.md 5): with G mask generations the kernel
/// uses generation min(filter.generation, G - 1); a one-generation mask
/// applies to filters of every generation.
pub fn bloom_generations(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = ctx.hello()?;
    let one = ctx.hello()?;
    expect_ok(
        "3-generation mask {1} {2} {3}",
        r.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[1], &[2], &[3]]))),
    )?;
    expect_ok(
        "1-generation mask {1}",
        one.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[1]]))),
    )?;
    let cases: [(u64, u64, &[u64]); 9] = [
        (1, 0, &[1]),
        (2, 0, &[2, 3]),
        (3, 1, &[2]),
        (4, 1, &[1, 3]),
        (5, 2, &[3]),
        (6, 7, &[3]),
        (7, 7, &[1, 2]),
        (8, u64::MAX, &[3]),
        (9, 5, &[1]),
    ];
    for (cookie, generation, bits) in cases {
        send(
            &s,
            &broadcast(&filter_bits(generation, bits), cookie),
            &format!("broadcast {cookie} (generation {generation})"),
        )?;
    }
    ensure_eq!(
        drain_cookies(&r, "r")?,
        vec![1, 3, 5, 6, 8],
        "3-generation mask"
    );
    ensure_eq!(
        drain_cookies(&one, "one")?,
        vec![1, 4, 7, 9],
        "1-generation mask"
    );
    Ok(())
}

/// NAME rules (match.md 4): satisfied only while the sender is the
/// primary owner at SEND time (queued ownership does not count); they do
/// not select kernel notifications about the name.
pub fn name_rule(ctx: &Ctx) -> TestResult {
    const S: &str = "org.example.Sender";
    let r = ctx.hello()?;
    let s = ctx.hello()?;
    let q = ctx.hello()?;
    expect_ok("NAME rule", r.match_add(&MatchRule::new(1).name(S)))?;
    expect_ok(
        "NAME rule for a name nobody owns",
        r.match_add(&MatchRule::new(2).name("org.example.Nobody")),
    )?;
    let f = filter_bits(0, &[]);
    send(&s, &broadcast(&f, 1), "s without the name")?;
    acquire(&s, S, 0, NAME_PRIMARY | NAME_ACQUIRED, "s acquires")?;
    acquire(
        &q,
        S,
        NAME_QUEUE,
        NAME_QUEUE | NAME_IN_QUEUE | NAME_ACQUIRED,
        "q queues",
    )?;
    send(&s, &broadcast(&f, 2), "s as owner")?;
    send(&q, &broadcast(&f, 3), "q queued")?;
    send(
        &s,
        &MsgBuilder::signal(r.id(), &f).cookie(4).vec(b"u"),
        "unicast signal from s",
    )?;
    expect_ok("s releases", s.name_release(S))?;
    send(&s, &broadcast(&f, 5), "s after release")?;
    send(&q, &broadcast(&f, 6), "q as new owner")?;
    ensure_eq!(
        drain_cookies(&r, "r")?,
        vec![2, 4, 6],
        "signals from the primary owner only (no NAME_* notifications)"
    );
    Ok(())
}

/// ID rules: the sender's ID, or ANY; user rules do not select kernel
/// notifications.
pub fn id_rule(ctx: &Ctx) -> TestResult {
    let r = ctx.hello()?;
    let any = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    expect_ok(
        "ID rule for a",
        r.match_add(&MatchRule::new(1).sender_id(a.id())),
    )?;
    expect_ok(
        "ID rule ANY",
        any.match_add(&MatchRule::new(1).sender_id(MATCH_ID_ANY)),
    )?;
    let f = filter_bits(0, &[9]);
    send(&a, &broadcast(&f, 1), "a")?;
    send(&b, &broadcast(&f, 2), "b")?;
    send(
        &a,
        &MsgBuilder::signal(r.id(), &f).cookie(3).vec(b"u"),
        "a -> r",
    )?;
    send(
        &b,
        &MsgBuilder::signal(r.id(), &f).cookie(4).vec(b"u"),
        "b -> r",
    )?;
    // Kernel notifications (ID_ADD, NAME_ADD, ID_REMOVE) do not match.
    let c = ctx.hello()?;
    acquire(&c, "org.example.C", 0, NAME_PRIMARY | NAME_ACQUIRED, "c")?;
    drop(c);
    ensure_eq!(drain_cookies(&r, "r")?, vec![1, 3], "ID rule for a");
    ensure_eq!(drain_cookies(&any, "any")?, vec![1, 2], "ID rule ANY");
    Ok(())
}

/// DST_ID rules compare with the message's dst_id as sent: the receiver's
/// ID for unicast signals to it, 0 for signals addressed by name,
/// KDBUS_DST_ID_BROADCAST for broadcasts; ANY (= ~0) matches everything.
pub fn dst_id_rule(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = ctx.hello()?;
    let other = ctx.hello()?;
    acquire(&r, "org.example.R", 0, NAME_PRIMARY | NAME_ACQUIRED, "r")?;
    let f = filter_bits(0, &[]);
    let round = |base: u64| -> TestResult {
        send(&s, &broadcast(&f, base + 1), "broadcast")?;
        send(
            &s,
            &MsgBuilder::signal(r.id(), &f).cookie(base + 2).vec(b"u"),
            "unicast",
        )?;
        send(
            &s,
            &MsgBuilder::signal(0, &f)
                .dst_name("org.example.R")
                .cookie(base + 3)
                .vec(b"n"),
            "by name",
        )
        .map(drop)
    };
    let cases: [(u64, &[u64]); 5] = [
        (r.id(), &[2]),
        (other.id(), &[]),
        (0, &[3]),
        (BC, &[1, 2, 3]),
        (MATCH_ID_ANY, &[1, 2, 3]),
    ];
    for (k, (rule, want)) in cases.into_iter().enumerate() {
        let base = 10 * k as u64;
        expect_ok(
            "DST_ID rule",
            r.match_add(&MatchRule::new(1).dst_id(rule).replace()),
        )?;
        round(base)?;
        let want: Vec<u64> = want.iter().map(|c| base + c).collect();
        ensure_eq!(
            drain_cookies(&r, "r")?,
            want,
            "DST_ID rule {rule:#x} (r is {:#x})",
            r.id()
        );
    }
    Ok(())
}

/// An entry mixing user and kernel rules, or two kernel rule types, never
/// matches anything (match.md 4).
pub fn mixed_kinds(ctx: &Ctx) -> TestResult {
    let r = ctx.hello()?;
    let s = ctx.hello()?;
    for rule in [
        MatchRule::new(1)
            .sender_id(MATCH_ID_ANY)
            .id_add(MATCH_ID_ANY),
        MatchRule::new(2)
            .bloom_mask(&mask_bits(&[&[]]))
            .name_add(MATCH_ID_ANY, MATCH_ID_ANY, None),
        MatchRule::new(3)
            .dst_id(MATCH_ID_ANY)
            .name_change(MATCH_ID_ANY, MATCH_ID_ANY, None),
        MatchRule::new(4)
            .id_add(MATCH_ID_ANY)
            .id_remove(MATCH_ID_ANY),
        MatchRule::new(5)
            .name_add(MATCH_ID_ANY, MATCH_ID_ANY, None)
            .name_remove(MATCH_ID_ANY, MATCH_ID_ANY, None),
        MatchRule::new(6)
            .id_add(MATCH_ID_ANY)
            .name_add(MATCH_ID_ANY, MATCH_ID_ANY, None),
    ] {
        expect_ok("MATCH_ADD of a mixed entry", r.match_add(&rule))?;
    }
    let f = filter_bits(0, &[]);
    send(&s, &broadcast(&f, 1), "broadcast")?;
    send(
        &s,
        &MsgBuilder::signal(r.id(), &f).cookie(2).vec(b"u"),
        "unicast signal",
    )?;
    let c = ctx.hello()?;
    acquire(
        &c,
        "org.example.M",
        0,
        NAME_PRIMARY | NAME_ACQUIRED,
        "acquire",
    )?;
    acquire(
        &s,
        "org.example.M",
        NAME_QUEUE,
        NAME_QUEUE | NAME_IN_QUEUE | NAME_ACQUIRED,
        "q",
    )?;
    drop(c);
    expect_ok("release", s.name_release("org.example.M"))?;
    util::expect_empty(&r, "connection with only mixed entries")
}

/// An entry without rules accepts every signal (broadcast, unicast, the
/// connection's own broadcasts) and every broadcast notification; matches
/// never affect plain unicasts, and a connection without entries gets no
/// signal and no notification.
pub fn empty_entry(ctx: &Ctx) -> TestResult {
    let r = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let none = ctx.hello()?;
    let s = ctx.hello()?;
    expect_ok("entry without rules", r.match_add(&MatchRule::new(1)))?;
    let f = filter_bits(0, &[5]);
    send(&s, &broadcast(&f, 1), "broadcast")?;
    send(
        &s,
        &MsgBuilder::signal(r.id(), &f).cookie(2).vec(b"u"),
        "unicast signal",
    )?;
    send(&r, &broadcast(&f, 3), "r's own broadcast")?;
    send(&s, &msg(r.id(), 4, b"plain"), "plain unicast")?;
    send(&s, &msg(none.id(), 5, b"plain"), "plain unicast to none")?;
    expect_signal(&r, s.id(), 1, BC, "broadcast at r")?;
    expect_signal(&r, s.id(), 2, r.id(), "unicast signal at r")?;
    expect_signal(&r, r.id(), 3, BC, "own broadcast at r")?;
    ensure_eq!(
        util::recv_data(&r, s.id(), 4, "plain at r")?,
        b"plain".to_vec(),
        "payload"
    );
    ensure_eq!(
        util::recv_data(&none, s.id(), 5, "plain at none")?,
        b"plain".to_vec(),
        "unicast without matches"
    );
    let c = ctx.hello()?;
    let cid = c.id();
    acquire(&c, "org.example.E", 0, NAME_PRIMARY | NAME_ACQUIRED, "c")?;
    drop(c);
    util::expect_notifications(
        &r,
        &[
            util::id_add(cid, 0),
            util::name_add("org.example.E", (cid, NAME_PRIMARY)),
            util::name_remove("org.example.E", (cid, NAME_PRIMARY)),
            util::id_remove(cid, 0),
        ],
        "notifications through the empty entry",
    )?;
    util::expect_empty(&none, "connection without entries")
}

/// Matches belong to their connection: another connection gets nothing
/// through them, a closed connection's entries die with it, and a
/// disconnected connection cannot change its database.
pub fn per_connection(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    expect_ok("a's entry", a.match_add(&MatchRule::new(1)))?;
    let f = filter_bits(0, &[]);
    send(&s, &broadcast(&f, 1), "broadcast")?;
    ensure_eq!(drain_cookies(&a, "a")?, vec![1], "a");
    util::expect_empty(&b, "b has no entry")?;
    drop(a);
    let c = ctx.hello()?;
    send(&s, &broadcast(&f, 2), "broadcast after a closed")?;
    util::expect_empty(&c, "a new connection inherits nothing")?;
    util::expect_empty(&b, "b still nothing")?;
    expect_ok("c's entry", c.match_add(&MatchRule::new(7)))?;
    expect_ok("BYEBYE", c.byebye())?;
    expect_errno(
        "MATCH_REMOVE after BYEBYE",
        c.match_remove(7),
        Errno::ECONNRESET,
    )
}

/// On a bus with 128-byte blooms (bus.md), masks must be multiples of 128
/// bytes (EDOM otherwise) and filters exactly 128 bytes; bits beyond the
/// first 64 bytes take part in matching.
pub fn bloom_bus_size(ctx: &Ctx) -> TestResult {
    let bus = ctx.make_bus(kdbus::BusMaker::new(ctx.unique_name()).bloom(128, 3))?;
    let ep = bus.endpoint();
    let s = ctx.hello_on(&ep)?;
    let r = ctx.hello_on(&ep)?;
    let z = ctx.hello_on(&ep)?;
    for len in [0usize, 8, 64, 192, 200] {
        add_err(
            &r,
            MatchRule::new(BAD).item(ITEM_BLOOM_MASK, &vec![0; len]),
            Errno::EDOM,
            &format!("{len}-byte mask on a 128-byte bus"),
        )?;
    }
    for len in [128usize, 256, 384] {
        expect_ok(
            &format!("{len}-byte mask on a 128-byte bus"),
            z.match_add(&MatchRule::new(2).item(ITEM_BLOOM_MASK, &vec![0; len])),
        )?;
    }
    let p = BloomParams::new(128, 3).map_err(|e| format!("BloomParams: {e}"))?;
    let bits = |b: &[u64]| {
        let mut x = kdbus::Bloom::with_params(p);
        for &i in b {
            x.set_bit(i);
        }
        x
    };
    expect_ok(
        "mask with bit 1000",
        r.match_add(&MatchRule::new(1).bloom_mask(&kdbus::BloomMask::new(bits(&[1000])))),
    )?;
    send_err_bc(&s, 64, Errno::EDOM)?;
    send_err_bc(&s, 256, Errno::EDOM)?;
    let f = |b: &[u64]| kdbus::BloomFilter::new(0, bits(b));
    send(&s, &broadcast(&f(&[1000, 3]), 1), "filter with bit 1000")?;
    send(&s, &broadcast(&f(&[999, 3]), 2), "filter without bit 1000")?;
    ensure_eq!(drain_cookies(&r, "r")?, vec![1], "mask with bit 1000");
    ensure_eq!(drain_cookies(&z, "z")?, vec![1, 2], "zero masks");
    Ok(())
}

fn send_err_bc(s: &Connection, len: usize, want: Errno) -> TestResult {
    util::send_err(
        s,
        &MsgBuilder::new(BC)
            .flags(MSG_SIGNAL)
            .bloom_filter(0, &vec![0; len])
            .vec(b"x"),
        want,
        &format!("broadcast with a {len}-byte filter on a 128-byte bus"),
    )
}

/// A KDBUS_ITEM_NEGOTIATE item in a non-negotiating MATCH_ADD (match.md 3
/// quirk): the recommended behaviour accepts it without creating a rule
/// (or rejects it with EINVAL); it must never make the entry dead, and
/// removing the entry must not crash (the kernel log is checked).
pub fn negotiate_item(ctx: &Ctx) -> TestResult {
    let r = ctx.hello()?;
    let a = ctx.hello()?;
    let rule = MatchRule::new(1)
        .sender_id(a.id())
        .item(ITEM_NEGOTIATE, &ITEM_ID.to_ne_bytes());
    match r.match_add(&rule) {
        Ok(()) => {
            send(&a, &broadcast(&filter_bits(0, &[]), 1), "broadcast")?;
            ensure_eq!(
                drain_cookies(&r, "r")?,
                vec![1],
                "entry with ID rule + NEGOTIATE item (no rule for it)"
            );
            expect_ok("MATCH_REMOVE of that entry", r.match_remove(1))?;
        }
        Err(Errno::EINVAL) => {
            crate::check::diag("MATCH_ADD with a NEGOTIATE item: EINVAL");
            expect_errno("MATCH_REMOVE", r.match_remove(1), Errno::EBADSLT)?;
        }
        Err(e) => return Err(format!("MATCH_ADD with a NEGOTIATE item: {e:?}")),
    }
    let r2 = ctx.hello()?;
    let only = MatchRule::new(2).item(ITEM_NEGOTIATE, &[]);
    if r2.match_add(&only).is_ok() {
        expect_ok("MATCH_REMOVE", r2.match_remove(2))?;
    }
    drop(r2);
    Ok(())
}
