//! Tests of metadata selection, the capability translation, faked ids and
//! pids, and the item encoding (metadata.md 2-4, connection.md 10).

use kdbus_proto::errno::*;
use kdbus_proto::item::{align8, Items};
use kdbus_proto::metadata::*;
use kdbus_proto::uapi::*;
use proptest::prelude::*;

/// A `Vec` sink.
#[derive(Default)]
struct V(Vec<u8>);

impl Sink for V {
    fn written(&self) -> usize {
        self.0.len()
    }
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.0.extend_from_slice(b);
        Ok(())
    }
    fn zeros(&mut self, n: usize) -> Result<()> {
        self.0.resize(self.0.len() + n, 0);
        Ok(())
    }
}

const ALL: u64 = _KDBUS_ATTACH_ALL;

#[test]
fn implicit_and_proc_items_partition_all() {
    assert_eq!(IMPLICIT & PROC_ITEMS, 0);
    assert_eq!(IMPLICIT | PROC_ITEMS, ALL);
    assert_eq!(PROCESS | CONNECTION, ALL);
    assert_eq!(PROCESS & CONNECTION, 0);
}

#[test]
fn item_types_follow_the_bits() {
    assert_eq!(item_type(KDBUS_ATTACH_TIMESTAMP), KDBUS_ITEM_TIMESTAMP);
    assert_eq!(item_type(KDBUS_ATTACH_NAMES), KDBUS_ITEM_OWNED_NAME);
    assert_eq!(item_type(KDBUS_ATTACH_AUDIT), KDBUS_ITEM_AUDIT);
    assert_eq!(
        item_type(KDBUS_ATTACH_CONN_DESCRIPTION),
        KDBUS_ITEM_CONN_DESCRIPTION
    );
}

#[test]
fn message_mask_examples() {
    // Implicit items cannot be withheld, the receiver selects.
    assert_eq!(
        message_mask(0, KDBUS_ATTACH_CREDS, false, || false),
        KDBUS_ATTACH_CREDS
    );
    assert_eq!(message_mask(ALL, 0, false, || true), 0);
    // /proc items: from the sender's mask, or visibility.
    let exe = KDBUS_ATTACH_EXE;
    assert_eq!(message_mask(0, exe, false, || false), 0);
    assert_eq!(message_mask(exe, exe, false, || false), exe);
    assert_eq!(message_mask(0, exe, false, || true), exe);
    // A faked sender sends connection metadata only.
    assert_eq!(message_mask(ALL, ALL, true, || true), CONNECTION);
    // Notification, CONN_INFO, BUS_CREATOR_INFO.
    assert_eq!(NOTIFICATION_MASK, KDBUS_ATTACH_TIMESTAMP);
    assert_eq!(conn_info_mask(ALL, ALL), ALL & !KDBUS_ATTACH_TIMESTAMP);
    assert_eq!(conn_info_mask(ALL, 0), 0);
    assert_eq!(bus_creator_mask(ALL, ALL), PROCESS);
}

#[test]
fn visibility_rule() {
    assert!(!procfs_visible(false, true, true));
    assert!(procfs_visible(true, true, false));
    assert!(procfs_visible(true, false, true));
    assert!(!procfs_visible(true, false, false));
}

proptest! {
    /// metadata.md 2.1: nothing the receiver did not ask for; every
    /// implicit item it asked for; `missing` only from /proc items; the
    /// sender's mask matters only when the receiver cannot see the sender.
    #[test]
    fn message_mask_rules(send in 0..=ALL, recv in 0..=ALL, visible: bool, faked: bool) {
        let g = message_mask(send, recv, faked, || visible);
        prop_assert_eq!(g & !recv, 0);
        if faked {
            prop_assert_eq!(g & PROCESS, 0);
            prop_assert_eq!(g, recv & CONNECTION);
        } else {
            prop_assert_eq!(g & IMPLICIT, recv & IMPLICIT);
            if visible {
                prop_assert_eq!(g, recv);
            } else {
                prop_assert_eq!(g & PROC_ITEMS, recv & send & PROC_ITEMS);
            }
        }
    }
}

/// A toy namespace tree: index -> parent; owners by index.
fn view(
    parents: &[Option<usize>],
    owners: &[u32],
    consumer: usize,
    producer: usize,
    euid: u32,
) -> CapsView {
    caps_view(consumer, producer, |n| parents[n], |n| owners[n] == euid)
}

