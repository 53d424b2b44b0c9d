//! KDBUS_CMD_RECV: FIFO and priority selection, PEEK, DROP, the command's
//! own validation, the delivered layout (message.md 10, 14), TIMESTAMP
//! metadata (metadata.md 4) and poll/epoll readiness (connection.md 8).

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{
    monotonic_ns, poll_once, realtime_ns, CmdBuf, Errno, MsgBuilder, PollFlags, RecvReply,
    FLAG_NEGOTIATE, PAYLOAD_OFF_NULL, TIMESTAMP_ITEM_SIZE,
};

use super::util::{self, msg, send, NO_SUCH_ID};
use crate::check::{expect_errno, expect_ok, expect_poll, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

/// An empty queue: EAGAIN; the output still reports the empty marker and
/// no dropped messages (message.md 10.4, pool.md 4).
pub fn empty(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    for flags in [0, RECV_PEEK, RECV_DROP, RECV_USE_PRIORITY] {
        let mut cmd = CmdBuf::recv(flags, i64::MAX);
        expect_errno(
            &format!("RECV flags {flags:#x} on an empty queue"),
            c.recv_raw(&mut cmd),
            Errno::EAGAIN,
        )?;
        let r = RecvReply::from_cmd(&cmd);
        ensure_eq!(
            r.dropped_msgs,
            0,
            "dropped_msgs after EAGAIN (flags {flags:#x})"
        );
        ensure_eq!(
            r.return_flags,
            0,
            "return_flags after EAGAIN (flags {flags:#x})"
        );
        ensure!(
            r.msg.is_empty_marker(c.pool_size()),
            "msg after EAGAIN (flags {flags:#x}) is {:?}, expected the empty marker",
            r.msg
        );
    }
    Ok(())
}

/// Without USE_PRIORITY the queue is strict FIFO over all priorities.
pub fn fifo(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    let prios = [5i64, -3, 0, i64::MIN, i64::MAX, -3];
    for (i, p) in prios.iter().enumerate() {
        let from = if i % 2 == 0 { &a } else { &c };
        send(
            from,
            &msg(b.id(), i as u64 + 1, &[i as u8; 3]).priority(*p),
            "SEND",
        )?;
    }
    for (i, _) in prios.iter().enumerate() {
        let src = if i % 2 == 0 { a.id() } else { c.id() };
        let d = util::recv_data(&b, src, i as u64 + 1, &format!("message {}", i + 1))?;
        ensure_eq!(d, vec![i as u8; 3], "payload of message {}", i + 1);
    }
    util::expect_empty(&b, "after draining")
}

fn recv_cookie(b: &kdbus::Connection, flags: u64, prio: i64, what: &str) -> Result<u64, String> {
    let r = util::recv_flags(b, flags, prio, what)?;
    let m = util::parse(&r, what)?;
    let cookie = m.cookie;
    if flags & RECV_PEEK == 0 {
        expect_ok("FREE", r.free())?;
    }
    Ok(cookie)
}

/// USE_PRIORITY: lowest value first, FIFO among equals; PEEK with
/// USE_PRIORITY shows the same candidate (message.md 10.2).
pub fn priority(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let prios = [
        (1u64, 5i64),
        (2, -3),
        (3, 0),
        (4, -3),
        (5, 10),
        (6, i64::MIN),
    ];
    for (cookie, p) in prios {
        send(&a, &msg(b.id(), cookie, b"p").priority(p), "SEND")?;
    }
    let peek = recv_cookie(
        &b,
        RECV_PEEK | RECV_USE_PRIORITY,
        i64::MAX,
        "PEEK with USE_PRIORITY",
    )?;
    ensure_eq!(peek, 6, "cookie of the peeked most urgent message");
    let mut order = Vec::new();
    for _ in 0..prios.len() {
        order.push(recv_cookie(
            &b,
            RECV_USE_PRIORITY,
            i64::MAX,
            "RECV with USE_PRIORITY",
        )?);
    }
    ensure_eq!(order, vec![6, 2, 4, 3, 1, 5], "cookies in priority order");
    util::expect_empty(&b, "after draining by priority")
}

/// USE_PRIORITY with a threshold: the best candidate is returned only if
/// its priority is <= the threshold, else EAGAIN although messages are
/// queued.
pub fn priority_threshold(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &msg(b.id(), 1, b"x").priority(5), "SEND prio 5")?;
    send(&a, &msg(b.id(), 2, b"x").priority(0), "SEND prio 0")?;
    expect_errno(
        "RECV USE_PRIORITY with threshold -1",
        b.recv(RECV_USE_PRIORITY, -1),
        Errno::EAGAIN,
    )?;
    ensure_eq!(
        recv_cookie(&b, RECV_USE_PRIORITY, 0, "threshold 0")?,
        2,
        "message within threshold 0"
    );
    expect_errno(
        "RECV USE_PRIORITY with threshold 4",
        b.recv(RECV_USE_PRIORITY, 4),
        Errno::EAGAIN,
    )?;
    expect_errno(
        "PEEK USE_PRIORITY with threshold 4",
        b.recv(RECV_USE_PRIORITY | RECV_PEEK, 4),
        Errno::EAGAIN,
    )?;
    ensure_eq!(
        recv_cookie(&b, RECV_USE_PRIORITY, 5, "threshold 5")?,
        1,
        "message within threshold 5"
    );
    // A negative priority below every threshold down to itself.
    send(&a, &msg(b.id(), 3, b"x").priority(-100), "SEND prio -100")?;
    expect_errno(
        "threshold -101",
        b.recv(RECV_USE_PRIORITY, -101),
        Errno::EAGAIN,
    )?;
    ensure_eq!(
        recv_cookie(&b, RECV_USE_PRIORITY, -100, "threshold -100")?,
        3,
        "message at -100"
    );
    util::expect_empty(&b, "after the threshold tests")
}

