// SPDX-License-Identifier: GPL-2.0

//! Poll tables and wait queues (`kernel::sync::poll` in newer kernels), and
//! waiting on a foreign file's poll queues the way poll(2) does.

use super::bindings;
use super::file::File;
use super::gfp;
use crate::proto::errno::{Result, ENOMEM};
use core::cell::{Cell, UnsafeCell};
use core::ffi::{c_int, c_uint, c_void};
use core::marker::{PhantomData, PhantomPinned};
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;
use kernel::types::{ARef, Opaque};

/// `POLLIN`.
pub(crate) const POLLIN: u32 = bindings::POLLIN;
/// `POLLOUT`.
pub(crate) const POLLOUT: u32 = bindings::POLLOUT;
/// `POLLRDNORM`.
pub(crate) const POLLRDNORM: u32 = bindings::POLLRDNORM;
/// `POLLWRNORM`.
pub(crate) const POLLWRNORM: u32 = bindings::POLLWRNORM;
/// `POLLERR`.
pub(crate) const POLLERR: u32 = bindings::POLLERR;
/// `POLLHUP`.
pub(crate) const POLLHUP: u32 = bindings::POLLHUP;

/// The poll table of a `poll` file operation being served.
pub(crate) struct PollTable<'a> {
    ptr: *mut bindings::poll_table_struct,
    _call: PhantomData<&'a mut bindings::poll_table_struct>,
}

impl PollTable<'_> {
    /// # Safety
    ///
    /// `ptr` is null or the poll table of the `poll` call being served.
    pub(super) unsafe fn from_raw(ptr: *mut bindings::poll_table_struct) -> Self {
        PollTable {
            ptr,
            _call: PhantomData,
        }
    }

    /// Registers the poller on `cv` for `file`, the file being polled.
    pub(crate) fn register_wait(&mut self, file: &File, cv: &PollCondVar) {
        // SAFETY: `self.ptr` is this call's table (or null); `file` is the
        // polled file, which keeps the object owning `cv` alive; a poller
        // that outlives the file's release is told by `cv`'s drop
        // (POLLFREE).
        unsafe { bindings::kdbus_poll_wait(file.as_ptr(), cv.wq.get(), self.ptr) };
    }
}

/// A wait queue that pollers ([`PollTable::register_wait`]) and sleepers
/// ([`PollCondVar::wait_interruptible_timeout`]) share.
///
/// # Invariants
///
/// `wq` is initialised and pinned.
#[pin_data(PinnedDrop)]
pub(crate) struct PollCondVar {
    #[pin]
    wq: Opaque<bindings::wait_queue_head>,
}

// SAFETY: a wait queue head has its own spinlock and may be used anywhere.
unsafe impl Send for PollCondVar {}
// SAFETY: as above.
unsafe impl Sync for PollCondVar {}

impl PollCondVar {
    /// An empty wait queue.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid, pinned memory for a wait queue head.
            wq <- Opaque::ffi_init(|slot| unsafe { bindings::kdbus_init_waitqueue_head(slot) }),
        })
    }

    /// Wakes every poller and sleeper.
    pub(crate) fn notify_all(&self) {
        // SAFETY: `wq` is initialised (invariant).
        unsafe { bindings::kdbus_wake_up_all(self.wq.get()) };
    }

    /// Releases `guard` (of `lock`), sleeps until woken, a signal arrives or
    /// `timeout` jiffies pass, and takes the lock again. The task is queued
    /// (and marked sleeping) before the lock is released, so a waker that
    /// changes the state under the lock and then calls
    /// [`PollCondVar::notify_all`] is never missed; `unless` is checked after
    /// that and before sleeping, so a wake-up from another queue that set it
    /// (a [`PollWatch`]) is not missed either.
    pub(crate) fn wait_interruptible_timeout<'a, T>(
        &self,
        lock: &'a Mutex<T>,
        guard: Guard<'a, T, MutexBackend>,
        timeout: u64,
        unless: impl Fn() -> bool,
    ) -> Guard<'a, T, MutexBackend> {
        let wait = Opaque::<bindings::wait_queue_entry>::uninit();
        // SAFETY: `wait` lives on this stack frame until finish_wait below,
        // and is not moved in between; `wq` is initialised.
        unsafe {
            bindings::init_wait_entry(wait.get(), 0);
            bindings::prepare_to_wait(
                self.wq.get(),
                wait.get(),
                bindings::TASK_INTERRUPTIBLE as c_int,
            );
        }
        drop(guard);
        if !unless() {
            let t = i64::try_from(timeout).unwrap_or(i64::MAX);
            // SAFETY: the task state was set by prepare_to_wait.
            unsafe { bindings::schedule_timeout(t as _) };
        }
        // SAFETY: `wait` was prepared on `wq` above.
        unsafe { bindings::finish_wait(self.wq.get(), wait.get()) };
        lock.lock()
    }
}

