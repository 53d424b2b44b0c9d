//! Broadcasts and unicast signals (message.md 9, 10.4, 11, 7.2): filter
//! validation, delivery to exactly the matching connections (including
//! the sender), monitors, lost broadcasts (quota and pool), one seqnum per
//! broadcast, special connections, and unicast signals through matches.

use std::time::Instant;

use kdbus::consts::*;
use kdbus::{recv_off, CmdBuf, Connection, Errno, MatchRule, MsgBuilder, MATCH_ID_ANY};

use super::util::{
    self, broadcast, expect_signal, filter_bits, mask_bits, msg, msg_with_slice, send, send_err,
};
use crate::check::{diag, expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

const BC: u64 = kdbus::DST_ID_BROADCAST;

/// Broadcast filter checks at SEND (message.md 4, 5): the data must be a
/// multiple of 8 (EFAULT) and exactly the bus bloom size (EDOM); a
/// broadcast needs SIGNAL and a filter (EBADMSG) and cannot carry FDs
/// (ENOTUNIQ). Nothing refused is delivered.
pub fn filter_size(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = ctx.hello()?;
    expect_ok("MATCH_ADD", r.match_add(&MatchRule::new(1)))?;
    let mon = util::monitor(ctx)?;
    for len in [0usize, 8, 56, 72, 128, 4096] {
        send_err(
            &s,
            &MsgBuilder::new(BC)
                .flags(MSG_SIGNAL)
                .bloom_filter(0, &vec![0; len])
                .vec(b"x"),
            Errno::EDOM,
            &format!("broadcast with {len} bytes of filter data"),
        )?;
    }
    for len in [4usize, 60, 68] {
        send_err(
            &s,
            &MsgBuilder::new(BC)
                .flags(MSG_SIGNAL)
                .bloom_filter(0, &vec![0; len])
                .vec(b"x"),
            Errno::EFAULT,
            &format!("broadcast with {len} bytes of filter data (not a multiple of 8)"),
        )?;
    }
    send_err(
        &s,
        &MsgBuilder::new(BC).flags(MSG_SIGNAL).vec(b"x"),
        Errno::EBADMSG,
        "broadcast without a filter",
    )?;
    let (rd, _wr) = util::pipe()?;
    send_err(
        &s,
        &broadcast(&filter_bits(0, &[]), 1).fds(&[std::os::fd::AsRawFd::as_raw_fd(&rd)]),
        Errno::ENOTUNIQ,
        "broadcast with an FD",
    )?;
    util::expect_empty(&r, "receiver after refused broadcasts")?;
    util::expect_empty(&mon, "monitor after refused broadcasts")?;
    send(&s, &broadcast(&filter_bits(0, &[]), 2), "a valid broadcast")?;
    expect_signal(&r, s.id(), 2, BC, "the valid broadcast")?;
    expect_signal(&mon, s.id(), 2, BC, "the valid broadcast at the monitor")
}

/// What connection `i` of [`subset`] installs, and whether it matches the
/// broadcast (filter bits 1..=5 from `sender`).
fn subset_rule(i: usize, sender: u64, other: u64) -> (Vec<MatchRule>, bool) {
    let c = i as u64;
    match i % 7 {
        0 => (vec![MatchRule::new(c)], true),
        1 => (
            vec![MatchRule::new(c).bloom_mask(&mask_bits(&[&[1 + c % 5]]))],
            true,
        ),
        2 => (
            vec![MatchRule::new(c).bloom_mask(&mask_bits(&[&[1, 100 + c]]))],
            false,
        ),
        3 => (vec![MatchRule::new(c).sender_id(sender)], true),
        4 => (vec![MatchRule::new(c).sender_id(other)], false),
        5 if i % 2 == 1 => (
            // Two accepting entries: still one copy.
            vec![
                MatchRule::new(c).dst_id(BC),
                MatchRule::new(c + 1).sender_id(MATCH_ID_ANY),
            ],
            true,
        ),
        5 => (vec![MatchRule::new(c).dst_id(sender)], false),
        _ => (vec![], false),
    }
}

/// One broadcast reaches exactly the matching subset of 100 connections
/// (each once, whatever number of its entries accept it) and the sender
/// itself when one of its entries matches; the others get nothing.
pub fn subset(ctx: &Ctx) -> TestResult {
    const CONNS: usize = 100;
    let start = Instant::now();
    let s = ctx.hello()?;
    let other = ctx.hello()?;
    let conns: Vec<Connection> = (0..CONNS)
        .map(|_| util::hello_pool(ctx, 0, 0, 16 * 1024))
        .collect::<Result<_, _>>()?;
    let hello_done = start.elapsed();
    let mut want = Vec::with_capacity(CONNS);
    for (i, c) in conns.iter().enumerate() {
        let (rules, m) = subset_rule(i, s.id(), other.id());
        for r in &rules {
            expect_ok(&format!("MATCH_ADD at connection {i}"), c.match_add(r))?;
        }
        want.push(m);
    }
    expect_ok(
        "the sender's own entry",
        s.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[2, 4]]))),
    )?;
    let f = filter_bits(0, &[1, 2, 3, 4, 5]);
    send(&s, &broadcast(&f, 77), "the broadcast")?;
    let n_match = want.iter().filter(|m| **m).count();
    ensure!(
        n_match > 30 && n_match < 70,
        "test setup: {n_match} matching connections"
    );
    for (i, (c, m)) in conns.iter().zip(&want).enumerate() {
        if *m {
            expect_signal(c, s.id(), 77, BC, &format!("matching connection {i}"))?;
        }
        util::expect_empty(
            c,
            &format!(
                "connection {i} ({} match) after the broadcast",
                if *m { "one copy only:" } else { "no" }
            ),
        )?;
    }
    expect_signal(&s, s.id(), 77, BC, "the sender's own copy")?;
    util::expect_empty(&s, "sender after its copy")?;
    util::expect_empty(&other, "connection without entries")?;
    // Keep the teardown fast: entries without rules would take every
    // ID_REMOVE of the 100 disconnects.
    for (i, c) in conns.iter().enumerate().filter(|(i, _)| i % 7 == 0) {
        expect_ok("MATCH_REMOVE", c.match_remove(i as u64))?;
    }
    diag(format!(
        "{CONNS} connections in {:.2} s, whole test {:.2} s",
        hello_done.as_secs_f64(),
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Monitors get every broadcast, also those nobody else matches, and the
/// sender without a matching entry gets no copy of its own.
pub fn monitor(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = ctx.hello()?;
    expect_ok(
        "r's mask",
        r.match_add(&MatchRule::new(1).bloom_mask(&mask_bits(&[&[7]]))),
    )?;
    let mon = util::monitor(ctx)?;
    send(
        &s,
        &broadcast(&filter_bits(0, &[7]), 1),
        "matching broadcast",
    )?;
    send(
        &s,
        &broadcast(&filter_bits(0, &[8]), 2),
        "unmatched broadcast",
    )?;
    expect_signal(&mon, s.id(), 1, BC, "monitor, first")?;
    expect_signal(&mon, s.id(), 2, BC, "monitor, second")?;
    util::expect_empty(&mon, "monitor")?;
    expect_signal(&r, s.id(), 1, BC, "r")?;
    util::expect_empty(&r, "r")?;
    util::expect_empty(&s, "sender without entries")
}

/// A receiver whose receive quota for the sender's user is used up loses
/// the broadcast: SEND still returns 0 and others get it; the receiver's
/// next RECV reports dropped_msgs 1 with KDBUS_RECV_RETURN_DROPPED_MSGS,
/// the one after it 0. A unicast signal that cannot be queued is not
/// counted (message.md 7.2). Kernel notifications, charged to the kernel
/// user, still arrive.
pub fn lost_quota(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = util::hello_clean(ctx, 0, 0, 16 * 1024)?;
    let r2 = ctx.hello()?;
    expect_ok("r's entry", r.match_add(&MatchRule::new(1)))?;
    expect_ok("r2's entry", r2.match_add(&MatchRule::new(1)))?;
    let mut queued = 0u64;
    for slice in [1024usize, 104] {
        loop {
            match s.send(&msg_with_slice(r.id(), queued + 1, slice), 0) {
                Ok(_) => queued += 1,
                Err(Errno::ENOBUFS) => break,
                Err(e) => return Err(format!("filling r's quota: {e:?}")),
            }
            ensure!(queued < 300, "r's quota never ran out");
        }
    }
    diag(format!("{queued} messages fill r's quota"));
    // Notifications are charged to the kernel user (message.md 12, 13):
    // r still gets them.
    util::acquire(&s, "org.example.Q", 0, NAME_PRIMARY | NAME_ACQUIRED, "s")?;
    let f = filter_bits(0, &[]);
    send(&s, &broadcast(&f, 500), "broadcast to a full receiver")?;
    send(
        &s,
        &MsgBuilder::signal(r.id(), &f).cookie(501).vec(b"u"),
        "unicast signal to a full receiver",
    )?;
    util::recv_notification(&r2, "NAME_ADD at the other receiver")?;
    expect_signal(&r2, s.id(), 500, BC, "the other receiver")?;
    let first = util::recv(&r, "first message at r")?;
    ensure_eq!(
        (first.reply.dropped_msgs, first.reply.return_flags),
        (1, RECV_RETURN_DROPPED_MSGS),
        "first RECV: (dropped_msgs, return_flags)"
    );
    ensure_eq!(util::parse(&first, "first")?.cookie, 1, "first message");
    expect_ok("FREE", first.free())?;
    for k in 2..=queued {
        let r1 = util::recv(&r, "queued message")?;
        ensure_eq!(
            (r1.reply.dropped_msgs, r1.reply.return_flags),
            (0, 0),
            "RECV {k}: (dropped_msgs, return_flags)"
        );
        ensure_eq!(util::parse(&r1, "queued")?.cookie, k, "message order");
        expect_ok("FREE", r1.free())?;
    }
    let (n, _) = util::recv_notification(&r, "NAME_ADD at r with root's quota used up")?;
    ensure_eq!(
        n,
        util::name_add("org.example.Q", (s.id(), NAME_PRIMARY)),
        "notification charged to the kernel user"
    );
    util::expect_empty(&r, "neither the broadcast nor the signal was queued")?;
    // With room again, the next broadcast arrives.
    send(&s, &broadcast(&f, 502), "broadcast after draining")?;
    expect_signal(&r, s.id(), 502, BC, "r after draining")?;
    expect_signal(&r2, s.id(), 502, BC, "r2")
}

/// A receiver whose pool has no room (received slices not freed) loses
/// the broadcast and a kernel notification; RECV on the then empty queue
/// fails with EAGAIN and still reports dropped_msgs 2 and KDBUS_RECV_RETURN_DROPPED_MSGS (message.md
/// 10.4), once; the lost broadcast makes the connection readable.
pub fn lost_pool(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r = util::hello_clean(ctx, 0, 0, 16 * 1024)?;
    expect_ok("r's entry", r.match_add(&MatchRule::new(1)))?;
    let mut n = 0u64;
    for slice in [2048usize, 104] {
        loop {
            match s.send(&msg_with_slice(r.id(), n + 1, slice), 0) {
                Ok(_) => {
                    n += 1;
                    // Received but not freed: pool space, no quota.
                    util::recv(&r, "filling the pool")?;
                }
                Err(Errno::EXFULL) => break,
                Err(e) => return Err(format!("filling r's pool: {e:?}")),
            }
            ensure!(n < 300, "r's pool never filled");
        }
    }
    send(
        &s,
        &broadcast(&filter_bits(0, &[]), 900),
        "broadcast to a full pool",
    )?;
    util::expect_readable(&r, 1000, "after the lost broadcast")?;
    // A kernel notification (the entry without rules takes NAME_ADD) is
    // lost the same way.
    util::acquire(&s, "org.example.Lost", 0, NAME_PRIMARY | NAME_ACQUIRED, "s")?;
    let mut c = CmdBuf::recv(0, 0);
    expect_errno("RECV after the loss", r.recv_raw(&mut c), Errno::EAGAIN)?;
    ensure_eq!(
        (c.u64_at(recv_off::DROPPED_MSGS), c.return_flags()),
        (2, RECV_RETURN_DROPPED_MSGS),
        "EAGAIN RECV: (dropped_msgs, return_flags)"
    );
    let mut c = CmdBuf::recv(0, 0);
    expect_errno("second RECV", r.recv_raw(&mut c), Errno::EAGAIN)?;
    ensure_eq!(
        (c.u64_at(recv_off::DROPPED_MSGS), c.return_flags()),
        (0, 0),
        "second EAGAIN RECV: (dropped_msgs, return_flags)"
    );
    Ok(())
}

/// A broadcast has one seqnum, the same at every receiver and monitor
/// (TIMESTAMP item); seqnums of later messages are larger, and a unicast
/// in between consumes one.
pub fn seqnum(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let r1 = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let r2 = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let other = ctx.hello()?;
    let mon = expect_ok(
        "HELLO of a monitor with TIMESTAMP",
        Connection::hello(
            ctx.endpoint(),
            HELLO_MONITOR,
            0,
            ATTACH_TIMESTAMP,
            POOL_SIZE,
        ),
    )?;
    for c in [&r1, &r2] {
        expect_ok("entry", c.match_add(&MatchRule::new(1).sender_id(s.id())))?;
    }
    let f = filter_bits(0, &[3]);
    send(&s, &broadcast(&f, 1), "broadcast 1")?;
    send(&s, &msg(other.id(), 2, b"x"), "unicast in between")?;
    send(&s, &broadcast(&f, 3), "broadcast 2")?;
    send(&s, &broadcast(&f, 4), "broadcast 3")?;
    let seqs = |c: &Connection, cookies: &[u64], what: &str| -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        for &cookie in cookies {
            let r = util::recv(c, what)?;
            let m = util::parse(&r, what)?;
            ensure_eq!(m.cookie, cookie, "{what}: cookie");
            out.push(
                m.timestamp()
                    .ok_or_else(|| format!("{what}: no TIMESTAMP"))?
                    .seqnum,
            );
            expect_ok("FREE", r.free())?;
        }
        Ok(out)
    };
    let a = seqs(&r1, &[1, 3, 4], "r1")?;
    let b = seqs(&r2, &[1, 3, 4], "r2")?;
    let m = seqs(&mon, &[1, 2, 3, 4], "monitor")?;
    ensure_eq!(&a, &b, "seqnums at r1 and r2");
    ensure_eq!(
        vec![m[0], m[2], m[3]],
        a.clone(),
        "broadcast seqnums at the monitor"
    );
    ensure!(
        m[0] < m[1] && m[1] < m[2] && m[2] < m[3],
        "seqnums not increasing: {m:?}"
    );
    Ok(())
}

/// Activators never receive broadcasts (nor can they add matches);
/// monitors do. (Policy holders are refused at HELLO by this module.)
pub fn special(ctx: &Ctx) -> TestResult {
    let s = ctx.hello()?;
    let act = util::activator(ctx, "org.example.Act")?;
    let r = ctx.hello()?;
    let mon = util::monitor(ctx)?;
    expect_ok("r's entry", r.match_add(&MatchRule::new(1)))?;
    send(&s, &broadcast(&filter_bits(0, &[]), 1), "broadcast")?;
    util::expect_empty(&act, "activator")?;
    expect_signal(&mon, s.id(), 1, BC, "monitor")?;
    expect_signal(&r, s.id(), 1, BC, "ordinary receiver")
}

/// Unicast signals (message.md 7.1, 9.2): to a destination without an
/// accepting entry they are dropped silently (SEND returns 0, the monitor
/// still sees its copy); with one they are delivered, by ID and by name.
pub fn unicast_signal(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    util::acquire(&b, "org.example.B", 0, NAME_PRIMARY | NAME_ACQUIRED, "b")?;
    let mon = util::monitor(ctx)?;
    let f = filter_bits(0, &[1]);
    let sig = |dst: u64, cookie: u64| MsgBuilder::signal(dst, &f).cookie(cookie).vec(b"sig");
    send(&a, &sig(b.id(), 1), "signal to b without entries")?;
    util::expect_empty(&b, "b without entries")?;
    expect_signal(
        &mon,
        a.id(),
        1,
        b.id(),
        "monitor copy of the dropped signal",
    )?;
    expect_ok(
        "b subscribes to c",
        b.match_add(&MatchRule::new(1).sender_id(c.id())),
    )?;
    send(&a, &sig(b.id(), 2), "signal from a (b subscribed to c)")?;
    util::expect_empty(&b, "b, signal from a")?;
    expect_ok(
        "b subscribes to a's bit",
        b.match_add(&MatchRule::new(2).bloom_mask(&mask_bits(&[&[1]]))),
    )?;
    send(&a, &sig(b.id(), 3), "signal to subscribed b")?;
    send(&a, &sig(0, 4).dst_name("org.example.B"), "signal by name")?;
    send(
        &c,
        &MsgBuilder::signal(b.id(), &filter_bits(0, &[2]))
            .cookie(5)
            .vec(b"s"),
        "c",
    )?;
    expect_signal(&b, a.id(), 3, b.id(), "signal by ID")?;
    expect_signal(&b, a.id(), 4, 0, "signal by name")?;
    expect_signal(&b, c.id(), 5, b.id(), "signal from c")?;
    util::expect_empty(&b, "b")?;
    for cookie in [2, 3, 4, 5] {
        let r = util::recv(&mon, "monitor")?;
        ensure_eq!(util::parse(&r, "monitor")?.cookie, cookie, "monitor copies");
        expect_ok("FREE", r.free())?;
    }
    util::expect_empty(&mon, "monitor")
}

/// The receiver of a broadcast must be allowed to TALK to the sender
/// (message.md 9.1; the module's interim rule: owners talk to anyone,
/// others only to connections whose opener's real uid is their euid).
/// A uid-1000 connection n does not get root's broadcast, but gets the
/// one of another uid-1000 connection; root (an owner) gets both; kernel
/// notifications need no TALK. A unicast from uid 1000 to root is EPERM.
pub fn talk(ctx: &Ctx) -> TestResult {
    crate::ctx::require_root(ctx)?;
    let bus = ctx.new_bus(MAKE_ACCESS_WORLD)?;
    let ep = bus.endpoint();
    let s = ctx.hello_on(&ep)?;
    expect_ok(
        "root's entry",
        s.match_add(&MatchRule::new(1).sender_id(MATCH_ID_ANY)),
    )?;
    let (ids_rd, ids_wr) = expect_ok("pipe", nix::unistd::pipe())?;
    let (go_rd, go_wr) = expect_ok("pipe", nix::unistd::pipe())?;
    let (res_rd, res_wr) = expect_ok("pipe", nix::unistd::pipe())?;
    let sid = s.id();
    // SAFETY: the test process is single-threaded here.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            let out = (|| -> Result<String, String> {
                // SAFETY: plain credential syscalls in the child.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(1000, 1000, 1000) != 0
                        || libc::setresuid(1000, 1000, 1000) != 0
                    {
                        return Err("setuid failed".into());
                    }
                }
                let n = expect_ok("HELLO as 1000", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
                let n2 = expect_ok("HELLO as 1000", Connection::hello(&ep, 0, 0, 0, POOL_SIZE))?;
                expect_ok(
                    "n's signal entry",
                    n.match_add(&MatchRule::new(1).sender_id(MATCH_ID_ANY)),
                )?;
                expect_ok(
                    "n's NAME_ADD entry",
                    n.match_add(&MatchRule::any_name_add(2, None)),
                )?;
                let ids = format!("{} {}", n.id(), n2.id());
                let _ = nix::unistd::write(&ids_wr, ids.as_bytes());
                let mut b = [0u8; 1];
                let _ = nix::unistd::read(&go_rd, &mut b);
                send(&n2, &broadcast(&filter_bits(0, &[]), 2), "n2's broadcast")?;
                send_err(&n2, &msg(sid, 3, b"x"), Errno::EPERM, "uid 1000 -> root")?;
                send(&n2, &msg(n.id(), 4, b"x"), "uid 1000 -> uid 1000")?;
                let mut got = Vec::new();
                while let Ok(r) = n.recv(0, 0) {
                    let m = util::parse(&r, "at n")?;
                    got.push(if m.src_id == 0 {
                        "kernel".to_string()
                    } else if m.src_id == n2.id() {
                        format!("n2:{}", m.cookie)
                    } else if m.src_id == sid {
                        format!("root:{}", m.cookie)
                    } else {
                        format!("{}:{}", m.src_id, m.cookie)
                    });
                    let _ = r.free();
                }
                Ok(got.join(","))
            })();
            let s = match out {
                Ok(s) => s,
                Err(e) => format!("ERR {e}"),
            };
            let _ = nix::unistd::write(&res_wr, s.as_bytes());
            // SAFETY: leave the child without running destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop((ids_wr, go_rd, res_wr));
            let mut buf = [0u8; 256];
            let k = nix::unistd::read(&ids_rd, &mut buf).unwrap_or(0);
            let ids: Vec<u64> = String::from_utf8_lossy(&buf[..k])
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if ids.len() != 2 {
                let _ = nix::sys::wait::waitpid(child, None);
                let k = nix::unistd::read(&res_rd, &mut buf).unwrap_or(0);
                return Err(format!("child: {}", String::from_utf8_lossy(&buf[..k])));
            }
            send(&s, &broadcast(&filter_bits(0, &[]), 1), "root's broadcast")?;
            send(&s, &msg(ids[0], 5, b"x"), "root (owner) -> uid 1000")?;
            util::acquire(
                &s,
                "org.example.Root",
                0,
                NAME_PRIMARY | NAME_ACQUIRED,
                "root",
            )?;
            let _ = nix::unistd::write(&go_wr, b"g");
            let _ = nix::sys::wait::waitpid(child, None);
            let mut out = Vec::new();
            loop {
                let k = nix::unistd::read(&res_rd, &mut buf).unwrap_or(0);
                if k == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..k]);
            }
            ensure_eq!(
                String::from_utf8_lossy(&out).to_string(),
                "root:5,kernel,n2:2,n2:4".to_string(),
                "what the uid-1000 connection received (not root's broadcast 1)"
            );
            expect_signal(&s, sid, 1, BC, "root's own broadcast")?;
            expect_signal(&s, ids[1], 2, BC, "n2's broadcast at root")?;
            util::expect_empty(&s, "root")
        }
    }
}

