// SPDX-License-Identifier: GPL-2.0

//! Metadata, the kernel half (spec: metadata.md): process metadata collected
//! from the calling task ([`ProcMeta`]: the bus creator's at BUS_MAKE, a
//! connection's at HELLO, a message's at SEND, item by item when the first
//! receiver wants it), faked metadata given at HELLO ([`Faked`],
//! connection.md 10), and their rendering for one consumer: ids mapped into
//! the consumer's user namespace, pids numbered in its pid namespace, EXE
//! only if the roots match ([`Consumer`]). The selection rules and the
//! encoding are the pure half, `proto/metadata.rs`.
//!
//! Every type here owns the references it holds (credentials, pids, paths)
//! and gives them back on drop.

use crate::glue::cred::{Credential, Kgid, Kuid, UserNamespace, CAP_LAST_CAP};
use crate::glue::file::File;
use crate::glue::gfp;
use crate::glue::kvec::copy;
use crate::glue::pid::{Pid, PidNamespace};
use crate::glue::stats::{Kind, Live};
use crate::glue::task::{Cgroup, Comm, Held, NameStamp, Path, Task};
use crate::proto::cmd::Cmd;
use crate::proto::errno::{Result, EINVAL, ENAMETOOLONG};
use crate::proto::metadata::{self as pm, Sink, Values, UNSET_ID};
use crate::uapi::*;
use kernel::alloc::Allocator;
use kernel::prelude::*;
use kernel::types::ARef;

mod cache;
pub(crate) use cache::{MsgProc, ProcCache, Rendered};

/// At most this many bytes of a task's argument block are attached
/// (CMDLINE): the whole block of any ordinary command line, bounded like a
/// command.
pub(crate) const CMDLINE_MAX: usize = 32 * 1024;

/// The items kept with the credentials they come from.
const CRED_ITEMS: u64 =
    KDBUS_ATTACH_CREDS | KDBUS_ATTACH_AUXGROUPS | KDBUS_ATTACH_CAPS | KDBUS_ATTACH_SECLABEL;

/// Bytes of the stack buffer [`ProcMeta::unchanged`] reads a path or a
/// piece of the argument block into.
const PROBE: usize = 256;

impl<A: Allocator> Sink for Vec<u8, A> {
    fn written(&self) -> usize {
        Vec::len(self)
    }

    // `zeros` is the trait's: from a zeroed block (`extend_with` would
    // write byte by byte).
    fn put(&mut self, b: &[u8]) -> Result {
        Ok(self.extend_from_slice(b, gfp())?)
    }
}

/// What metadata is translated into for one connection (metadata.md 3):
/// besides the user namespace of its connection credentials, the pid
/// namespace and the filesystem root of the task that issued its HELLO.
pub(crate) struct Consumer {
    pub(crate) pid_ns: ARef<PidNamespace>,
    pub(crate) root: Option<Path>,
}

impl Consumer {
    /// The calling task's namespaces.
    pub(crate) fn current() -> Consumer {
        Consumer {
            pid_ns: PidNamespace::current(),
            root: Task::current().fs_root(),
        }
    }
}

/// EXE: where the executable is (held, as the historic kdbus held it), its
/// name as the task saw it, and the task's root then.
struct Exe {
    file: ARef<File>,
    name: KVec<u8>,
    root: Path,
    /// Whether `name` can be trusted without reading it again.
    stamp: Option<NameStamp>,
}

/// Process metadata of a task (metadata.md 1): the items collected so far.
pub(crate) struct ProcMeta {
    /// Items collected (`KDBUS_ATTACH_*`), with or without data.
    have: u64,
    /// CREDS, AUXGROUPS, CAPS: the task's credentials.
    cred: Option<ARef<Credential>>,
    /// PIDS: thread group, thread, parent's thread group.
    pids: [Option<ARef<Pid>>; 3],
    /// PIDS: the real parent then (held: compared by address to tell that
    /// the parent's pid is unchanged).
    parent: Option<Held>,
    tid_comm: Option<Comm>,
    pid_comm: Option<Comm>,
    exe: Option<Exe>,
    cmdline: Option<KVec<u8>>,
    /// CGROUP: the cgroup (held) and its path.
    cgroup: Option<(ARef<Cgroup>, KVec<u8>)>,
    seclabel: Option<KVec<u8>>,
    /// AUDIT: login uid, session id.
    audit: Option<(Kuid, u32)>,
    _live: Live,
}

