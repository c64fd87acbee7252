//! The real binary with broken log sinks and terminals: a closed or full stderr costs
//! log lines (counted in `certwatch_log_messages_dropped_total`), never the process;
//! command output to a closed stdout keeps the exit code; JSON lines carry one
//! `target`; text logs are coloured only on a terminal without `NO_COLOR`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::Duration;

use certwatch::metrics::names::LOG_MESSAGES_DROPPED;
use support::exporter::Exporter;
use support::{Harness, Scrape};
use tokio::time::Instant;

/// How long `certwatch` may take to stop after SIGTERM: its shutdown grace.
const GRACE: Duration = Duration::from_secs(5);

/// The longest wait for any other condition.
const WAIT: Duration = Duration::from_secs(30);

/// A pause between polls of a condition.
const POLL: Duration = Duration::from_millis(50);

fn certwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certwatch"))
}

/// The write end of a pipe whose read end is already closed: every write to it fails
/// with EPIPE, from the first on.
fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn true");
    let writer = reader.stdin.take().expect("stdin");
    reader.wait().expect("wait for true");
    Stdio::from(writer)
}

/// A loopback port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A configuration of `n` targets on closed loopback ports, probed every second: a
/// `probe failed` warning per target per second.
fn failing_targets(h: &Harness, n: usize) -> String {
    let port = free_port();
    let mut yaml = String::from("defaults:\n  interval: 1s\n  timeout: 1s\ntargets:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - address: 127.0.{}.{}:{port}\n",
            i / 250,
            i % 250 + 1
        ));
    }
    h.write("certwatch.yml", &yaml).to_str().unwrap().to_owned()
}

/// A `certwatch serve` child whose stderr is `stderr`, stopped when dropped.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `certwatch` with `args` on a free port, and waits until `/-/healthy`
    /// answers (no log line is needed: stderr may be broken from the start).
    fn start(dir: &Path, args: &[&str], stderr: Stdio) -> Serve {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = certwatch()
            .current_dir(dir)
            .args(["--listen", &addr.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn certwatch");
        let mut serve = Serve { child, addr };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = serve.child.try_wait().expect("try_wait") {
                panic!("certwatch exited during start-up: {status}");
            }
            if serve.get("/-/healthy").is_some_and(|(code, _)| code == 200) {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "/-/healthy not up within {WAIT:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// `GET path` over HTTP/1.0, every step bounded: status and body, or `None`.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let (head, body) = answer.split_once("\r\n\r\n")?;
        let code = head.split(' ').nth(1)?.parse().ok()?;
        Some((code, body.to_owned()))
    }

    /// `certwatch_log_messages_dropped_total` now, and that it is typed a counter.
    fn dropped(&self) -> f64 {
        let (code, body) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(code, 200);
        assert!(
            body.contains(&format!("# TYPE {LOG_MESSAGES_DROPPED} counter\n")),
            "{body}"
        );
        Scrape::parse(&body).value(LOG_MESSAGES_DROPPED, &[])
    }

    /// Scrapes `/metrics` (each scrape logs a debug line) until some log lines were
    /// dropped; returns how many.
    fn scrape_until_lines_are_dropped(&self) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let dropped = self.dropped();
            if dropped > 0.0 {
                return dropped;
            }
            assert!(
                Instant::now() < deadline,
                "no log line dropped within {WAIT:?}"
            );
        }
    }

    /// SIGTERM, then the exit status and how long the exit took; SIGKILL if it took
    /// longer than [`WAIT`].
    fn terminate(mut self) -> (ExitStatus, Duration) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let sent = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < WAIT,
                "certwatch still running {WAIT:?} after SIGTERM"
            );
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_closed_stderr_costs_log_lines_not_the_process() {
    let h = Harness::new();
    let config = failing_targets(&h, 20);
    let serve = Serve::start(
        h.path(),
        &["--config", &config, "--log-level", "debug"],
        closed_pipe(),
    );
    let dropped = serve.scrape_until_lines_are_dropped();
    // Probes keep failing and logging; the process keeps serving.
    let later = Instant::now() + WAIT;
    while serve.dropped() <= dropped {
        assert!(Instant::now() < later, "the log count stopped growing");
        std::thread::sleep(POLL);
    }
    assert_eq!(serve.get("/-/healthy").map(|(code, _)| code), Some(200));
    let (status, took) = serve.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(took < GRACE, "exit took {took:?}");
}

#[test]
fn a_full_stderr_costs_log_lines_and_sigterm_still_stops_it_within_the_grace() {
    let h = Harness::new();
    let config = failing_targets(&h, 200);
    let mut serve = Serve::start(
        h.path(),
        &["--config", &config, "--log-level", "debug"],
        Stdio::piped(),
    );
    // Held open and never read: once the pipe's buffer is full, every write blocks.
    let unread: ChildStderr = serve.child.stderr.take().expect("stderr");
    serve.scrape_until_lines_are_dropped();
    assert_eq!(serve.get("/-/healthy").map(|(code, _)| code), Some(200));
    let (status, took) = serve.terminate();
    drop(unread);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(took < GRACE, "exit took {took:?}");
}

