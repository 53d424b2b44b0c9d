//! The kdbus module's pure protocol logic, compiled for userspace.
//!
//! The files live in `kdbus/proto/` in the module's tree and are included
//! here unchanged (one `#[path]` include of its `mod.rs`), so the exact code the module runs is unit- and
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

/// The module's pure protocol code, `kdbus/proto/`, included once.
#[path = "../../../../kdbus/proto/mod.rs"]
pub mod proto;

pub use proto::*;
