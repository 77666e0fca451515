//! SQL text as a leaf: identifiers parsed with PostgreSQL's rules ([`Ident`], [`parse_name`]) and
//! the two ways a value reaches a statement, as an identifier ([`quote_ident`]) or as a string
//! literal ([`literal`]). The conditions and the migration detectors both build their SQL from
//! these, so there is one quoting to review (postgres-protocol keeps its `escape` module the same
//! way). Imports nothing of the crate.

use std::fmt;

/// One identifier, as PostgreSQL reads it: unquoted folds to lower case, `"quoted"` is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    /// An identifier with exactly this text, as if written in double quotes.
    pub fn exact(text: &str) -> Self {
        Self(text.to_string())
    }

    /// The identifier's text.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The identifier as a quoted SQL identifier, exact whatever it holds.
    pub fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    /// The identifier's text as a string literal (for comparisons against the catalogs).
    pub fn literal(&self) -> String {
        literal(&self.0)
    }
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

/// `text` as a quoted identifier, `"a""b"`: exact, whatever it holds.
pub fn quote_ident(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A string literal that means `text` whatever `standard_conforming_strings` is.
pub fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Parses `NAME` or `SCHEMA.NAME` (a table, a history table).
pub fn qualified_name(text: &str) -> Result<(Option<Ident>, Ident), NameError> {
    let mut parts = parse_name(text)?;
    match parts.len() {
        1 => Ok((None, parts.remove(0))),
        2 => {
            let name = parts.remove(1);
            Ok((Some(parts.remove(0)), name))
        }
        _ => Err(NameError::TooManyParts),
    }
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
        assert_eq!(qualified_name("a.b.c"), Err(NameError::TooManyParts));
        assert_eq!(qualified_name("s.t"), Ok((Some(ident("s")), ident("t"))));
    }

    #[test]
    fn quoting_is_exact_whatever_the_text_holds() {
        let table = [
            ("plain", "\"plain\"", "E'plain'"),
            ("a\"b", "\"a\"\"b\"", "E'a\"b'"),
            (
                "x'); drop table y; --",
                "\"x'); drop table y; --\"",
                "E'x''); drop table y; --'",
            ),
            ("a\\'b", "\"a\\'b\"", "E'a\\\\''b'"),
        ];
        for (text, ident, lit) in table {
            assert_eq!(quote_ident(text), ident, "{text}");
            assert_eq!(literal(text), lit, "{text}");
            assert_eq!(Ident::exact(text).quoted(), ident);
        }
    }

    #[test]
    fn variable_lists_split_outside_quotes() {
        assert_eq!(split_list("a, b.c ,\"x,y\""), vec!["a", "b.c", "\"x,y\""]);
        assert_eq!(split_list(""), vec![""]);
    }
}
