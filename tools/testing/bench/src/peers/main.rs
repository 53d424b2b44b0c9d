//! `kdbus-bench-peers`: method-call round trips between two processes
//! through kdbus, dbus-daemon and dbus-broker, each against an AF_UNIX
//! socketpair between two processes measured in the same run.
//!
//! The client (this process) sends a payload of 8 B, 4 KiB or 64 KiB and
//! waits for the echo; the server is another process (this program re-run
//! as `kdbus-bench-peers serve KIND ...`), the brokers are a third. The
//! transports (see `transport::Kind`) sit behind one trait,
//! `transport::Peer`, so the kdbus side can move to the project's D-Bus
//! client library (`lib/kdbus-client`, the plug-in point in
//! `transport.rs`) without touching the rest. On dbus-daemon and
//! dbus-broker both ends use sd-bus (libsystemd): this program is built
//! dynamically (`tools/testing/bench.sh`; a static build reports those two
//! as failed).
//!
//! See `USAGE`. Exits 1 when a measurement failed (never because of a
//! ratio), 2 on bad usage.

mod daemons;
mod proc;
#[cfg(not(target_feature = "crt-static"))]
mod sdbus;
#[cfg(target_feature = "crt-static")]
#[path = "sdbus_static.rs"]
mod sdbus;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kdbus_bench::data::{self, Pin};
use kdbus_bench::report::{
    bench_ratio, err_field, fmt_rate, fmt_ratio, human, noisy_note, ratio, spread_field,
    system_line, val,
};
use kdbus_bench::timing::{run_for, Failure, Outcome, Stat};

use transport::{Env, Kind, Running, ALL};

const PAYLOADS: [usize; 3] = [8, 4 << 10, 64 << 10];
const DEFAULT_BUDGET: f64 = 100.0;

const USAGE: &str = "\
usage: kdbus-bench-peers [--budget SECS] [--rounds N] [--only KIND[,KIND...]]
                         [--where vm|host] [--pin same|none] [--mount PATH]
                         [--dbus-daemon PATH] [--dbus-broker-launch PATH]
                         [--inotify-shim PATH] [--verbose]

  --budget SECS   time the measurements aim to take (default 100), spread
                  evenly over payloads, transports and rounds (starting the
                  servers and brokers is not counted)
  --rounds N      interleaved rounds per measurement (default 5); the
                  median round counts
  --only KINDS    transports (comma-separated): socket (the baseline, always
                  run), kdbus (lib/kdbus, no D-Bus marshalling), kdbus-dbus
                  (lib/kdbus-client on both ends, D-Bus marshalling),
                  dbus-daemon, dbus-broker. Default: all in the VM, all but
                  the kdbus ones on the host
  --where WHERE   vm or host: the BENCH tag (peers / peers_host) and the
                  default transports; default vm when KDBUS_VM=1 (the test
                  VM's init sets it), else host
  --pin MODE      same (default): this process, and so every server and
                  broker it starts, pinned to CPU 0; none: not pinned
  --mount PATH    kdbusfs mount point (default /sys/fs/kdbus)
  --dbus-daemon PATH, --dbus-broker-launch PATH
                  the programs (default: found in $PATH)
  --inotify-shim PATH
                  tools/testing/vm/noinotify.c built as a shared library,
                  preloaded into dbus-broker-launch when the kernel has no
                  inotify (default /usr/lib/kdbus-bench/noinotify.so, where
                  the VM image has it)
  --verbose       print every round's iterations and time (stderr)

Internal modes (the child processes): serve socket FD | serve kdbus ENDPOINT |
serve kdbus-dbus ENDPOINT | serve sdbus ADDRESS |
broker-launch LAUNCHER CONFIG ADDRESS SHIM.

Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad usage.";

struct Opts {
    budget: f64,
    rounds: u32,
    kinds: Vec<Kind>,
    host: bool,
    pin: Pin,
    mount: String,
    dbus_daemon: Option<PathBuf>,
    broker_launch: Option<PathBuf>,
    inotify_shim: PathBuf,
    verbose: bool,
}

/// Where the VM image has the inotify stand-in.
const INOTIFY_SHIM: &str = "/usr/lib/kdbus-bench/noinotify.so";

fn parse_args(args: Vec<String>) -> Result<Opts, String> {
    let mut o = Opts {
        budget: DEFAULT_BUDGET,
        rounds: 5,
        kinds: Vec::new(),
        host: std::env::var("KDBUS_VM").as_deref() != Ok("1"),
        pin: Pin::Same,
        mount: "/sys/fs/kdbus".into(),
        dbus_daemon: None,
        broker_launch: None,
        inotify_shim: INOTIFY_SHIM.into(),
        verbose: false,
    };
    let mut only: Option<Vec<Kind>> = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--budget" => {
                o.budget = val("--budget")?
                    .parse()
                    .ok()
                    .filter(|b: &f64| *b > 0.0 && b.is_finite())
                    .ok_or("--budget needs a positive number of seconds")?;
            }
            "--rounds" => {
                o.rounds = val("--rounds")?
                    .parse()
                    .ok()
                    .filter(|r| (1..=100).contains(r))
                    .ok_or("--rounds needs a number from 1 to 100")?;
            }
            "--only" => {
                let v = val("--only")?;
                let mut ks = Vec::new();
                for part in v.split(',') {
                    ks.push(Kind::parse(part).ok_or(format!(
                        "--only socket,kdbus,kdbus-dbus,dbus-daemon,dbus-broker, not {part}"
                    ))?);
                }
                only = Some(ks);
            }
            "--where" => {
                o.host = match val("--where")?.as_str() {
                    "vm" => false,
                    "host" => true,
                    other => return Err(format!("--where vm|host, not {other}")),
                }
            }
            "--pin" => {
                o.pin = match val("--pin")?.as_str() {
                    "same" => Pin::Same,
                    "none" => Pin::None,
                    other => return Err(format!("--pin same|none, not {other}")),
                }
            }
            "--mount" => o.mount = val("--mount")?,
            "--dbus-daemon" => o.dbus_daemon = Some(val("--dbus-daemon")?.into()),
            "--dbus-broker-launch" => o.broker_launch = Some(val("--dbus-broker-launch")?.into()),
            "--inotify-shim" => o.inotify_shim = val("--inotify-shim")?.into(),
            "-v" | "--verbose" => o.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let wanted = only.unwrap_or_else(|| {
        ALL.into_iter()
            .filter(|k| !o.host || !matches!(k, Kind::KdbusRaw | Kind::KdbusDbus))
            .collect()
    });
    // The baseline always runs, and the columns keep their order.
    o.kinds = ALL
        .into_iter()
        .filter(|k| *k == Kind::Socket || wanted.contains(k))
        .collect();
    Ok(o)
}

