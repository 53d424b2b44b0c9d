//! System helpers of the regression tests: the kernel log since a point in
//! time, helper processes (other uids, a bus owner in its own process),
//! and thin wrappers over syscalls the libc crate has no safe form for
//! (userfaultfd, io_uring, ptys, timerfd, signalfd).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use kdbus::{Bus, Errno, PollFlags};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::check::{errno_name, expect_ok, skip, TestResult};
use crate::ensure;

// -------------------------------------------------------------------------
// The kernel log.

/// Strings that mark a kernel report (the same list as
/// tools/testing/vm/check-log.sh).
const REPORT_PATTERNS: &[&str] = &[
    "Oops",
    "Kernel panic",
    "general protection fault",
    "Unable to handle kernel",
    "kernel BUG at",
    "self-detected stall",
    "detected stalls on CPUs",
    "possible circular locking",
    "inconsistent lock state",
    "possible recursive locking",
    "suspicious RCU usage",
    "INFO: lockdep",
    "DEBUG_LOCKS_WARN_ON",
    "sleeping function called from invalid context",
    "KASAN",
    "UBSAN:",
    "BUG:",
    "WARNING:",
    "Call Trace:",
    "blocked for more than",
];

/// Renders a kernel log line so that it no longer matches the VM log
/// scanner's patterns (test output must not look like a kernel report):
/// lower case, spaces as `_`.
fn defang(line: &str) -> String {
    line.to_lowercase().replace(' ', "_")
}

/// Watches `/dev/kmsg` from the moment it is created: [`KmsgWatch::check`]
/// fails if a kernel report was logged since.
pub struct KmsgWatch {
    fd: OwnedFd,
}

impl KmsgWatch {
    /// Starts watching (positions at the end of the log).
    pub fn start() -> Result<KmsgWatch, String> {
        let fd = expect_ok(
            "open /dev/kmsg",
            nix::fcntl::open(
                "/dev/kmsg",
                nix::fcntl::OFlag::O_RDONLY
                    | nix::fcntl::OFlag::O_NONBLOCK
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            ),
        )?;
        // SAFETY: lseek on an owned descriptor.
        unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
        Ok(KmsgWatch { fd })
    }

    /// The kernel log lines (message text) logged since the start or the
    /// previous call.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    // "prio,seq,ts,flags;text\n KEY=value..."
                    let first = rec.lines().next().unwrap_or("");
                    let text = first.split_once(';').map_or(first, |(_, t)| t);
                    out.push(text.to_owned());
                }
                // Records were overwritten before we read them: go on.
                Err(Errno::EPIPE) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        out
    }

    /// Fails if a kernel report (WARNING, BUG, lockdep, KASAN, hung task...)
    /// was logged since the start.
    pub fn check(&self, what: &str) -> TestResult {
        let lines = self.lines();
        let bad: Vec<&String> = lines
            .iter()
            .filter(|l| REPORT_PATTERNS.iter().any(|p| l.contains(p)))
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        let first: Vec<String> = bad.iter().take(3).map(|l| defang(l)).collect();
        Err(format!(
            "{what}: the kernel logged {} report line(s) (shown defanged): {}",
            bad.len(),
            first.join(" | ")
        ))
    }
}

// -------------------------------------------------------------------------
// Helper processes.

/// Drops every id of the calling process to `uid`/`gid` (no supplementary
/// groups).
pub fn become_user(uid: u32, gid: u32) -> Result<(), String> {
    // SAFETY: plain credential syscalls.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(format!("setgroups: {}", errno_name(Errno::last())));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(format!("setresgid {gid}: {}", errno_name(Errno::last())));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(format!("setresuid {uid}: {}", errno_name(Errno::last())));
        }
    }
    Ok(())
}

/// Sets every id of the calling process: real and effective uid and gid
/// (the saved ids follow the effective ones) and the supplementary groups
/// (needs root).
pub fn become_ids(
    ruid: u32,
    euid: u32,
    rgid: u32,
    egid: u32,
    groups: &[u32],
) -> Result<(), String> {
    let g: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: plain credential syscalls; `g` outlives the call.
    unsafe {
        if libc::setgroups(g.len(), g.as_ptr()) != 0 {
            return Err(format!("setgroups {g:?}: {}", errno_name(Errno::last())));
        }
        if libc::setresgid(rgid, egid, egid) != 0 {
            return Err(format!(
                "setresgid {rgid}/{egid}: {}",
                errno_name(Errno::last())
            ));
        }
        if libc::setresuid(ruid, euid, euid) != 0 {
            return Err(format!(
                "setresuid {ruid}/{euid}: {}",
                errno_name(Errno::last())
            ));
        }
    }
    Ok(())
}

