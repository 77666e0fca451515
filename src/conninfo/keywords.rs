//! The libpq keywords pgwait knows, what it does with each, and the `PG*` variables that set them.

/// What pgwait does with a libpq keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Used,
    /// Accepted and ignored: it cannot change whether the server accepts the application.
    Ignored,
    /// A real libpq keyword pgwait cannot honour; using it must not silently do less.
    NotYet(&'static str),
}

use Support::{Ignored, NotYet, Used};

/// Every libpq 18 keyword (PostgreSQL 19's `servicefile` and `oauth_ca_file` too) and pgwait's
/// support for it; the order is libpq's own (`PQconndefaults`).
pub const KEYWORDS: &[(&str, Support)] = &[
    ("service", Used),
    ("servicefile", Used),
    ("user", Used),
    ("password", Used),
    ("passfile", Used),
    ("channel_binding", Used),
    ("connect_timeout", Used),
    ("dbname", Used),
    ("host", Used),
    ("hostaddr", Used),
    ("port", Used),
    // tokio-postgres always asks for UTF8, which every server converts to; the app's encoding
    // cannot change whether it may log in.
    ("client_encoding", Ignored),
    ("options", Used),
    ("application_name", Used),
    ("fallback_application_name", Used),
    ("keepalives", Ignored),
    ("keepalives_idle", Ignored),
    ("keepalives_interval", Ignored),
    ("keepalives_count", Ignored),
    ("tcp_user_timeout", Ignored),
    ("sslmode", Used),
    ("sslnegotiation", Used),
    // Compression was removed from TLS long ago; libpq accepts and ignores it too.
    ("sslcompression", Ignored),
    ("sslcert", Used),
    ("sslkey", Used),
    ("sslcertmode", Used),
    // libpq uses it only to decrypt an encrypted key; pgwait refuses such a key when it reads
    // it (tls.rs), so with a plain key, as with libpq, it changes nothing.
    ("sslpassword", Ignored),
    ("sslrootcert", Used),
    ("sslcrl", Used),
    ("sslcrldir", Used),
    ("sslsni", Used),
    ("requirepeer", Used),
    ("require_auth", Used),
    ("min_protocol_version", Used),
    ("max_protocol_version", Used),
    ("ssl_min_protocol_version", Used),
    ("ssl_max_protocol_version", Used),
    ("gssencmode", Used),
    ("krbsrvname", Ignored),
    ("gsslib", Ignored),
    ("gssdelegation", Ignored),
    (
        "replication",
        NotYet("a replication connection is not a readiness check; wait without it"),
    ),
    ("target_session_attrs", Used),
    ("load_balance_hosts", Used),
    (
        "scram_client_key",
        NotYet("SCRAM keys passed through by postgres_fdw or dblink; give pgwait a password"),
    ),
    (
        "scram_server_key",
        NotYet("SCRAM keys passed through by postgres_fdw or dblink; give pgwait a password"),
    ),
    // OAuth: libpq runs a device flow in a terminal, which a gate cannot; the keywords are
    // accepted so an app's connection string works, and a server asking for OAUTHBEARER gets
    // a clear failure (probe/pg.rs).
    ("oauth_issuer", Ignored),
    ("oauth_client_id", Ignored),
    ("oauth_client_secret", Ignored),
    ("oauth_scope", Ignored),
    ("oauth_ca_file", Ignored),
    ("sslkeylogfile", Used),
];

/// Keywords libpq no longer (or never) had, and what to write instead; named in the error.
/// (`requiressl` is not here: libpq still reads it as `sslmode`, see settings.rs.)
pub const RETIRED: &[(&str, &str)] = &[
    (
        "authtype",
        "libpq no longer has this keyword; nothing replaces it",
    ),
    (
        "tty",
        "libpq no longer has this keyword; nothing replaces it",
    ),
];

/// Query parameters of other drivers' URLs, and whose they are: naming the driver tells the
/// user that the app's URL is in its driver's dialect, not libpq's.
pub const OTHER_DRIVERS: &[(&str, &str)] = &[
    ("sslfactory", "JDBC (pgjdbc): give --driver jdbc"),
    ("targetServerType", "JDBC (pgjdbc): give --driver jdbc"),
    ("loadBalanceHosts", "JDBC (pgjdbc): give --driver jdbc"),
    ("currentSchema", "JDBC (pgjdbc): give --driver jdbc"),
    ("loginTimeout", "JDBC (pgjdbc): give --driver jdbc"),
    ("connectTimeout", "JDBC (pgjdbc): give --driver jdbc"),
    ("ApplicationName", "JDBC (pgjdbc): give --driver jdbc"),
    ("prepareThreshold", "JDBC (pgjdbc): give --driver jdbc"),
    ("sslaccept", "Prisma: give --driver prisma"),
    ("schema", "Prisma: give --driver prisma"),
    ("connection_limit", "Prisma: give --driver prisma"),
    ("pool_timeout", "Prisma: give --driver prisma"),
    ("pgbouncer", "Prisma: give --driver prisma"),
    ("socket_timeout", "Prisma: give --driver prisma"),
    (
        "statement_cache_size",
        "Prisma or asyncpg: give --driver prisma or asyncpg",
    ),
    ("pool_max_conns", "pgx: give --driver pgx"),
    ("pool_min_conns", "pgx: give --driver pgx"),
    ("pool_max_conn_lifetime", "pgx: give --driver pgx"),
    (
        "ssl",
        "JDBC, node-postgres or asyncpg (libpq knows only ssl=true): give --driver",
    ),
    ("encoding", "Rails: give --driver rails"),
    ("pool", "Rails: give --driver rails"),
    ("prepared_statements", "Rails: give --driver rails"),
    (
        "query_timeout",
        "node-postgres: give --driver node-postgres",
    ),
    (
        "statement_timeout",
        "node-postgres or pgx: give --driver node-postgres or pgx",
    ),
    (
        "idle_in_transaction_session_timeout",
        "node-postgres: give --driver node-postgres",
    ),
];

