//! Syntax of libpq connection strings: `postgres://` URIs and `key=value` conninfo strings.
//!
//! Both forms are reduced to an ordered list of `(keyword, value)` pairs; which keywords are
//! allowed and what they mean is decided by the parent module. Errors never echo the input,
//! because connection strings carry passwords.

use std::fmt;

/// A syntax error in a connection string, written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// `key value` with no `=`.
    MissingEquals { key: String },
    /// A quoted value with no closing quote.
    UnterminatedQuote { key: String },
    /// `=value` with no key before it.
    EmptyKey,
    /// `[` of an IPv6 literal with no `]`.
    UnterminatedBracket,
    /// A `%` not followed by two hex digits, or decoding to invalid UTF-8.
    BadPercentEncoding,
    /// A URI query parameter without `=`.
    BadQueryParameter { param: String },
    /// Something after the host part that is neither `/`, `?` nor end of input.
    UnexpectedCharacter { found: char },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingEquals { key } => write!(f, "missing \"=\" after \"{key}\""),
            Self::UnterminatedQuote { key } => write!(f, "unterminated quoted value for \"{key}\""),
            Self::EmptyKey => write!(f, "a value is given with no keyword before \"=\""),
            Self::UnterminatedBracket => {
                write!(f, "IPv6 host address is missing its closing \"]\"")
            }
            Self::BadPercentEncoding => write!(f, "invalid percent-encoding"),
            Self::BadQueryParameter { param } => {
                write!(f, "query parameter \"{param}\" has no \"=value\"")
            }
            Self::UnexpectedCharacter { found } => {
                write!(f, "unexpected character \"{found}\" after the host part")
            }
        }
    }
}

/// Ordered `(keyword, value)` pairs; later pairs override earlier ones, as in libpq.
pub type Pairs = Vec<(String, String)>;

/// True if `s` is a URI rather than a conninfo string or a plain database name.
pub fn is_uri(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// True if `s` is a `key=value` conninfo string (libpq: it contains `=`).
pub fn is_conninfo(s: &str) -> bool {
    s.contains('=')
}

/// Parses a `key = value ...` conninfo string; values may be single-quoted with `\` escapes.
pub fn parse_conninfo(s: &str) -> Result<Pairs, SyntaxError> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(SyntaxError::MissingEquals { key });
        }
        if key.is_empty() {
            return Err(SyntaxError::EmptyKey);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = if chars.next_if_eq(&'\'').is_some() {
            read_quoted(&mut chars)
                .ok_or_else(|| SyntaxError::UnterminatedQuote { key: key.clone() })?
        } else {
            read_bare(&mut chars)
        };
        pairs.push((key, value));
    }
}

fn read_quoted(chars: &mut impl Iterator<Item = char>) -> Option<String> {
    let mut value = String::new();
    loop {
        match chars.next()? {
            '\\' => value.push(chars.next()?),
            '\'' => return Some(value),
            c => value.push(c),
        }
    }
}

fn read_bare(chars: &mut std::iter::Peekable<impl Iterator<Item = char>>) -> String {
    let mut value = String::new();
    while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
        if c == '\\' {
            if let Some(escaped) = chars.next() {
                value.push(escaped);
            }
        } else {
            value.push(c);
        }
    }
    value
}

/// Parses `postgres[ql]://[user[:password]@][host][:port][,host[:port]...][/dbname][?k=v&...]`.
pub fn parse_uri(s: &str) -> Result<Pairs, SyntaxError> {
    let rest = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
        .unwrap_or(s);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    let mut pairs = Pairs::new();
    let hostlist = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            push_userinfo(userinfo, &mut pairs)?;
            hosts
        }
        None => authority,
    };
    push_hosts(hostlist, &mut pairs)?;
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        pairs.push(("dbname".into(), percent_decode(db)?));
    }
    for param in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = param
            .split_once('=')
            .ok_or_else(|| SyntaxError::BadQueryParameter {
                param: param.into(),
            })?;
        pairs.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(pairs)
}

fn push_userinfo(userinfo: &str, pairs: &mut Pairs) -> Result<(), SyntaxError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    if !user.is_empty() {
        pairs.push(("user".into(), percent_decode(user)?));
    }
    if let Some(p) = password {
        pairs.push(("password".into(), percent_decode(p)?));
    }
    Ok(())
}

