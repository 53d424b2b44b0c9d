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
/// Sum of all PAYLOAD_VEC sizes of one message (`EMSGSIZE` above).
pub const MSG_MAX_PAYLOAD_VEC_SIZE: u64 = 2 * 1024 * 1024;
/// PAYLOAD_MEMFD items per message (`E2BIG` above).
pub const MSG_MAX_MEMFD_ITEMS: usize = 16;
/// FDs in one message, and queued at one receiver per sending user.
pub const CONN_MAX_FDS_PER_USER: usize = 16;
/// Messages queued at one receiver per sending user (`ENOBUFS` above).
pub const CONN_MAX_MSGS: u32 = 256;
/// Outstanding calls per calling connection (`EMLINK` above).
pub const CONN_MAX_REQUESTS_PENDING: usize = 128;
/// Slices one pool may hold at once (free ones included). Not an upstream
/// limit: it bounds the kernel memory a connection can pin by never freeing
/// what it received (each slice is a kernel record). Allocation beyond it
/// fails like a full pool, with `EXFULL`.
pub const POOL_MAX_SLICES: usize = 16384;
/// Name records (owned, queued, activator) per connection (`E2BIG` above).
pub const CONN_MAX_NAMES: usize = 256;
/// Match entries per connection (`EMFILE` above).
pub const MATCH_MAX: usize = 256;
