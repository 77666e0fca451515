//! One readiness attempt: reach each configured server in libpq order and run `SELECT 1`.
//!
//! The [`Probe`] trait is the seam that lets the wait loop be tested with a scripted probe;
//! [`PgProbe`] is the real one. PostgreSQL client types stay inside [`pg`].

mod attempt;
mod guard;
mod pg;
mod tcp;
mod tls_stream;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

pub use attempt::PgProbe;

use crate::classify::{classify, Class, Failure};

/// Time limits for one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole attempt ends by then, whatever phase it is in.
    pub deadline: Instant,
    /// Limit on each TCP connect, so dropped SYNs don't hold an attempt for the kernel's retries.
    pub connect_timeout: Duration,
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The server that answered, e.g. `db:5432 (172.18.0.2)`.
    pub target: String,
}

/// One server address that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrFailure {
    pub target: String,
    pub failure: Failure,
    pub class: Class,
}

impl AddrFailure {
    /// Classifies `failure` at `target`.
    pub fn new(target: String, failure: Failure) -> Self {
        let class = classify(&failure);
        Self {
            target,
            failure,
            class,
        }
    }
}

/// A failed attempt: every address tried, in order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    pub failures: Vec<AddrFailure>,
}

impl AttemptError {
    /// The failure that got furthest (the first of equals): it decides the retry class.
    pub fn primary(&self) -> &AddrFailure {
        self.failures
            .iter()
            .rev()
            .max_by_key(|f| f.class.progress())
            .expect("an attempt error holds at least one failure")
    }

    /// The retry class of the attempt.
    pub fn class(&self) -> Class {
        self.primary().class
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let primary = self.primary();
        write!(
            f,
            "{}: {}",
            primary.target,
            describe(&primary.failure, primary.class)
        )?;
        // e.g. localhost resolving to ::1 and 127.0.0.1: say what became of the other address.
        let others: Vec<String> = self
            .failures
            .iter()
            .filter(|o| !std::ptr::eq(*o, primary))
            .map(|o| format!("{}: {}", o.target, o.class))
            .collect();
        if !others.is_empty() {
            write!(f, " (also tried {})", others.join("; "))?;
        }
        Ok(())
    }
}

/// A short description of one failure, for the person at the terminal.
pub fn describe(failure: &Failure, class: Class) -> String {
    match failure {
        Failure::Io {
            phase: crate::classify::Phase::Resolve,
            detail,
            ..
        } => format!("{class} ({detail})"),
        Failure::Io {
            kind: std::io::ErrorKind::ConnectionRefused,
            ..
        } => class.to_string(),
        Failure::Io { phase, detail, .. } if class == Class::Dropped => {
            format!("server closed or reset the connection during {phase} ({detail})")
        }
        Failure::Io { phase, detail, .. } => format!("{class} during {phase} ({detail})"),
        Failure::TimedOut { phase } => format!("timed out during {phase}"),
        Failure::Closed { phase } => format!("server closed the connection during {phase}"),
        Failure::Server {
            sqlstate, message, ..
        } => format!("{sqlstate} {message}"),
        Failure::Protocol { phase } => format!("{class} (unexpected reply during {phase})"),
        Failure::ClientAuth { detail } => format!("{class}: {detail}"),
        Failure::Tls { detail } => format!("{class}: {detail}"),
        Failure::TlsRefused => {
            format!("{class}: the server does not support TLS, which the sslmode requires")
        }
        Failure::WrongKind { want, got } => format!("is a {got} server (waiting for {want})"),
    }
}

/// Makes one readiness attempt within `limits`.
pub trait Probe {
    fn attempt(&mut self, limits: Limits) -> impl Future<Output = Result<Ready, AttemptError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Phase;

    fn failure(target: &str, f: Failure) -> AddrFailure {
        AddrFailure::new(target.into(), f)
    }

    #[test]
    fn the_furthest_failure_is_primary_and_the_others_are_named() {
        let err = AttemptError {
            failures: vec![
                failure(
                    "localhost:5432 (::1)",
                    Failure::Io {
                        phase: Phase::Connect,
                        kind: std::io::ErrorKind::ConnectionRefused,
                        detail: "Connection refused".into(),
                    },
                ),
                failure(
                    "localhost:5432 (127.0.0.1)",
                    Failure::Server {
                        phase: Phase::Startup,
                        sqlstate: "57P03".into(),
                        message: "the database system is starting up".into(),
                    },
                ),
            ],
        };
        assert_eq!(err.class(), Class::NotReady);
        assert_eq!(
            err.to_string(),
            "localhost:5432 (127.0.0.1): 57P03 the database system is starting up \
             (also tried localhost:5432 (::1): connection refused)"
        );
    }
}
