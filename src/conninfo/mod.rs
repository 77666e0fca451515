//! libpq-compatible connection settings: which keywords exist ([`keywords`]), their syntax
//! ([`parse`]), service files ([`service`]), and how the layers (flags, connection string, service
//! file, `PG*` variables, defaults) resolve into one [`ConnParams`] ([`settings`]).
//!
//! tokio-postgres' own parser rejects libpq keywords it doesn't know and reads no environment, so
//! pgwait owns this layer. Values keep their [`Origin`] so every error names the flag or variable
//! the user has to fix. Passwords are wrapped in [`Secret`] and never printed.

mod keywords;
mod parse;
pub mod service;
mod settings;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use keywords::ENV_KEYWORDS;
pub use parse::SyntaxError;
pub use settings::Settings;

/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// Debian's (and the official image's) socket directory, used when it exists and no host is set.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Where a setting came from, so errors can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, by its names in the flag table, e.g. `-p, --port`.
    Flag(&'static str),
    /// The connection string given with `-d/--dbname`.
    DbnameArg,
    /// An environment variable such as `PGPORT` or `DATABASE_URL`.
    Env(&'static str),
    /// A service file entry.
    Service,
    /// A file libpq looks for in the home directory (`~/.pg_service.conf`).
    HomeDir,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(names) => f.write_str(&names.replace(", ", "/")),
            Self::DbnameArg => write!(f, "-d/--dbname"),
            Self::Env(var) => write!(f, "{var}"),
            Self::Service => write!(f, "the service file"),
            Self::HomeDir => write!(f, "the home directory"),
        }
    }
}

/// A configuration error in connection settings (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    Syntax {
        origin: Origin,
        error: SyntaxError,
    },
    /// A keyword libpq doesn't know: named when it is a plain lowercase word, else by its place
    /// only (it may be a piece of a password that a missing quote split off); with what is
    /// known about it (a typo, a retired keyword, another driver's parameter).
    UnknownKeyword {
        origin: Origin,
        /// 1-based number of the `key=value` pair in its source.
        position: usize,
        /// The keyword, when it is `[a-z_]+` (no secret looks like that and is cut there).
        name: Option<String>,
        explanation: Option<keywords::Unknown>,
    },
    /// `scheme://…` with a scheme that is not PostgreSQL's.
    UnsupportedScheme {
        origin: Origin,
        scheme: String,
    },
    /// A single setting holding a URI or conninfo text (it would be used literally, and logged).
    LooksLikeConnectionString {
        origin: Origin,
        keyword: &'static str,
    },
    /// A value with a NUL byte (`%00`): it cannot reach a resolver or a server intact.
    NulByte {
        origin: Origin,
        keyword: &'static str,
    },
    Unsupported {
        origin: Origin,
        keyword: String,
        why: &'static str,
    },
    /// A value that doesn't parse; the value is not quoted (a password can land anywhere).
    InvalidValue {
        origin: Origin,
        keyword: &'static str,
        expected: &'static str,
    },
    ListLengths {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A list setting (`require_auth`) broken in a way libpq names; `item` is a list entry of
    /// a setting that holds no secret.
    BadList {
        origin: Origin,
        keyword: &'static str,
        problem: &'static str,
        item: String,
    },
    Conflict {
        origin: Origin,
        what: String,
    },
    Service {
        message: String,
    },
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { origin, error } => {
                write!(f, "malformed connection string in {origin}: {error}")
            }
            Self::UnknownKeyword {
                origin,
                position,
                name,
                explanation,
            } => {
                use keywords::Unknown;
                match (name, explanation) {
                    (_, Some(Unknown::OtherDriver(keyword, driver))) => write!(
                        f,
                        "connection option \"{keyword}\" in {origin} is not libpq's but a parameter of {driver}"
                    ),
                    (Some(name), _) => {
                        write!(f, "unknown connection option \"{name}\" in {origin}")
                    }
                    (None, _) => write!(
                        f,
                        "unknown connection option (keyword {position} in {origin}; not shown, as it may hold a secret)"
                    ),
                }?;
                match explanation {
                    Some(Unknown::Typo(known)) => write!(f, "; did you mean \"{known}\"?"),
                    Some(Unknown::Retired(why)) => write!(f, ": {why}"),
                    Some(Unknown::OtherDriver(..)) | None => Ok(()),
                }
            }
            Self::UnsupportedScheme { origin, scheme } => {
                write!(
                    f,
                    "unsupported URI scheme \"{scheme}\" in {origin}: expected postgresql:// or postgres://"
                )?;
                if scheme.to_ascii_lowercase().starts_with("jdbc:") {
                    write!(f, " (drop the \"jdbc:\" prefix)")?;
                }
                Ok(())
            }
            Self::LooksLikeConnectionString { origin, keyword } => write!(
                f,
                "{keyword} in {origin} looks like a connection string: pass those with -d/--dbname or DATABASE_URL"
            ),
            Self::NulByte { origin, keyword } => {
                write!(f, "{keyword} in {origin} contains a NUL byte (%00)")
            }
            Self::Unsupported {
                origin,
                keyword,
                why,
            } => {
                write!(
                    f,
                    "connection option \"{keyword}\" in {origin} is not supported: {why}"
                )
            }
            Self::InvalidValue {
                origin,
                keyword,
                expected,
            } => write!(f, "invalid {keyword} in {origin}: expected {expected}"),
            Self::ListLengths {
                what,
                expected,
                got,
            } => {
                write!(
                    f,
                    "{what} lists {got} values but there are {expected} hosts"
                )
            }
            Self::BadList {
                origin,
                keyword,
                problem,
                item,
            } => write!(f, "{keyword} in {origin}: {problem}: \"{item}\""),
            Self::Conflict { origin, what } => write!(f, "{what} (in {origin})"),
            Self::Service { message } => f.write_str(message),
        }
    }
}

