//! KDBUS_CMD_SEND to unique IDs: header and item validation, its order,
//! destination resolution, the plain-send output (message.md 2-7, 15;
//! abi.md 5, 8-10).

use kdbus::consts::*;
use kdbus::{CmdBuf, Errno, MsgBuilder, DST_ID_BROADCAST, FLAG_NEGOTIATE};

use super::util::{self, msg, send, send_err, NO_SUCH_ID};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq, ensure_eq_hex};

/// The test bus's bloom size (Ctx makes buses with bloom 64/8).
const BLOOM_SIZE: usize = 64;

fn bloom(m: MsgBuilder) -> MsgBuilder {
    m.bloom_filter(0, &[0u8; BLOOM_SIZE])
}

/// A plain message: SEND returns 0 with the empty reply marker; the
/// receiver gets the header fields unchanged except `src_id` (= sender),
/// one PAYLOAD_OFF item with the data; the sender's own queue stays empty.
pub fn basic(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let m = MsgBuilder::new(b.id())
        .cookie(0x1234_5678_9abc)
        .priority(17)
        .vec(b"hello kdbus");
    send(&a, &m, "SEND of a plain message")?;
    let r = util::recv(&b, "the plain message")?;
    ensure_eq!(r.reply.return_flags, 0, "RECV return_flags");
    ensure_eq!(r.reply.dropped_msgs, 0, "RECV dropped_msgs");
    ensure_eq!(r.info().return_flags, 0, "RECV msg.return_flags");
    ensure!(
        r.offset().is_multiple_of(8) && r.offset() < b.pool_size(),
        "slice offset {:#x} not 8-aligned inside the pool",
        r.offset()
    );
    let msg = util::parse(&r, "plain message")?;
    ensure_eq!(msg.src_id, a.id(), "delivered src_id");
    ensure_eq!(msg.dst_id, b.id(), "delivered dst_id");
    ensure_eq_hex!(msg.cookie, 0x1234_5678_9abc, "delivered cookie");
    ensure_eq!(msg.priority, 17, "delivered priority");
    ensure_eq_hex!(msg.flags, 0, "delivered flags");
    ensure_eq_hex!(msg.payload_type, PAYLOAD_DBUS, "delivered payload_type");
    ensure_eq!(msg.timeout_ns(), 0, "delivered timeout_ns");
    ensure_eq!(
        msg.item_types(),
        vec![ITEM_PAYLOAD_OFF],
        "delivered item types"
    );
    ensure_eq!(msg.items[0].size, 32, "PAYLOAD_OFF item size");
    ensure_eq!(
        msg.data().map_err(|e| e.to_string())?,
        b"hello kdbus".to_vec(),
        "delivered payload"
    );
    util::check_layout(&msg, &r.info(), &m.delivered_layout(&[]), "plain message")?;
    expect_ok("FREE of the received slice", r.free())?;
    expect_errno("second FREE of the slice", r.free(), Errno::ENXIO)?;
    util::expect_empty(&a, "sender")?;
    util::expect_empty(&b, "receiver after RECV")
}

/// A connection may send to itself.
pub fn to_self(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    send(&a, &msg(a.id(), 5, b"me"), "SEND to self")?;
    let d = util::recv_data(&a, a.id(), 5, "message to self")?;
    ensure_eq!(d, b"me".to_vec(), "payload to self");
    Ok(())
}

/// `src_id` 0 or the sender's own ID is accepted, anything else is EINVAL;
/// the kernel does not modify the sender's buffer.
pub fn src_id(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(
        &a,
        &msg(b.id(), 1, b"x").src_id(a.id()),
        "SEND with src_id = own id",
    )?;
    ensure_eq!(
        util::recv_data(&b, a.id(), 1, "own src_id")?,
        b"x".to_vec(),
        "payload"
    );
    send_err(
        &a,
        &msg(b.id(), 2, b"x").src_id(b.id()),
        Errno::EINVAL,
        "src_id of the receiver",
    )?;
    send_err(
        &a,
        &msg(b.id(), 3, b"x").src_id(NO_SUCH_ID),
        Errno::EINVAL,
        "unknown src_id",
    )?;
    send_err(
        &a,
        &msg(b.id(), 4, b"x").src_id(u64::MAX),
        Errno::EINVAL,
        "src_id ~0",
    )?;
    util::expect_empty(&b, "after refused src_ids")?;
    // The sender's buffer (src_id 0) stays as it was.
    let mut m = msg(b.id(), 6, b"unchanged");
    let before = m.cmd().clone();
    let mut cmd = CmdBuf::send(0, m.cmd_mut().as_mut_ptr() as u64);
    expect_ok("raw SEND", a.send_raw(&mut cmd))?;
    ensure!(
        m.cmd() == &before,
        "the kernel modified the sender's message: before {before:?}, after {:?}",
        m.cmd()
    );
    ensure_eq!(
        util::recv_data(&b, a.id(), 6, "raw send")?,
        b"unchanged".to_vec(),
        "payload"
    );
    Ok(())
}

