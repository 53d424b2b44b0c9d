// SPDX-License-Identifier: GPL-2.0

//! File references passed in messages (FDS, PAYLOAD_MEMFD, CANCEL_FD) and the
//! installation of descriptors in a receiving process.

use crate::bindings;
use crate::errno::{Errno, Result, EBADF, EFAULT, EINVAL, EMEDIUMTYPE, EOPNOTSUPP, ETXTBSY};
use kernel::prelude::*;
use kernel::types::Opaque;

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

/// A CANCEL_FD being watched by a sleeping synchronous caller (message.md
/// 3): the caller's task is queued on the file's poll wait queue, so a write
/// that makes the file readable wakes it.
///
/// # Invariants
///
/// `pt` is initialised with [`watch_queue`]; `head`, once set, is the queue
/// `entry` was added to, and `entry` is removed from it before `self` goes.
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct CancelWatch {
    #[pin]
    pt: Opaque<bindings::poll_table_struct>,
    #[pin]
    entry: Opaque<bindings::wait_queue_entry>,
    head: core::cell::Cell<*mut bindings::wait_queue_head>,
    file: FileRef,
}

/// `poll_table` callback: queue the current task on the file's wait queue.
///
/// # Safety
///
/// `pt` is the `pt` of a live [`CancelWatch`] and `wq` a live wait queue.
unsafe extern "C" fn watch_queue(
    _file: *mut bindings::file,
    wq: *mut bindings::wait_queue_head,
    pt: *mut bindings::poll_table_struct,
) {
    // `pt` is the first field of the #[repr(C)] watch.
    // SAFETY: per the function's contract.
    let w = unsafe { &*pt.cast::<CancelWatch>() };
    if !w.head.get().is_null() {
        return;
    }
    w.head.set(wq);
    // SAFETY: `entry` is pinned in `w`, which outlives the registration
    // (removed in drop); the entry wakes the task that set up the watch.
    unsafe {
        bindings::kdbus_init_waitqueue_entry(w.entry.get());
        bindings::add_wait_queue(wq, w.entry.get());
    }
}

impl CancelWatch {
    /// Resolves a CANCEL_FD item's descriptor: `EBADF` if it is not open,
    /// `EINVAL` if the file cannot be polled.
    pub(crate) fn check(fd: i32) -> Result<FileRef> {
        let f = FileRef::get(fd)?;
        // SAFETY: `f` holds a reference to a live file.
        if unsafe { (*(*f.as_ptr()).f_op).poll.is_none() } {
            return Err(EINVAL);
        }
        Ok(f)
    }

    /// Starts watching `file` for the current task.
    pub(crate) fn new(file: FileRef) -> Result<Pin<KBox<Self>>> {
        let w = KBox::pin_init(
            pin_init!(CancelWatch {
                // SAFETY: `slot` is valid memory for a poll table.
                pt <- Opaque::ffi_init(|slot| unsafe {
                    bindings::kdbus_init_poll_funcptr(slot, Some(watch_queue))
                }),
                entry: Opaque::uninit(),
                head: core::cell::Cell::new(core::ptr::null_mut()),
                file,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: the file is live; `pt` belongs to the pinned watch.
        unsafe { bindings::kdbus_vfs_poll(w.file.as_ptr(), w.pt.get()) };
        Ok(w)
    }

    /// Whether the watched file is readable.
    pub(crate) fn fired(&self) -> bool {
        // SAFETY: the file is live; a null table only queries the mask.
        let mask = unsafe { bindings::kdbus_vfs_poll(self.file.as_ptr(), core::ptr::null_mut()) };
        mask & bindings::POLLIN != 0
    }
}

#[pinned_drop]
impl PinnedDrop for CancelWatch {
    fn drop(self: Pin<&mut Self>) {
        let head = self.head.get();
        if !head.is_null() {
            // SAFETY: `entry` was added to `head` by `watch_queue` (the file
            // we hold keeps the queue alive).
            unsafe { bindings::remove_wait_queue(head, self.entry.get()) };
        }
    }
}
