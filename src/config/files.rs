//! Settings that come from files the user names: service files (`service=`, `PGSERVICE`) and the
//! password file (`--password-file`, `PGWAIT_PASSWORD_FILE`).

use std::path::{Path, PathBuf};

use super::{env_string, setting, ConfigError, Environment};
use crate::cli::{Id, Opts};
use crate::conninfo::{self, ConnError, Defaults, Origin, Settings};
use crate::credentials;

/// Where libpq looks for the system-wide `pg_service.conf` without `PGSYSCONFDIR` (Debian's path).
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// `service=` / `PGSERVICE`: the user's service file first, then the system one, as libpq does.
pub(super) fn apply_service_file(
    settings: &mut Settings,
    env: &dyn Environment,
    defaults: &Defaults,
) -> Result<(), ConfigError> {
    let Some((name, origin)) = settings.get("service").map(|(n, o)| (n.to_string(), o)) else {
        return Ok(());
    };
    // servicefile= (PostgreSQL 19) or PGSERVICEFILE must exist; ~/.pg_service.conf need not.
    let user_file = match settings.get("servicefile").filter(|(p, _)| !p.is_empty()) {
        Some((path, source)) => Some((PathBuf::from(path), source, true)),
        None => defaults
            .home
            .as_ref()
            .map(|h| (h.join(".pg_service.conf"), Origin::HomeDir, false)),
    };
    let sysconfdir =
        env_string(env, "PGSYSCONFDIR")?.unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_string());
    let system_file = (
        Path::new(&sysconfdir).join("pg_service.conf"),
        Origin::Env("PGSYSCONFDIR"),
        false,
    );
    for (path, source, must_exist) in user_file.into_iter().chain([system_file]) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => continue,
            Err(e) => return Err(unreadable(source, &path, e)),
        };
        let found =
            conninfo::service::find(&text, &name).map_err(|message| ConnError::Service {
                message: format!("service file \"{}\": {message}", path.display()),
            })?;
        if let Some(pairs) = found {
            return Ok(settings.apply_service(pairs)?);
        }
    }
    // A service name is a word; anything else is a mistake that may hold a secret: not shown.
    let is_name = name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let message = if is_name {
        format!("definition of service \"{name}\" (from {origin}) not found in any service file")
    } else {
        format!("the service named in {origin} is not a plain name and is in no service file")
    };
    Err(ConnError::Service { message }.into())
}

/// `--password-file` / `PGWAIT_PASSWORD_FILE` (a Kubernetes or Docker secret): beats `PGPASSWORD`
/// and `DATABASE_URL`, but not a password typed into `-d`. It must be readable now; returns its
/// path when it applies, so the probe can re-read it when it changes.
pub(super) fn apply_password_file(
    settings: &mut Settings,
    opts: &Opts,
    env: &dyn Environment,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some((path, origin)) = setting(opts, Id::PasswordFile, env)? else {
        return Ok(None);
    };
    if settings
        .get("password")
        .is_some_and(|(_, o)| o == Origin::DbnameArg)
    {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| unreadable(origin, Path::new(&path), e))?;
    let password = credentials::password_from_text(&text);
    let password = password.as_ref().map_or("", |p| p.expose());
    settings.set("password", password.to_string(), origin)?;
    Ok(Some(PathBuf::from(path)))
}

fn unreadable(source: Origin, path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError::Unreadable {
        source,
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}