/// payload_type 0 is reserved (EINVAL); any other value passes through.
pub fn payload_type(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send_err(
        &a,
        &msg(b.id(), 1, b"x").payload_type(0),
        Errno::EINVAL,
        "payload_type 0",
    )?;
    for (i, t) in [1u64, 0x1234_5678, u64::MAX].into_iter().enumerate() {
        send(
            &a,
            &msg(b.id(), 10 + i as u64, b"x").payload_type(t),
            "SEND with a custom payload type",
        )?;
        let r = util::recv(&b, "custom payload type")?;
        let m = util::parse(&r, "custom payload type")?;
        ensure_eq_hex!(m.payload_type, t, "delivered payload_type");
        expect_ok("FREE", r.free())?;
    }
    Ok(())
}

/// Unknown message flags are EINVAL; NO_AUTO_START is accepted on a
/// unicast by ID and delivered.
pub fn msg_flags(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    for bit in [3u32, 4, 31, 62] {
        send_err(
            &a,
            &msg(b.id(), 1, b"x").flags(1 << bit),
            Errno::EINVAL,
            &format!("message flag 1 << {bit}"),
        )?;
    }
    send_err(
        &a,
        &msg(b.id(), 1, b"x").flags(FLAG_NEGOTIATE),
        Errno::EINVAL,
        "NEGOTIATE in the message only",
    )?;
    send(
        &a,
        &msg(b.id(), 2, b"x").flags(MSG_NO_AUTO_START),
        "SEND with NO_AUTO_START",
    )?;
    let r = util::recv(&b, "NO_AUTO_START message")?;
    let m = util::parse(&r, "NO_AUTO_START message")?;
    ensure_eq_hex!(m.flags, MSG_NO_AUTO_START, "delivered flags");
    expect_ok("FREE", r.free())
}

/// Call and reply header rules (message.md 5 step 7).
pub fn call_header(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send_err(
        &a,
        &msg(b.id(), 1, b"x").flags(MSG_EXPECT_REPLY),
        Errno::EINVAL,
        "EXPECT_REPLY with timeout_ns 0",
    )?;
    expect_errno(
        "SYNC_REPLY without EXPECT_REPLY",
        a.send(&msg(b.id(), 2, b"x"), SEND_SYNC_REPLY),
        Errno::EINVAL,
    )?;
    expect_errno(
        "SYNC_REPLY without EXPECT_REPLY but with a timeout",
        a.send(
            &msg(b.id(), 3, b"x").timeout_ns(util::deadline_in(1000)),
            SEND_SYNC_REPLY,
        ),
        Errno::EINVAL,
    )?;
    send_err(
        &a,
        &bloom(
            msg(b.id(), 4, b"x")
                .call(util::deadline_in(1000))
                .flags(MSG_EXPECT_REPLY | MSG_SIGNAL),
        ),
        Errno::ENOTUNIQ,
        "EXPECT_REPLY on a signal",
    )?;
    send_err(
        &a,
        &bloom(msg(b.id(), 5, b"x").flags(MSG_SIGNAL).cookie_reply(99)),
        Errno::EINVAL,
        "a reply (cookie_reply != 0) marked as SIGNAL",
    )?;
    util::expect_empty(&b, "after refused calls")
}

/// Broadcast and signal header rules (message.md 5 steps 7-11, 4).
pub fn signal_header(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let bc = DST_ID_BROADCAST;
    send_err(
        &a,
        &MsgBuilder::new(bc).vec(b"x"),
        Errno::EBADMSG,
        "broadcast without SIGNAL",
    )?;
    send_err(
        &a,
        &bloom(MsgBuilder::new(bc).flags(MSG_SIGNAL).timeout_ns(5)),
        Errno::ENOTUNIQ,
        "broadcast signal with timeout_ns/cookie_reply != 0",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id()).flags(MSG_SIGNAL),
        Errno::EBADMSG,
        "unicast signal without bloom filter",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(bc).flags(MSG_SIGNAL),
        Errno::EBADMSG,
        "broadcast signal without bloom filter",
    )?;
    send_err(
        &a,
        &bloom(MsgBuilder::new(b.id())),
        Errno::EBADMSG,
        "bloom filter without SIGNAL",
    )?;
    let (_r, w) = util::pipe()?;
    send_err(
        &a,
        &bloom(MsgBuilder::new(bc).flags(MSG_SIGNAL)).fds(&[std::os::fd::AsRawFd::as_raw_fd(&w)]),
        Errno::ENOTUNIQ,
        "broadcast with FDs",
    )?;
    send_err(
        &a,
        &bloom(MsgBuilder::new(bc).flags(MSG_SIGNAL)).dst_name("org.example.Name"),
        Errno::EBADMSG,
        "DST_NAME on a broadcast",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id())
            .flags(MSG_SIGNAL)
            .bloom_filter(0, &[0; BLOOM_SIZE + 8]),
        Errno::EDOM,
        "bloom filter larger than the bus's",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id())
            .flags(MSG_SIGNAL)
            .bloom_filter(0, &[0; 8]),
        Errno::EDOM,
        "bloom filter smaller than the bus's",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id())
            .flags(MSG_SIGNAL)
            .bloom_filter(0, &[0; BLOOM_SIZE - 4]),
        Errno::EFAULT,
        "bloom data length not a multiple of 8",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id())
            .flags(MSG_SIGNAL)
            .item(ITEM_BLOOM_FILTER, &[0; 4]),
        Errno::EINVAL,
        "bloom filter item shorter than 8 bytes",
    )?;
    util::expect_empty(&b, "after refused signals")
}

