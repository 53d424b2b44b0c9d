//! `kdbus-bench`: kdbus against AF_UNIX socketpair baselines measured in the
//! same run (under QEMU TCG absolute times mean little; the ratios matter).
//!
//! 1. Method-call round trips for 8 B, 4 KiB and 64 KiB payloads: a kdbus
//!    synchronous call (`EXPECT_REPLY` + `KDBUS_SEND_SYNC_REPLY`, one
//!    PAYLOAD_VEC, the server polls, RECVs, replies with the same bytes and
//!    FREEs) and an asynchronous one (the client polls for the reply and
//!    RECVs it), against a `SOCK_SEQPACKET` ping-pong between two threads.
//! 2. Passing 1, 16 and 64 MiB in a sealed memfd (`PAYLOAD_MEMFD` in a sync
//!    call; the receiver maps and touches it) against copying the same bytes
//!    through a `SOCK_STREAM` pair.
//!
//! See `USAGE`. Exits 1 only when a measurement failed (never because of a
//! ratio), 2 on bad usage.

mod clock;
mod data;
mod kbench;
mod sock;
mod timing;

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use data::{Pin, Touch};
use kbench::{Call, Peers};
use timing::{Failure, Outcome, Sample, Stat};

const RTT_PAYLOADS: [usize; 3] = [8, 4 << 10, 64 << 10];
const MEMFD_SIZES: [usize; 3] = [1 << 20, 16 << 20, 64 << 20];

const USAGE: &str = "\
usage: kdbus-bench [--budget SECS] [--rounds N] [--only rtt|memfd] [--baseline-only]
                   [--pin same|split|none] [--mount PATH] [--verbose]

  --budget SECS    time the measurements aim to take in total (default 120);
                   iterations are scaled to it (a part that fails or is
                   skipped does not use its share)
  --rounds N       interleaved rounds per measurement (default 5); the
                   median round counts
  --only PART      run only the round trips (rtt) or the memfd part (memfd)
  --baseline-only  only the AF_UNIX baselines (and memfd creation): runs
                   anywhere, no kdbus needed
  --pin MODE       where the client (measuring) and server threads run:
                   same: both on CPU 0; split: client on CPU 0, server on
                   CPU 1; none: wherever the scheduler puts them. Default:
                   everything with same (BENCH rtt / memfd lines), then
                   again with split (BENCH rtt_2cpu / memfd_2cpu lines);
                   with --pin, only that mode (BENCH rtt / memfd lines)
  --mount PATH     kdbusfs mount point (default /sys/fs/kdbus)
  --verbose        print every round's iterations and time (stderr)

Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad usage.";

struct Opts {
    budget: f64,
    rounds: u32,
    rtt: bool,
    memfd: bool,
    kdbus: bool,
    verbose: bool,
    mount: String,
    pin: Option<Pin>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        budget: 120.0,
        rounds: 5,
        rtt: true,
        memfd: true,
        kdbus: true,
        verbose: false,
        mount: "/sys/fs/kdbus".into(),
        pin: None,
    };
    let mut args = std::env::args().skip(1);
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
            "--only" => match val("--only")?.as_str() {
                "rtt" => o.memfd = false,
                "memfd" => o.rtt = false,
                other => return Err(format!("--only rtt|memfd, not {other}")),
            },
            "--baseline-only" => o.kdbus = false,
            "--pin" => {
                let v = val("--pin")?;
                o.pin = Some(Pin::parse(&v).ok_or(format!("--pin same|split|none, not {v}"))?);
            }
            "--mount" => o.mount = val("--mount")?,
            "-v" | "--verbose" => o.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn ncpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn system_line() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    format!("kernel {kernel}, {} CPUs ({model})", ncpus())
}

type Variant<'a> = (
    &'static str,
    &'a mut Outcome,
    &'a mut dyn FnMut(Duration) -> Result<Sample, Failure>,
);

