//! A real Postfix SMTP server for interoperability tests.
//!
//! Each [`Postfix`] is a private instance: its own `main.cf` and `master.cf`, queue and
//! data directories and log file, all inside one temporary directory, listening only on
//! 127.0.0.1 at a free unprivileged port. The master daemon is started directly
//! (`master -c DIR -s`, so it never reads /etc/postfix/main.cf and never goes through
//! `postfix start`) as a child of the test, and it is stopped with SIGTERM when the
//! value is dropped, also when the test panics. The machine's own Postfix, /etc/postfix
//! and port 25 are never touched. What the probe sees is left to the tests; the
//! reference client (`openssl s_client`) lives in `tests/interop_postfix.rs`.
//!
//! The master must run as root (it drops to `mail_owner` for its children), so the
//! instance needs root and the Debian package `postfix` (which also creates the
//! `postfix` user). [`available`] says whether both are there; [`require`] turns a
//! missing prerequisite into a skip notice, or into a failure under `CI=true`.

use std::fs::File;
use std::net::TcpListener as StdTcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// The master daemon.
pub const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// A word in the SMTP banner of every instance started here, so that readiness is not
/// confused with another server that took the port in the meantime.
const BANNER_TOKEN: &str = "certwatch-interop-postfix";

/// The longest wait for a started instance to answer with its banner.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Instances tried (each on a fresh port) before giving up, for port collisions.
const START_ATTEMPTS: usize = 3;

/// The master's own deadline: it exits after this even if a killed test never stops
/// it, so that nothing outlives a test run for long.
const MASTER_EXIT_AFTER_SECS: u32 = 600;

/// The certificate the server presents after STARTTLS.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The chain, PEM, leaf first.
    pub chain_pem: String,
    /// The leaf's private key, PEM.
    pub key_pem: String,
}

/// Why Postfix cannot run here.
pub fn available() -> Result<(), String> {
    if !Path::new(MASTER).is_file() {
        return Err(format!(
            "postfix not installed ({MASTER} is missing; Debian package `postfix`)"
        ));
    }
    if command_stdout(Command::new("id").arg("-u")).as_deref() != Some("0") {
        return Err("the postfix master daemon must run as root".into());
    }
    postfix_ids().map(|_| ())
}

/// True when Postfix can run. Otherwise prints a skip notice and returns false, or
/// panics under `CI=true`, where an interop test that cannot run is a failure.
pub fn require() -> bool {
    match available() {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and the postfix interop test cannot run: {why}")
        }
        Err(why) => {
            eprintln!("skipping: {why}");
            false
        }
    }
}

/// `postconf -d mail_version`, e.g. `3.7.11`.
pub fn version() -> Option<String> {
    command_stdout(Command::new("postconf").args(["-d", "-h", "mail_version"]))
}

/// A running private Postfix instance; stopped when dropped.
#[derive(Debug)]
pub struct Postfix {
    dir: tempfile::TempDir,
    master: Child,
    port: u16,
}

