//! KDBUS_CMD_HELLO (spec connection.md 3, abi.md 11), FREE of the HELLO
//! slice (pool.md 5).

use std::path::Path;

use kdbus::{
    open_endpoint, uapi, BusMaker, CmdBuf, Connection, Control, Errno, ATTACH_ALL, ATTACH_ANY,
    FLAG_NEGOTIATE,
};

use super::{item, raw, ACCESS_GROUP, ACCESS_WORLD};
use crate::check::{expect_absent, expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq, ensure_eq_hex};

const ACCEPT_FD: u64 = uapi::KDBUS_HELLO_ACCEPT_FD as u64;
const ACTIVATOR: u64 = uapi::KDBUS_HELLO_ACTIVATOR as u64;
const POLICY_HOLDER: u64 = uapi::KDBUS_HELLO_POLICY_HOLDER as u64;
const MONITOR: u64 = uapi::KDBUS_HELLO_MONITOR as u64;

fn open(path: &Path) -> Result<std::os::fd::OwnedFd, String> {
    expect_ok(&format!("open {}", path.display()), open_endpoint(path))
}

/// Issues `cmd` as HELLO on a fresh handle of the test bus; the connection
/// (if any) is returned so that it stays alive.
fn try_hello(ctx: &Ctx, cmd: &mut CmdBuf) -> Result<Result<Connection, Errno>, String> {
    let fd = open(&ctx.endpoint())?;
    Ok(Connection::from_hello(fd, cmd))
}

fn expect_hello_err(ctx: &Ctx, what: &str, mut cmd: CmdBuf, want: Errno) -> TestResult {
    let r = try_hello(ctx, &mut cmd)?;
    expect_errno(what, r, want)
}

fn hello_cmd(flags: u64) -> CmdBuf {
    Connection::hello_cmd(flags, 0, 0, POOL_SIZE)
}

fn check_uuid_v4(id128: &[u8; 16]) -> TestResult {
    ensure!(
        id128[6] >> 4 == 4,
        "id128 {id128:02x?} is not a version-4 UUID (byte 6 is {:#04x})",
        id128[6]
    );
    ensure!(
        id128[8] & 0xc0 == 0x80,
        "id128 {id128:02x?} lacks the RFC 4122 variant (byte 8 is {:#04x})",
        id128[8]
    );
    Ok(())
}

/// HELLO returns an ID, the bus flags and the bus UUID (v4, the same for
/// every connection on the bus); IDs strictly increase.
pub fn basic(ctx: &Ctx) -> TestResult {
    let c1 = ctx.hello()?;
    let h = *c1.hello_reply();
    ensure!(h.id > 0, "connection id is 0 (0 is the kernel's source id)");
    ensure_eq_hex!(h.bus_flags, 0, "bus_flags of a bus made without flags");
    ensure_eq_hex!(h.return_flags, 0, "return_flags of HELLO");
    ensure_eq_hex!(h.pool_size, POOL_SIZE, "pool_size echoed by HELLO");
    ensure_eq_hex!(h.flags, 0, "flags echoed by HELLO");
    check_uuid_v4(&h.id128)?;
    let c2 = ctx.hello()?;
    let c3 = ctx.hello()?;
    ensure!(
        c1.id() < c2.id() && c2.id() < c3.id(),
        "connection ids not strictly increasing: {}, {}, {}",
        c1.id(),
        c2.id(),
        c3.id()
    );
    ensure_eq!(
        c2.id128(),
        c1.id128(),
        "id128 of a second connection on the same bus"
    );
    ensure_eq!(
        c3.id128(),
        c1.id128(),
        "id128 of a third connection on the same bus"
    );
    let other = ctx.new_bus(0)?;
    let c4 = ctx.hello_on(&other.endpoint())?;
    check_uuid_v4(&c4.id128())?;
    ensure!(
        c4.id128() != c1.id128(),
        "two buses share the id128 {:02x?}",
        c1.id128()
    );
    ensure!(
        c4.id() > c3.id(),
        "id on another bus {} not above {}",
        c4.id(),
        c3.id()
    );
    Ok(())
}

