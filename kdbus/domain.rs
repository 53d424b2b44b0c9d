// SPDX-License-Identifier: GPL-2.0

//! A domain: one mount of kdbusfs (spec: fs.md 2). It hands out bus and
//! connection ids, accounts buses and connections per user, and holds the
//! buses so their names stay unique until each is fully torn down.

use crate::bus::Bus;
use crate::fs::Dir;
use crate::glue::cred::{Kuid, UserNamespace};
use crate::glue::gfp;
use crate::glue::stats::{Kind, Live};
use crate::proto::errno::{Result, EEXIST, EMFILE, ESHUTDOWN};
use crate::proto::limits::{USER_MAX_BUSES, USER_MAX_CONN};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};
use kernel::sync::{Arc, Mutex};
use kernel::types::ARef;

/// Per-user counters of one domain.
#[derive(Clone, Copy, Default)]
struct UserAccount {
    buses: u32,
    conns: u32,
}

struct DomainInner {
    active: bool,
    /// The mount's root directory, until the superblock dies.
    root: Option<Dir>,
    /// Live buses by id; their names are unique in the domain.
    buses: RBTree<u64, Arc<Bus>>,
    /// Counters of accounting users with buses or connections.
    users: RBTree<u64, UserAccount>,
}

/// One kdbusfs mount.
#[pin_data]
pub(crate) struct Domain {
    /// The user namespace of the mounting task.
    pub(crate) user_ns: ARef<UserNamespace>,
    /// Last id handed out; buses and connections share the counter.
    last_id: AtomicU64,
    /// Last custom endpoint id handed out.
    last_endpoint_id: AtomicU64,
    #[pin]
    inner: Mutex<DomainInner>,
    _live: Live,
}

/// Which per-user counter to charge.
#[derive(Clone, Copy)]
pub(crate) enum AccountKind {
    /// A bus (limit [`USER_MAX_BUSES`]).
    Bus,
    /// A connection (limit [`USER_MAX_CONN`]).
    Conn,
}

/// An accounting user (connection.md 3.2 step 13): a real uid (its global
/// kuid value), or the anonymous user of a custom endpoint, or the kernel.
pub(crate) type AccountId = u64;

/// The accounting user of a uid.
pub(crate) fn user_account(uid: Kuid) -> AccountId {
    uid.raw() as u64
}

/// The anonymous accounting user of custom endpoint `ep_id` (never a uid).
pub(crate) fn endpoint_account(ep_id: u64) -> AccountId {
    (1u64 << 32).saturating_add(ep_id)
}

/// The accounting user of kernel notifications.
pub(crate) const KERNEL_ACCOUNT: AccountId = u64::MAX;

/// One bus or connection charged to a user of a domain; given back on drop.
pub(crate) struct Account {
    domain: Arc<Domain>,
    uid: AccountId,
    kind: AccountKind,
}

impl Drop for Account {
    fn drop(&mut self) {
        self.domain.uncharge(self.uid, self.kind);
    }
}

impl UserAccount {
    fn counter(&mut self, kind: AccountKind) -> (&mut u32, u32) {
        match kind {
            AccountKind::Bus => (&mut self.buses, USER_MAX_BUSES),
            AccountKind::Conn => (&mut self.conns, USER_MAX_CONN),
        }
    }
}

impl Domain {
    /// A new, active domain for a mount made in `user_ns`, rooted at `root`.
    pub(crate) fn new(user_ns: ARef<UserNamespace>, root: Dir) -> Result<Arc<Self>> {
        Ok(Arc::pin_init(
            pin_init!(Domain {
                user_ns,
                last_id: AtomicU64::new(0),
                last_endpoint_id: AtomicU64::new(0),
                inner <- kernel::new_mutex!(DomainInner {
                    active: true,
                    root: Some(root),
                    buses: RBTree::new(),
                    users: RBTree::new(),
                }, "kdbus_domain"),
                _live: Live::new(Kind::Domain),
            }),
            gfp(),
        )?)
    }

    /// Whether the domain is still mounted.
    pub(crate) fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// The mount's root directory, while the domain is active.
    pub(crate) fn root(&self) -> Option<Dir> {
        let g = self.inner.lock();
        if g.active {
            g.root.clone()
        } else {
            None
        }
    }

    /// The next bus or connection id (never reused).
    pub(crate) fn next_id(&self) -> u64 {
        self.last_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The next custom endpoint id.
    pub(crate) fn next_endpoint_id(&self) -> u64 {
        self.last_endpoint_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Links a new bus, reserving its name (`EEXIST` if taken).
    pub(crate) fn link_bus(&self, bus: &Arc<Bus>) -> Result {
        let node = RBTreeNodeReservation::new(gfp())?;
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        if g.buses.values().any(|b| b.name() == bus.name()) {
            return Err(EEXIST);
        }
        g.buses.insert(node.into_node(bus.id, bus.clone()));
        Ok(())
    }

    /// Unlinks a torn-down bus, freeing its name.
    pub(crate) fn unlink_bus(&self, bus: &Bus) {
        let gone = self.inner.lock().buses.remove(&bus.id);
        // The last reference may go here: dropped outside the lock.
        drop(gone);
    }

    /// Charges one bus or connection to user `uid` (`EMFILE` over the
    /// limit); the returned [`Account`] gives it back.
    pub(crate) fn charge(self: &Arc<Self>, uid: AccountId, kind: AccountKind) -> Result<Account> {
        let node = RBTreeNodeReservation::new(gfp())?;
        let mut g = self.inner.lock();
        let mut u = g.users.get(&uid).copied().unwrap_or_default();
        let (count, max) = u.counter(kind);
        if *count >= max {
            return Err(EMFILE);
        }
        *count += 1;
        match g.users.get_mut(&uid) {
            Some(e) => *e = u,
            None => {
                g.users.insert(node.into_node(uid, u));
            }
        }
        Ok(Account {
            domain: self.clone(),
            uid,
            kind,
        })
    }

    fn uncharge(&self, uid: AccountId, kind: AccountKind) {
        let mut g = self.inner.lock();
        if let Some(u) = g.users.get_mut(&uid) {
            let (count, _) = u.counter(kind);
            *count = count.saturating_sub(1);
            if u.buses == 0 && u.conns == 0 {
                g.users.remove(&uid);
            }
        }
    }

    /// Unmount: deactivates the domain, lets go of its root and tears down
    /// every bus in it.
    pub(crate) fn deactivate(&self) {
        let (buses, root) = {
            let mut g = self.inner.lock();
            g.active = false;
            (
                core::mem::replace(&mut g.buses, RBTree::new()),
                g.root.take(),
            )
        };
        drop(root);
        for bus in buses.values() {
            bus.deactivate();
        }
    }
}
