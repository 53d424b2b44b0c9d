// SPDX-License-Identifier: GPL-2.0

//! Files (`kernel::fs::File` in newer kernels): counted references, what the
//! message rules ask about a file that is passed or watched, and receiving a
//! file into the calling process.

use super::bindings;
use super::cred::Credential;
use super::gfp;
use super::kvec::copy;
use crate::proto::errno::{Errno, Result, EBADF, ENAMETOOLONG};
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};

/// `F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE`.
pub(crate) const MEMFD_SEALS: u32 = 0x1 | 0x2 | 0x4 | 0x8;

/// `ANON_INODE_FS_MAGIC`: the superblock of anonymous-inode files.
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

const PAGE: usize = kernel::page::PAGE_SIZE;

/// A `struct file`.
///
/// # Invariants
///
/// The wrapped file is live: either an [`ARef`] owns a reference, or it is
/// borrowed from the kernel for the duration of a file operation.
#[repr(transparent)]
pub(crate) struct File(Opaque<bindings::file>);

// SAFETY: files are refcounted atomically and may be used from any thread
// through the VFS functions called here.
unsafe impl Send for File {}
// SAFETY: as above.
unsafe impl Sync for File {}

// SAFETY: `get_file`/`fput` keep the object alive while the count is non-zero.
unsafe impl AlwaysRefCounted for File {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_get_file(self.as_ptr()) };
    }

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::fput(obj.cast().as_ptr()) };
    }
}