/// PEEK publishes the slice but keeps the message queued; the next RECV
/// returns the same offset; a FREE between them is harmless; one FREE
/// after the RECV releases the slice, a second is ENXIO (pool.md 6).
pub fn peek(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &msg(b.id(), 1, b"first"), "SEND 1")?;
    send(&a, &msg(b.id(), 2, b"second"), "SEND 2")?;
    let p1 = util::recv_flags(&b, RECV_PEEK, 0, "PEEK")?;
    let m = util::parse(&p1, "peeked message")?;
    ensure_eq!(m.cookie, 1, "cookie of the peeked message");
    ensure_eq!(
        m.data().map_err(|e| e.to_string())?,
        b"first".to_vec(),
        "peeked payload"
    );
    let p2 = util::recv_flags(&b, RECV_PEEK, 0, "second PEEK")?;
    ensure_eq!(p2.info(), p1.info(), "second PEEK of the same message");
    expect_ok("FREE between PEEK and RECV", p1.free())?;
    let r = util::recv(&b, "RECV after PEEK")?;
    ensure_eq!(r.offset(), p1.offset(), "RECV offset after PEEK");
    ensure_eq!(
        r.info().msg_size,
        p1.info().msg_size,
        "RECV size after PEEK"
    );
    ensure_eq!(util::parse(&r, "received")?.cookie, 1, "cookie after PEEK");
    expect_ok("FREE after RECV", r.free())?;
    expect_errno("second FREE after RECV", r.free(), Errno::ENXIO)?;
    let d = util::recv_data(&b, a.id(), 2, "the second message")?;
    ensure_eq!(d, b"second".to_vec(), "second payload");
    util::expect_empty(&b, "after PEEK tests")
}