/// A unicast signal is only delivered through a match; without any match
/// entry it is dropped silently and SEND returns 0 (message.md 7.1, 9.2).
pub fn unicast_signal_dropped(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send(
        &a,
        &bloom(MsgBuilder::new(b.id()).flags(MSG_SIGNAL).vec(b"sig")),
        "unicast signal",
    )?;
    util::expect_empty(&b, "receiver without matches")
}

/// Destinations: dst_id 0 without DST_NAME is EDESTADDRREQ, unknown IDs
/// ENXIO, names without owner ESRCH, invalid names EINVAL.
pub fn destination(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    send_err(
        &a,
        &msg(0, 1, b"x"),
        Errno::EDESTADDRREQ,
        "dst_id 0 without DST_NAME",
    )?;
    for id in [NO_SUCH_ID, b.id() + 1000, u64::MAX - 1] {
        send_err(
            &a,
            &msg(id, 1, b"x"),
            Errno::ENXIO,
            &format!("dst_id {id:#x} (no such connection)"),
        )?;
    }
    send_err(
        &a,
        &msg(0, 1, b"x").dst_name("org.example.Nobody"),
        Errno::ESRCH,
        "DST_NAME without owner",
    )?;
    send_err(
        &a,
        &msg(0, 1, b"x")
            .dst_name("org.example.Nobody")
            .flags(MSG_NO_AUTO_START),
        Errno::ESRCH,
        "DST_NAME without owner, NO_AUTO_START",
    )?;
    send_err(
        &a,
        &msg(b.id(), 1, b"x").dst_name("org.example.Nobody"),
        Errno::ESRCH,
        "DST_NAME without owner and a dst_id",
    )?;
    for bad in ["nodots", ".a.b", "a..b", "a.b.", "1a.b", "a.b.*", "a.b/c"] {
        send_err(
            &a,
            &msg(0, 1, b"x").dst_name(bad),
            Errno::EINVAL,
            &format!("invalid DST_NAME {bad:?}"),
        )?;
    }
    util::expect_empty(&b, "after refused destinations")
}

/// Sending to a connection that closed or said BYEBYE: ENXIO; sending
/// from a disconnected connection: ECONNRESET.
pub fn peer_gone(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    let (bid, cid) = (b.id(), c.id());
    send(&a, &msg(bid, 1, b"x"), "SEND before the peer closes")?;
    expect_ok("close receiver", b.close())?;
    send_err(
        &a,
        &msg(bid, 2, b"x"),
        Errno::ENXIO,
        "SEND to a closed connection",
    )?;
    expect_ok("BYEBYE", c.byebye())?;
    send_err(
        &a,
        &msg(cid, 3, b"x"),
        Errno::ENXIO,
        "SEND to a connection after its BYEBYE",
    )?;
    let d = ctx.hello()?;
    expect_ok("BYEBYE of the sender", a.byebye())?;
    send_err(
        &a,
        &msg(d.id(), 4, b"x"),
        Errno::ECONNRESET,
        "SEND from a disconnected connection",
    )?;
    util::expect_empty(&d, "no message from a disconnected sender")
}

/// `kdbus_msg.size` limits and the message address (message.md 2, abi.md
/// 2): below 64 EINVAL, above 32 KiB EMSGSIZE, exactly 32 KiB accepted;
/// unaligned or unreadable addresses EFAULT.
pub fn msg_size(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    for size in [0u64, 8, 56, 63] {
        send_err(
            &a,
            &msg(b.id(), 1, b"x").with_size(size),
            Errno::EINVAL,
            &format!("msg.size {size}"),
        )?;
    }
    // 1022 one-byte vectors: 64 + 1022 * 32 = 32768 bytes, the maximum.
    let mut m = MsgBuilder::new(b.id()).cookie(7);
    for i in 0..1022u32 {
        m = m.vec(&[(i % 251) as u8]);
    }
    ensure_eq!(m.size(), 32768, "size of the 1022-vector message");
    send(&a, &m, "SEND of a 32768-byte message")?;
    let r = util::recv(&b, "32768-byte message")?;
    let got = util::parse(&r, "32768-byte message")?;
    util::check_layout(
        &got,
        &r.info(),
        &m.delivered_layout(&[]),
        "32768-byte message",
    )?;
    let want: Vec<u8> = (0..1022u32).map(|i| (i % 251) as u8).collect();
    ensure_eq!(
        got.data().map_err(|e| e.to_string())?,
        want,
        "payload of 1022 vectors"
    );
    expect_ok("FREE", r.free())?;
    let big = m.vec(b"y");
    ensure_eq!(big.size(), 32800, "size with one more vector");
    send_err(&a, &big, Errno::EMSGSIZE, "msg.size 32800")?;
    let huge = msg(b.id(), 1, b"x").raw(&[0; 40000]).with_size(40064);
    send_err(&a, &huge, Errno::EMSGSIZE, "msg.size 40064")?;

    // Addresses.
    let mut m = msg(b.id(), 9, b"x");
    let base = m.cmd_mut().as_mut_ptr() as u64;
    for (addr, what) in [
        (base + 4, "unaligned message address"),
        (base + 1, "message address + 1"),
        (0, "message address 0"),
        (8, "message address 8 (unmapped)"),
        (0xffff_ffff_ff00_0000, "kernel message address"),
    ] {
        let mut cmd = CmdBuf::send(0, addr);
        expect_errno(what, a.send_raw(&mut cmd), Errno::EFAULT)?;
    }
    util::expect_empty(&b, "after refused sizes and addresses")
}

