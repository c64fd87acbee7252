//! A real Postfix SMTP server for interoperability tests.
//!
//! Each [`Postfix`] is a private instance: its own `main.cf` and `master.cf`, queue and
//! data directories and log file, all inside one [`Instance`] directory, listening only
//! on 127.0.0.1 at a free unprivileged port. The master daemon is started directly
//! (`master -c DIR -s`, so it never reads /etc/postfix/main.cf and never goes through
//! `postfix start`) as a child of the test, and it is stopped when the value is
//! dropped, also when the test panics (see `support/daemon.rs`). The machine's own
//! Postfix, /etc/postfix and port 25 are never touched. What the probe sees is left to
//! the tests; the reference client is `support/openssl.rs`.
//!
//! The master must run as root (it drops to `mail_owner` for its children), so the
//! instance needs root and the Debian package `postfix` (which also creates the
//! `postfix` user): the needs [`POSTFIX`] and `tools::ROOT`.

use std::process::Command;

use super::daemon::{self, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use super::tools::{Need, Remedy};

/// The master daemon.
pub const MASTER: &str = "/usr/lib/postfix/sbin/master";

/// A word in the SMTP banner of every instance started here, so that readiness is not
/// confused with another server that took the port in the meantime.
const BANNER_TOKEN: &str = "certwatch-interop-postfix";

/// The master's own deadline: it exits after this even if a killed test never stops
/// it (as `support/daemon.rs`'s lifetime limit also ensures).
const MASTER_EXIT_AFTER_SECS: u32 = 600;

/// Postfix installed: its master daemon and its `postfix` user. The instance also
/// needs [`ROOT`](super::tools::ROOT).
pub const POSTFIX: Need = Need {
    name: "postfix",
    remedy: Remedy::Install("postfix"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(MASTER, "postfix")?;
    daemon::user_ids("postfix", "postfix").map(|_| ())
}

/// Why Postfix cannot run here.
pub fn available() -> Result<(), String> {
    installed()?;
    daemon::require_root()
}

/// `postconf -d mail_version`, e.g. `3.7.11`.
pub fn version() -> Option<String> {
    daemon::command_stdout(Command::new("postconf").args(["-d", "-h", "mail_version"]))
}

/// A running private Postfix instance; stopped when dropped.
#[derive(Debug)]
pub struct Postfix {
    daemon: Daemon,
    ip: std::net::Ipv4Addr,
    port: u16,
}

impl Postfix {
    /// Starts an instance presenting `tls` after STARTTLS, or offering no STARTTLS at
    /// all when `tls` is `None`, and waits until it greets. The error says why it
    /// could not run, with the instance's configuration and log.
    pub async fn start(tls: Option<&ServerTls>) -> Result<Postfix, String> {
        available()?;
        daemon::start_with_retries("postfix", || {
            Self::try_start(std::net::Ipv4Addr::LOCALHOST, None, tls)
        })
        .await
    }

    /// Starts an instance listening on `ip`:`port` (a loopback address other than
    /// 127.0.0.1, so that several instances share one port, as the MX hosts of a
    /// domain do), as [`Postfix::start`] does.
    pub async fn start_at(
        ip: std::net::Ipv4Addr,
        port: u16,
        tls: Option<&ServerTls>,
    ) -> Result<Postfix, String> {
        available()?;
        daemon::start_with_retries("postfix", || Self::try_start(ip, Some(port), tls)).await
    }

    /// The address it listens on, `IP:PORT`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Its private directory.
    pub fn dir(&self) -> &std::path::Path {
        self.daemon.path()
    }

    /// Its logs so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    async fn try_start(
        ip: std::net::Ipv4Addr,
        port: Option<u16>,
        tls: Option<&ServerTls>,
    ) -> Result<Postfix, StartError> {
        let ids = daemon::user_ids("postfix", "postfix").map_err(StartError::Fatal)?;
        let mut instance = Instance::new("postfix")?;
        let port = match port {
            Some(port) => port,
            None => instance.port()?,
        };
        layout(&mut instance, ids, ip, port, tls)?;
        instance.log_file("maillog");
        let conf = instance.join("conf");
        // -s: no redirection of stdout; the master still becomes a session leader, so
        // its SIGTERM handler reaches its own children and nothing else.
        let master = Launch::new(MASTER)
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .args(["-e", &MASTER_EXIT_AFTER_SECS.to_string()])
            .env("MAIL_CONFIG", &conf);
        let ready = Ready::BannerAt((ip, port).into(), BANNER_TOKEN.into());
        let daemon = instance.spawn(master, &[ready]).await?;
        Ok(Postfix { daemon, ip, port })
    }
}

/// Writes the configuration and creates the directories, owned as Postfix expects.
fn layout(
    instance: &mut Instance,
    postfix: (u32, u32),
    ip: std::net::Ipv4Addr,
    port: u16,
    tls: Option<&ServerTls>,
) -> Result<(), StartError> {
    let root = instance.path().to_owned();
    let conf = instance.mkdir("conf", None, 0o755)?;
    let queue = instance.mkdir("queue", None, 0o755)?;
    instance.mkdir("queue/pid", None, 0o755)?;
    instance.mkdir("queue/private", Some(postfix), 0o700)?;
    instance.mkdir("queue/public", Some(postfix), 0o755)?;
    let data = instance.mkdir("data", Some(postfix), 0o700)?;

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
        "{ip}:{port} inet n - n - - smtpd\n\
         postlog   unix-dgram n - n - 1 postlogd\n\
         anvil     unix - - n - 1 anvil\n"
    );
    match tls {
        Some(tls) => {
            let files = instance.write_tls("conf", tls, None)?;
            main.push_str(&format!(
                "smtpd_tls_security_level = may\n\
                 smtpd_tls_cert_file = {chain}\n\
                 smtpd_tls_key_file = {key}\n\
                 smtpd_tls_loglevel = 1\n",
                chain = files.chain.display(),
                key = files.key.display(),
            ));
            master.push_str("tlsmgr    unix - - n 1000? 1 tlsmgr\n");
        }
        None => main.push_str("smtpd_tls_security_level = none\n"),
    }
    instance.write_config(conf.join("main.cf"), &main)?;
    instance.write_config(conf.join("master.cf"), &master)?;
    Ok(())
}
