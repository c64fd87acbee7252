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
//! - A TLS 1.0-only `openssl s_server` behind Dante: the legacy second hello opens a
//!   tunnel of its own (the transcript shows both), reads the chain and reports the
//!   endpoint legacy-only, as it does without a proxy.
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
        trial!(
            &[DANTE, crate::tinyproxy::TINYPROXY_NEED, ROOT],
            async every_starttls_dialect_goes_through_both_kinds_of_proxy
        ),
        trial!(
            &[DANTE, ROOT, OPENSSL],
            async the_legacy_hello_goes_through_the_proxy_too
        ),
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

/// A scripted server for each STARTTLS dialect (and `none`), presenting `tls`.
mod dialects {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rustls::ServerConfig;

    use crate::support::binary_server::{BinaryServer, Step};
    use crate::support::line_server::{LineScript, LineServer};
    use crate::support::smtp_server::{SmtpScript, SmtpServer};
    use crate::support::tls_server::{ServerSpec, TlsServer};

    /// A running server of some dialect; stopped when dropped.
    pub enum Server {
        Line(LineServer),
        Binary(BinaryServer),
        Smtp(SmtpServer),
        Tls(TlsServer),
    }

    impl Server {
        pub fn addr(&self) -> SocketAddr {
            match self {
                Server::Line(s) => s.addr,
                Server::Binary(s) => s.addr,
                Server::Smtp(s) => s.addr,
                Server::Tls(s) => s.address().parse().expect("an address"),
            }
        }
    }

    fn lines(
        greeting: &str,
        unknown: &str,
        on: &[(&str, &str)],
        upgrade: (&str, &str),
    ) -> LineScript {
        let mut script = LineScript::new(greeting, unknown);
        for (command, reply) in on {
            script = script.on(command, reply);
        }
        script.upgrade(upgrade.0, upgrade.1)
    }

    fn xmpp(namespace: &str) -> Vec<Step> {
        let header = format!(
            "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xml:lang='en' xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams'>"
        );
        let opening = format!(
            "<?xml version='1.0'?><stream:stream xmlns='{namespace}' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        );
        vec![
            Step::Expect(header.into_bytes()),
            Step::Send(opening.into_bytes()),
            Step::Expect(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec()),
            Step::Send(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>".to_vec()),
            Step::Tls,
        ]
    }

    fn mysql_handshake() -> Vec<u8> {
        let capabilities: u32 = 0xdfff_ffff;
        let mut p = vec![10];
        p.extend_from_slice(b"8.0.36\0");
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"\x01\x02\x03\x04\x05\x06\x07\x08\0");
        p.extend_from_slice(&capabilities.to_le_bytes()[..2]);
        p.push(255);
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&capabilities.to_le_bytes()[2..]);
        p.push(21);
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\0");
        p.extend_from_slice(b"caching_sha2_password\0");
        let mut packet = (p.len() as u32).to_le_bytes()[..3].to_vec();
        packet.push(0);
        packet.extend_from_slice(&p);
        packet
    }

    fn ldap_success() -> Vec<u8> {
        let tlv = |tag: u8, value: &[u8]| [&[tag, value.len() as u8][..], value].concat();
        let mut op = tlv(0x0a, &[0]);
        op.extend(tlv(0x04, b""));
        op.extend(tlv(0x04, b""));
        op.extend(tlv(0x8a, b"1.3.6.1.4.1.1466.20037"));
        let mut body = tlv(0x02, &[1]);
        body.extend(tlv(0x78, &op));
        tlv(0x30, &body)
    }

