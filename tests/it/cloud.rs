//! Passwords pgwait makes for each attempt: `--password-command`, and `--iam aws|azure|gcp`
//! tokens from local stand-ins of the cloud credential endpoints (tests/cloud/standin.py, which
//! checks what the real services require), logged in with at a real server over TLS. AWS tokens
//! are SigV4 signatures no local server can check: a recording peer takes them over TLS and
//! botocore, run on the same credentials and time, must produce the same bytes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::certs::Pki;
use crate::support::*;
use crate::tls::stopped_tls_cluster;

/// TLS required for the token user, as the clouds' IAM logins are.
const IAM_HBA: &str = "\
local all all trust
hostnossl all scram_user 127.0.0.1/32 reject
hostssl all scram_user 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and returns it with the port from its `READY <port>` line.
fn start_ready(mut command: Command) -> (Killed, u16) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("READY ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("not ready: {line:?}"));
    (Killed(child), port)
}

/// tests/cloud/standin.py with `scenario`: its base URL and request log.
struct StandIn {
    _child: Killed,
    port: u16,
    log: PathBuf,
}

impl StandIn {
    fn start(dir: &Path, scenario: serde_json::Value) -> StandIn {
        Self::start_with(dir, scenario, None)
    }

    /// Over HTTPS with the test PKI's server certificate (names localhost, 127.0.0.1).
    fn start_tls(dir: &Path, scenario: serde_json::Value, pki: &Pki) -> StandIn {
        let (cert, key) = (dir.join("standin.crt"), dir.join("standin.key"));
        std::fs::write(&cert, &pki.server_cert).unwrap();
        std::fs::write(&key, &pki.server_key).unwrap();
        Self::start_with(dir, scenario, Some((&cert, &key)))
    }

    fn start_with(dir: &Path, scenario: serde_json::Value, tls: Option<(&Path, &Path)>) -> StandIn {
        let path = dir.join("scenario.json");
        std::fs::write(&path, scenario.to_string()).unwrap();
        let log = dir.join("requests.jsonl");
        let mut command = Command::new("python3");
        command
            .arg(repo().join("tests/cloud/standin.py"))
            .args(["--port", "0", "--scenario"])
            .arg(&path)
            .arg("--log")
            .arg(&log);
        if let Some((cert, key)) = tls {
            command.arg("--tls").arg(cert).arg(key);
        }
        let (child, port) = start_ready(command);
        StandIn {
            _child: child,
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests it served, as logged.
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn served(&self, endpoint: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["endpoint"] == endpoint)
            .collect()
    }
}

fn iam_cluster() -> (Cluster, Pki) {
    stopped_tls_cluster(IAM_HBA)
}

/// pgwait for the token user at `cluster` (TLS verified against the test CA).
fn gate(cluster: &Cluster, pki: &Pki, extra: &[&str]) -> Command {
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=postgres user={SCRAM_USER} sslrootcert={}",
        cluster.port,
        pki.ca.display()
    );
    let mut cmd = pgwait();
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", "/nonexistent")
        .args(["-d", &conninfo])
        .args(extra);
    cmd
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The secrets must appear nowhere pgwait writes.
fn assert_secret_free(log: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!log.contains(secret), "{secret:?} leaked:\n{log}");
    }
}

// ----- --password-command ---------------------------------------------------------------------

#[test]
fn a_password_command_logs_in_and_its_failures_are_retried_redacted() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let dir = scratch_dir("pwcmd");
    let ready = dir.join("unsealed");
    let script = dir.join("vault.sh");
    std::fs::write(
        &script,
        format!(
            "test -f {} && {{ echo {SCRAM_PASSWORD}; exit 0; }}\necho leaked-stdout\necho 'vault sealed token=s.AbCd1234' >&2\nexit 2\n",
            ready.display()
        ),
    )
    .unwrap();
    let command = format!("sh \"{}\"", script.display());
    let mut cmd = pgwait();
    cmd.args(cluster.tcp_args(SCRAM_USER)).args([
        "-t",
        "30s",
        "-v",
        "--password-command",
        &command,
    ]);
    let running = Running::spawn(&mut cmd);
    running.expect(
        "--password-command: exit status 2: vault sealed token=[redacted]",
        Duration::from_secs(10),
    );
    std::fs::write(&ready, "").unwrap();
    let (status, log) = running.finish(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("no password from the token source yet"),
        "{log}"
    );
    assert_secret_free(&log, &[SCRAM_PASSWORD, "leaked-stdout", "s.AbCd1234"]);
}

