//! Name resolution and transport connects (TCP and Unix socket), each bounded in time and each
//! failure tagged with its phase so it can be classified exactly.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Mutex;

use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

use super::Plan;
use crate::classify::{Failure, Phase};
use crate::conninfo::Endpoint;

/// Name lookups, at most one in flight per name and port. The lookup is a blocking
/// `getaddrinfo` on a worker thread that cannot be cancelled: against a resolver that never
/// answers, a new lookup per attempt would pile up threads, so a later attempt waits on the one
/// already running instead.
#[derive(Debug, Default)]
pub struct Resolver {
    pending: Mutex<HashMap<(String, u16), Lookup>>,
}

type Lookup = JoinHandle<io::Result<Vec<SocketAddr>>>;

impl Resolver {
    /// Every address of `host`, IPv6 and IPv4, in the resolver's order (`hostaddr` and numeric
    /// hosts skip the lookup). Gives up at `deadline`; the lookup itself keeps running for the
    /// next attempt.
    pub async fn resolve(
        &self,
        host: &str,
        hostaddr: Option<IpAddr>,
        port: u16,
        deadline: Instant,
    ) -> Result<Vec<SocketAddr>, Failure> {
        if let Some(ip) = hostaddr.or_else(|| host.parse().ok()) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let key = (host.to_string(), port);
        let mut lookup = self.take(&key).unwrap_or_else(|| {
            let (host, port) = key.clone();
            tokio::task::spawn_blocking(move || {
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            })
        });
        let addrs = match timeout_at(deadline, &mut lookup).await {
            Err(_) => {
                self.put(key, lookup);
                return Err(Failure::TimedOut {
                    phase: Phase::Resolve,
                });
            }
            Ok(Err(_cancelled_or_panicked)) => Err(io::Error::other("the lookup did not finish")),
            Ok(Ok(result)) => result,
        };
        match addrs {
            Err(e) => Err(Failure::io(Phase::Resolve, &e)),
            Ok(addrs) if addrs.is_empty() => Err(Failure::Io {
                phase: Phase::Resolve,
                kind: io::ErrorKind::NotFound,
                detail: "no addresses".into(),
            }),
            Ok(addrs) => Ok(addrs),
        }
    }

    fn take(&self, key: &(String, u16)) -> Option<Lookup> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
    }

    fn put(&self, key: (String, u16), lookup: Lookup) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, lookup);
    }
}

/// TCP connect to one address, within the shorter of the connect limit and the address's deadline.
pub async fn connect_tcp(
    addr: SocketAddr,
    plan: Plan,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let until = deadline.min(Instant::now() + plan.tcp_connect_limit);
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
pub async fn connect_unix(
    path: &Path,
    plan: Plan,
    deadline: Instant,
) -> Result<UnixStream, Failure> {
    let until = deadline.min(Instant::now() + plan.tcp_connect_limit);
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
