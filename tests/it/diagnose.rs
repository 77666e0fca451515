//! `pgwait --diagnose` against each situation of the seed article's checklist, built for real:
//! a healthy server, one on another port, one on one address family, SYNs dropped in a network
//! namespace, listen_addresses on loopback reached at another address, a `hostnossl … reject`
//! with sslmode=disable, a wrong password, an HTTP server on the port, a name that does not
//! resolve, a standby, channel binding against a cleartext method. Each report is read in both
//! formats; no password appears in either.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::tls::tls_cluster;

/// One report line: (check, status, finding, hint).
type Line = (String, String, String, Option<String>);

/// Runs `--diagnose` in both formats with `args` and `env`: the exit code (the same for both)
/// and the JSON lines, after checking that the text report says the same and no secret shows.
fn diagnose(args: &[&str], env: &[(&str, &str)], secrets: &[&str]) -> (Option<i32>, Vec<Line>) {
    let run = |json: bool| -> Output {
        let mut cmd = pgwait();
        cmd.arg("--diagnose").args(args).envs(env.iter().copied());
        if json {
            cmd.args(["--log-format", "json"]);
        }
        cmd.output().unwrap()
    };
    let text = run(false);
    let json = run(true);
    let (stdout, text_out) = (
        String::from_utf8_lossy(&json.stdout).into_owned(),
        String::from_utf8_lossy(&text.stdout).into_owned(),
    );
    for out in [&text, &json] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in secrets {
            assert!(!all.contains(secret), "{secret:?} leaked:\n{all}");
        }
    }
    assert_eq!(
        text.status.code(),
        json.status.code(),
        "{text_out}\n{stdout}"
    );
    let lines: Vec<Line> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let s = |k: &str| v[k].as_str().map(str::to_string);
            (
                s("check").unwrap(),
                s("status").unwrap(),
                s("finding").unwrap(),
                s("hint"),
            )
        })
        .collect();
    // The text report has the same checks, in the same order, with the same findings (but
    // for the times measured, which differ between the two runs).
    let rows: Vec<String> = text_out
        .lines()
        .filter(|l| l.starts_with("  ") && !l[2..].starts_with(' '))
        .map(|l| untimed(l.trim_start()))
        .collect();
    let want: Vec<String> = lines
        .iter()
        .map(|(check, status, finding, _)| untimed(&format!("{status:<5} {check:<10} {finding}")))
        .collect();
    assert_eq!(rows, want, "{text_out}");
    assert_eq!(
        lines.last().map(|l| l.0.as_str()),
        Some("verdict"),
        "{stdout}"
    );
    (text.status.code(), lines)
}

/// `text` with each measured time (`12.3 ms`) replaced by `T ms`.
fn untimed(text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let timed = words.get(i + 1).is_some_and(|next| next.starts_with("ms"))
            && word.chars().all(|c| c.is_ascii_digit() || c == '.');
        out.push(if timed { "T" } else { word });
    }
    out.join(" ")
}

/// The lines of one check.
fn of<'a>(lines: &'a [Line], check: &str) -> Vec<&'a Line> {
    lines.iter().filter(|l| l.0 == check).collect()
}

/// The one line of `check` whose finding contains `part`, with `status`.
fn expect<'a>(lines: &'a [Line], check: &str, status: &str, part: &str) -> &'a Line {
    lines
        .iter()
        .find(|l| l.0 == check && l.2.contains(part))
        .filter(|l| l.1 == status)
        .unwrap_or_else(|| panic!("no {status} {check} line with {part:?} in {lines:#?}"))
}

fn tcp(cluster: &Cluster, user: &str) -> Vec<String> {
    cluster.tcp_args(user)
}

