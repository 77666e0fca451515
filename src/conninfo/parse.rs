//! Syntax of libpq connection strings: `postgres://` URIs and `key=value` conninfo strings.
//!
//! Both forms are reduced to an ordered list of `(keyword, value)` pairs; which keywords are
//! allowed and what they mean is decided by the parent module. Errors never echo the input,
//! because connection strings carry passwords.

use std::fmt;

/// A syntax error in a connection string, written for the person who typed it. Errors name a
/// position (1-based character or parameter number) or a keyword pgwait knows, never the text
/// itself: a typo can split a password into what looks like a keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// A word with no `=` after it, starting at this character.
    MissingEquals { position: usize },
    /// A quoted value with no closing quote; the quote is at this character.
    UnterminatedQuote { position: usize },
    /// `=value` with no key before it.
    EmptyKey { position: usize },
    /// `[` of an IPv6 literal with no `]`.
    UnterminatedBracket,
    /// `[]`: an IPv6 literal with nothing in it.
    EmptyBracket,
    /// A URI query parameter (1-based) with a second `=` (encode it as `%3D`).
    ExtraEquals { index: usize },
    /// Percent-encoding that decodes to bytes that are not UTF-8, in this URI part.
    NotUtf8 { part: UriPart },
    /// A `%` not followed by two hex digits, or decoding to invalid UTF-8, in this URI part.
    BadPercentEncoding { part: UriPart },
    /// A URI query parameter (1-based) without `=`.
    BadQueryParameter { index: usize },
    /// Something after an IPv6 literal's `]` that is neither `:port`, `,`, `/`, `?` nor the end.
    AfterBracket,
}

/// The part of a URI an error is in; named so an error never has to quote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriPart {
    User,
    Password,
    Host,
    Port,
    Dbname,
    /// A query parameter, 1-based.
    Query(usize),
}

impl fmt::Display for UriPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User => f.write_str("the user name"),
            Self::Password => f.write_str("the password"),
            Self::Host => f.write_str("the host list"),
            Self::Port => f.write_str("the port list"),
            Self::Dbname => f.write_str("the database name"),
            Self::Query(i) => write!(f, "query parameter {i}"),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingEquals { position } => write!(
                f,
                "missing \"=\" after the word at character {position} (quote values that contain spaces: key='a b')"
            ),
            Self::UnterminatedQuote { position } => {
                write!(f, "the quote at character {position} is never closed")
            }
            Self::EmptyKey { position } => {
                write!(f, "\"=\" at character {position} has no keyword before it")
            }
            Self::UnterminatedBracket => {
                write!(f, "IPv6 host address is missing its closing \"]\"")
            }
            Self::EmptyBracket => write!(f, "IPv6 host address \"[]\" is empty"),
            Self::ExtraEquals { index } => write!(
                f,
                "query parameter {index} has a second \"=\" (write it as %3D)"
            ),
            Self::BadPercentEncoding { part } => {
                write!(f, "invalid percent-encoding in {part}")
            }
            Self::NotUtf8 { part } => write!(
                f,
                "{part} decodes to bytes that are not UTF-8 (libpq would send them as they are; pgwait cannot)"
            ),
            Self::BadQueryParameter { index } => {
                write!(f, "query parameter {index} has no \"=value\"")
            }
            Self::AfterBracket => {
                write!(f, "unexpected text after the \"]\" of an IPv6 host address")
            }
        }
    }
}

/// Ordered `(keyword, value)` pairs; later pairs override earlier ones, as in libpq.
pub type Pairs = Vec<(String, String)>;

/// What a `-d` value (or `DATABASE_URL`) is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// A PostgreSQL URI; the parser starts after this many bytes (the scheme and `://`).
    Uri { after_scheme: usize },
    /// `scheme://…` with a scheme that is not PostgreSQL's; holds the scheme (never userinfo).
    OtherUri { scheme: String },
    /// `key=value …`.
    Conninfo,
    /// Anything else is a database name.
    Dbname,
}

/// Tells the forms apart. Schemes are case-insensitive (RFC 3986), and SQLAlchemy's
/// `postgresql+driver://` is the same URI with a driver name that only Python reads.
pub fn form_of(s: &str) -> Form {
    if let Some(i) = s.find("://") {
        let scheme = &s[..i];
        let looks_like_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-:".contains(c));
        if looks_like_scheme {
            let lower = scheme.to_ascii_lowercase();
            let base = lower.split_once('+').map_or(lower.as_str(), |(b, _)| b);
            return if matches!(base, "postgres" | "postgresql") {
                Form::Uri {
                    after_scheme: i + 3,
                }
            } else {
                Form::OtherUri {
                    scheme: scheme.to_string(),
                }
            };
        }
    }
    if s.contains('=') {
        Form::Conninfo
    } else {
        Form::Dbname
    }
}

