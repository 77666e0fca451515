//! Credentials that change while pgwait waits: a rotated password file or `.pgpass` is read
//! again before the next attempt (and the log says so, never what they are); an empty password
//! file is no password, as in libpq. Against a real server with SCRAM.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::*;

fn scram_args(cluster: &Cluster) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &cluster.port.to_string(),
        "-U",
        SCRAM_USER,
        "-d",
        "postgres",
    ]
    .map(String::from)
    .to_vec()
}

/// Starts pgwait with `file_arg` while the server is down, writes `rotated` into `path`, starts
/// the server, and returns pgwait's exit code and log.
fn rotate_during_wait(
    cluster: &mut Cluster,
    file_args: &[(&str, &str)],
    env: &[(&str, &str)],
    path: &std::path::Path,
    rotated: &str,
) -> (Option<i32>, String) {
    let mut cmd = pgwait();
    cmd.args(scram_args(cluster)).args(["-t", "60s", "-v"]);
    for (flag, value) in file_args {
        cmd.args([flag, value]);
    }
    let running = Running::spawn(cmd.envs(env.iter().copied()));
    // It is waiting with the old password (the server is down: refused).
    running.expect("connection refused", Duration::from_secs(10));
    // Replaced atomically, as a Kubernetes Secret update does.
    let next = path.with_extension("next");
    std::fs::write(&next, rotated).unwrap();
    std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&next, path).unwrap();
    // The next attempt re-reads it (and says so) before the server is there to accept it.
    running.expect("credentials changed", Duration::from_secs(10));
    cluster.start_ready();
    let (status, log) = running.finish(Duration::from_secs(30));
    (status.code(), log)
}

#[test]
fn a_password_file_rotated_during_the_wait_is_used() {
    let mut cluster = Cluster::new("");
    let path = cluster.root.join("db-password");
    std::fs::write(&path, "stale-password\n").unwrap();
    let flag = path.to_str().unwrap();
    let (code, log) = rotate_during_wait(
        &mut cluster,
        &[("--password-file", flag)],
        &[],
        &path,
        &format!("{SCRAM_PASSWORD}\n"),
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("credentials changed: password file"), "{log}");
    assert!(
        !log.contains(SCRAM_PASSWORD) && !log.contains("stale-password"),
        "{log}"
    );
}

#[test]
fn a_pgpass_rotated_during_the_wait_is_used() {
    let mut cluster = Cluster::new("");
    let path = cluster.root.join("pgpass");
    std::fs::write(&path, "*:*:*:*:stale-password\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, log) = rotate_during_wait(
        &mut cluster,
        &[],
        &[("PGPASSFILE", path.to_str().unwrap())],
        &path,
        &format!("*:*:*:{SCRAM_USER}:{SCRAM_PASSWORD}\n"),
    );
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("credentials changed"), "{log}");
    assert!(
        !log.contains(SCRAM_PASSWORD) && !log.contains("stale-password"),
        "{log}"
    );
}

#[test]
fn an_empty_password_file_sends_no_password() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let path = cluster.root.join("empty-password");
    std::fs::write(&path, "").unwrap();
    let out = pgwait()
        .args(scram_args(&cluster))
        .args(["--password-file", path.to_str().unwrap(), "-t", "10s"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    // Refused on our side, as libpq does, rather than an empty password rejected by the server.
    assert!(log.contains("none is set"), "{log}");
    assert!(!log.contains("28P01"), "{log}");
}
