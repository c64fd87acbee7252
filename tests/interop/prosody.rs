//! Interoperability with a real XMPP server: certwatch probes a private Prosody over
//! client-to-server and server-to-server STARTTLS, and must report what
//! `openssl s_client -starttls xmpp|xmpp-server -name localhost` reports for the same
//! endpoint: chain length, leaf serial, leaf notAfter and TLS version.
//!
//! The instance is `prosody -F --config DIR/prosody.cfg.lua`, with one virtual host
//! `localhost`, c2s and s2s listeners on 127.0.0.1 at free ports (every other listener
//! off), and its pid file, data and log in its instance directory; /etc/prosody and
//! the machine's own Prosody are never used. Prosody refuses to run as root, so a root
//! test runs it as the `prosody` user, which owns its data directory and key. Needs the
//! Debian packages `prosody` and `openssl`; without them the tests are ignored, and
//! fail under `CI=true` (see `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};

const PROSODY: &str = "/usr/bin/prosody";

pub fn trials() -> Vec<Trial> {
    let needs = &[PROSODY_NEED, OPENSSL];
    vec![
        trial!(needs, async c2s_starttls_chain_matches_openssl_s_client),
        trial!(needs, async s2s_starttls_chain_matches_openssl_s_client),
    ]
}

/// Prosody; as root, also the `prosody` user.
const PROSODY_NEED: Need = Need {
    name: "prosody",
    remedy: Remedy::Install("prosody"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(PROSODY, "prosody")?;
    if daemon::require_root().is_ok() {
        daemon::user_ids("prosody", "prosody")?;
    }
    Ok(())
}

/// A running private Prosody; stopped when dropped.
struct Prosody {
    daemon: Daemon,
    c2s: u16,
    s2s: u16,
}

impl Prosody {
    async fn start(tls: &ServerTls) -> Result<Prosody, String> {
        let user = match daemon::require_root() {
            Ok(()) => Some(daemon::user_ids("prosody", "prosody")?),
            Err(_) => None,
        };
        daemon::start_with_retries("prosody", || Self::try_start(user, tls)).await
    }

    async fn try_start(user: Option<(u32, u32)>, tls: &ServerTls) -> Result<Prosody, StartError> {
        let mut instance = Instance::new("prosody")?;
        let [c2s, s2s] = instance.ports(2)?[..] else {
            unreachable!("two ports")
        };
        let files = instance.write_tls("tls", tls, user)?;
        // Written by the server as its own user: a directory it owns.
        let data = instance.mkdir("data", user, 0o700)?;
        let run = instance.mkdir("run", user, 0o755)?;
        let log = instance.log_file("run/prosody.log");
        let conf = instance.write_config(
            "prosody.cfg.lua",
            &format!(
                "-- A private instance for certwatch's interoperability tests.\n\
                 pidfile = \"{pid}\"\n\
                 data_path = \"{data}\"\n\
                 log = {{ {{ levels = {{ min = \"info\" }}, to = \"file\", filename = \"{log}\" }} }}\n\
                 interfaces = {{ \"127.0.0.1\" }}\n\
                 local_interfaces = {{ \"127.0.0.1\" }}\n\
                 c2s_ports = {{ {c2s} }}\n\
                 s2s_ports = {{ {s2s} }}\n\
                 c2s_direct_tls_ports = {{ }}\n\
                 s2s_direct_tls_ports = {{ }}\n\
                 legacy_ssl_ports = {{ }}\n\
                 component_ports = {{ }}\n\
                 http_ports = {{ }}\n\
                 https_ports = {{ }}\n\
                 modules_enabled = {{ \"tls\"; \"saslauth\"; \"disco\"; \"dialback\" }}\n\
                 authentication = \"internal_hashed\"\n\
                 storage = \"internal\"\n\
                 ssl = {{ certificate = \"{chain}\"; key = \"{key}\" }}\n\
                 VirtualHost \"localhost\"\n\
                 \x20   ssl = {{ certificate = \"{chain}\"; key = \"{key}\" }}\n",
                pid = run.join("prosody.pid").display(),
                data = data.display(),
                log = log.display(),
                chain = files.chain.display(),
                key = files.key.display(),
            ),
        )?;
        let mut prosody = Launch::new(PROSODY).arg("-F").arg("--config").arg(&conf);
        if user.is_some() {
            prosody = prosody.user("prosody");
        }
        let daemon = instance
            .spawn(prosody, &[Ready::Port(c2s), Ready::Port(s2s)])
            .await?;
        Ok(Prosody { daemon, c2s, s2s })
    }
}

/// Starts a Prosody and compares certwatch with openssl on the port `port` picks.
async fn compare(starttls: &str, port: fn(&Prosody) -> u16) {
    let chain = Chain::new();
    let server = daemon::running(Prosody::start(&chain.server_tls()).await);
    let address = format!("127.0.0.1:{}", port(&server));
    openssl::assert_certwatch_matches_openssl(&address, starttls, &chain, &|| server.daemon.log())
        .await;
}

async fn c2s_starttls_chain_matches_openssl_s_client() {
    compare("xmpp", |p| p.c2s).await;
}

async fn s2s_starttls_chain_matches_openssl_s_client() {
    compare("xmpp_server", |p| p.s2s).await;
}
