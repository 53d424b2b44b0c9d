//! Kernel arrays that userspace can grow must stay bounded: a pool holds a
//! limited number of slices (results that are never FREEd end in EXFULL
//! long before the pool is full), and a receiver filled by many sending
//! users ends in ENOBUFS/EXFULL, never in a kernel allocation WARNING.
//! The exact limits are not part of the ABI; the tests only require the
//! documented errors, plausible bounds and a clean kernel log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{Connection, Errno, MsgBuilder};

use super::sys::KmsgWatch;
use super::util;
use crate::check::{diag, errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::{require_root, Ctx};
use crate::{ensure, ensure_eq};

/// Pool size of the receivers (8 MiB).
const BIG_POOL: u64 = 8 << 20;

/// Bound of the filling loops: some forty times what the work takes on an
/// idle host under TCG and KASAN (a loaded host was seen needing 2.5 times
/// the idle time, and more is possible), inside the tests' minimum timeout
/// (tests/mod.rs), teardown of the full pool or queue included.
const LOOP_SECS: u64 = 300;

/// A connection that never FREEs its CONN_INFO results: the first error
/// is EXFULL, after at least 1000 and at most 100000 results and while at
/// least half of the pool is still free (so it is the slice limit, not a
/// full pool); the kernel log stays clean; after FREEing everything
/// CONN_INFO works again.
pub fn conn_info_slices(ctx: &Ctx) -> TestResult {
    let watch = KmsgWatch::start()?;
    let c = util::hello_clean(ctx, 0, 0, BIG_POOL)?;
    let start = Instant::now();
    let mut results = Vec::new();
    let mut bytes = 0u64;
    let err = loop {
        match c.conn_info(c.id(), 0) {
            Ok(r) => {
                bytes += r.size;
                results.push(r.offset);
            }
            Err(e) => break Some(e),
        }
        if results.len() > 100_000 {
            break None;
        }
        if results.len() % 512 == 0 && start.elapsed() > Duration::from_secs(LOOP_SECS) {
            return Err(format!(
                "no error after {} unfreed CONN_INFO results in {LOOP_SECS} s ({bytes} bytes of the {BIG_POOL}-byte pool in use)",
                results.len()
            ));
        }
    };
    let n = results.len();
    diag(format!(
        "first error after {n} unfreed CONN_INFO results ({bytes} bytes in use, {:.1} s)",
        start.elapsed().as_secs_f64()
    ));
    watch.check("unfreed CONN_INFO results")?;
    match err {
        None => {
            return Err(format!(
            "{n} unfreed CONN_INFO results were accepted: the slices of one pool are not bounded"
        ))
        }
        Some(e) => expect_errno(
            &format!("CONN_INFO after {n} unfreed results"),
            Err::<(), _>(e),
            Errno::EXFULL,
        )?,
    }
    ensure!(
        n >= 1000,
        "EXFULL already after {n} CONN_INFO results (expected a limit of at least 1000 slices)"
    );
    ensure!(
        bytes <= BIG_POOL / 2,
        "EXFULL only with {bytes} of {BIG_POOL} pool bytes in use: that is a full pool, not a slice limit"
    );
    for off in results {
        expect_ok(
            &format!("FREE of the CONN_INFO result at {off:#x}"),
            c.free(off),
        )?;
    }
    let r = expect_ok(
        "CONN_INFO after FREEing every result",
        c.conn_info(c.id(), 0),
    )?;
    expect_ok("FREE", c.free(r.offset))?;
    watch.check("after FREEing the CONN_INFO results")
}

/// HELLO with real and effective uid `uid` (the saved uid stays root), then
/// back to root.
fn hello_as_real_uid(ep: &std::path::Path, uid: u32) -> Result<Connection, String> {
    // SAFETY: credential syscalls; the test process is single-threaded.
    unsafe {
        ensure!(
            libc::setresuid(uid, uid, 0) == 0,
            "setresuid({uid}, {uid}, 0): {}",
            errno_name(Errno::last())
        );
    }
    let c = Connection::hello(ep, 0, 0, 0, 4096);
    // SAFETY: as above; allowed because the saved uid is 0.
    let back = unsafe { libc::setresuid(0, 0, 0) };
    ensure!(
        back == 0,
        "setresuid(0, 0, 0): {}",
        errno_name(Errno::last())
    );
    expect_ok(&format!("HELLO as uid {uid}"), c)
}

/// Sending users of [`queue_many_users`]: 132 users with their 256-message
/// quota each can queue 33792 messages, more than 32768.
const USERS: u32 = 132;

/// One user's outcome: messages queued, then the first error.
type UserResult = (u32, u64, Errno);

/// Sends empty messages from each connection in turn until its first
/// error; stops when the receiver takes nothing more from anybody.
fn fill_from(
    senders: &[(u32, Connection)],
    rid: u64,
    full: &AtomicBool,
    until: Instant,
) -> Vec<UserResult> {
    let mut out = Vec::new();
    for (uid, s) in senders {
        if full.load(Ordering::SeqCst) || Instant::now() >= until {
            break;
        }
        let mut n = 0u64;
        let e = loop {
            match s.send(&MsgBuilder::new(rid).cookie(n + 1), 0) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            if n > 256 {
                // More than the per-user quota: reported by the caller.
                break Errno::UnknownErrno;
            }
        };
        if n == 0 {
            full.store(true, Ordering::SeqCst);
        }
        out.push((*uid, n, e));
    }
    out
}

/// A receiver (8 MiB pool) filled by up to 132 sending users, each sending
/// empty messages until its first error: every error is ENOBUFS (its
/// quota: 256 messages) or EXFULL, and the kernel logs no WARNING. Each
/// user's connection is opened with that real uid (the accounting user,
/// message.md 13) and is not an owner; the sends run with euid 0, which is
/// the receiver's real uid (policy.md 5.2 step 3), from two threads.
pub fn queue_many_users(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let watch = KmsgWatch::start()?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let r = expect_ok(
        "HELLO of the receiver",
        Connection::hello(&ep, 0, 0, 0, BIG_POOL),
    )?;
    let rid = r.id();
    let start = Instant::now();
    let mut senders: [Vec<(u32, Connection)>; 2] = [Vec::new(), Vec::new()];
    for k in 0..USERS {
        let uid = 70_000 + k;
        senders[(k % 2) as usize].push((uid, hello_as_real_uid(&ep, uid)?));
    }
    let hellos = start.elapsed();
    let full = AtomicBool::new(false);
    // The test must end well inside the runner's timeout, teardown of
    // the full queue included.
    let until = start + Duration::from_secs(LOOP_SECS);
    let results: Vec<UserResult> = std::thread::scope(|s| {
        let t: Vec<_> = senders
            .iter()
            .map(|v| s.spawn(|| fill_from(v, rid, &full, until)))
            .collect();
        t.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let total: u64 = results.iter().map(|r| r.1).sum();
    let mut counts = std::collections::BTreeMap::new();
    for (_, _, e) in &results {
        *counts.entry(format!("{e:?}")).or_insert(0u32) += 1;
    }
    diag(format!(
        "{total} messages queued by {} users ({:.1} s, HELLOs {:.1} s); errors per user: {counts:?}",
        results.len(),
        start.elapsed().as_secs_f64(),
        hellos.as_secs_f64()
    ));
    watch.check("receiver filled by many users")?;
    for &(uid, n, e) in &results {
        ensure!(
            n <= 256,
            "uid {uid}: more than 256 messages of one user queued at one receiver"
        );
        ensure!(
            e == Errno::ENOBUFS || e == Errno::EXFULL,
            "uid {uid}: SEND after {n} queued messages: expected ENOBUFS or EXFULL, got {}",
            errno_name(e)
        );
    }
    ensure!(total >= 1000, "only {total} messages could be queued");
    ensure!(
        full.load(Ordering::SeqCst) || results.len() == USERS as usize,
        "after {LOOP_SECS} s only {} of {USERS} users had sent ({total} messages queued) and the receiver was not full",
        results.len()
    );
    drop(senders);
    // The receiver still works.
    let got = util::recv(&r, "first queued message")?;
    ensure_eq!(
        util::parse(&got, "first")?.cookie,
        1,
        "cookie of the first message"
    );
    expect_ok("FREE", got.free())?;
    watch.check("receiver filled by many users")
}
