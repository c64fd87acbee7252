//! `/metrics` at scale: 10,000 targets with a 3-certificate chain each.
//!
//! Measures (it asserts nothing; run with `cargo bench --bench render`):
//! - the time to render the whole `/metrics` body from a store snapshot (per-target
//!   families plus the exporter's own registry), min / median / p99 over 30 runs;
//! - the time to prepare the series of one target (`PreparedTarget::new`);
//! - the memory the store of 10,000 targets takes (VmRSS and exact live-heap deltas);
//! - for comparison, the same series kept in `prometheus` crate `GaugeVec`s and
//!   rendered with `registry.gather()` + `TextEncoder`;
//! - the body rendered a chunk at a time as `GET /metrics` streams it, plain and
//!   gzip-compressed chunk by chunk (level 1, as `http::scrape` does): time, size, and
//!   the compressor's memory;
//! - the scheduler's memory per source: every target queued for its next round.
//!
//! `CERTWATCH_BENCH_TARGETS` and `CERTWATCH_BENCH_ITERS` override the defaults
//! (10,000 and 30) for quick runs; `CERTWATCH_BENCH_SKIP_PROM=1` skips the comparison.
//! Before measuring, every target is re-recorded `CERTWATCH_BENCH_CHURN` times (3) in a
//! shuffled order among other allocations, so the store sits in the heap as a running
//! exporter's does (0 keeps the tidy layout of a store built in one go).