#[test]
fn caps_view_rules() {
    // 0 = init, 1 = child of 0 (owner 1000), 2 = child of 1 (owner 0),
    // 3 = child of 0 (owner 0).
    let parents = [None, Some(0), Some(1), Some(0)];
    let owners = [0, 1000, 0, 0];
    // Rule 1: the producer's namespace or a descendant.
    assert_eq!(view(&parents, &owners, 0, 0, 0), CapsView::Unchanged);
    assert_eq!(view(&parents, &owners, 2, 0, 5), CapsView::Unchanged);
    assert_eq!(view(&parents, &owners, 2, 1, 5), CapsView::Unchanged);
    // Rule 3: not below the producer's namespace.
    assert_eq!(view(&parents, &owners, 1, 3, 0), CapsView::Nothing);
    assert_eq!(view(&parents, &owners, 0, 1, 1000), CapsView::Nothing);
    assert_eq!(view(&parents, &owners, 3, 1, 1000), CapsView::Nothing);
    // Rule 2, met on the walk before the producer's namespace (as the
    // kernel's cap_capable and upstream's loop do): 2 -> 1, and 1 is a
    // child of 0 created by euid 1000.
    assert_eq!(view(&parents, &owners, 2, 0, 1000), CapsView::Owner);
    assert_eq!(view(&parents, &owners, 1, 0, 1000), CapsView::Owner);
    // A namespace created by the producer's euid but not a child of the
    // producer's namespace does not count.
    assert_eq!(view(&parents, &owners, 2, 3, 0), CapsView::Nothing);
}

#[test]
fn caps_view_owner() {
    // Consumer X, a child of the producer's namespace: created by the
    // producer's euid -> all capabilities; by someone else -> the sets
    // unchanged (X descends from the producer's namespace).
    let parents = [None, Some(0)];
    let owners = [0, 1000];
    assert_eq!(view(&parents, &owners, 1, 0, 1000), CapsView::Owner);
    assert_eq!(view(&parents, &owners, 1, 0, 1001), CapsView::Unchanged);
}

#[test]
fn caps_payload_masks_last_cap() {
    let sets = [u64::MAX, u64::MAX, 0x1234, u64::MAX];
    let p = caps_payload(CapsView::Unchanged, sets, 40);
    assert_eq!(p[0], 40);
    assert_eq!((p[1], p[2]), (u32::MAX, 0x1ff));
    assert_eq!((p[5], p[6]), (0x1234, 0));
    let p = caps_payload(CapsView::Owner, [7; 4], 40);
    assert_eq!(&p[1..3], &[0, 0]);
    assert_eq!(
        &p[3..9],
        &[u32::MAX, 0x1ff, u32::MAX, 0x1ff, u32::MAX, 0x1ff]
    );
    let p = caps_payload(CapsView::Nothing, [7; 4], 40);
    assert!(p[1..].iter().all(|&w| w == 0));
    let p = caps_payload(CapsView::Unchanged, [u64::MAX; 4], 63);
    assert!(p[1..].iter().all(|&w| w == u32::MAX));
}

fn creds_payload(v: [u64; 8]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

#[test]
fn faked_creds() {
    let ok = parse_faked_creds(&creds_payload([0, 1, 0xffff_ffff, 3, 4, 5, 6, 7])).unwrap();
    assert_eq!(
        ok,
        [
            Some(0),
            Some(1),
            None,
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7)
        ]
    );
    // Truncated to 32 bits.
    let t = parse_faked_creds(&creds_payload([0x1_0000_03e8, 0, 0, 0, 0, 0, 0, 0])).unwrap();
    assert_eq!(t[0], Some(1000));
    // ~0ULL is not "unset" and cannot be mapped.
    assert_eq!(
        parse_faked_creds(&creds_payload([u64::MAX, 0, 0, 0, 0, 0, 0, 0])),
        Err(EINVAL)
    );
    assert_eq!(parse_faked_creds(&[0; 63]), Err(EINVAL));
}

#[test]
fn faked_pids() {
    let b = |v: [u64; 3]| -> Vec<u8> { v.iter().flat_map(|x| x.to_ne_bytes()).collect() };
    assert_eq!(parse_faked_pids(&b([0, 0, 0])).unwrap(), [None, None, None]);
    assert_eq!(
        parse_faked_pids(&b([5, 6, 0])).unwrap(),
        [Some(5), Some(6), None]
    );
    assert_eq!(parse_faked_pids(&b([1 << 31, 0, 0])), Err(EINVAL));
    assert_eq!(parse_faked_pids(&[0; 16]), Err(EINVAL));
}

