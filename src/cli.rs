//! Command-line surface: the flags, the `--help` text, and parsing argv into raw [`Opts`].
//!
//! Only [`crate::config`] turns these raw values into a typed `Config`; nothing else reads argv.
//! Flags stay strings here so that config can name the flag in its own error messages and merge
//! them with `PGWAIT_*` variables in one place. Parsing uses lexopt rather than clap: the whole
//! surface is a dozen flags, and clap alone was ~200 KiB of a binary that must stay under 3 MiB.

use std::ffi::OsString;
use std::fmt;

use lexopt::prelude::*;

/// The `--help` text.
pub const HELP: &str = "\
Wait until PostgreSQL accepts an authenticated query, then exec COMMAND.

Usage: pgwait [OPTIONS] [-- COMMAND [ARGS]...]

Options:
  -d, --dbname <DBNAME|URI|CONNINFO>  Database name, postgres:// URI, or key=value conninfo string (as psql -d)
  -h, --host <HOST>                   Server host name, IP address or Unix-socket directory; comma-separated list allowed
  -p, --port <PORT>                   Server port (or comma-separated list, one per host)
  -U, --username <USER>               Database user name
      --password-file <PATH>          Read the password from this file (a mounted secret); one trailing newline is removed
                                      [env: PGWAIT_PASSWORD_FILE]
  -t, --timeout <DURATION>            Give up after this long, e.g. 30s, 2m; 0 waits forever [default: 60s] [env: PGWAIT_TIMEOUT]
      --connect-timeout <DURATION>    Bound on one connection attempt [default: connect_timeout, PGCONNECT_TIMEOUT, else 5s]
                                      [env: PGWAIT_CONNECT_TIMEOUT]
      --retry-on <CLASSES>            Also retry these normally permanent failures: auth, nodb (comma-separated)
                                      [env: PGWAIT_RETRY_ON]
      --once                          Make a single attempt (for healthchecks): exit 0 ready, 1 not ready, 3 rejected
                                      [env: PGWAIT_ONCE]
      --status-interval <DURATION>    How often to print \"still waiting\" [default: 10s] [env: PGWAIT_STATUS_INTERVAL]
  -q, --quiet                         Print only the final failure line [env: PGWAIT_QUIET]
  -v, --verbose                       Print every attempt, address and delay [env: PGWAIT_VERBOSE]
      --help                          Print help (-h is the host, as in psql)
  -V, --version                       Print version

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

On success with a COMMAND, pgwait execs it: the exit code is the command's own.\n";

/// Raw command-line options, exactly as typed.
#[derive(Debug, Default)]
pub struct Opts {
    pub dbname: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    pub password_file: Option<String>,
    pub timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub retry_on: Option<String>,
    pub once: bool,
    pub status_interval: Option<String>,
    pub quiet: bool,
    pub verbose: bool,
    /// Program and arguments to exec once PostgreSQL is ready (after `--`); any bytes.
    pub command: Vec<OsString>,
    /// Set when `--` was given (even with nothing after it).
    pub saw_separator: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Box<Opts>),
    Help,
    Version,
}

/// A command-line error, as one line for the user (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (see pgwait --help)", self.0)
    }
}

/// Flags that take a value: they matter when finding the `--` that starts the command.
const VALUED: &[&str] = &[
    "-d",
    "--dbname",
    "-h",
    "--host",
    "-p",
    "--port",
    "-U",
    "--username",
    "--password-file",
    "-t",
    "--timeout",
    "--connect-timeout",
    "--retry-on",
    "--status-interval",
];

/// Parses argv (including the program name).
pub fn parse<I, T>(args: I) -> Result<Parsed, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).skip(1).collect();
    let split = separator(&args);
    let (own, command) = match split {
        Some(i) => (&args[..i], args[i + 1..].to_vec()),
        None => (&args[..], Vec::new()),
    };
    let mut opts = Opts {
        command,
        saw_separator: split.is_some(),
        ..Opts::default()
    };
    let mut parser = lexopt::Parser::from_args(own.iter().cloned());
    while let Some(arg) = parser.next().map_err(message)? {
        let (slot, flag) = match arg {
            Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Long("once") => {
                opts.once = true;
                continue;
            }
            Short('q') | Long("quiet") => {
                opts.quiet = true;
                continue;
            }
            Short('v') | Long("verbose") => {
                opts.verbose = true;
                continue;
            }
            Short('d') | Long("dbname") => (&mut opts.dbname, "-d/--dbname"),
            Short('h') | Long("host") => (&mut opts.host, "-h/--host"),
            Short('p') | Long("port") => (&mut opts.port, "-p/--port"),
            Short('U') | Long("username") => (&mut opts.username, "-U/--username"),
            Long("password-file") => (&mut opts.password_file, "--password-file"),
            Short('t') | Long("timeout") => (&mut opts.timeout, "-t/--timeout"),
            Long("connect-timeout") => (&mut opts.connect_timeout, "--connect-timeout"),
            Long("retry-on") => (&mut opts.retry_on, "--retry-on"),
            Long("status-interval") => (&mut opts.status_interval, "--status-interval"),
            Value(v) => {
                let v = v.to_string_lossy();
                return Err(UsageError(format!(
                    "unexpected argument '{v}': put the command after --"
                )));
            }
            other => return Err(UsageError(other.unexpected().to_string())),
        };
        let value = parser
            .value()
            .map_err(|_| UsageError(format!("{flag} needs a value")))?;
        *slot = Some(
            value
                .into_string()
                .map_err(|_| UsageError(format!("{flag}: invalid UTF-8")))?,
        );
    }
    if opts.quiet && opts.verbose {
        return Err(UsageError(
            "--quiet and --verbose cannot be used together".into(),
        ));
    }
    Ok(Parsed::Run(Box::new(opts)))
}

/// Index of the `--` that starts the command: the first one that is not a flag's value.
fn separator(args: &[OsString]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            return Some(i);
        }
        i += if VALUED.contains(&arg.as_ref()) { 2 } else { 1 };
    }
    None
}

fn message(e: lexopt::Error) -> UsageError {
    UsageError(e.to_string())
}
