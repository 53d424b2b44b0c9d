use kdbus::consts::*;
use kdbus::{BloomParams, ItemIter, SignalFilter};
use proptest::prelude::*;

use super::*;

fn p(s: &str) -> MatchRule {
    MatchRule::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parse_all_keys() {
    let r = p("type='signal',sender='org.example.Echo',interface='org.example.Echo',member='Pinged',\
               path_namespace='/org',destination=':1.7',arg0='hi',arg1path='/a/',arg2has='x',eavesdrop='true'");
    assert_eq!(r.msg_type, Some(MessageType::Signal));
    assert_eq!(r.sender.as_deref(), Some("org.example.Echo"));
    assert_eq!(r.path_namespace.as_deref(), Some("/org"));
    assert_eq!(r.destination.as_deref(), Some(":1.7"));
    assert_eq!(r.args[&0], "hi");
    assert_eq!(r.arg_paths[&1], "/a/");
    assert_eq!(r.arg_has[&2], "x");
    assert_eq!(r.eavesdrop, Some(true));
    let r = p("arg0namespace='org.example', path='/'");
    assert_eq!(r.arg0_namespace.as_deref(), Some("org.example"));
    assert_eq!(r.path.as_deref(), Some("/"));
    assert_eq!(p(""), MatchRule::new());
    // Unquoted values, escapes, commas inside quotes.
    let r = p("arg0=a\\'b,arg1='c,d',arg2=''");
    assert_eq!(r.args[&0], "a'b");
    assert_eq!(r.args[&1], "c,d");
    assert_eq!(r.args[&2], "");
    assert_eq!(p("arg63='x'").args[&63], "x");
}

#[test]
fn parse_errors() {
    for bad in [
        "type='signal",
        "type=",
        "type='bogus'",
        "foo='bar'",
        "member='a',member='b'",
        "interface='nodots'",
        "member='a.b'",
        "path='relative'",
        "path='/a',path_namespace='/b'",
        "sender='not a name'",
        "arg64='x'",
        "arg0x='x'",
        "arg01='x'",
        "argpath='x'",
        "arg1path='relative'",
        "eavesdrop='maybe'",
        "arg0namespace='a..b'",
        "arg0='a',arg0path='/b'",
        "=x",
        "type",
        "arg0=\\",
    ] {
        assert!(MatchRule::parse(bad).is_err(), "{bad:?} parsed");
    }
    let e = MatchRule::parse("type='x'").unwrap_err();
    assert_eq!(e.name(), crate::error::names::MATCH_RULE_INVALID);
}

#[test]
fn mask_elements_as_sd_bus() {
    let r = p("type='signal',interface='org.example.Echo',member='Pinged',path='/org/example',arg0='hi',arg1path='/x',arg2has='q',sender=':1.5',destination='a.b'");
    let els = r.mask().elements().to_vec();
    assert_eq!(
        els,
        [
            "message-type:signal",
            "interface:org.example.Echo",
            "member:Pinged",
            "path:/org/example",
            "arg0:hi",
            "arg2-has:q",
        ]
    );
    assert_eq!(
        p("path_namespace='/'").mask().elements(),
        ["path-slash-prefix:/"]
    );
    assert_eq!(
        p("arg0namespace='org.x'").mask().elements(),
        ["arg0-dot-prefix:org.x"]
    );
    assert!(p("sender='a.b',eavesdrop='true'").mask().is_empty());
}

/// The filter of dbus-on-kdbus.md 9.3 contains the mask of the rule a
/// receiver would add for that signal.
#[test]
fn mask_matches_the_9_3_filter() {
    let filter_hex = "88 80 00 21 04 00 21 11 50 48 0e 02 40 12 01 04 18 84 00 00 08 08 1b 00 00 00 00 00 04 00 28 04
76 e1 00 10 80 4f 20 61 20 40 11 01 04 01 01 88 10 80 48 11 10 84 01 a2 00 00 44 00 84 00 00 02";
    let bytes = crate::wire::tests::hex(filter_hex);
    let params = BloomParams::DEFAULT;
    let f = kdbus::Bloom::from_bytes(params, &bytes).unwrap();
    for rule in [
        "type='signal',interface='org.example.Echo',member='Pinged',path='/org/example',arg0='hi'",
        "path_namespace='/org'",
        "path_namespace='/'",
        "arg0namespace='hi'",
        "type='signal',sender='org.example.Echo'",
    ] {
        let m = p(rule).mask().build(params);
        assert!(m.is_subset_of(&f), "{rule}");
    }
    for rule in [
        "member='Other'",
        "arg0='ho'",
        "type='method_call'",
        "path='/org'",
    ] {
        let m = p(rule).mask().build(params);
        assert!(!m.is_subset_of(&f), "{rule}");
    }
}

fn items(r: &kdbus::MatchRule) -> Vec<(u64, Vec<u8>)> {
    ItemIter::new(&r.cmd().as_bytes()[32..])
        .map(|i| {
            let i = i.unwrap();
            (i.ty, i.payload.to_vec())
        })
        .collect()
}

fn name_item(old: u64, new: u64, name: Option<&str>) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [old, 0, new, 0] {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    if let Some(n) = name {
        v.extend_from_slice(n.as_bytes());
        v.push(0);
    }
    v
}

#[test]
fn match_add_items_in_order() {
    let params = BloomParams::DEFAULT;
    let r = p("type='signal',sender=':1.5',destination=':1.7',member='X'");
    let e = r.to_kdbus(3, params);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].cookie(), 3);
    let it = items(&e[0]);
    assert_eq!(
        it.iter().map(|i| i.0).collect::<Vec<_>>(),
        [ITEM_ID, ITEM_DST_ID, ITEM_BLOOM_MASK]
    );
    assert_eq!(it[0].1, 5u64.to_ne_bytes());
    assert_eq!(it[1].1, 7u64.to_ne_bytes());
    assert_eq!(it[2].1.len(), 64);
    let r = p("sender='org.example.Echo'");
    let it = items(&r.to_kdbus(1, params)[0]);
    assert_eq!(it.iter().map(|i| i.0).collect::<Vec<_>>(), [ITEM_NAME]);
    assert_eq!(it[0].1, b"org.example.Echo\0");
    // A rule that contradicts NameOwnerChanged adds no notification entries.
    assert_eq!(
        p("type='signal',interface='org.example.Echo'")
            .to_kdbus(1, params)
            .len(),
        1
    );
    assert_eq!(p("member='Pinged'").to_kdbus(1, params).len(), 1);
}

