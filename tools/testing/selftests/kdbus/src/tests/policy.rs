//! The bus policy database (policy.md): uploads by policy holders and
//! activators and their refusals (3, connection.md 3.2 step 19, 5), the
//! query (2: exact shadows wildcard, one level of wildcard, USER / GROUP
//! with supplementary groups / WORLD, the highest level wins, levels imply
//! the lower ones), OWN at NAME_ACQUIRE (5.1, names.md 3: EPERM before
//! EEXIST), TALK for unicasts and calls by ID and by name (5.2: the
//! sender's current creds, the same-uid rule against the receiver's real
//! uid, the most permissive of the receiver's names) and the receiver's
//! TALK for signals and broadcasts (6), with owners bypassing the bus
//! database (4).
//!
//! Other users: `ctx::as_ids` switches only the effective ids of the test
//! process (its real uid stays 0, which matters for the same-uid rule and
//! accounting), forked helpers (`sys::become_ids`) set real, effective and
//! supplementary ids. The buses are world-accessible.

use std::path::Path;

use kdbus::consts::*;
use kdbus::{
    Access, Bloom, BloomFilter, BloomParams, Bus, BusMaker, CmdBuf, Connection, Control, Errno,
    MatchRule, MsgBuilder, PolicyEntry, SendReply, MATCH_ID_ANY,
};

