//! The connection commands beyond HELLO: SEND, RECV, CONN_INFO,
//! BUS_CREATOR_INFO, LIST and UPDATE (message.md 3, 10; connection.md 5-7;
//! names.md 8), with typed results and raw command builders.

use std::os::fd::RawFd;

use crate::consts::*;
use crate::msg::{InfoRecord, Message, MsgBuilder, ParseError};
use crate::{uapi, CmdBuf, Connection, Errno};
use crate::{CMD_INFO_SIZE, CMD_LIST_SIZE, CMD_RECV_SIZE, CMD_SEND_SIZE};

/// Byte offsets in `struct kdbus_cmd_send`.
pub mod send_off {
    /// `msg_address`.
    pub const MSG_ADDRESS: usize = 24;
    /// `reply.offset`.
    pub const REPLY_OFFSET: usize = 32;
    /// `reply.msg_size`.
    pub const REPLY_MSG_SIZE: usize = 40;
    /// `reply.return_flags`.
    pub const REPLY_RETURN_FLAGS: usize = 48;
}

/// Byte offsets in `struct kdbus_cmd_recv`.
pub mod recv_off {
    /// `priority`.
    pub const PRIORITY: usize = 24;
    /// `dropped_msgs`.
    pub const DROPPED_MSGS: usize = 32;
    /// `msg.offset`.
    pub const MSG_OFFSET: usize = 40;
    /// `msg.msg_size`.
    pub const MSG_SIZE: usize = 48;
    /// `msg.return_flags`.
    pub const MSG_RETURN_FLAGS: usize = 56;
}

/// Byte offsets in `struct kdbus_cmd_info`.
pub mod info_off {
    /// `id`.
    pub const ID: usize = 24;
    /// `attach_flags`.
    pub const ATTACH_FLAGS: usize = 32;
    /// `offset`.
    pub const OFFSET: usize = 40;
    /// `info_size`.
    pub const INFO_SIZE: usize = 48;
}

/// Byte offsets in `struct kdbus_cmd_list`.
pub mod list_off {
    /// `offset`.
    pub const OFFSET: usize = 24;
    /// `list_size`.
    pub const LIST_SIZE: usize = 32;
}

impl CmdBuf {
    /// A `struct kdbus_cmd_send` (56 bytes) for the message at
    /// `msg_address`; `reply` is preset to all ones so that the kernel's
    /// write-back is observable.
    pub fn send(flags: u64, msg_address: u64) -> Self {
        let mut b = Self::new(CMD_SEND_SIZE);
        b.set_flags(flags);
        b.set_u64(send_off::MSG_ADDRESS, msg_address);
        b.set_u64(send_off::REPLY_OFFSET, u64::MAX);
        b.set_u64(send_off::REPLY_MSG_SIZE, u64::MAX);
        b.set_u64(send_off::REPLY_RETURN_FLAGS, u64::MAX);
        b
    }

    /// Appends a `KDBUS_ITEM_CANCEL_FD` item (one `int`).
    pub fn push_cancel_fd(&mut self, fd: RawFd) -> usize {
        self.push_item(ITEM_CANCEL_FD, &fd.to_ne_bytes())
    }

    /// A `struct kdbus_cmd_recv` (64 bytes) with `flags` and `priority`;
    /// the output fields are preset to all ones.
    pub fn recv(flags: u64, priority: i64) -> Self {
        let mut b = Self::new(CMD_RECV_SIZE);
        b.set_flags(flags);
        b.set_u64(recv_off::PRIORITY, priority as u64);
        b.set_u64(recv_off::DROPPED_MSGS, u64::MAX);
        b.set_u64(recv_off::MSG_OFFSET, u64::MAX);
        b.set_u64(recv_off::MSG_SIZE, u64::MAX);
        b.set_u64(recv_off::MSG_RETURN_FLAGS, u64::MAX);
        b
    }

    /// A `struct kdbus_cmd_info` (56 bytes) for CONN_INFO /
    /// BUS_CREATOR_INFO; `offset`/`info_size` preset to all ones.
    pub fn info(id: u64, attach_flags: u64) -> Self {
        let mut b = Self::new(CMD_INFO_SIZE);
        b.set_u64(info_off::ID, id);
        b.set_u64(info_off::ATTACH_FLAGS, attach_flags);
        b.set_u64(info_off::OFFSET, u64::MAX);
        b.set_u64(info_off::INFO_SIZE, u64::MAX);
        b
    }

