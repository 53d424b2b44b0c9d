//! KDBUS_ITEM_CANCEL_FD of synchronous calls (message.md 3, 8.2 step 4)
//! with every kind of pollable file: ttys and O_RDWR pipes (whose `->poll`
//! calls `poll_wait()` twice), plain pipes, eventfds, sockets, timerfds,
//! signalfds, kdbus connections (another one's and the caller's own), and
//! a FUSE file whose `->poll` blocks.
//!
//! For each kind: the call is answered normally while the file is not
//! readable, times out at its deadline, and is aborted with ECANCELED when
//! the file becomes readable (written to from the test's main thread while
//! the caller thread waits). The kernel log must stay clean throughout.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{monotonic_ns, Connection, Errno, MsgBuilder};

use super::fuse::{FuseMount, EV_POLL_ANSWERED, EV_POLL_HELD};
use super::reply::{check_sync_reply, take_call};
use super::sys::{self, KmsgWatch, OwnerProc};
use super::util::{self, call, msg, reply, send, send_err};
use crate::check::{diag, errno_name, expect_errno, expect_ok, skip, TestResult};
use crate::ctx::{require_root, Ctx};
use crate::{ensure, ensure_eq};

/// A kind of cancel file: the descriptor, how to make it readable, and how
/// to make it unreadable again.
struct Kind<'a> {
    what: &'a str,
    fd: RawFd,
    fire: &'a dyn Fn() -> TestResult,
    drain: &'a dyn Fn() -> TestResult,
}

/// Waits up to `ms` for `fd` to poll readable.
fn wait_fd_readable(fd: RawFd, ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if sys::readable_now(fd) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The harness itself: `fire` makes the file readable and `drain` undoes
/// it (otherwise the ECANCELED check below would prove nothing).
fn self_check(k: &Kind) -> TestResult {
    let what = k.what;
    ensure!(
        !sys::readable_now(k.fd),
        "{what}: the cancel file is readable before the test"
    );
    (k.fire)()?;
    ensure!(
        wait_fd_readable(k.fd, 2000),
        "{what}: the cancel file did not become readable (test harness)"
    );
    (k.drain)()?;
    ensure!(
        !sys::readable_now(k.fd),
        "{what}: the cancel file is still readable after draining (test harness)"
    );
    Ok(())
}

/// The three phases for one kind: answered, timed out, cancelled.
fn check_kind(a: &Connection, b: &Connection, k: &Kind) -> TestResult {
    let what = k.what;
    self_check(k)?;

    // The file is not readable: the call is answered normally.
    let fd = k.fd;
    let m = call(b.id(), 1, 5000);
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_with(&m, SEND_SYNC_REPLY, Some(fd)));
        let answered = (|| -> TestResult {
            util::expect_readable(b, 5000, &format!("{what}: callee"))?;
            take_call(b, a.id(), 1)?;
            send(b, &reply(a.id(), 1, 2), &format!("{what}: reply"))?;
            Ok(())
        })();
        let r = t.join().map_err(|_| "caller thread panicked")?;
        answered?;
        let r = expect_ok(
            &format!("{what}: synchronous call with a CANCEL_FD that stays unreadable, answered"),
            r,
        )?;
        check_sync_reply(a, &r, b.id(), 1, &format!("{what}: reply"))
    })?;

    // Not readable, no answer: ETIMEDOUT at the deadline.
    let deadline = util::deadline_in(300);
    let m = MsgBuilder::new(b.id())
        .cookie(3)
        .call(deadline)
        .vec(b"call");
    let r = a.send_with(&m, SEND_SYNC_REPLY, Some(k.fd));
    let now = monotonic_ns();
    expect_errno(
        &format!("{what}: unanswered synchronous call with an unreadable CANCEL_FD"),
        r,
        Errno::ETIMEDOUT,
    )?;
    ensure!(
        now >= deadline,
        "{what}: ETIMEDOUT {} ns before the deadline",
        deadline - now
    );
    take_call(b, a.id(), 3)?;

    // The file becomes readable while the caller waits: ECANCELED.
    let m = call(b.id(), 4, 5000);
    let start = Instant::now();
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_with(&m, SEND_SYNC_REPLY, Some(fd)));
        let fired = (|| -> TestResult {
            util::expect_readable(b, 5000, &format!("{what}: callee"))?;
            std::thread::sleep(Duration::from_millis(100));
            (k.fire)()
        })();
        let r = t.join().map_err(|_| "caller thread panicked")?;
        fired?;
        expect_errno(
            &format!("{what}: synchronous call whose CANCEL_FD became readable"),
            r,
            Errno::ECANCELED,
        )
    })?;
    ensure!(
        start.elapsed() < Duration::from_millis(4000),
        "{what}: ECANCELED only after {:?}",
        start.elapsed()
    );
    take_call(b, a.id(), 4)?;
    send_err(
        b,
        &reply(a.id(), 4, 5),
        Errno::EBADSLT,
        &format!("{what}: reply to the cancelled call"),
    )?;
    (k.drain)()?;
    util::expect_empty(b, &format!("{what}: callee at the end"))
}

