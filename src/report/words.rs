//! The words of each line: what the person at the terminal reads, and the `msg` of a JSON line.
//! Every label is worded here from typed values: targets, servers, conditions.

use std::net::IpAddr;
use std::time::Duration;

use super::{lag_of, primary_fields, Level, Record};
use crate::classify::sqlstate::SYNTAX_ERROR;
use crate::classify::{
    AuthMethod, Class, Cloud, Failure, Limit, NotMet, Phase, TokenProblem, TokenSource,
};
use crate::condition::Condition;
use crate::conninfo::SessionAttrs;
use crate::credentials::Source;
use crate::dialect::Chosen;
use crate::event::{Event, Target};
use crate::exec::ExecError;
use crate::policy::{Decision, RetryOn};
use crate::probe::{self, AttemptError, Ready, Route, Server};

/// Records for the events that need no state from the reporter.
pub fn record<'e>(event: &'e Event<'e>) -> Option<Record<'e>> {
    Some(match event {
        Event::StillWaiting {
            target,
            elapsed,
            attempts,
            last,
        } => still_waiting(target, *elapsed, *attempts, last),
        Event::Ready {
            target,
            elapsed,
            attempts,
            ready,
        } => ready_line(target, *elapsed, *attempts, ready),
        Event::Steady {
            target,
            successes,
            up_for,
            stable,
        } => Record {
            target: Some(self::target(target)),
            ..debug(
                "steady",
                format!(
                    "up {successes}/{} attempts for {} (of {}): checking that it stays up",
                    stable.count,
                    human(*up_for),
                    human(stable.span)
                ),
            )
        },
        Event::Unsteady {
            target,
            successes,
            up_for,
        } => Record {
            target: Some(self::target(target)),
            ..line(
                Level::Info,
                "unsteady",
                format!(
                    "was up for {} ({}), then failed: counting again (--stable)",
                    human(*up_for),
                    attempts_text(*successes)
                ),
            )
        },
        Event::NotReady {
            target,
            elapsed,
            attempts,
            last,
        } => not_ready(target, *elapsed, *attempts, *last),
        Event::Rejected {
            target,
            attempts,
            elapsed,
            error,
        } => rejected(target, *attempts, *elapsed, error),
        Event::Interrupted { signal, elapsed } => interrupted(*signal, *elapsed),
        Event::Warning(warning) => warn("warning", format!("warning: {warning}")),
        Event::SocketOnly { target, server } => socket_only(target, server),
        Event::CredentialsChanged { target, source } => credentials_changed(target, source),
        Event::TlsRaised { target, from } => Record {
            target: Some(self::target(target)),
            ..line(
                Level::Info,
                "tls_raised",
                format!("sslmode={from} raised to require: --iam sends tokens only over TLS"),
            )
        },
        Event::Exec { command } => Record {
            program: Some(command.name()),
            ..debug("exec", format!("executing {}", command.name()))
        },
        Event::Supervising { command, pid } => Record {
            program: Some(command.name()),
            ..debug(
                "supervising",
                format!("started {} (pid {pid}); supervising it", command.name()),
            )
        },
        Event::NoSubreaper { error } => warn(
            "no_subreaper",
            format!("warning: cannot become a child subreaper ({error}): processes the command orphans will be reaped by the system's init, not by pgwait"),
        ),
        Event::ExecFailed(error) => exec_failed(error),
        Event::Usage(error) => failure("usage_error", error.to_string()),
        Event::Config(error) => failure("config_error", error.to_string()),
        Event::TlsSetup(error) => failure("tls_setup_failed", error.to_string()),
        Event::Internal { what, error } => failure("internal_error", format!("{what}: {error}")),
        Event::Start { .. } | Event::AttemptFailed { .. } => return None,
    })
}

