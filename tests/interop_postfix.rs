//! Interoperability with a real SMTP server: certwatch probes a private Postfix instance
//! (started by the test on a loopback port, see `support/postfix.rs`) over STARTTLS,
//! and its metrics must equal what `openssl s_client -starttls smtp` reports for the
//! same endpoint: chain length, leaf serial, leaf notAfter, TLS version and verdict.
//!
//! Needs root and the Debian packages `postfix` and `openssl`. Without them the tests
//! print "skipping: ..." and pass, except under `CI=true`, where they fail.

mod support;

use certwatch::metrics::names::*;
use support::daemon::{self, Chain};
use support::openssl::{self, certwatch_chain_length, parse_openssl_date, T};
use support::pki::Ca;
use support::postfix::Postfix;
use support::Harness;

#[tokio::test]
async fn postfix_starttls_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let Some(server) = daemon::started("postfix", Postfix::start(Some(&chain.server_tls())).await)
    else {
        return;
    };
    openssl::assert_certwatch_matches_openssl(&server.address(), "smtp", &chain, &|| server.log())
        .await;
}

#[tokio::test]
async fn postfix_without_tls_reports_starttls_not_offered() {
    let Some(server) = daemon::started("postfix", Postfix::start(None).await) else {
        return;
    };
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

#[test]
fn openssl_dates_parse_to_unix_seconds() {
    assert_eq!(parse_openssl_date("Nov 22 19:40:57 2027 GMT"), 1826912457);
    assert_eq!(parse_openssl_date("Feb  3 00:00:00 2026 GMT"), 1770076800);
}
