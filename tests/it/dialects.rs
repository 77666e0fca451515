//! `--driver` against a real server: each dialect's documented strings reach it as the driver
//! would send them (settings the driver puts in the startup packet are judged by the server),
//! and each driver's failover rule. The wire-level comparison with the real drivers is
//! tests/differential/drivers_diff.py (tests/it/drivers.rs).

use std::io::Write;
use std::process::Output;

use crate::support::peer::{error_response, fake_server, read_startup};
use crate::support::*;

fn run(driver: &str, string: &str) -> Output {
    pgwait()
        .args(["--once", "--driver", driver, "-d", string])
        .env_remove("PGPASSWORD")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn each_dialect_reaches_a_real_server_as_its_driver_would() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let port = cluster.port;
    let ready = [
        ("jdbc", format!("jdbc:postgresql://127.0.0.1:{port}/postgres?user={SCRAM_USER}&password={SCRAM_PASSWORD}&ApplicationName=jdbc-app")),
        ("node-postgres", format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?statement_timeout=5s")),
        ("pgx", format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?search_path=public&pool_max_conns=4")),
        ("asyncpg", format!("postgresql://{TRUST_USER}@127.0.0.1:{port}/postgres?application_name=worker&work_mem=4MB")),
        ("prisma", format!("postgresql://{TRUST_USER}@127.0.0.1:{port}/postgres?schema=app&connection_limit=5")),
        ("npgsql", format!("Host=127.0.0.1;Port={port};Username={TRUST_USER};Database=postgres;Pooling=true")),
        ("rails", format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?pool=5&encoding=unicode&prepared_statements=false")),
    ];
    for (driver, string) in &ready {
        let out = run(driver, string);
        assert!(out.status.success(), "{driver}: {}", stderr_of(&out));
    }
    assert!(
        cluster.log().contains("application_name=jdbc-app"),
        "the JDBC ApplicationName did not arrive"
    );
    // What the driver sends at startup is judged by the server: the app would be refused too.
    let refused = [
        (
            "pgx",
            format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?pool_max=4"),
            "42704",
        ),
        (
            "asyncpg",
            format!("postgresql://{TRUST_USER}@127.0.0.1:{port}/postgres?connect_timeout=5"),
            "42704",
        ),
        (
            "node-postgres",
            format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?statement_timeout=soon"),
            "22023",
        ),
        (
            "rails",
            format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?encoding=klingon"),
            "22023",
        ),
        // ssl=true is verify-full to pgjdbc, which then needs ~/.postgresql/root.crt (none
        // here); node-postgres uses its own roots and meets a server without TLS.
        (
            "jdbc",
            format!("jdbc:postgresql://127.0.0.1:{port}/postgres?user={TRUST_USER}&ssl=true"),
            "root certificate file",
        ),
        (
            "node-postgres",
            format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?ssl=true"),
            "does not support TLS",
        ),
    ];
    for (driver, string, words) in &refused {
        let out = run(driver, string);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{driver} {string}: {err}");
        assert!(err.contains(words), "{driver} {string}: {err}");
    }
    // pgjdbc's ssl=false is prefer, not an error; node-postgres' is a crash: refused.
    let out = run(
        "jdbc",
        &format!("jdbc:postgresql://127.0.0.1:{port}/postgres?user={TRUST_USER}&ssl=false"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = run(
        "node-postgres",
        &format!("postgres://{TRUST_USER}@127.0.0.1:{port}/postgres?ssl=false"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

/// A peer that answers every startup with 3D000 (a database that does not exist there).
fn missing_database() -> u16 {
    let (port, _) = fake_server(|mut stream| {
        if read_startup(&mut stream) {
            let reply =
                error_response(&[(b'S', "FATAL"), (b'C', "3D000"), (b'M', "no such database")]);
            let _ = stream.write_all(&reply);
        }
    });
    port
}

#[test]
fn each_driver_moves_on_to_the_next_host_by_its_own_rule() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let (bad, port) = (missing_database(), cluster.port);
    // pgjdbc and Npgsql try the next host after any failure; libpq (and asyncpg) stop at a
    // server's refusal; pgx after anything but a rejected login.
    let cases = [
        ("jdbc", format!("jdbc:postgresql://127.0.0.1:{bad},127.0.0.1:{port}/postgres?user={TRUST_USER}&sslmode=disable"), Some(0)),
        ("npgsql", format!("Host=127.0.0.1:{bad},127.0.0.1:{port};Username={TRUST_USER};Database=postgres;SSL Mode=Disable"), Some(0)),
        ("pgx", format!("postgres://{TRUST_USER}@127.0.0.1:{bad},127.0.0.1:{port}/postgres?sslmode=disable"), Some(0)),
        ("asyncpg", format!("postgresql://{TRUST_USER}@127.0.0.1:{bad},127.0.0.1:{port}/postgres?sslmode=disable"), Some(3)),
        ("libpq", format!("postgresql://{TRUST_USER}@127.0.0.1:{bad},127.0.0.1:{port}/postgres?sslmode=disable"), Some(3)),
    ];
    for (driver, string, code) in &cases {
        let out = run(driver, string);
        assert_eq!(out.status.code(), *code, "{driver}: {}", stderr_of(&out));
    }
}

/// node-postgres and Npgsql ask for TLS over a Unix socket too, where the server has none: their
/// require fails there (libpq never asks, so its require works over a socket).
#[test]
fn tls_over_a_unix_socket_is_asked_for_as_the_driver_asks() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let (dir, port) = (cluster.socket_dir.display().to_string(), cluster.port);
    let npgsql = |mode: &str| {
        format!("Host={dir};Port={port};Username={TRUST_USER};Database=postgres;SSL Mode={mode}")
    };
    let out = run("npgsql", &npgsql("Require"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("does not support TLS"),
        "{}",
        stderr_of(&out)
    );
    let out = run("npgsql", &npgsql("Prefer"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let libpq = format!("host={dir} port={port} user={TRUST_USER} dbname=postgres sslmode=require");
    let out = run("libpq", &libpq);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// pgx resolves every host before it connects: a name that does not resolve fails the connect
/// even when the first host is up; libpq connects to the first host.
#[test]
fn pgx_fails_on_a_host_that_does_not_resolve_wherever_it_is_listed() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let port = cluster.port;
    let url = format!("postgres://{TRUST_USER}@127.0.0.1:{port},no-such-host.invalid:{port}/postgres?sslmode=disable");
    let out = run("pgx", &url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("not resolvable"),
        "{}",
        stderr_of(&out)
    );
    let out = run("libpq", &url);
    assert!(out.status.success(), "{}", stderr_of(&out));
}