#[test]
fn a_password_command_that_cannot_run_or_hangs_says_so() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let out = pgwait()
        .args(cluster.tcp_args(SCRAM_USER))
        .args([
            "-t",
            "10s",
            "--password-command",
            "/nonexistent/vault read db",
        ])
        .output()
        .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("--password-command: cannot start it: no such program"),
        "{log}"
    );

    let started = std::time::Instant::now();
    let out = pgwait()
        .args(cluster.tcp_args(SCRAM_USER))
        .args([
            "-t",
            "3s",
            "--connect-timeout",
            "1s",
            "--password-command",
            "sleep 60",
        ])
        .output()
        .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("--password-command: no answer in time"),
        "{log}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_token_source_with_another_password_is_a_usage_error_naming_both() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let table: &[Case] = &[
        (
            &["--password-command", "cat pw"],
            &[("PGPASSWORD", "hunter2")],
            "--password-command and PGPASSWORD",
        ),
        (
            &["--iam", "azure", "-d", "postgresql://u:hunter2@db/app"],
            &[],
            "--iam and -d/--dbname",
        ),
        (
            &["--iam", "gcp", "--password-command", "cat pw"],
            &[],
            "--iam and --password-command",
        ),
        (
            &[
                "--iam",
                "aws",
                "--aws-region",
                "us-east-1",
                "--password-file",
                "/etc/hostname",
            ],
            &[],
            "--iam and --password-file",
        ),
        (
            &["--iam", "aws"],
            &[],
            "--iam aws needs the database's region",
        ),
        (
            &["--aws-region", "us-east-1"],
            &[],
            "--aws-region applies only with --iam aws",
        ),
        (&["--iam", "oracle"], &[], "aws, azure or gcp"),
        (
            &["--password-command", "vault 'read"],
            &[],
            "a quote is not closed",
        ),
    ];
    for (args, env, want) in table {
        let out = pgwait()
            .env_remove("PGPASSWORD")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .args(*args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let log = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {log}");
        assert!(log.contains(want), "{args:?}: want {want:?} in {log}");
        assert_secret_free(&log, &["hunter2"]);
    }
}

// ----- Azure -----------------------------------------------------------------------------------

fn azure_scenario(steps: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "azure_access_token": SCRAM_PASSWORD, "azure_imds": steps })
}

#[test]
fn azure_imds_not_ready_after_boot_is_waited_for_then_its_token_logs_in() {
    let (mut cluster, pki) = iam_cluster();
    cluster.start_ready();
    let dir = scratch_dir("azure-imds");
    let stand_in = StandIn::start(
        &dir,
        azure_scenario(
            serde_json::json!([{"status": 410}, {"status": 410}, {"status": 200, "expires_in_s": 3600}]),
        ),
    );
    let out = gate(
        &cluster,
        &pki,
        &["--iam", "azure", "-t", "30s", "--log-format", "json", "-v"],
    )
    .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", stand_in.url(""))
    .output()
    .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("\"class\":\"credentials\""), "{log}");
    assert!(log.contains("not ready yet (HTTP 410)"), "{log}");
    assert!(log.contains("sslmode=prefer raised to require"), "{log}");
    assert_secret_free(&log, &[SCRAM_PASSWORD]);
    let served = stand_in.served("azure_imds");
    assert_eq!(served.len(), 3, "{served:?}");
    for request in &served {
        assert_eq!(request["headers"]["metadata"], "true");
        assert_eq!(
            request["query"]["resource"],
            "https://ossrdbms-aad.database.windows.net"
        );
        assert_eq!(request["status"], request["status"]); // logged
    }
}