/// `host:port,.../dbname`, and the kind of server when one is asked for: names the target in
/// every line about it.
pub fn target(target: &Target<'_>) -> String {
    let endpoints: Vec<String> = target.endpoints.iter().map(ToString::to_string).collect();
    let label = format!("{}/{}", endpoints.join(","), target.dbname);
    match target.attrs {
        SessionAttrs::Any => label,
        attrs => format!("{label} ({})", attrs.name()),
    }
}

/// `db:5432 (172.18.0.2)`, `10.0.0.2:5432` when the host is the address, `[::1]:5432`, or the
/// socket file's path.
pub fn server(server: &Server) -> String {
    let host_port = if server.host.contains(':') {
        format!("[{}]:{}", server.host, server.port)
    } else {
        format!("{}:{}", server.host, server.port)
    };
    match &server.route {
        Some(Route::Unix(path)) => path.display().to_string(),
        Some(Route::Tcp(addr)) if server.host.parse::<IpAddr>().ok() != Some(addr.ip()) => {
            format!("{host_port} ({})", addr.ip())
        }
        _ => host_port,
    }
}

/// How a condition is named in log lines, e.g. `table public.users`.
pub fn condition(condition: &Condition) -> String {
    match condition {
        Condition::Query(_) => "--query".to_string(),
        Condition::Table {
            schema: Some(s),
            name,
        } => format!("table {}.{}", s.text(), name.text()),
        Condition::Table { schema: None, name } => format!("table {}", name.text()),
        Condition::Extension(name) => format!("extension {}", name.text()),
        Condition::MaxLag(limits) => {
            let bounds: Vec<String> = [
                limits.bytes.map(size),
                limits.time.map(|t| format!("{}ms", t.as_millis())),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("max-lag {}", bounds.join(", "))
        }
        Condition::Migrations(m) => {
            let mut label = format!("migrations {}", m.tool);
            if let Some(version) = m.version() {
                label.push_str(&format!(":{version}"));
            }
            if let Some(table) = m.custom_table() {
                match &table.schema {
                    Some(schema) => label.push_str(&format!(" ({}.", schema.text())),
                    None => label.push_str(" ("),
                }
                label.push_str(&format!("{})", table.name.text()));
            }
            label
        }
    }
}

fn ready_line<'e>(
    target: &Target<'_>,
    elapsed: Duration,
    attempts: u32,
    ready: &'e Ready,
) -> Record<'e> {
    let checked: Vec<String> = target.conditions.iter().map(condition).collect();
    let mut head = format!(
        "ready after {} ({}): {}",
        human(elapsed),
        attempts_text(attempts),
        server(&ready.server)
    );
    if let Some(lag) = &ready.lag {
        head.push_str(&format!(" (lag {})", lag_text(lag.bytes, lag.ms)));
    }
    Record {
        level: Some(Level::Info),
        event: "ready",
        msg: match checked.as_slice() {
            [] => head,
            checked => format!("{head}; checked {}", checked.join(", ")),
        },
        target: Some(self::target(target)),
        server: Some(&ready.server),
        checked: (!checked.is_empty()).then(|| checked.join(", ")),
        attempts: Some(attempts),
        elapsed: Some(elapsed),
        lag: ready.lag,
        ..Record::default()
    }
}

fn rejected<'e>(
    target: &Target<'_>,
    attempts: u32,
    elapsed: Duration,
    error: &'e AttemptError,
) -> Record<'e> {
    let (server, class, sqlstate) = primary_fields(error);
    Record {
        level: Some(Level::Error),
        event: "rejected",
        msg: format!(
            "{}; hint: {}",
            attempt_error(error, target.conditions),
            hint_of(error)
        ),
        target: Some(self::target(target)),
        server: Some(server),
        class: Some(class),
        sqlstate,
        attempts: Some(attempts),
        elapsed: Some(elapsed),
        reason: Some("permanent"),
        hint: Some(hint_of(error)),
        ..Record::default()
    }
}

