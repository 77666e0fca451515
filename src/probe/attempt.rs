//! The real probe: every configured server in libpq order, every address of each, with libpq's
//! sslmode fallbacks (`allow`: plain then TLS; `prefer`: TLS then plain) and
//! `target_session_attrs` (including prefer-standby's second pass).

use std::time::Duration;

use tokio::time::Instant;

use super::pg::{self, Answer, Session, Transport};
use super::tcp::{self, Stream};
use super::{AddrFailure, AttemptError, Plan, Probe, Ready, Route, Server};
use crate::classify::{classify, Class, Failure};
use crate::condition::Condition;
use crate::conninfo::{ConnParams, Endpoint, SessionAttrs, SslMode};
use crate::credentials::{Credentials, Note};
use crate::tls::Tls;

/// Resolve, connect, negotiate TLS, authenticate, check the session kind, Terminate.
#[derive(Debug)]
pub struct PgProbe {
    params: ConnParams,
    tls: Option<Tls>,
    credentials: Credentials,
    conditions: Vec<Condition>,
    resolver: tcp::Resolver,
}

/// A connection that failed, and how long the server took to answer if one did: its own time,
/// after the connect and less the connect's round trip (the policy's stretch reads it).
#[derive(Debug)]
struct Failed {
    failure: Failure,
    answer: Option<Duration>,
}

impl From<Failure> for Failed {
    /// A failure before any server answered.
    fn from(failure: Failure) -> Self {
        Self {
            failure,
            answer: None,
        }
    }
}

impl PgProbe {
    pub fn new(
        params: ConnParams,
        tls: Option<Tls>,
        credentials: Credentials,
        conditions: Vec<Condition>,
    ) -> Self {
        Self {
            params,
            tls,
            credentials,
            conditions,
            resolver: tcp::Resolver::default(),
        }
    }

    /// One pass over every endpoint, wanting servers of kind `attrs`.
    async fn pass(
        &self,
        attrs: SessionAttrs,
        plan: Plan,
        failures: &mut Vec<AddrFailure>,
    ) -> Option<Ready> {
        for endpoint in &self.params.endpoints {
            if let Some(ready) = self.try_endpoint(endpoint, attrs, plan, failures).await {
                return Some(ready);
            }
            // libpq: once a server has rejected us outright, the remaining hosts are not tried.
            if rejected(failures, plan) {
                break;
            }
        }
        None
    }

    async fn try_endpoint(
        &self,
        endpoint: &Endpoint,
        attrs: SessionAttrs,
        plan: Plan,
        failures: &mut Vec<AddrFailure>,
    ) -> Option<Ready> {
        let routes = match self.routes(endpoint, plan).await {
            Ok(routes) => routes,
            Err(failure) => {
                failures.push(AddrFailure::new(server(endpoint, None), failure, None));
                return None;
            }
        };
        for route in routes {
            // Each address gets its own time, as libpq's connect_timeout.
            let deadline = Instant::now() + plan.per_address;
            let result = self
                .with_sslmode(endpoint, &route, attrs, plan, deadline)
                .await;
            let server = server(endpoint, Some(route));
            match result {
                Ok(answer) => {
                    let socket_only = answer.socket_only;
                    return Some(Ready {
                        server,
                        socket_only,
                    });
                }
                Err(failed) => {
                    failures.push(AddrFailure::new(server, failed.failure, failed.answer));
                }
            }
            if rejected(failures, plan) {
                return None;
            }
        }
        None
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
                let addrs = self
                    .resolver
                    .resolve(host, *hostaddr, *port, deadline)
                    .await?;
                Ok(addrs.into_iter().map(Route::Tcp).collect())
            }
        }
    }

    /// libpq's sslmode semantics over one address; Unix sockets never use TLS.
    async fn with_sslmode(
        &self,
        endpoint: &Endpoint,
        route: &Route,
        attrs: SessionAttrs,
        plan: Plan,
        deadline: Instant,
    ) -> Result<Answer, Failed> {
        let session = |transport| self.session(endpoint, route, attrs, (plan, deadline), transport);
        let tls = match (&self.tls, route) {
            (Some(tls), Route::Tcp(_)) => tls,
            _ => return session(Transport::Plain).await,
        };
        let required = Transport::Tls {
            tls,
            required: true,
        };
        match tls.mode {
            SslMode::Allow => match session(Transport::Plain).await {
                // e.g. pg_hba.conf has only hostssl lines: try again with TLS.
                Err(Failed {
                    failure: failure @ Failure::Server { .. },
                    ..
                }) if classify(&failure) == Class::Auth => session(required).await,
                other => other,
            },
            SslMode::Prefer => {
                let preferred = Transport::Tls {
                    tls,
                    required: false,
                };
                match session(preferred).await {
                    Err(Failed {
                        failure: Failure::Tls { .. },
                        ..
                    }) => session(Transport::Plain).await,
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
        let password =
            self.credentials
                .password_for(endpoint, &self.params.dbname, &self.params.user);
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
        };
        let began = Instant::now();
        let stream: Stream = tcp::connect(route, plan.tcp_connect_limit, deadline).await?;
        let connected = Instant::now();
        pg::check(stream, &session, deadline)
            .await
            .map_err(|failure| {
                // Only a server's own answer has an answer time: its time after the connect,
                // less the connect's round trip (distance is not load).
                let answer = matches!(failure, Failure::Server { .. })
                    .then(|| connected.elapsed().saturating_sub(connected - began));
                Failed { failure, answer }
            })
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

/// Whether the last failure ends the attempt: a class the policy rejects outright.
fn rejected(failures: &[AddrFailure], plan: Plan) -> bool {
    failures
        .last()
        .is_some_and(|f| plan.rejects.contains(f.class))
}

impl Probe for PgProbe {
    fn prepare(&mut self) -> Vec<Note> {
        self.credentials.refresh()
    }

    async fn attempt(&mut self, plan: Plan) -> Result<Ready, AttemptError> {
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
