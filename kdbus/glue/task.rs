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

    /// Whether the thread group's, the thread's and the real parent's
    /// thread group's pids are `pids` (as [`Task::tgid`], [`Task::pid`] and
    /// [`Task::parent_tgid`] give them), compared by identity without
    /// taking references.
    pub(crate) fn pids_are(&self, pids: [Option<&Pid>; 3]) -> bool {
        let tgid = bindings::pid_type_PIDTYPE_TGID as usize;
        let want = pids.map(|p| p.map_or(core::ptr::null_mut(), |p| p.as_ptr()));
        // SAFETY: the calling task's `signal` and `thread_pid` stay while it
        // runs; under RCU `real_parent` and its `signal` are not freed. Only
        // the pointer values are compared.
        unsafe {
            let t = self.raw();
            let group = |t: *mut bindings::task_struct| {
                let sig = (*t).signal;
                match sig.is_null() {
                    true => core::ptr::null_mut(),
                    false => (*sig)
                        .pids
                        .get(tgid)
                        .copied()
                        .unwrap_or(core::ptr::null_mut()),
                }
            };
            let (own, thread) = (group(t), (*t).thread_pid);
            bindings::kdbus_rcu_read_lock();
            let parent = (*t).real_parent;
            let parent = match parent.is_null() {
                true => core::ptr::null_mut(),
                false => group(parent),
            };
            bindings::kdbus_rcu_read_unlock();
            [own, thread, parent] == want
        }
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

    /// The thread's and its group leader's `comm`, as [`Task::comm`] and
    /// [`Task::leader_comm`] give them but read without the task locks
    /// (volatile reads, as the kernel's own unlocked `current->comm`
    /// readers do): a name that another thread is changing at that moment
    /// may read as a mix of the two, which is compared, never reported.
    pub(crate) fn comms_unlocked(&self) -> (Comm, Comm) {
        let to_comm = |raw: [u8; 16]| Comm { buf: raw };
        // SAFETY: the calling task is live; under RCU its group leader is
        // not freed. The arrays are copied, never referenced.
        unsafe {
            let t = self.raw();
            let own = core::ptr::read_volatile(&raw const (*t).comm);
            bindings::kdbus_rcu_read_lock();
            let leader = (*t).group_leader;
            let lead = match leader.is_null() {
                true => [0; 16],
                false => core::ptr::read_volatile(&raw const (*leader).comm),
            };
            bindings::kdbus_rcu_read_unlock();
            (to_comm(own), to_comm(lead))
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

    /// Whether the task's cgroup on the default hierarchy is `cg`
    /// (compared by identity; `cg` is held, so no other cgroup has its
    /// address).
    pub(crate) fn cgroup_is(&self, cg: &Cgroup) -> bool {
        // SAFETY: as in `dfl_cgroup`; only the pointer is compared.
        unsafe {
            bindings::kdbus_rcu_read_lock();
            let now = bindings::kdbus_task_dfl_cgroup(self.raw());
            bindings::kdbus_rcu_read_unlock();
            now == cg.0.get()
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
