//! The edges of what certwatch sees, against one private nginx serving every case on
//! its own loopback port: legacy-only servers (TLS 1.2 CBC only, RSA key exchange only,
//! DHE only, TLS 1.0 only, TLS 1.1 only) that only the legacy second hello reaches; an
//! RSA-1024 leaf and a SHA-1-signed leaf; an RSA+ECDSA dual-certificate vhost (each
//! certificate seen with `key_type`); a default vhost that differs from the SNI one
//! (`sni: false`); a 20-certificate chain; and leaf + intermediate + an expired
//! cross-signed copy of the root.
//!
//! Each case is probed by the real `certwatch` binary (one exporter for all of them,
//! scraped over HTTP) and by `openssl s_client` on the same endpoint, and both must
//! agree on the chain (length, every serial and notAfter) and the TLS version; the
//! exact `certwatch_chain_issue_info` and `certwatch_cert_weakness_info` series are
//! asserted for every case.
//!
//! nginx and openssl run with an `OPENSSL_CONF` that lets Debian's OpenSSL 3.0 serve
//! and speak TLS 1.0 and weak keys (`MinProtocol = TLSv1`, `@SECLEVEL=0`). The
//! certificates are made with the `openssl` command (rcgen cannot make RSA keys), but
//! for the cross-signed root, which needs a notAfter in the past (made by rcgen).
//! Needs the Debian packages `nginx` (`nginx-light`) and `openssl`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certwatch::metrics::names::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::support::daemon::{
    self, start_with_retries, Daemon, Instance, Launch, Ready, StartError,
};
use crate::support::exporter::Exporter;
use crate::support::openssl::{run_bounded, x509_facts};
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};
use crate::support::Scrape;

const NGINX: &str = "/usr/sbin/nginx";

const NGINX_NEED: Need = Need {
    name: "nginx",
    remedy: Remedy::Install("nginx-light"),
    check: || daemon::require_program(NGINX, "nginx"),
};

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[NGINX_NEED, OPENSSL],
        async legacy_weak_dual_default_long_and_cross_signed_endpoints_match_openssl
    )]
}

/// What lets Debian's OpenSSL 3.0 (nginx and s_client) speak TLS 1.0 and use weak keys.
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

/// How long the exporter may take to probe every case.
const PROBED_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Key {
    Rsa(u32),
    Ec,
}

/// A certificate and its key, as files.
#[derive(Clone, Debug)]
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

impl Issued {
    fn pem(&self) -> String {
        std::fs::read_to_string(&self.cert).expect("pem")
    }
}

