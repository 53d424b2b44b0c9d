// SPDX-License-Identifier: GPL-2.0

//! The few vector operations 6.12's `KVec` lacks (`pop`, ordered `remove`),
//! and the slice allocator's storage.

use crate::errno::Result;
use crate::slices::{Slice, SliceVec};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Removes and returns the last element.
pub(crate) fn pop<T>(v: &mut KVec<T>) -> Option<T> {
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
pub(crate) fn remove<T>(v: &mut KVec<T>, idx: usize) -> Option<T> {
    v.as_mut_slice().get_mut(idx..)?.rotate_left(1);
    pop(v)
}

/// Removes `item` (by identity) from a vector of `Arc`s, keeping the order;
/// returns it so the caller can drop it outside its lock.
pub(crate) fn remove_arc<T>(v: &mut KVec<Arc<T>>, item: &T) -> Option<Arc<T>> {
    let i = v.iter().position(|x| core::ptr::eq(&**x, item))?;
    remove(v, i)
}

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
        remove(self, idx);
    }
}