fn credentials_changed(target: &Target<'_>, source: &Source) -> Record<'static> {
    Record {
        level: Some(Level::Info),
        event: "credentials_changed",
        msg: match source {
            Source::PasswordFile(path) => {
                format!("credentials changed: password file \"{path}\" was updated")
            }
            Source::PassFile(path) => format!("credentials changed: \"{path}\" was updated"),
        },
        target: Some(self::target(target)),
        ..Record::default()
    }
}

fn interrupted(signal: crate::signals::Signal, elapsed: Duration) -> Record<'static> {
    Record {
        level: Some(Level::Info),
        event: "interrupted",
        msg: format!("interrupted by {signal} after {}", human(elapsed)),
        elapsed: Some(elapsed),
        signal: Some(signal.name()),
        ..Record::default()
    }
}

fn socket_only<'e>(target: &Target<'_>, s: &'e Server) -> Record<'e> {
    Record {
        target: Some(self::target(target)),
        server: Some(s),
        hint: Some(SOCKET_ONLY),
        ..warn(
            "socket_only",
            format!("warning: {}: {SOCKET_ONLY}", server(s)),
        )
    }
}

/// A line with only its level, kind and words.
fn line(level: Level, event: &'static str, msg: String) -> Record<'static> {
    Record {
        level: Some(level),
        event,
        msg,
        ..Record::default()
    }
}

fn warn(event: &'static str, msg: String) -> Record<'static> {
    line(Level::Warn, event, msg)
}

fn debug(event: &'static str, msg: String) -> Record<'static> {
    line(Level::Debug, event, msg)
}

fn failure(event: &'static str, msg: String) -> Record<'static> {
    line(Level::Error, event, msg)
}

fn exec_failed(error: &ExecError) -> Record<'static> {
    let (msg, program) = match error {
        ExecError::NotFound { program } => (format!("command not found: {program}"), program),
        ExecError::NotExecutable { program, detail } => {
            (format!("cannot execute {program}: {detail}"), program)
        }
        ExecError::SignalState { detail } => {
            let msg = format!("cannot restore the signal state before exec: {detail}");
            return failure("exec_failed", msg);
        }
    };
    Record {
        program: Some(program.clone()),
        ..failure("exec_failed", msg)
    }
}

/// What is about to be waited for (`-v` only).
pub fn start(target: &Target<'_>, timeout: Option<Duration>) -> Record<'static> {
    let limit = timeout.map_or("no timeout".to_string(), |t| {
        format!("timeout {}", human(t))
    });
    let label = self::target(target);
    let read_as = match target.dialect {
        None => String::new(),
        Some((driver, Chosen::Asked)) => format!("; read as {} reads it (--driver)", driver.name()),
        Some((driver, Chosen::Recognised(why))) => {
            format!("; read as {} reads it, recognised by {why}", driver.name())
        }
    };
    Record {
        level: Some(Level::Debug),
        event: "start",
        msg: format!(
            "waiting for {label} as user {} ({limit}){read_as}",
            target.user
        ),
        target: Some(label),
        ..Record::default()
    }
}

/// A failed attempt: the normal "waiting for ..." line, or with `-v` the attempt, its number,
/// when it ended and what follows.
pub fn attempt_failed<'e>(
    target: &Target<'_>,
    attempt: u32,
    elapsed: Duration,
    error: &'e AttemptError,
    decision: Decision,
    verbose: bool,
) -> Record<'e> {
    let (server, class, sqlstate) = primary_fields(error);
    // Why a normally permanent failure is retried: the user asked for it.
    let asked = match decision {
        Decision::Retry { asked: true, .. } => RetryOn::name_of(class)
            .map(|name| format!(" (retried: --retry-on {name})"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let msg = if verbose {
        let next = match decision {
            Decision::Retry { after, .. } => format!("retrying in {}", human(after)),
            Decision::Reject | Decision::GiveUp => "not retrying".to_string(),
        };
        format!(
            "attempt {attempt} at {}: {}; {next}{asked}",
            human(elapsed),
            attempt_error(error, target.conditions)
        )
    } else {
        format!(
            "waiting for {}{asked}",
            attempt_error(error, target.conditions)
        )
    };
    let (delay, reason) = match decision {
        Decision::Retry { after, asked } => {
            (Some(after), if asked { "retry_on" } else { "transient" })
        }
        Decision::Reject => (None, "permanent"),
        Decision::GiveUp => (None, "once"),
    };
    Record {
        level: None,
        event: "attempt_failed",
        msg,
        target: Some(self::target(target)),
        server: Some(server),
        class: Some(class),
        sqlstate,
        attempts: Some(attempt),
        elapsed: Some(elapsed),
        delay,
        answer: error.answer(),
        reason: Some(reason),
        ..Record::default()
    }
}

/// The periodic "still waiting" line.
pub fn still_waiting<'e>(
    target: &Target<'_>,
    elapsed: Duration,
    attempts: u32,
    last: &'e AttemptError,
) -> Record<'e> {
    let (server, class, sqlstate) = primary_fields(last);
    Record {
        level: Some(Level::Info),
        event: "still_waiting",
        msg: format!(
            "still waiting ({}, {attempts} attempts, last: {})",
            human(elapsed),
            summary(last)
        ),
        target: Some(self::target(target)),
        server: Some(server),
        class: Some(class),
        sqlstate,
        attempts: Some(attempts),
        elapsed: Some(elapsed),
        lag: lag_of(last),
        ..Record::default()
    }
}

/// The deadline passed (or the single `--once` attempt failed): the last cause and a hint.
fn not_ready<'e>(
    target: &Target<'_>,
    elapsed: Duration,
    attempts: u32,
    last: Option<&'e AttemptError>,
) -> Record<'e> {
    let label = self::target(target);
    let base = Record {
        level: Some(Level::Error),
        event: "not_ready",
        target: Some(label.clone()),
        attempts: Some(attempts),
        elapsed: Some(elapsed),
        ..Record::default()
    };
    let Some(error) = last else {
        return Record {
            msg: format!(
                "{label} not ready after {}: the first attempt did not finish; hint: {FIRST_ATTEMPT_UNFINISHED}",
                human(elapsed),
            ),
            class: Some(Class::Timeout),
            hint: Some(FIRST_ATTEMPT_UNFINISHED),
            ..base
        };
    };
    let (server, class, sqlstate) = primary_fields(error);
    Record {
        msg: format!(
            "not ready after {} ({}): {}; hint: {}",
            human(elapsed),
            attempts_text(attempts),
            attempt_error(error, target.conditions),
            hint_of(error)
        ),
        server: Some(server),
        class: Some(class),
        sqlstate,
        hint: Some(hint_of(error)),
        lag: lag_of(error),
        ..base
    }
}

fn attempts_text(attempts: u32) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    format!("{attempts} attempt{plural}")
}

