//! Retry policy: the one owner of "retry or stop". For each failure class it says how long to
//! wait before the next attempt, or that the wait stops — and why (a transient class, a permanent
//! one, a permanent one that `--retry-on` asked to retry, or `--once`). The loop, the probe and the
//! reporter read that [`Decision`]; none re-derives it. The treatments are data ([`TREATMENTS`]).
//!
//! Schedules are written for a herd as much as for one waiter (README "Failure classes"; the
//! trade-offs are measured by bench/run.py and simulated by bench/herd.rs, which compiles this
//! very file). A mean delay is the largest of these, then jittered:
//! - an exponential **ramp** (`backon`, without its jitter) for the first seconds in a class: a
//!   normal start-up takes a second or two, and that is where fast attempts pay;
//! - after the class's `patience`, a **share of the time already waited** in it, so a long outage
//!   costs few attempts while the extra delay stays a small, fixed fraction of the wait;
//! - the **stretch** floor ([`Stretch`]): answers slower than this server's fastest mean a queue,
//!   and a herd that makes one backs off until it no longer does.
//!
//! A wait that *begins* in a server-paid class skips the millisecond ramp (its first retry is
//! spread over `[0, 2 × max)`): arriving at a server that is already not ready is what a deploy or
//! a failover does to many waiters at once. The policy reads no clock: the caller says when each
//! attempt ended and how long the server took to answer. The schedule restarts whenever the class
//! changes: a server that goes from "refused" to "starting up" has made progress.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::classify::{Class, ClassSet};

/// How the mean delay `d` is spread, so that waiters started together drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[d/2, 3d/2)`: for classes where only the waiter pays for an attempt (the
    /// kernel answers a refused port); the narrow spread keeps one waiter's detection delay low.
    Around,
    /// Uniform in `[0, 2d)` ("full jitter"): for classes where the server pays for each attempt;
    /// a herd's attempts spread evenly instead of arriving in waves.
    Full,
}

impl Jitter {
    /// Spreads `mean`; `unit` is uniform in [0, 1).
    pub fn spread(self, mean: Duration, unit: f64) -> Duration {
        let (low, width) = match self {
            Jitter::Around => (0.5, 1.0),
            Jitter::Full => (0.0, 2.0),
        };
        mean.mul_f64(low + width * unit)
    }
}

/// A retry schedule (all delays are means, before [`Jitter`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The first retry's mean delay.
    pub first: Duration,
    /// Growth per retry during the ramp.
    pub factor: f32,
    /// The ramp's cap.
    pub max: Duration,
    /// How long the ramp alone decides; after it the delay follows the time waited.
    pub patience: Duration,
    /// After `patience`, the delay is at least this share of the time spent in the class.
    pub share: f64,
    /// No mean delay is longer, however long the wait or slow the server.
    pub ceiling: Duration,
    /// How slow answers back the waiter off (see [`Stretch`]).
    pub stretch: Stretch,
    pub jitter: Jitter,
    /// When the wait *begins* in this class (the waiter arrived at a server already in this
    /// state — after a deploy or a failover, most likely one of many), skip the fast ramp: the
    /// first retry is spread uniformly over `[0, 2 × max)` and later ones start at `max`. A
    /// waiter that saw the server change into this class (refused → starting up) ramps as usual.
    pub spread_arrivals: bool,
}

/// A server that answers slowly is busy. An answer that takes longer than the fastest one seen
/// in the run (this server's idle answer time over this network) by more than
/// [`Stretch::QUIET`] sets the run's delay floor to `per` × the excess, up to `cap`; an answer
/// that is faster than the floor asks for lets it fall by half. A herd queued behind its own
/// attempts sees slow answers in proportion to its size, again and again while the server stays
/// saturated, so it backs off until the server is not — and comes back as the queue drains,
/// halving at each answer rather than at once, so it does not rebuild the queue it just left.
/// One waiter on an idle server never stretches, and a lone slow answer (a checkpoint, a busy
/// core, a server busy replaying WAL) costs one longer pause, not the rest of the wait: the
/// floor follows the server, it does not remember its worst moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub per: f64,
    /// The highest floor: how far a saturated server can push its waiters back.
    pub cap: Duration,
}

