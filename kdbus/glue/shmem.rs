// SPDX-License-Identifier: GPL-2.0

//! The pool's backing store: a shmem file the kernel writes into straight
//! through its page cache (no VFS write path: no inode lock, no timestamps)
//! and its owner maps read-only.

use super::bindings;
use super::file::File;
use super::gfp;
use super::vma::VmaNew;
use crate::proto::errno::{Errno, Result, EFAULT, EINVAL, ENOMEM};
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::ARef;

const PAGE: u64 = kernel::page::PAGE_SIZE as u64;

/// A shmem file of a fixed size.
pub(crate) struct ShmemFile {
    file: ARef<File>,
    size: u64,
}

/// A referenced page of a shmem file.
///
/// # Invariants
///
/// `0` is a page cache page of the file on which we hold one reference.
struct PageRef(NonNull<bindings::page>);

impl PageRef {
    /// Gets page `index` of `file` (allocating it if needed).
    fn get(file: &File, index: u64) -> Result<PageRef> {
        // SAFETY: `file` is a live shmem file; shmem checks the index.
        let page = unsafe {
            bindings::shmem_read_mapping_page_gfp(
                (*file.as_ptr()).f_mapping,
                index as _,
                bindings::GFP_KERNEL,
            )
        };
        let page = kernel::error::from_err_ptr(page).map_err(Errno::from)?;
        NonNull::new(page).map(PageRef).ok_or(ENOMEM)
    }

    /// Runs `f` on the page's bytes, mapped.
    fn with_mapped<R>(&self, f: impl FnOnce(*mut u8) -> R) -> R {
        // SAFETY: the page is referenced (invariant); the mapping is local to
        // this call.
        let base = unsafe { kernel::bindings::kmap_local_page(self.0.as_ptr()) }.cast::<u8>();
        let r = f(base);
        // SAFETY: mapped just above.
        unsafe { kernel::bindings::kunmap_local(base.cast()) };
        r
    }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: we own a reference (invariant). shmem pages must be marked
        // dirty so reclaim keeps what was written.
        unsafe {
            bindings::set_page_dirty(self.0.as_ptr());
            bindings::kdbus_put_page(self.0.as_ptr());
        }
    }
}

/// Where bytes written into the file come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// A kernel buffer.
    Kernel(&'a [u8]),
    /// Zeroes.
    Zero,
    /// User memory of the calling process, at this address.
    User(u64),
}

/// Writes a range of the file front to back, keeping the current page
/// mapped from one piece to the next.
///
/// # Invariants
///
/// `page`, if set, is page `page.1` of the file, mapped at `page.2`.
pub(crate) struct Writer<'a> {
    file: &'a ShmemFile,
    pos: u64,
    end: u64,
    page: Option<(PageRef, u64, *mut u8)>,
}

impl Writer<'_> {
    fn release(&mut self) {
        if let Some((_page, _, base)) = self.page.take() {
            // SAFETY: mapped by `map` (invariant); the page reference drops
            // after the unmapping.
            unsafe { kernel::bindings::kunmap_local(base.cast()) };
        }
    }

    /// Maps the page holding `pos`.
    fn map(&mut self) -> Result<*mut u8> {
        let index = self.pos / PAGE;
        if let Some((_, i, base)) = &self.page {
            if *i == index {
                return Ok(*base);
            }
        }
        self.release();
        let page = PageRef::get(&self.file.file, index)?;
        // SAFETY: `page` is a referenced page cache page; unmapped in
        // `release` before the reference goes.
        let base = unsafe { kernel::bindings::kmap_local_page(page.0.as_ptr()) }.cast::<u8>();
        self.page = Some((page, index, base));
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
            // SAFETY: `[in_page, in_page + n)` lies inside the mapped page.
            // The range belongs to a slice the caller allocated and has not
            // handed to userspace or another writer, so nothing else writes
            // there concurrently (userspace's mapping is read-only).
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
                    // checks and faults in the user range itself (it may
                    // sleep: the page is mapped with kmap_local, which
                    // allows that).
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

    /// Copies `len` bytes at `off` of another shmem file (kernel memory to
    /// kernel memory, page by page).
    pub(crate) fn copy_from(&mut self, src: &ShmemFile, off: u64, len: u64) -> Result {
        let end = off.checked_add(len).ok_or(EFAULT)?;
        if end > src.size {
            return Err(EFAULT);
        }
        let mut pos = off;
        while pos < end {
            let in_page = pos % PAGE;
            let n = (PAGE - in_page).min(end - pos);
            let page = PageRef::get(&src.file, pos / PAGE)?;
            // Through a bounce buffer of at most a page: the source page is
            // mapped only while it is read.
            let mut buf = [0u8; 256];
            let mut done = 0;
            while done < n {
                let k = (n - done).min(buf.len() as u64);
                page.with_mapped(|base| {
                    // SAFETY: `[in_page + done, +k)` lies inside the page;
                    // `buf` holds `k` bytes.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            base.add((in_page + done) as usize),
                            buf.as_mut_ptr(),
                            k as usize,
                        )
                    }
                });
                self.kernel(&buf[..k as usize])?;
                done += k;
            }
            pos += n;
        }
        Ok(())
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

