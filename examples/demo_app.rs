//! A tiny "application" for the container demo and tests: it connects with the `PG*` settings
//! pgwait waited for, prints the server version, and exits with `APP_EXIT_CODE` (default 0).
//! If pgwait had exec'd it too early, the connection would fail and it would exit 1.
//! With `APP_UNTIL_TERM=1` it then stays up until SIGTERM, like a server, and exits with
//! `APP_EXIT_CODE` on it (the supervise-mode test checks that code reaches `docker stop`).

use std::env;
use std::process::ExitCode;

use tokio::net::TcpStream;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn setting(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn server_version() -> Result<String, Box<dyn std::error::Error>> {
    let host = setting("PGHOST", "localhost");
    let port: u16 = setting("PGPORT", "5432").parse()?;
    let stream = TcpStream::connect((host.as_str(), port)).await?;
    let mut config = tokio_postgres::Config::new();
    config
        .user(setting("PGUSER", "postgres"))
        .dbname(setting("PGDATABASE", "postgres"))
        .password(setting("PGPASSWORD", ""))
        .ssl_mode(tokio_postgres::config::SslMode::Disable);
    let (client, connection) = config.connect_raw(stream, NoTls).await?;
    let query = async move { client.simple_query("SELECT version()").await };
    let (rows, _) = tokio::join!(query, connection);
    rows?
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or_else(|| "no row".into())
}

/// Blocks until SIGTERM arrives (it is blocked first, then taken with sigwait).
fn wait_for_sigterm() {
    // SAFETY: an initialised set holding SIGTERM; sigwait stores the number it took.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut signal = 0;
        libc::sigwait(&set, &mut signal);
    }
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match runtime.block_on(server_version()) {
        Ok(version) => {
            println!(
                "demo app (pid {}): connected to {version}",
                std::process::id()
            );
            if setting("APP_UNTIL_TERM", "") == "1" {
                wait_for_sigterm();
                println!("demo app: SIGTERM, exiting");
            }
            ExitCode::from(setting("APP_EXIT_CODE", "0").parse::<u8>().unwrap_or(0))
        }
        Err(e) => {
            eprintln!("demo app: cannot query the database: {e}");
            ExitCode::FAILURE
        }
    }
}
