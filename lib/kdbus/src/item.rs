//! Item streams: building commands with items, and walking item streams the
//! kernel produced (spec abi.md sections 2 and 5).

use core::fmt;
use core::mem::size_of;

use kdbus_uapi as uapi;

/// Size of an item header (`u64 size` + `u64 type`).
pub const ITEM_HEADER_SIZE: usize = 16;

/// `ALIGN8(n)`: rounds `n` up to the next multiple of 8.
///
/// # Panics
///
/// Panics on overflow (only possible for `n > usize::MAX - 7`).
pub const fn align8(n: usize) -> usize {
    match n.checked_add(7) {
        Some(v) => v & !7,
        None => panic!("align8 overflow"),
    }
}

/// `ALIGN8` on a `u64`, `None` on overflow (for sizes read from the kernel
/// or from untrusted data).
pub const fn checked_align8(n: u64) -> Option<u64> {
    match n.checked_add(7) {
        Some(v) => Some(v & !7),
        None => None,
    }
}

/// `KDBUS_ITEM_SIZE(payload_len)`: the space an item with a payload of
/// `payload_len` bytes occupies in a stream, including trailing padding.
pub const fn item_space(payload_len: usize) -> usize {
    align8(ITEM_HEADER_SIZE + payload_len)
}

/// The value of an item's `size` field for a payload of `payload_len`
/// bytes: `16 + payload_len`, without padding.
pub const fn item_size_field(payload_len: usize) -> u64 {
    (ITEM_HEADER_SIZE + payload_len) as u64
}

/// Fixed size of `struct kdbus_cmd` (BUS_MAKE, ENDPOINT_*, UPDATE, BYEBYE,
/// NAME_*).
pub const CMD_SIZE: usize = size_of::<uapi::kdbus_cmd>();
/// Fixed size of `struct kdbus_cmd_hello`.
pub const CMD_HELLO_SIZE: usize = size_of::<uapi::kdbus_cmd_hello>();
/// Fixed size of `struct kdbus_cmd_free`.
pub const CMD_FREE_SIZE: usize = size_of::<uapi::kdbus_cmd_free>();
/// Fixed size of `struct kdbus_cmd_info` (CONN_INFO, BUS_CREATOR_INFO).
pub const CMD_INFO_SIZE: usize = size_of::<uapi::kdbus_cmd_info>();
/// Fixed size of `struct kdbus_cmd_list`.
pub const CMD_LIST_SIZE: usize = size_of::<uapi::kdbus_cmd_list>();
/// Fixed size of `struct kdbus_cmd_send`.
pub const CMD_SEND_SIZE: usize = size_of::<uapi::kdbus_cmd_send>();
/// Fixed size of `struct kdbus_cmd_recv`.
pub const CMD_RECV_SIZE: usize = size_of::<uapi::kdbus_cmd_recv>();
/// Fixed size of `struct kdbus_cmd_match` (MATCH_ADD, MATCH_REMOVE).
pub const CMD_MATCH_SIZE: usize = size_of::<uapi::kdbus_cmd_match>();

/// Byte offset of `flags` in every command struct.
pub const OFF_FLAGS: usize = 8;
/// Byte offset of `return_flags` in every command struct.
pub const OFF_RETURN_FLAGS: usize = 16;

/// An 8-byte aligned command buffer: a fixed command struct followed by an
/// item stream.
///
/// The buffer is a vector of `u64` words, so its address is always 8-byte
/// aligned and its length a multiple of 8. Every `push_*` method appends one
/// item (header, payload, zero padding up to the next multiple of 8) and sets
/// the command's leading `size` field to the new buffer length, i.e. the
/// size *includes* the padding of the last item (the kernel accepts both
/// forms, abi.md 5.2). Use [`CmdBuf::set_size`] last to send any other
/// size.
#[derive(Clone, PartialEq, Eq)]
pub struct CmdBuf {
    words: Vec<u64>,
    fixed: usize,
}

