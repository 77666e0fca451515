//! The signal state pgwait was started with: the blocked mask and the set of ignored signals.
//!
//! The exec'd command (and any child a later mode spawns) must start with exactly this state, as
//! if launched directly: `nohup pgwait -- app` keeps SIGHUP ignored, a background job keeps its
//! ignored SIGINT/SIGQUIT. Rust's runtime sets SIGPIPE to ignored before `main` runs, so the state
//! is recorded earlier, by a function the C runtime calls from `.init_array` (before Rust's own
//! start-up code), using only plain libc calls and atomics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Signals 1..=64 (Linux's SIGRTMAX): bit `n - 1` for signal `n`.
static BLOCKED: AtomicU64 = AtomicU64::new(0);
static IGNORED: AtomicU64 = AtomicU64::new(0);
static CAPTURED: AtomicBool = AtomicBool::new(false);

/// Highest signal number the bit sets hold.
pub const MAX_SIGNAL: i32 = 64;

#[used]
#[link_section = ".init_array"]
static CAPTURE_AT_LOAD: extern "C" fn() = capture;

/// Records the mask and the ignored set. Runs before `main`, single-threaded.
extern "C" fn capture() {
    let mut blocked = 0u64;
    let mut ignored = 0u64;
    // SAFETY: zeroed sigset_t/sigaction are valid out-parameters; the calls only read state.
    unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) != 0 {
            return;
        }
        for n in 1..=MAX_SIGNAL {
            if libc::sigismember(&mask, n) == 1 {
                blocked |= bit(n);
            }
            // Numbers the C library reserves for itself are neither.
            if super::is_ignored(n) == Some(true) {
                ignored |= bit(n);
            }
        }
    }
    BLOCKED.store(blocked, Ordering::Relaxed);
    IGNORED.store(ignored, Ordering::Relaxed);
    CAPTURED.store(true, Ordering::Release);
}

fn bit(n: i32) -> u64 {
    1u64 << (n - 1)
}

/// The inherited state, as signal-number sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inherited {
    blocked: u64,
    ignored: u64,
}

impl Inherited {
    /// What pgwait inherited; `None` if the start-up hook did not run (a loader that skips
    /// `.init_array` — then the caller falls back to defaults and says so).
    pub fn get() -> Option<Self> {
        CAPTURED.load(Ordering::Acquire).then(|| Self {
            blocked: BLOCKED.load(Ordering::Relaxed),
            ignored: IGNORED.load(Ordering::Relaxed),
        })
    }

    /// Whether signal `n` was blocked.
    pub fn blocked(&self, n: i32) -> bool {
        (1..=MAX_SIGNAL).contains(&n) && self.blocked & bit(n) != 0
    }

    /// Whether signal `n` was ignored.
    pub fn ignored(&self, n: i32) -> bool {
        (1..=MAX_SIGNAL).contains(&n) && self.ignored & bit(n) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_ran_before_main_and_saw_sigpipe_as_the_test_runner_inherited_it() {
        let inherited = Inherited::get().expect(".init_array hook did not run");
        // Rust ignores SIGPIPE only after the hook; cargo starts tests with the default.
        assert!(!inherited.ignored(libc::SIGPIPE));
        assert!(!inherited.blocked(0) && !inherited.ignored(MAX_SIGNAL + 1));
    }
}
