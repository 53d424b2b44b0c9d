//! A D-Bus client library on kdbus, shaped like zbus.
//!
//! Messages are D-Bus messages in the GVariant "version 2" encoding that
//! sd-bus's kdbus transport used (dbus-on-kdbus.md 3), one per kdbus
//! message (section 4); bodies are serialized by [zvariant] (its GVariant
//! format), so arguments are any `serde::Serialize + zvariant::Type` and
//! replies come back as any `DeserializeOwned + Type`. Pass byte arrays
//! (`ay`) as `serde_bytes::Bytes` / `ByteBuf` (zvariant's `serde_bytes`
//! feature): a plain `Vec<u8>` goes through serde's sequence path one
//! byte at a time, ~1 ms to build and ~3 ms to read a 64 KiB argument
//! here against 0.04 ms and 0.003 ms (`examples/marshal-cost.rs`).
//!
//! * [`Connection`] (blocking) / [`ConnectionBuilder`]: open a bus by path,
//!   by convention ([`Connection::system`], [`Connection::user`]) or by
//!   address string (`kernel:path=...`, [`Address`]); HELLO with a 16 MiB
//!   pool, `ACCEPT_FD` and [`metadata::attach::DEFAULT_RECV`].
//! * Calls: [`Connection::call`] (synchronous, `KDBUS_SEND_SYNC_REPLY`
//!   with a timeout), [`Connection::call_async`] + [`Connection::wait_reply`],
//!   [`Connection::call_method`]; with the `tokio` feature
//!   `AsyncConnection::call`. Error replies and kernel errnos are
//!   [`Error`]s with D-Bus error names ([`error::names`]:
//!   `ServiceUnknown`, `NoReply`, `Timeout`, `AccessDenied`,
//!   `NameHasNoOwner`, ...).
//! * Signals: [`Connection::emit_signal`] (broadcast with the sd-bus bloom
//!   filter, or unicast); [`Connection::add_match`] takes D-Bus match-rule
//!   strings ([`MatchRule`]) and installs the kdbus matches sd-bus would
//!   (bloom masks, sender/destination items, the kernel's name and id
//!   notifications for `NameOwnerChanged` rules); [`Connection::receive`]
//!   returns what arrives (incoming calls, signals re-checked against the
//!   rules, synthesized `NameOwnerChanged` and `NoReply`).
//! * Names: [`Connection::request_name`] ([`RequestNameFlags`] ->
//!   [`RequestNameReply`]), [`Connection::release_name`],
//!   [`Connection::list_names`], [`Connection::get_name_owner`],
//!   [`Connection::name_has_owner`], [`Connection::list_queued_owners`],
//!   [`Connection::connection_credentials`].
//! * Every received [`Message`] carries its sender (`:1.<id>`) and the
//!   [`metadata::Metadata`] the kernel attached (creds, pids, names, comm,
//!   description, timestamp, ...); FDs travel as `zvariant::Fd` arguments,
//!   bodies over 512 KiB to a destination in sealed memfds.
//! * [`wire`]: the encoding itself (checked byte for byte against the
//!   worked examples of dbus-on-kdbus.md 9), [`kmsg`]: the kdbus side.
//!
//! Building and reading a message needs no bus:
//!
//! ```
//! use kdbus_client::{wire, Message};
//!
//! let call = Message::method_call("/org/example", "Ping")
//!     .destination("org.example.Echo")
//!     .interface("org.example.Echo")
//!     .cookie(1)
//!     .build(&("hi",))?;
//! let blob = call.encode()?;
//! // dbus-on-kdbus.md 9.1: 128 bytes, the body at 0x78, footer `00 (s) 77`.
//! assert_eq!(blob.bytes.len(), 128);
//! assert_eq!(blob.body_start, 0x78);
//! assert_eq!(&blob.bytes[0x78..], b"hi\0\0(s)\x77");
//! let back = wire::decode(&blob.bytes)?;
//! assert_eq!(back.header.member.as_deref(), Some("Ping"));
//! assert_eq!(back.header.signature, "s");
//! # Ok::<(), kdbus_client::Error>(())
//! ```
//!
//! A service and a client (see `examples/echo-service.rs` and
//! `examples/echo-client.rs`):
//!
//! ```no_run
//! use kdbus_client::{Connection, RequestNameFlags};
//!
//! # fn main() -> kdbus_client::Result<()> {
//! let service = Connection::system()?;
//! service.request_name("org.example.Echo", RequestNameFlags::DO_NOT_QUEUE)?;
//! while let Some(call) = service.receive(None)? {
//!     if call.member() == Some("Echo") {
//!         let s: String = call.body()?;
//!         service.reply(&call, &(s.as_str(),))?;
//!         service.emit_signal(None, "/org/example/Echo", "org.example.Echo", "Echoed", &(s.as_str(),))?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Match rules parse as D-Bus specifies and become kdbus matches:
//!
//! ```
//! use kdbus_client::MatchRule;
//! let r = MatchRule::parse("type='signal',sender=':1.5',member='Pinged',arg0='hi'")?;
//! let entries = r.to_kdbus(1, kdbus::BloomParams::DEFAULT);
//! assert_eq!(entries.len(), 1); // ID + BLOOM_MASK, no notifications needed
//! let noc = MatchRule::parse("type='signal',member='NameOwnerChanged'")?;
//! assert_eq!(noc.to_kdbus(2, kdbus::BloomParams::DEFAULT).len(), 6); // + NAME_*, ID_*
//! # Ok::<(), kdbus_client::Error>(())
//! ```

pub mod address;
pub mod connection;
pub mod error;
pub mod kmsg;
pub mod message;
pub mod metadata;
pub mod rule;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;

#[cfg(feature = "tokio")]
pub use crate::tokio::AsyncConnection;
pub use address::Address;
pub use connection::{
    Connection, ConnectionBuilder, MatchHandle, PendingCall, ReleaseNameReply, RequestNameFlags,
    RequestNameReply,
};
pub use error::{Error, Result};
pub use message::{Message, MessageBuilder, NameOwnerChanged};
pub use metadata::Metadata;
pub use rule::MatchRule;
pub use wire::MessageType;
