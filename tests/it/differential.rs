//! The differential test: real libpq 18 (from psycopg's binary wheel, through ctypes), real
//! psql 15 and pgwait on the same connection inputs, against a recording fake peer in a private
//! network namespace; what reaches the wire must match libpq's (see tests/differential/).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The virtualenv `.ci/run` creates, where psycopg[binary] brings libpq 18.
fn venv() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pgwait-venv")
}

/// libpq 18 as the harness looks for it: psycopg_binary.libs/libpq-*.so.5.* in the venv.
fn libpq_installed() -> bool {
    let Ok(lib) = std::fs::read_dir(venv().join("lib")) else {
        return false;
    };
    lib.flatten().any(|python| {
        let libs = python.path().join("site-packages/psycopg_binary.libs");
        std::fs::read_dir(libs).is_ok_and(|files| {
            files.flatten().any(|f| {
                let name = f.file_name().to_string_lossy().into_owned();
                name.starts_with("libpq-") && name.contains(".so.5.")
            })
        })
    })
}

#[test]
fn pgwait_puts_on_the_wire_what_libpq_18_does() {
    assert!(
        libpq_installed(),
        "libpq 18 is not installed: run .ci/run (it installs psycopg[binary] into {})",
        venv().display()
    );
    let python = venv().join("bin/python3");
    let python = if python.exists() {
        python
    } else {
        PathBuf::from("python3")
    };
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/libpq_diff.py");
    let out = Command::new(&python)
        .arg(&harness)
        .arg("--pgwait")
        .arg(env!("CARGO_BIN_EXE_pgwait"))
        .output()
        .expect("cannot run the differential harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} exited with {:?} (1: pgwait differs from libpq 18; 2: harness error)\n{stdout}\n{stderr}",
        harness.display(),
        out.status.code()
    );
}
