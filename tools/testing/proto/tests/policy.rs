//! Policy (proto/policy.rs) against a model of policy.md 2-3.

use std::collections::BTreeMap;

use kdbus_proto::errno::{Errno, E2BIG, EINVAL};
use kdbus_proto::item::Items;
use kdbus_proto::policy::*;
use kdbus_proto::uapi::*;
use proptest::prelude::*;

struct C {
    euid: u32,
    groups: Vec<u32>,
}

impl Creds for C {
    fn euid(&self) -> u32 {
        self.euid
    }
    fn in_group(&self, gid: u32) -> bool {
        self.groups.contains(&gid)
    }
}

fn item(ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (16 + payload.len() as u64).to_ne_bytes().to_vec();
    v.extend_from_slice(&(ty as u64).to_ne_bytes());
    v.extend_from_slice(payload);
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
    v
}

fn access(ty: u64, acc: u64, id: u64) -> Vec<u8> {
    let mut p = ty.to_ne_bytes().to_vec();
    p.extend_from_slice(&acc.to_ne_bytes());
    p.extend_from_slice(&id.to_ne_bytes());
    item(KDBUS_ITEM_POLICY_ACCESS, &p)
}

/// The database as the module builds it: (name, wildcard) -> rules.
#[derive(Default)]
struct Db(
    BTreeMap<(Vec<u8>, bool), Vec<Rule>>,
    Option<(Vec<u8>, bool)>,
);

impl Upload for Db {
    fn entry(&mut self, name: &[u8], wildcard: bool) -> kdbus_proto::errno::Result {
        let k = (name.to_vec(), wildcard);
        self.0.entry(k.clone()).or_default();
        self.1 = Some(k);
        Ok(())
    }
    fn rule(&mut self, r: Rule) -> kdbus_proto::errno::Result {
        let k = self.1.clone().unwrap();
        self.0.get_mut(&k).unwrap().push(r);
        Ok(())
    }
}

impl Db {
    fn query(&self, c: &C, name: &[u8]) -> Option<u32> {
        let e = self.0.get(&(name.to_vec(), false)).or_else(|| {
            let k = wildcard_key(name)?;
            self.0.get(&(k.to_vec(), true))
        })?;
        grant(e.iter().copied(), c)
    }
}

const NAMES: [&str; 6] = ["a.b", "a.b.c", "a.b.d", "x.y", "a.b.c.d", "a.c"];

/// One name of a policy upload with its (type, id, access) entries.
type NameEntries = (String, Vec<(u64, u64, u64)>);

/// Model: policy.md 2 written out on the upload's own terms.
fn model(upload: &[NameEntries], c: &C, name: &str) -> Option<u32> {
    let exact = upload.iter().find(|(n, _)| n == name);
    let entry = exact.or_else(|| {
        let dot = name.rfind('.')?;
        let w = format!("{}.*", &name[..dot]);
        upload.iter().find(|(n, _)| *n == w)
    })?;
    entry
        .1
        .iter()
        .filter(|(t, _, id)| match t {
            1 => *id as u32 == c.euid,
            2 => c.groups.contains(&(*id as u32)),
            _ => true,
        })
        .map(|(_, a, _)| *a as u32)
        .max()
}

fn how() -> UploadRules {
    UploadRules {
        wildcards: true,
        max_names: None,
        too_many: E2BIG,
    }
}

proptest! {
    #[test]
    fn query_matches_model(
        entries in proptest::collection::btree_map(
            prop_oneof![Just("a.b"), Just("a.b.*"), Just("a.b.c"), Just("x.*"), Just("a.*")],
            proptest::collection::vec((1u64..4, 0u64..3, 0u64..3), 0..4),
            0..5),
        euid in 0u32..3,
        groups in proptest::collection::vec(0u32..3, 0..2),
    ) {
        let upload: Vec<NameEntries> =
            entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let mut buf = Vec::new();
        for (n, rules) in &upload {
            buf.extend(item(KDBUS_ITEM_NAME, format!("{n}\0").as_bytes()));
            for (t, a, id) in rules {
                buf.extend(access(*t, *a, *id));
            }
        }
        let mut db = Db::default();
        parse_upload(|| Items::new(&buf, 0).map(|i| i.unwrap()), how(), |_, id| Some(id), &mut db).unwrap();
        let c = C { euid, groups };
        for n in NAMES {
            prop_assert_eq!(db.query(&c, n.as_bytes()), model(&upload, &c, n), "{}", n);
        }
    }
}

#[test]
fn upload_errors() {
    let parse = |buf: &[u8], how: UploadRules| -> Result<usize, Errno> {
        let mut db = Db::default();
        parse_upload(
            || Items::new(buf, 0).map(|i| i.unwrap()),
            how,
            |_, id| if id == 7 { None } else { Some(id) },
            &mut db,
        )?;
        Ok(db.0.len())
    };
    let name = |n: &str| item(KDBUS_ITEM_NAME, format!("{n}\0").as_bytes());
    // A rule before any name.
    assert_eq!(parse(&access(3, 1, 0), how()), Err(EINVAL));
    // Bad access level, bad type, unmappable id.
    for bad in [
        access(3, 3, 0),
        access(4, 0, 0),
        access(0, 0, 0),
        access(1, 0, 7),
    ] {
        assert_eq!(parse(&[name("a.b"), bad].concat(), how()), Err(EINVAL));
    }
    // Wildcards only where allowed.
    let no_wild = UploadRules {
        wildcards: false,
        max_names: Some(1),
        too_many: E2BIG,
    };
    assert_eq!(parse(&name("a.*"), no_wild), Err(EINVAL));
    assert_eq!(parse(&name("a.*"), how()), Ok(1));
    // Too many names.
    assert_eq!(
        parse(&[name("a.b"), name("a.c")].concat(), no_wild),
        Err(E2BIG)
    );
    // A name with no rules grants nothing but exists.
    assert_eq!(parse(&name("a.b"), how()), Ok(1));
    // Other item types are skipped.
    assert_eq!(
        parse(
            &[name("a.b"), item(KDBUS_ITEM_ID, &[0; 8]), access(3, 2, 0)].concat(),
            how()
        ),
        Ok(1)
    );
    // An exact entry shadows the wildcard, even granting less.
    let mut db = Db::default();
    let buf = [name("a.*"), access(3, 2, 0), name("a.b"), access(1, 0, 5)].concat();
    parse_upload(
        || Items::new(&buf, 0).map(|i| i.unwrap()),
        how(),
        |_, id| Some(id),
        &mut db,
    )
    .unwrap();
    let c = C {
        euid: 1,
        groups: vec![],
    };
    assert_eq!(db.query(&c, b"a.b"), None);
    assert_eq!(db.query(&c, b"a.c"), Some(OWN));
    assert_eq!(db.query(&c, b"a.b.c"), None);
}
