//! Plain-TLS probes against in-process rustls servers: every verdict, every client
//! certificate policy, both TLS versions, and a certificate change between probes.

mod support;

use certwatch::metrics::names::*;
use support::pki::{self_signed_leaf, Ca, Leaf, Validity};
use support::tls_server::{ClientAuth, ServerSpec, TlsServer};
use support::{now_unix, Harness, Scrape};

static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// A root trusted through `ca_file`, an intermediate and a leaf for `localhost`.
struct Chain {
    root: Ca,
    intermediate: Ca,
    leaf: Leaf,
}

impl Chain {
    fn new(intermediate: Validity, leaf: Validity) -> Chain {
        let root = Ca::root("certwatch test root");
        let intermediate = root.intermediate("certwatch test intermediate", intermediate);
        let leaf = intermediate.leaf(&["localhost"], leaf);
        Chain {
            root,
            intermediate,
            leaf,
        }
    }

    fn valid() -> Chain {
        Chain::new(Validity::days(365), Validity::days(90))
    }

    fn server(&self) -> ServerSpec {
        ServerSpec::new(self.leaf.chain(&[&self.intermediate]), self.leaf.key())
    }
}

/// A harness with `root.pem` written, and the YAML of one target at `server`.
fn target(h: &Harness, root: &Ca, server: &TlsServer, extra: &str) -> String {
    h.write("root.pem", &root.pem);
    format!(
        "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n{extra}",
        server.address()
    )
}

fn t() -> [(&'static str, &'static str); 1] {
    [("target", "t")]
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1.5,
        "{what}: {actual} is not within a second of {expected}"
    );
}

fn assert_verify_failed(scrape: &Scrape, reason: &str) {
    assert_eq!(
        scrape.value(HANDSHAKE_SUCCESS, &t()),
        1.0,
        "the handshake completes whatever the chain"
    );
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t()), 0.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 0.0);
    assert_eq!(scrape.label(VERIFY_ERROR_INFO, &t(), "reason"), reason);
    assert!(
        !scrape.has(VERIFIED_CHAIN_EXPIRY, &t()),
        "no verified expiry for a chain that does not verify"
    );
}

#[tokio::test]
async fn valid_chain_with_intermediate_verifies_and_reports_every_date() {
    let chain = Chain::valid();
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    let now = now_unix();

    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 1.0);
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t()), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 1.0);
    assert!(!scrape.has(VERIFY_ERROR_INFO, &[]));
    assert!(!scrape.has(PROBE_FAILURE_INFO, &[]));
    assert_eq!(scrape.label(HANDSHAKE_SUCCESS, &t(), "ip"), "127.0.0.1");

    let leaf = [("target", "t"), ("depth", "0")];
    let inter = [("target", "t"), ("depth", "1")];
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &leaf),
        chain.leaf.not_after as f64
    );
    assert_eq!(
        scrape.value(CERT_NOT_BEFORE, &leaf),
        chain.leaf.not_before as f64
    );
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &inter),
        chain.intermediate.not_after as f64
    );
    assert_close(
        scrape.value(CERT_EXPIRY, &leaf),
        chain.leaf.not_after as f64 - now,
        "leaf expiry",
    );
    assert_close(
        scrape.value(CHAIN_EXPIRY, &t()),
        chain.leaf.not_after as f64 - now,
        "chain expiry",
    );
    let path_end = chain
        .leaf
        .not_after
        .min(chain.intermediate.not_after)
        .min(chain.root.not_after);
    assert_close(
        scrape.value(VERIFIED_CHAIN_EXPIRY, &t()),
        path_end as f64 - now,
        "verified chain expiry",
    );

    assert_eq!(
        scrape.label(CERT_INFO, &leaf, "serial"),
        chain.leaf.serial_hex
    );
    assert_eq!(scrape.label(CERT_INFO, &leaf, "subject_cn"), "localhost");
    assert_eq!(
        scrape.label(CERT_INFO, &leaf, "issuer_cn"),
        "certwatch test intermediate"
    );
    assert_eq!(scrape.label(CERT_INFO, &leaf, "dns_names"), ",localhost,");
    assert_eq!(scrape.label(CERT_INFO, &leaf, "key_algorithm"), "ECDSA");
    assert_eq!(scrape.label(CERT_INFO, &leaf, "key_bits"), "256");
    assert_eq!(
        scrape.label(CERT_INFO, &leaf, "signature_algorithm"),
        "ecdsa-with-SHA256"
    );
    assert_eq!(
        scrape.label(CERT_INFO, &leaf, "fingerprint_sha256").len(),
        64
    );
    assert_eq!(scrape.label(TLS_INFO, &t(), "version"), "TLSv1.3");
    assert!(scrape.label(TLS_INFO, &t(), "cipher").starts_with("TLS_"));
    assert_eq!(
        scrape.value(PROBES_TOTAL, &[("target", "t"), ("result", "success")]),
        1.0
    );
    for phase in ["resolve", "connect", "handshake"] {
        assert!(
            scrape.has(PROBE_PHASE_DURATION, &[("phase", phase)]),
            "phase {phase}"
        );
    }
    assert!(
        !scrape.has(PROBE_PHASE_DURATION, &[("phase", "starttls")]),
        "no STARTTLS phase for plain TLS"
    );
}

