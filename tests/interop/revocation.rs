//! Revocation against real peers on loopback: `openssl ocsp` as the OCSP responder
//! (good, revoked, unknown, signed by the wrong key, dated in the past or the future
//! under `faketime`), nginx stapling a response with `ssl_stapling_file` (good,
//! revoked, none for a must-staple certificate), nginx serving CRLs over HTTP (revoked,
//! not revoked, expired, 40 MiB), and a responder URL on 127.0.0.1 refused without a
//! connection when `allow_private_addresses` is false. Each test asserts the exact
//! metric values certwatch exports for the probe.
//!
//! The certificates are rcgen's (`support/pki.rs`), with the responder and CRL URLs of
//! the servers the test starts; the CRLs are rcgen's too, served by nginx. Everything is
//! on loopback, so every test sets `allow_private_addresses: true` but the refusal test.
//! `openssl ocsp -port` binds every interface (it takes no address); the only client
//! is certwatch on 127.0.0.1.

use certwatch::metrics::names::*;
use time::{Duration, OffsetDateTime};

use crate::support::daemon::{self, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Leaf, Revocable, Validity};
use crate::support::tls_server::{ServerSpec, TlsServer};
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};
use crate::support::{now_unix, Harness, Scrape};

pub fn trials() -> Vec<Trial> {
    vec![
        trial!(&[OPENSSL], async ocsp_responder_good),
        trial!(&[OPENSSL], async ocsp_responder_revoked),
        trial!(&[OPENSSL], async ocsp_responder_unknown),
        trial!(&[OPENSSL], async ocsp_delegated_responder_good),
        trial!(&[OPENSSL], async ocsp_response_signed_by_the_wrong_key),
        trial!(&[OPENSSL, FAKETIME], async ocsp_responses_dated_in_the_past_or_future_are_stale),
        trial!(&[NGINX_NEED, OPENSSL], async nginx_staples_a_good_response),
        trial!(&[NGINX_NEED, OPENSSL], async nginx_staples_a_revoked_response),
        trial!(
            &[NGINX_NEED, OPENSSL],
            async nginx_staples_a_response_about_another_certificate
        ),
        trial!(&[NGINX_NEED], async nginx_serves_a_must_staple_leaf_without_a_staple),
        trial!(&[NGINX_NEED], async crl_from_nginx_not_revoked_fetched_once),
        trial!(&[NGINX_NEED], async crl_from_nginx_revoked),
        trial!(&[NGINX_NEED], async crl_from_nginx_expired),
        trial!(&[NGINX_NEED], async crl_from_nginx_of_40_mib_is_too_large),
        trial!(&[], async responder_on_loopback_refused_without_a_connection),
    ]
}

const NGINX: &str = "/usr/sbin/nginx";
const FAKETIME_BIN: &str = "/usr/bin/faketime";

/// nginx (any flavour; `nginx-light` is the smallest).
const NGINX_NEED: Need = Need {
    name: "nginx",
    remedy: Remedy::Install("nginx-light"),
    check: || daemon::require_program(NGINX, "nginx"),
};

/// faketime, to run `openssl ocsp` at another time.
const FAKETIME: Need = Need {
    name: "faketime",
    remedy: Remedy::Install("faketime"),
    check: || daemon::require_program(FAKETIME_BIN, "faketime"),
};

const T: [(&str, &str); 1] = [("target", "t")];
const LEAF: [(&str, &str); 2] = [("target", "t"), ("depth", "0")];

fn at(source: &'static str) -> [(&'static str, &'static str); 3] {
    [("target", "t"), ("depth", "0"), ("source", source)]
}

/// A root and the intermediate that issues the leaves.
struct Pki {
    root: Ca,
    intermediate: Ca,
}

impl Pki {
    fn new() -> Pki {
        let root = Ca::root("certwatch revocation root");
        let intermediate = root.intermediate("certwatch revocation CA", Validity::days(365));
        Pki { root, intermediate }
    }

    fn leaf(&self, revocable: &Revocable) -> Leaf {
        self.intermediate
            .leaf_with(&["localhost"], Validity::days(90), revocable)
    }
}

