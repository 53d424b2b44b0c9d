// SPDX-License-Identifier: GPL-2.0

//! Policy (spec: policy.md): uploading a database and evaluating it. Pure.
//!
//! A database maps (name, wildcard-ness) to an entry of access rules. The
//! module keeps the map; this file parses uploads ([`parse_upload`]: the
//! rules of policy.md 3, in order, with their errnos), splits a queried
//! name into its exact and wildcard keys ([`wildcard_key`]), and evaluates
//! an entry's rules for a set of credentials ([`grant`]).

use crate::proto::errno::{Errno, Result, EINVAL};
use crate::proto::item::Item;
use crate::proto::names;
use crate::uapi::*;

/// `KDBUS_POLICY_SEE`.
pub const SEE: u32 = KDBUS_POLICY_SEE;
/// `KDBUS_POLICY_TALK`.
pub const TALK: u32 = KDBUS_POLICY_TALK;
/// `KDBUS_POLICY_OWN`.
pub const OWN: u32 = KDBUS_POLICY_OWN;

/// Who a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// Effective uid (a global kuid value).
    User(u32),
    /// Effective gid or a supplementary group (a global kgid value).
    Group(u32),
    /// Everybody.
    World,
}

/// One access rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Who it grants to.
    pub who: Who,
    /// The level granted (and every lower one).
    pub access: u32,
}

/// The credentials a query is made with.
pub trait Creds {
    /// Effective uid (global kuid value).
    fn euid(&self) -> u32;
    /// Whether `gid` (global kgid value) is the effective gid or one of the
    /// supplementary groups.
    fn in_group(&self, gid: u32) -> bool;
}

/// The highest level `rules` grant to `creds`, `None` if no rule matches
/// (policy.md 2 step 3).
pub fn grant(rules: impl IntoIterator<Item = Rule>, creds: &impl Creds) -> Option<u32> {
    rules
        .into_iter()
        .filter(|r| match r.who {
            Who::User(u) => u == creds.euid(),
            Who::Group(g) => creds.in_group(g),
            Who::World => true,
        })
        .map(|r| r.access)
        .max()
}

/// The wildcard key a name falls back to (policy.md 2 step 2): the part
/// before its last `.` (`foo.bar.*` is stored as `foo.bar`).
pub fn wildcard_key(name: &[u8]) -> Option<&[u8]> {
    let dot = name.iter().rposition(|&c| c == b'.')?;
    name.get(..dot)
}

/// How an upload may look (policy.md 3 table).
#[derive(Clone, Copy, Debug)]
pub struct UploadRules {
    /// Wildcard names are accepted.
    pub wildcards: bool,
    /// At most this many NAME items.
    pub max_names: Option<usize>,
    /// The errno for more names than `max_names`.
    pub too_many: Errno,
}

/// A visitor of a parsed upload.
pub trait Upload {
    /// A new entry: its stored name (without `.*` for a wildcard).
    fn entry(&mut self, name: &[u8], wildcard: bool) -> Result;
    /// A rule of the latest entry.
    fn rule(&mut self, r: Rule) -> Result;
}

fn rule(i: &Item<'_>, map: &impl Fn(bool, u32) -> Option<u32>) -> Option<Rule> {
    let (ty, access, id) = (i.u64_at(0), i.u64_at(8), i.u64_at(16));
    if access > OWN as u64 {
        return None;
    }
    // Ids are truncated to 32 bits (policy.md 3).
    let id = id as u32;
    let who = match u32::try_from(ty).ok()? {
        KDBUS_POLICY_ACCESS_USER => Who::User(map(true, id)?),
        KDBUS_POLICY_ACCESS_GROUP => Who::Group(map(false, id)?),
        KDBUS_POLICY_ACCESS_WORLD => Who::World,
        _ => return None,
    };
    Some(Rule {
        who,
        access: access as u32,
    })
}

/// Parses an upload (policy.md 3): `items` walks the command's items in
/// order (other types are skipped; it is walked twice); `map` converts a USER (`true`) or GROUP
/// (`false`) id of the uploader's user namespace into a global id (`None`:
/// no mapping, `EINVAL`). The whole upload is checked before the visitor
/// sees anything, so nothing is built from an invalid one. Duplicate names
/// (`EEXIST`) are for the database to find.
pub fn parse_upload<'a, I: Iterator<Item = Item<'a>>>(
    items: impl Fn() -> I,
    how: UploadRules,
    map: impl Fn(bool, u32) -> Option<u32>,
    v: &mut impl Upload,
) -> Result {
    let mut names = 0usize;
    let mut open = false;
    for i in items() {
        match i.ty as u32 {
            KDBUS_ITEM_NAME => {
                if !names::is_valid_well_known(i.str_bytes(), how.wildcards) {
                    return Err(EINVAL);
                }
                names += 1;
                if how.max_names.is_some_and(|m| names > m) {
                    return Err(how.too_many);
                }
                open = true;
            }
            KDBUS_ITEM_POLICY_ACCESS => {
                if !open {
                    return Err(EINVAL);
                }
                rule(&i, &map).ok_or(EINVAL)?;
            }
            _ => {}
        }
    }
    for i in items() {
        match i.ty as u32 {
            KDBUS_ITEM_NAME => {
                let n = i.str_bytes();
                match n.strip_suffix(b".*") {
                    Some(prefix) if how.wildcards => v.entry(prefix, true)?,
                    _ => v.entry(n, false)?,
                }
            }
            KDBUS_ITEM_POLICY_ACCESS => v.rule(rule(&i, &map).ok_or(EINVAL)?)?,
            _ => {}
        }
    }
    Ok(())
}
