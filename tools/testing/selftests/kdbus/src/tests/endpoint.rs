//! Custom endpoints (endpoint.md, policy.md 4-6): ENDPOINT_MAKE and its
//! preconditions, the endpoint file, ENDPOINT_UPDATE, teardown, HELLO on
//! a custom endpoint, connections limited by the endpoint database and the
//! bus database together (never owners), what they can see (LIST,
//! CONN_INFO, notifications: no existence oracle), the empty database,
//! and the endpoint's own accounting user (receive quotas, 1024
//! connections).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use kdbus::consts::*;
use kdbus::{uapi, Access, CmdBuf, Connection, Endpoint, Errno, PolicyEntry, FLAG_NEGOTIATE};

use super::policy::{
    self, drain, hello_as, holder, match_notifications, match_signals, notes, notifications, own,
    send_as, talk_allowed, talk_denied, world_bus, Dst, GID, GID2, UID, UID2,
};
use super::sys::{self, Chan, ChildProc};
use super::util::{self, msg, msg_with_slice, NO_SUCH_ID};
use crate::check::{
    errno_name, expect_absent, expect_errno, expect_ok, expect_present, TestResult,
};
use crate::ctx::{as_ids, require_root, Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

/// Makes the custom endpoint `<euid>-<tag>` with `flags` beside the
/// default endpoint `ep` (as the calling task).
fn make(ctx: &Ctx, ep: &Path, tag: &str, flags: u64) -> Result<Endpoint, String> {
    let name = format!("{}-{tag}", ctx.euid);
    expect_ok(
        &format!("ENDPOINT_MAKE {name} flags {flags:#x}"),
        Endpoint::make(ep, &name, flags),
    )
}

/// An ENDPOINT_MAKE command on a fresh handle of `ep` that must fail with
/// `want`.
fn make_err(ep: &Path, mut cmd: CmdBuf, want: Errno, what: &str) -> TestResult {
    let fd = expect_ok("open the default endpoint", kdbus::open_endpoint(ep))?;
    expect_errno(
        &format!("ENDPOINT_MAKE {what}"),
        Endpoint::make_raw(&fd, &mut cmd),
        want,
    )
}

/// A policy entry.
fn entry(name: &str, rules: &[Access]) -> PolicyEntry {
    PolicyEntry::new(name, rules)
}

/// The names of the bus directory, sorted.
fn dir_names(dir: &Path) -> Result<Vec<String>, String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("read_dir {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    Ok(v)
}

/// ENDPOINT_MAKE (endpoint.md 2): the bus owner makes `<euid>-<name>` on
/// an unset handle of the default endpoint; a duplicate is EEXIST; a name
/// without the caller's `<euid>-` prefix, with bad characters or too long
/// is EINVAL / ENAMETOOLONG; MAKE_NAME is mandatory and every other item
/// is EINVAL; unknown flags are EINVAL, NEGOTIATE writes back 0x3 and
/// makes nothing; non-owners and handles on a custom endpoint get EPERM,
/// typed handles EBADFD (the endpoint-owner handle takes nothing but
/// ENDPOINT_UPDATE: no other ioctl, no mmap, poll POLLERR|POLLHUP); failures leave the handle unset and make no file.
/// The prefix is the calling task's euid, the owner check the opener's.
/// After the bus teardown an unset handle gets ESHUTDOWN.
pub fn make_rules(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let euid = ctx.euid;
    let name = format!("{euid}-ep");
    let e = expect_ok("ENDPOINT_MAKE", Endpoint::make(&ep, &name, 0))?;
    expect_present(e.path(), "the new endpoint")?;
    make_err(
        &ep,
        Endpoint::make_cmd(0, &name),
        Errno::EEXIST,
        "of an existing name",
    )?;
    for bad in [
        format!("{}-ep2", euid + 1),
        "ep2".to_owned(),
        format!("{euid}ep2"),
        format!("-{euid}-ep2"),
        "bus".to_owned(),
        format!("{euid}-e!p"),
        format!("{euid}-ep-"),
        format!("{euid}-e p"),
    ] {
        make_err(
            &ep,
            Endpoint::make_cmd(0, &bad),
            Errno::EINVAL,
            &format!("named {bad:?}"),
        )?;
    }
    let long = format!("{euid}-{}", "e".repeat(64 - euid.to_string().len() - 1));
    ensure_eq!(long.len(), 64, "length of the long name");
    make_err(
        &ep,
        Endpoint::make_cmd(0, &long),
        Errno::ENAMETOOLONG,
        "with a 64-character name",
    )?;
    make_err(&ep, CmdBuf::cmd(0), Errno::EINVAL, "without MAKE_NAME")?;
    let other = format!("{euid}-ep2");
    let items: Vec<(&str, u64, Vec<u8>)> = vec![
        ("NAME", ITEM_NAME, b"org.kdbus.E\0".to_vec()),
        (
            "POLICY_ACCESS",
            ITEM_POLICY_ACCESS,
            Access::world(POLICY_SEE).payload().to_vec(),
        ),
        ("BLOOM_PARAMETER", ITEM_BLOOM_PARAMETER, {
            let mut p = 64u64.to_ne_bytes().to_vec();
            p.extend_from_slice(&8u64.to_ne_bytes());
            p
        }),
        ("ATTACH_FLAGS_SEND", ITEM_ATTACH_FLAGS_SEND, vec![0; 8]),
        ("CONN_DESCRIPTION", ITEM_CONN_DESCRIPTION, b"ep\0".to_vec()),
    ];
    for (what, ty, payload) in items {
        let mut cmd = Endpoint::make_cmd(0, &other);
        cmd.push_item(ty, &payload);
        make_err(&ep, cmd, Errno::EINVAL, &format!("with a {what} item"))?;
    }
    make_err(
        &ep,
        Endpoint::make_cmd(1 << 2, &other),
        Errno::EINVAL,
        "with flag 1 << 2",
    )?;
    let fd = expect_ok("open the default endpoint", kdbus::open_endpoint(&ep))?;
    let mut neg = Endpoint::make_cmd(FLAG_NEGOTIATE, &other);
    expect_ok(
        "ENDPOINT_MAKE negotiation",
        Endpoint::make_raw(&fd, &mut neg),
    )?;
    ensure_eq!(neg.flags(), 0x3, "flags written back by the negotiation");
    expect_absent(&bus.dir().join(&other), "endpoint after the negotiation")?;
    // The failures and the negotiation left the handle unset.
    let mut bad = Endpoint::make_cmd(0, "ep2");
    expect_errno(
        "ENDPOINT_MAKE without the prefix",
        Endpoint::make_raw(&fd, &mut bad),
        Errno::EINVAL,
    )?;
    let e2 = expect_ok(
        "ENDPOINT_MAKE on the handle after the refusals",
        Endpoint::make_on(fd, &ep, &other, 0),
    )?;
    ensure_eq!(
        dir_names(&bus.dir())?,
        {
            let mut v = vec!["bus".to_owned(), name.clone(), other.clone()];
            v.sort();
            v
        },
        "files of the bus directory"
    );
    // The endpoint-owner handle takes ENDPOINT_UPDATE only (abi.md 11):
    // every other ioctl is EBADFD, mmap is EBADFD, poll reports
    // POLLERR|POLLHUP.
    let mut hello = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on an endpoint-owner handle",
        kdbus::ioctl(&e2, uapi::KDBUS_CMD_HELLO, hello.words_mut()),
        Errno::EBADFD,
    )?;
    expect_errno(
        "BUS_MAKE on an endpoint-owner handle",
        kdbus::BusMaker::new(format!("{euid}-b")).make_on(&e2),
        Errno::EBADFD,
    )?;
    for (what, req, mut cmd) in super::connection_ioctls() {
        expect_errno(
            &format!("{what} on an endpoint-owner handle"),
            kdbus::ioctl(&e2, req, cmd.words_mut()),
            Errno::EBADFD,
        )?;
    }
    expect_errno(
        "mmap of an endpoint-owner handle",
        kdbus::Mmap::map_readonly(&e2, kdbus::page_size()),
        Errno::EBADFD,
    )?;
    let ev = expect_ok(
        "poll of an endpoint-owner handle",
        kdbus::poll_once(
            &e2,
            kdbus::PollFlags::POLLIN | kdbus::PollFlags::POLLOUT | kdbus::PollFlags::POLLPRI,
            0,
        ),
    )?;
    crate::check::expect_poll(
        "poll of an endpoint-owner handle",
        ev,
        kdbus::PollFlags::POLLERR | kdbus::PollFlags::POLLHUP,
        kdbus::PollFlags::POLLIN | kdbus::PollFlags::POLLOUT,
    )?;
    expect_ok("ENDPOINT_UPDATE on it still works", e2.update(&[]))?;
    // Typed handles: EBADFD.
    expect_errno(
        "ENDPOINT_MAKE on an endpoint-owner handle",
        Endpoint::make_raw(&e2, &mut Endpoint::make_cmd(0, &format!("{euid}-ep3"))),
        Errno::EBADFD,
    )?;
    let c = ctx.hello_on(e.path())?;
    expect_errno(
        "ENDPOINT_MAKE on a connection of the custom endpoint",
        Endpoint::make_raw(&c, &mut Endpoint::make_cmd(0, &format!("{euid}-ep3"))),
        Errno::EBADFD,
    )?;
    // EPERM: a handle on a custom endpoint file (even root's), and a
    // non-owner's handle on the default endpoint.
    make_err(
        e.path(),
        Endpoint::make_cmd(0, &format!("{euid}-ep3")),
        Errno::EPERM,
        "on a custom endpoint file",
    )?;
    as_ids(UID, GID, || {
        for n in [format!("{UID}-ep3"), format!("{euid}-ep3")] {
            make_err(
                &ep,
                Endpoint::make_cmd(0, &n),
                Errno::EPERM,
                &format!("{n} by euid 65534 (not an owner)"),
            )?;
        }
        Ok(())
    })?;
    // The prefix is the caller's euid, the owner check is the opener's.
    let fd = as_ids(UID, GID, || {
        expect_ok("open as euid 65534", kdbus::open_endpoint(&ep))
    })?;
    expect_errno(
        "ENDPOINT_MAKE by root on a handle opened by euid 65534",
        Endpoint::make_raw(&fd, &mut Endpoint::make_cmd(0, &format!("{euid}-ep3"))),
        Errno::EPERM,
    )?;
    let fd = expect_ok("open the default endpoint", kdbus::open_endpoint(&ep))?;
    let e3 = as_ids(UID, GID, || {
        expect_errno(
            "ENDPOINT_MAKE with root's prefix by a task of euid 65534",
            Endpoint::make_raw(&fd, &mut Endpoint::make_cmd(0, &format!("{euid}-ep3"))),
            Errno::EINVAL,
        )?;
        let n = format!("{UID}-ep3");
        expect_ok(
            &format!("ENDPOINT_MAKE {n} on root's handle by a task of euid 65534"),
            Endpoint::make_on(fd, &ep, &n, 0),
        )
    })?;
    let md = expect_present(e3.path(), "endpoint made by euid 65534")?;
    ensure_eq!(
        (md.uid(), md.gid()),
        (UID, GID),
        "owner of the endpoint made by a task of euid/egid 65534"
    );
    // An unset handle of a bus that is gone: ESHUTDOWN.
    let fd = expect_ok("open the default endpoint", kdbus::open_endpoint(&ep))?;
    drop((e, e2, e3, c));
    expect_ok("close of the bus owner", bus.close())?;
    expect_errno(
        "ENDPOINT_MAKE after the bus teardown",
        Endpoint::make_raw(&fd, &mut Endpoint::make_cmd(0, &format!("{euid}-ep4"))),
        Errno::ESHUTDOWN,
    )
}

