//! `kdbusctl capture`: pcap files as `busctl capture` writes them
//! (systemd `bus-dump.c`: `bus_pcap_header`, `bus_message_pcap_frame`),
//! with every message in the D-Bus **dbus1** marshalling (version 1).
//!
//! File format (all fields in host order, little-endian here; the magic
//! tells readers the order):
//!
//! ```text
//! global header, 24 bytes:
//!   u32 magic 0xa1b2c3d4 (microsecond timestamps)
//!   u16 version_major 2, u16 version_minor 4
//!   i32 thiszone 0 (UTC), u32 sigfigs 0
//!   u32 snaplen (--size, default 4096 as busctl's)
//!   u32 network 231 (LINKTYPE_DBUS)
//! per message, 16-byte record header then the data:
//!   u32 ts_sec, u32 ts_usec  (the message's KDBUS_ITEM_TIMESTAMP realtime,
//!                             else the time of reception)
//!   u32 incl_len = min(orig_len, snaplen), u32 orig_len = message size
//!   incl_len bytes of the dbus1 message
//! ```
//!
//! busctl writes the message's own header and body parts. On a dbus1 bus
//! that is the dbus1 wire format, which Wireshark's D-Bus dissector reads;
//! a kdbus message is GVariant "version 2" (dbus-on-kdbus.md 3), which it
//! does not. So each message is converted as `bus_message_remarshal` does
//! for the dbus1 bridge (dbus-on-kdbus.md 8.3, 8.4): the 12-byte fixed
//! header with version 1, the body length and the cookie as u32 serial;
//! the fields `a(yv)` in sd-bus's order (section 2) with REPLY_SERIAL as
//! `u`, then SENDER (`:1.<src_id>` or `org.freedesktop.DBus`, as the
//! bridge adds it), SIGNATURE (`g`, when the body is not empty), UNIX_FDS;
//! the body re-marshalled value by value in dbus1 rules (booleans 4
//! bytes, length prefixes instead of framing offsets); the header flags
//! are kept as they were (all three). Cookies or reply cookies above
//! 0xffffffff cannot be represented (`EOPNOTSUPP` in sd-bus): such a
//! message is skipped with a warning.

use std::io::Write;

use kdbus_client::wire::{field, Header};
use kdbus_client::Message;
use zvariant::serialized::Context;
use zvariant::{StructureBuilder, Value, LE};

/// `LINKTYPE_DBUS`.
pub const LINKTYPE_DBUS: u32 = 231;
/// The pcap magic for microsecond timestamps.
pub const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// busctl's default snapshot length (`--size`).
pub const DEFAULT_SNAPLEN: u32 = 4096;

/// The 24-byte pcap global header.
pub fn global_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone 0, sigfigs 0
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_DBUS.to_le_bytes());
    h
}

/// One pcap record: header and the (truncated) data.
pub fn record(data: &[u8], realtime_ns: u64, snaplen: u32) -> Vec<u8> {
    let incl = data.len().min(snaplen as usize);
    let mut r = Vec::with_capacity(16 + incl);
    r.extend_from_slice(&((realtime_ns / 1_000_000_000) as u32).to_le_bytes());
    r.extend_from_slice(&(((realtime_ns / 1000) % 1_000_000) as u32).to_le_bytes());
    r.extend_from_slice(&(incl as u32).to_le_bytes());
    r.extend_from_slice(&(data.len() as u32).to_le_bytes());
    r.extend_from_slice(&data[..incl]);
    r
}

fn dbus1_context(position: usize) -> Context {
    Context::new_dbus(LE, position)
}

/// Why a message cannot be written in dbus1 form.
#[derive(Debug, PartialEq, Eq)]
pub struct ConvertError(pub String);

