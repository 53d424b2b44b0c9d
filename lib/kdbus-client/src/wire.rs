//! The D-Bus message as it travels inside a kdbus message: GVariant
//! "version 2" framing (dbus-on-kdbus.md 3).
//!
//! A message is the GVariant serialization of `(yyyyuta{tv}v)`:
//!
//! ```text
//! 0   'l' type flags 2          endianness, message type, flags, version
//! 4   00 00 00 00               reserved
//! 8   cookie (u64)
//! 16  a{tv}                     header fields, F bytes with their offsets
//! B   body                      B = 16 + ALIGN8(F)
//!     00 '(' signature ')'      the variant's type string
//!     offset                    16 + F, width from the total size
//! ```
//!
//! The header-field array and the body are serialized by zvariant (its
//! GVariant format, which matches sd-bus byte for byte for everything
//! used here, see the tests); the fixed 16 bytes, the padding, the footer
//! and the outer struct's single framing offset are written here, because
//! the body must stay a separate byte range (it may travel in a memfd) and
//! the footer always ends the last payload vector (dbus-on-kdbus.md 4.3).

use core::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use zvariant::serialized::{Context, Data};
use zvariant::{ObjectPath, OwnedValue, Value, LE};

/// Protocol version of the GVariant encoding.
pub const PROTOCOL_VERSION: u8 = 2;
/// The fixed part: endianness, type, flags, version, reserved u32, cookie.
pub const FIXED_HEADER_SIZE: usize = 16;
/// Cookie of locally synthesized messages (dbus-on-kdbus.md 2, 5.2).
pub const SYNTHETIC_COOKIE: u64 = 0xffff_ffff;
/// Longest signature (dbus-on-kdbus.md 2).
pub const MAX_SIGNATURE_LEN: usize = 255;

/// Header flag: the sender expects no reply.
pub const FLAG_NO_REPLY_EXPECTED: u8 = 0x1;
/// Header flag: do not start an activatable service.
pub const FLAG_NO_AUTO_START: u8 = 0x2;
/// Header flag: the caller allows interactive authorization.
pub const FLAG_ALLOW_INTERACTIVE_AUTHORIZATION: u8 = 0x4;

/// Header field codes (dbus-on-kdbus.md 2).
pub mod field {
    /// `PATH` (`o`).
    pub const PATH: u64 = 1;
    /// `INTERFACE` (`s`).
    pub const INTERFACE: u64 = 2;
    /// `MEMBER` (`s`).
    pub const MEMBER: u64 = 3;
    /// `ERROR_NAME` (`s`).
    pub const ERROR_NAME: u64 = 4;
    /// `REPLY_SERIAL` (`t` in GVariant).
    pub const REPLY_SERIAL: u64 = 5;
    /// `DESTINATION` (`s`).
    pub const DESTINATION: u64 = 6;
    /// `SENDER` (`s`; not sent on kdbus).
    pub const SENDER: u64 = 7;
    /// `SIGNATURE` (forbidden in GVariant messages: the footer has it).
    pub const SIGNATURE: u64 = 8;
    /// `UNIX_FDS` (`u`).
    pub const UNIX_FDS: u64 = 9;
}

/// The zvariant context of every GVariant value in a kdbus D-Bus message:
/// little-endian (the host order on every kdbus platform), position 0
/// (the body starts 8-aligned, so alignment relative to it is the same).
#[allow(deprecated)] // zvariant 5.15 deprecates its GVariant format in favour of a new crate
pub fn gvariant_context() -> Context {
    Context::new_gvariant(LE, 0)
}

/// D-Bus message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// 1: a method call.
    MethodCall,
    /// 2: a method return.
    MethodReturn,
    /// 3: an error reply.
    Error,
    /// 4: a signal.
    Signal,
}

impl MessageType {
    /// The type byte.
    pub fn code(self) -> u8 {
        match self {
            MessageType::MethodCall => 1,
            MessageType::MethodReturn => 2,
            MessageType::Error => 3,
            MessageType::Signal => 4,
        }
    }

