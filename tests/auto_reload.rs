//! `--config.auto-reload` through the real binary: an edit reloads within seconds, a
//! broken edit is reported as a failed SIGHUP is and keeps the old targets probed, a
//! Kubernetes ConfigMap's `..data` symlink swap is seen, a renewed `ca_file` or a new
//! proxy password too, and the same content under a new inode is no change. Every wait
//! is for a log line or an audit event, never a sleep.

mod support;

use std::path::Path;

use certwatch::metrics::names::*;
use serde_json::Value;
use support::exporter::Exporter;
use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::{Harness, Scrape};
use tokio::time::Instant;

struct Fixture {
    h: Harness,
    a: TlsServer,
    b: TlsServer,
    root: Ca,
}

async fn fixture() -> Fixture {
    let root = Ca::root("auto-reload root");
    let leaf = root.leaf(&["localhost"], Validity::days(60));
    let spec = ServerSpec::new(leaf.chain(&[]), leaf.key());
    let a = TlsServer::start(spec.clone()).await;
    let b = TlsServer::start(spec).await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    Fixture { h, a, b, root }
}

/// A configuration of the named servers, probed every `interval`.
fn config(interval: &str, targets: &[(&str, &TlsServer)]) -> String {
    let mut yaml = format!(
        "defaults:\n  interval: {interval}\n  timeout: 1s\n  trust: none\n  tls: {{ca_file: root.pem}}\ntargets:\n"
    );
    for (name, server) in targets {
        yaml.push_str(&format!(
            "  - {{address: \"{}\", name: \"{name}\", server_name: localhost}}\n",
            server.address()
        ));
    }
    yaml
}

/// Writes `text` to `path` as editors do: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let new = path.with_extension("swp");
    std::fs::write(&new, text).expect("write");
    std::fs::rename(&new, path).expect("rename");
}

/// Waits for the next `config_reload` audit event, whatever its result.
fn next_reload(exporter: &Exporter) -> Value {
    exporter.wait_for_audit("config_reload", |_| true)
}

fn scrape(exporter: &Exporter) -> Scrape {
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    Scrape::parse(&body)
}

