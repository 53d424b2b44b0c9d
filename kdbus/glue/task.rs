// SPDX-License-Identifier: GPL-2.0

//! The calling task (`kernel::task::Task` in newer kernels) as far as
//! metadata needs it: its pids, names, executable, argument block, cgroup,
//! audit ids and filesystem root (spec: metadata.md 1, 4). Only the calling
//! task is ever looked at, so no task reference is held: a [`Task`] is a
//! token for "current", not `Send`.

use super::bindings;
use super::cred::Kuid;
use super::file::File;
use super::gfp;
use super::kvec::copy;
use super::pid::Pid;
use super::time;
use crate::proto::errno::{Result, ENOMEM};
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::{ARef, AlwaysRefCounted, Opaque};
use kernel::uaccess::{UserSlice, UserSliceReader};

const PAGE: usize = kernel::page::PAGE_SIZE;

/// The calling task (a raw pointer: not `Send`).
pub(crate) struct Task {
    raw: *mut bindings::task_struct,
}

/// A task's `comm`: at most 15 bytes.
#[derive(Clone, Copy)]
pub(crate) struct Comm {
    buf: [u8; 16],
}

impl Comm {
    /// The name, without NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let n = self.buf.iter().position(|&b| b == 0).unwrap_or(15);
        &self.buf[..n.min(15)]
    }

    /// Whether both are the same name (the same bytes up to the NUL; equal
    /// arrays, as the kernel's NUL-padded copies are, compare at once).
    pub(crate) fn same_as(&self, other: &Comm) -> bool {
        self.buf == other.buf || self.as_bytes() == other.as_bytes()
    }
}

// `comm` is read as two aligned words.
const _: () = assert!(core::mem::offset_of!(bindings::task_struct, comm) % 8 == 0);

/// The `comm` of task `t`, read without its task lock in two volatile
/// words (as the kernel's own unlocked `comm` readers, READ_ONCE-like).
///
/// # Safety
///
/// `t` is a live task.
unsafe fn comm_unlocked(t: *const bindings::task_struct) -> [u8; 16] {
    // SAFETY: `comm` is 16 bytes at an 8-aligned offset (asserted above) of
    // a live task (contract).
    let w: [u64; 2] = unsafe {
        let p = (&raw const (*t).comm).cast::<u64>();
        [
            core::ptr::read_volatile(p),
            core::ptr::read_volatile(p.add(1)),
        ]
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&w[0].to_ne_bytes());
    b[8..].copy_from_slice(&w[1].to_ne_bytes());
    b
}

/// A counted task: what a snapshot holds of the sender's parent so that it
/// can be compared by address (no other task can have it while it is
/// held).
pub(crate) type Held = ARef<kernel::task::Task>;

fn held_ptr(t: &kernel::task::Task) -> *mut bindings::task_struct {
    // `kernel::task::Task` wraps a `task_struct` transparently.
    core::ptr::from_ref(t).cast_mut().cast()
}

/// The calling task's identities as [`Task::ids`] read them: compared,
/// never dereferenced (a name read while another thread changes it may be
/// a mix of both, which only compares as different).
pub(crate) struct Ids {
    /// The thread pid and the real parent.
    thread_pid: *mut bindings::pid,
    parent: *mut bindings::task_struct,
    /// The default cgroup, null if not read.
    cgroup: *mut bindings::cgroup,
    /// The thread's `comm`.
    pub(crate) comm: Comm,
    /// The group leader's `comm`.
    pub(crate) leader_comm: Comm,
}

impl Ids {
    /// Whether the thread pid is `tid` and the real parent `parent` (as
    /// [`Task::pid`] and [`Task::parent_held`] gave them, both held): then
    /// the thread group's pid and the parent's are those of then too. A
    /// pid names one thread for its life and only moves inside its thread
    /// group (to a thread that execs, taking over the leader's pid), and a
    /// held parent keeps its address and its thread group.
    pub(crate) fn pids_are(&self, tid: Option<&Pid>, parent: Option<&Held>) -> bool {
        self.thread_pid == tid.map_or(core::ptr::null_mut(), |p| p.as_ptr())
            && self.parent == parent.map_or(core::ptr::null_mut(), |p| held_ptr(p))
    }

    /// Whether the default cgroup is `cg` (held, so no other cgroup has its
    /// address).
    pub(crate) fn cgroup_is(&self, cg: &Cgroup) -> bool {
        self.cgroup == cg.0.get()
    }
}

/// A counted filesystem location (`struct path`: mount and dentry).
pub(crate) struct Path(bindings::path);

