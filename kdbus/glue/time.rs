// SPDX-License-Identifier: GPL-2.0

//! Clocks.

use super::bindings;

/// `CLOCK_MONOTONIC` now, in ns.
pub(crate) fn monotonic_ns() -> u64 {
    kernel::time::Ktime::ktime_get().to_ns() as u64
}

/// `CLOCK_REALTIME` now, in ns.
pub(crate) fn realtime_ns() -> u64 {
    // SAFETY: no preconditions.
    unsafe { bindings::kdbus_ktime_get_real_ns() }
}

/// `ns` nanoseconds in jiffies, rounded up so a sleep never ends early.
pub(crate) fn ns_to_jiffies(ns: u64) -> u64 {
    // SAFETY: no preconditions.
    let j = unsafe { bindings::nsecs_to_jiffies(ns) } as u64;
    j.saturating_add(1)
}
