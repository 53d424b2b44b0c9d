//! Helpers shared by the message-path tests (SEND/RECV, pool, fds, memfds,
//! replies, info, quotas, races).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{
    monotonic_ns, poll_once, Bloom, BloomFilter, BloomMask, BloomParams, Connection, Errno, Layout,
    MatchRule, Message, MsgBuilder, MsgInfo, NameChange, Notification, NotifyId, PollFlags,
    Received, SendReply,
};

use crate::check::{errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

/// A connection on the test bus with HELLO `flags`, `attach_flags_recv`
/// and the default pool size.
pub fn hello(ctx: &Ctx, flags: u64, attach_recv: u64) -> Result<Connection, String> {
    hello_pool(ctx, flags, attach_recv, POOL_SIZE)
}

/// A connection on the test bus with the given pool size.
pub fn hello_pool(
    ctx: &Ctx,
    flags: u64,
    attach_recv: u64,
    pool: u64,
) -> Result<Connection, String> {
    expect_ok(
        &format!("HELLO flags {flags:#x} attach_recv {attach_recv:#x} pool {pool:#x}"),
        Connection::hello(ctx.endpoint(), flags, 0, attach_recv, pool),
    )
}

/// A connection with its HELLO slice already freed (so the pool is one free
/// region).
pub fn hello_clean(
    ctx: &Ctx,
    flags: u64,
    attach_recv: u64,
    pool: u64,
) -> Result<Connection, String> {
    let c = hello_pool(ctx, flags, attach_recv, pool)?;
    expect_ok("FREE of the HELLO slice", c.free(c.hello_reply().offset))?;
    Ok(c)
}

/// Sends `m` (SEND flags 0) and checks the plain-send output: `reply` is
/// the empty marker and `return_flags` is 0.
pub fn send(c: &Connection, m: &MsgBuilder, what: &str) -> Result<SendReply, String> {
    let r = expect_ok(what, c.send(m, 0))?;
    ensure!(
        r.reply.is_empty_marker(c.pool_size()),
        "{what}: kdbus_cmd_send.reply is {:?}, expected the empty marker {{offset {:#x}, 0, 0}}",
        r.reply,
        c.pool_size()
    );
    ensure_eq!(r.return_flags, 0, "{what}: kdbus_cmd_send.return_flags");
    Ok(r)
}

/// Expects `m` to be refused with `want`.
pub fn send_err(c: &Connection, m: &MsgBuilder, want: Errno, what: &str) -> TestResult {
    expect_errno(what, c.send(m, 0), want)
}

/// Receives one message (no flags), which must be there.
pub fn recv<'a>(c: &'a Connection, what: &str) -> Result<Received<'a>, String> {
    recv_flags(c, 0, 0, what)
}

/// RECV with flags and priority, which must succeed.
pub fn recv_flags<'a>(
    c: &'a Connection,
    flags: u64,
    prio: i64,
    what: &str,
) -> Result<Received<'a>, String> {
    expect_ok(&format!("RECV ({what})"), c.recv(flags, prio))
}

/// Expects an empty queue (RECV fails with EAGAIN).
pub fn expect_empty(c: &Connection, what: &str) -> TestResult {
    expect_errno(
        &format!("RECV on an empty queue ({what})"),
        c.recv(0, 0),
        Errno::EAGAIN,
    )
}

/// Parses a received message, failing the test on malformed data.
pub fn parse<'a>(r: &Received<'a>, what: &str) -> Result<Message<'a>, String> {
    r.message()
        .map_err(|e| format!("{what}: malformed message at {:?}: {e}", r.info()))
}

/// Parses the message in the slice `info` of `c`'s pool.
pub fn parse_at<'a>(c: &'a Connection, info: &MsgInfo, what: &str) -> Result<Message<'a>, String> {
    c.message(info)
        .map_err(|e| format!("{what}: malformed message at {info:?}: {e}"))
}

/// Receives one message, checks it came from `src` with `cookie`, and
/// returns its data bytes; FREEs the slice.
pub fn recv_data(c: &Connection, src: u64, cookie: u64, what: &str) -> Result<Vec<u8>, String> {
    let r = recv(c, what)?;
    let m = parse(&r, what)?;
    ensure_eq!(m.src_id, src, "{what}: src_id");
    ensure_eq!(m.cookie, cookie, "{what}: cookie");
    let d = m.data().map_err(|e| format!("{what}: {e}"))?;
    expect_ok(&format!("FREE ({what})"), r.free())?;
    Ok(d)
}

