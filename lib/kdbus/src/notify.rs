//! Kernel notifications in received messages (message.md 12): ID_ADD,
//! ID_REMOVE, NAME_ADD, NAME_REMOVE, NAME_CHANGE, REPLY_TIMEOUT and
//! REPLY_DEAD, parsed into [`Notification`].

use crate::consts::*;
use crate::msg::{Message, ParseError};
use crate::names::c_string;
use crate::Item;

/// `struct kdbus_notify_id_change`: a connection ID with flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NotifyId {
    /// The connection ID (0 for "no owner" in name notifications).
    pub id: u64,
    /// In ID_ADD/ID_REMOVE the connection's HELLO flags; in name
    /// notifications the owner record's `KDBUS_NAME_*` flags.
    pub flags: u64,
}

/// `struct kdbus_notify_name_change` with its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameChange {
    /// The previous owner (0/0 for NAME_ADD).
    pub old_id: NotifyId,
    /// The new owner (0/0 for NAME_REMOVE).
    pub new_id: NotifyId,
    /// The name.
    pub name: String,
}

/// The notification item of a kernel notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Notification {
    /// `KDBUS_ITEM_ID_ADD`: a connection completed HELLO.
    IdAdd(NotifyId),
    /// `KDBUS_ITEM_ID_REMOVE`: a connection was disconnected.
    IdRemove(NotifyId),
    /// `KDBUS_ITEM_NAME_ADD`: a name got its first owner.
    NameAdd(NameChange),
    /// `KDBUS_ITEM_NAME_REMOVE`: a name lost its last owner.
    NameRemove(NameChange),
    /// `KDBUS_ITEM_NAME_CHANGE`: a name moved to another owner.
    NameChange(NameChange),
    /// `KDBUS_ITEM_REPLY_TIMEOUT`: the call with cookie `cookie_reply` got
    /// no reply before its deadline.
    ReplyTimeout,
    /// `KDBUS_ITEM_REPLY_DEAD`: the callee went away (or dropped the call)
    /// without answering the call with cookie `cookie_reply`.
    ReplyDead,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

fn notify_id(b: &[u8]) -> NotifyId {
    NotifyId {
        id: u64_at(b, 0),
        flags: u64_at(b, 8),
    }
}

/// Whether `ty` is one of the seven notification item types.
pub fn is_notification_item(ty: u64) -> bool {
    (ITEM_NAME_ADD..=ITEM_REPLY_DEAD).contains(&ty)
}

