//! The control file and bus creation (spec bus.md).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::{ioctl, uapi, CmdBuf, Errno};

/// `<mount>/<name>`: the directory of bus `name`.
pub fn bus_dir(mount: impl AsRef<Path>, name: &str) -> PathBuf {
    mount.as_ref().join(name)
}

/// `<mount>/<name>/bus`: the default endpoint of bus `name`.
pub fn bus_path(mount: impl AsRef<Path>, name: &str) -> PathBuf {
    bus_dir(mount, name).join("bus")
}

pub(crate) fn open_rdwr(path: &Path) -> Result<OwnedFd, Errno> {
    open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
}

/// An open handle on `<mount>/control` (an unset handle until BUS_MAKE).
#[derive(Debug)]
pub struct Control {
    fd: OwnedFd,
    mount: PathBuf,
}

impl Control {
    /// Opens `<mount>/control` with `O_RDWR | O_CLOEXEC`.
    pub fn open(mount: impl AsRef<Path>) -> Result<Self, Errno> {
        let mount = mount.as_ref().to_path_buf();
        let fd = open_rdwr(&mount.join("control"))?;
        Ok(Control { fd, mount })
    }

    /// The mount point this handle was opened under.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// Issues `cmd` as KDBUS_CMD_BUS_MAKE on this handle (the kernel may
    /// write `flags`, `return_flags` and negotiate entries back into `cmd`).
    pub fn bus_make_raw(&self, cmd: &mut CmdBuf) -> Result<(), Errno> {
        ioctl(&self.fd, uapi::KDBUS_CMD_BUS_MAKE, cmd.words_mut())
    }

    /// Turns this handle into a [`Bus`] after a successful BUS_MAKE of `name`
    /// issued through [`Control::bus_make_raw`] (or a raw ioctl).
    pub fn into_bus(self, name: &str) -> Bus {
        Bus {
            fd: self.fd,
            mount: self.mount,
            name: name.to_owned(),
        }
    }

    /// Creates a bus from `maker` on this handle, consuming it.
    pub fn make_bus(self, maker: &BusMaker) -> Result<Bus, Errno> {
        maker.make(self)
    }

    /// Gives up the wrapper, returning the descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Control {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Control {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Parameters of a KDBUS_CMD_BUS_MAKE call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMaker {
    /// The full bus name including the `<euid>-` prefix.
    pub name: String,
    /// Bloom filter size in bytes.
    pub bloom_size: u64,
    /// Number of bloom hash functions.
    pub n_hash: u64,
    /// `KDBUS_MAKE_*` flags.
    pub flags: u64,
    /// `KDBUS_ITEM_ATTACH_FLAGS_SEND` payload; the item is sent only if
    /// `Some`.
    pub attach_flags_send: Option<u64>,
}

impl BusMaker {
    /// A bus named `name` with the common bloom parameters (64 bytes,
    /// 8 hashes), no flags and no attach item.
    pub fn new(name: impl Into<String>) -> Self {
        BusMaker {
            name: name.into(),
            bloom_size: 64,
            n_hash: 8,
            flags: 0,
            attach_flags_send: None,
        }
    }

    /// Sets the bloom parameters.
    pub fn bloom(mut self, size: u64, n_hash: u64) -> Self {
        self.bloom_size = size;
        self.n_hash = n_hash;
        self
    }

    /// Sets the `KDBUS_MAKE_*` flags.
    pub fn flags(mut self, flags: u64) -> Self {
        self.flags = flags;
        self
    }

    /// Adds an ATTACH_FLAGS_SEND item with `mask`.
    pub fn attach_flags_send(mut self, mask: u64) -> Self {
        self.attach_flags_send = Some(mask);
        self
    }

