//! The real probe: every configured server in libpq order, every address of each, with libpq's
//! sslmode fallbacks (`allow`: plain then TLS; `prefer`: TLS then plain) and
//! `target_session_attrs` (including prefer-standby's second pass).

use std::time::Duration;

use tokio::time::Instant;

use super::pg::{self, Answer, Session, Transport};
use super::tcp::{self, Stream};
use super::{AddrFailure, AttemptError, Plan, Probe, Ready, Route, Server};
use crate::classify::sqlstate::{CANNOT_CONNECT_NOW, INVALID_PASSWORD};
use crate::classify::{Class, Failure, Phase};
use crate::condition::Condition;
use crate::conninfo::Secret;
use crate::conninfo::{Addresses, ConnParams, Endpoint, Failover, SessionAttrs, SslMode};
use crate::credentials::{Credentials, Note};
use crate::tls::Tls;
use crate::token::Minter;

/// Resolve, connect, negotiate TLS, authenticate, check the session kind, Terminate.
#[derive(Debug)]
pub struct PgProbe {
    params: ConnParams,
    tls: Option<Tls>,
    credentials: Credentials,
    conditions: Vec<Condition>,
    resolver: tcp::Resolver,
    /// `--iam` / `--password-command`: each attempt's password is minted, not configured.
    minter: Option<Minter>,
    /// This attempt's minted passwords, per endpoint, and whether any was reused from the
    /// cache (a rejected reused token earns one fresh try).
    minted: Vec<(Endpoint, Secret)>,
    reused: bool,
    /// `--diagnose`: ask each server that lets us in for its facts.
    facts: bool,
}

/// A connection that failed, and how long the server took to answer if one did: its own time,
/// after the connect and less the connect's round trip (the policy's stretch reads it).
#[derive(Debug)]
struct Failed {
    failure: Failure,
    answer: Option<Duration>,
    /// Where the session got to: libpq's next step depends on it.
    reached: pg::Reached,
}

impl From<Failure> for Failed {
    /// A failure before any server answered.
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            answer: None,
            reached: pg::Reached::default(),
        }
    }
}

/// What libpq does after a failed connection (fe-connect.c, PQconnectPoll: `try_next_addr`,
/// `try_next_host`, `CONNECTION_FAILED()` and `error_return`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Nothing answered there: the host's next address, then the next host.
    Address,
    /// The name did not resolve, the server is not accepting connections yet (57P03), or it is
    /// the wrong kind: the next host.
    Host,
    /// A server error during startup (before ReadyForQuery, even after AuthenticationOk) or a
    /// TLS failure: the same address in the sslmode's other encryption (`prefer`, `allow`),
    /// else the attempt ends.
    OtherEncryption,
    /// Anything else ends the attempt: the app's libpq would not try the other hosts either.
    Stop,
}

/// The driver's rule over libpq's (`--driver`): pgjdbc and Npgsql try the next host after any
/// failure, pgx after any but a rejected login.
fn with_failover(next: Next, failover: Failover, failure: &Failure) -> Next {
    match (failover, next) {
        (_, Next::Address | Next::Host) | (Failover::Libpq, _) => next,
        (Failover::AnyButLogin, _) if crate::classify::classify(failure) == Class::Auth => next,
        (Failover::AnyFailure | Failover::AnyButLogin, _) => Next::Host,
    }
}

fn next_after(failed: &Failed) -> Next {
    let startup = Phase::Startup;
    match &failed.failure {
        Failure::Io {
            phase: Phase::Resolve,
            ..
        }
        | Failure::TimedOut {
            phase: Phase::Resolve,
        } => Next::Host,
        Failure::Io {
            phase: Phase::Connect,
            ..
        }
        | Failure::TimedOut { .. } => Next::Address,
        Failure::Server {
            sqlstate, phase, ..
        } if sqlstate == CANNOT_CONNECT_NOW && *phase == startup => Next::Host,
        Failure::WrongKind { .. } => Next::Host,
        Failure::Server { phase, .. } if *phase == startup => Next::OtherEncryption,
        Failure::Tls { .. } => Next::OtherEncryption,
        _ => Next::Stop,
    }
}

impl PgProbe {
    pub fn new(
        params: ConnParams,
        tls: Option<Tls>,
        credentials: Credentials,
        conditions: Vec<Condition>,
        minter: Option<Minter>,
    ) -> Self {
        Self {
            params,
            tls,
            credentials,
            conditions,
            resolver: tcp::Resolver::default(),
            minter,
            minted: Vec::new(),
            reused: false,
            facts: false,
        }
    }

    /// Also asks the server that answers for its version, recovery state and listen_addresses.
    pub fn with_facts(mut self) -> Self {
        self.facts = true;
        self
    }

