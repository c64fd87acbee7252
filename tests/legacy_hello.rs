//! The legacy second hello (`probe::legacy`) against real `openssl s_server` endpoints
//! in the configurations the modern handshake cannot reach, each compared with
//! `openssl s_client` on the same endpoint; the modern handshake (`probe::tls`) with
//! weak keys and long chains; and hostile servers scripted on loopback.
//!
//! Certificates are made with the `openssl` command (rcgen cannot make RSA-1024,
//! RSA-PSS or P-521 keys); the servers run with an `OPENSSL_CONF` that lets Debian's
//! OpenSSL 3.0 serve TLS 1.0 and weak keys (`MinProtocol = TLSv1`, `@SECLEVEL=0`).

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certwatch::cert::ParsedCert;
use certwatch::probe::legacy::{
    self, capture, ChainLimit, Ending, KeyType, LegacyCapture, LegacyError, LegacyHello,
    LegacyVersion, MAX_CERTIFICATES, MAX_RECORDS,
};
use certwatch::probe::outcome::{AddressOutcome, HandshakeReason};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use support::daemon::{start_with_retries, started, Daemon, Instance, Launch, Ready};
use support::openssl::{run_bounded, x509_facts};
use support::tools::require;
use support::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// What lets Debian's OpenSSL 3.0 (client and server) speak TLS 1.0 and use weak keys.
const LEGACY_OPENSSL_CONF: &str = "openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
";

/// The configuration `openssl req` gets: a name from `-subj`, nothing else.
const REQ_CONF: &str = "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n";

/// How long one legacy capture may take.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(10);

fn openssl_present() -> bool {
    require(&[("openssl", "openssl")])
}

/// A key to make.
#[derive(Clone, Copy, Debug)]
enum Key {
    Rsa(u32),
    RsaPss,
    Ec(&'static str),
}

/// A certificate and its key, made by [`Pki`].
#[derive(Clone, Debug)]
struct Issued {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

/// How a certificate is issued.
#[derive(Clone, Debug)]
struct Profile {
    ca: bool,
    digest: &'static str,
    /// Extra lines for the extension section (e.g. a large comment).
    extra: String,
}

impl Profile {
    fn leaf() -> Profile {
        Profile {
            ca: false,
            digest: "sha256",
            extra: String::new(),
        }
    }

    fn ca() -> Profile {
        Profile {
            ca: true,
            ..Profile::leaf()
        }
    }
}

/// Test certificates made with the `openssl` command in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    serial: std::cell::Cell<u64>,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("req.cnf"), REQ_CONF).expect("req.cnf");
        std::fs::write(dir.path().join("openssl.cnf"), LEGACY_OPENSSL_CONF).expect("conf");
        let seed: [u8; 4] = {
            let mut b = [0u8; 4];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
                .expect("random");
            b
        };
        Pki {
            dir,
            serial: std::cell::Cell::new(u64::from(u32::from_be_bytes(seed)) << 16 | 1),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `OPENSSL_CONF` for legacy servers and clients.
    fn legacy_conf(&self) -> PathBuf {
        self.path("openssl.cnf")
    }

    async fn openssl(&self, label: &str, args: &[&str]) {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(self.dir.path());
        let (ok, out) = run_bounded(command, self.dir.path(), label).await;
        assert!(ok, "openssl {args:?} failed:\n{out}");
    }

    async fn key(&self, name: &str, key: Key) -> PathBuf {
        let file = format!("{name}.key");
        let bits;
        let curve;
        let args: Vec<&str> = match key {
            Key::Rsa(n) => {
                bits = format!("rsa_keygen_bits:{n}");
                vec!["-algorithm", "RSA", "-pkeyopt", &bits]
            }
            Key::RsaPss => vec!["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"],
            Key::Ec(name) => {
                curve = format!("ec_paramgen_curve:{name}");
                vec!["-algorithm", "EC", "-pkeyopt", &curve]
            }
        };
        let mut all = vec!["genpkey"];
        all.extend(args);
        all.extend(["-out", &file]);
        self.openssl(&format!("genpkey-{name}"), &all).await;
        self.path(&file)
    }

    fn read(&self, name: &str, cert: PathBuf, key: PathBuf) -> Issued {
        let der = CertificateDer::from_pem_file(&cert)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .into_owned();
        Issued { cert, key, der }
    }

    /// A self-signed root.
    async fn root(&self, name: &str, key: Key) -> Issued {
        let key = self.key(name, key).await;
        let cert = format!("{name}.pem");
        let subject = format!("/CN={name}/O=certwatch legacy tests");
        self.openssl(
            &format!("root-{name}"),
            &[
                "req",
                "-config",
                "req.cnf",
                "-new",
                "-x509",
                "-key",
                key.to_str().expect("utf-8"),
                "-subj",
                &subject,
                "-days",
                "3650",
                "-sha256",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-out",
                &cert,
            ],
        )
        .await;
        self.read(name, self.path(&cert), key)
    }

    /// A certificate for `name` (a CA, or a leaf for `localhost`) issued by `issuer`.
    async fn issue(&self, name: &str, key: Key, issuer: &Issued, profile: Profile) -> Issued {
        let key = self.key(name, key).await;
        let csr = format!("{name}.csr");
        let cert = format!("{name}.pem");
        let ext = format!("{name}.ext");
        let subject = format!("/CN={name}/O=certwatch legacy tests");
        let section = if profile.ca {
            "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\n".to_owned()
        } else {
            "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost\n".to_owned()
        };
        std::fs::write(
            self.path(&ext),
            format!("[ext]\n{section}{}\n", profile.extra),
        )
        .expect("ext");
        self.openssl(
            &format!("csr-{name}"),
            &[
                "req",
                "-config",
                "req.cnf",
                "-new",
                "-key",
                key.to_str().expect("utf-8"),
                "-subj",
                &subject,
                "-out",
                &csr,
            ],
        )
        .await;
        let serial = self.serial.get();
        self.serial.set(serial + 1);
        let serial = format!("0x{serial:x}");
        let digest = format!("-{}", profile.digest);
        self.openssl(
            &format!("x509-{name}"),
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                issuer.cert.to_str().expect("utf-8"),
                "-CAkey",
                issuer.key.to_str().expect("utf-8"),
                "-set_serial",
                &serial,
                "-days",
                "200",
                &digest,
                "-extfile",
                &ext,
                "-extensions",
                "ext",
                "-out",
                &cert,
            ],
        )
        .await;
        self.read(name, self.path(&cert), key)
    }

