// SPDX-License-Identifier: GPL-2.0

//! The receive pool of a connection (spec: pool.md): a shmem file the kernel
//! writes into and its owner maps read-only.

use crate::bindings;
use crate::errno::{Errno, Result, EFAULT, EINVAL, ENOMEM, EPERM};
use crate::slices::{Allocator, Slice, SliceVec};
use kernel::prelude::*;
use kernel::sync::Mutex;

impl SliceVec for KVec<Slice> {
    fn slices(&self) -> &[Slice] {
        self.as_slice()
    }

    fn slices_mut(&mut self) -> &mut [Slice] {
        self.as_mut_slice()
    }

    fn try_insert(&mut self, idx: usize, s: Slice) -> Result {
        self.push(s, GFP_KERNEL)?;
        if let Some(tail) = self.as_mut_slice().get_mut(idx..) {
            tail.rotate_right(1);
        }
        Ok(())
    }

    fn remove_at(&mut self, idx: usize) {
        let len = self.len();
        if let Some(tail) = self.as_mut_slice().get_mut(idx..) {
            tail.rotate_left(1);
            // SAFETY: `len >= 1` since `idx..` was non-empty; the element
            // past the new length is a `Copy` `Slice` needing no drop.
            unsafe { self.set_len(len - 1) };
        }
    }
}

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

    /// Allocates an unaccounted slice, writes `data` into it and publishes
    /// it to userspace (command results: HELLO, CONN_INFO, LIST).
    /// Returns the offset and slice size.
    pub(crate) fn publish_result(&self, data: &[u8]) -> Result<(u64, u64)> {
        let (off, size) = self.alloc.lock().alloc(data.len() as u64, false)?;
        if let Err(e) = self.write(off, data) {
            let _ = self.alloc.lock().release_kernel(off);
            return Err(e);
        }
        self.alloc.lock().publish(off, true)?;
        Ok((off, size))
    }

    /// KDBUS_CMD_FREE of a published slice.
    pub(crate) fn free_user(&self, offset: u64) -> Result {
        self.alloc.lock().free_user(offset)
    }

    /// Copies `data` into the pool at `off` (inside an allocated slice).
    fn write(&self, off: u64, data: &[u8]) -> Result {
        let mut pos = i64::try_from(off).map_err(|_| EINVAL)?;
        // SAFETY: `file` is a live shmem file (type invariant); `data` is a
        // valid kernel buffer of `data.len()` bytes; `pos` is a local.
        let n = unsafe {
            bindings::kernel_write(self.file, data.as_ptr().cast(), data.len(), &mut pos)
        };
        if n < 0 || n as usize != data.len() {
            return Err(EFAULT);
        }
        Ok(())
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
