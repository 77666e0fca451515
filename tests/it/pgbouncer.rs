//! Behind a real PgBouncer: its 08P01 for a wrong password or an unknown database fails fast
//! with the right hint, while its 08P01 for a backend that is down is waited out.

use std::time::{Duration, Instant};

use crate::support::bouncer::{Bouncer, DATABASE};
use crate::support::*;

fn through(bouncer: &Bouncer, password: &str, database: &str) -> std::process::Command {
    let mut cmd = pgwait();
    cmd.args(["-h", "127.0.0.1", "-p", &bouncer.port.to_string()])
        .args(["-U", SCRAM_USER, "-d", database])
        .env("PGPASSWORD", password);
    cmd
}

/// A ready server behind a PgBouncer that has served its database once (pgwait got through).
fn served() -> (Cluster, Bouncer) {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let bouncer = Bouncer::start(cluster.port);
    let ok = through(&bouncer, SCRAM_PASSWORD, DATABASE)
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (cluster, bouncer)
}

#[test]
fn a_wrong_password_and_an_unknown_database_fail_fast_with_their_hints() {
    let (_cluster, bouncer) = served();
    let cases = [
        (
            SCRAM_PASSWORD,
            "nosuchdb",
            "no such database",
            "create the database",
        ),
        (
            "wrong-password",
            DATABASE,
            "authentication failed",
            "check the user name and password",
        ),
    ];
    for (password, database, says, hint) in cases {
        let started = Instant::now();
        let out = through(&bouncer, password, database)
            .args(["-t", "30s"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{log}\n{}", bouncer.log());
        assert!(log.contains("08P01") && log.contains(says), "{log}");
        assert!(log.contains(hint), "{log}");
        assert!(!log.contains("still starting"), "{log}");
        assert!(started.elapsed() < Duration::from_secs(10), "{log}");
    }
}

#[test]
fn a_backend_that_is_down_is_waited_for_until_it_comes_up() {
    // PgBouncer has served this database before; now its backend goes away.
    let (mut cluster, bouncer) = served();
    cluster.stop();
    let mut child = Running::spawn(through(&bouncer, SCRAM_PASSWORD, DATABASE).args([
        "-t",
        "60s",
        "--connect-timeout",
        "2s",
        "-v",
    ]));
    // PgBouncer says its backend login is failing, again and again, and pgwait waits on.
    child.expect_more(
        "08P01 server login has been failing",
        2,
        Duration::from_secs(30),
    );
    assert!(
        child.is_running(),
        "pgwait gave up while the backend was down:\n{}",
        bouncer.log()
    );
    cluster.start_ready();
    let (status, log) = child.finish(Duration::from_secs(40));
    assert_eq!(status.code(), Some(0), "{log}\n{}", bouncer.log());
    // While the backend was down PgBouncer said so as 08P01, and pgwait kept waiting.
    assert!(log.contains("08P01 server login has been failing"), "{log}");
    assert!(log.contains("retrying in"), "{log}");
    assert!(log.contains("ready after"), "{log}");
}