    /// A PEM file holding `certs`, in order.
    fn bundle(&self, name: &str, certs: &[&Issued]) -> PathBuf {
        let pem: String = certs
            .iter()
            .map(|c| std::fs::read_to_string(&c.cert).expect("pem"))
            .collect();
        let path = self.path(name);
        std::fs::write(&path, pem).expect("bundle");
        path
    }
}

/// A root, an intermediate, and a `localhost` leaf with `key` signed with `digest`.
struct Chain {
    root: Issued,
    intermediate: Issued,
    leaf: Issued,
    /// The intermediate, PEM, for `-cert_chain`.
    chain_file: PathBuf,
}

impl Chain {
    async fn new(pki: &Pki, tag: &str, root_key: Key, key: Key, digest: &'static str) -> Chain {
        let root = pki.root(&format!("{tag}-root"), root_key).await;
        let intermediate = pki
            .issue(
                &format!("{tag}-intermediate"),
                root_key,
                &root,
                Profile::ca(),
            )
            .await;
        let leaf = pki
            .issue(
                &format!("{tag}-leaf"),
                key,
                &intermediate,
                Profile {
                    digest,
                    ..Profile::leaf()
                },
            )
            .await;
        let chain_file = pki.bundle(&format!("{tag}-chain.pem"), &[&intermediate]);
        Chain {
            root,
            intermediate,
            leaf,
            chain_file,
        }
    }

    /// What the server presents: leaf and intermediate.
    fn presented(&self) -> Vec<CertificateDer<'static>> {
        vec![self.leaf.der.clone(), self.intermediate.der.clone()]
    }

    /// `-cert`, `-key`, `-cert_chain` for s_server.
    fn server_args(&self) -> Vec<String> {
        args(&[
            "-cert",
            path(&self.leaf.cert),
            "-key",
            path(&self.leaf.key),
            "-cert_chain",
            path(&self.chain_file),
        ])
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A running `openssl s_server -www`, stopped when dropped.
struct SServer {
    daemon: Daemon,
    port: u16,
}

impl SServer {
    /// Starts `openssl s_server -www -serverpref` with `server_args` under the legacy
    /// `OPENSSL_CONF`; `None` (after a skip notice) when it cannot start outside CI.
    async fn start(server_args: Vec<String>) -> Option<SServer> {
        let result = start_with_retries("openssl s_server", || {
            let server_args = server_args.clone();
            async move {
                let mut instance = Instance::new("s_server")?;
                let port = instance.port()?;
                let conf = instance.write_config("openssl.cnf", LEGACY_OPENSSL_CONF)?;
                let launch = Launch::new("openssl")
                    .args(["s_server", "-www", "-serverpref", "-accept"])
                    .arg(format!("127.0.0.1:{port}"))
                    .args(server_args)
                    .env("OPENSSL_CONF", conf);
                let daemon = instance
                    .spawn(launch, &[Ready::Log("server.out".into(), "ACCEPT".into())])
                    .await?;
                Ok(SServer { daemon, port })
            }
        })
        .await;
        started("openssl s_server", result)
    }

    fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn log(&self) -> String {
        self.daemon.log()
    }
}

/// What `openssl s_client -showcerts` saw.
#[derive(Debug)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    /// `TLSv1.0` ... `TLSv1.3`, from `New, TLSv1.0, Cipher is ...`.
    version: String,
    /// The cipher, by its IANA name.
    cipher: String,
    leaf_pem: Option<String>,
    text: String,
}

/// OpenSSL's cipher names to IANA's, from `openssl ciphers -stdname`.
async fn iana_names(pki: &Pki) -> HashMap<String, String> {
    let mut command = Command::new("openssl");
    command
        .args(["ciphers", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .env("OPENSSL_CONF", pki.legacy_conf());
    let (ok, text) = run_bounded(command, pki.dir.path(), "ciphers").await;
    assert!(ok, "openssl ciphers:\n{text}");
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let iana = words.next()?;
            let _dash = words.next()?;
            let openssl = words.next()?;
            Some((openssl.to_owned(), iana.to_owned()))
        })
        .collect()
}

/// `openssl s_client -connect 127.0.0.1:PORT -showcerts CLIENT_ARGS`, with the legacy
/// `OPENSSL_CONF`.
async fn s_client(pki: &Pki, port: u16, client_args: &[&str], label: &str) -> Seen {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ])
        .args(client_args)
        .env("OPENSSL_CONF", pki.legacy_conf());
    let (_, text) = run_bounded(command, pki.dir.path(), &format!("s_client-{label}")).await;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .map(|c| c.expect("s_client PEM").into_owned())
        .collect();
    let leaf_pem = text.find("-----BEGIN CERTIFICATE-----").map(|start| {
        let end = text[start..]
            .find("-----END CERTIFICATE-----")
            .expect("end")
            + start;
        format!("{}-----END CERTIFICATE-----\n", &text[start..end])
    });
    // `New, TLSv1.0, Cipher is X` names the cipher's own version; the session block
    // says what was negotiated. In TLS 1.3 the session block may be missing (s_client
    // prints it when a ticket arrives before its stdin closes), but there the cipher's
    // version is the protocol's.
    let new = text
        .lines()
        .find_map(|l| l.strip_prefix("New, "))
        .and_then(|r| r.split_once(", Cipher is "))
        .unwrap_or_else(|| panic!("no `New, ...` line from s_client:\n{text}"));
    let session_protocol = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Protocol")
            .and_then(|r| r.trim_start().strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    });
    let version = match session_protocol.as_deref().unwrap_or(new.0) {
        "TLSv1" => "TLSv1.0".to_owned(),
        other => other.to_owned(),
    };
    let cipher = new.1.trim().to_owned();
    let names = iana_names(pki).await;
    let cipher = names.get(&cipher).cloned().unwrap_or(cipher);
    Seen {
        chain,
        version,
        cipher,
        leaf_pem,
        text,
    }
}