/// `bus_flags` equals the BUS_MAKE flags.
pub fn bus_flags(ctx: &Ctx) -> TestResult {
    for flags in [0, ACCESS_GROUP, ACCESS_WORLD, ACCESS_GROUP | ACCESS_WORLD] {
        let bus = ctx.new_bus(flags)?;
        let c = ctx.hello_on(&bus.endpoint())?;
        ensure_eq_hex!(
            c.bus_flags(),
            flags,
            "HELLO bus_flags for a bus made with flags {flags:#x}"
        );
    }
    Ok(())
}

/// On a fresh domain the first bus gets ID 1 and its first connection ID 2;
/// buses and connections share the counter (connection.md 3.3).
pub fn ids_private_mount(ctx: &Ctx) -> TestResult {
    let pm = ctx.private_mount()?;
    let control = expect_ok("open private control", Control::open(pm.path()))?;
    let bus1 = expect_ok(
        "BUS_MAKE on the private mount",
        BusMaker::new(ctx.unique_name()).make(control),
    )?;
    let c1 = ctx.hello_on(&bus1.endpoint())?;
    ensure_eq!(c1.id(), 2, "id of the first connection on a fresh domain");
    let c2 = ctx.hello_on(&bus1.endpoint())?;
    ensure_eq!(c2.id(), 3, "id of the second connection");
    let control = expect_ok("open private control", Control::open(pm.path()))?;
    let bus2 = expect_ok(
        "second BUS_MAKE on the private mount",
        BusMaker::new(ctx.unique_name()).make(control),
    )?;
    let c3 = ctx.hello_on(&bus2.endpoint())?;
    ensure_eq!(
        c3.id(),
        5,
        "id of the first connection on the second bus (bus 2 took id 4)"
    );
    let c4 = ctx.hello_on(&bus1.endpoint())?;
    ensure_eq!(c4.id(), 6, "id of the next connection on the first bus");
    drop((c1, c2, c3, c4, bus1, bus2));
    drop(pm);
    Ok(())
}

fn check_hello_slice(c: &Connection, size: u64, n_hash: u64) -> TestResult {
    let h = *c.hello_reply();
    ensure_eq!(h.items_size, 32, "HELLO items_size");
    ensure!(
        h.offset.is_multiple_of(8),
        "HELLO slice offset {:#x} not 8-aligned",
        h.offset
    );
    ensure!(
        h.offset.checked_add(32).is_some_and(|e| e <= h.pool_size),
        "HELLO slice [{:#x}, +32) outside the pool of {:#x} bytes",
        h.offset,
        h.pool_size
    );
    let items = c
        .pool_items(h.offset, h.items_size)
        .ok_or("HELLO slice not readable in the pool mapping")?
        .collect_items()
        .map_err(|e| format!("HELLO slice is not a valid item stream: {e}"))?;
    ensure_eq!(items.len(), 1, "number of items in the HELLO slice");
    let it = items[0];
    ensure_eq!(it.size, 32, "size of the BLOOM_PARAMETER item");
    ensure_eq!(
        it.ty,
        item::BLOOM_PARAMETER,
        "type of the item in the HELLO slice"
    );
    ensure_eq!(
        it.as_bloom_parameter(),
        Some((size, n_hash)),
        "bloom parameters in the HELLO slice"
    );
    Ok(())
}

/// The HELLO slice holds exactly one 32-byte BLOOM_PARAMETER item with the
/// bus's bloom size and n_hash.
pub fn pool_slice(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    check_hello_slice(&c, 64, 8)?;
    for (size, n_hash) in [(128, 5), (8, 1), (4096, 77)] {
        let bus = ctx.make_bus(BusMaker::new(ctx.unique_name()).bloom(size, n_hash))?;
        let c = ctx.hello_on(&bus.endpoint())?;
        check_hello_slice(&c, size, n_hash)?;
    }
    Ok(())
}

