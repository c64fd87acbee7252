//! The real binary: `config check`, refusing a bad file, serving /metrics that
//! describe a probed target, starting without a configuration, and stopping on
//! SIGTERM. (`promtool check metrics` on that output is in `tests/e2e/promtool.rs`.)

mod support;

use std::process::Command;

use certwatch::metrics::names::*;
use support::exporter::Exporter;
use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::{Harness, Scrape};

fn certwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args(args)
        .output()
        .expect("run certwatch")
}

#[test]
fn config_check_accepts_the_shipped_configuration() {
    let out = certwatch(&[
        "config",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/certwatch.yml"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid, 3 target(s)"));
}

#[test]
fn config_check_lists_every_problem_with_its_position_and_exits_1() {
    let h = Harness::new();
    let file = h.write(
        "bad.yml",
        "targets:\n  - address: a.example:443\n    module: nope\n  - address: a.example:443\n",
    );
    let out = certwatch(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].ends_with(
            "bad.yml:3:13: unknown module \"nope\" (none is defined); define it under `modules:`"
        ),
        "{stdout}"
    );
    assert!(
        lines[1].contains("bad.yml:4:14: duplicate target name"),
        "{stdout}"
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_file() {
    let h = Harness::new();
    let file = h.write("bad.yml", "defaults:\n  interval: 5 minutes\n");
    let out = certwatch(&[
        "--listen",
        "127.0.0.1:0",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yml:2:13: defaults.interval: invalid duration \"5 minutes\""),
        "{stderr}"
    );
}

#[test]
fn without_a_configuration_it_serves_no_targets_and_says_how_to_add_some() {
    let h = Harness::new();
    let exporter = Exporter::start(h.path(), &[]);
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body);
    assert_eq!(scrape.value(TARGETS, &[]), 0.0);
    assert_eq!(scrape.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
    assert_eq!(
        scrape.label(BUILD_INFO, &[], "version"),
        env!("CARGO_PKG_VERSION")
    );
    assert!(!scrape.label(BUILD_INFO, &[], "rustc").is_empty());
    let (status, _) = exporter.get("/-/healthy");
    assert_eq!(status, 200);
    let (status, _) = exporter.get("/-/ready");
    assert_eq!(status, 200);
    let status = exporter.stop();
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn served_metrics_describe_a_probed_target() {
    let root = Ca::root("root");
    let inter = root.intermediate("inter", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(30));
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&inter]), leaf.key())).await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    h.write(
        "certwatch.yml",
        &format!(
            "targets:\n  - address: \"{}\"\n    name: web\n    server_name: localhost\n    trust: none\n    tls: {{ca_file: root.pem}}\n    labels: {{team: \"we \\\"quote\\\"\"}}\n",
            server.address()
        ),
    );
    // A successful probe is logged at debug level: wait for that line, then scrape.
    let dir = h.path().to_owned();
    let body = tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(&dir, &["--log-level", "debug"]);
        exporter.wait_for_log("probe succeeded");
        let (_, body) = exporter.get("/metrics");
        assert!(exporter.stop().success());
        body
    })
    .await
    .expect("scrape");
    let scrape = Scrape::parse(&body);
    let web = [("target", "web"), ("team", "we \"quote\"")];
    assert_eq!(scrape.value(PROBE_SUCCESS, &web), 1.0, "{body}");
    assert_eq!(
        scrape.value(CERT_NOT_AFTER, &[("target", "web"), ("depth", "0")]),
        leaf.not_after as f64
    );
    assert_eq!(scrape.value(TARGETS, &[]), 1.0);
    assert_eq!(scrape.value(PROBE_INTERVAL, &web), 300.0);
}