// A benchmark measures real time; there is no paused tokio clock to drive here.
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use certwatch::cert::ParsedCert;
use certwatch::config::Config;
use certwatch::http::scrape::CHUNK;
use certwatch::metrics::collector::{Frame, Render, Scope};
use certwatch::metrics::{collector, Collector, ExporterMetrics, PreparedTarget};
use certwatch::probe::outcome::{
    AddressOutcome, Phase, PhaseTimes, ProbeOutcome, TlsParams, Verdict,
};
use certwatch::scheduler::Scheduler;
use certwatch::source::Source;
use certwatch::store::{Entry, Observation, Store};
use prometheus::{Encoder, Gauge, GaugeVec, Opts, Registry, TextEncoder};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The system allocator, counting the bytes live on the heap: exact figures beside
/// VmRSS, which also holds memory malloc keeps after a free.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        std::alloc::System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        std::alloc::System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        std::alloc::System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Distinct leaves, cycled over the targets.
const LEAVES: usize = 100;
const WARMUP: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmRSS of this process, in bytes.
fn rss() -> u64 {
    proc_status_kb("VmRSS:") * 1024
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// min, median, p99 (nearest rank) of `times`, in ms.
fn stats(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let n = times.len();
    let p99 = times[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1];
    (ms(times[0]), ms(times[n / 2]), ms(p99))
}

/// Time this thread has spent on a CPU (from the scheduler), so that time lost to
/// other processes on a busy machine can be told apart from the work itself.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall-clock and on-CPU time of each timed run.
struct Runs {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Runs {
    fn wall(&mut self) -> (f64, f64, f64) {
        stats(&mut self.wall)
    }

    /// The mean on-CPU time, ms: the scheduler's figure is only updated at ticks, so
    /// single runs are coarse but the mean over many is not.
    fn cpu_mean(&self) -> f64 {
        ms(self.cpu.iter().sum::<Duration>()) / self.cpu.len().max(1) as f64
    }
}

fn time_runs(iters: usize, mut run: impl FnMut()) -> Runs {
    for _ in 0..WARMUP {
        run();
    }
    let mut runs = Runs {
        wall: Vec::with_capacity(iters),
        cpu: Vec::with_capacity(iters),
    };
    for _ in 0..iters {
        let (start, cpu) = (Instant::now(), thread_cpu());
        run();
        runs.wall.push(start.elapsed());
        runs.cpu.push(thread_cpu().saturating_sub(cpu));
    }
    runs
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "certwatch bench");
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A root, an intermediate and `LEAVES` distinct leaves signed by it: the parsed
/// chains `[leaf, intermediate, root]`.
fn chains() -> Vec<Vec<Arc<ParsedCert>>> {
    let root_key = KeyPair::generate().expect("key");
    let root_params = ca_params("certwatch bench root CA");
    let root = root_params.self_signed(&root_key).expect("root");
    let root_issuer = Issuer::new(root_params, root_key);

    let inter_key = KeyPair::generate().expect("key");
    let inter_params = ca_params("certwatch bench intermediate CA R1");
    let inter = inter_params
        .signed_by(&inter_key, &root_issuer)
        .expect("intermediate");
    let inter_issuer = Issuer::new(inter_params, inter_key);

    let root = ParsedCert::shared(root.der());
    let inter = ParsedCert::shared(inter.der());
    (0..LEAVES)
        .map(|i| {
            let names = vec![
                format!("service-{i:03}.example.com"),
                format!("www.service-{i:03}.example.com"),
            ];
            let mut params = CertificateParams::new(names.clone()).expect("params");
            params.distinguished_name = dn(&names[0]);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let key = KeyPair::generate().expect("key");
            let leaf = params.signed_by(&key, &inter_issuer).expect("leaf");
            vec![ParsedCert::shared(leaf.der()), inter.clone(), root.clone()]
        })
        .collect()
}

fn config_yaml(targets: usize) -> String {
    let mut yaml = String::from("defaults:\n  interval: 5m\n  timeout: 10s\ntargets:\n");
    for i in 0..targets {
        yaml.push_str(&format!(
            "  - address: \"host-{i:05}.example.com:443\"\n    labels: {{team: \"team-{}\"}}\n",
            i % 10
        ));
    }
    yaml
}

/// The chain as a probe delivers it: intermediates and root shared by every target
/// that presents them (as `ParsedCert::shared` does), the leaf the target's own — with a
/// fingerprint of its own, as distinct leaves have, so nothing is shared that would not be.
fn delivered_chain(i: usize, chain: &[Arc<ParsedCert>]) -> Vec<Arc<ParsedCert>> {
    let mut leaf = (*chain[0]).clone();
    leaf.fingerprint_sha256
        .replace_range(56.., &format!("{i:08x}"));
    std::iter::once(Arc::new(leaf))
        .chain(chain[1..].iter().cloned())
        .collect()
}

fn outcome(i: usize, chain: &[Arc<ParsedCert>]) -> ProbeOutcome {
    let mut phases = PhaseTimes::default();
    phases.set(Phase::Resolve, Duration::from_micros(800 + (i % 97) as u64));
    phases.set(
        Phase::Connect,
        Duration::from_micros(12_000 + (i % 1013) as u64),
    );
    phases.set(
        Phase::Handshake,
        Duration::from_micros(35_000 + (i % 2027) as u64),
    );
    let path_not_after = chain
        .iter()
        .filter_map(|c| c.not_after())
        .min()
        .unwrap_or(0);
    ProbeOutcome {
        addresses: vec![AddressOutcome {
            // A documentation range: only a label here, never connected to.
            ip: Some(IpAddr::V4(Ipv4Addr::new(
                198,
                51,
                (i / 250) as u8,
                (i % 250 + 1) as u8,
            ))),
            finished_at: SystemTime::now(),
            duration: Duration::from_micros(48_000 + (i % 3001) as u64),
            phases,
            handshake: Ok(TlsParams {
                version: "TLSv1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
            }),
            chain: delivered_chain(i, chain),
            verdict: Some(Verdict::Verified {
                path_not_after,
                path: vec![0, 1],
            }),
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            weaknesses: Vec::new(),
            revocation: None,
            host: None,
        }],
        cut: Default::default(),
    }
}

/// Re-records every target `rounds` times in a shuffled order, with short-lived and
/// long-lived allocations of other sizes in between, as a running exporter's probes
/// do: the store's entries end up spread over the heap as they are in a live process,
/// not laid out in target order as building the store once leaves them.
fn churn(store: &Store, collector: &Collector, rounds: usize) {
    let mut order: Vec<Arc<Entry>> = store.snapshot();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for _ in 0..rounds {
        for i in (1..order.len()).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        for entry in &mut order {
            // A probe's buffers: some freed at once, some kept a while.
            let scratch = vec![0u8; 512 + (next() % 4096) as usize];
            black_box(&scratch);
            if next() % 4 == 0 {
                kept.push(vec![1u8; 64 + (next() % 1024) as usize]);
            }
            if kept.len() > 2_000 {
                kept.swap_remove((next() % 2_000) as usize);
            }
            *entry = store
                .record(entry.observation.clone(), || true)
                .expect("recorded");
            // A live process prepares the series of what changed at its next scrape:
            // every few dozen probes.
            if next() % 32 == 0 {
                black_box(collector.prepare(&store.snapshot()));
            }
        }
    }
    black_box(collector.prepare(&store.snapshot()));
}

/// The `/metrics` body as `http::metrics` renders it.
fn render_body(
    exporter: &ExporterMetrics,
    collector: &Collector,
    entries: &[Arc<Entry>],
    out: &mut String,
) {
    out.clear();
    exporter.render(out);
    collector.render(entries, SystemTime::now(), out);
}

/// One sample line of the exposition: name, label pairs, value.
fn parse_sample(line: &str) -> (&str, Vec<(String, String)>, f64) {
    let (head, value) = line.rsplit_once(' ').expect("sample value");
    let value: f64 = value.parse().expect("numeric value");
    let Some((name, rest)) = head.split_once('{') else {
        return (head, Vec::new(), value);
    };
    let body = rest.strip_suffix('}').expect("closing brace");
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(other) => val.push(other),
                    None => break,
                },
                '"' => break,
                c => val.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_owned(), val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name, labels, value)
}