#[test]
fn azure_app_service_and_workload_identity_tokens_log_in() {
    let (mut cluster, pki) = iam_cluster();
    cluster.start_ready();
    let dir = scratch_dir("azure-ids");
    let federated = dir.join("azure-identity-token");
    std::fs::write(&federated, "federated-sa-token\n").unwrap();
    let scenario = serde_json::json!({
        "azure_access_token": SCRAM_PASSWORD,
        "azure_identity_header": "app-service-header",
        "azure_tenant": "tenant-1",
        "azure_client_id": "client-1",
        "azure_federated_token": "federated-sa-token",
    });
    let stand_in = StandIn::start(&dir, scenario.clone());
    // Entra's token endpoint is https only (azure-identity refuses another authority): a
    // stand-in with a certificate from a private CA, trusted through SSL_CERT_FILE.
    let tls_dir = dir.join("entra");
    std::fs::create_dir(&tls_dir).unwrap();
    let entra = StandIn::start_tls(&tls_dir, scenario, &pki);
    let app_service = gate(&cluster, &pki, &["--iam", "azure", "--once"])
        .env("IDENTITY_ENDPOINT", stand_in.url("/msi/token"))
        .env("IDENTITY_HEADER", "app-service-header")
        .output()
        .unwrap();
    assert_eq!(
        app_service.status.code(),
        Some(0),
        "{}",
        stderr_of(&app_service)
    );
    assert_eq!(stand_in.served("azure_app_service").len(), 1);

    // Workload identity comes first when both are configured (AKS also has IMDS: the node's).
    let workload = gate(&cluster, &pki, &["--iam", "azure", "--once"])
        .env("AZURE_FEDERATED_TOKEN_FILE", &federated)
        .env("AZURE_CLIENT_ID", "client-1")
        .env("AZURE_TENANT_ID", "tenant-1")
        .env(
            "AZURE_AUTHORITY_HOST",
            format!("https://localhost:{}/", entra.port),
        )
        .env("SSL_CERT_FILE", &pki.ca)
        .env("IDENTITY_ENDPOINT", stand_in.url("/msi/token"))
        .env("IDENTITY_HEADER", "app-service-header")
        .output()
        .unwrap();
    let log = stderr_of(&workload);
    assert_eq!(workload.status.code(), Some(0), "{log}");
    let asked = entra.served("azure_entra");
    assert_eq!(asked.len(), 1, "{:?}", entra.requests());
    assert_eq!(asked[0]["status"], 200, "{:?}", asked[0]);
    assert_eq!(
        asked[0]["form"]["scope"],
        "https://ossrdbms-aad.database.windows.net/.default"
    );

    // Without the private CA the endpoint's certificate is refused: a permanent failure.
    let untrusted = gate(&cluster, &pki, &["--iam", "azure", "--once"])
        .env("AZURE_FEDERATED_TOKEN_FILE", &federated)
        .env("AZURE_CLIENT_ID", "client-1")
        .env("AZURE_TENANT_ID", "tenant-1")
        .env(
            "AZURE_AUTHORITY_HOST",
            format!("https://localhost:{}/", entra.port),
        )
        .output()
        .unwrap();
    let log = stderr_of(&untrusted);
    assert_eq!(untrusted.status.code(), Some(3), "{log}");
    assert!(
        log.contains("Azure workload identity (Entra token endpoint): TLS failed"),
        "{log}"
    );
    assert_eq!(
        entra.served("azure_entra").len(),
        1,
        "nothing sent to an untrusted endpoint"
    );
    assert_eq!(
        stand_in.served("azure_app_service").len(),
        1,
        "not asked again"
    );
}

#[test]
fn a_refusing_source_stops_with_its_name_and_no_token_anywhere() {
    let (mut cluster, pki) = iam_cluster();
    cluster.start_ready();
    let dir = scratch_dir("azure-400");
    let stand_in = StandIn::start(
        &dir,
        azure_scenario(
            serde_json::json!([{"status": 400, "json": {"error": "invalid_request", "error_description": "Identity not found SECRETFRAGMENT"}}]),
        ),
    );
    let out = gate(
        &cluster,
        &pki,
        &["--iam", "azure", "-t", "30s", "--log-format", "json"],
    )
    .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", stand_in.url(""))
    .output()
    .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("\"class\":\"credentials_refused\""), "{log}");
    assert!(
        log.contains("Azure managed identity (IMDS): answered HTTP 400"),
        "{log}"
    );
    assert!(log.contains("assign a managed identity"), "{log}");
    assert_secret_free(&log, &["SECRETFRAGMENT", SCRAM_PASSWORD]);
}

