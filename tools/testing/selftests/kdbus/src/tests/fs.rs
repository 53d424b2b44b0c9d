//! kdbusfs nodes (spec fs.md 1, 3, 4).

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;

use kdbus::SUPER_MAGIC;

use crate::check::{errno_name, expect_present, io_errno, TestResult};
use crate::ctx::Ctx;
use crate::{ensure, ensure_eq, ensure_eq_hex};

/// statfs f_type is KDBUS_SUPER_MAGIC (0x44427573, "DBus").
pub fn statfs_magic(ctx: &Ctx) -> TestResult {
    let st = nix::sys::statfs::statfs(&ctx.mount)
        .map_err(|e| format!("statfs {}: {}", ctx.mount.display(), errno_name(e)))?;
    #[allow(clippy::unnecessary_cast)] // the field type differs between libcs
    let magic = st.filesystem_type().0 as u64;
    ensure_eq_hex!(
        magic,
        SUPER_MAGIC,
        "statfs f_type of {}",
        ctx.mount.display()
    );
    let st = nix::sys::statfs::statfs(&ctx.bus.endpoint())
        .map_err(|e| format!("statfs of the endpoint: {}", errno_name(e)))?;
    #[allow(clippy::unnecessary_cast)]
    let magic = st.filesystem_type().0 as u64;
    ensure_eq_hex!(magic, SUPER_MAGIC, "statfs f_type of a bus endpoint");
    Ok(())
}

fn list(dir: &std::path::Path) -> Result<Vec<String>, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("readdir {}: {}", dir.display(), errno_name(io_errno(e))))?;
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| format!("readdir {}: {e}", dir.display()))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

/// Root 0555 dir, control 0666 file, both owned by root; readdir shows
/// control, the bus and the endpoint; bus directories have link count 2.
pub fn nodes(ctx: &Ctx) -> TestResult {
    let root = expect_present(&ctx.mount, "mount root")?;
    ensure!(root.is_dir(), "mount root is not a directory");
    ensure_eq!(
        format!("{:o}", root.mode() & 0o7777),
        "555",
        "mode of the mount root"
    );
    ensure_eq!((root.uid(), root.gid()), (0, 0), "owner of the mount root");
    let control = expect_present(&ctx.mount.join("control"), "control")?;
    ensure!(
        control.file_type().is_file(),
        "control is not a regular file"
    );
    ensure_eq!(
        format!("{:o}", control.mode() & 0o7777),
        "666",
        "mode of control"
    );
    ensure_eq!((control.uid(), control.gid()), (0, 0), "owner of control");

    let names = list(&ctx.mount)?;
    ensure!(
        names.iter().any(|n| n == "control"),
        "readdir of the mount lacks control: {names:?}"
    );
    ensure!(
        names.iter().any(|n| n == ctx.bus.name()),
        "readdir of the mount lacks the test bus {}: {names:?}",
        ctx.bus.name()
    );
    let entries = list(&ctx.bus.dir())?;
    ensure_eq!(
        entries,
        vec!["bus".to_string()],
        "readdir of a new bus directory"
    );
    let d = expect_present(&ctx.bus.dir(), "bus directory")?;
    ensure_eq!(d.nlink(), 2, "link count of a bus directory");

    // A removed bus disappears from readdir.
    let bus = ctx.new_bus(0)?;
    let name = bus.name().to_owned();
    ensure!(
        list(&ctx.mount)?.contains(&name),
        "new bus {name} missing from readdir"
    );
    drop(bus);
    ensure!(
        !list(&ctx.mount)?.contains(&name),
        "removed bus {name} still listed by readdir"
    );
    Ok(())
}

/// read() and write() on kdbus files: EINVAL.
pub fn read_write(ctx: &Ctx) -> TestResult {
    for path in [ctx.mount.join("control"), ctx.endpoint()] {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let mut buf = [0u8; 16];
        match f.read(&mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => {
                return Err(format!(
                    "read() on {}: expected EINVAL, got {other:?}",
                    path.display()
                ))
            }
        }
        match f.write(b"hello") {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => {
                return Err(format!(
                    "write() on {}: expected EINVAL, got {other:?}",
                    path.display()
                ))
            }
        }
    }
    Ok(())
}

/// Inode numbers are node ids (fs.md 3.1): unique among live nodes and the
/// smallest free number, so the nodes of a removed bus give their numbers
/// to the next bus.
pub fn inode_numbers(ctx: &Ctx) -> TestResult {
    let ino = |p: &std::path::Path| -> Result<u64, String> {
        std::fs::metadata(p)
            .map(|m| m.ino())
            .map_err(|e| format!("stat {}: {e}", p.display()))
    };
    let live = [
        ino(&ctx.mount)?,
        ino(&ctx.mount.join("control"))?,
        ino(&ctx.bus.dir())?,
        ino(&ctx.bus.endpoint())?,
    ];
    let first = ctx.new_bus(0)?;
    let (dir, ep) = (ino(&first.dir())?, ino(&first.endpoint())?);
    ensure!(
        dir != ep && !live.contains(&dir) && !live.contains(&ep),
        "inode numbers {dir}, {ep} of a new bus collide with live nodes {live:?}"
    );
    ensure!(dir > 0 && ep > 0, "inode numbers start at 1");
    drop(first);
    let second = ctx.new_bus(0)?;
    let again = (ino(&second.dir())?, ino(&second.endpoint())?);
    ensure_eq!(
        again,
        (dir, ep),
        "numbers of the next bus after the first was removed"
    );
    Ok(())
}
