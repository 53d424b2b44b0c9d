//! File descriptor passing with KDBUS_ITEM_FDS (message.md 4, 7.3, 10.5).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};

use kdbus::consts::*;
use kdbus::{open_endpoint, Connection, Errno, MsgBuilder};

use super::util::{self, msg, send, send_err};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

fn dup(fd: RawFd) -> Result<OwnedFd, String> {
    expect_ok(
        "dup",
        nix::fcntl::fcntl(
            // SAFETY: fd is open for the duration of the call.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(0),
        ),
    )
    // SAFETY: F_DUPFD returns a fresh descriptor we own.
    .map(|n| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(n) })
}

/// Receives one message and returns its FDS entries (the caller closes
/// them).
fn recv_fds(c: &Connection, flags: u64, what: &str) -> Result<(Vec<i32>, u64), String> {
    let r = util::recv_flags(c, flags, 0, what)?;
    let m = util::parse(&r, what)?;
    let fds = m.fds().ok_or(format!("{what}: no FDS item"))?;
    let rf = r.info().return_flags;
    if flags & RECV_PEEK == 0 {
        expect_ok("FREE", r.free())?;
    }
    Ok((fds, rf))
}

/// FDs arrive as new close-on-exec descriptors of the same files, numbers
/// patched into the FDS item; the sender keeps its own.
pub fn pass(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let (rd, wr) = util::pipe()?;
    let ev = util::eventfd()?;
    let opath = expect_ok(
        "open / O_PATH",
        nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        ),
    )?;
    let sent = [wr.as_raw_fd(), ev.as_raw_fd(), opath.as_raw_fd()];
    let m = msg(b.id(), 1, b"with fds").fds(&sent);
    send(&a, &m, "SEND with 3 FDs")?;
    let r = util::recv(&b, "message with FDs")?;
    let got = util::parse(&r, "message with FDs")?;
    ensure_eq!(
        got.item_types(),
        vec![ITEM_PAYLOAD_OFF, ITEM_FDS],
        "item types"
    );
    ensure_eq!(got.items[1].size, 16 + 12, "FDS item size");
    util::check_layout(
        &got,
        &r.info(),
        &m.delivered_layout(&[]),
        "message with FDs",
    )?;
    ensure_eq!(
        r.info().return_flags,
        0,
        "msg.return_flags (no INCOMPLETE_FDS)"
    );
    let fds = got.fds().unwrap_or_default();
    expect_ok("FREE", r.free())?;
    ensure_eq!(fds.len(), 3, "number of received FDs");
    for (i, (&n, &orig)) in fds.iter().zip(sent.iter()).enumerate() {
        ensure!(
            n >= 0 && util::fd_is_open(n),
            "received fd {i} ({n}) is not open"
        );
        ensure!(
            !sent.contains(&n),
            "received fd {i} reuses a sender's number {n}"
        );
        ensure!(util::fd_cloexec(n)?, "received fd {n} lacks FD_CLOEXEC");
        ensure_eq!(
            util::file_id(n)?,
            util::file_id(orig)?,
            "file of received fd {i}"
        );
    }
    // The received write end feeds the original pipe.
    let w = nix::unistd::write(
        // SAFETY: fds[0] is open (checked above).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fds[0]) },
        b"ping",
    );
    ensure_eq!(w, Ok(4), "write through the received pipe end");
    let mut buf = [0u8; 8];
    ensure_eq!(
        util::try_read(&rd, &mut buf)?,
        Some(4),
        "read from the original pipe"
    );
    ensure_eq!(&buf[..4], b"ping", "data through the passed pipe");
    util::close_fds(&fds);
    for fd in sent {
        ensure!(util::fd_is_open(fd), "sender's fd {fd} was closed by SEND");
    }
    Ok(())
}

