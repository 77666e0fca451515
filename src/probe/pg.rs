//! The PostgreSQL part of an attempt, over an already connected stream: TLS negotiation,
//! startup and authentication, the readiness query over the simple query protocol (so it works
//! through PgBouncer in transaction mode), then a clean Terminate so the server logs no
//! "unexpected EOF".
//!
//! This is the only module that touches tokio-postgres types; errors leave it as [`Failure`].

use std::error::Error as _;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_postgres::config::{
    ChannelBinding as PgChannelBinding, SslMode as PgSslMode, SslNegotiation,
};
use tokio_postgres::tls::TlsConnect;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use futures_util::StreamExt;

use super::guard::{self, Exceeded, Observed, ReplyGuard, Seen};
use super::tls_stream::RustlsConnect;
use super::within;
use crate::classify::{AuthMethod, Failure, Limit, NotMet, Phase};
use crate::condition::{self, Condition};
use crate::conninfo::{AuthViolation, ChannelBinding, ConnParams, Secret, SessionAttrs};
use crate::migrations::Migrations;
use crate::tls::Tls;

/// How to carry the session.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    Plain,
    /// TLS; when not `required`, a server without TLS is used in plain text (`prefer`).
    Tls {
        tls: &'a Tls,
        required: bool,
    },
}

/// Everything one connection needs.
pub struct Session<'a> {
    pub params: &'a ConnParams,
    pub password: Option<Secret>,
    pub transport: Transport<'a>,
    /// The host name, for TLS verification and SNI.
    pub host: &'a str,
    pub attrs: SessionAttrs,
    /// What must hold besides the session kind (`--query`, `--table`, `--extension`).
    pub conditions: &'a [Condition],
    /// Over a Unix socket: also ask whether the server listens on TCP at all.
    pub over_socket: bool,
    /// `--diagnose`: also ask the server's version, recovery state and listen_addresses.
    pub facts: bool,
}

/// What a successful session learned besides "ready".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// Reached over a socket, and `listen_addresses` is empty: the official image's temporary
    /// init-phase server, which restarts before the real one is up.
    pub socket_only: bool,
    /// `--max-lag`: the standby's backlog when it was judged within the bounds.
    pub lag: Option<condition::Lag>,
    /// `--diagnose`: what the server says about itself, when asked.
    pub facts: Option<super::ServerFacts>,
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// How far a failed session got, for libpq's choice of what to try next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// The server agreed to TLS (or direct TLS was begun).
    pub encrypted: bool,
    /// The longest wait for the server's reply to a request (see `Seen::longest_wait`).
    pub longest_wait: Option<std::time::Duration>,
}

/// Negotiates TLS as the transport says, then authenticates and checks the session kind.
pub async fn check<S>(
    stream: S,
    session: &Session<'_>,
    deadline: Instant,
) -> Result<Answer, (Failure, Reached)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let observed = Observed::default();
    let mut encrypted = false;
    let result = negotiate(stream, session, deadline, &observed, &mut encrypted).await;
    result.map_err(|failure| {
        let longest_wait = guard::seen(&observed).longest_wait;
        (
            failure,
            Reached {
                encrypted,
                longest_wait,
            },
        )
    })
}

async fn negotiate<S>(
    mut stream: S,
    session: &Session<'_>,
    deadline: Instant,
    observed: &Observed,
    encrypted: &mut bool,
) -> Result<Answer, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let require_auth = &session.params.require_auth;
    let plain =
        |stream, observed: Observed| ReplyGuard::new(stream, observed, require_auth.clone());
    let Transport::Tls { tls, required } = session.transport else {
        let guarded = plain(stream, observed.clone());
        return startup(guarded, NoTls, false, session, deadline, observed).await;
    };
    if !tls.direct {
        // pgwait asks for TLS itself so it knows exactly what the server answered.
        let reply = within(deadline, Phase::Startup, async {
            let asked = Instant::now();
            let reply = ssl_request(&mut stream)
                .await
                .map_err(|e| Failure::io(Phase::Startup, &e));
            guard::exchanged(observed, asked.elapsed());
            reply
        });
        match reply.await? {
            b'S' => {}
            b'N' if !required => {
                let guarded = plain(stream, observed.clone());
                return startup(guarded, NoTls, false, session, deadline, observed).await;
            }
            b'N' => return Err(Failure::TlsRefused),
            // The postmaster itself can answer with an error (e.g. it cannot fork): read it.
            b'E' => return Err(read_error_response(&mut stream, deadline).await),
            _ => {
                return Err(Failure::Protocol {
                    phase: Phase::Startup,
                })
            }
        }
    }
    *encrypted = true;
    let connector = RustlsConnect {
        config: tls.config.clone(),
        host: session.host.to_string(),
        observed: observed.clone(),
        cert_required: tls.cert_required,
        require_auth: session.params.require_auth.clone(),
    };
    startup(stream, connector, true, session, deadline, observed).await
}

