//! Generation of items: the `{size, type, payload}` records of commands and
//! messages (abi.md 5), described symbolically so that a sequence can be
//! generated, compared and replayed without touching the kernel.
//!
//! Descriptors ([`FdRef`]) and addresses ([`Addr`]) stay symbolic until the
//! executor resolves them right before the ioctl.

use kdbus::consts::*;
use kdbus::{ATTACH_ALL, ATTACH_ANY, MATCH_ID_ANY};

use crate::fds::FdKind;
use crate::rng::Rng;

/// Number of bus names the fuzzer uses (`0-fuzz0` ... ); shared by all
/// processes, so BUS_MAKE races and cross-process traffic happen.
pub const BUSES: u8 = 5;
/// Number of custom endpoint names per bus (`0-ep0` ...).
pub const ENDPOINTS: u8 = 2;
/// Number of well-known names (`org.fuzz.n0` ...).
pub const NAMES: u8 = 8;

/// `KDBUS_ITEM_PIDS`, `SECLABEL`, `NAME_REMOVE`, `NAME_CHANGE`, the ones the
/// library has no constant for.
pub const ITEM_SECLABEL: u64 = 0x100b;
pub const ITEM_NAME_REMOVE: u64 = 0x8001;
pub const ITEM_NAME_CHANGE: u64 = 0x8002;
pub const ITEM_AUXGROUPS: u64 = 0x1003;

/// Every item type of the ABI (and a few that are not), for retyping and
/// negotiation.
pub const ALL_ITEM_TYPES: &[u64] = &[
    0,
    ITEM_NEGOTIATE,
    ITEM_PAYLOAD_VEC,
    ITEM_PAYLOAD_OFF,
    ITEM_PAYLOAD_MEMFD,
    ITEM_FDS,
    ITEM_CANCEL_FD,
    ITEM_BLOOM_PARAMETER,
    ITEM_BLOOM_FILTER,
    ITEM_BLOOM_MASK,
    ITEM_DST_NAME,
    ITEM_MAKE_NAME,
    ITEM_ATTACH_FLAGS_SEND,
    ITEM_ATTACH_FLAGS_RECV,
    ITEM_ID,
    ITEM_NAME,
    ITEM_DST_ID,
    17,
    ITEM_TIMESTAMP,
    ITEM_CREDS,
    ITEM_PIDS,
    ITEM_AUXGROUPS,
    ITEM_OWNED_NAME,
    0x1005,
    0x1006,
    0x1007,
    0x1008,
    0x1009,
    0x100a,
    ITEM_SECLABEL,
    0x100c,
    ITEM_CONN_DESCRIPTION,
    0x100e,
    ITEM_POLICY_ACCESS,
    0x2001,
    ITEM_NAME_ADD,
    ITEM_NAME_REMOVE,
    ITEM_NAME_CHANGE,
    ITEM_ID_ADD,
    ITEM_ID_REMOVE,
    ITEM_REPLY_TIMEOUT,
    ITEM_REPLY_DEAD,
    0x8007,
    u64::MAX,
];

/// A descriptor, resolved to a number by the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdRef {
    /// The descriptor in slot `n` of the process's table (a kdbus handle,
    /// a dup, an io_uring ...); -1 if the slot is empty.
    Slot(u8),
    /// The process's descriptor of this kind (pipe, memfd, tty, ...).
    Zoo(FdKind),
    /// A literal number (-1, a closed or huge one).
    Raw(i32),
}

/// A user address, resolved by the executor in the thread's memory arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    /// 0.
    Null,
    /// Into the thread's readable data area at `off` (any alignment;
    /// vectors that run past its end hit a guard page).
    Data { off: u32 },
    /// Into a read-only page.
    ReadOnly { off: u16 },
    /// Into a `PROT_NONE` page.
    ProtNone { off: u16 },
    /// `back` bytes before a guard page: a range longer than `back`
    /// crosses the page boundary into `PROT_NONE` memory.
    PageEnd { back: u32 },
    /// Into the receive pool mapping of the connection in `slot` (an
    /// unmapped address if it has none).
    Pool { slot: u8, off: u64 },
    /// Into the userfaultfd-registered area: the kernel's copy stalls
    /// until the fault handler thread resolves it.
    Uffd { off: u32 },
    /// A literal address (unmapped, kernel, non-canonical, misaligned).
    Raw(u64),
}