// SAFETY: the references are counted atomically; the path is only compared.
unsafe impl Send for Path {}
// SAFETY: as above.
unsafe impl Sync for Path {}

impl PartialEq for Path {
    fn eq(&self, other: &Path) -> bool {
        self.0.mnt == other.0.mnt && self.0.dentry == other.0.dentry
    }
}

impl Clone for Path {
    fn clone(&self) -> Path {
        // SAFETY: we own references to both parts; path_get takes one more
        // of each, which the clone owns.
        unsafe { bindings::path_get(&self.0) };
        Path(self.0)
    }
}

impl Drop for Path {
    fn drop(&mut self) {
        // SAFETY: we own one reference to both parts (get_fs_root, path_get).
        unsafe { bindings::path_put(&self.0) };
    }
}

/// Evidence that an executable's name, as [`Task::exe_name`] gave it, can
/// change only by a rename or an unlink: the file lies inside the task's
/// root on the root's own mount, so `d_path` walks dentries only, never a
/// mount (whose moves `mount_lock` would order, which modules cannot
/// read). Holds the rename sequence the name was read under, when the
/// stamp expires and the file's dentry.
#[derive(Clone, Copy)]
pub(crate) struct NameStamp {
    seq: u32,
    /// The jiffies when the stamp expires.
    expires: u64,
    /// The file's dentry (kept here so that checking the stamp does not
    /// read the file).
    dentry: *mut bindings::dentry,
}

// SAFETY: the dentry pointer is only dereferenced in `holds_for`, whose
// caller holds the file (and so the dentry) the stamp was taken for.
unsafe impl Send for NameStamp {}
// SAFETY: as above.
unsafe impl Sync for NameStamp {}

/// How long a [`NameStamp`] vouches for a name: far less than 2^31 renames
/// take on any machine, so the rename sequence cannot have come round to
/// the same value.
const STAMP_LIFE_NS: u64 = 1_000_000_000;

impl NameStamp {
    /// Whether the stamp is too old to vouch for anything: the name must
    /// be read (and stamped) anew.
    pub(crate) fn expired(&self) -> bool {
        // 64-bit jiffies do not wrap.
        time::jiffies() >= self.expires
    }

    /// Whether the name [`Task::exe_name`] gave with this (unexpired) stamp
    /// for `exe` is still its name from the same root, without reading it
    /// again: no rename anywhere since, and the file not unlinked. The
    /// caller checks that `exe` and the root are still the task's
    /// ([`Task::exe_is`], [`Task::root_is`]).
    pub(crate) fn holds_for(&self, exe: &File) -> bool {
        debug_assert!(core::ptr::eq(exe.f_path().dentry, self.dentry));
        // SAFETY: `exe`, which the stamp was taken for, holds its dentry;
        // d_unlinked only reads its hash state and parent. Reading the
        // rename sequence has no precondition.
        unsafe {
            bindings::kdbus_rename_seq_begin() == self.seq
                && !bindings::kdbus_d_unlinked(self.dentry)
        }
    }
}

/// A cgroup of the default (cgroup2) hierarchy. Its path never changes:
/// cgroup2 directories cannot be renamed or moved.
///
/// # Invariants
///
/// The wrapped cgroup is live: counted by `cgroup_get`/`cgroup_put`.
#[repr(transparent)]
pub(crate) struct Cgroup(Opaque<bindings::cgroup>);

// SAFETY: cgroups are refcounted atomically; they are only compared and
// their paths read.
unsafe impl Send for Cgroup {}
// SAFETY: as above.
unsafe impl Sync for Cgroup {}

// SAFETY: `cgroup_get`/`cgroup_put` keep the object alive while the count is
// non-zero.
unsafe impl AlwaysRefCounted for Cgroup {
    fn inc_ref(&self) {
        // SAFETY: `self` is live (invariant).
        unsafe { bindings::kdbus_cgroup_get(self.0.get()) };
    }

    // SAFETY: an `unsafe fn` of the trait: callers pass a reference they
    // own and no longer use (`AlwaysRefCounted::dec_ref`'s contract).
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: the caller gives up one reference it owns.
        unsafe { bindings::kdbus_cgroup_put(obj.cast().as_ptr()) };
    }
}

