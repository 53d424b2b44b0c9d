//! Memory the fuzzer points the kernel at: a per-thread arena (payload
//! data, read-only and `PROT_NONE` pages, copy areas that end at a guard
//! page) and the per-process userfaultfd area whose faults a handler thread
//! resolves late, sometimes very late.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::items::Addr;
use crate::mutate::Place;
use crate::rng::Rng;

const PAGE: usize = 4096;
/// Size of the payload data area.
pub const DATA_LEN: usize = 1 << 20;
/// Size of each copy area (commands and messages of up to 40 KiB).
pub const COPY_LEN: usize = 40 << 10;
/// Size of the userfaultfd area.
pub const UFFD_LEN: usize = 16 * PAGE;

/// A per-thread arena:
/// `data | guard | none | copy0 | guard | ro0 | copy1 | guard | ro1 | guard`.
pub struct Arena {
    base: usize,
    len: usize,
}

// The arena is plain anonymous memory owned by one thread at a time.
unsafe impl Send for Arena {}

fn copy_off(area: usize) -> usize {
    DATA_LEN + 2 * PAGE + area * (COPY_LEN + 2 * PAGE)
}

impl Arena {
    /// Maps the arena and fills the data area with a pattern from `rng`.
    pub fn new(rng: &mut Rng) -> Arena {
        let len = copy_off(2) + PAGE;
        // SAFETY: a fresh anonymous mapping at a kernel-chosen address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap of the arena failed");
        let a = Arena {
            base: p as usize,
            len,
        };
        let data = a.slice_mut(0, DATA_LEN);
        let pat = rng.bytes(256);
        for (i, b) in data.iter_mut().enumerate() {
            *b = pat[i % 256] ^ (i >> 8) as u8;
        }
        a.protect(DATA_LEN, 2 * PAGE, libc::PROT_NONE);
        for area in 0..2 {
            let o = copy_off(area);
            a.protect(o + COPY_LEN, PAGE, libc::PROT_NONE);
            a.protect(o + COPY_LEN + PAGE, PAGE, libc::PROT_READ);
        }
        a.protect(copy_off(2), PAGE, libc::PROT_NONE);
        a
    }

    #[allow(clippy::mut_from_ref)] // raw memory the arena owns; callers copy in, never alias
    fn slice_mut(&self, off: usize, len: usize) -> &mut [u8] {
        assert!(off + len <= self.len);
        // SAFETY: inside the mapping; the arena is used by one thread.
        unsafe { std::slice::from_raw_parts_mut((self.base + off) as *mut u8, len) }
    }

    fn protect(&self, off: usize, len: usize, prot: i32) {
        // SAFETY: a page-aligned range inside the arena's own mapping.
        let r = unsafe { libc::mprotect((self.base + off) as *mut _, len, prot) };
        assert_eq!(r, 0, "mprotect in the arena failed");
    }

    /// The address of `a` for the arena's kinds (`Pool` and `Uffd` are the
    /// executor's; they yield `None` here).
    pub fn addr(&self, a: &Addr) -> Option<u64> {
        let b = self.base as u64;
        Some(match *a {
            Addr::Null => 0,
            Addr::Data { off } => b + u64::from(off) % DATA_LEN as u64,
            Addr::ReadOnly { off } => {
                b + (copy_off(0) + COPY_LEN + PAGE) as u64 + u64::from(off) % PAGE as u64
            }
            Addr::ProtNone { off } => b + (DATA_LEN + PAGE) as u64 + u64::from(off) % PAGE as u64,
            Addr::PageEnd { back } => {
                let back = u64::from(back).min(COPY_LEN as u64);
                b + (copy_off(1) + COPY_LEN) as u64 - back
            }
            Addr::Raw(v) => v,
            Addr::Pool { .. } | Addr::Uffd { .. } => return None,
        })
    }