/// DROP discards the oldest message without publishing anything
/// (empty marker); PEEK|DROP is DROP; DROP|USE_PRIORITY is EINVAL.
pub fn drop_oldest(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    for i in 1..=3u64 {
        send(&a, &msg(b.id(), i, b"d"), "SEND")?;
    }
    let mut cmd = CmdBuf::recv(RECV_DROP | RECV_USE_PRIORITY, i64::MAX);
    expect_errno(
        "RECV DROP|USE_PRIORITY",
        b.recv_raw(&mut cmd),
        Errno::EINVAL,
    )?;
    let r = util::recv_flags(&b, RECV_DROP, 0, "DROP")?;
    ensure!(
        r.info().is_empty_marker(b.pool_size()),
        "msg after DROP is {:?}, expected the empty marker",
        r.info()
    );
    ensure_eq!(r.reply.dropped_msgs, 0, "dropped_msgs after DROP");
    expect_ok("FREE of the empty marker", r.free())?;
    let r = util::recv_flags(&b, RECV_DROP | RECV_PEEK, 0, "PEEK|DROP")?;
    ensure!(
        r.info().is_empty_marker(b.pool_size()),
        "msg after PEEK|DROP is {:?}, expected the empty marker",
        r.info()
    );
    ensure_eq!(
        recv_cookie(&b, 0, 0, "after two drops")?,
        3,
        "the message left after two drops"
    );
    expect_errno(
        "DROP on an empty queue",
        b.recv(RECV_DROP, 0),
        Errno::EAGAIN,
    )
}

/// A peeked and then dropped message keeps its slice until FREE; the slice
/// is not handed out again before that (pool.md 2.1).
pub fn drop_after_peek(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_clean(ctx, 0, 0, crate::ctx::POOL_SIZE)?;
    send(&a, &msg(b.id(), 1, b"peeked"), "SEND")?;
    let p = util::recv_flags(&b, RECV_PEEK, 0, "PEEK")?;
    let poff = p.offset();
    util::recv_flags(&b, RECV_DROP, 0, "DROP of the peeked message")?;
    util::expect_empty(&b, "after the drop")?;
    // The published slice still holds the message.
    let m = util::parse(&p, "peeked slice after DROP")?;
    ensure_eq!(m.cookie, 1, "cookie in the peeked slice after DROP");
    send(&a, &msg(b.id(), 2, b"next"), "SEND after the drop")?;
    let r = util::recv(&b, "message after the drop")?;
    ensure!(
        r.offset() != poff,
        "a new message got offset {poff:#x} of the peeked slice that was never freed"
    );
    expect_ok("FREE of the new message", r.free())?;
    expect_ok("FREE of the peeked slice after DROP", p.free())?;
    expect_errno("second FREE of the peeked slice", p.free(), Errno::ENXIO)
}

