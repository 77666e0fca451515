//! The integration tests: one crate (as ripgrep and fd keep theirs), so the harness compiles
//! once, the PostgreSQL template is made by one `initdb` per run, and every helper in
//! `support/` is used by some test. Each module runs the built binary against real servers
//! the harness starts; fake peers only for what no real server does on demand.

mod support;

mod architecture;
mod cli;
mod cloud;
mod conditions;
mod containers;
mod credentials;
mod diagnose;
mod dialects;
mod differential;
mod drivers;
mod examples;
mod fake;
mod gate;
mod hostile;
mod json;
mod lag;
mod libpq;
mod migrations;
mod pgbouncer;
mod replica;
mod supervise;
mod targets;
pub mod tls;