/// Literal addresses that are never valid user memory.
pub const BAD_ADDRS: &[u64] = &[
    0x8,                   // first page
    0x1000,                // unmapped low memory
    0xdead_0000,           // unmapped
    0x0000_7fff_ffff_f000, // top of the user half
    0x0000_8000_0000_0000, // non-canonical
    0xffff_8880_0000_0000, // direct map
    0xffff_ffff_8100_0000, // kernel text
    0xffff_ffff_ffff_f000, // top page
    u64::MAX,
];

/// An item payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Literal bytes (strings carry their NUL here).
    Bytes(Vec<u8>),
    /// `u64` words.
    U64s(Vec<u64>),
    /// `struct kdbus_vec` `{size, address}`.
    Vec { size: u64, addr: Addr },
    /// `struct kdbus_memfd` `{start, size, fd, pad}`.
    Memfd { start: u64, size: u64, fd: FdRef },
    /// `int fds[]`.
    Fds(Vec<FdRef>),
    /// One `int` (CANCEL_FD).
    Fd(FdRef),
}

/// How an item's or command's `size` field relates to what was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeField {
    /// The true size (items: 16 + payload; commands: the whole buffer).
    Exact,
    /// Commands: the true size without the padding of the last item
    /// (accepted by the kernel, abi.md 5.2).
    Unpadded,
    /// The true size plus `d` (may be negative).
    Delta(i64),
    /// A literal value.
    Value(u64),
}

impl SizeField {
    /// The value for a true size `exact` (`unpadded` for [`SizeField::Unpadded`]).
    pub fn apply(self, exact: u64, unpadded: u64) -> u64 {
        match self {
            SizeField::Exact => exact,
            SizeField::Unpadded => unpadded,
            SizeField::Delta(d) => exact.wrapping_add(d as u64),
            SizeField::Value(v) => v,
        }
    }
}

/// One item of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSpec {
    /// `KDBUS_ITEM_*`.
    pub ty: u64,
    /// The payload.
    pub payload: Payload,
    /// The `size` field.
    pub size: SizeField,
}

impl ItemSpec {
    /// A well-formed item.
    pub fn new(ty: u64, payload: Payload) -> Self {
        ItemSpec {
            ty,
            payload,
            size: SizeField::Exact,
        }
    }

    /// A string item (`s` plus one NUL, the only valid form).
    pub fn str(ty: u64, s: &str) -> Self {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        Self::new(ty, Payload::Bytes(b))
    }

    /// An item with one `u64`.
    pub fn u64(ty: u64, v: u64) -> Self {
        Self::new(ty, Payload::U64s(vec![v]))
    }
}

/// `0-fuzz<n>`: the bus names (root's euid prefix).
pub fn bus_name(n: u8) -> String {
    format!("0-fuzz{n}")
}

/// `0-ep<n>`: the custom endpoint names.
pub fn endpoint_name(n: u8) -> String {
    format!("0-ep{n}")
}

/// `org.fuzz.n<n>`: the well-known names.
pub fn wk_name(n: u8) -> String {
    format!("org.fuzz.n{n}")
}

/// A name that breaks the sysname rule (fs.md, abi.md 5.1) in one way.
pub fn bad_sysname(rng: &mut Rng) -> Vec<u8> {
    let mut s: Vec<u8> = match rng.below(9) {
        0 => b"".to_vec(),
        1 => b"-".to_vec(),
        2 => b"0-fuzz0-".to_vec(),
        3 => b"1000-fuzz".to_vec(),
        4 => b"0-fu/zz".to_vec(),
        5 => vec![b'a'; 63],
        6 => {
            let mut v = b"0-".to_vec();
            v.extend(std::iter::repeat_n(b'x', rng.range(62, 300) as usize));
            v
        }
        7 => b"0-f\xffz".to_vec(),
        _ => b"fuzz".to_vec(),
    };
    if !rng.one_in(4) {
        s.push(0);
    }
    s
}

/// A well-known name that is usually valid: one of the pool, sometimes a
/// wildcard, an invalid or a very long one.
pub fn name_bytes(rng: &mut Rng) -> Vec<u8> {
    let s = match rng.below(20) {
        0 => "org.fuzz.*".to_string(),
        1 => "".to_string(),
        2 => "org".to_string(),
        3 => ".org.fuzz".to_string(),
        4 => "org..fuzz".to_string(),
        5 => "org.fuzz.".to_string(),
        6 => format!("org.{}", "x".repeat(rng.range(240, 300) as usize)),
        7 => ":1.5".to_string(),
        8 => "org.fuzz.9ab".to_string(),
        _ => wk_name(rng.below(u64::from(NAMES)) as u8),
    };
    let mut b = s.into_bytes();
    b.push(0);
    b
}

