//! Match rules (proto/matching.rs) against a model of match.md 4-5.

use kdbus_proto::matching::{bloom_matches, entry_matches, Subject, ID_ANY};
use kdbus_proto::uapi::*;
use proptest::prelude::*;

fn item(ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(16 + payload.len() as u64).to_ne_bytes());
    v.extend_from_slice(&(ty as u64).to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 8 != 0 {
        v.push(0);
    }
    v
}

/// A rule as the model sees it.
#[derive(Debug, Clone)]
enum R {
    Mask(Vec<Vec<u64>>),
    Name(u8),
    Id(u64),
    DstId(u64),
    IdAdd(u64),
    IdRemove(u64),
    NameChange(u64, u64, Option<u8>),
}

fn names(n: u8) -> String {
    format!("org.n{n}")
}

fn encode(rules: &[R]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in rules {
        let it = match r {
            R::Mask(gens) => {
                let mut p = Vec::new();
                for g in gens {
                    for w in g {
                        p.extend_from_slice(&w.to_ne_bytes());
                    }
                }
                item(KDBUS_ITEM_BLOOM_MASK, &p)
            }
            R::Name(n) => item(KDBUS_ITEM_NAME, format!("{}\0", names(*n)).as_bytes()),
            R::Id(id) => item(KDBUS_ITEM_ID, &id.to_ne_bytes()),
            R::DstId(id) => item(KDBUS_ITEM_DST_ID, &id.to_ne_bytes()),
            R::IdAdd(id) | R::IdRemove(id) => {
                let mut p = id.to_ne_bytes().to_vec();
                p.extend_from_slice(&0u64.to_ne_bytes());
                let ty = if matches!(r, R::IdAdd(_)) {
                    KDBUS_ITEM_ID_ADD
                } else {
                    KDBUS_ITEM_ID_REMOVE
                };
                item(ty, &p)
            }
            R::NameChange(o, n, name) => {
                let mut p = Vec::new();
                for v in [*o, 0, *n, 0] {
                    p.extend_from_slice(&v.to_ne_bytes());
                }
                if let Some(k) = name {
                    p.extend_from_slice(format!("{}\0", names(*k)).as_bytes());
                }
                item(KDBUS_ITEM_NAME_CHANGE, &p)
            }
        };
        out.extend_from_slice(&it);
    }
    out
}

#[derive(Debug, Clone)]
enum S {
    User {
        src: u64,
        dst: u64,
        gen: u64,
        filter: Vec<u64>,
        owned: Vec<u8>,
    },
    IdAdd(u64),
    NameChange(u64, u64, u8),
}

fn model(rules: &[R], s: &S) -> bool {
    let any = |r: u64, v: u64| r == ID_ANY || r == v;
    rules.iter().all(|r| match (r, s) {
        (R::Mask(gens), S::User { gen, filter, .. }) => {
            let g = (*gen as usize).min(gens.len() - 1);
            gens[g].iter().zip(filter).all(|(m, f)| m & !f == 0)
        }
        (R::Name(n), S::User { owned, .. }) => owned.contains(n),
        (R::Id(id), S::User { src, .. }) => any(*id, *src),
        (R::DstId(id), S::User { dst, .. }) => any(*id, *dst),
        (R::IdAdd(id), S::IdAdd(v)) => any(*id, *v),
        (R::NameChange(o, n, name), S::NameChange(so, sn, sname)) => {
            any(*o, *so) && any(*n, *sn) && name.is_none_or(|k| k == *sname)
        }
        _ => false,
    })
}

const W: usize = 2; // bloom words (bloom_size 16)

fn words() -> impl Strategy<Value = Vec<u64>> {
    proptest::collection::vec(
        prop_oneof![
            Just(0u64),
            Just(!0u64),
            any::<u64>(),
            (0u32..64).prop_map(|b| 1u64 << b)
        ],
        W,
    )
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![Just(ID_ANY), 0u64..4]
}

