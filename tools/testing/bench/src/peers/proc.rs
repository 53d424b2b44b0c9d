//! Child processes of the benchmark: the echo servers and the brokers.
//!
//! Each child gets a pipe as stdin (its end of file tells a server to exit),
//! a pipe as stdout (the one `ready ...` line it prints once it can be
//! called), stderr into a log file, optional descriptors at fixed numbers,
//! and `PR_SET_PDEATHSIG` so that nothing outlives the benchmark. CPU
//! affinity is inherited: the benchmark pins itself before spawning.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use kdbus_bench::data::poll_in;
use kdbus_bench::timing::Failure;

/// A running child.
pub struct Proc {
    /// What it is, for messages (`dbus-daemon`, `sd-bus server`).
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    log: PathBuf,
    /// Ended with SIGTERM (brokers) rather than by closing its stdin.
    term: bool,
    stopped: bool,
}

/// The last `n` lines of `log`, indented, for failure messages.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        format!("{} is empty", log.display())
    } else {
        format!("{}: {}", log.display(), tail.join(" | "))
    }
}

impl Proc {
    /// Spawns `cmd`; `fds` are installed at the given numbers in the child
    /// (and closed here afterwards). `term`: end it with SIGTERM.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        fds: Vec<(OwnedFd, RawFd)>,
        term: bool,
    ) -> Result<Proc, Failure> {
        let logf = File::create(log)
            .map_err(|e| Failure::bad("create", name, format!("{}: {e}", log.display())))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logf);
        let raw: Vec<(RawFd, RawFd)> = fds.iter().map(|(f, to)| (f.as_raw_fd(), *to)).collect();
        // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl) on
        // memory allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for &(from, to) in &raw {
                    if from == to {
                        // dup2 onto itself would keep FD_CLOEXEC.
                        if libc::fcntl(from, libc::F_SETFD, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    } else if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Failure::bad("spawn", name, format!("{cmd:?}: {e}")))?;
        drop(fds);
        Ok(Proc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            log: log.to_owned(),
            term,
            stopped: false,
        })
    }

    /// Waits up to `timeout` for the child's first line (`ready ...`) and
    /// returns it without the newline.
    pub fn ready(&mut self, timeout: Duration) -> Result<String, Failure> {
        let who = self.name.clone();
        let Some(out) = self.stdout.as_mut() else {
            return Err(Failure::bad("ready", who, "no stdout"));
        };
        let deadline = Instant::now() + timeout;
        let mut line = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let fail = |what: String| {
                Failure::bad("ready", who.clone(), what).also(log_tail(&self.log, 12))
            };
            if left.is_zero() {
                return Err(fail(format!("not ready within {} s", timeout.as_secs())));
            }
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            match poll_in(out.as_raw_fd(), ms, &who) {
                Ok(true) => {}
                Ok(false) => continue,
                // A hang-up: read() tells end of file below.
                Err(e) if e.op == "poll" && e.errno.is_none() => {}
                Err(e) => return Err(e),
            }
            let mut b = [0u8; 1];
            match out.read(&mut b) {
                Ok(0) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(fail(format!(
                        "exited before it was ready ({})",
                        status.map_or("still running".into(), |s| s.to_string())
                    )));
                }
                Ok(_) if b[0] == b'\n' => {
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                Ok(_) => line.push(b[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(format!("reading its stdout: {e}"))),
            }
        }
    }

    /// The log file of its stderr.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Ends it: closes its stdin (and sends SIGTERM to a broker), waits up
    /// to 5 s, then SIGKILL. Returns how it ended and whether that was
    /// clean (exit status 0, or the SIGTERM sent to a broker).
    pub fn stop(&mut self) -> (String, bool) {
        if self.stopped {
            return ("stopped before".into(), true);
        }
        self.stopped = true;
        drop(self.stdin.take());
        let pid = self.child.id() as libc::pid_t;
        if self.term {
            // SAFETY: signalling our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    use std::os::unix::process::ExitStatusExt;
                    let clean = s.success() || (self.term && s.signal() == Some(libc::SIGTERM));
                    return (s.to_string(), clean);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = self.child.kill();
                    let how = match self.child.wait() {
                        Ok(s) => format!("killed after 5 s ({s})"),
                        Err(e) => format!("killed after 5 s (wait: {e})"),
                    };
                    return (how, false);
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
