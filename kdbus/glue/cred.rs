// SPDX-License-Identifier: GPL-2.0

//! Credentials and user namespaces (`kernel::cred` in newer kernels).

use super::bindings;
use super::file::File;
use core::ptr::NonNull;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// A user id as the kernel holds it (a `kuid_t`: the id in the initial user
/// namespace). Compare these, never ids seen through a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(transparent)]
pub(crate) struct Kuid(u32);

/// A group id as the kernel holds it (`kgid_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(transparent)]
pub(crate) struct Kgid(u32);

impl Kuid {
    /// The global (initial-namespace) value.
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// The initial namespace's root.
    pub(crate) const ROOT: Kuid = Kuid(0);

    pub(super) fn to_kuid_t(self) -> bindings::kuid_t {
        bindings::kuid_t { val: self.0 }
    }
}

impl Kgid {
    /// A kgid from its global value.
    pub(crate) fn from_raw(v: u32) -> Self {
        Kgid(v)
    }

    /// The global (initial-namespace) value.
    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    /// The initial namespace's root group.
    pub(crate) const ROOT: Kgid = Kgid(0);

    pub(super) fn to_kgid_t(self) -> bindings::kgid_t {
        bindings::kgid_t { val: self.0 }
    }
}

/// A `struct cred`.
///
/// # Invariants
///
/// The wrapped cred is live: references are counted by `get_cred`/`put_cred`
/// (through [`ARef`]) or borrowed from an object that holds one.
#[repr(transparent)]
pub(crate) struct Credential(Opaque<bindings::cred>);

// SAFETY: credentials are immutable once published and refcounted atomically.
unsafe impl Send for Credential {}
// SAFETY: as above.
unsafe impl Sync for Credential {}

// SAFETY: `get_cred`/`put_cred` keep the object alive while the count is
// non-zero.
unsafe impl AlwaysRefCounted for Credential {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_get_cred(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::kdbus_put_cred(obj.cast().as_ptr()) };
    }
}

impl Credential {
    /// Borrows the cred at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a live cred for the whole lifetime `'a`.
    pub(super) unsafe fn from_ptr<'a>(ptr: *const bindings::cred) -> &'a Credential {
        // SAFETY: `Credential` is a transparent wrapper (contract: live).
        unsafe { &*ptr.cast() }
    }

    /// The user namespace of these credentials.
    pub(crate) fn user_ns(&self) -> &UserNamespace {
        // SAFETY: a cred's user namespace lives as long as the cred.
        unsafe { UserNamespace::from_ptr(self.raw().user_ns) }
    }

    /// The credentials of the calling task.
    pub(crate) fn current() -> ARef<Credential> {
        // SAFETY: get_current_cred returns a new reference to a live cred.
        let c = unsafe { bindings::kdbus_get_current_cred() };
        // SAFETY: `c` is non-null and we own the reference taken above.
        unsafe { ARef::from_raw(NonNull::new_unchecked(c.cast_mut().cast())) }
    }

    fn raw(&self) -> &bindings::cred {
        // SAFETY: live (invariant) and immutable.
        unsafe { &*self.0.get() }
    }

    /// Real uid.
    pub(crate) fn uid(&self) -> Kuid {
        Kuid(self.raw().uid.val)
    }

    /// Effective uid.
    pub(crate) fn euid(&self) -> Kuid {
        Kuid(self.raw().euid.val)
    }

    /// Effective gid.
    pub(crate) fn egid(&self) -> Kgid {
        Kgid(self.raw().egid.val)
    }

    /// The supplementary groups, in the kernel's (ascending) order.
    pub(crate) fn groups(&self) -> &[Kgid] {
        let gi = self.raw().group_info;
        if gi.is_null() {
            return &[];
        }
        // SAFETY: a cred's group_info is immutable and lives as long as the
        // cred; `gid` holds `ngroups` entries; `Kgid` is a transparent
        // wrapper of `kgid_t`'s value.
        unsafe {
            let n = usize::try_from((*gi).ngroups).unwrap_or(0);
            core::slice::from_raw_parts((*gi).gid.as_ptr().cast::<Kgid>(), n)
        }
    }

    /// Whether `gid` is the effective gid or a supplementary group.
    pub(crate) fn in_group(&self, gid: Kgid) -> bool {
        self.egid() == gid || self.groups().binary_search(&gid).is_ok()
    }
}

/// A user namespace.
///
/// # Invariants
///
/// The wrapped namespace is live (counted by `get_user_ns`/`put_user_ns`).
#[repr(transparent)]
pub(crate) struct UserNamespace(Opaque<bindings::user_namespace>);

// SAFETY: namespaces are refcounted atomically and their mappings immutable.
unsafe impl Send for UserNamespace {}
// SAFETY: as above.
unsafe impl Sync for UserNamespace {}

// SAFETY: `get_user_ns`/`put_user_ns` keep the object alive.
unsafe impl AlwaysRefCounted for UserNamespace {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_get_user_ns(self.0.get()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::kdbus_put_user_ns(obj.cast().as_ptr()) };
    }
}

/// `CAP_IPC_OWNER`.
pub(crate) const CAP_IPC_OWNER: i32 = bindings::CAP_IPC_OWNER as i32;

impl UserNamespace {
    /// Borrows the namespace at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` is a live user namespace for the lifetime `'a`.
    pub(super) unsafe fn from_ptr<'a>(ptr: *mut bindings::user_namespace) -> &'a UserNamespace {
        // SAFETY: transparent wrapper (contract: live).
        unsafe { &*ptr.cast() }
    }

    /// The kuid of `uid` of this namespace, `None` if it has no mapping.
    pub(crate) fn make_kuid(&self, uid: u32) -> Option<Kuid> {
        // SAFETY: `self` is live (invariant).
        let k = unsafe { bindings::make_kuid(self.0.get(), uid) };
        (k.val != u32::MAX).then_some(Kuid(k.val))
    }

    /// The kgid of `gid` of this namespace, `None` if it has no mapping.
    pub(crate) fn make_kgid(&self, gid: u32) -> Option<Kgid> {
        // SAFETY: `self` is live (invariant).
        let k = unsafe { bindings::make_kgid(self.0.get(), gid) };
        (k.val != u32::MAX).then_some(Kgid(k.val))
    }

    /// `kuid` as seen in this namespace, `None` if it has no mapping there.
    pub(crate) fn map_uid(&self, kuid: Kuid) -> Option<u32> {
        // SAFETY: `self` is live (invariant).
        let uid = unsafe { bindings::from_kuid(self.0.get(), kuid.to_kuid_t()) };
        if uid == u32::MAX {
            None
        } else {
            Some(uid)
        }
    }

    /// Whether the opener of `file` had capability `cap` in this namespace.
    pub(crate) fn file_capable(&self, file: &File, cap: i32) -> bool {
        // SAFETY: both objects are live for the call.
        unsafe { bindings::file_ns_capable(file.as_ptr(), self.0.get(), cap) }
    }
}