    /// The type of a type byte (`None` for 0 and unknown types).
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => MessageType::MethodCall,
            2 => MessageType::MethodReturn,
            3 => MessageType::Error,
            4 => MessageType::Signal,
            _ => return None,
        })
    }

    /// The name used in match rules and bloom elements (`method_call`,
    /// `method_return`, `error`, `signal`).
    pub fn as_str(self) -> &'static str {
        self.bloom_type().as_str()
    }

    /// The bloom module's equivalent.
    pub fn bloom_type(self) -> kdbus::MessageType {
        match self {
            MessageType::MethodCall => kdbus::MessageType::MethodCall,
            MessageType::MethodReturn => kdbus::MessageType::MethodReturn,
            MessageType::Error => kdbus::MessageType::Error,
            MessageType::Signal => kdbus::MessageType::Signal,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a GVariant message blob is invalid (such messages are dropped,
/// dbus-on-kdbus.md 3.4 and 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid GVariant message: {}", self.0)
    }
}

impl std::error::Error for WireError {}

fn bad<T>(what: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(what.into()))
}

/// The decoded D-Bus header: the fixed part and the known fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The message type.
    pub msg_type: MessageType,
    /// Header flags (`FLAG_*`); unknown flags are kept.
    pub flags: u8,
    /// The serial ("cookie").
    pub cookie: u64,
    /// `PATH`.
    pub path: Option<String>,
    /// `INTERFACE`.
    pub interface: Option<String>,
    /// `MEMBER`.
    pub member: Option<String>,
    /// `ERROR_NAME`.
    pub error_name: Option<String>,
    /// `REPLY_SERIAL`.
    pub reply_serial: Option<u64>,
    /// `DESTINATION`.
    pub destination: Option<String>,
    /// `SENDER` (never sent by this crate; ignored on receive).
    pub sender: Option<String>,
    /// `UNIX_FDS`.
    pub unix_fds: Option<u32>,
    /// The body signature (without the footer's parentheses; "" for an
    /// empty body).
    pub signature: String,
}

impl Header {
    /// A header of `msg_type` with no fields, flags 0, cookie 0 and an
    /// empty body signature.
    pub fn new(msg_type: MessageType) -> Self {
        Header {
            msg_type,
            flags: 0,
            cookie: 0,
            path: None,
            interface: None,
            member: None,
            error_name: None,
            reply_serial: None,
            destination: None,
            sender: None,
            unix_fds: None,
            signature: String::new(),
        }
    }