impl Postfix {
    /// Starts an instance presenting `tls` after STARTTLS, or offering no STARTTLS at
    /// all when `tls` is `None`, and waits until it greets. Panics, with the instance's
    /// configuration and log, when it does not come up.
    pub async fn start(tls: Option<&ServerTls>) -> Postfix {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(tls).await {
                Ok(postfix) => return postfix,
                Err(Failure::PortTaken(report)) => failures.push(report),
                Err(Failure::Fatal(report)) => {
                    failures.push(report);
                    break;
                }
            }
        }
        panic!("postfix did not start:\n{}", failures.join("\n----\n"))
    }

    /// The address it listens on, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    async fn try_start(tls: Option<&ServerTls>) -> Result<Postfix, Failure> {
        let (uid, gid) = postfix_ids().map_err(Failure::Fatal)?;
        let dir = tempfile::Builder::new()
            .prefix("certwatch-postfix-")
            .tempdir()
            .map_err(|e| Failure::Fatal(format!("tempdir: {e}")))?;
        let port = free_port().map_err(Failure::Fatal)?;
        layout(dir.path(), uid, gid, port, tls)
            .map_err(|e| Failure::Fatal(format!("writing the instance: {e}")))?;

        let conf = dir.path().join("conf");
        let out = File::create(dir.path().join("master.out"))
            .map_err(|e| Failure::Fatal(format!("master.out: {e}")))?;
        let err = out
            .try_clone()
            .map_err(|e| Failure::Fatal(format!("master.out: {e}")))?;
        // -s: no detaching of stdout; it still becomes a session and process group
        // leader, so its SIGTERM handler reaches its own children and nothing else.
        let master = Command::new(MASTER)
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .args(["-e", &MASTER_EXIT_AFTER_SECS.to_string()])
            .env("MAIL_CONFIG", &conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Failure::Fatal(format!("spawning {MASTER}: {e}")))?;
        let mut postfix = Postfix { dir, master, port };
        match postfix.wait_ready().await {
            Ok(()) => Ok(postfix),
            Err(Failure::PortTaken(why)) => Err(Failure::PortTaken(postfix.report(&why))),
            Err(Failure::Fatal(why)) => Err(Failure::Fatal(postfix.report(&why))),
        }
    }

    /// Polls until the banner arrives, the master exits, or [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> Result<(), Failure> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let address = self.address();
        let mut last = String::from("no connection attempt yet");
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self
                .master
                .try_wait()
                .map_err(|e| Failure::Fatal(format!("wait: {e}")))?
            {
                return Err(self.exited(status));
            }
            match greeting(&address).await {
                Ok(line) if line.starts_with("220 ") && line.contains(BANNER_TOKEN) => {
                    return Ok(())
                }
                Ok(line) => {
                    return Err(Failure::PortTaken(format!(
                        "another server answered on {address}: {line:?}"
                    )))
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(Failure::Fatal(format!(
            "no banner on {address} within {READY_TIMEOUT:?}; last attempt: {last}"
        )))
    }

    fn exited(&self, status: ExitStatus) -> Failure {
        let why = format!("the master exited during start-up ({status})");
        // The master's own fatal messages go to syslog until postlogd runs, so a port
        // collision may not be in the log: probe the port to tell.
        if self.log().contains("Address already in use")
            || StdTcpListener::bind(("127.0.0.1", self.port)).is_err()
        {
            Failure::PortTaken(format!("{why}; port {} is in use", self.port))
        } else {
            Failure::Fatal(why)
        }
    }

    /// `why`, with everything that helps to see why.
    fn report(&self, why: &str) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "{why}\n(instance in {dir}; every directory above it must be searchable by the `postfix` user)\n\
             --- conf/main.cf\n{main}--- conf/master.cf\n{master}--- master stdout/stderr\n{out}--- maillog\n{log}",
            dir = self.dir.path().display(),
            main = read("conf/main.cf"),
            master = read("conf/master.cf"),
            out = read("master.out"),
            log = self.log(),
        )
    }

    /// Sends SIGTERM to the master, which passes it on to its process group, and waits
    /// a bounded time for it to exit; SIGKILL if it does not.
    fn stop(&mut self) {
        if !matches!(self.master.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.master.id().to_string();
        // The shell's builtin, so that no procps is needed.
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "sh", &pid])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if !matches!(self.master.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Failure {
    /// Worth another attempt on another port.
    PortTaken(String),
    /// Would fail again.
    Fatal(String),
}

/// Writes the configuration and creates the directories, owned as Postfix expects.
fn layout(
    root: &Path,
    uid: u32,
    gid: u32,
    port: u16,
    tls: Option<&ServerTls>,
) -> std::io::Result<()> {
    use std::os::unix::fs::chown;

    // The temporary directory is created 0700; the `postfix` user must reach the data
    // and queue directories below it.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let conf = root.join("conf");
    let queue = root.join("queue");
    let data = root.join("data");
    for (dir, owner, mode) in [
        (conf.clone(), None, 0o755),
        (queue.clone(), None, 0o755),
        (queue.join("pid"), None, 0o755),
        (queue.join("private"), Some((uid, gid)), 0o700),
        (queue.join("public"), Some((uid, gid)), 0o755),
        (data.clone(), Some((uid, gid)), 0o700),
    ] {
        std::fs::create_dir(&dir)?;
        if let Some((uid, gid)) = owner {
            chown(&dir, Some(uid), Some(gid))?;
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
    }

    let mut main = format!(
        "# A private instance for certwatch's interoperability tests.\n\
         compatibility_level = 3.6\n\
         myhostname = localhost\n\
         mydomain = localdomain\n\
         mydestination =\n\
         mynetworks = 127.0.0.0/8\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         queue_directory = {queue}\n\
         data_directory = {data}\n\
         mail_owner = postfix\n\
         maillog_file_prefixes = {root}\n\
         maillog_file = {root}/maillog\n\
         smtpd_banner = $myhostname ESMTP {BANNER_TOKEN}\n\
         smtpd_peername_lookup = no\n\
         alias_maps =\n\
         alias_database =\n\
         local_recipient_maps =\n\
         biff = no\n",
        queue = queue.display(),
        data = data.display(),
        root = root.display(),
    );
    // Only the services an SMTP session up to STARTTLS needs; nothing that delivers.
    let mut master = format!(
        "127.0.0.1:{port} inet n - n - - smtpd\n\
         postlog   unix-dgram n - n - 1 postlogd\n\
         anvil     unix - - n - 1 anvil\n"
    );
    match tls {
        Some(tls) => {
            let key = conf.join("key.pem");
            let chain = conf.join("chain.pem");
            std::fs::write(&key, &tls.key_pem)?;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
            std::fs::write(&chain, &tls.chain_pem)?;
            main.push_str(&format!(
                "smtpd_tls_security_level = may\n\
                 smtpd_tls_cert_file = {chain}\n\
                 smtpd_tls_key_file = {key}\n\
                 smtpd_tls_loglevel = 1\n",
                chain = chain.display(),
                key = key.display(),
            ));
            master.push_str("tlsmgr    unix - - n 1000? 1 tlsmgr\n");
        }
        None => main.push_str("smtpd_tls_security_level = none\n"),
    }
    std::fs::write(conf.join("main.cf"), main)?;
    std::fs::write(conf.join("master.cf"), master)?;
    Ok(())
}

/// An unprivileged port that was free a moment ago (a collision is retried).
fn free_port() -> Result<u16, String> {
    let listener =
        StdTcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// The first line the server at `address` sends, each step bounded.
async fn greeting(address: &str) -> Result<String, String> {
    let tcp = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(address))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(tcp).read_line(&mut line),
    )
    .await
    .map_err(|_| "no greeting within 5s".to_owned())?
    .map_err(|e| format!("read: {e}"))?;
    Ok(line.trim_end().to_owned())
}

/// The uid and gid of the `postfix` user.
fn postfix_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| {
        command_stdout(Command::new("id").args([flag, "postfix"]))
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| {
                "there is no `postfix` user (Debian package `postfix` creates it)".to_owned()
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// The trimmed standard output of a short command that succeeded.
fn command_stdout(command: &mut Command) -> Option<String> {
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