/// A well-known-name item of type `ty` (NAME or DST_NAME), mostly valid.
pub fn name_item(rng: &mut Rng, ty: u64) -> ItemSpec {
    if rng.percent(85) {
        ItemSpec::str(ty, &wk_name(rng.below(u64::from(NAMES)) as u8))
    } else {
        ItemSpec::new(ty, Payload::Bytes(name_bytes(rng)))
    }
}

/// An attach mask: mostly a subset of `_KDBUS_ATTACH_ALL`, sometimes ANY or
/// unknown bits.
pub fn attach_mask(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0 => ATTACH_ANY,
        1 => ATTACH_ALL,
        2 => rng.u64(),
        3 => 0,
        _ => rng.subset(ATTACH_ALL),
    }
}

/// `BLOOM_PARAMETER`: usually 64 bytes / 8 hashes, sometimes other valid
/// or invalid geometry.
pub fn bloom_parameter(rng: &mut Rng) -> ItemSpec {
    let (size, n_hash) = match rng.below(10) {
        0 => (rng.range(1, 512) * 8, rng.range(1, 16)),
        1 => (
            *rng.pick(&[0, 4, 7, 9, 4104, 1 << 20, u64::MAX]),
            rng.range(0, 3),
        ),
        _ => (64, 8),
    };
    ItemSpec::new(ITEM_BLOOM_PARAMETER, Payload::U64s(vec![size, n_hash]))
}

/// A `POLICY_ACCESS` entry `{type, access, id}`.
pub fn policy_access(rng: &mut Rng) -> ItemSpec {
    let ty = if rng.percent(90) {
        rng.range(1, 3)
    } else {
        rng.u64() % 6
    };
    let access = if rng.percent(90) {
        rng.below(3)
    } else {
        rng.u64()
    };
    let id = *rng.pick(&[0, 0, 1000, 65534, u64::from(u32::MAX), u64::MAX]);
    ItemSpec::new(ITEM_POLICY_ACCESS, Payload::U64s(vec![ty, access, id]))
}

/// A policy upload: NAME, POLICY_ACCESS... repeated (ENDPOINT_UPDATE,
/// UPDATE of policy holders, HELLO of activators).
pub fn policy_items(rng: &mut Rng, names: usize) -> Vec<ItemSpec> {
    let mut v = Vec::new();
    for _ in 0..names {
        v.push(name_item(rng, ITEM_NAME));
        for _ in 0..rng.range(1, 3) {
            v.push(policy_access(rng));
        }
    }
    v
}

/// A connection description (sysname rule), mostly valid.
pub fn conn_description(rng: &mut Rng) -> ItemSpec {
    if rng.percent(85) {
        ItemSpec::str(ITEM_CONN_DESCRIPTION, &format!("fuzz{}", rng.below(100)))
    } else {
        ItemSpec::new(ITEM_CONN_DESCRIPTION, Payload::Bytes(bad_sysname(rng)))
    }
}

/// Faked credentials items of HELLO (CREDS, PIDS, SECLABEL; privileged).
pub fn faked_creds(rng: &mut Rng) -> ItemSpec {
    match rng.below(3) {
        0 => {
            let id = *rng.pick(&[0u64, 1000, 65534, u64::from(u32::MAX), u64::MAX]);
            ItemSpec::new(ITEM_CREDS, Payload::U64s(vec![id; 8]))
        }
        1 => {
            let pid = *rng.pick(&[1u64, 2, 99999, u64::from(u32::MAX)]);
            let n = *rng.pick(&[3usize, 3, 2, 4]);
            ItemSpec::new(ITEM_PIDS, Payload::U64s(vec![pid; n]))
        }
        _ => ItemSpec::str(ITEM_SECLABEL, "unconfined"),
    }
}

/// A destination/source ID: a known connection's, a nearby unknown one,
/// 0, broadcast or an extreme value.
pub fn conn_id(rng: &mut Rng, known: &[u64], max_id: u64) -> u64 {
    match rng.below(10) {
        0..=5 if !known.is_empty() => *rng.pick(known),
        6 | 7 => rng.range(1, max_id + 8),
        8 => *rng.pick(&[0, MATCH_ID_ANY, u64::MAX - 1, 1 << 63]),
        _ => rng.range(1, 64),
    }
}

