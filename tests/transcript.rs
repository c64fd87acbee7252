//! Probe transcripts (contract section 11): SMTP's dialogue, the bounds a hostile
//! banner meets, the revocation result and where it came from, and the real binary's
//! `GET /probe?debug=true` and `check --verbose`, with a client key and a basic-auth
//! password that never appear. (Revocation answers from real responders, CRLs and
//! staples are in `tests/interop/revocation.rs`.)

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use certwatch::metrics::names::*;
use certwatch::probe::transcript::{MAX_LINES, MAX_LINE_BYTES};
use support::exporter::Exporter;
use support::line_server::{LineScript, LineServer};
use support::pki::{Ca, Leaf, Revocable, Validity};
use support::tls_server::{ClientAuth, ServerSpec, TlsServer};
use support::transcript::{dialogue, line_after_time};
use support::{Harness, Scrape};

fn smtp(greeting: &str, ehlo: &str) -> LineScript {
    LineScript::new(greeting, "500 5.5.1 unknown command\r\n")
        .on("EHLO", ehlo)
        .upgrade("STARTTLS", "220 2.0.0 Ready to start TLS\r\n")
}

struct Pki {
    root: Ca,
    server: ServerSpec,
}

fn pki() -> Pki {
    let root = Ca::root("transcript root");
    let leaf = root.leaf(&["localhost"], Validity::days(60));
    Pki {
        server: ServerSpec::new(leaf.chain(&[]), leaf.key()),
        root,
    }
}

fn yaml(h: &Harness, root: &Ca, addr: std::net::SocketAddr) -> String {
    h.write("root.pem", &root.pem);
    format!(
        "targets:\n  - address: \"{addr}\"\n    name: mail\n    server_name: localhost\n    starttls: smtp\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n"
    )
}

async fn transcript(script: LineScript) -> (String, Vec<String>) {
    let pki = pki();
    let server = LineServer::start(script, pki.server.config()).await;
    let h = Harness::new();
    let (_, text) = h.transcript(&yaml(&h, &pki.root, server.addr)).await;
    let said = dialogue(&text);
    (text, said)
}

