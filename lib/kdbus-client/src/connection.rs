//! The blocking connection: HELLO, sending and receiving D-Bus messages,
//! synchronous and asynchronous calls, names, match rules
//! (dbus-on-kdbus.md 4-6).

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{ArgWalk, BloomParams, CmdBuf, Errno, InfoRecord, PollFlags};
use serde::Serialize;
use zvariant::DynamicType;

use crate::error::names as err;
use crate::kmsg::{self, DEFAULT_TIMEOUT};
use crate::message::{
    is_bus_name, parse_unique_name, unique_name, Message, DBUS_INTERFACE, DBUS_NAME, DBUS_PATH,
};
use crate::metadata::{attach, Metadata};
use crate::rule::MatchRule;
use crate::wire::MessageType;
use crate::{Address, Error, Result};

/// The default pool size (`KDBUS_POOL_SIZE`, 16 MiB).
pub const DEFAULT_POOL_SIZE: u64 = 16 * 1024 * 1024;

/// Builder of a [`Connection`] (HELLO parameters).
#[derive(Debug, Clone)]
pub struct ConnectionBuilder {
    address: Address,
    pool_size: u64,
    attach_send: u64,
    attach_recv: u64,
    description: Option<String>,
    accept_fds: bool,
    walk: ArgWalk,
    timeout: Duration,
}