/// The endpoint file (fs.md 3.1, endpoint.md 2): a regular file of mode
/// 0600, plus 0060 with ACCESS_GROUP or ACCESS_WORLD, plus 0006 with
/// ACCESS_WORLD, owned by the caller's euid/egid; the usual permission
/// checks apply on open. A bus made by uid 65534 lets that uid (not
/// privileged, but the bus creator's euid) make endpoints.
pub fn file_mode(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let mut eps = Vec::new();
    for (tag, flags, mode) in [
        ("m0", 0, 0o600),
        ("mg", MAKE_ACCESS_GROUP, 0o660),
        ("mw", MAKE_ACCESS_WORLD, 0o666),
        ("mgw", MAKE_ACCESS_GROUP | MAKE_ACCESS_WORLD, 0o666),
    ] {
        let e = make(ctx, &ep, tag, flags)?;
        let md = expect_present(e.path(), "endpoint")?;
        ensure!(md.is_file(), "{}: not a regular file", e.path().display());
        ensure_eq!(
            md.mode() & 0o7777,
            mode,
            "mode of the endpoint made with flags {flags:#x}"
        );
        ensure_eq!((md.uid(), md.gid()), (0, 0), "owner of root's endpoint");
        eps.push(e);
    }
    let paths: Vec<std::path::PathBuf> = eps.iter().map(|e| e.path().to_path_buf()).collect();
    let try_open = |groups: &[u32], gid: u32, want: [Result<(), Errno>; 3]| -> TestResult {
        let who = format!("uid 65533, gid {gid}, groups {groups:?}");
        ChildProc::spawn(|| {
            sys::become_ids(UID2, UID2, gid, gid, groups)?;
            for (p, w) in paths.iter().zip(want) {
                let r = kdbus::open_endpoint(p).map(drop);
                ensure_eq!(r, w, "open of {} by {who}", p.display());
            }
            Ok(())
        })?
        .wait(10_000, &who)
    };
    let denied = Err(Errno::EACCES);
    try_open(&[], GID2, [denied, denied, Ok(())])?;
    try_open(&[], 0, [denied, Ok(()), Ok(())])?;
    try_open(&[0], GID2, [denied, Ok(()), Ok(())])?;
    // A bus made by uid 65534.
    let name = format!("{UID}-{}", ctx.unique_suffix());
    let ep2 = kdbus::bus_path(&ctx.mount, &name);
    let mount = ctx.mount.clone();
    sys::run_as(UID, GID, 20_000, || {
        let control = expect_ok("open control", kdbus::Control::open(&mount))?;
        let _bus = expect_ok(
            &format!("BUS_MAKE {name}"),
            kdbus::BusMaker::new(name.clone()).make(control),
        )?;
        let en = format!("{UID}-ep");
        let e = expect_ok(
            "ENDPOINT_MAKE by the bus creator's euid",
            Endpoint::make(&ep2, &en, MAKE_ACCESS_GROUP),
        )?;
        let md = expect_present(e.path(), "endpoint of uid 65534")?;
        ensure_eq!(
            (md.uid(), md.gid(), md.mode() & 0o7777),
            (UID, GID, 0o660),
            "owner and mode of the endpoint of uid 65534"
        );
        Ok(())
    })
}

