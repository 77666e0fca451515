//! `--supervise`: once ready, pgwait starts the command as its child and stays its parent, as
//! tini or dumb-init would: it forwards signals, reaps every zombie (as PID 1, or as a child
//! subreaper otherwise) and exits with the child's status.
//!
//! The loop blocks in `sigwaitinfo` on a mask of every forwardable signal plus SIGCHLD: no
//! polling, no timer, ~0 CPU while the app runs. Synchronous fault signals (SEGV, BUS, FPE, ILL,
//! ABRT, TRAP, SYS) and TTIN/TTOU stay pgwait's own.

use std::io;

use crate::exec::{Command, ExecError, Prepared};
use crate::signals::{check, restore_inherited, SigSet, Signal};

/// Signals never forwarded: faults aimed at pgwait itself, terminal job-control stops, and the
/// two that cannot be caught.
const NOT_FORWARDED: [i32; 11] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGKILL,
    libc::SIGSTOP,
];

/// How to supervise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Forward signals to the child's whole process group (the child leads its own group).
    pub group: bool,
    /// Child exit codes reported as 0 (a JVM exits 143 on SIGTERM, which orchestrators count as
    /// a failure).
    pub success_codes: Vec<u8>,
}

/// How supervision ended.
#[derive(Debug)]
pub enum Ended {
    Exited(u8),
    Killed(Signal),
    /// The command could not be started (nothing is left running).
    SpawnFailed(ExecError),
    /// pgwait's own failure (signal mask, fork, pipe).
    Internal(&'static str, io::Error),
}

/// What the reporter may want to say while supervising.
#[derive(Debug)]
pub enum Notice {
    /// Not PID 1 and the subreaper flag could not be set: orphans go to the real init.
    NoSubreaper(io::Error),
    Started {
        pid: i32,
    },
}

/// The set of signals the loop waits for: everything catchable except [`NOT_FORWARDED`].
fn waited() -> SigSet {
    let numbers: Vec<Signal> = (1..=libc::SIGRTMAX())
        .filter(|n| !NOT_FORWARDED.contains(n))
        .filter_map(Signal::from_number)
        .collect();
    SigSet::of_valid(&numbers)
}

/// Supervises `command`; `pending` are signals caught during the wait, forwarded once the child
/// runs. `notify` hears what is worth logging.
pub fn supervise(
    command: &Command,
    options: &Options,
    pending: impl FnOnce() -> Vec<Signal>,
    mut notify: impl FnMut(Notice),
) -> Ended {
    let prepared = match Prepared::new(command) {
        Ok(prepared) => prepared,
        Err(error) => return Ended::SpawnFailed(error),
    };
    let waited = waited();
    // Blocked before the fork: a signal from now on is queued, then forwarded, never lost.
    if let Err(e) = waited.block() {
        return Ended::Internal("cannot block signals", e);
    }
    // Caught (by the wait's handlers) before the block: forwarded once the child runs.
    let pending = pending();
    // SAFETY: getpid and prctl with these arguments have no memory-safety preconditions.
    if unsafe { libc::getpid() } != 1
        && unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0
    {
        notify(Notice::NoSubreaper(io::Error::last_os_error()));
    }
    let child = match spawn(&prepared, options.group) {
        Ok(pid) => pid,
        Err(SpawnError::Exec(errno)) => {
            return Ended::SpawnFailed(ExecError::from_errno(command.name(), errno))
        }
        Err(SpawnError::Os(what, e)) => return Ended::Internal(what, e),
    };
    notify(Notice::Started { pid: child });
    let target = if options.group { -child } else { child };
    for signal in &pending {
        forward(target, signal.number());
    }
    let status = wait_for_child(&waited, child, target);
    if options.group {
        // Leftovers of the child's group get the signal a container stop would send them.
        forward(-child, libc::SIGTERM);
    }
    ended(status, &options.success_codes)
}

/// The child's wait status as an outcome, with `--exit-ok` applied.
fn ended(status: libc::c_int, success_codes: &[u8]) -> Ended {
    if libc::WIFSIGNALED(status) {
        if let Some(signal) = Signal::from_number(libc::WTERMSIG(status)) {
            return Ended::Killed(signal);
        }
    }
    let code = u8::try_from(libc::WEXITSTATUS(status)).unwrap_or(u8::MAX);
    Ended::Exited(if success_codes.contains(&code) {
        0
    } else {
        code
    })
}

/// Sends `signal` to the child (or its group); a child already gone is not an error.
fn forward(target: libc::pid_t, signal: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(target, signal) };
}

