//! pgwait: wait until PostgreSQL accepts an authenticated query, then exec the given command.
//!
//! `main` only maps the result of [`run`] to an exit status; each step lives in its own module
//! (ARCHITECTURE.md draws the data path). Every line on stderr goes through the one [`Reporter`].

mod classify;
mod cli;
mod condition;
mod config;
mod config_error;
mod conninfo;
mod credentials;
mod diagnose;
mod dialect;
mod event;
mod exec;
mod exit;
mod help;
mod migrations;
mod passfile;
mod policy;
mod probe;
mod report;
mod signals;
mod sql;
mod supervise;
mod tls;
mod token;
mod utc;
mod wait;
mod x509;

#[cfg(test)]
mod fuzz;

use std::ffi::OsString;
use std::io::Stderr;
use std::process::ExitCode;

use config::{Config, Environment, ProcessEnv, Target};
use credentials::Credentials;
use event::{Event, Sink};
use exit::Exit;
use probe::PgProbe;
use report::{LogSettings, Reporter};
use signals::{Signal, Signals};
use token::Minter;
use wait::Outcome;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let env = ProcessEnv;
    // Until the configuration is read, errors use the format asked for, if it can be told.
    let early = LogSettings {
        format: config::early_log_format(args.get(1..).unwrap_or_default(), &env),
        ..LogSettings::default()
    };
    let mut reporter = Reporter::new(std::io::stderr(), early);
    ExitCode::from(run(args, &env, &mut reporter).code())
}

fn run(args: Vec<OsString>, env: &dyn Environment, reporter: &mut Reporter<Stderr>) -> Exit {
    let config = match configure(args, env, reporter) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    reporter.configure(config.log);
    reporter.name_targets(config.targets.len() > 1);
    if let Some(settings) = config.diagnose {
        return diagnose_all(&config, settings, reporter);
    }
    let mut probes = Vec::with_capacity(config.targets.len());
    for target in &config.targets {
        match probe_for(target, &config.conditions, config.token.as_ref(), reporter) {
            Ok(probe) => probes.push(probe),
            Err(exit) => return exit,
        }
    }
    let signals = match Signals::install(&Signal::ENDS_WAIT) {
        Ok(signals) => signals,
        Err(error) => return internal(reporter, "cannot install signal handlers", &error),
    };
    let outcomes = match wait_for(&config, probes, &signals, reporter) {
        Ok(outcomes) => outcomes,
        Err(error) => return internal(reporter, "cannot start the async runtime", &error),
    };
    match (Exit::of_all(&outcomes), &config.command, &config.supervise) {
        (Exit::Ready, Some(command), Some(options)) => {
            supervise_command(command, options, &signals, reporter)
        }
        (Exit::Ready, Some(command), None) => exec_command(command, &signals, reporter),
        (exit, _, _) => exit,
    }
}

/// Parses argv and the environment; prints `--help` and `--version` itself (to stdout).
fn configure(
    args: Vec<OsString>,
    env: &dyn Environment,
    reporter: &mut Reporter<Stderr>,
) -> Result<Config, Exit> {
    let opts = match cli::parse(args) {
        Ok(cli::Parsed::Run(opts)) => *opts,
        Ok(cli::Parsed::Help) => {
            print!("{}", help::help());
            return Err(Exit::Ready);
        }
        Ok(cli::Parsed::Version) => {
            println!("pgwait {}", env!("CARGO_PKG_VERSION"));
            return Err(Exit::Ready);
        }
        Err(error) => {
            reporter.emit(&Event::Usage(&error));
            return Err(Exit::Usage);
        }
    };
    config::build(opts, env, &config::detect_defaults(env)).map_err(|error| {
        reporter.emit(&Event::Config(&error));
        Exit::Usage
    })
}

/// Reads the TLS files, and the password files (again later if they change). A TLS setup that
/// cannot work is a permanent failure (exit 3); password-file problems are warnings, as in libpq.
fn probe_for(
    target: &Target,
    conditions: &[condition::Condition],
    token: Option<&token::Settings>,
    reporter: &mut Reporter<Stderr>,
) -> Result<PgProbe, Exit> {
    let conn = &target.conn;
    let tls = tls::setup(&conn.tls).map_err(|error| {
        reporter.emit(&Event::TlsSetup(&error));
        Exit::Rejected
    })?;
    let (credentials, notes) = Credentials::new(conn);
    for note in &notes {
        if let credentials::Note::Warning(warning) = note {
            reporter.emit(&Event::Warning(warning));
        }
    }
    if let Some(from) = target.tls_raised {
        reporter.emit(&Event::TlsRaised {
            target: event_target(target, conditions),
            from,
        });
    }
    let minter = token.cloned().map(Minter::new);
    Ok(PgProbe::new(
        conn.clone(),
        tls,
        credentials,
        conditions.to_vec(),
        minter,
    ))
}

