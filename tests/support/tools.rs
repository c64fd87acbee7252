//! External programs a test needs (curl, openssl): present, or a skip notice, or, under
//! `CI=true`, a failure.

use std::process::{Command, Stdio};

/// True when every `(program, Debian package)` of `tools` runs (`PROGRAM --version`).
/// Otherwise prints a skip notice naming the missing ones and returns false, or panics
/// under `CI=true`, where a test that cannot run is a failure.
pub fn require(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(program, _)| {
            !Command::new(program)
                .arg(if *program == "openssl" {
                    "version"
                } else {
                    "--version"
                })
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|(program, package)| format!("{program} (Debian package `{package}`)"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!("missing: {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and this test cannot run: {why}");
    }
    eprintln!("skipping: {why}");
    false
}