/// The line of `leaf` in an `openssl ca` index (what `openssl ocsp -index` reads).
fn index_line(leaf: &Leaf, revoked: bool) -> String {
    let serial = leaf.serial_hex.to_uppercase();
    if revoked {
        format!("R\t301231000000Z\t240101000000Z,keyCompromise\t{serial}\tunknown\t/CN=localhost\n")
    } else {
        format!("V\t301231000000Z\t\t{serial}\tunknown\t/CN=localhost\n")
    }
}

/// certwatch's configuration for target `t` at `address`, trusting the test root.
fn yaml(address: &str, revocation: &str) -> String {
    format!(
        "targets:\n  - address: \"{address}\"\n    name: t\n    server_name: localhost\n    timeout: 10s\n    trust: none\n    tls:\n      ca_file: root.pem\n    revocation: {revocation}\n"
    )
}

/// Probes `yaml` once with the test root trusted.
async fn probe(pki: &Pki, yaml: &str) -> (Harness, Scrape, String) {
    let h = Harness::new();
    h.write("root.pem", &pki.root.pem);
    let (outcome, scrape) = h.probe(yaml).await;
    let context = format!("{}\n{outcome:#?}", scrape.text);
    (h, scrape, context)
}

/// The chain verifies and the probe succeeds.
fn assert_verified(scrape: &Scrape, context: &str) {
    assert_eq!(scrape.value(CHAIN_VERIFIED, &T), 1.0, "{context}");
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 1.0, "{context}");
    assert!(!scrape.has(VERIFY_ERROR_INFO, &T), "{context}");
}

/// The chain fails verification as revoked.
fn assert_revoked_verdict(scrape: &Scrape, context: &str) {
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 1.0, "{context}");
    assert_eq!(scrape.value(CHAIN_VERIFIED, &T), 0.0, "{context}");
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 0.0, "{context}");
    assert_eq!(
        scrape.value(VERIFY_ERROR_INFO, &[("target", "t"), ("reason", "revoked")]),
        1.0,
        "{context}"
    );
    assert_eq!(scrape.find(VERIFY_ERROR_INFO, &T).len(), 1, "{context}");
}

/// `source` gave no answer, for `reason`, and nothing else failed or answered.
fn assert_only_failure(scrape: &Scrape, source: &str, reason: &str, context: &str) {
    let failures = scrape.find(REVOCATION_CHECK_FAILURE_INFO, &T);
    assert_eq!(failures.len(), 1, "{context}");
    let labels = &failures[0].0;
    assert_eq!(
        (
            labels["depth"].as_str(),
            labels["source"].as_str(),
            labels["reason"].as_str(),
            failures[0].1
        ),
        ("0", source, reason, 1.0),
        "{context}"
    );
    assert!(!scrape.has(CERT_REVOKED, &T), "{context}");
    assert!(!scrape.has(OCSP_NEXT_UPDATE, &T), "{context}");
}

/// `openssl ocsp` answering from an index, signed by `signer` (certificate and key PEM).
struct Responder {
    daemon: Daemon,
    leaf: Leaf,
}

/// Starts a responder for a leaf of `pki` whose status in the index is `status`
/// (`Some(revoked)`, or `None` for a leaf the index does not list), signing with the
/// intermediate's key or `signer`, under `faketime` when `offset` (e.g. `-2d`) is set.
async fn responder(
    pki: &Pki,
    status: Option<bool>,
    signer: Option<(&str, &str)>,
    offset: Option<&str>,
) -> Responder {
    daemon::running(
        daemon::start_with_retries("openssl ocsp", || {
            try_responder(pki, status, signer, offset)
        })
        .await,
    )
}