/// A receiver without ACCEPT_FD refuses messages with FDs: ECOMM to the
/// sender, nothing queued.
pub fn no_accept(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let ev = util::eventfd()?;
    send_err(
        &a,
        &msg(b.id(), 1, b"x").fds(&[ev.as_raw_fd()]),
        Errno::ECOMM,
        "FD to a receiver without ACCEPT_FD",
    )?;
    util::expect_empty(&b, "after ECOMM")?;
    send(&a, &msg(b.id(), 2, b"plain"), "plain SEND afterwards")?;
    ensure_eq!(
        util::recv_data(&b, a.id(), 2, "plain")?,
        b"plain".to_vec(),
        "payload"
    );
    Ok(())
}

/// 16 FDs per message are fine, 17 are EMFILE.
pub fn limit(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ev = util::eventfd()?;
    let dups: Vec<OwnedFd> = (0..17)
        .map(|_| dup(ev.as_raw_fd()))
        .collect::<Result<_, _>>()?;
    let raw: Vec<RawFd> = dups.iter().map(|d| d.as_raw_fd()).collect();
    send_err(&a, &msg(b.id(), 1, b"x").fds(&raw), Errno::EMFILE, "17 FDs")?;
    util::expect_empty(&b, "after 17 FDs")?;
    send(
        &a,
        &msg(b.id(), 2, b"x").fds(&raw[..16]),
        "SEND with 16 FDs",
    )?;
    let (fds, rf) = recv_fds(&b, 0, "16 FDs")?;
    ensure_eq!(rf, 0, "return_flags");
    ensure_eq!(fds.len(), 16, "number of received FDs");
    let id = util::file_id(ev.as_raw_fd())?;
    for &n in &fds {
        ensure!(n >= 0, "received fd {n}");
        ensure_eq!(util::file_id(n)?, id, "file of received fd {n}");
    }
    let mut uniq = fds.clone();
    uniq.sort();
    uniq.dedup();
    ensure_eq!(uniq.len(), 16, "distinct received fd numbers");
    util::close_fds(&fds);
    Ok(())
}

/// Invalid descriptors: EBADF; nothing queued.
pub fn bad_fd(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ev = util::eventfd()?;
    let closed = {
        let d = dup(ev.as_raw_fd())?;
        d.as_raw_fd()
    };
    for (fds, what) in [
        (vec![-1], "fd -1"),
        (vec![closed], "a closed fd"),
        (vec![ev.as_raw_fd(), 100_000], "a good and an unknown fd"),
        (vec![i32::MIN], "fd INT_MIN"),
    ] {
        send_err(&a, &msg(b.id(), 1, b"x").fds(&fds), Errno::EBADF, what)?;
    }
    util::expect_empty(&b, "after bad FDs")
}

/// kdbus handles (connections, control, bus owner, unset endpoint handles)
/// and AF_UNIX sockets cannot be passed: EOPNOTSUPP.
pub fn refused_types(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let control = ctx.control()?;
    let unset = expect_ok("open endpoint", open_endpoint(ctx.endpoint()))?;
    let (s1, _s2) = UnixStream::pair().map_err(|e| e.to_string())?;
    let (d1, _d2) = UnixDatagram::pair().map_err(|e| e.to_string())?;
    let cases: Vec<(RawFd, &str)> = vec![
        (a.as_raw_fd(), "the sender's own connection"),
        (b.as_raw_fd(), "the receiver's connection"),
        (control.as_raw_fd(), "an unset control handle"),
        (ctx.bus.as_raw_fd(), "the bus owner handle"),
        (unset.as_raw_fd(), "an unset endpoint handle"),
        (s1.as_raw_fd(), "an AF_UNIX stream socket"),
        (d1.as_raw_fd(), "an AF_UNIX datagram socket"),
    ];
    let ev = util::eventfd()?;
    for (fd, what) in cases {
        send_err(
            &a,
            &msg(b.id(), 1, b"x").fds(&[fd]),
            Errno::EOPNOTSUPP,
            what,
        )?;
        send_err(
            &a,
            &msg(b.id(), 1, b"x").fds(&[ev.as_raw_fd(), fd]),
            Errno::EOPNOTSUPP,
            &format!("{what} after an eventfd"),
        )?;
    }
    util::expect_empty(&b, "after refused FD types")
}