#[tokio::test]
async fn expired_leaf_reports_expired_with_its_negative_expiry() {
    let chain = Chain::new(Validity::days(365), Validity::expired());
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    assert_verify_failed(&scrape, "expired");
    let expiry = scrape.value(CERT_EXPIRY, &[("depth", "0")]);
    assert!(expiry < 0.0);
    assert_close(
        expiry,
        chain.leaf.not_after as f64 - now_unix(),
        "expired leaf expiry",
    );
}

#[tokio::test]
async fn not_yet_valid_leaf_reports_not_yet_valid() {
    let chain = Chain::new(Validity::days(365), Validity::not_yet_valid());
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    assert_verify_failed(&scrape, "not_yet_valid");
    assert_eq!(
        scrape.value(CERT_NOT_BEFORE, &[("depth", "0")]),
        chain.leaf.not_before as f64
    );
}

#[tokio::test]
async fn self_signed_leaf_reports_self_signed() {
    let leaf = self_signed_leaf(&["localhost"], Validity::days(30));
    let server = TlsServer::start(ServerSpec::new(vec![leaf.cert.clone()], leaf.key())).await;
    let h = Harness::new();
    let unrelated = Ca::root("unrelated root");
    let (_, scrape) = h.probe(&target(&h, &unrelated, &server, "")).await;
    assert_verify_failed(&scrape, "self_signed");
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[("depth", "0")]),
        leaf.not_after as f64
    );
}

#[tokio::test]
async fn wrong_hostname_reports_name_mismatch() {
    let root = Ca::root("root");
    let inter = root.intermediate("inter", Validity::days(365));
    let leaf = inter.leaf(&["other.example"], Validity::days(30));
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&inter]), leaf.key())).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &root, &server, "")).await;
    assert_verify_failed(&scrape, "name_mismatch");
}

#[tokio::test]
async fn missing_intermediate_reports_unknown_issuer() {
    let chain = Chain::valid();
    let server = TlsServer::start(ServerSpec::new(
        vec![chain.leaf.cert.clone()],
        chain.leaf.key(),
    ))
    .await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    assert_verify_failed(&scrape, "unknown_issuer");
    assert!(!scrape.has(CERT_INFO, &[("depth", "1")]));
}

#[tokio::test]
async fn expired_intermediate_reports_expired_reason() {
    let chain = Chain::new(Validity::expired(), Validity::days(30));
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    assert_verify_failed(&scrape, "expired");
    assert!(scrape.value(CERT_EXPIRY, &[("depth", "1")]) < 0.0);
    assert!(
        scrape.value(CHAIN_EXPIRY, &t()) < 0.0,
        "the chain expires with its intermediate"
    );
}

#[tokio::test]
async fn the_default_webpki_roots_do_not_trust_a_private_ca() {
    let chain = Chain::valid();
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let yaml = format!(
        "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n",
        server.address()
    );
    let (_, scrape) = h.probe(&yaml).await;
    assert_verify_failed(&scrape, "unknown_issuer");
}

#[tokio::test]
async fn optional_client_certificate_request_is_probed_without_one() {
    let chain = Chain::valid();
    let client_ca = Ca::root("client ca");
    let mut spec = chain.server();
    spec.client_auth = ClientAuth::Optional(client_ca.cert.clone());
    let server = TlsServer::start(spec).await;
    let h = Harness::new();
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 1.0);
}

