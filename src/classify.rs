//! Turns one failed connection step into a failure class. Pure: no I/O, no PostgreSQL types.
//!
//! Classification uses the phase, the OS error kind and the SQLSTATE — not message text, because
//! PostgreSQL translates its messages. The one exception is PgBouncer, which reports a wrong
//! password, an unknown database and a down backend all as 08P01, never translated: for those
//! [`SQLSTATES`] also matches the start of the message. Whether a class is retried is not decided
//! here but by [`crate::policy`].

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
    /// The peer went past a bound that keeps pgwait's memory small.
    OverLimit { phase: Phase, limit: Limit },
    /// The server asks for a password and none is set.
    NoPassword,
    /// The server asks for an authentication method pgwait cannot perform.
    UnsupportedAuth(AuthMethod),
    /// The server asked for authentication `require_auth` does not allow (`None`: it let the
    /// client in without any); stopped before any password or proof was sent.
    AuthNotAllowed {
        /// The `require_auth` setting, as written (method names only).
        require_auth: String,
        requested: Option<AuthMethod>,
    },
    /// The server behind a Unix socket runs as another OS user than `requirepeer` names
    /// (`got` is `None` when its user ID has no name here).
    WrongPeer {
        want: String,
        got: Option<String>,
        uid: u32,
    },
    /// `channel_binding=require`, and the server asked for a method without channel binding
    /// (cleartext, MD5, SCRAM without -PLUS): refused before any password was sent, as libpq.
    ChannelBindingRequired { requested: Option<AuthMethod> },
    /// Authentication failed on the client side for another reason (the client's own words,
    /// e.g. a SCRAM server signature that does not verify).
    ClientAuth { detail: String },
    /// The TLS handshake failed, e.g. the client rejected the server's certificate.
    Tls {
        detail: String,
        /// The sslmode in force, when TLS was asked for.
        sslmode: Option<&'static str>,
        /// The host name the certificate was checked against.
        host: String,
    },
    /// The sslmode requires TLS and the server answered that it has none.
    TlsRefused,
    /// A working server of the wrong kind for `target_session_attrs`.
    WrongKind {
        want: &'static str,
        got: &'static str,
    },
    /// A readiness condition (`--query`, `--table`, `--extension`, `--migrations`) does not hold
    /// yet; `check` is its index in the target's list of conditions.
    NotMet { check: usize, got: NotMet },
    /// `--iam` / `--password-command` gave no password for this attempt.
    Token {
        source: TokenSource,
        problem: TokenProblem,
    },
}

/// Where an attempt's minted password comes from (`--iam`'s chain, or `--password-command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenSource {
    /// No source of the cloud's chain is configured here.
    NoSource(Cloud),
    /// `--iam aws` with no region anywhere.
    AwsRegion,
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` [+ `AWS_SESSION_TOKEN`].
    AwsEnvironment,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`: STS AssumeRoleWithWebIdentity (EKS IRSA).
    AwsWebIdentity,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI` (ECS, EKS Pod Identity).
    AwsContainer,
    /// EC2 instance metadata (IMDSv2).
    AwsImds,
    /// `AZURE_FEDERATED_TOKEN_FILE` + `AZURE_CLIENT_ID` + `AZURE_TENANT_ID` (AKS workload identity).
    AzureWorkloadIdentity,
    /// `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (App Service, Container Apps, Functions).
    AzureAppService,
    /// The VM's managed identity through IMDS.
    AzureImds,
    /// `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key (or user credentials) file.
    GcpKeyFile,
    /// The GCE / GKE metadata server.
    GcpMetadata,
    /// `--password-command`.
    Command,
}

/// The cloud `--iam` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cloud {
    Aws,
    Azure,
    Gcp,
}

