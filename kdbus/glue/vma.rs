// SPDX-License-Identifier: GPL-2.0

//! The area of an `mmap` call (`kernel::mm::virt::VmaNew` in newer kernels).

use super::bindings;
use kernel::types::Opaque;

/// A `vm_area_struct` being set up by an `mmap` file operation.
///
/// # Invariants
///
/// The area is live and being set up by the call that borrowed it, under the
/// mm's `mmap_lock`.
#[repr(transparent)]
pub(crate) struct VmaNew(Opaque<bindings::vm_area_struct>);

impl VmaNew {
    /// # Safety
    ///
    /// `vma` is the area passed to the `mmap` operation being served, valid
    /// for `'a`.
    pub(super) unsafe fn from_raw<'a>(vma: *mut bindings::vm_area_struct) -> &'a VmaNew {
        // SAFETY: transparent wrapper (contract).
        unsafe { &*vma.cast() }
    }

    pub(super) fn as_ptr(&self) -> *mut bindings::vm_area_struct {
        self.0.get()
    }

    fn raw(&self) -> &bindings::vm_area_struct {
        // SAFETY: live (invariant).
        unsafe { &*self.0.get() }
    }

    fn flags(&self) -> u64 {
        // SAFETY: `vm_flags` is the read-only view of the flags union.
        unsafe { self.raw().__bindgen_anon_2.vm_flags as u64 }
    }

    /// Length of the area in bytes.
    pub(crate) fn len(&self) -> u64 {
        // SAFETY: the start/end pair is the active member of its union.
        let r = unsafe { &self.raw().__bindgen_anon_1.__bindgen_anon_1 };
        r.vm_end.saturating_sub(r.vm_start) as u64
    }

    /// Whether the mapping is writable.
    pub(crate) fn is_writable(&self) -> bool {
        self.flags() & bindings::VM_WRITE as u64 != 0
    }

    /// Takes away the right to make the mapping writable later (mprotect).
    pub(crate) fn forbid_write(&self) {
        // SAFETY: the area is being set up under mmap_lock (invariant).
        unsafe { bindings::kdbus_vm_flags_clear(self.as_ptr(), bindings::VM_MAYWRITE as _) };
    }
}
