//! A pgwait (or any process) running in the background whose stderr is read as it comes, so a
//! test waits for what pgwait *says* ("waiting for …", "credentials changed") instead of
//! guessing how long it needs.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{eventually, wait_with_deadline};

/// A started child and everything it has written to stderr so far.
pub struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts `command` with stderr captured.
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command.stderr(Stdio::piped()).spawn().expect("spawn");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits up to `limit` for `text` to appear on its stderr; panics with the log if it does not.
    pub fn expect(&self, text: &str, limit: Duration) {
        assert!(
            eventually(limit, || self.stderr().contains(text)),
            "{text:?} never appeared on stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits up to `limit` for `text` to appear `more` times beyond what stderr holds now (e.g.
    /// three more `attempt ` lines under `-v`: it kept trying), panicking with the log if not.
    pub fn expect_more(&self, text: &str, more: usize, limit: Duration) {
        let now = self.stderr().matches(text).count();
        assert!(
            eventually(limit, || self.stderr().matches(text).count() >= now + more),
            "{more} more {text:?} never appeared on stderr:\n{}",
            self.stderr()
        );
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for it to exit (killing it and panicking after `limit`); its status and stderr.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = wait_with_deadline(&mut self.child, limit);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
