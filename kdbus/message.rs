// SPDX-License-Identifier: GPL-2.0

//! Kernel-side messages (spec: message.md 12-14): what SEND turns a user
//! message into, and kernel notifications, ready to be placed in any number
//! of receivers' pools.
//!
//! The header and items are kept in a template; per receiver, the metadata
//! items it asked for are appended and the PAYLOAD_OFF offsets patched. The
//! payload is never held by the kernel: data vectors are copied straight
//! from the sender's memory into each receiver's pool.

use crate::connection::Connection;
use crate::glue::cred::UserNamespace;
use crate::glue::file::{File, MEMFD_SEALS};
use crate::glue::gfp;
use crate::glue::pid::{Pid, PidNamespace};
use crate::glue::stats::{Kind, Live};
use crate::glue::task::Task;
use crate::glue::time;
use crate::metadata::{Consumer, MsgProc, Rendered};
use crate::pool::Pool;
use crate::proto::errno::{Result, EFAULT, EINVAL, EMEDIUMTYPE, EMSGSIZE, EOPNOTSUPP, ETXTBSY};
use crate::proto::item::{self, Items, HEADER_SIZE};
use crate::proto::metadata::{self as pm, Sink};
use crate::proto::msg::{self, Header};
use crate::uapi::*;
use core::cell::{OnceCell, RefCell};
use core::mem::size_of;
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ARef;

const MSG_HDR: usize = size_of::<kdbus_msg>();

/// A message ready for delivery.
pub(crate) struct Kmsg {
    pub(crate) header: Header,
    /// Sender id (0 for the kernel).
    pub(crate) src_id: u64,
    /// The sender's items, transformed (PAYLOAD_VEC -> PAYLOAD_OFF holding
    /// the user address until delivery, descriptor fields -1), each padded.
    items: KVVec<u8>,
    /// Unpadded end of the last item in `items`.
    items_end: usize,
    /// Size of the inline payload area.
    pub(crate) payload_size: u64,
    /// Files to hand to receivers, each with the message-relative offset of
    /// its descriptor field.
    files: KVec<(ARef<File>, usize)>,
    /// Number of FDS entries (memfds excluded).
    pub(crate) nfds: u32,
    /// The user whose receive quota the message is charged to.
    pub(crate) quota_uid: crate::domain::AccountId,
    /// Sequence number (message.md 11).
    seq: u64,
    /// TIMESTAMP metadata: seqnum, monotonic and realtime ns, taken when
    /// the first receiver wants it (metadata.md 1), then shared by all.
    timestamp: OnceCell<[u64; 3]>,
    /// A kernel notification: TIMESTAMP is always attached.
    kernel: bool,
    /// Some data vector is still in the sender's memory (placing the
    /// message copies from user memory).
    user_vecs: bool,
    /// The sending connection, for the names it owns (NAMES metadata).
    sender: Option<Arc<Connection>>,
    /// OWNED_NAME items of the sender's names, collected when the first
    /// receiver wants them (metadata.md 1), then shared by all.
    names: OnceCell<KVVec<u8>>,
    /// The sender's `attach_flags_send` when it sent the message.
    send_mask: u64,
    /// The sending thread (whether a receiver could see it in /proc).
    tid: Option<ARef<Pid>>,
    /// The sending thread's process metadata, collected item by item when
    /// the first receiver wants it, then shared by all (metadata.md 1),
    /// through the sender's cache (`metadata/cache.rs`). `None` for kernel
    /// messages and for senders with faked metadata (connection.md 10: no
    /// process metadata at all); `Some(None)` until collected.
    process: Option<RefCell<Option<MsgProc>>>,
    _live: Live,
}

/// The header and items of a message for one receiver, in the pieces
/// they are written into its pool from, each zero-padded to 8.
pub(crate) struct Head<'a> {
    /// The header and the message's items, their PAYLOAD_OFF offsets
    /// patched for this receiver.
    fixed: Buf<FIXED_INLINE>,
    /// The sender's process items, rendered for this receiver.
    process: Option<Arc<Rendered>>,
    /// OWNED_NAME items.
    names: &'a [u8],
    /// The sender's CONN_DESCRIPTION item.
    description: &'a [u8],
    /// The TIMESTAMP item.
    timestamp: Option<[u8; pm::TIMESTAMP_ITEM]>,
    /// `kdbus_msg.size`: the unpadded end of the last item.
    pub(crate) msg_size: u64,
}