impl ProcMeta {
    /// Nothing collected yet.
    pub(crate) fn new() -> Self {
        ProcMeta {
            have: 0,
            cred: None,
            pids: [None, None, None],
            parent: None,
            tid_comm: None,
            pid_comm: None,
            exe: None,
            cmdline: None,
            cgroup: None,
            seclabel: None,
            audit: None,
            _live: Live::new(Kind::Metadata),
        }
    }

    /// Everything, from the calling task with credentials `cred` (a bus
    /// creator's or a connection's snapshot). Reads the task's memory.
    pub(crate) fn snapshot(cred: &Credential) -> Result<Self> {
        let mut m = Self::new();
        m.collect(pm::PROCESS, cred)?;
        Ok(m)
    }

    /// The items of `mask` not collected yet.
    pub(crate) fn missing(&self, mask: u64) -> u64 {
        mask & pm::PROCESS & !self.have
    }

    /// Collects the items of `mask` not collected yet from the calling
    /// task, whose credentials are `cred`. CMDLINE reads the task's memory:
    /// ask for it only where user memory may be touched.
    pub(crate) fn collect(&mut self, mask: u64, cred: &Credential) -> Result {
        let need = self.missing(mask);
        if need == 0 {
            return Ok(());
        }
        let task = Task::current();
        let want = |bit: u64| need & bit != 0;
        if need & CRED_ITEMS != 0 && self.cred.is_none() {
            self.cred = Some(ARef::from(cred));
        }
        if want(KDBUS_ATTACH_PIDS) {
            // The parent first: the pids read after it are its or a later
            // parent's (a reparenting in between is seen by the next
            // comparison).
            self.parent = task.parent_held();
            self.pids = [task.tgid(), task.pid(), task.parent_tgid()];
        }
        if want(KDBUS_ATTACH_TID_COMM) {
            self.tid_comm = Some(task.comm());
        }
        if want(KDBUS_ATTACH_PID_COMM) {
            self.pid_comm = Some(task.leader_comm());
        }
        if want(KDBUS_ATTACH_EXE) {
            if let (Some(file), Some(root)) = (task.exe(), task.fs_root()) {
                if let Some((name, stamp)) = task.exe_name(&file, &root)? {
                    self.exe = Some(Exe {
                        file,
                        name,
                        root,
                        stamp,
                    });
                }
            }
        }
        if want(KDBUS_ATTACH_CMDLINE) {
            self.cmdline = task.cmdline(CMDLINE_MAX)?;
        }
        if want(KDBUS_ATTACH_CGROUP) {
            if let Some(cg) = task.dfl_cgroup() {
                if let Some(path) = cg.path()? {
                    self.cgroup = Some((cg, path));
                }
            }
        }
        if want(KDBUS_ATTACH_SECLABEL) {
            self.seclabel = cred.security_context()?;
        }
        if want(KDBUS_ATTACH_AUDIT) {
            self.audit = Some(task.audit());
        }
        self.have |= need;
        Ok(())
    }