fn start(dir: &Path, args: &[&str]) -> Exporter {
    let mut all = vec![
        "--config",
        "certwatch.yml",
        "--log-level",
        "debug",
        "--config.auto-reload",
    ];
    all.extend_from_slice(args);
    Exporter::start(dir, &all)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_reloads_within_seconds_at_the_default_interval() {
    let f = fixture().await;
    let file = f.h.write("certwatch.yml", &config("1h", &[("a", &f.a)]));
    let edited = config("1h", &[("a", &f.a), ("b", &f.b)]);
    let dir = f.h.path().to_owned();
    let took = tokio::task::spawn_blocking(move || {
        let exporter = start(&dir, &[]);
        exporter.wait_for_log("probe succeeded");
        let edited_at = Instant::now();
        save(&file, &edited);
        let event = next_reload(&exporter);
        let took = edited_at.elapsed();
        assert_eq!(event["who"], "config.auto-reload", "{event}");
        assert_eq!(event["result"], "success", "{event}");
        assert_eq!(event["added"], "b", "{event}");
        assert_eq!(event["changed"], "", "{event}");
        exporter.wait_for_json("b probed", |j| {
            j["message"] == "probe succeeded" && j["target"] == "b"
        });
        let after = scrape(&exporter);
        assert_eq!(after.value(PROBE_SUCCESS, &[("target", "b")]), 1.0);
        assert_eq!(after.value(TARGETS, &[]), 2.0);
        assert_eq!(after.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
        assert!(exporter.stop().success());
        took
    })
    .await
    .unwrap();
    eprintln!("edit to reload: {took:?}");
    // Two looks 1s apart must agree: about 2s at most, plus a loaded machine's slack.
    assert!(took.as_secs_f64() < 5.0, "reloaded {took:?} after the edit");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_edit_is_reported_as_a_failed_sighup_and_the_old_targets_keep_running() {
    let f = fixture().await;
    let file = f.h.write("certwatch.yml", &config("1s", &[("a", &f.a)]));
    let fixed = config("1s", &[("a", &f.a), ("b", &f.b)]);
    let dir = f.h.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter = start(&dir, &["--config.auto-reload-interval", "200ms"]);
        exporter.wait_for_log("probe succeeded");
        save(&file, "defaults:\n  interval: 5 minutes\ntargets: []\n");
        let failed = next_reload(&exporter);
        assert_eq!(failed["who"], "config.auto-reload", "{failed}");
        assert_eq!(failed["result"], "failure", "{failed}");
        assert_eq!(failed["level"], "WARN", "{failed}");
        let problems = failed["problems"].as_str().unwrap().to_owned();
        assert!(
            problems
                .contains("certwatch.yml:2:13: defaults.interval: invalid duration \"5 minutes\""),
            "{problems}"
        );
        let broken = scrape(&exporter);
        assert_eq!(broken.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 0.0);
        assert_eq!(broken.value(TARGETS, &[]), 1.0);
        // The running configuration still probes its target, after the failure.
        exporter.wait_for_json("a probed again", |j| {
            j["message"] == "probe succeeded" && j["target"] == "a"
        });
        // SIGHUP on the same file fails the same way, only the trigger differs.
        exporter.signal("HUP");
        let hup = next_reload(&exporter);
        for key in ["event", "result", "problems", "level", "message", "module"] {
            assert_eq!(hup[key], failed[key], "{key}: {hup} vs {failed}");
        }
        assert_eq!(hup["who"], "SIGHUP");
        // The broken content is not tried again: the next event is the fix's.
        save(&file, &fixed);
        let reloaded = next_reload(&exporter);
        assert_eq!(reloaded["who"], "config.auto-reload", "{reloaded}");
        assert_eq!(reloaded["result"], "success", "{reloaded}");
        assert_eq!(reloaded["added"], "b", "{reloaded}");
        let after = scrape(&exporter);
        assert_eq!(after.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
        assert_eq!(after.value(TARGETS, &[]), 2.0);
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

/// Lays out `dir` as the kubelet mounts a ConfigMap: `certwatch.yml` is a symlink to
/// `..data/certwatch.yml`, and `..data` a symlink to a timestamped directory.
fn configmap_version(dir: &Path, version: &str, text: &str) {
    let data = dir.join(version);
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("certwatch.yml"), text).expect("write");
}

/// Swaps `..data` to `version` atomically, as the kubelet's AtomicWriter does, and
/// removes the previous version's directory.
fn configmap_swap(dir: &Path, version: &str, previous: &str) {
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(version, &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
    std::fs::remove_dir_all(dir.join(previous)).expect("remove the old version");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_symlink_swap_reloads_and_the_same_content_swapped_does_not() {
    let f = fixture().await;
    let dir = f.h.path().to_owned();
    let first = config("1h", &[("a", &f.a)]);
    let second = config("1h", &[("a", &f.a), ("b", &f.b)]);
    configmap_version(&dir, "..2030_01_01_00_00_00.1", &first);
    std::os::unix::fs::symlink("..2030_01_01_00_00_00.1", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/certwatch.yml", dir.join("certwatch.yml")).unwrap();
    tokio::task::spawn_blocking(move || {
        let exporter = start(&dir, &["--config.auto-reload-interval", "200ms"]);
        exporter.wait_for_log("probe succeeded");
        // Another key of the ConfigMap changed: new directory, same content here.
        configmap_version(&dir, "..2030_01_01_00_00_00.2", &first);
        configmap_swap(&dir, "..2030_01_01_00_00_00.2", "..2030_01_01_00_00_00.1");
        exporter.wait_for_log("replaced with the same content; nothing to reload");
        // Our key changed.
        configmap_version(&dir, "..2030_01_01_00_00_00.3", &second);
        configmap_swap(&dir, "..2030_01_01_00_00_00.3", "..2030_01_01_00_00_00.2");
        // The first reload is the change's: the identical swap, seen, was no reload.
        let event = next_reload(&exporter);
        assert_eq!(event["who"], "config.auto-reload", "{event}");
        assert_eq!(event["result"], "success", "{event}");
        assert_eq!(event["added"], "b", "{event}");
        assert_eq!(scrape(&exporter).value(TARGETS, &[]), 2.0);
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_ca_file_reloads_the_targets_that_use_it() {
    let f = fixture().await;
    let file = f.h.write("certwatch.yml", &config("1h", &[("a", &f.a)]));
    let dir = f.h.path().to_owned();
    let rotated = format!("{}{}", f.root.pem, Ca::root("next root").pem);
    let text = std::fs::read_to_string(&file).unwrap();
    tokio::task::spawn_blocking(move || {
        let exporter = start(&dir, &["--config.auto-reload-interval", "200ms"]);
        exporter.wait_for_log("probe succeeded");
        // The configuration rewritten with the same content first: no reload.
        save(&file, &text);
        exporter.wait_for_log("replaced with the same content; nothing to reload");
        save(&dir.join("root.pem"), &rotated);
        let event = next_reload(&exporter);
        assert_eq!(event["who"], "config.auto-reload", "{event}");
        assert_eq!(event["result"], "success", "{event}");
        assert_eq!(event["changed"], "a", "{event}");
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rewritten_proxy_password_file_reloads_the_targets_that_use_it() {
    let f = fixture().await;
    f.h.write("proxy.pass", "first\n");
    // Nothing listens on port 1: every probe fails at the proxy, fast.
    let yaml = config("1h", &[("a", &f.a)]).replace(
        "targets:\n",
        "  proxy: socks5://monitor@127.0.0.1:1\n  proxy_password_file: proxy.pass\ntargets:\n",
    );
    f.h.write("certwatch.yml", &yaml);
    let dir = f.h.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter = start(&dir, &["--config.auto-reload-interval", "200ms"]);
        exporter.wait_for_log("probe failed");
        save(&dir.join("proxy.pass"), "second\n");
        let event = next_reload(&exporter);
        assert_eq!(event["who"], "config.auto-reload", "{event}");
        assert_eq!(event["result"], "success", "{event}");
        assert_eq!(event["changed"], "a", "{event}");
        for secret in ["first", "second"] {
            assert!(!event.to_string().contains(secret), "{event}");
        }
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[test]
fn an_interval_under_100ms_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .args([
            "--config.auto-reload",
            "--config.auto-reload-interval",
            "10ms",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("10ms is shorter than the shortest interval, 100ms"),
        "{stderr}"
    );
}
