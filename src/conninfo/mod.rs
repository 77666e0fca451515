//! libpq-compatible connection settings: which keywords exist, where each value came from, and
//! how the layers (flags, connection string, `PG*` variables, defaults) resolve into one
//! [`ConnParams`].
//!
//! tokio-postgres' own parser rejects libpq keywords it doesn't know and reads no environment, so
//! pgwait owns this layer. Values are kept with their [`Origin`] so every error names the flag or
//! variable the user has to fix. Passwords are wrapped in [`Secret`] and never printed.

mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use parse::SyntaxError;

/// libpq's default port.
pub const DEFAULT_PORT: u16 = 5432;
/// Debian's (and the official image's) socket directory, used when it exists and no host is set.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Where a setting came from, so errors can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `-p/--port`.
    Flag(&'static str),
    /// The connection string given with `-d/--dbname`.
    DbnameArg,
    /// An environment variable such as `PGPORT` or `DATABASE_URL`.
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "{flag}"),
            Self::DbnameArg => write!(f, "-d/--dbname"),
            Self::Env(var) => write!(f, "{var}"),
        }
    }
}

/// A configuration error in connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnError {
    Syntax {
        origin: Origin,
        error: SyntaxError,
    },
    UnknownKeyword {
        origin: Origin,
        keyword: String,
    },
    Unsupported {
        origin: Origin,
        keyword: String,
        why: &'static str,
    },
    InvalidValue {
        origin: Origin,
        keyword: &'static str,
        value: String,
        expected: &'static str,
    },
    EmptyHost {
        origin: Origin,
    },
    ListLengths {
        what: &'static str,
        expected: usize,
        got: usize,
    },
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax { origin, error } => {
                write!(f, "malformed connection string in {origin}: {error}")
            }
            Self::UnknownKeyword { origin, keyword } => {
                write!(f, "unknown connection option \"{keyword}\" in {origin}")
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
                value,
                expected,
            } => {
                write!(
                    f,
                    "invalid {keyword} \"{value}\" in {origin}: expected {expected}"
                )
            }
            Self::EmptyHost { origin } => write!(f, "empty host name in {origin}"),
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
        }
    }
}

/// A password: compared and used, never displayed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp { host, port, .. } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Tcp { host, port, .. } => write!(f, "{host}:{port}"),
            Self::Socket { dir, port } => write!(f, "{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

/// Everything needed to make one connection attempt, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParams {
    /// Servers in libpq order; an attempt tries them in turn.
    pub endpoints: Vec<Endpoint>,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub application_name: String,
    /// Command-line options sent to the server at startup (libpq `options`).
    pub options: Option<String>,
    /// libpq `connect_timeout`, if set to a positive number of seconds.
    pub connect_timeout: Option<Duration>,
}

/// What pgwait does with a libpq keyword.
enum Support {
    Used,
    /// Accepted and ignored: it cannot change whether the server accepts the application.
    Ignored,
    /// A real libpq keyword this version cannot honour; using it must not silently do less.
    NotYet(&'static str),
}

const NEEDS_TLS: &str = "TLS is not available in this pgwait version";

fn support(keyword: &str) -> Option<Support> {
    Some(match keyword {
        "host"
        | "hostaddr"
        | "port"
        | "dbname"
        | "user"
        | "password"
        | "connect_timeout"
        | "application_name"
        | "fallback_application_name"
        | "options"
        | "sslmode"
        | "target_session_attrs"
        | "channel_binding"
        | "gssencmode" => Support::Used,
        "keepalives"
        | "keepalives_idle"
        | "keepalives_interval"
        | "keepalives_count"
        | "tcp_user_timeout"
        | "client_encoding"
        | "krbsrvname"
        | "gsslib"
        | "gssdelegation" => Support::Ignored,
        "sslrootcert"
        | "sslcert"
        | "sslkey"
        | "sslpassword"
        | "sslcrl"
        | "sslcrldir"
        | "sslsni"
        | "sslcompression"
        | "sslnegotiation"
        | "ssl_min_protocol_version"
        | "ssl_max_protocol_version"
        | "sslcertmode"
        | "requiressl" => Support::NotYet(NEEDS_TLS),
        "passfile" => {
            Support::NotYet("password files are not read by this version; use PGPASSWORD")
        }
        "service" => Support::NotYet("service files are not read by this version"),
        "requirepeer" | "require_auth" | "load_balance_hosts" | "replication" => {
            Support::NotYet("this version does not implement it")
        }
        _ => return None,
    })
}

/// `PG*` variables pgwait reads, and the keyword each one sets.
pub const ENV_KEYWORDS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGSSLMODE", "sslmode"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGGSSENCMODE", "gssencmode"),
];