/// The RECV command itself: unknown flags, size, items, negotiation.
pub fn cmd(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &msg(b.id(), 1, b"keep"), "SEND")?;
    for flag in [8u64, 1 << 20] {
        let mut c = CmdBuf::recv(flag, 0);
        expect_errno(
            &format!("RECV flag {flag:#x}"),
            b.recv_raw(&mut c),
            Errno::EINVAL,
        )?;
    }
    let mut c = CmdBuf::recv(0, 0);
    c.set_size(63);
    expect_errno("RECV size 63", b.recv_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::recv(0, 0);
    c.push_raw(&[0; 32768]);
    expect_errno("RECV size > 32768", b.recv_raw(&mut c), Errno::EMSGSIZE)?;
    let mut c = CmdBuf::recv(0, 0);
    c.push_str(ITEM_NAME, "org.example.X");
    expect_errno("RECV with a NAME item", b.recv_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::recv(FLAG_NEGOTIATE, 0);
    let off = c.push_negotiate(&[ITEM_NEGOTIATE, ITEM_PAYLOAD_VEC]);
    expect_ok("RECV negotiation", b.recv_raw(&mut c))?;
    ensure_eq!(
        c.flags(),
        RECV_PEEK | RECV_DROP | RECV_USE_PRIORITY,
        "negotiated RECV flags"
    );
    ensure_eq!(
        c.negotiate_entries(off, 2),
        vec![ITEM_NEGOTIATE, 0],
        "negotiated RECV items"
    );
    // None of that consumed the message.
    ensure_eq!(
        recv_cookie(&b, 0, 0, "after the bad RECVs")?,
        1,
        "message still queued"
    );
    Ok(())
}

/// The worked example of message.md 14 with TIMESTAMP metadata: msg.size
/// 200, PAYLOAD_OFF {13, 200}, {3, ~0}, {8, 216}, slice 224.
pub fn layout_example(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let d1: Vec<u8> = (1..=13).collect();
    let d2: Vec<u8> = (100..108).collect();
    let m = MsgBuilder::new(b.id())
        .cookie(1)
        .vec(&d1)
        .null_vec(3)
        .vec(&d2);
    ensure_eq!(m.size(), 160, "sender msg.size");
    send(&a, &m, "SEND of the worked example")?;
    let r = util::recv(&b, "worked example")?;
    let got = util::parse(&r, "worked example")?;
    ensure_eq!(got.size, 200, "delivered msg.size");
    ensure_eq!(
        got.item_types(),
        vec![
            ITEM_PAYLOAD_OFF,
            ITEM_PAYLOAD_OFF,
            ITEM_PAYLOAD_OFF,
            ITEM_TIMESTAMP
        ],
        "delivered item types"
    );
    ensure_eq!(
        got.payload_offs(),
        vec![Some((13, 200)), Some((3, PAYLOAD_OFF_NULL)), Some((8, 216))],
        "PAYLOAD_OFF items"
    );
    ensure_eq!(got.items[3].offset, 160, "offset of the TIMESTAMP item");
    ensure_eq!(
        got.items[3].size,
        TIMESTAMP_ITEM_SIZE,
        "TIMESTAMP item size"
    );
    ensure_eq!(r.info().msg_size, 224, "slice size");
    ensure_eq!(&got.slice[200..213], &d1[..], "bytes 200..213");
    ensure_eq!(
        &got.slice[213..216],
        &[0u8; 3][..],
        "null-vector bytes 213..216"
    );
    ensure_eq!(&got.slice[216..224], &d2[..], "bytes 216..224");
    util::check_layout(
        &got,
        &r.info(),
        &m.delivered_layout(&[TIMESTAMP_ITEM_SIZE]),
        "worked example",
    )?;
    expect_ok("FREE", r.free())
}

/// The same message to a receiver without metadata: msg.size 160,
/// PAYLOAD_OFF {13, 160}, {3, ~0}, {8, 176}, slice 184.
pub fn layout_no_metadata(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = MsgBuilder::new(b.id())
        .vec(&[7; 13])
        .null_vec(3)
        .vec(&[9; 8]);
    send(&a, &m, "SEND")?;
    let r = util::recv(&b, "no metadata")?;
    let got = util::parse(&r, "no metadata")?;
    ensure_eq!(got.size, 160, "delivered msg.size");
    ensure_eq!(
        got.payload_offs(),
        vec![Some((13, 160)), Some((3, PAYLOAD_OFF_NULL)), Some((8, 176))],
        "PAYLOAD_OFF items"
    );
    ensure_eq!(r.info().msg_size, 184, "slice size");
    ensure!(
        got.timestamp().is_none(),
        "TIMESTAMP attached although not requested"
    );
    util::check_layout(&got, &r.info(), &m.delivered_layout(&[]), "no metadata")?;
    expect_ok("FREE", r.free())
}

/// Vectors that are not 8-byte multiples are concatenated without padding;
/// null vectors materialise `size % 8` zero bytes; the stream keeps each
/// byte's position modulo 8.
pub fn layout_unaligned(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    for attach in [0, ATTACH_TIMESTAMP] {
        let b = util::hello(ctx, 0, attach)?;
        let meta: &[u64] = if attach == 0 {
            &[]
        } else {
            &[TIMESTAMP_ITEM_SIZE]
        };
        let m = MsgBuilder::new(b.id())
            .vec(b"abcde")
            .vec(b"fghijkl")
            .null_vec(13)
            .vec(b"XYZ")
            .null_vec(16)
            .vec(&[0xee; 17]);
        send(&a, &m, "SEND of unaligned vectors")?;
        let r = util::recv(&b, "unaligned vectors")?;
        let got = util::parse(&r, "unaligned vectors")?;
        let want = m.delivered_layout(meta);
        util::check_layout(&got, &r.info(), &want, "unaligned vectors")?;
        let base = want.payload_base;
        ensure_eq!(
            got.payload_offs(),
            vec![
                Some((5, base)),
                Some((7, base + 5)),
                Some((13, PAYLOAD_OFF_NULL)),
                Some((3, base + 12 + 5)),
                Some((16, PAYLOAD_OFF_NULL)),
                Some((17, base + 20)),
            ],
            "PAYLOAD_OFF items (attach {attach:#x})"
        );
        let mut stream = b"abcdefghijkl".to_vec();
        stream.extend_from_slice(&[0; 13]);
        stream.extend_from_slice(b"XYZ");
        stream.extend_from_slice(&[0; 16]);
        stream.extend_from_slice(&[0xee; 17]);
        ensure_eq!(
            got.payload_stream().map_err(|e| e.to_string())?,
            stream,
            "payload stream"
        );
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// A message without items: 64 bytes (104 with a TIMESTAMP), no payload
/// area.
pub fn no_payload(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    for (attach, size) in [(0, 64u64), (ATTACH_TIMESTAMP, 104)] {
        let b = util::hello(ctx, 0, attach)?;
        send(&a, &MsgBuilder::new(b.id()).cookie(4), "SEND without items")?;
        let r = util::recv(&b, "message without items")?;
        let got = util::parse(&r, "message without items")?;
        ensure_eq!(got.size, size, "msg.size (attach {attach:#x})");
        ensure_eq!(r.info().msg_size, size, "slice size (attach {attach:#x})");
        let n = if attach == 0 { 0 } else { 1 };
        ensure_eq!(got.items.len(), n, "number of items (attach {attach:#x})");
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// TIMESTAMP: seqnums count every message and notification of the bus
/// (failed sends past validation included), times lie between send and
/// receive (message.md 11, metadata.md 4).
pub fn timestamp(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, 0, ATTACH_TIMESTAMP)?;
    let (m0, r0) = (monotonic_ns(), realtime_ns());
    send(&a, &msg(b.id(), 1, b"t1"), "SEND 1")?;
    let (m1, r1) = (monotonic_ns(), realtime_ns());
    // Passes validation (takes a seqnum), then fails in dispatch.
    util::send_err(
        &a,
        &msg(NO_SUCH_ID, 9, b"x"),
        Errno::ENXIO,
        "SEND to nobody",
    )?;
    // Fails validation: no seqnum.
    util::send_err(
        &a,
        &msg(b.id(), 9, b"x").payload_type(0),
        Errno::EINVAL,
        "SEND payload_type 0",
    )?;
    send(&a, &msg(b.id(), 2, b"t2"), "SEND 2")?;
    let mut ts = Vec::new();
    for i in 1..=2 {
        let r = util::recv(&b, "timestamped message")?;
        let m = util::parse(&r, "timestamped message")?;
        ensure_eq!(m.cookie, i, "cookie");
        let last = m.items.last().ok_or("no items")?;
        ensure_eq!(last.ty, ITEM_TIMESTAMP, "the last item is the TIMESTAMP");
        ensure_eq!(last.size, 40, "TIMESTAMP item size");
        ts.push(m.timestamp().ok_or("TIMESTAMP payload")?);
        expect_ok("FREE", r.free())?;
    }
    // Two ID_ADD notifications (HELLO of a and b) took seqnums 1 and 2.
    ensure_eq!(
        ts[0].seqnum,
        3,
        "seqnum of the first message on a bus with two connections"
    );
    ensure_eq!(
        ts[1].seqnum,
        ts[0].seqnum + 2,
        "seqnum after a send that failed in dispatch"
    );
    ensure!(
        (m0..=m1).contains(&ts[0].monotonic_ns),
        "monotonic_ns {} outside the send window [{m0}, {m1}]",
        ts[0].monotonic_ns
    );
    ensure!(
        (r0..=r1).contains(&ts[0].realtime_ns),
        "realtime_ns {} outside the send window [{r0}, {r1}]",
        ts[0].realtime_ns
    );
    ensure!(
        ts[1].monotonic_ns >= ts[0].monotonic_ns,
        "monotonic_ns went backwards"
    );
    Ok(())
}

/// UPDATE of attach_flags_recv applies to messages sent afterwards
/// (metadata.md 2.5).
pub fn update_attach(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(&a, &msg(b.id(), 1, b"x"), "SEND before UPDATE")?;
    expect_ok(
        "UPDATE attach_flags_recv = TIMESTAMP",
        b.update(None, Some(ATTACH_TIMESTAMP)),
    )?;
    send(&a, &msg(b.id(), 2, b"x"), "SEND after UPDATE")?;
    expect_ok("UPDATE attach_flags_recv = 0", b.update(None, Some(0)))?;
    send(&a, &msg(b.id(), 3, b"x"), "SEND after the second UPDATE")?;
    for (cookie, has) in [(1, false), (2, true), (3, false)] {
        let r = util::recv(&b, "message")?;
        let m = util::parse(&r, "message")?;
        ensure_eq!(m.cookie, cookie, "cookie");
        ensure_eq!(
            m.timestamp().is_some(),
            has,
            "TIMESTAMP present on message {cookie}"
        );
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// Messages a sender queued stay receivable after it disconnected, with
/// its (dead) ID as src_id (connection.md 9.3).
pub fn sender_gone(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let aid = a.id();
    send(&a, &msg(b.id(), 1, b"posthumous"), "SEND")?;
    expect_ok("close the sender", a.close())?;
    let d = util::recv_data(&b, aid, 1, "message of a closed sender")?;
    ensure_eq!(d, b"posthumous".to_vec(), "payload");
    Ok(())
}

/// POLLIN while a message is queued (also after PEEK), not after RECV or
/// DROP; POLLOUT always.
pub fn poll(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let all = PollFlags::POLLIN | PollFlags::POLLOUT;
    let bad = PollFlags::POLLERR | PollFlags::POLLHUP;
    let ev = expect_ok("poll", poll_once(&b, all, 0))?;
    expect_poll("idle", ev, PollFlags::POLLOUT, PollFlags::POLLIN | bad)?;
    send(&a, &msg(b.id(), 1, b"x"), "SEND")?;
    let ev = expect_ok("poll", poll_once(&b, all, 0))?;
    expect_poll("with a queued message", ev, all, bad)?;
    let p = util::recv_flags(&b, RECV_PEEK, 0, "PEEK")?;
    let ev = expect_ok("poll", poll_once(&b, all, 0))?;
    expect_poll("after PEEK", ev, all, bad)?;
    expect_ok("FREE", p.free())?;
    let r = util::recv(&b, "RECV")?;
    let ev = expect_ok("poll", poll_once(&b, all, 0))?;
    expect_poll(
        "after RECV",
        ev,
        PollFlags::POLLOUT,
        PollFlags::POLLIN | bad,
    )?;
    expect_ok("FREE", r.free())?;
    send(&a, &msg(b.id(), 2, b"x"), "SEND")?;
    util::recv_flags(&b, RECV_DROP, 0, "DROP")?;
    let ev = expect_ok("poll", poll_once(&b, all, 0))?;
    expect_poll(
        "after DROP",
        ev,
        PollFlags::POLLOUT,
        PollFlags::POLLIN | bad,
    )
}

fn epoll_wait_one(ep: i32, ms: i32) -> Result<Option<u32>, String> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: one valid event buffer.
    let n = unsafe { libc::epoll_wait(ep, &mut ev, 1, ms) };
    match n {
        0 => Ok(None),
        1 => Ok(Some(ev.events)),
        _ => Err(format!(
            "epoll_wait: {}",
            crate::check::errno_name(Errno::last())
        )),
    }
}

/// epoll reports EPOLLIN (edge and level) when a message arrives.
pub fn epoll(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    // SAFETY: plain syscalls on descriptors we own.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ensure!(ep >= 0, "epoll_create1 failed");
    // SAFETY: ep is ours.
    let _guard = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ep) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 7,
    };
    // SAFETY: valid descriptors and event.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, b.as_raw_fd(), &mut ev) };
    ensure_eq!(r, 0, "epoll_ctl ADD");
    ensure_eq!(
        epoll_wait_one(ep, 0)?,
        None,
        "epoll events on an idle connection"
    );
    send(&a, &msg(b.id(), 1, b"x"), "SEND")?;
    let got = epoll_wait_one(ep, 2000)?;
    ensure!(
        got.is_some_and(|e| e & libc::EPOLLIN as u32 != 0),
        "epoll after a message: {got:?}, expected EPOLLIN"
    );
    let r = util::recv(&b, "RECV")?;
    expect_ok("FREE", r.free())?;
    send(&a, &msg(b.id(), 2, b"x"), "second SEND")?;
    let got = epoll_wait_one(ep, 2000)?;
    ensure!(
        got.is_some_and(|e| e & libc::EPOLLIN as u32 != 0),
        "epoll (edge-triggered) after a second message: {got:?}"
    );
    Ok(())
}

/// A thread blocked in poll() wakes up when a message is queued.
pub fn poll_wakeup(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let t = Instant::now();
            let ev = poll_once(&b, PollFlags::POLLIN, 10_000);
            (ev, t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        send(&a, &msg(b.id(), 1, b"wake"), "SEND to the waiting receiver")?;
        let (ev, took) = waiter.join().map_err(|_| "poll thread panicked")?;
        let ev = expect_ok("blocking poll", ev)?;
        ensure!(
            ev.contains(PollFlags::POLLIN),
            "blocking poll returned {ev:?} after {took:?}, expected POLLIN"
        );
        ensure!(
            took < Duration::from_secs(9),
            "poll woke only after {took:?}"
        );
        Ok(())
    })
}

/// Every kind of item in one message with TIMESTAMP metadata: the metadata
/// starts at ALIGN8 of the unpadded FDS item's end; the payload area holds
/// data, null-vector and memfd bytes in item order (message.md 14).
pub fn layout_mixed(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, ATTACH_TIMESTAMP)?;
    let ev = util::eventfd()?;
    let mfd = util::memfd(&[1; 11], MEMFD_SEALS)?;
    let m = MsgBuilder::new(b.id())
        .cookie(9)
        .vec(b"abc")
        .memfd(mfd.as_raw_fd(), 0, 11)
        .null_vec(6)
        .vec(b"defghijkl")
        .fds(&[ev.as_raw_fd()]);
    // Items end unpadded: 64 + 32 + 40 + 32 + 32 + 20 = 220.
    ensure_eq!(
        m.item_sizes(),
        vec![32, 40, 32, 32, 20],
        "sender item sizes"
    );
    send(&a, &m, "SEND of a mixed message")?;
    let r = util::recv(&b, "mixed message")?;
    let got = util::parse(&r, "mixed message")?;
    ensure_eq!(
        got.item_types(),
        vec![
            ITEM_PAYLOAD_OFF,
            ITEM_PAYLOAD_MEMFD,
            ITEM_PAYLOAD_OFF,
            ITEM_PAYLOAD_OFF,
            ITEM_FDS,
            ITEM_TIMESTAMP
        ],
        "item types"
    );
    ensure_eq!(got.items[5].offset, 224, "TIMESTAMP starts at ALIGN8(220)");
    ensure_eq!(got.size, 264, "msg.size");
    // Payload area at 264: "abc" (3), memfd 11 % 8 = 3 zero bytes, null
    // 6 zero bytes, then "defghijkl".
    ensure_eq!(
        got.payload_offs(),
        vec![
            Some((3, 264)),
            Some((6, PAYLOAD_OFF_NULL)),
            Some((9, 264 + 12))
        ],
        "PAYLOAD_OFF items"
    );
    util::check_layout(
        &got,
        &r.info(),
        &m.delivered_layout(&[TIMESTAMP_ITEM_SIZE]),
        "mixed message",
    )?;
    ensure_eq!(r.info().msg_size, 288, "slice size");
    let fds = got.fds().unwrap_or_default();
    let memfds: Vec<i32> = got.memfds().iter().map(|x| x.fd).collect();
    ensure_eq!(fds.len(), 1, "FDs");
    ensure_eq!(memfds.len(), 1, "memfds");
    util::close_fds(&fds);
    util::close_fds(&memfds);
    expect_ok("FREE", r.free())
}