use super::sys::{self, Chan, ChildProc};
use super::util::{self, call, msg};
use crate::check::{errno_name, expect_errno, expect_ok, skip, TestResult};
use crate::ctx::{as_ids, require_root, Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

/// The unprivileged users of the tests.
pub(super) const UID: u32 = 65534;
pub(super) const GID: u32 = 65534;
pub(super) const UID2: u32 = 65533;
pub(super) const GID2: u32 = 65533;
pub(super) const UID3: u32 = 65532;
pub(super) const GID3: u32 = 65532;
/// A supplementary group of some helper processes.
const SUPP: u32 = 4242;

/// A bus made by root with `KDBUS_MAKE_ACCESS_WORLD` (its directory and
/// `bus` file are usable by every uid).
pub(super) fn world_bus(ctx: &Ctx) -> Result<Bus, String> {
    ctx.new_bus(MAKE_ACCESS_WORLD)
}

/// A policy holder (made by the calling task, normally root) for `name`
/// with `rules`, on the default endpoint `ep`.
pub(super) fn holder(ep: &Path, name: &str, rules: &[Access]) -> Result<Connection, String> {
    expect_ok(
        &format!("HELLO of a policy holder for {name} with {rules:?}"),
        Connection::hello_policy_holder(ep, &PolicyEntry::new(name, rules), POOL_SIZE),
    )
}

/// A policy-holder HELLO for `name` with `rules` that must fail with
/// `want`.
fn holder_err(ep: &Path, name: &str, rules: &[Access], want: Errno, what: &str) -> TestResult {
    expect_errno(
        &format!("HELLO of a policy holder for {name}: {what}"),
        Connection::hello_policy_holder(ep, &PolicyEntry::new(name, rules), POOL_SIZE),
        want,
    )
}

/// An ordinary connection opened and HELLO'd with the effective ids
/// `uid`/`gid` (real uid 0): not an owner unless `uid` made the bus.
pub(super) fn hello_as(uid: u32, gid: u32, ep: &Path) -> Result<Connection, String> {
    as_ids(uid, gid, || {
        expect_ok(
            &format!("HELLO on {} as euid {uid}", ep.display()),
            Connection::hello(ep, 0, 0, 0, POOL_SIZE),
        )
    })
}

/// NAME_ACQUIRE of `name` with `flags` by the task with effective ids
/// `uid`/`gid` (0/0: root).
pub(super) fn acquire_as(
    c: &Connection,
    uid: u32,
    gid: u32,
    name: &str,
    flags: u64,
) -> Result<Result<u64, Errno>, String> {
    as_ids(uid, gid, || Ok(c.name_acquire(name, flags)))
}

/// Acquiring `name` as `uid`/`gid` must give `want` (Ok: then the name is
/// released again).
pub(super) fn own(
    c: &Connection,
    uid: u32,
    gid: u32,
    name: &str,
    want: Result<(), Errno>,
    what: &str,
) -> TestResult {
    let what = format!("NAME_ACQUIRE {name} as euid {uid} ({what})");
    own_result(c, acquire_as(c, uid, gid, name, 0)?, name, want, &what)
}

/// Checks the result of a NAME_ACQUIRE of `name` on `c` against `want`;
/// releases an acquired name.
fn own_result(
    c: &Connection,
    got: Result<u64, Errno>,
    name: &str,
    want: Result<(), Errno>,
    what: &str,
) -> TestResult {
    match want {
        Ok(()) => {
            let rf = expect_ok(what, got)?;
            ensure!(
                rf & NAME_PRIMARY != 0,
                "{what}: return_flags {rf:#x} without PRIMARY"
            );
            expect_ok(&format!("NAME_RELEASE {name}"), c.name_release(name))
        }
        Err(e) => expect_errno(what, got, e),
    }
}

/// SEND of `m` with `flags` by the task with effective ids `uid`/`gid`.
pub(super) fn send_as(
    c: &Connection,
    uid: u32,
    gid: u32,
    m: &MsgBuilder,
    flags: u64,
) -> Result<Result<SendReply, Errno>, String> {
    as_ids(uid, gid, || Ok(c.send(m, flags)))
}

/// A plain unicast to the owner of `name`.
pub(super) fn msg_to_name(name: &str, cookie: u64) -> MsgBuilder {
    MsgBuilder::new(0)
        .dst_name(name)
        .cookie(cookie)
        .vec(b"by name")
}

/// A call to the owner of `name` (60 s deadline: no REPLY_TIMEOUT while
/// the test runs).
pub(super) fn call_to_name(name: &str, cookie: u64) -> MsgBuilder {
    MsgBuilder::new(0)
        .dst_name(name)
        .cookie(cookie)
        .call(util::deadline_in(60_000))
        .vec(b"call by name")
}

/// A destination: by ID or by well-known name.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dst<'a> {
    Id(u64),
    Name(&'a str),
}

/// The unicasts a TALK check is tried with: a plain unicast and a call
/// (and, with `sync`, a synchronous call with a 300 ms deadline, which
/// times out when allowed), with cookies from `cookie` on.
fn attempts(dst: Dst, cookie: u64, sync: bool) -> Vec<(String, MsgBuilder, u64)> {
    let (plain, c, s) = match dst {
        Dst::Id(id) => (
            msg(id, cookie, b"plain"),
            call(id, cookie + 1, 60_000),
            call(id, cookie + 2, 300),
        ),
        Dst::Name(n) => (
            msg_to_name(n, cookie),
            call_to_name(n, cookie + 1),
            MsgBuilder::new(0)
                .dst_name(n)
                .cookie(cookie + 2)
                .call(util::deadline_in(300))
                .vec(b"sync"),
        ),
    };
    let mut v = vec![
        (format!("plain unicast to {dst:?}"), plain, 0),
        (format!("call to {dst:?}"), c, 0),
    ];
    if sync {
        v.push((format!("synchronous call to {dst:?}"), s, SEND_SYNC_REPLY));
    }
    v
}

/// Every attempt from `s` (task ids `uid`/`gid`) towards `dst` must fail
/// with EPERM.
pub(super) fn talk_denied(s: &Connection, uid: u32, gid: u32, dst: Dst, what: &str) -> TestResult {
    for (w, m, flags) in attempts(dst, 900, true) {
        let r = send_as(s, uid, gid, &m, flags)?;
        expect_errno(&format!("{what}: {w} as euid {uid}"), r, Errno::EPERM)?;
    }
    Ok(())
}

/// Every attempt from `s` (task ids `uid`/`gid`) towards `dst` must pass
/// the TALK check; returns how many messages were queued (the plain
/// unicast and the call; a synchronous call, with `sync`, times out).
pub(super) fn talk_allowed(
    s: &Connection,
    uid: u32,
    gid: u32,
    dst: Dst,
    sync: bool,
    what: &str,
) -> Result<usize, String> {
    let mut n = 0;
    for (w, m, flags) in attempts(dst, 100, sync) {
        let r = send_as(s, uid, gid, &m, flags)?;
        let w = format!("{what}: {w} as euid {uid}");
        if flags & SEND_SYNC_REPLY != 0 {
            expect_errno(&format!("{w} (allowed, unanswered)"), r, Errno::ETIMEDOUT)?;
        } else {
            expect_ok(&w, r)?;
        }
        n += 1;
    }
    Ok(n)
}

/// Receives everything queued at `c`: `(src_id, cookie)` per message (kernel
/// notifications as src 0), each slice FREEd, FDs closed.
pub(super) fn drain(c: &Connection, what: &str) -> Result<Vec<(u64, u64)>, String> {
    let mut out = Vec::new();
    loop {
        match c.recv(0, 0) {
            Err(Errno::EAGAIN) => return Ok(out),
            Err(e) => return Err(format!("{what}: RECV: {}", errno_name(e))),
            Ok(r) => {
                let m = util::parse(&r, what)?;
                out.push((m.src_id, m.cookie));
                util::close_fds(&m.fds().unwrap_or_default());
                expect_ok(&format!("{what}: FREE"), r.free())?;
            }
        }
    }
}

/// The kernel notifications queued at `c`, each as `(kind, id or name)`:
/// `("ID_ADD", "<id>")`, `("NAME_ADD", "<name>")`, ...; other messages
/// fail the test.
pub(super) fn notifications(c: &Connection, what: &str) -> Result<Vec<(String, String)>, String> {
    use kdbus::Notification as N;
    let mut out = Vec::new();
    loop {
        let r = match c.recv(0, 0) {
            Err(Errno::EAGAIN) => return Ok(out),
            Err(e) => return Err(format!("{what}: RECV: {}", errno_name(e))),
            Ok(r) => r,
        };
        let m = util::parse(&r, what)?;
        let n = m
            .notification()
            .map_err(|e| format!("{what}: malformed notification: {e}"))?;
        let entry = match n {
            Some(N::IdAdd(i)) => ("ID_ADD", i.id.to_string()),
            Some(N::IdRemove(i)) => ("ID_REMOVE", i.id.to_string()),
            Some(N::NameAdd(c)) => ("NAME_ADD", c.name),
            Some(N::NameRemove(c)) => ("NAME_REMOVE", c.name),
            Some(N::NameChange(c)) => ("NAME_CHANGE", c.name),
            Some(N::ReplyTimeout) => ("REPLY_TIMEOUT", m.cookie_reply().to_string()),
            Some(N::ReplyDead) => ("REPLY_DEAD", m.cookie_reply().to_string()),
            None => {
                return Err(format!(
                    "{what}: expected only notifications, got a message from {} cookie {}",
                    m.src_id, m.cookie
                ))
            }
        };
        out.push((entry.0.to_owned(), entry.1));
        expect_ok(&format!("{what}: FREE"), r.free())?;
    }
}

/// `("KIND", "x")` pairs for comparisons with [`notifications`].
pub(super) fn notes(v: &[(&str, String)]) -> Vec<(String, String)> {
    v.iter().map(|(k, x)| (k.to_string(), x.clone())).collect()
}

/// An empty bloom filter for the default bus parameters (64 bytes).
pub(super) fn empty_filter() -> BloomFilter {
    BloomFilter::new(0, Bloom::with_params(BloomParams::DEFAULT))
}

/// A broadcast signal with `cookie`.
pub(super) fn broadcast(cookie: u64) -> MsgBuilder {
    MsgBuilder::broadcast(&empty_filter())
        .cookie(cookie)
        .vec(b"broadcast")
}

/// A unicast signal to `dst` with `cookie`.
pub(super) fn unicast_signal(dst: u64, cookie: u64) -> MsgBuilder {
    MsgBuilder::signal(dst, &empty_filter())
        .cookie(cookie)
        .vec(b"signal")
}

/// A match entry accepting every signal from every connection (not kernel
/// notifications: an ID rule is a "user" rule, match.md 4).
pub(super) fn match_signals(c: &Connection, what: &str) -> TestResult {
    expect_ok(
        &format!("MATCH_ADD of all signals ({what})"),
        c.match_add(&MatchRule::new(0x5157).sender_id(MATCH_ID_ANY)),
    )
}

/// Match entries accepting every ID_* and NAME_* notification.
pub(super) fn match_notifications(c: &Connection, what: &str) -> TestResult {
    for r in [
        MatchRule::any_id_add(1),
        MatchRule::any_id_remove(2),
        MatchRule::any_name_add(3, None),
        MatchRule::any_name_remove(4, None),
        MatchRule::any_name_change(5, None),
    ] {
        expect_ok(
            &format!("MATCH_ADD of notifications ({what})"),
            c.match_add(&r),
        )?;
    }
    Ok(())
}

/// A raw rule with any values.
fn rule(ty: u64, access: u64, id: u64) -> Access {
    Access { ty, access, id }
}

/// A policy-holder HELLO command whose items are given as is.
fn holder_cmd(f: impl FnOnce(&mut CmdBuf)) -> CmdBuf {
    let mut c = Connection::hello_cmd(HELLO_POLICY_HOLDER, 0, 0, POOL_SIZE);
    f(&mut c);
    c
}

/// The refusals of a policy upload at HELLO (policy.md 3, connection.md
/// 3.2 steps 6 and 19): a POLICY_ACCESS before the NAME, bad access
/// levels and types, ids without a mapping (0xffffffff, also after the
/// 32-bit truncation of ~0), payloads not 24 bytes, invalid names, two
/// NAME items, an activator with a wildcard name: all EINVAL, and none of
/// them leaves an entry behind. Other item types between a NAME and its
/// rules are skipped. Accepted: a USER id above 32 bits
/// (truncated), a WORLD rule with any id, a wildcard policy holder, and
/// POLICY_ACCESS items (even invalid ones) on an ordinary connection,
/// where they are ignored (connection.md 3.1).
pub fn upload_errors(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let n = "org.kdbus.Upload";
    let good = Access::world(POLICY_SEE);
    let mut cases: Vec<(String, CmdBuf)> = Vec::new();
    cases.push((
        "POLICY_ACCESS before the NAME".into(),
        holder_cmd(|c| {
            c.push_policy_access(&good);
            c.push_str(ITEM_NAME, n);
        }),
    ));
    for (what, a) in [
        ("access 3", rule(POLICY_ACCESS_WORLD, 3, 0)),
        ("access ~0", rule(POLICY_ACCESS_USER, u64::MAX, 0)),
        ("type 0", rule(0, POLICY_OWN, 0)),
        ("type 4", rule(4, POLICY_OWN, 0)),
        ("type ~0", rule(u64::MAX, POLICY_SEE, 0)),
        ("USER id 0xffffffff", Access::user(0xffff_ffff, POLICY_OWN)),
        (
            "USER id ~0 (0xffffffff)",
            Access::user(u64::MAX, POLICY_OWN),
        ),
        (
            "GROUP id 0xffffffff",
            Access::group(0xffff_ffff, POLICY_OWN),
        ),
    ] {
        cases.push((
            format!("a valid rule, then {what}"),
            Connection::special_hello_cmd(
                HELLO_POLICY_HOLDER,
                &PolicyEntry::new(n, &[good, a]),
                POOL_SIZE,
            ),
        ));
    }
    for len in [16usize, 23, 32] {
        let mut p = good.payload().to_vec();
        p.resize(len, 0);
        cases.push((
            format!("a {len}-byte POLICY_ACCESS payload"),
            holder_cmd(|c| {
                c.push_str(ITEM_NAME, n);
                c.push_item(ITEM_POLICY_ACCESS, &p);
            }),
        ));
    }
    for bad in [
        "org",
        "org..Upload",
        ".org.Upload",
        "org.Upload.",
        "1org.Upload",
        "org.*.Upload",
        "*",
        "org.Upload*",
        "org.kdbus.**",
        "org.kdbus.a$",
    ] {
        cases.push((
            format!("invalid name {bad:?}"),
            Connection::special_hello_cmd(
                HELLO_POLICY_HOLDER,
                &PolicyEntry::new(bad, &[good]),
                POOL_SIZE,
            ),
        ));
    }
    cases.push((
        "two NAME items".into(),
        holder_cmd(|c| {
            c.push_str(ITEM_NAME, n);
            c.push_policy_access(&good);
            c.push_str(ITEM_NAME, "org.kdbus.Other");
        }),
    ));
    cases.push((
        "an activator with the wildcard name org.kdbus.*".into(),
        Connection::special_hello_cmd(
            HELLO_ACTIVATOR,
            &PolicyEntry::new("org.kdbus.*", &[good]),
            POOL_SIZE,
        ),
    ));
    cases.push((
        "an activator with access 3".into(),
        Connection::special_hello_cmd(
            HELLO_ACTIVATOR,
            &PolicyEntry::new("org.kdbus.Act", &[rule(POLICY_ACCESS_WORLD, 3, 0)]),
            POOL_SIZE,
        ),
    ));
    for (what, mut cmd) in cases {
        let fd = expect_ok("open the endpoint", kdbus::open_endpoint(&ep))?;
        expect_errno(
            &format!("HELLO with {what}"),
            Connection::from_hello(fd, &mut cmd),
            Errno::EINVAL,
        )?;
    }
    // Other item types between the NAME and its rules are skipped
    // (policy.md 3); they do not open an entry either.
    let mut cmd = holder_cmd(|c| {
        c.push_str(ITEM_CONN_DESCRIPTION, "before");
        c.push_policy_access(&good);
        c.push_str(ITEM_NAME, "org.kdbus.Skip");
    });
    let fd = expect_ok("open the endpoint", kdbus::open_endpoint(&ep))?;
    expect_errno(
        "HELLO with CONN_DESCRIPTION, POLICY_ACCESS, NAME",
        Connection::from_hello(fd, &mut cmd),
        Errno::EINVAL,
    )?;
    let mut cmd = holder_cmd(|c| {
        c.push_str(ITEM_NAME, "org.kdbus.Skip");
        c.push_str(ITEM_CONN_DESCRIPTION, "between");
        c.push_negotiate(&[ITEM_NAME]);
        c.push_policy_access(&Access::user(UID2 as u64, POLICY_OWN));
    });
    let fd = expect_ok("open the endpoint", kdbus::open_endpoint(&ep))?;
    let _skip = expect_ok(
        "HELLO with NAME, CONN_DESCRIPTION, NEGOTIATE, POLICY_ACCESS",
        Connection::from_hello(fd, &mut cmd),
    )?;
    // Nothing was installed by the failures: the names are free.
    let _act = expect_ok(
        "HELLO of an activator for org.kdbus.Act after the refused ones",
        Connection::hello_activator(&ep, &PolicyEntry::new("org.kdbus.Act", &[good]), POOL_SIZE),
    )?;
    let _wild = holder(&ep, "org.kdbus.*", &[good])?;
    let _h = holder(
        &ep,
        n,
        &[
            Access::user((1 << 32) | UID as u64, POLICY_OWN),
            rule(POLICY_ACCESS_WORLD, POLICY_SEE, 0xffff_ffff),
        ],
    )?;
    holder_err(&ep, n, &[], Errno::EEXIST, "a second holder (installed)")?;
    // The id was truncated to 32 bits: uid 65534 may own the name.
    let c = hello_as(UID, GID, &ep)?;
    own(&c, UID, GID, n, Ok(()), "USER (1 << 32) | 65534")?;
    own(
        &c,
        UID2,
        GID2,
        n,
        Err(Errno::EPERM),
        "USER rule for 65534 only",
    )?;
    own(
        &c,
        UID2,
        GID2,
        "org.kdbus.Skip",
        Ok(()),
        "rule after skipped items",
    )?;
    own(
        &c,
        UID,
        GID,
        "org.kdbus.Skip",
        Err(Errno::EPERM),
        "rule for 65533",
    )?;
    // Ordinary connections ignore POLICY_ACCESS items.
    for a in [good, rule(POLICY_ACCESS_WORLD, 3, 0), rule(7, 0, 0)] {
        let mut cmd = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
        cmd.push_policy_access(&a);
        let fd = expect_ok("open the endpoint", kdbus::open_endpoint(&ep))?;
        expect_ok(
            &format!("HELLO of an ordinary connection with POLICY_ACCESS {a:?} (ignored)"),
            Connection::from_hello(fd, &mut cmd),
        )?;
    }
    Ok(())
}

/// USER/GROUP ids are read in the uploading task's user namespace
/// (policy.md 3): a policy holder in a user namespace mapping 0 -> 65534
/// and 1 -> 65533 (it is the bus owner: the bus was made by uid 65534)
/// gets EINVAL for ids its namespace does not map, and its rules for id 1
/// grant OWN to the global uid / gid 65533, not to 65532. Its
/// capabilities in that namespace do not make it an owner of root's bus
/// (CAP_IPC_OWNER counts in the domain's user namespace only, policy.md 4).
pub fn upload_userns(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let name = format!("{UID}-{}", ctx.unique_suffix());
    let ep = kdbus::bus_path(&ctx.mount, &name);
    let root_bus = world_bus(ctx)?;
    let root_ep = root_bus.endpoint();
    let mount = ctx.mount.clone();
    let unshared = Chan::new()?;
    let mapped = Chan::new()?;
    let done = Chan::new()?;
    let finish = Chan::new()?;
    let child = ChildProc::spawn(|| {
        sys::become_user(UID, GID)?;
        let control = expect_ok("open control", Control::open(&mount))?;
        let _bus = expect_ok(
            &format!("BUS_MAKE {name} as uid {UID}"),
            BusMaker::new(name.clone())
                .flags(MAKE_ACCESS_WORLD)
                .make(control),
        )?;
        // SAFETY: the helper is single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            let e = Errno::last();
            unshared.put(u64::MAX)?;
            return Err(format!("unshare(CLONE_NEWUSER): {}", errno_name(e)));
        }
        unshared.put(1)?;
        mapped.get(10_000, "the id maps")?;
        for (what, a) in [
            ("USER 2 (unmapped here)", Access::user(2, POLICY_OWN)),
            (
                "USER 65533 (unmapped here)",
                Access::user(65533, POLICY_OWN),
            ),
            ("GROUP 2 (unmapped here)", Access::group(2, POLICY_OWN)),
        ] {
            holder_err(&ep, "org.kdbus.Ns", &[a], Errno::EINVAL, what)?;
        }
        // Every capability in this namespace, but not in the domain's: on
        // root's bus this task is no owner.
        holder_err(
            &root_ep,
            "org.kdbus.Ns",
            &[],
            Errno::EPERM,
            "CAP_IPC_OWNER only in a child user namespace, on root's bus",
        )?;
        let _u = holder(&ep, "org.kdbus.Ns", &[Access::user(1, POLICY_OWN)])?;
        let _g = holder(&ep, "org.kdbus.NsGroup", &[Access::group(1, POLICY_OWN)])?;
        done.put(1)?;
        finish.get(60_000, "finish")?;
        Ok(())
    })?;
    let r = unshared.get(10_000, "unshare in the helper")?;
    if r == u64::MAX {
        let why = child.wait(5_000, "user namespace helper");
        return skip(format!("no user namespace: {why:?}"));
    }
    let pid = child.pid().as_raw();
    for f in ["uid_map", "gid_map"] {
        let path = format!("/proc/{pid}/{f}");
        std::fs::write(&path, "0 65534 1\n1 65533 1\n")
            .map_err(|e| format!("write {path}: {e}"))?;
    }
    mapped.put(1)?;
    let up = done.get(20_000, "the uploads in the user namespace");
    let checks = up.and_then(|_| {
        sys::run_as(UID2, GID2, 20_000, || {
            let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
            own(&c, UID2, GID2, "org.kdbus.Ns", Ok(()), "USER 1 = 65533")?;
            own(
                &c,
                UID2,
                GID2,
                "org.kdbus.NsGroup",
                Ok(()),
                "GROUP 1 = 65533",
            )
        })?;
        sys::run_as(UID3, GID3, 20_000, || {
            let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
            own(&c, UID3, GID3, "org.kdbus.Ns", Err(Errno::EPERM), "USER 1")?;
            own(
                &c,
                UID3,
                GID3,
                "org.kdbus.NsGroup",
                Err(Errno::EPERM),
                "GROUP 1",
            )
        })
    });
    let _ = finish.put(1);
    let helper = child.wait(20_000, "user namespace helper");
    helper?;
    checks
}

