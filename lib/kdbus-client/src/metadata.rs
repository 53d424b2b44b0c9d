//! The sender's metadata attached to a received message (or returned by
//! CONN_INFO): credentials, pids, names, and whatever else the kernel
//! attached (metadata.md; dbus-on-kdbus.md 5.1).

use kdbus::uapi;

/// Metadata attach flags (`KDBUS_ATTACH_*`) as `u64`s.
#[allow(missing_docs, clippy::unnecessary_cast)]
pub mod attach {
    use kdbus::uapi;
    pub const TIMESTAMP: u64 = uapi::KDBUS_ATTACH_TIMESTAMP as u64;
    pub const CREDS: u64 = uapi::KDBUS_ATTACH_CREDS as u64;
    pub const PIDS: u64 = uapi::KDBUS_ATTACH_PIDS as u64;
    pub const AUXGROUPS: u64 = uapi::KDBUS_ATTACH_AUXGROUPS as u64;
    pub const NAMES: u64 = uapi::KDBUS_ATTACH_NAMES as u64;
    pub const TID_COMM: u64 = uapi::KDBUS_ATTACH_TID_COMM as u64;
    pub const PID_COMM: u64 = uapi::KDBUS_ATTACH_PID_COMM as u64;
    pub const EXE: u64 = uapi::KDBUS_ATTACH_EXE as u64;
    pub const CMDLINE: u64 = uapi::KDBUS_ATTACH_CMDLINE as u64;
    pub const CGROUP: u64 = uapi::KDBUS_ATTACH_CGROUP as u64;
    pub const CAPS: u64 = uapi::KDBUS_ATTACH_CAPS as u64;
    pub const SECLABEL: u64 = uapi::KDBUS_ATTACH_SECLABEL as u64;
    pub const AUDIT: u64 = uapi::KDBUS_ATTACH_AUDIT as u64;
    pub const CONN_DESCRIPTION: u64 = uapi::KDBUS_ATTACH_CONN_DESCRIPTION as u64;
    /// Every metadata kind.
    pub const ALL: u64 = kdbus::ATTACH_ALL;
    /// What [`crate::ConnectionBuilder`] asks for by default: timestamps,
    /// credentials, pids, names, comm names, security label, audit ids and
    /// the description (not the costlier exe, cmdline, cgroup, caps,
    /// auxgroups).
    pub const DEFAULT_RECV: u64 = TIMESTAMP
        | CREDS
        | PIDS
        | NAMES
        | TID_COMM
        | PID_COMM
        | SECLABEL
        | AUDIT
        | CONN_DESCRIPTION;
}

const fn t(v: u32) -> u64 {
    v as u64
}

const ITEM_TIMESTAMP: u64 = t(uapi::KDBUS_ITEM_TIMESTAMP);
const ITEM_CREDS: u64 = t(uapi::KDBUS_ITEM_CREDS);
const ITEM_PIDS: u64 = t(uapi::KDBUS_ITEM_PIDS);
const ITEM_AUXGROUPS: u64 = t(uapi::KDBUS_ITEM_AUXGROUPS);
const ITEM_OWNED_NAME: u64 = t(uapi::KDBUS_ITEM_OWNED_NAME);
const ITEM_TID_COMM: u64 = t(uapi::KDBUS_ITEM_TID_COMM);
const ITEM_PID_COMM: u64 = t(uapi::KDBUS_ITEM_PID_COMM);
const ITEM_EXE: u64 = t(uapi::KDBUS_ITEM_EXE);
const ITEM_CMDLINE: u64 = t(uapi::KDBUS_ITEM_CMDLINE);
const ITEM_CGROUP: u64 = t(uapi::KDBUS_ITEM_CGROUP);
const ITEM_CAPS: u64 = t(uapi::KDBUS_ITEM_CAPS);
const ITEM_SECLABEL: u64 = t(uapi::KDBUS_ITEM_SECLABEL);
const ITEM_AUDIT: u64 = t(uapi::KDBUS_ITEM_AUDIT);
const ITEM_CONN_DESCRIPTION: u64 = t(uapi::KDBUS_ITEM_CONN_DESCRIPTION);

