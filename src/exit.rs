//! Every exit code pgwait can return, in one table (mirrored in `--help` and README).

/// The reasons pgwait exits (when it does not exec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ready, and there was no command to exec.
    Ready,
    /// Not ready before the deadline, or `--once` found it not ready.
    NotReady,
    /// Usage or configuration error.
    Usage,
    /// A permanent rejection: authentication, missing database, not PostgreSQL, other SQLSTATE.
    Rejected,
    /// The command exists but could not be executed.
    CannotExecute,
    /// The command was not found.
    CommandNotFound,
    /// Interrupted while waiting by the signal with this number.
    Signal(i32),
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            Self::Ready => 0,
            Self::NotReady => 1,
            Self::Usage => 2,
            Self::Rejected => 3,
            Self::CannotExecute => 126,
            Self::CommandNotFound => 127,
            Self::Signal(n) => 128 + n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_table() {
        let table = [
            (Exit::Ready, 0),
            (Exit::NotReady, 1),
            (Exit::Usage, 2),
            (Exit::Rejected, 3),
            (Exit::CannotExecute, 126),
            (Exit::CommandNotFound, 127),
            (Exit::Signal(libc::SIGTERM), 143),
            (Exit::Signal(libc::SIGINT), 130),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
