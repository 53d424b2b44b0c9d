//! Bus addresses: a kdbus endpoint path, by convention or from a D-Bus
//! address string (`kernel:path=...`, as sd-bus used).

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The system bus's endpoint (`/sys/fs/kdbus/0-system/bus`).
pub const SYSTEM_BUS_PATH: &str = "/sys/fs/kdbus/0-system/bus";
/// The kdbusfs mount point.
pub const KDBUS_MOUNT: &str = "/sys/fs/kdbus";

/// Where to connect: a kdbus endpoint file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    path: PathBuf,
}

impl Address {
    /// The endpoint at `path` (any endpoint: a bus's `bus` file or a custom
    /// endpoint).
    pub fn path(path: impl AsRef<Path>) -> Self {
        Address {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// The endpoint path.
    pub fn endpoint(&self) -> &Path {
        &self.path
    }

    /// The system bus: the first `kernel:` entry of
    /// `$DBUS_SYSTEM_BUS_ADDRESS` if there is one, else
    /// `/sys/fs/kdbus/0-system/bus`.
    pub fn system() -> Self {
        std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .ok()
            .and_then(|a| Self::parse(&a).ok())
            .unwrap_or_else(|| Self::path(SYSTEM_BUS_PATH))
    }

    /// The user bus of the calling user: the first `kernel:` entry of
    /// `$DBUS_SESSION_BUS_ADDRESS` if there is one, else
    /// `/sys/fs/kdbus/<uid>-user/bus`.
    pub fn user() -> Self {
        std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .ok()
            .and_then(|a| Self::parse(&a).ok())
            .unwrap_or_else(|| Self::user_bus(current_uid()))
    }

    /// The user bus of `uid`: `/sys/fs/kdbus/<uid>-user/bus`.
    pub fn user_bus(uid: u32) -> Self {
        Self::path(format!("{KDBUS_MOUNT}/{uid}-user/bus"))
    }

    /// Parses a D-Bus address string: `;`-separated entries
    /// `transport:key=value,...` with `%xx` escapes; the first `kernel:`
    /// entry with a `path` is taken, other transports are skipped. sd-bus
    /// wrote e.g. `kernel:path=/sys/fs/kdbus/0-system/bus;unix:path=/run/dbus/system_bus_socket`.
    ///
    /// ```
    /// use kdbus_client::Address;
    /// let a = Address::parse("unix:path=/run/x;kernel:path=/sys/fs/kdbus/1000-user/bus").unwrap();
    /// assert_eq!(a.endpoint().to_str(), Some("/sys/fs/kdbus/1000-user/bus"));
    /// assert!(Address::parse("unix:path=/run/dbus/system_bus_socket").is_err());
    /// assert!(Address::parse("kernel:path=/a%2").is_err());
    /// ```
    pub fn parse(address: &str) -> Result<Self> {
        let bad = |m: String| Error::InvalidAddress(m);
        for entry in address.split(';').filter(|e| !e.is_empty()) {
            let Some((transport, params)) = entry.split_once(':') else {
                return Err(bad(format!("address entry {entry:?} has no transport")));
            };
            if transport != "kernel" {
                continue;
            }
            let mut path = None;
            for kv in params.split(',').filter(|p| !p.is_empty()) {
                let Some((k, v)) = kv.split_once('=') else {
                    return Err(bad(format!("address parameter {kv:?} has no '='")));
                };
                let v = unescape(v).ok_or_else(|| bad(format!("bad %-escape in {v:?}")))?;
                match k {
                    "path" => path = Some(v),
                    _ => return Err(bad(format!("unknown kernel address key {k:?}"))),
                }
            }
            if let Some(p) = path {
                return Ok(Self::path(p));
            }
            return Err(bad(format!("kernel address {entry:?} without path")));
        }
        Err(bad(format!("no kernel: entry in {address:?}")))
    }
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn unescape(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3)?;
            let s = core::str::from_utf8(h).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl std::str::FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_entries() {
        let a = Address::parse(
            "kernel:path=/sys/fs/kdbus/0-system/bus;unix:path=/run/dbus/system_bus_socket",
        )
        .unwrap();
        assert_eq!(a.endpoint(), Path::new(SYSTEM_BUS_PATH));
        let a = Address::parse("kernel:path=/sys/fs/kdbus/0%2dtest/bus").unwrap();
        assert_eq!(a.endpoint(), Path::new("/sys/fs/kdbus/0-test/bus"));
        assert!(Address::parse("kernel:").is_err());
        assert!(Address::parse("kernel:foo=bar").is_err());
        assert!(Address::parse("garbage").is_err());
        assert!(Address::parse("").is_err());
        assert_eq!(
            Address::user_bus(1000).endpoint(),
            Path::new("/sys/fs/kdbus/1000-user/bus")
        );
    }
}
