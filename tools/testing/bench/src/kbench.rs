//! The kdbus side: a bus with a client and a server connection, messages
//! built by hand with `CmdBuf` + `ioctl` + the uapi definitions (no message
//! API of the `kdbus` crate is used).

use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kdbus::consts::{POLICY_SEE, POLICY_TALK};
#[cfg(test)]
use kdbus::ItemIter;
use kdbus::{
    Access, Bus, BusMaker, CmdBuf, Connection, Control, Endpoint, Errno, PolicyEntry, ATTACH_ANY,
};
use kdbus_uapi as uapi;

use crate::data::{self, check, monotonic_ns, poll_in, Touch};
use crate::timing::{run_for, Failure, Sample};

/// Pool size of both connections (what sd-bus uses).
pub const POOL_SIZE: u64 = 16 << 20;
/// How long a call may wait for its reply (also the async client's poll).
const CALL_TIMEOUT_NS: u64 = 5_000_000_000;
const CALL_TIMEOUT_MS: i32 = 5_000;

const MSG_HDR: usize = size_of::<uapi::kdbus_msg>();
const MSG_FLAGS: usize = offset_of!(uapi::kdbus_msg, flags);
const MSG_DST: usize = offset_of!(uapi::kdbus_msg, dst_id);
const MSG_SRC: usize = offset_of!(uapi::kdbus_msg, src_id);
const MSG_PAYLOAD_TYPE: usize = offset_of!(uapi::kdbus_msg, payload_type);
const MSG_COOKIE: usize = offset_of!(uapi::kdbus_msg, cookie);
/// `timeout_ns` / `cookie_reply` (a union), right after `cookie`.
const MSG_TIMEOUT: usize = MSG_COOKIE + 8;
const SEND_SIZE: usize = size_of::<uapi::kdbus_cmd_send>();
const SEND_MSG_ADDR: usize = offset_of!(uapi::kdbus_cmd_send, msg_address);
const SEND_REPLY: usize = offset_of!(uapi::kdbus_cmd_send, reply);
pub const RECV_SIZE: usize = size_of::<uapi::kdbus_cmd_recv>();
const RECV_MSG: usize = offset_of!(uapi::kdbus_cmd_recv, msg);
const INFO_OFFSET: usize = offset_of!(uapi::kdbus_msg_info, offset);
const INFO_SIZE: usize = offset_of!(uapi::kdbus_msg_info, msg_size);

const _: () = assert!(MSG_HDR == 64 && MSG_TIMEOUT == 56 && MSG_PAYLOAD_TYPE == 40);
const _: () = assert!(SEND_SIZE == 56 && RECV_SIZE == 64);

const ITEM_VEC: u64 = uapi::KDBUS_ITEM_PAYLOAD_VEC as u64;
const ITEM_OFF: u64 = uapi::KDBUS_ITEM_PAYLOAD_OFF as u64;
const ITEM_MEMFD: u64 = uapi::KDBUS_ITEM_PAYLOAD_MEMFD as u64;
const ITEM_DST_NAME: u64 = uapi::KDBUS_ITEM_DST_NAME as u64;
pub(crate) const ITEM_BLOOM_FILTER: u64 = uapi::KDBUS_ITEM_BLOOM_FILTER as u64;
pub(crate) const MSG_SIGNAL: u64 = uapi::KDBUS_MSG_SIGNAL as u64;
const EXPECT_REPLY: u64 = uapi::KDBUS_MSG_EXPECT_REPLY as u64;
const SYNC_REPLY: u64 = uapi::KDBUS_SEND_SYNC_REPLY as u64;
pub(crate) const PAYLOAD_DBUS: u64 = uapi::KDBUS_PAYLOAD_DBUS;
/// Offset of the first vector's `size` in a message with one VEC item.
const VEC_SIZE: usize = MSG_HDR + 16;
/// Offset of the first vector's `address` in a message with one VEC item.
const VEC_ADDR: usize = VEC_SIZE + 8;

/// A bus and two connections on it. Dropping it closes everything (the
/// connections first, then a custom endpoint, then the bus owner).
pub struct Peers {
    pub client: Connection,
    pub server: Connection,
    _endpoint: Option<Endpoint>,
    _bus: Bus,
}

