//! HTTP CONNECT through a real proxy: a private Tinyproxy instance (started by the test
//! on a loopback port with its own configuration) in front of a real Postfix.
//!
//! - The configuration's ACL (`ConnectPort`) allows CONNECT to Postfix's port and to
//!   one closed port only: Postfix is reached (its banner may arrive in the same read
//!   as the proxy's reply, and must reach the SMTP dialogue), a port outside the ACL is
//!   `proxy_refused` (403), the closed port `unreachable` (Tinyproxy's 500 "Unable to
//!   connect" does not say why).
//! - With `BasicAuth`, the right password gets through; a wrong one (Tinyproxy answers
//!   401) or none (407) is `proxy_auth_failed`.
//! - The probe's transcript (`/probe?debug=true`, `check --verbose`) shows the connect
//!   to the proxy, the CONNECT exchange with the credential redacted, the tunnel and
//!   then the SMTP dialogue; the password appears nowhere.
//!
//! Needs root (Tinyproxy drops to `nobody`), `tinyproxy` and `postfix`; without them
//! the tests are ignored, and fail under `CI=true`.

use certwatch::metrics::names::*;

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, StartError};
use crate::support::postfix::{Postfix, POSTFIX};
use crate::support::tools::{trial, Need, Remedy, Trial, ROOT};
use crate::support::{Harness, Scrape};

/// The proxy.
const TINYPROXY: &str = "/usr/bin/tinyproxy";

/// Tinyproxy installed (Debian package `tinyproxy`).
pub const TINYPROXY_NEED: Need = Need {
    name: "tinyproxy",
    remedy: Remedy::Install("tinyproxy"),
    check: || daemon::require_program(TINYPROXY, "tinyproxy"),
};

pub fn trials() -> Vec<Trial> {
    let needs = &[TINYPROXY_NEED, POSTFIX, ROOT];
    vec![
        trial!(needs, async connect_reaches_the_allowed_port_and_the_acl_refuses_another),
        trial!(needs, async basic_auth_is_checked_by_the_proxy),
        trial!(needs, async the_transcript_shows_the_tunnel_and_never_the_password),
    ]
}

const USER: &str = "monitor";
const PASSWORD: &str = "s3cret";

pub(crate) struct Tinyproxy {
    daemon: Daemon,
    pub(crate) port: u16,
}

impl Tinyproxy {
    /// Starts Tinyproxy allowing CONNECT to `ports` only; with `auth`, it asks for
    /// [`USER`] and [`PASSWORD`].
    pub(crate) async fn start(ports: &[u16], auth: bool) -> Tinyproxy {
        daemon::running(
            daemon::start_with_retries("tinyproxy", || async {
                Self::try_start(ports, auth).await
            })
            .await,
        )
    }

    async fn try_start(ports: &[u16], auth: bool) -> Result<Tinyproxy, StartError> {
        let mut instance = Instance::new("tinyproxy")?;
        let port = instance.port()?;
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\nMaxClients 16\nAllow 127.0.0.1\nUser nobody\nGroup nogroup\n"
        );
        for allowed in ports {
            conf.push_str(&format!("ConnectPort {allowed}\n"));
        }
        if auth {
            conf.push_str(&format!("BasicAuth {USER} {PASSWORD}\n"));
        }
        let conf = instance.write_config("tinyproxy.conf", &conf)?;
        let launch = Launch::new(TINYPROXY).arg("-d").arg("-c").arg(&conf);
        let ready = [
            Ready::Port(port),
            Ready::Log("server.out".into(), "Accepting connections".into()),
        ];
        let daemon = instance.spawn(launch, &ready).await?;
        Ok(Tinyproxy { daemon, port })
    }
}

const T: [(&str, &str); 1] = [(LABEL_TARGET, "t")];

/// The configuration of one target `t` at `address` through `proxy`, in `h`.
fn yaml(h: &Harness, chain: &Chain, address: &str, proxy: &str, password: Option<&str>) -> String {
    h.write("root.pem", &chain.root.pem);
    let mut yaml = format!(
        "targets:\n  - name: t\n    address: \"{address}\"\n    starttls: smtp\n    server_name: localhost\n    timeout: 15s\n    trust: none\n    tls:\n      ca_file: root.pem\n    proxy: {proxy}\n"
    );
    if let Some(password) = password {
        h.write("proxy.pass", &format!("{password}\n"));
        yaml.push_str("    proxy_password_file: proxy.pass\n");
    }
    yaml
}

