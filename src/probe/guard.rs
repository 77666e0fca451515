//! A stream wrapper that checks the server's bytes as they arrive, before tokio-postgres buffers
//! them: the first byte must be able to start a PostgreSQL reply, no message may be longer than
//! [`MAX_MESSAGE`], and the bytes before the first ReadyForQuery and in the whole session are
//! bounded. A peer that answers with a 2 GiB length, or floods notices or parameters before
//! ReadyForQuery (tokio-postgres keeps those), then costs a bounded amount of memory and ends as
//! a classified failure instead of an out-of-memory kill.
//!
//! A server answers a startup packet with Authentication ('R'), ErrorResponse ('E'), NoticeResponse
//! ('N') or NegotiateProtocolVersion ('v'). Anything else (an HTTP or SSH banner, say) would be
//! read by the client as a message with an absurd length.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conninfo::{AuthViolation, RequireAuth};

/// The longest message accepted. A readiness check's messages are a few hundred bytes; the
/// largest legitimate ones (an ErrorResponse with detail, a row of a custom query) are far below.
pub const MAX_MESSAGE: usize = 1024 * 1024;
/// Bytes accepted before the first ReadyForQuery: a real server's startup reply (authentication,
/// ~15 ParameterStatus, BackendKeyData) is about 1 KiB.
pub const MAX_BEFORE_READY: u64 = 64 * 1024;
/// Bytes accepted in one session, startup to Terminate. Rows are read as a stream, so this
/// bounds time, not memory: a `--query` should return one row, but a big one still works.
pub const MAX_SESSION: u64 = 16 * 1024 * 1024;

/// Which bound a peer went past; carried inside the `io::Error` the read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// The first byte cannot start a reply to a startup packet.
    NotAReply,
    /// A message length below 4 or above [`MAX_MESSAGE`].
    MessageLength,
    /// More than [`MAX_BEFORE_READY`] bytes before ReadyForQuery.
    BeforeReady,
    /// More than [`MAX_SESSION`] bytes in the session.
    Session,
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAReply => "the reply is not a PostgreSQL message",
            Self::MessageLength => "a message length is out of bounds",
            Self::BeforeReady => "too much data before ReadyForQuery",
            Self::Session => "too much data in one session",
        })
    }
}

impl std::error::Error for Exceeded {}

/// What the server asked for to authenticate, as last seen in an Authentication message:
/// tokio-postgres' errors drop the method and the mechanism names, and the hint needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequest {
    /// The Authentication message's code (3 cleartext, 5 MD5, 7 GSSAPI, 10 SASL, ...).
    pub code: u32,
    /// For SASL (10): the mechanisms offered, as sent (server text: the reporter escapes it).
    pub mechanisms: Vec<String>,
}

/// What the guard saw that tokio-postgres' errors don't say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// The last Authentication request.
    pub auth: Option<AuthRequest>,
    /// The peer closed its side (a read returned end of stream).
    pub eof: bool,
    /// When the client last wrote and has not been answered yet.
    pub sent_at: Option<tokio::time::Instant>,
    /// The longest wait from a client's write to the server's first byte in reply: one round
    /// trip plus the server's own time. A busy postmaster accepts and forks late (the first
    /// exchange shows it), a busy pooler or backend answers the startup late (the second one
    /// does): the policy's stretch reads the longest, less the connect's round trip.
    pub longest_wait: Option<std::time::Duration>,
}

impl Seen {
    /// Counts one exchange that took `waited` from request to reply.
    pub fn exchanged(&mut self, waited: std::time::Duration) {
        self.longest_wait = Some(self.longest_wait.map_or(waited, |w| w.max(waited)));
    }
}

/// The server asked for authentication `require_auth` forbids; carried inside the `io::Error`
/// the read returns, so tokio-postgres never answers the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disallowed(pub AuthViolation);

impl fmt::Display for Disallowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("authentication not allowed by require_auth")
    }
}

impl std::error::Error for Disallowed {}

/// The `require_auth` violation an io error from a guarded read reports, if it is one.
pub fn disallowed(error: &io::Error) -> Option<AuthViolation> {
    error.get_ref()?.downcast_ref::<Disallowed>().map(|d| d.0)
}

/// Shared with the probe, which reads it after a failed attempt.
pub type Observed = Arc<Mutex<Seen>>;

/// Counts an exchange made before any guard (the SSLRequest and its one-byte reply).
pub fn exchanged(observed: &Observed, waited: std::time::Duration) {
    lock(observed).exchanged(waited);
}

/// The observations so far.
pub fn seen(observed: &Observed) -> Seen {
    lock(observed).clone()
}

/// A poisoned lock only means another attempt panicked; the data is still plain.
fn lock(observed: &Observed) -> std::sync::MutexGuard<'_, Seen> {
    observed.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bytes of an Authentication message kept for [`AuthRequest`]; a real one is under 100.
