//! Signals that end the wait: SIGTERM, SIGINT, SIGQUIT, SIGHUP.
//!
//! pgwait installs real handlers (through signal-hook's self-pipe) rather than relying on default
//! dispositions because, as PID 1 in a container, the kernel drops any signal that has no handler:
//! `docker stop` would then wait its full 10 s and SIGKILL us.

use std::io::{self, Read};
use std::os::unix::net::UnixStream as StdUnixStream;

use tokio::net::UnixStream;

/// A signal that ends the wait, named by intent; numbers only at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
    Quit,
    Hangup,
}

impl Signal {
    /// Every signal pgwait listens for.
    pub const ALL: [Signal; 4] = [
        Signal::Terminate,
        Signal::Interrupt,
        Signal::Quit,
        Signal::Hangup,
    ];

    /// The signal number, for exit codes and libc calls.
    pub fn number(self) -> i32 {
        match self {
            Self::Terminate => libc::SIGTERM,
            Self::Interrupt => libc::SIGINT,
            Self::Quit => libc::SIGQUIT,
            Self::Hangup => libc::SIGHUP,
        }
    }

    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
            Self::Quit => "SIGQUIT",
            Self::Hangup => "SIGHUP",
        }
    }
}

fn unblock(signals: &[Signal]) {
    // SAFETY: plain libc calls on a sigset initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in signals {
            libc::sigaddset(&mut set, signal.number());
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for the handler of `signal` to write into `pipe` (readiness can be spurious).
async fn next_byte(signal: Signal, pipe: UnixStream) -> io::Result<Signal> {
    let mut buf = [0u8; 16];
    loop {
        pipe.readable().await?;
        match pipe.try_read(&mut buf) {
            Ok(n) if n > 0 => return Ok(signal),
            Ok(_) => std::future::pending::<()>().await,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One self-pipe per signal: its handler writes a byte, the wait loop reads it.
#[derive(Debug)]
pub struct Signals {
    pipes: Vec<(Signal, StdUnixStream)>,
}

impl Signals {
    /// Installs the handlers and unblocks the signals (a parent may have blocked them, which
    /// would make pgwait deaf to `docker stop`). Call once, before waiting.
    pub fn install() -> io::Result<Self> {
        unblock(&Signal::ALL);
        let mut pipes = Vec::new();
        for signal in Signal::ALL {
            let (read, write) = StdUnixStream::pair()?;
            read.set_nonblocking(true)?;
            signal_hook::low_level::pipe::register(signal.number(), write)?;
            pipes.push((signal, read));
        }
        Ok(Self { pipes })
    }

    /// Resolves when any of the signals arrives. Needs a running tokio runtime.
    pub async fn recv(&self) -> io::Result<Signal> {
        let streams = self
            .pipes
            .iter()
            .map(|(signal, read)| Ok((*signal, UnixStream::from_std(read.try_clone()?)?)))
            .collect::<io::Result<Vec<_>>>()?;
        let [(s0, p0), (s1, p1), (s2, p2), (s3, p3)]: [(Signal, UnixStream); 4] = streams
            .try_into()
            .expect("one pipe per signal in Signal::ALL");
        tokio::select! {
            r = next_byte(s0, p0) => r,
            r = next_byte(s1, p1) => r,
            r = next_byte(s2, p2) => r,
            r = next_byte(s3, p3) => r,
        }
    }

    /// Hands the signals back to the kernel's defaults before exec, and reports one that was
    /// caught before that. Done in this order no signal is lost: one arriving before the reset
    /// is in a pipe, one arriving after it acts as it would on the exec'd program.
    pub fn surrender(&self) -> Option<Signal> {
        for signal in Signal::ALL {
            // SAFETY: setting a default disposition has no memory-safety preconditions.
            unsafe { libc::signal(signal.number(), libc::SIG_DFL) };
        }
        self.pipes.iter().find_map(|(signal, read)| {
            let mut byte = [0u8; 16];
            matches!((&*read).read(&mut byte), Ok(n) if n > 0).then_some(*signal)
        })
    }
}
