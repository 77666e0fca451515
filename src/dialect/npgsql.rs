//! Npgsql (10.x, NpgsqlConnectionStringBuilder): `Key=Value;` pairs, keys case-insensitive with
//! their spaces, values optionally quoted; an unknown keyword or a bad value throws before any
//! connection. Host is required; PGHOST, PGPORT, PGDATABASE and PGSSLMODE are not read.

use super::Reading;

/// Keywords (upper case, as Npgsql compares them) and the libpq keyword each becomes; `None`:
/// tuning only, accepted and without effect on the login.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("HOST", Some("host")),
    ("SERVER", Some("host")),
    ("PORT", Some("port")),
    ("DATABASE", Some("dbname")),
    ("DB", Some("dbname")),
    ("USERNAME", Some("user")),
    ("USER NAME", Some("user")),
    ("USERID", Some("user")),
    ("USER ID", Some("user")),
    ("UID", Some("user")),
    ("PASSWORD", Some("password")),
    ("PSW", Some("password")),
    ("PWD", Some("password")),
    ("PASSFILE", Some("passfile")),
    ("SSL MODE", Some("sslmode")),
    ("SSLMODE", Some("sslmode")),
    ("ROOT CERTIFICATE", Some("sslrootcert")),
    ("ROOTCERTIFICATE", Some("sslrootcert")),
    ("SSL CERTIFICATE", Some("sslcert")),
    ("SSLCERTIFICATE", Some("sslcert")),
    ("SSL KEY", Some("sslkey")),
    ("SSLKEY", Some("sslkey")),
    ("APPLICATION NAME", Some("application_name")),
    ("APPLICATIONNAME", Some("application_name")),
    ("TIMEOUT", Some("connect_timeout")),
    ("TARGET SESSION ATTRIBUTES", Some("target_session_attrs")),
    ("TARGETSESSIONATTRIBUTES", Some("target_session_attrs")),
    ("LOAD BALANCE HOSTS", Some("load_balance_hosts")),
    ("LOADBALANCEHOSTS", Some("load_balance_hosts")),
    ("OPTIONS", Some("options")),
    ("SEARCH PATH", Some("search_path")),
    ("SEARCHPATH", Some("search_path")),
    ("TRUST SERVER CERTIFICATE", None),
    ("TRUSTSERVERCERTIFICATE", None),
    ("SSL PASSWORD", None),
    ("SSLPASSWORD", None),
    ("POOLING", None),
    ("MINIMUM POOL SIZE", None),
    ("MINPOOLSIZE", None),
    ("MAXIMUM POOL SIZE", None),
    ("MAXPOOLSIZE", None),
    ("CONNECTION IDLE LIFETIME", None),
    ("CONNECTION PRUNING INTERVAL", None),
    ("CONNECTION LIFETIME", None),
    ("COMMAND TIMEOUT", None),
    ("COMMANDTIMEOUT", None),
    ("INTERNAL COMMAND TIMEOUT", None),
    ("CANCELLATION TIMEOUT", None),
    ("KEEPALIVE", None),
    ("TCP KEEPALIVE", None),
    ("INCLUDE ERROR DETAIL", None),
    ("INCLUDEERRORDETAIL", None),
    ("MAX AUTO PREPARE", None),
    ("AUTO PREPARE MIN USAGES", None),
    ("NO RESET ON CLOSE", None),
    ("ENLIST", None),
    ("ENCODING", None),
    ("CLIENT ENCODING", None),
    ("TIMEZONE", None),
    ("READ BUFFER SIZE", None),
    ("WRITE BUFFER SIZE", None),
    ("HOST RECHECK SECONDS", None),
    ("SERVER COMPATIBILITY MODE", None),
    ("KERBEROS SERVICE NAME", None),
    ("INCLUDE REALM", None),
    ("PERSIST SECURITY INFO", None),
    ("LOG PARAMETERS", None),
    ("MULTIPLEXING", None),
    ("CHANNEL BINDING", None),
    ("TCP KEEPALIVE TIME", None),
    ("TCP KEEPALIVE INTERVAL", None),
    ("SOCKET RECEIVE BUFFER SIZE", None),
    ("SOCKET SEND BUFFER SIZE", None),
    ("SSL NEGOTIATION", None),
    ("GSS ENCRYPTION MODE", None),
    ("REQUIRE AUTH", None),
    ("CHECK CERTIFICATE REVOCATION", None),
    ("KRBSRVNAME", None),
    ("LOAD BALANCE TIMEOUT", None),
    ("INCLUDE FAILED BATCHED COMMAND", None),
    ("ARRAY NULLABILITY MODE", None),
    ("LOAD TABLE COMPOSITES", None),
    ("REPLICATION MODE", Some("replication")),
];

/// A keyword as Npgsql matches it: the display name with its spaces, or the property name
/// (the display name without them, or a listed alias such as MaxPoolSize).
fn keyword(key: &str) -> Option<Option<&'static str>> {
    let upper = key.trim().to_ascii_uppercase();
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == upper || (!upper.contains(' ') && k.replace(' ', "") == upper))
        .map(|(_, m)| *m)
}

/// A `Key=Value;` string whose first key is an Npgsql keyword (and is no URL).
pub fn looks_like(text: &str) -> bool {
    !text.contains("://")
        && text.contains(';')
        && text
            .split_once('=')
            .is_some_and(|(k, _)| keyword(k.trim_start_matches(';')).is_some())
}