/// Reads an ErrorResponse whose type byte was already consumed, into a `Failure::Server`.
async fn read_error_response<S: AsyncRead + Unpin>(stream: &mut S, deadline: Instant) -> Failure {
    let read = async {
        let len = stream.read_u32().await? as usize;
        if !(4..=30_000).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad ErrorResponse length",
            ));
        }
        let mut body = vec![0u8; len - 4];
        stream.read_exact(&mut body).await?;
        Ok(body)
    };
    let protocol = |_| Failure::Protocol {
        phase: Phase::Startup,
    };
    let body = match within(deadline, Phase::Startup, async {
        read.await.map_err(protocol)
    })
    .await
    {
        Ok(body) => body,
        Err(failure) => return failure,
    };
    let field = |code: u8| {
        body.split(|b| *b == 0)
            .find(|f| f.first() == Some(&code))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
    };
    match field(b'C') {
        Some(sqlstate) => Failure::Server {
            phase: Phase::Startup,
            sqlstate,
            message: field(b'M').unwrap_or_default(),
        },
        None => Failure::Protocol {
            phase: Phase::Startup,
        },
    }
}

/// Sends PostgreSQL's SSLRequest and reads the server's one-byte answer (`S`, `N`, or not one).
pub async fn ssl_request<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<u8> {
    stream.write_all(&SSL_REQUEST).await?;
    let mut reply = [0u8; 1];
    stream.read_exact(&mut reply).await?;
    Ok(reply[0])
}

/// Startup, authentication and the readiness query; everything ends by `deadline`.
async fn startup<S, T>(
    stream: S,
    tls: T,
    use_tls: bool,
    session: &Session<'_>,
    deadline: Instant,
    observed: &Observed,
) -> Result<Answer, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: TlsConnect<S>,
    T::Stream: Send,
{
    let config = client_config(session, use_tls);
    let connect = async {
        config.connect_raw(stream, tls).await.map_err(|e| {
            let seen = guard::seen(observed);
            convert(&e, Phase::Startup, session, &seen)
        })
    };
    let (client, connection) = within(deadline, Phase::Startup, connect).await?;
    let query = async move {
        let result = checks(&client, session).await;
        // Dropping the last client makes the connection send Terminate and finish.
        drop(client);
        result
    };
    let driven = async { Ok(drive(query, connection, observed).await) };
    let (result, ended, seen) = within(deadline, Phase::Query, driven).await?;
    match (result, ended) {
        // The connection's own error says why (a bound crossed, a reset); the query's would
        // only say "closed".
        (Err(e), Some(Err(cause))) if e.is_closed() => {
            Err(convert(&cause, Phase::Query, session, &seen))
        }
        (Err(e), _) => Err(convert(&e, Phase::Query, session, &seen)),
        (Ok(checked), _) => checked,
    }
}

