//! Well-known names: NAME_ACQUIRE, NAME_RELEASE, the `KDBUS_ITEM_OWNED_NAME`
//! items of LIST records and metadata, and name syntax (names.md).

use crate::consts::*;
use crate::msg::{InfoRecord, Message, ParseError};
use crate::{uapi, CmdBuf, Connection, Errno, Item};

/// Longest valid well-known name (`KDBUS_NAME_MAX_LEN`).
pub const NAME_MAX_LEN: usize = 255;

/// A `KDBUS_ITEM_OWNED_NAME` payload (`struct kdbus_name { u64 flags; char
/// name[]; }`): in LIST records one ownership record of the connection, in
/// metadata one name the sender owns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OwnedName {
    /// The record's `KDBUS_NAME_*` flags (stored flags plus state flags:
    /// `PRIMARY`, `IN_QUEUE`, `ACTIVATOR`).
    pub flags: u64,
    /// The name.
    pub name: String,
}

impl OwnedName {
    /// Parses an `OWNED_NAME` item: an 8-byte flags word, then a
    /// NUL-terminated UTF-8 string (nothing after the NUL).
    pub fn from_item(item: &Item<'_>) -> Result<Self, ParseError> {
        if item.ty != ITEM_OWNED_NAME {
            return Err(ParseError(format!(
                "item type {:#x} is not OWNED_NAME",
                item.ty
            )));
        }
        if item.payload.len() < 9 {
            return Err(ParseError(format!(
                "OWNED_NAME payload of {} bytes is shorter than flags + NUL",
                item.payload.len()
            )));
        }
        let flags = u64::from_ne_bytes(item.payload[..8].try_into().unwrap());
        let name = c_string(&item.payload[8..])
            .ok_or_else(|| ParseError("OWNED_NAME name is not a NUL-terminated string".into()))?;
        Ok(OwnedName {
            flags,
            name: name.into(),
        })
    }
}

/// `bytes` as a kdbus string: the first NUL is the last byte, UTF-8.
pub(crate) fn c_string(bytes: &[u8]) -> Option<&str> {
    let (last, body) = bytes.split_last()?;
    if *last != 0 || body.contains(&0) {
        return None;
    }
    core::str::from_utf8(body).ok()
}

impl InfoRecord {
    /// Every `OWNED_NAME` item of the record, in order (a LIST record has
    /// at most one; a CONN_INFO record with `KDBUS_ATTACH_NAMES` one per
    /// owned name).
    pub fn owned_names(&self) -> Result<Vec<OwnedName>, ParseError> {
        self.items
            .iter()
            .filter(|i| i.ty == ITEM_OWNED_NAME)
            .map(|i| OwnedName::from_item(&i.as_item()))
            .collect()
    }

    /// The first `OWNED_NAME` item, if any (a LIST record's name record;
    /// `None` for a bare `LIST_UNIQUE` record).
    pub fn owned_name(&self) -> Result<Option<OwnedName>, ParseError> {
        Ok(self.owned_names()?.into_iter().next())
    }
}

impl<'a> Message<'a> {
    /// Every `OWNED_NAME` metadata item (the sender's names, with
    /// `KDBUS_ATTACH_NAMES`).
    pub fn owned_names(&self) -> Result<Vec<OwnedName>, ParseError> {
        self.items_of(ITEM_OWNED_NAME)
            .map(OwnedName::from_item)
            .collect()
    }
}

/// Whether `name` is a valid well-known name (names.md 2): at most 255
/// characters, at least two non-empty `.`-separated elements of `A-Z a-z
/// 0-9 _ -`, none starting with a digit. With `allow_wildcard` the last
/// element may be exactly `*` (policy names).
pub fn valid_name(name: &str, allow_wildcard: bool) -> bool {
    if name.len() > NAME_MAX_LEN {
        return false;
    }
    let elems: Vec<&str> = name.split('.').collect();
    if elems.len() < 2 {
        return false;
    }
    let last = elems.len() - 1;
    elems.iter().enumerate().all(|(i, e)| {
        if allow_wildcard && i == last && *e == "*" {
            return true;
        }
        let mut chars = e.bytes();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b'-' => {}
            _ => return false,
        }
        chars.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    })
}

