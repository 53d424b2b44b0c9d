// SPDX-License-Identifier: GPL-2.0

//! The name registry of a bus (spec: names.md): names in a hash table (a
//! random SipHash key per bus), each with the per-name state machine of
//! `proto/registry.rs`, each connection's ownership records in creation
//! order, activators, and the hand-over of messages between an activator
//! and an implementer (names.md 6.3).
//!
//! A [`Name`] sits both in the registry and in the records of every
//! connection that owns or waits for it; all of it is guarded by the
//! registry lock (`LockedBy`). Notifications are queued on the bus under
//! that lock, in generation order, and delivered after it is released
//! (`notify.rs`).

use crate::bus::Bus;
use crate::connection::{Connection, Sender};
use crate::glue::cred::Credential;
use crate::glue::gfp;
use crate::message::Kmsg;
use crate::proto::errno::{Result, EADDRINUSE, EADDRNOTAVAIL, EINVAL, ENOMEM, EPERM, ESRCH};
use crate::proto::limits::CONN_MAX_NAMES;
use crate::proto::names;
use crate::proto::registry::{Event, NameState, Outcome, Owner, OwnerQueue};
use crate::queue::{Placed, QueueSlot};
use crate::uapi::*;
use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, LockedBy, Mutex};

impl OwnerQueue for KVec<Owner> {
    fn owners(&self) -> &[Owner] {
        self.as_slice()
    }

    fn owners_mut(&mut self) -> &mut [Owner] {
        self.as_mut_slice()
    }

    fn try_insert(&mut self, idx: usize, o: Owner) -> Result {
        self.push(o, gfp())?;
        if let Some(tail) = self.as_mut_slice().get_mut(idx..) {
            tail.rotate_right(1);
        }
        Ok(())
    }

    fn remove_at(&mut self, idx: usize) {
        crate::glue::kvec::remove(self, idx);
    }
}

/// A registered well-known name.
pub(crate) struct Name {
    /// The name, without NUL.
    pub(crate) name: KVec<u8>,
    hash: u64,
    /// Guarded by the bus's registry lock.
    pub(crate) state: LockedBy<NameState<KVec<Owner>>, Registry>,
}

/// A connection's ownership records (primary, queued or activator), in
/// creation order; guarded by the bus's registry lock.
pub(crate) type Records = LockedBy<KVec<Arc<Name>>, Registry>;

/// The names of a bus.
pub(crate) struct Registry {
    /// Names by hash; a bucket holds the (rare) colliding names.
    names: RBTree<u64, KVec<Arc<Name>>>,
    /// Last registration id handed out.
    last_id: u64,
}

/// Where a message addressed by name goes (message.md 6).
pub(crate) struct Target {
    /// The current owner: primary, or activator.
    pub(crate) owner: u64,
    /// The name's registration id.
    pub(crate) name_id: u64,
    /// The owner is the name's activator.
    pub(crate) activator: bool,
}

/// An entry made ahead of taking the registry lock, for a name that may
/// not exist yet.
struct NewName {
    name: Arc<Name>,
    bucket: KVec<Arc<Name>>,
    node: RBTreeNodeReservation<u64, KVec<Arc<Name>>>,
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new() -> Self {
        Registry {
            names: RBTree::new(),
            last_id: 0,
        }
    }

    fn lookup(&self, hash: u64, name: &[u8]) -> Option<Arc<Name>> {
        self.names
            .get(&hash)?
            .iter()
            .find(|n| n.name.as_slice() == name)
            .cloned()
    }

    /// The name, created from `new` if it does not exist.
    fn lookup_or_insert(&mut self, new: NewName) -> Result<Arc<Name>> {
        if let Some(n) = self.lookup(new.name.hash, &new.name.name) {
            return Ok(n);
        }
        let n = new.name.clone();
        self.last_id += 1;
        let id = self.last_id;
        n.state.access_mut(self).id = id;
        match self.names.get_mut(&n.hash) {
            Some(bucket) => bucket.push(n.clone(), gfp())?,
            None => {
                let mut b = new.bucket;
                b.push(n.clone(), gfp())?;
                self.names.insert(new.node.into_node(n.hash, b));
            }
        }
        Ok(n)
    }

