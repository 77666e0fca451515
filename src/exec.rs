//! Replacing pgwait with the user's command: same PID, no shell, the signal state pgwait
//! inherited.
//!
//! The PATH search is done here rather than by `execvp`: glibc's falls back to running a file
//! with a bad header (ENOEXEC) through `/bin/sh`, and pgwait promises no shell.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::signals::restore_inherited;

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

/// Where glibc's `execvp` looks when PATH is unset.
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Execs `command` (looked up in PATH when it has no slash). Returns only on failure.
pub fn exec(command: &Command) -> ExecError {
    if let Err(e) = restore_inherited() {
        return ExecError::SignalState { detail: plain(&e) };
    }
    let program = command.name();
    let Some(argv) = c_strings(std::iter::once(&command.program).chain(&command.args)) else {
        let detail = "an argument contains a NUL byte".to_string();
        return ExecError::NotExecutable { program, detail };
    };
    let path = std::env::var_os("PATH");
    let path = path.as_deref().map_or(DEFAULT_PATH, OsStr::as_bytes);
    let mut denied = None;
    for candidate in candidates(command.program.as_bytes(), path) {
        let error = exec_one(&candidate, &argv);
        match error.raw_os_error() {
            // As execvp: look further, but report a permission problem if nothing else is found.
            Some(libc::EACCES) => denied = Some(error),
            Some(libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT) => {}
            Some(libc::ENOEXEC) => {
                let detail = "not in an executable format (a script needs a #! line)".into();
                return ExecError::NotExecutable { program, detail };
            }
            _ => {
                let detail = plain(&error);
                return ExecError::NotExecutable { program, detail };
            }
        }
    }
    match denied {
        Some(error) => ExecError::NotExecutable {
            program,
            detail: plain(&error),
        },
        None => ExecError::NotFound { program },
    }
}

/// The files to try, in order: the program itself if it has a slash, else each PATH entry
/// joined with it (an empty entry is the current directory, as in execvp).
fn candidates(program: &[u8], path: &[u8]) -> Vec<Vec<u8>> {
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    if program.is_empty() {
        return Vec::new();
    }
    path.split(|b| *b == b':')
        .map(|dir| match dir {
            b"" => program.to_vec(),
            dir => [dir, b"/", program].concat(),
        })
        .collect()
}

fn c_strings<'a>(items: impl Iterator<Item = &'a OsString>) -> Option<Vec<CString>> {
    items.map(|s| CString::new(s.as_bytes()).ok()).collect()
}

/// `execv` with the current environment; returns the error (exec only returns on failure).
fn exec_one(file: &[u8], argv: &[CString]) -> io::Error {
    let Ok(file) = CString::new(file) else {
        return io::Error::from_raw_os_error(libc::ENOENT);
    };
    let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    // SAFETY: `file` and every argv entry are NUL-terminated strings that outlive the call, and
    // the pointer array is NULL-terminated; execv uses the current `environ`.
    unsafe { libc::execv(file.as_ptr(), pointers.as_ptr()) };
    io::Error::last_os_error()
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
    fn path_search_follows_execvp() {
        let table: [(&str, &str, &[&str]); 5] = [
            ("./app", "/bin", &["./app"]),
            ("/usr/bin/env", "/bin", &["/usr/bin/env"]),
            ("app", "/a:/b", &["/a/app", "/b/app"]),
            ("app", "/a::/b", &["/a/app", "app", "/b/app"]),
            ("", "/a", &[]),
        ];
        for (program, path, want) in table {
            let got = candidates(program.as_bytes(), path.as_bytes());
            let want: Vec<Vec<u8>> = want.iter().map(|w| w.as_bytes().to_vec()).collect();
            assert_eq!(got, want, "{program} {path}");
        }
    }

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