    /// Whether the items of `mask` are collected and still what the
    /// calling task gives now: compared item
    /// by item (credentials by identity: they never change), without
    /// allocating; a path longer than the stack buffer counts as changed.
    /// CMDLINE reads the task's memory, like [`ProcMeta::collect`].
    pub(crate) fn unchanged(&self, mask: u64) -> Result<bool> {
        let mask = mask & pm::PROCESS;
        if mask & !self.have != 0 {
            return Ok(false);
        }
        let task = Task::current();
        let want = |bit: u64| mask & bit != 0;
        if mask & CRED_ITEMS != 0 && !self.cred.as_deref().is_some_and(|c| c.is_current()) {
            return Ok(false);
        }
        let ids = task.ids(want(KDBUS_ATTACH_CGROUP));
        if want(KDBUS_ATTACH_PIDS) && !ids.pids_are(self.pids[1].as_deref(), self.parent.as_ref()) {
            return Ok(false);
        }
        let same = |now: &Comm, then: &Option<Comm>| then.as_ref().is_some_and(|t| t.same_as(now));
        if want(KDBUS_ATTACH_TID_COMM) && !same(&ids.comm, &self.tid_comm)
            || want(KDBUS_ATTACH_PID_COMM) && !same(&ids.leader_comm, &self.pid_comm)
        {
            return Ok(false);
        }
        // The same cgroup has the same path (cgroup2 has no rename).
        if want(KDBUS_ATTACH_CGROUP)
            && !self
                .cgroup
                .as_ref()
                .is_some_and(|(cg, _)| ids.cgroup_is(cg))
        {
            return Ok(false);
        }
        let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); PROBE];
        if want(KDBUS_ATTACH_EXE) {
            // The same file seen from the same root, under the same name (a
            // task without one counts as changed: it is collected again).
            let Some(e) = &self.exe else {
                return Ok(false);
            };
            if !task.exe_is(&e.file) || !task.root_is(&e.root) {
                return Ok(false);
            }
            match &e.stamp {
                // Collected again, so stamped anew (once a second at most).
                Some(s) if s.expired() => return Ok(false),
                Some(s) if s.holds_for(&e.file) => {}
                // A rename somewhere, or a name no stamp can vouch for.
                _ => match e.file.d_path_in(&mut buf) {
                    Ok(Some(name)) if name == &e.name[..] => {}
                    Ok(_) | Err(ENAMETOOLONG) => return Ok(false),
                    Err(err) => return Err(err),
                },
            }
        }
        if want(KDBUS_ATTACH_AUDIT) && Some(task.audit()) != self.audit {
            return Ok(false);
        }
        // Last: it reads user memory.
        if want(KDBUS_ATTACH_CMDLINE) && !task.cmdline_is(CMDLINE_MAX, self.cmdline.as_deref()) {
            return Ok(false);
        }
        Ok(true)
    }

    /// A copy of the items of `mask` that are collected (references taken
    /// anew, bytes copied): the start of a snapshot with more items.
    pub(crate) fn dup(&self, mask: u64) -> Result<Self> {
        let mask = mask & self.have;
        let want = |bit: u64| mask & bit != 0;
        let mut m = Self::new();
        if mask & CRED_ITEMS != 0 {
            m.cred = self.cred.clone();
        }
        if want(KDBUS_ATTACH_PIDS) {
            m.pids = self.pids.clone();
            m.parent = self.parent.clone();
        }
        if want(KDBUS_ATTACH_TID_COMM) {
            m.tid_comm = self.tid_comm;
        }
        if want(KDBUS_ATTACH_PID_COMM) {
            m.pid_comm = self.pid_comm;
        }
        if want(KDBUS_ATTACH_EXE) {
            if let Some(e) = &self.exe {
                m.exe = Some(Exe {
                    file: e.file.clone(),
                    name: copy(&e.name)?,
                    root: e.root.clone(),
                    stamp: e.stamp,
                });
            }
        }
        if want(KDBUS_ATTACH_CMDLINE) {
            m.cmdline = self.cmdline.as_deref().map(copy).transpose()?;
        }
        if want(KDBUS_ATTACH_CGROUP) {
            if let Some((cg, path)) = &self.cgroup {
                m.cgroup = Some((cg.clone(), copy(path)?));
            }
        }
        if want(KDBUS_ATTACH_SECLABEL) {
            m.seclabel = self.seclabel.as_deref().map(copy).transpose()?;
        }
        if want(KDBUS_ATTACH_AUDIT) {
            m.audit = self.audit;
        }
        m.have = mask;
        Ok(m)
    }

    /// Whether consumer `c` sees the EXE item: the roots match.
    pub(crate) fn exe_visible(&self, c: &Consumer) -> bool {
        matches!((&self.exe, &c.root), (Some(e), Some(croot)) if e.root == *croot)
    }

    /// About how many bytes [`ProcMeta::render`] writes for `mask` (an
    /// upper bound for the fixed-size items), so the head is allocated
    /// once instead of growing item by item.
    pub(crate) fn size_hint(&self, mask: u64) -> usize {
        let var = |b: Option<&[u8]>| b.map_or(0, |b| 16 + b.len() + 8);
        let groups = self.cred.as_ref().map_or(0, |c| c.groups().len() * 8);
        let fixed = 16 * 14 + 64 + 24 + 40 + 16 * 2 + 8 + 16 + 4 * 36;
        let m = |bit: u64| mask & bit != 0;
        fixed
            + if m(KDBUS_ATTACH_AUXGROUPS) { groups } else { 0 }
            + if m(KDBUS_ATTACH_EXE) {
                var(self.exe.as_ref().map(|e| &e.name[..]))
            } else {
                0
            }
            + if m(KDBUS_ATTACH_CMDLINE) {
                var(self.cmdline.as_deref())
            } else {
                0
            }
            + if m(KDBUS_ATTACH_CGROUP) {
                var(self.cgroup.as_ref().map(|c| &c.1[..]))
            } else {
                0
            }
            + if m(KDBUS_ATTACH_SECLABEL) {
                var(self.seclabel.as_deref())
            } else {
                0
            }
    }

    /// Writes the items of `mask` as `ns` and `c` see them, in the fixed
    /// order, followed by the connection items of `extra`; returns the
    /// unpadded end of the last item (metadata.md 3-4).
    pub(crate) fn render<S: Sink>(
        &self,
        mask: u64,
        ns: &UserNamespace,
        c: &Consumer,
        extra: &Values<'_>,
        out: &mut S,
    ) -> Result<Option<usize>> {
        let mut v = *extra;
        let mut groups = KVec::new();
        if let Some(cred) = &self.cred {
            let [u0, u1, u2, u3] = cred.uids().map(|k| ns.map_uid_or_overflow(k));
            let [g0, g1, g2, g3] = cred.gids().map(|k| ns.map_gid_or_overflow(k));
            v.creds = Some([u0, u1, u2, u3, g0, g1, g2, g3]);
            if mask & KDBUS_ATTACH_AUXGROUPS != 0 {
                let list = cred.groups();
                groups.reserve(list.len(), gfp())?;
                for g in list {
                    groups.push(ns.map_gid_or_overflow(*g), gfp())?;
                }
            }
            let euid = cred.euid();
            let view = pm::caps_view(ns, cred.user_ns(), |n| n.parent(), |n| n.owner() == euid);
            v.caps = Some(pm::caps_payload(view, cred.cap_sets(), CAP_LAST_CAP));
        }
        if self.cred.is_some() {
            v.auxgroups = Some(&groups);
        }
        if self.have & KDBUS_ATTACH_PIDS != 0 {
            v.pids = Some(pids_in(&self.pids, c));
        }
        v.tid_comm = self.tid_comm.as_ref().map(|n| n.as_bytes());
        v.pid_comm = self.pid_comm.as_ref().map(|n| n.as_bytes());
        if self.exe_visible(c) {
            v.exe = self.exe.as_ref().map(|e| &e.name[..]);
        }
        v.cmdline = self.cmdline.as_deref();
        v.cgroup = self.cgroup.as_ref().map(|c| &c.1[..]);
        v.seclabel = self.seclabel.as_deref();
        if let Some((loginuid, session)) = self.audit {
            v.audit = Some([session, ns.map_uid(loginuid).unwrap_or(UNSET_ID)]);
        }
        pm::encode(&v, mask, out)
    }
}