/// The address that got furthest and why it failed, then the others with their class
/// (e.g. `localhost` resolving to `::1` and `127.0.0.1`).
pub fn attempt_error(error: &AttemptError, conditions: &[Condition]) -> String {
    let primary = error.primary();
    let mut text = format!(
        "{}: {}",
        server(&primary.server),
        describe(&primary.failure, primary.class, conditions)
    );
    let others: Vec<String> = error
        .others()
        .map(|o| format!("{}: {}", server(&o.server), o.class))
        .collect();
    if !others.is_empty() {
        text.push_str(&format!(" (also tried {})", others.join("; ")));
    }
    text
}

/// A short description of one failure, for the person at the terminal; `conditions` are the
/// target's, which a `NotMet` failure indexes.
pub fn describe(failure: &Failure, class: Class, conditions: &[Condition]) -> String {
    match failure {
        Failure::Io {
            phase: Phase::Resolve,
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
        Failure::OverLimit { phase, limit } => format!("{class} ({} during {phase})", over(*limit)),
        Failure::NoPassword => format!(
            "{class}: the server asks for a password but none is set (PGPASSWORD, password=, a password file, or the URI)"
        ),
        Failure::UnsupportedAuth(method) => format!("{class}: {}", auth_method(method)),
        Failure::AuthNotAllowed {
            require_auth,
            requested,
        } => {
            let asked = match requested {
                None => "let the client in without authenticating it".to_string(),
                Some(AuthMethod::Sasl(mechanisms)) => {
                    format!("asked for SASL ({})", mechanisms.join(", "))
                }
                Some(AuthMethod::Code(code)) => match AUTH_METHODS.iter().find(|(c, _)| c == code)
                {
                    Some((_, name)) => format!("asked for {name} authentication"),
                    None => format!("asked for authentication method {code}"),
                },
            };
            format!(
                "{class}: the server {asked}, which require_auth={require_auth} does not allow (nothing was sent)"
            )
        }
        Failure::WrongPeer { want, got, uid } => {
            let got = got.as_deref().map_or(format!("user ID {uid}"), |g| format!("\"{g}\""));
            format!("{class}: requirepeer is \"{want}\", but the server runs as {got}")
        }
        Failure::ChannelBindingRequired { requested } => {
            let asked = match requested {
                Some(AuthMethod::Sasl(mechanisms)) => format!("SASL ({})", mechanisms.join(", ")),
                Some(AuthMethod::Code(code)) => match AUTH_METHODS.iter().find(|(c, _)| c == code) {
                    Some((_, name)) => format!("{name} authentication"),
                    None => format!("authentication method {code}"),
                },
                None => "no authentication".to_string(),
            };
            format!(
                "{class}: channel binding is required (channel_binding=require), but the server asked for {asked}, not SCRAM-SHA-256-PLUS (nothing was sent)"
            )
        }
        Failure::ClientAuth { detail } => format!("{class}: {detail}"),
        Failure::Tls {
            detail,
            sslmode: Some(mode),
            host,
        } => format!("{class}: {detail} (sslmode={mode}, host {host})"),
        Failure::Tls { detail, .. } => format!("{class}: {detail}"),
        Failure::TlsRefused => {
            format!("{class}: the server does not support TLS, which the sslmode requires")
        }
        Failure::WrongKind { want, got } => format!("is a {got} server (waiting for {want})"),
        Failure::NotMet { check, got } => not_met(conditions.get(*check), got),
        Failure::Token { source, problem } => {
            format!("{class}: {}: {}", token_source(*source), token_problem(problem))
        }
    }
}

/// `table public.users not met: false`, `migrations flyway:2 not met: version 2 is not applied yet`.
fn not_met(condition: Option<&Condition>, got: &NotMet) -> String {
    let label = condition.map_or("a condition".to_string(), self::condition);
    let why = match got {
        NotMet::NoRow => "no row".to_string(),
        NotMet::Null => "NULL".to_string(),
        NotMet::False => "false".to_string(),
        NotMet::NoHistory => "no migration recorded yet".to_string(),
        NotMet::State(why) => why.clone(),
        NotMet::NotStreaming => {
            return "standby has no WAL receiver: it is not streaming from a primary".to_string()
        }
        NotMet::Lagging { bytes, ms } => {
            return format!(
                "{label} not met: standby is {} behind",
                lag_text(*bytes, *ms)
            )
        }
        NotMet::VersionNotApplied => {
            let version = match condition {
                Some(Condition::Migrations(m)) => m.version().unwrap_or_default(),
                _ => "",
            };
            format!("version {version} is not applied yet")
        }
    };
    format!("{label} not met: {why}")
}

/// Authentication methods by their message code.
const AUTH_METHODS: &[(u32, &str)] = &[
    (2, "Kerberos V5"),
    (3, "cleartext password"),
    (5, "MD5 password"),
    (6, "SCM credentials"),
    (7, "GSSAPI"),
    (9, "SSPI"),
];

/// What the server asked for that pgwait cannot do, in words.
fn auth_method(method: &AuthMethod) -> String {
    match method {
        AuthMethod::Sasl(mechanisms) if mechanisms.iter().any(|m| m == "OAUTHBEARER") => {
            "the server asks for OAuth (OAUTHBEARER), whose device flow needs a person at a browser; \
             a startup gate cannot run it: let pgwait log in as a role with a password or \
             certificate (a pg_hba.conf line of its own)"
                .to_string()
        }
        AuthMethod::Sasl(mechanisms) => format!(
            "the server offers only the SASL mechanism(s) {}; pgwait supports SCRAM-SHA-256 and SCRAM-SHA-256-PLUS",
            mechanisms.join(", ")
        ),
        AuthMethod::Code(code) => match AUTH_METHODS.iter().find(|(c, _)| c == code) {
            Some((_, name)) => {
                format!("the server asks for {name} authentication, which pgwait does not support")
            }
            None => format!(
                "the server asks for an unknown authentication method (code {code})"
            ),
        },
    }
}

/// The short form of an attempt's failure for the status line: SQLSTATE or class.
fn summary(error: &AttemptError) -> String {
    let primary = error.primary();
    match &primary.failure {
        Failure::Server {
            sqlstate, message, ..
        } => format!("{sqlstate} {message}"),
        _ => primary.class.to_string(),
    }
}

/// The bound a peer crossed, with its size.
fn over(limit: Limit) -> String {
    match limit {
        Limit::MessageLength => format!(
            "sent a message length of 0-3 bytes or over {}",
            size(probe::MAX_MESSAGE as u64)
        ),
        Limit::BeforeReady => format!(
            "sent over {} before ReadyForQuery",
            size(probe::MAX_BEFORE_READY)
        ),
        Limit::Session => format!("sent over {} in one session", size(probe::MAX_SESSION)),
    }
}

/// `64 KiB`, `1 MiB`, `512 bytes`: whole binary units, rounded down (bounds and backlogs).
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The postgres image's init phase: reachable over the socket only, restarted afterwards.
const SOCKET_ONLY: &str = "the server answered over its Unix socket but listens on no TCP address (listen_addresses is empty), as the official postgres image's temporary server does while init scripts run; it restarts before the real server is up: healthchecks should use -h localhost";

/// When the deadline passed before any attempt finished, nothing says why yet.
const FIRST_ATTEMPT_UNFINISHED: &str = "no attempt finished in time: check the host, the network and --connect-timeout, or allow a longer --timeout";

/// A connection was made, so the network is fine: the peer itself is silent.
const CONNECTED_NO_ANSWER: &str = "the connection was made but the server did not answer in time: it may be hung or overloaded, or a pooler (PgBouncer) may be holding the connection while its backend is unavailable";

/// The hint for an attempt's failure: by class, except where the failure tells more.
pub fn hint_of(error: &AttemptError) -> &'static str {
    let primary = error.primary();
    match &primary.failure {
        Failure::TimedOut {
            phase: Phase::Startup | Phase::Query,
        } => CONNECTED_NO_ANSWER,
        Failure::OverLimit {
            phase: Phase::Query,
            limit: Limit::Session,
        } => "the reply was larger than pgwait reads: make --query return one row (LIMIT 1)",
        Failure::Server { sqlstate, .. } if sqlstate == SYNTAX_ERROR => {
            "the --query has a syntax error: it was sent as written; test it with psql"
        }
        Failure::Server {
            sqlstate, message, ..
        } if sqlstate == "28000" && message.contains("pg_hba.conf") => {
            "no pg_hba.conf line lets this connection in (its host, user, database, with or without TLS): add one and reload the server; pgwait --diagnose names the line"
        }
        Failure::Token {
            problem: TokenProblem::ClockSkew,
            ..
        } => "this machine's clock is off: signed requests are refused; fix its time (NTP)",
        Failure::Token { source, .. } => token_hint(*source),
        Failure::ChannelBindingRequired { .. } => {
            "channel binding needs SCRAM-SHA-256-PLUS: scram-sha-256 authentication over TLS, with the role's password stored as SCRAM (password_encryption = scram-sha-256); or lower channel_binding"
        }
        _ => hint(primary.class),
    }
}