#[pinned_drop]
impl PinnedDrop for PollCondVar {
    fn drop(self: Pin<&mut Self>) {
        // An epoll or poll entry may still be queued if the owner outlived
        // its file in an unusual order: tell it the queue goes away, and let
        // RCU readers of the queue finish before the memory is freed.
        // SAFETY: `wq` is initialised.
        if unsafe { bindings::kdbus_wake_up_pollfree(self.wq.get()) } {
            // SAFETY: no locks are held by a drop of a kdbus object.
            unsafe { bindings::synchronize_rcu() };
        }
    }
}

/// Poll events that may make a watched file readable (others do not wake).
const WAKE_EVENTS: u32 =
    bindings::POLLIN | bindings::POLLRDNORM | bindings::POLLERR | bindings::POLLHUP;

/// One wait-queue registration of a [`PollWatch`].
#[pin_data]
struct WatchEntry {
    /// The wake callback gets a pointer to it.
    #[pin]
    wait: Opaque<bindings::wait_queue_entry>,
    head: *mut bindings::wait_queue_head,
    triggered: *const AtomicBool,
    #[pin]
    _pin: PhantomPinned,
}

/// Waits, for the current task, on every wait queue a foreign file's `poll`
/// registers (fs/select.c's `poll_wqueues`): any number of `poll_wait()`
/// calls, each with its own entry, removed again on drop. A wake-up on any
/// of them sets [`PollWatch::triggered`] and wakes the task, which then polls
/// again with [`PollWatch::poll`] (while holding no kdbus lock: a foreign
/// `poll` may take any lock or block).
///
/// # Invariants
///
/// `pt` is initialised with [`watch_queue`] (cleared after the first poll);
/// every entry in `entries` is on its `head` and is removed before it is
/// freed; the watched file outlives the entries (we hold it).
#[pin_data(PinnedDrop)]
pub(crate) struct PollWatch {
    #[pin]
    pt: Opaque<bindings::poll_table_struct>,
    triggered: AtomicBool,
    registered: Cell<bool>,
    failed: Cell<bool>,
    entries: UnsafeCell<KVec<Pin<KBox<WatchEntry>>>>,
    file: ARef<File>,
    #[pin]
    _pin: PhantomPinned,
}

/// Wake callback of a [`WatchEntry`].
///
/// # Safety
///
/// `wait` is the `wait` field of a live [`WatchEntry`] set up by
/// [`watch_queue`]; called by the wait queue under its lock.
unsafe extern "C" fn watch_wake(
    wait: *mut bindings::wait_queue_entry,
    mode: c_uint,
    sync: c_int,
    key: *mut c_void,
) -> c_int {
    let mask = key as usize as u32;
    if !key.is_null() && mask & WAKE_EVENTS == 0 {
        return 0;
    }
    // SAFETY: `wait` is the `wait` field of a live WatchEntry (contract),
    // whose `triggered` points into the watch that owns the entry.
    unsafe {
        let entry = wait
            .cast::<u8>()
            .sub(offset_of!(WatchEntry, wait))
            .cast::<WatchEntry>();
        (*(*entry).triggered).store(true, Ordering::Release);
    }
    // SAFETY: `wait.private` is the watching task (kdbus_init_wait_func).
    unsafe { bindings::default_wake_function(wait, mode, sync, key) }
}

