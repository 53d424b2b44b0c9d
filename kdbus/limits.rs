// SPDX-License-Identifier: GPL-2.0

//! Limits of the kdbus ABI (spec: limits-and-errors.md). Pure.

/// Maximum `size` of a command struct or message (`EMSGSIZE` above).
pub const CMD_MAX_SIZE: u64 = 32768;
/// Maximum bloom filter size in bytes at BUS_MAKE.
pub const BUS_BLOOM_MAX_SIZE: u64 = 4096;
/// Maximum characters of a bus, endpoint or connection-description name.
pub const SYSNAME_MAX_LEN: usize = 63;
/// Maximum characters of a well-known name.
pub const NAME_MAX_LEN: usize = 255;
/// Buses per real UID per domain (`EMFILE` above).
pub const USER_MAX_BUSES: u32 = 16;
/// Connections per accounting user per domain (`EMFILE` above).
pub const USER_MAX_CONN: u32 = 1024;
