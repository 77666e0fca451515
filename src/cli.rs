//! Command-line surface: one flag table ([`FLAGS`]) from which the `--help` text
//! ([`crate::help`]), parsing and the detection of the `--` that starts the command are all
//! derived, so a flag added to the table is right everywhere at once.
//!
//! Only [`crate::config`] turns the raw values into a typed `Config`; nothing else reads argv.
//! Values stay strings here so that config can name the flag in its own error messages and merge
//! them with `PGWAIT_*` variables in one place. Parsing uses lexopt rather than clap: the whole
//! surface is a dozen flags, and clap alone was ~200 KiB of a binary that must stay under 3 MiB.

use std::ffi::OsString;
use std::fmt;

use lexopt::prelude::*;

/// Which flag a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    Dbname,
    Host,
    Port,
    Username,
    Driver,
    PasswordFile,
    PasswordCommand,
    Iam,
    AwsRegion,
    Timeout,
    ConnectTimeout,
    RetryOn,
    Once,
    Diagnose,
    StatusInterval,
    Query,
    Table,
    Extension,
    Migrations,
    MigrationsTable,
    MaxLag,
    Stable,
    StableFor,
    Supervise,
    SignalGroup,
    ExitOk,
    LogFormat,
    Quiet,
    Verbose,
    Help,
    Version,
}

/// One command-line flag.
#[derive(Debug)]
pub struct Flag {
    pub id: Id,
    /// As shown and as named in errors: `-t, --timeout` or `--once`.
    pub names: &'static str,
    /// The value's placeholder; `None` for a switch.
    pub value: Option<&'static str>,
    /// The `PGWAIT_*` variable that sets the same thing (a flag wins over it).
    pub env: Option<&'static str>,
    pub help: &'static str,
}

impl Flag {
    /// The long name without dashes, e.g. `timeout`.
    pub fn long(&self) -> &'static str {
        let long = self.names.rsplit(", ").next().unwrap_or(self.names);
        long.trim_start_matches('-')
    }

    /// The one-letter name, if any.
    pub fn short(&self) -> Option<char> {
        let (short, _) = self.names.split_once(", ")?;
        short.strip_prefix('-')?.chars().next()
    }

    /// As named in error messages: `-t/--timeout`.
    pub fn display(&self) -> String {
        self.names.replace(", ", "/")
    }
}

const fn flag(
    id: Id,
    names: &'static str,
    value: Option<&'static str>,
    env: Option<&'static str>,
    help: &'static str,
) -> Flag {
    Flag {
        id,
        names,
        value,
        env,
        help,
    }
}