/// `kdbus_cmd_send` itself: size limits, flags, items, CANCEL_FD rules,
/// unaligned pointer (abi.md 8, message.md 3).
pub fn cmd_send(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mut m = msg(b.id(), 1, b"x");
    let addr = m.cmd_mut().as_mut_ptr() as u64;
    let mut c = CmdBuf::send(0, addr);
    c.set_size(55);
    expect_errno("kdbus_cmd_send.size 55", a.send_raw(&mut c), Errno::EINVAL)?;
    let mut c = CmdBuf::send(0, addr);
    c.push_raw(&[0; 32768]);
    expect_errno(
        "kdbus_cmd_send.size > 32768",
        a.send_raw(&mut c),
        Errno::EMSGSIZE,
    )?;
    for flag in [2u64, 1 << 8] {
        let mut c = CmdBuf::send(flag, addr);
        expect_errno(
            &format!("SEND flag {flag:#x}"),
            a.send_raw(&mut c),
            Errno::EINVAL,
        )?;
    }
    for ty in [ITEM_PAYLOAD_VEC, ITEM_FDS, ITEM_NAME, 0x1234] {
        let mut c = CmdBuf::send(0, addr);
        c.push_u64(ty, 0);
        expect_errno(
            &format!("item type {ty:#x} in kdbus_cmd_send"),
            a.send_raw(&mut c),
            Errno::EINVAL,
        )?;
    }
    let mut c = CmdBuf::send(0, addr);
    c.push_item(ITEM_CANCEL_FD, &[0; 8]);
    expect_errno(
        "CANCEL_FD with an 8-byte payload",
        a.send_raw(&mut c),
        Errno::EINVAL,
    )?;
    let mut c = CmdBuf::send(0, addr);
    c.push_cancel_fd(-1);
    expect_errno("CANCEL_FD -1", a.send_raw(&mut c), Errno::EBADF)?;
    let mut c = CmdBuf::send(0, addr);
    c.push_cancel_fd(9999);
    expect_errno("CANCEL_FD not open", a.send_raw(&mut c), Errno::EBADF)?;
    let mf = util::memfd(b"", 0)?;
    let mut c = CmdBuf::send(0, addr);
    c.push_cancel_fd(std::os::fd::AsRawFd::as_raw_fd(&mf));
    expect_errno(
        "CANCEL_FD without poll support (memfd)",
        a.send_raw(&mut c),
        Errno::EINVAL,
    )?;
    // SAFETY: the kernel must refuse the unaligned pointer without
    // touching memory; the buffer is large enough anyway.
    let mut c = CmdBuf::send(0, addr);
    c.push_raw(&[0; 8]);
    let r = unsafe {
        kdbus::ioctl_ptr(
            &a,
            kdbus::uapi::KDBUS_CMD_SEND,
            c.as_mut_ptr().add(4).cast(),
        )
    };
    expect_errno("unaligned kdbus_cmd_send", r, Errno::EFAULT)?;
    util::expect_empty(&b, "after refused commands")?;
    // A valid CANCEL_FD on a plain send is resolved and otherwise unused.
    let efd = util::eventfd()?;
    let r = expect_ok(
        "SEND with an eventfd CANCEL_FD",
        a.send_with(&m, 0, Some(std::os::fd::AsRawFd::as_raw_fd(&efd))),
    )?;
    ensure!(
        r.reply.is_empty_marker(a.pool_size()),
        "reply of a plain SEND: {:?}",
        r.reply
    );
    ensure_eq!(
        util::recv_data(&b, a.id(), 1, "send with cancel fd")?,
        b"x".to_vec(),
        "payload"
    );
    Ok(())
}

