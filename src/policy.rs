//! Retry policy: the one owner of "retry or stop". For each failure class it says how long to
//! wait before the next attempt, or that the wait stops — and why (a transient class, a permanent
//! one, a permanent one that `--retry-on` asked to retry, or `--once`). The loop, the probe and the
//! reporter read that [`Decision`]; none re-derives it. The treatments are data ([`TREATMENTS`]).
//!
//! Delays grow exponentially per class (via `backon`) with jitter in `[d, 2d)` so that many
//! waiters started together do not hit the server in lock-step. The schedule restarts whenever
//! the class changes: a server that goes from "refused" to "starting up" has made progress.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::classify::{Class, ClassSet};

/// An exponential schedule: `first`, then ×`factor` per retry, capped at `max` (before jitter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub first: Duration,
    pub factor: f32,
    pub max: Duration,
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

const fn every(first: u64, factor: f32, max: u64) -> Schedule {
    Schedule {
        first: ms(first),
        factor,
        max: ms(max),
    }
}

/// Each class's treatment (see README "Failure classes" and bench/ for the measured trade-offs).
/// Refused is cheap for everyone (the kernel answers), so it is polled fast. A server that answers
/// "not ready" writes a log line per attempt: the ramp is fast so the short 57P03 window of a
/// normal start-up costs little latency, then settles at 250 ms (+jitter) so a long recovery or
/// promotion wait logs under 40 lines per 10 s. After a dropped SYN the attempt itself already
/// waited its connect limit, so the pause after it is short.
#[rustfmt::skip]
pub const TREATMENTS: &[(Class, Treatment)] = &[
    (Class::Refused,      Treatment::Retry(every(2, 1.5, 10))),
    (Class::NotReady,     Treatment::Retry(every(2, 1.5, 250))),
    (Class::WrongKind,    Treatment::Retry(every(2, 1.5, 250))),
    // Schema changes come from migrations that take seconds: no point polling in milliseconds.
    (Class::SchemaNotReady, Treatment::Retry(every(100, 1.5, 2000))),
    (Class::NotMet,       Treatment::Retry(every(100, 1.5, 2000))),
    (Class::Privileges,   Treatment::RetryIfAsked(every(500, 2.0, 5000))),
    (Class::Overloaded,   Treatment::Retry(every(50, 2.0, 1000))),
    (Class::Dropped,      Treatment::Retry(every(50, 2.0, 1000))),
    (Class::Unresolvable, Treatment::Retry(every(100, 2.0, 2000))),
    (Class::Timeout,      Treatment::Retry(every(50, 1.5, 1000))),
    (Class::Unreachable,  Treatment::Retry(every(100, 2.0, 3000))),
    (Class::Auth,         Treatment::RetryIfAsked(every(500, 2.0, 5000))),
    (Class::NoDatabase,   Treatment::RetryIfAsked(every(500, 2.0, 5000))),
    (Class::NotPostgres,  Treatment::Stop),
    (Class::Tls,          Treatment::Stop),
    (Class::ServerError,  Treatment::Stop),
];

/// The names `--retry-on` accepts, for the classes that may be retried when asked.
pub const RETRY_ON_NAMES: &[(&str, Class)] = &[
    ("auth", Class::Auth),
    ("nodb", Class::NoDatabase),
    ("privileges", Class::Privileges),
];

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

/// Retry state across attempts.
#[derive(Debug)]
pub struct Policy {
    retry_on: RetryOn,
    once: bool,
    seed: Option<u64>,
    current: Option<(Class, ExponentialBackoff)>,
    consecutive_timeouts: u32,
}

