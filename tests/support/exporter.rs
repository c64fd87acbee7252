//! The real `certwatch` binary, started on 127.0.0.1:0 with a configuration, scraped
//! over HTTP, and stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running exporter; killed when dropped if it was not stopped.
pub struct Exporter {
    child: Child,
    /// Where it serves HTTP.
    pub addr: SocketAddr,
    /// Log lines (JSON) seen so far and to come.
    pub logs: mpsc::Receiver<String>,
}

/// How long start-up may take before a test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

impl Exporter {
    /// Starts `certwatch serve` in `dir` with `args`, and waits for its listen line.
    pub fn start(dir: &Path, args: &[&str]) -> Exporter {
        Self::start_wrapped(&[], dir, args)
    }

    /// Like [`Exporter::start`], with `env` added to the environment.
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Exporter {
        Self::launch(&[], dir, args, env)
    }

    /// [`Exporter::start`], run through `wrapper` (a program and its arguments, such as
    /// `setpriv --reuid=nobody ...`) when it is not empty.
    pub fn start_wrapped(wrapper: &[&str], dir: &Path, args: &[&str]) -> Exporter {
        Self::launch(wrapper, dir, args, &[])
    }

    fn launch(wrapper: &[&str], dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let binary = env!("CARGO_BIN_EXE_certwatch");
        let mut command = match wrapper.split_first() {
            None => Command::new(binary),
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(binary);
                command
            }
        };
        let mut child = command
            .current_dir(dir)
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn certwatch");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let addr = loop {
            let line = logs
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|_| panic!("no listen line; logs: {seen:#?}"));
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(listen) = json.get("listen").and_then(|l| l.as_str()) {
                    break listen.parse().expect("listen address");
                }
            }
            seen.push(line);
        };
        Exporter { child, addr, logs }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The resident set size now, in bytes (Linux).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS")
            * 1024
    }

    /// `GET path`: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path)
    }

    /// Sends one HTTP/1.0 request and reads the whole answer.
    pub fn request(&self, method: &str, path: &str) -> (u16, String) {
        let (status, _, body) = self.request_with_head(method, path);
        (status, body)
    }

    /// Like [`Exporter::request`], also returning the response head.
    pub fn request_with_head(&self, method: &str, path: &str) -> (u16, String, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head.to_owned(), body.to_owned())
    }

    /// Sends one HTTP/1.0 `GET path` with `headers`: the status, the response head and
    /// the body as bytes (a compressed body is not text).
    pub fn get_with_headers(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: localhost\r\n{extra}\r\n"
        )
        .expect("write");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read");
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP answer");
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head, answer[split + 4..].to_vec())
    }

    /// Every log line that has arrived so far, without waiting.
    pub fn logs_so_far(&self) -> Vec<String> {
        self.logs.try_iter().collect()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        loop {
            let line = self
                .logs
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for a JSON log line for which `matches` holds (`what` names it in the
    /// failure message); lines before it are passed over.
    pub fn wait_for_json(
        &self,
        what: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut seen = Vec::new();
        loop {
            let line = self
                .logs
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|_| panic!("no log line with {what}; lines seen: {seen:#?}"));
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                if matches(&json) {
                    return json;
                }
            }
            seen.push(line);
        }
    }

    /// Waits for the audit event `event` (see `src/audit.rs`) for which `matches` holds.
    pub fn wait_for_audit(
        &self,
        event: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.wait_for_json(&format!("audit event {event}"), |json| {
            json["audit"] == true
                && json["module"] == "certwatch::audit"
                && json["event"] == event
                && matches(json)
        })
    }

    /// Waits until a log line containing each of `needles` has been seen, in any order.
    pub fn wait_for_logs(&self, needles: &[&str]) {
        let mut missing: Vec<&str> = needles.to_vec();
        while !missing.is_empty() {
            let line = self
                .logs
                .recv_timeout(START_TIMEOUT)
                .unwrap_or_else(|_| panic!("no log lines with {missing:?}"));
            if let Some(i) = missing.iter().position(|n| line.contains(n)) {
                missing.remove(i);
            }
        }
    }

    /// Sends `signal` (e.g. "TERM", "HUP").
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGTERM, waits for the exit, and returns every log line not read yet.
    pub fn stop_with_logs(mut self) -> (ExitStatus, Vec<String>) {
        self.signal("TERM");
        let status = self.child.wait().expect("wait");
        // The reader thread ends at the end of stderr, which the exit closed.
        let logs = self.logs.iter().collect();
        (status, logs)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("wait")
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
