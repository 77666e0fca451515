//! Retry policy: for each failure class, how long to wait before the next attempt — or whether
//! to give up. The schedules are data ([`SCHEDULES`]); the code only walks them.
//!
//! Delays grow exponentially per class (via `backon`) with jitter in `[d, 2d)` so that many
//! waiters started together do not hit the server in lock-step. The schedule restarts whenever
//! the class changes: a server that goes from "refused" to "starting up" has made progress.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::classify::Class;

/// An exponential schedule: `first`, then ×`factor` per retry, capped at `max` (before jitter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub first: Duration,
    pub factor: f32,
    pub max: Duration,
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Each class's schedule (see README "Failure classes" and bench/ for the measured trade-offs).
/// Refused is cheap for everyone (the kernel answers), so it is polled fast. A server that answers
/// "not ready" writes a log line per attempt: the ramp is fast so the short 57P03 window of a
/// normal start-up costs little latency, then settles at 250 ms (+jitter) so a long recovery or
/// promotion wait logs under 40 lines per 10 s. After a dropped SYN the attempt itself already
/// waited its connect limit, so the pause after it is short.
#[rustfmt::skip]
pub const SCHEDULES: &[(Class, Schedule)] = &[
    (Class::Refused,      Schedule { first: ms(2),   factor: 1.5, max: ms(10) }),
    (Class::NotReady,     Schedule { first: ms(2),   factor: 1.5, max: ms(250) }),
    (Class::WrongKind,    Schedule { first: ms(2),   factor: 1.5, max: ms(250) }),
    (Class::Overloaded,   Schedule { first: ms(50),  factor: 2.0, max: ms(1000) }),
    (Class::Dropped,      Schedule { first: ms(50),  factor: 2.0, max: ms(1000) }),
    (Class::Unresolvable, Schedule { first: ms(100), factor: 2.0, max: ms(2000) }),
    (Class::Timeout,      Schedule { first: ms(50),  factor: 1.5, max: ms(1000) }),
    (Class::Unreachable,  Schedule { first: ms(100), factor: 2.0, max: ms(3000) }),
    // Used only for permanent classes the user opted into with --retry-on.
    (Class::Auth,         Schedule { first: ms(500), factor: 2.0, max: ms(5000) }),
    (Class::NoDatabase,   Schedule { first: ms(500), factor: 2.0, max: ms(5000) }),
];

/// First TCP connect limit while packets are being dropped; ×1.5 per consecutive timeout.
/// Short limits beat the kernel's SYN retransmission (1 s, then 3 s...) when a firewall opens;
/// growing ones still get through a slow real network.
pub const FIRST_CONNECT_TIMEOUT: Duration = ms(200);

/// The schedule for `class`, if it is retried at all.
pub fn schedule(class: Class) -> Option<Schedule> {
    SCHEDULES.iter().find(|(c, _)| *c == class).map(|(_, s)| *s)
}

/// Which normally permanent classes the user wants retried (`--retry-on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn {
    pub auth: bool,
    pub nodb: bool,
}

