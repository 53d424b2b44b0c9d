//! The name registry (proto/registry.rs) against a simple model.
//!
//! The system under test is the pure per-name state machine wrapped the
//! way the module wraps it (names by string, each connection's records in
//! creation order, a per-connection record limit, entries deleted when
//! empty). The model is written from the tables of names.md 3-6 on plain
//! vectors, and its notifications are derived independently: from the
//! change of each name's current owner across an operation.

use std::collections::BTreeMap;

use kdbus_proto::errno::{Errno, E2BIG, EADDRINUSE, EEXIST, ESRCH};
use kdbus_proto::registry::*;
use proptest::prelude::*;

#[derive(Debug, Default)]
struct Q(Vec<Owner>);

impl OwnerQueue for Q {
    fn owners(&self) -> &[Owner] {
        &self.0
    }
    fn owners_mut(&mut self) -> &mut [Owner] {
        &mut self.0
    }
    fn try_insert(&mut self, idx: usize, o: Owner) -> kdbus_proto::errno::Result {
        self.0.insert(idx, o);
        Ok(())
    }
    fn remove_at(&mut self, idx: usize) {
        self.0.remove(idx);
    }
}

/// A notification as (kind, name, old, new); kind 0 add, 1 change, 2 remove.
type Note = (u8, String, Option<Owner>, Option<Owner>);

/// The registry as the module builds it from `NameState`.
#[derive(Default)]
struct Sut {
    names: BTreeMap<String, NameState<Q>>,
    records: BTreeMap<u64, Vec<String>>,
    next_id: u64,
    max: usize,
}

fn note(name: &str, e: Event) -> Note {
    match e {
        Event::Add { new } => (0, name.into(), None, Some(new)),
        Event::Change { old, new } => (1, name.into(), Some(old), Some(new)),
        Event::Remove { old } => (2, name.into(), Some(old), None),
    }
}

impl Sut {
    fn apply(&mut self, name: &str, out: &Outcome, caller: u64, notes: &mut Vec<Note>) {
        if out.created {
            self.records.entry(caller).or_default().push(name.into());
        }
        if let Some(c) = out.deleted {
            if let Some(v) = self.records.get_mut(&c) {
                v.retain(|n| n != name);
            }
        }
        if let Some(e) = out.event {
            notes.push(note(name, e));
        }
        if self.names.get(name).is_some_and(|s| s.is_empty()) {
            self.names.remove(name);
        }
    }

    fn entry(&mut self, name: &str) -> &mut NameState<Q> {
        if !self.names.contains_key(name) {
            self.next_id += 1;
            self.names
                .insert(name.into(), NameState::new(self.next_id, Q::default()));
        }
        self.names.get_mut(name).unwrap()
    }

    fn acquire(
        &mut self,
        conn: u64,
        name: &str,
        req: u64,
        notes: &mut Vec<Note>,
    ) -> Result<u64, (Errno, u64)> {
        let can = self.records.get(&conn).map_or(0, |v| v.len()) < self.max;
        let r = self.entry(name).acquire(conn, req, can);
        match r {
            Ok(out) => {
                self.apply(name, &out, conn, notes);
                Ok(out.return_flags)
            }
            Err(e) => {
                if self.names.get(name).is_some_and(|s| s.is_empty()) {
                    self.names.remove(name);
                }
                Err(e)
            }
        }
    }

    fn release(&mut self, conn: u64, name: &str, notes: &mut Vec<Note>) -> Result<(), Errno> {
        let s = self.names.get_mut(name).ok_or(ESRCH)?;
        let out = s.release(conn).ok_or(EADDRINUSE)?;
        self.apply(name, &out, conn, notes);
        Ok(())
    }

    fn activator(&mut self, conn: u64, name: &str, notes: &mut Vec<Note>) -> Result<(), Errno> {
        let r = self.entry(name).register_activator(conn);
        match r {
            Ok(out) => {
                self.apply(name, &out, conn, notes);
                Ok(())
            }
            Err(e) => {
                if self.names.get(name).is_some_and(|s| s.is_empty()) {
                    self.names.remove(name);
                }
                Err(e)
            }
        }
    }

    fn disconnect(&mut self, conn: u64, notes: &mut Vec<Note>) {
        for name in self.records.get(&conn).cloned().unwrap_or_default() {
            let _ = self.release(conn, &name, notes);
        }
        self.records.remove(&conn);
    }

    fn view(&self) -> BTreeMap<String, (Vec<Owner>, Option<Owner>)> {
        self.names
            .iter()
            .map(|(k, v)| (k.clone(), (v.queue.0.clone(), v.activator)))
            .collect()
    }
}