/// Who may upload and when uploads conflict (policy.md 3, 7): policy
/// holders and activators need owner rights (EPERM), judged by the opener
/// of the file, not by the task issuing HELLO; an entry without
/// rules grants nothing; one name has one entry across holders and
/// activators (EEXIST both ways, nothing installed by the loser); exact
/// and wildcard entries of one prefix are distinct; entries go when their
/// connection disconnects; an activator's rules are a bus entry like a
/// holder's.
pub fn holder_rules(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let n = "org.kdbus.H";
    let world_own = [Access::world(POLICY_OWN)];
    as_ids(UID, GID, || {
        holder_err(&ep, n, &world_own, Errno::EPERM, "as euid 65534")?;
        expect_errno(
            "HELLO of an activator as euid 65534",
            Connection::hello_activator(&ep, &PolicyEntry::new(n, &world_own), POOL_SIZE),
            Errno::EPERM,
        )
    })?;
    // Owner rights come from the opener of the file, not from the task
    // issuing HELLO (connection.md 2).
    let fd = as_ids(UID, GID, || {
        expect_ok("open as euid 65534", kdbus::open_endpoint(&ep))
    })?;
    let mut cmd =
        Connection::special_hello_cmd(HELLO_POLICY_HOLDER, &PolicyEntry::new(n, &[]), POOL_SIZE);
    expect_errno(
        "HELLO of a policy holder by root on a handle opened by euid 65534",
        Connection::from_hello(fd, &mut cmd),
        Errno::EPERM,
    )?;
    let fd = expect_ok("open as root", kdbus::open_endpoint(&ep))?;
    let mut cmd =
        Connection::special_hello_cmd(HELLO_POLICY_HOLDER, &PolicyEntry::new(n, &[]), POOL_SIZE);
    let h = as_ids(UID, GID, || {
        expect_ok(
            "HELLO of a policy holder by euid 65534 on a handle opened by root",
            Connection::from_hello(fd, &mut cmd),
        )
    })?;
    drop(h);
    let c = hello_as(UID, GID, &ep)?;
    own(&c, UID, GID, n, Err(Errno::EPERM), "no entry")?;
    let h = holder(&ep, n, &[])?;
    own(&c, UID, GID, n, Err(Errno::EPERM), "entry without rules")?;
    holder_err(&ep, n, &world_own, Errno::EEXIST, "a second holder")?;
    expect_errno(
        "HELLO of an activator for a policy holder's name",
        Connection::hello_activator(&ep, &PolicyEntry::new(n, &world_own), POOL_SIZE),
        Errno::EEXIST,
    )?;
    // The refused activator was disconnected again: no activator record.
    let root = ctx.hello_on(&ep)?;
    let recs = expect_ok(
        "LIST_ACTIVATORS|LIST_NAMES|LIST_QUEUED",
        root.list_records(LIST_ACTIVATORS | LIST_NAMES | LIST_QUEUED),
    )?;
    ensure!(
        recs.is_empty(),
        "records after the refused activator HELLO: {recs:?}"
    );
    own(
        &c,
        UID,
        GID,
        n,
        Err(Errno::EPERM),
        "after the refused uploads",
    )?;
    drop(h);
    let h = holder(&ep, n, &world_own)?;
    own(&c, UID, GID, n, Ok(()), "the new holder's WORLD OWN")?;
    drop(h);
    own(
        &c,
        UID,
        GID,
        n,
        Err(Errno::EPERM),
        "after the holder disconnected",
    )?;
    // An activator owns the entry of its name.
    let an = "org.kdbus.Act";
    let act = expect_ok(
        "HELLO of an activator with USER 65534 OWN",
        Connection::hello_activator(
            &ep,
            &PolicyEntry::new(an, &[Access::user(UID as u64, POLICY_OWN)]),
            POOL_SIZE,
        ),
    )?;
    holder_err(&ep, an, &world_own, Errno::EEXIST, "the activator's name")?;
    own(&c, UID2, GID2, an, Err(Errno::EPERM), "activator's rules")?;
    own(&c, UID, GID, an, Ok(()), "activator's USER rule")?;
    drop(act);
    own(
        &c,
        UID,
        GID,
        an,
        Err(Errno::EPERM),
        "after the activator disconnected",
    )?;
    let _h = holder(&ep, an, &[])?;
    // Exact and wildcard entries of one prefix are different entries.
    let _w = holder(&ep, "org.kdbus.W.*", &world_own)?;
    let _e = holder(&ep, "org.kdbus.W", &world_own)?;
    holder_err(
        &ep,
        "org.kdbus.W.*",
        &[],
        Errno::EEXIST,
        "a second wildcard holder",
    )?;
    own(&c, UID, GID, "org.kdbus.W", Ok(()), "exact entry")?;
    own(&c, UID, GID, "org.kdbus.W.x", Ok(()), "wildcard entry")
}

