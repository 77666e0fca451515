//! Connection settings gathered layer by layer, then resolved with libpq's defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::keywords::{self, Support};
use super::{
    ChannelBinding, ConnError, ConnParams, Defaults, Endpoint, FileSetting, Origin, Secret,
    SessionAttrs, DEFAULT_PORT, DEFAULT_SOCKET_DIR,
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
        let (keyword, support) =
            keywords::lookup(keyword).ok_or_else(|| ConnError::UnknownKeyword {
                origin,
                position,
                suggestion: keywords::nearest(keyword),
            })?;
        if value.contains('\0') {
            return Err(ConnError::NulByte { origin, keyword });
        }
        // A connection string in a single setting (`-h "$DATABASE_URL"`, `-U 'user=a
        // password=b'`) would be used literally and shown in every line about the target.
        if keyword != "password" && looks_like_connection_string(&value) {
            return Err(ConnError::LooksLikeConnectionString { origin, keyword });
        }
        match support {
            Support::Used => {
                self.values.insert(keyword, (value, origin));
                Ok(())
            }
            Support::Ignored => Ok(()),
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

    /// Applies libpq's defaults and checks every value.
    pub fn resolve(&self, defaults: &Defaults) -> Result<ConnParams, ConnError> {
        let user = self
            .get("user")
            .map_or(defaults.user.as_str(), |(u, _)| u)
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
        self.check_gssencmode()?;
        Ok(ConnParams {
            endpoints: self.endpoints(defaults.socket_dir_exists)?,
            user,
            // libpq never sends an empty password: it counts as none (then .pgpass is read).
            password: self
                .get("password")
                .filter(|(p, _)| !p.is_empty())
                .map(|(p, _)| Secret::new(p.to_string())),
            passfile: self.file("passfile", defaults, ".pgpass"),
            password_file: None,
            dbname,
            application_name,
            options: self.get("options").map(|(o, _)| o.to_string()),
            connect_timeout: self.connect_timeout()?,
            tls: self.tls(defaults)?,
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
        match self.get(keyword) {
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

    fn endpoints(&self, socket_dir_exists: bool) -> Result<Vec<Endpoint>, ConnError> {
        let hosts = match self.get("host") {
            Some((h, origin)) => {
                let hosts = split_list(h, origin)?;
                hosts.iter().try_for_each(|h| check_host(h, origin))?;
                hosts
            }
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

fn split_list(value: &str, origin: Origin) -> Result<Vec<String>, ConnError> {
    let items: Vec<String> = value.split(',').map(|h| h.trim().to_string()).collect();
    if items.iter().any(String::is_empty) {
        return Err(ConnError::EmptyHost { origin });
    }
    Ok(items)
}

/// A host is a name, an IP address (IPv6 with an optional `%zone`) or a socket directory.
/// Anything else (`user:pw@db`, say) is a mistake whose text must not reach the log.
fn check_host(host: &str, origin: Origin) -> Result<(), ConnError> {
    let name_char = |c: char| c.is_ascii_alphanumeric() || "-._:%".contains(c);
    if host.starts_with('/') || host.chars().all(name_char) {
        Ok(())
    } else {
        Err(ConnError::InvalidValue {
            origin,
            keyword: "host",
            expected: "host names, IP addresses or socket directories (a URI goes in -d/--dbname)",
        })
    }
}

fn parse_hostaddrs(value: &str, origin: Origin) -> Result<Vec<IpAddr>, ConnError> {
    split_list(value, origin)?
        .into_iter()
        .map(|a| {
            a.parse().map_err(|_| ConnError::InvalidValue {
                origin,
                keyword: "hostaddr",
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
