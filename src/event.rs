//! What pgwait has to say, as typed events. The wait loop, main and the credential loaders emit
//! these into a [`Sink`]; [`crate::report`] alone turns them into bytes (text or JSON) on stderr.
//!
//! Vocabulary only: events carry typed values (a [`Target`], a [`Server`], a class), never
//! words, and this module imports what they carry — never `config`, `wait` or `report`.

use std::io;
use std::time::Duration;

use crate::cli::UsageError;
use crate::condition::Condition;
use crate::config_error::ConfigError;
use crate::conninfo::{Endpoint, SessionAttrs};
use crate::credentials::Source;
use crate::dialect::{Chosen, Driver};
use crate::exec::{Command, ExecError};
use crate::passfile::PassFileWarning;
use crate::policy::{Decision, Stable};
use crate::probe::{AttemptError, Ready, Server};
use crate::signals::Signal;
use crate::tls::TlsError;

/// Where events go: the reporter in the program, a recorder in the loop's tests.
pub trait Sink {
    fn emit(&mut self, event: &Event<'_>);
}

/// The database an event is about, as typed values; the reporter names it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Its servers, in the order an attempt tries them.
    pub endpoints: &'a [Endpoint],
    pub dbname: &'a str,
    pub user: &'a str,
    /// The kind of server it waits for (`target_session_attrs`).
    pub attrs: SessionAttrs,
    /// What must hold besides "accepts a query"; a failure's `NotMet { check }` indexes it.
    pub conditions: &'a [Condition],
    /// The driver whose dialect its connection string was read in, and why (`-v` says so).
    pub dialect: Option<(Driver, Chosen)>,
}

/// One thing that happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// About to wait for `target` (shown with `-v`).
    Start {
        target: Target<'a>,
        timeout: Option<Duration>,
    },
    /// An attempt failed, and what the policy decided about it.
    AttemptFailed {
        target: Target<'a>,
        attempt: u32,
        elapsed: Duration,
        error: &'a AttemptError,
        decision: Decision,
    },
    /// The periodic reminder that pgwait is still waiting.
    StillWaiting {
        target: Target<'a>,
        elapsed: Duration,
        attempts: u32,
        last: &'a AttemptError,
    },
    /// `--stable`: a success that does not yet make a stable run (shown with `-v`).
    Steady {
        target: Target<'a>,
        /// Successes in a row so far, and since the first of them.
        successes: u32,
        up_for: Duration,
        stable: Stable,
    },
    /// `--stable`: a failure ended a run of successes; counting starts again.
    Unsteady {
        target: Target<'a>,
        successes: u32,
        up_for: Duration,
    },
    /// The target accepted an authenticated query.
    Ready {
        target: Target<'a>,
        elapsed: Duration,
        attempts: u32,
        ready: &'a Ready,
    },
    /// The deadline passed, or the single `--once` attempt failed with a transient class.
    NotReady {
        target: Target<'a>,
        elapsed: Duration,
        attempts: u32,
        last: Option<&'a AttemptError>,
    },
    /// A permanent failure ended the wait.
    Rejected {
        target: Target<'a>,
        attempts: u32,
        elapsed: Duration,
        error: &'a AttemptError,
    },
    /// A signal ended the wait.
    Interrupted { signal: Signal, elapsed: Duration },
    /// Something the user should fix that does not stop pgwait.
    Warning(&'a PassFileWarning),
    /// Ready over a Unix socket, but the server listens on no TCP address: likely the official
    /// image's temporary init-phase server.
    SocketOnly {
        target: Target<'a>,
        server: &'a Server,
    },
    /// `--iam` raised an sslmode that allows plain text (`from`) to `require`.
    TlsRaised {
        target: Target<'a>,
        from: &'static str,
    },
    /// A password file was re-read and the password in use changed (never says what it is).
    CredentialsChanged {
        target: Target<'a>,
        source: &'a Source,
    },
    /// pgwait is about to become the command.
    Exec { command: &'a Command },
    /// `--supervise`: the command runs as pgwait's child.
    Supervising { command: &'a Command, pid: i32 },
    /// `--supervise` when not PID 1 and the subreaper flag could not be set.
    NoSubreaper { error: &'a std::io::Error },
    /// The command could not be started.
    ExecFailed(&'a ExecError),
    /// The command line does not parse (exit 2).
    Usage(&'a UsageError),
    /// The configuration is invalid (exit 2).
    Config(&'a ConfigError),
    /// The TLS settings cannot work: unreadable or invalid files (exit 3).
    TlsSetup(&'a TlsError),
    /// pgwait itself failed (exit 4).
    Internal {
        what: &'static str,
        error: &'a io::Error,
    },
}
