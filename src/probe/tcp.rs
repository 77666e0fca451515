//! Name resolution and the transport connect (TCP or Unix socket, one path for both), each
//! bounded in time and each failure tagged with its phase so it can be classified exactly.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

use super::{within, Route};
use crate::classify::{Failure, Phase};

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

/// A connected transport, read and written alike whatever the route.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Connects `route` within the shorter of `limit` (the policy's connect limit, so dropped SYNs
/// don't hold an attempt for the kernel's retries) and the address's deadline. A missing socket
/// file is NotFound, which the classifier counts as refused.
pub async fn connect(route: &Route, limit: Duration, deadline: Instant) -> Result<Stream, Failure> {
    let until = deadline.min(Instant::now() + limit);
    let io = |e: io::Error| Failure::io(Phase::Connect, &e);
    within(until, Phase::Connect, async {
        match route {
            Route::Tcp(addr) => {
                let stream = TcpStream::connect(addr).await.map_err(io)?;
                // Startup is a few small messages each way: don't let Nagle delay them.
                let _ = stream.set_nodelay(true);
                Ok(Stream::Tcp(stream))
            }
            Route::Unix(path) => Ok(Stream::Unix(connect_unix(path).await.map_err(io)?)),
        }
    })
    .await
}

/// Connects a socket file, or (as libpq does for a host starting with `@`) a name in Linux's
/// abstract namespace: `@name/.s.PGSQL.5432` is `\0name/.s.PGSQL.5432`.
async fn connect_unix(path: &std::path::Path) -> io::Result<UnixStream> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let Some(name) = bytes.strip_prefix(b"@") else {
        return UnixStream::connect(path).await;
    };
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    // A local connect completes at once (or is refused): it does not block the runtime.
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

/// The OS user of the process at the other end of a Unix socket (its user ID, and its name if
/// this system knows it); `None` over TCP, where libpq's `requirepeer` does not apply.
pub fn peer_user(stream: &Stream) -> Option<io::Result<(u32, Option<String>)>> {
    let Stream::Unix(socket) = stream else {
        return None;
    };
    Some(socket.peer_cred().map(|c| (c.uid(), user_name(c.uid()))))
}

/// The name of user `uid` (getpwuid_r: /etc/passwd, as libpq reads it).
fn user_name(uid: u32) -> Option<String> {
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes only into it and buf.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to memory owned here, sized as passed.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, data),
            Self::Unix(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
