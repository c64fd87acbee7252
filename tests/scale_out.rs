//! Scale-out through the real binary: `--shard` splits one configuration between
//! processes, `/metrics` is gzip-compressed on request, and every process exports the
//! `process_*` series and its build revision.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use certwatch::metrics::names::*;
use support::exporter::Exporter;
use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::{Harness, Scrape};

/// Targets in the shard tests: enough for the share moved to be measured.
const CONFIGURED: usize = 200;

async fn server(h: &Harness) -> TlsServer {
    let root = Ca::root("shard root");
    let leaf = root.leaf(&["localhost"], Validity::days(60));
    h.write("root.pem", &root.pem);
    TlsServer::start(ServerSpec::new(leaf.chain(&[]), leaf.key())).await
}

fn config(server: &TlsServer, targets: usize) -> String {
    let mut yaml = String::from(
        "defaults:\n  interval: 1h\n  trust: none\n  tls: {ca_file: root.pem}\ntargets:\n",
    );
    for i in 0..targets {
        yaml.push_str(&format!(
            "  - {{address: \"{}\", name: \"service-{i:03}.example:443\", server_name: localhost}}\n",
            server.address()
        ));
    }
    yaml
}

/// A shard's process once it has probed its whole share: which targets it probed.
struct Shard {
    exporter: Exporter,
    probed: BTreeSet<String>,
    scrape: Scrape,
}

/// Starts shard `index` of `count` (through `CERTWATCH_SHARD` when `by_env`) and waits
/// until it has probed every target of its share, as it announces it at start-up.
fn start_shard(dir: &std::path::Path, index: usize, count: usize, by_env: bool) -> Shard {
    let value = format!("{index}/{count}");
    let base = ["--config", "certwatch.yml", "--log-level", "debug"];
    let exporter = if by_env {
        Exporter::start_with_env(dir, &base, &[("CERTWATCH_SHARD", &value)])
    } else {
        Exporter::start(dir, &[&base[..], &["--shard", &value]].concat())
    };
    let share = exporter.wait_for_json("the shard's share", |j| {
        j["message"] == "probing this shard's share of the targets"
    });
    assert_eq!(share["shard"], value.as_str(), "{share}");
    let share = share["targets"].as_u64().expect("targets") as usize;
    for _ in 0..share {
        exporter.wait_for_log("probe succeeded");
    }
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body);
    let probed: BTreeSet<String> = scrape
        .find(LAST_PROBE_TIMESTAMP, &[])
        .into_iter()
        .map(|(labels, _)| labels["target"].clone())
        .collect();
    assert_eq!(probed.len(), share, "shard {value}");
    assert_eq!(
        scrape.value(TARGETS, &[]),
        share as f64,
        "certwatch_targets counts the share"
    );
    assert_eq!(
        scrape.value(
            SHARD_INFO,
            &[("index", &index.to_string()), ("count", &count.to_string())]
        ),
        1.0
    );
    Shard {
        exporter,
        probed,
        scrape,
    }
}

/// Which shard of `count` probed each target; every target exactly once.
fn owners(dir: &std::path::Path, count: usize) -> (BTreeMap<String, usize>, Vec<Shard>) {
    let shards: Vec<Shard> = (0..count)
        // One of them takes its shard from the environment.
        .map(|i| start_shard(dir, i, count, i == 1))
        .collect();
    let mut owner = BTreeMap::new();
    for (i, shard) in shards.iter().enumerate() {
        for target in &shard.probed {
            if let Some(other) = owner.insert(target.clone(), i) {
                panic!("{target} probed by shards {other} and {i} of {count}");
            }
        }
    }
    assert_eq!(
        owner.len(),
        CONFIGURED,
        "every target is probed by one shard of {count}"
    );
    (owner, shards)
}

#[tokio::test(flavor = "multi_thread")]
async fn three_shards_probe_every_target_once_and_a_fourth_takes_about_a_quarter() {
    let h = Harness::new();
    let server = server(&h).await;
    h.write("certwatch.yml", &config(&server, CONFIGURED));
    let dir = h.path().to_owned();
    let address = server.address();
    let (moved, three_shares) = tokio::task::spawn_blocking(move || {
        let (three, shards) = owners(&dir, 3);
        let shares: Vec<usize> = shards.iter().map(|s| s.probed.len()).collect();
        // `/probe` ignores sharding: any process probes any address.
        let (status, body) = shards[0]
            .exporter
            .get(&format!("/probe?target={address}&server_name=localhost"));
        assert_eq!(status, 200, "{body}");
        assert!(shards.iter().all(|s| s.scrape.has(TARGETS, &[])));
        for shard in shards {
            assert!(shard.exporter.stop().success());
        }
        let (four, shards) = owners(&dir, 4);
        for shard in shards {
            assert!(shard.exporter.stop().success());
        }
        let moved: Vec<(String, usize, usize)> = three
            .iter()
            .filter(|(t, from)| four[*t] != **from)
            .map(|(t, from)| (t.clone(), *from, four[t]))
            .collect();
        (moved, shares)
    })
    .await
    .unwrap();
    // Rendezvous hashing moves only what the new shard wins: nothing moves between the
    // old three.
    assert!(
        moved.iter().all(|(_, _, to)| *to == 3),
        "targets moved between old shards: {moved:?}"
    );
    // Each target moves with probability 1/4, so the number moved is Binomial(200, 1/4):
    // mean 50, standard deviation 6.1. Within 4 deviations (26..=74) a correct hash
    // fails one run in 15,000; a reshuffle of everything (about 150 moved, as `hash mod
    // N` gives) or of nothing cannot pass.
    assert!(
        (26..=74).contains(&moved.len()),
        "{} of {CONFIGURED} moved going from 3 to 4 shards (shares of 3: {three_shares:?})",
        moved.len()
    );
    for share in three_shares {
        // Binomial(200, 1/3): mean 66.7, deviation 6.7.
        assert!((40..=94).contains(&share), "{share}");
    }
}

