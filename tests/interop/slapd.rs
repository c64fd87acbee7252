//! Interoperability with a real LDAP server: certwatch probes a private OpenLDAP slapd
//! with the StartTLS extended operation, and must report what
//! `openssl s_client -starttls ldap` reports for the same endpoint: chain length, leaf
//! serial, leaf notAfter and TLS version.
//!
//! The instance is `slapd -d 0 -f DIR/slapd.conf -h ldap://127.0.0.1:PORT/` (the
//! debug flag keeps it in the foreground) with a minimal mdb database, pid and args
//! files in its instance directory; it reads the stock schema from /etc/ldap/schema and
//! nothing else of /etc/ldap, and the machine's own slapd (cn=config in
//! /etc/ldap/slapd.d) is never used. Needs the Debian packages `slapd` and `openssl`;
//! without them the test is ignored, and fails under `CI=true` (see
//! `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};

const SLAPD: &str = "/usr/sbin/slapd";

/// The stock core schema shipped by the `slapd` package.
const CORE_SCHEMA: &str = "/etc/ldap/schema/core.schema";

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[SLAPD_NEED, OPENSSL],
        async starttls_chain_matches_openssl_s_client
    )]
}

/// slapd and its stock schema.
const SLAPD_NEED: Need = Need {
    name: "slapd",
    remedy: Remedy::Install("slapd"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(SLAPD, "slapd")?;
    daemon::require_program(CORE_SCHEMA, "slapd")
}

/// A running private slapd; stopped when dropped.
struct Slapd {
    daemon: Daemon,
    port: u16,
}

impl Slapd {
    async fn start(tls: &ServerTls) -> Result<Slapd, String> {
        daemon::start_with_retries("slapd", || Self::try_start(tls)).await
    }

    async fn try_start(tls: &ServerTls) -> Result<Slapd, StartError> {
        let mut instance = Instance::new("slapd")?;
        let port = instance.port()?;
        let files = instance.write_tls("tls", tls, None)?;
        let db = instance.mkdir("db", None, 0o700)?;
        let dir = instance.path().to_owned();
        let conf = instance.write_config(
            "slapd.conf",
            &format!(
                "# A private instance for certwatch's interoperability tests.\n\
                 include {CORE_SCHEMA}\n\
                 pidfile {dir}/slapd.pid\n\
                 argsfile {dir}/slapd.args\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 TLSCertificateFile {chain}\n\
                 TLSCertificateKeyFile {key}\n\
                 TLSCACertificateFile {ca}\n\
                 database mdb\n\
                 suffix \"dc=certwatch,dc=test\"\n\
                 rootdn \"cn=admin,dc=certwatch,dc=test\"\n\
                 directory {db}\n\
                 maxsize 10485760\n",
                dir = dir.display(),
                chain = files.chain.display(),
                key = files.key.display(),
                ca = files.ca.display(),
                db = db.display(),
            ),
        )?;
        let slapd = Launch::new(SLAPD)
            .args(["-d", "0", "-f"])
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"));
        let daemon = instance.spawn(slapd, &[Ready::Port(port)]).await?;
        Ok(Slapd { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn starttls_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Slapd::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "ldap", &chain, &|| {
        server.daemon.log()
    })
    .await;
}
