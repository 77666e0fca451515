//! Command-line options and the environment → one typed [`Config`]. The only module that reads
//! the process environment; everything after it takes typed values.
//!
//! Precedence, highest first: for pgwait's own settings, flags then `PGWAIT_*` variables; for
//! the connection, as psql: the `-d` connection string, then `-h/-p/-U`, a service file, `PG*`
//! variables, `DATABASE_URL` (only when nothing else names a connection), libpq defaults.

use std::ffi::OsString;
use std::time::Duration;

use crate::classify::{Cloud, TokenProblem};
use crate::cli::{flag_of, Id, Opts};
use crate::condition::{self, Condition};
pub use crate::config_error::ConfigError;
use crate::conninfo::{self, ConnParams, Defaults, Origin, RootCert, Settings, SslMode};
use crate::diagnose;
use crate::dialect::{self, Chosen, Driver, EnvUse, Roots, Verify};
use crate::exec::Command;
use crate::migrations::{self, HistoryTable};
use crate::policy::{RetryOn, Stable};
use crate::report::{LogFormat, LogSettings, Verbosity};
use crate::sql::{self, NameError};
use crate::supervise;
use crate::token::{self, Method, PasswordCommand};
use crate::wait::WaitSettings;

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
/// A duration this long (a century) or longer means "forever": clock arithmetic on anything
/// longer could overflow, and no wait outlives it anyway.
pub const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What `--driver` takes, for its error message.
const DRIVER_NAMES: &str = "libpq, jdbc, node-postgres, pgx, asyncpg, prisma, npgsql or rails";

/// Variables that name a connection; any of them (or a connection flag) disables `DATABASE_URL`.
const CONNECTION_VARS: [&str; 5] = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER"];

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The databases to wait for, each with its own connection settings (never empty).
    pub targets: Vec<Target>,
    /// Deadline, per-attempt bound, `--once`, `--retry-on`, status interval.
    pub wait: WaitSettings,
    /// How much pgwait says, and in which format.
    pub log: LogSettings,
    /// What to exec once ready; `None`: exit 0.
    pub command: Option<Command>,
    /// What must hold besides "accepts a query", checked on every target.
    pub conditions: Vec<Condition>,
    /// `--supervise`: run the command as a child instead of exec.
    pub supervise: Option<supervise::Options>,
    /// `--iam` / `--password-command`: each attempt's password is made, not configured.
    pub token: Option<token::Settings>,
    /// `--diagnose`: one pass through the checklist instead of a wait.
    pub diagnose: Option<diagnose::Settings>,
}