/// A monitor whose quota is used up loses its copies of unicasts and
/// broadcasts (counted as lost, message.md 9.1, 10.4) while the senders
/// succeed and the real receivers get everything; delivered + reported
/// lost = sent, reported by the first RECV only.
pub fn lost_monitor(ctx: &Ctx) -> TestResult {
    const TOTAL: u64 = 20;
    let s = ctx.hello()?;
    let r = util::hello_pool(ctx, 0, 0, 4 * POOL_SIZE)?;
    expect_ok(
        "r's entry",
        r.match_add(&MatchRule::new(1).sender_id(s.id())),
    )?;
    let mon = expect_ok(
        "HELLO of a monitor with a 16 KiB pool",
        Connection::hello(ctx.endpoint(), HELLO_MONITOR, 0, 0, 16 * 1024),
    )?;
    expect_ok(
        "FREE of the monitor's HELLO slice",
        mon.free(mon.hello_reply().offset),
    )?;
    for i in 0..TOTAL - 1 {
        send(&s, &msg_with_slice(r.id(), i + 1, 1024), "unicast")?;
    }
    send(&s, &broadcast(&filter_bits(0, &[]), TOTAL), "broadcast")?;
    for i in 0..TOTAL - 1 {
        util::recv_data(&r, s.id(), i + 1, "unicast at r")?;
    }
    expect_signal(&r, s.id(), TOTAL, BC, "broadcast at r")?;
    let (mut delivered, mut dropped, mut reports) = (0u64, 0u64, 0);
    loop {
        let mut c = CmdBuf::recv(0, 0);
        let res = mon.recv_raw(&mut c);
        let d = c.u64_at(recv_off::DROPPED_MSGS);
        if res.is_ok() || res == Err(Errno::EAGAIN) {
            ensure_eq!(
                c.return_flags() & RECV_RETURN_DROPPED_MSGS != 0,
                d != 0,
                "RETURN_DROPPED_MSGS iff dropped_msgs != 0 (dropped_msgs {d})"
            );
            dropped += d;
            reports += usize::from(d != 0);
        }
        match res {
            Ok(()) => {
                delivered += 1;
                expect_ok("FREE", mon.free(c.u64_at(recv_off::MSG_OFFSET)))?;
            }
            Err(Errno::EAGAIN) => break,
            Err(e) => return Err(format!("monitor RECV: {e:?}")),
        }
    }
    diag(format!("monitor: {delivered} delivered, {dropped} lost"));
    ensure!(
        dropped > 0 && delivered > 0,
        "monitor: {delivered} delivered, {dropped} lost"
    );
    ensure_eq!(delivered + dropped, TOTAL, "monitor: delivered + lost");
    ensure_eq!(reports, 1, "RECVs reporting lost messages");
    Ok(())
}

