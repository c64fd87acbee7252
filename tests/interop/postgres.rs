//! Interoperability with a real PostgreSQL server: certwatch probes a private cluster
//! with the PostgreSQL SSLRequest, and must report what
//! `openssl s_client -starttls postgres` reports for the same endpoint: chain length,
//! leaf serial, leaf notAfter and TLS version.
//!
//! The cluster is made by `initdb` in the instance directory and run by `postgres -D`
//! (never `pg_ctlcluster` or the Debian cluster in /var/lib/postgresql), with its Unix
//! socket in the instance directory and TCP on 127.0.0.1 at a free port. The server
//! refuses to run as root, so a root test runs it as the `postgres` user, which owns
//! its data directory and key. Needs the Debian packages `postgresql` and `openssl`;
//! without them the test is ignored, and fails under `CI=true` (see
//! `support/tools.rs`).

use std::path::{Path, PathBuf};

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};
use crate::support::transcript::dialogue;
use crate::support::Harness;

pub fn trials() -> Vec<Trial> {
    vec![
        trial!(
            &[POSTGRESQL, OPENSSL],
            async sslrequest_chain_matches_openssl_s_client
        ),
        trial!(&[POSTGRESQL], async the_transcript_shows_the_sslrequest_and_its_answer),
    ]
}

/// A PostgreSQL server; as root, also the `postgres` user.
const POSTGRESQL: Need = Need {
    name: "postgresql",
    remedy: Remedy::Install("postgresql"),
    check: installed,
};

fn installed() -> Result<(), String> {
    bin_dir()?;
    if daemon::require_root().is_ok() {
        daemon::user_ids("postgres", "postgresql-common")?;
    }
    Ok(())
}

/// The line the server logs once it accepts connections.
const READY_LINE: &str = "database system is ready to accept connections";

/// The newest PostgreSQL server installed, e.g. `/usr/lib/postgresql/15/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/postgres (Debian package `postgresql`)".into())
}

/// A running private PostgreSQL; stopped when dropped.
struct Postgres {
    daemon: Daemon,
    port: u16,
}

impl Postgres {
    async fn start(tls: &ServerTls) -> Result<Postgres, String> {
        let bin = bin_dir()?;
        // PostgreSQL will not run as root: as root, run it as `postgres`.
        let user = match daemon::require_root() {
            Ok(()) => Some(daemon::user_ids("postgres", "postgresql-common")?),
            Err(_) => None,
        };
        daemon::start_with_retries("postgresql", || Self::try_start(&bin, user, tls)).await
    }

    async fn try_start(
        bin: &Path,
        user: Option<(u32, u32)>,
        tls: &ServerTls,
    ) -> Result<Postgres, StartError> {
        let mut instance = Instance::new("postgres")?;
        let port = instance.port()?;
        let data = instance.mkdir("data", user, 0o700)?;
        let socket = instance.mkdir("socket", user, 0o755)?;
        // The key must belong to the server's user and be readable by it alone.
        let files = instance.write_tls("tls", tls, user)?;
        let as_user = |launch: Launch| match user {
            Some(_) => launch.user("postgres"),
            None => launch,
        };
        let initdb = Launch::new(bin.join("initdb"))
            .args([
                "--no-sync",
                "--no-instructions",
                "--auth=trust",
                "--username=postgres",
            ])
            .args(["--encoding=UTF8", "--locale=C", "-D"])
            .arg(&data);
        instance.run("initdb", as_user(initdb)).await?;

        let setting = |key: &str, value: &Path| {
            let mut arg = std::ffi::OsString::from(format!("{key}="));
            arg.push(value);
            arg
        };
        let postgres = Launch::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(setting("unix_socket_directories", &socket))
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(setting("ssl_cert_file", &files.chain))
            .arg("-c")
            .arg(setting("ssl_key_file", &files.key))
            .args(["-c", "fsync=off", "-c", "logging_collector=off"]);
        let daemon = instance
            .spawn(
                as_user(postgres),
                &[
                    Ready::Log("server.out".into(), READY_LINE.into()),
                    Ready::Port(port),
                ],
            )
            .await?;
        Ok(Postgres { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn sslrequest_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Postgres::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "postgres", &chain, &|| {
        server.daemon.log()
    })
    .await;
}

/// `/probe?debug=true` and `check --verbose` against a real PostgreSQL: certwatch's
/// 8-byte SSLRequest and the server's one-byte `S`, then the handshake.
async fn the_transcript_shows_the_sslrequest_and_its_answer() {
    let chain = Chain::new();
    let server = daemon::running(Postgres::start(&chain.server_tls()).await);
    let h = Harness::new();
    h.write("root.pem", &chain.root.pem);
    let (_, text) = h
        .transcript(&openssl::target_yaml(&server.address(), "postgres"))
        .await;
    assert_eq!(
        dialogue(&text),
        [
            "C: [8 bytes] \\x00\\x00\\x00\\x08\\x04\\xd2\\x16/",
            "S: [1 bytes] S"
        ],
        "{text}\nserver log:\n{}",
        server.daemon.log()
    );
    assert!(text.contains("  result:      success\n"), "{text}");
}
