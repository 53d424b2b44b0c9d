// SPDX-License-Identifier: GPL-2.0

//! SEND: message validation and payload layout (spec: message.md 2-5, 14).
//! Pure.

use crate::proto::cmd::{Cmd, CmdSpec, ItemSpec, REPEAT};
use crate::proto::errno::{
    Result, E2BIG, EBADMSG, EDESTADDRREQ, EDOM, EFAULT, EINVAL, EMFILE, EMSGSIZE, ENOTUNIQ,
};
use crate::proto::item::{self, Item};
use crate::proto::limits::{CONN_MAX_FDS_PER_USER, MSG_MAX_MEMFD_ITEMS, MSG_MAX_PAYLOAD_VEC_SIZE};
use crate::proto::names;
use crate::uapi::*;
use core::mem::{offset_of, size_of};

/// `KDBUS_DST_ID_BROADCAST`.
pub const DST_BROADCAST: u64 = u64::MAX;

/// The rules of a `kdbus_msg` (abi.md 10, "SEND (message)").
pub static MSG: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_msg>(),
    flags: (KDBUS_MSG_EXPECT_REPLY | KDBUS_MSG_NO_AUTO_START | KDBUS_MSG_SIGNAL) as u64,
    items: &[
        ItemSpec {
            ty: KDBUS_ITEM_PAYLOAD_VEC,
            rules: REPEAT,
        },
        ItemSpec {
            ty: KDBUS_ITEM_PAYLOAD_MEMFD,
            rules: REPEAT,
        },
        ItemSpec {
            ty: KDBUS_ITEM_FDS,
            rules: 0,
        },
        ItemSpec {
            ty: KDBUS_ITEM_BLOOM_FILTER,
            rules: 0,
        },
        ItemSpec {
            ty: KDBUS_ITEM_DST_NAME,
            rules: 0,
        },
    ],
    return_flags: false,
};

/// The fixed fields of a `kdbus_msg`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `KDBUS_MSG_*`.
    pub flags: u64,
    /// Queue priority; lower is more urgent.
    pub priority: i64,
    /// Destination id, 0 (by name) or broadcast.
    pub dst_id: u64,
    /// Sender id as given by the sender (0 or its own id).
    pub src_id: u64,
    /// `KDBUS_PAYLOAD_*`.
    pub payload_type: u64,
    /// Sender-chosen cookie.
    pub cookie: u64,
    /// `timeout_ns` of calls, `cookie_reply` of replies.
    pub timeout_or_reply: u64,
}

impl Header {
    /// Reads the header of a message buffer (at least 64 bytes).
    pub fn read(buf: &[u8]) -> Self {
        let r = |off| item::read_u64(buf, off).unwrap_or(0);
        Header {
            flags: r(offset_of!(kdbus_msg, flags)),
            priority: r(offset_of!(kdbus_msg, priority)) as i64,
            dst_id: r(offset_of!(kdbus_msg, dst_id)),
            src_id: r(offset_of!(kdbus_msg, src_id)),
            payload_type: r(offset_of!(kdbus_msg, payload_type)),
            cookie: r(offset_of!(kdbus_msg, cookie)),
            timeout_or_reply: r(size_of::<kdbus_msg>() - 8),
        }
    }

    /// Writes the header, with `size` and `src_id`, into `out[..64]`.
    pub fn write(&self, out: &mut [u8], size: u64, src_id: u64) {
        let fields = [
            (offset_of!(kdbus_msg, size), size),
            (offset_of!(kdbus_msg, flags), self.flags),
            (offset_of!(kdbus_msg, priority), self.priority as u64),
            (offset_of!(kdbus_msg, dst_id), self.dst_id),
            (offset_of!(kdbus_msg, src_id), src_id),
            (offset_of!(kdbus_msg, payload_type), self.payload_type),
            (offset_of!(kdbus_msg, cookie), self.cookie),
            (size_of::<kdbus_msg>() - 8, self.timeout_or_reply),
        ];
        for (off, v) in fields {
            item::write_u64(out, off, v);
        }
    }

    fn has(&self, flag: u32) -> bool {
        self.flags & flag as u64 != 0
    }

    /// A call: `EXPECT_REPLY`.
    pub fn expects_reply(&self) -> bool {
        self.has(KDBUS_MSG_EXPECT_REPLY)
    }

    /// A signal.
    pub fn is_signal(&self) -> bool {
        self.has(KDBUS_MSG_SIGNAL)
    }

    /// A broadcast.
    pub fn is_broadcast(&self) -> bool {
        self.dst_id == DST_BROADCAST
    }

    /// A reply to an earlier call.
    pub fn is_reply(&self) -> bool {
        !self.expects_reply() && !self.is_signal() && self.timeout_or_reply != 0
    }
}

/// What SEND found in a message that passed validation.
#[derive(Debug, Default)]
pub struct Plan {
    /// The header.
    pub header: Header,
    /// Number of memfd items.
    pub memfds: usize,
    /// Number of fds in the FDS item.
    pub fds: usize,
    /// The DST_NAME item's name, as (offset, length) in the buffer, no NUL.
    pub dst_name: Option<(usize, usize)>,
    /// Size of the inline payload area (data vectors, plus `size % 8` zero
    /// bytes for every null vector and memfd).
    pub payload_size: u64,
}

