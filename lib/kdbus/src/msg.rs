//! Messages: building a `struct kdbus_msg` to send (message.md 2-4),
//! predicting its delivered layout (message.md 14), and reading a delivered
//! message or a `kdbus_info` record from the pool.

use core::fmt;
use std::os::fd::RawFd;

use crate::bloom::{BloomFilter, BloomParams};
use crate::consts::*;
use crate::{align8, item_size_field, CmdBuf, Item, ItemError, ItemIter, ITEM_HEADER_SIZE};

/// Size of `struct kdbus_msg` without items.
pub const MSG_HEADER_SIZE: usize = 64;
/// Size of `struct kdbus_info` without items.
pub const INFO_HEADER_SIZE: usize = 24;
/// `PAYLOAD_OFF.offset` of a null vector in a delivered message (`~0ULL`,
/// the spec's recommended value, message.md 14).
pub const PAYLOAD_OFF_NULL: u64 = u64::MAX;
/// Size of a `KDBUS_ITEM_TIMESTAMP` item (16 + 24).
pub const TIMESTAMP_ITEM_SIZE: u64 = 40;

/// Byte offsets of the `kdbus_msg` header fields.
pub mod off {
    /// `size`.
    pub const SIZE: usize = 0;
    /// `flags`.
    pub const FLAGS: usize = 8;
    /// `priority` (s64).
    pub const PRIORITY: usize = 16;
    /// `dst_id`.
    pub const DST_ID: usize = 24;
    /// `src_id`.
    pub const SRC_ID: usize = 32;
    /// `payload_type`.
    pub const PAYLOAD_TYPE: usize = 40;
    /// `cookie`.
    pub const COOKIE: usize = 48;
    /// `timeout_ns` / `cookie_reply`.
    pub const TIMEOUT_NS: usize = 56;
}

/// One payload-carrying item as the sender described it, in item order
/// (what determines the delivered payload area).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadPart {
    /// A data vector of `size` bytes.
    Data(u64),
    /// A null vector (`address == 0`) standing for `size` zero bytes.
    Null(u64),
    /// A memfd region of `size` bytes.
    Memfd(u64),
}

/// Builder of a `struct kdbus_msg` with its items.
///
/// The message lives in an 8-byte aligned [`CmdBuf`] with a 64-byte fixed
/// part; `size` always equals the buffer length (items padded). Data
/// vectors added with [`MsgBuilder::vec`] are copied into buffers owned by
/// the builder, so their addresses stay valid as long as the builder lives.
/// Defaults: `payload_type = KDBUS_PAYLOAD_DBUS`, everything else 0.
#[derive(Clone)]
pub struct MsgBuilder {
    buf: CmdBuf,
    data: Vec<Box<[u8]>>,
    parts: Vec<PayloadPart>,
}

impl MsgBuilder {
    /// A message to `dst_id` with `payload_type = KDBUS_PAYLOAD_DBUS`.
    pub fn new(dst_id: u64) -> Self {
        let mut buf = CmdBuf::new(MSG_HEADER_SIZE);
        buf.set_u64(off::DST_ID, dst_id);
        buf.set_u64(off::PAYLOAD_TYPE, PAYLOAD_DBUS);
        MsgBuilder {
            buf,
            data: Vec::new(),
            parts: Vec::new(),
        }
    }

    fn field(mut self, off: usize, v: u64) -> Self {
        self.buf.set_u64(off, v);
        self
    }

    /// Sets `flags` (`KDBUS_MSG_*`).
    pub fn flags(self, flags: u64) -> Self {
        self.field(off::FLAGS, flags)
    }

    /// Sets `priority`.
    pub fn priority(self, priority: i64) -> Self {
        self.field(off::PRIORITY, priority as u64)
    }

    /// Sets `dst_id`.
    pub fn dst_id(self, id: u64) -> Self {
        self.field(off::DST_ID, id)
    }

    /// Sets `src_id` (must be 0 or the sender's ID).
    pub fn src_id(self, id: u64) -> Self {
        self.field(off::SRC_ID, id)
    }

    /// Sets `payload_type`.
    pub fn payload_type(self, t: u64) -> Self {
        self.field(off::PAYLOAD_TYPE, t)
    }

    /// Sets `cookie`.
    pub fn cookie(self, cookie: u64) -> Self {
        self.field(off::COOKIE, cookie)
    }

    /// Sets `timeout_ns` (absolute `CLOCK_MONOTONIC` deadline of a call).
    pub fn timeout_ns(self, deadline: u64) -> Self {
        self.field(off::TIMEOUT_NS, deadline)
    }

    /// Sets `cookie_reply` (same storage as `timeout_ns`).
    pub fn cookie_reply(self, cookie: u64) -> Self {
        self.field(off::TIMEOUT_NS, cookie)
    }

