//! Policy uploads and custom endpoints (policy.md, endpoint.md): the
//! `KDBUS_ITEM_POLICY_ACCESS` rules, policy-holder and activator HELLOs,
//! the policy UPDATE of a policy holder, and KDBUS_CMD_ENDPOINT_MAKE /
//! KDBUS_CMD_ENDPOINT_UPDATE on an endpoint-owner handle.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::consts::*;
use crate::{ioctl, open_endpoint, uapi, CmdBuf, Connection, Errno};

/// One `struct kdbus_policy_access` rule (24 bytes: `type`, `access`,
/// `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    /// `KDBUS_POLICY_ACCESS_USER`, `_GROUP` or `_WORLD` (any value, to test
    /// refusals).
    pub ty: u64,
    /// `KDBUS_POLICY_SEE`, `_TALK` or `_OWN` (any value).
    pub access: u64,
    /// The uid or gid (ignored for WORLD).
    pub id: u64,
}

impl Access {
    /// A rule for user `uid`.
    pub fn user(uid: u64, access: u64) -> Self {
        Access {
            ty: POLICY_ACCESS_USER,
            access,
            id: uid,
        }
    }

    /// A rule for group `gid` (effective or supplementary).
    pub fn group(gid: u64, access: u64) -> Self {
        Access {
            ty: POLICY_ACCESS_GROUP,
            access,
            id: gid,
        }
    }

    /// A rule for everybody.
    pub fn world(access: u64) -> Self {
        Access {
            ty: POLICY_ACCESS_WORLD,
            access,
            id: 0,
        }
    }

    /// The 24-byte item payload.
    pub fn payload(&self) -> [u8; 24] {
        let mut p = [0u8; 24];
        p[..8].copy_from_slice(&self.ty.to_ne_bytes());
        p[8..16].copy_from_slice(&self.access.to_ne_bytes());
        p[16..].copy_from_slice(&self.id.to_ne_bytes());
        p
    }
}

/// One policy entry as uploaded: a `KDBUS_ITEM_NAME` (exact, or a
/// `prefix.*` wildcard) followed by its POLICY_ACCESS rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntry {
    /// The name as sent.
    pub name: String,
    /// The rules, in order.
    pub rules: Vec<Access>,
}

impl PolicyEntry {
    /// An entry for `name` with `rules`.
    pub fn new(name: impl Into<String>, rules: &[Access]) -> Self {
        PolicyEntry {
            name: name.into(),
            rules: rules.to_vec(),
        }
    }
}

impl CmdBuf {
    /// Appends a `KDBUS_ITEM_POLICY_ACCESS` item.
    pub fn push_policy_access(&mut self, a: &Access) -> usize {
        self.push_item(ITEM_POLICY_ACCESS, &a.payload())
    }

    /// Appends every entry: its NAME item, then one POLICY_ACCESS item per
    /// rule.
    pub fn push_policy(&mut self, entries: &[PolicyEntry]) {
        for e in entries {
            self.push_str(ITEM_NAME, &e.name);
            for r in &e.rules {
                self.push_policy_access(r);
            }
        }
    }
}

impl Connection {
    /// The HELLO command of a policy holder (`KDBUS_HELLO_POLICY_HOLDER |
    /// extra_flags`) or activator (pass `KDBUS_HELLO_ACTIVATOR` as `kind`)
    /// for `entry`: its NAME then its rules.
    pub fn special_hello_cmd(kind: u64, entry: &PolicyEntry, pool_size: u64) -> CmdBuf {
        let mut cmd = Self::hello_cmd(kind, 0, 0, pool_size);
        cmd.push_policy(std::slice::from_ref(entry));
        cmd
    }

    /// HELLO of a policy holder for `entry` on `endpoint` (owner rights
    /// needed; policy.md 3).
    pub fn hello_policy_holder(
        endpoint: impl AsRef<Path>,
        entry: &PolicyEntry,
        pool_size: u64,
    ) -> Result<Self, Errno> {
        let fd = open_endpoint(endpoint)?;
        let mut cmd = Self::special_hello_cmd(HELLO_POLICY_HOLDER, entry, pool_size);
        Self::from_hello(fd, &mut cmd)
    }

    /// HELLO of an activator for `entry` (its name, with its rules) on
    /// `endpoint` (owner rights needed; names.md 6).
    pub fn hello_activator(
        endpoint: impl AsRef<Path>,
        entry: &PolicyEntry,
        pool_size: u64,
    ) -> Result<Self, Errno> {
        let fd = open_endpoint(endpoint)?;
        let mut cmd = Self::special_hello_cmd(HELLO_ACTIVATOR, entry, pool_size);
        Self::from_hello(fd, &mut cmd)
    }

    /// KDBUS_CMD_UPDATE of a policy holder replacing its bus policy entry
    /// with `entries` (one for a valid update; connection.md 5).
    pub fn update_policy(&self, entries: &[PolicyEntry]) -> Result<(), Errno> {
        let mut cmd = CmdBuf::cmd(0);
        cmd.push_policy(entries);
        self.ioctl(uapi::KDBUS_CMD_UPDATE, &mut cmd)
    }
}