/// Certificates made with the `openssl` command in a directory.
struct Pki {
    dir: PathBuf,
    serial: std::cell::Cell<u64>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        std::fs::write(dir.join("req.cnf"), REQ_CONF).expect("req.cnf");
        std::fs::write(dir.join("legacy.cnf"), LEGACY_OPENSSL_CONF).expect("legacy.cnf");
        let mut seed = [0u8; 4];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .expect("random");
        Pki {
            dir: dir.to_owned(),
            serial: std::cell::Cell::new(u64::from(u32::from_be_bytes(seed)) << 16 | 1),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    async fn openssl(&self, label: &str, args: &[&str]) {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(&self.dir);
        let (ok, out) = run_bounded(command, &self.dir, label).await;
        assert!(ok, "openssl {args:?} failed:\n{out}");
    }

    async fn key(&self, name: &str, key: Key) -> PathBuf {
        let file = format!("{name}.key");
        let bits;
        let mut args = vec!["genpkey"];
        match key {
            Key::Rsa(n) => {
                bits = format!("rsa_keygen_bits:{n}");
                args.extend(["-algorithm", "RSA", "-pkeyopt", &bits]);
            }
            Key::Ec => args.extend(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        }
        args.extend(["-out", &file]);
        self.openssl(&format!("genpkey-{name}"), &args).await;
        self.path(&file)
    }

    async fn root(&self, name: &str, key: Key) -> Issued {
        let key = self.key(name, key).await;
        let cert = format!("{name}.pem");
        let subject = format!("/CN={name}/O=certwatch edge tests");
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
        Issued {
            cert: self.path(&cert),
            key,
        }
    }

    /// A CA or a `localhost` leaf (with the SAN `names`) issued by `issuer`.
    async fn issue(
        &self,
        name: &str,
        key: Key,
        issuer: &Issued,
        ca: bool,
        digest: &str,
        names: &str,
    ) -> Issued {
        let key = self.key(name, key).await;
        let (csr, cert, ext) = (
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let subject = format!("/CN={name}/O=certwatch edge tests");
        let section = if ca {
            "basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\n".to_owned()
        } else {
            format!("basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment,keyAgreement\nextendedKeyUsage = serverAuth\nsubjectAltName = {names}\n")
        };
        std::fs::write(self.path(&ext), format!("[ext]\n{section}")).expect("ext");
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
        let digest = format!("-{digest}");
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
        Issued {
            cert: self.path(&cert),
            key,
        }
    }

    /// A leaf for `localhost` issued by `issuer`.
    async fn leaf(&self, name: &str, key: Key, issuer: &Issued, digest: &str) -> Issued {
        self.issue(name, key, issuer, false, digest, "DNS:localhost")
            .await
    }

    /// A PEM file of `pems`, in order.
    fn bundle(&self, name: &str, pems: &[String]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, pems.concat()).expect("bundle");
        path
    }
}

/// One endpoint and what certwatch must report for it.
struct Case {
    /// The target name.
    name: &'static str,
    /// The nginx `server` blocks for it, `{port}` replaced by its port.
    server: String,
    /// certwatch settings beside address, name, server_name and timeout.
    settings: String,
    /// `openssl s_client` arguments beside `-connect` and `-showcerts`.
    s_client: Vec<String>,
    /// Whether only the legacy hello reaches it.
    legacy_only: bool,
    /// The TLS version both must see.
    version: &'static str,
    /// The presented chain, in order: what both clients must see.
    chain: Vec<String>,
    /// `certwatch_chain_verified`.
    verified: bool,
    /// `certwatch_chain_issue_info` issues, sorted.
    issues: &'static [&'static str],
    /// `certwatch_cert_weakness_info` (depth, weakness), sorted.
    weaknesses: &'static [(&'static str, &'static str)],
    /// `certwatch_cert_on_verified_path` per depth, when the chain verifies.
    on_path: &'static [&'static str],
    port: u16,
}