const AUTH_CAPTURE: usize = 512;

/// Where the reader is in the message framing.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Collecting the 5-byte header (type, length); `have` bytes so far.
    Header { buf: [u8; 5], have: usize },
    /// Skipping `left` body bytes of a message of type `kind`.
    Body { kind: u8, left: usize },
}

const NEXT_HEADER: Framing = Framing::Header {
    buf: [0; 5],
    have: 0,
};

/// Passes bytes through unchanged while tracking message boundaries.
pub struct ReplyGuard<S> {
    inner: S,
    framing: Framing,
    total: u64,
    seen_any: bool,
    ready: bool,
    /// The start of the current Authentication message's body.
    auth: Vec<u8>,
    observed: Observed,
    /// `require_auth`, checked on each Authentication request before the client sees it.
    require_auth: Option<RequireAuth>,
    /// An authentication exchange has begun (a request other than OK was seen).
    exchanged: bool,
}

impl<S> ReplyGuard<S> {
    pub fn new(inner: S, observed: Observed, require_auth: Option<RequireAuth>) -> Self {
        Self {
            inner,
            framing: NEXT_HEADER,
            total: 0,
            seen_any: false,
            ready: false,
            auth: Vec::new(),
            observed,
            require_auth,
            exchanged: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Follows the framing over `bytes`; the first bound crossed is the answer.
    fn track(&mut self, bytes: &[u8]) -> Result<(), io::Error> {
        let stop = |e: Exceeded| io::Error::new(io::ErrorKind::InvalidData, e);
        if !self.seen_any && !bytes.is_empty() {
            self.seen_any = true;
            if !starts_startup_reply(bytes[0]) {
                return Err(stop(Exceeded::NotAReply));
            }
        }
        self.total += bytes.len() as u64;
        if self.total > MAX_SESSION {
            return Err(stop(Exceeded::Session));
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match &mut self.framing {
                Framing::Body { kind, left } => {
                    let n = (*left).min(rest.len());
                    *left -= n;
                    let kind = *kind;
                    let done = *left == 0;
                    if kind == b'R' {
                        let room = AUTH_CAPTURE.saturating_sub(self.auth.len());
                        self.auth.extend_from_slice(&rest[..n.min(room)]);
                        if done {
                            self.record_auth().map_err(|violation| {
                                io::Error::new(
                                    io::ErrorKind::PermissionDenied,
                                    Disallowed(violation),
                                )
                            })?;
                        }
                    }
                    rest = &rest[n..];
                    if done {
                        self.framing = NEXT_HEADER;
                    }
                }
                Framing::Header { buf, have } => {
                    let n = (5 - *have).min(rest.len());
                    buf[*have..*have + n].copy_from_slice(&rest[..n]);
                    *have += n;
                    rest = &rest[n..];
                    if *have == 5 {
                        let kind = buf[0];
                        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
                        let len = usize::try_from(len).unwrap_or(usize::MAX);
                        if !(4..=MAX_MESSAGE).contains(&len) {
                            return Err(stop(Exceeded::MessageLength));
                        }
                        // 'Z' is ReadyForQuery; 'E' may end the session before it.
                        self.ready |= kind == b'Z';
                        self.framing = match len - 4 {
                            0 => NEXT_HEADER,
                            left => Framing::Body { kind, left },
                        };
                    }
                }
            }
        }
        if !self.ready && self.total > MAX_BEFORE_READY {
            return Err(stop(Exceeded::BeforeReady));
        }
        Ok(())
    }
}

impl<S> ReplyGuard<S> {
    /// Parses the captured Authentication body (a code, then for SASL NUL-terminated names),
    /// records it and checks it against `require_auth`.
    fn record_auth(&mut self) -> Result<(), AuthViolation> {
        let body = std::mem::take(&mut self.auth);
        let Some(code) = body.get(..4) else {
            return Ok(());
        };
        let code = u32::from_be_bytes([code[0], code[1], code[2], code[3]]);
        let mechanisms = match code {
            10 => body[4..]
                .split(|b| *b == 0)
                .take_while(|name| !name.is_empty())
                .take(8)
                .map(|name| String::from_utf8_lossy(name).into_owned())
                .collect(),
            _ => Vec::new(),
        };
        let checked = match &self.require_auth {
            Some(require) => require.check(code, &mechanisms, self.exchanged),
            None => Ok(()),
        };
        self.exchanged |= code != 0;
        lock(&self.observed).auth = Some(AuthRequest { code, mechanisms });
        checked
    }
}

/// True if `byte` can begin the server's reply to a startup packet.
pub fn starts_startup_reply(byte: u8) -> bool {
    matches!(byte, b'R' | b'E' | b'N' | b'v')
}

/// The bound an io error from a guarded read reports, if it is one.
pub fn exceeded(error: &io::Error) -> Option<Exceeded> {
    error.get_ref()?.downcast_ref::<Exceeded>().copied()
}

impl<S: AsyncRead + Unpin> AsyncRead for ReplyGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() == before && buf.remaining() > 0 {
            lock(&self.observed).eof = true;
        } else if buf.filled().len() > before {
            let mut seen = lock(&self.observed);
            if let Some(sent) = seen.sent_at.take() {
                seen.exchanged(sent.elapsed());
            }
        }
        let tracked = self.track(&buf.filled()[before..]);
        if let Err(stop) = tracked {
            // A failed read must not hand out bytes.
            buf.set_filled(before);
            return Poll::Ready(Err(stop));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReplyGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, data))?;
        if written > 0 {
            let mut seen = lock(&self.observed);
            seen.sent_at.get_or_insert_with(tokio::time::Instant::now);
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn read_all(reply: &[u8]) -> io::Result<Vec<u8>> {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let reply = reply.to_vec();
        let writer = tokio::spawn(async move {
            let _ = server.write_all(&reply).await;
        });
        let mut guarded = ReplyGuard::new(client, Observed::default(), None);
        let mut out = Vec::new();
        let result = guarded.read_to_end(&mut out).await.map(|_| out);
        writer.abort();
        result
    }

    fn message(kind: u8, body_len: usize) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&u32::try_from(body_len + 4).unwrap().to_be_bytes());
        m.resize(5 + body_len, b'x');
        m
    }

    #[tokio::test]
    async fn lets_postgresql_replies_through_untouched() {
        let mut session = message(b'R', 4);
        for _ in 0..15 {
            session.extend(message(b'S', 40));
        }
        session.extend(message(b'K', 8));
        session.extend(message(b'Z', 1));
        // After ReadyForQuery, rows may add up to more than the startup bound.
        for _ in 0..100 {
            session.extend(message(b'D', 1000));
        }
        for reply in [
            &b"R\0\0\0\x08\0\0\0\0"[..],
            b"E\0\0\0\x05\0",
            b"N\0\0\0\x04",
            b"v\0\0\0\x04",
            &session,
        ] {
            assert_eq!(read_all(reply).await.unwrap(), reply);
        }
    }

    #[tokio::test]
    async fn remembers_what_authentication_the_server_asked_for() {
        let mut sasl = b"R\0\0\0\x2a\0\0\0\x0aOAUTHBEARER\0X-CUSTOM\0\0".to_vec();
        sasl[4] = u8::try_from(sasl.len() - 1).unwrap();
        let gss = b"R\0\0\0\x08\0\0\0\x07";
        let table: [(&[u8], AuthRequest); 2] = [
            (
                &sasl,
                AuthRequest {
                    code: 10,
                    mechanisms: vec!["OAUTHBEARER".into(), "X-CUSTOM".into()],
                },
            ),
            (
                gss,
                AuthRequest {
                    code: 7,
                    mechanisms: Vec::new(),
                },
            ),
        ];
        for (reply, want) in table {
            let (client, mut server) = tokio::io::duplex(1024);
            server.write_all(reply).await.unwrap();
            drop(server);
            let observed = Observed::default();
            let mut guarded = ReplyGuard::new(client, observed.clone(), None);
            guarded.read_to_end(&mut Vec::new()).await.unwrap();
            let seen = seen(&observed);
            assert_eq!(seen.auth, Some(want));
            assert!(seen.eof, "the peer's close was not seen");
        }
    }

    #[tokio::test]
    async fn each_bound_is_enforced() {
        let mut huge_length = b"R\x7f\xff\xff\xff".to_vec();
        huge_length.resize(4096, 0);
        let notice_flood: Vec<u8> = (0..20_000).flat_map(|_| message(b'N', 1)).collect();
        let mut row_flood = message(b'R', 4);
        row_flood.extend(message(b'Z', 1));
        row_flood.extend((0..17_000).flat_map(|_| message(b'D', 1000)));
        let table: [(&[u8], Exceeded); 6] = [
            (b"HTTP/1.1 400 Bad Request\r\n", Exceeded::NotAReply),
            (b"SSH-2.0-OpenSSH_9.2\r\n", Exceeded::NotAReply),
            (&huge_length, Exceeded::MessageLength),
            (b"R\0\0\0\x02", Exceeded::MessageLength),
            (&notice_flood, Exceeded::BeforeReady),
            (&row_flood, Exceeded::Session),
        ];
        for (reply, want) in table {
            let err = read_all(reply).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                exceeded(&err),
                Some(want),
                "{:?}",
                &reply[..8.min(reply.len())]
            );
        }
    }
}
