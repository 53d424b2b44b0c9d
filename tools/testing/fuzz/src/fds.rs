//! Descriptors: the zoo of non-kdbus descriptor kinds every process keeps
//! (passed in FDS items, as CANCEL_FD and memfds, and as wrong targets of
//! kdbus ioctls), and the registry that keeps descriptors the kernel
//! installs (RECV of FDS and memfds) from piling up.

use std::collections::HashSet;
use std::ffi::CString;
use std::sync::{Mutex, RwLock};

/// The kinds of descriptors in a process's zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FdKind {
    PipeRead,
    PipeWrite,
    EventFd,
    /// An eventfd with a non-zero count: readable, so it cancels a
    /// synchronous call at once.
    EventFdReadable,
    UnixStream,
    UnixDgram,
    /// 4 KiB, all four seals (what PAYLOAD_MEMFD wants).
    MemfdSealed,
    /// 1 MiB, sealed.
    MemfdBigSealed,
    /// 0 bytes, sealed.
    MemfdEmptySealed,
    MemfdUnsealed,
    MemfdWriteSealOnly,
    DevNull,
    OPath,
    PtyMaster,
    PtySlave,
    /// `/dev/console`: a tty.
    Console,
    /// A timerfd firing every millisecond (readable most of the time).
    TimerFd,
    SignalFd,
    IoUring,
    Epoll,
    /// The kdbusfs root directory.
    KdbusDir,
    RegularFile,
    /// The process's userfaultfd.
    Uffd,
}

impl FdKind {
    /// Every kind.
    pub const ALL: &'static [FdKind] = &[
        FdKind::PipeRead,
        FdKind::PipeWrite,
        FdKind::EventFd,
        FdKind::EventFdReadable,
        FdKind::UnixStream,
        FdKind::UnixDgram,
        FdKind::MemfdSealed,
        FdKind::MemfdBigSealed,
        FdKind::MemfdEmptySealed,
        FdKind::MemfdUnsealed,
        FdKind::MemfdWriteSealOnly,
        FdKind::DevNull,
        FdKind::OPath,
        FdKind::PtyMaster,
        FdKind::PtySlave,
        FdKind::Console,
        FdKind::TimerFd,
        FdKind::SignalFd,
        FdKind::IoUring,
        FdKind::Epoll,
        FdKind::KdbusDir,
        FdKind::RegularFile,
        FdKind::Uffd,
    ];

    /// Kinds a receiver can usually be given in FDS (AF_UNIX sockets are
    /// refused, the rest is accepted).
    pub const PASSABLE: &'static [FdKind] = &[
        FdKind::PipeRead,
        FdKind::PipeWrite,
        FdKind::EventFd,
        FdKind::MemfdSealed,
        FdKind::MemfdUnsealed,
        FdKind::DevNull,
        FdKind::TimerFd,
        FdKind::SignalFd,
        FdKind::Epoll,
        FdKind::RegularFile,
        FdKind::PtySlave,
        FdKind::IoUring,
        FdKind::UnixStream,
    ];

    /// Kinds a CANCEL_FD usually is.
    pub const CANCEL: &'static [FdKind] = &[
        FdKind::EventFd,
        FdKind::EventFd,
        FdKind::EventFdReadable,
        FdKind::PipeRead,
        FdKind::TimerFd,
    ];

    /// The name used by `--exclude-fd`.
    pub fn name(self) -> &'static str {
        match self {
            FdKind::PipeRead => "pipe-read",
            FdKind::PipeWrite => "pipe-write",
            FdKind::EventFd => "eventfd",
            FdKind::EventFdReadable => "eventfd-readable",
            FdKind::UnixStream => "unix-stream",
            FdKind::UnixDgram => "unix-dgram",
            FdKind::MemfdSealed => "memfd-sealed",
            FdKind::MemfdBigSealed => "memfd-big",
            FdKind::MemfdEmptySealed => "memfd-empty",
            FdKind::MemfdUnsealed => "memfd-unsealed",
            FdKind::MemfdWriteSealOnly => "memfd-write-seal",
            FdKind::DevNull => "devnull",
            FdKind::OPath => "opath",
            FdKind::PtyMaster => "pty-master",
            FdKind::PtySlave => "pty-slave",
            FdKind::Console => "console",
            FdKind::TimerFd => "timerfd",
            FdKind::SignalFd => "signalfd",
            FdKind::IoUring => "io_uring",
            FdKind::Epoll => "epoll",
            FdKind::KdbusDir => "kdbus-dir",
            FdKind::RegularFile => "file",
            FdKind::Uffd => "userfaultfd",
        }
    }

    /// The kinds `--exclude-fd NAME` removes: a kind's name, or a group
    /// (`tty` = ptys and the console, `memfd` = every memfd kind).
    pub fn by_name(name: &str) -> Vec<FdKind> {
        match name {
            "tty" => vec![FdKind::PtyMaster, FdKind::PtySlave, FdKind::Console],
            "memfd" => Self::ALL
                .iter()
                .copied()
                .filter(|k| k.name().starts_with("memfd"))
                .collect(),
            _ => Self::ALL
                .iter()
                .copied()
                .filter(|k| k.name() == name)
                .collect(),
        }
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn memfd(size: i64, seals: i32) -> i32 {
    let name = CString::new("kdbus-fuzz").unwrap();
    // SAFETY: plain syscalls on a descriptor this function owns.
    unsafe {
        let fd = libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING);
        if fd < 0 {
            return -1;
        }
        if size > 0 {
            libc::ftruncate(fd, size);
            let data = [0x5au8; 64];
            libc::pwrite(fd, data.as_ptr().cast(), data.len(), 0);
        }
        if seals != 0 {
            libc::fcntl(fd, libc::F_ADD_SEALS, seals);
        }
        fd
    }
}

