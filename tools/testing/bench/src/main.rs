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
//! 3. A synchronous 8-byte call addressed to a well-known name the server
//!    owns (`KDBUS_ITEM_DST_NAME`) against the same call by `dst_id`.
//! 4. What a system bus adds to a call: the same 8-byte sync call with
//!    every metadata item attached (both ways) against a bare one, and by
//!    name through a custom endpoint with a policy database against the
//!    default endpoint.
//! 5. Broadcast fan-out: one signal to 10, 100 and 1000 connections of
//!    which 1% (at least one) match, SEND time and time until every
//!    matching receiver has RECVed it, against a unicast signal to one
//!    receiver on the same bus (see `fanout`).
//!
//! See `USAGE`. Exits 1 only when a measurement failed (never because of a
//! ratio), 2 on bad usage.

use kdbus_bench::report::{
    bench_ratio, err_field, fmt_ms, fmt_rate, fmt_ratio, fmt_us, human, ncpus, noisy_note, ratio,
    spread_field, system_line, us, val,
};
use kdbus_bench::{clock, data, fanout, kbench, sock, timing};

use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use data::{Pin, Touch};
use fanout::{Fanout, Target};
use kbench::{Call, Dst, PeerSetup, Peers};
use timing::{Failure, Outcome, Sample, Stat};

const RTT_PAYLOADS: [usize; 3] = [8, 4 << 10, 64 << 10];
const MEMFD_SIZES: [usize; 3] = [1 << 20, 16 << 20, 64 << 20];
const FANOUT_SIZES: [usize; 3] = [10, 100, 1000];
/// The payload of the call by name and by id, and of the metadata and
/// endpoint comparisons.
const NAME_PAYLOAD: usize = 8;
/// The well-known name the server owns for the calls by name.
const SERVER_NAME: &str = "org.kdbus.bench.Echo";
/// Default of `--budget`.
const DEFAULT_BUDGET: f64 = 200.0;

/// The parts, in the order they run, with their weights in the budget.
const PARTS: [(&str, f64); 6] = [
    ("rtt", 4.0),
    ("memfd", 4.0),
    ("name", 1.0),
    ("meta", 1.0),
    ("endpoint", 1.0),
    ("fanout", 4.0),
];

const USAGE: &str = "\
usage: kdbus-bench [--budget SECS] [--rounds N] [--only PART[,PART...]] [--baseline-only]
                   [--pin same|split|none] [--mount PATH] [--verbose]

  --budget SECS    time the measurements aim to take in total (default 200:
                   rtt, memfd and fanout 4/15 each, name, meta and
                   endpoint 1/15 each); iterations
                   are scaled to it (a part that fails or is skipped does
                   not use its share; setting up the fan-out connections
                   is not counted)
  --rounds N       interleaved rounds per measurement (default 5); the
                   median round counts
  --only PARTS     run only these parts (comma-separated): rtt (round
                   trips), memfd, name (call by name vs by id), meta (all
                   metadata vs none), endpoint (custom endpoint with policy
                   vs default endpoint), fanout (broadcast fan-out vs
                   unicast)
  --meta-mask HEX  the items of the metadata variant of meta (default
                   3fff, _KDBUS_ATTACH_ALL): to see what each item costs
  --meta-one-way   the metadata variant of meta attaches it to the call
                   only (the server asks for it, the client does not: bare
                   replies); its BENCH meta_call line says oneway=1
  --baseline-only  only the AF_UNIX baselines (and memfd creation): runs
                   anywhere, no kdbus needed (name, meta, endpoint and
                   fanout have none)
  --pin MODE       where the client (measuring) and server threads run:
                   same: both on CPU 0; split: client on CPU 0, server on
                   CPU 1; none: wherever the scheduler puts them. Default:
                   rtt and memfd with same (BENCH rtt / memfd lines), then
                   again with split (BENCH rtt_2cpu / memfd_2cpu lines);
                   name and fanout with same only; with --pin, everything
                   in that mode only (BENCH rtt / memfd lines)
  --mount PATH     kdbusfs mount point (default /sys/fs/kdbus)
  --verbose        print every round's iterations and time (stderr)

Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad usage.";

