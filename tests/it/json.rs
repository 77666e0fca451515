//! `--log-format json` against real servers: every stderr line is one JSON object with the
//! documented fields, the events come in the order the scenario implies, and no line holds a
//! password. Also: a `--retry-on auth` wait says why it waits, in both formats.

use std::process::Output;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const WRONG: &str = "Wr0ng-Js0n-Passw0rd";

fn tcp(cluster: &Cluster, user: &str, db: &str) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &cluster.port.to_string(),
        "-U",
        user,
        "-d",
        db,
    ]
    .map(String::from)
    .to_vec()
}

/// Parses every stderr line; each must be one object with ts, level, event and msg.
fn parsed(out: &Output) -> Vec<Value> {
    parsed_text(&String::from_utf8_lossy(&out.stderr))
}

/// Every line of `stderr` as one JSON object, none holding a password.
fn parsed_text(stderr: &str) -> Vec<Value> {
    assert!(
        !stderr.contains(WRONG) && !stderr.contains(SCRAM_PASSWORD),
        "{stderr}"
    );
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
            let ts = value["ts"]
                .as_str()
                .unwrap_or_else(|| panic!("no ts: {line}"));
            assert!(
                ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
                "ts not RFC 3339 UTC with milliseconds: {line}"
            );
            let level = value["level"].as_str().unwrap_or_default();
            assert!(
                ["debug", "info", "warn", "error"].contains(&level),
                "{line}"
            );
            assert!(
                value["event"].is_string() && value["msg"].is_string(),
                "{line}"
            );
            value
        })
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

/// The events with repeats of the same name folded: the shape of the story.
fn story(events: &[Value]) -> Vec<&str> {
    let mut names = names(events);
    names.dedup();
    names
}

fn json_pgwait() -> std::process::Command {
    let mut cmd = pgwait();
    cmd.args(["--log-format", "json"]);
    cmd
}

#[test]
fn ready_at_once_is_one_ready_event_with_its_figures() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = json_pgwait()
        .args(tcp(&cluster, SCRAM_USER, "postgres"))
        .env("PGPASSWORD", SCRAM_PASSWORD)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events = parsed(&out);
    assert_eq!(names(&events), ["ready"]);
    let ready = &events[0];
    assert_eq!(ready["level"], "info");
    assert_eq!(ready["attempts"], 1);
    assert_eq!(ready["address"], format!("127.0.0.1:{}", cluster.port));
    assert_eq!(
        ready["target"],
        format!("127.0.0.1:{}/postgres", cluster.port)
    );
    assert!(ready["elapsed_ms"].as_u64().unwrap() < 30_000);
}

