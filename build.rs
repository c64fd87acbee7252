//! Records what `certwatch --version` and `certwatch_build_info` name: the compiler
//! version and the commit built.
//!
//! The revision is `CERTWATCH_REVISION` when the build environment sets it (a package
//! built from a tarball can pass the commit it came from), else the full hash of the
//! git checkout's `HEAD` with `-dirty` when tracked files differ from it (untracked
//! files do not count), else `unknown`, as Go exporters report a build without version
//! control information.

use std::path::Path;
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CERTWATCH_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");

    println!("cargo:rerun-if-env-changed=CERTWATCH_REVISION");
    let revision = std::env::var("CERTWATCH_REVISION")
        .ok()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_graphic()))
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CERTWATCH_REVISION={revision}");
}

/// `HEAD`'s hash, `-dirty` when tracked files changed; `None` outside a checkout of
/// this very crate (a tarball unpacked inside some other repository is not that
/// repository's commit).
fn git_revision() -> Option<String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&manifest_dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(&manifest_dir).ok()? {
        return None;
    }
    // Run again when HEAD moves (a commit, a checkout), the index changes, or a file
    // that could make the tree dirty changes.
    for path in ["HEAD", "index", "packed-refs"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            rerun_if_changed(&manifest_dir, &p);
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &reference]) {
            rerun_if_changed(&manifest_dir, &p);
        }
    }
    for tracked in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={tracked}");
    }
    let hash = git(&["rev-parse", "--verify", "HEAD"])?;
    if hash.is_empty() || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_none_or(|changes| !changes.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

fn rerun_if_changed(base: &str, path: &str) {
    let path = Path::new(base).join(path);
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
