//! A minimal FUSE server speaking the raw /dev/fuse protocol
//! (include/uapi/linux/fuse.h), for a file whose `->poll` blocks: the
//! root directory holds one regular file `f`; FUSE_POLL requests from the
//! `hold_from`-th on are never answered while the server lives. Killing
//! the server process aborts the connection, which fails every pending
//! request.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kdbus::Errno;
use nix::unistd::Pid;

use super::sys;
use crate::check::{errno_name, skip, TestResult};
use crate::ensure;

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_DESTROY: u32 = 38;
const FUSE_POLL: u32 = 40;
const FUSE_BATCH_FORGET: u32 = 42;

const IN_HEADER: usize = 40;
const FILE_NODE: u64 = 2;

/// Event bytes the server writes to its status pipe.
pub const EV_POLL_ANSWERED: u8 = b'A';
/// A POLL request is being held unanswered.
pub const EV_POLL_HELD: u8 = b'H';

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

/// `struct fuse_attr` (88 bytes) of node `ino`.
fn attr(ino: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(88);
    a.extend_from_slice(&ino.to_ne_bytes()); // ino
    a.extend_from_slice(&[0u8; 8 * 5]); // size, blocks, atime, mtime, ctime
    a.extend_from_slice(&[0u8; 4 * 3]); // *timensec
    let (mode, nlink): (u32, u32) = if ino == 1 {
        (0o040_755, 2)
    } else {
        (0o100_444, 1)
    };
    a.extend_from_slice(&mode.to_ne_bytes());
    a.extend_from_slice(&nlink.to_ne_bytes());
    a.extend_from_slice(&0u32.to_ne_bytes()); // uid
    a.extend_from_slice(&0u32.to_ne_bytes()); // gid
    a.extend_from_slice(&0u32.to_ne_bytes()); // rdev
    a.extend_from_slice(&4096u32.to_ne_bytes()); // blksize
    a.extend_from_slice(&0u32.to_ne_bytes()); // flags
    debug_assert_eq!(a.len(), 88);
    a
}

fn reply(fd: &OwnedFd, unique: u64, error: i32, payload: &[u8]) {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(payload);
    let _ = nix::unistd::write(fd, &out);
}

/// The server loop (runs in the forked server process).
fn serve(fd: &OwnedFd, hold_from: u32, events: &OwnedFd) {
    let mut buf = vec![0u8; (1 << 20) + 4096];
    let mut polls = 0u32;
    loop {
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR) | Err(Errno::ENOENT) | Err(Errno::EAGAIN) => continue,
            Err(_) => return,
        };
        if n < IN_HEADER {
            continue;
        }
        let req = &buf[..n];
        let opcode = u32_at(req, 4);
        let unique = u64_at(req, 8);
        let nodeid = u64_at(req, 16);
        match opcode {
            FUSE_INIT => {
                let mut o = Vec::with_capacity(64);
                o.extend_from_slice(&7u32.to_ne_bytes()); // major
                o.extend_from_slice(&31u32.to_ne_bytes()); // minor
                o.extend_from_slice(&0u32.to_ne_bytes()); // max_readahead
                o.extend_from_slice(&0u32.to_ne_bytes()); // flags
                o.extend_from_slice(&12u16.to_ne_bytes()); // max_background
                o.extend_from_slice(&9u16.to_ne_bytes()); // congestion_threshold
                o.extend_from_slice(&4096u32.to_ne_bytes()); // max_write
                o.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
                o.extend_from_slice(&[0u8; 64 - 28]);
                reply(fd, unique, 0, &o);
            }
            FUSE_LOOKUP => {
                let name = &req[IN_HEADER..];
                let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
                if nodeid == 1 && name == b"f" {
                    let mut o = Vec::with_capacity(128);
                    o.extend_from_slice(&FILE_NODE.to_ne_bytes()); // nodeid
                    o.extend_from_slice(&1u64.to_ne_bytes()); // generation
                    o.extend_from_slice(&3600u64.to_ne_bytes()); // entry_valid
                    o.extend_from_slice(&3600u64.to_ne_bytes()); // attr_valid
                    o.extend_from_slice(&[0u8; 8]); // *_valid_nsec
                    o.extend_from_slice(&attr(FILE_NODE));
                    reply(fd, unique, 0, &o);
                } else {
                    reply(fd, unique, -libc::ENOENT, &[]);
                }
            }
            FUSE_GETATTR => {
                let mut o = Vec::with_capacity(104);
                o.extend_from_slice(&3600u64.to_ne_bytes()); // attr_valid
                o.extend_from_slice(&[0u8; 8]); // attr_valid_nsec, dummy
                o.extend_from_slice(&attr(if nodeid == 1 { 1 } else { FILE_NODE }));
                reply(fd, unique, 0, &o);
            }
            FUSE_OPEN => {
                let mut o = Vec::with_capacity(16);
                o.extend_from_slice(&7u64.to_ne_bytes()); // fh
                o.extend_from_slice(&[0u8; 8]); // open_flags, backing_id
                reply(fd, unique, 0, &o);
            }
            FUSE_POLL => {
                polls += 1;
                if polls >= hold_from {
                    let _ = nix::unistd::write(events, &[EV_POLL_HELD]);
                } else {
                    reply(fd, unique, 0, &[0u8; 8]); // revents 0
                    let _ = nix::unistd::write(events, &[EV_POLL_ANSWERED]);
                }
            }
            FUSE_FLUSH | FUSE_RELEASE | FUSE_DESTROY => reply(fd, unique, 0, &[]),
            FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => {}
            _ => reply(fd, unique, -libc::ENOSYS, &[]),
        }
    }
}