/// A custom endpoint: the endpoint-owner handle (endpoint.md 2). Dropping
/// it closes the handle, which tears the endpoint down (its file goes and
/// every connection made through it is disconnected).
#[derive(Debug)]
pub struct Endpoint {
    fd: OwnedFd,
    path: PathBuf,
}

impl Endpoint {
    /// The ENDPOINT_MAKE command: `flags` and one `KDBUS_ITEM_MAKE_NAME`.
    pub fn make_cmd(flags: u64, name: &str) -> CmdBuf {
        let mut cmd = CmdBuf::cmd(flags);
        cmd.push_str(ITEM_MAKE_NAME, name);
        cmd
    }

    /// Issues ENDPOINT_MAKE with the raw command `cmd` on the unset handle
    /// `fd` (a handle on a bus's default endpoint).
    pub fn make_raw(fd: impl AsFd, cmd: &mut CmdBuf) -> Result<(), Errno> {
        ioctl(fd, uapi::KDBUS_CMD_ENDPOINT_MAKE, cmd.words_mut())
    }

    /// Opens `bus_endpoint` (the bus's `bus` file) and makes the custom
    /// endpoint `name` (`<euid>-...`) with `flags`
    /// (`KDBUS_MAKE_ACCESS_GROUP` / `_WORLD`) beside it.
    pub fn make(bus_endpoint: impl AsRef<Path>, name: &str, flags: u64) -> Result<Self, Errno> {
        let fd = open_endpoint(bus_endpoint.as_ref())?;
        Self::make_on(fd, bus_endpoint, name, flags)
    }

    /// Makes the custom endpoint `name` on the already opened unset handle
    /// `fd` of `bus_endpoint`.
    pub fn make_on(
        fd: OwnedFd,
        bus_endpoint: impl AsRef<Path>,
        name: &str,
        flags: u64,
    ) -> Result<Self, Errno> {
        Self::make_raw(&fd, &mut Self::make_cmd(flags, name))?;
        let dir = bus_endpoint
            .as_ref()
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf);
        Ok(Endpoint {
            fd,
            path: dir.join(name),
        })
    }

    /// The endpoint file (`<bus dir>/<name>`), to connect through.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// KDBUS_CMD_ENDPOINT_UPDATE replacing the endpoint's policy database
    /// with `entries` (none: cleared).
    pub fn update(&self, entries: &[PolicyEntry]) -> Result<(), Errno> {
        let mut cmd = CmdBuf::cmd(0);
        cmd.push_policy(entries);
        self.update_raw(&mut cmd)
    }

    /// Issues ENDPOINT_UPDATE with the raw `kdbus_cmd` in `cmd`.
    pub fn update_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        ioctl(&self.fd, uapi::KDBUS_CMD_ENDPOINT_UPDATE, cmd.words_mut())
    }

    /// Closes the endpoint-owner handle (tearing the endpoint down),
    /// reporting `close()`'s errno.
    pub fn close(self) -> Result<(), Errno> {
        nix::unistd::close(self.fd.into_raw_fd())
    }
}

impl AsFd for Endpoint {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Endpoint {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_payload() {
        let a = Access::user(1000, POLICY_OWN);
        let p = a.payload();
        assert_eq!(u64::from_ne_bytes(p[..8].try_into().unwrap()), 1);
        assert_eq!(u64::from_ne_bytes(p[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_ne_bytes(p[16..].try_into().unwrap()), 1000);
        assert_eq!(Access::group(5, POLICY_TALK).ty, 2);
        assert_eq!(
            Access::world(POLICY_SEE),
            Access {
                ty: 3,
                access: 0,
                id: 0
            }
        );
    }

    #[test]
    fn policy_items() {
        let mut c = CmdBuf::cmd(0);
        c.push_policy(&[
            PolicyEntry::new(
                "a.b",
                &[Access::world(POLICY_TALK), Access::user(7, POLICY_OWN)],
            ),
            PolicyEntry::new("c.*", &[]),
        ]);
        let items = c.items().collect_items().unwrap();
        let tys: Vec<u64> = items.iter().map(|i| i.ty).collect();
        assert_eq!(
            tys,
            [ITEM_NAME, ITEM_POLICY_ACCESS, ITEM_POLICY_ACCESS, ITEM_NAME]
        );
        assert_eq!(items[1].size, 40);
        assert_eq!(items[2].u64s().unwrap(), [1, 2, 7]);
        assert_eq!(items[3].as_str(), Some("c.*"));
        // 24 + 24 ("a.b") + 40 + 40 + 24 ("c.*").
        assert_eq!(c.size(), 152);
    }

    #[test]
    fn special_hello_and_make_cmds() {
        let e = PolicyEntry::new("x.y", &[Access::world(POLICY_SEE)]);
        let c = Connection::special_hello_cmd(HELLO_POLICY_HOLDER, &e, 4096);
        assert_eq!(c.flags(), HELLO_POLICY_HOLDER);
        assert_eq!(c.items().count(), 2);
        let m = Endpoint::make_cmd(MAKE_ACCESS_WORLD, "0-ep");
        assert_eq!(m.flags(), MAKE_ACCESS_WORLD);
        let it = m.items().collect_items().unwrap();
        assert_eq!((it[0].ty, it[0].as_str()), (ITEM_MAKE_NAME, Some("0-ep")));
    }
}
