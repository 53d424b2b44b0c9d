//! The generated ABI checked against the numbers of the spec (abi.md 1-7, 13):
//! every struct size and field offset, every ioctl number and every constant.
//! If the header drifts from the historic ABI, this fails.

// Casts keep the table uniform across enum types whose C width varies.
#![allow(clippy::unnecessary_cast)]

use core::mem::{align_of, offset_of, size_of};
use kdbus_uapi::*;

macro_rules! layout {
    ($t:ty, $size:expr, { $($field:ident : $off:expr),* $(,)? }) => {{
        assert_eq!(size_of::<$t>(), $size, concat!("sizeof ", stringify!($t)));
        assert_eq!(align_of::<$t>(), 8, concat!("alignof ", stringify!($t)));
        $( assert_eq!(offset_of!($t, $field), $off,
                      concat!(stringify!($t), ".", stringify!($field))); )*
    }};
}

#[test]
fn struct_layouts() {
    layout!(kdbus_notify_id_change, 16, { id: 0, flags: 8 });
    layout!(kdbus_notify_name_change, 32, { old_id: 0, new_id: 16, name: 32 });
    layout!(kdbus_creds, 64, { uid: 0, euid: 8, suid: 16, fsuid: 24, gid: 32, egid: 40, sgid: 48, fsgid: 56 });
    layout!(kdbus_pids, 24, { pid: 0, tid: 8, ppid: 16 });
    layout!(kdbus_caps, 8, { last_cap: 0, caps: 4 });
    layout!(kdbus_audit, 8, { sessionid: 0, loginuid: 4 });
    layout!(kdbus_timestamp, 24, { seqnum: 0, monotonic_ns: 8, realtime_ns: 16 });
    layout!(kdbus_vec, 16, { size: 0 });
    assert_eq!(size_of::<kdbus_vec__bindgen_ty_1>(), 8);
    layout!(kdbus_bloom_parameter, 16, { size: 0, n_hash: 8 });
    layout!(kdbus_bloom_filter, 8, { generation: 0, data: 8 });
    layout!(kdbus_memfd, 24, { start: 0, size: 8, fd: 16, __pad: 20 });
    layout!(kdbus_name, 8, { flags: 0, name: 8 });
    layout!(kdbus_policy_access, 24, { type_: 0, access: 8, id: 16 });
    layout!(kdbus_item, 80, { size: 0, type_: 8 });
    layout!(kdbus_msg, 64, { size: 0, flags: 8, priority: 16, dst_id: 24, src_id: 32,
                             payload_type: 40, cookie: 48, items: 64 });
    layout!(kdbus_msg_info, 24, { offset: 0, msg_size: 8, return_flags: 16 });
    layout!(kdbus_cmd_send, 56, { size: 0, flags: 8, return_flags: 16, msg_address: 24,
                                  reply: 32, items: 56 });
    layout!(kdbus_cmd_recv, 64, { size: 0, flags: 8, return_flags: 16, priority: 24,
                                  dropped_msgs: 32, msg: 40, items: 64 });
    layout!(kdbus_cmd_free, 32, { size: 0, flags: 8, return_flags: 16, offset: 24, items: 32 });
    layout!(kdbus_cmd_hello, 96, { size: 0, flags: 8, return_flags: 16, attach_flags_send: 24,
                                   attach_flags_recv: 32, bus_flags: 40, id: 48, pool_size: 56,
                                   offset: 64, items_size: 72, id128: 80, items: 96 });
    layout!(kdbus_info, 24, { size: 0, id: 8, flags: 16, items: 24 });
    layout!(kdbus_cmd_list, 40, { size: 0, flags: 8, return_flags: 16, offset: 24,
                                  list_size: 32, items: 40 });
    layout!(kdbus_cmd_info, 56, { size: 0, flags: 8, return_flags: 16, id: 24, attach_flags: 32,
                                  offset: 40, info_size: 48, items: 56 });
    layout!(kdbus_cmd_match, 32, { size: 0, flags: 8, return_flags: 16, cookie: 24, items: 32 });
    layout!(kdbus_cmd, 24, { size: 0, flags: 8, return_flags: 16, items: 24 });
}

