// SPDX-License-Identifier: GPL-2.0

//! The calling task (`kernel::task::Task` in newer kernels) as far as
//! metadata needs it: its pids, names, executable, argument block, cgroup,
//! audit ids and filesystem root (spec: metadata.md 1, 4). Only the calling
//! task is ever looked at, so no task reference is held: a [`Task`] is a
//! token for "current", not `Send`.

use super::bindings;
use super::cred::Kuid;
use super::gfp;
use super::pid::Pid;
use crate::proto::errno::Result;
use core::marker::PhantomData;
use kernel::prelude::*;
use kernel::types::ARef;
use kernel::uaccess::UserSlice;

const PAGE: usize = kernel::page::PAGE_SIZE;

/// The calling task.
pub(crate) struct Task {
    _not_send: PhantomData<*mut ()>,
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

impl Drop for Path {
    fn drop(&mut self) {
        // SAFETY: we own one reference to both parts (taken by get_fs_root).
        unsafe { bindings::path_put(&self.0) };
    }
}

impl Task {
    /// The calling task.
    pub(crate) fn current() -> Task {
        Task {
            _not_send: PhantomData,
        }
    }

    fn raw(&self) -> *mut bindings::task_struct {
        // SAFETY: `current` is always valid in process context.
        unsafe { bindings::kdbus_current() }
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

    /// The path of the task's executable as `/proc/self/exe` shows it to
    /// the task itself (relative to its root), if it has one. May sleep
    /// (the mm's `mmap_lock`).
    pub(crate) fn exe_path(&self) -> Result<Option<KVec<u8>>> {
        // SAFETY: the calling task's mm stays while it runs; under
        // `mmap_lock` its `exe_file` cannot be replaced (the writers hold it
        // for writing), so taking a reference of our own is safe.
        let file = unsafe {
            let mm = (*self.raw()).mm;
            if mm.is_null() {
                return Ok(None);
            }
            bindings::kdbus_mmap_read_lock(mm);
            let f = (*mm).__bindgen_anon_1.exe_file;
            if !f.is_null() {
                bindings::kdbus_get_file(f);
            }
            bindings::kdbus_mmap_read_unlock(mm);
            f
        };
        if file.is_null() {
            return Ok(None);
        }
        // Not zeroed: d_path writes the string it returns at the end of the
        // buffer (NUL-terminated at `PAGE - 1`), and only that is read.
        let mut r = KVec::<u8>::with_capacity(PAGE, gfp());
        // SAFETY: `file` holds our reference; d_path writes at most `PAGE`
        // bytes into the buffer and returns a pointer into it or an error
        // pointer. The reference is given back after the call.
        let p = unsafe {
            let p = match &mut r {
                Ok(b) => bindings::d_path(&(*file).f_path, b.as_mut_ptr().cast(), PAGE as i32),
                Err(_) => core::ptr::null_mut(),
            };
            bindings::fput(file);
            p
        };
        let buf = r?;
        let Ok(p) = kernel::error::from_err_ptr(p) else {
            return Ok(None);
        };
        let start = (p as usize).wrapping_sub(buf.as_ptr() as usize);
        if start >= PAGE {
            return Ok(None);
        }
        // SAFETY: d_path wrote the path from `p` up to its NUL at `PAGE - 1`
        // of the buffer's capacity.
        let tail = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), PAGE - 1 - start) };
        let len = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        let mut out = KVec::with_capacity(len, gfp())?;
        out.extend_from_slice(&tail[..len], gfp())?;
        Ok(Some(out))
    }

    /// At most `max` bytes of the task's argument block (`/proc/self/cmdline`
    /// as the task wrote it), copied from its memory; `None` if it has none
    /// or it cannot be read. Reads user memory: call with no kdbus lock
    /// held.
    pub(crate) fn cmdline(&self, max: usize) -> Result<Option<KVec<u8>>> {
        // SAFETY: the calling task's mm stays while it runs; the argument
        // range is read under its lock.
        let (start, end) = unsafe {
            let mm = (*self.raw()).mm;
            if mm.is_null() {
                return Ok(None);
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
            return Ok(None);
        }
        let len = (end - start).min(max);
        let mut out = KVec::new();
        match UserSlice::new(start, len).read_all(&mut out, gfp()) {
            Ok(()) => Ok(Some(out)),
            Err(e) if e == ENOMEM => Err(e.into()),
            Err(_) => Ok(None),
        }
    }

    /// The task's cgroup on the default hierarchy, as a path from its root.
    pub(crate) fn cgroup_path(&self) -> Result<Option<KVec<u8>>> {
        // Not zeroed: cgroup_path writes the string whose length it
        // returns, and only that is read.
        let mut buf = KVec::<u8>::with_capacity(PAGE, gfp())?;
        let base = buf.as_mut_ptr();
        // SAFETY: under RCU the task's css_set and its default cgroup (and
        // the cgroup's kernfs node) are not freed; cgroup_path does not
        // sleep and NUL-terminates within `PAGE` bytes.
        let n = unsafe {
            bindings::kdbus_rcu_read_lock();
            let cg = bindings::kdbus_task_dfl_cgroup(self.raw());
            let n = match cg.is_null() {
                true => -1,
                false => bindings::kdbus_cgroup_path(cg, base.cast(), PAGE),
            };
            bindings::kdbus_rcu_read_unlock();
            n
        };
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
        let mut out = KVec::with_capacity(len, gfp())?;
        out.extend_from_slice(&path[..len], gfp())?;
        Ok(Some(out))
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