    /// Copies `bytes` to where `place` says (area 0 for commands, 1 for
    /// messages) and returns the address; `None` for [`Place::Buf`] and
    /// [`Place::At`], which need no copy.
    pub fn place(&self, place: Place, area: usize, bytes: &[u8]) -> Option<u64> {
        let o = copy_off(area);
        let n = bytes.len().min(COPY_LEN - 8);
        match place {
            Place::Misaligned(k) => {
                let k = usize::from(k);
                self.slice_mut(o + k, n).copy_from_slice(&bytes[..n]);
                Some((self.base + o + k) as u64)
            }
            Place::PageEnd => {
                let start = o + COPY_LEN - n;
                self.slice_mut(start, n).copy_from_slice(&bytes[..n]);
                Some((self.base + start) as u64)
            }
            Place::ReadOnly => {
                let ro = o + COPY_LEN + PAGE;
                let n = n.min(PAGE);
                self.protect(ro, PAGE, libc::PROT_READ | libc::PROT_WRITE);
                self.slice_mut(ro, n).copy_from_slice(&bytes[..n]);
                self.protect(ro, PAGE, libc::PROT_READ);
                Some((self.base + ro) as u64)
            }
            Place::Buf | Place::At(_) => None,
        }
    }

    /// Reads back what the kernel may have written at a [`Place::PageEnd`]
    /// copy of `len` bytes in `area`.
    pub fn read_back(&self, place: Place, area: usize, out: &mut [u8]) {
        if place == Place::PageEnd {
            let n = out.len().min(COPY_LEN - 8);
            let start = copy_off(area) + COPY_LEN - n;
            out[..n].copy_from_slice(self.slice_mut(start, n));
        }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the arena's mapping.
        unsafe { libc::munmap(self.base as *mut _, self.len) };
    }
}

// --- userfaultfd ------------------------------------------------------------

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: u64 = 0xc018_aa3f;
const UFFDIO_REGISTER: u64 = 0xc020_aa00;
const UFFDIO_WAKE: u64 = 0x8010_aa02;
const UFFDIO_ZEROPAGE: u64 = 0xc020_aa04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

/// The userfaultfd area of a process and the state of its fault handler.
pub struct Uffd {
    /// The userfaultfd.
    pub fd: i32,
    /// Start of the registered area.
    pub base: u64,
    release: AtomicBool,
    quit: AtomicBool,
    /// Faults seen.
    pub faults: AtomicU64,
    /// Faults held for the long stall.
    pub long_stalls: AtomicU64,
    long: Duration,
    pending: Mutex<Vec<(Instant, u64)>>,
}

