//! pgwait: wait until PostgreSQL accepts an authenticated query, then exec the given command.
//!
//! `main` only maps the result of [`run`] to an exit status; each step lives in its own module.

mod classify;
mod cli;
mod config;
mod conninfo;
mod exec;
mod exit;
mod passfile;
mod policy;
mod probe;
mod report;
mod signals;
mod tls;
mod wait;

use std::io::Write;
use std::process::ExitCode;

use config::{Config, ProcessEnv};
use exit::Exit;
use probe::PgProbe;
use report::Reporter;
use signals::Signals;
use wait::{Outcome, WaitOptions};

fn main() -> ExitCode {
    let code = run();
    ExitCode::from(u8::try_from(code.code()).unwrap_or(u8::MAX))
}

fn run() -> Exit {
    let config = match configure() {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let (tls, passfile) = match credentials(&config) {
        Ok(loaded) => loaded,
        Err(exit) => return exit,
    };
    let signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => return fail(Exit::Usage, &format!("cannot install signal handlers: {e}")),
    };
    let outcome = match wait_for_server(
        &config,
        PgProbe::new(config.conn.clone(), tls, passfile),
        &signals,
    ) {
        Ok(outcome) => outcome,
        Err(e) => return fail(Exit::Usage, &format!("cannot start the async runtime: {e}")),
    };
    match outcome {
        Outcome::Ready { .. } if config.command.is_empty() => Exit::Ready,
        Outcome::Ready { .. } => exec_command(&config, &signals),
        Outcome::NotReady { .. } => Exit::NotReady,
        Outcome::Rejected { .. } => Exit::Rejected,
        Outcome::Interrupted { signal, .. } => Exit::Signal(signal.number()),
    }
}

/// Parses argv and the environment; prints `--help` and `--version` itself.
fn configure() -> Result<Config, Exit> {
    let opts = match cli::parse(std::env::args_os()) {
        Ok(cli::Parsed::Run(opts)) => *opts,
        Ok(cli::Parsed::Help) => {
            print!("{}", cli::HELP);
            return Err(Exit::Ready);
        }
        Ok(cli::Parsed::Version) => {
            println!("pgwait {}", env!("CARGO_PKG_VERSION"));
            return Err(Exit::Ready);
        }
        Err(e) => return Err(fail(Exit::Usage, &e)),
    };
    let env = ProcessEnv;
    config::build(opts, &env, &config::detect_defaults(&env)).map_err(|e| fail(Exit::Usage, &e))
}

/// Reads the TLS files and the password file once. A TLS setup that cannot work is a permanent
/// failure (exit 3); password-file problems are warnings, as in libpq.
fn credentials(config: &Config) -> Result<(Option<tls::Tls>, passfile::PassFile), Exit> {
    let tls = tls::setup(&config.conn.tls).map_err(|e| fail(Exit::Rejected, &e))?;
    let passfile = match (&config.conn.password, &config.conn.passfile) {
        (None, Some(setting)) => {
            let (file, warnings) = passfile::load(setting);
            for warning in warnings {
                let _ = writeln!(std::io::stderr(), "pgwait: warning: {warning}");
            }
            file
        }
        _ => passfile::PassFile::default(),
    };
    Ok((tls, passfile))
}

fn wait_for_server(
    config: &Config,
    mut probe: PgProbe,
    signals: &Signals,
) -> std::io::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let opts = WaitOptions {
        timeout: config.timeout,
        attempt_timeout: config.attempt_timeout,
        once: config.once,
        retry_on: config.retry_on,
        status_interval: config.status_interval,
        seed: None,
    };
    let mut reporter = Reporter::new(
        std::io::stderr(),
        config.verbosity,
        report::target(&config.conn),
    );
    reporter.start(&config.conn.user, config.timeout);
    let outcome = runtime.block_on(async {
        let interrupt = async {
            match signals.recv().await {
                Ok(signal) => signal,
                // Without the pipes we cannot hear signals; keep waiting rather than fail.
                Err(_) => std::future::pending().await,
            }
        };
        wait::wait(&mut probe, &opts, &mut reporter, interrupt).await
    });
    Ok(outcome)
}

fn exec_command(config: &Config, signals: &Signals) -> Exit {
    if let Some(signal) = signals.surrender() {
        return Exit::Signal(signal.number());
    }
    let error = exec::exec(&config.command);
    let code = match error {
        exec::ExecError::NotFound { .. } => Exit::CommandNotFound,
        exec::ExecError::NotExecutable { .. } => Exit::CannotExecute,
    };
    fail(code, &error)
}

fn fail(exit: Exit, message: &dyn std::fmt::Display) -> Exit {
    let _ = writeln!(std::io::stderr(), "pgwait: {message}");
    exit
}