/// Bytes of a head's header and items kept on the stack (more go to the
/// heap): the header and a few items, as most messages have.
const FIXED_INLINE: usize = 384;

/// A byte buffer for one receiver's head: on the stack while it fits, on
/// the heap once it does not (no allocation for the common message).
struct Buf<const N: usize> {
    inline: [u8; N],
    len: usize,
    heap: Option<KVVec<u8>>,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf {
            inline: [0; N],
            len: 0,
            heap: None,
        }
    }

    fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(h) => h,
            None => self.inline.get(..self.len).unwrap_or(&[]),
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.heap {
            Some(h) => h,
            None => self.inline.get_mut(..self.len).unwrap_or(&mut []),
        }
    }
}

impl<const N: usize> pm::Sink for Buf<N> {
    fn written(&self) -> usize {
        self.as_slice().len()
    }

    fn put(&mut self, b: &[u8]) -> Result {
        if let Some(h) = &mut self.heap {
            return Ok(h.extend_from_slice(b, gfp())?);
        }
        let end = self.len.checked_add(b.len()).ok_or(EMSGSIZE)?;
        match self.inline.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(b);
                self.len = end;
            }
            None => {
                let mut h = KVVec::with_capacity(end.max(2 * N), gfp())?;
                h.extend_from_slice(self.as_slice(), gfp())?;
                h.extend_from_slice(b, gfp())?;
                self.heap = Some(h);
            }
        }
        Ok(())
    }
}

/// Appends an item of type `ty` whose payload is the concatenation of
/// `payload`, zero-padded to 8; returns its (unpadded) size.
pub(crate) fn push_item<A: kernel::alloc::Allocator>(
    out: &mut Vec<u8, A>,
    ty: u32,
    payload: &[&[u8]],
) -> Result<usize> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    let size = HEADER_SIZE + len;
    out.extend_from_slice(&(size as u64).to_ne_bytes(), gfp())?;
    out.extend_from_slice(&(ty as u64).to_ne_bytes(), gfp())?;
    for p in payload {
        out.extend_from_slice(p, gfp())?;
    }
    let padded = item::align8(out.len()).ok_or(EMSGSIZE)?;
    let pad = [0u8; 8];
    out.extend_from_slice(pad.get(..padded - out.len()).unwrap_or(&[]), gfp())?;
    Ok(size)
}

fn timestamp(seq: u64) -> [u64; 3] {
    let (mono, real) = time::monotonic_and_realtime_ns();
    [seq, mono, real]
}

/// Checks a file passed as PAYLOAD_MEMFD covering `[start, start+size)`
/// (message.md 4): a shmem file with all four seals, large enough.
fn check_memfd(f: &File, start: u64, size: u64) -> Result {
    let seals = f.shmem_seals().ok_or(EMEDIUMTYPE)?;
    if seals & MEMFD_SEALS != MEMFD_SEALS {
        return Err(ETXTBSY);
    }
    let end = start.checked_add(size).ok_or(EFAULT)?;
    if end > f.size() {
        return Err(EFAULT);
    }
    Ok(())
}

/// Checks a file passed in a FDS item (message.md 4): kdbus handles and
/// `AF_UNIX` sockets cannot be passed, nor anything else that can hold
/// files (io_uring instances, whose fixed-file table could hold the
/// connection itself: a reference cycle no close breaks), as SCM_RIGHTS
/// refuses them too.
fn check_passable(f: &File) -> Result {
    if f.is_kdbus() || f.is_unix_socket() || f.is_io_uring() {
        return Err(EOPNOTSUPP);
    }
    Ok(())
}