/// `poll_table` callback: a new entry on `wq` for the current task.
///
/// # Safety
///
/// `pt` is the `pt` field of a live, pinned [`PollWatch`] whose `poll` is
/// running on this task; `wq` is a live wait queue of the polled file.
unsafe extern "C" fn watch_queue(
    _file: *mut bindings::file,
    wq: *mut bindings::wait_queue_head,
    pt: *mut bindings::poll_table_struct,
) {
    // SAFETY: `pt` is the `pt` field of a live watch (contract).
    let w = unsafe {
        &*pt.cast::<u8>()
            .sub(offset_of!(PollWatch, pt))
            .cast::<PollWatch>()
    };
    // SAFETY: only `PollWatch::poll` on this task reaches here, and it does
    // not touch `entries` while the foreign poll runs.
    let entries = unsafe { &mut *w.entries.get() };
    if entries.reserve(1, gfp()).is_err() {
        w.failed.set(true);
        return;
    }
    let entry = KBox::pin_init(
        pin_init!(WatchEntry {
            // SAFETY: `slot` is valid memory for a wait queue entry.
            wait <- Opaque::ffi_init(|slot| unsafe {
                bindings::kdbus_init_wait_func(slot, Some(watch_wake))
            }),
            head: wq,
            triggered: &w.triggered as *const AtomicBool,
            _pin: PhantomPinned,
        }),
        gfp(),
    );
    let Ok(entry) = entry else {
        w.failed.set(true);
        return;
    };
    // SAFETY: the entry is pinned and stays on `wq` until our drop removes
    // it; the polled file (held by the watch) keeps `wq` alive.
    unsafe { bindings::add_wait_queue(wq, entry.wait.get()) };
    // Capacity was reserved above: this cannot fail.
    let _ = entries.push(entry, gfp());
}

impl PollWatch {
    /// Prepares to watch `file` (which must support poll) for the current
    /// task. Nothing is registered until the first [`PollWatch::poll`].
    pub(crate) fn new(file: ARef<File>) -> Result<Pin<KBox<Self>>> {
        Ok(KBox::pin_init(
            pin_init!(PollWatch {
                // SAFETY: `slot` is valid memory for a poll table.
                pt <- Opaque::ffi_init(|slot| unsafe {
                    bindings::kdbus_init_poll_funcptr(slot, Some(watch_queue))
                }),
                triggered: AtomicBool::new(false),
                registered: Cell::new(false),
                failed: Cell::new(false),
                entries: UnsafeCell::new(KVec::new()),
                file,
                _pin: PhantomPinned,
            }),
            gfp(),
        )?)
    }

    /// Polls the file: the first time registering on its queues, then only
    /// querying its mask, as poll(2) does. Clears [`PollWatch::triggered`]
    /// first, so a wake-up after this call is seen. Returns whether the file
    /// is readable; `ENOMEM` if a registration could not be allocated.
    /// Call with no kdbus lock held.
    pub(crate) fn poll(&self) -> Result<bool> {
        self.triggered.store(false, Ordering::SeqCst);
        // SAFETY: the file is live (held); `pt` is initialised and pinned in
        // this watch; watch_queue only runs during this call, on this task.
        let mask = unsafe { bindings::kdbus_vfs_poll(self.file.as_ptr(), self.pt.get()) };
        if !self.registered.get() {
            self.registered.set(true);
            // Later polls only query (fs/select.c's do_poll does the same).
            // SAFETY: `pt` is ours and no poll is running.
            unsafe { (*self.pt.get())._qproc = None };
        }
        if self.failed.get() {
            return Err(ENOMEM);
        }
        Ok(mask & bindings::POLLIN != 0)
    }

    /// Whether a wake-up came from the file since the last poll.
    pub(crate) fn triggered(&self) -> bool {
        self.triggered.load(Ordering::Acquire)
    }
}

#[pinned_drop]
impl PinnedDrop for PollWatch {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: no poll is running (we are being dropped).
        let entries = unsafe { &*self.entries.get() };
        for e in entries.iter() {
            // SAFETY: `e` was added to `head` by watch_queue and is still on
            // it (invariant); the file we hold keeps the queue alive.
            unsafe { bindings::remove_wait_queue(e.head, e.wait.get()) };
        }
    }
}
