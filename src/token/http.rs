//! A small HTTP/1.1 client for the token endpoints' few GETs, PUTs and POSTs: one request per
//! connection (`Connection: close`), bounded in time (the caller's deadline) and size
//! ([`MAX_RESPONSE`]), over TLS verified against the web roots plus the bundles the SDKs honour,
//! or plain `http://` only to addresses that never leave the machine or its host.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::classify::TokenProblem;

/// The most a response (head and body) may take; the token answers are a few KiB.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `http[s]://host[:port]/path?query` (no userinfo, no fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

/// Which addresses plain `http://` may go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    /// Loopback and link-local (the metadata servers: 169.254.169.254, fd00:ec2::254, …).
    LocalOnly,
    /// The AWS SDKs' rule for `AWS_CONTAINER_CREDENTIALS_FULL_URI`: loopback, 169.254.170.2,
    /// 169.254.170.23 and fd00:ec2::23.
    AwsContainer,
}

/// One request.
#[derive(Clone)]
pub struct Request {
    pub method: &'static str,
    pub url: Url,
    /// Extra headers (`Host`, `Content-Length` and `Connection` are written by [`send`]).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    /// Method and URL only: headers and bodies carry identity headers, assertions and tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Request({} {}:{}{})",
            self.method, self.url.host, self.url.port, self.url.target
        )
    }
}

/// A complete response.
pub struct Response {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    /// The status only: bodies hold tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({})", self.status)
    }
}

/// The TLS trust for `https://` endpoints.
#[derive(Clone)]
pub struct Client {
    config: Arc<rustls::ClientConfig>,
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL. Userinfo is refused (a token endpoint
    /// needs none, and it would be a secret in an error); control characters and spaces too
    /// (they would split the request line).
    pub fn parse(text: &str) -> Result<Url, &'static str> {
        if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("a URL with a space or control character");
        }
        let (scheme, rest) = split_scheme(text).ok_or("a URL that is not http:// or https://")?;
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err("a URL with a user name or password in it");
        }
        let (host, port) = split_authority(authority)?;
        let port = match port {
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or("a URL with a bad port")?,
        };
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// Parses a URL a setting gave (`origin` names it: a variable, or "the instance metadata
    /// endpoint"); one that does not parse is that setting's problem.
    pub fn from_setting(text: &str, origin: &str) -> Result<Url, TokenProblem> {
        Url::parse(text).map_err(|why| TokenProblem::Missing {
            what: format!("{origin}: not a usable http(s) URL ({why})"),
        })
    }

    /// `host[:port]` as the `Host` header wants it (the port only when not the default).
    fn authority(&self) -> String {
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        match self.port == default {
            true => host,
            false => format!("{host}:{}", self.port),
        }
    }
}

fn split_scheme(text: &str) -> Option<(Scheme, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some((Scheme::Http, rest)),
        "https" => Some((Scheme::Https, rest)),
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_authority(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').ok_or("a URL with an unclosed [")?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or("a URL with a bad port")?),
                ),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("a URL without a host");
    }
    Ok((host, port))
}

impl Client {
    /// The web roots plus the certificates of each PEM bundle in `extra` (`AWS_CA_BUNDLE`,
    /// `SSL_CERT_FILE`), each named by the variable that gave it.
    pub fn new(extra: &[(&'static str, &Path)]) -> Result<Client, TokenProblem> {
        let mut roots = rustls::RootCertStore::empty();
        roots.roots = webpki_roots::TLS_SERVER_ROOTS.to_vec();
        for (variable, path) in extra {
            let unusable = || TokenProblem::Missing {
                what: format!(
                    "{variable} (\"{}\" is not a readable PEM bundle)",
                    path.display()
                ),
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|_| unusable())?;
            let mut added = 0;
            for cert in certs.flatten() {
                added += usize::from(roots.add(cert).is_ok());
            }
            if added == 0 {
                return Err(unusable());
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TokenProblem::Tls {
                detail: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client {
            config: Arc::new(config),
        })
    }
}

/// Whether plain `http://` may go to `ip` under `rule`.
pub fn plain_allowed(rule: Plain, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return true;
    }
    match (rule, ip) {
        (Plain::LocalOnly, IpAddr::V4(v4)) => v4.is_link_local(),
        (Plain::LocalOnly, IpAddr::V6(v6)) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == AWS_IMDS_V6 || v6 == AWS_CONTAINER_V6
        }
        (Plain::AwsContainer, IpAddr::V4(v4)) => AWS_CONTAINER_V4.contains(&v4),
        (Plain::AwsContainer, IpAddr::V6(v6)) => v6 == AWS_CONTAINER_V6,
    }
}

/// EC2's IPv6 metadata address.
const AWS_IMDS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
/// The ECS and EKS Pod Identity agents' addresses.
const AWS_CONTAINER_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
];
const AWS_CONTAINER_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23);

