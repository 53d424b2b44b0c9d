//! Mutations of otherwise valid commands: sizes, flags, fields, item
//! streams, ioctl numbers and argument placement.
//!
//! Each helper changes one thing; [`crate::cmds`] applies one to three of
//! them to a fraction of the commands it generates.

use kdbus::FLAG_NEGOTIATE;

use crate::items::{self, Addr, ItemSpec, Payload, SizeField, ALL_ITEM_TYPES};
use crate::rng::Rng;

/// `KDBUS_CMD_MAX_SIZE`.
pub const CMD_MAX: u64 = 32 << 10;

/// Values that tend to break arithmetic and bounds checks.
pub fn interesting_u64(rng: &mut Rng) -> u64 {
    match rng.below(16) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - 7,
        4 => 1 << 63,
        5 => i64::MAX as u64,
        6 => u64::from(u32::MAX),
        7 => u64::from(u32::MAX) + 1,
        8 => 4096,
        9 => 4095,
        10 => CMD_MAX,
        11 => CMD_MAX + 1,
        12 => rng.below(64),
        13 => 1 << rng.below(64),
        _ => rng.u64(),
    }
}

/// A wrong `size` for a command of `fixed` bytes whose true size is
/// `exact`: too small, off by 1..8, above 32 KiB, u64 extremes.
pub fn size(rng: &mut Rng, exact: u64, fixed: u64) -> SizeField {
    match rng.below(10) {
        0 => SizeField::Value(rng.below(fixed)),
        1 => SizeField::Value(fixed),
        2 | 3 => {
            let d = rng.range(1, 8) as i64;
            SizeField::Delta(if rng.percent(50) { d } else { -d })
        }
        4 => SizeField::Value(CMD_MAX + rng.below(9)),
        5 => SizeField::Value(CMD_MAX - rng.below(9)),
        6 => SizeField::Value(*rng.pick(&[u64::MAX, u64::MAX - 7, 1 << 63, u64::from(u32::MAX)])),
        7 => SizeField::Value(exact.wrapping_mul(2)),
        8 => SizeField::Unpadded,
        _ => SizeField::Value(interesting_u64(rng)),
    }
}

/// `flags` with something wrong or unusual: an unknown bit, NEGOTIATE,
/// all ones, an allowed bit flipped.
pub fn flags(rng: &mut Rng, flags: u64, allowed: u64) -> u64 {
    match rng.below(6) {
        0 => {
            let unknown = !allowed & !FLAG_NEGOTIATE;
            let bit = loop {
                let b = 1u64 << rng.below(63);
                if b & unknown != 0 {
                    break b;
                }
            };
            flags | bit
        }
        1 | 2 => flags | FLAG_NEGOTIATE,
        3 => u64::MAX,
        4 if allowed != 0 => flags ^ (1 << rng.below(u64::from(64 - allowed.leading_zeros()))),
        _ => rng.u64(),
    }
}

/// One change to an item stream: duplicate, drop, truncate, resize,
/// retype, insert a random item, swap two, or NEGOTIATE.
pub fn items(rng: &mut Rng, items: &mut Vec<ItemSpec>) {
    let n = items.len();
    match rng.below(9) {
        0 if n > 0 => {
            let i = rng.index(n);
            let dup = items[i].clone();
            items.insert(i, dup);
        }
        1 if n > 0 => {
            items.remove(rng.index(n));
        }
        2 if n > 0 => {
            // truncated: the size field claims less than the payload
            let i = rng.index(n);
            items[i].size = SizeField::Delta(-(rng.range(1, 16) as i64));
        }
        3 if n > 0 => {
            let i = rng.index(n);
            items[i].size = match rng.below(4) {
                0 => SizeField::Value(rng.below(16)),
                1 => SizeField::Delta(rng.range(1, 64) as i64),
                2 => SizeField::Value(u64::MAX - rng.below(16)),
                _ => SizeField::Value(CMD_MAX + 16),
            };
        }
        4 if n > 0 => {
            let i = rng.index(n);
            items[i].ty = *rng.pick(ALL_ITEM_TYPES);
        }
        5 if n > 1 => {
            let (a, b) = (rng.index(n), rng.index(n));
            items.swap(a, b);
        }
        6 => {
            let types: Vec<u64> = (0..rng.range(0, 6))
                .map(|_| *rng.pick(ALL_ITEM_TYPES))
                .collect();
            let at = rng.index(n + 1);
            items.insert(
                at,
                ItemSpec::new(kdbus::consts::ITEM_NEGOTIATE, Payload::U64s(types)),
            );
        }
        _ => {
            let at = rng.index(n + 1);
            items.insert(at, items::random_item(rng));
        }
    }
}

