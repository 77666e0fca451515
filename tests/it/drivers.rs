//! The driver differential test: the real drivers an app would use (pgjdbc, node-postgres, pgx
//! v4, ActiveRecord + ruby-pg, asyncpg, SQLAlchemy + asyncpg) and `pgwait --driver NAME` on the
//! same connection strings from each driver's documentation, against a recording fake peer in a
//! private network namespace; what reaches the wire must match (see tests/differential/).

use std::path::Path;
use std::process::Command;

#[test]
fn pgwait_driver_puts_on_the_wire_what_each_driver_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let harness = root.join("tests/differential/drivers_diff.py");
    let out = Command::new("python3")
        .arg(&harness)
        .arg("--pgwait")
        .arg(env!("CARGO_BIN_EXE_pgwait"))
        .output()
        .expect("cannot run the driver differential harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A missing driver is a harness error (exit 2) that names it: a failure, never a skip.
    assert!(
        out.status.success(),
        "{} exited with {:?} (1: pgwait differs from a driver; 2: harness error, e.g. a driver \
         is missing: run .ci/run, which installs them)\n{stdout}\n{stderr}",
        harness.display(),
        out.status.code()
    );
}
