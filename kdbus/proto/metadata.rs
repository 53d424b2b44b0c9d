// SPDX-License-Identifier: GPL-2.0

//! Metadata, the pure half (spec: metadata.md): which items a consumer gets
//! (section 2), the capability translation (section 4), the rendering of
//! faked ids and pids given as numbers (connection.md 10), and the encoding
//! of every metadata item in the fixed order of section 4 (message.md 14).
//!
//! The kernel half (`kdbus/metadata.rs`) collects the values from the task
//! and translates them into the consumer's namespaces; it hands them here
//! as numbers and byte strings in a [`Values`], and [`encode`] writes the
//! items into any [`Sink`].

use crate::proto::errno::{Result, EINVAL};
use crate::proto::item::{align8, Items, HEADER_SIZE};
use crate::uapi::*;

/// Items every receiver gets when it asks for them (metadata.md 2.1).
pub const IMPLICIT: u64 = KDBUS_ATTACH_CREDS
    | KDBUS_ATTACH_PIDS
    | KDBUS_ATTACH_AUXGROUPS
    | KDBUS_ATTACH_NAMES
    | KDBUS_ATTACH_CONN_DESCRIPTION
    | KDBUS_ATTACH_TIMESTAMP;

/// Items a receiver gets only if the sender allows them or the receiver
/// could read them from /proc itself.
pub const PROC_ITEMS: u64 = KDBUS_ATTACH_TID_COMM
    | KDBUS_ATTACH_PID_COMM
    | KDBUS_ATTACH_EXE
    | KDBUS_ATTACH_CMDLINE
    | KDBUS_ATTACH_CGROUP
    | KDBUS_ATTACH_CAPS
    | KDBUS_ATTACH_SECLABEL
    | KDBUS_ATTACH_AUDIT;

/// Process metadata: what is collected from a task (metadata.md 1).
pub const PROCESS: u64 =
    KDBUS_ATTACH_CREDS | KDBUS_ATTACH_PIDS | KDBUS_ATTACH_AUXGROUPS | PROC_ITEMS;

/// Connection metadata (names, description, timestamp).
pub const CONNECTION: u64 =
    KDBUS_ATTACH_NAMES | KDBUS_ATTACH_CONN_DESCRIPTION | KDBUS_ATTACH_TIMESTAMP;

/// What a faked snapshot can hold (connection.md 10).
pub const FAKEABLE: u64 = KDBUS_ATTACH_CREDS | KDBUS_ATTACH_PIDS | KDBUS_ATTACH_SECLABEL;

/// The items of a message from a connection to a receiver (metadata.md
/// 2.1): the receiver's mask selects; implicit items cannot be withheld;
/// the sender's mask matters only for /proc items the receiver could not
/// read itself (`procfs_visible` is asked only then). A sender with faked
/// metadata sends no process metadata at all.
pub fn message_mask(
    send: u64,
    recv: u64,
    faked_sender: bool,
    procfs_visible: impl FnOnce() -> bool,
) -> u64 {
    let mut granted = (send | IMPLICIT) & recv;
    let missing = recv & !granted;
    if missing != 0 && procfs_visible() {
        granted |= missing;
    }
    if faked_sender {
        granted &= CONNECTION;
    }
    granted
}

/// The items of a kernel notification (metadata.md 2.2): TIMESTAMP only,
/// always.
pub const NOTIFICATION_MASK: u64 = KDBUS_ATTACH_TIMESTAMP;

/// CONN_INFO's items (metadata.md 2.3): the request and the target's send
/// mask; never TIMESTAMP.
pub fn conn_info_mask(requested: u64, target_send: u64) -> u64 {
    requested & target_send & !KDBUS_ATTACH_TIMESTAMP
}

/// BUS_CREATOR_INFO's items (metadata.md 2.4): the request and the bus's
/// owner mask, process metadata only.
pub fn bus_creator_mask(requested: u64, attach_owner: u64) -> u64 {
    requested & attach_owner & PROCESS
}

/// "R could read these fields from /proc itself" (metadata.md 2.1):
/// `has_pid` = the sending thread has a number in R's pid namespace,
/// `hello_task` = it is the task that issued R's HELLO, `hidepid_allows` =
/// R's pid namespace does not hide foreign processes from R.
pub fn procfs_visible(has_pid: bool, hello_task: bool, hidepid_allows: bool) -> bool {
    has_pid && (hello_task || hidepid_allows)
}

/// How a producer's capabilities look in a consumer's user namespace
/// (metadata.md 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsView {
    /// The consumer's namespace is the producer's or a descendant: the sets
    /// unchanged.
    Unchanged,
    /// The producer's euid created a namespace on the way, a child of the
    /// producer's: all capabilities but no inheritable ones.
    Owner,
    /// Nothing.
    Nothing,
}