/// A connection to `address`, within a few seconds.
async fn connect(address: SocketAddr) -> TcpStream {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// The legacy hello to `address`, over a fresh connection, within [`CAPTURE_TIMEOUT`].
async fn legacy_to(address: SocketAddr, hello: &LegacyHello) -> Result<LegacyCapture, LegacyError> {
    let deadline = Instant::now() + CAPTURE_TIMEOUT;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(address))
        .await
        .expect("connect in time")
        .expect("connect");
    capture(tcp, hello, deadline).await
}

fn localhost() -> Option<ServerName<'static>> {
    Some(ServerName::try_from("localhost").expect("name"))
}

/// The modern probe (rustls, through `probe::run`) of `address` for `localhost`,
/// trusting `root`.
async fn modern(address: SocketAddr, root: &Issued) -> AddressOutcome {
    let h = Harness::new();
    std::fs::copy(&root.cert, h.path().join("root.pem")).expect("root");
    let (outcome, _) = h
        .probe(&format!(
            "targets:\n  - address: \"{address}\"\n    name: t\n    server_name: localhost\n    timeout: 10s\n    trust: none\n    tls:\n      ca_file: root.pem\n"
        ))
        .await;
    outcome.addresses.into_iter().next().expect("one address")
}

fn fingerprints(chain: &[CertificateDer<'_>]) -> Vec<String> {
    chain
        .iter()
        .map(|c| ParsedCert::from_der(c).fingerprint_sha256)
        .collect()
}

fn fingerprints_of(outcome: &AddressOutcome) -> Vec<String> {
    outcome
        .chain
        .iter()
        .map(|c| c.fingerprint_sha256.clone())
        .collect()
}

/// Asserts that the legacy capture and openssl saw the same chain, version and cipher,
/// that both are `expected`, and that certwatch reads the leaf's serial and notAfter
/// as openssl does.
async fn assert_same(
    pki: &Pki,
    what: &str,
    got: &LegacyCapture,
    seen: &Seen,
    expected: &[CertificateDer<'static>],
    server_log: &str,
) {
    let context = || {
        format!(
            "{what}: legacy {got:?}\ns_client:\n{}\ns_server:\n{server_log}",
            seen.text
        )
    };
    assert_eq!(
        got.chain.len(),
        seen.chain.len(),
        "chain length, {}",
        context()
    );
    assert!(
        got.chain == seen.chain,
        "chain DER differs from s_client's, {}",
        context()
    );
    assert!(
        got.chain == expected,
        "chain differs from the configured one, {}",
        context()
    );
    assert_eq!(got.truncated, None, "{}", context());
    assert_eq!(
        got.choice.version.as_label(),
        seen.version,
        "version, {}",
        context()
    );
    assert_eq!(got.choice.cipher.name, seen.cipher, "cipher, {}", context());
    let leaf = ParsedCert::from_der(&got.chain[0]);
    let info = leaf.info.as_ref().expect("the leaf parses");
    let facts = x509_facts(seen.leaf_pem.as_deref().expect("a leaf"), pki.dir.path()).await;
    assert!(
        info.serial_hex.eq_ignore_ascii_case(&facts.serial),
        "serial {} vs {}",
        info.serial_hex,
        facts.serial
    );
    assert_eq!(info.not_after, facts.not_after, "notAfter, {}", context());
}

/// A legacy-only endpoint: the modern handshake fails with one of `modern_reasons`;
/// the legacy hello reads `chain` with `version`, as `openssl s_client CLIENT_ARGS` does.
async fn legacy_only_case(
    pki: &Pki,
    what: &str,
    server_args: Vec<String>,
    client_args: &[&str],
    chain: &Chain,
    version: LegacyVersion,
    modern_reasons: &[HandshakeReason],
) -> Option<LegacyCapture> {
    let server = SServer::start(server_args).await?;
    let outcome = modern(server.address(), &chain.root).await;
    let failure = outcome.handshake.as_ref().expect_err(&format!(
        "{what}: the modern handshake cannot succeed:\n{}",
        server.log()
    ));
    eprintln!("{what}: the modern handshake failed: {failure}");
    assert!(
        modern_reasons
            .iter()
            .any(|r| certwatch::probe::outcome::FailureKind::Handshake(*r) == failure.kind),
        "{what}: the modern handshake failed with {failure}"
    );
    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: legacy hello: {e}\n{}", server.log()));
    assert_eq!(got.choice.version, version, "{what}");
    let seen = s_client(pki, server.port, client_args, what).await;
    assert_same(pki, what, &got, &seen, &chain.presented(), &server.log()).await;
    Some(got)
}

const VERSION_OR_NOTHING_IN_COMMON: &[HandshakeReason] = &[
    HandshakeReason::ProtocolVersion,
    HandshakeReason::HandshakeFailure,
];

#[tokio::test]
async fn a_tls_1_0_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "tls10", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let mut server = chain.server_args();
    server.push("-tls1".into());
    let Some(got) = legacy_only_case(
        &pki,
        "TLS 1.0 only",
        server.clone(),
        &["-servername", "localhost"],
        &chain,
        LegacyVersion::Tls10,
        &[HandshakeReason::ProtocolVersion],
    )
    .await
    else {
        return;
    };
    assert_eq!(got.tls_params().version, "TLSv1.0");
    // The cautious hello (client_version 1.0, at most 128 suites) reads it too.
    let server = SServer::start(server).await.expect("started once already");
    let cautious = legacy_to(
        server.address(),
        &LegacyHello::new(None, KeyType::Any).cautious(),
    )
    .await
    .expect("cautious hello");
    assert_eq!(cautious.chain, chain.presented());
    assert_eq!(cautious.choice.version, LegacyVersion::Tls10);
}

#[tokio::test]
async fn a_tls_1_1_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "tls11", Key::Ec("P-256"), Key::Rsa(2048), "sha256").await;
    let mut server = chain.server_args();
    server.push("-tls1_1".into());
    legacy_only_case(
        &pki,
        "TLS 1.1 only",
        server,
        &["-servername", "localhost"],
        &chain,
        LegacyVersion::Tls11,
        &[HandshakeReason::ProtocolVersion],
    )
    .await;
}

