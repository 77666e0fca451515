//! Prisma ORM up to 6 and the Prisma CLI (quaint's PostgresUrl; Prisma 7 apps connect through
//! node-postgres: use that dialect for them). One host, no PG* variables, no .pgpass; TLS is
//! unverified unless `sslaccept=strict`.

use super::text::{host_port, last_wins, percent_decode};
use super::Reading;

/// Keys quaint parses as integers (a bad value stops Prisma from starting).
const INTEGERS: [&str; 7] = [
    "connect_timeout",
    "connection_limit",
    "pool_timeout",
    "socket_timeout",
    "max_connection_lifetime",
    "max_idle_connection_lifetime",
    "statement_cache_size",
];

pub fn read(text: &str) -> Result<Reading, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("a Prisma URL is a postgresql:// URL")?;
    match scheme {
        "postgresql" | "postgres" => {}
        "prisma" | "prisma+postgres" => {
            return Err("a prisma:// URL goes to Prisma Accelerate over HTTP, not to PostgreSQL: give pgwait the direct postgresql:// URL".into())
        }
        _ => return Err("Prisma reads only postgresql:// and postgres:// URLs".into()),
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    let params = last_wins(query);
    let param = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
    let mut reading = Reading::default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u, h),
        None => ("", authority),
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_string());
    if user.is_empty() {
        return Err("Prisma sends an empty user name when the URL has none (it reads no PGUSER), and the server rejects it".into());
    }
    reading.set("user", decode(user));
    if !password.is_empty() {
        reading.set("password", decode(password));
    }
    let (host, port) = host_port(hostport)?;
    if host.contains(',') {
        return Err("Prisma takes one host: the app would look \"h1,h2\" up as one name".into());
    }
    let host = param("host").map(str::to_string).unwrap_or_else(|| {
        if host.is_empty() {
            "localhost".to_string()
        } else {
            host.to_string()
        }
    });
    reading.set("host", host);
    if let Some(port) = port.filter(|p| !p.is_empty()) {
        port.parse::<u16>()
            .map_err(|_| "the port is not a number (Prisma cannot parse the URL)".to_string())?;
        reading.set("port", port);
    }
    // The first path segment, not percent-decoded; no path at all is "postgres".
    let db = path.map_or("postgres", |p| p.split('/').next().unwrap_or(""));
    reading.set("dbname", db);
    for key in INTEGERS {
        if param(key).is_some_and(|v| v.trim().parse::<u64>().is_err()) {
            return Err(format!(
                "\"{key}\" is not a whole number: Prisma refuses the URL"
            ));
        }
    }
    if param("pgbouncer").is_some_and(|v| v != "true" && v != "false") {
        return Err("\"pgbouncer\" must be true or false: Prisma refuses the URL".into());
    }
    reading.set("connect_timeout", param("connect_timeout").unwrap_or("5"));
    // sslmode: disable, prefer or require; anything else silently prefer. Verification only
    // with sslaccept=strict (or an unknown sslaccept), against the system's roots or sslcert.
    let mode = match param("sslmode") {
        Some("disable") => "disable",
        Some("require") => "require",
        _ => "prefer",
    };
    let strict = param("sslaccept").is_some_and(|a| a != "accept_invalid_certs");
    reading.set(
        "sslmode",
        if strict && mode != "disable" {
            "verify-full"
        } else {
            mode
        },
    );
    if let (true, Some(ca)) = (strict, param("sslcert")) {
        reading.set("sslrootcert", ca);
    }
    if param("sslidentity").is_some() {
        return Err("sslidentity is a PKCS#12 client identity, which pgwait cannot read: give it the certificate and key as PEM".into());
    }
    for key in ["application_name", "options"] {
        if let Some(v) = param(key) {
            reading.set(key, v);
        }
    }
    // With pgbouncer=true Prisma sets the schema by a SET after login, not at startup (a pooler
    // may refuse startup options); a schema that does not exist never fails the login either way.
    if param("pgbouncer") != Some("true") {
        let schema = param("schema").unwrap_or("public");
        reading
            .settings
            .push(("search_path".into(), format!("\"{schema}\"")));
    }
    Ok(reading)
}