/// Item framing inside the message (abi.md 5.1, 5.2, 10).
pub fn item_framing(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let id = b.id();
    let cases: Vec<(&str, MsgBuilder)> = vec![
        (
            "item size 8",
            msg(id, 1, b"x").item_with_size(8, ITEM_PAYLOAD_VEC, &[0; 16]),
        ),
        (
            "item size 0",
            msg(id, 1, b"x").item_with_size(0, ITEM_PAYLOAD_VEC, &[0; 16]),
        ),
        (
            "item extending past msg.size",
            msg(id, 1, b"x").item_with_size(64, ITEM_DST_NAME, b"org.a.b\0"),
        ),
        (
            "8 trailing zero bytes after the items",
            msg(id, 1, b"x").raw(&[0; 8]),
        ),
        ("16 trailing zero bytes", msg(id, 1, b"x").raw(&[0; 16])),
        ("item type 0", msg(id, 1, b"x").item(0, &[0; 8])),
        (
            "unknown item type 0x1234",
            msg(id, 1, b"x").item(0x1234, &[0; 8]),
        ),
        (
            "unknown item type 0x8fff",
            msg(id, 1, b"x").item(0x8fff, &[0; 8]),
        ),
        (
            "MAKE_NAME in a message",
            msg(id, 1, b"x").item(ITEM_MAKE_NAME, b"0-abc\0"),
        ),
        (
            "CANCEL_FD in a message",
            msg(id, 1, b"x").item(ITEM_CANCEL_FD, &0i32.to_ne_bytes()),
        ),
        (
            "PAYLOAD_OFF from userspace",
            msg(id, 1, b"x").item(ITEM_PAYLOAD_OFF, &[0; 16]),
        ),
        (
            "TIMESTAMP from userspace",
            msg(id, 1, b"x").item(ITEM_TIMESTAMP, &[0; 24]),
        ),
        (
            "REPLY_DEAD from userspace",
            msg(id, 1, b"x").item(ITEM_REPLY_DEAD, &[]),
        ),
        (
            "NEGOTIATE item in a normal message",
            msg(id, 1, b"x").negotiate(&[ITEM_PAYLOAD_VEC]),
        ),
        (
            "PAYLOAD_VEC with 8-byte payload",
            msg(id, 1, b"x").item(ITEM_PAYLOAD_VEC, &[1; 8]),
        ),
        (
            "PAYLOAD_VEC with 24-byte payload",
            msg(id, 1, b"x").item(ITEM_PAYLOAD_VEC, &[1; 24]),
        ),
        (
            "PAYLOAD_MEMFD with 16-byte payload",
            msg(id, 1, b"x").item(ITEM_PAYLOAD_MEMFD, &[1; 16]),
        ),
        (
            "FDS with 5-byte payload",
            msg(id, 1, b"x").item(ITEM_FDS, &[0; 5]),
        ),
        (
            "DST_NAME without NUL",
            msg(id, 1, b"x").item(ITEM_DST_NAME, b"org.a.b"),
        ),
        (
            "DST_NAME with padding in size",
            msg(id, 1, b"x").item(ITEM_DST_NAME, b"org.a\0\0\0"),
        ),
        ("empty DST_NAME", msg(id, 1, b"x").item(ITEM_DST_NAME, b"")),
        (
            "two DST_NAME items",
            msg(id, 1, b"x").dst_name("org.a.b").dst_name("org.a.c"),
        ),
        (
            "two BLOOM_FILTER items",
            bloom(bloom(MsgBuilder::new(id).flags(MSG_SIGNAL))),
        ),
    ];
    for (what, m) in &cases {
        send_err(&a, m, Errno::EINVAL, what)?;
    }
    let (_r, w) = util::pipe()?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let hb = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    send_err(
        &a,
        &msg(hb.id(), 1, b"x").fds(&[wfd]).fds(&[wfd]),
        Errno::EINVAL,
        "two FDS items",
    )?;
    util::expect_empty(&b, "after malformed items")?;
    util::expect_empty(&hb, "after two FDS items")?;
    // The connection still works.
    send(&a, &msg(id, 3, b"z"), "SEND after the malformed messages")?;
    ensure_eq!(
        util::recv_data(&b, a.id(), 3, "after framing")?,
        b"z".to_vec(),
        "payload"
    );
    Ok(())
}

/// A message whose last item is not 8-byte sized may omit its padding in
/// `size` (abi.md 5.2).
pub fn unpadded_size(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello(ctx, HELLO_ACCEPT_FD, 0)?;
    let (_r, w) = util::pipe()?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let m = msg(b.id(), 8, b"pad").fds(&[wfd]);
    ensure_eq!(m.size(), 64 + 32 + 24, "padded size");
    let m = m.with_size(64 + 32 + 20);
    send(&a, &m, "SEND with the unpadded size")?;
    let r = util::recv(&b, "unpadded message")?;
    let got = util::parse(&r, "unpadded message")?;
    ensure_eq!(
        got.item_types(),
        vec![ITEM_PAYLOAD_OFF, ITEM_FDS],
        "item types"
    );
    ensure_eq!(
        got.size,
        64 + 32 + 20,
        "delivered size (unpadded FDS item last)"
    );
    let fds = got.fds().unwrap_or_default();
    util::close_fds(&fds);
    expect_ok("FREE", r.free())?;
    send_err(
        &a,
        &m.with_size(64 + 32 + 19),
        Errno::EINVAL,
        "size cutting into the last item",
    )
}