impl Notification {
    /// Parses a notification item; `Ok(None)` for an item of another type,
    /// `Err` for a notification item with a malformed payload (ID items:
    /// exactly 16 bytes; name items: 32 bytes plus a NUL-terminated UTF-8
    /// name; reply items: empty).
    pub fn from_item(item: &Item<'_>) -> Result<Option<Self>, ParseError> {
        let p = item.payload;
        let bad = |what: &str| {
            Err(ParseError(format!(
                "notification item {:#x} at offset {}: {what} (payload {} bytes)",
                item.ty,
                item.offset,
                p.len()
            )))
        };
        let n = match item.ty {
            ITEM_ID_ADD | ITEM_ID_REMOVE => {
                if p.len() != 16 {
                    return bad("id change payload is not 16 bytes");
                }
                let id = notify_id(p);
                if item.ty == ITEM_ID_ADD {
                    Notification::IdAdd(id)
                } else {
                    Notification::IdRemove(id)
                }
            }
            ITEM_NAME_ADD | ITEM_NAME_REMOVE | ITEM_NAME_CHANGE => {
                if p.len() < 33 {
                    return bad("name change payload shorter than 32 bytes + name");
                }
                let Some(name) = c_string(&p[32..]) else {
                    return bad("name is not a NUL-terminated string");
                };
                let nc = NameChange {
                    old_id: notify_id(&p[..16]),
                    new_id: notify_id(&p[16..32]),
                    name: name.into(),
                };
                match item.ty {
                    ITEM_NAME_ADD => Notification::NameAdd(nc),
                    ITEM_NAME_REMOVE => Notification::NameRemove(nc),
                    _ => Notification::NameChange(nc),
                }
            }
            ITEM_REPLY_TIMEOUT | ITEM_REPLY_DEAD => {
                if !p.is_empty() {
                    return bad("reply notification has a payload");
                }
                if item.ty == ITEM_REPLY_TIMEOUT {
                    Notification::ReplyTimeout
                } else {
                    Notification::ReplyDead
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(n))
    }

    /// The item type (`KDBUS_ITEM_*`) this notification came in.
    pub fn item_type(&self) -> u64 {
        match self {
            Notification::IdAdd(_) => ITEM_ID_ADD,
            Notification::IdRemove(_) => ITEM_ID_REMOVE,
            Notification::NameAdd(_) => ITEM_NAME_ADD,
            Notification::NameRemove(_) => ITEM_NAME_REMOVE,
            Notification::NameChange(_) => ITEM_NAME_CHANGE,
            Notification::ReplyTimeout => ITEM_REPLY_TIMEOUT,
            Notification::ReplyDead => ITEM_REPLY_DEAD,
        }
    }
}

impl<'a> Message<'a> {
    /// Whether the kernel sent this message (`src_id == 0`,
    /// `KDBUS_SRC_ID_KERNEL`).
    pub fn is_kernel(&self) -> bool {
        self.src_id == 0
    }

    /// The message's notification: the first item of a notification type,
    /// parsed (`Ok(None)` if it has none, i.e. it is not a kernel
    /// notification; `Err` if that item is malformed). A notification
    /// carries exactly one such item, then a TIMESTAMP.
    pub fn notification(&self) -> Result<Option<Notification>, ParseError> {
        match self.items.iter().find(|i| is_notification_item(i.ty)) {
            Some(i) => Notification::from_item(i),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::off;
    use crate::{MsgBuilder, TIMESTAMP_ITEM_SIZE};

    /// A notification as the kernel delivers it: header, the item, a
    /// TIMESTAMP, `size` unpadded.
    fn kernel_msg(ty: u64, payload: &[u8], dst: u64, cookie_reply: u64) -> Vec<u8> {
        let mut m = MsgBuilder::new(dst)
            .payload_type(PAYLOAD_KERNEL)
            .cookie_reply(cookie_reply)
            .item(ty, payload)
            .item(ITEM_TIMESTAMP, &[0; 24]);
        if dst == u64::MAX {
            m = m.flags(MSG_SIGNAL);
        }
        let mut b = m.cmd().as_bytes().to_vec();
        b[off::SRC_ID..off::SRC_ID + 8].copy_from_slice(&0u64.to_ne_bytes());
        b
    }

    fn words(w: &[u64]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_ne_bytes()).collect()
    }

    #[test]
    fn id_notifications() {
        // message.md 12: an ID_ADD notification is 136 bytes.
        let b = kernel_msg(ITEM_ID_ADD, &words(&[7, HELLO_ACCEPT_FD]), u64::MAX, 0);
        assert_eq!(b.len(), 64 + 32 + TIMESTAMP_ITEM_SIZE as usize);
        let m = Message::parse(&b).unwrap();
        assert!(m.is_kernel());
        assert_eq!(
            m.notification().unwrap(),
            Some(Notification::IdAdd(NotifyId { id: 7, flags: 1 }))
        );
        let b = kernel_msg(ITEM_ID_REMOVE, &words(&[9, 0]), u64::MAX, 0);
        let n = Message::parse(&b).unwrap().notification().unwrap().unwrap();
        assert_eq!(n, Notification::IdRemove(NotifyId { id: 9, flags: 0 }));
        assert_eq!(n.item_type(), ITEM_ID_REMOVE);
        let b = kernel_msg(ITEM_ID_ADD, &words(&[7]), u64::MAX, 0);
        assert!(Message::parse(&b).unwrap().notification().is_err());
    }

    #[test]
    fn name_notifications() {
        let mut p = words(&[0, 0, 5, NAME_PRIMARY]);
        p.extend_from_slice(b"a.b\0");
        let mut b = kernel_msg(ITEM_NAME_ADD, &p, u64::MAX, 0);
        // message.md 12: NAME_ADD of "a.b" is 160 bytes: 64 + 56 + 40.
        assert_eq!(b.len(), 160);
        b[..8].copy_from_slice(&160u64.to_ne_bytes());
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.items[0].size, 52);
        let want = NameChange {
            old_id: NotifyId::default(),
            new_id: NotifyId {
                id: 5,
                flags: NAME_PRIMARY,
            },
            name: "a.b".into(),
        };
        assert_eq!(
            m.notification().unwrap(),
            Some(Notification::NameAdd(want.clone()))
        );
        for (ty, n) in [
            (ITEM_NAME_REMOVE, Notification::NameRemove(want.clone())),
            (ITEM_NAME_CHANGE, Notification::NameChange(want.clone())),
        ] {
            let b = kernel_msg(ty, &p, u64::MAX, 0);
            let got = Message::parse(&b).unwrap().notification().unwrap();
            assert_eq!(got.as_ref().map(Notification::item_type), Some(ty));
            assert_eq!(got, Some(n));
        }
        // Malformed: no name, no NUL, bytes after the NUL.
        for bad in [
            words(&[0, 0, 5, 0]),
            [words(&[0, 0, 5, 0]), b"a.b".to_vec()].concat(),
            [words(&[0, 0, 5, 0]), b"a\0b\0".to_vec()].concat(),
        ] {
            let b = kernel_msg(ITEM_NAME_ADD, &bad, u64::MAX, 0);
            assert!(Message::parse(&b).unwrap().notification().is_err());
        }
    }

    #[test]
    fn reply_notifications() {
        // message.md 12: REPLY_TIMEOUT is 120 bytes.
        let b = kernel_msg(ITEM_REPLY_TIMEOUT, &[], 4, 77);
        assert_eq!(b.len(), 120);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.notification().unwrap(), Some(Notification::ReplyTimeout));
        assert_eq!(m.cookie_reply(), 77);
        let b = kernel_msg(ITEM_REPLY_DEAD, &[], 4, 78);
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.notification().unwrap(), Some(Notification::ReplyDead));
        let b = kernel_msg(ITEM_REPLY_DEAD, &[0; 8], 4, 78);
        assert!(Message::parse(&b).unwrap().notification().is_err());
    }

    #[test]
    fn ordinary_message_has_no_notification() {
        let m = MsgBuilder::new(1).src_id(3).vec(b"x");
        let msg = Message::parse(m.cmd().as_bytes()).unwrap();
        assert!(!msg.is_kernel());
        assert_eq!(msg.notification().unwrap(), None);
        let it = msg.items[0];
        assert_eq!(Notification::from_item(&it).unwrap(), None);
        assert!(is_notification_item(ITEM_NAME_ADD));
        assert!(is_notification_item(ITEM_REPLY_DEAD));
        assert!(!is_notification_item(ITEM_REPLY_DEAD + 1));
        assert!(!is_notification_item(ITEM_TIMESTAMP));
    }
}
