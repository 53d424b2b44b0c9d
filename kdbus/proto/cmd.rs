// SPDX-License-Identifier: GPL-2.0

//! Generic command parsing (spec: abi.md 8, 9, 10).
//!
//! Pure. Every ioctl's fixed part, allowed flags and accepted items are data
//! ([`CmdSpec`] tables), and one parser applies them in the spec's order.
//! The handle copies the command once into a kernel buffer (steps 1-3);
//! [`parse`] does steps 4-8 on that buffer.

use crate::proto::errno::{Result, EINVAL};
use crate::proto::item::{self, Item, Items};
use crate::uapi::*;
use core::mem::size_of;

/// `KDBUS_FLAG_NEGOTIATE` as a `u64`.
pub const FLAG_NEGOTIATE: u64 = 1 << 63;

/// Offset of `flags` in every command struct.
pub const OFF_FLAGS: usize = 8;
/// Offset of `return_flags` in every command struct.
pub const OFF_RETURN_FLAGS: usize = 16;

/// The item may appear more than once.
pub const REPEAT: u8 = 1;
/// The item must be present unless negotiating.
pub const MANDATORY: u8 = 2;

/// One accepted item type of a command.
#[derive(Clone, Copy, Debug)]
pub struct ItemSpec {
    /// The item type.
    pub ty: u32,
    /// [`REPEAT`] and/or [`MANDATORY`].
    pub rules: u8,
}

const fn it(ty: u32, rules: u8) -> ItemSpec {
    ItemSpec { ty, rules }
}

/// The parsing rules of one command (abi.md 10).
#[derive(Debug)]
pub struct CmdSpec {
    /// Size of the fixed part of the command struct.
    pub fixed: usize,
    /// Allowed flags besides `KDBUS_FLAG_NEGOTIATE`.
    pub flags: u64,
    /// Accepted item types (NEGOTIATE is always accepted).
    pub items: &'static [ItemSpec],
    /// The struct has `return_flags` at offset 16 (all commands; not
    /// `kdbus_msg`, whose offset 16 is `priority`).
    pub return_flags: bool,
}

impl CmdSpec {
    fn find(&self, ty: u64) -> Option<(usize, &ItemSpec)> {
        if ty == KDBUS_ITEM_NEGOTIATE as u64 {
            return Some((self.items.len(), &NEGOTIATE_SPEC));
        }
        self.items
            .iter()
            .enumerate()
            .find(|(_, s)| s.ty as u64 == ty)
    }

    /// Whether `ty` is accepted by this command.
    pub fn accepts(&self, ty: u64) -> bool {
        self.find(ty).is_some()
    }
}

static NEGOTIATE_SPEC: ItemSpec = it(KDBUS_ITEM_NEGOTIATE, 0);

const CMD: usize = size_of::<kdbus_cmd>();
const MAKE_FLAGS: u64 = (KDBUS_MAKE_ACCESS_GROUP | KDBUS_MAKE_ACCESS_WORLD) as u64;

/// KDBUS_CMD_BUS_MAKE.
pub static BUS_MAKE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: MAKE_FLAGS,
    items: &[
        it(KDBUS_ITEM_MAKE_NAME, MANDATORY),
        it(KDBUS_ITEM_BLOOM_PARAMETER, MANDATORY),
        it(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0),
    ],
    return_flags: true,
};

/// KDBUS_CMD_ENDPOINT_MAKE.
pub static ENDPOINT_MAKE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: MAKE_FLAGS,
    items: &[it(KDBUS_ITEM_MAKE_NAME, MANDATORY)],
    return_flags: true,
};

/// KDBUS_CMD_ENDPOINT_UPDATE.
pub static ENDPOINT_UPDATE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: 0,
    items: &[
        it(KDBUS_ITEM_NAME, REPEAT),
        it(KDBUS_ITEM_POLICY_ACCESS, REPEAT),
    ],
    return_flags: true,
};

