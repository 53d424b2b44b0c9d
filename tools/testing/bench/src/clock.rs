//! A clock fine enough for the test VM.
//!
//! The test kernel has no ACPI, so under TCG it finds no HPET, marks the TSC
//! unstable (the vCPUs' TSCs look unsynchronised) and falls back to the
//! `refined-jiffies` clocksource: `CLOCK_MONOTONIC` then moves in 4 ms
//! steps. When the monotonic clock is that coarse, intervals are measured
//! with the TSC instead, calibrated once against `CLOCK_MONOTONIC` between
//! two of its steps (so the calibration error is the jitter of a tick, not
//! its length). Every TSC interval is cross-checked against the monotonic
//! clock, and the monotonic value is used when they disagree by more than
//! two ticks plus 5% (e.g. the thread moved to a vCPU with another TSC
//! offset).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How intervals are measured in this run.
#[derive(Debug)]
pub struct Clock {
    /// `clock_getres(CLOCK_MONOTONIC)`.
    pub res: Duration,
    /// TSC ticks per second, when the TSC is used.
    pub tsc_hz: Option<f64>,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// Resolutions up to this are fine as they are.
const FINE: Duration = Duration::from_micros(1);

fn mono_ns() -> u64 {
    crate::data::monotonic_ns()
}

#[cfg(target_arch = "x86_64")]
fn tsc() -> Option<u64> {
    // SAFETY: rdtsc exists on every x86_64 CPU.
    Some(unsafe { core::arch::x86_64::_rdtsc() })
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc() -> Option<u64> {
    None
}

fn resolution() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return FINE;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Waits for the next step of the monotonic clock; returns it and the TSC.
fn edge() -> Option<(u64, u64)> {
    let t0 = mono_ns();
    loop {
        let t = mono_ns();
        if t != t0 {
            return Some((t, tsc()?));
        }
    }
}

fn calibrate(res: Duration) -> Option<f64> {
    let span = (res * 100).clamp(Duration::from_millis(200), Duration::from_secs(1));
    let (m0, c0) = edge()?;
    while mono_ns() - m0 < span.as_nanos() as u64 {
        std::hint::spin_loop();
    }
    let (m1, c1) = edge()?;
    let hz = c1.wrapping_sub(c0) as f64 / ((m1 - m0) as f64 / 1e9);
    (hz.is_finite() && hz > 1e6).then_some(hz)
}

/// The clock of this run (calibrated on first use).
pub fn get() -> &'static Clock {
    CLOCK.get_or_init(|| {
        let res = resolution();
        let tsc_hz = if res > FINE { calibrate(res) } else { None };
        Clock { res, tsc_hz }
    })
}

/// One line saying how time is measured.
pub fn describe() -> String {
    let c = get();
    let src =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "?".into());
    match c.tsc_hz {
        Some(hz) => format!(
            "CLOCK_MONOTONIC resolution {:?} (clocksource {src}): intervals timed with the TSC, calibrated at {:.1} MHz",
            c.res,
            hz / 1e6
        ),
        None => format!(
            "CLOCK_MONOTONIC resolution {:?} (clocksource {src})",
            c.res
        ),
    }
}

/// A running interval.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    t: Instant,
    tsc: Option<u64>,
}

impl Timer {
    pub fn start() -> Self {
        let c = get();
        Timer {
            t: Instant::now(),
            tsc: c.tsc_hz.and(tsc()),
        }
    }

    /// Seconds since `start` (see the module comment for the source).
    pub fn secs(&self) -> f64 {
        let mono = self.t.elapsed().as_secs_f64();
        let c = get();
        match (self.tsc, c.tsc_hz, tsc()) {
            (Some(a), Some(hz), Some(b)) if b >= a => {
                let t = (b - a) as f64 / hz;
                let slack = 2.0 * c.res.as_secs_f64() + 0.05 * mono;
                if (t - mono).abs() <= slack {
                    t
                } else {
                    mono
                }
            }
            _ => mono,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_agrees_with_sleep() {
        let t = Timer::start();
        std::thread::sleep(Duration::from_millis(30));
        let s = t.secs();
        assert!((0.029..0.5).contains(&s), "{s}");
        assert!(!describe().is_empty());
    }

    #[test]
    fn calibration_finds_a_plausible_frequency() {
        if tsc().is_some() {
            let hz = calibrate(Duration::from_millis(1)).unwrap();
            assert!((1e8..1e10).contains(&hz), "{hz}");
        }
    }
}