/// Where the kernel finds a command or message: mostly the builder's own
/// buffer, sometimes a bad pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The command buffer itself (8-byte aligned).
    Buf,
    /// A copy at an address that is not 8-byte aligned (`1..=7` off).
    Misaligned(u8),
    /// A copy in a read-only page (the kernel's write-back fails).
    ReadOnly,
    /// A copy that ends exactly at a guard page.
    PageEnd,
    /// Any address from [`Addr`] (NULL, PROT_NONE, pool, uffd, kernel ...).
    At(Addr),
}

/// A bad placement for a command or message.
pub fn place(rng: &mut Rng, pool_slots: &[u8]) -> Place {
    match rng.below(8) {
        0 | 1 => Place::Misaligned(rng.range(1, 7) as u8),
        2 => Place::ReadOnly,
        3 | 4 => Place::PageEnd,
        5 if !pool_slots.is_empty() => Place::At(Addr::Pool {
            slot: *rng.pick(pool_slots),
            off: rng.below(1 << 16) & !7,
        }),
        6 => Place::At(Addr::Uffd {
            off: (rng.below(crate::mem::UFFD_LEN as u64) & !7) as u32,
        }),
        _ => Place::At(match rng.below(3) {
            0 => Addr::Null,
            1 => Addr::ProtNone { off: 0 },
            _ => Addr::Raw(*rng.pick(items::BAD_ADDRS)),
        }),
    }
}

/// A wrong ioctl number near `req`: other direction bits, other size,
/// another command number, or not kdbus at all.
pub fn request(rng: &mut Rng, req: u32) -> u32 {
    match rng.below(5) {
        0 => req ^ (rng.range(1, 3) as u32) << 30,
        1 => (req & !(0x3fff << 16)) | ((rng.below(0x4000) as u32) << 16),
        2 => (req & !0xff) | rng.below(256) as u32,
        3 => *rng.pick(&[0x5401u32, 0x541b, 0x8901, 0]), // TCGETS, FIONREAD, SIOC*
        _ => rng.u64() as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus::consts::*;

    #[test]
    fn sizes_are_wrong_somehow() {
        let mut rng = Rng::new(1);
        let mut kinds = [0u32; 4];
        for _ in 0..2000 {
            match size(&mut rng, 48, 24) {
                SizeField::Exact => panic!("size mutation kept the exact size"),
                SizeField::Unpadded => kinds[0] += 1,
                SizeField::Delta(d) => {
                    assert!(d != 0 && d.abs() <= 8);
                    kinds[1] += 1
                }
                SizeField::Value(v) if v < 24 => kinds[2] += 1,
                SizeField::Value(_) => kinds[3] += 1,
            }
        }
        assert!(kinds.iter().all(|&k| k > 50), "{kinds:?}");
    }

    #[test]
    fn unknown_flag_bits() {
        let mut rng = Rng::new(2);
        let mut negotiate = 0;
        let mut unknown = 0;
        for _ in 0..1000 {
            let f = flags(&mut rng, 0x1, 0x7);
            if f & FLAG_NEGOTIATE != 0 {
                negotiate += 1;
            }
            if f & !0x7 & !FLAG_NEGOTIATE != 0 {
                unknown += 1;
            }
        }
        assert!(negotiate > 100 && unknown > 100, "{negotiate} {unknown}");
    }

    #[test]
    fn item_mutations_change_the_stream() {
        let base = vec![
            ItemSpec::str(ITEM_MAKE_NAME, "0-fuzz0"),
            ItemSpec::new(ITEM_BLOOM_PARAMETER, Payload::U64s(vec![64, 8])),
        ];
        let mut rng = Rng::new(3);
        let mut changed = 0;
        for _ in 0..500 {
            let mut v = base.clone();
            items(&mut rng, &mut v);
            if v != base {
                changed += 1;
            }
        }
        // A swap of an item with itself is the only no-op.
        assert!(changed > 450, "{changed}");
    }

    #[test]
    fn misplacements_are_bad() {
        let mut rng = Rng::new(4);
        for _ in 0..500 {
            match place(&mut rng, &[1]) {
                Place::Buf => panic!("a mutation kept the buffer"),
                Place::Misaligned(k) => assert!((1..=7).contains(&k)),
                _ => {}
            }
        }
    }

    #[test]
    fn requests_change() {
        let mut rng = Rng::new(5);
        let req = 0x4018_9500;
        let changed = (0..500).filter(|_| request(&mut rng, req) != req).count();
        assert!(changed > 480);
    }
}
