//! Certificate files through the real binary: the ways certificates are replaced on
//! disk (certbot's `live/` symlinks into `archive/`, a Kubernetes secret's `..data`
//! swap, an in-place rewrite caught half-written) are each seen within seconds while
//! the sources' interval is an hour, so only the file watch can have seen them; and
//! `served_from` turns a renewed certificate that the server does not serve yet into
//! `certwatch_served_cert_current 0`.
//!
//! Each test waits for the exporter's log line of a read ("files read", "probe
//! succeeded"), which is written once the result is stored, then scrapes /metrics.

mod support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certwatch::metrics::names::*;
use support::exporter::Exporter;
use support::pki::{Ca, Leaf, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::Scrape;

/// How long a change may take to show: the watch's delay plus a read, on a loaded
/// machine. The sources' interval is an hour.
const WITHIN: Duration = Duration::from_secs(10);

fn scrape(exporter: &Exporter) -> Scrape {
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    Scrape::parse(&body)
}

fn start(dir: &Path, yaml: &str) -> Exporter {
    std::fs::write(dir.join("certwatch.yml"), yaml).expect("config");
    Exporter::start(dir, &["--config", "certwatch.yml", "--log-level", "debug"])
}

/// Waits for the next "files read" log line of `target`; how long it took.
fn next_read(exporter: &Exporter, target: &str) -> Duration {
    let started = tokio::time::Instant::now();
    exporter.wait_for_json("files read", |j| {
        j["message"] == "files read" && j["target"] == target
    });
    started.elapsed()
}

fn not_after(scrape: &Scrape, target: &str, path: &Path) -> f64 {
    scrape.value(
        CERT_NOT_AFTER,
        &[
            ("target", target),
            ("path", &path.display().to_string()),
            ("depth", "0"),
        ],
    )
}

fn leaf(ca: &Ca, days: i64) -> Leaf {
    ca.leaf(&["localhost"], Validity::days(days))
}

#[test]
fn a_certbot_renewal_through_the_live_symlink_is_seen_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::root("files root");
    let first = leaf(&ca, 30);
    std::fs::create_dir_all(d.join("archive/site")).unwrap();
    std::fs::create_dir_all(d.join("live/site")).unwrap();
    std::fs::write(d.join("archive/site/cert1.pem"), &first.cert_pem).unwrap();
    // As certbot links them: relative, up and into archive/.
    symlink("../../archive/site/cert1.pem", d.join("live/site/cert.pem")).unwrap();
    let exporter = start(
        d,
        "files:\n  - name: le\n    paths: [\"live/*/cert.pem\"]\n    interval: 1h\n",
    );
    next_read(&exporter, "le");
    let path = std::path::absolute(d.join("live/site/cert.pem")).unwrap();
    let s = scrape(&exporter);
    assert_eq!(not_after(&s, "le", &path), first.not_after as f64);
    assert_eq!(s.value(FILE_READ_SUCCESS, &[("target", "le")]), 1.0);
    assert_eq!(s.value(FILES_MATCHED, &[("target", "le")]), 1.0);
    assert_eq!(s.value(FILES_SKIPPED, &[("target", "le")]), 0.0);
    let series = s.find(CERT_NOT_AFTER, &[("target", "le")]);
    assert!(
        series
            .iter()
            .all(|(l, _)| l.contains_key("path") && !l.contains_key("ip"))
            && !s.has(HANDSHAKE_SUCCESS, &[("target", "le")]),
        "file series carry a path, no ip, and no probe families:\n{}",
        s.text
    );

    // The renewal: a new file in archive/, then the link swapped by a rename.
    let renewed = leaf(&ca, 90);
    std::fs::write(d.join("archive/site/cert2.pem"), &renewed.cert_pem).unwrap();
    symlink(
        "../../archive/site/cert2.pem",
        d.join("live/site/cert.pem.new"),
    )
    .unwrap();
    std::fs::rename(
        d.join("live/site/cert.pem.new"),
        d.join("live/site/cert.pem"),
    )
    .unwrap();
    let took = next_read(&exporter, "le");
    assert!(took < WITHIN, "took {took:?}");
    assert_eq!(
        not_after(&scrape(&exporter), "le", &path),
        renewed.not_after as f64
    );
}

