//! Bad input: every case gets one clear line naming what to fix, exit code 2, and no panic.
//! Secrets never appear in any output.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::support::pgwait;

fn run(args: &[&OsStr], env: &[(&str, &OsStr)]) -> (Option<i32>, String, String) {
    let out = pgwait()
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn assert_usage_error(args: &[&OsStr], env: &[(&str, &OsStr)], names: &str) {
    let (code, stdout, stderr) = run(args, env);
    assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?} {env:?}: expected one line:\n{stderr}"
    );
    assert!(stderr.starts_with("pgwait: "), "{stderr}");
    assert!(
        stderr.contains(names),
        "{args:?} {env:?}: should name {names}:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn bad_command_lines_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["-d", "postgres://[::1/x"], "-d/--dbname"),
        (&["-d", "postgresql://h/db%zz"], "percent-encoding"),
        (&["-d", "host=db foo=bar"], "option \"foo\" in -d/--dbname"),
        (&["-d", "host=db Pw-X=bar"], "keyword 2 in -d/--dbname"),
        (&["-d", "postgres://db%00.example/app"], "NUL byte"),
        (&["-d", "postgres://db/app%00"], "dbname in -d/--dbname"),
        (
            &["-d", "jdbc:postgresql://u:pw@db/app"],
            "no user:password@",
        ),
        (
            &["-d", "mysql://db/app"],
            "unsupported URI scheme \"mysql\"",
        ),
        (&["-d", "host=db port"], "-d/--dbname"),
        (&["-d", "host=db scram_client_key=x"], "scram_client_key"),
        (
            &["-d", "host=db sslrootcert=system sslmode=require"],
            "sslrootcert=system requires sslmode=verify-full",
        ),
        (
            &["-d", "host=db target_session_attrs=master"],
            "target_session_attrs",
        ),
        (
            &["-d", "host=db service=no-such-service"],
            "no-such-service",
        ),
        (
            &["--password-file", "/nonexistent/secret"],
            "--password-file",
        ),
        (&["-d", "host=db sslmode=sometimes"], "sslmode"),
        (&["-p", "70000"], "-p/--port"),
        (&["-p", "abc"], "-p/--port"),
        (&["-h", "user:pw@db"], "-h/--host"),
        (&["-t", "5x"], "-t/--timeout"),
        (&["--timeout=-5s"], "-t/--timeout"),
        (&["-t", "-5s"], "-t/--timeout"),
        (&["-t"], "--timeout"),
        (&["--connect-timeout", "0"], "--connect-timeout"),
        (&["--status-interval", "often"], "--status-interval"),
        (&["--retry-on", "auth,typo"], "--retry-on"),
        (&["--bogus"], "--bogus"),
        (&["-x"], "-x"),
        (&["-q", "-v"], "--quiet"),
        (&["--"], "\"--\" must be followed"),
        (&["-h", "db", "--"], "\"--\" must be followed"),
    ];
    for (args, names) in cases {
        let args: Vec<&OsStr> = args.iter().map(|a| os(a)).collect();
        assert_usage_error(&args, &[], names);
    }
}

#[test]
fn bad_environment_values_exit_2_naming_the_variable() {
    let cases: &[(&str, &str)] = &[
        ("PGWAIT_TIMEOUT", "soon"),
        ("PGWAIT_CONNECT_TIMEOUT", "-1s"),
        ("PGWAIT_RETRY_ON", "everything"),
        ("PGWAIT_ONCE", "maybe"),
        ("PGWAIT_QUIET", "2"),
        ("PGWAIT_VERBOSE", "loud"),
        ("PGWAIT_STATUS_INTERVAL", "x"),
        ("PGPORT", "port"),
        ("PGHOSTADDR", "not-an-ip"),
        ("PGCONNECT_TIMEOUT", "ten"),
        ("PGSSLMODE", "verified"),
        ("PGTARGETSESSIONATTRS", "primaryy"),
        ("PGCHANNELBINDING", "always"),
        ("PGWAIT_PASSWORD_FILE", "/nonexistent/secret"),
        ("DATABASE_URL", "postgres://u@h:99999/db"),
        ("DATABASE_URL", "mysql://u@h/db"),
        ("DATABASE_URL", "postgres://h%00/db"),
    ];
    for (var, value) in cases {
        assert_usage_error(&[], &[(var, os(value))], var);
    }
}

