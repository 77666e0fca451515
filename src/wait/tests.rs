use std::collections::VecDeque;
use std::io::ErrorKind;

use super::*;
use crate::classify::{Class, Failure, Phase};
use crate::conninfo::SessionAttrs;
use crate::probe::{AddrFailure, Route, Server};

/// What the loop said, reduced to what the tests check: events, not wording.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Said {
    Failed(Class, Decision),
    StillWaiting { attempts: u32 },
    Ready { attempts: u32 },
    NotReady { attempts: u32, last: Option<Class> },
    Rejected(Class),
    Interrupted(Signal),
    Steady { successes: u32 },
    Unsteady { successes: u32 },
    Other,
}

/// A sink that keeps what was said, per target (by database name).
#[derive(Default)]
struct Recorder(Vec<(String, Said)>);

impl Sink for Recorder {
    fn emit(&mut self, event: &Event<'_>) {
        let (target, said) = match event {
            Event::AttemptFailed {
                target,
                error,
                decision,
                ..
            } => (target.dbname, Said::Failed(error.class(), *decision)),
            Event::StillWaiting {
                target, attempts, ..
            } => (
                target.dbname,
                Said::StillWaiting {
                    attempts: *attempts,
                },
            ),
            Event::Ready {
                target, attempts, ..
            } => (
                target.dbname,
                Said::Ready {
                    attempts: *attempts,
                },
            ),
            Event::NotReady {
                target,
                attempts,
                last,
                ..
            } => {
                let last = last.map(AttemptError::class);
                (
                    target.dbname,
                    Said::NotReady {
                        attempts: *attempts,
                        last,
                    },
                )
            }
            Event::Rejected { target, error, .. } => (target.dbname, Said::Rejected(error.class())),
            Event::Interrupted { signal, .. } => ("", Said::Interrupted(*signal)),
            Event::Steady {
                target, successes, ..
            } => (
                target.dbname,
                Said::Steady {
                    successes: *successes,
                },
            ),
            Event::Unsteady {
                target, successes, ..
            } => (
                target.dbname,
                Said::Unsteady {
                    successes: *successes,
                },
            ),
            _ => ("", Said::Other),
        };
        self.0.push((target.to_string(), said));
    }
}

impl Recorder {
    fn said(&self) -> Vec<Said> {
        self.0.iter().map(|(_, said)| said.clone()).collect()
    }

    fn failures(&self) -> Vec<Said> {
        let failed = |s: &Said| matches!(s, Said::Failed(..));
        self.said().into_iter().filter(failed).collect()
    }
}

fn target(dbname: &str) -> Target<'_> {
    Target {
        endpoints: &[],
        dbname,
        user: "app",
        attrs: SessionAttrs::Any,
        conditions: &[],
        dialect: None,
    }
}

fn db() -> Server {
    Server {
        host: "db".into(),
        port: 5432,
        route: Some(Route::Tcp(([10, 0, 0, 2], 5432).into())),
    }
}

/// A probe that plays a script of (how long the attempt takes, its result); the last step repeats.
struct Scripted {
    steps: VecDeque<(Duration, Result<Ready, AttemptError>)>,
    limits: Vec<Plan>,
}

impl Scripted {
    fn new(steps: Vec<(u64, Result<Ready, AttemptError>)>) -> Self {
        let steps = steps
            .into_iter()
            .map(|(ms, r)| (Duration::from_millis(ms), r))
            .collect();
        Self {
            steps,
            limits: Vec::new(),
        }
    }
}

impl Probe for Scripted {
    async fn attempt(&mut self, limits: Plan) -> Result<Ready, AttemptError> {
        self.limits.push(limits);
        let (duration, result) = if self.steps.len() > 1 {
            self.steps.pop_front()
        } else {
            self.steps.front().cloned()
        }
        .expect("script is not empty");
        sleep(duration).await;
        result
    }
}

