use super::*;

fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConnError> {
    let mut s = Settings::default();
    for (k, v) in pairs {
        s.set(k, v.to_string(), Origin::DbnameArg)?;
    }
    Ok(s)
}

fn defaults(socket_dir_exists: bool) -> Defaults {
    Defaults {
        user: "osuser".into(),
        home: Some("/home/os".into()),
        socket_dir_exists,
        system_roots: None,
    }
}

fn resolve(pairs: &[(&str, &str)]) -> Result<ConnParams, ConnError> {
    settings(pairs)?.resolve(&defaults(false))
}

fn tcp(host: &str, port: u16) -> Endpoint {
    Endpoint::Tcp {
        host: host.into(),
        hostaddr: None,
        port,
    }
}

#[test]
fn applies_libpq_defaults() {
    let p = resolve(&[]).unwrap();
    assert_eq!(p.endpoints, vec![tcp("localhost", 5432)]);
    assert_eq!((p.user.as_str(), p.dbname.as_str()), ("osuser", "osuser"));
    assert_eq!(p.application_name, "pgwait");
    assert_eq!(p.password, None);
    assert_eq!(p.tls.mode, SslMode::Prefer);
    assert_eq!(
        p.tls.rootcert,
        Some(RootCert::File {
            path: "/home/os/.postgresql/root.crt".into(),
            explicit: false
        })
    );
    assert_eq!(
        p.passfile,
        Some(FileSetting {
            path: "/home/os/.pgpass".into(),
            explicit: false
        })
    );
    assert_eq!(
        (p.channel_binding, p.session_attrs),
        (ChannelBinding::Prefer, SessionAttrs::Any)
    );
    let with_socket = Settings::default().resolve(&defaults(true)).unwrap();
    assert_eq!(
        with_socket.endpoints,
        vec![Endpoint::Socket {
            dir: DEFAULT_SOCKET_DIR.into(),
            port: 5432
        }]
    );
}

#[test]
fn host_lists_pair_with_one_or_many_ports() {
    let one = resolve(&[("host", "a,b"), ("port", "6000")]).unwrap();
    assert_eq!(one.endpoints, vec![tcp("a", 6000), tcp("b", 6000)]);
    let many = resolve(&[("host", "a,/run/pg,::1"), ("port", "1,2,")]).unwrap();
    assert_eq!(
        many.endpoints,
        vec![
            tcp("a", 1),
            Endpoint::Socket {
                dir: "/run/pg".into(),
                port: 2
            },
            tcp("::1", 5432)
        ]
    );
    assert_eq!(
        resolve(&[("host", "a,b,c"), ("port", "1,2")]),
        Err(ConnError::ListLengths {
            what: "port",
            expected: 3,
            got: 2
        })
    );
}

#[test]
fn hostaddr_skips_lookup_and_can_stand_alone() {
    let p = resolve(&[("host", "db"), ("hostaddr", "10.0.0.5")]).unwrap();
    assert_eq!(
        p.endpoints,
        vec![Endpoint::Tcp {
            host: "db".into(),
            hostaddr: Some("10.0.0.5".parse().unwrap()),
            port: 5432
        }]
    );
    let alone = resolve(&[("hostaddr", "::1")]).unwrap();
    assert_eq!(alone.endpoints[0].to_string(), "[::1]:5432");
    assert!(matches!(
        resolve(&[("hostaddr", "db.example")]),
        Err(ConnError::InvalidValue {
            keyword: "hostaddr",
            ..
        })
    ));
}

#[test]
fn ports_follow_libpq_number_rules() {
    // Not a number: the setting is refused (libpq fails the connection when it reaches it).
    for port in ["abc", "54 32", "5432x", "99999999999"] {
        let err = resolve(&[("port", port)]).unwrap_err();
        assert!(
            matches!(
                err,
                ConnError::InvalidValue {
                    keyword: "port",
                    ..
                }
            ),
            "{port}: {err:?}"
        );
    }
    // Out of range: libpq skips that host; with none left, nothing can be reached.
    for port in ["0", "65536", "-1"] {
        assert!(resolve(&[("port", port)]).is_err(), "{port}");
    }
    let skipped = resolve(&[("host", "a,b,c"), ("port", "1,99999,3")]).unwrap();
    assert_eq!(skipped.endpoints, vec![tcp("a", 1), tcp("c", 3)]);
    // strtol's blanks: leading and trailing are fine.
    let blanks = resolve(&[("host", "a"), ("port", " 6000 ")]).unwrap();
    assert_eq!(blanks.endpoints, vec![tcp("a", 6000)]);
}

