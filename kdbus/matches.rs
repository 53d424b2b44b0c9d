// SPDX-License-Identifier: GPL-2.0

//! A connection's match database (spec: match.md): MATCH_ADD and
//! MATCH_REMOVE, and whether a signal or a broadcast notification is
//! accepted. The rules are evaluated by `proto/matching.rs`.

use crate::connection::Connection;
use crate::glue::gfp;
use crate::proto::cmd::Cmd;
use crate::proto::errno::{Result, EBADSLT, EMFILE};
use crate::proto::limits::MATCH_MAX;
use crate::proto::matching::{self, Subject};
use crate::uapi::*;
use core::mem::offset_of;
use kernel::prelude::*;

/// One match entry: a cookie and its rules, as the item stream of its
/// MATCH_ADD (NEGOTIATE items left out).
pub(crate) struct MatchEntry {
    cookie: u64,
    rules: KVec<u8>,
}

impl Connection {
    /// KDBUS_CMD_MATCH_ADD (match.md 3), after generic parsing.
    pub(crate) fn match_add(&self, c: &Cmd<'_>) -> Result {
        matching::validate(c, self.ep.bus.bloom.size)?;
        let cookie = c.field(offset_of!(kdbus_cmd_match, cookie));
        let mut rules = KVec::new();
        matching::rule_items(c, |bytes| Ok(rules.extend_from_slice(bytes, gfp())?))?;
        let entry = MatchEntry { cookie, rules };
        let replace = c.flags & KDBUS_MATCH_REPLACE as u64 != 0;
        let mut g = self.inner.lock();
        // Room first: a failure changes nothing.
        g.matches.reserve(1, gfp())?;
        if replace {
            let mut i = 0;
            while i < g.matches.len() {
                if g.matches[i].cookie == cookie {
                    drop(crate::glue::kvec::remove(&mut g.matches, i));
                } else {
                    i += 1;
                }
            }
        }
        if g.matches.len() >= MATCH_MAX {
            return Err(EMFILE);
        }
        // Capacity was reserved above.
        g.matches.push(entry, gfp())?;
        Ok(())
    }

    /// KDBUS_CMD_MATCH_REMOVE (match.md 7): every entry with `cookie`;
    /// `EBADSLT` if there is none.
    pub(crate) fn match_remove(&self, cookie: u64) -> Result {
        let mut g = self.inner.lock();
        let before = g.matches.len();
        let mut i = 0;
        while i < g.matches.len() {
            if g.matches[i].cookie == cookie {
                drop(crate::glue::kvec::remove(&mut g.matches, i));
            } else {
                i += 1;
            }
        }
        if g.matches.len() == before {
            return Err(EBADSLT);
        }
        Ok(())
    }

    /// Whether one of this connection's match entries accepts `s`; `owns`
    /// tells whether the sender owns a name (NAME rules).
    pub(crate) fn matches(&self, s: &Subject<'_>, owns: impl Fn(&[u8]) -> bool) -> bool {
        let bloom_size = self.ep.bus.bloom.size as usize;
        let g = self.inner.lock();
        g.matches
            .iter()
            .any(|e| matching::entry_matches(&e.rules, s, bloom_size, &owns))
    }
}