/// The dbus1 marshalling of a message with `header` (the GVariant header's
/// fields), body `args` (one value per argument of `header.signature`) and
/// `sender` (the SENDER field to add, `None` for none).
pub fn dbus1(
    header: &Header,
    args: &[Value<'_>],
    sender: Option<&str>,
) -> Result<Vec<u8>, ConvertError> {
    let u32_of = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| ConvertError(format!("{what} {v} does not fit dbus1's u32")))
    };
    let serial = u32_of(header.cookie, "cookie")?;
    // Body: the argument tuple in dbus1 rules, starting 8-aligned.
    let body = if header.signature.is_empty() {
        Vec::new()
    } else {
        let mut b = StructureBuilder::new();
        for a in args {
            b = b.append_field(a.try_clone().map_err(|e| ConvertError(e.to_string()))?);
        }
        let s = b.build().map_err(|e| ConvertError(e.to_string()))?;
        zvariant::to_bytes(dbus1_context(0), &s)
            .map_err(|e| ConvertError(format!("body: {e}")))?
            .bytes()
            .to_vec()
    };
    // The field array a(yv), written here: zvariant keeps a signature of
    // several complete types as a structure and would write "(sasu)" for
    // the SIGNATURE "sasu".
    let mut fields: Vec<(u8, Field)> = Vec::new();
    let mut gv = header.clone();
    gv.sender = None;
    gv.unix_fds = None;
    for (code, v) in gv.fields().map_err(|e| ConvertError(e.to_string()))? {
        let f = match v {
            Value::U64(n) => Field::U(u32_of(n, "reply cookie")?),
            Value::U32(n) => Field::U(n),
            Value::ObjectPath(p) => Field::O(p.as_str().to_string()),
            Value::Str(st) => Field::S(st.as_str().to_string()),
            other => return Err(ConvertError(format!("header field {code}: {other:?}"))),
        };
        fields.push((code as u8, f));
    }
    if let Some(s) = sender {
        fields.push((field::SENDER as u8, Field::S(s.to_string())));
    }
    if !header.signature.is_empty() {
        fields.push((field::SIGNATURE as u8, Field::G(header.signature.clone())));
    }
    if let Some(n) = header.unix_fds {
        fields.push((field::UNIX_FDS as u8, Field::U(n)));
    }
    let farr = field_array(&fields);
    let mut out = Vec::with_capacity(16 + farr.len() + 8 + body.len());
    out.push(b'l');
    out.push(header.msg_type.code());
    out.push(header.flags);
    out.push(1);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&farr);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    out.extend_from_slice(&body);
    Ok(out)
}

/// A dbus1 header field value.
enum Field {
    /// `s`.
    S(String),
    /// `o`.
    O(String),
    /// `g`.
    G(String),
    /// `u`.
    U(u32),
}

/// The dbus1 `a(yv)` of `fields` as it sits at message offset 12: u32
/// length (without trailing padding), then each entry 8-aligned: code,
/// the variant's signature (length, type, NUL), the value aligned to its
/// type.
fn field_array(fields: &[(u8, Field)]) -> Vec<u8> {
    let mut b: Vec<u8> = Vec::new();
    // Positions are message offsets; the array data starts at 16.
    let pad = |b: &mut Vec<u8>, a: usize| {
        while !(16 + b.len()).is_multiple_of(a) {
            b.push(0);
        }
    };
    for (code, f) in fields {
        pad(&mut b, 8);
        b.push(*code);
        let (t, bytes): (u8, Vec<u8>) = match f {
            Field::S(s) => (b's', s.as_bytes().to_vec()),
            Field::O(s) => (b'o', s.as_bytes().to_vec()),
            Field::G(s) => (b'g', s.as_bytes().to_vec()),
            Field::U(_) => (b'u', Vec::new()),
        };
        b.extend_from_slice(&[1, t, 0]);
        match f {
            Field::U(n) => {
                pad(&mut b, 4);
                b.extend_from_slice(&n.to_le_bytes());
            }
            Field::G(_) => {
                b.push(bytes.len() as u8);
                b.extend_from_slice(&bytes);
                b.push(0);
            }
            _ => {
                pad(&mut b, 4);
                b.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                b.extend_from_slice(&bytes);
                b.push(0);
            }
        }
    }
    let mut out = (b.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&b);
    out
}

/// The dbus1 form of a received message (SENDER from the kernel's
/// `src_id`).
pub fn dbus1_message(m: &Message) -> Result<Vec<u8>, ConvertError> {
    let args = m.args().map_err(|e| ConvertError(format!("body: {e}")))?;
    let vals: Vec<Value<'_>> = args
        .iter()
        .map(|a| (**a).try_clone())
        .collect::<Result<_, _>>()
        .map_err(|e| ConvertError(e.to_string()))?;
    dbus1(m.header(), &vals, m.sender())
}

