//! Broadcast fan-out: one signal to N connections of which 1% (at least
//! one) have a match entry that accepts it, against a unicast signal to one
//! receiver on the same bus.
//!
//! Setup (all in this process): a bus of its own with a sender and N
//! receivers, created in order; receivers 0, 100, 200, ... match
//! ([`is_matcher`]). Each receiver has one match entry with one
//! BLOOM_MASK rule: the matching ones a [`RuleMask`] for
//! `type=signal,interface=IFACE,member=MEMBER`, the others the same
//! interface with a member of their own (`Other<i>`), a mask the signal's
//! filter does not satisfy (checked with [`BloomMask::matches`]). Receivers
//! have small pools ([`RECEIVER_POOL`]). The receiver set grows from one
//! N to the next (10 -> 100 -> 1000), so the bus holds exactly N receivers
//! while N is measured.
//!
//! The signal: `KDBUS_MSG_SIGNAL`, an 8-byte PAYLOAD_VEC and a
//! BLOOM_FILTER for type/interface/member/path ([`SignalFilter`]), sent
//! with `dst_id` = `KDBUS_DST_ID_BROADCAST`; the unicast variant sends the
//! same message with `dst_id` = receiver 0 (a unicast signal, which passes
//! the same match check at one receiver).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kdbus::{
    BloomFilter, BloomMask, BloomParams, Bus, BusMaker, CmdBuf, Connection, Control, MatchRule,
    MessageType, RuleMask, SignalFilter, DST_ID_BROADCAST,
};

use crate::clock::Timer;
use crate::data::{self, check};
use crate::kbench::{parse, recv, Outgoing, MSG_SIGNAL, PAYLOAD_DBUS};
use crate::timing::{run_for, run_timed, Failure, Sample};

/// The signal's interface, member and path.
pub const IFACE: &str = "org.kdbus.bench.Fanout";
pub const MEMBER: &str = "Ping";
pub const PATH: &str = "/org/kdbus/bench";
/// Every this many receivers one matches (1%).
pub const MATCH_EVERY: usize = 100;
/// Pool size of the receivers and the sender: a few queued signals fit
/// (a sending user may fill a sixth of a pool), and 1000 pools stay small.
pub const RECEIVER_POOL: u64 = 256 << 10;
/// Signals sent back to back in the SEND-only measurement before the
/// receivers are drained (well below `CONN_MAX_MSGS`, 256).
pub const SEND_BATCH: u64 = 32;
/// Payload bytes of the signal.
pub const PAYLOAD: usize = 8;
const ACK_TIMEOUT_MS: i32 = 5_000;

/// Whether receiver `i` (in creation order) matches the signal.
pub fn is_matcher(i: usize) -> bool {
    i.is_multiple_of(MATCH_EVERY)
}

/// How many of `n` receivers match: 1% rounded up (at least one).
pub fn matchers(n: usize) -> usize {
    n.div_ceil(MATCH_EVERY)
}

/// The signal's filter on a bus with `params`.
pub fn signal_filter(params: BloomParams) -> BloomFilter {
    SignalFilter::new()
        .message_type(MessageType::Signal)
        .interface(IFACE)
        .member(MEMBER)
        .path(PATH)
        .filter(params, 0)
}

/// The mask of receiver `i`: the signal's rule for a matcher, otherwise a
/// rule for the same interface with another member, `Other<i>` (with a
/// suffix in the unlikely case that its bits are all in the filter: bloom
/// false positives would make it a matcher).
pub fn receiver_mask(i: usize, params: BloomParams, filter: &BloomFilter) -> BloomMask {
    let rule = |member: &str| {
        RuleMask::new()
            .message_type(MessageType::Signal)
            .interface(IFACE)
            .member(member)
            .mask(params)
    };
    if is_matcher(i) {
        return rule(MEMBER);
    }
    let mut member = format!("Other{i}");
    loop {
        let m = rule(&member);
        if !m.matches(filter) {
            return m;
        }
        member.push('x');
    }
}

