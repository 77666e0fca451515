//! The configuration boundary's error (exit 2): every way argv, the environment or a file the
//! user names can be wrong, each naming the flag or variable to fix. Its own module so that the
//! events that carry it need not import the assembler ([`crate::config`]).

use std::fmt;

use crate::conninfo::{ConnError, Origin};
use crate::dialect::DialectError;
use crate::migrations::SpecError;
use crate::sql::NameError;
use crate::token::command::SplitError;

/// A configuration error: always names the flag or variable to fix (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Conn(ConnError),
    /// A connection string its driver (`--driver`) would not connect with, and why.
    Dialect(DialectError),
    /// A value that doesn't parse; `value` holds it only when it is fit to show (see [`shown`]),
    /// so neither Display nor Debug can carry a password typed into the wrong place.
    Invalid {
        source: Origin,
        value: Option<String>,
        expected: &'static str,
    },
    NotUnicode {
        var: String,
    },
    Unreadable {
        source: Origin,
        path: String,
        detail: String,
    },
    EmptyCommand,
    /// A `--table` / `--extension` value that is not a name (the value is not quoted back).
    BadName {
        source: Origin,
        error: NameError,
    },
    /// A `--migrations` value with an unknown tool or a version that doesn't parse.
    BadMigrations {
        source: Origin,
        error: SpecError,
    },
    Conflict {
        first: Origin,
        second: Origin,
    },
    /// A `--password-command` that does not split into words (the text is not shown: it may
    /// hold a secret).
    BadCommand {
        source: Origin,
        error: SplitError,
    },
    /// `--iam aws` without a usable region: `what` says where to give one, or which setting
    /// holds something that is not a region name.
    Region {
        what: String,
    },
    /// A setting that only means something with another one.
    Requires {
        source: Origin,
        needs: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conn(e) => e.fmt(f),
            Self::Dialect(e) => write!(f, "cannot use the connection string in {e}"),
            Self::Invalid {
                source,
                value,
                expected,
            } => match value {
                Some(value) => write!(
                    f,
                    "invalid value \"{value}\" for {source}: expected {expected}"
                ),
                None => write!(f, "invalid value for {source}: expected {expected}"),
            },
            Self::NotUnicode { var } => write!(f, "environment variable {var} is not valid UTF-8"),
            Self::Unreadable {
                source,
                path,
                detail,
            } => write!(f, "cannot read \"{path}\" (from {source}): {detail}"),
            Self::EmptyCommand => write!(f, "\"--\" must be followed by the command to run"),
            Self::BadName { source, error } => write!(f, "invalid name in {source}: {error}"),
            Self::BadMigrations { source, error } => write!(f, "invalid {source}: {error}"),
            Self::Conflict { first, second } => {
                write!(f, "{first} and {second} cannot be used together")
            }
            Self::BadCommand { source, error } => {
                write!(f, "cannot run the command in {source}: {error}")
            }
            Self::Region { what } => {
                write!(
                    f,
                    "--iam aws needs the database's region, e.g. us-east-1: {what}"
                )
            }
            Self::Requires { source, needs } => write!(f, "{source} applies only with {needs}"),
        }
    }
}

/// A value fit to quote in an error: short, and made only of what durations, formats and class
/// lists use. Anything else (a URI typed into the wrong flag, say) may carry a password.
fn shown(value: &str) -> Option<&str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || ".,+-".contains(c);
    (value.len() <= 24 && value.chars().all(plain)).then_some(value)
}

impl ConfigError {
    /// An invalid value, kept only if it is fit to show.
    pub fn invalid(source: Origin, value: &str, expected: &'static str) -> Self {
        Self::Invalid {
            source,
            value: shown(value).map(String::from),
            expected,
        }
    }
}

impl From<DialectError> for ConfigError {
    fn from(e: DialectError) -> Self {
        Self::Dialect(e)
    }
}

impl From<ConnError> for ConfigError {
    fn from(e: ConnError) -> Self {
        Self::Conn(e)
    }
}
