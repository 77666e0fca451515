//! Command-line options and the environment → one typed [`Config`]. The only module that reads
//! the process environment; everything after it takes typed values.
//!
//! Precedence, highest first: flags, `PGWAIT_*` variables (pgwait's own settings), the `-d`
//! connection string, `PG*` variables, `DATABASE_URL` (only when nothing else names a
//! connection), libpq defaults.

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

use crate::cli::Opts;
use crate::conninfo::{self, ConnError, ConnParams, Defaults, Origin, Settings};
use crate::policy::RetryOn;
use crate::report::Verbosity;

mod defaults;
mod files;

pub use defaults::detect_defaults;
use files::{apply_password_file, apply_service_file};

/// Per-attempt bound when neither flag, variable nor `connect_timeout` sets one.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Overall deadline by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often "still waiting" is printed by default.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);

/// Variables that name a connection; any of them (or a connection flag) disables `DATABASE_URL`.
const CONNECTION_VARS: [&str; 5] = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER"];

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub conn: ConnParams,
    /// Overall deadline; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    pub retry_on: RetryOn,
    pub once: bool,
    /// `None`: never print "still waiting".
    pub status_interval: Option<Duration>,
    pub verbosity: Verbosity,
    /// Program and arguments to exec when ready; empty: just exit 0.
    pub command: Vec<OsString>,
}

/// A configuration error: always names the flag or variable to fix (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Conn(ConnError),
    Invalid {
        source: String,
        value: String,
        expected: &'static str,
    },
    NotUnicode {
        var: String,
    },
    Unreadable {
        source: String,
        path: String,
        detail: String,
    },
    EmptyCommand,
    Conflict {
        first: String,
        second: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conn(e) => e.fmt(f),
            Self::Invalid {
                source,
                value,
                expected,
            } => {
                write!(
                    f,
                    "invalid value \"{value}\" for {source}: expected {expected}"
                )
            }
            Self::NotUnicode { var } => write!(f, "environment variable {var} is not valid UTF-8"),
            Self::Unreadable {
                source,
                path,
                detail,
            } => write!(f, "cannot read \"{path}\" (from {source}): {detail}"),
            Self::EmptyCommand => write!(f, "\"--\" must be followed by the command to run"),
            Self::Conflict { first, second } => {
                write!(f, "{first} and {second} cannot be used together")
            }
        }
    }
}

impl From<ConnError> for ConfigError {
    fn from(e: ConnError) -> Self {
        Self::Conn(e)
    }
}

/// Read access to environment variables, injectable for tests.
pub trait Environment {
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl<S: std::hash::BuildHasher> Environment for std::collections::HashMap<&str, &str, S> {
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(OsString::from)
    }
}

/// Builds the configuration from parsed options, the environment and system facts.
pub fn build(
    opts: Opts,
    env: &dyn Environment,
    defaults: &Defaults,
) -> Result<Config, ConfigError> {
    if opts.saw_separator && opts.command.is_empty() {
        return Err(ConfigError::EmptyCommand);
    }
    let mut settings = connection_settings(&opts, env)?;
    apply_service_file(&mut settings, env, defaults)?;
    apply_password_file(&mut settings, &opts, env)?;
    let conn = settings.resolve(defaults)?;
    let attempt_timeout = match setting(
        &opts.connect_timeout,
        "--connect-timeout",
        "PGWAIT_CONNECT_TIMEOUT",
        env,
    )? {
        Some((value, source)) => positive(parse_duration(&value, &source)?, value, source)?,
        None => conn.connect_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
    };
    let timeout = match setting(&opts.timeout, "-t/--timeout", "PGWAIT_TIMEOUT", env)? {
        Some((value, source)) => parse_duration(&value, &source)?,
        None => DEFAULT_TIMEOUT,
    };
    let status_interval = match setting(
        &opts.status_interval,
        "--status-interval",
        "PGWAIT_STATUS_INTERVAL",
        env,
    )? {
        Some((value, source)) => parse_duration(&value, &source)?,
        None => DEFAULT_STATUS_INTERVAL,
    };
    let retry_on = match setting(&opts.retry_on, "--retry-on", "PGWAIT_RETRY_ON", env)? {
        Some((value, source)) => parse_retry_on(&value, source)?,
        None => RetryOn::default(),
    };
    Ok(Config {
        conn,
        timeout: (!timeout.is_zero()).then_some(timeout),
        attempt_timeout,
        retry_on,
        once: opts.once || env_flag(env, "PGWAIT_ONCE")?,
        status_interval: (!status_interval.is_zero()).then_some(status_interval),
        verbosity: verbosity(&opts, env)?,
        command: opts.command,
    })
}