impl Cgroup {
    /// The cgroup's path from the hierarchy's root, as `/proc/self/cgroup`
    /// shows it in the initial cgroup namespace.
    pub(crate) fn path(&self) -> Result<Option<KVec<u8>>> {
        // Not zeroed: cgroup_path writes the string whose length it
        // returns, and only that is read.
        let mut buf = KVec::<u8>::with_capacity(PAGE, gfp())?;
        let base = buf.as_mut_ptr();
        // SAFETY: the cgroup (and so its kernfs node) is live (invariant);
        // cgroup_path does not sleep and writes at most `PAGE` bytes,
        // NUL-terminated.
        let n = unsafe { bindings::kdbus_cgroup_path(self.0.get(), base.cast(), PAGE) };
        let Ok(n) = usize::try_from(n) else {
            return Ok(None);
        };
        if n >= PAGE {
            return Ok(None);
        }
        // SAFETY: cgroup_path wrote `n` bytes (and a NUL) at the start of
        // the buffer's capacity.
        let path = unsafe { core::slice::from_raw_parts(base, n) };
        let len = path.iter().position(|&b| b == 0).unwrap_or(n);
        Ok(Some(copy(path.get(..len).unwrap_or(&[]))?))
    }
}

impl Task {
    /// The calling task.
    pub(crate) fn current() -> Task {
        Task {
            // SAFETY: `current` is always valid in process context, and a
            // `Task` does not leave the calling thread.
            raw: unsafe { bindings::kdbus_current() },
        }
    }

    fn raw(&self) -> *mut bindings::task_struct {
        self.raw
    }

    fn pid_of(&self, ty: bindings::pid_type) -> Option<ARef<Pid>> {
        // SAFETY: the task is live; get_task_pid returns a new reference or
        // null.
        unsafe { Pid::from_owned(bindings::get_task_pid(self.raw(), ty)) }
    }

    /// The thread's pid (its tid).
    pub(crate) fn pid(&self) -> Option<ARef<Pid>> {
        self.pid_of(bindings::pid_type_PIDTYPE_PID)
    }

    /// The thread group's pid.
    pub(crate) fn tgid(&self) -> Option<ARef<Pid>> {
        self.pid_of(bindings::pid_type_PIDTYPE_TGID)
    }

    /// The thread group's pid of the real parent.
    pub(crate) fn parent_tgid(&self) -> Option<ARef<Pid>> {
        // SAFETY: under RCU `real_parent` points to a task that is not freed
        // before the read-side section ends; get_task_pid takes a
        // reference of our own.
        unsafe {
            bindings::kdbus_rcu_read_lock();
            let parent = (*self.raw()).real_parent;
            let p = match parent.is_null() {
                true => core::ptr::null_mut(),
                false => bindings::get_task_pid(parent, bindings::pid_type_PIDTYPE_TGID),
            };
            bindings::kdbus_rcu_read_unlock();
            Pid::from_owned(p)
        }
    }

    /// The thread's `comm`.
    pub(crate) fn comm(&self) -> Comm {
        let mut c = Comm { buf: [0; 16] };
        // SAFETY: the buffer holds 16 bytes; __get_task_comm copies under the
        // task lock and NUL-terminates.
        unsafe { bindings::__get_task_comm(c.buf.as_mut_ptr().cast(), 16, self.raw()) };
        c
    }

    /// The `comm` of the thread group leader.
    pub(crate) fn leader_comm(&self) -> Comm {
        let mut c = Comm { buf: [0; 16] };
        // SAFETY: under RCU the leader is not freed; __get_task_comm takes
        // its task lock (a spinlock) and NUL-terminates into 16 bytes.
        unsafe {
            bindings::kdbus_rcu_read_lock();
            let leader = (*self.raw()).group_leader;
            if !leader.is_null() {
                bindings::__get_task_comm(c.buf.as_mut_ptr().cast(), 16, leader);
            }
            bindings::kdbus_rcu_read_unlock();
        }
        c
    }

    /// The identities of the task's thread pid, its real parent and its
    /// default cgroup (the latter only `with_cgroup`), and its thread's and
    /// group leader's `comm`, read without references or task locks: to
    /// compare with what a snapshot holds ([`Ids`]).
    pub(crate) fn ids(&self, with_cgroup: bool) -> Ids {
        // SAFETY: the calling task's fields are read while it runs (its
        // `comm` by a volatile read, as the kernel's own unlocked `comm`
        // readers do); under RCU its group leader and its css_set are not
        // freed. Pointers are only compared.
        unsafe {
            let t = self.raw();
            let (thread_pid, parent) = ((*t).thread_pid, (*t).real_parent);
            let comm = comm_unlocked(t);
            bindings::kdbus_rcu_read_lock();
            let leader = (*t).group_leader;
            let leader_comm = match leader.is_null() {
                true => [0; 16],
                false => comm_unlocked(leader),
            };
            let cgroup = match with_cgroup {
                true => bindings::kdbus_task_dfl_cgroup(t),
                false => core::ptr::null_mut(),
            };
            bindings::kdbus_rcu_read_unlock();
            Ids {
                thread_pid,
                parent,
                cgroup,
                comm: Comm { buf: comm },
                leader_comm: Comm { buf: leader_comm },
            }
        }
    }