#[tokio::test]
async fn an_smtp_transcript_shows_resolve_connect_dialogue_handshake_certificate_and_phases() {
    let script = smtp(
        "220 mail.test ESMTP ready\r\n",
        "250-mail.test greets you\r\n250-PIPELINING\r\n250 STARTTLS\r\n",
    );
    let (text, said) = transcript(script).await;
    assert_eq!(
        said,
        [
            "S: 220 mail.test ESMTP ready",
            "C: EHLO certwatch.localhost",
            "S: 250-mail.test greets you",
            "S: 250-PIPELINING",
            "S: 250 STARTTLS",
            "C: STARTTLS",
            "S: 220 2.0.0 Ready to start TLS",
        ],
        "{text}"
    );
    // In the order it happened.
    let order = [
        "resolve: 127.0.0.1 in ",
        "connect: to 127.0.0.1:",
        "connect: connected from 127.0.0.1:",
        "S: 220 mail.test",
        "tls: handshake with SNI localhost",
        "tls: TLSv1.3, ",
        "  certificate 0 (leaf):",
        "    subject:   CN=localhost, O=certwatch tests",
        "  verdict:     verified for localhost",
        "  revocation:  ",
        "  hygiene:     ",
        "  phases:      resolve ",
        "  result:      success",
    ];
    let mut from = 0;
    for step in order {
        let at = text[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing after byte {from}:\n{text}"));
        from += at + step.len();
    }
    let phases = text
        .lines()
        .find(|l| l.starts_with("  phases:"))
        .unwrap_or_else(|| panic!("{text}"));
    for phase in ["resolve ", "connect ", "starttls ", "handshake "] {
        assert!(phases.contains(phase), "{phases}");
    }
}

#[tokio::test]
async fn a_ten_thousand_line_banner_gives_at_most_200_lines_of_512_bytes() {
    let line = format!("220-{}\r\n", "x".repeat(4000));
    let banner = line.repeat(10_000);
    let (text, said) = transcript(smtp(&banner, "250 STARTTLS\r\n")).await;
    assert!(said.len() <= MAX_LINES, "{} lines", said.len());
    for line in &said {
        let own = line
            .strip_prefix("S: ")
            .or(line.strip_prefix("C: "))
            .unwrap();
        assert!(own.len() <= MAX_LINE_BYTES, "{} bytes", own.len());
        assert!(own.ends_with(" … [4004 bytes in all]"), "{own}");
    }
    assert!(
        text.contains(
            "  result:      failed in starttls (protocol_error): a reply longer than 128 lines"
        ),
        "{text}"
    );
    // The whole transcript stays small whatever the server sent.
    assert!(text.len() < 200 * 600, "{} bytes", text.len());
}

#[tokio::test]
async fn a_dialogue_longer_than_200_lines_keeps_the_first_200_and_the_end_of_the_probe() {
    let greeting: String = (0..120)
        .map(|i| format!("220-line {i}\r\n"))
        .collect::<String>()
        + "220 ready\r\n";
    let ehlo: String = (0..120)
        .map(|i| format!("250-EXT{i}\r\n"))
        .collect::<String>()
        + "250 STARTTLS\r\n";
    let (text, said) = transcript(smtp(&greeting, &ehlo)).await;
    assert_eq!(said.len(), MAX_LINES, "{text}");
    assert_eq!(said[0], "S: 220-line 0");
    assert_eq!(said[121], "C: EHLO certwatch.localhost");
    // 121 + 1 + 121 lines, STARTTLS and its reply: 245, of which 45 are counted, not kept.
    assert!(
        text.contains("… 45 more line(s) of dialogue not shown (a transcript keeps 200)"),
        "{text}"
    );
    assert!(line_after_time(&text, "tls: TLSv1.3").is_some(), "{text}");
    assert!(text.contains("  result:      success\n"), "{text}");
}

#[tokio::test]
async fn server_text_is_made_printable() {
    let script = smtp(
        "220 evil\u{1b}]0;owned\u{7}\u{1b}[2J \u{202e}txet\r\n",
        "250 STARTTLS\r\n",
    );
    let (text, said) = transcript(script).await;
    assert_eq!(
        said[0], "S: 220 evil\\u{1b}]0;owned\\u{7}\\u{1b}[2J \\u{202e}txet",
        "{text}"
    );
    assert!(!text.contains(|c| c != '\n' && certwatch::printable::is_unsafe(c)));
}

// Through the real binary.

const USER: &str = "prober";
const PASSWORD: &str = "correct horse battery staple";

/// A server that demands a client certificate from `client_ca`, and a directory with
/// a configuration whose module `mtls` presents `client` and a web configuration with
/// basic auth.
struct Setup {
    h: Harness,
    server: LineServer,
    client: Leaf,
    hash: String,
}

async fn setup() -> Setup {
    let pki = pki();
    let clients = Ca::root("transcript clients");
    let client = clients.client("prober.test");
    let mut spec = pki.server.clone();
    spec.client_auth = ClientAuth::Required(clients.cert.clone());
    let server = LineServer::start(
        smtp(
            "220 mail.test ESMTP\r\n",
            "250-mail.test\r\n250 STARTTLS\r\n",
        ),
        spec.config(),
    )
    .await;
    let h = Harness::new();
    h.write("root.pem", &pki.root.pem);
    h.write("client.crt", &client.cert_pem);
    h.write("client.key", &client.key_pem);
    h.write(
        "certwatch.yml",
        "defaults:\n  interval: 1h\nmodules:\n  mtls:\n    starttls: smtp\n    trust: none\n    tls:\n      ca_file: root.pem\n      client_cert_file: client.crt\n      client_key_file: client.key\n",
    );
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    h.write(
        "web.yml",
        &format!("basic_auth_users:\n  {USER}: \"{hash}\"\n"),
    );
    Setup {
        h,
        server,
        client,
        hash,
    }
}

/// `GET path` with basic auth: status, head and body.
fn get(exporter: &Exporter, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(exporter.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {credentials}\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_owned(), body.to_owned())
}

/// Fails if `text` holds the password, the credentials as sent, the bcrypt hash, or
/// any line of the client key.
fn assert_no_secret(text: &str, setup: &Setup) {
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, credentials.as_str(), setup.hash.as_str()] {
        assert!(!text.contains(secret), "{secret:?} appears:\n{text}");
    }
    let key_lines = setup
        .client
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"));
    for line in key_lines {
        assert!(
            !text.contains(line),
            "a line of the client key appears:\n{text}"
        );
    }
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(&setup.client.key_der);
    assert!(
        !text.contains(&key_b64[..32]),
        "the client key appears:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_debug_answers_the_transcript_then_the_metrics_and_no_secret() {
    let setup = setup().await;
    let target = setup.server.addr.to_string();
    let dir = setup.h.path().to_owned();
    let (debug, plain, refused) = tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(
            &dir,
            &["--config", "certwatch.yml", "--web.config.file", "web.yml"],
        );
        let path = format!("/probe?target={target}&module=mtls&server_name=localhost");
        let debug = get(&exporter, &format!("{path}&debug=true"));
        let plain = get(&exporter, &path);
        let refused = get(&exporter, &format!("{path}&debug=yes"));
        assert!(exporter.stop().success());
        (debug, plain, refused)
    })
    .await
    .unwrap();
    let (status, head, body) = debug;
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    let (transcript, metrics) = body
        .split_once("\n\nMetrics that would have been returned:\n")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(
        dialogue(transcript),
        [
            "S: 220 mail.test ESMTP",
            "C: EHLO certwatch.localhost",
            "S: 250-mail.test",
            "S: 250 STARTTLS",
            "C: STARTTLS",
            "S: 220 2.0.0 Ready to start TLS",
        ],
        "{transcript}"
    );
    assert!(
        transcript.contains("client cert:  CN=prober.test, O=certwatch tests\n"),
        "{transcript}"
    );
    let tls = line_after_time(transcript, "tls: TLSv1.").unwrap_or_else(|| panic!("{transcript}"));
    assert!(tls.ends_with("client certificate requested: yes"), "{tls}");
    assert!(
        transcript.contains("  result:      success\n"),
        "{transcript}"
    );
    // The metrics are the ones the same probe answers without debug.
    let scrape = Scrape::parse(metrics);
    assert_eq!(scrape.value(PROBE_SUCCESS, &[]), 1.0, "{metrics}");
    let (status, _, plain) = plain;
    assert_eq!(status, 200);
    assert_eq!(Scrape::parse(&plain).value(PROBE_SUCCESS, &[]), 1.0);
    assert!(!plain.contains("Metrics that would have been returned"));
    assert_no_secret(&body, &setup);
    let (status, _, refused) = refused;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused.contains("debug=\"yes\" is neither true nor false"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_verbose_prints_the_same_transcript_after_the_report_and_no_key() {
    let setup = setup().await;
    let dir = setup.h.path();
    let args = [
        setup.server.addr.to_string(),
        "--starttls".into(),
        "smtp".into(),
        "--server-name".into(),
        "localhost".into(),
        "--ca-file".into(),
        dir.join("root.pem").display().to_string(),
        "--client-cert".into(),
        dir.join("client.crt").display().to_string(),
        "--client-key".into(),
        dir.join("client.key").display().to_string(),
        "--verbose".into(),
    ];
    let run = |json: bool| {
        let mut args = args.to_vec();
        if json {
            args.push("--json".into());
        }
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
                .arg("check")
                .args(args)
                .output()
                .expect("run")
        })
    };
    let text = run(false).await.unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(stdout.starts_with("CERTWATCH "), "{stdout}");
    let (_, transcript) = stdout
        .split_once("\nTranscript:\n")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(dialogue(transcript).len(), 6, "{transcript}");
    assert!(
        transcript.contains("C: EHLO certwatch.localhost"),
        "{transcript}"
    );
    assert!(
        transcript.contains("client cert:  CN=prober.test"),
        "{transcript}"
    );
    assert_no_secret(&stdout, &setup);

    let json = run(true).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    let lines: Vec<&str> = doc["transcript"]
        .as_array()
        .expect("the transcript, line by line")
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(dialogue(&lines.join("\n")).len(), 6, "{lines:#?}");
    assert_no_secret(&String::from_utf8_lossy(&json.stdout), &setup);
}