/// How [`Peers::setup_with`] connects the two ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerSetup {
    /// The metadata both connections ask for (`attach_flags_recv`; they
    /// send everything, `_KDBUS_ATTACH_ANY`, when it is not 0), so each call
    /// and each reply carries these items. 0: bare messages (both masks 0).
    pub metadata: u64,
    /// Only the server asks for `metadata`: calls carry it, replies are
    /// bare (the usual D-Bus case: a service checks its caller).
    pub metadata_one_way: bool,
    /// The client connects through a custom endpoint (endpoint.md) whose
    /// policy ([`endpoint_policy`]) lets it TALK to `talk_to`; the server
    /// stays on the default endpoint.
    pub custom_endpoint: Option<&'static str>,
}

/// The policy of the benchmark's custom endpoint: TALK to `name` for
/// everybody, among [`ENDPOINT_FILLER`] entries for other names (exact and
/// wildcards, user and group rules), so the lookup is not of a database
/// with one entry.
pub fn endpoint_policy(name: &str) -> Vec<PolicyEntry> {
    let mut v: Vec<PolicyEntry> = (0..ENDPOINT_FILLER)
        .map(|i| {
            let n = match i % 2 {
                0 => format!("org.kdbus.bench.Other{i}"),
                _ => format!("org.kdbus.bench.Tree{i}.*"),
            };
            PolicyEntry::new(
                n,
                &[
                    Access::user(1000 + i as u64, POLICY_TALK),
                    Access::group(2000 + i as u64, POLICY_SEE),
                ],
            )
        })
        .collect();
    v.push(PolicyEntry::new(name, &[Access::world(POLICY_TALK)]));
    v
}

/// Entries of [`endpoint_policy`] besides the benchmark's name.
pub const ENDPOINT_FILLER: usize = 32;

impl Peers {
    /// Bare peers on the default endpoint of a new bus.
    pub fn setup(mount: &str) -> Result<Peers, Failure> {
        Self::setup_with(mount, "bench", PeerSetup::default())
    }

    /// Peers on a new bus `<euid>-<stem>-<pid>`, connected as `how` says.
    pub fn setup_with(mount: &str, stem: &str, how: PeerSetup) -> Result<Peers, Failure> {
        let who = "setup";
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let name = format!("{euid}-{stem}-{}", std::process::id());
        let control = Control::open(mount).map_err(|e| {
            Failure::sys("open", who, e).also(format!("{mount}/control (kdbusfs mounted?)"))
        })?;
        let bus = BusMaker::new(&name)
            .make(control)
            .map_err(|e| Failure::sys("BUS_MAKE", who, e))?;
        let flags = uapi::KDBUS_HELLO_ACCEPT_FD as u64;
        let (send, recv) = match how.metadata {
            0 => (0, 0),
            m => (ATTACH_ANY, m),
        };
        let client_recv = if how.metadata_one_way { 0 } else { recv };
        let hello =
            |path: &std::path::Path, label: &str, recv: u64| -> Result<Connection, Failure> {
                let c = Connection::hello(path, flags, send, recv, POOL_SIZE)
                    .map_err(|e| Failure::sys("HELLO", label, e))?;
                c.free(c.hello_reply().offset)
                    .map_err(|e| Failure::sys("FREE", label, e))?;
                Ok(c)
            };
        let server = hello(&bus.endpoint(), "server", recv)?;
        let (client, endpoint) = match how.custom_endpoint {
            None => (hello(&bus.endpoint(), "client", client_recv)?, None),
            Some(talk_to) => {
                let ep = Endpoint::make(bus.endpoint(), &format!("{euid}-bench"), 0)
                    .map_err(|e| Failure::sys("ENDPOINT_MAKE", who, e))?;
                ep.update(&endpoint_policy(talk_to))
                    .map_err(|e| Failure::sys("ENDPOINT_UPDATE", who, e))?;
                (
                    hello(ep.path(), "client (custom endpoint)", client_recv)?,
                    Some(ep),
                )
            }
        };
        Ok(Peers {
            client,
            server,
            _endpoint: endpoint,
            _bus: bus,
        })
    }