impl CmdBuf {
    /// A zeroed command whose fixed part is `fixed` bytes, with `size` set
    /// to `fixed`.
    ///
    /// # Panics
    ///
    /// Panics if `fixed` is smaller than 8 or not a multiple of 8.
    pub fn new(fixed: usize) -> Self {
        assert!(
            fixed >= 8 && fixed.is_multiple_of(8),
            "fixed command size {fixed} must be a non-zero multiple of 8"
        );
        let mut b = CmdBuf {
            words: vec![0; fixed / 8],
            fixed,
        };
        b.sync_size();
        b
    }

    /// A `struct kdbus_cmd` (24 bytes) with the given `flags`.
    pub fn cmd(flags: u64) -> Self {
        let mut b = Self::new(CMD_SIZE);
        b.set_flags(flags);
        b
    }

    /// A `struct kdbus_cmd_hello` (96 bytes) with the given input fields.
    pub fn hello(
        flags: u64,
        attach_flags_send: u64,
        attach_flags_recv: u64,
        pool_size: u64,
    ) -> Self {
        let mut b = Self::new(CMD_HELLO_SIZE);
        b.set_flags(flags);
        b.set_u64(24, attach_flags_send);
        b.set_u64(32, attach_flags_recv);
        b.set_u64(56, pool_size);
        b
    }

    /// A `struct kdbus_cmd_free` (32 bytes) releasing `offset`.
    pub fn free(offset: u64) -> Self {
        let mut b = Self::new(CMD_FREE_SIZE);
        b.set_u64(24, offset);
        b
    }

    /// Size of the fixed command struct at the start of the buffer.
    pub fn fixed_size(&self) -> usize {
        self.fixed
    }

    /// Length of the buffer in bytes (always a multiple of 8).
    pub fn len(&self) -> usize {
        self.words.len() * 8
    }