/// Every flag, in `--help` order.
#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    flag(Id::Dbname, "-d, --dbname", Some("DBNAME|URI|CONNINFO"), None,
        "Database name, postgres:// URI, or key=value conninfo string (as psql -d); repeat for several databases"),
    flag(Id::Host, "-h, --host", Some("HOST"), None,
        "Server host name, IP address or Unix-socket directory; comma-separated list allowed"),
    flag(Id::Port, "-p, --port", Some("PORT"), None,
        "Server port (or comma-separated list, one per host)"),
    flag(Id::Username, "-U, --username", Some("USER"), None, "Database user name"),
    flag(Id::Driver, "--driver", Some("NAME"), Some("PGWAIT_DRIVER"),
        "Read -d/DATABASE_URL as this driver does: libpq, jdbc, node-postgres, pgx, asyncpg, prisma, npgsql, rails"),
    flag(Id::PasswordFile, "--password-file", Some("PATH"), Some("PGWAIT_PASSWORD_FILE"),
        "Read the password from this file (a mounted secret); one trailing newline is removed"),
    flag(Id::PasswordCommand, "--password-command", Some("COMMAND"), Some("PGWAIT_PASSWORD_COMMAND"),
        "Run this program (no shell; quotes as in sh) before each attempt: its first line of output is the password"),
    flag(Id::Iam, "--iam", Some("CLOUD"), Some("PGWAIT_IAM"),
        "Log in with a token minted for each attempt: aws (RDS IAM), azure (Entra ID), gcp (Cloud SQL IAM)"),
    flag(Id::AwsRegion, "--aws-region", Some("REGION"), None,
        "With --iam aws: the database's region [default: AWS_REGION, AWS_DEFAULT_REGION]"),
    flag(Id::Timeout, "-t, --timeout", Some("DURATION"), Some("PGWAIT_TIMEOUT"),
        "Give up after this long, e.g. 30s, 2m; 0 waits forever [default: 60s]"),
    flag(Id::ConnectTimeout, "--connect-timeout", Some("DURATION"), Some("PGWAIT_CONNECT_TIMEOUT"),
        "Bound on each address of an attempt [default: connect_timeout, PGCONNECT_TIMEOUT, else 5s]"),
    flag(Id::RetryOn, "--retry-on", Some("CLASSES"), Some("PGWAIT_RETRY_ON"),
        "Also retry these normally permanent failures: auth, nodb, privileges (comma-separated)"),
    flag(Id::Diagnose, "--diagnose", None, None,
        "Run the connection checklist once for each database, report on stdout; exit 0 ready, 1 not ready, 3 rejected"),
    flag(Id::Once, "--once", None, Some("PGWAIT_ONCE"),
        "Make a single attempt (for healthchecks): exit 0 ready, 1 not ready, 3 rejected"),
    flag(Id::StatusInterval, "--status-interval", Some("DURATION"), Some("PGWAIT_STATUS_INTERVAL"),
        "How often to print \"still waiting\" [default: 10s]"),
    flag(Id::Query, "--query", Some("SQL"), Some("PGWAIT_QUERY"),
        "Ready only when this SQL returns a row whose first column is not NULL or false"),
    flag(Id::Table, "--table", Some("NAME"), Some("PGWAIT_TABLE"),
        "Ready only when this table exists (repeatable; SCHEMA.NAME; variable: comma list)"),
    flag(Id::Extension, "--extension", Some("NAME"), Some("PGWAIT_EXTENSION"),
        "Ready only when this extension is installed (repeatable; variable: comma list)"),
    flag(Id::Migrations, "--migrations", Some("TOOL[:VERSION]"), Some("PGWAIT_MIGRATIONS"),
        "Ready only when TOOL's history shows nothing failed or running (and VERSION applied); repeatable"),
    flag(Id::MigrationsTable, "--migrations-table", Some("NAME"), Some("PGWAIT_MIGRATIONS_TABLE"),
        "The history table, for a tool configured with a custom one"),
    flag(Id::MaxLag, "--max-lag", Some("SIZE|DURATION"), Some("PGWAIT_MAX_LAG"),
        "Ready only when a standby streams and is at most this far behind, e.g. 16MB, 5s (repeatable; variable: comma list)"),
    flag(Id::Stable, "--stable", Some("N"), Some("PGWAIT_STABLE"),
        "Ready only after N successful attempts in a row, 100-250 ms apart"),
    flag(Id::StableFor, "--stable-for", Some("DURATION"), Some("PGWAIT_STABLE_FOR"),
        "Ready only after successful attempts in a row spanning this long"),
    flag(Id::Supervise, "--supervise", None, Some("PGWAIT_SUPERVISE"),
        "Once ready, run COMMAND as a child and stay its init: forward signals, reap zombies"),
    flag(Id::SignalGroup, "--signal-group", None, Some("PGWAIT_SIGNAL_GROUP"),
        "With --supervise: forward signals to COMMAND's whole process group"),
    flag(Id::ExitOk, "--exit-ok", Some("CODES"), Some("PGWAIT_EXIT_OK"),
        "With --supervise: report these exit codes of COMMAND as 0 (comma-separated)"),
    flag(Id::LogFormat, "--log-format", Some("text|json"), Some("PGWAIT_LOG_FORMAT"),
        "Log lines on stderr as text, or as one JSON object per line [default: text]"),
    flag(Id::Quiet, "-q, --quiet", None, Some("PGWAIT_QUIET"),
        "Print only warnings and the final failure line"),
    flag(Id::Verbose, "-v, --verbose", None, Some("PGWAIT_VERBOSE"),
        "Print every attempt, address and delay"),
    flag(Id::Help, "--help", None, None, "Print help (-h is the host, as in psql)"),
    flag(Id::Version, "-V, --version", None, None, "Print version"),
];

/// Raw command-line options, exactly as typed, in order.
#[derive(Debug, Default)]
pub struct Opts {
    values: Vec<(Id, String)>,
    switches: Vec<Id>,
    /// Program and arguments to exec once PostgreSQL is ready (after `--`); any bytes.
    pub command: Vec<OsString>,
    /// Set when `--` was given (even with nothing after it).
    pub saw_separator: bool,
}

impl Opts {
    /// The value of the last occurrence of `id` (a later flag overrides an earlier one).
    pub fn value(&self, id: Id) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for the repeatable flag `id`, in order.
    pub fn values(&self, id: Id) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(move |(i, _)| *i == id)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the switch `id` was given.
    pub fn has(&self, id: Id) -> bool {
        self.switches.contains(&id)
    }
}

