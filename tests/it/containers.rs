//! pgwait proven in real containers: a static binary in a scratch image, PostgreSQL in an image
//! built from this machine's own installation, a tiny static app — nothing is pulled. Every
//! container, network and image gets a unique name and is removed, even when a test fails. If
//! Docker is unreachable these tests fail with a clear message; they never pass silently.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::release::{build_static, static_binary, ROOT, STATIC_FLAGS};
use crate::support::{
    eventually, scratch_dir, wait_with_deadline, Cluster, SCRAM_PASSWORD, SCRAM_USER,
};

const PASSWORD: &str = "container-pa55word";

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("run the docker client")
}

/// Runs docker and returns its trimmed stdout; panics with its stderr on failure.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn prefix() -> String {
    format!("pgwait-t{}", std::process::id())
}

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}-{tag}", prefix(), N.fetch_add(1, Ordering::SeqCst))
}

/// Images built once per test binary, removed when the process exits.
struct Images {
    pgwait: String,
    postgres: String,
    app: String,
}

static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn remove_images() {
    let images = BUILT.lock().map(|v| v.clone()).unwrap_or_default();
    if !images.is_empty() {
        let mut args = vec!["rmi", "-f"];
        args.extend(images.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

fn build_image(tag: &str, args: &[&str]) {
    BUILT.lock().unwrap().push(tag.to_string());
    let mut full = vec!["build", "-q", "-t", tag];
    full.extend_from_slice(args);
    docker_ok(&full);
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let info = docker(&["info", "--format", "{{.ServerVersion}}"]);
        assert!(
            info.status.success(),
            "Docker is unreachable, so the container tests cannot run: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        remove_stale_images();
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { atexit(remove_images) };
        build_static();
        let p = prefix();
        let images = Images {
            pgwait: format!("{p}-pgwait:latest"),
            postgres: format!("{p}-postgres:latest"),
            app: format!("{p}-app:latest"),
        };
        build_image(&images.pgwait, &["--target", "prebuilt", ROOT]);
        let pg_context = scratch_dir("pg-image");
        let script = Path::new(ROOT).join("docker/postgres/build-context.sh");
        let out = Command::new(script).arg(&pg_context).output().unwrap();
        assert!(
            out.status.success(),
            "build-context.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        build_image(&images.postgres, &[pg_context.to_str().unwrap()]);
        let app_context = scratch_dir("app-image");
        std::fs::copy(
            Path::new(ROOT).join("docker/app/Dockerfile"),
            app_context.join("Dockerfile"),
        )
        .unwrap();
        std::fs::copy(static_binary("demo_app"), app_context.join("demo_app")).unwrap();
        let arg = format!("PGWAIT_IMAGE={}", images.pgwait);
        build_image(
            &images.app,
            &["--build-arg", &arg, app_context.to_str().unwrap()],
        );
        for dir in [pg_context, app_context] {
            let _ = std::fs::remove_dir_all(dir);
        }
        images
    })
}

/// Images left by test runs that died (their pid is gone).
fn remove_stale_images() {
    let listed = docker(&[
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        "--filter",
        "reference=pgwait-t*",
    ]);
    for image in String::from_utf8_lossy(&listed.stdout).lines() {
        let pid = image
            .trim_start_matches("pgwait-t")
            .split('-')
            .next()
            .unwrap_or("");
        if !Path::new("/proc").join(pid).exists() {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// Waits up to 60 s for the container's log to say `text` (what pgwait prints while it waits).
fn logs_say(container: &str, text: &str) {
    assert!(
        eventually(Duration::from_secs(60), || logs(container).contains(text)),
        "{text:?} never appeared:\n{}",
        logs(container)
    );
}

/// Containers and networks of one test, removed on drop (also when the test panics).
struct Scope {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Scope {
    fn new() -> Scope {
        images();
        Scope {
            containers: Vec::new(),
            networks: Vec::new(),
        }
    }

    fn network(&mut self) -> String {
        let name = unique("net");
        docker_ok(&["network", "create", &name]);
        self.networks.push(name.clone());
        name
    }

    /// `docker run -d --name NAME ARGS...`; returns NAME.
    fn run(&mut self, tag: &str, args: &[&str]) -> String {
        let name = unique(tag);
        let mut full = vec!["run", "-d", "--name", &name];
        full.extend_from_slice(args);
        self.containers.push(name.clone());
        docker_ok(&full);
        name
    }

    /// A PostgreSQL container on `network`, reachable as its own name.
    fn database(&mut self, network: &str) -> String {
        let pg = images().postgres.clone();
        self.run(
            "db",
            &[
                "--network",
                network,
                "-e",
                &format!("POSTGRES_PASSWORD={PASSWORD}"),
                &pg,
            ],
        )
    }

    /// The app image (pgwait -- /app) against `db` on `network`, with extra `-e` settings.
    fn app(&mut self, network: &str, db: &str, env: &[&str]) -> String {
        let mut args = vec!["--network".to_string(), network.to_string()];
        let base = [
            format!("PGHOST={db}"),
            "PGUSER=postgres".into(),
            format!("PGPASSWORD={PASSWORD}"),
        ];
        for e in base.iter().map(String::as_str).chain(env.iter().copied()) {
            args.extend(["-e".to_string(), e.to_string()]);
        }
        args.push(images().app.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("app", &args)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

fn logs(container: &str) -> String {
    let out = docker(&["logs", container]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn running(container: &str) -> bool {
    docker_ok(&["inspect", "-f", "{{.State.Running}}", container]) == "true"
}

/// `docker wait` with a deadline: the container's exit code.
fn exit_code(container: &str, limit: Duration) -> i32 {
    let mut child = Command::new("docker")
        .args(["wait", container])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(&mut child, limit);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("docker wait prints the exit code")
}

/// Polls `pgwait --once` in a throwaway container until `db` accepts the credentials.
fn wait_until_ready(network: &str, db: &str) {
    let pgwait = images().pgwait.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let pw = format!("PGPASSWORD={PASSWORD}");
    while Instant::now() < deadline {
        let args = [
            "run",
            "--rm",
            "--network",
            network,
            "-e",
            &pw,
            &pgwait,
            "--once",
            "-q",
            "-h",
            db,
            "-U",
            "postgres",
        ];
        if docker(&args).status.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("database {db} never became ready:\n{}", logs(db));
}

#[test]
fn static_binary_runs_in_an_empty_root_with_name_resolution_and_scram() {
    build_static();
    let binary = static_binary("pgwait");
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    let ldd = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        ldd.contains("statically linked") || ldd.contains("not a dynamic executable"),
        "{ldd}"
    );
    let size = std::fs::metadata(&binary).unwrap().len();
    assert!(size < 4 << 20, "static binary is {size} bytes");

    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let root = scratch_dir("emptyroot");
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.0.1 dbhost.internal\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
    std::fs::copy(&binary, root.join("pgwait")).unwrap();
    let port = cluster.port.to_string();
    let chroot = if Path::new("/usr/sbin/chroot").exists() {
        "/usr/sbin/chroot"
    } else {
        "chroot"
    };
    let out = Command::new(chroot)
        .arg(&root)
        .args([
            "/pgwait",
            "--once",
            "-h",
            "dbhost.internal",
            "-p",
            &port,
            "-U",
            SCRAM_USER,
            "-d",
            "postgres",
        ])
        .env_clear()
        .env("PGPASSWORD", SCRAM_PASSWORD)
        .output()
        .expect("chroot (needs root)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("ready after") && log.contains("dbhost.internal"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn the_app_waits_for_a_database_whose_name_does_not_resolve_yet_then_execs() {
    let mut scope = Scope::new();
    let net = scope.network();
    let db_name = unique("db-later");
    let app = scope.app(&net, &db_name, &["APP_EXIT_CODE=7", "PGWAIT_TIMEOUT=90s"]);
    logs_say(&app, "not resolvable");
    assert!(
        running(&app),
        "pgwait gave up before the database existed:\n{}",
        logs(&app)
    );
    assert!(logs(&app).contains("not resolvable"), "{}", logs(&app));
    scope.containers.push(db_name.clone());
    let pg = images().postgres.clone();
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &db_name,
        "--network",
        &net,
        "-e",
        &format!("POSTGRES_PASSWORD={PASSWORD}"),
        &pg,
    ]);
    let code = exit_code(&app, Duration::from_secs(90));
    let log = logs(&app);
    assert_eq!(
        code, 7,
        "the app's exit code must be the container's:\n{log}"
    );
    assert!(
        log.contains("ready after") && log.contains("demo app (pid 1): connected to PostgreSQL"),
        "{log}"
    );
}

#[test]
fn the_compose_demo_comes_up_healthy_and_in_order() {
    let images = images();
    let project = unique("compose");
    let workdir = scratch_dir("compose");
    let demo = |action: &str| {
        Command::new(Path::new(ROOT).join("docker/demo.sh"))
            .arg(action)
            .env("COMPOSE_PROJECT_NAME", &project)
            .env("PGWAIT_IMAGE", format!("{project}-pgwait:latest"))
            .env("POSTGRES_IMAGE", &images.postgres)
            .env("DEMO_WORKDIR", &workdir)
            .env("RUSTFLAGS", STATIC_FLAGS)
            .output()
            .unwrap()
    };
    struct Down<F: Fn(&str) -> Output>(F);
    impl<F: Fn(&str) -> Output> Drop for Down<F> {
        fn drop(&mut self) {
            (self.0)("down");
        }
    }
    let down = Down(demo);
    let out = (down.0)("up");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("demo app (pid 1): connected to PostgreSQL"),
        "{log}"
    );
    // The app was started only once the healthcheck passed, so its gate found the server ready
    // at the first attempt.
    assert!(
        log.contains("ready after") && log.contains("(1 attempt)"),
        "{log}"
    );
}

#[test]
fn docker_stop_ends_a_waiting_pgwait_as_pid_1_well_before_the_kill_timeout() {
    let mut scope = Scope::new();
    let pgwait = images().pgwait.clone();
    let c = scope.run("stop", &[&pgwait, "-h", "nowhere.invalid", "-t", "0"]);
    logs_say(&c, "not resolvable");
    assert!(running(&c), "{}", logs(&c));
    let started = Instant::now();
    docker_ok(&["stop", "-t", "10", &c]);
    let took = started.elapsed();
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &c]),
        "143",
        "{}",
        logs(&c)
    );
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    eprintln!("docker stop took {took:?}");
}

/// `--supervise` as the entrypoint: `docker stop` reaches the app through pgwait (PID 1), and the
/// app's own exit code is the container's, well before Docker's 10 s SIGKILL.
#[test]
fn docker_stop_reaches_a_supervised_app_and_its_exit_code_is_the_containers() {
    let mut scope = Scope::new();
    let net = scope.network();
    let db = scope.database(&net);
    wait_until_ready(&net, &db);
    let app = scope.run(
        "supervised",
        &[
            "--network",
            &net,
            "-e",
            &format!("PGHOST={db}"),
            "-e",
            "PGUSER=postgres",
            "-e",
            &format!("PGPASSWORD={PASSWORD}"),
            "-e",
            "APP_UNTIL_TERM=1",
            "-e",
            "APP_EXIT_CODE=7",
            "--entrypoint",
            "/usr/local/bin/pgwait",
            &images().app,
            "--supervise",
            "--",
            "/app",
        ],
    );
    let up = Instant::now() + Duration::from_secs(60);
    while !logs(&app).contains("connected to") {
        assert!(Instant::now() < up, "{}", logs(&app));
        std::thread::sleep(Duration::from_millis(100));
    }
    let started = Instant::now();
    docker_ok(&["stop", "-t", "10", &app]);
    let took = started.elapsed();
    let code = docker_ok(&["inspect", "-f", "{{.State.ExitCode}}", &app]);
    assert_eq!(code, "7", "{}", logs(&app));
    assert!(
        logs(&app).contains("demo app: SIGTERM, exiting"),
        "{}",
        logs(&app)
    );
    assert!(took < Duration::from_secs(5), "docker stop took {took:?}");
    eprintln!("docker stop of a supervised app took {took:?}");
}

#[test]
fn a_paused_database_is_waited_for_with_backoff_until_it_resumes() {
    let mut scope = Scope::new();
    let net = scope.network();
    let db = scope.database(&net);
    wait_until_ready(&net, &db);
    docker_ok(&["pause", &db]);
    let app = scope.app(
        &net,
        &db,
        &["PGWAIT_CONNECT_TIMEOUT=1s", "PGWAIT_TIMEOUT=90s"],
    );
    logs_say(&app, "timed out");
    assert!(running(&app), "{}", logs(&app));
    docker_ok(&["unpause", &db]);
    assert_eq!(
        exit_code(&app, Duration::from_secs(60)),
        0,
        "{}",
        logs(&app)
    );
}

#[test]
fn a_disconnected_database_is_waited_for_until_it_is_reconnected() {
    let mut scope = Scope::new();
    let net = scope.network();
    let db = scope.database(&net);
    wait_until_ready(&net, &db);
    docker_ok(&["network", "disconnect", &net, &db]);
    let app = scope.app(&net, &db, &["PGWAIT_TIMEOUT=90s"]);
    logs_say(&app, "waiting for");
    assert!(running(&app), "{}", logs(&app));
    docker_ok(&["network", "connect", &net, &db]);
    assert_eq!(
        exit_code(&app, Duration::from_secs(60)),
        0,
        "{}",
        logs(&app)
    );
}

#[test]
fn a_wrong_password_exits_3_at_once_with_one_clear_line() {
    let mut scope = Scope::new();
    let net = scope.network();
    let db = scope.database(&net);
    wait_until_ready(&net, &db);
    let started = Instant::now();
    let app = scope.app(
        &net,
        &db,
        &["PGPASSWORD=definitely-wrong", "PGWAIT_TIMEOUT=60s"],
    );
    assert_eq!(
        exit_code(&app, Duration::from_secs(30)),
        3,
        "{}",
        logs(&app)
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let log = logs(&app);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("28P01") && lines[0].contains("hint:"),
        "{log}"
    );
    assert!(!log.contains("definitely-wrong"), "{log}");
}
