// SPDX-License-Identifier: GPL-2.0

//! kdbus: D-Bus IPC in the kernel.
//!
//! The crate root only wires modules together. Pure protocol logic (no
//! kernel calls; also built in userspace by `kdbus-proto` for tests):
//! [`errno`], [`limits`], [`item`], [`cmd`], [`names`], [`bloom`], [`slices`].
//! Kernel objects, one file each: [`domain`], [`bus`], [`endpoint`],
//! [`connection`], [`pool`], [`handle`]; the filesystem is [`fs`]; the FFI
//! glue is [`bindings`], [`cred`], [`wait`], [`error`].
//!
//! # Lock order
//!
//! Outer to inner; a lock may be taken while holding only locks above it:
//!
//! 1. `Handle::setup` (mutex; serialises setup ioctls, which copy from user
//!    memory under it, so the mm's `mmap_lock` nests inside it)
//! 2. parent inode lock (VFS, taken inside node creation/removal)
//! 3. `Domain::inner`, `Bus::inner`, `Endpoint::inner`, `Connection::inner`,
//!    `Pool::alloc`: leaf mutexes, never nested in one another. Teardown
//!    takes what it needs out of an object under its lock, releases the
//!    lock, then tears down the children.
//! 4. `Handle::state` (spinlock): innermost; held only to read or set the
//!    handle's state, never across a call that sleeps. `mmap` and `poll`
//!    take it under `mmap_lock`/the poll machinery, never `Handle::setup`.

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