/// Which token source, as the cloud's documentation names it.
fn token_source(source: TokenSource) -> &'static str {
    match source {
        TokenSource::NoSource(Cloud::Aws) => "AWS credentials",
        TokenSource::NoSource(Cloud::Azure) => "Azure credentials",
        TokenSource::NoSource(Cloud::Gcp) => "Google credentials",
        TokenSource::AwsRegion => "AWS region",
        TokenSource::AwsEnvironment => "AWS credentials from the environment",
        TokenSource::AwsWebIdentity => "AWS web identity (STS AssumeRoleWithWebIdentity)",
        TokenSource::AwsContainer => "AWS container credentials",
        TokenSource::AwsImds => "AWS instance metadata (IMDSv2)",
        TokenSource::AzureWorkloadIdentity => "Azure workload identity (Entra token endpoint)",
        TokenSource::AzureAppService => "Azure App Service managed identity",
        TokenSource::AzureImds => "Azure managed identity (IMDS)",
        TokenSource::GcpKeyFile => "Google credentials file (GOOGLE_APPLICATION_CREDENTIALS)",
        TokenSource::GcpMetadata => "Google metadata server",
        TokenSource::Command => "--password-command",
    }
}

/// What was wrong with a token source's answer (never the answer: it may hold a secret).
fn token_problem(problem: &TokenProblem) -> String {
    match problem {
        TokenProblem::Unreachable { kind } => format!("cannot reach it ({kind})"),
        TokenProblem::TimedOut => "no answer in time".to_string(),
        TokenProblem::Tls { detail } => format!("TLS failed: {detail}"),
        TokenProblem::PlainHttp { host } => format!(
            "refusing plain http to {host}: a token must not cross a network in clear (use https)"
        ),
        TokenProblem::Status { code } => format!("answered HTTP {code}"),
        TokenProblem::NotReadyYet { code } => format!("not ready yet (HTTP {code})"),
        TokenProblem::ClockSkew => {
            "refused the request as signed at the wrong time (clock skew)".to_string()
        }
        TokenProblem::Malformed { what } => format!("unusable answer: {what}"),
        TokenProblem::Missing { what } => what.clone(),
        TokenProblem::CommandNotStarted {
            kind: std::io::ErrorKind::NotFound,
        } => "cannot start it: no such program (it is run without a shell: give a path or a program on PATH)".to_string(),
        TokenProblem::CommandNotStarted { kind } => format!("cannot start it ({kind})"),
        TokenProblem::CommandFailed { status, stderr } if stderr.is_empty() => status.clone(),
        TokenProblem::CommandFailed { status, stderr } => format!("{status}: {stderr}"),
        TokenProblem::CommandEmpty => "printed no password (its first line is empty)".to_string(),
    }
}