#[test]
fn a_bad_shard_is_refused_at_start_with_the_reason() {
    let h = Harness::new();
    h.write("certwatch.yml", "targets: []\n");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
            .current_dir(h.path())
            .args(["--config", "certwatch.yml", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run certwatch");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["--shard", "3/3"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--shard")
            && stderr.contains("the shard index 3 is not below the shard count 3"),
        "{stderr}"
    );
    let (code, stderr) = run(&[], &[("CERTWATCH_SHARD", "two/3")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("neither a whole number nor `hostname`"),
        "{stderr}"
    );
    let (code, stderr) = run(&["--shard", "1"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("is not INDEX/COUNT"), "{stderr}");
    let (code, stderr) = run(&["--shard", "hostname/0"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("from 1 to 1024"), "{stderr}");
}

fn gunzip(body: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .expect("a valid gzip stream");
    text
}

/// The series of a body: every sample's name and labels, values left out (expiry and
/// process figures move between two scrapes).
fn series(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').expect("a sample").0.to_owned())
        .collect()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_gzipped_when_asked_and_plain_otherwise() {
    let h = Harness::new();
    let server = server(&h).await;
    h.write("certwatch.yml", &config(&server, 40));
    let dir = h.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter =
            Exporter::start(&dir, &["--config", "certwatch.yml", "--log-level", "debug"]);
        for _ in 0..40 {
            exporter.wait_for_log("probe succeeded");
        }
        let (status, head, plain) = exporter.get_with_headers("/metrics", &[]);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "content-encoding"), None, "{head}");
        assert_eq!(header(&head, "vary"), Some("Accept-Encoding"), "{head}");
        let plain = String::from_utf8(plain).expect("text");

        let (status, head, gzipped) =
            exporter.get_with_headers("/metrics", &[("Accept-Encoding", "gzip")]);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "content-encoding"), Some("gzip"), "{head}");
        assert_eq!(header(&head, "vary"), Some("Accept-Encoding"), "{head}");
        assert!(header(&head, "content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
        let text = gunzip(&gzipped);
        assert_eq!(series(&text), series(&plain), "the same series, compressed");
        assert!(series(&plain).len() > 40 * 10);
        assert!(
            gzipped.len() * 5 < plain.len(),
            "{} compressed of {} plain",
            gzipped.len(),
            plain.len()
        );

        for refused in [
            "gzip;q=0",
            "identity",
            "identity;q=1, gzip;q=0.5",
            "*;q=0",
            "br",
            "gzip;level=9",
        ] {
            let (status, head, body) =
                exporter.get_with_headers("/metrics", &[("Accept-Encoding", refused)]);
            assert_eq!(status, 200, "{refused}");
            assert_eq!(header(&head, "content-encoding"), None, "{refused}: {head}");
            let body = String::from_utf8(body).expect("plain text");
            assert_eq!(series(&body), series(&plain), "{refused}");
        }
        let (_, head, body) =
            exporter.get_with_headers("/metrics", &[("Accept-Encoding", "br;q=1, GZIP;q=0.5")]);
        assert_eq!(header(&head, "content-encoding"), Some("gzip"));
        assert_eq!(series(&gunzip(&body)), series(&plain));
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[test]
fn every_process_exports_its_process_series_and_build_revision() {
    let h = Harness::new();
    h.write("certwatch.yml", "targets: []\n");
    let exporter = Exporter::start(h.path(), &["--config", "certwatch.yml"]);
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    let scrape = Scrape::parse(&body);
    let rss = scrape.value("process_resident_memory_bytes", &[]);
    assert!(
        rss > 1e6 && rss < scrape.value("process_virtual_memory_bytes", &[]),
        "{rss}"
    );
    let open = scrape.value("process_open_fds", &[]);
    assert!(
        open >= 3.0 && open <= scrape.value("process_max_fds", &[]),
        "{open}"
    );
    let started = scrape.value("process_start_time_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 600.0,
        "{started} vs {now}"
    );
    assert!(scrape.value("process_cpu_seconds_total", &[]) >= 0.0);
    assert!(scrape.value("process_threads", &[]) >= 2.0);
    assert!(body.contains("# TYPE process_cpu_seconds_total counter"));
    let revision = scrape.label(BUILD_INFO, &[], "revision");
    assert!(exporter.stop().success());

    let version = std::process::Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .arg("--version")
        .output()
        .expect("certwatch --version");
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.starts_with(&format!(
            "certwatch {} (revision {revision}, rustc ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version} vs revision {revision:?}"
    );
    // Built from this checkout: the revision is its HEAD (dirty or not).
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(revision.trim_end_matches("-dirty"), head, "{version}"),
        None => assert_eq!(revision, "unknown"),
    }
}
