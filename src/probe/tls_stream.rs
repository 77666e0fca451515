//! The tokio-postgres ⇄ rustls edge: the TLS handshake on an existing stream, and the
//! `tls-server-end-point` channel-binding data SCRAM-SHA-256-PLUS needs (RFC 5929: a hash of the
//! server certificate with the certificate's own signature hash, SHA-256 for MD5/SHA-1).
//!
//! Written here rather than taken from tokio-postgres-rustls, which parses the certificate with
//! x509-cert: finding one OID needs a few lines of DER, and the binary has a 3 MiB budget.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ring::digest;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::ClientConfig;
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use tokio_rustls::client;

use super::guard::{Observed, ReplyGuard};
use crate::conninfo::RequireAuth;

/// Connects TLS to `host` (verification and SNI use it) with `config`; the decrypted stream is
/// guarded like a plain one.
pub struct RustlsConnect {
    pub config: Arc<ClientConfig>,
    pub host: String,
    pub observed: Observed,
    /// `sslcertmode=require`: fail unless the server asked for the client certificate and got it.
    pub cert_required: bool,
    pub require_auth: Option<RequireAuth>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = ServerName::try_from(self.host)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let (config, asked) = match self.cert_required {
                true => recording(&self.config),
                false => (self.config, None),
            };
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await?;
            if let Some(asked) = asked {
                check_cert_sent(&asked)?;
            }
            Ok(RustlsStream(ReplyGuard::new(
                tls,
                self.observed,
                self.require_auth,
            )))
        })
    }
}

/// Whether the server asked for a client certificate (0 no, 1 asked, 2 asked and one was sent).
type Asked = Arc<AtomicU8>;

/// A copy of `config` whose certificate resolver records whether the server asked: rustls says
/// nothing about it afterwards, and libpq's `sslcertmode=require` depends on it.
fn recording(config: &Arc<ClientConfig>) -> (Arc<ClientConfig>, Option<Asked>) {
    let asked = Asked::default();
    let mut config = ClientConfig::clone(config);
    config.client_auth_cert_resolver = Arc::new(Recording {
        inner: config.client_auth_cert_resolver.clone(),
        asked: asked.clone(),
    });
    (Arc::new(config), Some(asked))
}

/// libpq's two failures of `sslcertmode=require`, in its words.
fn check_cert_sent(asked: &Asked) -> io::Result<()> {
    let problem = match asked.load(Ordering::SeqCst) {
        0 => "server did not request an SSL certificate (sslcertmode=require)",
        1 => "server accepted connection without a valid SSL certificate (sslcertmode=require)",
        _ => return Ok(()),
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::General(problem.into()),
    ))
}

#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Asked,
}

impl ResolvesClientCert for Recording {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let key = self.inner.resolve(root_hint_subjects, sigschemes);
        self.asked
            .store(if key.is_some() { 2 } else { 1 }, Ordering::SeqCst);
        key
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A client TLS stream that knows its channel-binding data.
pub struct RustlsStream<S>(ReplyGuard<client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref().get_ref();
        session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| server_end_point(cert.as_ref()))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// RFC 5929 `tls-server-end-point` for a DER certificate, if its signature hash is known.
pub fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let algorithm = match signature_algorithm(cert)? {
        // sha1WithRSA, sha256WithRSA, ecdsa-with-SHA1, ecdsa-with-SHA256: SHA-256.
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05 | 0x0b]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02] => &digest::SHA256,
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03] => &digest::SHA384,
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]
        | [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04] => &digest::SHA512,
        // Ed25519, RSA-PSS and the rest: no binding (the server then offers plain SCRAM).
        _ => return None,
    };
    Some(digest::digest(algorithm, cert).as_ref().to_vec())
}

/// The OID bytes of `Certificate.signatureAlgorithm` (the second element of the outer SEQUENCE).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (0x30, body, _) = der(cert)? else {
        return None;
    };
    let (_, _tbs, rest) = der(body)?;
    let (0x30, algorithm, _) = der(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der(algorithm)? else {
        return None;
    };
    Some(oid)
}

/// One DER element: (tag, contents, the rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (
            rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            &rest[n..],
        )
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn hashes_with_the_certificates_signature_hash() {
        let p256 = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            server_end_point(&p256).unwrap(),
            digest::digest(&digest::SHA256, &p256).as_ref()
        );
        let p384 = cert(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(server_end_point(&p384).unwrap().len(), 48);
        assert_eq!(server_end_point(&cert(&rcgen::PKCS_ED25519)), None);
    }

    #[test]
    fn rejects_truncated_or_foreign_der() {
        let p256 = cert(&rcgen::PKCS_ECDSA_P256_SHA256);
        for len in [0, 1, 2, 10, p256.len() / 2] {
            assert_eq!(server_end_point(&p256[..len]), None, "{len}");
        }
        assert_eq!(server_end_point(b"\x04\x03abc"), None);
        assert_eq!(der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