    /// The header fields in the order sd-bus writes them
    /// (dbus-on-kdbus.md 2): call PATH, MEMBER, [INTERFACE],
    /// [DESTINATION]; signal PATH, INTERFACE, MEMBER, [DESTINATION];
    /// return REPLY_SERIAL, [DESTINATION]; error REPLY_SERIAL,
    /// [DESTINATION], ERROR_NAME; then [SENDER], [UNIX_FDS].
    pub fn fields(&self) -> Result<Vec<(u64, Value<'_>)>, WireError> {
        fn s(v: &Option<String>) -> Option<Value<'_>> {
            v.as_deref().map(Value::from)
        }
        let path = match &self.path {
            Some(p) => Some(Value::from(
                ObjectPath::try_from(p.as_str())
                    .map_err(|e| WireError(format!("invalid object path {p:?}: {e}")))?,
            )),
            None => None,
        };
        let reply = self.reply_serial.map(Value::from);
        let (iface, member, err, dest) = (
            s(&self.interface),
            s(&self.member),
            s(&self.error_name),
            s(&self.destination),
        );
        use field::*;
        let order: Vec<(u64, Option<Value<'_>>)> = match self.msg_type {
            MessageType::MethodCall => vec![
                (PATH, path),
                (MEMBER, member),
                (INTERFACE, iface),
                (DESTINATION, dest),
                (ERROR_NAME, err),
                (REPLY_SERIAL, reply),
            ],
            MessageType::Signal => vec![
                (PATH, path),
                (INTERFACE, iface),
                (MEMBER, member),
                (DESTINATION, dest),
                (ERROR_NAME, err),
                (REPLY_SERIAL, reply),
            ],
            MessageType::MethodReturn => vec![
                (REPLY_SERIAL, reply),
                (DESTINATION, dest),
                (PATH, path),
                (INTERFACE, iface),
                (MEMBER, member),
                (ERROR_NAME, err),
            ],
            MessageType::Error => vec![
                (REPLY_SERIAL, reply),
                (DESTINATION, dest),
                (ERROR_NAME, err),
                (PATH, path),
                (INTERFACE, iface),
                (MEMBER, member),
            ],
        };
        let tail = [
            (SENDER, s(&self.sender)),
            (UNIX_FDS, self.unix_fds.map(Value::from)),
        ];
        Ok(order
            .into_iter()
            .chain(tail)
            .filter_map(|(c, v)| v.map(|v| (c, v)))
            .collect())
    }

    /// Checks the rules of dbus-on-kdbus.md 2 that apply to both sealing
    /// and parsing: required fields per type, cookie and REPLY_SERIAL not
    /// 0, the signature's length, names of the local pseudo-interface.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.cookie == 0 {
            return bad("cookie 0");
        }
        let need = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                bad(format!("{} without {what}", self.msg_type))
            }
        };
        match self.msg_type {
            MessageType::MethodCall => {
                need(self.path.is_some(), "PATH")?;
                need(self.member.is_some(), "MEMBER")?;
            }
            MessageType::Signal => {
                need(self.path.is_some(), "PATH")?;
                need(self.interface.is_some(), "INTERFACE")?;
                need(self.member.is_some(), "MEMBER")?;
            }
            MessageType::MethodReturn => need(self.reply_serial.is_some(), "REPLY_SERIAL")?,
            MessageType::Error => {
                need(self.reply_serial.is_some(), "REPLY_SERIAL")?;
                need(self.error_name.is_some(), "ERROR_NAME")?;
            }
        }
        if self.reply_serial == Some(0) {
            return bad("REPLY_SERIAL 0");
        }
        if self.signature.len() > MAX_SIGNATURE_LEN {
            return bad("signature longer than 255 characters");
        }
        if self.path.as_deref() == Some("/org/freedesktop/DBus/Local")
            || self.interface.as_deref() == Some("org.freedesktop.DBus.Local")
            || self.sender.as_deref() == Some("org.freedesktop.DBus.Local")
        {
            return bad("org.freedesktop.DBus.Local is reserved");
        }
        Ok(())
    }
}

/// An encoded message: the whole blob and where its parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The message bytes.
    pub bytes: Vec<u8>,
    /// `B`: where the body starts (the end of the fixed header, field
    /// array and padding; what the first `PAYLOAD_VEC` covers).
    pub body_start: usize,
    /// Where the body ends and the footer starts.
    pub body_end: usize,
}

impl Encoded {
    /// `[0, B)`: fixed header, fields, padding.
    pub fn head(&self) -> &[u8] {
        &self.bytes[..self.body_start]
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_start..self.body_end]
    }

    /// The footer: 0x00, `(signature)`, framing offset.
    pub fn footer(&self) -> &[u8] {
        &self.bytes[self.body_end..]
    }
}

/// GVariant offset width for a container whose content before the
/// offsets is `content` bytes and that has `n` offsets
/// (`bus_gvariant_determine_word_size`).
pub fn offset_width(content: usize, n: usize) -> usize {
    let c = content as u128;
    let n = n as u128;
    if c + n <= 0xff {
        1
    } else if c + 2 * n <= 0xffff {
        2
    } else if c + 4 * n <= 0xffff_ffff {
        4
    } else {
        8
    }
}

/// GVariant offset width a reader derives from a container's total size.
pub fn offset_width_for_total(total: usize) -> usize {
    if total <= 0xff {
        1
    } else if total <= 0xffff {
        2
    } else if total as u64 <= 0xffff_ffff {
        4
    } else {
        8
    }
}