/// Splits a `-d` value into keyword pairs: a URI, a conninfo string, or a plain database name.
pub fn parse_connection_string(
    s: &str,
    origin: Origin,
) -> Result<Vec<(String, String)>, ConnError> {
    let parsed = if parse::is_uri(s) {
        parse::parse_uri(s)
    } else if parse::is_conninfo(s) {
        parse::parse_conninfo(s)
    } else {
        Ok(vec![("dbname".to_string(), s.to_string())])
    };
    parsed.map_err(|error| ConnError::Syntax { origin, error })
}

/// Connection settings gathered layer by layer; a later [`Settings::set`] overrides an earlier one.
#[derive(Default)]
pub struct Settings {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = self.values.iter().map(|(k, (v, origin))| {
            let shown = if *k == "password" { "***" } else { v.as_str() };
            (*k, (shown, *origin))
        });
        f.debug_map().entries(redacted).finish()
    }
}

impl Settings {
    /// Records `keyword = value` from `origin`, rejecting unknown and unsupported keywords.
    pub fn set(&mut self, keyword: &str, value: String, origin: Origin) -> Result<(), ConnError> {
        let keyword = canonical(keyword).ok_or_else(|| ConnError::UnknownKeyword {
            origin,
            keyword: keyword.into(),
        })?;
        match support(keyword) {
            Some(Support::Used) => {
                self.values.insert(keyword, (value, origin));
            }
            Some(Support::Ignored) => {}
            Some(Support::NotYet(why)) => {
                return Err(ConnError::Unsupported {
                    origin,
                    keyword: keyword.into(),
                    why,
                })
            }
            None => unreachable!("canonical() only returns known keywords"),
        }
        Ok(())
    }

    /// Records every pair of a parsed connection string.
    pub fn set_all(
        &mut self,
        pairs: Vec<(String, String)>,
        origin: Origin,
    ) -> Result<(), ConnError> {
        pairs
            .into_iter()
            .try_for_each(|(k, v)| self.set(&k, v, origin))
    }

    fn get(&self, keyword: &str) -> Option<(&str, Origin)> {
        self.values.get(keyword).map(|(v, o)| (v.as_str(), *o))
    }

    /// Applies libpq's defaults and checks every value. `default_user` is the OS user name;
    /// `socket_dir_exists` says whether the default socket directory is there.
    pub fn resolve(
        &self,
        default_user: &str,
        socket_dir_exists: bool,
    ) -> Result<ConnParams, ConnError> {
        self.check_modes()?;
        let user = self
            .get("user")
            .map_or(default_user, |(u, _)| u)
            .to_string();
        let dbname = self
            .get("dbname")
            .map_or(user.as_str(), |(d, _)| d)
            .to_string();
        let application_name = self
            .get("application_name")
            .or_else(|| self.get("fallback_application_name"))
            .map_or("pgwait", |(a, _)| a)
            .to_string();
        Ok(ConnParams {
            endpoints: self.endpoints(socket_dir_exists)?,
            user,
            password: self.get("password").map(|(p, _)| Secret(p.to_string())),
            dbname,
            application_name,
            options: self.get("options").map(|(o, _)| o.to_string()),
            connect_timeout: self.connect_timeout()?,
        })
    }

    /// Modes whose stricter values need features this version lacks must fail, not weaken.
    fn check_modes(&self) -> Result<(), ConnError> {
        let checks: [(&'static str, &[&str], &[&str], &'static str); 4] = [
            (
                "sslmode",
                &["disable", "allow", "prefer"],
                &["require", "verify-ca", "verify-full"],
                NEEDS_TLS,
            ),
            (
                "target_session_attrs",
                &["any"],
                &[
                    "read-write",
                    "read-only",
                    "primary",
                    "standby",
                    "prefer-standby",
                ],
                "this version only waits for any server",
            ),
            (
                "channel_binding",
                &["disable", "prefer"],
                &["require"],
                NEEDS_TLS,
            ),
            (
                "gssencmode",
                &["disable", "prefer"],
                &["require"],
                "GSSAPI is not available",
            ),
        ];
        for (keyword, ok, known, why) in checks {
            let Some((value, origin)) = self.get(keyword) else {
                continue;
            };
            if known.contains(&value) {
                return Err(ConnError::Unsupported {
                    origin,
                    keyword: format!("{keyword}={value}"),
                    why,
                });
            }
            if !ok.contains(&value) {
                let expected = match keyword {
                    "sslmode" => "disable, allow, prefer, require, verify-ca or verify-full",
                    "target_session_attrs" => {
                        "any, read-write, read-only, primary, standby or prefer-standby"
                    }
                    _ => "disable, prefer or require",
                };
                return Err(ConnError::InvalidValue {
                    origin,
                    keyword,
                    value: value.into(),
                    expected,
                });
            }
        }
        Ok(())
    }