/// Layers the connection settings, lowest precedence first.
fn connection_settings(opts: &Opts, env: &dyn Environment) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    for (var, keyword) in conninfo::ENV_KEYWORDS {
        if let Some(value) = env_string(env, var)? {
            settings.set(keyword, value, Origin::Env(var))?;
        }
    }
    let flags_name_connection =
        opts.host.is_some() || opts.port.is_some() || opts.username.is_some();
    let vars_name_connection = CONNECTION_VARS.iter().any(|v| env.var_os(v).is_some());
    if opts.dbname.is_none() && !flags_name_connection && !vars_name_connection {
        if let Some(url) = env_string(env, "DATABASE_URL")? {
            let origin = Origin::Env("DATABASE_URL");
            settings.set_all(conninfo::parse_connection_string(&url, origin)?, origin)?;
        }
    }
    if let Some(dbname) = &opts.dbname {
        settings.set_all(
            conninfo::parse_connection_string(dbname, Origin::DbnameArg)?,
            Origin::DbnameArg,
        )?;
    }
    let flags = [
        (&opts.host, "host", "-h/--host"),
        (&opts.port, "port", "-p/--port"),
        (&opts.username, "user", "-U/--username"),
    ];
    for (value, keyword, flag) in flags {
        if let Some(value) = value {
            settings.set(keyword, value.clone(), Origin::Flag(flag))?;
        }
    }
    Ok(settings)
}

/// A pgwait setting from its flag, else its variable, with the name of where it came from.
fn setting(
    flag: &Option<String>,
    flag_name: &str,
    var: &str,
    env: &dyn Environment,
) -> Result<Option<(String, String)>, ConfigError> {
    if let Some(value) = flag {
        return Ok(Some((value.clone(), flag_name.to_string())));
    }
    Ok(env_string(env, var)?.map(|v| (v, var.to_string())))
}

fn env_string(env: &dyn Environment, var: &str) -> Result<Option<String>, ConfigError> {
    env.var_os(var)
        .map(|v| {
            v.into_string().map_err(|_| ConfigError::NotUnicode {
                var: var.to_string(),
            })
        })
        .transpose()
}

fn env_flag(env: &dyn Environment, var: &str) -> Result<bool, ConfigError> {
    let Some(value) = env_string(env, var)? else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        _ => Err(ConfigError::Invalid {
            source: var.to_string(),
            value,
            expected: "1/0, true/false, yes/no or on/off",
        }),
    }
}

fn verbosity(opts: &Opts, env: &dyn Environment) -> Result<Verbosity, ConfigError> {
    if opts.quiet || opts.verbose {
        return Ok(if opts.quiet {
            Verbosity::Quiet
        } else {
            Verbosity::Verbose
        });
    }
    match (
        env_flag(env, "PGWAIT_QUIET")?,
        env_flag(env, "PGWAIT_VERBOSE")?,
    ) {
        (true, true) => Err(ConfigError::Conflict {
            first: "PGWAIT_QUIET".into(),
            second: "PGWAIT_VERBOSE".into(),
        }),
        (true, false) => Ok(Verbosity::Quiet),
        (false, true) => Ok(Verbosity::Verbose),
        (false, false) => Ok(Verbosity::Normal),
    }
}

/// A humantime duration (`500ms`, `30s`, `1m 30s`), or a bare number of seconds.
fn parse_duration(value: &str, source: &str) -> Result<Duration, ConfigError> {
    let trimmed = value.trim();
    let parsed = match trimmed.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(trimmed),
    };
    parsed.map_err(|_| ConfigError::Invalid {
        source: source.to_string(),
        value: value.to_string(),
        expected: "a duration such as 500ms, 30s or 2m (0 or more)",
    })
}

fn positive(d: Duration, value: String, source: String) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::Invalid {
            source,
            value,
            expected: "a duration greater than zero",
        });
    }
    Ok(d)
}

fn parse_retry_on(value: &str, source: String) -> Result<RetryOn, ConfigError> {
    let mut retry_on = RetryOn::default();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item {
            "auth" => retry_on.auth = true,
            "nodb" => retry_on.nodb = true,
            _ => {
                return Err(ConfigError::Invalid {
                    source,
                    value: value.to_string(),
                    expected: "a comma-separated list of auth, nodb",
                })
            }
        }
    }
    Ok(retry_on)
}

#[cfg(test)]
mod tests;