async fn try_responder(
    pki: &Pki,
    status: Option<bool>,
    signer: Option<(&str, &str)>,
    offset: Option<&str>,
) -> Result<Responder, StartError> {
    let mut instance = Instance::new("openssl-ocsp")?;
    let port = instance.port()?;
    let leaf = pki.leaf(&Revocable {
        ocsp_url: Some(format!("http://127.0.0.1:{port}/")),
        ..Revocable::default()
    });
    let index = match status {
        Some(revoked) => index_line(&leaf, revoked),
        None => String::new(),
    };
    let index = instance.write_config("index.txt", &index)?;
    let ca = instance.write_config("ca.pem", &pki.intermediate.pem)?;
    let (cert, key) = signer.unwrap_or((&pki.intermediate.pem, &pki.intermediate.key_pem));
    let rsigner = instance.write_config("rsigner.pem", cert)?;
    let rkey = instance.write_config("rsigner.key", key)?;
    let ocsp_args = [
        "ocsp".to_owned(),
        "-index".to_owned(),
        index.display().to_string(),
        "-port".to_owned(),
        port.to_string(),
        "-rsigner".to_owned(),
        rsigner.display().to_string(),
        "-rkey".to_owned(),
        rkey.display().to_string(),
        "-CA".to_owned(),
        ca.display().to_string(),
        "-ndays".to_owned(),
        "1".to_owned(),
    ];
    let launch = match offset {
        None => Launch::new("openssl").args(ocsp_args),
        Some(offset) => Launch::new(FAKETIME_BIN)
            .args(["-f", offset, "openssl"])
            .args(ocsp_args),
    };
    // Not `Ready::Port`: `openssl ocsp` serves one connection at a time and a
    // connection that closes without a request wedges it.
    let ready = Ready::Log(
        "server.out".into(),
        "waiting for OCSP client connections".into(),
    );
    let daemon = instance.spawn(launch, &[ready]).await?;
    Ok(Responder { daemon, leaf })
}

/// Serves `leaf` with the intermediate from an in-process rustls server.
async fn serve(pki: &Pki, leaf: &Leaf) -> TlsServer {
    TlsServer::start(ServerSpec::new(
        leaf.chain(&[&pki.intermediate]),
        leaf.key(),
    ))
    .await
}

const FETCH_OCSP: &str = "{ocsp: fetch, allow_private_addresses: true}";

async fn ocsp_responder_good() {
    let pki = Pki::new();
    let responder = responder(&pki, Some(false), None, None).await;
    let server = serve(&pki, &responder.leaf).await;
    let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
    let context = format!("{context}\n{}", responder.daemon.log());
    assert_verified(&scrape, &context);
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 0.0, "{context}");
    assert_eq!(scrape.value(CERT_REVOKED, &at("ocsp")), 0.0, "{context}");
    assert_eq!(scrape.find(CERT_REVOKED, &T).len(), 1, "{context}");
    let next = scrape.value(OCSP_NEXT_UPDATE, &at("ocsp"));
    let day = now_unix() + 86_400.0;
    assert!(
        (day - 120.0..=day + 5.0).contains(&next),
        "nextUpdate {next}: {context}"
    );
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");
    assert!(!scrape.has(CRL_NEXT_UPDATE, &T), "{context}");
    assert_eq!(scrape.value(CERT_MUST_STAPLE, &LEAF), 0.0, "{context}");
}

async fn ocsp_responder_revoked() {
    let pki = Pki::new();
    let responder = responder(&pki, Some(true), None, None).await;
    let server = serve(&pki, &responder.leaf).await;
    let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
    assert_revoked_verdict(&scrape, &context);
    assert_eq!(scrape.value(CERT_REVOKED, &at("ocsp")), 1.0, "{context}");
    assert!(scrape.has(OCSP_NEXT_UPDATE, &at("ocsp")), "{context}");
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");
    assert!(!scrape.has(VERIFIED_CHAIN_EXPIRY, &T), "{context}");
}

async fn ocsp_responder_unknown() {
    let pki = Pki::new();
    let responder = responder(&pki, None, None, None).await;
    let server = serve(&pki, &responder.leaf).await;
    let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
    assert_verified(&scrape, &context);
    assert_only_failure(&scrape, "ocsp", "unknown_status", &context);
}

async fn ocsp_delegated_responder_good() {
    let pki = Pki::new();
    let delegate = pki.intermediate.ocsp_responder("certwatch OCSP responder");
    let signer = (delegate.cert_pem.as_str(), delegate.key_pem.as_str());
    let responder = responder(&pki, Some(true), Some(signer), None).await;
    let server = serve(&pki, &responder.leaf).await;
    let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
    assert_revoked_verdict(&scrape, &context);
    assert_eq!(scrape.value(CERT_REVOKED, &at("ocsp")), 1.0, "{context}");
}

