//! Test harness: real PostgreSQL clusters started by the tests themselves.
//!
//! One `initdb` per test binary makes a template (roles for trust, md5 and scram-sha-256); each
//! test copies it, picks a free loopback port and keeps its socket in its own temp dir. As root,
//! the server runs as the `postgres` user (PostgreSQL refuses root). Missing PostgreSQL binaries
//! fail loudly: these tests never skip.

pub mod bouncer;
pub mod certs;
pub mod peer;
pub mod release;
pub mod running;

pub use running::Running;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SCRAM_USER: &str = "scram_user";
pub const SCRAM_PASSWORD: &str = "scr4m-Pa55word";
pub const MD5_USER: &str = "md5_user";
pub const MD5_PASSWORD: &str = "md5-Pa55word";
pub const TRUST_USER: &str = "trust_user";

pub const HBA: &str = "\
local all all trust
local replication all trust
host replication all 127.0.0.1/32 trust
host all trust_user 127.0.0.1/32 trust
host all md5_user 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
";

/// The PostgreSQL server binaries and the user to run them as.
pub struct Pg {
    pub bin: PathBuf,
    /// (uid, gid) of `postgres` when the tests run as root.
    pub run_as: Option<(u32, u32)>,
    template: PathBuf,
}

/// The shared template, made once per test binary.
pub fn pg() -> &'static Pg {
    static PG: OnceLock<Pg> = OnceLock::new();
    PG.get_or_init(Pg::init)
}

impl Pg {
    fn init() -> Pg {
        let bin = find_bindir();
        let run_as = (unsafe_getuid() == 0).then(postgres_ids);
        remove_stale_templates();
        let root = scratch_dir("template");
        let template = root.join("data");
        let pg = Pg {
            bin,
            run_as,
            template,
        };
        let out = pg
            .command("initdb")
            .args(["-D"])
            .arg(&pg.template)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.single_user(&format!(
            "CREATE ROLE {SCRAM_USER} LOGIN PASSWORD '{SCRAM_PASSWORD}';\n\
             SET password_encryption = 'md5';\n\
             CREATE ROLE {MD5_USER} LOGIN PASSWORD '{MD5_PASSWORD}';\n\
             CREATE ROLE {TRUST_USER} LOGIN;\n\
             CREATE ROLE cert_user LOGIN;\n"
        ));
        fs::write(pg.template.join("pg_hba.conf"), HBA).unwrap();
        let conf =
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 20\n\
                    shared_buffers = 16MB\nlogging_collector = off\nlog_connections = on\n";
        append(&pg.template.join("postgresql.conf"), conf);
        pg
    }

