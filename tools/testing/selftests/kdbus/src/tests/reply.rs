//! Method calls and replies: reply trackers, REPLY_TIMEOUT / REPLY_DEAD
//! notifications, the 128-call limit, synchronous calls with timeouts,
//! cancellation, signals and dying peers (message.md 7.2, 8, 12;
//! connection.md 9.3).

use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use kdbus::consts::*;
use kdbus::{monotonic_ns, Connection, Errno, MsgBuilder, SendReply};

use super::util::{self, call, msg, reply, send, send_err, NO_SUCH_ID};
use crate::check::{errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

/// Receives the call `cookie` from `caller` at `callee` and FREEs it.
pub(super) fn take_call(callee: &Connection, caller: u64, cookie: u64) -> TestResult {
    let r = util::recv(callee, "the call")?;
    let m = util::parse(&r, "the call")?;
    ensure_eq!(m.src_id, caller, "src_id of the call");
    ensure_eq!(m.cookie, cookie, "cookie of the call");
    ensure_eq!(
        m.flags & MSG_EXPECT_REPLY,
        MSG_EXPECT_REPLY,
        "EXPECT_REPLY on the delivered call"
    );
    expect_ok("FREE of the call", r.free())
}

/// Checks the reply of a synchronous call in the caller's pool and FREEs
/// it.
pub(super) fn check_sync_reply(
    caller: &Connection,
    r: &SendReply,
    callee: u64,
    cookie: u64,
    what: &str,
) -> TestResult {
    ensure_eq!(r.return_flags, 0, "{what}: return_flags");
    ensure_eq!(r.reply.return_flags, 0, "{what}: reply.return_flags");
    let m = util::parse_at(caller, &r.reply, what)?;
    ensure_eq!(m.src_id, callee, "{what}: src_id of the reply");
    ensure_eq!(m.cookie_reply(), cookie, "{what}: cookie_reply");
    ensure_eq!(
        m.data().map_err(|e| e.to_string())?,
        b"reply".to_vec(),
        "{what}: reply payload"
    );
    let want = reply(caller.id(), cookie, 0).delivered_layout(&[]);
    util::check_layout(&m, &r.reply, &want, what)?;
    expect_ok(
        &format!("{what}: FREE of the reply"),
        caller.free(r.reply.offset),
    )?;
    expect_errno(
        &format!("{what}: second FREE of the reply"),
        caller.free(r.reply.offset),
        Errno::ENXIO,
    )
}

/// Waits `ms` and then expects no message at `c` (no late or duplicate
/// notification).
fn expect_quiet(c: &Connection, ms: u64, what: &str) -> TestResult {
    ensure!(
        !util::wait_readable(c, ms),
        "{what}: unexpected message at connection {}",
        c.id()
    );
    util::expect_empty(c, what)
}

/// An asynchronous call and its reply; the tracker is gone after the
/// reply (a second reply is EBADSLT).
pub fn basic(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = call(b.id(), 42, 5000);
    send(&a, &c, "SEND of a call")?;
    take_call(&b, a.id(), 42)?;
    send(&b, &reply(a.id(), 42, 99), "SEND of the reply")?;
    let r = util::recv(&a, "the reply")?;
    let m = util::parse(&r, "the reply")?;
    ensure_eq!(m.src_id, b.id(), "src_id of the reply");
    ensure_eq!(m.cookie, 99, "cookie of the reply");
    ensure_eq!(m.cookie_reply(), 42, "cookie_reply of the reply");
    ensure_eq!(m.flags, 0, "flags of the reply");
    ensure_eq!(
        m.data().map_err(|e| e.to_string())?,
        b"reply".to_vec(),
        "reply payload"
    );
    expect_ok("FREE", r.free())?;
    send_err(
        &b,
        &reply(a.id(), 42, 100),
        Errno::EBADSLT,
        "second reply to the same call",
    )?;
    util::expect_empty(&a, "caller after the reply")
}

/// Replies without a matching open call: EBADSLT (message.md 7.2).
pub fn unsolicited(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    send_err(
        &b,
        &reply(a.id(), 12345, 1),
        Errno::EBADSLT,
        "reply to nothing",
    )?;
    send(&a, &msg(b.id(), 7, b"plain"), "plain message")?;
    util::recv_data(&b, a.id(), 7, "plain message")?;
    send_err(
        &b,
        &reply(a.id(), 7, 1),
        Errno::EBADSLT,
        "reply to a message without EXPECT_REPLY",
    )?;
    send(&a, &call(b.id(), 5, 5000), "call to b")?;
    send_err(
        &c,
        &reply(a.id(), 5, 1),
        Errno::EBADSLT,
        "reply from a connection that was not called",
    )?;
    send_err(
        &b,
        &reply(c.id(), 5, 1),
        Errno::EBADSLT,
        "reply sent to the wrong caller",
    )?;
    send_err(
        &b,
        &reply(a.id(), 6, 1),
        Errno::EBADSLT,
        "reply with the wrong cookie",
    )?;
    send_err(
        &a,
        &reply(a.id(), 5, 1),
        Errno::EBADSLT,
        "the caller replying to its own call",
    )?;
    util::expect_empty(&a, "caller after refused replies")?;
    util::expect_empty(&c, "third party after refused replies")?;
    send(&b, &reply(a.id(), 5, 2), "the right reply")?;
    let d = util::recv_data(&a, b.id(), 2, "the right reply")?;
    ensure_eq!(d, b"reply".to_vec(), "payload");
    // A call with cookie 0 is accepted (it just can never be answered).
    send(&a, &call(b.id(), 0, 5000), "call with cookie 0")?;
    take_call(&b, a.id(), 5)?;
    take_call(&b, a.id(), 0)
}

/// REPLY_TIMEOUT: after the deadline the caller gets a 120-byte
/// notification (src 0, payload type 0, cookie_reply = the call's cookie,
/// REPLY_TIMEOUT then TIMESTAMP); a late reply is EBADSLT.
pub fn timeout(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let deadline = util::deadline_in(250);
    send(
        &a,
        &MsgBuilder::new(b.id()).cookie(7).call(deadline),
        "SEND of a call",
    )?;
    if monotonic_ns() < deadline {
        // Only meaningful while the deadline has not passed yet.
        let early = util::wait_readable(&a, 0);
        ensure!(
            !early || monotonic_ns() >= deadline,
            "caller has a message before the deadline"
        );
    }
    util::expect_readable(&a, 5000, "REPLY_TIMEOUT")?;
    ensure!(
        monotonic_ns() >= deadline,
        "notification before the deadline"
    );
    let ts = util::recv_reply_notification(&a, 7, ITEM_REPLY_TIMEOUT, "REPLY_TIMEOUT")?;
    ensure!(
        ts.monotonic_ns >= deadline,
        "REPLY_TIMEOUT timestamp {} before the deadline {deadline}",
        ts.monotonic_ns
    );
    // The notification took a later bus seqnum than the call.
    let r = util::recv(&b, "the call")?;
    let call_ts = util::parse(&r, "the call")?
        .timestamp()
        .ok_or("no TIMESTAMP on the call")?;
    expect_ok("FREE", r.free())?;
    ensure!(
        ts.seqnum > call_ts.seqnum,
        "REPLY_TIMEOUT seqnum {} not above the call's {}",
        ts.seqnum,
        call_ts.seqnum
    );
    send_err(
        &b,
        &reply(a.id(), 7, 1),
        Errno::EBADSLT,
        "reply after the timeout",
    )?;
    expect_quiet(&a, 100, "after REPLY_TIMEOUT")
}

/// A deadline already in the past is accepted and times out at once.
pub fn timeout_past(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(
        &a,
        &MsgBuilder::new(b.id()).cookie(3).call(1),
        "SEND of a call with deadline 1 ns",
    )?;
    util::expect_readable(&a, 3000, "REPLY_TIMEOUT of a past deadline")?;
    util::recv_reply_notification(&a, 3, ITEM_REPLY_TIMEOUT, "REPLY_TIMEOUT")?;
    take_call(&b, a.id(), 3)
}

/// Several pending calls time out in deadline order, not send order.
pub fn timeout_order(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let now = monotonic_ns();
    for (cookie, ms) in [(1u64, 900u64), (2, 100), (3, 500)] {
        send(
            &a,
            &MsgBuilder::new(b.id())
                .cookie(cookie)
                .call(now + ms * 1_000_000),
            "SEND of a call",
        )?;
    }
    for cookie in [2u64, 3, 1] {
        util::expect_readable(&a, 5000, "REPLY_TIMEOUT")?;
        util::recv_reply_notification(
            &a,
            cookie,
            ITEM_REPLY_TIMEOUT,
            &format!("REPLY_TIMEOUT of call {cookie}"),
        )?;
    }
    Ok(())
}

/// A reply removes the tracker: no REPLY_TIMEOUT afterwards.
pub fn reply_cancels_timeout(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let deadline = util::deadline_in(300);
    send(
        &a,
        &MsgBuilder::new(b.id()).cookie(4).call(deadline),
        "SEND of a call",
    )?;
    take_call(&b, a.id(), 4)?;
    let r = b.send(&reply(a.id(), 4, 5), 0);
    if monotonic_ns() >= deadline {
        // Too slow to answer in time; the outcome is then legitimately a
        // timeout. Only check it is one of the two.
        return match r {
            Ok(_) => Ok(()),
            Err(e) => expect_errno("late reply", Err::<(), _>(e), Errno::EBADSLT),
        };
    }
    expect_ok("reply before the deadline", r)?;
    ensure_eq!(
        util::recv_data(&a, b.id(), 5, "reply")?,
        b"reply".to_vec(),
        "payload"
    );
    let wait = (deadline.saturating_sub(monotonic_ns())) / 1_000_000 + 300;
    expect_quiet(&a, wait, "after the deadline of an answered call")
}

/// The callee disconnects with the call queued or received but
/// unanswered: exactly one REPLY_DEAD per call (connection.md 9.3,
/// recommended behaviour).
pub fn dead_on_disconnect(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let a2 = ctx.hello()?;
    // Queued, callee closes.
    let b = ctx.hello()?;
    send(&a, &call(b.id(), 1, 5000), "call 1")?;
    send(&a2, &call(b.id(), 2, 5000), "call 2 from another caller")?;
    expect_ok("close the callee", b.close())?;
    util::expect_readable(&a, 3000, "REPLY_DEAD")?;
    util::recv_reply_notification(&a, 1, ITEM_REPLY_DEAD, "REPLY_DEAD of a queued call")?;
    util::expect_readable(&a2, 3000, "REPLY_DEAD")?;
    util::recv_reply_notification(&a2, 2, ITEM_REPLY_DEAD, "REPLY_DEAD to the second caller")?;
    // Received but unanswered, callee says BYEBYE.
    let c = ctx.hello()?;
    send(&a, &call(c.id(), 3, 5000), "call 3")?;
    take_call(&c, a.id(), 3)?;
    expect_ok("BYEBYE of the callee", c.byebye())?;
    util::expect_readable(&a, 3000, "REPLY_DEAD")?;
    util::recv_reply_notification(&a, 3, ITEM_REPLY_DEAD, "REPLY_DEAD of a received call")?;
    expect_quiet(&a, 200, "no duplicate REPLY_DEAD")?;
    expect_quiet(&a2, 0, "no duplicate REPLY_DEAD at the second caller")
}

/// RECV_DROP of a call: the caller gets REPLY_DEAD, a later reply is
/// EBADSLT.
pub fn dead_on_drop(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &call(b.id(), 8, 5000), "call")?;
    util::recv_flags(&b, RECV_DROP, 0, "DROP of the call")?;
    util::expect_readable(&a, 3000, "REPLY_DEAD")?;
    util::recv_reply_notification(&a, 8, ITEM_REPLY_DEAD, "REPLY_DEAD after DROP")?;
    send_err(
        &b,
        &reply(a.id(), 8, 1),
        Errno::EBADSLT,
        "reply to a dropped call",
    )?;
    expect_quiet(&a, 100, "after REPLY_DEAD")
}