/// `CAP_IPC_OWNER`.
pub const CAP_IPC_OWNER: u32 = 15;

/// Drops every id of the calling process to `uid`/`gid` (no supplementary
/// groups) but keeps the capabilities `caps` (bit numbers) effective and
/// permitted, all others dropped (needs root).
pub fn become_user_with_caps(uid: u32, gid: u32, caps: &[u32]) -> Result<(), String> {
    // SAFETY: plain syscall.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_KEEPCAPS: {}", errno_name(Errno::last())));
    }
    become_user(uid, gid)?;
    // struct __user_cap_header_struct (version 3) and two
    // struct __user_cap_data_struct {effective, permitted, inheritable}.
    let mut hdr: [u32; 2] = [0x2008_0522, 0];
    let mut data = [0u32; 6];
    for &c in caps {
        let (word, bit) = ((c / 32) as usize, c % 32);
        data[word * 3] |= 1 << bit;
        data[word * 3 + 1] |= 1 << bit;
    }
    // SAFETY: capset with a valid header and two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, hdr.as_mut_ptr(), data.as_mut_ptr()) };
    if r != 0 {
        return Err(format!("capset {caps:?}: {}", errno_name(Errno::last())));
    }
    Ok(())
}

/// A forked helper process that reports a `Result<(), String>` through a
/// pipe when its closure returns.
pub struct ChildProc {
    pid: Pid,
    rd: OwnedFd,
    reaped: bool,
}

impl ChildProc {
    /// Forks; the child runs `f` and exits without running destructors.
    /// The caller must be single-threaded.
    pub fn spawn(f: impl FnOnce() -> Result<(), String>) -> Result<ChildProc, String> {
        let (rd, wr) = expect_ok("pipe", nix::unistd::pipe())?;
        // SAFETY: the test process is single-threaded when it forks.
        match unsafe { fork() } {
            Err(e) => Err(format!("fork: {e}")),
            Ok(ForkResult::Child) => {
                drop(rd);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                    .unwrap_or_else(|_| Err("child panicked".into()));
                let msg = match r {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("E{e}"),
                };
                let mut b = msg.as_bytes();
                while !b.is_empty() {
                    match nix::unistd::write(&wr, b) {
                        Ok(n) if n > 0 => b = &b[n..],
                        _ => break,
                    }
                }
                // SAFETY: leave the child without running destructors.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => {
                drop(wr);
                Ok(ChildProc {
                    pid: child,
                    rd,
                    reaped: false,
                })
            }
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits up to `ms` for the child's report and reaps it; the child is
    /// killed if it has not reported by then.
    pub fn wait(mut self, ms: u64, what: &str) -> TestResult {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut msg = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = end
                .saturating_duration_since(Instant::now())
                .as_millis()
                .min(1000) as u16;
            let mut fds = [nix::poll::PollFd::new(self.rd.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(left));
            let ready = fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
            if ready {
                match nix::unistd::read(&self.rd, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => msg.extend_from_slice(&buf[..n]),
                    Err(Errno::EINTR) => {}
                    Err(_) => break,
                }
            }
            if Instant::now() >= end {
                self.kill();
                return Err(format!(
                    "{what}: the helper process did not finish within {ms} ms"
                ));
            }
        }
        let _ = waitpid(self.pid, None);
        self.reaped = true;
        let s = String::from_utf8_lossy(&msg).to_string();
        match s.strip_prefix('E') {
            _ if s == "ok" => Ok(()),
            Some(e) => Err(format!("{what}: {e}")),
            None => Err(format!("{what}: the helper process died without a report")),
        }
    }

    fn kill(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
            self.reaped = true;
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `f` in a forked child whose ids are all `uid`/`gid`, waiting up to
/// `ms` for it.
pub fn run_as(uid: u32, gid: u32, ms: u64, f: impl FnOnce() -> TestResult) -> TestResult {
    ChildProc::spawn(|| {
        become_user(uid, gid)?;
        f()
    })?
    .wait(ms, &format!("as uid {uid}"))
}

/// A pipe pair for parent/child choreography: blocking reads with a
/// timeout.
pub struct Chan {
    rd: OwnedFd,
    wr: OwnedFd,
}

impl Chan {
    /// A new channel (both ends in this process until it forks).
    pub fn new() -> Result<Chan, String> {
        let (rd, wr) = expect_ok("pipe2", nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC))?;
        Ok(Chan { rd, wr })
    }

    /// Writes one u64.
    pub fn put(&self, v: u64) -> TestResult {
        ensure!(
            nix::unistd::write(&self.wr, &v.to_ne_bytes()) == Ok(8),
            "write to a helper pipe failed"
        );
        Ok(())
    }

    /// Reads one u64, waiting up to `ms`.
    pub fn get(&self, ms: u64, what: &str) -> Result<u64, String> {
        let mut fds = [nix::poll::PollFd::new(self.rd.as_fd(), PollFlags::POLLIN)];
        let t = ms.min(u16::MAX as u64) as u16;
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(t));
        ensure!(
            fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLIN)),
            "{what}: nothing arrived within {ms} ms"
        );
        let mut b = [0u8; 8];
        let n = nix::unistd::read(&self.rd, &mut b).unwrap_or(0);
        ensure!(n == 8, "{what}: short read ({n} bytes) from a helper pipe");
        Ok(u64::from_ne_bytes(b))
    }
}

