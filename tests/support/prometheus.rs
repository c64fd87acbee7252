//! Real Prometheus and Alertmanager servers for the end-to-end test.
//!
//! Each [`Server`] is a private instance of the Debian binaries ([`PROMETHEUS`] from the
//! package `prometheus`, [`ALERTMANAGER`] from `prometheus-alertmanager`): its own
//! configuration, storage and log in a temporary directory, listening only on 127.0.0.1
//! at a free port (Alertmanager with clustering disabled). It runs under coreutils'
//! `timeout`, so that it exits after [`EXIT_AFTER_SECS`] even when a killed test never
//! stops it, and it is stopped with SIGTERM (then SIGKILL) when the value is dropped,
//! also when the test panics. The machine's own services, /etc/prometheus and the
//! default ports are never touched.
//!
//! [`PROMETHEUS_NEED`] and [`ALERTMANAGER_NEED`] are what a test lists as its needs
//! (`support/tools.rs`); [`require`] is the older skip notice for a standard-harness
//! test. [`get`] is a minimal HTTP/1.0
//! client for their APIs and [`encode`] percent-encodes a query parameter.
//! [`WebhookSink`] stands in for Alertmanager's webhook receivers.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::time::Instant;

use super::tools::{self, Need, Remedy};

/// The Prometheus server (Debian package `prometheus`).
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The Alertmanager (Debian package `prometheus-alertmanager`).
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// The longest wait for a started server to answer `GET /-/ready` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Instances tried (each on a fresh port) before giving up, for port collisions.
const START_ATTEMPTS: usize = 3;

/// Every server exits after this, whatever happens to the test process.
pub const EXIT_AFTER_SECS: u32 = 300;

/// The Prometheus server, and coreutils' `timeout` that bounds its life.
pub const PROMETHEUS_NEED: Need = Need {
    name: "prometheus",
    remedy: Remedy::Install("prometheus"),
    check: prometheus_installed,
};

/// The Alertmanager, and coreutils' `timeout` that bounds its life.
pub const ALERTMANAGER_NEED: Need = Need {
    name: "alertmanager",
    remedy: Remedy::Install("prometheus-alertmanager"),
    check: alertmanager_installed,
};

fn prometheus_installed() -> Result<(), String> {
    tools::file_exists(PROMETHEUS)?;
    tools::program_runs("timeout", &["--version"])
}

fn alertmanager_installed() -> Result<(), String> {
    tools::file_exists(ALERTMANAGER)?;
    tools::program_runs("timeout", &["--version"])
}

/// Why the end-to-end test cannot run here.
pub fn available() -> Result<(), String> {
    for (binary, package) in [
        (PROMETHEUS, "prometheus"),
        (ALERTMANAGER, "prometheus-alertmanager"),
    ] {
        if !Path::new(binary).is_file() {
            return Err(format!("{binary} is missing (Debian package `{package}`)"));
        }
    }
    if Command::new("timeout")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        return Err("coreutils' `timeout` is missing".into());
    }
    Ok(())
}

/// The older way, for a standard-harness test: true when both servers can run.
/// Otherwise prints a skip notice and returns false (and the test passes), or panics
/// under `CI=true`, where an end-to-end test that cannot run is a failure.
pub fn require() -> bool {
    match available() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the Prometheus end-to-end test cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping: {why}");
            false
        }
    }
}

/// The first line of `binary --version`, e.g. `prometheus, version 2.42.0+ds (...)`.
pub fn version(binary: &str) -> String {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            text
        })
        .unwrap_or_default();
    out.lines().next().unwrap_or("?").to_owned()
}

