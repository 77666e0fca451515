//! The wait loop, read like tini's main loop: attempt → classify → decide → wait for
//! (backoff | signal | deadline). It takes a [`Probe`] and tokio's clock so it can be tested
//! with a scripted probe and paused time. It says what happens as [`Event`]s; the policy decides
//! retry or stop, and the loop only follows that [`Decision`].

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use crate::credentials::Note;
use crate::event::Event;
use crate::policy::{Decision, Policy, RetryOn};
use crate::probe::{AttemptError, Plan, Probe, Ready};
use crate::report::Reporter;
use crate::signals::Signal;

/// How to wait, whatever the target.
#[derive(Debug, Clone)]
pub struct WaitSettings {
    /// Overall deadline; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Bound on one whole attempt (`--connect-timeout`).
    pub attempt_timeout: Duration,
    /// `--once`: a single attempt.
    pub once: bool,
    /// Normally permanent classes to retry all the same.
    pub retry_on: RetryOn,
    /// How often to say "still waiting"; `None`: never.
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
    /// The policy rejected a failure as permanent.
    Rejected {
        error: AttemptError,
        attempts: u32,
        elapsed: Duration,
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
    GaveUp,
}

/// What the loop has seen so far; kept outside it so the deadline can read it.
#[derive(Default)]
struct Progress {
    attempts: u32,
    last: Option<AttemptError>,
    /// When "still waiting" was last said.
    last_status: Duration,
}

/// One wait for one target, with its reporter.
struct Waiter<'a, W: Write> {
    target: &'a str,
    settings: &'a WaitSettings,
    reporter: &'a mut Reporter<W>,
    start: Instant,
}

/// Waits until `probe` succeeds, a permanent failure, the deadline, or `interrupt` resolves.
pub async fn wait<P: Probe, W: Write>(
    probe: &mut P,
    target: &str,
    settings: &WaitSettings,
    reporter: &mut Reporter<W>,
    interrupt: impl Future<Output = Signal>,
) -> Outcome {
    let mut waiter = Waiter {
        target,
        settings,
        reporter,
        start: Instant::now(),
    };
    let mut progress = Progress::default();
    let raced = {
        // Config caps durations, but an overflowing deadline would still mean "never".
        let deadline = settings.timeout.and_then(|t| waiter.start.checked_add(t));
        let attempts = waiter.attempt_loop(probe, &mut progress);
        tokio::select! {
            biased;
            signal = interrupt => Err(Some(signal)),
            () = until(deadline) => Err(None),
            end = attempts => Ok(end),
        }
    };
    let elapsed = waiter.start.elapsed();
    let attempts = progress.attempts;
    let outcome = match raced {
        Ok(End::Ready(ready)) => Outcome::Ready {
            ready,
            attempts,
            elapsed,
        },
        Ok(End::Rejected(error)) => Outcome::Rejected {
            error,
            attempts,
            elapsed,
        },
        Ok(End::GaveUp) | Err(None) => Outcome::NotReady {
            attempts,
            elapsed,
            last: progress.last,
        },
        Err(Some(signal)) => Outcome::Interrupted { signal, elapsed },
    };
    waiter.report(&outcome);
    outcome
}

impl<W: Write> Waiter<'_, W> {
    async fn attempt_loop<P: Probe>(&mut self, probe: &mut P, progress: &mut Progress) -> End {
        let mut policy = Policy::new(
            self.settings.retry_on,
            self.settings.once,
            self.settings.seed,
        );
        loop {
            for note in probe.prepare() {
                self.note(&note);
            }
            progress.attempts += 1;
            let plan = Plan {
                per_address: self.settings.attempt_timeout,
                tcp_connect_limit: policy.tcp_connect_limit(self.settings.attempt_timeout),
                rejects: policy.rejects(),
            };
            let error = match probe.attempt(plan).await {
                Ok(ready) => return End::Ready(ready),
                Err(error) => error,
            };
            let decision = policy.next(error.class());
            self.reporter.emit(&Event::AttemptFailed {
                target: self.target,
                attempt: progress.attempts,
                elapsed: self.start.elapsed(),
                error: &error,
                decision,
            });
            match decision {
                Decision::Reject => return End::Rejected(error),
                Decision::GiveUp => {
                    progress.last = Some(error);
                    return End::GaveUp;
                }
                Decision::Retry { after, .. } => {
                    self.status(progress, &error);
                    progress.last = Some(error);
                    sleep(after).await;
                }
            }
        }
    }

    /// Reports what a credentials check found.
    fn note(&mut self, note: &Note) {
        let event = match note {
            Note::Changed(source) => Event::CredentialsChanged {
                target: self.target,
                source,
            },
            Note::Warning(warning) => Event::Warning(warning),
        };
        self.reporter.emit(&event);
    }

    /// Says "still waiting" once per status interval.
    fn status(&mut self, progress: &mut Progress, last: &AttemptError) {
        let Some(interval) = self.settings.status_interval else {
            return;
        };
        let elapsed = self.start.elapsed();
        if elapsed < progress.last_status + interval {
            return;
        }
        progress.last_status = elapsed;
        self.reporter.emit(&Event::StillWaiting {
            target: self.target,
            elapsed,
            attempts: progress.attempts,
            last,
        });
    }

    fn report(&mut self, outcome: &Outcome) {
        let target = self.target;
        if let Outcome::Ready { ready, .. } = outcome {
            if ready.socket_only {
                let address = &ready.address;
                self.reporter.emit(&Event::SocketOnly { target, address });
            }
        }
        let event = match outcome {
            Outcome::Ready {
                ready,
                attempts,
                elapsed,
            } => Event::Ready {
                target,
                elapsed: *elapsed,
                attempts: *attempts,
                ready,
            },
            Outcome::NotReady {
                attempts,
                elapsed,
                last,
            } => Event::NotReady {
                target,
                elapsed: *elapsed,
                attempts: *attempts,
                last: last.as_ref(),
            },
            Outcome::Rejected {
                error,
                attempts,
                elapsed,
            } => Event::Rejected {
                target,
                attempts: *attempts,
                elapsed: *elapsed,
                error,
            },
            Outcome::Interrupted { signal, elapsed } => Event::Interrupted {
                signal: *signal,
                elapsed: *elapsed,
            },
        };
        self.reporter.emit(&event);
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