/// `io_uring_setup(entries, zeroed params)`.
pub fn io_uring_setup() -> i32 {
    let mut params = [0u64; 15]; // struct io_uring_params is 120 bytes
                                 // SAFETY: the params buffer is large enough and owned here.
    unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) as i32 }
}

/// `IORING_REGISTER_FILES` of `fds` into the ring `ring`: the ring then
/// holds references to those files (a kdbus connection sent its own ring
/// would be a reference cycle).
pub fn io_uring_register_files(ring: i32, fds: &[i32]) -> i32 {
    const IORING_REGISTER_FILES: u32 = 2;
    // SAFETY: the array outlives the call; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring,
            IORING_REGISTER_FILES,
            fds.as_ptr(),
            fds.len() as u32,
        )
    };
    if r < 0 {
        last_errno()
    } else {
        0
    }
}

fn open_path(path: &str, flags: i32) -> i32 {
    let p = CString::new(path).unwrap();
    // SAFETY: a NUL-terminated path.
    unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o600) }
}

fn pty_pair() -> (i32, i32) {
    let m = open_path(
        "/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
    );
    if m < 0 {
        return (-1, -1);
    }
    let mut buf = [0 as libc::c_char; 64];
    // SAFETY: m is a pty master; the buffer is large enough for its name.
    let ok = unsafe {
        libc::grantpt(m) == 0
            && libc::unlockpt(m) == 0
            && libc::ptsname_r(m, buf.as_mut_ptr(), buf.len()) == 0
    };
    if !ok {
        return (m, -1);
    }
    // SAFETY: ptsname_r NUL-terminated it.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    (
        m,
        open_path(&name, libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK),
    )
}

/// One descriptor of every kind (−1 where creating it failed or the kind
/// is excluded).
pub struct Zoo {
    fds: Vec<i32>,
}

impl Zoo {
    /// Creates the zoo (in a process that has no other threads yet).
    /// `uffd` is the process's userfaultfd or -1.
    pub fn create(mount: &str, uffd: i32, exclude: &[FdKind]) -> Zoo {
        let mut fds = vec![-1; FdKind::ALL.len()];
        let mut set = |k: FdKind, fd: i32| fds[k as usize] = fd;
        let mut p = [-1i32; 2];
        // SAFETY: plain descriptor-creating syscalls with valid arguments.
        unsafe {
            if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) == 0 {
                set(FdKind::PipeRead, p[0]);
                set(FdKind::PipeWrite, p[1]);
            }
            set(
                FdKind::EventFd,
                libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK),
            );
            set(FdKind::EventFdReadable, libc::eventfd(1, libc::EFD_CLOEXEC));
            let mut s = [-1i32; 2];
            if libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                s.as_mut_ptr(),
            ) == 0
            {
                set(FdKind::UnixStream, s[0]);
            }
            let mut d = [-1i32; 2];
            if libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                0,
                d.as_mut_ptr(),
            ) == 0
            {
                set(FdKind::UnixDgram, d[0]);
            }
            let t = libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
            );
            if t >= 0 {
                let ms = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                let spec = libc::itimerspec {
                    it_interval: ms,
                    it_value: ms,
                };
                libc::timerfd_settime(t, 0, &spec, std::ptr::null_mut());
            }
            set(FdKind::TimerFd, t);
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut mask);
            libc::sigaddset(&mut mask, libc::SIGUSR2);
            set(
                FdKind::SignalFd,
                libc::signalfd(-1, &mask, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK),
            );
            set(FdKind::Epoll, libc::epoll_create1(libc::EPOLL_CLOEXEC));
        }
        let seals = kdbus::consts::MEMFD_SEALS;
        set(FdKind::MemfdSealed, memfd(4096, seals));
        set(FdKind::MemfdBigSealed, memfd(1 << 20, seals));
        set(FdKind::MemfdEmptySealed, memfd(0, seals));
        set(FdKind::MemfdUnsealed, memfd(4096, 0));
        set(FdKind::MemfdWriteSealOnly, memfd(4096, libc::F_SEAL_WRITE));
        set(FdKind::DevNull, open_path("/dev/null", libc::O_RDWR));
        set(FdKind::OPath, open_path("/", libc::O_PATH));
        let (m, s) = pty_pair();
        set(FdKind::PtyMaster, m);
        set(FdKind::PtySlave, s);
        set(
            FdKind::Console,
            open_path(
                "/dev/console",
                libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
            ),
        );
        set(FdKind::IoUring, io_uring_setup());
        set(
            FdKind::KdbusDir,
            open_path(mount, libc::O_RDONLY | libc::O_DIRECTORY),
        );
        // SAFETY: getpid has no preconditions.
        let path = format!("/tmp/kdbus-fuzz-file-{}", unsafe { libc::getpid() });
        let f = open_path(&path, libc::O_RDWR | libc::O_CREAT);
        let _ = std::fs::remove_file(&path);
        set(FdKind::RegularFile, f);
        set(FdKind::Uffd, uffd);
        for k in exclude {
            let fd = fds[*k as usize];
            if fd >= 0 && *k != FdKind::Uffd {
                // SAFETY: closing a descriptor this function created.
                unsafe { libc::close(fd) };
            }
            fds[*k as usize] = -1;
        }
        Zoo { fds }
    }

    /// The descriptor of kind `k` (-1 if there is none).
    pub fn fd(&self, k: FdKind) -> i32 {
        self.fds[k as usize]
    }

    /// All valid descriptors of the zoo.
    pub fn all(&self) -> impl Iterator<Item = i32> + '_ {
        self.fds.iter().copied().filter(|&fd| fd >= 0)
    }

    /// The kinds that could be created, e.g. for the start-up report.
    pub fn available(&self) -> Vec<&'static str> {
        FdKind::ALL
            .iter()
            .filter(|k| self.fds[**k as usize] >= 0)
            .map(|k| k.name())
            .collect()
    }
}

