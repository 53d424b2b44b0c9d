// SPDX-License-Identifier: GPL-2.0

//! Delayed work (`kernel::workqueue::DelayedWork` in newer kernels), on the
//! system workqueue. While an item is queued the work holds a reference to
//! its owner, so the owner cannot be freed under a pending or running
//! callback, and dropping the owner never has to wait for the callback
//! (which may itself drop the last reference).

use super::bindings;
use core::marker::PhantomData;
use core::mem::offset_of;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};
use kernel::types::Opaque;

/// An object that owns a [`DelayedWork`].
pub(crate) trait DelayedWorkItem: Send + Sync + Sized + 'static {
    /// The work item of this object.
    fn delayed_work(&self) -> &DelayedWork<Self>;
    /// The callback, with the reference the queued item held.
    fn run(this: Arc<Self>);
}

/// References held on behalf of queued instances of the item.
struct Held<T> {
    /// How many queued instances have not yet started (each owns one
    /// reference to `owner`).
    count: usize,
    /// The owner; set whenever `count` is raised.
    owner: *const T,
}

// SAFETY: `owner` is only turned back into the `Arc` it came from.
unsafe impl<T: Send + Sync> Send for Held<T> {}

/// A delayed work item embedded in a `T`.
///
/// # Invariants
///
/// `dw` is initialised with [`run_fn::<T>`]; each instance of it that is
/// queued and has not started owns one reference counted in `held`.
#[pin_data]
pub(crate) struct DelayedWork<T: DelayedWorkItem> {
    #[pin]
    dw: Opaque<bindings::delayed_work>,
    #[pin]
    held: SpinLock<Held<T>>,
    _owner: PhantomData<T>,
}

// SAFETY: the work item is only used through the thread-safe workqueue API;
// `held` is behind a spinlock.
unsafe impl<T: DelayedWorkItem> Send for DelayedWork<T> {}
// SAFETY: as above.
unsafe impl<T: DelayedWorkItem> Sync for DelayedWork<T> {}

/// The workqueue callback.
///
/// # Safety
///
/// `work` is the work of the `dw` field of a live `DelayedWork<T>`.
unsafe extern "C" fn run_fn<T: DelayedWorkItem>(work: *mut bindings::work_struct) {
    // `work` is the first field of `struct delayed_work`.
    // SAFETY: per the contract; the owner (and so the DelayedWork inside it)
    // is alive because this queued instance holds a reference to it.
    let dw = unsafe {
        &*work
            .cast::<u8>()
            .sub(offset_of!(DelayedWork<T>, dw))
            .cast::<DelayedWork<T>>()
    };
    let owner = {
        let mut h = dw.held.lock();
        if h.count == 0 {
            return;
        }
        h.count -= 1;
        h.owner
    };
    // SAFETY: one reference counted in `held` was taken by `arm` with
    // `Arc::into_raw`; we took it over above.
    T::run(unsafe { Arc::from_raw(owner) });
}

impl<T: DelayedWorkItem> DelayedWork<T> {
    /// An idle work item.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(DelayedWork {
            // SAFETY: `slot` is valid memory for a delayed work item.
            dw <- Opaque::ffi_init(|slot| unsafe {
                bindings::kdbus_init_delayed_work(slot, Some(run_fn::<T>))
            }),
            held <- kernel::new_spinlock!(Held { count: 0, owner: core::ptr::null() }, "kdbus_delayed_work"),
            _owner: PhantomData,
        })
    }

    /// Runs `this`'s work after `delay` jiffies; if it is already queued,
    /// the new delay replaces the old one (`mod_delayed_work`). The callback
    /// re-checks the owner's state, so a spurious run is harmless.
    pub(crate) fn arm(this: &Arc<T>, delay: u64) {
        let w = this.delayed_work();
        let mut h = w.held.lock();
        // SAFETY: `dw` is initialised (invariant).
        let was_pending = unsafe { bindings::kdbus_mod_delayed_work(w.dw.get(), delay as _) };
        if !was_pending {
            // A new instance was queued: it owns a reference.
            h.count += 1;
            h.owner = Arc::into_raw(this.clone());
        }
    }

    /// Cancels a queued instance and waits for a running callback to end.
    /// Must not be called from the callback; the caller holds a reference to
    /// the owner of its own (the one dropped here is the queued instance's).
    pub(crate) fn cancel(&self) {
        // SAFETY: `dw` is initialised (invariant); this may sleep, and no
        // lock of ours is held.
        let was_pending = unsafe { bindings::cancel_delayed_work_sync(self.dw.get()) };
        if !was_pending {
            return;
        }
        let owner = {
            let mut h = self.held.lock();
            if h.count == 0 {
                return;
            }
            h.count -= 1;
            h.owner
        };
        // SAFETY: the cancelled instance's reference, taken by `arm`.
        drop(unsafe { Arc::from_raw(owner) });
    }
}
