//! Statistics: calls per operation and errno, extra counters, their
//! transport from the fuzz processes to the parent, and the summary.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::cmds::CmdKind;

/// Names of counted operations that are not kdbus commands.
pub const OTHER_OPS: &[&str] = &[
    "SEND_SYNC",
    "ioctl(other-nr)",
    "open",
    "mmap",
    "munmap",
    "poll",
    "close",
    "dup",
    "fork",
    "io_uring",
    "epoll",
    "uffd-rearm",
];

/// Every operation name, for parsing the transport format back into
/// static strings.
pub fn op_names() -> impl Iterator<Item = &'static str> {
    CmdKind::ALL
        .iter()
        .map(|k| k.name())
        .chain(OTHER_OPS.iter().copied())
}

fn intern(name: &str) -> Option<&'static str> {
    op_names().find(|n| *n == name)
}

/// Whether `name` is an ioctl (a kdbus command or a wrong ioctl number).
pub fn is_ioctl(name: &str) -> bool {
    name == "SEND_SYNC"
        || name == "ioctl(other-nr)"
        || CmdKind::ALL.iter().any(|k| k.name() == name)
}

/// The symbolic name of an errno (0 is "ok").
pub fn errno_name(e: i32) -> String {
    let s = match e {
        0 => "ok",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::EDOM => "EDOM",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::EXFULL => "EXFULL",
        libc::EBADSLT => "EBADSLT",
        libc::ECOMM => "ECOMM",
        libc::EBADMSG => "EBADMSG",
        libc::ENOTUNIQ => "ENOTUNIQ",
        libc::EBADFD => "EBADFD",
        libc::EREMCHG => "EREMCHG",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::ESHUTDOWN => "ESHUTDOWN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EREMOTEIO => "EREMOTEIO",
        libc::EMEDIUMTYPE => "EMEDIUMTYPE",
        libc::ECANCELED => "ECANCELED",
        libc::EOVERFLOW => "EOVERFLOW",
        _ => return format!("E{e}"),
    };
    s.to_string()
}

/// Counters of one thread, process or run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    calls: BTreeMap<(&'static str, i32), u64>,
    /// Named extra counters (swept descriptors, fork children, faults ...).
    pub extra: BTreeMap<String, u64>,
}

impl Stats {
    /// Counts one call of `op` that returned `errno` (0 for success).
    pub fn record(&mut self, op: &'static str, errno: i32) {
        *self.calls.entry((op, errno)).or_default() += 1;
    }

    /// Adds `n` to the extra counter `key`.
    pub fn add(&mut self, key: &str, n: u64) {
        *self.extra.entry(key.to_string()).or_default() += n;
    }

    /// Adds everything in `o`.
    pub fn merge(&mut self, o: &Stats) {
        for (k, v) in &o.calls {
            *self.calls.entry(*k).or_default() += v;
        }
        for (k, v) in &o.extra {
            *self.extra.entry(k.clone()).or_default() += v;
        }
    }

    /// The count of `(op, errno)`.
    pub fn count(&self, op: &str, errno: i32) -> u64 {
        self.calls
            .iter()
            .filter(|((o, e), _)| *o == op && *e == errno)
            .map(|(_, v)| v)
            .sum()
    }

