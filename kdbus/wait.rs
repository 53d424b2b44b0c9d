// SPDX-License-Identifier: GPL-2.0

//! A kernel wait queue usable from `poll`: the kernel crate's `CondVar` hides
//! its queue, and `poll_wait()` needs it.

use crate::bindings;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A `wait_queue_head` that pollers and sleepers wait on.
///
/// # Invariants
///
/// `wq` is initialised by `init_waitqueue_head()` and pinned.
#[pin_data]
pub(crate) struct WaitQueue {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: a wait queue head is designed to be used from any thread; it has
// its own spinlock.
unsafe impl Send for WaitQueue {}
// SAFETY: as above.
unsafe impl Sync for WaitQueue {}

impl WaitQueue {
    /// Initialises an empty wait queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid, pinned memory for a wait queue head.
            wq <- Opaque::ffi_init(|slot| unsafe { bindings::kdbus_init_waitqueue_head(slot) }),
        })
    }

    /// Wakes every waiter.
    pub(crate) fn wake_up_all(&self) {
        // SAFETY: `wq` is initialised (type invariant).
        unsafe { bindings::kdbus_wake_up_all(self.wq.get()) }
    }

    /// Registers the queue with a poll table.
    ///
    /// # Safety
    ///
    /// `file` and `pt` are the arguments of the `poll` file operation being
    /// served, and `self` outlives `file` (the file holds a reference to it).
    pub(crate) unsafe fn poll_wait(
        &self,
        file: *mut bindings::file,
        pt: *mut bindings::poll_table_struct,
    ) {
        // SAFETY: per the function's contract; `wq` is initialised.
        unsafe { bindings::kdbus_poll_wait(file, self.wq.get(), pt) }
    }
}