#[test]
fn ioctl_numbers() {
    let table: &[(u32, u32)] = &[
        (KDBUS_CMD_BUS_MAKE, 0x40189500),
        (KDBUS_CMD_ENDPOINT_MAKE, 0x40189510),
        (KDBUS_CMD_ENDPOINT_UPDATE, 0x40189511),
        (KDBUS_CMD_HELLO, 0xc0609580),
        (KDBUS_CMD_UPDATE, 0x40189581),
        (KDBUS_CMD_BYEBYE, 0x40189582),
        (KDBUS_CMD_FREE, 0x40209583),
        (KDBUS_CMD_CONN_INFO, 0x80389584),
        (KDBUS_CMD_BUS_CREATOR_INFO, 0x80389585),
        (KDBUS_CMD_LIST, 0x80289586),
        (KDBUS_CMD_SEND, 0x40389590),
        (KDBUS_CMD_RECV, 0x80409591),
        (KDBUS_CMD_NAME_ACQUIRE, 0x401895a0),
        (KDBUS_CMD_NAME_RELEASE, 0x401895a1),
        (KDBUS_CMD_MATCH_ADD, 0x402095b0),
        (KDBUS_CMD_MATCH_REMOVE, 0x402095b1),
    ];
    for (i, &(got, want)) in table.iter().enumerate() {
        assert_eq!(got, want, "ioctl #{i}: {got:#x} != {want:#x}");
    }
}

#[test]
fn global_constants() {
    assert_eq!(KDBUS_IOCTL_MAGIC, 0x95);
    assert_eq!(KDBUS_SRC_ID_KERNEL, 0);
    assert_eq!(KDBUS_DST_ID_NAME, 0);
    assert_eq!(KDBUS_MATCH_ID_ANY as u64, u64::MAX);
    assert_eq!(KDBUS_DST_ID_BROADCAST as u64, u64::MAX);
    assert_eq!(KDBUS_FLAG_NEGOTIATE as u64, 1 << 63);
    assert_eq!(KDBUS_PAYLOAD_KERNEL as u64, 0);
    assert_eq!(KDBUS_PAYLOAD_DBUS as u64, 0x4442757344427573);
}

#[test]
fn item_types() {
    let user: &[u32] = &[
        _KDBUS_ITEM_NULL,
        KDBUS_ITEM_NEGOTIATE,
        KDBUS_ITEM_PAYLOAD_VEC,
        KDBUS_ITEM_PAYLOAD_OFF,
        KDBUS_ITEM_PAYLOAD_MEMFD,
        KDBUS_ITEM_FDS,
        KDBUS_ITEM_CANCEL_FD,
        KDBUS_ITEM_BLOOM_PARAMETER,
        KDBUS_ITEM_BLOOM_FILTER,
        KDBUS_ITEM_BLOOM_MASK,
        KDBUS_ITEM_DST_NAME,
        KDBUS_ITEM_MAKE_NAME,
        KDBUS_ITEM_ATTACH_FLAGS_SEND,
        KDBUS_ITEM_ATTACH_FLAGS_RECV,
        KDBUS_ITEM_ID,
        KDBUS_ITEM_NAME,
        KDBUS_ITEM_DST_ID,
    ];
    for (i, &t) in user.iter().enumerate() {
        assert_eq!(t as usize, i);
    }
    assert_eq!(_KDBUS_ITEM_USER_BASE, 1);
    let attach: &[u32] = &[
        KDBUS_ITEM_TIMESTAMP,
        KDBUS_ITEM_CREDS,
        KDBUS_ITEM_PIDS,
        KDBUS_ITEM_AUXGROUPS,
        KDBUS_ITEM_OWNED_NAME,
        KDBUS_ITEM_TID_COMM,
        KDBUS_ITEM_PID_COMM,
        KDBUS_ITEM_EXE,
        KDBUS_ITEM_CMDLINE,
        KDBUS_ITEM_CGROUP,
        KDBUS_ITEM_CAPS,
        KDBUS_ITEM_SECLABEL,
        KDBUS_ITEM_AUDIT,
        KDBUS_ITEM_CONN_DESCRIPTION,
    ];
    for (i, &t) in attach.iter().enumerate() {
        assert_eq!(t as usize, 0x1000 + i);
        // Metadata item n mirrors attach bit n.
        assert_eq!(
            1u64 << i,
            [
                KDBUS_ATTACH_TIMESTAMP,
                KDBUS_ATTACH_CREDS,
                KDBUS_ATTACH_PIDS,
                KDBUS_ATTACH_AUXGROUPS,
                KDBUS_ATTACH_NAMES,
                KDBUS_ATTACH_TID_COMM,
                KDBUS_ATTACH_PID_COMM,
                KDBUS_ATTACH_EXE,
                KDBUS_ATTACH_CMDLINE,
                KDBUS_ATTACH_CGROUP,
                KDBUS_ATTACH_CAPS,
                KDBUS_ATTACH_SECLABEL,
                KDBUS_ATTACH_AUDIT,
                KDBUS_ATTACH_CONN_DESCRIPTION
            ][i] as u64
        );
    }
    assert_eq!(_KDBUS_ITEM_ATTACH_BASE, 0x1000);
    assert_eq!(_KDBUS_ITEM_POLICY_BASE, 0x2000);
    assert_eq!(KDBUS_ITEM_POLICY_ACCESS, 0x2000);
    let kernel: &[u32] = &[
        KDBUS_ITEM_NAME_ADD,
        KDBUS_ITEM_NAME_REMOVE,
        KDBUS_ITEM_NAME_CHANGE,
        KDBUS_ITEM_ID_ADD,
        KDBUS_ITEM_ID_REMOVE,
        KDBUS_ITEM_REPLY_TIMEOUT,
        KDBUS_ITEM_REPLY_DEAD,
    ];
    for (i, &t) in kernel.iter().enumerate() {
        assert_eq!(t as usize, 0x8000 + i);
    }
    assert_eq!(_KDBUS_ITEM_KERNEL_BASE, 0x8000);
    assert_eq!(_KDBUS_ATTACH_ALL as u64, 0x3fff);
    assert_eq!(_KDBUS_ATTACH_ANY as u64, u64::MAX);
}