/// Message metadata is collected once per message (metadata.md 1:
/// "once per message: every receiver of a broadcast sees the same
/// values"; NAMES at SEND): the payload lies in a userfaultfd page, and
/// while the copy to the first receiver waits on it the sender releases
/// one of its names; both receivers still get the same OWNED_NAME items
/// and the same TIMESTAMP.
pub fn metadata_once(ctx: &Ctx) -> TestResult {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    crate::ctx::require_root(ctx)?;
    let s = ctx.hello()?;
    let attach = ATTACH_NAMES | ATTACH_TIMESTAMP;
    let r1 = util::hello(ctx, 0, attach)?;
    let r2 = util::hello(ctx, 0, attach)?;
    for r in [&r1, &r2] {
        expect_ok("entry", r.match_add(&MatchRule::new(1).sender_id(s.id())))?;
    }
    util::acquire(&s, "org.example.Kept", 0, NAME_PRIMARY | NAME_ACQUIRED, "s")?;
    util::acquire(
        &s,
        "org.example.Released",
        0,
        NAME_PRIMARY | NAME_ACQUIRED,
        "s",
    )?;
    let ps = kdbus::page_size();
    let (base, ufd) = match util::uffd_region(1)? {
        Some(x) => x,
        None => return crate::check::skip("no userfaultfd"),
    };
    let stop = AtomicBool::new(false);
    let faults = AtomicUsize::new(0);
    let in_time = AtomicBool::new(false);
    let released: std::sync::Mutex<Option<Result<(), Errno>>> = std::sync::Mutex::new(None);
    let res = std::thread::scope(|sc| {
        let (stop, faults, released, s_ref, ufd, in_time) =
            (&stop, &faults, &released, &s, &ufd, &in_time);
        sc.spawn(move || {
            let src = vec![0x33u8; ps];
            while !stop.load(Ordering::SeqCst) {
                let Some(addr) = util::uffd_wait(ufd, 50) else {
                    continue;
                };
                if faults.fetch_add(1, Ordering::SeqCst) == 0 {
                    let (tx, rx) = std::sync::mpsc::channel();
                    sc.spawn(move || {
                        let r = s_ref.name_release("org.example.Released");
                        *released.lock().unwrap() = Some(r);
                        let _ = tx.send(());
                    });
                    if rx.recv_timeout(std::time::Duration::from_secs(2)).is_ok() {
                        in_time.store(true, Ordering::SeqCst);
                    }
                }
                util::uffd_fill(ufd, addr & !(ps as u64 - 1), &src);
            }
        });
        let m = MsgBuilder::broadcast(&filter_bits(0, &[]))
            .cookie(7)
            .vec_raw(ps as u64, base);
        let r = s.send(&m, 0).map(drop);
        stop.store(true, Ordering::SeqCst);
        r
    });
    util::uffd_unmap(base, 1);
    expect_ok("the broadcast", res)?;
    ensure_eq!(
        *released.lock().unwrap(),
        Some(Ok(())),
        "NAME_RELEASE during the copy"
    );
    ensure!(faults.load(Ordering::SeqCst) >= 1, "the copy never faulted");
    ensure!(
        in_time.load(Ordering::SeqCst),
        "NAME_RELEASE did not complete while the broadcast's copy waited"
    );
    let mut seen = Vec::new();
    for r in [&r1, &r2] {
        let got = util::recv(r, "the broadcast")?;
        let m = util::parse(&got, "the broadcast")?;
        ensure_eq!(m.cookie, 7, "cookie");
        let names: Vec<String> = m
            .owned_names()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|n| n.name)
            .collect();
        let seq = m.timestamp().map(|t| t.seqnum);
        seen.push((names, seq));
        expect_ok("FREE", got.free())?;
    }
    ensure_eq!(
        &seen[0],
        &seen[1],
        "(OWNED_NAME names, seqnum) at the two receivers"
    );
    ensure_eq!(
        seen[0].0.clone(),
        vec![
            "org.example.Kept".to_string(),
            "org.example.Released".to_string()
        ],
        "names collected at SEND"
    );
    Ok(())
}
