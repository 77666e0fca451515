//! Readiness conditions beyond "accepts a query": custom SQL (`--query`), tables (`--table`) and
//! extensions (`--extension`). Each becomes one SQL statement run on the attempt's connection;
//! the condition holds when the statement returns a row whose first column is neither NULL nor
//! false. Names are parsed with PostgreSQL's identifier rules ([`crate::sql`]) and reach the
//! server only as string literals, so a name can never be SQL.

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
