//! `kdbus-test`: kselftest-style TAP runner for the kdbus module.
//!
//! Every test runs in a forked child (its own process group) with a fresh
//! bus and a timeout; the child reports its outcome through a pipe. Output
//! is TAP version 13, closed by `N passed, N failed, N skipped`.

mod check;
mod ctx;
mod tests;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, pipe2, setpgid, ForkResult, Pid};

use check::skip_reason;
use ctx::Ctx;
use tests::{Test, TESTS};

const DEFAULT_MOUNT: &str = "/sys/fs/kdbus";
const DEFAULT_TIMEOUT: u64 = 30;

const USAGE: &str = "\
usage: kdbus-test [--list] [--test NAME]... [--mount PATH] [--timeout SECS]

  --list          print the test names, one a line, and exit
  --test NAME     run only NAME (may be repeated)
  --mount PATH    kdbusfs mount to test (default /sys/fs/kdbus)
  --timeout SECS  per-test timeout (default 30)
";

struct Options {
    list: bool,
    tests: Vec<String>,
    mount: PathBuf,
    timeout: Duration,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut o = Options {
        list: false,
        tests: Vec::new(),
        mount: PathBuf::from(DEFAULT_MOUNT),
        timeout: Duration::from_secs(DEFAULT_TIMEOUT),
    };
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--list" | "-l" => o.list = true,
            "--test" | "-t" => o.tests.push(value("--test")?),
            "--mount" | "-m" => o.mount = PathBuf::from(value("--mount")?),
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("bad --timeout value '{v}'"))?;
                if secs == 0 {
                    return Err("--timeout must be at least 1".into());
                }
                o.timeout = Duration::from_secs(secs);
            }
            "--help" | "-h" => return Ok(None),
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    Ok(Some(o))
}

/// Outcome of one test.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

impl Outcome {
    fn encode(&self) -> Vec<u8> {
        let (tag, msg) = match self {
            Outcome::Pass => ('P', ""),
            Outcome::Fail(m) => ('F', m.as_str()),
            Outcome::Skip(m) => ('S', m.as_str()),
        };
        let mut s = String::with_capacity(msg.len() + 1);
        s.push(tag);
        s.push_str(msg);
        s.into_bytes()
    }

    fn decode(b: &[u8]) -> Option<Outcome> {
        let s = String::from_utf8_lossy(b);
        let mut chars = s.chars();
        let tag = chars.next()?;
        let msg = chars.as_str().to_owned();
        match tag {
            'P' => Some(Outcome::Pass),
            'F' => Some(Outcome::Fail(msg)),
            'S' => Some(Outcome::Skip(msg)),
            _ => None,
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".into()
    }
}

/// Runs in the forked child: sets up the context and runs the test.
fn child_run(test: &Test, opts: &Options, fstype: &str, runner_pid: u32, number: usize) -> Outcome {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let ctx =
            Ctx::new(&opts.mount, fstype, runner_pid, number).map_err(|e| format!("setup: {e}"))?;
        (test.1)(&ctx)
    }));
    match r {
        Ok(Ok(())) => Outcome::Pass,
        Ok(Err(msg)) => match skip_reason(&msg) {
            Some(reason) => Outcome::Skip(reason.to_owned()),
            None => Outcome::Fail(msg),
        },
        Err(p) => Outcome::Fail(format!("test panicked: {}", panic_message(&*p))),
    }
}

