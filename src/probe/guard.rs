//! A stream wrapper that fails fast when the peer's first byte cannot start a PostgreSQL reply.
//!
//! A server answers a startup packet with Authentication ('R'), ErrorResponse ('E'), NoticeResponse
//! ('N') or NegotiateProtocolVersion ('v'). Anything else (an HTTP or SSH banner, say) would be
//! read by the client as a message with an absurd length and wait for bytes that never come.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Passes bytes through, checking only the very first one read.
pub struct FirstByteGuard<S> {
    inner: S,
    checked: bool,
}

impl<S> FirstByteGuard<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            checked: false,
        }
    }
}

/// True if `byte` can begin the server's reply to a startup packet.
pub fn starts_startup_reply(byte: u8) -> bool {
    matches!(byte, b'R' | b'E' | b'N' | b'v')
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstByteGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if !self.checked && buf.filled().len() > before {
            self.checked = true;
            if !starts_startup_reply(buf.filled()[before]) {
                // A failed read must not hand out bytes.
                buf.set_filled(before);
                let e = io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the reply is not a PostgreSQL message",
                );
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstByteGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
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

    async fn first_read(reply: &[u8]) -> io::Result<Vec<u8>> {
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(reply).await?;
        drop(server);
        let mut guarded = FirstByteGuard::new(client);
        let mut out = Vec::new();
        guarded.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn lets_postgresql_replies_through_untouched() {
        for reply in [
            &b"R\0\0\0\x08\0\0\0\0"[..],
            b"E\0\0\0\x05\0",
            b"N\0\0\0\x04",
            b"v\0\0\0\x04",
        ] {
            assert_eq!(first_read(reply).await.unwrap(), reply);
        }
    }

    #[tokio::test]
    async fn rejects_other_protocols_on_the_first_byte() {
        for reply in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"\x16\x03\x01",
        ] {
            let err = first_read(reply).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{reply:?}");
        }
    }
}
