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
use zvariant::{Signature, StructureBuilder, Value, LE};

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
    let mut fields: Vec<(u8, Value<'_>)> = Vec::new();
    let mut gv = header.clone();
    gv.sender = None;
    for (code, v) in gv.fields().map_err(|e| ConvertError(e.to_string()))? {
        let v = match (code, v) {
            (field::REPLY_SERIAL, Value::U64(n)) => Value::U32(u32_of(n, "reply cookie")?),
            (_, v) => v,
        };
        if code == field::UNIX_FDS {
            continue;
        }
        fields.push((code as u8, v));
    }
    if let Some(s) = sender {
        fields.push((field::SENDER as u8, Value::from(s)));
    }
    if !header.signature.is_empty() {
        let sig = Signature::try_from(header.signature.as_str())
            .map_err(|e| ConvertError(format!("signature: {e}")))?;
        fields.push((field::SIGNATURE as u8, Value::Signature(sig)));
    }
    if let Some(n) = header.unix_fds {
        fields.push((field::UNIX_FDS as u8, Value::U32(n)));
    }
    // The field array a(yv) at offset 12: u32 length, entries 8-aligned.
    let farr = zvariant::to_bytes(dbus1_context(12), &fields)
        .map_err(|e| ConvertError(format!("header fields: {e}")))?;
    let farr = farr.bytes();
    let mut out = Vec::with_capacity(16 + farr.len() + 8 + body.len());
    out.push(b'l');
    out.push(header.msg_type.code());
    out.push(header.flags);
    out.push(1);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(farr);
    while out.len() % 8 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&body);
    Ok(out)
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
}