/// FREE of the HELLO slice works once; unknown offsets give ENXIO;
/// `offset == pool_size` is a no-op.
pub fn free(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let off = c.hello_reply().offset;
    expect_errno("FREE inside the HELLO slice", c.free(off + 8), Errno::ENXIO)?;
    expect_ok("FREE of the HELLO slice", c.free(off))?;
    expect_errno("second FREE of the HELLO slice", c.free(off), Errno::ENXIO)?;
    expect_ok("FREE of offset pool_size", c.free(POOL_SIZE))?;
    expect_ok("second FREE of offset pool_size", c.free(POOL_SIZE))?;
    expect_errno(
        "FREE of an offset past the pool",
        c.free(POOL_SIZE + 8),
        Errno::ENXIO,
    )?;
    expect_errno("FREE of offset 1 << 40", c.free(1 << 40), Errno::ENXIO)?;
    let mut neg = CmdBuf::free(off);
    neg.set_flags(1);
    expect_errno(
        "FREE with unknown flag 1",
        c.ioctl(uapi::KDBUS_CMD_FREE, &mut neg),
        Errno::EINVAL,
    )?;
    Ok(())
}

/// pool_size must be a non-zero multiple of the page size.
pub fn pool_size(ctx: &Ctx) -> TestResult {
    let page = kdbus::page_size() as u64;
    for size in [
        0,
        1,
        8,
        page / 2,
        page - 8,
        page + 1,
        page + 8,
        3 * page + 4096 / 2,
    ] {
        expect_hello_err(
            ctx,
            &format!("HELLO with pool_size {size:#x}"),
            Connection::hello_cmd(0, 0, 0, size),
            Errno::EINVAL,
        )?;
    }
    for size in [page, 2 * page] {
        let mut cmd = Connection::hello_cmd(0, 0, 0, size);
        let c = try_hello(ctx, &mut cmd)?;
        let c = expect_ok(&format!("HELLO with pool_size {size:#x}"), c)?;
        check_hello_slice(&c, 64, 8)?;
    }
    Ok(())
}

/// size below 96: EINVAL; above 32768: EMSGSIZE.
pub fn cmd_size(ctx: &Ctx) -> TestResult {
    for size in [0u64, 24, 88, 95] {
        let mut cmd = hello_cmd(0);
        cmd.set_size(size);
        expect_hello_err(ctx, &format!("HELLO with size {size}"), cmd, Errno::EINVAL)?;
    }
    let mut cmd = hello_cmd(0);
    cmd.push_raw(&vec![0; 32768 + 8 - 96]);
    cmd.set_size(32776);
    expect_hello_err(ctx, "HELLO with size 32776", cmd, Errno::EMSGSIZE)
}

/// Flags outside ACCEPT_FD|ACTIVATOR|POLICY_HOLDER|MONITOR: EINVAL.
pub fn unknown_flag(ctx: &Ctx) -> TestResult {
    for flags in [
        1u64 << 4,
        1 << 5,
        1 << 32,
        1 << 62,
        ACCEPT_FD | (1 << 7),
        (1 << 4) | FLAG_NEGOTIATE,
    ] {
        expect_hello_err(
            ctx,
            &format!("HELLO with flags {flags:#x}"),
            hello_cmd(flags),
            Errno::EINVAL,
        )?;
    }
    let mut cmd = hello_cmd(ACCEPT_FD);
    let c = expect_ok("HELLO with ACCEPT_FD", try_hello(ctx, &mut cmd)?)?;
    ensure_eq_hex!(
        c.hello_reply().flags,
        ACCEPT_FD,
        "flags after HELLO with ACCEPT_FD"
    );
    Ok(())
}

/// NEGOTIATE writes back 0xf, returns 0 before the pool size is checked and
/// leaves the handle unset.
pub fn negotiate_flags(ctx: &Ctx) -> TestResult {
    let fd = open(&ctx.endpoint())?;
    let mut cmd = hello_cmd(FLAG_NEGOTIATE);
    expect_ok(
        "HELLO with NEGOTIATE",
        raw(&fd, uapi::KDBUS_CMD_HELLO, &mut cmd),
    )?;
    ensure_eq_hex!(cmd.flags(), 0xf, "flags written back by HELLO negotiation");
    let mut cmd = Connection::hello_cmd(FLAG_NEGOTIATE | MONITOR, 0, 0, 0);
    expect_ok(
        "HELLO with NEGOTIATE|MONITOR and pool_size 0",
        raw(&fd, uapi::KDBUS_CMD_HELLO, &mut cmd),
    )?;
    ensure_eq_hex!(cmd.flags(), 0xf, "flags written back (NEGOTIATE|MONITOR)");
    // The handle is still unset: a BYEBYE is refused, a real HELLO works.
    let mut bye = CmdBuf::cmd(0);
    expect_errno(
        "BYEBYE after a negotiation-only HELLO",
        raw(&fd, uapi::KDBUS_CMD_BYEBYE, &mut bye),
        Errno::EBADFD,
    )?;
    let mut cmd = hello_cmd(0);
    let c = expect_ok(
        "real HELLO after negotiation",
        Connection::from_hello(fd, &mut cmd),
    )?;
    ensure!(c.id() > 0, "connection id 0");
    check_hello_slice(&c, 64, 8)
}

