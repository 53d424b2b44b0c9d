//! BYEBYE, close and poll (spec connection.md 4, 8, 9; abi.md 11).

use kdbus::{open_endpoint, poll_once, uapi, CmdBuf, Errno, PollFlags};

use super::raw;
use crate::check::{expect_errno, expect_ok, expect_poll, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

fn all_events() -> PollFlags {
    PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI
}

fn err_hup() -> PollFlags {
    PollFlags::POLLERR | PollFlags::POLLHUP
}

/// BYEBYE succeeds once; afterwards every ioctl gets ECONNRESET, the pool
/// stays readable, other connections are unaffected.
pub fn byebye_basic(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let peer = ctx.hello()?;
    let h = *c.hello_reply();
    let before = c
        .pool_bytes(h.offset, 32)
        .ok_or("HELLO slice unreadable")?
        .to_vec();
    expect_ok("BYEBYE", c.byebye())?;
    expect_errno("second BYEBYE", c.byebye(), Errno::ECONNRESET)?;
    expect_errno("FREE after BYEBYE", c.free(h.offset), Errno::ECONNRESET)?;
    let mut upd = CmdBuf::cmd(0);
    expect_errno(
        "UPDATE after BYEBYE",
        c.ioctl(uapi::KDBUS_CMD_UPDATE, &mut upd),
        Errno::ECONNRESET,
    )?;
    let after = c
        .pool_bytes(h.offset, 32)
        .ok_or("HELLO slice unreadable after BYEBYE")?;
    ensure_eq!(after, &before[..], "HELLO slice after BYEBYE");
    expect_ok(
        "FREE of the HELLO slice on an unaffected peer",
        peer.free(peer.hello_reply().offset),
    )?;
    expect_ok("close after BYEBYE", c.close())?;
    let later = ctx.hello()?;
    ensure!(
        later.id() > peer.id(),
        "new connection id {} not above {}",
        later.id(),
        peer.id()
    );
    Ok(())
}

/// Closing a connected descriptor works, with or without BYEBYE first.
pub fn close(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    expect_ok("close of a connected handle", c.close())?;
    let c = ctx.hello()?;
    expect_ok("BYEBYE", c.byebye())?;
    expect_ok("close after BYEBYE", c.close())?;
    let fd = expect_ok("open endpoint", open_endpoint(ctx.endpoint()))?;
    expect_ok("close of an unset endpoint handle", nix::unistd::close(fd))?;
    // The bus still works.
    let c = ctx.hello()?;
    expect_ok("FREE on a new connection", c.free(c.hello_reply().offset))
}

/// An active connection with an empty queue: POLLOUT, no POLLIN.
pub fn poll_active(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let ev = expect_ok("poll", poll_once(&c, all_events(), 0))?;
    expect_poll(
        "poll on an active connection",
        ev,
        PollFlags::POLLOUT,
        PollFlags::POLLIN | err_hup(),
    )?;
    let ev = expect_ok("poll for POLLIN only", poll_once(&c, PollFlags::POLLIN, 0))?;
    expect_poll(
        "poll(POLLIN) on an idle connection",
        ev,
        PollFlags::empty(),
        PollFlags::POLLIN | err_hup(),
    )
}

/// A disconnected connection: POLLERR|POLLHUP.
pub fn poll_disconnected(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    expect_ok("BYEBYE", c.byebye())?;
    let ev = expect_ok("poll", poll_once(&c, all_events(), 0))?;
    expect_poll("poll after BYEBYE", ev, err_hup(), PollFlags::empty())
}

/// Unset endpoint and control handles and the bus-owner handle:
/// POLLERR|POLLHUP.
pub fn poll_unset_handle(ctx: &Ctx) -> TestResult {
    let ep = expect_ok("open endpoint", open_endpoint(ctx.endpoint()))?;
    let ev = expect_ok("poll", poll_once(&ep, all_events(), 0))?;
    expect_poll(
        "poll on an unset endpoint handle",
        ev,
        err_hup(),
        PollFlags::empty(),
    )?;
    let control = ctx.control()?;
    let ev = expect_ok("poll", poll_once(&control, all_events(), 0))?;
    expect_poll(
        "poll on an unset control handle",
        ev,
        err_hup(),
        PollFlags::empty(),
    )?;
    let ev = expect_ok("poll", poll_once(&ctx.bus, all_events(), 0))?;
    expect_poll(
        "poll on the bus-owner handle",
        ev,
        err_hup(),
        PollFlags::empty(),
    )?;
    // Negotiation does not set the handle up either.
    let mut neg = CmdBuf::hello(kdbus::FLAG_NEGOTIATE, 0, 0, crate::ctx::POOL_SIZE);
    expect_ok(
        "HELLO negotiation",
        raw(&ep, uapi::KDBUS_CMD_HELLO, &mut neg),
    )?;
    let ev = expect_ok("poll", poll_once(&ep, all_events(), 0))?;
    expect_poll(
        "poll after a negotiation-only HELLO",
        ev,
        err_hup(),
        PollFlags::empty(),
    )
}
