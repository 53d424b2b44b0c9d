//! `kdbus-client-test`: tests of the D-Bus client library
//! (`lib/kdbus-client`) against the real module, in the test VM
//! (`tools/testing/vm/client.sh`). TAP output like `kdbus-test`.
//!
//! ```text
//! kdbus-client-test [--list] [--timeout SECS] [--mount DIR] [TEST...]
//! ```
//!
//! Every test gets a bus of its own (`0-kct-N`, world-accessible, owned by
//! the runner) and runs in a process of its own (this binary again, with
//! `--run-test`), in its own process group, under a timeout; the services,
//! listeners and senders it needs are further processes (`--role`). What
//! a test prints as `info: ...` is shown after its `ok` line as `# ...`;
//! everything it and its helpers printed is shown after `not ok`.

mod role;
mod roles;
mod tests;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

const USAGE: &str = "usage: kdbus-client-test [--list] [--timeout SECS] [--mount DIR] [TEST...]
       (internal: --run-test NAME --bus ENDPOINT, --role ROLE --bus ENDPOINT ...)
";

/// Exit status of a test process that skipped.
pub const SKIP: i32 = 77;

fn run_one(name: &str, n: usize, mount: &str, timeout: Duration) -> (String, Vec<String>) {
    let bus_name = format!("0-kct-{n}");
    let control = match kdbus::Control::open(mount) {
        Ok(c) => c,
        Err(e) => return ("fail".into(), vec![format!("open {mount}/control: {e}")]),
    };
    let bus = match kdbus::BusMaker::new(bus_name.as_str())
        .flags(kdbus::consts::MAKE_ACCESS_WORLD)
        .make(control)
    {
        Ok(b) => b,
        Err(e) => return ("fail".into(), vec![format!("BUS_MAKE {bus_name}: {e}")]),
    };
    let (mut rd, wr) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return ("fail".into(), vec![format!("pipe: {e}")]),
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut cmd = Command::new(exe);
    cmd.arg("--run-test")
        .arg(name)
        .arg("--bus")
        .arg(bus.endpoint())
        .stdin(Stdio::null())
        .stdout(wr.try_clone().expect("dup"))
        .stderr(wr)
        .process_group(0);
    let child = cmd.spawn();
    drop(cmd); // our copies of the pipe's write end
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return ("fail".into(), vec![format!("spawn: {e}")]),
    };
    let pgid = Pid::from_raw(child.id() as i32);
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = rd.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= end => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                eprintln!("wait: {e}");
                break None;
            }
        }
    };
    // The test's helpers (and the test, after a timeout) end with it.
    let _ = killpg(pgid, Signal::SIGKILL);
    if status.is_none() {
        let _ = child.wait();
    }
    let output = reader.join().unwrap_or_default();
    drop(bus);
    let mut lines: Vec<String> = output.lines().map(str::to_string).collect();
    let verdict = match status {
        None => {
            lines.push(format!("timed out after {} s", timeout.as_secs()));
            "fail".to_string()
        }
        Some(s) if s.success() => "ok".into(),
        Some(s) if s.code() == Some(SKIP) => "skip".into(),
        Some(s) => {
            lines.push(format!("test process: {s}"));
            "fail".into()
        }
    };
    (verdict, lines)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--run-test") {
        let name = args.get(1).cloned().unwrap_or_default();
        let bus = bus_arg(&args);
        std::process::exit(tests::run(&name, &bus));
    }
    if args.first().map(String::as_str) == Some("--role") {
        let role = args.get(1).cloned().unwrap_or_default();
        let bus = bus_arg(&args);
        std::process::exit(roles::run(&role, &bus, &args[2..]));
    }

    let mut timeout = Duration::from_secs(120);
    let mut mount = kdbus_client::address::KDBUS_MOUNT.to_string();
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => {
                for t in tests::TESTS {
                    println!("{}", t.0);
                }
                return;
            }
            "--timeout" => match it.next().and_then(|v| v.parse().ok()) {
                Some(s) => timeout = Duration::from_secs(s),
                None => usage(),
            },
            "--mount" => match it.next() {
                Some(m) => mount = m.clone(),
                None => usage(),
            },
            "-h" | "--help" => {
                print!("{USAGE}");
                return;
            }
            s if s.starts_with('-') => usage(),
            s => {
                if !tests::TESTS.iter().any(|t| t.0 == s) {
                    eprintln!("kdbus-client-test: no test named '{s}' (see --list)");
                    std::process::exit(2);
                }
                names.push(s.to_string());
            }
        }
    }
    let selected: Vec<&str> = if names.is_empty() {
        tests::TESTS.iter().map(|t| t.0).collect()
    } else {
        names.iter().map(String::as_str).collect()
    };

    println!("TAP version 13");
    println!("1..{}", selected.len());
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let start = Instant::now();
    for (i, name) in selected.iter().enumerate() {
        let n = i + 1;
        let t0 = Instant::now();
        let (verdict, lines) = run_one(name, n, &mount, timeout);
        let secs = t0.elapsed().as_secs_f64();
        match verdict.as_str() {
            "ok" => {
                passed += 1;
                println!("ok {n} {name}");
                for l in lines.iter().filter_map(|l| l.strip_prefix("info: ")) {
                    println!("# {name}: {l}");
                }
            }
            "skip" => {
                skipped += 1;
                let why = lines
                    .iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("skip: "))
                    .unwrap_or("skipped");
                println!("ok {n} {name} # SKIP {why}");
            }
            _ => {
                failed += 1;
                println!("not ok {n} {name}");
                for l in &lines {
                    println!("#   {l}");
                }
            }
        }
        if secs >= 2.0 {
            println!("# {name}: {secs:.1} s");
        }
    }
    println!(
        "# kdbus-client-test: {passed} passed, {failed} failed, {skipped} skipped in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

fn bus_arg(args: &[String]) -> String {
    args.iter()
        .position(|a| a == "--bus")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| kdbus_client::address::SYSTEM_BUS_PATH.to_string())
}

fn usage() -> ! {
    eprint!("{USAGE}");
    std::process::exit(2)
}
