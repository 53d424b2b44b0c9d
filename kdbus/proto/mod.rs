// SPDX-License-Identifier: GPL-2.0

//! The pure protocol code: no kernel calls, only `core`, the bindgen-generated
//! ABI (`crate::uapi`) and these files. Compiled into the module and, through
//! one `#[path]` include of this file, into the userspace crate
//! `tools/testing/proto`, where it is unit- and property-tested.
//!
//! Every feature puts its pure half here: item framing and validation
//! ([`item`]), the command tables and parser ([`cmd`]), SEND's message rules
//! and layout ([`msg`]), metadata selection and encoding ([`metadata`]), name rules ([`names`]), bloom parameters ([`bloom`]),
//! the pool's slice allocator ([`slices`]), receive quotas ([`quota`]), the
//! limits ([`limits`]) and the errno type ([`errno`]).

#![allow(unreachable_pub)] // `pub` for the userspace test crate.
#![allow(dead_code)] // Shared API: parts serve commands still to come.

pub mod bloom;
pub mod cmd;
pub mod errno;
pub mod item;
pub mod limits;
pub mod matching;
pub mod metadata;
pub mod msg;
pub mod names;
pub mod policy;
pub mod quota;
pub mod registry;
pub mod slices;