async fn probe(chain: &Chain, address: &str, proxy: &str, password: Option<&str>) -> Scrape {
    let h = Harness::new();
    let yaml = yaml(&h, chain, address, proxy, password);
    h.probe(&yaml).await.1
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

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().unwrap().parse().unwrap()
}

async fn connect_reaches_the_allowed_port_and_the_acl_refuses_another() {
    let chain = Chain::new();
    let postfix = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let smtp = port_of(&postfix.address());
    let proxy = Tinyproxy::start(&[smtp, closed], false).await;
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let scrape = probe(&chain, &postfix.address(), &url, None).await;
    assert_eq!(
        scrape.value(
            PROBE_SUCCESS,
            &[(LABEL_TARGET, "t"), (LABEL_IP, "127.0.0.1")]
        ),
        1.0,
        "{}\n--- tinyproxy\n{}\n--- postfix\n{}",
        scrape.text,
        proxy.daemon.log(),
        postfix.log()
    );
    assert_eq!(
        scrape.label(CERT_INFO, &[(LABEL_DEPTH, "0")], "serial"),
        chain.leaf.serial_hex
    );
    let scrape = probe(&chain, "127.0.0.1:9", &url, None).await;
    assert_eq!(
        failure(&scrape),
        connect("proxy_refused"),
        "{}",
        proxy.daemon.log()
    );
    let scrape = probe(&chain, &format!("127.0.0.1:{closed}"), &url, None).await;
    assert_eq!(
        failure(&scrape),
        connect("unreachable"),
        "{}",
        proxy.daemon.log()
    );
}

async fn basic_auth_is_checked_by_the_proxy() {
    let chain = Chain::new();
    let postfix = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let proxy = Tinyproxy::start(&[port_of(&postfix.address())], true).await;
    let with_user = format!("http://{USER}@127.0.0.1:{}", proxy.port);
    let scrape = probe(&chain, &postfix.address(), &with_user, Some(PASSWORD)).await;
    assert_eq!(
        scrape.value(PROBE_SUCCESS, &T),
        1.0,
        "{}\n--- tinyproxy\n{}",
        scrape.text,
        proxy.daemon.log()
    );
    let scrape = probe(&chain, &postfix.address(), &with_user, Some("wrong")).await;
    assert_eq!(failure(&scrape), connect("proxy_auth_failed"));
    let anonymous = format!("http://127.0.0.1:{}", proxy.port);
    let scrape = probe(&chain, &postfix.address(), &anonymous, None).await;
    assert_eq!(failure(&scrape), connect("proxy_auth_failed"));
}

async fn the_transcript_shows_the_tunnel_and_never_the_password() {
    use base64::Engine;
    use certwatch::probe::transcript;

    let chain = Chain::new();
    let postfix = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let smtp = port_of(&postfix.address());
    let proxy = Tinyproxy::start(&[smtp], true).await;
    let url = format!("http://{USER}@127.0.0.1:{}", proxy.port);
    let h = Harness::new();
    let config = h.config(&yaml(&h, &chain, &postfix.address(), &url, Some(PASSWORD)));
    let spec = config.targets[0].clone();
    let (outcome, recorded) = transcript::recorded(certwatch::probe::run(&spec)).await;
    let text = recorded.render(&spec, &outcome, std::time::SystemTime::now());
    assert!(
        outcome.addresses[0].success(),
        "{text}\n--- tinyproxy\n{}",
        proxy.daemon.log()
    );
    let order = [
        format!("proxy:        {url}\n"),
        "resolve: 127.0.0.1 in ".to_owned(),
        "address 127.0.0.1:\n".to_owned(),
        format!("connect: through the proxy {url} to 127.0.0.1:{smtp}\n"),
        format!("connect: to 127.0.0.1:{}\n", proxy.port),
        "connect: connected from 127.0.0.1:".to_owned(),
        format!("C: CONNECT 127.0.0.1:{smtp} HTTP/1.1\n"),
        "C: Proxy-Authorization: [redacted]\n".to_owned(),
        " 200 ".to_owned(),
        format!("connect: the proxy opened the tunnel to 127.0.0.1:{smtp} in "),
        "S: 220 ".to_owned(),
        "C: STARTTLS\n".to_owned(),
        "tls: handshake with SNI localhost".to_owned(),
        "  result:      success\n".to_owned(),
    ];
    let mut from = 0;
    for step in &order {
        let at = text[from..]
            .find(step.as_str())
            .unwrap_or_else(|| panic!("{step:?} missing after byte {from}:\n{text}"));
        from += at + step.len();
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, token.as_str()] {
        assert!(!text.contains(secret), "{secret:?} appears:\n{text}");
    }
}