impl Stretch {
    /// No stretch: the answer's duration is not the server's (refused, timeouts, lookups).
    pub const NONE: Self = Self {
        per: 0.0,
        cap: Duration::ZERO,
    };
    /// The most an idle server takes to turn a connection away: 0.6–1.0 ms measured on the bench
    /// machine, tens of ms on a busy virtual one. The first answer of a run is measured against
    /// this too (the answer time is the server's own, the round trip taken out), so a herd whose
    /// first attempts all queue behind each other (46–820 ms measured, 200 waiters) sees it at
    /// once, not only from its second answer, while one waiter's first answer never stretches.
    pub const IDLE: Duration = ms(25);
    /// Queueing below this is noise. Measured on the bench machine (2 cores, PostgreSQL 15,
    /// loopback): one waiter's answers 0.6–1.0 ms; 200 waiters polling a 57P03 server, 1.5 ms
    /// median and 3–6 ms at the 90th–99th percentile once their start-up burst has passed.
    pub const QUIET: Duration = ms(10);

    /// The run's floor after an answer that took `slower` longer than the fastest answer seen
    /// in the run, from the floor `was`.
    pub fn follow(self, was: Duration, slower: Duration) -> Duration {
        let now = slower.saturating_sub(Self::QUIET).mul_f64(self.per);
        now.max(was.mul_f64(Self::EASE)).min(self.cap)
    }

    /// What is left of the floor after an answer that asks for less.
    pub const EASE: f64 = 0.75;
}

/// How a failure class is treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Treatment {
    /// Transient: always retried on this schedule.
    Retry(Schedule),
    /// Permanent, but `--retry-on` may name it; then retried on this schedule.
    RetryIfAsked(Schedule),
    /// Permanent: the wait stops (exit 3).
    Stop,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A table row: the ramp (`first` ms ×`factor` up to `max` ms), then after `patience` ms at least
/// `share` of the time waited, never above `ceiling` ms; jitter; no stretch (see [`Schedule::stretched`]).
const fn s(
    first: u64,
    factor: f32,
    max: u64,
    patience: u64,
    share: f64,
    ceiling: u64,
    jitter: Jitter,
) -> Schedule {
    Schedule {
        first: ms(first),
        factor,
        max: ms(max),
        patience: ms(patience),
        share,
        ceiling: ms(ceiling),
        stretch: Stretch::NONE,
        jitter,
        spread_arrivals: false,
    }
}

use Jitter::{Around, Full};

