//! Every exit code pgwait can return, in one place: [`Exit::code`] chooses the numbers and
//! [`MEANINGS`] says what they mean (`--help` prints it; a test keeps the two in step).

use crate::exec::ExecError;
use crate::signals::Signal;
use crate::wait::Outcome;

/// Why pgwait exits (when it does not exec), by intent; the number is chosen only in [`Exit::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ready, and there was no command to exec; also `--help` and `--version`.
    Ready,
    /// Not ready before the deadline, or `--once` found it not ready.
    NotReady,
    /// The user's command line, environment or files are wrong.
    Usage,
    /// A permanent rejection: authentication, missing database, not PostgreSQL, TLS, other SQLSTATE.
    Rejected,
    /// pgwait itself failed (cannot start its runtime or install its signal handlers): not the
    /// user's doing, so not exit 2.
    Internal,
    /// The command exists but could not be executed.
    CannotExecute,
    /// The command was not found.
    CommandNotFound,
    /// Interrupted by this signal while waiting.
    Interrupted(Signal),
    /// A supervised child exited with this status.
    #[allow(dead_code)] // the supervise mode (next) ends this way
    ChildExited(u8),
    /// A supervised child was killed by this signal.
    #[allow(dead_code)] // the supervise mode (next) ends this way
    ChildKilled(Signal),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Self::Ready => 0,
            Self::NotReady => 1,
            Self::Usage => 2,
            Self::Rejected => 3,
            Self::Internal => 4,
            Self::CannotExecute => 126,
            Self::CommandNotFound => 127,
            Self::ChildExited(code) => code,
            Self::Interrupted(signal) | Self::ChildKilled(signal) => by_signal(signal),
        }
    }
}

/// Every exit code and what it means, in `--help`'s words.
pub const MEANINGS: &[(&str, &str)] = &[
    ("0", "ready (no COMMAND given)"),
    (
        "1",
        "not ready before the deadline (--timeout), or --once found it not ready",
    ),
    ("2", "usage or configuration error"),
    (
        "3",
        "permanent rejection (authentication, missing database, not PostgreSQL, TLS failure or unusable certificate/key files, other SQLSTATE)",
    ),
    (
        "4",
        "pgwait itself failed (cannot start its runtime or install signal handlers)",
    ),
    ("126", "COMMAND found but not executable"),
    ("127", "COMMAND not found"),
    ("128+N", "interrupted by signal N while waiting (SIGTERM: 143)"),
];

impl From<&Outcome> for Exit {
    /// How a wait ends the process when there is no command to exec.
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Ready { .. } => Self::Ready,
            Outcome::NotReady { .. } => Self::NotReady,
            Outcome::Rejected { .. } => Self::Rejected,
            Outcome::Interrupted { signal, .. } => Self::Interrupted(*signal),
            // Only alongside another target's rejection, which decides.
            Outcome::Abandoned => Self::Rejected,
        }
    }
}

impl Exit {
    /// How a wait for several targets ends: a signal, else a rejection, else "not ready" if any
    /// target was not ready, else ready.
    pub fn of_all(outcomes: &[Outcome]) -> Self {
        let rank = |exit: &Exit| match exit {
            Exit::Interrupted(_) => 3,
            Exit::Rejected => 2,
            Exit::NotReady => 1,
            _ => 0,
        };
        outcomes
            .iter()
            .map(Exit::from)
            .max_by_key(rank)
            .unwrap_or(Exit::Ready)
    }
}

impl From<&ExecError> for Exit {
    fn from(error: &ExecError) -> Self {
        match error {
            ExecError::NotFound { .. } => Self::CommandNotFound,
            ExecError::NotExecutable { .. } => Self::CannotExecute,
            ExecError::SignalState { .. } => Self::Internal,
        }
    }
}

/// 128+N, as shells report a process killed by signal N (saturating for real-time signals).
fn by_signal(signal: Signal) -> u8 {
    u8::try_from(128 + signal.number()).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: i32) -> Signal {
        Signal::from_number(n).unwrap()
    }

    #[test]
    fn exit_codes_match_the_documented_table() {
        let table = [
            (Exit::Ready, 0),
            (Exit::NotReady, 1),
            (Exit::Usage, 2),
            (Exit::Rejected, 3),
            (Exit::Internal, 4),
            (Exit::CannotExecute, 126),
            (Exit::CommandNotFound, 127),
            (Exit::Interrupted(Signal::TERMINATE), 143),
            (Exit::Interrupted(Signal::INTERRUPT), 130),
            (Exit::ChildExited(77), 77),
            (Exit::ChildKilled(signal(libc::SIGKILL)), 137),
            (Exit::ChildKilled(signal(libc::SIGRTMAX())), 192),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
            // Every code pgwait chooses itself has a meaning in --help.
            let documented = match exit {
                Exit::ChildExited(_) => true,
                Exit::Interrupted(_) | Exit::ChildKilled(_) => MEANINGS[7].0 == "128+N",
                _ => MEANINGS.iter().any(|(c, _)| *c == code.to_string()),
            };
            assert!(documented, "{exit:?} is missing from MEANINGS");
        }
    }
}