/// KDBUS_ITEM_NEGOTIATE in HELLO: unsupported types zeroed.
pub fn negotiate_item(ctx: &Ctx) -> TestResult {
    let probe = [
        item::NAME,
        item::CREDS,
        item::PIDS,
        item::SECLABEL,
        item::CONN_DESCRIPTION,
        item::POLICY_ACCESS,
        item::NEGOTIATE,
        item::MAKE_NAME,
        item::BLOOM_PARAMETER,
        item::ATTACH_FLAGS_SEND,
        item::ATTACH_FLAGS_RECV,
        item::PAYLOAD_VEC,
        0x1234,
    ];
    let want: Vec<u64> = probe
        .iter()
        .enumerate()
        .map(|(i, &t)| if i < 7 { t } else { 0 })
        .collect();
    let fd = open(&ctx.endpoint())?;
    let mut cmd = hello_cmd(FLAG_NEGOTIATE);
    let off = cmd.push_negotiate(&probe);
    expect_ok(
        "HELLO negotiation with a NEGOTIATE item",
        raw(&fd, uapi::KDBUS_CMD_HELLO, &mut cmd),
    )?;
    ensure_eq!(
        cmd.negotiate_entries(off, probe.len()),
        want.clone(),
        "NEGOTIATE entries after HELLO negotiation"
    );
    let mut cmd = hello_cmd(0);
    let off = cmd.push_negotiate(&probe);
    let c = expect_ok(
        "HELLO with a NEGOTIATE item",
        Connection::from_hello(fd, &mut cmd),
    )?;
    ensure!(c.id() > 0, "connection id 0");
    ensure_eq!(
        cmd.negotiate_entries(off, probe.len()),
        want,
        "NEGOTIATE entries after a real HELLO"
    );
    Ok(())
}

/// A NAME item is only for activators and policy holders.
pub fn name_without_type(ctx: &Ctx) -> TestResult {
    for flags in [0, ACCEPT_FD, MONITOR, MONITOR | ACCEPT_FD] {
        let mut cmd = hello_cmd(flags);
        cmd.push_str(item::NAME, "org.example.Kdbus");
        expect_hello_err(
            ctx,
            &format!("HELLO flags {flags:#x} with a NAME item"),
            cmd,
            Errno::EINVAL,
        )?;
    }
    for flags in [ACTIVATOR, POLICY_HOLDER] {
        expect_hello_err(
            ctx,
            &format!("HELLO flags {flags:#x} without a NAME item"),
            hello_cmd(flags),
            Errno::EINVAL,
        )?;
    }
    Ok(())
}

/// At most one of MONITOR, ACTIVATOR, POLICY_HOLDER.
pub fn conflicting_types(ctx: &Ctx) -> TestResult {
    let combos = [
        MONITOR | ACTIVATOR,
        MONITOR | POLICY_HOLDER,
        ACTIVATOR | POLICY_HOLDER,
        MONITOR | ACTIVATOR | POLICY_HOLDER,
        MONITOR | ACTIVATOR | POLICY_HOLDER | ACCEPT_FD,
    ];
    for flags in combos {
        expect_hello_err(
            ctx,
            &format!("HELLO with flags {flags:#x}"),
            hello_cmd(flags),
            Errno::EINVAL,
        )?;
        let mut cmd = hello_cmd(flags);
        cmd.push_str(item::NAME, "org.example.Kdbus");
        expect_hello_err(
            ctx,
            &format!("HELLO with flags {flags:#x} and a NAME"),
            cmd,
            Errno::EINVAL,
        )?;
    }
    Ok(())
}