/// Sends `request` and reads the whole response, by `deadline`.
pub async fn send(
    client: &Client,
    request: &Request,
    plain: Plain,
    deadline: Instant,
) -> Result<Response, TokenProblem> {
    let head = head(request)?;
    let exchange = async {
        let url = &request.url;
        let addrs = resolve(url).await?;
        if url.scheme == Scheme::Http && !addrs.iter().all(|a| plain_allowed(plain, a.ip())) {
            return Err(TokenProblem::PlainHttp {
                host: url.host.clone(),
            });
        }
        let tcp = connect(&addrs).await?;
        match url.scheme {
            Scheme::Http => exchange(tcp, &head, &request.body).await,
            Scheme::Https => {
                let name = ServerName::try_from(url.host.clone()).map_err(|_| {
                    TokenProblem::Malformed {
                        what: "the endpoint's host name",
                    }
                })?;
                let tls = tokio_rustls::TlsConnector::from(client.config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(tls_problem)?;
                exchange(tls, &head, &request.body).await
            }
        }
    };
    tokio::time::timeout_at(deadline, exchange)
        .await
        .unwrap_or(Err(TokenProblem::TimedOut))
}

/// The request line and headers; a header value with a line break (from a hostile variable
/// or file) is refused rather than sent.
fn head(request: &Request) -> Result<String, TokenProblem> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        request.method,
        request.url.target,
        request.url.authority()
    );
    for (name, value) in &request.headers {
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(TokenProblem::Malformed {
                what: "a header value with a line break",
            });
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() || request.method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    Ok(head)
}

async fn resolve(url: &Url) -> Result<Vec<SocketAddr>, TokenProblem> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| unreachable(&e))?
        .collect();
    match addrs.is_empty() {
        true => Err(TokenProblem::Unreachable {
            kind: io::ErrorKind::NotFound,
        }),
        false => Ok(addrs),
    }
}

/// The first address that accepts; the last error when none does.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, TokenProblem> {
    let mut last = io::ErrorKind::NotFound;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e.kind(),
        }
    }
    Err(TokenProblem::Unreachable { kind: last })
}

fn unreachable(e: &io::Error) -> TokenProblem {
    TokenProblem::Unreachable { kind: e.kind() }
}

/// A handshake failure: rustls' own words (they never hold a secret) when it has them.
fn tls_problem(e: io::Error) -> TokenProblem {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => TokenProblem::Tls {
            detail: tls.to_string(),
        },
        None => unreachable(&e),
    }
}