/// One rule of a MATCH_ADD (match.md 3).
pub fn match_rule(rng: &mut Rng, bloom: u64, known: &[u64], max_id: u64) -> ItemSpec {
    let id_change = |rng: &mut Rng| {
        vec![
            conn_id(rng, known, max_id),
            if rng.percent(80) { 0 } else { rng.u64() },
        ]
    };
    match rng.below(8) {
        0 => {
            let n = if rng.percent(85) {
                rng.range(1, 2)
            } else {
                rng.range(0, 4)
            };
            let len = if rng.percent(90) {
                bloom * n
            } else {
                rng.range(1, 600)
            };
            ItemSpec::new(ITEM_BLOOM_MASK, Payload::Bytes(rng.bytes(len as usize)))
        }
        1 => name_item(rng, ITEM_NAME),
        2 => ItemSpec::u64(ITEM_ID, conn_id(rng, known, max_id)),
        3 => ItemSpec::u64(ITEM_DST_ID, conn_id(rng, known, max_id)),
        4 | 5 => {
            let ty = *rng.pick(&[ITEM_NAME_ADD, ITEM_NAME_REMOVE, ITEM_NAME_CHANGE]);
            let mut w = id_change(rng);
            w.extend(id_change(rng));
            let mut b: Vec<u8> = w.iter().flat_map(|x| x.to_ne_bytes()).collect();
            if rng.percent(60) {
                b.extend(name_bytes(rng));
            }
            ItemSpec::new(ty, Payload::Bytes(b))
        }
        _ => {
            let ty = *rng.pick(&[ITEM_ID_ADD, ITEM_ID_REMOVE]);
            ItemSpec::new(ty, Payload::U64s(id_change(rng)))
        }
    }
}

/// A payload address: mostly the data area, sometimes anything bad.
pub fn payload_addr(rng: &mut Rng, pool_slots: &[u8]) -> Addr {
    match rng.below(40) {
        0 => Addr::Null,
        1 => Addr::ReadOnly {
            off: rng.below(4096) as u16,
        },
        2 => Addr::ProtNone {
            off: rng.below(4096) as u16,
        },
        3 | 4 => Addr::PageEnd {
            back: rng.range(1, 8192) as u32,
        },
        5 | 6 if !pool_slots.is_empty() => Addr::Pool {
            slot: *rng.pick(pool_slots),
            off: rng.below(1 << 20),
        },
        7 | 9 => Addr::Uffd {
            off: rng.below(crate::mem::UFFD_LEN as u64) as u32,
        },
        8 => Addr::Raw(*rng.pick(BAD_ADDRS)),
        _ => Addr::Data {
            off: rng.below(crate::mem::DATA_LEN as u64 - 64) as u32,
        },
    }
}

/// A data vector size: mostly small, sometimes big, 0 or huge.
pub fn vec_size(rng: &mut Rng) -> u64 {
    match rng.below(50) {
        0 => 0,
        1 => 32 << 10,
        2 => (2 << 20) + rng.below(2),
        3 => u64::MAX - rng.below(8),
        4..=6 => rng.range(4096, 256 << 10),
        _ => rng.range(1, 2048),
    }
}

/// `PAYLOAD_VEC` items of a message (0-4), sometimes overlapping or null.
pub fn payload_vecs(rng: &mut Rng, pool_slots: &[u8]) -> Vec<ItemSpec> {
    let n = *rng.pick(&[0usize, 1, 1, 1, 2, 2, 3, 4]);
    let mut v = Vec::with_capacity(n);
    let mut last = Addr::Data { off: 0 };
    for _ in 0..n {
        let addr = if rng.percent(15) {
            last // overlapping: the same or a nearby range again
        } else if rng.percent(8) {
            Addr::Null
        } else {
            payload_addr(rng, pool_slots)
        };
        last = addr;
        v.push(ItemSpec::new(
            ITEM_PAYLOAD_VEC,
            Payload::Vec {
                size: vec_size(rng),
                addr,
            },
        ));
    }
    v
}

/// Memfd kinds, the first ones sealed correctly.
pub const MEMFD_KINDS: &[FdKind] = &[
    FdKind::MemfdSealed,
    FdKind::MemfdSealed,
    FdKind::MemfdBigSealed,
    FdKind::MemfdEmptySealed,
    FdKind::MemfdUnsealed,
    FdKind::MemfdWriteSealOnly,
];

