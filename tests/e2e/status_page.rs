//! The `/` status page in a real browser (headless Chromium from Debian): it renders
//! without JavaScript, lists failing targets first, and markup that a configuration or a
//! server supplies stays text.
//!
//! Needs the Debian package `chromium`; without it the test is ignored, and fails
//! under `CI=true` (see `support/tools.rs`).

use std::process::Command;

use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Validity};
use crate::support::tls_server::{ServerSpec, TlsServer};
use crate::support::tools::{trial, Trial, CHROMIUM, CHROMIUM_BIN};
use crate::support::Harness;

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[CHROMIUM],
        async renders_worst_first_with_markup_escaped
    )]
}

/// The DOM Chromium builds for `url`, after load.
fn dump_dom(url: &str, profile: &std::path::Path) -> String {
    let out = Command::new(CHROMIUM_BIN)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn renders_worst_first_with_markup_escaped() {
    let root = Ca::root("page root");
    let inter = root.intermediate("page intermediate", Validity::days(365));
    let good = inter.leaf(&["localhost"], Validity::days(80));
    // Inside the warning window (21 days), outside the critical one (7 days).
    let expiring = inter.leaf(&["localhost"], Validity::days(14));
    let good_server = TlsServer::start(ServerSpec::new(good.chain(&[&inter]), good.key())).await;
    let expiring_server =
        TlsServer::start(ServerSpec::new(expiring.chain(&[&inter]), expiring.key())).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);

    let h = Harness::new();
    h.write("root.pem", &root.pem);
    let hostile_name = "<img src=x onerror=\\\"document.title='pwned'\\\">";
    h.write(
        "certwatch.yml",
        &format!(
            "defaults: {{interval: 1h, trust: none, tls: {{ca_file: root.pem}}}}\ntargets:\n  \
             - {{address: \"{}\", name: good, server_name: localhost}}\n  \
             - {{address: \"{}\", name: expiring, server_name: localhost}}\n  \
             - {{address: \"{closed_addr}\", name: \"{hostile_name}\"}}\n",
            good_server.address(),
            expiring_server.address(),
        ),
    );
    let dir = h.path().to_owned();
    let profile = tempfile::tempdir().unwrap();
    let profile_path = profile.path().to_owned();
    let dom = tokio::task::spawn_blocking(move || {
        let exporter =
            Exporter::start(&dir, &["--config", "certwatch.yml", "--log-level", "debug"]);
        exporter.wait_for_logs(&["probe succeeded", "probe succeeded", "probe failed"]);
        let dom = dump_dom(&format!("http://{}/", exporter.addr), &profile_path);
        assert!(exporter.stop().success());
        dom
    })
    .await
    .unwrap();

    assert!(
        dom.contains("<title>certwatch</title>"),
        "the title is untouched: {dom}"
    );
    assert!(!dom.contains("<img"), "no element was injected: {dom}");
    assert!(
        dom.contains("&lt;img src=x"),
        "the hostile name is shown as text"
    );
    let rows: Vec<&str> = dom.split("<tr class=").skip(1).collect();
    assert_eq!(rows.len(), 3, "{dom}");
    assert!(
        rows[0].starts_with("\"bad\"") && rows[0].contains("connect: refused"),
        "failing first: {}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("\"warn\"") && rows[1].contains(">expiring<"),
        "expiring next: {}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("\"ok\"") && rows[2].contains(">good<"),
        "healthy last: {}",
        rows[2]
    );
}
