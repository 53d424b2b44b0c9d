//! The bound on the number of slices a pool holds (limits::POOL_MAX_SLICES):
//! the allocator never exceeds it, fails only with EXFULL, and only when no
//! free slice fits exactly and a split would pass the bound (or nothing
//! fits at all).

use kdbus_proto::errno::EXFULL;
use kdbus_proto::limits::POOL_MAX_SLICES;
use kdbus_proto::slices::{Allocator, Slice, SliceVec};
use proptest::prelude::*;

#[derive(Debug, Default)]
struct Store(Vec<Slice>);

impl SliceVec for Store {
    fn slices(&self) -> &[Slice] {
        &self.0
    }
    fn slices_mut(&mut self) -> &mut [Slice] {
        &mut self.0
    }
    fn try_insert(&mut self, idx: usize, s: Slice) -> kdbus_proto::errno::Result {
        self.0.insert(idx, s);
        Ok(())
    }
    fn remove_at(&mut self, idx: usize) {
        self.0.remove(idx);
    }
}

proptest! {
    #[test]
    fn slice_count_is_bounded(
        max in 1usize..12,
        ops in proptest::collection::vec((any::<bool>(), 1u64..600), 1..120),
    ) {
        let size = 4096;
        let mut a = Allocator::with_max_slices(size, Store::default(), max).unwrap();
        let mut live: Vec<u64> = Vec::new();
        for (alloc, n) in ops {
            if alloc || live.is_empty() {
                let want = (n + 7) & !7;
                let exact = a.slices().iter().any(|s| !s.busy && s.size == want);
                let fits = a.slices().iter().any(|s| !s.busy && s.size >= want);
                let full = a.slices().len() >= max;
                match a.alloc(n, true) {
                    Ok((off, _)) => {
                        prop_assert!(fits);
                        prop_assert!(exact || !full, "split past the bound");
                        live.push(off);
                    }
                    Err(e) => {
                        prop_assert_eq!(e, EXFULL);
                        prop_assert!(!fits || (full && !exact));
                    }
                }
            } else {
                let off = live.remove(n as usize % live.len());
                a.publish(off, true).unwrap();
                a.free_user(off).unwrap();
            }
            prop_assert!(a.slices().len() <= max);
        }
        for off in live {
            a.publish(off, true).unwrap();
            a.free_user(off).unwrap();
        }
        prop_assert_eq!(a.slices().len(), 1);
    }
}

#[test]
fn default_bound_is_the_limit() {
    let a = Allocator::new(4096, Store::default()).unwrap();
    assert_eq!(a.max_slices(), POOL_MAX_SLICES);
    // A connection that never frees small results hits the bound, not the
    // allocator of the kernel: EXFULL after POOL_MAX_SLICES - 1 results
    // (the last slice is the free rest).
    let mut a = Allocator::with_max_slices(1 << 20, Store::default(), 100).unwrap();
    let mut n = 0;
    while a.alloc(32, false).is_ok() {
        n += 1;
    }
    assert_eq!(n, 99);
    assert_eq!(a.alloc(32, false), Err(EXFULL));
}
