use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::classify::Phase;
use crate::condition::{self, Condition};
use crate::conninfo::{Endpoint, SessionAttrs};
use crate::event::Target;
use crate::probe::{AddrFailure, Ready, Route};
use crate::signals::Signal;

fn db() -> Server {
    Server {
        host: "db".into(),
        port: 5432,
        route: Some(Route::Tcp(([10, 0, 0, 2], 5432).into())),
    }
}

fn server_error(sqlstate: &str, message: &str) -> AttemptError {
    AttemptError {
        failures: vec![AddrFailure::new(
            db(),
            Failure::Server {
                phase: Phase::Startup,
                sqlstate: sqlstate.into(),
                message: message.into(),
            },
            None,
        )],
    }
}

/// `db:5432/app`, the target every test event is about.
fn app() -> Target<'static> {
    static ENDPOINTS: std::sync::OnceLock<Vec<Endpoint>> = std::sync::OnceLock::new();
    let endpoints = ENDPOINTS.get_or_init(|| {
        vec![Endpoint::Tcp {
            host: "db".into(),
            hostaddr: None,
            port: 5432,
        }]
    });
    Target {
        endpoints,
        dbname: "app",
        user: "app",
        attrs: SessionAttrs::Any,
        conditions: &[],
        dialect: None,
    }
}

/// Emits `events` through a reporter with these settings; returns what it wrote.
fn written(settings: LogSettings, events: &[Event<'_>]) -> String {
    let mut out = Vec::new();
    let mut reporter = Reporter::new(&mut out, settings);
    reporter.clock = || UNIX_EPOCH + Duration::from_millis(1_795_496_832_345);
    for event in events {
        reporter.emit(event);
    }
    String::from_utf8(out).unwrap()
}

fn settings(verbosity: Verbosity, format: LogFormat) -> LogSettings {
    LogSettings { verbosity, format }
}

fn failed<'a>(error: &'a AttemptError, attempt: u32, decision: Decision) -> Event<'a> {
    Event::AttemptFailed {
        target: app(),
        attempt,
        elapsed: Duration::from_millis(10 * u64::from(attempt)),
        error,
        decision,
    }
}

fn retry(ms: u64) -> Decision {
    Decision::Retry {
        after: Duration::from_millis(ms),
        asked: false,
    }
}

#[test]
fn control_characters_are_escaped_and_ordinary_text_is_not() {
    let table = [
        ("plain text, ünïcode", "plain text, ünïcode"),
        ("a\nb", "a\\nb"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("del\x7f", "del\\x7f"),
        ("csi\u{9b}31m", "csi\\u{9b}31m"),
        ("rtl\u{202e}", "rtl\\u{202e}"),
        ("sep\u{2028}", "sep\\u{2028}"),
    ];
    for (raw, escaped) in table {
        assert_eq!(escape_controls(raw), escaped, "{raw:?}");
    }
}

#[test]
fn a_server_message_cannot_forge_or_colour_a_text_line() {
    let hostile = server_error(
        "57P03",
        "starting\npgwait: ready after 0.01s (1 attempt): db\x1b[2K\x1b[32m",
    );
    let text = written(LogSettings::default(), &[failed(&hostile, 1, retry(5))]);
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("starting\\npgwait: ready after"), "{text:?}");
}

#[test]
fn a_server_message_cannot_forge_a_json_line() {
    let hostile = server_error("57P03", "x\n{\"event\":\"ready\"}\x1b[31m\u{9b}\u{202e}");
    let json = written(
        settings(Verbosity::Normal, LogFormat::Json),
        &[failed(&hostile, 1, retry(5))],
    );
    assert_eq!(json.lines().count(), 1, "{json:?}");
    for raw in ['\x1b', '\u{9b}', '\u{202e}', '\n'] {
        assert!(!json.trim_end().contains(raw), "{raw:?} in {json:?}");
    }
    let value: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
    assert_eq!(value["event"], "attempt_failed");
    let msg = value["msg"].as_str().unwrap();
    assert!(
        msg.ends_with("x\n{\"event\":\"ready\"}\x1b[31m\u{9b}\u{202e}"),
        "{msg:?}"
    );
}

