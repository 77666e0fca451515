//! Herd simulator: N gates against one server model, driven by pgwait's real retry policy.
//!
//! A 2-core machine cannot host 10,000 pods, so this replays what 10,000 gates would do: each
//! simulated gate owns a real `policy::Policy` (src/policy.rs is compiled into this program, not
//! copied) and asks it, after every failed attempt, how long to wait. The server is a model:
//!
//! - `cores` workers serve attempts first come, first served; an attempt rejected while starting
//!   up (57P03) or full (53300) costs `--reject-ms` of one worker, a login `--login-ms`; a queued
//!   attempt waits (that is how a busy server answers slowly, and what the policy's stretch reads);
//! - the network adds `--rtt-ms` to every attempt;
//! - a refused port costs the server nothing and answers at once (a SYN and a RST);
//! - scenarios: `not-ready` (57P03 until `--phase`, then ready), `refused` (nothing listens until
//!   `--phase`, then a short 57P03 start-up of `--startup-ms`, then ready), `overloaded` (53300
//!   until `--phase`, then ready), `control` (ready from the start: the login queue alone) and
//!   `recovery` (refused until `--phase`, then a crash recovery: the start-up process is one
//!   CPU-bound job of `--recovery-s`, sharing the `cores` with every rejection it answers and
//!   the gates' own `--gate-ms` per attempt, each runnable job an equal share of the cores — the
//!   kernel's fair scheduling — so a herd's attempts lengthen the replay; `--pinned 1` puts the
//!   gates on other cores, as bench/run.py's one-core variant does);
//! - gates are released uniformly over `--release` seconds (a deploy is never one instant;
//!   default 4 ms a gate, the pace at which bench/run.py can start processes).
//!
//! It prints attempts per second at the server (SYNs for `refused`) and the app-start delay
//! distribution (app start − server ready), next to the same herd against a ready server.
//!
//!     cargo run --release --example herd -- --gates 1000 --scenario not-ready --phase 5
//!
//! Not modelled: the listen backlog, the gates' own CPU (on the bench machine they share the
//! server's two cores), connection slots after the server is ready.

#[allow(dead_code)]
#[path = "../src/classify.rs"]
mod classify;
#[allow(dead_code)]
#[path = "../src/policy.rs"]
mod policy;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::process::ExitCode;
use std::time::Duration;

use classify::Class;
use policy::{Decision, Policy, RetryOn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    NotReady,
    Refused,
    Overloaded,
    Control,
    Recovery,
}

/// The model's parameters (see the module comment).
#[derive(Debug, Clone)]
struct Model {
    gates: usize,
    scenario: Scenario,
    phase: f64,
    release: f64,
    cores: usize,
    reject: f64,
    login: f64,
    rtt: f64,
    startup: f64,
    seed: u64,
    /// `recovery`: the start-up process's CPU seconds (its time alone on a core).
    recovery: f64,
    /// `recovery`: one attempt's CPU in the gate itself (process wake-up, connect, read).
    gate: f64,
    /// `recovery`: the gates run on other cores than the server's.
    pinned: bool,
}

impl Default for Model {
    /// Calibrated on the bench machine (2 cores, PostgreSQL 15, loopback): see README.
    fn default() -> Self {
        Self {
            gates: 200,
            scenario: Scenario::NotReady,
            phase: 5.0,
            release: -1.0,
            cores: 2,
            reject: 0.0015,
            login: 0.009,
            rtt: 0.0002,
            startup: 0.02,
            seed: 1,
            recovery: 2.5,
            gate: 0.0003,
            pinned: false,
        }
    }
}

/// What the server does with an attempt that reaches it at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Listening(Class),
    Closed,
    Ready,
}

impl Model {
    /// When the server starts accepting logins.
    fn ready_at(&self) -> f64 {
        match self.scenario {
            Scenario::Control => 0.0,
            Scenario::Refused => self.phase + self.startup,
            Scenario::NotReady | Scenario::Overloaded | Scenario::Recovery => self.phase,
        }
    }