async fn ocsp_response_signed_by_the_wrong_key() {
    let pki = Pki::new();
    // A responder certified for OCSP signing, but by another CA.
    let stranger = Ca::root("another root").intermediate("another CA", Validity::days(30));
    let delegate = stranger.ocsp_responder("someone else's responder");
    let signer = (delegate.cert_pem.as_str(), delegate.key_pem.as_str());
    let responder = responder(&pki, Some(true), Some(signer), None).await;
    let server = serve(&pki, &responder.leaf).await;
    let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
    assert_verified(&scrape, &context);
    assert_only_failure(&scrape, "ocsp", "bad_signature", &context);
}

async fn ocsp_responses_dated_in_the_past_or_future_are_stale() {
    for offset in ["-2d", "+2d"] {
        let pki = Pki::new();
        let responder = responder(&pki, Some(false), None, Some(offset)).await;
        let server = serve(&pki, &responder.leaf).await;
        let (_h, scrape, context) = probe(&pki, &yaml(&server.address(), FETCH_OCSP)).await;
        let context = format!("faketime {offset}:\n{context}");
        assert_verified(&scrape, &context);
        assert_only_failure(&scrape, "ocsp", "stale", &context);
    }
}

/// A private nginx with `servers` (server blocks) in its `http` block.
struct Nginx {
    daemon: Daemon,
}

async fn nginx(instance: Instance, ports: &[u16], servers: &str) -> Result<Nginx, StartError> {
    let mut instance = instance;
    let dir = instance.path().to_owned();
    instance.mkdir("temp", None, 0o777)?;
    let conf = instance.write_config(
        "nginx.conf",
        &format!(
            "worker_processes 1;\n\
             pid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             \x20   access_log {dir}/access.log;\n\
             \x20   client_body_temp_path {dir}/temp/body;\n\
             \x20   proxy_temp_path {dir}/temp/proxy;\n\
             \x20   fastcgi_temp_path {dir}/temp/fastcgi;\n\
             \x20   uwsgi_temp_path {dir}/temp/uwsgi;\n\
             \x20   scgi_temp_path {dir}/temp/scgi;\n\
             {servers}\n\
             }}\n",
            dir = dir.display(),
        ),
    )?;
    instance.log_file("error.log");
    let launch = Launch::new(NGINX)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"))
        .args(["-g", "daemon off;"]);
    let ready: Vec<Ready> = ports.iter().map(|p| Ready::Port(*p)).collect();
    let daemon = instance.spawn(launch, &ready).await?;
    Ok(Nginx { daemon })
}

/// An HTTPS server block on `port` presenting `tls`, with `extra` directives.
fn https_server(port: u16, chain: &str, key: &str, extra: &str) -> String {
    format!(
        "    server {{\n\
         \x20       listen 127.0.0.1:{port} ssl;\n\
         \x20       server_name localhost;\n\
         \x20       ssl_certificate {chain};\n\
         \x20       ssl_certificate_key {key};\n\
         \x20       {extra}\n\
         \x20       location / {{ return 200 \"certwatch\\n\"; }}\n\
         \x20   }}\n"
    )
}

/// nginx on one HTTPS port presenting a leaf of `pki` (`must_staple` or not), stapling
/// the response `openssl ocsp` makes for the leaf's `status` when `status` is set.
async fn stapling_nginx(pki: &Pki, status: Option<bool>, must_staple: bool) -> (Nginx, u16) {
    stapling_nginx_about(pki, status, must_staple, false).await
}