fn pids_in(p: &[Option<ARef<Pid>>; 3], c: &Consumer) -> [u32; 3] {
    p.each_ref()
        .map(|p| p.as_ref().map_or(0, |p| p.nr_in(&c.pid_ns)))
}

/// Faked CREDS/PIDS/SECLABEL given at HELLO by an owner connection
/// (connection.md 10): informational only.
pub(crate) struct Faked {
    /// uid, euid, suid, fsuid, gid, egid, sgid, fsgid as kernel ids;
    /// `None`: not set.
    creds: Option<[Option<u32>; 8]>,
    /// pid, tid, ppid; `None`: not set.
    pids: Option<[Option<ARef<Pid>>; 3]>,
    seclabel: Option<KVec<u8>>,
    _live: Live,
}

impl Faked {
    /// The faked items of HELLO command `c`, ids read in the caller's user
    /// namespace `ns` and pids in its pid namespace (connection.md 3.2 step
    /// 12); `None` if there are none.
    pub(crate) fn from_hello(c: &Cmd<'_>, ns: &UserNamespace) -> Result<Option<Faked>> {
        let (ci, pi, si) = (
            c.item(KDBUS_ITEM_CREDS),
            c.item(KDBUS_ITEM_PIDS),
            c.item(KDBUS_ITEM_SECLABEL),
        );
        if ci.is_none() && pi.is_none() && si.is_none() {
            return Ok(None);
        }
        let creds = match ci {
            Some(i) => {
                let ids = pm::parse_faked_creds(i.payload)?;
                let mut k = [None; 8];
                for (n, (o, id)) in k.iter_mut().zip(ids.iter()).enumerate() {
                    if let Some(id) = id {
                        let raw = match n < 4 {
                            true => ns.make_kuid(*id).map(|k| k.raw()),
                            false => ns.make_kgid(*id).map(|k| k.raw()),
                        };
                        *o = Some(raw.ok_or(EINVAL)?);
                    }
                }
                Some(k)
            }
            None => None,
        };
        let pids = match pi {
            Some(i) => {
                let nrs = pm::parse_faked_pids(i.payload)?;
                let mut p = [None, None, None];
                for (o, nr) in p.iter_mut().zip(nrs.iter()) {
                    if let Some(nr) = nr {
                        *o = Some(Pid::find_in_current_ns(*nr).ok_or(EINVAL)?);
                    }
                }
                Some(p)
            }
            None => None,
        };
        let seclabel = match si {
            Some(i) => {
                let mut v = KVec::new();
                v.extend_from_slice(i.str_bytes(), gfp())?;
                Some(v)
            }
            None => None,
        };
        Ok(Some(Faked {
            creds,
            pids,
            seclabel,
            _live: Live::new(Kind::Metadata),
        }))
    }