fn write_all(fd: &OwnedFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Reads whatever is available on the non-blocking pipe; returns true at EOF.
fn drain(fd: &OwnedFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

/// Forks, runs `body` in the child and collects its outcome (or the
/// child's death or timeout).
fn run_forked(body: impl FnOnce() -> Outcome, timeout: Duration) -> Outcome {
    let (rd, wr) = match pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
        Ok(p) => p,
        Err(e) => return Outcome::Fail(format!("runner: pipe2 failed: {e}")),
    };
    // Nothing buffered may be duplicated into the child.
    let _ = std::io::stdout().flush();
    // SAFETY: the runner is single-threaded, so the child may run arbitrary
    // code after fork.
    match unsafe { fork() } {
        Err(e) => Outcome::Fail(format!("runner: fork failed: {e}")),
        Ok(ForkResult::Child) => {
            drop(rd);
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            // The write end must block so the message is never cut short.
            let _ = nix::fcntl::fcntl(&wr, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
            // A panic must never unwind past the fork into the runner's code.
            let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| {
                Outcome::Fail(format!("test panicked: {}", panic_message(&*p)))
            });
            let _ = std::io::stdout().flush();
            write_all(&wr, &outcome.encode());
            // SAFETY: _exit ends the child without running the parent's
            // destructors or atexit handlers a second time.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            wait_child(child, rd, timeout)
        }
    }
}

fn wait_child(child: Pid, rd: OwnedFd, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut msg = Vec::new();
    let mut eof = false;
    let status = loop {
        if !eof {
            let mut fds = [PollFd::new(rd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(20u16));
            eof = drain(&rd, &mut msg);
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => break Some(st),
            Ok(_) => {}
            Err(_) => break None,
        }
        if Instant::now() >= deadline {
            let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
            return Outcome::Fail(format!("timed out after {} s, killed", timeout.as_secs()));
        }
    };
    // Leftover grandchildren of the test die with it.
    let _ = kill(Pid::from_raw(-child.as_raw()), Signal::SIGKILL);
    drain(&rd, &mut msg);
    match (Outcome::decode(&msg), status) {
        (Some(o), Some(WaitStatus::Exited(_, 0))) => o,
        (Some(o), st) => match o {
            Outcome::Fail(m) => Outcome::Fail(format!("{m}\n(child ended with {st:?})")),
            _ => Outcome::Fail(format!(
                "test reported {o:?} but the child ended with {st:?}"
            )),
        },
        (None, Some(WaitStatus::Signaled(_, sig, core))) => Outcome::Fail(format!(
            "test process killed by signal {sig:?}{}",
            if core { " (core dumped)" } else { "" }
        )),
        (None, st) => Outcome::Fail(format!(
            "test process ended without reporting a result ({st:?})"
        )),
    }
}

/// The filesystem type of the mount point per /proc/self/mounts, so that
/// private mounts use the same type (a module built under another name
/// registers `<name>fs`).
fn detect_fstype(mount: &std::path::Path) -> String {
    let want = std::fs::canonicalize(mount).unwrap_or_else(|_| mount.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .rev()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let _dev = f.next()?;
            let dir = f.next()?;
            let ty = f.next()?;
            (std::path::Path::new(dir) == want).then(|| ty.to_owned())
        })
        .unwrap_or_else(|| "kdbusfs".to_owned())
}

fn main() {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("kdbus-test: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if opts.list {
        for t in TESTS {
            println!("{}", t.0);
        }
        return;
    }
    let selected: Vec<&Test> = if opts.tests.is_empty() {
        TESTS.iter().collect()
    } else {
        let mut v = Vec::new();
        for name in &opts.tests {
            match TESTS.iter().find(|t| t.0 == name) {
                Some(t) => v.push(t),
                None => {
                    eprintln!("kdbus-test: no test named '{name}' (see --list)");
                    std::process::exit(2);
                }
            }
        }
        v
    };
    let fstype = detect_fstype(&opts.mount);

    println!("TAP version 13");
    println!("1..{}", selected.len());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (i, t) in selected.iter().enumerate() {
        let n = i + 1;
        let start = Instant::now();
        let runner_pid = std::process::id();
        let body = || child_run(t, &opts, &fstype, runner_pid, n);
        let timeout = tests::min_timeout(t.0).map_or(opts.timeout, |m| opts.timeout.max(m));
        match run_forked(body, timeout) {
            Outcome::Pass => {
                passed += 1;
                println!("ok {n} {}", t.0);
            }
            Outcome::Skip(reason) => {
                skipped += 1;
                println!("ok {n} {} # SKIP {}", t.0, reason.replace('\n', " "));
            }
            Outcome::Fail(msg) => {
                failed += 1;
                println!("not ok {n} {}", t.0);
                check::diag(&msg);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        if secs >= 1.0 {
            println!("# {} took {secs:.1} s", t.0);
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    let _ = std::io::stdout().flush();
    std::process::exit(if failed > 0 { 1 } else { 0 });
}

#[cfg(test)]
mod unit {
    use super::*;

    fn args(v: &[&str]) -> impl Iterator<Item = String> {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn parse() {
        let o = parse_args(args(&[
            "--test",
            "a",
            "--test=b",
            "--mount",
            "/x",
            "--timeout=5",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.tests, vec!["a", "b"]);
        assert_eq!(o.mount, PathBuf::from("/x"));
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert!(!o.list);
        assert!(parse_args(args(&["--list"])).unwrap().unwrap().list);
        assert!(parse_args(args(&["--help"])).unwrap().is_none());
        assert!(parse_args(args(&["--bogus"])).is_err());
        assert!(parse_args(args(&["--test"])).is_err());
        assert!(parse_args(args(&["--timeout", "0"])).is_err());
    }

    #[test]
    fn outcome_codec() {
        for o in [
            Outcome::Pass,
            Outcome::Fail("x: expected EINVAL\nmore".into()),
            Outcome::Skip("why".into()),
        ] {
            assert_eq!(Outcome::decode(&o.encode()), Some(o));
        }
        assert_eq!(Outcome::decode(b""), None);
        assert_eq!(Outcome::decode(b"Q"), None);
    }

    #[test]
    fn unique_test_names() {
        let mut names: Vec<&str> = TESTS.iter().map(|t| t.0).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate test names");
        assert!(names.iter().all(|n| !n.contains(char::is_whitespace)));
    }

    #[test]
    fn fork_reports_outcomes() {
        fn pass(_: &Ctx) -> check::TestResult {
            Ok(())
        }
        let o = Options {
            list: false,
            tests: vec![],
            mount: PathBuf::from("/nonexistent-kdbus"),
            timeout: Duration::from_secs(5),
        };
        let t: Test = ("x", pass);
        // Without a kdbus mount the setup fails, and so does the test.
        match run_forked(|| child_run(&t, &o, "kdbusfs", 1, 1), o.timeout) {
            Outcome::Fail(m) => assert!(m.contains("setup:"), "{m}"),
            other => panic!("expected failure, got {other:?}"),
        }
        let t5 = Duration::from_secs(5);
        assert_eq!(run_forked(|| Outcome::Pass, t5), Outcome::Pass);
        assert_eq!(
            run_forked(|| Outcome::Skip("why".into()), t5),
            Outcome::Skip("why".into())
        );
        // A long message survives the pipe.
        let long = "x".repeat(200_000);
        assert_eq!(
            run_forked(|| Outcome::Fail(long.clone()), t5),
            Outcome::Fail(long.clone())
        );
        // A crash fails the test with the signal.
        match run_forked(|| std::process::abort(), t5) {
            Outcome::Fail(m) => assert!(m.contains("SIGABRT"), "{m}"),
            other => panic!("expected failure, got {other:?}"),
        }
        match run_forked(|| panic!("boom"), t5) {
            Outcome::Fail(m) => assert!(m.contains("panicked: boom"), "{m}"),
            other => panic!("expected failure, got {other:?}"),
        }
        // A hang is killed at the timeout.
        let start = Instant::now();
        match run_forked(
            || {
                std::thread::sleep(Duration::from_secs(60));
                Outcome::Pass
            },
            Duration::from_secs(1),
        ) {
            Outcome::Fail(m) => assert!(m.contains("timed out"), "{m}"),
            other => panic!("expected timeout, got {other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        // Exiting without a report is a failure too.
        // SAFETY: _exit in the forked child only.
        match run_forked(|| unsafe { libc::_exit(3) }, t5) {
            Outcome::Fail(m) => assert!(m.contains("without reporting"), "{m}"),
            other => panic!("expected failure, got {other:?}"),
        }
    }
}