    /// Mints (or takes from the cache) the password for every endpoint, by the attempt's first
    /// address deadline. A source that fails fails the attempt: no server is tried without it.
    async fn mint(&mut self, plan: Plan) -> Result<(), AttemptError> {
        self.minted.clear();
        self.reused = false;
        let Some(minter) = &mut self.minter else {
            return Ok(());
        };
        let deadline = Instant::now() + plan.per_address;
        for endpoint in &self.params.endpoints {
            let at = server(endpoint, None);
            match minter
                .password(&at.host, at.port, &self.params.user, deadline)
                .await
            {
                Ok(password) => {
                    self.reused |= !password.fresh;
                    self.minted.push((endpoint.clone(), password.secret));
                }
                Err(e) => {
                    let failure = Failure::Token {
                        source: e.source,
                        problem: e.problem,
                    };
                    return Err(AttemptError {
                        failures: vec![AddrFailure::new(at, failure, None)],
                    });
                }
            }
        }
        Ok(())
    }

    /// The password `endpoint` gets: the minted one, else the configured sources'.
    fn password_for(&self, endpoint: &Endpoint) -> Option<Secret> {
        if self.minter.is_some() {
            return self
                .minted
                .iter()
                .find(|(e, _)| e == endpoint)
                .map(|(_, secret)| secret.clone());
        }
        self.credentials
            .password_for(endpoint, &self.params.dbname, &self.params.user)
    }

    /// One pass over every endpoint (in random order with `load_balance_hosts=random`), wanting
    /// servers of kind `attrs`; it ends early where libpq's would.
    async fn pass(
        &self,
        attrs: SessionAttrs,
        plan: Plan,
        failures: &mut Vec<AddrFailure>,
    ) -> Option<Ready> {
        let mut endpoints: Vec<&Endpoint> = self.params.endpoints.iter().collect();
        if self.params.load_balance {
            fastrand::shuffle(&mut endpoints);
        }
        let mut resolved: Vec<Option<Vec<Route>>> = vec![None; endpoints.len()];
        // pgx resolves every host before it connects: one name that does not resolve fails the
        // whole connect, even when an earlier host is up.
        if self.params.failover == Failover::AnyButLogin {
            for (slot, endpoint) in resolved.iter_mut().zip(&endpoints) {
                match self.routes(endpoint, plan).await {
                    Ok(routes) => *slot = Some(routes),
                    Err(failure) => {
                        failures.push(AddrFailure::new(server(endpoint, None), failure, None));
                        return None;
                    }
                }
            }
        }
        for (endpoint, routes) in endpoints.into_iter().zip(resolved) {
            match self
                .try_endpoint(endpoint, routes, attrs, plan, failures)
                .await
            {
                Ok(ready) => return Some(ready),
                Err(Next::Stop) => break,
                Err(_) => {}
            }
        }
        None
    }

    /// Every address of `endpoint` in turn (`routes` when already resolved); `Err` says where
    /// libpq goes next.
    async fn try_endpoint(
        &self,
        endpoint: &Endpoint,
        routes: Option<Vec<Route>>,
        attrs: SessionAttrs,
        plan: Plan,
        failures: &mut Vec<AddrFailure>,
    ) -> Result<Ready, Next> {
        let resolved = match routes {
            Some(routes) => Ok(routes),
            None => self.routes(endpoint, plan).await,
        };
        let mut routes = match resolved {
            Ok(routes) => routes,
            Err(failure) => {
                let failed = Failed::from(failure);
                let next = next_after(&failed);
                failures.push(AddrFailure::new(
                    server(endpoint, None),
                    failed.failure,
                    None,
                ));
                return Err(next);
            }
        };
        if self.params.load_balance {
            fastrand::shuffle(&mut routes);
        }
        let mut next = Next::Address;
        for route in routes {
            // Each address gets its own time, as libpq's connect_timeout.
            let deadline = Instant::now() + plan.per_address;
            let result = self
                .with_sslmode(endpoint, &route, attrs, plan, deadline)
                .await;
            let server = server(endpoint, Some(route));
            match result {
                Ok(answer) => {
                    return Ok(Ready {
                        server,
                        socket_only: answer.socket_only,
                        lag: answer.lag,
                        facts: answer.facts,
                    });
                }
                Err(failed) => {
                    let libpq = match next_after(&failed) {
                        Next::OtherEncryption => Next::Stop,
                        other => other,
                    };
                    next = with_failover(libpq, self.params.failover, &failed.failure);
                    failures.push(AddrFailure::new(server, failed.failure, failed.answer));
                }
            }
            if next != Next::Address {
                break;
            }
        }
        Err(next)
    }

