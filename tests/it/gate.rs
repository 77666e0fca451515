//! The built binary against real PostgreSQL servers the harness starts.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn tcp_args(cluster: &Cluster, user: &str) -> Vec<String> {
    vec![
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        cluster.port.to_string(),
        "-U".into(),
        user.into(),
        "-d".into(),
        "postgres".into(),
    ]
}

/// Makes the spawned pgwait start with these signals blocked, as a careless parent might.
fn with_blocked<'a>(cmd: &'a mut Command, signals: &'static [i32]) -> &'a mut Command {
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in signals {
                libc::sigaddset(&mut set, *s);
            }
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// Starts pgwait gating an app that runs `sql` against the cluster and writes the result to
/// `marker`: the app can only succeed if pgwait did not exec too early.
fn spawn_gated_query(cluster: &Cluster, sql: &str, marker: &std::path::Path) -> Running {
    let app = format!(
        "{} -X -A -t -h 127.0.0.1 -p {} -U {TRUST_USER} -d postgres -c '{sql}' > {}",
        pg().bin.join("psql").display(),
        cluster.port,
        marker.display()
    );
    Running::spawn(
        pgwait()
            .args(tcp_args(cluster, TRUST_USER))
            .args(["-t", "60s", "-v", "--", "sh", "-c", &app]),
    )
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn execs_once_a_server_started_mid_wait_accepts_queries() {
    let mut cluster = Cluster::new("");
    let marker = cluster.root.join("app-ran");
    let mut child = spawn_gated_query(&cluster, "select 41+1", &marker);
    child.expect_more("connection refused", 3, Duration::from_secs(10));
    assert!(child.is_running(), "pgwait ended before any server existed");
    cluster.start();
    let (status, log) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "42");
    assert!(log.contains("connection refused"), "{log}");
    assert!(log.contains("ready after"), "{log}");
}

#[test]
fn waits_through_57p03_until_a_standby_is_promoted_and_never_before() {
    let mut cluster = Cluster::new("hot_standby = off\n");
    std::fs::write(cluster.data.join("standby.signal"), "").unwrap();
    let _ = Command::new("chown")
        .arg("--reference")
        .arg(&cluster.data)
        .arg(cluster.data.join("standby.signal"))
        .status();
    cluster.start();
    let marker = cluster.root.join("recovery");
    let mut child = spawn_gated_query(&cluster, "select pg_is_in_recovery()", &marker);
    // The standby listens and rejects with 57P03 for as long as it stays a standby.
    assert!(
        eventually(Duration::from_secs(20), || cluster
            .log()
            .contains("hot standby mode is disabled")
            || cluster.log().contains("not accepting connections")),
        "{}",
        cluster.log()
    );
    // pgwait is told 57P03 again and again, and keeps waiting.
    child.expect_more("57P03", 3, Duration::from_secs(20));
    assert!(
        child.is_running(),
        "pgwait ended while the server was still a standby"
    );
    assert!(!marker.exists(), "the app ran before promotion");
    cluster.promote();
    let (status, log) = child.finish(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{log}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        "f",
        "app saw a server still in recovery"
    );
    assert!(log.contains("57P03"), "{log}");
}

#[test]
fn retries_too_many_connections_until_a_slot_frees() {
    let mut cluster = Cluster::new("max_connections = 3\nsuperuser_reserved_connections = 0\n");
    cluster.start_ready();
    // Each holder retries until it has a slot, so the probe below can't starve one for good;
    // the probe failing then means all three slots are held by the holders.
    let holder = format!(
        "until {} -X -q -h {} -p {} -U postgres -d postgres -c 'select pg_sleep(4)' >/dev/null 2>&1; do sleep 0.05; done",
        pg().bin.join("psql").display(),
        cluster.socket_dir.display(),
        cluster.port
    );
    let holders: Vec<_> = (0..3)
        .map(|_| Command::new("sh").args(["-c", &holder]).spawn().unwrap())
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || !cluster
            .psql("postgres", "select 1")
            .status
            .success()),
        "the server never filled up"
    );
    let out = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .args(["-t", "30s"])
        .output()
        .unwrap();
    let log = stderr_of(&out);
    for mut holder in holders {
        let _ = holder.wait();
    }
    assert!(out.status.success(), "{log}");
    assert!(log.contains("53300"), "{log}");
}

#[test]
fn a_wrong_password_exits_3_at_once_and_never_shows_the_password() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let started = Instant::now();
    let out = pgwait()
        .args(tcp_args(&cluster, SCRAM_USER))
        .args(["-v", "-t", "60s"])
        .env("PGPASSWORD", "Wr0ng-s3cret-value")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(log.contains("28P01"), "{log}");
    assert!(!log.contains("Wr0ng-s3cret-value"), "{log}");
    assert_eq!(
        log.lines().filter(|l| l.contains("28P01")).count(),
        2,
        "one attempt line (-v) and one cause line:\n{log}"
    );
}