#[tokio::test]
async fn a_tls_1_2_cbc_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "cbc", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let mut server = chain.server_args();
    server.extend(args(&[
        "-tls1_2",
        "-cipher",
        "AES:CAMELLIA:!AESGCM:!AESCCM:@SECLEVEL=0",
    ]));
    let got = legacy_only_case(
        &pki,
        "TLS 1.2 CBC only",
        server,
        &["-servername", "localhost"],
        &chain,
        LegacyVersion::Tls12,
        VERSION_OR_NOTHING_IN_COMMON,
    )
    .await;
    if let Some(got) = got {
        assert!(got.choice.cipher.name.contains("_CBC_"), "{:?}", got.choice);
    }
}

#[tokio::test]
async fn an_rsa_key_exchange_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "kx-rsa", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let mut server = chain.server_args();
    server.extend(args(&["-tls1_2", "-cipher", "kRSA:@SECLEVEL=0"]));
    let got = legacy_only_case(
        &pki,
        "RSA key exchange only",
        server,
        &["-servername", "localhost"],
        &chain,
        LegacyVersion::Tls12,
        VERSION_OR_NOTHING_IN_COMMON,
    )
    .await;
    if let Some(got) = got {
        assert!(
            got.choice.cipher.name.starts_with("TLS_RSA_WITH_"),
            "{:?}",
            got.choice
        );
    }
}

#[tokio::test]
async fn a_dhe_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "dhe", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let mut server = chain.server_args();
    server.extend(args(&["-tls1_2", "-cipher", "kDHE:@SECLEVEL=0"]));
    let got = legacy_only_case(
        &pki,
        "DHE only",
        server,
        &["-servername", "localhost"],
        &chain,
        LegacyVersion::Tls12,
        VERSION_OR_NOTHING_IN_COMMON,
    )
    .await;
    if let Some(got) = got {
        assert!(
            got.choice.cipher.name.starts_with("TLS_DHE_RSA_WITH_"),
            "{:?}",
            got.choice
        );
    }
}

#[tokio::test]
async fn a_secp521r1_only_server_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "p521", Key::Ec("P-384"), Key::Ec("P-521"), "sha512").await;
    let mut server = chain.server_args();
    // TLS 1.3 stays on: the server finds no group in common with rustls.
    server.extend(args(&["-groups", "P-521"]));
    // openssl would use TLS 1.3 (it has P-521): compare at the version the legacy hello gets.
    let got = legacy_only_case(
        &pki,
        "secp521r1 only",
        server,
        &["-servername", "localhost", "-no_tls1_3"],
        &chain,
        LegacyVersion::Tls12,
        VERSION_OR_NOTHING_IN_COMMON,
    )
    .await;
    if let Some(got) = got {
        assert!(
            got.choice.cipher.name.starts_with("TLS_ECDHE_ECDSA_WITH_"),
            "{:?}",
            got.choice
        );
    }
}

#[tokio::test]
async fn a_server_with_an_rsa_pss_key_shows_its_chain() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "pss", Key::Rsa(2048), Key::RsaPss, "sha256").await;
    let server = chain.server_args();
    let got = legacy_only_case(
        &pki,
        "RSA-PSS key",
        server,
        &["-servername", "localhost", "-no_tls1_3"],
        &chain,
        LegacyVersion::Tls12,
        VERSION_OR_NOTHING_IN_COMMON,
    )
    .await;
    if let Some(got) = got {
        let leaf = ParsedCert::from_der(&got.chain[0]);
        let info = leaf.info.as_ref().expect("parses");
        eprintln!(
            "RSA-PSS leaf: key {:?}, cipher {}",
            info.key, got.choice.cipher.name
        );
        assert_eq!(info.key.algorithm, "RSA-PSS");
        assert_eq!(info.key.bits, Some(2048), "an RSA-PSS key's size is known");
    }
}

/// An endpoint the modern handshake completes: certwatch's probe and the legacy hello
/// both read what `openssl s_client` reads.
async fn modern_and_legacy_case(
    pki: &Pki,
    what: &str,
    chain: &Chain,
    extra: &[&str],
) -> Option<()> {
    let mut server_args = chain.server_args();
    server_args.extend(args(extra));
    let server = SServer::start(server_args).await?;
    let outcome = modern(server.address(), &chain.root).await;
    let params = outcome.handshake.as_ref().unwrap_or_else(|f| {
        panic!(
            "{what}: the modern handshake must complete: {f}\n{}",
            server.log()
        )
    });
    assert_eq!(
        fingerprints_of(&outcome),
        fingerprints(&chain.presented()),
        "{what}: the modern handshake's chain"
    );
    let seen = s_client(
        pki,
        server.port,
        &["-servername", "localhost"],
        &format!("{what}-modern"),
    )
    .await;
    assert_eq!(
        params.version, seen.version,
        "{what}: version, modern vs s_client"
    );
    assert_eq!(
        params.cipher, seen.cipher,
        "{what}: cipher, modern vs s_client"
    );

    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: legacy hello: {e}"));
    let seen = s_client(
        pki,
        server.port,
        &["-servername", "localhost", "-no_tls1_3"],
        &format!("{what}-legacy"),
    )
    .await;
    assert_same(pki, what, &got, &seen, &chain.presented(), &server.log()).await;
    Some(())
}

