//! The control file and KDBUS_CMD_BUS_MAKE (spec bus.md, fs.md 3, abi.md
//! 8-11).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use kdbus::{
    bus_dir, ioctl_ptr, uapi, Bus, BusMaker, CmdBuf, Connection, Control, Errno, ATTACH_ALL,
    ATTACH_ANY, FLAG_NEGOTIATE,
};

use super::{item, raw, ACCESS_GROUP, ACCESS_WORLD};
use crate::check::{
    errno_name, expect_absent, expect_errno, expect_ok, expect_present, TestResult,
};
use crate::ctx::{as_ids, require_root, Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq, ensure_eq_hex};

/// Issues `cmd` as BUS_MAKE on a fresh control handle. The handle is
/// returned so that a bus created by it lives as long as the caller keeps it.
fn try_make(ctx: &Ctx, cmd: &mut CmdBuf) -> Result<(Control, Result<(), Errno>), String> {
    let control = ctx.control()?;
    let r = control.bus_make_raw(cmd);
    Ok((control, r))
}

/// Expects BUS_MAKE with `cmd` to fail with `want` and to leave no bus
/// named `name` behind (pass `None` for commands without a usable name).
fn expect_make_err(
    ctx: &Ctx,
    what: &str,
    mut cmd: CmdBuf,
    want: Errno,
    name: Option<&str>,
) -> TestResult {
    let (control, r) = try_make(ctx, &mut cmd)?;
    expect_errno(what, r, want)?;
    if let Some(n) = name {
        expect_absent(&bus_dir(&ctx.mount, n), what)?;
    }
    drop(control);
    Ok(())
}

/// The standard BUS_MAKE command for `name`.
fn make_cmd(name: &str) -> CmdBuf {
    BusMaker::new(name).cmd()
}

fn check_modes(
    ctx: &Ctx,
    bus: &Bus,
    dir_mode: u32,
    ep_mode: u32,
    uid: u32,
    gid: u32,
) -> TestResult {
    let d = expect_present(&bus.dir(), "bus directory")?;
    ensure!(d.is_dir(), "{} is not a directory", bus.dir().display());
    ensure!(
        bus.dir().parent() == Some(ctx.mount.as_path()),
        "bus directory not directly under the mount"
    );
    ensure_eq!(
        format!("{:o}", d.mode() & 0o7777),
        format!("{dir_mode:o}"),
        "mode of bus directory {}",
        bus.dir().display()
    );
    ensure_eq!(d.uid(), uid, "owner uid of the bus directory");
    ensure_eq!(d.gid(), gid, "owner gid of the bus directory");
    let e = expect_present(&bus.endpoint(), "default endpoint")?;
    ensure!(
        e.file_type().is_file(),
        "{} is not a regular file ({:?})",
        bus.endpoint().display(),
        e.file_type()
    );
    ensure!(!e.file_type().is_fifo(), "endpoint is a fifo");
    ensure_eq!(
        format!("{:o}", e.mode() & 0o7777),
        format!("{ep_mode:o}"),
        "mode of default endpoint {}",
        bus.endpoint().display()
    );
    ensure_eq!(e.uid(), uid, "owner uid of the default endpoint");
    ensure_eq!(e.gid(), gid, "owner gid of the default endpoint");
    Ok(())
}

/// fs.md 3.1: no flags -> 0500 directory, 0600 `bus`, owned by the creator.
pub fn modes_default(ctx: &Ctx) -> TestResult {
    check_modes(ctx, &ctx.bus, 0o500, 0o600, ctx.euid, ctx.egid)
}

/// ACCESS_GROUP -> 0550 / 0660.
pub fn modes_group(ctx: &Ctx) -> TestResult {
    let bus = ctx.new_bus(ACCESS_GROUP)?;
    check_modes(ctx, &bus, 0o550, 0o660, ctx.euid, ctx.egid)
}

/// ACCESS_WORLD (alone or with GROUP) -> 0555 / 0666.
pub fn modes_world(ctx: &Ctx) -> TestResult {
    let bus = ctx.new_bus(ACCESS_WORLD)?;
    check_modes(ctx, &bus, 0o555, 0o666, ctx.euid, ctx.egid)?;
    let bus = ctx.new_bus(ACCESS_WORLD | ACCESS_GROUP)?;
    check_modes(ctx, &bus, 0o555, 0o666, ctx.euid, ctx.egid)
}

/// The bus belongs to the caller's effective uid/gid, and its name must
/// carry the effective uid as prefix (bus.md 2 step 5).
pub fn owner_euid_egid(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    const UID: u32 = 4243;
    const GID: u32 = 4242;
    let name = format!("{UID}-{}", ctx.unique_suffix());
    let root_name = format!("0-{}", ctx.unique_suffix());
    let bus = as_ids(UID, GID, || {
        let wrong = BusMaker::new(&root_name).make(ctx.control()?);
        expect_errno(
            &format!("BUS_MAKE {root_name} with euid {UID}"),
            wrong.map(drop),
            Errno::EINVAL,
        )?;
        ctx.make_bus(BusMaker::new(&name))
    })?;
    check_modes(ctx, &bus, 0o500, 0o600, UID, GID)
}