/// Runs the phases for one kind on fresh connections, with the kernel log
/// watched.
fn run_kind(ctx: &Ctx, k: &Kind) -> TestResult {
    let watch = KmsgWatch::start()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let r = check_kind(&a, &b, k);
    drop((a, b));
    r?;
    watch.check(k.what)
}

fn write_fd(fd: RawFd, data: &[u8], what: &str) -> TestResult {
    // SAFETY: the descriptor is open for the duration of the call.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    ensure_eq!(
        nix::unistd::write(b, data),
        Ok(data.len()),
        "write to {what}"
    );
    Ok(())
}

fn drained(fd: RawFd) -> TestResult {
    sys::drain_fd(fd);
    Ok(())
}

/// A pty slave (tty: `->poll` waits on the read and the write queue).
pub fn pty(ctx: &Ctx) -> TestResult {
    let (master, slave, _mnt) = sys::open_pty(&ctx.unique_suffix())?;
    let (m, s) = (master.as_raw_fd(), slave.as_raw_fd());
    run_kind(
        ctx,
        &Kind {
            what: "pty slave",
            fd: s,
            fire: &|| write_fd(m, b"x\n", "the pty master"),
            drain: &|| {
                // The line discipline delivers asynchronously; echo goes
                // back to the master.
                std::thread::sleep(Duration::from_millis(20));
                sys::drain_fd(s);
                sys::drain_fd(m);
                Ok(())
            },
        },
    )
}

/// `/dev/console` (a tty); input is injected with TIOCSTI.
pub fn console(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let con = match sys::open_raw(
        "/dev/console",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
    ) {
        Ok(f) => f,
        Err(e) => return skip(format!("open /dev/console: {}", errno_name(e))),
    };
    let fd = con.as_raw_fd();
    // Stale input from before the test.
    sys::drain_fd(fd);
    let inject = || -> TestResult {
        for c in b"x\n" {
            // SAFETY: TIOCSTI reads one byte at the pointer.
            let r = unsafe { libc::ioctl(fd, libc::TIOCSTI, c as *const u8) };
            if r != 0 {
                return skip(format!(
                    "TIOCSTI on /dev/console: {}",
                    errno_name(Errno::last())
                ));
            }
        }
        Ok(())
    };
    run_kind(
        ctx,
        &Kind {
            what: "/dev/console",
            fd,
            fire: &inject,
            drain: &|| {
                std::thread::sleep(Duration::from_millis(20));
                drained(fd)
            },
        },
    )
}

/// A pipe re-opened O_RDWR through /proc/self/fd (`->poll` waits on both
/// the reader and the writer queue).
pub fn pipe_rdwr(ctx: &Ctx) -> TestResult {
    let (rd, wr) = util::pipe()?;
    let path = format!("/proc/self/fd/{}", rd.as_raw_fd());
    let rw = sys::open_raw(&path, libc::O_RDWR | libc::O_NONBLOCK)
        .map_err(|e| format!("open {path} O_RDWR: {}", errno_name(e)))?;
    let (fd, w) = (rw.as_raw_fd(), wr.as_raw_fd());
    run_kind(
        ctx,
        &Kind {
            what: "pipe re-opened O_RDWR",
            fd,
            fire: &|| write_fd(w, b"x", "the pipe"),
            drain: &|| drained(fd),
        },
    )
}

/// The read end of a plain pipe.
pub fn pipe(ctx: &Ctx) -> TestResult {
    let (rd, wr) = util::pipe()?;
    let (fd, w) = (rd.as_raw_fd(), wr.as_raw_fd());
    run_kind(
        ctx,
        &Kind {
            what: "pipe read end",
            fd,
            fire: &|| write_fd(w, b"x", "the pipe"),
            drain: &|| drained(fd),
        },
    )
}

