// SPDX-License-Identifier: GPL-2.0

//! Handles: the state of an open kdbus file and ioctl dispatch (spec:
//! abi.md 8, 11). This is the only place that touches user memory: every
//! command is copied in exactly once, and only named fields are written back.
//! No user memory is touched while an active reference on a connection is
//! held (disconnect waits for those), nor under any kdbus lock but the
//! handle's own setup mutex.

use crate::bus::Bus;
use crate::connection::{Connection, Sender};
use crate::delivery;
use crate::endpoint::Endpoint;
use crate::fs::{self, FileNode};
use crate::glue::cred::{Credential, CAP_IPC_OWNER};
use crate::glue::file::File;
use crate::glue::gfp;
use crate::glue::poll::{
    PollTable, PollWatch, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM,
};
use crate::glue::stats::{Kind, Live};
use crate::glue::user;
use crate::glue::vma::VmaNew;
use crate::message::Kmsg;
use crate::proto::cmd::{self, Cmd, CmdSpec, OFF_FLAGS, OFF_RETURN_FLAGS};
use crate::proto::errno::{
    Errno, Result, EAGAIN, EBADFD, EFAULT, EINVAL, EMSGSIZE, ENOTTY, EOPNOTSUPP, EPERM, ESHUTDOWN,
};
use crate::proto::limits::CMD_MAX_SIZE;
use crate::proto::msg;
use crate::proto::names;
use crate::queue::Published;
use crate::uapi::*;
use core::mem::{offset_of, size_of};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::uaccess::UserSlice;

/// What an open file has become (abi.md 11).
enum State {
    /// Freshly opened.
    Unset,
    /// Made a bus, which lives as long as this handle.
    BusOwner(Arc<Bus>),
    /// Made a custom endpoint.
    #[allow(dead_code)]
    EndpointOwner(Arc<Endpoint>),
    /// Said HELLO.
    Connected(Arc<Connection>),
}

/// The private data of an open kdbus file.
#[pin_data]
pub(crate) struct Handle {
    node: FileNode,
    /// Serialises setup ioctls, which copy from user memory while holding
    /// it; never taken by `mmap` (which runs under the mm's mmap_lock).
    #[pin]
    setup: Mutex<()>,
    /// The state; never changes once typed. Held only to read or set it.
    #[pin]
    state: SpinLock<State>,
    _live: Live,
}

/// The kernel's copy of a command: on the stack when small (most
/// commands and messages), else on the heap.
struct CmdCopy {
    small: [u8; Self::SMALL],
    heap: KVVec<u8>,
    len: usize,
}

impl CmdCopy {
    const SMALL: usize = 256;

    fn bytes(&mut self) -> &mut [u8] {
        if self.len <= Self::SMALL {
            &mut self.small[..self.len]
        } else {
            &mut self.heap
        }
    }
}

/// User memory of one ioctl argument.
struct UserArg(usize);

impl UserArg {
    /// Copies the command in (abi.md 8 steps 1-3).
    fn copy_in(&self, fixed: usize) -> Result<CmdCopy> {
        if self.0 % 8 != 0 {
            return Err(EFAULT);
        }
        let size: u64 = UserSlice::new(self.0, 8)
            .reader()
            .read()
            .map_err(|_| EFAULT)?;
        if size < fixed as u64 {
            return Err(EINVAL);
        }
        if size > CMD_MAX_SIZE {
            return Err(EMSGSIZE);
        }
        let len = size as usize;
        let mut copy = CmdCopy {
            small: [0; CmdCopy::SMALL],
            heap: KVVec::new(),
            len,
        };
        if len > CmdCopy::SMALL {
            copy.heap.extend_with(len, 0, gfp())?;
        }
        UserSlice::new(self.0, len)
            .reader()
            .read_slice(copy.bytes())
            .map_err(|_| EFAULT)?;
        // A racing writer may have changed the size between the two reads.
        if crate::proto::item::read_u64(copy.bytes(), 0) != Some(size) {
            return Err(EINVAL);
        }
        Ok(copy)
    }

    /// Writes `data` at byte offset `off` of the argument.
    fn write(&self, off: usize, data: &[u8]) -> Result {
        let addr = self.0.checked_add(off).ok_or(EFAULT)?;
        UserSlice::new(addr, data.len())
            .writer()
            .write_slice(data)
            .map_err(|_| EFAULT)
    }

    fn write_u64(&self, off: usize, val: u64) -> Result {
        self.write(off, &val.to_ne_bytes())
    }

