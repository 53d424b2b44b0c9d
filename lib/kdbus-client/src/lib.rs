//! kdbus-client (work in progress)
pub mod address;
pub mod connection;
pub mod error;
pub mod kmsg;
pub mod message;
pub mod metadata;
pub mod rule;
pub mod wire;
pub use address::Address;
pub use connection::{Connection, ConnectionBuilder, MatchHandle, PendingCall, ReleaseNameReply, RequestNameFlags, RequestNameReply};
pub use error::{Error, Result};
pub use message::{Message, MessageBuilder};
pub use rule::MatchRule;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tokio")]
pub use crate::tokio::AsyncConnection;
