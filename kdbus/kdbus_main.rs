// SPDX-License-Identifier: GPL-2.0

//! kdbus: D-Bus IPC in the kernel.
//!
//! The crate root only wires modules together. Pure protocol logic (no
//! kernel calls; also built in userspace by `kdbus-proto` for tests):
//! [`errno`], [`limits`], [`item`], [`cmd`], [`msg`], [`names`], [`bloom`],
//! [`slices`], [`quota`]. Kernel objects, one file each: [`domain`],
//! [`bus`], [`endpoint`], [`connection`], [`info`], [`pool`], [`message`],
//! [`queue`], [`reply`], [`handle`]; the filesystem is [`fs`]; the FFI glue is
//! [`bindings`], [`cred`], [`file`], [`wait`], [`kvec`], [`error`].
//!
//! # Lock order
//!
//! Outer to inner; a lock may be taken while holding only locks above it:
//!
//! 1. `Handle::setup` (mutex; serialises setup ioctls, which copy from user
//!    memory under it, so the mm's `mmap_lock` nests inside it).
//! 2. The parent directory's inode lock (VFS, in node creation/removal).
//! 3. `Domain::inner`, `Bus::inner`, `Endpoint::inner`: never nested in one
//!    another nor held while another kdbus lock is taken. Teardown and
//!    delivery take snapshots (`Bus::conns`) and work without them.
//! 4. `Connection::inner`: may be held while taking `Pool::alloc`,
//!    `Reply::state`, and while writing into the pool (shmem's own locks).
//! 5. `Reply::state` (mutex, sleeping callers wait on its condvar), then
//!    `Pool::alloc`: leaves.
//! 6. `Handle::state` (spinlock): innermost; held only to read or set the
//!    handle's state, never across a call that sleeps. `mmap` and `poll`
//!    take it under `mmap_lock`/the poll machinery, never `Handle::setup`.
//!
//! `Connection::active` is an atomic read without locks; it is cleared under
//! `Connection::inner`, so queueing under that lock never races with
//! disconnect, which then waits (on `Connection::drained`, holding no other
//! lock) for the ioctls still running on the connection. Sleeping callers (synchronous SEND) hold no lock but their
//! tracker's while they wait.

use kernel::prelude::*;

mod bindings;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod bloom;
mod bus;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod cmd;
mod connection;
mod cred;
mod domain;
mod endpoint;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod errno;
mod error;
mod file;
mod fs;
mod handle;
mod info;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod item;
mod kvec;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod limits;
mod message;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod msg;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod names;
mod pool;
mod queue;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod quota;
mod reply;
#[allow(unreachable_pub)] // Pure: `pub` for the userspace test crate.
#[allow(dead_code)] // Shared API: parts serve commands still to come.
mod slices;
mod uapi;
mod wait;

module! {
    type: Kdbus,
    name: "kdbus",
    author: "kdbus developers",
    description: "D-Bus IPC in the kernel (kdbusfs)",
    license: "GPL",
    alias: ["fs-kdbusfs"],
}

struct Kdbus;

impl kernel::Module for Kdbus {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        fs::register()?;
        pr_info!("kdbusfs registered, mount point /sys/fs/kdbus\n");
        Ok(Kdbus)
    }
}

impl Drop for Kdbus {
    fn drop(&mut self) {
        fs::unregister();
    }
}