/// Waits for signals until the child has exited: forwards each one, reaps every zombie on
/// SIGCHLD. Returns the child's wait status.
fn wait_for_child(waited: &SigSet, child: libc::pid_t, target: libc::pid_t) -> libc::c_int {
    loop {
        let signal = waited.wait();
        if signal != libc::SIGCHLD {
            if signal > 0 {
                forward(target, signal);
            }
            continue;
        }
        if let Some(status) = reap(child) {
            return status;
        }
    }
}

/// Reaps every zombie there is; the child's status if it was among them.
fn reap(child: libc::pid_t) -> Option<libc::c_int> {
    let mut found = None;
    loop {
        let mut status = 0;
        // SAFETY: a valid out-pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return found;
        }
        if pid == child {
            found = Some(status);
        }
    }
}

enum SpawnError {
    /// exec failed in the child with this errno.
    Exec(i32),
    Os(&'static str, io::Error),
}

/// Forks and execs; the child reports an exec failure's errno through a close-on-exec pipe.
fn spawn(prepared: &Prepared, group: bool) -> Result<libc::pid_t, SpawnError> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-element array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })
        .map_err(|e| SpawnError::Os("cannot create a pipe", e))?;
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child runs only async-signal-safe calls (see `become_command`) and
    // allocates nothing: `prepared` was built before.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child, with the pipe's ends this function created.
        unsafe { become_command(prepared, group, read_end, write_end) }
    }
    // SAFETY: closing descriptors this function created.
    unsafe { libc::close(write_end) };
    if pid < 0 {
        let e = io::Error::last_os_error();
        unsafe { libc::close(read_end) };
        return Err(SpawnError::Os("cannot fork", e));
    }
    if group {
        // Also from the parent, so signals can go to the group before the child runs (tini).
        unsafe { libc::setpgid(pid, pid) };
    }
    let failed = exec_errno(read_end);
    unsafe { libc::close(read_end) };
    if let Some(errno) = failed {
        let mut status = 0;
        // SAFETY: reaping the child we forked, which has exited or is about to.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(SpawnError::Exec(errno));
    }
    Ok(pid)
}

/// The child's side of [`spawn`]: its own process group if asked (taking the terminal, so
/// Ctrl-C and job control reach it), the inherited signal state, then exec. Only
/// async-signal-safe calls (setpgid, tcsetpgrp, sigaction, sigprocmask, execv, write, _exit).
/// If exec fails, the errno goes up the close-on-exec pipe; a successful exec closes it empty.
///
/// # Safety
/// Only in the child of a fork, with `read_end`/`write_end` the two ends of a CLOEXEC pipe.
unsafe fn become_command(prepared: &Prepared, group: bool, read_end: i32, write_end: i32) -> ! {
    // SAFETY: the caller's contract; each call is async-signal-safe.
    unsafe {
        libc::close(read_end);
        if group {
            libc::setpgid(0, 0);
            // SIGTTOU is still blocked here, so taking the terminal cannot stop us.
            if libc::isatty(libc::STDIN_FILENO) == 1 {
                libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpgrp());
            }
        }
        let errno = match restore_inherited() {
            Ok(()) => prepared.run(),
            Err(e) => e.raw_os_error().unwrap_or(libc::EINVAL),
        };
        let bytes = errno.to_ne_bytes();
        libc::write(write_end, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(if errno == libc::ENOENT { 127 } else { 126 })
    }
}

/// Reads the pipe until the child's exec closes it (`None`: the command runs) or sends the
/// errno its exec failed with.
fn exec_errno(read_end: i32) -> Option<i32> {
    let mut bytes = [0u8; 4];
    let mut got = 0;
    while got < bytes.len() {
        // SAFETY: reading into the unfilled tail of a local buffer.
        let n = unsafe {
            libc::read(
                read_end,
                bytes[got..].as_mut_ptr().cast(),
                bytes.len() - got,
            )
        };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
    (got == bytes.len()).then(|| i32::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_map_like_a_shell_with_exit_ok_applied() {
        let exited = |code: i32| code << 8;
        let killed = |signal: i32| signal;
        let table: [(i32, &[u8], &str); 5] = [
            (exited(0), &[], "Exited(0)"),
            (exited(77), &[], "Exited(77)"),
            (exited(143), &[143], "Exited(0)"),
            (exited(143), &[1], "Exited(143)"),
            (killed(libc::SIGKILL), &[137], "Killed(Signal(9))"),
        ];
        for (status, codes, want) in table {
            assert_eq!(format!("{:?}", ended(status, codes)), want, "{status}");
        }
    }

    #[test]
    fn faults_and_job_control_are_never_forwarded() {
        let set = waited();
        for n in NOT_FORWARDED {
            assert!(!set.contains(n), "{n}");
        }
        for n in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGWINCH,
            libc::SIGCHLD,
        ] {
            assert!(set.contains(n), "{n}");
        }
    }
}
