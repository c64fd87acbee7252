//! SMTP STARTTLS against scripted servers, and hostile peers: every one ends the probe
//! with a bounded failure class, never a hang.

mod support;

use std::time::Duration;

use certwatch::metrics::names::*;
use support::hostile::{Behaviour, HostileServer};
use support::pki::{Ca, Validity};
use support::smtp_server::{SmtpScript, SmtpServer};
use support::tls_server::ServerSpec;
use support::{Harness, Scrape};

struct Pki {
    root: Ca,
    spec: ServerSpec,
    not_after: i64,
}

fn pki() -> Pki {
    let root = Ca::root("smtp root");
    let inter = root.intermediate("smtp intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(45));
    Pki {
        spec: ServerSpec::new(leaf.chain(&[&inter]), leaf.key()),
        not_after: leaf.not_after,
        root,
    }
}

fn yaml(
    h: &Harness,
    root: &Ca,
    addr: std::net::SocketAddr,
    starttls: &str,
    timeout: &str,
) -> String {
    h.write("root.pem", &root.pem);
    format!(
        "targets:\n  - address: \"{addr}\"\n    name: t\n    server_name: localhost\n    starttls: {starttls}\n    timeout: {timeout}\n    trust: none\n    tls:\n      ca_file: root.pem\n"
    )
}

async fn probe_smtp(script: SmtpScript) -> (Scrape, i64) {
    let pki = pki();
    let server = SmtpServer::start(script, pki.spec.config()).await;
    let h = Harness::new();
    let (_, scrape) = h
        .probe(&yaml(&h, &pki.root, server.addr, "smtp", "5s"))
        .await;
    (scrape, pki.not_after)
}

fn failure(scrape: &Scrape) -> (String, String) {
    let t = [("target", "t")];
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t), 0.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t), 0.0);
    (
        scrape.label(PROBE_FAILURE_INFO, &t, "stage"),
        scrape.label(PROBE_FAILURE_INFO, &t, "reason"),
    )
}

#[tokio::test]
async fn smtp_with_multiline_ehlo_and_starttls_on_the_final_line_succeeds() {
    let (scrape, not_after) = probe_smtp(SmtpScript::good()).await;
    let t = [("target", "t")];
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &t), 1.0);
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[("depth", "0")]),
        not_after as f64
    );
    assert!(scrape.has(PROBE_PHASE_DURATION, &[("phase", "starttls")]));
}

#[tokio::test]
async fn smtp_with_starttls_in_the_middle_of_the_ehlo_reply_succeeds() {
    let mut script = SmtpScript::good();
    script.ehlo = "250-mail.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n".into();
    let (scrape, _) = probe_smtp(script).await;
    assert_eq!(scrape.value(PROBE_SUCCESS, &[("target", "t")]), 1.0);
}

#[tokio::test]
async fn smtp_without_starttls_reports_starttls_not_offered() {
    let mut script = SmtpScript::good();
    script.ehlo = "250-mail.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n".into();
    let (scrape, _) = probe_smtp(script).await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "starttls_not_offered".into())
    );
    assert!(!scrape.has(CERT_INFO, &[]));
}

#[tokio::test]
async fn smtp_454_to_starttls_reports_starttls_rejected() {
    let mut script = SmtpScript::good();
    script.starttls = "454 4.7.0 TLS not available due to local problem\r\n".into();
    let (scrape, _) = probe_smtp(script).await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "starttls_rejected".into())
    );
}

#[tokio::test]
async fn smtp_421_greeting_reports_service_unavailable() {
    let mut script = SmtpScript::good();
    script.greeting = "421 4.3.2 Service not available, closing transmission channel\r\n".into();
    let (scrape, _) = probe_smtp(script).await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "service_unavailable".into())
    );
}

