//! Sealed memfds passed by reference with KDBUS_ITEM_PAYLOAD_MEMFD
//! (message.md 4, 5 step 13, 10.5, 14).

use std::os::fd::{AsRawFd, OwnedFd};

use kdbus::consts::*;
use kdbus::{Connection, Errno, MemfdItem, MsgBuilder};

use super::util::{self, msg, send, send_err};
use crate::check::{expect_ok, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq};

const CONTENT: &[u8] = b"kdbus memfd payload, zero copy!!"; // 32 bytes

fn sealed(content: &[u8]) -> Result<OwnedFd, String> {
    util::memfd(content, MEMFD_SEALS)
}

fn seals_of(fd: i32) -> Result<i32, String> {
    // SAFETY: F_GET_SEALS has no side effects.
    let r = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    ensure!(r >= 0, "F_GET_SEALS on fd {fd} failed");
    Ok(r)
}

/// Receives one message, returns its memfd items (fds to be closed by the
/// caller).
fn recv_memfds(c: &Connection, flags: u64, what: &str) -> Result<Vec<MemfdItem>, String> {
    let r = util::recv_flags(c, flags, 0, what)?;
    let m = util::parse(&r, what)?;
    let v = m.memfds();
    if flags & RECV_PEEK == 0 {
        expect_ok("FREE", r.free())?;
    }
    Ok(v)
}

/// A sealed memfd arrives as a new descriptor of the same file (zero copy),
/// also at a receiver without ACCEPT_FD; the payload area holds `size % 8`
/// zero bytes for it (message.md 14).
pub fn pass(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?; // no ACCEPT_FD: memfds are delivered regardless
    let mfd = sealed(CONTENT)?;
    let m = MsgBuilder::new(b.id())
        .cookie(1)
        .vec(b"head")
        .memfd(mfd.as_raw_fd(), 0, 29)
        .vec(b"tail");
    send(&a, &m, "SEND with a memfd")?;
    let r = util::recv(&b, "memfd message")?;
    let got = util::parse(&r, "memfd message")?;
    ensure_eq!(
        got.item_types(),
        vec![ITEM_PAYLOAD_OFF, ITEM_PAYLOAD_MEMFD, ITEM_PAYLOAD_OFF],
        "item types"
    );
    ensure_eq!(got.items[1].size, 40, "PAYLOAD_MEMFD item size");
    let want = m.delivered_layout(&[]);
    util::check_layout(&got, &r.info(), &want, "memfd message")?;
    // "head" at the base, 29 % 8 = 5 zero bytes, then "tail".
    ensure_eq!(
        want.payload_offs,
        vec![(4, want.payload_base), (4, want.payload_base + 9)],
        "expected layout (self-check)"
    );
    let mf = got.memfds();
    expect_ok("FREE", r.free())?;
    ensure_eq!(mf.len(), 1, "memfd items");
    let it = mf[0];
    ensure_eq!(
        (it.start, it.size, it.pad),
        (0, 29, 0),
        "memfd item start/size/pad"
    );
    ensure!(
        it.fd >= 0 && util::fd_is_open(it.fd),
        "received memfd {} not open",
        it.fd
    );
    ensure!(
        it.fd != mfd.as_raw_fd(),
        "received memfd reuses the sender's number"
    );
    ensure!(util::fd_cloexec(it.fd)?, "received memfd lacks FD_CLOEXEC");
    ensure_eq!(
        util::file_id(it.fd)?,
        util::file_id(mfd.as_raw_fd())?,
        "file of the received memfd"
    );
    ensure_eq!(
        util::pread_all(it.fd, 0, 64)?,
        CONTENT.to_vec(),
        "content read through the received memfd"
    );
    ensure_eq!(seals_of(it.fd)?, MEMFD_SEALS, "seals of the received memfd");
    util::close_fds(&[it.fd]);
    Ok(())
}

/// start/size describe a region: passed through unchanged; the region must
/// lie inside the file (EFAULT), must not overflow (EMSGSIZE), must not be
/// empty (EINVAL).
pub fn range(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mfd = sealed(CONTENT)?;
    let fd = mfd.as_raw_fd();
    let len = CONTENT.len() as u64;
    send(
        &a,
        &MsgBuilder::new(b.id()).memfd(fd, 4, 8),
        "SEND of a memfd region",
    )?;
    let mf = recv_memfds(&b, 0, "memfd region")?;
    ensure_eq!((mf[0].start, mf[0].size), (4, 8), "region start/size");
    ensure_eq!(
        util::pread_all(mf[0].fd, 4, 8)?,
        CONTENT[4..12].to_vec(),
        "region content"
    );
    util::close_fds(&[mf[0].fd]);
    send(
        &a,
        &MsgBuilder::new(b.id()).memfd(fd, 0, len),
        "SEND of the whole file",
    )?;
    let mf = recv_memfds(&b, 0, "whole file")?;
    util::close_fds(&[mf[0].fd]);
    for (start, size, want, what) in [
        (0, len + 1, Errno::EFAULT, "region one byte past the end"),
        (len, 1, Errno::EFAULT, "region starting at the end"),
        (1 << 40, 8, Errno::EFAULT, "region far past the end"),
        (u64::MAX - 1, 4, Errno::EMSGSIZE, "start + size overflowing"),
        (0, 0, Errno::EINVAL, "size 0"),
    ] {
        send_err(
            &a,
            &MsgBuilder::new(b.id()).memfd(fd, start, size),
            want,
            what,
        )?;
    }
    util::expect_empty(&b, "after refused regions")
}