/// Whether `c` may SEE `name` through CONN_INFO (ESRCH: no).
fn sees(c: &Connection, name: &str, what: &str) -> Result<bool, String> {
    match c.conn_info_name(name, 0, 0) {
        Ok(r) => {
            expect_ok("FREE of the CONN_INFO slice", c.free(r.offset))?;
            Ok(true)
        }
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(format!(
            "{what}: CONN_INFO {name}: expected success or ESRCH, got {}",
            errno_name(e)
        )),
    }
}

/// Expects `c` to see exactly the names of `want` among `all`.
fn expect_sees(c: &Connection, all: &[&str], want: &[&str], what: &str) -> TestResult {
    let mut got = Vec::new();
    for n in all {
        if sees(c, n, what)? {
            got.push(*n);
        }
    }
    ensure_eq!(
        got,
        want.to_vec(),
        "{what}: the names visible via CONN_INFO"
    );
    Ok(())
}

/// ENDPOINT_UPDATE (endpoint.md 3): replaces the endpoint database as a
/// whole (seen through CONN_INFO by name on the endpoint); duplicate
/// entries are EEXIST, bad rules, names, flags and items EINVAL, all
/// leaving the database unchanged; exact and wildcard entries of one
/// prefix coexist; NEGOTIATE writes back 0 and changes nothing; an update
/// without NAME items clears the database; many entries are fine; other
/// handles get EBADFD; after the bus teardown ESHUTDOWN.
pub fn update(ctx: &Ctx) -> TestResult {
    let bus = ctx.new_bus(0)?;
    let ep = bus.endpoint();
    let e = make(ctx, &ep, "ep", 0)?;
    let p = ctx.hello_on(&ep)?;
    let (a, b, x) = ("org.kdbus.e.a", "org.kdbus.e.b", "org.kdbus.e");
    for n in [a, b, x] {
        expect_ok(&format!("acquire {n}"), p.name_acquire(n, 0))?;
    }
    let all = [a, b, x];
    let c = ctx.hello_on(e.path())?;
    expect_sees(&c, &all, &[], "empty database")?;
    let see = [Access::world(POLICY_SEE)];
    expect_ok("ENDPOINT_UPDATE of a", e.update(&[entry(a, &see)]))?;
    expect_sees(&c, &all, &[a], "after the update to a")?;
    let upd = |f: &dyn Fn(&mut CmdBuf)| {
        let mut cmd = CmdBuf::cmd(0);
        f(&mut cmd);
        cmd
    };
    let bad: Vec<(&str, CmdBuf, Errno)> = vec![
        (
            "a duplicate entry",
            upd(&|c| c.push_policy(&[entry(b, &see), entry(b, &[])])),
            Errno::EEXIST,
        ),
        (
            "a duplicate wildcard entry",
            upd(&|c| {
                c.push_policy(&[
                    entry(b, &see),
                    entry("org.kdbus.*", &see),
                    entry("org.kdbus.*", &see),
                ])
            }),
            Errno::EEXIST,
        ),
        (
            "POLICY_ACCESS before the first NAME",
            upd(&|c| {
                c.push_policy_access(&see[0]);
                c.push_policy(&[entry(b, &see)]);
            }),
            Errno::EINVAL,
        ),
        (
            "access 3",
            upd(&|c| {
                c.push_policy(&[entry(
                    b,
                    &[Access {
                        ty: POLICY_ACCESS_WORLD,
                        access: 3,
                        id: 0,
                    }],
                )])
            }),
            Errno::EINVAL,
        ),
        (
            "type 0",
            upd(&|c| {
                c.push_policy(&[entry(
                    b,
                    &[Access {
                        ty: 0,
                        access: 0,
                        id: 0,
                    }],
                )])
            }),
            Errno::EINVAL,
        ),
        (
            "an unmapped uid",
            upd(&|c| c.push_policy(&[entry(b, &[Access::user(0xffff_ffff, POLICY_SEE)])])),
            Errno::EINVAL,
        ),
        (
            "an unmapped gid",
            upd(&|c| c.push_policy(&[entry(b, &[Access::group(u64::MAX, POLICY_SEE)])])),
            Errno::EINVAL,
        ),
        (
            "an invalid name",
            upd(&|c| c.push_policy(&[entry(b, &see), entry("org..e", &see)])),
            Errno::EINVAL,
        ),
        (
            "a lone wildcard",
            upd(&|c| c.push_policy(&[entry(b, &see), entry("*", &see)])),
            Errno::EINVAL,
        ),
        (
            "a 16-byte POLICY_ACCESS",
            upd(&|c| {
                c.push_str(ITEM_NAME, b);
                c.push_item(ITEM_POLICY_ACCESS, &see[0].payload()[..16]);
            }),
            Errno::EINVAL,
        ),
        (
            "a MAKE_NAME item",
            upd(&|c| {
                c.push_policy(&[entry(b, &see)]);
                c.push_str(ITEM_MAKE_NAME, "0-x");
            }),
            Errno::EINVAL,
        ),
        (
            "an ATTACH_FLAGS_SEND item",
            upd(&|c| {
                c.push_policy(&[entry(b, &see)]);
                c.push_u64(ITEM_ATTACH_FLAGS_SEND, 0);
            }),
            Errno::EINVAL,
        ),
        (
            "flag 1",
            {
                let mut c = CmdBuf::cmd(1);
                c.push_policy(&[entry(b, &see)]);
                c
            },
            Errno::EINVAL,
        ),
    ];
    for (what, mut cmd, want) in bad {
        expect_errno(
            &format!("ENDPOINT_UPDATE with {what}"),
            e.update_raw(&mut cmd),
            want,
        )?;
        expect_sees(
            &c,
            &all,
            &[a],
            &format!("after the refused update with {what}"),
        )?;
    }
    let mut neg = CmdBuf::cmd(FLAG_NEGOTIATE);
    neg.push_policy(&[entry(b, &see)]);
    expect_ok("ENDPOINT_UPDATE negotiation", e.update_raw(&mut neg))?;
    ensure_eq!(neg.flags(), 0, "flags written back by the negotiation");
    expect_sees(&c, &all, &[a], "after the negotiation")?;
    // A NEGOTIATE item between a NAME and its rule is skipped.
    let mut cmd = CmdBuf::cmd(0);
    cmd.push_str(ITEM_NAME, a);
    cmd.push_negotiate(&[ITEM_NAME]);
    cmd.push_policy_access(&see[0]);
    expect_ok(
        "ENDPOINT_UPDATE with NAME, NEGOTIATE, POLICY_ACCESS",
        e.update_raw(&mut cmd),
    )?;
    expect_sees(&c, &all, &[a], "rule after a NEGOTIATE item")?;
    expect_ok(
        "ENDPOINT_UPDATE with an exact and a wildcard entry of one prefix",
        e.update(&[entry(x, &see), entry("org.kdbus.e.*", &see)]),
    )?;
    expect_sees(&c, &all, &[a, b, x], "exact and wildcard entries")?;
    expect_ok("ENDPOINT_UPDATE to b", e.update(&[entry(b, &see)]))?;
    expect_sees(&c, &all, &[b], "after the replacement by b")?;
    let many: Vec<PolicyEntry> = (0..200)
        .map(|i| entry(&format!("org.kdbus.many.n{i}"), &see))
        .chain([entry(a, &see)])
        .collect();
    expect_ok("ENDPOINT_UPDATE with 201 entries", e.update(&many))?;
    expect_sees(&c, &all, &[a], "201 entries")?;
    expect_ok("ENDPOINT_UPDATE without NAME items", e.update(&[]))?;
    expect_sees(&c, &all, &[], "after clearing")?;
    // Only the endpoint-owner handle takes ENDPOINT_UPDATE.
    let unset = expect_ok("open the custom endpoint", kdbus::open_endpoint(e.path()))?;
    let bus_fd: &kdbus::Bus = &bus;
    let handles: [(&str, &dyn std::os::fd::AsFd); 4] = [
        ("a connection on the custom endpoint", &c),
        ("a connection on the default endpoint", &p),
        ("an unset handle on the custom endpoint", &unset),
        ("the bus-owner handle", bus_fd),
    ];
    for (what, h) in handles {
        let mut cmd = CmdBuf::cmd(0);
        cmd.push_policy(&[entry(a, &see)]);
        expect_errno(
            &format!("ENDPOINT_UPDATE on {what}"),
            kdbus::ioctl(h, uapi::KDBUS_CMD_ENDPOINT_UPDATE, cmd.words_mut()),
            Errno::EBADFD,
        )?;
    }
    expect_sees(&c, &all, &[], "after the refused updates on other handles")?;
    drop(unset);
    drop((c, p));
    expect_ok("close of the bus owner", bus.close())?;
    expect_errno(
        "ENDPOINT_UPDATE after the bus teardown",
        e.update(&[entry(a, &see)]),
        Errno::ESHUTDOWN,
    )?;
    expect_errno(
        "ENDPOINT_UPDATE (clearing) after the bus teardown",
        e.update(&[]),
        Errno::ESHUTDOWN,
    )
}

