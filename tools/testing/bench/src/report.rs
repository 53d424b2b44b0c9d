//! Formatting shared by the benchmark programs: figures with their spread,
//! ratios, machine-readable values and the system line.

use crate::timing::{Outcome, Stat};

/// A byte count as `8 B`, `4 KiB`, `64 MiB`.
pub fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// CPUs this process may run on.
pub fn ncpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `kernel <release>, <n> CPUs (<model>)`.
pub fn system_line() -> String {
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

/// Rounds that disagree by more than this (half spread, percent) mark a
/// figure as noisy.
pub const NOISY_PCT: f64 = 25.0;

pub fn noisy_mark(s: &Stat) -> &'static str {
    if s.spread_pct() > NOISY_PCT {
        "*"
    } else {
        " "
    }
}

pub fn fmt_rate(o: &Outcome) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(f), _) => f.code(),
        (_, Some(s)) => format!("{:.0} ±{:.0}%{}", s.per_s(), s.spread_pct(), noisy_mark(s)),
        _ => "-".into(),
    }
}

pub fn fmt_us(o: &Outcome) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(f), _) => f.code(),
        (_, Some(s)) => format!(
            "{:.1} ±{:.0}%{}",
            s.ms() * 1e3,
            s.spread_pct(),
            noisy_mark(s)
        ),
        _ => "-".into(),
    }
}

/// Microseconds per iteration at the median rate.
pub fn us(s: &Stat) -> f64 {
    s.ms() * 1e3
}

pub fn fmt_ms(o: &Outcome) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(f), _) => f.code(),
        (_, Some(s)) => format!("{:.3} ±{:.0}%{}", s.ms(), s.spread_pct(), noisy_mark(s)),
        _ => "-".into(),
    }
}

/// The largest spread of the measured outcomes, as a BENCH field.
pub fn spread_field(outs: &[&Outcome]) -> String {
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
pub fn noisy_note<'a>(outs: impl Iterator<Item = &'a Outcome>) {
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
pub fn val(o: &Outcome, f: impl Fn(&Stat) -> f64, prec: usize) -> String {
    match (o, o.stat()) {
        (Outcome::Failed(_), _) => "error".into(),
        (_, Some(s)) => format!("{:.*}", prec, f(s)),
        _ => "skipped".into(),
    }
}

/// kdbus time / socket time.
pub fn ratio(kdbus: &Outcome, socket: &Outcome) -> Option<f64> {
    Some(kdbus.stat()?.ms() / socket.stat()?.ms())
}

pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}"))
}

pub fn bench_ratio(a: &Outcome, b: &Outcome) -> String {
    match ratio(a, b) {
        Some(r) => format!("{r:.3}"),
        None if matches!(a, Outcome::Failed(_)) || matches!(b, Outcome::Failed(_)) => {
            "error".into()
        }
        None => "skipped".into(),
    }
}

pub fn err_field(name: &str, o: &Outcome) -> String {
    match o {
        Outcome::Failed(f) => format!(" {name}={}", f.code()),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timing::{Failure, Sample};

    #[test]
    fn formats() {
        let o = Outcome::Done(Stat {
            rounds: vec![Sample {
                iters: 1000,
                secs: 0.5,
            }],
        });
        assert_eq!(fmt_us(&o), "500.0 ±0% ");
        assert_eq!(val(&o, us, 2), "500.00");
        assert_eq!(fmt_us(&Outcome::Skipped), "-");
        let f = Outcome::Failed(Failure::bad("RECV", "t", "x"));
        assert_eq!(fmt_us(&f), "RECV:BAD");
        assert_eq!(bench_ratio(&o, &o), "1.000");
        assert_eq!(bench_ratio(&f, &o), "error");
        assert_eq!(human(8), "8 B");
        assert_eq!(human(64 << 10), "64 KiB");
        assert_eq!(fmt_rate(&o), "2000 ±0% ");
        assert_eq!(fmt_ratio(ratio(&o, &o)), "1.00");
        assert_eq!(err_field("x", &f), " x=RECV:BAD");
    }
}
