//! The shipped binary: the documented static release build (README), built once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
pub const STATIC_FLAGS: &str =
    "-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"";

/// Path of a static release artefact (`pgwait` or the `demo_app` example).
pub fn static_binary(name: &str) -> PathBuf {
    let dir = Path::new(ROOT).join("target/x86_64-unknown-linux-gnu/release");
    if name == "demo_app" {
        dir.join("examples/demo_app")
    } else {
        dir.join(name)
    }
}

/// The documented static build, for pgwait and the demo app (the same command everywhere, so
/// cargo builds it once).
pub fn build_static() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(ROOT)
            .env("RUSTFLAGS", STATIC_FLAGS)
            .args([
                "build",
                "--release",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--bin",
                "pgwait",
                "--example",
                "demo_app",
            ])
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "static build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
