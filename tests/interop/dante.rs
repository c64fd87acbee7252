//! SOCKS5 through a real proxy: a private Dante instance (`danted`, started by the test
//! on a loopback port with its own configuration) in front of a real Postfix.
//!
//! - `socks5` sends the address certwatch resolved (`ip` is it); `socks5h` sends the
//!   name, Dante resolves it (`ip` is empty).
//! - Dante's rules refusing a port give `proxy_refused`; a closed port behind it,
//!   `refused`.
//! - With `socksmethod: username`, Dante checks the user and password against the
//!   system password database. The test gives it one of its own: Dante runs in a
//!   private mount namespace (`unshare -m`) in which the instance's own `passwd`,
//!   `shadow` and `group` files are bind-mounted over `/etc/...`, so the user exists for
//!   Dante alone and the machine's files are never touched. A wrong password, or none,
//!   is `proxy_auth_failed`, and the password shows in no series and no detail.
//!
//! Needs root (Dante switches users; the namespace needs it too), `dante-server`,
//! `postfix` and `openssl` (to hash the password); without them the tests are ignored,
//! and fail under `CI=true`.

use std::process::Command;

use certwatch::metrics::names::*;

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, StartError};
use crate::support::postfix::{Postfix, POSTFIX};
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL, ROOT};
use crate::support::{Harness, Scrape};

/// The Dante SOCKS server.
const DANTED: &str = "/usr/sbin/danted";

/// Dante installed (Debian package `dante-server`), and `unshare` (util-linux).
pub const DANTE: Need = Need {
    name: "dante-server",
    remedy: Remedy::Install("dante-server"),
    check: installed,
};

fn installed() -> Result<(), String> {
    daemon::require_program(DANTED, "dante-server")?;
    daemon::require_program("/usr/bin/unshare", "util-linux")
}

pub fn trials() -> Vec<Trial> {
    let needs = &[DANTE, POSTFIX, ROOT, OPENSSL];
    vec![
        trial!(needs, async socks5_sends_the_address_and_socks5h_the_name),
        trial!(needs, async the_proxys_rules_and_a_closed_port_are_told_apart),
        trial!(needs, async a_user_and_password_are_checked_by_the_proxy_and_never_shown),
    ]
}

/// The user and password of the authenticating instance.
const USER: &str = "certwatch-proxy";
const PASSWORD: &str = "s3cret pass-w0rd";

/// A port Dante's rules refuse.
const BLOCKED_PORT: u16 = 9;

/// A running private Dante.
struct Dante {
    daemon: Daemon,
    port: u16,
}

impl Dante {
    /// Starts Dante; with `auth`, it asks for [`USER`] and [`PASSWORD`].
    async fn start(auth: bool) -> Dante {
        daemon::running(
            daemon::start_with_retries("dante", || async { Self::try_start(auth).await }).await,
        )
    }

    async fn try_start(auth: bool) -> Result<Dante, StartError> {
        let mut instance = Instance::new("dante")?;
        let port = instance.port()?;
        let dir = instance.path().to_owned();
        let conf = instance.write_config(
            "danted.conf",
            &format!(
                "logoutput: stderr\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 clientmethod: none\n\
                 socksmethod: {}\n\
                 user.privileged: root\n\
                 user.unprivileged: nobody\n\
                 client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 port = {BLOCKED_PORT} log: error connect }}\n\
                 socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8 log: error connect }}\n",
                if auth { "username" } else { "none" }
            ),
        )?;
        let danted = format!(
            "exec {DANTED} -f {} -p {}/danted.pid -N 1",
            conf.display(),
            dir.display()
        );
        let launch = if auth {
            // The user exists only in this instance's password files, bind-mounted over
            // /etc in a mount namespace of Dante's own.
            let hash = password_hash(PASSWORD).map_err(StartError::Fatal)?;
            instance.write_config(
                "passwd",
                &format!(
                    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n{USER}:x:64999:65534::/nonexistent:/usr/sbin/nologin\n"
                ),
            )?;
            instance.write_config("group", "root:x:0:\nnogroup:x:65534:\n")?;
            instance.write(
                "shadow",
                &format!("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n{USER}:{hash}:19000:0:99999:7:::\n"),
                None,
                0o600,
            )?;
            let d = dir.display();
            Launch::new("/usr/bin/unshare").args([
                "--mount".to_owned(),
                "--propagation".to_owned(),
                "private".to_owned(),
                "sh".to_owned(),
                "-c".to_owned(),
                format!(
                    "mount --bind {d}/passwd /etc/passwd && mount --bind {d}/shadow /etc/shadow && mount --bind {d}/group /etc/group && {danted}"
                ),
            ])
        } else {
            Launch::new("sh").arg("-c").arg(danted)
        };
        let ready = [
            Ready::Port(port),
            Ready::Log("server.out".into(), "running".into()),
        ];
        let daemon = instance.spawn(launch, &ready).await?;
        Ok(Dante { daemon, port })
    }
}

/// A SHA-512 crypt hash of `password`, as /etc/shadow holds it.
fn password_hash(password: &str) -> Result<String, String> {
    let output = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(password.as_bytes())?;
            child.wait_with_output()
        })
        .map_err(|e| format!("openssl passwd: {e}"))?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && hash.starts_with("$6$") {
        Ok(hash)
    } else {
        Err(format!("openssl passwd -6 gave {hash:?}"))
    }
}

const T: [(&str, &str); 1] = [(LABEL_TARGET, "t")];