/// The caller disconnects: its trackers go silently; the callee can still
/// receive the call, and its reply fails (ENXIO or EBADSLT).
pub fn caller_gone(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let aid = a.id();
    send(&a, &call(b.id(), 9, 5000), "call")?;
    expect_ok("close the caller", a.close())?;
    take_call(&b, aid, 9)?;
    match b.send(&reply(aid, 9, 1), 0) {
        Err(Errno::ENXIO) | Err(Errno::EBADSLT) => Ok(()),
        other => Err(format!(
            "reply to a closed caller: expected ENXIO or EBADSLT, got {}",
            other
                .map(|_| "success".to_owned())
                .unwrap_or_else(errno_name)
        )),
    }
}

/// At most 128 outstanding calls per caller (EMLINK), whatever the
/// callee; a reply makes room for one more.
pub fn max_pending(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    let deadline = util::deadline_in(60_000);
    for i in 1..=128u64 {
        let to = if i % 2 == 0 { b.id() } else { c.id() };
        send(
            &a,
            &MsgBuilder::new(to).cookie(i).call(deadline),
            &format!("call {i}"),
        )?;
    }
    send_err(
        &a,
        &MsgBuilder::new(b.id()).cookie(129).call(deadline),
        Errno::EMLINK,
        "call 129",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(c.id()).cookie(130).call(deadline),
        Errno::EMLINK,
        "call 129 to another callee",
    )?;
    expect_errno(
        "synchronous call 129",
        a.send_sync(&MsgBuilder::new(c.id()).cookie(131).call(deadline)),
        Errno::EMLINK,
    )?;
    // Plain messages and other callers are not limited.
    send(&a, &MsgBuilder::new(b.id()).cookie(1000), "plain message")?;
    send(
        &b,
        &MsgBuilder::new(c.id()).cookie(1).call(deadline),
        "call from another caller",
    )?;
    // Answer call 2 (at b, the first message in b's queue).
    take_call(&b, a.id(), 2)?;
    send(&b, &reply(a.id(), 2, 1), "reply to call 2")?;
    send(
        &a,
        &MsgBuilder::new(b.id()).cookie(132).call(deadline),
        "call after a reply",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id()).cookie(133).call(deadline),
        Errno::EMLINK,
        "call 129 again",
    )
}

