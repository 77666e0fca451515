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
    match Prepared::new(command) {
        Ok(prepared) => ExecError::from_errno(command.name(), prepared.run()),
        Err(error) => error,
    }
}

/// A command ready to exec: argv and the PATH candidates as C strings, made in advance so that
/// [`Prepared::run`] allocates nothing (a forked child may only do async-signal-safe work).
pub struct Prepared {
    /// Owns the strings `pointers` points into.
    _argv: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
    candidates: Vec<CString>,
}

impl Prepared {
    pub fn new(command: &Command) -> Result<Self, ExecError> {
        let program = command.name();
        let nul = || ExecError::NotExecutable {
            program: program.clone(),
            detail: "an argument contains a NUL byte".to_string(),
        };
        let argv =
            c_strings(std::iter::once(&command.program).chain(&command.args)).ok_or_else(nul)?;
        let path = std::env::var_os("PATH");
        let path = path.as_deref().map_or(DEFAULT_PATH, OsStr::as_bytes);
        let candidates = candidates(command.program.as_bytes(), path)
            .into_iter()
            .filter_map(|c| CString::new(c).ok())
            .collect();
        let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Ok(Self {
            _argv: argv,
            pointers,
            candidates,
        })
    }

    /// Tries each candidate as execvp would, without its shell fallback; returns the errno that
    /// explains the failure (exec only returns on failure). Allocation-free.
    pub fn run(&self) -> i32 {
        let mut denied = false;
        for candidate in &self.candidates {
            // SAFETY: `candidate` and every argv entry are NUL-terminated strings that outlive
            // the call, and the pointer array is NULL-terminated; execv uses the current environ.
            unsafe { libc::execv(candidate.as_ptr(), self.pointers.as_ptr()) };
            match io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ENOENT)
            {
                // As execvp: look further, but report a permission problem if nothing else is found.
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                errno => return errno,
            }
        }
        if denied {
            libc::EACCES
        } else {
            libc::ENOENT
        }
    }
}

impl ExecError {
    /// Why `program` could not be exec'd, from the errno [`Prepared::run`] returned.
    pub fn from_errno(program: String, errno: i32) -> Self {
        match errno {
            libc::ENOENT => Self::NotFound { program },
            libc::ENOEXEC => Self::NotExecutable {
                program,
                detail: "not in an executable format (a script needs a #! line)".into(),
            },
            errno => Self::NotExecutable {
                program,
                detail: plain(&io::Error::from_raw_os_error(errno)),
            },
        }
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