/// The model: names.md's tables on plain vectors.
#[derive(Default, Clone)]
struct Model {
    names: BTreeMap<String, (Vec<Owner>, Option<Owner>)>,
    order: BTreeMap<u64, Vec<String>>,
    max: usize,
}

impl Model {
    fn owner(&self, name: &str) -> Option<Owner> {
        let (q, a) = self.names.get(name)?;
        q.first().copied().or(*a)
    }

    fn forget(&mut self, conn: u64, name: &str) {
        if let Some(v) = self.order.get_mut(&conn) {
            v.retain(|n| n != name);
        }
    }

    fn tidy(&mut self, name: &str) {
        if self
            .names
            .get(name)
            .is_some_and(|(q, a)| q.is_empty() && a.is_none())
        {
            self.names.remove(name);
        }
    }

    fn acquire(&mut self, conn: u64, name: &str, req: u64) -> Result<u64, (Errno, u64)> {
        let stored = req & (ALLOW_REPLACEMENT | QUEUE);
        let has = self
            .names
            .get(name)
            .is_some_and(|(q, _)| q.iter().any(|o| o.conn == conn));
        if !has && self.order.get(&conn).map_or(0, |v| v.len()) >= self.max {
            return Err((E2BIG, 0));
        }
        let (q, a) = self.names.entry(name.into()).or_default();
        let me = Owner { conn, flags: 0 };
        let result;
        if q.is_empty() {
            q.push(Owner {
                flags: stored | PRIMARY,
                ..me
            });
            if let Some(a) = a {
                a.flags = ACTIVATOR | IN_QUEUE;
            }
            self.order.entry(conn).or_default().push(name.into());
            result = Ok(stored | PRIMARY | ACQUIRED);
        } else if q[0].conn == conn {
            q[0].flags = stored | PRIMARY;
            result = Ok(stored | PRIMARY);
        } else if q[0].flags & ALLOW_REPLACEMENT != 0 && req & REPLACE_EXISTING != 0 {
            let p = q.remove(0);
            q.retain(|o| o.conn != conn);
            q.insert(
                0,
                Owner {
                    flags: stored | PRIMARY,
                    ..me
                },
            );
            if p.flags & QUEUE != 0 {
                q.insert(
                    1,
                    Owner {
                        flags: (p.flags & !PRIMARY) | IN_QUEUE,
                        ..p
                    },
                );
            } else if let Some(v) = self.order.get_mut(&p.conn) {
                v.retain(|n| n != name);
            }
            if !has {
                self.order.entry(conn).or_default().push(name.into());
            }
            result = Ok(stored | PRIMARY | ACQUIRED);
        } else if req & QUEUE != 0 {
            if let Some(o) = q.iter_mut().find(|o| o.conn == conn) {
                o.flags = stored | IN_QUEUE;
                result = Ok(stored | IN_QUEUE);
            } else {
                q.push(Owner {
                    flags: stored | IN_QUEUE,
                    ..me
                });
                self.order.entry(conn).or_default().push(name.into());
                result = Ok(stored | IN_QUEUE | ACQUIRED);
            }
        } else if has {
            q.retain(|o| o.conn != conn);
            self.forget(conn, name);
            result = Ok(stored);
        } else {
            result = Err((EEXIST, stored));
        }
        self.tidy(name);
        result
    }

    fn release(&mut self, conn: u64, name: &str) -> Result<(), Errno> {
        let (q, a) = self.names.get_mut(name).ok_or(ESRCH)?;
        if a.is_some_and(|a| a.conn == conn) {
            *a = None;
        } else if let Some(i) = q.iter().position(|o| o.conn == conn) {
            q.remove(i);
            if i == 0 {
                if let Some(h) = q.first_mut() {
                    h.flags = (h.flags & !IN_QUEUE) | PRIMARY;
                } else if let Some(a) = a {
                    a.flags = ACTIVATOR | PRIMARY;
                }
            }
        } else {
            return Err(EADDRINUSE);
        }
        self.forget(conn, name);
        self.tidy(name);
        Ok(())
    }

    fn activator(&mut self, conn: u64, name: &str) -> Result<(), Errno> {
        let (q, a) = self.names.entry(name.into()).or_default();
        if a.is_some() {
            self.tidy(name);
            return Err(EEXIST);
        }
        let state = if q.is_empty() { PRIMARY } else { IN_QUEUE };
        *a = Some(Owner {
            conn,
            flags: ACTIVATOR | state,
        });
        self.order.entry(conn).or_default().push(name.into());
        Ok(())
    }

    fn disconnect(&mut self, conn: u64) {
        for name in self.order.get(&conn).cloned().unwrap_or_default() {
            let _ = self.release(conn, &name);
        }
        self.order.remove(&conn);
    }
}