    /// Drops `n` from the table if nobody owns, waits for or activates it.
    fn tidy(&mut self, n: &Arc<Name>) {
        if !n.state.access(self).is_empty() {
            return;
        }
        let gone = match self.names.get_mut(&n.hash) {
            Some(bucket) => {
                let i = bucket.iter().position(|x| Arc::ptr_eq(x, n));
                i.and_then(|i| crate::glue::kvec::remove(bucket, i))
            }
            None => None,
        };
        drop(gone);
        if self.names.get(&n.hash).is_some_and(|b| b.is_empty()) {
            self.names.remove(&n.hash);
        }
    }
}

fn new_name(hash: u64, name: &[u8], lock: &Mutex<Registry>) -> Result<NewName> {
    let mut bytes = KVec::with_capacity(name.len(), gfp())?;
    bytes.extend_from_slice(name, gfp())?;
    let n = Arc::new(
        Name {
            name: bytes,
            hash,
            state: LockedBy::new(lock, NameState::new(0, KVec::with_capacity(1, gfp())?)),
        },
        gfp(),
    )?;
    Ok(NewName {
        name: n,
        bucket: KVec::with_capacity(1, gfp())?,
        node: RBTreeNodeReservation::new(gfp())?,
    })
}

impl Bus {
    /// The hash of `name` in this bus's registry.
    fn name_hash(&self, name: &[u8]) -> u64 {
        self.name_key.hash(name)
    }

    /// Where a message to `name` goes (message.md 6): `ESRCH` if it has no
    /// owner.
    pub(crate) fn resolve_name(&self, name: &[u8]) -> Result<Target> {
        let h = self.name_hash(name);
        let reg = self.registry.lock();
        let n = reg.lookup(h, name).ok_or(ESRCH)?;
        let st = n.state.access(&reg);
        let o = st.owner().ok_or(ESRCH)?;
        Ok(Target {
            owner: o.conn,
            name_id: st.id,
            activator: st.primary().is_none(),
        })
    }

    /// The name a CONN_INFO by name asks about: its current owner's id.
    pub(crate) fn name_owner(&self, name: &[u8]) -> Option<u64> {
        let h = self.name_hash(name);
        let reg = self.registry.lock();
        let n = reg.lookup(h, name)?;
        let o = n.state.access(&reg).owner()?;
        Some(o.conn)
    }

    /// Queues `p`, addressed to `name` and placed at `dst` (the owner the
    /// name resolved to), under the registry lock, so that no hand-over can
    /// slip in between (message.md 6). If the name has moved on meanwhile
    /// (the copy into `dst`'s pool ran without locks), the message goes to
    /// the current owner instead, like any message addressed to the name
    /// (moved there as names.md 6.3 moves them, its tracker with it), after
    /// the checks a SEND to that owner makes (TALK with the sending task's
    /// credentials, `NO_AUTO_START`); `ESRCH` only if the name has no owner any more.
    pub(crate) fn enqueue_named(
        &self,
        name: &[u8],
        s: &Sender,
        no_auto_start: bool,
        dst: &Arc<Connection>,
        slot: QueueSlot,
        mut p: Placed,
    ) -> Result {
        let h = self.name_hash(name);
        let reg = self.registry.lock();
        let n = reg.lookup(h, name).ok_or(ESRCH)?;
        let st = n.state.access(&reg);
        let owner = st.owner().ok_or(ESRCH)?;
        let (name_id, activator) = (st.id, st.primary().is_none());
        p.name_id = name_id;
        if owner.conn == dst.id {
            return dst.enqueue(slot, p);
        }
        let now = self.find_conn(owner.conn).ok_or(ESRCH)?;
        if activator && no_auto_start {
            return Err(EADDRNOTAVAIL);
        }
        let names = owned_names_locked(&reg, &now)?;
        if !s.conn().may_talk_given(&s.cred, &now, &names) {
            return Err(EPERM);
        }
        if let Some(r) = &p.reply {
            r.retarget(now.id);
        }
        drop(slot);
        now.requeue(p)
    }

