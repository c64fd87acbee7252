//! The reference HTTP client of the TLS and authentication tests: `curl`, run with a
//! time limit against certwatch on 127.0.0.1 under the name `localhost`.
//!
//! [`Curl`] builds one request (CA, optional client certificate, optional basic
//! credentials, method) and [`Curl::run`] returns what curl saw: the HTTP status (0
//! when no HTTP answer came, e.g. the TLS handshake was refused), the response head,
//! the body, and curl's exit code and error text. Needs the Debian package `curl`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One curl request.
#[derive(Clone, Debug, Default)]
pub struct Curl {
    ca: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
    user: Option<(String, String)>,
    method: Option<String>,
    http2: bool,
    tls_max: Option<String>,
}

/// What curl saw.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status; 0 when there was no HTTP answer.
    pub status: u16,
    /// The response head (status line and headers), lowercase.
    pub head: String,
    /// The body.
    pub body: String,
    /// curl's exit code.
    pub exit: i32,
    /// curl's error text.
    pub stderr: String,
}

impl Curl {
    /// A request trusting `ca` (PEM) for the server.
    pub fn new(ca: &Path) -> Self {
        Self {
            ca: Some(ca.to_owned()),
            ..Self::default()
        }
    }

    /// Presents this client certificate and key.
    pub fn client_cert(mut self, cert: &Path, key: &Path) -> Self {
        self.client = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Sends basic credentials.
    pub fn basic(mut self, user: &str, password: &str) -> Self {
        self.user = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Uses `method` instead of GET.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    /// Offers TLS versions up to `version` only (`1.2`, `1.3`).
    pub fn tls_max(mut self, version: &str) -> Self {
        self.tls_max = Some(version.to_owned());
        self
    }

    /// Asks for HTTP/2 (ALPN), as Prometheus does.
    pub fn http2(mut self) -> Self {
        self.http2 = true;
        self
    }

    /// `https://localhost:PORT{path}`, connecting to `addr`; at most 20 s.
    pub fn run(&self, addr: SocketAddr, path: &str) -> Answer {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = dir.path().join("head");
        let body = dir.path().join("body");
        let mut command = Command::new("curl");
        command
            .args(["--silent", "--show-error", "--max-time", "20"])
            .arg("--resolve")
            .arg(format!("localhost:{}:{}", addr.port(), addr.ip()))
            .arg("--dump-header")
            .arg(&head)
            .arg("--output")
            .arg(&body)
            .args(["--write-out", "%{http_code}"]);
        command.arg(if self.http2 { "--http2" } else { "--http1.1" });
        if let Some(ca) = &self.ca {
            command.arg("--cacert").arg(ca);
        }
        if let Some((cert, key)) = &self.client {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some((user, password)) = &self.user {
            command.arg("--user").arg(format!("{user}:{password}"));
        }
        if let Some(version) = &self.tls_max {
            command.arg("--tls-max").arg(version);
        }
        if let Some(method) = &self.method {
            command.arg("--request").arg(method);
        }
        command.arg(format!("https://localhost:{}{path}", addr.port()));
        let out = command
            .stdin(Stdio::null())
            .output()
            .expect("running curl (Debian package `curl`)");
        Answer {
            status: String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0),
            head: std::fs::read_to_string(&head)
                .unwrap_or_default()
                .to_ascii_lowercase(),
            body: std::fs::read_to_string(&body).unwrap_or_default(),
            exit: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
