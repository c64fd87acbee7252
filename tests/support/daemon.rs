//! Real servers as child processes, for the interoperability tests.
//!
//! This module owns what every interop server has in common: a private [`Instance`]
//! directory for its configuration, data, certificates and logs; free unprivileged
//! loopback ports; the bounded setup steps (`initdb`, `slapadd`...); starting the
//! server in the foreground as a child of the test, optionally as another user; a
//! bounded readiness wait (a connection, a banner, a log line); and stopping it when
//! the [`Daemon`] is dropped, also when the test panics. Each server's own
//! configuration lives with its test (`tests/interop/*.rs`, `support/postfix.rs`); the
//! reference client is `support/openssl.rs`.
//!
//! Nothing here touches the machine's own services or /etc: every server runs with a
//! configuration file in its instance directory, listens on 127.0.0.1 only, and is
//! started directly (never through systemd, `service` or a package's init script).
//!
//! Every server runs under coreutils' `timeout` in a process group of its own: a stop
//! signals the whole group (the server and anything it forked), and a test run that is
//! killed before it can drop its servers still leaves nothing behind for longer than
//! [`MAX_LIFETIME`].
//!
//! Whether a server can run here at all (installed, root) is each test's list of
//! [`Need`](super::tools::Need)s, checked by the harness in `support/tools.rs` before
//! the test starts: a test whose server is missing is reported as ignored. A server
//! that is there but does not start fails its test ([`running`]).

use std::ffi::OsString;
use std::fs::File;
use std::future::Future;
use std::net::TcpListener as StdTcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

use super::pki::{Ca, Leaf, Validity};

/// The longest wait for a started server to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a setup step (`initdb`, `mariadb-install-db`, `slapadd`...) may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a server has to exit after SIGTERM before it gets SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// No server outlives this, even when the test process is killed and never drops it.
pub const MAX_LIFETIME: Duration = Duration::from_secs(600);

/// Instances tried, each on fresh ports, when a port was taken in the meantime.
pub const START_ATTEMPTS: usize = 3;

/// The pause between two readiness checks.
const POLL: Duration = Duration::from_millis(100);

/// Whether this is CI (`CI=true`), where every interop test must run.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The started server, or a panic with the report of why it did not start (its
/// configuration and log).
pub fn running<T>(result: Result<T, String>) -> T {
    match result {
        Ok(server) => server,
        Err(why) => panic!("{why}"),
    }
}

/// The older policy, for a standard-harness test not yet converted to a trial: the
/// server, or `None` after printing a skip notice (the test then passes); under
/// `CI=true`, a panic instead of the notice.
pub fn started<T>(server: &str, result: Result<T, String>) -> Option<T> {
    match result {
        Ok(server) => Some(server),
        Err(why) if in_ci() => panic!("CI=true and the {server} interop test cannot run: {why}"),
        Err(why) => {
            eprintln!("skipping: the {server} interop test cannot run: {why}");
            None
        }
    }
}

/// Fails unless the tests run as root (most servers start as root and drop
/// privileges, or must be started as their own user).
pub fn require_root() -> Result<(), String> {
    match command_stdout(Command::new("id").arg("-u")).as_deref() {
        Some("0") => Ok(()),
        _ => Err("it must run as root".into()),
    }
}

/// Fails unless `program` exists, naming the Debian `package` that provides it.
pub fn require_program(program: &str, package: &str) -> Result<(), String> {
    if Path::new(program).is_file() {
        Ok(())
    } else {
        Err(format!("{program} is missing (Debian package `{package}`)"))
    }
}

