//! Per-test context: the mount point, a fresh bus, naming helpers and
//! private kdbusfs mounts.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use kdbus::{Bus, BusMaker, Connection, Control, Errno};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::check::{errno_name, expect_ok, io_errno, skip, TestResult};

/// Pool size used by the tests' connections.
pub const POOL_SIZE: u64 = 1024 * 1024;

/// Everything a test gets from the runner.
pub struct Ctx {
    /// The kdbusfs mount under test (default `/sys/fs/kdbus`).
    pub mount: PathBuf,
    /// The filesystem type name to use for private mounts.
    pub fstype: String,
    /// The test's own fresh bus (flags 0, bloom 64/8), created on `mount`.
    pub bus: Bus,
    /// Effective UID of the test process at start.
    pub euid: u32,
    /// Effective GID of the test process at start.
    pub egid: u32,
    /// `<euid>-test-<runner pid>-<test number>`, the name of `bus`.
    prefix: String,
    seq: Cell<u32>,
}

impl Ctx {
    /// Creates the context and the test's bus.
    pub fn new(mount: &Path, fstype: &str, runner_pid: u32, number: usize) -> Result<Ctx, String> {
        let euid = nix::unistd::geteuid().as_raw();
        let egid = nix::unistd::getegid().as_raw();
        let prefix = format!("{euid}-test-{runner_pid}-{number}");
        let control = Control::open(mount).map_err(|e| {
            format!(
                "cannot open {}/control: {} (is kdbusfs mounted there?)",
                mount.display(),
                errno_name(e)
            )
        })?;
        let bus = BusMaker::new(prefix.clone())
            .make(control)
            .map_err(|e| format!("BUS_MAKE of the test bus {prefix}: {}", errno_name(e)))?;
        Ok(Ctx {
            mount: mount.to_path_buf(),
            fstype: fstype.to_owned(),
            bus,
            euid,
            egid,
            prefix,
            seq: Cell::new(0),
        })
    }

    /// The test bus's default endpoint.
    pub fn endpoint(&self) -> PathBuf {
        self.bus.endpoint()
    }

    /// A bus name not used before in this run: `<test bus name>-<k>`.
    pub fn unique_name(&self) -> String {
        let k = self.seq.get() + 1;
        self.seq.set(k);
        format!("{}-{k}", self.prefix)
    }

    /// A suffix unique in this run (for names needing another prefix).
    pub fn unique_suffix(&self) -> String {
        let n = self.unique_name();
        n[n.find('-').map_or(0, |i| i + 1)..].to_owned()
    }

    /// Opens `<mount>/control`.
    pub fn control(&self) -> Result<Control, String> {
        expect_ok("open control", Control::open(&self.mount))
    }

    /// Creates another bus with a unique name and `flags` on the test mount.
    pub fn new_bus(&self, flags: u64) -> Result<Bus, String> {
        self.make_bus(BusMaker::new(self.unique_name()).flags(flags))
    }

    /// Creates the bus described by `maker` on the test mount.
    pub fn make_bus(&self, maker: BusMaker) -> Result<Bus, String> {
        let what = format!("BUS_MAKE {}", maker.name);
        expect_ok(&what, maker.make(self.control()?))
    }

    /// An ordinary connection on the test bus.
    pub fn hello(&self) -> Result<Connection, String> {
        self.hello_on(&self.endpoint())
    }

    /// An ordinary connection (no flags, no attach flags) on `endpoint`.
    pub fn hello_on(&self, endpoint: &Path) -> Result<Connection, String> {
        expect_ok(
            &format!("HELLO on {}", endpoint.display()),
            Connection::hello(endpoint, 0, 0, 0, POOL_SIZE),
        )
    }

    /// Mounts a private kdbusfs instance (a new domain) on a fresh temporary
    /// directory. Skips the test unless running as root.
    pub fn private_mount(&self) -> Result<PrivateMount, String> {
        if self.euid != 0 {
            skip("mounting kdbusfs needs root")?;
        }
        let dir = std::env::temp_dir().join(format!("kdbus-{}", self.unique_name()));
        std::fs::create_dir(&dir)
            .map_err(|e| format!("mkdir {}: {}", dir.display(), errno_name(io_errno(e))))?;
        let mut pm = PrivateMount {
            path: dir,
            mounted: false,
        };
        let r = mount(
            Some(self.fstype.as_str()),
            &pm.path,
            Some(self.fstype.as_str()),
            MsFlags::empty(),
            None::<&str>,
        );
        expect_ok(
            &format!("mount -t {} on {}", self.fstype, pm.path.display()),
            r,
        )?;
        pm.mounted = true;
        Ok(pm)
    }
}

/// A private kdbusfs mount; unmounted (lazily) and removed on drop.
pub struct PrivateMount {
    path: PathBuf,
    mounted: bool,
}

impl PrivateMount {
    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts now (plain `umount`, not lazy).
    pub fn unmount(&mut self) -> Result<(), Errno> {
        umount2(&self.path, MntFlags::empty())?;
        self.mounted = false;
        Ok(())
    }
}

impl Drop for PrivateMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = umount2(&self.path, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Runs `f` with the effective uid/gid switched to `uid`/`gid` (needs
/// root), restoring root's identity afterwards even on failure.
pub fn as_ids<T>(uid: u32, gid: u32, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    use nix::unistd::{setegid, seteuid, Gid, Uid};
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = seteuid(Uid::from_raw(0));
            let _ = setegid(Gid::from_raw(0));
        }
    }
    expect_ok("setegid", setegid(Gid::from_raw(gid)))?;
    let _restore = Restore;
    expect_ok("seteuid", seteuid(Uid::from_raw(uid)))?;
    f()
}

/// Skips the test (returns the skip marker as `Err`) unless running as root.
pub fn require_root(ctx: &Ctx) -> TestResult {
    if ctx.euid != 0 {
        return skip("needs root");
    }
    Ok(())
}