#[test]
fn an_expiring_token_is_minted_again_and_a_rejected_cached_one_at_once() {
    let (mut cluster, pki) = iam_cluster();
    let dir = scratch_dir("azure-expiry");
    // First a token the server rejects, cached for an hour; then good ones that live 61 s,
    // inside the 60 s margin: each attempt must mint again.
    let stand_in = StandIn::start(
        &dir,
        azure_scenario(serde_json::json!([
            {"status": 200, "expires_in_s": 3600, "json": {"access_token": "revoked-token"}},
            {"status": 200, "expires_in_s": 61},
        ])),
    );
    let mut cmd = gate(&cluster, &pki, &["--iam", "azure", "-t", "60s", "-v"]);
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", stand_in.url(""));
    let running = Running::spawn(&mut cmd);
    running.expect("connection refused", Duration::from_secs(10));
    // Only the first token so far, reused by every refused attempt.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stand_in.served("azure_imds").len(), 1);
    cluster.start_ready();
    let (status, log) = running.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{log}");
    // The cached token was rejected (28P01) and replaced within the same attempt.
    assert!(!log.contains("authentication rejected"), "{log}");
    assert_eq!(
        stand_in.served("azure_imds").len(),
        2,
        "{:?}",
        stand_in.requests()
    );
    assert_secret_free(&log, &["revoked-token", SCRAM_PASSWORD]);
    assert!(
        cluster.log().contains("password authentication failed"),
        "the revoked token was tried"
    );

    // A token inside the margin is not reused: every attempt mints.
    let out = gate(&cluster, &pki, &["--iam", "azure", "--once"])
        .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", stand_in.url(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stand_in.served("azure_imds").len(), 3);
}

// ----- Google ----------------------------------------------------------------------------------

#[test]
fn gcp_metadata_and_key_file_tokens_log_in() {
    let (mut cluster, pki) = iam_cluster();
    cluster.start_ready();
    let dir = scratch_dir("gcp");
    let key = dir.join("sa.key");
    let public = dir.join("sa.pub");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    let stand_in = StandIn::start(
        &dir,
        serde_json::json!({
            "gcp_access_token": SCRAM_PASSWORD,
            "gcp_public_key": public,
            "gcp_client_email": "db-client@proj.iam.gserviceaccount.com",
        }),
    );
    let metadata = gate(&cluster, &pki, &["--iam", "gcp", "--once"])
        .env("GCE_METADATA_HOST", format!("127.0.0.1:{}", stand_in.port))
        .output()
        .unwrap();
    assert_eq!(metadata.status.code(), Some(0), "{}", stderr_of(&metadata));
    let served = stand_in.served("gcp_metadata");
    assert_eq!(served.len(), 1);
    assert_eq!(
        served[0]["scopes"],
        serde_json::json!(["https://www.googleapis.com/auth/sqlservice.login"])
    );

    let key_file = dir.join("key.json");
    let key_json = serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "kid-1",
        "private_key": std::fs::read_to_string(&key).unwrap(),
        "client_email": "db-client@proj.iam.gserviceaccount.com",
        "token_uri": stand_in.url("/token"),
    });
    std::fs::write(&key_file, key_json.to_string()).unwrap();
    let keyed = gate(
        &cluster,
        &pki,
        &["--iam", "gcp", "--once", "--log-format", "json", "-v"],
    )
    .env("GOOGLE_APPLICATION_CREDENTIALS", &key_file)
    .env("GCE_METADATA_HOST", format!("127.0.0.1:{}", stand_in.port))
    .output()
    .unwrap();
    let log = stderr_of(&keyed);
    assert_eq!(keyed.status.code(), Some(0), "{log}");
    let oauth = stand_in.served("gcp_oauth");
    assert_eq!(oauth.len(), 1, "{:?}", stand_in.requests());
    assert_eq!(
        oauth[0]["status"], 200,
        "signature verified: {:?}",
        oauth[0]
    );
    assert_eq!(
        stand_in.served("gcp_metadata").len(),
        1,
        "the key file comes first"
    );
    assert_secret_free(&log, &[SCRAM_PASSWORD, "PRIVATE KEY"]);
}

// ----- AWS -------------------------------------------------------------------------------------

const AWS_KEY_ID: &str = "ASIASTANDINEXAMPLE01";
const AWS_SECRET: &str = "standin/secret/key/EXAMPLEKEY0123456789ab";
const AWS_SESSION: &str = "standin-session-token";

/// The Python that has botocore (and moto): `.ci/run` installs it under target/.
fn cloud_python() -> PathBuf {
    repo().join("target/cloud-venv/bin/python3")
}

/// tests/cloud/token_peer.py: a peer that takes the password over TLS and records it.
struct TokenPeer {
    _child: Killed,
    port: u16,
    dir: PathBuf,
}

