//! Connection settings gathered layer by layer, then resolved with libpq's defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::keywords::{self, Support};
use super::{
    AuthKind, ChannelBinding, ConnError, ConnParams, Defaults, Endpoint, FileSetting, Origin,
    ProtocolVersion, RequireAuth, Secret, SessionAttrs, DEFAULT_PORT, DEFAULT_SOCKET_DIR,
};

mod tls;

/// Settings by keyword; a later [`Settings::set`] overrides an earlier one.
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
    /// Records `keyword = value` from `origin`, rejecting unknown and unsupported keywords;
    /// `position` numbers the pair in its source for errors that must not quote it.
    pub fn set_at(
        &mut self,
        keyword: &str,
        value: String,
        origin: Origin,
        position: usize,
    ) -> Result<(), ConnError> {
        // libpq's conninfo_storeval: the retired requiressl is sslmode in disguise.
        let (keyword, value) = match keyword {
            "requiressl" => {
                let mode = if value.starts_with('1') {
                    "require"
                } else {
                    "prefer"
                };
                ("sslmode", mode.to_string())
            }
            _ => (keyword, value),
        };
        let (keyword, support) =
            keywords::lookup(keyword).ok_or_else(|| ConnError::UnknownKeyword {
                origin,
                position,
                name: is_plain_name(keyword).then(|| keyword.to_string()),
                explanation: keywords::explain_unknown(keyword),
            })?;
        if value.contains('\0') {
            return Err(ConnError::NulByte { origin, keyword });
        }
        // A connection string in a setting that names the target (`-h "$DATABASE_URL"`,
        // `-U 'user=a password=b'`) would be used literally and shown in every line about the
        // target, password and all. Other values (an application_name with "://") are data.
        if SHOWN_KEYWORDS.contains(&keyword) && looks_like_connection_string(&value) {
            return Err(ConnError::LooksLikeConnectionString { origin, keyword });
        }
        match support {
            // Ignored keywords are kept too: libpq still checks some of their values.
            Support::Used | Support::Ignored => {
                self.values.insert(keyword, (value, origin));
                Ok(())
            }
            Support::NotYet(why) => Err(ConnError::Unsupported {
                origin,
                keyword: keyword.into(),
                why,
            }),
        }
    }

    /// Records `keyword = value` from a source with a single setting (a variable, a flag).
    pub fn set(&mut self, keyword: &str, value: String, origin: Origin) -> Result<(), ConnError> {
        self.set_at(keyword, value, origin, 1)
    }

    /// Records every pair of a parsed connection string.
    pub fn set_all(
        &mut self,
        pairs: Vec<(String, String)>,
        origin: Origin,
    ) -> Result<(), ConnError> {
        (1..)
            .zip(pairs)
            .try_for_each(|(position, (k, v))| self.set_at(&k, v, origin, position))
    }

    /// Applies a service file's entries: they beat `PG*` variables but not what the user typed.
    pub fn apply_service(&mut self, pairs: Vec<(String, String)>) -> Result<(), ConnError> {
        for (position, (keyword, value)) in (1..).zip(pairs) {
            if keyword == "service" {
                return Err(ConnError::Service {
                    message: "nested service specifications are not supported".into(),
                });
            }
            // Typed settings win, and so does the first of a keyword the file repeats.
            let typed = self
                .values
                .get(keyword.as_str())
                .is_some_and(|(_, o)| !matches!(o, Origin::Env(_)));
            if !typed {
                self.set_at(&keyword, value, Origin::Service, position)?;
            }
        }
        Ok(())
    }

    /// The value of `keyword` and where it came from.
    pub fn get(&self, keyword: &str) -> Option<(&str, Origin)> {
        self.values.get(keyword).map(|(v, o)| (v.as_str(), *o))
    }

    /// The value of `keyword` unless it is empty: libpq reads an empty value as "use the
    /// default" for names, files and lists (while it still hides the `PG*` variable).
    fn given(&self, keyword: &str) -> Option<(&str, Origin)> {
        self.get(keyword).filter(|(v, _)| !v.is_empty())
    }

    /// Applies libpq's defaults and checks every value.
    pub fn resolve(&self, defaults: &Defaults) -> Result<ConnParams, ConnError> {
        let user = self
            .given("user")
            .map_or(defaults.user.as_str(), |(u, _)| u)
            .to_string();
        let dbname = self
            .given("dbname")
            .map_or(user.as_str(), |(d, _)| d)
            .to_string();
        let application_name = self
            .given("application_name")
            .or_else(|| self.given("fallback_application_name"))
            .map_or("pgwait", |(a, _)| a)
            .to_string();
        self.check_gssencmode()?;
        self.check_protocol_versions()?;
        self.check_ignored_numbers()?;
        let endpoints = self.endpoints(defaults.socket_dir_exists)?;
        let tls = self.tls(defaults)?;
        self.check_verifiable(&tls)?;
        Ok(ConnParams {
            endpoints,
            user,
            // libpq never sends an empty password: it counts as none (then .pgpass is read).
            password: self
                .given("password")
                .map(|(p, _)| Secret::new(p.to_string())),
            passfile: self.file("passfile", defaults, ".pgpass"),
            password_file: None,
            dbname,
            application_name,
            options: self.given("options").map(|(o, _)| o.to_string()),
            connect_timeout: self.connect_timeout()?,
            tls,
            channel_binding: self
                .choice(
                    "channel_binding",
                    &[
                        ("disable", ChannelBinding::Disable),
                        ("prefer", ChannelBinding::Prefer),
                        ("require", ChannelBinding::Require),
                    ],
                    "disable, prefer or require",
                )?
                .unwrap_or(ChannelBinding::Prefer),
            session_attrs: self.session_attrs()?,
            load_balance: self
                .choice(
                    "load_balance_hosts",
                    &[("disable", false), ("random", true)],
                    "disable or random",
                )?
                .unwrap_or(false),
            require_auth: self.require_auth()?,
            requirepeer: self.given("requirepeer").map(|(u, _)| u.to_string()),
            failover: super::Failover::Libpq,
            addresses: super::Addresses::AllAsResolved,
            plain_reconnects: false,
            tls_on_sockets: false,
        })
    }

    /// Parses an enumerated keyword.
    fn choice<T: Copy>(
        &self,
        keyword: &'static str,
        table: &[(&str, T)],
        expected: &'static str,
    ) -> Result<Option<T>, ConnError> {
        let Some((value, origin)) = self.get(keyword) else {
            return Ok(None);
        };
        table
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, v)| Some(*v))
            .ok_or(ConnError::InvalidValue {
                origin,
                keyword,
                expected,
            })
    }

    /// A file keyword, or its libpq default under the home directory.
    fn file(&self, keyword: &str, defaults: &Defaults, default_name: &str) -> Option<FileSetting> {
        match self.given(keyword) {
            Some((path, _)) => Some(FileSetting {
                path: expand_home(path, defaults),
                explicit: true,
            }),
            None => defaults.home.as_ref().map(|h| FileSetting {
                path: h.join(default_name),
                explicit: false,
            }),
        }
    }

    fn session_attrs(&self) -> Result<SessionAttrs, ConnError> {
        use SessionAttrs::*;
        let table = [
            ("any", Any),
            ("read-write", ReadWrite),
            ("read-only", ReadOnly),
            ("primary", Primary),
            ("standby", Standby),
            ("prefer-standby", PreferStandby),
        ];
        let expected = "any, read-write, read-only, primary, standby or prefer-standby";
        Ok(self
            .choice("target_session_attrs", &table, expected)?
            .unwrap_or(Any))
    }

    fn check_gssencmode(&self) -> Result<(), ConnError> {
        let table = [("disable", true), ("prefer", true), ("require", false)];
        match self.choice("gssencmode", &table, "disable, prefer or require")? {
            Some(false) => Err(ConnError::Unsupported {
                origin: self.get("gssencmode").map_or(Origin::DbnameArg, |(_, o)| o),
                keyword: "gssencmode=require".into(),
                why: "GSSAPI encryption is not available",
            }),
            _ => Ok(()),
        }
    }

    /// libpq: verify-full checks the certificate against the host name, so an entry with only
    /// a `hostaddr` cannot be verified ("host name must be specified").
    fn check_verifiable(&self, tls: &super::TlsParams) -> Result<(), ConnError> {
        if tls.mode != super::SslMode::VerifyFull {
            return Ok(());
        }
        let Some((hostaddrs, origin)) = self.given("hostaddr") else {
            return Ok(());
        };
        let hosts: Vec<&str> = self
            .given("host")
            .map_or(vec![], |(h, _)| h.split(',').collect());
        let unnamed = hostaddrs
            .split(',')
            .enumerate()
            .any(|(i, a)| !a.is_empty() && hosts.get(i).is_none_or(|h| h.is_empty()));
        if unnamed {
            return Err(ConnError::Conflict {
                origin,
                what: "sslmode=verify-full needs a host name to check the certificate against; give host= with hostaddr=".into(),
            });
        }
        Ok(())
    }

    /// Keywords pgwait ignores but libpq reads as numbers: a value libpq would refuse fails the
    /// app's connection, so it is refused here too.
    fn check_ignored_numbers(&self) -> Result<(), ConnError> {
        const NUMBERS: [&str; 5] = [
            "keepalives",
            "keepalives_idle",
            "keepalives_interval",
            "keepalives_count",
            "tcp_user_timeout",
        ];
        for keyword in NUMBERS {
            if let Some((value, origin)) = self.get(keyword) {
                if parse_int(value).is_none() {
                    return Err(ConnError::InvalidValue {
                        origin,
                        keyword,
                        expected: "a whole number",
                    });
                }
            }
        }
        Ok(())
    }

    /// pgwait speaks protocol 3.0: a range that allows it is fine (the server never sees the
    /// difference), one that excludes it cannot be met.
    fn check_protocol_versions(&self) -> Result<(), ConnError> {
        use ProtocolVersion::{V3_0, V3_2};
        let table = [("3.0", V3_0), ("3.2", V3_2), ("latest", V3_2)];
        let expected = "3.0, 3.2 or latest";
        let min = self.choice("min_protocol_version", &table, expected)?;
        let max = self.choice("max_protocol_version", &table, expected)?;
        let origin = |k| self.get(k).map_or(Origin::DbnameArg, |(_, o)| o);
        if max.is_some_and(|max| min.unwrap_or(V3_0) > max) {
            return Err(ConnError::Conflict {
                origin: origin("max_protocol_version"),
                what: "min_protocol_version is greater than max_protocol_version".into(),
            });
        }
        if min == Some(V3_2) {
            return Err(ConnError::Unsupported {
                origin: origin("min_protocol_version"),
                keyword: "min_protocol_version".into(),
                why: "pgwait speaks protocol version 3.0, so a minimum of 3.2 cannot be met; leave it out for the wait",
            });
        }
        Ok(())
    }

    /// libpq's `require_auth` list: method names, all plain or all negated with `!`, each once,
    /// `none` allowing (or `!none` forbidding) a server that asks for nothing.
    fn require_auth(&self) -> Result<Option<RequireAuth>, ConnError> {
        let Some((text, origin)) = self.given("require_auth") else {
            return Ok(None);
        };
        let bad = |problem, item: &str| ConnError::BadList {
            origin,
            keyword: "require_auth",
            problem,
            item: item.chars().take(64).collect(),
        };
        let negated = text.starts_with('!');
        let mut listed = Vec::new();
        let mut none_listed = false;
        for item in text.split(',') {
            let name = match (item.strip_prefix('!'), negated) {
                (Some(name), true) => name,
                (None, false) => item,
                (Some(_), false) => {
                    return Err(bad("a negative method cannot be mixed with others", item))
                }
                (None, true) => {
                    return Err(bad("a method cannot be mixed with negative ones", item))
                }
            };
            let duplicate = if name == "none" {
                std::mem::replace(&mut none_listed, true)
            } else {
                let (_, kind) = AuthKind::NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| {
                        bad(
                            "not a method (password, md5, gss, sspi, scram-sha-256, oauth, none)",
                            name,
                        )
                    })?;
                let seen = listed.contains(kind);
                listed.push(*kind);
                seen
            };
            if duplicate {
                return Err(bad("a method is listed more than once", name));
            }
        }
        let allowed = if negated {
            AuthKind::NAMES
                .iter()
                .map(|(_, k)| *k)
                .filter(|k| !listed.contains(k))
                .collect()
        } else {
            listed
        };
        Ok(Some(RequireAuth {
            text: text.to_string(),
            allowed,
            // "none" allows a server that asks for nothing; "!none" forbids it.
            required: negated == none_listed,
        }))
    }

    fn connect_timeout(&self) -> Result<Option<Duration>, ConnError> {
        let Some((value, origin)) = self.get("connect_timeout") else {
            return Ok(None);
        };
        let secs: i64 = value.trim().parse().map_err(|_| ConnError::InvalidValue {
            origin,
            keyword: "connect_timeout",
            expected: "a whole number of seconds",
        })?;
        // libpq: zero or negative means "no limit"; pgwait then uses its own default.
        Ok((secs > 0).then(|| Duration::from_secs(secs.unsigned_abs())))
    }

    /// libpq's host, hostaddr and port lists: entries are not trimmed, an empty entry is the
    /// default (host) or none (hostaddr), and a host whose port is out of range is skipped.
    fn endpoints(&self, socket_dir_exists: bool) -> Result<Vec<Endpoint>, ConnError> {
        let hosts: Vec<&str> = match self.given("host") {
            Some((h, origin)) => {
                let hosts: Vec<&str> = h.split(',').collect();
                hosts.iter().try_for_each(|h| check_host(h, origin))?;
                hosts
            }
            None => Vec::new(),
        };
        let hostaddrs = match self.given("hostaddr") {
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
        let endpoints: Vec<Endpoint> = (0..count)
            .filter_map(|i| {
                let port = ports[i]?;
                let hostaddr = hostaddrs.get(i).copied().flatten();
                let host = match (hosts.get(i).filter(|h| !h.is_empty()), hostaddr) {
                    (Some(host), _) => host.to_string(),
                    (None, Some(addr)) => addr.to_string(),
                    (None, None) => default_host.to_string(),
                };
                Some(endpoint(host, hostaddr, port))
            })
            .collect();
        if endpoints.is_empty() {
            let origin = self.get("port").map_or(Origin::DbnameArg, |(_, o)| o);
            return Err(ConnError::InvalidValue {
                origin,
                keyword: "port",
                expected: "a number from 1 to 65535",
            });
        }
        Ok(endpoints)
    }

    /// One port per host; `None` marks a port out of range (libpq skips that host).
    fn ports(&self, count: usize) -> Result<Vec<Option<u16>>, ConnError> {
        let Some((value, origin)) = self.given("port") else {
            return Ok(vec![Some(DEFAULT_PORT); count]);
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

/// A lowercase word of at most 64 bytes: a keyword, never a piece of a secret cut at `=`.
fn is_plain_name(keyword: &str) -> bool {
    (1..=64).contains(&keyword.len())
        && keyword.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The keywords whose values pgwait prints when it names a target or a server.
const SHOWN_KEYWORDS: [&str; 5] = ["host", "hostaddr", "port", "user", "dbname"];

/// A URI, or conninfo text that sets a password.
fn looks_like_connection_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.contains("://")
        || lower
            .match_indices("password")
            .any(|(i, w)| lower[i + w.len()..].trim_start().starts_with('='))
}

/// libpq expands a leading `~/` in file keywords.
fn expand_home(path: &str, defaults: &Defaults) -> PathBuf {
    match (path.strip_prefix("~/"), &defaults.home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

/// A host is a name, an IP address (IPv6 with an optional `%zone`) or a socket directory; a
/// name with blanks is left for the resolver to refuse, as libpq does. Anything with `@`, `/`
/// or quotes (`user:pw@db`: a URI's password with an unencoded `@`) is a mistake whose text
/// must not reach the log.
fn check_host(host: &str, origin: Origin) -> Result<(), ConnError> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || "-._:% \t".contains(c);
    if is_socket(host) || host.chars().all(name_char) {
        Ok(())
    } else {
        Err(ConnError::InvalidValue {
            origin,
            keyword: "host",
            expected: "host names, IP addresses or socket directories (a URI goes in -d/--dbname; an \"@\" in a URI's password must be written %40)",
        })
    }
}

/// Numeric addresses, one per host; an empty entry is none.
fn parse_hostaddrs(value: &str, origin: Origin) -> Result<Vec<Option<IpAddr>>, ConnError> {
    value
        .split(',')
        .map(|a| {
            if a.is_empty() {
                return Ok(None);
            }
            a.parse().map(Some).map_err(|_| ConnError::InvalidValue {
                origin,
                keyword: "hostaddr",
                expected: "a numeric IPv4 or IPv6 address",
            })
        })
        .collect()
}

/// libpq's port: empty is 5432; a whole number (blanks around it allowed, as strtol reads it)
/// or an error; a number outside 1..=65535 is `None`, and libpq skips that host.
fn parse_port(value: &str, origin: Origin) -> Result<Option<u16>, ConnError> {
    if value.is_empty() {
        return Ok(Some(DEFAULT_PORT));
    }
    let number = parse_int(value).ok_or(ConnError::InvalidValue {
        origin,
        keyword: "port",
        expected: "a number from 1 to 65535",
    })?;
    Ok(u16::try_from(number).ok().filter(|p| *p > 0))
}

/// libpq's pqParseIntParam: an int as strtol reads it, with blanks around it.
fn parse_int(value: &str) -> Option<i32> {
    value.trim_start().trim_end().parse().ok()
}

/// libpq's is_unixsock_path: a directory, or `@name` for Linux's abstract socket namespace.
fn is_socket(host: &str) -> bool {
    host.starts_with('/') || host.starts_with('@')
}

fn endpoint(host: String, hostaddr: Option<IpAddr>, port: u16) -> Endpoint {
    if is_socket(host.as_str()) {
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