#[test]
fn non_utf8_arguments_and_variables_are_usage_errors() {
    let bad = OsStr::from_bytes(b"db\xff");
    assert_usage_error(&[os("-h"), bad], &[], "UTF-8");
    assert_usage_error(&[], &[("PGHOST", bad)], "PGHOST");
    assert_usage_error(&[], &[("PGWAIT_TIMEOUT", bad)], "PGWAIT_TIMEOUT");
    // The command itself may be any bytes: it is exec'd, not interpreted.
    let (code, _, stderr) = run(
        &[
            os("-h"),
            os("127.0.0.1"),
            os("-p"),
            os("1"),
            os("-t"),
            os("100ms"),
            os("--"),
            bad,
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{stderr}");
}

#[test]
fn help_and_version_exit_0_and_document_exit_codes() {
    let (code, stdout, _) = run(&[os("--help")], &[]);
    assert_eq!(code, Some(0));
    for text in [
        "--dbname",
        "--timeout",
        "--once",
        "--retry-on",
        "PGWAIT_TIMEOUT",
        "DATABASE_URL",
        "127  COMMAND not found",
        "143",
    ] {
        assert!(stdout.contains(text), "--help lacks {text}");
    }
    let (code, stdout, _) = run(&[os("-V")], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("pgwait "), "{stdout}");
}

const SECRET: &str = "Sup3r-S3cret-Passw0rd";

#[test]
fn passwords_never_appear_in_any_output() {
    let uri = format!("postgres://app:{SECRET}@127.0.0.1:1/db");
    let outputs = [
        run(&[os("--help")], &[("PGPASSWORD", os(SECRET))]),
        run(&[os("-v"), os("-t"), os("300ms"), os("-d"), os(&uri)], &[]),
        run(
            &[
                os("-v"),
                os("--once"),
                os("-h"),
                os("127.0.0.1"),
                os("-p"),
                os("1"),
            ],
            &[("PGPASSWORD", os(SECRET))],
        ),
        run(
            &[os("-d"), os(&format!("postgres://app:{SECRET}@[::1/db"))],
            &[],
        ),
        run(
            &[os("-d"), os(&format!("host=x password={SECRET} bogus=1"))],
            &[],
        ),
        run(&[os("-d"), os(&format!("host=x password='{SECRET}"))], &[]),
        run(
            &[],
            &[(
                "DATABASE_URL",
                os(&format!("postgres://app:{SECRET}@h/db?x")),
            )],
        ),
    ];
    let typos = [
        format!("host=h password=Pw {SECRET}"),
        format!("postgres://u:Pw@{SECRET}@h/db"),
        format!("postgres://u@h/db?password%3D{SECRET}"),
        format!("postgres://u:{SECRET}/db"),
        format!("postgres://u:x@h/db?sslmode={SECRET}"),
        format!("postgresql+psycopg2://u:{SECRET}@h:0/db"),
        format!("Postgres://u:{SECRET}@h/db%zz"),
        format!("jdbc:postgresql://u:{SECRET}@h/db"),
        format!("jdbc:postgresql://h/db?password={SECRET}&sslmode=sometimes"),
        format!("Host=h;Password={SECRET};Pooling"),
        format!("postgresql+asyncpg://u:{SECRET}@h/db?sslmode=require"),
        format!("sqlite://u:{SECRET}@h/db"),
    ];
    let mut outputs = outputs.to_vec();
    for typo in &typos {
        for format in ["text", "json"] {
            let out = run(&[os("--log-format"), os(format), os("-d"), os(typo)], &[]);
            assert_eq!(out.0, Some(2), "{typo}: {}", out.2);
            outputs.push(out);
            let out = run(&[os("-t"), os(typo)], &[]);
            assert_eq!(out.0, Some(2), "{typo}: {}", out.2);
            outputs.push(out);
        }
    }
    // A SQLAlchemy URL is the URI it looks like: the password is not sent as a database name.
    let asyncpg = format!("postgresql+asyncpg://app:{SECRET}@127.0.0.1:1/appdb");
    let out = run(&[os("-v"), os("--once"), os("-d"), os(&asyncpg)], &[]);
    assert!(out.2.contains("127.0.0.1:1/appdb"), "{}", out.2);
    assert_eq!(out.0, Some(1), "{}", out.2);
    outputs.push(out);
    for (code, stdout, stderr) in outputs {
        assert!(code.is_some());
        assert!(
            !stdout.contains(SECRET) && !stderr.contains(SECRET),
            "leaked:\n{stdout}\n{stderr}"
        );
    }
}

/// Durations so long that clock arithmetic would overflow mean "forever": pgwait keeps waiting
/// (no abort) until a signal ends it.
#[test]
fn durations_of_centuries_wait_instead_of_aborting() {
    let huge = "18446744073709551615";
    let port = crate::support::free_port().to_string();
    type Var<'a> = Option<(&'a str, &'a str)>;
    let cases: [(&[&str], Var); 4] = [
        (&["-t", huge], None),
        (&["-t", "0", "--connect-timeout", huge], None),
        (&["-t", "0", "--status-interval", huge], None),
        (
            &["-t", "0"],
            Some(("PGCONNECT_TIMEOUT", "9223372036854775807")),
        ),
    ];
    for (args, var) in cases {
        let mut cmd = pgwait();
        cmd.args(["-h", "127.0.0.1", "-p", &port]).args(args);
        if let Some((name, value)) = var {
            cmd.env(name, value);
        }
        let mut child = crate::support::Running::spawn(&mut cmd);
        // Waiting, not crashed on the huge duration: it has been refused and goes on.
        child.expect("connection refused", std::time::Duration::from_secs(10));
        assert!(child.is_running(), "{args:?} {var:?} ended early");
        crate::support::unsafe_kill(child.id(), "TERM");
        let (status, stderr) = child.finish(std::time::Duration::from_secs(5));
        assert_eq!(status.code(), Some(143), "{args:?} {var:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
