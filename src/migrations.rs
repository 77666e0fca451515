//! `--migrations TOOL[:VERSION]`: ready when a migration tool's own history table records no
//! failed, unfinished or locked migration and, with VERSION, that version is applied.
//!
//! One table row per tool ([`DETECTORS`]): its history table and one SQL template that returns a
//! single text column, `ok` or the reason it is not ready. Table and column names come from each
//! tool's own source, cited next to its row. A missing history table is PostgreSQL's 42P01, which
//! is the retried class "schema not ready" (the tool has not run yet).

use std::fmt;

use crate::sql::{literal, Ident};

/// How a tool names a migration: a number compared numerically, or a name that must be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// An integer (timestamps included): that version or a later one.
    Integer,
    /// Flyway's dotted versions, compared segment by segment.
    Dotted,
    /// A name (django `app.name`, an alembic revision, a liquibase changeset id, a prisma
    /// migration name) that must be recorded as applied.
    Named,
}

/// One tool's detector.
#[derive(Debug)]
pub struct Detector {
    pub tool: &'static str,
    pub table: &'static str,
    pub versioning: Versioning,
    /// The state check: `{T}` is the quoted table, `{L}` the lock table (liquibase). Returns
    /// `ok` or a reason.
    state: &'static str,
    /// With VERSION: true when it is applied; `{T}` as above, `{V}` the version (a literal or a
    /// number, already validated).
    applied: &'static str,
}