/// Deepest user namespace nesting the kernel allows is 32; the walk stops
/// after this many steps whatever the namespaces say.
const MAX_NS_DEPTH: usize = 64;

/// Walks from the consumer's namespace `consumer` towards the initial one
/// (`parent` gives each namespace's parent, `None` for the initial one;
/// `owner_is_euid` whether a namespace was created by the producer's euid),
/// looking for the producer's namespace `producer` (metadata.md 4, CAPS
/// translation rules 1-3).
pub fn caps_view<N: Copy + PartialEq>(
    consumer: N,
    producer: N,
    parent: impl Fn(N) -> Option<N>,
    owner_is_euid: impl Fn(N) -> bool,
) -> CapsView {
    let mut ns = consumer;
    for _ in 0..MAX_NS_DEPTH {
        if ns == producer {
            return CapsView::Unchanged;
        }
        let Some(p) = parent(ns) else {
            return CapsView::Nothing;
        };
        if p == producer && owner_is_euid(ns) {
            return CapsView::Owner;
        }
        ns = p;
    }
    CapsView::Nothing
}

/// Number of u32 words per capability set (`_KERNEL_CAPABILITY_U32S`).
pub const CAP_WORDS: usize = 2;

/// The CAPS payload: `last_cap`, then inheritable, permitted, effective and
/// bounding sets of [`CAP_WORDS`] words each. `sets` are the producer's
/// sets in that order, as 64-bit masks; bits above `last_cap` are cleared.
pub fn caps_payload(view: CapsView, sets: [u64; 4], last_cap: u32) -> [u32; 1 + 4 * CAP_WORDS] {
    let valid = if last_cap >= 63 {
        u64::MAX
    } else {
        (1u64 << (last_cap + 1)) - 1
    };
    let sets = match view {
        CapsView::Unchanged => sets,
        CapsView::Owner => [0, u64::MAX, u64::MAX, u64::MAX],
        CapsView::Nothing => [0; 4],
    };
    let mut out = [0u32; 1 + 4 * CAP_WORDS];
    out[0] = last_cap;
    for (i, s) in sets.iter().enumerate() {
        let s = s & valid;
        out[1 + i * CAP_WORDS] = s as u32;
        out[2 + i * CAP_WORDS] = (s >> 32) as u32;
    }
    out
}

/// An id that was not set (faked CREDS), or could not be mapped (AUDIT's
/// loginuid), as reported.
pub const UNSET_ID: u32 = u32::MAX;

/// Faked CREDS (connection.md 3.2 step 12, 10): the eight values of the
/// 64-byte payload (uid, euid, suid, fsuid, gid, egid, sgid, fsgid), each
/// `None` if exactly `0xffffffff` ("unset"), else truncated to 32 bits.
/// A value whose 32 bits are `0xffffffff` (e.g. `~0ULL`) can never be
/// mapped: `EINVAL`.
pub fn parse_faked_creds(payload: &[u8]) -> Result<[Option<u32>; 8]> {
    let mut out = [None; 8];
    if payload.len() != 64 {
        return Err(EINVAL);
    }
    for (i, o) in out.iter_mut().enumerate() {
        let v = read_u64(payload, i * 8);
        if v == UNSET_ID as u64 {
            continue;
        }
        let t = v as u32;
        if t == UNSET_ID {
            return Err(EINVAL);
        }
        *o = Some(t);
    }
    Ok(out)
}

/// Faked PIDS (pid, tid, ppid): `None` for 0 ("unset"); a number outside
/// the range of pids (1..=i32::MAX) does not exist: `EINVAL`.
pub fn parse_faked_pids(payload: &[u8]) -> Result<[Option<i32>; 3]> {
    let mut out = [None; 3];
    if payload.len() != 24 {
        return Err(EINVAL);
    }
    for (i, o) in out.iter_mut().enumerate() {
        let v = read_u64(payload, i * 8);
        if v == 0 {
            continue;
        }
        *o = Some(i32::try_from(v).map_err(|_| EINVAL)?);
    }
    Ok(out)
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        w.copy_from_slice(s);
    }
    u64::from_ne_bytes(w)
}

/// Where items are written: a growable byte buffer (a `KVVec` in the
/// module, a `Vec` in tests).
pub trait Sink {
    /// Bytes written so far.
    fn written(&self) -> usize;
    /// Appends `b`.
    fn put(&mut self, b: &[u8]) -> Result;
    /// Appends `n` zero bytes (by default through `put`, from a zeroed
    /// block: a sink may write them faster).
    fn zeros(&mut self, n: usize) -> Result {
        let z = [0u8; 64];
        let mut left = n;
        while left > 0 {
            let k = left.min(z.len());
            self.put(z.get(..k).unwrap_or(&[]))?;
            left -= k;
        }
        Ok(())
    }
}