/// The uid and gid of `user`, which the Debian `package` creates.
pub fn user_ids(user: &str, package: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| {
        command_stdout(Command::new("id").args([flag, user]))
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| {
                format!("there is no `{user}` user (Debian package `{package}` creates it)")
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// The trimmed standard output of a short command that succeeded.
pub fn command_stdout(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The first line of a short command's standard output and error, for versions.
pub fn first_output_line(command: &mut Command) -> Option<String> {
    let output = command.stdin(Stdio::null()).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// Why an attempt to start a server failed.
#[derive(Debug)]
pub enum StartError {
    /// A port was taken between choosing it and binding it: worth another attempt.
    PortTaken(String),
    /// Would fail again.
    Fatal(String),
}

impl StartError {
    fn fatal(what: &str, e: impl std::fmt::Display) -> StartError {
        StartError::Fatal(format!("{what}: {e}"))
    }
}

/// Runs `attempt` until it succeeds, at most [`START_ATTEMPTS`] times and only again
/// after a port collision; the error has every attempt's report.
pub async fn start_with_retries<T, F, Fut>(server: &str, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StartError>>,
{
    let mut reports = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match attempt().await {
            Ok(started) => return Ok(started),
            Err(StartError::PortTaken(report)) => reports.push(report),
            Err(StartError::Fatal(report)) => {
                reports.push(report);
                break;
            }
        }
    }
    Err(format!(
        "{server} did not start:\n{}",
        reports.join("\n----\n")
    ))
}

/// The certificates of an interop test: a root, an intermediate, and a leaf for
/// `localhost` that the servers present with the intermediate.
pub struct Chain {
    /// The trust anchor the clients get.
    pub root: Ca,
    /// Presented after the leaf.
    pub intermediate: Ca,
    /// The server's certificate.
    pub leaf: Leaf,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// A fresh root, intermediate and leaf.
    pub fn new() -> Chain {
        let root = Ca::root("certwatch interop root");
        let intermediate = root.intermediate("certwatch interop intermediate", Validity::days(365));
        let leaf = intermediate.leaf(&["localhost"], Validity::days(90));
        Chain {
            root,
            intermediate,
            leaf,
        }
    }

    /// What the server is configured with.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls {
            chain_pem: self.leaf.chain_pem(&[&self.intermediate]),
            key_pem: self.leaf.key_pem.clone(),
            ca_pem: self.root.pem.clone(),
        }
    }
}

/// The certificate a server presents.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The chain, PEM, leaf first.
    pub chain_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
    /// The root, PEM, for servers that insist on a CA file.
    pub ca_pem: String,
}

/// Where [`Instance::write_tls`] put the certificate files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The chain, leaf first.
    pub chain: PathBuf,
    /// The private key, mode 0600.
    pub key: PathBuf,
    /// The root.
    pub ca: PathBuf,
}

/// What must hold before a started server counts as ready.
#[derive(Clone, Debug)]
pub enum Ready {
    /// A TCP connection to 127.0.0.1:port succeeds.
    Port(u16),
    /// The first line sent on a new connection contains the text: use a word from
    /// the server's configured banner, so that another server that took the port in
    /// the meantime is not mistaken for ours.
    Banner(u16, String),
    /// The log file (relative to the instance directory) contains the text.
    Log(PathBuf, String),
    /// As [`Ready::Banner`], at another loopback address than 127.0.0.1.
    BannerAt(std::net::SocketAddr, String),
}

/// A server's private directory, before the server starts: configuration, data,
/// certificates and logs, and the ports it was given. Removed when dropped.
#[derive(Debug)]
pub struct Instance {
    server: String,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    /// Files shown when the server fails: configurations, then logs.
    shown: Vec<PathBuf>,
}

impl Instance {
    /// A new instance directory for `server`, searchable by every user (servers that
    /// drop privileges must reach their files below it).
    pub fn new(server: &str) -> Result<Instance, StartError> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("certwatch-{server}-"))
            .tempdir()
            .map_err(|e| StartError::fatal("tempdir", e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| StartError::fatal("chmod the instance directory", e))?;
        Ok(Instance {
            server: server.to_owned(),
            dir,
            ports: Vec::new(),
            shown: Vec::new(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `relative` inside the directory.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `n` distinct unprivileged loopback ports, free a moment ago (a collision is
    /// found at start-up and retried with [`start_with_retries`]).
    pub fn ports(&mut self, n: usize) -> Result<Vec<u16>, StartError> {
        // Hold every listener until all are chosen, so the ports differ.
        let listeners = (0..n)
            .map(|_| StdTcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::fatal("bind 127.0.0.1:0", e))?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StartError::fatal("local_addr", e))?;
        self.ports.extend(&ports);
        Ok(ports)
    }

    /// One port, as [`Instance::ports`].
    pub fn port(&mut self) -> Result<u16, StartError> {
        Ok(self.ports(1)?[0])
    }

    /// Creates the directory `relative` with `mode`, owned by `owner` when given.
    pub fn mkdir(
        &self,
        relative: impl AsRef<Path>,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> Result<PathBuf, StartError> {
        let path = self.join(relative);
        std::fs::create_dir_all(&path)
            .map_err(|e| StartError::fatal(&format!("mkdir {}", path.display()), e))?;
        set_owner_and_mode(&path, owner, mode)?;
        Ok(path)
    }

    /// Writes a configuration file (mode 0644), shown when the server fails.
    pub fn write_config(
        &mut self,
        relative: impl AsRef<Path>,
        contents: &str,
    ) -> Result<PathBuf, StartError> {
        let path = self.write(relative, contents, None, 0o644)?;
        self.shown.push(path.clone());
        Ok(path)
    }

    /// Writes a file with `mode`, owned by `owner` when given; not shown on failure.
    pub fn write(
        &self,
        relative: impl AsRef<Path>,
        contents: &str,
        owner: Option<(u32, u32)>,
        mode: u32,
    ) -> Result<PathBuf, StartError> {
        let path = self.join(relative);
        std::fs::write(&path, contents)
            .map_err(|e| StartError::fatal(&format!("write {}", path.display()), e))?;
        set_owner_and_mode(&path, owner, mode)?;
        Ok(path)
    }

    /// Writes `chain.pem`, `key.pem` (0600, owned by `key_owner` when given) and
    /// `ca.pem` into the directory `relative` (created when missing).
    pub fn write_tls(
        &self,
        relative: impl AsRef<Path>,
        tls: &ServerTls,
        key_owner: Option<(u32, u32)>,
    ) -> Result<TlsFiles, StartError> {
        let dir = relative.as_ref();
        if !self.join(dir).is_dir() {
            self.mkdir(dir, None, 0o755)?;
        }
        Ok(TlsFiles {
            chain: self.write(dir.join("chain.pem"), &tls.chain_pem, None, 0o644)?,
            key: self.write(dir.join("key.pem"), &tls.key_pem, key_owner, 0o600)?,
            ca: self.write(dir.join("ca.pem"), &tls.ca_pem, None, 0o644)?,
        })
    }

    /// Registers a log file the server writes (relative to the directory), shown when
    /// it fails and returned by [`Daemon::log`].
    pub fn log_file(&mut self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.join(relative);
        self.shown.push(path.clone());
        path
    }

    /// Runs a setup step (`initdb`...) to completion, bounded by [`SETUP_TIMEOUT`],
    /// with its output kept in `label.out` and shown when the server fails.
    pub async fn run(&mut self, label: &str, command: Launch) -> Result<(), StartError> {
        let out = self.log_file(format!("{label}.out"));
        let mut child = command
            .command(self.path(), &out)
            .map_err(|e| StartError::Fatal(self.report(&e)))?
            .spawn()
            .map_err(|e| StartError::Fatal(self.report(&format!("spawning {label}: {e}"))))?;
        let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(StartError::Fatal(
                        self.report(&format!("{label} failed ({status})")),
                    ))
                }
                Ok(None) if tokio::time::Instant::now() >= deadline => {
                    signal_group(child.id(), "KILL");
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(StartError::Fatal(self.report(&format!(
                        "{label} did not finish within {SETUP_TIMEOUT:?}"
                    ))));
                }
                Ok(None) => tokio::time::sleep(POLL).await,
                Err(e) => return Err(StartError::Fatal(self.report(&format!("wait: {e}")))),
            }
        }
    }

    /// Starts the server (which must stay in the foreground) and waits, at most
    /// [`READY_TIMEOUT`], until everything in `ready` holds. Its standard output and
    /// error go to `server.out`. On failure the error says whether a port was taken
    /// and carries the configuration and logs.
    pub async fn spawn(mut self, launch: Launch, ready: &[Ready]) -> Result<Daemon, StartError> {
        // A port taken since it was chosen would make a connection check succeed
        // against the wrong server: check just before starting, to narrow the window.
        if let Some(port) = self
            .ports
            .iter()
            .find(|p| StdTcpListener::bind(("127.0.0.1", **p)).is_err())
        {
            return Err(StartError::PortTaken(
                self.report(&format!("port {port} was taken before the start")),
            ));
        }
        let out = self.log_file("server.out");
        let mut command = launch
            .command(self.path(), &out)
            .map_err(|e| StartError::Fatal(self.report(&e)))?;
        let child = command.spawn().map_err(|e| {
            StartError::Fatal(self.report(&format!(
                "spawning {}: {e}",
                launch.program.to_string_lossy()
            )))
        })?;
        let mut daemon = Daemon {
            instance: self,
            child,
        };
        match daemon.wait_ready(ready).await {
            Ok(()) => Ok(daemon),
            Err(StartError::PortTaken(why)) => Err(StartError::PortTaken(daemon.report(&why))),
            Err(StartError::Fatal(why)) => Err(StartError::Fatal(daemon.report(&why))),
        }
    }

    /// The concatenated log files so far.
    pub fn log(&self) -> String {
        self.shown
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "out"))
            .map(|p| {
                format!(
                    "--- {}\n{}",
                    p.display(),
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect()
    }

    /// `why`, followed by every configuration file and log.
    pub fn report(&self, why: &str) -> String {
        let mut report = format!(
            "{server}: {why}\n(instance in {dir}, ports {ports:?})\n",
            server = self.server,
            dir = self.path().display(),
            ports = self.ports,
        );
        for path in &self.shown {
            report.push_str(&format!(
                "--- {}\n{}\n",
                path.display(),
                std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"))
            ));
        }
        report
    }
}

fn set_owner_and_mode(path: &Path, owner: Option<(u32, u32)>, mode: u32) -> Result<(), StartError> {
    if let Some((uid, gid)) = owner {
        chown(path, Some(uid), Some(gid))
            .map_err(|e| StartError::fatal(&format!("chown {}", path.display()), e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| StartError::fatal(&format!("chmod {}", path.display()), e))
}

/// A program to run in an instance: its arguments, environment, and the user it runs
/// as (switched to with util-linux's `setpriv`, which then executes the program, so
/// that signals reach it directly).
#[derive(Clone, Debug)]
pub struct Launch {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    user: Option<String>,
}

impl Launch {
    /// Runs `program`.
    pub fn new(program: impl Into<OsString>) -> Launch {
        Launch {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            user: None,
        }
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Launch {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = A>, A: Into<OsString>>(mut self, args: I) -> Launch {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs as `user` (and its groups) instead of the test's user.
    pub fn user(mut self, user: &str) -> Launch {
        self.user = Some(user.to_owned());
        self
    }

    /// `timeout -k GRACE LIFETIME [setpriv ... --] PROGRAM ARGS`, in `dir`, in a new
    /// process group, with stdin closed and stdout and stderr appended to `out`.
    fn command(&self, dir: &Path, out: &Path) -> Result<Command, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(out)
            .map_err(|e| format!("{}: {e}", out.display()))?;
        let err = out.try_clone().map_err(|e| format!("{e}"))?;
        let mut command = Command::new("timeout");
        command
            .arg("-k")
            .arg(format!("{}s", STOP_GRACE.as_secs()))
            .arg(format!("{}s", MAX_LIFETIME.as_secs()));
        if let Some(user) = &self.user {
            command.args([
                "setpriv",
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
                "--",
            ]);
        }
        command
            .arg(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        Ok(command)
    }
}

/// A running server; stopped (with everything it forked) when dropped, and its
/// instance directory removed after that.
#[derive(Debug)]
pub struct Daemon {
    instance: Instance,
    child: Child,
}

impl Daemon {
    /// The instance directory.
    pub fn path(&self) -> &Path {
        self.instance.path()
    }

    /// The ports it was given, in the order they were asked for.
    pub fn ports(&self) -> &[u16] {
        &self.instance.ports
    }

    /// Its logs so far, for failure messages.
    pub fn log(&self) -> String {
        self.instance.log()
    }

    /// `why`, with its configuration and logs.
    pub fn report(&self, why: &str) -> String {
        self.instance.report(why)
    }

    async fn wait_ready(&mut self, ready: &[Ready]) -> Result<(), StartError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut pending: Vec<&Ready> = ready.iter().collect();
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| StartError::fatal("wait", e))?
            {
                return Err(self.exited(status));
            }
            let mut still = Vec::new();
            for check in pending {
                match self.check(check).await {
                    Ok(()) => {}
                    Err(Some(taken)) => return Err(StartError::PortTaken(taken)),
                    Err(None) => still.push(check),
                }
            }
            pending = still;
            if pending.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StartError::Fatal(format!(
                    "not ready within {READY_TIMEOUT:?}; still waiting for {pending:?}"
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `Ok` when `check` holds; `Err(Some(why))` when another server has the port.
    async fn check(&self, check: &Ready) -> Result<(), Option<String>> {
        match check {
            Ready::Port(port) => connect(*port).await.map(drop).map_err(|_| None),
            Ready::Banner(port, token) => banner(([127, 0, 0, 1], *port).into(), token).await,
            Ready::BannerAt(addr, token) => banner(*addr, token).await,
            Ready::Log(file, text) => match std::fs::read_to_string(self.instance.join(file)) {
                Ok(log) if log.contains(text.as_str()) => Ok(()),
                _ => Err(None),
            },
        }
    }

    fn exited(&self, status: ExitStatus) -> StartError {
        let why = format!("the server exited during start-up ({status})");
        let taken: Vec<u16> = self
            .instance
            .ports
            .iter()
            .copied()
            .filter(|p| StdTcpListener::bind(("127.0.0.1", *p)).is_err())
            .collect();
        if taken.is_empty() && !self.log().contains("Address already in use") {
            StartError::Fatal(why)
        } else {
            StartError::PortTaken(format!("{why}; in use: {taken:?}"))
        }
    }

    /// SIGTERM to the process group, a bounded wait, then SIGKILL.
    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id();
        signal_group(pid, "TERM");
        let step = Duration::from_millis(50);
        for _ in 0..(STOP_GRACE.as_millis() / step.as_millis()) {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(step);
        }
        signal_group(pid, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends SIG`signal` to the process group `pgid` (the shell's builtin `kill`, so that
/// no procps is needed).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args([
            "-c",
            &format!("kill -{signal} -\"$1\""),
            "sh",
            &pgid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `Ok` when the first line a new connection to `addr` gets contains `token`;
/// `Err(Some(why))` when another server has the port.
async fn banner(addr: std::net::SocketAddr, token: &str) -> Result<(), Option<String>> {
    let port = addr.port();
    let tcp = connect_to(addr).await.map_err(|_| None)?;
    let mut line = String::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(tcp).read_line(&mut line),
    )
    .await;
    match read {
        Ok(Ok(_)) if line.contains(token) => Ok(()),
        Ok(Ok(n)) if n > 0 => Err(Some(format!(
            "another server answered on port {port}: {:?}",
            line.trim_end()
        ))),
        _ => Err(None),
    }
}

/// A TCP connection to 127.0.0.1:`port`, bounded.
async fn connect(port: u16) -> Result<TcpStream, String> {
    connect_to(([127, 0, 0, 1], port).into()).await
}

/// A TCP connection to `addr`, bounded.
async fn connect_to(addr: std::net::SocketAddr) -> Result<TcpStream, String> {
    tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))
}