    /// Where `endpoint` leads: its socket file, or every address its host name resolves to.
    async fn routes(&self, endpoint: &Endpoint, plan: Plan) -> Result<Vec<Route>, Failure> {
        match endpoint {
            Endpoint::Socket { dir, port } => {
                Ok(vec![Route::Unix(dir.join(format!(".s.PGSQL.{port}")))])
            }
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => {
                let deadline = Instant::now() + plan.per_address;
                let mut addrs = self
                    .resolver
                    .resolve(host, *hostaddr, *port, deadline)
                    .await?;
                match self.params.addresses {
                    Addresses::AllAsResolved => {}
                    Addresses::AllIpv4First => addrs.sort_by_key(|a| a.is_ipv6()),
                    Addresses::FirstIpv4First => {
                        addrs.sort_by_key(|a| a.is_ipv6());
                        addrs.truncate(1);
                    }
                }
                Ok(addrs.into_iter().map(Route::Tcp).collect())
            }
        }
    }

    /// libpq's sslmode semantics over one address; Unix sockets never use TLS. `allow` tries
    /// plain text first and TLS after a failure before login; `prefer` the reverse, when the
    /// server agreed to TLS.
    async fn with_sslmode(
        &self,
        endpoint: &Endpoint,
        route: &Route,
        attrs: SessionAttrs,
        plan: Plan,
        deadline: Instant,
    ) -> Result<Answer, Failed> {
        let session = |transport| self.session(endpoint, route, attrs, (plan, deadline), transport);
        // libpq never asks for TLS over a Unix socket; node-postgres and Npgsql do (the server
        // answers 'N', so their require fails and their prefer goes on in plain text).
        let tls = match (&self.tls, route) {
            (Some(tls), Route::Tcp(_)) => tls,
            (Some(tls), Route::Unix(_)) if self.params.tls_on_sockets => tls,
            _ => return session(Transport::Plain).await,
        };
        let required = Transport::Tls {
            tls,
            required: true,
        };
        let retry = |failed: &Failed| next_after(failed) == Next::OtherEncryption;
        match tls.mode {
            SslMode::Allow => match session(Transport::Plain).await {
                // e.g. pg_hba.conf has only hostssl lines: try again with TLS.
                Err(failed) if retry(&failed) => session(required).await,
                other => other,
            },
            SslMode::Prefer => {
                // pgx asks for TLS on a connection of its own and connects again for plain
                // text; libpq goes on over the same one.
                let reconnects = self.params.plain_reconnects;
                let preferred = Transport::Tls {
                    tls,
                    required: reconnects,
                };
                match session(preferred).await {
                    Err(Failed {
                        failure: Failure::TlsRefused,
                        ..
                    }) if reconnects => session(Transport::Plain).await,
                    // e.g. a hostnossl line, or a role allowed only without TLS.
                    Err(failed) if failed.reached.encrypted && retry(&failed) => {
                        session(Transport::Plain).await
                    }
                    other => other,
                }
            }
            _ => session(required).await,
        }
    }

    /// One connection: connect the transport and run the PostgreSQL session over it, all by
    /// the address's deadline.
    async fn session(
        &self,
        endpoint: &Endpoint,
        route: &Route,
        attrs: SessionAttrs,
        (plan, deadline): (Plan, Instant),
        transport: Transport<'_>,
    ) -> Result<Answer, Failed> {
        let password = self.password_for(endpoint);
        let host = match endpoint {
            Endpoint::Tcp { host, .. } => host.as_str(),
            Endpoint::Socket { .. } => "localhost",
        };
        let session = Session {
            params: &self.params,
            password,
            transport,
            host,
            attrs,
            conditions: &self.conditions,
            over_socket: matches!(route, Route::Unix(_)),
            facts: self.facts,
        };
        let began = Instant::now();
        let stream: Stream = tcp::connect(route, plan.tcp_connect_limit, deadline).await?;
        let connected = Instant::now();
        if let Some(want) = &self.params.requirepeer {
            check_peer(want, &stream)?;
        }
        pg::check(stream, &session, deadline)
            .await
            .map_err(|(failure, reached)| {
                // Only a server's own answer has an answer time: its longest wait between a
                // request and its reply (a busy postmaster accepts late, a busy pooler answers
                // the startup late: that is where a queue shows), less the connect's round trip
                // (distance is not load).
                let rtt = connected - began;
                let answer = matches!(failure, Failure::Server { .. }).then(|| {
                    reached
                        .longest_wait
                        .unwrap_or_else(|| connected.elapsed())
                        .saturating_sub(rtt)
                });
                Failed {
                    failure,
                    answer,
                    reached,
                }
            })
    }
}