/// The canonical (static) spelling of `keyword` and its support, if libpq knows it.
pub fn lookup(keyword: &str) -> Option<(&'static str, Support)> {
    KEYWORDS.iter().find(|(k, _)| *k == keyword).copied()
}

/// What pgwait can say about a keyword libpq does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// The known keyword it most likely misspells.
    Typo(&'static str),
    /// A keyword libpq had once: why it is gone and what replaces it.
    Retired(&'static str),
    /// A parameter of another driver's URL (`keyword`, driver).
    OtherDriver(&'static str, &'static str),
}

/// The best explanation for a keyword libpq does not know.
pub fn explain_unknown(typed: &str) -> Option<Unknown> {
    if let Some((_, why)) = RETIRED.iter().find(|(k, _)| *k == typed) {
        return Some(Unknown::Retired(why));
    }
    if let Some((k, driver)) = OTHER_DRIVERS.iter().find(|(k, _)| *k == typed) {
        return Some(Unknown::OtherDriver(k, driver));
    }
    nearest(typed).map(Unknown::Typo)
}

/// The known keyword `typed` most likely misspells (at most two edits away), for error hints.
pub fn nearest(typed: &str) -> Option<&'static str> {
    let typed = typed.to_ascii_lowercase();
    KEYWORDS
        .iter()
        .map(|(k, _)| (edit_distance(&typed, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keywords are ASCII); input longer than any keyword plus two
/// cannot be within two edits, so it costs nothing.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 {
        return usize::MAX;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// `PG*` variables that set a keyword, as libpq 18 reads them (and PostgreSQL 19's
/// `PGSERVICEFILE` → `servicefile`). `PGREQUIRESSL` and `PGSYSCONFDIR` are read by config.
pub const ENV_KEYWORDS: &[(&str, &str)] = &[
    ("PGSERVICE", "service"),
    ("PGSERVICEFILE", "servicefile"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGDATABASE", "dbname"),
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGCLIENTENCODING", "client_encoding"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGSSLCOMPRESSION", "sslcompression"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGSSLSNI", "sslsni"),
    ("PGREQUIREPEER", "requirepeer"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGMINPROTOCOLVERSION", "min_protocol_version"),
    ("PGMAXPROTOCOLVERSION", "max_protocol_version"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGGSSENCMODE", "gssencmode"),
    ("PGKRBSRVNAME", "krbsrvname"),
    ("PGGSSLIB", "gsslib"),
    ("PGGSSDELEGATION", "gssdelegation"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_sets_a_known_keyword_once() {
        for (i, (var, keyword)) in ENV_KEYWORDS.iter().enumerate() {
            assert!(lookup(keyword).is_some(), "{var}");
            assert!(ENV_KEYWORDS[i + 1..].iter().all(|(v, _)| v != var), "{var}");
        }
    }

    /// docs/configuration.md's keyword table is this table: every keyword in libpq's order,
    /// its variable and its status.
    #[test]
    fn the_documented_keyword_table_is_this_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text
            .find("| keyword | variable | status |")
            .expect("the keyword table");
        let documented: Vec<(String, String, String)> = text[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let unquote = |c: &str| c.trim_matches('`').to_string();
                (unquote(cells[1]), unquote(cells[2]), cells[3].to_string())
            })
            .collect();
        let expected: Vec<(String, String, String)> = KEYWORDS
            .iter()
            .map(|(keyword, support)| {
                let var = ENV_KEYWORDS
                    .iter()
                    .find(|(_, k)| k == keyword)
                    .map_or("", |(v, _)| v);
                let status = match support {
                    Used => "used",
                    Ignored => "ignored",
                    NotYet(_) => "refused",
                };
                (keyword.to_string(), var.to_string(), status.to_string())
            })
            .collect();
        assert_eq!(documented, expected);
    }

    #[test]
    fn retired_and_other_drivers_keywords_are_not_libpq_keywords() {
        for (keyword, _) in RETIRED.iter().chain(OTHER_DRIVERS) {
            assert!(lookup(keyword).is_none(), "{keyword}");
        }
    }

    #[test]
    fn typos_suggest_the_nearest_keyword() {
        let table = [
            ("hots", Some("host")),
            ("sslmod", Some("sslmode")),
            ("DBNAME", Some("dbname")),
            ("passwrd", Some("password")),
            ("SECRET", None),
            ("x", None),
            ("", None),
        ];
        for (typed, want) in table {
            assert_eq!(nearest(typed), want, "{typed}");
        }
    }

    #[test]
    fn keywords_are_listed_once() {
        for (i, (k, _)) in KEYWORDS.iter().enumerate() {
            assert!(KEYWORDS[i + 1..].iter().all(|(other, _)| other != k), "{k}");
        }
    }
}
