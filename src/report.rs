//! Events → bytes on stderr: the only place pgwait writes a log line. One line per state change
//! (not per attempt), a periodic "still waiting", the outcome, and on failure one line naming the
//! cause with a hint; as text (`pgwait: ...`) or as one JSON object per line.
//!
//! Every line is built here from typed events ([`Event`]); a password never reaches this module.
//! Text from outside (server messages, host names, paths) is data: in text mode control
//! characters are escaped so it can neither forge a line nor colour the terminal; in JSON mode
//! serde_json escapes it, and [`SafeJson`] escapes what JSON allows raw (DEL, C1, bidi controls).

mod diagnosis;
mod json;
mod words;

use std::borrow::Cow;
use std::io::Write;
use std::time::{Duration, SystemTime};

use crate::classify::{Class, Failure, NotMet};
use crate::condition::Lag;
use crate::event::{Event, Sink};
use crate::policy::Decision;
use crate::probe::{AttemptError, Server};

pub use diagnosis::write as write_diagnosis;

/// How much pgwait says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Only warnings and the final failure line.
    Quiet,
    /// State changes, periodic status, the outcome.
    Normal,
    /// Also every attempt and every delay.
    Verbose,
}

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `pgwait: words`, for people.
    Text,
    /// One JSON object per line, for log systems.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// What to say and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub verbosity: Verbosity,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            verbosity: Verbosity::Normal,
            format: LogFormat::Text,
        }
    }
}

/// A line's severity: `-q` shows warn and error, the default adds info, `-v` adds debug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One line, before it is written: the words and the fields JSON carries besides them.
#[derive(Debug, Default)]
pub struct Record<'a> {
    pub level: Option<Level>,
    /// Stable snake_case name of the kind of event (README lists them).
    pub event: &'static str,
    pub msg: String,
    /// The target's label (see [`words::target`]).
    pub target: Option<String>,
    /// The server the line is about: JSON's `address` (its label), `host`, `port` and `ip`.
    pub server: Option<&'a Server>,
    pub class: Option<Class>,
    pub sqlstate: Option<&'a str>,
    pub attempts: Option<u32>,
    pub elapsed: Option<Duration>,
    pub delay: Option<Duration>,
    /// The server's own answer time (the policy's stretch reads it).
    pub answer: Option<Duration>,
    pub reason: Option<&'static str>,
    pub hint: Option<&'static str>,
    pub signal: Option<String>,
    pub program: Option<String>,
    /// The conditions that held, for `ready`.
    pub checked: Option<String>,
    /// `--max-lag`: the standby's backlog (on `ready`, and on failures of class `lagging`).
    pub lag: Option<Lag>,
}

/// Writes pgwait's log lines.
pub struct Reporter<W: Write> {
    out: W,
    settings: LogSettings,
    /// The class of each target's previous failed attempt: a line is due when it changes.
    last_class: Vec<(String, Class)>,
    /// Several targets: text lines start with the target they are about.
    name_targets: bool,
    clock: fn() -> SystemTime,
}

impl<W: Write> Reporter<W> {
    pub fn new(out: W, settings: LogSettings) -> Self {
        Self {
            out,
            settings,
            last_class: Vec::new(),
            name_targets: false,
            clock: SystemTime::now,
        }
    }

    /// With several targets, every text line names its target (JSON lines always do).
    pub fn name_targets(&mut self, on: bool) {
        self.name_targets = on;
    }

    /// Switches to the settings the configuration asks for (errors before it use the defaults).
    pub fn configure(&mut self, settings: LogSettings) {
        self.settings = settings;
    }

    /// Writes the line for `event`, if the verbosity shows it.
    fn write(&mut self, event: &Event<'_>) {
        let Some(record) = self.record(event) else {
            return;
        };
        let level = record.level.unwrap_or(Level::Info);
        let shown = match self.settings.verbosity {
            Verbosity::Quiet => level >= Level::Warn,
            Verbosity::Normal => level >= Level::Info,
            Verbosity::Verbose => true,
        };
        if !shown {
            return;
        }
        let line = match self.settings.format {
            LogFormat::Text => match record.target.as_ref().filter(|_| self.name_targets) {
                Some(target) => format!(
                    "pgwait: [{}] {}\n",
                    escape_controls(target),
                    escape_controls(&record.msg)
                ),
                None => format!("pgwait: {}\n", escape_controls(&record.msg)),
            },
            LogFormat::Json => json::line(&record, (self.clock)()),
        };
        // stderr may be closed in some containers; there is nowhere else to report that.
        let _ = self.out.write_all(line.as_bytes());
    }

    /// The record for `event`, or `None` when this event says nothing now (e.g. an attempt that
    /// failed like the previous one, without `-v`).
    fn record<'e>(&mut self, event: &'e Event<'e>) -> Option<Record<'e>> {
        let verbose = self.settings.verbosity == Verbosity::Verbose;
        Some(match event {
            Event::Start { target, timeout } => words::start(target, *timeout),
            Event::AttemptFailed {
                target,
                attempt,
                elapsed,
                error,
                decision,
            } => {
                let class = error.class();
                let label = words::target(target);
                let changed = match self.last_class.iter_mut().find(|(t, _)| *t == label) {
                    Some((_, last)) => std::mem::replace(last, class) != class,
                    None => {
                        self.last_class.push((label, class));
                        true
                    }
                };
                // Without -v, a line only when a retried failure differs from the last one.
                let news = changed && matches!(decision, Decision::Retry { .. });
                if !verbose && !news {
                    return None;
                }
                let mut record =
                    words::attempt_failed(target, *attempt, *elapsed, error, *decision, verbose);
                record.level = Some(if news { Level::Info } else { Level::Debug });
                record
            }
            other => words::record(other)?,
        })
    }
}

impl<W: Write> Sink for Reporter<W> {
    fn emit(&mut self, event: &Event<'_>) {
        self.write(event);
    }
}

/// The failure that names an attempt in the log, and its SQLSTATE if the server sent one.
fn primary_fields(error: &AttemptError) -> (&Server, Class, Option<&str>) {
    let primary = error.primary();
    let sqlstate = match &primary.failure {
        Failure::Server { sqlstate, .. } => Some(sqlstate.as_str()),
        _ => None,
    };
    (&primary.server, primary.class, sqlstate)
}

/// The backlog a `lagging` failure measured, if that is what the attempt ended with.
fn lag_of(error: &AttemptError) -> Option<Lag> {
    match &error.primary().failure {
        Failure::NotMet {
            got: NotMet::Lagging { bytes, ms },
            ..
        } => Some(Lag {
            bytes: *bytes,
            ms: *ms,
        }),
        _ => None,
    }
}

/// Control characters (and invisible reordering ones) as visible escapes: `\n`, `\x1b`,
/// `\u{202e}`. Text from a server or a file can then neither start a new line nor send terminal
/// escape sequences.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0 and C1 controls, DEL, line and paragraph separators, and bidirectional overrides.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[cfg(test)]
mod tests;