/// All four seals are required (ETXTBSY otherwise).
pub fn seals(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let all = [
        libc::F_SEAL_SHRINK,
        libc::F_SEAL_GROW,
        libc::F_SEAL_WRITE,
        libc::F_SEAL_SEAL,
    ];
    for missing in all {
        let s = MEMFD_SEALS & !missing;
        let mfd = util::memfd(CONTENT, s)?;
        send_err(
            &a,
            &MsgBuilder::new(b.id()).memfd(mfd.as_raw_fd(), 0, 8),
            Errno::ETXTBSY,
            &format!("memfd with seals {s:#x} (missing {missing:#x})"),
        )?;
    }
    let mfd = util::memfd(CONTENT, 0)?;
    send_err(
        &a,
        &MsgBuilder::new(b.id()).memfd(mfd.as_raw_fd(), 0, 8),
        Errno::ETXTBSY,
        "unsealed memfd",
    )?;
    util::expect_empty(&b, "after unsealed memfds")
}

/// Descriptors that are not memfds: EMEDIUMTYPE; bad descriptors: EBADF.
pub fn not_memfd(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let (rd, _wr) = util::pipe()?;
    let ev = util::eventfd()?;
    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    for (fd, what) in [
        (rd.as_raw_fd(), "a pipe"),
        (ev.as_raw_fd(), "an eventfd"),
        (null.as_raw_fd(), "/dev/null"),
        (a.as_raw_fd(), "a kdbus connection"),
    ] {
        send_err(
            &a,
            &MsgBuilder::new(b.id()).memfd(fd, 0, 8),
            Errno::EMEDIUMTYPE,
            what,
        )?;
    }
    send_err(
        &a,
        &MsgBuilder::new(b.id()).memfd(-1, 0, 8),
        Errno::EBADF,
        "memfd fd -1",
    )?;
    send_err(
        &a,
        &MsgBuilder::new(b.id()).memfd(100_000, 0, 8),
        Errno::EBADF,
        "memfd fd not open",
    )?;
    util::expect_empty(&b, "after non-memfds")
}

/// Up to 16 memfd items per message; 17 are E2BIG.
pub fn limit(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mfd = sealed(CONTENT)?;
    let mut m = MsgBuilder::new(b.id()).cookie(1);
    for i in 0..16u64 {
        m = m.memfd(mfd.as_raw_fd(), i, 3);
    }
    send(&a, &m, "SEND with 16 memfds")?;
    let r = util::recv(&b, "16 memfds")?;
    let got = util::parse(&r, "16 memfds")?;
    util::check_layout(&got, &r.info(), &m.delivered_layout(&[]), "16 memfds")?;
    let mf = got.memfds();
    expect_ok("FREE", r.free())?;
    ensure_eq!(mf.len(), 16, "memfd items");
    for (i, it) in mf.iter().enumerate() {
        ensure_eq!((it.start, it.size), (i as u64, 3), "memfd item {i}");
        ensure!(it.fd >= 0, "memfd item {i} fd {}", it.fd);
    }
    let fds: Vec<i32> = mf.iter().map(|i| i.fd).collect();
    util::close_fds(&fds);
    send_err(
        &a,
        &m.memfd(mfd.as_raw_fd(), 0, 1),
        Errno::E2BIG,
        "17 memfds",
    )?;
    util::expect_empty(&b, "after 17 memfds")
}

/// PEEK installs no memfd descriptor (-1); RECV does.
pub fn peek(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mfd = sealed(CONTENT)?;
    send(
        &a,
        &msg(b.id(), 1, b"x").memfd(mfd.as_raw_fd(), 0, 8),
        "SEND",
    )?;
    let before = util::open_fd_count()?;
    let mf = recv_memfds(&b, RECV_PEEK, "PEEK")?;
    ensure_eq!(mf.len(), 1, "memfd items on PEEK");
    ensure_eq!(mf[0].fd, -1, "memfd fd after PEEK");
    ensure_eq!(
        util::open_fd_count()?,
        before,
        "open descriptors after PEEK"
    );
    let mf = recv_memfds(&b, 0, "RECV")?;
    ensure!(mf[0].fd >= 0, "memfd fd after RECV: {}", mf[0].fd);
    ensure_eq!(
        util::open_fd_count()?,
        before + 1,
        "open descriptors after RECV"
    );
    util::close_fds(&[mf[0].fd]);
    Ok(())
}

/// The kernel keeps the memfd from SEND to RECV: the sender may close it
/// at once.
pub fn sender_closes(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = ctx.hello()?;
    let mfd = sealed(CONTENT)?;
    let id = util::file_id(mfd.as_raw_fd())?;
    send(
        &a,
        &MsgBuilder::new(b.id()).memfd(mfd.as_raw_fd(), 0, 32),
        "SEND",
    )?;
    std::mem::drop(mfd);
    let mf = recv_memfds(&b, 0, "memfd of a closed descriptor")?;
    ensure_eq!(util::file_id(mf[0].fd)?, id, "file of the received memfd");
    ensure_eq!(
        util::pread_all(mf[0].fd, 0, 32)?,
        CONTENT.to_vec(),
        "content"
    );
    util::close_fds(&[mf[0].fd]);
    Ok(())
}
