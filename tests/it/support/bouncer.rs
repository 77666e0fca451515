//! A real PgBouncer, started by the test on its own port with its own config (never the system
//! service), in front of a test cluster. Stopped on drop.

use std::fs;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{chown_tree, free_port, pg, scratch_dir, unsafe_kill, SCRAM_PASSWORD, SCRAM_USER};

/// The database name PgBouncer serves; it maps to `postgres` on the backend.
pub const DATABASE: &str = "appdb";

pub struct Bouncer {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

fn binary() -> PathBuf {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("pgbouncer is not installed: run .ci/run (or apt-get install pgbouncer)")
}

impl Bouncer {
    /// PgBouncer in transaction mode with SCRAM for its clients, serving [`DATABASE`] from the
    /// server on `backend_port` (which need not be up yet).
    pub fn start(backend_port: u16) -> Bouncer {
        let dir = scratch_dir("pgbouncer");
        let port = free_port();
        let ini = format!(
            "[databases]\n\
             {DATABASE} = host=127.0.0.1 port={backend_port} dbname=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = scram-sha-256\n\
             auth_file = {users}\n\
             pool_mode = transaction\n\
             server_login_retry = 3\n\
             logfile = {log}\n",
            users = dir.join("users.txt").display(),
            log = dir.join("pgbouncer.log").display(),
        );
        fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        fs::write(
            dir.join("users.txt"),
            format!("\"{SCRAM_USER}\" \"{SCRAM_PASSWORD}\"\n"),
        )
        .unwrap();
        chown_tree(&dir, pg().run_as);
        let mut cmd = Command::new(binary());
        // PgBouncer refuses to run as root.
        if let Some((uid, gid)) = pg().run_as {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bouncer = Bouncer { port, dir, child };
        bouncer.wait_listening();
        bouncer
    }

    fn wait_listening(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < until,
                "pgbouncer never listened:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// PgBouncer's own log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        unsafe_kill(self.child.id(), "TERM");
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