#[test]
fn empty_values_mean_the_default() {
    let p = resolve(&[
        ("host", ""),
        ("user", ""),
        ("dbname", ""),
        ("application_name", ""),
        ("options", ""),
        ("password", ""),
        ("passfile", ""),
        ("sslrootcert", ""),
        ("hostaddr", ""),
        ("require_auth", ""),
        ("ssl_min_protocol_version", ""),
    ])
    .unwrap();
    assert_eq!(p.endpoints, vec![tcp("localhost", 5432)]);
    assert_eq!((p.user.as_str(), p.dbname.as_str()), ("osuser", "osuser"));
    assert_eq!((p.application_name.as_str(), &p.options), ("pgwait", &None));
    assert_eq!(p.password, None);
    assert_eq!(p.passfile.map(|f| f.path), Some("/home/os/.pgpass".into()));
    assert_eq!(p.require_auth, None);
    // Empty entries of a host list are each the default host; names are not trimmed.
    let list = resolve(&[("host", "a,, b")]).unwrap();
    assert_eq!(
        list.endpoints,
        vec![tcp("a", 5432), tcp("localhost", 5432), tcp(" b", 5432)]
    );
    // Enumerations have no default when empty: libpq refuses them.
    for keyword in [
        "sslmode",
        "target_session_attrs",
        "channel_binding",
        "load_balance_hosts",
    ] {
        assert!(resolve(&[(keyword, "")]).is_err(), "{keyword}");
    }
}

#[test]
fn require_auth_follows_libpq_list_syntax() {
    use AuthKind::*;
    let ok = |text: &str, allowed: &[AuthKind], required: bool| {
        let got = resolve(&[("require_auth", text)])
            .unwrap()
            .require_auth
            .unwrap();
        assert_eq!(
            (got.allowed.as_slice(), got.required),
            (allowed, required),
            "{text}"
        );
    };
    ok("password", &[Password], true);
    ok("md5,scram-sha-256", &[Md5, ScramSha256], true);
    ok("scram-sha-256,none", &[ScramSha256], false);
    ok("none", &[], false);
    ok("!password", &[Md5, Gss, Sspi, ScramSha256, OAuth], false);
    ok(
        "!password,!md5,!none",
        &[Gss, Sspi, ScramSha256, OAuth],
        true,
    );
    for bad in [
        "password,!md5",
        "!password,md5",
        "password,password",
        "none,none",
        "kerberos",
        " md5",
        "md5,",
    ] {
        let err = resolve(&[("require_auth", bad)]).unwrap_err();
        assert!(matches!(err, ConnError::BadList { .. }), "{bad}: {err:?}");
    }
}

#[test]
fn require_auth_judges_each_request_as_libpq_does() {
    let require = |text: &str| {
        resolve(&[("require_auth", text)])
            .unwrap()
            .require_auth
            .unwrap()
    };
    let scram = vec!["SCRAM-SHA-256".to_string()];
    let oauth = vec!["OAUTHBEARER".to_string()];
    let table: [(&str, u32, &[String], bool, bool); 10] = [
        ("password", 3, &[], false, true),
        ("password", 5, &[], false, false),
        ("password", 10, &scram, false, false),
        ("scram-sha-256", 10, &scram, false, true),
        ("scram-sha-256", 10, &oauth, false, false),
        ("scram-sha-256", 12, &[], true, true),
        // AuthenticationOk with no exchange: trust; allowed only with "none".
        ("password", 0, &[], false, false),
        ("password", 0, &[], true, true),
        ("none", 0, &[], false, true),
        ("!md5", 0, &[], false, true),
    ];
    for (text, code, mechanisms, exchanged, allowed) in table {
        let got = require(text).check(code, mechanisms, exchanged);
        assert_eq!(
            got.is_ok(),
            allowed,
            "{text} {code} {mechanisms:?} {exchanged}: {got:?}"
        );
    }
}

#[test]
fn protocol_versions_that_allow_3_0_are_accepted() {
    for (min, max) in [("3.0", "3.2"), ("3.0", "latest"), ("", ""), ("3.0", "3.0")] {
        let mut pairs = vec![];
        if !min.is_empty() {
            pairs.push(("min_protocol_version", min));
        }
        if !max.is_empty() {
            pairs.push(("max_protocol_version", max));
        }
        assert!(resolve(&pairs).is_ok(), "{min} {max}");
    }
    for pairs in [
        vec![("min_protocol_version", "3.2")],
        vec![("min_protocol_version", "latest")],
        vec![
            ("min_protocol_version", "3.2"),
            ("max_protocol_version", "3.0"),
        ],
        vec![("max_protocol_version", "2.0")],
        vec![("min_protocol_version", "")],
    ] {
        assert!(resolve(&pairs).is_err(), "{pairs:?}");
    }
}