fn read_offset(bytes: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    v[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(v)
}

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Serializes the header-field array `a{tv}` through zvariant.
pub fn encode_fields(header: &Header) -> Result<Vec<u8>, WireError> {
    let fields = header.fields()?;
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let data = zvariant::to_bytes(gvariant_context(), &fields)
        .map_err(|e| WireError(format!("header fields: {e}")))?;
    Ok(data.bytes().to_vec())
}

/// Encodes a whole message from its header and the serialized body
/// (`body` must be the GVariant serialization of the tuple
/// `(header.signature)`, e.g. from [`crate::Body`]; an empty signature
/// stands for the unit tuple, whose serialization is one 0x00 byte).
///
/// The header is validated first.
pub fn encode(header: &Header, body: &[u8]) -> Result<Encoded, WireError> {
    header.validate()?;
    if header.signature.is_empty() && body != [0] && !body.is_empty() {
        return bad("non-empty body with an empty signature");
    }
    let fields = encode_fields(header)?;
    let f = fields.len();
    let body_start = FIXED_HEADER_SIZE + align8(f);
    let unit = [0u8];
    let body = if header.signature.is_empty() {
        &unit[..]
    } else {
        body
    };
    let sig_len = header.signature.len() + 2;
    let content = body_start + body.len() + 1 + sig_len;
    let w = offset_width(content, 1);
    let mut out = Vec::with_capacity(content + w);
    out.push(b'l');
    out.push(header.msg_type.code());
    out.push(header.flags);
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&header.cookie.to_le_bytes());
    out.extend_from_slice(&fields);
    out.resize(body_start, 0);
    out.extend_from_slice(body);
    let body_end = out.len();
    out.push(0);
    out.push(b'(');
    out.extend_from_slice(header.signature.as_bytes());
    out.push(b')');
    let off = (FIXED_HEADER_SIZE + f) as u64;
    out.extend_from_slice(&off.to_le_bytes()[..w]);
    Ok(Encoded {
        bytes: out,
        body_start,
        body_end,
    })
}

/// A parsed message blob: the header and the body's byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The header (fields and the body signature from the footer).
    pub header: Header,
    /// The body's byte range in the blob.
    pub body: Range<usize>,
}

/// Where the parts of a blob are, from its first bytes and its tail
/// (dbus-on-kdbus.md 3.4 steps 1-2), without reading the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// F: size of the header-field array.
    pub fields_len: usize,
    /// B: where the body starts.
    pub body_start: usize,
    /// Where the body ends (the footer's 0x00).
    pub body_end: usize,
    /// The body signature (without parentheses).
    pub signature: String,
}

/// Steps 1-2 of dbus-on-kdbus.md 3.4 on a blob of `total` bytes given only
/// its tail (`tail` = the last `tail.len()` bytes; it must hold the whole
/// footer, i.e. the last payload vector).
pub fn frame(total: usize, tail: &[u8]) -> Result<Frame, WireError> {
    if total < FIXED_HEADER_SIZE {
        return bad(format!("{total} bytes is shorter than the fixed header"));
    }
    let w = offset_width_for_total(total);
    if tail.len() < w + 1 || tail.len() > total {
        return bad("footer not in the last part");
    }
    let e = read_offset(&tail[tail.len() - w..]) as usize;
    if e < FIXED_HEADER_SIZE || align8(e) > total - w {
        return bad(format!("framing offset {e} out of range"));
    }
    let fields_len = e - FIXED_HEADER_SIZE;
    let body_start = FIXED_HEADER_SIZE + align8(fields_len);
    // The variant: body, 0x00, "(sig)".
    let sig_area = &tail[..tail.len() - w];
    let Some(nul) = sig_area.iter().rposition(|b| *b == 0) else {
        return bad("no variant separator in the footer");
    };
    let sig = &sig_area[nul + 1..];
    if sig.len() < 2 || sig[0] != b'(' || sig[sig.len() - 1] != b')' {
        return bad(format!(
            "footer type {:?} is not a parenthesized signature",
            String::from_utf8_lossy(sig)
        ));
    }
    let signature = core::str::from_utf8(&sig[1..sig.len() - 1])
        .map_err(|_| WireError("signature is not UTF-8".into()))?
        .to_string();
    if signature.len() > MAX_SIGNATURE_LEN {
        return bad("signature longer than 255 characters");
    }
    if !signature.is_empty() {
        zvariant::Signature::try_from(signature.as_str())
            .map_err(|e| WireError(format!("invalid signature {signature:?}: {e}")))?;
    }
    let body_end = total - tail.len() + nul;
    if body_end < body_start {
        return bad("body ends before it starts");
    }
    Ok(Frame {
        fields_len,
        body_start,
        body_end,
        signature,
    })
}

