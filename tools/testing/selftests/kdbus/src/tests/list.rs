//! KDBUS_CMD_LIST with names (names.md 8) and CONN_INFO by name with
//! OWNED_NAME items (connection.md 6.1, metadata.md 4): the exact record
//! layout, every combination of UNIQUE/NAMES/QUEUED/ACTIVATORS against a
//! model, monitors never listed, the empty-result marker, the current
//! owner by name (activators included) and OWNED_NAME items.

use std::path::Path;

use kdbus::consts::*;
use kdbus::{align8, Connection, Errno, InfoRecord};

use super::util::{self, acquire};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

const PRIMARY: u64 = NAME_PRIMARY;
const ACQUIRED: u64 = NAME_ACQUIRED;
const QUEUE: u64 = NAME_QUEUE;
const IN_QUEUE: u64 = NAME_IN_QUEUE;

/// LIST with `flags`: checks the result is an aligned slice inside the
/// pool whose record sizes add up, FREEs it and returns the records (the
/// empty marker for nothing: offset = pool size, list_size 0).
fn list(c: &Connection, flags: u64, what: &str) -> Result<Vec<InfoRecord>, String> {
    let r = expect_ok(&format!("{what}: LIST {flags:#x}"), c.list(flags))?;
    if r.size == 0 {
        ensure_eq!(r.offset, c.pool_size(), "{what}: offset of an empty LIST");
        return Ok(Vec::new());
    }
    ensure!(
        r.offset.is_multiple_of(8)
            && r.size.is_multiple_of(8)
            && r.offset + r.size <= c.pool_size(),
        "{what}: LIST result {{offset {:#x}, size {:#x}}}",
        r.offset,
        r.size
    );
    let recs = c.info_records(&r).map_err(|e| format!("{what}: {e}"))?;
    let total: u64 = recs.iter().map(|x| align8(x.size as usize) as u64).sum();
    ensure_eq!(total, r.size, "{what}: record sizes vs list_size");
    expect_ok(&format!("{what}: FREE"), c.free(r.offset))?;
    Ok(recs)
}

/// An activator for `name` with `attach_send`.
fn activator_send(ep: &Path, name: &str, attach_send: u64) -> Result<Connection, String> {
    let fd = kdbus::open_endpoint(ep).map_err(|e| format!("open: {e}"))?;
    let mut cmd = Connection::hello_cmd(HELLO_ACTIVATOR, attach_send, 0, POOL_SIZE);
    cmd.push_str(ITEM_NAME, name);
    expect_ok(
        &format!("HELLO of an activator for {name}"),
        Connection::from_hello(fd, &mut cmd),
    )
}

/// Exact layout (names.md 8): a name record is `kdbus_info {24 +
/// ALIGN8(16 + 8 + L + 1), id, HELLO flags}` plus one OWNED_NAME item of
/// size 24 + L + 1 with the record's flags; a bare record is 24 bytes; a
/// connection's records come in creation order.
pub fn layout(ctx: &Ctx) -> TestResult {
    let a = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let b = ctx.hello()?;
    let long = format!("org.{}", "y".repeat(251));
    let names = [
        "org.example.Longer",
        "a.b",
        "org.example.Q1234",
        long.as_str(),
    ];
    acquire(
        &a,
        names[0],
        NAME_ALLOW_REPLACEMENT,
        NAME_ALLOW_REPLACEMENT | PRIMARY | ACQUIRED,
        "a",
    )?;
    acquire(&a, names[1], QUEUE, QUEUE | PRIMARY | ACQUIRED, "a")?;
    acquire(&b, names[2], 0, PRIMARY | ACQUIRED, "b")?;
    acquire(&a, names[2], QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "a queues")?;
    acquire(&a, names[3], 0, PRIMARY | ACQUIRED, "a long")?;
    let recs = list(&b, LIST_NAMES | LIST_QUEUED, "layout")?;
    let mine: Vec<&InfoRecord> = recs.iter().filter(|r| r.id == a.id()).collect();
    let want = [
        (NAME_ALLOW_REPLACEMENT | PRIMARY, names[0]),
        (QUEUE | PRIMARY, names[1]),
        (QUEUE | IN_QUEUE, names[2]),
        (PRIMARY, names[3]),
    ];
    ensure_eq!(mine.len(), want.len(), "a's records");
    for (r, (flags, name)) in mine.iter().zip(want) {
        let l = name.len() as u64;
        let what = format!("record of {}", &name[..name.len().min(24)]);
        ensure_eq!(
            r.size,
            24 + align8((16 + 8 + l + 1) as usize) as u64,
            "{what}: size"
        );
        ensure_eq!(
            r.flags,
            HELLO_ACCEPT_FD,
            "{what}: kdbus_info.flags (HELLO flags)"
        );
        ensure_eq!(r.items.len(), 1, "{what}: items");
        let it = &r.items[0];
        ensure_eq!(
            (it.ty, it.size, it.offset),
            (ITEM_OWNED_NAME, 24 + l + 1, 24),
            "{what}: item"
        );
        let on = r.owned_name().map_err(|e| e.to_string())?.unwrap();
        ensure_eq!(
            (on.flags, on.name.as_str()),
            (flags, name),
            "{what}: OWNED_NAME"
        );
    }
    // Records of one connection are contiguous.
    let pos: Vec<usize> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.id == a.id())
        .map(|(i, _)| i)
        .collect();
    ensure!(
        pos.windows(2).all(|w| w[1] == w[0] + 1),
        "a's records not contiguous: {pos:?}"
    );
    let bare = list(&b, LIST_UNIQUE, "bare")?;
    for r in &bare {
        ensure_eq!((r.size, r.items.len()), (24, 0), "bare record of {}", r.id);
    }
    let mut ids: Vec<(u64, u64)> = bare.iter().map(|r| (r.id, r.flags)).collect();
    ids.sort_unstable();
    ensure_eq!(
        ids,
        vec![(a.id(), HELLO_ACCEPT_FD), (b.id(), 0)],
        "LIST_UNIQUE"
    );
    Ok(())
}

