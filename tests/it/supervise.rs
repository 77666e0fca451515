//! `--supervise`, modelled on tini's own tests: exit codes passed through, signals forwarded,
//! zombies reaped (as PID 1 of a PID namespace and as a subreaper), spawn failures, the child's
//! signal state as if launched directly, and no CPU while idle. Real server for the wait.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

fn gate(cluster: &Cluster) -> Command {
    let mut cmd = pgwait();
    cmd.args(cluster.tcp_args(TRUST_USER))
        .args(["-q", "--supervise"]);
    cmd
}

fn code_of(cmd: &mut Command) -> Option<i32> {
    let out = cmd.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    out.status.code()
}

#[test]
fn exit_codes_pass_through_and_exit_ok_maps_to_zero() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let cases: [(&[&str], i32); 6] = [
        (&["--", "sh", "-c", "exit 0"], 0),
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["--", "sh", "-c", "exit 77"], 77),
        (&["--", "sh", "-c", "kill -KILL $$"], 137),
        (&["--exit-ok", "143", "--", "sh", "-c", "exit 143"], 0),
        (&["--exit-ok", "1,2", "--", "sh", "-c", "exit 143"], 143),
    ];
    for (args, want) in cases {
        assert_eq!(code_of(gate(&cluster).args(args)), Some(want), "{args:?}");
    }
    assert_eq!(
        code_of(gate(&cluster).args(["--", "no-such-command-pgwait"])),
        Some(127)
    );
    let not_exec = cluster.root.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    assert_eq!(code_of(gate(&cluster).arg("--").arg(&not_exec)), Some(126));
    // Only with --supervise.
    assert_eq!(
        code_of(pgwait().args(["--exit-ok", "143", "--once"])),
        Some(2)
    );
}

/// A child that writes each signal it gets to `log`, and exits 9 on SIGTERM.
fn recorder(cluster: &Cluster, group: bool, log: &std::path::Path) -> Child {
    let names = [
        "HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "CONT",
    ];
    let traps: String = names
        .iter()
        .map(|n| format!("trap 'echo {n} >> {}' {n}; ", log.display()))
        .collect();
    let script = format!(
        "{traps} trap 'exit 9' TERM; echo up > {}.up; while :; do sleep 0.05; done",
        log.display()
    );
    let mut cmd = gate(cluster);
    if group {
        cmd.arg("--signal-group");
    }
    cmd.args(["--", "sh", "-c", &script]).spawn().unwrap()
}

fn wait_for(path: &std::path::Path) {
    assert!(
        eventually(Duration::from_secs(20), || path.exists()),
        "{} never appeared",
        path.display()
    );
}

#[test]
fn every_forwardable_signal_reaches_the_child_or_its_group() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    for group in [false, true] {
        let log = cluster.root.join(format!("signals-{group}"));
        let mut child = recorder(&cluster, group, &log);
        wait_for(&log.with_extension("up"));
        let sent = [
            "HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "CONT",
        ];
        for name in sent {
            unsafe_kill(child.id(), name);
            let seen = || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .any(|l| l == name)
            };
            assert!(
                eventually(Duration::from_secs(5), seen),
                "{name} not forwarded (group {group})"
            );
        }
        unsafe_kill(child.id(), "TERM");
        let status = wait_with_deadline(&mut child, Duration::from_secs(5));
        assert_eq!(status.code(), Some(9), "group {group}");
    }
}

/// Zombie processes whose parent is `pid`.
fn zombies_of(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
            let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
            let mut fields = rest.split(' ');
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            state == Some("Z") && ppid == Some(pid)
        })
        .count()
}

const ORPHANER: &str = "for i in $(seq 20); do (sleep 0.2 &); done; sleep 2; exit 0";

