//! TLS client configuration from libpq's `ssl*` settings, built once at start-up with rustls and
//! the ring provider (no OpenSSL, so the binary stays static and small).
//!
//! Verification follows libpq: `verify-full` checks the chain and the host name, `verify-ca` the
//! chain only, and `require`/`prefer`/`allow` check the chain only when a root certificate file
//! is present (libpq's rule), otherwise nothing — but handshake signatures are always checked.

use std::fmt;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::conninfo::{CertMode, FileSetting, RootCert, SslMode, TlsParams, TlsVersion};

/// A TLS setup that cannot work: a permanent failure (exit 3), named for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// A file the sslmode needs is not there.
    Missing {
        what: &'static str,
        path: String,
        hint: &'static str,
    },
    /// A file exists but cannot be read or parsed.
    Unusable {
        what: &'static str,
        path: String,
        detail: String,
    },
    /// A client key given without its certificate, or the reverse.
    Unpaired {
        have: &'static str,
        path: String,
        missing: &'static str,
    },
    /// The private key is readable by others (libpq refuses such keys too).
    KeyPermissions { path: String },
    /// rustls rejected the combination (e.g. the key does not match the certificate).
    Config { detail: String },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { what, path, hint } => write!(f, "{what} \"{path}\" does not exist; {hint}"),
            Self::Unusable { what, path, detail } => write!(f, "cannot use {what} \"{path}\": {detail}"),
            Self::Unpaired { have, path, missing } => write!(f, "{have} \"{path}\" is given but no {missing} (sslcert and sslkey go together)"),
            Self::KeyPermissions { path } => write!(
                f,
                "private key file \"{path}\" has group or world access; it must be u=rw (0600) or less, \
                 or u=rw,g=r (0640) or less if owned by root"
            ),
            Self::Config { detail } => write!(f, "TLS configuration rejected: {detail}"),
        }
    }
}

/// How the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verification {
    None,
    Chain,
    ChainAndName,
}

/// A ready-to-use TLS client setup.
#[derive(Clone)]
pub struct Tls {
    pub mode: SslMode,
    pub direct: bool,
    pub config: Arc<ClientConfig>,
    /// `sslcertmode=require`: the server must ask for the client certificate and get one.
    pub cert_required: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tls({})", self.mode.name())
    }
}

const ROOT_HINT: &str = "either provide the file (sslrootcert), use the system's trusted roots with \
                         sslrootcert=system, or change sslmode to disable server certificate verification";

