//! `certwatch check`: the report, the JSON document and every Nagios exit code.

mod support;

use std::process::{Command, Output};

use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::Harness;

/// Serves a leaf for `localhost` valid for `validity`, signed through an intermediate.
async fn server(validity: Validity) -> (TlsServer, Ca, support::pki::Leaf) {
    let root = Ca::root("check root");
    let inter = root.intermediate("check intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], validity);
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&inter]), leaf.key())).await;
    (server, root, leaf)
}

async fn check(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_certwatch"))
            .arg("check")
            .args(args)
            .output()
            .expect("run")
    })
    .await
    .expect("join")
}

async fn check_server(validity: Validity, extra: &[&str]) -> (Output, support::pki::Leaf) {
    let (server, root, leaf) = server(validity).await;
    let h = Harness::new();
    let ca = h.write("root.pem", &root.pem);
    let mut args = vec![
        server.address(),
        "--server-name".into(),
        "localhost".into(),
        "--ca-file".into(),
        ca.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    (check(args).await, leaf)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_endpoint_is_ok_with_the_chain_described() {
    let (out, leaf) = check_server(Validity::days(90), &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("CERTWATCH OK - "), "{first}");
    assert!(
        first.contains(" | days_left=89.") || first.contains(" | days_left=90."),
        "{first}"
    );
    // Nagios ranges: alert below 21 (warning) and below 7 (critical) days.
    assert!(first.ends_with(";21:;7:"), "{first}");
    assert!(
        first.contains(": certificate 0 (CN=localhost, O=certwatch tests) expires in "),
        "the limiting certificate is named: {first}"
    );
    assert!(
        text.contains(&format!("Serial:     {}", leaf.serial_hex)),
        "{text}"
    );
    assert!(text.contains("SANs:       DNS:localhost"), "{text}");
    assert!(text.contains("Key:        ECDSA 256 bits"), "{text}");
    assert!(text.contains("Signature:  ecdsa-with-SHA256"), "{text}");
    assert!(text.contains("TLS:          TLSv1.3, TLS_"), "{text}");
    assert!(text.contains("Verified:     yes"), "{text}");
    assert!(
        text.contains("Certificate 1 (intermediate or root)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_inside_the_warning_window_is_a_warning() {
    let (out, _) = check_server(Validity::days(20), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("CERTWATCH WARNING - "));
    // The same certificate with a narrower warning window is fine.
    let (out, _) = check_server(Validity::days(20), &["--warn", "10d"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // The default window is 21 days (CONTRACT Part II section 8), not 30.
    let (out, _) = check_server(Validity::days(25), &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_inside_the_critical_window_is_critical() {
    let (out, _) = check_server(Validity::days(3), &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("CERTWATCH CRITICAL - "));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_certificate_is_critical_with_the_reason() {
    let (out, _) = check_server(Validity::expired(), &["--json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "CRITICAL");
    assert_eq!(doc["exit_code"], 2);
    let address = &doc["addresses"][0];
    assert_eq!(address["verification"]["verified"], false);
    assert_eq!(address["verification"]["reason"], "expired");
    assert_eq!(address["handshake"]["ok"], true);
    assert!(address["chain"][0]["days_left"].as_f64().unwrap() < 0.0);
    assert_eq!(address["chain"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_critical() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let out = check(vec![addr.to_string(), "--json".into()]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["addresses"][0]["handshake"]["stage"], "connect");
    assert_eq!(doc["addresses"][0]["handshake"]["reason"], "refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_unknown() {
    for args in [
        vec!["no-port"],
        vec!["127.0.0.1:1", "--warn", "soon"],
        vec!["127.0.0.1:1", "--starttls", "gopher"],
    ] {
        let out = check(args.iter().map(|s| s.to_string()).collect()).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
    }
    let out = check(vec![
        "127.0.0.1:1".into(),
        "--ca-file".into(),
        "/nonexistent.pem".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).starts_with("CERTWATCH UNKNOWN - cannot read /nonexistent.pem"),
        "{}",
        stdout(&out)
    );
}
