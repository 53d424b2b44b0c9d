// SPDX-License-Identifier: GPL-2.0

//! Connections (spec: connection.md): the peer object, HELLO, active
//! references, UPDATE, BYEBYE and the disconnect sequence. The other
//! concerns of a connection are `impl Connection` blocks in files of their
//! own: calls, windows and the timeout timer (`connection/calls.rs`), RECV
//! and FREE (`connection/recv.rs`), and placing messages into it
//! (`delivery.rs`).

mod calls;
mod recv;

use crate::domain::{endpoint_account, user_account, Account, AccountId, AccountKind};
use crate::endpoint::Endpoint;
use crate::glue::cred::{Credential, Kuid, UserNamespace, CAP_IPC_OWNER};
use crate::glue::file::File;
use crate::glue::gfp;
use crate::glue::poll::PollCondVar;
use crate::glue::stats::{Kind, Live};
use crate::glue::workqueue::{DelayedWork, DelayedWorkItem};
use crate::matches::MatchEntry;
use crate::metadata::{Consumer, ProcCache, Snapshot};
use crate::names::Records;
use crate::policy::PolicyDb;
use crate::pool::Pool;
use crate::proto::cmd::{self, Cmd};
use crate::proto::errno::{Result, E2BIG, EBUSY, ECONNRESET, EINVAL, EOPNOTSUPP, EPERM};
use crate::proto::item::HEADER_SIZE;
use crate::proto::metadata as pm;
use crate::proto::names;
use crate::proto::policy::UploadRules;
use crate::queue::Queue;
use crate::reply::Reply;
use crate::uapi::*;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, LockedBy, Mutex};
use kernel::types::ARef;

const SPECIAL: u64 =
    (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER | KDBUS_HELLO_MONITOR) as u64;

/// The mutable state of a connection, behind `Connection::inner`.
pub(crate) struct ConnInner {
    attach_send: u64,
    attach_recv: u64,
    /// Queued messages, in arrival order.
    pub(crate) queue: Queue,
    /// Calls this connection made that await a reply (at most
    /// `CONN_MAX_REQUESTS_PENDING`). Their states are guarded by this lock.
    requests: KVec<Arc<Reply>>,
    /// Broadcasts that could not be queued here (lost-message counter).
    pub(crate) lost: u64,
    /// Deadline the timeout worker is armed for.
    timer_deadline: Option<u64>,
    /// Ioctls running on the connection (active references).
    ioctls: u32,
    /// The match database (at most `MATCH_MAX` entries).
    pub(crate) matches: KVec<MatchEntry>,
    /// The connection's charge in the domain's per-user accounting, given
    /// back at disconnect (or with the object if it never got linked).
    account: Option<Account>,
}

/// A peer on a bus.
#[pin_data]
pub(crate) struct Connection {
    pub(crate) ep: Arc<Endpoint>,
    /// Unique id, from the domain's counter.
    pub(crate) id: u64,
    /// HELLO flags.
    pub(crate) flags: u64,
    pub(crate) pool: Arc<Pool>,
    /// The real uid of the endpoint file's opener: the uid TALK compares
    /// with (policy.md 5.2 step 3).
    pub(crate) uid: Kuid,
    /// The accounting user of the connection and of what it sends: the
    /// opener's real uid, or a custom endpoint's anonymous user.
    pub(crate) account: AccountId,
    /// The credentials of the endpoint file's opener ("connection creds",
    /// policy.md 6).
    pub(crate) cred: ARef<Credential>,
    /// The effective uid of the opener: the connection's credentials when
    /// it is the receiver of a signal (TALK to the sender, policy.md 6).
    pub(crate) euid: Kuid,
    /// An owner connection (connection.md 2): opened on the default endpoint
    /// by the bus creator's euid or with `CAP_IPC_OWNER`. Bypasses policy.
    pub(crate) owner: bool,
    /// Its ownership records in the bus's name registry.
    pub(crate) names: Records,
    /// How many records `names` holds: set beside it under the registry
    /// lock, read without it (NAMES metadata skips the lock for a
    /// connection without names; a SEND racing a NAME_ACQUIRE of another
    /// thread may see either).
    pub(crate) name_records: AtomicUsize,
    /// CONN_DESCRIPTION from HELLO, as the item metadata carries it.
    description: Option<Description>,
    /// The metadata snapshot taken at HELLO, or the faked one
    /// (metadata.md 1): what CONN_INFO reports.
    pub(crate) meta: Snapshot,
    /// The namespaces metadata is translated into for this connection
    /// (metadata.md 3), captured at HELLO.
    pub(crate) consumer: Consumer,
    /// What its last message's process metadata was, and how its last
    /// receiver saw it (metadata/cache.rs).
    #[pin]
    pub(crate) meta_cache: ProcCache,
    /// Cleared once, at disconnect (under `inner`); read without locks.
    active: AtomicBool,
    #[pin]
    pub(crate) inner: Mutex<ConnInner>,
    /// Pollers.
    #[pin]
    pub(crate) wait: PollCondVar,
    /// Signalled when the last running ioctl of a disconnected connection
    /// ends.
    #[pin]
    drained: CondVar,
    /// Reply-timeout worker.
    #[pin]
    timer: DelayedWork<Connection>,
    _live: Live,
}