#[test]
fn json_lines_carry_the_documented_fields() {
    let error = server_error("57P03", "the database system is starting up");
    let ready = Ready {
        server: db(),
        socket_only: false,
        lag: None,
        facts: None,
    };
    let out = written(
        settings(Verbosity::Normal, LogFormat::Json),
        &[
            failed(&error, 1, retry(5)),
            Event::Ready {
                target: app(),
                elapsed: Duration::from_millis(1234),
                attempts: 7,
                ready: &ready,
            },
        ],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed = &lines[0];
    assert_eq!(failed["ts"], "2026-11-24T05:07:12.345Z");
    assert_eq!(failed["level"], "info");
    assert_eq!(failed["target"], "db:5432/app");
    assert_eq!(failed["address"], "db:5432 (10.0.0.2)");
    assert_eq!(failed["host"], "db");
    assert_eq!(failed["port"], 5432);
    assert_eq!(failed["ip"], "10.0.0.2");
    assert_eq!(failed["class"], "starting");
    assert_eq!(failed["sqlstate"], "57P03");
    assert_eq!(failed["attempts"], 1);
    assert_eq!(failed["elapsed_ms"], 10);
    assert_eq!(failed["delay_ms"], 5);
    assert_eq!(failed["reason"], "transient");
    assert_eq!(
        failed["msg"],
        "waiting for db:5432 (10.0.0.2): 57P03 the database system is starting up"
    );
    let ready = &lines[1];
    assert_eq!(ready["event"], "ready");
    assert_eq!(ready["attempts"], 7);
    assert_eq!(ready["elapsed_ms"], 1234);
    assert_eq!(
        ready["msg"],
        "ready after 1.23s (7 attempts): db:5432 (10.0.0.2)"
    );
    assert!(ready.get("lag_bytes").is_none());
}

#[test]
fn lag_is_on_the_ready_line_and_on_lagging_failures() {
    use crate::classify::NotMet;
    use crate::condition::{Condition, Lag, MaxLag};
    let conditions = [Condition::MaxLag(MaxLag {
        bytes: Some(16 << 20),
        time: Some(Duration::from_secs(5)),
    })];
    let target = Target {
        conditions: &conditions,
        ..app()
    };
    let ready = Ready {
        server: db(),
        socket_only: false,
        lag: Some(Lag {
            bytes: Some(2048),
            ms: Some(12),
        }),
        facts: None,
    };
    let lagging = AttemptError {
        failures: vec![AddrFailure::new(
            db(),
            Failure::NotMet {
                check: 0,
                got: NotMet::Lagging {
                    bytes: Some(40 << 20),
                    ms: None,
                },
            },
            None,
        )],
    };
    let out = written(
        settings(Verbosity::Normal, LogFormat::Json),
        &[
            Event::NotReady {
                target,
                elapsed: Duration::from_secs(3),
                attempts: 9,
                last: Some(&lagging),
            },
            Event::Ready {
                target,
                elapsed: Duration::from_secs(4),
                attempts: 10,
                ready: &ready,
            },
        ],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["class"], "lagging");
    assert_eq!(lines[0]["lag_bytes"], 40 << 20);
    assert!(lines[0].get("lag_ms").is_none());
    let msg = lines[0]["msg"].as_str().unwrap();
    assert!(
        msg.contains(
            "max-lag 16 MiB, 5000ms not met: standby is 40 MiB to replay, an unknown time behind"
        ),
        "{msg}"
    );
    assert_eq!(
        (lines[1]["lag_bytes"].clone(), lines[1]["lag_ms"].clone()),
        (2048.into(), 12.into())
    );
    let msg = lines[1]["msg"].as_str().unwrap();
    assert!(msg.contains("(lag 2 KiB to replay, 12 ms)"), "{msg}");
}

#[test]
fn verbosity_filters_both_formats_alike() {
    let error = server_error("57P03", "starting");
    let events = |e| {
        [
            failed(e, 1, retry(2)),
            failed(e, 2, retry(3)),
            Event::Interrupted {
                signal: Signal::TERMINATE,
                elapsed: Duration::from_secs(1),
            },
        ]
    };
    let table = [
        (Verbosity::Quiet, 0),
        (Verbosity::Normal, 2),
        (Verbosity::Verbose, 3),
    ];
    for (verbosity, lines) in table {
        for format in [LogFormat::Text, LogFormat::Json] {
            let out = written(settings(verbosity, format), &events(&error));
            assert_eq!(
                out.lines().count(),
                lines,
                "{verbosity:?} {format:?}:\n{out}"
            );
        }
    }
}

#[test]
fn the_line_for_an_attempt_follows_the_policys_decision() {
    let auth = server_error("28P01", "password authentication failed");
    let asked = Decision::Retry {
        after: Duration::from_millis(500),
        asked: true,
    };
    let retried = written(LogSettings::default(), &[failed(&auth, 1, asked)]);
    assert!(
        retried.ends_with("28P01 password authentication failed (retried: --retry-on auth)\n"),
        "{retried}"
    );
    // A decision to stop is not "waiting for": the outcome line says it.
    for stop in [Decision::Reject, Decision::GiveUp] {
        let out = written(LogSettings::default(), &[failed(&auth, 1, stop)]);
        assert_eq!(out, "", "{stop:?}");
    }
    let verbose = written(
        settings(Verbosity::Verbose, LogFormat::Json),
        &[failed(&auth, 1, Decision::Reject)],
    );
    let value: serde_json::Value = serde_json::from_str(verbose.trim_end()).unwrap();
    assert_eq!(
        (value["level"].as_str(), value["reason"].as_str()),
        (Some("debug"), Some("permanent"))
    );
}

#[test]
fn prints_one_line_per_state_change_not_per_attempt() {
    let refused = AttemptError {
        failures: vec![AddrFailure::new(
            db(),
            Failure::Io {
                phase: Phase::Connect,
                kind: std::io::ErrorKind::ConnectionRefused,
                detail: "refused".into(),
            },
            None,
        )],
    };
    let starting = server_error("57P03", "the database system is starting up");
    let mut events: Vec<Event<'_>> = (1..=6).map(|n| failed(&refused, n, retry(5))).collect();
    events.extend((7..=12).map(|n| failed(&starting, n, retry(5))));
    let out = written(LogSettings::default(), &events);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "pgwait: waiting for db:5432 (10.0.0.2): connection refused",
            "pgwait: waiting for db:5432 (10.0.0.2): 57P03 the database system is starting up",
        ]
    );
}