#[tokio::test]
async fn required_client_certificate_without_one_fails_the_handshake_but_shows_the_chain() {
    for versions in [TLS13_ONLY, TLS12_ONLY] {
        let chain = Chain::valid();
        let client_ca = Ca::root("client ca");
        let mut spec = chain.server();
        spec.client_auth = ClientAuth::Required(client_ca.cert.clone());
        spec.versions = versions;
        let server = TlsServer::start(spec).await;
        let h = Harness::new();
        let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
        assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 0.0, "{versions:?}");
        assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 0.0);
        assert_eq!(scrape.label(PROBE_FAILURE_INFO, &t(), "stage"), "handshake");
        assert_eq!(
            scrape.label(PROBE_FAILURE_INFO, &t(), "reason"),
            "handshake_failure",
            "{versions:?}"
        );
        assert_eq!(
            scrape.value(CERT_NOT_AFTER, &[("depth", "0")]),
            chain.leaf.not_after as f64
        );
        assert_eq!(
            scrape.value(CHAIN_VERIFIED, &t()),
            1.0,
            "the presented chain itself is fine"
        );
        assert!(!scrape.has(TLS_INFO, &t()));
    }
}

#[tokio::test]
async fn required_client_certificate_is_presented_when_configured() {
    let chain = Chain::valid();
    let client_ca = Ca::root("client ca");
    let client = client_ca.client("probe");
    let mut spec = chain.server();
    spec.client_auth = ClientAuth::Required(client_ca.cert.clone());
    let server = TlsServer::start(spec).await;
    let h = Harness::new();
    h.write("client.crt", &client.chain_pem(&[]));
    h.write("client.key", &client.key_pem);
    let extra = "      client_cert_file: client.crt\n      client_key_file: client.key\n";
    let (_, scrape) = h.probe(&target(&h, &chain.root, &server, extra)).await;
    assert_eq!(
        scrape.value(HANDSHAKE_SUCCESS, &t()),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 1.0);
}

#[tokio::test]
async fn tls12_only_and_tls13_only_servers_report_their_version() {
    for (versions, name) in [(TLS12_ONLY, "TLSv1.2"), (TLS13_ONLY, "TLSv1.3")] {
        let chain = Chain::valid();
        let mut spec = chain.server();
        spec.versions = versions;
        let server = TlsServer::start(spec).await;
        let h = Harness::new();
        let (_, scrape) = h.probe(&target(&h, &chain.root, &server, "")).await;
        assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 1.0);
        assert_eq!(scrape.label(TLS_INFO, &t(), "version"), name);
        let cipher = scrape.label(TLS_INFO, &t(), "cipher");
        assert!(
            cipher.starts_with("TLS_") && !cipher.starts_with("TLS13_"),
            "{cipher}"
        );
    }
}

#[tokio::test]
async fn a_certificate_changed_between_probes_is_seen_on_the_second_probe() {
    let chain = Chain::valid();
    let server = TlsServer::start(chain.server()).await;
    let h = Harness::new();
    let yaml = target(&h, &chain.root, &server, "");
    let (_, first) = h.probe(&yaml).await;
    let renewed = chain.intermediate.leaf(&["localhost"], Validity::days(200));
    server.replace(ServerSpec::new(
        renewed.chain(&[&chain.intermediate]),
        renewed.key(),
    ));
    // The same configuration, so the same TLS client configuration: no session reuse.
    let config = h.config(&yaml);
    let spec = config.targets[0].clone();
    let first_again = certwatch::probe::run(&spec).await;
    let second = certwatch::probe::run(&spec).await;
    let serial = |o: &certwatch::probe::outcome::ProbeOutcome| {
        o.addresses[0].chain[0]
            .info
            .as_ref()
            .expect("parsed")
            .serial_hex
            .clone()
    };
    assert_eq!(
        first.label(CERT_INFO, &[("depth", "0")], "serial"),
        chain.leaf.serial_hex
    );
    assert_eq!(serial(&first_again), renewed.serial_hex);
    assert_eq!(serial(&second), renewed.serial_hex);
    assert_eq!(
        second.addresses[0].chain[0].not_after(),
        Some(renewed.not_after)
    );
}

#[tokio::test]
async fn a_closed_port_reports_connect_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let h = Harness::new();
    let yaml =
        format!("targets:\n  - address: \"{addr}\"\n    name: t\n    server_name: localhost\n");
    let (_, scrape) = h.probe(&yaml).await;
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 0.0);
    assert_eq!(scrape.label(PROBE_FAILURE_INFO, &t(), "stage"), "connect");
    assert_eq!(scrape.label(PROBE_FAILURE_INFO, &t(), "reason"), "refused");
    assert!(!scrape.has(CHAIN_VERIFIED, &t()), "no chain, no verdict");
    assert!(!scrape.has(CERT_INFO, &[]));
    assert_eq!(scrape.value(PROBES_TOTAL, &[("result", "failure")]), 1.0);
}
