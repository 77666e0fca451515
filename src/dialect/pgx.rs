//! pgx (v4 / pgconn 1.11 as Debian ships it; v5's differences are in docs/drivers.md): a
//! `postgres://` or `postgresql://` URL (exactly), else a libpq `key=value` string. Every key pgx
//! or pgxpool does not consume is sent to the server as a setting at startup.

use super::text::{form_decode, percent_decode, query_pairs, SSLMODES};
use super::Reading;
use crate::conninfo::parse_connection_string;
use crate::conninfo::Origin;

/// pgxpool's and pgx's own keys: tuning only (any other pool_* key is sent to the server). The
/// connection keys pgconn consumes are matched one by one in `read`; every other key becomes a
/// startup setting.
const TUNING: [&str; 9] = [
    "min_read_buffer_size",
    "statement_cache_capacity",
    "statement_cache_mode",
    "prefer_simple_protocol",
    "pool_max_conns",
    "pool_min_conns",
    "pool_max_conn_lifetime",
    "pool_max_conn_idle_time",
    "pool_health_check_period",
];

pub fn read(text: &str) -> Result<Reading, String> {
    let settings = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        url(text)?
    } else {
        dsn(text)?
    };
    let get = |k: &str| {
        settings
            .iter()
            .find(|(p, _)| p == k)
            .map(|(_, v)| v.as_str())
    };
    let mut reading = Reading::default();
    for (key, value) in &settings {
        let key = key.as_str();
        match key {
            "database" => reading.set("dbname", value.clone()),
            "host" | "port" | "user" | "password" | "passfile" | "connect_timeout" | "sslkey"
            | "sslcert" | "service" | "servicefile" => reading.set(key, value.clone()),
            "sslmode" => {
                if !SSLMODES.contains(&value.as_str()) {
                    return Err("sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full (pgx: sslmode is invalid)".into());
                }
                reading.set(key, value.clone());
            }
            "sslrootcert" if value == "system" => {
                return Err(
                    "pgx v4 reads sslrootcert=system as a file name and fails (v5 knows it)".into(),
                )
            }
            "sslrootcert" => reading.set(key, value.clone()),
            "target_session_attrs" => {
                let attrs = match value.as_str() {
                    // pgx v4 accepts prefer-standby but treats it as any.
                    "prefer-standby" => "any",
                    v @ ("any" | "read-write" | "read-only" | "primary" | "standby") => v,
                    _ => return Err("target_session_attrs is not one pgx knows".into()),
                };
                reading.set(key, attrs);
            }
            k if TUNING.contains(&k) => {}
            // Startup parameters libpq also sends by these names.
            "application_name" | "options" => reading.set(key, value.clone()),
            // Sent at startup: the server accepts a setting it knows and rejects any other,
            // exactly as it does the app's connection.
            _ => reading.settings.push((key.to_string(), value.clone())),
        }
    }
    if get("user").is_some_and(str::is_empty) {
        return Err("pgx v4 sends the empty user name, which the server rejects".into());
    }
    Ok(reading)
}

/// Go's net/url reading: userinfo up to the last "@", hosts split on ",", a port only where one
/// is written (a single port serves every host), path and query percent-decoded (query `+` is a
/// space), the first of a repeated query key wins, query host/port/user/password/database win.
fn url(text: &str) -> Result<Vec<(String, String)>, String> {
    let rest = text.split_once("://").map_or(text, |(_, r)| r);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let mut out: Vec<(String, String)> = Vec::new();
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let bad = || "a %-escape is malformed (Go's URL parser refuses it)".to_string();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (userinfo, None),
        };
        out.push(("user".into(), percent_decode(user).ok_or_else(bad)?));
        if let Some(p) = password {
            out.push(("password".into(), percent_decode(p).ok_or_else(bad)?));
        }
    }
    let (host_list, port_list) = hosts_and_ports(hosts)?;
    if !host_list.is_empty() {
        out.push(("host".into(), host_list.join(",")));
    }
    // A port only where written; one serves every host; none leaves PGPORT or 5432.
    if let Some(first) = port_list.first() {
        let ports: Vec<&str> = (0..host_list.len().max(1))
            .map(|i| port_list.get(i).unwrap_or(first).as_str())
            .collect();
        out.push(("port".into(), ports.join(",")));
    }
    let db = path.trim_start_matches('/');
    if !db.is_empty() {
        out.push(("database".into(), percent_decode(db).ok_or_else(bad)?));
    }
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in query_pairs(query) {
        let (Some(k), Some(v)) = (form_decode(k), form_decode(v.unwrap_or(""))) else {
            continue; // Go drops a malformed pair
        };
        let k = if k == "dbname" {
            "database".to_string()
        } else {
            k
        };
        if seen.contains(&k) {
            continue;
        }
        seen.push(k.clone());
        out.retain(|(p, _)| *p != k);
        out.push((k, v));
    }
    Ok(out)
}

fn hosts_and_ports(hosts: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut host_list = Vec::new();
    let mut port_list = Vec::new();
    for item in hosts.split(',').filter(|h| !h.is_empty()) {
        let bare = item.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() || !item.contains(':') {
            host_list.push(bare.to_string());
            continue;
        }
        let (host, port) = match item.strip_prefix('[') {
            Some(inner) => inner
                .split_once("]:")
                .ok_or("an IPv6 address lacks its \"]\"")?,
            None => item.rsplit_once(':').unwrap_or((item, "")),
        };
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err("a port is not a number from 1 to 65535 (pgx: invalid port)".into());
        }
        if host.contains('%') {
            return Err("a host holds a %-escape, which Go's URL parser refuses".into());
        }
        host_list.push(host.to_string());
        port_list.push(port.to_string());
    }
    Ok((host_list, port_list))
}

/// A `key=value` string, as libpq reads it (pgconn's DSN syntax is libpq's); `dbname` is
/// `database`.
fn dsn(text: &str) -> Result<Vec<(String, String)>, String> {
    let pairs = parse_connection_string(text, Origin::DbnameArg).map_err(|e| e.to_string())?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (if k == "dbname" { "database".into() } else { k }, v))
        .collect())
}