    /// A `struct kdbus_cmd_list` (40 bytes) with `flags`;
    /// `offset`/`list_size` preset to all ones.
    pub fn list(flags: u64) -> Self {
        let mut b = Self::new(CMD_LIST_SIZE);
        b.set_flags(flags);
        b.set_u64(list_off::OFFSET, u64::MAX);
        b.set_u64(list_off::LIST_SIZE, u64::MAX);
        b
    }
}

/// `struct kdbus_msg_info`: where a message was put in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgInfo {
    /// Pool offset of the slice.
    pub offset: u64,
    /// Slice size.
    pub msg_size: u64,
    /// `KDBUS_RECV_RETURN_INCOMPLETE_FDS` or 0.
    pub return_flags: u64,
}

impl MsgInfo {
    /// Whether this is the empty-slice marker for a pool of `pool_size`
    /// bytes (`offset == pool_size`, size 0, return flags 0; pool.md 4).
    pub fn is_empty_marker(&self, pool_size: u64) -> bool {
        self.offset == pool_size && self.msg_size == 0 && self.return_flags == 0
    }
}

/// The output fields of a SEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReply {
    /// `kdbus_cmd_send.return_flags`.
    pub return_flags: u64,
    /// `kdbus_cmd_send.reply`: the reply of a synchronous call, else the
    /// empty marker.
    pub reply: MsgInfo,
}

impl SendReply {
    /// Decodes the output fields of a `kdbus_cmd_send` buffer.
    pub fn from_cmd(cmd: &CmdBuf) -> Self {
        SendReply {
            return_flags: cmd.return_flags(),
            reply: MsgInfo {
                offset: cmd.u64_at(send_off::REPLY_OFFSET),
                msg_size: cmd.u64_at(send_off::REPLY_MSG_SIZE),
                return_flags: cmd.u64_at(send_off::REPLY_RETURN_FLAGS),
            },
        }
    }
}

/// The output fields of a RECV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvReply {
    /// `kdbus_cmd_recv.return_flags` (`KDBUS_RECV_RETURN_DROPPED_MSGS`).
    pub return_flags: u64,
    /// `dropped_msgs`.
    pub dropped_msgs: u64,
    /// `msg`: the received slice (the empty marker after DROP).
    pub msg: MsgInfo,
}

impl RecvReply {
    /// Decodes the output fields of a `kdbus_cmd_recv` buffer.
    pub fn from_cmd(cmd: &CmdBuf) -> Self {
        RecvReply {
            return_flags: cmd.return_flags(),
            dropped_msgs: cmd.u64_at(recv_off::DROPPED_MSGS),
            msg: MsgInfo {
                offset: cmd.u64_at(recv_off::MSG_OFFSET),
                msg_size: cmd.u64_at(recv_off::MSG_SIZE),
                return_flags: cmd.u64_at(recv_off::MSG_RETURN_FLAGS),
            },
        }
    }
}

/// A successful RECV: the output fields plus access to the message in the
/// receiver's pool.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    conn: &'a Connection,
    /// The RECV output fields.
    pub reply: RecvReply,
}

impl<'a> Received<'a> {
    /// The received slice's location.
    pub fn info(&self) -> MsgInfo {
        self.reply.msg
    }

    /// Pool offset of the slice.
    pub fn offset(&self) -> u64 {
        self.reply.msg.offset
    }

    /// Parses the message in the pool (fails for the empty marker).
    pub fn message(&self) -> Result<Message<'a>, ParseError> {
        self.conn.message(&self.reply.msg)
    }

    /// FREEs the slice.
    pub fn free(&self) -> Result<(), Errno> {
        self.conn.free(self.reply.msg.offset)
    }
}

/// Location of a CONN_INFO / BUS_CREATOR_INFO / LIST result in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolResult {
    /// Pool offset (`pool_size` when empty).
    pub offset: u64,
    /// `info_size` / `list_size`.
    pub size: u64,
}

