// SPDX-License-Identifier: GPL-2.0

//! Raw bindings: the kernel crate's, plus what bindgen generated at build time
//! for the kernel APIs it lacks (fs_context, namei, shmem) and for the module's
//! one-line C helpers (helpers.c).

#![allow(
    dead_code,
    unsafe_op_in_unsafe_fn,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

pub(crate) use kernel::bindings::*;

include!("bindings_generated.rs");
