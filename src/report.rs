//! Everything pgwait prints, on stderr: one line per state change (not per attempt), a periodic
//! "still waiting", the outcome, and on failure one line naming the cause with a hint.
//!
//! Lines are built only from classified failures and resolved settings; a password never
//! reaches this module.

use std::io::Write;
use std::time::Duration;

use crate::classify::Class;
use crate::conninfo::{ConnParams, SessionAttrs};
use crate::policy::Decision;
use crate::probe::{AttemptError, Ready};

/// How much pgwait says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Only the final failure line.
    Quiet,
    /// State changes, periodic status, the outcome.
    Normal,
    /// Also every attempt and every delay.
    Verbose,
}

/// Writes pgwait's progress lines.
pub struct Reporter<W: Write> {
    out: W,
    verbosity: Verbosity,
    /// What is being waited for, e.g. `db:5432/app`, for lines that have no attempt to name.
    target: String,
    last_class: Option<Class>,
    last_status: Duration,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, verbosity: Verbosity, target: String) -> Self {
        Self {
            out,
            verbosity,
            target,
            last_class: None,
            last_status: Duration::ZERO,
        }
    }

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        // stderr may be closed in some containers; there is nowhere else to report that.
        let _ = writeln!(self.out, "pgwait: {text}");
    }

    /// Says what is about to be waited for (-v only).
    pub fn start(&mut self, user: &str, timeout: Option<Duration>) {
        if self.verbosity == Verbosity::Verbose {
            let limit = timeout.map_or("no timeout".to_string(), |t| {
                format!("timeout {}", human(t))
            });
            let target = self.target.clone();
            self.line(format_args!(
                "waiting for {target} as user {user} ({limit})"
            ));
        }
    }

    /// After each failed attempt: a line when the class changes (every attempt with -v).
    pub fn failed(
        &mut self,
        attempt: u32,
        elapsed: Duration,
        error: &AttemptError,
        decision: Decision,
    ) {
        let class = error.class();
        if self.verbosity == Verbosity::Verbose {
            let next = match decision {
                Decision::RetryAfter(d) => format!("retrying in {}", human(d)),
                Decision::GiveUp => "not retrying".to_string(),
            };
            self.line(format_args!(
                "attempt {attempt} at {}: {error}; {next}",
                human(elapsed)
            ));
        } else if self.verbosity == Verbosity::Normal
            && self.last_class != Some(class)
            && !class.is_permanent()
        {
            self.line(format_args!("waiting for {error}"));
        }
        self.last_class = Some(class);
    }

    /// Prints "still waiting" when `interval` has passed since the last one.
    pub fn tick(
        &mut self,
        interval: Option<Duration>,
        elapsed: Duration,
        attempts: u32,
        last: &AttemptError,
    ) {
        let Some(interval) = interval else { return };
        if self.verbosity == Verbosity::Quiet || elapsed < self.last_status + interval {
            return;
        }
        self.last_status = elapsed;
        self.line(format_args!(
            "still waiting ({}, {attempts} attempts, last: {})",
            human(elapsed),
            summary(last)
        ));
    }

    /// The server is ready.
    pub fn ready(&mut self, elapsed: Duration, attempts: u32, ready: &Ready) {
        if self.verbosity != Verbosity::Quiet {
            let plural = if attempts == 1 { "" } else { "s" };
            self.line(format_args!(
                "ready after {} ({attempts} attempt{plural}): {}",
                human(elapsed),
                ready.target
            ));
        }
    }

    /// A permanent rejection: one line with the cause and a hint, always printed.
    pub fn rejected(&mut self, error: &AttemptError) {
        self.line(format_args!("{error}; hint: {}", hint(error.class())));
    }

    /// The deadline passed (or the single `--once` attempt failed): the last cause and a hint.
    pub fn not_ready(&mut self, elapsed: Duration, attempts: u32, last: Option<&AttemptError>) {
        let plural = if attempts == 1 { "" } else { "s" };
        match last {
            Some(error) => {
                self.line(format_args!(
                    "not ready after {} ({attempts} attempt{plural}): {error}; hint: {}",
                    human(elapsed),
                    hint(error.class())
                ));
            }
            None => {
                let target = self.target.clone();
                self.line(format_args!(
                    "{target} not ready after {}: the first attempt did not finish; hint: {}",
                    human(elapsed),
                    hint(Class::Timeout)
                ));
            }
        }
    }

    /// Interrupted by a signal while waiting.
    pub fn interrupted(&mut self, signal: &str, elapsed: Duration) {
        if self.verbosity != Verbosity::Quiet {
            self.line(format_args!(
                "interrupted by {signal} after {}",
                human(elapsed)
            ));
        }
    }
}

/// The short form of an attempt's failure for the status line: SQLSTATE or class.
fn summary(error: &AttemptError) -> String {
    let primary = error.primary();
    match &primary.failure {
        crate::classify::Failure::Server {
            sqlstate, message, ..
        } => format!("{sqlstate} {message}"),
        _ => primary.class.to_string(),
    }
}

/// What to check, per class (in the spirit of the seed article on refused vs timeout).
pub fn hint(class: Class) -> &'static str {
    match class {
        Class::Refused => "nothing is listening there: is the server running, and listening on that address and port (listen_addresses, port)?",
        Class::Unresolvable => "the host name does not resolve: check its spelling, or that the database service or container exists",
        Class::Unreachable => "no route to the server: check the address and the network between here and there",
        Class::Timeout => "packets are being dropped: check firewalls and security groups between here and the server",
        Class::Dropped => "the server closed the connection during startup: check the server log",
        Class::NotReady => "the server is still starting, recovering or shutting down: a longer --timeout may help",
        Class::Overloaded => "the server has no free connection slots (max_connections) or resources",
        Class::WrongKind => "the server works but is not of the kind target_session_attrs asks for: waiting for a promotion or failover",
        Class::Tls => "check sslmode, sslrootcert and the server's certificate (for verify-full its names must include the host), or whether the server has ssl = on",
        Class::Auth => "check the user name and password (-U/PGUSER, PGPASSWORD) and pg_hba.conf; --retry-on auth waits for the role to be created",
        Class::NoDatabase => "create the database or fix -d/PGDATABASE; --retry-on nodb waits for it to be created",
        Class::NotPostgres => "the peer does not speak PostgreSQL's protocol: check the host and port",
        Class::Rejected => "the server rejected the connection: see the SQLSTATE and the server log",
    }
}

/// `host:port,.../dbname (kind)`: what pgwait waits for, for lines that name no address.
pub fn target(conn: &ConnParams) -> String {
    let endpoints: Vec<String> = conn.endpoints.iter().map(ToString::to_string).collect();
    let target = format!("{}/{}", endpoints.join(","), conn.dbname);
    match conn.target {
        SessionAttrs::Any => target,
        attrs => format!("{target} ({})", attrs.name()),
    }
}

/// `1.32s` under ten seconds, `12s` above.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2}s")
    } else {
        format!("{secs:.0}s")
    }
}