/// The metadata of one producer as one consumer sees it: every value
/// already translated (ids mapped, pids numbered in the consumer's pid
/// namespace, EXE only if the roots matched). `None` or empty: the item is
/// not emitted. Strings are given without their terminating NUL.
#[derive(Clone, Copy, Default, Debug)]
pub struct Values<'a> {
    /// uid, euid, suid, fsuid, gid, egid, sgid, fsgid.
    pub creds: Option<[u32; 8]>,
    /// pid (thread group), tid, ppid.
    pub pids: Option<[u32; 3]>,
    /// Supplementary groups, mapped.
    pub auxgroups: Option<&'a [u32]>,
    pub tid_comm: Option<&'a [u8]>,
    pub pid_comm: Option<&'a [u8]>,
    pub exe: Option<&'a [u8]>,
    /// The argument block, NUL-separated (a final NUL is added if missing).
    pub cmdline: Option<&'a [u8]>,
    pub cgroup: Option<&'a [u8]>,
    pub caps: Option<[u32; 1 + 4 * CAP_WORDS]>,
    pub seclabel: Option<&'a [u8]>,
    /// sessionid, loginuid.
    pub audit: Option<[u32; 2]>,
    /// OWNED_NAME items, already encoded (each padded).
    pub names: &'a [u8],
    pub description: Option<&'a [u8]>,
    /// seqnum, monotonic ns, realtime ns.
    pub timestamp: Option<[u64; 3]>,
}

/// The attach bit of each item kind [`encode`] writes, in its order.
pub const ORDER: [u64; 14] = [
    KDBUS_ATTACH_CREDS,
    KDBUS_ATTACH_PIDS,
    KDBUS_ATTACH_AUXGROUPS,
    KDBUS_ATTACH_TID_COMM,
    KDBUS_ATTACH_PID_COMM,
    KDBUS_ATTACH_EXE,
    KDBUS_ATTACH_CMDLINE,
    KDBUS_ATTACH_CGROUP,
    KDBUS_ATTACH_CAPS,
    KDBUS_ATTACH_SECLABEL,
    KDBUS_ATTACH_AUDIT,
    KDBUS_ATTACH_NAMES,
    KDBUS_ATTACH_CONN_DESCRIPTION,
    KDBUS_ATTACH_TIMESTAMP,
];

/// The item type of attach bit `bit` (abi.md 7: `0x1000 + n`).
pub fn item_type(bit: u64) -> u32 {
    KDBUS_ITEM_TIMESTAMP + bit.trailing_zeros()
}

/// Writes one item: header, `parts`, zero padding to 8; returns the offset
/// of its unpadded end.
pub fn put_item<S: Sink + ?Sized>(out: &mut S, ty: u32, parts: &[&[u8]]) -> Result<usize> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let size = HEADER_SIZE + len;
    let start = out.written();
    out.put(&(size as u64).to_ne_bytes())?;
    out.put(&(ty as u64).to_ne_bytes())?;
    for p in parts {
        out.put(p)?;
    }
    let end = start + size;
    let padded = align8(end).ok_or(EINVAL)?;
    out.zeros(padded - end)?;
    Ok(end)
}

fn put_u32s<S: Sink + ?Sized>(out: &mut S, ty: u32, words: &[u32]) -> Result<usize> {
    let start = out.written();
    let size = HEADER_SIZE + 4 * words.len();
    out.put(&(size as u64).to_ne_bytes())?;
    out.put(&(ty as u64).to_ne_bytes())?;
    for w in words {
        out.put(&w.to_ne_bytes())?;
    }
    let end = start + size;
    out.zeros(align8(end).ok_or(EINVAL)? - end)?;
    Ok(end)
}

fn put_u64s<S: Sink + ?Sized>(out: &mut S, ty: u32, words: &[u64]) -> Result<usize> {
    let start = out.written();
    let size = HEADER_SIZE + 8 * words.len();
    out.put(&(size as u64).to_ne_bytes())?;
    out.put(&(ty as u64).to_ne_bytes())?;
    for w in words {
        out.put(&w.to_ne_bytes())?;
    }
    Ok(start + size)
}

/// Bytes of a TIMESTAMP item (a multiple of 8: no padding).
pub const TIMESTAMP_ITEM: usize = HEADER_SIZE + 24;

/// The TIMESTAMP item of `t` (seqnum, monotonic ns, realtime ns), as
/// [`encode`] writes it.
pub fn timestamp_item(t: [u64; 3]) -> [u8; TIMESTAMP_ITEM] {
    let mut b = [0u8; TIMESTAMP_ITEM];
    let words = [
        TIMESTAMP_ITEM as u64,
        KDBUS_ITEM_TIMESTAMP as u64,
        t[0],
        t[1],
        t[2],
    ];
    for (dst, w) in b.chunks_exact_mut(8).zip(words) {
        dst.copy_from_slice(&w.to_ne_bytes());
    }
    b
}