#[tokio::test]
async fn smtp_greeting_that_is_not_smtp_reports_protocol_error() {
    let mut script = SmtpScript::good();
    script.greeting = "220 fine\r\n".into();
    script.ehlo = "HTTP/1.1 400 Bad Request\r\n".into();
    let (scrape, _) = probe_smtp(script).await;
    assert_eq!(
        failure(&scrape),
        ("starttls".into(), "protocol_error".into())
    );
}

/// Probes a hostile server with a short timeout; the probe must end in time.
async fn probe_hostile(behaviour: Behaviour, starttls: &str) -> (String, String) {
    let server = HostileServer::start(behaviour).await;
    let h = Harness::new();
    let root = Ca::root("unused");
    let timeout = Duration::from_secs(1);
    let config = yaml(&h, &root, server.addr, starttls, "1s");
    let probe = h.probe(&config);
    // The probe bounds itself; this outer bound only turns a hang into a failure.
    let (_, scrape) = tokio::time::timeout(timeout * 10, probe)
        .await
        .expect("the probe ended by itself");
    let took = scrape.value(PROBE_DURATION, &[("target", "t")]);
    assert!(
        took < 3.0,
        "{behaviour:?}: the probe took {took}s, past its 1s timeout"
    );
    failure(&scrape)
}

#[tokio::test]
async fn a_silent_server_times_out_in_the_phase_it_was_silent_in() {
    assert_eq!(
        probe_hostile(Behaviour::Silent, "none").await,
        ("handshake".into(), "timeout".into())
    );
    assert_eq!(
        probe_hostile(Behaviour::Silent, "smtp").await,
        ("starttls".into(), "timeout".into())
    );
}

#[tokio::test]
async fn endless_continuation_lines_are_a_protocol_error() {
    assert_eq!(
        probe_hostile(Behaviour::EndlessContinuation, "smtp").await,
        ("starttls".into(), "protocol_error".into())
    );
}

#[tokio::test]
async fn a_line_that_never_ends_is_a_protocol_error() {
    assert_eq!(
        probe_hostile(Behaviour::EndlessLine, "smtp").await,
        ("starttls".into(), "protocol_error".into())
    );
}

#[tokio::test]
async fn garbage_instead_of_a_server_hello_is_a_handshake_protocol_error() {
    assert_eq!(
        probe_hostile(Behaviour::Garbage, "none").await,
        ("handshake".into(), "protocol_error".into())
    );
}

#[tokio::test]
async fn a_reset_after_the_client_hello_is_a_handshake_reset() {
    assert_eq!(
        probe_hostile(Behaviour::ResetAfterHello, "none").await,
        ("handshake".into(), "reset".into())
    );
}

/// A reset after the ClientHello may be an old server refusing a hello it does not
/// understand: the legacy hello tries (full, then cautious: three connections in all)
/// and the failure says what happened, never "no certificate"; `legacy: off` makes one.
#[tokio::test]
async fn a_reset_after_the_hello_tries_the_legacy_hellos_and_says_what_happened() {
    for (legacy, connections) in [("on", 3), ("off", 1)] {
        let server = HostileServer::start(Behaviour::ResetAfterHello).await;
        let h = Harness::new();
        let root = Ca::root("unused");
        let config =
            yaml(&h, &root, server.addr, "none", "5s") + &format!("    legacy: {legacy}\n");
        let (outcome, scrape) = h.probe(&config).await;
        assert_eq!(failure(&scrape), ("handshake".into(), "reset".into()));
        assert_eq!(scrape.value(LEGACY_ONLY, &[("target", "t")]), 0.0);
        let detail = &outcome.addresses[0]
            .handshake
            .as_ref()
            .expect_err("no handshake")
            .detail;
        assert!(
            detail.starts_with("the server ended the handshake before its certificate arrived"),
            "{detail}"
        );
        assert!(!detail.contains("no certificate"), "{detail}");
        assert_eq!(
            detail.contains("the legacy hello:") && detail.contains("the cautious one:"),
            legacy == "on",
            "{detail}"
        );
        assert_eq!(
            server.accepted.try_iter().count(),
            connections,
            "legacy: {legacy}: {detail}"
        );
    }
}
