//! Files that are not what they should be, through the real binary: a FIFO, a device,
//! a directory or an oversized file named as the configuration, a `ca_file`, the web
//! configuration or its certificate is refused at once with a clear error, never read
//! until it blocks or fills memory; and numbers out of range are refused where they
//! are written. Every run of the binary is bounded by a timeout: a hang fails the test
//! instead of hanging it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::exporter::Exporter;
use support::pki::Ca;
use support::Harness;

/// How long a refusal may take. The old code never answered on a FIFO, and read
/// /dev/zero until memory ran out.
const PROMPT: Duration = Duration::from_secs(15);

/// Runs certwatch with `args` in `dir`, killing it if it has not exited within
/// [`PROMPT`].
fn certwatch_in(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run certwatch");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PROMPT) {
        Ok(output) => output.expect("wait for certwatch"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("certwatch {args:?} did not answer within {PROMPT:?}: it blocked on a file");
        }
    }
}

fn mkfifo(path: &Path) -> PathBuf {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    path.to_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn config_check_refuses_a_fifo_a_device_a_directory_and_an_oversized_file_at_once() {
    let h = Harness::new();
    let fifo = mkfifo(&h.path().join("certwatch.yml"));
    let directory = h.path().join("conf.d");
    std::fs::create_dir(&directory).expect("mkdir");
    let oversized = h.path().join("huge.yml");
    let file = std::fs::File::create(&oversized).expect("create");
    // Sparse: 65 MiB that take no disk, one more than the 64 MiB limit.
    file.set_len(65 * 1024 * 1024).expect("set_len");
    drop(file);
    for (path, says) in [
        (
            fifo.as_path(),
            "it is a named pipe (FIFO), not a regular file",
        ),
        (
            Path::new("/dev/zero"),
            "it is a character device, not a regular file",
        ),
        (directory.as_path(), "it is a directory, not a regular file"),
        (oversized.as_path(), "it is larger than 64 MiB (65 MiB)"),
    ] {
        let out = certwatch_in(h.path(), &["config", "check", path.to_str().unwrap()]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {out:?}", path.display());
        assert!(
            stdout.starts_with(&format!("cannot read {}: {says}", path.display())),
            "{}: {stdout}",
            path.display()
        );
    }
}

#[test]
fn config_check_places_a_fifo_or_device_named_as_a_pem_file_at_its_key() {
    let h = Harness::new();
    mkfifo(&h.path().join("ca.pem"));
    let file = h.write(
        "certwatch.yml",
        "targets:\n  - address: 127.0.0.1:443\n    tls:\n      ca_file: ca.pem\n  - address: 127.0.0.1:444\n    tls:\n      client_cert_file: /dev/zero\n      client_key_file: /dev/zero\n",
    );
    let out = certwatch_in(h.path(), &["config", "check", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("certwatch.yml:4:16: cannot read ")
            && lines[0].contains("ca.pem: it is a named pipe (FIFO)"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("certwatch.yml:7:25: cannot read /dev/zero: it is a character device"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("certwatch.yml:8:24: cannot read /dev/zero"),
        "{stdout}"
    );
}

#[test]
fn config_check_refuses_numbers_out_of_range_at_their_line_and_column() {
    let h = Harness::new();
    let file = h.write(
        "certwatch.yml",
        "concurrency: 2305843009213693952\nprobe:\n  max_in_flight: 0\ndefaults:\n  interval: 1000y\n  timeout: 0\n",
    );
    let out = certwatch_in(h.path(), &["config", "check", file.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].ends_with(
            "certwatch.yml:1:14: concurrency is 2305843009213693952, out of range: use 1 to 100000; each probe in flight holds a connection and a task, and the scheduler's semaphore has a hard limit"
        ),
        "{stdout}"
    );
    assert!(
        lines[1].contains("certwatch.yml:3:18: probe.max_in_flight is 0, out of range"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("certwatch.yml:5:13: interval 365000d is too long: use at most 30d"),
        "{stdout}"
    );
    assert!(
        lines[3].contains("certwatch.yml:6:12: timeout must be longer than 0s"),
        "{stdout}"
    );
}

#[test]
fn serve_refuses_concurrency_out_of_range_instead_of_panicking() {
    let h = Harness::new();
    h.write("certwatch.yml", "concurrency: 2305843009213693952\n");
    let out = certwatch_in(h.path(), &["--listen", "127.0.0.1:0"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("certwatch.yml:1:14: concurrency is 2305843009213693952, out of range"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn check_refuses_a_fifo_as_ca_file_at_once_and_says_unknown() {
    let h = Harness::new();
    let fifo = mkfifo(&h.path().join("ca.pem"));
    let out = certwatch_in(
        h.path(),
        &["check", "127.0.0.1:1", "--ca-file", fifo.to_str().unwrap()],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "UNKNOWN: {out:?}");
    assert!(
        stdout.starts_with("CERTWATCH UNKNOWN - cannot read ")
            && stdout.contains("ca.pem: it is a named pipe (FIFO), not a regular file"),
        "{stdout}"
    );
}

#[test]
fn check_refuses_a_timeout_out_of_range() {
    let h = Harness::new();
    let out = certwatch_in(h.path(), &["check", "127.0.0.1:1", "--timeout", "1000y"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "UNKNOWN: {out:?}");
    assert!(
        stdout.contains("timeout 365000d is too long: use at most 10m"),
        "{stdout}"
    );
}

#[test]
fn serve_refuses_a_web_config_whose_cert_file_is_a_device_at_its_line_and_column() {
    let h = Harness::new();
    h.write(
        "web.yml",
        "tls_server_config:\n  cert_file: /dev/zero\n  key_file: /dev/zero\n",
    );
    let out = certwatch_in(
        h.path(),
        &["--listen", "127.0.0.1:0", "--web.config.file", "web.yml"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "web.yml:2:14: cannot read /dev/zero: it is a character device, not a regular file"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("web.yml:3:13: cannot read /dev/zero"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_web_config_that_is_a_fifo_or_too_large() {
    let h = Harness::new();
    mkfifo(&h.path().join("web.yml"));
    let out = certwatch_in(
        h.path(),
        &["--listen", "127.0.0.1:0", "--web.config.file", "web.yml"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read web.yml: it is a named pipe (FIFO)"),
        "{stderr}"
    );
    let big = h.path().join("big.yml");
    std::fs::File::create(&big)
        .expect("create")
        .set_len(1024 * 1024 + 1)
        .expect("set_len");
    let out = certwatch_in(
        h.path(),
        &["--listen", "127.0.0.1:0", "--web.config.file", "big.yml"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read big.yml: it is larger than 1 MiB"),
        "{stderr}"
    );
}

#[test]
fn a_reload_onto_a_fifo_answers_at_once_and_keeps_serving() {
    let root = Ca::root("hostile files root");
    let h = Harness::new();
    h.write("ca.pem", &root.pem);
    h.write(
        "certwatch.yml",
        "defaults:\n  trust: none\n  tls:\n    ca_file: ca.pem\n",
    );
    let exporter = Exporter::start(h.path(), &["--config", "certwatch.yml"]);

    // A ca_file swapped for a FIFO.
    std::fs::remove_file(h.path().join("ca.pem")).expect("rm");
    mkfifo(&h.path().join("ca.pem"));
    let (status, body) = exporter.request("POST", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("certwatch.yml:4:14: cannot read ")
            && body.contains("ca.pem: it is a named pipe (FIFO)"),
        "{body}"
    );
    assert_eq!(exporter.get("/-/healthy").0, 200);

    // The configuration file itself swapped for a FIFO.
    std::fs::remove_file(h.path().join("certwatch.yml")).expect("rm");
    mkfifo(&h.path().join("certwatch.yml"));
    let (status, body) = exporter.request("POST", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("cannot read certwatch.yml: it is a named pipe (FIFO)"),
        "{body}"
    );
    assert_eq!(exporter.get("/-/healthy").0, 200);
    assert!(exporter.stop().success());
}
