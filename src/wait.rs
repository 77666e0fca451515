//! The wait loop, read like tini's main loop: attempt → classify → decide → wait for
//! (backoff | signal | deadline). It takes a [`Probe`] and tokio's clock so it can be tested
//! with a scripted probe and paused time. It says what happens as [`Event`]s; the policy decides
//! retry or stop, and the loop only follows that [`Decision`].

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{sleep, sleep_until, Instant};

use crate::credentials::Note;
use crate::event::{Event, Sink, Target};
use crate::policy::{Decision, Policy, RetryOn, Stable};
use crate::probe::{AttemptError, Plan, Probe, Ready};
use crate::signals::Signal;

/// How to wait, whatever the target.
#[derive(Debug, Clone)]
pub struct WaitSettings {
    /// Overall deadline; `None` waits forever.
    pub timeout: Option<Duration>,
    /// `--once`: a single attempt.
    pub once: bool,
    /// Normally permanent classes to retry all the same.
    pub retry_on: RetryOn,
    /// How often to say "still waiting"; `None`: never.
    pub status_interval: Option<Duration>,
    /// Seeds the jitter (tests); `None` seeds from the OS.
    pub seed: Option<u64>,
    /// `--stable` / `--stable-for`: how many successes in a row, over how long, make ready.
    pub stable: Stable,
}

/// A run of successful attempts under `--stable`.
#[derive(Debug, Clone, Copy)]
struct Streak {
    successes: u32,
    /// When the first success of the run ended.
    since: Duration,
}

/// How the wait ended for one target.
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
    /// Still waiting when another target was rejected (that rejection ends the wait).
    Abandoned,
}

/// One database to wait for: its probe, what events name it by, and its per-address limit.
pub struct Job<'a, P> {
    pub probe: P,
    pub target: Target<'a>,
    pub attempt_timeout: Duration,
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
    /// When this target became ready (others may still be waited for).
    finished: Option<Duration>,
}

/// One wait for one target; the sink is shared by the targets waited for together.
struct Waiter<'a, 'r, S: Sink + ?Sized> {
    target: Target<'a>,
    settings: &'a WaitSettings,
    attempt_timeout: Duration,
    sink: &'a RefCell<&'r mut S>,
    start: Instant,
}

/// Waits for one target (see [`wait_all`]); each address gets 5 s.
#[cfg(test)]
pub async fn wait<P: Probe, S: Sink + ?Sized>(
    probe: &mut P,
    target: Target<'_>,
    settings: &WaitSettings,
    sink: &mut S,
    interrupt: impl Future<Output = Signal>,
) -> Outcome {
    let job = Job {
        probe,
        target,
        attempt_timeout: Duration::from_secs(5),
    };
    let mut outcomes = wait_all(vec![job], settings, sink, interrupt).await;
    outcomes.remove(0)
}

/// Waits for every target in parallel under one deadline, until all are ready, one is rejected
/// (that ends the wait for all), the deadline passes, or `interrupt` resolves. Each target
/// keeps its own schedule and says what happens to it; returns an outcome per target, in order.
pub async fn wait_all<P: Probe, S: Sink + ?Sized>(
    jobs: Vec<Job<'_, P>>,
    settings: &WaitSettings,
    sink: &mut S,
    interrupt: impl Future<Output = Signal>,
) -> Vec<Outcome> {
    let sink = RefCell::new(sink);
    let start = Instant::now();
    let mut waiters: Vec<(Waiter<'_, '_, S>, P)> = jobs
        .into_iter()
        .map(|job| {
            let waiter = Waiter {
                target: job.target,
                settings,
                attempt_timeout: job.attempt_timeout,
                sink: &sink,
                start,
            };
            (waiter, job.probe)
        })
        .collect();
    let mut progress: Vec<Progress> = waiters.iter().map(|_| Progress::default()).collect();
    let mut ends: Vec<Option<End>> = waiters.iter().map(|_| None).collect();
    let raced = {
        // Config caps durations, but an overflowing deadline would still mean "never".
        let deadline = settings.timeout.and_then(|t| start.checked_add(t));
        let loops = waiters
            .iter_mut()
            .zip(progress.iter_mut())
            .map(|((waiter, probe), progress)| Box::pin(waiter.attempt_loop(probe, progress)))
            .collect();
        let all = until_all_or_rejected(loops, &mut ends);
        tokio::select! {
            biased;
            signal = interrupt => Some(signal),
            () = until(deadline) => None,
            () = all => None,
        }
    };
    let outcomes = outcomes(ends, progress, raced, start.elapsed());
    // One "interrupted" line for the process, one line per other outcome naming its target.
    let mut said_interrupted = false;
    for ((waiter, _), outcome) in waiters.iter_mut().zip(&outcomes) {
        if let Outcome::Interrupted { .. } = outcome {
            if std::mem::replace(&mut said_interrupted, true) {
                continue;
            }
        }
        waiter.report(outcome);
    }
    outcomes
}