#[tokio::test]
async fn an_rsa_1024_leaf_completes_the_modern_handshake() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "rsa1024", Key::Rsa(2048), Key::Rsa(1024), "sha256").await;
    // TLS 1.3 (RSA-PSS over a 1024-bit key) and TLS 1.2 (ECDHE-RSA).
    modern_and_legacy_case(&pki, "RSA-1024 leaf, TLS 1.3", &chain, &[]).await;
    modern_and_legacy_case(&pki, "RSA-1024 leaf, TLS 1.2", &chain, &["-tls1_2"]).await;
}

#[tokio::test]
async fn a_sha1_signed_leaf_is_read_by_both_handshakes() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let chain = Chain::new(&pki, "sha1", Key::Rsa(2048), Key::Rsa(2048), "sha1").await;
    let leaf = ParsedCert::from_der(&chain.leaf.der);
    assert!(
        leaf.info
            .as_ref()
            .expect("parses")
            .signature_algorithm
            .to_lowercase()
            .contains("sha1"),
        "{:?}",
        leaf.info
    );
    modern_and_legacy_case(&pki, "SHA-1-signed leaf", &chain, &[]).await;
}

/// A root, `n - 1` intermediates, and a leaf: `n` certificates presented. With
/// `comment_bytes`, every certificate carries a comment that large.
async fn long_chain(pki: &Pki, tag: &str, n: usize, comment_bytes: usize) -> (Issued, Vec<Issued>) {
    let extra = if comment_bytes == 0 {
        String::new()
    } else {
        format!("nsComment = \"{}\"", "x".repeat(comment_bytes))
    };
    let root = pki.root(&format!("{tag}-root"), Key::Ec("P-256")).await;
    let mut issuer = root.clone();
    let mut intermediates = Vec::new();
    for i in 1..n {
        let ca = pki
            .issue(
                &format!("{tag}-ca{i}"),
                Key::Ec("P-256"),
                &issuer,
                Profile {
                    extra: extra.clone(),
                    ..Profile::ca()
                },
            )
            .await;
        intermediates.push(ca.clone());
        issuer = ca;
    }
    let leaf = pki
        .issue(
            &format!("{tag}-leaf"),
            Key::Ec("P-256"),
            &issuer,
            Profile {
                extra,
                ..Profile::leaf()
            },
        )
        .await;
    let mut presented = vec![leaf];
    presented.extend(intermediates.into_iter().rev());
    (root, presented)
}

fn long_chain_server_args(pki: &Pki, tag: &str, presented: &[Issued]) -> Vec<String> {
    let rest: Vec<&Issued> = presented[1..].iter().collect();
    let chain_file = pki.bundle(&format!("{tag}-chain.pem"), &rest);
    args(&[
        "-cert",
        path(&presented[0].cert),
        "-key",
        path(&presented[0].key),
        "-cert_chain",
        path(&chain_file),
    ])
}

/// A rustls client that records how many certificates the server sent and accepts
/// everything: what rustls itself does with a chain, beside certwatch's cut.
mod raw_rustls {
    use std::sync::{Arc, Mutex};

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug, Default)]
    pub struct Count(pub Mutex<Option<usize>>);

    impl ServerCertVerifier for Count {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let _ = end_entity;
            *self.0.lock().expect("lock") = Some(1 + intermediates.len());
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// The handshake's result and how many certificates the verifier was given.
    pub async fn handshake(
        address: std::net::SocketAddr,
    ) -> (Result<(), std::io::Error>, Option<usize>) {
        let count = Arc::new(Count::default());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(count.clone())
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = super::connect(address).await;
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            connector.connect(ServerName::try_from("localhost").expect("name"), tcp),
        )
        .await
        .expect("handshake in time")
        .map(drop);
        let n = *count.0.lock().expect("lock");
        (result, n)
    }
}

#[tokio::test]
async fn a_twenty_certificate_chain_is_read_whole() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let (root, presented) = long_chain(&pki, "twenty", 20, 0).await;
    assert_eq!(presented.len(), 20);
    let Some(server) = SServer::start(long_chain_server_args(&pki, "twenty", &presented)).await
    else {
        return;
    };
    let expected: Vec<CertificateDer<'static>> = presented.iter().map(|c| c.der.clone()).collect();

    // rustls hands all 20 to the verifier and completes the handshake.
    let (result, count) = raw_rustls::handshake(server.address()).await;
    result.expect("rustls completes the handshake with 20 certificates");
    assert_eq!(count, Some(20));

    // certwatch's probe completes too, and keeps up to its bound.
    let outcome = modern(server.address(), &root).await;
    assert!(outcome.handshake.is_ok(), "{:?}", outcome.handshake);
    assert_eq!(certwatch::probe::tls::MAX_CHAIN_LEN, 32);
    assert_eq!(fingerprints_of(&outcome), fingerprints(&expected));
    assert_eq!(outcome.chain_cut, None, "20 is under the bound");

    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .expect("legacy hello");
    let seen = s_client(
        &pki,
        server.port,
        &["-servername", "localhost", "-no_tls1_3"],
        "twenty",
    )
    .await;
    assert_same(
        &pki,
        "20-certificate chain",
        &got,
        &seen,
        &expected,
        &server.log(),
    )
    .await;
}

#[tokio::test]
async fn a_chain_over_the_bound_is_cut_at_32_and_reported() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let (_, presented) = long_chain(&pki, "forty", 40, 0).await;
    let Some(server) = SServer::start(long_chain_server_args(&pki, "forty", &presented)).await
    else {
        return;
    };
    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .expect("legacy hello");
    let seen = s_client(
        &pki,
        server.port,
        &["-servername", "localhost", "-no_tls1_3"],
        "forty",
    )
    .await;
    assert_eq!(seen.chain.len(), 40, "{}", seen.text);
    assert_eq!(got.chain.len(), MAX_CERTIFICATES);
    assert!(got.chain[..] == seen.chain[..MAX_CERTIFICATES]);
    let Some(ChainLimit::Certificates { remaining_bytes }) = got.truncated else {
        panic!("not reported as cut: {:?}", got.truncated);
    };
    let rest: usize = seen.chain[MAX_CERTIFICATES..]
        .iter()
        .map(|c| c.len() + 3)
        .sum();
    assert_eq!(remaining_bytes, rest);
}

