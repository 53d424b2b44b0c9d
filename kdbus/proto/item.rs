// SPDX-License-Identifier: GPL-2.0

//! Item streams: walking and generic validation (spec: abi.md 5).
//!
//! Pure: works on the kernel's private copy of a command, so every field is
//! read exactly once from userspace (by the handle) and never again.

use crate::proto::errno::{Result, EBADF, EINVAL, ENAMETOOLONG};
use crate::proto::limits::SYSNAME_MAX_LEN;
use crate::uapi::*;

/// Size of an item header (`size` and `type`).
pub const HEADER_SIZE: usize = 16;

/// Rounds up to a multiple of 8, or `None` on overflow.
pub const fn align8(x: usize) -> Option<usize> {
    match x.checked_add(7) {
        Some(v) => Some(v & !7),
        None => None,
    }
}

/// Reads a native-endian `u64` at `off`; `None` if it is out of bounds.
pub fn read_u64(buf: &[u8], off: usize) -> Option<u64> {
    let end = off.checked_add(8)?;
    let bytes = buf.get(off..end)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_ne_bytes(word))
}

/// Writes a native-endian `u64` at `off`; `false` if it is out of bounds.
pub fn write_u64(buf: &mut [u8], off: usize, val: u64) -> bool {
    let Some(end) = off.checked_add(8) else {
        return false;
    };
    match buf.get_mut(off..end) {
        Some(dst) => {
            dst.copy_from_slice(&val.to_ne_bytes());
            true
        }
        None => false,
    }
}

/// One item of a validated stream.
#[derive(Clone, Copy, Debug)]
pub struct Item<'a> {
    /// Offset of the item header from the start of the command.
    pub offset: usize,
    /// The item type (`KDBUS_ITEM_*`).
    pub ty: u64,
    /// The payload: `size - 16` bytes after the header.
    pub payload: &'a [u8],
}

impl<'a> Item<'a> {
    /// The payload as a single `u64` (callers validated its length).
    pub fn u64(&self) -> u64 {
        read_u64(self.payload, 0).unwrap_or(0)
    }

    /// The `u64` at `off` inside the payload, 0 if out of bounds.
    pub fn u64_at(&self, off: usize) -> u64 {
        read_u64(self.payload, off).unwrap_or(0)
    }

    /// The `int` at `off` inside the payload, if the payload holds it.
    pub fn i32_at(&self, off: usize) -> Option<i32> {
        let b = self.payload.get(off..off.checked_add(4)?)?;
        Some(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The payload of a valid string item without its terminating NUL.
    pub fn str_bytes(&self) -> &'a [u8] {
        match self.payload.split_last() {
            Some((_, s)) => s,
            None => self.payload,
        }
    }
}

/// Iterator over the items of `buf[start..]`, as framed by abi.md 5.2.
///
/// Yields `Err(EINVAL)` once, and then stops, on a header that is too small
/// or reaches past the end of the stream.
pub struct Items<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Items<'a> {
    /// Walks the items in `buf` starting at `start` (the fixed part's size).
    pub fn new(buf: &'a [u8], start: usize) -> Self {
        Items {
            buf,
            pos: start,
            failed: false,
        }
    }

    /// Position after the last item walked (aligned).
    pub fn pos(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let remaining = self.buf.len() - self.pos;
        let (size, ty) = match (
            read_u64(self.buf, self.pos),
            read_u64(self.buf, self.pos + 8),
        ) {
            (Some(s), Some(t)) if remaining >= HEADER_SIZE => (s, t),
            _ => {
                self.failed = true;
                return Some(Err(EINVAL));
            }
        };
        if size < HEADER_SIZE as u64 || size > remaining as u64 {
            self.failed = true;
            return Some(Err(EINVAL));
        }
        // `size <= remaining`, so these conversions and sums cannot overflow.
        let size = size as usize;
        let offset = self.pos;
        let payload = &self.buf[offset + HEADER_SIZE..offset + size];
        self.pos = offset + align8(size).unwrap_or(usize::MAX - 7);
        Some(Ok(Item {
            offset,
            ty,
            payload,
        }))
    }
}

/// Checks the end position of a complete walk (abi.md 5.2 step 4).
pub fn check_end(end: usize, fixed: usize, size: usize) -> Result {
    let want = size
        .checked_sub(fixed)
        .and_then(align8)
        .and_then(|n| n.checked_add(fixed));
    if want == Some(end) || (end == fixed && size == fixed) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Whether `s` is a valid string payload: at least one byte and its first
/// NUL is its last byte.
pub fn is_valid_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().position(|&b| b == 0) == Some(s.len() - 1)
}