/// Walks an encoded stream: every item well-formed, padding zero, the
/// reported end is the last item's unpadded end; returns (type, payload).
fn walk(buf: &[u8], end: Option<usize>) -> Vec<(u64, Vec<u8>)> {
    assert_eq!(buf.len() % 8, 0, "stream padded to 8");
    let mut out = Vec::new();
    let mut last = None;
    for i in Items::new(buf, 0) {
        let i = i.expect("well-formed item");
        let e = i.offset + 16 + i.payload.len();
        assert!(
            buf[e..align8(e).unwrap()].iter().all(|&b| b == 0),
            "zero padding"
        );
        last = Some(e);
        out.push((i.ty, i.payload.to_vec()));
    }
    assert_eq!(last, end);
    out
}

fn full_values<'a>(groups: &'a [u32], names: &'a [u8]) -> Values<'a> {
    Values {
        creds: Some([1, 2, 3, 4, 5, 6, 7, 8]),
        pids: Some([10, 11, 12]),
        auxgroups: Some(groups),
        tid_comm: Some(b"tid"),
        pid_comm: Some(b"pid-comm"),
        exe: Some(b"/bin/x"),
        cmdline: Some(b"a\0bc\0"),
        cgroup: Some(b"/a/b"),
        caps: Some(caps_payload(CapsView::Unchanged, [1, 2, 3, 4], 40)),
        seclabel: Some(b"label"),
        audit: Some([9, 1000]),
        names,
        description: Some(b"desc"),
        timestamp: Some([1, 2, 3]),
    }
}

#[test]
fn encode_everything_in_order() {
    let mut names = V::default();
    put_owned_name(&mut names, 1, b"a.b").unwrap();
    put_owned_name(&mut names, 2, b"c.d.e").unwrap();
    let groups = [4, 5, 6];
    let v = full_values(&groups, &names.0);
    let mut out = V::default();
    let end = encode(&v, ALL, &mut out).unwrap();
    let items = walk(&out.0, end);
    let tys: Vec<u64> = items.iter().map(|(t, _)| *t).collect();
    let want: Vec<u64> = [
        KDBUS_ITEM_CREDS,
        KDBUS_ITEM_PIDS,
        KDBUS_ITEM_AUXGROUPS,
        KDBUS_ITEM_TID_COMM,
        KDBUS_ITEM_PID_COMM,
        KDBUS_ITEM_EXE,
        KDBUS_ITEM_CMDLINE,
        KDBUS_ITEM_CGROUP,
        KDBUS_ITEM_CAPS,
        KDBUS_ITEM_SECLABEL,
        KDBUS_ITEM_AUDIT,
        KDBUS_ITEM_OWNED_NAME,
        KDBUS_ITEM_OWNED_NAME,
        KDBUS_ITEM_CONN_DESCRIPTION,
        KDBUS_ITEM_TIMESTAMP,
    ]
    .iter()
    .map(|&t| t as u64)
    .collect();
    assert_eq!(tys, want);
    let sizes: Vec<usize> = items.iter().map(|(_, p)| p.len() + 16).collect();
    // CREDS 80, PIDS 40, AUXGROUPS 16 + 8n, CAPS 52, AUDIT 24, TIMESTAMP 40.
    assert_eq!(sizes[0], 80);
    assert_eq!(sizes[1], 40);
    assert_eq!(sizes[2], 16 + 24);
    assert_eq!(sizes[8], 52);
    assert_eq!(sizes[10], 24);
    assert_eq!(sizes[14], 40);
    // Strings get their NUL; the cmdline block keeps its own.
    assert_eq!(items[3].1, b"tid\0");
    assert_eq!(items[6].1, b"a\0bc\0");
    assert_eq!(items[13].1, b"desc\0");
    // Ids are zero-extended u64s.
    assert_eq!(items[0].1[..8], 1u64.to_ne_bytes());
    assert_eq!(items[2].1[8..16], 5u64.to_ne_bytes());
}

#[test]
fn encode_nothing_and_empty_auxgroups() {
    let mut out = V::default();
    assert_eq!(encode(&Values::default(), ALL, &mut out).unwrap(), None);
    assert!(out.0.is_empty());
    let v = Values {
        auxgroups: Some(&[]),
        cmdline: Some(b""),
        ..Values::default()
    };
    let end = encode(&v, ALL, &mut out).unwrap();
    let items = walk(&out.0, end);
    // Empty AUXGROUPS is an item of size 16; an empty cmdline is none.
    assert_eq!(items, vec![(KDBUS_ITEM_AUXGROUPS as u64, vec![])]);
    // A cmdline without a final NUL gets one.
    let mut out = V::default();
    let v = Values {
        cmdline: Some(b"abc"),
        ..Values::default()
    };
    let items = walk(&out.0, None);
    assert!(items.is_empty());
    let end = encode(&v, ALL, &mut out).unwrap();
    assert_eq!(
        walk(&out.0, end),
        vec![(KDBUS_ITEM_CMDLINE as u64, b"abc\0".to_vec())]
    );
}

