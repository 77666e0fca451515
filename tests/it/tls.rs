//! TLS against real servers with certificates generated at test time: libpq's sslmode outcome
//! table, verification failures, client certificates, channel binding, password files.

use std::process::Output;

use crate::support::certs::{self, Pki};
use crate::support::*;

const TLS_HBA: &str = "\
local all all trust
hostssl all cert_user 127.0.0.1/32 cert
hostnossl all cert_user 127.0.0.1/32 reject
host all trust_user 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
";

/// A running server with `ssl = on`, the test PKI, and the given pg_hba.conf.
pub fn tls_cluster(hba: &str) -> (Cluster, Pki) {
    let (mut cluster, pki) = stopped_tls_cluster(hba);
    cluster.start_ready();
    (cluster, pki)
}

/// A server with `ssl = on`, the test PKI and the given pg_hba.conf, not started yet.
pub fn stopped_tls_cluster(hba: &str) -> (Cluster, Pki) {
    let cluster = Cluster::new("");
    let pki = certs::make(&cluster.root, "cert_user");
    cluster.write_data_file("server.crt", &pki.server_cert, 0o644);
    cluster.write_data_file("server.key", &pki.server_key, 0o600);
    let ca = cluster.write_data_file(
        "root.crt",
        &std::fs::read_to_string(&pki.ca).unwrap(),
        0o644,
    );
    cluster.write_data_file("pg_hba.conf", hba, 0o600);
    let conf = format!(
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = '{}'\n",
        ca.display()
    );
    let mut pgconf = std::fs::read_to_string(cluster.data.join("postgresql.conf")).unwrap();
    pgconf.push_str(&conf);
    cluster.write_data_file("postgresql.conf", &pgconf, 0o600);
    (cluster, pki)
}

