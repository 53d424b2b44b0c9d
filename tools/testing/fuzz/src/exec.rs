//! The executor: a fuzz process's descriptor table, its worker threads
//! running generated operations against the kernel, and what each
//! successful command changes in the table.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{CmdBuf, ItemIter, MapFlags, Mmap, ProtFlags};

use crate::cmds::{self, CmdKind, CmdSpec, Generator, Op, OpenWhat, Post, Rendered, Resolve};
use crate::fds::{self, FdKind, Registry, Zoo};
use crate::items::{self, Addr, FdRef};
use crate::mem::{Arena, Uffd};
use crate::mutate::Place;
use crate::rng::{derive, Rng};
use crate::state::{SlotKind, SlotView, View, SLOTS};
use crate::stats::Stats;

/// Settings of a run, shared by every process.
#[derive(Debug, Clone)]
pub struct Config {
    pub mount: String,
    pub seed: u64,
    pub procs: usize,
    pub threads: usize,
    pub duration: Duration,
    pub mutate_pct: u32,
    pub exclude: Vec<FdKind>,
    pub uffd: bool,
    pub uffd_long: Duration,
}

/// Most slices remembered per connection for a later FREE.
const MAX_OFFSETS: usize = 24;
/// Most received calls remembered per connection for a reply.
const MAX_CALLS: usize = 8;

struct Slot {
    fd: i32,
    view: SlotView,
    pool: Option<Arc<Mmap>>,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            fd: -1,
            view: SlotView::default(),
            pool: None,
        }
    }
}

/// One fuzz process.
pub struct Proc {
    cfg: Config,
    index: usize,
    slots: Mutex<Vec<Slot>>,
    reg: Registry,
    zoo: Zoo,
    uffd: Option<Uffd>,
    max_id: AtomicU64,
    /// Fork children that could not be reaped in time.
    unreaped: Mutex<Vec<i32>>,
    /// The pipe to the parent (closed in fork children).
    report_fd: i32,
}

