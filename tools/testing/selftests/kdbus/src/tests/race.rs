//! Concurrency: many senders to one receiver, several receiving threads,
//! synchronous calls racing with disconnects (message.md 11, 8.2;
//! connection.md 9).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kdbus::{Connection, Errno, MsgBuilder};

use super::util::{self, call, reply};
use crate::check::{errno_name, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const SENDERS: u64 = 4;
const PER_SENDER: u64 = 64;

/// Sends with retries while the receiver's quota is exhausted.
fn send_retry(c: &Connection, m: &MsgBuilder) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match c.send(m, 0) {
            Ok(_) => return Ok(()),
            Err(Errno::ENOBUFS) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(format!("SEND: {}", errno_name(e))),
        }
    }
}

/// Drains `n` messages from `b`, returning (src, cookie, payload) in
/// receive order.
fn drain(b: &Connection, n: u64) -> Result<Vec<(u64, u64, Vec<u8>)>, String> {
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while (got.len() as u64) < n {
        ensure!(
            Instant::now() < end,
            "received only {} of {n} messages",
            got.len()
        );
        match b.recv(0, 0) {
            Ok(r) => {
                let m = util::parse(&r, "raced message")?;
                got.push((m.src_id, m.cookie, m.data().map_err(|e| e.to_string())?));
                expect_ok("FREE", r.free())?;
            }
            Err(Errno::EAGAIN) => {
                util::wait_readable(b, 100);
            }
            Err(e) => return Err(format!("RECV: {}", errno_name(e))),
        }
    }
    Ok(got)
}