/// CONN_DESCRIPTION follows the sysname rules; over 63 characters:
/// ENAMETOOLONG.
pub fn description(ctx: &Ctx) -> TestResult {
    for len in [64usize, 65, 200] {
        let mut cmd = hello_cmd(0);
        cmd.push_str(item::CONN_DESCRIPTION, &"d".repeat(len));
        expect_hello_err(
            ctx,
            &format!("HELLO with a {len}-character description"),
            cmd,
            Errno::ENAMETOOLONG,
        )?;
    }
    for bad in ["bad desc", "-x", "x-", "a/b", ""] {
        let mut cmd = hello_cmd(0);
        cmd.push_str(item::CONN_DESCRIPTION, bad);
        expect_hello_err(
            ctx,
            &format!("HELLO with description {bad:?}"),
            cmd,
            Errno::EINVAL,
        )?;
    }
    for good in ["x".to_string(), "a.b-c_D9".to_string(), "e".repeat(63)] {
        let mut cmd = hello_cmd(0);
        cmd.push_str(item::CONN_DESCRIPTION, &good);
        let c = expect_ok(
            &format!("HELLO with description {good:?}"),
            try_hello(ctx, &mut cmd)?,
        )?;
        ensure!(c.id() > 0, "connection id 0");
    }
    Ok(())
}

/// Attach masks: unknown bits EINVAL, `~0` and `_KDBUS_ATTACH_ALL` accepted.
pub fn attach_flags(ctx: &Ctx) -> TestResult {
    for (send, recv) in [
        (1u64 << 14, 0u64),
        (0, 1 << 14),
        (1 << 63, 0),
        (0, 1 << 63),
        (ATTACH_ANY - 1, 0),
        (ATTACH_ALL, ATTACH_ALL | (1 << 20)),
    ] {
        expect_hello_err(
            ctx,
            &format!("HELLO with attach_flags_send {send:#x}, attach_flags_recv {recv:#x}"),
            Connection::hello_cmd(0, send, recv, POOL_SIZE),
            Errno::EINVAL,
        )?;
    }
    for (send, recv) in [
        (ATTACH_ANY, ATTACH_ANY),
        (ATTACH_ALL, ATTACH_ALL),
        (ATTACH_ANY, 0),
        (0, ATTACH_ANY),
    ] {
        let mut cmd = Connection::hello_cmd(0, send, recv, POOL_SIZE);
        let c = try_hello(ctx, &mut cmd)?;
        expect_ok(
            &format!("HELLO with attach_flags_send {send:#x}, attach_flags_recv {recv:#x}"),
            c,
        )?;
    }
    Ok(())
}

/// HELLO on an already connected handle: EBADFD.
pub fn twice(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let mut cmd = hello_cmd(0);
    expect_errno(
        "second HELLO on a connected handle",
        c.ioctl(uapi::KDBUS_CMD_HELLO, &mut cmd),
        Errno::EBADFD,
    )?;
    let mut neg = hello_cmd(FLAG_NEGOTIATE);
    expect_errno(
        "negotiation-only HELLO on a connected handle",
        c.ioctl(uapi::KDBUS_CMD_HELLO, &mut neg),
        Errno::EBADFD,
    )?;
    expect_ok(
        "FREE of the first HELLO slice",
        c.free(c.hello_reply().offset),
    )?;
    Ok(())
}

/// Connection ioctls on an unset endpoint handle: EBADFD; the handle stays
/// usable for HELLO.
pub fn unset_handle_ioctls(ctx: &Ctx) -> TestResult {
    let fd = open(&ctx.endpoint())?;
    for (what, req, mut cmd) in super::connection_ioctls() {
        expect_errno(
            &format!("{what} on an unset endpoint handle"),
            raw(&fd, req, &mut cmd),
            Errno::EBADFD,
        )?;
    }
    let mut upd = CmdBuf::cmd(0);
    expect_errno(
        "ENDPOINT_UPDATE on an unset endpoint handle",
        raw(&fd, uapi::KDBUS_CMD_ENDPOINT_UPDATE, &mut upd),
        Errno::EBADFD,
    )?;
    let mut cmd = hello_cmd(0);
    let c = expect_ok(
        "HELLO after the refused ioctls",
        Connection::from_hello(fd, &mut cmd),
    )?;
    ensure!(c.id() > 0, "connection id 0");
    Ok(())
}

