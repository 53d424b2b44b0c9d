//! The ABI's flag and item-type constants as `u64` (bindgen renders the
//! enums with their C integer types; every field they go into is a `u64`).

#![allow(clippy::unnecessary_cast)] // c_ulong is not u64 everywhere

use kdbus_uapi as uapi;

/// `KDBUS_ITEM_NEGOTIATE`.
pub const ITEM_NEGOTIATE: u64 = uapi::KDBUS_ITEM_NEGOTIATE as u64;
/// `KDBUS_ITEM_PAYLOAD_VEC`.
pub const ITEM_PAYLOAD_VEC: u64 = uapi::KDBUS_ITEM_PAYLOAD_VEC as u64;
/// `KDBUS_ITEM_PAYLOAD_OFF`.
pub const ITEM_PAYLOAD_OFF: u64 = uapi::KDBUS_ITEM_PAYLOAD_OFF as u64;
/// `KDBUS_ITEM_PAYLOAD_MEMFD`.
pub const ITEM_PAYLOAD_MEMFD: u64 = uapi::KDBUS_ITEM_PAYLOAD_MEMFD as u64;
/// `KDBUS_ITEM_FDS`.
pub const ITEM_FDS: u64 = uapi::KDBUS_ITEM_FDS as u64;
/// `KDBUS_ITEM_CANCEL_FD`.
pub const ITEM_CANCEL_FD: u64 = uapi::KDBUS_ITEM_CANCEL_FD as u64;
/// `KDBUS_ITEM_BLOOM_PARAMETER`.
pub const ITEM_BLOOM_PARAMETER: u64 = uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64;
/// `KDBUS_ITEM_BLOOM_FILTER`.
pub const ITEM_BLOOM_FILTER: u64 = uapi::KDBUS_ITEM_BLOOM_FILTER as u64;
/// `KDBUS_ITEM_BLOOM_MASK`.
pub const ITEM_BLOOM_MASK: u64 = uapi::KDBUS_ITEM_BLOOM_MASK as u64;
/// `KDBUS_ITEM_DST_NAME`.
pub const ITEM_DST_NAME: u64 = uapi::KDBUS_ITEM_DST_NAME as u64;
/// `KDBUS_ITEM_MAKE_NAME`.
pub const ITEM_MAKE_NAME: u64 = uapi::KDBUS_ITEM_MAKE_NAME as u64;
/// `KDBUS_ITEM_ATTACH_FLAGS_SEND`.
pub const ITEM_ATTACH_FLAGS_SEND: u64 = uapi::KDBUS_ITEM_ATTACH_FLAGS_SEND as u64;
/// `KDBUS_ITEM_ATTACH_FLAGS_RECV`.
pub const ITEM_ATTACH_FLAGS_RECV: u64 = uapi::KDBUS_ITEM_ATTACH_FLAGS_RECV as u64;
/// `KDBUS_ITEM_ID`.
pub const ITEM_ID: u64 = uapi::KDBUS_ITEM_ID as u64;
/// `KDBUS_ITEM_NAME`.
pub const ITEM_NAME: u64 = uapi::KDBUS_ITEM_NAME as u64;
/// `KDBUS_ITEM_DST_ID`.
pub const ITEM_DST_ID: u64 = uapi::KDBUS_ITEM_DST_ID as u64;
/// `KDBUS_ITEM_TIMESTAMP`.
pub const ITEM_TIMESTAMP: u64 = uapi::KDBUS_ITEM_TIMESTAMP as u64;
/// `KDBUS_ITEM_CREDS`.
pub const ITEM_CREDS: u64 = uapi::KDBUS_ITEM_CREDS as u64;
/// `KDBUS_ITEM_PIDS`.
pub const ITEM_PIDS: u64 = uapi::KDBUS_ITEM_PIDS as u64;
/// `KDBUS_ITEM_OWNED_NAME`.
pub const ITEM_OWNED_NAME: u64 = uapi::KDBUS_ITEM_OWNED_NAME as u64;
/// `KDBUS_ITEM_CONN_DESCRIPTION`.
pub const ITEM_CONN_DESCRIPTION: u64 = uapi::KDBUS_ITEM_CONN_DESCRIPTION as u64;
/// `KDBUS_ITEM_POLICY_ACCESS`.
pub const ITEM_POLICY_ACCESS: u64 = uapi::KDBUS_ITEM_POLICY_ACCESS as u64;
/// `KDBUS_ITEM_NAME_ADD`.
pub const ITEM_NAME_ADD: u64 = uapi::KDBUS_ITEM_NAME_ADD as u64;
/// `KDBUS_ITEM_NAME_REMOVE`.
pub const ITEM_NAME_REMOVE: u64 = uapi::KDBUS_ITEM_NAME_REMOVE as u64;
/// `KDBUS_ITEM_NAME_CHANGE`.
pub const ITEM_NAME_CHANGE: u64 = uapi::KDBUS_ITEM_NAME_CHANGE as u64;
/// `KDBUS_ITEM_ID_ADD`.
pub const ITEM_ID_ADD: u64 = uapi::KDBUS_ITEM_ID_ADD as u64;
/// `KDBUS_ITEM_ID_REMOVE`.
pub const ITEM_ID_REMOVE: u64 = uapi::KDBUS_ITEM_ID_REMOVE as u64;
/// `KDBUS_ITEM_REPLY_TIMEOUT`.
pub const ITEM_REPLY_TIMEOUT: u64 = uapi::KDBUS_ITEM_REPLY_TIMEOUT as u64;
/// `KDBUS_ITEM_REPLY_DEAD`.
pub const ITEM_REPLY_DEAD: u64 = uapi::KDBUS_ITEM_REPLY_DEAD as u64;