#[test]
fn a_missing_database_exits_3() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = pgwait()
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port.to_string(),
            "-U",
            TRUST_USER,
            "-d",
            "no_such_db",
        ])
        .output()
        .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("3D000") && log.contains("hint: create the database"),
        "{log}"
    );
}

#[test]
fn authenticates_with_scram_md5_and_trust() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    for (user, password) in [
        (SCRAM_USER, Some(SCRAM_PASSWORD)),
        (MD5_USER, Some(MD5_PASSWORD)),
        (TRUST_USER, None),
    ] {
        let mut cmd = pgwait();
        cmd.args(tcp_args(&cluster, user));
        if let Some(password) = password {
            cmd.env("PGPASSWORD", password);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{user}: {}", stderr_of(&out));
    }
    let uri = format!(
        "postgresql://{SCRAM_USER}:{}@127.0.0.1:{}/postgres",
        SCRAM_PASSWORD, cluster.port
    );
    let out = pgwait().args(["-d", &uri]).output().unwrap();
    assert!(out.status.success(), "URI: {}", stderr_of(&out));
    let missing = pgwait()
        .args(tcp_args(&cluster, SCRAM_USER))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        stderr_of(&missing).contains("none is set"),
        "{}",
        stderr_of(&missing)
    );
    assert!(
        cluster.log().contains("application_name=pgwait")
            || cluster.log().contains("connection authorized")
    );
}

#[test]
fn connects_over_a_unix_socket_and_terminates_cleanly() {
    // The server logs the end of each session, after any "unexpected EOF" it would log.
    let mut cluster = Cluster::new("log_disconnections = on\n");
    cluster.start_ready();
    let out = pgwait()
        .arg("-h")
        .arg(&cluster.socket_dir)
        .args(["-p", &cluster.port.to_string(), "-U", "postgres"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains(".s.PGSQL."), "{}", stderr_of(&out));
    assert!(
        eventually(Duration::from_secs(10), || cluster
            .log()
            .contains("disconnection:")),
        "{}",
        cluster.log()
    );
    let log = cluster.log();
    assert!(log.contains("connection authorized"), "{log}");
    assert!(
        !log.contains("unexpected EOF"),
        "pgwait did not send Terminate:\n{log}"
    );
}

#[test]
fn sigterm_while_waiting_exits_143_promptly() {
    let port = free_port();
    let mut cmd = pgwait();
    let mut child = Running::spawn(with_blocked(&mut cmd, &[libc::SIGTERM]).args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        "0",
    ]));
    child.expect("connection refused", Duration::from_secs(10));
    assert!(child.is_running());
    let sent = Instant::now();
    unsafe_kill(child.id(), "TERM");
    let (status, log) = child.finish(Duration::from_secs(5));
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    assert!(log.contains("interrupted by SIGTERM"), "{log}");
}

#[test]
fn exec_failures_map_to_126_and_127() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .args(["--", "no-such-command-pgwait"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("command not found: no-such-command-pgwait"));
    let not_exec = cluster.root.join("not-executable.sh");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let out = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .arg("--")
        .arg(&not_exec)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("cannot execute"),
        "{}",
        stderr_of(&out)
    );
    // Executable, but neither ELF nor #!: execvp would hand it to /bin/sh; pgwait must not.
    let no_header = cluster.root.join("no-header");
    std::fs::write(&no_header, "touch ran-by-a-shell\n").unwrap();
    std::fs::set_permissions(&no_header, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut path = std::ffi::OsString::from(&cluster.root);
    path.push(":/usr/bin:/bin");
    for program in [no_header.as_os_str(), OsStr::new("no-header")] {
        let out = pgwait()
            .args(tcp_args(&cluster, TRUST_USER))
            .arg("--")
            .arg(program)
            .env("PATH", &path)
            .current_dir(&cluster.root)
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(126), "{program:?}: {stderr}");
        assert!(stderr.contains("executable format"), "{stderr}");
        assert!(
            !cluster.root.join("ran-by-a-shell").exists(),
            "a shell ran it"
        );
    }
}

/// Like `nohup` and a shell's background job: the parent ignores signals before starting pgwait.
fn with_ignored<'a>(cmd: &'a mut Command, signals: &'static [i32]) -> &'a mut Command {
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for s in signals {
                libc::signal(*s, libc::SIG_IGN);
            }
            Ok(())
        })
    }
}

