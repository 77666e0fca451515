//! `--max-lag` against a real primary and streaming standby (pg_basebackup -R), checked as an
//! unprivileged role (trust_user: no superuser, no pg_read_all_stats); `--stable` against a
//! server that goes away right after it first accepts.

use std::time::{Duration, Instant};

use crate::support::*;

fn primary_and_standby() -> (Cluster, Cluster) {
    let mut primary = Cluster::new("");
    primary.start_ready();
    let mut standby = Cluster::standby_of(&primary);
    standby.start_ready();
    (primary, standby)
}

fn as_app(cluster: &Cluster) -> String {
    format!(
        "host=127.0.0.1 port={} dbname=postgres user={TRUST_USER}",
        cluster.port
    )
}

fn query(cluster: &Cluster, sql: &str) -> String {
    let out = cluster.psql("postgres", sql);
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn once(cluster: &Cluster, extra: &[&str]) -> (Option<i32>, String) {
    let out = pgwait()
        .args(["--once", "--log-format", "json"])
        .args(extra)
        .args(["-d", &as_app(cluster)])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The standby has replayed everything the primary wrote so far.
fn caught_up(primary: &Cluster, standby: &Cluster) {
    let target = query(primary, "SELECT pg_current_wal_lsn()");
    let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'");
    assert!(
        eventually(Duration::from_secs(30), || query(standby, &sql) == "t"),
        "the standby did not catch up"
    );
}

#[test]
fn a_caught_up_standby_and_a_primary_are_ready_and_an_idle_primary_is_no_lag() {
    let (primary, standby) = primary_and_standby();
    query(&primary, "CREATE TABLE t AS SELECT 1 AS x");
    caught_up(&primary, &standby);
    for cluster in [&standby, &primary] {
        let (code, log) = once(cluster, &["--max-lag", "16MB,5s"]);
        assert_eq!(code, Some(0), "{log}");
        assert!(
            log.contains("\"lag_bytes\":0") && log.contains("\"lag_ms\":0"),
            "{log}"
        );
        assert!(log.contains("max-lag 16 MiB, 5000ms"), "{log}");
    }
    // Idle for longer than the time bound: the last replayed transaction is old, but nothing
    // is waiting to be replayed, so it is not lag.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, log) = once(&standby, &["--max-lag", "1s"]);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_paused_replay_far_behind_is_lagging_until_it_resumes() {
    let (primary, standby) = primary_and_standby();
    query(&standby, "SELECT pg_wal_replay_pause()");
    query(
        &primary,
        "CREATE TABLE big AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) g",
    );
    let behind = "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) > 32 * 1024 * 1024";
    assert!(
        eventually(Duration::from_secs(30), || query(&standby, behind) == "t"),
        "the standby did not receive the WAL"
    );
    let (code, log) = once(&standby, &["--max-lag", "16MB"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("\"class\":\"lagging\"") && log.contains("\"lag_bytes\":"),
        "{log}"
    );
    let (code, log) = once(&standby, &["--max-lag", "5s"]);
    assert_eq!(code, Some(1), "{log}");
    // Waiting: ready once replay resumes and catches up.
    let waiting = Running::spawn(
        pgwait()
            .args(["-t", "60s", "--max-lag", "16MB", "-d"])
            .arg(as_app(&standby)),
    );
    waiting.expect(
        "max-lag 16 MiB not met: standby is",
        Duration::from_secs(10),
    );
    let resumed = Instant::now();
    query(&standby, "SELECT pg_wal_replay_resume()");
    let (status, log) = waiting.finish(Duration::from_secs(60));
    assert!(status.success(), "{log}");
    // bench/run.py measures how soon; here only that it came within the bound of a resume.
    assert!(resumed.elapsed() < Duration::from_secs(30), "{log}");
}

#[test]
fn a_standby_whose_primary_is_gone_is_not_streaming() {
    let (mut primary, standby) = primary_and_standby();
    primary.stop();
    // A receiver may be trying to reconnect for a moment: the verdict settles on not streaming.
    let mut last = String::new();
    let settled = eventually(Duration::from_secs(20), || {
        let (code, log) = once(&standby, &["--max-lag", "16MB"]);
        last = log;
        code == Some(1) && last.contains("not streaming")
    });
    assert!(settled, "{last}");
    // Without --max-lag the standby is just a working server.
    let (code, log) = once(&standby, &[]);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn stable_waits_out_a_server_that_goes_away_after_it_first_accepts() {
    let mut cluster = Cluster::new("");
    let mut waiting = Running::spawn(
        pgwait()
            .args(["-v", "-t", "60s", "--stable-for", "2s", "-d"])
            .arg(as_app(&cluster)),
    );
    // Up for about a second (the postgres image's init phase does this), then down.
    cluster.start_ready();
    waiting.expect("checking that it stays up", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(800));
    assert!(waiting.is_running(), "released during the first up phase");
    cluster.stop();
    waiting.expect("counting again", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.is_running(), "released while the server was down");
    // Up for good: released once the up phase spans 2 s.
    cluster.start_ready();
    let up = Instant::now();
    let (status, log) = waiting.finish(Duration::from_secs(30));
    assert!(status.success(), "{log}");
    assert!(up.elapsed() >= Duration::from_millis(1900), "{log}");
    assert!(log.contains("ready after"), "{log}");
}