    /// Makes this a call: sets `KDBUS_MSG_EXPECT_REPLY` and the absolute
    /// deadline `deadline_ns`.
    pub fn call(self, deadline_ns: u64) -> Self {
        let f = self.buf.u64_at(off::FLAGS) | MSG_EXPECT_REPLY;
        self.flags(f).timeout_ns(deadline_ns)
    }

    /// Appends a `PAYLOAD_VEC` pointing to a builder-owned copy of `data`.
    ///
    /// An empty `data` produces a vector of size 0 with a non-null address
    /// (which the kernel must refuse).
    pub fn vec(mut self, data: &[u8]) -> Self {
        let owned: Box<[u8]> = if data.is_empty() {
            // A one-byte buffer so the address is real and non-zero.
            vec![0u8; 1].into_boxed_slice()
        } else {
            data.into()
        };
        let addr = owned.as_ptr() as u64;
        self.data.push(owned);
        self.parts.push(PayloadPart::Data(data.len() as u64));
        self.push_vec_item(data.len() as u64, addr)
    }

    /// Appends a null `PAYLOAD_VEC` (`address == 0`) of `size` bytes.
    pub fn null_vec(mut self, size: u64) -> Self {
        self.parts.push(PayloadPart::Null(size));
        self.push_vec_item(size, 0)
    }

    /// Appends a `PAYLOAD_VEC` with an arbitrary `size` and `address` (for
    /// bad addresses and sizes). An address of 0 counts as a null vector.
    pub fn vec_raw(mut self, size: u64, address: u64) -> Self {
        self.parts.push(if address == 0 {
            PayloadPart::Null(size)
        } else {
            PayloadPart::Data(size)
        });
        self.push_vec_item(size, address)
    }

    fn push_vec_item(mut self, size: u64, address: u64) -> Self {
        self.buf.push_u64s(ITEM_PAYLOAD_VEC, &[size, address]);
        self
    }

    /// Appends a `PAYLOAD_MEMFD` item `{start, size, fd}`.
    pub fn memfd(mut self, fd: RawFd, start: u64, size: u64) -> Self {
        self.parts.push(PayloadPart::Memfd(size));
        let mut p = Vec::with_capacity(24);
        p.extend_from_slice(&start.to_ne_bytes());
        p.extend_from_slice(&size.to_ne_bytes());
        p.extend_from_slice(&fd.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push_item(ITEM_PAYLOAD_MEMFD, &p);
        self
    }

    /// Appends a `KDBUS_ITEM_FDS` item with the given descriptor numbers
    /// (`size` = 16 + 4 * n, unpadded).
    pub fn fds(mut self, fds: &[RawFd]) -> Self {
        let p: Vec<u8> = fds.iter().flat_map(|f| f.to_ne_bytes()).collect();
        self.buf.push_item(ITEM_FDS, &p);
        self
    }

    /// Appends a `KDBUS_ITEM_DST_NAME` string item.
    pub fn dst_name(mut self, name: &str) -> Self {
        self.buf.push_str(ITEM_DST_NAME, name);
        self
    }

    /// Appends a `KDBUS_ITEM_BLOOM_FILTER` item: `generation`, then `data`.
    pub fn bloom_filter(mut self, generation: u64, data: &[u8]) -> Self {
        let mut p = Vec::with_capacity(8 + data.len());
        p.extend_from_slice(&generation.to_ne_bytes());
        p.extend_from_slice(data);
        self.buf.push_item(ITEM_BLOOM_FILTER, &p);
        self
    }

    /// Appends the `KDBUS_ITEM_BLOOM_FILTER` item of `filter` (its
    /// generation, then its bytes; see [`crate::bloom::SignalFilter`]).
    pub fn bloom(self, filter: &BloomFilter) -> Self {
        self.bloom_filter(filter.generation, &filter.bloom.to_bytes())
    }

    /// A signal (`KDBUS_MSG_SIGNAL`) to `dst_id` (a connection ID,
    /// `KDBUS_DST_ID_NAME` with a [`MsgBuilder::dst_name`], or
    /// `KDBUS_DST_ID_BROADCAST`) carrying `filter` as its
    /// `KDBUS_ITEM_BLOOM_FILTER`; add the payload vectors after it.
    pub fn signal(dst_id: u64, filter: &BloomFilter) -> Self {
        Self::new(dst_id).flags(MSG_SIGNAL).bloom(filter)
    }

    /// A broadcast signal (`dst_id = KDBUS_DST_ID_BROADCAST`,
    /// `KDBUS_MSG_SIGNAL`) carrying `filter` (message.md 9.1).
    pub fn broadcast(filter: &BloomFilter) -> Self {
        Self::signal(crate::DST_ID_BROADCAST, filter)
    }

    /// Appends a `KDBUS_ITEM_NEGOTIATE` item listing item types.
    pub fn negotiate(mut self, types: &[u64]) -> Self {
        self.buf.push_negotiate(types);
        self
    }

    /// Appends any well-formed item (`size` = 16 + payload length).
    pub fn item(mut self, ty: u64, payload: &[u8]) -> Self {
        self.buf.push_item(ty, payload);
        self
    }

    /// Appends an item whose `size` field is `size_field` regardless of the
    /// payload written (malformed items).
    pub fn item_with_size(mut self, size_field: u64, ty: u64, payload: &[u8]) -> Self {
        self.buf.push_item_with_size(size_field, ty, payload);
        self
    }

    /// Appends raw bytes (zero-padded to 8) after the items.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.push_raw(bytes);
        self
    }

