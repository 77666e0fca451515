//! The password for each attempt, from sources that may change during a long wait.
//!
//! A Kubernetes Secret update or a sidecar that rotates a file must be seen without a restart:
//! before each attempt the password file (`--password-file`) and the libpq password file
//! (`.pgpass`) are checked with one `stat` each and re-read, with the same safety rules, only
//! when they changed. The log says that the credentials changed, never what they are.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::conninfo::{ConnParams, Endpoint, FileSetting, Secret};
use crate::passfile::{self, PassFile, PassFileWarning};

/// Which file changed, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--password-file` / `PGWAIT_PASSWORD_FILE`.
    PasswordFile(String),
    /// `.pgpass`, `PGPASSFILE` or `passfile=`.
    PassFile(String),
}

/// What a check of the files found worth saying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The password in use changed.
    Changed(Source),
    Warning(PassFileWarning),
}

/// A file's identity and version: a change of any of these means "read it again" (a Kubernetes
/// Secret update swaps a symlink, so the inode changes; an editor may keep size and mtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ctime: (meta.ctime(), meta.ctime_nsec()),
    })
}

/// A file and what was last read from it.
#[derive(Debug, Clone)]
struct Watched<T> {
    path: PathBuf,
    stamp: Option<Stamp>,
    value: T,
}

/// Where passwords come from, in libpq's order; an empty password counts as none.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// A password typed into `-d`, or from `PGPASSWORD` / `DATABASE_URL`.
    fixed: Option<Secret>,
    /// `--password-file`: beats `fixed` when config says it applies.
    file: Option<Watched<Option<Secret>>>,
    /// `.pgpass`: consulted when no other source has a password.
    passfile: Option<Watched<PassFile>>,
}

impl Credentials {
    /// Reads the files once; returns the warnings to show.
    pub fn new(conn: &ConnParams) -> (Self, Vec<Note>) {
        let mut notes = Vec::new();
        let file = conn.password_file.as_ref().map(|path| {
            let stamp = stamp(path);
            let value = read_password_file(path).unwrap_or_else(|| conn.password.clone());
            Watched {
                path: path.clone(),
                stamp,
                value,
            }
        });
        let fixed = match file {
            Some(_) => None,
            None => conn.password.clone(),
        };
        // As libpq: .pgpass only matters (and only warns) when no password was given.
        let wanted = conn.password.is_none() || conn.password_file.is_some();
        let passfile = conn.passfile.as_ref().filter(|_| wanted).map(|setting| {
            let stamp = stamp(&setting.path);
            let (value, warnings) = passfile::load(setting);
            notes.extend(warnings.into_iter().map(Note::Warning));
            Watched {
                path: setting.path.clone(),
                stamp,
                value,
            }
        });
        let credentials = Self {
            fixed,
            file,
            passfile,
        };
        (credentials, notes)
    }

    /// Re-reads whichever file changed since it was last read.
    pub fn refresh(&mut self) -> Vec<Note> {
        let mut notes = Vec::new();
        if let Some(file) = &mut self.file {
            let now = stamp(&file.path);
            if now != file.stamp {
                file.stamp = now;
                // Unreadable for a moment (mid-rotation): keep the password we had.
                if let Some(value) = read_password_file(&file.path) {
                    if value != file.value {
                        file.value = value;
                        let path = file.path.display().to_string();
                        notes.push(Note::Changed(Source::PasswordFile(path)));
                    }
                }
            }
        }
        if let Some(passfile) = &mut self.passfile {
            let now = stamp(&passfile.path);
            if now != passfile.stamp {
                passfile.stamp = now;
                let setting = FileSetting {
                    path: passfile.path.clone(),
                    explicit: true,
                };
                let (value, warnings) = passfile::load(&setting);
                notes.extend(warnings.into_iter().map(Note::Warning));
                if value != passfile.value {
                    passfile.value = value;
                    let path = passfile.path.display().to_string();
                    notes.push(Note::Changed(Source::PassFile(path)));
                }
            }
        }
        notes
    }