proptest! {
    /// Any values, any mask: the stream is well-formed, padded with zeros,
    /// in the fixed order, holds exactly the selected items that have data,
    /// and `encode` reports the last item's unpadded end.
    #[test]
    fn encoding_is_well_formed(
        mask in 0..=ALL,
        present in 0..=ALL,
        groups in proptest::collection::vec(any::<u32>(), 0..40),
        strs in proptest::collection::vec(proptest::collection::vec(1u8..=255, 0..70), 7),
        names in proptest::collection::vec((any::<u64>(), proptest::collection::vec(1u8..=255, 1..30)), 0..4),
        ids in any::<[u32; 8]>(),
        prefix in 0usize..4,
    ) {
        let mut nbuf = V::default();
        for (f, n) in &names {
            put_owned_name(&mut nbuf, *f, n).unwrap();
        }
        let on = |bit: u64| present & bit != 0;
        let s = |i: usize, bit: u64| on(bit).then_some(strs[i].as_slice());
        let v = Values {
            creds: on(KDBUS_ATTACH_CREDS).then_some(ids),
            pids: on(KDBUS_ATTACH_PIDS).then_some([ids[0], ids[1], ids[2]]),
            auxgroups: on(KDBUS_ATTACH_AUXGROUPS).then_some(groups.as_slice()),
            tid_comm: s(0, KDBUS_ATTACH_TID_COMM),
            pid_comm: s(1, KDBUS_ATTACH_PID_COMM),
            exe: s(2, KDBUS_ATTACH_EXE),
            cmdline: s(3, KDBUS_ATTACH_CMDLINE),
            cgroup: s(4, KDBUS_ATTACH_CGROUP),
            caps: on(KDBUS_ATTACH_CAPS).then_some(caps_payload(CapsView::Unchanged, [ids[0] as u64; 4], 40)),
            seclabel: s(5, KDBUS_ATTACH_SECLABEL),
            audit: on(KDBUS_ATTACH_AUDIT).then_some([ids[3], ids[4]]),
            names: if on(KDBUS_ATTACH_NAMES) { &nbuf.0 } else { &[] },
            description: s(6, KDBUS_ATTACH_CONN_DESCRIPTION),
            timestamp: on(KDBUS_ATTACH_TIMESTAMP).then_some([1, 2, 3]),
        };
        // Items may follow other items: start at an aligned offset.
        let mut out = V(vec![0xaa; prefix * 8]);
        let end = encode(&v, mask, &mut out).unwrap();
        let items = walk(&out.0[prefix * 8..], end.map(|e| e - prefix * 8));
        prop_assert!(out.0[..prefix * 8].iter().all(|&b| b == 0xaa));
        // Order and selection.
        let mut expect = Vec::new();
        for bit in ORDER {
            if mask & bit == 0 || present & bit == 0 {
                continue;
            }
            let t = item_type(bit) as u64;
            match bit {
                KDBUS_ATTACH_NAMES => expect.extend(names.iter().map(|_| t)),
                KDBUS_ATTACH_CMDLINE if strs[3].is_empty() => {}
                _ => expect.push(t),
            }
        }
        let got: Vec<u64> = items.iter().map(|(t, _)| *t).collect();
        prop_assert_eq!(got, expect);
        for (t, p) in &items {
            match *t as u32 {
                KDBUS_ITEM_CREDS => prop_assert_eq!(p.len(), 64),
                KDBUS_ITEM_PIDS => prop_assert_eq!(p.len(), 24),
                KDBUS_ITEM_AUXGROUPS => prop_assert_eq!(p.len(), 8 * groups.len()),
                KDBUS_ITEM_CAPS => prop_assert_eq!(p.len(), 36),
                KDBUS_ITEM_AUDIT => prop_assert_eq!(p.len(), 8),
                KDBUS_ITEM_TIMESTAMP => prop_assert_eq!(p.len(), 24),
                _ => prop_assert_eq!(p.last(), Some(&0u8), "strings end in NUL"),
            }
        }
    }
}
