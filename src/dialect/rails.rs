//! Rails (ActiveRecord 7.x/8.x ConnectionUrlResolver and PostgreSQLAdapter; 6.1's differences are
//! in docs/drivers.md): the URL becomes a hash, only libpq's keywords reach libpq (through the pg
//! gem), and libpq's rules apply from there (PG* variables, .pgpass, sslmode).

use super::text::{host_port, percent_decode, query_pairs};
use super::Reading;

/// libpq's keywords as the pg gem lists them (PG::Connection.conndefaults), plus requiressl.
fn is_libpq_keyword(key: &str) -> bool {
    key == "requiressl" || crate::conninfo::is_keyword(key)
}

pub fn read(text: &str) -> Result<Reading, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("a Rails DATABASE_URL is a postgres:// or postgresql:// URL")?;
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "postgres" | "postgresql"
    ) {
        return Err(
            "Rails finds no PostgreSQL adapter for this scheme (AdapterNotSpecified)".into(),
        );
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let invalid =
        |what: &str| format!("{what}: Ruby's URI parser refuses the URL (URI::InvalidURIError)");
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut url_parts: Vec<(&str, String)> = Vec::new();
    if let Some(userinfo) = userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let decode = |s: &str| {
            percent_decode(s)
                .ok_or_else(|| invalid("a %-escape in the user information is malformed"))
        };
        if !user.is_empty() {
            url_parts.push(("user", decode(user)?));
        }
        if !password.is_empty() {
            url_parts.push(("password", decode(password)?));
        }
    }
    let (host, port) = host_port(hostport)?;
    if userinfo.is_some() && host.is_empty() {
        return Err(invalid("user information without a host"));
    }
    if host.contains(',') {
        return Err(invalid(
            "a host list (h1,h2) is not a host name; Rails takes ?host=h1,h2",
        ));
    }
    if host.contains('_') {
        return Err(invalid("a host name with \"_\""));
    }
    if !host.is_empty() {
        url_parts.push(("host", host.to_string()));
    }
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the port is not a number"));
        }
        url_parts.push(("port", port.to_string()));
    }
    if !path.is_empty() {
        url_parts.push((
            "dbname",
            percent_decode(path)
                .ok_or_else(|| invalid("a %-escape in the database name is malformed"))?,
        ));
    }
    let mut reading = Reading::default();
    // Query values: blank ones dropped before %XX decoding ("+" stays "+"), the last of a
    // repeated key wins; only libpq keywords go on, adapter keys are Rails' own.
    let mut query_keys: Vec<String> = Vec::new();
    for (key, value) in query_pairs(query) {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let value =
            percent_decode(value).ok_or_else(|| invalid("a %-escape in the query is malformed"))?;
        // Query keys Rails merges over the URL's parts (7+): username, password, host, port,
        // database. A query user/dbname does not displace them: postgresql_connection renames
        // username → user and database → dbname over whatever the query said.
        let displaces = matches!(key, "username" | "password" | "host" | "port" | "database");
        let key = match key {
            "username" => "user",
            "database" => "dbname",
            k => k,
        };
        let from_url = url_parts.iter().any(|(k, _)| *k == key);
        match key {
            "user" | "dbname" if from_url && !displaces => {}
            // The pg gem reads it with to_i (leading digits, else 0 = no limit), at least 2 s.
            "connect_timeout" => {
                let digits: String = value
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let secs: u64 = digits.parse().unwrap_or(0);
                let secs = if secs == 0 { 0 } else { secs.max(2) };
                reading.set(key, secs.to_string());
                query_keys.push(key.to_string());
            }
            // Run as SQL right after login: a bad value fails the app's connect, so the
            // server gets to judge it at startup here.
            "encoding" => reading.settings.push(("client_encoding".into(), value)),
            "schema_search_path" => reading.settings.push(("search_path".into(), value)),
            "min_messages" => reading.settings.push(("client_min_messages".into(), value)),
            k if is_libpq_keyword(k) && (displaces || !from_url) => {
                query_keys.push(k.to_string());
                reading.set(k, value);
            }
            _ => {}
        }
    }
    // The URL's own parts, unless the query gave the same key (Rails 7+: the query wins).
    for (key, value) in url_parts {
        if !query_keys.iter().any(|k| k == key) {
            reading.pairs.insert(0, (key.to_string(), value));
        }
    }
    Ok(reading)
}
