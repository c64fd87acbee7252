//! `promtool check metrics`, Prometheus' own linter of the exposition format, on what the
//! real binary serves at /metrics for a probed target that succeeds (with a label value
//! that needs escaping) and one that fails, so that both the certificate families and
//! the failure families are checked; with a `files:` source (a certificate file and one
//! that holds none) and `served_from`, so that the certificate files' families are too.
//!
//! Needs the Debian package `prometheus` (for `promtool`); without it the test is
//! ignored, and fails under `CI=true` (see `support/tools.rs`).

use std::io::Write;
use std::process::{Command, Stdio};

use certwatch::metrics::names::*;

use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Validity};
use crate::support::tls_server::{ServerSpec, TlsServer};
use crate::support::tools::{trial, Trial, PROMTOOL};
use crate::support::{Harness, Scrape};

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[PROMTOOL],
        async accepts_the_served_metrics_of_a_good_and_a_failing_target
    )]
}

async fn accepts_the_served_metrics_of_a_good_and_a_failing_target() {
    let root = Ca::root("root");
    let inter = root.intermediate("inter", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(30));
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&inter]), leaf.key())).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = closed.local_addr().expect("address");
    drop(closed);
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    std::fs::create_dir(h.path().join("certs")).expect("mkdir");
    h.write("certs/web.pem", &leaf.chain_pem(&[&inter]));
    h.write("certs/empty.pem", "no certificate here\n");
    h.write(
        "certwatch.yml",
        &format!(
            "defaults: {{trust: none, tls: {{ca_file: root.pem}}}}\ntargets:\n  \
             - {{address: \"{}\", name: web, server_name: localhost, served_from: certs/web.pem, labels: {{team: \"we \\\"quote\\\"\"}}}}\n  \
             - {{address: \"{closed_addr}\", name: refused}}\n\
             files:\n  - {{name: disk, paths: [\"certs/*.pem\"], labels: {{team: files}}}}\n",
            server.address()
        ),
    );
    // Each probe is logged at debug level: wait for both, then scrape.
    let dir = h.path().to_owned();
    let body = tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(&dir, &["--log-level", "debug"]);
        exporter.wait_for_logs(&[
            "probe succeeded",
            "probe failed",
            "certificate file not read",
        ]);
        let (status, body) = exporter.get("/metrics");
        assert_eq!(status, 200, "{body}");
        assert!(exporter.stop().success());
        body
    })
    .await
    .expect("scrape");
    // The scrape has what promtool is meant to judge: a certificate and a failure.
    let scrape = Scrape::parse(&body);
    assert_eq!(
        scrape.value(
            PROBE_SUCCESS,
            &[("target", "web"), ("team", "we \"quote\"")]
        ),
        1.0,
        "{body}"
    );
    assert_eq!(
        scrape.value(PROBE_SUCCESS, &[("target", "refused")]),
        0.0,
        "{body}"
    );
    assert!(body.contains(PROBE_FAILURE_INFO), "{body}");
    assert!(body.contains(CERT_NOT_AFTER), "{body}");
    assert_eq!(
        scrape.value(SERVED_CERT_CURRENT, &[("target", "web")]),
        1.0,
        "{body}"
    );
    assert!(
        scrape.has(
            FILE_READ_ERROR_INFO,
            &[("target", "disk"), ("reason", "no_certificate")]
        ),
        "{body}"
    );
    assert!(scrape.has(CERT_INFO, &[("target", "disk")]), "{body}");

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}\n---\n{body}"
    );
}