/// Runs `certwatch args` to completion with stdin null and the given stdout and
/// stderr, bounded by coreutils' `timeout`.
fn run(args: &[&str], stdout: Stdio, stderr: Stdio) -> ExitStatus {
    Command::new("timeout")
        .arg(format!("{}s", WAIT.as_secs()))
        .arg(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .expect("run certwatch")
}

#[test]
fn check_to_a_closed_stdout_keeps_its_nagios_exit_code() {
    let target = format!("127.0.0.1:{}", free_port());
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["check", target.as_str(), "--log-level", "debug"];
        args.extend_from_slice(extra);
        let open = Command::new(env!("CARGO_BIN_EXE_certwatch"))
            .args(&args)
            .output()
            .expect("run certwatch");
        let report = String::from_utf8_lossy(&open.stdout);
        assert!(report.contains("CRITICAL"), "{report}");
        assert_eq!(open.status.code(), Some(2), "{open:?}");
        let closed = run(&args, closed_pipe(), closed_pipe());
        assert_eq!(closed.code(), open.status.code(), "{args:?}: {closed}");
    }
}

#[test]
fn config_check_to_a_closed_stdout_still_exits_0_or_1() {
    let h = Harness::new();
    let good = h.write("good.yml", "targets:\n  - address: 127.0.0.1:443\n");
    let bad = h.write("bad.yml", "defaults:\n  interval: 5 minutes\n");
    let good = run(
        &["config", "check", good.to_str().unwrap()],
        closed_pipe(),
        closed_pipe(),
    );
    assert_eq!(good.code(), Some(0), "{good}");
    let bad = run(
        &["config", "check", bad.to_str().unwrap()],
        closed_pipe(),
        closed_pipe(),
    );
    assert_eq!(bad.code(), Some(1), "{bad}");
}

/// How often `key` opens a key in the JSON text `line`.
fn key_count(line: &str, key: &str) -> usize {
    line.matches(&format!("\"{key}\":")).count()
}

/// The first JSON log line of `exporter` for which `matches` holds, waiting at most
/// [`WAIT`] in all (probe failures keep logging, so a wait per line could go on).
fn wait_for_json(
    exporter: &Exporter,
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = exporter.logs.recv_timeout(left) else {
            panic!("no log line with {what} within {WAIT:?}; lines seen: {seen:#?}");
        };
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
            if matches(&json) {
                return json;
            }
        }
        seen.push(line);
    }
}

#[test]
fn json_lines_have_one_target_the_probe_target_and_the_module_apart() {
    let h = Harness::new();
    let port = free_port();
    let config = h.write(
        "certwatch.yml",
        &format!("defaults:\n  interval: 1s\n  timeout: 1s\ntargets:\n  - name: mail\n    address: 127.0.0.1:{port}\n"),
    );
    let exporter = Exporter::start(h.path(), &["--config", config.to_str().unwrap()]);
    let failed = wait_for_json(&exporter, "a probe failure", |j| {
        j["message"] == "probe failed"
    });
    exporter.signal("HUP");
    let audit = wait_for_json(&exporter, "the reload's audit event", |j| {
        j["audit"] == true && j["event"] == "config_reload"
    });
    let (status, rest) = exporter.stop_with_logs();
    assert!(status.success(), "{status}");

    assert_eq!(audit["module"], "certwatch::audit", "{audit}");
    assert_eq!(failed["target"], "mail");
    assert_eq!(failed["module"], "certwatch::source");
    assert_eq!(failed["level"], "WARN");
    assert!(failed["timestamp"].is_string());
    assert!(failed["stage"].is_string() && failed["reason"].is_string());
    assert!(audit.get("target").is_none(), "{audit}");
    assert_eq!(audit["who"], "SIGHUP");
    for line in &rest {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(json.is_object(), "{line}");
        assert!(key_count(line, "target") <= 1, "{line}");
        assert_eq!(key_count(line, "module"), 1, "{line}");
    }
}

/// `serve` with a file it refuses: one ERROR log line (coloured on a terminal), then
/// exit 1.
fn refused_config(h: &Harness) -> String {
    h.write("bad.yml", "defaults:\n  interval: 5 minutes\n")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn text_logs_to_a_pipe_are_not_coloured() {
    let h = Harness::new();
    let out = certwatch()
        .args(["--listen", "127.0.0.1:0", "--config", &refused_config(&h)])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run certwatch");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ERROR"), "{stderr}");
    assert!(!out.stderr.contains(&0x1b), "ESC in {stderr:?}");
}

#[test]
fn text_logs_on_a_terminal_are_coloured_unless_no_color_is_set() {
    if !support::tools::require(&[("script", "util-linux")]) {
        return;
    }
    let h = Harness::new();
    let command = format!(
        "'{}' --listen 127.0.0.1:0 --config '{}'",
        env!("CARGO_BIN_EXE_certwatch"),
        refused_config(&h)
    );
    // `script` runs the command on a pseudo-terminal and copies what it wrote.
    let on_a_terminal = |no_color: Option<&str>| {
        let mut script = Command::new("timeout");
        script
            .arg(format!("{}s", WAIT.as_secs()))
            .args(["script", "-qfec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .env_remove("NO_COLOR");
        if let Some(value) = no_color {
            script.env("NO_COLOR", value);
        }
        let out = script.output().expect("run script");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("ERROR"), "{no_color:?}: {text:?} {out:?}");
        assert_eq!(out.status.code(), Some(1), "{no_color:?}: {text:?}");
        out.stdout.contains(&0x1b)
    };
    assert!(on_a_terminal(None), "no colour on a terminal");
    assert!(on_a_terminal(Some("")), "an empty NO_COLOR counts as unset");
    assert!(!on_a_terminal(Some("1")), "colour despite NO_COLOR=1");
}
