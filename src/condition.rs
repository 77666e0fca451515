//! Readiness conditions beyond "accepts a query": custom SQL (`--query`), tables (`--table`) and
//! extensions (`--extension`). Each becomes one SQL statement run on the attempt's connection;
//! the condition holds when the statement returns a row whose first column is neither NULL nor
//! false. Names are parsed with PostgreSQL's identifier rules ([`crate::sql`]) and reach the
//! server only as string literals, so a name can never be SQL.

use std::time::Duration;

use crate::classify::NotMet;
use crate::migrations::Migrations;
use crate::sql::{self, Ident, NameError};

/// What a condition checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Custom SQL, sent as written over the simple query protocol.
    Query(String),
    /// A table (or view, or any relation), optionally schema-qualified; unqualified names follow
    /// the role's `search_path`.
    Table { schema: Option<Ident>, name: Ident },
    /// An installed extension.
    Extension(Ident),
    /// A migration tool's history: nothing failed, unfinished or locked; a version applied.
    Migrations(Migrations),
    /// `--max-lag`: a primary, or a streaming standby within the bounds.
    MaxLag(MaxLag),
}

/// `--max-lag`: how far behind a standby may be (a primary is never behind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaxLag {
    /// WAL received but not yet replayed.
    pub bytes: Option<u64>,
    /// Age of the last replayed transaction while WAL is waiting to be replayed.
    pub time: Option<Duration>,
}

/// A standby's backlog as measured (each figure when the server knows it); zero on a primary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    pub bytes: Option<u64>,
    pub ms: Option<u64>,
}

/// One query, for any role (no superuser, no pg_read_all_stats): on PostgreSQL 15 such a role
/// sees only `pid` in pg_stat_wal_receiver (a row exists only while a receiver is connected),
/// and may call the LSN and replay-timestamp functions. pg_current_wal_lsn() is not used: it
/// raises on a standby. A role that sees the receiver's status (a superuser or
/// pg_read_all_stats) also requires it to be `streaming`. Columns: in recovery, receiving,
/// bytes received but not replayed, ms since the last replayed transaction.
pub const LAG_SQL: &str = "SELECT pg_catalog.pg_is_in_recovery(), \
     EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver WHERE pid IS NOT NULL \
     AND (status IS NULL OR status = 'streaming')), \
     pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn()), \
     (extract(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()) * 1000)::bigint";

/// Judges [`LAG_SQL`]'s row against the bounds. A primary is ready (lag 0). A standby must
/// have a live WAL receiver; its time lag is 0 when everything received is replayed (an idle
/// primary sends nothing, so an old last transaction is not lag), else the age of the last
/// replayed transaction. A figure the server cannot give (nothing received or replayed yet)
/// is over any bound on it.
pub fn judge_lag(limits: &MaxLag, columns: [Option<&str>; 4]) -> Result<Lag, NotMet> {
    let yes = |c: Option<&str>| matches!(c, Some("t" | "true"));
    if !yes(columns[0]) {
        return Ok(Lag {
            bytes: Some(0),
            ms: Some(0),
        });
    }
    if !yes(columns[1]) {
        return Err(NotMet::NotStreaming);
    }
    let number = |c: Option<&str>| {
        c.and_then(|v| v.parse::<f64>().ok())
            .map(|n| n.max(0.0) as u64)
    };
    let bytes = number(columns[2]);
    let ms = match bytes {
        Some(0) => Some(0),
        _ => number(columns[3]),
    };
    let over =
        |limit: Option<u64>, got: Option<u64>| limit.is_some_and(|max| got.is_none_or(|g| g > max));
    let time_limit = limits
        .time
        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    if over(limits.bytes, bytes) || over(time_limit, ms) {
        return Err(NotMet::Lagging { bytes, ms });
    }
    Ok(Lag { bytes, ms })
}

/// Why a `--max-lag` value does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagError {
    /// Neither a size with a unit nor a duration.
    Unreadable,
    /// Two sizes, or two durations.
    Twice,
}

/// `--max-lag` values (each a comma list): a size (`16MB`, PostgreSQL's 1024-based units B,
/// kB, MB, GB, TB, any case) and/or a duration (`5s`, `500ms`). A bare number is neither.
pub fn max_lag<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<MaxLag, LagError> {
    let mut limits = MaxLag::default();
    for item in values.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        if let Some(bytes) = parse_size(item) {
            if limits.bytes.replace(bytes).is_some() {
                return Err(LagError::Twice);
            }
        } else if let Some(time) = item
            .starts_with(|c: char| c.is_ascii_digit())
            .then(|| humantime::parse_duration(item).ok())
            .flatten()
            .filter(|_| item.ends_with(|c: char| c.is_ascii_alphabetic()))
        {
            if limits.time.replace(time).is_some() {
                return Err(LagError::Twice);
            }
        } else {
            return Err(LagError::Unreadable);
        }
    }
    Ok(limits)
}

/// `16MB` → bytes; `None` unless it is digits and a size unit.
fn parse_size(item: &str) -> Option<u64> {
    let split = item.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = item.split_at(split);
    let number: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "b" => 0,
        "kb" | "kib" => 10,
        "mb" | "mib" => 20,
        "gb" | "gib" => 30,
        "tb" | "tib" => 40,
        _ => return None,
    };
    number.checked_mul(1u64 << shift)
}

/// `--table` value → condition.
pub fn table(text: &str) -> Result<Condition, NameError> {
    let (schema, name) = sql::qualified_name(text)?;
    Ok(Condition::Table { schema, name })
}

/// `--extension` value → condition.
pub fn extension(text: &str) -> Result<Condition, NameError> {
    let mut parts = sql::parse_name(text)?;
    if parts.len() != 1 {
        return Err(NameError::TooManyParts);
    }
    Ok(Condition::Extension(parts.remove(0)))
}