/// A synchronous call: the reply lands in the caller's pool, not its
/// queue, and is returned in `kdbus_cmd_send.reply`.
pub fn sync_basic(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = call(b.id(), 21, 5000);
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_sync(&m));
        util::expect_readable(&b, 5000, "callee")?;
        take_call(&b, a.id(), 21)?;
        send(&b, &reply(a.id(), 21, 22), "reply to the synchronous call")?;
        let r = t.join().map_err(|_| "caller thread panicked")?;
        let r = expect_ok("synchronous call", r)?;
        check_sync_reply(&a, &r, b.id(), 21, "sync reply")
    })?;
    util::expect_empty(&a, "caller queue after a synchronous call")?;
    send_err(
        &b,
        &reply(a.id(), 21, 23),
        Errno::EBADSLT,
        "second reply to the synchronous call",
    )
}

/// A synchronous call to nobody: ENXIO at once; to a deadline in the past:
/// ETIMEDOUT without sending.
pub fn sync_immediate_errors(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    expect_errno(
        "synchronous call to an unknown id",
        a.send_sync(&call(NO_SUCH_ID, 1, 5000)),
        Errno::ENXIO,
    )?;
    expect_errno(
        "synchronous call with a past deadline",
        a.send_sync(&MsgBuilder::new(b.id()).cookie(2).call(1)),
        Errno::ETIMEDOUT,
    )?;
    let past = monotonic_ns() - 1;
    expect_errno(
        "synchronous call with a deadline just passed",
        a.send_sync(&MsgBuilder::new(b.id()).cookie(3).call(past)),
        Errno::ETIMEDOUT,
    )?;
    util::expect_empty(&b, "nothing sent for past deadlines")
}