/// Each target's outcome from how its loop ended (if it did) and what raced it: a signal, the
/// deadline, or another target's rejection (which abandons the targets still waiting).
fn outcomes(
    ends: Vec<Option<End>>,
    progress: Vec<Progress>,
    signal: Option<Signal>,
    elapsed: Duration,
) -> Vec<Outcome> {
    let rejected = ends.iter().any(|e| matches!(e, Some(End::Rejected(_))));
    ends.into_iter()
        .zip(progress)
        .map(|(end, progress)| {
            let attempts = progress.attempts;
            match (end, signal) {
                (Some(End::Ready(ready)), _) => Outcome::Ready {
                    ready,
                    attempts,
                    elapsed: progress.finished.unwrap_or(elapsed),
                },
                (Some(End::Rejected(error)), _) => Outcome::Rejected {
                    error,
                    attempts,
                    elapsed,
                },
                (None, Some(signal)) => Outcome::Interrupted { signal, elapsed },
                (None, None) if rejected => Outcome::Abandoned,
                (Some(End::GaveUp), _) | (None, None) => Outcome::NotReady {
                    attempts,
                    elapsed,
                    last: progress.last,
                },
            }
        })
        .collect()
}

/// Drives the attempt loops together; returns when all have ended or one was rejected, with
/// each loop's end (if any) in `ends`.
async fn until_all_or_rejected<F: Future<Output = End> + Unpin>(
    mut loops: Vec<F>,
    ends: &mut [Option<End>],
) {
    std::future::poll_fn(|cx| {
        for (f, end) in loops.iter_mut().zip(ends.iter_mut()) {
            if end.is_none() {
                if let Poll::Ready(done) = Pin::new(f).poll(cx) {
                    *end = Some(done);
                }
            }
        }
        let rejected = ends.iter().any(|e| matches!(e, Some(End::Rejected(_))));
        if rejected || ends.iter().all(Option::is_some) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

impl<S: Sink + ?Sized> Waiter<'_, '_, S> {
    async fn attempt_loop<P: Probe>(&mut self, probe: &mut P, progress: &mut Progress) -> End {
        let mut policy = Policy::new(
            self.settings.retry_on,
            self.settings.once,
            self.settings.seed,
        );
        let mut streak: Option<Streak> = None;
        loop {
            for note in probe.prepare() {
                self.note(&note);
            }
            progress.attempts += 1;
            let plan = Plan {
                per_address: self.attempt_timeout,
                tcp_connect_limit: policy.tcp_connect_limit(self.attempt_timeout),
            };
            let error = match probe.attempt(plan).await {
                Ok(ready) => {
                    let now = self.start.elapsed();
                    let run = streak.get_or_insert(Streak {
                        successes: 0,
                        since: now,
                    });
                    run.successes += 1;
                    let stable = self.settings.stable;
                    let up_for = now - run.since;
                    if run.successes >= stable.count && up_for >= stable.span {
                        progress.finished = Some(now);
                        return End::Ready(ready);
                    }
                    self.sink.borrow_mut().emit(&Event::Steady {
                        target: self.target,
                        successes: run.successes,
                        up_for,
                        stable,
                    });
                    sleep(policy.stable_gap()).await;
                    continue;
                }
                Err(error) => error,
            };
            if let Some(run) = streak.take() {
                self.sink.borrow_mut().emit(&Event::Unsteady {
                    target: self.target,
                    successes: run.successes,
                    up_for: self.start.elapsed() - run.since,
                });
            }
            let decision = policy.next(error.class(), error.answer(), self.start.elapsed());
            self.sink.borrow_mut().emit(&Event::AttemptFailed {
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
        self.sink.borrow_mut().emit(&event);
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
        self.sink.borrow_mut().emit(&Event::StillWaiting {
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
                let server = &ready.server;
                self.sink
                    .borrow_mut()
                    .emit(&Event::SocketOnly { target, server });
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
            Outcome::Abandoned => return,
        };
        self.sink.borrow_mut().emit(&event);
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