/// Runs the variants of one cell in `o.rounds` interleaved rounds (the
/// starting variant rotates, so drift of the host hits all of them alike),
/// each round-run getting `slice`.
fn measure_cell(o: &Opts, cell: &str, slice: Duration, variants: &mut [Variant]) {
    let n = variants.len();
    for r in 0..o.rounds as usize {
        for k in 0..n {
            let (name, out, run) = &mut variants[(r + k) % n];
            if !out.runnable() {
                continue;
            }
            let res = run(slice);
            if o.verbose {
                match &res {
                    Ok(s) => eprintln!(
                        "  {cell} {name} round {}: {} iterations in {:.3} s = {:.1}/s",
                        r + 1,
                        s.iters,
                        s.secs,
                        s.per_s()
                    ),
                    Err(f) => eprintln!("  {cell} {name} round {}: {f}", r + 1),
                }
            }
            out.record(res);
        }
    }
}

/// Rounds that disagree by more than this (half spread, percent) mark a
/// figure as noisy.
const NOISY_PCT: f64 = 25.0;

fn noisy_mark(s: &Stat) -> &'static str {
    if s.spread_pct() > NOISY_PCT {
        "*"
    } else {
        " "
    }
}

fn fmt_rate(o: &Outcome) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(f), _) => f.code(),
        (_, Some(s)) => format!("{:.0} ±{:.0}%{}", s.per_s(), s.spread_pct(), noisy_mark(s)),
        _ => "-".into(),
    }
}

fn fmt_ms(o: &Outcome) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(f), _) => f.code(),
        (_, Some(s)) => format!("{:.3} ±{:.0}%{}", s.ms(), s.spread_pct(), noisy_mark(s)),
        _ => "-".into(),
    }
}

/// The largest spread of the measured outcomes, as a BENCH field.
fn spread_field(outs: &[&Outcome]) -> String {
    let m = outs
        .iter()
        .filter_map(|o| o.stat())
        .map(Stat::spread_pct)
        .fold(f64::NAN, f64::max);
    if m.is_nan() {
        String::new()
    } else {
        format!(" spread_pct={m:.0}")
    }
}

/// Says what a `*` means, if any figure of `outs` has one.
fn noisy_note<'a>(outs: impl Iterator<Item = &'a Outcome>) {
    let n = outs
        .filter_map(Outcome::stat)
        .filter(|s| s.spread_pct() > NOISY_PCT)
        .count();
    if n > 0 {
        println!(
            "*: the rounds of {n} figure(s) disagree by more than ±{NOISY_PCT:.0}%: the host was probably busy \
             (other VMs or builds; cross-CPU wake-ups under TCG suffer most); rerun for reliable figures."
        );
    }
}

/// A machine-readable value: the number, `skipped` or `error`.
fn val(o: &Outcome, f: impl Fn(&Stat) -> f64, prec: usize) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(_), _) => "error".into(),
        (_, Some(s)) => format!("{:.*}", prec, f(s)),
        _ => "skipped".into(),
    }
}

/// kdbus time / socket time.
fn ratio(kdbus: &Outcome, socket: &Outcome) -> Option<f64> {
    Some(kdbus.stat()?.ms() / socket.stat()?.ms())
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}"))
}

fn bench_ratio(a: &Outcome, b: &Outcome) -> String {
    match ratio(a, b) {
        Some(r) => format!("{r:.3}"),
        None if matches!(a, Outcome::Failed(_)) || matches!(b, Outcome::Failed(_)) => {
            "error".into()
        }
        None => "skipped".into(),
    }
}

fn err_field(name: &str, o: &Outcome) -> String {
    match o {
        Outcome::Failed(f) => format!(" {name}={}", f.code()),
        _ => String::new(),
    }
}

struct RttRow {
    tag: &'static str,
    pin: Pin,
    len: usize,
    socket: Outcome,
    sync: Outcome,
    asyn: Outcome,
}