/// Waits for every target together, in one single-threaded runtime.
fn wait_for(
    config: &Config,
    probes: Vec<PgProbe>,
    signals: &Signals,
    reporter: &mut Reporter<Stderr>,
) -> std::io::Result<Vec<Outcome>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Lookup threads never take a signal meant for the wait (or, later, the supervisor).
        .on_thread_start(signals::block_all_here)
        .build()?;
    let jobs: Vec<_> = probes
        .into_iter()
        .zip(&config.targets)
        .map(|(probe, target)| wait::Job {
            probe,
            target: event_target(target, &config.conditions),
            attempt_timeout: target.attempt_timeout,
        })
        .collect();
    for job in &jobs {
        reporter.emit(&Event::Start {
            target: job.target,
            timeout: config.wait.timeout,
        });
    }
    let outcomes = runtime.block_on(async {
        let interrupt = async {
            match signals.recv().await {
                Ok(signal) => signal,
                // Without the pipe we cannot hear signals; keep waiting rather than fail.
                Err(_) => std::future::pending().await,
            }
        };
        wait::wait_all(jobs, &config.wait, reporter, interrupt).await
    });
    // A name lookup stuck in getaddrinfo cannot be cancelled; dropping the runtime would join
    // its thread and hold the exit (or the exec) until the resolver gives up. Leave it behind:
    // exit and exec end every thread anyway.
    runtime.shutdown_background();
    Ok(outcomes)
}

/// What events name a target by.
fn event_target<'a>(
    target: &'a Target,
    conditions: &'a [condition::Condition],
) -> event::Target<'a> {
    let conn = &target.conn;
    event::Target {
        endpoints: &conn.endpoints,
        dbname: &conn.dbname,
        user: &conn.user,
        attrs: conn.session_attrs,
        conditions,
        dialect: target.dialect,
    }
}

/// `--supervise`: the command runs as a child; pgwait forwards, reaps, and exits as it does.
fn supervise_command(
    command: &exec::Command,
    options: &supervise::Options,
    signals: &Signals,
    reporter: &mut Reporter<Stderr>,
) -> Exit {
    let ended = supervise::supervise(
        command,
        options,
        || signals.drain(),
        |notice| match notice {
            supervise::Notice::Started { pid } => {
                reporter.emit(&Event::Supervising { command, pid })
            }
            supervise::Notice::NoSubreaper(error) => {
                reporter.emit(&Event::NoSubreaper { error: &error })
            }
        },
    );
    match ended {
        supervise::Ended::Exited(code) => Exit::ChildExited(code),
        supervise::Ended::Killed(signal) => Exit::ChildKilled(signal),
        supervise::Ended::SpawnFailed(error) => {
            reporter.emit(&Event::ExecFailed(&error));
            Exit::from(&error)
        }
        supervise::Ended::Internal(what, error) => internal(reporter, what, &error),
    }
}

fn exec_command(
    command: &exec::Command,
    signals: &Signals,
    reporter: &mut Reporter<Stderr>,
) -> Exit {
    match signals.surrender() {
        Ok(Some(signal)) => return Exit::Interrupted(signal),
        Ok(None) => {}
        Err(error) => return internal(reporter, "cannot reset signal handlers", &error),
    }
    reporter.emit(&Event::Exec { command });
    let error = exec::exec(command);
    reporter.emit(&Event::ExecFailed(&error));
    Exit::from(&error)
}

/// `--diagnose`: the checklist for each target in turn, reported on stdout; the exit code is the
/// worst verdict, as `--once` would give it.
fn diagnose_all(
    config: &Config,
    settings: diagnose::Settings,
    reporter: &mut Reporter<Stderr>,
) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return internal(reporter, "cannot start the async runtime", &error),
    };
    let mut worst = Exit::Ready;
    let mut out = std::io::stdout().lock();
    for target in &config.targets {
        let tls = tls::setup(&target.conn.tls);
        let input = diagnose::Input {
            conn: &target.conn,
            origins: &target.origins,
            tls: tls.as_ref().map(Option::as_ref),
            settings,
            limit: target.attempt_timeout,
            conditions: &config.conditions,
            token: config.token.as_ref(),
            retry_on: config.wait.retry_on,
        };
        let diagnosis = runtime.block_on(diagnose::run(input));
        let event_target = event_target(target, &config.conditions);
        let format = config.log.format;
        // stdout may be closed; the exit code still says the verdict.
        let _ = report::write_diagnosis(&mut out, format, &event_target, &diagnosis);
        worst = match (diagnosis.verdict, worst) {
            (diagnose::Verdict::Rejected(_), _) | (_, Exit::Rejected) => Exit::Rejected,
            (diagnose::Verdict::NotReady(_), _) => Exit::NotReady,
            (_, other) => other,
        };
    }
    runtime.shutdown_background();
    worst
}

fn internal(reporter: &mut Reporter<Stderr>, what: &'static str, error: &std::io::Error) -> Exit {
    reporter.emit(&Event::Internal { what, error });
    Exit::Internal
}
