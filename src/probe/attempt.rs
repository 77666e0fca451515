//! The real probe: every configured server in libpq order, every address of each, with libpq's
//! sslmode fallbacks (`allow`: plain then TLS; `prefer`: TLS then plain) and
//! `target_session_attrs` (including prefer-standby's second pass).

use std::net::SocketAddr;

use super::pg::{self, Session, Transport};
use super::{tcp, AddrFailure, AttemptError, Limits, Probe, Ready};
use crate::classify::{Class, Failure};
use crate::conninfo::{ConnParams, Endpoint, SessionAttrs, SslMode};
use crate::passfile::PassFile;
use crate::tls::Tls;

/// Resolve, connect, negotiate TLS, authenticate, check the session kind, Terminate.
#[derive(Debug)]
pub struct PgProbe {
    params: ConnParams,
    tls: Option<Tls>,
    passfile: PassFile,
}

impl PgProbe {
    pub fn new(params: ConnParams, tls: Option<Tls>, passfile: PassFile) -> Self {
        Self {
            params,
            tls,
            passfile,
        }
    }

    /// One pass over every endpoint, wanting servers of kind `attrs`.
    async fn pass(
        &self,
        attrs: SessionAttrs,
        limits: Limits,
        failures: &mut Vec<AddrFailure>,
    ) -> Option<Ready> {
        for endpoint in &self.params.endpoints {
            if let Some(ready) = self.try_endpoint(endpoint, attrs, limits, failures).await {
                return Some(ready);
            }
            // libpq: once a server has rejected us outright, the remaining hosts are not tried.
            if failures.last().is_some_and(|f| f.class.is_permanent()) {
                break;
            }
        }
        None
    }

    async fn try_endpoint(
        &self,
        endpoint: &Endpoint,
        attrs: SessionAttrs,
        limits: Limits,
        failures: &mut Vec<AddrFailure>,
    ) -> Option<Ready> {
        let addrs = match endpoint {
            Endpoint::Socket { .. } => vec![None],
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => match tcp::resolve(host, *hostaddr, *port, limits.deadline).await {
                Ok(addrs) => addrs.into_iter().map(Some).collect(),
                Err(failure) => {
                    failures.push(AddrFailure::new(endpoint.to_string(), failure));
                    return None;
                }
            },
        };
        for addr in addrs {
            let target = addr.map_or_else(|| endpoint.to_string(), |a| tcp::label(endpoint, a));
            match self.with_sslmode(endpoint, addr, attrs, limits).await {
                Ok(()) => return Some(Ready { target }),
                Err(failure) => failures.push(AddrFailure::new(target, failure)),
            }
            if failures.last().is_some_and(|f| f.class.is_permanent()) {
                return None;
            }
        }
        None
    }

    /// libpq's sslmode semantics over one address; Unix sockets never use TLS.
    async fn with_sslmode(
        &self,
        endpoint: &Endpoint,
        addr: Option<SocketAddr>,
        attrs: SessionAttrs,
        limits: Limits,
    ) -> Result<(), Failure> {
        let tls = match (&self.tls, addr) {
            (Some(tls), Some(_)) => tls,
            _ => {
                return self
                    .session(endpoint, addr, attrs, limits, Transport::Plain)
                    .await
            }
        };
        let required = Transport::Tls {
            tls,
            required: true,
        };
        match tls.mode {
            SslMode::Allow => match self
                .session(endpoint, addr, attrs, limits, Transport::Plain)
                .await
            {
                // e.g. pg_hba.conf has only hostssl lines: try again with TLS.
                Err(Failure::Server { sqlstate, .. }) if sqlstate.starts_with("28") => {
                    self.session(endpoint, addr, attrs, limits, required).await
                }
                other => other,
            },
            SslMode::Prefer => match self
                .session(
                    endpoint,
                    addr,
                    attrs,
                    limits,
                    Transport::Tls {
                        tls,
                        required: false,
                    },
                )
                .await
            {
                Err(Failure::Tls { .. }) => {
                    self.session(endpoint, addr, attrs, limits, Transport::Plain)
                        .await
                }
                other => other,
            },
            _ => self.session(endpoint, addr, attrs, limits, required).await,
        }
    }

    /// One connection: connect the transport and run the PostgreSQL session over it.
    async fn session(
        &self,
        endpoint: &Endpoint,
        addr: Option<SocketAddr>,
        attrs: SessionAttrs,
        limits: Limits,
        transport: Transport<'_>,
    ) -> Result<(), Failure> {
        let password = self.params.password.clone().or_else(|| {
            self.passfile
                .lookup(endpoint, &self.params.dbname, &self.params.user)
        });
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
        };
        match (endpoint, addr) {
            (Endpoint::Tcp { .. }, Some(addr)) => {
                let stream = tcp::connect_tcp(addr, limits).await?;
                pg::check(stream, &session, limits.deadline).await
            }
            (Endpoint::Socket { dir, port }, _) => {
                let stream =
                    tcp::connect_unix(&dir.join(format!(".s.PGSQL.{port}")), limits).await?;
                pg::check(stream, &session, limits.deadline).await
            }
            (Endpoint::Tcp { .. }, None) => {
                unreachable!("TCP endpoints are tried per resolved address")
            }
        }
    }
}

impl Probe for PgProbe {
    async fn attempt(&mut self, limits: Limits) -> Result<Ready, AttemptError> {
        let mut failures = Vec::new();
        let first = match self.params.target {
            SessionAttrs::PreferStandby => SessionAttrs::Standby,
            other => other,
        };
        if let Some(ready) = self.pass(first, limits, &mut failures).await {
            return Ok(ready);
        }
        // prefer-standby: no standby anywhere, so any working server will do (libpq's second pass).
        let some_server_works = failures.iter().any(|f| f.class == Class::WrongKind);
        if self.params.target == SessionAttrs::PreferStandby && some_server_works {
            failures.clear();
            if let Some(ready) = self.pass(SessionAttrs::Any, limits, &mut failures).await {
                return Ok(ready);
            }
        }
        Err(AttemptError { failures })
    }
}