    /// The server acquires the well-known `name` (for calls by name).
    pub fn own_name(&self, name: &str) -> Result<(), Failure> {
        self.server
            .name_acquire(name, 0)
            .map(drop)
            .map_err(|e| Failure::sys("NAME_ACQUIRE", "server", e).also(name))
    }

    /// The server releases `name` again.
    pub fn release_name(&self, name: &str) -> Result<(), Failure> {
        self.server
            .name_release(name)
            .map_err(|e| Failure::sys("NAME_RELEASE", "server", e).also(name))
    }
}

/// A message and the SEND command pointing at it. Both buffers live on the
/// heap and are never resized after construction, so the address stored in
/// `msg_address` stays valid.
pub struct Outgoing {
    pub(crate) msg: CmdBuf,
    cmd: CmdBuf,
}

impl Outgoing {
    /// A message whose items are added by `items`.
    pub(crate) fn new(items: impl FnOnce(&mut CmdBuf)) -> Self {
        let mut msg = CmdBuf::new(MSG_HDR);
        items(&mut msg);
        msg.set_u64(MSG_PAYLOAD_TYPE, PAYLOAD_DBUS);
        let mut cmd = CmdBuf::new(SEND_SIZE);
        let addr = msg.as_mut_ptr() as u64;
        cmd.set_u64(SEND_MSG_ADDR, addr);
        Outgoing { msg, cmd }
    }

    /// One PAYLOAD_VEC of `len` bytes at `addr`.
    pub fn with_vec(len: usize, addr: u64) -> Self {
        Self::new(|m| {
            m.push_u64s(ITEM_VEC, &[len as u64, addr]);
        })
    }

    /// One PAYLOAD_VEC of `len` bytes at `addr`, then a DST_NAME item with
    /// `name` (the vector stays the first item, at [`VEC_ADDR`]).
    pub fn with_vec_to_name(len: usize, addr: u64, name: &str) -> Self {
        Self::new(|m| {
            m.push_u64s(ITEM_VEC, &[len as u64, addr]);
            m.push_str(ITEM_DST_NAME, name);
        })
    }

    /// Points the first PAYLOAD_VEC (of a message made by [`with_vec`] or
    /// [`with_vec_to_name`]) at `len` bytes at `addr`.
    ///
    /// [`with_vec`]: Outgoing::with_vec
    /// [`with_vec_to_name`]: Outgoing::with_vec_to_name
    pub fn set_vec(&mut self, len: usize, addr: u64) {
        self.msg.set_u64(VEC_SIZE, len as u64);
        self.msg.set_u64(VEC_ADDR, addr);
    }

    /// A signal: one PAYLOAD_VEC of `len` bytes at `addr`, then a
    /// BLOOM_FILTER item with `filter` (its `item_payload`).
    pub(crate) fn signal(len: usize, addr: u64, filter: &[u8]) -> Self {
        Self::new(|m| {
            m.push_u64s(ITEM_VEC, &[len as u64, addr]);
            m.push_item(ITEM_BLOOM_FILTER, filter);
        })
    }

    /// One PAYLOAD_MEMFD `{0, size, fd}`.
    fn with_memfd(size: usize, fd: RawFd) -> Self {
        Self::new(|m| {
            let mut p = Vec::with_capacity(24);
            p.extend_from_slice(&0u64.to_ne_bytes());
            p.extend_from_slice(&(size as u64).to_ne_bytes());
            p.extend_from_slice(&fd.to_ne_bytes());
            p.extend_from_slice(&0u32.to_ne_bytes());
            m.push_item(ITEM_MEMFD, &p);
        })
    }

    /// KDBUS_CMD_SEND; returns `reply.offset` and `reply.msg_size`
    /// (meaningful for sync calls).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send(
        &mut self,
        conn: &Connection,
        msg_flags: u64,
        dst: u64,
        cookie: u64,
        timeout_or_reply: u64,
        send_flags: u64,
    ) -> Result<(u64, u64), Errno> {
        self.msg.set_u64(MSG_FLAGS, msg_flags);
        self.msg.set_u64(MSG_DST, dst);
        self.msg.set_u64(MSG_SRC, 0);
        self.msg.set_u64(MSG_COOKIE, cookie);
        self.msg.set_u64(MSG_TIMEOUT, timeout_or_reply);
        self.cmd.set_flags(send_flags);
        self.cmd.set_return_flags(0);
        for w in 0..3 {
            self.cmd.set_u64(SEND_REPLY + 8 * w, 0);
        }
        conn.ioctl(uapi::KDBUS_CMD_SEND, &mut self.cmd)?;
        Ok((
            self.cmd.u64_at(SEND_REPLY + INFO_OFFSET),
            self.cmd.u64_at(SEND_REPLY + INFO_SIZE),
        ))
    }
}

