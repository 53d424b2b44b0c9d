//! Helper processes of a test (`--role`), seen from the test: started with
//! the test's bus, talked to line by line (stdin / stdout), killed when
//! dropped. Their stderr and every stdout line (prefixed `[role] `) go to
//! the test's output, which the runner shows when the test fails.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::tests::{Fail, TResult};

/// How long a test waits for a helper's line by default (a loaded host
/// under TCG is slow to start processes).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Role {
    pub name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Role {
    /// Starts `--role ROLE --bus BUS ARGS...`.
    pub fn spawn(role: &str, bus: &str, args: &[&str]) -> TResult<Role> {
        let exe = std::env::current_exe().map_err(|e| Fail::msg(format!("current_exe: {e}")))?;
        let mut child = Command::new(exe)
            .arg("--role")
            .arg(role)
            .arg("--bus")
            .arg(bus)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| Fail::msg(format!("spawn role {role}: {e}")))?;
        let out = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        let (tx, rx) = mpsc::channel();
        let tag = role.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{tag}] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Role {
            name: role.to_string(),
            child,
            stdin,
            lines: rx,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line starting with `word` (the rest of it, trimmed),
    /// skipping others; fails after `LINE_TIMEOUT` or when the helper's
    /// output ends.
    pub fn expect(&self, word: &str) -> TResult<String> {
        self.expect_within(word, LINE_TIMEOUT)
    }

    pub fn expect_within(&self, word: &str, limit: Duration) -> TResult<String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if l == word {
                        return Ok(String::new());
                    }
                    if let Some(rest) = l.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Fail::msg(format!(
                        "{}: no '{word}' line within {} s",
                        self.name,
                        limit.as_secs()
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Fail::msg(format!(
                        "{}: output ended before a '{word}' line",
                        self.name
                    )))
                }
            }
        }
    }

    /// The next line, whatever it is.
    pub fn next_line(&self, limit: Duration) -> TResult<String> {
        match self.lines.recv_timeout(limit) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err(Fail::msg(format!(
                "{}: no line within {} s",
                self.name,
                limit.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                Err(Fail::msg(format!("{}: output ended", self.name)))
            }
        }
    }

    /// Writes one line to the helper's stdin.
    pub fn send(&mut self, line: &str) -> TResult<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(Fail::msg(format!("{}: stdin closed", self.name)));
        };
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|e| Fail::msg(format!("{}: write to stdin: {e}", self.name)))
    }

    /// Closes the helper's stdin (its cue to exit, for some roles).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `limit` for the helper to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> TResult<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => return Ok(s),
                Ok(None) if Instant::now() >= end => {
                    return Err(Fail::msg(format!(
                        "{} did not exit within {} s",
                        self.name,
                        limit.as_secs()
                    )))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(Fail::msg(format!("{}: wait: {e}", self.name))),
            }
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