/// The notifications an operation must produce, from the owners before and
/// after it (names.md 7): the current owner of a name changed.
fn derived(before: &Model, after: &Model, names: &[String]) -> Vec<Note> {
    let mut out = Vec::new();
    for n in names {
        let (b, a) = (before.owner(n), after.owner(n));
        match (b, a) {
            (None, Some(new)) => out.push((0, n.clone(), None, Some(new))),
            (Some(old), None) => out.push((2, n.clone(), Some(old), None)),
            (Some(old), Some(new)) if old.conn != new.conn => {
                out.push((1, n.clone(), Some(old), Some(new)))
            }
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    Acquire(u64, usize, u64),
    Release(u64, usize),
    Disconnect(u64),
    Activator(u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..5, 0usize..3, 0u64..8).prop_map(|(c, n, f)| Op::Acquire(c, n, f)),
        3 => (1u64..5, 0usize..4).prop_map(|(c, n)| Op::Release(c, n)),
        1 => (1u64..7).prop_map(Op::Disconnect),
        1 => (5u64..7, 0usize..3).prop_map(|(c, n)| Op::Activator(c, n)),
    ]
}

const NAMES: [&str; 4] = ["a.b", "a.c", "org.x", "no.such"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn registry_matches_model(max in 1usize..4, ops in proptest::collection::vec(op(), 1..60)) {
        let mut sut = Sut { max, ..Sut::default() };
        let mut model = Model { max, ..Model::default() };
        // Activators (connections 5, 6) register once, like HELLO.
        let mut registered = std::collections::BTreeSet::new();
        for o in ops {
            let before = model.clone();
            let mut notes = Vec::new();
            let touched: Vec<String>;
            match o {
                Op::Acquire(c, n, f) => {
                    let name = NAMES[n % 3];
                    let got = sut.acquire(c, name, f, &mut notes);
                    let want = model.acquire(c, name, f);
                    prop_assert_eq!(got, want, "acquire {} {} {:#x}", c, name, f);
                    touched = vec![name.into()];
                }
                Op::Release(c, n) => {
                    let name = NAMES[n];
                    let got = sut.release(c, name, &mut notes);
                    let want = model.release(c, name);
                    prop_assert_eq!(got, want, "release {} {}", c, name);
                    touched = vec![name.into()];
                }
                Op::Disconnect(c) => {
                    touched = model.order.get(&c).cloned().unwrap_or_default();
                    sut.disconnect(c, &mut notes);
                    model.disconnect(c);
                    registered.remove(&c);
                }
                Op::Activator(c, n) => {
                    if !registered.insert(c) {
                        continue;
                    }
                    let name = NAMES[n];
                    let got = sut.activator(c, name, &mut notes);
                    let want = model.activator(c, name);
                    prop_assert_eq!(got, want, "activator {} {}", c, name);
                    if got.is_err() {
                        registered.remove(&c);
                    }
                    touched = vec![name.into()];
                }
            }
            prop_assert_eq!(sut.view(), model.names.clone());
            for (c, v) in &model.order {
                prop_assert_eq!(sut.records.get(c).cloned().unwrap_or_default(), v.clone(), "records of {}", c);
            }
            prop_assert_eq!(notes, derived(&before, &model, &touched));
        }
    }
}

#[test]
fn replacement_and_queue_handover() {
    let mut s = Sut {
        max: 256,
        ..Sut::default()
    };
    let mut n = Vec::new();
    assert_eq!(
        s.acquire(1, "a.b", ALLOW_REPLACEMENT | QUEUE, &mut n),
        Ok(ALLOW_REPLACEMENT | QUEUE | PRIMARY | ACQUIRED)
    );
    assert_eq!(
        s.acquire(2, "a.b", QUEUE, &mut n),
        Ok(QUEUE | IN_QUEUE | ACQUIRED)
    );
    assert_eq!(
        s.acquire(3, "a.b", REPLACE_EXISTING, &mut n),
        Ok(PRIMARY | ACQUIRED)
    );
    // 1 kept QUEUE: second in line, before 2.
    let q: Vec<u64> = s.names["a.b"].queue.0.iter().map(|o| o.conn).collect();
    assert_eq!(q, vec![3, 1, 2]);
    assert_eq!(s.acquire(4, "a.b", 0, &mut n), Err((EEXIST, 0)));
    s.release(3, "a.b", &mut n).unwrap();
    assert_eq!(s.names["a.b"].primary().unwrap().conn, 1);
    assert_eq!(n.len(), 3); // ADD(1), CHANGE(1->3), CHANGE(3->1)
}