/// BUS_MAKE on an endpoint file (unset or connected): EBADFD.
pub fn bus_make_on_endpoint(ctx: &Ctx) -> TestResult {
    let fd = open(&ctx.endpoint())?;
    let name = ctx.unique_name();
    expect_errno(
        "BUS_MAKE on an unset endpoint handle",
        BusMaker::new(&name).make_on(&fd),
        Errno::EBADFD,
    )?;
    expect_absent(
        &kdbus::bus_dir(&ctx.mount, &name),
        "bus after BUS_MAKE on an endpoint",
    )?;
    let mut cmd = hello_cmd(0);
    let c = expect_ok(
        "HELLO after the refused BUS_MAKE",
        Connection::from_hello(fd, &mut cmd),
    )?;
    expect_errno(
        "BUS_MAKE on a connected handle",
        BusMaker::new(&name).make_on(&c),
        Errno::EBADFD,
    )?;
    expect_absent(
        &kdbus::bus_dir(&ctx.mount, &name),
        "bus after BUS_MAKE on a connection",
    )?;
    Ok(())
}

/// HELLO with a KDBUS_ITEM_PIDS item (faked PIDs, owner rights) whose
/// payload is not exactly one `struct kdbus_pids` (24 bytes): EINVAL
/// (abi.md 5.1, README section 5); 24 bytes are accepted.
pub fn pids_size(ctx: &Ctx) -> TestResult {
    for len in [0usize, 8, 16, 20, 32, 48] {
        let mut cmd = hello_cmd(0);
        cmd.push_item(item::PIDS, &vec![0u8; len]);
        expect_hello_err(
            ctx,
            &format!("HELLO with a {len}-byte PIDS payload"),
            cmd,
            Errno::EINVAL,
        )?;
    }
    let mut cmd = hello_cmd(0);
    let pid = std::process::id() as u64;
    cmd.push_u64s(item::PIDS, &[pid, pid, 1]);
    let c = try_hello(ctx, &mut cmd)?;
    let c = expect_ok("HELLO with a 24-byte PIDS payload", c)?;
    ensure!(c.id() > 0, "connection id 0");
    Ok(())
}

/// On a connected handle every ioctl first takes an active reference on
/// the connection (abi.md 11): after BYEBYE even the setup ioctls (HELLO,
/// BUS_MAKE, ENDPOINT_MAKE, and ENDPOINT_UPDATE) fail with ECONNRESET;
/// before it they are EBADFD. Nothing is created.
pub fn setup_after_byebye(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let name = ctx.unique_name();
    let setup = |c: &Connection, want: Errno, when: &str| -> TestResult {
        let mut hello = hello_cmd(0);
        expect_errno(
            &format!("HELLO on a connected handle {when}"),
            c.ioctl(uapi::KDBUS_CMD_HELLO, &mut hello),
            want,
        )?;
        let mut bus = BusMaker::new(name.clone()).cmd();
        expect_errno(
            &format!("BUS_MAKE on a connected handle {when}"),
            c.ioctl(uapi::KDBUS_CMD_BUS_MAKE, &mut bus),
            want,
        )?;
        let mut ep = CmdBuf::cmd(0);
        ep.push_str(item::MAKE_NAME, &format!("{}-ep", ctx.euid));
        expect_errno(
            &format!("ENDPOINT_MAKE on a connected handle {when}"),
            c.ioctl(uapi::KDBUS_CMD_ENDPOINT_MAKE, &mut ep),
            want,
        )?;
        let mut upd = CmdBuf::cmd(0);
        expect_errno(
            &format!("ENDPOINT_UPDATE on a connected handle {when}"),
            c.ioctl(uapi::KDBUS_CMD_ENDPOINT_UPDATE, &mut upd),
            want,
        )
    };
    setup(&c, Errno::EBADFD, "(connected)")?;
    expect_ok("BYEBYE", c.byebye())?;
    setup(&c, Errno::ECONNRESET, "after BYEBYE")?;
    expect_absent(
        &kdbus::bus_dir(&ctx.mount, &name),
        "bus after BUS_MAKE on a connected handle",
    )?;
    expect_absent(
        &ctx.bus.dir().join(format!("{}-ep", ctx.euid)),
        "endpoint after ENDPOINT_MAKE on a connected handle",
    )
}