fn server_block(
    port_placeholder: bool,
    certs: &[(&Path, &Path)],
    extra: &str,
    listen_extra: &str,
) -> String {
    let _ = port_placeholder;
    let mut block = format!(
        "    server {{\n        listen 127.0.0.1:{{port}} ssl{listen_extra};\n        server_name localhost;\n"
    );
    for (chain, key) in certs {
        block.push_str(&format!(
            "        ssl_certificate {};\n        ssl_certificate_key {};\n",
            chain.display(),
            key.display()
        ));
    }
    block.push_str(extra);
    block.push_str("        location / { return 200 \"edge\\n\"; }\n    }\n");
    block
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The cases, with their certificates made in `pki`.
async fn cases(pki: &Pki) -> (Vec<Case>, Vec<(String, PathBuf)>) {
    let root = pki.root("root", Key::Rsa(2048)).await;
    let int = pki
        .issue("int", Key::Rsa(2048), &root, true, "sha256", "")
        .await;
    let leaf = pki.leaf("leaf", Key::Rsa(2048), &int, "sha256").await;
    let chain = pki.bundle("leaf-chain.pem", &[leaf.pem(), int.pem()]);
    let presented = vec![leaf.pem(), int.pem()];
    let plain = [(chain.as_path(), leaf.key.as_path())];

    let legacy = |name: &'static str, extra: &str, version: &'static str| Case {
        name,
        server: server_block(true, &plain, extra, ""),
        settings: "trust: none\n    tls: {ca_file: root.pem}".into(),
        s_client: strings(&["-servername", "localhost"]),
        legacy_only: true,
        version,
        chain: presented.clone(),
        verified: true,
        issues: &[],
        weaknesses: &[],
        on_path: &["1", "1"],
        port: 0,
    };
    let dh = pki.path("dh.pem");
    pki.openssl(
        "dhparam",
        &[
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "dh_param:ffdhe2048",
            "-out",
            dh.to_str().expect("utf-8"),
        ],
    )
    .await;
    let mut all = vec![
        legacy(
            "cbc",
            "        ssl_protocols TLSv1.2;\n        ssl_ciphers \"AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0\";\n",
            "TLSv1.2",
        ),
        legacy(
            "kx-rsa",
            "        ssl_protocols TLSv1.2;\n        ssl_ciphers \"kRSA:@SECLEVEL=0\";\n",
            "TLSv1.2",
        ),
        legacy(
            "dhe",
            &format!("        ssl_protocols TLSv1.2;\n        ssl_ciphers \"kDHE:@SECLEVEL=0\";\n        ssl_dhparam {};\n", dh.display()),
            "TLSv1.2",
        ),
        legacy(
            "tls10",
            "        ssl_protocols TLSv1;\n        ssl_ciphers \"DEFAULT:@SECLEVEL=0\";\n",
            "TLSv1",
        ),
        legacy(
            "tls11",
            "        ssl_protocols TLSv1.1;\n        ssl_ciphers \"DEFAULT:@SECLEVEL=0\";\n",
            "TLSv1.1",
        ),
    ];

    // Weak leaves: the handshake completes, the verdict says why a browser refuses.
    let weak = pki.leaf("rsa1024", Key::Rsa(1024), &int, "sha256").await;
    let sha1 = pki.leaf("sha1", Key::Rsa(2048), &int, "sha1").await;
    for (name, leaf, weakness) in [
        ("rsa1024", &weak, ("0", "rsa_key_under_2048")),
        ("sha1", &sha1, ("0", "sha1_signature")),
    ] {
        let chain = pki.bundle(&format!("{name}-chain.pem"), &[leaf.pem(), int.pem()]);
        let weaknesses: &'static [(&'static str, &'static str)] = Box::leak(Box::new([weakness]));
        all.push(Case {
            name,
            server: server_block(
                true,
                &[(&chain, &leaf.key)],
                "        ssl_ciphers \"DEFAULT:@SECLEVEL=0\";\n",
                "",
            ),
            settings: "trust: none\n    tls: {ca_file: root.pem}".into(),
            s_client: strings(&["-servername", "localhost"]),
            legacy_only: false,
            version: "TLSv1.3",
            chain: vec![leaf.pem(), int.pem()],
            verified: false,
            issues: &[],
            weaknesses,
            on_path: &[],
            port: 0,
        });
    }

    // One vhost with an RSA and an ECDSA certificate.
    let ec = pki.leaf("leaf-ec", Key::Ec, &int, "sha256").await;
    let ec_chain = pki.bundle("leaf-ec-chain.pem", &[ec.pem(), int.pem()]);
    let dual = server_block(true, &[(&chain, &leaf.key), (&ec_chain, &ec.key)], "", "");
    for (name, key_type, sigalgs, pems) in [
        (
            "dual-rsa",
            "rsa",
            "rsa_pss_rsae_sha256:RSA+SHA256",
            presented.clone(),
        ),
        (
            "dual-ecdsa",
            "ecdsa",
            "ECDSA+SHA256",
            vec![ec.pem(), int.pem()],
        ),
    ] {
        all.push(Case {
            name,
            server: if name == "dual-rsa" {
                dual.clone()
            } else {
                String::new()
            },
            settings: format!(
                "key_type: {key_type}\n    trust: none\n    tls: {{ca_file: root.pem}}"
            ),
            s_client: strings(&["-servername", "localhost", "-sigalgs", sigalgs]),
            legacy_only: false,
            version: "TLSv1.3",
            chain: pems,
            verified: true,
            issues: &[],
            weaknesses: &[],
            on_path: &["1", "1"],
            port: 0,
        });
    }

    // A default vhost (any name) and the `localhost` one on the same port.
    let fallback = pki
        .issue(
            "default",
            Key::Ec,
            &int,
            false,
            "sha256",
            "DNS:default.invalid",
        )
        .await;
    let fallback_chain = pki.bundle("default-chain.pem", &[fallback.pem(), int.pem()]);
    let vhosts = format!(
        "    server {{\n        listen 127.0.0.1:{{port}} ssl default_server;\n        server_name _;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        location / {{ return 200 \"default\\n\"; }}\n    }}\n{}",
        fallback_chain.display(),
        fallback.key.display(),
        server_block(true, &plain, "", ""),
    );
    all.push(Case {
        name: "no-sni",
        server: vhosts,
        settings: "sni: false\n    trust: none\n    tls: {ca_file: root.pem}".into(),
        s_client: strings(&["-noservername"]),
        legacy_only: false,
        version: "TLSv1.3",
        chain: vec![fallback.pem(), int.pem()],
        verified: false,
        issues: &[],
        weaknesses: &[],
        on_path: &[],
        port: 0,
    });
    all.push(Case {
        name: "sni",
        server: String::new(),
        settings: "trust: none\n    tls: {ca_file: root.pem}".into(),
        s_client: strings(&["-servername", "localhost"]),
        legacy_only: false,
        version: "TLSv1.3",
        chain: presented.clone(),
        verified: true,
        issues: &[],
        weaknesses: &[],
        on_path: &["1", "1"],
        port: 0,
    });

    // Twenty certificates: the leaf and 19 intermediates.
    let long_root = pki.root("long-root", Key::Ec).await;
    let mut issuer = long_root.clone();
    let mut cas = Vec::new();
    for i in 1..20 {
        let ca = pki
            .issue(&format!("long-ca{i}"), Key::Ec, &issuer, true, "sha256", "")
            .await;
        cas.push(ca.clone());
        issuer = ca;
    }
    let long_leaf = pki.leaf("long-leaf", Key::Ec, &issuer, "sha256").await;
    let mut long: Vec<String> = vec![long_leaf.pem()];
    long.extend(cas.iter().rev().map(Issued::pem));
    let long_chain = pki.bundle("long-chain.pem", &long);
    all.push(Case {
        name: "twenty",
        server: server_block(true, &[(&long_chain, &long_leaf.key)], "", ""),
        settings: "trust: none\n    tls: {ca_file: long-root.pem}".into(),
        s_client: strings(&["-servername", "localhost"]),
        legacy_only: false,
        version: "TLSv1.3",
        chain: long,
        // webpki builds paths of at most 6 intermediates (see the README's limits).
        verified: false,
        issues: &[],
        weaknesses: &[],
        on_path: &[],
        port: 0,
    });

    // Leaf + intermediate + an expired cross-signed copy of the root (rcgen: openssl
    // 3.0 cannot write a notAfter in the past).
    let cross = cross_signed(pki);
    all.push(Case {
        name: "cross",
        server: server_block(true, &[(&cross.chain, &cross.key)], "", ""),
        settings: "trust: none\n    tls: {ca_file: cross-root.pem}".into(),
        s_client: strings(&["-servername", "localhost"]),
        legacy_only: false,
        version: "TLSv1.3",
        chain: cross.presented.clone(),
        verified: true,
        issues: &["unrelated"],
        weaknesses: &[],
        on_path: &["1", "1", "0"],
        port: 0,
    });
    let roots = vec![
        ("root.pem".to_owned(), root.cert.clone()),
        ("long-root.pem".to_owned(), long_root.cert.clone()),
        ("cross-root.pem".to_owned(), cross.root),
    ];
    (all, roots)
}

/// Files of the cross-signed case.
struct Cross {
    chain: PathBuf,
    key: PathBuf,
    root: PathBuf,
    presented: Vec<String>,
}

fn cross_signed(pki: &Pki) -> Cross {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let now = time::OffsetDateTime::now_utc();
    let ca_params = |cn: &str, days_from: i64, days_to: i64| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = now + time::Duration::days(days_from);
        p.not_after = now + time::Duration::days(days_to);
        p
    };
    let old_key = KeyPair::generate().expect("key");
    let old_params = ca_params("cross old root", -4000, -30);
    let old = Issuer::new(old_params.clone(), old_key);
    let root_key = KeyPair::generate().expect("key");
    let root_params = ca_params("cross root", -10, 3650);
    let root = root_params.self_signed(&root_key).expect("root");
    // The same name and key, signed by the old root, expired 30 days ago.
    let cross = ca_params("cross root", -1000, -30)
        .signed_by(&root_key, &old)
        .expect("cross-signed");
    let root_issuer = Issuer::new(root_params, root_key);
    let int_key = KeyPair::generate().expect("key");
    let int_params = ca_params("cross int", -10, 1000);
    let int = int_params.signed_by(&int_key, &root_issuer).expect("int");
    let int_issuer = Issuer::new(int_params, int_key);
    let leaf_key = KeyPair::generate().expect("key");
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "cross leaf");
    leaf_params.not_before = now - time::Duration::days(1);
    leaf_params.not_after = now + time::Duration::days(90);
    let leaf = leaf_params.signed_by(&leaf_key, &int_issuer).expect("leaf");
    let presented = vec![leaf.pem(), int.pem(), cross.pem()];
    let chain = pki.bundle("cross-chain.pem", &presented);
    let key = pki.path("cross-leaf.key");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
    let root_file = pki.path("cross-root.pem");
    std::fs::write(&root_file, root.pem()).expect("root");
    Cross {
        chain,
        key,
        root: root_file,
        presented,
    }
}