    fn state(&self, t: f64) -> State {
        if t >= self.ready_at() {
            return State::Ready;
        }
        match self.scenario {
            Scenario::Refused if t < self.phase => State::Closed,
            Scenario::Overloaded => State::Listening(Class::Overloaded),
            _ => State::Listening(Class::NotReady),
        }
    }
}

/// What one run produced.
struct Outcome {
    /// Attempts per whole second at the server (SYNs while closed).
    per_second: Vec<u64>,
    /// App start − server ready, per gate, sorted.
    delays: Vec<f64>,
    attempts: u64,
}

/// First-come-first-served workers: when each is next free.
struct Server {
    free_at: Vec<f64>,
}

impl Server {
    /// Serves an attempt that arrives at `arrival`; returns when it starts and ends.
    fn serve(&mut self, arrival: f64, cost: impl Fn(f64) -> f64) -> (f64, f64) {
        let (i, free) = self
            .free_at
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, f)| (i, *f))
            .expect("at least one core");
        let start = arrival.max(free);
        let end = start + cost(start);
        self.free_at[i] = end;
        (start, end)
    }
}

/// A gate's next attempt, ordered by time (then by gate for determinism).
struct Due(f64, usize);

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The gates, released uniformly over `m.release`: their first attempts, each its own seeded
/// policy, and when each started.
fn release(m: &Model) -> (BinaryHeap<Reverse<Due>>, Vec<Policy>, Vec<f64>) {
    let mut queue = BinaryHeap::new();
    let mut policies = Vec::with_capacity(m.gates);
    let mut started = Vec::with_capacity(m.gates);
    for g in 0..m.gates {
        let release = m.release * (g as f64 + 0.5) / m.gates as f64;
        queue.push(Reverse(Due(release, g)));
        policies.push(Policy::new(
            RetryOn::default(),
            false,
            Some(m.seed * 1_000_003 + g as u64),
        ));
        started.push(release);
    }
    (queue, policies, started)
}

fn simulate(m: &Model) -> Outcome {
    let (mut queue, mut policies, started) = release(m);
    let mut server = Server {
        free_at: vec![0.0; m.cores],
    };
    let (mut per_second, mut delays, mut attempts) = (Vec::new(), Vec::new(), 0u64);
    let ready = m.ready_at();
    while let Some(Reverse(Due(at, g))) = queue.pop() {
        attempts += 1;
        let second = at as usize;
        if per_second.len() <= second {
            per_second.resize(second + 1, 0);
        }
        per_second[second] += 1;
        let arrival = at + m.rtt / 2.0;
        // The server's answer time: queueing and service (the round trip is the connect's).
        let (class, end, answer) = match m.state(arrival) {
            State::Closed => (Class::Refused, arrival, None),
            State::Listening(_) | State::Ready => {
                let cost = |t: f64| match m.state(t) {
                    State::Ready => m.login,
                    _ => m.reject,
                };
                let (start, end) = server.serve(arrival, cost);
                match m.state(start) {
                    State::Ready => {
                        delays.push(end + m.rtt / 2.0 - ready);
                        continue;
                    }
                    State::Listening(class) => {
                        (class, end, Some(Duration::from_secs_f64(end - arrival)))
                    }
                    State::Closed => unreachable!("the server never closes again"),
                }
            }
        };
        let now = end + m.rtt / 2.0;
        let since_start = Duration::from_secs_f64(now - started[g]);
        match policies[g].next(class, answer, since_start) {
            Decision::Retry { after, .. } => queue.push(Reverse(Due(now + after.as_secs_f64(), g))),
            other => unreachable!("transient classes are retried: {other:?}"),
        }
    }
    delays.sort_by(f64::total_cmp);
    Outcome {
        per_second,
        delays,
        attempts,
    }
}