/// Teardown (endpoint.md 2, 5): closing the endpoint-owner handle removes
/// the file and disconnects the endpoint's connections (their names are
/// released, pending calls to them fail, ID_REMOVE is sent); a handle
/// opened on it before and not yet HELLO'd gets ESHUTDOWN; the file is
/// gone for new opens. Closing the bus owner does the same to every
/// custom endpoint.
pub fn teardown(ctx: &Ctx) -> TestResult {
    let bus = ctx.new_bus(0)?;
    let ep = bus.endpoint();
    let e = make(ctx, &ep, "td", 0)?;
    let n = "org.kdbus.td";
    expect_ok(
        "ENDPOINT_UPDATE",
        e.update(&[entry(n, &[Access::world(POLICY_OWN)])]),
    )?;
    let _h = holder(&ep, n, &[Access::world(POLICY_OWN)])?;
    let w = ctx.hello_on(&ep)?;
    let c = ctx.hello_on(e.path())?;
    let cid = c.id();
    expect_ok("NAME_ACQUIRE on the custom endpoint", c.name_acquire(n, 0))?;
    match_notifications(&w, "watcher")?;
    util::send(
        &w,
        &util::call(cid, 1, 10_000),
        "call to the endpoint's connection",
    )?;
    let unset = expect_ok("open the custom endpoint", kdbus::open_endpoint(e.path()))?;
    let path = e.path().to_path_buf();
    expect_ok("close of the endpoint-owner handle", e.close())?;
    expect_absent(&path, "endpoint file after the close of its owner handle")?;
    expect_errno(
        "open of the removed endpoint",
        kdbus::open_endpoint(&path),
        Errno::ENOENT,
    )?;
    let mut hello = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on a handle opened before the teardown",
        Connection::from_hello(unset, &mut hello),
        Errno::ESHUTDOWN,
    )?;
    expect_errno(
        "SEND by the endpoint's connection after the teardown",
        c.send(&msg(w.id(), 2, b"x"), 0),
        Errno::ECONNRESET,
    )?;
    expect_errno(
        "SEND to the endpoint's connection after the teardown",
        w.send(&msg(cid, 3, b"x"), 0),
        Errno::ENXIO,
    )?;
    let got = notifications(&w, "watcher")?;
    let dead = got.iter().filter(|x| x.0 == "REPLY_DEAD").count();
    ensure!(
        dead >= 1 && got.iter().all(|x| x.0 != "REPLY_DEAD" || x.1 == "1"),
        "REPLY_DEAD for the pending call (cookie 1): got {got:?}"
    );
    let rest: Vec<(String, String)> = got.into_iter().filter(|x| x.0 != "REPLY_DEAD").collect();
    ensure_eq!(
        rest,
        notes(&[
            ("NAME_REMOVE", n.to_owned()),
            ("ID_REMOVE", cid.to_string())
        ]),
        "notifications of the teardown at a default-endpoint watcher"
    );
    own(&w, 0, 0, n, Ok(()), "the name is free again")?;
    drop(c);
    // The bus teardown takes custom endpoints with it.
    let e2 = make(ctx, &ep, "td2", 0)?;
    let c2 = ctx.hello_on(e2.path())?;
    let p2 = e2.path().to_path_buf();
    drop((w, _h));
    expect_ok("close of the bus owner", bus.close())?;
    expect_absent(&p2, "custom endpoint after the bus teardown")?;
    expect_errno(
        "BYEBYE on a connection of a torn-down endpoint",
        c2.byebye(),
        Errno::ECONNRESET,
    )?;
    expect_errno(
        "ENDPOINT_UPDATE after the bus teardown",
        e2.update(&[]),
        Errno::ESHUTDOWN,
    )
}