/// Four threads send 64 messages each to one receiver while it receives:
/// everything arrives exactly once, in order per sender.
pub fn many_senders(ctx: &Ctx) -> TestResult {
    let b = ctx.hello()?;
    let senders: Vec<Connection> = (0..SENDERS)
        .map(|_| ctx.hello())
        .collect::<Result<_, _>>()?;
    let got = std::thread::scope(|s| -> Result<_, String> {
        let hs: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(t, c)| {
                let bid = b.id();
                s.spawn(move || -> Result<(), String> {
                    for i in 0..PER_SENDER {
                        let cookie = ((t as u64) << 32) | i;
                        send_retry(c, &util::msg(bid, cookie, &cookie.to_ne_bytes()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let got = drain(&b, SENDERS * PER_SENDER);
        for h in hs {
            h.join().map_err(|_| "sender panicked")??;
        }
        got
    })?;
    let ids: BTreeMap<u64, u64> = senders
        .iter()
        .enumerate()
        .map(|(t, c)| (c.id(), t as u64))
        .collect();
    let mut next = vec![0u64; SENDERS as usize];
    for (src, cookie, data) in &got {
        let t = *ids
            .get(src)
            .ok_or(format!("message from unknown src_id {src}"))?;
        ensure_eq!(
            cookie >> 32,
            t,
            "sender index in the cookie of a message from {src}"
        );
        ensure_eq!(
            cookie & 0xffff_ffff,
            next[t as usize],
            "per-sender order of sender {t}"
        );
        ensure_eq!(
            data.clone(),
            cookie.to_ne_bytes().to_vec(),
            "payload of message {cookie:#x}"
        );
        next[t as usize] += 1;
    }
    util::expect_empty(&b, "after all messages")
}

/// Four threads receive on one connection while one thread sends: each
/// message is received exactly once.
pub fn many_receivers(ctx: &Ctx) -> TestResult {
    const N: u64 = 200;
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let seen = Mutex::new(Vec::new());
    let done = AtomicBool::new(false);
    std::thread::scope(|s| -> TestResult {
        let rs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    while !done.load(Ordering::SeqCst) {
                        match b.recv(0, 0) {
                            Ok(r) => {
                                let c = util::parse(&r, "message")?.cookie;
                                expect_ok("FREE", r.free())?;
                                seen.lock().unwrap().push(c);
                            }
                            Err(Errno::EAGAIN) => {
                                util::wait_readable(&b, 20);
                            }
                            Err(e) => return Err(format!("RECV: {}", errno_name(e))),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let sent = (|| {
            for i in 0..N {
                send_retry(&a, &util::msg(b.id(), i, b"r"))?;
            }
            Ok::<_, String>(())
        })();
        let end = Instant::now() + Duration::from_secs(20);
        while (seen.lock().unwrap().len() as u64) < N && Instant::now() < end && sent.is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
        done.store(true, Ordering::SeqCst);
        for r in rs {
            r.join().map_err(|_| "receiver panicked")??;
        }
        sent
    })?;
    let mut v = seen.into_inner().unwrap();
    v.sort();
    ensure_eq!(
        v,
        (0..N).collect::<Vec<_>>(),
        "cookies received (each exactly once)"
    );
    util::expect_empty(&b, "after the race")
}

/// A synchronous call while the callee closes at varying moments: the
/// caller always ends with the reply, EPIPE (callee gone with the call) or
/// ENXIO/ECONNRESET (callee gone before the call was queued).
pub fn sync_vs_callee_close(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let mut outcomes = BTreeMap::new();
    for i in 0..12u64 {
        let b = ctx.hello()?;
        let bid = b.id();
        let m = call(bid, 100 + i, 5000);
        let r = std::thread::scope(|s| -> Result<Result<(), Errno>, String> {
            let t = s.spawn(|| a.send_sync(&m));
            std::thread::sleep(Duration::from_micros(i * 3000));
            match i % 3 {
                0 => {}
                1 => {
                    if let Ok(r) = b.recv(0, 0) {
                        let _ = r.free();
                    }
                }
                _ => {
                    let _ = b.send(&reply(a.id(), 100 + i, 1), 0);
                }
            }
            std::mem::drop(b);
            let r = t.join().map_err(|_| "caller panicked")?;
            Ok(r.map(|rep| {
                let _ = a.free(rep.reply.offset);
            }))
        })?;
        match r {
            Ok(()) | Err(Errno::EPIPE) | Err(Errno::ENXIO) | Err(Errno::ECONNRESET) => {}
            Err(e) => {
                return Err(format!(
                    "iteration {i}: synchronous call ended with {}",
                    errno_name(e)
                ))
            }
        }
        *outcomes.entry(format!("{r:?}")).or_insert(0) += 1;
    }
    // Nothing stray is left for the caller (no REPLY_DEAD for sync calls).
    ensure!(
        !util::wait_readable(&a, 100),
        "caller has a message after the races: {outcomes:?}"
    );
    Ok(())
}

/// A synchronous caller disconnected (BYEBYE) while the callee replies:
/// the caller gets the reply or ECONNRESET; the replier success or one of
/// ECONNRESET/ENXIO/EBADSLT; nothing hangs.
pub fn sync_vs_caller_byebye(ctx: &Ctx) -> TestResult {
    let b = ctx.hello()?;
    for i in 0..10u64 {
        let a = ctx.hello()?;
        let m = call(b.id(), 200 + i, 5000);
        std::thread::scope(|s| -> TestResult {
            let t = s.spawn(|| a.send_sync(&m));
            util::expect_readable(&b, 5000, "callee")?;
            let r = util::recv(&b, "call")?;
            expect_ok("FREE", r.free())?;
            let replier = s.spawn(|| b.send(&reply(a.id(), 200 + i, 1), 0));
            std::thread::sleep(Duration::from_micros((i % 5) * 500));
            let bye = a.byebye();
            let caller = t.join().map_err(|_| "caller panicked")?;
            let rep = replier.join().map_err(|_| "replier panicked")?;
            ensure!(
                bye.is_ok(),
                "iteration {i}: BYEBYE of the caller failed: {bye:?}"
            );
            match caller {
                Ok(_) | Err(Errno::ECONNRESET) => {}
                Err(e) => return Err(format!("iteration {i}: caller got {}", errno_name(e))),
            }
            match rep {
                Ok(_) | Err(Errno::ECONNRESET) | Err(Errno::ENXIO) | Err(Errno::EBADSLT) => {}
                Err(e) => return Err(format!("iteration {i}: replier got {}", errno_name(e))),
            }
            Ok(())
        })?;
    }
    util::expect_empty(&b, "callee after the races")
}

/// A sender keeps sending while the receiver closes: successes, then only
/// failures (ENXIO or ECONNRESET), never success after a failure.
pub fn send_vs_close(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let bid = b.id();
    let results = std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut v = Vec::new();
            for i in 0..300u64 {
                v.push(a.send(&MsgBuilder::new(bid).cookie(i), 0).map(drop));
            }
            v
        });
        std::thread::sleep(Duration::from_millis(5));
        std::mem::drop(b);
        t.join()
    })
    .map_err(|_| "sender panicked")?;
    let mut failed = false;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(()) => ensure!(!failed, "send {i} succeeded after an earlier failure"),
            Err(Errno::ENXIO) | Err(Errno::ECONNRESET) => failed = true,
            Err(Errno::ENOBUFS) => {}
            Err(e) => return Err(format!("send {i}: unexpected {}", errno_name(*e))),
        }
    }
    // After the close every send fails.
    util::send_err(
        &a,
        &MsgBuilder::new(bid),
        Errno::ENXIO,
        "SEND after the close",
    )
}