#[test]
fn orphaned_grandchildren_are_reaped_as_a_subreaper() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let mut child = gate(&cluster)
        .args(["--", "sh", "-c", ORPHANER])
        .spawn()
        .unwrap();
    // The orphans live 0.2 s; a second later every one must have been reaped.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(zombies_of(child.id()), 0, "zombies left under pgwait");
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// pgwait as PID 1 of a fresh PID namespace (`unshare -pf --mount-proc`): returns the
/// unshare process; pgwait is its only child.
fn as_pid_1(cluster: &Cluster, script: &str) -> Child {
    let mut cmd = Command::new("unshare");
    cmd.args(["-pf", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_pgwait"))
        .args(cluster.tcp_args(TRUST_USER))
        .args(["-q", "--supervise", "--", "sh", "-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    cmd.spawn().expect("unshare (needs root)")
}

/// The pid (in our namespace) of `parent`'s first child.
fn child_of(parent: u32) -> u32 {
    let mut found = None;
    assert!(eventually(Duration::from_secs(20), || {
        found = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .ok()
            .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse().ok()));
        found.is_some()
    }));
    found.unwrap()
}

#[test]
fn as_pid_1_sigterm_reaches_the_child_and_zombies_are_reaped() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let mut unshare = as_pid_1(&cluster, "trap 'exit 7' TERM; while :; do sleep 0.05; done");
    let pgwait = child_of(unshare.id());
    // Let the wait finish and the child start (its sh is pgwait's child), and wait until the sh
    // has set its trap: a SIGTERM before that ends it with 143 (the test flaked on that).
    let sh = child_of(pgwait);
    let pgwait_exe = std::fs::read_link(format!("/proc/{pgwait}/exe")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            std::fs::read_link(format!("/proc/{sh}/exe")).is_ok_and(|exe| exe != pgwait_exe)
        }),
        "the child never exec'd"
    );
    handles_sigterm(sh);
    let started = Instant::now();
    unsafe_kill(pgwait, "TERM");
    let status = wait_with_deadline(&mut unshare, Duration::from_secs(5));
    assert_eq!(status.code(), Some(7));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let mut unshare = as_pid_1(&cluster, ORPHANER);
    let pgwait = child_of(unshare.id());
    let _ = child_of(pgwait);
    // The orphans live 0.2 s; a second later every one must have been reaped.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(zombies_of(pgwait), 0, "zombies left under pgwait as PID 1");
    let status = wait_with_deadline(&mut unshare, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// SigBlk and SigIgn of a process, from /proc.
fn signal_state(pid: u32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    (field("SigBlk:"), field("SigIgn:"))
}

#[test]
fn the_child_starts_with_the_signal_state_of_a_direct_launch_and_pgwait_idles() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let parent_state = |cmd: &mut Command| {
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
    };
    // Not a shell: dash resets its own signal mask at some point after it starts, so reading a
    // shell's state races with it (the test flaked on that); sleep leaves the state alone.
    let script = ["sleep", "3"];
    let mut direct = Command::new(script[0]);
    direct.args(&script[1..]);
    parent_state(&mut direct);
    let mut direct = direct.spawn().unwrap();
    let mut supervised = gate(&cluster);
    supervised.arg("--").args(script);
    parent_state(&mut supervised);
    let mut supervised = supervised.spawn().unwrap();
    let sh = child_of(supervised.id());
    // The child's state is final once it has exec'd the shell.
    let pgwait = std::fs::read_link(format!("/proc/{}/exe", supervised.id())).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || std::fs::read_link(format!(
            "/proc/{sh}/exe"
        ))
        .is_ok_and(|exe| exe != pgwait)),
        "the child never exec'd"
    );
    assert_eq!(signal_state(sh), signal_state(direct.id()));
    // Idle while the child runs: blocked in sigwaitinfo, no polling.
    let ticks = |pid: u32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = stat.rsplit_once(") ").unwrap().1;
        let fields: Vec<&str> = rest.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = ticks(supervised.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = ticks(supervised.id()) - before;
    // Clock ticks are 10 ms: two ticks is the generous bound for 2 s of idling.
    assert!(used <= 2, "pgwait used {used} ticks while idle");
    wait_with_deadline(&mut supervised, Duration::from_secs(10));
    direct.wait().unwrap();
}

#[test]
fn while_still_waiting_sigterm_ends_pgwait_and_the_command_never_starts() {
    let marker = scratch_dir("never-started").join("started");
    let mut child = pgwait()
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "--supervise",
            "--",
        ])
        .args(["sh", "-c", &format!("touch {}", marker.display())])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    handles_sigterm(child.id());
    unsafe_kill(child.id(), "TERM");
    let status = wait_with_deadline(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(143));
    assert!(!marker.exists(), "the command started");
}