/// Copies `len` bytes at `off` of a pool mapping through the kernel
/// (`process_vm_readv` on ourselves): a page that cannot be read yields
/// `None` instead of SIGBUS/SIGSEGV.
fn pool_read(pool: &Mmap, off: u64, len: usize) -> Option<Vec<u8>> {
    let end = off.checked_add(len as u64)?;
    if end > pool.len() as u64 {
        return None;
    }
    let mut out = vec![0u8; len];
    let local = libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: (pool.as_ptr() as usize + off as usize) as *mut _,
        iov_len: len,
    };
    // SAFETY: reads our own memory into an owned buffer; the kernel
    // checks the source range.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    (n == len as isize).then_some(out)
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ioctl(fd, req, arg)`: 0 or the errno.
fn raw_ioctl(fd: i32, req: u32, arg: u64) -> i32 {
    // SAFETY: the kernel validates fd, request and pointer; every pointer
    // the fuzzer passes is either memory it owns (sized so the kernel
    // cannot write past it, see cmds::stream) or memory it expects the
    // kernel to refuse.
    if unsafe { libc::ioctl(fd, req as _, arg as usize) } == 0 {
        0
    } else {
        errno()
    }
}

struct Res<'a> {
    proc: &'a Proc,
    arena: &'a Arena,
    keep: Vec<Arc<Mmap>>,
}

impl Resolve for Res<'_> {
    fn fd(&mut self, f: FdRef) -> i32 {
        match f {
            FdRef::Slot(i) => self.proc.slots.lock().unwrap()[i as usize % SLOTS].fd,
            FdRef::Zoo(k) => self.proc.zoo.fd(k),
            // stdin/stdout/stderr are the console: a tty, excluded with
            // the tty kinds.
            FdRef::Raw(0..=2) if self.proc.cfg.exclude.contains(&FdKind::Console) => -1,
            FdRef::Raw(n) => n,
        }
    }

    fn addr(&mut self, a: Addr) -> u64 {
        match a {
            Addr::Pool { slot, off } => {
                let pool = self.proc.slots.lock().unwrap()[slot as usize % SLOTS]
                    .pool
                    .clone();
                match pool {
                    Some(p) => {
                        let a = p.as_ptr() as u64 + off % p.len() as u64;
                        self.keep.push(p);
                        a
                    }
                    None => items::BAD_ADDRS[1],
                }
            }
            Addr::Uffd { off } => match &self.proc.uffd {
                Some(u) => u.addr(off),
                None => items::BAD_ADDRS[2],
            },
            other => self.arena.addr(&other).expect("arena address"),
        }
    }

    fn place(&mut self, p: Place, area: usize, buf: &mut CmdBuf) -> u64 {
        match p {
            Place::Buf => buf.as_mut_ptr() as u64,
            Place::At(a) => self.addr(a),
            _ => self
                .arena
                .place(p, area, buf.as_bytes())
                .expect("copy place"),
        }
    }

    fn now_ns(&mut self) -> u64 {
        kdbus::monotonic_ns()
    }
}

fn op_name(cmd: &CmdSpec) -> &'static str {
    if cmd.request != cmd.kind.request() {
        "ioctl(other-nr)"
    } else if cmd.kind == CmdKind::Send && cmd.flags & SEND_SYNC_REPLY != 0 {
        "SEND_SYNC"
    } else {
        cmd.kind.name()
    }
}

impl Proc {
    fn new(cfg: Config, index: usize, report_fd: i32) -> Proc {
        let uffd = if cfg.uffd {
            Uffd::create(cfg.uffd_long)
        } else {
            None
        };
        let zoo = Zoo::create(&cfg.mount, uffd.as_ref().map_or(-1, |u| u.fd), &cfg.exclude);
        let reg = Registry::default();
        for fd in zoo.all() {
            reg.add(fd);
        }
        reg.add(report_fd);
        Proc {
            cfg,
            index,
            slots: Mutex::new((0..SLOTS).map(|_| Slot::empty()).collect()),
            reg,
            zoo,
            uffd,
            max_id: AtomicU64::new(0),
            unreaped: Mutex::new(Vec::new()),
            report_fd,
        }
    }

    fn view(&self) -> View {
        let slots = self.slots.lock().unwrap();
        View {
            slots: slots.iter().map(|s| s.view.clone()).collect(),
            max_id: self.max_id.load(Ordering::Relaxed),
        }
    }

    /// Puts `fd` into `slot` and closes what was there. The caller holds
    /// the registry gate and has registered `fd`.
    fn install(&self, slot: u8, fd: i32, view: SlotView) {
        let old = {
            let mut slots = self.slots.lock().unwrap();
            std::mem::replace(
                &mut slots[slot as usize % SLOTS],
                Slot {
                    fd,
                    view,
                    pool: None,
                },
            )
        };
        self.close_slot(old);
    }

    fn close_slot(&self, old: Slot) -> i32 {
        if old.fd < 0 {
            return libc::EBADF;
        }
        self.reg.remove(old.fd);
        drop(old.pool);
        // SAFETY: the slot owned the descriptor and gave it up above.
        if unsafe { libc::close(old.fd) } == 0 {
            0
        } else {
            errno()
        }
    }

    /// Runs `f` on the slot `i` if it still holds `fd`.
    fn with_slot(&self, target: FdRef, fd: i32, f: impl FnOnce(&mut Slot)) {
        if let FdRef::Slot(i) = target {
            let mut slots = self.slots.lock().unwrap();
            let s = &mut slots[i as usize % SLOTS];
            if s.fd == fd && fd >= 0 {
                f(s);
            }
        }
    }

    fn exec(&self, op: &Op, arena: &Arena, st: &mut Stats) {
        match op {
            Op::Open { slot, what } => self.open(*slot, *what, st),
            Op::Ioctl { target, cmd, post } => self.ioctl(*target, cmd, post, arena, st),
            Op::Mmap {
                target,
                len,
                prot,
                shared,
                offset,
                keep,
            } => {
                let mut res = Res {
                    proc: self,
                    arena,
                    keep: Vec::new(),
                };
                let fd = res.fd(*target);
                let flags = if *shared {
                    MapFlags::MAP_SHARED
                } else {
                    MapFlags::MAP_PRIVATE
                };
                // SAFETY: only borrowed for the mmap call; a stale number
                // just fails (EBADF) or maps another file harmlessly.
                let bfd = unsafe { BorrowedFd::borrow_raw(fd.max(0)) };
                let r = if fd < 0 {
                    Err(kdbus::Errno::EBADF)
                } else {
                    Mmap::map(
                        bfd,
                        *len as usize,
                        ProtFlags::from_bits_retain(*prot),
                        flags,
                        *offset,
                    )
                };
                st.record("mmap", r.as_ref().err().map_or(0, |e| *e as i32));
                if let Ok(m) = r {
                    if *keep && *prot == libc::PROT_READ && *offset == 0 && *shared {
                        let m = Arc::new(m);
                        let mut old = None;
                        self.with_slot(*target, fd, |s| {
                            if s.view.kind == SlotKind::Conn && *len <= s.view.pool_size {
                                old = s.pool.replace(m.clone());
                                s.view.mapped = true;
                            }
                        });
                        drop(old);
                    }
                }
            }
            Op::Munmap { slot } => {
                let old = {
                    let mut slots = self.slots.lock().unwrap();
                    let s = &mut slots[*slot as usize % SLOTS];
                    s.view.mapped = false;
                    s.pool.take()
                };
                st.record("munmap", if old.is_some() { 0 } else { libc::EINVAL });
                drop(old);
            }
            Op::Poll { fds, timeout_ms } => {
                let mut res = Res {
                    proc: self,
                    arena,
                    keep: Vec::new(),
                };
                let mut p: Vec<libc::pollfd> = fds
                    .iter()
                    .map(|(f, ev)| libc::pollfd {
                        fd: res.fd(*f),
                        events: *ev,
                        revents: 0,
                    })
                    .collect();
                // SAFETY: a valid pollfd array.
                let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as _, *timeout_ms) };
                st.record("poll", if r < 0 { errno() } else { 0 });
            }
            Op::Close { slot } => {
                let _g = self.reg.gate.read().unwrap();
                let old = std::mem::replace(
                    &mut self.slots.lock().unwrap()[*slot as usize % SLOTS],
                    Slot::empty(),
                );
                let e = self.close_slot(old);
                st.record("close", e);
            }
            Op::Dup { slot, to } => {
                let _g = self.reg.gate.read().unwrap();
                let (fd, mut view) = {
                    let s = &self.slots.lock().unwrap()[*slot as usize % SLOTS];
                    (s.fd, s.view.clone())
                };
                // SAFETY: dup has no memory-safety preconditions.
                let nfd = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
                st.record("dup", if nfd < 0 { errno() } else { 0 });
                if nfd >= 0 {
                    self.reg.add(nfd);
                    view.mapped = false;
                    view.offsets.clear();
                    view.calls.clear();
                    self.install(*to, nfd, view);
                }
            }
            Op::Fork { steps, close } => self.fork(steps, close, arena, st),
            Op::Uring { to, files } => {
                let _g = self.reg.gate.read().unwrap();
                let ring = fds::io_uring_setup();
                if ring < 0 {
                    st.record("io_uring", errno());
                    return;
                }
                self.reg.add(ring);
                let mut res = Res {
                    proc: self,
                    arena,
                    keep: Vec::new(),
                };
                let nums: Vec<i32> = files.iter().map(|f| res.fd(*f)).collect();
                st.record("io_uring", fds::io_uring_register_files(ring, &nums));
                self.install(
                    *to,
                    ring,
                    SlotView {
                        kind: SlotKind::Ring,
                        ..SlotView::default()
                    },
                );
            }
            Op::EpollAdd { target } => {
                let ep = self.zoo.fd(FdKind::Epoll);
                let mut res = Res {
                    proc: self,
                    arena,
                    keep: Vec::new(),
                };
                let fd = res.fd(*target);
                let mut ev = libc::epoll_event {
                    events: (libc::EPOLLIN | libc::EPOLLOUT) as u32,
                    u64: fd as u64,
                };
                // SAFETY: epoll calls with owned buffers.
                unsafe {
                    let r = libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                    st.record("epoll", if r < 0 { errno() } else { 0 });
                    let mut out = [libc::epoll_event { events: 0, u64: 0 }; 8];
                    let r = libc::epoll_wait(ep, out.as_mut_ptr(), 8, 0);
                    st.record("epoll", if r < 0 { errno() } else { 0 });
                }
            }
            Op::UffdRearm => {
                if let Some(u) = &self.uffd {
                    u.rearm();
                }
                st.record("uffd-rearm", 0);
            }
        }
    }

    fn open(&self, slot: u8, what: OpenWhat, st: &mut Stats) {
        let m = &self.cfg.mount;
        let (path, kind, bus, flags) = match what {
            OpenWhat::Control => (format!("{m}/control"), SlotKind::Control, 0, libc::O_RDWR),
            OpenWhat::Endpoint { bus } => (
                format!("{m}/{}/bus", items::bus_name(bus)),
                SlotKind::Endpoint,
                bus,
                libc::O_RDWR,
            ),
            OpenWhat::CustomEndpoint { bus, ep } => (
                format!("{m}/{}/{}", items::bus_name(bus), items::endpoint_name(ep)),
                SlotKind::CustomEndpoint,
                bus,
                libc::O_RDWR,
            ),
            OpenWhat::BusDir { bus } => (
                format!("{m}/{}", items::bus_name(bus)),
                SlotKind::Other,
                bus,
                libc::O_RDONLY | libc::O_DIRECTORY,
            ),
            OpenWhat::Root => (
                m.clone(),
                SlotKind::Other,
                0,
                libc::O_RDONLY | libc::O_DIRECTORY,
            ),
        };
        let c = std::ffi::CString::new(path).unwrap();
        let _g = self.reg.gate.read().unwrap();
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        st.record("open", if fd < 0 { errno() } else { 0 });
        if fd >= 0 {
            self.reg.add(fd);
            self.install(
                slot,
                fd,
                SlotView {
                    kind,
                    bus,
                    bloom: 64,
                    ..SlotView::default()
                },
            );
        }
    }

    fn free(&self, fd: i32, offset: u64, st: &mut Stats) {
        let mut c = CmdBuf::free(offset);
        st.record(
            "FREE",
            raw_ioctl(fd, CmdKind::Free.request(), c.as_mut_ptr() as u64),
        );
    }

    fn remember(&self, s: &mut Slot, offset: u64) -> Option<u64> {
        s.view.offsets.push(offset);
        if s.view.offsets.len() > MAX_OFFSETS {
            Some(s.view.offsets.remove(0))
        } else {
            None
        }
    }

    fn ioctl(&self, target: FdRef, spec: &CmdSpec, post: &Post, arena: &Arena, st: &mut Stats) {
        let mut res = Res {
            proc: self,
            arena,
            keep: Vec::new(),
        };
        let fd = res.fd(target);
        let mut rd = cmds::render(spec, &mut res);
        // Foreign ioctl numbers only go to kdbus handles: on the zoo's tty
        // or userfaultfd they could reconfigure the console or the fuzzer.
        if (rd.request >> 8) & 0xff != 0x95 && !matches!(target, FdRef::Slot(_)) {
            rd.request = spec.kind.request();
        }
        let e = raw_ioctl(fd, rd.request, rd.arg);
        arena.read_back(spec.place, 0, rd.cmd.as_bytes_mut());
        st.record(
            if rd.request == spec.request {
                op_name(spec)
            } else {
                spec.kind.name()
            },
            e,
        );
        if e == libc::ECONNRESET || e == libc::ESHUTDOWN {
            self.with_slot(target, fd, |s| s.view.dead = true);
        }
        let usable = e == 0
            && !spec.negotiates()
            && rd.request == spec.kind.request()
            && matches!(spec.place, Place::Buf | Place::PageEnd);
        if usable {
            self.after(target, fd, spec, post, &rd, st);
        }
        drop(rd);
        drop(res);
    }

    /// Bookkeeping after a successful command.
    fn after(
        &self,
        target: FdRef,
        fd: i32,
        spec: &CmdSpec,
        post: &Post,
        rd: &Rendered,
        st: &mut Stats,
    ) {
        let c = &rd.cmd;
        let mut to_free: Vec<u64> = Vec::new();
        match spec.kind {
            CmdKind::BusMake => self.with_slot(target, fd, |s| {
                if s.view.kind == SlotKind::Control {
                    s.view.kind = SlotKind::BusOwner;
                    s.view.bus = post.bus;
                }
            }),
            CmdKind::EndpointMake => self.with_slot(target, fd, |s| {
                if s.view.kind == SlotKind::Endpoint {
                    s.view.kind = SlotKind::EndpointOwner;
                }
            }),
            CmdKind::Hello => {
                let id = c.u64_at(48);
                let pool_size = c.u64_at(56);
                let offset = c.u64_at(64);
                let items_size = c.u64_at(72);
                self.max_id.fetch_max(id, Ordering::Relaxed);
                let pool = if post.map_pool && pool_size <= 1 << 30 {
                    // SAFETY: borrowed for the call only.
                    let r = Mmap::map_readonly(
                        unsafe { BorrowedFd::borrow_raw(fd) },
                        pool_size as usize,
                    );
                    st.record("mmap", r.as_ref().err().map_or(0, |e| *e as i32));
                    r.ok().map(Arc::new)
                } else {
                    None
                };
                let mut bloom = 64;
                if let Some(p) = &pool {
                    if let Some(b) = pool_read(p, offset, (items_size as usize).min(4096)) {
                        for it in ItemIter::new(&b).flatten() {
                            if let Some((size, _)) = it.as_bloom_parameter() {
                                bloom = size;
                            }
                        }
                    }
                }
                self.with_slot(target, fd, |s| {
                    if matches!(s.view.kind, SlotKind::Endpoint | SlotKind::CustomEndpoint) {
                        s.view = SlotView {
                            kind: SlotKind::Conn,
                            bus: s.view.bus,
                            id,
                            hello_flags: spec.flags,
                            pool_size,
                            bloom,
                            mapped: pool.is_some(),
                            ..SlotView::default()
                        };
                        s.pool = pool;
                    }
                });
                if post.free {
                    to_free.push(offset);
                }
            }
            CmdKind::Byebye => self.with_slot(target, fd, |s| s.view.dead = true),
            CmdKind::Free => {
                if let Some(off) = post.offset {
                    self.with_slot(target, fd, |s| s.view.offsets.retain(|&o| o != off));
                }
            }
            CmdKind::ConnInfo | CmdKind::BusCreatorInfo | CmdKind::List => {
                let off = c.u64_at(if spec.kind == CmdKind::List { 24 } else { 40 });
                if post.free {
                    to_free.push(off);
                } else {
                    self.with_slot(target, fd, |s| to_free.extend(self.remember(s, off)));
                }
            }
            CmdKind::Send => {
                if let Some(call) = post.reply {
                    self.with_slot(target, fd, |s| s.view.calls.retain(|&x| x != call));
                }
                if spec.flags & SEND_SYNC_REPLY != 0 {
                    let off = c.u64_at(kdbus::send_off::REPLY_OFFSET);
                    if post.free {
                        to_free.push(off);
                    } else {
                        self.with_slot(target, fd, |s| to_free.extend(self.remember(s, off)));
                    }
                }
            }
            CmdKind::Recv if spec.flags & RECV_DROP == 0 => {
                let off = c.u64_at(kdbus::recv_off::MSG_OFFSET);
                let peek = spec.flags & RECV_PEEK != 0;
                let free_now = post.free;
                self.with_slot(target, fd, |s| {
                    let hdr = s.pool.as_ref().and_then(|p| pool_read(p, off, 64));
                    if let Some(h) = hdr {
                        let w = |i: usize| u64::from_ne_bytes(h[i..i + 8].try_into().unwrap());
                        let (flags, src, cookie) = (w(8), w(32), w(48));
                        if flags & MSG_EXPECT_REPLY != 0 && src != 0 && !peek {
                            s.view.calls.push((src, cookie));
                            if s.view.calls.len() > MAX_CALLS {
                                s.view.calls.remove(0);
                            }
                        }
                    }
                    if !free_now {
                        to_free.extend(self.remember(s, off));
                    }
                });
                if free_now {
                    to_free.push(off);
                }
            }
            _ => {}
        }
        for off in to_free {
            self.free(fd, off, st);
        }
    }

    fn fork(&self, steps: &[(FdRef, CmdSpec)], close: &[u8], arena: &Arena, st: &mut Stats) {
        let mut res = Res {
            proc: self,
            arena,
            keep: Vec::new(),
        };
        let mut prepared: Vec<(i32, Rendered)> = Vec::new();
        for (t, spec) in steps {
            let fd = res.fd(*t);
            prepared.push((fd, cmds::render(spec, &mut res)));
        }
        let close_fds: Vec<i32> = close.iter().map(|&s| res.fd(FdRef::Slot(s))).collect();
        // SAFETY: the child only issues syscalls on pre-built buffers and
        // leaves with _exit: nothing that could need a lock another
        // thread held at the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: async-signal-safe calls only.
            unsafe {
                libc::close(self.report_fd);
                libc::alarm(3);
                for (fd, r) in &prepared {
                    libc::ioctl(*fd, r.request as _, r.arg as usize);
                }
                for fd in &close_fds {
                    libc::close(*fd);
                }
                libc::_exit(0);
            }
        }
        st.record("fork", if pid < 0 { errno() } else { 0 });
        if pid < 0 {
            return;
        }
        st.add("fork-children", 1);
        if !reap(pid, Duration::from_secs(5)) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            if !reap(pid, Duration::from_secs(5)) {
                self.unreaped.lock().unwrap().push(pid);
            }
        }
        drop(prepared);
        drop(res);
    }
}

/// Waits up to `limit` for `pid` to exit; true once it is reaped.
fn reap(pid: i32, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || (r < 0 && errno() == libc::ECHILD) {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn worker(proc: Arc<Proc>, t: usize, deadline: Instant) -> Stats {
    let seed = derive(proc.cfg.seed, proc.index as u64, t as u64);
    let mut gen = Generator::new(seed, proc.cfg.mutate_pct);
    let arena = Arena::new(&mut Rng::new(derive(seed, 0xa7e4a, 0)));
    let mut st = Stats::default();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let view = proc.view();
        let op = gen.next(&view);
        let t0 = Instant::now();
        proc.exec(&op, &arena, &mut st);
        let took = t0.elapsed();
        if took >= SLOW {
            // Nothing the fuzzer does blocks this long by itself (sync
            // calls time out within 2 s, polls within 10 ms) unless a
            // userfaultfd stall holds it or the kernel makes it wait for
            // one: worth a line.
            st.add("slow-ops", 1);
            println!(
                "kdbus-fuzz: slow operation: process {} thread {t} step {n} took {:.1} s: {}",
                proc.index,
                took.as_secs_f64(),
                describe(&op)
            );
        }
        n += 1;
        if n.is_multiple_of(64) {
            if let Some(k) = proc.reg.sweep() {
                st.add("swept-fds", k as u64);
            }
        }
    }
    st
}

/// Writes all of `b` to `fd` (retrying short writes and EINTR).
pub fn write_all(fd: i32, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: writing from an owned buffer.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

/// Operations taking longer than this are reported.
const SLOW: Duration = Duration::from_secs(5);

/// A one-line description of an operation.
fn describe(op: &Op) -> String {
    match op {
        Op::Ioctl { target, cmd, .. } => format!(
            "{} on {target:?} (flags {:#x}, {} items{})",
            op_name(cmd),
            cmd.flags,
            cmd.items.len(),
            cmd.msg
                .as_ref()
                .map(|m| format!(", message with {} items", m.items.len()))
                .unwrap_or_default()
        ),
        other => {
            let s = format!("{other:?}");
            s.chars().take(120).collect()
        }
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// SIGBUS/SIGSEGV: says where (async-signal-safe), then dies of it.
extern "C" fn on_fatal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let mut buf = *b"kdbus-fuzz: fatal signal ?? at 0x0000000000000000\n";
    buf[25] = b'0' + (sig / 10) as u8;
    buf[26] = b'0' + (sig % 10) as u8;
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as u64;
    for i in 0..16 {
        let d = ((addr >> (60 - 4 * i)) & 0xf) as u8;
        buf[33 + i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
    }
    // SAFETY: write, signal and raise are async-signal-safe.
    unsafe {
        libc::write(1, buf.as_ptr().cast(), buf.len());
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn signals() {
    // SAFETY: installing a handler that does nothing (so blocked calls
    // return EINTR) and ignoring SIGPIPE.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        sa.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        let mut fatal: libc::sigaction = std::mem::zeroed();
        fatal.sa_sigaction = on_fatal as *const () as usize;
        fatal.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut fatal.sa_mask);
        libc::sigaction(libc::SIGBUS, &fatal, std::ptr::null_mut());
        libc::sigaction(libc::SIGSEGV, &fatal, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max.min(16384);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// How long worker threads get after the deadline (signalled again and
/// again) before they count as stuck in the kernel.
const GRACE: Duration = Duration::from_secs(20);

/// The body of fuzz process `index`: runs its threads until `deadline`,
/// writes its statistics to `report_fd` and returns the exit status
/// (0, or 1 when a thread of the fuzzer itself failed).
pub fn run_proc(cfg: Config, index: usize, deadline: Instant, report_fd: i32) -> i32 {
    signals();
    let threads = cfg.threads;
    let proc = Arc::new(Proc::new(cfg, index, report_fd));
    let mut total = Stats::default();
    if index == 0 {
        println!(
            "kdbus-fuzz: descriptor kinds: {}",
            proc.zoo.available().join(" ")
        );
        println!(
            "kdbus-fuzz: userfaultfd: {}",
            if proc.uffd.is_some() { "on" } else { "off" }
        );
    }
    let handler = proc.uffd.as_ref().map(|_| {
        let p = proc.clone();
        let seed = derive(p.cfg.seed, index as u64, 0xffd);
        std::thread::spawn(move || p.uffd.as_ref().unwrap().handler(Rng::new(seed)))
    });
    let mut workers: Vec<_> = (0..threads)
        .map(|t| {
            let p = proc.clone();
            Some(std::thread::spawn(move || worker(p, t, deadline)))
        })
        .collect();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50).min(deadline - Instant::now()));
    }
    if let Some(u) = &proc.uffd {
        u.release();
    }
    let end = Instant::now() + GRACE;
    let mut own_bug = false;
    loop {
        for w in workers.iter_mut() {
            if w.as_ref().is_some_and(|h| h.is_finished()) {
                match w.take().unwrap().join() {
                    Ok(st) => total.merge(&st),
                    Err(_) => own_bug = true,
                }
            }
        }
        let left: Vec<_> = workers.iter().flatten().collect();
        if left.is_empty() || Instant::now() >= end {
            break;
        }
        for h in left {
            use std::os::unix::thread::JoinHandleExt;
            // SAFETY: the thread has not been joined, so its handle is live.
            unsafe { libc::pthread_kill(h.as_pthread_t(), libc::SIGUSR1) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stuck = workers.iter().flatten().count();
    if stuck > 0 {
        total.add("threads-stuck", stuck as u64);
    }
    let pending: Vec<i32> = proc.unreaped.lock().unwrap().clone();
    let unreaped = pending
        .into_iter()
        .filter(|&p| !reap(p, Duration::from_secs(2)))
        .count();
    if unreaped > 0 {
        total.add("fork-children-unreaped", unreaped as u64);
    }
    if let Some(u) = &proc.uffd {
        total.add("uffd-faults", u.faults.load(Ordering::Relaxed));
        total.add("uffd-long-stalls", u.long_stalls.load(Ordering::Relaxed));
        u.quit();
    }
    if let Some(h) = handler {
        if h.join().is_err() {
            own_bug = true;
        }
    }
    if own_bug {
        total.add("fuzzer-thread-panics", 1);
    }
    write_all(report_fd, total.serialize().as_bytes());
    if stuck > 0 {
        // Threads still in the kernel: leave without unwinding (exit
        // tears down the descriptors; the parent sees if even that hangs).
        // SAFETY: ending the process.
        unsafe { libc::_exit(i32::from(own_bug)) };
    }
    // Close every slot explicitly: the teardown paths run here, while the
    // process still exists to see a hang.
    let slots: Vec<Slot> = {
        let mut s = proc.slots.lock().unwrap();
        s.iter_mut()
            .map(|x| std::mem::replace(x, Slot::empty()))
            .collect()
    };
    for s in slots {
        proc.close_slot(s);
    }
    i32::from(own_bug)
}