impl DelayedWorkItem for Connection {
    fn delayed_work(&self) -> &DelayedWork<Self> {
        &self.timer
    }

    fn run(this: Arc<Self>) {
        this.check_timeouts();
    }
}

/// An active reference: an ioctl running on a connection. Disconnect waits
/// until none is left (connection.md 9.3 step 1), so none may be held while
/// userspace can stall the ioctl: user copies and foreign `poll` calls run
/// [`Active::suspended`].
pub(crate) struct Active {
    conn: Arc<Connection>,
    held: bool,
}

impl Active {
    /// The connection.
    pub(crate) fn conn(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// Runs `f` without the active reference, then takes it again:
    /// `ECONNRESET` if the connection was disconnected meanwhile (whatever
    /// `f` returned; its effects are then undone by the caller's drops).
    pub(crate) fn suspended<R>(&mut self, f: impl FnOnce() -> Result<R>) -> Result<R> {
        self.conn.release_active();
        self.held = false;
        let r = f();
        self.conn.take_active()?;
        self.held = true;
        r
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.held {
            self.conn.release_active();
        }
    }
}

/// The sender of a message: its connection (under an active reference) and
/// the credentials of the sending task (policy uses the current ones).
pub(crate) struct Sender {
    pub(crate) active: Active,
    pub(crate) cred: ARef<Credential>,
}

impl Sender {
    /// The sending connection.
    pub(crate) fn conn(&self) -> &Arc<Connection> {
        self.active.conn()
    }
}

/// What HELLO hands back to userspace.
pub(crate) struct HelloReply {
    pub(crate) conn: Arc<Connection>,
    pub(crate) offset: u64,
    pub(crate) items_size: u64,
}

fn sanitized_attach(c: &Cmd<'_>, ty: u32) -> Result<Option<u64>> {
    c.item(ty)
        .map(|i| cmd::sanitize_attach(i.u64()))
        .transpose()
}

/// A connection's description, kept as the CONN_DESCRIPTION item its
/// messages carry (metadata.md 4).
struct Description {
    /// The item, zero-padded.
    item: KVec<u8>,
    /// Its unpadded size.
    size: usize,
}

impl Description {
    fn new(text: &[u8]) -> Result<Self> {
        let mut item = KVec::new();
        let size = pm::put_item(&mut item, KDBUS_ITEM_CONN_DESCRIPTION, &[text, &[0]])?;
        Ok(Description { item, size })
    }

