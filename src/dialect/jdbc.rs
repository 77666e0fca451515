//! pgjdbc (42.5–42.7): `jdbc:postgresql:[//host[:port][,host[:port]...]/][database][?k=v&...]`
//! (Driver.parseURL, PGProperty, SslMode.of, HostRequirement; docs/drivers.md cites lines).

use super::text::{form_decode, query_pairs, shown_key, SSLMODES};
use super::Reading;

/// Keys that need a Java class pgwait cannot load: refusing is the honest answer.
const JAVA_CLASSES: [&str; 6] = [
    "socketFactory",
    "authenticationPluginClassName",
    "sslpasswordcallback",
    "sslhostnameverifier",
    "connectExecutor",
    "xmlFactoryFactory",
];

/// The sslfactory values pgjdbc ships whose effect pgwait can reproduce.
const LIBPQ_FACTORIES: [&str; 2] = [
    "org.postgresql.ssl.LibPQFactory",
    "org.postgresql.ssl.jdbc4.LibPQFactory",
];
/// Integer properties read during connect (PGProperty.getInt: a bad value is 22023).
const INTEGERS: [&str; 8] = [
    "socketTimeout",
    "cancelSignalTimeout",
    "hostRecheckSeconds",
    "receiveBufferSize",
    "sendBufferSize",
    "sslResponseTimeout",
    "gssResponseTimeout",
    "prepareThreshold",
];

const NON_VALIDATING: &str = "org.postgresql.ssl.NonValidatingFactory";

const NO_USERINFO: &str = "pgjdbc reads no user:password@ in a URL (the app would look the whole text up as a host name): give ?user=…&password=…";

pub fn read(text: &str) -> Result<Reading, String> {
    let rest = text
        .strip_prefix("jdbc:postgresql:")
        .ok_or("a pgjdbc URL starts with jdbc:postgresql: (exactly, in lower case)")?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut hosts: Vec<String> = vec!["localhost".into()];
    let mut ports: Vec<String> = vec!["5432".into()];
    let mut dbname: Option<String> = None;
    let decode =
        |s: &str| form_decode(s).ok_or("a %-escape is malformed (pgjdbc: Unable to parse URL)");
    if main.is_empty() || main == "//" || main == "///" {
    } else if let Some(server) = main.strip_prefix("//") {
        let (hostpart, db) = match server.matches('/').count() {
            1 => server.split_once('/').unwrap_or((server, "")),
            0 => {
                return Err(
                    "the host list must end with \"/\" (jdbc:postgresql://host/ or host/db)".into(),
                )
            }
            _ => return Err("the part after // holds more than one \"/\"".into()),
        };
        if !db.is_empty() {
            dbname = Some(decode(db)?);
        }
        if hostpart.contains('@') {
            return Err(NO_USERINFO.into());
        }
        if !hostpart.is_empty() {
            (hosts, ports) = host_list(hostpart);
        }
    } else if main.starts_with('/') {
        return Err(
            "jdbc:postgresql:/… is not a pgjdbc URL (use jdbc:postgresql://host/db)".into(),
        );
    } else {
        dbname = Some(decode(main)?);
    }
    // Query: keys raw and case-sensitive (but host/port/dbname in any case), values form-decoded,
    // the last of a repeated key wins; a key without "=" is set to "".
    let mut props: Vec<(String, String)> = Vec::new();
    for (key, value) in query_pairs(query) {
        let value = decode(value.unwrap_or(""))?;
        let key = match key.to_ascii_lowercase().as_str() {
            "host" | "pghost" => "PGHOST".to_string(),
            "port" | "pgport" => "PGPORT".to_string(),
            "dbname" | "pgdbname" => "PGDBNAME".to_string(),
            _ => key.to_string(),
        };
        props.retain(|(k, _)| *k != key);
        props.push((key, value));
    }
    let prop = |k: &str| props.iter().find(|(p, _)| p == k).map(|(_, v)| v.as_str());
    if let Some(h) = prop("PGHOST") {
        hosts = h.split(',').map(str::to_string).collect();
    }
    if let Some(p) = prop("PGPORT") {
        ports = p.split(',').map(str::to_string).collect();
    }
    if let Some(d) = prop("PGDBNAME") {
        dbname = Some(d.to_string());
    }
    check_hosts(&hosts, &ports)?;
    for key in JAVA_CLASSES {
        if prop(key).is_some() {
            return Err(format!(
                "{} names a Java class, which pgwait cannot run",
                shown_key(key)
            ));
        }
    }
    let mut reading = Reading::default();
    let hosts: Vec<&str> = hosts
        .iter()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        .collect();
    reading.set("host", hosts.join(","));
    reading.set("port", ports.join(","));
    if let Some(db) = dbname {
        reading.set("dbname", db);
    }
    for (from, to) in [
        ("user", "user"),
        ("password", "password"),
        ("ApplicationName", "application_name"),
        ("options", "options"),
        ("service", "service"),
    ] {
        if let Some(v) = prop(from) {
            reading.set(to, v);
        }
    }
    tls(&mut reading, &prop)?;
    if let Some(v) = prop("targetServerType") {
        reading.set("target_session_attrs", target(v)?);
    }
    if prop("loadBalanceHosts").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        reading.set("load_balance_hosts", "random");
    }
    // Integer properties pgjdbc reads while connecting: anything else fails its connect (22023).
    for key in INTEGERS {
        if prop(key).is_some_and(|v| v.trim().parse::<i32>().is_err()) {
            return Err(format!(
                "\"{key}\" must be a whole number (pgjdbc refuses the connection otherwise)"
            ));
        }
    }
    // connectTimeout: whole seconds, 10 by default (a decimal is an error in pgjdbc).
    let timeout = prop("connectTimeout").unwrap_or("10");
    let secs: i64 = timeout
        .trim()
        .parse()
        .map_err(|_| "connectTimeout must be a whole number of seconds (pgjdbc refuses the connection otherwise)".to_string())?;
    reading.set("connect_timeout", secs.to_string());
    if let Some(schema) = prop("currentSchema") {
        reading.settings.push(("search_path".into(), schema.into()));
    }
    if prop("gssEncMode").is_some_and(|v| v.eq_ignore_ascii_case("require")) {
        return Err(
            "gssEncMode=require needs GSSAPI encryption, which pgwait does not have".into(),
        );
    }
    if prop("replication").is_some() {
        return Err("a replication connection is not a readiness check".into());
    }
    Ok(reading)
}

