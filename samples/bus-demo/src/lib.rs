//! What the programs of `make demo` share: the names of the echo service,
//! story output, readiness files.
//!
//! The programs (each one process; `tools/testing/demo.sh` runs them in
//! the VM, see `tools/testing/vm/demo-run.sh`):
//!
//! * `system-bus`: what PID 1 does at boot: makes the system bus
//!   `0-system` and holds its owner handle until SIGTERM;
//! * `echo-service`: owns `org.example.Echo`, answers
//!   `Echo(s text, u times) -> (s echoed, u length)` and announces every
//!   call with the broadcast signal `Echoed(s text, s caller)`;
//! * `echo-client`: calls the service by name with typed arguments, shows
//!   the replies and two D-Bus errors, then stops the service and watches
//!   its name go;
//! * `listener`: adds one match rule and reports the signals it got.
//!
//! Every line a program prints goes through [`say`], which puts
//! `$KDBUS_DEMO_MARK` in front (the VM's run script sets it, and demo.sh
//! keeps only the marked lines of the serial console).

use std::time::{Duration, Instant};

/// The service's well-known name.
pub const NAME: &str = "org.example.Echo";
/// Its object.
pub const PATH: &str = "/org/example/Echo";
/// Its interface.
pub const IFACE: &str = "org.example.Echo";

/// Prints one story line: `<mark><who>: <what>`.
pub fn say(who: &str, what: impl std::fmt::Display) {
    let mark = std::env::var("KDBUS_DEMO_MARK").unwrap_or_default();
    println!("{mark}{who}: {what}");
}

/// Prints a failure and exits with status 1.
pub fn fail(who: &str, what: impl std::fmt::Display) -> ! {
    say(who, format!("FAILED: {what}"));
    std::process::exit(1)
}

/// Creates `path` (if given): tells the run script this program is ready.
pub fn ready(path: Option<&str>) {
    if let Some(p) = path {
        if let Err(e) = std::fs::write(p, b"") {
            eprintln!("cannot write {p}: {e}");
        }
    }
}

/// The value of `--NAME VALUE` in the arguments, if present.
pub fn opt(name: &str) -> Option<String> {
    let flag = format!("--{name}");
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The endpoint to connect to: `--bus PATH`, default the system bus.
pub fn address() -> kdbus_client::Address {
    match opt("bus") {
        Some(p) => kdbus_client::Address::path(p),
        None => kdbus_client::Address::system(),
    }
}

/// Waits up to `limit` for `cond`, polling every 20 ms.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// `"a", "b"` for display.
pub fn quoted(args: &[&str]) -> String {
    args.iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