#[tokio::test]
async fn a_chain_over_64_kib_defeats_rustls_but_not_the_legacy_hello() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    // 8 certificates of about 10 KiB: a Certificate message over rustls' 64 KiB.
    let (_, presented) = long_chain(&pki, "big", 8, 10_000).await;
    let total: usize = presented.iter().map(|c| c.der.len()).sum();
    assert!(total > 0xffff, "{total} bytes");
    let mut server_args = long_chain_server_args(&pki, "big", &presented);
    server_args.push("-tls1_2".into());
    let Some(server) = SServer::start(server_args).await else {
        return;
    };
    let (result, count) = raw_rustls::handshake(server.address()).await;
    let error = result.expect_err("rustls refuses a Certificate message over 64 KiB");
    let tls = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {error}"));
    eprintln!("rustls with a {total}-byte chain: {tls:?}");
    assert_eq!(
        tls,
        &rustls::Error::InvalidMessage(rustls::InvalidMessage::HandshakePayloadTooLarge)
    );
    assert!(legacy::calls_for_legacy_hello(tls));
    assert_eq!(count, None, "the verifier never saw the chain");

    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .expect("legacy hello");
    let expected: Vec<CertificateDer<'static>> = presented.iter().map(|c| c.der.clone()).collect();
    assert!(got.chain == expected);
    assert_eq!(got.truncated, None);
}

#[tokio::test]
async fn a_dual_certificate_server_shows_each_certificate_to_its_key_type() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let rsa = Chain::new(&pki, "dual-rsa", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let ec = Chain::new(
        &pki,
        "dual-ec",
        Key::Ec("P-256"),
        Key::Ec("P-256"),
        "sha256",
    )
    .await;
    let mut server_args = rsa.server_args();
    server_args.extend(args(&[
        "-dcert",
        path(&ec.leaf.cert),
        "-dkey",
        path(&ec.leaf.key),
        "-dcert_chain",
        path(&ec.chain_file),
    ]));
    let Some(server) = SServer::start(server_args).await else {
        return;
    };
    let log = server.log();
    for (key_type, chain, cipher_filter) in [
        (KeyType::Rsa, &rsa, "aRSA:@SECLEVEL=0"),
        (KeyType::Ecdsa, &ec, "aECDSA:@SECLEVEL=0"),
    ] {
        let got = legacy_to(server.address(), &LegacyHello::new(localhost(), key_type))
            .await
            .unwrap_or_else(|e| panic!("{key_type:?}: {e}"));
        let seen = s_client(
            &pki,
            server.port,
            &[
                "-servername",
                "localhost",
                "-no_tls1_3",
                "-cipher",
                cipher_filter,
            ],
            &format!("dual-{key_type:?}"),
        )
        .await;
        assert_same(
            &pki,
            &format!("dual, {key_type:?}"),
            &got,
            &seen,
            &chain.presented(),
            &log,
        )
        .await;
    }
    // Offered everything, the server picks by its own preference, as it does for openssl.
    let any = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .expect("any");
    let seen = s_client(
        &pki,
        server.port,
        &["-servername", "localhost", "-no_tls1_3"],
        "dual-any",
    )
    .await;
    assert!(any.chain == seen.chain, "any: {any:?}\n{}", seen.text);
    assert!(any.chain == rsa.presented() || any.chain == ec.presented());
}

#[tokio::test]
async fn sni_or_none_selects_the_named_or_the_default_certificate() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let default = Chain::new(&pki, "default", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let named = Chain::new(&pki, "named", Key::Rsa(2048), Key::Rsa(2048), "sha256").await;
    let mut server_args = default.server_args();
    server_args.extend(args(&[
        "-tls1",
        "-servername",
        "localhost",
        "-cert2",
        path(&named.leaf.cert),
        "-key2",
        path(&named.leaf.key),
    ]));
    let Some(server) = SServer::start(server_args).await else {
        return;
    };
    // s_server's -cert2 takes no chain file: the SNI certificate comes alone.
    let got = legacy_to(
        server.address(),
        &LegacyHello::new(localhost(), KeyType::Any),
    )
    .await
    .expect("with SNI");
    let seen = s_client(&pki, server.port, &["-servername", "localhost"], "sni").await;
    assert!(got.chain == seen.chain, "{got:?}\n{}", seen.text);
    assert_eq!(
        got.chain[0], named.leaf.der,
        "with SNI: the named certificate"
    );

    let got = legacy_to(server.address(), &LegacyHello::new(None, KeyType::Any))
        .await
        .expect("without SNI");
    let seen = s_client(&pki, server.port, &["-noservername"], "no-sni").await;
    assert_same(
        &pki,
        "no SNI",
        &got,
        &seen,
        &default.presented(),
        &server.log(),
    )
    .await;
    assert_eq!(got.choice.version, LegacyVersion::Tls10);
}

#[tokio::test]
async fn every_suite_openssl_can_serve_with_a_certificate_is_offered() {
    if !openssl_present() {
        return;
    }
    let pki = Pki::new();
    let mut command = Command::new("openssl");
    command
        .args(["ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"])
        .env("OPENSSL_CONF", pki.legacy_conf());
    let (ok, text) = run_bounded(command, pki.dir.path(), "ciphers-v").await;
    assert!(ok, "{text}");
    let offered = LegacyHello::new(None, KeyType::Any).suites();
    let mut checked = 0;
    for line in text.lines() {
        // `0xC0,0x2C - ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=... Mac=...`
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(code) = words.first() else { continue };
        let auth = words
            .iter()
            .find_map(|w| w.strip_prefix("Au="))
            .unwrap_or("");
        let kx = words
            .iter()
            .find_map(|w| w.strip_prefix("Kx="))
            .unwrap_or("");
        let version = words.get(3).copied().unwrap_or("");
        // RSA-PSK and SRP-RSA come with a certificate but need a secret the probe lacks.
        if version == "TLSv1.3"
            || !matches!(auth, "RSA" | "ECDSA" | "DSS")
            || kx.contains("PSK")
            || kx.contains("SRP")
        {
            continue;
        }
        let (hi, lo) = code.split_once(',').expect("code");
        let id = u16::from_str_radix(hi.trim_start_matches("0x"), 16).expect("hex") << 8
            | u16::from_str_radix(lo.trim_start_matches("0x"), 16).expect("hex");
        assert!(offered.contains(&id), "{line}: not offered");
        checked += 1;
    }
    assert!(checked > 60, "only {checked} suites checked:\n{text}");
}