/// Splits `h1:p1,[::1]:p2,h3` into libpq's parallel `host` and `port` lists.
fn push_hosts(hostlist: &str, pairs: &mut Pairs) -> Result<(), SyntaxError> {
    if hostlist.is_empty() {
        return Ok(());
    }
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for item in hostlist.split(',') {
        let (host, port) = split_host_port(item)?;
        hosts.push(percent_decode(host)?);
        ports.push(percent_decode(port.unwrap_or(""))?);
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        pairs.push(("host".into(), hosts.join(",")));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        pairs.push(("port".into(), ports.join(",")));
    }
    Ok(())
}

fn split_host_port(item: &str) -> Result<(&str, Option<&str>), SyntaxError> {
    if let Some(inner) = item.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or(SyntaxError::UnterminatedBracket)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(SyntaxError::UnexpectedCharacter {
                found: after.chars().next().unwrap_or(' '),
            }),
        };
    }
    Ok(match item.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (item, None),
    })
}

/// Decodes `%XX` escapes; the result must be UTF-8.
pub fn percent_decode(s: &str) -> Result<String, SyntaxError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(SyntaxError::BadPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| SyntaxError::BadPercentEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| SyntaxError::BadPercentEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SyntaxError::BadPercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_conninfo_with_quotes_escapes_and_spaces() {
        let got =
            parse_conninfo(r"host=db  port = 5433 password='it''s' user='a b\'c' dbname=x\ y")
                .unwrap_err();
        // Adjacent quotes are not a libpq escape: the second quote starts a new (bad) token.
        assert!(matches!(got, SyntaxError::MissingEquals { .. }));
        let got =
            parse_conninfo(r"host=db  port = 5433 user='a b\'c' dbname=x\ y password=''").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("host", "db"),
                ("port", "5433"),
                ("user", "a b'c"),
                ("dbname", "x y"),
                ("password", "")
            ])
        );
    }

    #[test]
    fn rejects_malformed_conninfo() {
        assert_eq!(
            parse_conninfo("host"),
            Err(SyntaxError::MissingEquals { key: "host".into() })
        );
        assert_eq!(parse_conninfo("=x"), Err(SyntaxError::EmptyKey));
        assert_eq!(
            parse_conninfo("password='secret"),
            Err(SyntaxError::UnterminatedQuote {
                key: "password".into()
            })
        );
    }

    #[test]
    fn parses_full_uri_with_percent_encoding() {
        let got = parse_uri("postgresql://us%40er:p%3Ass@db.example:6432/my%20db?sslmode=disable&application_name=x").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("user", "us@er"),
                ("password", "p:ss"),
                ("host", "db.example"),
                ("port", "6432"),
                ("dbname", "my db"),
                ("sslmode", "disable"),
                ("application_name", "x"),
            ])
        );
    }

    #[test]
    fn parses_ipv6_and_multi_host_uri() {
        let got = parse_uri("postgres://[::1]:5433,db2,[fe80::1]/app").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("host", "::1,db2,fe80::1"),
                ("port", "5433,,"),
                ("dbname", "app")
            ])
        );
    }

    #[test]
    fn parses_socket_directory_from_query_and_empty_authority() {
        let got = parse_uri("postgres:///app?host=%2Fvar%2Frun%2Fpostgresql&port=5434").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("dbname", "app"),
                ("host", "/var/run/postgresql"),
                ("port", "5434")
            ])
        );
        assert_eq!(parse_uri("postgresql://").unwrap(), Pairs::new());
    }

    #[test]
    fn rejects_malformed_uris() {
        assert_eq!(
            parse_uri("postgres://[::1:5432/x"),
            Err(SyntaxError::UnterminatedBracket)
        );
        assert_eq!(
            parse_uri("postgres://h/db%zz"),
            Err(SyntaxError::BadPercentEncoding)
        );
        assert_eq!(
            parse_uri("postgres://h/db%ff"),
            Err(SyntaxError::BadPercentEncoding)
        );
        assert_eq!(
            parse_uri("postgres://h/db?sslmode"),
            Err(SyntaxError::BadQueryParameter {
                param: "sslmode".into()
            })
        );
        assert_eq!(
            parse_uri("postgres://[::1]x/db"),
            Err(SyntaxError::UnexpectedCharacter { found: 'x' })
        );
    }

    #[test]
    fn tells_the_three_forms_apart() {
        assert!(is_uri("postgres://x") && is_uri("postgresql://x") && !is_uri("pg://x"));
        assert!(is_conninfo("host=x") && !is_conninfo("mydb"));
    }
}
