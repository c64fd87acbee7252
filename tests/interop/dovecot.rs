//! Interoperability with a real mail server: certwatch probes a private Dovecot over
//! IMAP, POP3, LMTP and ManageSieve STARTTLS, and must report what
//! `openssl s_client -starttls imap|pop3|lmtp|sieve` reports for the same endpoint:
//! chain length, leaf serial, leaf notAfter and TLS version.
//!
//! The instance is `dovecot -F -c DIR/dovecot.conf`, whose base_dir, state_dir and
//! log live in its instance directory, with a static passdb and userdb (no system
//! users are looked up or logged in) and one listener per protocol on 127.0.0.1 at
//! free ports; /etc/dovecot and the machine's own Dovecot are never used. The master
//! must run as root (it runs its login processes as `dovenull` and the rest as
//! `dovecot`). Needs the Debian packages `dovecot-imapd`, `dovecot-pop3d`,
//! `dovecot-lmtpd`, `dovecot-managesieved` and `openssl`; without them (or root) the
//! tests are ignored, and fail under `CI=true` (see `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL, ROOT};

pub fn trials() -> Vec<Trial> {
    let needs = &[DOVECOT_NEED, ROOT, OPENSSL];
    vec![
        trial!(needs, async imap_starttls_chain_matches_openssl_s_client),
        trial!(needs, async pop3_stls_chain_matches_openssl_s_client),
        trial!(needs, async lmtp_starttls_chain_matches_openssl_s_client),
        trial!(needs, async managesieve_starttls_chain_matches_openssl_s_client),
    ]
}

const DOVECOT: &str = "/usr/sbin/dovecot";

/// Dovecot with the four protocols, and its users.
const DOVECOT_NEED: Need = Need {
    name: "dovecot",
    remedy: Remedy::Install("dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(DOVECOT, "dovecot-core")?;
    for (program, package) in [
        ("/usr/lib/dovecot/imap-login", "dovecot-imapd"),
        ("/usr/lib/dovecot/pop3-login", "dovecot-pop3d"),
        ("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
        ("/usr/lib/dovecot/managesieve-login", "dovecot-managesieved"),
    ] {
        daemon::require_program(program, package)?;
    }
    daemon::user_ids("dovecot", "dovecot-core")?;
    daemon::user_ids("dovenull", "dovecot-core")?;
    Ok(())
}

/// A word in the IMAP and POP3 greetings of every instance started here.
const GREETING: &str = "certwatch-interop-dovecot";

/// A running private Dovecot; stopped when dropped.
struct Dovecot {
    daemon: Daemon,
    imap: u16,
    pop3: u16,
    lmtp: u16,
    sieve: u16,
}

impl Dovecot {
    async fn start(tls: &ServerTls) -> Result<Dovecot, String> {
        daemon::start_with_retries("dovecot", || Self::try_start(tls)).await
    }

    async fn try_start(tls: &ServerTls) -> Result<Dovecot, StartError> {
        let mut instance = Instance::new("dovecot")?;
        let [imap, pop3, lmtp, sieve] = instance.ports(4)?[..] else {
            unreachable!("four ports")
        };
        let files = instance.write_tls("tls", tls, None)?;
        let dir = instance.path().to_owned();
        let conf = instance.write_config(
            "dovecot.conf",
            &format!(
                "# A private instance for certwatch's interoperability tests.\n\
                 protocols = imap pop3 lmtp sieve\n\
                 base_dir = {dir}/run\n\
                 state_dir = {dir}/state\n\
                 log_path = {dir}/dovecot.log\n\
                 listen = 127.0.0.1\n\
                 ssl = yes\n\
                 ssl_cert = <{chain}\n\
                 ssl_key = <{key}\n\
                 default_internal_user = dovecot\n\
                 default_internal_group = dovecot\n\
                 default_login_user = dovenull\n\
                 login_greeting = {GREETING} ready\n\
                 passdb {{\n  driver = static\n  args = nopassword=y\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={dir}/home/%u\n}}\n\
                 service imap-login {{\n\
                 \x20 inet_listener imap {{\n    port = {imap}\n  }}\n\
                 \x20 inet_listener imaps {{\n    port = 0\n  }}\n\
                 }}\n\
                 service pop3-login {{\n\
                 \x20 inet_listener pop3 {{\n    port = {pop3}\n  }}\n\
                 \x20 inet_listener pop3s {{\n    port = 0\n  }}\n\
                 }}\n\
                 service lmtp {{\n\
                 \x20 inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n\
                 }}\n\
                 service managesieve-login {{\n\
                 \x20 inet_listener sieve {{\n    port = {sieve}\n  }}\n\
                 }}\n",
                dir = dir.display(),
                chain = files.chain.display(),
                key = files.key.display(),
            ),
        )?;
        instance.log_file("dovecot.log");
        let dovecot = Launch::new(DOVECOT).arg("-F").arg("-c").arg(&conf);
        let daemon = instance
            .spawn(
                dovecot,
                &[
                    Ready::Banner(imap, GREETING.into()),
                    Ready::Banner(pop3, GREETING.into()),
                    Ready::Port(lmtp),
                    Ready::Port(sieve),
                ],
            )
            .await?;
        Ok(Dovecot {
            daemon,
            imap,
            pop3,
            lmtp,
            sieve,
        })
    }
}

/// Starts a Dovecot and compares certwatch with openssl on the port `port` picks.
async fn compare(starttls: &str, port: fn(&Dovecot) -> u16) {
    let chain = Chain::new();
    let server = daemon::running(Dovecot::start(&chain.server_tls()).await);
    let address = format!("127.0.0.1:{}", port(&server));
    openssl::assert_certwatch_matches_openssl(&address, starttls, &chain, &|| server.daemon.log())
        .await;
}

async fn imap_starttls_chain_matches_openssl_s_client() {
    compare("imap", |d| d.imap).await;
}

async fn pop3_stls_chain_matches_openssl_s_client() {
    compare("pop3", |d| d.pop3).await;
}

async fn lmtp_starttls_chain_matches_openssl_s_client() {
    compare("lmtp", |d| d.lmtp).await;
}

async fn managesieve_starttls_chain_matches_openssl_s_client() {
    compare("sieve", |d| d.sieve).await;
}