    /// KDBUS_CMD_NAME_ACQUIRE for `conn` by a task with `cred` (names.md
    /// 3). Returns the result and the `return_flags` to report either way.
    pub(crate) fn name_acquire(
        &self,
        conn: &Arc<Connection>,
        cred: &Credential,
        name: &[u8],
        req: u64,
    ) -> (Result, u64) {
        if !names::is_valid_well_known(name, false) {
            return (Err(EINVAL), 0);
        }
        // Before anything else, so that existence is not revealed.
        if !conn.may_own(cred, name) {
            return (Err(EPERM), 0);
        }
        let new = match new_name(self.name_hash(name), name, &self.registry) {
            Ok(n) => n,
            Err(e) => return (Err(e), 0),
        };
        let r = {
            let mut reg = self.registry.lock();
            let r = self.acquire_locked(&mut reg, conn, new, req);
            drop(reg);
            r
        };
        self.flush_notifications();
        r
    }

    fn acquire_locked(
        &self,
        reg: &mut Registry,
        conn: &Arc<Connection>,
        new: NewName,
        req: u64,
    ) -> (Result, u64) {
        let n = match reg.lookup_or_insert(new) {
            Ok(n) => n,
            Err(e) => return (Err(e), 0),
        };
        let records = conn.names.access_mut(reg);
        let can_create = records.len() < CONN_MAX_NAMES;
        if records.reserve(1, gfp()).is_err() {
            reg.tidy(&n);
            return (Err(ENOMEM), 0);
        }
        let r = n.state.access_mut(reg).acquire(conn.id, req, can_create);
        let result = match r {
            Ok(out) => {
                self.apply(reg, &n, conn, &out);
                (Ok(()), out.return_flags)
            }
            Err((e, rf)) => (Err(e), rf),
        };
        reg.tidy(&n);
        result
    }

    /// KDBUS_CMD_NAME_RELEASE for `conn` (names.md 4): no syntax check;
    /// `ESRCH` for an unknown name, `EADDRINUSE` without a record.
    pub(crate) fn name_release(&self, conn: &Arc<Connection>, name: &[u8]) -> Result {
        let h = self.name_hash(name);
        let r = {
            let mut reg = self.registry.lock();
            let n = reg.lookup(h, name).ok_or(ESRCH)?;
            let out = n
                .state
                .access_mut(&mut reg)
                .release(conn.id)
                .ok_or(EADDRINUSE)?;
            self.apply(&mut reg, &n, conn, &out);
            reg.tidy(&n);
            Ok(())
        };
        self.flush_notifications();
        r
    }

    /// Registers activator `conn` for `name` at HELLO (names.md 6.1):
    /// `EEXIST` if the name has an activator. Called under the registry
    /// lock, while the connection is linked.
    pub(crate) fn register_activator_locked(
        &self,
        reg: &mut Registry,
        conn: &Arc<Connection>,
        name: &[u8],
    ) -> Result {
        let new = new_name(self.name_hash(name), name, &self.registry)?;
        let n = reg.lookup_or_insert(new)?;
        if let Err(e) = conn.names.access_mut(reg).reserve(1, gfp()) {
            reg.tidy(&n);
            return Err(e.into());
        }
        let r = n.state.access_mut(reg).register_activator(conn.id);
        let r = r.map(|out| self.apply(reg, &n, conn, &out));
        reg.tidy(&n);
        r
    }

    /// Releases every record of a disconnecting connection, in creation
    /// order (connection.md 9.3 step 4, names.md 5). The notifications are
    /// queued; the caller flushes them.
    pub(crate) fn release_all_names(&self, conn: &Arc<Connection>) {
        let mut reg = self.registry.lock();
        let records = core::mem::take(conn.names.access_mut(&mut reg));
        conn.name_records.store(0, Ordering::Relaxed);
        for n in records.iter() {
            if let Some(out) = n.state.access_mut(&mut reg).release(conn.id) {
                self.apply(&mut reg, n, conn, &out);
            }
            reg.tidy(n);
        }
        drop(reg);
        drop(records);
    }

    /// The names `conn` currently owns (as primary owner, or as activator in
    /// charge), with their record flags: for NAME match rules and OWNED_NAME
    /// metadata.
    pub(crate) fn owned_names(&self, conn: &Connection) -> Result<KVec<(u64, Arc<Name>)>> {
        owned_names_locked(&self.registry.lock(), conn)
    }

