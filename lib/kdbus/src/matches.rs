//! Match rules: KDBUS_CMD_MATCH_ADD and KDBUS_CMD_MATCH_REMOVE (match.md).

use crate::bloom::BloomMask;
use crate::consts::*;
use crate::{uapi, CmdBuf, Connection, Errno, CMD_MATCH_SIZE, MATCH_ID_ANY};

/// Byte offset of `cookie` in `struct kdbus_cmd_match`.
pub const MATCH_OFF_COOKIE: usize = 24;

impl CmdBuf {
    /// A `struct kdbus_cmd_match` (32 bytes) with `flags` and `cookie`, no
    /// items (MATCH_ADD, MATCH_REMOVE).
    pub fn match_cmd(flags: u64, cookie: u64) -> Self {
        let mut b = Self::new(CMD_MATCH_SIZE);
        b.set_flags(flags);
        b.set_u64(MATCH_OFF_COOKIE, cookie);
        b
    }
}

/// `struct kdbus_notify_id_change` bytes.
fn id_change(id: u64, flags: u64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&id.to_ne_bytes());
    p[8..].copy_from_slice(&flags.to_ne_bytes());
    p
}

/// Builder of one MATCH_ADD: the match entry with its `cookie` and one rule
/// per item (match.md 3-4). An entry accepts a message when all its rules
/// are satisfied; an entry without rules accepts every signal and every
/// broadcast notification.
///
/// Rules are "user" rules (BLOOM_MASK, NAME, ID, DST_ID: messages from
/// connections) or "kernel" rules (NAME_*, ID_*: notifications); an entry
/// mixing the two kinds, or two kinds of kernel rule, matches nothing. Use
/// several MATCH_ADDs with the same cookie for alternatives (MATCH_REMOVE
/// removes them together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    cmd: CmdBuf,
}

impl MatchRule {
    /// An entry with `cookie`, flags 0 and no rules.
    pub fn new(cookie: u64) -> Self {
        MatchRule {
            cmd: CmdBuf::match_cmd(0, cookie),
        }
    }

    /// Sets `KDBUS_MATCH_REPLACE`: the kernel first removes every entry with
    /// this cookie.
    pub fn replace(mut self) -> Self {
        let f = self.cmd.flags() | MATCH_REPLACE;
        self.cmd.set_flags(f);
        self
    }

    /// Sets `flags` (any bits, e.g. NEGOTIATE or invalid ones).
    pub fn flags(mut self, flags: u64) -> Self {
        self.cmd.set_flags(flags);
        self
    }

    /// The entry's cookie.
    pub fn cookie(&self) -> u64 {
        self.cmd.u64_at(MATCH_OFF_COOKIE)
    }

    /// A `KDBUS_ITEM_BLOOM_MASK` rule with every generation of `mask`
    /// (generation 0 first): the message's bloom filter must contain the
    /// selected generation's bits.
    pub fn bloom_mask(self, mask: &BloomMask) -> Self {
        self.item(ITEM_BLOOM_MASK, &mask.item_payload())
    }

