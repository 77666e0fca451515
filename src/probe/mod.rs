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
use std::time::Duration;

pub use attempt::PgProbe;
pub use guard::{MAX_BEFORE_READY, MAX_MESSAGE, MAX_SESSION};

use crate::classify::{classify, Class, ClassSet, Failure};
use crate::credentials::Note;

/// How one attempt is to be made: its time limits, and when to stop trying further servers.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Each address gets this long, whatever phase it is in (and each host name's lookup too),
    /// as libpq's `connect_timeout` is per host: a hung first server must not starve the next.
    pub per_address: Duration,
    /// Limit on each TCP connect, so dropped SYNs don't hold an attempt for the kernel's retries.
    pub tcp_connect_limit: Duration,
    /// The policy's answer to "does this class end the wait?": after such a failure the remaining
    /// servers are not tried (libpq stops at an outright rejection too).
    pub rejects: ClassSet,
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The server that answered, e.g. `db:5432 (172.18.0.2)`.
    pub address: String,
    /// The conditions that held there, by label (`table public.users`); empty without any.
    pub checked: Vec<String>,
    /// Reached over a Unix socket by a server listening on no TCP address (see README).
    pub socket_only: bool,
}

/// One server address that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrFailure {
    /// The address tried, e.g. `db:5432 (172.18.0.2)` or a socket path.
    pub address: String,
    pub failure: Failure,
    pub class: Class,
    /// How long the server took to answer once connected, less the connect's round trip: its
    /// own time, which grows when it is busy (the policy's stretch reads it). `None` when no
    /// server answered.
    pub answer: Option<Duration>,
}

impl AddrFailure {
    /// Classifies `failure` at `address`.
    pub fn new(address: String, failure: Failure) -> Self {
        let class = classify(&failure);
        Self {
            address,
            failure,
            class,
            answer: None,
        }
    }
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
    use crate::classify::Phase;

    #[test]
    fn the_furthest_failure_is_primary_and_the_others_keep_their_order() {
        let refused = |address: &str| {
            AddrFailure::new(
                address.into(),
                Failure::Io {
                    phase: Phase::Connect,
                    kind: std::io::ErrorKind::ConnectionRefused,
                    detail: "Connection refused".into(),
                },
            )
        };
        let starting = AddrFailure::new(
            "localhost:5432 (127.0.0.1)".into(),
            Failure::Server {
                phase: Phase::Startup,
                sqlstate: "57P03".into(),
                message: "the database system is starting up".into(),
            },
        );
        let err = AttemptError {
            failures: vec![refused("a"), starting, refused("b")],
        };
        assert_eq!(err.class(), Class::NotReady);
        assert_eq!(err.primary().address, "localhost:5432 (127.0.0.1)");
        let others: Vec<&str> = err.others().map(|f| f.address.as_str()).collect();
        assert_eq!(others, ["a", "b"]);
    }
}
