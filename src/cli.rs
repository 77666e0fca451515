//! Command-line surface: the clap definitions, whose doc comments are the `--help` text.
//!
//! Only [`crate::config`] turns these raw values into a typed `Config`; nothing else reads argv.
//! Flags stay strings here so that config can name the flag in its own error messages and merge
//! them with `PGWAIT_*` variables in one place (clap's `env` support cannot take an injected
//! environment, which the precedence tests need).

use std::ffi::OsString;

use clap::{ArgAction, Parser};

const AFTER_HELP: &str = "\
Connection (libpq-compatible, highest precedence first):
  -h/-p/-U flags, then the -d connection string, then PGHOST PGHOSTADDR PGPORT
  PGUSER PGPASSWORD PGDATABASE PGCONNECT_TIMEOUT PGAPPNAME PGOPTIONS PGSSLMODE,
  then DATABASE_URL (only when no -d/-h/-p/-U flag and none of PGHOST PGHOSTADDR
  PGPORT PGDATABASE PGUSER is set), then libpq's defaults.

  Also read: PGPASSFILE PGSERVICE PGSERVICEFILE PGSYSCONFDIR PGSSLROOTCERT PGSSLCERT
  PGSSLKEY PGSSLCRL PGSSLSNI PGSSLNEGOTIATION PGSSLCERTMODE PGSSLMINPROTOCOLVERSION
  PGSSLMAXPROTOCOLVERSION PGCHANNELBINDING PGTARGETSESSIONATTRS, ~/.pgpass and
  ~/.postgresql/{root.crt,postgresql.crt,postgresql.key} as libpq does.

pgwait settings may also come from PGWAIT_TIMEOUT, PGWAIT_CONNECT_TIMEOUT,
PGWAIT_RETRY_ON, PGWAIT_STATUS_INTERVAL, PGWAIT_ONCE, PGWAIT_QUIET, PGWAIT_VERBOSE,
PGWAIT_PASSWORD_FILE (a flag wins over its variable).

Exit codes:
  0    ready (no COMMAND given)
  1    not ready before the deadline (--timeout), or --once found it not ready
  2    usage or configuration error
  3    permanent rejection (authentication, missing database, not PostgreSQL, TLS
       failure or unusable certificate/key files, other SQLSTATE)
  126  COMMAND found but not executable
  127  COMMAND not found
  128+N  interrupted by signal N while waiting (SIGTERM: 143)

On success with a COMMAND, pgwait execs it: the exit code is the command's own.";

/// Raw command-line options, exactly as typed.
#[derive(Debug, Parser)]
#[command(
    name = "pgwait",
    version,
    about = "Wait until PostgreSQL accepts an authenticated query, then exec COMMAND.",
    override_usage = "pgwait [OPTIONS] [-- COMMAND [ARGS]...]",
    disable_help_flag = true,
    after_help = AFTER_HELP
)]
pub struct Opts {
    /// Database name, postgres:// URI, or key=value conninfo string (as psql -d)
    #[arg(short = 'd', long = "dbname", value_name = "DBNAME|URI|CONNINFO")]
    pub dbname: Option<String>,

    /// Server host name, IP address or Unix-socket directory; comma-separated list allowed
    #[arg(short = 'h', long = "host", value_name = "HOST")]
    pub host: Option<String>,

    /// Server port (or comma-separated list, one per host)
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        allow_hyphen_values = true
    )]
    pub port: Option<String>,

    /// Database user name
    #[arg(short = 'U', long = "username", value_name = "USER")]
    pub username: Option<String>,

    /// Read the password from this file (a mounted secret); one trailing newline is removed
    /// [env: PGWAIT_PASSWORD_FILE]
    #[arg(long = "password-file", value_name = "PATH")]
    pub password_file: Option<String>,

    /// Give up after this long, e.g. 30s, 2m; 0 waits forever [default: 60s] [env: PGWAIT_TIMEOUT]
    #[arg(
        short = 't',
        long = "timeout",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub timeout: Option<String>,

    /// Bound on one connection attempt [default: connect_timeout, PGCONNECT_TIMEOUT, else 5s]
    /// [env: PGWAIT_CONNECT_TIMEOUT]
    #[arg(
        long = "connect-timeout",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub connect_timeout: Option<String>,

    /// Also retry these normally permanent failures: auth, nodb (comma-separated)
    /// [env: PGWAIT_RETRY_ON]
    #[arg(long = "retry-on", value_name = "CLASSES")]
    pub retry_on: Option<String>,

    /// Make a single attempt (for healthchecks): exit 0 ready, 1 not ready, 3 rejected
    /// [env: PGWAIT_ONCE]
    #[arg(long = "once", action = ArgAction::SetTrue)]
    pub once: bool,

    /// How often to print "still waiting" [default: 10s] [env: PGWAIT_STATUS_INTERVAL]
    #[arg(long = "status-interval", value_name = "DURATION")]
    pub status_interval: Option<String>,

    /// Print only the final failure line [env: PGWAIT_QUIET]
    #[arg(short = 'q', long = "quiet", action = ArgAction::SetTrue, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print every attempt, address and delay [env: PGWAIT_VERBOSE]
    #[arg(short = 'v', long = "verbose", action = ArgAction::SetTrue)]
    pub verbose: bool,

    /// Print help
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Program to exec once PostgreSQL is ready, with its arguments (after --)
    #[arg(last = true, value_name = "COMMAND", value_parser = clap::value_parser!(OsString))]
    pub command: Vec<OsString>,

    /// Set when `--` was given (even with nothing after it); filled in by [`parse`].
    #[arg(skip)]
    pub saw_separator: bool,
}

/// Parses argv; clap's own error (help, version, usage) is returned for the caller to print.
pub fn parse<I, T>(args: I) -> Result<Opts, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut opts = Opts::try_parse_from(&args)?;
    opts.saw_separator = args.iter().skip(1).any(|a| a == "--");
    Ok(opts)
}
