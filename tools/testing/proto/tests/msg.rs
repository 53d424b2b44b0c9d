//! Tests of SEND validation, the delivered layout and receive quotas.

use kdbus_proto::cmd::{self, FLAG_NEGOTIATE};
use kdbus_proto::errno::*;
use kdbus_proto::item::{self, Items};
use kdbus_proto::msg::{self, Header};
use kdbus_proto::quota::UserQuota;
use kdbus_proto::uapi::*;
use proptest::prelude::*;

fn push(buf: &mut Vec<u8>, ty: u32, payload: &[u8]) {
    buf.extend_from_slice(&(16 + payload.len() as u64).to_ne_bytes());
    buf.extend_from_slice(&(ty as u64).to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(8) {
        buf.push(0);
    }
}

fn vec_item(size: u64, addr: u64) -> Vec<u8> {
    let mut v = size.to_ne_bytes().to_vec();
    v.extend_from_slice(&addr.to_ne_bytes());
    v
}

/// A message with `header`, `items`; returns the parsed plan result.
fn plan_of(h: Header, items: &[(u32, Vec<u8>)], sync: bool) -> Result<msg::Plan> {
    let mut buf = vec![0u8; 64];
    for (t, p) in items {
        push(&mut buf, *t, p);
    }
    let size = buf.len() as u64;
    h.write(&mut buf, size, h.src_id);
    let c = cmd::parse(&mut buf, &msg::MSG)?;
    msg::plan(&c, 7, sync, 64, |a, n| {
        a.checked_add(n).is_some_and(|e| e < 1 << 47)
    })
}

fn dbus() -> Header {
    Header {
        payload_type: KDBUS_PAYLOAD_DBUS,
        dst_id: 9,
        ..Header::default()
    }
}

#[test]
fn header_rules_in_spec_order() {
    let ok = dbus();
    assert!(plan_of(ok, &[], false).is_ok());
    assert_eq!(
        plan_of(Header { src_id: 8, ..ok }, &[], false).unwrap_err(),
        EINVAL
    );
    assert!(plan_of(Header { src_id: 7, ..ok }, &[], false).is_ok());
    assert_eq!(
        plan_of(
            Header {
                payload_type: 0,
                ..ok
            },
            &[],
            false
        )
        .unwrap_err(),
        EINVAL
    );
    let bcast = Header {
        dst_id: u64::MAX,
        ..ok
    };
    assert_eq!(plan_of(bcast, &[], false).unwrap_err(), EBADMSG);
    let call = Header {
        flags: KDBUS_MSG_EXPECT_REPLY as u64,
        ..ok
    };
    assert_eq!(
        plan_of(call, &[], false).unwrap_err(),
        EINVAL,
        "call without timeout"
    );
    assert!(plan_of(
        Header {
            timeout_or_reply: 1,
            ..call
        },
        &[],
        true
    )
    .is_ok());
    assert_eq!(
        plan_of(ok, &[], true).unwrap_err(),
        EINVAL,
        "sync without EXPECT_REPLY"
    );
    let sig_call = Header {
        flags: (KDBUS_MSG_EXPECT_REPLY | KDBUS_MSG_SIGNAL) as u64,
        timeout_or_reply: 1,
        ..ok
    };
    assert_eq!(plan_of(sig_call, &[], false).unwrap_err(), ENOTUNIQ);
    let sig_reply = Header {
        flags: KDBUS_MSG_SIGNAL as u64,
        timeout_or_reply: 1,
        ..ok
    };
    assert_eq!(plan_of(sig_reply, &[], false).unwrap_err(), EINVAL);
    let sig = Header {
        flags: KDBUS_MSG_SIGNAL as u64,
        ..ok
    };
    assert_eq!(
        plan_of(sig, &[], false).unwrap_err(),
        EBADMSG,
        "signal without bloom"
    );
    let mut bloom = 0u64.to_ne_bytes().to_vec();
    bloom.extend_from_slice(&[0u8; 64]);
    assert!(plan_of(sig, &[(KDBUS_ITEM_BLOOM_FILTER, bloom.clone())], false).is_ok());
    let mut short = 0u64.to_ne_bytes().to_vec();
    short.extend_from_slice(&[0u8; 56]);
    assert_eq!(
        plan_of(sig, &[(KDBUS_ITEM_BLOOM_FILTER, short)], false).unwrap_err(),
        EDOM
    );
    assert_eq!(
        plan_of(Header { dst_id: 0, ..ok }, &[], false).unwrap_err(),
        EDESTADDRREQ
    );
    let mut name = b"org.example".to_vec();
    name.push(0);
    assert!(plan_of(
        Header { dst_id: 0, ..ok },
        &[(KDBUS_ITEM_DST_NAME, name)],
        false
    )
    .is_ok());
    let bsig = Header {
        flags: KDBUS_MSG_SIGNAL as u64,
        dst_id: u64::MAX,
        ..ok
    };
    let fds = (KDBUS_ITEM_FDS, 3i32.to_ne_bytes().to_vec());
    assert_eq!(
        plan_of(bsig, &[(KDBUS_ITEM_BLOOM_FILTER, bloom), fds], false).unwrap_err(),
        ENOTUNIQ
    );
}

#[test]
fn payload_limits() {
    let ok = dbus();
    let big = (KDBUS_ITEM_PAYLOAD_VEC, vec_item(2 * 1024 * 1024, 0));
    assert!(plan_of(ok, std::slice::from_ref(&big), false).is_ok());
    let one = (KDBUS_ITEM_PAYLOAD_VEC, vec_item(1, 0));
    assert_eq!(plan_of(ok, &[big, one], false).unwrap_err(), EMSGSIZE);
    let bad = (KDBUS_ITEM_PAYLOAD_VEC, vec_item(16, u64::MAX - 4));
    assert_eq!(plan_of(ok, &[bad], false).unwrap_err(), EFAULT);
    let zero = (KDBUS_ITEM_PAYLOAD_VEC, vec_item(0, 4096));
    assert_eq!(plan_of(ok, &[zero], false).unwrap_err(), EINVAL);
    let fds = (KDBUS_ITEM_FDS, vec![0u8; 4 * 17]);
    assert_eq!(plan_of(ok, &[fds], false).unwrap_err(), EMFILE);
    let mut memfd = vec_item(0, 8);
    memfd.extend_from_slice(&[0u8; 8]);
    let memfds: Vec<_> = (0..17)
        .map(|_| (KDBUS_ITEM_PAYLOAD_MEMFD, memfd.clone()))
        .collect();
    assert_eq!(plan_of(ok, &memfds, false).unwrap_err(), E2BIG);
    let neg = (KDBUS_ITEM_NEGOTIATE, vec![0u8; 8]);
    assert_eq!(plan_of(ok, &[neg], false).unwrap_err(), EINVAL);
    let _ = FLAG_NEGOTIATE;
}

/// message.md 14's worked example: VEC(13), null VEC(3), VEC(8) and a
/// TIMESTAMP item give msg.size 200, offsets {200, ~0, 216}, slice 224.
#[test]
fn worked_example_layout() {
    let mut items = Vec::new();
    push(&mut items, KDBUS_ITEM_PAYLOAD_OFF, &vec_item(13, 0x1000));
    push(&mut items, KDBUS_ITEM_PAYLOAD_OFF, &vec_item(3, 0));
    push(&mut items, KDBUS_ITEM_PAYLOAD_OFF, &vec_item(8, 0x2000));
    let msg_size = 64 + items.len() as u64 + 40;
    assert_eq!(msg_size, 200);
    let mut offs = Vec::new();
    msg::vec_offsets(
        Items::new(&items, 0).map(|i| i.unwrap()),
        msg_size,
        |_, o| offs.push(o),
    );
    assert_eq!(offs, vec![200, u64::MAX, 216]);
    assert_eq!(msg::slice_size(msg_size, 13 + 3 + 8), Some(224));
    let _ = item::HEADER_SIZE;
}

#[test]
fn quota_rules() {
    let pool = 1 << 20;
    let q = UserQuota {
        uid: 1,
        ..UserQuota::default()
    };
    // A third of the unreserved half.
    assert!(q.check(pool, 0, pool / 6, 0).is_ok());
    assert_eq!(q.check(pool, 0, pool / 6 + 8, 0), Err(ENOBUFS));
    // Nothing once the reserved half is used by others.
    assert_eq!(q.check(pool, pool / 2 + 8, 8, 0), Err(ENOBUFS));
    let full = UserQuota { msgs: 256, ..q };
    assert_eq!(full.check(pool, 0, 8, 0), Err(ENOBUFS));
    let fds = UserQuota { fds: 10, ..q };
    assert_eq!(fds.check(pool, 0, 8, 7), Err(EMFILE));
    assert!(fds.check(pool, 0, 8, 6).is_ok());
}

proptest! {
    /// Charging what `check` allows never lets one user exceed a third of
    /// the unreserved half of the pool, whatever the sizes.
    #[test]
    fn quota_share_holds(sizes in proptest::collection::vec(8u64..40_000, 1..100)) {
        let pool = 1u64 << 20;
        let mut q = UserQuota { uid: 1, ..UserQuota::default() };
        for s in sizes {
            if q.check(pool, q.bytes, s, 0).is_ok() {
                q.charge(s, 0);
            }
            prop_assert!(q.bytes <= pool / 2 / 3 + 1);
        }
    }
}