    /// The description without NUL.
    fn text(&self) -> &[u8] {
        self.item
            .get(HEADER_SIZE..self.size.saturating_sub(1))
            .unwrap_or(&[])
    }
}

impl Connection {
    /// KDBUS_CMD_HELLO on `ep` (connection.md 3.2), after generic parsing,
    /// for the opener of `file`.
    pub(crate) fn hello(ep: &Arc<Endpoint>, file: &File, c: &Cmd<'_>) -> Result<HelloReply> {
        let flags = c.flags;
        let pool_size = c.field(offset_of!(kdbus_cmd_hello, pool_size));
        let page = kernel::page::PAGE_SIZE as u64;
        if pool_size == 0 || pool_size % page != 0 {
            return Err(EINVAL);
        }
        if (flags & SPECIAL).count_ones() > 1 {
            return Err(EINVAL);
        }
        let special_named = flags & (KDBUS_HELLO_ACTIVATOR | KDBUS_HELLO_POLICY_HOLDER) as u64;
        let name = c.item(KDBUS_ITEM_NAME);
        match (&name, special_named != 0) {
            (Some(_), false) | (None, true) => return Err(EINVAL),
            (Some(n), true) => {
                if !names::is_valid_well_known(n.str_bytes(), true) {
                    return Err(EINVAL);
                }
            }
            (None, false) => {}
        }
        if flags & KDBUS_HELLO_MONITOR as u64 != 0 && !ep.is_default {
            return Err(EOPNOTSUPP);
        }

        let bus = &ep.bus;
        let domain = &bus.domain;
        let fcred = file.cred();
        let privileged = ep.is_default && domain.user_ns.file_capable(file, CAP_IPC_OWNER);
        let owner = ep.is_default && (fcred.euid() == bus.uid || privileged);
        if !owner && flags & SPECIAL != 0 {
            return Err(EPERM);
        }
        let faked = [KDBUS_ITEM_CREDS, KDBUS_ITEM_PIDS, KDBUS_ITEM_SECLABEL];
        if !owner && faked.iter().any(|&t| c.item(t).is_some()) {
            return Err(EPERM);
        }
        let attach_send =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_send)))?;
        let attach_recv =
            cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_hello, attach_flags_recv)))?;
        let activator = flags & KDBUS_HELLO_ACTIVATOR as u64 != 0;
        let activator_name = match (activator, &name) {
            (true, Some(n)) => Some(n.str_bytes()),
            _ => None,
        };
        let description = match c.item(KDBUS_ITEM_CONN_DESCRIPTION) {
            Some(d) => Some(Description::new(d.str_bytes())?),
            None => None,
        };

        let id = domain.next_id();
        let pool = Pool::new(pool_size)?;
        // 12: the metadata snapshot (or the faked items), and the
        // namespaces of the HELLO task metadata is translated into.
        let meta = Snapshot::at_hello(c, &Credential::current())?;
        let consumer = Consumer::current();
        // 13: faked CREDS move the accounting only for privileged
        // connections; TALK and policy keep the real opener's ids.
        let uid = fcred.uid();
        let account_id = match (ep.is_default, meta.faked_uid()) {
            (true, Some(faked)) if privileged => user_account(faked),
            (true, _) => user_account(uid),
            (false, _) => endpoint_account(ep.id),
        };
        let charge = domain.charge(account_id, AccountKind::Conn)?;
        let conn = Arc::pin_init(
            pin_init!(Connection {
                ep: ep.clone(),
                id,
                flags,
                pool,
                uid,
                account: account_id,
                cred: ARef::from(fcred),
                euid: fcred.euid(),
                owner,
                names: LockedBy::new(&bus.registry, KVec::new()),
                name_records: AtomicUsize::new(0),
                description,
                meta,
                consumer,
                meta_cache <- ProcCache::new(),
                active: AtomicBool::new(true),
                inner <- kernel::new_mutex!(ConnInner {
                    attach_send,
                    attach_recv,
                    queue: Queue::new(),
                    requests: KVec::new(),
                    lost: 0,
                    timer_deadline: None,
                    ioctls: 0,
                    matches: KVec::new(),
                    account: Some(charge),
                }, "kdbus_conn"),
                drained <- kernel::new_condvar!("kdbus_conn_drained"),
                wait <- PollCondVar::new(),
                timer <- DelayedWork::new(),
                _live: Live::new(Kind::Connection),
            }),
            gfp(),
        )?;

        // The HELLO slice: one BLOOM_PARAMETER item (connection.md 3.4).
        let mut item = [0u8; 32];
        for (i, v) in [
            32,
            KDBUS_ITEM_BLOOM_PARAMETER as u64,
            bus.bloom.size,
            bus.bloom.n_hash,
        ]
        .iter()
        .enumerate()
        {
            item[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        let (offset, _) = conn.pool.publish_result(&item)?;
        // 15-17: linked into the bus and the endpoint in one step, ID_ADD
        // queued and the activator name registered, under the registry lock
        // (a disconnect queues ID_REMOVE under it too, so it cannot come
        // first). Until linked nobody can see the connection: a failure
        // there just drops it; from here on failures disconnect it (21).
        let registered = {
            let mut reg = bus.registry.lock();
            bus.link_conn(&conn)?;
            if !conn.is_monitor() {
                conn.notify_id(KDBUS_ITEM_ID_ADD);
            }
            match activator_name {
                Some(n) => bus.register_activator_locked(&mut reg, &conn, n),
                None => Ok(()),
            }
        };
        // 18
        bus.flush_notifications();
        // 19: the bus policy entry of an activator or policy holder.
        let installed = registered.and_then(|()| match special_named != 0 {
            true => conn.install_policy(c, activator, fcred.user_ns()),
            false => Ok(()),
        });
        if let Err(e) = installed {
            conn.disconnect();
            return Err(e);
        }
        Ok(HelloReply {
            conn,
            offset,
            items_size: item.len() as u64,
        })
    }

    /// Whether the connection has not been disconnected.
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// `ECONNRESET` if the connection was disconnected (abi.md 11: checked
    /// before any command is looked at).
    pub(crate) fn check_active(&self) -> Result {
        if self.is_active() {
            Ok(())
        } else {
            Err(ECONNRESET)
        }
    }

    fn take_active(&self) -> Result {
        let mut g = self.inner.lock();
        if !self.is_active() {
            return Err(ECONNRESET);
        }
        g.ioctls += 1;
        Ok(())
    }

    fn release_active(&self) {
        let mut g = self.inner.lock();
        g.ioctls = g.ioctls.saturating_sub(1);
        if !self.is_active() {
            self.drained.notify_all();
        }
    }

    /// Takes an active reference for an ioctl; `ECONNRESET` once
    /// disconnected.
    pub(crate) fn acquire(self: &Arc<Self>) -> Result<Active> {
        self.take_active()?;
        Ok(Active {
            conn: self.clone(),
            held: true,
        })
    }

    /// An ordinary connection: not an activator, policy holder or monitor.
    pub(crate) fn is_ordinary(&self) -> bool {
        self.flags & SPECIAL == 0
    }

    pub(crate) fn is_monitor(&self) -> bool {
        self.flags & KDBUS_HELLO_MONITOR as u64 != 0
    }

    pub(crate) fn is_policy_holder(&self) -> bool {
        self.flags & KDBUS_HELLO_POLICY_HOLDER as u64 != 0
    }

    /// Whether the connection accepts messages carrying FDs.
    pub(crate) fn accepts_fds(&self) -> bool {
        self.flags & KDBUS_HELLO_ACCEPT_FD as u64 != 0
    }

    /// The connection's description (without NUL), for CONN_DESCRIPTION
    /// metadata.
    pub(crate) fn description(&self) -> Option<&[u8]> {
        self.description.as_ref().map(|d| d.text())
    }

    /// The CONN_DESCRIPTION item of the connection (padded) and its
    /// unpadded size, encoded once at HELLO for every message it sends.
    pub(crate) fn description_item(&self) -> Option<(&[u8], usize)> {
        self.description.as_ref().map(|d| (&d.item[..], d.size))
    }

    /// Whether the connection's metadata was faked at HELLO: its messages
    /// carry no process metadata (connection.md 10).
    pub(crate) fn faked_meta(&self) -> bool {
        self.meta.is_faked()
    }

    /// The metadata this connection lets others see (`attach_flags_send`).
    pub(crate) fn attach_send(&self) -> u64 {
        self.inner.lock().attach_send
    }

    /// The metadata this connection wants on what it receives.
    pub(crate) fn attach_recv(&self) -> u64 {
        self.inner.lock().attach_recv
    }

    /// Installs (or replaces) the bus policy entry of an activator or a
    /// policy holder from the NAME and POLICY_ACCESS items of `c` (HELLO or
    /// UPDATE; policy.md 3), ids read in `ns`, the caller's user namespace.
    pub(crate) fn install_policy(
        &self,
        c: &Cmd<'_>,
        activator: bool,
        ns: &UserNamespace,
    ) -> Result {
        let how = UploadRules {
            wildcards: !activator,
            max_names: Some(1),
            too_many: E2BIG,
        };
        let entries = PolicyDb::build(|| c.items(), how, ns, self.id)?;
        let old = self.ep.bus.policy.lock().replace(self.id, entries)?;
        drop(old);
        Ok(())
    }

    /// KDBUS_CMD_UPDATE (connection.md 5).
    pub(crate) fn update(&self, c: &Cmd<'_>) -> Result {
        let send = c.item(KDBUS_ITEM_ATTACH_FLAGS_SEND).is_some();
        let recv = c.item(KDBUS_ITEM_ATTACH_FLAGS_RECV).is_some();
        let policy =
            c.item(KDBUS_ITEM_NAME).is_some() || c.item(KDBUS_ITEM_POLICY_ACCESS).is_some();
        let activator = self.flags & KDBUS_HELLO_ACTIVATOR as u64 != 0;
        if (send && (activator || self.is_policy_holder()))
            || (recv && self.is_policy_holder())
            || (policy && !self.is_policy_holder())
        {
            return Err(EOPNOTSUPP);
        }
        let new_send = sanitized_attach(c, KDBUS_ITEM_ATTACH_FLAGS_SEND)?;
        let new_recv = sanitized_attach(c, KDBUS_ITEM_ATTACH_FLAGS_RECV)?;
        if policy {
            self.install_policy(c, false, Credential::current().user_ns())?;
        }
        let mut g = self.inner.lock();
        if let Some(v) = new_send {
            g.attach_send = v;
        }
        if let Some(v) = new_recv {
            g.attach_recv = v;
        }
        Ok(())
    }

    /// Marks the connection inactive; `false` if it already was.
    pub(crate) fn deactivate(&self) -> bool {
        let _g = self.inner.lock();
        self.active.swap(false, Ordering::AcqRel)
    }

    /// KDBUS_CMD_BYEBYE (connection.md 9.1), run under its own active
    /// reference.
    pub(crate) fn byebye(self: &Arc<Self>) -> Result {
        if !self.is_ordinary() {
            return Err(EOPNOTSUPP);
        }
        {
            let g = self.inner.lock();
            if !self.is_active() {
                return Err(ECONNRESET);
            }
            if !g.queue.is_empty() {
                return Err(EBUSY);
            }
            // Deactivate under the lock: no message can slip in.
            self.active.store(false, Ordering::Release);
        }
        self.finish_disconnect(1);
        Ok(())
    }

    /// Disconnects (close, endpoint or bus teardown). Idempotent.
    pub(crate) fn disconnect(self: &Arc<Self>) {
        if self.deactivate() {
            self.finish_disconnect(0);
        }
    }

    /// The disconnect sequence after deactivation (connection.md 9.3);
    /// `own` is 1 when called from an ioctl on this connection.
    fn finish_disconnect(self: &Arc<Self>, own: u32) {
        let requests = {
            let mut g = self.inner.lock();
            g.timer_deadline = None;
            core::mem::take(&mut g.requests)
        };
        // 1: wake pollers and our own synchronous caller (ECONNRESET) ...
        self.wait.notify_all();
        for r in requests.iter() {
            r.wait.notify_all();
        }
        // ... and wait until the other running ioctls are done. None of them
        // holds its reference across a user copy or a foreign poll, so this
        // wait is bounded.
        {
            let mut g = self.inner.lock();
            while g.ioctls > own {
                self.drained.wait(&mut g);
            }
        }
        // 2
        self.timer.cancel();
        let entries = self.ep.bus.policy.lock().remove_owner(self.id);
        drop(entries);
        // 3
        let bus = &self.ep.bus;
        bus.unlink_conn(self);
        // 4: names, in the order they were acquired; what was addressed to
        // a name held for an activator goes back to it.
        bus.release_all_names(self);
        // 5: queued messages are discarded (their slices, charges and files
        // go with them); callers of queued calls are told in step 7, once
        // per call.
        let queue = self.inner.lock().queue.take_all();
        drop(queue);
        // 6
        drop(requests);
        // 7
        let mut next = 0;
        while let Some(c) = bus.conn_after(next) {
            next = c.id;
            c.kill_requests_to(self.id);
        }
        // 8 (queued under the registry lock, after this connection's name
        // notifications and after its ID_ADD)
        if !self.is_monitor() {
            let _reg = bus.registry.lock();
            self.notify_id(KDBUS_ITEM_ID_REMOVE);
        }
        // 9
        bus.flush_notifications();
        let account = self.inner.lock().account.take();
        drop(account);
        self.meta_cache.clear();
    }
}
