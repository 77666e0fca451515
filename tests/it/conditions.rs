//! Readiness conditions against a real server: each becomes true while pgwait waits, and the
//! command starts only after the change commits; names are never SQL; bad conditions fail as
//! documented.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn args(cluster: &Cluster) -> Vec<String> {
    cluster.tcp_args(TRUST_USER)
}

fn sql(cluster: &Cluster, statement: &str) {
    let out = cluster.psql("postgres", statement);
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A psql session kept open, so a transaction can stay uncommitted while pgwait looks.
fn session(cluster: &Cluster) -> Child {
    Command::new(pg().bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&cluster.socket_dir)
        .args([
            "-p",
            &cluster.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// pgwait gating an app that records whether `check` (SQL) succeeded when it started.
fn gated(cluster: &Cluster, condition: &[&str], check: &str) -> (Running, std::path::PathBuf) {
    let marker = cluster.root.join(format!("marker-{}", free_port()));
    let app = format!(
        "{} -X -A -t -h {} -p {} -U postgres -d postgres -c \"{check}\" > {} 2>&1",
        pg().bin.join("psql").display(),
        cluster.socket_dir.display(),
        cluster.port,
        marker.display()
    );
    let child = Running::spawn(
        pgwait()
            .args(args(cluster))
            .args(condition)
            .args(["-t", "60s", "-v", "--", "sh", "-c", &app]),
    );
    (child, marker)
}

fn finish(child: Running) -> (Option<i32>, String) {
    let (status, log) = child.finish(Duration::from_secs(30));
    (status.code(), log)
}

/// It made three more attempts (`-v` lines) and is still waiting.
fn still_waiting(child: &mut Running) {
    child.expect_more("attempt ", 3, Duration::from_secs(20));
    assert!(child.is_running(), "pgwait did not wait");
}

#[test]
fn a_table_created_in_a_transaction_is_waited_for_until_it_commits() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let (mut child, marker) = gated(
        &cluster,
        &["--table", "app.Widgets"],
        "select count(*) from app.widgets",
    );
    let mut psql = session(&cluster);
    let stdin = psql.stdin.as_mut().unwrap();
    stdin
        .write_all(
            b"BEGIN; CREATE SCHEMA app; CREATE TABLE app.widgets (id int); SELECT pg_sleep(0);\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    still_waiting(&mut child);
    psql.stdin
        .as_mut()
        .unwrap()
        .write_all(b"COMMIT;\n")
        .unwrap();
    drop(psql.stdin.take());
    psql.wait().unwrap();
    let (code, log) = finish(child);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "0",
        "{log}"
    );
    assert!(log.contains("not met"), "{log}");
    assert!(log.contains("checked table app.widgets"), "{log}");
}

#[test]
fn an_extension_and_a_query_are_waited_for_through_schema_and_data() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let (mut child, marker) = gated(
        &cluster,
        &[
            "--extension",
            "pg_trgm",
            "--query",
            "select count(*) > 0 from jobs",
        ],
        "select count(*) from jobs",
    );
    still_waiting(&mut child);
    sql(&cluster, "CREATE EXTENSION pg_trgm");
    still_waiting(&mut child);
    sql(
        &cluster,
        "CREATE TABLE jobs (id int); GRANT SELECT ON jobs TO trust_user",
    );
    still_waiting(&mut child);
    sql(&cluster, "INSERT INTO jobs VALUES (1)");
    let (code, log) = finish(child);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "1",
        "{log}"
    );
    // Each stage said what it was waiting for.
    assert!(log.contains("extension pg_trgm not met"), "{log}");
    assert!(log.contains("42P01"), "{log}");
    assert!(log.contains("--query not met: false"), "{log}");
    assert!(log.contains("checked extension pg_trgm, --query"), "{log}");
}

#[test]
fn a_syntax_error_stops_and_missing_privileges_stop_unless_asked() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = pgwait()
        .args(args(&cluster))
        .args(["--query", "selec 1", "-t", "30s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("42601") && log.contains("syntax error"),
        "{log}"
    );

    sql(&cluster, "CREATE TABLE secret (id int)");
    let query = ["--query", "select true from secret union all select true"];
    let out = pgwait()
        .args(args(&cluster))
        .args(query)
        .args(["-t", "30s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("42501") && log.contains("--retry-on privileges"),
        "{log}"
    );

    let mut child = Running::spawn(pgwait().args(args(&cluster)).args(query).args([
        "--retry-on",
        "privileges",
        "-t",
        "60s",
        "-v",
    ]));
    still_waiting(&mut child);
    sql(&cluster, "GRANT SELECT ON secret TO trust_user");
    let (code, log) = finish(child);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn names_are_never_sql_and_once_reports_a_condition_not_met() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    sql(&cluster, "CREATE TABLE y (id int)");
    // Unquoted, it is not a name at all: exit 2 before connecting.
    let out = pgwait()
        .args(args(&cluster))
        .args(["--table", "x; drop table y"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(log.contains("--table"), "{log}");
    // Quoted, it is a name that does not exist: not ready, and y is still there.
    for name in ["\"x; drop table y\"", "\"x'); drop table y; --\""] {
        let out = pgwait()
            .args(args(&cluster))
            .args(["--table", name, "--once"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains("not met"), "{log}");
    }
    let out = cluster.psql("postgres", "select count(*) from y");
    assert!(out.status.success(), "table y was dropped");
    let out = pgwait()
        .args(args(&cluster))
        .args(["--query", " "])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = pgwait()
        .args(args(&cluster))
        .args(["--once", "-q"])
        .env("PGWAIT_TABLE", "y, pg_catalog.pg_class")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The official image's init phase: a server reachable only over its socket, then restarted.
#[test]
fn a_server_listening_on_the_socket_only_is_ready_with_a_warning() {
    let mut cluster = Cluster::new("");
    cluster.listen_addresses = String::new();
    cluster.start_ready();
    let socket: Vec<String> = vec![
        "-h".into(),
        cluster.socket_dir.to_str().unwrap().into(),
        "-p".into(),
        cluster.port.to_string(),
    ];
    for format in ["text", "json"] {
        let out = pgwait()
            .args(&socket)
            .args([
                "-U",
                TRUST_USER,
                "-d",
                "postgres",
                "--once",
                "--log-format",
                format,
            ])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{log}");
        assert!(
            log.contains("listens on no TCP address") && log.contains("-h localhost"),
            "{log}"
        );
        if format == "json" {
            assert!(log.contains("\"event\":\"socket_only\""), "{log}");
        }
    }
    // Once it listens on TCP too, no warning.
    cluster.stop();
    cluster.listen_addresses = "127.0.0.1".into();
    cluster.start_ready();
    let out = pgwait()
        .args(&socket)
        .args(["-U", TRUST_USER, "-d", "postgres", "--once"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(!log.contains("warning"), "{log}");
}

#[test]
fn a_big_query_reply_is_read_as_a_stream_up_to_the_session_bound() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    // 5 MB of rows: only the first is kept, the rest streams past.
    let big = "select repeat('x', 1000) from generate_series(1, 5000)";
    let out = pgwait()
        .args(args(&cluster))
        .args(["--query", big, "--once"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Past 16 MiB the reply is cut, with a hint rather than a mystery.
    let huge = "select repeat('x', 1000) from generate_series(1, 20000)";
    let out = pgwait()
        .args(args(&cluster))
        .args(["--query", huge, "--once"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("LIMIT 1"), "{log}");
}
