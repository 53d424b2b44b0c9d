//! One D-Bus message = one kdbus message (dbus-on-kdbus.md 4 and 5):
//! building the `kdbus_msg` with its items, and reconstructing a D-Bus
//! message (or a synthesized one, for kernel notifications) from a
//! delivered `kdbus_msg`.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::time::Duration;

use kdbus::consts::*;
use kdbus::{ArgWalk, BloomArg, BloomParams, MsgBuilder, Notification, Payload, SignalFilter};

use crate::error::names as err;
use crate::message::{
    parse_unique_name, unique_name, Message, DBUS_INTERFACE, DBUS_NAME, DBUS_PATH,
};
use crate::metadata::Metadata;
use crate::wire::{self, Body, Header, MessageType};
use crate::{Error, Result};

/// Body parts larger than this travel in a sealed memfd when the message
/// has a destination (`MEMFD_MIN_SIZE`, 512 KiB; dbus-on-kdbus.md 4.3).
pub const MEMFD_MIN_SIZE: usize = 512 * 1024;
/// The default call timeout (`BUS_DEFAULT_TIMEOUT`, 25 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);

/// A `kdbus_msg` ready for SEND, with the memfd it may reference.
pub(crate) struct Outgoing {
    pub builder: MsgBuilder,
    pub is_call: bool,
    // Kept open until the SEND is done.
    _memfd: Option<OwnedFd>,
}

/// The bloom arguments of a body: the leading string-like arguments.
fn bloom_args(msg: &Message) -> Vec<BloomArg> {
    let sig = msg.signature();
    let leading = sig.starts_with(['s', 'o', 'g'])
        || sig.starts_with("as")
        || sig.starts_with("ao")
        || sig.starts_with("ag");
    if !leading {
        return Vec::new();
    }
    let Ok(args) = msg.args() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in args {
        let s = |v: &zvariant::Value<'_>| -> Option<String> {
            match v {
                zvariant::Value::Str(s) => Some(s.as_str().into()),
                zvariant::Value::ObjectPath(p) => Some(p.as_str().into()),
                zvariant::Value::Signature(g) => Some(g.to_string()),
                _ => None,
            }
        };
        match &*a {
            zvariant::Value::Array(arr) => {
                let v: Option<Vec<String>> = arr.iter().map(s).collect();
                match v {
                    Some(v) => out.push(BloomArg::StrArray(v)),
                    None => break,
                }
            }
            other => match s(other) {
                Some(v) => out.push(BloomArg::Str(v)),
                None => break,
            },
        }
    }
    out.push(BloomArg::Other);
    out
}

/// The bloom filter of a signal (bloom-interop.md "What a sender adds";
/// `walk` chooses the recommended or the sd-bus argument walk).
pub fn signal_filter(msg: &Message, params: BloomParams, walk: ArgWalk) -> kdbus::BloomFilter {
    let mut f = SignalFilter::new()
        .message_type(msg.message_type().bloom_type())
        .walk(walk);
    if let Some(i) = msg.interface() {
        f = f.interface(i);
    }
    if let Some(m) = msg.member() {
        f = f.member(m);
    }
    if let Some(p) = msg.path() {
        f = f.path(p);
    }
    for a in bloom_args(msg) {
        f = f.arg(a);
    }
    f.filter(params, 0)
}