/// The ten tools. Each state query is one statement returning `ok` or why not.
#[rustfmt::skip]
pub const DETECTORS: &[Detector] = &[
    // flyway: flyway-core/src/main/resources/org/flywaydb/core/internal/database/postgresql/
    // createMetaDataTable.sql (flyway 9; flyway-database-postgresql in 10+): "installed_rank"
    // INT, "version" VARCHAR(50) (NULL for repeatable), "success" BOOLEAN NOT NULL.
    Detector {
        tool: "flyway", table: "flyway_schema_history", versioning: Versioning::Dotted,
        state: "SELECT coalesce((SELECT 'migration ' || coalesce(version, description) || \
                ' failed (success = false): fix it, then flyway repair' FROM {T} WHERE NOT success \
                ORDER BY installed_rank DESC LIMIT 1), 'ok')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE success AND version IS NOT NULL AND \
                  string_to_array(regexp_replace(version, '(\\.0+)+$', ''), '.')::numeric[] >= \
                  string_to_array(regexp_replace({V}, '(\\.0+)+$', ''), '.')::numeric[])",
    },
    // liquibase: liquibase-standard/src/main/java/liquibase/changelog/
    // StandardChangeLogHistoryService.java (DATABASECHANGELOG: ID, AUTHOR, FILENAME, ...) and
    // liquibase/lockservice/StandardLockService.java (DATABASECHANGELOGLOCK: ID, LOCKED,
    // LOCKGRANTED, LOCKEDBY); unquoted, so lower case in PostgreSQL.
    Detector {
        tool: "liquibase", table: "databasechangelog", versioning: Versioning::Named,
        state: "SELECT CASE WHEN EXISTS (SELECT FROM {L} WHERE locked) THEN 'the changelog lock \
                is held: an update is running (after a crash: liquibase release-locks)' \
                ELSE (SELECT 'ok' FROM {T} LIMIT 1) END",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE id = {V})",
    },
    // golang-migrate: database/postgres/postgres.go, ensureVersionTable: "CREATE TABLE IF NOT
    // EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)".
    // The dirty column is what tells it from rails' table of the same name.
    Detector {
        tool: "golang-migrate", table: "schema_migrations", versioning: Versioning::Integer,
        state: "SELECT coalesce((SELECT CASE WHEN dirty THEN 'dirty at version ' || version || \
                ': a migration failed or is running; after fixing it: migrate force ' || version \
                ELSE 'ok' END FROM {T} LIMIT 1), 'no migration applied yet')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE NOT dirty AND version >= {V})",
    },
    // goose: internal/dialect/dialectquery/postgres.go, CreateTable: id serial, version_id
    // bigint, is_applied boolean, tstamp timestamp; the newest row (by id) is the current state.
    Detector {
        tool: "goose", table: "goose_db_version", versioning: Versioning::Integer,
        state: "SELECT coalesce((SELECT CASE WHEN is_applied THEN 'ok' ELSE 'the newest record \
                (version ' || version_id || ') is not applied: a rollback' END FROM {T} \
                ORDER BY id DESC LIMIT 1), 'no migration applied yet')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE is_applied AND version_id >= {V})",
    },
    // sqlx: sqlx-postgres/src/migrate.rs, ensure_migrations_table: version BIGINT PRIMARY KEY,
    // description TEXT, installed_on TIMESTAMPTZ, success BOOLEAN, checksum BYTEA,
    // execution_time BIGINT.
    Detector {
        tool: "sqlx", table: "_sqlx_migrations", versioning: Versioning::Integer,
        state: "SELECT coalesce((SELECT 'migration ' || version || ' failed (success = false): \
                fix it and run the migrations again' FROM {T} WHERE NOT success ORDER BY version \
                DESC LIMIT 1), 'ok')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE success AND version >= {V})",
    },
    // diesel: diesel/src/migration/setup_migration_table.sql: version VARCHAR(50) PRIMARY KEY,
    // run_on TIMESTAMP; versions are the migration directory's digits (dashes removed).
    Detector {
        tool: "diesel", table: "__diesel_schema_migrations", versioning: Versioning::Integer,
        state: "SELECT 'ok' FROM {T} LIMIT 1",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE replace(version, '-', '') ~ '^[0-9]+$' \
                  AND replace(version, '-', '')::numeric >= {V})",
    },
    // alembic: alembic/runtime/migration.py, MigrationContext: Table("alembic_version",
    // Column("version_num", String(32), nullable=False), PrimaryKeyConstraint(...)).
    Detector {
        tool: "alembic", table: "alembic_version", versioning: Versioning::Named,
        state: "SELECT coalesce((SELECT 'ok' FROM {T} LIMIT 1), 'no revision stamped yet')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE version_num = {V})",
    },
    // django: django/db/migrations/recorder.py, MigrationRecorder.Migration: app CharField(255),
    // name CharField(255), applied DateTimeField; db_table "django_migrations".
    Detector {
        tool: "django", table: "django_migrations", versioning: Versioning::Named,
        state: "SELECT coalesce((SELECT 'ok' FROM {T} LIMIT 1), 'no migration applied yet')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE app || '.' || name = {V})",
    },
    // rails: activerecord/lib/active_record/schema_migration.rb, create_table: "version" string
    // primary key. It shares its name with golang-migrate's table, which has a dirty column.
    Detector {
        tool: "rails", table: "schema_migrations", versioning: Versioning::Integer,
        state: "SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_attribute \
                WHERE attrelid = {R}::regclass AND attname = 'dirty' AND NOT attisdropped) \
                THEN 'this schema_migrations table is golang-migrate''s (it has a dirty column)' \
                ELSE coalesce((SELECT 'ok' FROM {T} LIMIT 1), 'no migration applied yet') END",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE version ~ '^[0-9]+$' AND \
                  version::numeric >= {V})",
    },
    // prisma: prisma-engines, schema-engine/connectors/sql-schema-connector/src/flavour/
    // postgres.rs, create_migrations_table: id VARCHAR(36), checksum, finished_at TIMESTAMPTZ,
    // migration_name VARCHAR(255), logs, rolled_back_at TIMESTAMPTZ, started_at,
    // applied_steps_count.
    Detector {
        tool: "prisma", table: "_prisma_migrations", versioning: Versioning::Named,
        state: "SELECT coalesce((SELECT 'migration ' || migration_name || CASE WHEN \
                rolled_back_at IS NOT NULL THEN ' was rolled back' ELSE ' did not finish \
                (failed or running: see prisma migrate resolve)' END FROM {T} m WHERE \
                (finished_at IS NULL OR rolled_back_at IS NOT NULL) AND NOT EXISTS (SELECT FROM \
                {T} later WHERE later.migration_name = m.migration_name AND later.finished_at IS \
                NOT NULL AND later.rolled_back_at IS NULL AND later.started_at > m.started_at) \
                ORDER BY started_at DESC LIMIT 1), 'ok')",
        applied: "SELECT EXISTS (SELECT FROM {T} WHERE migration_name = {V} AND finished_at IS \
                  NOT NULL AND rolled_back_at IS NULL)",
    },
];