/// The owner handle of a bus, held by a helper process so that its
/// `close()` (the bus teardown) can be timed, and can hang, without
/// blocking the test process.
pub struct OwnerProc {
    child: Option<ChildProc>,
    cmd: Chan,
    res: Chan,
}

impl OwnerProc {
    /// Moves `bus` into a helper process; the test process keeps no copy of
    /// the descriptor. Call while single-threaded.
    pub fn spawn(bus: Bus) -> Result<OwnerProc, String> {
        let cmd = Chan::new()?;
        let res = Chan::new()?;
        let bus = std::cell::Cell::new(Some(bus));
        let child = ChildProc::spawn(|| {
            // Wait for the order (EOF: the test is gone).
            cmd.get(600_000, "close order")?;
            let t0 = Instant::now();
            if let Some(b) = bus.take() {
                b.close()
                    .map_err(|e| format!("close of the bus owner: {e}"))?;
            }
            res.put(t0.elapsed().as_millis() as u64)
        })?;
        // The parent's copy of the owner descriptor goes; the child's keeps
        // the bus alive.
        drop(bus.take());
        Ok(OwnerProc {
            child: Some(child),
            cmd,
            res,
        })
    }

    /// Orders the close and waits up to `ms` for it to return; `Ok(None)`
    /// if it did not (the helper stays blocked in `close()`).
    pub fn close_bus(&self, ms: u64) -> Result<Option<u64>, String> {
        self.cmd.put(1)?;
        Ok(self.wait_closed(ms))
    }

    /// Waits up to `ms` more for an ordered close to return; its duration.
    pub fn wait_closed(&self, ms: u64) -> Option<u64> {
        self.res.get(ms, "bus owner close").ok()
    }

    /// Waits up to `ms` for the helper to finish.
    pub fn finish(mut self, ms: u64) -> TestResult {
        match self.child.take() {
            Some(c) => c.wait(ms, "bus owner process"),
            None => Ok(()),
        }
    }
}