/// An eventfd.
pub fn eventfd(ctx: &Ctx) -> TestResult {
    let ev = util::eventfd()?;
    let fd = ev.as_raw_fd();
    run_kind(
        ctx,
        &Kind {
            what: "eventfd",
            fd,
            fire: &|| write_fd(fd, &1u64.to_ne_bytes(), "the eventfd"),
            drain: &|| drained(fd),
        },
    )
}

/// An AF_UNIX stream socket (its peer writes).
pub fn socket(ctx: &Ctx) -> TestResult {
    let (s1, s2) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    s1.set_nonblocking(true).map_err(|e| e.to_string())?;
    let (fd, peer) = (s1.as_raw_fd(), s2.as_raw_fd());
    run_kind(
        ctx,
        &Kind {
            what: "AF_UNIX socket",
            fd,
            fire: &|| write_fd(peer, b"x", "the socket peer"),
            drain: &|| drained(fd),
        },
    )
}

/// A timerfd (armed to expire 1 ms later).
pub fn timerfd(ctx: &Ctx) -> TestResult {
    let t = sys::timerfd()?;
    let fd = t.as_raw_fd();
    run_kind(
        ctx,
        &Kind {
            what: "timerfd",
            fd,
            fire: &|| sys::timerfd_arm(&t, 1_000_000),
            drain: &|| drained(fd),
        },
    )
}

/// A signalfd for SIGUSR2, blocked in every thread; the signal is sent to
/// the process.
pub fn signalfd(ctx: &Ctx) -> TestResult {
    // Before any thread exists, so that all inherit the mask.
    let sfd = sys::signalfd_blocked(libc::SIGUSR2)?;
    let fd = sfd.as_raw_fd();
    run_kind(
        ctx,
        &Kind {
            what: "signalfd",
            fd,
            fire: &|| {
                // SAFETY: plain syscall; SIGUSR2 is blocked everywhere.
                let r = unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
                ensure!(r == 0, "kill SIGUSR2: {}", errno_name(Errno::last()));
                Ok(())
            },
            drain: &|| drained(fd),
        },
    )
}