// --- Hostile servers -------------------------------------------------------------

/// A server that accepts one connection on 127.0.0.1 and runs `script` on it.
async fn fake<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        if let Ok((tcp, _)) = listener.accept().await {
            let _ = tokio::time::timeout(Duration::from_secs(30), script(tcp)).await;
        }
    });
    address
}

/// Reads the client's hello record whole.
async fn read_hello(tcp: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 5];
    tcp.read_exact(&mut header).await.expect("hello header");
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut body = vec![0u8; len];
    tcp.read_exact(&mut body).await.expect("hello body");
    [header.to_vec(), body].concat()
}

fn u24(n: usize) -> [u8; 3] {
    let b = (n as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    [vec![msg_type], u24(body.len()).to_vec(), body.to_vec()].concat()
}

fn server_hello(version: u16, suite: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[1; 32]);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    message(2, &body)
}

fn certificate(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let list: Vec<u8> = certs
        .iter()
        .flat_map(|c| [u24(c.len()).to_vec(), c.to_vec()].concat())
        .collect();
    message(11, &[u24(list.len()).to_vec(), list].concat())
}

fn records(content_type: u8, payload: &[u8], fragment: usize) -> Vec<u8> {
    payload
        .chunks(fragment)
        .flat_map(|chunk| {
            let len = (chunk.len() as u16).to_be_bytes();
            [vec![content_type, 3, 1, len[0], len[1]], chunk.to_vec()].concat()
        })
        .collect()
}

/// A real-looking chain (rcgen), for the fakes to send.
fn sample_chain() -> Vec<CertificateDer<'static>> {
    let root = support::pki::Ca::root("legacy fake root");
    let intermediate = root.intermediate(
        "legacy fake intermediate",
        support::pki::Validity::days(300),
    );
    let leaf = intermediate.leaf(&["localhost"], support::pki::Validity::days(90));
    leaf.chain(&[&intermediate, &root])
}

async fn legacy_to_fake(
    address: SocketAddr,
    hello: LegacyHello,
) -> (Result<LegacyCapture, LegacyError>, Duration) {
    let started = Instant::now();
    let result = legacy_to(address, &hello).await;
    (result, started.elapsed())
}

#[tokio::test]
async fn garbage_is_not_tls() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("garbage");
    assert!(
        matches!(&e, LegacyError::NotTls { received, .. } if received.starts_with(b"HTTP/1.1")),
        "{e:?}"
    );
    assert_eq!(e.to_failure().kind.reason_label(), "protocol_error");
}