async fn exchange<S>(mut stream: S, head: &str, body: &[u8]) -> Result<Response, TokenProblem>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(body);
    stream.write_all(&out).await.map_err(|e| unreachable(&e))?;
    stream.flush().await.map_err(|e| unreachable(&e))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(response) = parse(&buf, false)? {
            return Ok(response);
        }
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A server that closes a TLS session without close_notify has still sent it all.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(unreachable(&e)),
        };
        if n == 0 {
            return parse(&buf, true)?.ok_or(TokenProblem::Malformed {
                what: "an incomplete HTTP reply",
            });
        }
        if buf.len() + n > MAX_RESPONSE {
            return Err(TokenProblem::Malformed {
                what: "a reply larger than 64 KiB",
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

const BAD_HEAD: TokenProblem = TokenProblem::Malformed {
    what: "an HTTP reply that does not parse",
};

/// The response in `buf` if it is complete (`ended`: the peer closed, so a body without a
/// length ends here).
fn parse(buf: &[u8], ended: bool) -> Result<Option<Response>, TokenProblem> {
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..split]).map_err(|_| BAD_HEAD)?;
    let rest = &buf[split + 4..];
    let mut lines = head.split("\r\n");
    let status = status(lines.next().unwrap_or_default())?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(BAD_HEAD)?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked = find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        match dechunk(rest)? {
            Some(body) => body,
            None if ended => return Err(BAD_HEAD),
            None => return Ok(None),
        }
    } else if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(|_| BAD_HEAD)?;
        match rest.len() >= length {
            true => rest[..length].to_vec(),
            false if ended => return Err(BAD_HEAD),
            false => return Ok(None),
        }
    } else if ended || status == 204 || status == 304 {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(Response {
        status,
        headers,
        body,
    }))
}

/// `HTTP/1.1 200 OK` → 200.
fn status(line: &str) -> Result<u16, TokenProblem> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(BAD_HEAD);
    }
    code.parse().map_err(|_| BAD_HEAD)
}