/// KDBUS_CMD_UPDATE of a policy holder (connection.md 5, policy.md 3):
/// replaces its entry atomically (the old name is no longer granted, and
/// becomes free for others); E2BIG for two names, EEXIST for a name held
/// by another holder, EINVAL for bad items, each leaving the entry
/// unchanged; wildcards allowed; an UPDATE without items changes nothing;
/// a NAME without rules grants nothing; the holder type is checked.
pub fn update(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let c = hello_as(UID, GID, &ep)?;
    let (u1, u2) = ("org.kdbus.U1", "org.kdbus.U2");
    let world_own = [Access::world(POLICY_OWN)];
    let h = holder(&ep, u1, &world_own)?;
    own(&c, UID, GID, u1, Ok(()), "HELLO entry")?;
    expect_ok(
        "UPDATE to org.kdbus.U2",
        h.update_policy(&[PolicyEntry::new(
            u2,
            &[Access::user(UID as u64, POLICY_OWN)],
        )]),
    )?;
    own(&c, UID, GID, u1, Err(Errno::EPERM), "replaced entry")?;
    own(&c, UID, GID, u2, Ok(()), "new entry")?;
    let unchanged = |what: &str| -> TestResult {
        own(&c, UID, GID, u2, Ok(()), &format!("unchanged after {what}"))?;
        own(
            &c,
            UID,
            GID,
            "org.kdbus.U3",
            Err(Errno::EPERM),
            &format!("nothing new after {what}"),
        )
    };
    expect_errno(
        "UPDATE with two names",
        h.update_policy(&[
            PolicyEntry::new("org.kdbus.U3", &world_own),
            PolicyEntry::new("org.kdbus.U4", &world_own),
        ]),
        Errno::E2BIG,
    )?;
    unchanged("E2BIG")?;
    let other = holder(&ep, "org.kdbus.Taken", &[])?;
    expect_errno(
        "UPDATE to another holder's name",
        h.update_policy(&[PolicyEntry::new("org.kdbus.Taken", &world_own)]),
        Errno::EEXIST,
    )?;
    unchanged("EEXIST")?;
    let bad: Vec<(&str, CmdBuf)> = vec![
        ("POLICY_ACCESS without a NAME", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy_access(&world_own[0]);
            c
        }),
        ("POLICY_ACCESS before the NAME", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy_access(&world_own[0]);
            c.push_str(ITEM_NAME, "org.kdbus.U3");
            c
        }),
        ("access 3", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy(&[PolicyEntry::new(
                "org.kdbus.U3",
                &[rule(POLICY_ACCESS_WORLD, 3, 0)],
            )]);
            c
        }),
        ("type 0", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy(&[PolicyEntry::new("org.kdbus.U3", &[rule(0, 0, 0)])]);
            c
        }),
        ("an unmapped uid", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy(&[PolicyEntry::new(
                "org.kdbus.U3",
                &[Access::user(0xffff_ffff, POLICY_OWN)],
            )]);
            c
        }),
        ("an invalid name", {
            let mut c = CmdBuf::cmd(0);
            c.push_policy(&[PolicyEntry::new("org..U3", &world_own)]);
            c
        }),
    ];
    for (what, mut cmd) in bad {
        expect_errno(
            &format!("UPDATE with {what}"),
            h.ioctl(kdbus::uapi::KDBUS_CMD_UPDATE, &mut cmd),
            Errno::EINVAL,
        )?;
        unchanged(what)?;
    }
    expect_errno(
        "UPDATE with ATTACH_FLAGS_SEND on a policy holder",
        h.update(Some(0), None),
        Errno::EOPNOTSUPP,
    )?;
    expect_ok("UPDATE without items", h.update_policy(&[]))?;
    unchanged("an UPDATE without items")?;
    // The holder may rewrite its own entry (no conflict with itself).
    expect_ok(
        "UPDATE of the same name with other rules",
        h.update_policy(&[PolicyEntry::new(
            u2,
            &[Access::user(UID2 as u64, POLICY_OWN)],
        )]),
    )?;
    own(&c, UID, GID, u2, Err(Errno::EPERM), "rules replaced")?;
    own(&c, UID2, GID2, u2, Ok(()), "rules replaced")?;
    expect_ok(
        "UPDATE to a wildcard",
        h.update_policy(&[PolicyEntry::new("org.kdbus.Uw.*", &world_own)]),
    )?;
    own(&c, UID, GID, "org.kdbus.Uw.x", Ok(()), "wildcard entry")?;
    own(
        &c,
        UID2,
        GID2,
        u2,
        Err(Errno::EPERM),
        "replaced by the wildcard",
    )?;
    let _free = holder(&ep, u2, &[])?;
    expect_ok(
        "UPDATE to a NAME without rules",
        h.update_policy(&[PolicyEntry::new("org.kdbus.Uw.*", &[])]),
    )?;
    own(
        &c,
        UID,
        GID,
        "org.kdbus.Uw.x",
        Err(Errno::EPERM),
        "entry without rules",
    )?;
    drop(other);
    Ok(())
}