/// Receives and FREEs everything queued at `c`.
fn drain_conn(c: &Connection) -> TestResult {
    while let Ok(r) = c.recv(0, 0) {
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// Another connection's kdbus descriptor (readable once a message is
/// queued for it).
pub fn kdbus_peer(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let d = ctx.hello()?;
    let cid = c.id();
    run_kind(
        ctx,
        &Kind {
            what: "another connection's kdbus fd",
            fd: c.as_raw_fd(),
            fire: &|| send(&d, &msg(cid, 7, b"wake"), "SEND to the cancel connection").map(drop),
            drain: &|| drain_conn(&c),
        },
    )
}

/// The caller's own connection descriptor: an answered call returns the
/// reply (the reply is not queued, so the file stays unreadable) without a
/// lockdep report; a message queued for the caller cancels.
pub fn kdbus_own(ctx: &Ctx) -> TestResult {
    let watch = KmsgWatch::start()?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    let aid = a.id();
    let r = check_kind(
        &a,
        &b,
        &Kind {
            what: "the caller's own connection fd",
            fd: a.as_raw_fd(),
            fire: &|| send(&c, &msg(aid, 7, b"wake"), "SEND to the caller").map(drop),
            drain: &|| drain_conn(&a),
        },
    );
    drop((a, b, c));
    r?;
    watch.check("own connection as CANCEL_FD")
}

/// A FUSE file whose `->poll` never returns from the `hold_from`-th POLL
/// request on. With the synchronous caller blocked in that poll, another
/// connection can still send to the caller and the bus owner's close (bus
/// teardown) completes within a few seconds; once the FUSE server is gone,
/// the caller's SEND returns ECONNRESET.
fn fuse_poll(ctx: &Ctx, hold_from: u32) -> TestResult {
    require_root(ctx)?;
    let watch = KmsgWatch::start()?;
    let bus = ctx.new_bus(0)?;
    let dir = bus.dir();
    let ep = bus.endpoint();
    let owner = OwnerProc::spawn(bus)?;
    let mut fuse = FuseMount::start(&ctx.unique_suffix(), hold_from)?;
    let cancel: OwnedFd = fuse.open_file()?;
    let a = ctx.hello_on(&ep)?;
    let b = ctx.hello_on(&ep)?;
    let c = ctx.hello_on(&ep)?;
    let aid = a.id();
    let cfd = cancel.as_raw_fd();
    let m = call(b.id(), 1, 15_000);
    let mut ordered = false;
    let mut close_hung = false;
    let (res, caller) = std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let am = (&a, &m);
        s.spawn(move || {
            let _ = tx.send(am.0.send_with(am.1, SEND_SYNC_REPLY, Some(cfd)));
        });
        let res = (|| -> TestResult {
            // The module may poll the CANCEL_FD before or after queueing
            // the call: wait for either.
            let end = Instant::now() + Duration::from_secs(5);
            while !util::wait_readable(&b, 10) && !fuse.wait_event(EV_POLL_HELD, 0) {
                ensure!(
                    Instant::now() < end,
                    "within 5 s the call was not queued at the callee and no POLL of the CANCEL_FD arrived (server events {:?})",
                    fuse.events()
                );
            }
            if !fuse.wait_event(EV_POLL_HELD, 3000) {
                diag(format!(
                    "note: no FUSE_POLL request held within 3 s (server events: {:?}); the caller is not blocked in the poll",
                    fuse.events()
                ));
            }
            if hold_from > 1 {
                ensure!(
                    fuse.events().contains(EV_POLL_ANSWERED as char),
                    "the CANCEL_FD was never polled (server events {:?})",
                    fuse.events()
                );
            }
            // Another connection sends to the blocked caller.
            let (tx2, rx2) = mpsc::channel();
            let cref = &c;
            s.spawn(move || {
                let _ = tx2.send(cref.send(&msg(aid, 5, b"hello"), 0));
            });
            match rx2.recv_timeout(Duration::from_secs(5)) {
                Ok(r) => {
                    expect_ok("SEND from another connection to the blocked caller", r)?;
                }
                Err(_) => {
                    return Err(
                        "SEND from another connection to the caller blocked in the CANCEL_FD's poll did not return within 5 s"
                            .into(),
                    )
                }
            }
            // The bus owner closes its handle.
            ordered = true;
            match owner.close_bus(5000)? {
                Some(ms) => diag(format!("bus owner close() took {ms} ms")),
                None => {
                    close_hung = true;
                    return Err(
                        "the bus owner's close() (bus teardown) did not return within 5 s while the caller sits in the CANCEL_FD's poll"
                            .into(),
                    );
                }
            }
            ensure!(
                sys::wait_absent(&dir, 2000),
                "bus directory {} still exists after the owner's close",
                dir.display()
            );
            Ok(())
        })();
        // Unblock everything: the FUSE server goes (its pending POLL
        // fails), and the bus is torn down if it was not yet.
        let aborted = fuse.abort();
        if !ordered {
            let _ = owner.close_bus(10_000);
        }
        let caller = rx.recv_timeout(Duration::from_secs(10));
        if close_hung {
            match owner.wait_closed(10_000) {
                Some(ms) => diag(format!("the hung close() returned {ms} ms after it started, once the FUSE server was gone")),
                None => diag("the hung close() did not return within 10 s of the FUSE abort"),
            }
        }
        if res.is_err() {
            diag(format!(
                "the synchronous caller after the FUSE abort: {caller:?}"
            ));
        }
        (res.and(aborted), caller)
    });
    res?;
    match caller {
        Ok(r) => expect_errno(
            "the synchronous caller after the bus teardown and the FUSE abort",
            r,
            Errno::ECONNRESET,
        )?,
        Err(_) => {
            return Err(
                "the synchronous caller did not return within 10 s of the FUSE abort".into(),
            )
        }
    }
    drop((a, b, c, cancel));
    owner.finish(10_000)?;
    drop(fuse);
    watch.check("FUSE CANCEL_FD")
}

/// FUSE CANCEL_FD, the first POLL request already blocks.
pub fn fuse_poll_first(ctx: &Ctx) -> TestResult {
    fuse_poll(ctx, 1)
}

/// FUSE CANCEL_FD, the first POLL is answered (not readable) and the next
/// ones block.
pub fn fuse_poll_later(ctx: &Ctx) -> TestResult {
    fuse_poll(ctx, 2)
}