/// Parses a `key = value ...` conninfo string; values may be single-quoted with `\\` escapes.
pub fn parse_conninfo(s: &str) -> Result<Pairs, SyntaxError> {
    let mut pairs = Vec::new();
    // Positions are 1-based character numbers, for errors that must not quote the text.
    let mut chars = s.chars().zip(1..).peekable();
    let blank = |c: &(char, usize)| c.0.is_whitespace();
    loop {
        while chars.next_if(blank).is_some() {}
        let Some(&(_, start)) = chars.peek() else {
            return Ok(pairs);
        };
        let key: String =
            std::iter::from_fn(|| chars.next_if(|(c, _)| *c != '=' && !c.is_whitespace()))
                .map(|(c, _)| c)
                .collect();
        while chars.next_if(blank).is_some() {}
        if chars.next().map(|(c, _)| c) != Some('=') {
            return Err(SyntaxError::MissingEquals { position: start });
        }
        if key.is_empty() {
            return Err(SyntaxError::EmptyKey { position: start });
        }
        while chars.next_if(blank).is_some() {}
        let value = match chars.next_if(|(c, _)| *c == '\'') {
            Some((_, quote)) => read_quoted(&mut chars.by_ref().map(|(c, _)| c))
                .ok_or(SyntaxError::UnterminatedQuote { position: quote })?,
            None => read_bare(&mut chars),
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

fn read_bare(chars: &mut std::iter::Peekable<impl Iterator<Item = (char, usize)>>) -> String {
    let mut value = String::new();
    while let Some((c, _)) = chars.next_if(|(c, _)| !c.is_whitespace()) {
        if c == '\\' {
            if let Some((escaped, _)) = chars.next() {
                value.push(escaped);
            }
        } else {
            value.push(c);
        }
    }
    value
}

/// Parses the part of a URI after `scheme://`:
/// `[user[:password]@][host][:port][,host[:port]...][/dbname][?k=v&...]`, exactly as libpq's
/// `conninfo_uri_parse_options` scans it: the user information ends at the first `@` before any
/// `/` (a `?` does not end it, and a later `@` belongs to the host), hosts end at `:`, `/`, `?` or
/// `,`, and an empty user name or password is not a setting at all.
pub fn parse_uri(rest: &str) -> Result<Pairs, SyntaxError> {
    let mut pairs = Pairs::new();
    let after_userinfo = match rest.find(['@', '/']) {
        Some(at) if rest.as_bytes()[at] == b'@' => {
            push_userinfo(&rest[..at], &mut pairs)?;
            &rest[at + 1..]
        }
        _ => rest,
    };
    let after_hosts = push_hosts(after_userinfo, &mut pairs)?;
    let (path, query) = match after_hosts.strip_prefix('/') {
        Some(path) => match path.split_once('?') {
            Some((db, q)) => (db, Some(q)),
            None => (path, None),
        },
        None => ("", after_hosts.strip_prefix('?')),
    };
    if !path.is_empty() {
        pairs.push(("dbname".into(), percent_decode(path, UriPart::Dbname)?));
    }
    if let Some(query) = query {
        push_query(query, &mut pairs)?;
    }
    Ok(pairs)
}

fn push_userinfo(userinfo: &str, pairs: &mut Pairs) -> Result<(), SyntaxError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, p),
        None => (userinfo, ""),
    };
    if !user.is_empty() {
        pairs.push(("user".into(), percent_decode(user, UriPart::User)?));
    }
    if !password.is_empty() {
        pairs.push((
            "password".into(),
            percent_decode(password, UriPart::Password)?,
        ));
    }
    Ok(())
}

