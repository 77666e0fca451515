//! libpq password files (`~/.pgpass`, `PGPASSFILE`, `passfile=`): loading with libpq's safety
//! rules and matching `hostname:port:database:username:password` lines.
//!
//! [`crate::credentials`] reads it at start-up and again whenever it changes; passwords stay inside
//! [`Secret`]. Warnings name the file and line number, never the line itself.

use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::conninfo::{Endpoint, FileSetting, Secret, DEFAULT_SOCKET_DIR};

/// One field of a line: a whole-field `*` matches anything; `\*` is a literal star.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Any,
    Exactly(String),
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exactly(text) => text == value,
        }
    }
}

/// One line: four patterns and the password.
#[derive(Clone)]
struct Entry {
    fields: [Pattern; 4],
    password: Secret,
}

/// The usable entries of a password file, in file order (first match wins).
#[derive(Clone, Default)]
pub struct PassFile {
    entries: Vec<Entry>,
}

impl fmt::Debug for PassFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PassFile({} entries)", self.entries.len())
    }
}

impl PartialEq for PassFile {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.fields == b.fields && a.password == b.password)
    }
}

impl Eq for PassFile {}

/// Why (part of) a password file was not used. Names the file and line, never the line itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassFileWarning {
    NotPlainFile { path: String },
    TooOpen { path: String },
    BadLine { path: String, line: usize },
    Unreadable { path: String, detail: String },
}

impl fmt::Display for PassFileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPlainFile { path } => {
                write!(f, "password file \"{path}\" is not a plain file; ignoring it")
            }
            Self::TooOpen { path } => write!(
                f,
                "password file \"{path}\" has group or world access; permissions should be u=rw (0600) or less; ignoring it"
            ),
            Self::BadLine { path, line } => write!(
                f,
                "password file \"{path}\" line {line} does not have 5 colon-separated fields; skipping it"
            ),
            Self::Unreadable { path, detail } => {
                write!(f, "cannot read password file \"{path}\": {detail}")
            }
        }
    }
}

/// Reads the password file. Like libpq, a missing file is silently ignored, and a file that is
/// not a plain file or is readable by group or others is ignored with a warning.
pub fn load(setting: &FileSetting) -> (PassFile, Vec<PassFileWarning>) {
    let path = setting.path.display().to_string();
    let Ok(meta) = fs::metadata(&setting.path) else {
        return (PassFile::default(), Vec::new());
    };
    if !meta.is_file() {
        return (
            PassFile::default(),
            vec![PassFileWarning::NotPlainFile { path }],
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return (PassFile::default(), vec![PassFileWarning::TooOpen { path }]);
    }
    match fs::read_to_string(&setting.path) {
        Ok(text) => {
            let (file, bad_lines) = parse(&text);
            let warnings = bad_lines
                .into_iter()
                .map(|line| PassFileWarning::BadLine {
                    path: path.clone(),
                    line,
                })
                .collect();
            (file, warnings)
        }
        Err(e) => (
            PassFile::default(),
            vec![PassFileWarning::Unreadable {
                path,
                detail: e.to_string(),
            }],
        ),
    }
}

/// Parses the text; returns the entries and the (1-based) numbers of malformed lines.
pub fn parse(text: &str) -> (PassFile, Vec<usize>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match split_line(line) {
            Some(entry) => entries.push(entry),
            None => bad.push(i + 1),
        }
    }
    (PassFile { entries }, bad)
}

/// Splits a line as libpq's passwordFromFile does: four fields ended by unescaped `:`, then
/// the password up to the next unescaped `:` (the rest of the line is ignored); `\` escapes
/// the next character everywhere. A line with only four fields never matches.
fn split_line(line: &str) -> Option<Entry> {
    let mut fields: Vec<Pattern> = Vec::with_capacity(4);
    let mut current = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => {
                    current.push(next);
                    escaped_any = true;
                }
                None => current.push('\\'),
            },
            ':' if fields.len() < 4 => {
                let text = std::mem::take(&mut current);
                fields.push(if text == "*" && !std::mem::take(&mut escaped_any) {
                    Pattern::Any
                } else {
                    Pattern::Exactly(text)
                });
                escaped_any = false;
            }
            ':' => break,
            c => current.push(c),
        }
    }
    let fields: [Pattern; 4] = fields.try_into().ok()?;
    Some(Entry {
        fields,
        password: Secret::new(current),
    })
}