/// KDBUS_CMD_HELLO.
pub static HELLO: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_hello>(),
    flags: (KDBUS_HELLO_ACCEPT_FD
        | KDBUS_HELLO_ACTIVATOR
        | KDBUS_HELLO_POLICY_HOLDER
        | KDBUS_HELLO_MONITOR) as u64,
    items: &[
        it(KDBUS_ITEM_NAME, 0),
        it(KDBUS_ITEM_CREDS, 0),
        it(KDBUS_ITEM_PIDS, 0),
        it(KDBUS_ITEM_SECLABEL, 0),
        it(KDBUS_ITEM_CONN_DESCRIPTION, 0),
        it(KDBUS_ITEM_POLICY_ACCESS, REPEAT),
    ],
    return_flags: true,
};

/// KDBUS_CMD_UPDATE.
pub static UPDATE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: 0,
    items: &[
        it(KDBUS_ITEM_ATTACH_FLAGS_SEND, 0),
        it(KDBUS_ITEM_ATTACH_FLAGS_RECV, 0),
        it(KDBUS_ITEM_NAME, REPEAT),
        it(KDBUS_ITEM_POLICY_ACCESS, REPEAT),
    ],
    return_flags: true,
};

/// KDBUS_CMD_BYEBYE.
pub static BYEBYE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: 0,
    items: &[],
    return_flags: true,
};

/// KDBUS_CMD_FREE.
pub static FREE: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_free>(),
    flags: 0,
    items: &[],
    return_flags: true,
};

/// KDBUS_CMD_CONN_INFO.
pub static CONN_INFO: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_info>(),
    flags: 0,
    items: &[it(KDBUS_ITEM_NAME, 0)],
    return_flags: true,
};

/// KDBUS_CMD_BUS_CREATOR_INFO.
pub static BUS_CREATOR_INFO: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_info>(),
    flags: 0,
    items: &[],
    return_flags: true,
};

/// KDBUS_CMD_LIST.
pub static LIST: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_list>(),
    flags: (KDBUS_LIST_UNIQUE | KDBUS_LIST_NAMES | KDBUS_LIST_ACTIVATORS | KDBUS_LIST_QUEUED)
        as u64,
    items: &[],
    return_flags: true,
};

/// KDBUS_CMD_SEND (the command struct; the message has its own rules).
pub static SEND: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_send>(),
    flags: KDBUS_SEND_SYNC_REPLY as u64,
    items: &[it(KDBUS_ITEM_CANCEL_FD, 0)],
    return_flags: true,
};

/// KDBUS_CMD_RECV.
pub static RECV: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_recv>(),
    flags: (KDBUS_RECV_PEEK | KDBUS_RECV_DROP | KDBUS_RECV_USE_PRIORITY) as u64,
    items: &[],
    return_flags: true,
};

/// KDBUS_CMD_NAME_ACQUIRE.
pub static NAME_ACQUIRE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: (KDBUS_NAME_REPLACE_EXISTING | KDBUS_NAME_ALLOW_REPLACEMENT | KDBUS_NAME_QUEUE) as u64,
    items: &[it(KDBUS_ITEM_NAME, MANDATORY)],
    return_flags: true,
};

/// KDBUS_CMD_NAME_RELEASE.
pub static NAME_RELEASE: CmdSpec = CmdSpec {
    fixed: CMD,
    flags: 0,
    items: &[it(KDBUS_ITEM_NAME, MANDATORY)],
    return_flags: true,
};

/// KDBUS_CMD_MATCH_ADD.
pub static MATCH_ADD: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_match>(),
    flags: KDBUS_MATCH_REPLACE as u64,
    items: &[
        it(KDBUS_ITEM_BLOOM_MASK, REPEAT),
        it(KDBUS_ITEM_NAME, REPEAT),
        it(KDBUS_ITEM_ID, REPEAT),
        it(KDBUS_ITEM_DST_ID, REPEAT),
        it(KDBUS_ITEM_NAME_ADD, REPEAT),
        it(KDBUS_ITEM_NAME_REMOVE, REPEAT),
        it(KDBUS_ITEM_NAME_CHANGE, REPEAT),
        it(KDBUS_ITEM_ID_ADD, REPEAT),
        it(KDBUS_ITEM_ID_REMOVE, REPEAT),
    ],
    return_flags: true,
};

/// KDBUS_CMD_MATCH_REMOVE.
pub static MATCH_REMOVE: CmdSpec = CmdSpec {
    fixed: size_of::<kdbus_cmd_match>(),
    flags: 0,
    items: &[],
    return_flags: true,
};