/// A password: used for authentication, never displayed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(password: String) -> Self {
        Self(password)
    }

    /// The password itself, for the authentication exchange only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How to reach one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP: `host` is resolved unless `hostaddr` gives the address.
    Tcp {
        host: String,
        hostaddr: Option<IpAddr>,
        port: u16,
    },
    /// A Unix-domain socket `dir/.s.PGSQL.port`.
    Socket { dir: PathBuf, port: u16 },
}

impl Endpoint {
    pub fn port(&self) -> u16 {
        match self {
            Self::Tcp { port, .. } | Self::Socket { port, .. } => *port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port, .. } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port, .. } => write!(f, "{host}:{port}"),
            Self::Socket { dir, port } => write!(f, "{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file; `explicit` if the user named it (the default `~/.postgresql/root.crt` is
    /// optional unless the sslmode verifies).
    File { path: PathBuf, explicit: bool },
    /// `sslrootcert=system`: the built-in public roots.
    System,
}

/// A file setting with a libpq default location that is used only if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    pub path: PathBuf,
    pub explicit: bool,
}

/// TLS protocol versions named by `ssl_min_protocol_version` / `ssl_max_protocol_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

/// Everything TLS, as libpq's keywords say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    pub rootcert: Option<RootCert>,
    pub cert: Option<FileSetting>,
    pub key: Option<FileSetting>,
    pub crl: Option<PathBuf>,
    /// Send SNI (`sslsni`, default on).
    pub sni: bool,
    /// `sslnegotiation=direct`: TLS at once, without SSLRequest (PostgreSQL 17+).
    pub direct: bool,
    pub min_version: TlsVersion,
    pub max_version: Option<TlsVersion>,
    /// `sslcrldir`: a directory of CRL files (OpenSSL's hashed layout; every file is read).
    pub crl_dir: Option<PathBuf>,
    /// `sslcertmode`: whether to offer the client certificate, and whether the server must ask.
    pub cert_mode: CertMode,
    /// The system roots' PEM bundle (see [`Defaults::system_roots`]).
    pub system_bundle: Option<PathBuf>,
    /// `sslkeylogfile`: append each session's TLS secrets here (NSS key log format), for
    /// decrypting a capture.
    pub keylog: Option<PathBuf>,
}

/// libpq's `sslcertmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertMode {
    /// Never send the client certificate.
    Disable,
    /// Send it if the server asks (the default).
    Allow,
    /// Send it, and fail if the server did not ask for one.
    Require,
}

/// An authentication method `require_auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Password,
    Md5,
    Gss,
    Sspi,
    ScramSha256,
    OAuth,
}

impl AuthKind {
    /// libpq's names, in `require_auth` syntax.
    pub const NAMES: [(&'static str, AuthKind); 6] = [
        ("password", Self::Password),
        ("md5", Self::Md5),
        ("gss", Self::Gss),
        ("sspi", Self::Sspi),
        ("scram-sha-256", Self::ScramSha256),
        ("oauth", Self::OAuth),
    ];

    /// The method behind an Authentication request: its code, and for SASL (10) the first
    /// mechanism libpq would pick from those offered. `None` for codes no method owns (0 OK,
    /// 11/12 SASL continue/final) and for mechanisms libpq does not speak.
    pub fn of_request(code: u32, mechanisms: &[String]) -> Option<AuthKind> {
        match code {
            3 => Some(Self::Password),
            5 => Some(Self::Md5),
            7 | 8 => Some(Self::Gss),
            9 => Some(Self::Sspi),
            10 => mechanisms.iter().find_map(|m| match m.as_str() {
                "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Some(Self::ScramSha256),
                "OAUTHBEARER" => Some(Self::OAuth),
                _ => None,
            }),
            _ => None,
        }
    }
}

/// libpq's `require_auth`: the authentication a server may ask for, checked before any
/// password or SCRAM proof is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// The setting as written (a list of method names, never a secret), for messages.
    pub text: String,
    pub allowed: Vec<AuthKind>,
    /// Whether the server must authenticate the client (`none` not allowed).
    pub required: bool,
}

/// Why a server's Authentication request breaks `require_auth`, in libpq's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthViolation {
    /// AuthenticationOk before any exchange, while `none` is not allowed.
    NotCompleted,
    /// A method the list does not allow.
    Requested(Option<AuthKind>),
}