#[test]
fn flag_values() {
    let table: &[(u64, u64)] = &[
        (KDBUS_HELLO_ACCEPT_FD as u64, 1),
        (KDBUS_HELLO_ACTIVATOR as u64, 2),
        (KDBUS_HELLO_POLICY_HOLDER as u64, 4),
        (KDBUS_HELLO_MONITOR as u64, 8),
        (KDBUS_MAKE_ACCESS_GROUP as u64, 1),
        (KDBUS_MAKE_ACCESS_WORLD as u64, 2),
        (KDBUS_MSG_EXPECT_REPLY as u64, 1),
        (KDBUS_MSG_NO_AUTO_START as u64, 2),
        (KDBUS_MSG_SIGNAL as u64, 4),
        (KDBUS_SEND_SYNC_REPLY as u64, 1),
        (KDBUS_RECV_PEEK as u64, 1),
        (KDBUS_RECV_DROP as u64, 2),
        (KDBUS_RECV_USE_PRIORITY as u64, 4),
        (KDBUS_RECV_RETURN_INCOMPLETE_FDS as u64, 1),
        (KDBUS_RECV_RETURN_DROPPED_MSGS as u64, 2),
        (KDBUS_LIST_UNIQUE as u64, 1),
        (KDBUS_LIST_NAMES as u64, 2),
        (KDBUS_LIST_ACTIVATORS as u64, 4),
        (KDBUS_LIST_QUEUED as u64, 8),
        (KDBUS_MATCH_REPLACE as u64, 1),
        (KDBUS_NAME_REPLACE_EXISTING as u64, 1),
        (KDBUS_NAME_ALLOW_REPLACEMENT as u64, 2),
        (KDBUS_NAME_QUEUE as u64, 4),
        (KDBUS_NAME_IN_QUEUE as u64, 8),
        (KDBUS_NAME_ACTIVATOR as u64, 0x10),
        (KDBUS_NAME_PRIMARY as u64, 0x20),
        (KDBUS_NAME_ACQUIRED as u64, 0x40),
        (_KDBUS_POLICY_ACCESS_NULL as u64, 0),
        (KDBUS_POLICY_ACCESS_USER as u64, 1),
        (KDBUS_POLICY_ACCESS_GROUP as u64, 2),
        (KDBUS_POLICY_ACCESS_WORLD as u64, 3),
        (KDBUS_POLICY_SEE as u64, 0),
        (KDBUS_POLICY_TALK as u64, 1),
        (KDBUS_POLICY_OWN as u64, 2),
    ];
    for (i, &(got, want)) in table.iter().enumerate() {
        assert_eq!(got, want, "flag #{i}");
    }
}