/// Crash recovery: the server's start-up process is one CPU-bound job of `--recovery-s` CPU
/// seconds, on a processor shared with the rejections it answers meanwhile (and the gates' own
/// attempts, unless `--pinned` puts them on other cores). Every runnable job gets an equal share
/// of the `cores`, at most one core each (processor sharing, as the kernel's scheduler roughly
/// does): that is how a herd's 57P03s slow a recovery down. What each job in the pool is:
#[derive(Debug, Clone, Copy, PartialEq)]
enum JobKind {
    /// The start-up process replaying WAL.
    Startup,
    /// A rejection (57P03) for gate `g`, which arrived at `at`.
    Reject { g: usize, at: f64 },
    /// A login for gate `g` once ready.
    Login { g: usize },
    /// A gate's own work for one attempt (off the server's cores when pinned).
    Gate,
}

/// What a recovery run produced: when the server became ready, and the herd's outcome.
struct Recovered {
    ready: f64,
    outcome: Outcome,
}

/// The server's cores under processor sharing, kept in virtual time: every job in the pool has
/// received the same service `served` so far (an equal share of the cores, at most one core), so
/// the next to finish is the one whose service at arrival plus its cost is least — a heap, not a
/// scan, which keeps 10,000 gates' worth of jobs cheap.
struct Pool {
    served: f64,
    /// (service at which the job is done, job id), least first.
    heap: BinaryHeap<Reverse<Due>>,
    kinds: Vec<JobKind>,
    cores: usize,
}

impl Pool {
    fn rate(&self) -> f64 {
        (self.cores as f64 / self.heap.len().max(1) as f64).min(1.0)
    }

    fn add(&mut self, cost: f64, kind: JobKind) {
        let id = self.kinds.len();
        self.kinds.push(kind);
        self.heap.push(Reverse(Due(self.served + cost, id)));
    }

    /// When the next job finishes, if the pool stays as it is from `now`.
    fn next_done(&self, now: f64) -> Option<f64> {
        let Reverse(Due(done, _)) = self.heap.peek()?;
        Some(now + (done - self.served).max(0.0) / self.rate())
    }

    fn advance(&mut self, dt: f64) {
        if !self.heap.is_empty() {
            self.served += dt * self.rate();
        }
    }

    /// A job that is done, if any.
    fn finished(&mut self) -> Option<JobKind> {
        let Reverse(Due(done, _)) = self.heap.peek()?;
        if *done > self.served + 1e-12 {
            return None;
        }
        let Reverse(Due(_, id)) = self.heap.pop()?;
        Some(self.kinds[id])
    }
}