/// Each class's treatment (README "Failure classes" shows this table; bench/ measures it).
/// - Refused costs the server nothing (the kernel answers) but a herd's SYNs add up: polled fast
///   for the first 2 s (a normal start), then at 5 % of the outage so far.
/// - Starting (57P03 "starting up", "in recovery mode", "not yet accepting connections"): the
///   server's start-up process is replaying WAL, CPU-bound, and every attempt's fork and log
///   lines take CPU from it (bench/run.py `crash`: 200 waiters at the not-ready schedule made a
///   2.5 s recovery 1.37× longer). A clean start is over in tens of ms, so a ramp from 5 ms still
///   catches it; ×2 to 1.5 s, and after 2 s in the class at least 20 % of the time waited (a
///   slow recovery gets proportionally fewer attempts), never above 3 s. The stretch (cap 3 s)
///   backs off the herd whose first attempts queue at the postmaster.
/// - Not ready (57P03 hot standby off, shutting down, or in another language; 57P01/02; 08xxx)
///   costs the server a fork and a log line per attempt but takes nothing from a replay: a fast
///   ramp after the port opened, 250 ms otherwise — one waiter sees a promotion at ~1.5 s within
///   ~150 ms — and after 5 s, 5 % of the wait; the stretch backs a herd off when the server queues.
/// - Overloaded (53300) is the server saying it is full: it starts near 1 s.
/// - After a timeout the attempt itself already waited its connect limit: short pauses, no
///   stretch (the duration is pgwait's own limit, not the server's answer).
#[rustfmt::skip]
pub const TREATMENTS: &[(Class, Treatment)] = &[
    //                                        first factor   max patience share ceiling jitter
    (Class::Refused,        Treatment::Retry(s(    2, 1.5,    20,  2_000, 0.05,  5_000, Around))),
    (Class::Starting,       Treatment::Retry(s(    5, 2.0, 1_500,  2_000, 0.20,  3_000, Around).stretched(20.0, 3_000).spread_arrivals())),
    (Class::NotReady,       Treatment::Retry(s(    5, 2.0,   250,  5_000, 0.05,  5_000, Around).stretched(20.0, 30_000).spread_arrivals())),
    (Class::WrongKind,      Treatment::Retry(s(    5, 2.0,   250,  5_000, 0.05,  5_000, Around).stretched(20.0, 30_000).spread_arrivals())),
    // Schema changes come from migrations that take seconds: no point polling in milliseconds.
    (Class::SchemaNotReady, Treatment::Retry(s(  100, 1.5, 1_000, 10_000, 0.05,  5_000, Full).stretched(4.0, 30_000))),
    (Class::NotMet,         Treatment::Retry(s(  100, 1.5, 1_000, 10_000, 0.05,  5_000, Full).stretched(4.0, 30_000))),
    // A replica catching up: as not_met, with a lower ceiling so a resumed replay is seen soon.
    (Class::Lagging,        Treatment::Retry(s(  100, 1.5, 1_000, 10_000, 0.05,  2_000, Full).stretched(4.0, 30_000))),
    (Class::Privileges,     Treatment::RetryIfAsked(s(500, 2.0, 5_000, 30_000, 0.05, 10_000, Full).stretched(4.0, 30_000))),
    (Class::Overloaded,     Treatment::Retry(s(1_000, 1.5, 1_500, 10_000, 0.10, 10_000, Around).stretched(20.0, 30_000))),
    (Class::Dropped,        Treatment::Retry(s(   50, 2.0, 1_000,  5_000, 0.05,  5_000, Full))),
    (Class::Unresolvable,   Treatment::Retry(s(  100, 2.0, 2_000, 10_000, 0.05,  5_000, Around))),
    (Class::Timeout,        Treatment::Retry(s(   50, 1.5, 1_000, 10_000, 0.05,  5_000, Full))),
    (Class::Unreachable,    Treatment::Retry(s(  100, 2.0, 3_000, 10_000, 0.05,  5_000, Around))),
    (Class::Auth,           Treatment::RetryIfAsked(s(500, 2.0, 5_000, 30_000, 0.05, 10_000, Full).stretched(4.0, 30_000))),
    (Class::NoDatabase,     Treatment::RetryIfAsked(s(500, 2.0, 5_000, 30_000, 0.05, 10_000, Full).stretched(4.0, 30_000))),
    // A credential endpoint (IMDS after a boot, a metadata server at pod start, STS) or a
    // password command: not the database's load, but a shared service's; back off to seconds.
    (Class::Credentials,    Treatment::Retry(s(  200, 2.0, 5_000, 10_000, 0.05,  5_000, Full))),
    (Class::NotPostgres,    Treatment::Stop),
    (Class::Tls,            Treatment::Stop),
    (Class::ServerError,    Treatment::Stop),
    (Class::CredentialsRefused, Treatment::Stop),
];

/// The names `--retry-on` accepts, for the classes that may be retried when asked.
pub const RETRY_ON_NAMES: &[(&str, Class)] = &[
    ("auth", Class::Auth),
    ("nodb", Class::NoDatabase),
    ("privileges", Class::Privileges),
];

/// Ready only after `count` successful attempts in a row spanning at least `span` (from the
/// first success of the streak to the last). The default (1, zero) is the first success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stable {
    pub count: u32,
    pub span: Duration,
}

impl Default for Stable {
    fn default() -> Self {
        Self {
            count: 1,
            span: Duration::ZERO,
        }
    }
}

/// The pause between successful attempts under `--stable`, from..to.
pub const STABLE_GAP: (Duration, Duration) = (ms(100), ms(250));

/// First TCP connect limit while packets are being dropped; ×1.5 per consecutive timeout.
/// Short limits beat the kernel's SYN retransmission (1 s, then 3 s...) when a firewall opens;
/// growing ones still get through a slow real network.
pub const FIRST_CONNECT_LIMIT: Duration = ms(200);

/// The treatment of `class`.
pub fn treatment(class: Class) -> Treatment {
    TREATMENTS
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(Treatment::Stop, |(_, t)| *t)
}

impl Schedule {
    /// This schedule, with arrivals spread (see [`Schedule::spread_arrivals`]).
    const fn spread_arrivals(self) -> Self {
        Self {
            spread_arrivals: true,
            ..self
        }
    }

