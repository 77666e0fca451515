//! libpq 18's rules that need a real server to show: `require_auth` judged before any password
//! is sent, `requirepeer` over the Unix socket, `load_balance_hosts`, and where a host list
//! stops. (The differential test compares the same rules with libpq itself on a recording peer.)

use std::io::Write;
use std::process::Output;

use crate::support::peer::{error_response, fake_server, read_startup};
use crate::support::*;

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn once(conninfo: &str) -> Output {
    pgwait()
        .args(["--once", "-d", conninfo])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap()
}

#[test]
fn require_auth_refuses_what_the_server_asks_for_before_sending_anything() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let base = format!("host=127.0.0.1 port={} dbname=postgres", cluster.port);
    let scram = format!("{base} user={SCRAM_USER} password={SCRAM_PASSWORD}");
    let md5 = format!("{base} user={MD5_USER} password={MD5_PASSWORD}");
    let trust = format!("{base} user={TRUST_USER}");
    let allowed = [
        format!("{scram} require_auth=scram-sha-256"),
        format!("{scram} require_auth=!password,!md5"),
        format!("{md5} require_auth=md5"),
        format!("{md5} require_auth=password,md5"),
        format!("{trust} require_auth=none"),
        format!("{trust} require_auth=!password"),
        format!("{trust} require_auth="),
    ];
    for conninfo in &allowed {
        let out = once(conninfo);
        assert!(out.status.success(), "{conninfo}: {}", stderr_of(&out));
    }
    let refused = [
        (format!("{scram} require_auth=password"), "asked for SASL"),
        (
            format!("{scram} require_auth=!scram-sha-256"),
            "asked for SASL",
        ),
        (
            format!("{md5} require_auth=scram-sha-256"),
            "asked for MD5 password",
        ),
        (
            format!("{trust} require_auth=scram-sha-256"),
            "without authenticating",
        ),
        (
            format!("{trust} require_auth=!none"),
            "without authenticating",
        ),
    ];
    for (conninfo, words) in &refused {
        let before = cluster.log().len();
        let out = once(conninfo);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{conninfo}: {err}");
        assert!(
            err.contains(words) && err.contains("require_auth="),
            "{conninfo}: {err}"
        );
        assert!(
            !err.contains(SCRAM_PASSWORD) && !err.contains(MD5_PASSWORD),
            "{err}"
        );
        // Nothing was sent: the server saw no wrong password, only a client that went away.
        let log = cluster.log()[before..].to_string();
        assert!(!log.contains("authentication failed"), "{conninfo}: {log}");
    }
    let out = once(&format!("{scram} require_auth=password,!md5"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cannot be mixed"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn requirepeer_checks_the_user_the_server_runs_as_over_the_socket() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    // The server runs as postgres when the tests run as root, else as the current user.
    let owner = match pg().run_as {
        Some(_) => "postgres".to_string(),
        None => String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string(),
    };
    let socket = format!(
        "host={} port={} dbname=postgres user={TRUST_USER}",
        cluster.socket_dir.display(),
        cluster.port
    );
    let out = once(&format!("{socket} requirepeer={owner}"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = once(&format!("{socket} requirepeer=not_{owner}"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&format!("runs as \"{owner}\"")), "{err}");
    // Over TCP, requirepeer does not apply (libpq checks only Unix sockets).
    let tcp = format!(
        "host=127.0.0.1 port={} dbname=postgres user={TRUST_USER} requirepeer=nobody_at_all",
        cluster.port
    );
    let out = once(&tcp);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// A peer that answers every startup with `sqlstate` and closes.
fn answering(sqlstate: &'static str) -> u16 {
    let (port, _) = fake_server(move |mut stream| {
        if read_startup(&mut stream) {
            let reply = error_response(&[(b'S', "FATAL"), (b'C', sqlstate), (b'M', "fake")]);
            let _ = stream.write_all(&reply);
        }
    });
    port
}

#[test]
fn a_host_list_moves_on_only_where_libpq_does() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let list = |first: u16, app: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={first},{} dbname=postgres user={TRUST_USER} application_name={app} sslmode=disable",
            cluster.port
        )
    };
    // Not yet (57P03) and nothing listening: on to the next host, which is ready.
    let closed = free_port();
    for (first, app) in [
        (answering("57P03"), "after-57p03"),
        (closed, "after-refused"),
    ] {
        let out = once(&list(first, app));
        assert!(out.status.success(), "{app}: {}", stderr_of(&out));
    }
    // Too many connections, a bad login, no database: the app's libpq stops at the first
    // host, so pgwait does not report the second one as ready.
    for (sqlstate, code) in [("53300", 1), ("28P01", 3), ("3D000", 3)] {
        let app = format!("after-{sqlstate}");
        let out = once(&list(answering(sqlstate), &app));
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(code), "{sqlstate}: {err}");
        assert!(err.contains(sqlstate), "{err}");
        assert!(
            !cluster.log().contains(&format!("application_name={app}")),
            "{sqlstate}"
        );
    }
}

#[test]
fn load_balance_hosts_random_tries_every_host_in_some_order() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    // A server that is "not yet" (57P03) first, the ready one second: in order, every run
    // meets the first; shuffled, some runs go straight to the ready one.
    let (starting, met) = fake_server(|mut stream| {
        if read_startup(&mut stream) {
            let reply = error_response(&[(b'S', "FATAL"), (b'C', "57P03"), (b'M', "starting")]);
            let _ = stream.write_all(&reply);
        }
    });
    let conninfo = |mode: &str| {
        format!(
            "host=127.0.0.1,127.0.0.1 port={starting},{} dbname=postgres user={TRUST_USER} sslmode=disable load_balance_hosts={mode}",
            cluster.port
        )
    };
    let runs = 16;
    for mode in ["disable", "random"] {
        met.store(0, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..runs {
            let out = once(&conninfo(mode));
            assert!(out.status.success(), "{mode}: {}", stderr_of(&out));
        }
        let met = met.load(std::sync::atomic::Ordering::SeqCst);
        match mode {
            "disable" => assert_eq!(met, runs, "in order, every run meets the first host"),
            // Each run has an even chance; all 16 alike has odds of 1 in 32768.
            _ => assert!(
                0 < met && met < runs,
                "{met} of {runs} runs met the first host"
            ),
        }
    }
    let out = once(&conninfo("sometimes"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}