/// KDBUS_CMD_RECV: `Ok(Some(offset))`, or `Ok(None)` on `EAGAIN`.
pub(crate) fn recv(conn: &Connection, cmd: &mut CmdBuf) -> Result<Option<u64>, Errno> {
    for w in 1..RECV_SIZE / 8 {
        cmd.set_u64(8 * w, 0);
    }
    match conn.ioctl(uapi::KDBUS_CMD_RECV, cmd) {
        Ok(()) => Ok(Some(cmd.u64_at(RECV_MSG + INFO_OFFSET))),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a message in a pool says, as far as the benchmark cares.
pub(crate) struct Received {
    off: u64,
    pub(crate) flags: u64,
    src_id: u64,
    pub(crate) payload_type: u64,
    pub(crate) cookie: u64,
    cookie_reply: u64,
    /// The first PAYLOAD_OFF: (size, offset relative to the message).
    vec: Option<(u64, u64)>,
    /// The first PAYLOAD_MEMFD: (start, size, fd).
    memfd: Option<(u64, u64, i32)>,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

pub(crate) fn parse(conn: &Connection, off: u64, who: &str) -> Result<Received, Failure> {
    let bad = |d: String| Failure::bad("RECV", who, d);
    let hdr = conn
        .pool_bytes(off, MSG_HDR as u64)
        .ok_or_else(|| bad(format!("message offset {off} outside the pool")))?;
    let size = u64_at(hdr, 0);
    if size < MSG_HDR as u64 {
        return Err(bad(format!("message size {size}")));
    }
    let mut r = Received {
        off,
        flags: u64_at(hdr, MSG_FLAGS),
        src_id: u64_at(hdr, MSG_SRC),
        payload_type: u64_at(hdr, MSG_PAYLOAD_TYPE),
        cookie: u64_at(hdr, MSG_COOKIE),
        cookie_reply: u64_at(hdr, MSG_TIMEOUT),
        vec: None,
        memfd: None,
    };
    let items = conn
        .pool_items(off + MSG_HDR as u64, size - MSG_HDR as u64)
        .ok_or_else(|| bad(format!("message of {size} bytes at {off} outside the pool")))?;
    for it in items {
        let it = it.map_err(|e| bad(format!("bad item: {e}")))?;
        let p = it.payload;
        if it.ty == ITEM_OFF && r.vec.is_none() && p.len() >= 16 {
            r.vec = Some((u64_at(p, 0), u64_at(p, 8)));
        } else if it.ty == ITEM_MEMFD && r.memfd.is_none() && p.len() >= 20 {
            let fd = i32::from_ne_bytes(p[16..20].try_into().unwrap());
            r.memfd = Some((u64_at(p, 0), u64_at(p, 8), fd));
        }
    }
    Ok(r)
}

impl Received {
    /// The bytes of the first PAYLOAD_OFF vector.
    pub(crate) fn payload<'a>(&self, conn: &'a Connection, who: &str) -> Result<&'a [u8], Failure> {
        let (size, rel) = self
            .vec
            .ok_or_else(|| Failure::bad("RECV", who, "no PAYLOAD_OFF item"))?;
        conn.pool_bytes(self.off + rel, size).ok_or_else(|| {
            Failure::bad(
                "RECV",
                who,
                format!(
                    "payload {size}@{rel} of the message at {} outside the pool",
                    self.off
                ),
            )
        })
    }

    /// Checks that this is the (non-notification) reply to `cookie`.
    fn expect_reply(&self, cookie: u64, who: &str) -> Result<(), Failure> {
        if self.payload_type != PAYLOAD_DBUS {
            return Err(Failure::bad(
                "RECV",
                who,
                format!(
                    "got a kernel notification (payload_type {:#x}, cookie_reply {}) instead of the reply to {cookie}",
                    self.payload_type, self.cookie_reply
                ),
            ));
        }
        if self.cookie_reply != cookie {
            return Err(Failure::bad(
                "RECV",
                who,
                format!("reply to cookie {}, expected {cookie}", self.cookie_reply),
            ));
        }
        Ok(())
    }
}

/// What the server does with each call.
#[derive(Debug, Clone, Copy)]
pub enum Serve {
    /// Checks the PAYLOAD_OFF bytes and replies with the same bytes, the
    /// reply's vector pointing straight into its own pool mapping.
    Echo { len: usize },
    /// The same for payloads of any length (the client checks them).
    EchoAny,
    /// Maps the memfd, reads it as `Touch` says, unmaps and closes it, and
    /// replies with an 8-byte payload.
    Memfd { len: usize, touch: Touch },
}

const ACK: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

/// The server loop: poll, RECV, handle, reply, FREE, until `stop`.
pub fn serve(conn: &Connection, mode: Serve, stop: &AtomicBool) -> Result<(), Failure> {
    let who = "server";
    let fd = conn.as_raw_fd();
    let mut rcmd = CmdBuf::new(RECV_SIZE);
    let mut reply = match mode {
        Serve::Echo { len } => Outgoing::with_vec(len, 0),
        Serve::EchoAny => Outgoing::with_vec(0, 0),
        Serve::Memfd { .. } => Outgoing::with_vec(ACK.len(), ACK.as_ptr() as u64),
    };
    let mut cookie = 1u64 << 32;
    let pool = conn.pool().as_ptr() as u64;
    while !stop.load(Ordering::Relaxed) {
        if !poll_in(fd, 100, who)? {
            continue;
        }
        let Some(off) = recv(conn, &mut rcmd).map_err(|e| Failure::sys("RECV", who, e))? else {
            continue;
        };
        let rx = parse(conn, off, who)?;
        if rx.flags & EXPECT_REPLY == 0 {
            conn.free(off).map_err(|e| Failure::sys("FREE", who, e))?;
            return Err(Failure::bad(
                "RECV",
                who,
                format!(
                    "unexpected message (flags {:#x}, payload_type {:#x}, from {})",
                    rx.flags, rx.payload_type, rx.src_id
                ),
            ));
        }
        match mode {
            Serve::Echo { len } => {
                let p = rx.payload(conn, who)?;
                check(who, p, len)?;
                let (_, rel) = rx.vec.unwrap();
                reply.msg.set_u64(VEC_ADDR, pool + off + rel);
            }
            Serve::EchoAny => {
                let (size, rel) = rx
                    .vec
                    .ok_or_else(|| Failure::bad("RECV", who, "no PAYLOAD_OFF item"))?;
                reply.msg.set_u64(VEC_SIZE, size);
                reply.msg.set_u64(VEC_ADDR, pool + off + rel);
            }
            Serve::Memfd { len, touch } => {
                let (start, size, mfd) = rx
                    .memfd
                    .ok_or_else(|| Failure::bad("RECV", who, "no PAYLOAD_MEMFD item"))?;
                if size != len as u64 || start != 0 || mfd < 0 {
                    return Err(Failure::bad(
                        "RECV",
                        who,
                        format!("memfd item {{start {start}, size {size}, fd {mfd}}}"),
                    ));
                }
                let r = map_and_touch(mfd, len, touch);
                // SAFETY: the descriptor was installed for us by RECV.
                unsafe { libc::close(mfd) };
                r?;
            }
        }
        cookie += 1;
        reply
            .send(conn, 0, rx.src_id, cookie, rx.cookie, 0)
            .map_err(|e| Failure::sys("SEND", "server reply", e))?;
        conn.free(off).map_err(|e| Failure::sys("FREE", who, e))?;
    }
    Ok(())
}

fn map_and_touch(fd: RawFd, len: usize, touch: Touch) -> Result<(), Failure> {
    let who = "server memfd";
    // SAFETY: a fresh read-only shared mapping of a sealed memfd of at least
    // `len` bytes; unmapped below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(Failure::last("mmap", who));
    }
    // SAFETY: the mapping covers len readable bytes.
    let r = unsafe { data::touch(who, p.cast(), len, touch) };
    // SAFETY: exactly the mapping made above.
    unsafe { libc::munmap(p, len) };
    r
}

