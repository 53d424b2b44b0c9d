//! D-Bus messages: building them (method calls, returns, errors, signals)
//! with zvariant-serialized bodies, and reading received ones (header,
//! typed body, FDs, sender and its metadata).

use std::os::fd::OwnedFd;

use serde::de::DeserializeOwned;
use serde::Serialize;
use zvariant::{DynamicType, Type};

use crate::error::names as err;
use crate::metadata::Metadata;
use crate::wire::{self, Body, Header, MessageType};
use crate::{Error, Result};

/// The bus driver's name, the sender of synthesized messages.
pub const DBUS_NAME: &str = "org.freedesktop.DBus";
/// The bus driver's object path.
pub const DBUS_PATH: &str = "/org/freedesktop/DBus";
/// The bus driver's interface.
pub const DBUS_INTERFACE: &str = "org.freedesktop.DBus";

fn dotted_name(s: &str, allow_dash: bool) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let elems: Vec<&str> = s.split('.').collect();
    elems.len() >= 2
        && elems.iter().all(|e| {
            let mut c = e.bytes();
            matches!(c.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || (allow_dash && b == b'-'))
                && c.all(|b| b.is_ascii_alphanumeric() || b == b'_' || (allow_dash && b == b'-'))
        })
}

/// Whether `s` is a valid interface (or error) name.
pub fn is_interface_name(s: &str) -> bool {
    dotted_name(s, false)
}

/// Whether `s` is a valid member name.
pub fn is_member_name(s: &str) -> bool {
    let mut c = s.bytes();
    s.len() <= 255
        && matches!(c.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && c.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `s` is a unique name as kdbus gives them (`:1.<id>`) and its id.
pub fn parse_unique_name(s: &str) -> Option<u64> {
    let n = s.strip_prefix(":1.")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok()
}

/// Whether `s` is a valid bus name: a kdbus unique name or a well-known
/// name (names.md 2).
pub fn is_bus_name(s: &str) -> bool {
    parse_unique_name(s).is_some() || kdbus::valid_name(s, false)
}

/// Whether `s` is a valid object path.
pub fn is_object_path(s: &str) -> bool {
    zvariant::ObjectPath::try_from(s).is_ok()
}

/// The unique name of connection `id`: `:1.<id>`.
pub fn unique_name(id: u64) -> String {
    format!(":1.{id}")
}

/// A D-Bus message: header, serialized body, file descriptors, and for
/// received messages the sender and its metadata.
#[derive(Debug)]
pub struct Message {
    pub(crate) header: Header,
    pub(crate) body: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) sender: Option<String>,
    pub(crate) metadata: Metadata,
    pub(crate) priority: i64,
    pub(crate) broadcast: bool,
}

/// Builder of a [`Message`]; finish with [`MessageBuilder::build`] (a
/// body) or [`MessageBuilder::build_empty`].
#[derive(Debug)]
pub struct MessageBuilder {
    header: Header,
    priority: i64,
    error: Option<Error>,
}

impl MessageBuilder {
    fn new(msg_type: MessageType) -> Self {
        MessageBuilder {
            header: Header::new(msg_type),
            priority: 0,
            error: None,
        }
    }

    fn check(mut self, ok: bool, what: impl FnOnce() -> String) -> Self {
        if !ok && self.error.is_none() {
            self.error = Some(Error::InvalidName(what()));
        }
        self
    }

    fn path(self, path: &str) -> Self {
        let mut s = self.check(is_object_path(path), || {
            format!("invalid object path {path:?}")
        });
        s.header.path = Some(path.into());
        s
    }

    /// Sets DESTINATION: a unique (`:1.<id>`) or well-known name (signals
    /// without one are broadcasts).
    pub fn destination(self, name: &str) -> Self {
        let mut s = self.check(is_bus_name(name), || format!("invalid bus name {name:?}"));
        s.header.destination = Some(name.into());
        s
    }

    /// Sets INTERFACE.
    pub fn interface(self, interface: &str) -> Self {
        let mut s = self.check(is_interface_name(interface), || {
            format!("invalid interface name {interface:?}")
        });
        s.header.interface = Some(interface.into());
        s
    }

    fn member(self, member: &str) -> Self {
        let mut s = self.check(is_member_name(member), || {
            format!("invalid member name {member:?}")
        });
        s.header.member = Some(member.into());
        s
    }

    /// Sets the NO_REPLY_EXPECTED flag (for calls: no reply is wanted).
    pub fn no_reply_expected(mut self) -> Self {
        self.header.flags |= wire::FLAG_NO_REPLY_EXPECTED;
        self
    }

    /// Sets the NO_AUTO_START flag (kdbus: `KDBUS_MSG_NO_AUTO_START`).
    pub fn no_auto_start(mut self) -> Self {
        self.header.flags |= wire::FLAG_NO_AUTO_START;
        self
    }

    /// Sets the ALLOW_INTERACTIVE_AUTHORIZATION flag.
    pub fn allow_interactive_authorization(mut self) -> Self {
        self.header.flags |= wire::FLAG_ALLOW_INTERACTIVE_AUTHORIZATION;
        self
    }

    /// Sets the kdbus message priority (not part of the D-Bus header).
    pub fn priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// Sets an explicit cookie (normally the connection assigns one at
    /// send time).
    pub fn cookie(mut self, cookie: u64) -> Self {
        self.header.cookie = cookie;
        self
    }

    /// Finishes the message with `body` serialized by zvariant: a tuple or
    /// struct gives the arguments, any other value is the only argument.
    pub fn build<B>(self, body: &B) -> Result<Message>
    where
        B: Serialize + DynamicType + ?Sized,
    {
        let body = Body::new(body)?;
        self.finish(body)
    }

    /// Finishes the message with no arguments.
    pub fn build_empty(self) -> Result<Message> {
        self.finish(Body::empty())
    }

    fn finish(mut self, body: Body) -> Result<Message> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.header.signature = body.signature;
        if !body.fds.is_empty() {
            self.header.unix_fds = Some(body.fds.len() as u32);
        }
        let broadcast = self.header.destination.is_none();
        Ok(Message {
            header: self.header,
            body: body.bytes,
            fds: body.fds,
            sender: None,
            metadata: Metadata::default(),
            priority: self.priority,
            broadcast,
        })
    }
}