/// [`stapling_nginx`], stapling a response about another leaf of the same CA when
/// `other_leaf`.
async fn stapling_nginx_about(
    pki: &Pki,
    status: Option<bool>,
    must_staple: bool,
    other_leaf: bool,
) -> (Nginx, u16) {
    daemon::running(
        daemon::start_with_retries("nginx", || async {
            let mut instance = Instance::new("nginx-stapling")?;
            let port = instance.port()?;
            let leaf = pki.leaf(&Revocable {
                must_staple,
                ..Revocable::default()
            });
            let tls = ServerTls {
                chain_pem: leaf.chain_pem(&[&pki.intermediate]),
                key_pem: leaf.key_pem.clone(),
                ca_pem: pki.root.pem.clone(),
            };
            let files = instance.write_tls("tls", &tls, None)?;
            let mut extra = String::new();
            if let Some(revoked) = status {
                let other = pki.leaf(&Revocable::default());
                let about = if other_leaf { &other } else { &leaf };
                let index = instance.write_config("index.txt", &index_line(about, revoked))?;
                let ca = instance.write_config("ca.pem", &pki.intermediate.pem)?;
                let ca_key = instance.write_config("ca.key", &pki.intermediate.key_pem)?;
                let leaf_pem = instance.write_config("leaf.pem", &about.cert_pem)?;
                let request = instance.join("request.der");
                let response = instance.join("response.der");
                instance
                    .run(
                        "openssl ocsp -reqout",
                        Launch::new("openssl")
                            .args(["ocsp", "-no_nonce", "-issuer"])
                            .arg(&ca)
                            .arg("-cert")
                            .arg(&leaf_pem)
                            .arg("-reqout")
                            .arg(&request),
                    )
                    .await?;
                instance
                    .run(
                        "openssl ocsp -respout",
                        Launch::new("openssl")
                            .args(["ocsp", "-index"])
                            .arg(&index)
                            .arg("-rsigner")
                            .arg(&ca)
                            .arg("-rkey")
                            .arg(&ca_key)
                            .arg("-CA")
                            .arg(&ca)
                            .arg("-reqin")
                            .arg(&request)
                            .arg("-respout")
                            .arg(&response)
                            .args(["-ndays", "1"]),
                    )
                    .await?;
                extra = format!("ssl_stapling on; ssl_stapling_file {};", response.display());
            }
            let servers = https_server(
                port,
                &files.chain.display().to_string(),
                &files.key.display().to_string(),
                &extra,
            );
            Ok((nginx(instance, &[port], &servers).await?, port))
        })
        .await,
    )
}

async fn nginx_staples_a_good_response() {
    let pki = Pki::new();
    let (nginx, port) = stapling_nginx(&pki, Some(false), false).await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{port}"), "{ocsp: stapled}")).await;
    let context = format!("{context}\n{}", nginx.daemon.log());
    assert_verified(&scrape, &context);
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 1.0, "{context}");
    assert_eq!(
        scrape.value(CERT_REVOKED, &at("ocsp_stapled")),
        0.0,
        "{context}"
    );
    assert_eq!(scrape.find(CERT_REVOKED, &T).len(), 1, "{context}");
    let next = scrape.value(OCSP_NEXT_UPDATE, &at("ocsp_stapled"));
    assert!(next > now_unix() + 86_000.0, "nextUpdate {next}: {context}");
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");

    // The transcript (`/probe?debug=true`, `check --verbose`) names the staple as the
    // answer's source.
    let (_, transcript) = _h
        .transcript(&yaml(&format!("127.0.0.1:{port}"), "{ocsp: stapled}"))
        .await;
    let found: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("  revocation:  "))
        .collect();
    assert_eq!(found.len(), 3, "{transcript}");
    assert_eq!(
        found[0], "the handshake carried a stapled OCSP response",
        "{transcript}"
    );
    assert!(
        found[1].starts_with("depth 0, ocsp_stapled: not revoked (thisUpdate ")
            && found[1].contains(", nextUpdate ")
            && found[1].ends_with(") from the handshake's staple"),
        "{transcript}"
    );
    assert!(found[2].starts_with("1 check(s) in "), "{transcript}");
}

async fn nginx_staples_a_revoked_response() {
    let pki = Pki::new();
    let (_nginx, port) = stapling_nginx(&pki, Some(true), false).await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{port}"), "{ocsp: stapled}")).await;
    assert_revoked_verdict(&scrape, &context);
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 1.0, "{context}");
    assert_eq!(
        scrape.value(CERT_REVOKED, &at("ocsp_stapled")),
        1.0,
        "{context}"
    );
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");
}