/// Validates a "sysname" payload (bus, endpoint and connection-description
/// names): 1 to 63 characters of `[A-Za-z0-9_]`, plus `-` and `.` except as
/// first or last character, NUL-terminated.
pub fn validate_sysname(payload: &[u8]) -> Result {
    if payload.len() < 2 {
        return Err(EINVAL);
    }
    if payload.len() > SYSNAME_MAX_LEN + 1 {
        return Err(ENAMETOOLONG);
    }
    if !is_valid_str(payload) {
        return Err(EINVAL);
    }
    let name = &payload[..payload.len() - 1];
    let last = name.len() - 1;
    for (i, &c) in name.iter().enumerate() {
        let ok = c.is_ascii_alphanumeric()
            || c == b'_'
            || ((c == b'-' || c == b'.') && i != 0 && i != last);
        if !ok {
            return Err(EINVAL);
        }
    }
    Ok(())
}

fn exact(payload: &[u8], n: usize) -> Result {
    if payload.len() == n {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// Generic, type-specific validation of a user-supplied item (abi.md 5.1).
pub fn validate(item: &Item<'_>) -> Result {
    let p = item.payload;
    let Ok(ty) = u32::try_from(item.ty) else {
        return Ok(());
    };
    match ty {
        KDBUS_ITEM_NEGOTIATE if p.len() % 8 != 0 => Err(EINVAL),
        KDBUS_ITEM_PAYLOAD_VEC | KDBUS_ITEM_PAYLOAD_OFF => {
            exact(p, 16)?;
            if item.u64() == 0 {
                return Err(EINVAL);
            }
            Ok(())
        }
        KDBUS_ITEM_PAYLOAD_MEMFD => {
            exact(p, 24)?;
            if item.u64_at(8) == 0 {
                return Err(EINVAL);
            }
            // `int fd` at payload offset 16.
            if item.i32_at(16).unwrap_or(-1) < 0 {
                return Err(EBADF);
            }
            Ok(())
        }
        KDBUS_ITEM_FDS | KDBUS_ITEM_AUXGROUPS if p.len() % 4 != 0 => Err(EINVAL),
        KDBUS_ITEM_CANCEL_FD => exact(p, 4),
        KDBUS_ITEM_BLOOM_PARAMETER => exact(p, 16),
        KDBUS_ITEM_BLOOM_FILTER if p.len() < 8 => Err(EINVAL),
        KDBUS_ITEM_MAKE_NAME | KDBUS_ITEM_CONN_DESCRIPTION => validate_sysname(p),
        KDBUS_ITEM_ATTACH_FLAGS_SEND
        | KDBUS_ITEM_ATTACH_FLAGS_RECV
        | KDBUS_ITEM_ID
        | KDBUS_ITEM_DST_ID
        | KDBUS_ITEM_AUDIT => exact(p, 8),
        KDBUS_ITEM_TIMESTAMP => exact(p, 24),
        KDBUS_ITEM_CREDS => exact(p, 64),
        // Unchecked upstream; the spec recommends requiring 24 (README 5).
        KDBUS_ITEM_PIDS => exact(p, 24),
        KDBUS_ITEM_NAME | KDBUS_ITEM_DST_NAME | KDBUS_ITEM_PID_COMM | KDBUS_ITEM_TID_COMM
        | KDBUS_ITEM_EXE | KDBUS_ITEM_CMDLINE | KDBUS_ITEM_CGROUP | KDBUS_ITEM_SECLABEL => {
            if is_valid_str(p) {
                Ok(())
            } else {
                Err(EINVAL)
            }
        }
        KDBUS_ITEM_CAPS => {
            if p.len() < 4 {
                return Err(EINVAL);
            }
            let last_cap = u32::from_ne_bytes([p[0], p[1], p[2], p[3]]) as usize;
            // Four capability sets of ceil(last_cap / 32) words each.
            let need = 4 + 4 * 4 * last_cap.div_ceil(32);
            if p.len() < need {
                return Err(EINVAL);
            }
            Ok(())
        }
        KDBUS_ITEM_POLICY_ACCESS => exact(p, 24),
        KDBUS_ITEM_NAME_ADD | KDBUS_ITEM_NAME_REMOVE | KDBUS_ITEM_NAME_CHANGE => {
            if p.len() < 32 || (p.len() > 32 && !is_valid_str(&p[32..])) {
                return Err(EINVAL);
            }
            Ok(())
        }
        KDBUS_ITEM_ID_ADD | KDBUS_ITEM_ID_REMOVE => exact(p, 16),
        KDBUS_ITEM_REPLY_TIMEOUT | KDBUS_ITEM_REPLY_DEAD => exact(p, 0),
        _ => Ok(()),
    }
}