/// A mounted FUSE filesystem served by a forked process.
pub struct FuseMount {
    dir: PathBuf,
    server: Option<Pid>,
    events: OwnedFd,
    seen: Vec<u8>,
}

impl FuseMount {
    /// Mounts a fresh instance on a temporary directory and starts the
    /// server. Skips if the kernel has no FUSE. Call while single-threaded.
    pub fn start(tag: &str, hold_from: u32) -> Result<FuseMount, String> {
        let dev = match sys::open_raw("/dev/fuse", libc::O_RDWR) {
            Ok(d) => d,
            Err(e @ (Errno::ENOENT | Errno::ENODEV | Errno::ENXIO)) => {
                return Err(skip(format!("no FUSE: open /dev/fuse: {}", errno_name(e))).unwrap_err())
            }
            Err(e) => return Err(format!("open /dev/fuse: {}", errno_name(e))),
        };
        let dir = std::env::temp_dir().join(format!("kdbus-fuse-{tag}"));
        let _ = std::fs::create_dir(&dir);
        let opts = format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd());
        let r = nix::mount::mount(
            Some("kdbus-test"),
            &dir,
            Some("fuse"),
            nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
            Some(opts.as_str()),
        );
        match r {
            Ok(()) => {}
            Err(Errno::ENODEV) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(skip("kernel without FUSE (mount -t fuse: ENODEV)").unwrap_err());
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(format!(
                    "mount -t fuse on {}: {}",
                    dir.display(),
                    errno_name(e)
                ));
            }
        }
        let (ev_rd, ev_wr) = crate::check::expect_ok(
            "pipe2",
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        // SAFETY: the test process is single-threaded when it forks.
        match unsafe { nix::unistd::fork() } {
            Err(e) => {
                let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir(&dir);
                Err(format!("fork: {e}"))
            }
            Ok(nix::unistd::ForkResult::Child) => {
                drop(ev_rd);
                let _ = nix::fcntl::fcntl(
                    &ev_wr,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
                );
                serve(&dev, hold_from, &ev_wr);
                // SAFETY: leave the server without running destructors.
                unsafe { libc::_exit(0) }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                // Only the server holds the device: its death aborts the
                // connection.
                drop(dev);
                drop(ev_wr);
                Ok(FuseMount {
                    dir,
                    server: Some(child),
                    events: ev_rd,
                    seen: Vec::new(),
                })
            }
        }
    }

    /// Opens the file `f` read-only.
    pub fn open_file(&self) -> Result<OwnedFd, String> {
        let p = self.dir.join("f");
        sys::open_raw(p.to_str().unwrap_or(""), libc::O_RDONLY)
            .map_err(|e| format!("open {}: {}", p.display(), errno_name(e)))
    }

    fn poll_events(&mut self) {
        let mut b = [0u8; 64];
        while let Ok(n) = nix::unistd::read(&self.events, &mut b) {
            if n == 0 {
                break;
            }
            self.seen.extend_from_slice(&b[..n]);
        }
    }

    /// Waits up to `ms` until the server reported event `ev`.
    pub fn wait_event(&mut self, ev: u8, ms: u64) -> bool {
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            self.poll_events();
            if self.seen.contains(&ev) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The events seen so far, as text.
    pub fn events(&mut self) -> String {
        self.poll_events();
        String::from_utf8_lossy(&self.seen).to_string()
    }

    /// Kills the server: the connection is aborted and every pending
    /// request (a held POLL) fails.
    pub fn abort(&mut self) -> TestResult {
        if let Some(pid) = self.server.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let end = Instant::now() + Duration::from_secs(10);
            while !sys::reap_nohang(pid) {
                ensure!(
                    Instant::now() < end,
                    "the FUSE server did not die within 10 s of SIGKILL"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        let _ = self.abort();
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