/// A Kubernetes secret volume: files are links through `..data` into a timestamped
/// directory, and an update renames a new `..data` over the old one.
fn secret(dir: &Path, version: &str, files: &[(&str, &str)]) {
    let data = dir.join(version);
    std::fs::create_dir_all(&data).unwrap();
    for (name, content) in files {
        std::fs::write(data.join(name), content).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
    symlink(version, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
}

#[test]
fn a_kubernetes_secret_swap_is_seen_and_a_file_that_goes_loses_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::root("k8s root");
    let (first, other) = (leaf(&ca, 30), leaf(&ca, 40));
    let mount = d.join("secret");
    std::fs::create_dir_all(&mount).unwrap();
    secret(
        &mount,
        "..2024_01_01_00_00_00.1",
        &[("tls.crt", &first.cert_pem), ("ca.crt", &other.cert_pem)],
    );
    let exporter = start(
        d,
        "files:\n  - name: k8s\n    paths: [\"secret/*.crt\"]\n    interval: 1h\n",
    );
    next_read(&exporter, "k8s");
    let tls = std::path::absolute(mount.join("tls.crt")).unwrap();
    let ca_file = std::path::absolute(mount.join("ca.crt")).unwrap();
    let s = scrape(&exporter);
    assert_eq!(not_after(&s, "k8s", &tls), first.not_after as f64);
    assert_eq!(not_after(&s, "k8s", &ca_file), other.not_after as f64);
    assert_eq!(
        s.value(FILES_MATCHED, &[("target", "k8s")]),
        2.0,
        "..data and the timestamped directories are not matched by *"
    );

    let renewed = leaf(&ca, 90);
    secret(
        &mount,
        "..2024_02_01_00_00_00.2",
        &[("tls.crt", &renewed.cert_pem)],
    );
    // The key left the secret: its link goes, as the kubelet removes it.
    std::fs::remove_file(mount.join("ca.crt")).unwrap();
    std::fs::remove_dir_all(mount.join("..2024_01_01_00_00_00.1")).unwrap();
    let mut took = next_read(&exporter, "k8s");
    // The swap and the removal may be read apart; the second read follows at once.
    let mut s = scrape(&exporter);
    if s.has(CERT_NOT_AFTER, &[("path", &ca_file.display().to_string())]) {
        took += next_read(&exporter, "k8s");
        s = scrape(&exporter);
    }
    assert!(took < WITHIN, "took {took:?}");
    assert_eq!(not_after(&s, "k8s", &tls), renewed.not_after as f64);
    let ca_path = ca_file.display().to_string();
    assert!(
        s.samples
            .iter()
            .all(|x| x.labels.get("path") != Some(&ca_path)),
        "a file that went keeps no series:\n{}",
        s.text
    );
    assert_eq!(s.value(FILES_MATCHED, &[("target", "k8s")]), 1.0);
}

#[test]
fn a_file_caught_half_written_keeps_its_last_certificate_until_it_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::root("rewrite root");
    let (first, renewed) = (leaf(&ca, 30), leaf(&ca, 90));
    let file = d.join("site.pem");
    std::fs::write(&file, &first.cert_pem).unwrap();
    let exporter = start(
        d,
        "files:\n  - name: rw\n    paths: [\"site.pem\"]\n    interval: 1h\n",
    );
    next_read(&exporter, "rw");
    let path = std::path::absolute(&file).unwrap();

    // Truncated and half rewritten in place, as `cat new > site.pem` is seen midway.
    std::fs::write(&file, &renewed.cert_pem[..renewed.cert_pem.len() / 2]).unwrap();
    next_read(&exporter, "rw");
    let s = scrape(&exporter);
    assert_eq!(
        s.value(FILE_READ_SUCCESS, &[("target", "rw")]),
        1.0,
        "{}",
        s.text
    );
    assert!(!s.has(FILE_READ_ERROR_INFO, &[]), "{}", s.text);
    assert_eq!(not_after(&s, "rw", &path), first.not_after as f64);

    std::fs::write(&file, &renewed.cert_pem).unwrap();
    next_read(&exporter, "rw");
    let s = scrape(&exporter);
    assert_eq!(not_after(&s, "rw", &path), renewed.not_after as f64);
    assert!(!s.has(FILE_READ_ERROR_INFO, &[]), "{}", s.text);

    // Broken for good: reported once it has lasted, with its reason.
    std::fs::write(&file, "not a certificate\n").unwrap();
    exporter.wait_for_json("the warning", |j| {
        j["message"] == "certificate file not read" && j["reason"] == "no_certificate"
    });
    let s = scrape(&exporter);
    assert_eq!(s.value(FILE_READ_SUCCESS, &[("target", "rw")]), 0.0);
    assert_eq!(
        s.value(
            FILE_READ_ERROR_INFO,
            &[("target", "rw"), ("reason", "no_certificate")]
        ),
        1.0
    );
    assert!(!s.has(CERT_NOT_AFTER, &[("target", "rw")]));
}

