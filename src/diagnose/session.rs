//! The checklist's own look at a server, below the probe: what the server answers to an
//! SSLRequest and which certificate it shows, and what it answers to a startup packet — the
//! authentication method it asks for, or the error it sends before asking (pg_hba.conf, 57P03).
//! No password is ever sent here: the probe's real attempt does the login.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::conninfo::{SslMode, TlsParams};
use crate::probe::ssl_request;
use crate::tls::{self, Tls};

/// The most of one reply read (an ErrorResponse or an Authentication request is far smaller).
const MAX_REPLY: usize = 16 * 1024;

/// What the SSLRequest and a handshake showed.
#[derive(Debug, Clone)]
pub enum TlsFound {
    /// The server answered `N`: no TLS there.
    NotOffered,
    /// A handshake completed: the chain, what the sslmode's verification said, the version.
    Offered {
        chain: Vec<CertificateDer<'static>>,
        verdict: Option<Result<(), String>>,
        version: String,
    },
    /// The server agreed, but the handshake failed (rustls' words).
    HandshakeFailed(String),
    /// Not an answer to an SSLRequest: `E` (an error before anything, e.g. out of processes)
    /// or a byte no PostgreSQL server sends.
    Odd(u8),
    /// No answer to the SSLRequest, but an HTTP reply to a blank request: a web server there.
    Http,
    /// The connection failed or timed out.
    Io(String),
}

/// The server's first answer to a startup packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstReply {
    /// An Authentication request (`0`: let in without one).
    Auth { code: u32, mechanisms: Vec<String> },
    /// An ErrorResponse before authentication.
    Error {
        sqlstate: String,
        message: String,
        detail: String,
    },
    /// The sslmode requires TLS and the server has none.
    TlsRefused,
    /// The TLS handshake with the real settings failed (rustls' words).
    TlsFailed(String),
    /// Something that is not PostgreSQL's protocol.
    NotPostgres,
    /// Closed, reset or timed out (the words of the error).
    Io(String),
}

/// Asks `addr` for TLS with a setup that completes any handshake, recording the certificate and
/// what the sslmode's own verification made of it.
pub async fn inspect_tls(
    addr: std::net::SocketAddr,
    host: &str,
    params: &TlsParams,
    limit: Duration,
) -> Result<TlsFound, tls::TlsError> {
    let (config, record) = tls::inspecting(params)?;
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        if !params.direct {
            // A server that waits for more (an HTTP server wants a whole line) gets half the
            // time, then a blank HTTP request to see whether it is one.
            match timeout(limit / 2, ssl_request(&mut stream)).await {
                Ok(reply) => match reply? {
                    b'S' => {}
                    b'N' => return Ok::<_, io::Error>(TlsFound::NotOffered),
                    other => return Ok(TlsFound::Odd(other)),
                },
                Err(_) => return Ok(http_or_silent(stream).await),
            }
        }
        let name = server_name(host);
        match tokio_rustls::TlsConnector::from(config)
            .connect(name, stream)
            .await
        {
            Ok(tls) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map_or("TLS".to_string(), |v| format!("{v:?}").replace('_', "."));
                let seen = record.lock().map(|r| r.clone()).unwrap_or_default();
                Ok(TlsFound::Offered {
                    chain: seen.chain,
                    verdict: seen.verdict,
                    version,
                })
            }
            Err(e) => Ok(TlsFound::HandshakeFailed(e.to_string())),
        }
    };
    Ok(match timeout(limit, exchange).await {
        Err(_) => TlsFound::Io("no answer in time".into()),
        Ok(Err(e)) => TlsFound::Io(e.to_string()),
        Ok(Ok(found)) => found,
    })
}

/// Sends a startup packet for `user`/`dbname` the way the sslmode says (TLS first for
/// prefer/require/verify-*, with the real TLS setup) and reads the first reply.
pub async fn first_reply<S>(
    mut stream: S,
    tls: Option<&Tls>,
    host: &str,
    user: &str,
    dbname: &str,
    limit: Duration,
) -> FirstReply
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exchange = async {
        let wants_tls = tls.filter(|t| !matches!(t.mode, SslMode::Disable | SslMode::Allow));
        let Some(tls) = wants_tls else {
            return Ok::<_, io::Error>(startup(stream, user, dbname).await);
        };
        if !tls.direct {
            match ssl_request(&mut stream).await? {
                b'S' => {}
                b'N' if tls.mode == SslMode::Prefer => {
                    return Ok(startup(stream, user, dbname).await);
                }
                b'N' => return Ok(FirstReply::TlsRefused),
                _ => return Ok(FirstReply::NotPostgres),
            }
        }
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config));
        match connector.connect(server_name(host), stream).await {
            Ok(tls_stream) => Ok(startup(tls_stream, user, dbname).await),
            Err(e) => Ok(FirstReply::TlsFailed(e.to_string())),
        }
    };
    match timeout(limit, exchange).await {
        Err(_) => FirstReply::Io("no answer in time".into()),
        Ok(Err(e)) => FirstReply::Io(e.to_string()),
        Ok(Ok(reply)) => reply,
    }
}

/// After an SSLRequest went unanswered: an HTTP server answers once a line ends (with a status
/// line, or, taking the bytes for an HTTP/0.9 request, with an HTML error page).
async fn http_or_silent(mut stream: TcpStream) -> TlsFound {
    let mut reply = [0u8; 64];
    let answered = async {
        stream.write_all(b"\r\n\r\n").await?;
        stream.read(&mut reply).await
    };
    let read = answered.await.unwrap_or(0);
    let text = String::from_utf8_lossy(&reply[..read]).to_ascii_lowercase();
    match text.starts_with("http/") || text.contains("<html") || text.contains("<!doctype html") {
        true => TlsFound::Http,
        false => TlsFound::Io("no answer to the TLS request in time".into()),
    }
}

fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid name"))
}

/// The startup packet (protocol 3.0), then the first reply, read within [`MAX_REPLY`].
async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    user: &str,
    dbname: &str,
) -> FirstReply {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (key, value) in [
        ("user", user),
        ("database", dbname),
        ("application_name", "pgwait --diagnose"),
    ] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    if let Err(e) = stream.write_all(&packet).await {
        return FirstReply::Io(e.to_string());
    }
    match read_message(&mut stream).await {
        Ok((b'R', body)) if body.len() >= 4 => FirstReply::Auth {
            code: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            mechanisms: body[4..]
                .split(|b| *b == 0)
                .take_while(|m| !m.is_empty())
                .take(8)
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect(),
        },
        Ok((b'E', body)) => error_fields(&body),
        Ok(_) => FirstReply::NotPostgres,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => FirstReply::NotPostgres,
        Err(e) => FirstReply::Io(e.to_string()),
    }
}

async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<(u8, Vec<u8>)> {
    let kind = stream.read_u8().await?;
    let len = stream.read_u32().await? as usize;
    if !(4..=MAX_REPLY).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "message length"));
    }
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).await?;
    Ok((kind, body))
}

/// An ErrorResponse's code, message and detail (server text: escaped when shown).
fn error_fields(body: &[u8]) -> FirstReply {
    let field = |code: u8| {
        body.split(|b| *b == 0)
            .find(|f| f.first() == Some(&code))
            .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
            .unwrap_or_default()
    };
    FirstReply::Error {
        sqlstate: field(b'C'),
        message: field(b'M'),
        detail: field(b'D'),
    }
}
