//! node-postgres (pg 8.8 with pg-connection-string 2.5, as Debian ships it; later versions'
//! differences are in docs/drivers.md): any scheme but `socket:`, one host, TLS that is either
//! off, verified (chain and name, against Node's bundled roots or `sslrootcert`) or unverified —
//! never a plain-text fallback.

use super::text::{is_ip, last_wins, percent_decode};
use super::Reading;

pub fn read(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Reading, String> {
    let mut reading = Reading::default();
    if let Some(rest) = text.strip_prefix('/') {
        // "/socket/dir dbname"
        let mut words = rest.split(' ');
        reading.set("host", format!("/{}", words.next().unwrap_or("")));
        if let Some(db) = words.next().filter(|d| !d.is_empty()) {
            reading.set("dbname", db);
        }
        set_tls(&mut reading, tls(&|_| None, env)?, "");
        return Ok(reading);
    }
    if let Some(path) = text
        .strip_prefix("socket:")
        .filter(|p| !p.starts_with("//"))
    {
        // socket:/dir?db=name
        let (dir, query) = path.split_once('?').unwrap_or((path, ""));
        reading.set("host", decode_uri(dir));
        if let Some((_, db)) = last_wins(query).into_iter().find(|(k, _)| k == "db") {
            reading.set("dbname", db);
        }
        set_tls(&mut reading, tls(&|_| None, env)?, "");
        return Ok(reading);
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        // A bare word is a database name; TLS as PGSSLMODE says (off without it).
        reading.set("dbname", decode_uri(text));
        let host = env("PGHOST").unwrap_or_default();
        set_tls(&mut reading, tls(&|_| None, env)?, &host);
        return Ok(reading);
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_string());
        // Empty means absent: PGUSER/PGPASSWORD still apply.
        if !user.is_empty() {
            reading.set("user", decode(user));
        }
        if !password.is_empty() {
            reading.set("password", decode(password));
        }
    }
    let params = last_wins(query);
    let param = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
    if scheme.eq_ignore_ascii_case("socket") {
        // pg-connection-string returns before any ssl key is read: PGSSLMODE decides.
        reading.set("host", decode_uri(&format!("/{path}")));
        if let Some(db) = param("db") {
            reading.set("dbname", db);
        }
        set_tls(&mut reading, tls(&|_| None, env)?, "");
        return Ok(reading);
    }
    let (host, port) = split_host_port(hostport)?;
    let host = match param("host") {
        Some(h) => h.to_string(),
        // An encoded socket directory in the host's place: postgres://%2Fvar%2Frun%2Fpostgresql/db
        None if host.to_ascii_lowercase().starts_with("%2f") => {
            percent_decode(&host).unwrap_or_else(|| host.clone())
        }
        None => host.to_ascii_lowercase(),
    };
    if host.contains(',') {
        return Err("node-postgres has no host lists: the app would look \"h1,h2\" up as one name and never connect".into());
    }
    if !host.is_empty() {
        reading.set("host", host.clone());
    }
    if let Some(port) = port {
        reading.set("port", port);
    }
    if !path.is_empty() {
        reading.set("dbname", decode_uri(path));
    }
    for (from, to) in [
        ("application_name", "application_name"),
        ("fallback_application_name", "fallback_application_name"),
        ("options", "options"),
    ] {
        if let Some(v) = param(from).filter(|v| !v.is_empty()) {
            reading.set(to, v);
        }
    }
    // Sent in the startup packet as String(parseInt(v)): "5s" is 5, "abc" is NaN (refused by the
    // server, as the app is).
    for setting in [
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
    ] {
        if let Some(v) = param(setting).filter(|v| !v.is_empty()) {
            reading.settings.push((setting.into(), parse_int(v)));
        }
    }
    if param("replication").is_some() {
        return Err("a replication connection is not a readiness check".into());
    }
    let tls = tls(&param, env)?;
    let effective_host = if host.is_empty() {
        env("PGHOST").unwrap_or_default()
    } else {
        host
    };
    match tls {
        Tls::Off => reading.set("sslmode", "disable"),
        Tls::Unverified => reading.set("sslmode", "require"),
        // Node checks the name only for a name: an IP host gets the chain checked (no servername).
        Tls::Verified if is_ip(&effective_host) => reading.set("sslmode", "verify-ca"),
        Tls::Verified => reading.set("sslmode", "verify-full"),
    }
    for key in ["sslrootcert", "sslcert", "sslkey"] {
        if let Some(v) = param(key) {
            reading.set(key, v);
        }
    }
    Ok(reading)
}