fn write_atomically(path: &PathBuf, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn served_from_says_when_the_renewed_certificate_is_not_served_yet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::root("served root");
    let (old, new) = (leaf(&ca, 20), leaf(&ca, 90));
    let server = TlsServer::start(ServerSpec::new(old.chain(&[&ca]), old.key())).await;
    let file = d.join("fullchain.pem");
    std::fs::write(&file, old.chain_pem(&[&ca])).unwrap();
    std::fs::write(d.join("root.pem"), &ca.pem).unwrap();
    let exporter = start(
        d,
        &format!(
            "targets:\n  - address: \"{}\"\n    name: web\n    server_name: localhost\n    trust: none\n    tls: {{ca_file: root.pem}}\n    interval: 1h\n    served_from: fullchain.pem\n",
            server.address()
        ),
    );
    let probed = || {
        let started = tokio::time::Instant::now();
        exporter.wait_for_json("a probe", |j| {
            j["message"] == "probe succeeded" && j["target"] == "web"
        });
        started.elapsed()
    };
    probed();
    let web = [("target", "web"), ("ip", "127.0.0.1")];
    let s = scrape(&exporter);
    assert_eq!(s.value(SERVED_CERT_CURRENT, &web), 1.0);
    assert_eq!(s.value(SERVED_FILE_NOT_AFTER, &web), old.not_after as f64);
    assert_eq!(s.value(FILE_READ_SUCCESS, &[("target", "web")]), 1.0);
    assert!(
        s.find(CERT_INFO, &[("target", "web")])
            .iter()
            .all(|(l, _)| !l.contains_key("path")),
        "served_from's certificates are not reported as the target's:\n{}",
        s.text
    );

    // Renewed on disk, not reloaded: the file's change re-probes at once.
    write_atomically(&file, &new.chain_pem(&[&ca]));
    let took = probed();
    assert!(took < WITHIN, "took {took:?}");
    let s = scrape(&exporter);
    assert_eq!(s.value(SERVED_CERT_CURRENT, &web), 0.0, "{}", s.text);
    assert_eq!(s.value(SERVED_FILE_NOT_AFTER, &web), new.not_after as f64);
    assert_eq!(
        s.value(CERT_NOT_AFTER, &[("target", "web"), ("depth", "0")]),
        old.not_after as f64,
        "the server still serves the old one"
    );

    // Reloaded: the next probe (here caused by touching the file again) sees it.
    server.replace(ServerSpec::new(new.chain(&[&ca]), new.key()));
    write_atomically(&file, &new.chain_pem(&[&ca]));
    probed();
    let s = scrape(&exporter);
    assert_eq!(s.value(SERVED_CERT_CURRENT, &web), 1.0, "{}", s.text);

    // served_from unreadable: the comparison is absent, never a guess, and the file's
    // read health says why.
    std::fs::remove_file(&file).unwrap();
    exporter.wait_for_json("the warning", |j| {
        j["message"] == "certificate file not read" && j["reason"] == "not_found"
    });
    let s = scrape(&exporter);
    assert!(!s.has(SERVED_CERT_CURRENT, &web), "{}", s.text);
    assert_eq!(
        s.value(
            FILE_READ_ERROR_INFO,
            &[("target", "web"), ("reason", "not_found")]
        ),
        1.0
    );
}
