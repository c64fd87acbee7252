//! The binary STARTTLS dialects, LDAP, PostgreSQL and MySQL, against scripted servers:
//! each succeeds through to a verified chain when the server agrees, and every refusal
//! or hostile answer ends in its failure class, in time.

mod support;

use std::sync::Arc;

use certwatch::metrics::names::*;
use certwatch::probe::outcome::ProbeOutcome;
use rustls::ServerConfig;
use support::binary_server::{BinaryServer, Step};
use support::hostile::{Behaviour, HostileServer};
use support::pki::{Ca, Validity};
use support::tls_server::ServerSpec;
use support::transcript::dialogue;
use support::{Harness, Scrape};

const T: [(&str, &str); 1] = [("target", "t")];

struct Pki {
    root: Ca,
    tls: Arc<ServerConfig>,
    not_after: i64,
}

fn pki() -> Pki {
    let root = Ca::root("binary root");
    let inter = root.intermediate("binary intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(60));
    Pki {
        tls: ServerSpec::new(leaf.chain(&[&inter]), leaf.key()).config(),
        not_after: leaf.not_after,
        root,
    }
}

fn yaml(h: &Harness, root: &Ca, addr: std::net::SocketAddr, starttls: &str) -> String {
    h.write("root.pem", &root.pem);
    format!(
        "targets:\n  - address: \"{addr}\"\n    name: t\n    server_name: localhost\n    starttls: {starttls}\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n"
    )
}

/// Probes a server playing `script` and returns the outcome, the scrape and the leaf's
/// notAfter.
async fn probe(starttls: &str, script: Vec<Step>) -> (ProbeOutcome, Scrape, i64) {
    let pki = pki();
    let server = BinaryServer::start(script, pki.tls.clone()).await;
    let h = Harness::new();
    let (outcome, scrape) = h.probe(&yaml(&h, &pki.root, server.addr, starttls)).await;
    (outcome, scrape, pki.not_after)
}

fn assert_success(scrape: &Scrape, not_after: i64) {
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 1.0, "{}", scrape.text);
    assert_eq!(scrape.value(CHAIN_VERIFIED, &T), 1.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 1.0);
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[("depth", "0")]),
        not_after as f64
    );
    assert!(scrape.has(PROBE_PHASE_DURATION, &[("phase", "starttls")]));
    assert!(!scrape.has(PROBE_FAILURE_INFO, &[]));
}

/// The failure's (stage, reason); also checks that no certificate was reported.
fn failure(scrape: &Scrape) -> (String, String) {
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 0.0);
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 0.0);
    assert!(!scrape.has(CERT_INFO, &[]), "{}", scrape.text);
    (
        scrape.label(PROBE_FAILURE_INFO, &T, "stage"),
        scrape.label(PROBE_FAILURE_INFO, &T, "reason"),
    )
}

fn starttls(reason: &str) -> (String, String) {
    ("starttls".into(), reason.into())
}

/// The free-text detail of the failure, where the server's words end up.
fn detail(outcome: &ProbeOutcome) -> String {
    match &outcome.addresses[0].handshake {
        Err(failure) => failure.detail.clone(),
        Ok(_) => panic!("the probe succeeded"),
    }
}

/// A probe that failed quickly: well before its 5s timeout.
fn assert_quick(scrape: &Scrape) {
    let took = scrape.value(PROBE_DURATION, &T);
    assert!(took < 1.0, "the probe took {took}s");
}

// LDAP (RFC 4511)

/// `SEQUENCE { INTEGER 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }`.
fn ldap_start_tls_request() -> Vec<u8> {
    let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
    request.extend_from_slice(b"1.3.6.1.4.1.1466.20037");
    request
}

/// An LDAPMessage holding an ExtendedResponse, with short-form lengths.
fn ldap_response(id: u8, code: u8, diagnostic: &str, name: Option<&str>) -> Vec<u8> {
    let tlv = |tag: u8, value: &[u8]| [&[tag, value.len() as u8][..], value].concat();
    let mut op = tlv(0x0a, &[code]);
    op.extend(tlv(0x04, b""));
    op.extend(tlv(0x04, diagnostic.as_bytes()));
    if let Some(name) = name {
        op.extend(tlv(0x8a, name.as_bytes()));
    }
    let mut body = tlv(0x02, &[id]);
    body.extend(tlv(0x78, &op));
    tlv(0x30, &body)
}