impl TokenPeer {
    fn start(tag: &str) -> TokenPeer {
        let dir = scratch_dir(tag);
        let mut command = Command::new("python3");
        command
            .arg(repo().join("tests/cloud/token_peer.py"))
            .arg(&dir);
        let (child, port) = start_ready(command);
        TokenPeer {
            _child: child,
            port,
            dir,
        }
    }

    /// The passwords it was sent, each over TLS (else it panics).
    fn passwords(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("records.json")).unwrap_or("[]".into());
        let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        records
            .iter()
            .filter_map(|r| {
                let password = r["password"].as_str()?;
                assert_eq!(r["tls"], true, "a token in clear: {r}");
                Some(password.to_string())
            })
            .collect()
    }

    /// pgwait --iam aws for user `iam_user` at this peer (named `localhost`).
    fn gate(&self, extra: &[&str]) -> Command {
        let mut cmd = pgwait();
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap())
            .env("HOME", "/nonexistent")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args([
                "-h",
                "localhost",
                "-p",
                &self.port.to_string(),
                "-U",
                "iam_user",
                "-d",
                "app",
            ])
            .args(["--iam", "aws", "--once"])
            .args(extra);
        cmd
    }
}

/// The signing time of an RDS token, from its X-Amz-Date (`20261203T144501Z`).
fn signed_at(token: &str) -> u64 {
    let date = token
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-Date="))
        .expect("X-Amz-Date");
    let out = Command::new("date")
        .args(["-u", "-d"])
        .arg(format!(
            "{}-{}-{} {}:{}:{}",
            &date[0..4],
            &date[4..6],
            &date[6..8],
            &date[9..11],
            &date[11..13],
            &date[13..15]
        ))
        .arg("+%s")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// botocore's token for the same host, port, user, region, credentials and time.
fn botocore_token(port: u16, creds: (&str, &str, Option<&str>), at: u64) -> String {
    let mut cmd = Command::new(cloud_python());
    cmd.arg(repo().join("tests/cloud/rds_token.py"))
        .args([
            "localhost",
            &port.to_string(),
            "iam_user",
            "eu-west-1",
            &at.to_string(),
        ])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1);
    if let Some(session) = creds.2 {
        cmd.env("AWS_SESSION_TOKEN", session);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "botocore: {}", stderr_of(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Each credential source's token, as it reached the server over TLS, equals botocore's for
/// the same credentials and time: the signature is right, not just well-formed.
#[test]
fn aws_tokens_from_every_credential_source_match_botocores() {
    let peer = TokenPeer::start("aws-peer");
    let dir = scratch_dir("aws-standin");
    let auth_file = dir.join("eks-pod-identity-token");
    std::fs::write(&auth_file, "pod-identity-jwt\n").unwrap();
    let stand_in = StandIn::start(
        &dir,
        serde_json::json!({
            "container_authorization": "pod-identity-jwt",
            "container_path": "/v1/credentials",
            "sts_role_arn": "arn:aws:iam::123456789012:role/app-db",
            "sts_web_identity_token": "irsa-jwt",
        }),
    );
    let web_token = dir.join("irsa-token");
    std::fs::write(&web_token, "irsa-jwt").unwrap();
    let temporary = (AWS_KEY_ID, AWS_SECRET, Some(AWS_SESSION));
    type Creds<'a> = (&'a str, &'a str, Option<&'a str>);
    type Source<'a> = (&'a str, Vec<(&'a str, String)>, Creds<'a>);
    let sources: Vec<Source> = vec![
        (
            "environment",
            vec![
                ("AWS_ACCESS_KEY_ID", "AKIAENVEXAMPLE000001".into()),
                (
                    "AWS_SECRET_ACCESS_KEY",
                    "env/secret+key/EXAMPLE000000000000000".into(),
                ),
            ],
            (
                "AKIAENVEXAMPLE000001",
                "env/secret+key/EXAMPLE000000000000000",
                None,
            ),
        ),
        (
            "web identity",
            vec![
                (
                    "AWS_WEB_IDENTITY_TOKEN_FILE",
                    web_token.display().to_string(),
                ),
                (
                    "AWS_ROLE_ARN",
                    "arn:aws:iam::123456789012:role/app-db".into(),
                ),
                ("AWS_ENDPOINT_URL_STS", stand_in.url("/")),
            ],
            temporary,
        ),
        (
            "container",
            vec![
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    stand_in.url("/v1/credentials"),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                    auth_file.display().to_string(),
                ),
                (
                    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                    "loses-to-the-file".into(),
                ),
            ],
            temporary,
        ),
        (
            "instance metadata",
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false".into()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", stand_in.url("")),
            ],
            temporary,
        ),
    ];
    for (i, (name, env, creds)) in sources.iter().enumerate() {
        let out = peer
            .gate(&["--log-format", "json", "-v"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        let log = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {log}");
        assert!(
            log.contains("sslmode=prefer raised to require"),
            "{name}: {log}"
        );
        let passwords = peer.passwords();
        assert_eq!(passwords.len(), i + 1, "{name}: one login each");
        let token = &passwords[i];
        assert!(
            token.starts_with(&format!(
                "localhost:{}/?Action=connect&DBUser=iam_user&",
                peer.port
            )),
            "{name}: {token}"
        );
        assert_eq!(
            *token,
            botocore_token(peer.port, *creds, signed_at(token)),
            "{name}"
        );
        assert_secret_free(
            &log,
            &[token, creds.1, AWS_SESSION, "pod-identity-jwt", "irsa-jwt"],
        );
    }
    let sts = stand_in.served("sts");
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0]["form"]["Action"], "AssumeRoleWithWebIdentity");
    let container = stand_in.served("container_creds");
    assert_eq!(container[0]["headers"]["authorization"], "pod-identity-jwt");
    let imds_token = stand_in.served("imds_token");
    assert_eq!(
        imds_token[0]["method"], "PUT",
        "IMDSv2: a session token first"
    );
    assert!(stand_in
        .served("imds_role_creds")
        .iter()
        .all(|r| r["status"] == 200));
}