/// The arguments of a `NameOwnerChanged` signal (synthesized from kernel
/// notifications, dbus-on-kdbus.md 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameOwnerChanged {
    /// The name (a well-known name, or a unique name for connections
    /// appearing and disappearing).
    pub name: String,
    /// The previous owner, `None` if the name had none.
    pub old_owner: Option<String>,
    /// The new owner, `None` if the name has none now.
    pub new_owner: Option<String>,
}

impl Message {
    /// A method call to `member` on the object `path`.
    ///
    /// ```
    /// use kdbus_client::Message;
    /// let m = Message::method_call("/org/example/Echo", "Echo")
    ///     .destination("org.example.Echo")
    ///     .interface("org.example.Echo")
    ///     .build(&("hello",))
    ///     .unwrap();
    /// assert_eq!(m.signature(), "s");
    /// assert_eq!(m.body::<String>().unwrap(), "hello");
    /// assert!(Message::method_call("no/slash", "M").build_empty().is_err());
    /// ```
    pub fn method_call(path: &str, member: &str) -> MessageBuilder {
        MessageBuilder::new(MessageType::MethodCall)
            .path(path)
            .member(member)
    }

    /// A signal `interface.member` from the object `path`; without a
    /// [`MessageBuilder::destination`] it is broadcast.
    pub fn signal(path: &str, interface: &str, member: &str) -> MessageBuilder {
        let mut b = MessageBuilder::new(MessageType::Signal)
            .path(path)
            .interface(interface)
            .member(member);
        b.header.flags |= wire::FLAG_NO_REPLY_EXPECTED;
        b
    }

    /// A method return answering `call` (REPLY_SERIAL = its cookie,
    /// DESTINATION = its sender).
    pub fn method_return(call: &Message) -> MessageBuilder {
        Self::reply_to(call, MessageType::MethodReturn)
    }

