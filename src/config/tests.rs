use std::collections::HashMap;
use std::path::PathBuf;

use super::*;
use crate::conninfo::Endpoint;
use crate::policy::RETRY_ON_NAMES;

fn system() -> Defaults {
    Defaults {
        user: "osuser".into(),
        home: Some("/nonexistent-home".into()),
        socket_dir_exists: false,
        system_roots: None,
    }
}

fn build_with(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let opts = match crate::cli::parse(std::iter::once("pgwait").chain(args.iter().copied())) {
        Ok(crate::cli::Parsed::Run(opts)) => *opts,
        other => panic!("not a run: {other:?}"),
    };
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    build(opts, &env, &system())
}

fn endpoint(config: &Config) -> String {
    config.targets[0]
        .conn
        .endpoints
        .iter()
        .map(Endpoint::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn conninfo_beats_flags_which_beat_pg_variables() {
    let env = [
        ("PGHOST", "envhost"),
        ("PGPORT", "1111"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
    ];
    let c = build_with(&[], &env).unwrap();
    assert_eq!(
        (
            endpoint(&c).as_str(),
            c.targets[0].conn.user.as_str(),
            c.targets[0].conn.dbname.as_str()
        ),
        ("envhost:1111", "envuser", "envdb")
    );
    let c = build_with(&["-d", "host=cihost port=2222 dbname=cidb"], &env).unwrap();
    assert_eq!(
        (
            endpoint(&c).as_str(),
            c.targets[0].conn.user.as_str(),
            c.targets[0].conn.dbname.as_str()
        ),
        ("cihost:2222", "envuser", "cidb")
    );
    let c = build_with(
        &[
            "-d",
            "host=cihost port=2222",
            "-h",
            "flaghost",
            "-p",
            "3333",
            "-U",
            "flaguser",
        ],
        &env,
    )
    .unwrap();
    // As psql: the connection string wins; the flags fill in what it leaves out.
    assert_eq!(
        (endpoint(&c).as_str(), c.targets[0].conn.user.as_str()),
        ("cihost:2222", "flaguser")
    );
}

#[test]
fn database_url_is_used_only_when_nothing_else_names_a_connection() {
    let url = ("DATABASE_URL", "postgres://urluser:pw@urlhost:4444/urldb");
    let c = build_with(&[], &[url, ("PGPASSWORD", "ignored")]).unwrap();
    assert_eq!(
        (
            endpoint(&c).as_str(),
            c.targets[0].conn.user.as_str(),
            c.targets[0].conn.dbname.as_str()
        ),
        ("urlhost:4444", "urluser", "urldb")
    );
    assert_eq!(c.targets[0].conn.password.as_ref().unwrap().expose(), "pw");
    let c = build_with(&[], &[url, ("PGHOST", "envhost")]).unwrap();
    assert_eq!(
        (endpoint(&c).as_str(), c.targets[0].conn.user.as_str()),
        ("envhost:5432", "osuser")
    );
    let c = build_with(&["-d", "other"], &[url]).unwrap();
    assert_eq!(
        (endpoint(&c).as_str(), c.targets[0].conn.dbname.as_str()),
        ("localhost:5432", "other")
    );
    let c = build_with(&["-U", "me"], &[url]).unwrap();
    assert_eq!(endpoint(&c), "localhost:5432");
}

#[test]
fn pgwait_settings_come_from_flags_then_variables_then_defaults() {
    let c = build_with(&[], &[]).unwrap();
    assert_eq!(c.wait.timeout, Some(DEFAULT_TIMEOUT));
    assert_eq!(c.targets[0].attempt_timeout, DEFAULT_ATTEMPT_TIMEOUT);
    assert_eq!(c.wait.status_interval, Some(DEFAULT_STATUS_INTERVAL));
    assert_eq!(
        (c.wait.once, c.log.verbosity, c.wait.retry_on),
        (false, Verbosity::Normal, RetryOn::default())
    );
    assert_eq!(c.log.format, LogFormat::Text);
    let json = build_with(&[], &[("PGWAIT_LOG_FORMAT", "json")]).unwrap();
    assert_eq!(json.log.format, LogFormat::Json);
    let flag = build_with(&["--log-format", "text"], &[("PGWAIT_LOG_FORMAT", "json")]).unwrap();
    assert_eq!(flag.log.format, LogFormat::Text);

    let env = [
        ("PGWAIT_TIMEOUT", "90s"),
        ("PGWAIT_RETRY_ON", "auth"),
        ("PGWAIT_ONCE", "true"),
        ("PGWAIT_VERBOSE", "1"),
    ];
    let c = build_with(&[], &env).unwrap();
    assert_eq!(
        (c.wait.timeout, c.wait.once, c.log.verbosity),
        (Some(Duration::from_secs(90)), true, Verbosity::Verbose)
    );
    assert_eq!(c.wait.retry_on, RetryOn::parse("auth").unwrap());

    let c = build_with(&["-t", "500ms", "--retry-on", "nodb,auth", "-q"], &env).unwrap();
    assert_eq!(
        (c.wait.timeout, c.log.verbosity),
        (Some(Duration::from_millis(500)), Verbosity::Quiet)
    );
    assert_eq!(c.wait.retry_on, RetryOn::parse("auth,nodb").unwrap());
}

#[test]
fn zero_timeout_waits_forever_and_bare_numbers_are_seconds() {
    assert_eq!(build_with(&["-t", "0"], &[]).unwrap().wait.timeout, None);
    assert_eq!(
        build_with(&["-t", "45"], &[]).unwrap().wait.timeout,
        Some(Duration::from_secs(45))
    );
    assert_eq!(
        build_with(&["--status-interval", "0"], &[])
            .unwrap()
            .wait
            .status_interval,
        None
    );
}

#[test]
fn attempt_timeout_precedence() {
    let from_pg = build_with(&[], &[("PGCONNECT_TIMEOUT", "3")]).unwrap();
    assert_eq!(from_pg.targets[0].attempt_timeout, Duration::from_secs(3));
    let from_conninfo =
        build_with(&["-d", "connect_timeout=4"], &[("PGCONNECT_TIMEOUT", "3")]).unwrap();
    assert_eq!(
        from_conninfo.targets[0].attempt_timeout,
        Duration::from_secs(4)
    );
    let from_var = build_with(
        &["-d", "connect_timeout=4"],
        &[("PGWAIT_CONNECT_TIMEOUT", "2s")],
    )
    .unwrap();
    assert_eq!(from_var.targets[0].attempt_timeout, Duration::from_secs(2));
    let from_flag = build_with(
        &["--connect-timeout", "1500ms"],
        &[("PGWAIT_CONNECT_TIMEOUT", "2s")],
    )
    .unwrap();
    assert_eq!(
        from_flag.targets[0].attempt_timeout,
        Duration::from_millis(1500)
    );
}

#[test]
fn bad_values_name_the_flag_or_variable() {
    // (arguments, environment, what the error must name)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["-t", "soon"], &[], "-t/--timeout"),
        (&["--timeout=-5s"], &[], "-t/--timeout"),
        (&[], &[("PGWAIT_TIMEOUT", "1 fortnight")], "PGWAIT_TIMEOUT"),
        (&["--connect-timeout", "0"], &[], "--connect-timeout"),
        (
            &[],
            &[("PGWAIT_RETRY_ON", "auth,everything")],
            "PGWAIT_RETRY_ON",
        ),
        (&[], &[("PGWAIT_ONCE", "maybe")], "PGWAIT_ONCE"),
        (
            &[],
            &[("PGWAIT_STATUS_INTERVAL", "x")],
            "PGWAIT_STATUS_INTERVAL",
        ),
        (&["-p", "99999"], &[], "-p/--port"),
        (&["--max-lag", "16"], &[], "--max-lag"),
        (&["--max-lag", "1MB", "--max-lag", "2MB"], &[], "--max-lag"),
        (&[], &[("PGWAIT_MAX_LAG", "5s,soon")], "PGWAIT_MAX_LAG"),
        (&["--stable", "0"], &[], "--stable"),
        (&[], &[("PGWAIT_STABLE", "many")], "PGWAIT_STABLE"),
        (&["--stable-for", "a while"], &[], "--stable-for"),
        (&[], &[("PGPORT", "x")], "PGPORT"),
        (&["-h", "u@h"], &[], "-h/--host"),
        (&["-d", "postgres://[::1/x"], &[], "-d/--dbname"),
        (&["-d", "host=a bogus=1"], &[], "-d/--dbname"),
        (
            &[],
            &[("DATABASE_URL", "postgres://h/db?x")],
            "DATABASE_URL",
        ),
        (
            &[],
            &[("PGWAIT_QUIET", "1"), ("PGWAIT_VERBOSE", "1")],
            "PGWAIT_QUIET",
        ),
    ];
    for (args, env, named) in cases {
        let err = build_with(args, env).expect_err(named).to_string();
        assert!(err.contains(named), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn separator_without_command_is_an_error() {
    assert_eq!(
        build_with(&["--"], &[]).unwrap_err(),
        ConfigError::EmptyCommand
    );
    let c = build_with(&["--", "app", "--flag"], &[]).unwrap();
    assert_eq!(
        c.command,
        Command::from_argv(vec![OsString::from("app"), OsString::from("--flag")])
    );
    assert_eq!(build_with(&[], &[]).unwrap().command, None);
}

#[test]
fn non_utf8_variables_are_named() {
    use std::os::unix::ffi::OsStringExt;
    struct Bad;
    impl Environment for Bad {
        fn var_os(&self, name: &str) -> Option<OsString> {
            (name == "PGUSER").then(|| OsString::from_vec(vec![0x66, 0xff]))
        }
    }
    let Ok(crate::cli::Parsed::Run(opts)) = crate::cli::parse(["pgwait"]) else {
        panic!()
    };
    let err = build(*opts, &Bad, &system()).unwrap_err();
    assert_eq!(
        err,
        ConfigError::NotUnicode {
            var: "PGUSER".into()
        }
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgwait-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn password_files_beat_pgpassword_but_not_the_connection_string() {
    let dir = scratch("pwfile");
    let file = dir.join("password");
    std::fs::write(&file, "from-file\n").unwrap();
    let path = file.to_str().unwrap();
    let c = build_with(&["--password-file", path], &[("PGPASSWORD", "from-env")]).unwrap();
    assert_eq!(
        c.targets[0].conn.password.as_ref().unwrap().expose(),
        "from-file"
    );
    let c = build_with(
        &[],
        &[("PGWAIT_PASSWORD_FILE", path), ("PGPASSWORD", "from-env")],
    )
    .unwrap();
    assert_eq!(
        c.targets[0].conn.password.as_ref().unwrap().expose(),
        "from-file"
    );
    let c = build_with(&["--password-file", path, "-d", "password=typed"], &[]).unwrap();
    assert_eq!(
        c.targets[0].conn.password.as_ref().unwrap().expose(),
        "typed"
    );
    let err = build_with(&["--password-file", "/nonexistent/pw"], &[]).unwrap_err();
    assert!(
        err.to_string().contains("--password-file") && err.to_string().contains("/nonexistent/pw"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn services_come_from_the_user_file_then_the_system_file() {
    let dir = scratch("service");
    let user = dir.join("user.conf");
    std::fs::write(&user, "[app]\nhost=userhost\nport=6000\n").unwrap();
    std::fs::write(
        dir.join("pg_service.conf"),
        "[sys]\nhost=syshost\n[app]\nhost=shadowed\n",
    )
    .unwrap();
    let env = [
        ("PGSERVICEFILE", user.to_str().unwrap()),
        ("PGSYSCONFDIR", dir.to_str().unwrap()),
    ];
    let c = build_with(&["-d", "service=app"], &env).unwrap();
    assert_eq!(endpoint(&c), "userhost:6000");
    let c = build_with(&["-d", "service=sys port=7000"], &env).unwrap();
    assert_eq!(endpoint(&c), "syshost:7000");
    let mut with_service_var = env.to_vec();
    with_service_var.push(("PGSERVICE", "sys"));
    assert_eq!(
        endpoint(&build_with(&[], &with_service_var).unwrap()),
        "syshost:5432"
    );
    let err = build_with(&["-d", "service=nope"], &env).unwrap_err();
    assert!(err.to_string().contains("service \"nope\""), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_retry_on_error_lists_every_name_the_policy_accepts() {
    for (name, _) in RETRY_ON_NAMES {
        assert!(RETRY_ON_EXPECTED.contains(name), "{name}");
    }
}

#[test]
fn setting_origins_are_typed_for_flags_and_variables() {
    let err = build_with(&["--password-file", "/nonexistent/secret"], &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Unreadable { source: Origin::Flag(names), .. } if *names == "--password-file"),
        "{err:?}"
    );
    let err = build_with(&[], &[("PGWAIT_PASSWORD_FILE", "/nonexistent/secret")]).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Unreadable {
                source: Origin::Env("PGWAIT_PASSWORD_FILE"),
                ..
            }
        ),
        "{err:?}"
    );
    let err = build_with(&["--log-format", "yaml"], &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"yaml\" for --log-format: expected text or json"
    );
}

#[test]
fn durations_of_centuries_mean_forever_instead_of_overflowing() {
    let huge = "18446744073709551615";
    let c = build_with(
        &[
            "-t",
            huge,
            "--connect-timeout",
            huge,
            "--status-interval",
            huge,
        ],
        &[],
    )
    .unwrap();
    assert_eq!((c.wait.timeout, c.wait.status_interval), (None, None));
    assert_eq!(c.targets[0].attempt_timeout, FOREVER);
    let c = build_with(&[], &[("PGCONNECT_TIMEOUT", "9223372036854775807")]).unwrap();
    assert_eq!(c.targets[0].attempt_timeout, FOREVER);
    let c = build_with(&["-t", "99y"], &[]).unwrap();
    assert!(c.wait.timeout.is_some());
}

#[test]
fn each_dbname_is_a_target_and_flags_fill_in_what_several_leave_out() {
    let c = build_with(
        &[
            "-d",
            "host=a dbname=one",
            "-d",
            "postgres://b:6000/two",
            "-U",
            "flaguser",
            "-p",
            "7000",
        ],
        &[("PGUSER", "envuser")],
    )
    .unwrap();
    let got: Vec<(String, &str, &str)> = c
        .targets
        .iter()
        .map(|t| {
            (
                t.conn.endpoints[0].to_string(),
                t.conn.dbname.as_str(),
                t.conn.user.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a:7000".to_string(), "one", "flaguser"),
            ("b:6000".to_string(), "two", "flaguser"),
        ]
    );
    // One -d: the same rule (psql's).
    let c = build_with(&["-d", "host=a port=6000", "-p", "7000"], &[]).unwrap();
    assert_eq!(endpoint(&c), "a:6000");
}

#[test]
fn supervise_options_need_supervise() {
    let c = build_with(
        &["--supervise", "--signal-group", "--exit-ok", "143,0"],
        &[],
    )
    .unwrap();
    assert_eq!(
        c.supervise,
        Some(supervise::Options {
            group: true,
            success_codes: vec![143, 0]
        })
    );
    assert_eq!(build_with(&[], &[]).unwrap().supervise, None);
    for args in [
        &["--signal-group"][..],
        &["--exit-ok", "143"],
        &["--supervise", "--exit-ok", "256"],
    ] {
        assert!(build_with(args, &[]).is_err(), "{args:?}");
    }
}

#[test]
fn max_lag_is_one_condition_checked_first_and_stable_reaches_the_wait() {
    use crate::condition::{Condition, MaxLag};
    let c = build_with(
        &[
            "--table",
            "t",
            "--max-lag",
            "16MB",
            "--max-lag",
            "5s",
            "--stable",
            "3",
            "--stable-for",
            "2s",
        ],
        &[],
    )
    .unwrap();
    let want = MaxLag {
        bytes: Some(16 << 20),
        time: Some(Duration::from_secs(5)),
    };
    assert_eq!(c.conditions[0], Condition::MaxLag(want));
    assert_eq!(c.conditions.len(), 2);
    assert_eq!(c.wait.stable.count, 3);
    assert_eq!(c.wait.stable.span, Duration::from_secs(2));
    let c = build_with(&[], &[("PGWAIT_MAX_LAG", "1GB, 500ms")]).unwrap();
    let want = MaxLag {
        bytes: Some(1 << 30),
        time: Some(Duration::from_millis(500)),
    };
    assert_eq!(c.conditions, vec![Condition::MaxLag(want)]);
    assert_eq!(c.wait.stable, crate::policy::Stable::default());
}

#[test]
fn database_url_is_the_apps_even_with_pg_variables_its_driver_never_reads() {
    let url = "jdbc:postgresql://db:6000/app?user=u";
    // pgjdbc reads no PGUSER/PGHOST: the app uses its URL, and so does pgwait.
    let c = build_with(
        &[],
        &[("DATABASE_URL", url), ("PGUSER", "x"), ("PGHOST", "other")],
    )
    .unwrap();
    assert_eq!(endpoint(&c), "db:6000");
    assert_eq!(c.targets[0].conn.user, "u");
    // libpq reads them, so they still win over DATABASE_URL for a libpq string.
    let c = build_with(
        &[],
        &[("DATABASE_URL", "postgres://db/app"), ("PGHOST", "other")],
    )
    .unwrap();
    assert_eq!(endpoint(&c), "other:5432");
    // Empty variables are absent to the other drivers (libpq reads them as set).
    let c = build_with(
        &["--driver", "pgx", "-d", "postgres://u@db/app"],
        &[("PGSSLMODE", ""), ("PGPORT", "")],
    )
    .unwrap();
    assert_eq!(endpoint(&c), "db:5432");
    assert!(build_with(&["-d", "postgres://u@db/app"], &[("PGSSLMODE", "")]).is_err());
}