/// Waits up to `ms` until `path` no longer exists.
pub fn wait_absent(path: &Path, ms: u64) -> bool {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if std::fs::symlink_metadata(path).is_err() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the process `pid` has ended (reaped or a zombie).
pub fn reap_nohang(pid: Pid) -> bool {
    !matches!(
        waitpid(pid, Some(WaitPidFlag::WNOHANG)),
        Ok(WaitStatus::StillAlive)
    )
}

// -------------------------------------------------------------------------
// File kinds for CANCEL_FD.

fn owned(fd: libc::c_int, what: &str) -> Result<OwnedFd, String> {
    if fd < 0 {
        return Err(format!("{what}: {}", errno_name(Errno::last())));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, flags)` as an `OwnedFd`, with the errno.
pub fn open_raw(path: &str, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A private devpts instance mounted on a temporary directory (used when
/// `/dev/ptmx` has no devpts beside it).
pub struct Devpts {
    dir: std::path::PathBuf,
}

impl Drop for Devpts {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A pseudo terminal: `(master, slave, private devpts mount if one was
/// needed)`. Skips the test if the kernel has no ptys.
pub fn open_pty(tag: &str) -> Result<(OwnedFd, OwnedFd, Option<Devpts>), String> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK;
    let (master, mnt) = match open_raw("/dev/ptmx", flags) {
        Ok(m) => (m, None),
        Err(_) => {
            let dir = std::env::temp_dir().join(format!("kdbus-pts-{tag}"));
            let _ = std::fs::create_dir(&dir);
            let r = nix::mount::mount(
                Some("devpts"),
                &dir,
                Some("devpts"),
                nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620"),
            );
            if let Err(e) = r {
                let _ = std::fs::remove_dir(&dir);
                return Err(skip(format!("no ptys: mount -t devpts failed with {e}")).unwrap_err());
            }
            let d = Devpts { dir };
            let p = d.dir.join("ptmx");
            let m = open_raw(p.to_str().unwrap_or(""), flags)
                .map_err(|e| format!("open {}: {}", p.display(), errno_name(e)))?;
            (m, Some(d))
        }
    };
    // SAFETY: unlockpt on an owned pty master.
    ensure!(
        unsafe { libc::unlockpt(master.as_raw_fd()) } == 0,
        "unlockpt: {}",
        errno_name(Errno::last())
    );
    // TIOCGPTPEER opens the slave of this very master.
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: ioctl on an owned pty master.
    let s = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER as _,
            flags | libc::O_CLOEXEC,
        )
    };
    let slave = owned(s, "TIOCGPTPEER")?;
    Ok((master, slave, mnt))
}

/// A timerfd (CLOCK_MONOTONIC, non-blocking), not armed.
pub fn timerfd() -> Result<OwnedFd, String> {
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    };
    owned(fd, "timerfd_create")
}

/// Arms `fd` to expire once, `ns` nanoseconds from now.
pub fn timerfd_arm(fd: &OwnedFd, ns: i64) -> TestResult {
    let its = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: ns / 1_000_000_000,
            tv_nsec: ns % 1_000_000_000,
        },
    };
    // SAFETY: valid itimerspec; old value not requested.
    let r = unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &its, std::ptr::null_mut()) };
    ensure!(r == 0, "timerfd_settime: {}", errno_name(Errno::last()));
    Ok(())
}

/// Blocks `sig` in the calling thread (threads spawned later inherit the
/// mask) and returns a signalfd for it.
pub fn signalfd_blocked(sig: libc::c_int) -> Result<OwnedFd, String> {
    // SAFETY: sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        ensure!(r == 0, "pthread_sigmask: {r}");
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        owned(fd, "signalfd")
    }
}

/// Reads everything readable from a non-blocking descriptor.
pub fn drain_fd(fd: RawFd) {
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
    }
}

/// Whether `fd` polls readable right now.
pub fn readable_now(fd: RawFd) -> bool {
    // SAFETY: the descriptor is open for the duration of the call.
    let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    kdbus::poll_once(b, PollFlags::POLLIN, 0).is_ok_and(|r| r.contains(PollFlags::POLLIN))
}

// -------------------------------------------------------------------------
// userfaultfd.

const UFFD_API: u64 = 0xaa;
const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xc020_aa04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

/// An anonymous mapping registered with a userfaultfd in MISSING mode: any
/// access to a page not yet populated blocks until the test resolves it.
pub struct Uffd {
    fd: OwnedFd,
    addr: usize,
    len: usize,
}

