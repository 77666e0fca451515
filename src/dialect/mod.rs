//! The app's own connection string, read the way its driver reads it (`--driver`): JDBC,
//! node-postgres, pgx, asyncpg (and SQLAlchemy's URLs), Rails, Prisma, Npgsql. Each dialect turns
//! the string into what libpq keywords would say ([`Reading`]) plus the few driver behaviours no
//! libpq keyword expresses ([`Behaviour`]: which `PG*` variables it reads, when it verifies a
//! certificate, which failures move it to the next host). The rules, with the driver source they
//! follow, are in docs/drivers.md; the differential test runs the real drivers that install here.
//!
//! Where a driver's reading is a bug that makes the app fail (node-postgres' `ssl=false`, a
//! `sslmode` given to SQLAlchemy's asyncpg, a host list where the driver has none), the string is
//! refused with the reason: pgwait never says "ready" for a string the app cannot use.

mod asyncpg;
mod jdbc;
mod node;
mod npgsql;
mod pgx;
mod prisma;
mod rails;
mod text;

use std::fmt;

use crate::conninfo::Origin;
pub use crate::conninfo::{Addresses, Failover};

/// A driver whose connection-string dialect pgwait reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Libpq,
    Jdbc,
    NodePostgres,
    Pgx,
    Asyncpg,
    Prisma,
    Npgsql,
    Rails,
}

/// `--driver` names, in the order docs/drivers.md lists them.
pub const DRIVERS: [(&str, Driver); 8] = [
    ("libpq", Driver::Libpq),
    ("jdbc", Driver::Jdbc),
    ("node-postgres", Driver::NodePostgres),
    ("pgx", Driver::Pgx),
    ("asyncpg", Driver::Asyncpg),
    ("prisma", Driver::Prisma),
    ("npgsql", Driver::Npgsql),
    ("rails", Driver::Rails),
];

impl Driver {
    pub fn parse(name: &str) -> Option<Driver> {
        DRIVERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, d)| *d)
    }

    pub fn name(self) -> &'static str {
        DRIVERS
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("libpq", |(n, _)| n)
    }
}

/// Why a dialect was chosen, for `-v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `--driver` / `PGWAIT_DRIVER`.
    Asked,
    /// Recognised from the string itself (`jdbc:postgresql:`, `postgresql+asyncpg://`, `Key=Value;`).
    Recognised(&'static str),
}

/// Recognises a dialect from the string alone, without `--driver`.
pub fn recognise(text: &str) -> Option<(Driver, &'static str)> {
    let lower = text.trim_start().to_ascii_lowercase();
    if lower.starts_with("jdbc:postgresql:") {
        return Some((Driver::Jdbc, "the jdbc:postgresql: prefix"));
    }
    if lower.starts_with("postgresql+asyncpg://") || lower.starts_with("postgres+asyncpg://") {
        return Some((Driver::Asyncpg, "SQLAlchemy's postgresql+asyncpg:// scheme"));
    }
    if npgsql::looks_like(text) {
        return Some((Driver::Npgsql, "its Key=Value; form (Npgsql)"));
    }
    None
}

/// What a driver would do with a string, in libpq's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// libpq keyword pairs, in order (later ones win).
    pub pairs: Vec<(String, String)>,
    /// Settings the driver sends in the startup packet beyond libpq's keywords (pgx's and
    /// asyncpg's unknown keys, Prisma's `search_path`): passed as `-c name=value` options, so the
    /// server accepts or rejects them as it would the app's.
    pub settings: Vec<(String, String)>,
}

impl Reading {
    fn set(&mut self, keyword: &str, value: impl Into<String>) {
        self.pairs.push((keyword.to_string(), value.into()));
    }
}

/// Why a string cannot be read as its driver reads it (exit 2). Names keywords and drivers,
/// never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectError {
    pub origin: Origin,
    pub driver: Driver,
    pub problem: String,
}

