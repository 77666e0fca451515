//! The network half of the checklist: name resolution, each address's connect, and what else
//! listens on this machine when an address refuses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};
use tokio::time::{timeout, Instant};

/// What one connect found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Connected,
    /// ECONNREFUSED (or a socket file that is there but refuses).
    Refused,
    /// Reset or aborted at once: a proxy or mesh sidecar in the way, not a server.
    Reset,
    /// Nothing came back before the limit: packets dropped (a firewall, a security group).
    NoAnswer,
    /// No socket file there.
    Missing,
    /// Any other error (no route, network unreachable, permission): its kind.
    Unreachable(io::ErrorKind),
}

/// One address and what connecting to it found, in how long.
#[derive(Debug, Clone)]
pub struct Tried {
    pub addr: SocketAddr,
    pub reach: Reach,
    pub took: Duration,
}

/// Resolves `host` as the probe does (the system resolver), by `limit`.
pub async fn resolve(
    host: &str,
    port: u16,
    limit: Duration,
) -> (Result<Vec<SocketAddr>, String>, Duration) {
    let began = Instant::now();
    let lookup = timeout(limit, tokio::net::lookup_host((host, port))).await;
    let result = match lookup {
        Err(_) => Err("no answer from the resolver in time".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(addrs)) => {
            let mut seen: Vec<SocketAddr> = Vec::new();
            for addr in addrs {
                if !seen.contains(&addr) {
                    seen.push(addr);
                }
            }
            Ok(seen)
        }
    };
    (result, began.elapsed())
}

/// The addresses to try: those resolved, and for `localhost` both loopback families whether the
/// resolver gave them or not (an app may resolve `localhost` to the other one).
pub fn with_both_loopbacks(host: &str, port: u16, resolved: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut addrs = resolved.to_vec();
    if host.eq_ignore_ascii_case("localhost") {
        for ip in [
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ] {
            let addr = SocketAddr::new(ip, port);
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    addrs
}

/// Connects to `addr` by `limit` and closes again.
pub async fn reach(addr: SocketAddr, limit: Duration) -> Tried {
    let began = Instant::now();
    let reach = match timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => Reach::NoAnswer,
        Ok(Ok(_)) => Reach::Connected,
        Ok(Err(e)) => of_error(&e),
    };
    Tried {
        addr,
        reach,
        took: began.elapsed(),
    }
}

/// Connects to a Unix socket file by `limit`.
pub async fn reach_socket(path: &Path, limit: Duration) -> (Reach, Duration) {
    let began = Instant::now();
    let reach = match timeout(limit, UnixStream::connect(path)).await {
        Err(_) => Reach::NoAnswer,
        Ok(Ok(_)) => Reach::Connected,
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Reach::Missing,
        Ok(Err(e)) => of_error(&e),
    };
    (reach, began.elapsed())
}

fn of_error(e: &io::Error) -> Reach {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Reach::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => Reach::Reset,
        io::ErrorKind::TimedOut => Reach::NoAnswer,
        kind => Reach::Unreachable(kind),
    }
}

/// The directories PostgreSQL servers put their sockets in (Debian's and the default).
pub const SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];

/// PostgreSQL sockets (`.s.PGSQL.PORT`) in `dirs` that accept a connection now, by port.
pub async fn local_servers(dirs: &[PathBuf], limit: Duration) -> Vec<(u16, PathBuf)> {
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        // A directory full of files must not make a diagnosis slow: look at the first few.
        for entry in entries.flatten().take(1000) {
            let name = entry.file_name();
            let Some(port) = name
                .to_str()
                .and_then(|n| n.strip_prefix(".s.PGSQL."))
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let path = entry.path();
            if reach_socket(&path, limit).await.0 == Reach::Connected
                && !found.iter().any(|(p, _)| *p == port)
            {
                found.push((port, path));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_tried_on_both_families() {
        let v4 = SocketAddr::from(([127, 0, 0, 1], 5432));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 5432));
        assert_eq!(with_both_loopbacks("localhost", 5432, &[v4]), vec![v4, v6]);
        assert_eq!(
            with_both_loopbacks("LOCALHOST", 5432, &[v6, v4]),
            vec![v6, v4]
        );
        assert_eq!(with_both_loopbacks("db", 5432, &[v4]), vec![v4]);
    }

    #[tokio::test]
    async fn a_closed_port_refuses_and_a_listener_connects() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        assert_eq!(
            reach(open, Duration::from_secs(2)).await.reach,
            Reach::Connected
        );
        drop(listener);
        assert_eq!(
            reach(open, Duration::from_secs(2)).await.reach,
            Reach::Refused
        );
        let missing = Path::new("/nonexistent/.s.PGSQL.5432");
        assert_eq!(
            reach_socket(missing, Duration::from_secs(1)).await.0,
            Reach::Missing
        );
    }
}
