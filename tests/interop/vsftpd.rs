//! Interoperability with a real FTP server: certwatch probes a private vsftpd with
//! `AUTH TLS`, and must report what `openssl s_client -starttls ftp` reports for the
//! same endpoint: chain length, leaf serial, leaf notAfter and TLS version.
//!
//! The instance is `vsftpd DIR/vsftpd.conf` in standalone mode (`listen=YES`,
//! `background=NO`) on 127.0.0.1 at a free port, with its log and empty chroot
//! directory in its instance directory; /etc/vsftpd.conf and the machine's own vsftpd
//! are never used, and nobody can log in (no anonymous access, and local logins would
//! go through PAM, which the test never reaches). vsftpd must be started as root (it
//! drops to `nobody` for each session). Needs the Debian packages `vsftpd` and
//! `openssl`; without them (or root) the test is ignored, and fails under `CI=true`
//! (see `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL, ROOT};

const VSFTPD: &str = "/usr/sbin/vsftpd";

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[VSFTPD_NEED, ROOT, OPENSSL],
        async auth_tls_chain_matches_openssl_s_client
    )]
}

/// vsftpd.
const VSFTPD_NEED: Need = Need {
    name: "vsftpd",
    remedy: Remedy::Install("vsftpd"),
    check: || daemon::require_program(VSFTPD, "vsftpd"),
};

/// A word in the FTP banner of every instance started here.
const BANNER: &str = "certwatch-interop-vsftpd";

/// A running private vsftpd; stopped when dropped.
struct Vsftpd {
    daemon: Daemon,
    port: u16,
}

impl Vsftpd {
    async fn start(tls: &ServerTls) -> Result<Vsftpd, String> {
        daemon::start_with_retries("vsftpd", || Self::try_start(tls)).await
    }

    async fn try_start(tls: &ServerTls) -> Result<Vsftpd, StartError> {
        let mut instance = Instance::new("vsftpd")?;
        let port = instance.port()?;
        let files = instance.write_tls("tls", tls, None)?;
        // The chroot of unprivileged session processes: owned by root, not writable.
        let empty = instance.mkdir("empty", None, 0o555)?;
        let log = instance.log_file("vsftpd.log");
        let conf = instance.write_config(
            "vsftpd.conf",
            &format!(
                "# A private instance for certwatch's interoperability tests.\n\
                 listen=YES\n\
                 listen_ipv6=NO\n\
                 listen_address=127.0.0.1\n\
                 listen_port={port}\n\
                 background=NO\n\
                 ftpd_banner={BANNER} ready\n\
                 anonymous_enable=NO\n\
                 local_enable=YES\n\
                 write_enable=NO\n\
                 pasv_enable=NO\n\
                 port_enable=NO\n\
                 secure_chroot_dir={empty}\n\
                 vsftpd_log_file={log}\n\
                 xferlog_enable=NO\n\
                 ssl_enable=YES\n\
                 rsa_cert_file={chain}\n\
                 rsa_private_key_file={key}\n\
                 force_local_logins_ssl=NO\n\
                 force_local_data_ssl=NO\n\
                 require_ssl_reuse=NO\n",
                empty = empty.display(),
                log = log.display(),
                chain = files.chain.display(),
                key = files.key.display(),
            ),
        )?;
        let vsftpd = Launch::new(VSFTPD).arg(&conf);
        let daemon = instance
            .spawn(vsftpd, &[Ready::Banner(port, BANNER.into())])
            .await?;
        Ok(Vsftpd { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn auth_tls_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Vsftpd::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "ftp", &chain, &|| {
        server.daemon.log()
    })
    .await;
}