#[test]
fn aws_without_credentials_or_with_a_skewed_clock_stops_and_says_why() {
    let peer = TokenPeer::start("aws-none");
    let out = peer.gate(&[]).output().unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("AWS credentials"), "{log}");
    assert!(
        log.contains("AWS_WEB_IDENTITY_TOKEN_FILE"),
        "the hint names the variables: {log}"
    );

    let dir = scratch_dir("aws-skew");
    let stand_in = StandIn::start(
        &dir,
        serde_json::json!({"sts": [{"status": 400, "json": {"Code": "RequestExpired", "Message": "Request has expired. SECRETFRAGMENT"}}]}),
    );
    let web_token = dir.join("irsa-token");
    std::fs::write(&web_token, "irsa-jwt").unwrap();
    let out = peer
        .gate(&["--log-format", "json"])
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &web_token)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app-db")
        .env("AWS_ENDPOINT_URL_STS", stand_in.url("/"))
        .output()
        .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(log.contains("\"class\":\"credentials_refused\""), "{log}");
    assert!(log.contains("clock skew"), "{log}");
    assert!(log.contains("fix its time (NTP)"), "{log}");
    assert_secret_free(&log, &["SECRETFRAGMENT", "irsa-jwt"]);
    assert!(peer.passwords().is_empty(), "nothing sent to the server");
}

/// moto's STS, a real emulator of AssumeRoleWithWebIdentity, hands out the credentials the
/// token is signed with (they are moto's, so only their key id is checked).
#[test]
fn aws_web_identity_against_motos_sts() {
    let moto = repo().join("target/cloud-venv/bin/moto_server");
    assert!(
        moto.exists(),
        "moto is installed by .ci/run into target/cloud-venv"
    );
    let port = free_port();
    let mut server = Command::new(&moto);
    server
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _moto = Killed(server.spawn().unwrap());
    assert!(
        eventually(Duration::from_secs(30), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "moto did not start"
    );
    let peer = TokenPeer::start("aws-moto");
    let dir = scratch_dir("aws-moto");
    let web_token = dir.join("irsa-token");
    std::fs::write(&web_token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    let out = peer
        .gate(&[])
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &web_token)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app-db")
        .env("AWS_ROLE_SESSION_NAME", "pgwait-test")
        .env("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let token = &peer.passwords()[0];
    assert!(
        token.contains("&X-Amz-Credential=ASIA"),
        "moto's temporary key: {token}"
    );
    assert!(token.contains("&X-Amz-Security-Token="), "{token}");
    assert!(
        token.contains("%2Feu-west-1%2Frds-db%2Faws4_request"),
        "{token}"
    );
}