/// `h1:5432,[::1]:5433,h3`: the port is what follows the last ":" after the last "]"; an empty
/// host is localhost; no percent-decoding.
fn host_list(hostpart: &str) -> (Vec<String>, Vec<String>) {
    hostpart
        .split(',')
        .map(|item| {
            let after_bracket = item.rfind(']').map_or(0, |i| i + 1);
            let (host, port) = match item[after_bracket..].rfind(':') {
                Some(i) => (&item[..after_bracket + i], &item[after_bracket + i + 1..]),
                None => (item, "5432"),
            };
            let host = if host.is_empty() { "localhost" } else { host };
            (host.to_string(), port.to_string())
        })
        .unzip()
}

fn check_hosts(hosts: &[String], ports: &[String]) -> Result<(), String> {
    if hosts.iter().any(|h| h.contains('@')) {
        return Err(NO_USERINFO.into());
    }
    let valid = |p: &String| {
        p.trim()
            .parse::<u32>()
            .is_ok_and(|n| (1..=65535).contains(&n))
    };
    if hosts.len() != ports.len() || !ports.iter().all(valid) {
        return Err(
            "the ports must be numbers from 1 to 65535, one per host (pgjdbc: Unable to parse URL)"
                .into(),
        );
    }
    Ok(())
}

/// sslmode (any case) wins; else `ssl=true` or a bare `ssl` is verify-full; anything else
/// (even `ssl=false`) is prefer. prefer and require never verify (handled by the driver's
/// behaviour); NonValidatingFactory verifies nothing.
fn tls<'a>(reading: &mut Reading, prop: &impl Fn(&str) -> Option<&'a str>) -> Result<(), String> {
    let mut mode = match prop("sslmode") {
        Some(m) => SSLMODES
            .iter()
            .find(|v| v.eq_ignore_ascii_case(m))
            .copied()
            .ok_or("sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full (pgjdbc: Invalid sslmode value)")?,
        None => match prop("ssl") {
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("true") => "verify-full",
            _ => "prefer",
        },
    };
    match prop("sslfactory") {
        None => {}
        Some(f) if LIBPQ_FACTORIES.contains(&f) => {}
        Some(NON_VALIDATING) => {
            if matches!(mode, "verify-ca" | "verify-full") {
                mode = "require";
            }
        }
        Some(_) => return Err("sslfactory names a Java class, which pgwait cannot run".into()),
    }
    reading.set("sslmode", mode);
    for key in ["sslrootcert", "sslcert", "sslkey"] {
        if let Some(v) = prop(key) {
            reading.set(key, v);
        }
    }
    Ok(())
}

/// targetServerType (case-sensitive, as Enum.valueOf) → target_session_attrs.
fn target(value: &str) -> Result<&'static str, String> {
    Ok(match value {
        "any" => "any",
        // pgjdbc's primary is "not a hot standby and transaction_read_only off"
        // (ConnectionFactoryImpl.isPrimary): libpq's read-write, and its opposite read-only.
        "primary" | "master" => "read-write",
        "secondary" | "slave" => "read-only",
        "preferSecondary" | "preferSlave" => "prefer-standby",
        // preferPrimary: primaries first, then any server; a gate that accepts any is the
        // closest libpq can say (a standby only when no primary answers).
        "preferPrimary" => "any",
        _ => return Err("targetServerType is not one of any, primary, secondary, preferSecondary, preferPrimary (pgjdbc: Invalid targetServerType value)".into()),
    })
}
