//! `--migrations TOOL[:VERSION]` against a real server: each tool's history table made with the
//! DDL its own source uses (cited in src/migrations.rs), driven through its states; and one real
//! tool, Alembic (from PyPI, in the virtualenv `.ci/run` creates), migrating while pgwait waits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn sql(cluster: &Cluster, statement: &str) {
    let out = cluster.psql("postgres", statement);
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `--once` check as a role with no special privileges (the app's).
fn once(cluster: &Cluster, args: &[&str]) -> (Option<i32>, String) {
    let out = pgwait()
        .args(cluster.tcp_args(TRUST_USER))
        .arg("--once")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_waits(cluster: &Cluster, spec: &str, says: &str) {
    let (code, log) = once(cluster, &["--migrations", spec]);
    assert_eq!(code, Some(1), "{spec}: {log}");
    assert!(log.contains(says), "{spec}: expected {says:?} in\n{log}");
}

fn assert_ready(cluster: &Cluster, spec: &str) {
    let (code, log) = once(cluster, &["--migrations", spec]);
    assert_eq!(code, Some(0), "{spec}: {log}");
}

/// (tool, DDL from its source, rows for: a failed/unfinished state, the fix, the version row)
struct Case {
    tool: &'static str,
    ddl: &'static str,
    broken: &'static str,
    broken_says: &'static str,
    fixed: &'static str,
    version: &'static str,
    apply_version: &'static str,
}

const CASES: &[Case] = &[
    Case {
        tool: "flyway",
        ddl: r#"CREATE TABLE "flyway_schema_history" ("installed_rank" INT NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL, "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INT, "installed_by" VARCHAR(100) NOT NULL, "installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL, CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank"))"#,
        broken: "INSERT INTO flyway_schema_history VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'me', now(), 5, true), (2, '2.1', 'users', 'SQL', 'V2_1__users.sql', 2, 'me', now(), 5, false)",
        broken_says: "migration 2.1 failed (success = false)",
        fixed: "UPDATE flyway_schema_history SET success = true",
        version: "2.10",
        apply_version: "INSERT INTO flyway_schema_history VALUES (3, '2.10', 'x', 'SQL', 'V2_10__x.sql', 3, 'me', now(), 5, true)",
    },
    Case {
        tool: "liquibase",
        ddl: "CREATE TABLE databasechangelog (id VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, filename VARCHAR(255) NOT NULL, dateexecuted TIMESTAMP NOT NULL, orderexecuted INT NOT NULL, exectype VARCHAR(10) NOT NULL, md5sum VARCHAR(35), description VARCHAR(255), comments VARCHAR(255), tag VARCHAR(255), liquibase VARCHAR(20), contexts VARCHAR(255), labels VARCHAR(255), deployment_id VARCHAR(10)); CREATE TABLE databasechangeloglock (id INT NOT NULL PRIMARY KEY, locked BOOLEAN NOT NULL, lockgranted TIMESTAMP, lockedby VARCHAR(255))",
        broken: "INSERT INTO databasechangeloglock VALUES (1, true, now(), 'host'); INSERT INTO databasechangelog VALUES ('1-init', 'me', 'db.xml', now(), 1, 'EXECUTED')",
        broken_says: "the changelog lock is held",
        fixed: "UPDATE databasechangeloglock SET locked = false",
        version: "2-users",
        apply_version: "INSERT INTO databasechangelog VALUES ('2-users', 'me', 'db.xml', now(), 2, 'EXECUTED')",
    },
    Case {
        tool: "golang-migrate",
        ddl: "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)",
        broken: "INSERT INTO schema_migrations VALUES (3, true)",
        broken_says: "dirty at version 3: a migration failed or is running; after fixing it: migrate force 3",
        fixed: "UPDATE schema_migrations SET dirty = false",
        version: "4",
        apply_version: "UPDATE schema_migrations SET version = 4",
    },
    Case {
        tool: "goose",
        ddl: "CREATE TABLE goose_db_version (id serial NOT NULL, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NULL default now(), PRIMARY KEY(id))",
        broken: "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (20240101, true), (20240101, false)",
        broken_says: "the newest record (version 20240101) is not applied",
        fixed: "INSERT INTO goose_db_version (version_id, is_applied) VALUES (20240101, true)",
        version: "20240202",
        apply_version: "INSERT INTO goose_db_version (version_id, is_applied) VALUES (20240202, true)",
    },
    Case {
        tool: "sqlx",
        ddl: "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)",
        broken: "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'init', true, '\\x00', 1), (2, 'users', false, '\\x00', 1)",
        broken_says: "migration 2 failed (success = false)",
        fixed: "UPDATE _sqlx_migrations SET success = true",
        version: "3",
        apply_version: "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (3, 'x', true, '\\x00', 1)",
    },
    Case {
        tool: "prisma",
        ddl: "CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0)",
        broken: "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at) VALUES ('a', 'c', now(), '20240101_init', now() - interval '1 hour'), ('b', 'c', NULL, '20240102_users', now() - interval '1 minute')",
        broken_says: "migration 20240102_users did not finish",
        fixed: "UPDATE _prisma_migrations SET finished_at = now() WHERE id = 'b'",
        version: "20240103_posts",
        apply_version: "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('c', 'c', now(), '20240103_posts')",
    },
];

#[test]
fn each_tool_is_waited_for_through_missing_broken_and_unapplied_states() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    for case in CASES {
        let spec = format!("{}:{}", case.tool, case.version);
        // Before the tool ever ran: its table is missing (schema not ready, retried).
        assert_waits(&cluster, case.tool, "42P01");
        sql(&cluster, case.ddl);
        sql(
            &cluster,
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO trust_user",
        );
        sql(&cluster, case.broken);
        assert_waits(&cluster, case.tool, case.broken_says);
        sql(&cluster, case.fixed);
        assert_ready(&cluster, case.tool);
        assert_waits(
            &cluster,
            &spec,
            &format!("version {} is not applied yet", case.version),
        );
        sql(&cluster, case.apply_version);
        assert_ready(&cluster, &spec);
    }
}

#[test]
fn django_diesel_and_rails_versions_and_the_shared_schema_migrations_name() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    // django/db/migrations/recorder.py
    sql(&cluster, "CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL)");
    // diesel/src/migration/setup_migration_table.sql
    sql(&cluster, "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    sql(
        &cluster,
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO trust_user",
    );
    let django = "django:auth.0012_alter_user_first_name_max_length";
    assert_waits(&cluster, "django", "no migration applied yet");
    sql(&cluster, "INSERT INTO django_migrations (app, name, applied) VALUES ('auth', '0011_update_proxy_permissions', now())");
    assert_waits(&cluster, django, "is not applied yet");
    sql(&cluster, "INSERT INTO django_migrations (app, name, applied) VALUES ('auth', '0012_alter_user_first_name_max_length', now())");
    assert_ready(&cluster, django);
    sql(
        &cluster,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20240131120000')",
    );
    assert_ready(&cluster, "diesel:2024-01-31-120000");
    assert_waits(&cluster, "diesel:2024-02-01-000000", "not applied yet");

    // golang-migrate's schema_migrations is never taken for rails', nor the reverse.
    sql(&cluster, "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null); GRANT SELECT ON schema_migrations TO trust_user; INSERT INTO schema_migrations VALUES (20240101000000, false)");
    assert_waits(&cluster, "rails", "golang-migrate's");
    sql(&cluster, "DROP TABLE schema_migrations");
    // activerecord/lib/active_record/schema_migration.rb
    sql(&cluster, "CREATE TABLE schema_migrations (version character varying NOT NULL PRIMARY KEY); GRANT SELECT ON schema_migrations TO trust_user; INSERT INTO schema_migrations VALUES ('20240101000000')");
    assert_ready(&cluster, "rails:20240101000000");
    assert_waits(&cluster, "golang-migrate", "42703");
}