/// The flag with this id (every id has one row).
pub fn flag_of(id: Id) -> &'static Flag {
    FLAGS
        .iter()
        .find(|f| f.id == id)
        .expect("every Id has a row in FLAGS")
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
        let found = match &arg {
            Short(c) => FLAGS.iter().find(|f| f.short() == Some(*c)),
            Long(name) => FLAGS.iter().find(|f| f.long() == *name),
            Value(v) => {
                let v = v.to_string_lossy();
                return Err(UsageError(format!(
                    "unexpected argument '{v}': put the command after --"
                )));
            }
        };
        let Some(flag) = found else {
            return Err(UsageError(arg.unexpected().to_string()));
        };
        match (flag.id, flag.value) {
            (Id::Help, _) => return Ok(Parsed::Help),
            (Id::Version, _) => return Ok(Parsed::Version),
            (id, None) => opts.switches.push(id),
            (id, Some(_)) => {
                let value = parser
                    .value()
                    .map_err(|_| UsageError(format!("{} needs a value", flag.display())))?;
                let value = value
                    .into_string()
                    .map_err(|_| UsageError(format!("{}: invalid UTF-8", flag.display())))?;
                opts.values.push((id, value));
            }
        }
    }
    if opts.has(Id::Quiet) && opts.has(Id::Verbose) {
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
        i += if takes_separate_value(&arg) { 2 } else { 1 };
    }
    None
}

/// Whether `arg` is a valued flag whose value is the next argument (`-t 5s`, `--timeout 5s`, or
/// `-qt 5s`), rather than attached (`-t5s`, `--timeout=5s`).
fn takes_separate_value(arg: &str) -> bool {
    let valued = |f: &&Flag| f.value.is_some();
    if let Some(long) = arg.strip_prefix("--") {
        return !long.contains('=') && FLAGS.iter().filter(valued).any(|f| f.long() == long);
    }
    let Some(shorts) = arg.strip_prefix('-') else {
        return false;
    };
    // In a cluster of short flags, the first valued one takes the rest of the cluster if any.
    for (i, c) in shorts.char_indices() {
        if let Some(flag) = FLAGS.iter().find(|f| f.short() == Some(c)) {
            if flag.value.is_some() {
                return i + c.len_utf8() == shorts.len();
            }
        } else {
            return false;
        }
    }
    false
}

/// The value of the last `--NAME VALUE` / `--NAME=VALUE` before the command, read without full
/// parsing: lets pgwait report a usage error in the log format the user asked for.
pub fn peek_value(args: &[OsString], id: Id) -> Option<String> {
    let long = format!("--{}", flag_of(id).long());
    let own = &args[..separator(args).unwrap_or(args.len())];
    let mut found = None;
    for (i, arg) in own.iter().enumerate() {
        let arg = arg.to_string_lossy();
        if arg == long {
            found = own.get(i + 1).map(|v| v.to_string_lossy().into_owned());
        } else if let Some(value) = arg.strip_prefix(&format!("{long}=")) {
            found = Some(value.to_string());
        }
    }
    found
}

fn message(e: lexopt::Error) -> UsageError {
    UsageError(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_help_names_every_retryable_class() {
        let help = flag_of(Id::RetryOn).help;
        for (name, _) in crate::policy::RETRY_ON_NAMES {
            assert!(help.contains(name), "--retry-on help lacks {name}");
        }
    }

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_id_has_one_row_and_names_are_unique() {
        for flag in FLAGS {
            assert_eq!(FLAGS.iter().filter(|f| f.id == flag.id).count(), 1);
            assert_eq!(FLAGS.iter().filter(|f| f.long() == flag.long()).count(), 1);
            if let Some(short) = flag.short() {
                assert_eq!(FLAGS.iter().filter(|f| f.short() == Some(short)).count(), 1);
            }
        }
    }

    #[test]
    fn every_valued_flag_hides_a_following_separator() {
        for flag in FLAGS.iter().filter(|f| f.value.is_some()) {
            let long = format!("--{}", flag.long());
            let parsed = separator(&args(&[&long, "--", "--", "app"]));
            assert_eq!(parsed, Some(2), "{long}");
            if let Some(short) = flag.short() {
                let short = format!("-{short}");
                assert_eq!(
                    separator(&args(&[&short, "--", "--", "app"])),
                    Some(2),
                    "{short}"
                );
            }
        }
        for case in [
            &["--timeout=5s", "--", "app"][..],
            &["-t5s", "--", "app"],
            &["-q", "--", "app"],
        ] {
            assert_eq!(separator(&args(case)), Some(1), "{case:?}");
        }
        assert_eq!(separator(&args(&["-qt", "--", "--", "app"])), Some(2));
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        let Parsed::Run(opts) =
            parse(args(&["pgwait", "-t", "1s", "--timeout=2s", "--once"])).unwrap()
        else {
            panic!("not a run")
        };
        assert_eq!(opts.value(Id::Timeout), Some("2s"));
        assert!(opts.has(Id::Once) && !opts.has(Id::Quiet));
    }

    #[test]
    fn the_log_format_can_be_read_before_parsing() {
        let list = args(&["--bogus", "--log-format", "json", "--", "--log-format=text"]);
        assert_eq!(peek_value(&list, Id::LogFormat).as_deref(), Some("json"));
        let list = args(&["--log-format=json"]);
        assert_eq!(peek_value(&list, Id::LogFormat).as_deref(), Some("json"));
        assert_eq!(peek_value(&args(&["-q"]), Id::LogFormat), None);
    }
}