/// The query (policy.md 2) seen through OWN and TALK by helper processes:
/// one with uid/gid 65534 and the supplementary group 4242, one with
/// effective uid/gid 65534 but real uid/gid 65533 and no supplementary
/// groups. USER matches the effective uid, GROUP the effective or a
/// supplementary gid, WORLD everybody; an exact entry shadows the wildcard
/// even when it grants less; `org.kdbus.q.*` covers `org.kdbus.q.x` but
/// neither `org.kdbus.q.x.y` nor `org.kdbus.q`; the highest matching
/// level wins whatever the rule order; OWN implies TALK, TALK and SEE do
/// not imply OWN, SEE does not imply TALK.
pub fn query(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let own_r = POLICY_OWN;
    let entries: Vec<(&str, Vec<Access>)> = vec![
        ("org.kdbus.q.exact", vec![Access::user(UID2 as u64, own_r)]),
        ("org.kdbus.q.*", vec![Access::world(own_r)]),
        ("org.kdbus.user", vec![Access::user(UID as u64, own_r)]),
        ("org.kdbus.group", vec![Access::group(GID as u64, own_r)]),
        ("org.kdbus.supp", vec![Access::group(SUPP as u64, own_r)]),
        ("org.kdbus.rgid", vec![Access::group(GID2 as u64, own_r)]),
        (
            "org.kdbus.nobody",
            vec![
                Access::user(UID3 as u64, own_r),
                Access::group(GID3 as u64, own_r),
            ],
        ),
        (
            "org.kdbus.max1",
            vec![Access::user(UID as u64, own_r), Access::world(POLICY_SEE)],
        ),
        (
            "org.kdbus.max2",
            vec![
                Access::world(POLICY_SEE),
                Access::user(UID as u64, POLICY_TALK),
                Access::group(GID as u64, own_r),
            ],
        ),
        (
            "org.kdbus.t.talk",
            vec![
                Access::user(UID as u64, POLICY_TALK),
                Access::world(POLICY_SEE),
            ],
        ),
        ("org.kdbus.t.see", vec![Access::world(POLICY_SEE)]),
        ("org.kdbus.t.own", vec![Access::group(GID as u64, own_r)]),
        (
            "org.kdbus.t.supp",
            vec![Access::group(SUPP as u64, POLICY_TALK)],
        ),
    ];
    let mut holders = Vec::new();
    for (n, rules) in &entries {
        holders.push(holder(&ep, n, rules)?);
    }
    // Receivers (root, real uid 0), one name each.
    let mut rcv = Vec::new();
    for n in [
        "org.kdbus.t.talk",
        "org.kdbus.t.see",
        "org.kdbus.t.own",
        "org.kdbus.t.supp",
    ] {
        let r = ctx.hello_on(&ep)?;
        expect_ok(&format!("root acquires {n}"), r.name_acquire(n, 0))?;
        rcv.push((n, r.id(), r));
    }
    let ids: Vec<(&str, u64)> = rcv.iter().map(|(n, id, _)| (*n, *id)).collect();
    let ok = Ok(());
    let no = Err(Errno::EPERM);
    // (name, helper 1 result, helper 2 result)
    type Want = Result<(), Errno>;
    let owns: Vec<(&str, Want, Want)> = vec![
        ("org.kdbus.q.exact", no, no),
        ("org.kdbus.q.x", ok, ok),
        ("org.kdbus.q.x.y", no, no),
        ("org.kdbus.q", no, no),
        ("org.kdbus.user", ok, ok),
        ("org.kdbus.group", ok, ok),
        ("org.kdbus.supp", ok, no),
        ("org.kdbus.rgid", no, no),
        ("org.kdbus.nobody", no, no),
        ("org.kdbus.max1", ok, ok),
        ("org.kdbus.max2", ok, ok),
        ("org.kdbus.t.talk.x", no, no),
        ("org.kdbus.unlisted", no, no),
    ];
    // (receiver's name, helper 1 may talk, helper 2 may talk)
    let talks: Vec<(&str, bool, bool)> = vec![
        ("org.kdbus.t.talk", true, true),
        ("org.kdbus.t.see", false, false),
        ("org.kdbus.t.own", true, true),
        ("org.kdbus.t.supp", true, false),
    ];
    let helper = |which: usize| -> TestResult {
        let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        let who = format!("helper {which}");
        for (n, w1, w2) in &owns {
            let want = if which == 1 { *w1 } else { *w2 };
            let got = c.name_acquire(n, 0);
            own_result(&c, got, n, want, &format!("{who}: NAME_ACQUIRE {n}"))?;
        }
        for (n, t1, t2) in &talks {
            let id = ids.iter().find(|x| x.0 == *n).map(|x| x.1).unwrap_or(0);
            let allowed = if which == 1 { *t1 } else { *t2 };
            let what = format!("{who}: to the owner of {n}");
            if allowed {
                talk_allowed(&c, UID, GID, Dst::Id(id), false, &what)?;
            } else {
                talk_denied(&c, UID, GID, Dst::Id(id), &what)?;
            }
        }
        // Taking names itself: a TALK grant is no OWN grant.
        own_result(
            &c,
            c.name_acquire("org.kdbus.t.talk", NAME_QUEUE),
            "org.kdbus.t.talk",
            no,
            &format!("{who}: NAME_ACQUIRE (QUEUE) of org.kdbus.t.talk (TALK only)"),
        )
    };
    ChildProc::spawn(|| {
        sys::become_ids(UID, UID, GID, GID, &[SUPP])?;
        helper(1)
    })?
    .wait(30_000, "helper 1 (65534/65534, groups 4242)")?;
    ChildProc::spawn(|| {
        sys::become_ids(UID2, UID, GID2, GID, &[])?;
        helper(2)
    })?
    .wait(30_000, "helper 2 (real 65533, effective 65534)")?;
    // What the allowed unicasts delivered: two per allowed pair.
    for (n, _, r) in &rcv {
        let want = talks
            .iter()
            .find(|t| t.0 == *n)
            .map_or(0, |t| 2 * (t.1 as usize + t.2 as usize));
        let got = drain(r, &format!("the owner of {n}"))?;
        ensure_eq!(got.len(), want, "messages queued at the owner of {n}");
    }
    drop(holders);
    Ok(())
}

