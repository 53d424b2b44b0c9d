// SPDX-License-Identifier: GPL-2.0

//! Match rules (spec: match.md 3-5). Pure.
//!
//! A match entry keeps the rule items of its MATCH_ADD as they came (an item
//! stream, NEGOTIATE items left out: they make no rule, the spec's
//! recommendation), and [`entry_matches`] evaluates them against a
//! [`Subject`]: a message from a connection or a kernel notification.

use crate::proto::cmd::Cmd;
use crate::proto::errno::{Result, EDOM, EINVAL};
use crate::proto::item::{self, Item, Items};
use crate::proto::names;
use crate::uapi::*;

/// `KDBUS_MATCH_ID_ANY`.
pub const ID_ANY: u64 = u64::MAX;

/// What a match entry is evaluated against.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    /// A message sent by connection `src`.
    User {
        /// The sender's id.
        src: u64,
        /// `dst_id` as sent (`~0` for broadcasts).
        dst_id: u64,
        /// The message's bloom filter: generation and data.
        bloom: Option<(u64, &'a [u8])>,
    },
    /// A kernel notification with item `ty` and its payload.
    Kernel {
        /// `KDBUS_ITEM_ID_ADD`, ... `KDBUS_ITEM_NAME_CHANGE`.
        ty: u32,
        /// The notification item's payload.
        payload: &'a [u8],
    },
}

/// Checks the rule items of a parsed MATCH_ADD (match.md 3) for a bus with
/// bloom filters of `bloom_size` bytes: `EDOM` for a mask that is not a
/// non-zero multiple of it, `EINVAL` for an invalid NAME. (Sizes of the
/// other items were checked by the generic parser.)
pub fn validate(c: &Cmd<'_>, bloom_size: u64) -> Result {
    for i in c.items() {
        match i.ty as u32 {
            KDBUS_ITEM_BLOOM_MASK => {
                let len = i.payload.len() as u64;
                if bloom_size == 0 || len == 0 || len % bloom_size != 0 {
                    return Err(EDOM);
                }
            }
            KDBUS_ITEM_NAME if !names::is_valid_well_known(i.str_bytes(), false) => {
                return Err(EINVAL);
            }
            _ => {}
        }
    }
    Ok(())
}

/// The rule items of a validated MATCH_ADD, in order, without NEGOTIATE
/// items: what an entry stores. Calls `f` with each item's bytes (header,
/// payload and padding).
pub fn rule_items<'a>(c: &Cmd<'a>, mut f: impl FnMut(&'a [u8]) -> Result) -> Result {
    for i in c.items() {
        if i.ty == KDBUS_ITEM_NEGOTIATE as u64 {
            continue;
        }
        let end = item::align8(i.offset + item::HEADER_SIZE + i.payload.len()).ok_or(EINVAL)?;
        let end = end.min(c.buf.len());
        f(c.buf.get(i.offset..end).ok_or(EINVAL)?)?;
    }
    Ok(())
}

/// Whether every bit of the selected generation of `mask` (generations of
/// `bloom_size` bytes each, generation 0 first) is set in `filter` of
/// generation `gen` (match.md 5).
pub fn bloom_matches(filter: &[u8], gen: u64, mask: &[u8], bloom_size: usize) -> bool {
    if bloom_size == 0 || filter.len() != bloom_size || mask.len() < bloom_size {
        return false;
    }
    let gens = (mask.len() / bloom_size) as u64;
    let g = gen.min(gens - 1) as usize;
    let Some(m) = mask.get(g * bloom_size..(g + 1) * bloom_size) else {
        return false;
    };
    m.iter().zip(filter).all(|(m, f)| f & m == *m)
}

fn u64_at(p: &[u8], off: usize) -> u64 {
    item::read_u64(p, off).unwrap_or(0)
}

fn id_ok(rule: u64, actual: u64) -> bool {
    rule == ID_ANY || rule == actual
}

/// One rule against a subject; `owns(name)` tells whether the sender of a
/// user message currently owns `name` as primary owner.
fn rule_matches(
    r: &Item<'_>,
    s: &Subject<'_>,
    bloom_size: usize,
    owns: &impl Fn(&[u8]) -> bool,
) -> bool {
    let ty = r.ty as u32;
    match *s {
        Subject::User { src, dst_id, bloom } => match ty {
            KDBUS_ITEM_BLOOM_MASK => match bloom {
                Some((gen, data)) => bloom_matches(data, gen, r.payload, bloom_size),
                None => false,
            },
            KDBUS_ITEM_NAME => owns(r.str_bytes()),
            KDBUS_ITEM_ID => id_ok(r.u64(), src),
            KDBUS_ITEM_DST_ID => id_ok(r.u64(), dst_id),
            _ => false,
        },
        Subject::Kernel { ty: nty, payload } => {
            if ty != nty {
                return false;
            }
            match ty {
                KDBUS_ITEM_ID_ADD | KDBUS_ITEM_ID_REMOVE => id_ok(r.u64(), u64_at(payload, 0)),
                KDBUS_ITEM_NAME_ADD | KDBUS_ITEM_NAME_REMOVE | KDBUS_ITEM_NAME_CHANGE => {
                    // {old_id {id, flags}, new_id {id, flags}, name}
                    if !id_ok(u64_at(r.payload, 0), u64_at(payload, 0))
                        || !id_ok(u64_at(r.payload, 16), u64_at(payload, 16))
                    {
                        return false;
                    }
                    match r.payload.get(32..) {
                        None | Some([]) => true,
                        Some(name) => payload.get(32..) == Some(name),
                    }
                }
                _ => false,
            }
        }
    }
}

/// Whether an entry with the stored rule items `rules` accepts `s`: every
/// rule holds (an entry without rules accepts everything subject to
/// matching).
pub fn entry_matches(
    rules: &[u8],
    s: &Subject<'_>,
    bloom_size: usize,
    owns: impl Fn(&[u8]) -> bool,
) -> bool {
    Items::new(rules, 0).all(|r| match r {
        Ok(r) => rule_matches(&r, s, bloom_size, &owns),
        Err(_) => false,
    })
}