impl fmt::Display for DialectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} as {} reads it: {}",
            self.origin,
            self.driver.name(),
            self.problem
        )
    }
}

/// Reads `text` as `driver` does (`env` answers the `PG*` variables a driver consults while
/// parsing, e.g. node-postgres' PGSSLMODE). libpq itself is read by conninfo, not here.
pub fn read(
    driver: Driver,
    text: &str,
    origin: Origin,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Reading, DialectError> {
    let result = match driver {
        Driver::Libpq => Err("libpq strings are read by conninfo".to_string()),
        Driver::Jdbc => jdbc::read(text),
        Driver::NodePostgres => node::read(text, env),
        Driver::Pgx => pgx::read(text),
        Driver::Asyncpg => asyncpg::read(text),
        Driver::Prisma => prisma::read(text),
        Driver::Npgsql => npgsql::read(text),
        Driver::Rails => rails::read(text),
    };
    result.map_err(|problem| DialectError {
        origin,
        driver,
        problem,
    })
}

/// Which `PG*` variables a driver reads (and so pgwait reads on its behalf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvUse {
    /// All of libpq's.
    Libpq,
    /// Only these.
    Only(&'static [&'static str]),
}

/// When a driver checks the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// As libpq: verify-ca/verify-full, and any mode when a root certificate file is present.
    Libpq,
    /// prefer and allow never verify; require verifies the chain when a root file is given or
    /// present (pgx, asyncpg).
    NotWhenOptional,
    /// Only verify-ca and verify-full verify (pgjdbc, Npgsql 8+, Prisma without sslaccept=strict).
    OnlyVerifyModes,
}

/// Where a driver finds trusted roots for verify-ca/verify-full without a root file setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// `~/.postgresql/root.crt` (libpq, pgjdbc, asyncpg).
    HomeFile,
    /// That file if present, else the system's roots (pgx, Npgsql).
    HomeFileElseSystem,
    /// The system's roots (node-postgres, Prisma).
    System,
}

/// What a driver does that no keyword of the string says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    pub env: EnvUse,
    pub verify: Verify,
    pub roots: Roots,
    pub failover: Failover,
    /// The host when neither the string nor a variable names one (`None`: libpq's default).
    pub default_host: Option<&'static str>,
    /// Whether the driver reads a password file (`.pgpass`).
    pub passfile: bool,
    /// Which of a host name's addresses it tries, in which order.
    pub addresses: Addresses,
    /// The user when none is set: the `USER` variable (node-postgres), not the OS account.
    pub user_from_env: bool,
    /// `prefer`: a new connection for plain text after the server refuses TLS (pgx).
    pub plain_reconnects: bool,
    /// Asks for TLS over a Unix socket too (node-postgres, Npgsql).
    pub tls_on_sockets: bool,
}

/// libpq's own behaviour.
pub const LIBPQ: Behaviour = Behaviour {
    env: EnvUse::Libpq,
    verify: Verify::Libpq,
    roots: Roots::HomeFile,
    failover: Failover::Libpq,
    default_host: None,
    passfile: true,
    addresses: Addresses::AllAsResolved,
    user_from_env: false,
    plain_reconnects: false,
    tls_on_sockets: false,
};

