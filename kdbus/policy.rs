// SPDX-License-Identifier: GPL-2.0

//! Policy databases and checks (spec: policy.md): the bus database (entries
//! uploaded by policy holders and activators) and a custom endpoint's
//! database, and the OWN, TALK and SEE checks of policy.md 5 at the points
//! of policy.md 6. The upload rules and the evaluation are in
//! `proto/policy.rs`; this file keeps the entries and applies them. Every
//! check fails closed: when the names of a target cannot be listed for lack
//! of memory, access is denied.

use crate::connection::Connection;
use crate::glue::cred::{Credential, Kgid, UserNamespace};
use crate::glue::gfp;
use crate::names::Name;
use crate::proto::errno::{Result, EEXIST};
use crate::proto::item::Item;
use crate::proto::policy::{self, Rule, Upload, UploadRules, OWN, SEE, TALK};
use kernel::prelude::*;
use kernel::sync::Arc;

impl policy::Creds for Credential {
    fn euid(&self) -> u32 {
        Credential::euid(self).raw()
    }

    fn in_group(&self, gid: u32) -> bool {
        Credential::in_group(self, Kgid::from_raw(gid))
    }
}

/// One entry of a database.
pub(crate) struct PolicyEntry {
    /// The name (the prefix, for a wildcard entry).
    name: KVec<u8>,
    wildcard: bool,
    /// The connection that uploaded it (0 for an endpoint's entries).
    owner: u64,
    rules: KVec<Rule>,
}

/// A policy database.
pub(crate) struct PolicyDb {
    entries: KVVec<PolicyEntry>,
}

/// Entries being built from an upload.
struct Builder {
    owner: u64,
    out: KVVec<PolicyEntry>,
}

impl Upload for Builder {
    fn entry(&mut self, name: &[u8], wildcard: bool) -> Result {
        // Within one upload, a (name, wildcard-ness) pair only once.
        if self
            .out
            .iter()
            .any(|e| e.wildcard == wildcard && e.name.as_slice() == name)
        {
            return Err(EEXIST);
        }
        let mut n = KVec::with_capacity(name.len(), gfp())?;
        n.extend_from_slice(name, gfp())?;
        self.out.push(
            PolicyEntry {
                name: n,
                wildcard,
                owner: self.owner,
                rules: KVec::new(),
            },
            gfp(),
        )?;
        Ok(())
    }

    fn rule(&mut self, r: Rule) -> Result {
        if let Some(e) = self.out.last_mut() {
            e.rules.push(r, gfp())?;
        }
        Ok(())
    }
}

impl PolicyDb {
    /// An empty database.
    pub(crate) fn new() -> Self {
        PolicyDb {
            entries: KVVec::new(),
        }
    }

    /// Builds the entries of an upload by `owner` (policy.md 3), with ids
    /// translated from `ns`, the uploader's user namespace. Done before the
    /// database's lock is taken; [`PolicyDb::replace`] installs them.
    pub(crate) fn build<'a, I: Iterator<Item = Item<'a>>>(
        items: impl Fn() -> I,
        how: UploadRules,
        ns: &UserNamespace,
        owner: u64,
    ) -> Result<KVVec<PolicyEntry>> {
        let mut b = Builder {
            owner,
            out: KVVec::new(),
        };
        let map = |user: bool, id: u32| match user {
            true => ns.make_kuid(id).map(|k| k.raw()),
            false => ns.make_kgid(id).map(|k| k.raw()),
        };
        policy::parse_upload(items, how, map, &mut b)?;
        Ok(b.out)
    }

