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

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_are_unknown_on_stdout_in_the_plugins_format_or_as_json() {
    let out = check(vec!["127.0.0.1:1".into(), "--warn".into(), "soon".into()]).await;
    assert_eq!(out.status.code(), Some(3));
    let text = stdout(&out);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("CERTWATCH UNKNOWN - invalid value 'soon' for '--warn <DURATION>'"),
        "{text}"
    );
    assert!(!first.contains('|'), "no performance data: {first}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = check(vec![]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).starts_with(
            "CERTWATCH UNKNOWN - the following required arguments were not provided: <ADDRESS>\n"
        ),
        "{}",
        stdout(&out)
    );

    for args in [
        vec!["127.0.0.1:1", "--json", "--starttls", "gopher"],
        vec!["--json", "no-port"],
        vec!["127.0.0.1:1", "--json", "--ca-file", "/nonexistent.pem"],
    ] {
        let out = check(args.iter().map(|s| s.to_string()).collect()).await;
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", stdout(&out)));
        assert_eq!(doc["status"], "UNKNOWN", "{args:?}");
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["schema_version"], 2);
        assert!(
            doc["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{doc}"
        );
        assert!(doc["checked_at_unix"].as_i64().is_some(), "{doc}");
    }
}

#[test]
fn help_lists_every_starttls_dialect() {
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(["check", "--help"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for dialect in certwatch::config::StartTls::ALL {
        assert!(
            help.contains(&format!("- {}:", dialect.as_str())),
            "{dialect} is not listed:\n{help}"
        );
    }
    assert!(help.contains("--xmpp-domain <DOMAIN>"), "{help}");
    assert!(help.contains("--verbose"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn xmpp_domain_is_the_stream_s_to_and_needs_an_xmpp_dialect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let header = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.contains(&b'>') {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a stream header");
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let out = check(vec![
        addr.to_string(),
        "--starttls".into(),
        "xmpp".into(),
        "--xmpp-domain".into(),
        "chat.example".into(),
        "--timeout".into(),
        "2s".into(),
    ])
    .await;
    let header = header.await.unwrap();
    assert!(header.contains("to='chat.example'"), "{header}");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));

    let out = check(vec![
        addr.to_string(),
        "--starttls".into(),
        "smtp".into(),
        "--xmpp-domain".into(),
        "chat.example".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).starts_with(
            "CERTWATCH UNKNOWN - --xmpp-domain applies to --starttls xmpp or xmpp_server, not smtp"
        ),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_json_document_names_its_schema_time_thresholds_and_not_before() {
    let before = support::now_unix() as i64;
    let (out, leaf) = check_server(Validity::days(90), &["--json", "--warn", "36h"]).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["schema_version"], 2);
    let at = doc["checked_at_unix"].as_i64().expect("checked_at_unix");
    assert!(
        at >= before && at <= support::now_unix() as i64 + 1,
        "{doc}"
    );
    assert!(doc["checked_at"].as_str().unwrap().ends_with('Z'), "{doc}");
    assert_eq!(doc["thresholds"]["warning"]["duration"], "36h");
    assert_eq!(doc["thresholds"]["warning"]["seconds"], 129_600.0);
    assert_eq!(doc["thresholds"]["warning"]["days"], 1.5);
    assert_eq!(doc["thresholds"]["critical"]["duration"], "7d");
    let leaf_json = &doc["addresses"][0]["chain"][0];
    assert_eq!(leaf_json["not_before_unix"], leaf.not_before);
    assert_eq!(leaf_json["not_after_unix"], leaf.not_after);
}
