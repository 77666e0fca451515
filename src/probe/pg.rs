//! The PostgreSQL part of an attempt, over an already connected stream: startup and
//! authentication, `SELECT 1` over the simple query protocol (so it works through PgBouncer in
//! transaction mode), then a clean Terminate so the server logs no "unexpected EOF".
//!
//! This is the only module that touches tokio-postgres types; errors leave it as [`Failure`].

use std::error::Error as _;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{timeout_at, Instant};
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::guard::FirstByteGuard;
use crate::classify::{Failure, Phase};
use crate::conninfo::ConnParams;

/// Authenticates and runs `SELECT 1`; everything ends by `deadline`.
pub async fn check<S>(stream: S, params: &ConnParams, deadline: Instant) -> Result<(), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = client_config(params);
    let stream = FirstByteGuard::new(stream);
    let (client, connection) = match timeout_at(deadline, config.connect_raw(stream, NoTls)).await {
        Err(_) => {
            return Err(Failure::TimedOut {
                phase: Phase::Startup,
            })
        }
        Ok(Err(e)) => return Err(convert(&e, Phase::Startup, params)),
        Ok(Ok(pair)) => pair,
    };
    let query = async move {
        let result = client.simple_query("SELECT 1").await;
        // Dropping the last client makes the connection send Terminate and finish.
        drop(client);
        result
    };
    match timeout_at(deadline, async { tokio::join!(query, connection) }).await {
        Err(_) => Err(Failure::TimedOut {
            phase: Phase::Query,
        }),
        Ok((Err(e), _)) => Err(convert(&e, Phase::Query, params)),
        Ok((Ok(messages), _)) => verify(&messages),
    }
}

fn client_config(params: &ConnParams) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .user(&params.user)
        .dbname(&params.dbname)
        .application_name(&params.application_name)
        .ssl_mode(SslMode::Disable);
    if let Some(password) = &params.password {
        config.password(password.expose());
    }
    if let Some(options) = &params.options {
        config.options(options);
    }
    config
}

/// The reply must be exactly one row holding `1`; anything else is not PostgreSQL as we know it.
fn verify(messages: &[SimpleQueryMessage]) -> Result<(), Failure> {
    let one = messages
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(row) if row.get(0) == Some("1")));
    if one {
        Ok(())
    } else {
        Err(Failure::Protocol {
            phase: Phase::Query,
        })
    }
}

/// Converts a client error by its structure: SQLSTATE, closed, io kind — never by message text.
fn convert(e: &tokio_postgres::Error, phase: Phase, params: &ConnParams) -> Failure {
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
    match e.source() {
        // tokio-postgres puts stream errors and undecodable bytes behind an io::Error.
        Some(source) => match source.downcast_ref::<io::Error>() {
            Some(io) => Failure::Io {
                phase,
                kind: io.kind(),
                detail: io.to_string(),
            },
            None => client_auth(e, params),
        },
        // Only an unexpected message carries no cause at all.
        None => Failure::Protocol { phase },
    }
}

/// Authentication that failed on our side: the likeliest cause is a password we don't have.
fn client_auth(e: &tokio_postgres::Error, params: &ConnParams) -> Failure {
    let detail = if params.password.is_none() {
        "the server asks for a password but none is set (PGPASSWORD, password=, or the URI)"
            .to_string()
    } else {
        e.to_string()
    };
    Failure::ClientAuth { detail }
}