async fn nginx_staples_a_response_about_another_certificate() {
    let pki = Pki::new();
    let (_nginx, port) = stapling_nginx_about(&pki, Some(true), false, true).await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{port}"), "{ocsp: stapled}")).await;
    // Revoked, but another certificate: it says nothing about this one.
    assert_verified(&scrape, &context);
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 1.0, "{context}");
    assert_only_failure(&scrape, "ocsp_stapled", "malformed", &context);
}

async fn nginx_serves_a_must_staple_leaf_without_a_staple() {
    let pki = Pki::new();
    let (_nginx, port) = stapling_nginx(&pki, None, true).await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{port}"), "{ocsp: stapled}")).await;
    assert_verified(&scrape, &context);
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 0.0, "{context}");
    assert_eq!(scrape.value(CERT_MUST_STAPLE, &LEAF), 1.0, "{context}");
    assert_eq!(
        scrape.value(CERT_MUST_STAPLE, &[("target", "t"), ("depth", "1")]),
        0.0,
        "{context}"
    );
    // No staple and no fetching: nothing is known, nothing failed.
    assert!(!scrape.has(CERT_REVOKED, &T), "{context}");
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");
}

/// nginx presenting a leaf whose distribution point is `/ca.crl` on its own HTTP port,
/// serving `crl` (DER) there; with the leaf's serial.
struct CrlSite {
    nginx: Nginx,
    https: u16,
    http: u16,
    dir: std::path::PathBuf,
}

async fn crl_site(pki: &Pki, crl: impl Fn(&Leaf) -> Vec<u8>) -> CrlSite {
    daemon::running(
        daemon::start_with_retries("nginx", || async {
            let mut instance = Instance::new("nginx-crl")?;
            let ports = instance.ports(2)?;
            let (https, http) = (ports[0], ports[1]);
            let leaf = pki.leaf(&Revocable {
                crl_url: Some(format!("http://127.0.0.1:{http}/ca.crl")),
                ..Revocable::default()
            });
            let tls = ServerTls {
                chain_pem: leaf.chain_pem(&[&pki.intermediate]),
                key_pem: leaf.key_pem.clone(),
                ca_pem: pki.root.pem.clone(),
            };
            let files = instance.write_tls("tls", &tls, None)?;
            let www = instance.join("www");
            std::fs::create_dir_all(&www)
                .map_err(|e| StartError::Fatal(format!("mkdir www: {e}")))?;
            std::fs::write(www.join("ca.crl"), crl(&leaf))
                .map_err(|e| StartError::Fatal(format!("write the CRL: {e}")))?;
            let servers = format!(
                "{}    server {{\n        listen 127.0.0.1:{http};\n        root {};\n    }}\n",
                https_server(
                    https,
                    &files.chain.display().to_string(),
                    &files.key.display().to_string(),
                    ""
                ),
                www.display()
            );
            let dir = instance.path().to_owned();
            Ok(CrlSite {
                nginx: nginx(instance, &ports, &servers).await?,
                https,
                http,
                dir,
            })
        })
        .await,
    )
}

const FETCH_CRL: &str = "{ocsp: off, crl: fetch, allow_private_addresses: true}";

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn crl_from_nginx_not_revoked_fetched_once() {
    let pki = Pki::new();
    let next = now() + Duration::days(7);
    let site = crl_site(&pki, |_| {
        pki.intermediate.crl(
            &["0badc0de", "1234567890abcdef"],
            now() - Duration::hours(1),
            next,
        )
    })
    .await;
    let address = format!("127.0.0.1:{}", site.https);
    for round in 0..3 {
        let (_h, scrape, context) = probe(&pki, &yaml(&address, FETCH_CRL)).await;
        let context = format!("round {round}:\n{context}\n{}", site.nginx.daemon.log());
        assert_verified(&scrape, &context);
        assert_eq!(scrape.value(CERT_REVOKED, &at("crl")), 0.0, "{context}");
        assert_eq!(scrape.find(CERT_REVOKED, &T).len(), 1, "{context}");
        assert_eq!(
            scrape.value(CRL_NEXT_UPDATE, &LEAF),
            next.unix_timestamp() as f64,
            "{context}"
        );
        assert!(!scrape.has(OCSP_STAPLED, &T), "ocsp: off: {context}");
        assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");
    }
    // Three probes, one download: the CRL is cached until its nextUpdate.
    let log = std::fs::read_to_string(site.dir.join("access.log")).unwrap_or_default();
    assert_eq!(log.matches("GET /ca.crl").count(), 1, "{log}");
}