/// One `--migrations` check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrations {
    pub tool: &'static str,
    /// `--migrations-table`, when it replaces the tool's default history table.
    custom_table: Option<HistoryTable>,
    /// The version, validated and normalised for its tool.
    version: Option<String>,
}

/// A history table named by `--migrations-table`: `NAME` or `SCHEMA.NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryTable {
    pub schema: Option<Ident>,
    pub name: Ident,
}

/// Why a `--migrations` value is wrong (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    UnknownTool,
    /// A version that does not parse for a numbered tool.
    BadVersion {
        tool: &'static str,
        expected: &'static str,
    },
    EmptyVersion,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownTool => {
                let known: Vec<&str> = DETECTORS.iter().map(|d| d.tool).collect();
                write!(f, "unknown migration tool; known: {}", known.join(", "))
            }
            Self::BadVersion { tool, expected } => {
                write!(f, "a {tool} version is {expected}")
            }
            Self::EmptyVersion => f.write_str("the version after \":\" is empty"),
        }
    }
}

fn detector(tool: &str) -> Option<&'static Detector> {
    DETECTORS.iter().find(|d| d.tool == tool)
}

/// Parses `TOOL` or `TOOL:VERSION`; `table` is `--migrations-table` (already a parsed name).
pub fn parse(spec: &str, table: Option<HistoryTable>) -> Result<Migrations, SpecError> {
    let (tool, version) = match spec.split_once(':') {
        Some((tool, version)) => (tool, Some(version)),
        None => (spec, None),
    };
    let detector = detector(&tool.to_ascii_lowercase()).ok_or(SpecError::UnknownTool)?;
    let version = version.map(|v| normalise(detector, v)).transpose()?;
    Ok(Migrations {
        tool: detector.tool,
        custom_table: table,
        version,
    })
}

/// Checks VERSION for the tool's scheme: integers (diesel's dashes removed), flyway's dotted
/// numbers (`_` as `.`), names as given.
fn normalise(detector: &Detector, version: &str) -> Result<String, SpecError> {
    if version.is_empty() {
        return Err(SpecError::EmptyVersion);
    }
    let tool = detector.tool;
    match detector.versioning {
        Versioning::Named => Ok(version.to_string()),
        Versioning::Integer => {
            let digits: String = version.chars().filter(|c| *c != '-').collect();
            let ok = !digits.is_empty()
                && digits.len() <= 30
                && digits.bytes().all(|b| b.is_ascii_digit());
            ok.then_some(digits).ok_or(SpecError::BadVersion {
                tool,
                expected: "a whole number (e.g. a timestamp such as 20240131120000)",
            })
        }
        Versioning::Dotted => {
            let dotted = version.replace('_', ".");
            let ok = dotted.len() <= 50
                && dotted
                    .split('.')
                    .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            ok.then_some(dotted).ok_or(SpecError::BadVersion {
                tool,
                expected: "numbers separated by dots (e.g. 2.1.3)",
            })
        }
    }
}