/// A command that passed generic parsing.
#[derive(Debug)]
pub struct Cmd<'a> {
    /// The kernel's copy of the whole command, as patched by negotiation.
    pub buf: &'a [u8],
    /// The rules it was parsed with.
    pub spec: &'static CmdSpec,
    /// `flags` as given by the caller, without NEGOTIATE.
    pub flags: u64,
    /// `KDBUS_FLAG_NEGOTIATE` was set: the command must do nothing else.
    pub negotiate: bool,
    /// Byte range of the NEGOTIATE item's payload, which negotiation may
    /// have patched and which must be written back to userspace.
    pub negotiate_range: Option<(usize, usize)>,
}

impl<'a> Cmd<'a> {
    /// The items of the command (already validated).
    pub fn items(&self) -> impl Iterator<Item = Item<'a>> + 'a {
        Items::new(self.buf, self.spec.fixed).filter_map(|i| i.ok())
    }

    /// The first item of type `ty`, if any.
    pub fn item(&self, ty: u32) -> Option<Item<'a>> {
        self.items().find(|i| i.ty == ty as u64)
    }

    /// The `u64` field at `off` of the fixed part.
    pub fn field(&self, off: usize) -> u64 {
        item::read_u64(self.buf, off).unwrap_or(0)
    }
}

/// Generic parsing, steps 4 to 8 of abi.md 8, on the kernel's copy `buf` of a
/// command whose size (>= `spec.fixed`) the caller has checked.
///
/// On return `buf` holds `return_flags` = 0, and, when negotiating, the
/// allowed flags in `flags` and zeroes in the NEGOTIATE item's entries for
/// types this command does not accept.
pub fn parse<'a>(buf: &'a mut [u8], spec: &'static CmdSpec) -> Result<Cmd<'a>> {
    let size = buf.len();
    if size < spec.fixed {
        return Err(EINVAL);
    }
    if spec.return_flags {
        item::write_u64(buf, OFF_RETURN_FLAGS, 0);
    }
    let flags = item::read_u64(buf, OFF_FLAGS).unwrap_or(0);
    if flags & !(spec.flags | FLAG_NEGOTIATE) != 0 {
        return Err(EINVAL);
    }
    let negotiate = flags & FLAG_NEGOTIATE != 0;

    let mut seen: u32 = 0;
    let mut negotiate_range = None;
    let mut items = Items::new(buf, spec.fixed);
    for i in &mut items {
        let i = i?;
        let (idx, rule) = spec.find(i.ty).ok_or(EINVAL)?;
        item::validate(&i)?;
        let bit = 1u32 << idx;
        if seen & bit != 0 && rule.rules & REPEAT == 0 {
            return Err(EINVAL);
        }
        seen |= bit;
        if i.ty == KDBUS_ITEM_NEGOTIATE as u64 {
            let start = i.offset + item::HEADER_SIZE;
            negotiate_range = Some((start, start + i.payload.len()));
        }
    }
    item::check_end(items.pos(), spec.fixed, size)?;

    if let Some((start, end)) = negotiate_range {
        let mut off = start;
        while off < end {
            let ty = item::read_u64(buf, off).unwrap_or(0);
            if !spec.accepts(ty) {
                item::write_u64(buf, off, 0);
            }
            off += 8;
        }
    }
    if negotiate {
        item::write_u64(buf, OFF_FLAGS, spec.flags);
    } else {
        for (idx, rule) in spec.items.iter().enumerate() {
            if rule.rules & MANDATORY != 0 && seen & (1 << idx) == 0 {
                return Err(EINVAL);
            }
        }
    }
    Ok(Cmd {
        buf,
        spec,
        flags: flags & !FLAG_NEGOTIATE,
        negotiate,
        negotiate_range,
    })
}

/// Sanitises an attach mask (abi.md 7): `~0` means all known bits; any other
/// unknown bit is `EINVAL`.
pub fn sanitize_attach(mask: u64) -> Result<u64> {
    let all: u64 = _KDBUS_ATTACH_ALL;
    if mask == u64::MAX {
        Ok(all)
    } else if mask & !all != 0 {
        Err(EINVAL)
    } else {
        Ok(mask)
    }
}
