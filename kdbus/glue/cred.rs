// SPDX-License-Identifier: GPL-2.0

//! Credentials and user namespaces (`kernel::cred` in newer kernels).

use super::bindings;
use super::file::File;
use core::ptr::NonNull;
use kernel::prelude::*;
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
    /// A kuid from its global value.
    pub(crate) fn from_raw(v: u32) -> Self {
        Kuid(v)
    }

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

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
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

    /// Whether these are the calling task's credentials (by identity, no
    /// reference taken: a task's own `cred` only changes by its own hand).
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: no preconditions; only the pointer is compared.
        core::ptr::eq(unsafe { bindings::kdbus_current_cred() }, self.0.get())
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

    /// uid, euid, suid, fsuid.
    pub(crate) fn uids(&self) -> [Kuid; 4] {
        let r = self.raw();
        [r.uid, r.euid, r.suid, r.fsuid].map(|k| Kuid(k.val))
    }

    /// gid, egid, sgid, fsgid.
    pub(crate) fn gids(&self) -> [Kgid; 4] {
        let r = self.raw();
        [r.gid, r.egid, r.sgid, r.fsgid].map(|k| Kgid(k.val))
    }

    /// The inheritable, permitted, effective and bounding capability sets.
    pub(crate) fn cap_sets(&self) -> [u64; 4] {
        let r = self.raw();
        [
            r.cap_inheritable,
            r.cap_permitted,
            r.cap_effective,
            r.cap_bset,
        ]
        .map(|c| c.val)
    }

    /// The LSM security context of these credentials, if an LSM gives one.
    pub(crate) fn security_context(&self) -> crate::proto::errno::Result<Option<KVec<u8>>> {
        let mut secid = 0u32;
        let mut ctx = core::ptr::null_mut();
        let mut len = 0u32;
        // SAFETY: the cred is live; on success the context is ours until
        // security_release_secctx.
        let r = unsafe {
            bindings::security_cred_getsecid(self.0.get(), &mut secid);
            bindings::security_secid_to_secctx(secid, &mut ctx, &mut len)
        };
        if r != 0 || ctx.is_null() {
            return Ok(None);
        }
        // SAFETY: `ctx` holds `len` bytes (see above).
        let bytes = unsafe { core::slice::from_raw_parts(ctx.cast::<u8>(), len as usize) };
        let bytes = match bytes.iter().position(|&b| b == 0) {
            Some(n) => &bytes[..n],
            None => bytes,
        };
        let mut out = KVec::new();
        let copied = out.extend_from_slice(bytes, super::gfp());
        // SAFETY: given back once, as obtained.
        unsafe { bindings::security_release_secctx(ctx, len) };
        copied?;
        Ok((!out.is_empty()).then_some(out))
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

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::kdbus_put_user_ns(obj.cast().as_ptr()) };
    }
}

/// The highest capability number of the running kernel (`CAP_LAST_CAP`).
pub(crate) const CAP_LAST_CAP: u32 = bindings::CAP_LAST_CAP;

/// Namespaces are equal if they are the same object.
impl PartialEq for UserNamespace {
    fn eq(&self, other: &UserNamespace) -> bool {
        core::ptr::eq(self, other)
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

    /// `kuid` as seen in this namespace, the overflow uid if unmapped.
    pub(crate) fn map_uid_or_overflow(&self, kuid: Kuid) -> u32 {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::from_kuid_munged(self.0.get(), kuid.to_kuid_t()) }
    }

    /// `kgid` as seen in this namespace, the overflow gid if unmapped.
    pub(crate) fn map_gid_or_overflow(&self, kgid: Kgid) -> u32 {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::from_kgid_munged(self.0.get(), kgid.to_kgid_t()) }
    }

    /// The parent namespace; `None` for the initial one.
    pub(crate) fn parent(&self) -> Option<&UserNamespace> {
        // SAFETY: a namespace holds a reference to its parent.
        unsafe {
            let p = (*self.0.get()).parent;
            (!p.is_null()).then(|| UserNamespace::from_ptr(p))
        }
    }

    /// The euid that created this namespace.
    pub(crate) fn owner(&self) -> Kuid {
        // SAFETY: `self` is live (invariant); `owner` never changes.
        Kuid(unsafe { (*self.0.get()).owner.val })
    }

    /// Whether the opener of `file` had capability `cap` in this namespace.
    pub(crate) fn file_capable(&self, file: &File, cap: i32) -> bool {
        // SAFETY: both objects are live for the call.
        unsafe { bindings::file_ns_capable(file.as_ptr(), self.0.get(), cap) }
    }
}