/// A running private nginx serving every case.
struct Nginx {
    daemon: Daemon,
}

async fn start_nginx(blocks: &[(u16, String)], conf: &Path) -> Result<Nginx, String> {
    start_with_retries("nginx", || async {
        let mut instance = Instance::new("nginx-edges")?;
        let dir = instance.path().to_owned();
        instance.mkdir("temp", None, 0o777)?;
        let servers: String = blocks
            .iter()
            .map(|(port, block)| block.replace("{port}", &port.to_string()))
            .collect();
        let config = instance.write_config(
            "nginx.conf",
            &format!(
                "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log info;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log {dir}/access.log;\n    client_body_temp_path {dir}/temp/body;\n    proxy_temp_path {dir}/temp/proxy;\n    fastcgi_temp_path {dir}/temp/fastcgi;\n    uwsgi_temp_path {dir}/temp/uwsgi;\n    scgi_temp_path {dir}/temp/scgi;\n    ssl_protocols TLSv1.2 TLSv1.3;\n{servers}}}\n",
                dir = dir.display()
            ),
        )?;
        instance.log_file("error.log");
        let launch = Launch::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .env("OPENSSL_CONF", conf);
        let ready: Vec<Ready> = blocks.iter().map(|(port, _)| Ready::Port(*port)).collect();
        let daemon = instance.spawn(launch, &ready).await?;
        Ok::<Nginx, StartError>(Nginx { daemon })
    })
    .await
}