/// PEEK installs no descriptors (entries -1, no new fds in the process);
/// the following RECV does (message.md 10.5, recommended behaviour).
pub fn peek(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ev = util::eventfd()?;
    send(
        &a,
        &msg(b.id(), 1, b"x").fds(&[ev.as_raw_fd(), ev.as_raw_fd()]),
        "SEND with 2 FDs",
    )?;
    let before = util::open_fd_count()?;
    let (fds, _) = recv_fds(&b, RECV_PEEK, "PEEK")?;
    let after = util::open_fd_count()?;
    ensure_eq!(fds, vec![-1, -1], "FDS entries after PEEK");
    ensure_eq!(after, before, "open descriptors after PEEK");
    let (fds, rf) = recv_fds(&b, 0, "RECV after PEEK")?;
    ensure_eq!(rf, 0, "return_flags");
    ensure!(
        fds.iter().all(|&n| n >= 0),
        "FDS entries after RECV: {fds:?}"
    );
    ensure_eq!(
        util::open_fd_count()?,
        before + 2,
        "open descriptors after RECV"
    );
    util::close_fds(&fds);
    Ok(())
}

/// The kernel holds in-flight files until the message is received or
/// discarded: DROP, and the receiver's close, release them.
pub fn in_flight_release(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    // DROP.
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let (rd, wr) = util::pipe()?;
    send(
        &a,
        &msg(b.id(), 1, b"x").fds(&[wr.as_raw_fd()]),
        "SEND the write end",
    )?;
    std::mem::drop(wr);
    ensure!(
        !util::wait_pipe_eof(&rd, 0)?,
        "pipe at EOF while its write end is in flight"
    );
    util::recv_flags(&b, RECV_DROP, 0, "DROP")?;
    ensure!(
        util::wait_pipe_eof(&rd, 2000)?,
        "pipe not at EOF after DROP"
    );
    // Receiver closes with the message queued.
    let c = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let (rd, wr) = util::pipe()?;
    send(
        &a,
        &msg(c.id(), 2, b"x").fds(&[wr.as_raw_fd()]),
        "SEND the write end",
    )?;
    std::mem::drop(wr);
    expect_ok("close the receiver", c.close())?;
    ensure!(
        util::wait_pipe_eof(&rd, 2000)?,
        "pipe not at EOF after the receiver closed"
    );
    // Sender closes: the receiver still gets a working descriptor.
    let d = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let e = ctx.hello()?;
    let (rd, wr) = util::pipe()?;
    send(
        &e,
        &msg(d.id(), 3, b"x").fds(&[wr.as_raw_fd()]),
        "SEND the write end",
    )?;
    std::mem::drop(wr);
    expect_ok("close the sender", e.close())?;
    let (fds, _) = recv_fds(&d, 0, "FD of a closed sender")?;
    let w = nix::unistd::write(
        // SAFETY: the received descriptor is open if the kernel is right;
        // write fails with EBADF otherwise.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fds[0]) },
        b"z",
    );
    ensure_eq!(w, Ok(1), "write through the FD of a closed sender");
    util::close_fds(&fds);
    ensure!(
        util::wait_pipe_eof(&rd, 2000)?,
        "pipe not at EOF after closing the received end"
    );
    Ok(())
}