fn once(cluster: &Cluster, conninfo: &str, env: &[(&str, &str)]) -> Output {
    let full = format!(
        "host=127.0.0.1 port={} dbname=postgres {conninfo}",
        cluster.port
    );
    pgwait()
        .args(["--once", "-d", &full])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether the server logged the connection of `app` as encrypted.
fn used_tls(cluster: &Cluster, app: &str) -> bool {
    let authorized = |log: &str| {
        log.lines()
            .find(|l| {
                l.contains("connection authorized")
                    && l.contains(&format!("application_name={app}"))
            })
            .map(|l| l.contains("SSL enabled"))
    };
    // The server may write the line a moment after pgwait has exited.
    let seen = eventually(std::time::Duration::from_secs(10), || {
        authorized(&cluster.log()).is_some()
    });
    assert!(
        seen,
        "no connection from {app} in the log:\n{}",
        cluster.log()
    );
    authorized(&cluster.log()).unwrap()
}

#[test]
fn sslmodes_against_a_tls_server_match_libpq() {
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let ca = pki.ca.display().to_string();
    let cases = [
        ("disable", "", false),
        ("allow", "", false),
        ("prefer", "", true),
        ("require", "", true),
        ("verify-ca", ca.as_str(), true),
        ("verify-full", ca.as_str(), true),
    ];
    for (mode, rootcert, tls) in cases {
        let app = format!("case-{mode}");
        let root = if rootcert.is_empty() {
            String::new()
        } else {
            format!("sslrootcert={rootcert}")
        };
        let out = once(
            &cluster,
            &format!("user=trust_user sslmode={mode} application_name={app} {root}"),
            &[],
        );
        assert!(out.status.success(), "{mode}: {}", stderr_of(&out));
        assert_eq!(used_tls(&cluster, &app), tls, "{mode}");
    }
    // verify-full checks the name: localhost is in the certificate too.
    let full = format!("host=localhost port={} dbname=postgres user=trust_user sslmode=verify-full sslrootcert={ca}", cluster.port);
    let out = pgwait().args(["--once", "-d", &full]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn sslmodes_against_a_plain_server_match_libpq() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let pki = certs::make(&cluster.root, "cert_user");
    let ca = pki.ca.display();
    for mode in ["disable", "allow", "prefer"] {
        let out = once(&cluster, &format!("user=trust_user sslmode={mode}"), &[]);
        assert!(out.status.success(), "{mode}: {}", stderr_of(&out));
    }
    for mode in ["require", "verify-ca", "verify-full"] {
        let out = once(
            &cluster,
            &format!("user=trust_user sslmode={mode} sslrootcert={ca}"),
            &[],
        );
        assert_eq!(out.status.code(), Some(3), "{mode}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("does not support TLS"),
            "{mode}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn allow_retries_with_tls_when_the_server_only_accepts_tls() {
    let (cluster, _) = tls_cluster("local all all trust\nhostssl all all 127.0.0.1/32 trust\n");
    let out = once(
        &cluster,
        "user=trust_user sslmode=allow application_name=allowed",
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(used_tls(&cluster, "allowed"));
    let out = once(&cluster, "user=trust_user sslmode=disable", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("28000"), "{}", stderr_of(&out));
}

#[test]
fn certificate_checks_fail_permanently_and_name_the_cause() {
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let (ca, other) = (
        pki.ca.display().to_string(),
        pki.other_ca.display().to_string(),
    );
    let wrong_name =
        format!("hostaddr=127.0.0.1 host=wrong.example sslmode=verify-full sslrootcert={ca}");
    let cases = [
        (wrong_name.clone(), "not valid for name"),
        (
            format!("sslmode=verify-ca sslrootcert={other}"),
            "UnknownIssuer",
        ),
        (
            format!("sslmode=verify-full sslrootcert={other}"),
            "UnknownIssuer",
        ),
        // libpq: a root certificate present makes require check the chain.
        (
            format!("sslmode=require sslrootcert={other}"),
            "UnknownIssuer",
        ),
        (
            "sslmode=verify-full sslrootcert=system".to_string(),
            "UnknownIssuer",
        ),
    ];
    for (conninfo, cause) in &cases {
        let full = format!(
            "port={} dbname=postgres user=trust_user {conninfo}",
            cluster.port
        );
        let full = if full.contains("host=") {
            full
        } else {
            format!("host=127.0.0.1 {full}")
        };
        let started = std::time::Instant::now();
        let out = pgwait().args(["-t", "30s", "-d", &full]).output().unwrap();
        let log = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{conninfo}: {log}");
        assert!(
            log.contains(cause) && log.contains("TLS failed"),
            "{conninfo}: {log}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{conninfo} was retried"
        );
    }
    // verify-ca does not check the name, only the chain.
    let out = once(&cluster, &format!("user=trust_user hostaddr=127.0.0.1 host=wrong.example sslmode=verify-ca sslrootcert={ca}"), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // prefer falls back to plain text when the handshake fails, as libpq does.
    let out = once(
        &cluster,
        &format!("user=trust_user sslmode=prefer sslrootcert={other}"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn unusable_tls_files_exit_3_naming_the_file() {
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let garbage = cluster.root.join("garbage.crt");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let open_key = cluster.root.join("open.key");
    std::fs::copy(&pki.client_key, &open_key).unwrap();
    std::fs::set_permissions(
        &open_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let (cert, key) = (pki.client_cert.display(), pki.client_key.display());
    let cases = [
        (
            "sslmode=verify-full sslrootcert=/nonexistent/root.crt".to_string(),
            "/nonexistent/root.crt",
        ),
        (
            format!("sslmode=verify-ca sslrootcert={}", garbage.display()),
            "garbage.crt",
        ),
        (
            format!("sslmode=require sslkey={key}"),
            "sslcert and sslkey go together",
        ),
        (
            format!(
                "sslmode=require sslcert={cert} sslkey={}",
                open_key.display()
            ),
            "group or world access",
        ),
        (
            format!("sslmode=require sslcert={} sslkey={key}", garbage.display()),
            "garbage.crt",
        ),
    ];
    for (conninfo, named) in &cases {
        let out = once(&cluster, &format!("user=trust_user {conninfo}"), &[]);
        let log = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{conninfo}: {log}");
        assert!(log.contains(named), "{conninfo}: {log}");
        assert_eq!(log.lines().count(), 1, "{conninfo}: {log}");
    }
}

#[test]
fn client_certificates_authenticate() {
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let (ca, cert, key) = (
        pki.ca.display(),
        pki.client_cert.display(),
        pki.client_key.display(),
    );
    let with_cert =
        format!("user=cert_user sslmode=verify-full sslrootcert={ca} sslcert={cert} sslkey={key}");
    let out = once(&cluster, &with_cert, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = once(
        &cluster,
        &format!("user=cert_user sslmode=require sslcertmode=disable sslcert={cert} sslkey={key}"),
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("28000"), "{}", stderr_of(&out));
}

#[test]
fn sslrootcert_system_trusts_the_systems_bundle_as_libpq_does() {
    // A CA the image added to its bundle (SSL_CERT_FILE here) is a system root, for libpq's
    // sslrootcert=system and for the drivers whose verify modes use the system's roots.
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let ca = pki.ca.display().to_string();
    let out = once(
        &cluster,
        "user=trust_user sslmode=verify-full sslrootcert=system",
        &[("SSL_CERT_FILE", ca.as_str())],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let other = pki.other_ca.display().to_string();
    let out = once(
        &cluster,
        "user=trust_user sslmode=verify-full sslrootcert=system",
        &[("SSL_CERT_FILE", other.as_str())],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
}

#[test]
fn sslcertmode_require_needs_the_server_to_ask_and_get_a_certificate() {
    // ssl_ca_file is set, so the server asks every client for a certificate.
    let (cluster, pki) = tls_cluster(TLS_HBA);
    let (cert, key) = (pki.client_cert.display(), pki.client_key.display());
    let out = once(
        &cluster,
        &format!("user=trust_user sslmode=require sslcertmode=require sslcert={cert} sslkey={key}"),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let home = scratch_dir("no-client-cert");
    let out = once(
        &cluster,
        "user=trust_user sslmode=require sslcertmode=require",
        &[("HOME", home.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("without a valid SSL certificate"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn prefer_retries_without_tls_when_the_login_is_refused_over_tls() {
    // A role allowed only without TLS: libpq's prefer tries TLS, is refused, and tries plain.
    let hba = "local all all trust\nhostssl all trust_user 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 trust\n";
    let (cluster, _) = tls_cluster(hba);
    let out = once(
        &cluster,
        "user=trust_user sslmode=prefer application_name=preferred",
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!used_tls(&cluster, "preferred"));
    let out = once(&cluster, "user=trust_user sslmode=require", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("28000"), "{}", stderr_of(&out));
}

#[test]
fn sslkeylogfile_records_each_session_secret() {
    let (cluster, _) = tls_cluster(TLS_HBA);
    let log = scratch_dir("keylog").join("keys.log");
    let out = once(
        &cluster,
        &format!(
            "user=trust_user sslmode=require sslkeylogfile={}",
            log.display()
        ),
        &[],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    let labels: Vec<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(
        labels.contains(&"CLIENT_HANDSHAKE_TRAFFIC_SECRET") || labels.contains(&"CLIENT_RANDOM"),
        "{text}"
    );
    // Each line: label, 32-byte client random and the secret, in hex.
    assert!(
        text.lines()
            .all(|l| l.split(' ').nth(1).is_some_and(|r| r.len() == 64)),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn scram_over_tls_with_and_without_required_channel_binding() {
    let (cluster, _) = tls_cluster(TLS_HBA);
    let pw = [("PGPASSWORD", SCRAM_PASSWORD)];
    let out = once(
        &cluster,
        "user=scram_user sslmode=require channel_binding=require",
        &pw,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = once(
        &cluster,
        "user=scram_user sslmode=disable channel_binding=require",
        &pw,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    // As libpq: said to be channel binding, not a wrong password.
    let log = stderr_of(&out);
    assert!(log.contains("channel binding is required (channel_binding=require), but the server asked for SASL (SCRAM-SHA-256), not SCRAM-SHA-256-PLUS"), "{log}");
    assert!(!log.contains("check the user name and password"), "{log}");
    let out = once(&cluster, "user=scram_user sslmode=prefer", &pw);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn passwords_come_from_a_pgpass_file_with_libpq_rules() {
    let mut cluster = Cluster::new("");
    cluster.start_ready();
    let passfile = cluster.root.join("pgpass");
    let line = format!(
        "# test\n127.0.0.1:{}:postgres:{SCRAM_USER}:{SCRAM_PASSWORD}\n",
        cluster.port
    );
    std::fs::write(&passfile, line).unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let path = passfile.to_str().unwrap();
    let out = once(
        &cluster,
        &format!("user={SCRAM_USER}"),
        &[("PGPASSFILE", path)],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = once(&cluster, &format!("user={SCRAM_USER} passfile={path}"), &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = once(
        &cluster,
        &format!("user={SCRAM_USER}"),
        &[("PGPASSFILE", path)],
    );
    let log = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{log}");
    assert!(
        log.contains("warning: password file") && log.contains("group or world access"),
        "{log}"
    );
    assert!(!log.contains(SCRAM_PASSWORD), "{log}");
}
