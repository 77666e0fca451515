//! `--diagnose`: the checklist a person walks through when an app cannot reach PostgreSQL (the
//! seed article's), run in one pass for a target: where each setting came from, name
//! resolution, every address, what else listens here when an address refuses, a service mesh
//! in the way, TLS and the certificate, the authentication the server asks for (or the
//! pg_hba.conf line that rejects it), the real login, the server's state and each condition.
//!
//! It words its findings (this is the checklist's vocabulary) and returns them as data; the
//! reporter writes them, with the login and conditions worded as a wait's lines are.

mod network;
mod server_text;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use network::{Reach, Tried};
use server_text::HbaRejection;
use session::{FirstReply, TlsFound};

use crate::classify::{Class, Failure};
use crate::condition::Condition;
use crate::conninfo::{ChannelBinding, ConnParams, Endpoint, Origin, SessionAttrs, SslMode};
use crate::credentials::Credentials;
use crate::policy::{Decision, Policy, RetryOn};
use crate::probe::{AttemptError, PgProbe, Plan, Probe, Ready};
use crate::tls::{Tls, TlsError};
use crate::token::{self, Minter};

/// What `--diagnose` needs to know about where it runs (`config` finds out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// In a container (`/.dockerenv`, `/run/.containerenv`, or Kubernetes): `localhost` is
    /// the container itself.
    pub in_container: bool,
    /// `KUBERNETES_SERVICE_HOST` is set: a service mesh's sidecar may be in the way.
    pub in_kubernetes: bool,
}

/// Where the shown settings came from (`None`: libpq's default), and the password's origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    pub of: Vec<(&'static str, Option<Origin>)>,
    pub password: Option<Origin>,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Skip,
    Warn,
    Fail,
}

impl Status {
    /// As JSON and the text report name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Skip => "skip",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `settings`, `resolve`, `connect`, `listeners`, `mesh`, `tls`, `auth`, `server`.
    pub check: &'static str,
    pub status: Status,
    /// What it saw (server text inside is data: the reporter escapes it).
    pub finding: String,
    pub hint: Option<String>,
}