/// HELLO on a custom endpoint (endpoint.md 4, connection.md 3.2 steps
/// 7-9): MONITOR is EOPNOTSUPP (before the owner checks), ACTIVATOR and
/// POLICY_HOLDER are EPERM, faked CREDS/PIDS/SECLABEL are EPERM, even for
/// root; ordinary connections are fine.
pub fn hello_types(ctx: &Ctx) -> TestResult {
    let e = make(ctx, &ctx.endpoint(), "h", 0)?;
    let hello_err = |what: &str, mut cmd: CmdBuf, want: Errno| -> TestResult {
        let fd = expect_ok("open the custom endpoint", kdbus::open_endpoint(e.path()))?;
        expect_errno(
            &format!("HELLO on a custom endpoint: {what}"),
            Connection::from_hello(fd, &mut cmd),
            want,
        )
    };
    let h = |flags| Connection::hello_cmd(flags, 0, 0, POOL_SIZE);
    hello_err("MONITOR", h(HELLO_MONITOR), Errno::EOPNOTSUPP)?;
    hello_err(
        "MONITOR|ACCEPT_FD",
        h(HELLO_MONITOR | HELLO_ACCEPT_FD),
        Errno::EOPNOTSUPP,
    )?;
    let mut m = h(HELLO_MONITOR);
    m.push_u64s(ITEM_CREDS, &[0; 8]);
    hello_err("MONITOR with faked CREDS", m, Errno::EOPNOTSUPP)?;
    let pe = PolicyEntry::new("org.kdbus.h", &[Access::world(POLICY_OWN)]);
    hello_err(
        "ACTIVATOR",
        Connection::special_hello_cmd(HELLO_ACTIVATOR, &pe, POOL_SIZE),
        Errno::EPERM,
    )?;
    hello_err(
        "POLICY_HOLDER",
        Connection::special_hello_cmd(HELLO_POLICY_HOLDER, &pe, POOL_SIZE),
        Errno::EPERM,
    )?;
    hello_err(
        "POLICY_HOLDER of a wildcard",
        Connection::special_hello_cmd(
            HELLO_POLICY_HOLDER,
            &PolicyEntry::new("org.kdbus.*", &[]),
            POOL_SIZE,
        ),
        Errno::EPERM,
    )?;
    let pid = std::process::id() as u64;
    let fakes: Vec<(&str, u64, Vec<u8>)> = vec![
        ("faked CREDS", ITEM_CREDS, vec![0; 64]),
        ("faked PIDS", ITEM_PIDS, {
            [pid, pid, 1].iter().flat_map(|v| v.to_ne_bytes()).collect()
        }),
        (
            "faked SECLABEL",
            super::item::SECLABEL,
            b"kdbus_t\0".to_vec(),
        ),
    ];
    for (what, ty, payload) in fakes {
        let mut cmd = h(0);
        cmd.push_item(ty, &payload);
        hello_err(what, cmd, Errno::EPERM)?;
    }
    let c = expect_ok(
        "ordinary HELLO on the custom endpoint",
        Connection::hello(e.path(), HELLO_ACCEPT_FD, 0, 0, POOL_SIZE),
    )?;
    ensure!(c.id() > 0, "connection id 0");
    Ok(())
}

/// Connections on a custom endpoint are checked against the endpoint
/// database first and then against the bus database as unprivileged
/// connections (policy.md 4, 5; endpoint.md 4), even root's: OWN needs
/// both grants; TALK needs an endpoint grant on one of the receiver's
/// names, then the same-uid rule or a bus grant (so never to a peer
/// without names); SEE does not imply TALK or OWN, OWN implies TALK;
/// endpoint wildcards and USER rules work with the calling task's creds;
/// signals reach a connection of the endpoint only if both databases let
/// it (its connection creds) TALK to the sender.
pub fn both_databases(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let e = make(ctx, &ep, "both", MAKE_ACCESS_WORLD)?;
    let world_own = [Access::world(POLICY_OWN)];
    let _hs = [
        holder(&ep, "org.kdbus.b.busown", &world_own)?,
        holder(&ep, "org.kdbus.b.both", &world_own)?,
        holder(&ep, "org.kdbus.b.u", &world_own)?,
        holder(
            &ep,
            "org.kdbus.b.t.*",
            &[Access::user(UID as u64, POLICY_TALK)],
        )?,
    ];
    expect_ok(
        "ENDPOINT_UPDATE",
        e.update(&[
            entry("org.kdbus.b.epown", &world_own),
            entry("org.kdbus.b.both", &world_own),
            entry("org.kdbus.b.see", &[Access::world(POLICY_SEE)]),
            entry("org.kdbus.b.other", &[Access::world(POLICY_SEE)]),
            entry("org.kdbus.b.t.*", &[Access::world(POLICY_TALK)]),
            entry("org.kdbus.b.u", &[Access::user(UID as u64, POLICY_OWN)]),
        ]),
    )?;
    // Root (bus creator, CAP_IPC_OWNER) on the custom endpoint.
    let c = ctx.hello_on(e.path())?;
    let no = Err(Errno::EPERM);
    own(&c, 0, 0, "org.kdbus.b.epown", no, "endpoint grant only")?;
    own(&c, 0, 0, "org.kdbus.b.busown", no, "bus grant only")?;
    own(&c, 0, 0, "org.kdbus.b.see", no, "endpoint SEE only")?;
    own(
        &c,
        0,
        0,
        "org.kdbus.b.u",
        no,
        "endpoint USER rule for 65534",
    )?;
    own(
        &c,
        UID,
        GID,
        "org.kdbus.b.u",
        Ok(()),
        "both, task euid 65534",
    )?;
    own(&c, UID2, GID2, "org.kdbus.b.u", no, "task euid 65533")?;
    expect_ok(
        "NAME_ACQUIRE of org.kdbus.b.both (both grants)",
        c.name_acquire("org.kdbus.b.both", 0),
    )?;
    // Receivers on the default endpoint (root, real uid 0).
    let mut peers = Vec::new();
    for n in [
        Some("org.kdbus.b.t.one"),
        Some("org.kdbus.b.see"),
        Some("org.kdbus.b.other"),
        None,
    ] {
        let p = ctx.hello_on(&ep)?;
        if let Some(n) = n {
            expect_ok(&format!("root acquires {n}"), p.name_acquire(n, 0))?;
        }
        peers.push(p);
    }
    let (p1, p2, p3, p0) = (&peers[0], &peers[1], &peers[2], &peers[3]);
    // Root's task: same uid as every receiver, the endpoint decides.
    let mut at_p1 = talk_allowed(&c, 0, 0, Dst::Id(p1.id()), true, "endpoint TALK")?;
    at_p1 += talk_allowed(
        &c,
        0,
        0,
        Dst::Name("org.kdbus.b.t.one"),
        false,
        "endpoint TALK",
    )?;
    talk_denied(&c, 0, 0, Dst::Id(p2.id()), "endpoint SEE only")?;
    talk_denied(&c, 0, 0, Dst::Name("org.kdbus.b.see"), "endpoint SEE only")?;
    talk_denied(&c, 0, 0, Dst::Id(p3.id()), "endpoint SEE only, same uid")?;
    talk_denied(&c, 0, 0, Dst::Id(p0.id()), "receiver without names")?;
    let at_c = talk_allowed(&c, 0, 0, Dst::Id(c.id()), false, "itself (endpoint OWN)")?;
    // Tasks of other uids: the bus database must grant too.
    at_p1 += talk_allowed(
        &c,
        UID,
        GID,
        Dst::Id(p1.id()),
        false,
        "endpoint and bus TALK",
    )?;
    talk_denied(&c, UID2, GID2, Dst::Id(p1.id()), "no bus grant for 65533")?;
    ensure_eq!(drain(p1, "p1")?.len(), at_p1, "messages at p1");
    ensure_eq!(drain(&c, "c")?.len(), at_c, "messages at c (from itself)");
    for (p, w) in [(p2, "p2"), (p3, "p3"), (p0, "p0")] {
        util::expect_empty(p, w)?;
    }
    // Signals: the receiver's connection creds against both databases.
    let cu = hello_as(UID, GID, e.path())?;
    let cu2 = hello_as(UID2, GID2, e.path())?;
    for (x, w) in [(&c, "c"), (&cu, "cu"), (&cu2, "cu2")] {
        match_signals(x, w)?;
    }
    util::send(p1, &policy::broadcast(50), "broadcast of p1 (b.t.one)")?;
    util::send(p2, &policy::broadcast(51), "broadcast of p2 (b.see)")?;
    util::send(p0, &policy::broadcast(52), "broadcast of p0 (no names)")?;
    util::send(p1, &policy::unicast_signal(cu.id(), 53), "signal to cu")?;
    util::send(p1, &policy::unicast_signal(cu2.id(), 54), "signal to cu2")?;
    for (x, w, want) in [
        (&c, "c (root)", vec![50u64]),
        (&cu, "cu (euid 65534, bus TALK on b.t.*)", vec![50, 53]),
        (&cu2, "cu2 (euid 65533)", vec![]),
    ] {
        let got: Vec<u64> = drain(x, w)?.into_iter().map(|m| m.1).collect();
        ensure_eq!(got, want, "signals received by {w} on the custom endpoint");
    }
    // SEE.
    expect_sees(
        &c,
        &[
            "org.kdbus.b.t.one",
            "org.kdbus.b.see",
            "org.kdbus.b.other",
            "org.kdbus.b.both",
            "org.kdbus.b.busown",
        ],
        &[
            "org.kdbus.b.t.one",
            "org.kdbus.b.see",
            "org.kdbus.b.other",
            "org.kdbus.b.both",
        ],
        "root on the custom endpoint",
    )
}

