//! Safe userspace wrappers over the kdbus ABI (`linux/kdbus.h`).
//!
//! * [`CmdBuf`] builds any command struct with an arbitrary item stream in
//!   an 8-byte aligned buffer; [`ItemIter`] walks item streams the kernel
//!   wrote (abi.md section 5).
//! * [`ioctl`] issues a kdbus ioctl on such a buffer and returns the errno
//!   (also for deliberately malformed commands); [`ioctl_ptr`] takes any
//!   pointer (e.g. a misaligned one).
//! * [`Control`], [`BusMaker`] / [`make_bus`] and [`Bus`] create buses;
//!   dropping a [`Bus`] closes the owner handle, which tears the bus down.
//! * [`Connection::hello`] connects to an endpoint and maps the receive pool
//!   read-only; [`Mmap`] is the mapping type, usable on any descriptor.
//! * [`MsgBuilder`] builds a `kdbus_msg` (header fields, vectors, memfds,
//!   FDs, names, bloom filters, raw items) and predicts its delivered
//!   [`Layout`]; [`Connection::send`] / [`Connection::send_sync`] /
//!   [`Connection::recv`] move messages and [`Message`] parses a delivered
//!   one in the pool. [`Connection::conn_info`],
//!   [`Connection::bus_creator_info`], [`Connection::list`] (results parsed
//!   as [`InfoRecord`]s) and [`Connection::update`] wrap the other
//!   connection commands; every command also has a raw form taking a
//!   [`CmdBuf`]. [`consts`] has the ABI flags and item types as `u64`.
//! * Names (names.md): [`Connection::name_acquire`] (returns the kernel's
//!   `return_flags`), [`Connection::name_release`],
//!   [`Connection::list_records`] (LIST copied out and FREEd); name records
//!   carry their `KDBUS_ITEM_OWNED_NAME` as [`OwnedName`]
//!   ([`InfoRecord::owned_name`], also [`Message::owned_names`] for
//!   metadata); [`valid_name`] checks the syntax.
//! * Bloom filters (bloom-interop.md, match.md 5-6), module [`bloom`]:
//!   [`BloomParams`] (a bus's size and n_hash), [`Bloom`] (a bit array with
//!   [`Bloom::add`]), [`SignalFilter`] (what a sender adds, with the
//!   recommended or the sd-bus [`ArgWalk`]), [`RuleMask`] (what a receiver
//!   puts in its mask for a match rule), [`BloomFilter`] (with its
//!   generation) and [`BloomMask`] (several generations), and the kernel's
//!   rule as the pure [`bloom_matches`] / [`bloom_matches_raw`]. Everything
//!   is byte-compatible with sd-bus's filters (SipHash-2-4 with the eight
//!   fixed keys of [`bloom::HASH_KEYS`]).
//! * Matches (match.md): [`MatchRule`] builds a MATCH_ADD (cookie,
//!   REPLACE, BLOOM_MASK, NAME, ID, DST_ID, NAME_ADD/REMOVE/CHANGE,
//!   ID_ADD/REMOVE); [`Connection::match_add`] / [`Connection::match_remove`].
//! * Broadcasts and notifications (message.md 9, 12):
//!   [`MsgBuilder::broadcast`] / [`MsgBuilder::signal`] /
//!   [`MsgBuilder::bloom`] attach a [`BloomFilter`];
//!   [`Message::notification`] parses a kernel notification into a
//!   [`Notification`] (ID_ADD/ID_REMOVE with [`NotifyId`],
//!   NAME_ADD/REMOVE/CHANGE with [`NameChange`], REPLY_TIMEOUT/DEAD).
//! * Policy and custom endpoints (policy.md, endpoint.md): [`Access`] (a
//!   `kdbus_policy_access` rule) and [`PolicyEntry`] (a NAME with its
//!   rules, [`CmdBuf::push_policy`]); [`Connection::hello_policy_holder`],
//!   [`Connection::hello_activator`], [`Connection::update_policy`];
//!   [`Endpoint::make`] (ENDPOINT_MAKE, the endpoint-owner handle) and
//!   [`Endpoint::update`] (ENDPOINT_UPDATE).
//!
//! Every fallible call returns the kernel's [`Errno`]. Raw descriptors stay
//! reachable through `AsFd`/`AsRawFd` for tests that issue ioctls directly.
//! The generated ABI definitions are re-exported as [`uapi`].

#![warn(missing_docs)]

pub mod bloom;
mod bus;
mod cmds;
mod conn;
pub mod consts;
mod item;
mod matches;
mod mmap;
pub mod msg;
mod names;
mod notify;
mod policy;

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd};

pub use kdbus_uapi as uapi;
pub use nix::errno::Errno;
pub use nix::poll::{PollFlags, PollTimeout};
pub use nix::sys::mman::{MapFlags, ProtFlags};

pub use bloom::{
    bloom_matches, bloom_matches_raw, ArgWalk, Bloom, BloomArg, BloomFilter, BloomMask,
    BloomParams, MessageType, RuleMask, SignalFilter,
};
pub use bus::{bus_dir, bus_path, make_bus, Bus, BusMaker, Control};
pub use cmds::{
    info_off, list_off, monotonic_ns, realtime_ns, recv_off, send_off, MsgInfo, PoolResult,
    Received, RecvReply, SendReply,
};
pub use conn::{open_endpoint, Connection, HelloReply};
pub use item::{
    align8, checked_align8, item_size_field, item_space, CmdBuf, Item, ItemError, ItemIter,
    CMD_FREE_SIZE, CMD_HELLO_SIZE, CMD_INFO_SIZE, CMD_LIST_SIZE, CMD_MATCH_SIZE, CMD_RECV_SIZE,
    CMD_SEND_SIZE, CMD_SIZE, ITEM_HEADER_SIZE, OFF_FLAGS, OFF_RETURN_FLAGS,
};
pub use matches::{MatchRule, MATCH_OFF_COOKIE};
pub use mmap::Mmap;
pub use msg::{
    InfoRecord, Layout, MemfdItem, Message, MsgBuilder, OwnedItem, ParseError, Payload,
    PayloadPart, Timestamp, MSG_HEADER_SIZE, PAYLOAD_OFF_NULL, TIMESTAMP_ITEM_SIZE,
};
pub use names::{valid_name, OwnedName, NAME_MAX_LEN};
pub use notify::{is_notification_item, NameChange, Notification, NotifyId};
pub use policy::{Access, Endpoint, PolicyEntry};

