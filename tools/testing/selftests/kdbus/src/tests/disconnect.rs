//! Disconnecting with messages in flight: BYEBYE with a queue, process
//! death with pending calls, the pool after BYEBYE (connection.md 9).

use std::time::Duration;

use kdbus::consts::*;
use kdbus::Errno;

use super::util::{self, call, msg, send, send_err};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::ensure_eq;

/// BYEBYE with queued messages is EBUSY and changes nothing; once the
/// queue is empty (received, not necessarily freed) it succeeds and the
/// connection is gone for senders.
pub fn byebye_busy(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &msg(b.id(), 1, b"queued"), "SEND")?;
    expect_errno("BYEBYE with a queued message", b.byebye(), Errno::EBUSY)?;
    send(
        &a,
        &msg(b.id(), 2, b"still"),
        "SEND after the refused BYEBYE",
    )?;
    let r1 = util::recv(&b, "first")?;
    expect_errno("BYEBYE with one message left", b.byebye(), Errno::EBUSY)?;
    let p = util::recv_flags(&b, RECV_PEEK, 0, "PEEK")?;
    expect_errno("BYEBYE with a peeked message", b.byebye(), Errno::EBUSY)?;
    expect_ok("FREE of the peeked slice", p.free())?;
    let r2 = util::recv(&b, "second")?;
    expect_ok("BYEBYE with an empty queue", b.byebye())?;
    send_err(
        &a,
        &msg(b.id(), 3, b"late"),
        Errno::ENXIO,
        "SEND after BYEBYE",
    )?;
    // The pool stays readable until close.
    let m = util::parse(&r1, "first message after BYEBYE")?;
    ensure_eq!(m.cookie, 1, "first message readable after BYEBYE");
    let m = util::parse(&r2, "second message after BYEBYE")?;
    ensure_eq!(
        m.data().map_err(|e| e.to_string())?,
        b"still".to_vec(),
        "second payload after BYEBYE"
    );
    expect_errno("FREE after BYEBYE", r1.free(), Errno::ECONNRESET)?;
    expect_errno(
        "RECV after BYEBYE",
        b.recv(0, 0).map(|_| ()),
        Errno::ECONNRESET,
    )
}

/// A peer process that dies (SIGKILL) with a call of ours queued: the
/// caller gets REPLY_DEAD, the ID is gone (ENXIO).
pub fn process_death(ctx: &Ctx) -> TestResult {
    let (rd, wr) = expect_ok("pipe", nix::unistd::pipe())?;
    // SAFETY: the test process is single-threaded here.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            let id = ctx.hello().map(|c| {
                let id = c.id();
                std::mem::forget(c);
                id
            });
            let _ = nix::unistd::write(&wr, &id.unwrap_or(0).to_ne_bytes());
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    std::mem::drop(wr);
    let mut buf = [0u8; 8];
    let n = nix::unistd::read(&rd, &mut buf).unwrap_or(0);
    let kill = || {
        let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(child, None);
    };
    let peer = u64::from_ne_bytes(buf);
    if n != 8 || peer == 0 {
        kill();
        return Err("the child could not connect".into());
    }
    let a = ctx.hello()?;
    let r = (|| {
        send(&a, &call(peer, 31, 10_000), "call to the child")?;
        send(&a, &msg(peer, 32, b"plain"), "plain message to the child")
    })();
    kill();
    r?;
    util::expect_readable(&a, 5000, "REPLY_DEAD after the child died")?;
    util::recv_reply_notification(&a, 31, ITEM_REPLY_DEAD, "REPLY_DEAD of a killed callee")?;
    send_err(
        &a,
        &msg(peer, 33, b"x"),
        Errno::ENXIO,
        "SEND to the dead process's connection",
    )?;
    expect_errno(
        "CONN_INFO of the dead connection",
        a.conn_info(peer, 0),
        Errno::ENXIO,
    )?;
    util::expect_empty(&a, "no duplicate notification")
}

/// A caller that says BYEBYE drops its trackers silently: the callee can
/// still receive the call (with the dead ID), its reply fails.
pub fn caller_byebye(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let aid = a.id();
    send(&a, &call(b.id(), 41, 5000), "call")?;
    expect_ok("BYEBYE of the caller", a.byebye())?;
    let r = util::recv(&b, "call of a departed caller")?;
    ensure_eq!(util::parse(&r, "call")?.src_id, aid, "src_id of the call");
    expect_ok("FREE", r.free())?;
    match b.send(&util::reply(aid, 41, 1), 0) {
        Err(Errno::ENXIO) | Err(Errno::EBADSLT) => Ok(()),
        Ok(_) => Err("reply to a departed caller succeeded".into()),
        Err(e) => Err(format!(
            "reply to a departed caller: expected ENXIO or EBADSLT, got {e:?}"
        )),
    }
}

/// A process killed while blocked in a synchronous call: its tracker
/// goes with it; the callee's late reply fails (ENXIO, EBADSLT or
/// ECONNRESET) and the ID is gone.
pub fn sync_caller_killed(ctx: &Ctx) -> TestResult {
    let b = ctx.hello()?;
    let bid = b.id();
    let (rd, wr) = expect_ok("pipe", nix::unistd::pipe())?;
    // SAFETY: the test process is single-threaded here.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            if let Ok(c) = ctx.hello() {
                let _ = nix::unistd::write(&wr, &c.id().to_ne_bytes());
                let _ = c.send_sync(&call(bid, 51, 20_000));
            }
            // SAFETY: leave the child without running destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    std::mem::drop(wr);
    let mut buf = [0u8; 8];
    let n = nix::unistd::read(&rd, &mut buf).unwrap_or(0);
    let caller = u64::from_ne_bytes(buf);
    let waited = util::expect_readable(&b, 5000, "the child's call");
    std::thread::sleep(Duration::from_millis(50));
    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    if n != 8 {
        return Err("the child could not connect".into());
    }
    waited?;
    let r = util::recv(&b, "call of the killed process")?;
    ensure_eq!(
        util::parse(&r, "call")?.src_id,
        caller,
        "src_id of the call"
    );
    expect_ok("FREE", r.free())?;
    match b.send(&util::reply(caller, 51, 1), 0) {
        Err(Errno::ENXIO) | Err(Errno::EBADSLT) | Err(Errno::ECONNRESET) => {}
        Ok(_) => return Err("reply to a killed synchronous caller succeeded".into()),
        Err(e) => return Err(format!("reply to a killed caller: unexpected {e:?}")),
    }
    send_err(
        &b,
        &msg(caller, 52, b"x"),
        Errno::ENXIO,
        "SEND to the killed caller",
    )
}