#[test]
fn name_owner_changed_entries() {
    let params = BloomParams::DEFAULT;
    let any = MATCH_ID_ANY;
    let noc = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',path='/org/freedesktop/DBus'";
    let e = p(noc).to_kdbus(9, params);
    let kinds: Vec<Vec<u64>> = e
        .iter()
        .map(|r| items(r).iter().map(|i| i.0).collect())
        .collect();
    assert_eq!(
        kinds,
        [
            vec![ITEM_BLOOM_MASK, ITEM_NAME],
            vec![ITEM_NAME_ADD],
            vec![ITEM_NAME_REMOVE],
            vec![ITEM_NAME_CHANGE],
            vec![ITEM_ID_ADD],
            vec![ITEM_ID_REMOVE],
        ]
    );
    assert!(e.iter().all(|r| r.cookie() == 9));
    assert_eq!(items(&e[1])[0].1, name_item(any, any, None));
    assert_eq!(
        items(&e[4])[0].1,
        [any.to_ne_bytes(), 0u64.to_ne_bytes()].concat()
    );
    // arg0 well-known: name entries only, with the name.
    let e = p(&format!("{noc},arg0='org.example.Echo'")).to_kdbus(1, params);
    assert_eq!(e.len(), 4);
    assert_eq!(
        items(&e[1])[0].1,
        name_item(any, any, Some("org.example.Echo"))
    );
    // arg0 well-known and a new owner: no NAME_REMOVE.
    let e = p(&format!("{noc},arg0='org.example.Echo',arg2=':1.9'")).to_kdbus(1, params);
    let kinds: Vec<u64> = e[1..].iter().map(|r| items(r)[0].0).collect();
    assert_eq!(kinds, [ITEM_NAME_ADD, ITEM_NAME_CHANGE]);
    assert_eq!(
        items(&e[1])[0].1,
        name_item(any, 9, Some("org.example.Echo"))
    );
    // arg0 unique: id entries only.
    let e = p(&format!("{noc},arg0=':1.9'")).to_kdbus(1, params);
    let kinds: Vec<u64> = e[1..].iter().map(|r| items(r)[0].0).collect();
    assert_eq!(kinds, [ITEM_ID_ADD, ITEM_ID_REMOVE]);
    assert_eq!(
        items(&e[1])[0].1,
        [9u64.to_ne_bytes(), 0u64.to_ne_bytes()].concat()
    );
    // A unique arg0 differing from arg1: nothing.
    assert_eq!(
        p(&format!("{noc},arg0=':1.9',arg1=':1.5'"))
            .to_kdbus(1, params)
            .len(),
        1
    );
    // arg1 not unique: nothing.
    assert_eq!(p(&format!("{noc},arg1='a.b'")).to_kdbus(1, params).len(), 1);
    // The empty rule also gets them.
    assert_eq!(p("").to_kdbus(1, params).len(), 6);
}

