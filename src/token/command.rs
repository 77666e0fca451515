//! `--password-command`: a program run for each attempt whose first line of output is the
//! password — for vaults, sidecars and in-house token tools pgwait does not know.
//!
//! No shell: the command line is split into words with shell-style quotes and no expansion, so
//! a scratch image needs no `/bin/sh`. The run is bounded in time (the attempt's deadline; the
//! program is killed at it) and in output (64 KiB of stdout, as PostgreSQL caps a password
//! message there; 4 KiB of stderr). Its stdout is never shown; its stderr is, shortened and with
//! anything that looks like a secret blanked.

use std::io::Read;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use tokio::time::Instant;

use super::{Minted, TokenError};
use crate::classify::{TokenProblem, TokenSource};
use crate::conninfo::Secret;

/// The most of stdout read (PostgreSQL's limit on a password message).
pub const MAX_STDOUT: usize = 64 * 1024;
/// The most of stderr kept for the failure line.
const MAX_STDERR: usize = 4 * 1024;

/// A parsed `--password-command`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordCommand {
    argv: Vec<String>,
}

impl std::fmt::Debug for PasswordCommand {
    /// The number of words only: any of them may hold a secret (a vault token, a key).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordCommand({} words)", self.argv.len())
    }
}

/// Why a command line does not split into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    Empty,
    UnclosedQuote,
    TrailingBackslash,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "it names no program",
            Self::UnclosedQuote => "a quote is not closed",
            Self::TrailingBackslash => "it ends with a backslash",
        })
    }
}

impl PasswordCommand {
    /// Splits `text` as a POSIX shell splits words, without expanding anything: blanks
    /// separate words; `'…'` is literal; `"…"` is literal but for `\"`, `\\`, `\$`, `` \` ``
    /// and backslash-newline; a backslash outside quotes takes the next character as is.
    pub fn parse(text: &str) -> Result<Self, SplitError> {
        let argv = split(text)?;
        match argv.is_empty() {
            true => Err(SplitError::Empty),
            false => Ok(Self { argv }),
        }
    }

    /// Runs the command by `deadline`: the first line of its stdout is the password.
    pub async fn run(&self, deadline: Instant) -> Result<Minted, TokenError> {
        let argv = self.argv.clone();
        let limit = deadline.saturating_duration_since(Instant::now());
        let running = Arc::new(Mutex::new(None::<u32>));
        let guard = KillOnDrop(running.clone());
        let outcome = tokio::task::spawn_blocking(move || run_blocking(&argv, limit, &running))
            .await
            .unwrap_or(Err(TokenProblem::TimedOut));
        drop(guard);
        outcome
            .map(|secret| Minted {
                secret,
                expires: None,
            })
            .map_err(|problem| TokenError::new(TokenSource::Command, problem))
    }
}

/// Kills the program if pgwait stops waiting for it (a signal, the overall deadline).
struct KillOnDrop(Arc<Mutex<Option<u32>>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // The pid is cleared once the child is reaped, so a recycled pid is never signalled.
        if let Some(pid) = self.0.lock().ok().and_then(|p| *p) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped; no memory involved.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

fn split(text: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(SplitError::UnclosedQuote),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(SplitError::UnclosedQuote),
                        },
                        Some(c) => w.push(c),
                        None => return Err(SplitError::UnclosedQuote),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(SplitError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn run_blocking(
    argv: &[String],
    limit: Duration,
    running: &Mutex<Option<u32>>,
) -> Result<Secret, TokenProblem> {
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TokenProblem::CommandNotStarted { kind: e.kind() })?;
    if let Ok(mut pid) = running.lock() {
        *pid = Some(child.id());
    }
    let stdout = child.stdout.take().map(|s| reader(s, MAX_STDOUT));
    let stderr = child.stderr.take().map(|s| reader(s, MAX_STDERR));
    let status = wait(&mut child, limit, running);
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    let status = status.ok_or(TokenProblem::TimedOut)?;
    if !status.success() {
        return Err(TokenProblem::CommandFailed {
            status: describe_status(status),
            stderr: redact(&String::from_utf8_lossy(&err)),
        });
    }
    first_line(&out)
}

/// Reads at most `max` bytes, then drains the rest so the program never blocks on a full pipe.
fn reader(mut pipe: impl Read + Send + 'static, max: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = max.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    })
}

/// The exit status, or `None` after killing a program that ran past `limit`.
fn wait(
    child: &mut Child,
    limit: Duration,
    running: &Mutex<Option<u32>>,
) -> Option<std::process::ExitStatus> {
    let start = StdInstant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    if let Ok(mut pid) = running.lock() {
        *pid = None;
    }
    status
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "failed".to_string(),
    }
}

/// The password: the first line (a missing final newline is fine; `\r\n` too).
fn first_line(out: &[u8]) -> Result<Secret, TokenProblem> {
    let line = out.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(TokenProblem::CommandEmpty);
    }
    let text = std::str::from_utf8(line).map_err(|_| TokenProblem::Malformed {
        what: "a password that is not UTF-8",
    })?;
    Ok(Secret::new(text.to_string()))
}

