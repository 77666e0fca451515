//! The wait loop, read like tini's main loop: attempt → classify → decide → wait for
//! (backoff | signal | deadline). It takes a [`Probe`] and tokio's clock so it can be tested
//! with a scripted probe and paused time.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use crate::policy::{Decision, Policy, RetryOn};
use crate::probe::{AttemptError, Limits, Probe, Ready};
use crate::report::Reporter;
use crate::signals::Signal;

/// The knobs of one wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Overall deadline; `None` waits forever.
    pub timeout: Option<Duration>,
    pub attempt_timeout: Duration,
    pub once: bool,
    pub retry_on: RetryOn,
    pub status_interval: Option<Duration>,
    /// Seeds the jitter (tests); `None` seeds from the OS.
    pub seed: Option<u64>,
}

/// How the wait ended.
#[derive(Debug)]
pub enum Outcome {
    Ready {
        ready: Ready,
        attempts: u32,
        elapsed: Duration,
    },
    /// The deadline passed, or the `--once` attempt failed with a transient class.
    NotReady {
        attempts: u32,
        elapsed: Duration,
        last: Option<AttemptError>,
    },
    /// A permanent failure the user did not opt to retry.
    Rejected {
        error: AttemptError,
    },
    Interrupted {
        signal: Signal,
        elapsed: Duration,
    },
}

/// What the attempt loop itself can end with (the deadline and signals are raced around it).
enum End {
    Ready(Ready),
    Rejected(AttemptError),
    OnceFailed,
}

#[derive(Default)]
struct Progress {
    attempts: u32,
    last: Option<AttemptError>,
}

/// Waits until `probe` succeeds, a permanent failure, the deadline, or `interrupt` resolves.
pub async fn wait<P: Probe, W: Write>(
    probe: &mut P,
    opts: &WaitOptions,
    reporter: &mut Reporter<W>,
    interrupt: impl Future<Output = Signal>,
) -> Outcome {
    let start = Instant::now();
    let mut progress = Progress::default();
    let raced = {
        let attempts = attempt_loop(probe, opts, reporter, &mut progress, start);
        tokio::select! {
            biased;
            signal = interrupt => Err(Some(signal)),
            () = until(opts.timeout.map(|t| start + t)) => Err(None),
            end = attempts => Ok(end),
        }
    };
    let elapsed = start.elapsed();
    let attempts = progress.attempts;
    let outcome = match raced {
        Ok(End::Ready(ready)) => Outcome::Ready {
            ready,
            attempts,
            elapsed,
        },
        Ok(End::Rejected(error)) => Outcome::Rejected { error },
        Ok(End::OnceFailed) | Err(None) => Outcome::NotReady {
            attempts,
            elapsed,
            last: progress.last,
        },
        Err(Some(signal)) => Outcome::Interrupted { signal, elapsed },
    };
    report(reporter, &outcome);
    outcome
}

async fn attempt_loop<P: Probe, W: Write>(
    probe: &mut P,
    opts: &WaitOptions,
    reporter: &mut Reporter<W>,
    progress: &mut Progress,
    start: Instant,
) -> End {
    let mut policy = Policy::new(opts.retry_on, opts.seed);
    loop {
        progress.attempts += 1;
        let limits = Limits {
            deadline: Instant::now() + opts.attempt_timeout,
            connect_timeout: policy.connect_timeout(opts.attempt_timeout),
        };
        let error = match probe.attempt(limits).await {
            Ok(ready) => return End::Ready(ready),
            Err(error) => error,
        };
        let class = error.class();
        let decision = if opts.once {
            Decision::GiveUp
        } else {
            policy.next(class)
        };
        reporter.failed(progress.attempts, start.elapsed(), &error, decision);
        match decision {
            Decision::GiveUp if class.is_permanent() => return End::Rejected(error),
            Decision::GiveUp => {
                progress.last = Some(error);
                return End::OnceFailed;
            }
            Decision::RetryAfter(delay) => {
                reporter.tick(
                    opts.status_interval,
                    start.elapsed(),
                    progress.attempts,
                    &error,
                );
                progress.last = Some(error);
                sleep(delay).await;
            }
        }
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn report<W: Write>(reporter: &mut Reporter<W>, outcome: &Outcome) {
    match outcome {
        Outcome::Ready {
            ready,
            attempts,
            elapsed,
        } => reporter.ready(*elapsed, *attempts, ready),
        Outcome::NotReady {
            attempts,
            elapsed,
            last,
        } => reporter.not_ready(*elapsed, *attempts, last.as_ref()),
        Outcome::Rejected { error, .. } => reporter.rejected(error),
        Outcome::Interrupted { signal, elapsed } => reporter.interrupted(signal.name(), *elapsed),
    }
}

#[cfg(test)]
mod tests;