impl RetryOn {
    fn allows(self, class: Class) -> bool {
        match class {
            Class::Auth => self.auth,
            Class::NoDatabase => self.nodb,
            _ => !class.is_permanent(),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

/// Retry state across attempts.
#[derive(Debug)]
pub struct Policy {
    retry_on: RetryOn,
    seed: Option<u64>,
    current: Option<(Class, ExponentialBackoff)>,
    consecutive_timeouts: u32,
}

impl Policy {
    /// `seed` makes jitter reproducible (tests); `None` seeds from the OS.
    pub fn new(retry_on: RetryOn, seed: Option<u64>) -> Self {
        Self {
            retry_on,
            seed,
            current: None,
            consecutive_timeouts: 0,
        }
    }

    /// Decides what follows a failure of `class`.
    pub fn next(&mut self, class: Class) -> Decision {
        self.consecutive_timeouts = if class == Class::Timeout {
            self.consecutive_timeouts + 1
        } else {
            0
        };
        let Some(schedule) = schedule(class).filter(|_| self.retry_on.allows(class)) else {
            return Decision::GiveUp;
        };
        if self.current.as_ref().is_none_or(|(c, _)| *c != class) {
            self.current = Some((class, self.backoff(schedule)));
        }
        let (_, backoff) = self.current.as_mut().expect("set just above");
        // The builder is unbounded (no max_times, no total delay), so it never runs dry.
        Decision::RetryAfter(backoff.next().unwrap_or(schedule.max))
    }

    /// The TCP connect limit for the next attempt, never above `attempt_timeout`.
    pub fn connect_timeout(&self, attempt_timeout: Duration) -> Duration {
        let growth = 1.5f64.powi(self.consecutive_timeouts.min(30) as i32);
        FIRST_CONNECT_TIMEOUT.mul_f64(growth).min(attempt_timeout)
    }

    fn backoff(&self, s: Schedule) -> ExponentialBackoff {
        let builder = ExponentialBuilder::new()
            .with_min_delay(s.first)
            .with_max_delay(s.max)
            .with_factor(s.factor)
            .without_max_times()
            .with_jitter();
        match self.seed {
            Some(seed) => builder.with_jitter_seed(seed).build(),
            None => builder.build(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(policy: &mut Policy, class: Class, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| match policy.next(class) {
                Decision::RetryAfter(d) => d,
                Decision::GiveUp => panic!("gave up on {class:?}"),
            })
            .collect()
    }

    #[test]
    fn delays_stay_within_jitter_bounds_and_grow_to_the_cap() {
        for (class, s) in SCHEDULES.iter().filter(|(c, _)| !c.is_permanent()) {
            let mut policy = Policy::new(RetryOn::default(), Some(7));
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
            &mut Policy::new(RetryOn::default(), Some(1)),
            Class::NotReady,
            10,
        );
        let b = delays(
            &mut Policy::new(RetryOn::default(), Some(2)),
            Class::NotReady,
            10,
        );
        assert_ne!(a, b);
    }

    #[test]
    fn refused_is_polled_faster_than_not_ready_and_timeouts() {
        let (first, max) = (|c| schedule(c).unwrap().first, |c| schedule(c).unwrap().max);
        assert!(max(Class::Refused) < max(Class::NotReady));
        assert!(first(Class::NotReady) < first(Class::Timeout));
        assert!(max(Class::Refused) <= ms(10));
    }

    #[test]
    fn schedule_restarts_when_the_class_changes() {
        let mut policy = Policy::new(RetryOn::default(), Some(3));
        delays(&mut policy, Class::Timeout, 10);
        let after = delays(&mut policy, Class::NotReady, 1)[0];
        assert!(after < ms(20), "{after:?}");
    }

    #[test]
    fn permanent_classes_give_up_unless_opted_in() {
        let mut strict = Policy::new(RetryOn::default(), None);
        for class in [
            Class::Auth,
            Class::NoDatabase,
            Class::NotPostgres,
            Class::Rejected,
        ] {
            assert_eq!(strict.next(class), Decision::GiveUp, "{class:?}");
        }
        let mut lenient = Policy::new(
            RetryOn {
                auth: true,
                nodb: true,
            },
            None,
        );
        assert!(matches!(lenient.next(Class::Auth), Decision::RetryAfter(_)));
        assert!(matches!(
            lenient.next(Class::NoDatabase),
            Decision::RetryAfter(_)
        ));
        assert_eq!(lenient.next(Class::NotPostgres), Decision::GiveUp);
    }

    #[test]
    fn connect_timeout_escalates_on_consecutive_timeouts_only() {
        let mut policy = Policy::new(RetryOn::default(), None);
        let cap = Duration::from_secs(5);
        assert_eq!(policy.connect_timeout(cap), FIRST_CONNECT_TIMEOUT);
        policy.next(Class::Timeout);
        policy.next(Class::Timeout);
        assert_eq!(
            policy.connect_timeout(cap),
            FIRST_CONNECT_TIMEOUT.mul_f64(2.25)
        );
        for _ in 0..20 {
            policy.next(Class::Timeout);
        }
        assert_eq!(policy.connect_timeout(cap), cap);
        policy.next(Class::Refused);
        assert_eq!(policy.connect_timeout(cap), FIRST_CONNECT_TIMEOUT);
    }
}
