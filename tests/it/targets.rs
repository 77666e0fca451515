//! Several databases at once (`-d` repeated): waited for in parallel under one deadline, ready
//! only when all are; the first permanent failure ends the wait naming its target; every line
//! names its target. Two real servers.

use std::time::{Duration, Instant};

use crate::support::*;

fn conninfo(cluster: &Cluster) -> String {
    format!("host=127.0.0.1 port={} dbname=postgres", cluster.port)
}

#[test]
fn the_command_starts_only_when_every_database_is_ready() {
    let mut first = Cluster::new("");
    let mut second = Cluster::new("");
    first.start_ready();
    let marker = first.root.join("app-started");
    let mut child = Running::spawn(
        pgwait()
            .args([
                "-d",
                &conninfo(&first),
                "-d",
                &conninfo(&second),
                "-U",
                TRUST_USER,
            ])
            .args(["-t", "60s", "--log-format", "json", "-v", "--"])
            .args(["sh", "-c", &format!("date +%s%N > {}", marker.display())]),
    );
    // The second keeps being refused, and the command waits for it.
    child.expect_more("\"class\":\"refused\"", 3, Duration::from_secs(20));
    assert!(child.is_running(), "started before the second database");
    assert!(!marker.exists());
    second.start_ready();
    let second_ready = Instant::now();
    let (status, log) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(marker.exists(), "{log}");
    assert!(second_ready.elapsed() < Duration::from_secs(20));
    let first_label = format!("127.0.0.1:{}/postgres", first.port);
    let second_label = format!("127.0.0.1:{}/postgres", second.port);
    let mut ready = Vec::new();
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let event = value["event"].as_str().unwrap();
        if event != "exec" {
            let target = value["target"]
                .as_str()
                .unwrap_or_else(|| panic!("no target: {line}"));
            assert!(target == first_label || target == second_label, "{line}");
        }
        if event == "ready" {
            ready.push(value["target"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ready.len(), 2, "{log}");
}

#[test]
fn a_wrong_password_on_one_database_ends_the_wait_naming_it() {
    let mut first = Cluster::new("");
    let mut second = Cluster::new("");
    first.start_ready();
    second.start_ready();
    let scram = format!(
        "{} user={SCRAM_USER} password=wrong-password",
        conninfo(&second)
    );
    let started = Instant::now();
    let out = pgwait()
        .args([
            "-d",
            &conninfo(&first),
            "-d",
            &scram,
            "-U",
            TRUST_USER,
            "-t",
            "60s",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(started.elapsed() < Duration::from_secs(10), "{log}");
    let second_label = format!("[127.0.0.1:{}/postgres]", second.port);
    let rejection = log
        .lines()
        .find(|l| l.contains("28P01"))
        .expect("a rejection line");
    assert!(
        rejection.starts_with(&format!("pgwait: {second_label}")),
        "{log}"
    );
    assert!(!log.contains("wrong-password"), "{log}");
    // Text lines name their target when there are several.
    assert!(log.lines().all(|l| l.starts_with("pgwait: [")), "{log}");
}

#[test]
fn at_the_deadline_each_database_not_ready_is_named() {
    let mut first = Cluster::new("");
    let second = Cluster::new("");
    first.start_ready();
    let out = pgwait()
        .args([
            "-d",
            &conninfo(&first),
            "-d",
            &conninfo(&second),
            "-U",
            TRUST_USER,
            "-t",
            "1s",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("[127.0.0.1:{}/postgres] ready", first.port)),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "[127.0.0.1:{}/postgres] not ready after",
            second.port
        )),
        "{log}"
    );
}