    /// Runs `f` with each ownership record of `conn` (flags and name), in
    /// creation order, under the registry lock (LIST).
    pub(crate) fn with_records(
        &self,
        conn: &Connection,
        mut f: impl FnMut(u64, &[u8]) -> Result,
    ) -> Result {
        let reg = self.registry.lock();
        for n in conn.names.access(&reg).iter() {
            if let Some(o) = n.state.access(&reg).record(conn.id) {
                f(o.flags, &n.name)?;
            }
        }
        Ok(())
    }

    /// Applies what a registry operation reported beside the name's state.
    fn apply(&self, reg: &mut Registry, n: &Arc<Name>, caller: &Arc<Connection>, out: &Outcome) {
        if out.created {
            // Capacity was reserved by the caller.
            let records = caller.names.access_mut(reg);
            let _ = records.push(n.clone(), gfp());
            caller.name_records.store(records.len(), Ordering::Relaxed);
        }
        if let Some(c) = out.deleted {
            let conn = if c == caller.id {
                Some(caller.clone())
            } else {
                self.find_conn(c)
            };
            if let Some(conn) = conn {
                let records = conn.names.access_mut(reg);
                let i = records.iter().position(|x| Arc::ptr_eq(x, n));
                let gone = i.and_then(|i| crate::glue::kvec::remove(records, i));
                conn.name_records.store(records.len(), Ordering::Relaxed);
                drop(gone);
            }
        }
        if let Some(e) = out.event {
            self.queue_name_event(&n.name, e);
        }
        if let Some((from, to)) = out.moved {
            let name_id = n.state.access(reg).id;
            let find = |id: u64| {
                if id == caller.id {
                    Some(caller.clone())
                } else {
                    self.find_conn(id)
                }
            };
            if let (Some(from), Some(to)) = (find(from), find(to)) {
                self.move_named(name_id, &from, &to);
            }
        }
    }

    /// Queues a NAME_ADD, NAME_CHANGE or NAME_REMOVE notification.
    fn queue_name_event(&self, name: &[u8], e: Event) {
        let (ty, old, new) = match e {
            Event::Add { new } => (KDBUS_ITEM_NAME_ADD, None, Some(new)),
            Event::Change { old, new } => (KDBUS_ITEM_NAME_CHANGE, Some(old), Some(new)),
            Event::Remove { old } => (KDBUS_ITEM_NAME_REMOVE, Some(old), None),
        };
        let mut head = [0u8; 32];
        for (i, o) in [old, new].iter().enumerate() {
            let (id, flags) = o.map_or((0, 0), |o| (o.conn, o.flags));
            head[i * 16..i * 16 + 8].copy_from_slice(&id.to_ne_bytes());
            head[i * 16 + 8..i * 16 + 16].copy_from_slice(&flags.to_ne_bytes());
        }
        let seq = self.next_seq();
        if let Ok(k) = Kmsg::notification_parts(ty, &[&head, name, &[0]], seq) {
            self.queue_notification(k);
        }
    }

    /// Moves what was addressed to registration `name_id` from `from` to
    /// `to` (names.md 6.3): the reply trackers of calls sent to the name,
    /// then the queued messages, in queue order. Under the registry lock.
    fn move_named(&self, name_id: u64, from: &Arc<Connection>, to: &Arc<Connection>) {
        let mut next = 0;
        while let Some(c) = self.conn_after(next) {
            next = c.id;
            c.retarget_requests(name_id, from.id, to.id);
        }
        let moved = from.take_named(name_id);
        for p in moved.into_iter() {
            if to.requeue(p).is_err() {
                to.count_lost();
            }
        }
    }
}

/// [`Bus::owned_names`] under the registry lock.
fn owned_names_locked(reg: &Registry, conn: &Connection) -> Result<KVec<(u64, Arc<Name>)>> {
    let records = conn.names.access(reg);
    let mut out = KVec::with_capacity(records.len(), gfp())?;
    for n in records.iter() {
        let st = n.state.access(reg);
        if let Some(o) = st.owner().filter(|o| o.conn == conn.id) {
            out.push((o.flags, n.clone()), gfp())?;
        }
    }
    Ok(out)
}