impl RequireAuth {
    /// Checks one Authentication request (`code`, SASL mechanisms) against the setting;
    /// `exchanged` says whether an authentication exchange already took place.
    pub fn check(
        &self,
        code: u32,
        mechanisms: &[String],
        exchanged: bool,
    ) -> Result<(), AuthViolation> {
        match code {
            0 if self.required && !exchanged => Err(AuthViolation::NotCompleted),
            0 | 11 | 12 => Ok(()),
            _ => match AuthKind::of_request(code, mechanisms) {
                Some(kind) if self.allowed.contains(&kind) => Ok(()),
                kind => Err(AuthViolation::Requested(kind)),
            },
        }
    }
}

/// Protocol versions named by `min_protocol_version` / `max_protocol_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProtocolVersion {
    V3_0,
    V3_2,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

/// libpq's `target_session_attrs`: which kind of server counts as ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
    PreferStandby,
}

impl SessionAttrs {
    pub fn name(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Primary => "primary",
            Self::Standby => "standby",
            Self::PreferStandby => "prefer-standby",
        }
    }
}

/// Which failures move an attempt on to the next host of a list (the driver's rule; libpq's by
/// default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Failover {
    /// libpq's (and asyncpg's): nothing answered, not yet (57P03), wrong kind.
    #[default]
    Libpq,
    /// Any failure (pgjdbc, Npgsql).
    AnyFailure,
    /// Any failure but a rejected login (pgx v4 stops on 28P01/28000).
    AnyButLogin,
}

/// Which of a host name's addresses an attempt tries, in which order (the driver's resolver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Addresses {
    /// Every address, in the resolver's order (libpq: getaddrinfo's, IPv6 first).
    #[default]
    AllAsResolved,
    /// Every address, IPv4 first (Go's resolver reading /etc/hosts: pgx).
    AllIpv4First,
    /// The first address only, IPv4 preferred (Java's InetAddress: pgjdbc).
    FirstIpv4First,
}

/// Whether libpq (or this table's extensions) knows `keyword`.
pub fn is_keyword(keyword: &str) -> bool {
    keywords::lookup(keyword).is_some()
}

/// Everything needed to make one connection attempt, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParams {
    /// Servers in libpq order; an attempt tries them in turn.
    pub endpoints: Vec<Endpoint>,
    pub user: String,
    /// An explicit password (conninfo, URI, password file, `PGPASSWORD`).
    pub password: Option<Secret>,
    /// The password file to consult when there is no explicit password.
    pub passfile: Option<FileSetting>,
    /// `--password-file`, when it supplied `password`: re-read when it changes.
    pub password_file: Option<PathBuf>,
    pub dbname: String,
    pub application_name: String,
    /// Command-line options sent to the server at startup (libpq `options`).
    pub options: Option<String>,
    /// libpq `connect_timeout`, if set to a positive number of seconds.
    pub connect_timeout: Option<Duration>,
    pub tls: TlsParams,
    pub channel_binding: ChannelBinding,
    pub session_attrs: SessionAttrs,
    /// `load_balance_hosts=random`: hosts, then each host's addresses, in random order.
    pub load_balance: bool,
    /// `require_auth`, when set.
    pub require_auth: Option<RequireAuth>,
    /// `requirepeer`: the OS user a server reached over a Unix socket must run as.
    pub requirepeer: Option<String>,
    /// When to try the next host (`--driver`); libpq's rule unless a driver says otherwise.
    pub failover: Failover,
    /// Which of a name's addresses are tried, in which order (`--driver`).
    pub addresses: Addresses,
    /// `prefer`: after the server refuses TLS ('N'), connect again for plain text (pgx) rather
    /// than go on over the same connection (libpq).
    pub plain_reconnects: bool,
    /// Ask for TLS over Unix sockets too (node-postgres, Npgsql); libpq never does.
    pub tls_on_sockets: bool,
}

/// The machine facts libpq's defaults depend on.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The OS user name.
    pub user: String,
    /// The home directory (for `~/.pgpass`, `~/.postgresql/`).
    pub home: Option<PathBuf>,
    /// Whether [`DEFAULT_SOCKET_DIR`] exists.
    pub socket_dir_exists: bool,
    /// The system's trusted roots as a PEM bundle (`SSL_CERT_FILE`, else the distribution's
    /// file), for `sslrootcert=system`; `None` (a scratch image): pgwait's built-in roots.
    pub system_roots: Option<PathBuf>,
}

/// Splits a `-d` value into keyword pairs: a URI, a conninfo string, or a plain database name.
pub fn parse_connection_string(
    s: &str,
    origin: Origin,
) -> Result<Vec<(String, String)>, ConnError> {
    let parsed = match parse::form_of(s) {
        parse::Form::Uri { after_scheme } => parse::parse_uri(&s[after_scheme..]),
        parse::Form::OtherUri { scheme } => {
            return Err(ConnError::UnsupportedScheme { origin, scheme })
        }
        parse::Form::Conninfo => parse::parse_conninfo(s),
        parse::Form::Dbname => Ok(vec![("dbname".to_string(), s.to_string())]),
    };
    parsed.map_err(|error| ConnError::Syntax { origin, error })
}

#[cfg(test)]
mod tests;