/// How the client waits for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `KDBUS_SEND_SYNC_REPLY`: SEND blocks, the reply is at
    /// `cmd_send.reply.offset`.
    Sync,
    /// `EXPECT_REPLY` only: poll the own fd, RECV the reply.
    Async,
}

/// Runs the client loop `body` against a server thread doing `mode`.
fn with_server<F>(peers: &Peers, mode: Serve, body: F) -> Result<Sample, Failure>
where
    F: FnOnce() -> Result<Sample, Failure>,
{
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            data::pin_server()?;
            serve(&peers.server, mode, &stop)
        });
        let res = body();
        stop.store(true, Ordering::Relaxed);
        let srv = h
            .join()
            .unwrap_or_else(|_| Err(Failure::bad("thread", "kdbus server", "panicked")));
        match (res, srv) {
            (Ok(sample), Ok(())) => Ok(sample),
            (Err(c), Ok(())) => Err(c),
            (Ok(_), Err(s)) => Err(s),
            (Err(c), Err(s)) => Err(s.also(format!("then: {c}"))),
        }
    })
}

/// How a call addresses the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst<'a> {
    /// `dst_id` = the server's unique ID.
    Id,
    /// `dst_id` = 0 and a `KDBUS_ITEM_DST_NAME` with this name, which the
    /// server owns.
    Name(&'a str),
}

