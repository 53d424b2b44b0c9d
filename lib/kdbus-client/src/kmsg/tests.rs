//! The `kdbus_msg`s of dbus-on-kdbus.md 9 and the reconstruction of
//! delivered messages and notifications.

use super::*;
use crate::wire::tests::{hex, hexdump, name_owner_changed_bytes, EX_9_1, EX_9_2, EX_9_3};

const FILTER_9_3: &str = "88 80 00 21 04 00 21 11 50 48 0e 02 40 12 01 04 18 84 00 00 08 08 1b 00 00 00 00 00 04 00 28 04
76 e1 00 10 80 4f 20 61 20 40 11 01 04 01 01 88 10 80 48 11 10 84 01 a2 00 00 44 00 84 00 00 02";

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

/// `(offset, size, type)` of every item of a built message.
fn item_layout(b: &MsgBuilder) -> Vec<(usize, u64, u64)> {
    b.cmd()
        .items()
        .map(|i| {
            let i = i.unwrap();
            (i.offset + 64, i.size, i.ty)
        })
        .collect()
}

fn vec_bytes(b: &MsgBuilder, item_off: usize) -> Vec<u8> {
    let buf = b.cmd().as_bytes();
    let size = u64_at(buf, item_off + 16) as usize;
    let addr = u64_at(buf, item_off + 24) as *const u8;
    // SAFETY: the builder owns the vector's buffer.
    unsafe { std::slice::from_raw_parts(addr, size) }.to_vec()
}

fn call_9_1() -> Message {
    Message::method_call("/org/example", "Ping")
        .interface("org.example.Echo")
        .destination("org.example.Echo")
        .build(&"hi")
        .unwrap()
}

#[test]
fn kmsg_9_1_method_call() {
    let before = kdbus::monotonic_ns();
    let o = outgoing(
        &call_9_1(),
        1,
        DEFAULT_TIMEOUT,
        BloomParams::DEFAULT,
        ArgWalk::SdBus,
    )
    .unwrap();
    let b = &o.builder;
    assert!(o.is_call);
    assert_eq!(b.size(), 168);
    let buf = b.cmd().as_bytes();
    assert_eq!(u64_at(buf, 8), MSG_EXPECT_REPLY);
    assert_eq!(u64_at(buf, 16), 0, "priority");
    assert_eq!(u64_at(buf, 24), 0, "dst_id = KDBUS_DST_ID_NAME");
    assert_eq!(u64_at(buf, 32), 0, "src_id");
    assert_eq!(u64_at(buf, 40), 0x4442757344427573);
    assert_eq!(u64_at(buf, 48), 1);
    let deadline = u64_at(buf, 56);
    assert!(deadline >= before + 25_000_000_000 && deadline < before + 26_000_000_000);
    assert_eq!(
        item_layout(b),
        [
            (64, 33, ITEM_DST_NAME),
            (104, 32, ITEM_PAYLOAD_VEC),
            (136, 32, ITEM_PAYLOAD_VEC)
        ]
    );
    assert_eq!(&buf[80..97], b"org.example.Echo\0");
    let want = hexdump(EX_9_1);
    assert_eq!(vec_bytes(b, 104), &want[..0x78]);
    assert_eq!(vec_bytes(b, 136), &want[0x78..]);
}

#[test]
fn kmsg_9_2_method_return() {
    let mut call = call_9_1();
    call.header.cookie = 1;
    call.sender = Some(":1.5".into());
    let r = Message::method_return(&call).build(&"hi").unwrap();
    let o = outgoing(&r, 2, DEFAULT_TIMEOUT, BloomParams::DEFAULT, ArgWalk::SdBus).unwrap();
    let b = &o.builder;
    assert!(!o.is_call);
    assert_eq!(b.size(), 128);
    let buf = b.cmd().as_bytes();
    assert_eq!(u64_at(buf, 8), 0);
    assert_eq!(u64_at(buf, 24), 5);
    assert_eq!(u64_at(buf, 48), 2);
    assert_eq!(u64_at(buf, 56), 1, "cookie_reply");
    assert_eq!(
        item_layout(b),
        [(64, 32, ITEM_PAYLOAD_VEC), (96, 32, ITEM_PAYLOAD_VEC)]
    );
    let want = hexdump(EX_9_2);
    assert_eq!(vec_bytes(b, 64).len(), 64);
    assert_eq!([vec_bytes(b, 64), vec_bytes(b, 96)].concat(), want);
}

