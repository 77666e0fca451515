//! A hostile or broken network: peers that flood, a frozen first host, a resolver that never
//! answers. Memory stays bounded, deadlines hold, and each case ends as a classified failure.
//! Fake peers only where no real server misbehaves on demand; the healthy server is real.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::fd::FromRawFd;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::peer::{client_args, fake_server, message, read_startup, trust_login};
use crate::support::release;
use crate::support::*;

/// Peak RSS allowed under any peer behaviour (issue: a 16 MiB init container must survive).
const RSS_LIMIT_KIB: i64 = 8 * 1024;

/// Runs `cmd` to the end; returns its status, stderr and wall time.
fn run_timed(cmd: &mut Command) -> (ExitStatus, String, Duration) {
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let elapsed = started.elapsed();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status, log, elapsed)
}

/// Writes `chunk` over and over until the client goes away.
fn stream_forever(stream: &mut TcpStream, chunk: &[u8]) {
    while stream.write_all(chunk).is_ok() {}
}

fn huge_length(mut stream: TcpStream) {
    if read_startup(&mut stream) {
        let _ = stream.write_all(b"R\x7f\xff\xff\xff");
        stream_forever(&mut stream, &[0u8; 65536]);
    }
}

fn notice_flood(mut stream: TcpStream) {
    if read_startup(&mut stream) {
        let _ = stream.write_all(&message(b'R', &0u32.to_be_bytes()));
        let notice = message(b'N', b"SNOTICE\0Mhello\0\0");
        stream_forever(&mut stream, &notice.repeat(1000));
    }
}

fn parameter_flood(mut stream: TcpStream) {
    if read_startup(&mut stream) {
        let _ = stream.write_all(&message(b'R', &0u32.to_be_bytes()));
        // Distinct names: tokio-postgres keeps every parameter in a map.
        for i in 0u64.. {
            let param = message(b'S', format!("p{i}\0value\0").as_bytes());
            if stream.write_all(&param).is_err() {
                return;
            }
        }
    }
}

fn row_flood(mut stream: TcpStream) {
    if read_startup(&mut stream) && stream.write_all(&trust_login()).is_ok() {
        let mut query = [0u8; 5];
        if stream.read_exact(&mut query).is_ok() {
            let description = message(
                b'T',
                b"\0\x01c\0\0\0\0\0\0\0\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0",
            );
            let _ = stream.write_all(&description);
            let row = message(b'D', b"\0\x01\0\0\0\x011");
            stream_forever(&mut stream, &row.repeat(1000));
        }
    }
}

/// Runs pgwait with stderr on a full one-page pipe: it blocks writing its first line, with all
/// its memory still held, and its peak RSS (VmHWM) is read then. (wait4's ru_maxrss would count
/// the test process itself: Linux carries the pre-exec high-water mark over exec.)
fn peak_rss_at_first_line(cmd: &mut Command) -> (ExitStatus, String, i64) {
    let mut fds = [0; 2];
    // SAFETY: plain pipe/fcntl/write on descriptors created here and owned below.
    let (read_end, write_end) = unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096);
        libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK);
        while libc::write(fds[1], [b'.'; 512].as_ptr().cast(), 512) > 0 {}
        libc::fcntl(fds[1], libc::F_SETFL, 0);
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    let mut child = cmd.stderr(Stdio::from(write_end)).spawn().unwrap();
    // The command keeps its copy of the write end until told otherwise: close it.
    cmd.stderr(Stdio::null());
    let status_file = format!("/proc/{}/status", child.id());
    let wchan = format!("/proc/{}/wchan", child.id());
    let mut peak = 0;
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        let blocked = std::fs::read_to_string(&wchan).is_ok_and(|w| w.contains("pipe_write"));
        let status = std::fs::read_to_string(&status_file).unwrap_or_default();
        if let Some(kib) = status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            peak = kib.trim().trim_end_matches(" kB").trim().parse().unwrap();
        }
        if blocked {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let it finish: drain the pipe.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&read_end).read_to_string(&mut text);
        text
    });
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    let log = reader.join().unwrap().trim_start_matches('.').to_string();
    (status, log, peak)
}

#[test]
fn flooding_peers_cost_bounded_memory_and_end_as_not_postgresql() {
    type Peer = fn(TcpStream);
    let cases: [(&str, Peer, &str); 4] = [
        ("2 GiB message length", huge_length, "message length"),
        ("NoticeResponse flood", notice_flood, "before ReadyForQuery"),
        (
            "ParameterStatus flood",
            parameter_flood,
            "before ReadyForQuery",
        ),
        ("DataRow flood", row_flood, "in one session"),
    ];
    // The bound is for the shipped binary; a debug build alone needs about 7 MiB.
    release::build_static();
    let shipped = release::static_binary("pgwait");
    let mut report = Vec::new();
    for (name, peer, says) in cases {
        let (port, _) = fake_server(peer);
        let (status, log, rss) = peak_rss_at_first_line(
            Command::new(&shipped)
                .env_clear()
                .args(client_args(port))
                .args(["-t", "20s", "--connect-timeout", "10s"]),
        );
        report.push(format!("{name}: peak RSS {rss} KiB"));
        assert_eq!(status.code(), Some(3), "{name}: {log}");
        assert!(log.contains("not a PostgreSQL server"), "{name}: {log}");
        assert!(log.contains(says), "{name}: {log}");
        assert!(rss <= RSS_LIMIT_KIB, "{name}: peak RSS {rss} KiB\n{log}");
    }
    eprintln!("{}", report.join("\n"));
}