    /// Writes up to four consecutive `u64` fields at `off` in one copy.
    fn write_u64s(&self, off: usize, vals: &[u64]) -> Result {
        let mut bytes = [0u8; 32];
        let n = vals.len().min(4);
        for (chunk, v) in bytes.chunks_exact_mut(8).zip(vals.iter().take(n)) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        self.write(off, &bytes[..n * 8])
    }
}

/// Output fields of a command, written back after its work is done (and
/// its active reference released).
struct Out {
    /// `return_flags`.
    flags: u64,
    /// Consecutive `u64` fields at an offset of the command.
    fields: Option<(usize, [u64; 4], usize)>,
}

impl Out {
    fn flags(flags: u64) -> Self {
        Out {
            flags,
            fields: None,
        }
    }

    fn pair(off: usize, a: u64, b: u64) -> Self {
        Out {
            flags: 0,
            fields: Some((off, [a, b, 0, 0], 2)),
        }
    }
}

/// Generic parsing of a copied command (abi.md 8 steps 4-8); writes back
/// `return_flags` on failure and the patched NEGOTIATE item (9).
fn parse_cmd<'a>(arg: &UserArg, buf: &'a mut [u8], spec: &'static CmdSpec) -> Result<Cmd<'a>> {
    let c = match cmd::parse(buf, spec) {
        Ok(c) => c,
        Err(e) => {
            let _ = arg.write_u64(OFF_RETURN_FLAGS, 0);
            return Err(e);
        }
    };
    if let Some((start, end)) = c.negotiate_range {
        arg.write(start, c.buf.get(start..end).ok_or(EFAULT)?)?;
    }
    Ok(c)
}

/// [`parse_cmd`], then negotiation (abi.md 9). `Ok(None)`: the command only
/// negotiated and has been answered.
fn parse_in<'a>(
    arg: &UserArg,
    buf: &'a mut [u8],
    spec: &'static CmdSpec,
) -> Result<Option<Cmd<'a>>> {
    let c = parse_cmd(arg, buf, spec)?;
    if c.negotiate {
        arg.write_u64(OFF_FLAGS, c.field(OFF_FLAGS))?;
        return Ok(None);
    }
    Ok(Some(c))
}

/// A command's failure, with the `return_flags` to report (0 for most).
struct Failed(Errno, u64);

impl From<Errno> for Failed {
    fn from(e: Errno) -> Self {
        Failed(e, 0)
    }
}