impl Migrations {
    fn detector(&self) -> &'static Detector {
        detector(self.tool).expect("parsed from the table")
    }

    /// The history table as a quoted identifier path, `"schema"."table"`, with `suffix` added to
    /// its name (liquibase's lock table is the changelog's name + `lock`).
    fn table_sql(&self, suffix: &str) -> String {
        match &self.custom_table {
            None => Ident::exact(&format!("{}{suffix}", self.detector().table)).quoted(),
            Some(HistoryTable { schema, name }) => {
                let name = Ident::exact(&format!("{}{suffix}", name.text())).quoted();
                match schema {
                    Some(schema) => format!("{}.{name}", schema.quoted()),
                    None => name,
                }
            }
        }
    }

    /// The state query: `ok` or why not.
    pub fn state_sql(&self) -> String {
        let table = self.table_sql("");
        self.detector()
            .state
            .replace("{T}", &table)
            .replace("{L}", &self.table_sql("lock"))
            .replace("{R}", &literal(&table))
    }

    /// The "is VERSION applied" query, if a version was given.
    pub fn applied_sql(&self) -> Option<String> {
        let version = self.version.as_ref()?;
        let value = match self.detector().versioning {
            Versioning::Integer => version.clone(),
            Versioning::Dotted | Versioning::Named => literal(version),
        };
        Some(
            self.detector()
                .applied
                .replace("{T}", &self.table_sql(""))
                .replace("{V}", &value),
        )
    }

    /// The history table `--migrations-table` named instead of the tool's default.
    pub fn custom_table(&self) -> Option<&HistoryTable> {
        self.custom_table.as_ref()
    }

    /// The version asked for, for "not applied yet" messages.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_one_row_and_a_default_table() {
        let tools: Vec<&str> = DETECTORS.iter().map(|d| d.tool).collect();
        assert_eq!(
            tools,
            [
                "flyway",
                "liquibase",
                "golang-migrate",
                "goose",
                "sqlx",
                "diesel",
                "alembic",
                "django",
                "rails",
                "prisma"
            ]
        );
        for d in DETECTORS {
            assert!(d.state.contains("{T}"), "{}", d.tool);
            assert!(
                d.applied.contains("{T}") && d.applied.contains("{V}"),
                "{}",
                d.tool
            );
        }
    }

    #[test]
    fn specs_parse_and_versions_are_checked_per_tool() {
        let ok = [
            ("flyway", None),
            ("flyway:2.1.3", Some("2.1.3")),
            ("flyway:2_1", Some("2.1")),
            ("golang-migrate:20240131120000", Some("20240131120000")),
            ("diesel:2024-01-31-120000", Some("20240131120000")),
            (
                "django:auth.0012_alter_user_first_name_max_length",
                Some("auth.0012_alter_user_first_name_max_length"),
            ),
            ("alembic:ae1027a6acf", Some("ae1027a6acf")),
            ("Prisma:20240101_init", Some("20240101_init")),
        ];
        for (spec, version) in ok {
            assert_eq!(parse(spec, None).unwrap().version(), version, "{spec}");
        }
        assert_eq!(parse("knex", None), Err(SpecError::UnknownTool));
        assert!(parse("knex", None)
            .unwrap_err()
            .to_string()
            .contains("golang-migrate"));
        for bad in [
            "sqlx:v3",
            "goose:1.2",
            "flyway:1..2",
            "flyway:1.a",
            "rails:",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_and_tables_reach_sql_only_quoted() {
        let m = parse("alembic:x'); drop table t; --", None).unwrap();
        let sql = m.applied_sql().unwrap();
        assert!(
            sql.contains("version_num = E'x''); drop table t; --'"),
            "{sql}"
        );
        let custom = HistoryTable {
            schema: Some(Ident::exact("app")),
            name: Ident::exact("my\"history"),
        };
        let m = parse("liquibase", Some(custom)).unwrap();
        assert!(
            m.state_sql().contains("\"app\".\"my\"\"history\""),
            "{}",
            m.state_sql()
        );
        assert!(
            m.state_sql().contains("\"app\".\"my\"\"historylock\""),
            "{}",
            m.state_sql()
        );
    }
}