impl Check {
    fn new(check: &'static str, status: Status, finding: impl Into<String>) -> Self {
        Self {
            check,
            status,
            finding: finding.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The report, in order: the checklist's own checks, the real login and each condition as the
/// probe found them (the reporter words those as a wait would).
#[derive(Debug)]
pub enum Item {
    Check(Check),
    Login(Result<Ready, AttemptError>),
    Condition(usize, Result<(), AttemptError>),
}

/// The readiness verdict of one pass, as `--once` would exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    NotReady(Class),
    Rejected(Class),
}

/// One target's diagnosis.
#[derive(Debug)]
pub struct Diagnosis {
    pub items: Vec<Item>,
    pub verdict: Verdict,
}

/// Everything one target's pass reads.
pub struct Input<'a> {
    pub conn: &'a ConnParams,
    pub origins: &'a Origins,
    /// The TLS setup, or why it cannot be built (then no login is tried).
    pub tls: Result<Option<&'a Tls>, &'a TlsError>,
    pub settings: Settings,
    /// Each address's limit (`--connect-timeout`).
    pub limit: Duration,
    pub conditions: &'a [Condition],
    pub token: Option<&'a token::Settings>,
    pub retry_on: RetryOn,
}

/// Runs the checklist for one target.
pub async fn run(input: Input<'_>) -> Diagnosis {
    let mut items = Vec::new();
    let mut check = |c: Check| items.push(Item::Check(c));
    let (credentials, _) = Credentials::new(input.conn);
    check(settings_check(&input, &credentials));
    let mut tried: Vec<(Endpoint, Tried)> = Vec::new();
    let mut sockets: Vec<(Endpoint, PathBuf, Reach)> = Vec::new();
    for endpoint in &input.conn.endpoints {
        match endpoint {
            Endpoint::Socket { dir, port } => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                let (reach, took) = network::reach_socket(&path, input.limit).await;
                check(socket_check(&path, reach, took));
                sockets.push((endpoint.clone(), path, reach));
            }
            Endpoint::Tcp {
                host,
                hostaddr,
                port,
            } => {
                let addrs = match hostaddr {
                    Some(ip) => {
                        check(Check::new(
                            "resolve",
                            Status::Skip,
                            format!("{host}: hostaddr={ip} given, no lookup"),
                        ));
                        vec![SocketAddr::new(*ip, *port)]
                    }
                    None => {
                        let (found, took) = network::resolve(host, *port, input.limit).await;
                        check(resolve_check(host, &found, took));
                        network::with_both_loopbacks(host, *port, &found.unwrap_or_default())
                    }
                };
                for addr in addrs {
                    let t = network::reach(addr, input.limit).await;
                    check(connect_check(host, &t, input.limit));
                    tried.push((endpoint.clone(), t));
                }
            }
        }
    }
    let refused = tried.iter().any(|(_, t)| t.reach == Reach::Refused)
        || sockets
            .iter()
            .any(|(_, _, r)| matches!(r, Reach::Refused | Reach::Missing));
    if refused {
        check(listeners_check(&input, &tried).await);
    }
    if let Some(mesh) = mesh_check(&input, &tried) {
        check(mesh);
    }
    let connected = tried
        .iter()
        .find(|(_, t)| t.reach == Reach::Connected)
        .map(|(e, t)| (e.clone(), Some(t.addr)))
        .or_else(|| {
            sockets
                .iter()
                .find(|(_, _, r)| *r == Reach::Connected)
                .map(|(e, _, _)| (e.clone(), None))
        });
    check(tls_check(&input, connected.as_ref()).await);
    let first = match &connected {
        Some((endpoint, addr)) => Some(first_reply(&input, endpoint, *addr).await),
        None => None,
    };
    check(auth_check(&input, first.as_ref(), &credentials));
    let Ok(tls) = input.tls else {
        let verdict = Verdict::Rejected(Class::Tls);
        return Diagnosis { items, verdict };
    };
    let plan = Plan {
        per_address: input.limit,
        tcp_connect_limit: input.limit,
    };
    let login = probe(&input, tls, &credentials, Vec::new())
        .with_facts()
        .attempt(plan)
        .await;
    let server = server_check(&input, &login, first.as_ref());
    items.push(Item::Login(login.clone()));
    items.push(Item::Check(server));
    let mut verdict = verdict_of(&login, input.retry_on);
    for (i, condition) in input.conditions.iter().enumerate() {
        let result = probe(&input, tls, &credentials, vec![condition.clone()])
            .attempt(plan)
            .await;
        if verdict == Verdict::Ready {
            verdict = verdict_of(&result, input.retry_on);
        }
        items.push(Item::Condition(i, result.map(|_| ())));
    }
    Diagnosis { items, verdict }
}

/// Reads a server's message as the checks do (for the fuzz tests: any text, no panic).
#[cfg(test)]
pub fn server_text_parses(message: &str) -> bool {
    HbaRejection::parse(message).is_some()
        | server_text::cannot_connect_now(message, message).is_some()
}

/// A probe as the wait would make it, with only `conditions` (the password files as read once).
fn probe(
    input: &Input<'_>,
    tls: Option<&Tls>,
    credentials: &Credentials,
    conditions: Vec<Condition>,
) -> PgProbe {
    let credentials = credentials.clone();
    let minter = input.token.cloned().map(Minter::new);
    PgProbe::new(
        input.conn.clone(),
        tls.cloned(),
        credentials,
        conditions,
        minter,
    )
}

/// What `--once` would have exited with after this attempt.
fn verdict_of<T>(result: &Result<T, AttemptError>, retry_on: RetryOn) -> Verdict {
    match result {
        Ok(_) => Verdict::Ready,
        Err(error) => {
            let class = error.class();
            match Policy::new(retry_on, true, Some(0)).next(class, None, Duration::ZERO) {
                Decision::Reject => Verdict::Rejected(class),
                _ => Verdict::NotReady(class),
            }
        }
    }
}