#[test]
fn a_healthy_server_passes_every_check_and_the_password_never_shows() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let args = tcp(&cluster, SCRAM_USER);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, lines) = diagnose(&args, &[("PGPASSWORD", SCRAM_PASSWORD)], &[SCRAM_PASSWORD]);
    assert_eq!(code, Some(0), "{lines:#?}");
    let settings = expect(&lines, "settings", "ok", "password: set (PGPASSWORD)");
    assert!(
        settings.2.contains("sslmode=prefer (default)"),
        "{settings:?}"
    );
    expect(&lines, "connect", "ok", "connected in");
    expect(
        &lines,
        "tls",
        "ok",
        "offers no TLS; sslmode=prefer: plain text",
    );
    expect(&lines, "auth", "ok", "SASL: SCRAM-SHA-256");
    expect(&lines, "login", "ok", "logged in at");
    let server = expect(&lines, "server", "ok", "PostgreSQL 1");
    assert!(
        server.2.contains("a primary (not in recovery)"),
        "{server:?}"
    );
    expect(&lines, "verdict", "ok", "ready (exit 0)");
    assert!(lines.iter().all(|l| l.1 != "fail"), "{lines:#?}");
}

#[test]
fn a_server_on_another_port_is_found_by_its_socket() {
    let mut cluster = Cluster::new("");
    cluster.extra_socket_dir = Some("/tmp".into());
    cluster.start_ready();
    let wrong = free_port().to_string();
    let (code, lines) = diagnose(
        &["-h", "127.0.0.1", "-p", &wrong, "-U", TRUST_USER],
        &[],
        &[],
    );
    assert_eq!(code, Some(1), "{lines:#?}");
    expect(
        &lines,
        "connect",
        "fail",
        &format!("127.0.0.1:{wrong}: refused"),
    );
    let listeners = expect(
        &lines,
        "listeners",
        "warn",
        &format!(
            "a server listens on port {} here (/tmp/.s.PGSQL.{})",
            cluster.port, cluster.port
        ),
    );
    assert!(
        listeners
            .3
            .as_deref()
            .unwrap_or("")
            .contains("another port"),
        "{listeners:?}"
    );
    expect(
        &lines,
        "verdict",
        "fail",
        "not ready (exit 1): connection refused",
    );
}

#[test]
fn localhost_is_tried_on_both_families_and_the_missing_one_named() {
    let mut cluster = Cluster::new("");
    cluster.listen_addresses = "127.0.0.1".into();
    cluster.start_ready();
    let port = cluster.port.to_string();
    let (code, lines) = diagnose(
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "-U",
            TRUST_USER,
            "-d",
            "postgres",
        ],
        &[],
        &[],
    );
    assert_eq!(
        code,
        Some(0),
        "libpq goes on to the address that works: {lines:#?}"
    );
    expect(
        &lines,
        "connect",
        "fail",
        &format!("localhost at [::1]:{port}: refused"),
    );
    expect(
        &lines,
        "connect",
        "ok",
        &format!("localhost at 127.0.0.1:{port}: connected"),
    );
}

#[test]
fn loopback_only_listen_addresses_reached_at_another_address_is_named() {
    let mut cluster = Cluster::new("");
    cluster.listen_addresses = "127.0.0.1".into();
    cluster.start_ready();
    let port = cluster.port.to_string();
    // 127.0.0.2 is this machine too, but the server does not listen there.
    let (code, lines) = diagnose(
        &["-h", "127.0.0.2", "-p", &port, "-U", TRUST_USER],
        &[],
        &[],
    );
    assert_eq!(code, Some(1), "{lines:#?}");
    expect(
        &lines,
        "connect",
        "fail",
        &format!("127.0.0.2:{port}: refused"),
    );
    let listeners = expect(
        &lines,
        "listeners",
        "warn",
        &format!("127.0.0.1:{port} accepts, 127.0.0.2:{port} refuses"),
    );
    assert!(
        listeners.3.as_deref().unwrap().contains("listen_addresses"),
        "{listeners:?}"
    );
}