/// libpq's `requirepeer`: over a Unix socket, the server must run as this OS user.
fn check_peer(want: &str, stream: &Stream) -> Result<(), Failure> {
    match tcp::peer_user(stream) {
        None => Ok(()),
        Some(Err(e)) => Err(Failure::io(crate::classify::Phase::Connect, &e)),
        Some(Ok((_, Some(name)))) if name == want => Ok(()),
        Some(Ok((uid, got))) => Err(Failure::WrongPeer {
            want: want.to_string(),
            got,
            uid,
        }),
    }
}

/// The server an attempt met at `endpoint`, by the route it took (if the name resolved).
fn server(endpoint: &Endpoint, route: Option<Route>) -> Server {
    let host = match endpoint {
        Endpoint::Tcp { host, .. } => host.clone(),
        Endpoint::Socket { dir, .. } => dir.display().to_string(),
    };
    Server {
        host,
        port: endpoint.port(),
        route,
    }
}

impl Probe for PgProbe {
    fn prepare(&mut self) -> Vec<Note> {
        self.credentials.refresh()
    }

    async fn attempt(&mut self, plan: Plan) -> Result<Ready, AttemptError> {
        self.mint(plan).await?;
        let result = self.passes(plan).await;
        match result {
            // A cached token the server rejects (revoked, or signed with credentials that
            // ended early): mint afresh at once rather than wait for the next attempt.
            Err(error) if self.reused && rejected_password(&error) => {
                if let Some(minter) = &mut self.minter {
                    minter.forget();
                }
                self.mint(plan).await?;
                self.passes(plan).await
            }
            other => other,
        }
    }
}

/// 28P01 invalid_password somewhere in the attempt.
fn rejected_password(error: &AttemptError) -> bool {
    error.failures.iter().any(
        |f| matches!(&f.failure, Failure::Server { sqlstate, .. } if sqlstate == INVALID_PASSWORD),
    )
}

impl PgProbe {
    /// The attempt's passes over the servers (prefer-standby has two).
    async fn passes(&self, plan: Plan) -> Result<Ready, AttemptError> {
        let mut failures = Vec::new();
        let first = match self.params.session_attrs {
            SessionAttrs::PreferStandby => SessionAttrs::Standby,
            other => other,
        };
        if let Some(ready) = self.pass(first, plan, &mut failures).await {
            return Ok(ready);
        }
        // prefer-standby: no standby anywhere, so any working server will do (libpq's second pass).
        let some_server_works = failures.iter().any(|f| f.class == Class::WrongKind);
        if self.params.session_attrs == SessionAttrs::PreferStandby && some_server_works {
            failures.clear();
            if let Some(ready) = self.pass(SessionAttrs::Any, plan, &mut failures).await {
                return Ok(ready);
            }
        }
        Err(AttemptError { failures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(failure: Failure) -> Failed {
        Failed {
            failure,
            answer: None,
            reached: pg::Reached {
                encrypted: true,
                longest_wait: None,
            },
        }
    }

    fn server(phase: Phase, sqlstate: &str) -> Failure {
        Failure::Server {
            phase,
            sqlstate: sqlstate.into(),
            message: String::new(),
        }
    }

    /// libpq 18's PQconnectPoll: which failures move on to the next address or host, which
    /// retry in the other encryption, and which end the whole attempt.
    #[test]
    fn libpq_moves_on_only_where_nothing_answered_or_not_yet() {
        let io = |phase| Failure::Io {
            phase,
            kind: std::io::ErrorKind::ConnectionRefused,
            detail: String::new(),
        };
        let (startup, query) = (Phase::Startup, Phase::Query);
        let table = [
            (io(Phase::Resolve), Next::Host),
            (io(Phase::Connect), Next::Address),
            (Failure::TimedOut { phase: startup }, Next::Address),
            (Failure::TimedOut { phase: query }, Next::Address),
            (server(startup, "57P03"), Next::Host),
            (
                Failure::WrongKind {
                    want: "primary",
                    got: "standby",
                },
                Next::Host,
            ),
            // libpq 18 retries in the other encryption after any startup error, even one
            // sent after AuthenticationOk (3D000), as the differential test shows.
            (server(startup, "53300"), Next::OtherEncryption),
            (server(startup, "28000"), Next::OtherEncryption),
            (server(startup, "3D000"), Next::OtherEncryption),
            // pgwait's own queries after a successful connection: the app connected.
            (server(query, "42P01"), Next::Stop),
            (Failure::Closed { phase: startup }, Next::Stop),
            (Failure::NoPassword, Next::Stop),
            (Failure::Protocol { phase: startup }, Next::Stop),
            (
                Failure::Tls {
                    detail: String::new(),
                    sslmode: Some("prefer"),
                    host: "h".into(),
                },
                Next::OtherEncryption,
            ),
        ];
        for (failure, want) in table {
            let got = next_after(&failed(failure.clone()));
            assert_eq!(got, want, "{failure:?}");
        }
    }
}