/// A `PAYLOAD_MEMFD` item: usually a sealed memfd and a range inside it.
pub fn payload_memfd(rng: &mut Rng) -> ItemSpec {
    let fd = if rng.percent(90) {
        FdRef::Zoo(*rng.pick(MEMFD_KINDS))
    } else {
        any_fd(rng, &[])
    };
    let (start, size) = match rng.below(10) {
        0 => (rng.u64(), rng.u64()),
        1 => (0, 0),
        2 => (4096, 1),
        3 => (u64::MAX - 8, 16),
        _ => {
            let s = rng.below(4096);
            (s, rng.range(1, 4096 - s))
        }
    };
    ItemSpec::new(ITEM_PAYLOAD_MEMFD, Payload::Memfd { start, size, fd })
}

/// A descriptor of any kind, kdbus handles included.
pub fn any_fd(rng: &mut Rng, slots: &[u8]) -> FdRef {
    match rng.below(10) {
        0..=2 if !slots.is_empty() => FdRef::Slot(*rng.pick(slots)),
        3 => FdRef::Raw(*rng.pick(&[-1, -100, 0, 1, 2, 999, 65535, i32::MAX, i32::MIN])),
        _ => FdRef::Zoo(*rng.pick(FdKind::ALL)),
    }
}

/// A `KDBUS_ITEM_FDS` item: usually 1-3 passable descriptors, now and
/// then an io_uring that holds kdbus files (`rings`).
pub fn fds_item(rng: &mut Rng, slots: &[u8], rings: &[u8]) -> ItemSpec {
    let n = match rng.below(20) {
        0 => 0,
        1 => rng.range(16, 20) as usize,
        _ => rng.range(1, 3) as usize,
    };
    let fds = (0..n)
        .map(|_| {
            if !rings.is_empty() && rng.percent(30) {
                FdRef::Slot(*rng.pick(rings))
            } else if rng.percent(70) {
                FdRef::Zoo(*rng.pick(FdKind::PASSABLE))
            } else {
                any_fd(rng, slots)
            }
        })
        .collect();
    ItemSpec::new(ITEM_FDS, Payload::Fds(fds))
}

/// A `BLOOM_FILTER` of a signal: generation plus `bloom` bytes (the bus's
/// size), sometimes of the wrong length.
pub fn bloom_filter(rng: &mut Rng, bloom: u64) -> ItemSpec {
    let len = match rng.below(10) {
        0 => rng.below(300),
        1 => bloom + 4,
        _ => bloom,
    };
    let mut b = rng.below(3).to_ne_bytes().to_vec();
    b.extend(rng.bytes(len as usize));
    ItemSpec::new(ITEM_BLOOM_FILTER, Payload::Bytes(b))
}

/// An item of a random type with a random payload.
pub fn random_item(rng: &mut Rng) -> ItemSpec {
    let ty = *rng.pick(ALL_ITEM_TYPES);
    let payload = match rng.below(4) {
        0 => Payload::U64s((0..rng.below(5)).map(|_| rng.u64()).collect()),
        1 => Payload::Bytes(name_bytes(rng)),
        2 => Payload::Vec {
            size: vec_size(rng),
            addr: payload_addr(rng, &[]),
        },
        _ => {
            let n = rng.below(64) as usize;
            Payload::Bytes(rng.bytes(n))
        }
    };
    ItemSpec::new(ty, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_items_carry_one_nul() {
        let i = ItemSpec::str(ITEM_NAME, "org.fuzz.n1");
        assert_eq!(i.payload, Payload::Bytes(b"org.fuzz.n1\0".to_vec()));
        assert_eq!(bus_name(3), "0-fuzz3");
    }

    #[test]
    fn size_field_apply() {
        assert_eq!(SizeField::Exact.apply(40, 36), 40);
        assert_eq!(SizeField::Unpadded.apply(40, 36), 36);
        assert_eq!(SizeField::Delta(-3).apply(40, 36), 37);
        assert_eq!(SizeField::Delta(1).apply(u64::MAX, 0), 0);
        assert_eq!(SizeField::Value(7).apply(40, 36), 7);
    }

    #[test]
    fn bloom_masks_follow_the_bloom_size() {
        let mut rng = Rng::new(5);
        let mut seen = 0;
        for _ in 0..500 {
            let r = match_rule(&mut rng, 64, &[3, 4], 10);
            if let (ITEM_BLOOM_MASK, Payload::Bytes(b)) = (r.ty, &r.payload) {
                seen += 1;
                assert!(b.len() <= 600);
            }
        }
        assert!(seen > 20);
    }
}