/// Parses a whole message blob (dbus-on-kdbus.md 3.4): the fixed header,
/// the header fields (through zvariant), the footer; checks the rules of
/// section 2 (required fields, types per code, duplicates, no SIGNATURE).
/// Unknown field codes are skipped.
pub fn decode(bytes: &[u8]) -> Result<Decoded, WireError> {
    let fr = frame(bytes.len(), bytes)?;
    let (header, _) = decode_head(&bytes[..fr.body_start], &fr)?;
    Ok(Decoded {
        header,
        body: fr.body_start..fr.body_end,
    })
}

/// Parses the fixed header and the field array in `head` (at least the
/// first `16 + F` bytes) for the frame `fr`; returns the header (with
/// `fr`'s signature) and F.
pub fn decode_head(head: &[u8], fr: &Frame) -> Result<(Header, usize), WireError> {
    if head.len() < FIXED_HEADER_SIZE + fr.fields_len {
        return bad("first part does not hold the whole header");
    }
    match head[0] {
        b'l' => {}
        b'B' => return bad("big-endian message on a little-endian host"),
        c => return bad(format!("endianness byte {c:#x}")),
    }
    let Some(msg_type) = MessageType::from_code(head[1]) else {
        return bad(format!("message type {}", head[1]));
    };
    if head[3] != PROTOCOL_VERSION {
        return bad(format!("protocol version {}", head[3]));
    }
    let mut h = Header::new(msg_type);
    h.flags = head[2];
    h.cookie = u64::from_le_bytes(head[8..16].try_into().unwrap());
    h.signature = fr.signature.clone();
    let fields_bytes = &head[FIXED_HEADER_SIZE..FIXED_HEADER_SIZE + fr.fields_len];
    if !fields_bytes.is_empty() {
        let data = Data::new(fields_bytes, gvariant_context());
        let (fields, used): (Vec<(u64, OwnedValue)>, usize) = data
            .deserialize()
            .map_err(|e| WireError(format!("header fields: {e}")))?;
        if used != fields_bytes.len() {
            return bad("trailing bytes after the header fields");
        }
        let mut seen = [false; 256];
        for (code, v) in fields {
            if code <= 0xff {
                if seen[code as usize] {
                    return bad(format!("header field {code} twice"));
                }
                seen[code as usize] = true;
            }
            apply_field(&mut h, code, &v)?;
        }
    }
    h.validate()?;
    Ok((h, fr.fields_len))
}

fn apply_field(h: &mut Header, code: u64, v: &Value<'_>) -> Result<(), WireError> {
    let want = |t: &str| WireError(format!("header field {code} is not of type {t}"));
    let string = |v: &Value<'_>| match v {
        Value::Str(s) => Ok(s.as_str().to_string()),
        _ => Err(want("s")),
    };
    match code {
        field::PATH => match v {
            Value::ObjectPath(p) => h.path = Some(p.as_str().to_string()),
            _ => return Err(want("o")),
        },
        field::INTERFACE => h.interface = Some(string(v)?),
        field::MEMBER => h.member = Some(string(v)?),
        field::ERROR_NAME => h.error_name = Some(string(v)?),
        field::DESTINATION => h.destination = Some(string(v)?),
        field::SENDER => h.sender = Some(string(v)?),
        field::REPLY_SERIAL => match v {
            Value::U64(n) => h.reply_serial = Some(*n),
            _ => return Err(want("t")),
        },
        field::UNIX_FDS => match v {
            Value::U32(n) => h.unix_fds = Some(*n),
            _ => return Err(want("u")),
        },
        field::SIGNATURE => return bad("SIGNATURE header field in a GVariant message"),
        _ => {}
    }
    Ok(())
}