    /// This schedule, stretched by `per` ms per ms of slow answer, up to `cap` ms (see
    /// [`Stretch`]).
    const fn stretched(self, per: f64, cap: u64) -> Self {
        Self {
            stretch: Stretch { per, cap: ms(cap) },
            ..self
        }
    }

    /// The mean delay when the ramp is at `ramp`, `waited` into the class, with the run's
    /// stretch floor at `floor`. Pure: the table-driven tests and README's figures follow from it.
    pub fn mean_delay(&self, ramp: Duration, waited: Duration, floor: Duration) -> Duration {
        let mut delay = ramp;
        if waited >= self.patience {
            delay = delay.max(waited.mul_f64(self.share));
        }
        delay.min(self.ceiling).max(floor.min(self.stretch.cap))
    }
}

/// Which normally permanent classes the user wants retried (`--retry-on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(ClassSet);

impl RetryOn {
    /// Parses `auth,nodb` (any order, spaces allowed); `Err` names the first unknown item.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = ClassSet::EMPTY;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match RETRY_ON_NAMES.iter().find(|(name, _)| *name == item) {
                Some((_, class)) => set = set.with(*class),
                None => return Err(item.to_string()),
            }
        }
        Ok(Self(set))
    }

    /// The `--retry-on` name of `class`, if the user may name it.
    pub fn name_of(class: Class) -> Option<&'static str> {
        RETRY_ON_NAMES
            .iter()
            .find(|(_, c)| *c == class)
            .map(|(name, _)| *name)
    }

    fn contains(self, class: Class) -> bool {
        self.0.contains(class)
    }
}

/// What follows a failed attempt, decided here and only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try again after `after`. `asked`: the class is permanent but `--retry-on` names it.
    Retry { after: Duration, asked: bool },
    /// A permanent failure: the wait stops (exit 3).
    Reject,
    /// `--once` made its one attempt, which failed with a transient class (exit 1).
    GiveUp,
}

/// The run of consecutive failures of one class.
#[derive(Debug)]
struct Run {
    class: Class,
    /// When its first attempt ended (on the caller's clock).
    since: Duration,
    ramp: ExponentialBackoff,
    /// The stretch floor: the slowest answer so far asked for at least this delay.
    floor: Duration,
    /// The fastest answer so far: this server's idle answer time over this network.
    fastest: Option<Duration>,
    /// The wait began in this run and the schedule spreads arrivals.
    arrived: bool,
}

/// Retry state across attempts. It reads no clock: the caller says when each attempt ended and
/// how long it took, so the herd simulator (bench/herd.rs) can drive it on simulated time.
#[derive(Debug)]
pub struct Policy {
    retry_on: RetryOn,
    once: bool,
    rng: fastrand::Rng,
    current: Option<Run>,
    consecutive_timeouts: u32,
}

impl Policy {
    /// `once`: a single attempt; `seed` makes jitter reproducible (tests), `None` seeds from the OS.
    pub fn new(retry_on: RetryOn, once: bool, seed: Option<u64>) -> Self {
        Self {
            retry_on,
            once,
            rng: seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
            current: None,
            consecutive_timeouts: 0,
        }
    }

    /// The schedule `class` is retried on, if it is retried at all, and whether only because the
    /// user asked.
    fn schedule(&self, class: Class) -> Option<(Schedule, bool)> {
        match treatment(class) {
            Treatment::Retry(schedule) => Some((schedule, false)),
            Treatment::RetryIfAsked(schedule) if self.retry_on.contains(class) => {
                Some((schedule, true))
            }
            Treatment::RetryIfAsked(_) | Treatment::Stop => None,
        }
    }

    /// The pause between successful attempts while `--stable` counts them: short, so a flapping
    /// server is caught in its first down phase; jittered, so a herd does not count in step.
    pub fn stable_gap(&mut self) -> Duration {
        STABLE_GAP.0 + (STABLE_GAP.1 - STABLE_GAP.0).mul_f64(self.rng.f64())
    }