    /// Replaces every entry of `owner` with `new`, as one step (policy.md
    /// 3): `EEXIST`, and nothing changes, if another owner holds an entry
    /// for one of the names. Returns the replaced entries, for the caller
    /// to drop outside the lock.
    pub(crate) fn replace(
        &mut self,
        owner: u64,
        mut new: KVVec<PolicyEntry>,
    ) -> Result<KVVec<PolicyEntry>> {
        let taken = |e: &PolicyEntry| {
            self.entries
                .iter()
                .any(|x| x.owner != owner && x.wildcard == e.wildcard && x.name == e.name)
        };
        if new.iter().any(taken) {
            return Err(EEXIST);
        }
        let mine = self.entries.iter().filter(|e| e.owner == owner).count();
        let mut kept = KVVec::with_capacity(self.entries.len() - mine + new.len(), gfp())?;
        let mut gone = KVVec::with_capacity(mine, gfp())?;
        let mut old = core::mem::replace(&mut self.entries, KVVec::new());
        // Capacities were reserved above: the pushes cannot fail.
        while let Some(e) = crate::glue::kvec::pop(&mut old) {
            let _ = match e.owner == owner {
                true => gone.push(e, gfp()),
                false => kept.push(e, gfp()),
            };
        }
        kept.as_mut_slice().reverse();
        let at = kept.len();
        while let Some(e) = crate::glue::kvec::pop(&mut new) {
            let _ = kept.push(e, gfp());
        }
        if let Some(tail) = kept.as_mut_slice().get_mut(at..) {
            tail.reverse();
        }
        self.entries = kept;
        Ok(gone)
    }

    /// Removes the entries of `owner` (it disconnected); returned for the
    /// caller to drop outside the lock.
    pub(crate) fn remove_owner(&mut self, owner: u64) -> KVVec<PolicyEntry> {
        self.replace(owner, KVVec::new())
            .unwrap_or_else(|_| KVVec::new())
    }

    /// The level granted to `cred` for `name` (policy.md 2): the exact
    /// entry, else the wildcard entry of its prefix.
    pub(crate) fn query(&self, cred: &Credential, name: &[u8]) -> Option<u32> {
        let find = |n: &[u8], w: bool| {
            self.entries
                .iter()
                .find(|e| e.wildcard == w && e.name.as_slice() == n)
        };
        let e = find(name, false).or_else(|| find(policy::wildcard_key(name)?, true))?;
        policy::grant(e.rules.iter().copied(), cred)
    }

    fn allows(&self, cred: &Credential, name: &[u8], level: u32) -> bool {
        self.query(cred, name).is_some_and(|a| a >= level)
    }
}

impl Connection {
    /// OWN (policy.md 5.1): may this connection, with `cred`, own `name`?
    pub(crate) fn may_own(&self, cred: &Credential, name: &[u8]) -> bool {
        if let Some(db) = self.ep.policy() {
            if !db.lock().allows(cred, name, OWN) {
                return false;
            }
        }
        self.owner || self.ep.bus.policy.lock().allows(cred, name, OWN)
    }

    /// TALK (policy.md 5.2): may this connection, with `cred`, talk to
    /// `dst`? The most permissive of `dst`'s names counts.
    pub(crate) fn may_talk_to(&self, cred: &Credential, dst: &Connection) -> bool {
        if self.ep.policy().is_none() && (self.owner || cred.euid() == dst.uid) {
            return true;
        }
        match self.ep.bus.owned_names(dst) {
            Ok(names) => self.may_talk_given(cred, dst, &names),
            Err(_) => false,
        }
    }

    /// [`Connection::may_talk_to`] with `dst`'s names already listed (under
    /// the registry lock, whose holder calls this).
    pub(crate) fn may_talk_given(
        &self,
        cred: &Credential,
        dst: &Connection,
        names: &[(u64, Arc<Name>)],
    ) -> bool {
        let custom = self.ep.policy();
        let same_user = cred.euid() == dst.uid;
        if let Some(db) = custom {
            let db = db.lock();
            if !names.iter().any(|(_, n)| db.allows(cred, &n.name, TALK)) {
                return false;
            }
        }
        if self.owner || same_user {
            return true;
        }
        let db = self.ep.bus.policy.lock();
        names.iter().any(|(_, n)| db.allows(cred, &n.name, TALK))
    }

    /// SEE a name (policy.md 5.3): always on the default endpoint.
    pub(crate) fn may_see_name(&self, cred: &Credential, name: &[u8]) -> bool {
        match self.ep.policy() {
            None => true,
            Some(db) => db.lock().allows(cred, name, SEE),
        }
    }

    /// SEE a connection (policy.md 5.4): on a custom endpoint, one of its
    /// names must be visible.
    pub(crate) fn may_see_conn(&self, cred: &Credential, t: &Connection) -> bool {
        let Some(db) = self.ep.policy() else {
            return true;
        };
        let Ok(names) = self.ep.bus.owned_names(t) else {
            return false;
        };
        let db = db.lock();
        names.iter().any(|(_, n)| db.allows(cred, &n.name, SEE))
    }
}