fn fail(failure: Failure) -> Result<Ready, AttemptError> {
    Err(AttemptError {
        failures: vec![AddrFailure::new(db(), failure, None)],
    })
}

fn refused() -> Result<Ready, AttemptError> {
    fail(Failure::Io {
        phase: Phase::Connect,
        kind: ErrorKind::ConnectionRefused,
        detail: "refused".into(),
    })
}

fn starting_up() -> Result<Ready, AttemptError> {
    fail(Failure::Server {
        phase: Phase::Startup,
        sqlstate: "57P03".into(),
        message: "the database system is starting up".into(),
    })
}

fn hot_standby_off() -> Result<Ready, AttemptError> {
    fail(Failure::Server {
        phase: Phase::Startup,
        sqlstate: "57P03".into(),
        message: "the database system is not accepting connections".into(),
    })
}

fn bad_password() -> Result<Ready, AttemptError> {
    fail(Failure::Server {
        phase: Phase::Startup,
        sqlstate: "28P01".into(),
        message: "password authentication failed".into(),
    })
}

fn dropped_syn() -> Result<Ready, AttemptError> {
    fail(Failure::TimedOut {
        phase: Phase::Connect,
    })
}

fn ready() -> Result<Ready, AttemptError> {
    Ok(Ready {
        server: db(),
        socket_only: false,
        lag: None,
        facts: None,
    })
}

fn opts(timeout_ms: Option<u64>) -> WaitSettings {
    WaitSettings {
        timeout: timeout_ms.map(Duration::from_millis),
        once: false,
        retry_on: RetryOn::default(),
        status_interval: Some(Duration::from_secs(10)),
        seed: Some(42),
        stable: Stable::default(),
    }
}

async fn run(probe: &mut impl Probe, opts: &WaitSettings) -> (Outcome, Recorder) {
    run_until(probe, opts, std::future::pending()).await
}

async fn run_until(
    probe: &mut impl Probe,
    opts: &WaitSettings,
    interrupt: impl Future<Output = Signal>,
) -> (Outcome, Recorder) {
    let mut recorder = Recorder::default();
    let outcome = wait(probe, target("app"), opts, &mut recorder, interrupt).await;
    (outcome, recorder)
}

fn retry_after() -> impl Fn(&Said) -> bool {
    |s| matches!(s, Said::Failed(_, Decision::Retry { asked: false, .. }))
}