async fn crl_from_nginx_revoked() {
    let pki = Pki::new();
    let site = crl_site(&pki, |leaf| {
        pki.intermediate.crl(
            &["0badc0de", &leaf.serial_hex],
            now() - Duration::hours(1),
            now() + Duration::days(7),
        )
    })
    .await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{}", site.https), FETCH_CRL)).await;
    assert_revoked_verdict(&scrape, &context);
    assert_eq!(scrape.value(CERT_REVOKED, &at("crl")), 1.0, "{context}");
    assert!(!scrape.has(REVOCATION_CHECK_FAILURE_INFO, &T), "{context}");

    // `certwatch check` says so, with where the answer came from, and exits CRITICAL;
    // with --verbose its transcript says it too.
    let root = _h.write("root.pem", &pki.root.pem);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(["check", &format!("127.0.0.1:{}", site.https)])
        .args(["--server-name", "localhost", "--ca-file"])
        .arg(&root)
        .args([
            "--ocsp",
            "off",
            "--crl",
            "fetch",
            "--allow-private-addresses",
            "--verbose",
        ])
        .output()
        .expect("certwatch check runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(text.starts_with("CERTWATCH CRITICAL"), "{text}");
    let (report, transcript) = text
        .split_once("\nTranscript:\n")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(report.contains("Verified:     no, revoked"), "{text}");
    let url = format!("from http://127.0.0.1:{}/ca.crl, fetched at", site.http);
    assert!(
        report.contains("depth 0, crl: REVOKED at")
            && report.contains("(keyCompromise)")
            && report.contains(&url),
        "{text}"
    );
    assert_revoked_by_crl_in_transcript(transcript, &url, false);

    // `GET /probe?debug=true`: the same in the transcript, then the metrics; asked
    // again, the CRL comes from the exporter's cache.
    _h.write(
        "certwatch.yml",
        "modules:\n  crl:\n    trust: none\n    tls:\n      ca_file: root.pem\n    revocation: {ocsp: off, crl: fetch, allow_private_addresses: true}\n",
    );
    let dir = _h.path().to_owned();
    let https = site.https;
    let (first, second) = tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(&dir, &["--config", "certwatch.yml"]);
        let path =
            format!("/probe?target=127.0.0.1:{https}&module=crl&server_name=localhost&debug=true");
        let first = exporter.get(&path);
        let second = exporter.get(&path);
        assert!(exporter.stop().success());
        (first, second)
    })
    .await
    .expect("the exporter runs");
    for ((status, body), cached) in [(first, false), (second, true)] {
        assert_eq!(status, 200, "{body}");
        let (transcript, metrics) = body
            .split_once("\n\nMetrics that would have been returned:\n")
            .unwrap_or_else(|| panic!("{body}"));
        assert!(
            transcript.contains(
                "\nrevocation:   ocsp off, depth leaf, crl fetch, private addresses allowed\n"
            ),
            "{transcript}"
        );
        assert_revoked_by_crl_in_transcript(transcript, &url, cached);
        let scrape = Scrape::parse(metrics);
        assert_eq!(
            scrape.value(CERT_REVOKED, &[("depth", "0"), ("source", "crl")]),
            1.0,
            "{metrics}"
        );
    }
    let log = std::fs::read_to_string(site.dir.join("access.log")).unwrap_or_default();
    // One download each for the probe above, `check` and the exporter (three
    // processes' caches).
    assert_eq!(log.matches("GET /ca.crl").count(), 3, "{log}");
}