fn ldap_script(reply: Vec<u8>) -> Vec<Step> {
    vec![
        Step::Expect(ldap_start_tls_request()),
        Step::Send(reply),
        Step::Tls,
    ]
}

#[tokio::test]
async fn ldap_starttls_with_a_success_response_succeeds() {
    let reply = ldap_response(1, 0, "", Some("1.3.6.1.4.1.1466.20037"));
    let (_, scrape, not_after) = probe("ldap", ldap_script(reply)).await;
    assert_success(&scrape, not_after);
}

#[tokio::test]
async fn ldap_success_with_four_octet_lengths_as_active_directory_writes_succeeds() {
    let op = [0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00];
    let mut body = vec![0x02, 0x01, 0x01, 0x78, 0x84, 0, 0, 0, op.len() as u8];
    body.extend_from_slice(&op);
    let mut reply = vec![0x30, 0x84, 0, 0, 0, body.len() as u8];
    reply.extend_from_slice(&body);
    let (_, scrape, not_after) = probe("ldap", ldap_script(reply)).await;
    assert_success(&scrape, not_after);
}

#[tokio::test]
async fn ldap_protocol_error_to_starttls_reports_starttls_not_offered() {
    let reply = ldap_response(1, 2, "unsupported extended operation", None);
    let (_, scrape, _) = probe("ldap", ldap_script(reply)).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn ldap_unavailable_to_starttls_reports_starttls_rejected() {
    let reply = ldap_response(1, 52, "Could not initialize TLS", None);
    let (outcome, scrape, _) = probe("ldap", ldap_script(reply)).await;
    assert_eq!(failure(&scrape), starttls("starttls_rejected"));
    assert!(
        detail(&outcome).contains("unavailable (52): Could not initialize TLS"),
        "{}",
        detail(&outcome)
    );
}

#[tokio::test]
async fn ldap_notice_of_disconnection_reports_service_unavailable() {
    let reply = ldap_response(
        0,
        52,
        "server shutting down",
        Some("1.3.6.1.4.1.1466.20036"),
    );
    let (outcome, scrape, _) = probe("ldap", ldap_script(reply)).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
    assert!(detail(&outcome).contains("server shutting down"));
}

#[tokio::test]
async fn ldap_giant_declared_length_is_a_protocol_error_without_waiting_for_it() {
    let script = vec![
        Step::Expect(ldap_start_tls_request()),
        Step::Send(vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02]),
    ];
    let (_, scrape, _) = probe("ldap", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn ldap_indefinite_length_is_a_protocol_error() {
    let script = vec![
        Step::Expect(ldap_start_tls_request()),
        Step::Send(vec![0x30, 0x80, 0x02, 0x01, 0x01]),
    ];
    let (_, scrape, _) = probe("ldap", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn ldap_answer_that_is_not_ber_is_a_protocol_error() {
    let script = vec![
        Step::Expect(ldap_start_tls_request()),
        Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
    ];
    let (_, scrape, _) = probe("ldap", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn ldap_bytes_injected_after_the_success_response_are_a_protocol_error() {
    let mut reply = ldap_response(1, 0, "", None);
    reply.extend_from_slice(b"injected");
    let (_, scrape, _) = probe("ldap", ldap_script(reply)).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
}

// PostgreSQL

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

fn postgres_script(answer: &[u8]) -> Vec<Step> {
    vec![
        Step::Expect(SSL_REQUEST.to_vec()),
        Step::Send(answer.to_vec()),
        Step::Tls,
    ]
}

#[tokio::test]
async fn postgres_s_to_ssl_request_succeeds() {
    let (_, scrape, not_after) = probe("postgres", postgres_script(b"S")).await;
    assert_success(&scrape, not_after);
}

#[tokio::test]
async fn postgres_n_to_ssl_request_reports_starttls_not_offered() {
    let script = vec![
        Step::Expect(SSL_REQUEST.to_vec()),
        Step::Send(b"N".to_vec()),
    ];
    let (_, scrape, _) = probe("postgres", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn postgres_error_response_to_ssl_request_reports_service_unavailable() {
    let fields = b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0";
    let mut answer = vec![b'E'];
    answer.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    answer.extend_from_slice(fields);
    let script = vec![Step::Expect(SSL_REQUEST.to_vec()), Step::Send(answer)];
    let (outcome, scrape, _) = probe("postgres", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
    assert!(
        detail(&outcome).contains("FATAL 53300: sorry, too many clients already"),
        "{}",
        detail(&outcome)
    );
}

#[tokio::test]
async fn postgres_fork_failure_message_reports_service_unavailable() {
    let script = vec![
        Step::Expect(SSL_REQUEST.to_vec()),
        Step::Send(
            b"Ecould not fork new process for connection: Cannot allocate memory\n\0".to_vec(),
        ),
        Step::Close,
    ];
    let (outcome, scrape, _) = probe("postgres", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
    assert!(detail(&outcome).contains("could not fork new process"));
}

#[tokio::test]
async fn postgres_plaintext_injected_after_s_is_a_protocol_error() {
    let (_, scrape, _) = probe("postgres", postgres_script(b"Sinjected")).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
}

#[tokio::test]
async fn postgres_unknown_answer_byte_is_a_protocol_error() {
    let script = vec![
        Step::Expect(SSL_REQUEST.to_vec()),
        Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
    ];
    let (_, scrape, _) = probe("postgres", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn postgres_server_that_closes_instead_of_answering_reports_reset() {
    let script = vec![Step::Expect(SSL_REQUEST.to_vec()), Step::Close];
    let (_, scrape, _) = probe("postgres", script).await;
    assert_eq!(failure(&scrape), starttls("reset"));
}

// MySQL / MariaDB

const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
/// The capabilities a MySQL 8 server announces.
const MYSQL8_CAPABILITIES: u32 = 0xdfff_ffff;

/// `payload` as packet `sequence`.
fn mysql_packet(sequence: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(sequence);
    packet.extend_from_slice(payload);
    packet
}

/// An initial handshake (protocol 10) as MySQL 8 sends it, with `capabilities`.
fn mysql_handshake(capabilities: u32) -> Vec<u8> {
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
    mysql_packet(0, &p)
}

/// An SSL Request: a 32-byte payload as packet 1, asking for TLS with protocol 4.1.
fn is_ssl_request(packet: &[u8]) -> bool {
    let flags = u32::from_le_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let wanted = CLIENT_SSL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
    packet[..4] == [32, 0, 0, 1] && flags & wanted == wanted && packet[13..].iter().all(|b| *b == 0)
}

#[tokio::test]
async fn mysql_handshake_with_client_ssl_succeeds() {
    let script = vec![
        Step::Send(mysql_handshake(MYSQL8_CAPABILITIES)),
        Step::ExpectWith(36, is_ssl_request),
        Step::Tls,
    ];
    let (_, scrape, not_after) = probe("mysql", script).await;
    assert_success(&scrape, not_after);
}

#[tokio::test]
async fn mysql_handshake_without_client_ssl_reports_starttls_not_offered() {
    let script = vec![Step::Send(mysql_handshake(
        MYSQL8_CAPABILITIES & !CLIENT_SSL,
    ))];
    let (_, scrape, _) = probe("mysql", script).await;
    assert_eq!(failure(&scrape), starttls("starttls_not_offered"));
}

#[tokio::test]
async fn mysql_host_not_allowed_error_packet_reports_service_unavailable() {
    let mut err = vec![0xff];
    err.extend_from_slice(&1130u16.to_le_bytes());
    err.extend_from_slice(b"Host '127.0.0.1' is not allowed to connect to this MySQL server");
    let script = vec![Step::Send(mysql_packet(0, &err)), Step::Close];
    let (outcome, scrape, _) = probe("mysql", script).await;
    assert_eq!(failure(&scrape), starttls("service_unavailable"));
    assert!(
        detail(&outcome).contains("1130: Host '127.0.0.1' is not allowed to connect"),
        "{}",
        detail(&outcome)
    );
}

#[tokio::test]
async fn mysql_giant_declared_packet_length_is_a_protocol_error_without_waiting_for_it() {
    let script = vec![Step::Send(vec![0xff, 0xff, 0xff, 0x00, 10])];
    let (_, scrape, _) = probe("mysql", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn mysql_greeting_that_is_not_mysql_is_a_protocol_error() {
    let script = vec![Step::Send(b"220 mail.test ESMTP ready\r\n".to_vec())];
    let (_, scrape, _) = probe("mysql", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
    assert_quick(&scrape);
}

#[tokio::test]
async fn mysql_truncated_handshake_is_a_protocol_error() {
    let handshake = mysql_handshake(MYSQL8_CAPABILITIES);
    let script = vec![Step::Send(mysql_packet(0, &handshake[4..20]))];
    let (_, scrape, _) = probe("mysql", script).await;
    assert_eq!(failure(&scrape), starttls("protocol_error"));
}

// All three

#[tokio::test]
async fn silent_ldap_postgres_and_mysql_servers_time_out_in_starttls() {
    let server = HostileServer::start(Behaviour::Silent).await;
    for dialect in ["ldap", "postgres", "mysql"] {
        let h = Harness::new();
        let config = yaml(&h, &Ca::root("unused"), server.addr, dialect).replace("5s", "1s");
        let (_, scrape) = h.probe(&config).await;
        assert_eq!(failure(&scrape), starttls("timeout"), "{dialect}");
        let took = scrape.value(PROBE_DURATION, &T);
        assert!(took < 3.0, "{dialect}: the probe took {took}s");
    }
}

// Transcripts (`/probe?debug=true`, `check --verbose`): each binary message once, as
// escaped bytes with its length, in order.

async fn transcript(starttls: &str, script: Vec<Step>) -> (String, Vec<String>) {
    let pki = pki();
    let server = BinaryServer::start(script, pki.tls.clone()).await;
    let h = Harness::new();
    let (_, text) = h
        .transcript(&yaml(&h, &pki.root, server.addr, starttls))
        .await;
    let said = dialogue(&text);
    (text, said)
}

/// `bytes` as a transcript shows a binary message.
fn shown(bytes: &[u8]) -> String {
    format!("[{} bytes] {}", bytes.len(), bytes.escape_ascii())
}

#[tokio::test]
async fn each_binary_dialect_transcript_shows_each_message_once_in_order() {
    let ldap_ok = ldap_response(1, 0, "", Some("1.3.6.1.4.1.1466.20037"));
    let mysql_greeting = mysql_handshake(MYSQL8_CAPABILITIES);
    let cases: Vec<(&str, Vec<Step>, Vec<String>)> = vec![
        (
            "ldap",
            ldap_script(ldap_ok.clone()),
            vec![
                format!("C: {}", shown(&ldap_start_tls_request())),
                format!("S: {}", shown(&ldap_ok)),
            ],
        ),
        (
            "postgres",
            postgres_script(b"S"),
            vec![
                format!("C: {}", shown(&SSL_REQUEST)),
                "S: [1 bytes] S".to_owned(),
            ],
        ),
        (
            "mysql",
            vec![
                Step::Send(mysql_greeting.clone()),
                Step::ExpectWith(36, is_ssl_request),
                Step::Tls,
            ],
            vec![
                format!("S: {}", shown(&mysql_greeting)),
                "C: [36 bytes] ".to_owned(),
            ],
        ),
    ];
    for (starttls, script, expected) in cases {
        let (text, said) = transcript(starttls, script).await;
        assert_eq!(said.len(), expected.len(), "{starttls}:\n{text}");
        for (line, wanted) in said.iter().zip(&expected) {
            assert!(
                line.starts_with(wanted.as_str()),
                "{starttls}: {line:?} is not {wanted:?}\n{text}"
            );
        }
        assert!(text.contains("  result:      success\n"), "{text}");
    }
}

#[tokio::test]
async fn a_postgres_error_read_in_pieces_is_one_message_in_the_transcript() {
    let fields = b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0";
    let mut answer = vec![b'E'];
    answer.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    answer.extend_from_slice(fields);
    let script = vec![
        Step::Expect(SSL_REQUEST.to_vec()),
        Step::Send(answer.clone()),
    ];
    let (text, said) = transcript("postgres", script).await;
    assert_eq!(said.len(), 2, "{text}");
    assert_eq!(said[1], format!("S: {}", shown(&answer)), "{text}");
    assert!(
        said[1].contains("Msorry, too many clients already"),
        "{text}"
    );
}