impl ConnectionBuilder {
    /// A connection to `address` with the defaults: 16 MiB pool,
    /// `ACCEPT_FD`, all metadata allowed to be sent
    /// (`attach_flags_send = _KDBUS_ATTACH_ANY`), [`attach::DEFAULT_RECV`]
    /// asked for, description `"kc-<comm>"`, the recommended bloom argument
    /// walk, 25 s call timeout.
    pub fn address(address: Address) -> Self {
        ConnectionBuilder {
            address,
            pool_size: DEFAULT_POOL_SIZE,
            attach_send: kdbus::ATTACH_ANY,
            attach_recv: attach::DEFAULT_RECV,
            description: None,
            accept_fds: true,
            walk: ArgWalk::Recommended,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The system bus ([`Address::system`]).
    pub fn system() -> Self {
        Self::address(Address::system())
    }

    /// The calling user's bus ([`Address::user`]).
    pub fn user() -> Self {
        Self::address(Address::user())
    }

    /// The endpoint file `path`.
    pub fn path(path: impl AsRef<std::path::Path>) -> Self {
        Self::address(Address::path(path))
    }

    /// The pool size (a multiple of the page size).
    pub fn pool_size(mut self, bytes: u64) -> Self {
        self.pool_size = bytes;
        self
    }

    /// The metadata this connection wants on received messages
    /// (`attach::*`).
    pub fn attach_recv(mut self, mask: u64) -> Self {
        self.attach_recv = mask;
        self
    }

    /// The metadata this connection allows the kernel to attach to what it
    /// sends.
    pub fn attach_send(mut self, mask: u64) -> Self {
        self.attach_send = mask;
        self
    }

    /// The connection's description (`KDBUS_ITEM_CONN_DESCRIPTION`).
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Whether to accept file descriptors (`KDBUS_HELLO_ACCEPT_FD`).
    pub fn accept_fds(mut self, yes: bool) -> Self {
        self.accept_fds = yes;
        self
    }

    /// Which body arguments go into the bloom filter of signals sent
    /// ([`ArgWalk::Recommended`] by default, a superset of sd-bus's;
    /// [`ArgWalk::SdBus`] reproduces sd-bus v228 byte for byte).
    pub fn arg_walk(mut self, walk: ArgWalk) -> Self {
        self.walk = walk;
        self
    }

    /// The default method call timeout.
    pub fn default_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Opens the endpoint and issues HELLO.
    pub fn build(self) -> Result<Connection> {
        let fd = kdbus::open_endpoint(self.address.endpoint()).map_err(Error::from_errno)?;
        let flags = if self.accept_fds { HELLO_ACCEPT_FD } else { 0 };
        let mut cmd = CmdBuf::hello(flags, self.attach_send, self.attach_recv, self.pool_size);
        let desc = self.description.clone().unwrap_or_else(default_description);
        cmd.push_str(ITEM_CONN_DESCRIPTION, &desc);
        let raw = kdbus::Connection::from_hello(fd, &mut cmd)?;
        let h = *raw.hello_reply();
        if h.bus_flags > 0xffff_ffff {
            return Err(Error::from_errno(Errno::EPROTONOSUPPORT));
        }
        let mut bloom = BloomParams::DEFAULT;
        if let Some(items) = raw.pool_items(h.offset, h.items_size) {
            for it in items.flatten() {
                if it.ty == ITEM_BLOOM_PARAMETER {
                    if let Ok(p) = BloomParams::from_item(&it) {
                        bloom = p;
                    }
                }
            }
        }
        if h.items_size > 0 {
            let _ = raw.free(h.offset);
        }
        Ok(Connection {
            unique: unique_name(raw.id()),
            raw,
            bloom,
            walk: self.walk,
            timeout: self.timeout,
            cookie: AtomicU64::new(1),
            match_cookie: AtomicU64::new(1),
            lost: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
        })
    }
}

fn default_description() -> String {
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    format!("kc-{}", comm.trim())
}

/// D-Bus `RequestName` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestNameFlags(pub u32);

impl RequestNameFlags {
    /// No flags: queue if the name is taken, no replacement.
    pub const NONE: Self = Self(0);
    /// 1: allow another connection to take the name over.
    pub const ALLOW_REPLACEMENT: Self = Self(1);
    /// 2: take the name from its owner if it allows replacement.
    pub const REPLACE_EXISTING: Self = Self(2);
    /// 4: fail instead of queueing.
    pub const DO_NOT_QUEUE: Self = Self(4);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The `NAME_ACQUIRE` flags (dbus-on-kdbus.md 6.1): ALLOW_REPLACEMENT
    /// -> `KDBUS_NAME_ALLOW_REPLACEMENT`, REPLACE_EXISTING ->
    /// `KDBUS_NAME_REPLACE_EXISTING`, not DO_NOT_QUEUE -> `KDBUS_NAME_QUEUE`.
    ///
    /// ```
    /// use kdbus_client::RequestNameFlags as F;
    /// use kdbus::consts::*;
    /// assert_eq!(F::NONE.to_kdbus(), NAME_QUEUE);
    /// assert_eq!((F::ALLOW_REPLACEMENT | F::DO_NOT_QUEUE).to_kdbus(), NAME_ALLOW_REPLACEMENT);
    /// assert_eq!((F::REPLACE_EXISTING | F::DO_NOT_QUEUE).to_kdbus(), NAME_REPLACE_EXISTING);
    /// ```
    pub fn to_kdbus(self) -> u64 {
        let mut f = 0;
        if self.contains(Self::ALLOW_REPLACEMENT) {
            f |= NAME_ALLOW_REPLACEMENT;
        }
        if self.contains(Self::REPLACE_EXISTING) {
            f |= NAME_REPLACE_EXISTING;
        }
        if !self.contains(Self::DO_NOT_QUEUE) {
            f |= NAME_QUEUE;
        }
        f
    }
}

impl core::ops::BitOr for RequestNameFlags {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
}

/// D-Bus `RequestName` reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestNameReply {
    /// 1: the caller is now the primary owner.
    PrimaryOwner = 1,
    /// 2: the caller waits in the name's queue.
    InQueue = 2,
    /// 3: the name has another owner and the caller did not queue.
    Exists = 3,
    /// 4: the caller already owned the name.
    AlreadyOwner = 4,
}

impl RequestNameReply {
    /// The reply for NAME_ACQUIRE's `return_flags` (dbus-on-kdbus.md 7,
    /// the recommendation for the final kernel): `PRIMARY` and `ACQUIRED`
    /// -> 1; `IN_QUEUE` -> 2; `PRIMARY` without `ACQUIRED` -> 4; neither
    /// -> 3.
    pub fn from_return_flags(rf: u64) -> Self {
        if rf & NAME_IN_QUEUE != 0 {
            RequestNameReply::InQueue
        } else if rf & NAME_PRIMARY != 0 && rf & NAME_ACQUIRED != 0 {
            RequestNameReply::PrimaryOwner
        } else if rf & NAME_PRIMARY != 0 {
            RequestNameReply::AlreadyOwner
        } else {
            RequestNameReply::Exists
        }
    }
}

/// D-Bus `ReleaseName` reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseNameReply {
    /// 1: released (or left the queue).
    Released = 1,
    /// 2: nobody has the name (`ESRCH`).
    NonExistent = 2,
    /// 3: the caller neither owns nor waits for it (`EADDRINUSE`).
    NotOwner = 3,
}

