//! What PID 1 does at boot on a kdbus system: BUS_MAKE of the system bus
//! `0-system` on `/sys/fs/kdbus`, world-accessible, and it keeps the
//! bus-owner handle open for as long as the system runs. The bus lives
//! exactly as long as that handle: on SIGTERM (or SIGINT) it is closed and
//! the bus disappears with every connection on it.
//!
//! ```sh
//! system-bus [--name 0-system] [--ready FILE]
//! ```

use kdbus_bus_demo::{fail, opt, ready, say};
use nix::sys::signal::{SigSet, Signal};
use std::os::unix::fs::PermissionsExt;

const WHO: &str = "init";

fn main() {
    let name = opt("name").unwrap_or_else(|| "0-system".into());
    // Block the signals before anything else, so that a SIGTERM arriving
    // early is waited for below, not fatal.
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    if let Err(e) = set.thread_block() {
        fail(WHO, format!("sigprocmask: {e}"));
    }
    let control = kdbus::Control::open(kdbus_client::address::KDBUS_MOUNT)
        .unwrap_or_else(|e| fail(WHO, format!("open /sys/fs/kdbus/control: {e}")));
    let maker = kdbus::BusMaker::new(name.as_str()).flags(kdbus::consts::MAKE_ACCESS_WORLD);
    let bus = maker
        .make(control)
        .unwrap_or_else(|e| fail(WHO, format!("BUS_MAKE {name}: {e}")));
    let ep = bus.endpoint();
    let mode = std::fs::metadata(&ep)
        .map(|m| format!("{:o}", m.permissions().mode() & 0o777))
        .unwrap_or_else(|e| format!("? ({e})"));
    say(
        WHO,
        format!(
            "BUS_MAKE {name}: {} (mode {mode}, bloom filters {} bytes, {} hashes); \
             pid {} holds the bus-owner fd",
            ep.display(),
            maker.bloom_size,
            maker.n_hash,
            std::process::id()
        ),
    );
    ready(opt("ready").as_deref());
    match set.wait() {
        Ok(sig) => say(WHO, format!("{sig:?}: closing the bus-owner fd")),
        Err(e) => say(WHO, format!("sigwait: {e}; closing the bus-owner fd")),
    }
    let dir = bus.dir();
    if let Err(e) = bus.close() {
        fail(WHO, format!("close: {e}"));
    }
    if dir.exists() {
        fail(
            WHO,
            format!("{} still exists after the owner closed it", dir.display()),
        );
    }
    say(
        WHO,
        format!(
            "{} is gone, and with it every connection on the bus",
            dir.display()
        ),
    );
}