impl Connection {
    /// Issues KDBUS_CMD_SEND with the raw `kdbus_cmd_send` in `cmd` (its
    /// `msg_address` must point to a live message or be deliberately bad).
    pub fn send_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_SEND, cmd)
    }

    /// Sends `msg` with the SEND `flags` and optional CANCEL_FD; returns the
    /// output fields.
    ///
    /// The kernel reads a copy of the header and items (the payload is read
    /// from the builder's own buffers); use [`Connection::send_raw`] to
    /// observe what the kernel does to the sender's buffer.
    pub fn send_with(
        &self,
        msg: &MsgBuilder,
        flags: u64,
        cancel_fd: Option<RawFd>,
    ) -> Result<SendReply, Errno> {
        let mut copy = msg.cmd().clone();
        let mut cmd = CmdBuf::send(flags, copy.as_mut_ptr() as u64);
        if let Some(fd) = cancel_fd {
            cmd.push_cancel_fd(fd);
        }
        self.send_raw(&mut cmd)?;
        Ok(SendReply::from_cmd(&cmd))
    }

    /// Sends `msg` with the SEND `flags` (0 or `KDBUS_SEND_SYNC_REPLY`).
    pub fn send(&self, msg: &MsgBuilder, flags: u64) -> Result<SendReply, Errno> {
        self.send_with(msg, flags, None)
    }

    /// A synchronous call: SEND with `KDBUS_SEND_SYNC_REPLY`; blocks until
    /// the reply (returned in `reply`, to be parsed with
    /// [`Connection::message`] and FREEd).
    pub fn send_sync(&self, msg: &MsgBuilder) -> Result<SendReply, Errno> {
        self.send_with(msg, SEND_SYNC_REPLY, None)
    }

    /// Issues KDBUS_CMD_RECV with the raw `kdbus_cmd_recv` in `cmd`.
    pub fn recv_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_RECV, cmd)
    }

    /// KDBUS_CMD_RECV with `flags` (`KDBUS_RECV_*`) and `priority` (used
    /// with `KDBUS_RECV_USE_PRIORITY`).
    pub fn recv(&self, flags: u64, priority: i64) -> Result<Received<'_>, Errno> {
        let mut cmd = CmdBuf::recv(flags, priority);
        self.recv_raw(&mut cmd)?;
        Ok(Received {
            conn: self,
            reply: RecvReply::from_cmd(&cmd),
        })
    }

    /// The message in the slice described by `info`.
    pub fn message(&self, info: &MsgInfo) -> Result<Message<'_>, ParseError> {
        let bytes = self.pool_bytes(info.offset, info.msg_size).ok_or_else(|| {
            ParseError(format!(
                "slice {{offset {:#x}, size {:#x}}} outside the pool of {:#x} bytes",
                info.offset,
                info.msg_size,
                self.pool_size()
            ))
        })?;
        Message::parse(bytes)
    }

    /// KDBUS_CMD_CONN_INFO for connection `id` with the `attach_flags`
    /// mask.
    pub fn conn_info(&self, id: u64, attach_flags: u64) -> Result<PoolResult, Errno> {
        let mut cmd = CmdBuf::info(id, attach_flags);
        self.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut cmd)
    }

    /// KDBUS_CMD_CONN_INFO by well-known name (a `KDBUS_ITEM_NAME` item)
    /// and optional `id`.
    pub fn conn_info_name(
        &self,
        name: &str,
        id: u64,
        attach_flags: u64,
    ) -> Result<PoolResult, Errno> {
        let mut cmd = CmdBuf::info(id, attach_flags);
        cmd.push_str(ITEM_NAME, name);
        self.info_raw(uapi::KDBUS_CMD_CONN_INFO, &mut cmd)
    }

    /// KDBUS_CMD_BUS_CREATOR_INFO with the `attach_flags` mask.
    pub fn bus_creator_info(&self, attach_flags: u64) -> Result<PoolResult, Errno> {
        let mut cmd = CmdBuf::info(0, attach_flags);
        self.info_raw(uapi::KDBUS_CMD_BUS_CREATOR_INFO, &mut cmd)
    }

    /// Issues CONN_INFO or BUS_CREATOR_INFO (`request`) with the raw
    /// `kdbus_cmd_info` in `cmd`; returns `offset` and `info_size`.
    pub fn info_raw(
        &self,
        request: uapi::kdbus_ioctl_type,
        cmd: &mut CmdBuf,
    ) -> Result<PoolResult, Errno> {
        self.ioctl(request, cmd)?;
        Ok(PoolResult {
            offset: cmd.u64_at(info_off::OFFSET),
            size: cmd.u64_at(info_off::INFO_SIZE),
        })
    }

    /// KDBUS_CMD_LIST with `flags` (`KDBUS_LIST_*`); returns `offset` and
    /// `list_size`.
    pub fn list(&self, flags: u64) -> Result<PoolResult, Errno> {
        let mut cmd = CmdBuf::list(flags);
        self.list_raw(&mut cmd)
    }

    /// Issues LIST with the raw `kdbus_cmd_list` in `cmd`.
    pub fn list_raw(&self, cmd: &mut CmdBuf) -> Result<PoolResult, Errno> {
        self.ioctl(uapi::KDBUS_CMD_LIST, cmd)?;
        Ok(PoolResult {
            offset: cmd.u64_at(list_off::OFFSET),
            size: cmd.u64_at(list_off::LIST_SIZE),
        })
    }

    /// The `kdbus_info` records in the pool area `r` (empty for a size of
    /// 0).
    pub fn info_records(&self, r: &PoolResult) -> Result<Vec<InfoRecord>, ParseError> {
        if r.size == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.pool_bytes(r.offset, r.size).ok_or_else(|| {
            ParseError(format!(
                "result {{offset {:#x}, size {:#x}}} outside the pool",
                r.offset, r.size
            ))
        })?;
        InfoRecord::parse_all(bytes)
    }

    /// KDBUS_CMD_UPDATE replacing the send and/or receive attach masks
    /// (an item is sent only for `Some`).
    pub fn update(&self, attach_send: Option<u64>, attach_recv: Option<u64>) -> Result<(), Errno> {
        let mut cmd = CmdBuf::cmd(0);
        if let Some(m) = attach_send {
            cmd.push_u64(ITEM_ATTACH_FLAGS_SEND, m);
        }
        if let Some(m) = attach_recv {
            cmd.push_u64(ITEM_ATTACH_FLAGS_RECV, m);
        }
        self.ioctl(uapi::KDBUS_CMD_UPDATE, &mut cmd)
    }
}