/// Builds the TLS setup, or `None` for `sslmode=disable`.
pub fn setup(params: &TlsParams) -> Result<Option<Tls>, TlsError> {
    if params.mode == SslMode::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = verifier(params, &provider)?;
    let versions = protocol_versions(params.min_version, params.max_version);
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config {
            detail: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match client_identity(params)? {
        Some((certs, key)) => {
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Config {
                    detail: e.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.enable_sni = params.sni;
    if let Some(path) = &params.keylog {
        config.key_log = Arc::new(KeyLogFile::new(path));
    }
    if params.direct {
        // PostgreSQL 17 requires this ALPN for direct TLS connections.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
    }
    Ok(Some(Tls {
        mode: params.mode,
        direct: params.direct,
        config: Arc::new(config),
        cert_required: params.cert_mode == CertMode::Require,
    }))
}

/// What a TLS handshake showed `--diagnose`: the server's chain, and what the verifier the
/// sslmode and root certificate call for made of it (its words when it refused).
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    pub chain: Vec<CertificateDer<'static>>,
    pub verdict: Option<Result<(), String>>,
}

/// A client setup for `--diagnose` that completes the handshake whatever the certificate, so the
/// certificate can be shown, and records what the real verification would have said.
pub fn inspecting(
    params: &TlsParams,
) -> Result<(Arc<ClientConfig>, Arc<std::sync::Mutex<Inspected>>), TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let record = Arc::new(std::sync::Mutex::new(Inspected::default()));
    let inspector = Arc::new(Inspector {
        inner: verifier(params, &provider)?,
        record: record.clone(),
    });
    let versions = protocol_versions(params.min_version, params.max_version);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Config {
            detail: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(inspector)
        .with_no_client_auth();
    config.enable_sni = params.sni;
    Ok((Arc::new(config), record))
}

/// Records the chain and the real verifier's verdict, then lets the handshake go on.
#[derive(Debug)]
struct Inspector {
    inner: Arc<dyn ServerCertVerifier>,
    record: Arc<std::sync::Mutex<Inspected>>,
}

impl ServerCertVerifier for Inspector {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Ok(mut record) = self.record.lock() {
            record.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            record.verdict = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `sslkeylogfile`: the session secrets in NSS key log format, appended as libpq does (the file
/// is created 0600). Best effort, like libpq: a file that cannot be written costs nothing else.
#[derive(Debug)]
struct KeyLogFile {
    path: std::path::PathBuf,
}

impl KeyLogFile {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        let file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path);
        if let Ok(mut file) = file {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

fn protocol_versions(
    min: TlsVersion,
    max: Option<TlsVersion>,
) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut versions = Vec::new();
    if max.is_none_or(|m| m >= TlsVersion::V1_3) {
        versions.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::V1_2 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}

fn verifier(
    params: &TlsParams,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let wants = match params.mode {
        SslMode::VerifyFull => Verification::ChainAndName,
        SslMode::VerifyCa => Verification::Chain,
        _ => Verification::None,
    };
    let roots = match (&params.rootcert, wants) {
        (Some(RootCert::System), _) => Some(system_roots(params.system_bundle.as_deref())),
        (Some(RootCert::File { path, .. }), Verification::None) if !path.exists() => None,
        (Some(RootCert::File { path, .. }), _) => Some(load_roots(path)?),
        (None, Verification::None) => None,
        (None, _) => {
            return Err(TlsError::Missing {
                what: "root certificate file",
                path: "~/.postgresql/root.crt".into(),
                hint: ROOT_HINT,
            })
        }
    };
    let Some(roots) = roots else {
        return Ok(Arc::new(NoVerification(provider.clone())));
    };
    let mut builder =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    // libpq: a CRL file or directory that is not there is silently not used.
    if let Some(crl) = params.crl.as_ref().filter(|p| p.exists()) {
        builder = builder.with_crls(load_crls(crl)?);
    }
    if let Some(dir) = params.crl_dir.as_ref().filter(|p| p.exists()) {
        builder = builder.with_crls(load_crl_dir(dir)?);
    }
    let webpki = builder.build().map_err(|e| TlsError::Config {
        detail: e.to_string(),
    })?;
    // libpq: a root certificate that is present upgrades the weaker modes to verify-ca.
    Ok(match wants {
        Verification::ChainAndName => webpki,
        _ => Arc::new(ChainOnly(webpki)),
    })
}

/// The system's roots: its PEM bundle when it has one (so a CA the image added is trusted, as
/// libpq's and the drivers' TLS stacks trust it), else the built-in web roots (a scratch image).
fn system_roots(bundle: Option<&Path>) -> RootCertStore {
    let mut store = RootCertStore::empty();
    if let Some(Ok(certs)) = bundle.map(CertificateDer::pem_file_iter) {
        for cert in certs.flatten() {
            // One unusable entry must not cost the others.
            let _ = store.add(cert);
        }
    }
    if store.is_empty() {
        store.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
    }
    store
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let what = "root certificate file";
    if !path.exists() {
        return Err(TlsError::Missing {
            what,
            path: path.display().to_string(),
            hint: ROOT_HINT,
        });
    }
    let mut store = RootCertStore::empty();
    for cert in load_certs(path, what)? {
        store.add(cert).map_err(|e| unusable(what, path, e))?;
    }
    Ok(store)
}

fn load_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unusable(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(what, path, e))?;
    if certs.is_empty() {
        return Err(unusable(what, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let what = "certificate revocation list";
    CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|e| unusable(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(what, path, e))
}

/// `sslcrldir`: OpenSSL looks CRLs up by hashed file name (`c_rehash`); reading every file
/// finds the same ones.
fn load_crl_dir(dir: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let what = "certificate revocation list directory";
    let entries = fs::read_dir(dir).map_err(|e| unusable(what, dir, e))?;
    let mut crls = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| unusable(what, dir, e))?.path();
        if path.is_file() {
            crls.extend(load_crls(&path)?);
        }
    }
    Ok(crls)
}

fn unusable(what: &'static str, path: &Path, detail: impl fmt::Display) -> TlsError {
    TlsError::Unusable {
        what,
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

/// The client certificate and key, when both are configured (explicitly, or present at the
/// default locations).
fn client_identity(
    params: &TlsParams,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
    let present = |f: &Option<FileSetting>| {
        f.as_ref()
            .filter(|f| f.explicit || f.path.exists())
            .map(|f| f.path.clone())
    };
    if params.cert_mode == CertMode::Disable {
        return Ok(None);
    }
    let (cert, key) = (present(&params.cert), present(&params.key));
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(cert), None) => Err(TlsError::Unpaired {
            have: "certificate",
            path: cert.display().to_string(),
            missing: "private key",
        }),
        (None, Some(key)) => Err(TlsError::Unpaired {
            have: "private key",
            path: key.display().to_string(),
            missing: "certificate",
        }),
        (Some(cert), Some(key)) => {
            let certs = load_certs(&cert, "client certificate file")?;
            check_key_permissions(&key)?;
            let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
                // libpq decrypts such a key with sslpassword; rustls cannot.
                let encrypted = fs::read_to_string(&key)
                    .is_ok_and(|pem| pem.contains("ENCRYPTED"));
                match encrypted {
                    true => unusable(
                        "private key file",
                        &key,
                        "it is encrypted; pgwait cannot use sslpassword: decrypt it (openssl pkey -in KEY -out PLAIN)",
                    ),
                    false => unusable("private key file", &key, e),
                }
            })?;
            Ok(Some((certs, key)))
        }
    }
}

/// libpq's rule: 0600 or less if owned by the user, 0640 or less if owned by root.
fn check_key_permissions(path: &Path) -> Result<(), TlsError> {
    let meta = fs::metadata(path).map_err(|e| unusable("private key file", path, e))?;
    if !meta.is_file() {
        return Err(unusable("private key file", path, "not a regular file"));
    }
    let mode = meta.permissions().mode();
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & 0o777 & !allowed != 0 {
        return Err(TlsError::KeyPermissions {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Accepts any certificate (libpq's `require` without a root file) but still checks that the
/// server holds the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI chain check, minus the host name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                ..
            })) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