#[tokio::test]
async fn an_alert_is_reported_with_its_name() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp.write_all(&records(21, &[2, 70], 2)).await;
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("alert");
    assert!(
        matches!(
            e,
            LegacyError::Alert {
                level: 2,
                description: 70,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("protocol_version"), "{e}");
    assert_eq!(e.to_failure().kind.reason_label(), "protocol_version");
}

#[tokio::test]
async fn a_huge_declared_record_fails_at_once() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp.write_all(&[22, 3, 3, 0xff, 0xff]).await;
        // Then nothing: the client must not wait for 64 KiB.
        let _ = tcp.read(&mut [0u8; 64]).await;
    })
    .await;
    let (result, took) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("too large");
    assert!(
        matches!(
            e,
            LegacyError::RecordTooLarge {
                declared: 0xffff,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(took < CAPTURE_TIMEOUT / 2, "took {took:?}");
}

#[tokio::test]
async fn endless_tiny_records_stop_at_the_record_bound() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        // A ServerHello that declares 16 MiB, one byte per record, forever.
        let mut i = 0u8;
        loop {
            let byte = if i == 0 { 2 } else { 0xff };
            i = i.wrapping_add(1).max(1);
            if tcp.write_all(&[22, 3, 1, 0, 1, byte]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let (result, took) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("endless");
    // The 16 MiB ServerHello is refused as soon as its header is whole, or the
    // records run out first: either way, a bounded failure.
    assert!(
        matches!(
            e,
            LegacyError::MessageTooLarge { .. } | LegacyError::TooManyRecords { .. }
        ),
        "{e:?}"
    );
    assert!(e.progress().records <= MAX_RECORDS + 1);
    assert!(took < CAPTURE_TIMEOUT / 2, "took {took:?}");
}

#[tokio::test]
async fn endless_empty_handshake_records_stop_at_the_record_bound() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        while tcp.write_all(&[22, 3, 1, 0, 0]).await.is_ok() {}
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("endless");
    assert!(matches!(e, LegacyError::TooManyRecords { .. }), "{e:?}");
    assert_eq!(e.progress().records, MAX_RECORDS + 1);
}

#[tokio::test]
async fn a_close_right_after_the_server_hello_says_so() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp
            .write_all(&records(22, &server_hello(0x0302, 0x0035), 16384))
            .await;
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("closed");
    assert!(
        matches!(
            e,
            LegacyError::Ended {
                how: Ending::Closed,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the server ended the handshake before sending its certificate: it closed the \
         connection, after the ServerHello (TLSv1.1, TLS_RSA_WITH_AES_256_CBC_SHA)"
    );
    assert_eq!(e.to_failure().kind.reason_label(), "reset");
}

#[tokio::test]
async fn a_reset_after_the_hello_says_so() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp.set_zero_linger();
        drop(tcp);
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let e = result.expect_err("reset");
    assert!(
        matches!(
            e,
            LegacyError::Ended {
                how: Ending::Io(std::io::ErrorKind::ConnectionReset),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("before any reply"), "{e}");
}

#[tokio::test]
async fn a_silent_server_times_out_at_the_deadline() {
    let address = fake(|mut tcp| async move {
        read_hello(&mut tcp).await;
        let _ = tcp.read(&mut [0u8; 64]).await;
    })
    .await;
    let tcp = connect(address).await;
    let deadline = Instant::now() + Duration::from_millis(300);
    let e = capture(tcp, &LegacyHello::default(), deadline)
        .await
        .expect_err("timeout");
    assert!(matches!(e, LegacyError::Timeout { .. }), "{e:?}");
    assert!(Instant::now() >= deadline);
    assert_eq!(e.reason(), HandshakeReason::Timeout);
}

#[tokio::test]
async fn a_certificate_message_split_over_many_records_is_reassembled() {
    let chain = sample_chain();
    let sent = chain.clone();
    let address = fake(move |mut tcp| async move {
        read_hello(&mut tcp).await;
        let mut handshake = server_hello(0x0303, 0xc02f);
        handshake.extend(certificate(&sent));
        handshake.extend(message(14, &[]));
        // Records of 1 to 97 bytes, with ignorable warnings between them, written in
        // small pieces.
        let mut bytes = Vec::new();
        let mut rest = &handshake[..];
        let mut size = 1;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at(size.min(rest.len()));
            bytes.extend(records(22, head, head.len()));
            if size % 10 == 0 {
                bytes.extend(records(21, &[1, 112], 2));
            }
            rest = tail;
            size = size % 97 + 1;
        }
        for piece in bytes.chunks(33) {
            if tcp.write_all(piece).await.is_err() {
                return;
            }
        }
        let _ = tcp.read(&mut [0u8; 64]).await;
    })
    .await;
    let (result, _) = legacy_to_fake(address, LegacyHello::default()).await;
    let got = result.expect("reassembled");
    assert!(got.chain == chain);
    assert_eq!(
        got.choice.cipher.name,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    );
    assert_eq!(got.choice.version, LegacyVersion::Tls12);
}

/// A server that answers only a hello it tolerates, with `chain`, and closes on any other.
async fn picky<P>(tolerates: P, chain: Vec<CertificateDer<'static>>) -> SocketAddr
where
    P: Fn(&[u8]) -> bool + Send + 'static,
{
    fake(move |mut tcp| async move {
        let hello = read_hello(&mut tcp).await;
        if !tolerates(&hello) {
            // As old servers do: an alert, then close.
            let _ = tcp.write_all(&records(21, &[2, 47], 2)).await;
            return;
        }
        let mut handshake = server_hello(0x0301, 0x002f);
        handshake.extend(certificate(&chain));
        let _ = tcp.write_all(&records(22, &handshake, 16384)).await;
        let _ = tcp.read(&mut [0u8; 64]).await;
    })
    .await
}

fn client_version(hello: &[u8]) -> u16 {
    u16::from_be_bytes([hello[9], hello[10]])
}

fn suite_count(hello: &[u8]) -> usize {
    let sid = usize::from(hello[43]);
    usize::from(u16::from_be_bytes([hello[44 + sid], hello[45 + sid]])) / 2
}

#[tokio::test]
async fn the_cautious_hello_reaches_a_version_intolerant_server() {
    let chain = sample_chain();
    let tolerates = |hello: &[u8]| client_version(hello) == 0x0301;
    let address = picky(tolerates, chain.clone()).await;
    let (full, _) = legacy_to_fake(address, LegacyHello::new(localhost(), KeyType::Any)).await;
    assert!(
        matches!(
            full,
            Err(LegacyError::Alert {
                description: 47,
                ..
            })
        ),
        "{full:?}"
    );
    let address = picky(tolerates, chain.clone()).await;
    let (cautious, _) = legacy_to_fake(
        address,
        LegacyHello::new(localhost(), KeyType::Any).cautious(),
    )
    .await;
    assert!(cautious.expect("cautious").chain == chain);
}

#[tokio::test]
async fn the_cautious_hello_reaches_a_server_that_chokes_on_128_suites() {
    let chain = sample_chain();
    let tolerates = |hello: &[u8]| suite_count(hello) <= 128;
    let address = picky(tolerates, chain.clone()).await;
    let (full, _) = legacy_to_fake(address, LegacyHello::new(None, KeyType::Any)).await;
    assert!(
        matches!(
            full,
            Err(LegacyError::Alert {
                description: 47,
                ..
            })
        ),
        "{full:?}"
    );
    let address = picky(tolerates, chain.clone()).await;
    let (cautious, _) =
        legacy_to_fake(address, LegacyHello::new(None, KeyType::Any).cautious()).await;
    assert!(cautious.expect("cautious").chain == chain);
    // The RSA and ECDSA offers are under the bound anyway.
    assert!(LegacyHello::new(None, KeyType::Rsa).suites().len() < 128);
    assert!(LegacyHello::new(None, KeyType::Ecdsa).suites().len() < 128);
}

#[tokio::test]
async fn hostile_bytes_from_a_socket_never_panic_or_hang() {
    // A few hundred random replies over real sockets: each ends in a value, in time.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..200 {
        let mut bytes = Vec::new();
        // xorshift: deterministic, no extra crates.
        let len = (seed % 3000) as usize;
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        // Half the rounds start like TLS, so the reader goes deeper.
        if round % 2 == 0 && bytes.len() > 5 {
            bytes[..3].copy_from_slice(&[22, 3, 1]);
        }
        let address = fake(move |mut tcp| async move {
            read_hello(&mut tcp).await;
            let _ = tcp.write_all(&bytes).await;
        })
        .await;
        let tcp = connect(address).await;
        let deadline = Instant::now() + Duration::from_secs(5);
        let result = capture(tcp, &LegacyHello::default(), deadline).await;
        if let Err(e) = &result {
            assert!(
                !matches!(e, LegacyError::Timeout { .. }),
                "round {round}: {e:?}"
            );
        }
    }
}