struct MemfdRow {
    tag: &'static str,
    pin: Pin,
    len: usize,
    fill: Result<Duration, Failure>,
    socket: Outcome,
    ends: Outcome,
    pages: Outcome,
}

/// Creation + write + seal of a memfd holding `data`, three times; returns
/// the median time and the last memfd (kept for the transfers).
fn fill_memfd(data: &[u8]) -> (Result<Duration, Failure>, Option<std::os::fd::OwnedFd>) {
    let mut times = Vec::new();
    let mut fd = None;
    for _ in 0..3 {
        match data::sealed_memfd(data) {
            Ok((f, t)) => {
                times.push(t);
                fd = Some(f);
            }
            Err(e) => return (Err(e), None),
        }
    }
    times.sort();
    (Ok(times[1]), fd)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kdbus-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let t_start = Instant::now();
    let elapsed = || t_start.elapsed().as_secs_f64();
    // Thread placements, each with its BENCH tag suffix.
    let passes: Vec<(Pin, &'static str)> = match o.pin {
        Some(p) => vec![(p, "")],
        None if ncpus() >= 2 => vec![(Pin::Same, ""), (Pin::Split, "_2cpu")],
        None => vec![(Pin::Same, "")],
    };
    let tag = |part: &'static str, suffix: &str| -> &'static str {
        match (part, suffix) {
            ("rtt", "") => "rtt",
            ("rtt", _) => "rtt_2cpu",
            (_, "") => "memfd",
            _ => "memfd_2cpu",
        }
    };

    println!("kdbus-bench: {}", system_line());
    println!("kdbus-bench: {}", clock::describe());
    println!(
        "kdbus-bench: budget {} s, {} interleaved rounds per measurement (median counts){}",
        o.budget,
        o.rounds,
        if o.kdbus {
            ""
        } else {
            ", AF_UNIX baselines only"
        }
    );

    for (pin, _) in &passes {
        println!("kdbus-bench: CPUs {}: {}", pin.cpus(), pin.describe());
    }

    let peers: Result<Option<Peers>, Failure> = if o.kdbus {
        Peers::setup(&o.mount).map(Some)
    } else {
        Ok(None)
    };
    if let Err(f) = &peers {
        println!("kdbus-bench: kdbus setup failed: {f}");
    }
    let p = peers.as_ref().ok().and_then(Option::as_ref);
    let kdbus_start = || -> Outcome {
        match &peers {
            Ok(Some(_)) => Outcome::Done(Stat::default()),
            Ok(None) => Outcome::Skipped,
            Err(f) => Outcome::Failed(f.clone()),
        }
    };

    let parts = o.rtt as u32 + o.memfd as u32;
    let part_budget = o.budget / parts.max(1) as f64 / passes.len() as f64;
    let slice =
        |cells: usize| Duration::from_secs_f64(part_budget / cells as f64 / 3.0 / o.rounds as f64);
    let mut fatal: Option<Failure> = None;

    // --- 1. round trips ----------------------------------------------------
    let mut rtt_rows = Vec::new();
    if o.rtt {
        let sl = slice(RTT_PAYLOADS.len());
        for &(pin, suffix) in &passes {
            if let Err(f) = pin.apply() {
                fatal = Some(f);
                break;
            }
            for &len in &RTT_PAYLOADS {
                let mut row = RttRow {
                    tag: tag("rtt", suffix),
                    pin,
                    len,
                    socket: Outcome::Done(Stat::default()),
                    sync: kdbus_start(),
                    asyn: kdbus_start(),
                };
                let mut run_sock = |s: Duration| sock::rtt(len, s);
                let mut run_sync = |s: Duration| kbench::rtt(p.unwrap(), len, Call::Sync, s);
                let mut run_async = |s: Duration| kbench::rtt(p.unwrap(), len, Call::Async, s);
                measure_cell(
                    &o,
                    &format!("{} {}", row.tag, human(len)),
                    sl,
                    &mut [
                        ("socket", &mut row.socket, &mut run_sock),
                        ("kdbus sync", &mut row.sync, &mut run_sync),
                        ("kdbus async", &mut row.asyn, &mut run_async),
                    ],
                );
                eprintln!(
                    "[{:6.1} s] round trips, {} payload, CPUs {}: done",
                    elapsed(),
                    human(len),
                    pin.cpus()
                );
                rtt_rows.push(row);
            }
        }
    }

    // --- 2. memfds -----------------------------------------------------------
    let mut memfd_rows = Vec::new();
    if o.memfd && fatal.is_none() {
        let sl = slice(MEMFD_SIZES.len());
        // The payloads and their sealed memfds, made once per size.
        let inputs: Vec<_> = MEMFD_SIZES
            .iter()
            .map(|&len| {
                let data = data::payload(len);
                let (fill, fd) = fill_memfd(&data);
                (len, data, fill, fd)
            })
            .collect();
        'passes: for &(pin, suffix) in &passes {
            if let Err(f) = pin.apply() {
                fatal = Some(f);
                break 'passes;
            }
            for (len, data, fill, fd) in &inputs {
                let len = *len;
                let mut row = MemfdRow {
                    tag: tag("memfd", suffix),
                    pin,
                    len,
                    socket: Outcome::Done(Stat::default()),
                    ends: kdbus_start(),
                    pages: kdbus_start(),
                    fill: fill.clone(),
                };
                if let Err(f) = &row.fill {
                    for out in [&mut row.ends, &mut row.pages] {
                        if out.runnable() {
                            *out = Outcome::Failed(f.clone());
                        }
                    }
                }
                let raw = fd.as_ref().map_or(-1, |f| f.as_raw_fd());
                let mut run_sock = |s: Duration| sock::bulk(data, s);
                let mut run_ends =
                    |s: Duration| kbench::memfd(p.unwrap(), raw, len, Touch::Ends, s);
                let mut run_pages =
                    |s: Duration| kbench::memfd(p.unwrap(), raw, len, Touch::Pages, s);
                measure_cell(
                    &o,
                    &format!("{} {}", row.tag, human(len)),
                    sl,
                    &mut [
                        ("socket copy", &mut row.socket, &mut run_sock),
                        ("kdbus memfd ends", &mut row.ends, &mut run_ends),
                        ("kdbus memfd pages", &mut row.pages, &mut run_pages),
                    ],
                );
                eprintln!(
                    "[{:6.1} s] memfd vs copy, {}, CPUs {}: done",
                    elapsed(),
                    human(len),
                    pin.cpus()
                );
                memfd_rows.push(row);
            }
        }
    }
    drop(peers);

    report_rtt(&rtt_rows);
    report_memfd(&memfd_rows);
    bench_lines(&rtt_rows, &memfd_rows);

    // --- failures --------------------------------------------------------------
    let mut failures: Vec<(String, &Failure)> = Vec::new();
    if let Some(f) = &fatal {
        failures.push(("setup".into(), f));
    }
    for r in &rtt_rows {
        for (what, out) in [
            ("socket", &r.socket),
            ("kdbus sync", &r.sync),
            ("kdbus async", &r.asyn),
        ] {
            if let Outcome::Failed(f) = out {
                failures.push((format!("{} {} {what}", r.tag, human(r.len)), f));
            }
        }
    }
    let mut fill_reported = std::collections::BTreeSet::new();
    for r in &memfd_rows {
        if let Err(f) = &r.fill {
            if fill_reported.insert(r.len) {
                failures.push((format!("memfd {} creation", human(r.len)), f));
            }
        }
        for (what, out) in [
            ("socket copy", &r.socket),
            ("kdbus memfd ends", &r.ends),
            ("kdbus memfd pages", &r.pages),
        ] {
            if let Outcome::Failed(f) = out {
                failures.push((format!("{} {} {what}", r.tag, human(r.len)), f));
            }
        }
    }
    println!();
    if failures.is_empty() {
        println!("kdbus-bench: OK ({:.0} s)", elapsed());
        return ExitCode::SUCCESS;
    }
    println!("kdbus-bench: {} measurement(s) failed:", failures.len());
    let mut seen = std::collections::BTreeSet::new();
    for (what, f) in &failures {
        let full = f.to_string();
        if seen.insert(full.clone()) {
            println!("  {what}: {full}");
        } else {
            println!("  {what}: {} (as above)", f.code());
        }
    }
    println!("kdbus-bench: FAILED ({:.0} s)", elapsed());
    ExitCode::FAILURE
}