struct Opts {
    budget: f64,
    rounds: u32,
    rtt: bool,
    memfd: bool,
    name: bool,
    meta: bool,
    /// The metadata of the "all metadata" variant (`--meta-mask`).
    meta_mask: u64,
    /// Metadata on calls only (`--meta-one-way`).
    meta_one_way: bool,
    endpoint: bool,
    fanout: bool,
    kdbus: bool,
    verbose: bool,
    mount: String,
    pin: Option<Pin>,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        budget: DEFAULT_BUDGET,
        rounds: 5,
        rtt: true,
        memfd: true,
        name: true,
        meta: true,
        meta_mask: kdbus::ATTACH_ALL,
        meta_one_way: false,
        endpoint: true,
        fanout: true,
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
            "--only" => {
                let v = val("--only")?;
                (o.rtt, o.memfd, o.name, o.meta, o.endpoint, o.fanout) =
                    (false, false, false, false, false, false);
                for part in v.split(',') {
                    match part {
                        "rtt" => o.rtt = true,
                        "memfd" => o.memfd = true,
                        "name" => o.name = true,
                        "meta" => o.meta = true,
                        "endpoint" => o.endpoint = true,
                        "fanout" => o.fanout = true,
                        other => {
                            return Err(format!(
                                "--only rtt,memfd,name,meta,endpoint,fanout, not {other}"
                            ))
                        }
                    }
                }
            }
            "--baseline-only" => o.kdbus = false,
            "--meta-mask" => {
                let v = val("--meta-mask")?;
                o.meta_mask = u64::from_str_radix(v.trim_start_matches("0x"), 16)
                    .ok()
                    .filter(|m| *m != 0 && m & !kdbus::ATTACH_ALL == 0)
                    .ok_or(format!(
                        "--meta-mask needs KDBUS_ATTACH_* bits in hex, not {v}"
                    ))?;
            }
            "--meta-one-way" => o.meta_one_way = true,
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

/// `MemAvailable` of a `/proc/meminfo` text, in KiB.
fn parse_mem_available(meminfo: &str) -> Option<i64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

fn mem_available_kib() -> Option<i64> {
    parse_mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
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

struct RttRow {
    tag: &'static str,
    pin: Pin,
    len: usize,
    socket: Outcome,
    sync: Outcome,
    asyn: Outcome,
}

/// Two variants of the same sync call, measured in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pair {
    /// By id (base) vs by well-known name.
    Name,
    /// Bare (base) vs every metadata item attached both ways.
    Meta,
    /// By name through the default endpoint (base) vs a custom endpoint
    /// with a policy database.
    Endpoint,
}

impl Pair {
    /// The BENCH tag.
    fn tag(self) -> &'static str {
        match self {
            Pair::Name => "name_call",
            Pair::Meta => "meta_call",
            Pair::Endpoint => "endpoint_call",
        }
    }

    /// Labels of the base and the other variant (progress, failures).
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Pair::Name => ("by id", "by name"),
            Pair::Meta => ("bare", "all metadata"),
            Pair::Endpoint => ("default endpoint", "custom endpoint"),
        }
    }

    /// The BENCH field stems of the base and the other variant.
    fn fields(self) -> (&'static str, &'static str) {
        match self {
            Pair::Name => ("id", "name"),
            Pair::Meta => ("bare", "meta"),
            Pair::Endpoint => ("default", "custom"),
        }
    }
}

struct PairRow {
    pair: Pair,
    pin: Pin,
    len: usize,
    base: Outcome,
    other: Outcome,
    /// The metadata of the Meta variant, and whether only calls carry it.
    mask: Option<(u64, bool)>,
}

struct FanoutRow {
    pin: Pin,
    /// Receivers on the bus.
    n: usize,
    /// Of which match the signal.
    matching: usize,
    uni_send: Outcome,
    fan_send: Outcome,
    uni_deliv: Outcome,
    fan_deliv: Outcome,
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

    // The kdbus-only parts do not run (nor take a share) without kdbus.
    let (do_name, do_fanout) = (o.name && o.kdbus, o.fanout && o.kdbus);
    let (do_meta, do_endpoint) = (o.meta && o.kdbus, o.endpoint && o.kdbus);
    let enabled = |part: &str| match part {
        "rtt" => o.rtt,
        "memfd" => o.memfd,
        "name" => do_name,
        "meta" => do_meta,
        "endpoint" => do_endpoint,
        _ => do_fanout,
    };
    let weights: f64 = PARTS
        .iter()
        .filter(|(p, _)| enabled(p))
        .map(|(_, w)| w)
        .sum();
    let share = |part: &str| {
        let w = PARTS
            .iter()
            .find(|(p, _)| *p == part)
            .map_or(0.0, |(_, w)| *w);
        o.budget * w / weights.max(1.0)
    };
    // A part's share is spread over its passes, cells, variants and rounds.
    let slice = |part: &str, passes: usize, cells: usize, variants: usize| {
        Duration::from_secs_f64(share(part) / (passes * cells * variants) as f64 / o.rounds as f64)
    };
    let mut fatal: Option<Failure> = None;