/// Accepts and never answers, like a frozen primary or a load balancer with no backend.
fn frozen(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(60));
    drop(stream);
}

#[test]
fn a_frozen_first_host_does_not_starve_the_next_one() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let (hung, connections) = fake_server(frozen);
    let started = Instant::now();
    let out = pgwait()
        .args([
            "-h",
            "127.0.0.1,127.0.0.1",
            "-U",
            TRUST_USER,
            "-d",
            "postgres",
        ])
        .args(["-p", &format!("{hung},{}", cluster.port)])
        .args(["--connect-timeout", "1s", "-t", "20s", "-v"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("127.0.0.1:{}", cluster.port)),
        "{log}"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{log}");
    // One connect limit for the frozen host, then the real one: far below the overall deadline.
    assert!(started.elapsed() < Duration::from_secs(10), "{log}");
}

/// Binds a UDP "DNS server" on port 53 of a loopback address that swallows every query.
fn silent_dns() -> (String, Arc<AtomicUsize>) {
    let address = "127.83.84.85";
    let socket = UdpSocket::bind((address, 53)).expect("bind UDP port 53 (needs root)");
    let queries = Arc::new(AtomicUsize::new(0));
    let counter = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while socket.recv_from(&mut buf).is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (address.to_string(), queries)
}

#[test]
fn a_resolver_that_never_answers_does_not_hold_the_exit_past_the_deadline() {
    let (dns, queries) = silent_dns();
    let dir = scratch_dir("silent-dns");
    let resolv = dir.join("resolv.conf");
    let nsswitch = dir.join("nsswitch.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {dns}\noptions timeout:30 attempts:2\n"),
    )
    .unwrap();
    std::fs::write(&nsswitch, "hosts: dns\n").unwrap();
    // A private mount namespace points this one process's resolver at the silent server.
    let script = r#"mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/nsswitch.conf && exec "$3" -h db.pgwait-test.example -t 2s --connect-timeout 500ms"#;
    let (status, log, elapsed) = run_timed(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&resolv)
            .arg(&nsswitch)
            .arg(env!("CARGO_BIN_EXE_pgwait"))
            .env_clear(),
    );
    eprintln!("hung resolver, -t 2s: exited after {elapsed:?}");
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("not ready after 2.0"), "{log}");
    // Each attempt's lookup ends at its own limit, and later attempts join the one in flight.
    assert!(log.contains("timed out during name lookup"), "{log}");
    assert!(!log.contains("(1 attempt)"), "{log}");
    assert!(
        queries.load(Ordering::SeqCst) >= 1,
        "the resolver never asked: {log}"
    );
    // The resolver would hold a lookup for a minute; the exit must follow the deadline.
    assert!(elapsed < Duration::from_millis(3500), "{elapsed:?}: {log}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Asks for a SASL mechanism pgwait does not have.
fn oauth_only(mut stream: TcpStream) {
    if read_startup(&mut stream) {
        let _ = stream.write_all(&message(b'R', b"\0\0\0\x0aOAUTHBEARER\0\0"));
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_unknown_sasl_mechanism_is_named() {
    let (port, _) = fake_server(oauth_only);
    let out = pgwait()
        .args(client_args(port))
        .args(["-t", "5s"])
        .env("PGPASSWORD", "pw")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("OAUTHBEARER"), "{log}");
}

/// After a good login, a RowDescription whose body ends before its fields do.
fn truncated_row_description(mut stream: TcpStream) {
    if read_startup(&mut stream) && stream.write_all(&trust_login()).is_ok() {
        let mut query = [0u8; 64];
        if stream.read(&mut query).is_ok() {
            let _ = stream.write_all(&message(b'T', b"\0\x01c\0\0\0"));
            std::thread::sleep(Duration::from_secs(5));
        }
    }
}

#[test]
fn a_malformed_message_on_an_open_connection_is_not_postgresql_not_a_drop() {
    let (port, connections) = fake_server(truncated_row_description);
    let (status, log, elapsed) = run_timed(pgwait().args(client_args(port)).args(["-t", "20s"]));
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("not a PostgreSQL server"), "{log}");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{log}");
    assert!(elapsed < Duration::from_secs(10), "{log}");
}