/// Where to look when a token source fails.
fn token_hint(source: TokenSource) -> &'static str {
    match source {
        TokenSource::NoSource(Cloud::Aws) => "give pgwait the app's AWS identity: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), ECS or EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_*), or an instance role",
        TokenSource::NoSource(Cloud::Azure) => "give pgwait the app's managed or workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE)",
        TokenSource::NoSource(Cloud::Gcp) => "give pgwait the app's Google identity: Workload Identity on GKE, or GOOGLE_APPLICATION_CREDENTIALS",
        TokenSource::AwsRegion => "give --aws-region or set AWS_REGION",
        TokenSource::AwsEnvironment => "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
        TokenSource::AwsWebIdentity => "check AWS_ROLE_ARN, the role's trust policy for this service account (IRSA), and AWS_WEB_IDENTITY_TOKEN_FILE",
        TokenSource::AwsContainer => "check the task role or EKS Pod Identity association, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)",
        TokenSource::AwsImds => "attach an IAM role to the instance; containers need the IMDSv2 hop limit at 2 (HttpPutResponseHopLimit); AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the address",
        TokenSource::AzureWorkloadIdentity => "check AZURE_CLIENT_ID, AZURE_TENANT_ID and the identity's federated credential for this service account (AZURE_FEDERATED_TOKEN_FILE)",
        TokenSource::AzureAppService => "turn on the app's managed identity (IDENTITY_ENDPOINT, IDENTITY_HEADER); AZURE_CLIENT_ID selects a user-assigned one",
        TokenSource::AzureImds => "assign a managed identity to the VM; AZURE_CLIENT_ID selects a user-assigned one",
        TokenSource::GcpKeyFile => "check GOOGLE_APPLICATION_CREDENTIALS: a service-account key file readable here, whose account exists and is enabled",
        TokenSource::GcpMetadata => "on GKE enable Workload Identity and bind the Kubernetes service account to a Google service account; GCE_METADATA_HOST overrides the server",
        TokenSource::Command => "run the --password-command by hand: it must print the password on its first line and exit 0",
    }
}