fn set_tls(reading: &mut Reading, tls: Tls, host: &str) {
    let mode = match tls {
        Tls::Off => "disable",
        Tls::Unverified => "require",
        // Node checks the name only for a name: an IP host gets the chain checked (no servername).
        Tls::Verified if is_ip(host) => "verify-ca",
        Tls::Verified => "verify-full",
    };
    reading.set("sslmode", mode);
}

enum Tls {
    Off,
    Unverified,
    Verified,
}

/// pg-connection-string's order: `ssl=`, then any of sslcert/sslkey/sslrootcert/sslmode makes
/// it an object (verified), then sslmode decides; with no such key, PGSSLMODE.
fn tls<'a>(
    param: &impl Fn(&str) -> Option<&'a str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Tls, String> {
    let objects = ["sslcert", "sslkey", "sslrootcert", "sslmode"];
    if objects.iter().any(|k| param(k).is_some()) {
        return Ok(match param("sslmode") {
            Some("disable") => Tls::Off,
            Some("no-verify") => Tls::Unverified,
            _ => Tls::Verified,
        });
    }
    match param("ssl") {
        Some("1" | "true") => Ok(Tls::Verified),
        Some("0") => Ok(Tls::Off),
        Some("no-verify") => Ok(Tls::Unverified),
        Some(_) => Err("ssl= takes 1, true, 0 or no-verify: any other value (ssl=false too) is a true string to node-postgres, which then fails or crashes; write ssl=0 or sslmode=disable".into()),
        None => Ok(match env("PGSSLMODE").as_deref() {
            Some("prefer" | "require" | "verify-ca" | "verify-full") => Tls::Verified,
            Some("no-verify") => Tls::Unverified,
            _ => Tls::Off,
        }),
    }
}

/// `host:port` or `[v6]:port`; a port must be digits (legacy url.parse turns anything else into
/// a path, and the app connects to a database named after it).
fn split_host_port(hostport: &str) -> Result<(String, Option<String>), String> {
    let (host, port) = match hostport.strip_prefix('[') {
        Some(inner) => {
            let (h, after) = inner
                .split_once(']')
                .ok_or("an IPv6 address lacks its \"]\"")?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(',') => (h, Some(p)),
            _ => (hostport, None),
        },
    };
    let port = port.filter(|p| !p.is_empty());
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(
            "the port is not a number: node-postgres would read it as part of the database name"
                .into(),
        );
    }
    Ok((host.to_string(), port.map(str::to_string)))
}

/// JavaScript's decodeURI: escapes of reserved characters (`%2F`, `%3F`, …) stay as they are.
fn decode_uri(s: &str) -> String {
    const RESERVED: &str = ";/?:@&=+$,#";
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3).unwrap_or(&rest[i..]);
        match percent_decode(escape) {
            Some(c) if !RESERVED.contains(c.as_str()) => out.push_str(&c),
            _ => out.push_str(escape),
        }
        rest = &rest[i + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// JavaScript's parseInt(v, 10) as text: leading digits (with a sign), else "NaN".
fn parse_int(v: &str) -> String {
    let t = v.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", t.strip_prefix('+').unwrap_or(t)),
    };
    let n: String = digits.chars().take_while(char::is_ascii_digit).collect();
    if n.is_empty() {
        "NaN".into()
    } else {
        format!(
            "{sign}{}",
            n.trim_start_matches('0')
                .chars()
                .next()
                .map_or("0".to_string(), |_| n.trim_start_matches('0').to_string())
        )
    }
}
