// SPDX-License-Identifier: GPL-2.0

//! Pids and pid namespaces (`kernel::pid` and `kernel::pid_namespace` in
//! newer kernels).

use super::bindings;
use core::ptr::NonNull;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// A `struct pid`: a task (or thread group) identity, numbered in every pid
/// namespace it is visible in. Held references keep it (not the task)
/// alive.
///
/// # Invariants
///
/// The wrapped pid is live: counted by `get_pid`/`put_pid`.
#[repr(transparent)]
pub(crate) struct Pid(Opaque<bindings::pid>);

// SAFETY: pids are refcounted atomically; their numbers never change.
unsafe impl Send for Pid {}
// SAFETY: as above.
unsafe impl Sync for Pid {}

// SAFETY: `get_pid`/`put_pid` keep the object alive while the count is
// non-zero.
unsafe impl AlwaysRefCounted for Pid {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_get_pid(self.0.get()) };
    }

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::put_pid(obj.cast().as_ptr()) };
    }
}

impl Pid {
    /// Takes ownership of a counted reference (`None` for null).
    ///
    /// # Safety
    ///
    /// `ptr` is null or a pid whose reference the caller gives up.
    pub(super) unsafe fn from_owned(ptr: *mut bindings::pid) -> Option<ARef<Pid>> {
        // SAFETY: the caller owns the reference.
        NonNull::new(ptr).map(|p| unsafe { ARef::from_raw(p.cast()) })
    }

    /// The pid numbered `nr` in the calling task's pid namespace, if one
    /// exists.
    pub(crate) fn find_in_current_ns(nr: i32) -> Option<ARef<Pid>> {
        // SAFETY: find_get_pid returns a new reference or null.
        unsafe { Self::from_owned(bindings::find_get_pid(nr)) }
    }

    /// The raw pointer (for identity comparisons in the glue).
    pub(super) fn as_ptr(&self) -> *mut bindings::pid {
        self.0.get()
    }

    /// The number of this pid in `ns`; 0 if it is not visible there.
    pub(crate) fn nr_in(&self, ns: &PidNamespace) -> u32 {
        // SAFETY: both objects are live for the call.
        let nr = unsafe { bindings::pid_nr_ns(self.0.get(), ns.0.get()) };
        u32::try_from(nr).unwrap_or(0)
    }
}

/// A pid namespace.
///
/// # Invariants
///
/// The wrapped namespace is live: counted by `get_pid_ns`/`put_pid_ns`.
#[repr(transparent)]
pub(crate) struct PidNamespace(Opaque<bindings::pid_namespace>);

// SAFETY: pid namespaces are refcounted atomically; only their identity is
// used.
unsafe impl Send for PidNamespace {}
// SAFETY: as above.
unsafe impl Sync for PidNamespace {}

// SAFETY: `get_pid_ns`/`put_pid_ns` keep the object alive.
unsafe impl AlwaysRefCounted for PidNamespace {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_get_pid_ns(self.0.get()) };
    }

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::put_pid_ns(obj.cast().as_ptr()) };
    }
}

/// Namespaces are equal if they are the same object.
impl PartialEq for PidNamespace {
    fn eq(&self, other: &PidNamespace) -> bool {
        core::ptr::eq(self, other)
    }
}

impl PidNamespace {
    /// The active pid namespace of the calling task (the one its pid was
    /// allocated in, which an `unshare` does not change).
    pub(crate) fn current() -> ARef<PidNamespace> {
        // SAFETY: `current` is live; its active pid namespace lives as long
        // as the task, and get_pid_ns takes a reference of our own.
        unsafe {
            let ns = bindings::task_active_pid_ns(bindings::kdbus_current());
            bindings::kdbus_get_pid_ns(ns);
            ARef::from_raw(NonNull::new_unchecked(ns.cast()))
        }
    }
}