fn rule() -> impl Strategy<Value = R> {
    prop_oneof![
        proptest::collection::vec(words(), 1..3).prop_map(R::Mask),
        (0u8..3).prop_map(R::Name),
        id().prop_map(R::Id),
        prop_oneof![Just(ID_ANY), Just(u64::MAX - 1), 0u64..4].prop_map(R::DstId),
        id().prop_map(R::IdAdd),
        id().prop_map(R::IdRemove),
        (id(), id(), proptest::option::of(0u8..3)).prop_map(|(o, n, k)| R::NameChange(o, n, k)),
    ]
}

fn subject() -> impl Strategy<Value = S> {
    prop_oneof![
        (
            0u64..4,
            prop_oneof![Just(u64::MAX), 0u64..4],
            0u64..4,
            words(),
            proptest::collection::vec(0u8..3, 0..3)
        )
            .prop_map(|(src, dst, gen, filter, owned)| S::User {
                src,
                dst,
                gen,
                filter,
                owned
            }),
        (0u64..4).prop_map(S::IdAdd),
        (0u64..4, 0u64..4, 0u8..3).prop_map(|(o, n, k)| S::NameChange(o, n, k)),
    ]
}

proptest! {
    #[test]
    fn entries_match_model(rules in proptest::collection::vec(rule(), 0..4), s in subject()) {
        let enc = encode(&rules);
        let filter_bytes: Vec<u8>;
        let payload: Vec<u8>;
        let owned: Vec<String>;
        let subj = match &s {
            S::User { src, dst, gen, filter, owned: o } => {
                filter_bytes = filter.iter().flat_map(|w| w.to_ne_bytes()).collect();
                owned = o.iter().map(|k| names(*k)).collect();
                Subject::User { src: *src, dst_id: *dst, bloom: Some((*gen, &filter_bytes)) }
            }
            S::IdAdd(v) => {
                payload = [v.to_ne_bytes(), 0u64.to_ne_bytes()].concat();
                owned = vec![];
                Subject::Kernel { ty: KDBUS_ITEM_ID_ADD, payload: &payload }
            }
            S::NameChange(o, n, k) => {
                let mut p = Vec::new();
                for v in [*o, 0, *n, 0] {
                    p.extend_from_slice(&v.to_ne_bytes());
                }
                p.extend_from_slice(format!("{}\0", names(*k)).as_bytes());
                payload = p;
                owned = vec![];
                Subject::Kernel { ty: KDBUS_ITEM_NAME_CHANGE, payload: &payload }
            }
        };
        let got = entry_matches(&enc, &subj, W * 8, |n| owned.iter().any(|o| o.as_bytes() == n));
        prop_assert_eq!(got, model(&rules, &s));
    }

    #[test]
    fn bloom_mask_bits_must_be_in_filter(filter in words(), gens in proptest::collection::vec(words(), 1..4), gen in 0u64..6) {
        let f: Vec<u8> = filter.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let m: Vec<u8> = gens.iter().flatten().flat_map(|w| w.to_ne_bytes()).collect();
        let g = (gen as usize).min(gens.len() - 1);
        let want = gens[g].iter().zip(&filter).all(|(m, f)| m & f == *m);
        prop_assert_eq!(bloom_matches(&f, gen, &m, W * 8), want);
    }
}

#[test]
fn empty_entry_accepts_everything() {
    let s = Subject::Kernel {
        ty: KDBUS_ITEM_ID_REMOVE,
        payload: &[0; 16],
    };
    assert!(entry_matches(&[], &s, 8, |_| false));
    // A user rule never matches a notification, nor a kernel rule a message.
    assert!(!entry_matches(&encode(&[R::Id(ID_ANY)]), &s, 8, |_| false));
    let u = Subject::User {
        src: 1,
        dst_id: u64::MAX,
        bloom: None,
    };
    assert!(!entry_matches(
        &encode(&[R::IdRemove(ID_ANY)]),
        &u,
        8,
        |_| false
    ));
}
