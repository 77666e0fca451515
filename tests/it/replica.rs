//! target_session_attrs against a real primary and a streaming standby (pg_basebackup -R).

use std::time::Duration;

use crate::support::*;

fn primary_and_standby() -> (Cluster, Cluster) {
    let mut primary = Cluster::new("");
    primary.start_ready();
    let mut standby = Cluster::standby_of(&primary);
    standby.start_ready();
    assert_eq!(
        String::from_utf8_lossy(
            &standby
                .psql("postgres", "select pg_is_in_recovery()")
                .stdout
        )
        .trim(),
        "t",
        "the standby is not in recovery"
    );
    (primary, standby)
}

fn hosts(clusters: &[&Cluster]) -> (String, String) {
    let hosts = vec!["127.0.0.1"; clusters.len()].join(",");
    let ports = clusters
        .iter()
        .map(|c| c.port.to_string())
        .collect::<Vec<_>>()
        .join(",");
    (hosts, ports)
}

#[test]
fn read_write_skips_the_standby_and_picks_the_primary() {
    let (primary, standby) = primary_and_standby();
    let (h, p) = hosts(&[&standby, &primary]);
    let conninfo = format!(
        "host={h} port={p} user={TRUST_USER} dbname=postgres target_session_attrs=read-write"
    );
    let out = pgwait()
        .args(["-v", "--once", "-d", &conninfo])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("ready after") && log.contains(&format!("127.0.0.1:{}", primary.port)),
        "{log}"
    );
    for (attrs, expect) in [
        ("standby", standby.port),
        ("prefer-standby", standby.port),
        ("primary", primary.port),
        ("read-only", standby.port),
    ] {
        let conninfo = format!(
            "host={h} port={p} user={TRUST_USER} dbname=postgres target_session_attrs={attrs}"
        );
        let (h2, p2) = hosts(&[&primary, &standby]);
        let reversed = conninfo.replace(
            &format!("host={h} port={p}"),
            &format!("host={h2} port={p2}"),
        );
        for c in [conninfo, reversed] {
            let out = pgwait().args(["--once", "-d", &c]).output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{attrs}: {log}");
            assert!(
                log.contains(&format!("127.0.0.1:{expect}")),
                "{attrs} picked the wrong server: {log}"
            );
        }
    }
}

#[test]
fn prefer_standby_takes_the_primary_when_no_standby_exists() {
    let mut primary = Cluster::new("");
    primary.start_ready();
    let conninfo = format!("host=127.0.0.1 port={} user={TRUST_USER} dbname=postgres target_session_attrs=prefer-standby", primary.port);
    let out = pgwait().args(["--once", "-d", &conninfo]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn read_write_against_only_a_standby_waits_for_its_promotion() {
    let (primary, standby) = primary_and_standby();
    let conninfo = format!(
        "host=127.0.0.1 port={} user={TRUST_USER} dbname=postgres target_session_attrs=read-write",
        standby.port
    );
    let mut child = Running::spawn(pgwait().args(["-t", "60s", "-v", "-d", &conninfo]));
    child.expect_more("read-only server", 3, Duration::from_secs(20));
    assert!(child.is_running(), "pgwait accepted a read-only standby");
    drop(primary);
    standby.promote();
    let (status, log) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(
        log.contains("is a read-only server (waiting for read-write)"),
        "{log}"
    );
}