/// What was wrong with a token source's answer (never the answer itself: it may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenProblem {
    /// The endpoint could not be reached (name, connect, reset): `kind` as the OS said.
    Unreachable { kind: ErrorKind },
    /// No complete answer within the attempt's limit.
    TimedOut,
    /// The endpoint's TLS certificate was not accepted (rustls' words; no secret in them).
    Tls { detail: String },
    /// An `http://` endpoint that is not loopback or a link-local metadata address: a token
    /// must not cross a network in clear.
    PlainHttp { host: String },
    /// An HTTP status that is not success; `code` as sent.
    Status { code: u16 },
    /// The endpoint says it is not ready yet (Azure IMDS's 410 after a boot, a 404 from a
    /// metadata server whose identity is not attached yet, 429 throttling).
    NotReadyYet { code: u16 },
    /// STS says the request's signature expired or the clock is off.
    ClockSkew,
    /// The answer could not be used: `what` was missing or not as documented.
    Malformed { what: &'static str },
    /// A setting or file the source needs is missing or unusable: `what` names it.
    Missing { what: String },
    /// `--password-command` could not be started (`kind` as the OS said).
    CommandNotStarted { kind: ErrorKind },
    /// `--password-command` exited unsuccessfully (`status` e.g. "exit status 1", "signal 9");
    /// the last lines of its stderr, with anything secret-looking removed.
    CommandFailed { status: String, stderr: String },
    /// `--password-command` printed no password.
    CommandEmpty,
}

/// What a condition's query returned instead of a true value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotMet {
    NoRow,
    Null,
    False,
    /// A migration tool's history records nothing yet.
    NoHistory,
    /// The migration tool's state query says why not (server text, e.g. "migration 3 failed").
    State(String),
    /// The `--migrations TOOL:VERSION` version is not recorded as applied.
    VersionNotApplied,
    /// `--max-lag`: a standby with no WAL receiver (not streaming).
    NotStreaming,
    /// `--max-lag`: a streaming standby behind a bound; each figure when the server knows it.
    Lagging {
        bytes: Option<u64>,
        ms: Option<u64>,
    },
}

/// An authentication request pgwait cannot answer, as the server made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// An Authentication message code other than SASL (2 Kerberos, 3 cleartext password, 5 MD5,
    /// 6 SCM, 7 GSSAPI, 9 SSPI, …).
    Code(u32),
    /// SASL with these mechanisms (server text: the reporter escapes it).
    Sasl(Vec<String>),
}

/// SQLSTATEs named once, where code outside the [`SQLSTATES`] table needs to tell them apart.
pub mod sqlstate {
    /// syntax_error: a `--query` that does not parse (permanent, with its own hint).
    pub const SYNTAX_ERROR: &str = "42601";
    /// cannot_connect_now: starting up, in recovery or shutting down; libpq tries the next host.
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    /// invalid_password: with a minted token, a cached one is replaced at once.
    pub const INVALID_PASSWORD: &str = "28P01";
}

/// The bounds on what a peer may send (their sizes are the probe's, README states them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// One message longer than the largest accepted.
    MessageLength,
    /// Too many bytes before ReadyForQuery (a flood of notices or parameters).
    BeforeReady,
    /// Too many bytes in one session.
    Session,
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
    /// The server is starting up or replaying WAL (57P03 "starting up", "in recovery mode",
    /// "not yet accepting connections"): it is doing CPU-bound work our attempts slow down.
    Starting,
    /// The server is not accepting connections for another reason (a standby with
    /// hot_standby off, shutting down, 57P01/57P02, a 57P03 in another language, PgBouncer's 08xxx).
    NotReady,
    /// The server is out of connection slots or resources (53xxx).
    Overloaded,
    /// A working server, but not the kind asked for (a standby while waiting for a primary).
    WrongKind,
    /// A condition names a table, column, schema or function that does not exist yet (42P01,
    /// 42703, 3F000, 42883): a migration has not run.
    SchemaNotReady,
    /// A condition's query returned no row, NULL or false.
    NotMet,
    /// `--max-lag`: a standby that is not streaming or is further behind than allowed.
    Lagging,
    /// The role lacks a privilege a condition needs (42501); grants often come later.
    Privileges,
    /// Bad credentials, unknown role or a pg_hba.conf rejection (28xxx).
    Auth,
    /// The database does not exist (3D000).
    NoDatabase,
    /// The peer is not a PostgreSQL server.
    NotPostgres,
    /// TLS failed: a rejected certificate, or no TLS where the sslmode requires it.
    Tls,
    /// Any other SQLSTATE.
    ServerError,
    /// A token source (`--iam`, `--password-command`) failed in a way that may pass: not
    /// reachable yet, 5xx, "not ready", throttled, a command's non-zero exit.
    Credentials,
    /// A token source refused or answered nonsense (4xx, malformed reply, missing setting,
    /// clock skew): retrying will not help.
    CredentialsRefused,
}

