//! The line-based STARTTLS dialects (IMAP, POP3, FTP, NNTP, ManageSieve, LMTP) against
//! scripted servers: each upgrades and verifies a real chain, and each refusal lands in
//! its failure class (contract §4, stage `starttls`).

mod support;

use certwatch::metrics::names::*;
use support::line_server::{LineScript, LineServer};
use support::pki::{Ca, Validity};
use support::tls_server::ServerSpec;
use support::transcript::{dialogue, line_after_time};
use support::{Harness, Scrape};

const TARGET: [(&str, &str); 1] = [(LABEL_TARGET, "t")];

/// Probes a server running `script` with `starttls: <protocol>`, trusting only a fresh
/// root whose intermediate signed the leaf; returns the scrape and the leaf's notAfter.
async fn probe(protocol: &str, script: LineScript) -> (Scrape, i64) {
    let root = Ca::root("text root");
    let inter = root.intermediate("text intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(60));
    let spec = ServerSpec::new(leaf.chain(&[&inter]), leaf.key());
    let server = LineServer::start(script, spec.config()).await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    let yaml = format!(
        "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n    starttls: {protocol}\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
        server.addr
    );
    let (_, scrape) = h.probe(&yaml).await;
    (scrape, leaf.not_after)
}

/// Asserts a complete, verified probe through the `starttls` phase.
fn assert_upgraded(scrape: &Scrape, not_after: i64) {
    assert_eq!(
        scrape.value(HANDSHAKE_SUCCESS, &TARGET),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.value(CHAIN_VERIFIED, &TARGET), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &TARGET), 1.0);
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[(LABEL_TARGET, "t"), (LABEL_DEPTH, "0")]),
        not_after as f64
    );
    assert!(scrape.has(PROBE_PHASE_DURATION, &[(LABEL_PHASE, "starttls")]));
    assert!(!scrape.has(PROBE_FAILURE_INFO, &TARGET));
}

/// The failed probe's `(stage, reason)`, after checking nothing was presented.
fn failure(scrape: &Scrape) -> (String, String) {
    assert_eq!(
        scrape.value(HANDSHAKE_SUCCESS, &TARGET),
        0.0,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.value(PROBE_SUCCESS, &TARGET), 0.0);
    assert!(!scrape.has(CERT_INFO, &TARGET));
    (
        scrape.label(PROBE_FAILURE_INFO, &TARGET, LABEL_STAGE),
        scrape.label(PROBE_FAILURE_INFO, &TARGET, LABEL_REASON),
    )
}

fn starttls(reason: &str) -> (String, String) {
    ("starttls".into(), reason.into())
}

// IMAP (RFC 3501, RFC 9051).

fn imap() -> LineScript {
    LineScript::new(
        "* OK IMAP4rev1 mail.test ready\r\n",
        "* BAD unknown command\r\n",
    )
    .on(
        "a001 CAPABILITY",
        "* CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED\r\na001 OK CAPABILITY completed\r\n",
    )
    .upgrade("a002 STARTTLS", "a002 OK Begin TLS negotiation now\r\n")
}