/// The session kind (or `SELECT 1` when nothing else is asked), then each condition in turn,
/// one query each on this connection. The outer error is the client's; the inner, a check that
/// did not pass.
async fn checks(
    client: &tokio_postgres::Client,
    session: &Session<'_>,
) -> Result<Result<Answer, Failure>, tokio_postgres::Error> {
    // A condition's query proves as much as SELECT 1 does.
    if session.attrs != SessionAttrs::Any || session.conditions.is_empty() {
        let row = first_row(client, readiness_query(session.attrs)).await?;
        // try_get: a hostile peer may send a row with fewer columns than asked for.
        let columns = row
            .as_ref()
            .map(|r| [0, 1].map(|i| r.try_get(i).ok().flatten()));
        if let Err(failure) = verify(columns, session.attrs) {
            return Ok(Err(failure));
        }
    }
    let mut answer = Answer::default();
    for (check, condition) in session.conditions.iter().enumerate() {
        if let Condition::MaxLag(limits) = condition {
            let row = first_row(client, condition::LAG_SQL).await?;
            let columns =
                [0, 1, 2, 3].map(|i| row.as_ref().and_then(|r| r.try_get(i).ok().flatten()));
            match condition::judge_lag(limits, columns) {
                Ok(lag) => answer.lag = Some(lag),
                Err(got) => return Ok(Err(Failure::NotMet { check, got })),
            }
            continue;
        }
        if let Condition::Migrations(migrations) = condition {
            if let Some(got) = migration_state(client, migrations).await? {
                return Ok(Err(Failure::NotMet { check, got }));
            }
            continue;
        }
        let row = first_row(client, &condition.sql()).await?;
        let got = match row.as_ref().map(|r| r.try_get(0)) {
            None => Some(NotMet::NoRow),
            // A row without columns has no value either.
            Some(Ok(None) | Err(_)) => Some(NotMet::Null),
            Some(Ok(value)) if !condition::holds(value) => Some(NotMet::False),
            Some(Ok(_)) => None,
        };
        if let Some(got) = got {
            return Ok(Err(Failure::NotMet { check, got }));
        }
    }
    if session.facts {
        answer.facts = Some(server_facts(client).await?);
    }
    if session.over_socket {
        let row = first_row(
            client,
            "SELECT pg_catalog.current_setting('listen_addresses')",
        )
        .await?;
        let listen = row.as_ref().and_then(|r| r.try_get(0).ok().flatten());
        answer.socket_only = listen.is_some_and(|l| l.trim().is_empty());
    }
    Ok(Ok(answer))
}

/// The server's version, whether it is in recovery, and its listen_addresses (one row; a
/// hostile peer's missing columns are empty).
async fn server_facts(
    client: &tokio_postgres::Client,
) -> Result<super::ServerFacts, tokio_postgres::Error> {
    let sql = "SELECT pg_catalog.version(), pg_catalog.pg_is_in_recovery()::text, \
               pg_catalog.current_setting('listen_addresses')";
    let row = first_row(client, sql).await?;
    let column = |i| {
        row.as_ref()
            .and_then(|r| r.try_get(i).ok().flatten())
            .unwrap_or_default()
            .to_string()
    };
    Ok(super::ServerFacts {
        version: column(0),
        in_recovery: column(1) == "true",
        listen_addresses: column(2),
    })
}

/// How long a failed session may take to close: a clean Terminate is for servers that answered.
const CLOSE_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs the query and the connection together until the query is answered, then lets the
/// connection finish (send Terminate) — only briefly after a failure, so a peer that stops
/// talking mid-reply cannot turn a clear failure into a timeout. Returns the query's result,
/// the connection's if it ended, and what the guard had seen when the query ended.
async fn drive<Q, C, T>(
    query: Q,
    connection: C,
    observed: &Observed,
) -> (
    Result<T, tokio_postgres::Error>,
    Option<Result<(), tokio_postgres::Error>>,
    Seen,
)
where
    Q: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    C: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    let mut query = std::pin::pin!(query);
    let mut connection = Box::pin(connection);
    let first = tokio::select! {
        result = &mut query => Ok(result),
        ended = &mut connection => Err(ended),
    };
    let seen = guard::seen(observed);
    let (result, ended) = match first {
        // The connection ended first: once it is dropped the query's channel is closed and the
        // query answers at once.
        Err(ended) => {
            drop(connection);
            (query.await, Some(ended))
        }
        Ok(result @ Ok(_)) => (result, Some(connection.await)),
        Ok(result @ Err(_)) => {
            let ended = tokio::time::timeout(CLOSE_AFTER_FAILURE, connection).await;
            (result, ended.ok())
        }
    };
    (result, ended, seen)
}

/// A migration tool's history: its state (`ok` or why not), then whether the version is
/// applied; `None` when both hold.
async fn migration_state(
    client: &tokio_postgres::Client,
    migrations: &Migrations,
) -> Result<Option<NotMet>, tokio_postgres::Error> {
    let row = first_row(client, &migrations.state_sql()).await?;
    match row.as_ref().and_then(|r| r.try_get(0).ok().flatten()) {
        Some("ok") => {}
        Some(why) => return Ok(Some(NotMet::State(why.to_string()))),
        None => return Ok(Some(NotMet::NoHistory)),
    }
    let Some(sql) = migrations.applied_sql() else {
        return Ok(None);
    };
    let row = first_row(client, &sql).await?;
    let applied = row.as_ref().and_then(|r| r.try_get(0).ok().flatten());
    Ok((!condition::holds(applied)).then_some(NotMet::VersionNotApplied))
}