/// Closing the owner handle removes the bus and frees its name.
pub fn close_removes_bus(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    let bus = ctx.make_bus(BusMaker::new(&name))?;
    let (dir, ep) = (bus.dir(), bus.endpoint());
    expect_present(&dir, "bus directory after BUS_MAKE")?;
    expect_present(&ep, "endpoint after BUS_MAKE")?;
    expect_ok("close of the bus owner handle", bus.close())?;
    expect_absent(&ep, "endpoint after closing the owner handle")?;
    expect_absent(&dir, "bus directory after closing the owner handle")?;
    let again = ctx.make_bus(BusMaker::new(&name))?;
    expect_present(&again.dir(), "bus re-created with the same name")?;
    Ok(())
}

/// Names must start with `<euid>-`.
pub fn name_prefix(ctx: &Ctx) -> TestResult {
    let s = ctx.unique_suffix();
    let cases = [
        (s.clone(), "no uid prefix"),
        (format!("test{s}"), "no uid prefix"),
        (format!("{}-{s}", ctx.euid + 1), "another uid"),
        (format!("{}-{s}", ctx.euid + 10), "another uid"),
        (format!("0{}-{s}", ctx.euid), "uid with a leading zero"),
        (
            format!("{}_{s}", ctx.euid),
            "uid followed by '_' instead of '-'",
        ),
        (
            format!("{}.{s}", ctx.euid),
            "uid followed by '.' instead of '-'",
        ),
    ];
    for (name, why) in &cases {
        // The uid suffix "-..." of a unique name makes "<uid>-" appear later
        // in the string; the prefix check must look at the start only.
        expect_make_err(
            ctx,
            &format!("BUS_MAKE '{name}' ({why})"),
            make_cmd(name),
            Errno::EINVAL,
            Some(name),
        )?;
    }
    Ok(())
}

/// Sysname rules: `[A-Za-z0-9_]`, inner `-` and `.`; empty is invalid.
pub fn name_chars(ctx: &Ctx) -> TestResult {
    let base = ctx.unique_name();
    let bad = [
        format!("{base}/x"),
        format!("{base} x"),
        format!("{base}:x"),
        format!("{base}*"),
        format!("{base}\u{e4}"),
        format!("{base}\tx"),
        format!("{base}-"),
        format!("{base}."),
        format!("{base}x-"),
    ];
    for name in &bad {
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with name {name:?}"),
            make_cmd(name),
            Errno::EINVAL,
            None,
        )?;
    }
    expect_make_err(
        ctx,
        "BUS_MAKE with an empty name",
        make_cmd(""),
        Errno::EINVAL,
        None,
    )?;
    let good = format!("{base}.a-b_C9");
    let bus = ctx.make_bus(BusMaker::new(&good))?;
    expect_present(&bus.dir(), "bus with '.', '-', '_' inside its name")?;
    Ok(())
}

/// 63 characters are fine, 64 and more give ENAMETOOLONG.
pub fn name_too_long(ctx: &Ctx) -> TestResult {
    let base = format!("{}-", ctx.unique_name());
    let pad = |len: usize| format!("{base}{}", "x".repeat(len - base.len()));
    for len in [64, 65, 100, 255] {
        let name = pad(len);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with a {len}-character name"),
            make_cmd(&name),
            Errno::ENAMETOOLONG,
            None,
        )?;
    }
    let name = pad(63);
    let bus = ctx.make_bus(BusMaker::new(&name))?;
    expect_present(&bus.dir(), "bus with a 63-character name")?;
    Ok(())
}

/// A second bus of the same name: EEXIST.
pub fn name_duplicate(ctx: &Ctx) -> TestResult {
    let what = format!("second BUS_MAKE of {}", ctx.bus.name());
    expect_make_err(ctx, &what, make_cmd(ctx.bus.name()), Errno::EEXIST, None)?;
    expect_present(&ctx.bus.endpoint(), "first bus after the failed duplicate")?;
    let name = ctx.unique_name();
    let _b = ctx.make_bus(BusMaker::new(&name).flags(ACCESS_WORLD))?;
    let mut cmd = BusMaker::new(&name).bloom(128, 2).cmd();
    let (_c, r) = try_make(ctx, &mut cmd)?;
    expect_errno(
        "duplicate name with other flags and bloom",
        r,
        Errno::EEXIST,
    )
}