/// A running Prometheus or Alertmanager; stopped when dropped.
pub struct Server {
    /// `prometheus` or `alertmanager`, for messages.
    pub name: &'static str,
    /// Where it serves HTTP.
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts Prometheus with `config` (prometheus.yml) and `files` (name, contents)
    /// beside it, for `rule_files` to name relatively; waits until it is ready.
    pub fn prometheus(config: &str, files: &[(&str, &str)]) -> Server {
        Self::start("prometheus", PROMETHEUS, config, files, |dir, port| {
            vec![
                format!("--config.file={}", dir.join("config.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=info".into(),
            ]
        })
    }

    /// Starts Alertmanager with `config` (alertmanager.yml), clustering disabled; waits
    /// until it is ready.
    pub fn alertmanager(config: &str) -> Server {
        Self::start("alertmanager", ALERTMANAGER, config, &[], |dir, port| {
            vec![
                format!("--config.file={}", dir.join("config.yml").display()),
                format!("--storage.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                // Empty: no gossip listener, no peers.
                "--cluster.listen-address=".into(),
                "--log.level=info".into(),
            ]
        })
    }

    fn start(
        name: &'static str,
        binary: &str,
        config: &str,
        files: &[(&str, &str)],
        args: impl Fn(&Path, u16) -> Vec<String>,
    ) -> Server {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix(&format!("certwatch-e2e-{name}-"))
                .tempdir()
                .expect("tempdir");
            std::fs::write(dir.path().join("config.yml"), config).expect("write config");
            for (file, contents) in files {
                std::fs::write(dir.path().join(file), contents).expect("write file");
            }
            let port = free_port();
            let log = File::create(dir.path().join("log")).expect("log file");
            let child = Command::new("timeout")
                .args([
                    "-s",
                    "TERM",
                    "-k",
                    "5",
                    &EXIT_AFTER_SECS.to_string(),
                    binary,
                ])
                .args(args(dir.path(), port))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawning {binary}: {e}"));
            let mut server = Server {
                name,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
                dir,
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err((retry, why)) => {
                    failures.push(server.report(&why));
                    if !retry {
                        break;
                    }
                }
            }
        }
        panic!("{name} did not start:\n{}", failures.join("\n----\n"))
    }

    /// Polls `GET /-/ready` until 200; Err((worth retrying on another port, why)).
    fn wait_ready(&mut self) -> Result<(), (bool, String)> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no attempt yet");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                let taken = self.log().contains("address already in use");
                return Err((
                    taken,
                    format!("{} exited during start-up ({status})", self.name),
                ));
            }
            match get(self.addr, "/-/ready") {
                Ok((200, _)) => return Ok(()),
                Ok((status, body)) => last = format!("{status} {body}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err((
            false,
            format!(
                "{} not ready within {READY_TIMEOUT:?}; last answer: {last}",
                self.name
            ),
        ))
    }

    /// Its log (stdout and stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `why`, with the configuration and the log.
    pub fn report(&self, why: &str) -> String {
        format!(
            "{why}\n--- {name} config.yml\n{config}\n--- {name} log (last 40 lines)\n{log}",
            name = self.name,
            config =
                std::fs::read_to_string(self.dir.path().join("config.yml")).unwrap_or_default(),
            log = self.log_tail(40),
        )
    }

    /// `GET path`, answered with 200 and a JSON body; panics otherwise.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        match get(self.addr, path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{} {path}: not JSON ({e}): {body}", self.name)),
            Ok((status, body)) => panic!(
                "{}",
                self.report(&format!("{} GET {path}: {status} {body}", self.name))
            ),
            Err(e) => panic!("{}", self.report(&format!("{} GET {path}: {e}", self.name))),
        }
    }

    /// Sends SIGTERM (passed on by `timeout`) and waits a bounded time; SIGKILL if it
    /// does not exit.
    fn stop(&mut self) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// One HTTP/1.0 `GET path` to `addr`: status and body, or why it failed.
pub fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Percent-encodes `s` for a query parameter: everything but RFC 3986's unreserved
/// characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A loopback HTTP server that answers every request with 200 and keeps the requests:
/// the webhook receivers' stand-in, so that Alertmanager never talks to a port the
/// test does not own. Stops when dropped.
pub struct WebhookSink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The requests received, head and body.
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookSink {
    /// Starts it on 127.0.0.1:0.
    pub fn start() -> WebhookSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = vec![0u8; 64 * 1024];
                        let n = stream.read(&mut buf).unwrap_or(0);
                        kept.lock()
                            .expect("requests")
                            .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                        let _ = stream.write_all(
                            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        WebhookSink {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