/// The ids of LIST records with their name (`None` for bare records).
fn list_view(
    c: &Connection,
    flags: u64,
    uid: u32,
    gid: u32,
) -> Result<Vec<(u64, Option<String>)>, String> {
    let recs = as_ids(uid, gid, || {
        expect_ok(&format!("LIST flags {flags:#x}"), c.list_records(flags))
    })?;
    let mut v = Vec::new();
    for r in recs {
        let n = r
            .owned_name()
            .map_err(|e| format!("LIST record: {e}"))?
            .map(|n| n.name);
        v.push((r.id, n));
    }
    v.sort();
    Ok(v)
}

/// What a connection on a custom endpoint sees (policy.md 5.3-5.5, 6;
/// names.md 8; connection.md 6.1): LIST omits the name records it may
/// not SEE (a connection whose considered records were all hidden is not
/// listed as a bare record either; LIST_UNIQUE alone lists everyone);
/// CONN_INFO by name is ESRCH and by ID ENXIO for hidden targets, exactly
/// as for nonexistent ones; LIST and CONN_INFO use the calling task's
/// creds; NAME_* notifications are filtered with the receiver's connection
/// creds, ID_* are not. Messages addressed by name are not SEE-checked.
pub fn visibility(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let e = make(ctx, &ep, "vis", MAKE_ACCESS_WORLD)?;
    let see = [Access::world(POLICY_SEE)];
    let user_see = [Access::user(UID as u64, POLICY_SEE)];
    expect_ok(
        "ENDPOINT_UPDATE",
        e.update(&[
            entry("org.kdbus.v.vis", &see),
            entry("org.kdbus.v.w.*", &see),
            entry("org.kdbus.v.user", &user_see),
            entry("org.kdbus.v.u.*", &user_see),
        ]),
    )?;
    let names: [&[&str]; 4] = [
        &["org.kdbus.v.vis", "org.kdbus.v.hid1"],
        &["org.kdbus.v.hid2"],
        &[],
        &["org.kdbus.v.user"],
    ];
    let mut peers = Vec::new();
    for ns in names {
        let p = ctx.hello_on(&ep)?;
        for n in ns {
            expect_ok(&format!("acquire {n}"), p.name_acquire(n, 0))?;
        }
        peers.push(p);
    }
    let id = |i: usize| peers[i].id();
    let c = ctx.hello_on(e.path())?;
    let cid = c.id();
    let vis = Some("org.kdbus.v.vis".to_owned());
    let user = Some("org.kdbus.v.user".to_owned());
    let mut want = vec![(id(0), vis.clone())];
    ensure_eq!(
        list_view(&c, LIST_NAMES, 0, 0)?,
        want.clone(),
        "LIST_NAMES (root task)"
    );
    want.push((id(3), user.clone()));
    want.sort();
    ensure_eq!(
        list_view(&c, LIST_NAMES, UID, GID)?,
        want,
        "LIST_NAMES (task euid 65534)"
    );
    let mut want = vec![(id(0), vis.clone()), (id(2), None), (cid, None)];
    want.sort();
    ensure_eq!(
        list_view(&c, LIST_NAMES | LIST_UNIQUE, 0, 0)?,
        want,
        "LIST_NAMES|LIST_UNIQUE (root task)"
    );
    let mut want: Vec<(u64, Option<String>)> = (0..4).map(|i| (id(i), None)).collect();
    want.push((cid, None));
    want.sort();
    ensure_eq!(
        list_view(&c, LIST_UNIQUE, 0, 0)?,
        want,
        "LIST_UNIQUE (root task)"
    );
    // CONN_INFO by name: hidden is ESRCH like nonexistent.
    type Want = Result<u64, Errno>;
    let by_name: Vec<(&str, u64, Want, Want)> = vec![
        ("org.kdbus.v.vis", 0, Ok(id(0)), Ok(id(0))),
        ("org.kdbus.v.vis", id(0), Ok(id(0)), Ok(id(0))),
        (
            "org.kdbus.v.vis",
            id(1),
            Err(Errno::ESRCH),
            Err(Errno::ESRCH),
        ),
        ("org.kdbus.v.hid1", 0, Err(Errno::ESRCH), Err(Errno::ESRCH)),
        ("org.kdbus.v.hid2", 0, Err(Errno::ESRCH), Err(Errno::ESRCH)),
        (
            "org.kdbus.v.hid2",
            id(1),
            Err(Errno::ESRCH),
            Err(Errno::ESRCH),
        ),
        ("org.kdbus.v.none", 0, Err(Errno::ESRCH), Err(Errno::ESRCH)),
        (
            "org.kdbus.v.w.none",
            0,
            Err(Errno::ESRCH),
            Err(Errno::ESRCH),
        ),
        ("not a name", 0, Err(Errno::ESRCH), Err(Errno::ESRCH)),
        ("org.kdbus.v.user", 0, Err(Errno::ESRCH), Ok(id(3))),
    ];
    for (n, want_id, as_root, as_user) in &by_name {
        for (uid, gid, want) in [(0, 0, as_root), (UID, GID, as_user)] {
            let r = as_ids(uid, gid, || Ok(c.conn_info_name(n, *want_id, 0)))?;
            let got = match r {
                Ok(pr) => {
                    let recs = c
                        .info_records(&pr)
                        .map_err(|e| format!("CONN_INFO {n:?}: malformed result: {e}"))?;
                    expect_ok("FREE", c.free(pr.offset))?;
                    Ok(recs.first().map_or(0, |r| r.id))
                }
                Err(e) => Err(e),
            };
            ensure_eq!(
                got,
                *want,
                "CONN_INFO by name {n:?} (id {want_id}) as euid {uid}: target id or errno"
            );
        }
    }
    // CONN_INFO by id: hidden is ENXIO like nonexistent.
    let by_id: Vec<(u64, bool, bool, &str)> = vec![
        (id(0), true, true, "owner of a visible name"),
        (id(1), false, false, "owner of a hidden name"),
        (id(2), false, false, "connection without names"),
        (id(3), false, true, "owner of a name visible to 65534"),
        (cid, false, false, "the caller itself (no names)"),
        (NO_SUCH_ID, false, false, "nonexistent id"),
    ];
    for (target, root_ok, user_ok, what) in &by_id {
        for (uid, gid, ok) in [(0, 0, root_ok), (UID, GID, user_ok)] {
            let r = as_ids(uid, gid, || Ok(c.conn_info(*target, 0)))?;
            let what = format!("CONN_INFO by id of the {what} as euid {uid}");
            if *ok {
                let pr = expect_ok(&what, r)?;
                expect_ok("FREE", c.free(pr.offset))?;
            } else {
                expect_errno(&what, r, Errno::ENXIO)?;
            }
        }
    }
    // Names are not SEE-checked when a message is addressed to them
    // (message.md 6): a hidden name of a peer c may TALK to (through
    // another name) delivers, a hidden name of a peer it may not TALK to
    // is EPERM, a nonexistent one ESRCH.
    let p4 = ctx.hello_on(&ep)?;
    for n in ["org.kdbus.v.talk", "org.kdbus.v.hid4"] {
        expect_ok(&format!("acquire {n}"), p4.name_acquire(n, 0))?;
    }
    expect_ok(
        "ENDPOINT_UPDATE adding org.kdbus.v.talk",
        e.update(&[
            entry("org.kdbus.v.vis", &see),
            entry("org.kdbus.v.w.*", &see),
            entry("org.kdbus.v.user", &user_see),
            entry("org.kdbus.v.u.*", &user_see),
            entry("org.kdbus.v.talk", &[Access::world(POLICY_TALK)]),
        ]),
    )?;
    let n = talk_allowed(
        &c,
        0,
        0,
        Dst::Name("org.kdbus.v.hid4"),
        false,
        "hidden name of a peer reachable through another name",
    )?;
    ensure_eq!(drain(&p4, "p4")?.len(), n, "messages at p4");
    ensure!(
        !sees(&c, "org.kdbus.v.hid4", "c")?,
        "CONN_INFO shows the hidden name org.kdbus.v.hid4"
    );
    let pr = expect_ok(
        "CONN_INFO by id of p4 (TALK implies SEE)",
        c.conn_info(p4.id(), 0),
    )?;
    expect_ok("FREE", c.free(pr.offset))?;
    talk_denied(&c, 0, 0, Dst::Name("org.kdbus.v.hid2"), "hidden name")?;
    expect_errno(
        "SEND to a nonexistent name",
        c.send(&policy::msg_to_name("org.kdbus.v.none", 1), 0),
        Errno::ESRCH,
    )?;
    // Queued and activator records are filtered like owner records.
    let p5 = ctx.hello_on(&ep)?;
    for n in ["org.kdbus.v.vis", "org.kdbus.v.hid2"] {
        let rf = expect_ok(&format!("queue for {n}"), p5.name_acquire(n, NAME_QUEUE))?;
        ensure!(rf & NAME_IN_QUEUE != 0, "{n}: not queued ({rf:#x})");
    }
    let mut acts = Vec::new();
    for n in ["org.kdbus.v.w.act", "org.kdbus.v.act"] {
        acts.push(expect_ok(
            &format!("HELLO of an activator for {n}"),
            Connection::hello_activator(&ep, &entry(n, &[]), POOL_SIZE),
        )?);
    }
    ensure_eq!(
        list_view(&c, LIST_QUEUED, 0, 0)?,
        vec![(p5.id(), vis.clone())],
        "LIST_QUEUED on the custom endpoint"
    );
    ensure_eq!(
        list_view(&c, LIST_ACTIVATORS, 0, 0)?,
        vec![(acts[0].id(), Some("org.kdbus.v.w.act".to_owned()))],
        "LIST_ACTIVATORS on the custom endpoint"
    );
    // On the default endpoint everything is visible.
    let d = ctx.hello_on(&ep)?;
    ensure!(
        sees(&d, "org.kdbus.v.hid2", "default endpoint")?,
        "default endpoint: hid2 hidden"
    );
    let pr = expect_ok(
        "CONN_INFO of a nameless peer on the default endpoint",
        d.conn_info(id(2), 0),
    )?;
    expect_ok("FREE", d.free(pr.offset))?;
    // Notifications, with the receiver's connection creds.
    let n = ctx.hello_on(e.path())?;
    let nu = hello_as(UID, GID, e.path())?;
    match_notifications(&n, "n")?;
    match_notifications(&nu, "nu")?;
    let q = ctx.hello_on(&ep)?;
    let qid = q.id();
    expect_ok(
        "acquire org.kdbus.v.w.one",
        q.name_acquire("org.kdbus.v.w.one", NAME_ALLOW_REPLACEMENT),
    )?;
    expect_ok(
        "acquire org.kdbus.v.hid3",
        q.name_acquire("org.kdbus.v.hid3", 0),
    )?;
    expect_ok(
        "acquire org.kdbus.v.u.x",
        q.name_acquire("org.kdbus.v.u.x", 0),
    )?;
    let q2 = ctx.hello_on(&ep)?;
    let q2id = q2.id();
    expect_ok(
        "take over org.kdbus.v.w.one",
        q2.name_acquire("org.kdbus.v.w.one", NAME_REPLACE_EXISTING),
    )?;
    drop(q);
    drop(q2);
    let w1 = "org.kdbus.v.w.one".to_owned();
    let ux = "org.kdbus.v.u.x".to_owned();
    let want_n = notes(&[
        ("ID_ADD", qid.to_string()),
        ("NAME_ADD", w1.clone()),
        ("ID_ADD", q2id.to_string()),
        ("NAME_CHANGE", w1.clone()),
        ("ID_REMOVE", qid.to_string()),
        ("NAME_REMOVE", w1.clone()),
        ("ID_REMOVE", q2id.to_string()),
    ]);
    ensure_eq!(
        notifications(&n, "n")?,
        want_n,
        "notifications at a root connection of the custom endpoint"
    );
    let want_nu = notes(&[
        ("ID_ADD", qid.to_string()),
        ("NAME_ADD", w1.clone()),
        ("NAME_ADD", ux.clone()),
        ("ID_ADD", q2id.to_string()),
        ("NAME_CHANGE", w1.clone()),
        ("NAME_REMOVE", ux),
        ("ID_REMOVE", qid.to_string()),
        ("NAME_REMOVE", w1),
        ("ID_REMOVE", q2id.to_string()),
    ]);
    ensure_eq!(
        notifications(&nu, "nu")?,
        want_nu,
        "notifications at a connection of euid 65534 on the custom endpoint"
    );
    Ok(())
}

