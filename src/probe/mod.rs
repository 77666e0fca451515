//! One readiness attempt: reach each configured server in libpq order and run `SELECT 1`.
//! The probe reports what happened as data ([`AttemptError`]); report.rs words it.
//!
//! The [`Probe`] trait is the seam that lets the wait loop be tested with a scripted probe;
//! [`PgProbe`] is the real one. PostgreSQL client types stay inside [`pg`].

mod attempt;
mod guard;
mod pg;
mod tcp;
mod tls_stream;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{timeout_at, Instant};

pub use attempt::PgProbe;
pub use guard::{MAX_BEFORE_READY, MAX_MESSAGE, MAX_SESSION};
pub use pg::ssl_request;

use crate::classify::{classify, Class, Failure, Phase};
use crate::credentials::Note;

/// How one attempt is to be made: its time limits, and when to stop trying further servers.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Each address gets this long, whatever phase it is in (and each host name's lookup too),
    /// as libpq's `connect_timeout` is per host: a hung first server must not starve the next.
    pub per_address: Duration,
    /// Limit on each TCP connect, so dropped SYNs don't hold an attempt for the kernel's retries.
    pub tcp_connect_limit: Duration,
}

/// Where one connection goes: typed, so a TCP route always has its resolved address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Tcp(SocketAddr),
    /// The socket file, `dir/.s.PGSQL.port`.
    Unix(PathBuf),
}

/// One server as an attempt met it: the host and port as configured, and where the connection
/// went (`None` when the host name did not resolve). The reporter words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The host name or IP address as configured, or the socket directory.
    pub host: String,
    pub port: u16,
    pub route: Option<Route>,
}

/// What a server says about itself (`--diagnose` asks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFacts {
    /// `version()`, as the server words it (server text: escaped when shown).
    pub version: String,
    pub in_recovery: bool,
    /// `listen_addresses`; empty: the Unix socket only.
    pub listen_addresses: String,
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The server that answered.
    pub server: Server,
    /// Reached over a Unix socket by a server listening on no TCP address (see README).
    pub socket_only: bool,
    /// `--max-lag`: how far behind the server was (zero for a primary).
    pub lag: Option<crate::condition::Lag>,
    /// `--diagnose`: the server's own facts.
    pub facts: Option<ServerFacts>,
}

/// One server address that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrFailure {
    /// The address tried.
    pub server: Server,
    pub failure: Failure,
    pub class: Class,
    /// How long the server took to answer once connected, less the connect's round trip: its
    /// own time, which grows when it is busy (the policy's stretch reads it). `None` when no
    /// server answered.
    pub answer: Option<Duration>,
}

impl AddrFailure {
    /// Classifies `failure` at `server`, which answered in `answer` if it answered at all.
    pub fn new(server: Server, failure: Failure, answer: Option<Duration>) -> Self {
        let class = classify(&failure);
        Self {
            server,
            failure,
            class,
            answer,
        }
    }
}

/// Runs `step` until `deadline`; past it, the step failed by timing out in `phase`. The one
/// place an attempt's steps meet their per-address deadline.
pub async fn within<T>(
    deadline: Instant,
    phase: Phase,
    step: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    timeout_at(deadline, step)
        .await
        .unwrap_or(Err(Failure::TimedOut { phase }))
}

/// A failed attempt: every address tried, in order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    pub failures: Vec<AddrFailure>,
}

impl AttemptError {
    /// The failure that got furthest (the first of equals): it decides the attempt's class.
    pub fn primary(&self) -> &AddrFailure {
        self.failures
            .iter()
            .rev()
            .max_by_key(|f| f.class.progress())
            .expect("an attempt error holds at least one failure")
    }

    /// How long the server that decided the class took to answer, if one did.
    pub fn answer(&self) -> Option<Duration> {
        self.primary().answer
    }

    /// The other addresses tried, in order.
    pub fn others(&self) -> impl Iterator<Item = &AddrFailure> {
        let primary = self.primary();
        self.failures
            .iter()
            .filter(move |f| !std::ptr::eq(*f, primary))
    }

    /// The class of the attempt.
    pub fn class(&self) -> Class {
        self.primary().class
    }
}

/// Makes one readiness attempt within `limits`.
pub trait Probe {
    fn attempt(&mut self, plan: Plan) -> impl Future<Output = Result<Ready, AttemptError>>;

    /// Called before each attempt: picks up credentials that changed, and says so.
    fn prepare(&mut self) -> Vec<Note> {
        Vec::new()
    }
}

/// A borrowed probe is a probe (the single-target wait lends its own).
impl<P: Probe> Probe for &mut P {
    fn attempt(&mut self, plan: Plan) -> impl Future<Output = Result<Ready, AttemptError>> {
        (**self).attempt(plan)
    }

    fn prepare(&mut self) -> Vec<Note> {
        (**self).prepare()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(host: &str, ip: [u8; 4]) -> Server {
        Server {
            host: host.into(),
            port: 5432,
            route: Some(Route::Tcp(SocketAddr::from((ip, 5432)))),
        }
    }

    #[test]
    fn the_furthest_failure_is_primary_and_the_others_keep_their_order() {
        let refused = |host: &str| {
            let failure = Failure::Io {
                phase: Phase::Connect,
                kind: std::io::ErrorKind::ConnectionRefused,
                detail: "Connection refused".into(),
            };
            AddrFailure::new(server(host, [10, 0, 0, 1]), failure, None)
        };
        let starting = AddrFailure::new(
            server("localhost", [127, 0, 0, 1]),
            Failure::Server {
                phase: Phase::Startup,
                sqlstate: "57P03".into(),
                message: "the database system is starting up".into(),
            },
            Some(Duration::from_millis(1)),
        );
        let err = AttemptError {
            failures: vec![refused("a"), starting, refused("b")],
        };
        assert_eq!(err.class(), Class::Starting);
        assert_eq!(err.primary().server.host, "localhost");
        assert_eq!(err.answer(), Some(Duration::from_millis(1)));
        let others: Vec<&str> = err.others().map(|f| f.server.host.as_str()).collect();
        assert_eq!(others, ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_past_its_deadline_times_out_in_its_phase() {
        let deadline = Instant::now() + Duration::from_millis(100);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        };
        assert_eq!(
            within(deadline, Phase::Startup, slow).await,
            Err(Failure::TimedOut {
                phase: Phase::Startup
            })
        );
        let fast = async { Ok::<_, Failure>(7) };
        assert_eq!(within(deadline, Phase::Query, fast).await, Ok(7));
    }
}
