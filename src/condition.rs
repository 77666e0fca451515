//! Readiness conditions beyond "accepts a query": custom SQL (`--query`), tables (`--table`) and
//! extensions (`--extension`). Each becomes one SQL statement run on the attempt's connection;
//! the condition holds when the statement returns a row whose first column is neither NULL nor
//! false. Names are parsed here with PostgreSQL's identifier rules and reach the server only as
//! string literals, so a name can never be SQL.

use std::fmt;

use crate::migrations::Migrations;

/// One identifier, as PostgreSQL reads it: unquoted folds to lower case, `"quoted"` is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    /// The identifier's text.
    pub fn text(&self) -> &str {
        &self.0
    }
}

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

/// Why a value is not a name (exit 2). Never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// A character at this 1-based position that an unquoted identifier cannot hold.
    BadCharacter {
        position: usize,
    },
    UnterminatedQuote,
    /// More parts than `schema.name` (or a qualified extension name).
    TooManyParts,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the name is empty"),
            Self::BadCharacter { position } => write!(
                f,
                "character {position} cannot appear in an unquoted name (quote it: '\"My Table\"')"
            ),
            Self::UnterminatedQuote => f.write_str("a quoted name is missing its closing \""),
            Self::TooManyParts => f.write_str("expected NAME or SCHEMA.NAME"),
        }
    }
}

/// Parses `name`, `schema.name`, `"Quoted Name"`, `"s"."t"` into identifier parts.
pub fn parse_name(text: &str) -> Result<Vec<Ident>, NameError> {
    let mut parts = Vec::new();
    let mut chars = text.chars().zip(1..).peekable();
    loop {
        let part = match chars.peek() {
            None => return Err(NameError::Empty),
            Some(('"', _)) => {
                chars.next();
                let mut name = String::new();
                loop {
                    match chars.next() {
                        None => return Err(NameError::UnterminatedQuote),
                        Some(('"', _)) if chars.next_if(|(c, _)| *c == '"').is_some() => {
                            name.push('"');
                        }
                        Some(('"', _)) => break,
                        Some((c, _)) => name.push(c),
                    }
                }
                name
            }
            Some(_) => {
                let mut name = String::new();
                while let Some((c, position)) = chars.next_if(|(c, _)| *c != '.') {
                    let first = name.is_empty();
                    let ok =
                        c.is_alphabetic() || c == '_' || (!first && (c.is_numeric() || c == '$'));
                    if !ok {
                        return Err(NameError::BadCharacter { position });
                    }
                    name.extend(c.to_lowercase());
                }
                name
            }
        };
        if part.is_empty() {
            return Err(NameError::Empty);
        }
        parts.push(Ident(part));
        match chars.next() {
            None => return Ok(parts),
            Some(('.', _)) => continue,
            Some((_, position)) => return Err(NameError::BadCharacter { position }),
        }
    }
}

/// Splits a comma-separated list of names (a `PGWAIT_TABLE` value); commas inside `"quoted"`
/// names do not split.
pub fn split_list(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                items.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(text[start..].trim());
    items
}

/// `--table` value → condition.
pub fn table(text: &str) -> Result<Condition, NameError> {
    let mut parts = parse_name(text)?;
    match parts.len() {
        1 => Ok(Condition::Table {
            schema: None,
            name: parts.remove(0),
        }),
        2 => {
            let name = parts.remove(1);
            Ok(Condition::Table {
                schema: Some(parts.remove(0)),
                name,
            })
        }
        _ => Err(NameError::TooManyParts),
    }
}

/// `--extension` value → condition.
pub fn extension(text: &str) -> Result<Condition, NameError> {
    let mut parts = parse_name(text)?;
    if parts.len() != 1 {
        return Err(NameError::TooManyParts);
    }
    Ok(Condition::Extension(parts.remove(0)))
}

/// `text` as a quoted identifier, `"a""b"`: exact, whatever it holds.
pub fn quote_ident(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A string literal that means `text` whatever `standard_conforming_strings` is.
pub fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
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
                literal(&schema.0),
                literal(&name.0)
            ),
            // Unqualified: as the role's search_path finds it.
            Self::Table { schema: None, name } => format!(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.relname = {} \
                 AND pg_catalog.pg_table_is_visible(c.oid))",
                literal(&name.0)
            ),
            Self::Extension(name) => format!(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = {})",
                literal(&name.0)
            ),
        }
    }

    /// How the condition is named in log lines, e.g. `table public.users`.
    pub fn label(&self) -> String {
        match self {
            Self::Query(_) => "--query".to_string(),
            Self::Table {
                schema: Some(s),
                name,
            } => format!("table {}.{}", s.0, name.0),
            Self::Table { schema: None, name } => format!("table {}", name.0),
            Self::Extension(name) => format!("extension {}", name.0),
            Self::Migrations(m) => m.label(),
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

    fn ident(s: &str) -> Ident {
        Ident(s.into())
    }

    #[test]
    fn names_follow_postgresql_identifier_rules() {
        let cases = [
            ("users", Ok(vec![ident("users")])),
            ("Users", Ok(vec![ident("users")])),
            ("app.Users", Ok(vec![ident("app"), ident("users")])),
            ("\"My Table\"", Ok(vec![ident("My Table")])),
            ("\"s\".\"a\"\"b\"", Ok(vec![ident("s"), ident("a\"b")])),
            ("t$1", Ok(vec![ident("t$1")])),
            ("", Err(NameError::Empty)),
            ("a.", Err(NameError::Empty)),
            ("1abc", Err(NameError::BadCharacter { position: 1 })),
            (
                "x; drop table y",
                Err(NameError::BadCharacter { position: 2 }),
            ),
            ("\"open", Err(NameError::UnterminatedQuote)),
            ("\"a\"b", Err(NameError::BadCharacter { position: 4 })),
        ];
        for (text, want) in cases {
            assert_eq!(parse_name(text), want, "{text}");
        }
        assert_eq!(table("a.b.c"), Err(NameError::TooManyParts));
        assert_eq!(extension("public.postgis"), Err(NameError::TooManyParts));
    }

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
    fn variable_lists_split_outside_quotes() {
        assert_eq!(split_list("a, b.c ,\"x,y\""), vec!["a", "b.c", "\"x,y\""]);
        assert_eq!(split_list(""), vec![""]);
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
