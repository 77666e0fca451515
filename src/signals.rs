//! Signals as data: any signal by number, a checked signal-mask API, and the handlers that end
//! the wait.
//!
//! pgwait installs real handlers (through one self-pipe) rather than relying on default
//! dispositions because, as PID 1 in a container, the kernel drops any signal that has no handler:
//! `docker stop` would then wait its full 10 s and SIGKILL us. Each handler writes its own signal
//! number into the pipe, so the same mechanism serves any set of signals (a supervisor forwards
//! nearly all of them).

use std::fmt;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream as StdUnixStream;

use tokio::net::UnixStream;

mod inherited;

pub use inherited::Inherited;

/// A signal, named by intent where pgwait gives it one; any number the kernel knows is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

/// Signal numbers and their conventional names (Linux numbering).
const NAMES: &[(i32, &str)] = &[
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

impl Signal {
    pub const HANGUP: Signal = Signal(libc::SIGHUP);
    pub const INTERRUPT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const TERMINATE: Signal = Signal(libc::SIGTERM);

    /// The signals that end the wait (`docker stop`, Ctrl-C, a closed terminal).
    pub const ENDS_WAIT: [Signal; 4] = [
        Signal::TERMINATE,
        Signal::INTERRUPT,
        Signal::QUIT,
        Signal::HANGUP,
    ];

    /// The signal with this number, if the kernel has one (1 to SIGRTMAX).
    pub fn from_number(number: i32) -> Option<Self> {
        (1..=libc::SIGRTMAX())
            .contains(&number)
            .then_some(Self(number))
    }

    /// The signal number, for exit codes and libc calls.
    pub fn number(self) -> i32 {
        self.0
    }

    /// The conventional name, e.g. `SIGTERM`; real-time signals as `SIGRTMIN+N`.
    pub fn name(self) -> String {
        match NAMES.iter().find(|(n, _)| *n == self.0) {
            Some((_, name)) => (*name).to_string(),
            None if self.0 >= libc::SIGRTMIN() => format!("SIGRTMIN+{}", self.0 - libc::SIGRTMIN()),
            None => format!("signal {}", self.0),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A set of signals for the thread's signal mask. Every libc call's result is checked.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// The empty set.
    pub fn empty() -> Self {
        // SAFETY: sigemptyset initialises the zeroed set; it cannot fail on a valid pointer.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            Self(set)
        }
    }

    /// The set holding `signals`.
    pub fn of(signals: &[Signal]) -> io::Result<Self> {
        let mut set = Self::empty();
        for signal in signals {
            // SAFETY: the set is initialised; sigaddset only validates the number.
            check(unsafe { libc::sigaddset(&mut set.0, signal.number()) })?;
        }
        Ok(set)
    }

    /// The set holding those of `signals` the C library lets programs use (glibc keeps two
    /// real-time signals for itself and refuses them).
    pub fn of_valid(signals: &[Signal]) -> Self {
        let mut set = Self::empty();
        for signal in signals {
            // SAFETY: the set is initialised; a refused number is simply not added.
            unsafe { libc::sigaddset(&mut set.0, signal.number()) };
        }
        set
    }

    /// Whether signal `n` is in the set.
    #[cfg(test)]
    pub fn contains(&self, n: i32) -> bool {
        // SAFETY: sigismember only reads the initialised set.
        unsafe { libc::sigismember(&self.0, n) == 1 }
    }

    /// Adds these signals to the calling thread's mask.
    pub fn block(&self) -> io::Result<()> {
        self.apply(libc::SIG_BLOCK).map(drop)
    }

    /// Waits for one of these (blocked) signals and takes it; returns its number.
    pub fn wait(&self) -> i32 {
        loop {
            // SAFETY: the set is initialised; a null info pointer is allowed.
            let n = unsafe { libc::sigwaitinfo(&self.0, std::ptr::null_mut()) };
            if n > 0 {
                return n;
            }
            // EINTR (a handled signal outside the set): wait again.
        }
    }

    /// Removes these signals from the calling thread's mask.
    pub fn unblock(&self) -> io::Result<()> {
        self.apply(libc::SIG_UNBLOCK).map(drop)
    }

    /// Makes this set the calling thread's whole mask; returns the mask it replaced.
    pub fn set_mask(&self) -> io::Result<SigSet> {
        self.apply(libc::SIG_SETMASK)
    }

    fn apply(&self, how: libc::c_int) -> io::Result<SigSet> {
        let mut old = Self::empty();
        // SAFETY: both sets are initialised; pthread_sigmask is the multi-thread-safe mask call
        // (pgwait may have runtime threads), and it returns the error number instead of errno.
        let rc = unsafe { libc::pthread_sigmask(how, &self.0, &mut old.0) };
        match rc {
            0 => Ok(old),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

impl fmt::Debug for SigSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = (1..=libc::SIGRTMAX())
            // SAFETY: sigismember only reads the initialised set.
            .filter(|n| unsafe { libc::sigismember(&self.0, *n) } == 1)
            .map(|n| Signal(n).name())
            .collect();
        write!(f, "SigSet{members:?}")
    }
}

/// Blocks every signal in the calling thread: for pgwait's helper threads (name lookups), so a
/// process-directed signal always reaches the main thread, which handles or waits for it.
pub fn block_all_here() {
    // SAFETY: sigfillset initialises the set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Turns a libc `-1 and errno` result into an `io::Result`.
pub fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Returns `signal` to its default disposition.
pub fn restore_default(signal: Signal) -> io::Result<()> {
    // SAFETY: SIG_DFL has no memory-safety preconditions; the result is checked.
    let previous = unsafe { libc::signal(signal.number(), libc::SIG_DFL) };
    if previous == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `signal` is ignored right now; `None` for numbers the C library keeps for itself.
fn is_ignored(signal: i32) -> Option<bool> {
    // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only reads.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(signal, std::ptr::null(), &mut action) == 0)
            .then_some(action.sa_sigaction == libc::SIG_IGN)
    }
}

/// Sets `signal`'s disposition to `SIG_IGN` or `SIG_DFL`.
fn set_disposition(signal: i32, ignore: bool) -> io::Result<()> {
    // SAFETY: SIG_IGN/SIG_DFL have no memory-safety preconditions; the result is checked.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
        libc::sigemptyset(&mut action.sa_mask);
        check(libc::sigaction(signal, &action, std::ptr::null_mut())).map(drop)
    }
}

/// Puts back exactly the signal state pgwait inherited, for the program that replaces it (or a
/// child): every signal ignored then is ignored again, every other one pgwait ignored (SIGPIPE,
/// by Rust's runtime) is back to its default, and the mask is the inherited one. Handlers need
/// no reset: exec returns caught signals to their defaults. Without the start-up record (see
/// [`Inherited::get`]) the state is the kernel's default: nothing ignored, nothing blocked.
pub fn restore_inherited() -> io::Result<()> {
    let inherited = Inherited::get();
    let mut mask = SigSet::empty();
    for n in 1..=inherited::MAX_SIGNAL {
        if n == libc::SIGKILL || n == libc::SIGSTOP {
            continue;
        }
        let want_ignored = inherited.is_some_and(|i| i.ignored(n));
        if let Some(ignored) = is_ignored(n) {
            if ignored != want_ignored {
                set_disposition(n, want_ignored)?;
            }
        }
        if inherited.is_some_and(|i| i.blocked(n)) {
            // SAFETY: the set is initialised; sigaddset only validates the number.
            check(unsafe { libc::sigaddset(&mut mask.0, n) })?;
        }
    }
    mask.set_mask().map(drop)
}

/// The handlers for a set of signals, all writing into one self-pipe.
#[derive(Debug)]
pub struct Signals {
    watched: Vec<Signal>,
    read: StdUnixStream,
    /// Kept open so the handlers always have somewhere to write.
    _write: StdUnixStream,
}

impl Signals {
    /// Installs handlers for `signals` and unblocks them (a parent may have blocked them, which
    /// would make pgwait deaf to `docker stop`). A signal that was ignored when pgwait started
    /// stays ignored, as a shell leaves it (`nohup pgwait` must not end on SIGHUP). Call once,
    /// before waiting; [`restore_inherited`] undoes it all.
    pub fn install(signals: &[Signal]) -> io::Result<Self> {
        let inherited = Inherited::get();
        let signals: Vec<Signal> = signals
            .iter()
            .copied()
            .filter(|s| !inherited.is_some_and(|i| i.ignored(s.number())))
            .collect();
        let signals = signals.as_slice();
        let (read, write) = StdUnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let fd = write.as_raw_fd();
        for &signal in signals {
            let number = signal.number();
            let byte = u8::try_from(number).map_err(|_| io::ErrorKind::InvalidInput)?;
            let action = move || {
                // send() is async-signal-safe; a full pipe already holds a pending signal.
                // SAFETY: `fd` stays open for the life of the process (`_write` is never
                // dropped before exit or exec), and the buffer is one valid byte.
                unsafe { libc::send(fd, (&byte as *const u8).cast(), 1, libc::MSG_DONTWAIT) };
            };
            // SAFETY: the action only calls send(), which is async-signal-safe.
            unsafe { signal_hook::low_level::register(number, action) }?;
        }
        SigSet::of(signals)?.unblock()?;
        Ok(Self {
            watched: signals.to_vec(),
            read,
            _write: write,
        })
    }

    /// Resolves with the next signal caught. Needs a running tokio runtime.
    pub async fn recv(&self) -> io::Result<Signal> {
        let pipe = UnixStream::from_std(self.read.try_clone()?)?;
        let mut byte = [0u8; 1];
        loop {
            pipe.readable().await?;
            match pipe.try_read(&mut byte) {
                Ok(1) => {
                    return Signal::from_number(i32::from(byte[0]))
                        .ok_or_else(|| io::ErrorKind::InvalidData.into())
                }
                Ok(_) => return Err(io::ErrorKind::UnexpectedEof.into()),
                // Readiness can be spurious.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every signal caught so far, in order (for `--supervise`, once they are blocked: these
    /// arrived before and are forwarded to the child).
    pub fn drain(&self) -> Vec<Signal> {
        let mut caught = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = (&self.read).read(&mut byte) {
            caught.extend(Signal::from_number(i32::from(byte[0])));
        }
        caught
    }

    /// Hands the watched signals back to the kernel's defaults before exec, and reports one that
    /// was caught before that. Done in this order no signal is lost: one arriving before the reset
    /// is in the pipe, one arriving after it acts as it would on the exec'd program.
    pub fn surrender(&self) -> io::Result<Option<Signal>> {
        for &signal in &self.watched {
            restore_default(signal)?;
        }
        let mut byte = [0u8; 1];
        Ok(match (&self.read).read(&mut byte) {
            Ok(1) => Signal::from_number(i32::from(byte[0])),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernel_numbering() {
        let table = [
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGINT, "SIGINT"),
            (libc::SIGWINCH, "SIGWINCH"),
            (libc::SIGUSR2, "SIGUSR2"),
            (libc::SIGRTMIN(), "SIGRTMIN+0"),
            (libc::SIGRTMIN() + 3, "SIGRTMIN+3"),
        ];
        for (number, name) in table {
            assert_eq!(Signal::from_number(number).unwrap().name(), name);
        }
        assert_eq!(Signal::from_number(0), None);
        assert_eq!(Signal::from_number(libc::SIGRTMAX() + 1), None);
    }

    #[test]
    fn a_set_replaces_and_restores_the_thread_mask() {
        // Runs on its own test thread: the mask change is local to it.
        let set = SigSet::of(&[Signal::from_number(libc::SIGUSR2).unwrap()]).unwrap();
        let before = set.set_mask().unwrap();
        let during = before.set_mask().unwrap();
        // SAFETY: reads an initialised set.
        assert_eq!(unsafe { libc::sigismember(&during.0, libc::SIGUSR2) }, 1);
        assert_eq!(format!("{during:?}"), "SigSet[\"SIGUSR2\"]");
    }

    #[test]
    fn an_invalid_signal_number_is_an_error_not_a_crash() {
        let bogus = Signal(4096);
        assert!(SigSet::of(&[bogus]).is_err());
    }

    #[test]
    fn a_caught_signal_reaches_the_pipe_with_its_number() {
        let usr1 = Signal::from_number(libc::SIGUSR1).unwrap();
        let signals = Signals::install(&[usr1]).unwrap();
        // SAFETY: raise() sends to this thread; the handler above catches it.
        unsafe { libc::raise(libc::SIGUSR1) };
        assert_eq!(signals.surrender().unwrap(), Some(usr1));
    }
}