/// A serialized body: its signature (without parentheses) and bytes, plus
/// the file descriptors its `h` values index.
#[derive(Debug, Default)]
pub struct Body {
    /// The body signature ("" for no arguments).
    pub signature: String,
    /// The GVariant bytes of the argument tuple.
    pub bytes: Vec<u8>,
    /// Descriptors referenced by `h` arguments (index order).
    pub fds: Vec<std::os::fd::OwnedFd>,
}

impl Body {
    /// The empty body (signature "", the unit tuple).
    pub fn empty() -> Self {
        Body {
            signature: String::new(),
            bytes: vec![0],
            fds: Vec::new(),
        }
    }

    /// Serializes `args` through zvariant's GVariant format.
    ///
    /// As in zbus, a struct or tuple value gives the arguments (its fields),
    /// any other value is the single argument; `()` is no argument. To send
    /// a single struct argument, wrap it in a 1-tuple.
    pub fn new<T>(args: &T) -> Result<Self, zvariant::Error>
    where
        T: Serialize + zvariant::DynamicType + ?Sized,
    {
        let sig = args.signature();
        let signature = match &sig {
            zvariant::Signature::Unit => return Ok(Body::empty()),
            zvariant::Signature::Structure(_) => sig.to_string_no_parens(),
            other => other.to_string(),
        };
        let data = zvariant::to_bytes(gvariant_context(), args)?;
        let fds = data
            .fds()
            .iter()
            .map(|fd| {
                std::os::fd::AsFd::as_fd(fd)
                    .try_clone_to_owned()
                    .map_err(|e| zvariant::Error::InputOutput(std::sync::Arc::new(e)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = data.bytes().to_vec();
        Ok(Body {
            signature,
            bytes,
            fds,
        })
    }
}

/// Deserializes a body of `signature` from `bytes` into `T`, whose
/// signature must equal the body's (a struct or tuple type stands for its
/// fields, any other type for a single argument).
pub fn deserialize_body<T>(
    signature: &str,
    bytes: &[u8],
    fds: &[std::os::fd::OwnedFd],
) -> Result<T, zvariant::Error>
where
    T: for<'d> Deserialize<'d> + zvariant::Type,
{
    let tsig = T::SIGNATURE;
    let matches = match tsig {
        zvariant::Signature::Unit => signature.is_empty(),
        zvariant::Signature::Structure(_) => tsig.to_string_no_parens() == signature,
        other => other.to_string() == signature,
    };
    if !matches {
        return Err(zvariant::Error::SignatureMismatch(
            tsig.clone(),
            format!("body signature `{signature}`"),
        ));
    }
    if signature.is_empty() {
        return Data::new(&[0u8][..], gvariant_context())
            .deserialize_for_signature(tsig)
            .map(|r| r.0);
    }
    let data = Data::new_borrowed_fds(
        bytes,
        gvariant_context(),
        fds.iter().map(std::os::fd::AsFd::as_fd),
    );
    data.deserialize_for_signature(tsig).map(|r| r.0)
}

/// Deserializes the body as dynamic values, one per argument (for code
/// that inspects arguments without knowing their types: match rules, bloom
/// filters).
pub fn body_args(signature: &str, bytes: &[u8]) -> Result<Vec<OwnedValue>, zvariant::Error> {
    if signature.is_empty() {
        return Ok(Vec::new());
    }
    let sig = format!("({signature})");
    let data = Data::new(bytes, gvariant_context());
    let (s, _): (zvariant::Structure<'_>, usize) =
        data.deserialize_for_dynamic_signature(sig.as_str())?;
    s.into_fields()
        .into_iter()
        .map(OwnedValue::try_from)
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