/// OWN (policy.md 5.1, names.md 3): owners (root: bus creator and
/// CAP_IPC_OWNER; the uid that made a bus) own any name whatever the bus
/// database says and whatever the calling task; others need a grant for
/// the calling task's current creds (the opener's do not count, nor
/// root's creds on a non-owner connection); the check comes after the
/// syntax check (EINVAL) and before the existence check: a name owned by
/// someone else is EPERM, not EEXIST, without a grant (also with QUEUE
/// or REPLACE_EXISTING, and nothing is queued).
pub fn own_rules(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let _h = [
        holder(
            &ep,
            "org.kdbus.o.granted",
            &[Access::user(UID as u64, POLICY_OWN)],
        )?,
        holder(&ep, "org.kdbus.o.empty", &[])?,
        holder(
            &ep,
            "org.kdbus.o.cur",
            &[Access::user(UID2 as u64, POLICY_OWN)],
        )?,
    ];
    let root = ctx.hello_on(&ep)?;
    for n in [
        "org.kdbus.o.free",
        "org.kdbus.o.empty",
        "org.kdbus.o.granted",
    ] {
        own(&root, 0, 0, n, Ok(()), "owner connection")?;
        own(&root, UID3, GID3, n, Ok(()), "owner connection, other task")?;
    }
    let c = hello_as(UID, GID, &ep)?;
    own(
        &c,
        UID,
        GID,
        "org.kdbus.o.free",
        Err(Errno::EPERM),
        "no entry",
    )?;
    own(
        &c,
        UID,
        GID,
        "org.kdbus.o.empty",
        Err(Errno::EPERM),
        "entry without rules",
    )?;
    own(&c, UID, GID, "org.kdbus.o.granted", Ok(()), "USER grant")?;
    for bad in ["org", "org.kdbus.o.*", "org..x"] {
        let r = acquire_as(&c, UID, GID, bad, 0)?;
        expect_errno(
            &format!("NAME_ACQUIRE of the invalid name {bad:?} without a grant"),
            r,
            Errno::EINVAL,
        )?;
    }
    // The task's current creds count: 65533 may own org.kdbus.o.cur
    // through the connection opened by 65534, root's task may not.
    own(
        &c,
        UID2,
        GID2,
        "org.kdbus.o.cur",
        Ok(()),
        "grant of the task",
    )?;
    own(&c, UID, GID, "org.kdbus.o.cur", Err(Errno::EPERM), "opener")?;
    own(
        &c,
        0,
        0,
        "org.kdbus.o.free",
        Err(Errno::EPERM),
        "root task on a non-owner connection",
    )?;
    // Policy before existence.
    expect_ok(
        "root acquires org.kdbus.o.free",
        root.name_acquire("org.kdbus.o.free", NAME_ALLOW_REPLACEMENT),
    )?;
    expect_ok(
        "root acquires org.kdbus.o.granted",
        root.name_acquire("org.kdbus.o.granted", 0),
    )?;
    for flags in [0, NAME_QUEUE, NAME_REPLACE_EXISTING] {
        let r = acquire_as(&c, UID, GID, "org.kdbus.o.free", flags)?;
        expect_errno(
            &format!("NAME_ACQUIRE flags {flags:#x} of a name root owns, without a grant"),
            r,
            Errno::EPERM,
        )?;
    }
    let r = acquire_as(&c, UID, GID, "org.kdbus.o.granted", 0)?;
    expect_errno(
        "NAME_ACQUIRE of a name root owns, with a grant",
        r,
        Errno::EEXIST,
    )?;
    let recs = expect_ok("LIST_QUEUED", root.list_records(LIST_QUEUED))?;
    ensure!(
        recs.iter().all(|r| r.id != c.id()),
        "the refused acquisitions left queued records: {recs:?}"
    );
    // A bus made by uid 65534: its connections of euid 65534 are owners
    // (they may own anything and make policy holders), those of 65533 are
    // not.
    let name = format!("{UID}-{}", ctx.unique_suffix());
    let ep2 = kdbus::bus_path(&ctx.mount, &name);
    let mount = ctx.mount.clone();
    let ready = Chan::new()?;
    let finish = Chan::new()?;
    let maker = ChildProc::spawn(|| {
        sys::become_user(UID, GID)?;
        let control = expect_ok("open control", Control::open(&mount))?;
        let _bus = expect_ok(
            &format!("BUS_MAKE {name}"),
            BusMaker::new(name.clone())
                .flags(MAKE_ACCESS_WORLD)
                .make(control),
        )?;
        let o = expect_ok("HELLO", Connection::hello(&ep2, 0, 0, 0, POOL_SIZE))?;
        let r = o.name_acquire("org.kdbus.o.any", 0);
        own_result(&o, r, "org.kdbus.o.any", Ok(()), "bus creator's euid")?;
        let _h = holder(&ep2, "org.kdbus.o.x", &[])?;
        ready.put(1)?;
        finish.get(30_000, "finish")?;
        Ok(())
    })?;
    let other = ready.get(20_000, "the bus of uid 65534").and_then(|_| {
        sys::run_as(UID2, GID2, 20_000, || {
            let c = expect_ok("HELLO", Connection::hello(&ep2, 0, 0, 0, POOL_SIZE))?;
            for n in ["org.kdbus.o.any", "org.kdbus.o.x"] {
                let r = c.name_acquire(n, 0);
                own_result(&c, r, n, Err(Errno::EPERM), "uid 65533 on the bus of 65534")?;
            }
            Ok(())
        })
    });
    let _ = finish.put(1);
    let made = maker.wait(20_000, "bus maker of uid 65534");
    made?;
    other
}

