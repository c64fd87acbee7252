//! Interoperability with a real MySQL-protocol server: certwatch probes a private
//! MariaDB with the MySQL SSLRequest, and must report what
//! `openssl s_client -starttls mysql` reports for the same endpoint: chain length,
//! leaf serial, leaf notAfter and TLS version.
//!
//! The data directory is made by `mariadb-install-db --no-defaults` in the instance
//! directory and served by `mariadbd --no-defaults` (so /etc/mysql is never read), with
//! its socket, pid file and error log in the instance directory and TCP on 127.0.0.1 at
//! a free port; the machine's own MariaDB and /var/lib/mysql are never used. As root,
//! the server runs as the `mysql` user, which owns the data directory and key. Needs
//! the Debian packages `mariadb-server` and `openssl`; without them the test is
//! ignored, and fails under `CI=true` (see `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};

const MARIADBD: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[MARIADB, OPENSSL],
        async sslrequest_chain_matches_openssl_s_client
    )]
}

/// The server and its installer; as root, also the `mysql` user.
const MARIADB: Need = Need {
    name: "mariadb",
    remedy: Remedy::Install("mariadb-server"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(MARIADBD, "mariadb-server")?;
    daemon::require_program(INSTALL_DB, "mariadb-server")?;
    if daemon::require_root().is_ok() {
        daemon::user_ids("mysql", "mariadb-server")?;
    }
    Ok(())
}

/// The line the server logs once it accepts connections.
const READY_LINE: &str = "ready for connections";

/// A running private MariaDB; stopped when dropped.
struct MariaDb {
    daemon: Daemon,
    port: u16,
}

impl MariaDb {
    async fn start(tls: &ServerTls) -> Result<MariaDb, String> {
        // As root, the server switches to `mysql` itself (--user); otherwise it runs
        // as the test's user.
        let user = match daemon::require_root() {
            Ok(()) => Some(daemon::user_ids("mysql", "mariadb-server")?),
            Err(_) => None,
        };
        daemon::start_with_retries("mariadb", || Self::try_start(user, tls)).await
    }

    async fn try_start(user: Option<(u32, u32)>, tls: &ServerTls) -> Result<MariaDb, StartError> {
        let mut instance = Instance::new("mariadb")?;
        let port = instance.port()?;
        let data = instance.mkdir("data", user, 0o700)?;
        let run = instance.mkdir("run", user, 0o755)?;
        let files = instance.write_tls("tls", tls, user)?;
        // Written by the server after it switched to its user: in a directory it owns.
        let log = instance.log_file("run/mariadb.log");
        let user_args: &[&str] = if user.is_some() {
            &["--user=mysql"]
        } else {
            &[]
        };
        let mut datadir = std::ffi::OsString::from("--datadir=");
        datadir.push(&data);
        let option = |key: &str, value: &std::path::Path| {
            let mut arg = std::ffi::OsString::from(format!("--{key}="));
            arg.push(value);
            arg
        };

        let install = Launch::new(INSTALL_DB)
            .args(["--no-defaults", "--auth-root-authentication-method=normal"])
            .args(["--skip-test-db", "--skip-name-resolve"])
            .args(user_args)
            .arg(&datadir);
        instance.run("mariadb-install-db", install).await?;

        let mariadbd = Launch::new(MARIADBD)
            .arg("--no-defaults")
            .args(user_args)
            .arg(&datadir)
            .arg(option("socket", &run.join("mysqld.sock")))
            .arg(option("pid-file", &run.join("mysqld.pid")))
            .arg(option("log-error", &log))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
            .arg(option("ssl-cert", &files.chain))
            .arg(option("ssl-key", &files.key))
            .arg(option("ssl-ca", &files.ca));
        let daemon = instance
            .spawn(
                mariadbd,
                &[
                    Ready::Log("run/mariadb.log".into(), READY_LINE.into()),
                    Ready::Port(port),
                ],
            )
            .await?;
        Ok(MariaDb { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn sslrequest_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(MariaDb::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "mysql", &chain, &|| {
        server.daemon.log()
    })
    .await;
}