/// The transcript says what revocation checked, the answer of each source and where
/// it came from: here a responder and a distribution point on 127.0.0.1, refused
/// without a fetch, and with the default settings a leaf with no staple.
#[tokio::test]
async fn the_transcript_shows_each_revocation_check_and_where_its_answer_came_from() {
    let root = Ca::root("transcript revocation root");
    let intermediate = root.intermediate("transcript revocation CA", Validity::days(365));
    let leaf = intermediate.leaf_with(
        &["localhost"],
        Validity::days(60),
        &Revocable {
            ocsp_url: Some("http://127.0.0.1:9/ocsp".into()),
            crl_url: Some("http://127.0.0.1:9/ca.crl".into()),
            must_staple: false,
        },
    );
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&intermediate]), leaf.key())).await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    let yaml = |revocation: &str| {
        format!(
            "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n    timeout: 5s\n    trust: none\n    tls:\n      ca_file: root.pem\n    revocation: {revocation}\n",
            server.address()
        )
    };

    let (outcome, text) = h
        .transcript(&yaml("{ocsp: fetch, crl: fetch, depth: chain}"))
        .await;
    assert!(
        text.contains("\nrevocation:   ocsp fetch, depth chain, crl fetch\n"),
        "{text}"
    );
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  revocation:  "))
        .collect();
    assert_eq!(found.len(), 4, "{text}");
    assert_eq!(
        found[0], "the handshake carried no stapled OCSP response",
        "{text}"
    );
    // The leaf names the URLs; the intermediate names none, so it is not checked.
    assert!(
        found[1].starts_with("depth 0, ocsp: no answer, refused_address: ")
            && found[1].contains("; tried http://127.0.0.1:9/ocsp at "),
        "{text}"
    );
    assert!(
        found[2].starts_with("depth 0, crl: no answer, refused_address: ")
            && found[2].contains("; tried http://127.0.0.1:9/ca.crl at "),
        "{text}"
    );
    assert!(
        found[3].starts_with("2 check(s) in ") && found[3].ends_with("ms"),
        "{text}"
    );
    // Refused: no answer either way, so the chain still verifies.
    assert!(
        text.contains("  verdict:     verified for localhost"),
        "{text}"
    );
    assert!(outcome.addresses[0].verified(), "{text}");

    // The defaults read a staple and fetch nothing: with no staple, nothing is known.
    let (_, text) = h.transcript(&yaml("{}")).await;
    assert!(
        text.contains("\nrevocation:   ocsp stapled, depth leaf, crl off\n"),
        "{text}"
    );
    assert!(
        text.contains("  revocation:  the handshake carried no stapled OCSP response\n  revocation:  no certificate checked: no staple to read and nothing to fetch (ocsp stapled, depth leaf, crl off)\n"),
        "{text}"
    );

    // Off: said so, and nothing else.
    let (_, text) = h.transcript(&yaml("{ocsp: off}")).await;
    let found: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("  revocation:  "))
        .collect();
    assert_eq!(
        found,
        ["not checked (ocsp off, depth leaf, crl off)"],
        "{text}"
    );
}