    /// An error reply `name` answering `call`; give the message text as the
    /// body (`build(&("text",))`) or use [`Message::error_reply`].
    pub fn error(call: &Message, name: &str) -> MessageBuilder {
        let mut b = Self::reply_to(call, MessageType::Error).check(is_interface_name(name), || {
            format!("invalid error name {name:?}")
        });
        b.header.error_name = Some(name.into());
        b
    }

    /// An error reply `name` with the text `message`.
    pub fn error_reply(call: &Message, name: &str, message: &str) -> Result<Message> {
        Self::error(call, name).build(&(message,))
    }

    fn reply_to(call: &Message, t: MessageType) -> MessageBuilder {
        let mut b = MessageBuilder::new(t);
        b.header.flags = wire::FLAG_NO_REPLY_EXPECTED;
        b.header.reply_serial = Some(call.header.cookie);
        b.header.destination = call.sender.clone();
        b
    }

    /// The decoded D-Bus header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.header.msg_type
    }

    /// The cookie (serial); 0 before the message is sent.
    pub fn cookie(&self) -> u64 {
        self.header.cookie
    }

    /// The header flags (`wire::FLAG_*`).
    pub fn flags(&self) -> u8 {
        self.header.flags
    }

    /// PATH.
    pub fn path(&self) -> Option<&str> {
        self.header.path.as_deref()
    }

    /// INTERFACE.
    pub fn interface(&self) -> Option<&str> {
        self.header.interface.as_deref()
    }

    /// MEMBER.
    pub fn member(&self) -> Option<&str> {
        self.header.member.as_deref()
    }

    /// ERROR_NAME.
    pub fn error_name(&self) -> Option<&str> {
        self.header.error_name.as_deref()
    }

    /// REPLY_SERIAL.
    pub fn reply_serial(&self) -> Option<u64> {
        self.header.reply_serial
    }

    /// The destination: for received messages what the kernel says (the
    /// `DST_NAME` item, else our unique name; `None` for broadcasts), for
    /// built ones the DESTINATION field.
    pub fn destination(&self) -> Option<&str> {
        self.header.destination.as_deref()
    }

    /// The sender of a received message: `:1.<src_id>`, or
    /// `org.freedesktop.DBus` for kernel notifications and synthesized
    /// errors. `None` for messages built locally.
    pub fn sender(&self) -> Option<&str> {
        self.sender.as_deref()
    }

    /// The sender's metadata as the kernel attached it.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The kdbus priority.
    pub fn priority(&self) -> i64 {
        self.priority
    }

    /// Whether the message was (or will be) broadcast.
    pub fn is_broadcast(&self) -> bool {
        self.broadcast
    }

    /// Whether the sender expects a reply (a call without
    /// NO_REPLY_EXPECTED).
    pub fn expects_reply(&self) -> bool {
        self.header.msg_type == MessageType::MethodCall
            && self.header.flags & wire::FLAG_NO_REPLY_EXPECTED == 0
    }

    /// The body signature ("" for no arguments).
    pub fn signature(&self) -> &str {
        &self.header.signature
    }

    /// The serialized body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body deserialized into `T` (whose signature must be the body's:
    /// a tuple or struct for several arguments, a plain type for one).
    pub fn body<T>(&self) -> Result<T>
    where
        T: DeserializeOwned + Type,
    {
        Ok(wire::deserialize_body(
            &self.header.signature,
            &self.body,
            &self.fds,
        )?)
    }

    /// The arguments as dynamic values (one per argument).
    pub fn args(&self) -> Result<Vec<zvariant::OwnedValue>> {
        Ok(wire::body_args(&self.header.signature, &self.body)?)
    }

    /// The file descriptors that came with the message (index = value of
    /// `h` arguments).
    pub fn fds(&self) -> &[OwnedFd] {
        &self.fds
    }

    /// Takes the file descriptors out of the message.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }

    /// For an error reply: the error (name and first string argument).
    pub fn to_error(&self) -> Option<Error> {
        if self.header.msg_type != MessageType::Error {
            return None;
        }
        let message = if self.header.signature.starts_with('s') {
            self.args()
                .ok()
                .and_then(|a| a.into_iter().next())
                .and_then(|v| String::try_from(v).ok())
        } else {
            None
        };
        Some(Error::MethodError {
            name: self
                .header
                .error_name
                .clone()
                .unwrap_or_else(|| err::FAILED.into()),
            message,
            errno: None,
        })
    }

    /// Whether this is the signal `interface.member`.
    pub fn is_signal(&self, interface: &str, member: &str) -> bool {
        self.header.msg_type == MessageType::Signal
            && self.interface() == Some(interface)
            && self.member() == Some(member)
    }

    /// If this is the driver's `NameOwnerChanged`, its arguments ("" owners
    /// as `None`).
    pub fn name_owner_changed(&self) -> Option<NameOwnerChanged> {
        if !self.is_signal(DBUS_INTERFACE, "NameOwnerChanged")
            || self.sender() != Some(DBUS_NAME)
            || self.signature() != "sss"
        {
            return None;
        }
        let (name, old, new): (String, String, String) = self.body().ok()?;
        let opt = |s: String| if s.is_empty() { None } else { Some(s) };
        Some(NameOwnerChanged {
            name,
            old_owner: opt(old),
            new_owner: opt(new),
        })
    }

    /// Encodes the message with `cookie` (the GVariant blob).
    pub fn encode(&self) -> Result<wire::Encoded> {
        Ok(wire::encode(&self.header, &self.body)?)
    }

    pub(crate) fn synthesized(header: Header, body: Body) -> Self {
        Message {
            header,
            body: body.bytes,
            fds: body.fds,
            sender: Some(DBUS_NAME.into()),
            metadata: Metadata::default(),
            priority: 0,
            broadcast: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_interface_name("org.example.Echo"));
        assert!(!is_interface_name("org"));
        assert!(!is_interface_name("org.1x"));
        assert!(!is_interface_name("org.ex-ample"));
        assert!(is_bus_name("org.ex-ample"));
        assert!(is_member_name("Echo_2"));
        assert!(!is_member_name("2Echo"));
        assert!(!is_member_name("a.b"));
        assert_eq!(parse_unique_name(":1.42"), Some(42));
        assert_eq!(parse_unique_name(":1.042"), None);
        assert_eq!(parse_unique_name(":2.4"), None);
        assert_eq!(parse_unique_name(":1."), None);
        assert!(is_bus_name(":1.7"));
        assert!(!is_bus_name(":x"));
    }

    #[test]
    fn builders() {
        let mut call = Message::method_call("/org/example", "Ping")
            .destination("org.example.Echo")
            .interface("org.example.Echo")
            .build(&"hi")
            .unwrap();
        call.header.cookie = 1;
        call.sender = Some(":1.5".into());
        assert!(call.expects_reply());
        let r = Message::method_return(&call).build(&"hi").unwrap();
        assert_eq!(r.reply_serial(), Some(1));
        assert_eq!(r.destination(), Some(":1.5"));
        assert_eq!(r.flags(), wire::FLAG_NO_REPLY_EXPECTED);
        let e = Message::error_reply(&call, err::ACCESS_DENIED, "no").unwrap();
        assert_eq!(e.error_name(), Some(err::ACCESS_DENIED));
        let er = e.to_error().unwrap();
        assert_eq!(er.name(), err::ACCESS_DENIED);
        assert_eq!(er.message().as_deref(), Some("no"));
        assert!(Message::error(&call, "bad").build_empty().is_err());
        let s = Message::signal("/a", "a.b", "C")
            .build(&(1u32, "x"))
            .unwrap();
        assert_eq!(s.signature(), "us");
        assert!(s.is_broadcast());
        assert_eq!(s.flags(), 1);
        let a = s.args().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(u32::try_from(&a[0]).unwrap(), 1);
        assert!(Message::signal("/a", "nodots", "C").build_empty().is_err());
        assert!(Message::method_call("/a", "M")
            .destination("bad name")
            .build_empty()
            .is_err());
    }
}