    /// A `KDBUS_ITEM_NAME` rule: the sender is the primary owner of `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.cmd.push_str(ITEM_NAME, name);
        self
    }

    /// A `KDBUS_ITEM_ID` rule: the sender's ID is `id` (or `id` is
    /// [`MATCH_ID_ANY`]).
    pub fn sender_id(mut self, id: u64) -> Self {
        self.cmd.push_u64(ITEM_ID, id);
        self
    }

    /// A `KDBUS_ITEM_DST_ID` rule: the message's `dst_id` as sent is `id`
    /// (a connection ID for unicast signals, `KDBUS_DST_ID_BROADCAST` for
    /// broadcasts; [`MATCH_ID_ANY`] matches everything).
    pub fn dst_id(mut self, id: u64) -> Self {
        self.cmd.push_u64(ITEM_DST_ID, id);
        self
    }

    fn name_rule(mut self, ty: u64, old_id: u64, new_id: u64, name: Option<&str>) -> Self {
        let mut p = Vec::with_capacity(32 + name.map_or(0, |n| n.len() + 1));
        p.extend_from_slice(&id_change(old_id, 0));
        p.extend_from_slice(&id_change(new_id, 0));
        if let Some(n) = name {
            p.extend_from_slice(n.as_bytes());
            p.push(0);
        }
        self.cmd.push_item(ty, &p);
        self
    }

    /// A `KDBUS_ITEM_NAME_ADD` rule (`kdbus_notify_name_change` with
    /// `old_id.id`, `new_id.id`, flags 0 and `name` if given). Each id
    /// matches itself or, as [`MATCH_ID_ANY`], anything; 0 matches only the
    /// "no owner" side (`old_id` of every NAME_ADD is 0).
    pub fn name_add(self, old_id: u64, new_id: u64, name: Option<&str>) -> Self {
        self.name_rule(ITEM_NAME_ADD, old_id, new_id, name)
    }

    /// A `KDBUS_ITEM_NAME_REMOVE` rule (see [`MatchRule::name_add`];
    /// `new_id` of every NAME_REMOVE is 0).
    pub fn name_remove(self, old_id: u64, new_id: u64, name: Option<&str>) -> Self {
        self.name_rule(ITEM_NAME_REMOVE, old_id, new_id, name)
    }

    /// A `KDBUS_ITEM_NAME_CHANGE` rule (see [`MatchRule::name_add`]).
    pub fn name_change(self, old_id: u64, new_id: u64, name: Option<&str>) -> Self {
        self.name_rule(ITEM_NAME_CHANGE, old_id, new_id, name)
    }

    /// A `KDBUS_ITEM_ID_ADD` rule for connection `id` (or
    /// [`MATCH_ID_ANY`]).
    pub fn id_add(self, id: u64) -> Self {
        self.item(ITEM_ID_ADD, &id_change(id, 0))
    }

    /// A `KDBUS_ITEM_ID_REMOVE` rule for connection `id` (or
    /// [`MATCH_ID_ANY`]).
    pub fn id_remove(self, id: u64) -> Self {
        self.item(ITEM_ID_REMOVE, &id_change(id, 0))
    }

    /// Appends any well-formed item (`size` = 16 + payload length), e.g. a
    /// NEGOTIATE item or a deliberately malformed payload.
    pub fn item(mut self, ty: u64, payload: &[u8]) -> Self {
        self.cmd.push_item(ty, payload);
        self
    }

    /// The MATCH_ADD command buffer.
    pub fn cmd(&self) -> &CmdBuf {
        &self.cmd
    }

    /// The command buffer, mutable (to patch anything).
    pub fn cmd_mut(&mut self) -> &mut CmdBuf {
        &mut self.cmd
    }

    /// The command buffer, by value.
    pub fn into_cmd(self) -> CmdBuf {
        self.cmd
    }

    /// An entry matching every `ID_ADD` notification (an entry matching
    /// all notifications needs one MATCH_ADD per kind, since kinds cannot
    /// mix in one entry).
    pub fn any_id_add(cookie: u64) -> Self {
        Self::new(cookie).id_add(MATCH_ID_ANY)
    }

    /// An entry matching every `ID_REMOVE` notification.
    pub fn any_id_remove(cookie: u64) -> Self {
        Self::new(cookie).id_remove(MATCH_ID_ANY)
    }

    /// An entry matching every `NAME_ADD` notification (of `name` if
    /// given).
    pub fn any_name_add(cookie: u64, name: Option<&str>) -> Self {
        Self::new(cookie).name_add(MATCH_ID_ANY, MATCH_ID_ANY, name)
    }

    /// An entry matching every `NAME_REMOVE` notification (of `name` if
    /// given).
    pub fn any_name_remove(cookie: u64, name: Option<&str>) -> Self {
        Self::new(cookie).name_remove(MATCH_ID_ANY, MATCH_ID_ANY, name)
    }

    /// An entry matching every `NAME_CHANGE` notification (of `name` if
    /// given).
    pub fn any_name_change(cookie: u64, name: Option<&str>) -> Self {
        Self::new(cookie).name_change(MATCH_ID_ANY, MATCH_ID_ANY, name)
    }
}

impl Connection {
    /// KDBUS_CMD_MATCH_ADD of `rule` (a copy of its buffer is sent).
    pub fn match_add(&self, rule: &MatchRule) -> Result<(), Errno> {
        let mut cmd = rule.cmd.clone();
        self.match_add_raw(&mut cmd)
    }