/// Each driver's behaviour (docs/drivers.md cites the source of each).
pub fn behaviour(driver: Driver) -> Behaviour {
    match driver {
        Driver::Libpq | Driver::Rails => LIBPQ,
        Driver::Jdbc => Behaviour {
            // pgjdbc reads no PG* variable but the password file's.
            env: EnvUse::Only(&["PGPASSFILE", "PGSERVICEFILE"]),
            verify: Verify::OnlyVerifyModes,
            roots: Roots::HomeFile,
            failover: Failover::AnyFailure,
            default_host: Some("localhost"),
            passfile: true,
            addresses: Addresses::FirstIpv4First,
            user_from_env: false,
            plain_reconnects: false,
            tls_on_sockets: false,
        },
        Driver::NodePostgres => Behaviour {
            env: EnvUse::Only(&[
                "PGHOST",
                "PGPORT",
                "PGUSER",
                "PGPASSWORD",
                "PGDATABASE",
                "PGAPPNAME",
                "PGOPTIONS",
                "PGPASSFILE",
            ]),
            // Node's own roots (the string's sslrootcert replaces them); no-verify is require.
            verify: Verify::OnlyVerifyModes,
            roots: Roots::System,
            failover: Failover::Libpq,
            default_host: Some("localhost"),
            passfile: true,
            addresses: Addresses::AllAsResolved,
            user_from_env: true,
            plain_reconnects: false,
            tls_on_sockets: true,
        },
        Driver::Pgx => Behaviour {
            env: EnvUse::Only(&[
                "PGHOST",
                "PGPORT",
                "PGDATABASE",
                "PGUSER",
                "PGPASSWORD",
                "PGPASSFILE",
                "PGAPPNAME",
                "PGCONNECT_TIMEOUT",
                "PGSSLMODE",
                "PGSSLKEY",
                "PGSSLCERT",
                "PGSSLROOTCERT",
                "PGTARGETSESSIONATTRS",
                "PGSERVICE",
                "PGSERVICEFILE",
            ]),
            verify: Verify::NotWhenOptional,
            roots: Roots::HomeFileElseSystem,
            failover: Failover::AnyButLogin,
            default_host: None,
            passfile: true,
            addresses: Addresses::AllIpv4First,
            user_from_env: false,
            plain_reconnects: true,
            tls_on_sockets: false,
        },
        Driver::Asyncpg => Behaviour {
            env: EnvUse::Only(&[
                "PGHOST",
                "PGPORT",
                "PGUSER",
                "PGPASSWORD",
                "PGDATABASE",
                "PGPASSFILE",
                "PGSERVICE",
                "PGSERVICEFILE",
                "PGSSLMODE",
                "PGSSLNEGOTIATION",
                "PGSSLROOTCERT",
                "PGSSLCRL",
                "PGSSLKEY",
                "PGSSLCERT",
                "PGSSLMINPROTOCOLVERSION",
                "PGSSLMAXPROTOCOLVERSION",
                "PGTARGETSESSIONATTRS",
            ]),
            verify: Verify::NotWhenOptional,
            roots: Roots::HomeFile,
            failover: Failover::Libpq,
            // Without PGHOST asyncpg tries these in turn (connect_utils.py _parse_connect_dsn_and_args).
            default_host: Some("/run/postgresql,/var/run/postgresql,/tmp,/private/tmp,localhost"),
            passfile: true,
            addresses: Addresses::AllAsResolved,
            user_from_env: false,
            plain_reconnects: false,
            tls_on_sockets: false,
        },
        Driver::Prisma => Behaviour {
            env: EnvUse::Only(&[]),
            verify: Verify::OnlyVerifyModes,
            roots: Roots::System,
            failover: Failover::Libpq,
            default_host: Some("localhost"),
            passfile: false,
            addresses: Addresses::AllAsResolved,
            user_from_env: false,
            plain_reconnects: false,
            tls_on_sockets: false,
        },
        Driver::Npgsql => Behaviour {
            env: EnvUse::Only(&[
                "PGUSER",
                "PGPASSWORD",
                "PGPASSFILE",
                "PGSSLCERT",
                "PGSSLKEY",
                "PGSSLROOTCERT",
                "PGAPPNAME",
                "PGOPTIONS",
            ]),
            verify: Verify::OnlyVerifyModes,
            roots: Roots::HomeFileElseSystem,
            failover: Failover::AnyFailure,
            default_host: None,
            passfile: true,
            addresses: Addresses::AllAsResolved,
            user_from_env: false,
            plain_reconnects: false,
            tls_on_sockets: true,
        },
    }
}

#[cfg(test)]
mod tests;