/// A chunked body, once its last chunk is in `data`.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, TokenProblem> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[..eol]).map_err(|_| BAD_HEAD)?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| BAD_HEAD)?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// `application/x-www-form-urlencoded` body of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A-Za-z0-9-._~`), as SigV4
/// and OAuth forms want.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpListener;

    #[test]
    fn urls_parse_as_the_endpoints_are_written() {
        let ok = [
            (
                "http://169.254.169.254/latest/api/token",
                Scheme::Http,
                "169.254.169.254",
                80,
                "/latest/api/token",
            ),
            (
                "https://sts.us-east-1.amazonaws.com",
                Scheme::Https,
                "sts.us-east-1.amazonaws.com",
                443,
                "/",
            ),
            (
                "HTTP://[fd00:ec2::254]/latest",
                Scheme::Http,
                "fd00:ec2::254",
                80,
                "/latest",
            ),
            (
                "http://localhost:8081/msi/token?x=1#frag",
                Scheme::Http,
                "localhost",
                8081,
                "/msi/token?x=1",
            ),
            ("https://h:444?a=b", Scheme::Https, "h", 444, "/?a=b"),
        ];
        for (text, scheme, host, port, target) in ok {
            let url = Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (url.scheme, url.host.as_str(), url.port, url.target.as_str()),
                (scheme, host, port, target),
                "{text}"
            );
        }
        let bad = [
            "ftp://h/",
            "h/path",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://user:secret@h/",
            "http://h/a b",
            "http://h/\r\nX: y",
            "http://[::1/",
            "http://[::1]x/",
        ];
        for text in bad {
            let err = Url::parse(text).expect_err(text);
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn plain_http_goes_only_where_the_sdks_allow_it() {
        let table = [
            ("127.0.0.1", true, true),
            ("::1", true, true),
            ("::ffff:127.0.0.1", true, true),
            ("169.254.169.254", true, false),
            ("169.254.170.2", true, true),
            ("169.254.170.23", true, true),
            ("fd00:ec2::23", true, true),
            ("fd00:ec2::254", true, false),
            ("fe80::1", true, false),
            ("10.0.0.1", false, false),
            ("192.168.1.1", false, false),
            ("8.8.8.8", false, false),
        ];
        for (ip, local, container) in table {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(plain_allowed(Plain::LocalOnly, ip), local, "{ip} local");
            assert_eq!(
                plain_allowed(Plain::AwsContainer, ip),
                container,
                "{ip} container"
            );
        }
    }

    #[test]
    fn replies_parse_with_a_length_chunked_or_to_the_end() {
        type Case<'a> = (&'a [u8], bool, Option<(u16, &'a [u8])>);
        let table: [Case; 7] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, Some((200, b"hi"))),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false, None),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3;x\r\n th\r\n0\r\n\r\n", false, Some((200, b"hi th"))),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", false, None),
            (b"HTTP/1.0 404 Not Found\r\n\r\nnope", false, None),
            (b"HTTP/1.0 404 Not Found\r\n\r\nnope", true, Some((404, b"nope"))),
            (b"HTTP/1.1 410\r\nContent-Length: 0\r\n\r\n", false, Some((410, b""))),
        ];
        for (bytes, ended, want) in table {
            let got = parse(bytes, ended).unwrap().map(|r| (r.status, r.body));
            assert_eq!(
                got.as_ref().map(|(s, b)| (*s, b.as_slice())),
                want,
                "{bytes:?}"
            );
        }
        for garbage in [
            &b"SSH-2.0\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse(garbage, true).is_err(), "{garbage:?}");
        }
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhi", true).is_err());
    }

    /// A one-shot server: returns its address and a handle yielding the request it read.
    async fn serve(reply: Vec<u8>) -> (Url, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).await.unwrap();
            let _ = s.write_all(&reply).await;
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}/path?q=1")).unwrap();
        (url, handle)
    }

    fn request(url: Url) -> Request {
        Request {
            method: "PUT",
            url,
            headers: vec![("X-aws-ec2-metadata-token-ttl-seconds", "21600".into())],
            body: Vec::new(),
        }
    }

    fn client() -> Client {
        Client::new(&[]).unwrap()
    }

    #[tokio::test]
    async fn a_request_is_written_and_its_reply_read() {
        let (url, server) =
            serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\ntoken".to_vec()).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let response = send(&client(), &request(url.clone()), Plain::LocalOnly, deadline)
            .await
            .unwrap();
        assert_eq!(
            (
                response.status,
                response.body.as_slice(),
                response
                    .headers
                    .iter()
                    .find(|(n, _)| n == "x-a")
                    .map(|(_, v)| v.as_str())
            ),
            (200, &b"token"[..], Some("b"))
        );
        assert_eq!(format!("{response:?}"), "Response(200)");
        let seen = server.await.unwrap();
        let want = format!(
            "PUT /path?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            url.port
        );
        assert_eq!(seen, want);
    }

    #[tokio::test]
    async fn a_huge_reply_a_hang_and_a_line_break_are_refused() {
        let mut huge = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        huge.resize(MAX_RESPONSE + 10, b'a');
        let (url, _server) = serve(huge).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = send(&client(), &request(url), Plain::LocalOnly, deadline).await;
        assert_eq!(
            got.unwrap_err(),
            TokenProblem::Malformed {
                what: "a reply larger than 64 KiB"
            }
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        let got = send(&client(), &request(url.clone()), Plain::LocalOnly, deadline).await;
        assert_eq!(got.unwrap_err(), TokenProblem::TimedOut);
        drop(listener);

        let mut bad = request(url);
        bad.headers
            .push(("Authorization", "x\r\nInjected: 1".into()));
        let got = send(&client(), &bad, Plain::LocalOnly, deadline).await;
        assert!(
            matches!(got, Err(TokenProblem::Malformed { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn plain_http_to_a_network_address_is_refused_before_connecting() {
        let url = Url::parse("http://192.0.2.1/latest/api/token").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = send(&client(), &request(url), Plain::LocalOnly, deadline).await;
        assert_eq!(
            got.unwrap_err(),
            TokenProblem::PlainHttp {
                host: "192.0.2.1".into()
            }
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = send(&client(), &request(url), Plain::LocalOnly, deadline).await;
        assert_eq!(
            got.unwrap_err(),
            TokenProblem::Unreachable {
                kind: io::ErrorKind::ConnectionRefused
            }
        );
    }

    #[test]
    fn an_unreadable_bundle_is_named_by_its_variable() {
        let problem = Client::new(&[("AWS_CA_BUNDLE", Path::new("/nonexistent/ca.pem"))])
            .err()
            .unwrap();
        match problem {
            TokenProblem::Missing { what } => assert!(what.starts_with("AWS_CA_BUNDLE"), "{what}"),
            other => panic!("{other:?}"),
        }
    }
}
