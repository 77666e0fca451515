use std::collections::VecDeque;
use std::io::ErrorKind;

use super::*;
use crate::classify::{Failure, Phase};
use crate::probe::AddrFailure;
use crate::report::LogSettings;

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
        failures: vec![AddrFailure::new("db:5432 (10.0.0.2)".into(), failure)],
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
        address: "db:5432 (10.0.0.2)".into(),
        checked: Vec::new(),
        socket_only: false,
    })
}

fn opts(timeout_ms: Option<u64>) -> WaitSettings {
    WaitSettings {
        timeout: timeout_ms.map(Duration::from_millis),
        once: false,
        retry_on: RetryOn::default(),
        status_interval: Some(Duration::from_secs(10)),
        seed: Some(42),
    }
}

async fn run(probe: &mut Scripted, opts: &WaitSettings) -> (Outcome, String) {
    run_until(probe, opts, std::future::pending()).await
}

async fn run_until(
    probe: &mut Scripted,
    opts: &WaitSettings,
    interrupt: impl Future<Output = Signal>,
) -> (Outcome, String) {
    let mut out = Vec::new();
    let outcome = {
        let mut reporter = Reporter::new(&mut out, LogSettings::default());
        wait(probe, "db:5432/app", opts, &mut reporter, interrupt).await
    };
    (outcome, String::from_utf8(out).unwrap())
}

#[tokio::test(start_paused = true)]
async fn execs_as_soon_as_a_refusing_server_answers() {
    let mut probe = Scripted::new(vec![
        (1, refused()),
        (1, refused()),
        (1, refused()),
        (5, ready()),
    ]);
    let (outcome, log) = run(&mut probe, &opts(Some(60_000))).await;
    let Outcome::Ready {
        attempts, elapsed, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(attempts, 4);
    assert!(elapsed < Duration::from_millis(150), "{elapsed:?}");
    assert_eq!(log.matches("waiting for").count(), 1, "{log}");
    assert!(
        log.contains("ready after") && log.contains("(4 attempts)"),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_while_server_is_starting_up_without_flooding_it() {
    // 10 s of 57P03 (each rejection takes 2 ms), then ready.
    let until = Instant::now() + Duration::from_secs(10);
    let mut gated = Gate {
        inner: Scripted::new(vec![(2, starting_up())]),
        until,
        attempts_before: 0,
    };
    let mut out = Vec::new();
    let mut reporter = Reporter::new(&mut out, LogSettings::default());
    let outcome = wait(
        &mut gated,
        "db/app",
        &opts(Some(60_000)),
        &mut reporter,
        std::future::pending(),
    )
    .await;
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
    let (outcome, log) = run(&mut probe, &opts(Some(60_000))).await;
    assert!(matches!(outcome, Outcome::Rejected { .. }), "{outcome:?}");
    assert_eq!(probe.limits.len(), 2);
    assert!(
        log.contains("28P01") && log.contains("hint: check the user name and password"),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_a_wrong_password_when_opted_in() {
    let mut probe = Scripted::new(vec![(1, bad_password()), (1, bad_password()), (1, ready())]);
    let mut o = opts(Some(60_000));
    o.retry_on = RetryOn::parse("auth").unwrap();
    let (outcome, log) = run(&mut probe, &o).await;
    assert!(
        matches!(outcome, Outcome::Ready { attempts: 3, .. }),
        "{outcome:?}"
    );
    // Says why it keeps waiting on a normally permanent failure, before the ready line.
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].starts_with("pgwait: waiting for db:5432 (10.0.0.2): 28P01")
            && lines[0].ends_with("(retried: --retry-on auth)"),
        "{log}"
    );
    assert!(lines[1].starts_with("pgwait: ready after"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn gives_up_at_the_deadline_with_the_last_cause() {
    let mut probe = Scripted::new(vec![(1, refused())]);
    let (outcome, log) = run(&mut probe, &opts(Some(1000))).await;
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
    assert!(
        log.contains("not ready after 1.00s") && log.contains("hint: nothing is listening"),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_fires_in_the_middle_of_a_hung_attempt() {
    let mut probe = Scripted::new(vec![(30_000, ready())]);
    let (outcome, log) = run(&mut probe, &opts(Some(2000))).await;
    let Outcome::NotReady {
        attempts: 1,
        elapsed,
        last: None,
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(elapsed, Duration::from_secs(2));
    assert!(log.contains("first attempt did not finish"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn waits_forever_without_a_deadline_until_a_signal() {
    let mut probe = Scripted::new(vec![(1, starting_up())]);
    let interrupt = async {
        sleep(Duration::from_secs(3600)).await;
        Signal::TERMINATE
    };
    let (outcome, log) = run_until(&mut probe, &opts(None), interrupt).await;
    let Outcome::Interrupted { signal, elapsed } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (signal, elapsed),
        (Signal::TERMINATE, Duration::from_secs(3600))
    );
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
    assert!(log.contains("still waiting (10s"), "{log}");
}

#[tokio::test(start_paused = true)]
async fn once_makes_exactly_one_attempt() {
    let mut o = opts(Some(60_000));
    o.once = true;
    let (outcome, _) = run(&mut Scripted::new(vec![(1, refused()), (1, ready())]), &o).await;
    assert!(
        matches!(outcome, Outcome::NotReady { attempts: 1, .. }),
        "{outcome:?}"
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
async fn prints_one_line_per_state_change_not_per_attempt() {
    let mut steps: Vec<_> = (0..6).map(|_| (1, refused())).collect();
    steps.extend((0..6).map(|_| (1, starting_up())));
    steps.push((1, ready()));
    let (_, log) = run(&mut Scripted::new(steps), &opts(Some(60_000))).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains("connection refused") && lines[1].contains("57P03"),
        "{log}"
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