    /// Overwrites `size` (call last; later appends reset it).
    pub fn with_size(mut self, size: u64) -> Self {
        self.buf.set_size(size);
        self
    }

    /// The message's `size` field.
    pub fn size(&self) -> u64 {
        self.buf.size()
    }

    /// The message's `flags`.
    pub fn get_flags(&self) -> u64 {
        self.buf.u64_at(off::FLAGS)
    }

    /// The message's `cookie`.
    pub fn get_cookie(&self) -> u64 {
        self.buf.u64_at(off::COOKIE)
    }

    /// The message buffer (header + items).
    pub fn cmd(&self) -> &CmdBuf {
        &self.buf
    }

    /// The message buffer, mutable (to patch any field or byte).
    pub fn cmd_mut(&mut self) -> &mut CmdBuf {
        &mut self.buf
    }

    /// The payload-carrying items in order (vectors and memfds).
    pub fn payload_parts(&self) -> &[PayloadPart] {
        &self.parts
    }

    /// The sizes (`size` fields) of the message's items in order.
    pub fn item_sizes(&self) -> Vec<u64> {
        self.buf
            .items()
            .filter_map(Result::ok)
            .map(|i| i.size)
            .collect()
    }

    /// The layout the receiver must see for this message when the kernel
    /// appends metadata items of the given `size` fields (message.md 14;
    /// e.g. `&[TIMESTAMP_ITEM_SIZE]` for a receiver asking only for
    /// TIMESTAMP, `&[]` for none).
    pub fn delivered_layout(&self, metadata_item_sizes: &[u64]) -> Layout {
        Layout::compute(&self.item_sizes(), metadata_item_sizes, &self.parts)
    }
}

impl fmt::Debug for MsgBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgBuilder")
            .field("buf", &self.buf)
            .field("parts", &self.parts)
            .finish()
    }
}

/// The expected delivered layout of a message (message.md 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The delivered `kdbus_msg.size` (end of the last item, unpadded).
    pub msg_size: u64,
    /// Start of the inline payload area, `ALIGN8(msg_size)`.
    pub payload_base: u64,
    /// `(size, offset)` of every `PAYLOAD_OFF` item in order; null vectors
    /// carry [`PAYLOAD_OFF_NULL`].
    pub payload_offs: Vec<(u64, u64)>,
    /// The slice size (`msg_info.msg_size`).
    pub slice_size: u64,
}

fn stream_end(sizes: &[u64]) -> u64 {
    match sizes.split_last() {
        None => 0,
        Some((last, rest)) => rest.iter().map(|s| align8(*s as usize) as u64).sum::<u64>() + last,
    }
}

impl Layout {
    /// Computes the layout from the `size` fields of the sender's items, of
    /// the metadata items appended for the receiver, and the payload parts.
    pub fn compute(item_sizes: &[u64], metadata_item_sizes: &[u64], parts: &[PayloadPart]) -> Self {
        let header = MSG_HEADER_SIZE as u64;
        let items_end = header + stream_end(item_sizes);
        let msg_size = if metadata_item_sizes.is_empty() {
            items_end
        } else {
            align8(items_end as usize) as u64 + stream_end(metadata_item_sizes)
        };
        let base = align8(msg_size as usize) as u64;
        let mut pos = 0u64;
        let mut payload_offs = Vec::new();
        for p in parts {
            match *p {
                PayloadPart::Data(n) => {
                    payload_offs.push((n, base + pos));
                    pos += n;
                }
                PayloadPart::Null(n) => {
                    payload_offs.push((n, PAYLOAD_OFF_NULL));
                    pos += n % 8;
                }
                PayloadPart::Memfd(n) => pos += n % 8,
            }
        }
        Layout {
            msg_size,
            payload_base: base,
            payload_offs,
            slice_size: align8((base + pos) as usize) as u64,
        }
    }
}

/// Why a pool record could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl From<ItemError> for ParseError {
    fn from(e: ItemError) -> Self {
        ParseError(e.to_string())
    }
}

fn perr<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