/// Reads `h1:p1,[::1]:p2,h3` into libpq's parallel `host` and `port` lists; returns the rest
/// (`/dbname?...`, `?...` or nothing). Like libpq, the lists are decoded after joining, so a
/// `%2C` in a host name separates two hosts.
fn push_hosts<'a>(mut rest: &'a str, pairs: &mut Pairs) -> Result<&'a str, SyntaxError> {
    let mut hosts = String::new();
    let mut ports = String::new();
    loop {
        let (host, after) = match rest.strip_prefix('[') {
            Some(inner) => {
                let (host, after) = inner
                    .split_once(']')
                    .ok_or(SyntaxError::UnterminatedBracket)?;
                if host.is_empty() {
                    return Err(SyntaxError::EmptyBracket);
                }
                if !after.is_empty() && !after.starts_with([':', '/', '?', ',']) {
                    return Err(SyntaxError::AfterBracket);
                }
                (host, after)
            }
            None => rest.split_at(rest.find([':', '/', '?', ',']).unwrap_or(rest.len())),
        };
        hosts.push_str(host);
        rest = after;
        if let Some(after_colon) = rest.strip_prefix(':') {
            let end = after_colon
                .find(['/', '?', ','])
                .unwrap_or(after_colon.len());
            ports.push_str(&after_colon[..end]);
            rest = &after_colon[end..];
        }
        match rest.strip_prefix(',') {
            Some(next) => {
                rest = next;
                hosts.push(',');
                ports.push(',');
            }
            None => break,
        }
    }
    // An all-empty list (`postgres:///db`, or `postgres://,/db`'s ",") is still a list for
    // libpq when it has a comma; only a wholly empty string is "not set".
    if !hosts.is_empty() {
        pairs.push(("host".into(), percent_decode(&hosts, UriPart::Host)?));
    }
    if !ports.is_empty() && ports.chars().any(|c| c != ',') {
        pairs.push(("port".into(), percent_decode(&ports, UriPart::Port)?));
    }
    Ok(rest)
}