/// PAYLOAD_VEC limits: zero size EINVAL; the total of all vectors (null
/// ones included) at most 2 MiB (EMSGSIZE above and on overflow).
pub fn vec_limits(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let id = b.id();
    const MIB2: u64 = 2 * 1024 * 1024;
    send_err(
        &a,
        &MsgBuilder::new(id).vec(b""),
        Errno::EINVAL,
        "data vector of size 0",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(id).null_vec(0),
        Errno::EINVAL,
        "null vector of size 0",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(id).null_vec(MIB2 + 1),
        Errno::EMSGSIZE,
        "null vector of 2 MiB + 1",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(id).null_vec(MIB2).vec(b"x"),
        Errno::EMSGSIZE,
        "2 MiB null vector + 1 data byte",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(id).null_vec(u64::MAX).null_vec(2),
        Errno::EMSGSIZE,
        "vector sizes overflowing u64",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(id).vec_raw(MIB2 + 8, 0x1000),
        Errno::EMSGSIZE,
        "data vector of 2 MiB + 8 (bad address too)",
    )?;
    util::expect_empty(&b, "after oversized vectors")?;
    // Exactly 2 MiB in total: accepted; null vectors materialise size % 8.
    let m = MsgBuilder::new(id)
        .cookie(2)
        .null_vec(MIB2 - 16 - 5)
        .vec(b"0123456789abcdef")
        .null_vec(5);
    send(&a, &m, "SEND with vectors of exactly 2 MiB")?;
    let r = util::recv(&b, "2 MiB of vectors")?;
    let got = util::parse(&r, "2 MiB of vectors")?;
    util::check_layout(
        &got,
        &r.info(),
        &m.delivered_layout(&[]),
        "2 MiB of vectors",
    )?;
    expect_ok("FREE", r.free())
}

/// A data vector outside valid user memory: EFAULT, nothing delivered.
pub fn vec_efault(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let id = b.id();
    for (size, addr, what) in [
        (16u64, 0xffff_8000_0000_0000u64, "kernel address"),
        (16, u64::MAX - 7, "range wrapping around"),
        (16, 0x1000, "unmapped low address"),
        (8, 8, "address 8"),
    ] {
        send_err(
            &a,
            &MsgBuilder::new(id).vec_raw(size, addr),
            Errno::EFAULT,
            what,
        )?;
        send_err(
            &a,
            &MsgBuilder::new(id).vec(b"ok").vec_raw(size, addr),
            Errno::EFAULT,
            &format!("{what} after a good vector"),
        )?;
    }
    // A vector whose end lies past a mapping.
    let pg = kdbus::page_size();
    let map = expect_ok(
        "mmap",
        kdbus::Mmap::map(
            std::fs::File::open("/dev/zero").map_err(|e| e.to_string())?,
            pg,
            kdbus::ProtFlags::PROT_READ,
            kdbus::MapFlags::MAP_PRIVATE,
            0,
        ),
    )?;
    let start = map.as_ptr() as u64 + pg as u64 - 8;
    drop(map);
    send_err(
        &a,
        &MsgBuilder::new(id).vec_raw(16, start),
        Errno::EFAULT,
        "vector in unmapped memory",
    )?;
    util::expect_empty(&b, "after faulting vectors")
}

/// Negotiation through SEND (abi.md 9): the command alone (msg_address 0),
/// both layers, and a negotiating message under a normal command.
pub fn negotiate(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mut c = CmdBuf::send(FLAG_NEGOTIATE, 0);
    let off = c.push_negotiate(&[ITEM_CANCEL_FD, ITEM_PAYLOAD_VEC, ITEM_NEGOTIATE, 0x4242]);
    expect_ok("SEND negotiation without a message", a.send_raw(&mut c))?;
    ensure_eq_hex!(c.flags(), SEND_SYNC_REPLY, "negotiated SEND flags");
    ensure_eq!(
        c.negotiate_entries(off, 4),
        vec![ITEM_CANCEL_FD, 0, ITEM_NEGOTIATE, 0],
        "negotiated kdbus_cmd_send item types"
    );
    let types = [
        ITEM_PAYLOAD_VEC,
        ITEM_CANCEL_FD,
        ITEM_FDS,
        ITEM_MAKE_NAME,
        ITEM_NEGOTIATE,
        ITEM_DST_NAME,
        ITEM_PAYLOAD_MEMFD,
        ITEM_BLOOM_FILTER,
        ITEM_PAYLOAD_OFF,
    ];
    let mut m = MsgBuilder::new(b.id())
        .flags(FLAG_NEGOTIATE)
        .negotiate(&types);
    let mut c = CmdBuf::send(FLAG_NEGOTIATE, m.cmd_mut().as_mut_ptr() as u64);
    expect_ok(
        "SEND negotiation of command and message",
        a.send_raw(&mut c),
    )?;
    ensure_eq_hex!(
        m.get_flags(),
        MSG_EXPECT_REPLY | MSG_NO_AUTO_START | MSG_SIGNAL,
        "negotiated message flags"
    );
    ensure_eq!(
        m.cmd().negotiate_entries(64, types.len()),
        vec![
            ITEM_PAYLOAD_VEC,
            0,
            ITEM_FDS,
            0,
            ITEM_NEGOTIATE,
            ITEM_DST_NAME,
            ITEM_PAYLOAD_MEMFD,
            ITEM_BLOOM_FILTER,
            0
        ],
        "negotiated message item types"
    );
    util::expect_empty(&b, "after negotiation")?;
    let mut m = msg(b.id(), 1, b"x").flags(FLAG_NEGOTIATE);
    let mut c = CmdBuf::send(0, m.cmd_mut().as_mut_ptr() as u64);
    expect_errno(
        "negotiating message under a normal command",
        a.send_raw(&mut c),
        Errno::EINVAL,
    )?;
    util::expect_empty(&b, "after a half-negotiating SEND")
}

