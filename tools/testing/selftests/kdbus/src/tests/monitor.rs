//! Monitors (connection.md 1): they receive a copy of every message on the
//! bus and the bus's ID_ADD / ID_REMOVE notifications, and stay invisible.
//! Until the match database exists, monitors are the only receivers of
//! broadcast notifications (Documentation/architecture.md).

use std::os::fd::AsRawFd;

use kdbus::consts::*;
use kdbus::{uapi, Connection};

use super::util::{self, msg, send};
use crate::check::TestResult;
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const HELLO_MONITOR: u64 = uapi::KDBUS_HELLO_MONITOR as u64;
const MSG_SIGNAL: u64 = uapi::KDBUS_MSG_SIGNAL as u64;

/// Receives the next message at `mon` and checks it is an ID_ADD or
/// ID_REMOVE notification about `id` with HELLO `flags`.
fn expect_id_notification(
    mon: &Connection,
    ty: u64,
    id: u64,
    flags: u64,
    what: &str,
) -> TestResult {
    let r = util::recv(mon, what)?;
    let m = util::parse(&r, what)?;
    ensure_eq!(
        (m.src_id, m.dst_id, m.payload_type, m.flags),
        (0, u64::MAX, 0, MSG_SIGNAL),
        "{what}: src/dst/payload_type/flags of a broadcast notification"
    );
    let item = m.items.first().ok_or(format!("{what}: no item"))?;
    ensure_eq!(
        (item.ty, item.size),
        (ty, 32),
        "{what}: notification item type and size"
    );
    let p = item.payload;
    let got_id = u64::from_ne_bytes(p[0..8].try_into().unwrap());
    let got_flags = u64::from_ne_bytes(p[8..16].try_into().unwrap());
    ensure_eq!(
        (got_id, got_flags),
        (id, flags),
        "{what}: id and HELLO flags"
    );
    ensure!(
        m.timestamp().is_some(),
        "{what}: notifications always carry a TIMESTAMP"
    );
    r.free().map_err(|e| format!("{what}: FREE: {e}"))?;
    Ok(())
}

/// A monitor sees ID_ADD when a peer says HELLO, a copy of a unicast
/// between two peers, and ID_REMOVE when the peer goes; its own HELLO and
/// BYEBYE generate nothing.
pub fn sees_traffic(ctx: &Ctx) -> TestResult {
    let mon = util::monitor(ctx)?;
    util::expect_empty(&mon, "monitor after its own HELLO (no ID_ADD for monitors)")?;
    let a = ctx.hello()?;
    expect_id_notification(&mon, ITEM_ID_ADD, a.id(), 0, "ID_ADD of a")?;
    let b = util::hello(ctx, uapi::KDBUS_HELLO_ACCEPT_FD as u64, 0)?;
    expect_id_notification(
        &mon,
        ITEM_ID_ADD,
        b.id(),
        uapi::KDBUS_HELLO_ACCEPT_FD as u64,
        "ID_ADD of b",
    )?;

    send(&a, &msg(b.id(), 7, b"watched"), "SEND a -> b")?;
    let data = util::recv_data(&mon, a.id(), 7, "the monitor's copy")?;
    ensure_eq!(data, b"watched".to_vec(), "payload of the monitor's copy");
    let data = util::recv_data(&b, a.id(), 7, "b's message")?;
    ensure_eq!(data, b"watched".to_vec(), "payload at b");

    let b_id = b.id();
    drop(b);
    expect_id_notification(
        &mon,
        ITEM_ID_REMOVE,
        b_id,
        uapi::KDBUS_HELLO_ACCEPT_FD as u64,
        "ID_REMOVE of b",
    )?;
    util::expect_empty(&mon, "monitor after ID_REMOVE")?;
    Ok(())
}

/// Monitors cannot be addressed, and a monitor cannot send or say BYEBYE.
pub fn not_addressable(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let mon = util::monitor(ctx)?;
    util::send_err(
        &a,
        &msg(mon.id(), 1, b"x"),
        kdbus::Errno::ENXIO,
        "SEND to a monitor",
    )?;
    util::send_err(
        &mon,
        &msg(a.id(), 1, b"x"),
        kdbus::Errno::EOPNOTSUPP,
        "SEND by a monitor",
    )?;
    match mon.byebye() {
        Err(kdbus::Errno::EOPNOTSUPP) => {}
        other => {
            return Err(format!(
                "BYEBYE of a monitor: {other:?}, expected EOPNOTSUPP"
            ))
        }
    }
    ensure_eq!(
        mon.hello_reply().flags & HELLO_MONITOR,
        HELLO_MONITOR,
        "monitor flag echoed"
    );
    Ok(())
}

/// A monitor without KDBUS_HELLO_ACCEPT_FD gets its copy of a message with
/// FDs with -1 in the FDS item and no new descriptors in its process; the
/// ordinary receiver (with ACCEPT_FD) gets real ones (message.md 10.5,
/// recommended behaviour).
pub fn fds_no_accept(ctx: &Ctx) -> TestResult {
    let mon = util::monitor(ctx)?;
    ensure_eq!(
        mon.hello_reply().flags & uapi::KDBUS_HELLO_ACCEPT_FD as u64,
        0,
        "monitor without ACCEPT_FD"
    );
    let a = ctx.hello()?;
    let b = util::hello(ctx, uapi::KDBUS_HELLO_ACCEPT_FD as u64, 0)?;
    // The ID_ADD notifications of a and b.
    while let Ok(r) = mon.recv(0, 0) {
        r.free().map_err(|e| format!("FREE: {e}"))?;
    }
    let ev = util::eventfd()?;
    let (_rd, wr) = util::pipe()?;
    let sent = [ev.as_raw_fd(), wr.as_raw_fd()];
    send(&a, &msg(b.id(), 9, b"fds").fds(&sent), "SEND with 2 FDs")?;

    let before = util::open_fd_count()?;
    let r = util::recv(&mon, "the monitor's copy")?;
    let m = util::parse(&r, "the monitor's copy")?;
    ensure_eq!((m.src_id, m.cookie), (a.id(), 9), "the monitor's copy");
    let fds = m.fds().ok_or("no FDS item in the monitor's copy")?;
    let after = util::open_fd_count()?;
    util::close_fds(&fds);
    r.free().map_err(|e| format!("FREE: {e}"))?;
    ensure_eq!(
        fds,
        vec![-1, -1],
        "FDS entries at a monitor without ACCEPT_FD"
    );
    ensure_eq!(
        after,
        before,
        "open descriptors of the monitor's process after RECV"
    );

    let r = util::recv(&b, "the receiver's message")?;
    let m = util::parse(&r, "the receiver's message")?;
    let fds = m.fds().ok_or("no FDS item at the receiver")?;
    r.free().map_err(|e| format!("FREE: {e}"))?;
    ensure_eq!(fds.len(), 2, "FDS entries at the receiver");
    for (&n, &orig) in fds.iter().zip(sent.iter()) {
        ensure!(
            n >= 0 && util::fd_is_open(n),
            "receiver fd {n} not installed"
        );
        ensure_eq!(
            util::file_id(n)?,
            util::file_id(orig)?,
            "file of the received fd {n}"
        );
    }
    util::close_fds(&fds);
    Ok(())
}