/// Checks a delivered message against the expected layout: `size`, the
/// PAYLOAD_OFF items, the slice size, and that every byte between
/// `msg.size` and the end of the slice that is not vector data is zero.
pub fn check_layout(m: &Message, info: &MsgInfo, want: &Layout, what: &str) -> TestResult {
    ensure_eq!(m.size, want.msg_size, "{what}: delivered kdbus_msg.size");
    let offs: Vec<Option<(u64, u64)>> = want.payload_offs.iter().map(|p| Some(*p)).collect();
    ensure_eq!(
        m.payload_offs(),
        offs,
        "{what}: PAYLOAD_OFF items {{size, offset}}"
    );
    ensure_eq!(
        info.msg_size,
        want.slice_size,
        "{what}: msg_info.msg_size (slice size)"
    );
    ensure_eq!(
        m.slice.len() as u64,
        want.slice_size,
        "{what}: slice length"
    );
    // Zero padding and null-vector bytes: everything in the tail not
    // covered by a data vector.
    let mut covered = vec![false; m.slice.len()];
    for (size, offset) in &want.payload_offs {
        if *offset != kdbus::PAYLOAD_OFF_NULL {
            for b in &mut covered[*offset as usize..(*offset + *size) as usize] {
                *b = true;
            }
        }
    }
    for (i, byte) in m.slice.iter().enumerate().skip(m.size as usize) {
        ensure!(
            covered[i] || *byte == 0,
            "{what}: byte {i} of the slice (padding or null-vector area) is {byte:#x}, not 0"
        );
    }
    Ok(())
}

/// An absolute CLOCK_MONOTONIC deadline `ms` milliseconds from now.
pub fn deadline_in(ms: u64) -> u64 {
    monotonic_ns() + ms * 1_000_000
}

/// Waits up to `ms` for POLLIN on `c`.
pub fn wait_readable(c: &Connection, ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let t = left.as_millis().min(u16::MAX as u128) as u16;
        match poll_once(c, PollFlags::POLLIN, t) {
            Ok(ev) if ev.contains(PollFlags::POLLIN) => return true,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
        if Instant::now() >= end {
            return false;
        }
    }
}

/// Waits up to `ms` for POLLIN on `c` and fails the test otherwise.
pub fn expect_readable(c: &Connection, ms: u64, what: &str) -> TestResult {
    ensure!(
        wait_readable(c, ms),
        "{what}: connection {} not readable (POLLIN) within {ms} ms",
        c.id()
    );
    Ok(())
}

/// A sealable memfd holding `content`, with `seals` added (`F_ADD_SEALS`,
/// skipped for 0).
pub fn memfd(content: &[u8], seals: i32) -> Result<OwnedFd, String> {
    let name = CString::new("kdbus-test").unwrap();
    // SAFETY: plain syscall with a valid NUL-terminated name.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", errno_name(Errno::last())));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut off = 0;
    while off < content.len() {
        let n = expect_ok(
            "write to the memfd",
            nix::unistd::write(&fd, &content[off..]),
        )?;
        off += n;
    }
    if seals != 0 {
        // SAFETY: fcntl on an owned descriptor.
        let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
        if r < 0 {
            return Err(format!(
                "F_ADD_SEALS {seals:#x}: {}",
                errno_name(Errno::last())
            ));
        }
    }
    Ok(fd)
}

/// Reads `len` bytes at `off` of `fd` with pread.
pub fn pread_all(fd: RawFd, off: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    // SAFETY: the buffer is valid for `len` bytes.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len, off as libc::off_t) };
    if n < 0 {
        return Err(format!("pread on fd {fd}: {}", errno_name(Errno::last())));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `(st_dev, st_ino)` of a descriptor.
pub fn file_id(fd: RawFd) -> Result<(u64, u64), String> {
    // SAFETY: fstat into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes.
    let r = unsafe { libc::fstat(fd, &mut st) };
    if r < 0 {
        return Err(format!("fstat on fd {fd}: {}", errno_name(Errno::last())));
    }
    Ok((st.st_dev, st.st_ino))
}

/// Whether `fd` is open in this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD has no side effects.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Whether `fd` has FD_CLOEXEC set.
pub fn fd_cloexec(fd: RawFd) -> Result<bool, String> {
    // SAFETY: F_GETFD has no side effects.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if r < 0 {
        return Err(format!("F_GETFD on fd {fd}: {}", errno_name(Errno::last())));
    }
    Ok(r & libc::FD_CLOEXEC != 0)
}

/// The number of open descriptors of this process.
pub fn open_fd_count() -> Result<usize, String> {
    let n = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| format!("read /proc/self/fd: {e}"))?
        .count();
    Ok(n - 1) // the directory's own descriptor
}