#[test]
fn kmsg_9_3_broadcast_signal() {
    let s = Message::signal("/org/example", "org.example.Echo", "Pinged")
        .build(&"hi")
        .unwrap();
    for walk in [ArgWalk::SdBus, ArgWalk::Recommended] {
        let o = outgoing(&s, 3, DEFAULT_TIMEOUT, BloomParams::DEFAULT, walk).unwrap();
        let b = &o.builder;
        assert_eq!(b.size(), 216);
        let buf = b.cmd().as_bytes();
        assert_eq!(u64_at(buf, 8), MSG_SIGNAL);
        assert_eq!(u64_at(buf, 24), u64::MAX);
        assert_eq!(u64_at(buf, 48), 3);
        assert_eq!(u64_at(buf, 56), 0);
        assert_eq!(
            item_layout(b),
            [
                (64, 32, ITEM_PAYLOAD_VEC),
                (96, 32, ITEM_PAYLOAD_VEC),
                (128, 88, ITEM_BLOOM_FILTER)
            ]
        );
        assert_eq!(u64_at(buf, 128 + 16), 0, "generation");
        assert_eq!(&buf[128 + 24..128 + 88], &hex(FILTER_9_3)[..]);
        let want = hexdump(EX_9_3);
        assert_eq!([vec_bytes(b, 64), vec_bytes(b, 96)].concat(), want);
    }
}

#[test]
fn bloom_argument_walks() {
    let p = BloomParams::DEFAULT;
    let sig = |body: &Message, walk| signal_filter(body, p, walk).bloom;
    let one = Message::signal("/a", "a.b", "C").build(&"x").unwrap();
    let two = Message::signal("/a", "a.b", "C")
        .build(&("x", "y"))
        .unwrap();
    // sd-bus: `ss` gives the same filter as `s`.
    assert_eq!(sig(&one, ArgWalk::SdBus), sig(&two, ArgWalk::SdBus));
    // Recommended: a superset with arg1.
    let rec = sig(&two, ArgWalk::Recommended);
    assert_ne!(rec, sig(&one, ArgWalk::Recommended));
    assert!(sig(&two, ArgWalk::SdBus).is_subset_of(&rec));
    assert!(rec.contains("arg1:y"));
    let arr = Message::signal("/a", "a.b", "C")
        .build(&(vec!["p", "q"], "z", 1u32))
        .unwrap();
    let f = sig(&arr, ArgWalk::SdBus);
    assert!(f.contains("arg0-has:p") && f.contains("arg0-has:q") && f.contains("arg1:z"));
    let none = Message::signal("/a", "a.b", "C")
        .build(&(1u32, "z"))
        .unwrap();
    assert!(!sig(&none, ArgWalk::Recommended).contains("arg1:z"));
}