/// SEND from a monitor is EOPNOTSUPP, checked before the argument is
/// parsed (connection.md 1.1).
pub fn not_ordinary(ctx: &Ctx) -> TestResult {
    let b = ctx.hello()?;
    let mon = util::monitor(ctx)?;
    expect_errno(
        "SEND from a monitor",
        mon.send(&msg(b.id(), 1, b"x"), 0),
        Errno::EOPNOTSUPP,
    )?;
    let mut c = CmdBuf::send(0, 0);
    c.set_size(3);
    expect_errno(
        "malformed SEND from a monitor",
        mon.send_raw(&mut c),
        Errno::EOPNOTSUPP,
    )?;
    // Monitors are not addressable by ID.
    let a = ctx.hello()?;
    send_err(
        &a,
        &msg(mon.id(), 1, b"x"),
        Errno::ENXIO,
        "SEND to a monitor's ID",
    )?;
    util::expect_empty(&b, "after monitor sends")
}

/// The first failing check decides the errno (message.md 5).
pub fn validation_order(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let id = b.id();
    const MIB3: u64 = 3 * 1024 * 1024;
    let (_r, w) = util::pipe()?;
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let unsealed = util::memfd(b"data", 0)?;
    let ufd = std::os::fd::AsRawFd::as_raw_fd(&unsealed);
    let cases: Vec<(&str, MsgBuilder, Errno)> = vec![
        (
            "negative memfd fd (parsing) before a wrong src_id (step 6)",
            msg(id, 1, b"x").src_id(NO_SUCH_ID).memfd(-1, 0, 4),
            Errno::EBADF,
        ),
        (
            "wrong src_id (6) before a broadcast without SIGNAL (7)",
            MsgBuilder::new(DST_ID_BROADCAST).src_id(NO_SUCH_ID),
            Errno::EINVAL,
        ),
        (
            "payload_type 0 (7.1) before a broadcast without SIGNAL (7.2)",
            MsgBuilder::new(DST_ID_BROADCAST).payload_type(0),
            Errno::EINVAL,
        ),
        (
            "broadcast without SIGNAL (7.2) before a faulting vector (8)",
            MsgBuilder::new(DST_ID_BROADCAST).vec_raw(8, 0x1000),
            Errno::EBADMSG,
        ),
        (
            "EXPECT_REPLY without timeout (7.3) before oversized vectors (8)",
            MsgBuilder::new(id).flags(MSG_EXPECT_REPLY).null_vec(MIB3),
            Errno::EINVAL,
        ),
        (
            "oversized vectors (8) before dst_id 0 without name (10)",
            MsgBuilder::new(0).null_vec(MIB3),
            Errno::EMSGSIZE,
        ),
        (
            "17 FDs (8) before an invalid DST_NAME later in the message",
            MsgBuilder::new(id).fds(&[wfd; 17]).dst_name("nodots"),
            Errno::EMFILE,
        ),
        (
            "invalid DST_NAME (8) before 17 FDs later in the message",
            MsgBuilder::new(id).dst_name("nodots").fds(&[wfd; 17]),
            Errno::EINVAL,
        ),
        (
            "bloom filter without SIGNAL (9) before dst_id 0 (10)",
            bloom(MsgBuilder::new(0)),
            Errno::EBADMSG,
        ),
        (
            "dst_id 0 without name (10) before an unsealed memfd (13)",
            MsgBuilder::new(0).memfd(ufd, 0, 4),
            Errno::EDESTADDRREQ,
        ),
        (
            "unsealed memfd (13) before an unknown destination (14)",
            MsgBuilder::new(NO_SUCH_ID).memfd(ufd, 0, 4),
            Errno::ETXTBSY,
        ),
        (
            "unknown FD (13) before an unknown destination (14)",
            MsgBuilder::new(NO_SUCH_ID).fds(&[9999]),
            Errno::EBADF,
        ),
        (
            "memfd before FD in item order (13)",
            MsgBuilder::new(NO_SUCH_ID).memfd(ufd, 0, 4).fds(&[9999]),
            Errno::ETXTBSY,
        ),
        (
            "FD before memfd in item order (13)",
            MsgBuilder::new(NO_SUCH_ID).fds(&[9999]).memfd(ufd, 0, 4),
            Errno::EBADF,
        ),
        (
            "vector fault (8) before unknown destination",
            MsgBuilder::new(NO_SUCH_ID).vec_raw(8, 0xffff_8000_0000_0000),
            Errno::EFAULT,
        ),
    ];
    for (what, m, want) in &cases {
        send_err(&a, m, *want, what)?;
    }
    util::expect_empty(&b, "after the ordering cases")
}

