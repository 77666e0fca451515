//! Fake protocol peers, for what no real server does on demand: hang, flood, answer garbage.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A loopback listener that handles each connection with `handler` on its own thread; returns
/// the port and a count of connections accepted.
pub fn fake_server<F>(handler: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) + Clone + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            std::thread::spawn(move || handler(stream));
        }
    });
    (port, connections)
}

/// SSLRequest and GSSENCRequest codes: a server without TLS answers them 'N'.
const ENCRYPTION_REQUESTS: [[u8; 4]; 2] = [[0x04, 0xd2, 0x16, 0x2f], [0x04, 0xd2, 0x16, 0x30]];

/// pgwait's flags to reach a fake peer on `port` (user and database `app`).
pub fn client_args(port: u16) -> Vec<String> {
    let port = port.to_string();
    ["-h", "127.0.0.1", "-p", &port, "-U", "app", "-d", "app"]
        .map(String::from)
        .to_vec()
}

/// Reads the startup packet, answering 'N' to an SSLRequest first as a server without TLS
/// does; false if the client went away first.
pub fn read_startup(stream: &mut TcpStream) -> bool {
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).is_err() {
            return false;
        }
        let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
        if stream.read_exact(&mut body).is_err() {
            return false;
        }
        if !ENCRYPTION_REQUESTS
            .iter()
            .any(|code| body.starts_with(code))
        {
            return true;
        }
        if stream.write_all(b"N").is_err() {
            return false;
        }
    }
}

/// One backend message: type byte, length, body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// An ErrorResponse message with these fields.
pub fn error_response(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (code, value) in fields {
        body.push(*code);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

/// AuthenticationOk, then ReadyForQuery: a trust login.
pub fn trust_login() -> Vec<u8> {
    let mut m = message(b'R', &0u32.to_be_bytes());
    m.extend(message(b'Z', b"I"));
    m
}