impl Class {
    /// How far this failure got: when several addresses fail, the furthest one tells the story.
    pub fn progress(self) -> u8 {
        match self {
            Self::Unresolvable => 0,
            Self::Refused => 1,
            Self::Unreachable => 2,
            Self::Timeout => 3,
            Self::Dropped => 4,
            Self::Overloaded | Self::NotReady | Self::Starting => 5,
            Self::WrongKind => 6,
            Self::SchemaNotReady | Self::NotMet | Self::Lagging | Self::Privileges => 7,
            Self::Auth | Self::NoDatabase | Self::NotPostgres | Self::Tls | Self::ServerError => 8,
            // Before any server was tried: the token is the same for every address.
            Self::Credentials => 0,
            Self::CredentialsRefused => 8,
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
            Self::Starting => "server starting up",
            Self::NotReady => "server not ready",
            Self::Overloaded => "server out of connections",
            Self::WrongKind => "server of the wrong kind",
            Self::SchemaNotReady => "schema not ready",
            Self::NotMet => "condition not met",
            Self::Lagging => "replica lagging",
            Self::Privileges => "insufficient privilege",
            Self::Auth => "authentication rejected",
            Self::NoDatabase => "database does not exist",
            Self::NotPostgres => "not a PostgreSQL server",
            Self::Tls => "TLS failed",
            Self::ServerError => "connection rejected",
            Self::Credentials => "no password from the token source yet",
            Self::CredentialsRefused => "token source refused",
        })
    }
}

impl Class {
    /// Every class, for tables that must cover them all.
    #[cfg(test)]
    pub const ALL: [Class; 20] = [
        Class::Refused,
        Class::Unresolvable,
        Class::Unreachable,
        Class::Timeout,
        Class::Dropped,
        Class::Starting,
        Class::NotReady,
        Class::Overloaded,
        Class::WrongKind,
        Class::SchemaNotReady,
        Class::NotMet,
        Class::Lagging,
        Class::Privileges,
        Class::Auth,
        Class::NoDatabase,
        Class::NotPostgres,
        Class::Tls,
        Class::ServerError,
        Class::Credentials,
        Class::CredentialsRefused,
    ];

    /// The stable snake_case name used in JSON logs and `--retry-on` (README lists them).
    pub fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Unresolvable => "unresolvable",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Dropped => "dropped",
            Self::Starting => "starting",
            Self::NotReady => "not_ready",
            Self::Overloaded => "overloaded",
            Self::WrongKind => "wrong_kind",
            Self::SchemaNotReady => "schema_not_ready",
            Self::NotMet => "not_met",
            Self::Lagging => "lagging",
            Self::Privileges => "privileges",
            Self::Auth => "auth",
            Self::NoDatabase => "no_database",
            Self::NotPostgres => "not_postgres",
            Self::Tls => "tls",
            Self::ServerError => "server_error",
            Self::Credentials => "credentials",
            Self::CredentialsRefused => "credentials_refused",
        }
    }
}

/// A set of classes (a bit per class, room for 32): cheap to copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassSet(u32);

impl ClassSet {
    pub const EMPTY: ClassSet = ClassSet(0);

    /// This set with `class` added.
    pub fn with(self, class: Class) -> Self {
        Self(self.0 | 1 << class as u32)
    }

    pub fn contains(self, class: Class) -> bool {
        self.0 & (1 << class as u32) != 0
    }
}