/// Runs `sql` and keeps only its first row: the rest is read and dropped as it streams, so a
/// flood of rows costs no memory.
async fn first_row(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Option<tokio_postgres::SimpleQueryRow>, tokio_postgres::Error> {
    let mut stream = std::pin::pin!(client.simple_query_raw(sql).await?);
    let mut first = None;
    while let Some(message) = stream.next().await {
        if let (None, SimpleQueryMessage::Row(row)) = (&first, message?) {
            first = Some(row);
        }
    }
    Ok(first)
}

fn client_config(session: &Session<'_>, use_tls: bool) -> tokio_postgres::Config {
    let params = session.params;
    let mut config = tokio_postgres::Config::new();
    config
        .user(&params.user)
        .dbname(&params.dbname)
        .application_name(&params.application_name)
        .channel_binding(match params.channel_binding {
            ChannelBinding::Disable => PgChannelBinding::Disable,
            ChannelBinding::Prefer => PgChannelBinding::Prefer,
            ChannelBinding::Require => PgChannelBinding::Require,
        });
    if use_tls {
        // SSLRequest was already answered 'S' (or direct TLS was asked for): go straight to TLS.
        config
            .ssl_mode(PgSslMode::Require)
            .ssl_negotiation(SslNegotiation::Direct);
    } else {
        config.ssl_mode(PgSslMode::Disable);
    }
    if let Some(password) = &session.password {
        config.password(password.expose());
    }
    if let Some(options) = &params.options {
        config.options(options);
    }
    config
}

fn readiness_query(attrs: SessionAttrs) -> &'static str {
    match attrs {
        SessionAttrs::Any => "SELECT 1",
        _ => "SELECT pg_catalog.pg_is_in_recovery()::text, pg_catalog.current_setting('transaction_read_only')",
    }
}

/// Checks the readiness query's first row (its first two columns, `None` without a row): `1`
/// for any server, else the server's kind against `target_session_attrs`.
fn verify(columns: Option<[Option<&str>; 2]>, attrs: SessionAttrs) -> Result<(), Failure> {
    let Some(columns) = columns else {
        return Err(Failure::Protocol {
            phase: Phase::Query,
        });
    };
    let column = |i: usize| columns[i];
    let (in_recovery, read_only) = match attrs {
        SessionAttrs::Any => {
            return if column(0) == Some("1") {
                Ok(())
            } else {
                Err(Failure::Protocol {
                    phase: Phase::Query,
                })
            };
        }
        _ => (column(0) == Some("true"), column(1) == Some("on")),
    };
    let (ok, want, got) = match attrs {
        SessionAttrs::ReadWrite => (!read_only, "read-write", "read-only"),
        SessionAttrs::ReadOnly => (read_only, "read-only", "read-write"),
        SessionAttrs::Primary => (!in_recovery, "primary", "standby"),
        SessionAttrs::Standby | SessionAttrs::PreferStandby => (in_recovery, "standby", "primary"),
        SessionAttrs::Any => (true, "", ""),
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::WrongKind { want, got })
    }
}

/// Converts a client error by its structure: SQLSTATE, closed, a bound crossed, TLS, io kind —
/// never by text.
fn convert(e: &tokio_postgres::Error, phase: Phase, session: &Session<'_>, seen: &Seen) -> Failure {
    if let Some(db) = e.as_db_error() {
        return Failure::Server {
            phase,
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
        };
    }
    if e.is_closed() {
        return Failure::Closed { phase };
    }
    let Some(source) = e.source() else {
        // Only an unexpected message carries no cause at all.
        return Failure::Protocol { phase };
    };
    let io = source.downcast_ref::<io::Error>();
    if let Some(violation) = io.and_then(guard::disallowed) {
        return not_allowed(violation, session, seen);
    }
    match io {
        // A message that ends before its fields do reads as "unexpected end of file" although
        // the connection is still open: that is a malformed message, not a dropped connection.
        Some(io) if io.kind() == io::ErrorKind::UnexpectedEof && !seen.eof => {
            Failure::Protocol { phase }
        }
        Some(io) => match guard::exceeded(io) {
            Some(Exceeded::NotAReply) => Failure::Protocol { phase },
            Some(Exceeded::MessageLength) => over(phase, Limit::MessageLength),
            Some(Exceeded::BeforeReady) => over(phase, Limit::BeforeReady),
            Some(Exceeded::Session) => over(phase, Limit::Session),
            // rustls reports through io errors; dig its error out before looking at the io kind.
            None => match io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls) => tls_failure(tls, session),
                None => Failure::io(phase, io),
            },
        },
        None => client_auth(e, session, seen),
    }
}

