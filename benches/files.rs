//! Reading certificate files at scale: 10,000 files of one `files:` source, in process.
//!
//! Makes `FILES_BENCH_N` (default 10,000) distinct certificates (one CA signing them, so
//! no two share a fingerprint), one PEM file each, then through `certwatch::files::Reader`
//! (the reader a `files:` source runs, on the blocking pool):
//!
//! 1. the first read: every file stat'ed, read, parsed; wall time, and the process's
//!    resident memory before and after (what the read keeps: reports and parsed
//!    certificates);
//! 2. re-reads when nothing changed: the directory listed and each file stat'ed, the
//!    reports kept (same device, inode, size, modification and change time); median of
//!    `FILES_BENCH_ROUNDS` (default 5);
//! 3. a re-read after one file changed;
//! 4. the collector: preparing and rendering the source's series (10,000 file rows) from
//!    a store entry, as a scrape after a read does.
//!
//! Prints one line of JSON; asserts nothing. `cargo bench --bench files`.

// A benchmark measures real time; there is no paused tokio clock to drive here.
#![allow(clippy::disallowed_types)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use certwatch::config::Config;
use certwatch::files::{Plan, Reader};
use certwatch::metrics::Collector;
use certwatch::store::{Observation, Store};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn make_files(dir: &Path, n: usize) {
    let ca_key = rcgen::KeyPair::generate().expect("a key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("a CA");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("a key");
    for i in 0..n {
        let mut params =
            rcgen::CertificateParams::new(vec![format!("host-{i}.example")]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("host-{i}.example"));
        let cert = params.signed_by(&leaf_key, &issuer).expect("a leaf");
        std::fs::write(dir.join(format!("{i:05}.pem")), cert.pem()).expect("write");
    }
    let _ = ca_cert;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("FILES_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("FILES_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Instant::now();
    make_files(dir.path(), n);
    let made = made.elapsed();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let yaml = format!(
        "files:\n  - name: bench\n    paths: [\"{}/*.pem\"]\n    interval: 1h\n",
        dir.path().display()
    );
    let config = Config::from_yaml(&yaml, "bench.yml", Path::new("/")).expect("valid");
    let spec = config.files[0].clone();
    let reader = Reader::new(Plan::of_source(&spec), Duration::from_secs(60), None);

    let rss_before = rss_bytes();
    let started = Instant::now();
    let first = runtime.block_on(reader.read());
    let first_read = started.elapsed();
    let rss_after = rss_bytes();
    assert_eq!(first.files.len(), n, "every file read");

    let rereads: Vec<Duration> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let again = runtime.block_on(reader.read());
            let took = started.elapsed();
            assert!(
                Arc::ptr_eq(&again.files[0], &first.files[0]),
                "kept, not re-read"
            );
            took
        })
        .collect();

    std::fs::write(
        dir.path().join("00000.pem"),
        std::fs::read(dir.path().join("00001.pem")).expect("read"),
    )
    .expect("write");
    let started = Instant::now();
    let changed = runtime.block_on(reader.read());
    let one_changed = started.elapsed();

    let store = Store::default();
    let entry = store
        .record(
            Observation::Files {
                spec: spec.clone(),
                outcome: changed,
            },
            || true,
        )
        .expect("stored");
    let collector = Collector::default();
    let started = Instant::now();
    let mut body = String::new();
    collector.render(&[entry], SystemTime::now(), &mut body);
    let render = started.elapsed();

    println!(
        "{{\"files\": {n}, \"make_s\": {:.1}, \"first_read_ms\": {:.1}, \"first_read_rss_delta_mib\": {:.1}, \"rss_mib\": {:.1}, \"reread_unchanged_ms_median\": {:.1}, \"reread_one_changed_ms\": {:.1}, \"prepare_and_render_ms\": {:.1}, \"metrics_body_mib\": {:.1}}}",
        made.as_secs_f64(),
        first_read.as_secs_f64() * 1e3,
        (rss_after.saturating_sub(rss_before)) as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        median(rereads).as_secs_f64() * 1e3,
        one_changed.as_secs_f64() * 1e3,
        render.as_secs_f64() * 1e3,
        body.len() as f64 / 1048576.0,
    );
}