#[test]
fn servers_are_named_by_host_port_and_the_address_reached() {
    let server = |host: &str, route: Option<Route>| Server {
        host: host.into(),
        port: 5433,
        route,
    };
    let v6: std::net::SocketAddr = "[::1]:5433".parse().unwrap();
    let table = [
        (
            server("db", Some(Route::Tcp(([10, 0, 0, 2], 5433).into()))),
            "db:5433 (10.0.0.2)",
        ),
        (
            server("10.0.0.2", Some(Route::Tcp(([10, 0, 0, 2], 5433).into()))),
            "10.0.0.2:5433",
        ),
        (server("::1", Some(Route::Tcp(v6))), "[::1]:5433"),
        (
            server("localhost", Some(Route::Tcp(v6))),
            "localhost:5433 (::1)",
        ),
        (server("nowhere", None), "nowhere:5433"),
        (
            server("/tmp", Some(Route::Unix("/tmp/.s.PGSQL.5433".into()))),
            "/tmp/.s.PGSQL.5433",
        ),
    ];
    for (server, label) in table {
        assert_eq!(words::server(&server), label);
    }
}

#[test]
fn targets_and_conditions_are_named_from_their_parts() {
    let endpoints = [
        Endpoint::Tcp {
            host: "a".into(),
            hostaddr: None,
            port: 5432,
        },
        Endpoint::Socket {
            dir: "/run/pg".into(),
            port: 5433,
        },
    ];
    let conditions = [
        condition::table("App.\"Users\"").unwrap(),
        condition::extension("postgis").unwrap(),
        Condition::Query("select 1".into()),
        Condition::Migrations(crate::migrations::parse("flyway:2_1", None).unwrap()),
    ];
    let target = Target {
        endpoints: &endpoints,
        dbname: "app",
        user: "u",
        attrs: SessionAttrs::ReadWrite,
        conditions: &conditions,
        dialect: None,
    };
    assert_eq!(
        words::target(&target),
        "a:5432,/run/pg/.s.PGSQL.5433/app (read-write)"
    );
    let labels: Vec<String> = conditions.iter().map(words::condition).collect();
    assert_eq!(
        labels,
        [
            "table app.Users",
            "extension postgis",
            "--query",
            "migrations flyway:2.1"
        ]
    );
    let not_applied = AttemptError {
        failures: vec![AddrFailure::new(
            db(),
            Failure::NotMet {
                check: 3,
                got: crate::classify::NotMet::VersionNotApplied,
            },
            None,
        )],
    };
    let out = written(
        LogSettings::default(),
        &[Event::NotReady {
            target,
            elapsed: Duration::from_secs(1),
            attempts: 2,
            last: Some(&not_applied),
        }],
    );
    assert!(
        out.contains("migrations flyway:2.1 not met: version 2.1 is not applied yet"),
        "{out}"
    );
}

#[test]
fn require_auth_and_requirepeer_failures_say_what_the_server_did() {
    use crate::classify::AuthMethod;
    let table = [
        (
            Failure::AuthNotAllowed {
                require_auth: "scram-sha-256".into(),
                requested: Some(AuthMethod::Code(3)),
            },
            "the server asked for cleartext password authentication, which require_auth=scram-sha-256 does not allow (nothing was sent)",
        ),
        (
            Failure::AuthNotAllowed {
                require_auth: "password".into(),
                requested: None,
            },
            "let the client in without authenticating it, which require_auth=password",
        ),
        (
            Failure::WrongPeer {
                want: "postgres".into(),
                got: None,
                uid: 4242,
            },
            "requirepeer is \"postgres\", but the server runs as user ID 4242",
        ),
    ];
    for (failure, words) in table {
        let text = words::describe(&failure, Class::Auth, &[]);
        assert!(text.contains(words), "{text}");
    }
}

#[test]
fn unsupported_authentication_is_worded_from_the_request() {
    use crate::classify::AuthMethod;
    let table = [
        (AuthMethod::Code(7), "asks for GSSAPI authentication"),
        (
            AuthMethod::Code(42),
            "unknown authentication method (code 42)",
        ),
        (
            AuthMethod::Sasl(vec!["X-TOKEN".into()]),
            "only the SASL mechanism(s) X-TOKEN",
        ),
        (
            AuthMethod::Sasl(vec!["OAUTHBEARER".into()]),
            "asks for OAuth (OAUTHBEARER)",
        ),
    ];
    for (method, words) in table {
        let failure = Failure::UnsupportedAuth(method);
        let text = words::describe(&failure, Class::Auth, &[]);
        assert!(text.contains(words), "{text}");
    }
}