fn simulate_recovery(m: &Model) -> Recovered {
    let (mut queue, mut policies, started) = release(m);
    // The server starts at `phase`: its port refuses before that.
    let opens = m.phase;
    let mut pool = Pool {
        served: 0.0,
        heap: BinaryHeap::new(),
        kinds: Vec::new(),
        cores: m.cores,
    };
    // Jobs in the pool that are the server's (not the gates' own work).
    let mut busy = 0usize;
    let mut startup_added = false;
    let mut ready: Option<f64> = None;
    let (mut per_second, mut delays, mut attempts) = (Vec::new(), Vec::new(), 0u64);
    let mut now = 0.0f64;
    loop {
        if !startup_added && now >= opens {
            pool.add(m.recovery, JobKind::Startup);
            busy += 1;
            startup_added = true;
        }
        let next_due = queue.peek().map(|Reverse(Due(t, _))| *t);
        let next_open = (!startup_added).then_some(opens);
        let t = [pool.next_done(now), next_due, next_open]
            .into_iter()
            .flatten()
            .fold(f64::INFINITY, f64::min);
        if !t.is_finite() {
            break;
        }
        pool.advance(t - now);
        now = t;
        // Completions (several may end at once).
        while let Some(kind) = pool.finished() {
            if kind != JobKind::Gate {
                busy -= 1;
            }
            match kind {
                JobKind::Startup => ready = Some(now),
                JobKind::Gate => {}
                JobKind::Login { .. } => delays.push(now + m.rtt / 2.0 - ready.unwrap_or(now)),
                JobKind::Reject { g, at } => {
                    let end = now + m.rtt / 2.0;
                    let answer = Duration::from_secs_f64(now - at);
                    let since = Duration::from_secs_f64(end - started[g]);
                    match policies[g].next(Class::Starting, Some(answer), since) {
                        Decision::Retry { after, .. } => {
                            queue.push(Reverse(Due(end + after.as_secs_f64(), g)))
                        }
                        other => unreachable!("57P03 is retried: {other:?}"),
                    }
                }
            }
        }
        // Arrivals due now.
        while queue.peek().is_some_and(|Reverse(Due(t, _))| *t <= now) {
            let Reverse(Due(at, g)) = queue.pop().expect("peeked");
            attempts += 1;
            let second = at as usize;
            if per_second.len() <= second {
                per_second.resize(second + 1, 0);
            }
            per_second[second] += 1;
            let arrival = at + m.rtt / 2.0;
            if arrival < opens {
                let end = arrival + m.rtt / 2.0;
                let since = Duration::from_secs_f64(end - started[g]);
                match policies[g].next(Class::Refused, None, since) {
                    Decision::Retry { after, .. } => {
                        queue.push(Reverse(Due(end + after.as_secs_f64(), g)))
                    }
                    other => unreachable!("refused is retried: {other:?}"),
                }
                continue;
            }
            // A refused connect costs microseconds; an answered attempt costs the gate a
            // wake-up, a connect, a startup packet and a read — on the server's cores unless
            // the gates are pinned elsewhere.
            if m.gate > 0.0 && !m.pinned {
                pool.add(m.gate, JobKind::Gate);
            }
            let (cost, kind) = match ready {
                Some(_) => (m.login, JobKind::Login { g }),
                None => (m.reject, JobKind::Reject { g, at: arrival }),
            };
            pool.add(cost, kind);
            busy += 1;
        }
        if ready.is_some() && busy == 0 && queue.is_empty() {
            break;
        }
    }
    delays.sort_by(f64::total_cmp);
    Recovered {
        ready: ready.unwrap_or(f64::NAN),
        outcome: Outcome {
            per_second,
            delays,
            attempts,
        },
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn report(m: &Model, run: &Outcome, control: &Outcome) {
    let unit = if m.scenario == Scenario::Refused {
        "SYNs"
    } else {
        "attempts"
    };
    println!(
        "{} gates, {:?} for {:.1} s (released over {:.1} s; {} cores, reject {:.1} ms, login {:.1} ms, rtt {:.2} ms)",
        m.gates, m.scenario, m.phase, m.release, m.cores, m.reject * 1e3, m.login * 1e3, m.rtt * 1e3
    );
    let waiting = &run.per_second[..(m.phase.ceil() as usize).min(run.per_second.len())];
    let line: Vec<String> = waiting.iter().map(u64::to_string).collect();
    println!(
        "  {unit}/s, second by second while not ready: {}",
        line.join(" ")
    );
    let total: u64 = waiting.iter().sum();
    let after2: Vec<u64> = waiting.iter().skip(2).copied().collect();
    println!(
        "  mean {:.0}/s; busiest second {}; busiest after the first 2 s {}; total attempts {}",
        total as f64 / m.phase,
        waiting.iter().max().unwrap_or(&0),
        after2.iter().max().map_or("-".into(), u64::to_string),
        run.attempts
    );
    for (name, o) in [
        ("app start − ready", run),
        ("control (ready server)", control),
    ] {
        let d = &o.delays;
        println!(
            "  {name}: median {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms, early {}",
            quantile(d, 0.5) * 1e3,
            quantile(d, 0.9) * 1e3,
            quantile(d, 0.99) * 1e3,
            d[d.len() - 1] * 1e3,
            d.iter().filter(|x| **x < 0.0).count()
        );
    }
}

fn report_recovery(m: &Model, run: &Recovered) {
    let took = run.ready - m.phase;
    println!(
        "{} gates, crash recovery of {:.2} CPU-s from {:.1} s ({} cores{}, reject {:.1} ms, login {:.1} ms, gate {:.2} ms)",
        m.gates, m.recovery, m.phase, m.cores, if m.pinned { ", gates on other cores" } else { "" },
        m.reject * 1e3, m.login * 1e3, m.gate * 1e3
    );
    let from = m.phase as usize;
    let until = (run.ready.ceil() as usize).min(run.outcome.per_second.len());
    let line: Vec<String> = run.outcome.per_second[from.min(until)..until]
        .iter()
        .map(u64::to_string)
        .collect();
    println!("  attempts/s while recovering: {}", line.join(" "));
    println!(
        "  server start → ready: {:.2} s ({:.2}× alone)",
        took,
        took / m.recovery
    );
    let d = &run.outcome.delays;
    if !d.is_empty() {
        println!(
            "  app start − ready: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
            quantile(d, 0.5) * 1e3,
            quantile(d, 0.9) * 1e3,
            d[d.len() - 1] * 1e3
        );
    }
}

fn parse() -> Result<Model, String> {
    let mut m = Model::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--gates" => m.gates = number()? as usize,
            "--phase" => m.phase = number()?,
            "--release" => m.release = number()?,
            "--cores" => m.cores = number()? as usize,
            "--reject-ms" => m.reject = number()? / 1e3,
            "--login-ms" => m.login = number()? / 1e3,
            "--rtt-ms" => m.rtt = number()? / 1e3,
            "--startup-ms" => m.startup = number()? / 1e3,
            "--seed" => m.seed = number()? as u64,
            "--recovery-s" => m.recovery = number()?,
            "--gate-ms" => m.gate = number()? / 1e3,
            "--pinned" => m.pinned = number()? != 0.0,
            "--scenario" => {
                m.scenario = match value.as_str() {
                    "not-ready" => Scenario::NotReady,
                    "refused" => Scenario::Refused,
                    "overloaded" => Scenario::Overloaded,
                    "control" => Scenario::Control,
                    "recovery" => Scenario::Recovery,
                    _ => return Err(format!("unknown scenario {value}")),
                }
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if m.release < 0.0 {
        m.release = 0.004 * m.gates as f64;
    }
    if m.gates == 0 || m.cores == 0 {
        return Err("--gates and --cores must be at least 1".into());
    }
    Ok(m)
}

fn main() -> ExitCode {
    let model = match parse() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("herd: {e}");
            return ExitCode::from(2);
        }
    };
    if model.scenario == Scenario::Recovery {
        report_recovery(&model, &simulate_recovery(&model));
        return ExitCode::SUCCESS;
    }
    let control = simulate(&Model {
        scenario: Scenario::Control,
        ..model.clone()
    });
    let run = simulate(&model);
    report(&model, &run, &control);
    ExitCode::SUCCESS
}

/// The simulator is deterministic (seeded), so what the policy does to a herd can be checked
/// like any table: these fail if the stretch, the time-proportional fallback or the 53300
/// schedule stop doing their part.
#[cfg(test)]
mod tests {
    use super::*;

    fn run(gates: usize, scenario: Scenario, phase: f64) -> (Model, Outcome) {
        let m = Model {
            gates,
            scenario,
            phase,
            release: 1.0,
            ..Model::default()
        };
        let out = simulate(&m);
        (m, out)
    }

    fn mean(seconds: &[u64]) -> f64 {
        seconds.iter().sum::<u64>() as f64 / seconds.len() as f64
    }

    #[test]
    fn a_herd_that_queues_the_server_backs_off_below_its_capacity() {
        let (m, out) = run(1_000, Scenario::NotReady, 10.0);
        let capacity = m.cores as f64 / m.reject;
        // Without the stretch, 1,000 waiters keep the server pegged (1,371/s over 10 s).
        let late = mean(&out.per_second[3..10]);
        assert!(
            late < 0.92 * capacity,
            "{late:.0}/s against {capacity:.0}/s"
        );
        assert_eq!(out.delays.len(), 1_000);
        assert!(out.delays[0] >= 0.0, "an app started before ready");
    }

    #[test]
    fn a_herd_that_buries_the_server_leaves_it_alone_once_the_queue_drains() {
        let (m, out) = run(10_000, Scenario::NotReady, 12.0);
        let capacity = m.cores as f64 / m.reject;
        // The first 10,000 attempts take the server 7.5 s; after that, without the stretch, it
        // would stay at its capacity for the rest of the outage.
        let late = mean(&out.per_second[10..12]);
        // The floor eases as the queue drains (it follows the server), so the herd comes back
        // at a fraction of what the server can turn away, not at its full schedule.
        assert!(late < 0.2 * capacity, "{late:.0}/s against {capacity:.0}/s");
    }

    #[test]
    fn one_waiter_sees_a_promotion_within_a_poll() {
        let (_, out) = run(1, Scenario::NotReady, 1.7);
        assert!(out.delays[0] < 0.4, "{:?}", out.delays);
    }

    #[test]
    fn a_refused_herd_slows_to_a_few_syns_per_waiter() {
        let (_, out) = run(200, Scenario::Refused, 8.0);
        let late = mean(&out.per_second[4..8]);
        assert!(late < 2_000.0, "{late:.0} SYNs/s");
    }

    /// The crash recovery of bench/run.py `crash` (a 2.3 s replay; rejections calibrated at
    /// 1 ms of a core, which reproduces the measured slowdowns), 200 gates released over 0.8 s
    /// while the server is down.
    fn recovery(gates: usize, recovery: f64, cores: usize, pinned: bool) -> (f64, Outcome) {
        let m = Model {
            gates,
            scenario: Scenario::Recovery,
            phase: 1.0,
            release: 0.8,
            recovery,
            reject: 0.001,
            cores,
            pinned,
            ..Model::default()
        };
        let run = simulate_recovery(&m);
        ((run.ready - m.phase) / m.recovery, run.outcome)
    }

    #[test]
    fn a_herd_barely_slows_a_crash_recovery_and_starts_soon_after_it() {
        let (slower, out) = recovery(200, 2.3, 2, false);
        assert!(slower < 1.25, "recovery {slower:.2}× as long");
        let d = &out.delays;
        assert_eq!(d.len(), 200);
        assert!(d[0] >= 0.0, "an app started before ready");
        assert!(quantile(d, 0.5) < 1.5, "median {:.2} s", quantile(d, 0.5));
        assert!(d[d.len() - 1] < 4.0, "max {:.2} s", d[d.len() - 1]);
    }

    #[test]
    fn a_server_alone_on_one_core_is_slowed_less_than_half_again() {
        let (slower, _) = recovery(200, 2.3, 1, true);
        assert!(slower < 1.4, "recovery {slower:.2}× as long");
    }

    #[test]
    fn one_waiter_sees_a_clean_start_end_within_a_few_polls() {
        let (_, out) = recovery(1, 0.03, 2, false);
        assert!(out.delays[0] < 0.06, "{:?}", out.delays);
    }

    #[test]
    fn a_full_server_is_retried_about_once_a_second() {
        let (_, out) = run(200, Scenario::Overloaded, 10.0);
        let rate = mean(&out.per_second[..10]);
        assert!(rate < 200.0, "{rate:.0} rejections/s");
        assert!(out.delays.last().copied().unwrap_or(f64::MAX) < 3.0);
    }
}
