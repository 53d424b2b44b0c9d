// SPDX-License-Identifier: GPL-2.0

//! Bloom parameters of a bus (spec: bus.md 4). Pure.

use crate::proto::errno::{Result, EINVAL};
use crate::proto::limits::BUS_BLOOM_MAX_SIZE;

/// The bus-wide bloom parameters, handed back verbatim at HELLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BloomParams {
    /// Filter size in bytes: a multiple of 8 in 8..=4096.
    pub size: u64,
    /// Number of hash functions; never interpreted by the kernel.
    pub n_hash: u64,
}

impl BloomParams {
    /// Validates the parameters of a BUS_MAKE.
    pub fn new(size: u64, n_hash: u64) -> Result<Self> {
        if !(8..=BUS_BLOOM_MAX_SIZE).contains(&size) || size % 8 != 0 || n_hash < 1 {
            return Err(EINVAL);
        }
        Ok(BloomParams { size, n_hash })
    }
}