    /// The faked uid, if CREDS were faked with one.
    pub(crate) fn uid(&self) -> Option<Kuid> {
        self.creds.and_then(|c| c[0]).map(Kuid::from_raw)
    }

    fn render<S: Sink>(
        &self,
        mask: u64,
        ns: &UserNamespace,
        c: &Consumer,
        extra: &Values<'_>,
        out: &mut S,
    ) -> Result<Option<usize>> {
        let mut v = *extra;
        if let Some(ids) = self.creds {
            let mut w = [UNSET_ID; 8];
            for (n, (o, id)) in w.iter_mut().zip(ids.iter()).enumerate() {
                if let Some(id) = id {
                    *o = match n < 4 {
                        true => ns.map_uid_or_overflow(Kuid::from_raw(*id)),
                        false => ns.map_gid_or_overflow(Kgid::from_raw(*id)),
                    };
                }
            }
            v.creds = Some(w);
        }
        if let Some(p) = &self.pids {
            v.pids = Some(pids_in(p, c));
        }
        v.seclabel = self.seclabel.as_deref();
        pm::encode(&v, mask & (pm::FAKEABLE | pm::CONNECTION), out)
    }
}

/// A connection's metadata snapshot (metadata.md 1): the HELLO task's, or
/// what an owner faked.
pub(crate) enum Snapshot {
    Real(ProcMeta),
    Faked(Faked),
}

impl Snapshot {
    /// The snapshot of a HELLO: faked items if `c` has any, else the calling
    /// task's (`cred`: its credentials).
    pub(crate) fn at_hello(c: &Cmd<'_>, cred: &Credential) -> Result<Snapshot> {
        match Faked::from_hello(c, cred.user_ns())? {
            Some(f) => Ok(Snapshot::Faked(f)),
            None => Ok(Snapshot::Real(ProcMeta::snapshot(cred)?)),
        }
    }

    /// Whether the metadata was faked.
    pub(crate) fn is_faked(&self) -> bool {
        matches!(self, Snapshot::Faked(_))
    }

    /// The faked uid, if any.
    pub(crate) fn faked_uid(&self) -> Option<Kuid> {
        match self {
            Snapshot::Faked(f) => f.uid(),
            Snapshot::Real(_) => None,
        }
    }

    /// See [`ProcMeta::render`].
    pub(crate) fn render<S: Sink>(
        &self,
        mask: u64,
        ns: &UserNamespace,
        c: &Consumer,
        extra: &Values<'_>,
        out: &mut S,
    ) -> Result<Option<usize>> {
        match self {
            Snapshot::Real(m) => m.render(mask, ns, c, extra, out),
            Snapshot::Faked(f) => f.render(mask, ns, c, extra, out),
        }
    }
}