/// Header fields the receiver sees unchanged: extreme priority and cookie,
/// a call's absolute timeout (message.md 14).
pub fn header_passthrough(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    for (prio, cookie) in [(i64::MIN, u64::MAX), (i64::MAX, 0), (-1, 1)] {
        send(
            &a,
            &msg(b.id(), cookie, b"p").priority(prio),
            "SEND with priority",
        )?;
        let r = util::recv(&b, "priority message")?;
        let m = util::parse(&r, "priority message")?;
        ensure_eq!(m.priority, prio, "delivered priority");
        ensure_eq_hex!(m.cookie, cookie, "delivered cookie");
        expect_ok("FREE", r.free())?;
    }
    let deadline = util::deadline_in(60_000);
    send(&a, &msg(b.id(), 77, b"c").call(deadline), "a call")?;
    let r = util::recv(&b, "a call")?;
    let m = util::parse(&r, "a call")?;
    ensure_eq_hex!(m.flags, MSG_EXPECT_REPLY, "delivered flags of a call");
    ensure_eq!(m.timeout_ns(), deadline, "delivered timeout_ns of a call");
    expect_ok("FREE", r.free())
}

/// `return_flags` of SEND: written back as 0 on success and on failures
/// after the copy-in, left alone when the command cannot even be read
/// (abi.md 8).
pub fn return_flags(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mut m = msg(b.id(), 1, b"x");
    let mut c = CmdBuf::send(0, m.cmd_mut().as_mut_ptr() as u64);
    c.set_return_flags(u64::MAX);
    expect_ok("SEND", a.send_raw(&mut c))?;
    ensure_eq_hex!(c.return_flags(), 0, "return_flags after a successful SEND");
    let mut m = msg(NO_SUCH_ID, 2, b"x");
    let mut c = CmdBuf::send(0, m.cmd_mut().as_mut_ptr() as u64);
    c.set_return_flags(u64::MAX);
    expect_errno("SEND to nobody", a.send_raw(&mut c), Errno::ENXIO)?;
    ensure_eq_hex!(
        c.return_flags(),
        0,
        "return_flags after a SEND failing in dispatch"
    );
    let mut c = CmdBuf::send(4, m.cmd_mut().as_mut_ptr() as u64);
    c.set_return_flags(u64::MAX);
    expect_errno("SEND with flag 4", a.send_raw(&mut c), Errno::EINVAL)?;
    ensure_eq_hex!(
        c.return_flags(),
        0,
        "return_flags after a SEND with a bad flag (step 5)"
    );
    let mut c = CmdBuf::send(0, m.cmd_mut().as_mut_ptr() as u64);
    c.set_return_flags(u64::MAX);
    c.set_size(40);
    expect_errno("SEND with size 40", a.send_raw(&mut c), Errno::EINVAL)?;
    ensure_eq_hex!(
        c.return_flags(),
        u64::MAX,
        "return_flags after a SEND failing at step 2"
    );
    ensure_eq!(
        util::recv_data(&b, a.id(), 1, "the message")?,
        b"x".to_vec(),
        "payload"
    );
    Ok(())
}

/// 2 MiB of real vector data (the maximum) arrive intact in a large pool.
pub fn large_payload(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_pool(ctx, 0, 0, 16 * 1024 * 1024)?;
    let half = 1024 * 1024;
    let d1: Vec<u8> = (0..half).map(|i| (i % 251) as u8).collect();
    let d2: Vec<u8> = (0..half).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    let m = MsgBuilder::new(b.id()).cookie(1).vec(&d1).vec(&d2);
    send(&a, &m, "SEND of 2 MiB")?;
    let r = util::recv(&b, "2 MiB message")?;
    let got = util::parse(&r, "2 MiB message")?;
    util::check_layout(&got, &r.info(), &m.delivered_layout(&[]), "2 MiB message")?;
    let data = got.data().map_err(|e| e.to_string())?;
    ensure!(data.len() == 2 * half, "payload length {}", data.len());
    ensure!(
        data[..half] == d1[..] && data[half..] == d2[..],
        "2 MiB payload corrupted"
    );
    expect_ok("FREE", r.free())
}

/// Vectors may point into the sender's own read-only pool mapping: a
/// received payload can be forwarded to another peer and to oneself.
pub fn from_pool(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let c = ctx.hello()?;
    let text = b"forwarded straight from the pool mapping";
    send(&c, &msg(a.id(), 1, text), "SEND to a")?;
    let r = util::recv(&a, "original")?;
    let got = util::parse(&r, "original")?;
    let (size, off) = got.payload_offs()[0].ok_or("no PAYLOAD_OFF")?;
    let addr = a.pool().as_ptr() as u64 + r.offset() + off;
    for (dst, what) in [(&b, "to another peer"), (&a, "to itself")] {
        let fwd = MsgBuilder::new(dst.id()).cookie(2).vec_raw(size, addr);
        send(&a, &fwd, &format!("SEND from the pool {what}"))?;
        let d = util::recv_data(dst, a.id(), 2, &format!("forwarded {what}"))?;
        ensure_eq!(d, text.to_vec(), "forwarded payload ({what})");
    }
    expect_ok("FREE", r.free())
}