/// The unpadded end of the last item of the padded item stream `items`
/// (relative to its start), `None` if it has none.
pub fn last_item_end(items: &[u8]) -> Option<usize> {
    let mut end = None;
    for i in Items::new(items, 0).filter_map(|i| i.ok()) {
        end = Some(i.offset + HEADER_SIZE + i.payload.len());
    }
    end
}

/// Writes the items of `v` selected by `mask`, in the fixed order of
/// metadata.md 4, each padded with zeros; returns the offset (in `out`) of
/// the unpadded end of the last item written, `None` if none was.
pub fn encode<S: Sink + ?Sized>(v: &Values<'_>, mask: u64, out: &mut S) -> Result<Option<usize>> {
    let mut end = None;
    let want = |bit: u64| mask & bit != 0;
    let nul: &[u8] = &[0];
    let string = |out: &mut S, bit: u64, s: Option<&[u8]>| -> Result<Option<usize>> {
        match s {
            Some(s) if want(bit) => Ok(Some(put_item(out, item_type(bit), &[s, nul])?)),
            _ => Ok(None),
        }
    };
    if let (true, Some(c)) = (want(KDBUS_ATTACH_CREDS), v.creds) {
        let mut w = [0u64; 8];
        for (o, i) in w.iter_mut().zip(c.iter()) {
            *o = *i as u64;
        }
        end = Some(put_u64s(out, KDBUS_ITEM_CREDS, &w)?);
    }
    if let (true, Some(p)) = (want(KDBUS_ATTACH_PIDS), v.pids) {
        let w = [p[0] as u64, p[1] as u64, p[2] as u64];
        end = Some(put_u64s(out, KDBUS_ITEM_PIDS, &w)?);
    }
    if let (true, Some(g)) = (want(KDBUS_ATTACH_AUXGROUPS), v.auxgroups) {
        let start = out.written();
        let size = HEADER_SIZE + 8 * g.len();
        out.put(&(size as u64).to_ne_bytes())?;
        out.put(&(KDBUS_ITEM_AUXGROUPS as u64).to_ne_bytes())?;
        for gid in g {
            out.put(&(*gid as u64).to_ne_bytes())?;
        }
        end = Some(start + size);
    }
    for (bit, s) in [
        (KDBUS_ATTACH_TID_COMM, v.tid_comm),
        (KDBUS_ATTACH_PID_COMM, v.pid_comm),
        (KDBUS_ATTACH_EXE, v.exe),
    ] {
        end = string(out, bit, s)?.or(end);
    }
    if let (true, Some(c)) = (want(KDBUS_ATTACH_CMDLINE), v.cmdline) {
        if !c.is_empty() {
            let tail: &[u8] = if c.last() == Some(&0) { &[] } else { nul };
            end = Some(put_item(out, KDBUS_ITEM_CMDLINE, &[c, tail])?);
        }
    }
    end = string(out, KDBUS_ATTACH_CGROUP, v.cgroup)?.or(end);
    if let (true, Some(c)) = (want(KDBUS_ATTACH_CAPS), v.caps) {
        end = Some(put_u32s(out, KDBUS_ITEM_CAPS, &c)?);
    }
    end = string(out, KDBUS_ATTACH_SECLABEL, v.seclabel)?.or(end);
    if let (true, Some(a)) = (want(KDBUS_ATTACH_AUDIT), v.audit) {
        end = Some(put_u32s(out, KDBUS_ITEM_AUDIT, &a)?);
    }
    if want(KDBUS_ATTACH_NAMES) {
        if let Some(e) = last_item_end(v.names) {
            let at = out.written();
            out.put(v.names)?;
            end = Some(at + e);
        }
    }
    end = string(out, KDBUS_ATTACH_CONN_DESCRIPTION, v.description)?.or(end);
    if let (true, Some(t)) = (want(KDBUS_ATTACH_TIMESTAMP), v.timestamp) {
        let start = out.written();
        out.put(&timestamp_item(t))?;
        end = Some(start + TIMESTAMP_ITEM);
    }
    Ok(end)
}

/// An OWNED_NAME item (`kdbus_name {flags, name}` + NUL).
pub fn put_owned_name<S: Sink + ?Sized>(out: &mut S, flags: u64, name: &[u8]) -> Result<usize> {
    put_item(
        out,
        KDBUS_ITEM_OWNED_NAME,
        &[&flags.to_ne_bytes(), name, &[0]],
    )
}
