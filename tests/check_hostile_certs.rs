//! `certwatch check` against servers whose certificates were made to hurt the reader:
//! escape sequences, newlines and bidirectional overrides in the subject, issuer and
//! SANs; a SAN with a comma; a negative serial; a date that does not exist. The real
//! binary probes an in-process rustls server, and its stdout must carry every fact,
//! escaped, and nothing that drives a terminal.

mod support;

use std::process::{Command, Output};

use certwatch::metrics::names::{CERT_EXPIRY, CERT_NOT_AFTER, CERT_NOT_BEFORE};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    SigningKey as _,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::tls_server::{ServerSpec, TlsServer};
use support::Harness;

/// What a hostile CA puts in a subject: an OSC that sets the window title, a screen
/// clear and cursor move, a forged status line, an 8-bit CSI and a right-to-left
/// override with an isolate.
const HOSTILE: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[1;1H\r\nCERTWATCH OK - all fine\u{9b}31m \u{202e}gpj.exe\u{2066}";

/// Whether `c` must never reach the terminal raw (certwatch's own list).
fn is_unsafe(c: char) -> bool {
    certwatch::printable::is_unsafe(c)
}

/// A CA of this test's own, whose key re-signs certificates rcgen would not write.
struct TestCa {
    key: KeyPair,
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(subject: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn(subject);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA");
        let signer = KeyPair::from_pem(&key.serialize_pem()).expect("same key");
        Self {
            key,
            issuer: Issuer::new(params, signer),
            pem: cert.pem(),
        }
    }

    /// A leaf for `names` with `subject`, and its key.
    fn leaf(&self, subject: &str, names: &[&str]) -> (Vec<u8>, KeyPair) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = dn(subject);
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x01, 0x02, 0x03]));
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        (cert.der().to_vec(), key)
    }

    /// `der` with its serial's content octets and its notAfter replaced, signed again.
    fn reshape(&self, der: &[u8], serial: Option<&[u8]>, not_after: Option<(u8, &str)>) -> Vec<u8> {
        self.reshape_validity(der, serial, None, not_after)
    }

    /// `der` with its serial, notBefore and notAfter replaced where given, signed again.
    fn reshape_validity(
        &self,
        der: &[u8],
        serial: Option<&[u8]>,
        not_before: Option<(u8, &str)>,
        not_after: Option<(u8, &str)>,
    ) -> Vec<u8> {
        let outer = children(content(der));
        let mut tbs = children(content(&outer[0]));
        if let Some(serial) = serial {
            tbs[1] = tlv(0x02, serial);
        }
        let mut validity = children(content(&tbs[4]));
        for (at, time) in [(0, not_before), (1, not_after)] {
            if let Some((tag, text)) = time {
                validity[at] = tlv(tag, text.as_bytes());
            }
        }
        tbs[4] = tlv(0x30, &validity.concat());
        let tbs = tlv(0x30, &tbs.concat());
        let mut signature = vec![0u8];
        signature.extend(self.key.sign(&tbs).expect("signature"));
        tlv(
            0x30,
            &[tbs, outer[1].clone(), tlv(0x03, &signature)].concat(),
        )
    }
}

fn dn(subject: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, subject);
    dn.push(DnType::OrganizationName, "certwatch tests");
    dn
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

fn content(whole: &[u8]) -> &[u8] {
    match whole[1] {
        0x81 => &whole[3..],
        0x82 => &whole[4..],
        _ => &whole[2..],
    }
}

fn children(mut content: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (header, len) = match content[1] {
            0x81 => (3, usize::from(content[2])),
            0x82 => (4, usize::from(content[2]) << 8 | usize::from(content[3])),
            n => (2, usize::from(n)),
        };
        out.push(content[..header + len].to_vec());
        content = &content[header + len..];
    }
    out
}

