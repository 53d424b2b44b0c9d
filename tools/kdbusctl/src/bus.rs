//! Which endpoint to use, and opening it with errors that say what to do.

use std::path::{Path, PathBuf};

use kdbus::Errno;
use kdbus_client::{Address, Connection, ConnectionBuilder};

use crate::cli::Cli;
use crate::error::{errno_text, CtlError, Result};

/// The kdbusfs mount point.
pub const MOUNT: &str = "/sys/fs/kdbus";

/// The caller's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// `NAME` -> `<euid>-NAME` unless it already starts with `<euid>-`.
pub fn prefixed(name: &str) -> String {
    let p = format!("{}-", euid());
    if name.starts_with(&p) {
        name.to_string()
    } else {
        format!("{p}{name}")
    }
}

/// Whether `s` looks like a full bus name `<digits>-rest`.
fn has_uid_prefix(s: &str) -> bool {
    match s.split_once('-') {
        Some((u, rest)) => {
            !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
        }
        None => false,
    }
}

/// The bus directory for a `BUS` argument: a path (the directory or its
/// `bus` file) or a name (`test` -> `<mount>/<euid>-test`, `0-test` kept).
pub fn bus_dir(arg: &str, mount: &Path) -> PathBuf {
    if arg.contains('/') {
        let p = PathBuf::from(arg);
        if p.file_name().is_some_and(|f| f == "bus") {
            return p.parent().map(Path::to_path_buf).unwrap_or(p);
        }
        return p;
    }
    let name = if has_uid_prefix(arg) {
        arg.to_string()
    } else {
        prefixed(arg)
    };
    mount.join(name)
}

/// The endpoint chosen by the global options.
pub fn endpoint(cli: &Cli) -> Result<PathBuf> {
    if let Some(b) = &cli.bus {
        if b.contains(':') {
            let a = Address::parse(b).map_err(|e| CtlError::client("bad --bus address", &e))?;
            return Ok(a.endpoint().to_path_buf());
        }
        let p = PathBuf::from(b);
        if b.contains('/') {
            if p.is_dir() {
                return Ok(p.join("bus"));
            }
            return Ok(p);
        }
        return Ok(bus_dir(b, Path::new(MOUNT)).join("bus"));
    }
    if cli.user {
        return Ok(Address::user().endpoint().to_path_buf());
    }
    Ok(Address::system().endpoint().to_path_buf())
}

/// The error of opening `path` failed with `e`, with a hint.
pub fn open_error(path: &Path, e: Errno) -> CtlError {
    let base = format!("cannot open {}: {}", path.display(), errno_text(e));
    match e {
        Errno::ENOENT => {
            let mount = Path::new(MOUNT);
            if path.starts_with(mount) && !mount.join("control").exists() {
                CtlError::NoBus(format!(
                    "{base}: kdbusfs is not mounted on {MOUNT} (is kdbus.ko loaded? \
                     `mount -t kdbusfs kdbusfs {MOUNT}`)"
                ))
            } else {
                let bus = path
                    .parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let short = bus.split_once('-').map(|(_, r)| r).unwrap_or(&bus);
                CtlError::NoBus(format!(
                    "{base}: is kdbusfs mounted and the bus made? Try `kdbusctl make-bus {short}`"
                ))
            }
        }
        Errno::EACCES | Errno::EPERM => CtlError::Permission(format!(
            "{base}: the bus or endpoint was made without access for this user \
             (make it with `--access world`, or run as its owner)"
        )),
        Errno::ESHUTDOWN | Errno::ECONNRESET => {
            CtlError::NoBus(format!("{base}: the bus or endpoint is being torn down"))
        }
        _ => CtlError::errno(&format!("cannot open {}", path.display()), e),
    }
}

/// A D-Bus connection to the chosen bus, asking for `attach` metadata.
pub fn connect(path: &Path, attach: u64) -> Result<Connection> {
    ConnectionBuilder::path(path)
        .description("kdbusctl")
        .attach_recv(attach)
        .build()
        .map_err(|e| match e.errno() {
            Some(er @ (Errno::ENOENT | Errno::EACCES | Errno::EPERM | Errno::ESHUTDOWN)) => {
                open_error(path, er)
            }
            _ => CtlError::client(&format!("cannot connect to {}", path.display()), &e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_dirs() {
        let u = euid();
        assert_eq!(prefixed("test"), format!("{u}-test"));
        assert_eq!(prefixed(&format!("{u}-test")), format!("{u}-test"));
        let m = Path::new("/m");
        assert_eq!(bus_dir("0-x", m), PathBuf::from("/m/0-x"));
        assert_eq!(bus_dir("x", m), PathBuf::from(format!("/m/{u}-x")));
        assert_eq!(bus_dir("/a/b/bus", m), PathBuf::from("/a/b"));
        assert_eq!(bus_dir("/a/b", m), PathBuf::from("/a/b"));
        let e = open_error(Path::new("/sys/fs/kdbus/0-system/bus"), Errno::ENOENT);
        assert_eq!(e.exit_code(), crate::error::EXIT_NO_BUS);
        assert!(e.message().starts_with(
            "cannot open /sys/fs/kdbus/0-system/bus: No such file or directory (ENOENT): "
        ));
        let e = open_error(Path::new("/tmp/nope/bus"), Errno::ENOENT);
        assert!(
            e.message().ends_with("Try `kdbusctl make-bus nope`"),
            "{}",
            e.message()
        );
        let e = open_error(Path::new("/x/0-a/bus"), Errno::EACCES);
        assert_eq!(e.exit_code(), crate::error::EXIT_PERMISSION);
    }
}