#[test]
fn large_body_goes_into_a_memfd() {
    let big = "x".repeat(600_000);
    let m = Message::method_call("/org/example", "Ping")
        .interface("org.example.Echo")
        .destination("org.example.Echo")
        .build(&big.as_str())
        .unwrap();
    let o = outgoing(&m, 1, DEFAULT_TIMEOUT, BloomParams::DEFAULT, ArgWalk::SdBus).unwrap();
    let items = item_layout(&o.builder);
    let types: Vec<u64> = items.iter().map(|i| i.2).collect();
    assert_eq!(
        types,
        [
            ITEM_DST_NAME,
            ITEM_PAYLOAD_VEC,
            ITEM_PAYLOAD_MEMFD,
            ITEM_PAYLOAD_VEC
        ]
    );
    let buf = o.builder.cmd().as_bytes();
    assert_eq!(u64_at(buf, items[1].0 + 16), 120);
    let memfd_off = items[2].0;
    assert_eq!(u64_at(buf, memfd_off + 16), 0, "start");
    assert_eq!(u64_at(buf, memfd_off + 24), 600_001, "size");
    let fd = i32::from_ne_bytes(buf[memfd_off + 32..memfd_off + 36].try_into().unwrap());
    // SAFETY: F_GET_SEALS on the builder's live memfd.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    assert_eq!(seals & MEMFD_SEALS, MEMFD_SEALS);
    assert_eq!(
        vec_bytes(&o.builder, items[3].0),
        hex("00 28 73 29 77 00 00 00")
    );
    // A broadcast never uses a memfd; 512 KiB exactly stays inline.
    let s = Message::signal("/a", "a.b", "C")
        .build(&big.as_str())
        .unwrap();
    let o = outgoing(&s, 1, DEFAULT_TIMEOUT, BloomParams::DEFAULT, ArgWalk::SdBus).unwrap();
    assert!(!item_layout(&o.builder)
        .iter()
        .any(|i| i.2 == ITEM_PAYLOAD_MEMFD));
    let exact = "x".repeat(MEMFD_MIN_SIZE - 1);
    let m = Message::method_call("/a", "M")
        .destination(":1.3")
        .build(&exact.as_str())
        .unwrap();
    let o = outgoing(&m, 1, DEFAULT_TIMEOUT, BloomParams::DEFAULT, ArgWalk::SdBus).unwrap();
    assert_eq!(item_layout(&o.builder).len(), 2);
}

#[test]
fn fd_argument_items() {
    let f = std::fs::File::open("/dev/null").unwrap();
    let m = Message::method_call("/org/example", "Ping")
        .interface("org.example.Echo")
        .destination(":1.9")
        .build(&(zvariant::Fd::from(&f),))
        .unwrap();
    assert_eq!(m.header().unix_fds, Some(1));
    let o = outgoing(&m, 1, DEFAULT_TIMEOUT, BloomParams::DEFAULT, ArgWalk::SdBus).unwrap();
    let items = item_layout(&o.builder);
    assert_eq!(
        items.iter().map(|i| (i.1, i.2)).collect::<Vec<_>>(),
        [
            (32, ITEM_PAYLOAD_VEC),
            (32, ITEM_PAYLOAD_VEC),
            (20, ITEM_FDS)
        ]
    );
    assert_eq!(u64_at(o.builder.cmd().as_bytes(), 24), 9);
}

