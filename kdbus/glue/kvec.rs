// SPDX-License-Identifier: GPL-2.0

//! The vector operations 6.12's `KVec` lacks (`pop`, ordered `remove`, a
//! fallible `copy`), and
//! the slice allocator's storage, a `KVVec` (kvmalloc: no high-order
//! allocation is needed however many slices a pool holds).

use super::gfp;
use crate::proto::errno::Result;
use crate::proto::slices::{Slice, SliceVec};
use kernel::alloc::{Allocator, KVVec};

/// A copy of `b` in a vector of its size.
pub(crate) fn copy(b: &[u8]) -> Result<kernel::alloc::KVec<u8>> {
    let mut v = kernel::alloc::KVec::with_capacity(b.len(), gfp())?;
    v.extend_from_slice(b, gfp())?;
    Ok(v)
}

/// Removes and returns the last element.
pub(crate) fn pop<T, A: Allocator>(v: &mut kernel::alloc::Vec<T, A>) -> Option<T> {
    let len = v.len();
    if len == 0 {
        return None;
    }
    // SAFETY: index `len - 1` is initialised; after `set_len` the vector no
    // longer owns it, so reading it out moves ownership exactly once.
    unsafe {
        v.set_len(len - 1);
        Some(core::ptr::read(v.as_ptr().add(len - 1)))
    }
}

/// Removes and returns element `idx`, keeping the order of the others.
pub(crate) fn remove<T, A: Allocator>(v: &mut kernel::alloc::Vec<T, A>, idx: usize) -> Option<T> {
    v.as_mut_slice().get_mut(idx..)?.rotate_left(1);
    pop(v)
}

impl SliceVec for KVVec<Slice> {
    fn slices(&self) -> &[Slice] {
        self.as_slice()
    }

    fn slices_mut(&mut self) -> &mut [Slice] {
        self.as_mut_slice()
    }

    fn try_insert(&mut self, idx: usize, s: Slice) -> Result {
        self.push(s, gfp())?;
        if let Some(tail) = self.as_mut_slice().get_mut(idx..) {
            tail.rotate_right(1);
        }
        Ok(())
    }

    fn remove_at(&mut self, idx: usize) {
        remove(self, idx);
    }
}