impl PassFile {
    /// The password for this server, database and user, if a line matches.
    pub fn lookup(&self, endpoint: &Endpoint, dbname: &str, user: &str) -> Option<Secret> {
        let host = match endpoint {
            Endpoint::Tcp { host, .. } => host.clone(),
            // libpq: the default socket directory matches "localhost".
            Endpoint::Socket { dir, .. } if dir.as_os_str() == DEFAULT_SOCKET_DIR => {
                "localhost".into()
            }
            Endpoint::Socket { dir, .. } => dir.display().to_string(),
        };
        let wanted = [
            host,
            endpoint.port().to_string(),
            dbname.to_string(),
            user.to_string(),
        ];
        self.entries
            .iter()
            .find(|e| {
                e.fields
                    .iter()
                    .zip(&wanted)
                    .all(|(pattern, value)| pattern.matches(value))
            })
            .map(|e| e.password.clone())
            // libpq never sends an empty password.
            .filter(|p| !p.expose().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            hostaddr: None,
            port,
        }
    }

    fn pw(file: &PassFile, endpoint: &Endpoint, db: &str, user: &str) -> Option<String> {
        file.lookup(endpoint, db, user)
            .map(|s| s.expose().to_string())
    }

    const FILE: &str = "\
# comment
db.example:5432:app:app:first-match
db.example:5432:app:app:second
*:6432:*:pooler:pool\\:pass
/tmp/sock:5433:*:*:socket
localhost:5432:*:postgres:local
short:line
*:*:*:*:fallback:ends:at:the:colon
";

    #[test]
    fn matches_like_libpq() {
        let (file, bad) = parse(FILE);
        assert_eq!(bad, vec![7]);
        assert_eq!(
            pw(&file, &tcp("db.example", 5432), "app", "app").as_deref(),
            Some("first-match")
        );
        assert_eq!(
            pw(&file, &tcp("any", 6432), "x", "pooler").as_deref(),
            Some("pool:pass")
        );
        let sock = Endpoint::Socket {
            dir: PathBuf::from("/tmp/sock"),
            port: 5433,
        };
        assert_eq!(pw(&file, &sock, "x", "y").as_deref(), Some("socket"));
        let default_sock = Endpoint::Socket {
            dir: PathBuf::from(DEFAULT_SOCKET_DIR),
            port: 5432,
        };
        assert_eq!(
            pw(&file, &default_sock, "x", "postgres").as_deref(),
            Some("local")
        );
        assert_eq!(
            pw(&file, &tcp("other", 1), "d", "u").as_deref(),
            Some("fallback")
        );
        assert_eq!(pw(&PassFile::default(), &tcp("h", 1), "d", "u"), None);
    }

    #[test]
    fn only_a_whole_unescaped_star_is_a_wildcard() {
        let (file, bad) = parse("\\*:5432:d:u:literal\nh*:5432:d:u:prefix\n*:5432:d:u:any\n");
        assert!(bad.is_empty());
        assert_eq!(
            pw(&file, &tcp("*", 5432), "d", "u").as_deref(),
            Some("literal")
        );
        assert_eq!(
            pw(&file, &tcp("h*", 5432), "d", "u").as_deref(),
            Some("prefix")
        );
        assert_eq!(
            pw(&file, &tcp("hx", 5432), "d", "u").as_deref(),
            Some("any")
        );
    }

    #[test]
    fn escapes_apply_to_fields_too() {
        let (file, bad) = parse("h\\:x:5432:d\\\\b:u:p\n");
        assert!(bad.is_empty());
        assert_eq!(
            pw(&file, &tcp("h:x", 5432), "d\\b", "u").as_deref(),
            Some("p")
        );
    }

    #[test]
    fn debug_output_hides_passwords() {
        let (file, _) = parse(FILE);
        let debug = format!("{file:?}");
        assert!(
            !debug.contains("first-match") && debug.contains("6 entries"),
            "{debug}"
        );
    }

    fn temp_file(name: &str, text: &str, mode: u32) -> FileSetting {
        let dir =
            std::env::temp_dir().join(format!("pgwait-passfile-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        FileSetting {
            path,
            explicit: true,
        }
    }

    #[test]
    fn ignores_group_readable_files_and_directories_with_a_warning() {
        let open = temp_file("open", "*:*:*:*:secret-pw\n", 0o644);
        let (file, warnings) = load(&open);
        assert_eq!(file, PassFile::default());
        assert!(
            warnings[0].to_string().contains("group or world access")
                && !warnings[0].to_string().contains("secret-pw"),
            "{warnings:?}"
        );
        let private = temp_file("private", "*:*:*:*:secret-pw\nbad\n", 0o600);
        let (file, warnings) = load(&private);
        assert_eq!(
            pw(&file, &tcp("h", 1), "d", "u").as_deref(),
            Some("secret-pw")
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let dir = FileSetting {
            path: private.path.parent().unwrap().to_path_buf(),
            explicit: true,
        };
        assert!(load(&dir).1[0].to_string().contains("not a plain file"));
        let missing = FileSetting {
            path: "/nonexistent/pgpass".into(),
            explicit: false,
        };
        assert_eq!(load(&missing), (PassFile::default(), Vec::new()));
        for s in [open, private] {
            let _ = fs::remove_dir_all(s.path.parent().unwrap());
        }
    }
}
