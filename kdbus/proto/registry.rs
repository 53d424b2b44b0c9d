// SPDX-License-Identifier: GPL-2.0

//! The name registry's per-name state machine (spec: names.md 1, 3-7). Pure.
//!
//! A [`NameState`] is one registered name: its registration id, its owner
//! queue (head = primary owner) and its activator. [`NameState::acquire`],
//! [`NameState::release`] and [`NameState::register_activator`] apply the
//! spec's cases to it and report, as an [`Outcome`], what the caller must
//! do beside: which connection's ownership record appeared or went, the
//! notification to emit, and whether messages move between an activator and
//! an implementer. The queue is any [`OwnerQueue`] (`KVec` in the module,
//! `Vec` in tests); every operation makes its one fallible insertion before
//! changing anything, so a failure changes nothing.

use crate::proto::errno::{Errno, Result, E2BIG, EEXIST};
use crate::uapi::*;

/// `KDBUS_NAME_REPLACE_EXISTING` (request only).
pub const REPLACE_EXISTING: u64 = KDBUS_NAME_REPLACE_EXISTING as u64;
/// `KDBUS_NAME_ALLOW_REPLACEMENT` (stored).
pub const ALLOW_REPLACEMENT: u64 = KDBUS_NAME_ALLOW_REPLACEMENT as u64;
/// `KDBUS_NAME_QUEUE` (stored).
pub const QUEUE: u64 = KDBUS_NAME_QUEUE as u64;
/// `KDBUS_NAME_IN_QUEUE` (state).
pub const IN_QUEUE: u64 = KDBUS_NAME_IN_QUEUE as u64;
/// `KDBUS_NAME_ACTIVATOR` (state).
pub const ACTIVATOR: u64 = KDBUS_NAME_ACTIVATOR as u64;
/// `KDBUS_NAME_PRIMARY` (state).
pub const PRIMARY: u64 = KDBUS_NAME_PRIMARY as u64;
/// `KDBUS_NAME_ACQUIRED` (return only).
pub const ACQUIRED: u64 = KDBUS_NAME_ACQUIRED as u64;
/// The flags a request stores in its record.
pub const STORED: u64 = ALLOW_REPLACEMENT | QUEUE;

/// An ownership record: a connection and its flags (stored + state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The connection's id.
    pub conn: u64,
    /// `KDBUS_NAME_*` stored and state flags.
    pub flags: u64,
}

/// Fallible storage for an owner queue, in order (head first).
pub trait OwnerQueue {
    /// The queue.
    fn owners(&self) -> &[Owner];
    /// The queue, mutable.
    fn owners_mut(&mut self) -> &mut [Owner];
    /// Inserts `o` at `idx`, shifting later entries; fails only on
    /// allocation.
    fn try_insert(&mut self, idx: usize, o: Owner) -> Result;
    /// Removes the entry at `idx` (which exists).
    fn remove_at(&mut self, idx: usize);
}

/// A name notification to emit (names.md 7), with the flags of each side
/// at the moment of the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `NAME_ADD`: the name got its first owner.
    Add {
        /// The new owner.
        new: Owner,
    },
    /// `NAME_CHANGE`: ownership moved.
    Change {
        /// The old owner (with `PRIMARY`).
        old: Owner,
        /// The new owner.
        new: Owner,
    },
    /// `NAME_REMOVE`: the last owner went.
    Remove {
        /// The old owner.
        old: Owner,
    },
}

/// What an operation did beside changing the name's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `return_flags` of NAME_ACQUIRE.
    pub return_flags: u64,
    /// The notification to queue.
    pub event: Option<Event>,
    /// The calling connection's record was created (add the name to its
    /// records).
    pub created: bool,
    /// This connection's record was deleted (remove the name from its
    /// records): the caller's, or a replaced primary without `QUEUE`.
    pub deleted: Option<u64>,
    /// Messages addressed to this name move from the first connection to
    /// the second (activator hand-over, names.md 6.3).
    pub moved: Option<(u64, u64)>,
}

/// One registered name.
#[derive(Debug)]
pub struct NameState<Q> {
    /// The registration id (`name_id`), from the bus's counter.
    pub id: u64,
    /// Owner queue: the head is the primary owner.
    pub queue: Q,
    /// The name's activator, if any (not part of the queue).
    pub activator: Option<Owner>,
}

impl<Q: OwnerQueue> NameState<Q> {
    /// A new, empty entry with registration id `id`.
    pub fn new(id: u64, queue: Q) -> Self {
        NameState {
            id,
            queue,
            activator: None,
        }
    }

    /// No owner, no queued owner, no activator: the entry goes.
    pub fn is_empty(&self) -> bool {
        self.queue.owners().is_empty() && self.activator.is_none()
    }

    /// The primary owner (queue head).
    pub fn primary(&self) -> Option<Owner> {
        self.queue.owners().first().copied()
    }

    /// The current owner: the primary, or the activator if nobody else
    /// owns the name.
    pub fn owner(&self) -> Option<Owner> {
        self.primary().or(self.activator)
    }

    /// The record of connection `conn`, if it has one.
    pub fn record(&self, conn: u64) -> Option<Owner> {
        match self.activator {
            Some(a) if a.conn == conn => Some(a),
            _ => self.queue.owners().iter().find(|o| o.conn == conn).copied(),
        }
    }

    fn pos(&self, conn: u64) -> Option<usize> {
        self.queue.owners().iter().position(|o| o.conn == conn)
    }

    fn set_flags(&mut self, idx: usize, flags: u64) -> Owner {
        match self.queue.owners_mut().get_mut(idx) {
            Some(o) => {
                o.flags = flags;
                *o
            }
            None => Owner { conn: 0, flags },
        }
    }

