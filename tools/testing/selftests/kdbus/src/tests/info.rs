//! CONN_INFO, BUS_CREATOR_INFO, LIST and UPDATE (connection.md 5-7,
//! names.md 8, metadata.md 2.3-2.5).

use kdbus::consts::*;
use kdbus::{
    align8, uapi, BusMaker, CmdBuf, Connection, Control, Errno, InfoRecord, PoolResult, ATTACH_ANY,
    FLAG_NEGOTIATE,
};

use super::util::{self, msg, send, NO_SUCH_ID};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

/// Reads the records of a pool result, checks the slice is 8-aligned inside
/// the pool and the sizes add up, FREEs it (and checks a second FREE is
/// ENXIO).
fn take_records(c: &Connection, r: &PoolResult, what: &str) -> Result<Vec<InfoRecord>, String> {
    ensure!(
        r.offset.is_multiple_of(8) && r.offset.saturating_add(r.size) <= c.pool_size(),
        "{what}: result {{offset {:#x}, size {:#x}}} not an aligned slice inside the pool",
        r.offset,
        r.size
    );
    ensure!(
        r.size.is_multiple_of(8),
        "{what}: size {} not a multiple of 8",
        r.size
    );
    let recs = c.info_records(r).map_err(|e| format!("{what}: {e}"))?;
    let total: u64 = recs.iter().map(|x| align8(x.size as usize) as u64).sum();
    ensure_eq!(total, r.size, "{what}: record sizes vs the reported size");
    expect_ok(&format!("{what}: FREE"), c.free(r.offset))?;
    expect_errno(
        &format!("{what}: second FREE"),
        c.free(r.offset),
        Errno::ENXIO,
    )?;
    Ok(recs)
}

fn info_cmd(id: u64, attach: u64) -> CmdBuf {
    CmdBuf::info(id, attach)
}

/// CONN_INFO by ID: one bare `kdbus_info {24, id, HELLO flags}` (no
/// metadata: the target's send mask is 0; TIMESTAMP is never returned).
pub fn conn_info(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, ATTACH_TIMESTAMP)?;
    for (target, flags) in [(&b, HELLO_ACCEPT_FD), (&a, 0)] {
        for attach in [0, ATTACH_TIMESTAMP, ATTACH_ANY] {
            let what = format!("CONN_INFO of {} with attach {attach:#x}", target.id());
            let r = expect_ok(&what, a.conn_info(target.id(), attach))?;
            ensure_eq!(r.size, 24, "{what}: info_size");
            let recs = take_records(&a, &r, &what)?;
            ensure_eq!(recs.len(), 1, "{what}: records");
            ensure_eq!(
                (recs[0].size, recs[0].id, recs[0].flags),
                (24, target.id(), flags),
                "{what}: size, id, flags"
            );
            ensure!(
                recs[0].items.is_empty(),
                "{what}: unexpected items {:?}",
                recs[0].items
            );
        }
    }
    // A target whose send mask allows everything still gives no TIMESTAMP.
    let c = expect_ok(
        "HELLO with attach_flags_send ~0",
        Connection::hello(ctx.endpoint(), 0, ATTACH_ANY, 0, POOL_SIZE),
    )?;
    let r = expect_ok(
        "CONN_INFO asking for TIMESTAMP",
        a.conn_info(c.id(), ATTACH_TIMESTAMP),
    )?;
    let recs = take_records(&a, &r, "CONN_INFO asking for TIMESTAMP")?;
    ensure!(
        recs[0].items.iter().all(|i| i.ty != ITEM_TIMESTAMP),
        "CONN_INFO returned a TIMESTAMP item"
    );
    Ok(())
}