    /// Calls of `op`, any outcome.
    pub fn total(&self, op: &str) -> u64 {
        self.calls
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, v)| v)
            .sum()
    }

    /// All ioctls issued.
    pub fn ioctls(&self) -> u64 {
        self.calls
            .iter()
            .filter(|((o, _), _)| is_ioctl(o))
            .map(|(_, v)| v)
            .sum()
    }

    /// All operations (ioctls and the rest).
    pub fn ops(&self) -> u64 {
        self.calls.values().sum()
    }

    /// The line format sent from a fuzz process to the parent.
    pub fn serialize(&self) -> String {
        let mut s = String::new();
        for ((op, e), n) in &self.calls {
            let _ = writeln!(s, "c {op} {e} {n}");
        }
        for (k, n) in &self.extra {
            let _ = writeln!(s, "x {k} {n}");
        }
        s
    }

    /// Parses [`Stats::serialize`] output (unknown lines are ignored).
    pub fn parse(text: &str) -> Stats {
        let mut st = Stats::default();
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["c", op, e, n] => {
                    if let (Some(op), Ok(e), Ok(n)) = (intern(op), e.parse(), n.parse::<u64>()) {
                        *st.calls.entry((op, e)).or_default() += n;
                    }
                }
                ["x", k, n] => {
                    if let Ok(n) = n.parse::<u64>() {
                        st.add(k, n);
                    }
                }
                _ => {}
            }
        }
        st
    }

    /// The summary lines (without prefix) for a run of `secs` seconds.
    pub fn summary(&self, secs: f64) -> Vec<String> {
        let mut out = Vec::new();
        let ioctls = self.ioctls();
        let ok: u64 = self
            .calls
            .iter()
            .filter(|((o, e), _)| is_ioctl(o) && *e == 0)
            .map(|(_, v)| v)
            .sum();
        out.push(format!(
            "summary: {ioctls} ioctls in {secs:.1} s = {:.0} ioctls/s ({} operations in all)",
            ioctls as f64 / secs.max(0.001),
            self.ops()
        ));
        let pct = |a: u64, b: u64| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        out.push(format!(
            "summary: {ok} ioctls succeeded ({:.1}%); SEND ok {} of {}, SEND_SYNC ok {} of {}, RECV ok {} of {}, HELLO ok {} of {}",
            pct(ok, ioctls),
            self.count("SEND", 0),
            self.total("SEND"),
            self.count("SEND_SYNC", 0),
            self.total("SEND_SYNC"),
            self.count("RECV", 0),
            self.total("RECV"),
            self.count("HELLO", 0),
            self.total("HELLO"),
        ));
        for op in op_names() {
            let total = self.total(op);
            if total == 0 {
                continue;
            }
            let mut errs: Vec<(i32, u64)> = self
                .calls
                .iter()
                .filter(|((o, _), _)| *o == op)
                .map(|((_, e), n)| (*e, *n))
                .collect();
            errs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut line = format!("cmd {op:<16} {total:>8} ");
            for (e, n) in errs {
                let _ = write!(line, " {} {n}", errno_name(e));
            }
            out.push(line);
        }
        let mut by_errno: BTreeMap<i32, u64> = BTreeMap::new();
        for ((o, e), n) in &self.calls {
            if is_ioctl(o) {
                *by_errno.entry(*e).or_default() += n;
            }
        }
        let mut v: Vec<(i32, u64)> = by_errno.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut line = "errno (ioctls):".to_string();
        for (e, n) in v {
            let _ = write!(line, " {} {n} ({:.1}%)", errno_name(e), pct(n, ioctls));
        }
        out.push(line);
        if !self.extra.is_empty() {
            let mut line = "counters:".to_string();
            for (k, n) in &self.extra {
                let _ = write!(line, " {k} {n}");
            }
            out.push(line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_merge() {
        let mut a = Stats::default();
        a.record("SEND", 0);
        a.record("SEND", 0);
        a.record("SEND", libc::EINVAL);
        a.record("open", 0);
        a.add("swept", 3);
        let b = Stats::parse(&a.serialize());
        assert_eq!(a, b);
        let mut c = b.clone();
        c.merge(&a);
        assert_eq!(c.count("SEND", 0), 4);
        assert_eq!(c.ioctls(), 6);
        assert_eq!(c.ops(), 8);
        assert_eq!(c.extra["swept"], 6);
        assert!(Stats::parse("c NOPE 0 1\ngarbage\n").calls.is_empty());
    }

    #[test]
    fn summary_lines() {
        let mut a = Stats::default();
        for _ in 0..3 {
            a.record("RECV", libc::EAGAIN);
        }
        a.record("RECV", 0);
        a.record("SEND_SYNC", libc::ETIMEDOUT);
        let s = a.summary(2.0);
        assert!(
            s[0].starts_with("summary: 5 ioctls in 2.0 s = 2 ioctls/s"),
            "{}",
            s[0]
        );
        assert!(
            s.iter()
                .any(|l| l.contains("RECV") && l.contains("EAGAIN 3 ok 1")),
            "{s:?}"
        );
        assert!(
            s.iter()
                .any(|l| l.starts_with("errno (ioctls): EAGAIN 3 (60.0%)")),
            "{s:?}"
        );
        assert_eq!(errno_name(libc::EBADFD), "EBADFD");
        assert_eq!(errno_name(4000), "E4000");
        // The kernel-log scanner must not mistake the output for a report.
        for l in &s {
            for bad in ["BUG", "WARNING", "Oops", "KASAN", "Call Trace"] {
                assert!(!l.contains(bad), "{l}");
            }
        }
    }
}