/// A `KDBUS_ITEM_TIMESTAMP` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    /// The message's bus sequence number.
    pub seqnum: u64,
    /// `CLOCK_MONOTONIC` in ns.
    pub monotonic_ns: u64,
    /// `CLOCK_REALTIME` in ns.
    pub realtime_ns: u64,
}

/// A `KDBUS_ITEM_PAYLOAD_MEMFD` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemfdItem {
    /// Start of the region in the file.
    pub start: u64,
    /// Length of the region.
    pub size: u64,
    /// The descriptor (in a delivered message: the receiver's new number,
    /// or -1).
    pub fd: i32,
    /// The padding word.
    pub pad: u32,
}

/// One resolved `PAYLOAD_OFF` item of a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A data vector: its bytes in the slice.
    Data(&'a [u8]),
    /// A null vector (`offset == ~0`) of `size` bytes.
    Null(u64),
}

/// A delivered message read from the pool (message.md 14).
#[derive(Debug, Clone)]
pub struct Message<'a> {
    /// The whole slice (`msg_info.msg_size` bytes from the message start).
    pub slice: &'a [u8],
    /// `size`.
    pub size: u64,
    /// `flags`.
    pub flags: u64,
    /// `priority`.
    pub priority: i64,
    /// `dst_id`.
    pub dst_id: u64,
    /// `src_id`.
    pub src_id: u64,
    /// `payload_type`.
    pub payload_type: u64,
    /// `cookie`.
    pub cookie: u64,
    /// `timeout_ns` / `cookie_reply`.
    pub timeout_or_reply: u64,
    /// The items between the header and `size`; `Item::offset` is relative
    /// to the start of the message.
    pub items: Vec<Item<'a>>,
}

impl<'a> Message<'a> {
    /// Parses the message at the start of `slice` (a whole pool slice).
    /// Checks `64 <= size <= slice.len()` and that the item stream in
    /// `[64, size)` is well-formed.
    pub fn parse(slice: &'a [u8]) -> Result<Self, ParseError> {
        if slice.len() < MSG_HEADER_SIZE {
            return perr(format!(
                "slice of {} bytes is shorter than a kdbus_msg",
                slice.len()
            ));
        }
        let size = u64_at(slice, off::SIZE);
        if size < MSG_HEADER_SIZE as u64 || size > slice.len() as u64 {
            return perr(format!(
                "kdbus_msg.size {size} outside [64, slice size {}]",
                slice.len()
            ));
        }
        let mut items = Vec::new();
        for it in ItemIter::new(&slice[MSG_HEADER_SIZE..size as usize]) {
            let mut it = it?;
            it.offset += MSG_HEADER_SIZE;
            items.push(it);
        }
        Ok(Message {
            slice,
            size,
            flags: u64_at(slice, off::FLAGS),
            priority: u64_at(slice, off::PRIORITY) as i64,
            dst_id: u64_at(slice, off::DST_ID),
            src_id: u64_at(slice, off::SRC_ID),
            payload_type: u64_at(slice, off::PAYLOAD_TYPE),
            cookie: u64_at(slice, off::COOKIE),
            timeout_or_reply: u64_at(slice, off::TIMEOUT_NS),
            items,
        })
    }

    /// `cookie_reply` (alias of `timeout_or_reply`).
    pub fn cookie_reply(&self) -> u64 {
        self.timeout_or_reply
    }

    /// `timeout_ns` (alias of `timeout_or_reply`).
    pub fn timeout_ns(&self) -> u64 {
        self.timeout_or_reply
    }

    /// The item types in order.
    pub fn item_types(&self) -> Vec<u64> {
        self.items.iter().map(|i| i.ty).collect()
    }