/// A synchronous call without answer: ETIMEDOUT at the deadline, no
/// REPLY_TIMEOUT notification, a later reply is EBADSLT.
pub fn sync_timeout(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let deadline = util::deadline_in(250);
    let r = a.send_sync(&MsgBuilder::new(b.id()).cookie(5).call(deadline));
    let now = monotonic_ns();
    expect_errno("unanswered synchronous call", r, Errno::ETIMEDOUT)?;
    ensure!(
        now >= deadline,
        "ETIMEDOUT {} ns before the deadline",
        deadline - now
    );
    take_call(&b, a.id(), 5)?;
    send_err(
        &b,
        &reply(a.id(), 5, 1),
        Errno::EBADSLT,
        "reply after the synchronous timeout",
    )?;
    expect_quiet(&a, 200, "no REPLY_TIMEOUT for a synchronous call")
}

/// The callee dies (close) or drops the call while the caller waits:
/// EPIPE, and no REPLY_DEAD notification.
pub fn sync_callee_dead(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    for how in ["close", "drop", "byebye"] {
        let b = ctx.hello()?;
        let m = call(b.id(), 6, 5000);
        std::thread::scope(|s| -> TestResult {
            let t = s.spawn(|| a.send_sync(&m));
            util::expect_readable(&b, 5000, "callee")?;
            std::thread::sleep(Duration::from_millis(50));
            match how {
                "close" => expect_ok("close the callee", b.close())?,
                "drop" => {
                    util::recv_flags(&b, RECV_DROP, 0, "DROP of the call")?;
                }
                _ => {
                    take_call(&b, a.id(), 6)?;
                    expect_ok("BYEBYE of the callee", b.byebye())?;
                }
            }
            let r = t.join().map_err(|_| "caller thread panicked")?;
            expect_errno(&format!("synchronous call, callee {how}"), r, Errno::EPIPE)
        })?;
        expect_quiet(
            &a,
            100,
            &format!("no REPLY_DEAD to a synchronous caller ({how})"),
        )?;
    }
    Ok(())
}

