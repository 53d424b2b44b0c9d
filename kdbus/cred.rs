// SPDX-License-Identifier: GPL-2.0

//! Credentials: the identity of a caller or of a file's opener, and its
//! translation into a domain's user namespace.

use crate::bindings;

/// The ids of a `struct cred` that kdbus decisions use (global kuids).
#[derive(Clone, Copy)]
pub(crate) struct Creds {
    /// Real uid.
    pub(crate) uid: bindings::kuid_t,
    /// Effective uid.
    pub(crate) euid: bindings::kuid_t,
    /// Effective gid.
    pub(crate) egid: bindings::kgid_t,
}

impl Creds {
    /// # Safety
    ///
    /// `cred` points to a live `struct cred`.
    unsafe fn from_raw(cred: *const bindings::cred) -> Self {
        // SAFETY: per the function's contract.
        let c = unsafe { &*cred };
        Creds {
            uid: c.uid,
            euid: c.euid,
            egid: c.egid,
        }
    }

    /// The credentials of the calling task.
    pub(crate) fn current() -> Self {
        // SAFETY: the current task's credentials are live while it runs.
        unsafe { Self::from_raw(bindings::kdbus_current_cred()) }
    }

    /// The credentials the file was opened with.
    ///
    /// # Safety
    ///
    /// `file` is a live file.
    pub(crate) unsafe fn of_file(file: *mut bindings::file) -> Self {
        // SAFETY: `f_cred` is set at open and lives as long as the file.
        unsafe { Self::from_raw((*file).f_cred) }
    }
}

/// A counted reference to a user namespace.
///
/// # Invariants
///
/// `0` is a live user namespace on which this object holds one reference.
pub(crate) struct UserNs(*mut bindings::user_namespace);

// SAFETY: user namespace references may be used and dropped anywhere.
unsafe impl Send for UserNs {}
// SAFETY: only thread-safe namespace functions are called through it.
unsafe impl Sync for UserNs {}

impl UserNs {
    /// Takes a reference to `ns`.
    ///
    /// # Safety
    ///
    /// `ns` is a live user namespace.
    pub(crate) unsafe fn get(ns: *mut bindings::user_namespace) -> Self {
        // SAFETY: per the function's contract.
        UserNs(unsafe { bindings::kdbus_get_user_ns(ns) })
    }

    /// `kuid` as seen in this namespace, `None` if it has no mapping there.
    pub(crate) fn map_uid(&self, kuid: bindings::kuid_t) -> Option<u32> {
        // SAFETY: `self.0` is live (type invariant).
        let uid = unsafe { bindings::from_kuid(self.0, kuid) };
        if uid == u32::MAX {
            None
        } else {
            Some(uid)
        }
    }

    /// Whether the opener of `file` had `CAP_IPC_OWNER` in this namespace.
    ///
    /// # Safety
    ///
    /// `file` is a live file.
    pub(crate) unsafe fn file_capable_ipc_owner(&self, file: *mut bindings::file) -> bool {
        // SAFETY: `file` is live (contract), `self.0` is live (invariant).
        unsafe { bindings::file_ns_capable(file, self.0, bindings::CAP_IPC_OWNER as _) }
    }
}

impl Drop for UserNs {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant).
        unsafe { bindings::kdbus_put_user_ns(self.0) };
    }
}
