//! The real probe: every configured server in libpq order, every address of each, with libpq's
//! sslmode fallbacks (`allow`: plain then TLS; `prefer`: TLS then plain) and
//! `target_session_attrs` (including prefer-standby's second pass).

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::Instant;

use super::pg::{self, Answer, Session, Transport};
use super::{tcp, AddrFailure, AttemptError, Plan, Probe, Ready};
use crate::classify::{classify, Class, Failure};
use crate::condition::Condition;
use crate::conninfo::{ConnParams, Endpoint, SessionAttrs, SslMode};
use crate::credentials::{Credentials, Note};
use crate::tls::Tls;

/// Where one connection goes: typed, so a TCP endpoint always has its resolved address.
#[derive(Debug, Clone)]
enum Route {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// Resolve, connect, negotiate TLS, authenticate, check the session kind, Terminate.
#[derive(Debug)]
pub struct PgProbe {
    params: ConnParams,
    tls: Option<Tls>,
    credentials: Credentials,
    conditions: Vec<Condition>,
    resolver: tcp::Resolver,
    /// The server's answer time of the last failed connection, if a server answered.
    answer: Cell<Option<Duration>>,
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
            answer: Cell::new(None),
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
            if failures
                .last()
                .is_some_and(|f| plan.rejects.contains(f.class))
            {
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
        let routes = match endpoint {
            Endpoint::Socket { dir, port } => {
                vec![Route::Unix(dir.join(format!(".s.PGSQL.{port}")))]
            }
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => match self
                .resolver
                .resolve(host, *hostaddr, *port, Instant::now() + plan.per_address)
                .await
            {
                Ok(addrs) => addrs.into_iter().map(Route::Tcp).collect(),
                Err(failure) => {
                    failures.push(AddrFailure::new(endpoint.to_string(), failure));
                    return None;
                }
            },
        };
        for route in routes {
            let address = match &route {
                Route::Tcp(addr) => tcp::label(endpoint, *addr),
                Route::Unix(_) => endpoint.to_string(),
            };
            // Each address gets its own time, as libpq's connect_timeout.
            let deadline = Instant::now() + plan.per_address;
            match self
                .with_sslmode(endpoint, &route, attrs, plan, deadline)
                .await
            {
                Ok(answer) => {
                    let checked = self.conditions.iter().map(Condition::label).collect();
                    let socket_only = answer.socket_only;
                    return Some(Ready {
                        address,
                        checked,
                        socket_only,
                    });
                }
                Err(failure) => failures.push(AddrFailure {
                    answer: self.answer.take(),
                    ..AddrFailure::new(address, failure)
                }),
            }
            if failures
                .last()
                .is_some_and(|f| plan.rejects.contains(f.class))
            {
                return None;
            }
        }
        None
    }

    /// libpq's sslmode semantics over one address; Unix sockets never use TLS.
    async fn with_sslmode(
        &self,
        endpoint: &Endpoint,
        route: &Route,
        attrs: SessionAttrs,
        plan: Plan,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let tls = match (&self.tls, route) {
            (Some(tls), Route::Tcp(_)) => tls,
            _ => {
                return self
                    .session(endpoint, route, attrs, (plan, deadline), Transport::Plain)
                    .await
            }
        };
        let required = Transport::Tls {
            tls,
            required: true,
        };
        match tls.mode {
            SslMode::Allow => match self
                .session(endpoint, route, attrs, (plan, deadline), Transport::Plain)
                .await
            {
                // e.g. pg_hba.conf has only hostssl lines: try again with TLS.
                Err(failure @ Failure::Server { .. }) if classify(&failure) == Class::Auth => {
                    self.session(endpoint, route, attrs, (plan, deadline), required)
                        .await
                }
                other => other,
            },
            SslMode::Prefer => match self
                .session(
                    endpoint,
                    route,
                    attrs,
                    (plan, deadline),
                    Transport::Tls {
                        tls,
                        required: false,
                    },
                )
                .await
            {
                Err(Failure::Tls { .. }) => {
                    self.session(endpoint, route, attrs, (plan, deadline), Transport::Plain)
                        .await
                }
                other => other,
            },
            _ => {
                self.session(endpoint, route, attrs, (plan, deadline), required)
                    .await
            }
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
    ) -> Result<Answer, Failure> {
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
        // A failure before the server answers leaves no answer time, whatever an earlier
        // session (an sslmode fallback) left.
        self.answer.set(None);
        let began = Instant::now();
        let (result, connected) = match route {
            Route::Tcp(addr) => {
                let stream = tcp::connect_tcp(*addr, plan, deadline).await?;
                let connected = Instant::now();
                (pg::check(stream, &session, deadline).await, connected)
            }
            Route::Unix(path) => {
                let stream = tcp::connect_unix(path, plan, deadline).await?;
                let connected = Instant::now();
                (pg::check(stream, &session, deadline).await, connected)
            }
        };
        if let Err(Failure::Server { .. }) = result {
            // The server's own time: after the connect, less the connect's round trip.
            let connect = connected - began;
            self.answer
                .set(Some(connected.elapsed().saturating_sub(connect)));
        }
        result
    }
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