impl Condition {
    /// The SQL that checks it: one statement whose first column of the first row decides.
    /// (Migrations are checked by their own two queries, see [`Migrations`].)
    pub fn sql(&self) -> String {
        match self {
            Self::Query(sql) => sql.clone(),
            Self::Migrations(m) => m.state_sql(),
            Self::MaxLag(_) => LAG_SQL.to_string(),
            // The catalogs, not to_regclass(): they need no USAGE on the schema, which the app's
            // role often gets from the same migration that creates the table.
            Self::Table {
                schema: Some(schema),
                name,
            } => format!(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
                 ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {})",
                schema.literal(),
                name.literal()
            ),
            // Unqualified: as the role's search_path finds it.
            Self::Table { schema: None, name } => format!(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relname = {} \
                 AND pg_catalog.pg_table_is_visible(c.oid))",
                name.literal()
            ),
            Self::Extension(name) => format!(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = {})",
                name.literal()
            ),
        }
    }
}

/// Whether a first column holds: NULL (`None`), `f` and `false` do not; anything else does.
pub fn holds(first_column: Option<&str>) -> bool {
    !matches!(first_column, None | Some("f" | "false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reach_the_server_only_inside_literals() {
        let sql = table("s.\"x'); drop table y; --\"").unwrap().sql();
        assert!(
            sql.ends_with("n.nspname = E's' AND c.relname = E'x''); drop table y; --')"),
            "{sql}"
        );
        let sql = extension("\"a\\'b\"").unwrap().sql();
        assert!(sql.ends_with("extname = E'a\\\\''b')"), "{sql}");
    }

    #[test]
    fn max_lag_reads_sizes_and_durations() {
        let mb16 = Some(16 << 20);
        let table: [(&[&str], Result<MaxLag, LagError>); 9] = [
            (
                &["16MB"],
                Ok(MaxLag {
                    bytes: mb16,
                    time: None,
                }),
            ),
            (
                &["16mb,5s"],
                Ok(MaxLag {
                    bytes: mb16,
                    time: Some(Duration::from_secs(5)),
                }),
            ),
            (
                &["500ms", "1kB"],
                Ok(MaxLag {
                    bytes: Some(1024),
                    time: Some(Duration::from_millis(500)),
                }),
            ),
            (
                &["0B"],
                Ok(MaxLag {
                    bytes: Some(0),
                    time: None,
                }),
            ),
            (&["16"], Err(LagError::Unreadable)),
            (&["lots"], Err(LagError::Unreadable)),
            (&[""], Err(LagError::Unreadable)),
            (&["1MB,2MB"], Err(LagError::Twice)),
            (&["99999999999TB"], Err(LagError::Unreadable)),
        ];
        for (values, want) in table {
            assert_eq!(max_lag(values.iter().copied()), want, "{values:?}");
        }
    }

    #[test]
    fn lag_is_judged_as_documented() {
        let both = MaxLag {
            bytes: Some(1000),
            time: Some(Duration::from_secs(5)),
        };
        let lag = |bytes, ms| Lag { bytes, ms };
        type Row<'a> = [Option<&'a str>; 4];
        let table: [(Row, Result<Lag, NotMet>); 8] = [
            // A primary: nothing to be behind.
            (
                [Some("f"), Some("f"), None, None],
                Ok(lag(Some(0), Some(0))),
            ),
            // A standby whose receiver is gone (the primary is down).
            (
                [Some("t"), Some("f"), Some("0"), Some("10")],
                Err(NotMet::NotStreaming),
            ),
            // Caught up, an idle primary: the last transaction is old, but nothing is waiting.
            (
                [Some("t"), Some("t"), Some("0"), Some("3600000")],
                Ok(lag(Some(0), Some(0))),
            ),
            // Behind, within both bounds.
            (
                [Some("t"), Some("t"), Some("400"), Some("1200")],
                Ok(lag(Some(400), Some(1200))),
            ),
            // Too many bytes, or too old.
            (
                [Some("t"), Some("t"), Some("4000"), Some("10")],
                Err(NotMet::Lagging {
                    bytes: Some(4000),
                    ms: Some(10),
                }),
            ),
            (
                [Some("t"), Some("t"), Some("10"), Some("9000")],
                Err(NotMet::Lagging {
                    bytes: Some(10),
                    ms: Some(9000),
                }),
            ),
            // Nothing replayed yet while WAL waits: the time lag is unknown, over the bound.
            (
                [Some("t"), Some("t"), Some("10"), None],
                Err(NotMet::Lagging {
                    bytes: Some(10),
                    ms: None,
                }),
            ),
            // numeric text from pg_wal_lsn_diff.
            (
                [Some("t"), Some("t"), Some("12.0"), Some("1")],
                Ok(lag(Some(12), Some(1))),
            ),
        ];
        for (columns, want) in table {
            assert_eq!(judge_lag(&both, columns), want, "{columns:?}");
        }
        // Only a size bound: an unknown time does not matter.
        let bytes_only = MaxLag {
            bytes: Some(1000),
            time: None,
        };
        let row = [Some("t"), Some("t"), Some("10"), None];
        assert_eq!(judge_lag(&bytes_only, row), Ok(lag(Some(10), None)));
    }

    #[test]
    fn a_first_column_holds_unless_null_or_false() {
        for (value, want) in [
            (None, false),
            (Some("f"), false),
            (Some("false"), false),
            (Some("t"), true),
            (Some("0"), true),
            (Some(""), true),
        ] {
            assert_eq!(holds(value), want, "{value:?}");
        }
    }
}