impl Kmsg {
    /// Builds the message of a SEND from the validated copy `buf` of the
    /// user's `kdbus_msg`, importing memfds and fds in item order (message.md
    /// 5 step 13).
    pub(crate) fn from_user(
        header: Header,
        payload_size: u64,
        buf: &[u8],
        sender: &Arc<Connection>,
        seq: u64,
    ) -> Result<Self> {
        let (src_id, quota_uid) = (sender.id, sender.account);
        let mut items = KVVec::new();
        let mut files = KVec::new();
        let mut nfds = 0u32;
        let mut items_end = 0;
        let mut user_vecs = false;
        for i in Items::new(buf, MSG_HDR) {
            let i = i?;
            let start = items.len();
            let payload_at = MSG_HDR + start + HEADER_SIZE;
            let size = match i.ty as u32 {
                KDBUS_ITEM_PAYLOAD_VEC => {
                    user_vecs |= i.u64_at(8) != 0;
                    push_item(&mut items, KDBUS_ITEM_PAYLOAD_OFF, &[i.payload])?
                }
                KDBUS_ITEM_PAYLOAD_MEMFD => {
                    let (start_off, len) = (i.u64_at(0), i.u64_at(8));
                    let f = File::fget(i.i32_at(16).ok_or(EINVAL)?)?;
                    check_memfd(&f, start_off, len)?;
                    files.push((f, payload_at + 16), gfp())?;
                    let minus_one = (-1i32).to_ne_bytes();
                    let range = i.payload.get(..16).ok_or(EINVAL)?;
                    push_item(
                        &mut items,
                        KDBUS_ITEM_PAYLOAD_MEMFD,
                        &[range, &minus_one, &[0u8; 4]],
                    )?
                }
                KDBUS_ITEM_FDS => {
                    for k in 0..i.payload.len() / 4 {
                        let f = File::fget(i.i32_at(4 * k).ok_or(EINVAL)?)?;
                        check_passable(&f)?;
                        files.push((f, payload_at + 4 * k), gfp())?;
                        nfds += 1;
                    }
                    // The sender's numbers mean nothing to receivers: -1
                    // until RECV installs descriptors.
                    let at = items.len();
                    let size = push_item(&mut items, KDBUS_ITEM_FDS, &[i.payload])?;
                    if let Some(fds) = items.get_mut(at + HEADER_SIZE..at + size) {
                        fds.fill(0xff);
                    }
                    size
                }
                KDBUS_ITEM_BLOOM_FILTER | KDBUS_ITEM_DST_NAME => {
                    push_item(&mut items, i.ty as u32, &[i.payload])?
                }
                _ => return Err(EINVAL),
            };
            items_end = start + size;
        }
        Ok(Kmsg {
            header,
            src_id,
            items,
            items_end,
            payload_size,
            files,
            nfds,
            quota_uid,
            seq,
            timestamp: core::cell::OnceCell::new(),
            kernel: false,
            user_vecs,
            sender: Some(sender.clone()),
            names: OnceCell::new(),
            send_mask: sender.attach_send(),
            tid: Task::current().pid(),
            process: match sender.faked_meta() {
                true => None,
                false => Some(RefCell::new(None)),
            },
            _live: Live::new(Kind::Message),
        })
    }

    /// A kernel notification (message.md 12) with one item of type `ty`.
    pub(crate) fn notification(
        ty: u32,
        payload: &[u8],
        dst_id: u64,
        cookie_reply: u64,
        seq: u64,
    ) -> Result<Self> {
        Self::notification_to(ty, &[payload], dst_id, cookie_reply, seq)
    }

    /// A broadcast notification whose item payload is the concatenation of
    /// `parts`.
    pub(crate) fn notification_parts(ty: u32, parts: &[&[u8]], seq: u64) -> Result<Self> {
        Self::notification_to(ty, parts, msg::DST_BROADCAST, 0, seq)
    }

    fn notification_to(
        ty: u32,
        parts: &[&[u8]],
        dst_id: u64,
        cookie_reply: u64,
        seq: u64,
    ) -> Result<Self> {
        let mut items = KVVec::new();
        let items_end = push_item(&mut items, ty, parts)?;
        let broadcast = dst_id == msg::DST_BROADCAST;
        Ok(Kmsg {
            header: Header {
                flags: if broadcast {
                    KDBUS_MSG_SIGNAL as u64
                } else {
                    0
                },
                dst_id,
                timeout_or_reply: cookie_reply,
                ..Header::default()
            },
            src_id: 0,
            items,
            items_end,
            payload_size: 0,
            files: KVec::new(),
            nfds: 0,
            quota_uid: crate::domain::KERNEL_ACCOUNT,
            seq,
            timestamp: core::cell::OnceCell::new(),
            kernel: true,
            user_vecs: false,
            sender: None,
            names: OnceCell::new(),
            send_mask: 0,
            tid: None,
            process: None,
            _live: Live::new(Kind::Message),
        })
    }