    /// Issues MATCH_ADD with the raw `kdbus_cmd_match` in `cmd`.
    pub fn match_add_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_MATCH_ADD, cmd)
    }

    /// KDBUS_CMD_MATCH_REMOVE of every entry with `cookie` (`EBADSLT` if
    /// there is none).
    pub fn match_remove(&self, cookie: u64) -> Result<(), Errno> {
        self.match_remove_raw(&mut CmdBuf::match_cmd(0, cookie))
    }

    /// Issues MATCH_REMOVE with the raw `kdbus_cmd_match` in `cmd`.
    pub fn match_remove_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        self.ioctl(uapi::KDBUS_CMD_MATCH_REMOVE, cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::{BloomParams, RuleMask};

    #[test]
    fn match_cmd_layout() {
        let b = CmdBuf::match_cmd(MATCH_REPLACE, 0x1234);
        assert_eq!(b.size(), 32);
        assert_eq!(b.flags(), 1);
        assert_eq!(b.u64_at(24), 0x1234);
        let r = MatchRule::new(7);
        assert_eq!(r.cookie(), 7);
        assert_eq!(r.cmd().flags(), 0);
        assert_eq!(r.clone().replace().cmd().flags(), MATCH_REPLACE);
        assert_eq!(r.flags(5).cmd().flags(), 5);
    }

    #[test]
    fn rule_items() {
        let p = BloomParams::DEFAULT;
        let gen0 = RuleMask::new().member("M").build(p);
        let mut mask = BloomMask::new(gen0.clone());
        mask.push_generation(RuleMask::new().member("M").interface("a.b").build(p))
            .unwrap();
        let r = MatchRule::new(9)
            .bloom_mask(&mask)
            .name("org.x")
            .sender_id(5)
            .dst_id(crate::DST_ID_BROADCAST);
        let items = r.cmd().items().collect_items().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].ty, ITEM_BLOOM_MASK);
        assert_eq!(items[0].size, 16 + 128);
        assert_eq!(&items[0].payload[..64], &gen0.to_bytes()[..]);
        assert_eq!(items[1].ty, ITEM_NAME);
        assert_eq!(items[1].as_str(), Some("org.x"));
        assert_eq!((items[2].ty, items[2].as_u64()), (ITEM_ID, Some(5)));
        assert_eq!(
            (items[3].ty, items[3].as_u64()),
            (ITEM_DST_ID, Some(u64::MAX))
        );
        // 32 + 144 + 24 (16 + 6 -> 24) + 24 + 24.
        assert_eq!(r.cmd().size(), 32 + 144 + 24 + 24 + 24);
    }

    #[test]
    fn notification_rules() {
        let r = MatchRule::new(1)
            .name_add(0, MATCH_ID_ANY, Some("a.b"))
            .name_remove(3, 0, None)
            .name_change(MATCH_ID_ANY, 4, None)
            .id_add(MATCH_ID_ANY)
            .id_remove(6);
        let items = r.cmd().items().collect_items().unwrap();
        let tys: Vec<u64> = items.iter().map(|i| i.ty).collect();
        assert_eq!(
            tys,
            [
                ITEM_NAME_ADD,
                ITEM_NAME_REMOVE,
                ITEM_NAME_CHANGE,
                ITEM_ID_ADD,
                ITEM_ID_REMOVE
            ]
        );
        // NAME_ADD with a name: 16 + 32 + 4.
        assert_eq!(items[0].size, 52);
        let w = items[0].payload[..32]
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
            .collect::<Vec<_>>();
        assert_eq!(w, [0, 0, u64::MAX, 0]);
        assert_eq!(&items[0].payload[32..], b"a.b\0");
        // Without a name: payload exactly 32.
        assert_eq!(items[1].size, 48);
        assert_eq!(items[1].u64s().unwrap(), [3, 0, 0, 0]);
        assert_eq!(items[2].u64s().unwrap(), [u64::MAX, 0, 4, 0]);
        // ID rules: payload exactly 16.
        assert_eq!(items[3].size, 32);
        assert_eq!(items[3].u64s().unwrap(), [u64::MAX, 0]);
        assert_eq!(items[4].u64s().unwrap(), [6, 0]);
        let any = MatchRule::any_name_change(2, Some("x.y"));
        let it = any.cmd().items().collect_items().unwrap();
        assert_eq!(it[0].ty, ITEM_NAME_CHANGE);
        assert_eq!(&it[0].payload[..8], &u64::MAX.to_ne_bytes());
        assert_eq!(&it[0].payload[16..24], &u64::MAX.to_ne_bytes());
        for (r, ty) in [
            (MatchRule::any_id_add(1), ITEM_ID_ADD),
            (MatchRule::any_id_remove(1), ITEM_ID_REMOVE),
            (MatchRule::any_name_add(1, None), ITEM_NAME_ADD),
            (MatchRule::any_name_remove(1, None), ITEM_NAME_REMOVE),
        ] {
            let it = r.cmd().items().collect_items().unwrap();
            assert_eq!(it.len(), 1);
            assert_eq!(it[0].ty, ty);
        }
    }

    #[test]
    fn raw_items_and_buffer_access() {
        let mut r = MatchRule::new(3).item(ITEM_NEGOTIATE, &[0; 8]);
        r.cmd_mut().set_size(33);
        assert_eq!(r.cmd().size(), 33);
        let c = r.into_cmd();
        assert_eq!(c.u64_at(32), 24);
        assert_eq!(c.u64_at(40), ITEM_NEGOTIATE);
    }
}
