//! The machine facts libpq's defaults depend on: the OS user, the home directory, and whether the
//! default socket directory exists.

use std::path::{Path, PathBuf};

use super::{env_string, Environment};
use crate::conninfo::{self, Defaults};

/// Reads the machine facts libpq's defaults depend on.
pub fn detect_defaults(env: &dyn Environment) -> Defaults {
    let passwd = read_passwd();
    Defaults {
        user: os_user(env, passwd.as_ref()),
        home: env_string(env, "HOME")
            .ok()
            .flatten()
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| passwd.and_then(|p| p.home)),
        socket_dir_exists: Path::new(conninfo::DEFAULT_SOCKET_DIR).is_dir(),
        system_roots: system_roots(env),
    }
}

/// Where the system keeps its trusted roots, as OpenSSL (libpq's `sslrootcert=system`) and the
/// drivers' TLS stacks find them: `SSL_CERT_FILE`, else the distribution's bundle.
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",   // RHEL, Fedora
    "/etc/ssl/ca-bundle.pem",             // SUSE
    "/etc/ssl/cert.pem",                  // Alpine, BSDs
];

fn system_roots(env: &dyn Environment) -> Option<PathBuf> {
    let named = env_string(env, "SSL_CERT_FILE")
        .ok()
        .flatten()
        .filter(|f| !f.is_empty());
    named
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// This user's `/etc/passwd` entry, read directly (no NSS, so it works in a static binary).
struct PasswdEntry {
    name: String,
    home: Option<PathBuf>,
}

fn read_passwd() -> Option<PasswdEntry> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    passwd_entry(&std::fs::read_to_string("/etc/passwd").ok()?, uid)
}

/// libpq's default user: the OS user; `$USER`, then `postgres` in an image with no passwd file.
fn os_user(env: &dyn Environment, passwd: Option<&PasswdEntry>) -> String {
    passwd
        .map(|p| p.name.clone())
        .or_else(|| env_string(env, "USER").ok().flatten())
        .unwrap_or_else(|| "postgres".to_string())
}

fn passwd_entry(passwd: &str, uid: u32) -> Option<PasswdEntry> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let id: u32 = fields.get(2)?.parse().ok()?;
        (id == uid && !fields[0].is_empty()).then(|| PasswdEntry {
            name: fields[0].to_string(),
            home: fields.get(5).filter(|h| !h.is_empty()).map(PathBuf::from),
        })
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn os_user_and_home_are_read_from_passwd_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\napp:x:1000:1000::/home/app:/bin/sh\nnohome:x:7:7:::\n";
        let root = passwd_entry(passwd, 0).unwrap();
        assert_eq!(
            (root.name.as_str(), root.home),
            ("root", Some(PathBuf::from("/root")))
        );
        assert_eq!(passwd_entry(passwd, 1000).unwrap().name, "app");
        assert_eq!(passwd_entry(passwd, 7).unwrap().home, None);
        assert!(passwd_entry(passwd, 65532).is_none());
        let env: HashMap<&str, &str> = [("USER", "fromenv")].into_iter().collect();
        assert_eq!(os_user(&env, None), "fromenv");
        assert_eq!(os_user(&HashMap::<&str, &str>::new(), None), "postgres");
    }
}
