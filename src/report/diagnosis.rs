//! `--diagnose`'s report on stdout: one line per check (and an indented hint), or one JSON
//! object per check with `check`, `status`, `finding`, `hint`; the login and each condition
//! worded as a wait's lines are; then the verdict.

use std::io::{self, Write};

use super::{escape_controls, json, words, LogFormat};
use crate::condition::Condition;
use crate::diagnose::{Check, Diagnosis, Item, Status, Verdict};
use crate::event::Target;
use crate::probe::AttemptError;

/// Writes one target's diagnosis to `out`.
pub fn write(
    out: &mut impl Write,
    format: LogFormat,
    target: &Target<'_>,
    diagnosis: &Diagnosis,
) -> io::Result<()> {
    let label = words::target(target);
    if format == LogFormat::Text {
        writeln!(out, "pgwait --diagnose: {}", escape_controls(&label))?;
    }
    for item in &diagnosis.items {
        let check = match item {
            Item::Check(check) => check.clone(),
            Item::Login(Ok(ready)) => Check {
                check: "login",
                status: Status::Ok,
                finding: format!(
                    "logged in at {} as user {}",
                    words::server(&ready.server),
                    target.user
                ),
                hint: None,
            },
            Item::Login(Err(error)) => failed("login", error, target.conditions),
            Item::Condition(i, Ok(())) => Check {
                check: "condition",
                status: Status::Ok,
                finding: format!("{} holds", label_of(target.conditions.get(*i))),
                hint: None,
            },
            // Each condition was checked alone: its failure indexes a list of one.
            Item::Condition(i, Err(error)) => {
                let alone = target.conditions.get(*i..=*i).unwrap_or_default();
                failed("condition", error, alone)
            }
        };
        line(out, format, &label, &check, None)?;
    }
    let (check, exit) = verdict(diagnosis.verdict);
    line(out, format, &label, &check, Some(exit))
}

fn label_of(condition: Option<&Condition>) -> String {
    condition.map_or("a condition".to_string(), words::condition)
}

/// A failed attempt as the wait's final line would word it, with its hint.
fn failed(check: &'static str, error: &AttemptError, conditions: &[Condition]) -> Check {
    let primary = error.primary();
    Check {
        check,
        status: Status::Fail,
        finding: format!(
            "{}: {}",
            words::server(&primary.server),
            words::describe(&primary.failure, primary.class, conditions)
        ),
        hint: Some(words::hint_of(error).to_string()),
    }
}

/// The verdict line and the exit code it states (as `--once` exits).
fn verdict(verdict: Verdict) -> (Check, u64) {
    let (status, finding, exit) = match verdict {
        Verdict::Ready => (Status::Ok, "ready (exit 0)".to_string(), 0),
        Verdict::NotReady(class) => (Status::Fail, format!("not ready (exit 1): {class}"), 1),
        Verdict::Rejected(class) => (Status::Fail, format!("rejected (exit 3): {class}"), 3),
    };
    let check = Check {
        check: "verdict",
        status,
        finding,
        hint: None,
    };
    (check, exit)
}

fn line(
    out: &mut impl Write,
    format: LogFormat,
    label: &str,
    check: &Check,
    exit: Option<u64>,
) -> io::Result<()> {
    match format {
        LogFormat::Json => {
            let fields = [
                ("target", Some(label)),
                ("check", Some(check.check)),
                ("status", Some(check.status.name())),
                ("finding", Some(check.finding.as_str())),
                ("hint", check.hint.as_deref()),
            ];
            let text = json::object(&fields, exit.map(|e| ("exit", e)));
            out.write_all(text.as_bytes())
        }
        LogFormat::Text => {
            writeln!(
                out,
                "  {:<5} {:<10} {}",
                check.status.name(),
                check.check,
                escape_controls(&check.finding)
            )?;
            if let Some(hint) = &check.hint {
                writeln!(
                    out,
                    "  {:<5} {:<10} hint: {}",
                    "",
                    "",
                    escape_controls(hint)
                )?;
            }
            Ok(())
        }
    }
}
