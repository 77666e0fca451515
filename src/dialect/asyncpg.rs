//! asyncpg (0.30–0.32, connect_utils._parse_connect_dsn_and_args) and SQLAlchemy's
//! `postgresql+asyncpg://` URLs (SQLAlchemy 2.x passes each query key to asyncpg.connect() as a
//! keyword argument). asyncpg sends every query key it does not consume to the server as a
//! startup setting.

use super::text::{form_decode, host_port, percent_decode, query_pairs, shown_key, SSLMODES};
use super::Reading;

/// Query keys asyncpg consumes itself (the rest go to the server as settings).
const CONSUMED: [&str; 20] = [
    "host",
    "port",
    "dbname",
    "database",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslnegotiation",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "target_session_attrs",
    "krbsrvname",
    "gsslib",
    "service",
];

/// asyncpg.connect()'s keyword arguments a SQLAlchemy URL can usefully carry as text.
const SQLALCHEMY_KWARGS: [&str; 9] = [
    "ssl",
    "direct_tls",
    "target_session_attrs",
    "krbsrvname",
    "gsslib",
    "passfile",
    "service",
    "servicefile",
    "command_timeout",
];

/// Keyword arguments that arrive as strings where asyncpg needs numbers or mappings: every
/// connect raises TypeError.
const SQLALCHEMY_UNUSABLE: [&str; 5] = [
    "timeout",
    "statement_cache_size",
    "max_cached_statement_lifetime",
    "max_cacheable_statement_size",
    "server_settings",
];

/// SQLAlchemy pops these before calling asyncpg.
const SQLALCHEMY_OWN: [&str; 2] = [
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
];

pub fn read(text: &str) -> Result<Reading, String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("an asyncpg DSN is a postgresql:// URL")?;
    match scheme.to_ascii_lowercase().as_str() {
        "postgresql" | "postgres" => dsn(rest),
        "postgresql+asyncpg" => sqlalchemy(rest),
        "postgres+asyncpg" => Err("SQLAlchemy has no postgres+asyncpg:// dialect (NoSuchModuleError): write postgresql+asyncpg://".into()),
        _ => Err("asyncpg accepts only postgresql:// and postgres:// DSNs".into()),
    }
}

/// asyncpg's own DSN.
fn dsn(rest: &str) -> Result<Reading, String> {
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, after) = rest.split_at(netloc_end);
    let (path, query) = match after.strip_prefix('/') {
        Some(p) => p.split_once('?').unwrap_or((p, "")),
        None => ("", after.strip_prefix('?').unwrap_or("")),
    };
    let bad = || "a %-escape is malformed".to_string();
    let mut reading = Reading::default();
    let hostspec = match netloc.split_once('@') {
        Some((userinfo, hosts)) => {
            userinfo_into(&mut reading, userinfo)?;
            hosts
        }
        None => netloc,
    };
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in query_pairs(query) {
        let v = v.ok_or("a query parameter has no \"=\" (asyncpg: bad query field)")?;
        if v.is_empty() {
            continue; // parse_qs drops blank values
        }
        let (k, v) = (
            form_decode(k).ok_or_else(bad)?,
            form_decode(v).ok_or_else(bad)?,
        );
        params.retain(|(p, _)| *p != k);
        params.push((k, v));
    }
    let param = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    // The URL's hosts (each piece %-decoded after the split), else ?host= (already decoded),
    // both through _parse_hostlist: "h:port" items carry their own ports.
    let (hosts, ports) = match (hostspec.is_empty(), param("host")) {
        (false, _) => {
            let (hosts, ports) = host_list(hostspec);
            let decode = |v: Vec<String>| {
                v.iter()
                    .map(|s| percent_decode(s).ok_or_else(bad))
                    .collect::<Result<Vec<_>, _>>()
            };
            (decode(hosts)?, decode(ports)?)
        }
        (true, Some(h)) => host_list(&h),
        (true, None) => (Vec::new(), Vec::new()),
    };
    if !hosts.is_empty() {
        reading.set("host", hosts.join(","));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        reading.set("port", ports.join(","));
    } else if let (true, Some(p)) = (hostspec.is_empty(), param("port")) {
        reading.set("port", p);
    }
    if !path.is_empty() {
        reading.set("dbname", percent_decode(path).ok_or_else(bad)?);
    } else if let Some(db) = param("database").or_else(|| param("dbname")) {
        reading.set("dbname", db);
    }
    for (key, value) in &params {
        match key.as_str() {
            "host" | "port" | "dbname" | "database" => {}
            // The URL's user information wins over the query's.
            "user" | "password" if reading.pairs.iter().any(|(k, _)| k == key) => {}
            "sslmode" => reading.set("sslmode", ssl_mode(value)?),
            "target_session_attrs" => reading.set(key, attrs(value)?),
            k if CONSUMED.contains(&k) => reading.set(k, value.clone()),
            "application_name" | "options" => reading.set(key, value.clone()),
            // Sent at startup: the server takes a setting it knows (search_path, work_mem) and
            // rejects any other — connect_timeout included, which asyncpg does not read.
            _ => reading.settings.push((key.clone(), value.clone())),
        }
    }
    Ok(reading)
}