/// `transcript` shows the revoked verdict and the CRL's answer with its URL (`url`:
/// `from http://…, fetched at`), from the cache or not.
fn assert_revoked_by_crl_in_transcript(transcript: &str, url: &str, cached: bool) {
    assert!(
        transcript.contains("  verdict:     not verified (revoked): the certificate at depth 0"),
        "{transcript}"
    );
    let found: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("  revocation:  "))
        .collect();
    assert_eq!(found.len(), 3, "{transcript}");
    assert!(found[2].starts_with("1 check(s) in "), "{transcript}");
    // `ocsp: off`: no staple was looked for.
    assert_eq!(found[0], "no staple looked for (ocsp off)", "{transcript}");
    assert!(
        found[1].starts_with("depth 0, crl: REVOKED at ")
            && found[1].contains("(keyCompromise)")
            && found[1].contains(url)
            && found[1].ends_with(" (cached)") == cached,
        "{transcript}"
    );
}

async fn crl_from_nginx_expired() {
    let pki = Pki::new();
    let site = crl_site(&pki, |leaf| {
        pki.intermediate.crl(
            &[&leaf.serial_hex],
            now() - Duration::days(8),
            now() - Duration::days(1),
        )
    })
    .await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{}", site.https), FETCH_CRL)).await;
    // An expired CRL says nothing, not even that the leaf it lists is revoked.
    assert_verified(&scrape, &context);
    assert_only_failure(&scrape, "crl", "stale", &context);
    assert!(!scrape.has(CRL_NEXT_UPDATE, &T), "{context}");
}

async fn crl_from_nginx_of_40_mib_is_too_large() {
    let pki = Pki::new();
    let site = crl_site(&pki, |_| {
        // About 1.1 million entries of 36 bytes: a real, signed 40 MiB CRL.
        let serials: Vec<String> = (0u64..1_150_000)
            .map(|i| format!("{:016x}", i + (1 << 60)))
            .collect();
        let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
        let crl = pki.intermediate.crl(
            &serials,
            now() - Duration::hours(1),
            now() + Duration::days(7),
        );
        assert!(
            crl.len() > 40 * 1024 * 1024 - 2 * 1024 * 1024,
            "{} bytes",
            crl.len()
        );
        crl
    })
    .await;
    let (_h, scrape, context) =
        probe(&pki, &yaml(&format!("127.0.0.1:{}", site.https), FETCH_CRL)).await;
    assert_verified(&scrape, &context);
    assert_only_failure(&scrape, "crl", "too_large", &context);
}

/// A responder and a distribution point on 127.0.0.1 with `allow_private_addresses:
/// false`: both refused, and the listener behind them never sees a connection.
async fn responder_on_loopback_refused_without_a_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    // Every connection the listener accepts, in order.
    let (seen, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let counting = tokio::spawn(async move {
        while let Ok((_, peer)) = listener.accept().await {
            if seen.send(peer).is_err() {
                break;
            }
        }
    });
    let pki = Pki::new();
    let leaf = pki.leaf(&Revocable {
        ocsp_url: Some(format!("http://127.0.0.1:{port}/")),
        crl_url: Some(format!("http://127.0.0.1:{port}/ca.crl")),
        must_staple: false,
    });
    let server = serve(&pki, &leaf).await;
    let (_h, scrape, context) = probe(
        &pki,
        &yaml(
            &server.address(),
            "{ocsp: fetch, crl: fetch, allow_private_addresses: false}",
        ),
    )
    .await;
    assert_verified(&scrape, &context);
    let mut failures: Vec<(String, String, f64)> = scrape
        .find(REVOCATION_CHECK_FAILURE_INFO, &LEAF)
        .into_iter()
        .map(|(labels, value)| (labels["source"].clone(), labels["reason"].clone(), value))
        .collect();
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        failures,
        [
            ("crl".to_owned(), "refused_address".to_owned(), 1.0),
            ("ocsp".to_owned(), "refused_address".to_owned(), 1.0)
        ],
        "{context}"
    );
    assert!(!scrape.has(CERT_REVOKED, &T), "{context}");
    assert_eq!(scrape.value(OCSP_STAPLED, &T), 0.0, "{context}");
    // The listener has accepted nothing: connect once ourselves, and ours is the
    // first connection it sees.
    let ours = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let first = accepted.recv().await.expect("the listener runs");
    assert_eq!(
        first,
        ours.local_addr().expect("local address"),
        "certwatch connected to the refused responder: {context}"
    );
    counting.abort();
}