/// Pages of the file held so that small in-place writes (descriptor
/// numbers, at RECV) cannot fail once every page was fetched.
pub(crate) struct Patch<'a> {
    file: &'a ShmemFile,
    pages: KVec<(u64, PageRef)>,
}

impl Patch<'_> {
    /// Fetches the page holding the 4-byte field at `off` (4-aligned, inside
    /// the file).
    pub(crate) fn add(&mut self, off: u64) -> Result {
        if off % 4 != 0 || off.checked_add(4).map_or(true, |e| e > self.file.size) {
            return Err(EINVAL);
        }
        let index = off / PAGE;
        if self.pages.iter().any(|(i, _)| *i == index) {
            return Ok(());
        }
        self.pages.reserve(1, gfp())?;
        let page = PageRef::get(&self.file.file, index)?;
        self.pages.push((index, page), gfp())?;
        Ok(())
    }

    /// Writes `v` into the field at `off`, whose page was fetched with
    /// [`Patch::add`] (other offsets are ignored).
    pub(crate) fn write_i32(&self, off: u64, v: i32) {
        let (index, in_page) = (off / PAGE, (off % PAGE) as usize);
        if off % 4 != 0 {
            return;
        }
        if let Some((_, page)) = self.pages.iter().find(|(i, _)| *i == index) {
            page.with_mapped(|base| {
                // SAFETY: a 4-aligned field lies inside one page; the slice
                // holding it is the caller's (see `Writer::put`).
                unsafe { base.add(in_page).cast::<i32>().write(v) };
            });
        }
    }
}

impl ShmemFile {
    /// A new shmem file of `size` bytes (memory is allocated on write).
    pub(crate) fn new(size: u64) -> Result<Self> {
        let len = i64::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: the name is a NUL-terminated static string; shmem copies it.
        let file = unsafe {
            bindings::shmem_file_setup(c"kdbus-pool".as_ptr(), len, bindings::VM_NORESERVE as _)
        };
        let file = kernel::error::from_err_ptr(file).map_err(Errno::from)?;
        let file = NonNull::new(file).ok_or(ENOMEM)?;
        // SAFETY: shmem_file_setup returned a new reference, now ours.
        let file = unsafe { ARef::from_raw(file.cast::<File>()) };
        Ok(ShmemFile { file, size })
    }

    /// The file size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// A sequential writer of `len` bytes at `off` (inside the file).
    pub(crate) fn writer(&self, off: u64, len: u64) -> Result<Writer<'_>> {
        let end = off.checked_add(len).ok_or(EFAULT)?;
        if end > self.size {
            return Err(EFAULT);
        }
        Ok(Writer {
            file: self,
            pos: off,
            end,
            page: None,
        })
    }

    /// An empty set of held pages for in-place writes.
    pub(crate) fn patch(&self) -> Patch<'_> {
        Patch {
            file: self,
            pages: KVec::new(),
        }
    }

    /// Maps the file into `vma` (which the caller checked), never writable.
    pub(crate) fn mmap(&self, vma: &VmaNew) -> Result {
        vma.forbid_write();
        // SAFETY: the area is being set up; `vma_set_file` takes its own
        // reference to our file and drops the one on the kdbus file, which
        // the mapping no longer uses.
        unsafe { bindings::vma_set_file(vma.as_ptr(), self.file.as_ptr()) };
        // SAFETY: a shmem file always has `mmap`; `vma` now refers to it.
        let ret = unsafe {
            match (*(*self.file.as_ptr()).f_op).mmap {
                Some(mmap) => mmap(self.file.as_ptr(), vma.as_ptr()),
                None => -(ENOMEM.0),
            }
        };
        super::error::check(ret).map(|_| ())
    }
}