    fn connect_timeout(&self) -> Result<Option<Duration>, ConnError> {
        let Some((value, origin)) = self.get("connect_timeout") else {
            return Ok(None);
        };
        let secs: i64 = value.trim().parse().map_err(|_| ConnError::InvalidValue {
            origin,
            keyword: "connect_timeout",
            value: value.into(),
            expected: "a whole number of seconds",
        })?;
        // libpq: zero or negative means "no limit"; pgwait then uses its own default.
        Ok((secs > 0).then(|| Duration::from_secs(secs.unsigned_abs())))
    }

    fn endpoints(&self, socket_dir_exists: bool) -> Result<Vec<Endpoint>, ConnError> {
        let hosts = match self.get("host") {
            Some((h, origin)) => split_list(h, origin)?,
            None => Vec::new(),
        };
        let hostaddrs = match self.get("hostaddr") {
            Some((h, origin)) => parse_hostaddrs(h, origin)?,
            None => Vec::new(),
        };
        let count = hosts.len().max(hostaddrs.len()).max(1);
        if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
            return Err(ConnError::ListLengths {
                what: "hostaddr",
                expected: hosts.len(),
                got: hostaddrs.len(),
            });
        }
        let ports = self.ports(count)?;
        let default_host = if socket_dir_exists {
            DEFAULT_SOCKET_DIR
        } else {
            "localhost"
        };
        Ok((0..count)
            .map(|i| {
                let hostaddr = hostaddrs.get(i).copied();
                let host = hosts.get(i).cloned().unwrap_or_else(|| match hostaddr {
                    Some(addr) => addr.to_string(),
                    None => default_host.to_string(),
                });
                endpoint(host, hostaddr, ports[i])
            })
            .collect())
    }

    fn ports(&self, count: usize) -> Result<Vec<u16>, ConnError> {
        let Some((value, origin)) = self.get("port") else {
            return Ok(vec![DEFAULT_PORT; count]);
        };
        let ports = value
            .split(',')
            .map(|p| parse_port(p, origin))
            .collect::<Result<Vec<_>, _>>()?;
        match ports.len() {
            1 => Ok(vec![ports[0]; count]),
            n if n == count => Ok(ports),
            got => Err(ConnError::ListLengths {
                what: "port",
                expected: count,
                got,
            }),
        }
    }
}

fn canonical(keyword: &str) -> Option<&'static str> {
    const ALL: &[&str] = &[
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "connect_timeout",
        "application_name",
        "fallback_application_name",
        "options",
        "sslmode",
        "target_session_attrs",
        "channel_binding",
        "gssencmode",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "client_encoding",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslcompression",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "sslcertmode",
        "requiressl",
        "passfile",
        "service",
        "requirepeer",
        "require_auth",
        "load_balance_hosts",
        "replication",
    ];
    ALL.iter().copied().find(|k| *k == keyword)
}

fn split_list(value: &str, origin: Origin) -> Result<Vec<String>, ConnError> {
    let items: Vec<String> = value.split(',').map(|h| h.trim().to_string()).collect();
    if items.iter().any(String::is_empty) {
        return Err(ConnError::EmptyHost { origin });
    }
    Ok(items)
}

fn parse_hostaddrs(value: &str, origin: Origin) -> Result<Vec<IpAddr>, ConnError> {
    split_list(value, origin)?
        .into_iter()
        .map(|a| {
            a.parse().map_err(|_| ConnError::InvalidValue {
                origin,
                keyword: "hostaddr",
                value: a.clone(),
                expected: "a numeric IPv4 or IPv6 address",
            })
        })
        .collect()
}

fn parse_port(value: &str, origin: Origin) -> Result<u16, ConnError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(ConnError::InvalidValue {
            origin,
            keyword: "port",
            value: value.into(),
            expected: "a number from 1 to 65535",
        }),
    }
}

fn endpoint(host: String, hostaddr: Option<IpAddr>, port: u16) -> Endpoint {
    if host.starts_with('/') {
        Endpoint::Socket {
            dir: PathBuf::from(host),
            port,
        }
    } else {
        Endpoint::Tcp {
            host,
            hostaddr,
            port,
        }
    }
}

#[cfg(test)]
mod tests;