/// One call from the client connection `c`: SEND `out` to the server
/// (`dst_id` as given: its ID, or 0 with a DST_NAME item in `out`), get the
/// reply (sync or async), check it with `check_reply`, FREE it.
pub fn call(
    c: &Connection,
    dst_id: u64,
    out: &mut Outgoing,
    how: Call,
    cookie: u64,
    rcmd: &mut CmdBuf,
    check_reply: impl FnOnce(&[u8]) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let (who, flags) = match how {
        Call::Sync => ("client sync call", SYNC_REPLY),
        Call::Async => ("client async call", 0),
    };
    let deadline = monotonic_ns() + CALL_TIMEOUT_NS;
    let (roff, rsize) = out
        .send(c, EXPECT_REPLY, dst_id, cookie, deadline, flags)
        .map_err(|e| Failure::sys("SEND", who, e))?;
    let roff = match how {
        Call::Sync if rsize < MSG_HDR as u64 => {
            return Err(Failure::bad(
                "SEND",
                who,
                format!("sync call returned reply {{offset {roff}, msg_size {rsize}}}"),
            ));
        }
        Call::Sync => roff,
        Call::Async => loop {
            if !poll_in(c.as_raw_fd(), CALL_TIMEOUT_MS, who)? {
                return Err(Failure::sys("poll", who, Errno::ETIMEDOUT)
                    .also("no reply within the call timeout"));
            }
            if let Some(off) = recv(c, rcmd).map_err(|e| Failure::sys("RECV", who, e))? {
                break off;
            }
        },
    };
    let rx = parse(c, roff, who)?;
    let r = rx
        .expect_reply(cookie, who)
        .and_then(|()| rx.payload(c, who).and_then(check_reply));
    c.free(roff).map_err(|e| Failure::sys("FREE", who, e))?;
    r
}

/// Method-call round trips with `len` bytes each way.
pub fn rtt(peers: &Peers, len: usize, how: Call, slice: Duration) -> Result<Sample, Failure> {
    rtt_to(peers, Dst::Id, len, how, slice)
}

/// Method-call round trips with `len` bytes each way, addressed as `dst`
/// says.
pub fn rtt_to(
    peers: &Peers,
    dst: Dst,
    len: usize,
    how: Call,
    slice: Duration,
) -> Result<Sample, Failure> {
    let req = data::payload(len);
    let addr = req.as_ptr() as u64;
    let (dst_id, mut out) = match dst {
        Dst::Id => (peers.server.id(), Outgoing::with_vec(len, addr)),
        Dst::Name(n) => (0, Outgoing::with_vec_to_name(len, addr, n)),
    };
    let mut rcmd = CmdBuf::new(RECV_SIZE);
    let mut cookie = 0u64;
    with_server(peers, Serve::Echo { len }, || {
        run_for(slice, 10, || {
            cookie += 1;
            call(
                &peers.client,
                dst_id,
                &mut out,
                how,
                cookie,
                &mut rcmd,
                |p| check("client", p, len),
            )
        })
    })
}

