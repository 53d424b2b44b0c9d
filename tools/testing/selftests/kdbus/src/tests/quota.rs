//! Receive quotas per (receiver, sending user): half the pool reserved, a
//! third of the rest per user (ENOBUFS), 256 messages per user (ENOBUFS),
//! 16 FDs per user (EMFILE) (message.md 13, pool.md 2.2).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use kdbus::consts::*;
use kdbus::{Connection, Errno, MsgBuilder};

use super::util::{self, msg_with_slice, send, send_err};
use crate::check::{expect_ok, TestResult};
use crate::ctx::{require_root, Ctx};
use crate::{ensure, ensure_eq};

/// Pool of the quota receivers: 64 KiB, so avail = 32 KiB and one user's
/// share starts at 32768 / 3 = 10922 bytes.
const QPOOL: u64 = 64 * 1024;
/// Slice size of the quota test messages.
const S: usize = 1024;

/// Sends 1-KiB messages from `a` to `b` until one fails; returns how many
/// succeeded and the error.
fn fill(a: &Connection, b: &Connection, first_cookie: u64, max: u64) -> (u64, Option<Errno>) {
    for i in 0..max {
        if let Err(e) = a.send(&msg_with_slice(b.id(), first_cookie + i, S), 0) {
            return (i, Some(e));
        }
    }
    (max, None)
}

/// One user at one receiver: 10 messages of 1 KiB fit its share (10922
/// bytes), the 11th is ENOBUFS, then ten 64-byte ones fill the rest;
/// receiving one (no FREE needed, received slices are unaccounted) makes
/// room for one more; other receivers are unaffected.
pub fn bytes(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let a2 = ctx.hello()?; // same user, shares the quota
    let b = util::hello_pool(ctx, 0, 0, QPOOL)?;
    let (n, e) = fill(&a, &b, 1, 20);
    ensure_eq!(
        (n, e),
        (10, Some(Errno::ENOBUFS)),
        "1-KiB messages accepted before the quota"
    );
    send_err(
        &a2,
        &msg_with_slice(b.id(), 100, S),
        Errno::ENOBUFS,
        "another connection of the same user",
    )?;
    // 10922 - 10240 = 682 bytes left: ten 64-byte messages, not eleven.
    for i in 0..10u64 {
        send(
            &a,
            &MsgBuilder::new(b.id()).cookie(300 + i),
            "64-byte message within the rest of the share",
        )?;
    }
    send_err(
        &a,
        &MsgBuilder::new(b.id()).cookie(310),
        Errno::ENOBUFS,
        "64-byte message with 42 bytes of share left",
    )?;
    let r = util::recv(&b, "one queued message")?;
    send(&a, &msg_with_slice(b.id(), 101, S), "SEND after one RECV")?;
    send_err(
        &a,
        &msg_with_slice(b.id(), 102, S),
        Errno::ENOBUFS,
        "SEND over the quota again",
    )?;
    util::recv_flags(&b, RECV_DROP, 0, "DROP")?;
    send(&a, &msg_with_slice(b.id(), 103, S), "SEND after a DROP")?;
    expect_ok("FREE", r.free())?;
    let c = util::hello_pool(ctx, 0, 0, QPOOL)?;
    send(
        &a,
        &msg_with_slice(c.id(), 1, S),
        "SEND to another receiver",
    )?;
    // Draining the receiver restores the full share.
    while b.recv(RECV_DROP, 0).is_ok() {}
    let (n, e) = fill(&a, &b, 200, 20);
    ensure_eq!(
        (n, e),
        (10, Some(Errno::ENOBUFS)),
        "messages accepted after draining"
    );
    Ok(())
}

/// 256 messages per user may be queued at one receiver; the 257th is
/// ENOBUFS even with plenty of room.
pub fn messages(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?; // 1 MiB pool: 174762-byte share
    for i in 0..256u64 {
        expect_ok(
            &format!("SEND {}", i + 1),
            a.send(&MsgBuilder::new(b.id()).cookie(i), 0),
        )?;
    }
    send_err(
        &a,
        &MsgBuilder::new(b.id()).cookie(256),
        Errno::ENOBUFS,
        "message 257",
    )?;
    let r = util::recv(&b, "first")?;
    ensure_eq!(
        util::parse(&r, "first")?.cookie,
        0,
        "cookie of the first message"
    );
    expect_ok("FREE", r.free())?;
    send(
        &a,
        &MsgBuilder::new(b.id()).cookie(257),
        "SEND after one RECV",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id()).cookie(258),
        Errno::ENOBUFS,
        "message 257 again",
    )
}

fn dups(fd: RawFd, n: usize) -> Result<Vec<OwnedFd>, String> {
    (0..n)
        .map(|_| {
            // SAFETY: plain dup of an open descriptor.
            let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            ensure!(d >= 0, "dup failed");
            // SAFETY: fresh descriptor.
            Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(d) })
        })
        .collect()
}