/// Raises the soft `RLIMIT_NOFILE` to at least `want` (up to the hard
/// limit): 1000 connections need more than the usual 1024 descriptors.
fn raise_nofile(want: u64) -> Result<(), Failure> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(Failure::last("getrlimit", "fan-out setup"));
    }
    if r.rlim_cur >= want {
        return Ok(());
    }
    r.rlim_cur = want.min(r.rlim_max);
    // SAFETY: a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(Failure::last("setrlimit", "fan-out setup"));
    }
    Ok(())
}

/// Where the signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `KDBUS_DST_ID_BROADCAST`: every matching receiver.
    Broadcast,
    /// Receiver 0 by its ID (a unicast signal).
    Unicast,
}

/// The fan-out bus: a sender and the receivers. Dropping it closes the
/// connections, then the bus.
pub struct Fanout {
    sender: Connection,
    receivers: Vec<Connection>,
    params: BloomParams,
    filter: BloomFilter,
    bus: Bus,
}

impl Fanout {
    /// A bus with a sender and no receivers yet.
    pub fn setup(mount: &str, max_receivers: usize) -> Result<Fanout, Failure> {
        let who = "fan-out setup";
        raise_nofile(max_receivers as u64 + 128)?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        let name = format!("{euid}-fanout-{}", std::process::id());
        let control = Control::open(mount).map_err(|e| {
            Failure::sys("open", who, e).also(format!("{mount}/control (kdbusfs mounted?)"))
        })?;
        let bus = BusMaker::new(&name)
            .make(control)
            .map_err(|e| Failure::sys("BUS_MAKE", who, e))?;
        let params = BloomParams::DEFAULT;
        let sender = hello(&bus, "fan-out sender")?;
        Ok(Fanout {
            sender,
            receivers: Vec::with_capacity(max_receivers),
            filter: signal_filter(params),
            params,
            bus,
        })
    }

    /// Adds receivers (HELLO, MATCH_ADD) until there are `n`.
    pub fn grow(&mut self, n: usize) -> Result<(), Failure> {
        while self.receivers.len() < n {
            let i = self.receivers.len();
            let who = format!("fan-out receiver {i}");
            let c = hello(&self.bus, &who)?;
            let mask = receiver_mask(i, self.params, &self.filter);
            c.match_add(&MatchRule::new(1).bloom_mask(&mask))
                .map_err(|e| Failure::sys("MATCH_ADD", who, e))?;
            self.receivers.push(c);
        }
        Ok(())
    }

    /// Receivers on the bus.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// Whether no receiver was added yet.
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    fn matching(&self) -> impl Iterator<Item = &Connection> {
        self.receivers
            .iter()
            .enumerate()
            .filter(|(i, _)| is_matcher(*i))
            .map(|(_, c)| c)
    }

    /// The receivers that get `target`'s signal.
    fn targets(&self, target: Target) -> Vec<&Connection> {
        match target {
            Target::Broadcast => self.matching().collect(),
            Target::Unicast => self.receivers.iter().take(1).collect(),
        }
    }

    fn dst(&self, target: Target) -> u64 {
        match target {
            Target::Broadcast => DST_ID_BROADCAST,
            Target::Unicast => self.receivers[0].id(),
        }
    }

    /// SEND time only: batches of [`SEND_BATCH`] signals sent back to back
    /// (timed), then every target drained and checked (untimed: RECV until
    /// `EAGAIN`, each must hold exactly one batch). After the run the
    /// non-matching receivers and the sender must have received nothing.
    pub fn send_only(&self, target: Target, slice: Duration) -> Result<Sample, Failure> {
        let who = "fan-out sender";
        let payload = data::payload(PAYLOAD);
        let mut out = Outgoing::signal(
            PAYLOAD,
            payload.as_ptr() as u64,
            &self.filter.item_payload(),
        );
        let dst = self.dst(target);
        let targets = self.targets(target);
        let mut rcmd = CmdBuf::new(crate::kbench::RECV_SIZE);
        let mut cookie = 0u64;
        let sample = run_timed(slice, 2 * SEND_BATCH, || {
            let t = Timer::start();
            for _ in 0..SEND_BATCH {
                cookie += 1;
                out.send(&self.sender, MSG_SIGNAL, dst, cookie, 0, 0)
                    .map_err(|e| Failure::sys("SEND", who, e))?;
            }
            let secs = t.secs();
            for c in &targets {
                let got = drain(c, &mut rcmd, "fan-out receiver")?;
                if got != SEND_BATCH {
                    return Err(Failure::bad(
                        "RECV",
                        "fan-out receiver",
                        format!(
                            "receiver {} had {got} of the {SEND_BATCH} signals just sent",
                            c.id()
                        ),
                    ));
                }
            }
            Ok((SEND_BATCH, secs))
        })?;
        self.check_quiet(&mut rcmd)?;
        Ok(sample)
    }

