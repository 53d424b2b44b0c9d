//! Failures, time-bounded measurement loops and their statistics.

use std::fmt;
use std::time::{Duration, Instant};

use crate::clock::Timer;

use kdbus::Errno;

/// Why a measurement could not be taken.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The operation that failed, one token (`SEND`, `RECV`, `socketpair`).
    pub op: &'static str,
    /// Who did it (`client sync call`, `server`, ...).
    pub who: String,
    /// The errno, if the failure is a system call's.
    pub errno: Option<Errno>,
    /// Anything else worth saying.
    pub detail: String,
}

impl Failure {
    /// A failed system call or ioctl.
    pub fn sys(op: &'static str, who: impl Into<String>, e: Errno) -> Self {
        Failure {
            op,
            who: who.into(),
            errno: Some(e),
            detail: String::new(),
        }
    }

    /// The last errno of a libc call.
    pub fn last(op: &'static str, who: impl Into<String>) -> Self {
        Self::sys(op, who, Errno::last())
    }

    /// A protocol or data error without an errno.
    pub fn bad(op: &'static str, who: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            op,
            who: who.into(),
            errno: None,
            detail: detail.into(),
        }
    }

    /// Appends context (e.g. what the other thread saw).
    pub fn also(mut self, more: impl fmt::Display) -> Self {
        if self.detail.is_empty() {
            self.detail = more.to_string();
        } else {
            self.detail = format!("{}; {more}", self.detail);
        }
        self
    }

    /// One token for the machine-readable lines: `SEND:EOPNOTSUPP`,
    /// `RECV:BADMSG`.
    pub fn code(&self) -> String {
        match self.errno {
            Some(e) => format!("{}:{e:?}", self.op),
            None => format!("{}:BAD", self.op),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.who, self.op)?;
        if let Some(e) = self.errno {
            write!(f, " failed: {e:?} ({})", e.desc())?;
        } else {
            write!(f, " failed")?;
        }
        if !self.detail.is_empty() {
            write!(f, " [{}]", self.detail)?;
        }
        Ok(())
    }
}

/// One timed run: `iters` iterations in `secs` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub iters: u64,
    pub secs: f64,
}

impl Sample {
    pub fn per_s(&self) -> f64 {
        self.iters as f64 / self.secs
    }
}

/// Runs `iter` for about `slice`: a warm-up (at least one iteration, up to a
/// tenth of the slice, not timed), then timed iterations until the slice is
/// used up, at least `min_timed` of them. The clock is read once per batch
/// of iterations (a batch takes ~1 ms, sized from the warm-up) so that
/// reading it does not weigh on fast iterations.
pub fn run_for<F>(slice: Duration, min_timed: u64, mut iter: F) -> Result<Sample, Failure>
where
    F: FnMut() -> Result<(), Failure>,
{
    let start = Instant::now();
    let warm_timer = Timer::start();
    let mut warm = 0u64;
    loop {
        iter()?;
        warm += 1;
        if start.elapsed() >= slice / 10 {
            break;
        }
    }
    let warm_t = start.elapsed();
    let per_iter = warm_timer.secs() / warm as f64;
    let batch = ((0.001 / per_iter) as u64).clamp(1, 1000);
    let budget = slice.saturating_sub(warm_t);
    let t0 = Instant::now();
    let timer = Timer::start();
    let mut n = 0u64;
    loop {
        for _ in 0..batch {
            iter()?;
        }
        n += batch;
        if n >= min_timed && t0.elapsed() >= budget {
            break;
        }
    }
    Ok(Sample {
        iters: n,
        secs: timer.secs(),
    })
}

/// Like [`run_for`], for loops where only part of each iteration is timed:
/// `iter` does `k` operations and returns `(k, seconds it timed)` (e.g. a
/// batch of SENDs timed, then the receivers drained untimed). Warm-up as in
/// `run_for` (at least one call, up to a tenth of the slice, not counted);
/// then calls until the slice (wall clock, timed and untimed parts) is used
/// up and at least `min_ops` operations were timed. The sample is the sum
/// of the operations and of their timed seconds.
pub fn run_timed<F>(slice: Duration, min_ops: u64, mut iter: F) -> Result<Sample, Failure>
where
    F: FnMut() -> Result<(u64, f64), Failure>,
{
    let start = Instant::now();
    loop {
        iter()?;
        if start.elapsed() >= slice / 10 {
            break;
        }
    }
    let budget = slice.saturating_sub(start.elapsed());
    let t0 = Instant::now();
    let (mut n, mut secs) = (0u64, 0.0f64);
    loop {
        let (k, t) = iter()?;
        n += k;
        secs += t;
        if n >= min_ops && t0.elapsed() >= budget {
            break;
        }
    }
    Ok(Sample { iters: n, secs })
}