/// Matches a SQLSTATE exactly, by its two-character class, or exactly with a message prefix.
#[derive(Debug, Clone, Copy)]
pub enum SqlStates {
    Code(&'static str),
    ClassOf(&'static str),
    /// A code whose message starts so: PgBouncer's untranslated 08P01s, and 57P03's states.
    CodeWithText(&'static str, &'static str),
}

impl SqlStates {
    fn matches(self, sqlstate: &str, message: &str) -> bool {
        match self {
            Self::Code(code) => sqlstate == code,
            Self::ClassOf(prefix) => sqlstate.starts_with(prefix),
            Self::CodeWithText(code, start) => sqlstate == code && message.starts_with(start),
        }
    }
}

/// Every SQLSTATE pgwait treats specially, first match wins; any other is [`Class::ServerError`].
#[rustfmt::skip]
pub const SQLSTATES: &[(SqlStates, Class)] = &[
    // cannot_connect_now while the start-up process runs (postmaster.c, canAcceptConnections):
    // starting up (a clean start, or a crash recovery since PostgreSQL 14), crash recovery
    // (13 and older), a standby not yet consistent. The English text is a refinement: any other
    // wording (a translation) is the plain 57P03 below.
    (SqlStates::CodeWithText("57P03", "the database system is starting up"), Class::Starting),
    (SqlStates::CodeWithText("57P03", "the database system is in recovery mode"), Class::Starting),
    (SqlStates::CodeWithText("57P03", "the database system is not yet accepting connections"), Class::Starting),
    // admin_shutdown, crash_shutdown, cannot_connect_now (hot standby off, shutting down).
    (SqlStates::Code("57P01"), Class::NotReady),
    (SqlStates::Code("57P02"), Class::NotReady),
    (SqlStates::Code("57P03"), Class::NotReady),
    // invalid_catalog_name: the database does not exist.
    (SqlStates::Code("3D000"), Class::NoDatabase),
    // PgBouncer (its messages are never translated): a wrong password, an unknown user or
    // database, and its own client limit are not "not ready"...
    (SqlStates::CodeWithText("08P01", "password authentication failed"), Class::Auth),
    (SqlStates::CodeWithText("08P01", "SASL authentication failed"), Class::Auth),
    (SqlStates::CodeWithText("08P01", "no such user"), Class::Auth),
    (SqlStates::CodeWithText("08P01", "no such database"), Class::NoDatabase),
    (SqlStates::CodeWithText("08P01", "no more connections allowed"), Class::Overloaded),
    // ...while "server login has been failing", "query_wait_timeout" and the like mean its
    // backend is not up yet: the 08 rule below.
    // Connection exceptions: PgBouncer reports a backend it cannot reach yet as 08xxx.
    (SqlStates::ClassOf("08"), Class::NotReady),
    // Insufficient resources: 53300 too_many_connections, 53100 disk_full, ...
    (SqlStates::ClassOf("53"), Class::Overloaded),
    // A condition refers to what a migration has not created yet: undefined_table,
    // undefined_column, invalid_schema_name, undefined_function.
    (SqlStates::Code("42P01"), Class::SchemaNotReady),
    (SqlStates::Code("42703"), Class::SchemaNotReady),
    (SqlStates::Code("3F000"), Class::SchemaNotReady),
    (SqlStates::Code("42883"), Class::SchemaNotReady),
    // insufficient_privilege (42601 syntax_error and the rest of 42 are ServerError: permanent).
    (SqlStates::Code("42501"), Class::Privileges),
    // Invalid authorization: 28P01 invalid_password, 28000 invalid_authorization_specification.
    (SqlStates::ClassOf("28"), Class::Auth),
];

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
        Failure::Server {
            sqlstate, message, ..
        } => classify_sqlstate(sqlstate, message),
        Failure::Protocol { .. } | Failure::OverLimit { .. } => Class::NotPostgres,
        Failure::NoPassword
        | Failure::UnsupportedAuth(_)
        | Failure::AuthNotAllowed { .. }
        | Failure::WrongPeer { .. }
        | Failure::ChannelBindingRequired { .. }
        | Failure::ClientAuth { .. } => Class::Auth,
        Failure::Tls { .. } | Failure::TlsRefused => Class::Tls,
        Failure::WrongKind { .. } => Class::WrongKind,
        Failure::NotMet {
            got: NotMet::NotStreaming | NotMet::Lagging { .. },
            ..
        } => Class::Lagging,
        Failure::NotMet { .. } => Class::NotMet,
        Failure::Token { problem, .. } => classify_token(problem),
    }
}