    /// Fails if a non-matching receiver (or the sender) holds a message.
    fn check_quiet(&self, rcmd: &mut CmdBuf) -> Result<(), Failure> {
        let quiet = self
            .receivers
            .iter()
            .enumerate()
            .filter(|(i, _)| !is_matcher(*i))
            .chain([(usize::MAX, &self.sender)]);
        for (i, c) in quiet {
            let got = drain(c, rcmd, "fan-out check")?;
            if got != 0 {
                return Err(Failure::bad(
                    "RECV",
                    "fan-out check",
                    format!(
                        "{} got {got} signals it has no match for",
                        if i == usize::MAX {
                            "the sender".to_string()
                        } else {
                            format!("non-matching receiver {i}")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Until every target has RECVed it: the sender SENDs one signal and
    /// blocks on an eventfd; one receiver thread polls the targets' fds,
    /// RECVs, checks and FREEs each signal and, once every target has its
    /// copy, writes the eventfd. Timed: the whole cycle per signal.
    pub fn delivered(&self, target: Target, slice: Duration) -> Result<Sample, Failure> {
        let who = "fan-out sender";
        let payload = data::payload(PAYLOAD);
        let mut out = Outgoing::signal(
            PAYLOAD,
            payload.as_ptr() as u64,
            &self.filter.item_payload(),
        );
        let dst = self.dst(target);
        let targets = self.targets(target);
        let ack = eventfd()?;
        let stop = AtomicBool::new(false);
        let mut cookie = 0u64;
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                data::pin_server()?;
                receive_all(&targets, ack.as_raw_fd(), &stop)
            });
            let res = run_for(slice, 10, || {
                cookie += 1;
                out.send(&self.sender, MSG_SIGNAL, dst, cookie, 0, 0)
                    .map_err(|e| Failure::sys("SEND", who, e))?;
                wait_ack(ack.as_raw_fd())
            });
            stop.store(true, Ordering::Relaxed);
            let srv = h
                .join()
                .unwrap_or_else(|_| Err(Failure::bad("thread", "fan-out receiver", "panicked")));
            match (res, srv) {
                (Ok(sample), Ok(())) => Ok(sample),
                (Err(c), Ok(())) => Err(c),
                (Ok(_), Err(s)) => Err(s),
                (Err(c), Err(s)) => Err(s.also(format!("then: {c}"))),
            }
        })
    }
}

fn hello(bus: &Bus, who: &str) -> Result<Connection, Failure> {
    let c = Connection::hello(bus.endpoint(), 0, 0, 0, RECEIVER_POOL)
        .map_err(|e| Failure::sys("HELLO", who.to_owned(), e))?;
    c.free(c.hello_reply().offset)
        .map_err(|e| Failure::sys("FREE", who.to_owned(), e))?;
    Ok(c)
}

/// Checks that the message at `off` is the benchmark's signal and FREEs it.
fn take(c: &Connection, off: u64, who: &str) -> Result<(), Failure> {
    let r = parse(c, off, who).and_then(|rx| {
        if rx.payload_type != PAYLOAD_DBUS || rx.flags & MSG_SIGNAL == 0 {
            return Err(Failure::bad(
                "RECV",
                who,
                format!(
                    "not the signal (flags {:#x}, payload_type {:#x}, cookie {})",
                    rx.flags, rx.payload_type, rx.cookie
                ),
            ));
        }
        check(who, rx.payload(c, who)?, PAYLOAD)
    });
    c.free(off).map_err(|e| Failure::sys("FREE", who, e))?;
    r
}

/// RECVs, checks and FREEs everything queued at `c`; returns how many.
fn drain(c: &Connection, rcmd: &mut CmdBuf, who: &str) -> Result<u64, Failure> {
    let mut n = 0;
    while let Some(off) = recv(c, rcmd).map_err(|e| Failure::sys("RECV", who, e))? {
        take(c, off, who)?;
        n += 1;
    }
    Ok(n)
}

/// The receiver thread: poll the targets, take what arrived, and ack each
/// complete set (one signal at every target) on `ack`, until `stop`.
fn receive_all(targets: &[&Connection], ack: RawFd, stop: &AtomicBool) -> Result<(), Failure> {
    let who = "fan-out receiver";
    let mut pfds: Vec<libc::pollfd> = targets
        .iter()
        .map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut rcmd = CmdBuf::new(crate::kbench::RECV_SIZE);
    let mut got = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: pfds is a valid array of its length.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 100) };
        if n < 0 {
            if kdbus::Errno::last() == kdbus::Errno::EINTR {
                continue;
            }
            return Err(Failure::last("poll", who));
        }
        for (p, c) in pfds.iter_mut().zip(targets) {
            if p.revents == 0 {
                continue;
            }
            if p.revents & libc::POLLIN == 0 {
                return Err(Failure::bad(
                    "poll",
                    who,
                    format!("revents {:#x} without POLLIN", p.revents),
                ));
            }
            p.revents = 0;
            got += drain(c, &mut rcmd, who)? as usize;
        }
        if got > targets.len() {
            return Err(Failure::bad(
                "RECV",
                who,
                format!("{got} signals for {} receivers", targets.len()),
            ));
        }
        if got == targets.len() {
            got = 0;
            let one = 1u64.to_ne_bytes();
            data::write_all(ack, &one).map_err(|e| e.also("ack eventfd"))?;
        }
    }
    Ok(())
}