#[test]
fn refused_then_ready_with_verbose_start_and_exec() {
    let mut cluster = Cluster::new("");
    let running = Running::spawn(
        json_pgwait()
            .args(tcp(&cluster, TRUST_USER, "postgres"))
            .args(["-v", "--", "true"]),
    );
    running.expect("\"attempt_failed\"", Duration::from_secs(10));
    cluster.start();
    let (status, stderr) = running.finish(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let events = parsed_text(&stderr);
    let story = story(&events);
    assert_eq!(story.first(), Some(&"start"), "{story:?}");
    assert_eq!(story[1], "attempt_failed", "{story:?}");
    assert_eq!(&story[story.len() - 2..], ["ready", "exec"], "{story:?}");
    let first = &events[1];
    assert_eq!(
        (first["class"].as_str(), first["reason"].as_str()),
        (Some("refused"), Some("transient"))
    );
    assert!(
        first["delay_ms"].is_u64() && first["attempts"] == 1,
        "{first}"
    );
    // Nothing answered a refused connect: no answer time.
    assert!(first.get("answer_us").is_none(), "{first}");
    let ready = events.iter().find(|e| e["event"] == "ready").unwrap();
    let failures = events
        .iter()
        .filter(|e| e["event"] == "attempt_failed")
        .count();
    assert_eq!(ready["attempts"].as_u64().unwrap() as usize, failures + 1);
    assert_eq!(events.last().unwrap()["program"], "true");
}

#[test]
fn a_57p03_server_until_the_deadline_ends_not_ready_with_a_hint() {
    let mut cluster = Cluster::new("hot_standby = off\n");
    cluster.write_data_file("standby.signal", "", 0o600);
    cluster.start();
    assert!(
        eventually(Duration::from_secs(20), || cluster
            .log()
            .contains("entering standby mode")),
        "{}",
        cluster.log()
    );
    let out = json_pgwait()
        .args(tcp(&cluster, TRUST_USER, "postgres"))
        .args(["-t", "1500ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let events = parsed(&out);
    assert_eq!(
        story(&events),
        ["attempt_failed", "not_ready"],
        "{events:?}"
    );
    let failed = &events[0];
    assert_eq!(
        (failed["class"].as_str(), failed["sqlstate"].as_str()),
        (Some("not_ready"), Some("57P03"))
    );
    // The server answered: its answer time is the policy's load signal, and it is reported.
    let answer = failed["answer_us"]
        .as_u64()
        .expect("answer_us on a server's rejection");
    assert!(answer < 10_000_000, "{failed}");
    let last = events.last().unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["sqlstate"], "57P03");
    assert!(
        last["hint"]
            .as_str()
            .unwrap()
            .contains("not accepting connections yet"),
        "{last}"
    );
    let elapsed = last["elapsed_ms"].as_u64().unwrap();
    assert!((1500..10_000).contains(&elapsed), "{last}");
    assert!(last["attempts"].as_u64().unwrap() >= 2, "{last}");
}

#[test]
fn refused_until_the_deadline() {
    let port = free_port().to_string();
    let out = json_pgwait()
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "300ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let events = parsed(&out);
    assert_eq!(story(&events), ["attempt_failed", "not_ready"]);
    let last = &events[1];
    assert_eq!(last["class"], "refused");
    assert!(
        (300..5000).contains(&last["elapsed_ms"].as_u64().unwrap()),
        "{last}"
    );
    assert!(last["hint"]
        .as_str()
        .unwrap()
        .contains("nothing is listening"));
}

#[test]
fn a_wrong_password_and_a_missing_database_are_rejected() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = json_pgwait()
        .args(tcp(&cluster, SCRAM_USER, "postgres"))
        .arg("-v")
        .env("PGPASSWORD", WRONG)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let events = parsed(&out);
    assert_eq!(names(&events), ["start", "attempt_failed", "rejected"]);
    let failed = &events[1];
    assert_eq!(
        (
            failed["level"].as_str(),
            failed["reason"].as_str(),
            failed["sqlstate"].as_str()
        ),
        (Some("debug"), Some("permanent"), Some("28P01"))
    );
    assert!(failed.get("delay_ms").is_none(), "{failed}");
    let rejected = &events[2];
    assert_eq!(
        (rejected["class"].as_str(), rejected["level"].as_str()),
        (Some("auth"), Some("error"))
    );
    assert!(rejected["hint"].as_str().unwrap().contains("pg_hba.conf"));

    let out = json_pgwait()
        .args(tcp(&cluster, TRUST_USER, "no_such_db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let events = parsed(&out);
    assert_eq!(names(&events), ["rejected"]);
    assert_eq!(
        (events[0]["class"].as_str(), events[0]["sqlstate"].as_str()),
        (Some("no_database"), Some("3D000"))
    );
}

#[test]
fn a_tls_failure_is_rejected_as_tls() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let conninfo = format!(
        "host=127.0.0.1 port={} user={TRUST_USER} dbname=postgres sslmode=require",
        cluster.port
    );
    let out = json_pgwait().args(["-d", &conninfo]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let events = parsed(&out);
    assert_eq!(names(&events), ["rejected"]);
    assert_eq!(events[0]["class"], "tls");
    assert!(events[0]["msg"]
        .as_str()
        .unwrap()
        .contains("does not support TLS"));
}

#[test]
fn usage_and_configuration_errors_are_json_too() {
    let uri = format!("postgres://app:{WRONG}@[::1/db");
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&[&str], Vars, &str); 4] = [
        (&["--bogus"], &[], "usage_error"),
        (&["-t", "soon"], &[], "config_error"),
        (&["-d", &uri], &[], "config_error"),
        (
            &[],
            &[("PGWAIT_LOG_FORMAT", "json"), ("PGWAIT_TIMEOUT", "soon")],
            "config_error",
        ),
    ];
    for (args, env, event) in cases {
        let mut cmd = if env.is_empty() {
            json_pgwait()
        } else {
            pgwait()
        };
        let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let events = parsed(&out);
        assert_eq!(names(&events), [event], "{args:?}");
        assert_eq!(events[0]["level"], "error");
    }
    // An invalid --log-format itself is reported in text: there is no format to use.
    let out = pgwait().args(["--log-format", "yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("pgwait: invalid value \"yaml\" for --log-format"));
}

#[test]
fn sigterm_while_waiting_is_an_interrupted_event() {
    let port = free_port().to_string();
    let running = Running::spawn(json_pgwait().args(["-h", "127.0.0.1", "-p", &port, "-t", "0"]));
    running.expect("\"attempt_failed\"", Duration::from_secs(10));
    unsafe_kill(running.id(), "TERM");
    let (status, stderr) = running.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(143));
    let events = parsed_text(&stderr);
    assert_eq!(story(&events), ["attempt_failed", "interrupted"]);
    assert_eq!(events.last().unwrap()["signal"], "SIGTERM");
}

/// Starts a wait for a role that does not exist yet, creates it mid-wait, returns stderr.
fn wait_for_role_created_later(format: &str) -> String {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let mut running = Running::spawn(
        pgwait()
            .args(tcp(&cluster, "late_role", "postgres"))
            .args(["--retry-on", "auth", "-t", "60s", "--log-format", format])
            .env("PGPASSWORD", "late-role-pw"),
    );
    // It has been told the role does not exist, and waits on.
    running.expect("28P01", Duration::from_secs(10));
    assert!(running.is_running(), "pgwait ended before the role existed");
    let created = cluster.psql(
        "postgres",
        "CREATE ROLE late_role LOGIN PASSWORD 'late-role-pw'",
    );
    assert!(created.status.success(), "{created:?}");
    let (status, stderr) = running.finish(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("late-role-pw"), "{stderr}");
    stderr
}

#[test]
fn a_retry_on_auth_wait_says_why_it_waits_in_text() {
    let stderr = wait_for_role_created_later("text");
    let lines: Vec<&str> = stderr.lines().collect();
    let why = lines
        .iter()
        .position(|l| l.contains("28P01") && l.contains("(retried: --retry-on auth)"))
        .unwrap_or_else(|| panic!("no line says why pgwait waits:\n{stderr}"));
    let ready = lines
        .iter()
        .position(|l| l.starts_with("pgwait: ready after"))
        .unwrap();
    assert!(why < ready, "{stderr}");
}

#[test]
fn a_retry_on_auth_wait_says_why_it_waits_in_json() {
    let stderr = wait_for_role_created_later("json");
    let events: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(story(&events), ["attempt_failed", "ready"], "{stderr}");
    let why = &events[0];
    assert_eq!(
        (
            why["sqlstate"].as_str(),
            why["class"].as_str(),
            why["reason"].as_str()
        ),
        (Some("28P01"), Some("auth"), Some("retry_on"))
    );
}