pub fn read(text: &str) -> Result<Reading, String> {
    let mut values: Vec<(&'static str, String)> = Vec::new();
    for (key, value) in pairs(text)? {
        let mapped = keyword(&key).ok_or_else(|| {
            // Letters and spaces only: an unquoted ";" in a password can make a piece of it look
            // like a keyword, and such pieces usually hold digits or symbols.
            let shown =
                if key.len() <= 40 && key.chars().all(|c| c.is_ascii_alphabetic() || c == ' ') {
                    format!("\"{}\"", key.trim())
                } else {
                    "a keyword (not shown)".into()
                };
            format!("{shown} is not an Npgsql keyword (ArgumentException: Couldn't set it)")
        })?;
        if let Some(libpq) = mapped {
            values.retain(|(k, _)| *k != libpq);
            values.push((libpq, value));
        }
    }
    let get = |k: &str| {
        values
            .iter()
            .find(|(p, _)| *p == k)
            .map(|(_, v)| v.as_str())
    };
    let host = get("host")
        .filter(|h| !h.trim().is_empty())
        .ok_or("Host is required (Npgsql does not read PGHOST)")?;
    let mut reading = Reading::default();
    let hosts: Vec<&str> = host.split(',').map(str::trim).collect();
    if hosts.len() == 1 {
        let (h, port) = split_port(hosts[0]);
        reading.set("host", h);
        if let Some(p) = port.or(get("port").map(str::to_string)) {
            reading.set("port", p);
        }
    } else {
        let default_port = get("port").unwrap_or("5432");
        let (h, p): (Vec<String>, Vec<String>) = hosts
            .iter()
            .map(|item| {
                let (h, port) = split_port(item);
                (h, port.unwrap_or_else(|| default_port.to_string()))
            })
            .unzip();
        reading.set("host", h.join(","));
        reading.set("port", p.join(","));
    }
    for key in [
        "dbname",
        "user",
        "password",
        "passfile",
        "application_name",
        "options",
        "sslrootcert",
        "sslcert",
        "sslkey",
    ] {
        if let Some(v) = get(key) {
            reading.set(key, v);
        }
    }
    let mode = match get("sslmode").map(str::to_ascii_lowercase).as_deref() {
        None | Some("prefer") => "prefer",
        Some("disable") => "disable",
        Some("allow") => "allow",
        Some("require") => "require",
        Some("verifyca") => "verify-ca",
        Some("verifyfull") => "verify-full",
        Some(_) => return Err("SSL Mode is not one of Disable, Allow, Prefer, Require, VerifyCA, VerifyFull (ArgumentException)".into()),
    };
    reading.set("sslmode", mode);
    let timeout = get("connect_timeout").unwrap_or("15");
    let secs: u32 = timeout
        .trim()
        .parse()
        .ok()
        .filter(|s| *s <= 1024)
        .ok_or("Timeout is not a whole number of seconds from 0 to 1024 (ArgumentException)")?;
    reading.set("connect_timeout", secs.to_string());
    if get("replication").is_some() {
        return Err("a replication connection is not a readiness check".into());
    }
    if let Some(attrs) = get("target_session_attrs") {
        let attrs = match attrs.to_ascii_lowercase().as_str() {
            "prefer-primary" => "any".to_string(),
            a @ ("any" | "primary" | "standby" | "prefer-standby" | "read-write" | "read-only") => {
                a.to_string()
            }
            _ => {
                return Err(
                    "Target Session Attributes is not one Npgsql knows (ArgumentException)".into(),
                )
            }
        };
        if hosts.len() == 1 && attrs != "any" {
            return Err("Target Session Attributes needs several hosts in Npgsql (NotSupportedException with one)".into());
        }
        reading.set("target_session_attrs", attrs);
    }
    if get("load_balance_hosts").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        reading.set("load_balance_hosts", "random");
    }
    if let Some(path) = get("search_path") {
        reading.settings.push(("search_path".into(), path.into()));
    }
    Ok(reading)
}

/// `host:port` split at the last ":" outside brackets.
fn split_port(item: &str) -> (String, Option<String>) {
    let after_bracket = item.rfind(']').map_or(0, |i| i + 1);
    match item[after_bracket..].rfind(':') {
        Some(i)
            if !item.starts_with('/') && (after_bracket > 0 || item.matches(':').count() == 1) =>
        {
            let i = after_bracket + i;
            (
                item[..i].trim_matches(|c| c == '[' || c == ']').to_string(),
                Some(item[i + 1..].to_string()),
            )
        }
        _ => (item.to_string(), None),
    }
}

/// DbConnectionOptions' syntax: `;`-separated `key=value`, `==` in a key is a literal `=`,
/// values quoted with `"` or `'` (a doubled quote is a literal one), the last duplicate wins.
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return Ok(out);
        }
        let mut key = String::new();
        let mut chars = rest.char_indices().peekable();
        let value_start = loop {
            let Some((i, c)) = chars.next() else {
                return Err("a keyword has no \"=\" (ArgumentException)".into());
            };
            if c == '=' {
                if chars.peek().is_some_and(|(_, n)| *n == '=') {
                    chars.next();
                    key.push('=');
                    continue;
                }
                break i + 1;
            }
            key.push(c);
        };
        if key.trim().is_empty() {
            return Err("a pair has no keyword (ArgumentException)".into());
        }
        let after = rest[value_start..].trim_start();
        let (value, remaining) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => quoted(&after[1..], q)?,
            _ => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim_end().to_string(), &after[end..])
            }
        };
        let key = key.trim().to_string();
        out.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
        out.push((key, value));
        rest = remaining;
    }
}

fn quoted(s: &str, q: char) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if chars.peek().is_some_and(|(_, n)| *n == q) {
                chars.next();
                value.push(q);
                continue;
            }
            let rest = s[i + 1..].trim_start();
            if !(rest.is_empty() || rest.starts_with(';')) {
                return Err("text after a quoted value (ArgumentException)".into());
            }
            return Ok((value, rest));
        }
        value.push(c);
    }
    Err("a quoted value is never closed (ArgumentException)".into())
}
