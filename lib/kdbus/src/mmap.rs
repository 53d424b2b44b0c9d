//! Memory mappings of kdbus descriptors (the receive pool, pool.md 3).

use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use nix::sys::mman::{mmap, mprotect, munmap, MapFlags, ProtFlags};

use crate::Errno;

/// An owned memory mapping, unmapped on drop.
///
/// Reading through [`Mmap::bytes`] is sound as long as the mapping is
/// readable; the kernel writes into a pool only at slices that are not
/// published to userspace.
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    readable: bool,
}

// SAFETY: the mapping is plain process memory; the struct only hands out
// shared, read-only views of it.
unsafe impl Send for Mmap {}
// SAFETY: as above; no interior mutability through `&Mmap` except
// `protect`, which is unsafe and documented.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// `mmap(NULL, len, prot, flags, fd, offset)`. Returns the errno of the
    /// mmap call on failure (`EINVAL` for `len == 0`, like the kernel).
    pub fn map(
        fd: impl AsFd,
        len: usize,
        prot: ProtFlags,
        flags: MapFlags,
        offset: i64,
    ) -> Result<Self, Errno> {
        let nz = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a fresh mapping at a kernel-chosen address aliases no Rust
        // object; it is unmapped exactly once, in Drop.
        let ptr = unsafe { mmap(None, nz, prot, flags, fd, offset as libc::off_t)? };
        Ok(Mmap {
            ptr: ptr.cast(),
            len,
            readable: prot.contains(ProtFlags::PROT_READ),
        })
    }

    /// The usual pool mapping: `mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)`.
    pub fn map_readonly(fd: impl AsFd, len: usize) -> Result<Self, Errno> {
        Self::map(fd, len, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, 0)
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true for a successful map).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start address of the mapping.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// `len` bytes at `offset`, or `None` if the range is outside the
    /// mapping or the mapping was not made readable.
    ///
    /// Touching pages beyond the end of the underlying file raises SIGBUS;
    /// for a pool mapped with its full `pool_size` that cannot happen.
    pub fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        if !self.readable || end > self.len {
            return None;
        }
        // SAFETY: the range lies inside the live, readable mapping.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) })
    }

    /// Copies `len` bytes at `offset` (see [`Mmap::bytes`]).
    pub fn read(&self, offset: usize, len: usize) -> Option<Vec<u8>> {
        self.bytes(offset, len).map(<[u8]>::to_vec)
    }

    /// The `u64` at `offset` (any alignment).
    pub fn u64_at(&self, offset: usize) -> Option<u64> {
        Some(u64::from_ne_bytes(self.bytes(offset, 8)?.try_into().ok()?))
    }

    /// `mprotect` on the whole mapping.
    ///
    /// # Safety
    ///
    /// Removing `PROT_READ` invalidates slices previously returned by
    /// [`Mmap::bytes`]; the caller must not use any while the mapping is not
    /// readable.
    pub unsafe fn protect(&mut self, prot: ProtFlags) -> Result<(), Errno> {
        // SAFETY: the range is exactly this mapping; the caller upholds the
        // rule about outstanding slices (none can exist: `&mut self`).
        unsafe { mprotect(self.ptr.cast(), self.len, prot)? };
        self.readable = prot.contains(ProtFlags::PROT_READ);
        Ok(())
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `map`.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_a_regular_file() {
        let path = std::env::temp_dir().join(format!("kdbus-mmap-test-{}", std::process::id()));
        std::fs::write(&path, b"hello kdbus pool").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let m = Mmap::map_readonly(&f, 16).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(m.len(), 16);
        assert_eq!(m.bytes(6, 5), Some(&b"kdbus"[..]));
        assert_eq!(m.bytes(10, 7), None);
        assert_eq!(m.bytes(usize::MAX, 2), None);
        assert_eq!(m.u64_at(0), Some(u64::from_ne_bytes(*b"hello kd")));
        assert_eq!(Mmap::map_readonly(&f, 0).err(), Some(Errno::EINVAL));
        // A read-only file cannot be mapped writable and shared.
        assert_eq!(
            Mmap::map(
                &f,
                16,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                0
            )
            .err(),
            Some(Errno::EACCES)
        );
    }
}