    /// All items of type `ty`.
    pub fn items_of(&self, ty: u64) -> impl Iterator<Item = &Item<'a>> {
        self.items.iter().filter(move |i| i.ty == ty)
    }

    /// The first item of type `ty`.
    pub fn item(&self, ty: u64) -> Option<&Item<'a>> {
        self.items_of(ty).next()
    }

    /// `(size, offset)` of every `PAYLOAD_OFF` item (`None` for a
    /// malformed one, i.e. payload not 16 bytes).
    pub fn payload_offs(&self) -> Vec<Option<(u64, u64)>> {
        self.items_of(ITEM_PAYLOAD_OFF)
            .map(|i| match i.u64s()?.as_slice() {
                [s, o] => Some((*s, *o)),
                _ => None,
            })
            .collect()
    }

    /// Resolves every `PAYLOAD_OFF` item: data vectors to their bytes in
    /// the slice (offsets are message-relative), null vectors (`~0`) to
    /// their size. Fails if an offset range leaves the slice.
    pub fn payloads(&self) -> Result<Vec<Payload<'a>>, ParseError> {
        let mut v = Vec::new();
        for (i, po) in self.payload_offs().into_iter().enumerate() {
            let Some((size, offset)) = po else {
                return perr(format!("PAYLOAD_OFF item {i} is not 16 bytes"));
            };
            if offset == PAYLOAD_OFF_NULL {
                v.push(Payload::Null(size));
                continue;
            }
            let end = offset.checked_add(size);
            match end {
                Some(end) if end <= self.slice.len() as u64 && offset >= self.size => {
                    v.push(Payload::Data(&self.slice[offset as usize..end as usize]));
                }
                _ => {
                    return perr(format!(
                        "PAYLOAD_OFF {i} {{size {size}, offset {offset:#x}}} not inside the payload area [{}, {})",
                        self.size,
                        self.slice.len()
                    ))
                }
            }
        }
        Ok(v)
    }

    /// The logical payload stream of the vectors: data bytes concatenated,
    /// null vectors as `size` zero bytes.
    pub fn payload_stream(&self) -> Result<Vec<u8>, ParseError> {
        let mut out = Vec::new();
        for p in self.payloads()? {
            match p {
                Payload::Data(d) => out.extend_from_slice(d),
                Payload::Null(n) => out.resize(out.len() + n as usize, 0),
            }
        }
        Ok(out)
    }

    /// The concatenated bytes of the data vectors only.
    pub fn data(&self) -> Result<Vec<u8>, ParseError> {
        let mut out = Vec::new();
        for p in self.payloads()? {
            if let Payload::Data(d) = p {
                out.extend_from_slice(d);
            }
        }
        Ok(out)
    }

    /// The descriptor numbers of the `KDBUS_ITEM_FDS` item, if any.
    pub fn fds(&self) -> Option<Vec<i32>> {
        let it = self.item(ITEM_FDS)?;
        Some(
            it.payload
                .chunks_exact(4)
                .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }

    /// Every well-formed `PAYLOAD_MEMFD` item.
    pub fn memfds(&self) -> Vec<MemfdItem> {
        self.items_of(ITEM_PAYLOAD_MEMFD)
            .filter(|i| i.payload.len() == 24)
            .map(|i| MemfdItem {
                start: u64_at(i.payload, 0),
                size: u64_at(i.payload, 8),
                fd: i32::from_ne_bytes(i.payload[16..20].try_into().unwrap()),
                pad: u32::from_ne_bytes(i.payload[20..24].try_into().unwrap()),
            })
            .collect()
    }

    /// The `KDBUS_ITEM_TIMESTAMP` payload, if present and 24 bytes long.
    pub fn timestamp(&self) -> Option<Timestamp> {
        let i = self.item(ITEM_TIMESTAMP)?;
        match i.u64s()?.as_slice() {
            [seqnum, mono, real] => Some(Timestamp {
                seqnum: *seqnum,
                monotonic_ns: *mono,
                realtime_ns: *real,
            }),
            _ => None,
        }
    }

    /// The `KDBUS_ITEM_BLOOM_FILTER` item as `(generation, data bytes)`
    /// (`None` if absent or shorter than the generation word).
    pub fn bloom_filter_item(&self) -> Option<(u64, &'a [u8])> {
        let i = self.item(ITEM_BLOOM_FILTER)?;
        if i.payload.len() < 8 {
            return None;
        }
        Some((u64_at(i.payload, 0), &i.payload[8..]))
    }

    /// The bloom filter for a bus with `params` (`None` if there is none or
    /// its data is not `params.size()` bytes).
    pub fn bloom_filter(&self, params: BloomParams) -> Option<BloomFilter> {
        let i = self.item(ITEM_BLOOM_FILTER)?;
        BloomFilter::from_item_payload(params, i.payload).ok()
    }

    /// The bytes between the end of the items (`size`) and the payload area
    /// base, plus the payload area itself: `slice[size..]`.
    pub fn tail(&self) -> &'a [u8] {
        &self.slice[self.size as usize..]
    }
}

/// An item copied out of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedItem {
    /// Offset of the item from the start of its record.
    pub offset: usize,
    /// The `size` field.
    pub size: u64,
    /// The `type` field.
    pub ty: u64,
    /// The payload (`size - 16` bytes).
    pub payload: Vec<u8>,
}

impl OwnedItem {
    /// A borrowed [`Item`] view (for its helpers such as `as_str`).
    pub fn as_item(&self) -> Item<'_> {
        Item {
            offset: self.offset,
            size: self.size,
            ty: self.ty,
            payload: &self.payload,
        }
    }
}

/// A `struct kdbus_info` record (CONN_INFO, BUS_CREATOR_INFO, LIST) copied
/// out of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRecord {
    /// Offset of the record from the start of the parsed area.
    pub offset: usize,
    /// `size` (including padding).
    pub size: u64,
    /// `id`.
    pub id: u64,
    /// `flags`.
    pub flags: u64,
    /// The items in `[24, size)`.
    pub items: Vec<OwnedItem>,
}