#[test]
fn a_custom_table_and_bad_specs() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    sql(&cluster, "CREATE SCHEMA ops; CREATE TABLE ops.history (version bigint not null primary key, dirty boolean not null); INSERT INTO ops.history VALUES (7, false); GRANT USAGE ON SCHEMA ops TO trust_user; GRANT SELECT ON ops.history TO trust_user");
    let (code, log) = once(
        &cluster,
        &[
            "--migrations",
            "golang-migrate:7",
            "--migrations-table",
            "ops.history",
        ],
    );
    assert_eq!(code, Some(0), "{log}");
    for (args, says) in [
        (
            &["--migrations", "knex"][..],
            "known: flyway, liquibase, golang-migrate",
        ),
        (
            &["--migrations", "sqlx:v2"],
            "a sqlx version is a whole number",
        ),
        (&["--migrations", "flyway:1.x"], "numbers separated by dots"),
        (
            &[
                "--migrations",
                "goose",
                "--migrations",
                "sqlx",
                "--migrations-table",
                "t",
            ],
            "exactly one --migrations TOOL",
        ),
    ] {
        let (code, log) = once(&cluster, args);
        assert_eq!(code, Some(2), "{args:?}: {log}");
        assert!(log.contains(says), "{args:?}: {log}");
    }
}

