//! Property tests of the module's pure protocol logic against simple models.

use kdbus_proto::cmd::{self, FLAG_NEGOTIATE};
use kdbus_proto::errno::{EINVAL, EMSGSIZE, ENAMETOOLONG, ENXIO, EXFULL};
use kdbus_proto::item::{self, Items};
use kdbus_proto::names;
use kdbus_proto::slices::{Allocator, Slice, SliceVec};
use kdbus_proto::uapi::*;
use proptest::prelude::*;

/// Userspace storage for the slice allocator.
#[derive(Debug, Default)]
struct Store(Vec<Slice>);

impl SliceVec for Store {
    fn slices(&self) -> &[Slice] {
        &self.0
    }
    fn slices_mut(&mut self) -> &mut [Slice] {
        &mut self.0
    }
    fn try_insert(&mut self, idx: usize, s: Slice) -> kdbus_proto::errno::Result {
        self.0.insert(idx, s);
        Ok(())
    }
    fn remove_at(&mut self, idx: usize) {
        self.0.remove(idx);
    }
}

fn push_item(buf: &mut Vec<u8>, ty: u64, payload: &[u8], size_override: Option<u64>) {
    let size = size_override.unwrap_or(16 + payload.len() as u64);
    buf.extend_from_slice(&size.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(8) {
        buf.push(0);
    }
}

fn cmd_with(flags: u64, items: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut buf = vec![0u8; 24];
    for (ty, p) in items {
        push_item(&mut buf, *ty as u64, p, None);
    }
    let size = buf.len() as u64;
    buf[0..8].copy_from_slice(&size.to_ne_bytes());
    buf[8..16].copy_from_slice(&flags.to_ne_bytes());
    buf[16..24].copy_from_slice(&0xdeadu64.to_ne_bytes());
    buf
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn bloom(size: u64, n: u64) -> Vec<u8> {
    let mut v = size.to_ne_bytes().to_vec();
    v.extend_from_slice(&n.to_ne_bytes());
    v
}

/// Model of the sysname rule (abi.md 5.1).
fn sysname_model(name: &[u8]) -> Result<(), i32> {
    if name.len() + 1 < 2 {
        return Err(EINVAL.0);
    }
    if name.len() + 1 > 64 {
        return Err(ENAMETOOLONG.0);
    }
    if name.contains(&0) {
        return Err(EINVAL.0);
    }
    for (i, &c) in name.iter().enumerate() {
        let inner = i != 0 && i != name.len() - 1;
        if !(c.is_ascii_alphanumeric() || c == b'_' || (inner && (c == b'-' || c == b'.'))) {
            return Err(EINVAL.0);
        }
    }
    Ok(())
}

/// Model of a well-known name (names.md 2), via a simple split.
fn well_known_model(name: &str, wildcard: bool) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 {
        return false;
    }
    parts.iter().enumerate().all(|(i, p)| {
        if wildcard && i == parts.len() - 1 && *p == "*" {
            return true;
        }
        !p.is_empty()
            && !p.as_bytes()[0].is_ascii_digit()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    })
}

proptest! {
    #[test]
    fn sysname_matches_model(name in proptest::collection::vec(prop_oneof![
        Just(b'a'), Just(b'Z'), Just(b'0'), Just(b'_'), Just(b'-'), Just(b'.'),
        Just(b' '), Just(b'/'), Just(0u8), any::<u8>()], 0..70)) {
        let mut payload = name.clone();
        payload.push(0);
        let got = item::validate_sysname(&payload).map_err(|e| e.0);
        prop_assert_eq!(got, sysname_model(&name));
    }

    #[test]
    fn well_known_matches_model(name in "[a-z0-9_.*-]{0,12}", wildcard in any::<bool>()) {
        prop_assert_eq!(names::is_valid_well_known(name.as_bytes(), wildcard),
                        well_known_model(&name, wildcard));
    }

    #[test]
    fn uid_prefix(uid in any::<u32>(), other in any::<u32>(), rest in "[a-z]{1,8}") {
        let name = format!("{uid}-{rest}");
        prop_assert!(names::check_uid_prefix(name.as_bytes(), uid).is_ok());
        if other != uid {
            let ok = names::check_uid_prefix(name.as_bytes(), other).is_ok();
            prop_assert!(!ok, "uid {} accepted {}", other, name);
        }
    }

    /// Any byte soup either parses into items that tile the stream exactly
    /// (each 8-aligned, inside the buffer), or fails with EINVAL.
    #[test]
    fn item_walk_is_total(words in proptest::collection::vec(any::<u64>(), 0..16),
                          sizes in proptest::collection::vec(0u64..64, 0..16),
                          tail in 0usize..8) {
        let mut buf = Vec::new();
        for (w, s) in words.iter().zip(sizes.iter().chain(std::iter::repeat(&16))) {
            buf.extend_from_slice(&s.to_ne_bytes());
            buf.extend_from_slice(&w.to_ne_bytes());
        }
        buf.extend(std::iter::repeat_n(0, tail));
        let size = buf.len();
        let mut it = Items::new(&buf, 0);
        let mut ok = true;
        let mut expect = 0usize;
        for i in &mut it {
            match i {
                Ok(i) => {
                    prop_assert_eq!(i.offset, expect);
                    prop_assert!(i.offset + 16 + i.payload.len() <= size);
                    expect = i.offset + item::align8(16 + i.payload.len()).unwrap();
                }
                Err(e) => { prop_assert_eq!(e, EINVAL); ok = false; }
            }
        }
        if ok {
            prop_assert!(item::check_end(it.pos(), 0, size).is_ok());
        }
    }

    /// BUS_MAKE parsing: negotiation writes back the allowed flags and zeroes
    /// unsupported entries; unknown flags always fail.
    #[test]
    fn bus_make_flags(flags in any::<u64>(), probe in proptest::collection::vec(0u64..0x9000, 0..6)) {
        let mut neg = Vec::new();
        for p in &probe { neg.extend_from_slice(&p.to_ne_bytes()); }
        let mut buf = cmd_with(flags, &[
            (KDBUS_ITEM_NEGOTIATE, neg),
            (KDBUS_ITEM_MAKE_NAME, cstr("0-x")),
            (KDBUS_ITEM_BLOOM_PARAMETER, bloom(64, 1)),
        ]);
        let allowed = 3 | FLAG_NEGOTIATE;
        match cmd::parse(&mut buf, &cmd::BUS_MAKE) {
            Err(e) => {
                prop_assert_eq!(e, EINVAL);
                prop_assert!(flags & !allowed != 0);
            }
            Ok(c) => {
                prop_assert_eq!(flags & !allowed, 0);
                prop_assert_eq!(c.negotiate, flags & FLAG_NEGOTIATE != 0);
                let (s, e) = c.negotiate_range.unwrap();
                for (k, off) in (s..e).step_by(8).enumerate() {
                    let v = item::read_u64(c.buf, off).unwrap();
                    let accepted = [1u64, 7, 11, 12].contains(&probe[k]);
                    prop_assert_eq!(v, if accepted { probe[k] } else { 0 });
                }
                if c.negotiate {
                    prop_assert_eq!(item::read_u64(c.buf, 8), Some(3));
                }
                prop_assert_eq!(item::read_u64(c.buf, 16), Some(0));
            }
        }
    }

    /// The slice allocator against a model: busy slices never overlap, all
    /// slices tile the pool, and freeing everything restores one free slice.
    #[test]
    fn slice_allocator(pages in 1u64..4, ops in proptest::collection::vec((0u8..4, 1u64..3000), 1..80)) {
        let size = pages * 4096;
        let mut a = Allocator::new(size, Store::default()).unwrap();
        let mut live: Vec<(u64, u64, bool)> = Vec::new(); // offset, size, published
        for (op, n) in ops {
            match op {
                0 | 1 => match a.alloc(n, op == 0) {
                    Ok((off, sz)) => {
                        prop_assert_eq!(off % 8, 0);
                        prop_assert_eq!(sz, (n + 7) & !7);
                        for &(o, s, _) in &live {
                            prop_assert!(off + sz <= o || o + s <= off, "overlap");
                        }
                        live.push((off, sz, false));
                    }
                    Err(e) => {
                        prop_assert_eq!(e, EXFULL);
                        let free_max = a.slices().iter().filter(|s| !s.busy).map(|s| s.size).max().unwrap_or(0);
                        prop_assert!(free_max < ((n + 7) & !7));
                    }
                },
                2 if !live.is_empty() => {
                    let i = (n as usize) % live.len();
                    let (off, _, published) = live[i];
                    if published {
                        a.free_user(off).unwrap();
                        live.remove(i);
                    } else {
                        // Never published: FREE must refuse it.
                        prop_assert_eq!(a.free_user(off), Err(ENXIO));
                        a.publish(off, true).unwrap();
                        live[i].2 = true;
                    }
                }
                _ => {
                    prop_assert_eq!(a.free_user(size + 8 * n), Err(ENXIO));
                }
            }
            let mut end = 0;
            for s in a.slices() {
                prop_assert_eq!(s.offset, end);
                end += s.size;
            }
            prop_assert_eq!(end, size);
            prop_assert!(a.slices().windows(2).all(|w| w[0].busy || w[1].busy));
            let acc: u64 = a.slices().iter().filter(|s| s.kref && s.accounted).map(|s| s.size).sum();
            prop_assert_eq!(acc, a.accounted());
        }
        for (off, _, published) in live {
            if !published { a.publish(off, true).unwrap(); }
            a.free_user(off).unwrap();
        }
        prop_assert_eq!(a.slices().len(), 1);
        prop_assert!(!a.slices()[0].busy);
    }
}

#[test]
fn bus_make_mandatory_items() {
    let mut buf = cmd_with(0, &[(KDBUS_ITEM_MAKE_NAME, cstr("0-x"))]);
    assert_eq!(cmd::parse(&mut buf, &cmd::BUS_MAKE).unwrap_err(), EINVAL);
    // Negotiation does not require mandatory items.
    let mut buf = cmd_with(FLAG_NEGOTIATE, &[]);
    assert!(cmd::parse(&mut buf, &cmd::BUS_MAKE).unwrap().negotiate);
}

#[test]
fn duplicate_and_foreign_items() {
    let name = (KDBUS_ITEM_MAKE_NAME, cstr("0-x"));
    let b = (KDBUS_ITEM_BLOOM_PARAMETER, bloom(64, 1));
    let mut buf = cmd_with(0, &[name.clone(), b.clone(), name.clone()]);
    assert_eq!(cmd::parse(&mut buf, &cmd::BUS_MAKE).unwrap_err(), EINVAL);
    let mut buf = cmd_with(
        0,
        &[
            name.clone(),
            b.clone(),
            (KDBUS_ITEM_ATTACH_FLAGS_RECV, vec![0; 8]),
        ],
    );
    assert_eq!(cmd::parse(&mut buf, &cmd::BUS_MAKE).unwrap_err(), EINVAL);
    let mut buf = cmd_with(0, &[name, b]);
    assert!(cmd::parse(&mut buf, &cmd::BUS_MAKE).is_ok());
}

#[test]
fn string_with_counted_padding_is_invalid() {
    let mut buf = vec![0u8; 24];
    // "0-x\0" is 4 bytes; claim 8 (padding counted).
    push_item(
        &mut buf,
        KDBUS_ITEM_MAKE_NAME as u64,
        b"0-x\0\0\0\0\0",
        Some(24),
    );
    let size = buf.len() as u64;
    buf[0..8].copy_from_slice(&size.to_ne_bytes());
    assert_eq!(cmd::parse(&mut buf, &cmd::BUS_MAKE).unwrap_err(), EINVAL);
}

#[test]
fn attach_sanitising() {
    assert_eq!(cmd::sanitize_attach(u64::MAX), Ok(0x3fff));
    assert_eq!(cmd::sanitize_attach(0x3fff), Ok(0x3fff));
    assert_eq!(cmd::sanitize_attach(0x4000), Err(EINVAL));
    let _ = EMSGSIZE;
}