impl CmdBuf {
    /// A `struct kdbus_cmd` with `flags` and one `KDBUS_ITEM_NAME` string
    /// item (NAME_ACQUIRE, NAME_RELEASE).
    pub fn name_cmd(flags: u64, name: &str) -> Self {
        let mut b = Self::cmd(flags);
        b.push_str(ITEM_NAME, name);
        b
    }
}

impl Connection {
    /// KDBUS_CMD_NAME_ACQUIRE of `name` with `flags`
    /// (`NAME_REPLACE_EXISTING`, `NAME_ALLOW_REPLACEMENT`, `NAME_QUEUE`);
    /// returns the kernel's `return_flags` (the record's flags plus
    /// `PRIMARY` or `IN_QUEUE`, and `ACQUIRED` if newly acquired or queued;
    /// names.md 3).
    ///
    /// On `EEXIST` the kernel still writes `return_flags`; use
    /// [`Connection::name_acquire_raw`] to see them.
    pub fn name_acquire(&self, name: &str, flags: u64) -> Result<u64, Errno> {
        let mut cmd = CmdBuf::name_cmd(flags, name);
        self.name_acquire_raw(&mut cmd)?;
        Ok(cmd.return_flags())
    }

    /// Issues NAME_ACQUIRE with the raw `kdbus_cmd` in `cmd`; the kernel's
    /// answer (`flags` on negotiation, `return_flags`) stays in `cmd`.
    pub fn name_acquire_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_NAME_ACQUIRE, cmd)
    }

    /// KDBUS_CMD_NAME_RELEASE of `name` (names.md 4: `ESRCH` if nobody has
    /// it, `EADDRINUSE` if this connection neither owns nor waits for it).
    pub fn name_release(&self, name: &str) -> Result<(), Errno> {
        self.name_release_raw(&mut CmdBuf::name_cmd(0, name))
    }

    /// Issues NAME_RELEASE with the raw `kdbus_cmd` in `cmd`.
    pub fn name_release_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_NAME_RELEASE, cmd)
    }

    /// KDBUS_CMD_LIST with `flags` (`LIST_UNIQUE`, `LIST_NAMES`,
    /// `LIST_ACTIVATORS`, `LIST_QUEUED`), the records copied out of the pool
    /// and the slice FREEd. Name records carry their `OWNED_NAME` item
    /// ([`InfoRecord::owned_name`]).
    ///
    /// A result the kernel wrote that does not parse is reported as
    /// `EBADMSG` (after FREEing it); use [`Connection::list`] and
    /// [`Connection::info_records`] to see why.
    pub fn list_records(&self, flags: u64) -> Result<Vec<InfoRecord>, Errno> {
        let r = self.list(flags)?;
        if r.size == 0 {
            return Ok(Vec::new());
        }
        let recs = self.info_records(&r);
        self.free(r.offset)?;
        recs.map_err(|_| Errno::EBADMSG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OwnedItem;

    fn owned_name_payload(flags: u64, name: &str) -> Vec<u8> {
        let mut p = flags.to_ne_bytes().to_vec();
        p.extend_from_slice(name.as_bytes());
        p.push(0);
        p
    }

    #[test]
    fn name_cmd_layout() {
        let b = CmdBuf::name_cmd(NAME_QUEUE | NAME_ALLOW_REPLACEMENT, "a.b");
        // 24 + item 16 + "a.b\0" (20 -> 24).
        assert_eq!(b.size(), 48);
        assert_eq!(b.flags(), 6);
        let items = b.items().collect_items().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].ty, ITEM_NAME);
        assert_eq!(items[0].size, 20);
        assert_eq!(items[0].as_str(), Some("a.b"));
    }

    #[test]
    fn parse_list_records_with_names() {
        // names.md 8: a record for name "org.x" (L = 5) is
        // 24 + ALIGN8(16 + 8 + 6) = 56 bytes, its item size 30; then a bare
        // LIST_UNIQUE record.
        let p = owned_name_payload(NAME_PRIMARY | NAME_QUEUE, "org.x");
        let mut b = CmdBuf::new(24);
        b.set_u64(8, 5);
        b.set_u64(16, HELLO_ACCEPT_FD);
        b.push_item(ITEM_OWNED_NAME, &p);
        assert_eq!(b.size(), 56);
        let mut bytes = b.as_bytes().to_vec();
        bytes.extend_from_slice(&24u64.to_ne_bytes());
        bytes.extend_from_slice(&6u64.to_ne_bytes());
        bytes.extend_from_slice(&0u64.to_ne_bytes());
        let recs = InfoRecord::parse_all(&bytes).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].id, recs[0].flags, recs[0].size), (5, 1, 56));
        assert_eq!(recs[0].items[0].size, 30);
        assert_eq!(
            recs[0].owned_name().unwrap(),
            Some(OwnedName {
                flags: NAME_PRIMARY | NAME_QUEUE,
                name: "org.x".into()
            })
        );
        assert_eq!(recs[1].owned_name().unwrap(), None);
        assert!(recs[1].owned_names().unwrap().is_empty());
    }

    #[test]
    fn owned_name_errors() {
        let bad = |payload: Vec<u8>, ty: u64| {
            let it = OwnedItem {
                offset: 24,
                size: 16 + payload.len() as u64,
                ty,
                payload,
            };
            OwnedName::from_item(&it.as_item())
        };
        assert!(bad(owned_name_payload(0, "a.b"), ITEM_OWNED_NAME).is_ok());
        assert!(bad(owned_name_payload(0, "a.b"), ITEM_NAME).is_err());
        assert!(bad(vec![0; 8], ITEM_OWNED_NAME).is_err());
        let mut p = owned_name_payload(0, "a.b");
        p.push(0);
        assert!(bad(p, ITEM_OWNED_NAME).is_err());
        let mut p = owned_name_payload(0, "a.b");
        p.pop();
        assert!(bad(p, ITEM_OWNED_NAME).is_err());
        let rec = InfoRecord {
            offset: 0,
            size: 48,
            id: 1,
            flags: 0,
            items: vec![OwnedItem {
                offset: 24,
                size: 24,
                ty: ITEM_OWNED_NAME,
                payload: vec![0; 8],
            }],
        };
        assert!(rec.owned_names().is_err());
    }

    #[test]
    fn message_owned_names() {
        let m = crate::MsgBuilder::new(1)
            .item(ITEM_OWNED_NAME, &owned_name_payload(NAME_PRIMARY, "a.b"))
            .item(ITEM_OWNED_NAME, &owned_name_payload(NAME_IN_QUEUE, "c.d"));
        let msg = Message::parse(m.cmd().as_bytes()).unwrap();
        let names = msg.owned_names().unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[1].name, "c.d");
        assert_eq!(names[1].flags, NAME_IN_QUEUE);
    }

    #[test]
    fn name_validity() {
        for ok in ["a.b", "org.freedesktop.DBus", "_a.-b", "a1.b2_c-d"] {
            assert!(valid_name(ok, false), "{ok}");
        }
        for bad in [
            "", "a", ".a.b", "a.b.", "a..b", "1a.b", "a.1b", "a.b$", "a.*", ":1.2", "a.b c",
        ] {
            assert!(!valid_name(bad, false), "{bad}");
        }
        assert!(valid_name("org.foo.*", true));
        assert!(!valid_name("*", true));
        assert!(!valid_name("a.*.b", true));
        assert!(!valid_name("a.b*", true));
        let long = format!("a.{}", "b".repeat(253));
        assert_eq!(long.len(), 255);
        assert!(valid_name(&long, false));
        assert!(!valid_name(&format!("{long}c"), false));
    }
}