impl InfoRecord {
    /// Parses back-to-back records filling `bytes` (each `size >= 24` and
    /// inside `bytes`; the next record starts at `ALIGN8(size)`).
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Self>, ParseError> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            if rest.len() < INFO_HEADER_SIZE {
                return perr(format!("truncated kdbus_info at offset {pos}"));
            }
            let size = u64_at(rest, 0);
            if size < INFO_HEADER_SIZE as u64 || size > rest.len() as u64 {
                return perr(format!(
                    "kdbus_info at offset {pos} has size {size} outside [24, {}]",
                    rest.len()
                ));
            }
            let mut items = Vec::new();
            for it in ItemIter::new(&rest[INFO_HEADER_SIZE..size as usize]) {
                let it = it?;
                items.push(OwnedItem {
                    offset: it.offset + INFO_HEADER_SIZE,
                    size: it.size,
                    ty: it.ty,
                    payload: it.payload.to_vec(),
                });
            }
            out.push(InfoRecord {
                offset: pos,
                size,
                id: u64_at(rest, 8),
                flags: u64_at(rest, 16),
                items,
            });
            pos += align8(size as usize);
        }
        Ok(out)
    }
}

/// `16 + payload_len` as the size field of an item (re-exported helper for
/// expected sizes).
pub const fn item_size(payload_len: usize) -> u64 {
    item_size_field(payload_len)
}

/// Space a metadata/payload item of `size` occupies (`ALIGN8(size)`).
pub const fn padded(size: u64) -> u64 {
    align8(size as usize) as u64
}