    /// A command for one of the server binaries, as the right user.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.env_remove("PGDATA").env("LC_ALL", "C");
        cmd
    }

    fn single_user(&self, sql: &str) {
        let mut child = self
            .command("postgres")
            .args(["--single", "-D"])
            .arg(&self.template)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postgres --single");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "single-user setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Templates outlive their test binary (statics are never dropped); remove those of dead runs.
fn remove_stale_templates() {
    for entry in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("pgwait-test-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if name.ends_with("-template") && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn find_bindir() -> PathBuf {
    let mut candidates: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    candidates.sort();
    if let Some(bin) = candidates.pop() {
        return bin;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok();
    match which.filter(|o| o.status.success()) {
        Some(o) => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).parent().unwrap().to_path_buf(),
        None => panic!(
            "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH: \
             install them (apt-get install -y postgresql). These tests need a real server and never skip."
        ),
    }
}

fn unsafe_getuid() -> u32 {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "running as root needs a 'postgres' user to run the server"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// A fresh directory under the system temp dir, readable by the server user.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgwait-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn append(path: &Path, text: &str) {
    let mut old = fs::read_to_string(path).unwrap();
    old.push_str(text);
    fs::write(path, old).unwrap();
}

pub fn chown_tree(path: &Path, ids: Option<(u32, u32)>) {
    if let Some((uid, gid)) = ids {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A free loopback TCP port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One PostgreSQL cluster copied from the template; stopped and removed on drop.
pub struct Cluster {
    pub root: PathBuf,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// `listen_addresses` for the next start; empty: the Unix socket only (the official
    /// image's init phase).
    pub listen_addresses: String,
    /// A second socket directory for the next start (e.g. `/tmp`, where `--diagnose` looks).
    pub extra_socket_dir: Option<PathBuf>,
}

impl Cluster {
    /// A stopped cluster in a fresh directory whose data directory is still to be made.
    fn empty(tag: &str) -> Cluster {
        let root = scratch_dir(tag);
        let socket_dir = root.join("sock");
        fs::create_dir(&socket_dir).unwrap();
        Cluster {
            data: root.join("data"),
            root,
            socket_dir,
            port: free_port(),
            child: None,
            listen_addresses: "127.0.0.1".into(),
            extra_socket_dir: None,
        }
    }

    /// A stopped cluster with extra `postgresql.conf` lines.
    pub fn new(extra_conf: &str) -> Cluster {
        let pg = pg();
        let cluster = Cluster::empty("cluster");
        let (root, data) = (&cluster.root, &cluster.data);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&pg.template)
            .arg(data)
            .status()
            .unwrap();
        assert!(status.success(), "copy template");
        append(&data.join("postgresql.conf"), extra_conf);
        chown_tree(root, pg.run_as);
        cluster
    }

    /// A stopped standby made with pg_basebackup from a running `primary` (streaming, -R).
    pub fn standby_of(primary: &Cluster) -> Cluster {
        let pg = pg();
        let cluster = Cluster::empty("standby");
        chown_tree(&cluster.root, pg.run_as);
        let out = pg
            .command("pg_basebackup")
            .arg("-D")
            .arg(&cluster.data)
            .args(["-R", "-X", "stream", "-c", "fast", "-h"])
            .arg(&primary.socket_dir)
            .args(["-p", &primary.port.to_string(), "-U", "postgres"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    /// Writes a file into the data directory, owned by the server user, with `mode`.
    pub fn write_data_file(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.data.join(name);
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        chown_tree(&path, pg().run_as);
        path
    }

    /// Starts the server without waiting for it.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already started");
        let log = fs::File::create(self.root.join("server.log")).unwrap();
        let child = pg()
            .command("postgres")
            .arg("-D")
            .arg(&self.data)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                &format!("listen_addresses={}", self.listen_addresses),
                "-k",
            ])
            .arg(match &self.extra_socket_dir {
                Some(extra) => format!("{},{}", self.socket_dir.display(), extra.display()),
                None => self.socket_dir.display().to_string(),
            })
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
    }

    /// Starts the server and waits until it accepts queries over its socket.
    pub fn start_ready(&mut self) {
        self.start();
        self.wait_ready();
    }

    /// Polls with psql over the Unix socket until `SELECT 1` works (30 s at most).
    pub fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if self.psql("postgres", "SELECT 1").status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not become ready; log:\n{}", self.log());
    }

    /// `-h 127.0.0.1 -p PORT -U USER -d postgres`: pgwait's flags to reach this cluster over TCP.
    pub fn tcp_args(&self, user: &str) -> Vec<String> {
        let port = self.port.to_string();
        ["-h", "127.0.0.1", "-p", &port, "-U", user, "-d", "postgres"]
            .map(String::from)
            .to_vec()
    }

    /// Runs one statement with psql as `postgres` over the socket.
    pub fn psql(&self, db: &str, sql: &str) -> Output {
        Command::new(pg().bin.join("psql"))
            .args(["-X", "-A", "-t", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env_remove("PGPASSWORD")
            .output()
            .expect("run psql")
    }

    /// `pg_ctl promote` on a standby.
    pub fn promote(&self) {
        let out = pg()
            .command("pg_ctl")
            .arg("promote")
            .arg("-D")
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promote failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// Fast shutdown, waiting for the server to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), "INT");
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Sends a signal by name to a process we started.
pub fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// pgwait with a clean environment (no PG* variables from the machine running the tests).
pub fn pgwait() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgwait"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd.stdin(Stdio::null());
    cmd
}

/// Waits for a child with a deadline; kills it and panics if the deadline passes.
pub fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` catches SIGTERM (`SigCgt` in /proc): pgwait installs its handler before it
/// waits, so a signal sent after this is the wait's to handle.
pub fn handles_sigterm(pid: u32) {
    let catches = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
    };
    assert!(
        eventually(Duration::from_secs(10), catches),
        "process {pid} never caught SIGTERM"
    );
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}