/// Serves `leaf` (with `key`) and runs `certwatch check` on it with `ca` trusted.
async fn check(ca: &TestCa, leaf: Vec<u8>, key: &KeyPair, extra: &[&str]) -> Output {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = TlsServer::start(ServerSpec::new(vec![CertificateDer::from(leaf)], key)).await;
    let h = Harness::new();
    let ca_file = h.write("ca.pem", &ca.pem);
    let mut args: Vec<String> = vec![
        "check".into(),
        server.address(),
        "--server-name".into(),
        "localhost".into(),
        "--ca-file".into(),
        ca_file.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_certwatch"))
            .args(args)
            .output()
            .expect("run certwatch")
    })
    .await
    .expect("join")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn escape_sequences_in_a_certificate_reach_the_terminal_escaped() {
    let ca = TestCa::new(&format!("CA {HOSTILE}"));
    let (leaf, key) = ca.leaf(
        &format!("leaf {HOSTILE}"),
        &["localhost", "a.example,b.example", "x\u{1b}[31m.example"],
    );
    let out = check(&ca, leaf, &key, &[]).await;
    let text = stdout(&out);
    // The chain verifies, so the exit status is the expiry's: 90-ish days is OK.
    assert_eq!(out.status.code(), Some(0), "{text}");
    let bad: Vec<char> = text
        .chars()
        .filter(|c| *c != '\n' && is_unsafe(*c))
        .collect();
    assert!(bad.is_empty(), "raw {bad:?} in:\n{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("CERTWATCH")).count(),
        1,
        "a forged status line:\n{text}"
    );
    let first = text.lines().next().expect("a status line");
    assert!(
        first.starts_with(
            "CERTWATCH OK - 127.0.0.1:"
        ) && first.contains(": certificate 0 (CN=leaf evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{1b}[1;1H\\r\\nCERTWATCH OK - all fine\\u{9b}31m \\u{202e}gpj.exe\\u{2066}, O=certwatch tests) expires in "),
        "{first}"
    );
    assert_eq!(first.matches('|').count(), 1, "{first}");
    assert!(
        text.contains("  Subject:    CN=leaf evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"),
        "{text}"
    );
    assert!(
        text.contains("  Issuer:     CN=CA evil\\u{1b}]0;pwned\\u{7}"),
        "{text}"
    );
    assert!(
        text.contains(
            "  SANs:       DNS:localhost, DNS:a.example%2Cb.example, DNS:x\\u{1b}[31m.example\n"
        ),
        "{text}"
    );

    // JSON keeps the exact text: escaped as JSON, never raw, and equal once parsed.
    let (leaf, key) = ca.leaf(
        &format!("leaf {HOSTILE}"),
        &["localhost", "a.example,b.example"],
    );
    let out = check(&ca, leaf, &key, &["--json"]).await;
    let json = stdout(&out);
    assert!(
        !json.contains(|c: char| c != '\n' && is_unsafe(c)),
        "{json}"
    );
    let doc: serde_json::Value = serde_json::from_str(&json).expect("one JSON document");
    let chain = &doc["addresses"][0]["chain"][0];
    assert_eq!(
        chain["subject"],
        format!("CN=leaf {HOSTILE}, O=certwatch tests")
    );
    assert_eq!(chain["dns_names"][1], "a.example,b.example");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_negative_serial_is_printed_with_its_sign() {
    let ca = TestCa::new("serial CA");
    let (leaf, key) = ca.leaf("serial leaf", &["localhost"]);
    // 0xfe 0xdc 0xba is -0x012346 in two's complement; openssl prints `-012346`.
    let leaf = ca.reshape(&leaf, Some(&[0xfe, 0xdc, 0xba]), None);
    let out = check(&ca, leaf.clone(), &key, &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("  Serial:     -012346\n"), "{text}");
    let out = check(&ca, leaf, &key, &["--json"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["addresses"][0]["chain"][0]["serial"], "-012346");

    // A positive serial with its sign octet, and zero, as openssl prints them.
    for (serial, want) in [(&[0x00, 0x80, 0x01][..], "8001"), (&[0x00], "00")] {
        let (leaf, key) = ca.leaf("serial leaf", &["localhost"]);
        let leaf = ca.reshape(&leaf, Some(serial), None);
        let text = stdout(&check(&ca, leaf, &key, &[]).await);
        assert!(text.contains(&format!("  Serial:     {want}\n")), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_date_that_does_not_exist_is_a_clear_reason_not_a_guess() {
    let ca = TestCa::new("date CA");
    let (leaf, key) = ca.leaf("date leaf", &["localhost"]);
    let leaf = ca.reshape(&leaf, None, Some((0x17, "991331235959Z")));
    let out = check(&ca, leaf, &key, &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("CERTWATCH CRITICAL - "),
        "{text}"
    );
    assert!(
        text.contains(
            "  certificate does not parse: its notAfter \"991331235959Z\" (UTCTime) is not a \
             valid time: month 13 does not exist\n"
        ),
        "{text}"
    );
    assert!(!text.contains("days_left="), "no made-up number: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_and_last_representable_dates_are_exact_in_check_and_metrics() {
    let ca = TestCa::new("far CA");
    let (leaf, key) = ca.leaf("far leaf", &["localhost"]);
    // GeneralizedTime year 0000 and 99991231235959Z, RFC 5280's "no well-defined
    // expiration date".
    let leaf = ca.reshape_validity(
        &leaf,
        None,
        Some((0x18, "00000101000000Z")),
        Some((0x18, "99991231235959Z")),
    );
    let out = check(&ca, leaf.clone(), &key, &[]).await;
    let text = stdout(&out);
    assert!(
        text.contains("  Valid:      0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z (")
            && text.contains(" days left; no well-defined expiration date (RFC 5280))"),
        "{text}"
    );
    // webpki cannot represent a notBefore before 1970 and refuses to verify it: the
    // verdict says so, and nothing is guessed.
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("Verified:     no, "), "{text}");

    let pem_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = TlsServer::start(ServerSpec::new(vec![CertificateDer::from(leaf)], pem_key)).await;
    let h = Harness::new();
    h.write("ca.pem", &ca.pem);
    let (_, scrape) = h
        .probe(&format!(
            "defaults: {{trust: none, tls: {{ca_file: ca.pem}}}}\ntargets:\n  - {{address: \"{}\", name: far, server_name: localhost}}\n",
            server.address()
        ))
        .await;
    let labels = [("target", "far"), ("depth", "0")];
    assert_eq!(scrape.value(CERT_NOT_BEFORE, &labels), -62_167_219_200.0);
    assert_eq!(scrape.value(CERT_NOT_AFTER, &labels), 253_402_300_799.0);
    let left = scrape.value(CERT_EXPIRY, &labels);
    let want = 253_402_300_799.0 - support::now_unix();
    assert!((left - want).abs() < 120.0, "{left} vs {want}");
}
