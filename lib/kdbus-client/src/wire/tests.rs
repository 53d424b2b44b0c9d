//! The worked examples of dbus-on-kdbus.md 9, byte for byte, and round
//! trips of header + body.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// Parses the hex dump of the spec: every line `OFFSET  hex bytes...
/// [comment]`; only 2-digit hex tokens up to the first token that is not
/// one are taken.
pub(crate) fn hexdump(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in s.lines() {
        let mut toks = line.split_whitespace();
        if toks.next().is_none() {
            continue;
        }
        for t in toks {
            if t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                out.push(u8::from_str_radix(t, 16).unwrap());
            } else {
                break;
            }
        }
    }
    out
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

pub(crate) const EX_9_1: &str = "
0000  6c 01 00 02 00 00 00 00 01 00 00 00 00 00 00 00   'l' CALL flags 0 v2, reserved, cookie 1
0010  01 00 00 00 00 00 00 00 2f 6f 72 67 2f 65 78 61   {1: \"/org/example\" NUL 'o'} ends @23
0020  6d 70 6c 65 00 00 6f 00 03 00 00 00 00 00 00 00   pad | {3: \"Ping\" NUL 's'} ends @39
0030  50 69 6e 67 00 00 73 00 02 00 00 00 00 00 00 00   pad | {2: \"org.example.Echo\" NUL 's'} @67
0040  6f 72 67 2e 65 78 61 6d 70 6c 65 2e 45 63 68 6f
0050  00 00 73 00 00 00 00 00 06 00 00 00 00 00 00 00   pad | {6: \"org.example.Echo\" NUL 's'} @99
0060  6f 72 67 2e 65 78 61 6d 70 6c 65 2e 45 63 68 6f
0070  00 00 73 17 27 43 63 00 68 69 00 00 28 73 29 77   offsets 17 27 43 63 (F=103) pad
";

pub(crate) const EX_9_2: &str = "
0000  6c 02 01 02 00 00 00 00 02 00 00 00 00 00 00 00   RETURN, NO_REPLY_EXPECTED, v2, cookie 2
0010  05 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00   {5: t 1
0020  00 74 00 00 00 00 00 00 06 00 00 00 00 00 00 00     NUL 't'} ends @18 | pad | {6:
0030  3a 31 2e 35 00 00 73 12 27 00 00 00 00 00 00 00     \":1.5\" NUL 's'} @39
0040  68 69 00 00 28 73 29 39                           \"hi\" NUL | 00 \"(s)\" | 0x39=16+41
";

pub(crate) const EX_9_3: &str = "
0000  6c 04 01 02 00 00 00 00 03 00 00 00 00 00 00 00   SIGNAL, NO_REPLY_EXPECTED, v2, cookie 3
0010  01 00 00 00 00 00 00 00 2f 6f 72 67 2f 65 78 61   {1: \"/org/example\" 'o'} @23
0020  6d 70 6c 65 00 00 6f 00 02 00 00 00 00 00 00 00   {2: \"org.example.Echo\" 's'} @51
0030  6f 72 67 2e 65 78 61 6d 70 6c 65 2e 45 63 68 6f
0040  00 00 73 00 00 00 00 00 03 00 00 00 00 00 00 00   {3: \"Pinged\" 's'} @73
0050  50 69 6e 67 65 64 00 00 73 17 33 49 00 00 00 00   offsets 17 33 49 (F=76) | pad
0060  68 69 00 00 28 73 29 5c                           \"hi\" NUL | 00 \"(s)\" | 0x5c=16+76
";

pub(crate) const EX_9_4: &str = "
0000  6c 01 00 02 00 00 00 00 05 00 00 00 00 00 00 00
0010  01 00 00 00 00 00 00 00 2f 00 00 6f 00 00 00 00   {1: \"/\" 'o'} @12
0020  03 00 00 00 00 00 00 00 4d 00 00 73 0c 1c 00 00   {3: \"M\" 's'} @28 | offsets 0c 1c (F=30) | pad
0030  61 62 00 63 00 64 65 00 02 05 00 00 07 00 00 00   \"ab\" | as: \"c\" \"de\" ends 02 05 | pad | u 7
0040  6b 00 00 00 00 00 00 00 05 00 00 00 00 75 02 0f   {\"k\", pad, <u 5> = 05000000 00 'u', key end 02} | array end 0f
0050  0a 03 00 28 73 61 73 75 61 7b 73 76 7d 29 2e      struct offsets 0a 03 (reversed) | 00 \"(sasua{sv})\" | 0x2e
";

fn call_9_1(cookie: u64) -> Header {
    let mut h = Header::new(MessageType::MethodCall);
    h.cookie = cookie;
    h.path = Some("/org/example".into());
    h.interface = Some("org.example.Echo".into());
    h.member = Some("Ping".into());
    h.destination = Some("org.example.Echo".into());
    h
}

fn enc<T: Serialize + zvariant::DynamicType>(mut h: Header, body: &T) -> Encoded {
    let b = Body::new(body).unwrap();
    h.signature = b.signature.clone();
    encode(&h, &b.bytes).unwrap()
}

#[test]
fn example_9_1_method_call() {
    let want = hexdump(EX_9_1);
    assert_eq!(want.len(), 128);
    let e = enc(call_9_1(1), &"hi");
    assert_eq!(e.bytes, want);
    // Items of 9.1: one vector [0, 0x78) and one [0x78, 0x80).
    assert_eq!(e.body_start, 0x78);
    assert_eq!(e.head().len(), 120);
    assert_eq!(e.body(), b"hi\0");
    assert_eq!(e.bytes.len() - e.body_start, 8);
    // The body as a 1-tuple is the same bytes.
    assert_eq!(enc(call_9_1(1), &("hi",)).bytes, want);
    let d = decode(&want).unwrap();
    let mut h = call_9_1(1);
    h.signature = "s".into();
    assert_eq!(d.header, h);
    assert_eq!(&want[d.body.clone()], b"hi\0");
    let s: String = deserialize_body("s", &want[d.body.clone()], &[]).unwrap();
    assert_eq!(s, "hi");
    let (s,): (String,) = deserialize_body("s", &want[d.body], &[]).unwrap();
    assert_eq!(s, "hi");
}

#[test]
fn example_9_2_method_return() {
    let want = hexdump(EX_9_2);
    assert_eq!(want.len(), 72);
    let mut h = Header::new(MessageType::MethodReturn);
    h.flags = FLAG_NO_REPLY_EXPECTED;
    h.cookie = 2;
    h.reply_serial = Some(1);
    h.destination = Some(":1.5".into());
    let e = enc(h.clone(), &"hi");
    assert_eq!(e.bytes, want);
    assert_eq!(e.head().len(), 64);
    h.signature = "s".into();
    assert_eq!(decode(&want).unwrap().header, h);
}

#[test]
fn example_9_3_signal() {
    let want = hexdump(EX_9_3);
    assert_eq!(want.len(), 104);
    let mut h = Header::new(MessageType::Signal);
    h.flags = FLAG_NO_REPLY_EXPECTED;
    h.cookie = 3;
    h.path = Some("/org/example".into());
    h.interface = Some("org.example.Echo".into());
    h.member = Some("Pinged".into());
    let e = enc(h.clone(), &"hi");
    assert_eq!(e.bytes, want);
    assert_eq!(e.head().len(), 96);
    h.signature = "s".into();
    assert_eq!(decode(&want).unwrap().header, h);
}

#[test]
fn example_9_4_struct_array_dict() {
    let want = hexdump(EX_9_4);
    assert_eq!(want.len(), 95);
    let mut h = Header::new(MessageType::MethodCall);
    h.cookie = 5;
    h.path = Some("/".into());
    h.member = Some("M".into());
    let mut m = HashMap::new();
    m.insert("k", zvariant::Value::from(5u32));
    let e = enc(h.clone(), &("ab", vec!["c", "de"], 7u32, m));
    assert_eq!(e.bytes, want);
    let d = decode(&want).unwrap();
    assert_eq!(d.header.signature, "sasua{sv}");
    type Args = (
        String,
        Vec<String>,
        u32,
        HashMap<String, zvariant::OwnedValue>,
    );
    let (a, b, c, dict): Args = deserialize_body("sasua{sv}", &want[d.body], &[]).unwrap();
    assert_eq!(
        (a.as_str(), b, c),
        ("ab", vec!["c".to_string(), "de".into()], 7)
    );
    assert_eq!(u32::try_from(&dict["k"]).unwrap(), 5);
}

pub(crate) fn name_owner_changed_bytes() -> Vec<u8> {
    let mut h = Header::new(MessageType::Signal);
    h.flags = FLAG_NO_REPLY_EXPECTED;
    h.cookie = SYNTHETIC_COOKIE;
    h.path = Some("/org/freedesktop/DBus".into());
    h.interface = Some("org.freedesktop.DBus".into());
    h.member = Some("NameOwnerChanged".into());
    enc(h, &("org.example.Echo", ":1.5", ":1.9")).bytes
}

#[test]
fn example_9_4_name_owner_changed() {
    let b = name_owner_changed_bytes();
    assert_eq!(b.len(), 148);
    assert_eq!(
        &b[..16],
        &hex("6c 04 01 02 00 00 00 00 ff ff ff ff 00 00 00 00")[..]
    );
    // F = 94: the offsets 20 3f 5b end the field array at 16 + 94 = 110.
    assert_eq!(&b[107..110], &hex("20 3f 5b")[..]);
    assert_eq!(&b[110..112], &[0, 0]);
    assert_eq!(&b[0x70..0x70 + 27], b"org.example.Echo\0:1.5\0:1.9\0");
    assert_eq!(&b[0x70 + 27..0x70 + 29], &hex("16 11")[..]);
    assert_eq!(&b[141..], &hex("00 28 73 73 73 29 6e")[..]);
}

#[test]
fn example_9_4_empty_body() {
    let e = enc(call_9_1(4), &());
    assert_eq!(e.bytes.len(), 125);
    let mut first = hexdump(EX_9_1)[..0x78].to_vec();
    first[8] = 4;
    assert_eq!(&e.bytes[..0x78], &first[..]);
    assert_eq!(&e.bytes[0x78..], &hex("00 00 28 29 77")[..]);
    let d = decode(&e.bytes).unwrap();
    assert_eq!(d.header.signature, "");
    let () = deserialize_body("", &e.bytes[d.body], &[]).unwrap();
}

#[test]
fn example_9_4_fd_argument() {
    let mut h = call_9_1(6);
    h.destination = Some(":1.9".into());
    h.unix_fds = Some(1);
    let f = std::fs::File::open("/dev/null").unwrap();
    let fd = zvariant::Fd::from(&f);
    let b = Body::new(&(fd,)).unwrap();
    assert_eq!(b.signature, "h");
    assert_eq!(b.bytes, [0, 0, 0, 0]);
    assert_eq!(b.fds.len(), 1);
    h.signature = b.signature.clone();
    let e = encode(&h, &b.bytes).unwrap();
    let fields = encode_fields(&h).unwrap();
    // The last entry is {9: <uint32 1>}; fields PATH, MEMBER, INTERFACE,
    // DESTINATION, UNIX_FDS.
    let entry = hex("09 00 00 00 00 00 00 00 01 00 00 00 00 75");
    let pos = fields
        .windows(entry.len())
        .position(|w| w == entry)
        .unwrap();
    assert_eq!(pos % 8, 0);
    assert_eq!(e.body(), &[0, 0, 0, 0]);
    assert_eq!(&e.footer()[..4], &hex("00 28 68 29")[..]);
    let d = decode(&e.bytes).unwrap();
    assert_eq!(d.header.unix_fds, Some(1));
    let (got,): (zvariant::OwnedFd,) = deserialize_body("h", e.body(), &b.fds).unwrap();
    assert!(std::os::fd::AsRawFd::as_raw_fd(&got) >= 0);
}

#[test]
fn large_body_uses_wide_offsets() {
    // 600000-byte string (dbus-on-kdbus.md 4.3): header 120, body 600001,
    // footer 8 (00 "(s)" + a 4-byte offset).
    let s = "x".repeat(600_000);
    let e = enc(call_9_1(1), &s.as_str());
    assert_eq!(e.head().len(), 120);
    assert_eq!(e.body().len(), 600_001);
    assert_eq!(e.footer(), &hex("00 28 73 29 77 00 00 00")[..]);
    let d = decode(&e.bytes).unwrap();
    assert_eq!(d.body, 120..600_121);
}

#[test]
fn offset_widths() {
    assert_eq!(offset_width(254, 1), 1);
    assert_eq!(offset_width(255, 1), 2);
    assert_eq!(offset_width(0xfffd, 1), 2);
    assert_eq!(offset_width(0xfffe, 1), 4);
    assert_eq!(offset_width_for_total(255), 1);
    assert_eq!(offset_width_for_total(256), 2);
    assert_eq!(offset_width_for_total(0x10000), 4);
    // A writer's choice is what a reader derives.
    for c in 240..300 {
        let w = offset_width(c, 1);
        assert_eq!(offset_width_for_total(c + w), w, "content {c}");
    }
}

#[test]
fn decode_refuses_malformed() {
    let good = hexdump(EX_9_1);
    assert!(decode(&good[..10]).is_err());
    let mut b = good.clone();
    b[3] = 1;
    assert!(decode(&b).is_err(), "version 1");
    let mut b = good.clone();
    b[0] = b'B';
    assert!(decode(&b).is_err(), "big endian");
    let mut b = good.clone();
    b[1] = 0;
    assert!(decode(&b).is_err(), "type 0");
    let mut b = good.clone();
    b[8] = 0;
    assert!(decode(&b).is_err(), "cookie 0");
    let mut b = good.clone();
    b[0x7c] = b'x';
    assert!(decode(&b).is_err(), "footer without parentheses");
    let mut b = good.clone();
    *b.last_mut().unwrap() = 0xff;
    assert!(decode(&b).is_err(), "offset out of range");
    // A SIGNATURE field is forbidden.
    let mut h = call_9_1(1);
    h.signature = "s".into();
    let mut fields: Vec<(u64, zvariant::Value<'_>)> = h.fields().unwrap();
    fields.push((
        field::SIGNATURE,
        zvariant::Value::from(zvariant::Signature::try_from("s").unwrap()),
    ));
    let fb = zvariant::to_bytes(gvariant_context(), &fields)
        .unwrap()
        .bytes()
        .to_vec();
    let mut msg = good[..16].to_vec();
    msg.extend_from_slice(&fb);
    let f = fb.len();
    msg.resize(16 + f.div_ceil(8) * 8, 0);
    msg.extend_from_slice(b"hi\0\0(s)");
    let w = offset_width(msg.len(), 1);
    msg.extend_from_slice(&((16 + f) as u64).to_le_bytes()[..w]);
    let err = decode(&msg).unwrap_err();
    assert!(err.0.contains("SIGNATURE"), "{err}");
    // Without the SIGNATURE field the same construction parses.
    let fb = encode_fields(&h).unwrap();
    assert_eq!(fb.len(), 103);
    // Missing MEMBER in a call.
    let mut h = call_9_1(1);
    h.member = None;
    assert!(encode(&h, &[0]).is_err());
    // A local-interface path is refused.
    let mut h = call_9_1(1);
    h.path = Some("/org/freedesktop/DBus/Local".into());
    assert!(encode(&h, &[0]).is_err());
}

#[test]
fn unknown_fields_are_skipped() {
    let h = call_9_1(1);
    let mut fields = h.fields().unwrap();
    fields.push((0x42, zvariant::Value::from(7u8)));
    fields.push((0x1234, zvariant::Value::from("x")));
    let fb = zvariant::to_bytes(gvariant_context(), &fields)
        .unwrap()
        .bytes()
        .to_vec();
    let mut msg = hexdump(EX_9_1)[..16].to_vec();
    msg.extend_from_slice(&fb);
    let f = fb.len();
    msg.resize(16 + f.div_ceil(8) * 8, 0);
    msg.extend_from_slice(b"hi\0\0(s)");
    let w = offset_width(msg.len() + 1, 1);
    msg.extend_from_slice(&((16 + f) as u64).to_le_bytes()[..w]);
    let d = decode(&msg).unwrap();
    let mut want = call_9_1(1);
    want.signature = "s".into();
    assert_eq!(d.header, want);
}

#[test]
fn signature_mismatch_is_an_error() {
    let e = enc(call_9_1(1), &"hi");
    let d = decode(&e.bytes).unwrap();
    assert!(deserialize_body::<u32>("s", &e.bytes[d.body.clone()], &[]).is_err());
    assert!(deserialize_body::<(String, String)>("s", &e.bytes[d.body], &[]).is_err());
}

#[test]
fn structure_view() {
    let e = enc(call_9_1(1), &("a", vec!["b", "c"], 3u32));
    let d = decode(&e.bytes).unwrap();
    let v = body_args(&d.header.signature, &e.bytes[d.body]).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(*v[0], zvariant::Value::from("a"));
}

// ---- property tests: header + body round trips ----

fn name_elem() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}"
}

fn dotted() -> impl Strategy<Value = String> {
    prop::collection::vec(name_elem(), 2..4).prop_map(|v| v.join("."))
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-z0-9_]{1,6}", 0..4).prop_map(|v| {
        if v.is_empty() {
            "/".into()
        } else {
            format!("/{}", v.join("/"))
        }
    })
}

fn destination() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        dotted().prop_map(Some),
        (1u64..100000).prop_map(|n| Some(format!(":1.{n}"))),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        1u8..=4,
        any::<u8>(),
        1u64..,
        path(),
        dotted(),
        name_elem(),
        dotted(),
        1u64..,
        destination(),
        prop::option::of(0u32..16),
    )
        .prop_map(|(t, flags, cookie, p, iface, member, err, rs, dest, fds)| {
            let msg_type = MessageType::from_code(t).unwrap();
            let mut h = Header::new(msg_type);
            h.flags = flags;
            h.cookie = cookie;
            h.destination = dest;
            h.unix_fds = fds;
            match msg_type {
                MessageType::MethodCall => {
                    h.path = Some(p);
                    h.member = Some(member);
                    if flags & 1 == 0 {
                        h.interface = Some(iface);
                    }
                }
                MessageType::Signal => {
                    h.path = Some(p);
                    h.interface = Some(iface);
                    h.member = Some(member);
                }
                MessageType::MethodReturn => h.reply_serial = Some(rs),
                MessageType::Error => {
                    h.reply_serial = Some(rs);
                    h.error_name = Some(err);
                }
            }
            h
        })
}

type BodyT = (
    String,
    u32,
    Vec<String>,
    i64,
    bool,
    Vec<(u8, String)>,
    HashMap<String, u64>,
);

fn body() -> impl Strategy<Value = BodyT> {
    (
        "[ -~]{0,40}",
        any::<u32>(),
        prop::collection::vec("[a-z]{0,5}", 0..5),
        any::<i64>(),
        any::<bool>(),
        prop::collection::vec((any::<u8>(), "[a-z]{0,3}"), 0..4),
        prop::collection::hash_map("[a-z]{1,4}", any::<u64>(), 0..4),
    )
}

proptest! {
    #[test]
    fn round_trip_header_and_body(h in header(), b in body(), pad in 0usize..400) {
        // A variable-length string moves the sizes across offset widths.
        let mut b = b;
        b.0.push_str(&"p".repeat(pad));
        let body = Body::new(&b).unwrap();
        let mut h = h;
        h.signature = body.signature.clone();
        let e = encode(&h, &body.bytes).unwrap();
        prop_assert_eq!(e.body_start % 8, 0);
        prop_assert_eq!(e.body(), &body.bytes[..]);
        let d = decode(&e.bytes).unwrap();
        prop_assert_eq!(&d.header, &h);
        let got: BodyT = deserialize_body(&d.header.signature, &e.bytes[d.body], &[]).unwrap();
        prop_assert_eq!(got, b);
    }

    #[test]
    fn round_trip_single_string(h in header(), s in "\\PC{0,300}") {
        let s: String = s.chars().filter(|c| *c != '\0').collect();
        let body = Body::new(&s.as_str()).unwrap();
        let mut h = h;
        h.signature = body.signature.clone();
        let e = encode(&h, &body.bytes).unwrap();
        let d = decode(&e.bytes).unwrap();
        prop_assert_eq!(&d.header, &h);
        let got: String = deserialize_body("s", &e.bytes[d.body], &[]).unwrap();
        prop_assert_eq!(got, s);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_survives_corruption(h in header(), b in body(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let body = Body::new(&b).unwrap();
        let mut h = h;
        h.signature = body.signature.clone();
        let mut e = encode(&h, &body.bytes).unwrap().bytes;
        let i = pos.index(e.len());
        e[i] = byte;
        if let Ok(d) = decode(&e) {
            let _ = body_args(&d.header.signature, &e[d.body]);
        }
    }
}
