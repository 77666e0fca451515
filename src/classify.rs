//! Turns one failed connection step into a retry class. Pure: no I/O, no PostgreSQL types.
//!
//! Classification uses the phase, the OS error kind and the SQLSTATE only — never message text,
//! because servers translate their messages.

use std::fmt;
use std::io::ErrorKind;

/// The step of an attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Looking the host name up.
    Resolve,
    /// TCP or Unix-socket connect.
    Connect,
    /// PostgreSQL startup and authentication.
    Startup,
    /// The `SELECT 1` after authentication.
    Query,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolve => "name lookup",
            Self::Connect => "connect",
            Self::Startup => "startup",
            Self::Query => "query",
        })
    }
}

/// What went wrong in one step, in pgwait's own terms (the probe converts to this at its edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// An operating-system error.
    Io {
        phase: Phase,
        kind: ErrorKind,
        detail: String,
    },
    /// pgwait's own per-step time limit ran out.
    TimedOut { phase: Phase },
    /// The peer closed the connection without an error message.
    Closed { phase: Phase },
    /// The server sent an ErrorResponse.
    Server {
        phase: Phase,
        sqlstate: String,
        message: String,
    },
    /// The peer does not speak the PostgreSQL protocol as expected.
    Protocol { phase: Phase },
    /// Authentication failed on the client side (e.g. a password is required but none is set).
    ClientAuth { detail: String },
    /// The TLS handshake failed, e.g. the client rejected the server's certificate.
    Tls { detail: String },
    /// The sslmode requires TLS and the server answered that it has none.
    TlsRefused,
    /// A working server of the wrong kind for `target_session_attrs`.
    WrongKind {
        want: &'static str,
        got: &'static str,
    },
}

impl Failure {
    /// An operating-system error in `phase`.
    pub fn io(phase: Phase, e: &std::io::Error) -> Self {
        Self::Io {
            phase,
            kind: e.kind(),
            detail: e.to_string(),
        }
    }
}

/// Retry classes: each has its own retry schedule in [`crate::policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Nothing listening (ECONNREFUSED, socket file missing).
    Refused,
    /// The host name does not resolve (yet).
    Unresolvable,
    /// No route, or an ICMP error.
    Unreachable,
    /// Packets dropped or a peer that never answers.
    Timeout,
    /// The connection was cut during the handshake.
    Dropped,
    /// The server is starting up, recovering or shutting down (57P0x, 08xxx).
    NotReady,
    /// The server is out of connection slots or resources (53xxx).
    Overloaded,
    /// A working server, but not the kind asked for (a standby while waiting for a primary).
    WrongKind,
    /// Bad credentials, unknown role or a pg_hba.conf rejection (28xxx).
    Auth,
    /// The database does not exist (3D000).
    NoDatabase,
    /// The peer is not a PostgreSQL server.
    NotPostgres,
    /// TLS failed: a rejected certificate, or no TLS where the sslmode requires it.
    Tls,
    /// Any other SQLSTATE.
    Rejected,
}

impl Class {
    /// Permanent classes stop the wait unless the user asked to retry them.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            Self::Auth | Self::NoDatabase | Self::NotPostgres | Self::Tls | Self::Rejected
        )
    }

    /// How far this failure got: when several addresses fail, the furthest one tells the story.
    pub fn progress(self) -> u8 {
        match self {
            Self::Unresolvable => 0,
            Self::Refused => 1,
            Self::Unreachable => 2,
            Self::Timeout => 3,
            Self::Dropped => 4,
            Self::Overloaded | Self::NotReady => 5,
            Self::WrongKind => 6,
            Self::Auth | Self::NoDatabase | Self::NotPostgres | Self::Tls | Self::Rejected => 7,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refused => "connection refused",
            Self::Unresolvable => "host name not resolvable",
            Self::Unreachable => "host unreachable",
            Self::Timeout => "timed out",
            Self::Dropped => "connection dropped during handshake",
            Self::NotReady => "server not ready",
            Self::Overloaded => "server out of connections",
            Self::WrongKind => "server of the wrong kind",
            Self::Auth => "authentication rejected",
            Self::NoDatabase => "database does not exist",
            Self::NotPostgres => "not a PostgreSQL server",
            Self::Tls => "TLS failed",
            Self::Rejected => "connection rejected",
        })
    }
}

/// Maps a failure to its retry class.
pub fn classify(failure: &Failure) -> Class {
    match failure {
        Failure::Io {
            phase: Phase::Resolve,
            ..
        } => Class::Unresolvable,
        Failure::Io { phase, kind, .. } => classify_io(*phase, *kind),
        Failure::TimedOut {
            phase: Phase::Resolve,
        } => Class::Unresolvable,
        Failure::TimedOut { .. } => Class::Timeout,
        Failure::Closed { .. } => Class::Dropped,
        Failure::Server { sqlstate, .. } => classify_sqlstate(sqlstate),
        Failure::Protocol { .. } => Class::NotPostgres,
        Failure::ClientAuth { .. } => Class::Auth,
        Failure::Tls { .. } | Failure::TlsRefused => Class::Tls,
        Failure::WrongKind { .. } => Class::WrongKind,
    }
}

fn classify_io(phase: Phase, kind: ErrorKind) -> Class {
    match kind {
        ErrorKind::ConnectionRefused => Class::Refused,
        // A missing socket file is a server that has not created it yet.
        ErrorKind::NotFound if phase == Phase::Connect => Class::Refused,
        ErrorKind::TimedOut => Class::Timeout,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => Class::Dropped,
        // Bytes that do not parse as PostgreSQL messages.
        ErrorKind::InvalidData | ErrorKind::InvalidInput if phase != Phase::Connect => {
            Class::NotPostgres
        }
        // Unreachable networks, EACCES from a firewall, and the rest: transient until proven not.
        _ if phase == Phase::Connect => Class::Unreachable,
        // Any other error once connected cut the handshake short.
        _ => Class::Dropped,
    }
}