#[test]
fn userspace_matching() {
    let mut m = Message::signal("/org/example/Echo", "org.example.Echo", "Pinged")
        .build(&("org.example.x", "/a/b", vec!["p", "q"]))
        .unwrap();
    m.sender = Some(":1.5".into());
    let yes = [
        "",
        "type='signal'",
        "sender=':1.5'",
        "interface='org.example.Echo',member='Pinged'",
        "path='/org/example/Echo'",
        "path_namespace='/org/example'",
        "path_namespace='/'",
        "arg0='org.example.x'",
        "arg0namespace='org.example'",
        "arg0namespace='org.example.x'",
        "arg1path='/a/'",
        "arg1path='/a/b'",
        "arg2has='q'",
    ];
    for r in yes {
        assert!(p(r).matches(&m), "{r} should match");
    }
    let no = [
        "type='method_call'",
        "sender=':1.6'",
        "sender='org.freedesktop.DBus'",
        "member='Other'",
        "path='/org/example'",
        "path_namespace='/org/ex'",
        "arg0='org.example'",
        "arg0namespace='org.ex'",
        "arg1path='/a'",
        "arg2has='r'",
        "arg1='x'",
        "arg5='x'",
        "destination=':1.7'",
    ];
    for r in no {
        assert!(!p(r).matches(&m), "{r} should not match");
    }
    // Well-known senders are checked against the attached names.
    m.metadata.names = Some(vec!["org.example.Echo".into()]);
    assert!(p("sender='org.example.Echo'").matches(&m));
    assert!(!p("sender='org.example.Other'").matches(&m));
}

fn value() -> impl Strategy<Value = String> {
    "[a-z',\\\\ =./]{0,8}"
}

fn rule() -> impl Strategy<Value = MatchRule> {
    (
        prop::option::of(prop_oneof![
            Just(MessageType::Signal),
            Just(MessageType::MethodCall),
            Just(MessageType::MethodReturn),
            Just(MessageType::Error)
        ]),
        prop::option::of(prop_oneof![
            Just("org.example.Echo".to_string()),
            (1u64..1000).prop_map(|n| format!(":1.{n}")),
            Just(DBUS_NAME.to_string()),
        ]),
        prop::option::of("[a-z]{1,5}\\.[A-Z][a-z]{0,5}"),
        prop::option::of("[A-Z][a-z]{0,6}"),
        prop::option::of(
            prop::collection::vec("[a-z]{1,4}", 0..3).prop_map(|v| format!("/{}", v.join("/"))),
        ),
        prop::collection::btree_map(0u8..64, value(), 0..3),
        prop::collection::btree_map(0u8..64, "/[a-z/]{0,5}", 0..2),
        any::<bool>(),
    )
        .prop_map(|(t, sender, iface, member, path, args, paths, ns)| {
            let mut r = MatchRule {
                msg_type: t,
                sender,
                interface: iface,
                member,
                ..Default::default()
            };
            if ns {
                r.path_namespace = path;
            } else {
                r.path = path;
            }
            r.args = args;
            r.arg_paths = paths
                .into_iter()
                .filter(|(n, _)| !r.args.contains_key(n))
                .collect();
            r
        })
}

proptest! {
    #[test]
    fn display_parses_back(r in rule()) {
        let s = r.to_string();
        let back = MatchRule::parse(&s).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn parse_never_panics(s in "[a-z0-9=',\\\\ :./_]{0,40}") {
        let _ = MatchRule::parse(&s);
    }

    /// A signal that matches a rule (userspace) also passes the rule's
    /// bloom mask against the filter a sender builds for it, in both
    /// argument walks, as long as the rule names at most arg0.
    #[test]
    fn mask_accepts_what_the_rule_matches(
        iface in "[a-z]{1,4}\\.[A-Z][a-z]{0,4}",
        member in "[A-Z][a-z]{0,5}",
        segs in prop::collection::vec("[a-z]{1,3}", 0..4),
        arg0 in "[a-z.]{0,6}",
        pick in 0u8..8,
        sd_bus in any::<bool>(),
    ) {
        let path = format!("/{}", segs.join("/"));
        let mut m = Message::signal(&path, &iface, &member).build(&(arg0.as_str(), 5u32)).unwrap();
        m.sender = Some(":1.3".into());
        let mut r = MatchRule::new();
        if pick & 1 != 0 { r.interface = Some(iface.clone()); r.msg_type = Some(MessageType::Signal); }
        if pick & 2 != 0 { r.member = Some(member.clone()); r.args.insert(0, arg0.clone()); }
        if pick & 4 != 0 {
            let k = segs.len() / 2;
            r.path_namespace = Some(if k == 0 { "/".into() } else { format!("/{}", segs[..k].join("/")) });
        } else {
            r.path = Some(path.clone());
        }
        prop_assert!(r.matches(&m));
        let params = BloomParams::DEFAULT;
        let walk = if sd_bus { kdbus::ArgWalk::SdBus } else { kdbus::ArgWalk::Recommended };
        let f = SignalFilter::new().interface(&iface).member(&member).path(&path)
            .arg_str(&arg0).arg_other().walk(walk).build(params);
        prop_assert!(r.mask().build(params).is_subset_of(&f));
    }
}