/// CONN_INFO errors: no ID and no name EINVAL; unknown or gone ID ENXIO;
/// any name ESRCH (no owners yet); bad attach bits, flags, items EINVAL.
pub fn conn_info_errors(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let gone = ctx.hello()?;
    let gone_id = gone.id();
    expect_ok("close", gone.close())?;
    expect_errno("CONN_INFO id 0", a.conn_info(0, 0), Errno::EINVAL)?;
    expect_errno(
        "CONN_INFO unknown id",
        a.conn_info(NO_SUCH_ID, 0),
        Errno::ENXIO,
    )?;
    expect_errno(
        "CONN_INFO of a closed connection",
        a.conn_info(gone_id, 0),
        Errno::ENXIO,
    )?;
    for name in ["org.example.Nobody", "not a name", "x"] {
        expect_errno(
            &format!("CONN_INFO name {name:?}"),
            a.conn_info_name(name, 0, 0),
            Errno::ESRCH,
        )?;
    }
    expect_errno(
        "CONN_INFO name and id",
        a.conn_info_name("org.example.Nobody", b.id(), 0),
        Errno::ESRCH,
    )?;
    expect_errno(
        "CONN_INFO attach 1 << 14",
        a.conn_info(b.id(), 1 << 14),
        Errno::EINVAL,
    )?;
    expect_errno(
        "CONN_INFO attach 1 << 40",
        a.conn_info(b.id(), 1 << 40),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(b.id(), 0);
    c.set_flags(1);
    expect_errno(
        "CONN_INFO flag 1",
        a.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(b.id(), 0);
    c.push_str(ITEM_MAKE_NAME, "0-abc");
    expect_errno(
        "CONN_INFO with a MAKE_NAME item",
        a.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(b.id(), 0);
    c.set_size(55);
    expect_errno(
        "CONN_INFO size 55",
        a.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(b.id(), 0);
    c.set_flags(FLAG_NEGOTIATE);
    let off = c.push_negotiate(&[ITEM_NAME, ITEM_MAKE_NAME, ITEM_NEGOTIATE]);
    expect_ok(
        "CONN_INFO negotiation",
        a.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut c),
    )?;
    ensure_eq!(c.flags(), 0, "negotiated CONN_INFO flags");
    ensure_eq!(
        c.negotiate_entries(off, 3),
        vec![ITEM_NAME, 0, ITEM_NEGOTIATE],
        "negotiated CONN_INFO items"
    );
    Ok(())
}

/// CONN_INFO works on a monitor's ID, but LIST never shows monitors.
pub fn monitor_visibility(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let mon = util::monitor(ctx)?;
    let r = expect_ok("CONN_INFO of a monitor", a.conn_info(mon.id(), 0))?;
    let recs = take_records(&a, &r, "CONN_INFO of a monitor")?;
    ensure_eq!(
        (recs[0].id, recs[0].flags),
        (mon.id(), HELLO_MONITOR),
        "monitor id and flags"
    );
    let r = expect_ok("LIST", a.list(LIST_UNIQUE))?;
    let recs = take_records(&a, &r, "LIST")?;
    let ids: Vec<u64> = recs.iter().map(|r| r.id).collect();
    ensure_eq!(ids, vec![a.id()], "LIST_UNIQUE with a monitor on the bus");
    // The monitor may list too.
    let r = expect_ok("LIST by the monitor", mon.list(LIST_UNIQUE))?;
    let recs = take_records(&mon, &r, "LIST by the monitor")?;
    ensure_eq!(recs.len(), 1, "records in the monitor's LIST");
    Ok(())
}

fn check_creator(c: &Connection, bus_name: &str, flags: u64, what: &str) -> Result<u64, String> {
    let r = expect_ok(what, c.bus_creator_info(0))?;
    let item_size = 16 + bus_name.len() as u64 + 1;
    ensure_eq!(
        r.size,
        24 + align8(item_size as usize) as u64,
        "{what}: info_size"
    );
    let recs = take_records(c, &r, what)?;
    ensure_eq!(recs.len(), 1, "{what}: records");
    let rec = &recs[0];
    ensure_eq!(rec.size, r.size, "{what}: kdbus_info.size");
    ensure_eq!(rec.flags, flags, "{what}: bus flags");
    ensure_eq!(rec.items.len(), 1, "{what}: items (MAKE_NAME only)");
    let it = rec.items[0].as_item();
    ensure_eq!(
        (it.ty, it.size),
        (ITEM_MAKE_NAME, item_size),
        "{what}: MAKE_NAME item"
    );
    ensure_eq!(it.as_str(), Some(bus_name), "{what}: bus name");
    Ok(rec.id)
}

/// BUS_CREATOR_INFO: `kdbus_info {id = bus id, flags = bus flags}` and a
/// MAKE_NAME item with the bus name.
pub fn bus_creator_info(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let id = check_creator(&a, ctx.bus.name(), 0, "BUS_CREATOR_INFO")?;
    ensure!(
        id > 0 && id < a.id(),
        "bus id {id} not below the connection id {}",
        a.id()
    );
    let other = ctx.new_bus(MAKE_ACCESS_WORLD | MAKE_ACCESS_GROUP)?;
    let c = ctx.hello_on(&other.endpoint())?;
    let id2 = check_creator(
        &c,
        other.name(),
        MAKE_ACCESS_WORLD | MAKE_ACCESS_GROUP,
        "BUS_CREATOR_INFO of a world bus",
    )?;
    ensure!(id2 > id && id2 < c.id(), "second bus id {id2}");
    // On a fresh domain the bus is ID 1.
    let pm = ctx.private_mount()?;
    let control = expect_ok("open private control", Control::open(pm.path()))?;
    let name = ctx.unique_name();
    let bus = expect_ok(
        "BUS_MAKE on the private mount",
        BusMaker::new(name.clone()).make(control),
    )?;
    let c = ctx.hello_on(&bus.endpoint())?;
    let id = check_creator(&c, &name, 0, "BUS_CREATOR_INFO on a fresh domain")?;
    ensure_eq!(id, 1, "bus id on a fresh domain");
    Ok(())
}

/// BUS_CREATOR_INFO errors: any item but NEGOTIATE, unknown attach bits,
/// unknown flags: EINVAL.
pub fn bus_creator_info_errors(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let req = uapi::KDBUS_CMD_BUS_CREATOR_INFO;
    let mut c = info_cmd(0, 0);
    c.push_str(ITEM_NAME, "org.example.X");
    expect_errno(
        "BUS_CREATOR_INFO with a NAME item",
        a.info_raw(req, &mut c),
        Errno::EINVAL,
    )?;
    expect_errno(
        "BUS_CREATOR_INFO attach 1 << 20",
        a.bus_creator_info(1 << 20),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(0, 0);
    c.set_flags(2);
    expect_errno(
        "BUS_CREATOR_INFO flag 2",
        a.info_raw(req, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = info_cmd(0, 0);
    c.set_flags(FLAG_NEGOTIATE);
    expect_ok("BUS_CREATOR_INFO negotiation", a.info_raw(req, &mut c))?;
    ensure_eq!(c.flags(), 0, "negotiated BUS_CREATOR_INFO flags");
    // ATTACH_ANY is accepted; the bus was made without an owner mask, so
    // only MAKE_NAME comes back.
    let r = expect_ok(
        "BUS_CREATOR_INFO with attach ~0",
        a.bus_creator_info(ATTACH_ANY),
    )?;
    let recs = take_records(&a, &r, "BUS_CREATOR_INFO with attach ~0")?;
    ensure_eq!(recs[0].items.len(), 1, "items with attach ~0");
    // The id field is ignored.
    let r = expect_ok(
        "BUS_CREATOR_INFO with an id",
        a.info_raw(req, &mut info_cmd(NO_SUCH_ID, 0)),
    )?;
    take_records(&a, &r, "BUS_CREATOR_INFO with an id")?;
    Ok(())
}

fn list_ids(c: &Connection, flags: u64, what: &str) -> Result<Vec<(u64, u64)>, String> {
    let r = expect_ok(what, c.list(flags))?;
    if r.size == 0 {
        ensure_eq!(r.offset, c.pool_size(), "{what}: offset of an empty LIST");
        expect_ok(
            &format!("{what}: FREE of the empty marker"),
            c.free(r.offset),
        )?;
        return Ok(Vec::new());
    }
    let recs = take_records(c, &r, what)?;
    let mut v = Vec::new();
    for rec in recs {
        ensure_eq!(rec.size, 24, "{what}: size of the record of {}", rec.id);
        ensure!(
            rec.items.is_empty(),
            "{what}: record of {} has items",
            rec.id
        );
        v.push((rec.id, rec.flags));
    }
    v.sort();
    Ok(v)
}

/// LIST_UNIQUE: one bare 24-byte record per ordinary connection of the bus;
/// gone connections disappear; without LIST_UNIQUE (and without names)
/// the result is the empty marker (names.md 8).
pub fn list(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let c = ctx.hello()?;
    let d = ctx.hello()?;
    let mut want = vec![
        (a.id(), 0),
        (b.id(), HELLO_ACCEPT_FD),
        (c.id(), 0),
        (d.id(), 0),
    ];
    ensure_eq!(
        list_ids(&a, LIST_UNIQUE, "LIST_UNIQUE")?,
        want.clone(),
        "LIST_UNIQUE"
    );
    ensure_eq!(
        list_ids(
            &b,
            LIST_UNIQUE | LIST_NAMES | LIST_ACTIVATORS | LIST_QUEUED,
            "LIST all"
        )?,
        want.clone(),
        "LIST with every flag"
    );
    expect_ok("close c", c.close())?;
    expect_ok("BYEBYE d", d.byebye())?;
    want.retain(|(id, _)| *id == a.id() || *id == b.id());
    ensure_eq!(
        list_ids(&a, LIST_UNIQUE, "LIST_UNIQUE after close")?,
        want,
        "LIST_UNIQUE after close and BYEBYE"
    );
    ensure_eq!(
        list_ids(&a, 0, "LIST flags 0")?,
        vec![],
        "LIST without flags"
    );
    ensure_eq!(
        list_ids(&a, LIST_NAMES, "LIST_NAMES")?,
        vec![],
        "LIST_NAMES without names"
    );
    // Another bus is not listed.
    let other = ctx.new_bus(0)?;
    let e = ctx.hello_on(&other.endpoint())?;
    ensure_eq!(
        list_ids(&e, LIST_UNIQUE, "LIST on another bus")?,
        vec![(e.id(), 0)],
        "LIST on another bus"
    );
    Ok(())
}

/// LIST errors: unknown flags and any item but NEGOTIATE are EINVAL;
/// negotiation writes back 0xf.
pub fn list_errors(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let mut c = CmdBuf::list(16);
    expect_errno("LIST flag 16", a.list_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::list(LIST_UNIQUE);
    c.push_u64(ITEM_ID, 1);
    expect_errno("LIST with an ID item", a.list_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::list(LIST_UNIQUE);
    c.set_size(39);
    expect_errno("LIST size 39", a.list_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::list(FLAG_NEGOTIATE);
    expect_ok("LIST negotiation", a.list_raw(&mut c))?;
    ensure_eq!(c.flags(), 0xf, "negotiated LIST flags");
    Ok(())
}

/// UPDATE: attach masks are sanitised (~0 accepted, unknown bits EINVAL,
/// nothing applied on failure); NAME and POLICY_ACCESS on an ordinary
/// connection are EOPNOTSUPP; flags and items are checked.
pub fn update(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    expect_ok("empty UPDATE", b.update(None, None))?;
    expect_ok("UPDATE send mask ~0", b.update(Some(ATTACH_ANY), None))?;
    expect_ok("UPDATE both masks", b.update(Some(0), Some(ATTACH_ANY)))?;
    expect_ok(
        "UPDATE recv mask TIMESTAMP",
        b.update(None, Some(ATTACH_TIMESTAMP)),
    )?;
    expect_errno(
        "UPDATE recv mask 1 << 14",
        b.update(None, Some(1 << 14)),
        Errno::EINVAL,
    )?;
    expect_errno(
        "UPDATE send mask 1 << 50",
        b.update(Some(1 << 50), None),
        Errno::EINVAL,
    )?;
    expect_errno(
        "UPDATE recv 0 with a bad send mask",
        b.update(Some(1 << 50), Some(0)),
        Errno::EINVAL,
    )?;
    // The failed UPDATEs changed nothing: TIMESTAMP is still attached.
    send(&a, &msg(b.id(), 1, b"x"), "SEND")?;
    let r = util::recv(&b, "message after failed UPDATEs")?;
    ensure!(
        util::parse(&r, "message")?.timestamp().is_some(),
        "a failed UPDATE changed attach_flags_recv"
    );
    expect_ok("FREE", r.free())?;
    let req = uapi::KDBUS_CMD_UPDATE;
    let mut c = CmdBuf::cmd(0);
    c.push_str(ITEM_NAME, "org.example.X");
    expect_errno(
        "UPDATE with NAME on an ordinary connection",
        b.ioctl(req, &mut c),
        Errno::EOPNOTSUPP,
    )?;
    let mut c = CmdBuf::cmd(0);
    c.push_u64s(
        ITEM_POLICY_ACCESS,
        &[
            uapi::KDBUS_POLICY_ACCESS_WORLD as u64,
            uapi::KDBUS_POLICY_TALK as u64,
            0,
        ],
    );
    expect_errno(
        "UPDATE with POLICY_ACCESS on an ordinary connection",
        b.ioctl(req, &mut c),
        Errno::EOPNOTSUPP,
    )?;
    let mut c = CmdBuf::cmd(1);
    expect_errno("UPDATE flag 1", b.ioctl(req, &mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::cmd(0);
    c.push_item(ITEM_ATTACH_FLAGS_RECV, &[0; 4]);
    expect_errno(
        "UPDATE with a 4-byte mask",
        b.ioctl(req, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::cmd(0);
    c.push_u64(ITEM_ATTACH_FLAGS_RECV, 0);
    c.push_u64(ITEM_ATTACH_FLAGS_RECV, 0);
    expect_errno(
        "UPDATE with two ATTACH_FLAGS_RECV",
        b.ioctl(req, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::cmd(0);
    c.push_u64(ITEM_ID, 0);
    expect_errno(
        "UPDATE with an ID item",
        b.ioctl(req, &mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::cmd(FLAG_NEGOTIATE);
    let off = c.push_negotiate(&[ITEM_ATTACH_FLAGS_SEND, ITEM_ID, ITEM_NAME]);
    expect_ok("UPDATE negotiation", b.ioctl(req, &mut c))?;
    ensure_eq!(c.flags(), 0, "negotiated UPDATE flags");
    ensure_eq!(
        c.negotiate_entries(off, 3),
        vec![ITEM_ATTACH_FLAGS_SEND, 0, ITEM_NAME],
        "negotiated UPDATE items"
    );
    // Still TIMESTAMP after all that.
    send(&a, &msg(b.id(), 2, b"x"), "SEND")?;
    let r = util::recv(&b, "message after UPDATE errors")?;
    ensure!(
        util::parse(&r, "message")?.timestamp().is_some(),
        "attach_flags_recv changed"
    );
    expect_ok("FREE", r.free())
}
