//! Payload contents, their spot checks, sealed memfds and a few libc
//! wrappers shared by the kdbus and socket sides.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::clock::Timer;

use crate::timing::Failure;

/// The byte at position `i` of every payload.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// A payload of `len` bytes (all pages touched).
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// Checks the first, middle and last bytes of a received payload (reading
/// every byte would add a pass over the data that none of the transports
/// needs).
pub fn check(who: &str, got: &[u8], want_len: usize) -> Result<(), Failure> {
    if got.len() != want_len {
        return Err(Failure::bad(
            "CHECK",
            who,
            format!("payload of {} bytes, expected {want_len}", got.len()),
        ));
    }
    for i in [0, want_len / 2, want_len.saturating_sub(1)] {
        if i < got.len() && got[i] != pattern(i) {
            return Err(Failure::bad(
                "CHECK",
                who,
                format!(
                    "payload byte {i} is {:#x}, expected {:#x}",
                    got[i],
                    pattern(i)
                ),
            ));
        }
    }
    Ok(())
}

/// How a memfd receiver looks at the mapped data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Reads the first and last bytes (and the middle one) only.
    Ends,
    /// Also reads one byte of every 4 KiB page (every page is faulted in).
    Pages,
}

/// Reads `len` bytes at `p` as `touch` says and checks the spot bytes.
///
/// # Safety
///
/// `p` must be valid for reads of `len` bytes.
pub unsafe fn touch(who: &str, p: *const u8, len: usize, touch: Touch) -> Result<(), Failure> {
    if touch == Touch::Pages {
        let mut sum = 0u8;
        let mut i = 0;
        while i < len {
            // SAFETY: i < len, inside the readable range.
            sum = sum.wrapping_add(unsafe { p.add(i).read_volatile() });
            i += 4096;
        }
        std::hint::black_box(sum);
    }
    // SAFETY: the caller guarantees the range.
    let s = unsafe { std::slice::from_raw_parts(p, len) };
    check(who, s, len)
}

/// `memfd_create` + `write` of `data` + all four seals. Returns the fd and
/// how long that took.
pub fn sealed_memfd(data: &[u8]) -> Result<(OwnedFd, Duration), Failure> {
    let who = "sender memfd";
    let t0 = Timer::start();
    // SAFETY: a NUL-terminated name and valid flags.
    let fd = unsafe {
        libc::memfd_create(
            c"kdbus-bench".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(Failure::last("memfd_create", who));
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    write_all(fd.as_raw_fd(), data).map_err(|e| e.also(who))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an owned descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(Failure::last("F_ADD_SEALS", who));
    }
    Ok((fd, Duration::from_secs_f64(t0.secs())))
}

/// `write()` until all of `buf` is written.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), Failure> {
    while !buf.is_empty() {
        // SAFETY: buf is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if kdbus::Errno::last() == kdbus::Errno::EINTR {
                continue;
            }
            return Err(Failure::last("write", "writer"));
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// `read()` until `buf` is full. `Ok(false)` on end of file before the
/// first byte; end of file later is an error.
pub fn read_exact(fd: RawFd, buf: &mut [u8]) -> Result<bool, Failure> {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the tail of buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n < 0 {
            if kdbus::Errno::last() == kdbus::Errno::EINTR {
                continue;
            }
            return Err(Failure::last("read", "reader"));
        }
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(Failure::bad(
                "read",
                "reader",
                format!("end of file after {got} of {} bytes", buf.len()),
            ));
        }
        got += n as usize;
    }
    Ok(true)
}

/// Polls `fd` for `POLLIN` for up to `timeout_ms`; `Ok(false)` on timeout.
/// `POLLERR`/`POLLHUP`/`POLLNVAL` without `POLLIN` is an error.
pub fn poll_in(fd: RawFd, timeout_ms: i32, who: &str) -> Result<bool, Failure> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if n < 0 {
            if kdbus::Errno::last() == kdbus::Errno::EINTR {
                continue;
            }
            return Err(Failure::last("poll", who));
        }
        if n == 0 {
            return Ok(false);
        }
        if p.revents & libc::POLLIN != 0 {
            return Ok(true);
        }
        return Err(Failure::bad(
            "poll",
            who,
            format!("revents {:#x} without POLLIN", p.revents),
        ));
    }
}

/// The CPU server threads are pinned to (`-1`: not pinned).
static SERVER_CPU: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Pins the calling thread to `cpu` (`< 0`: no-op).
pub fn pin_to(cpu: i32) -> Result<(), Failure> {
    if cpu < 0 {
        return Ok(());
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(Failure::last(
                "sched_setaffinity",
                format!("pinning to CPU {cpu}"),
            ));
        }
    }
    Ok(())
}

/// Allows the calling thread on every CPU again.
fn unpin() -> Result<(), Failure> {
    // SAFETY: as in pin_to.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(Failure::last("sched_setaffinity", "unpinning"));
        }
    }
    Ok(())
}

/// Where the client (the measuring thread) and the server threads run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Wherever the scheduler puts them.
    None,
    /// Both on CPU 0.
    Same,
    /// Client on CPU 0, server on CPU 1.
    Split,
}

impl Pin {
    pub fn parse(s: &str) -> Option<Pin> {
        match s {
            "none" => Some(Pin::None),
            "same" => Some(Pin::Same),
            "split" => Some(Pin::Split),
            _ => None,
        }
    }

    /// "client/server" CPUs, for the tables.
    pub fn cpus(self) -> &'static str {
        match self {
            Pin::None => "any",
            Pin::Same => "0/0",
            Pin::Split => "0/1",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Pin::None => "client and server threads not pinned",
            Pin::Same => "client and server threads both pinned to CPU 0",
            Pin::Split => "client thread pinned to CPU 0, server thread to CPU 1",
        }
    }

    /// Pins the calling (client) thread and sets where servers go.
    pub fn apply(self) -> Result<(), Failure> {
        let (client, server) = match self {
            Pin::None => (-1, -1),
            Pin::Same => (0, 0),
            Pin::Split => (0, 1),
        };
        if client < 0 {
            unpin()?;
        } else {
            pin_to(client)?;
        }
        SERVER_CPU.store(server, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Pins the calling (server) thread as set by [`set_server_cpu`].
pub fn pin_server() -> Result<(), Failure> {
    pin_to(SERVER_CPU.load(std::sync::atomic::Ordering::Relaxed))
}

/// `CLOCK_MONOTONIC` now, in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_and_check() {
        let p = payload(1000);
        assert_eq!(p[251], 0);
        check("t", &p, 1000).unwrap();
        assert!(check("t", &p[..999], 1000).is_err());
        let mut q = p.clone();
        q[999] ^= 1;
        assert!(check("t", &q, 1000).is_err());
        check("t", &payload(1), 1).unwrap();
    }

    #[test]
    fn memfd_is_sealed_and_readable() {
        let data = payload(3 * 4096 + 5);
        let (fd, _) = sealed_memfd(&data).unwrap();
        // SAFETY: fcntl on an owned fd.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(
            seals,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL
        );
        let m = kdbus::Mmap::map_readonly(&fd, data.len()).unwrap();
        // SAFETY: the mapping covers data.len() readable bytes.
        unsafe { touch("t", m.as_ptr(), data.len(), Touch::Pages).unwrap() };
    }
}