/// TALK for unicasts and calls (policy.md 5.2, 6): by ID and by name,
/// EPERM without a grant; the sending task's current creds are checked;
/// the most permissive of the receiver's names counts, whatever name the
/// message was addressed to; queued ownership does not count; an
/// activator in charge of its name counts; the same-uid rule compares the
/// sending task's euid with the receiver's *real* uid (a connection opened
/// with effective uid 65534 by root is "uid 0" as a receiver).
pub fn talk(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let (ta, tb) = ("org.kdbus.t.a", "org.kdbus.t.b");
    let _ha = holder(&ep, ta, &[Access::user(UID2 as u64, POLICY_TALK)])?;
    let hb = holder(&ep, tb, &[])?;
    let r = ctx.hello_on(&ep)?;
    expect_ok("root acquires t.a", r.name_acquire(ta, 0))?;
    expect_ok("root acquires t.b", r.name_acquire(tb, 0))?;
    let r2 = ctx.hello_on(&ep)?;
    let rf = expect_ok("queueing for t.b", r2.name_acquire(tb, NAME_QUEUE))?;
    ensure!(rf & NAME_IN_QUEUE != 0, "t.b: not queued ({rf:#x})");
    let s = hello_as(UID, GID, &ep)?;
    for d in [Dst::Id(r.id()), Dst::Name(ta), Dst::Name(tb)] {
        talk_denied(&s, UID, GID, d, "no grant")?;
    }
    let mut queued = 0;
    for d in [Dst::Id(r.id()), Dst::Name(ta), Dst::Name(tb)] {
        queued += talk_allowed(&s, UID2, GID2, d, false, "grant of the task on t.a")?;
    }
    talk_denied(&s, UID2, GID2, Dst::Id(r2.id()), "queued owner of t.b")?;
    expect_ok(
        "UPDATE of t.b to WORLD TALK",
        hb.update_policy(&[PolicyEntry::new(tb, &[Access::world(POLICY_TALK)])]),
    )?;
    for d in [Dst::Id(r.id()), Dst::Name(ta)] {
        queued += talk_allowed(&s, UID, GID, d, false, "WORLD TALK on t.b")?;
    }
    queued += talk_allowed(&s, UID3, GID3, Dst::Id(r.id()), true, "WORLD TALK")?;
    talk_denied(&s, UID, GID, Dst::Id(r2.id()), "queued owner of t.b")?;
    let got = drain(&r, "the owner of t.a and t.b")?;
    ensure_eq!(got.len(), queued, "messages queued at the owner");
    util::expect_empty(&r2, "the queued owner")?;
    // Same uid: `q` was opened by root with euid 65534, its real uid is 0.
    let q = hello_as(UID, GID, &ep)?;
    talk_denied(&s, UID, GID, Dst::Id(q.id()), "receiver of real uid 0")?;
    let n = talk_allowed(
        &s,
        0,
        0,
        Dst::Id(q.id()),
        false,
        "root task on a non-owner connection, receiver of real uid 0",
    )?;
    ensure_eq!(drain(&q, "q")?.len(), n, "messages at q");
    // A receiver of real uid 65534.
    let id_chan = Chan::new()?;
    let go = Chan::new()?;
    let child = ChildProc::spawn(|| {
        sys::become_user(UID, GID)?;
        let w = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        id_chan.put(w.id())?;
        let n = go.get(20_000, "go")?;
        let got = drain(&w, "uid 65534's receiver")?;
        ensure_eq!(got.len() as u64, n, "messages at uid 65534's receiver");
        Ok(())
    })?;
    let wid = id_chan.get(10_000, "receiver id")?;
    let sent = (|| -> Result<usize, String> {
        let n = talk_allowed(&s, UID, GID, Dst::Id(wid), false, "same euid as uid")?;
        talk_denied(&s, UID2, GID2, Dst::Id(wid), "receiver of uid 65534")?;
        Ok(n)
    })();
    go.put(*sent.as_ref().unwrap_or(&0) as u64)?;
    let c = child.wait(20_000, "uid 65534's receiver");
    sent?;
    c?;
    // An activator in charge of its name counts.
    let act = expect_ok(
        "HELLO of an activator without rules",
        Connection::hello_activator(&ep, &PolicyEntry::new("org.kdbus.t.act", &[]), POOL_SIZE),
    )?;
    talk_denied(&s, UID, GID, Dst::Name("org.kdbus.t.act"), "activator")?;
    drop(act);
    let act = expect_ok(
        "HELLO of an activator with WORLD TALK",
        Connection::hello_activator(
            &ep,
            &PolicyEntry::new("org.kdbus.t.act", &[Access::world(POLICY_TALK)]),
            POOL_SIZE,
        ),
    )?;
    let n = talk_allowed(
        &s,
        UID,
        GID,
        Dst::Name("org.kdbus.t.act"),
        false,
        "activator with WORLD TALK",
    )?;
    ensure_eq!(
        drain(&act, "activator")?.len(),
        n,
        "messages at the activator"
    );
    Ok(())
}