    /// The password to offer `endpoint`, if any source has one.
    pub fn password_for(&self, endpoint: &Endpoint, dbname: &str, user: &str) -> Option<Secret> {
        let explicit = match &self.file {
            Some(file) => file.value.clone(),
            None => self.fixed.clone(),
        };
        explicit.or_else(|| {
            self.passfile
                .as_ref()
                .and_then(|p| p.value.lookup(endpoint, dbname, user))
        })
    }
}

/// The password in a password file: its text without one trailing newline; an empty file is
/// no password (libpq never sends an empty one). `None` if it cannot be read.
pub fn read_password_file(path: &Path) -> Option<Option<Secret>> {
    let text = fs::read_to_string(path).ok()?;
    Some(password_from_text(&text))
}

/// The password in a password file's text (one trailing `\n` or `\r\n` is not part of it).
pub fn password_from_text(text: &str) -> Option<Secret> {
    let password = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    (!password.is_empty()).then(|| Secret::new(password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pgwait-cred-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn endpoint() -> Endpoint {
        Endpoint::Tcp {
            host: "db".into(),
            hostaddr: None,
            port: 5432,
        }
    }

    fn params(password_file: Option<PathBuf>, passfile: Option<PathBuf>) -> ConnParams {
        let mut settings = crate::conninfo::Settings::default();
        settings
            .set("host", "db".into(), crate::conninfo::Origin::DbnameArg)
            .unwrap();
        let defaults = crate::conninfo::Defaults {
            user: "app".into(),
            home: None,
            socket_dir_exists: false,
            system_roots: None,
        };
        let mut conn = settings.resolve(&defaults).unwrap();
        conn.password_file = password_file;
        conn.passfile = passfile.map(|path| FileSetting {
            path,
            explicit: true,
        });
        conn
    }

    fn password(c: &Credentials) -> Option<String> {
        c.password_for(&endpoint(), "app", "app")
            .map(|s| s.expose().to_string())
    }

    #[test]
    fn an_empty_password_file_is_no_password() {
        let table = [
            ("pw\n", Some("pw")),
            ("pw\r\n", Some("pw")),
            ("pw", Some("pw")),
            ("pw\n\n", Some("pw\n")),
            ("", None),
            ("\n", None),
        ];
        for (text, want) in table {
            let got = password_from_text(text);
            assert_eq!(got.as_ref().map(Secret::expose), want, "{text:?}");
        }
    }

    #[test]
    fn rotated_files_are_read_again_and_reported_without_their_contents() {
        let d = dir("rotate");
        let file = d.join("password");
        let pgpass = d.join("pgpass");
        fs::write(&file, "").unwrap();
        fs::write(&pgpass, "*:*:*:*:from-pgpass\n").unwrap();
        fs::set_permissions(&pgpass, fs::Permissions::from_mode(0o600)).unwrap();
        let (mut c, notes) = Credentials::new(&params(Some(file.clone()), Some(pgpass.clone())));
        assert!(notes.is_empty(), "{notes:?}");
        // The empty password file gives nothing: .pgpass answers.
        assert_eq!(password(&c).as_deref(), Some("from-pgpass"));
        assert!(c.refresh().is_empty(), "nothing changed");

        fs::write(&file, "rotated-secret\n").unwrap();
        let notes = c.refresh();
        assert_eq!(
            notes,
            vec![Note::Changed(Source::PasswordFile(
                file.display().to_string()
            ))]
        );
        assert!(!format!("{notes:?}").contains("rotated-secret"));
        assert_eq!(password(&c).as_deref(), Some("rotated-secret"));

        // Atomic replacement (what a Secret update does): a new inode with the same size.
        let next = d.join("password.new");
        fs::write(&next, "rotated-secreT\n").unwrap();
        fs::rename(&next, &file).unwrap();
        assert_eq!(c.refresh().len(), 1);
        assert_eq!(password(&c).as_deref(), Some("rotated-secreT"));

        // Gone for a moment: keep what we had, say nothing.
        fs::remove_file(&file).unwrap();
        assert!(c.refresh().is_empty());
        assert_eq!(password(&c).as_deref(), Some("rotated-secreT"));

        fs::write(&pgpass, "*:*:*:*:new-pgpass\n").unwrap();
        assert_eq!(
            c.refresh(),
            vec![Note::Changed(Source::PassFile(
                pgpass.display().to_string()
            ))]
        );
        let _ = fs::remove_dir_all(d);
    }
}