    /// Starts a server speaking `dialect` (as `starttls:` names it).
    pub async fn start(dialect: &str, spec: &ServerSpec) -> Server {
        let tls: Arc<ServerConfig> = spec.config();
        match dialect {
            "none" => Server::Tls(TlsServer::start(spec.clone()).await),
            "smtp" => Server::Smtp(SmtpServer::start(SmtpScript::good(), tls).await),
            "lmtp" => Server::Line(
                LineServer::start(
                    lines(
                        "220 lmtp.test LMTP ready\r\n",
                        "500 5.5.1 unknown\r\n",
                        &[("LHLO", "250-lmtp.test\r\n250 STARTTLS\r\n")],
                        ("STARTTLS", "220 2.0.0 go\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "imap" => Server::Line(
                LineServer::start(
                    lines(
                        "* OK IMAP4rev1 ready\r\n",
                        "* BAD unknown\r\n",
                        &[(
                            "a001 CAPABILITY",
                            "* CAPABILITY IMAP4rev1 STARTTLS\r\na001 OK done\r\n",
                        )],
                        ("a002 STARTTLS", "a002 OK Begin TLS\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "pop3" => Server::Line(
                LineServer::start(
                    lines(
                        "+OK POP3 ready\r\n",
                        "-ERR unknown\r\n",
                        &[("CAPA", "+OK list\r\nSTLS\r\n.\r\n")],
                        ("STLS", "+OK go\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "ftp" => Server::Line(
                LineServer::start(
                    lines(
                        "220 ready\r\n",
                        "500 unknown\r\n",
                        &[("FEAT", "211-Features:\r\n AUTH TLS\r\n211 End\r\n")],
                        ("AUTH TLS", "234 AUTH TLS OK.\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "nntp" => Server::Line(
                LineServer::start(
                    lines(
                        "200 news ready\r\n",
                        "500 unknown\r\n",
                        &[(
                            "CAPABILITIES",
                            "101 list:\r\nVERSION 2\r\nSTARTTLS\r\n.\r\n",
                        )],
                        ("STARTTLS", "382 go\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "sieve" => Server::Line(
                LineServer::start(
                    lines(
                        "\"IMPLEMENTATION\" \"x\"\r\n\"STARTTLS\"\r\nOK \"ready\"\r\n",
                        "NO \"unknown\"\r\n",
                        &[],
                        ("STARTTLS", "OK \"go\"\r\n"),
                    ),
                    tls,
                )
                .await,
            ),
            "ldap" => {
                let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
                request.extend_from_slice(b"1.3.6.1.4.1.1466.20037");
                Server::Binary(
                    BinaryServer::start(
                        vec![Step::Expect(request), Step::Send(ldap_success()), Step::Tls],
                        tls,
                    )
                    .await,
                )
            }
            "postgres" => Server::Binary(
                BinaryServer::start(
                    vec![
                        Step::Expect(vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]),
                        Step::Send(b"S".to_vec()),
                        Step::Tls,
                    ],
                    tls,
                )
                .await,
            ),
            "mysql" => Server::Binary(
                BinaryServer::start(
                    vec![
                        Step::Send(mysql_handshake()),
                        Step::ExpectWith(36, |p| p[3] == 1),
                        Step::Tls,
                    ],
                    tls,
                )
                .await,
            ),
            "xmpp" => Server::Binary(BinaryServer::start(xmpp("jabber:client"), tls).await),
            "xmpp_server" => Server::Binary(BinaryServer::start(xmpp("jabber:server"), tls).await),
            other => panic!("no scripted server for {other}"),
        }
    }
}

/// Every dialect reaches TLS through a SOCKS5 proxy (Dante) and an HTTP one
/// (Tinyproxy): the proxies are transparent to what follows them, including servers
/// that speak first, whose words may arrive with the proxy's own reply.
async fn every_starttls_dialect_goes_through_both_kinds_of_proxy() {
    use crate::support::pki::Validity;
    use crate::support::tls_server::ServerSpec;

    let chain = Chain::new();
    let leaf = chain.intermediate.leaf(&["localhost"], Validity::days(30));
    let spec = ServerSpec::new(leaf.chain(&[&chain.intermediate]), leaf.key());
    let dante = Dante::start(false).await;
    let tinyproxy = crate::tinyproxy::Tinyproxy::start(&[], false).await;
    for dialect in certwatch::config::StartTls::ALL.iter().map(|d| d.as_str()) {
        let server = dialects::start(dialect, &spec).await;
        for proxy in [
            format!("socks5h://127.0.0.1:{}", dante.port),
            format!("http://127.0.0.1:{}", tinyproxy.port),
        ] {
            let h = Harness::new();
            h.write("root.pem", &chain.root.pem);
            let yaml = format!(
                "targets:\n  - name: t\n    address: \"localhost:{}\"\n    ip_family: ipv4\n    starttls: {dialect}\n    timeout: 10s\n    trust: none\n    tls:\n      ca_file: root.pem\n    proxy: {proxy}\n",
                server.addr().port()
            );
            let (_, scrape) = h.probe(&yaml).await;
            assert_eq!(
                scrape.value(PROBE_SUCCESS, &T),
                1.0,
                "{dialect} through {proxy}: {}",
                scrape.text
            );
            assert_eq!(
                scrape.label(CERT_INFO, &[(LABEL_DEPTH, "0")], "serial"),
                leaf.serial_hex,
                "{dialect} through {proxy}"
            );
        }
    }
}

/// What lets Debian's OpenSSL 3.0 serve TLS 1.0.
const LEGACY_OPENSSL_CONF: &str = "openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
";

/// A TLS 1.0-only `openssl s_server` presenting `chain`.
async fn tls10_server(chain: &Chain) -> (Daemon, u16) {
    daemon::running(
        daemon::start_with_retries("openssl s_server", || async {
            let mut instance = Instance::new("s_server")?;
            let port = instance.port()?;
            let conf = instance.write_config("openssl.cnf", LEGACY_OPENSSL_CONF)?;
            let files = instance.write_tls("tls", &chain.server_tls(), None)?;
            let intermediate =
                instance.write_config("intermediate.pem", &chain.intermediate.pem)?;
            let launch = Launch::new("openssl")
                .args(["s_server", "-www", "-tls1", "-accept"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(&files.chain)
                .arg("-key")
                .arg(&files.key)
                .arg("-cert_chain")
                .arg(&intermediate)
                .env("OPENSSL_CONF", conf);
            let daemon = instance
                .spawn(launch, &[Ready::Log("server.out".into(), "ACCEPT".into())])
                .await?;
            Ok((daemon, port))
        })
        .await,
    )
}

async fn the_legacy_hello_goes_through_the_proxy_too() {
    use certwatch::probe::transcript;

    let chain = Chain::new();
    let (server, port) = tls10_server(&chain).await;
    let dante = Dante::start(false).await;
    let url = format!("socks5h://127.0.0.1:{}", dante.port);
    let h = Harness::new();
    h.write("root.pem", &chain.root.pem);
    let yaml = |legacy: &str| {
        format!(
            "targets:\n  - name: t\n    address: \"localhost:{port}\"\n    server_name: localhost\n    timeout: 15s\n    trust: none\n    legacy: {legacy}\n    tls:\n      ca_file: root.pem\n    proxy: {url}\n"
        )
    };
    let config = h.config(&yaml("on"));
    let spec = config.targets[0].clone();
    let (outcome, recorded) = transcript::recorded(certwatch::probe::run(&spec)).await;
    let text = recorded.render(&spec, &outcome, std::time::SystemTime::now());
    let logs = || {
        format!(
            "{text}\n--- dante\n{}\n--- s_server\n{}",
            dante.daemon.log(),
            server.log()
        )
    };
    let address = &outcome.addresses[0];
    assert!(address.legacy_only(), "{}", logs());
    assert_eq!(
        address.tls_params().map(|p| p.version),
        Some("TLSv1.0"),
        "{}",
        logs()
    );
    assert!(address.verified(), "{}", logs());
    assert_eq!(
        address.chain[0]
            .info
            .as_ref()
            .map(|i| i.serial_hex.clone())
            .ok(),
        Some(chain.leaf.serial_hex.clone())
    );
    // The name went to the proxy both times: once for the modern hello, once for the
    // legacy one, each over a tunnel of its own.
    let tunnel = format!("connect: through the proxy {url} to localhost:{port}\n");
    let legacy = "tls: the modern handshake cannot reach the server: a new connection";
    let first = text.find(&tunnel).unwrap_or_else(|| panic!("{}", logs()));
    let note = text[first..]
        .find(legacy)
        .unwrap_or_else(|| panic!("{}", logs()))
        + first;
    assert!(text[note..].contains(&tunnel), "{}", logs());
    assert!(
        text.contains("address localhost (resolved by the proxy):\n"),
        "{}",
        logs()
    );
    // With legacy off, the same endpoint is a handshake failure and nothing more.
    let (_, scrape) = h.probe(&yaml("off")).await;
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 0.0, "{}", scrape.text);
    assert_eq!(scrape.value(LEGACY_ONLY, &T), 0.0, "{}", scrape.text);
}