fn report_rtt(rows: &[RttRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!(
        "Method-call round trips per second (higher is better); ±: half the spread of the rounds."
    );
    println!("kdbus sync: SEND EXPECT_REPLY+SYNC_REPLY (timeout now+5 s) with one PAYLOAD_VEC; the server");
    println!("polls, RECVs, checks the payload in its pool, replies with the same bytes (its vector points");
    println!(
        "into its pool mapping), FREEs; the client checks the reply at reply.offset and FREEs it."
    );
    println!(
        "kdbus async: the same without SYNC_REPLY; the client polls its fd and RECVs the reply."
    );
    println!("socket: AF_UNIX SOCK_SEQPACKET ping-pong of the same payload; the server polls, reads, writes.");
    println!(
        "CPUs: client/server thread placement. ratio = kdbus time per call / socket time per call."
    );
    println!();
    println!(
        "{:>8}  {:>4}  {:>15}  {:>16}  {:>6}  {:>16}  {:>6}",
        "payload", "CPUs", "socket/s", "kdbus sync/s", "ratio", "kdbus async/s", "ratio"
    );
    for r in rows {
        println!(
            "{:>8}  {:>4}  {:>15}  {:>16}  {:>6}  {:>16}  {:>6}",
            human(r.len),
            r.pin.cpus(),
            fmt_rate(&r.socket),
            fmt_rate(&r.sync),
            fmt_ratio(ratio(&r.sync, &r.socket)),
            fmt_rate(&r.asyn),
            fmt_ratio(ratio(&r.asyn, &r.socket)),
        );
    }
    noisy_note(rows.iter().flat_map(|r| [&r.socket, &r.sync, &r.asyn]));
}

fn report_memfd(rows: &[MemfdRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("Passing a sealed memfd vs copying the bytes through a socket, ms per transfer (lower is better).");
    println!("Timed, kdbus: a sync call carrying one PAYLOAD_MEMFD {{0, size, fd}}; the server RECVs, mmaps the");
    println!("fd, reads it (\"ends\": first/middle/last byte; \"pages\": also one byte of every 4 KiB page),");
    println!("unmaps and closes it, replies with 8 bytes and FREEs; the client FREEs the reply.");
    println!("Timed, socket: AF_UNIX SOCK_STREAM; the client writes all bytes, the server reads them into");
    println!("its buffer, checks them and acks with 1 byte.");
    println!("NOT timed: memfd_create + write + seal (the memfd is made once per size and sent again each");
    println!("time; its cost is the \"fill\" column) and the sender's data buffer.");
    println!("CPUs: client/server thread placement. ratio = kdbus ms / socket ms.");
    println!();
    println!(
        "{:>7}  {:>4}  {:>9}  {:>15}  {:>6}  {:>15}  {:>6}  {:>15}",
        "size", "CPUs", "fill ms", "memfd ends ms", "ratio", "memfd pages ms", "ratio", "socket ms"
    );
    for r in rows {
        println!(
            "{:>7}  {:>4}  {:>9}  {:>15}  {:>6}  {:>15}  {:>6}  {:>15}",
            human(r.len),
            r.pin.cpus(),
            r.fill
                .as_ref()
                .map_or_else(|f| f.code(), |d| format!("{:.3}", d.as_secs_f64() * 1e3)),
            fmt_ms(&r.ends),
            fmt_ratio(ratio(&r.ends, &r.socket)),
            fmt_ms(&r.pages),
            fmt_ratio(ratio(&r.pages, &r.socket)),
            fmt_ms(&r.socket),
        );
    }
    noisy_note(rows.iter().flat_map(|r| [&r.socket, &r.ends, &r.pages]));
    let growth = |x: &Outcome, y: &Outcome| match (x.stat(), y.stat()) {
        (Some(x), Some(y)) => format!(
            "{:.3} -> {:.3} ms ({:.2}x)",
            x.ms(),
            y.ms(),
            y.ms() / x.ms()
        ),
        _ => "-".into(),
    };
    println!();
    let mut tags: Vec<&str> = rows.iter().map(|r| r.tag).collect();
    tags.dedup();
    for t in tags {
        let mine: Vec<&MemfdRow> = rows.iter().filter(|r| r.tag == t).collect();
        let (a, b) = (mine[0], mine[mine.len() - 1]);
        if a.len == b.len {
            continue;
        }
        println!(
            "CPUs {}, {} -> {} ({}x the bytes): memfd ends {}; memfd pages {}; socket copy {}.",
            a.pin.cpus(),
            human(a.len),
            human(b.len),
            b.len / a.len,
            growth(&a.ends, &b.ends),
            growth(&a.pages, &b.pages),
            growth(&a.socket, &b.socket),
        );
    }
}

fn bench_lines(rtt: &[RttRow], memfd: &[MemfdRow]) {
    println!();
    for r in rtt {
        println!(
            "BENCH {} payload={} kdbus_per_s={} socket_per_s={} ratio={} kdbus_async_per_s={} async_ratio={} cpus={} socket=seqpacket{}{}{}{}",
            r.tag,
            r.len,
            val(&r.sync, Stat::per_s, 0),
            val(&r.socket, Stat::per_s, 0),
            bench_ratio(&r.sync, &r.socket),
            val(&r.asyn, Stat::per_s, 0),
            bench_ratio(&r.asyn, &r.socket),
            r.pin.cpus(),
            spread_field(&[&r.sync, &r.socket, &r.asyn]),
            err_field("kdbus_error", &r.sync),
            err_field("kdbus_async_error", &r.asyn),
            err_field("socket_error", &r.socket),
        );
    }
    for r in memfd {
        println!(
            "BENCH {} size={} kdbus_ms={} socket_ms={} ratio={} kdbus_pages_ms={} pages_ratio={} fill_ms={} fill=not_timed cpus={}{}{}{}{}",
            r.tag,
            r.len,
            val(&r.ends, Stat::ms, 4),
            val(&r.socket, Stat::ms, 4),
            bench_ratio(&r.ends, &r.socket),
            val(&r.pages, Stat::ms, 4),
            bench_ratio(&r.pages, &r.socket),
            r.fill
                .as_ref()
                .map_or("error".into(), |d| format!("{:.4}", d.as_secs_f64() * 1e3)),
            r.pin.cpus(),
            spread_field(&[&r.ends, &r.socket, &r.pages]),
            err_field("kdbus_error", &r.ends),
            err_field("kdbus_pages_error", &r.pages),
            err_field("socket_error", &r.socket),
        );
    }
    let mut tags: Vec<&str> = memfd.iter().map(|r| r.tag).collect();
    tags.dedup();
    for t in tags {
        let mine: Vec<&MemfdRow> = memfd.iter().filter(|r| r.tag == t).collect();
        let (a, b) = (mine[0], mine[mine.len() - 1]);
        if a.len != b.len {
            println!(
                "BENCH {t}_flat small={} large={} kdbus_ms_small={} kdbus_ms_large={} growth={}",
                a.len,
                b.len,
                val(&a.ends, Stat::ms, 4),
                val(&b.ends, Stat::ms, 4),
                bench_ratio(&b.ends, &a.ends),
            );
        }
    }
}
