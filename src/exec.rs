//! Replacing pgwait with the user's command: same PID, no shell, clean signal state.
//!
//! Rust's runtime ignores SIGPIPE at start-up and current std no longer empties the signal mask
//! on exec, so both are restored here; an exec'd program must not inherit pgwait's choices.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Why the command could not be started.
#[derive(Debug)]
pub enum ExecError {
    /// No such program (exit 127, like a shell).
    NotFound { program: String },
    /// Found but not runnable: permissions, a directory, a bad format (exit 126).
    NotExecutable { program: String, detail: String },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { program } => write!(f, "command not found: {program}"),
            Self::NotExecutable { program, detail } => {
                write!(f, "cannot execute {program}: {detail}")
            }
        }
    }
}

/// Execs `command` (looked up in PATH when it has no slash). Returns only on failure.
pub fn exec(command: &[OsString]) -> ExecError {
    let (program, args) = command
        .split_first()
        .expect("config guarantees a non-empty command");
    restore_signal_state();
    let error = Command::new(program).args(args).exec();
    let name = program.to_string_lossy().into_owned();
    match error.kind() {
        io::ErrorKind::NotFound => ExecError::NotFound { program: name },
        _ => ExecError::NotExecutable {
            program: name,
            detail: plain(&error),
        },
    }
}

/// Empties the signal mask and returns SIGPIPE (ignored by Rust's runtime) to its default.
fn restore_signal_state() {
    // SAFETY: plain libc calls on a zeroed, then initialised, sigset; no Rust invariants involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The OS message without Rust's " (os error N)" suffix.
fn plain(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}