#[test]
fn ignored_signals_stay_ignored_during_the_wait_and_in_the_command() {
    let mut cluster = Cluster::new("");
    let ignored = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE];
    let mut cmd = pgwait();
    let mut child = with_ignored(
        &mut cmd,
        &[libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE],
    )
    .args(tcp_args(&cluster, TRUST_USER))
    .args(["-t", "60s", "--", "sh", "-c", "read line"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    handles_sigterm(pid);
    // nohup's promise: a hangup (or Ctrl-C in the background) does not end the wait. A signal
    // ignored when it is sent is discarded at once, so the masks at that moment decide.
    for (name, signal) in [("HUP", libc::SIGHUP), ("INT", libc::SIGINT)] {
        assert!(mask_has(pid, "SigIgn", signal), "{name} is not ignored");
        crate::support::unsafe_kill(pid, name);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "an ignored signal ended the wait"
    );
    cluster.start_ready();
    assert!(
        eventually(Duration::from_secs(20), || std::fs::read_link(format!(
            "/proc/{pid}/exe"
        ))
        .map(|exe| !exe.to_string_lossy().contains("pgwait"))
        .unwrap_or(false)),
        "pgwait never exec'd"
    );
    settled_in_read(pid);
    let (_, sigign, _) = inherited(pid);
    let sigign = u64::from_str_radix(&sigign, 16).unwrap();
    for signal in ignored {
        assert_ne!(
            sigign & (1u64 << (signal - 1)),
            0,
            "signal {signal} not ignored: {sigign:x}"
        );
    }
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// Reads one field of /proc/PID/status.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap()
        .trim()
        .to_string()
}

/// Whether `pid`'s `field` signal mask (`SigCgt`, `SigIgn`, …) holds `signal`.
fn mask_has(pid: u32, field: &str, signal: i32) -> bool {
    let mask = u64::from_str_radix(&status_field(pid, field), 16).unwrap();
    mask & (1u64 << (signal - 1)) != 0
}

/// What a process inherited: (SigBlk, SigIgn, open fds), read from /proc.
fn inherited(pid: u32) -> (String, String, Vec<String>) {
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    (
        status_field(pid, "SigBlk"),
        status_field(pid, "SigIgn"),
        fds,
    )
}

/// Whether `pid` is blocked in read(2) (`/proc/PID/syscall` starts with its number): a shell
/// that has settled into `read line`, whose signal state and fds are then what it keeps.
fn blocked_in_read(pid: u32) -> bool {
    #[cfg(target_arch = "aarch64")]
    const READ: &str = "63";
    #[cfg(not(target_arch = "aarch64"))]
    const READ: &str = "0";
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .is_ok_and(|s| s.split_whitespace().next() == Some(READ))
}

/// Waits until `pid` is blocked in read(2); panics after 10 s.
fn settled_in_read(pid: u32) {
    assert!(
        eventually(Duration::from_secs(10), || blocked_in_read(pid)),
        "process {pid} never blocked in read"
    );
}

/// The same for a shell spawned directly by this test: the spawner's own leftovers (fds and
/// ignored signals inherited from whatever runs the tests) are not pgwait's doing.
fn baseline() -> (String, String, Vec<String>) {
    let mut sh = Command::new("sh")
        .args(["-c", "read line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    settled_in_read(sh.id());
    let seen = inherited(sh.id());
    sh.stdin.take().unwrap().write_all(b"\n").unwrap();
    sh.wait().unwrap();
    let sigpipe = 1u64 << (13 - 1);
    assert_eq!(
        u64::from_str_radix(&seen.1, 16).unwrap() & sigpipe,
        0,
        "baseline must not ignore SIGPIPE"
    );
    seen
}

#[test]
fn the_command_replaces_pgwait_with_argv_env_stdin_and_the_inherited_signal_state() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let script = "read line; echo \"stdin=$line\"; echo \"argv=$1|$2\"; echo \"env=$APP_SETTING\"";
    let mut cmd = pgwait();
    let mut child = with_blocked(&mut cmd, &[libc::SIGUSR1, libc::SIGTERM])
        .args(tcp_args(&cluster, TRUST_USER))
        .args(["-q", "--", "sh", "-c", script, "sh", "first", "second arg"])
        .env("APP_SETTING", "kept")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Same PID, now running sh and blocked reading stdin: inspect it from outside.
    assert!(
        eventually(Duration::from_secs(20), || std::fs::read_link(format!(
            "/proc/{pid}/exe"
        ))
        .map(|exe| !exe.to_string_lossy().contains("pgwait"))
        .unwrap_or(false)),
        "pgwait never exec'd"
    );
    // Let the shell settle into its blocking read before looking at what it holds.
    settled_in_read(pid);
    let (sigblk, sigign, fds) = inherited(pid);
    let (base_sigblk, base_sigign, base_fds) = baseline();
    let usr1_term = (1u64 << (libc::SIGUSR1 - 1)) | (1u64 << (libc::SIGTERM - 1));
    assert_eq!(
        u64::from_str_radix(&sigblk, 16).unwrap(),
        u64::from_str_radix(&base_sigblk, 16).unwrap() | usr1_term,
        "the inherited mask was not restored: SigBlk {sigblk}"
    );
    let (ign, base_ign) = (
        u64::from_str_radix(&sigign, 16).unwrap(),
        u64::from_str_radix(&base_sigign, 16).unwrap(),
    );
    assert_eq!(
        ign & !base_ign,
        0,
        "pgwait left a signal ignored: SigIgn {sigign}, baseline {base_sigign}"
    );
    assert_eq!(
        fds, base_fds,
        "pgwait leaked file descriptors into the command"
    );
    assert!(fds.starts_with(&["0".to_string(), "1".to_string()]));
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "stdin=hello\nargv=first|second arg\nenv=kept\n");
    assert_eq!(stderr_of(&out), "", "-q prints nothing on success");
}

#[test]
fn the_command_exit_code_is_returned_unchanged() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .args(["-q", "--", "sh", "-c", "exit 42"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(42));
}

#[test]
fn once_reports_ready_down_and_rejected() {
    let mut cluster = Cluster::new("");
    let down = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "{}", stderr_of(&down));
    assert!(
        stderr_of(&down).contains("(1 attempt)"),
        "{}",
        stderr_of(&down)
    );
    cluster.start_ready();
    let up = pgwait()
        .args(tcp_args(&cluster, TRUST_USER))
        .args(["--once", "-q"])
        .output()
        .unwrap();
    assert_eq!(up.status.code(), Some(0), "{}", stderr_of(&up));
    let rejected = pgwait()
        .args(tcp_args(&cluster, SCRAM_USER))
        .arg("--once")
        .env("PGPASSWORD", "nope")
        .output()
        .unwrap();
    assert_eq!(rejected.status.code(), Some(3), "{}", stderr_of(&rejected));
}