/// Process credentials (`KDBUS_ITEM_CREDS`); `None` where the kernel
/// reported `(u32)-1` ("unknown", e.g. a proxied legacy peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Creds {
    /// Real user id.
    pub uid: Option<u32>,
    /// Effective user id.
    pub euid: Option<u32>,
    /// Saved user id.
    pub suid: Option<u32>,
    /// Filesystem user id.
    pub fsuid: Option<u32>,
    /// Real group id.
    pub gid: Option<u32>,
    /// Effective group id.
    pub egid: Option<u32>,
    /// Saved group id.
    pub sgid: Option<u32>,
    /// Filesystem group id.
    pub fsgid: Option<u32>,
}

/// Process ids (`KDBUS_ITEM_PIDS`); `None` for 0 ("unknown").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pids {
    /// Process (thread group) id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// Parent process id.
    pub ppid: Option<u32>,
}

/// Everything the kernel attached about the sender. Fields are `None` /
/// empty when the item was not attached (the receiver did not ask for it,
/// the sender did not allow it, or the kernel does not collect it yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    /// `KDBUS_ITEM_TIMESTAMP`.
    pub timestamp: Option<kdbus::Timestamp>,
    /// `KDBUS_ITEM_CREDS`.
    pub creds: Option<Creds>,
    /// `KDBUS_ITEM_PIDS`.
    pub pids: Option<Pids>,
    /// `KDBUS_ITEM_AUXGROUPS`.
    pub auxgroups: Option<Vec<u64>>,
    /// The sender's well-known names (`KDBUS_ITEM_OWNED_NAME`), `None` if
    /// no name item was attached (an attached empty list is not
    /// distinguishable from "not asked").
    pub names: Option<Vec<String>>,
    /// `KDBUS_ITEM_TID_COMM`.
    pub tid_comm: Option<String>,
    /// `KDBUS_ITEM_PID_COMM`.
    pub pid_comm: Option<String>,
    /// `KDBUS_ITEM_EXE`.
    pub exe: Option<String>,
    /// `KDBUS_ITEM_CMDLINE`, split at NULs.
    pub cmdline: Option<Vec<String>>,
    /// `KDBUS_ITEM_CGROUP`.
    pub cgroup: Option<String>,
    /// `KDBUS_ITEM_CAPS`: `last_cap`, then the four sets (inheritable,
    /// permitted, effective, bounding) as u32 words.
    pub caps: Option<(u32, Vec<u32>)>,
    /// `KDBUS_ITEM_SECLABEL`.
    pub seclabel: Option<String>,
    /// `KDBUS_ITEM_AUDIT`: (sessionid, loginuid).
    pub audit: Option<(u32, u32)>,
    /// `KDBUS_ITEM_CONN_DESCRIPTION`.
    pub description: Option<String>,
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
}

fn id32(v: u64) -> Option<u32> {
    match v {
        0xffff_ffff => None,
        v if v > u32::MAX as u64 => None,
        v => Some(v as u32),
    }
}

fn pid32(v: u64) -> Option<u32> {
    if v == 0 || v > u32::MAX as u64 {
        None
    } else {
        Some(v as u32)
    }
}

fn string(p: &[u8]) -> Option<String> {
    let p = p.strip_suffix(&[0]).unwrap_or(p);
    let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
    Some(String::from_utf8_lossy(&p[..end]).into_owned())
}