/// Passing the sealed memfd `fd` of `len` bytes in a sync call; the server
/// maps and touches it and answers with 8 bytes.
pub fn memfd(
    peers: &Peers,
    fd: RawFd,
    len: usize,
    touch: Touch,
    slice: Duration,
) -> Result<Sample, Failure> {
    let mut out = Outgoing::with_memfd(len, fd);
    let mut rcmd = CmdBuf::new(RECV_SIZE);
    let mut cookie = 0u64;
    with_server(peers, Serve::Memfd { len, touch }, || {
        run_for(slice, 2, || {
            cookie += 1;
            let dst = peers.server.id();
            call(
                &peers.client,
                dst,
                &mut out,
                Call::Sync,
                cookie,
                &mut rcmd,
                |p| {
                    if p == ACK {
                        Ok(())
                    } else {
                        Err(Failure::bad(
                            "RECV",
                            "client",
                            "reply payload is not the ack",
                        ))
                    }
                },
            )
        })
    })
}

/// Walks a message the way `parse` does, on plain memory (for tests).
#[cfg(test)]
fn parse_bytes(b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let size = u64_at(b, 0) as usize;
    ItemIter::new(&b[MSG_HDR..size])
        .map(|i| {
            let i = i.unwrap();
            (i.ty, i.payload.to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let data = [7u8; 16];
        let out = Outgoing::with_vec(16, data.as_ptr() as u64);
        let b = out.msg.as_bytes();
        assert_eq!(out.msg.size(), 64 + 32);
        assert_eq!(u64_at(b, MSG_PAYLOAD_TYPE), PAYLOAD_DBUS);
        assert_eq!(u64_at(b, VEC_ADDR), data.as_ptr() as u64);
        let items = parse_bytes(b);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].0, ITEM_VEC);
        assert_eq!(u64_at(&items[0].1, 0), 16);
        assert_eq!(out.cmd.size(), 56);
        assert_eq!(out.cmd.u64_at(SEND_MSG_ADDR), b.as_ptr() as u64);

        let m = Outgoing::with_memfd(1 << 20, 9);
        assert_eq!(m.msg.size(), 64 + 40);
        let items = parse_bytes(m.msg.as_bytes());
        assert_eq!(items[0].0, ITEM_MEMFD);
        assert_eq!(u64_at(&items[0].1, 8), 1 << 20);
        assert_eq!(
            i32::from_ne_bytes(items[0].1[16..20].try_into().unwrap()),
            9
        );
        assert_eq!(RECV_MSG + INFO_OFFSET, 40);

        let n = Outgoing::with_vec_to_name(8, data.as_ptr() as u64, "org.kdbus.bench.Echo");
        let nb = n.msg.as_bytes();
        assert_eq!(u64_at(nb, VEC_ADDR), data.as_ptr() as u64);
        let mut n2 = Outgoing::with_vec_to_name(0, 0, "org.kdbus.bench.Echo");
        n2.set_vec(8, data.as_ptr() as u64);
        assert_eq!(n2.msg.as_bytes(), nb);
        let items = parse_bytes(nb);
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].0, ITEM_DST_NAME);
        assert_eq!(&items[1].1[..21], b"org.kdbus.bench.Echo\0");

        let f = [0xa5u8; 72];
        let g = Outgoing::signal(8, data.as_ptr() as u64, &f);
        let items = parse_bytes(g.msg.as_bytes());
        assert_eq!(items.len(), 2);
        assert_eq!((items[0].0, items[1].0), (ITEM_VEC, ITEM_BLOOM_FILTER));
        assert_eq!(items[1].1, f);
        assert_eq!(SEND_REPLY + INFO_SIZE, 40);
    }

    #[test]
    fn setup_without_kdbusfs_fails_cleanly() {
        let e = Peers::setup("/nonexistent-kdbus").err().unwrap();
        assert_eq!(e.code(), "open:ENOENT");
    }
}