/// A connection of the LIST model: id, HELLO flags, records (flags, name)
/// in creation order.
type ModelConn = (u64, u64, Vec<(u64, &'static str)>);
/// One LIST record: id, HELLO flags, its OWNED_NAME (flags, name) if any.
type ListEntry = (u64, u64, Option<(u64, String)>);

/// Every combination of LIST_UNIQUE / NAMES / QUEUED / ACTIVATORS against
/// the algorithm of names.md 8, with an idle connection, owners, queued
/// waiters, activators in and out of charge and a monitor (never listed).
pub fn kinds(ctx: &Ctx) -> TestResult {
    let idle = ctx.hello()?;
    let p = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let q = ctx.hello()?;
    acquire(&p, "org.example.N1", 0, PRIMARY | ACQUIRED, "p N1")?;
    acquire(
        &q,
        "org.example.N1",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "q waits N1",
    )?;
    acquire(&q, "org.example.N3", 0, PRIMARY | ACQUIRED, "q N3")?;
    let act = util::activator(ctx, "org.example.N2")?;
    let act2 = util::activator(ctx, "org.example.N1")?;
    let mon = util::monitor(ctx)?;
    let af = HELLO_ACTIVATOR | HELLO_ACCEPT_FD;
    // (id, HELLO flags, records in creation order)
    let model: Vec<ModelConn> = vec![
        (idle.id(), 0, vec![]),
        (p.id(), HELLO_ACCEPT_FD, vec![(PRIMARY, "org.example.N1")]),
        (
            q.id(),
            0,
            vec![
                (QUEUE | IN_QUEUE, "org.example.N1"),
                (PRIMARY, "org.example.N3"),
            ],
        ),
        (
            act.id(),
            af,
            vec![(NAME_ACTIVATOR | PRIMARY, "org.example.N2")],
        ),
        (
            act2.id(),
            af,
            vec![(NAME_ACTIVATOR | IN_QUEUE, "org.example.N1")],
        ),
    ];
    for flags in 0..16u64 {
        let mut want: Vec<ListEntry> = Vec::new();
        for (id, hf, recs) in &model {
            let mut listed = false;
            if flags & (LIST_NAMES | LIST_QUEUED | LIST_ACTIVATORS) != 0 {
                for (rf, name) in recs {
                    let considered = if rf & NAME_ACTIVATOR != 0 {
                        flags & LIST_ACTIVATORS != 0
                    } else if rf & IN_QUEUE != 0 {
                        flags & LIST_QUEUED != 0
                    } else {
                        flags & LIST_NAMES != 0
                    };
                    if considered {
                        want.push((*id, *hf, Some((*rf, name.to_string()))));
                        listed = true;
                    }
                }
            }
            if !listed && flags & LIST_UNIQUE != 0 {
                want.push((*id, *hf, None));
            }
        }
        want.sort();
        for (who, c) in [("ordinary", &idle), ("activator", &act), ("monitor", &mon)] {
            let what = format!("LIST {flags:#x} by the {who}");
            let recs = list(c, flags, &what)?;
            let mut got = Vec::new();
            for r in &recs {
                ensure!(r.id != mon.id(), "{what}: the monitor is listed");
                let on = r.owned_name().map_err(|e| format!("{what}: {e}"))?;
                ensure!(
                    r.items.len() == usize::from(on.is_some()),
                    "{what}: record of {} has items {:?}",
                    r.id,
                    r.items
                );
                got.push((r.id, r.flags, on.map(|o| (o.flags, o.name))));
            }
            got.sort();
            ensure_eq!(&got, &want, "{what}: records (id, HELLO flags, OWNED_NAME)");
        }
    }
    Ok(())
}

/// Nothing to list: offset = pool size and list_size = 0, nothing to FREE.
pub fn empty(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let _mon = util::monitor(ctx)?;
    for flags in [
        0,
        LIST_NAMES,
        LIST_QUEUED,
        LIST_ACTIVATORS,
        LIST_NAMES | LIST_QUEUED | LIST_ACTIVATORS,
    ] {
        let r = expect_ok(&format!("LIST {flags:#x}"), a.list(flags))?;
        ensure_eq!(
            (r.offset, r.size),
            (a.pool_size(), 0),
            "LIST {flags:#x} with nothing to list: (offset, list_size)"
        );
    }
    acquire(&a, "org.example.X", 0, PRIMARY | ACQUIRED, "a")?;
    let r = expect_ok("LIST QUEUED", a.list(LIST_QUEUED))?;
    ensure_eq!(
        (r.offset, r.size),
        (a.pool_size(), 0),
        "LIST QUEUED without waiters"
    );
    // A monitor alone on a bus lists nothing either.
    let bus = ctx.new_bus(0)?;
    let m = expect_ok(
        "monitor on a fresh bus",
        Connection::hello(bus.endpoint(), HELLO_MONITOR, 0, 0, POOL_SIZE),
    )?;
    let r = expect_ok("LIST UNIQUE by a lone monitor", m.list(LIST_UNIQUE))?;
    ensure_eq!(
        (r.offset, r.size),
        (m.pool_size(), 0),
        "LIST by a lone monitor"
    );
    Ok(())
}

/// CONN_INFO by name returns the current owner (primary, else the
/// activator), never a queued waiter; a non-zero id must equal the owner
/// (ESRCH otherwise); the record is `{24, owner id, owner's HELLO flags}`.
pub fn conn_info_name(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let p = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let q = ctx.hello()?;
    const N: &str = "org.example.Info";
    const M: &str = "org.example.Activated";
    expect_errno(
        "CONN_INFO of an unknown name",
        a.conn_info_name(N, 0, 0).map(drop),
        Errno::ESRCH,
    )?;
    acquire(&p, N, 0, PRIMARY | ACQUIRED, "p")?;
    acquire(&q, N, QUEUE, QUEUE | IN_QUEUE | ACQUIRED, "q")?;
    let info = |id: u64, name: &str| -> Result<(u64, u64, u64), String> {
        let r = expect_ok(
            &format!("CONN_INFO {name} id {id}"),
            a.conn_info_name(name, id, 0),
        )?;
        let recs = a.info_records(&r).map_err(|e| e.to_string())?;
        expect_ok("FREE", a.free(r.offset))?;
        ensure_eq!(recs.len(), 1, "records");
        ensure_eq!(r.size, recs[0].size, "info_size");
        Ok((recs[0].size, recs[0].id, recs[0].flags))
    };
    ensure_eq!(
        info(0, N)?,
        (24, p.id(), HELLO_ACCEPT_FD),
        "CONN_INFO by name"
    );
    ensure_eq!(
        info(p.id(), N)?,
        (24, p.id(), HELLO_ACCEPT_FD),
        "with the owner's id"
    );
    expect_errno(
        "CONN_INFO by name with the waiter's id",
        a.conn_info_name(N, q.id(), 0).map(drop),
        Errno::ESRCH,
    )?;
    let act = util::activator(ctx, M)?;
    ensure_eq!(
        info(0, M)?,
        (24, act.id(), HELLO_ACTIVATOR | HELLO_ACCEPT_FD),
        "CONN_INFO of an activator's name"
    );
    ensure_eq!(info(act.id(), M)?.1, act.id(), "activator with its id");
    acquire(&q, M, 0, PRIMARY | ACQUIRED, "q implements M")?;
    ensure_eq!(info(0, M)?.1, q.id(), "CONN_INFO after the take-over");
    expect_errno(
        "CONN_INFO by name with the activator's id after the take-over",
        a.conn_info_name(M, act.id(), 0).map(drop),
        Errno::ESRCH,
    )?;
    drop(p);
    ensure_eq!(info(0, N)?.1, q.id(), "CONN_INFO after the owner left");
    Ok(())
}

/// CONN_INFO with KDBUS_ATTACH_NAMES: one OWNED_NAME item per name the
/// target owns as primary (or holds as activator in charge), in record
/// order, with its flags; queued names are not included; nothing unless
/// the target's attach_flags_send has NAMES (no implicit items here).
pub fn owned_names(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let t = expect_ok(
        "HELLO with attach_flags_send NAMES",
        Connection::hello(ctx.endpoint(), 0, ATTACH_NAMES, 0, POOL_SIZE),
    )?;
    let u = ctx.hello()?; // send mask 0
    let o = ctx.hello()?;
    acquire(&o, "org.example.Other", 0, PRIMARY | ACQUIRED, "o")?;
    acquire(
        &t,
        "org.example.T2",
        NAME_ALLOW_REPLACEMENT,
        NAME_ALLOW_REPLACEMENT | PRIMARY | ACQUIRED,
        "t",
    )?;
    acquire(
        &t,
        "org.example.Other",
        QUEUE,
        QUEUE | IN_QUEUE | ACQUIRED,
        "t waits",
    )?;
    acquire(&t, "org.example.T1", QUEUE, QUEUE | PRIMARY | ACQUIRED, "t")?;
    acquire(&u, "org.example.U", 0, PRIMARY | ACQUIRED, "u")?;
    let names = |target: u64, attach: u64, what: &str| -> Result<Vec<(u64, String)>, String> {
        let r = expect_ok(what, a.conn_info(target, attach))?;
        let recs = a.info_records(&r).map_err(|e| format!("{what}: {e}"))?;
        expect_ok("FREE", a.free(r.offset))?;
        ensure_eq!(recs.len(), 1, "{what}: records");
        for it in &recs[0].items {
            ensure_eq!(it.ty, ITEM_OWNED_NAME, "{what}: item type");
        }
        Ok(recs[0]
            .owned_names()
            .map_err(|e| format!("{what}: {e}"))?
            .into_iter()
            .map(|n| (n.flags, n.name))
            .collect())
    };
    ensure_eq!(
        names(t.id(), ATTACH_NAMES, "CONN_INFO t NAMES")?,
        vec![
            (
                NAME_ALLOW_REPLACEMENT | PRIMARY,
                "org.example.T2".to_string()
            ),
            (QUEUE | PRIMARY, "org.example.T1".to_string()),
        ],
        "t's OWNED_NAME items"
    );
    ensure_eq!(
        names(t.id(), 0, "CONN_INFO t without NAMES")?,
        vec![],
        "attach 0"
    );
    ensure_eq!(
        names(u.id(), ATTACH_NAMES, "CONN_INFO u NAMES")?,
        vec![],
        "target with send mask 0"
    );
    let act = activator_send(&ctx.endpoint(), "org.example.A", ATTACH_NAMES)?;
    ensure_eq!(
        names(act.id(), ATTACH_NAMES, "CONN_INFO of the activator")?,
        vec![(NAME_ACTIVATOR | PRIMARY, "org.example.A".to_string())],
        "activator in charge"
    );
    acquire(&u, "org.example.A", 0, PRIMARY | ACQUIRED, "u takes A")?;
    ensure_eq!(
        names(
            act.id(),
            ATTACH_NAMES,
            "CONN_INFO of the activator after the take-over"
        )?,
        vec![],
        "activator not in charge"
    );
    expect_ok("o releases", o.name_release("org.example.Other"))?;
    ensure_eq!(
        names(t.id(), ATTACH_NAMES, "CONN_INFO t after the hand-over")?,
        vec![
            (
                NAME_ALLOW_REPLACEMENT | PRIMARY,
                "org.example.T2".to_string()
            ),
            (QUEUE | PRIMARY, "org.example.Other".to_string()),
            (QUEUE | PRIMARY, "org.example.T1".to_string()),
        ],
        "t's names in record order"
    );
    Ok(())
}

/// A LIST or CONN_INFO result that does not fit into the caller's pool is
/// EXFULL (names.md 8, connection.md 6.1); it fits into a larger one.
pub fn exfull(ctx: &Ctx) -> TestResult {
    let a = expect_ok(
        "HELLO with attach_flags_send NAMES",
        Connection::hello(ctx.endpoint(), 0, ATTACH_NAMES, 0, POOL_SIZE),
    )?;
    let small = util::hello_clean(ctx, 0, 0, 4096)?;
    for k in 0..150 {
        acquire(
            &a,
            &format!("org.example.Long.Name{k:04}"),
            0,
            PRIMARY | ACQUIRED,
            "a",
        )?;
    }
    expect_errno(
        "LIST NAMES into a 4 KiB pool",
        small.list(LIST_NAMES).map(drop),
        Errno::EXFULL,
    )?;
    expect_errno(
        "CONN_INFO with 150 OWNED_NAME items into a 4 KiB pool",
        small.conn_info(a.id(), ATTACH_NAMES).map(drop),
        Errno::EXFULL,
    )?;
    ensure_eq!(list(&a, LIST_NAMES, "LIST NAMES")?.len(), 150, "records");
    let r = expect_ok("LIST UNIQUE into the small pool", small.list(LIST_UNIQUE))?;
    ensure_eq!(r.size, 48, "two bare records");
    expect_ok("FREE", small.free(r.offset))
}
