// SPDX-License-Identifier: GPL-2.0

//! A sending connection's metadata cache: the process metadata its last
//! message carried, and that metadata as its last receiver saw it.
//!
//! Process metadata is collected at SEND from the sending thread, once per
//! message (metadata.md 1). A steady sender's items rarely change between
//! two messages, while collecting them afresh (the credentials, the pids,
//! the executable's path, the argument block, the cgroup path) and encoding
//! them for the receiver costs more than the bare message. So a message
//! takes the connection's last snapshot when every item it needs is still
//! what the thread would give now ([`ProcMeta::unchanged`]: compared item by
//! item against the task, never assumed), and a receiver whose namespaces
//! and item mask are those of the last rendering of that snapshot gets its
//! bytes, shared, written into its pool from where they are. What a message
//! carries is exactly what a fresh collection at its SEND would have given.
//!
//! One lock, a spinlock taken with no other kdbus lock held, around
//! cloning or swapping the references; nothing is collected, rendered or
//! dropped under it.

use super::{Consumer, ProcMeta};
use crate::glue::cred::{Credential, UserNamespace};
use crate::glue::gfp;
use crate::glue::pid::PidNamespace;
use crate::glue::stats::{Kind, Live};
use crate::proto::errno::Result;
use crate::proto::metadata::{self as pm, Values};
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};
use kernel::types::ARef;

/// The process metadata of one message: a snapshot (perhaps shared with
/// the sender's cache and other messages) and which of its items were
/// found true for this message. Only those are rendered.
pub(crate) struct MsgProc {
    snap: Arc<ProcMeta>,
    valid: u64,
    /// The cache's rendering of `snap` when the message took it, a
    /// candidate for the message's receivers.
    rendered: Option<Arc<Rendered>>,
}

impl MsgProc {
    /// The items of `mask` this message does not have yet.
    pub(crate) fn missing(&self, mask: u64) -> u64 {
        mask & pm::PROCESS & !self.valid
    }
}

/// A snapshot's items as one consumer view gets them.
pub(crate) struct Rendered {
    /// The items rendered.
    mask: u64,
    /// The consumer's user and pid namespace (held, so the identities
    /// compared cannot be taken by other namespaces).
    user_ns: ARef<UserNamespace>,
    pid_ns: ARef<PidNamespace>,
    /// Whether the consumer's root matched the sender's (EXE shown).
    exe_visible: bool,
    /// The items, each padded.
    bytes: KVec<u8>,
    /// The unpadded end of the last item in `bytes`.
    end: Option<usize>,
    _live: Live,
}

impl Rendered {
    /// The items, each zero-padded to 8.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The unpadded end of the last item, `None` if there is none.
    pub(crate) fn end(&self) -> Option<usize> {
        self.end
    }

    fn is_for(&self, mask: u64, exe_visible: bool, ns: &UserNamespace, c: &Consumer) -> bool {
        self.mask == mask
            && self.exe_visible == exe_visible
            && *self.user_ns == *ns
            && *self.pid_ns == *c.pid_ns
    }
}

#[derive(Default)]
struct Cached {
    snap: Option<Arc<ProcMeta>>,
    /// A rendering of `snap` (never of another snapshot).
    rendered: Option<Arc<Rendered>>,
}

/// The cache of one sending connection.
#[pin_data]
pub(crate) struct ProcCache {
    #[pin]
    inner: SpinLock<Cached>,
}

impl ProcCache {
    /// An empty cache.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(ProcCache {
            inner <- kernel::new_spinlock!(Cached::default(), "kdbus_meta_cache"),
        })
    }

    /// Lets go of what is cached (at disconnect: the references it holds
    /// go now, not with the last message that names the connection).
    pub(crate) fn clear(&self) {
        let old = core::mem::take(&mut *self.inner.lock());
        drop(old);
    }

    /// The process metadata of a message that has `cur` and needs the
    /// items of `mask`, from the calling (sending) thread: the snapshot the
    /// message has or the cached
    /// one if they hold the items and the items are unchanged; otherwise a
    /// new snapshot with what the message has and the rest collected
    /// afresh, which becomes the cached one. CMDLINE reads the thread's
    /// memory (both ways), like [`ProcMeta::collect`].
    pub(crate) fn collect(&self, cur: Option<&MsgProc>, mask: u64) -> Result<MsgProc> {
        let valid = cur.map_or(0, |c| c.valid);
        let need = mask & pm::PROCESS & !valid;
        let (snap, rendered) = match cur {
            Some(c) => (Some(c.snap.clone()), c.rendered.clone()),
            None => {
                let g = self.inner.lock();
                (g.snap.clone(), g.rendered.clone())
            }
        };
        if let Some(snap) = snap {
            if snap.missing(need) == 0 && snap.unchanged(need)? {
                return Ok(MsgProc {
                    snap,
                    valid: valid | need,
                    rendered,
                });
            }
        }
        // The items the message has are kept (every receiver of a message
        // sees the same values); the others are read now.
        let mut m = match cur {
            Some(c) => c.snap.dup(c.valid)?,
            None => ProcMeta::new(),
        };
        m.collect(need, &Credential::current())?;
        let snap = Arc::new(m, gfp())?;
        let old = core::mem::replace(
            &mut *self.inner.lock(),
            Cached {
                snap: Some(snap.clone()),
                rendered: None,
            },
        );
        // Dropped here, not under the spinlock: the last reference to a
        // snapshot puts paths, which may sleep.
        drop(old);
        Ok(MsgProc {
            snap,
            valid: valid | need,
            rendered: None,
        })
    }

    /// The items of `mask` (those of `p` found true) of message metadata
    /// `p` as user namespace `ns` and consumer `c` see them (see
    /// [`ProcMeta::render`]): the cached rendering when it is of the same
    /// snapshot, items and view, else a new one, kept in the cache if `p`
    /// is the cached snapshot. `None` if `mask` has no process item.
    pub(crate) fn render(
        &self,
        p: &MsgProc,
        mask: u64,
        ns: &UserNamespace,
        c: &Consumer,
    ) -> Result<Option<Arc<Rendered>>> {
        let mask = mask & p.valid;
        if mask == 0 {
            return Ok(None);
        }
        let exe_visible = p.snap.exe_visible(c);
        if let Some(r) = &p.rendered {
            if r.is_for(mask, exe_visible, ns, c) {
                return Ok(Some(r.clone()));
            }
        }
        // Another receiver of this message may have rendered it so since.
        let kept = {
            let g = self.inner.lock();
            match (&g.snap, &g.rendered) {
                (Some(s), Some(r))
                    if Arc::ptr_eq(s, &p.snap) && r.is_for(mask, exe_visible, ns, c) =>
                {
                    Some(r.clone())
                }
                _ => None,
            }
        };
        if kept.is_some() {
            return Ok(kept);
        }
        let mut bytes = KVec::with_capacity(p.snap.size_hint(mask), gfp())?;
        let end = p.snap.render(mask, ns, c, &Values::default(), &mut bytes)?;
        let r = Arc::new(
            Rendered {
                mask,
                user_ns: ARef::from(ns),
                pid_ns: c.pid_ns.clone(),
                exe_visible,
                bytes,
                end,
                _live: Live::new(Kind::Metadata),
            },
            gfp(),
        )?;
        let old = {
            let mut g = self.inner.lock();
            match &g.snap {
                Some(s) if Arc::ptr_eq(s, &p.snap) => g.rendered.replace(r.clone()),
                _ => None,
            }
        };
        drop(old);
        Ok(Some(r))
    }
}