/// A delivered slice: header, PAYLOAD_OFF items for `parts`, `extra`
/// items, then the payload area.
#[allow(clippy::too_many_arguments)]
fn delivered(
    flags: u64,
    dst: u64,
    src: u64,
    payload_type: u64,
    cookie: u64,
    reply: u64,
    parts: &[&[u8]],
    extra: &[(u64, Vec<u8>)],
) -> Vec<u8> {
    let mut b = MsgBuilder::new(dst)
        .flags(flags)
        .src_id(src)
        .payload_type(payload_type)
        .cookie(cookie)
        .cookie_reply(reply);
    for p in parts {
        b = b.item(
            ITEM_PAYLOAD_OFF,
            &[(p.len() as u64).to_ne_bytes(), [0; 8]].concat(),
        );
    }
    for (t, p) in extra {
        b = b.item(*t, p);
    }
    let mut out = b.cmd().as_bytes().to_vec();
    let size = out.len();
    let mut off = size;
    for (i, p) in parts.iter().enumerate() {
        let item = 64 + i * 32;
        out[item + 24..item + 32].copy_from_slice(&(off as u64).to_ne_bytes());
        off += p.len();
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    out
}

#[test]
fn receive_9_1() {
    let blob = hexdump(EX_9_1);
    let mut owned = 0u64.to_ne_bytes().to_vec();
    owned.extend_from_slice(b"org.example.Caller\0");
    let slice = delivered(
        MSG_EXPECT_REPLY,
        0,
        5,
        PAYLOAD_DBUS,
        1,
        kdbus::monotonic_ns() + 1_000_000_000,
        &[&blob[..0x78], &blob[0x78..]],
        &[
            (ITEM_DST_NAME, b"org.example.Echo\0".to_vec()),
            (ITEM_OWNED_NAME, owned),
        ],
    );
    let km = kdbus::Message::parse(&slice).unwrap();
    let m = incoming(&km, 7).unwrap().unwrap();
    assert_eq!(m.sender(), Some(":1.5"));
    assert_eq!(m.destination(), Some("org.example.Echo"));
    assert_eq!(
        m.metadata().names,
        Some(vec!["org.example.Caller".to_string()])
    );
    assert_eq!(m.member(), Some("Ping"));
    assert_eq!(m.body::<String>().unwrap(), "hi");
    assert!(m.expects_reply());
    assert!(!m.is_broadcast());
    // One vector holding everything is accepted too (GLib).
    let slice = delivered(MSG_EXPECT_REPLY, 7, 5, PAYLOAD_DBUS, 1, 1, &[&blob], &[]);
    let m = incoming(&kdbus::Message::parse(&slice).unwrap(), 7)
        .unwrap()
        .unwrap();
    assert_eq!(m.destination(), Some(":1.7"));
    // A cookie mismatch, and EXPECT_REPLY against NO_REPLY_EXPECTED, drop it.
    let slice = delivered(MSG_EXPECT_REPLY, 7, 5, PAYLOAD_DBUS, 2, 1, &[&blob], &[]);
    assert!(incoming(&kdbus::Message::parse(&slice).unwrap(), 7).is_err());
    let slice = delivered(0, 7, 5, PAYLOAD_DBUS, 1, 0, &[&blob], &[]);
    assert!(incoming(&kdbus::Message::parse(&slice).unwrap(), 7).is_err());
    // Other payload types are ignored.
    let slice = delivered(0, 7, 5, 0x1234, 1, 0, &[&blob], &[]);
    assert!(incoming(&kdbus::Message::parse(&slice).unwrap(), 7)
        .unwrap()
        .is_none());
}

#[test]
fn receive_9_2_and_9_3() {
    let blob = hexdump(EX_9_2);
    let slice = delivered(
        0,
        5,
        7,
        PAYLOAD_DBUS,
        2,
        1,
        &[&blob[..64], &blob[64..]],
        &[],
    );
    let m = incoming(&kdbus::Message::parse(&slice).unwrap(), 5)
        .unwrap()
        .unwrap();
    assert_eq!(m.message_type(), MessageType::MethodReturn);
    assert_eq!(m.reply_serial(), Some(1));
    assert_eq!(m.sender(), Some(":1.7"));
    // The reply serial must equal cookie_reply.
    let slice = delivered(0, 5, 7, PAYLOAD_DBUS, 2, 9, &[&blob], &[]);
    assert!(incoming(&kdbus::Message::parse(&slice).unwrap(), 5).is_err());
    let blob = hexdump(EX_9_3);
    let slice = delivered(MSG_SIGNAL, u64::MAX, 7, PAYLOAD_DBUS, 3, 0, &[&blob], &[]);
    let m = incoming(&kdbus::Message::parse(&slice).unwrap(), 5)
        .unwrap()
        .unwrap();
    assert!(m.is_broadcast());
    assert_eq!(m.destination(), None);
    assert!(m.is_signal("org.example.Echo", "Pinged"));
}

fn name_change(old: (u64, u64), new: (u64, u64), name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [old.0, old.1, new.0, new.1] {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v
}

fn notification(ty: u64, payload: Vec<u8>, reply: u64) -> Option<Message> {
    let slice = delivered(
        MSG_SIGNAL,
        u64::MAX,
        0,
        PAYLOAD_KERNEL,
        0,
        reply,
        &[],
        &[(ty, payload), (ITEM_TIMESTAMP, vec![0; 24])],
    );
    incoming(&kdbus::Message::parse(&slice).unwrap(), 5).unwrap()
}

#[test]
fn notifications_become_name_owner_changed() {
    let m = notification(
        ITEM_NAME_CHANGE,
        name_change((5, 0), (9, 0), "org.example.Echo"),
        0,
    )
    .unwrap();
    let mut h = m.header.clone();
    h.cookie = wire::SYNTHETIC_COOKIE;
    // Byte for byte the 148-byte message of dbus-on-kdbus.md 9.4.
    assert_eq!(
        wire::encode(&h, &m.body).unwrap().bytes,
        name_owner_changed_bytes()
    );
    assert_eq!(m.sender(), Some(DBUS_NAME));
    let noc = m.name_owner_changed().unwrap();
    assert_eq!(noc.name, "org.example.Echo");
    assert_eq!(noc.old_owner.as_deref(), Some(":1.5"));
    assert_eq!(noc.new_owner.as_deref(), Some(":1.9"));

    let args = |m: Option<Message>| m.map(|m| m.body::<(String, String, String)>().unwrap());
    let s = |a: &str, b: &str, c: &str| Some((a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(
        args(notification(
            ITEM_NAME_ADD,
            name_change((0, 0), (9, 0), "a.b"),
            0
        )),
        s("a.b", "", ":1.9")
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_ADD,
            name_change((0, 0), (9, NAME_IN_QUEUE), "a.b"),
            0
        )),
        None
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_ADD,
            name_change((0, 0), (9, NAME_ACTIVATOR), "a.b"),
            0
        )),
        None
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_REMOVE,
            name_change((9, 0), (0, 0), "a.b"),
            0
        )),
        s("a.b", ":1.9", "")
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_REMOVE,
            name_change((9, NAME_ACTIVATOR), (0, 0), "a.b"),
            0
        )),
        None
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_CHANGE,
            name_change((3, NAME_ACTIVATOR), (9, 0), "a.b"),
            0
        )),
        s("a.b", "", ":1.9")
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_CHANGE,
            name_change((3, 0), (9, NAME_IN_QUEUE), "a.b"),
            0
        )),
        s("a.b", ":1.3", "")
    );
    assert_eq!(
        args(notification(
            ITEM_NAME_CHANGE,
            name_change((3, NAME_IN_QUEUE), (9, NAME_ACTIVATOR), "a.b"),
            0
        )),
        None
    );
    let id = |i: u64| [i.to_ne_bytes(), 0u64.to_ne_bytes()].concat();
    assert_eq!(
        args(notification(ITEM_ID_ADD, id(12), 0)),
        s(":1.12", "", ":1.12")
    );
    assert_eq!(
        args(notification(ITEM_ID_REMOVE, id(12), 0)),
        s(":1.12", ":1.12", "")
    );
}

#[test]
fn reply_notifications_become_no_reply() {
    for (ty, text) in [
        (ITEM_REPLY_TIMEOUT, "Method call timed out"),
        (ITEM_REPLY_DEAD, "Method call peer died"),
    ] {
        let m = notification(ty, vec![], 42).unwrap();
        assert_eq!(m.message_type(), MessageType::Error);
        assert_eq!(m.reply_serial(), Some(42));
        assert_eq!(m.destination(), Some(":1.5"));
        assert_eq!(m.cookie(), 0xffff_ffff);
        assert_eq!(m.flags(), wire::FLAG_NO_REPLY_EXPECTED);
        let e = m.to_error().unwrap();
        assert_eq!(e.name(), err::NO_REPLY);
        assert_eq!(e.message().as_deref(), Some(text));
    }
    // A kernel message without a notification item is ignored.
    let slice = delivered(
        0,
        5,
        0,
        PAYLOAD_KERNEL,
        0,
        0,
        &[],
        &[(ITEM_TIMESTAMP, vec![0; 24])],
    );
    assert!(incoming(&kdbus::Message::parse(&slice).unwrap(), 5)
        .unwrap()
        .is_none());
}