/// bloom size 8..4096 and a multiple of 8; n_hash >= 1 (no upper bound).
pub fn bloom_parameters(ctx: &Ctx) -> TestResult {
    for (size, n_hash) in [
        (0, 1),
        (4, 1),
        (7, 1),
        (12, 1),
        (4100, 1),
        (4104, 1),
        (8192, 1),
        (64, 0),
    ] {
        let name = ctx.unique_name();
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with bloom size {size}, n_hash {n_hash}"),
            BusMaker::new(&name).bloom(size, n_hash).cmd(),
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    for (size, n_hash) in [(8, 1), (4096, 1), (64, 1_000_000)] {
        let name = ctx.unique_name();
        let bus = ctx.make_bus(BusMaker::new(&name).bloom(size, n_hash))?;
        expect_present(&bus.dir(), &format!("bus with bloom {size}/{n_hash}"))?;
    }
    // The bloom payload must be exactly 16 bytes.
    let name = ctx.unique_name();
    let mut cmd = CmdBuf::cmd(0);
    cmd.push_str(item::MAKE_NAME, &name);
    cmd.push_u64s(item::BLOOM_PARAMETER, &[64, 8, 0]);
    expect_make_err(
        ctx,
        "BLOOM_PARAMETER with a 24-byte payload",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )?;
    let mut cmd = CmdBuf::cmd(0);
    cmd.push_str(item::MAKE_NAME, &name);
    cmd.push_u64s(item::BLOOM_PARAMETER, &[64]);
    expect_make_err(
        ctx,
        "BLOOM_PARAMETER with an 8-byte payload",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )
}

/// MAKE_NAME and BLOOM_PARAMETER are mandatory.
pub fn missing_items(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    let mut only_name = CmdBuf::cmd(0);
    only_name.push_str(item::MAKE_NAME, &name);
    expect_make_err(
        ctx,
        "BUS_MAKE without BLOOM_PARAMETER",
        only_name,
        Errno::EINVAL,
        Some(&name),
    )?;

    let mut name_attach = CmdBuf::cmd(0);
    name_attach.push_str(item::MAKE_NAME, &name);
    name_attach.push_u64(item::ATTACH_FLAGS_SEND, 0);
    expect_make_err(
        ctx,
        "BUS_MAKE with MAKE_NAME and ATTACH_FLAGS_SEND but no BLOOM_PARAMETER",
        name_attach,
        Errno::EINVAL,
        Some(&name),
    )?;

    let mut only_bloom = CmdBuf::cmd(0);
    only_bloom.push_bloom_parameter(64, 8);
    expect_make_err(
        ctx,
        "BUS_MAKE without MAKE_NAME",
        only_bloom,
        Errno::EINVAL,
        None,
    )?;

    expect_make_err(
        ctx,
        "BUS_MAKE without items",
        CmdBuf::cmd(0),
        Errno::EINVAL,
        None,
    )?;
    expect_make_err(
        ctx,
        "BUS_MAKE with flags but no items",
        CmdBuf::cmd(ACCESS_WORLD),
        Errno::EINVAL,
        None,
    )
}

/// Item types BUS_MAKE does not accept: EINVAL.
pub fn unknown_item(ctx: &Ctx) -> TestResult {
    let cases: [(&str, u64, Vec<u8>); 7] = [
        ("type 0x1234", 0x1234, vec![0; 8]),
        ("type 0 (_KDBUS_ITEM_NULL)", 0, vec![0; 8]),
        ("KDBUS_ITEM_ID", item::ID, 1u64.to_ne_bytes().to_vec()),
        (
            "KDBUS_ITEM_NAME",
            item::NAME,
            b"org.example.Name\0".to_vec(),
        ),
        (
            "KDBUS_ITEM_CONN_DESCRIPTION",
            item::CONN_DESCRIPTION,
            b"desc\0".to_vec(),
        ),
        ("KDBUS_ITEM_POLICY_ACCESS", item::POLICY_ACCESS, vec![0; 24]),
        ("type 0x7fffffff", 0x7fff_ffff, vec![0; 8]),
    ];
    for (what, ty, payload) in &cases {
        let name = ctx.unique_name();
        let mut cmd = make_cmd(&name);
        cmd.push_item(*ty, payload);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with {what} item last"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
        let mut cmd = CmdBuf::cmd(0);
        cmd.push_item(*ty, payload);
        cmd.push_str(item::MAKE_NAME, &name);
        cmd.push_bloom_parameter(64, 8);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with {what} item first"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    Ok(())
}

/// Each item at most once.
pub fn duplicate_item(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    let mut c = make_cmd(&name);
    c.push_str(item::MAKE_NAME, &name);
    expect_make_err(
        ctx,
        "two MAKE_NAME items (same name)",
        c,
        Errno::EINVAL,
        Some(&name),
    )?;
    let other = ctx.unique_name();
    let mut c = make_cmd(&name);
    c.push_str(item::MAKE_NAME, &other);
    expect_make_err(
        ctx,
        "two MAKE_NAME items (different names)",
        c,
        Errno::EINVAL,
        Some(&name),
    )?;
    expect_absent(
        &bus_dir(&ctx.mount, &other),
        "second name of a failed BUS_MAKE",
    )?;
    let mut c = make_cmd(&name);
    c.push_bloom_parameter(64, 8);
    expect_make_err(
        ctx,
        "two BLOOM_PARAMETER items",
        c,
        Errno::EINVAL,
        Some(&name),
    )?;
    let mut c = make_cmd(&name);
    c.push_u64(item::ATTACH_FLAGS_SEND, 0);
    c.push_u64(item::ATTACH_FLAGS_SEND, 0);
    expect_make_err(
        ctx,
        "two ATTACH_FLAGS_SEND items",
        c,
        Errno::EINVAL,
        Some(&name),
    )
}

/// Flags other than ACCESS_GROUP/ACCESS_WORLD/NEGOTIATE: EINVAL.
pub fn unknown_flag(ctx: &Ctx) -> TestResult {
    for flags in [
        1 << 2,
        1 << 3,
        1 << 32,
        1 << 62,
        (1 << 2) | FLAG_NEGOTIATE,
        u64::MAX,
    ] {
        let name = ctx.unique_name();
        let mut cmd = make_cmd(&name);
        cmd.set_flags(flags);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with flags {flags:#x}"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    Ok(())
}

/// KDBUS_FLAG_NEGOTIATE: returns 0, writes back 0x3, creates nothing and
/// leaves the handle unset.
pub fn negotiate_flags(ctx: &Ctx) -> TestResult {
    let control = ctx.control()?;
    let name = ctx.unique_name();
    let mut cmd = make_cmd(&name);
    cmd.set_flags(FLAG_NEGOTIATE);
    expect_ok("BUS_MAKE with NEGOTIATE", control.bus_make_raw(&mut cmd))?;
    ensure_eq_hex!(
        cmd.flags(),
        0x3,
        "flags written back by BUS_MAKE negotiation"
    );
    expect_absent(
        &bus_dir(&ctx.mount, &name),
        "bus after a negotiation-only BUS_MAKE",
    )?;

    // Mandatory items are not required when negotiating.
    let mut bare = CmdBuf::cmd(FLAG_NEGOTIATE | ACCESS_WORLD);
    expect_ok(
        "BUS_MAKE with NEGOTIATE and no items",
        control.bus_make_raw(&mut bare),
    )?;
    ensure_eq_hex!(
        bare.flags(),
        0x3,
        "flags written back (NEGOTIATE|ACCESS_WORLD, no items)"
    );

    // Items that are present must still be valid.
    let mut bad = make_cmd(&name);
    bad.set_flags(FLAG_NEGOTIATE);
    bad.push_item(0x1234, &[0; 8]);
    expect_errno(
        "BUS_MAKE negotiation with an unknown item",
        control.bus_make_raw(&mut bad),
        Errno::EINVAL,
    )?;

    let bus = expect_ok(
        "real BUS_MAKE on the handle after negotiation",
        BusMaker::new(&name).make(control),
    )?;
    expect_present(&bus.endpoint(), "bus made after negotiation")?;
    Ok(())
}

/// KDBUS_ITEM_NEGOTIATE: entries of unsupported item types are zeroed,
/// with and without the NEGOTIATE flag.
pub fn negotiate_item(ctx: &Ctx) -> TestResult {
    let probe = [
        item::MAKE_NAME,
        item::BLOOM_PARAMETER,
        item::ATTACH_FLAGS_SEND,
        item::NEGOTIATE,
        item::ATTACH_FLAGS_RECV,
        item::NAME,
        item::PAYLOAD_VEC,
        item::CREDS,
        0x1234,
        0,
    ];
    let want = [
        item::MAKE_NAME,
        item::BLOOM_PARAMETER,
        item::ATTACH_FLAGS_SEND,
        item::NEGOTIATE,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    // Negotiation only.
    let control = ctx.control()?;
    let name = ctx.unique_name();
    let mut cmd = CmdBuf::cmd(FLAG_NEGOTIATE);
    let off = cmd.push_negotiate(&probe);
    expect_ok(
        "BUS_MAKE negotiation with a NEGOTIATE item",
        control.bus_make_raw(&mut cmd),
    )?;
    ensure_eq!(
        cmd.negotiate_entries(off, probe.len()),
        want.to_vec(),
        "NEGOTIATE item entries after BUS_MAKE negotiation"
    );
    // A real BUS_MAKE carrying the item: the bus is made, entries zeroed.
    let mut cmd = make_cmd(&name);
    let off = cmd.push_negotiate(&probe);
    expect_ok(
        "BUS_MAKE with a NEGOTIATE item",
        control.bus_make_raw(&mut cmd),
    )?;
    let bus = control.into_bus(&name);
    expect_present(&bus.endpoint(), "bus made with a NEGOTIATE item")?;
    ensure_eq!(
        cmd.negotiate_entries(off, probe.len()),
        want.to_vec(),
        "NEGOTIATE item entries after a real BUS_MAKE"
    );
    // The negotiate payload must be a multiple of 8.
    let name = ctx.unique_name();
    let mut cmd = make_cmd(&name);
    cmd.push_item(item::NEGOTIATE, &[0; 12]);
    expect_make_err(
        ctx,
        "NEGOTIATE item with a 12-byte payload",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )
}

/// size < 24: EINVAL; size > 32768: EMSGSIZE (checked before the copy).
pub fn cmd_size(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    for size in [0u64, 8, 16, 23] {
        let mut cmd = make_cmd(&name);
        cmd.set_size(size);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with size {size}"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    let mut big = make_cmd(&name);
    let fill = 32768 + 4096 - big.len();
    big.push_raw(&vec![0; fill]);
    for size in [32769u64, 32776, 32768 + 4096] {
        let mut cmd = big.clone();
        cmd.set_size(size);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with size {size}"),
            cmd,
            Errno::EMSGSIZE,
            Some(&name),
        )?;
    }
    let mut huge = make_cmd(&name);
    huge.push_raw(&vec![0; (1 << 20) - huge.len()]);
    huge.set_size(1 << 20);
    expect_make_err(
        ctx,
        "BUS_MAKE with size 1 MiB",
        huge,
        Errno::EMSGSIZE,
        Some(&name),
    )?;
    // Exactly 32768 passes the size check; the zero bytes after the valid
    // items then form an item with size 0.
    let mut cmd = big.clone();
    cmd.set_size(32768);
    expect_make_err(
        ctx,
        "BUS_MAKE with size 32768 and zero-filled item area",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )
}

/// The argument pointer must be 8-byte aligned: EFAULT.
pub fn unaligned_pointer(ctx: &Ctx) -> TestResult {
    let control = ctx.control()?;
    let name = ctx.unique_name();
    let cmd = make_cmd(&name);
    let len = cmd.len();
    let mut buf = CmdBuf::new(8);
    buf.push_raw(&vec![0; len + 16]);
    for off in [1usize, 4, 7] {
        let bytes = buf.as_bytes_mut();
        bytes.fill(0);
        bytes[off..off + len].copy_from_slice(cmd.as_bytes());
        // SAFETY: the pointer is inside `buf` with `len` valid bytes after
        // it; a correct kernel refuses it before reading.
        let r = unsafe {
            ioctl_ptr(
                &control,
                uapi::KDBUS_CMD_BUS_MAKE,
                buf.as_mut_ptr().add(off).cast(),
            )
        };
        expect_errno(
            &format!("BUS_MAKE at a pointer {off} bytes past alignment"),
            r,
            Errno::EFAULT,
        )?;
        expect_absent(&bus_dir(&ctx.mount, &name), "bus after the EFAULT")?;
    }
    // The same bytes at an aligned address are a valid command.
    let bytes = buf.as_bytes_mut();
    bytes.fill(0);
    bytes[8..8 + len].copy_from_slice(cmd.as_bytes());
    // SAFETY: aligned pointer into `buf` with the whole command behind it.
    let r = unsafe {
        ioctl_ptr(
            &control,
            uapi::KDBUS_CMD_BUS_MAKE,
            buf.as_mut_ptr().add(8).cast(),
        )
    };
    expect_ok("the same BUS_MAKE at an aligned address", r)?;
    expect_present(
        &bus_dir(&ctx.mount, &name),
        "bus made from the aligned copy",
    )?;
    Ok(())
}

/// A second BUS_MAKE on the same (now bus-owner) handle: EBADFD.
pub fn twice(ctx: &Ctx) -> TestResult {
    let control = ctx.control()?;
    let first = ctx.unique_name();
    expect_ok("first BUS_MAKE", BusMaker::new(&first).make_on(&control))?;
    let second = ctx.unique_name();
    expect_errno(
        "second BUS_MAKE on the same handle",
        BusMaker::new(&second).make_on(&control),
        Errno::EBADFD,
    )?;
    expect_absent(
        &bus_dir(&ctx.mount, &second),
        "bus of the refused second BUS_MAKE",
    )?;
    expect_errno(
        "BUS_MAKE repeating the first name on the same handle",
        BusMaker::new(&first).make_on(&control),
        Errno::EBADFD,
    )?;
    let mut neg = CmdBuf::cmd(FLAG_NEGOTIATE);
    expect_errno(
        "negotiation-only BUS_MAKE on a bus-owner handle",
        control.bus_make_raw(&mut neg),
        Errno::EBADFD,
    )?;
    expect_present(&bus_dir(&ctx.mount, &first), "first bus")?;
    Ok(())
}

/// ATTACH_FLAGS_SEND: unknown bits EINVAL, `~0` accepted; ATTACH_FLAGS_RECV
/// is not accepted by BUS_MAKE.
pub fn attach_flags(ctx: &Ctx) -> TestResult {
    for mask in [1u64 << 14, 1 << 63, ATTACH_ALL | (1 << 14), ATTACH_ANY - 1] {
        let name = ctx.unique_name();
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with ATTACH_FLAGS_SEND {mask:#x}"),
            BusMaker::new(&name).attach_flags_send(mask).cmd(),
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    for mask in [ATTACH_ANY, ATTACH_ALL, 0, 1] {
        let name = ctx.unique_name();
        let bus = ctx.make_bus(BusMaker::new(&name).attach_flags_send(mask))?;
        expect_present(&bus.dir(), &format!("bus with ATTACH_FLAGS_SEND {mask:#x}"))?;
    }
    for mask in [0u64, 1, ATTACH_ANY] {
        let name = ctx.unique_name();
        let mut cmd = make_cmd(&name);
        cmd.push_u64(item::ATTACH_FLAGS_RECV, mask);
        expect_make_err(
            ctx,
            &format!("BUS_MAKE with an ATTACH_FLAGS_RECV item ({mask:#x})"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    let name = ctx.unique_name();
    let mut cmd = make_cmd(&name);
    cmd.push_item(item::ATTACH_FLAGS_SEND, &[0; 4]);
    expect_make_err(
        ctx,
        "ATTACH_FLAGS_SEND with a 4-byte payload",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )?;
    let mut cmd = make_cmd(&name);
    cmd.push_item(item::ATTACH_FLAGS_SEND, &[0; 16]);
    expect_make_err(
        ctx,
        "ATTACH_FLAGS_SEND with a 16-byte payload",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )
}

/// Item framing (abi.md 5.2): size < 16, items past the end and trailing
/// slack are EINVAL.
pub fn item_framing(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    for size in [0u64, 8, 15] {
        let mut cmd = make_cmd(&name);
        cmd.push_item_with_size(size, item::ATTACH_FLAGS_SEND, &[0; 8]);
        expect_make_err(
            ctx,
            &format!("item with size {size}"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
        let mut cmd = CmdBuf::cmd(0);
        cmd.push_item_with_size(size, item::ATTACH_FLAGS_SEND, &[0; 8]);
        cmd.push_str(item::MAKE_NAME, &name);
        cmd.push_bloom_parameter(64, 8);
        expect_make_err(
            ctx,
            &format!("first item with size {size}"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    // The last item (bloom, 32 bytes) reaching past `size`.
    let mut cmd = make_cmd(&name);
    let full = cmd.size();
    cmd.set_size(full - 8);
    expect_make_err(
        ctx,
        "last item 8 bytes beyond the command size",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )?;
    let mut cmd = make_cmd(&name);
    cmd.set_size(full - 16);
    expect_make_err(
        ctx,
        "last item 16 bytes beyond the command size",
        cmd,
        Errno::EINVAL,
        Some(&name),
    )?;
    // An item whose size field points past the command, or overflows.
    for size in [16 + 8 + 64, 1 << 32, 1 << 63, u64::MAX - 7, u64::MAX] {
        let mut cmd = make_cmd(&name);
        cmd.push_item_with_size(size, item::ATTACH_FLAGS_SEND, &[0; 8]);
        expect_make_err(
            ctx,
            &format!("item with size field {size:#x} beyond the end"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    // Trailing slack after the last item.
    for slack in [8usize, 16, 24] {
        let mut cmd = make_cmd(&name);
        cmd.push_raw(&vec![0; slack]);
        expect_make_err(
            ctx,
            &format!("{slack} zero bytes after the last item"),
            cmd,
            Errno::EINVAL,
            Some(&name),
        )?;
    }
    Ok(())
}

/// `size` may omit the padding of the last item (abi.md 5.2 step 4).
pub fn unpadded_size(ctx: &Ctx) -> TestResult {
    let mut name = ctx.unique_name();
    if (name.len() + 1).is_multiple_of(8) {
        name.push('x');
    }
    let mut cmd = CmdBuf::cmd(0);
    cmd.push_bloom_parameter(64, 8);
    let off = cmd.push_str(item::MAKE_NAME, &name);
    let unpadded = (off + 16 + name.len() + 1) as u64;
    ensure!(unpadded < cmd.size(), "test bug: name item has no padding");
    cmd.set_size(unpadded);
    let (control, r) = try_make(ctx, &mut cmd)?;
    expect_ok(
        &format!("BUS_MAKE with size {unpadded} (last item unpadded)"),
        r,
    )?;
    let bus = control.into_bus(&name);
    expect_present(&bus.endpoint(), "bus made with an unpadded size")?;
    Ok(())
}

/// String items: exactly one NUL, at the end of the payload as counted by
/// the item size.
pub fn string_items(ctx: &Ctx) -> TestResult {
    let mut name = ctx.unique_name();
    if (name.len() + 1).is_multiple_of(8) {
        name.push('x');
    }
    let with_nul = {
        let mut v = name.as_bytes().to_vec();
        v.push(0);
        v
    };
    let padded = kdbus::align8(with_nul.len());
    let build = |size_field: u64, payload: &[u8]| {
        let mut c = CmdBuf::cmd(0);
        c.push_bloom_parameter(64, 8);
        c.push_item_with_size(size_field, item::MAKE_NAME, payload);
        c
    };
    let mut padded_payload = with_nul.clone();
    padded_payload.resize(padded, 0);
    expect_make_err(
        ctx,
        "MAKE_NAME whose size counts the padding NULs",
        build((16 + padded) as u64, &padded_payload),
        Errno::EINVAL,
        Some(&name),
    )?;
    expect_make_err(
        ctx,
        "MAKE_NAME without a terminating NUL",
        build((16 + name.len()) as u64, name.as_bytes()),
        Errno::EINVAL,
        Some(&name),
    )?;
    let mut inner = name.as_bytes().to_vec();
    inner.extend_from_slice(b"\0x\0");
    expect_make_err(
        ctx,
        "MAKE_NAME with a NUL inside",
        build((16 + inner.len()) as u64, &inner),
        Errno::EINVAL,
        Some(&name),
    )?;
    expect_make_err(
        ctx,
        "MAKE_NAME with an empty payload",
        build(16, &[]),
        Errno::EINVAL,
        None,
    )?;
    let (control, r) = try_make(ctx, &mut build((16 + with_nul.len()) as u64, &with_nul))?;
    expect_ok("MAKE_NAME counting exactly one NUL", r)?;
    let bus = control.into_bus(&name);
    expect_present(&bus.dir(), "bus with a well-formed name item")?;
    Ok(())
}

/// At most 16 buses per real uid and domain; the 17th gets EMFILE. Run on
/// a private mount so that no other bus counts.
pub fn max_buses(ctx: &Ctx) -> TestResult {
    let pm = ctx.private_mount()?;
    let mut buses = Vec::new();
    for i in 0..16 {
        let name = ctx.unique_name();
        let control = expect_ok("open private control", Control::open(pm.path()))?;
        let bus = BusMaker::new(&name).make(control).map_err(|e| {
            format!(
                "BUS_MAKE number {} of 16 on a fresh domain: {}",
                i + 1,
                errno_name(e)
            )
        })?;
        buses.push(bus);
    }
    let name = ctx.unique_name();
    let control = expect_ok("open private control", Control::open(pm.path()))?;
    expect_errno(
        "17th BUS_MAKE for the same uid",
        BusMaker::new(&name).make_on(&control),
        Errno::EMFILE,
    )?;
    expect_absent(&bus_dir(pm.path(), &name), "bus refused with EMFILE")?;
    drop(control);
    // Releasing one bus makes room again.
    buses.pop();
    let control = expect_ok("open private control", Control::open(pm.path()))?;
    let again = expect_ok(
        "BUS_MAKE after closing one of 16 buses",
        BusMaker::new(&name).make(control),
    )?;
    buses.push(again);
    drop(buses);
    drop(pm);
    Ok(())
}

/// HELLO and ENDPOINT_MAKE on control: EBADFD; connection ioctls on an
/// unset control handle: EBADFD.
pub fn control_setup_ioctls(ctx: &Ctx) -> TestResult {
    let control = ctx.control()?;
    let mut hello = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on control",
        raw(&control, uapi::KDBUS_CMD_HELLO, &mut hello),
        Errno::EBADFD,
    )?;
    let mut ep = CmdBuf::cmd(0);
    ep.push_str(item::MAKE_NAME, &format!("{}-ep", ctx.euid));
    expect_errno(
        "ENDPOINT_MAKE on control",
        raw(&control, uapi::KDBUS_CMD_ENDPOINT_MAKE, &mut ep),
        Errno::EBADFD,
    )?;
    let mut upd = CmdBuf::cmd(0);
    expect_errno(
        "ENDPOINT_UPDATE on control",
        raw(&control, uapi::KDBUS_CMD_ENDPOINT_UPDATE, &mut upd),
        Errno::EBADFD,
    )?;
    for (what, req, mut cmd) in super::connection_ioctls() {
        expect_errno(
            &format!("{what} on control"),
            raw(&control, req, &mut cmd),
            Errno::EBADFD,
        )?;
    }
    // None of this set the handle up.
    let name = ctx.unique_name();
    let bus = expect_ok(
        "BUS_MAKE on the control handle after the refused ioctls",
        BusMaker::new(&name).make(control),
    )?;
    expect_present(&bus.dir(), "bus")?;
    Ok(())
}

/// Numbers that are not one of the sixteen kdbus ioctls: ENOTTY (also for
/// a BUS_MAKE number with other direction or size bits).
pub fn unknown_ioctl(ctx: &Ctx) -> TestResult {
    let numbers: [(u32, &str); 7] = [
        (0x4018_9501, "_IOW(0x95, 0x01, 24)"),
        (0xc018_9500, "BUS_MAKE with _IOWR direction"),
        (0x8018_9500, "BUS_MAKE with _IOR direction"),
        (0x4020_9500, "BUS_MAKE with size 32"),
        (0x0000_9500, "_IO(0x95, 0x00)"),
        (0x4018_95ff, "_IOW(0x95, 0xff, 24)"),
        (0x4018_9680, "HELLO number with type 0x96"),
    ];
    let name = ctx.unique_name();
    let control = ctx.control()?;
    let conn = ctx.hello()?;
    let dir = std::fs::File::open(&ctx.mount)
        .map_err(|e| format!("open {}: {e}", ctx.mount.display()))?;
    for (nr, what) in numbers {
        let mut cmd = make_cmd(&name);
        expect_errno(
            &format!("ioctl {nr:#x} ({what}) on control"),
            raw(&control, nr, &mut cmd),
            Errno::ENOTTY,
        )?;
        let mut cmd = CmdBuf::cmd(0);
        expect_errno(
            &format!("ioctl {nr:#x} ({what}) on a connection"),
            raw(&conn, nr, &mut cmd),
            Errno::ENOTTY,
        )?;
    }
    expect_absent(&bus_dir(&ctx.mount, &name), "bus after unknown ioctls")?;
    let mut cmd = make_cmd(&name);
    expect_errno(
        "BUS_MAKE on the mount's root directory",
        raw(&dir, uapi::KDBUS_CMD_BUS_MAKE, &mut cmd),
        Errno::ENOTTY,
    )?;
    let busdir = std::fs::File::open(ctx.bus.dir()).map_err(|e| format!("open bus dir: {e}"))?;
    let mut hello = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on a bus directory",
        raw(&busdir, uapi::KDBUS_CMD_HELLO, &mut hello),
        Errno::ENOTTY,
    )
}

/// The bus-owner handle accepts no ioctl at all: EBADFD.
pub fn bus_owner_ioctls(ctx: &Ctx) -> TestResult {
    let owner = &ctx.bus;
    let mut hello = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on the bus-owner handle",
        raw(owner, uapi::KDBUS_CMD_HELLO, &mut hello),
        Errno::EBADFD,
    )?;
    let mut ep = CmdBuf::cmd(0);
    ep.push_str(item::MAKE_NAME, &format!("{}-ep", ctx.euid));
    expect_errno(
        "ENDPOINT_MAKE on the bus-owner handle",
        raw(owner, uapi::KDBUS_CMD_ENDPOINT_MAKE, &mut ep),
        Errno::EBADFD,
    )?;
    for (what, req, mut cmd) in super::connection_ioctls() {
        expect_errno(
            &format!("{what} on the bus-owner handle"),
            raw(owner, req, &mut cmd),
            Errno::EBADFD,
        )?;
    }
    // The bus is unaffected.
    let c = ctx.hello()?;
    ensure!(c.id() > 0, "connection id is 0");
    Ok(())
}

/// A BUS_MAKE command in read-only memory (written before mprotect): the
/// kernel cannot write the command back, so BUS_MAKE fails with EFAULT and
/// creates nothing; the same handle then makes the bus from a writable
/// copy.
pub fn readonly_cmd(ctx: &Ctx) -> TestResult {
    let control = ctx.control()?;
    let name = ctx.unique_name();
    let maker = BusMaker::new(name.clone());
    let cmd = maker.cmd();
    let bytes = cmd.as_bytes();
    let page = kdbus::page_size();
    // SAFETY: a fresh anonymous mapping, unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(p != libc::MAP_FAILED, "mmap of a page failed");
    // SAFETY: the page is writable and larger than the command.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.cast::<u8>(), bytes.len()) };
    // SAFETY: `p` is the mapping made above.
    let prot = unsafe { libc::mprotect(p, page, libc::PROT_READ) };
    // SAFETY: the command is readable at `p`; the kernel must not write.
    let r = unsafe { kdbus::ioctl_ptr(&control, uapi::KDBUS_CMD_BUS_MAKE, p) };
    // SAFETY: unmaps the page mapped above.
    unsafe { libc::munmap(p, page) };
    ensure_eq!(prot, 0, "mprotect PROT_READ");
    expect_errno("BUS_MAKE from read-only memory", r, Errno::EFAULT)?;
    expect_absent(
        &kdbus::bus_dir(&ctx.mount, &name),
        "bus after the failed BUS_MAKE",
    )?;
    let bus = expect_ok(
        "BUS_MAKE from writable memory on the same handle",
        maker.make(control),
    )?;
    expect_present(&bus.dir(), "bus made by the second BUS_MAKE")?;
    Ok(())
}
