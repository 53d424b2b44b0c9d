//! `kdbus-fuzz`: a fuzzer of the kdbus module, run inside the test VM.
//!
//! Forks `--procs` fuzz processes; each runs `--threads` threads that
//! generate random, mostly valid sequences of every kdbus command (and
//! mmap, poll, close, dup, fork, io_uring, epoll) over a shared table of
//! descriptors, with mutations, for `--duration` seconds. The kernel's
//! answers are only counted: the verdict is the kernel log. See README.md.
//!
//! Modules: [`rng`] (seeded streams), [`items`] (item generation),
//! [`cmds`] (commands, the generator, rendering), [`mutate`] (mutations),
//! [`fds`] (descriptor kinds, the registry), [`mem`] (arenas,
//! userfaultfd), [`state`] (what the generator sees), [`exec`] (the
//! executor), [`stats`] (counters and the summary).

mod cmds;
mod exec;
mod fds;
mod items;
mod mem;
mod mutate;
mod rng;
mod state;
mod stats;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use exec::Config;
use fds::FdKind;
use stats::Stats;

const USAGE: &str = "\
usage: kdbus-fuzz [--duration SECS] [--seed N] [--procs N] [--threads N]
                  [--mutate PCT] [--exclude-fd KIND[,KIND...]] [--no-uffd]
                  [--uffd-stall SECS] [--mount PATH]

  --duration SECS   how long to fuzz (default 60); the run ends at most
                    ~45 s later (threads are interrupted, processes reaped)
  --seed N          the run's seed (default: from the clock); printed first,
                    a run with the same seed and --procs/--threads replays
                    the same per-thread decisions as far as scheduling allows
  --procs N         fuzz processes (default 2)
  --threads N       threads per process (default 3)
  --mutate PCT      share of commands that get mutated (default 25)
  --exclude-fd K    never create these descriptor kinds (names as printed at
                    start, or the groups tty and memfd; excluding the
                    console also keeps descriptors 0-2 out), e.g. to get
                    past a known bug: --exclude-fd tty,io_uring
  --no-uffd         no userfaultfd area (no stalled user copies)
  --uffd-stall SECS how long the rare long userfaultfd stall holds a fault
                    (default 40: longer than two hung-task checks at the
                    VM's 15 s timeout; 0 disables it)
  --mount PATH      kdbusfs mount (default /sys/fs/kdbus)

Exit status: 0 when the run completed (whatever the kernel answered), 1 on a
failure of the fuzzer itself, 2 on bad usage.";

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        mount: "/sys/fs/kdbus".into(),
        seed: 0,
        procs: 2,
        threads: 3,
        duration: Duration::from_secs(60),
        mutate_pct: 25,
        exclude: Vec::new(),
        uffd: true,
        uffd_long: Duration::from_secs(40),
    };
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let num = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--duration" => {
                cfg.duration = Duration::from_secs(num("--duration", val("--duration")?)?)
            }
            "--seed" => seed = Some(num("--seed", val("--seed")?)?),
            "--procs" => cfg.procs = num("--procs", val("--procs")?)? as usize,
            "--threads" => cfg.threads = num("--threads", val("--threads")?)? as usize,
            "--mutate" => cfg.mutate_pct = num("--mutate", val("--mutate")?)?.min(100) as u32,
            "--exclude-fd" => {
                for k in val("--exclude-fd")?.split(',') {
                    let kinds = FdKind::by_name(k);
                    if kinds.is_empty() {
                        return Err(format!("--exclude-fd: unknown kind {k}"));
                    }
                    cfg.exclude.extend(kinds);
                }
            }
            "--no-uffd" => cfg.uffd = false,
            "--uffd-stall" => {
                cfg.uffd_long = Duration::from_secs(num("--uffd-stall", val("--uffd-stall")?)?)
            }
            "--mount" => cfg.mount = val("--mount")?,
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if cfg.procs == 0 || cfg.threads == 0 || cfg.procs > 64 || cfg.threads > 64 {
        return Err("--procs and --threads must be 1..64".into());
    }
    cfg.seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        rng::mix(t.as_nanos() as u64 ^ u64::from(std::process::id())) % 1_000_000_000
    });
    Ok(cfg)
}

struct Child {
    pid: i32,
    pipe: i32,
    out: Vec<u8>,
    status: Option<i32>,
}