/// A request `require_auth` forbids: what the server asked for (from the guard's record).
fn not_allowed(violation: AuthViolation, session: &Session<'_>, seen: &Seen) -> Failure {
    let requested = match violation {
        AuthViolation::NotCompleted => None,
        AuthViolation::Requested(_) => seen.auth.as_ref().map(|a| match a.code {
            10 => AuthMethod::Sasl(a.mechanisms.clone()),
            code => AuthMethod::Code(code),
        }),
    };
    Failure::AuthNotAllowed {
        require_auth: session
            .params
            .require_auth
            .as_ref()
            .map_or(String::new(), |r| r.text.clone()),
        requested,
    }
}

fn over(phase: Phase, limit: Limit) -> Failure {
    Failure::OverLimit { phase, limit }
}

fn tls_failure(error: &rustls::Error, session: &Session<'_>) -> Failure {
    Failure::Tls {
        detail: error.to_string(),
        sslmode: match session.transport {
            Transport::Tls { tls, .. } => Some(tls.mode.name()),
            Transport::Plain => None,
        },
        host: session.host.to_string(),
    }
}

/// Authentication that failed on our side: a method pgwait cannot do (named from what the
/// server sent), or else the likeliest cause, a password we don't have.
fn client_auth(e: &tokio_postgres::Error, session: &Session<'_>, seen: &Seen) -> Failure {
    if let Some(method) = seen.auth.as_ref().and_then(unsupported_method) {
        return Failure::UnsupportedAuth(method);
    }
    if session.params.channel_binding == ChannelBinding::Require {
        let requested = seen.auth.as_ref().map(|a| match a.code {
            10 => AuthMethod::Sasl(a.mechanisms.clone()),
            code => AuthMethod::Code(code),
        });
        let plus = matches!(&requested, Some(AuthMethod::Sasl(m)) if m.iter().any(|m| m.ends_with("-PLUS")));
        if !plus {
            return Failure::ChannelBindingRequired { requested };
        }
    }
    if session.password.is_none() {
        return Failure::NoPassword;
    }
    Failure::ClientAuth {
        detail: e.to_string(),
    }
}

/// The Authentication message codes pgwait answers: none (0), cleartext (3), MD5 (5), SASL (10).
const AUTH_CODES_SPOKEN: [u32; 4] = [0, 3, 5, 10];