/// What to check, per class (in the spirit of the seed article on refused vs timeout).
pub fn hint(class: Class) -> &'static str {
    match class {
        Class::Refused => "nothing is listening there: is the server running, and listening on that address and port (listen_addresses, port)?",
        Class::Unresolvable => "the host name does not resolve: check its spelling, or that the database service or container exists",
        Class::Unreachable => "no route to the server: check the address and the network between here and there",
        Class::Timeout => "no answer to the connection request: packets may be dropped; check firewalls and security groups between here and the server",
        Class::Dropped => "the server closed the connection before answering: check the server log (a restart, a crash, or a limit such as a pooler's)",
        Class::Starting => "the server is starting up or replaying WAL (a crash recovery, a standby catching up): pgwait polls it gently meanwhile; a longer --timeout may help",
        Class::NotReady => "the server is not accepting connections yet (a standby with hot_standby off, shutting down): a longer --timeout may help",
        Class::Overloaded => "the server has no free connection slots (max_connections) or resources",
        Class::WrongKind => "the server works but is not of the kind target_session_attrs asks for: waiting for a promotion or failover",
        Class::Tls => "check sslmode, sslrootcert and the server's certificate (for verify-full its names must include the host), or whether the server has ssl = on",
        Class::Auth => "check the user name and password (-U/PGUSER, PGPASSWORD) and pg_hba.conf; --retry-on auth waits for the role to be created",
        Class::NoDatabase => "create the database or fix -d/PGDATABASE; --retry-on nodb waits for it to be created",
        Class::NotPostgres => "the peer does not speak PostgreSQL's protocol: check the host and port",
        Class::SchemaNotReady => "a condition refers to a table, column, schema or function that does not exist yet: waiting for the migrations that create it",
        Class::Lagging => "the standby is not streaming, or is further behind than --max-lag: check its WAL receiver (pg_stat_wal_receiver), the primary and the network; replay may be paused (pg_is_wal_replay_paused())",
        Class::NotMet => "the condition does not hold yet (migrations or seed data still running?); note that a count(*) query needs \"> 0\" to mean anything",
        Class::Privileges => "the user lacks a privilege the condition needs: GRANT it, or --retry-on privileges waits for the grant",
        Class::ServerError => "the server rejected the connection: see the SQLSTATE and the server log",
        Class::Credentials => "the token source is not answering yet; pgwait keeps asking",
        Class::CredentialsRefused => "the token source refused: check the settings it names",
    }
}

/// A standby's backlog: bytes received but not replayed, and the age of the last replayed
/// transaction (either may be unknown).
fn lag_text(bytes: Option<u64>, ms: Option<u64>) -> String {
    let bytes = bytes.map_or("unknown bytes".to_string(), size);
    let ms = ms.map_or("an unknown time".to_string(), |m| format!("{m} ms"));
    format!("{bytes} to replay, {ms}")
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
