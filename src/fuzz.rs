//! Property-based fuzzing of everything that parses untrusted text: URIs and conninfo strings,
//! service files, password files and whole configurations (argv + environment). Properties: no
//! input panics, and no error text (Display or Debug) contains the password that was in it.
//!
//! Each target runs for a time budget: `PGWAIT_FUZZ_SECS` in total (default 20, split across
//! the targets), so CI keeps a short run and a long one is
//! `PGWAIT_FUZZ_SECS=600 cargo test --release fuzz -- --nocapture`. A failure prints the seed
//! and the shrunk input.

use std::collections::HashMap;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::cli;
use crate::config::{self, ConfigError};
use crate::conninfo::{self, service, Defaults, Origin, Settings};
use crate::passfile;

const TARGETS: u32 = 7;

fn budget() -> Duration {
    let total: u64 = std::env::var("PGWAIT_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(total) / TARGETS
}

/// Runs `property` on values of `strategy` until the budget is spent; shrinks a failure.
fn fuzz<S>(name: &str, strategy: S, property: impl Fn(&S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: Debug,
{
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let check = |value: &S::Value| match catch_unwind(AssertUnwindSafe(|| property(value))) {
        Ok(result) => result,
        Err(_) => Err("panicked".to_string()),
    };
    let (started, budget) = (Instant::now(), budget());
    let mut executions = 0u64;
    while started.elapsed() < budget {
        let mut tree = strategy.new_tree(&mut runner).expect("generate");
        executions += 1;
        let Err(mut why) = check(&tree.current()) else {
            continue;
        };
        // Shrink as proptest does: simplify while it still fails, complicate back when not;
        // report the last input seen failing.
        let mut input = format!("{:?}", tree.current());
        'shrink: for _ in 0..10_000 {
            if !tree.simplify() {
                break;
            }
            loop {
                match check(&tree.current()) {
                    Err(smaller) => {
                        (why, input) = (smaller, format!("{:?}", tree.current()));
                        continue 'shrink;
                    }
                    Ok(()) if tree.complicate() => {}
                    Ok(()) => break 'shrink,
                }
            }
        }
        panic!("fuzz {name} (seed {seed}): {why}\ninput: {input}");
    }
    eprintln!(
        "fuzz {name}: {executions} executions in {:?}, no findings",
        started.elapsed()
    );
}

/// A strong password: letters and digits around a symbol outside `[A-Za-z0-9_.,+-]`. Text made
/// only of those characters is shown where a name is expected (a service name, a duration typed
/// wrong) and cannot be told from a password typed in its place; anything else is never shown.
fn password() -> impl Strategy<Value = String> {
    regex("[A-Za-z0-9]{4,10}[!#^*()~][A-Za-z0-9]{2,6}")
}

fn regex(pattern: &str) -> impl Strategy<Value = String> {
    proptest::string::string_regex(pattern).expect("a valid pattern")
}

/// Connection strings the way people write them, with the password in every place it goes.
const TEMPLATES: &[&str] = &[
    "postgres://app:{P}@db:5432/app",
    "postgresql://app:{P}@db1:5432,db2/app?sslmode=require&connect_timeout=5",
    "postgresql+psycopg2://app:{P}@db/app",
    "postgresql+asyncpg://app:{P}@[::1]:6432/app?target_session_attrs=read-write",
    "Postgres://app:{P}@db/app",
    "postgres://app@db/app?password={P}",
    "jdbc:postgresql://db/app?user=app&password={P}",
    "host=db password={P} dbname=app",
    "host=db port=5432 password='{P}' sslmode=verify-full",
    "password = {P} host = db",
    "service=x password={P}",
];

/// Damage: insert a troublesome character or delete one, at a fraction of the length.
fn edits() -> impl Strategy<Value = Vec<(f64, Option<char>)>> {
    let troublemaker = prop::sample::select(vec![
        ' ', '\'', '\\', '=', ':', '@', '/', '?', '&', '%', '[', ']', ',', '\0', '\n', '+', '#',
    ]);
    prop::collection::vec((0.0..1.0f64, prop::option::of(troublemaker)), 0..4)
}

fn damaged(template: &str, password: &str, edits: &[(f64, Option<char>)]) -> String {
    let mut chars: Vec<char> = template.replace("{P}", password).chars().collect();
    for (at, edit) in edits {
        let i = ((chars.len() as f64) * at) as usize;
        match edit {
            Some(c) => chars.insert(i.min(chars.len()), *c),
            None if i < chars.len() => {
                chars.remove(i);
            }
            None => {}
        }
    }
    chars.into_iter().collect()
}

/// (the string, its password, whether it was damaged).
fn connection_string() -> impl Strategy<Value = (String, String, bool)> {
    (prop::sample::select(TEMPLATES), password(), edits())
        .prop_map(|(t, p, e)| (damaged(t, &p, &e), p, !e.is_empty()))
}

fn defaults() -> Defaults {
    Defaults {
        user: "osuser".into(),
        home: None,
        socket_dir_exists: false,
        system_roots: None,
    }
}

fn must_not_show(text: String, password: &str) -> Result<(), String> {
    if text.contains(password) {
        Err(format!("the password shows: {text}"))
    } else {
        Ok(())
    }
}

/// Parse and resolve like config does; the error if any.
fn resolve(s: &str) -> Option<conninfo::ConnError> {
    let pairs = conninfo::parse_connection_string(s, Origin::DbnameArg);
    let mut settings = Settings::default();
    let result = pairs
        .and_then(|pairs| settings.set_all(pairs, Origin::DbnameArg))
        .and_then(|()| settings.resolve(&defaults()));
    result.err()
}

#[test]
fn fuzz_connection_strings_never_panic_or_show_the_password() {
    fuzz(
        "connection strings",
        connection_string(),
        |(s, password, _)| match resolve(s) {
            Some(e) => must_not_show(format!("{e} {e:?}"), password),
            None => Ok(()),
        },
    );
}

#[test]
fn fuzz_arbitrary_text_as_a_connection_string_never_panics() {
    fuzz("arbitrary text", regex("\\PC{0,64}|[ -~]{0,64}"), |s| {
        resolve(s);
        Ok(())
    });
}

#[test]
fn fuzz_service_and_password_files_never_panic_or_show_the_password() {
    let lines = prop::collection::vec(
        prop_oneof![
            Just("[svc]".to_string()),
            Just("host=db".to_string()),
            Just("password={P}".to_string()),
            Just("*:*:*:app:{P}".to_string()),
            Just("db:5432:app:app:{P}".to_string()),
            regex("[ -~]{0,30}"),
            regex("\\PC{0,20}"),
        ],
        0..8,
    );
    let file = (lines, password(), edits())
        .prop_map(|(lines, p, e)| (damaged(&lines.join("\n"), &p, &e), p));
    fuzz("service and password files", file, |(text, password)| {
        if let Err(e) = service::find(text, "svc") {
            must_not_show(e, password)?;
        }
        let (_, bad_lines) = passfile::parse(text);
        must_not_show(format!("{bad_lines:?}"), password)
    });
}

/// argv and environment with the password somewhere in them, and whether any was damaged.
#[derive(Debug)]
struct Invocation {
    argv: Vec<String>,
    env: Vec<(&'static str, String)>,
    password: String,
    damaged: bool,
}

fn invocation() -> impl Strategy<Value = Invocation> {
    let flag = prop::sample::select(vec![
        "-d",
        "-h",
        "-p",
        "-U",
        "-t",
        "--connect-timeout",
        "--status-interval",
        "--retry-on",
        "--log-format",
        "--table",
        "--extension",
        "--query",
        "--migrations",
        "--migrations-table",
        "--password-command",
    ]);
    let var = prop::sample::select(vec![
        "DATABASE_URL",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSSLMODE",
        "PGCONNECT_TIMEOUT",
        "PGWAIT_TIMEOUT",
        "PGTARGETSESSIONATTRS",
        "PGSERVICE",
    ]);
    (
        prop::collection::vec((flag, connection_string()), 0..3),
        prop::collection::vec((var, connection_string()), 0..3),
        password(),
    )
        .prop_map(|(flags, vars, password)| {
            let damaged = flags.iter().any(|(_, v)| v.2) || vars.iter().any(|(_, v)| v.2);
            // Every generated string carries its own password; one value throughout.
            let swap = |(s, own, _): (String, String, bool)| s.replace(&own, &password);
            let argv = flags
                .into_iter()
                .flat_map(|(f, v)| [f.to_string(), swap(v)])
                .collect();
            let env = vars.into_iter().map(|(k, v)| (k, swap(v))).collect();
            Invocation {
                argv,
                env,
                password,
                damaged,
            }
        })
}

/// Errors never show the password. A configuration that was accepted must not carry it where
/// lines show it (host, user, database) when every value was a well-formed connection string in
/// the wrong place: damaged text that no longer looks like one is used as given, as libpq does.
#[test]
fn fuzz_whole_configurations_never_panic_or_show_the_password() {
    fuzz("configurations", invocation(), |call| {
        let password = &call.password;
        let mut env: HashMap<&str, &str> = call.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.insert("PGPASSWORD", password);
        let args = std::iter::once("pgwait").chain(call.argv.iter().map(String::as_str));
        let opts = match cli::parse(args) {
            Ok(cli::Parsed::Run(opts)) => *opts,
            Ok(_) => return Ok(()),
            Err(e) => return must_not_show(format!("{e} {e:?}"), password),
        };
        match config::build(opts, &env, &defaults()) {
            Err(e) => must_not_show(format!("{e} {e:?}"), password),
            Ok(_) if call.damaged => Ok(()),
            Ok(config) => must_not_show(format!("{:?}", config.targets), password),
        }
    });
}

#[test]
fn fuzz_config_errors_are_values_not_panics_for_any_bytes_in_a_flag() {
    let argv = prop::collection::vec(regex("\\PC{0,24}|-[a-zA-Z-]{1,16}|--"), 0..6);
    fuzz("argv", argv, |argv| {
        let env: HashMap<&str, &str> = HashMap::new();
        let args = std::iter::once("pgwait").chain(argv.iter().map(String::as_str));
        if let Ok(cli::Parsed::Run(opts)) = cli::parse(args) {
            let _: Result<_, ConfigError> = config::build(*opts, &env, &defaults());
        }
        Ok(())
    });
}

/// What token endpoints and `--password-command` hand pgwait is untrusted: a reply, a URL from a
/// variable, a command line. Parsing any bytes never panics, and no error carries the input (a
/// token fragment in a malformed reply, a secret argument).
#[test]
fn fuzz_token_replies_urls_and_command_lines_never_panic_or_echo() {
    use crate::token::{command::PasswordCommand, http::Url, oauth};
    let input = (regex("\\PC{0,40}"), password(), 0usize..3);
    fuzz("token inputs", input, |(text, secret, shape)| {
        let text = match shape {
            0 => format!("{{\"access_token\":{text:?}{secret},\"expires_in\":\"{text}\"}}"),
            1 => format!("http://{text}{secret}/x"),
            _ => format!("vault {text} '{secret}"),
        };
        if let Err(e) = oauth::parse_token(text.as_bytes(), SystemTime::now()) {
            must_not_show(format!("{e:?}"), secret)?;
        }
        if let Err(e) = Url::parse(&text) {
            must_not_show(e.to_string(), secret)?;
        }
        match PasswordCommand::parse(&text) {
            Ok(command) => must_not_show(format!("{command:?}"), secret),
            Err(e) => must_not_show(format!("{e} {e:?}"), secret),
        }
    });
}

/// What a server sends `--diagnose` is untrusted: a pg_hba.conf message, a 57P03's text, a
/// certificate. Reading any of them never panics, and a certificate's text never holds a raw
/// control character (it could forge a report line).
#[test]
fn fuzz_server_texts_and_certificates_never_panic() {
    let input = (
        regex("\\PC{0,60}"),
        prop::collection::vec(any::<u8>(), 0..600),
    );
    fuzz("server texts", input, |(text, bytes)| {
        let message = format!(
            "no pg_hba.conf entry for host \"{text}\", user \"{text}\", database \"x\", {text}"
        );
        let _ = crate::diagnose::server_text_parses(&message);
        let _ = crate::diagnose::server_text_parses(text);
        if let Ok(cert) = crate::x509::summarize(bytes) {
            let shown = format!("{}{}", cert.subject_text(), cert.issuer_text());
            if shown.chars().any(|c| c.is_control()) {
                return Err(format!("a control character in {shown:?}"));
            }
        }
        Ok(())
    });
}
