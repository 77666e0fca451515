//! Replacing pgwait with the user's command: same PID, no shell, clean signal state.
//!
//! Rust's runtime ignores SIGPIPE at start-up and current std no longer empties the signal mask
//! on exec, so both are restored here; an exec'd program must not inherit pgwait's choices.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;

use crate::signals::{restore_default, SigSet, Signal};

/// The program to run once ready, and its arguments: never empty, by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl Command {
    /// `argv` as typed after `--`; `None` when it is empty.
    pub fn from_argv(mut argv: Vec<OsString>) -> Option<Self> {
        if argv.is_empty() {
            return None;
        }
        let program = argv.remove(0);
        Some(Self {
            program,
            args: argv,
        })
    }

    /// The program name for messages (lossy: it may be any bytes).
    pub fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

/// Why the command could not be started.
#[derive(Debug)]
pub enum ExecError {
    /// No such program (exit 127, like a shell).
    NotFound { program: String },
    /// Found but not runnable: permissions, a directory, a bad format (exit 126).
    NotExecutable { program: String, detail: String },
    /// The signal state could not be restored, so exec was not attempted (exit 4).
    SignalState { detail: String },
}

/// Execs `command` (looked up in PATH when it has no slash). Returns only on failure.
pub fn exec(command: &Command) -> ExecError {
    if let Err(e) = restore_signal_state() {
        return ExecError::SignalState { detail: plain(&e) };
    }
    let error = std::process::Command::new(&command.program)
        .args(&command.args)
        .exec();
    let program = command.name();
    match error.kind() {
        io::ErrorKind::NotFound => ExecError::NotFound { program },
        _ => ExecError::NotExecutable {
            program,
            detail: plain(&error),
        },
    }
}

/// Empties the signal mask and returns SIGPIPE (ignored by Rust's runtime) to its default.
fn restore_signal_state() -> io::Result<()> {
    restore_default(Signal::PIPE)?;
    SigSet::empty().set_mask().map(drop)
}

/// The OS message without Rust's " (os error N)" suffix.
pub fn plain(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_never_empty() {
        assert_eq!(Command::from_argv(Vec::new()), None);
        let command = Command::from_argv(vec!["app".into(), "--flag".into()]).unwrap();
        assert_eq!(
            (command.name().as_str(), command.args),
            ("app", vec![OsString::from("--flag")])
        );
    }
}