/// `KDBUS_MSG_EXPECT_REPLY`.
pub const MSG_EXPECT_REPLY: u64 = uapi::KDBUS_MSG_EXPECT_REPLY as u64;
/// `KDBUS_MSG_NO_AUTO_START`.
pub const MSG_NO_AUTO_START: u64 = uapi::KDBUS_MSG_NO_AUTO_START as u64;
/// `KDBUS_MSG_SIGNAL`.
pub const MSG_SIGNAL: u64 = uapi::KDBUS_MSG_SIGNAL as u64;

/// `KDBUS_PAYLOAD_KERNEL` (0, reserved for kernel notifications).
pub const PAYLOAD_KERNEL: u64 = uapi::KDBUS_PAYLOAD_KERNEL as u64;
/// `KDBUS_PAYLOAD_DBUS` ("DBusDBus").
pub const PAYLOAD_DBUS: u64 = uapi::KDBUS_PAYLOAD_DBUS as u64;

/// `KDBUS_SEND_SYNC_REPLY`.
pub const SEND_SYNC_REPLY: u64 = uapi::KDBUS_SEND_SYNC_REPLY as u64;

/// `KDBUS_RECV_PEEK`.
pub const RECV_PEEK: u64 = uapi::KDBUS_RECV_PEEK as u64;
/// `KDBUS_RECV_DROP`.
pub const RECV_DROP: u64 = uapi::KDBUS_RECV_DROP as u64;
/// `KDBUS_RECV_USE_PRIORITY`.
pub const RECV_USE_PRIORITY: u64 = uapi::KDBUS_RECV_USE_PRIORITY as u64;
/// `KDBUS_RECV_RETURN_INCOMPLETE_FDS`.
pub const RECV_RETURN_INCOMPLETE_FDS: u64 = uapi::KDBUS_RECV_RETURN_INCOMPLETE_FDS as u64;
/// `KDBUS_RECV_RETURN_DROPPED_MSGS`.
pub const RECV_RETURN_DROPPED_MSGS: u64 = uapi::KDBUS_RECV_RETURN_DROPPED_MSGS as u64;

/// `KDBUS_HELLO_ACCEPT_FD`.
pub const HELLO_ACCEPT_FD: u64 = uapi::KDBUS_HELLO_ACCEPT_FD as u64;
/// `KDBUS_HELLO_ACTIVATOR`.
pub const HELLO_ACTIVATOR: u64 = uapi::KDBUS_HELLO_ACTIVATOR as u64;
/// `KDBUS_HELLO_POLICY_HOLDER`.
pub const HELLO_POLICY_HOLDER: u64 = uapi::KDBUS_HELLO_POLICY_HOLDER as u64;
/// `KDBUS_HELLO_MONITOR`.
pub const HELLO_MONITOR: u64 = uapi::KDBUS_HELLO_MONITOR as u64;

/// `KDBUS_LIST_UNIQUE`.
pub const LIST_UNIQUE: u64 = uapi::KDBUS_LIST_UNIQUE as u64;
/// `KDBUS_LIST_NAMES`.
pub const LIST_NAMES: u64 = uapi::KDBUS_LIST_NAMES as u64;
/// `KDBUS_LIST_ACTIVATORS`.
pub const LIST_ACTIVATORS: u64 = uapi::KDBUS_LIST_ACTIVATORS as u64;
/// `KDBUS_LIST_QUEUED`.
pub const LIST_QUEUED: u64 = uapi::KDBUS_LIST_QUEUED as u64;

/// `KDBUS_NAME_REPLACE_EXISTING` (acquire request flag, never stored).
pub const NAME_REPLACE_EXISTING: u64 = uapi::KDBUS_NAME_REPLACE_EXISTING as u64;
/// `KDBUS_NAME_ALLOW_REPLACEMENT` (acquire request flag, stored).
pub const NAME_ALLOW_REPLACEMENT: u64 = uapi::KDBUS_NAME_ALLOW_REPLACEMENT as u64;
/// `KDBUS_NAME_QUEUE` (acquire request flag, stored).
pub const NAME_QUEUE: u64 = uapi::KDBUS_NAME_QUEUE as u64;
/// `KDBUS_NAME_IN_QUEUE` (state: waiting in the queue).
pub const NAME_IN_QUEUE: u64 = uapi::KDBUS_NAME_IN_QUEUE as u64;
/// `KDBUS_NAME_ACTIVATOR` (state: the name's activator).
pub const NAME_ACTIVATOR: u64 = uapi::KDBUS_NAME_ACTIVATOR as u64;
/// `KDBUS_NAME_PRIMARY` (state: current owner).
pub const NAME_PRIMARY: u64 = uapi::KDBUS_NAME_PRIMARY as u64;
/// `KDBUS_NAME_ACQUIRED` (return only: newly acquired or newly queued).
pub const NAME_ACQUIRED: u64 = uapi::KDBUS_NAME_ACQUIRED as u64;