/// One database to wait for.
#[derive(Debug, Clone)]
pub struct Target {
    pub conn: ConnParams,
    /// Each address's limit: `--connect-timeout`, else this target's `connect_timeout`, else
    /// the default.
    pub attempt_timeout: Duration,
    /// The driver whose dialect the connection string was read in, and why (`-v` says so).
    pub dialect: Dialect,
    /// `--iam` raised an sslmode that allows plain text to `require`: the mode it replaced.
    pub tls_raised: Option<&'static str>,
    /// Where the main settings came from (`--diagnose` reports it).
    pub origins: diagnose::Origins,
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
    // Each -d is a target; without one, the flags and variables make the only one.
    // An empty -d is no -d, as psql passes it to libpq (PQconnectdbParams skips empty values).
    let given = opts.values(Id::Dbname).filter(|d| !d.is_empty());
    let dbnames: Vec<Option<&str>> = match given.collect::<Vec<_>>() {
        given if given.is_empty() => vec![None],
        given => given.into_iter().map(Some).collect(),
    };
    let token = token_settings(&opts, env)?;
    let targets = dbnames
        .into_iter()
        .map(|dbname| build_target(&opts, env, defaults, dbname, token.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let wait = wait_settings(&opts, env)?;
    Ok(Config {
        targets,
        wait,
        log: LogSettings {
            verbosity: verbosity(&opts, env)?,
            format: log_format(&opts, env)?,
        },
        conditions: conditions(&opts, env)?,
        supervise: supervise_options(&opts, env)?,
        diagnose: diagnose_settings(&opts, env)?,
        command: Command::from_argv(opts.command),
        token: token.map(|(settings, _)| settings),
    })
}

/// `--diagnose`, and what it needs to know about where it runs. It replaces the wait, so a
/// command to exec after it is a usage error.
fn diagnose_settings(
    opts: &Opts,
    env: &dyn Environment,
) -> Result<Option<diagnose::Settings>, ConfigError> {
    if !opts.has(Id::Diagnose) {
        return Ok(None);
    }
    if !opts.command.is_empty() {
        return Err(ConfigError::Requires {
            source: Origin::Flag(flag_of(Id::Diagnose).names),
            needs: "no command (it reports and exits)",
        });
    }
    let container = ["/.dockerenv", "/run/.containerenv"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    let kubernetes = env.var_os("KUBERNETES_SERVICE_HOST").is_some();
    Ok(Some(diagnose::Settings {
        in_container: container || kubernetes,
        in_kubernetes: kubernetes,
    }))
}

/// The keywords `--diagnose` shows with their origin; `None`: libpq's default.
const SHOWN_ORIGINS: [&str; 7] = [
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "sslmode",
    "target_session_attrs",
];

/// Where each shown setting came from; the password's origin is the token source's, or the
/// layer that set it (`--password-file` sets it too), `None` when none did (then `.pgpass`).
fn origins(settings: &Settings, token: Option<&(token::Settings, Origin)>) -> diagnose::Origins {
    let of = SHOWN_ORIGINS
        .iter()
        .map(|k| (*k, settings.get(k).map(|(_, origin)| origin)))
        .collect();
    let password = match token {
        Some((_, origin)) => Some(*origin),
        None => settings
            .get("password")
            .filter(|(p, _)| !p.is_empty())
            .map(|(_, origin)| origin),
    };
    diagnose::Origins { of, password }
}

/// `--iam` or `--password-command` (not both), with the variables their sources read.
fn token_settings(
    opts: &Opts,
    env: &dyn Environment,
) -> Result<Option<(token::Settings, Origin)>, ConfigError> {
    let iam = setting(opts, Id::Iam, env)?;
    let command = setting(opts, Id::PasswordCommand, env)?;
    let region_flag = opts.value(Id::AwsRegion);
    let variables = token::Env::read(|name| env_string(env, name).ok().flatten());
    let (method, origin) = match (iam, command) {
        (Some((_, first)), Some((_, second))) => {
            return Err(ConfigError::Conflict { first, second })
        }
        (Some((value, source)), None) => {
            let cloud = match value.trim().to_ascii_lowercase().as_str() {
                "aws" => Cloud::Aws,
                "azure" => Cloud::Azure,
                "gcp" => Cloud::Gcp,
                _ => return Err(ConfigError::invalid(source, &value, "aws, azure or gcp")),
            };
            let region = match cloud {
                Cloud::Aws => Some(
                    // aws::region's only failure is a missing or malformed region.
                    token::aws::region(region_flag, &variables).map_err(|e| match e.problem {
                        TokenProblem::Missing { what } => ConfigError::Region { what },
                        _ => ConfigError::Region {
                            what: "--aws-region".into(),
                        },
                    })?,
                ),
                _ => None,
            };
            (Some(Method::Iam { cloud, region }), source)
        }
        (None, Some((value, source))) => match PasswordCommand::parse(&value) {
            Ok(command) => (Some(Method::Command(command)), source),
            Err(error) => return Err(ConfigError::BadCommand { source, error }),
        },
        (None, None) => (None, Origin::DbnameArg),
    };
    let aws = matches!(
        method,
        Some(Method::Iam {
            cloud: Cloud::Aws,
            ..
        })
    );
    if region_flag.is_some() && !aws {
        return Err(ConfigError::Requires {
            source: Origin::Flag(flag_of(Id::AwsRegion).names),
            needs: "--iam aws",
        });
    }
    let Some(method) = method else {
        return Ok(None);
    };
    Ok(Some((
        token::Settings {
            method,
            env: variables,
        },
        origin,
    )))
}

/// With a token source, the password must come from it alone: a configured one too would
/// leave the user guessing which was used. `--iam` also wants TLS: returns the sslmode it
/// raised to `require`, if any.
fn apply_token(
    conn: &mut ConnParams,
    settings: &Settings,
    token: Option<&(token::Settings, Origin)>,
) -> Result<Option<&'static str>, ConfigError> {
    let Some((token, origin)) = token else {
        return Ok(None);
    };
    if let Some((password, second)) = settings.get("password") {
        if !password.is_empty() {
            return Err(ConfigError::Conflict {
                first: *origin,
                second,
            });
        }
    }
    // The minted password is the only one: .pgpass is not read (nor warned about).
    conn.passfile = None;
    if !matches!(token.method, Method::Iam { .. }) {
        return Ok(None);
    }
    let plain_allowed = matches!(
        conn.tls.mode,
        SslMode::Disable | SslMode::Allow | SslMode::Prefer
    );
    Ok(plain_allowed.then(|| {
        let was = conn.tls.mode.name();
        conn.tls.mode = SslMode::Require;
        was
    }))
}

/// One target's connection settings, layered and resolved.
fn build_target(
    opts: &Opts,
    env: &dyn Environment,
    defaults: &Defaults,
    dbname: Option<&str>,
    token: Option<&(token::Settings, Origin)>,
) -> Result<Target, ConfigError> {
    let (mut settings, dialect) = connection_settings(opts, env, dbname)?;
    apply_service_file(&mut settings, env, defaults)?;
    let password_file = apply_password_file(&mut settings, opts, env)?;
    let mut conn = settings.resolve(defaults)?;
    apply_behaviour(&mut conn, dialect);
    let tls_raised = apply_token(&mut conn, &settings, token)?;
    let origins = origins(&settings, token);
    conn.password_file = password_file;
    let attempt_timeout = attempt_timeout(opts, env, &conn)?;
    Ok(Target {
        conn,
        attempt_timeout,
        dialect,
        tls_raised,
        origins,
    })
}

fn attempt_timeout(
    opts: &Opts,
    env: &dyn Environment,
    conn: &ConnParams,
) -> Result<Duration, ConfigError> {
    Ok(match setting(opts, Id::ConnectTimeout, env)? {
        Some((value, source)) => positive(parse_duration(&value, source)?, value, source)?,
        None => conn.connect_timeout.unwrap_or(DEFAULT_ATTEMPT_TIMEOUT),
    }
    .min(FOREVER))
}

fn wait_settings(opts: &Opts, env: &dyn Environment) -> Result<WaitSettings, ConfigError> {
    let timeout = match setting(opts, Id::Timeout, env)? {
        Some((value, source)) => parse_duration(&value, source)?,
        None => DEFAULT_TIMEOUT,
    };
    let status_interval = match setting(opts, Id::StatusInterval, env)? {
        Some((value, source)) => parse_duration(&value, source)?,
        None => DEFAULT_STATUS_INTERVAL,
    };
    let retry_on = match setting(opts, Id::RetryOn, env)? {
        Some((value, source)) => parse_retry_on(&value, source)?,
        None => RetryOn::default(),
    };
    let stable = Stable {
        count: match setting(opts, Id::Stable, env)? {
            Some((value, source)) => parse_count(&value, source)?,
            None => 1,
        },
        span: match setting(opts, Id::StableFor, env)? {
            Some((value, source)) => parse_duration(&value, source)?.min(FOREVER),
            None => Duration::ZERO,
        },
    };
    Ok(WaitSettings {
        stable,
        timeout: finite(timeout),
        retry_on,
        once: switch(opts, Id::Once, env)?,
        status_interval: finite(status_interval),
        seed: None,
    })
}

/// The app's driver, when its dialect is not libpq's: named (`--driver`) or recognised.
pub type Dialect = Option<(Driver, Chosen)>;

/// Layers the connection settings, lowest precedence first, reading the connection string in
/// its driver's dialect; returns the dialect used.
fn connection_settings(
    opts: &Opts,
    env: &dyn Environment,
    dbname: Option<&str>,
) -> Result<(Settings, Dialect), ConfigError> {
    let flags_name_connection = [Id::Host, Id::Port, Id::Username]
        .iter()
        .any(|id| connection_flag(opts, *id).is_some());
    let asked = match setting(opts, Id::Driver, env)? {
        Some((name, source)) => match Driver::parse(&name) {
            Some(driver) => Some(driver),
            None => return Err(ConfigError::invalid(source, &name, DRIVER_NAMES)),
        },
        None => None,
    };
    // DATABASE_URL is the app's: a PG* variable hides it only for a driver that reads that
    // variable (libpq's rule), not for one that never does (pgjdbc, Prisma, Npgsql, ...).
    let candidate = env_string(env, "DATABASE_URL")?;
    let url_driver = asked.or_else(|| {
        candidate
            .as_deref()
            .and_then(dialect::recognise)
            .map(|(d, _)| d)
    });
    let reads = |var: &str| match url_driver.map_or(EnvUse::Libpq, |d| dialect::behaviour(d).env) {
        EnvUse::Libpq => true,
        EnvUse::Only(vars) => vars.contains(&var),
    };
    let vars_name_connection = CONNECTION_VARS
        .iter()
        .any(|v| reads(v) && env.var_os(v).is_some());
    let url = match (dbname, flags_name_connection || vars_name_connection) {
        (None, false) => candidate,
        _ => None,
    };
    let string = match (dbname, &url) {
        (Some(d), _) => Some((d, Origin::DbnameArg)),
        (None, Some(u)) => Some((u.as_str(), Origin::Env("DATABASE_URL"))),
        (None, None) => None,
    };
    let dialect = match asked {
        Some(Driver::Libpq) => None,
        Some(driver) => Some((driver, Chosen::Asked)),
        None => string
            .and_then(|(text, _)| dialect::recognise(text))
            .map(|(driver, why)| (driver, Chosen::Recognised(why))),
    };
    let behaviour = dialect.map_or(dialect::LIBPQ, |(d, _)| dialect::behaviour(d));
    let mut settings = Settings::default();
    for (var, keyword) in conninfo::ENV_KEYWORDS {
        // libpq reads an empty variable as set; the other drivers as absent.
        let value = match behaviour.env {
            EnvUse::Libpq => env_string(env, var)?,
            EnvUse::Only(vars) if vars.contains(var) => {
                env_string(env, var)?.filter(|v| !v.is_empty())
            }
            EnvUse::Only(_) => None,
        };
        if let Some(value) = value {
            settings.set(keyword, value, Origin::Env(var))?;
        }
    }
    // libpq still reads the retired PGREQUIRESSL: a value starting with "1" is
    // sslmode=require, unless PGSSLMODE is set.
    if behaviour.env == EnvUse::Libpq
        && settings.get("sslmode").is_none()
        && env_string(env, "PGREQUIRESSL")?.is_some_and(|v| v.starts_with('1'))
    {
        settings.set("sslmode", "require".into(), Origin::Env("PGREQUIRESSL"))?;
    }
    let apply = |settings: &mut Settings, text: &str, origin| -> Result<(), ConfigError> {
        match dialect {
            None => settings.set_all(conninfo::parse_connection_string(text, origin)?, origin)?,
            Some((driver, _)) => {
                let lookup = |var: &str| env.var_os(var).and_then(|v| v.into_string().ok());
                let reading = dialect::read(driver, text, origin, &lookup)?;
                settings.set_all(reading.pairs, origin)?;
                if !reading.settings.is_empty() {
                    let options =
                        with_settings(settings.get("options").map(|(o, _)| o), &reading.settings);
                    settings.set("options", options, origin)?;
                }
            }
        }
        Ok(())
    };
    if let (Some((text, origin)), None) = (string, dbname) {
        apply(&mut settings, text, origin)?;
    }
    // As psql: a connection string in -d wins over -h/-p/-U, which fill in what it leaves out.
    for (id, keyword) in [
        (Id::Host, "host"),
        (Id::Port, "port"),
        (Id::Username, "user"),
    ] {
        if let Some(value) = connection_flag(opts, id) {
            settings.set(keyword, value.to_string(), Origin::Flag(flag_of(id).names))?;
        }
    }
    if let Some(text) = dbname {
        apply(&mut settings, text, Origin::DbnameArg)?;
    }
    if let (None, Some(host)) = (settings.get("host"), behaviour.default_host) {
        settings.set("host", host.into(), Origin::DbnameArg)?;
    }
    if behaviour.user_from_env && settings.get("user").is_none() {
        if let Some(user) = env_string(env, "USER")?.filter(|u| !u.is_empty()) {
            settings.set("user", user, Origin::Env("USER"))?;
        }
    }
    Ok((settings, dialect))
}

/// `options` with a driver's startup settings appended as `-c name=value` (spaces and
/// backslashes escaped, as the server splits options).
fn with_settings(options: Option<&str>, extra: &[(String, String)]) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace(' ', "\\ ");
    let mut parts: Vec<String> = options.map(str::to_string).into_iter().collect();
    parts.extend(
        extra
            .iter()
            .map(|(k, v)| format!("-c {}={}", escape(k), escape(v))),
    );
    parts.join(" ")
}

/// What a driver does that no keyword says, applied to the resolved settings.
fn apply_behaviour(conn: &mut ConnParams, dialect: Dialect) {
    let Some((driver, _)) = dialect else {
        return;
    };
    let behaviour = dialect::behaviour(driver);
    conn.failover = behaviour.failover;
    conn.addresses = behaviour.addresses;
    conn.plain_reconnects = behaviour.plain_reconnects;
    conn.tls_on_sockets = behaviour.tls_on_sockets;
    if !behaviour.passfile {
        conn.passfile = None;
    }
    let tls = &mut conn.tls;
    let verifying = matches!(tls.mode, SslMode::VerifyCa | SslMode::VerifyFull);
    let unverified = match behaviour.verify {
        Verify::Libpq => false,
        Verify::NotWhenOptional => matches!(tls.mode, SslMode::Allow | SslMode::Prefer),
        Verify::OnlyVerifyModes => !verifying,
    };
    if unverified {
        tls.rootcert = None;
    }
    if verifying {
        let default_file = matches!(
            &tls.rootcert,
            Some(RootCert::File {
                explicit: false,
                ..
            })
        );
        let missing = matches!(&tls.rootcert, Some(RootCert::File { path, explicit: false }) if !path.exists());
        match behaviour.roots {
            Roots::HomeFile => {}
            Roots::HomeFileElseSystem if missing => tls.rootcert = Some(RootCert::System),
            Roots::HomeFileElseSystem => {}
            Roots::System if default_file => tls.rootcert = Some(RootCert::System),
            Roots::System => {}
        }
    }
}

/// A connection flag's value; an empty one is not given, as psql's flags reach libpq through
/// PQconnectdbParams, which skips empty values (`-h ""` is the default host, not an error).
fn connection_flag(opts: &Opts, id: Id) -> Option<&str> {
    opts.value(id).filter(|v| !v.is_empty())
}

/// `None` ("never") for 0 and for [`FOREVER`] or more, as `-t 0` means waiting forever.
fn finite(d: Duration) -> Option<Duration> {
    (!d.is_zero() && d < FOREVER).then_some(d)
}

/// A pgwait setting from its flag, else its `PGWAIT_*` variable, with where it came from.
fn setting(
    opts: &Opts,
    id: Id,
    env: &dyn Environment,
) -> Result<Option<(String, Origin)>, ConfigError> {
    let flag = flag_of(id);
    if let Some(value) = opts.value(id) {
        return Ok(Some((value.to_string(), Origin::Flag(flag.names))));
    }
    let Some(var) = flag.env else {
        return Ok(None);
    };
    Ok(env_string(env, var)?.map(|v| (v, Origin::Env(var))))
}

/// `--table`, `--extension`, `--query` (flags, else their variables), in the order checked.
fn conditions(opts: &Opts, env: &dyn Environment) -> Result<Vec<Condition>, ConfigError> {
    let mut conditions = Vec::new();
    // The replica's lag first: a standby that is behind makes every other answer stale.
    let lag_values = repeated(opts, Id::MaxLag, env)?;
    if let Some((_, source)) = lag_values.first() {
        let limits = condition::max_lag(lag_values.iter().map(|(v, _)| v.as_str()));
        let limits = limits.map_err(|error| {
            let value = lag_values
                .iter()
                .map(|(v, _)| v.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let expected = match error {
                condition::LagError::Unreadable => {
                    "a size with a unit (16MB, 512kB) and/or a duration (5s, 500ms)"
                }
                condition::LagError::Twice => "at most one size and one duration",
            };
            ConfigError::invalid(*source, &value, expected)
        })?;
        conditions.push(Condition::MaxLag(limits));
    }
    type Parse = fn(&str) -> Result<Condition, NameError>;
    let named: [(Id, Parse); 2] = [
        (Id::Table, condition::table),
        (Id::Extension, condition::extension),
    ];
    for (id, parse) in named {
        for (value, source) in repeated(opts, id, env)? {
            conditions.push(parse(&value).map_err(|error| ConfigError::BadName { source, error })?);
        }
    }
    conditions.extend(migration_conditions(opts, env)?);
    // The query last: it usually reads what the tables and extensions provide.
    if let Some((sql, source)) = setting(opts, Id::Query, env)? {
        if sql.trim().is_empty() {
            return Err(ConfigError::invalid(source, "", "SQL (it is empty)"));
        }
        conditions.push(Condition::Query(sql));
    }
    Ok(conditions)
}

/// The values of a repeatable flag, else its variable as a comma-separated list.
fn repeated(
    opts: &Opts,
    id: Id,
    env: &dyn Environment,
) -> Result<Vec<(String, Origin)>, ConfigError> {
    let flag = flag_of(id);
    let mut values: Vec<(String, Origin)> = opts
        .values(id)
        .map(|v| (v.to_string(), Origin::Flag(flag.names)))
        .collect();
    if let (true, Some(var)) = (values.is_empty(), flag.env) {
        if let Some(list) = env_string(env, var)? {
            let items = sql::split_list(&list);
            values.extend(items.into_iter().map(|v| (v.to_string(), Origin::Env(var))));
        }
    }
    Ok(values)
}

/// `--migrations` (and `--migrations-table`, which names the table of the one tool given).
fn migration_conditions(opts: &Opts, env: &dyn Environment) -> Result<Vec<Condition>, ConfigError> {
    let specs = repeated(opts, Id::Migrations, env)?;
    let table = match setting(opts, Id::MigrationsTable, env)? {
        None => None,
        // One custom table for several tools (or for none) cannot be right.
        Some((name, source)) if specs.len() != 1 => {
            let expected = "the history table of exactly one --migrations TOOL";
            return Err(ConfigError::invalid(source, &name, expected));
        }
        Some((name, source)) => {
            let (schema, name) = sql::qualified_name(&name)
                .map_err(|error| ConfigError::BadName { source, error })?;
            Some(HistoryTable { schema, name })
        }
    };
    specs
        .into_iter()
        .map(|(spec, source)| {
            migrations::parse(&spec, table.clone())
                .map(Condition::Migrations)
                .map_err(|error| ConfigError::BadMigrations { source, error })
        })
        .collect()
}

/// `--supervise`, `--signal-group`, `--exit-ok`; the last two only make sense with the first.
fn supervise_options(
    opts: &Opts,
    env: &dyn Environment,
) -> Result<Option<supervise::Options>, ConfigError> {
    let group = switch(opts, Id::SignalGroup, env)?;
    let codes = setting(opts, Id::ExitOk, env)?;
    if !switch(opts, Id::Supervise, env)? {
        if group {
            let source = Origin::Flag(flag_of(Id::SignalGroup).names);
            return Err(ConfigError::invalid(source, "", "only with --supervise"));
        }
        if let Some((value, source)) = codes {
            return Err(ConfigError::invalid(
                source,
                &value,
                "only with --supervise",
            ));
        }
        return Ok(None);
    }
    let success_codes = match codes {
        None => Vec::new(),
        Some((value, source)) => value
            .split(',')
            .map(|c| c.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ConfigError::invalid(source, &value, "exit codes from 0 to 255, comma-separated")
            })?,
    };
    Ok(Some(supervise::Options {
        group,
        success_codes,
    }))
}

/// A pgwait switch: the flag, else its `PGWAIT_*` variable as a boolean.
fn switch(opts: &Opts, id: Id, env: &dyn Environment) -> Result<bool, ConfigError> {
    if opts.has(id) {
        return Ok(true);
    }
    flag_of(id).env.map_or(Ok(false), |var| env_flag(env, var))
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

fn env_flag(env: &dyn Environment, var: &'static str) -> Result<bool, ConfigError> {
    let Some(value) = env_string(env, var)? else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        _ => Err(ConfigError::invalid(
            Origin::Env(var),
            &value,
            "1/0, true/false, yes/no or on/off",
        )),
    }
}

fn verbosity(opts: &Opts, env: &dyn Environment) -> Result<Verbosity, ConfigError> {
    if opts.has(Id::Quiet) || opts.has(Id::Verbose) {
        return Ok(if opts.has(Id::Quiet) {
            Verbosity::Quiet
        } else {
            Verbosity::Verbose
        });
    }
    let (quiet, verbose) = (flag_of(Id::Quiet), flag_of(Id::Verbose));
    let var = |flag: &crate::cli::Flag| flag.env.expect("-q and -v have variables");
    match (env_flag(env, var(quiet))?, env_flag(env, var(verbose))?) {
        (true, true) => Err(ConfigError::Conflict {
            first: Origin::Env(var(quiet)),
            second: Origin::Env(var(verbose)),
        }),
        (true, false) => Ok(Verbosity::Quiet),
        (false, true) => Ok(Verbosity::Verbose),
        (false, false) => Ok(Verbosity::Normal),
    }
}

fn log_format(opts: &Opts, env: &dyn Environment) -> Result<LogFormat, ConfigError> {
    let Some((value, source)) = setting(opts, Id::LogFormat, env)? else {
        return Ok(LogFormat::Text);
    };
    LogFormat::parse(&value).ok_or(ConfigError::invalid(source, &value, "text or json"))
}

/// The log format to report a usage error in, before the command line has been parsed: the
/// `--log-format` flag if it is there, else `PGWAIT_LOG_FORMAT`, else text.
pub fn early_log_format(args: &[OsString], env: &dyn Environment) -> LogFormat {
    let var = flag_of(Id::LogFormat).env;
    crate::cli::peek_value(args, Id::LogFormat)
        .or_else(|| var.and_then(|var| env_string(env, var).ok().flatten()))
        .and_then(|value| LogFormat::parse(&value))
        .unwrap_or(LogFormat::Text)
}

/// A humantime duration (`500ms`, `30s`, `1m 30s`), or a bare number of seconds.
fn parse_duration(value: &str, source: Origin) -> Result<Duration, ConfigError> {
    let trimmed = value.trim();
    let parsed = match trimmed.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(trimmed),
    };
    parsed.map_err(|_| {
        ConfigError::invalid(
            source,
            value,
            "a duration such as 500ms, 30s or 2m (0 or more)",
        )
    })
}

/// `--stable N`: how many successes in a row, 1 to 10000 (more is a typo, not a plan).
fn parse_count(value: &str, source: Origin) -> Result<u32, ConfigError> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| ConfigError::invalid(source, value, "a whole number from 1 to 10000"))
}

fn positive(d: Duration, value: String, source: Origin) -> Result<Duration, ConfigError> {
    if d.is_zero() {
        return Err(ConfigError::invalid(
            source,
            &value,
            "a duration greater than zero",
        ));
    }
    Ok(d)
}

fn parse_retry_on(value: &str, source: Origin) -> Result<RetryOn, ConfigError> {
    RetryOn::parse(value).map_err(|_| ConfigError::invalid(source, value, RETRY_ON_EXPECTED))
}

/// What `--retry-on` takes; a unit test checks it lists every name in [`RETRY_ON_NAMES`].
const RETRY_ON_EXPECTED: &str = "a comma-separated list of auth, nodb, privileges";

#[cfg(test)]
mod tests;