    // --- 1. round trips ----------------------------------------------------
    let mut rtt_rows = Vec::new();
    if o.rtt {
        let sl = slice("rtt", passes.len(), RTT_PAYLOADS.len(), 3);
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
        let sl = slice("memfd", passes.len(), MEMFD_SIZES.len(), 3);
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
    // The single-pass parts run with the first (canonical) placement.
    let (pin0, _) = passes[0];
    if (do_name || do_meta || do_endpoint || do_fanout) && fatal.is_none() {
        if let Err(f) = pin0.apply() {
            fatal = Some(f);
        }
    }

    // --- 3. call by name vs by id --------------------------------------------
    let mut pair_rows = Vec::new();
    if do_name && fatal.is_none() {
        let sl = slice("name", 1, 1, 2);
        let mut row = PairRow {
            pair: Pair::Name,
            pin: pin0,
            len: NAME_PAYLOAD,
            base: kdbus_start(),
            other: kdbus_start(),
            mask: None,
        };
        let owned = match p {
            Some(p) => p.own_name(SERVER_NAME).map(|()| true),
            None => Ok(false),
        };
        if let Err(f) = &owned {
            row.other = Outcome::Failed(f.clone());
        }
        let len = NAME_PAYLOAD;
        let mut run_id = |s: Duration| kbench::rtt_to(p.unwrap(), Dst::Id, len, Call::Sync, s);
        let mut run_name =
            |s: Duration| kbench::rtt_to(p.unwrap(), Dst::Name(SERVER_NAME), len, Call::Sync, s);
        measure_cell(
            &o,
            &format!("name_call {}", human(len)),
            sl,
            &mut [
                ("by id", &mut row.base, &mut run_id),
                ("by name", &mut row.other, &mut run_name),
            ],
        );
        if let (Ok(true), Some(p)) = (&owned, p) {
            if let Err(f) = p.release_name(SERVER_NAME) {
                if row.other.runnable() {
                    row.other = Outcome::Failed(f);
                }
            }
        }
        eprintln!(
            "[{:6.1} s] call by name vs by id, {}, CPUs {}: done",
            elapsed(),
            human(len),
            pin0.cpus()
        );
        pair_rows.push(row);
    }
    drop(peers);

    // --- 4. metadata and custom endpoints --------------------------------------
    for (pair, on) in [(Pair::Meta, do_meta), (Pair::Endpoint, do_endpoint)] {
        if !on || fatal.is_some() {
            continue;
        }
        let sl = slice(
            if pair == Pair::Meta {
                "meta"
            } else {
                "endpoint"
            },
            1,
            1,
            2,
        );
        pair_rows.push(measure_pair(&o, pair, pin0, sl));
        eprintln!(
            "[{:6.1} s] {} vs {}, {}, CPUs {}: done",
            elapsed(),
            pair.labels().1,
            pair.labels().0,
            human(NAME_PAYLOAD),
            pin0.cpus()
        );
    }

    // --- 5. broadcast fan-out ------------------------------------------------
    let mut fanout_rows = Vec::new();
    if do_fanout && fatal.is_none() {
        let sl = slice("fanout", 1, FANOUT_SIZES.len(), 4);
        let max = FANOUT_SIZES.iter().copied().max().unwrap_or(0);
        let mut fan = Fanout::setup(&o.mount, max);
        if let Err(f) = &fan {
            println!("kdbus-bench: fan-out setup failed: {f}");
        }
        let mem0 = mem_available_kib();
        for &n in &FANOUT_SIZES {
            let t_setup = Instant::now();
            let ready = match &mut fan {
                Ok(fan) => fan.grow(n),
                Err(f) => Err(f.clone()),
            };
            let start = match &ready {
                Ok(()) => Outcome::Done(Stat::default()),
                Err(f) => Outcome::Failed(f.clone()),
            };
            let mut row = FanoutRow {
                pin: pin0,
                n,
                matching: fanout::matchers(n),
                uni_send: start.clone(),
                fan_send: start.clone(),
                uni_deliv: start.clone(),
                fan_deliv: start,
            };
            if ready.is_ok() {
                let used = match (mem0, mem_available_kib()) {
                    (Some(a), Some(b)) => format!(", MemAvailable down {} MiB", (a - b) >> 10),
                    _ => String::new(),
                };
                eprintln!(
                    "[{:6.1} s] fan-out: {} receivers on the bus ({:.1} s to add them{used})",
                    elapsed(),
                    n,
                    t_setup.elapsed().as_secs_f64()
                );
            }
            let f = fan.as_ref().ok();
            let mut run_us = |s: Duration| f.unwrap().send_only(Target::Unicast, s);
            let mut run_fs = |s: Duration| f.unwrap().send_only(Target::Broadcast, s);
            let mut run_ud = |s: Duration| f.unwrap().delivered(Target::Unicast, s);
            let mut run_fd = |s: Duration| f.unwrap().delivered(Target::Broadcast, s);
            measure_cell(
                &o,
                &format!("fanout {n}"),
                sl,
                &mut [
                    ("unicast send", &mut row.uni_send, &mut run_us),
                    ("fan-out send", &mut row.fan_send, &mut run_fs),
                    ("unicast delivered", &mut row.uni_deliv, &mut run_ud),
                    ("fan-out delivered", &mut row.fan_deliv, &mut run_fd),
                ],
            );
            eprintln!(
                "[{:6.1} s] broadcast fan-out to {n} ({} matching), CPUs {}: done",
                elapsed(),
                row.matching,
                pin0.cpus()
            );
            fanout_rows.push(row);
        }
        let t_close = Instant::now();
        let had = fan.as_ref().map_or(0, Fanout::len);
        drop(fan);
        if had > 0 {
            eprintln!(
                "[{:6.1} s] fan-out: {had} receivers closed in {:.1} s",
                elapsed(),
                t_close.elapsed().as_secs_f64()
            );
        }
    }

    report_rtt(&rtt_rows);
    report_memfd(&memfd_rows);
    report_pairs(&pair_rows);
    report_fanout(&fanout_rows);
    bench_lines(&rtt_rows, &memfd_rows);
    bench_lines_more(&pair_rows, &fanout_rows);

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
    for r in &pair_rows {
        let (lb, lo) = r.pair.labels();
        for (what, out) in [(lb, &r.base), (lo, &r.other)] {
            if let Outcome::Failed(f) = out {
                failures.push((format!("{} {} {what}", r.pair.tag(), human(r.len)), f));
            }
        }
    }
    for r in &fanout_rows {
        for (what, out) in [
            ("unicast send", &r.uni_send),
            ("fan-out send", &r.fan_send),
            ("unicast delivered", &r.uni_deliv),
            ("fan-out delivered", &r.fan_deliv),
        ] {
            if let Outcome::Failed(f) = out {
                failures.push((format!("fanout {} {what}", r.n), f));
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

fn report_pairs(rows: &[PairRow]) {
    for pair in [Pair::Name, Pair::Meta, Pair::Endpoint] {
        let mine: Vec<&PairRow> = rows.iter().filter(|r| r.pair == pair).collect();
        if mine.is_empty() {
            continue;
        }
        println!();
        let (lb, lo) = pair.labels();
        match pair {
            Pair::Name => {
                println!("Method calls to a well-known name vs by ID, calls per second (higher is better).");
                println!(
                    "Both: the kdbus sync call of the round-trip table ({NAME_PAYLOAD} B); by id: dst_id = the server's"
                );
                println!(
                    "ID; by name: dst_id 0 and KDBUS_ITEM_DST_NAME {SERVER_NAME}, which the server owns (the"
                );
                println!(
                    "reply goes back by ID). ratio = time per call by name / time per call by id."
                );
            }
            Pair::Meta => {
                println!("Sender metadata: a call with every item attached vs a bare call, calls per second.");
                println!(
                    "Both: the kdbus sync call by ID of the round-trip table ({NAME_PAYLOAD} B), each on a bus of its"
                );
                println!("own. bare: attach_flags_send = attach_flags_recv = 0 on both connections. all metadata:");
                if mine
                    .iter()
                    .any(|r| r.mask.is_some_and(|(_, one_way)| one_way))
                {
                    println!("both connections send _KDBUS_ATTACH_ANY, only the server asks for _KDBUS_ATTACH_ALL, so");
                    println!("the call (not the reply) carries timestamp, creds, pids, auxgroups, names, tid/pid comm,");
                    println!("exe, cmdline, cgroup, caps, seclabel, audit and description (those the kernel has).");
                } else {
                    println!("both connections send _KDBUS_ATTACH_ANY and ask for _KDBUS_ATTACH_ALL, so the call and");
                    println!("the reply each carry timestamp, creds, pids, auxgroups, names, tid/pid comm, exe, cmdline,");
                    println!("cgroup, caps, seclabel, audit and description (those the kernel has). Goal: ratio <= 1.10.");
                }
                println!("ratio = time per call with metadata / time per bare call.");
            }
            Pair::Endpoint => {
                println!(
                    "A custom endpoint with policy vs the default endpoint, calls per second."
                );
                println!(
                    "Both: the kdbus sync call of the round-trip table ({NAME_PAYLOAD} B) to {SERVER_NAME} by name,"
                );
                println!("bare metadata, each on a bus of its own; the server is on the default endpoint.");
                println!(
                    "custom endpoint: the client connects through <uid>-bench, whose policy database has {} entries",
                    kbench::ENDPOINT_FILLER + 1
                );
                println!("(exact and wildcard names, user/group/world rules; TALK to the name for the world), so");
                println!("each SEND evaluates the endpoint database (policy.md 5.2); default endpoint: a bus owner,");
                println!("no database lookup. ratio = time per call through the custom endpoint / default.");
            }
        }
        println!();
        println!(
            "{:>8}  {:>4}  {:>18}  {:>18}  {:>6}",
            "payload",
            "CPUs",
            format!("{lb}/s"),
            format!("{lo}/s"),
            "ratio"
        );
        for r in &mine {
            println!(
                "{:>8}  {:>4}  {:>18}  {:>18}  {:>6}",
                human(r.len),
                r.pin.cpus(),
                fmt_rate(&r.base),
                fmt_rate(&r.other),
                fmt_ratio(ratio(&r.other, &r.base)),
            );
        }
        noisy_note(mine.iter().flat_map(|r| [&r.base, &r.other]));
    }
}

/// Sets up the two sets of peers of `pair` (Meta or Endpoint), each on a
/// bus of its own, and measures the 8-byte sync call on both, interleaved.
fn measure_pair(o: &Opts, pair: Pair, pin: Pin, slice: Duration) -> PairRow {
    let len = NAME_PAYLOAD;
    let (base_how, other_how, dst) = match pair {
        Pair::Meta => (
            PeerSetup::default(),
            PeerSetup {
                metadata: o.meta_mask,
                metadata_one_way: o.meta_one_way,
                ..PeerSetup::default()
            },
            Dst::Id,
        ),
        _ => (
            PeerSetup::default(),
            PeerSetup {
                custom_endpoint: Some(SERVER_NAME),
                ..PeerSetup::default()
            },
            Dst::Name(SERVER_NAME),
        ),
    };
    let (fb, fo) = pair.fields();
    let setup = |stem: &str, how: PeerSetup| -> Result<Peers, Failure> {
        let p = Peers::setup_with(&o.mount, &format!("bench-{stem}"), how)?;
        if dst != Dst::Id {
            p.own_name(SERVER_NAME)?;
        }
        Ok(p)
    };
    let base = setup(fb, base_how);
    let other = setup(fo, other_how);
    let start = |p: &Result<Peers, Failure>| match p {
        Ok(_) => Outcome::Done(Stat::default()),
        Err(f) => Outcome::Failed(f.clone()),
    };
    let mut row = PairRow {
        pair,
        pin,
        len,
        base: start(&base),
        other: start(&other),
        mask: (pair == Pair::Meta).then_some((o.meta_mask, o.meta_one_way)),
    };
    let (pb, po) = (base.as_ref().ok(), other.as_ref().ok());
    let mut run_base = |s: Duration| kbench::rtt_to(pb.unwrap(), dst, len, Call::Sync, s);
    let mut run_other = |s: Duration| kbench::rtt_to(po.unwrap(), dst, len, Call::Sync, s);
    let (lb, lo) = pair.labels();
    measure_cell(
        o,
        &format!("{} {}", pair.tag(), human(len)),
        slice,
        &mut [
            (lb, &mut row.base, &mut run_base),
            (lo, &mut row.other, &mut run_other),
        ],
    );
    row
}

fn report_fanout(rows: &[FanoutRow]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("Broadcast fan-out vs unicast, µs per signal (lower is better).");
    println!(
        "One process: a sender and N receivers on a bus of their own (pools of {} KiB); every",
        fanout::RECEIVER_POOL >> 10
    );
    println!(
        "{}th receiver (1%, at least one) has a match entry whose bloom mask accepts the signal",
        fanout::MATCH_EVERY
    );
    println!(
        "(type=signal, interface={}, member={}), the others one for another member.",
        fanout::IFACE,
        fanout::MEMBER
    );
    println!(
        "The signal: KDBUS_MSG_SIGNAL, {} B PAYLOAD_VEC, BLOOM_FILTER (64 B); fan-out: dst_id",
        fanout::PAYLOAD
    );
    println!("KDBUS_DST_ID_BROADCAST; unicast: the same signal to one matching receiver by ID, same bus.");
    println!(
        "SEND: only the sender's SEND (batches of {} back to back, the receivers drained untimed);",
        fanout::SEND_BATCH
    );
    println!("a broadcast SEND returns once every matching receiver has the message queued.");
    println!(
        "delivered: SEND until every matching receiver has RECVed (and FREEd) it: one receiver"
    );
    println!("thread polls the matching receivers, RECVs and FREEs, then acks on an eventfd the");
    println!("sender blocks on (the ack's wake-up is in both). ratio = fan-out / unicast.");
    println!();
    println!(
        "{:>5}  {:>8}  {:>4}  {:>13}  {:>13}  {:>6}  {:>13}  {:>13}  {:>6}",
        "N",
        "matching",
        "CPUs",
        "unicast SEND",
        "fan-out SEND",
        "ratio",
        "unicast dlvd",
        "fan-out dlvd",
        "ratio"
    );
    for r in rows {
        println!(
            "{:>5}  {:>8}  {:>4}  {:>13}  {:>13}  {:>6}  {:>13}  {:>13}  {:>6}",
            r.n,
            r.matching,
            r.pin.cpus(),
            fmt_us(&r.uni_send),
            fmt_us(&r.fan_send),
            fmt_ratio(ratio(&r.fan_send, &r.uni_send)),
            fmt_us(&r.uni_deliv),
            fmt_us(&r.fan_deliv),
            fmt_ratio(ratio(&r.fan_deliv, &r.uni_deliv)),
        );
    }
    noisy_note(
        rows.iter()
            .flat_map(|r| [&r.uni_send, &r.fan_send, &r.uni_deliv, &r.fan_deliv]),
    );
}

fn bench_lines_more(pairs: &[PairRow], fan: &[FanoutRow]) {
    for r in pairs {
        let (fb, fo) = r.pair.fields();
        println!(
            "BENCH {} payload={}{} {fo}_per_s={} {fb}_per_s={} ratio={} cpus={}{}{}{}",
            r.pair.tag(),
            r.len,
            r.mask.map_or(String::new(), |(m, one_way)| match one_way {
                true => format!(" mask={m:#x} oneway=1"),
                false => format!(" mask={m:#x}"),
            }),
            val(&r.other, Stat::per_s, 0),
            val(&r.base, Stat::per_s, 0),
            bench_ratio(&r.other, &r.base),
            r.pin.cpus(),
            spread_field(&[&r.other, &r.base]),
            err_field(&format!("{fo}_error"), &r.other),
            err_field(&format!("{fb}_error"), &r.base),
        );
    }
    for r in fan {
        println!(
            "BENCH fanout receivers={} matching={} send_us={} unicast_send_us={} send_ratio={} delivered_us={} unicast_delivered_us={} delivered_ratio={} cpus={}{}{}{}{}{}",
            r.n,
            r.matching,
            val(&r.fan_send, us, 2),
            val(&r.uni_send, us, 2),
            bench_ratio(&r.fan_send, &r.uni_send),
            val(&r.fan_deliv, us, 2),
            val(&r.uni_deliv, us, 2),
            bench_ratio(&r.fan_deliv, &r.uni_deliv),
            r.pin.cpus(),
            spread_field(&[&r.fan_send, &r.uni_send, &r.fan_deliv, &r.uni_deliv]),
            err_field("send_error", &r.fan_send),
            err_field("unicast_send_error", &r.uni_send),
            err_field("delivered_error", &r.fan_deliv),
            err_field("unicast_delivered_error", &r.uni_deliv),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses() {
        let m = "MemTotal:        1003456 kB\nMemFree:          900000 kB\nMemAvailable:     912340 kB\n";
        assert_eq!(parse_mem_available(m), Some(912340));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert!(mem_available_kib().is_some());
    }
}
