// SPDX-License-Identifier: GPL-2.0

//! The pool's slice allocator (spec: pool.md 2). Pure.
//!
//! Slices are kept sorted by offset and always cover the whole pool. The
//! storage is any [`SliceVec`]: a `KVec` in the module, a `Vec` in tests.
//! Operations are linear in the number of slices; pools hold few live slices
//! because userspace frees what it has read.

use crate::proto::errno::{Result, ENXIO, EXFULL};
use crate::proto::limits::POOL_MAX_SLICES;

/// One contiguous region of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slice {
    /// Byte offset from the start of the pool (multiple of 8).
    pub offset: u64,
    /// Size in bytes (multiple of 8).
    pub size: u64,
    /// The slice is allocated.
    pub busy: bool,
    /// The kernel still needs the slice (queued message, result being built).
    pub kref: bool,
    /// The slice was published to userspace and not yet freed.
    pub uref: bool,
    /// The slice counts against receive quotas.
    pub accounted: bool,
}

/// Fallible, growable storage for slices.
pub trait SliceVec {
    /// The slices, sorted by offset.
    fn slices(&self) -> &[Slice];
    /// The slices, mutable.
    fn slices_mut(&mut self) -> &mut [Slice];
    /// Inserts `s` at `idx`, shifting later slices; fails only on allocation.
    fn try_insert(&mut self, idx: usize, s: Slice) -> Result;
    /// Removes the slice at `idx` (which exists).
    fn remove_at(&mut self, idx: usize);
}

/// The allocator of one pool.
#[derive(Debug)]
pub struct Allocator<V: SliceVec> {
    size: u64,
    slices: V,
    accounted: u64,
    /// At most this many slices (free ones included) exist at once.
    max_slices: usize,
}

impl<V: SliceVec> Allocator<V> {
    /// An allocator for a pool of `size` bytes (a multiple of 8, non-zero),
    /// using `empty` storage, holding at most [`POOL_MAX_SLICES`] slices.
    pub fn new(size: u64, empty: V) -> Result<Self> {
        Self::with_max_slices(size, empty, POOL_MAX_SLICES)
    }

    /// [`Allocator::new`] with another bound on the number of slices (at
    /// least 1): an allocation that would need a split beyond it fails with
    /// `EXFULL`, like one that finds no free region.
    pub fn with_max_slices(size: u64, mut empty: V, max_slices: usize) -> Result<Self> {
        let whole = Slice {
            offset: 0,
            size,
            busy: false,
            kref: false,
            uref: false,
            accounted: false,
        };
        empty.try_insert(0, whole)?;
        Ok(Allocator {
            size,
            slices: empty,
            accounted: 0,
            max_slices: max_slices.max(1),
        })
    }

    /// Total pool size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sum of the sizes of accounted slices still held by the kernel.
    pub fn accounted(&self) -> u64 {
        self.accounted
    }

    /// The bound on the number of slices.
    pub fn max_slices(&self) -> usize {
        self.max_slices
    }

    /// All slices, sorted by offset.
    pub fn slices(&self) -> &[Slice] {
        self.slices.slices()
    }

    /// Allocates a slice of at least `size` bytes (rounded up to 8), held by
    /// the kernel: the smallest free slice that fits, its head used and the
    /// rest split off. Returns the offset and the rounded size.
    pub fn alloc(&mut self, size: u64, accounted: bool) -> Result<(u64, u64)> {
        let size = size.checked_add(7).ok_or(EXFULL)? & !7;
        if size == 0 {
            return Err(EXFULL);
        }
        let mut best: Option<usize> = None;
        for (i, s) in self.slices.slices().iter().enumerate() {
            if !s.busy && s.size >= size {
                match best {
                    Some(b) if self.slices.slices()[b].size <= s.size => {}
                    _ => best = Some(i),
                }
            }
        }
        let idx = best.ok_or(EXFULL)?;
        let free = self.slices.slices()[idx];
        if free.size > size {
            if self.slices.slices().len() >= self.max_slices {
                return Err(EXFULL);
            }
            let rest = Slice {
                offset: free.offset + size,
                size: free.size - size,
                ..free
            };
            self.slices.try_insert(idx + 1, rest)?;
        }
        self.slices.slices_mut()[idx] = Slice {
            offset: free.offset,
            size,
            busy: true,
            kref: true,
            uref: false,
            accounted,
        };
        if accounted {
            self.accounted += size;
        }
        Ok((free.offset, size))
    }

    fn find_busy(&self, offset: u64) -> Option<usize> {
        let slices = self.slices.slices();
        let idx = slices.binary_search_by_key(&offset, |s| s.offset).ok()?;
        if slices[idx].busy {
            Some(idx)
        } else {
            None
        }
    }

    /// Publishes the busy slice at `offset` to userspace (sets its user
    /// reference); with `drop_kref` the kernel lets go of it at once.
    pub fn publish(&mut self, offset: u64, drop_kref: bool) -> Result {
        let idx = self.find_busy(offset).ok_or(ENXIO)?;
        self.slices.slices_mut()[idx].uref = true;
        if drop_kref {
            self.release_kernel(offset)?;
        }
        Ok(())
    }

    /// Drops the kernel reference of the slice at `offset`; frees it when
    /// userspace holds none.
    pub fn release_kernel(&mut self, offset: u64) -> Result {
        let idx = self.find_busy(offset).ok_or(ENXIO)?;
        let s = &mut self.slices.slices_mut()[idx];
        if s.kref && s.accounted {
            self.accounted -= s.size;
        }
        s.kref = false;
        s.accounted = false;
        if !s.uref {
            self.free_at(idx);
        }
        Ok(())
    }

    /// KDBUS_CMD_FREE: drops the user reference of the slice starting at
    /// `offset`; `ENXIO` unless such a published slice exists.
    pub fn free_user(&mut self, offset: u64) -> Result {
        let idx = self.find_busy(offset).ok_or(ENXIO)?;
        let s = &mut self.slices.slices_mut()[idx];
        if !s.uref {
            return Err(ENXIO);
        }
        s.uref = false;
        if !s.kref {
            self.free_at(idx);
        }
        Ok(())
    }

    /// Marks slice `idx` free and merges it with free neighbours.
    fn free_at(&mut self, mut idx: usize) {
        {
            let s = &mut self.slices.slices_mut()[idx];
            s.busy = false;
            s.kref = false;
            s.uref = false;
            s.accounted = false;
        }
        if idx + 1 < self.slices.slices().len() && !self.slices.slices()[idx + 1].busy {
            let next = self.slices.slices()[idx + 1].size;
            self.slices.slices_mut()[idx].size += next;
            self.slices.remove_at(idx + 1);
        }
        if idx > 0 && !self.slices.slices()[idx - 1].busy {
            let cur = self.slices.slices()[idx].size;
            self.slices.slices_mut()[idx - 1].size += cur;
            self.slices.remove_at(idx);
            idx -= 1;
        }
        let _ = idx;
    }
}