    /// NAME_ACQUIRE steps 4-6 by ordinary connection `conn` with request
    /// flags `req`; `can_create` tells whether the connection may get one
    /// more record (`E2BIG` otherwise, when it has none for this name).
    /// Errors carry the `return_flags` to report.
    pub fn acquire(
        &mut self,
        conn: u64,
        req: u64,
        can_create: bool,
    ) -> core::result::Result<Outcome, (Errno, u64)> {
        let pos = self.pos(conn);
        if pos.is_none() && !can_create {
            return Err((E2BIG, 0));
        }
        let stored = req & STORED;
        let head = self.primary();
        let mut out = Outcome::default();
        // a: nobody owns the name (an activator may hold it).
        let Some(p) = head else {
            self.queue
                .try_insert(
                    0,
                    Owner {
                        conn,
                        flags: stored | PRIMARY,
                    },
                )
                .map_err(|e| (e, 0))?;
            let new = Owner {
                conn,
                flags: stored | PRIMARY,
            };
            out.created = true;
            out.return_flags = stored | PRIMARY | ACQUIRED;
            out.event = Some(match self.activator.as_mut() {
                Some(a) => {
                    let old = *a;
                    a.flags = (a.flags & !PRIMARY) | IN_QUEUE;
                    out.moved = Some((old.conn, conn));
                    Event::Change { old, new }
                }
                None => Event::Add { new },
            });
            return Ok(out);
        };
        // b: already the primary owner.
        if pos == Some(0) {
            self.set_flags(0, stored | PRIMARY);
            out.return_flags = stored | PRIMARY;
            return Ok(out);
        }
        // c: replacement.
        if p.flags & ALLOW_REPLACEMENT != 0 && req & REPLACE_EXISTING != 0 {
            match pos {
                Some(i) => {
                    // Jump the queue: no allocation.
                    if let Some(part) = self.queue.owners_mut().get_mut(..=i) {
                        part.rotate_right(1);
                    }
                }
                None => {
                    self.queue
                        .try_insert(0, Owner { conn, flags: 0 })
                        .map_err(|e| (e, stored))?;
                    out.created = true;
                }
            }
            let new = self.set_flags(0, stored | PRIMARY);
            out.event = Some(Event::Change { old: p, new });
            if p.flags & QUEUE != 0 {
                self.set_flags(1, (p.flags & !PRIMARY) | IN_QUEUE);
            } else {
                self.queue.remove_at(1);
                out.deleted = Some(p.conn);
            }
            out.return_flags = stored | PRIMARY | ACQUIRED;
            return Ok(out);
        }
        // d: wait in the queue.
        if req & QUEUE != 0 {
            match pos {
                Some(i) => {
                    self.set_flags(i, stored | IN_QUEUE);
                    out.return_flags = stored | IN_QUEUE;
                }
                None => {
                    let at = self.queue.owners().len();
                    self.queue
                        .try_insert(
                            at,
                            Owner {
                                conn,
                                flags: stored | IN_QUEUE,
                            },
                        )
                        .map_err(|e| (e, stored))?;
                    out.created = true;
                    out.return_flags = stored | IN_QUEUE | ACQUIRED;
                }
            }
            return Ok(out);
        }
        // e: stop waiting.
        if let Some(i) = pos {
            self.queue.remove_at(i);
            out.deleted = Some(conn);
            out.return_flags = stored;
            return Ok(out);
        }
        // f
        Err((EEXIST, stored))
    }

    /// Releases the record of `conn` (names.md 5): explicit release or
    /// disconnect. `None` if it has none (`EADDRINUSE` for NAME_RELEASE).
    pub fn release(&mut self, conn: u64) -> Option<Outcome> {
        let mut out = Outcome {
            deleted: Some(conn),
            ..Outcome::default()
        };
        if let Some(a) = self.activator.filter(|a| a.conn == conn) {
            self.activator = None;
            if self.queue.owners().is_empty() {
                out.event = Some(Event::Remove { old: a });
            }
            return Some(out);
        }
        let i = self.pos(conn)?;
        let r = self.queue.owners()[i];
        self.queue.remove_at(i);
        if i != 0 {
            return Some(out);
        }
        let next = if self.queue.owners().is_empty() {
            match self.activator.as_mut() {
                Some(a) => {
                    a.flags = (a.flags & !IN_QUEUE) | PRIMARY;
                    out.moved = Some((conn, a.conn));
                    Some(*a)
                }
                None => None,
            }
        } else {
            let flags = (self.queue.owners()[0].flags & !IN_QUEUE) | PRIMARY;
            Some(self.set_flags(0, flags))
        };
        out.event = Some(match next {
            Some(new) => Event::Change { old: r, new },
            None => Event::Remove { old: r },
        });
        Some(out)
    }

    /// Registers activator `conn` for the name (names.md 6.1 steps 2-4);
    /// `EEXIST` if it has one.
    pub fn register_activator(&mut self, conn: u64) -> Result<Outcome> {
        if self.activator.is_some() {
            return Err(EEXIST);
        }
        let mut out = Outcome {
            created: true,
            ..Outcome::default()
        };
        let a = if self.queue.owners().is_empty() {
            let a = Owner {
                conn,
                flags: ACTIVATOR | PRIMARY,
            };
            out.event = Some(Event::Add { new: a });
            a
        } else {
            Owner {
                conn,
                flags: ACTIVATOR | IN_QUEUE,
            }
        };
        self.activator = Some(a);
        Ok(out)
    }
}