/// The alternative the design was weighed against: every series in `prometheus`
/// `GaugeVec`s (one per family, same names, same label sets, same values).
struct PromAlternative {
    registry: Registry,
    /// Handles of the expiry gauges with the notAfter they count down to: with a
    /// registry they must be refreshed before each gather to stay current.
    expiry: Vec<(Gauge, f64)>,
    series: usize,
    cert_series: usize,
}

const EXPIRY_FAMILIES: [&str; 3] = [
    "certwatch_cert_expiry_seconds",
    "certwatch_chain_expiry_seconds",
    "certwatch_verified_chain_expiry_seconds",
];
const CERT_FAMILIES: [&str; 4] = [
    "certwatch_cert_info",
    "certwatch_cert_not_after_timestamp_seconds",
    "certwatch_cert_not_before_timestamp_seconds",
    "certwatch_cert_expiry_seconds",
];

impl PromAlternative {
    /// Fills the registry from a rendered body (per-target families only), taken at `now`.
    fn from_body(body: &str, now: f64) -> Self {
        let registry = Registry::new();
        let mut families: HashMap<String, GaugeVec> = HashMap::new();
        let mut help: HashMap<&str, &str> = HashMap::new();
        let mut expiry = Vec::new();
        let (mut series, mut cert_series) = (0, 0);
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, text) = rest.split_once(' ').expect("help text");
                help.insert(name, text);
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (name, labels, value) = parse_sample(line);
            if labels.is_empty() {
                continue; // the exporter's own unlabelled series: not per-target
            }
            let vec = families.entry(name.to_owned()).or_insert_with(|| {
                let names: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
                let vec = GaugeVec::new(
                    Opts::new(name, help.get(name).copied().unwrap_or(name)),
                    &names,
                )
                .expect("vec");
                registry.register(Box::new(vec.clone())).expect("unique");
                vec
            });
            let values: Vec<&str> = labels.iter().map(|(_, v)| v.as_str()).collect();
            let gauge = vec.with_label_values(&values);
            gauge.set(value);
            series += 1;
            if CERT_FAMILIES.contains(&name) {
                cert_series += 1;
            }
            if EXPIRY_FAMILIES.contains(&name) {
                expiry.push((gauge, value + now));
            }
        }
        Self {
            registry,
            expiry,
            series,
            cert_series,
        }
    }

    fn refresh_expiry(&self, now: f64) {
        for (gauge, not_after) in &self.expiry {
            gauge.set(not_after - now);
        }
    }

    fn render(&self, out: &mut Vec<u8>) {
        out.clear();
        TextEncoder::new()
            .encode(&self.registry.gather(), out)
            .expect("encode");
    }
}

fn now_secs() -> f64 {
    collector::unix_seconds(SystemTime::now())
}