impl Uffd {
    /// Maps `pages` pages and registers them. Skips if the kernel has no
    /// userfaultfd.
    pub fn new(pages: usize) -> Result<Uffd, String> {
        // SAFETY: plain syscall; kernel faults are handled too (no
        // UFFD_USER_MODE_ONLY).
        let fd = unsafe {
            libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) as libc::c_int
        };
        if fd < 0 {
            let e = Errno::last();
            if e == Errno::ENOSYS {
                return Err(skip("kernel without userfaultfd (ENOSYS)").unwrap_err());
            }
            return Err(format!("userfaultfd: {}", errno_name(e)));
        }
        let fd = owned(fd, "userfaultfd")?;
        let mut api = [UFFD_API, 0u64, 0u64];
        // SAFETY: struct uffdio_api is three u64.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, api.as_mut_ptr()) };
        ensure!(r == 0, "UFFDIO_API: {}", errno_name(Errno::last()));
        let len = pages * kdbus::page_size();
        // SAFETY: a fresh anonymous mapping.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        ensure!(
            addr != libc::MAP_FAILED,
            "mmap: {}",
            errno_name(Errno::last())
        );
        let u = Uffd {
            fd,
            addr: addr as usize,
            len,
        };
        let mut reg = [
            u.addr as u64,
            len as u64,
            UFFDIO_REGISTER_MODE_MISSING,
            0u64,
        ];
        // SAFETY: struct uffdio_register: range {start, len}, mode, ioctls.
        let r = unsafe { libc::ioctl(u.fd.as_raw_fd(), UFFDIO_REGISTER as _, reg.as_mut_ptr()) };
        ensure!(r == 0, "UFFDIO_REGISTER: {}", errno_name(Errno::last()));
        Ok(u)
    }

    /// Start address of the region.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Waits up to `ms` for a page fault in the region; returns its address.
    pub fn wait_fault(&self, ms: u64) -> Result<Option<u64>, String> {
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            let mut msg = [0u8; 32];
            // SAFETY: struct uffd_msg is 32 bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), msg.as_mut_ptr().cast(), 32) };
            if n == 32 {
                if msg[0] == UFFD_EVENT_PAGEFAULT {
                    let a = u64::from_ne_bytes(msg[16..24].try_into().unwrap());
                    return Ok(Some(a));
                }
                continue;
            }
            let e = Errno::last();
            if n < 0 && e != Errno::EAGAIN && e != Errno::EINTR {
                return Err(format!("read of the userfaultfd: {}", errno_name(e)));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resolves the fault on the page at `page_off` with zeroes.
    pub fn zeropage(&self, page_off: usize) -> TestResult {
        let p = kdbus::page_size();
        let mut z = [(self.addr + page_off) as u64, p as u64, 0u64, 0u64];
        // SAFETY: struct uffdio_zeropage: range, mode, result.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_ZEROPAGE as _, z.as_mut_ptr()) };
        ensure!(
            r == 0 || Errno::last() == Errno::EEXIST,
            "UFFDIO_ZEROPAGE: {}",
            errno_name(Errno::last())
        );
        Ok(())
    }

    /// Resolves the fault on the page at `page_off` with `content` (at most
    /// one page; the rest is zero).
    pub fn copy(&self, page_off: usize, content: &[u8]) -> TestResult {
        let p = kdbus::page_size();
        ensure!(content.len() <= p, "UFFDIO_COPY content too long");
        let mut src = vec![0u8; 2 * p];
        let base = (src.as_ptr() as usize).next_multiple_of(p) - src.as_ptr() as usize;
        src[base..base + content.len()].copy_from_slice(content);
        let mut c = [
            (self.addr + page_off) as u64,
            src[base..].as_ptr() as u64,
            p as u64,
            0u64,
            0u64,
        ];
        // SAFETY: struct uffdio_copy: dst, src, len, mode, result; the
        // source page is valid.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_COPY as _, c.as_mut_ptr()) };
        ensure!(
            r == 0 || Errno::last() == Errno::EEXIST,
            "UFFDIO_COPY: {}",
            errno_name(Errno::last())
        );
        Ok(())
    }
}

impl Drop for Uffd {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `new` and is unmapped once;
        // nothing borrows it any more (the faulting SEND has returned).
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

// -------------------------------------------------------------------------
// io_uring.

/// An io_uring instance (`io_uring_setup` with 4 entries). Skips if the
/// kernel has none or it is disabled.
pub fn io_uring() -> Result<OwnedFd, String> {
    let mut params = [0u8; 120];
    // SAFETY: struct io_uring_params is 120 bytes, zeroed.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) } as i32;
    if fd < 0 {
        let e = Errno::last();
        if e == Errno::ENOSYS || e == Errno::EPERM {
            return Err(skip(format!("io_uring_setup: {}", errno_name(e))).unwrap_err());
        }
        return Err(format!("io_uring_setup: {}", errno_name(e)));
    }
    owned(fd, "io_uring_setup")
}

/// IORING_REGISTER_FILES: `files` become the ring's fixed files.
pub fn io_uring_register_files(ring: &OwnedFd, files: &[RawFd]) -> TestResult {
    const IORING_REGISTER_FILES: libc::c_uint = 2;
    // SAFETY: `files` is a valid array of `len` ints.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_FILES,
            files.as_ptr(),
            files.len() as libc::c_uint,
        )
    };
    ensure!(
        r == 0,
        "IORING_REGISTER_FILES: {}",
        errno_name(Errno::last())
    );
    Ok(())
}
