// SPDX-License-Identifier: GPL-2.0

//! Keyed hashing of strings (the kernel's SipHash), for hash tables whose
//! keys userspace chooses: with a random key per table, nobody can make
//! their keys collide on purpose.

use super::bindings;
use super::random;

/// A random SipHash key.
pub(crate) struct HashKey(bindings::siphash_key_t);

impl HashKey {
    /// A new random key.
    pub(crate) fn random() -> Self {
        let mut b = [0u8; 16];
        random::fill(&mut b);
        let mut k = [0u64; 2];
        for (w, c) in k.iter_mut().zip(b.chunks_exact(8)) {
            let mut x = [0u8; 8];
            x.copy_from_slice(c);
            *w = u64::from_ne_bytes(x);
        }
        HashKey(bindings::siphash_key_t { key: k })
    }

    /// SipHash-2-4 of `data` under this key.
    pub(crate) fn hash(&self, data: &[u8]) -> u64 {
        // SAFETY: `data` is readable for its length; the key is initialised.
        unsafe { bindings::__siphash_unaligned(data.as_ptr().cast(), data.len(), &self.0) }
    }
}