/// 1. Settings and where each came from; the password: whether there is one, and from where.
fn settings_check(input: &Input<'_>, credentials: &Credentials) -> Check {
    let conn = input.conn;
    let value = |keyword: &str| -> Option<String> {
        Some(match keyword {
            "host" => conn
                .endpoints
                .iter()
                .map(|e| match e {
                    Endpoint::Tcp { host, .. } => host.clone(),
                    Endpoint::Socket { dir, .. } => dir.display().to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            "hostaddr" => {
                let addrs: Vec<String> = conn
                    .endpoints
                    .iter()
                    .filter_map(|e| match e {
                        Endpoint::Tcp {
                            hostaddr: Some(ip), ..
                        } => Some(ip.to_string()),
                        _ => None,
                    })
                    .collect();
                if addrs.is_empty() {
                    return None;
                }
                addrs.join(",")
            }
            "port" => {
                let mut ports: Vec<String> = conn
                    .endpoints
                    .iter()
                    .map(|e| e.port().to_string())
                    .collect();
                ports.dedup();
                ports.join(",")
            }
            "user" => conn.user.clone(),
            "dbname" => conn.dbname.clone(),
            "sslmode" => conn.tls.mode.name().to_string(),
            "target_session_attrs" => conn.session_attrs.name().to_string(),
            _ => return None,
        })
    };
    let mut parts = Vec::new();
    for (keyword, origin) in &input.origins.of {
        let Some(shown) = value(keyword) else {
            continue;
        };
        let from = origin.map_or("default".to_string(), |o| o.to_string());
        parts.push(format!("{keyword}={shown} ({from})"));
    }
    let password = password_text(input, credentials);
    Check::new(
        "settings",
        Status::Ok,
        format!("{}; password: {password}", parts.join(", ")),
    )
}

fn password_text(input: &Input<'_>, credentials: &Credentials) -> String {
    if let Some(token) = input.token {
        let how = match &token.method {
            token::Method::Iam { cloud, .. } => {
                format!("a token minted for each attempt (--iam {cloud:?})").to_lowercase()
            }
            token::Method::Command(_) => "from --password-command, for each attempt".to_string(),
        };
        return how;
    }
    if let Some(origin) = input.origins.password {
        return format!("set ({origin})");
    }
    let conn = input.conn;
    let from_pgpass = conn.endpoints.first().and_then(|e| {
        credentials.password_for(e, &conn.dbname, &conn.user)?;
        conn.passfile.as_ref()
    });
    match from_pgpass {
        Some(file) => format!("from {}", file.path.display()),
        None => "none (a server that asks for one will reject the login)".to_string(),
    }
}

/// 2. Name resolution.
fn resolve_check(host: &str, found: &Result<Vec<SocketAddr>, String>, took: Duration) -> Check {
    match found {
        Ok(addrs) => {
            let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
            Check::new(
                "resolve",
                Status::Ok,
                format!("{host} → {} in {}", list.join(", "), ms(took)),
            )
        }
        Err(why) => Check::new(
            "resolve",
            Status::Fail,
            format!("{host} does not resolve ({why}) after {}", ms(took)),
        )
        .hint(
            "check the name's spelling; in Docker Compose use the database service's name on a \
             network both containers share; in Kubernetes the Service's name (NAME.NAMESPACE.svc), \
             which resolves only once the Service exists",
        ),
    }
}

/// 3. One address.
fn connect_check(host: &str, tried: &Tried, limit: Duration) -> Check {
    let at = if tried.addr.ip().to_string() == *host {
        tried.addr.to_string()
    } else {
        format!("{host} at {}", tried.addr)
    };
    let took = ms(tried.took);
    match tried.reach {
        Reach::Connected => Check::new("connect", Status::Ok, format!("{at}: connected in {took}")),
        Reach::Refused => Check::new("connect", Status::Fail, format!("{at}: refused in {took}"))
            .hint("nothing listens on that address and port: is the server running, on this port, and listening on this address (listen_addresses)?"),
        Reach::Reset => Check::new("connect", Status::Fail, format!("{at}: reset in {took}"))
            .hint("the connection was cut at once: a proxy or firewall in the way, not PostgreSQL's answer"),
        Reach::NoAnswer => Check::new(
            "connect",
            Status::Fail,
            format!("{at}: no answer within {} (packets dropped)", ms(limit)),
        )
        .hint("a firewall, security group or NetworkPolicy between here and the server drops the connection; a refused port would answer at once"),
        Reach::Missing => Check::new("connect", Status::Fail, format!("{at}: no such socket")),
        Reach::Unreachable(kind) => Check::new(
            "connect",
            Status::Fail,
            format!("{at}: {kind} after {took}"),
        )
        .hint("no route to that address: check it, and the network between here and there"),
    }
}

fn socket_check(path: &std::path::Path, reach: Reach, took: Duration) -> Check {
    let at = path.display();
    match reach {
        Reach::Connected => Check::new("connect", Status::Ok, format!("{at}: connected in {}", ms(took))),
        Reach::Missing => Check::new("connect", Status::Fail, format!("{at}: no such socket"))
            .hint("no server has created its socket there: is it running, with this port and unix_socket_directories?"),
        Reach::Refused => Check::new("connect", Status::Fail, format!("{at}: refused (a stale socket file)"))
            .hint("the socket file is left from a server that is no longer running"),
        other => Check::new("connect", Status::Fail, format!("{at}: {other:?}")),
    }
}

/// 4. When refused: what does listen here, on sockets and on loopback.
async fn listeners_check(input: &Input<'_>, tried: &[(Endpoint, Tried)]) -> Check {
    let mut dirs: Vec<PathBuf> = network::SOCKET_DIRS.iter().map(PathBuf::from).collect();
    for endpoint in &input.conn.endpoints {
        if let Endpoint::Socket { dir, .. } = endpoint {
            if !dirs.contains(dir) {
                dirs.push(dir.clone());
            }
        }
    }
    let servers = network::local_servers(&dirs, input.limit).await;
    let mut findings: Vec<String> = servers
        .iter()
        .map(|(port, path)| format!("a server listens on port {port} here ({})", path.display()))
        .collect();
    let mut hints = Vec::new();
    let wanted: Vec<u16> = input.conn.endpoints.iter().map(Endpoint::port).collect();
    if servers.iter().any(|(p, _)| !wanted.contains(p))
        && !servers.iter().any(|(p, _)| wanted.contains(p))
    {
        hints.push("a server runs here on another port: check the port setting".to_string());
    }
    let canonical_loopback = |ip: std::net::IpAddr| {
        ip == std::net::Ipv4Addr::LOCALHOST || ip == std::net::Ipv6Addr::LOCALHOST
    };
    for (endpoint, t) in tried.iter().filter(|(_, t)| t.reach == Reach::Refused) {
        let port = t.addr.port();
        if canonical_loopback(t.addr.ip()) {
            let local_host = matches!(endpoint, Endpoint::Tcp { host, .. } if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
            if local_host && input.settings.in_container {
                hints.push("inside a container, localhost is the container itself, not the database's: use the database service's name".to_string());
            }
            continue;
        }
        for loopback in [
            SocketAddr::from(([127, 0, 0, 1], port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
        ] {
            if network::reach(loopback, input.limit).await.reach == Reach::Connected {
                findings.push(format!("{loopback} accepts, {} refuses", t.addr));
                hints.push(format!(
                    "the server listens on loopback only: set listen_addresses (e.g. '*' or '{}') and restart it, and allow the address in pg_hba.conf",
                    t.addr.ip()
                ));
                break;
            }
        }
    }
    hints.dedup();
    let status = if findings.is_empty() {
        Status::Ok
    } else {
        Status::Warn
    };
    let finding = match findings.is_empty() {
        true => format!(
            "no PostgreSQL server listens here ({} checked)",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        false => findings.join("; "),
    };
    let check = Check::new("listeners", status, finding);
    match hints.is_empty() {
        true => check,
        false => check.hint(hints.join("; ")),
    }
}

/// 5. In Kubernetes, every address refused or reset within a few ms: a sidecar's redirect.
fn mesh_check(input: &Input<'_>, tried: &[(Endpoint, Tried)]) -> Option<Check> {
    let fast = Duration::from_millis(10);
    let all_cut = !tried.is_empty()
        && tried
            .iter()
            .all(|(_, t)| matches!(t.reach, Reach::Refused | Reach::Reset) && t.took < fast);
    let remote = tried.iter().any(|(_, t)| !t.addr.ip().is_loopback());
    (input.settings.in_kubernetes && all_cut && remote).then(|| {
        Check::new(
            "mesh",
            Status::Warn,
            "in Kubernetes, every address refused or reset within a few ms: a service-mesh sidecar (Istio, Linkerd) that is not running yet may be capturing the traffic",
        )
        .hint(
            "run the proxy as a native sidecar (an init container with restartPolicy: Always) before pgwait; or Istio's holdApplicationUntilProxyStarts; or exclude the port from capture (traffic.sidecar.istio.io/excludeOutboundPorts, config.linkerd.io/skip-outbound-ports)",
        )
    })
}

/// 6. TLS: offered or not, the certificate, and whether it verifies under the sslmode.
async fn tls_check(input: &Input<'_>, connected: Option<&(Endpoint, Option<SocketAddr>)>) -> Check {
    let params = &input.conn.tls;
    let mode = params.mode.name();
    if let Err(error) = input.tls {
        return Check::new("tls", Status::Fail, format!("cannot set up TLS: {error}"));
    }
    let Some((endpoint, addr)) = connected else {
        return Check::new("tls", Status::Skip, "no address connected");
    };
    let Some(addr) = addr else {
        return Check::new("tls", Status::Skip, "over a Unix socket: no TLS (as libpq)");
    };
    let host = match endpoint {
        Endpoint::Tcp { host, .. } => host.as_str(),
        Endpoint::Socket { .. } => "localhost",
    };
    let found = match session::inspect_tls(*addr, host, params, input.limit).await {
        Ok(found) => found,
        Err(error) => {
            return Check::new("tls", Status::Fail, format!("cannot set up TLS: {error}"))
        }
    };
    let requires = !matches!(
        params.mode,
        SslMode::Disable | SslMode::Allow | SslMode::Prefer
    );
    match found {
        TlsFound::NotOffered if requires => Check::new(
            "tls",
            Status::Fail,
            format!("{addr}: the server offers no TLS, which sslmode={mode} requires"),
        )
        .hint("turn TLS on in the server (ssl = on, with ssl_cert_file and ssl_key_file), or lower sslmode"),
        TlsFound::NotOffered => Check::new(
            "tls",
            Status::Ok,
            format!("{addr}: the server offers no TLS; sslmode={mode}: plain text"),
        ),
        TlsFound::HandshakeFailed(why) => Check::new(
            "tls",
            Status::Fail,
            format!("{addr}: the TLS handshake failed: {why}"),
        ),
        TlsFound::Odd(byte) => Check::new(
            "tls",
            Status::Fail,
            format!("{addr}: answered the TLS request with byte 0x{byte:02x}: not a PostgreSQL server"),
        )
        .hint("check the host and port: another service listens there"),
        TlsFound::Http => Check::new(
            "tls",
            Status::Fail,
            format!("{addr}: no answer to the TLS request, but an HTTP reply to a blank one: an HTTP server listens there, not PostgreSQL"),
        )
        .hint("check the host and port: another service listens there"),
        TlsFound::Io(why) => Check::new("tls", Status::Fail, format!("{addr}: {why}")),
        TlsFound::Offered {
            chain,
            verdict,
            version,
        } => offered(addr, &chain, verdict, &version, input),
    }
}

fn offered(
    addr: &SocketAddr,
    chain: &[rustls::pki_types::CertificateDer<'_>],
    verdict: Option<Result<(), String>>,
    version: &str,
    input: &Input<'_>,
) -> Check {
    let params = &input.conn.tls;
    let mode = params.mode.name();
    let cert = chain.first().map_or("no certificate".to_string(), |c| {
        certificate_text(c.as_ref())
    });
    // libpq: a root certificate that is present makes require/prefer/allow check the chain.
    let root_present = match &params.rootcert {
        Some(crate::conninfo::RootCert::File { path, .. }) => path.exists(),
        Some(crate::conninfo::RootCert::System) => true,
        None => false,
    };
    let checked = match (root_present, params.mode) {
        (_, SslMode::Disable) => "not used (sslmode=disable: the app connects without TLS)",
        (_, SslMode::VerifyFull) => "chain and host name checked",
        (_, SslMode::VerifyCa) => "chain checked, not the host name",
        (true, _) => "chain checked (a root certificate is present)",
        (false, _) => "certificate not checked",
    };
    let base = format!("{addr}: {version}; {cert}");
    match verdict {
        Some(Err(why)) => Check::new("tls", Status::Fail, format!("{base}; does not verify under sslmode={mode}: {why}"))
            .hint("check sslrootcert (the CA that signed the server's certificate) and, for verify-full, that the certificate names the host you connect to"),
        _ if params.mode == SslMode::Disable => Check::new("tls", Status::Ok, format!("{base}; {checked}")),
        _ if checked == "certificate not checked" => Check::new("tls", Status::Ok, format!("{base}; sslmode={mode}: {checked}"))
            .hint("a token or password can be handed to an impostor: use sslmode=verify-full with sslrootcert"),
        _ => Check::new("tls", Status::Ok, format!("{base}; sslmode={mode}: {checked}, verified")),
    }
}

/// Subject, issuer, validity and names of a certificate.
fn certificate_text(der: &[u8]) -> String {
    match crate::x509::summarize(der) {
        Err(_) => "a certificate that cannot be read".to_string(),
        Ok(cert) => {
            let mut names: Vec<String> = cert.dns_names.clone();
            names.extend(cert.ip_addresses.iter().map(ToString::to_string));
            let issuer = match cert.self_signed {
                true => "self-signed".to_string(),
                false => format!("issued by {}", cert.issuer_text()),
            };
            format!(
                "certificate {} ({issuer}), valid {} to {}, names: {}",
                cert.subject_text(),
                date(cert.not_before),
                date(cert.not_after),
                match names.is_empty() {
                    true => "none".to_string(),
                    false => names.join(", "),
                }
            )
        }
    }
}

/// The server's first answer to a startup packet at the first address that connected.
async fn first_reply(
    input: &Input<'_>,
    endpoint: &Endpoint,
    addr: Option<SocketAddr>,
) -> FirstReply {
    let tls = input.tls.ok().flatten();
    let conn = input.conn;
    match (endpoint, addr) {
        (Endpoint::Tcp { host, .. }, Some(addr)) => {
            match tokio::time::timeout(input.limit, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    session::first_reply(stream, tls, host, &conn.user, &conn.dbname, input.limit)
                        .await
                }
                Ok(Err(e)) => FirstReply::Io(e.to_string()),
                Err(_) => FirstReply::Io("no answer in time".into()),
            }
        }
        (Endpoint::Socket { dir, port }, _) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            match tokio::net::UnixStream::connect(&path).await {
                // No TLS over a Unix socket, as libpq.
                Ok(stream) => {
                    session::first_reply(
                        stream,
                        None,
                        "localhost",
                        &conn.user,
                        &conn.dbname,
                        input.limit,
                    )
                    .await
                }
                Err(e) => FirstReply::Io(e.to_string()),
            }
        }
        _ => FirstReply::Io("no address".into()),
    }
}

/// 7. Authentication: the method the server asks for, or why it refused before asking.
fn auth_check(input: &Input<'_>, first: Option<&FirstReply>, credentials: &Credentials) -> Check {
    let Some(first) = first else {
        return Check::new("auth", Status::Skip, "no address connected");
    };
    let conn = input.conn;
    match first {
        FirstReply::Auth { code, mechanisms } => {
            let method = server_text::auth_method(*code, mechanisms);
            let finding = format!("the server asks user {} for: {method}", conn.user);
            let plus = mechanisms.iter().any(|m| m == "SCRAM-SHA-256-PLUS");
            let has_password = input.token.is_some()
                || input.origins.password.is_some()
                || conn.endpoints.iter().any(|e| credentials.password_for(e, &conn.dbname, &conn.user).is_some());
            if conn.channel_binding == ChannelBinding::Require && !plus {
                return Check::new("auth", Status::Fail, finding).hint(
                    "channel_binding=require, but the server did not offer SCRAM-SHA-256-PLUS: it needs scram-sha-256 over TLS (a hostssl line, passwords stored as SCRAM); or lower channel_binding",
                );
            }
            if matches!(code, 3 | 5 | 10) && !has_password {
                return Check::new("auth", Status::Fail, format!("{finding}, and no password is set"))
                    .hint("give the password (PGPASSWORD, --password-file, .pgpass, the URI) or let pg_hba.conf trust this client");
            }
            Check::new("auth", Status::Ok, finding)
        }
        FirstReply::Error { sqlstate, message, detail } => error_check(sqlstate, message, detail, input),
        FirstReply::TlsRefused => Check::new("auth", Status::Fail, "the server has no TLS, which the sslmode requires"),
        FirstReply::TlsFailed(why) => Check::new("auth", Status::Fail, format!("TLS with the configured settings failed: {why}")),
        FirstReply::NotPostgres => Check::new("auth", Status::Fail, "the peer does not answer a startup packet as PostgreSQL does")
            .hint("another service listens on that port (an HTTP server? a proxy?): check the host and port"),
        FirstReply::Io(why) => Check::new("auth", Status::Fail, format!("the connection ended: {why}")),
    }
}

/// An ErrorResponse before authentication: pg_hba.conf, 57P03, 53300, or another.
fn error_check(sqlstate: &str, message: &str, detail: &str, input: &Input<'_>) -> Check {
    if sqlstate == "28000" {
        if let Some(hba) = HbaRejection::parse(message) {
            return hba_check(&hba, input);
        }
    }
    if sqlstate == "57P03" {
        let state =
            server_text::cannot_connect_now(message, detail).unwrap_or("not accepting connections");
        return Check::new("auth", Status::Warn, format!("57P03: the server is {state} ({message})"))
            .hint("not an error of yours: the server will accept connections once it is up; pgwait waits for it");
    }
    if sqlstate.starts_with("53") {
        return Check::new("auth", Status::Warn, format!("{sqlstate}: {message}"))
            .hint("the server is out of connection slots (max_connections) or resources: close idle sessions or use a pooler");
    }
    Check::new("auth", Status::Fail, format!("{sqlstate}: {message}"))
}

fn hba_check(hba: &HbaRejection, input: &Input<'_>) -> Check {
    let encryption = hba.encryption.as_deref().unwrap_or("encryption not said");
    let what = match hba.reject_line {
        true => "a reject line in pg_hba.conf matches",
        false => "no pg_hba.conf line allows",
    };
    let finding = format!(
        "{what} host {}, user {}, database {}, {encryption}",
        hba.host, hba.user, hba.database
    );
    let plain = !hba.was_tls();
    let hint = match (hba.reject_line, plain, input.conn.tls.mode) {
        (true, true, _) => "a reject line matches connections without TLS (hostnossl ... reject): connect with TLS (sslmode=require or stricter)".to_string(),
        (true, false, _) => "a reject line matches this connection: remove or reorder it in pg_hba.conf, then SELECT pg_reload_conf()".to_string(),
        (false, true, SslMode::Disable | SslMode::Allow) => format!(
            "the server may accept only TLS connections (hostssl lines; cloud databases force SSL): use sslmode=require; or add \"{}\" to pg_hba.conf and SELECT pg_reload_conf()",
            hba.line_to_add()
        ),
        _ => format!("add \"{}\" to pg_hba.conf (before any line that rejects it), then SELECT pg_reload_conf()", hba.line_to_add()),
    };
    Check::new("auth", Status::Fail, finding).hint(hint)
}

/// 8. Server state: version, recovery, the session kind asked for, 57P03's state, socket only.
fn server_check(
    input: &Input<'_>,
    login: &Result<Ready, AttemptError>,
    first: Option<&FirstReply>,
) -> Check {
    let attrs = input.conn.session_attrs;
    match login {
        Ok(ready) => {
            let Some(facts) = &ready.facts else {
                return Check::new("server", Status::Ok, "accepted the login");
            };
            let role = match facts.in_recovery {
                true => "a standby (in recovery)",
                false => "a primary (not in recovery)",
            };
            let wanted = match attrs {
                SessionAttrs::Any => String::new(),
                other => format!("; target_session_attrs={} satisfied", other.name()),
            };
            let listen = match facts.listen_addresses.trim() {
                "" => "listen_addresses is empty: Unix socket only (the postgres image's init phase: it restarts before it is really up)".to_string(),
                l => format!("listen_addresses = '{l}'"),
            };
            let status = match ready.socket_only {
                true => Status::Warn,
                false => Status::Ok,
            };
            Check::new(
                "server",
                status,
                format!("{}; {role}{wanted}; {listen}", facts.version),
            )
        }
        Err(error) => {
            let primary = error.primary();
            match (&primary.failure, first) {
                (Failure::WrongKind { want, got }, _) => Check::new(
                    "server",
                    Status::Warn,
                    format!("a {got} server, but target_session_attrs wants {want}"),
                )
                .hint("wait for a promotion or failover, or point at the primary"),
                (
                    _,
                    Some(FirstReply::Error {
                        sqlstate,
                        message,
                        detail,
                    }),
                ) if sqlstate == "57P03" => {
                    let state = server_text::cannot_connect_now(message, detail)
                        .unwrap_or("not accepting connections");
                    Check::new("server", Status::Warn, format!("the server is {state}"))
                }
                _ => Check::new(
                    "server",
                    Status::Skip,
                    "no login: the server's state is unknown",
                ),
            }
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// `2026-12-03` (UTC) for a certificate's validity.
fn date(at: std::time::SystemTime) -> String {
    let c = crate::utc::civil(at);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}