/// An asynchronous call in flight ([`Connection::call_async`]).
#[derive(Debug, Clone)]
pub struct PendingCall {
    cookie: u64,
    deadline: Instant,
}

impl PendingCall {
    /// The call's cookie.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }
}

/// A match rule added with [`Connection::add_match`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchHandle {
    cookie: u64,
}

impl MatchHandle {
    /// The kdbus match cookie.
    pub fn cookie(&self) -> u64 {
        self.cookie
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub queue: VecDeque<Message>,
    pub replies: HashMap<u64, Message>,
    pub pending: HashSet<u64>,
    reader: bool,
    rules: Vec<(u64, MatchRule)>,
    /// Broadcast signals the kernel delivered that no rule accepted.
    unmatched: u64,
}

/// A kdbus connection speaking D-Bus.
///
/// All methods take `&self`; a connection can be shared between threads
/// (`Arc<Connection>`). Messages that arrive while a thread waits for
/// something else are queued for [`Connection::receive`]; replies to
/// [`Connection::call_async`] go to their waiter. Waiting threads take
/// turns polling the descriptor (no thread per message, no busy loop).
///
/// The descriptor ([`AsRawFd`]) is readable when a message or a lost
/// count is waiting, for use with any event loop; see
/// [`Connection::try_receive`] and, with the `tokio` feature,
/// `AsyncConnection`.
pub struct Connection {
    raw: kdbus::Connection,
    unique: String,
    bloom: BloomParams,
    walk: ArgWalk,
    timeout: Duration,
    cookie: AtomicU64,
    match_cookie: AtomicU64,
    lost: AtomicU64,
    state: Mutex<State>,
    cond: Condvar,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("unique_name", &self.unique)
            .field("fd", &self.raw.as_raw_fd())
            .finish()
    }
}

fn no_owner(name: &str) -> Error {
    Error::method(
        err::NAME_HAS_NO_OWNER,
        format!("Name {name} is currently not owned by anyone."),
    )
}