    /// Decides what follows an attempt that failed with `class` and ended at `now` (any clock
    /// that starts with the wait). `answer` is how long the server took to answer, when it did
    /// (the attempt's time after the connection was made, less the connect's round trip).
    pub fn next(&mut self, class: Class, answer: Option<Duration>, now: Duration) -> Decision {
        self.consecutive_timeouts = if class == Class::Timeout {
            self.consecutive_timeouts + 1
        } else {
            0
        };
        let Some((schedule, asked)) = self.schedule(class) else {
            return Decision::Reject;
        };
        if self.once {
            return Decision::GiveUp;
        }
        let arrived = self.current.is_none() && schedule.spread_arrivals;
        let first_retry = !matches!(&self.current, Some(run) if run.class == class);
        let run = match &mut self.current {
            Some(run) if run.class == class => run,
            slot => slot.insert(Run {
                class,
                since: now,
                ramp: ramp(schedule),
                floor: Duration::ZERO,
                fastest: None,
                arrived,
            }),
        };
        if let Some(answer) = answer {
            let fastest = run.fastest.unwrap_or(Stretch::IDLE).min(answer);
            run.fastest = Some(fastest);
            run.floor = schedule
                .stretch
                .follow(run.floor, answer.saturating_sub(fastest));
        }
        // The builder is unbounded (no max_times, no total delay), so it never runs dry.
        let mut step = run.ramp.next().unwrap_or(schedule.max);
        if run.arrived {
            step = step.max(schedule.max);
        }
        let mean = schedule.mean_delay(step, now.saturating_sub(run.since), run.floor);
        // An arrival's first retry is spread fully: that is what disperses a herd.
        let jitter = if run.arrived && first_retry {
            Jitter::Full
        } else {
            schedule.jitter
        };
        let after = jitter.spread(mean, self.rng.f64());
        Decision::Retry { after, asked }
    }

    /// The TCP connect limit for the next attempt, never above `attempt_timeout`.
    pub fn tcp_connect_limit(&self, attempt_timeout: Duration) -> Duration {
        let growth = 1.5f64.powi(self.consecutive_timeouts.min(30) as i32);
        FIRST_CONNECT_LIMIT.mul_f64(growth).min(attempt_timeout)
    }
}