#[test]
fn dropped_syns_are_no_answer_within_the_limit_not_a_hang() {
    // A private network namespace whose firewall drops every SYN to the port.
    let script = r#"set -e; ip link set lo up
nft "add table inet t; add chain inet t c { type filter hook input priority 0; }; add rule inet t c tcp dport 5432 drop"
exec "$0" --diagnose -h 127.0.0.1 -p 5432 -U app --connect-timeout 1s --log-format json"#;
    let started = Instant::now();
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", script])
        .arg(env!("CARGO_BIN_EXE_pgwait"))
        .stdin(Stdio::null())
        .output()
        .expect("unshare -n (root)");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("127.0.0.1:5432: no answer within 1000.0 ms (packets dropped)"),
        "{stdout}"
    );
    assert!(stdout.contains("firewall"), "{stdout}");
    // Each address is bounded by --connect-timeout: the connect check, the login attempt.
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
}

#[test]
fn a_hostnossl_reject_line_with_sslmode_disable_is_read_field_by_field() {
    let hba = "\
local all all trust
hostnossl all all 127.0.0.1/32 reject
hostssl all all 127.0.0.1/32 scram-sha-256
";
    let (cluster, _pki) = tls_cluster(hba);
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=postgres user={SCRAM_USER} sslmode=disable",
        cluster.port
    );
    let env = [("PGPASSWORD", SCRAM_PASSWORD)];
    let (code, lines) = diagnose(&["-d", &conninfo], &env, &[SCRAM_PASSWORD]);
    assert_eq!(code, Some(3), "{lines:#?}");
    let auth = expect(
        &lines,
        "auth",
        "fail",
        "a reject line in pg_hba.conf matches host 127.0.0.1, user scram_user, database postgres, no encryption",
    );
    assert!(
        auth.3.as_deref().unwrap().contains("sslmode=require"),
        "{auth:?}"
    );
    expect(&lines, "tls", "ok", "sslmode=disable");
    expect(&lines, "verdict", "fail", "rejected (exit 3)");

    // Without the reject line there is no entry at all: the line to add is named.
    let (code, lines) = diagnose(
        &["-d", &conninfo.replace(SCRAM_USER, "nobody_here")],
        &env,
        &[SCRAM_PASSWORD],
    );
    assert_eq!(code, Some(3), "{lines:#?}");
    expect(&lines, "auth", "fail", "user nobody_here");
}

#[test]
fn a_wrong_password_and_tls_details_are_reported() {
    let (cluster, pki) =
        tls_cluster("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n");
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=postgres user={SCRAM_USER} sslmode=verify-full sslrootcert={}",
        cluster.port,
        pki.ca.display()
    );
    let wrong = "wr0ng-Pa55word!";
    let (code, lines) = diagnose(&["-d", &conninfo], &[("PGPASSWORD", wrong)], &[wrong]);
    assert_eq!(code, Some(3), "{lines:#?}");
    let tls = expect(&lines, "tls", "ok", "verified");
    assert!(tls.2.contains("names: localhost, 127.0.0.1"), "{tls:?}");
    assert!(tls.2.contains("chain and host name checked"), "{tls:?}");
    expect(&lines, "auth", "ok", "SCRAM-SHA-256-PLUS");
    let login = expect(&lines, "login", "fail", "28P01");
    assert!(
        login.3.as_deref().unwrap().contains("password"),
        "{login:?}"
    );
    expect(
        &lines,
        "verdict",
        "fail",
        "rejected (exit 3): authentication rejected",
    );

    // The same server under a CA that did not sign it: the certificate is shown, and why not.
    let other = conninfo.replace(pki.ca.to_str().unwrap(), pki.other_ca.to_str().unwrap());
    let (_, lines) = diagnose(
        &["-d", &other],
        &[("PGPASSWORD", SCRAM_PASSWORD)],
        &[SCRAM_PASSWORD],
    );
    let tls = expect(
        &lines,
        "tls",
        "fail",
        "does not verify under sslmode=verify-full",
    );
    assert!(tls.2.contains("issued by"), "{tls:?}");
}