impl Policy {
    /// `once`: a single attempt; `seed` makes jitter reproducible (tests), `None` seeds from the OS.
    pub fn new(retry_on: RetryOn, once: bool, seed: Option<u64>) -> Self {
        Self {
            retry_on,
            once,
            seed,
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

    /// The classes that end the wait at once: an attempt need not try further servers after one.
    pub fn rejects(&self) -> ClassSet {
        Class::ALL
            .into_iter()
            .filter(|c| self.schedule(*c).is_none())
            .fold(ClassSet::EMPTY, ClassSet::with)
    }

    /// Decides what follows a failure of `class`.
    pub fn next(&mut self, class: Class) -> Decision {
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
        let backoff = match &mut self.current {
            Some((current, backoff)) if *current == class => backoff,
            slot => &mut slot.insert((class, backoff(schedule, self.seed))).1,
        };
        // The builder is unbounded (no max_times, no total delay), so it never runs dry.
        let after = backoff.next().unwrap_or(schedule.max);
        Decision::Retry { after, asked }
    }

    /// The TCP connect limit for the next attempt, never above `attempt_timeout`.
    pub fn tcp_connect_limit(&self, attempt_timeout: Duration) -> Duration {
        let growth = 1.5f64.powi(self.consecutive_timeouts.min(30) as i32);
        FIRST_CONNECT_LIMIT.mul_f64(growth).min(attempt_timeout)
    }
}

fn backoff(s: Schedule, seed: Option<u64>) -> ExponentialBackoff {
    let builder = ExponentialBuilder::new()
        .with_min_delay(s.first)
        .with_max_delay(s.max)
        .with_factor(s.factor)
        .without_max_times()
        .with_jitter();
    match seed {
        Some(seed) => builder.with_jitter_seed(seed).build(),
        None => builder.build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(policy: &mut Policy, class: Class, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| match policy.next(class) {
                Decision::Retry { after, .. } => after,
                other => panic!("{class:?}: {other:?}"),
            })
            .collect()
    }

    fn retry_on(list: &str) -> RetryOn {
        RetryOn::parse(list).unwrap()
    }

    #[test]
    fn every_class_has_exactly_one_treatment() {
        for class in Class::ALL {
            let rows = TREATMENTS.iter().filter(|(c, _)| *c == class).count();
            assert_eq!(rows, 1, "{class:?}");
        }
    }

    #[test]
    fn delays_stay_within_jitter_bounds_and_grow_to_the_cap() {
        for (class, treatment) in TREATMENTS {
            let Treatment::Retry(s) = treatment else {
                continue;
            };
            let mut policy = Policy::new(RetryOn::default(), false, Some(7));
            let got = delays(&mut policy, *class, 40);
            let mut base = s.first;
            // backon computes in f32: allow a microsecond of rounding either way.
            let slack = Duration::from_micros(1);
            for d in &got {
                let (low, high) = (base.saturating_sub(slack), base * 2 + slack);
                assert!(
                    *d >= low && *d < high,
                    "{class:?}: {d:?} outside [{low:?}, {high:?})"
                );
                base = base.mul_f32(s.factor).min(s.max);
            }
            assert!(got[39] >= s.max, "{class:?} never reached its cap");
        }
    }

    #[test]
    fn jitter_differs_between_seeds() {
        let a = delays(
            &mut Policy::new(RetryOn::default(), false, Some(1)),
            Class::NotReady,
            10,
        );
        let b = delays(
            &mut Policy::new(RetryOn::default(), false, Some(2)),
            Class::NotReady,
            10,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn refused_is_polled_faster_than_not_ready_and_timeouts() {
        let schedule = |c| match treatment(c) {
            Treatment::Retry(s) => s,
            other => panic!("{c:?}: {other:?}"),
        };
        assert!(schedule(Class::Refused).max < schedule(Class::NotReady).max);
        assert!(schedule(Class::NotReady).first < schedule(Class::Timeout).first);
        assert!(schedule(Class::Refused).max <= ms(10));
    }

    #[test]
    fn schedule_restarts_when_the_class_changes() {
        let mut policy = Policy::new(RetryOn::default(), false, Some(3));
        delays(&mut policy, Class::Timeout, 10);
        let after = delays(&mut policy, Class::NotReady, 1)[0];
        assert!(after < ms(20), "{after:?}");
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
            let decision = Policy::new(retry_on(list), once, Some(1)).next(class);
            assert_eq!(
                kind(decision),
                expected,
                "--retry-on {list:?} once={once} {class:?}"
            );
        }
    }

    #[test]
    fn the_classes_that_reject_are_exactly_the_permanent_ones_not_asked_for() {
        let strict = Policy::new(RetryOn::default(), false, None).rejects();
        let lenient = Policy::new(retry_on("auth"), false, None).rejects();
        for class in Class::ALL {
            let permanent = !matches!(treatment(class), Treatment::Retry(_));
            assert_eq!(strict.contains(class), permanent, "{class:?}");
        }
        assert!(!lenient.contains(Class::Auth) && lenient.contains(Class::NoDatabase));
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
    fn tcp_connect_limit_escalates_on_consecutive_timeouts_only() {
        let mut policy = Policy::new(RetryOn::default(), false, None);
        let cap = Duration::from_secs(5);
        assert_eq!(policy.tcp_connect_limit(cap), FIRST_CONNECT_LIMIT);
        policy.next(Class::Timeout);
        policy.next(Class::Timeout);
        assert_eq!(
            policy.tcp_connect_limit(cap),
            FIRST_CONNECT_LIMIT.mul_f64(2.25)
        );
        for _ in 0..20 {
            policy.next(Class::Timeout);
        }
        assert_eq!(policy.tcp_connect_limit(cap), cap);
        policy.next(Class::Refused);
        assert_eq!(policy.tcp_connect_limit(cap), FIRST_CONNECT_LIMIT);
    }
}