impl Metadata {
    /// Collects the metadata items from `(type, payload)` pairs; items of
    /// other types and malformed ones are ignored.
    pub fn from_items<'a>(items: impl IntoIterator<Item = (u64, &'a [u8])>) -> Self {
        let mut m = Metadata::default();
        for (ty, p) in items {
            match ty {
                ITEM_TIMESTAMP if p.len() >= 24 => {
                    m.timestamp = Some(kdbus::Timestamp {
                        seqnum: u64_at(p, 0),
                        monotonic_ns: u64_at(p, 8),
                        realtime_ns: u64_at(p, 16),
                    })
                }
                ITEM_CREDS if p.len() >= 64 => {
                    let f = |i: usize| id32(u64_at(p, i * 8));
                    m.creds = Some(Creds {
                        uid: f(0),
                        euid: f(1),
                        suid: f(2),
                        fsuid: f(3),
                        gid: f(4),
                        egid: f(5),
                        sgid: f(6),
                        fsgid: f(7),
                    })
                }
                ITEM_PIDS if p.len() >= 24 => {
                    m.pids = Some(Pids {
                        pid: pid32(u64_at(p, 0)),
                        tid: pid32(u64_at(p, 8)),
                        ppid: pid32(u64_at(p, 16)),
                    })
                }
                ITEM_AUXGROUPS => {
                    m.auxgroups = Some(p.chunks_exact(8).map(|c| u64_at(c, 0)).collect())
                }
                ITEM_OWNED_NAME if p.len() > 8 => {
                    if let Some(n) = string(&p[8..]) {
                        m.names.get_or_insert_with(Vec::new).push(n);
                    }
                }
                ITEM_TID_COMM => m.tid_comm = string(p),
                ITEM_PID_COMM => m.pid_comm = string(p),
                ITEM_EXE => m.exe = string(p),
                ITEM_CGROUP => m.cgroup = string(p),
                ITEM_SECLABEL => m.seclabel = string(p),
                ITEM_CONN_DESCRIPTION => m.description = string(p),
                ITEM_CMDLINE => {
                    let p = p.strip_suffix(&[0]).unwrap_or(p);
                    m.cmdline = Some(
                        p.split(|b| *b == 0)
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect(),
                    )
                }
                ITEM_CAPS if p.len() >= 4 => {
                    m.caps = Some((
                        u32_at(p, 0),
                        p[4..].chunks_exact(4).map(|c| u32_at(c, 0)).collect(),
                    ))
                }
                ITEM_AUDIT if p.len() >= 8 => m.audit = Some((u32_at(p, 0), u32_at(p, 4))),
                _ => {}
            }
        }
        m
    }

    /// The effective uid, if known (what `GetConnectionUnixUser` reports).
    pub fn euid(&self) -> Option<u32> {
        self.creds.and_then(|c| c.euid)
    }

    /// The pid, if known (what `GetConnectionUnixProcessID` reports).
    pub fn pid(&self) -> Option<u32> {
        self.pids.and_then(|p| p.pid)
    }

    /// Whether the sender owns the well-known name `name` (`None` if no
    /// names were attached).
    pub fn owns(&self, name: &str) -> Option<bool> {
        self.names.as_ref().map(|n| n.iter().any(|x| x == name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_items() {
        let mut creds = Vec::new();
        for v in [1000u64, 1000, 1000, 1000, 100, 100, 0xffff_ffff, 100] {
            creds.extend_from_slice(&v.to_ne_bytes());
        }
        let mut pids = Vec::new();
        for v in [42u64, 43, 0] {
            pids.extend_from_slice(&v.to_ne_bytes());
        }
        let mut name = 1u64.to_ne_bytes().to_vec();
        name.extend_from_slice(b"org.example.Echo\0");
        let m = Metadata::from_items([
            (ITEM_CREDS, &creds[..]),
            (ITEM_PIDS, &pids[..]),
            (ITEM_OWNED_NAME, &name[..]),
            (ITEM_PID_COMM, &b"echo\0"[..]),
            (ITEM_CMDLINE, &b"echo\0--x\0"[..]),
            (ITEM_AUDIT, &[1, 0, 0, 0, 2, 0, 0, 0][..]),
            (ITEM_CONN_DESCRIPTION, &b"sd-echo\0"[..]),
        ]);
        let c = m.creds.unwrap();
        assert_eq!((c.uid, c.gid, c.sgid), (Some(1000), Some(100), None));
        assert_eq!(m.euid(), Some(1000));
        assert_eq!(m.pid(), Some(42));
        assert_eq!(m.pids.unwrap().ppid, None);
        assert_eq!(m.names, Some(vec!["org.example.Echo".to_string()]));
        assert_eq!(m.owns("org.example.Echo"), Some(true));
        assert_eq!(m.pid_comm.as_deref(), Some("echo"));
        assert_eq!(m.cmdline, Some(vec!["echo".to_string(), "--x".into()]));
        assert_eq!(m.audit, Some((1, 2)));
        assert_eq!(m.description.as_deref(), Some("sd-echo"));
        assert_eq!(Metadata::from_items([]).owns("a.b"), None);
    }
}