/// Runs one command of a connection: copy and parse (no active reference),
/// then `f` under an active reference, then the write-back of its output.
fn run<F>(conn: &Arc<Connection>, arg: &UserArg, spec: &'static CmdSpec, f: F) -> Result
where
    F: FnOnce(&Arc<Connection>, &Cmd<'_>) -> core::result::Result<Out, Failed>,
{
    let mut buf = arg.copy_in(spec.fixed)?;
    let Some(c) = parse_in(arg, buf.bytes(), spec)? else {
        return Ok(());
    };
    let r = {
        let active = conn.acquire()?;
        f(active.conn(), &c)
    };
    let out = match r {
        Ok(o) => o,
        Err(e) => {
            let Failed(e, rf) = e;
            let _ = arg.write_u64(OFF_RETURN_FLAGS, rf);
            return Err(e);
        }
    };
    if let Some((off, vals, n)) = out.fields {
        arg.write_u64s(off, &vals[..n])?;
    }
    arg.write_u64(OFF_RETURN_FLAGS, out.flags)
}

impl Handle {
    /// A new, unset handle on `node`.
    pub(crate) fn new(node: FileNode) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin_init(
            pin_init!(Handle {
                node,
                setup <- kernel::new_mutex!((), "kdbus_handle_setup"),
                state <- kernel::new_spinlock!(State::Unset, "kdbus_handle_state"),
                _live: Live::new(Kind::Handle),
            }),
            gfp(),
        )?)
    }

    /// The connection, if this handle said HELLO.
    fn conn(&self) -> Option<Arc<Connection>> {
        match &*self.state.lock() {
            State::Connected(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// Dispatches an ioctl.
    pub(crate) fn ioctl(&self, file: &File, cmd: u32, arg: usize) -> Result {
        let arg = UserArg(arg);
        if let Some(conn) = self.conn() {
            // abi.md 11: on a connected handle the active reference comes
            // first, before the command is looked at.
            conn.check_active()?;
            return match cmd {
                KDBUS_CMD_BUS_MAKE
                | KDBUS_CMD_HELLO
                | KDBUS_CMD_ENDPOINT_MAKE
                | KDBUS_CMD_ENDPOINT_UPDATE => Err(EBADFD),
                _ => self.conn_ioctl(&conn, cmd, &arg),
            };
        }
        match cmd {
            KDBUS_CMD_BUS_MAKE => self.bus_make(&arg),
            KDBUS_CMD_HELLO => self.hello(file, &arg),
            KDBUS_CMD_ENDPOINT_MAKE => self.endpoint_make(file, &arg),
            KDBUS_CMD_ENDPOINT_UPDATE => self.endpoint_update(&arg),
            KDBUS_CMD_UPDATE
            | KDBUS_CMD_BYEBYE
            | KDBUS_CMD_FREE
            | KDBUS_CMD_CONN_INFO
            | KDBUS_CMD_BUS_CREATOR_INFO
            | KDBUS_CMD_LIST
            | KDBUS_CMD_SEND
            | KDBUS_CMD_RECV
            | KDBUS_CMD_NAME_ACQUIRE
            | KDBUS_CMD_NAME_RELEASE
            | KDBUS_CMD_MATCH_ADD
            | KDBUS_CMD_MATCH_REMOVE => Err(EBADFD),
            _ => Err(ENOTTY),
        }
    }

    /// KDBUS_CMD_ENDPOINT_MAKE (endpoint.md 2): a custom endpoint, made by
    /// the bus owner through the default endpoint.
    fn endpoint_make(&self, file: &File, arg: &UserArg) -> Result {
        let _setup = self.setup.lock();
        let ep = match (self.is_unset(), &self.node) {
            (true, FileNode::Endpoint(ep)) => ep.clone(),
            _ => return Err(EBADFD),
        };
        if !ep.is_active() {
            return Err(ESHUTDOWN);
        }
        let bus = &ep.bus;
        let owner = ep.is_default
            && (file.cred().euid() == bus.uid
                || bus.domain.user_ns.file_capable(file, CAP_IPC_OWNER));
        if !owner {
            return Err(EPERM);
        }
        let mut buf = arg.copy_in(cmd::ENDPOINT_MAKE.fixed)?;
        let Some(c) = parse_in(arg, buf.bytes(), &cmd::ENDPOINT_MAKE)? else {
            return Ok(());
        };
        arg.write_u64(OFF_RETURN_FLAGS, 0)?;
        let name = c.item(KDBUS_ITEM_MAKE_NAME).ok_or(EINVAL)?.str_bytes();
        let cred = Credential::current();
        let uid = bus.domain.user_ns.map_uid(cred.euid()).ok_or(EINVAL)?;
        names::check_uid_prefix(name, uid)?;
        let new = bus.make_endpoint(name, c.flags, &cred)?;
        if let Err(e) = fs::publish_endpoint(&new) {
            new.deactivate();
            return Err(e);
        }
        self.set_state(State::EndpointOwner(new));
        Ok(())
    }

    /// KDBUS_CMD_ENDPOINT_UPDATE (endpoint.md 3) on an endpoint-owner
    /// handle.
    fn endpoint_update(&self, arg: &UserArg) -> Result {
        let ep = match &*self.state.lock() {
            State::EndpointOwner(ep) => ep.clone(),
            _ => return Err(EBADFD),
        };
        if !ep.is_active() {
            return Err(ESHUTDOWN);
        }
        let mut buf = arg.copy_in(cmd::ENDPOINT_UPDATE.fixed)?;
        let Some(c) = parse_in(arg, buf.bytes(), &cmd::ENDPOINT_UPDATE)? else {
            return Ok(());
        };
        let r = ep.update_policy(&c, Credential::current().user_ns());
        arg.write_u64(OFF_RETURN_FLAGS, 0)?;
        r
    }

    /// Whether the handle is still unset (call with `setup` held).
    fn is_unset(&self) -> bool {
        matches!(*self.state.lock(), State::Unset)
    }

    /// Types the handle (call with `setup` held, once).
    fn set_state(&self, new: State) {
        let old = core::mem::replace(&mut *self.state.lock(), new);
        drop(old);
    }

    fn bus_make(&self, arg: &UserArg) -> Result {
        let _setup = self.setup.lock();
        let domain = match (self.is_unset(), &self.node) {
            (true, FileNode::Control(d)) => d.clone(),
            _ => return Err(EBADFD),
        };
        if !domain.is_active() {
            return Err(ESHUTDOWN);
        }
        let mut buf = arg.copy_in(cmd::BUS_MAKE.fixed)?;
        let Some(c) = parse_in(arg, buf.bytes(), &cmd::BUS_MAKE)? else {
            return Ok(());
        };
        // `return_flags` (0) is the only output: written first, so a
        // command whose memory is not writable fails before it makes
        // anything (and nothing changes).
        arg.write_u64(OFF_RETURN_FLAGS, 0)?;
        let bus = Bus::make(&domain, &Credential::current(), &c)?;
        if let Err(e) = fs::publish_bus(&bus) {
            bus.deactivate();
            return Err(e);
        }
        self.set_state(State::BusOwner(bus));
        Ok(())
    }

    fn hello(&self, file: &File, arg: &UserArg) -> Result {
        let _setup = self.setup.lock();
        let ep = match (self.is_unset(), &self.node) {
            (true, FileNode::Endpoint(ep)) => ep.clone(),
            _ => return Err(EBADFD),
        };
        if !ep.is_active() {
            return Err(ESHUTDOWN);
        }
        let mut buf = arg.copy_in(cmd::HELLO.fixed)?;
        let Some(c) = parse_in(arg, buf.bytes(), &cmd::HELLO)? else {
            return Ok(());
        };
        let reply = match Connection::hello(&ep, file, &c) {
            Ok(r) => r,
            Err(e) => {
                let _ = arg.write_u64(OFF_RETURN_FLAGS, 0);
                return Err(e);
            }
        };
        // Write the whole fixed part back (connection.md 3.2 step 20).
        const FIXED: usize = size_of::<kdbus_cmd_hello>();
        let mut out = [0u8; FIXED];
        out.copy_from_slice(c.buf.get(..FIXED).ok_or(EFAULT)?);
        let fields = [
            (offset_of!(kdbus_cmd_hello, return_flags), 0),
            (offset_of!(kdbus_cmd_hello, bus_flags), ep.bus.flags),
            (offset_of!(kdbus_cmd_hello, id), reply.conn.id),
            (offset_of!(kdbus_cmd_hello, offset), reply.offset),
            (offset_of!(kdbus_cmd_hello, items_size), reply.items_size),
        ];
        for (off, val) in fields {
            crate::proto::item::write_u64(&mut out, off, val);
        }
        let id128 = offset_of!(kdbus_cmd_hello, id128);
        out[id128..id128 + 16].copy_from_slice(&ep.bus.id128);
        if let Err(e) = arg.write(0, &out) {
            reply.conn.disconnect();
            return Err(e);
        }
        self.set_state(State::Connected(reply.conn));
        Ok(())
    }

    fn conn_ioctl(&self, conn: &Arc<Connection>, cmd: u32, arg: &UserArg) -> Result {
        match cmd {
            KDBUS_CMD_BYEBYE => {
                if !conn.is_ordinary() {
                    return Err(EOPNOTSUPP);
                }
                run(conn, arg, &cmd::BYEBYE, |c, _| {
                    c.byebye()?;
                    Ok(Out::flags(0))
                })
            }
            KDBUS_CMD_FREE => {
                if conn.is_policy_holder() {
                    return Err(EOPNOTSUPP);
                }
                run(conn, arg, &cmd::FREE, |conn, c| {
                    conn.free(c.field(offset_of!(kdbus_cmd_free, offset)))?;
                    Ok(Out::flags(0))
                })
            }
            KDBUS_CMD_SEND => {
                if !conn.is_ordinary() {
                    return Err(EOPNOTSUPP);
                }
                self.send(conn, arg)
            }
            KDBUS_CMD_RECV => {
                if conn.is_policy_holder() {
                    return Err(EOPNOTSUPP);
                }
                self.recv(conn, arg)
            }
            KDBUS_CMD_CONN_INFO => run(conn, arg, &cmd::CONN_INFO, |conn, c| {
                let (off, size) = conn.conn_info(&Credential::current(), c)?;
                Ok(Out::pair(offset_of!(kdbus_cmd_info, offset), off, size))
            }),
            KDBUS_CMD_BUS_CREATOR_INFO => run(conn, arg, &cmd::BUS_CREATOR_INFO, |conn, c| {
                let (off, size) = conn.bus_creator_info(c)?;
                Ok(Out::pair(offset_of!(kdbus_cmd_info, offset), off, size))
            }),
            KDBUS_CMD_LIST => run(conn, arg, &cmd::LIST, |conn, c| {
                let (off, size) = conn.list(&Credential::current(), c.flags)?;
                Ok(Out::pair(offset_of!(kdbus_cmd_list, offset), off, size))
            }),
            KDBUS_CMD_UPDATE => run(conn, arg, &cmd::UPDATE, |conn, c| {
                conn.update(c)?;
                Ok(Out::flags(0))
            }),
            KDBUS_CMD_NAME_ACQUIRE
            | KDBUS_CMD_NAME_RELEASE
            | KDBUS_CMD_MATCH_ADD
            | KDBUS_CMD_MATCH_REMOVE
                if !conn.is_ordinary() =>
            {
                Err(EOPNOTSUPP)
            }
            KDBUS_CMD_NAME_ACQUIRE => run(conn, arg, &cmd::NAME_ACQUIRE, |conn, c| {
                let name = c.item(KDBUS_ITEM_NAME).ok_or(EINVAL)?.str_bytes();
                let cred = Credential::current();
                match conn.ep.bus.name_acquire(conn, &cred, name, c.flags) {
                    (Ok(()), rf) => Ok(Out::flags(rf)),
                    (Err(e), rf) => Err(Failed(e, rf)),
                }
            }),
            KDBUS_CMD_NAME_RELEASE => run(conn, arg, &cmd::NAME_RELEASE, |conn, c| {
                let name = c.item(KDBUS_ITEM_NAME).ok_or(EINVAL)?.str_bytes();
                conn.ep.bus.name_release(conn, name)?;
                Ok(Out::flags(0))
            }),
            KDBUS_CMD_MATCH_ADD => run(conn, arg, &cmd::MATCH_ADD, |conn, c| {
                conn.match_add(c)?;
                Ok(Out::flags(0))
            }),
            KDBUS_CMD_MATCH_REMOVE => run(conn, arg, &cmd::MATCH_REMOVE, |conn, c| {
                conn.match_remove(c.field(offset_of!(kdbus_cmd_match, cookie)))?;
                Ok(Out::flags(0))
            }),
            _ => Err(ENOTTY),
        }
    }

    /// KDBUS_CMD_SEND (message.md 5): the command, then the message it
    /// points at, each copied once.
    fn send(&self, conn: &Arc<Connection>, arg: &UserArg) -> Result {
        let mut buf = arg.copy_in(cmd::SEND.fixed)?;
        // SEND negotiates in two layers (abi.md 9): not `parse_in`.
        let c = parse_cmd(arg, buf.bytes(), &cmd::SEND)?;
        let msg_addr = c.field(offset_of!(kdbus_cmd_send, msg_address));
        if c.negotiate && msg_addr == 0 {
            return arg.write_u64(OFF_FLAGS, c.field(OFF_FLAGS));
        }
        let r = self.send_msg(conn, arg, &c, msg_addr);
        if r.is_err() || !c.negotiate {
            let _ = arg.write_u64(OFF_RETURN_FLAGS, 0);
        }
        r
    }

    fn send_msg(&self, conn: &Arc<Connection>, arg: &UserArg, c: &Cmd<'_>, addr: u64) -> Result {
        let marg = UserArg(usize::try_from(addr).map_err(|_| EFAULT)?);
        let mut mbuf = marg.copy_in(msg::MSG.fixed)?;
        let m = cmd::parse(mbuf.bytes(), &msg::MSG)?;
        if let Some((start, end)) = m.negotiate_range {
            marg.write(start, m.buf.get(start..end).ok_or(EFAULT)?)?;
        }
        if m.negotiate && !c.negotiate {
            return Err(EINVAL);
        }
        if c.negotiate {
            if m.negotiate {
                marg.write_u64(OFF_FLAGS, m.field(OFF_FLAGS))?;
            }
            arg.write_u64(OFF_FLAGS, c.field(OFF_FLAGS))?;
            return arg.write_u64(OFF_RETURN_FLAGS, 0);
        }
        // Step 5: CANCEL_FD (EBADF, EINVAL), resolved for every SEND. The
        // watch of a synchronous call is allocated now, before anything is
        // sent, so that failing to allocate it changes nothing.
        let sync = c.flags & KDBUS_SEND_SYNC_REPLY as u64 != 0;
        let watch = match c.item(KDBUS_ITEM_CANCEL_FD) {
            Some(i) => {
                let f = File::fget(i.i32_at(0).ok_or(EINVAL)?)?;
                if !f.can_poll() {
                    return Err(EINVAL);
                }
                match sync {
                    true => Some(PollWatch::new(f)?),
                    false => None,
                }
            }
            None => None,
        };
        let header = msg::Header::read(m.buf);
        let mut s = Sender {
            active: conn.acquire()?,
            cred: Credential::current(),
        };
        let resumed = if sync && header.expects_reply() {
            conn.resumable_call(header.cookie)
        } else {
            None
        };
        let reply = match resumed {
            Some(r) => Some(conn.wait_reply(&mut s, &r, watch.as_deref())?),
            None => {
                let bus = &conn.ep.bus;
                let plan = msg::plan(&m, conn.id, sync, bus.bloom.size, user::range_ok)?;
                let kmsg =
                    Kmsg::from_user(plan.header, plan.payload_size, m.buf, conn, bus.next_seq())?;
                let name = match plan.dst_name {
                    Some((off, len)) => Some(m.buf.get(off..off + len).ok_or(EINVAL)?),
                    None => None,
                };
                delivery::send(&mut s, &kmsg, name, sync, watch.as_deref())?
            }
        };
        drop(s);
        let info = match reply {
            Some(p) => [p.offset, p.size, p.return_flags],
            None => [conn.pool.size(), 0, 0],
        };
        arg.write_u64s(offset_of!(kdbus_cmd_send, reply), &info)
    }

    /// KDBUS_CMD_RECV (message.md 10).
    fn recv(&self, conn: &Arc<Connection>, arg: &UserArg) -> Result {
        let mut buf = arg.copy_in(cmd::RECV.fixed)?;
        let Some(c) = parse_in(arg, buf.bytes(), &cmd::RECV)? else {
            return Ok(());
        };
        let drop_prio = (KDBUS_RECV_DROP | KDBUS_RECV_USE_PRIORITY) as u64;
        if c.flags & drop_prio == drop_prio {
            arg.write_u64(OFF_RETURN_FLAGS, 0)?;
            return Err(EINVAL);
        }
        let priority = c.field(offset_of!(kdbus_cmd_recv, priority)) as i64;
        let (result, lost) = {
            let active = conn.acquire()?;
            active.conn().recv(c.flags, priority)
        };
        let rf = if lost != 0 {
            KDBUS_RECV_RETURN_DROPPED_MSGS as u64
        } else {
            0
        };
        // `msg` and `dropped_msgs` are written on success and on EAGAIN (then
        // with the empty marker, pool.md 4); other errors write neither.
        let msg = match &result {
            Ok(p) => Some([p.offset, p.size, p.return_flags]),
            Err(e) if *e == EAGAIN => {
                let p = Published::empty(&conn.pool);
                Some([p.offset, p.size, p.return_flags])
            }
            Err(_) => None,
        };
        if let Some([off, size, msg_rf]) = msg {
            // `dropped_msgs` and `msg` are adjacent: one copy.
            let fields = [lost, off, size, msg_rf];
            arg.write_u64s(offset_of!(kdbus_cmd_recv, dropped_msgs), &fields)?;
        }
        arg.write_u64(OFF_RETURN_FLAGS, rf)?;
        result.map(|_| ())
    }

    /// `mmap` of the pool (pool.md 3).
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        let conn = self.conn().ok_or(EBADFD)?;
        conn.pool.mmap(vma)
    }

    /// `poll` (connection.md 8).
    pub(crate) fn poll(&self, file: &File, pt: &mut PollTable<'_>) -> u32 {
        let Some(conn) = self.conn() else {
            return POLLERR | POLLHUP;
        };
        pt.register_wait(file, &conn.wait);
        if !conn.is_active() {
            return POLLERR | POLLHUP;
        }
        let mut mask = POLLOUT | POLLWRNORM;
        if conn.has_input() {
            mask |= POLLIN | POLLRDNORM;
        }
        mask
    }

    /// `close()` of the file (abi.md 11): tears down what the handle made.
    pub(crate) fn release(&self) {
        let state = core::mem::replace(&mut *self.state.lock(), State::Unset);
        // Torn down outside the spinlock: teardown sleeps.
        match state {
            State::Unset => {}
            State::BusOwner(bus) => bus.deactivate(),
            State::EndpointOwner(ep) => ep.deactivate(),
            State::Connected(conn) => conn.disconnect(),
        }
    }
}