    /// The command: `kdbus_cmd` + MAKE_NAME + BLOOM_PARAMETER
    /// [+ ATTACH_FLAGS_SEND].
    pub fn cmd(&self) -> CmdBuf {
        let mut c = CmdBuf::cmd(self.flags);
        c.push_str(uapi::KDBUS_ITEM_MAKE_NAME as u64, &self.name);
        c.push_bloom_parameter(self.bloom_size, self.n_hash);
        if let Some(mask) = self.attach_flags_send {
            c.push_u64(uapi::KDBUS_ITEM_ATTACH_FLAGS_SEND as u64, mask);
        }
        c
    }

    /// Issues this BUS_MAKE on an arbitrary descriptor (e.g. one that must
    /// refuse it with `EBADFD`).
    pub fn make_on(&self, fd: impl AsFd) -> Result<(), Errno> {
        ioctl(fd, uapi::KDBUS_CMD_BUS_MAKE, self.cmd().words_mut())
    }

    /// Creates the bus on `control`; the returned [`Bus`] owns the handle.
    pub fn make(&self, control: Control) -> Result<Bus, Errno> {
        self.make_on(&control)?;
        Ok(control.into_bus(&self.name))
    }
}

/// Creates bus `name` on `control` (the attach item is sent only for a
/// non-zero `attach_flags_send`, which is equivalent to sending 0).
pub fn make_bus(
    control: Control,
    name: &str,
    bloom_size: u64,
    n_hash: u64,
    flags: u64,
    attach_flags_send: u64,
) -> Result<Bus, Errno> {
    let mut m = BusMaker::new(name).bloom(bloom_size, n_hash).flags(flags);
    if attach_flags_send != 0 {
        m = m.attach_flags_send(attach_flags_send);
    }
    m.make(control)
}

/// A bus-owner handle. Dropping it closes the descriptor, which tears the
/// bus down (fs.md section 5).
#[derive(Debug)]
pub struct Bus {
    fd: OwnedFd,
    mount: PathBuf,
    name: String,
}

impl Bus {
    /// The bus name (`<euid>-...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kdbusfs mount the bus lives in.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// `<mount>/<name>`.
    pub fn dir(&self) -> PathBuf {
        bus_dir(&self.mount, &self.name)
    }

    /// `<mount>/<name>/bus`, the default endpoint.
    pub fn endpoint(&self) -> PathBuf {
        bus_path(&self.mount, &self.name)
    }

    /// Closes the owner handle explicitly, reporting `close()`'s errno.
    pub fn close(self) -> Result<(), Errno> {
        nix::unistd::close(self.fd.into_raw_fd())
    }

    /// Gives up the wrapper, returning the owner descriptor.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Bus {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Bus {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            bus_path("/sys/fs/kdbus", "0-test"),
            PathBuf::from("/sys/fs/kdbus/0-test/bus")
        );
        assert_eq!(bus_dir("/mnt", "1000-x"), PathBuf::from("/mnt/1000-x"));
    }

    #[test]
    fn bus_make_cmd_layout() {
        let c = BusMaker::new("0-ab")
            .bloom(128, 3)
            .flags(2)
            .attach_flags_send(0x3fff)
            .cmd();
        // 24 + 24 (name "0-ab\0": 21 -> 24) + 32 + 24
        assert_eq!(c.size(), 24 + 24 + 32 + 24);
        assert_eq!(c.flags(), 2);
        let items = c.items().collect_items().unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].ty, uapi::KDBUS_ITEM_MAKE_NAME as u64);
        assert_eq!(items[0].size, 21);
        assert_eq!(items[0].as_str(), Some("0-ab"));
        assert_eq!(items[1].as_bloom_parameter(), Some((128, 3)));
        assert_eq!(items[2].ty, uapi::KDBUS_ITEM_ATTACH_FLAGS_SEND as u64);
        assert_eq!(items[2].as_u64(), Some(0x3fff));
        assert_eq!(BusMaker::new("0-ab").cmd().items().count(), 2);
    }

    #[test]
    fn control_open_missing_mount() {
        let e = Control::open("/nonexistent-kdbus-mount").unwrap_err();
        assert_eq!(e, Errno::ENOENT);
    }
}
