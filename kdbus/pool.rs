// SPDX-License-Identifier: GPL-2.0

//! The receive pool of a connection (spec: pool.md): a shmem file the kernel
//! writes into and its owner maps read-only.

use crate::bindings;
use crate::errno::{Errno, Result, EFAULT, EINVAL, ENOMEM, EPERM};
use crate::slices::{Allocator, Slice};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Where bytes written into the pool come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A kernel buffer.
    Kernel(&'a [u8]),
    /// Zeroes.
    Zero,
    /// User memory of the calling process, at this address.
    User(u64),
}

/// Writes bytes into a pool front to back, straight into the shmem file's
/// page cache (no VFS write path: no inode lock, no timestamp updates),
/// keeping the current page mapped from one piece to the next.
///
/// # Invariants
///
/// `page`, if set, is a referenced page of the pool's file mapped at `base`
/// and holding position `pos` (unless `pos` is at its end); it is unmapped,
/// marked dirty and released when the writer moves on or is dropped.
pub(crate) struct Writer<'a> {
    pool: &'a Pool,
    pos: u64,
    end: u64,
    page: Option<(*mut bindings::page, *mut u8, u64)>,
}

const PAGE: u64 = kernel::page::PAGE_SIZE as u64;

impl Writer<'_> {
    fn release(&mut self) {
        if let Some((page, base, _)) = self.page.take() {
            // SAFETY: mapped and referenced by `map` (invariant). shmem pages
            // must be marked dirty so reclaim keeps their content.
            unsafe {
                kernel::bindings::kunmap_local(base.cast());
                bindings::set_page_dirty(page);
                bindings::kdbus_put_page(page);
            }
        }
    }

    /// Maps the page holding `pos`.
    fn map(&mut self) -> Result<*mut u8> {
        let index = self.pos / PAGE;
        if let Some((_, base, i)) = self.page {
            if i == index {
                return Ok(base);
            }
        }
        self.release();
        // SAFETY: `file` is a live shmem file; the index is inside it
        // (`end <= size` checked by `Pool::writer`).
        let page = unsafe {
            bindings::shmem_read_mapping_page_gfp(
                (*self.pool.file).f_mapping,
                index as _,
                bindings::GFP_KERNEL,
            )
        };
        let page = kernel::error::from_err_ptr(page).map_err(Errno::from)?;
        // SAFETY: `page` is a referenced page cache page of the pool.
        let base = unsafe { kernel::bindings::kmap_local_page(page) }.cast::<u8>();
        self.page = Some((page, base, index));
        Ok(base)
    }

    /// Writes `len` bytes from `src` at the current position.
    fn put(&mut self, src: Source<'_>, len: u64) -> Result {
        if self.pos.checked_add(len).map_or(true, |e| e > self.end) {
            return Err(EFAULT);
        }
        let mut done: u64 = 0;
        while done < len {
            let in_page = self.pos % PAGE;
            let n = (PAGE - in_page).min(len - done);
            let base = self.map()?;
            // SAFETY: `[in_page, in_page + n)` lies inside the mapped page;
            // the kernel only writes slices it allocated and has not
            // published, so nothing else writes there.
            let dst = unsafe { base.add(in_page as usize) };
            let copied = match src {
                Source::Kernel(data) => match data.get(done as usize..(done + n) as usize) {
                    Some(part) => {
                        // SAFETY: `dst` is valid for `n` bytes (above).
                        unsafe { core::ptr::copy_nonoverlapping(part.as_ptr(), dst, n as usize) };
                        true
                    }
                    None => false,
                },
                Source::Zero => {
                    // SAFETY: `dst` is valid for `n` bytes (above).
                    unsafe { core::ptr::write_bytes(dst, 0, n as usize) };
                    true
                }
                Source::User(addr) => match addr.checked_add(done) {
                    // SAFETY: `dst` is valid for `n` bytes; copy_from_user
                    // checks and faults in the user range itself.
                    Some(from) => unsafe {
                        kernel::bindings::copy_from_user(dst.cast(), from as _, n as _) == 0
                    },
                    None => false,
                },
            };
            if !copied {
                return Err(EFAULT);
            }
            done += n;
            self.pos += n;
        }
        Ok(())
    }

    /// Writes a kernel buffer.
    pub(crate) fn kernel(&mut self, data: &[u8]) -> Result {
        self.put(Source::Kernel(data), data.len() as u64)
    }

    /// Writes `len` zero bytes.
    pub(crate) fn zeros(&mut self, len: u64) -> Result {
        self.put(Source::Zero, len)
    }

    /// Copies `len` bytes from user address `addr` of the calling process.
    pub(crate) fn user(&mut self, addr: u64, len: u64) -> Result {
        self.put(Source::User(addr), len)
    }

    /// Zero-fills up to the end of the writer's range.
    pub(crate) fn zero_rest(&mut self) -> Result {
        self.zeros(self.end - self.pos)
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.release();
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

    /// A sequential writer of `len` bytes at `off` (inside the pool).
    pub(crate) fn writer(&self, off: u64, len: u64) -> Result<Writer<'_>> {
        let end = off.checked_add(len).ok_or(EFAULT)?;
        if end > self.size {
            return Err(EFAULT);
        }
        Ok(Writer {
            pool: self,
            pos: off,
            end,
            page: None,
        })
    }

    fn copy_in(&self, off: u64, len: u64, src: Source<'_>) -> Result {
        self.writer(off, len)?.put(src, len)
    }

    /// Copies `data` into the pool at `off` (inside an allocated slice).
    pub(crate) fn write(&self, off: u64, data: &[u8]) -> Result {
        self.copy_in(off, data.len() as u64, Source::Kernel(data))
    }

    /// Writes `len` zero bytes at `off`: slices are reused, so every byte of
    /// a new slice is written, padding included.
    pub(crate) fn write_zeros(&self, off: u64, len: u64) -> Result {
        self.copy_in(off, len, Source::Zero)
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