/// The empty endpoint database (endpoint.md 2): its connection can own no
/// name (whatever the bus database grants), see no name (LIST, CONN_INFO,
/// NAME_* notifications), send to nobody (not even itself) and receive no
/// signals, but it receives unicasts from the default endpoint, answers
/// calls, and sees ID_ADD / ID_REMOVE.
pub fn empty_db(ctx: &Ctx) -> TestResult {
    let ep = ctx.endpoint();
    let e = make(ctx, &ep, "empty", 0)?;
    let _h = holder(&ep, "org.kdbus.x.*", &[Access::world(POLICY_OWN)])?;
    let p = ctx.hello_on(&ep)?;
    expect_ok("acquire org.kdbus.x.p", p.name_acquire("org.kdbus.x.p", 0))?;
    match_signals(&p, "p")?;
    let q = ctx.hello_on(&ep)?;
    let c = ctx.hello_on(e.path())?;
    match_signals(&c, "c")?;
    match_notifications(&c, "c")?;
    let cid = c.id();
    own(
        &c,
        0,
        0,
        "org.kdbus.x.c",
        Err(Errno::EPERM),
        "empty endpoint database",
    )?;
    let recs = expect_ok("LIST_NAMES", c.list_records(LIST_NAMES))?;
    ensure!(
        recs.is_empty(),
        "LIST_NAMES on the empty endpoint: {recs:?}"
    );
    expect_errno(
        "CONN_INFO of org.kdbus.x.p",
        c.conn_info_name("org.kdbus.x.p", 0, 0),
        Errno::ESRCH,
    )?;
    for (t, w) in [(p.id(), "p"), (q.id(), "q"), (cid, "itself")] {
        expect_errno(
            &format!("CONN_INFO of {w}"),
            c.conn_info(t, 0),
            Errno::ENXIO,
        )?;
    }
    for d in [
        Dst::Id(p.id()),
        Dst::Name("org.kdbus.x.p"),
        Dst::Id(q.id()),
        Dst::Id(cid),
    ] {
        talk_denied(&c, 0, 0, d, "empty endpoint database")?;
    }
    util::send(&p, &policy::broadcast(1), "broadcast of p")?;
    util::send(&p, &policy::unicast_signal(cid, 2), "unicast signal to c")?;
    ensure_eq!(drain(&p, "p")?, vec![(p.id(), 1)], "p's own broadcast");
    util::expect_empty(&c, "c after the signals")?;
    util::send(&p, &msg(cid, 3, b"unicast"), "unicast to c")?;
    util::send(&p, &util::call(cid, 4, 10_000), "call to c")?;
    ensure_eq!(
        drain(&c, "c")?,
        vec![(p.id(), 3), (p.id(), 4)],
        "unicast and call at c"
    );
    util::send(&c, &util::reply(p.id(), 4, 5), "c's reply to the call")?;
    let got = util::recv(&p, "the reply")?;
    let m = util::parse(&got, "the reply")?;
    ensure_eq!(
        (m.src_id, m.cookie_reply()),
        (cid, 4),
        "sender and cookie_reply of the reply"
    );
    expect_ok("FREE", got.free())?;
    expect_errno(
        "a second reply (no call pending)",
        c.send(&util::reply(p.id(), 4, 6), 0),
        Errno::EBADSLT,
    )?;
    let r = ctx.hello_on(&ep)?;
    let rid = r.id();
    expect_ok("acquire org.kdbus.x.r", r.name_acquire("org.kdbus.x.r", 0))?;
    drop(r);
    ensure_eq!(
        notifications(&c, "c")?,
        notes(&[("ID_ADD", rid.to_string()), ("ID_REMOVE", rid.to_string())]),
        "notifications at c"
    );
    Ok(())
}