impl File {
    /// Borrows a file the kernel passed to a file operation.
    ///
    /// # Safety
    ///
    /// `ptr` is a live file for the whole lifetime `'a`.
    pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::file) -> &'a File {
        // SAFETY: transparent wrapper (contract: live).
        unsafe { &*ptr.cast() }
    }

    /// Takes ownership of a counted reference (`None` for null).
    ///
    /// # Safety
    ///
    /// `ptr` is null or a file whose reference the caller gives up.
    pub(super) unsafe fn from_owned(ptr: *mut bindings::file) -> Option<ARef<File>> {
        // SAFETY: the caller owns the reference; transparent wrapper.
        NonNull::new(ptr).map(|p| unsafe { ARef::from_raw(p.cast()) })
    }

    /// The file's path as the calling task sees it (relative to its root),
    /// if it has a name there.
    pub(crate) fn d_path(&self) -> Result<Option<KVec<u8>>> {
        // Not zeroed: d_path writes the string it returns at the end of the
        // buffer, and only that is read.
        let mut buf = KVec::<u8>::with_capacity(PAGE, gfp())?;
        match self.d_path_in(buf.spare_capacity_mut()) {
            Ok(Some(p)) => Ok(Some(copy(p)?)),
            Ok(None) | Err(ENAMETOOLONG) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`File::d_path`] written into `buf` (d_path writes at its end): the
    /// name, `None` if there is none, `ENAMETOOLONG` if it does not fit.
    pub(crate) fn d_path_in<'b>(&self, buf: &'b mut [MaybeUninit<u8>]) -> Result<Option<&'b [u8]>> {
        let len = buf.len().min(PAGE);
        let base = buf.as_mut_ptr().cast::<u8>();
        // SAFETY: the file (and so its path) is live (invariant); d_path
        // writes at most `len` bytes into the buffer and returns a pointer
        // into it or an error pointer.
        let p = unsafe { bindings::d_path(&self.raw().f_path, base.cast(), len as i32) };
        let p = match kernel::error::from_err_ptr(p).map_err(Errno::from) {
            Ok(p) => p.cast::<u8>(),
            Err(ENAMETOOLONG) => return Err(ENAMETOOLONG),
            Err(_) => return Ok(None),
        };
        let start = (p as usize).wrapping_sub(base as usize);
        if start >= len {
            return Ok(None);
        }
        // SAFETY: d_path wrote the name from `p` up to its NUL at `len - 1`
        // of the buffer, which the returned slice borrows.
        let tail = unsafe { core::slice::from_raw_parts(p, len - 1 - start) };
        let n = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        Ok(tail.get(..n))
    }

    /// Where the file is: its mount and dentry, fixed at open.
    pub(super) fn f_path(&self) -> &bindings::path {
        &self.raw().f_path
    }

    /// The raw file, valid while `self` is.
    pub(super) fn as_ptr(&self) -> *mut bindings::file {
        self.0.get()
    }

    fn raw(&self) -> &bindings::file {
        // SAFETY: live (invariant); only fields fixed at open are read.
        unsafe { &*self.0.get() }
    }

    /// Looks descriptor `fd` up in the calling process (`O_PATH` descriptors
    /// included); `EBADF` if it is not open.
    pub(crate) fn fget(fd: i32) -> Result<ARef<File>> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: fget_raw accepts any number and returns a new reference or
        // null.
        let f = NonNull::new(unsafe { bindings::fget_raw(fd) }).ok_or(EBADF)?;
        // SAFETY: we own the reference fget_raw took.
        Ok(unsafe { ARef::from_raw(f.cast()) })
    }

    /// The credentials the file was opened with.
    pub(crate) fn cred(&self) -> &Credential {
        // SAFETY: `f_cred` is set at open and lives as long as the file.
        unsafe { Credential::from_ptr(self.raw().f_cred) }
    }

    fn inode(&self) -> &bindings::inode {
        // SAFETY: `f_inode` is set at open and lives as long as the file.
        unsafe { &*self.raw().f_inode }
    }

    fn sb(&self) -> &bindings::super_block {
        // SAFETY: an inode's superblock outlives it.
        unsafe { &*self.inode().i_sb }
    }

    /// Whether the file belongs to a kdbusfs (a control or endpoint file).
    pub(crate) fn is_kdbus(&self) -> bool {
        super::vfs::is_kdbusfs(self.sb().s_type)
    }

    /// Whether the file is an `AF_UNIX` socket.
    pub(crate) fn is_unix_socket(&self) -> bool {
        // SAFETY: `self` is live.
        unsafe { bindings::kdbus_is_unix_socket(self.as_ptr()) }
    }

    /// Whether the file is an io_uring instance (which can hold other files
    /// in its fixed-file table, so SCM_RIGHTS refuses it too). The kernel
    /// does not export `io_is_uring_fops`; io_uring files are anonymous
    /// inodes named `[io_uring]`, which nothing else is.
    pub(crate) fn is_io_uring(&self) -> bool {
        if self.sb().s_magic != ANON_INODE_FS_MAGIC as _ {
            return false;
        }
        let dentry = self.raw().f_path.dentry;
        // SAFETY: the path's dentry is pinned by the file; its name is a
        // NUL-terminated string that cannot change for an anonymous inode.
        let name = unsafe { core::ffi::CStr::from_ptr((*dentry).d_name.name.cast()) };
        name.to_bytes() == b"[io_uring]"
    }

    /// Whether the file implements `poll`.
    pub(crate) fn can_poll(&self) -> bool {
        // SAFETY: `f_op` is set at open and static.
        unsafe { (*self.raw().f_op).poll.is_some() }
    }

    /// The memfd seals, `None` if the file is not a shmem file.
    pub(crate) fn shmem_seals(&self) -> Option<u32> {
        // SAFETY: `self` is live.
        if !unsafe { bindings::kdbus_is_shmem_file(self.as_ptr()) } {
            return None;
        }
        // SAFETY: a shmem file's inode carries seals.
        Some(unsafe { bindings::kdbus_shmem_seals(self.as_ptr()) })
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        // SAFETY: `self` is live.
        u64::try_from(unsafe { bindings::kdbus_file_size(self.as_ptr()) }).unwrap_or(0)
    }

    /// Gives the calling process a new descriptor (`O_CLOEXEC`) for this
    /// file through the kernel's receive path, as SCM_RIGHTS does: the
    /// `security_file_receive` hook, then the socket's cgroup data.
    pub(crate) fn receive(&self) -> Result<i32> {
        // SAFETY: `self` is live; receive_fd takes its own reference and
        // writes nothing to user memory when `ufd` is null.
        let fd = unsafe {
            bindings::receive_fd(self.as_ptr(), core::ptr::null_mut(), bindings::O_CLOEXEC)
        };
        if fd < 0 {
            Err(Errno(-fd))
        } else {
            Ok(fd)
        }
    }
}