/// The child modes; never returns.
fn child_mode(mode: &str, args: &[String]) -> ! {
    let res = match (mode, args) {
        ("serve", [kind, arg]) => {
            // Closing our stdin is the parent's way to end a server.
            std::thread::spawn(|| {
                let mut b = [0u8; 64];
                loop {
                    // SAFETY: reading into a local buffer.
                    let r = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
                    if r <= 0 {
                        std::process::exit(0);
                    }
                }
            });
            match kind.as_str() {
                "socket" => match arg.parse() {
                    Ok(fd) => transport::serve_socket(fd),
                    Err(_) => Err(Failure::bad("serve", "socket server", "bad fd")),
                },
                "kdbus" => transport::serve_kdbus_raw(arg),
                "kdbus-dbus" => transport::serve_kdbus_dbus(arg),
                "sdbus" => sdbus::serve(arg),
                other => Err(Failure::bad(
                    "serve",
                    "server",
                    format!("unknown kind {other}"),
                )),
            }
        }
        ("broker-launch", [launcher, config, address, shim]) => {
            daemons::broker_launch(launcher.as_ref(), config.as_ref(), address, shim.as_ref())
        }
        _ => {
            eprintln!("kdbus-bench-peers: bad internal arguments {mode} {args:?}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match res {
        Ok(()) => std::process::exit(0),
        Err(f) => {
            eprintln!("kdbus-bench-peers {mode}: {f}");
            std::process::exit(1);
        }
    }
}

struct Row {
    len: usize,
    /// One per `Opts::kinds`.
    outs: Vec<Outcome>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(mode) = args
        .first()
        .filter(|a| *a == "serve" || *a == "broker-launch")
    {
        child_mode(mode, &args[1..]);
    }
    let o = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kdbus-bench-peers: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let t_start = Instant::now();
    let elapsed = || t_start.elapsed().as_secs_f64();
    let tag = if o.host { "peers_host" } else { "peers" };

    println!("kdbus-bench-peers: {}", system_line());
    println!(
        "kdbus-bench-peers: where: {} (BENCH {tag}); budget {} s, {} interleaved rounds per measurement (median counts)",
        if o.host { "host" } else { "VM" },
        o.budget,
        o.rounds
    );
    println!(
        "kdbus-bench-peers: {}",
        match o.pin {
            Pin::Same => "this process, every server and broker pinned to CPU 0",
            _ => "no process pinned",
        }
    );
    let mut fatal: Option<Failure> = o.pin.apply().err();

    let find = |given: &Option<PathBuf>, name: &str| {
        given
            .clone()
            .or_else(|| daemons::which(name))
            .unwrap_or_else(|| PathBuf::from(name))
    };
    let dir = PathBuf::from(format!("/tmp/kdbus-bench-peers.{}", std::process::id()));
    let env = Env {
        exe: std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into()),
        mount: o.mount.clone(),
        dbus_daemon: find(&o.dbus_daemon, "dbus-daemon"),
        broker_launch: find(&o.broker_launch, "dbus-broker-launch"),
        inotify_shim: Some(o.inotify_shim.clone()).filter(|p| p.is_file()),
        dir,
    };
    if let Err(e) = std::fs::create_dir_all(&env.dir) {
        fatal = Some(Failure::bad(
            "mkdir",
            "setup",
            format!("{}: {e}", env.dir.display()),
        ));
    }
    for (k, p) in [
        (Kind::DbusDaemon, &env.dbus_daemon),
        (Kind::DbusBroker, &env.broker_launch),
    ] {
        if o.kinds.contains(&k) {
            println!(
                "kdbus-bench-peers: {}: {} ({})",
                k.key(),
                daemons::version(p),
                p.display()
            );
        }
    }
    if o.kinds.contains(&Kind::DbusBroker) && daemons::inotify_missing() {
        println!(
            "kdbus-bench-peers: note: this kernel has no inotify (CONFIG_INOTIFY_USER); \
             dbus-broker-launch runs with the stand-in {} preloaded (its watch of the \
             configuration directories only, not on the measured path)",
            o.inotify_shim.display()
        );
    }

    // --- set up every transport (not timed) -----------------------------------
    let mut running: Vec<Option<Running>> = Vec::new();
    let mut starts: Vec<Outcome> = Vec::new();
    let mut skipped: Vec<(Kind, String)> = Vec::new();
    for &k in &o.kinds {
        let t = Instant::now();
        let r = match &fatal {
            Some(f) => Err(f.clone()),
            None => transport::start(k, &env),
        };
        match r {
            Ok(Ok(run)) => {
                eprintln!(
                    "[{:6.1} s] {}: ready in {:.1} s",
                    elapsed(),
                    k.key(),
                    t.elapsed().as_secs_f64()
                );
                starts.push(Outcome::Done(Stat::default()));
                running.push(Some(run));
            }
            Ok(Err(why)) => {
                skipped.push((k, why));
                starts.push(Outcome::Skipped);
                running.push(None);
            }
            Err(f) => {
                println!("kdbus-bench-peers: {} setup failed: {f}", k.key());
                starts.push(Outcome::Failed(f));
                running.push(None);
            }
        }
    }
    let active = running.iter().filter(|r| r.is_some()).count().max(1);
    let slice =
        Duration::from_secs_f64(o.budget / (PAYLOADS.len() * active) as f64 / f64::from(o.rounds));

    // --- measure: per payload, rounds interleaved across the transports --------
    let mut rows = Vec::new();
    for &len in &PAYLOADS {
        let payload = data::payload(len);
        let mut outs = starts.clone();
        let n = o.kinds.len();
        for r in 0..o.rounds as usize {
            for i in 0..n {
                let k = (r + i) % n;
                let Some(run) = running[k].as_mut() else {
                    continue;
                };
                if !outs[k].runnable() {
                    continue;
                }
                let res = run_for(slice, 10, || run.peer.call(&payload));
                if o.verbose {
                    match &res {
                        Ok(s) => eprintln!(
                            "  {} {} round {}: {} calls in {:.3} s = {:.1}/s",
                            human(len),
                            o.kinds[k].key(),
                            r + 1,
                            s.iters,
                            s.secs,
                            s.per_s()
                        ),
                        Err(f) => {
                            eprintln!("  {} {} round {}: {f}", human(len), o.kinds[k].key(), r + 1)
                        }
                    }
                }
                outs[k].record(res);
            }
        }
        eprintln!("[{:6.1} s] round trips, {}: done", elapsed(), human(len));
        rows.push(Row { len, outs });
    }

    // --- stop everything --------------------------------------------------------
    let mut abouts = Vec::new();
    let mut notes = Vec::new();
    for (k, run) in o.kinds.iter().zip(running) {
        if let Some(run) = run {
            abouts.push(run.about.clone());
            for n in run.stop() {
                notes.push(format!("{}: {n}", k.key()));
            }
        }
    }

    report(&o, tag, &rows, &abouts, &skipped);
    for n in &notes {
        println!("kdbus-bench-peers: note: {n}");
    }

    // --- failures -------------------------------------------------------------
    let mut failures: Vec<(String, &Failure)> = Vec::new();
    if let Some(f) = &fatal {
        failures.push(("setup".into(), f));
    }
    for r in &rows {
        for (k, out) in o.kinds.iter().zip(&r.outs) {
            if let Outcome::Failed(f) = out {
                failures.push((format!("{} {}", human(r.len), k.key()), f));
            }
        }
    }
    println!();
    let ok = failures.is_empty();
    if !ok {
        println!(
            "kdbus-bench-peers: {} measurement(s) failed:",
            failures.len()
        );
        let mut seen = std::collections::BTreeSet::new();
        for (what, f) in &failures {
            let full = f.to_string();
            if seen.insert(full.clone()) {
                println!("  {what}: {full}");
            } else {
                println!("  {what}: {} (as above)", f.code());
            }
        }
        println!("kdbus-bench-peers: logs kept in {}", env.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&env.dir);
    }
    println!(
        "kdbus-bench-peers: {} ({:.0} s)",
        if ok { "OK" } else { "FAILED" },
        elapsed()
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(o: &Opts, tag: &str, rows: &[Row], abouts: &[String], skipped: &[(Kind, String)]) {
    println!();
    println!(
        "Method-call round trips between two processes per second (higher is better), {}; ±: half the",
        if o.host { "on the host" } else { "in the VM" }
    );
    println!("spread of the rounds. The client sends the payload and waits for the echo; the server is another");
    println!("process, a broker a third. ratio = time per call / socketpair time per call.");
    for a in abouts {
        println!("  {a}");
    }
    for (k, why) in skipped {
        println!("  {}: skipped: {why}", k.key());
    }
    println!();
    let mut head = format!("{:>8}", "payload");
    for (i, k) in o.kinds.iter().enumerate() {
        head += &format!("  {:>15}", k.column());
        if i > 0 {
            head += &format!("  {:>6}", "ratio");
        }
    }
    println!("{head}");
    for r in rows {
        let mut line = format!("{:>8}", human(r.len));
        for (i, out) in r.outs.iter().enumerate() {
            line += &format!("  {:>15}", fmt_rate(out));
            if i > 0 {
                line += &format!("  {:>6}", fmt_ratio(ratio(out, &r.outs[0])));
            }
        }
        println!("{line}");
    }
    noisy_note(rows.iter().flat_map(|r| r.outs.iter()));
    println!();
    for r in rows {
        let get = |k: Kind| {
            o.kinds
                .iter()
                .position(|x| *x == k)
                .map_or(Outcome::Skipped, |i| r.outs[i].clone())
        };
        let socket = get(Kind::Socket);
        let mut line = format!(
            "BENCH {tag} payload={} socket_per_s={}",
            r.len,
            val(&socket, Stat::per_s, 0)
        );
        let mut errs = err_field("socket_error", &socket);
        for k in ALL.into_iter().skip(1) {
            let out = get(k);
            line += &format!(
                " {f}_per_s={} {f}_ratio={}",
                val(&out, Stat::per_s, 0),
                bench_ratio(&out, &socket),
                f = k.field()
            );
            errs += &err_field(&format!("{}_error", k.field()), &out);
        }
        let outs: Vec<&Outcome> = r.outs.iter().collect();
        line += &format!(
            " cpus={}{}{errs}",
            match o.pin {
                Pin::Same => "0",
                _ => "any",
            },
            spread_field(&outs)
        );
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn options() {
        let o = parse_args(args("--where host")).unwrap();
        assert!(o.host);
        assert_eq!(o.kinds, [Kind::Socket, Kind::DbusDaemon, Kind::DbusBroker]);
        let o = parse_args(args("--where vm --budget 5 --rounds 1")).unwrap();
        assert_eq!(o.kinds, ALL);
        assert_eq!((o.budget, o.rounds), (5.0, 1));
        // The baseline is always there, first; the order is the table's.
        let o = parse_args(args("--only dbus-broker,kdbus")).unwrap();
        assert_eq!(o.kinds, [Kind::Socket, Kind::KdbusRaw, Kind::DbusBroker]);
        assert!(parse_args(args("--only zbus")).is_err());
        assert!(parse_args(args("--where moon")).is_err());
        assert!(parse_args(args("--pin split")).is_err());
        assert!(parse_args(args("--budget 0")).is_err());
    }
}