/// Closes descriptors handed to us by the kernel (ignores -1).
pub fn close_fds(fds: &[i32]) {
    for &fd in fds {
        if fd >= 0 {
            // SAFETY: the descriptor was installed for us and is not owned
            // by any Rust object.
            unsafe { libc::close(fd) };
        }
    }
}

/// A non-blocking pipe `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    expect_ok(
        "pipe2",
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK),
    )
}

/// An eventfd (non-blocking, close-on-exec).
pub fn eventfd() -> Result<OwnedFd, String> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(format!("eventfd: {}", errno_name(Errno::last())));
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads from a non-blocking descriptor: `Ok(Some(n))` bytes, `Ok(None)`
/// for EAGAIN.
pub fn try_read(fd: impl AsFd, buf: &mut [u8]) -> Result<Option<usize>, String> {
    match nix::unistd::read(fd, buf) {
        Ok(n) => Ok(Some(n)),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(format!("read: {}", errno_name(e))),
    }
}

/// Waits up to `ms` until the pipe read end `rd` reports EOF (every write
/// end closed); returns whether it did.
pub fn wait_pipe_eof(rd: &OwnedFd, ms: u64) -> Result<bool, String> {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut buf = [0u8; 64];
    loop {
        if try_read(rd, &mut buf)? == Some(0) {
            return Ok(true);
        }
        if Instant::now() >= end {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Signal handler bookkeeping for the interrupted-call tests.
pub static SIGNAL_HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNAL_HITS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a counting SIGUSR1 handler, with or without `SA_RESTART`.
pub fn install_sigusr1(restart: bool) -> TestResult {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let flags = if restart {
        SaFlags::SA_RESTART
    } else {
        SaFlags::empty()
    };
    let act = SigAction::new(SigHandler::Handler(count_signal), flags, SigSet::empty());
    // SAFETY: the handler only touches an atomic.
    expect_ok("sigaction(SIGUSR1)", unsafe {
        sigaction(Signal::SIGUSR1, &act)
    })
    .map(drop)
}

/// The calling thread's pthread id (to signal it from another thread).
pub fn this_thread() -> libc::pthread_t {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() }
}

/// Sends SIGUSR1 to thread `t`.
pub fn signal_thread(t: libc::pthread_t) -> TestResult {
    // SAFETY: `t` is a live thread of this process (the caller keeps it
    // alive until joined).
    let r = unsafe { libc::pthread_kill(t, libc::SIGUSR1) };
    ensure_eq!(r, 0, "pthread_kill");
    Ok(())
}

/// Waits until `SIGNAL_HITS` reaches `n` (up to `ms`).
pub fn wait_signal_hits(n: usize, ms: u64) -> TestResult {
    let end = Instant::now() + Duration::from_millis(ms);
    while SIGNAL_HITS.load(Ordering::SeqCst) < n {
        ensure!(
            Instant::now() < end,
            "signal handler ran {} times, expected {n}",
            SIGNAL_HITS.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A plain message to `dst` with `cookie` and one data vector.
pub fn msg(dst: u64, cookie: u64, data: &[u8]) -> MsgBuilder {
    MsgBuilder::new(dst).cookie(cookie).vec(data)
}

/// A method call to `dst` with `cookie` and a deadline `ms` from now.
pub fn call(dst: u64, cookie: u64, ms: u64) -> MsgBuilder {
    MsgBuilder::new(dst)
        .cookie(cookie)
        .call(deadline_in(ms))
        .vec(b"call")
}

/// A reply to call `cookie` of `caller`.
pub fn reply(caller: u64, cookie: u64, reply_cookie: u64) -> MsgBuilder {
    MsgBuilder::new(caller)
        .cookie(reply_cookie)
        .cookie_reply(cookie)
        .vec(b"reply")
}

/// A message whose delivered slice (receiver without metadata) is exactly
/// `slice` bytes: one data vector after the 96-byte header+item part.
/// `slice` must be a multiple of 8 and at least 104.
pub fn msg_with_slice(dst: u64, cookie: u64, slice: usize) -> MsgBuilder {
    assert!(slice >= 104 && slice.is_multiple_of(8));
    let m = msg(dst, cookie, &vec![0x5a; slice - 96]);
    debug_assert_eq!(m.delivered_layout(&[]).slice_size, slice as u64);
    m
}

/// Checks a kernel notification of type `item_ty` (REPLY_TIMEOUT or
/// REPLY_DEAD) for the call `cookie` made by `caller` (message.md 12): 120
/// bytes, src 0, payload type 0, one 16-byte item then a TIMESTAMP.
pub fn check_reply_notification(
    m: &Message,
    info: &MsgInfo,
    caller: u64,
    cookie: u64,
    item_ty: u64,
    what: &str,
) -> TestResult {
    ensure_eq!(m.src_id, 0, "{what}: src_id of a kernel notification");
    ensure_eq!(m.payload_type, 0, "{what}: payload_type");
    ensure_eq!(m.dst_id, caller, "{what}: dst_id");
    ensure_eq!(m.flags, 0, "{what}: flags");
    ensure_eq!(m.priority, 0, "{what}: priority");
    ensure_eq!(m.cookie, 0, "{what}: cookie");
    ensure_eq!(m.cookie_reply(), cookie, "{what}: cookie_reply");
    ensure_eq!(
        m.item_types(),
        vec![item_ty, ITEM_TIMESTAMP],
        "{what}: item types"
    );
    ensure_eq!(m.items[0].size, 16, "{what}: notification item size");
    ensure_eq!(m.items[1].size, 40, "{what}: TIMESTAMP item size");
    ensure_eq!(m.size, 120, "{what}: kdbus_msg.size");
    ensure_eq!(info.msg_size, 120, "{what}: slice size");
    Ok(())
}

/// Receives the next message and checks that it is a notification of type
/// `item_ty` for `cookie`; FREEs it and returns its timestamp.
pub fn recv_reply_notification(
    c: &Connection,
    cookie: u64,
    item_ty: u64,
    what: &str,
) -> Result<kdbus::Timestamp, String> {
    let r = recv(c, what)?;
    let m = parse(&r, what)?;
    check_reply_notification(&m, &r.info(), c.id(), cookie, item_ty, what)?;
    let ts = m
        .timestamp()
        .ok_or(format!("{what}: no TIMESTAMP payload"))?;
    expect_ok("FREE of the notification", r.free())?;
    Ok(ts)
}

/// An ID that no connection has (and that is not the broadcast ID).
pub const NO_SUCH_ID: u64 = 0x7fff_ffff_0000_0001;

/// Connects a MONITOR (needs owner rights; skips the test if the module
/// refuses monitors with EOPNOTSUPP).
pub fn monitor(ctx: &Ctx) -> Result<Connection, String> {
    match Connection::hello(ctx.endpoint(), HELLO_MONITOR, 0, 0, POOL_SIZE) {
        Ok(c) => Ok(c),
        Err(Errno::EOPNOTSUPP) => {
            Err(crate::check::skip("HELLO of a MONITOR connection returns EOPNOTSUPP").unwrap_err())
        }
        Err(e) => Err(format!("HELLO of a monitor: {}", errno_name(e))),
    }
}

// ---------------------------------------------------------------------
// Names, matches, broadcasts and notifications (names.rs, activator.rs,
// matches.rs, broadcast.rs, notify.rs, list.rs).

/// Cookie of the match entries [`watch_names`] / [`watch_all`] install.
pub const WATCH_COOKIE: u64 = 0x5741_5443_4845_5200;

/// Installs one match entry per name notification kind (NAME_ADD,
/// NAME_REMOVE, NAME_CHANGE, any ids, any name), cookie [`WATCH_COOKIE`].
pub fn watch_names(c: &Connection) -> TestResult {
    for r in [
        MatchRule::any_name_add(WATCH_COOKIE, None),
        MatchRule::any_name_remove(WATCH_COOKIE, None),
        MatchRule::any_name_change(WATCH_COOKIE, None),
    ] {
        expect_ok("MATCH_ADD of a name notification rule", c.match_add(&r))?;
    }
    Ok(())
}

/// [`watch_names`] plus ID_ADD and ID_REMOVE entries (any id).
pub fn watch_all(c: &Connection) -> TestResult {
    watch_names(c)?;
    for r in [
        MatchRule::any_id_add(WATCH_COOKIE),
        MatchRule::any_id_remove(WATCH_COOKIE),
    ] {
        expect_ok("MATCH_ADD of an ID notification rule", c.match_add(&r))?;
    }
    Ok(())
}

/// A connection (ACCEPT_FD, TIMESTAMP, 4 MiB pool) watching every name
/// notification; with `ids` also ID_ADD / ID_REMOVE.
pub fn watcher(ctx: &Ctx, ids: bool) -> Result<Connection, String> {
    let w = hello_pool(ctx, HELLO_ACCEPT_FD, ATTACH_TIMESTAMP, 4 * POOL_SIZE)?;
    if ids {
        watch_all(&w)?;
    } else {
        watch_names(&w)?;
    }
    Ok(w)
}

/// `kdbus_notify_id_change {id, flags}`.
pub fn nid(id: u64, flags: u64) -> NotifyId {
    NotifyId { id, flags }
}

/// NAME_ADD of `name` to `new` = (id, flags) (old 0/0).
pub fn name_add(name: &str, new: (u64, u64)) -> Notification {
    Notification::NameAdd(NameChange {
        old_id: nid(0, 0),
        new_id: nid(new.0, new.1),
        name: name.into(),
    })
}

/// NAME_REMOVE of `name` from `old` = (id, flags) (new 0/0).
pub fn name_remove(name: &str, old: (u64, u64)) -> Notification {
    Notification::NameRemove(NameChange {
        old_id: nid(old.0, old.1),
        new_id: nid(0, 0),
        name: name.into(),
    })
}

/// NAME_CHANGE of `name` from `old` to `new` (each (id, flags)).
pub fn name_change(name: &str, old: (u64, u64), new: (u64, u64)) -> Notification {
    Notification::NameChange(NameChange {
        old_id: nid(old.0, old.1),
        new_id: nid(new.0, new.1),
        name: name.into(),
    })
}

/// ID_ADD of `id` with HELLO `flags`.
pub fn id_add(id: u64, flags: u64) -> Notification {
    Notification::IdAdd(nid(id, flags))
}

/// ID_REMOVE of `id` with HELLO `flags`.
pub fn id_remove(id: u64, flags: u64) -> Notification {
    Notification::IdRemove(nid(id, flags))
}

/// Checks a delivered broadcast notification (message.md 12): header
/// `src 0, dst ~0, flags SIGNAL, payload_type 0, priority 0, cookie 0,
/// cookie_reply 0`, items `[notification, TIMESTAMP]` with the item sizes
/// 32 (ID_*) or 48 + strlen(name) + 1 (NAME_*) and 40, `size` = 64 +
/// ALIGN8(item) + 40, which is also the slice size (no payload area).
pub fn check_notification(m: &Message, info: &MsgInfo, what: &str) -> Result<Notification, String> {
    ensure_eq!(
        (
            m.src_id,
            m.dst_id,
            m.flags,
            m.payload_type,
            m.priority,
            m.cookie,
            m.cookie_reply()
        ),
        (0, u64::MAX, MSG_SIGNAL, 0, 0, 0, 0),
        "{what}: (src_id, dst_id, flags, payload_type, priority, cookie, cookie_reply) of a broadcast notification"
    );
    let n = m
        .notification()
        .map_err(|e| format!("{what}: {e}"))?
        .ok_or_else(|| format!("{what}: not a notification (items {:x?})", m.item_types()))?;
    ensure_eq!(
        m.item_types(),
        vec![n.item_type(), ITEM_TIMESTAMP],
        "{what}: item types"
    );
    let item_size = match &n {
        Notification::IdAdd(_) | Notification::IdRemove(_) => 32,
        Notification::NameAdd(c) | Notification::NameRemove(c) | Notification::NameChange(c) => {
            48 + c.name.len() as u64 + 1
        }
        other => return Err(format!("{what}: {other:?} is not a broadcast notification")),
    };
    ensure_eq!(m.items[0].size, item_size, "{what}: notification item size");
    ensure_eq!(m.items[1].size, 40, "{what}: TIMESTAMP item size");
    let size = 64 + kdbus::align8(item_size as usize) as u64 + 40;
    ensure_eq!(m.size, size, "{what}: kdbus_msg.size");
    ensure_eq!(info.msg_size, size, "{what}: slice size");
    Ok(n)
}

/// Receives the next message, which must be a broadcast notification
/// ([`check_notification`]); FREEs it and returns it with its seqnum.
pub fn recv_notification(c: &Connection, what: &str) -> Result<(Notification, u64), String> {
    let r = recv(c, what)?;
    let m = parse(&r, what)?;
    let n = check_notification(&m, &r.info(), what)?;
    let ts = m
        .timestamp()
        .ok_or_else(|| format!("{what}: no TIMESTAMP payload"))?;
    expect_ok(&format!("FREE ({what})"), r.free())?;
    ensure_eq!(
        r.reply.dropped_msgs,
        0,
        "{what}: dropped_msgs (lost notifications)"
    );
    Ok((n, ts.seqnum))
}

/// Receives exactly the notifications `want`, in order, with strictly
/// increasing seqnums, and then finds the queue empty; returns the
/// seqnums.
pub fn expect_notifications(
    c: &Connection,
    want: &[Notification],
    what: &str,
) -> Result<Vec<u64>, String> {
    let mut seqs: Vec<u64> = Vec::new();
    for (i, w) in want.iter().enumerate() {
        let step = format!("{what}: notification {} of {}", i + 1, want.len());
        let (n, seq) = recv_notification(c, &step)?;
        ensure_eq!(&n, w, "{step}");
        if let Some(last) = seqs.last() {
            ensure!(
                seq > *last,
                "{step}: seqnum {seq} not after the previous {last}"
            );
        }
        seqs.push(seq);
    }
    expect_empty(c, &format!("{what}: after the expected notifications"))?;
    Ok(seqs)
}

/// NAME_ACQUIRE that must succeed with exactly `want` as return_flags.
pub fn acquire(c: &Connection, name: &str, flags: u64, want: u64, what: &str) -> TestResult {
    let got = expect_ok(
        &format!("{what}: NAME_ACQUIRE {name} flags {flags:#x}"),
        c.name_acquire(name, flags),
    )?;
    ensure_eq!(
        got,
        want,
        "{what}: return_flags of NAME_ACQUIRE {name} flags {flags:#x} (hex: got {got:#x}, want {want:#x})"
    );
    Ok(())
}

/// NAME_ACQUIRE as a raw command: the result and the written-back
/// return_flags (preset to a marker so an unwritten field shows).
pub fn acquire_raw(c: &Connection, name: &str, flags: u64) -> (Result<(), Errno>, u64) {
    let mut cmd = kdbus::CmdBuf::name_cmd(flags, name);
    cmd.set_return_flags(0xdead_0000);
    let r = c.name_acquire_raw(&mut cmd);
    (r, cmd.return_flags())
}

/// NAME_ACQUIRE that must fail with `want`, writing `want_flags` as
/// return_flags.
pub fn acquire_err(
    c: &Connection,
    name: &str,
    flags: u64,
    want: Errno,
    want_flags: u64,
    what: &str,
) -> TestResult {
    let (r, rf) = acquire_raw(c, name, flags);
    expect_errno(
        &format!("{what}: NAME_ACQUIRE {name} flags {flags:#x}"),
        r,
        want,
    )?;
    ensure_eq!(
        rf,
        want_flags,
        "{what}: return_flags written back with {}",
        errno_name(want)
    );
    Ok(())
}

/// The HELLO of an activator for `name` with extra HELLO `flags`
/// (ACCEPT_FD) on the test bus.
pub fn try_activator(ctx: &Ctx, name: &str, flags: u64) -> Result<Connection, Errno> {
    let fd = kdbus::open_endpoint(ctx.endpoint())?;
    let mut cmd = Connection::hello_cmd(HELLO_ACTIVATOR | flags, 0, 0, POOL_SIZE);
    cmd.push_str(ITEM_NAME, name);
    Connection::from_hello(fd, &mut cmd)
}

/// An activator for `name` (HELLO flags ACTIVATOR | ACCEPT_FD).
pub fn activator(ctx: &Ctx, name: &str) -> Result<Connection, String> {
    expect_ok(
        &format!("HELLO of an activator for {name}"),
        try_activator(ctx, name, HELLO_ACCEPT_FD),
    )
}

/// Every ownership record of `name` on the bus as LIST shows it
/// (NAMES | QUEUED | ACTIVATORS): `(connection id, record flags)`, sorted
/// by id.
pub fn name_records(c: &Connection, name: &str) -> Result<Vec<(u64, u64)>, String> {
    let recs = expect_ok(
        "LIST NAMES|QUEUED|ACTIVATORS",
        c.list_records(LIST_NAMES | LIST_QUEUED | LIST_ACTIVATORS),
    )?;
    let mut out = Vec::new();
    for r in recs {
        let on = r.owned_name().map_err(|e| format!("LIST record: {e}"))?;
        if let Some(on) = on {
            if on.name == name {
                out.push((r.id, on.flags));
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Checks the LIST records of `name` against `want` ((id, flags), any
/// order).
pub fn expect_records(c: &Connection, name: &str, want: &[(u64, u64)], what: &str) -> TestResult {
    let mut want = want.to_vec();
    want.sort_unstable();
    ensure_eq!(
        name_records(c, name)?,
        want,
        "{what}: LIST records (id, flags) of {name}"
    );
    Ok(())
}

/// The current owner of `name` per CONN_INFO by name (`None` for ESRCH).
pub fn owner_of(c: &Connection, name: &str) -> Result<Option<u64>, String> {
    match c.conn_info_name(name, 0, 0) {
        Ok(r) => {
            let recs = c
                .info_records(&r)
                .map_err(|e| format!("CONN_INFO {name}: {e}"))?;
            expect_ok("FREE of CONN_INFO", c.free(r.offset))?;
            ensure_eq!(recs.len(), 1, "CONN_INFO {name}: records");
            Ok(Some(recs[0].id))
        }
        Err(Errno::ESRCH) => Ok(None),
        Err(e) => Err(format!("CONN_INFO {name}: {}", errno_name(e))),
    }
}

/// A plain message to the well-known `name` (dst_id 0) with `cookie`.
pub fn to_name(name: &str, cookie: u64, data: &[u8]) -> MsgBuilder {
    MsgBuilder::new(0).dst_name(name).cookie(cookie).vec(data)
}

/// A bloom of the test bus's size (64 bytes) with `bits` set.
pub fn bloom_bits(bits: &[u64]) -> Bloom {
    let mut b = Bloom::with_params(BloomParams::DEFAULT);
    for &x in bits {
        b.set_bit(x);
    }
    b
}

/// A bloom filter of `generation` with `bits` set.
pub fn filter_bits(generation: u64, bits: &[u64]) -> BloomFilter {
    BloomFilter::new(generation, bloom_bits(bits))
}

/// A bloom mask with one generation per entry of `gens` (generation 0
/// first), each with the listed bits set.
pub fn mask_bits(gens: &[&[u64]]) -> BloomMask {
    BloomMask::from_generations(gens.iter().map(|g| bloom_bits(g)).collect())
        .expect("at least one generation")
}

/// A broadcast signal with `filter`, `cookie` and a small payload.
pub fn broadcast(filter: &BloomFilter, cookie: u64) -> MsgBuilder {
    MsgBuilder::broadcast(filter).cookie(cookie).vec(b"bcast")
}

/// Receives the next message, checks it is the signal from `src` with
/// `cookie` (and dst_id `dst`), FREEs it.
pub fn expect_signal(c: &Connection, src: u64, cookie: u64, dst: u64, what: &str) -> TestResult {
    let r = recv(c, what)?;
    let m = parse(&r, what)?;
    ensure_eq!(
        (m.src_id, m.cookie, m.dst_id, m.flags & MSG_SIGNAL),
        (src, cookie, dst, MSG_SIGNAL),
        "{what}: (src_id, cookie, dst_id, SIGNAL) at connection {}",
        c.id()
    );
    ensure!(
        m.item(ITEM_BLOOM_FILTER).is_some(),
        "{what}: the delivered signal has no BLOOM_FILTER item"
    );
    expect_ok(&format!("FREE ({what})"), r.free())
}

/// Receives `want.len()` notifications with strictly increasing seqnums
/// and compares them with `want` in any order (for setups whose exact
/// order another test checks); returns the received ones in order.
pub fn expect_notification_set(
    c: &Connection,
    want: &[Notification],
    what: &str,
) -> Result<Vec<Notification>, String> {
    let got = expect_notification_set_prefix(c, want, what)?;
    expect_empty(c, &format!("{what}: after the expected notifications"))?;
    Ok(got)
}

/// [`expect_notification_set`] without the final empty-queue check.
pub fn expect_notification_set_prefix(
    c: &Connection,
    want: &[Notification],
    what: &str,
) -> Result<Vec<Notification>, String> {
    let mut got = Vec::new();
    let mut last = 0;
    for i in 0..want.len() {
        let step = format!("{what}: notification {} of {}", i + 1, want.len());
        let (n, seq) = recv_notification(c, &step)?;
        ensure!(seq > last, "{step}: seqnum {seq} not after {last}");
        last = seq;
        got.push(n);
    }
    let key = |n: &Notification| format!("{n:?}");
    let mut a: Vec<String> = got.iter().map(key).collect();
    let mut b: Vec<String> = want.iter().map(key).collect();
    a.sort();
    b.sort();
    ensure_eq!(a, b, "{what}: notifications (any order)");
    Ok(got)
}

/// Runs `f` in a forked child whose real, effective and saved uid and gid
/// are `id` (no supplementary groups, hence no capabilities) and returns
/// what it returned (`Err` texts of the child are prefixed with "child: ").
/// The caller must be single-threaded.
pub fn in_child_as(id: u32, f: impl FnOnce() -> Result<String, String>) -> Result<String, String> {
    let (rd, wr) = expect_ok("pipe", nix::unistd::pipe())?;
    // SAFETY: the test process is single-threaded here (documented).
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("fork: {e}")),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(rd);
            // SAFETY: plain credential syscalls in the child.
            let ok = unsafe {
                libc::setgroups(0, std::ptr::null()) == 0
                    && libc::setresgid(id, id, id) == 0
                    && libc::setresuid(id, id, id) == 0
            };
            let out = if ok {
                match f() {
                    Ok(s) => format!("O{s}"),
                    Err(e) => format!("E{e}"),
                }
            } else {
                "Esetresuid failed".to_string()
            };
            let _ = nix::unistd::write(&wr, out.as_bytes());
            // SAFETY: leave the child without running destructors.
            unsafe { libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(wr);
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match nix::unistd::read(&rd, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(format!("read from the child: {e}")),
                }
            }
            let _ = nix::sys::wait::waitpid(child, None);
            let s = String::from_utf8_lossy(&out).to_string();
            match s.split_at_checked(1) {
                Some(("O", rest)) => Ok(rest.to_string()),
                Some(("E", rest)) => Err(format!("child: {rest}")),
                _ => Err(format!("child reported nothing ({s:?})")),
            }
        }
    }
}

/// userfaultfd ABI (include/uapi/linux/userfaultfd.h, x86-64).
pub mod uffd {
    /// UFFD_API.
    pub const API: u64 = 0xaa;
    /// UFFDIO_API.
    pub const IOC_API: u64 = 0xc018_aa3f;
    /// UFFDIO_REGISTER.
    pub const IOC_REGISTER: u64 = 0xc020_aa00;
    /// UFFDIO_COPY.
    pub const IOC_COPY: u64 = 0xc028_aa03;
    /// UFFDIO_REGISTER_MODE_MISSING.
    pub const MODE_MISSING: u64 = 1;
    /// UFFD_EVENT_PAGEFAULT.
    pub const EVENT_PAGEFAULT: u8 = 0x12;
}

/// An anonymous mapping of `pages` pages registered with a new
/// userfaultfd (missing pages fault to it): `(address, uffd)`; `None` if
/// userfaultfd is not available.
pub fn uffd_region(pages: usize) -> Result<Option<(u64, OwnedFd)>, String> {
    let len = pages * kdbus::page_size();
    // SAFETY: a fresh anonymous mapping.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    ensure!(region != libc::MAP_FAILED, "mmap: {:?}", Errno::last());
    // SAFETY: plain syscall.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        uffd_unmap(region as u64, pages);
        return Ok(None);
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let ufd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut api = [uffd::API, 0, 0];
    // SAFETY: ioctls with buffers of the sizes their requests encode.
    ensure!(
        unsafe { libc::ioctl(ufd.as_raw_fd(), uffd::IOC_API as _, api.as_mut_ptr()) } == 0,
        "UFFDIO_API: {:?}",
        Errno::last()
    );
    let mut reg = [region as u64, len as u64, uffd::MODE_MISSING, 0];
    // SAFETY: as above.
    ensure!(
        unsafe { libc::ioctl(ufd.as_raw_fd(), uffd::IOC_REGISTER as _, reg.as_mut_ptr()) } == 0,
        "UFFDIO_REGISTER: {:?}",
        Errno::last()
    );
    Ok(Some((region as u64, ufd)))
}

/// Waits up to `ms` for a page fault on `ufd`; returns its address.
pub fn uffd_wait(ufd: &OwnedFd, ms: u16) -> Option<u64> {
    let _ = poll_once(ufd, PollFlags::POLLIN, ms);
    let mut m = [0u8; 32];
    // SAFETY: reads one 32-byte uffd_msg.
    let n = unsafe { libc::read(ufd.as_raw_fd(), m.as_mut_ptr().cast(), 32) };
    (n == 32 && m[0] == uffd::EVENT_PAGEFAULT)
        .then(|| u64::from_ne_bytes(m[16..24].try_into().unwrap()))
}

/// Resolves a fault: copies `src` (one page) to the page at `at`.
pub fn uffd_fill(ufd: &OwnedFd, at: u64, src: &[u8]) {
    let mut copy = [at, src.as_ptr() as u64, src.len() as u64, 0, 0];
    // SAFETY: UFFDIO_COPY with a 40-byte uffdio_copy; `src` is readable.
    unsafe { libc::ioctl(ufd.as_raw_fd(), uffd::IOC_COPY as _, copy.as_mut_ptr()) };
}

/// Unmaps a region made by [`uffd_region`].
pub fn uffd_unmap(at: u64, pages: usize) {
    // SAFETY: our own mapping, no longer used.
    unsafe { libc::munmap(at as *mut _, pages * kdbus::page_size()) };
}