/// Pool size of the quota receiver (as in quota.rs): avail = 32 KiB.
const QPOOL: u64 = 64 * 1024;
/// Slice size of the quota messages.
const QS: usize = 1024;

/// Sends 1-KiB messages from `s` to `dst` until one fails (at most `max`);
/// returns the count and the error.
fn fill(s: &Connection, dst: u64, first: u64, max: u64) -> (u64, Option<Errno>) {
    for i in 0..max {
        if let Err(e) = s.send(&msg_with_slice(dst, first + i, QS), 0) {
            return (i, Some(e));
        }
    }
    (max, None)
}

/// Every connection made through one custom endpoint is charged to the
/// endpoint's own accounting user (endpoint.md 4, message.md 13), not to
/// its uid: at a receiver with 32 KiB of quota room, root's connection on
/// endpoint 1 gets 10 KiB (a third), a connection of uid 65534 on the
/// same endpoint nothing more; uid 65534 and root on the default endpoint
/// and root on endpoint 2 each get a third of what is left (7, 5, 3
/// messages). (The same accounting user carries the 1024-connection limit
/// of connection.md 3.2 step 13; checking that boundary directly takes
/// over a minute under TCG with KASAN, so the quotas stand in for it.)
pub fn accounting(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = world_bus(ctx)?;
    let ep = bus.endpoint();
    let an = "org.kdbus.acct";
    let _h = holder(&ep, an, &[Access::world(POLICY_TALK)])?;
    let b = expect_ok(
        "HELLO of the receiver",
        Connection::hello(&ep, 0, 0, 0, QPOOL),
    )?;
    expect_ok("the receiver acquires its name", b.name_acquire(an, 0))?;
    let bid = b.id();
    let talk = [Access::world(POLICY_TALK)];
    let e1 = make(ctx, &ep, "acct1", MAKE_ACCESS_WORLD)?;
    let e2 = make(ctx, &ep, "acct2", MAKE_ACCESS_WORLD)?;
    expect_ok(
        "ENDPOINT_UPDATE of endpoint 1",
        e1.update(&[entry(an, &talk)]),
    )?;
    expect_ok(
        "ENDPOINT_UPDATE of endpoint 2",
        e2.update(&[entry(an, &talk)]),
    )?;
    let x1 = ctx.hello_on(e1.path())?;
    ensure_eq!(
        fill(&x1, bid, 1, 20),
        (10, Some(Errno::ENOBUFS)),
        "root's messages through endpoint 1 (count, error)"
    );
    let p1 = e1.path().to_path_buf();
    let out = Chan::new()?;
    ChildProc::spawn(|| {
        sys::become_user(UID, GID)?;
        let x = expect_ok(
            "HELLO on endpoint 1",
            Connection::hello(&p1, 0, 0, 0, POOL_SIZE),
        )?;
        let (n, e) = fill(&x, bid, 100, 20);
        ensure_eq!(
            (n, e),
            (0, Some(Errno::ENOBUFS)),
            "uid 65534's messages through endpoint 1 (count, error)"
        );
        let d = expect_ok(
            "HELLO on the default endpoint",
            Connection::hello(&ep, 0, 0, 0, POOL_SIZE),
        )?;
        let (n, e) = fill(&d, bid, 200, 20);
        out.put(n)?;
        ensure_eq!(
            e,
            Some(Errno::ENOBUFS),
            "uid 65534's error on the default endpoint"
        );
        Ok(())
    })?
    .wait(20_000, "uid 65534")?;
    let n65534 = out.get(1000, "count of uid 65534")?;
    ensure_eq!(
        n65534,
        7,
        "uid 65534's messages through the default endpoint"
    );
    let d = ctx.hello_on(&ep)?;
    ensure_eq!(
        fill(&d, bid, 300, 20),
        (5, Some(Errno::ENOBUFS)),
        "root's messages through the default endpoint"
    );
    let x2 = ctx.hello_on(e2.path())?;
    ensure_eq!(
        fill(&x2, bid, 400, 20),
        (3, Some(Errno::ENOBUFS)),
        "root's messages through endpoint 2"
    );
    // Receiving releases the endpoint's charge for all its connections.
    let got = drain(&b, "the receiver")?;
    ensure_eq!(got.len(), 25, "messages queued at the receiver");
    let x1b = as_ids(UID, GID, || {
        expect_ok(
            "HELLO on endpoint 1 as euid 65534",
            Connection::hello(e1.path(), 0, 0, 0, POOL_SIZE),
        )
    })?;
    let r = send_as(&x1b, UID, GID, &msg_with_slice(bid, 500, QS), 0)?;
    expect_ok(
        "SEND through endpoint 1 after the receiver emptied its queue",
        r,
    )?;
    Ok(())
}