    /// The notification item of a kernel message: type and payload.
    pub(crate) fn kernel_item(&self) -> Option<(u32, &[u8])> {
        if !self.kernel {
            return None;
        }
        let i = Items::new(&self.items, 0).next()?.ok()?;
        Some((i.ty as u32, i.payload))
    }

    /// The message's bloom filter: generation and data.
    pub(crate) fn bloom(&self) -> Option<(u64, &[u8])> {
        Items::new(&self.items, 0)
            .filter_map(|i| i.ok())
            .find(|i| i.ty == KDBUS_ITEM_BLOOM_FILTER as u64)
            .map(|i| (i.u64_at(0), i.payload.get(8..).unwrap_or(&[])))
    }

    /// The metadata a receiver with `attach_recv`, whose HELLO task lives in
    /// pid namespace `pid_ns`, gets on this message (metadata.md 2.1-2.2).
    ///
    /// The /proc visibility rule: the sending thread must have a number in
    /// the receiver's pid namespace. On 6.12 `hidepid` is a per-procfs-mount
    /// option, not a property of the pid namespace, so its step 3 is taken
    /// as true (the spec's option for 5.8+ kernels).
    pub(crate) fn mask_for(&self, attach_recv: u64, pid_ns: &PidNamespace) -> u64 {
        if self.kernel {
            return pm::NOTIFICATION_MASK;
        }
        let visible = || {
            let has_pid = self.tid.as_ref().is_some_and(|t| t.nr_in(pid_ns) != 0);
            pm::procfs_visible(has_pid, false, true)
        };
        let faked = self.process.is_none();
        pm::message_mask(self.send_mask, attach_recv, faked, visible)
    }

    /// The process metadata of `mask` this message does not have yet.
    fn missing(&self, mask: u64) -> u64 {
        match &self.process {
            None => 0,
            Some(p) => p.try_borrow().map_or(mask & pm::PROCESS, |p| match &*p {
                Some(m) => m.missing(mask),
                None => mask & pm::PROCESS,
            }),
        }
    }

    /// Whether collecting the process metadata of `mask` still to be
    /// collected reads the sender's memory (CMDLINE, also when a cached
    /// value is checked).
    pub(crate) fn collect_reads_user_memory(&self, mask: u64) -> bool {
        self.missing(mask) & KDBUS_ATTACH_CMDLINE != 0
    }

    /// Collects the process metadata of `mask` not collected yet, from the
    /// calling (sending) thread: once per message and item, so every
    /// receiver sees the same values.
    pub(crate) fn collect(&self, mask: u64) -> Result {
        let (Some(p), Some(sender)) = (&self.process, &self.sender) else {
            return Ok(());
        };
        if self.missing(mask) == 0 {
            return Ok(());
        }
        let mut p = p.try_borrow_mut().map_err(|_| EINVAL)?;
        let m = sender.meta_cache.collect(p.as_ref(), mask)?;
        *p = Some(m);
        Ok(())
    }