/// A pcap writer.
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    /// Packets written.
    pub packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W, snaplen: u32) -> std::io::Result<Self> {
        out.write_all(&global_header(snaplen))?;
        out.flush()?;
        Ok(PcapWriter {
            out,
            snaplen,
            packets: 0,
        })
    }

    /// Writes one packet and flushes.
    pub fn packet(&mut self, data: &[u8], realtime_ns: u64) -> std::io::Result<()> {
        self.out
            .write_all(&record(data, realtime_ns, self.snaplen))?;
        self.out.flush()?;
        self.packets += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus_client::MessageType;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    // dbus-on-kdbus.md 9.1, dbus1 form (135 bytes).
    const CALL_9_1: &str = "
        6c 01 00 01 07 00 00 00 01 00 00 00 6f 00 00 00
        01 01 6f 00 0c 00 00 00 2f 6f 72 67 2f 65 78 61
        6d 70 6c 65 00 00 00 00 03 01 73 00 04 00 00 00
        50 69 6e 67 00 00 00 00 02 01 73 00 10 00 00 00
        6f 72 67 2e 65 78 61 6d 70 6c 65 2e 45 63 68 6f
        00 00 00 00 00 00 00 00 06 01 73 00 10 00 00 00
        6f 72 67 2e 65 78 61 6d 70 6c 65 2e 45 63 68 6f
        00 00 00 00 00 00 00 00 08 01 67 00 01 73 00 00
        02 00 00 00 68 69 00";

    fn call_9_1() -> Header {
        let mut h = Header::new(MessageType::MethodCall);
        h.cookie = 1;
        h.path = Some("/org/example".into());
        h.interface = Some("org.example.Echo".into());
        h.member = Some("Ping".into());
        h.destination = Some("org.example.Echo".into());
        h.signature = "s".into();
        h
    }

    #[test]
    fn dbus1_call_of_9_1() {
        let b = dbus1(&call_9_1(), &[Value::from("hi")], None).unwrap();
        assert_eq!(b, hex(CALL_9_1));
    }

    #[test]
    fn dbus1_call_of_9_1_through_the_bridge() {
        // "the dbus1 form above plus SENDER `07 01 73 00 04 00 00 00
        // ":1.5" 00 00 00 00` before SIGNATURE, fields 0x7f, 151 bytes".
        let b = dbus1(&call_9_1(), &[Value::from("hi")], Some(":1.5")).unwrap();
        assert_eq!(b.len(), 151);
        let mut want = hex(CALL_9_1);
        want[12] = 0x7f;
        let sender = hex("07 01 73 00 04 00 00 00 3a 31 2e 35 00 00 00 00");
        let sig_at = 0x78;
        want.splice(sig_at..sig_at, sender);
        assert_eq!(b, want);
    }

    #[test]
    fn dbus1_return_of_9_2() {
        let mut h = Header::new(MessageType::MethodReturn);
        h.flags = 1;
        h.cookie = 2;
        h.reply_serial = Some(1);
        h.destination = Some(":1.5".into());
        h.signature = "s".into();
        let b = dbus1(&h, &[Value::from("hi")], None).unwrap();
        let want = hex("6c 02 01 01 07 00 00 00 02 00 00 00 1f 00 00 00
             05 01 75 00 01 00 00 00
             06 01 73 00 04 00 00 00 3a 31 2e 35 00 00 00 00
             08 01 67 00 01 73 00 00
             02 00 00 00 68 69 00");
        assert_eq!(b, want);
        assert_eq!(b.len(), 55);
    }

    #[test]
    fn dbus1_signal_of_9_3_and_empty_body() {
        let mut h = Header::new(MessageType::Signal);
        h.flags = 1;
        h.cookie = 3;
        h.path = Some("/org/example".into());
        h.interface = Some("org.example.Echo".into());
        h.member = Some("Pinged".into());
        h.signature = "s".into();
        let b = dbus1(&h, &[Value::from("hi")], None).unwrap();
        assert_eq!(b.len(), 103);
        assert_eq!(&b[..4], &[0x6c, 4, 1, 1]);
        assert_eq!(b[12], 0x4f);
        // No body: no SIGNATURE field, body length 0.
        let mut h = call_9_1();
        h.signature.clear();
        let b = dbus1(&h, &[], None).unwrap();
        assert_eq!(&b[4..8], &[0, 0, 0, 0]);
        assert_eq!(b.len() % 8, 0);
        // A cookie beyond u32 cannot be converted.
        let mut h = call_9_1();
        h.cookie = 1 << 32;
        assert!(dbus1(&h, &[Value::from("hi")], None).is_err());
    }

    #[test]
    fn pcap_bytes() {
        let mut out = Vec::new();
        let mut w = PcapWriter::new(&mut out, 100).unwrap();
        let msg = dbus1(&call_9_1(), &[Value::from("hi")], None).unwrap();
        w.packet(&msg, 1_700_000_000_123_456_789).unwrap();
        w.packet(&msg, 5_000_000_000).unwrap();
        assert_eq!(w.packets, 2);
        let want_hdr =
            hex("d4 c3 b2 a1 02 00 04 00 00 00 00 00 00 00 00 00 64 00 00 00 e7 00 00 00");
        assert_eq!(&out[..24], &want_hdr[..]);
        // Record 1: 1700000000 s, 123456 us, incl 100 (snaplen), orig 135.
        assert_eq!(
            &out[24..40],
            &hex("00 f1 53 65 40 e2 01 00 64 00 00 00 87 00 00 00")[..]
        );
        assert_eq!(&out[40..140], &msg[..100]);
        assert_eq!(
            &out[140..156],
            &hex("05 00 00 00 00 00 00 00 64 00 00 00 87 00 00 00")[..]
        );
        assert_eq!(out.len(), 24 + 2 * (16 + 100));
        // An untruncated record.
        let r = record(&msg, 0, DEFAULT_SNAPLEN);
        assert_eq!(r.len(), 16 + 135);
        assert_eq!(&r[8..16], &hex("87 00 00 00 87 00 00 00")[..]);
    }

    /// Wireshark's dissector reads what we write (runs `tshark` if it is
    /// installed, e.g. `apt-get install tshark`; skipped otherwise).
    #[test]
    fn wireshark_reads_the_capture() {
        if std::process::Command::new("tshark")
            .arg("-v")
            .output()
            .is_err()
        {
            eprintln!("tshark not installed: skipped");
            return;
        }
        let path = std::env::temp_dir().join(format!("kdbusctl-{}.pcap", std::process::id()));
        let mut w =
            PcapWriter::new(std::fs::File::create(&path).unwrap(), DEFAULT_SNAPLEN).unwrap();
        w.packet(
            &dbus1(&call_9_1(), &[Value::from("hi")], Some(":1.5")).unwrap(),
            1_000_000_000,
        )
        .unwrap();
        let vals = crate::sigparse::parse_args(
            "sasua{sv}",
            &["ab", "2", "c", "de", "7", "1", "k", "u", "5"].map(String::from),
        )
        .unwrap();
        let mut h = Header::new(MessageType::MethodReturn);
        h.flags = 1;
        h.cookie = 2;
        h.reply_serial = Some(1);
        h.destination = Some(":1.5".into());
        h.signature = "sasua{sv}".into();
        w.packet(&dbus1(&h, &vals, Some(":1.7")).unwrap(), 2_000_000_000)
            .unwrap();
        drop(w);
        let out = std::process::Command::new("tshark")
            .args([
                "-r",
                path.to_str().unwrap(),
                "-T",
                "fields",
                "-E",
                "separator=|",
            ])
            .args([
                "-e",
                "dbus.message_type",
                "-e",
                "dbus.version",
                "-e",
                "dbus.serial",
            ])
            .args([
                "-e",
                "dbus.member",
                "-e",
                "dbus.sender",
                "-e",
                "dbus.reply_serial",
            ])
            .args([
                "-e",
                "dbus.signature",
                "-e",
                "dbus.type.string",
                "-e",
                "dbus.type.uint32",
            ])
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "1|1|1|Ping|:1.5||s|hi|", "{text}");
        assert_eq!(lines[1], "2|1|2||:1.7|1|sasua{sv}|ab,c,de,k|7,5", "{text}");
        // And the bytes: SIGNATURE "sasua{sv}" without parentheses.
        let b = dbus1(&h, &vals, None).unwrap();
        let g = hex("08 01 67 00 09 73 61 73 75 61 7b 73 76 7d 00");
        assert!(b.windows(g.len()).any(|w| w == &g[..]));
    }
}