#[tokio::test(start_paused = true)]
async fn execs_as_soon_as_a_refusing_server_answers() {
    let mut probe = Scripted::new(vec![
        (1, refused()),
        (1, refused()),
        (1, refused()),
        (5, ready()),
    ]);
    let (outcome, said) = run(&mut probe, &opts(Some(60_000))).await;
    let Outcome::Ready {
        attempts, elapsed, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(attempts, 4);
    assert!(elapsed < Duration::from_millis(150), "{elapsed:?}");
    let failures = said.failures();
    assert_eq!(failures.len(), 3, "{:?}", said.said());
    assert!(failures.iter().all(retry_after()), "{failures:?}");
    assert!(failures
        .iter()
        .all(|f| matches!(f, Said::Failed(Class::Refused, _))));
    assert_eq!(said.said().last(), Some(&Said::Ready { attempts: 4 }));
}

#[tokio::test(start_paused = true)]
async fn retries_while_a_standby_waits_for_promotion_without_flooding_it() {
    // 10 s of 57P03 with hot_standby off (each rejection takes 2 ms), then promoted.
    let until = Instant::now() + Duration::from_secs(10);
    let mut gated = Gate {
        inner: Scripted::new(vec![(2, hot_standby_off())]),
        until,
        attempts_before: 0,
    };
    let (outcome, _) = run(&mut gated, &opts(Some(60_000))).await;
    let Outcome::Ready { elapsed, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        elapsed >= Duration::from_secs(10),
        "ready before the server was: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(10_600), "{elapsed:?}");
    assert!(
        gated.attempts_before <= 40,
        "{} attempts in 10 s of 57P03",
        gated.attempts_before
    );
    assert!(
        gated.attempts_before >= 10,
        "{} attempts: polling too lazily",
        gated.attempts_before
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_start_up_is_polled_ever_more_gently_and_seen_within_its_ceiling() {
    // 10 s of "starting up" (a crash recovery replaying WAL), then ready: the attempts fall
    // with the time waited, and the ready server is seen within the class's 3 s ceiling ±50 %.
    let until = Instant::now() + Duration::from_secs(10);
    let mut gated = Gate {
        inner: Scripted::new(vec![(2, starting_up())]),
        until,
        attempts_before: 0,
    };
    let (outcome, _) = run(&mut gated, &opts(Some(60_000))).await;
    let Outcome::Ready { elapsed, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(elapsed >= Duration::from_secs(10), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(14_600), "{elapsed:?}");
    assert!(
        (5..=15).contains(&gated.attempts_before),
        "{} attempts in 10 s of starting up",
        gated.attempts_before
    );
}

/// Answers 57P03 until `until`, then ready: a server promoted at a known instant.
struct Gate {
    inner: Scripted,
    until: Instant,
    attempts_before: u32,
}

impl Probe for Gate {
    async fn attempt(&mut self, limits: Plan) -> Result<Ready, AttemptError> {
        if Instant::now() >= self.until {
            return ready();
        }
        self.attempts_before += 1;
        self.inner.attempt(limits).await
    }
}

#[tokio::test(start_paused = true)]
async fn stops_at_once_on_a_wrong_password() {
    let mut probe = Scripted::new(vec![(1, refused()), (2, bad_password()), (1, ready())]);
    let (outcome, said) = run(&mut probe, &opts(Some(60_000))).await;
    assert!(matches!(outcome, Outcome::Rejected { .. }), "{outcome:?}");
    assert_eq!(probe.limits.len(), 2);
    assert_eq!(
        said.said()[1..],
        [
            Said::Failed(Class::Auth, Decision::Reject),
            Said::Rejected(Class::Auth)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_a_wrong_password_when_opted_in() {
    let mut probe = Scripted::new(vec![(1, bad_password()), (1, bad_password()), (1, ready())]);
    let mut o = opts(Some(60_000));
    o.retry_on = RetryOn::parse("auth").unwrap();
    let (outcome, said) = run(&mut probe, &o).await;
    assert!(
        matches!(outcome, Outcome::Ready { attempts: 3, .. }),
        "{outcome:?}"
    );
    // The decision says why a normally permanent failure is retried: the user asked.
    let failures = said.failures();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures.iter().all(|f| matches!(
        f,
        Said::Failed(Class::Auth, Decision::Retry { asked: true, .. })
    )));
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_the_deadline_with_the_last_cause() {
    let mut probe = Scripted::new(vec![(1, refused())]);
    let (outcome, said) = run(&mut probe, &opts(Some(1000))).await;
    let Outcome::NotReady {
        attempts,
        elapsed,
        last,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(elapsed, Duration::from_secs(1));
    assert!(
        attempts > 20,
        "refused should be polled fast, got {attempts} attempts in 1 s"
    );
    assert!(last.is_some());
    assert_eq!(
        said.said().last(),
        Some(&Said::NotReady {
            attempts,
            last: Some(Class::Refused)
        })
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_fires_in_the_middle_of_a_hung_attempt() {
    let mut probe = Scripted::new(vec![(30_000, ready())]);
    let (outcome, said) = run(&mut probe, &opts(Some(2000))).await;
    let Outcome::NotReady {
        attempts: 1,
        elapsed,
        last: None,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(elapsed, Duration::from_secs(2));
    assert_eq!(
        said.said(),
        [Said::NotReady {
            attempts: 1,
            last: None
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn waits_forever_without_a_deadline_until_a_signal() {
    let mut probe = Scripted::new(vec![(1, starting_up())]);
    let interrupt = async {
        sleep(Duration::from_secs(3600)).await;
        Signal::TERMINATE
    };
    let (outcome, said) = run_until(&mut probe, &opts(None), interrupt).await;
    let Outcome::Interrupted { signal, elapsed } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (signal, elapsed),
        (Signal::TERMINATE, Duration::from_secs(3600))
    );
    let said = said.said();
    assert_eq!(said.last(), Some(&Said::Interrupted(Signal::TERMINATE)));
    // "Still waiting" at most once per 10 s status interval (it is said after an attempt, so
    // with attempts ~5 s apart, every 10-15 s).
    let status = said
        .iter()
        .filter(|s| matches!(s, Said::StillWaiting { .. }))
        .count();
    assert!(
        (240..=360).contains(&status),
        "{status} status lines in an hour"
    );
}

#[tokio::test(start_paused = true)]
async fn once_makes_exactly_one_attempt() {
    let mut o = opts(Some(60_000));
    o.once = true;
    let (outcome, said) = run(&mut Scripted::new(vec![(1, refused()), (1, ready())]), &o).await;
    assert!(
        matches!(outcome, Outcome::NotReady { attempts: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        said.failures(),
        [Said::Failed(Class::Refused, Decision::GiveUp)]
    );
    let (outcome, _) = run(&mut Scripted::new(vec![(1, bad_password())]), &o).await;
    assert!(matches!(outcome, Outcome::Rejected { .. }), "{outcome:?}");
    let (outcome, _) = run(&mut Scripted::new(vec![(1, ready())]), &o).await;
    assert!(
        matches!(outcome, Outcome::Ready { attempts: 1, .. }),
        "{outcome:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropped_syns_get_short_escalating_connect_limits() {
    let mut probe = Scripted::new(vec![
        (250, dropped_syn()),
        (500, dropped_syn()),
        (1, refused()),
        (1, ready()),
    ]);
    run(&mut probe, &opts(Some(60_000))).await;
    let limits: Vec<u128> = probe
        .limits
        .iter()
        .map(|l| l.tcp_connect_limit.as_millis())
        .collect();
    assert_eq!(limits, vec![200, 300, 450, 200]);
}

/// Waits for several scripted targets together, as main does.
async fn run_all(
    probes: Vec<Scripted>,
    opts: &WaitSettings,
    interrupt: impl Future<Output = Signal>,
) -> (Vec<Outcome>, Recorder) {
    let names = ["first", "second", "third"];
    let jobs = probes
        .into_iter()
        .zip(names)
        .map(|(probe, name)| Job {
            probe,
            target: target(name),
            attempt_timeout: Duration::from_secs(5),
        })
        .collect();
    let mut recorder = Recorder::default();
    let outcomes = wait_all(jobs, opts, &mut recorder, interrupt).await;
    (outcomes, recorder)
}

#[tokio::test(start_paused = true)]
async fn a_rejection_abandons_the_targets_still_waiting_and_only_it_is_reported() {
    let probes = vec![
        Scripted::new(vec![(1, starting_up())]),
        Scripted::new(vec![(1, refused()), (1, refused()), (1, bad_password())]),
        Scripted::new(vec![(1, ready())]),
    ];
    let (outcomes, said) = run_all(probes, &opts(Some(60_000)), std::future::pending()).await;
    assert!(matches!(outcomes[0], Outcome::Abandoned), "{outcomes:?}");
    assert!(matches!(outcomes[1], Outcome::Rejected { attempts: 3, .. }));
    assert!(matches!(outcomes[2], Outcome::Ready { attempts: 1, .. }));
    let finals: Vec<(String, Said)> = said
        .0
        .into_iter()
        .filter(|(_, s)| !matches!(s, Said::Failed(..)))
        .collect();
    assert_eq!(
        finals,
        [
            ("second".to_string(), Said::Rejected(Class::Auth)),
            ("third".to_string(), Said::Ready { attempts: 1 }),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_interrupts_every_target_once_and_keeps_the_ready_ones() {
    let probes = vec![
        Scripted::new(vec![(1, ready())]),
        Scripted::new(vec![(1, starting_up())]),
        Scripted::new(vec![(1, refused())]),
    ];
    let interrupt = async {
        sleep(Duration::from_secs(3)).await;
        Signal::INTERRUPT
    };
    let (outcomes, said) = run_all(probes, &opts(Some(60_000)), interrupt).await;
    assert!(matches!(outcomes[0], Outcome::Ready { .. }), "{outcomes:?}");
    for outcome in &outcomes[1..] {
        assert!(
            matches!(outcome, Outcome::Interrupted { signal: Signal::INTERRUPT, elapsed }
                if *elapsed == Duration::from_secs(3)),
            "{outcome:?}"
        );
    }
    let interrupted = said
        .said()
        .into_iter()
        .filter(|s| matches!(s, Said::Interrupted(_)))
        .count();
    assert_eq!(interrupted, 1, "one line for the process");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_names_each_target_not_ready_and_keeps_the_ready_ones() {
    let probes = vec![
        Scripted::new(vec![(1, starting_up())]),
        Scripted::new(vec![(1, ready())]),
    ];
    let (outcomes, said) = run_all(probes, &opts(Some(2_000)), std::future::pending()).await;
    assert!(
        matches!(outcomes[0], Outcome::NotReady { .. }),
        "{outcomes:?}"
    );
    assert!(matches!(outcomes[1], Outcome::Ready { .. }));
    let not_ready: Vec<String> = said
        .0
        .iter()
        .filter(|(_, s)| matches!(s, Said::NotReady { .. }))
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(not_ready, ["first"]);
}

/// `--stable 3 --stable-for 1s` against a server that accepts twice, goes away, then stays up:
/// the first run does not count, the second makes ready once it spans a second.
#[tokio::test(start_paused = true)]
async fn stable_needs_a_run_of_successes_spanning_the_duration() {
    let mut steps = vec![(1, refused()), (5, ready()), (5, ready()), (1, refused())];
    steps.extend([(1, refused()), (5, ready())]);
    let mut probe = Scripted::new(steps);
    let mut settings = opts(Some(60_000));
    settings.stable = Stable {
        count: 3,
        span: Duration::from_secs(1),
    };
    let (outcome, said) = run(&mut probe, &settings).await;
    let Outcome::Ready {
        attempts, elapsed, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    let said = said.said();
    assert!(said.contains(&Said::Steady { successes: 2 }), "{said:?}");
    assert!(said.contains(&Said::Unsteady { successes: 2 }), "{said:?}");
    // The second run: at 100-250 ms gaps, a second takes 5 to 11 successes (at least 3).
    let successes = (attempts - 6) + 1;
    assert!(
        (5..=12).contains(&successes),
        "{attempts} attempts: {said:?}"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

/// Without --stable the first success is ready, as always.
#[tokio::test(start_paused = true)]
async fn without_stable_the_first_success_is_ready() {
    let mut probe = Scripted::new(vec![(5, ready())]);
    let (outcome, said) = run(&mut probe, &opts(Some(60_000))).await;
    assert!(
        matches!(outcome, Outcome::Ready { attempts: 1, .. }),
        "{outcome:?}"
    );
    assert!(!said.said().iter().any(|s| matches!(s, Said::Steady { .. })));
}

/// --once with --stable: the run is checked back to back, and a failure in it is "not ready".
#[tokio::test(start_paused = true)]
async fn once_with_stable_fails_when_the_run_breaks() {
    let mut probe = Scripted::new(vec![(5, ready()), (1, refused())]);
    let mut settings = opts(Some(60_000));
    settings.once = true;
    settings.stable.count = 3;
    let (outcome, said) = run(&mut probe, &settings).await;
    assert!(
        matches!(outcome, Outcome::NotReady { attempts: 2, .. }),
        "{outcome:?}"
    );
    assert!(said.said().contains(&Said::Unsteady { successes: 1 }));
}