/// At most 16 FDs of one user queued at one receiver (EMFILE); receiving
/// releases them.
pub fn fds(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let ev = util::eventfd()?;
    let d = dups(ev.as_raw_fd(), 16)?;
    let raw: Vec<RawFd> = d.iter().map(|x| x.as_raw_fd()).collect();
    send(
        &a,
        &util::msg(b.id(), 1, b"10").fds(&raw[..10]),
        "SEND with 10 FDs",
    )?;
    send_err(
        &a,
        &util::msg(b.id(), 2, b"7").fds(&raw[..7]),
        Errno::EMFILE,
        "7 more FDs (17 queued)",
    )?;
    send(
        &a,
        &util::msg(b.id(), 3, b"6").fds(&raw[..6]),
        "SEND with 6 more FDs (16 queued)",
    )?;
    send_err(
        &a,
        &util::msg(b.id(), 4, b"1").fds(&raw[..1]),
        Errno::EMFILE,
        "one more FD",
    )?;
    send(&a, &util::msg(b.id(), 5, b"0"), "SEND without FDs")?;
    let r = util::recv(&b, "10 FDs")?;
    let m = util::parse(&r, "10 FDs")?;
    let got = m.fds().unwrap_or_default();
    ensure_eq!(got.len(), 10, "FDs received");
    util::close_fds(&got);
    expect_ok("FREE", r.free())?;
    send(
        &a,
        &util::msg(b.id(), 6, b"10").fds(&raw[..10]),
        "SEND with 10 FDs after RECV",
    )?;
    while let Ok(r) = b.recv(0, 0) {
        if let Ok(m) = r.message() {
            util::close_fds(&m.fds().unwrap_or_default());
        }
        let _ = r.free();
    }
    Ok(())
}

/// Another user has its own share of the rest: after root used 10 KiB of
/// the 32 KiB, uid 65534 may queue (32768 - 10240) / 3 = 7509 bytes, i.e.
/// seven 1-KiB messages (message.md 13 steps 3-4).
pub fn other_user(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let a = ctx.hello_on(&ep)?;
    let b = expect_ok("HELLO", Connection::hello(&ep, 0, 0, 0, QPOOL))?;
    let (n, e) = fill(&a, &b, 1, 20);
    ensure_eq!((n, e), (10, Some(Errno::ENOBUFS)), "root's messages");
    let (rd, wr) = expect_ok("pipe", nix::unistd::pipe())?;
    let bid = b.id();
    // SAFETY: the test process is single-threaded here.
    match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            let out = (|| -> String {
                // SAFETY: plain credential syscalls in the child.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(65534, 65534, 65534) != 0
                        // Real uid 65534 (the accounting user), effective
                        // uid 0: allowed to talk to root's connection (the
                        // TALK rule, policy.md 5.2).
                        || libc::setresuid(65534, 0, 0) != 0
                    {
                        return "setuid failed".into();
                    }
                }
                let c = match Connection::hello(&ep, 0, 0, 0, QPOOL) {
                    Ok(c) => c,
                    Err(e) => return format!("HELLO as 65534: {e:?}"),
                };
                let mut count = 0;
                let mut err = None;
                for i in 0..20u64 {
                    if let Err(e) = c.send(&msg_with_slice(bid, 1000 + i, S), 0) {
                        err = Some(e);
                        break;
                    }
                    count += 1;
                }
                format!("{count} {:?}", err)
            })();
            let _ = nix::unistd::write(&wr, out.as_bytes());
            // SAFETY: leave the child without running destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            std::mem::drop(wr);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut buf = [0u8; 256];
            let n = nix::unistd::read(&rd, &mut buf).unwrap_or(0);
            let got = String::from_utf8_lossy(&buf[..n]).to_string();
            ensure_eq!(
                got.as_str(),
                "7 Some(ENOBUFS)",
                "messages of uid 65534 (count, error)"
            );
        }
    }
    // Root is still over its share.
    send_err(
        &a,
        &msg_with_slice(b.id(), 50, S),
        Errno::ENOBUFS,
        "root after the other user",
    )?;
    let mut from = std::collections::BTreeMap::new();
    while let Ok(r) = b.recv(0, 0) {
        let m = util::parse(&r, "queued")?;
        *from.entry(m.cookie >= 1000).or_insert(0) += 1;
        expect_ok("FREE", r.free())?;
    }
    ensure_eq!(
        from.get(&false).copied(),
        Some(10),
        "root's queued messages"
    );
    ensure_eq!(
        from.get(&true).copied(),
        Some(7),
        "uid 65534's queued messages"
    );
    Ok(())
}