/// `CLOCK_MONOTONIC` now, in ns (the clock of `timeout_ns` deadlines).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_REALTIME` now, in ns.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(r, 0, "clock_gettime failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_layout() {
        let mut b = CmdBuf::send(SEND_SYNC_REPLY, 0x1000);
        assert_eq!(b.size(), 56);
        assert_eq!(b.flags(), 1);
        assert_eq!(b.u64_at(24), 0x1000);
        let off = b.push_cancel_fd(7);
        assert_eq!(off, 56);
        assert_eq!(b.u64_at(56), 20);
        assert_eq!(b.u64_at(64), ITEM_CANCEL_FD);
        assert_eq!(b.size(), 56 + 24);
        b.set_u64(32, 0x40);
        b.set_u64(40, 0x80);
        b.set_u64(48, 1);
        b.set_return_flags(0);
        assert_eq!(
            SendReply::from_cmd(&b),
            SendReply {
                return_flags: 0,
                reply: MsgInfo {
                    offset: 0x40,
                    msg_size: 0x80,
                    return_flags: 1
                }
            }
        );
    }

    #[test]
    fn recv_info_list_layout() {
        let mut r = CmdBuf::recv(RECV_PEEK | RECV_USE_PRIORITY, -5);
        assert_eq!(r.size(), 64);
        assert_eq!(r.flags(), 5);
        assert_eq!(r.u64_at(24) as i64, -5);
        r.set_u64(32, 3);
        r.set_u64(40, 0x100);
        r.set_u64(48, 0x20);
        r.set_u64(56, 0);
        r.set_return_flags(RECV_RETURN_DROPPED_MSGS);
        let d = RecvReply::from_cmd(&r);
        assert_eq!(d.dropped_msgs, 3);
        assert_eq!(d.return_flags, 2);
        assert_eq!(d.msg.offset, 0x100);
        assert_eq!(d.msg.msg_size, 0x20);
        let i = CmdBuf::info(9, ATTACH_TIMESTAMP);
        assert_eq!(i.size(), 56);
        assert_eq!(i.u64_at(24), 9);
        assert_eq!(i.u64_at(32), 1);
        let l = CmdBuf::list(LIST_UNIQUE);
        assert_eq!(l.size(), 40);
        assert_eq!(l.flags(), 1);
        let m = MsgInfo {
            offset: 4096,
            msg_size: 0,
            return_flags: 0,
        };
        assert!(m.is_empty_marker(4096));
        assert!(!m.is_empty_marker(8192));
    }

    #[test]
    fn clocks() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a && a > 0);
        assert!(realtime_ns() > 1_500_000_000_000_000_000);
    }
}