fn classify_sqlstate(sqlstate: &str) -> Class {
    match sqlstate {
        "57P01" | "57P02" | "57P03" => Class::NotReady,
        "3D000" => Class::NoDatabase,
        // PgBouncer reports a backend it cannot reach yet as a connection exception (08xxx).
        s if s.starts_with("08") => Class::NotReady,
        s if s.starts_with("53") => Class::Overloaded,
        s if s.starts_with("28") => Class::Auth,
        _ => Class::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(phase: Phase, kind: ErrorKind) -> Failure {
        Failure::Io {
            phase,
            kind,
            detail: String::new(),
        }
    }

    fn server(sqlstate: &str) -> Failure {
        Failure::Server {
            phase: Phase::Startup,
            sqlstate: sqlstate.into(),
            message: String::new(),
        }
    }

    #[test]
    fn classifies_every_listed_failure() {
        let table: Vec<(Failure, Class)> = vec![
            (io(Phase::Resolve, ErrorKind::Other), Class::Unresolvable),
            (io(Phase::Resolve, ErrorKind::NotFound), Class::Unresolvable),
            (
                Failure::TimedOut {
                    phase: Phase::Resolve,
                },
                Class::Unresolvable,
            ),
            (
                io(Phase::Connect, ErrorKind::ConnectionRefused),
                Class::Refused,
            ),
            (io(Phase::Connect, ErrorKind::NotFound), Class::Refused),
            (io(Phase::Connect, ErrorKind::TimedOut), Class::Timeout),
            (
                Failure::TimedOut {
                    phase: Phase::Connect,
                },
                Class::Timeout,
            ),
            (
                Failure::TimedOut {
                    phase: Phase::Startup,
                },
                Class::Timeout,
            ),
            (
                Failure::TimedOut {
                    phase: Phase::Query,
                },
                Class::Timeout,
            ),
            (
                io(Phase::Connect, ErrorKind::HostUnreachable),
                Class::Unreachable,
            ),
            (
                io(Phase::Connect, ErrorKind::NetworkUnreachable),
                Class::Unreachable,
            ),
            (
                io(Phase::Connect, ErrorKind::AddrNotAvailable),
                Class::Unreachable,
            ),
            (
                io(Phase::Connect, ErrorKind::PermissionDenied),
                Class::Unreachable,
            ),
            (
                io(Phase::Startup, ErrorKind::ConnectionReset),
                Class::Dropped,
            ),
            (
                io(Phase::Startup, ErrorKind::ConnectionAborted),
                Class::Dropped,
            ),
            (io(Phase::Startup, ErrorKind::BrokenPipe), Class::Dropped),
            (io(Phase::Startup, ErrorKind::UnexpectedEof), Class::Dropped),
            (io(Phase::Startup, ErrorKind::Other), Class::Dropped),
            (io(Phase::Query, ErrorKind::Other), Class::Dropped),
            (io(Phase::Connect, ErrorKind::Other), Class::Unreachable),
            (
                Failure::Closed {
                    phase: Phase::Startup,
                },
                Class::Dropped,
            ),
            (
                io(Phase::Startup, ErrorKind::InvalidData),
                Class::NotPostgres,
            ),
            (
                io(Phase::Startup, ErrorKind::InvalidInput),
                Class::NotPostgres,
            ),
            (
                Failure::Protocol {
                    phase: Phase::Startup,
                },
                Class::NotPostgres,
            ),
            (
                Failure::Protocol {
                    phase: Phase::Query,
                },
                Class::NotPostgres,
            ),
            (server("57P03"), Class::NotReady),
            (server("57P01"), Class::NotReady),
            (server("57P02"), Class::NotReady),
            (server("08P01"), Class::NotReady),
            (server("08006"), Class::NotReady),
            (server("53300"), Class::Overloaded),
            (server("53100"), Class::Overloaded),
            (server("28P01"), Class::Auth),
            (server("28000"), Class::Auth),
            (
                Failure::ClientAuth {
                    detail: String::new(),
                },
                Class::Auth,
            ),
            (server("3D000"), Class::NoDatabase),
            (
                Failure::Tls {
                    detail: String::new(),
                },
                Class::Tls,
            ),
            (Failure::TlsRefused, Class::Tls),
            (
                Failure::WrongKind {
                    want: "read-write",
                    got: "read-only",
                },
                Class::WrongKind,
            ),
            (server("42501"), Class::Rejected),
            (server("XX000"), Class::Rejected),
            (server("ZZ999"), Class::Rejected),
        ];
        for (failure, expected) in table {
            assert_eq!(classify(&failure), expected, "{failure:?}");
        }
    }

    #[test]
    fn only_rejections_by_a_real_server_are_permanent() {
        let permanent = [
            Class::Auth,
            Class::NoDatabase,
            Class::NotPostgres,
            Class::Tls,
            Class::Rejected,
        ];
        let transient = [
            Class::Refused,
            Class::Unresolvable,
            Class::Unreachable,
            Class::Timeout,
            Class::Dropped,
            Class::NotReady,
            Class::Overloaded,
            Class::WrongKind,
        ];
        assert!(permanent.iter().all(|c| c.is_permanent()));
        assert!(transient.iter().all(|c| !c.is_permanent()));
    }

    #[test]
    fn a_server_that_answered_outranks_one_that_refused() {
        assert!(Class::NotReady.progress() > Class::Refused.progress());
        assert!(Class::Auth.progress() > Class::NotReady.progress());
        assert!(Class::Refused.progress() > Class::Unresolvable.progress());
    }
}
