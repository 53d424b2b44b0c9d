//! The kdbus module's pure protocol logic, compiled for userspace.
//!
//! The files live in `kdbus/` beside the module's kernel glue and are
//! included here unchanged, so the exact code the module runs is unit- and
//! property-tested on the host. They use no kernel API: only `core`, the
//! bindgen-generated ABI (`crate::uapi`) and `crate::errno`.
#![no_std]
// The shared files also build with the kernel's rustc 1.85, which lacks
// `is_multiple_of`.
#![allow(clippy::manual_is_multiple_of)]

/// The bindgen-generated ABI, as the pure modules expect it.
pub mod uapi {
    pub use kdbus_uapi::*;
}

#[path = "../../../../kdbus/bloom.rs"]
pub mod bloom;
#[path = "../../../../kdbus/cmd.rs"]
pub mod cmd;
#[path = "../../../../kdbus/errno.rs"]
pub mod errno;
#[path = "../../../../kdbus/item.rs"]
pub mod item;
#[path = "../../../../kdbus/limits.rs"]
pub mod limits;
#[path = "../../../../kdbus/msg.rs"]
pub mod msg;
#[path = "../../../../kdbus/names.rs"]
pub mod names;
#[path = "../../../../kdbus/quota.rs"]
pub mod quota;
#[path = "../../../../kdbus/slices.rs"]
pub mod slices;