    /// Never true: the buffer holds at least the `size` field.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The buffer as `u64` words (what [`crate::ioctl`] takes).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The buffer as mutable `u64` words.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// The buffer as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: u64 has no padding and every byte pattern is a valid u8;
        // the length covers exactly the allocation of `words`.
        unsafe { core::slice::from_raw_parts(self.words.as_ptr().cast(), self.len()) }
    }

    /// The buffer as mutable bytes.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `as_bytes`; any byte pattern is a valid u64.
        unsafe { core::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), len) }
    }

    /// Pointer to the start of the (8-byte aligned) buffer.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }

    /// Reads the `u64` at byte offset `off`.
    ///
    /// # Panics
    ///
    /// Panics if `off` is not a multiple of 8 or out of bounds.
    pub fn u64_at(&self, off: usize) -> u64 {
        assert!(off.is_multiple_of(8), "unaligned u64 offset {off}");
        self.words[off / 8]
    }

    /// Writes the `u64` at byte offset `off`.
    ///
    /// # Panics
    ///
    /// Panics if `off` is not a multiple of 8 or out of bounds.
    pub fn set_u64(&mut self, off: usize, v: u64) {
        assert!(off.is_multiple_of(8), "unaligned u64 offset {off}");
        self.words[off / 8] = v;
    }

    /// The command's `size` field.
    pub fn size(&self) -> u64 {
        self.words[0]
    }

    /// Overwrites the command's `size` field (e.g. to omit the padding of
    /// the last item, or to send a malformed size). Later `push_*` calls
    /// reset it to the buffer length.
    pub fn set_size(&mut self, size: u64) {
        self.words[0] = size;
    }

    /// The command's `flags` field (the kernel writes it back on
    /// negotiation).
    pub fn flags(&self) -> u64 {
        self.u64_at(OFF_FLAGS)
    }

    /// Sets the command's `flags` field.
    pub fn set_flags(&mut self, flags: u64) {
        self.set_u64(OFF_FLAGS, flags);
    }

    /// The command's `return_flags` field.
    pub fn return_flags(&self) -> u64 {
        self.u64_at(OFF_RETURN_FLAGS)
    }

    /// Sets the command's `return_flags` field.
    pub fn set_return_flags(&mut self, v: u64) {
        self.set_u64(OFF_RETURN_FLAGS, v);
    }

    fn sync_size(&mut self) {
        self.words[0] = self.len() as u64;
    }

    /// Appends raw bytes (zero-padded to a multiple of 8) and returns the
    /// byte offset where they start. For building malformed streams.
    pub fn push_raw(&mut self, bytes: &[u8]) -> usize {
        let off = self.len();
        let words = align8(bytes.len()) / 8;
        self.words.resize(self.words.len() + words, 0);
        self.as_bytes_mut()[off..off + bytes.len()].copy_from_slice(bytes);
        self.sync_size();
        off
    }

    /// Appends an item whose `size` field is `size_field` regardless of the
    /// payload actually written (for malformed items). The payload is
    /// zero-padded to a multiple of 8. Returns the item's byte offset.
    pub fn push_item_with_size(&mut self, size_field: u64, ty: u64, payload: &[u8]) -> usize {
        let off = self.len();
        self.words.push(size_field);
        self.words.push(ty);
        self.push_raw(payload);
        self.sync_size();
        off
    }

    /// Appends a well-formed item (`size` = 16 + payload length) and returns
    /// its byte offset.
    pub fn push_item(&mut self, ty: u64, payload: &[u8]) -> usize {
        self.push_item_with_size(item_size_field(payload.len()), ty, payload)
    }

    /// Appends a string item: the bytes of `s` plus a terminating NUL, `size`
    /// counting exactly one NUL (`s` should not contain NUL bytes for a
    /// valid item).
    pub fn push_str(&mut self, ty: u64, s: &str) -> usize {
        let mut p = Vec::with_capacity(s.len() + 1);
        p.extend_from_slice(s.as_bytes());
        p.push(0);
        self.push_item(ty, &p)
    }

    /// Appends an item whose payload is a sequence of `u64` values.
    pub fn push_u64s(&mut self, ty: u64, vals: &[u64]) -> usize {
        let mut p = Vec::with_capacity(vals.len() * 8);
        for v in vals {
            p.extend_from_slice(&v.to_ne_bytes());
        }
        self.push_item(ty, &p)
    }

    /// Appends an item with a single `u64` payload (attach flags, IDs).
    pub fn push_u64(&mut self, ty: u64, v: u64) -> usize {
        self.push_u64s(ty, &[v])
    }

    /// Appends a `KDBUS_ITEM_BLOOM_PARAMETER` item.
    pub fn push_bloom_parameter(&mut self, size: u64, n_hash: u64) -> usize {
        self.push_u64s(uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64, &[size, n_hash])
    }

    /// Appends a `KDBUS_ITEM_NEGOTIATE` item listing item types; the kernel
    /// zeroes the entries it does not accept. Read them back with
    /// [`CmdBuf::negotiate_entries`].
    pub fn push_negotiate(&mut self, types: &[u64]) -> usize {
        self.push_u64s(uapi::KDBUS_ITEM_NEGOTIATE as u64, types)
    }

    /// The `n` u64 entries of the item at byte offset `item_off` (e.g. a
    /// negotiate item after the kernel rewrote it).
    ///
    /// # Panics
    ///
    /// Panics if the entries lie outside the buffer.
    pub fn negotiate_entries(&self, item_off: usize, n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| self.u64_at(item_off + ITEM_HEADER_SIZE + 8 * i))
            .collect()
    }

    /// Iterates over the items after the fixed part, up to `size` (clamped
    /// to the buffer length).
    pub fn items(&self) -> ItemIter<'_> {
        let end = (self.size() as usize).clamp(self.fixed, self.len());
        ItemIter::new(&self.as_bytes()[self.fixed..end])
    }
}

impl fmt::Debug for CmdBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CmdBuf")
            .field("fixed", &self.fixed)
            .field("words", &format_args!("{:#x?}", self.words))
            .finish()
    }
}

/// One item of a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// Byte offset of the item from the start of the walked stream.
    pub offset: usize,
    /// The item's `size` field (16 + payload length, without padding).
    pub size: u64,
    /// The item's `type` field (`KDBUS_ITEM_*`).
    pub ty: u64,
    /// The payload: `size - 16` bytes following the header.
    pub payload: &'a [u8],
}

