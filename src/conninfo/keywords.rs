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

/// Every libpq keyword (PostgreSQL 17) and pgwait's support for it.
pub const KEYWORDS: &[(&str, Support)] = &[
    ("host", Used),
    ("hostaddr", Used),
    ("port", Used),
    ("dbname", Used),
    ("user", Used),
    ("password", Used),
    ("passfile", Used),
    ("service", Used),
    ("connect_timeout", Used),
    ("application_name", Used),
    ("fallback_application_name", Used),
    ("options", Used),
    ("sslmode", Used),
    ("sslrootcert", Used),
    ("sslcert", Used),
    ("sslkey", Used),
    ("sslcrl", Used),
    ("sslsni", Used),
    ("sslnegotiation", Used),
    ("sslcertmode", Used),
    ("ssl_min_protocol_version", Used),
    ("ssl_max_protocol_version", Used),
    ("channel_binding", Used),
    ("target_session_attrs", Used),
    ("gssencmode", Used),
    ("requiressl", Used),
    ("keepalives", Ignored),
    ("keepalives_idle", Ignored),
    ("keepalives_interval", Ignored),
    ("keepalives_count", Ignored),
    ("tcp_user_timeout", Ignored),
    ("client_encoding", Ignored),
    ("krbsrvname", Ignored),
    ("gsslib", Ignored),
    ("gssdelegation", Ignored),
    // Compression was removed from TLS long ago; libpq accepts and ignores it too.
    ("sslcompression", Ignored),
    (
        "sslpassword",
        NotYet("encrypted private keys are not supported; decrypt the key (openssl pkey) instead"),
    ),
    (
        "sslcrldir",
        NotYet("use sslcrl with a single PEM file instead"),
    ),
    (
        "requirepeer",
        NotYet("peer credential checks are not implemented"),
    ),
    (
        "require_auth",
        NotYet("restricting authentication methods is not implemented"),
    ),
    (
        "load_balance_hosts",
        NotYet("hosts are always tried in order"),
    ),
    (
        "replication",
        NotYet("replication connections are not a readiness check"),
    ),
];

/// The canonical (static) spelling of `keyword` and its support, if libpq knows it.
pub fn lookup(keyword: &str) -> Option<(&'static str, Support)> {
    KEYWORDS.iter().find(|(k, _)| *k == keyword).copied()
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

/// `PG*` variables pgwait reads, and the keyword each one sets.
pub const ENV_KEYWORDS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGSERVICE", "service"),
    ("PGDATABASE", "dbname"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGAPPNAME", "application_name"),
    ("PGOPTIONS", "options"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLSNI", "sslsni"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGGSSENCMODE", "gssencmode"),
    ("PGREQUIRESSL", "requiressl"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_sets_a_known_used_keyword() {
        for (var, keyword) in ENV_KEYWORDS {
            assert_eq!(lookup(keyword).map(|(_, s)| s), Some(Used), "{var}");
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
