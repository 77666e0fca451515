//! `--help`, assembled from the tables that own each part: the options from the flag table
//! ([`crate::cli::FLAGS`]), the libpq variables from the keyword table
//! ([`crate::conninfo::ENV_KEYWORDS`]), the exit codes from [`crate::exit::MEANINGS`]. Nothing
//! is copied by hand, so nothing drifts; a test also holds docs/configuration.md's option
//! table to the flag table.

use std::fmt::Write as _;

use crate::cli::{Flag, FLAGS};
use crate::conninfo::ENV_KEYWORDS;
use crate::exit::MEANINGS;

/// Where help text wraps.
const WIDTH: usize = 80;

/// The `--help` text.
pub fn help() -> String {
    let mut text = String::from(
        "Wait until PostgreSQL accepts an authenticated query, then exec COMMAND.\n\n\
         Usage: pgwait [OPTIONS] [-- COMMAND [ARGS]...]\n\nOptions:\n",
    );
    options(&mut text);
    text.push_str(
        "\nConnection (read as libpq 18 reads it; highest precedence first):\n\
         \x20 the -d connection string (as psql -d: it wins over -h/-p/-U), then the\n\
         \x20 -h/-p/-U flags, then a service file, then the PG* variables, then\n\
         \x20 DATABASE_URL (only when no -d/-h/-p/-U flag and none of PGHOST PGHOSTADDR\n\
         \x20 PGPORT PGDATABASE PGUSER is set), then libpq's defaults. An empty value\n\
         \x20 means the default, as in libpq.\n\n\
         Variables read as libpq reads them:\n",
    );
    let mut vars: Vec<&str> = ENV_KEYWORDS.iter().map(|(var, _)| *var).collect();
    vars.extend(["PGSYSCONFDIR", "PGREQUIRESSL"]);
    wrapped(&mut text, &vars, "  ");
    text.push_str(
        "  and ~/.pgpass, ~/.pg_service.conf, ~/.postgresql/{root.crt,postgresql.crt,\n\
         \x20 postgresql.key}.\n\nExit codes:\n",
    );
    exit_codes(&mut text);
    text.push_str(
        "\nOn success with a COMMAND, pgwait execs it: the exit code is the command's own.\n",
    );
    text
}

/// The option lines: flag, placeholder, help, and the variable under it.
fn options(text: &mut String) {
    let lefts: Vec<String> = FLAGS.iter().map(help_left).collect();
    // The help column starts two spaces after the longest flag.
    let column = lefts.iter().map(String::len).max().unwrap_or(0) + 2;
    for (flag, left) in FLAGS.iter().zip(&lefts) {
        let _ = writeln!(text, "{left:<column$}{}", flag.help);
        if let Some(var) = flag.env {
            let _ = writeln!(text, "{:column$}[env: {var}]", "");
        }
    }
}

/// `  -t, --timeout <DURATION>`: a flag as `--help` lists it.
fn help_left(flag: &Flag) -> String {
    let indent = if flag.short().is_some() {
        "  "
    } else {
        "      "
    };
    let mut left = format!("{indent}{}", flag.names);
    if let Some(value) = flag.value {
        let _ = write!(left, " <{value}>");
    }
    left
}

/// `  0    ready …`, meanings wrapped under their own column.
fn exit_codes(text: &mut String) {
    for (code, meaning) in MEANINGS {
        let words: Vec<&str> = meaning.split(' ').collect();
        let mut lines = String::new();
        wrapped(&mut lines, &words, "       ");
        let _ = write!(text, "  {code:<4} {}", lines.trim_start());
    }
}

/// `words` separated by spaces, each line starting with `indent`, wrapped at [`WIDTH`].
fn wrapped(text: &mut String, words: &[&str], indent: &str) {
    let mut line = String::from(indent);
    for word in words {
        if line.len() > indent.len() && line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(text, "{}", line.trim_end());
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(text, "{}", line.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_flag_and_its_variable() {
        let text = help();
        for flag in FLAGS {
            assert!(text.contains(flag.names), "{}", flag.names);
            let line = text.lines().find(|l| l.contains(flag.names)).unwrap();
            assert!(line.ends_with(&format!("  {}", flag.help)), "{line}");
            if let Some(var) = flag.env {
                assert!(text.contains(&format!("[env: {var}]")), "{var}");
            }
        }
    }

    #[test]
    fn help_lists_every_libpq_variable_and_exit_code_within_80_columns() {
        let text = help();
        for (var, _) in ENV_KEYWORDS {
            assert!(text.contains(var), "{var} missing from --help");
        }
        for (code, _) in MEANINGS {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("  {code} "))),
                "exit code {code} missing from --help"
            );
        }
        let tail = &text[text.find("\nConnection").unwrap()..];
        for line in tail.lines() {
            assert!(line.len() <= WIDTH, "too long: {line}");
        }
    }

    /// The `flag | variable | …` rows of docs/configuration.md's option table.
    fn documented_options() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("| flag | variable |").expect("the option table");
        text[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|row| {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                (
                    cells[1].trim_matches('`').to_string(),
                    cells[2].trim_matches('`').to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_documented_option_table_is_the_flag_table() {
        let documented = documented_options();
        let rows: Vec<(String, String)> = FLAGS
            .iter()
            .filter(|f| !matches!(f.id, crate::cli::Id::Help | crate::cli::Id::Version))
            .map(|f| (f.names.to_string(), f.env.unwrap_or("").to_string()))
            .collect();
        assert_eq!(
            documented[..rows.len().min(documented.len())],
            rows[..],
            "docs/configuration.md's option table and cli::FLAGS differ"
        );
        assert_eq!(
            documented.len(),
            rows.len() + 1,
            "plus one row for --help/-V"
        );
    }
}