/// CANCEL_FD becoming readable aborts the wait with ECANCELED; the
/// tracker is gone (reply EBADSLT).
pub fn sync_cancel(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let efd = util::eventfd()?;
    let m = call(b.id(), 11, 5000);
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_with(&m, SEND_SYNC_REPLY, Some(efd.as_raw_fd())));
        util::expect_readable(&b, 5000, "callee")?;
        std::thread::sleep(Duration::from_millis(50));
        let one = 1u64.to_ne_bytes();
        ensure_eq!(
            nix::unistd::write(&efd, &one),
            Ok(8),
            "write to the cancel eventfd"
        );
        let r = t.join().map_err(|_| "caller thread panicked")?;
        expect_errno("cancelled synchronous call", r, Errno::ECANCELED)
    })?;
    take_call(&b, a.id(), 11)?;
    send_err(
        &b,
        &reply(a.id(), 11, 1),
        Errno::EBADSLT,
        "reply to a cancelled call",
    )?;
    util::expect_empty(&a, "caller after cancel")
}

/// The caller's own connection is disconnected (BYEBYE from another
/// thread) while it waits: ECONNRESET.
pub fn sync_caller_disconnect(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = call(b.id(), 12, 5000);
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_sync(&m));
        util::expect_readable(&b, 5000, "callee")?;
        std::thread::sleep(Duration::from_millis(50));
        expect_ok("BYEBYE of the waiting caller", a.byebye())?;
        let r = t.join().map_err(|_| "caller thread panicked")?;
        expect_errno(
            "synchronous call whose connection went away",
            r,
            Errno::ECONNRESET,
        )
    })?;
    take_call(&b, a.id(), 12)?;
    match b.send(&reply(a.id(), 12, 1), 0) {
        Err(Errno::ENXIO) | Err(Errno::EBADSLT) | Err(Errno::ECONNRESET) => Ok(()),
        other => Err(format!(
            "reply to a disconnected synchronous caller: expected ENXIO, EBADSLT or ECONNRESET, got {}",
            other.map(|_| "success".to_owned()).unwrap_or_else(errno_name)
        )),
    }
}

/// A thread running a synchronous call: its pthread id, the result of the
/// first SEND, and the handle (yielding the result of an optional second
/// SEND of the same call).
type SyncThread<'s> = (
    libc::pthread_t,
    mpsc::Receiver<SendResult>,
    std::thread::ScopedJoinHandle<'s, Option<SendResult>>,
);
type SendResult = Result<SendReply, Errno>;

fn start_sync_thread<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    a: &'s Connection,
    m: &'s MsgBuilder,
    go: Option<mpsc::Receiver<()>>,
) -> SyncThread<'s> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (first_tx, first_rx) = mpsc::channel();
    let h = s.spawn(move || {
        let _ = tid_tx.send(util::this_thread());
        let r = a.send_sync(m);
        let _ = first_tx.send(r);
        let go = go?;
        go.recv().ok()?;
        Some(a.send_sync(m))
    });
    let tid = tid_rx.recv().unwrap_or(0);
    (tid, first_rx, h)
}