/// The descriptors a process knows it owns. Everything else above 2 was
/// installed by the kernel (received FDS and memfds) and is closed by
/// [`Registry::sweep`].
///
/// Creating or closing a known descriptor happens under a read lock of
/// `gate` (so a sweep never sees a new descriptor before it is known, nor
/// a known one after it was forgotten but before it is closed); a sweep
/// takes the write lock.
#[derive(Default)]
pub struct Registry {
    /// Held shared while known descriptors are created or closed.
    pub gate: RwLock<()>,
    known: Mutex<HashSet<i32>>,
}

impl Registry {
    /// Records `fd` (ignores negative numbers).
    pub fn add(&self, fd: i32) {
        if fd >= 0 {
            self.known.lock().unwrap().insert(fd);
        }
    }

    /// Forgets `fd`.
    pub fn remove(&self, fd: i32) {
        self.known.lock().unwrap().remove(&fd);
    }

    /// Closes every descriptor above 2 that is not known. Returns how many
    /// were closed, or `None` if descriptors are being created right now.
    pub fn sweep(&self) -> Option<usize> {
        let _g = self.gate.try_write().ok()?;
        let open: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .ok()?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        let known = self.known.lock().unwrap();
        let mut n = 0;
        for fd in open {
            if fd > 2 && !known.contains(&fd) {
                // SAFETY: nobody in this process owns the descriptor (the
                // kernel installed it for a received message); the one
                // read_dir used is already closed (EBADF, harmless).
                if unsafe { libc::close(fd) } == 0 {
                    n += 1;
                }
            }
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_groups_resolve() {
        let mut names: Vec<_> = FdKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FdKind::ALL.len());
        assert_eq!(FdKind::by_name("tty").len(), 3);
        assert_eq!(FdKind::by_name("memfd").len(), 5);
        assert_eq!(FdKind::by_name("io_uring"), vec![FdKind::IoUring]);
        assert!(FdKind::by_name("nonsense").is_empty());
        for (i, k) in FdKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn zoo_and_sweep() {
        let zoo = Zoo::create("/", -1, &[FdKind::Console]);
        assert!(zoo.fd(FdKind::PipeRead) >= 0);
        assert!(zoo.fd(FdKind::MemfdSealed) >= 0);
        assert_eq!(zoo.fd(FdKind::Console), -1);
        let reg = Registry::default();
        for fd in zoo.all() {
            reg.add(fd);
        }
        // A descriptor the registry does not know is swept.
        // SAFETY: plain syscall.
        let stray = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(stray > 2);
        // Other tests' descriptors would be swept too: keep the test's own
        // process consistent by registering everything else that is open.
        for e in std::fs::read_dir("/proc/self/fd").unwrap() {
            let fd: i32 = e.unwrap().file_name().to_str().unwrap().parse().unwrap();
            if fd != stray {
                reg.add(fd);
            }
        }
        assert!(reg.sweep().unwrap() >= 1);
        // SAFETY: probing whether the descriptor is still open.
        assert_eq!(unsafe { libc::fcntl(stray, libc::F_GETFD) }, -1);
        for fd in zoo.all() {
            // SAFETY: closing the zoo created above.
            unsafe { libc::close(fd) };
        }
    }
}