    /// Builds the head (header, items, metadata) for a receiver that gets
    /// metadata `mask` (from [`Kmsg::mask_for`], collected), translated
    /// into user namespace `ns` and the namespaces `c` (message.md 14;
    /// metadata.md 3-4). Nothing is copied that can be written from where
    /// it is: the process items come from the sender's cache, the names
    /// from the message.
    pub(crate) fn head(&self, mask: u64, ns: &UserNamespace, c: &Consumer) -> Result<Head<'_>> {
        let mut fixed = Buf::new();
        fixed.put(&[0u8; MSG_HDR])?;
        fixed.put(&self.items)?;
        let mut end = MSG_HDR + self.items_end;
        let mut at = fixed.written();
        // Process items first (metadata.md 4 puts them before the
        // connection's), then names, description and timestamp.
        let process = match (&self.process, &self.sender) {
            (Some(p), Some(sender)) => match &*p.try_borrow().map_err(|_| EINVAL)? {
                Some(p) => sender.meta_cache.render(p, mask, ns, c)?,
                None => None,
            },
            _ => None,
        };
        if let Some(r) = &process {
            if let Some(e) = r.end() {
                end = at + e;
            }
            at += r.bytes().len();
        }
        let names = match mask & KDBUS_ATTACH_NAMES {
            0 => &[][..],
            _ => self.owned_names(),
        };
        if !names.is_empty() {
            if let Some(e) = pm::last_item_end(names) {
                end = at + e;
            }
            at += names.len();
        }
        // The connection's items, pre-encoded (metadata.md 4: description,
        // then timestamp).
        let description = match (mask & KDBUS_ATTACH_CONN_DESCRIPTION, &self.sender) {
            (0, _) | (_, None) => &[][..],
            (_, Some(s)) => match s.description_item() {
                Some((item, size)) => {
                    end = at + size;
                    at += item.len();
                    item
                }
                None => &[][..],
            },
        };
        let timestamp = match mask & KDBUS_ATTACH_TIMESTAMP {
            0 => None,
            _ => {
                end = at + pm::TIMESTAMP_ITEM;
                let t = *self.timestamp.get_or_init(|| timestamp(self.seq));
                Some(pm::timestamp_item(t))
            }
        };
        let msg_size = end as u64;
        let out = fixed.as_mut_slice();
        self.header.write(out, msg_size, self.src_id);
        // Patch the PAYLOAD_OFF offsets (message-relative), walking the
        // template: the same items at the same offsets past the header.
        msg::vec_offsets(
            Items::new(&self.items, 0).filter_map(|i| i.ok()),
            msg_size,
            |i, off| {
                item::write_u64(out, MSG_HDR + i.offset + HEADER_SIZE + 8, off);
            },
        );
        Ok(Head {
            fixed,
            process,
            names,
            description,
            timestamp,
            msg_size,
        })
    }

    /// The OWNED_NAME items of the sender's names at the first call (empty
    /// if it owns none, or for lack of memory).
    fn owned_names(&self) -> &[u8] {
        if let Some(n) = self.names.get() {
            return n;
        }
        // A sender without names needs no list (nor the registry lock);
        // kept empty, so every receiver sees the same.
        if self
            .sender
            .as_ref()
            .is_some_and(|s| s.name_records.load(Ordering::Relaxed) == 0)
        {
            let _ = self.names.set(KVVec::new());
            return &[];
        }
        let mut items = KVVec::new();
        if let Some(s) = self
            .sender
            .as_ref()
            .filter(|s| s.name_records.load(Ordering::Relaxed) != 0)
        {
            if let Ok(names) = s.ep.bus.owned_names(s) {
                for (flags, n) in names.iter() {
                    if pm::put_owned_name(&mut items, *flags, &n.name).is_err() {
                        items = KVVec::new();
                        break;
                    }
                }
            }
        }
        let _ = self.names.set(items);
        self.names.get().map_or(&[], |n| n.as_slice())
    }

    /// Writes the message into `pool` at `off`: the head, then the payload
    /// copied from the sender's memory, then zero padding up to `slice_size`.
    pub(crate) fn write_into(
        &self,
        pool: &Pool,
        off: u64,
        head: &Head<'_>,
        slice_size: u64,
    ) -> Result {
        let mut w = pool.writer(off, slice_size)?;
        w.kernel(head.fixed.as_slice())?;
        if let Some(p) = &head.process {
            w.kernel(p.bytes())?;
        }
        w.kernel(head.names)?;
        w.kernel(head.description)?;
        if let Some(t) = &head.timestamp {
            w.kernel(t)?;
        }
        for i in Items::new(&self.items, 0).filter_map(|i| i.ok()) {
            match i.ty as u32 {
                KDBUS_ITEM_PAYLOAD_OFF => {
                    let (size, addr) = (i.u64_at(0), i.u64_at(8));
                    if addr == 0 {
                        w.zeros(size % 8)?;
                    } else {
                        w.user(addr, size)?;
                    }
                }
                KDBUS_ITEM_PAYLOAD_MEMFD => w.zeros(i.u64_at(8) % 8)?,
                _ => {}
            }
        }
        w.zero_rest()
    }

    /// References to the message's files for one receiver, with the pool
    /// offsets of their descriptor fields in a slice at `off`.
    pub(crate) fn files_at(&self, off: u64) -> Result<KVec<(ARef<File>, u64)>> {
        let mut v = KVec::with_capacity(self.files.len(), gfp())?;
        for (f, slot) in self.files.iter() {
            v.push((f.clone(), off + *slot as u64), gfp())?;
        }
        Ok(v)
    }

    /// Whether placing the message reads the sender's memory.
    pub(crate) fn reads_user_memory(&self) -> bool {
        self.user_vecs
    }

    /// Whether the message carries files of the FDS item.
    pub(crate) fn has_fds(&self) -> bool {
        self.nfds > 0
    }
}