/// A signal without SA_RESTART interrupts the wait with EINTR; the call
/// was delivered once; when the deadline passes no notification follows
/// (message.md 8.2 step 4).
pub fn sync_eintr(ctx: &Ctx) -> TestResult {
    util::install_sigusr1(false)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let deadline = util::deadline_in(1200);
    let m = MsgBuilder::new(b.id())
        .cookie(13)
        .call(deadline)
        .vec(b"call");
    std::thread::scope(|s| -> TestResult {
        let (tid, first, h) = start_sync_thread(s, &a, &m, None);
        util::expect_readable(&b, 5000, "callee")?;
        std::thread::sleep(Duration::from_millis(100));
        util::signal_thread(tid)?;
        let r = first
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the synchronous call did not return after the signal")?;
        expect_errno("synchronous call interrupted by a signal", r, Errno::EINTR)?;
        h.join().map_err(|_| "caller thread panicked")?;
        Ok(())
    })?;
    take_call(&b, a.id(), 13)?;
    util::expect_empty(&b, "the call was delivered once")?;
    let wait = deadline.saturating_sub(monotonic_ns()) / 1_000_000 + 200;
    expect_quiet(
        &a,
        wait,
        "no notification for an interrupted synchronous call",
    )?;
    send_err(
        &b,
        &reply(a.id(), 13, 1),
        Errno::EBADSLT,
        "reply after the interrupted call expired",
    )
}

/// With SA_RESTART the interrupted SEND restarts and resumes waiting on
/// the same call without sending it again; the reply arrives normally.
pub fn sync_restart(ctx: &Ctx) -> TestResult {
    util::install_sigusr1(true)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = call(b.id(), 14, 5000);
    std::thread::scope(|s| -> TestResult {
        let (tid, first, h) = start_sync_thread(s, &a, &m, None);
        util::expect_readable(&b, 5000, "callee")?;
        std::thread::sleep(Duration::from_millis(100));
        util::signal_thread(tid)?;
        util::wait_signal_hits(1, 5000)?;
        std::thread::sleep(Duration::from_millis(100));
        take_call(&b, a.id(), 14)?;
        util::expect_empty(&b, "the restarted call was not sent again")?;
        send(&b, &reply(a.id(), 14, 15), "reply to the restarted call")?;
        let r = first
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the restarted synchronous call did not return")?;
        let r = expect_ok("restarted synchronous call", r)?;
        h.join().map_err(|_| "caller thread panicked")?;
        check_sync_reply(&a, &r, b.id(), 14, "reply after restart")
    })?;
    util::expect_empty(&a, "caller queue")
}

/// The reply arrives while the interrupted caller is not waiting; the
/// repeated SEND of the same call returns that reply without sending the
/// call again (message.md 8.2 quirk, recommended behaviour).
pub fn sync_resume_after_reply(ctx: &Ctx) -> TestResult {
    util::install_sigusr1(false)?;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = call(b.id(), 16, 5000);
    std::thread::scope(|s| -> TestResult {
        let (go_tx, go_rx) = mpsc::channel();
        let (tid, first, h) = start_sync_thread(s, &a, &m, Some(go_rx));
        util::expect_readable(&b, 5000, "callee")?;
        std::thread::sleep(Duration::from_millis(100));
        util::signal_thread(tid)?;
        let r = first
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the synchronous call did not return after the signal")?;
        let interrupted = expect_errno("interrupted synchronous call", r, Errno::EINTR);
        take_call(&b, a.id(), 16)?;
        let replied = b.send(&reply(a.id(), 16, 17), 0);
        let _ = go_tx.send(());
        let second = h.join().map_err(|_| "caller thread panicked")?;
        interrupted?;
        expect_ok("reply to an interrupted, still tracked call", replied)?;
        let second = second.ok_or("the caller did not repeat the call")?;
        let r = expect_ok("repeated synchronous call", second)?;
        check_sync_reply(&a, &r, b.id(), 16, "reply picked up by the repeated call")
    })?;
    util::expect_empty(&b, "the call was not sent a second time")?;
    util::expect_empty(&a, "caller queue")
}

