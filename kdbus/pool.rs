// SPDX-License-Identifier: GPL-2.0

//! The receive pool of a connection (spec: pool.md): a shmem file the kernel
//! writes into and its owner maps read-only.

use crate::bindings;
use crate::errno::{Errno, Result, EFAULT, EINVAL, ENOMEM, EPERM};
use crate::slices::{Allocator, Slice};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// `ITER_SOURCE`: the iterator is read from (the pool is written).
const ITER_SOURCE: u32 = 1;

/// A connection's receive pool.
///
/// # Invariants
///
/// `file` is a shmem file of `size` bytes; this object owns one reference.
pub(crate) struct Pool {
    file: *mut bindings::file,
    size: u64,
    alloc: Pin<KBox<Mutex<Allocator<KVec<Slice>>>>>,
}

// SAFETY: the file reference may be used and dropped from any thread.
unsafe impl Send for Pool {}
// SAFETY: the allocator is behind a mutex; the file is only passed to
// thread-safe VFS calls.
unsafe impl Sync for Pool {}

impl Pool {
    /// Creates a pool of `size` bytes (non-zero, page aligned; checked by
    /// the caller).
    pub(crate) fn new(size: u64) -> Result<Self> {
        let alloc = Allocator::new(size, KVec::new())?;
        let alloc = KBox::pin_init(kernel::new_mutex!(alloc, "kdbus_pool"), GFP_KERNEL)?;
        let len = i64::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: the name is a NUL-terminated static string; shmem copies it.
        let file = unsafe {
            bindings::shmem_file_setup(c"kdbus-conn".as_ptr(), len, bindings::VM_NORESERVE as _)
        };
        let file = kernel::error::from_err_ptr(file).map_err(Errno::from)?;
        if file.is_null() {
            return Err(ENOMEM);
        }
        Ok(Pool { file, size, alloc })
    }

    /// The pool size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Allocates a slice of `size` bytes (rounded up to 8) held by the
    /// kernel; `accounted` slices count against receive quotas.
    pub(crate) fn alloc(&self, size: u64, accounted: bool) -> Result<(u64, u64)> {
        self.alloc.lock().alloc(size, accounted)
    }

    /// Bytes of accounted slices the kernel still holds (queued messages).
    pub(crate) fn accounted(&self) -> u64 {
        self.alloc.lock().accounted()
    }

    /// Sets the user reference of a slice; with `drop_kref` the kernel lets
    /// go of it at the same time.
    pub(crate) fn publish(&self, offset: u64, drop_kref: bool) -> Result {
        self.alloc.lock().publish(offset, drop_kref)
    }

    /// Drops the kernel reference of a slice (freed unless published).
    pub(crate) fn release_kernel(&self, offset: u64) {
        let _ = self.alloc.lock().release_kernel(offset);
    }

    /// Allocates an unaccounted slice, writes `data` into it and publishes
    /// it to userspace (command results: HELLO, CONN_INFO, LIST).
    /// Returns the offset and slice size.
    pub(crate) fn publish_result(&self, data: &[u8]) -> Result<(u64, u64)> {
        let (off, size) = self.alloc(data.len() as u64, false)?;
        let written = self
            .write(off, data)
            .and_then(|()| self.write_zeros(off + data.len() as u64, size - data.len() as u64));
        if let Err(e) = written {
            self.release_kernel(off);
            return Err(e);
        }
        self.publish(off, true)?;
        Ok((off, size))
    }

    /// KDBUS_CMD_FREE of a published slice.
    pub(crate) fn free_user(&self, offset: u64) -> Result {
        self.alloc.lock().free_user(offset)
    }

    /// Writes through an iterator at pool offset `off`.
    fn write_iter(&self, off: u64, iter: &mut bindings::iov_iter, len: usize) -> Result {
        let mut pos = i64::try_from(off).map_err(|_| EINVAL)?;
        // SAFETY: `file` is a live shmem file (type invariant); `iter` is an
        // initialised iterator over `len` bytes; `pos` is a local.
        let n = unsafe { bindings::vfs_iter_write(self.file, iter, &mut pos, 0) };
        if n < 0 || n as usize != len {
            return Err(EFAULT);
        }
        Ok(())
    }

