//! The seeded random number generator every decision is drawn from.
//!
//! One generator per fuzz thread, seeded from the run's seed, the process
//! index and the thread index ([`derive`]), so a seed replays the same
//! per-thread decision sequences (as far as the kernel's answers, which
//! depend on scheduling, let the state evolve the same way).

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// SplitMix64 finaliser: a good bijective mix of one word.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of stream `(a, b)` of a run with seed `seed` (e.g. process
/// and thread index).
pub fn derive(seed: u64, a: u64, b: u64) -> u64 {
    mix(mix(mix(seed) ^ a.wrapping_mul(0x100_0000_01b3)) ^ b)
}

/// A small, portable, seedable PRNG (PCG 64/128 MCG) with the helpers the
/// generators need.
#[derive(Clone, Debug)]
pub struct Rng(Pcg64Mcg);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(Pcg64Mcg::seed_from_u64(seed))
    }

    /// A uniformly random `u64`.
    pub fn u64(&mut self) -> u64 {
        self.0.random()
    }

    /// A uniformly random value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        self.0.random_range(0..n)
    }

    /// A uniformly random index into a collection of `n > 0` elements.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A uniformly random value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.random_range(lo..=hi)
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u32) -> bool {
        self.below(100) < u64::from(percent)
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.index(xs.len())]
    }

    /// An index chosen with the given relative weights (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        unreachable!("weights sum to {total}")
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.0.random::<u8>()).collect()
    }

    /// A random subset of the bits of `mask`.
    pub fn subset(&mut self, mask: u64) -> u64 {
        mask & self.u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xa: Vec<u64> = (0..100).map(|_| a.u64()).collect();
        let xb: Vec<u64> = (0..100).map(|_| b.u64()).collect();
        assert_eq!(xa, xb);
        let mut c = Rng::new(43);
        let xc: Vec<u64> = (0..100).map(|_| c.u64()).collect();
        assert_ne!(xa, xc);
    }

    #[test]
    fn derived_streams_differ() {
        assert_eq!(derive(1, 2, 3), derive(1, 2, 3));
        assert_ne!(derive(1, 0, 1), derive(1, 1, 0));
        assert_ne!(derive(1, 0, 0), derive(2, 0, 0));
    }

    #[test]
    fn helpers_stay_in_range() {
        let mut r = Rng::new(7);
        for _ in 0..1000 {
            assert!(r.below(5) < 5);
            let v = r.range(10, 12);
            assert!((10..=12).contains(&v));
            assert_eq!(r.subset(0xf0) & !0xf0, 0);
            let w = r.weighted(&[0, 3, 0, 1]);
            assert!(w == 1 || w == 3);
        }
    }
}