#[test]
fn connection_settings_come_from_pg_variables_and_database_url() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let port = cluster.port.to_string();
    let vars = pgwait()
        .envs([
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", port.as_str()),
            ("PGUSER", SCRAM_USER),
            ("PGPASSWORD", SCRAM_PASSWORD),
            ("PGDATABASE", "postgres"),
        ])
        .output()
        .unwrap();
    assert!(vars.status.success(), "{}", stderr_of(&vars));
    let url = format!("postgres://{MD5_USER}:{MD5_PASSWORD}@127.0.0.1:{port}/postgres");
    let from_url = pgwait().env("DATABASE_URL", &url).output().unwrap();
    assert!(from_url.status.success(), "{}", stderr_of(&from_url));
    let kv = format!(
        "host=127.0.0.1 port={port} user={TRUST_USER} dbname=postgres application_name='gate test'"
    );
    let from_kv = pgwait().args(["-d", &kv]).output().unwrap();
    assert!(from_kv.status.success(), "{}", stderr_of(&from_kv));
}

#[test]
fn as_pid_1_in_its_own_namespace_sigterm_still_ends_the_wait() {
    let port = free_port().to_string();
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(env!("CARGO_BIN_EXE_pgwait"))
        .args(["-h", "127.0.0.1", "-p", &port, "-t", "0"])
        .env_clear()
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare (util-linux)");
    let children = format!("/proc/{0}/task/{0}/children", unshare.id());
    let mut pid = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            pid = std::fs::read_to_string(&children)
                .unwrap_or_default()
                .trim()
                .to_string();
            !pid.is_empty()
        }),
        "unshare --pid needs root; these tests run as root in CI"
    );
    let pid: u32 = pid.parse().unwrap();
    // NSpid lists the host PID, then the PID inside the new namespace: it must be 1.
    assert!(
        eventually(Duration::from_secs(5), || status_field(pid, "NSpid")
            .ends_with("\t1")),
        "NSpid: {}",
        status_field(pid, "NSpid")
    );
    handles_sigterm(pid);
    let sent = Instant::now();
    unsafe_kill(pid, "TERM");
    let status = wait_with_deadline(&mut unshare, Duration::from_secs(5));
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(143), "{status:?}");
}

#[test]
fn host_lists_are_tried_in_order_within_each_attempt() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let dead = free_port().to_string();
    let ports = format!("{dead},{}", cluster.port);
    let out = pgwait()
        .args([
            "-h",
            "127.0.0.1,localhost",
            "-p",
            &ports,
            "-U",
            TRUST_USER,
            "-d",
            "postgres",
            "--once",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("ready after 0."),
        "{}",
        stderr_of(&out)
    );
    let both_dead = format!("{dead},{}", free_port());
    let out = pgwait()
        .args(["-h", "127.0.0.1,127.0.0.1", "-p", &both_dead, "-t", "300ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("(also tried 127.0.0.1:"),
        "{}",
        stderr_of(&out)
    );
}
