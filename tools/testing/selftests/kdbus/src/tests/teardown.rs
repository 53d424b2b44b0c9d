//! Teardown of buses and domains (spec fs.md 2 and 5, connection.md 9).

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use kdbus::{
    open_endpoint, poll_once, uapi, BusMaker, CmdBuf, Connection, Control, Errno, PollFlags,
    SUPER_MAGIC,
};

use super::raw;
use crate::check::{
    expect_absent, expect_errno, expect_ok, expect_poll, expect_present, TestResult,
};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq, ensure_eq_hex};

/// Closing the owner handle removes the bus while connections are open;
/// they get ECONNRESET and POLLERR|POLLHUP; the endpoint path is gone and
/// the name can be reused.
pub fn bus_close(ctx: &Ctx) -> TestResult {
    let name = ctx.unique_name();
    let bus = ctx.make_bus(BusMaker::new(&name))?;
    let (dir, ep) = (bus.dir(), bus.endpoint());
    let c1 = ctx.hello_on(&ep)?;
    let c2 = ctx.hello_on(&ep)?;
    let slice = c1
        .pool_bytes(c1.hello_reply().offset, 32)
        .ok_or("HELLO slice unreadable")?
        .to_vec();

    expect_ok("close of the bus owner handle", bus.close())?;
    expect_absent(
        &dir,
        "bus directory after closing the owner (connections still open)",
    )?;
    expect_errno(
        "open of the removed endpoint",
        open_endpoint(&ep),
        Errno::ENOENT,
    )?;

    expect_errno(
        "BYEBYE on a connection of the removed bus",
        c1.byebye(),
        Errno::ECONNRESET,
    )?;
    expect_errno(
        "FREE on a connection of the removed bus",
        c2.free(c2.hello_reply().offset),
        Errno::ECONNRESET,
    )?;
    let mut upd = CmdBuf::cmd(0);
    expect_errno(
        "UPDATE on a connection of the removed bus",
        c2.ioctl(uapi::KDBUS_CMD_UPDATE, &mut upd),
        Errno::ECONNRESET,
    )?;
    let ev = expect_ok(
        "poll",
        poll_once(&c1, PollFlags::POLLIN | PollFlags::POLLOUT, 0),
    )?;
    expect_poll(
        "poll on a connection of the removed bus",
        ev,
        PollFlags::POLLERR | PollFlags::POLLHUP,
        PollFlags::empty(),
    )?;
    let now = c1
        .pool_bytes(c1.hello_reply().offset, 32)
        .ok_or("pool unreadable after teardown")?;
    ensure_eq!(now, &slice[..], "HELLO slice after the bus was torn down");

    let again = ctx.make_bus(BusMaker::new(&name))?;
    let c3 = ctx.hello_on(&again.endpoint())?;
    ensure!(
        c3.id() > c2.id(),
        "id on the re-created bus {} not above {}",
        c3.id(),
        c2.id()
    );
    expect_ok("close of a connection of the removed bus", c1.close())?;
    expect_ok("close of a connection of the removed bus", c2.close())?;
    Ok(())
}

/// A handle opened before the teardown cannot HELLO afterwards: ESHUTDOWN.
pub fn unset_handle(ctx: &Ctx) -> TestResult {
    let bus = ctx.new_bus(0)?;
    let fd = expect_ok("open endpoint", open_endpoint(bus.endpoint()))?;
    drop(bus);
    let mut cmd = Connection::hello_cmd(0, 0, 0, POOL_SIZE);
    expect_errno(
        "HELLO on a handle whose bus was torn down",
        raw(&fd, uapi::KDBUS_CMD_HELLO, &mut cmd),
        Errno::ESHUTDOWN,
    )?;
    let ev = expect_ok(
        "poll",
        poll_once(&fd, PollFlags::POLLIN | PollFlags::POLLOUT, 0),
    )?;
    expect_poll(
        "poll on an unset handle of a removed bus",
        ev,
        PollFlags::POLLERR | PollFlags::POLLHUP,
        PollFlags::empty(),
    )
}

/// A private mount is a separate domain: own control file, own buses, own
/// ID counter; it unmounts once every descriptor is closed.
pub fn private_mount(ctx: &Ctx) -> TestResult {
    let mut pm = ctx.private_mount()?;
    let root = pm.path().to_path_buf();

    let st = expect_ok(
        "statfs of the private mount",
        nix::sys::statfs::statfs(&root),
    )?;
    #[allow(clippy::unnecessary_cast)] // the field type differs between libcs
    let magic = st.filesystem_type().0 as u64;
    ensure_eq_hex!(magic, SUPER_MAGIC, "statfs f_type of the private mount");
    let r = expect_present(&root, "private mount root")?;
    ensure!(r.is_dir(), "private mount root is not a directory");
    ensure_eq!(
        format!("{:o}", r.mode() & 0o7777),
        "555",
        "mode of the private mount root"
    );
    let control = expect_present(&root.join("control"), "control of the private mount")?;
    ensure!(
        control.file_type().is_file() && !control.file_type().is_fifo(),
        "control is not a regular file"
    );
    ensure_eq!(
        format!("{:o}", control.mode() & 0o7777),
        "666",
        "mode of control"
    );

    // Buses are per domain.
    let name = ctx.unique_name();
    let bus = expect_ok(
        "BUS_MAKE on the private mount",
        BusMaker::new(&name).make(expect_ok("open private control", Control::open(&root))?),
    )?;
    expect_present(&bus.endpoint(), "bus on the private mount")?;
    expect_absent(
        &ctx.mount.join(&name),
        "private mount's bus seen in the main mount",
    )?;
    expect_absent(
        &root.join(ctx.bus.name()),
        "main mount's bus seen in the private mount",
    )?;
    // Its own ID counter: bus 1, connection 2, bus 3, connection 4, while
    // the main mount counts on undisturbed.
    let c = ctx.hello_on(&bus.endpoint())?;
    ensure_eq!(c.id(), 2, "first connection id on a fresh domain");
    let same = expect_ok(
        "BUS_MAKE of the test bus's name on the private mount",
        BusMaker::new(ctx.bus.name())
            .make(expect_ok("open private control", Control::open(&root))?),
    )?;
    expect_present(&same.endpoint(), "same-named bus on the private mount")?;
    let c2 = ctx.hello_on(&same.endpoint())?;
    ensure_eq!(c2.id(), 4, "connection id after a second bus");

    drop((c, c2, bus, same));
    expect_ok(&format!("umount {}", root.display()), pm.unmount())?;
    expect_absent(&root.join("control"), "control after unmounting")?;
    Ok(())
}