impl Connection {
    /// Connects to the endpoint at `path` with the defaults.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        ConnectionBuilder::path(path).build()
    }

    /// Connects to a D-Bus address string (`kernel:path=...`).
    pub fn open_address(address: &str) -> Result<Self> {
        ConnectionBuilder::address(Address::parse(address)?).build()
    }

    /// Connects to the system bus.
    pub fn system() -> Result<Self> {
        ConnectionBuilder::system().build()
    }

    /// Connects to the calling user's bus.
    pub fn user() -> Result<Self> {
        ConnectionBuilder::user().build()
    }

    /// The unique name `:1.<id>`.
    pub fn unique_name(&self) -> &str {
        &self.unique
    }

    /// The connection id.
    pub fn id(&self) -> u64 {
        self.raw.id()
    }

    /// The bus id (`GetId`): the bus UUID as 32 lowercase hex digits.
    pub fn bus_id(&self) -> String {
        self.raw
            .id128()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The bus's bloom parameters.
    pub fn bloom_params(&self) -> BloomParams {
        self.bloom
    }

    /// The low-level connection (for anything this crate does not wrap).
    pub fn raw(&self) -> &kdbus::Connection {
        &self.raw
    }

    /// How many messages the kernel reported lost (receive queue or pool
    /// full) so far.
    pub fn lost_messages(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// How many broadcast signals the kernel delivered so far that none of
    /// this connection's match rules accepted when re-checked in userspace
    /// (bloom filter false positives, or rules with conditions a bloom
    /// mask cannot express); they were dropped, not returned by
    /// [`Connection::receive`]. Zero means the kernel's bloom filtering
    /// alone kept every other broadcast away.
    pub fn unmatched_broadcasts(&self) -> u64 {
        self.lock().unmatched
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_cookie(&self) -> u64 {
        let c = self.cookie.fetch_add(1, Ordering::Relaxed);
        if c == 0 || c >= wire_cookie_limit() {
            self.cookie.store(2, Ordering::Relaxed);
            1
        } else {
            c
        }
    }

    // ---- sending ----

    fn send_inner(
        &self,
        msg: &Message,
        flags: u64,
        timeout: Duration,
    ) -> Result<(u64, kdbus::SendReply)> {
        let cookie = if msg.cookie() != 0 {
            msg.cookie()
        } else {
            self.next_cookie()
        };
        let o = kmsg::outgoing(msg, cookie, timeout, self.bloom, self.walk)?;
        match self.raw.send(&o.builder, flags) {
            Ok(r) => Ok((cookie, r)),
            Err(e) => Err(Error::from_send_errno(e, o.is_call, msg.destination())),
        }
    }

    /// Sends any message without waiting for a reply; returns its cookie.
    ///
    /// As sd-bus does (dbus-on-kdbus.md 4.4), a message that is not a
    /// call is silently dropped when its destination does not exist
    /// (`ENXIO`, `ESRCH`, `EADDRNOTAVAIL`), and `EAGAIN` counts as sent.
    /// Replies to calls sent this way arrive through [`Connection::receive`].
    pub fn send(&self, msg: &Message) -> Result<u64> {
        match self.send_inner(msg, 0, self.timeout) {
            Ok((c, _)) => Ok(c),
            Err(e) if !msg.expects_reply() => match e.errno() {
                Some(Errno::ENXIO | Errno::ESRCH | Errno::EADDRNOTAVAIL | Errno::EAGAIN) => Ok(0),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// A synchronous method call with the default timeout (25 s): the
    /// kernel blocks in SEND until the reply (`KDBUS_SEND_SYNC_REPLY`).
    /// An error reply becomes `Err(Error::MethodError)`; `ETIMEDOUT`
    /// becomes `org.freedesktop.DBus.Error.Timeout`, a missing
    /// destination `ServiceUnknown`, a callee that died `NoReply`.
    pub fn call(&self, msg: &Message) -> Result<Message> {
        self.call_timeout(msg, self.timeout)
    }

    /// [`Connection::call`] with an explicit timeout.
    pub fn call_timeout(&self, msg: &Message, timeout: Duration) -> Result<Message> {
        if !msg.expects_reply() {
            return Err(Error::method(err::INVALID_ARGS, "message expects no reply"));
        }
        let (_, r) = self.send_inner(msg, SEND_SYNC_REPLY, timeout)?;
        let km = self
            .raw
            .message(&r.reply)
            .map_err(|e| Error::Wire(crate::wire::WireError(e.0)));
        let reply = km.and_then(|km| kmsg::incoming(&km, self.id()));
        let _ = self.raw.free(r.reply.offset);
        match reply? {
            Some(m) => match m.to_error() {
                Some(e) => Err(e),
                None => Ok(m),
            },
            None => Err(Error::method(
                err::NO_REPLY,
                "reply was not a D-Bus message",
            )),
        }
    }

    /// Calls `interface.member` on `path` of `destination` with `body` and
    /// returns the reply (synchronously, default timeout).
    ///
    /// ```no_run
    /// # fn main() -> kdbus_client::Result<()> {
    /// let conn = kdbus_client::Connection::system()?;
    /// let reply = conn.call_method(
    ///     "org.example.Echo", "/org/example/Echo", Some("org.example.Echo"), "Echo", &("hi",))?;
    /// let echoed: String = reply.body()?;
    /// # Ok(()) }
    /// ```
    pub fn call_method<B>(
        &self,
        destination: &str,
        path: &str,
        interface: Option<&str>,
        member: &str,
        body: &B,
    ) -> Result<Message>
    where
        B: Serialize + DynamicType + ?Sized,
    {
        let mut b = Message::method_call(path, member).destination(destination);
        if let Some(i) = interface {
            b = b.interface(i);
        }
        self.call(&b.build(body)?)
    }

    /// Starts an asynchronous call (SEND with `EXPECT_REPLY` and a
    /// deadline, not blocking); wait with [`Connection::wait_reply`]. A
    /// timeout arrives as the kernel's REPLY_TIMEOUT notification,
    /// translated to `NoReply` "Method call timed out".
    pub fn call_async(&self, msg: &Message, timeout: Option<Duration>) -> Result<PendingCall> {
        if !msg.expects_reply() {
            return Err(Error::method(err::INVALID_ARGS, "message expects no reply"));
        }
        let timeout = timeout.unwrap_or(self.timeout);
        let cookie = if msg.cookie() != 0 {
            msg.cookie()
        } else {
            self.next_cookie()
        };
        self.lock().pending.insert(cookie);
        let r = kmsg::outgoing(msg, cookie, timeout, self.bloom, self.walk).and_then(|o| {
            self.raw
                .send(&o.builder, 0)
                .map_err(|e| Error::from_send_errno(e, true, msg.destination()))
        });
        if let Err(e) = r {
            self.lock().pending.remove(&cookie);
            return Err(e);
        }
        Ok(PendingCall {
            cookie,
            // The kernel's notification comes at the deadline; allow it a
            // moment before the local timer gives up.
            deadline: Instant::now() + timeout + Duration::from_millis(500),
        })
    }

    /// Waits for the reply of `call` (blocking). An error reply is
    /// `Err(Error::MethodError)`.
    pub fn wait_reply(&self, call: &PendingCall) -> Result<Message> {
        let c = call.cookie;
        let r = self.wait_for(Some(call.deadline), |st| st.replies.remove(&c));
        self.lock().pending.remove(&c);
        let m = match r? {
            Some(m) => m,
            None => kmsg::no_reply(c, self.id(), "Method call timed out")?,
        };
        match m.to_error() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    /// Replies to `call` with `body` (nothing is sent if the call expects
    /// no reply). A reply nobody waits for any more is not an error: when
    /// the caller's timeout passed (or it cancelled), the kernel has closed
    /// the call's window and refuses the reply with `EBADSLT` (message.md
    /// 8.1, 8.2), which is dropped here, as dbus-daemon drops late replies.
    pub fn reply<B>(&self, call: &Message, body: &B) -> Result<()>
    where
        B: Serialize + DynamicType + ?Sized,
    {
        if call.expects_reply() {
            self.send_reply(&Message::method_return(call).build(body)?)?;
        }
        Ok(())
    }

    /// Replies to `call` with the error `name` and text `message` (a late
    /// reply is dropped as in [`Connection::reply`]).
    pub fn reply_error(&self, call: &Message, name: &str, message: &str) -> Result<()> {
        if call.expects_reply() {
            self.send_reply(&Message::error_reply(call, name, message)?)?;
        }
        Ok(())
    }

    fn send_reply(&self, reply: &Message) -> Result<()> {
        match self.send(reply) {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == Some(Errno::EBADSLT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Emits the signal `interface.member` from `path` with `body`: a
    /// broadcast when `destination` is `None` (with the bloom filter built
    /// as sd-bus does), else a unicast signal.
    pub fn emit_signal<B>(
        &self,
        destination: Option<&str>,
        path: &str,
        interface: &str,
        member: &str,
        body: &B,
    ) -> Result<()>
    where
        B: Serialize + DynamicType + ?Sized,
    {
        let mut b = Message::signal(path, interface, member);
        if let Some(d) = destination {
            b = b.destination(d);
        }
        self.send(&b.build(body)?)?;
        Ok(())
    }

    // ---- receiving ----

    /// One RECV: `Ok(false)` if nothing is queued. Messages are dispatched
    /// into the state.
    fn recv_one(&self) -> Result<bool> {
        let r = match self.raw.recv(0, 0) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => return Ok(false),
            Err(Errno::ECONNRESET | Errno::ESHUTDOWN | Errno::EPIPE) => {
                return Err(Error::Disconnected)
            }
            Err(e) => return Err(Error::from_errno(e)),
        };
        if r.reply.return_flags & RECV_RETURN_DROPPED_MSGS != 0 {
            self.lost.fetch_add(r.reply.dropped_msgs, Ordering::Relaxed);
        }
        let msg = r
            .message()
            .map_err(|e| Error::Wire(crate::wire::WireError(e.0)))
            .and_then(|km| kmsg::incoming(&km, self.id()));
        let _ = r.free();
        // Invalid messages are dropped silently (dbus-on-kdbus.md 5.1).
        if let Ok(Some(m)) = msg {
            let mut st = self.lock();
            dispatch(&mut st, m);
        }
        Ok(true)
    }

    /// Receives everything queued in the kernel without blocking; returns
    /// how many RECVs succeeded.
    pub(crate) fn drain(&self) -> Result<usize> {
        let mut n = 0;
        while self.recv_one()? {
            n += 1;
        }
        if n > 0 {
            self.cond.notify_all();
        }
        Ok(n)
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<()> {
        let ms = match timeout {
            None => -1,
            Some(d) => d.as_millis().min(i32::MAX as u128) as i32,
        };
        let mut fds = [nix::poll::PollFd::new(self.raw.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(
            &mut fds,
            nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
        ) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::from_errno(e)),
        }
        let rev = fds[0].revents().unwrap_or(PollFlags::empty());
        if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
            && !rev.contains(PollFlags::POLLIN)
        {
            return Err(Error::Disconnected);
        }
        Ok(())
    }

    /// Waits until `check` finds something in the state or the deadline
    /// passes; one waiter at a time polls the descriptor, the others sleep
    /// on a condition variable and are woken after each drain.
    fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Result<Option<T>> {
        let mut st = self.lock();
        loop {
            if let Some(v) = check(&mut st) {
                return Ok(Some(v));
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(None);
            }
            if st.reader {
                st = match remaining {
                    Some(r) => {
                        self.cond
                            .wait_timeout(st, r)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                    None => self.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
                };
                continue;
            }
            st.reader = true;
            drop(st);
            let r = self.drain().and_then(|n| {
                if n == 0 {
                    self.poll(remaining)?;
                    self.drain()
                } else {
                    Ok(n)
                }
            });
            st = self.lock();
            st.reader = false;
            self.cond.notify_all();
            r?;
        }
    }

    /// Receives the next message (blocking up to `timeout`, forever for
    /// `None`): calls addressed to us, replies not awaited through
    /// [`Connection::wait_reply`], signals accepted by one of our match
    /// rules, synthesized `NameOwnerChanged` and `NoReply` messages.
    pub fn receive(&self, timeout: Option<Duration>) -> Result<Option<Message>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.wait_for(deadline, |st| st.queue.pop_front())
    }

    /// Receives a message if one is waiting, without blocking.
    pub fn try_receive(&self) -> Result<Option<Message>> {
        if let Some(m) = self.lock().queue.pop_front() {
            return Ok(Some(m));
        }
        self.drain()?;
        Ok(self.lock().queue.pop_front())
    }

    // ---- names ----

    /// `RequestName` (dbus-on-kdbus.md 6.1, 7).
    pub fn request_name(&self, name: &str, flags: RequestNameFlags) -> Result<RequestNameReply> {
        if name.starts_with(':') || name == DBUS_NAME || name == "org.freedesktop.DBus.Local" {
            return Err(Error::from_errno(Errno::EINVAL));
        }
        if !kdbus::valid_name(name, false) {
            return Err(Error::InvalidName(format!(
                "invalid well-known name {name:?}"
            )));
        }
        if flags.0 > 7 {
            return Err(Error::method(
                err::INVALID_ARGS,
                "invalid RequestName flags",
            ));
        }
        match self.raw.name_acquire(name, flags.to_kdbus()) {
            Ok(rf) => Ok(RequestNameReply::from_return_flags(rf)),
            Err(Errno::EEXIST) => Ok(RequestNameReply::Exists),
            Err(Errno::EALREADY) => Ok(RequestNameReply::AlreadyOwner),
            Err(e) => Err(Error::from_errno(e)),
        }
    }

    /// `ReleaseName`.
    pub fn release_name(&self, name: &str) -> Result<ReleaseNameReply> {
        match self.raw.name_release(name) {
            Ok(()) => Ok(ReleaseNameReply::Released),
            Err(Errno::ESRCH) => Ok(ReleaseNameReply::NonExistent),
            Err(Errno::EADDRINUSE) => Ok(ReleaseNameReply::NotOwner),
            Err(e) => Err(Error::from_errno(e)),
        }
    }

    fn list(&self, flags: u64) -> Result<Vec<InfoRecord>> {
        self.raw.list_records(flags).map_err(Error::from_errno)
    }

    /// `ListNames`: every unique name (activators hidden) and every owned
    /// well-known name, plus `org.freedesktop.DBus`, sorted.
    pub fn list_names(&self) -> Result<Vec<String>> {
        let mut out = vec![DBUS_NAME.to_string()];
        let mut last_id = None;
        for r in self.list(LIST_UNIQUE | LIST_NAMES)? {
            if last_id != Some(r.id) && r.flags & HELLO_ACTIVATOR == 0 {
                out.push(unique_name(r.id));
            }
            last_id = Some(r.id);
            for n in r.owned_names().unwrap_or_default() {
                if n.flags & (NAME_ACTIVATOR | NAME_IN_QUEUE) == 0 {
                    out.push(n.name);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// `ListActivatableNames`: the names held by activators, sorted.
    pub fn list_activatable_names(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list(LIST_ACTIVATORS)?
            .into_iter()
            .flat_map(|r| r.owned_names().unwrap_or_default())
            .map(|n| n.name)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// `ListQueuedOwners`: the primary owner first, then the queued ones.
    pub fn list_queued_owners(&self, name: &str) -> Result<Vec<String>> {
        let mut out = vec![self.get_name_owner(name).map_err(|_| {
            Error::method(
                err::NAME_HAS_NO_OWNER,
                format!("Could not get owners of name '{name}': no such name."),
            )
        })?];
        for r in self.list(LIST_QUEUED)? {
            for n in r.owned_names().unwrap_or_default() {
                if n.name == name && n.flags & NAME_IN_QUEUE != 0 {
                    out.push(unique_name(r.id));
                }
            }
        }
        Ok(out)
    }

    fn conn_info(&self, name: &str, attach_flags: u64) -> Result<InfoRecord> {
        let r = match parse_unique_name(name) {
            Some(id) => self.raw.conn_info(id, attach_flags),
            None if kdbus::valid_name(name, false) => {
                self.raw.conn_info_name(name, 0, attach_flags)
            }
            None => return Err(Error::InvalidName(format!("invalid bus name {name:?}"))),
        };
        let r = match r {
            Ok(r) => r,
            Err(Errno::ESRCH | Errno::ENXIO) => return Err(no_owner(name)),
            Err(e) => return Err(Error::from_errno(e)),
        };
        let recs = self.raw.info_records(&kdbus::PoolResult {
            offset: r.offset,
            size: r.size,
        });
        let _ = self.raw.free(r.offset);
        let rec = recs
            .map_err(|e| Error::Wire(crate::wire::WireError(e.0)))?
            .into_iter()
            .next()
            .ok_or_else(|| no_owner(name))?;
        if rec.flags & HELLO_ACTIVATOR != 0 {
            return Err(no_owner(name));
        }
        Ok(rec)
    }

    /// `GetNameOwner`: the unique name of `name`'s primary owner
    /// (`org.freedesktop.DBus.Error.NameHasNoOwner` if none, or only an
    /// activator).
    pub fn get_name_owner(&self, name: &str) -> Result<String> {
        if name == DBUS_NAME {
            return Ok(DBUS_NAME.into());
        }
        Ok(unique_name(self.conn_info(name, 0)?.id))
    }

    /// `NameHasOwner`.
    pub fn name_has_owner(&self, name: &str) -> Result<bool> {
        match self.get_name_owner(name) {
            Ok(_) => Ok(true),
            Err(e) if e.is(err::NAME_HAS_NO_OWNER) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GetConnectionCredentials` and friends: what CONN_INFO reports
    /// about `name`'s owner (every kind of metadata asked for; the kernel
    /// gives what it has and the owner allows).
    pub fn connection_credentials(&self, name: &str) -> Result<Metadata> {
        let rec = self.conn_info(name, attach::ALL)?;
        Ok(Metadata::from_items(
            rec.items.iter().map(|i| (i.ty, &i.payload[..])),
        ))
    }

    // ---- match rules ----

    /// `AddMatch`: parses the rule string and adds it (one or more
    /// MATCH_ADDs with one cookie, dbus-on-kdbus.md 6.2). Broadcasts the
    /// kernel delivers are re-checked against the rules before
    /// [`Connection::receive`] returns them.
    ///
    /// ```no_run
    /// # fn main() -> kdbus_client::Result<()> {
    /// let conn = kdbus_client::Connection::system()?;
    /// conn.add_match("type='signal',interface='org.example.Echo',member='Echoed'")?;
    /// while let Some(sig) = conn.receive(None)? {
    ///     println!("{:?} from {:?}", sig.member(), sig.sender());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn add_match(&self, rule: &str) -> Result<MatchHandle> {
        self.add_match_rule(MatchRule::parse(rule)?)
    }

    /// [`Connection::add_match`] with a parsed rule.
    pub fn add_match_rule(&self, rule: MatchRule) -> Result<MatchHandle> {
        let cookie = self.match_cookie.fetch_add(1, Ordering::Relaxed);
        for e in rule.to_kdbus(cookie, self.bloom) {
            if let Err(er) = self.raw.match_add(&e) {
                let _ = self.raw.match_remove(cookie);
                return Err(Error::from_errno(er));
            }
        }
        self.lock().rules.push((cookie, rule));
        Ok(MatchHandle { cookie })
    }

    /// `RemoveMatch` of a rule added before (all its entries at once).
    pub fn remove_match(&self, handle: &MatchHandle) -> Result<()> {
        let mut st = self.lock();
        let Some(i) = st.rules.iter().position(|(c, _)| *c == handle.cookie) else {
            return Err(Error::method(
                err::MATCH_RULE_NOT_FOUND,
                "Match rule not found",
            ));
        };
        st.rules.remove(i);
        drop(st);
        match self.raw.match_remove(handle.cookie) {
            Ok(()) | Err(Errno::EBADSLT) => Ok(()),
            Err(e) => Err(Error::from_errno(e)),
        }
    }

    /// Subscribes to `NameOwnerChanged` (for `name`, or every name), which
    /// the connection synthesizes from the kernel's notifications; use
    /// [`Message::name_owner_changed`] on what [`Connection::receive`]
    /// returns.
    pub fn watch_name_owner(&self, name: Option<&str>) -> Result<MatchHandle> {
        let mut r = MatchRule {
            msg_type: Some(MessageType::Signal),
            sender: Some(DBUS_NAME.into()),
            interface: Some(DBUS_INTERFACE.into()),
            member: Some("NameOwnerChanged".into()),
            path: Some(DBUS_PATH.into()),
            ..Default::default()
        };
        if let Some(n) = name {
            if !is_bus_name(n) {
                return Err(Error::InvalidName(format!("invalid bus name {n:?}")));
            }
            r.args.insert(0, n.into());
        }
        self.add_match_rule(r)
    }
}

const fn wire_cookie_limit() -> u64 {
    // Keep cookies below 2^32 (dbus-on-kdbus.md 2) and clear of the
    // synthetic 0xffffffff.
    0xffff_fffe
}

/// Puts a received message where its waiter finds it.
pub(crate) fn dispatch(st: &mut State, m: Message) {
    let is_reply = matches!(
        m.message_type(),
        MessageType::MethodReturn | MessageType::Error
    );
    if is_reply {
        if let Some(r) = m.reply_serial() {
            if st.pending.contains(&r) {
                st.replies.insert(r, m);
                return;
            }
        }
    }
    if m.message_type() == MessageType::Signal
        && m.is_broadcast()
        && !st.rules.iter().any(|(_, r)| r.matches(&m))
    {
        st.unmatched += 1;
        return;
    }
    st.queue.push_back(m);
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.raw.as_fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.raw.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_name_reply_codes() {
        use RequestNameReply::*;
        assert_eq!(
            RequestNameReply::from_return_flags(NAME_PRIMARY | NAME_ACQUIRED),
            PrimaryOwner
        );
        assert_eq!(
            RequestNameReply::from_return_flags(NAME_IN_QUEUE | NAME_ACQUIRED),
            InQueue
        );
        assert_eq!(
            RequestNameReply::from_return_flags(NAME_PRIMARY),
            AlreadyOwner
        );
        assert_eq!(RequestNameReply::from_return_flags(0), Exists);
        let f = RequestNameFlags::ALLOW_REPLACEMENT | RequestNameFlags::REPLACE_EXISTING;
        assert_eq!(
            f.to_kdbus(),
            NAME_ALLOW_REPLACEMENT | NAME_REPLACE_EXISTING | NAME_QUEUE
        );
    }

    #[test]
    fn open_missing_endpoint() {
        let e = Connection::open("/nonexistent/bus").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
        assert_eq!(e.name(), err::FILE_NOT_FOUND);
        assert!(Connection::open_address("unix:path=/x").is_err());
    }

    #[test]
    fn dispatch_routes() {
        let mut st = State::default();
        let mut call = Message::method_call("/a", "M").build_empty().unwrap();
        call.header.cookie = 7;
        call.sender = Some(":1.2".into());
        st.pending.insert(7);
        dispatch(
            &mut st,
            Message::method_return(&call).build_empty().unwrap(),
        );
        assert!(st.replies.contains_key(&7));
        let mut sig = Message::signal("/a", "a.b", "C").build_empty().unwrap();
        sig.sender = Some(":1.2".into());
        dispatch(&mut st, sig);
        assert!(
            st.queue.is_empty(),
            "a broadcast without a matching rule is dropped"
        );
        st.rules.push((1, MatchRule::parse("member='C'").unwrap()));
        let mut sig = Message::signal("/a", "a.b", "C").build_empty().unwrap();
        sig.sender = Some(":1.2".into());
        dispatch(&mut st, sig);
        assert_eq!(st.queue.len(), 1);
        dispatch(&mut st, call);
        assert_eq!(st.queue.len(), 2);
    }
}
