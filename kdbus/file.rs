// SPDX-License-Identifier: GPL-2.0

//! File references passed in messages (FDS, PAYLOAD_MEMFD, CANCEL_FD) and the
//! installation of descriptors in a receiving process.

use crate::bindings;
use crate::errno::{Errno, Result, EBADF, EFAULT, EMEDIUMTYPE, EOPNOTSUPP, ETXTBSY};

/// `F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`.
const MEMFD_SEALS: u32 = 0x1 | 0x2 | 0x4 | 0x8;

/// A counted reference to a `struct file`.
///
/// # Invariants
///
/// `0` is a live file on which this object holds one reference.
pub(crate) struct FileRef(*mut bindings::file);

// SAFETY: file references may be used and dropped from any thread.
unsafe impl Send for FileRef {}
// SAFETY: only thread-safe VFS functions are called through it.
unsafe impl Sync for FileRef {}

impl FileRef {
    /// Looks up `fd` in the calling process (O_PATH descriptors included).
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: fget_raw accepts any number and returns a reference or null.
        let f = unsafe { bindings::fget_raw(fd) };
        if f.is_null() {
            return Err(EBADF);
        }
        Ok(FileRef(f))
    }

    /// Another reference to the same file.
    pub(crate) fn clone_ref(&self) -> Self {
        // SAFETY: `self.0` is live (invariant); this takes one more reference.
        unsafe { bindings::kdbus_get_file(self.0) };
        FileRef(self.0)
    }

    /// The raw file pointer, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0
    }

    /// Gives up the reference to the caller (e.g. to `fd_install`).
    fn into_raw(self) -> *mut bindings::file {
        let f = self.0;
        core::mem::forget(self);
        f
    }

    /// Checks a file passed in a FDS item (message.md 4): kdbus handles and
    /// AF_UNIX sockets cannot be passed.
    pub(crate) fn check_passable(&self) -> Result {
        // SAFETY: `self.0` is live (invariant).
        let (ours, unix) = unsafe {
            (
                crate::fs::is_kdbus_file(self.0),
                bindings::kdbus_is_unix_socket(self.0),
            )
        };
        if ours || unix {
            return Err(EOPNOTSUPP);
        }
        Ok(())
    }

    /// Checks a file passed as PAYLOAD_MEMFD covering `[start, start+size)`:
    /// a shmem file with all four seals, large enough.
    pub(crate) fn check_memfd(&self, start: u64, size: u64) -> Result {
        // SAFETY: `self.0` is live (invariant).
        if !unsafe { bindings::kdbus_is_shmem_file(self.0) } {
            return Err(EMEDIUMTYPE);
        }
        // SAFETY: as above; the file is shmem, so its inode has seals.
        let seals = unsafe { bindings::kdbus_shmem_seals(self.0) };
        if seals & MEMFD_SEALS != MEMFD_SEALS {
            return Err(ETXTBSY);
        }
        // SAFETY: as above.
        let len = unsafe { bindings::kdbus_file_size(self.0) };
        let end = start.checked_add(size).ok_or(EFAULT)?;
        if end > u64::try_from(len).unwrap_or(0) {
            return Err(EFAULT);
        }
        Ok(())
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (invariant).
        unsafe { bindings::fput(self.0) };
    }
}

/// A descriptor number reserved in the current process, not yet visible.
pub(crate) struct FdSlot {
    fd: i32,
}

impl FdSlot {
    /// Reserves a descriptor number (`O_CLOEXEC`).
    pub(crate) fn reserve() -> Result<Self> {
        // SAFETY: no preconditions; the number is ours until installed or put.
        let fd = unsafe { bindings::get_unused_fd_flags(bindings::O_CLOEXEC) };
        if fd < 0 {
            return Err(Errno(-fd));
        }
        Ok(FdSlot { fd })
    }

    /// The reserved number.
    pub(crate) fn fd(&self) -> i32 {
        self.fd
    }

    /// Makes the number refer to `file` in the current process.
    pub(crate) fn install(self, file: FileRef) {
        let fd = self.fd;
        core::mem::forget(self);
        // SAFETY: `fd` was reserved by this process and not installed; the
        // file reference moves into the descriptor table.
        unsafe { bindings::fd_install(fd as u32, file.into_raw()) };
    }
}

impl Drop for FdSlot {
    fn drop(&mut self) {
        // SAFETY: the number was reserved and never installed.
        unsafe { bindings::put_unused_fd(self.fd as u32) };
    }
}