/// Probes `address` through `proxy` (with `password` in a file when given), trusting
/// `chain`'s root.
async fn probe(
    chain: &Chain,
    address: &str,
    proxy: &str,
    password: Option<&str>,
) -> (Harness, Scrape) {
    let h = Harness::new();
    h.write("root.pem", &chain.root.pem);
    let mut yaml = format!(
        "targets:\n  - name: t\n    address: \"{address}\"\n    starttls: smtp\n    server_name: localhost\n    ip_family: ipv4\n    timeout: 15s\n    trust: none\n    tls:\n      ca_file: root.pem\n    proxy: {proxy}\n"
    );
    if let Some(password) = password {
        h.write("proxy.pass", &format!("{password}\n"));
        yaml.push_str("    proxy_password_file: proxy.pass\n");
    }
    let (_, scrape) = h.probe(&yaml).await;
    (h, scrape)
}

fn failure(scrape: &Scrape) -> (String, String) {
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 0.0, "{}", scrape.text);
    (
        scrape.label(PROBE_FAILURE_INFO, &T, LABEL_STAGE),
        scrape.label(PROBE_FAILURE_INFO, &T, LABEL_REASON),
    )
}

fn connect(reason: &str) -> (String, String) {
    ("connect".into(), reason.into())
}

async fn socks5_sends_the_address_and_socks5h_the_name() {
    let chain = Chain::new();
    let postfix = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let dante = Dante::start(false).await;
    let port = postfix.address().rsplit(':').next().unwrap().to_owned();
    let proxy = dante.port;
    let context = |scrape: &Scrape| {
        format!(
            "{}\n--- dante\n{}\n--- postfix\n{}",
            scrape.text,
            dante.daemon.log(),
            postfix.log()
        )
    };
    for (scheme, ip) in [("socks5", "127.0.0.1"), ("socks5h", "")] {
        let (_, scrape) = probe(
            &chain,
            &format!("localhost:{port}"),
            &format!("{scheme}://127.0.0.1:{proxy}"),
            None,
        )
        .await;
        assert_eq!(
            scrape.value(PROBE_SUCCESS, &[(LABEL_TARGET, "t"), (LABEL_IP, ip)]),
            1.0,
            "{scheme}: {}",
            context(&scrape)
        );
        assert_eq!(
            scrape.find(HANDSHAKE_SUCCESS, &T).len(),
            1,
            "{scheme}: one address"
        );
        assert_eq!(
            scrape.label(CERT_INFO, &[(LABEL_DEPTH, "0")], "serial"),
            chain.leaf.serial_hex,
            "{scheme}"
        );
        assert!(scrape.has(PROBE_PHASE_DURATION, &[(LABEL_PHASE, "starttls")]));
    }
}

async fn the_proxys_rules_and_a_closed_port_are_told_apart() {
    let chain = Chain::new();
    let dante = Dante::start(false).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let proxy = format!("socks5://127.0.0.1:{}", dante.port);
    let (_, scrape) = probe(&chain, &format!("127.0.0.1:{BLOCKED_PORT}"), &proxy, None).await;
    assert_eq!(
        failure(&scrape),
        connect("proxy_refused"),
        "{}",
        dante.daemon.log()
    );
    let (_, scrape) = probe(&chain, &format!("127.0.0.1:{closed}"), &proxy, None).await;
    assert_eq!(
        failure(&scrape),
        connect("refused"),
        "{}",
        dante.daemon.log()
    );
    // socks5h too: the name goes to Dante, the refusal comes back.
    let proxy = format!("socks5h://127.0.0.1:{}", dante.port);
    let (_, scrape) = probe(&chain, &format!("localhost:{closed}"), &proxy, None).await;
    assert_eq!(
        failure(&scrape),
        connect("refused"),
        "{}",
        dante.daemon.log()
    );
    assert_eq!(scrape.label(PROBE_FAILURE_INFO, &T, LABEL_IP), "");
    // A proxy that is not there: the connect to it is refused.
    let down = format!("socks5://127.0.0.1:{closed}");
    let (_, scrape) = probe(&chain, "127.0.0.1:25", &down, None).await;
    assert_eq!(failure(&scrape), connect("refused"));
}

async fn a_user_and_password_are_checked_by_the_proxy_and_never_shown() {
    let chain = Chain::new();
    let postfix = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let dante = Dante::start(true).await;
    let address = postfix.address();
    let with_user = format!("socks5h://{USER}@127.0.0.1:{}", dante.port);
    let (_, scrape) = probe(&chain, &address, &with_user, Some(PASSWORD)).await;
    assert_eq!(
        scrape.value(PROBE_SUCCESS, &T),
        1.0,
        "{}\n--- dante\n{}",
        scrape.text,
        dante.daemon.log()
    );
    let (_, scrape) = probe(&chain, &address, &with_user, Some("not the password")).await;
    assert_eq!(failure(&scrape), connect("proxy_auth_failed"));
    assert!(!scrape.text.contains("not the password"));
    let anonymous = format!("socks5h://127.0.0.1:{}", dante.port);
    let (_, scrape) = probe(&chain, &address, &anonymous, None).await;
    assert_eq!(failure(&scrape), connect("proxy_auth_failed"));

    // Through the probe itself: the failure's detail names the proxy and its user,
    // never the password.
    let h = Harness::new();
    h.write("root.pem", &chain.root.pem);
    h.write("proxy.pass", "wrong-password\n");
    let config = h.config(&format!(
        "targets:\n  - name: t\n    address: \"{address}\"\n    starttls: smtp\n    timeout: 15s\n    proxy: {with_user}\n    proxy_password_file: proxy.pass\n"
    ));
    let outcome = certwatch::probe::run(&config.targets[0]).await;
    let detail = format!("{:?}", outcome.addresses[0].handshake);
    assert!(detail.contains(USER), "{detail}");
    assert!(!detail.contains("wrong-password"), "{detail}");
    assert!(!format!("{:?}", config.targets[0]).contains("wrong-password"));
}