/// Signals and broadcasts are delivered only to receivers that may TALK
/// to the sender (policy.md 6), judged with the receiver's connection
/// creds; refused ones are dropped silently (SEND returns 0). Owners
/// receive everything, the sender receives its own broadcasts; a sender
/// without names reaches only owners and receivers whose euid equals the
/// sender's real uid; the sender's names and their entries decide for the
/// others (the sending task's creds play no part).
pub fn signals(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let s = ctx.hello_on(&ep)?;
    let ra = hello_as(UID, GID, &ep)?;
    let rb = hello_as(UID2, GID2, &ep)?;
    let ro = ctx.hello_on(&ep)?;
    for (c, w) in [(&s, "sender"), (&ra, "ra"), (&rb, "rb"), (&ro, "ro")] {
        match_signals(c, w)?;
    }
    let sid = s.id();
    let check = |want: [&[u64]; 4], what: &str| -> TestResult {
        let conns = [
            (&s, "the sender"),
            (&ra, "ra (euid 65534)"),
            (&rb, "rb (euid 65533)"),
            (&ro, "ro (root)"),
        ];
        for ((c, w), cookies) in conns.into_iter().zip(want) {
            let got: Vec<u64> = drain(c, w)?.into_iter().map(|x| x.1).collect();
            ensure_eq!(got, cookies.to_vec(), "{what}: cookies received by {w}");
        }
        Ok(())
    };
    util::send(&s, &broadcast(1), "broadcast without names")?;
    util::send(&s, &unicast_signal(ra.id(), 2), "unicast signal to ra")?;
    util::send(&s, &unicast_signal(ro.id(), 3), "unicast signal to ro")?;
    check([&[1], &[], &[], &[1, 3]], "sender without names")?;
    let _h = holder(
        &ep,
        "org.kdbus.sig",
        &[Access::user(UID as u64, POLICY_TALK)],
    )?;
    expect_ok(
        "the sender acquires org.kdbus.sig",
        s.name_acquire("org.kdbus.sig", 0),
    )?;
    util::send(&s, &broadcast(4), "broadcast")?;
    util::send(&s, &unicast_signal(ra.id(), 5), "unicast signal to ra")?;
    util::send(&s, &unicast_signal(rb.id(), 6), "unicast signal to rb")?;
    let r = send_as(&s, UID2, GID2, &broadcast(7), 0)?;
    expect_ok("broadcast by a task of euid 65533", r)?;
    check(
        [&[4, 7], &[4, 5, 7], &[], &[4, 7]],
        "sender owning org.kdbus.sig",
    )?;
    // A sender of real uid 65534 without names.
    let (ra_id, rb_id) = (ra.id(), rb.id());
    let cid = Chan::new()?;
    let child = ChildProc::spawn(|| {
        sys::become_user(UID, GID)?;
        let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        util::send(&c, &broadcast(8), "broadcast of uid 65534")?;
        util::send(&c, &unicast_signal(ra_id, 9), "signal to ra")?;
        util::send(&c, &unicast_signal(rb_id, 10), "signal to rb")?;
        util::send(&c, &unicast_signal(sid, 11), "signal to root's sender")?;
        cid.put(c.id())
    })?;
    let got_id = cid.get(20_000, "the sender of uid 65534");
    child.wait(20_000, "sender of uid 65534")?;
    got_id?;
    check([&[8, 11], &[8, 9], &[], &[8]], "sender of real uid 65534")
}

/// CAP_IPC_OWNER in the domain's user namespace makes a connection of any
/// uid an owner (policy.md 4, 7; connection.md 2): a helper of uid 65534
/// keeping only that capability owns any name, talks to root's nameless
/// connection, makes policy holders, activators and custom endpoints and
/// fakes credentials; on a custom endpoint it is nobody. Without the
/// capability the same uid gets EPERM for all of it.
pub fn cap_ipc_owner(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let _h = holder(&ep, "org.kdbus.cap.none", &[])?;
    let _h2 = holder(&ep, "org.kdbus.cap.ep", &[])?;
    let e = expect_ok(
        "ENDPOINT_MAKE",
        kdbus::Endpoint::make(&ep, &format!("{}-cap", ctx.euid), MAKE_ACCESS_WORLD),
    )?;
    expect_ok(
        "ENDPOINT_UPDATE",
        e.update(&[PolicyEntry::new(
            "org.kdbus.cap.ep",
            &[Access::world(POLICY_OWN)],
        )]),
    )?;
    let r = ctx.hello_on(&ep)?;
    let rid = r.id();
    let ep_path = e.path().to_path_buf();
    let out = Chan::new()?;
    let with_cap = ChildProc::spawn(|| {
        sys::become_user_with_caps(UID, GID, &[sys::CAP_IPC_OWNER])?;
        let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        for n in ["org.kdbus.cap.none", "org.kdbus.cap.free"] {
            let r = c.name_acquire(n, 0);
            own_result(
                &c,
                r,
                n,
                Ok(()),
                &format!("NAME_ACQUIRE {n} with CAP_IPC_OWNER"),
            )?;
        }
        let n = talk_allowed(&c, UID, GID, Dst::Id(rid), false, "with CAP_IPC_OWNER")?;
        out.put(n as u64)?;
        let _ph = holder(&ep, "org.kdbus.cap.holder", &[])?;
        let _a = expect_ok(
            "HELLO of an activator with CAP_IPC_OWNER",
            Connection::hello_activator(
                &ep,
                &PolicyEntry::new("org.kdbus.cap.act", &[]),
                POOL_SIZE,
            ),
        )?;
        let _e = expect_ok(
            "ENDPOINT_MAKE with CAP_IPC_OWNER",
            kdbus::Endpoint::make(&ep, &format!("{UID}-capep"), 0),
        )?;
        let mut cmd = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
        cmd.push_u64s(ITEM_CREDS, &[0; 8]);
        let fd = expect_ok("open", kdbus::open_endpoint(&ep))?;
        expect_ok(
            "HELLO with faked CREDS with CAP_IPC_OWNER",
            Connection::from_hello(fd, &mut cmd),
        )?;
        // On the custom endpoint: not an owner.
        let c = expect_ok("HELLO", Connection::hello(&ep_path, 0, 0, 0, POOL_SIZE))?;
        let r = c.name_acquire("org.kdbus.cap.ep", 0);
        own_result(
            &c,
            r,
            "org.kdbus.cap.ep",
            Err(Errno::EPERM),
            "NAME_ACQUIRE with CAP_IPC_OWNER on a custom endpoint (endpoint grant only)",
        )?;
        let mut cmd = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
        cmd.push_u64s(ITEM_CREDS, &[0; 8]);
        let fd = expect_ok("open", kdbus::open_endpoint(&ep_path))?;
        expect_errno(
            "HELLO with faked CREDS on a custom endpoint with CAP_IPC_OWNER",
            Connection::from_hello(fd, &mut cmd),
            Errno::EPERM,
        )
    })?;
    let sent = out.get(20_000, "the sends with CAP_IPC_OWNER");
    with_cap.wait(30_000, "uid 65534 with CAP_IPC_OWNER")?;
    let sent = sent?;
    ensure_eq!(
        drain(&r, "root's receiver")?.len() as u64,
        sent,
        "messages from the helper with CAP_IPC_OWNER"
    );
    sys::run_as(UID, GID, 20_000, || {
        let c = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
        let r = c.name_acquire("org.kdbus.cap.free", 0);
        own_result(
            &c,
            r,
            "org.kdbus.cap.free",
            Err(Errno::EPERM),
            "without CAP_IPC_OWNER",
        )?;
        talk_denied(&c, UID, GID, Dst::Id(rid), "without CAP_IPC_OWNER")?;
        holder_err(
            &ep,
            "org.kdbus.cap.holder2",
            &[],
            Errno::EPERM,
            "without CAP_IPC_OWNER",
        )?;
        let fd = expect_ok("open", kdbus::open_endpoint(&ep))?;
        expect_errno(
            "ENDPOINT_MAKE without CAP_IPC_OWNER",
            kdbus::Endpoint::make_raw(
                &fd,
                &mut kdbus::Endpoint::make_cmd(0, &format!("{UID}-capep2")),
            ),
            Errno::EPERM,
        )
    })?;
    util::expect_empty(&r, "root's receiver after the refused sends")
}