/// Token sources: what may pass by itself is retried, a refusal or nonsense is not.
fn classify_token(problem: &TokenProblem) -> Class {
    match problem {
        TokenProblem::Unreachable { .. }
        | TokenProblem::TimedOut
        | TokenProblem::NotReadyYet { .. }
        | TokenProblem::CommandFailed { .. }
        | TokenProblem::CommandEmpty => Class::Credentials,
        TokenProblem::Status { code } if *code >= 500 => Class::Credentials,
        TokenProblem::Status { .. }
        | TokenProblem::Tls { .. }
        | TokenProblem::PlainHttp { .. }
        | TokenProblem::ClockSkew
        | TokenProblem::Malformed { .. }
        | TokenProblem::Missing { .. }
        | TokenProblem::CommandNotStarted { .. } => Class::CredentialsRefused,
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

fn classify_sqlstate(sqlstate: &str, message: &str) -> Class {
    SQLSTATES
        .iter()
        .find(|(states, _)| states.matches(sqlstate, message))
        .map_or(Class::ServerError, |(_, class)| *class)
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
        said(sqlstate, "")
    }

    fn said(sqlstate: &str, message: &str) -> Failure {
        Failure::Server {
            phase: Phase::Startup,
            sqlstate: sqlstate.into(),
            message: message.into(),
        }
    }

    #[test]
    fn pgbouncer_08p01_is_told_apart_by_its_untranslated_text() {
        let table = [
            ("SASL authentication failed", Class::Auth),
            ("password authentication failed", Class::Auth),
            ("no such user: bob", Class::Auth),
            ("no such database: nodb", Class::NoDatabase),
            (
                "no more connections allowed (max_client_conn)",
                Class::Overloaded,
            ),
            (
                "server login has been failing, try again later (server_login_retry)",
                Class::NotReady,
            ),
            ("query_wait_timeout", Class::NotReady),
            ("pgbouncer cannot connect to server", Class::NotReady),
        ];
        for (message, class) in table {
            assert_eq!(classify(&said("08P01", message)), class, "{message}");
        }
        // The text alone decides nothing: PostgreSQL's own 28P01 and 3D000 stay what they are,
        // and the same words under another SQLSTATE are not PgBouncer's.
        assert_eq!(
            classify(&said("08006", "no such database: x")),
            Class::NotReady
        );
        assert_eq!(
            classify(&said("28P01", "Passwort-Authentifizierung")),
            Class::Auth
        );
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
            (
                said("57P03", "the database system is starting up"),
                Class::Starting,
            ),
            (
                said("57P03", "the database system is in recovery mode"),
                Class::Starting,
            ),
            (
                said(
                    "57P03",
                    "the database system is not yet accepting connections",
                ),
                Class::Starting,
            ),
            (
                said("57P03", "the database system is not accepting connections"),
                Class::NotReady,
            ),
            (
                said("57P03", "the database system is shutting down"),
                Class::NotReady,
            ),
            (
                said("57P03", "el sistema de base de datos está iniciándose"),
                Class::NotReady,
            ),
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
            (Failure::UnsupportedAuth(AuthMethod::Code(7)), Class::Auth),
            (Failure::NoPassword, Class::Auth),
            (
                Failure::Tls {
                    detail: String::new(),
                    sslmode: Some("verify-full"),
                    host: "db".into(),
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
            (server("42501"), Class::Privileges),
            (server("42601"), Class::ServerError),
            (server("42P01"), Class::SchemaNotReady),
            (server("42703"), Class::SchemaNotReady),
            (server("3F000"), Class::SchemaNotReady),
            (server("42883"), Class::SchemaNotReady),
            (
                Failure::NotMet {
                    check: 0,
                    got: NotMet::False,
                },
                Class::NotMet,
            ),
            (server("XX000"), Class::ServerError),
            (server("ZZ999"), Class::ServerError),
        ];
        for (failure, expected) in table {
            assert_eq!(classify(&failure), expected, "{failure:?}");
        }
    }

    #[test]
    fn class_names_are_unique_snake_case() {
        let mut names: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Class::ALL.len());
    }

    #[test]
    fn a_server_that_answered_outranks_one_that_refused() {
        assert!(Class::NotReady.progress() > Class::Refused.progress());
        assert!(Class::Auth.progress() > Class::NotReady.progress());
        assert!(Class::Refused.progress() > Class::Unresolvable.progress());
    }
}