/// The rounds of one measurement (interleaved with the other variants of
/// the same cell, so that drift of the host hits all of them alike).
#[derive(Debug, Clone, Default)]
pub struct Stat {
    pub rounds: Vec<Sample>,
}

impl Stat {
    /// The median of the per-round rates (iterations per second): robust
    /// against a round that a busy host slowed down.
    pub fn per_s(&self) -> f64 {
        let mut r: Vec<f64> = self.rounds.iter().map(Sample::per_s).collect();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    }

    /// Milliseconds per iteration at the median rate.
    pub fn ms(&self) -> f64 {
        1000.0 / self.per_s()
    }

    /// Half the spread of the per-round rates relative to the median, in
    /// percent (a rough stability figure).
    pub fn spread_pct(&self) -> f64 {
        if self.rounds.len() < 2 {
            return 0.0;
        }
        let (lo, hi) = self
            .rounds
            .iter()
            .map(Sample::per_s)
            .fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(r), hi.max(r)));
        50.0 * (hi - lo) / self.per_s()
    }
}

/// The outcome of one variant of a cell across its rounds.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Not run (e.g. `--baseline-only`).
    Skipped,
    /// Failed in some round; later rounds are not attempted.
    Failed(Failure),
    /// Measured.
    Done(Stat),
}

impl Outcome {
    pub fn stat(&self) -> Option<&Stat> {
        match self {
            Outcome::Done(s) if !s.rounds.is_empty() => Some(s),
            _ => None,
        }
    }

    /// Whether another round should be run.
    pub fn runnable(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// Records one round's result.
    pub fn record(&mut self, r: Result<Sample, Failure>) {
        match (self, r) {
            (Outcome::Done(s), Ok(sample)) => s.rounds.push(sample),
            (me @ Outcome::Done(_), Err(f)) => *me = Outcome::Failed(f),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_for_honours_minimum_and_slice() {
        let mut n = 0;
        let s = run_for(Duration::from_millis(20), 5, || {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert!(s.iters >= 5);
        assert!(s.secs >= 0.015, "{s:?}");
        let s = run_for(Duration::from_millis(1), 3, || {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();
        assert!(s.iters >= 3);
    }

    #[test]
    fn run_for_stops_at_first_failure() {
        let mut n = 0;
        let r = run_for(Duration::from_secs(10), 1, || {
            n += 1;
            if n == 3 {
                Err(Failure::sys("SEND", "t", Errno::EOPNOTSUPP))
            } else {
                Ok(())
            }
        });
        let f = r.unwrap_err();
        assert_eq!(f.code(), "SEND:EOPNOTSUPP");
        assert_eq!(n, 3);
    }

    #[test]
    fn run_timed_sums_only_the_timed_parts() {
        let mut calls = 0u64;
        let s = run_timed(Duration::from_millis(20), 100, || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(1));
            Ok((4, 0.5))
        })
        .unwrap();
        // Every timed call counted 4 operations and 0.5 s, whatever the
        // wall clock said; the warm-up calls are not counted.
        assert!(s.iters >= 100 && s.iters % 4 == 0, "{s:?}");
        assert_eq!(s.secs, s.iters as f64 / 4.0 * 0.5);
        assert!(calls > s.iters / 4, "{calls} {s:?}");
        assert_eq!(s.per_s(), 8.0);
        let mut n = 0;
        let e = run_timed(Duration::from_secs(10), 1, || {
            n += 1;
            if n == 2 {
                Err(Failure::bad("RECV", "t", "x"))
            } else {
                Ok((1, 0.1))
            }
        })
        .unwrap_err();
        assert_eq!(e.code(), "RECV:BAD");
    }

    #[test]
    fn stat_aggregates() {
        let s = Stat {
            rounds: vec![
                Sample {
                    iters: 100,
                    secs: 1.0,
                },
                Sample {
                    iters: 300,
                    secs: 1.0,
                },
            ],
        };
        assert_eq!(s.per_s(), 200.0);
        assert_eq!(s.ms(), 5.0);
        assert_eq!(s.spread_pct(), 50.0);
        let mut s3 = s.clone();
        s3.rounds.push(Sample {
            iters: 1,
            secs: 1.0,
        });
        assert_eq!(s3.per_s(), 100.0);
        let mut o = Outcome::Done(Stat::default());
        o.record(Err(Failure::bad("RECV", "server", "x")));
        assert!(!o.runnable());
        o.record(Ok(Sample {
            iters: 1,
            secs: 1.0,
        }));
        assert!(matches!(o, Outcome::Failed(_)));
        assert_eq!(Failure::bad("RECV", "s", "x").code(), "RECV:BAD");
    }
}