#[test]
fn an_http_server_on_the_port_is_not_postgresql() {
    let port = free_port();
    let mut http = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    let port = port.to_string();
    let args = [
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "app",
        "--connect-timeout",
        "2s",
    ];
    let (code, lines) = diagnose(&args, &[], &[]);
    let _ = http.kill();
    let _ = http.wait();
    // The wait would time out there, as libpq does: not ready (exit 1); the report says why.
    assert_eq!(code, Some(1), "{lines:#?}");
    expect(
        &lines,
        "tls",
        "fail",
        "an HTTP server listens there, not PostgreSQL",
    );
}

#[test]
fn an_unresolvable_name_gets_the_service_name_hint() {
    let (code, lines) = diagnose(
        &[
            "-h",
            "db.pgwait-test.invalid",
            "-U",
            "app",
            "--connect-timeout",
            "2s",
        ],
        &[],
        &[],
    );
    assert_eq!(code, Some(1), "{lines:#?}");
    let resolve = expect(
        &lines,
        "resolve",
        "fail",
        "db.pgwait-test.invalid does not resolve",
    );
    assert!(
        resolve.3.as_deref().unwrap().contains("Compose"),
        "{resolve:?}"
    );
    assert!(of(&lines, "connect").is_empty(), "{lines:#?}");
}

#[test]
fn a_standby_is_named_and_a_read_write_wait_is_told_why() {
    let mut primary = Cluster::new("");
    primary.start_ready();
    let mut standby = Cluster::standby_of(&primary);
    standby.start_ready();
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=postgres user={TRUST_USER} target_session_attrs=read-write",
        standby.port
    );
    let (code, lines) = diagnose(&["-d", &conninfo], &[], &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    expect(
        &lines,
        "server",
        "warn",
        "a read-only server, but target_session_attrs wants read-write",
    );
    let any = conninfo.replace("read-write", "any");
    let (code, lines) = diagnose(&["-d", &any], &[], &[]);
    assert_eq!(code, Some(0), "{lines:#?}");
    expect(&lines, "server", "ok", "a standby (in recovery)");
}

#[test]
fn channel_binding_against_a_cleartext_method_is_said_so_here_and_in_the_wait() {
    let (cluster, _pki) =
        tls_cluster("local all all trust\nhostssl all all 127.0.0.1/32 password\n");
    let conninfo = format!(
        "host=127.0.0.1 port={} dbname=postgres user={SCRAM_USER} sslmode=require channel_binding=require",
        cluster.port
    );
    let env = [("PGPASSWORD", SCRAM_PASSWORD)];
    let (code, lines) = diagnose(&["-d", &conninfo], &env, &[SCRAM_PASSWORD]);
    assert_eq!(code, Some(3), "{lines:#?}");
    let auth = expect(&lines, "auth", "fail", "cleartext password");
    assert!(
        auth.3.as_deref().unwrap().contains("SCRAM-SHA-256-PLUS"),
        "{auth:?}"
    );
    // The wait's own final line says the same, not "check the user name and password".
    let out = pgwait()
        .args(["--once", "-d", &conninfo])
        .envs(env)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("channel binding is required (channel_binding=require), but the server asked for cleartext password authentication, not SCRAM-SHA-256-PLUS"), "{log}");
    assert!(!log.contains(SCRAM_PASSWORD), "{log}");
    assert!(
        !cluster.log().contains("password authentication failed"),
        "nothing was sent"
    );
}

#[test]
fn conditions_are_each_checked_and_a_command_is_refused() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let args = tcp(&cluster, TRUST_USER);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend([
        "--table",
        "pg_catalog.pg_class",
        "--table",
        "public.not_there_yet",
    ]);
    let (code, lines) = diagnose(&all, &[], &[]);
    assert_eq!(code, Some(1), "{lines:#?}");
    expect(&lines, "condition", "ok", "pg_catalog.pg_class holds");
    expect(&lines, "condition", "fail", "public.not_there_yet");
    expect(
        &lines,
        "verdict",
        "fail",
        "not ready (exit 1): condition not met",
    );

    let out = pgwait()
        .args(["--diagnose", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--diagnose applies only with no command")
    );
}