/// `user:password` (each %-decoded; an empty one is no setting).
fn userinfo_into(reading: &mut Reading, userinfo: &str) -> Result<(), String> {
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for (key, value) in [("user", user), ("password", password)] {
        if !value.is_empty() {
            let decoded = percent_decode(value).ok_or("a %-escape is malformed")?;
            reading.set(key, decoded);
        }
    }
    Ok(())
}

/// `h1:5432,[::1]:5433,/socket/dir`: a host without a port takes PGPORT or 5432.
fn host_list(spec: &str) -> (Vec<String>, Vec<String>) {
    spec.split(',')
        .map(|item| {
            if item.starts_with('/') {
                return (item.to_string(), String::new());
            }
            if let Some(inner) = item.strip_prefix('[') {
                let (h, after) = inner.split_once(']').unwrap_or((inner, ""));
                return (h.to_string(), after.trim_start_matches(':').to_string());
            }
            let (h, p) = item.split_once(':').unwrap_or((item, ""));
            (h.to_string(), p.to_string())
        })
        .unzip()
}

/// SSLMode.parse: libpq's names, with "_" for "-" accepted; case-sensitive.
fn ssl_mode(value: &str) -> Result<String, String> {
    let mode = value.replace('_', "-");
    SSLMODES
        .contains(&mode.as_str())
        .then_some(mode)
        .ok_or_else(|| "sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full (asyncpg)".into())
}

fn attrs(value: &str) -> Result<String, String> {
    const ATTRS: [&str; 6] = [
        "any",
        "primary",
        "standby",
        "prefer-standby",
        "read-write",
        "read-only",
    ];
    ATTRS
        .contains(&value)
        .then(|| value.to_string())
        .ok_or_else(|| {
            "target_session_attrs is not one asyncpg knows (it takes hyphens: read-write)".into()
        })
}

/// SQLAlchemy's URL regex, then each query key as an asyncpg.connect() keyword argument.
fn sqlalchemy(rest: &str) -> Result<Reading, String> {
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = before_query.split_once('/').unwrap_or((before_query, ""));
    let bad = || "a %-escape is malformed".to_string();
    let mut reading = Reading::default();
    let hostport = match authority.split_once('@') {
        Some((userinfo, h)) => {
            userinfo_into(&mut reading, userinfo)?;
            h
        }
        None => authority,
    };
    let (host, port) = host_port(hostport)?;
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err("the port is not a number: SQLAlchemy fails on it (ValueError), a host list too (use ?host=h1:p1&host=h2:p2)".into());
        }
        reading.set("port", port);
    }
    if !host.is_empty() {
        // SQLAlchemy does not percent-decode the host.
        reading.set("host", host);
    }
    if !database.is_empty() {
        reading.set("dbname", percent_decode(database).ok_or_else(bad)?);
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut query_hosts: Vec<String> = Vec::new();
    for (key, value) in query_pairs(query) {
        let value = form_decode(value.unwrap_or("")).ok_or_else(bad)?;
        if value.is_empty() {
            continue; // SQLAlchemy drops blank values
        }
        // ?host=h1:p1&host=h2:p2 (or ?host=h1,h2&port=p1,p2): SQLAlchemy's host list
        // (postgresql/base.py _split_multihost_from_url), handed to asyncpg as lists.
        if key == "host" {
            query_hosts.push(value);
            continue;
        }
        if seen.contains(&key) {
            return Err(format!(
                "{} is given twice: SQLAlchemy passes a list, which asyncpg cannot use",
                shown_key(key)
            ));
        }
        seen.push(key);
        match key {
            "ssl" => reading.set("sslmode", ssl_mode(&value).map_err(|_| "ssl= must be an sslmode name such as require (asyncpg refuses true/false)".to_string())?),
            "target_session_attrs" => reading.set(key, attrs(&value)?),
            "port" => reading.set("port", value),
            k if SQLALCHEMY_KWARGS.contains(&k) || SQLALCHEMY_OWN.contains(&k) => {
                if matches!(k, "passfile" | "service" | "servicefile" | "krbsrvname" | "gsslib") {
                    reading.set(k, value);
                }
            }
            k if SQLALCHEMY_UNUSABLE.contains(&k) => {
                return Err(format!("{} reaches asyncpg.connect() as text, where it needs a number or mapping: every connect fails (TypeError)", shown_key(k)))
            }
            _ => {
                return Err(format!("{} is not an argument of asyncpg.connect(): SQLAlchemy passes it anyway and every connect fails (TypeError); asyncpg's TLS key is ssl=, e.g. ssl=require", shown_key(key)))
            }
        }
    }
    if !query_hosts.is_empty() {
        let items: Vec<&str> = query_hosts.iter().flat_map(|h| h.split(',')).collect();
        let (hosts, ports): (Vec<&str>, Vec<Option<&str>>) = items
            .iter()
            .map(|item| host_port(item))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip();
        reading.set("host", hosts.join(","));
        if ports.iter().any(Option::is_some) {
            if ports.iter().any(Option::is_none) {
                return Err("a host list in the query needs a port for every host, or none (SQLAlchemy: ArgumentError)".into());
            }
            let ports: Vec<&str> = ports.into_iter().flatten().collect();
            reading.set("port", ports.join(","));
        }
    }
    Ok(reading)
}