/// `KDBUS_FLAG_NEGOTIATE` as a `u64` (bindgen renders `1ULL << 63` as `i64`).
pub const FLAG_NEGOTIATE: u64 = uapi::KDBUS_FLAG_NEGOTIATE as u64;
/// `KDBUS_MATCH_ID_ANY` (`~0ULL`) as a `u64`.
pub const MATCH_ID_ANY: u64 = uapi::KDBUS_MATCH_ID_ANY as u64;
/// `KDBUS_DST_ID_BROADCAST` (`~0ULL`) as a `u64`.
pub const DST_ID_BROADCAST: u64 = uapi::KDBUS_DST_ID_BROADCAST as u64;
/// `_KDBUS_ATTACH_ALL` (`0x3fff`).
#[allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere
pub const ATTACH_ALL: u64 = uapi::_KDBUS_ATTACH_ALL as u64;
/// `_KDBUS_ATTACH_ANY` (`~0ULL`), sanitised by the kernel to [`ATTACH_ALL`].
#[allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere
pub const ATTACH_ANY: u64 = uapi::_KDBUS_ATTACH_ANY as u64;
/// `KDBUS_SUPER_MAGIC`: `statfs().f_type` of kdbusfs (fs.md section 1).
pub const SUPER_MAGIC: u64 = 0x4442_7573;

/// Issues the ioctl `request` with the 8-byte aligned buffer `buf` as
/// argument; the kernel reads the command's length from `buf[0]` and may
/// write results back into the buffer.
///
/// This is meant for well-formed and malformed commands alike: anything but
/// a zero return is reported as the errno.
///
/// # Panics
///
/// Panics if `buf` is empty or shorter than its own `size` field claims
/// (the kernel would then read or write past the buffer).
pub fn ioctl(fd: impl AsFd, request: uapi::kdbus_ioctl_type, buf: &mut [u64]) -> Result<(), Errno> {
    assert!(
        !buf.is_empty(),
        "ioctl buffer must hold at least the size field"
    );
    let len = (buf.len() * 8) as u64;
    assert!(
        buf[0] <= len,
        "command size field {} exceeds the {len}-byte buffer",
        buf[0]
    );
    // SAFETY: the pointer is valid for reads and writes of `len` bytes and
    // the kernel accesses at most `size <= len` bytes of it.
    unsafe { ioctl_ptr(fd, request, buf.as_mut_ptr().cast()) }
}

/// Issues the ioctl `request` with an arbitrary argument pointer (e.g. a
/// misaligned one, to test `EFAULT`).
///
/// # Safety
///
/// `arg` must be valid for reads and writes of as many bytes as the kernel
/// may access for this request (the `size` found at `arg`, or nothing if the
/// pointer is rejected up front), or be an address the kernel is expected
/// to refuse without touching user memory.
pub unsafe fn ioctl_ptr(
    fd: impl AsFd,
    request: uapi::kdbus_ioctl_type,
    arg: *mut c_void,
) -> Result<(), Errno> {
    // SAFETY: forwarded to the caller; the fd is borrowed for the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), request as libc::Ioctl, arg) };
    Errno::result(ret).map(drop)
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as usize
    } else {
        4096
    }
}

/// Polls one descriptor once without blocking (or up to `timeout_ms`) and
/// returns the reported events (empty if nothing is ready).
pub fn poll_once(fd: impl AsFd, events: PollFlags, timeout_ms: u16) -> Result<PollFlags, Errno> {
    let mut fds = [nix::poll::PollFd::new(fd.as_fd(), events)];
    nix::poll::poll(&mut fds, PollTimeout::from(timeout_ms))?;
    Ok(fds[0].revents().unwrap_or(PollFlags::empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants() {
        assert_eq!(FLAG_NEGOTIATE, 1 << 63);
        assert_eq!(MATCH_ID_ANY, u64::MAX);
        assert_eq!(DST_ID_BROADCAST, u64::MAX);
        assert_eq!(ATTACH_ALL, 0x3fff);
        assert_eq!(ATTACH_ANY, u64::MAX);
        assert_eq!(uapi::KDBUS_CMD_BUS_MAKE, 0x4018_9500);
        assert_eq!(uapi::KDBUS_CMD_HELLO, 0xc060_9580);
        assert_eq!(uapi::KDBUS_CMD_FREE, 0x4020_9583);
        assert!(page_size() >= 4096);
    }

    #[test]
    fn ioctl_errno_on_non_kdbus_fd() {
        // /dev/null knows no kdbus ioctl: ENOTTY, and the buffer is intact.
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut b = CmdBuf::cmd(0);
        let before = b.clone();
        assert_eq!(
            ioctl(&f, uapi::KDBUS_CMD_BYEBYE, b.words_mut()),
            Err(Errno::ENOTTY)
        );
        assert_eq!(b, before);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn ioctl_refuses_short_buffer() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut b = CmdBuf::cmd(0);
        b.set_size(1000);
        let _ = ioctl(&f, uapi::KDBUS_CMD_BYEBYE, b.words_mut());
    }
}
