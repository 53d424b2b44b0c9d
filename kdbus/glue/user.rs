// SPDX-License-Identifier: GPL-2.0

//! User memory checks the kernel crate's `UserSlice` does not offer.

use super::bindings;

/// Whether `[addr, addr + size)` is a valid user range (`access_ok`); says
/// nothing about whether it is mapped.
pub(crate) fn range_ok(addr: u64, size: u64) -> bool {
    // SAFETY: access_ok only compares the range with the address limit.
    unsafe { bindings::kdbus_access_ok(addr, size) }
}
