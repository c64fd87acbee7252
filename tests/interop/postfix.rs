//! Interoperability with a real SMTP server: certwatch probes a private Postfix instance
//! (started by the test on a loopback port, see `support/postfix.rs`) over STARTTLS,
//! and its metrics must equal what `openssl s_client -starttls smtp` reports for the
//! same endpoint: chain length, leaf serial, leaf notAfter, TLS version and verdict.
//!
//! Needs root and the Debian packages `postfix` and `openssl`; without them the tests
//! are ignored, and fail under `CI=true` (see `support/tools.rs`).

use certwatch::metrics::names::*;

use crate::support::daemon::{self, Chain};
use crate::support::openssl::{self, certwatch_chain_length, T};
use crate::support::pki::Ca;
use crate::support::postfix::{Postfix, POSTFIX};
use crate::support::tools::{trial, Trial, OPENSSL, ROOT};
use crate::support::transcript::dialogue;
use crate::support::Harness;

pub fn trials() -> Vec<Trial> {
    let needs = &[POSTFIX, ROOT, OPENSSL];
    vec![
        trial!(needs, async starttls_chain_matches_openssl_s_client),
        trial!(needs, async without_tls_reports_starttls_not_offered),
        trial!(needs, async the_transcript_shows_postfix_s_own_dialogue),
    ]
}

/// `/probe?debug=true` and `check --verbose` against a real Postfix: its banner, its
/// EHLO reply and its STARTTLS answer, line by line, then the handshake.
async fn the_transcript_shows_postfix_s_own_dialogue() {
    let chain = Chain::new();
    let server = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    let h = Harness::new();
    h.write("root.pem", &chain.root.pem);
    let (_, text) = h
        .transcript(&openssl::target_yaml(&server.address(), "smtp"))
        .await;
    let context = || format!("{text}\npostfix log:\n{}", server.log());
    let said = dialogue(&text);
    assert!(said[0].starts_with("S: 220 "), "{}", context());
    assert_eq!(said[1], "C: EHLO certwatch.localhost", "{}", context());
    let ehlo: Vec<&String> = said[2..]
        .iter()
        .take_while(|l| l.starts_with("S: 250"))
        .collect();
    assert!(
        ehlo.last().is_some_and(|l| l.starts_with("S: 250 ")),
        "{}",
        context()
    );
    assert!(
        ehlo.iter().any(|l| l.ends_with("STARTTLS")),
        "{}",
        context()
    );
    let rest = &said[2 + ehlo.len()..];
    assert_eq!(rest[0], "C: STARTTLS", "{}", context());
    assert!(rest[1].starts_with("S: 220 2.0.0 "), "{}", context());
    assert_eq!(rest.len(), 2, "{}", context());
    assert!(text.contains("  result:      success\n"), "{}", context());
}

async fn starttls_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Postfix::start(Some(&chain.server_tls())).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "smtp", &chain, &|| server.log())
        .await;
}

async fn without_tls_reports_starttls_not_offered() {
    let server = daemon::running(Postfix::start(None).await);
    let h = Harness::new();
    let root = h.write("root.pem", &Ca::root("unused root").pem);

    let (_, scrape) = h
        .probe(&openssl::target_yaml(&server.address(), "smtp"))
        .await;
    let context = || {
        format!(
            "certwatch:\n{}\npostfix log:\n{}",
            scrape.text,
            server.log()
        )
    };
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 0.0, "{}", context());
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 0.0, "{}", context());
    assert_eq!(
        scrape.label(PROBE_FAILURE_INFO, &T, "stage"),
        "starttls",
        "{}",
        context()
    );
    assert_eq!(
        scrape.label(PROBE_FAILURE_INFO, &T, "reason"),
        "starttls_not_offered",
        "{}",
        context()
    );
    assert_eq!(certwatch_chain_length(&scrape), 0, "{}", context());

    // openssl agrees: no STARTTLS in the EHLO reply, and no certificate.
    let openssl = openssl::s_client(&server.address(), Some("smtp"), &root, h.path()).await;
    assert!(
        openssl.text.contains("Didn't find STARTTLS"),
        "openssl s_client:\n{}",
        openssl.text
    );
    assert!(
        openssl.certificates.is_empty(),
        "openssl s_client:\n{}",
        openssl.text
    );
}