const _: () = assert!(ITEM_HEADER_SIZE == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_defaults_and_fields() {
        let m = MsgBuilder::new(7)
            .cookie(9)
            .priority(-3)
            .src_id(2)
            .flags(MSG_NO_AUTO_START)
            .call(1234);
        let b = m.cmd();
        assert_eq!(m.size(), 64);
        assert_eq!(b.u64_at(off::DST_ID), 7);
        assert_eq!(b.u64_at(off::COOKIE), 9);
        assert_eq!(b.u64_at(off::PRIORITY) as i64, -3);
        assert_eq!(b.u64_at(off::SRC_ID), 2);
        assert_eq!(b.u64_at(off::PAYLOAD_TYPE), PAYLOAD_DBUS);
        assert_eq!(m.get_flags(), MSG_NO_AUTO_START | MSG_EXPECT_REPLY);
        assert_eq!(b.u64_at(off::TIMEOUT_NS), 1234);
        assert_eq!(b.as_bytes().as_ptr() as usize % 8, 0);
    }

    #[test]
    fn item_sizes_and_addresses() {
        let m = MsgBuilder::new(1)
            .vec(b"hello")
            .null_vec(3)
            .memfd(5, 8, 100)
            .fds(&[3, 4, 5])
            .dst_name("a.b")
            .bloom_filter(1, &[0xff; 8]);
        // 64 + vec 32 + null 32 + memfd 40 + fds (16+12=28 -> 32) +
        // name (16+4=20 -> 24) + bloom (16+16=32).
        assert_eq!(m.size(), 64 + 32 + 32 + 40 + 32 + 24 + 32);
        assert_eq!(m.item_sizes(), vec![32, 32, 40, 28, 20, 32]);
        let items = m.cmd().items().collect_items().unwrap();
        let v = items[0].u64s().unwrap();
        assert_eq!(v[0], 5);
        // SAFETY: the address points into the builder's owned copy.
        let s = unsafe { std::slice::from_raw_parts(v[1] as *const u8, 5) };
        assert_eq!(s, b"hello");
        assert_eq!(items[1].u64s().unwrap(), vec![3, 0]);
        let mf = &items[2].payload;
        assert_eq!(u64_at(mf, 0), 8);
        assert_eq!(u64_at(mf, 8), 100);
        assert_eq!(i32::from_ne_bytes(mf[16..20].try_into().unwrap()), 5);
        assert_eq!(items[3].payload, &[3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(items[4].as_str(), Some("a.b"));
        assert_eq!(
            m.payload_parts(),
            &[
                PayloadPart::Data(5),
                PayloadPart::Null(3),
                PayloadPart::Memfd(100)
            ]
        );
    }

    #[test]
    fn broadcast_with_bloom_filter() {
        use crate::bloom::SignalFilter;
        let p = BloomParams::DEFAULT;
        let f = SignalFilter::new()
            .interface("org.example.Echo")
            .member("Pinged")
            .path("/org/example")
            .arg_str("hi")
            .filter(p, 0);
        let m = MsgBuilder::broadcast(&f).cookie(3).vec(b"x");
        assert_eq!(m.cmd().u64_at(off::DST_ID), crate::DST_ID_BROADCAST);
        assert_eq!(m.get_flags(), MSG_SIGNAL);
        // dbus-on-kdbus.md 9.3: the BLOOM_FILTER item has size 88.
        assert_eq!(m.item_sizes(), vec![88, 32]);
        let msg = Message::parse(m.cmd().as_bytes()).unwrap();
        let (gen, data) = msg.bloom_filter_item().unwrap();
        assert_eq!((gen, data), (0, &f.bloom.to_bytes()[..]));
        assert_eq!(msg.bloom_filter(p), Some(f.clone()));
        assert_eq!(msg.bloom_filter(BloomParams::new(128, 8).unwrap()), None);
        let u = MsgBuilder::signal(9, &BloomFilter::new(2, f.bloom.clone()));
        assert_eq!(u.cmd().u64_at(off::DST_ID), 9);
        let msg = Message::parse(u.cmd().as_bytes()).unwrap();
        assert_eq!(msg.bloom_filter_item().unwrap().0, 2);
        let plain = MsgBuilder::new(1);
        let msg = Message::parse(plain.cmd().as_bytes()).unwrap();
        assert_eq!(msg.bloom_filter_item(), None);
        assert_eq!(msg.bloom_filter(p), None);
    }

    #[test]
    fn vec_data_survives_builder_moves() {
        let mut m = MsgBuilder::new(1);
        for i in 0..20u8 {
            m = m.vec(&[i; 3]);
        }
        let m2 = m.clone();
        for (k, it) in m.cmd().items().enumerate() {
            let v = it.unwrap().u64s().unwrap();
            // SAFETY: the builder owns the data.
            let s = unsafe { std::slice::from_raw_parts(v[1] as *const u8, 3) };
            assert_eq!(s, &[k as u8; 3]);
        }
        drop(m2);
    }

    #[test]
    fn worked_example_layout() {
        // message.md 14: VEC(13), null VEC(3), VEC(8), receiver wants
        // TIMESTAMP only.
        let m = MsgBuilder::new(1).vec(&[1; 13]).null_vec(3).vec(&[2; 8]);
        assert_eq!(m.size(), 160);
        let l = m.delivered_layout(&[TIMESTAMP_ITEM_SIZE]);
        assert_eq!(l.msg_size, 200);
        assert_eq!(l.payload_base, 200);
        assert_eq!(
            l.payload_offs,
            vec![(13, 200), (3, PAYLOAD_OFF_NULL), (8, 216)]
        );
        assert_eq!(l.slice_size, 224);
        let l0 = m.delivered_layout(&[]);
        assert_eq!(l0.msg_size, 160);
        assert_eq!(
            l0.payload_offs,
            vec![(13, 160), (3, PAYLOAD_OFF_NULL), (8, 176)]
        );
        assert_eq!(l0.slice_size, 184);
    }

    #[test]
    fn layout_unpadded_last_item_and_memfd() {
        // One fd: FDS size 20, msg.size 84 unpadded, no payload area.
        let m = MsgBuilder::new(1).fds(&[0]);
        let l = m.delivered_layout(&[]);
        assert_eq!(l.msg_size, 84);
        assert_eq!(l.slice_size, 88);
        let l = m.delivered_layout(&[TIMESTAMP_ITEM_SIZE]);
        assert_eq!(l.msg_size, 88 + 40);
        assert_eq!(l.slice_size, 128);
        // A memfd of 13 bytes materialises 5 zero bytes.
        let m = MsgBuilder::new(1).memfd(3, 0, 13).vec(b"abc");
        let l = m.delivered_layout(&[]);
        assert_eq!(l.msg_size, 64 + 40 + 32);
        assert_eq!(l.payload_offs, vec![(3, 136 + 5)]);
        assert_eq!(l.slice_size, 144);
        // No items at all.
        let l = MsgBuilder::new(1).delivered_layout(&[]);
        assert_eq!((l.msg_size, l.slice_size), (64, 64));
        let l = MsgBuilder::new(1).delivered_layout(&[TIMESTAMP_ITEM_SIZE]);
        assert_eq!((l.msg_size, l.slice_size), (104, 104));
    }

    #[test]
    fn reply_timeout_notification_size() {
        // message.md 12: a REPLY_TIMEOUT notification is 120 bytes.
        let l = Layout::compute(&[16], &[TIMESTAMP_ITEM_SIZE], &[]);
        assert_eq!(l.msg_size, 120);
        assert_eq!(l.slice_size, 120);
    }

    fn delivered_example() -> Vec<u64> {
        // Hand-written delivered copy of the worked example.
        let mut w = vec![0u64; 28];
        w[0] = 200;
        w[4] = 5; // src_id
        w[5] = PAYLOAD_DBUS;
        w[6] = 77;
        // items at 64: PAYLOAD_OFF x3, TIMESTAMP
        w[8] = 32;
        w[9] = ITEM_PAYLOAD_OFF;
        w[10] = 13;
        w[11] = 200;
        w[12] = 32;
        w[13] = ITEM_PAYLOAD_OFF;
        w[14] = 3;
        w[15] = u64::MAX;
        w[16] = 32;
        w[17] = ITEM_PAYLOAD_OFF;
        w[18] = 8;
        w[19] = 216;
        w[20] = 40;
        w[21] = ITEM_TIMESTAMP;
        w[22] = 11;
        w[23] = 22;
        w[24] = 33;
        // payload: 13 bytes of 1, 3 zero, 8 bytes of 2
        w[25] = u64::from_ne_bytes([1; 8]);
        w[26] = u64::from_ne_bytes([1, 1, 1, 1, 1, 0, 0, 0]);
        w[27] = u64::from_ne_bytes([2; 8]);
        w
    }

    fn bytes(w: &[u64]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn parse_delivered_message() {
        let b = bytes(&delivered_example());
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.size, 200);
        assert_eq!(m.src_id, 5);
        assert_eq!(m.cookie, 77);
        assert_eq!(
            m.item_types(),
            vec![
                ITEM_PAYLOAD_OFF,
                ITEM_PAYLOAD_OFF,
                ITEM_PAYLOAD_OFF,
                ITEM_TIMESTAMP
            ]
        );
        assert_eq!(m.items[0].offset, 64);
        assert_eq!(m.items[3].offset, 160);
        assert_eq!(
            m.payloads().unwrap(),
            vec![
                Payload::Data(&[1; 13]),
                Payload::Null(3),
                Payload::Data(&[2; 8])
            ]
        );
        let mut stream = vec![1u8; 13];
        stream.extend_from_slice(&[0; 3]);
        stream.extend_from_slice(&[2; 8]);
        assert_eq!(m.payload_stream().unwrap(), stream);
        assert_eq!(m.data().unwrap().len(), 21);
        assert_eq!(
            m.timestamp(),
            Some(Timestamp {
                seqnum: 11,
                monotonic_ns: 22,
                realtime_ns: 33
            })
        );
        assert_eq!(m.fds(), None);
        assert!(m.memfds().is_empty());
        assert_eq!(m.tail().len(), 24);
    }

    #[test]
    fn parse_rejects_bad_messages() {
        let mut w = delivered_example();
        w[0] = 63;
        assert!(Message::parse(&bytes(&w)).is_err());
        w[0] = 225;
        assert!(Message::parse(&bytes(&w)).is_err());
        assert!(Message::parse(&[0; 40]).is_err());
        // A payload offset beyond the slice.
        let mut w = delivered_example();
        w[19] = 220;
        let b = bytes(&w);
        assert!(Message::parse(&b).unwrap().payloads().is_err());
        // A payload offset inside the items.
        let mut w = delivered_example();
        w[11] = 64;
        let b = bytes(&w);
        assert!(Message::parse(&b).unwrap().payloads().is_err());
        // A broken item stream.
        let mut w = delivered_example();
        w[8] = 8;
        assert!(Message::parse(&bytes(&w)).is_err());
    }

    #[test]
    fn parse_fds_and_memfd() {
        let m = MsgBuilder::new(1).memfd(9, 4, 100).fds(&[7, -1]);
        let mut b = m.cmd().as_bytes().to_vec();
        // size unpadded: 64 + 40 + 24
        b[..8].copy_from_slice(&(64u64 + 40 + 24).to_ne_bytes());
        let msg = Message::parse(&b).unwrap();
        assert_eq!(msg.fds(), Some(vec![7, -1]));
        assert_eq!(
            msg.memfds(),
            vec![MemfdItem {
                start: 4,
                size: 100,
                fd: 9,
                pad: 0
            }]
        );
    }

    #[test]
    fn parse_info_records() {
        let mut w: Vec<u64> = vec![24, 2, 1, 24, 3, 0];
        // A record with a MAKE_NAME item "0-x" (size 20 -> padded 24).
        let name = u64::from_ne_bytes(*b"0-x\0\0\0\0\0");
        w.extend_from_slice(&[48, 1, 2, 20, ITEM_MAKE_NAME, name]);
        let r = InfoRecord::parse_all(&bytes(&w)).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].size, r[0].id, r[0].flags), (24, 2, 1));
        assert_eq!((r[1].offset, r[1].id), (24, 3));
        assert_eq!(r[2].items.len(), 1);
        assert_eq!(r[2].items[0].as_item().as_str(), Some("0-x"));
        assert_eq!(r[2].items[0].offset, 24);
        assert!(InfoRecord::parse_all(&bytes(&[16, 0, 0])).is_err());
        assert!(InfoRecord::parse_all(&bytes(&[32, 0, 0])).is_err());
        assert!(InfoRecord::parse_all(&[0; 8]).is_err());
        assert_eq!(InfoRecord::parse_all(&[]).unwrap(), vec![]);
    }
}