    /// Copies `data` into the pool at `off` (inside an allocated slice).
    pub(crate) fn write(&self, off: u64, data: &[u8]) -> Result {
        if data.is_empty() {
            return Ok(());
        }
        let kv = bindings::kvec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: an all-zero iov_iter is a valid target for iov_iter_kvec.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: `kv` describes `data`, which outlives the write; the
        // iterator is a source (the pool is written).
        unsafe { bindings::iov_iter_kvec(&mut iter, ITER_SOURCE as _, &kv, 1, data.len()) };
        self.write_iter(off, &mut iter, data.len())
    }

    /// Writes `len` zero bytes at `off`: slices are reused, so every byte of
    /// a new slice is written, padding included.
    pub(crate) fn write_zeros(&self, mut off: u64, mut len: u64) -> Result {
        static ZEROS: [u8; 256] = [0; 256];
        while len > 0 {
            let n = len.min(ZEROS.len() as u64);
            self.write(off, &ZEROS[..n as usize])?;
            off += n;
            len -= n;
        }
        Ok(())
    }

    /// Copies `len` bytes from user address `addr` of the calling process
    /// straight into the pool at `off`: the one copy of a message payload.
    pub(crate) fn write_user(&self, off: u64, addr: u64, len: u64) -> Result {
        if len == 0 {
            return Ok(());
        }
        let len = usize::try_from(len).map_err(|_| EFAULT)?;
        // SAFETY: an all-zero iov_iter is a valid target for import_ubuf.
        let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
        // SAFETY: import_ubuf validates the user range (access_ok) and only
        // records it; faults are handled by the copy inside the write.
        let ret =
            unsafe { bindings::import_ubuf(ITER_SOURCE as _, addr as *mut _, len, &mut iter) };
        if ret < 0 {
            return Err(EFAULT);
        }
        self.write_iter(off, &mut iter, len)
    }

    /// Maps the pool into `vma`, read-only (pool.md 3).
    ///
    /// # Safety
    ///
    /// `vma` is the area passed to the `mmap` file operation being served.
    pub(crate) unsafe fn mmap(&self, vma: *mut bindings::vm_area_struct) -> Result {
        // SAFETY: `vma` is valid for the duration of the call (contract).
        let v = unsafe { &*vma };
        // SAFETY: `vm_flags` is the read-only view of the flags union.
        let flags = unsafe { v.__bindgen_anon_2.vm_flags } as u64;
        if flags & bindings::VM_WRITE as u64 != 0 {
            return Err(EPERM);
        }
        // SAFETY: the start/end pair is the active member of its union.
        let (start, end) = unsafe {
            let r = &v.__bindgen_anon_1.__bindgen_anon_1;
            (r.vm_start, r.vm_end)
        };
        let len = end.checked_sub(start).ok_or(EFAULT)? as u64;
        let off = (v.vm_pgoff as u64)
            .checked_mul(kernel::page::PAGE_SIZE as u64)
            .and_then(|o| o.checked_add(len))
            .ok_or(EFAULT)?;
        if len > self.size || off > self.size {
            return Err(EFAULT);
        }
        // SAFETY: `vma` is valid; the mapping may never become writable.
        unsafe { bindings::kdbus_vm_flags_clear(vma, bindings::VM_MAYWRITE as _) };
        // SAFETY: `file` is live; `vma_set_file` takes its own reference and
        // drops the one on the kdbus file, which the mapping no longer uses.
        unsafe { bindings::vma_set_file(vma, self.file) };
        // SAFETY: a shmem file always has `mmap`; `vma` now refers to it.
        let ret = unsafe {
            match (*(*self.file).f_op).mmap {
                Some(mmap) => mmap(self.file, vma),
                None => -(ENOMEM.0),
            }
        };
        if ret < 0 {
            return Err(Errno(-ret));
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: we own one reference to `file` (type invariant).
        unsafe { bindings::fput(self.file) };
    }
}