/// `k=v&k=v`: every parameter needs exactly one `=` (an empty one, as in `?&x=y`, has none);
/// a trailing `&` ends the list. `ssl=true` is libpq's alias for `sslmode=require` (JDBC's).
fn push_query(mut query: &str, pairs: &mut Pairs) -> Result<(), SyntaxError> {
    let mut index = 0;
    while !query.is_empty() {
        index += 1;
        let (param, rest) = query.split_once('&').unwrap_or((query, ""));
        query = rest;
        let (k, v) = param
            .split_once('=')
            .ok_or(SyntaxError::BadQueryParameter { index })?;
        if v.contains('=') {
            return Err(SyntaxError::ExtraEquals { index });
        }
        let part = UriPart::Query(index);
        let (k, v) = (percent_decode(k, part)?, percent_decode(v, part)?);
        if k == "ssl" && v == "true" {
            pairs.push(("sslmode".into(), "require".into()));
        } else {
            pairs.push((k, v));
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes in one URI part; the result must be UTF-8 (values are Rust strings
/// all the way to the wire, so a raw `%FF` cannot be sent as libpq would).
pub fn percent_decode(s: &str, part: UriPart) -> Result<String, SyntaxError> {
    let bad = SyntaxError::BadPercentEncoding { part };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly: from_str_radix alone would also take "+1".
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .ok_or(bad.clone())?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad.clone())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad.clone())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| SyntaxError::NotUtf8 { part })
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
            Err(SyntaxError::MissingEquals { position: 1 })
        );
        assert_eq!(
            parse_conninfo("host=a =x"),
            Err(SyntaxError::EmptyKey { position: 8 })
        );
        assert_eq!(
            parse_conninfo("password='secret"),
            Err(SyntaxError::UnterminatedQuote { position: 10 })
        );
        // The typo that splits a password: the error points at it without quoting it.
        let err = parse_conninfo("host=h password=Pw SECRET").unwrap_err();
        assert_eq!(err, SyntaxError::MissingEquals { position: 20 });
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn parses_full_uri_with_percent_encoding() {
        let got =
            parse_uri("us%40er:p%3Ass@db.example:6432/my%20db?sslmode=disable&application_name=x")
                .unwrap();
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
        let got = parse_uri("[::1]:5433,db2,[fe80::1]/app").unwrap();
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
        let got = parse_uri("/app?host=%2Fvar%2Frun%2Fpostgresql&port=5434").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("dbname", "app"),
                ("host", "/var/run/postgresql"),
                ("port", "5434")
            ])
        );
        assert_eq!(parse_uri("").unwrap(), Pairs::new());
    }

    #[test]
    fn rejects_malformed_uris() {
        let table = [
            ("[::1:5432/x", SyntaxError::UnterminatedBracket),
            ("h/db%zz", bad_in(UriPart::Dbname)),
            (
                "h/db%ff",
                SyntaxError::NotUtf8 {
                    part: UriPart::Dbname,
                },
            ),
            ("h/db%+1", bad_in(UriPart::Dbname)),
            ("u:p%4@h/db", bad_in(UriPart::Password)),
            ("h:54%3/db", bad_in(UriPart::Port)),
            ("h/db?a=1&b=%", bad_in(UriPart::Query(2))),
            ("h/db?sslmode", SyntaxError::BadQueryParameter { index: 1 }),
            (
                "u@h/db?x=1&password%3DPw-SECRET",
                SyntaxError::BadQueryParameter { index: 2 },
            ),
            ("[::1]x/db", SyntaxError::AfterBracket),
            ("[]/db", SyntaxError::EmptyBracket),
            ("h/db?&user=x", SyntaxError::BadQueryParameter { index: 1 }),
            ("h/db?&", SyntaxError::BadQueryParameter { index: 1 }),
            ("h/db?a=1&&b=2", SyntaxError::BadQueryParameter { index: 2 }),
            (
                "h/db?options=-c%20a=b",
                SyntaxError::ExtraEquals { index: 1 },
            ),
        ];
        for (uri, want) in table {
            let err = parse_uri(uri).unwrap_err();
            assert_eq!(err, want, "{uri}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
    }

    /// libpq's scanner, case by case (src/interfaces/libpq/fe-connect.c,
    /// conninfo_uri_parse_options and conninfo_uri_parse_params; 001_uri.pl).
    #[test]
    fn scans_uris_as_libpq_does() {
        let table: &[(&str, &[(&str, &str)])] = &[
            // The user information ends at the first '@'; the rest is the host.
            (
                "user:p@ss@h1/db",
                &[
                    ("user", "user"),
                    ("password", "p"),
                    ("host", "ss@h1"),
                    ("dbname", "db"),
                ],
            ),
            // '?' does not end the user information; '/' does.
            (
                "user:pa?ss@h1",
                &[("user", "user"), ("password", "pa?ss"), ("host", "h1")],
            ),
            ("h1/db@x", &[("host", "h1"), ("dbname", "db@x")]),
            // Empty user or password: not settings (PGUSER/PGPASSWORD still apply).
            (":@h1", &[("host", "h1")]),
            ("u:@h1", &[("user", "u"), ("host", "h1")]),
            // Empty entries of a host list stay (each is the default host).
            ("h1,,h2", &[("host", "h1,,h2")]),
            (",/db", &[("host", ","), ("dbname", "db")]),
            // %2C separates hosts, as libpq decodes the joined list.
            ("a%2Cb/db", &[("host", "a,b"), ("dbname", "db")]),
            ("h?ssl=true", &[("host", "h"), ("sslmode", "require")]),
            ("h?ssl=false", &[("host", "h"), ("ssl", "false")]),
            ("h/db?a=1&", &[("host", "h"), ("dbname", "db"), ("a", "1")]),
            ("h?", &[("host", "h")]),
            ("/?host=x", &[("host", "x")]),
        ];
        for (uri, want) in table {
            assert_eq!(parse_uri(uri), Ok(pairs(want)), "{uri}");
        }
    }

    fn bad_in(part: UriPart) -> SyntaxError {
        SyntaxError::BadPercentEncoding { part }
    }

    #[test]
    fn tells_the_forms_apart_whatever_the_scheme_case_or_driver() {
        let uri = |n| Form::Uri { after_scheme: n };
        let other = |s: &str| Form::OtherUri { scheme: s.into() };
        let table = [
            ("postgres://x", uri(11)),
            ("postgresql://x", uri(13)),
            ("Postgres://x", uri(11)),
            ("POSTGRESQL://x", uri(13)),
            ("postgresql+psycopg2://u:p@h/db", uri(22)),
            ("postgresql+asyncpg://u:p@h/db", uri(21)),
            ("postgres+pg8000://h", uri(18)),
            ("jdbc:postgresql://h/db", other("jdbc:postgresql")),
            ("mysql://u:p@h/db", other("mysql")),
            ("pg://x", other("pg")),
            ("host=x", Form::Conninfo),
            ("host=x options='-c a=b://c'", Form::Conninfo),
            ("mydb", Form::Dbname),
            ("://x", Form::Dbname),
        ];
        for (s, want) in table {
            assert_eq!(form_of(s), want, "{s}");
        }
    }
}