/// Reads what is available from a child's report pipe (waiting up to
/// `ms`); false when nothing was read.
fn drain(c: &mut Child, ms: i32) -> bool {
    if c.pipe < 0 {
        return false;
    }
    let mut pfd = libc::pollfd {
        fd: c.pipe,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut buf = [0u8; 8192];
    // SAFETY: one pollfd, then a read into an owned buffer.
    unsafe {
        if libc::poll(&mut pfd, 1, ms) <= 0 {
            return false;
        }
        let n = libc::read(c.pipe, buf.as_mut_ptr().cast(), buf.len());
        if n > 0 {
            c.out.extend_from_slice(&buf[..n as usize]);
            return true;
        }
        libc::close(c.pipe);
        c.pipe = -1;
    }
    false
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kdbus-fuzz: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    println!(
        "kdbus-fuzz: seed {} (replay: kdbus-fuzz --seed {} --procs {} --threads {} --duration {}{}{})",
        cfg.seed,
        cfg.seed,
        cfg.procs,
        cfg.threads,
        cfg.duration.as_secs(),
        if cfg.mutate_pct != 25 { format!(" --mutate {}", cfg.mutate_pct) } else { String::new() },
        if cfg.uffd { String::new() } else { " --no-uffd".into() },
    );
    if !cfg.exclude.is_empty() {
        let names: Vec<_> = cfg.exclude.iter().map(|k| k.name()).collect();
        println!("kdbus-fuzz: excluded descriptor kinds: {}", names.join(","));
    }
    if !std::path::Path::new(&format!("{}/control", cfg.mount)).exists() {
        eprintln!(
            "kdbus-fuzz: {}/control not found: is kdbusfs mounted?",
            cfg.mount
        );
        return ExitCode::from(2);
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut children = Vec::new();
    for p in 0..cfg.procs {
        let mut fds = [-1i32; 2];
        // SAFETY: plain pipe creation.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            eprintln!("kdbus-fuzz: pipe failed");
            return ExitCode::from(1);
        }
        // SAFETY: the parent has no other threads; the child runs the fuzz
        // process and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: closing the read end in the child.
            unsafe { libc::close(fds[0]) };
            for c in &children {
                let c: &Child = c;
                // SAFETY: the siblings' read ends are not ours.
                unsafe { libc::close(c.pipe) };
            }
            let code = exec::run_proc(cfg.clone(), p, deadline, fds[1]);
            let _ = std::io::stderr().flush();
            // SAFETY: leaving the fuzz process.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: closing the write end in the parent.
        unsafe { libc::close(fds[1]) };
        if pid < 0 {
            eprintln!("kdbus-fuzz: fork failed");
            return ExitCode::from(1);
        }
        children.push(Child {
            pid,
            pipe: fds[0],
            out: Vec::new(),
            status: None,
        });
    }

    // Collect reports and exit statuses; kill what is still there long
    // after the deadline, give up on what even SIGKILL cannot end.
    let kill_at = deadline + Duration::from_secs(35);
    let give_up = kill_at + Duration::from_secs(10);
    let mut killed = false;
    loop {
        for c in children.iter_mut() {
            drain(c, 20);
            if c.status.is_none() {
                let mut st = 0;
                // SAFETY: waiting for our own child.
                if unsafe { libc::waitpid(c.pid, &mut st, libc::WNOHANG) } == c.pid {
                    c.status = Some(st);
                    // Everything it wrote is in the pipe now (a fork child
                    // of its own might still hold the write end open).
                    while drain(c, 0) {}
                    if c.pipe >= 0 {
                        // SAFETY: closing our read end.
                        unsafe { libc::close(c.pipe) };
                        c.pipe = -1;
                    }
                }
            }
        }
        if children.iter().all(|c| c.status.is_some()) {
            break;
        }
        let now = Instant::now();
        if now >= kill_at && !killed {
            for c in children.iter().filter(|c| c.status.is_none()) {
                eprintln!(
                    "kdbus-fuzz: process {} still running 35 s after the deadline: SIGKILL",
                    c.pid
                );
                // SAFETY: signalling our own child.
                unsafe { libc::kill(c.pid, libc::SIGKILL) };
            }
            killed = true;
        }
        if now >= give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = start
        .elapsed()
        .as_secs_f64()
        .min(cfg.duration.as_secs_f64() + 1.0);

    let mut total = Stats::default();
    let mut own_bug = false;
    let mut unreaped = 0;
    for (i, c) in children.iter().enumerate() {
        total.merge(&Stats::parse(&String::from_utf8_lossy(&c.out)));
        match c.status {
            None => {
                unreaped += 1;
                println!(
                    "kdbus-fuzz: process {i} (pid {}) could not be reaped",
                    c.pid
                );
            }
            Some(st) if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 => {}
            Some(st) if libc::WIFEXITED(st) => {
                own_bug = true;
                println!(
                    "kdbus-fuzz: process {i} exited with status {}",
                    libc::WEXITSTATUS(st)
                );
            }
            Some(st) => {
                let sig = libc::WTERMSIG(st);
                if !(killed && sig == libc::SIGKILL) {
                    own_bug = true;
                }
                println!("kdbus-fuzz: process {i} was killed by signal {sig}");
            }
        }
    }
    for line in total.summary(secs) {
        println!("kdbus-fuzz: {line}");
    }
    let stuck = total.extra.get("threads-stuck").copied().unwrap_or(0);
    let forks_left = total
        .extra
        .get("fork-children-unreaped")
        .copied()
        .unwrap_or(0);
    if total.extra.contains_key("fuzzer-thread-panics") {
        own_bug = true;
    }
    println!(
        "kdbus-fuzz: result: seed {} {}; processes not reaped {unreaped}, fork children not reaped {forks_left}, threads stuck in the kernel {stuck}",
        cfg.seed,
        if own_bug { "FUZZER FAILED" } else { "completed" },
    );
    if own_bug {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