/// The virtualenv `.ci/run` makes, with Alembic and psycopg2 from PyPI.
fn alembic() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pgwait-venv/bin/alembic");
    assert!(
        bin.exists(),
        "{} is missing: run .ci/run, which creates the virtualenv",
        bin.display()
    );
    bin
}

/// An Alembic project with two revisions, a1 then b2, against the cluster (as postgres, socket).
fn alembic_project(cluster: &Cluster) -> PathBuf {
    let dir = cluster.root.join("alembic-project");
    std::fs::create_dir_all(dir.join("versions")).unwrap();
    let url = format!(
        "postgresql+psycopg2://postgres@/postgres?host={}&port={}",
        cluster.socket_dir.display(),
        cluster.port
    );
    std::fs::write(
        dir.join("alembic.ini"),
        format!(
            "[alembic]\nscript_location = {}\nsqlalchemy.url = {url}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("env.py"),
        "from alembic import context\nfrom sqlalchemy import engine_from_config, pool\n\
         config = context.config\n\
         engine = engine_from_config(config.get_section(config.config_ini_section), prefix='sqlalchemy.', poolclass=pool.NullPool)\n\
         with engine.connect() as connection:\n    context.configure(connection=connection)\n    with context.begin_transaction():\n        context.run_migrations()\n",
    )
    .unwrap();
    std::fs::write(dir.join("script.py.mako"), "").unwrap();
    let revision = |id: &str, down: &str, body: &str| {
        format!(
            "from alembic import op\nrevision = '{id}'\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\
             def upgrade():\n    {body}\n\ndef downgrade():\n    pass\n"
        )
    };
    std::fs::write(dir.join("versions/a1_widgets.py"), revision("a1", "None", "op.execute('CREATE TABLE widgets (id int)'); op.execute('GRANT SELECT ON alembic_version TO trust_user')")).unwrap();
    std::fs::write(
        dir.join("versions/b2_slow.py"),
        revision(
            "b2",
            "'a1'",
            "op.execute('SELECT pg_sleep(1)'); op.execute('CREATE TABLE gadgets (id int)')",
        ),
    )
    .unwrap();
    dir
}

fn run_alembic(project: &Path, target: &str) {
    let out = Command::new(alembic())
        .arg("-c")
        .arg(project.join("alembic.ini"))
        .args(["upgrade", target])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alembic upgrade {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_real_alembic_upgrade_releases_the_app_only_at_the_named_revision() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let project = alembic_project(&cluster);
    let marker = cluster.root.join("app-saw");
    let app = format!(
        "{} -X -A -t -h {} -p {} -U postgres -d postgres -c 'select count(*) from gadgets' > {} 2>&1",
        pg().bin.join("psql").display(),
        cluster.socket_dir.display(),
        cluster.port,
        marker.display()
    );
    let mut child = Running::spawn(pgwait().args(cluster.tcp_args(TRUST_USER)).args([
        "--migrations",
        "alembic:b2",
        "-t",
        "60s",
        "-v",
        "--",
        "sh",
        "-c",
        &app,
    ]));
    // No history table yet: schema not ready.
    child.expect("42P01", Duration::from_secs(20));
    run_alembic(&project, "a1");
    child.expect_more("version b2 is not applied yet", 3, Duration::from_secs(20));
    assert!(child.is_running(), "released at revision a1");
    run_alembic(&project, "head");
    let (status, log) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "0",
        "{log}"
    );
    assert!(log.contains("42P01"), "{log}");
    assert!(log.contains("version b2 is not applied yet"), "{log}");
    assert!(log.contains("checked migrations alembic:b2"), "{log}");
}