#[tokio::test]
async fn imap_with_starttls_in_the_capability_reply_succeeds() {
    let (scrape, not_after) = probe("imap", imap()).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn imap_with_starttls_in_the_greeting_capability_code_succeeds() {
    let script = imap().greeting("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n");
    let (scrape, not_after) = probe("imap", script).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn imap_without_starttls_reports_starttls_not_offered() {
    let script = imap().on(
        "a001 CAPABILITY",
        "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na001 OK done\r\n",
    );
    let (scrape, _) = probe("imap", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn imap_no_to_starttls_reports_starttls_rejected() {
    let script = imap().on("a002 STARTTLS", "a002 NO TLS is not available\r\n");
    let (scrape, _) = probe("imap", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
}

#[tokio::test]
async fn imap_bye_greeting_reports_service_unavailable() {
    let script = imap().greeting("* BYE too many connections\r\n");
    let (scrape, _) = probe("imap", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
}

// POP3 (RFC 2595, RFC 2449).

fn pop3() -> LineScript {
    LineScript::new("+OK POP3 mail.test ready\r\n", "-ERR unknown command\r\n")
        .on(
            "CAPA",
            "+OK Capability list follows\r\nTOP\r\nUIDL\r\nSTLS\r\nSASL PLAIN\r\n.\r\n",
        )
        .upgrade("STLS", "+OK Begin TLS negotiation\r\n")
}

#[tokio::test]
async fn pop3_with_stls_in_the_capa_list_succeeds() {
    let (scrape, not_after) = probe("pop3", pop3()).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn pop3_without_stls_reports_starttls_not_offered() {
    let script = pop3().on("CAPA", "+OK\r\nTOP\r\nUIDL\r\n.\r\n");
    let (scrape, _) = probe("pop3", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn pop3_err_to_stls_reports_starttls_rejected() {
    let script = pop3().on("STLS", "-ERR TLS not available\r\n");
    let (scrape, _) = probe("pop3", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
}

#[tokio::test]
async fn pop3_err_greeting_reports_service_unavailable() {
    let script = pop3().greeting("-ERR maintenance in progress\r\n");
    let (scrape, _) = probe("pop3", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
}

// FTP (RFC 4217, RFC 959, RFC 2389).

fn ftp() -> LineScript {
    LineScript::new(
        "220-ftp.test welcomes you\r\n  no code on this line\r\n220-still greeting\r\n220 ready\r\n",
        "500 unknown command\r\n",
    )
    .on(
        "FEAT",
        "211-Features:\r\n MDTM\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n",
    )
    .upgrade("AUTH TLS", "234 AUTH TLS OK.\r\n")
}

#[tokio::test]
async fn ftp_with_auth_tls_after_a_multiline_greeting_succeeds() {
    let (scrape, not_after) = probe("ftp", ftp()).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn ftp_without_auth_tls_in_feat_reports_starttls_not_offered() {
    let script = ftp().on("FEAT", "211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n");
    let (scrape, _) = probe("ftp", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn ftp_that_knows_neither_feat_nor_auth_reports_starttls_not_offered() {
    let script = ftp()
        .on("FEAT", "502 command not implemented\r\n")
        .on("AUTH TLS", "502 command not implemented\r\n");
    let (scrape, _) = probe("ftp", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn ftp_534_to_auth_tls_reports_starttls_rejected() {
    let script = ftp().on("AUTH TLS", "534 Request denied for policy reasons\r\n");
    let (scrape, _) = probe("ftp", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
}

#[tokio::test]
async fn ftp_421_greeting_reports_service_unavailable() {
    let script = ftp().greeting("421 Too many users, try again later\r\n");
    let (scrape, _) = probe("ftp", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
}

// NNTP (RFC 4642, RFC 3977).

fn nntp() -> LineScript {
    LineScript::new(
        "200 news.test ready, posting allowed\r\n",
        "500 unknown command\r\n",
    )
    .on(
        "CAPABILITIES",
        "101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\n.\r\n",
    )
    .upgrade("STARTTLS", "382 Continue with TLS negotiation\r\n")
}

#[tokio::test]
async fn nntp_with_starttls_in_the_capabilities_succeeds() {
    let (scrape, not_after) = probe("nntp", nntp()).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn nntp_without_starttls_reports_starttls_not_offered() {
    let script = nntp().on("CAPABILITIES", "101 list\r\nVERSION 2\r\nREADER\r\n.\r\n");
    let (scrape, _) = probe("nntp", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn nntp_580_to_starttls_reports_starttls_rejected() {
    let script = nntp().on("STARTTLS", "580 Can not initiate TLS negotiation\r\n");
    let (scrape, _) = probe("nntp", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
}

#[tokio::test]
async fn nntp_400_greeting_reports_service_unavailable() {
    let script = nntp().greeting("400 service temporarily unavailable\r\n");
    let (scrape, _) = probe("nntp", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
}

// ManageSieve (RFC 5804).

const SIEVE_CAPABILITIES: &str = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject envelope\"\r\n\"SASL\" \"\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n";

fn sieve() -> LineScript {
    LineScript::new(SIEVE_CAPABILITIES, "NO \"unknown command\"\r\n")
        .upgrade("STARTTLS", "OK \"Begin TLS negotiation now.\"\r\n")
}

#[tokio::test]
async fn sieve_with_starttls_in_the_greeting_succeeds() {
    let (scrape, not_after) = probe("sieve", sieve()).await;
    assert_upgraded(&scrape, not_after);
}

#[tokio::test]
async fn sieve_without_starttls_reports_starttls_not_offered() {
    let script = sieve().greeting("\"IMPLEMENTATION\" \"x\"\r\n\"SASL\" \"PLAIN\"\r\nOK\r\n");
    let (scrape, _) = probe("sieve", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn sieve_no_to_starttls_reports_starttls_rejected() {
    let script = sieve().on("STARTTLS", "NO \"TLS unavailable\"\r\n");
    let (scrape, _) = probe("sieve", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
}

#[tokio::test]
async fn sieve_bye_greeting_reports_service_unavailable() {
    let script = sieve().greeting("BYE \"Too many connections\"\r\n");
    let (scrape, _) = probe("sieve", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
}

// LMTP (RFC 2033), spoken by the SMTP dialect with LHLO.

#[tokio::test]
async fn lmtp_with_lhlo_and_starttls_succeeds() {
    // EHLO would get the 500 and fail the probe: success shows LHLO was sent.
    let script = LineScript::new(
        "220 lmtp.test LMTP ready\r\n",
        "500 5.5.1 unknown command\r\n",
    )
    .on(
        "LHLO",
        "250-lmtp.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
    )
    .upgrade("STARTTLS", "220 2.0.0 Ready to start TLS\r\n");
    let (scrape, not_after) = probe("lmtp", script).await;
    assert_upgraded(&scrape, not_after);
}

// Transcripts (`/probe?debug=true`, `check --verbose`): every line each side said.

/// The transcript of a probe of a server running `script`, and its dialogue.
async fn transcript(protocol: &str, script: LineScript) -> (String, Vec<String>) {
    let root = Ca::root("text root");
    let leaf = root.leaf(&["localhost"], Validity::days(60));
    let server = LineServer::start(
        script,
        ServerSpec::new(leaf.chain(&[]), leaf.key()).config(),
    )
    .await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    let yaml = format!(
        "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n    starttls: {protocol}\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
        server.addr
    );
    let (_, text) = h.transcript(&yaml).await;
    let said = dialogue(&text);
    (text, said)
}

#[tokio::test]
async fn each_line_dialect_transcript_holds_the_whole_dialogue_in_order() {
    let lmtp = LineScript::new("220 lmtp.test LMTP ready\r\n", "500 unknown\r\n")
        .on("LHLO", "250-lmtp.test\r\n250 STARTTLS\r\n")
        .upgrade("STARTTLS", "220 2.0.0 Ready to start TLS\r\n");
    let cases: Vec<(&str, LineScript, Vec<&str>)> = vec![
        (
            "imap",
            imap(),
            vec![
                "S: * OK IMAP4rev1 mail.test ready",
                "C: a001 CAPABILITY",
                "S: * CAPABILITY IMAP4rev1 SASL-IR STARTTLS LOGINDISABLED",
                "S: a001 OK CAPABILITY completed",
                "C: a002 STARTTLS",
                "S: a002 OK Begin TLS negotiation now",
            ],
        ),
        (
            "pop3",
            pop3(),
            vec![
                "S: +OK POP3 mail.test ready",
                "C: CAPA",
                "S: +OK Capability list follows",
                "S: TOP",
                "S: UIDL",
                "S: STLS",
                "S: SASL PLAIN",
                "S: .",
                "C: STLS",
                "S: +OK Begin TLS negotiation",
            ],
        ),
        (
            "ftp",
            ftp(),
            vec![
                "S: 220-ftp.test welcomes you",
                "S:   no code on this line",
                "S: 220-still greeting",
                "S: 220 ready",
                "C: FEAT",
                "S: 211-Features:",
                "S:  MDTM",
                "S:  AUTH TLS",
                "S:  PBSZ",
                "S:  PROT",
                "S: 211 End",
                "C: AUTH TLS",
                "S: 234 AUTH TLS OK.",
            ],
        ),
        (
            "nntp",
            nntp(),
            vec![
                "S: 200 news.test ready, posting allowed",
                "C: CAPABILITIES",
                "S: 101 Capability list:",
                "S: VERSION 2",
                "S: READER",
                "S: STARTTLS",
                "S: .",
                "C: STARTTLS",
                "S: 382 Continue with TLS negotiation",
            ],
        ),
        (
            "sieve",
            sieve(),
            vec![
                "S: \"IMPLEMENTATION\" \"Dovecot Pigeonhole\"",
                "S: \"SIEVE\" \"fileinto reject envelope\"",
                "S: \"SASL\" \"\"",
                "S: \"STARTTLS\"",
                "S: \"VERSION\" \"1.0\"",
                "S: OK \"Dovecot ready.\"",
                "C: STARTTLS",
                "S: OK \"Begin TLS negotiation now.\"",
            ],
        ),
        (
            "lmtp",
            lmtp,
            vec![
                "S: 220 lmtp.test LMTP ready",
                "C: LHLO certwatch.localhost",
                "S: 250-lmtp.test",
                "S: 250 STARTTLS",
                "C: STARTTLS",
                "S: 220 2.0.0 Ready to start TLS",
            ],
        ),
    ];
    for (protocol, script, expected) in cases {
        let (text, said) = transcript(protocol, script).await;
        assert_eq!(said, expected, "{protocol}:\n{text}");
        // Then the handshake over the upgraded connection, and its result.
        let tls = line_after_time(&text, "tls: TLSv1.3, TLS_").unwrap_or_else(|| panic!("{text}"));
        assert!(
            tls.ends_with("; ALPN none; client certificate requested: no"),
            "{tls}"
        );
        assert!(
            text.contains(&format!("starttls:     {protocol}\n")),
            "{text}"
        );
        assert!(text.contains("  result:      success\n"), "{text}");
    }
}

#[tokio::test]
async fn a_refusal_shows_the_line_that_refused_and_the_failure() {
    let script = pop3().on("STLS", "-ERR TLS not available\r\n");
    let (text, said) = transcript("pop3", script).await;
    assert_eq!(
        said.last().map(String::as_str),
        Some("S: -ERR TLS not available"),
        "{text}"
    );
    assert!(
        text.contains(
            "  result:      failed in starttls (starttls_rejected): the server refused STARTTLS"
        ),
        "{text}"
    );
    assert_eq!(
        line_after_time(&text, "tls: "),
        None,
        "no handshake was attempted:\n{text}"
    );
}