/// The ramp: `first`, ×`factor` per retry, capped at `max`; jitter is applied on top.
fn ramp(s: Schedule) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(s.first)
        .with_max_delay(s.max)
        .with_factor(s.factor)
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: Duration = Duration::from_micros(1);

    fn secs(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    fn schedule_of(class: Class) -> Schedule {
        match treatment(class) {
            Treatment::Retry(s) | Treatment::RetryIfAsked(s) => s,
            Treatment::Stop => panic!("{class:?} is not retried"),
        }
    }

    fn retry_on(list: &str) -> RetryOn {
        RetryOn::parse(list).unwrap()
    }

    /// Attempt start times of one waiter failing with `class` for `span`, each attempt taking
    /// `took` (the server's answer time too, where a server answers), on simulated time: the
    /// policy reads no clock.
    fn attempts(class: Class, took: Duration, span: Duration, seed: u64) -> Vec<Duration> {
        answered(class, &|_| took, span, seed)
    }

    /// As [`attempts`], with the answer time of attempt `n` given by `took(n)`.
    fn answered(
        class: Class,
        took: &dyn Fn(usize) -> Duration,
        span: Duration,
        seed: u64,
    ) -> Vec<Duration> {
        let mut policy = Policy::new(retry_on("auth,nodb,privileges"), false, Some(seed));
        let server = !matches!(class, Class::Refused | Class::Timeout | Class::Unresolvable);
        let (mut now, mut starts) = (Duration::ZERO, vec![]);
        while now < span {
            let took = took(starts.len());
            starts.push(now);
            now += took;
            match policy.next(class, server.then_some(took), now) {
                Decision::Retry { after, .. } => now += after,
                other => panic!("{class:?}: {other:?}"),
            }
        }
        starts
    }

    fn between(starts: &[Duration], from: f64, to: f64) -> usize {
        starts
            .iter()
            .filter(|t| **t >= secs(from) && **t < secs(to))
            .count()
    }

    #[test]
    fn every_class_has_exactly_one_treatment() {
        for class in Class::ALL {
            let rows = TREATMENTS.iter().filter(|(c, _)| *c == class).count();
            assert_eq!(rows, 1, "{class:?}");
        }
    }

    #[test]
    fn every_schedule_is_coherent() {
        for (class, treatment) in TREATMENTS {
            let (Treatment::Retry(s) | Treatment::RetryIfAsked(s)) = treatment else {
                continue;
            };
            assert!(s.first <= s.max && s.max <= s.ceiling, "{class:?}");
            assert!(s.factor > 1.0, "{class:?}");
            // At most half the time waited: a waiter never sleeps longer than it has waited.
            assert!(
                s.share > 0.0 && s.share <= 0.5,
                "{class:?}: share {}",
                s.share
            );
            assert!((0.0..=100.0).contains(&s.stretch.per), "{class:?}");
        }
    }

    #[test]
    fn the_mean_delay_is_the_largest_of_ramp_floor_and_share_under_their_ceilings() {
        let s = s(2, 2.0, 200, 2_000, 0.10, 5_000, Full).stretched(4.0, 30_000);
        #[rustfmt::skip]
        let table = [
            // ramp, waited, floor → mean       why
            (2,      0,       0,     2),     // the ramp alone
            (200,    1_999,   0,     200),   // still inside patience
            (200,    2_000,   0,     200),   // 10 % of 2 s is the ramp's cap
            (200,    8_000,   0,     800),   // 10 % of the time waited
            (200,    8_000,   1_000, 1_000), // a stretched floor
            (2,      0,       300,   300),   // the floor applies from the first retry
            (200,    600_000, 0,     5_000), // the ceiling
            (200,    0,       9_000, 9_000), // a stretched floor passes the class's ceiling...
            (200,    0,       60_000, 30_000), // ...up to the stretch's own
        ];
        for (ramp, waited, floor, mean) in table {
            let got = s.mean_delay(ms(ramp), ms(waited), ms(floor));
            assert!(
                got.abs_diff(ms(mean)) <= SLACK,
                "ramp {ramp} waited {waited} floor {floor}: {got:?}"
            );
        }
    }

    #[test]
    fn the_floor_follows_the_server_and_eases_when_it_is_quick_again() {
        let stretch = Stretch {
            per: 20.0,
            cap: ms(2_000),
        };
        #[rustfmt::skip]
        let table = [
            // floor was, answer slower than the fastest by → floor    why
            (0,          0,                                 0),     // as fast as ever
            (0,          10,                                0),     // within QUIET
            (0,          15,                                100),   // 5 ms of queueing × 20
            (100,        15,                                100),   // the same queue: the same floor
            (400,        15,                                300),   // less queueing: it eases
            (400,        2,                                 300),   // a quiet answer eases it
            (0,          500,                               2_000), // never past the cap
        ];
        for (was, slower, floor) in table {
            let got = stretch.follow(ms(was), ms(slower));
            assert!(got.abs_diff(ms(floor)) <= SLACK, "{was} {slower}: {got:?}");
        }
        assert_eq!(Stretch::NONE.follow(ms(0), ms(500)), ms(0));
    }

    #[test]
    fn a_herd_whose_first_answers_queue_backs_off_at_once() {
        // The first answer of a run is measured against an idle server's, not against itself.
        let mut alone = Policy::new(RetryOn::default(), false, Some(7));
        let mut queued = Policy::new(RetryOn::default(), false, Some(7));
        alone.next(Class::Refused, None, ms(1));
        queued.next(Class::Refused, None, ms(1));
        let delay = |d: Decision| match d {
            Decision::Retry { after, .. } => after,
            other => panic!("{other:?}"),
        };
        let lone = delay(alone.next(Class::Starting, Some(ms(1)), ms(10)));
        let herd = delay(queued.next(Class::Starting, Some(ms(120)), ms(130)));
        assert!(lone < ms(10), "a lone waiter keeps its fast ramp: {lone:?}");
        assert!(
            herd > ms(900),
            "one that queued behind 100 others backs off: {herd:?}"
        );
    }

    #[test]
    fn a_long_start_gets_fewer_attempts_as_it_goes_on() {
        // A start-up that lasts (a crash recovery): a clean start's window is caught in tens of
        // ms, then the pace falls to seconds, in proportion to the time already waited.
        for seed in 0..20 {
            // It saw the port open: refused, then starting up.
            let mut policy = Policy::new(RetryOn::default(), false, Some(seed));
            let Decision::Retry { after, .. } = policy.next(Class::Refused, None, ms(1)) else {
                panic!("refused is retried");
            };
            let (mut now, mut starts) = (ms(1) + after, vec![]);
            while now < secs(20.0) {
                starts.push(now);
                now += ms(1);
                match policy.next(Class::Starting, Some(ms(1)), now) {
                    Decision::Retry { after, .. } => now += after,
                    other => panic!("{other:?}"),
                }
            }
            let first = between(&starts, 0.0, 0.1);
            let recovery = between(&starts, 0.1, 2.5);
            let late = between(&starts, 10.0, 20.0);
            assert!(
                first >= 2,
                "seed {seed}: {first} attempts in the first 100 ms"
            );
            assert!(
                (2..=6).contains(&recovery),
                "seed {seed}: {recovery} in 0.1–2.5 s"
            );
            assert!((3..=7).contains(&late), "seed {seed}: {late} in 10–20 s");
        }
    }

    #[test]
    fn jitter_spreads_around_the_mean_or_fully() {
        let around = s(1, 2.0, 1, 1, 0.1, 1, Around);
        let full = Schedule {
            jitter: Full,
            ..around
        };
        let mean = ms(100);
        #[rustfmt::skip]
        let table = [
            (around, 0.0, 50), (around, 0.5, 100), (around, 0.99, 149),
            (full,   0.0, 0),  (full,   0.5, 100), (full,   0.99, 198),
        ];
        for (schedule, unit, expected) in table {
            let got = schedule.jitter.spread(mean, unit);
            assert!(
                got.abs_diff(ms(expected)) <= SLACK,
                "{:?} {unit}: {got:?}",
                schedule.jitter
            );
        }
    }

    #[test]
    fn one_waiter_polls_fast_early_and_gently_late() {
        // (class, took, span s, window from..to s, at least, at most attempts in it)
        let table = [
            // A refused port: fast while a normal start-up could end it...
            (Class::Refused, 0.0002, 60.0, (0.0, 2.0), 80, 400),
            // ...≤ 5 attempts/s after a minute (the target: 1 s of SYNs, not 60).
            (Class::Refused, 0.0002, 60.0, (50.0, 60.0), 1, 50),
            // 57P03: ~4/s around 1.5 s so a promotion there is seen within ~150 ms...
            (Class::NotReady, 0.003, 10.0, (1.0, 2.0), 3, 8),
            // ...and ≤ 40 attempts in 10 s.
            (Class::NotReady, 0.003, 10.0, (0.0, 10.0), 10, 40),
            // 53300: the server is full; about one attempt a second from the start.
            (Class::Overloaded, 0.003, 10.0, (0.0, 10.0), 5, 14),
            // A server as slow to say 57P03 from the start is just far away: no stretch.
            (Class::NotReady, 0.050, 10.0, (0.0, 10.0), 10, 40),
        ];
        for (class, took, span, (from, to), low, high) in table {
            for seed in 0..20 {
                let starts = attempts(class, secs(took), secs(span), seed);
                let n = between(&starts, from, to);
                assert!(
                    (low..=high).contains(&n),
                    "{class:?} took {took}: {n} attempts in {from}..{to} s (seed {seed})"
                );
            }
        }
    }

    #[test]
    fn a_server_that_slows_down_backs_the_waiter_off() {
        // Fast answers (1 ms) for the first attempts, then 40 ms ones: a queue has built up.
        let slowing = |n: usize| if n < 5 { ms(1) } else { ms(40) };
        for seed in 0..20 {
            let calm = attempts(Class::NotReady, ms(1), secs(5.0), seed);
            let busy = answered(Class::NotReady, &slowing, secs(5.0), seed);
            let (calm, busy) = (between(&calm, 1.0, 5.0), between(&busy, 1.0, 5.0));
            assert!(
                busy * 3 <= calm * 2,
                "seed {seed}: {busy} vs {calm} attempts"
            );
        }
    }

    #[test]
    fn arriving_at_a_not_ready_server_spreads_the_first_retry() {
        let s = schedule_of(Class::NotReady);
        let mut firsts = vec![];
        for seed in 0..200 {
            let starts = attempts(Class::NotReady, ms(1), secs(1.0), seed);
            firsts.push(starts[1] - ms(1));
        }
        // Uniform over [0, 2 × max): some early, some late, none beyond.
        assert!(firsts.iter().all(|d| *d < s.max * 2));
        assert!(firsts.iter().any(|d| *d < s.max / 4));
        assert!(firsts.iter().any(|d| *d > s.max * 3 / 2));
        // Seeing the server come up (refused, then 57P03) ramps from milliseconds instead.
        let mut policy = Policy::new(RetryOn::default(), false, Some(1));
        policy.next(Class::Refused, None, ms(1));
        match policy.next(Class::NotReady, Some(ms(1)), ms(5)) {
            Decision::Retry { after, .. } => assert!(after < s.first * 2, "{after:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let a = attempts(Class::NotReady, ms(3), secs(2.0), 1);
        let b = attempts(Class::NotReady, ms(3), secs(2.0), 2);
        assert_ne!(a, b);
    }

    #[test]
    fn schedule_restarts_when_the_class_changes() {
        let mut policy = Policy::new(RetryOn::default(), false, Some(3));
        for i in 1..=100 {
            policy.next(Class::Timeout, None, secs(0.3 * f64::from(i)));
        }
        // 30 s of timeouts are behind; a first 57P03 is retried on the fresh ramp.
        match policy.next(Class::NotReady, Some(ms(3)), secs(30.1)) {
            Decision::Retry { after, .. } => assert!(after < ms(10), "{after:?}"),
            other => panic!("{other:?}"),
        }
    }

    /// A decision without its delay (jitter), for tables.
    fn kind(decision: Decision) -> &'static str {
        match decision {
            Decision::Retry { asked: false, .. } => "retry",
            Decision::Retry { asked: true, .. } => "retry, asked",
            Decision::Reject => "reject",
            Decision::GiveUp => "give up",
        }
    }

    #[test]
    fn decisions_follow_the_class_retry_on_and_once() {
        let table = [
            ("", false, Class::Refused, "retry"),
            ("", false, Class::NotReady, "retry"),
            ("", false, Class::Auth, "reject"),
            ("", false, Class::NoDatabase, "reject"),
            ("", false, Class::NotPostgres, "reject"),
            ("", false, Class::Tls, "reject"),
            ("", false, Class::ServerError, "reject"),
            ("auth", false, Class::Auth, "retry, asked"),
            ("auth", false, Class::NoDatabase, "reject"),
            ("auth,nodb", false, Class::NoDatabase, "retry, asked"),
            ("auth,nodb", false, Class::NotPostgres, "reject"),
            ("", true, Class::Refused, "give up"),
            ("", true, Class::Auth, "reject"),
            ("auth", true, Class::Auth, "give up"),
        ];
        for (list, once, class, expected) in table {
            let decision = Policy::new(retry_on(list), once, Some(1)).next(class, None, ms(1));
            assert_eq!(
                kind(decision),
                expected,
                "--retry-on {list:?} once={once} {class:?}"
            );
        }
    }

    #[test]
    fn retry_on_names_only_what_may_be_retried() {
        assert_eq!(RetryOn::parse(" auth , nodb "), Ok(retry_on("nodb,auth")));
        assert_eq!(RetryOn::parse("auth,typo"), Err("typo".to_string()));
        assert_eq!(RetryOn::parse("tls"), Err("tls".to_string()));
        for (name, class) in RETRY_ON_NAMES {
            assert!(
                matches!(treatment(*class), Treatment::RetryIfAsked(_)),
                "{name}"
            );
            assert_eq!(RetryOn::name_of(*class), Some(*name));
        }
    }

    #[test]
    fn stretch_applies_only_where_the_server_answered() {
        for class in [Class::Refused, Class::Timeout, Class::Unresolvable] {
            assert_eq!(schedule_of(class).stretch, Stretch::NONE, "{class:?}");
        }
        for class in [Class::NotReady, Class::Overloaded, Class::WrongKind] {
            assert!(schedule_of(class).stretch.per > 0.0, "{class:?}");
        }
    }

    #[test]
    fn tcp_connect_limit_escalates_on_consecutive_timeouts_only() {
        let mut policy = Policy::new(RetryOn::default(), false, None);
        let cap = Duration::from_secs(5);
        assert_eq!(policy.tcp_connect_limit(cap), FIRST_CONNECT_LIMIT);
        policy.next(Class::Timeout, None, ms(200));
        policy.next(Class::Timeout, None, ms(600));
        assert_eq!(
            policy.tcp_connect_limit(cap),
            FIRST_CONNECT_LIMIT.mul_f64(2.25)
        );
        for i in 0..20 {
            policy.next(Class::Timeout, None, secs(10.0 * f64::from(i)));
        }
        assert_eq!(policy.tcp_connect_limit(cap), cap);
        policy.next(Class::Refused, None, secs(300.0));
        assert_eq!(policy.tcp_connect_limit(cap), FIRST_CONNECT_LIMIT);
    }
}