impl<'a> Item<'a> {
    /// The payload as a single `u64`, if it is exactly 8 bytes long.
    pub fn as_u64(&self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.payload.try_into().ok()?))
    }

    /// The payload as `u64` values (`None` unless its length is a multiple
    /// of 8).
    pub fn u64s(&self) -> Option<Vec<u64>> {
        if !self.payload.len().is_multiple_of(8) {
            return None;
        }
        Some(
            self.payload
                .chunks_exact(8)
                .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                .collect(),
        )
    }

    /// The payload as a string, if it is a valid kdbus string: at least one
    /// byte, the first NUL is the last byte, UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        let (last, body) = self.payload.split_last()?;
        if *last != 0 || body.contains(&0) {
            return None;
        }
        core::str::from_utf8(body).ok()
    }

    /// `(size, n_hash)` if this is a well-formed `KDBUS_ITEM_BLOOM_PARAMETER`.
    pub fn as_bloom_parameter(&self) -> Option<(u64, u64)> {
        if self.ty != uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64 {
            return None;
        }
        match self.u64s()?.as_slice() {
            [size, n_hash] => Some((*size, *n_hash)),
            _ => None,
        }
    }
}

impl fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("offset", &self.offset)
            .field("size", &self.size)
            .field("ty", &format_args!("{:#x}", self.ty))
            .field("payload", &self.payload)
            .finish()
    }
}

/// Why an item stream could not be walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemError {
    /// Fewer than 16 bytes left for an item header at `offset`.
    TruncatedHeader {
        /// Offset of the item in the stream.
        offset: usize,
    },
    /// The item at `offset` has `size < 16`.
    SizeTooSmall {
        /// Offset of the item in the stream.
        offset: usize,
        /// The bad `size` field.
        size: u64,
    },
    /// The item at `offset` extends past the end of the stream.
    BeyondEnd {
        /// Offset of the item in the stream.
        offset: usize,
        /// The item's `size` field.
        size: u64,
        /// Length of the stream.
        stream_len: usize,
    },
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemError::TruncatedHeader { offset } => {
                write!(f, "truncated item header at offset {offset}")
            }
            ItemError::SizeTooSmall { offset, size } => {
                write!(f, "item at offset {offset} has size {size} < 16")
            }
            ItemError::BeyondEnd {
                offset,
                size,
                stream_len,
            } => write!(
                f,
                "item at offset {offset} with size {size} exceeds the stream of {stream_len} bytes"
            ),
        }
    }
}

impl std::error::Error for ItemError {}

/// Iterator over an item stream (abi.md 5.3): starting at the first item,
/// each step advances by `ALIGN8(item.size)` until the end of the stream is
/// reached or passed. The stream may end unpadded after its last item.
///
/// A malformed item yields one `Err` and ends the iteration.
#[derive(Clone)]
pub struct ItemIter<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> ItemIter<'a> {
    /// Walks the items in `data` (which must start with an item).
    pub fn new(data: &'a [u8]) -> Self {
        ItemIter {
            data,
            pos: 0,
            done: false,
        }
    }

    /// Collects all items, or the first error.
    pub fn collect_items(self) -> Result<Vec<Item<'a>>, ItemError> {
        self.collect()
    }
}