/// The last lines of stderr, short, with secret-looking words blanked: values after
/// `password`/`secret`/`token`/`key` and long unbroken runs of letters and digits (a token a
/// program printed while failing).
pub fn redact(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    let mut out = Vec::new();
    for line in tail {
        let mut words = Vec::new();
        let mut hide_next = false;
        for word in line.split_whitespace() {
            let lower = word.to_ascii_lowercase();
            let keyish = ["pass", "secret", "token", "key", "auth"]
                .iter()
                .any(|k| lower.contains(k));
            if hide_next || looks_secret(word) {
                words.push("[redacted]".to_string());
                hide_next = false;
            } else if keyish && (word.contains('=') || word.contains(':')) {
                let cut = word.find(['=', ':']).unwrap_or(word.len());
                let tail = &word[cut + 1..];
                hide_next = tail.is_empty();
                words.push(match tail.is_empty() {
                    true => word.to_string(),
                    false => format!("{}[redacted]", &word[..=cut]),
                });
            } else {
                words.push(word.to_string());
            }
        }
        out.push(words.join(" "));
    }
    let text = out.join(" | ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A run of 20 or more characters from a token alphabet with both letters and digits.
fn looks_secret(word: &str) -> bool {
    let run = word
        .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-.".contains(c)))
        .max_by_key(|r| r.len())
        .unwrap_or_default();
    run.len() >= 20
        && run.chars().any(|c| c.is_ascii_digit())
        && run.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell_without_expansion() {
        let table: &[(&str, Result<&[&str], SplitError>)] = &[
            (
                "vault read -field=password db/creds",
                Ok(&["vault", "read", "-field=password", "db/creds"]),
            ),
            ("  a   b\tc ", Ok(&["a", "b", "c"])),
            (
                "sh -c 'echo $HOME; exit 1'",
                Ok(&["sh", "-c", "echo $HOME; exit 1"]),
            ),
            (r#"p "a \"b\" \$x \n" c"#, Ok(&["p", r#"a "b" $x \n"#, "c"])),
            (r"p a\ b \'c", Ok(&["p", "a b", "'c"])),
            ("p ''", Ok(&["p", ""])),
            ("p x''y\"z\"", Ok(&["p", "xyz"])),
            ("$(whoami) ~ *", Ok(&["$(whoami)", "~", "*"])),
            ("", Err(SplitError::Empty)),
            ("   ", Err(SplitError::Empty)),
            ("p 'open", Err(SplitError::UnclosedQuote)),
            ("p \"open", Err(SplitError::UnclosedQuote)),
            ("p \\", Err(SplitError::TrailingBackslash)),
        ];
        for (text, want) in table {
            let got = PasswordCommand::parse(text).map(|c| c.argv);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn debug_shows_no_word_of_it() {
        let c = PasswordCommand::parse("vault login -token=s3cr3t").unwrap();
        assert_eq!(format!("{c:?}"), "PasswordCommand(3 words)");
    }

    #[test]
    fn the_first_line_is_the_password() {
        let table: &[(&[u8], Result<&str, TokenProblem>)] = &[
            (b"pw\n", Ok("pw")),
            (b"pw", Ok("pw")),
            (b"pw\r\nsecond\n", Ok("pw")),
            (b"p w \n", Ok("p w ")),
            (b"\npw\n", Err(TokenProblem::CommandEmpty)),
            (b"", Err(TokenProblem::CommandEmpty)),
            (
                b"\xff\n",
                Err(TokenProblem::Malformed {
                    what: "a password that is not UTF-8",
                }),
            ),
        ];
        for (out, want) in table {
            let got = first_line(out);
            assert_eq!(
                got.as_ref().map(|s| s.expose()),
                want.as_ref().map(|s| *s),
                "{out:?}"
            );
        }
    }

    #[test]
    fn stderr_is_shortened_and_secrets_blanked() {
        let table = [
            ("error: permission denied\n", "error: permission denied"),
            ("token=abc123 failed\n", "token=[redacted] failed"),
            ("Password: hunter2\n", "Password: [redacted]"),
            (
                "got eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig from server",
                "got [redacted] from server",
            ),
            ("1\n2\n3\n4\n\n", "2 | 3 | 4"),
        ];
        for (stderr, want) in table {
            assert_eq!(redact(stderr), want, "{stderr:?}");
        }
        assert!(redact(&"x ".repeat(1000)).ends_with('…'));
    }

    async fn run(line: &str, limit: Duration) -> Result<String, TokenError> {
        let command = PasswordCommand::parse(line).unwrap();
        let minted = command.run(Instant::now() + limit).await?;
        Ok(minted.secret.expose().to_string())
    }

    fn problem(r: Result<String, TokenError>) -> TokenProblem {
        let e = r.unwrap_err();
        assert_eq!(e.source, TokenSource::Command);
        e.problem
    }

    #[tokio::test]
    async fn a_real_program_gives_the_password_or_a_clear_failure() {
        let long = Duration::from_secs(10);
        assert_eq!(
            run("printf 'from-command\\nrest'", long).await.unwrap(),
            "from-command"
        );
        // Stdout of a failing program is never shown; its stderr is.
        let got = problem(run("sh -c 'echo leaked-pw; echo denied >&2; exit 3'", long).await);
        assert_eq!(
            got,
            TokenProblem::CommandFailed {
                status: "exit status 3".into(),
                stderr: "denied".into()
            }
        );
        let got = problem(run("sh -c 'kill -9 $$'", long).await);
        assert!(
            matches!(got, TokenProblem::CommandFailed { ref status, .. } if status == "killed by signal 9"),
            "{got:?}"
        );
        let got = problem(run("/nonexistent/vault read", long).await);
        assert_eq!(
            got,
            TokenProblem::CommandNotStarted {
                kind: std::io::ErrorKind::NotFound
            }
        );
        let started = std::time::Instant::now();
        assert_eq!(
            problem(run("sleep 30", Duration::from_millis(300)).await),
            TokenProblem::TimedOut
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "killed at the limit"
        );
        // A flood is read to the limit and drained: the program finishes, memory stays bounded.
        let got = run(
            "sh -c 'head -c 10000000 /dev/zero | tr \"\\\\0\" a; echo'",
            long,
        )
        .await
        .unwrap();
        assert_eq!(got.len(), MAX_STDOUT);
    }
}