fn eventfd() -> Result<OwnedFd, Failure> {
    // SAFETY: no pointers involved.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(Failure::last("eventfd", "fan-out"));
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits (poll, then read) for the receiver thread's ack.
fn wait_ack(fd: RawFd) -> Result<(), Failure> {
    let who = "fan-out sender";
    if !data::poll_in(fd, ACK_TIMEOUT_MS, who)? {
        return Err(Failure::sys("poll", who, kdbus::Errno::ETIMEDOUT)
            .also("the receivers did not get the signal within 5 s"));
    }
    let mut v = [0u8; 8];
    data::read_exact(fd, &mut v).map_err(|e| e.also("ack eventfd"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_percent_match_at_least_one() {
        assert_eq!(matchers(10), 1);
        assert_eq!(matchers(100), 1);
        assert_eq!(matchers(1000), 10);
        assert_eq!(matchers(101), 2);
        for n in [1, 10, 100, 250, 1000] {
            assert_eq!(
                (0..n).filter(|&i| is_matcher(i)).count(),
                matchers(n),
                "{n}"
            );
        }
        assert!(is_matcher(0) && is_matcher(900) && !is_matcher(1) && !is_matcher(999));
    }

    #[test]
    fn masks_select_the_matchers() {
        let p = BloomParams::DEFAULT;
        let f = signal_filter(p);
        for i in 0..1000 {
            let m = receiver_mask(i, p, &f);
            assert_eq!(m.matches(&f), is_matcher(i), "receiver {i}");
            assert_eq!(m.generations().len(), 1);
            assert!(!m.generations()[0].is_empty());
        }
        // A non-matcher's mask is a rule for the same interface.
        let other = RuleMask::new()
            .message_type(MessageType::Signal)
            .interface(IFACE)
            .member("Other1")
            .mask(p);
        assert_eq!(receiver_mask(1, p, &f), other);
        // The filter carries the type, interface, member and path.
        for e in [
            "message-type:signal",
            "interface:org.kdbus.bench.Fanout",
            "member:Ping",
        ] {
            assert!(f.bloom.contains(e), "{e}");
        }
    }

    #[test]
    fn setup_without_kdbusfs_fails_cleanly() {
        let e = Fanout::setup("/nonexistent-kdbus", 10).err().unwrap();
        assert_eq!(e.code(), "open:ENOENT");
    }
}