fn main() {
    let targets = env_usize("CERTWATCH_BENCH_TARGETS", 10_000);
    let iters = env_usize("CERTWATCH_BENCH_ITERS", 30).max(1);
    let with_prom = std::env::var_os("CERTWATCH_BENCH_SKIP_PROM").is_none();
    let churn_rounds = env_usize("CERTWATCH_BENCH_CHURN", 3);
    println!("certwatch /metrics bench: {targets} targets x 3 certificates, {iters} timed runs after {WARMUP} warm-up");

    // Memory: each step's VmRSS and live-heap delta.
    let chains = chains();
    let yaml = config_yaml(targets);
    let mut memory: Vec<(&str, u64, usize)> =
        vec![("baseline (certs generated, YAML text built)", rss(), live())];
    let config =
        Config::from_yaml(&yaml, "bench.yml", Path::new(".")).expect("valid bench configuration");
    assert_eq!(config.targets.len(), targets);
    memory.push(("+ config: TargetSpecs", rss(), live()));
    // Outcomes as probes deliver them: each with its own parsed chain.
    let outcomes: Vec<ProbeOutcome> = (0..targets)
        .map(|i| outcome(i, &chains[i % LEAVES]))
        .collect();
    memory.push(("+ outcomes: parsed chains", rss(), live()));
    let store = Store::default();
    for (spec, outcome) in config.targets.iter().zip(outcomes) {
        store.record(
            Observation::Endpoint {
                spec: spec.clone(),
                outcome,
                served: None,
            },
            || true,
        );
    }
    let collector = Collector::default();
    black_box(collector.prepare(&store.snapshot()));
    memory.push(("+ store: entries, prepared series", rss(), live()));
    churn(&store, &collector, churn_rounds);
    drop(chains);
    drop(yaml);
    memory.push((
        "- temporaries (YAML text, 100 template chains)",
        rss(),
        live(),
    ));
    let hwm_store = proc_status_kb("VmHWM:") * 1024;
    let snapshot = store.snapshot();
    assert_eq!(snapshot.len(), targets);

    // The /metrics body.
    let exporter = ExporterMetrics::new();
    exporter.loaded(targets, SystemTime::now());
    let mut out = String::new();
    let live_before_render = live();
    let mut times = time_runs(iters, || {
        render_body(&exporter, &collector, &snapshot, &mut out);
        black_box(out.len());
    });
    let (min, med, p99) = times.wall();
    let cpu_mean = times.cpu_mean();
    let body_bytes = out.len();
    let samples = out
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let live_rendered = live() - live_before_render;
    let rss_rendered = rss();
    let hwm_rendered = proc_status_kb("VmHWM:") * 1024;

    // The same with a fresh String each time, as the handler does (capacity hint included).
    let mut fresh_times = time_runs(iters, || {
        let mut body = String::with_capacity(snapshot.len() * 4096 + 2048);
        exporter.render(&mut body);
        collector.render(&snapshot, SystemTime::now(), &mut body);
        black_box(body.len());
    });
    let (fmin, fmed, fp99) = fresh_times.wall();
    let fresh_cpu = fresh_times.cpu_mean();

    // Breakdown: the per-target families alone, and the exporter registry alone.
    let mut coll_times = time_runs(iters, || {
        out.clear();
        collector.render(&snapshot, SystemTime::now(), &mut out);
        black_box(out.len());
    });
    let (_, coll_med, _) = coll_times.wall();
    let mut exp_times = time_runs(iters, || {
        out.clear();
        exporter.render(&mut out);
        black_box(out.len());
    });
    let (_, exp_med, _) = exp_times.wall();

    // Prepare cost: every PreparedTarget, timed as one batch, 5 times.
    let mut prepare_times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let prepared: Vec<PreparedTarget> =
                snapshot.iter().map(|e| PreparedTarget::new(e)).collect();
            let took = start.elapsed();
            black_box(prepared);
            took
        })
        .collect();
    let (prep_min, prep_med, _) = stats(&mut prepare_times);

    println!();
    println!(
        "machine: {} CPUs, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!();
    println!("render /metrics (ExporterMetrics::render + collector::render into a reused String)");
    println!("  wall: min {min:.2} ms   median {med:.2} ms   p99 {p99:.2} ms");
    println!("  on-CPU mean {cpu_mean:.2} ms (time this thread ran; excludes time other processes had the CPU)");
    println!(
        "  body {:.2} MB, {samples} samples, {:.0} bytes/target",
        mb(body_bytes as f64),
        body_bytes as f64 / targets as f64
    );
    println!(
        "  fresh String per scrape, as the handler does: min {fmin:.2}  median {fmed:.2}  p99 {fp99:.2} ms (on-CPU mean {fresh_cpu:.2})"
    );
    println!("  breakdown (median): collector::render {coll_med:.2} ms, ExporterMetrics::render {exp_med:.3} ms");
    println!(
        "  throughput {:.0} MB/s, {:.0} ns/sample",
        mb(body_bytes as f64) / (med / 1e3),
        med * 1e6 / samples as f64
    );
    println!();
    println!("prepare (PreparedTarget::new for all {targets} targets, 5 runs)");
    println!(
        "  min {prep_min:.2} ms, median {prep_med:.2} ms = {:.2} us/target",
        prep_med * 1e3 / targets as f64
    );
    println!();
    println!("memory (VmRSS: glibc malloc may keep freed memory resident; live heap: exact, from a counting allocator)");
    println!(
        "  {:<48} {:>9} {:>9} {:>10} {:>9}",
        "step", "VmRSS MB", "delta", "live MB", "delta"
    );
    let mut previous: Option<(u64, usize)> = None;
    for (what, rss_at, live_at) in &memory {
        let (drss, dlive) = previous.map_or((0.0, 0.0), |(r, l)| {
            (*rss_at as f64 - r as f64, *live_at as f64 - l as f64)
        });
        println!(
            "  {what:<48} {:>9.1} {:>+9.1} {:>10.1} {:>+9.1}",
            mb(*rss_at as f64),
            mb(drss),
            mb(*live_at as f64),
            mb(dlive)
        );
        previous = Some((*rss_at, *live_at));
    }
    let (_, rss0, live0) = memory[0];
    let (_, rss1, live1) = memory[memory.len() - 1];
    println!(
        "  store of {targets} targets over baseline: VmRSS {:+.1} MB, live heap {:+.1} MB ({:.0} B/target live)",
        mb(rss1 as f64 - rss0 as f64),
        mb(live1 as f64 - live0 as f64),
        (live1 as f64 - live0 as f64) / targets as f64
    );
    println!(
        "  VmHWM after building the store: {:.1} MB",
        mb(hwm_store as f64)
    );
    println!(
        "  after rendering: VmRSS {:.1} MB, VmHWM {:.1} MB; the reused body buffer holds {:.1} MB",
        mb(rss_rendered as f64),
        mb(hwm_rendered as f64),
        mb(live_rendered as f64)
    );

    // As GET /metrics streams it: a chunk at a time, plain and gzip.
    let streamed = |gzip: bool| -> (usize, usize) {
        let mut head = String::new();
        exporter.render(&mut head);
        let mut render = Render::new(
            Frame::new(&collector.prepare(&snapshot)),
            SystemTime::now(),
            Scope::Scheduled,
        );
        let mut encoder =
            gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1)));
        let (mut plain, mut sent) = (0, 0);
        let mut send = |text: &str, encoder: &mut Option<flate2::write::GzEncoder<Vec<u8>>>| {
            plain += text.len();
            match encoder.as_mut() {
                None => sent += text.len(),
                Some(e) => {
                    std::io::Write::write_all(e, text.as_bytes()).expect("into memory");
                    sent += std::mem::take(e.get_mut()).len();
                }
            }
        };
        send(&head, &mut encoder);
        loop {
            let mut chunk = String::with_capacity(CHUNK + CHUNK / 4);
            let more = render.next_chunk(&mut chunk, CHUNK);
            send(&chunk, &mut encoder);
            if !more {
                break;
            }
        }
        if let Some(e) = encoder {
            sent += e.finish().expect("into memory").len();
        }
        (plain, sent)
    };
    let mut plain_bytes = 0;
    let mut stream_times = time_runs(iters, || {
        plain_bytes = black_box(streamed(false)).1;
    });
    let (_, smed, sp99) = stream_times.wall();
    let mut gz_bytes = 0;
    let mut gz_times = time_runs(iters, || {
        gz_bytes = black_box(streamed(true)).1;
    });
    let (gmin, gmed, gp99) = gz_times.wall();
    let gz_cpu = gz_times.cpu_mean();
    let live_before_encoder = live();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    std::io::Write::write_all(&mut encoder, &out.as_bytes()[..out.len().min(4 * CHUNK)])
        .expect("into memory");
    let encoder_bytes = live() - live_before_encoder;
    drop(encoder);
    println!();
    println!("GET /metrics as streamed: {CHUNK}-byte chunks, the exporter's head first (Render::next_chunk)");
    println!(
        "  plain: median {smed:.2} ms, p99 {sp99:.2} ms, {:.2} MB",
        mb(plain_bytes as f64)
    );
    println!(
        "  gzip level 1 per chunk: min {gmin:.2}  median {gmed:.2}  p99 {gp99:.2} ms (on-CPU mean {gz_cpu:.2}), {:.2} MB = {:.1}% of plain",
        mb(gz_bytes as f64),
        gz_bytes as f64 * 100.0 / plain_bytes.max(1) as f64
    );
    println!(
        "  the compressor's memory after {} KiB of input: {:.0} KiB",
        4 * CHUNK / 1024,
        encoder_bytes as f64 / 1024.0
    );

    // The scheduler: every target queued for its next round, one run in flight.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scheduler_bytes = runtime.block_on(async {
        let sources: Vec<Arc<dyn Source>> = config
            .targets
            .iter()
            .map(|spec| Arc::new(Waiting(spec.clone())) as Arc<dyn Source>)
            .collect();
        let before = live();
        let mut scheduler = Scheduler::new(
            1,
            Arc::new(Store::default()),
            tokio_util::sync::CancellationToken::new(),
        );
        scheduler.apply(sources, 1);
        tokio::task::yield_now().await;
        let bytes = live() - before;
        drop(scheduler);
        bytes
    });
    println!();
    println!(
        "scheduler: {targets} sources queued: {:+.1} MB live heap = {:.0} B/source (beside the sources themselves)",
        mb(scheduler_bytes as f64),
        scheduler_bytes as f64 / targets as f64
    );

    let mut prom_median = None;
    if with_prom {
        // The alternative: the same series in prometheus GaugeVecs.
        out.clear();
        let prom_time = SystemTime::now();
        let prom_now = collector::unix_seconds(prom_time);
        collector.render(&snapshot, prom_time, &mut out);
        let (rss_before, live_before) = (rss(), live());
        let fill_start = Instant::now();
        let prom = PromAlternative::from_body(&out, prom_now);
        let prom_fill = fill_start.elapsed();
        let (rss_after, live_after) = (rss(), live());
        let mut prom_out = Vec::new();
        let mut prom_times = time_runs(iters, || {
            prom.render(&mut prom_out);
            black_box(prom_out.len());
        });
        let (pmin, pmed, pp99) = prom_times.wall();
        let mut prom_fresh_times = time_runs(iters, || {
            prom.refresh_expiry(now_secs());
            prom.render(&mut prom_out);
            black_box(prom_out.len());
        });
        let (prmin, prmed, prp99) = prom_fresh_times.wall();
        let prom_cpu = prom_fresh_times.cpu_mean();
        println!();
        println!("alternative: a prometheus GaugeVec per family + registry.gather() + TextEncoder::encode");
        println!(
            "  {} families, {} series ({} certificate series), same names, labels and values; filled in {:.0} ms",
            prom.registry.gather().len(),
            prom.series,
            prom.cert_series,
            ms(prom_fill)
        );
        println!(
            "  memory of the filled registry: VmRSS {:+.1} MB, live heap {:+.1} MB",
            mb(rss_after as f64 - rss_before as f64),
            mb(live_after as f64 - live_before as f64)
        );
        println!(
            "  gather + encode:                  min {pmin:.2}  median {pmed:.2}  p99 {pp99:.2} ms"
        );
        println!(
            "  refresh expiry + gather + encode: min {prmin:.2}  median {prmed:.2}  p99 {prp99:.2} ms (on-CPU mean {prom_cpu:.2})"
        );
        println!("  body {:.2} MB", mb(prom_out.len() as f64));
        prom_median = Some(prmed);
    }

    println!();
    print!("summary: render median {med:.2} ms, p99 {p99:.2} ms, on-CPU mean {cpu_mean:.2} ms (budget 50 ms)");
    if let Some(prmed) = prom_median {
        print!(
            "; prometheus-crate alternative median {prmed:.2} ms ({:.1}x)",
            prmed / med
        );
    }
    println!(
        "; store {:+.1} MB live heap for {targets} targets",
        mb(live1 as f64 - live0 as f64)
    );
    drop(store);
}

/// A source whose runs never end: it stays queued, as an idle source does.
#[derive(Debug)]
struct Waiting(Arc<certwatch::config::TargetSpec>);

impl Source for Waiting {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn interval(&self) -> Duration {
        self.0.interval
    }
    fn same_as(&self, other: &dyn Source) -> bool {
        other.name() == self.name()
    }
    fn observe(&self) -> futures_util::future::BoxFuture<'_, Observation> {
        Box::pin(std::future::pending())
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