/// `KDBUS_POLICY_ACCESS_USER` (a `kdbus_policy_access.type`).
pub const POLICY_ACCESS_USER: u64 = uapi::KDBUS_POLICY_ACCESS_USER as u64;
/// `KDBUS_POLICY_ACCESS_GROUP`.
pub const POLICY_ACCESS_GROUP: u64 = uapi::KDBUS_POLICY_ACCESS_GROUP as u64;
/// `KDBUS_POLICY_ACCESS_WORLD`.
pub const POLICY_ACCESS_WORLD: u64 = uapi::KDBUS_POLICY_ACCESS_WORLD as u64;
/// `KDBUS_POLICY_SEE` (a `kdbus_policy_access.access` level).
pub const POLICY_SEE: u64 = uapi::KDBUS_POLICY_SEE as u64;
/// `KDBUS_POLICY_TALK`.
pub const POLICY_TALK: u64 = uapi::KDBUS_POLICY_TALK as u64;
/// `KDBUS_POLICY_OWN`.
pub const POLICY_OWN: u64 = uapi::KDBUS_POLICY_OWN as u64;

/// `KDBUS_MATCH_REPLACE`.
pub const MATCH_REPLACE: u64 = uapi::KDBUS_MATCH_REPLACE as u64;

/// `KDBUS_ATTACH_TIMESTAMP`.
pub const ATTACH_TIMESTAMP: u64 = uapi::KDBUS_ATTACH_TIMESTAMP as u64;
/// `KDBUS_ATTACH_CREDS`.
pub const ATTACH_CREDS: u64 = uapi::KDBUS_ATTACH_CREDS as u64;
/// `KDBUS_ATTACH_NAMES` (OWNED_NAME metadata items).
pub const ATTACH_NAMES: u64 = uapi::KDBUS_ATTACH_NAMES as u64;

/// `KDBUS_MAKE_ACCESS_GROUP`.
pub const MAKE_ACCESS_GROUP: u64 = uapi::KDBUS_MAKE_ACCESS_GROUP as u64;
/// `KDBUS_MAKE_ACCESS_WORLD`.
pub const MAKE_ACCESS_WORLD: u64 = uapi::KDBUS_MAKE_ACCESS_WORLD as u64;

/// The four seals a memfd must carry to be sent (`F_SEAL_SHRINK |
/// F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL`, message.md 4).
pub const MEMFD_SEALS: i32 =
    libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(ITEM_PAYLOAD_VEC, 2);
        assert_eq!(ITEM_PAYLOAD_OFF, 3);
        assert_eq!(ITEM_FDS, 5);
        assert_eq!(ITEM_DST_NAME, 10);
        assert_eq!(ITEM_TIMESTAMP, 0x1000);
        assert_eq!(ITEM_REPLY_TIMEOUT, 0x8005);
        assert_eq!(ITEM_REPLY_DEAD, 0x8006);
        assert_eq!(PAYLOAD_DBUS, 0x4442_7573_4442_7573);
        assert_eq!(MSG_SIGNAL, 4);
        assert_eq!(RECV_USE_PRIORITY, 4);
        assert_eq!(RECV_RETURN_DROPPED_MSGS, 2);
        assert_eq!(LIST_QUEUED, 8);
        assert_eq!(MEMFD_SEALS, 0xf);
        assert_eq!(ITEM_NAME_ADD, 0x8000);
        assert_eq!(ITEM_NAME_REMOVE, 0x8001);
        assert_eq!(ITEM_NAME_CHANGE, 0x8002);
        assert_eq!(ITEM_ID_ADD, 0x8003);
        assert_eq!(ITEM_ID_REMOVE, 0x8004);
        assert_eq!(ITEM_OWNED_NAME, 0x1004);
        assert_eq!(ITEM_BLOOM_MASK, 9);
        assert_eq!(ITEM_ID, 14);
        assert_eq!(ITEM_DST_ID, 16);
        assert_eq!(
            [
                NAME_REPLACE_EXISTING,
                NAME_ALLOW_REPLACEMENT,
                NAME_QUEUE,
                NAME_IN_QUEUE,
                NAME_ACTIVATOR,
                NAME_PRIMARY,
                NAME_ACQUIRED
            ],
            [1, 2, 4, 8, 0x10, 0x20, 0x40]
        );
        assert_eq!(MATCH_REPLACE, 1);
        assert_eq!(
            [POLICY_ACCESS_USER, POLICY_ACCESS_GROUP, POLICY_ACCESS_WORLD],
            [1, 2, 3]
        );
        assert_eq!([POLICY_SEE, POLICY_TALK, POLICY_OWN], [0, 1, 2]);
        assert_eq!(ATTACH_NAMES, 1 << 4);
    }
}