#[test]
fn unknown_and_not_yet_supported_keywords_are_errors_naming_their_origin() {
    let err = settings(&[("hots", "x")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown connection option \"hots\" in -d/--dbname; did you mean \"host\"?"
    );
    let table = [
        ("Pw-SECRET", "unknown connection option (keyword 1 in -d/--dbname; not shown, as it may hold a secret)"),
        ("tty", "unknown connection option \"tty\" in -d/--dbname: libpq no longer has this keyword; nothing replaces it"),
        ("sslfactory", "connection option \"sslfactory\" in -d/--dbname is not libpq's but a parameter of JDBC (pgjdbc): give --driver jdbc"),
        ("currentSchema", "connection option \"currentSchema\" in -d/--dbname is not libpq's but a parameter of JDBC (pgjdbc): give --driver jdbc"),
        ("foo", "unknown connection option \"foo\" in -d/--dbname"),
    ];
    for (keyword, want) in table {
        let err = settings(&[(keyword, "x")]).unwrap_err();
        assert_eq!(err.to_string(), want);
    }
    for (value, mode) in [
        ("1", SslMode::Require),
        ("0", SslMode::Prefer),
        ("x", SslMode::Prefer),
    ] {
        let p = resolve(&[("requiressl", value)]).unwrap();
        assert_eq!(p.tls.mode, mode, "requiressl={value}");
    }
    for keyword in ["scram_client_key", "replication"] {
        assert!(
            matches!(
                settings(&[(keyword, "x")]),
                Err(ConnError::Unsupported { .. })
            ),
            "{keyword}"
        );
    }
    assert!(settings(&[
        ("keepalives", "1"),
        ("client_encoding", "UTF8"),
        ("sslcompression", "0")
    ])
    .is_ok());
}

#[test]
fn every_sslmode_and_session_attribute_parses() {
    let modes = [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ];
    for (name, mode) in modes {
        assert_eq!(resolve(&[("sslmode", name)]).unwrap().tls.mode, mode);
    }
    assert!(matches!(
        resolve(&[("sslmode", "verify")]),
        Err(ConnError::InvalidValue {
            keyword: "sslmode",
            ..
        })
    ));
    for name in [
        "any",
        "read-write",
        "read-only",
        "primary",
        "standby",
        "prefer-standby",
    ] {
        assert_eq!(
            resolve(&[("target_session_attrs", name)])
                .unwrap()
                .session_attrs
                .name(),
            name
        );
    }
    let err = resolve(&[("target_session_attrs", "read_write")]).unwrap_err();
    assert!(err.to_string().contains("read-write, read-only"), "{err}");
}

#[test]
fn tls_keywords_follow_libpq() {
    let p = resolve(&[("sslrootcert", "system")]).unwrap();
    assert_eq!(
        (p.tls.mode, p.tls.rootcert),
        (SslMode::VerifyFull, Some(RootCert::System))
    );
    assert!(matches!(
        resolve(&[("sslrootcert", "system"), ("sslmode", "require")]),
        Err(ConnError::Conflict { .. })
    ));
    let p = resolve(&[
        ("sslcert", "~/c.pem"),
        ("sslkey", "/k.pem"),
        ("sslsni", "0"),
        ("sslcrl", "/crl.pem"),
    ])
    .unwrap();
    assert_eq!(
        p.tls.cert,
        Some(FileSetting {
            path: "/home/os/c.pem".into(),
            explicit: true
        })
    );
    assert_eq!(
        p.tls.key,
        Some(FileSetting {
            path: "/k.pem".into(),
            explicit: true
        })
    );
    assert_eq!((p.tls.sni, p.tls.crl), (false, Some("/crl.pem".into())));
    assert!(matches!(
        resolve(&[("sslnegotiation", "direct")]),
        Err(ConnError::Conflict { .. })
    ));
    assert!(
        resolve(&[("sslnegotiation", "direct"), ("sslmode", "require")])
            .unwrap()
            .tls
            .direct
    );
    let v = resolve(&[("ssl_min_protocol_version", "TLSv1.3")]).unwrap();
    assert_eq!(v.tls.min_version, TlsVersion::V1_3);
    assert!(resolve(&[
        ("ssl_min_protocol_version", "TLSv1.3"),
        ("ssl_max_protocol_version", "TLSv1.2")
    ])
    .is_err());
    assert!(resolve(&[("ssl_max_protocol_version", "TLSv1.1")]).is_err());
    for (mode, want) in [
        ("disable", CertMode::Disable),
        ("allow", CertMode::Allow),
        ("require", CertMode::Require),
    ] {
        assert_eq!(
            resolve(&[("sslcertmode", mode)]).unwrap().tls.cert_mode,
            want
        );
    }
    // libpq sends SNI only when sslsni starts with "1".
    for (sni, want) in [
        ("1", true),
        ("1x", true),
        ("0", false),
        ("", false),
        ("yes", false),
    ] {
        assert_eq!(resolve(&[("sslsni", sni)]).unwrap().tls.sni, want, "{sni}");
    }
    assert_eq!(
        resolve(&[("channel_binding", "require")])
            .unwrap()
            .channel_binding,
        ChannelBinding::Require
    );
    assert!(resolve(&[("gssencmode", "require")]).is_err());
}

#[test]
fn service_entries_beat_variables_but_not_typed_settings() {
    let mut s = Settings::default();
    s.set("host", "envhost".into(), Origin::Env("PGHOST"))
        .unwrap();
    s.set("port", "1111".into(), Origin::DbnameArg).unwrap();
    let pairs = vec![
        ("host".to_string(), "svchost".to_string()),
        ("port".to_string(), "2222".to_string()),
    ];
    s.apply_service(pairs).unwrap();
    assert_eq!(
        s.resolve(&defaults(false)).unwrap().endpoints,
        vec![tcp("svchost", 1111)]
    );
    let nested = Settings::default().apply_service(vec![("service".into(), "x".into())]);
    assert!(matches!(nested, Err(ConnError::Service { .. })));
}

#[test]
fn connect_timeout_follows_libpq() {
    assert_eq!(
        resolve(&[("connect_timeout", "7")])
            .unwrap()
            .connect_timeout,
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        resolve(&[("connect_timeout", "0")])
            .unwrap()
            .connect_timeout,
        None
    );
    assert_eq!(
        resolve(&[("connect_timeout", "-3")])
            .unwrap()
            .connect_timeout,
        None
    );
    assert!(resolve(&[("connect_timeout", "5s")]).is_err());
}

#[test]
fn later_layers_override_earlier_ones() {
    let mut s = Settings::default();
    s.set("port", "1".into(), Origin::Env("PGPORT")).unwrap();
    s.set("port", "2".into(), Origin::DbnameArg).unwrap();
    assert_eq!(
        s.resolve(&defaults(false)).unwrap().endpoints,
        vec![tcp("localhost", 2)]
    );
    let err = {
        let mut s = Settings::default();
        s.set("port", "x".into(), Origin::Env("PGPORT")).unwrap();
        s.resolve(&defaults(false)).unwrap_err()
    };
    assert_eq!(
        err.to_string(),
        "invalid port in PGPORT: expected a number from 1 to 65535"
    );
}

#[test]
fn application_name_falls_back_as_libpq_does() {
    assert_eq!(
        resolve(&[("fallback_application_name", "f")])
            .unwrap()
            .application_name,
        "f"
    );
    assert_eq!(
        resolve(&[
            ("fallback_application_name", "f"),
            ("application_name", "a")
        ])
        .unwrap()
        .application_name,
        "a"
    );
}

#[test]
fn passwords_never_show_in_debug_output() {
    let p = resolve(&[("password", "hunter2-secret")]).unwrap();
    assert_eq!(p.password.as_ref().unwrap().expose(), "hunter2-secret");
    let debug = format!(
        "{p:?} {:?}",
        settings(&[("password", "hunter2-secret")]).unwrap()
    );
    assert!(debug.contains("Secret(***)"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn syntax_errors_do_not_echo_the_connection_string() {
    let err = parse_connection_string("postgres://u:hunter2@[::1/db", Origin::Env("DATABASE_URL"))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("DATABASE_URL") && !text.contains("hunter2"),
        "{text}"
    );
}

#[test]
fn plain_names_uris_and_conninfo_are_told_apart() {
    let plain = parse_connection_string("mydb", Origin::DbnameArg).unwrap();
    assert_eq!(plain, vec![("dbname".to_string(), "mydb".to_string())]);
    let uri = parse_connection_string("postgres://h/d", Origin::DbnameArg).unwrap();
    assert_eq!(uri.len(), 2);
    let kv = parse_connection_string("host=h dbname=d", Origin::DbnameArg).unwrap();
    assert_eq!(uri, kv);
}

/// Resolves a `-d` value the way config does: parse, record, apply defaults.
fn from_dbname_arg(s: &str) -> Result<ConnParams, ConnError> {
    let mut settings = Settings::default();
    settings.set_all(
        parse_connection_string(s, Origin::DbnameArg)?,
        Origin::DbnameArg,
    )?;
    settings.resolve(&defaults(false))
}

#[test]
fn no_error_quotes_a_password_or_userinfo() {
    // Each input once leaked "SECRET" (and sometimes all of it) into its error message.
    let table = [
        "host=h password=Pw SECRET",
        "host=h password=Pw SECRET=x",
        "host=h password='PwSECRET",
        "postgres://u:Pw@SECRET@h/db",
        "postgres://u@h/db?password%3DPw-SECRET",
        "postgres://u:Pw-SECRET/db",
        "postgres://u:Pw-SECRET@h:5432/db?sslmode=Pw-SECRET",
        "postgres://u:Pw-SECRET@h:5432/db?connect_timeout=SECRET",
        "postgres://u:PwSECRET@h:Pw-SECRET/db",
        "postgres://u:PwSECRET@h/db?hostaddr=SECRET",
        "postgres://u:Pw%zzSECRET@h/db",
        "jdbc:postgresql://h/db?user=u&password=SECRET",
        "mysql://u:SECRET@h/db",
        "port=SECRET password=SECRET",
        "target_session_attrs=SECRET",
        "password=SECRET host=a,b@c",
    ];
    for input in table {
        let err = from_dbname_arg(input).expect_err(input);
        let text = format!("{err} {err:?}");
        assert!(!text.contains("SECRET"), "{input}: {text}");
        assert!(text.contains("-d/--dbname"), "{input}: {text}");
    }
}

#[test]
fn driver_suffixed_and_mixed_case_schemes_are_postgresql_uris() {
    for uri in [
        "postgresql+psycopg2://u:pw@db:6432/app",
        "postgresql+asyncpg://u:pw@db:6432/app",
        "Postgres://u:pw@db:6432/app",
        "POSTGRESQL://u:pw@db:6432/app",
    ] {
        let p = from_dbname_arg(uri).unwrap();
        assert_eq!(
            (
                p.endpoints[0].to_string(),
                p.dbname.as_str(),
                p.user.as_str()
            ),
            ("db:6432".to_string(), "app", "u"),
            "{uri}"
        );
        assert_eq!(p.password.unwrap().expose(), "pw");
    }
    let err = from_dbname_arg("jdbc:postgresql://db/app").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported URI scheme \"jdbc:postgresql\" in -d/--dbname: expected postgresql:// or postgres:// (drop the \"jdbc:\" prefix)"
    );
}

#[test]
fn a_nul_byte_in_any_value_is_a_configuration_error() {
    for (uri, keyword) in [
        ("postgres://db%00.example/app", "host"),
        ("postgres://db/app%00x", "dbname"),
        ("postgres://u%00@db/app", "user"),
        (
            "postgres://db/app?application_name=a%00",
            "application_name",
        ),
    ] {
        assert_eq!(
            from_dbname_arg(uri),
            Err(ConnError::NulByte {
                origin: Origin::DbnameArg,
                keyword
            }),
            "{uri}"
        );
    }
}

#[test]
fn a_connection_string_in_a_single_setting_is_refused_without_showing_it() {
    let table = [
        ("host", "postgres://app:SECRET!@db/app"),
        ("host", "app:SECRET!@db"),
        ("user", "host=db password=SECRET!"),
        ("user", "password = SECRET! host = db"),
        ("dbname", "postgresql+asyncpg://app:SECRET!@db/app"),
    ];
    for (keyword, value) in table {
        let err = resolve(&[(keyword, value)]).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("SECRET"), "{keyword}: {text}");
        assert!(text.contains(keyword), "{keyword}: {text}");
    }
    // A password may hold anything; a socket directory may hold odd characters.
    assert!(resolve(&[("password", "a://b password=c")]).is_ok());
    assert!(resolve(&[("host", "/run/my sockets@x")]).is_ok());
    // Values pgwait never prints are data, as in libpq.
    assert!(resolve(&[("application_name", "svc://worker")]).is_ok());
    assert!(resolve(&[("options", "-c search_path=a://b")]).is_ok());
}