fn sealed_memfd(data: &[u8]) -> Result<OwnedFd> {
    // SAFETY: a valid NUL-terminated name and flags.
    let fd = unsafe {
        libc::memfd_create(
            c"kdbus-client".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(Error::from(kdbus::Errno::last()));
    }
    // SAFETY: memfd_create returned a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut f = std::fs::File::from(fd);
    f.write_all(data).map_err(|e| {
        Error::from(kdbus::Errno::from_raw(
            e.raw_os_error().unwrap_or(libc::EIO),
        ))
    })?;
    // SAFETY: fcntl on our own descriptor.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, MEMFD_SEALS) };
    if r < 0 {
        return Err(Error::from(kdbus::Errno::last()));
    }
    Ok(OwnedFd::from(f))
}

/// Builds the `kdbus_msg` for `msg` sent with `cookie` (dbus-on-kdbus.md
/// 4.1-4.3): `dst_id`/`DST_NAME` from DESTINATION, the flags, the
/// deadline of a call (`timeout` from now on `CLOCK_MONOTONIC`) or the
/// reply cookie, then the items `DST_NAME`, the header vector `[0, B)`,
/// the body (a sealed memfd if it is larger than 512 KiB and the message
/// has a destination) with the footer in the last vector, the bloom
/// filter of a signal, the FDs.
pub(crate) fn outgoing(
    msg: &Message,
    cookie: u64,
    timeout: Duration,
    bloom: BloomParams,
    walk: ArgWalk,
) -> Result<Outgoing> {
    let mut h = msg.header.clone();
    h.cookie = cookie;
    h.sender = None;
    h.unix_fds = if msg.fds.is_empty() {
        None
    } else {
        Some(msg.fds.len() as u32)
    };
    let enc = wire::encode(&h, &msg.body)?;
    let dest = h.destination.as_deref();
    let (dst_id, dst_name) = match dest {
        None => (kdbus::DST_ID_BROADCAST, None),
        Some(d) => match parse_unique_name(d) {
            Some(id) => (id, None),
            None => (0, Some(d)),
        },
    };
    let mut flags = 0;
    let is_call = msg.expects_reply();
    if is_call {
        flags |= MSG_EXPECT_REPLY;
    }
    if h.flags & wire::FLAG_NO_AUTO_START != 0 {
        flags |= MSG_NO_AUTO_START;
    }
    if h.msg_type == MessageType::Signal {
        flags |= MSG_SIGNAL;
    }
    let mut b = MsgBuilder::new(dst_id)
        .flags(flags)
        .priority(msg.priority)
        .cookie(cookie);
    if is_call {
        let deadline = kdbus::monotonic_ns().saturating_add(timeout.as_nanos() as u64);
        b = b.timeout_ns(deadline);
    } else if let Some(r) = h.reply_serial {
        b = b.cookie_reply(r);
    }
    if let Some(n) = dst_name {
        b = b.dst_name(n);
    }
    b = b.vec(enc.head());
    let mut memfd = None;
    if dest.is_some() && enc.body().len() > MEMFD_MIN_SIZE {
        let fd = sealed_memfd(enc.body())?;
        b = b
            .memfd(fd.as_raw_fd(), 0, enc.body().len() as u64)
            .vec(enc.footer());
        memfd = Some(fd);
    } else {
        b = b.vec(&enc.bytes[enc.body_start..]);
    }
    if h.msg_type == MessageType::Signal {
        b = b.bloom(&signal_filter(msg, bloom, walk));
    }
    if !msg.fds.is_empty() {
        let raw: Vec<RawFd> = msg.fds.iter().map(|f| f.as_raw_fd()).collect();
        b = b.fds(&raw);
    }
    Ok(Outgoing {
        builder: b,
        is_call,
        _memfd: memfd,
    })
}

fn owned_fd(fd: i32) -> Option<OwnedFd> {
    // SAFETY: descriptors in a received FDS / PAYLOAD_MEMFD item were
    // installed into this process by RECV and belong to the receiver.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A delivered message converted: the D-Bus message, `Ok(None)` for one
/// that is ignored (an unknown payload type, a notification that maps to
/// nothing), `Err` for an invalid one (dropped by the caller). `own_id` is
/// the receiver's id (the destination of messages sent to `dst_id` 0).
///
/// Public for receivers that RECV on their own, e.g. a monitor connection
/// (`kdbusctl monitor`); the descriptors of the message are owned by the
/// result (closed when it is dropped).
pub fn incoming(km: &kdbus::Message<'_>, own_id: u64) -> Result<Option<Message>> {
    // Own every descriptor first, so that they are closed whatever happens.
    let fds: Vec<OwnedFd> = km
        .fds()
        .unwrap_or_default()
        .into_iter()
        .filter_map(owned_fd)
        .collect();
    let memfds: Vec<(kdbus::MemfdItem, Option<OwnedFd>)> = km
        .memfds()
        .into_iter()
        .map(|m| (m, owned_fd(m.fd)))
        .collect();
    match km.payload_type {
        PAYLOAD_KERNEL => translate(km, own_id),
        PAYLOAD_DBUS => parse_dbus(km, own_id, fds, memfds).map(Some),
        _ => Ok(None),
    }
}

fn proto(m: impl Into<String>) -> Error {
    Error::Wire(wire::WireError(m.into()))
}

fn parse_dbus(
    km: &kdbus::Message<'_>,
    own_id: u64,
    fds: Vec<OwnedFd>,
    memfds: Vec<(kdbus::MemfdItem, Option<OwnedFd>)>,
) -> Result<Message> {
    let payloads = km.payloads().map_err(|e| proto(e.0))?;
    let mut offs = payloads.into_iter();
    let mut memfds = memfds.into_iter();
    let mut bytes = Vec::new();
    let mut first_is_vec = None;
    let mut last_is_vec = false;
    for it in &km.items {
        match it.ty {
            ITEM_PAYLOAD_OFF => {
                match offs.next() {
                    Some(Payload::Data(d)) => bytes.extend_from_slice(d),
                    Some(Payload::Null(n)) => bytes.resize(bytes.len() + n as usize, 0),
                    None => return Err(proto("PAYLOAD_OFF count mismatch")),
                }
                first_is_vec.get_or_insert(true);
                last_is_vec = true;
            }
            ITEM_PAYLOAD_MEMFD => {
                let Some((m, fd)) = memfds.next() else {
                    return Err(proto("PAYLOAD_MEMFD count mismatch"));
                };
                let Some(fd) = fd else {
                    return Err(proto("memfd not received"));
                };
                let at = bytes.len();
                bytes.resize(at + m.size as usize, 0);
                std::fs::File::from(fd)
                    .read_exact_at(&mut bytes[at..], m.start)
                    .map_err(|e| proto(format!("reading memfd: {e}")))?;
                first_is_vec.get_or_insert(false);
                last_is_vec = false;
            }
            _ => {}
        }
    }
    if first_is_vec != Some(true) || !last_is_vec {
        return Err(proto("first and last payload parts must be vectors"));
    }
    let d = wire::decode(&bytes)?;
    let mut h = d.header;
    // Consistency with the kdbus header (dbus-on-kdbus.md 5.1).
    let no_reply = h.flags & wire::FLAG_NO_REPLY_EXPECTED != 0;
    if h.cookie != km.cookie {
        return Err(proto("header cookie differs from kdbus_msg.cookie"));
    }
    if (km.flags & MSG_EXPECT_REPLY != 0) == no_reply {
        return Err(proto("EXPECT_REPLY and NO_REPLY_EXPECTED disagree"));
    }
    if no_reply && h.reply_serial.unwrap_or(0) != km.cookie_reply() {
        return Err(proto("REPLY_SERIAL differs from cookie_reply"));
    }
    if (km.flags & MSG_NO_AUTO_START != 0) != (h.flags & wire::FLAG_NO_AUTO_START != 0) {
        return Err(proto("NO_AUTO_START disagrees"));
    }
    if h.unix_fds.unwrap_or(0) as usize != fds.len() {
        return Err(proto(format!(
            "UNIX_FDS {} but {} descriptors received",
            h.unix_fds.unwrap_or(0),
            fds.len()
        )));
    }
    let sender = if km.src_id == 0 {
        DBUS_NAME.to_string()
    } else {
        unique_name(km.src_id)
    };
    h.sender = None;
    h.destination = match km.item(ITEM_DST_NAME).and_then(|i| i.as_str()) {
        Some(n) => Some(n.to_string()),
        None if km.dst_id == kdbus::DST_ID_BROADCAST => None,
        None if km.dst_id == 0 => Some(unique_name(own_id)),
        None => Some(unique_name(km.dst_id)),
    };
    bytes.truncate(d.body.end);
    bytes.drain(..d.body.start);
    Ok(Message {
        header: h,
        body: bytes,
        fds,
        sender: Some(sender),
        metadata: Metadata::from_items(km.items.iter().map(|i| (i.ty, i.payload))),
        priority: km.priority,
        broadcast: km.dst_id == kdbus::DST_ID_BROADCAST,
    })
}

fn name_owner_changed(name: &str, old: &str, new: &str) -> Result<Message> {
    let mut h = Header::new(MessageType::Signal);
    h.flags = wire::FLAG_NO_REPLY_EXPECTED;
    h.cookie = wire::SYNTHETIC_COOKIE;
    h.path = Some(DBUS_PATH.into());
    h.interface = Some(DBUS_INTERFACE.into());
    h.member = Some("NameOwnerChanged".into());
    let body = Body::new(&(name, old, new))?;
    h.signature = body.signature.clone();
    let mut m = Message::synthesized(h, body);
    m.broadcast = true;
    Ok(m)
}

/// The synthesized error of a REPLY_TIMEOUT / REPLY_DEAD notification, or
/// of a local timeout: `org.freedesktop.DBus.Error.NoReply`.
pub(crate) fn no_reply(reply_serial: u64, own_id: u64, text: &str) -> Result<Message> {
    let mut h = Header::new(MessageType::Error);
    h.flags = wire::FLAG_NO_REPLY_EXPECTED;
    h.cookie = wire::SYNTHETIC_COOKIE;
    h.reply_serial = Some(reply_serial);
    h.destination = Some(unique_name(own_id));
    h.error_name = Some(err::NO_REPLY.into());
    let body = Body::new(&(text,))?;
    h.signature = body.signature.clone();
    Ok(Message::synthesized(h, body))
}

/// Kernel notifications -> D-Bus messages (dbus-on-kdbus.md 5.2).
fn translate(km: &kdbus::Message<'_>, own_id: u64) -> Result<Option<Message>> {
    let n: Vec<_> = km
        .items
        .iter()
        .filter(|i| kdbus::is_notification_item(i.ty))
        .collect();
    if n.len() > 1 {
        return Err(proto("more than one notification item"));
    }
    let Some(item) = n.first() else {
        return Ok(None);
    };
    let Some(note) = Notification::from_item(item).map_err(|e| proto(e.0))? else {
        return Ok(None);
    };
    let hidden = |f: u64| f & (NAME_IN_QUEUE | NAME_ACTIVATOR) != 0;
    let owner = |id: &kdbus::NotifyId| {
        if hidden(id.flags) || id.id == 0 {
            String::new()
        } else {
            unique_name(id.id)
        }
    };
    let m = match note {
        Notification::NameAdd(c) => {
            if hidden(c.new_id.flags) {
                return Ok(None);
            }
            name_owner_changed(&c.name, "", &unique_name(c.new_id.id))?
        }
        Notification::NameRemove(c) => {
            if hidden(c.old_id.flags) {
                return Ok(None);
            }
            name_owner_changed(&c.name, &unique_name(c.old_id.id), "")?
        }
        Notification::NameChange(c) => {
            let (old, new) = (owner(&c.old_id), owner(&c.new_id));
            if old.is_empty() && new.is_empty() {
                return Ok(None);
            }
            name_owner_changed(&c.name, &old, &new)?
        }
        Notification::IdAdd(id) => {
            let u = unique_name(id.id);
            name_owner_changed(&u, "", &u)?
        }
        Notification::IdRemove(id) => {
            let u = unique_name(id.id);
            name_owner_changed(&u, &u, "")?
        }
        Notification::ReplyTimeout => no_reply(km.cookie_reply(), own_id, "Method call timed out")?,
        Notification::ReplyDead => no_reply(km.cookie_reply(), own_id, "Method call peer died")?,
    };
    Ok(Some(m))
}

#[cfg(test)]
mod tests;
