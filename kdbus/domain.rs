// SPDX-License-Identifier: GPL-2.0

//! A domain: one mount of kdbusfs (spec: fs.md 2). It hands out bus and
//! connection ids, accounts buses and connections per user, and holds the
//! buses so their names stay unique until each is fully torn down.

use crate::bus::Bus;
use crate::cred::UserNs;
use crate::errno::{Result, EEXIST, EMFILE, ESHUTDOWN};
use crate::kvec::{remove, remove_arc};
use crate::limits::{USER_MAX_BUSES, USER_MAX_CONN};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Per-user counters of one domain.
struct UserAccount {
    /// Global kuid value.
    uid: u32,
    buses: u32,
    conns: u32,
}

/// The root dentry of the mount, valid while the superblock lives.
#[derive(Clone, Copy)]
struct Root(*mut crate::bindings::dentry);

// SAFETY: a dentry pointer may be handed between threads; its lifetime is
// bound to the superblock, which outlives every user of the domain.
unsafe impl Send for Root {}

struct DomainInner {
    active: bool,
    root: Option<Root>,
    /// Last id handed out; buses and connections share the counter.
    last_id: u64,
    buses: KVec<Arc<Bus>>,
    users: KVec<UserAccount>,
}

/// One kdbusfs mount.
#[pin_data]
pub(crate) struct Domain {
    /// The user namespace of the mounting task.
    pub(crate) user_ns: UserNs,
    #[pin]
    inner: Mutex<DomainInner>,
}

/// Which per-user counter to charge.
#[derive(Clone, Copy)]
pub(crate) enum Charge {
    /// A bus (limit [`USER_MAX_BUSES`]).
    Bus,
    /// A connection (limit [`USER_MAX_CONN`]).
    Conn,
}

impl Domain {
    /// A new, active domain for a mount made in `user_ns`.
    pub(crate) fn new(user_ns: UserNs) -> Result<Arc<Self>> {
        let d = Arc::pin_init(
            pin_init!(Domain {
                user_ns,
                inner <- kernel::new_mutex!(DomainInner {
                    active: true,
                    root: None,
                    last_id: 0,
                    buses: KVec::new(),
                    users: KVec::new(),
                }, "kdbus_domain"),
            }),
            GFP_KERNEL,
        )?;
        Ok(d)
    }

    /// Whether the domain is still mounted.
    pub(crate) fn is_active(&self) -> bool {
        self.inner.lock().active
    }

    /// Records the mount's root dentry (at fill_super).
    pub(crate) fn set_root(&self, root: *mut crate::bindings::dentry) {
        self.inner.lock().root = Some(Root(root));
    }

    /// The mount's root dentry, while the domain is active.
    pub(crate) fn root(&self) -> Option<*mut crate::bindings::dentry> {
        let g = self.inner.lock();
        if g.active {
            g.root.map(|r| r.0)
        } else {
            None
        }
    }

    /// The next bus or connection id (never reused).
    pub(crate) fn next_id(&self) -> u64 {
        let mut g = self.inner.lock();
        g.last_id += 1;
        g.last_id
    }

    /// Links a new bus, reserving its name.
    pub(crate) fn link_bus(&self, bus: &Arc<Bus>) -> Result {
        let mut g = self.inner.lock();
        if !g.active {
            return Err(ESHUTDOWN);
        }
        if g.buses.iter().any(|b| b.name() == bus.name()) {
            return Err(EEXIST);
        }
        g.buses.push(bus.clone(), GFP_KERNEL)?;
        Ok(())
    }

    /// Unlinks a torn-down bus, freeing its name.
    pub(crate) fn unlink_bus(&self, bus: &Bus) {
        let mut g = self.inner.lock();
        let gone = remove_arc(&mut g.buses, bus);
        drop(g);
        // The last reference may go here: drop it outside the lock.
        drop(gone);
    }

    /// Charges one bus or connection to the user `uid` (global kuid value).
    pub(crate) fn charge(&self, uid: u32, what: Charge) -> Result {
        let mut g = self.inner.lock();
        let idx = match g.users.iter().position(|u| u.uid == uid) {
            Some(i) => i,
            None => {
                g.users.push(
                    UserAccount {
                        uid,
                        buses: 0,
                        conns: 0,
                    },
                    GFP_KERNEL,
                )?;
                g.users.len() - 1
            }
        };
        let u = &mut g.users[idx];
        let (count, max) = match what {
            Charge::Bus => (&mut u.buses, USER_MAX_BUSES),
            Charge::Conn => (&mut u.conns, USER_MAX_CONN),
        };
        if *count >= max {
            let empty = u.buses == 0 && u.conns == 0;
            if empty {
                remove(&mut g.users, idx);
            }
            return Err(EMFILE);
        }
        *count += 1;
        Ok(())
    }

    /// Returns a charge taken by [`Domain::charge`].
    pub(crate) fn uncharge(&self, uid: u32, what: Charge) {
        let mut g = self.inner.lock();
        if let Some(idx) = g.users.iter().position(|u| u.uid == uid) {
            let u = &mut g.users[idx];
            match what {
                Charge::Bus => u.buses = u.buses.saturating_sub(1),
                Charge::Conn => u.conns = u.conns.saturating_sub(1),
            }
            if u.buses == 0 && u.conns == 0 {
                remove(&mut g.users, idx);
            }
        }
    }

    /// Unmount: deactivates the domain and tears down every bus in it.
    pub(crate) fn deactivate(&self) {
        let buses = {
            let mut g = self.inner.lock();
            g.active = false;
            g.root = None;
            core::mem::take(&mut g.buses)
        };
        for bus in buses.iter() {
            bus.deactivate();
        }
    }
}