    /// The task's real parent, counted.
    pub(crate) fn parent_held(&self) -> Option<Held> {
        // SAFETY: under RCU `real_parent` points to a task that is not freed
        // before the read-side section ends; the ARef takes a count of its
        // own before it does.
        unsafe {
            bindings::kdbus_rcu_read_lock();
            let p = (*self.raw()).real_parent;
            let held = match p.is_null() {
                true => None,
                false => Some(ARef::from(&*p.cast::<kernel::task::Task>())),
            };
            bindings::kdbus_rcu_read_unlock();
            held
        }
    }

    /// Whether at most `max` bytes of the task's argument block are
    /// `expected` (`None`: it has none), compared piece by piece as they
    /// are read from its memory; an unreadable block counts as different.
    /// Reads user memory: call with no kdbus lock held.
    pub(crate) fn cmdline_is(&self, max: usize, expected: Option<&[u8]>) -> bool {
        let (mut r, len, then) = match (self.cmdline_reader(max), expected) {
            (None, None) => return true,
            (Some((r, len)), Some(e)) if len == e.len() => (r, len, e),
            _ => return false,
        };
        let mut piece = [MaybeUninit::<u8>::uninit(); 256];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(piece.len());
            let (Some(dst), Some(was)) = (piece.get_mut(..n), then.get(off..off + n)) else {
                return false;
            };
            if r.read_raw(dst).is_err() {
                return false;
            }
            // SAFETY: read_raw initialised all of `dst` on success.
            let now = unsafe { core::slice::from_raw_parts(dst.as_ptr().cast::<u8>(), n) };
            if now != was {
                return false;
            }
            off += n;
        }
        true
    }

    /// The task's filesystem root.
    pub(crate) fn fs_root(&self) -> Option<Path> {
        // SAFETY: the calling task's `fs` is stable while it runs;
        // get_fs_root takes references to both parts under its lock.
        unsafe {
            let fs = (*self.raw()).fs;
            if fs.is_null() {
                return None;
            }
            let mut p: bindings::path = core::mem::zeroed();
            bindings::kdbus_get_fs_root(fs, &mut p);
            Some(Path(p))
        }
    }

    /// Whether the task's filesystem root is `root`, compared by identity
    /// under the root's lock, without taking references.
    pub(crate) fn root_is(&self, root: &Path) -> bool {
        // SAFETY: the calling task's `fs` is stable while it runs; its root
        // is copied under the lock that set_fs_root takes (no references:
        // only the pointers are compared).
        unsafe {
            let fs = (*self.raw()).fs;
            if fs.is_null() {
                return false;
            }
            let mut r: bindings::path = core::mem::zeroed();
            bindings::kdbus_fs_root_peek(fs, &mut r);
            r.mnt == root.0.mnt && r.dentry == root.0.dentry
        }
    }

    /// The task's executable file, if it has one: what `/proc/self/exe`
    /// links to.
    pub(crate) fn exe(&self) -> Option<ARef<File>> {
        // SAFETY: the calling task's mm stays while it runs; get_file_rcu
        // takes a reference of our own to its `exe_file` under RCU, or
        // gives null.
        unsafe {
            let mm = (*self.raw()).mm;
            if mm.is_null() {
                return None;
            }
            bindings::kdbus_rcu_read_lock();
            let f = bindings::get_file_rcu(&mut (*mm).__bindgen_anon_1.exe_file);
            bindings::kdbus_rcu_read_unlock();
            File::from_owned(f)
        }
    }

    /// The name of the task's executable `exe` from its root `root` (as
    /// [`File::d_path`] gives it), and a [`NameStamp`] if the name can only
    /// change by a rename or an unlink (see [`NameStamp::holds_for`]).
    pub(crate) fn exe_name(
        &self,
        exe: &File,
        root: &Path,
    ) -> Result<Option<(KVec<u8>, Option<NameStamp>)>> {
        // SAFETY: the calling task's `fs` is stable while it runs.
        let fs = unsafe { (*self.raw()).fs };
        if fs.is_null() {
            return Ok(exe.d_path()?.map(|n| (n, None)));
        }
        // SAFETY: `fs` is live (above); reading sequence counts has no
        // other precondition.
        let (fs_seq, seq) = unsafe {
            (
                bindings::kdbus_fs_seq_begin(fs),
                bindings::kdbus_rename_seq_begin(),
            )
        };
        let expires = time::jiffies().saturating_add(time::ns_to_jiffies(STAMP_LIFE_NS));
        let Some(name) = exe.d_path()? else {
            return Ok(None);
        };
        let (f, r) = (exe.f_path(), &root.0);
        // SAFETY: both dentries are held (the file, the root); is_subdir
        // and d_unlinked only read them (under RCU and the rename
        // sequence). The sequences are only compared.
        let stamped = unsafe {
            f.mnt == r.mnt
                && !bindings::kdbus_d_unlinked(f.dentry)
                && bindings::is_subdir(f.dentry, r.dentry)
                && !bindings::kdbus_rename_seq_retry(seq)
                && !bindings::kdbus_fs_seq_retry(fs, fs_seq)
        };
        // No rename and no change of root while the name was read, and the
        // root it was read from is `root`.
        let stamp = (stamped && self.root_is(root)).then_some(NameStamp {
            seq,
            expires,
            dentry: f.dentry,
        });
        Ok(Some((name, stamp)))
    }

    /// Whether the task's executable file is `exe` (compared by identity;
    /// `exe` is held, so no other file has its address).
    pub(crate) fn exe_is(&self, exe: &File) -> bool {
        // SAFETY: the calling task's mm stays while it runs; only the
        // pointer is read (once, as READ_ONCE would: prctl may replace it),
        // never dereferenced.
        unsafe {
            let mm = (*self.raw()).mm;
            if mm.is_null() {
                return false;
            }
            core::ptr::read_volatile(&raw const (*mm).__bindgen_anon_1.exe_file) == exe.as_ptr()
        }
    }

    /// At most `max` bytes of the task's argument block (`/proc/self/cmdline`
    /// as the task wrote it), copied from its memory; `None` if it has none
    /// or it cannot be read. Reads user memory: call with no kdbus lock
    /// held.
    pub(crate) fn cmdline(&self, max: usize) -> Result<Option<KVec<u8>>> {
        let Some((r, len)) = self.cmdline_reader(max) else {
            return Ok(None);
        };
        let mut out = KVec::new();
        match r.read_all(&mut out, gfp()) {
            Ok(()) if out.len() == len => Ok(Some(out)),
            Ok(()) => Ok(None),
            Err(e) if e == kernel::error::code::ENOMEM => Err(ENOMEM),
            Err(_) => Ok(None),
        }
    }

    /// A reader of at most `max` bytes of the task's argument block, and
    /// its length; `None` if it has none. Reading it reads user memory.
    fn cmdline_reader(&self, max: usize) -> Option<(UserSliceReader, usize)> {
        // SAFETY: the calling task's mm stays while it runs; the argument
        // range is read under its lock.
        let (start, end) = unsafe {
            let mm = (*self.raw()).mm;
            if mm.is_null() {
                return None;
            }
            bindings::kdbus_mm_arg_lock(mm);
            let r = (
                (*mm).__bindgen_anon_1.arg_start,
                (*mm).__bindgen_anon_1.arg_end,
            );
            bindings::kdbus_mm_arg_unlock(mm);
            r
        };
        if end <= start {
            return None;
        }
        let len = (end - start).min(max);
        Some((UserSlice::new(start, len).reader(), len))
    }

    /// The task's cgroup on the default hierarchy (counted).
    pub(crate) fn dfl_cgroup(&self) -> Option<ARef<Cgroup>> {
        // SAFETY: under RCU the task's css_set and its default cgroup are
        // not freed; cgroup_tryget takes a reference unless it is going,
        // which the ARef then owns.
        unsafe {
            bindings::kdbus_rcu_read_lock();
            let cg = bindings::kdbus_task_dfl_cgroup(self.raw());
            let got = !cg.is_null() && bindings::kdbus_cgroup_tryget(cg);
            bindings::kdbus_rcu_read_unlock();
            match (got, NonNull::new(cg)) {
                (true, Some(cg)) => Some(ARef::from_raw(cg.cast())),
                _ => None,
            }
        }
    }

    /// The audit login uid and session id.
    pub(crate) fn audit(&self) -> (Kuid, u32) {
        // SAFETY: the calling task's own fields; only it changes them.
        unsafe {
            let t = self.raw();
            (Kuid::from_raw((*t).loginuid.val), (*t).sessionid)
        }
    }
}
