// SPDX-License-Identifier: GPL-2.0

//! Clocks.

use super::bindings;

/// `CLOCK_MONOTONIC` now, in ns.
pub(crate) fn monotonic_ns() -> u64 {
    kernel::time::Ktime::ktime_get().to_ns() as u64
}

/// `CLOCK_MONOTONIC` and `CLOCK_REALTIME` of one instant, in ns: one clock
/// read, the realtime one derived with the current offset.
pub(crate) fn monotonic_and_realtime_ns() -> (u64, u64) {
    // SAFETY: no preconditions.
    let mono = unsafe { bindings::ktime_get() };
    // SAFETY: no preconditions; reads the timekeeper's offsets only.
    let real = unsafe { bindings::ktime_mono_to_any(mono, bindings::tk_offsets_TK_OFFS_REAL) };
    (mono as u64, real as u64)
}

/// `ns` nanoseconds in jiffies, rounded up so a sleep never ends early.
pub(crate) fn ns_to_jiffies(ns: u64) -> u64 {
    // SAFETY: no preconditions.
    let j = unsafe { bindings::nsecs_to_jiffies(ns) } as u64;
    j.saturating_add(1)
}

/// The jiffies counter now.
pub(crate) fn jiffies() -> u64 {
    // SAFETY: `jiffies` is always valid; read once, as READ_ONCE would.
    unsafe { core::ptr::read_volatile(&raw const bindings::jiffies) as u64 }
}
