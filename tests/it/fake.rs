//! Peers a real PostgreSQL server can't be made to be on demand: one that accepts and never
//! answers, one that hangs up after the startup packet, one that answers garbage, and one that
//! says 57P03 in German (classification must not depend on message text).

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::peer::{client_args, error_response, fake_server, read_startup};
use crate::support::pgwait;

fn run(port: u16, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = pgwait()
        .args(client_args(port))
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_peer_that_accepts_and_never_answers_is_a_timeout_not_a_hang() {
    let (port, connections) = fake_server(|stream| {
        std::thread::sleep(Duration::from_secs(30));
        drop(stream);
    });
    let (code, log, elapsed) = run(port, &["--connect-timeout", "300ms", "-t", "2s"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("timed out during startup"), "{log}");
    // Connected, so not the network: the hint must say the server did not answer.
    assert!(
        log.contains("hint: the connection was made but the server did not answer"),
        "{log}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "the stalled attempt was not retried"
    );
}

#[test]
fn a_peer_that_hangs_up_after_the_startup_packet_is_retried() {
    let (port, connections) = fake_server(|mut stream| {
        read_startup(&mut stream);
    });
    let (code, log, _) = run(port, &["-t", "1s"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("closed the connection during startup"),
        "{log}"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 3,
        "not retried: {log}"
    );
}

#[test]
fn a_peer_that_answers_garbage_is_not_postgresql_and_stops_at_once() {
    let (port, connections) = fake_server(|mut stream| {
        read_startup(&mut stream);
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        std::thread::sleep(Duration::from_millis(500));
    });
    let (code, log, elapsed) = run(port, &["-t", "30s"]);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("not a PostgreSQL server"), "{log}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

/// An ErrorResponse with SQLSTATE 57P03 and a German message.
fn german_57p03(mut stream: TcpStream) {
    if !read_startup(&mut stream) {
        return;
    }
    let _ = stream.write_all(&error_response(&[
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "57P03"),
        (b'M', "das Datenbanksystem startet"),
    ]));
}

#[test]
fn a_57p03_in_another_language_is_still_retried() {
    let (port, connections) = fake_server(german_57p03);
    let (code, log, _) = run(port, &["-t", "1500ms"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("57P03 das Datenbanksystem startet"), "{log}");
    // The text is not one of PostgreSQL's English ones: the SQLSTATE alone decides.
    assert!(
        log.contains("hint: the server is not accepting connections yet"),
        "{log}"
    );
    assert!(
        connections.load(Ordering::SeqCst) >= 3,
        "not retried: {log}"
    );
}

/// An ErrorResponse 57P03 whose message tries to forge a `ready` line and colour the terminal.
fn forging_57p03(mut stream: TcpStream) {
    if !read_startup(&mut stream) {
        return;
    }
    let _ = stream.write_all(&error_response(&[
        (b'S', "FATAL"),
        (b'C', "57P03"),
        (
            b'M',
            "starting\npgwait: ready after 0.01s (1 attempt): db\x1b[2K\x1b[32m\r{\"event\":\"ready\"}",
        ),
    ]));
}

#[test]
fn a_server_message_cannot_forge_or_colour_a_line_in_either_format() {
    let (port, _) = fake_server(forging_57p03);
    let (code, log, _) = run(port, &["-t", "600ms", "-v"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log:?}");
    assert!(log.lines().all(|l| l.starts_with("pgwait: ")), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("pgwait: ready")),
        "{log}"
    );
    assert!(log.contains("starting\\npgwait: ready after"), "{log}");

    let (code, log, _) = run(port, &["-t", "600ms", "-v", "--log-format", "json"]);
    assert_eq!(code, Some(1), "{log}");
    assert!(!log.contains('\x1b') && !log.contains('\r'), "{log:?}");
    for line in log.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_ne!(value["event"], "ready", "{line}");
    }
    assert!(log.contains("\\u001b[32m"), "{log}");
}

/// Answers 57P03 at once to the first four connections, then only after 150 ms: a server whose
/// queue has grown.
fn slowing_57p03(mut stream: TcpStream, nth: usize) {
    if !read_startup(&mut stream) {
        return;
    }
    if nth > 4 {
        std::thread::sleep(Duration::from_millis(150));
    }
    let _ = stream.write_all(&error_response(&[
        (b'S', "FATAL"),
        (b'C', "57P03"),
        (b'M', "the database system is not accepting connections"),
    ]));
}

#[test]
fn a_server_that_starts_answering_slowly_is_given_room() {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (port, _) =
        fake_server(move |stream| slowing_57p03(stream, seen.fetch_add(1, Ordering::SeqCst) + 1));
    let (code, log, _) = run(port, &["-t", "5s", "-v", "--log-format", "json"]);
    assert_eq!(code, Some(1), "{log}");
    let failed: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "attempt_failed")
        .collect();
    assert!(failed.len() >= 5, "{log}");
    let answer = |e: &serde_json::Value| e["answer_us"].as_u64().expect("answer_us");
    let delay = |e: &serde_json::Value| e["delay_ms"].as_u64().expect("delay_ms");
    // Quick answers: ordinary delays (a spread first retry under 500 ms, then ~250 ms ± 50 %).
    for e in &failed[..4] {
        assert!(answer(e) < 100_000 && delay(e) < 1_000, "{e}");
    }
    // 150 ms answers, ~140 ms more than the fastest: the next delay is stretched past a second
    // (20 ms per ms of excess over 10 ms, then -50 % at worst), and stays so.
    for e in &failed[4..] {
        assert!(answer(e) >= 140_000, "{e}");
        assert!(delay(e) >= 1_000, "not stretched: {e}");
    }
}
