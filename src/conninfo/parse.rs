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
            Self::BadPercentEncoding { part } => {
                write!(f, "invalid percent-encoding in {part}")
            }
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
/// `[user[:password]@][host][:port][,host[:port]...][/dbname][?k=v&...]`.
pub fn parse_uri(rest: &str) -> Result<Pairs, SyntaxError> {
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
        pairs.push(("dbname".into(), percent_decode(db, UriPart::Dbname)?));
    }
    let params = query.into_iter().flat_map(|q| q.split('&'));
    for (index, param) in (1..).zip(params.filter(|p| !p.is_empty())) {
        let (k, v) = param
            .split_once('=')
            .ok_or(SyntaxError::BadQueryParameter { index })?;
        let part = UriPart::Query(index);
        pairs.push((percent_decode(k, part)?, percent_decode(v, part)?));
    }
    Ok(pairs)
}

fn push_userinfo(userinfo: &str, pairs: &mut Pairs) -> Result<(), SyntaxError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    if !user.is_empty() {
        pairs.push(("user".into(), percent_decode(user, UriPart::User)?));
    }
    if let Some(p) = password {
        pairs.push(("password".into(), percent_decode(p, UriPart::Password)?));
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
        hosts.push(percent_decode(host, UriPart::Host)?);
        ports.push(percent_decode(port.unwrap_or(""), UriPart::Port)?);
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
            None => Err(SyntaxError::AfterBracket),
        };
    }
    Ok(match item.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (item, None),
    })
}

/// Decodes `%XX` escapes in one URI part; the result must be UTF-8.
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
    String::from_utf8(out).map_err(|_| bad)
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
            ("h/db%ff", bad_in(UriPart::Dbname)),
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
        ];
        for (uri, want) in table {
            let err = parse_uri(uri).unwrap_err();
            assert_eq!(err, want, "{uri}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
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