/// If the receiver cannot get another descriptor number, the entry is -1
/// and INCOMPLETE_FDS is set; the message is still delivered (message.md
/// 10.5).
pub fn incomplete(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ev = util::eventfd()?;
    send(
        &a,
        &msg(b.id(), 1, b"x").fds(&[ev.as_raw_fd(), ev.as_raw_fd()]),
        "SEND with 2 FDs",
    )?;
    // Allow exactly one more descriptor: the limit is the second free
    // number.
    let free: Vec<i32> = (0..4096)
        .filter(|&n| !util::fd_is_open(n))
        .take(2)
        .collect();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer.
    ensure_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut old) },
        0,
        "getrlimit"
    );
    let lim = libc::rlimit {
        rlim_cur: free[1] as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: valid in pointer.
    ensure_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) },
        0,
        "setrlimit"
    );
    let res = recv_fds(&b, 0, "RECV with room for one fd");
    // SAFETY: restores the old limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) };
    let (fds, rf) = res?;
    ensure_eq!(rf, RECV_RETURN_INCOMPLETE_FDS, "msg.return_flags");
    ensure_eq!(fds.len(), 2, "FDS entries");
    ensure_eq!(fds[0], free[0], "first entry: the one free number");
    ensure_eq!(fds[1], -1, "second entry: no number left");
    util::close_fds(&fds);
    Ok(())
}

/// A synchronous caller gets the FDs of the reply installed when it wakes
/// up; one that does not accept FDs makes the replier's SEND fail with
/// ECOMM and its own with EREMOTEIO (message.md 8.2).
pub fn sync_reply(ctx: &Ctx) -> TestResult {
    let callee = ctx.hello()?;
    let ev = util::eventfd()?;
    for accept in [true, false] {
        let caller = util::hello(ctx, if accept { HELLO_ACCEPT_FD } else { 0 }, 0)?;
        let call = util::call(callee.id(), 10, 5000);
        std::thread::scope(|s| -> TestResult {
            let t = s.spawn(|| caller.send_sync(&call));
            util::expect_readable(&callee, 5000, "callee")?;
            let r = util::recv(&callee, "call")?;
            expect_ok("FREE", r.free())?;
            let rep = MsgBuilder::new(caller.id())
                .cookie_reply(10)
                .vec(b"reply")
                .fds(&[ev.as_raw_fd()]);
            let sent = callee.send(&rep, 0);
            let res = t.join().map_err(|_| "caller thread panicked")?;
            if accept {
                expect_ok("reply with an FD", sent)?;
                let reply = expect_ok("synchronous call", res)?;
                let m = util::parse_at(&caller, &reply.reply, "sync reply")?;
                let fds = m.fds().ok_or("no FDS in the reply")?;
                ensure_eq!(fds.len(), 1, "FDs in the reply");
                ensure!(
                    fds[0] >= 0 && util::fd_is_open(fds[0]),
                    "reply fd {} not installed",
                    fds[0]
                );
                ensure_eq!(
                    util::file_id(fds[0])?,
                    util::file_id(ev.as_raw_fd())?,
                    "file of the reply fd"
                );
                util::close_fds(&fds);
                expect_ok("FREE of the reply", caller.free(reply.reply.offset))?;
            } else {
                expect_errno(
                    "replier's SEND to a caller without ACCEPT_FD",
                    sent,
                    Errno::ECOMM,
                )?;
                expect_errno(
                    "synchronous caller without ACCEPT_FD",
                    res,
                    Errno::EREMOTEIO,
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// An io_uring whose fixed files are the receiver's own connection and the
/// bus owner handle cannot be passed: EOPNOTSUPP, like kdbus handles and
/// AF_UNIX sockets (queued at the receiver it would pin both in a
/// reference cycle: connection, bus and module could never go).
pub fn io_uring(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ring = super::sys::io_uring()?;
    super::sys::io_uring_register_files(&ring, &[b.as_raw_fd(), ctx.bus.as_raw_fd()])?;
    send_err(
        &a,
        &msg(b.id(), 1, b"ring").fds(&[ring.as_raw_fd()]),
        Errno::EOPNOTSUPP,
        "an io_uring holding the receiver's and the bus owner's files",
    )?;
    let ev = util::eventfd()?;
    send_err(
        &a,
        &msg(b.id(), 2, b"ring").fds(&[ev.as_raw_fd(), ring.as_raw_fd()]),
        Errno::EOPNOTSUPP,
        "the io_uring after an eventfd",
    )?;
    util::expect_empty(&b, "after the refused io_uring")?;
    drop(ring);
    Ok(())
}
