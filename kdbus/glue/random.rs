// SPDX-License-Identifier: GPL-2.0

//! Random bytes.

use super::bindings;

/// Fills `buf` from the kernel's random pool.
pub(crate) fn fill(buf: &mut [u8]) {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len() as _) };
}