/// Free loopback ports, one per case.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// The DER of each certificate of a PEM text.
fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.expect("PEM").into_owned())
        .collect()
}

/// What `openssl s_client` saw.
struct Seen {
    chain: Vec<String>,
    version: String,
    text: String,
}

async fn s_client(dir: &Path, conf: &Path, port: u16, args: &[String], label: &str) -> Seen {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-showcerts",
        ])
        .args(args)
        .env("OPENSSL_CONF", conf);
    let (_, text) = run_bounded(command, dir, &format!("s_client-{label}")).await;
    let mut chain = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        }
        if let Some(pem) = current.as_mut() {
            pem.push_str(line);
            pem.push('\n');
        }
        if line == "-----END CERTIFICATE-----" {
            chain.extend(current.take());
        }
    }
    let version = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Protocol")
                .and_then(|r| r.trim_start().strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
        .or_else(|| {
            text.lines()
                .find_map(|l| l.strip_prefix("New, "))
                .and_then(|r| r.split(',').next())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Seen {
        chain,
        version,
        text,
    }
}

/// certwatch's `version` label for openssl's.
fn certwatch_version(openssl: &str) -> &str {
    match openssl {
        "TLSv1" => "TLSv1.0",
        other => other,
    }
}

async fn legacy_weak_dual_default_long_and_cross_signed_endpoints_match_openssl() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let pki = Pki::new(dir);
    let conf = pki.path("legacy.cnf");
    let (mut cases, roots) = cases(&pki).await;

    // Ports: cases with an empty `server` share the previous case's endpoint.
    let ports = free_ports(cases.len());
    let mut blocks = Vec::new();
    for (i, case) in cases.iter_mut().enumerate() {
        if case.server.is_empty() {
            case.port = blocks
                .last()
                .map(|(p, _): &(u16, String)| *p)
                .expect("a shared endpoint");
        } else {
            case.port = ports[i];
            blocks.push((case.port, case.server.clone()));
        }
    }
    let nginx = daemon::running(start_nginx(&blocks, &conf).await);

    // One exporter probing every case; the roots are in `dir` already.
    for (name, path) in &roots {
        assert_eq!(path, &dir.join(name), "{name}");
    }
    let mut yaml = String::from("defaults:\n  interval: 1h\n  timeout: 15s\ntargets:\n");
    for case in &cases {
        yaml.push_str(&format!(
            "  - address: \"127.0.0.1:{}\"\n    name: {}\n    server_name: localhost\n    {}\n",
            case.port, case.name, case.settings
        ));
    }
    std::fs::write(dir.join("certwatch.yml"), &yaml).expect("config");
    let exporter = Exporter::start(dir, &["--config", "certwatch.yml"]);
    let deadline = tokio::time::Instant::now() + PROBED_TIMEOUT;
    let scrape = loop {
        let (status, body) = exporter.get("/metrics");
        assert_eq!(status, 200, "{body}");
        let scrape = Scrape::parse(&body);
        if cases
            .iter()
            .all(|c| scrape.has(LAST_PROBE_TIMESTAMP, &[("target", c.name)]))
        {
            break scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every case probed in {PROBED_TIMEOUT:?}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let mut failures = Vec::new();
    // `check` judges the cross-signed case by the verified path: the expired
    // cross-signed root the server still sends does not make it critical.
    let cross = cases
        .iter()
        .find(|c| c.name == "cross")
        .expect("the cross case");
    let output = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .current_dir(dir)
        .args([
            "check",
            &format!("127.0.0.1:{}", cross.port),
            "--server-name",
            "localhost",
            "--ca-file",
            "cross-root.pem",
        ])
        .output()
        .expect("certwatch check");
    let report = String::from_utf8_lossy(&output.stdout);
    if output.status.code() != Some(0) || !report.starts_with("CERTWATCH OK") {
        failures.push(format!(
            "check of the cross-signed case: {:?}\n{report}",
            output.status
        ));
    }
    for case in &cases {
        if let Err(why) = check_case(case, &scrape, dir, &conf).await {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nnginx log:\n{}\ncertwatch:\n{}",
        failures.join("\n\n"),
        nginx.daemon.log(),
        scrape.text
    );
}

/// Compares certwatch's view of `case` with `openssl s_client`'s and the expected one.
async fn check_case(case: &Case, scrape: &Scrape, dir: &Path, conf: &Path) -> Result<(), String> {
    let t = [("target", case.name)];
    let seen = s_client(dir, conf, case.port, &case.s_client, case.name).await;
    let ctx = || format!("s_client:\n{}", seen.text);
    // The chain: openssl's, the configured one, and certwatch's, certificate by certificate.
    let want: Vec<CertificateDer<'static>> = case.chain.iter().flat_map(|p| ders(p)).collect();
    let theirs: Vec<CertificateDer<'static>> = seen.chain.iter().flat_map(|p| ders(p)).collect();
    if theirs != want {
        return Err(format!(
            "openssl saw another chain ({} certificates, want {})\n{}",
            theirs.len(),
            want.len(),
            ctx()
        ));
    }
    let ours = scrape.find(CERT_INFO, &t);
    if ours.len() != want.len() {
        return Err(format!(
            "certwatch reports {} certificates, openssl {}",
            ours.len(),
            want.len()
        ));
    }
    for (depth, pem) in seen.chain.iter().enumerate() {
        let d = depth.to_string();
        let at = [("target", case.name), ("depth", d.as_str())];
        let facts = x509_facts(pem, dir).await;
        let serial = scrape.label(CERT_INFO, &at, "serial");
        if !serial.eq_ignore_ascii_case(&facts.serial) {
            return Err(format!(
                "depth {depth}: serial {serial} vs openssl {}",
                facts.serial
            ));
        }
        let not_after = scrape.value(CERT_NOT_AFTER, &at);
        if not_after != facts.not_after as f64 {
            return Err(format!(
                "depth {depth}: notAfter {not_after} vs openssl {}",
                facts.not_after
            ));
        }
    }
    let version = scrape.label(TLS_INFO, &t, "version");
    if version != certwatch_version(&seen.version) || version != case.version_label() {
        return Err(format!(
            "version: certwatch {version}, openssl {}, want {}\n{}",
            seen.version,
            case.version,
            ctx()
        ));
    }
    // The legacy-only contract: the modern failure, the chain and what was chosen.
    let legacy = scrape.value(LEGACY_ONLY, &t);
    let handshake = scrape.value(HANDSHAKE_SUCCESS, &t);
    if case.legacy_only {
        let reason = scrape.label(PROBE_FAILURE_INFO, &t, "reason");
        if legacy != 1.0
            || handshake != 0.0
            || !["protocol_version", "handshake_failure"].contains(&reason.as_str())
        {
            return Err(format!(
                "legacy_only {legacy}, handshake_success {handshake}, failure {reason}"
            ));
        }
        let cipher = scrape.label(TLS_INFO, &t, "cipher");
        let cipher_ok = match case.name {
            "cbc" => cipher.contains("_CBC_"),
            "kx-rsa" => cipher.starts_with("TLS_RSA_WITH_"),
            "dhe" => cipher.starts_with("TLS_DHE_RSA_WITH_"),
            _ => cipher != "unknown",
        };
        if !cipher_ok {
            return Err(format!("cipher {cipher}"));
        }
    } else if legacy != 0.0 || handshake != 1.0 {
        return Err(format!(
            "legacy_only {legacy}, handshake_success {handshake}"
        ));
    }
    // The legacy hello asks for no staple: whether the server staples is not known,
    // so no `ocsp_stapled` (nor an OcspStapleMissing page). This nginx staples nothing.
    let stapled = scrape.find(OCSP_STAPLED, &t);
    let want: &[f64] = if case.legacy_only { &[] } else { &[0.0] };
    if stapled.iter().map(|(_, v)| *v).collect::<Vec<_>>() != want {
        return Err(format!("ocsp_stapled {stapled:?}, want {want:?}"));
    }
    let verified = scrape.value(CHAIN_VERIFIED, &t);
    if verified != f64::from(u8::from(case.verified)) {
        return Err(format!("chain_verified {verified}, want {}", case.verified));
    }
    // The exact hygiene and weakness series.
    let issues: BTreeSet<String> = scrape
        .find(CHAIN_ISSUE_INFO, &t)
        .into_iter()
        .map(|(labels, _)| labels["issue"].clone())
        .collect();
    let want_issues: BTreeSet<String> = case.issues.iter().map(|s| s.to_string()).collect();
    if issues != want_issues {
        return Err(format!("chain issues {issues:?}, want {want_issues:?}"));
    }
    let weaknesses: BTreeSet<(String, String)> = scrape
        .find(CERT_WEAKNESS_INFO, &t)
        .into_iter()
        .map(|(labels, _)| (labels["depth"].clone(), labels["weakness"].clone()))
        .collect();
    let want_weak: BTreeSet<(String, String)> = case
        .weaknesses
        .iter()
        .map(|(d, w)| (d.to_string(), w.to_string()))
        .collect();
    if weaknesses != want_weak {
        return Err(format!("weaknesses {weaknesses:?}, want {want_weak:?}"));
    }
    let on_path: Vec<String> = (0..case.on_path.len())
        .map(|d| {
            let d = d.to_string();
            scrape
                .value(
                    CERT_ON_VERIFIED_PATH,
                    &[("target", case.name), ("depth", d.as_str())],
                )
                .to_string()
        })
        .collect();
    if on_path != case.on_path {
        return Err(format!(
            "on the verified path: {on_path:?}, want {:?}",
            case.on_path
        ));
    }
    Ok(())
}

impl Case {
    /// `version` as certwatch labels it.
    fn version_label(&self) -> &'static str {
        match self.version {
            "TLSv1" => "TLSv1.0",
            other => other,
        }
    }
}