impl<'a> Iterator for ItemIter<'a> {
    type Item = Result<Item<'a>, ItemError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.data[offset..];
        if rest.len() < ITEM_HEADER_SIZE {
            self.done = true;
            return Some(Err(ItemError::TruncatedHeader { offset }));
        }
        let size = u64::from_ne_bytes(rest[0..8].try_into().unwrap());
        let ty = u64::from_ne_bytes(rest[8..16].try_into().unwrap());
        if size < ITEM_HEADER_SIZE as u64 {
            self.done = true;
            return Some(Err(ItemError::SizeTooSmall { offset, size }));
        }
        if size > rest.len() as u64 {
            self.done = true;
            return Some(Err(ItemError::BeyondEnd {
                offset,
                size,
                stream_len: self.data.len(),
            }));
        }
        let size_us = size as usize;
        // size <= rest.len() <= isize::MAX, so the aligned value fits.
        self.pos = offset + align8(size_us);
        Some(Ok(Item {
            offset,
            size,
            ty,
            payload: &rest[ITEM_HEADER_SIZE..size_us],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: u64 = uapi::KDBUS_ITEM_MAKE_NAME as u64;
    const BLOOM: u64 = uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64;

    #[test]
    fn align_and_sizes() {
        assert_eq!(align8(0), 0);
        assert_eq!(align8(1), 8);
        assert_eq!(align8(8), 8);
        assert_eq!(align8(9), 16);
        assert_eq!(item_space(0), 16);
        assert_eq!(item_space(1), 24);
        assert_eq!(item_space(8), 24);
        assert_eq!(item_space(9), 32);
        assert_eq!(item_size_field(5), 21);
        assert_eq!(checked_align8(u64::MAX), None);
        assert_eq!(checked_align8(u64::MAX - 7), Some(u64::MAX - 7));
        assert_eq!(checked_align8(13), Some(16));
    }

    #[test]
    fn struct_sizes() {
        assert_eq!(CMD_SIZE, 24);
        assert_eq!(CMD_HELLO_SIZE, 96);
        assert_eq!(CMD_FREE_SIZE, 32);
        assert_eq!(CMD_INFO_SIZE, 56);
        assert_eq!(CMD_LIST_SIZE, 40);
        assert_eq!(CMD_SEND_SIZE, 56);
        assert_eq!(CMD_RECV_SIZE, 64);
        assert_eq!(CMD_MATCH_SIZE, 32);
    }

    #[test]
    fn builder_layout() {
        let mut b = CmdBuf::cmd(3);
        assert_eq!(b.size(), 24);
        assert_eq!(b.flags(), 3);
        let n = b.push_str(NAME, "0-abc"); // 6 bytes payload -> size 22, space 24
        assert_eq!(n, 24);
        assert_eq!(b.size(), 48);
        let p = b.push_bloom_parameter(64, 8);
        assert_eq!(p, 48);
        assert_eq!(b.size(), 48 + 32);
        assert_eq!(b.len(), 80);
        assert_eq!(b.u64_at(24), 22);
        assert_eq!(b.u64_at(32), NAME);
        assert_eq!(&b.as_bytes()[40..48], b"0-abc\0\0\0");
        assert_eq!(b.u64_at(48), 32);
        assert_eq!(b.u64_at(56), BLOOM);
        assert_eq!(b.u64_at(64), 64);
        assert_eq!(b.u64_at(72), 8);
        assert_eq!(b.as_mut_ptr() as usize % 8, 0);
    }

    #[test]
    fn builder_exact_multiple_has_no_padding() {
        let mut b = CmdBuf::cmd(0);
        b.push_str(NAME, "0-abcde"); // 8 bytes payload
        assert_eq!(b.size(), 24 + 24);
        assert_eq!(b.u64_at(24), 24);
    }

    #[test]
    fn builder_raw_and_sized_items() {
        let mut b = CmdBuf::cmd(0);
        let off = b.push_item_with_size(8, 0x1234, &[1, 2, 3]);
        assert_eq!(off, 24);
        assert_eq!(b.u64_at(24), 8);
        assert_eq!(b.u64_at(32), 0x1234);
        assert_eq!(b.len(), 48);
        let off = b.push_raw(&[0xff; 3]);
        assert_eq!(off, 48);
        assert_eq!(b.len(), 56);
        assert_eq!(&b.as_bytes()[48..56], &[0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
        b.set_size(13);
        assert_eq!(b.size(), 13);
    }

    #[test]
    fn negotiate_entries_roundtrip() {
        let mut b = CmdBuf::cmd(0);
        let off = b.push_negotiate(&[1, 7, 0x1234]);
        assert_eq!(b.negotiate_entries(off, 3), vec![1, 7, 0x1234]);
        assert_eq!(b.u64_at(off), 16 + 24);
    }

    #[test]
    fn hello_and_free_layout() {
        let b = CmdBuf::hello(1, 2, 3, 4096);
        assert_eq!(b.size(), 96);
        assert_eq!(b.flags(), 1);
        assert_eq!(b.u64_at(24), 2);
        assert_eq!(b.u64_at(32), 3);
        assert_eq!(b.u64_at(56), 4096);
        let f = CmdBuf::free(0x40);
        assert_eq!(f.size(), 32);
        assert_eq!(f.u64_at(24), 0x40);
    }

    #[test]
    fn iterate_builder_items() {
        let mut b = CmdBuf::cmd(0);
        b.push_str(NAME, "0-x");
        b.push_bloom_parameter(128, 3);
        b.push_u64(12, 0x3fff);
        let items = b.items().collect_items().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].ty, NAME);
        assert_eq!(items[0].offset, 0);
        assert_eq!(items[0].as_str(), Some("0-x"));
        assert_eq!(items[1].offset, 24);
        assert_eq!(items[1].as_bloom_parameter(), Some((128, 3)));
        assert_eq!(items[2].as_u64(), Some(0x3fff));
        assert_eq!(items[2].offset, 56);
    }

    #[test]
    fn iterate_unpadded_end() {
        // A stream that ends right after the last item's unpadded size.
        let mut b = CmdBuf::cmd(0);
        b.push_str(NAME, "0-x"); // size 20
        let unpadded = 24 + 20;
        b.set_size(unpadded);
        let items = b.items().collect_items().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].payload, b"0-x\0");
    }

    #[test]
    fn iterate_malformed() {
        let mut b = CmdBuf::cmd(0);
        b.push_item_with_size(8, NAME, &[0; 8]);
        let r: Vec<_> = b.items().collect();
        assert_eq!(r, vec![Err(ItemError::SizeTooSmall { offset: 0, size: 8 })]);

        let mut b = CmdBuf::cmd(0);
        b.push_u64(12, 1);
        b.push_item_with_size(100, NAME, &[0; 8]);
        let r: Vec<_> = b.items().collect();
        assert_eq!(r.len(), 2);
        assert!(r[0].is_ok());
        assert_eq!(
            r[1],
            Err(ItemError::BeyondEnd {
                offset: 24,
                size: 100,
                stream_len: 48
            })
        );

        let data = [0u8; 8];
        let r: Vec<_> = ItemIter::new(&data).collect();
        assert_eq!(r, vec![Err(ItemError::TruncatedHeader { offset: 0 })]);

        let mut huge = CmdBuf::cmd(0);
        huge.push_item_with_size(u64::MAX, NAME, &[]);
        let r: Vec<_> = huge.items().collect();
        assert!(matches!(r[0], Err(ItemError::BeyondEnd { .. })));
    }

    #[test]
    fn iterate_empty() {
        assert_eq!(ItemIter::new(&[]).count(), 0);
        assert_eq!(CmdBuf::cmd(0).items().count(), 0);
    }

    #[test]
    fn string_validation() {
        let it = |p: &'static [u8]| Item {
            offset: 0,
            size: 16 + p.len() as u64,
            ty: NAME,
            payload: p,
        };
        assert_eq!(it(b"ab\0").as_str(), Some("ab"));
        assert_eq!(it(b"\0").as_str(), Some(""));
        assert_eq!(it(b"ab").as_str(), None);
        assert_eq!(it(b"ab\0\0").as_str(), None);
        assert_eq!(it(b"").as_str(), None);
        assert_eq!(it(b"a\0b\0").as_str(), None);
    }

    #[test]
    fn u64_views() {
        let p: &[u8] = &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
        let i = Item {
            offset: 0,
            size: 32,
            ty: BLOOM,
            payload: p,
        };
        assert_eq!(i.u64s(), Some(vec![1, 2]));
        assert_eq!(i.as_u64(), None);
        assert_eq!(i.as_bloom_parameter(), Some((1, 2)));
        let j = Item { ty: NAME, ..i };
        assert_eq!(j.as_bloom_parameter(), None);
    }
}
