//! Name resolution and transport connects (TCP and Unix socket), each bounded in time and each
//! failure tagged with its phase so it can be classified exactly.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use tokio::net::{TcpStream, UnixStream};
use tokio::time::{timeout_at, Instant};

use super::Plan;
use crate::classify::{Failure, Phase};
use crate::conninfo::Endpoint;

/// Every address of `host`, IPv6 and IPv4, in the resolver's order (`hostaddr` skips the lookup).
pub async fn resolve(
    host: &str,
    hostaddr: Option<IpAddr>,
    port: u16,
    deadline: Instant,
) -> Result<Vec<SocketAddr>, Failure> {
    if let Some(ip) = hostaddr.or_else(|| host.parse().ok()) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup = tokio::net::lookup_host((host, port));
    match timeout_at(deadline, lookup).await {
        Err(_) => Err(Failure::TimedOut {
            phase: Phase::Resolve,
        }),
        Ok(Err(e)) => Err(Failure::io(Phase::Resolve, &e)),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                return Err(Failure::Io {
                    phase: Phase::Resolve,
                    kind: io::ErrorKind::NotFound,
                    detail: "no addresses".into(),
                });
            }
            Ok(addrs)
        }
    }
}

/// TCP connect to one address, within the shorter of the connect limit and the attempt deadline.
pub async fn connect_tcp(addr: SocketAddr, plan: Plan) -> Result<TcpStream, Failure> {
    let until = plan.deadline.min(Instant::now() + plan.tcp_connect_limit);
    match timeout_at(until, TcpStream::connect(addr)).await {
        Err(_) => Err(Failure::TimedOut {
            phase: Phase::Connect,
        }),
        Ok(Err(e)) => Err(Failure::io(Phase::Connect, &e)),
        Ok(Ok(stream)) => {
            // Startup is a few small messages each way: don't let Nagle delay them.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

/// Unix-socket connect; a missing socket file is reported as NotFound (classified as refused).
pub async fn connect_unix(path: &Path, plan: Plan) -> Result<UnixStream, Failure> {
    let until = plan.deadline.min(Instant::now() + plan.tcp_connect_limit);
    match timeout_at(until, UnixStream::connect(path)).await {
        Err(_) => Err(Failure::TimedOut {
            phase: Phase::Connect,
        }),
        Ok(Err(e)) => Err(Failure::io(Phase::Connect, &e)),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// `host:port (address)`, or just `address:port` when the host already is that address.
pub fn label(endpoint: &Endpoint, addr: SocketAddr) -> String {
    match endpoint {
        Endpoint::Tcp { host, .. } if host.parse::<IpAddr>().ok() == Some(addr.ip()) => {
            endpoint.to_string()
        }
        _ => format!("{endpoint} ({})", addr.ip()),
    }
}