/// What the server asked for that pgwait cannot do, if anything.
fn unsupported_method(request: &guard::AuthRequest) -> Option<AuthMethod> {
    const SCRAM: [&str; 2] = ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"];
    match request.code {
        10 if !request
            .mechanisms
            .iter()
            .any(|m| SCRAM.contains(&m.as_str())) =>
        {
            Some(AuthMethod::Sasl(request.mechanisms.clone()))
        }
        code if !AUTH_CODES_SPOKEN.contains(&code) => Some(AuthMethod::Code(code)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conninfo::{Defaults, Origin, Settings};

    #[test]
    fn the_session_kind_is_checked_against_target_session_attrs() {
        use SessionAttrs::*;
        let primary = Some([Some("false"), Some("off")]);
        let standby = Some([Some("true"), Some("on")]);
        let read_only_primary = Some([Some("false"), Some("on")]);
        let wrong = |want, got| Err(Failure::WrongKind { want, got });
        let table = [
            (Any, Some([Some("1"), None]), Ok(())),
            (ReadWrite, primary, Ok(())),
            (ReadWrite, standby, wrong("read-write", "read-only")),
            (
                ReadWrite,
                read_only_primary,
                wrong("read-write", "read-only"),
            ),
            (ReadOnly, standby, Ok(())),
            (ReadOnly, primary, wrong("read-only", "read-write")),
            (Primary, read_only_primary, Ok(())),
            (Primary, standby, wrong("primary", "standby")),
            (Standby, standby, Ok(())),
            (PreferStandby, primary, wrong("standby", "primary")),
        ];
        for (attrs, columns, want) in table {
            assert_eq!(verify(columns, attrs), want, "{attrs:?} {columns:?}");
        }
        // No row, a short row, or anything but 1 is not a PostgreSQL answer.
        let protocol = Err(Failure::Protocol {
            phase: Phase::Query,
        });
        for columns in [None, Some([None, None]), Some([Some("2"), None])] {
            assert_eq!(verify(columns, Any), protocol, "{columns:?}");
        }
    }

    #[test]
    fn only_methods_pgwait_cannot_answer_are_unsupported() {
        let request = |code, mechanisms: &[&str]| guard::AuthRequest {
            code,
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
        };
        let sasl = |m: &[&str]| AuthMethod::Sasl(m.iter().map(|s| s.to_string()).collect());
        let table = [
            (request(0, &[]), None),
            (request(3, &[]), None),
            (request(5, &[]), None),
            (request(10, &["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]), None),
            (request(10, &["SCRAM-SHA-256"]), None),
            (request(10, &["OAUTHBEARER"]), Some(sasl(&["OAUTHBEARER"]))),
            (request(7, &[]), Some(AuthMethod::Code(7))),
            (request(9, &[]), Some(AuthMethod::Code(9))),
            (request(99, &[]), Some(AuthMethod::Code(99))),
        ];
        for (request, want) in table {
            assert_eq!(unsupported_method(&request), want, "{request:?}");
        }
    }

    fn params(pairs: &[(&str, &str)]) -> ConnParams {
        let mut settings = Settings::default();
        for (k, v) in pairs {
            settings.set(k, v.to_string(), Origin::DbnameArg).unwrap();
        }
        let defaults = Defaults {
            user: "os_user".into(),
            home: None,
            socket_dir_exists: false,
            system_roots: None,
        };
        settings.resolve(&defaults).unwrap()
    }

    #[test]
    fn the_startup_packet_carries_the_settings_and_tls_is_already_decided() {
        let params = params(&[
            ("user", "app"),
            ("dbname", "shop"),
            ("application_name", "gate"),
            ("options", "-c search_path=app"),
            ("channel_binding", "require"),
        ]);
        let session = Session {
            params: &params,
            password: Some(Secret::new("pw".into())),
            transport: Transport::Plain,
            host: "db",
            attrs: SessionAttrs::Any,
            conditions: &[],
            over_socket: false,
            facts: false,
        };
        let config = client_config(&session, false);
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_dbname(), Some("shop"));
        assert_eq!(config.get_application_name(), Some("gate"));
        assert_eq!(config.get_options(), Some("-c search_path=app"));
        assert_eq!(config.get_password(), Some(&b"pw"[..]));
        assert_eq!(config.get_channel_binding(), PgChannelBinding::Require);
        assert_eq!(config.get_ssl_mode(), PgSslMode::Disable);
        // TLS was negotiated before tokio-postgres sees the stream: it must not ask again.
        let tls = client_config(&session, true);
        assert_eq!(tls.get_ssl_mode(), PgSslMode::Require);
        assert_eq!(tls.get_ssl_negotiation(), SslNegotiation::Direct);
    }

    async fn error_response(bytes: &[u8]) -> Failure {
        let (mut client, mut server) = tokio::io::duplex(1024);
        server.write_all(bytes).await.unwrap();
        drop(server);
        let deadline = Instant::now() + std::time::Duration::from_secs(1);
        read_error_response(&mut client, deadline).await
    }

    #[tokio::test]
    async fn a_postmaster_error_to_the_ssl_request_is_read_as_a_server_failure() {
        let mut body = b"SFATAL\0C53300\0Msorry, too many clients already\0\0".to_vec();
        let mut message = u32::try_from(body.len() + 4)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        message.append(&mut body);
        assert_eq!(
            error_response(&message).await,
            Failure::Server {
                phase: Phase::Startup,
                sqlstate: "53300".into(),
                message: "sorry, too many clients already".into(),
            }
        );
        let protocol = Failure::Protocol {
            phase: Phase::Startup,
        };
        // An absurd length, a truncated body, or no SQLSTATE: not a PostgreSQL error.
        assert_eq!(error_response(&[0x7f, 0, 0, 0]).await, protocol);
        assert_eq!(error_response(&[0, 0, 0, 40, b'S']).await, protocol);
        assert_eq!(
            error_response(&[0, 0, 0, 9, b'M', b'x', 0, 0, 0]).await,
            protocol
        );
    }
}