impl Uffd {
    /// Creates the userfaultfd and registers a fresh area for missing-page
    /// faults. `None` if the kernel has no userfaultfd (or refuses it).
    pub fn create(long: Duration) -> Option<Uffd> {
        // SAFETY: plain syscalls; every buffer passed is owned here.
        unsafe {
            let fd =
                libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) as i32;
            if fd < 0 {
                return None;
            }
            let mut api = [UFFD_API, 0, 0];
            if libc::ioctl(fd, UFFDIO_API as _, api.as_mut_ptr()) != 0 {
                libc::close(fd);
                return None;
            }
            let p = libc::mmap(
                std::ptr::null_mut(),
                UFFD_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                libc::close(fd);
                return None;
            }
            let mut reg = [p as u64, UFFD_LEN as u64, UFFDIO_REGISTER_MODE_MISSING, 0];
            if libc::ioctl(fd, UFFDIO_REGISTER as _, reg.as_mut_ptr()) != 0 {
                libc::munmap(p, UFFD_LEN);
                libc::close(fd);
                return None;
            }
            Some(Uffd {
                fd,
                base: p as u64,
                release: AtomicBool::new(false),
                quit: AtomicBool::new(false),
                faults: AtomicU64::new(0),
                long_stalls: AtomicU64::new(0),
                long,
                pending: Mutex::new(Vec::new()),
            })
        }
    }

    /// The address `off` bytes into the area.
    pub fn addr(&self, off: u32) -> u64 {
        self.base + u64::from(off) % UFFD_LEN as u64
    }

    /// Drops the area's pages so the next kernel access faults again.
    pub fn rearm(&self) {
        // SAFETY: the area is ours and never accessed by this process.
        unsafe { libc::madvise(self.base as *mut _, UFFD_LEN, libc::MADV_DONTNEED) };
    }

    /// From now on every fault is resolved at once (end of the run).
    pub fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }

    /// Ends [`Uffd::handler`] (after [`Uffd::release`] and the workers).
    pub fn quit(&self) {
        self.quit.store(true, Ordering::SeqCst);
    }

    fn resolve(&self, page: u64) {
        let mut zp = [page, 4096u64, 0, 0];
        // SAFETY: ioctls on our userfaultfd with owned buffers.
        unsafe {
            if libc::ioctl(self.fd, UFFDIO_ZEROPAGE as _, zp.as_mut_ptr()) != 0 {
                // Already mapped (EEXIST) or the range is being zapped:
                // make sure no one keeps waiting.
                let mut r = [page, 4096u64];
                libc::ioctl(self.fd, UFFDIO_WAKE as _, r.as_mut_ptr());
            }
        }
    }

    /// The fault handler thread: each fault is held for a random time (most
    /// not at all, a few up to 2 s, one in 20 for the long stall) while the
    /// faulting task sits in the kernel with whatever it holds.
    pub fn handler(&self, mut rng: Rng) {
        let mut rearmed = Instant::now();
        loop {
            // Zap the resolved pages now and then, so kernel copies from
            // the area keep faulting.
            if rearmed.elapsed() >= Duration::from_millis(250) {
                self.rearm();
                rearmed = Instant::now();
            }
            let now = Instant::now();
            let released = self.release.load(Ordering::SeqCst);
            let mut due = Vec::new();
            let next = {
                let mut p = self.pending.lock().unwrap();
                p.retain(|&(t, page)| {
                    if released || t <= now {
                        due.push(page);
                        false
                    } else {
                        true
                    }
                });
                p.iter().map(|&(t, _)| t).min()
            };
            for page in due {
                self.resolve(page);
            }
            if self.quit.load(Ordering::SeqCst) {
                return;
            }
            let wait = next
                .map(|t| t.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(50));
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32 + 1) };
            let mut msg = [0u64; 4]; // struct uffd_msg, 32 bytes
                                     // SAFETY: reading one uffd_msg into an owned buffer.
            let n = unsafe { libc::read(self.fd, msg.as_mut_ptr().cast(), 32) };
            if n != 32 || (msg[0] & 0xff) as u8 != UFFD_EVENT_PAGEFAULT {
                continue;
            }
            self.faults.fetch_add(1, Ordering::Relaxed);
            let page = msg[2] & !4095;
            let hold = if self.release.load(Ordering::SeqCst) {
                Duration::ZERO
            } else {
                match rng.below(100) {
                    0..=59 => Duration::ZERO,
                    60..=89 => Duration::from_millis(rng.range(1, 200)),
                    90..=94 => Duration::from_millis(rng.range(200, 2000)),
                    _ if !self.long.is_zero() => {
                        self.long_stalls.fetch_add(1, Ordering::Relaxed);
                        self.long
                    }
                    _ => Duration::from_millis(rng.range(1, 50)),
                }
            };
            self.pending
                .lock()
                .unwrap()
                .push((Instant::now() + hold, page));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_addresses_and_places() {
        let mut rng = Rng::new(1);
        let a = Arena::new(&mut rng);
        let d = a.addr(&Addr::Data { off: 8 }).unwrap();
        assert_eq!(d % 8, 0);
        assert_eq!(a.addr(&Addr::Null), Some(0));
        assert_eq!(a.addr(&Addr::Raw(5)), Some(5));
        assert_eq!(a.addr(&Addr::Uffd { off: 0 }), None);
        let end = a.addr(&Addr::PageEnd { back: 16 }).unwrap();
        assert_eq!((end + 16) % 4096, 0);
        let bytes: Vec<u8> = (0..24).collect();
        let m = a.place(Place::Misaligned(3), 0, &bytes).unwrap();
        assert_eq!(m % 8, 3);
        let pe = a.place(Place::PageEnd, 1, &bytes).unwrap();
        assert_eq!((pe + 24) % 4096, 0);
        let mut back = vec![0u8; 24];
        a.read_back(Place::PageEnd, 1, &mut back);
        assert_eq!(back, bytes);
        let ro = a.place(Place::ReadOnly, 0, &bytes).unwrap();
        // SAFETY: reading the read-only page just written.
        assert_eq!(unsafe { *((ro + 5) as *const u8) }, 5);
        assert_eq!(a.place(Place::Buf, 0, &bytes), None);
    }
}