/// A reply too large for the synchronous caller's pool: the replier's SEND
/// fails (ENOBUFS or EXFULL) and the caller gets the same error (message.md
/// 8.2 step 5).
pub fn sync_reply_undeliverable(ctx: &Ctx) -> TestResult {
    let a = util::hello_pool(ctx, 0, 0, 4096)?;
    let b = ctx.hello()?;
    let m = call(b.id(), 18, 5000);
    std::thread::scope(|s| -> TestResult {
        let t = s.spawn(|| a.send_sync(&m));
        util::expect_readable(&b, 5000, "callee")?;
        take_call(&b, a.id(), 18)?;
        let big = MsgBuilder::new(a.id()).cookie_reply(18).vec(&[0x42; 8000]);
        let sent = b.send(&big, 0);
        let r = t.join().map_err(|_| "caller thread panicked")?;
        let e = match sent {
            Err(e @ (Errno::ENOBUFS | Errno::EXFULL)) => e,
            Err(e) => {
                return Err(format!(
                    "oversized reply: expected ENOBUFS or EXFULL, got {}",
                    errno_name(e)
                ))
            }
            Ok(_) => return Err("a reply larger than the caller's pool was accepted".into()),
        };
        expect_errno("synchronous caller of an undeliverable reply", r, e)
    })?;
    util::expect_empty(&a, "caller queue")
}

/// A connection may call itself and answer its own call.
pub fn to_self(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    send(&a, &call(a.id(), 61, 5000), "call to self")?;
    take_call(&a, a.id(), 61)?;
    send(&a, &reply(a.id(), 61, 62), "reply to self")?;
    let d = util::recv_data(&a, a.id(), 62, "reply to self")?;
    ensure_eq!(d, b"reply".to_vec(), "payload");
    send_err(
        &a,
        &reply(a.id(), 61, 63),
        Errno::EBADSLT,
        "second reply to self",
    )
}

/// Calls whose deadlines pass after the caller is gone: no notification
/// anywhere, the callee keeps working (the timers must not touch the dead
/// caller; KASAN/kmemleak watch the rest).
pub fn timeout_after_caller_close(ctx: &Ctx) -> TestResult {
    let b = ctx.hello()?;
    let mut ids = Vec::new();
    for round in 0..3u64 {
        let a = ctx.hello()?;
        ids.push(a.id());
        let first = util::deadline_in(200);
        for i in 0..5u64 {
            let deadline = first + i * 20_000_000;
            send(
                &a,
                &MsgBuilder::new(b.id())
                    .cookie(round * 10 + i)
                    .call(deadline)
                    .vec(b"call"),
                "call",
            )?;
        }
        if round == 1 {
            // BYEBYE is EBUSY once a REPLY_TIMEOUT is queued; that is only
            // legitimate after the first deadline.
            loop {
                match a.byebye() {
                    Ok(()) => break,
                    Err(Errno::EBUSY) if monotonic_ns() >= first => {
                        let _ = a.recv(RECV_DROP, 0);
                    }
                    Err(e) => return Err(format!("BYEBYE of the caller: {}", errno_name(e))),
                }
            }
        }
        std::mem::drop(a);
    }
    std::thread::sleep(Duration::from_millis(700));
    for (round, id) in ids.iter().enumerate() {
        for i in 0..5u64 {
            take_call(&b, *id, round as u64 * 10 + i)?;
        }
    }
    expect_quiet(&b, 100, "callee after its callers' deadlines")
}

/// A synchronous call whose deadline has already passed is ETIMEDOUT
/// before its destination is resolved (message.md 8.2 step 2 comes before
/// step 3): also to an unknown ID and to a name nobody owns. With a future
/// deadline the destination errors remain (ENXIO, ESRCH).
pub fn sync_past_deadline_unknown_dst(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let nobody = "org.example.Nobody";
    let cases = [
        (
            "to an unknown id, deadline 1 ns",
            MsgBuilder::new(NO_SUCH_ID).cookie(1).call(1),
        ),
        (
            "to an unknown id, deadline just passed",
            MsgBuilder::new(NO_SUCH_ID)
                .cookie(2)
                .call(monotonic_ns() - 1),
        ),
        (
            "to a name without owner, deadline 1 ns",
            MsgBuilder::new(0).cookie(3).call(1).dst_name(nobody),
        ),
    ];
    for (what, m) in cases {
        expect_errno(
            &format!("synchronous call {what}"),
            a.send_sync(&m),
            Errno::ETIMEDOUT,
        )?;
    }
    expect_errno(
        "synchronous call to an unknown id, future deadline",
        a.send_sync(&call(NO_SUCH_ID, 4, 5000)),
        Errno::ENXIO,
    )?;
    expect_errno(
        "synchronous call to a name without owner, future deadline",
        a.send_sync(
            &MsgBuilder::new(0)
                .cookie(5)
                .call(util::deadline_in(5000))
                .dst_name(nobody),
        ),
        Errno::ESRCH,
    )?;
    util::expect_empty(&a, "caller")
}