/// Validates a parsed message (message.md 5 steps 6-11) for sender
/// `sender_id`. `user_range_ok` tells whether `[addr, addr + size)` is a valid
/// user range; `bloom_size` is the bus's bloom filter size.
pub fn plan(
    c: &Cmd<'_>,
    sender_id: u64,
    sync: bool,
    bloom_size: u64,
    user_range_ok: impl Fn(u64, u64) -> bool,
) -> Result<Plan> {
    let h = Header::read(c.buf);
    // 6
    if h.src_id != 0 && h.src_id != sender_id {
        return Err(EINVAL);
    }
    // 7
    if h.payload_type == KDBUS_PAYLOAD_KERNEL {
        return Err(EINVAL);
    }
    if h.is_broadcast() {
        if !h.is_signal() {
            return Err(EBADMSG);
        }
        if h.timeout_or_reply != 0 {
            return Err(ENOTUNIQ);
        }
    }
    if h.expects_reply() {
        if h.timeout_or_reply == 0 {
            return Err(EINVAL);
        }
        if h.is_signal() {
            return Err(ENOTUNIQ);
        }
    } else {
        if sync {
            return Err(EINVAL);
        }
        if h.timeout_or_reply != 0 && h.is_signal() {
            return Err(EINVAL);
        }
    }
    // 8
    let mut p = Plan {
        header: h,
        ..Plan::default()
    };
    let mut vec_total: u64 = 0;
    let mut bloom = false;
    for i in c.items() {
        match i.ty as u32 {
            KDBUS_ITEM_PAYLOAD_VEC => {
                let size = i.u64_at(0);
                let addr = i.u64_at(8);
                vec_total = vec_total.checked_add(size).ok_or(EMSGSIZE)?;
                if vec_total > MSG_MAX_PAYLOAD_VEC_SIZE {
                    return Err(EMSGSIZE);
                }
                if addr == 0 {
                    p.payload_size += size % 8;
                } else {
                    if !user_range_ok(addr, size) {
                        return Err(EFAULT);
                    }
                    p.payload_size += size;
                }
            }
            KDBUS_ITEM_PAYLOAD_MEMFD => {
                let (start, size) = (i.u64_at(0), i.u64_at(8));
                start.checked_add(size).ok_or(EMSGSIZE)?;
                p.memfds += 1;
                if p.memfds > MSG_MAX_MEMFD_ITEMS {
                    return Err(E2BIG);
                }
                p.payload_size += size % 8;
            }
            KDBUS_ITEM_FDS => {
                p.fds = i.payload.len() / 4;
                if p.fds > CONN_MAX_FDS_PER_USER {
                    return Err(EMFILE);
                }
            }
            KDBUS_ITEM_BLOOM_FILTER => {
                let data = i.payload.len() - 8;
                if data % 8 != 0 {
                    return Err(EFAULT);
                }
                if data as u64 != bloom_size {
                    return Err(EDOM);
                }
                bloom = true;
            }
            KDBUS_ITEM_DST_NAME => {
                let name = i.str_bytes();
                if !names::is_valid_well_known(name, false) {
                    return Err(EINVAL);
                }
                if h.is_broadcast() {
                    return Err(EBADMSG);
                }
                p.dst_name = Some((i.offset + item::HEADER_SIZE, name.len()));
            }
            _ => return Err(EINVAL), // a stray NEGOTIATE item
        }
    }
    // 9-11
    if h.is_signal() != bloom {
        return Err(EBADMSG);
    }
    if h.dst_id == 0 && p.dst_name.is_none() {
        return Err(EDESTADDRREQ);
    }
    if h.is_broadcast() && p.fds > 0 {
        return Err(ENOTUNIQ);
    }
    Ok(p)
}

/// Size of a message slice: the message (`msg_size` bytes, unpadded) then
/// the payload area, each 8-aligned.
pub fn slice_size(msg_size: u64, payload: u64) -> Option<u64> {
    let head = msg_size.checked_add(7)? & !7;
    head.checked_add(payload)?.checked_add(7).map(|s| s & !7)
}

/// `PAYLOAD_OFF.offset` values of a message's vectors, in item order: data
/// vectors point at their bytes in the payload area (message-relative),
/// null vectors get `~0` (message.md 14, the spec's recommendation).
/// The items are PAYLOAD_OFF items still holding the sender's `{size,
/// address}`; calls `f(item, offset)` for each of them.
pub fn vec_offsets<'a>(
    items: impl Iterator<Item = Item<'a>>,
    msg_size: u64,
    mut f: impl FnMut(&Item<'a>, u64),
) {
    let mut pos = (msg_size + 7) & !7;
    for i in items {
        match i.ty as u32 {
            KDBUS_ITEM_PAYLOAD_OFF => {
                let size = i.u64_at(0);
                if i.u64_at(8) == 0 {
                    f(&i, u64::MAX);
                    pos += size % 8;
                } else {
                    f(&i, pos);
                    pos += size;
                }
            }
            KDBUS_ITEM_PAYLOAD_MEMFD => pos += i.u64_at(8) % 8,
            _ => {}
        }
    }
}
