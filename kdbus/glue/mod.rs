// SPDX-License-Identifier: GPL-2.0

//! The module's one FFI boundary: every line that touches a raw kernel object
//! lives here, behind small safe types named after their counterparts in newer
//! kernels' `kernel` crate, so that a later port is "delete `glue/X`, use
//! `kernel::X`":
//!
//! | Here | Newer kernels | What |
//! |---|---|---|
//! | [`file::File`] | `kernel::fs::File` | counted `struct file` references, the questions the message rules ask about a passed file, `receive_fd` |
//! | [`poll::PollTable`], [`poll::PollCondVar`] | `kernel::sync::poll` | our own `->poll`, and wait queues pollers and sleepers share |
//! | [`poll::PollWatch`] | (fs/select.c's `poll_wqueues`) | waiting on a foreign file's poll queues, any number of them |
//! | [`vma::VmaNew`] | `kernel::mm::virt::VmaNew` | the area of an `mmap` call |
//! | [`cred::Credential`], [`cred::UserNamespace`] | `kernel::cred` | credentials, user namespaces, capabilities |
//! | [`task::Task`], [`task::Path`] | `kernel::task::Task`, `kernel::fs::Path` | the calling task's pids, comm, exe, argument block, cgroup, audit ids, fs root (metadata) |
//! | [`pid::Pid`], [`pid::PidNamespace`] | `kernel::pid`, `kernel::pid_namespace` | pids numbered per pid namespace |
//! | [`workqueue::DelayedWork`] | `kernel::workqueue::DelayedWork` | a delayed work item that holds a reference while queued |
//! | [`vfs`] | (`kernel::fs` in progress upstream) | kdbusfs mechanics: registration, superblock, nodes, file operations |
//! | [`shmem`] | - | the pool's shmem file: page-cache writer, page patches, mapping |
//! | [`time`], [`random`], [`user`], [`kvec`], [`error`], [`stats`] | - | clocks, random bytes, `access_ok`, `KVec` extras, errno conversion, live-object counters |
//!
//! Domain code (everything outside `glue/` and `proto/`) contains no `unsafe`
//! and no `bindings::`.

pub(crate) mod bindings;
pub(crate) mod cred;
pub(crate) mod error;
pub(crate) mod file;
pub(crate) mod hash;
pub(crate) mod kvec;
pub(crate) mod pid;
pub(crate) mod poll;
pub(crate) mod random;
pub(crate) mod shmem;
pub(crate) mod stats;
pub(crate) mod task;
pub(crate) mod time;
pub(crate) mod uapi;
pub(crate) mod user;
pub(crate) mod vfs;
pub(crate) mod vma;
pub(crate) mod workqueue;

use kernel::alloc::{flags, Flags};

/// Flags for every allocation userspace can cause: charged to the caller's
/// memory cgroup and never warning on failure (the caller gets `ENOMEM`).
#[inline]
pub(crate) fn gfp() -> Flags {
    flags::GFP_KERNEL_ACCOUNT | flags::__GFP_NOWARN
}
