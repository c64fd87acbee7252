//! Process-wide series, kept in a `prometheus` registry: build info, configuration
//! reload status, the number of targets, this process's shard, how late scheduled
//! probes start, the log lines lost (read from [`crate::logging`] at each scrape) and
//! the `process_*` series ([`super::process`]). Per-target data is the collector's.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, IntGauge, Opts, Registry, TextEncoder};

use super::names::*;

/// The exporter's own metrics.
#[derive(Debug, Clone)]
pub struct ExporterMetrics {
    registry: Registry,
    reload_successful: IntGauge,
    reload_success_timestamp: Gauge,
    targets: IntGauge,
    web_reload_successful: IntGauge,
    start_delay: Histogram,
}

/// The bucket bounds of `certwatch_probe_start_delay_seconds`: a probe within a few
/// milliseconds of its slot is on time; seconds mean the probes in flight held every
/// slot of `concurrency` (or the machine is short of CPU).
pub const START_DELAY_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ExporterMetrics {
    /// Registers every exporter metric in a registry of its own.
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = IntGauge::with_opts(
            Opts::new(
                BUILD_INFO,
                "1, with the certwatch version, the commit it was built from and the Rust compiler it was built with.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION"))
            .const_label("rustc", env!("CERTWATCH_RUSTC_VERSION"))
            .const_label("revision", env!("CERTWATCH_REVISION")),
        )
        .expect("valid metric");
        build_info.set(1);
        let reload_successful = IntGauge::new(
            CONFIG_LAST_RELOAD_SUCCESSFUL,
            "1 if the last configuration (re)load succeeded.",
        )
        .expect("valid metric");
        let reload_success_timestamp = Gauge::new(
            CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
            "When the configuration last loaded successfully, Unix seconds.",
        )
        .expect("valid metric");
        let targets = IntGauge::new(
            TARGETS,
            "Configured targets that this process probes (its shard's share with --shard).",
        )
        .expect("valid metric");
        let web_reload_successful = IntGauge::new(
            WEB_CONFIG_LAST_RELOAD_SUCCESSFUL,
            "1 if the last (re)load of the web configuration (--web.config.file) and its files succeeded.",
        )
        .expect("valid metric");
        for metric in [&build_info, &reload_successful, &targets] {
            registry
                .register(Box::new(metric.clone()))
                .expect("names are unique");
        }
        registry
            .register(Box::new(reload_success_timestamp.clone()))
            .expect("names are unique");
        registry
            .register(Box::new(DroppedLogLines::new()))
            .expect("names are unique");
        let start_delay = Histogram::with_opts(
            HistogramOpts::new(
                PROBE_START_DELAY,
                "How late scheduled probes started after their slot (the time due, or the time the target was added), in seconds: waiting for one of `concurrency`'s slots, or for the CPU.",
            )
            .buckets(START_DELAY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        registry
            .register(Box::new(start_delay.clone()))
            .expect("names are unique");
        registry
            .register(Box::new(super::process::ProcessCollector::default()))
            .expect("names are unique");
        Self {
            registry,
            reload_successful,
            reload_success_timestamp,
            targets,
            web_reload_successful,
            start_delay,
        }
    }

    /// Records this process's shard (`--shard INDEX/COUNT`; 0 of 1 without it), once
    /// at start-up: `certwatch_shard_info{index,count} 1`.
    pub fn shard(&self, index: u32, count: u32) {
        let info = IntGauge::with_opts(
            Opts::new(
                SHARD_INFO,
                "1, with this process's shard: it probes the targets that rendezvous hashing of their names assigns to shard `index` of `count`.",
            )
            .const_label("index", index.to_string())
            .const_label("count", count.to_string()),
        )
        .expect("valid metric");
        info.set(1);
        // A second call is refused: the shard is fixed for the life of the process.
        let _ = self.registry.register(Box::new(info));
    }

    /// The histogram of how late scheduled probes start, for the scheduler to record
    /// into.
    pub fn start_delay(&self) -> Histogram {
        self.start_delay.clone()
    }

    /// Records a successful (re)load of a configuration with `targets` targets.
    pub fn loaded(&self, targets: usize, now: std::time::SystemTime) {
        self.reload_successful.set(1);
        self.reload_success_timestamp
            .set(super::collector::unix_seconds(now));
        self.targets.set(i64::try_from(targets).unwrap_or(i64::MAX));
    }

    /// Records a failed reload; the running configuration stays.
    pub fn reload_failed(&self) {
        self.reload_successful.set(0);
    }

    /// Records whether the web configuration (re)loaded; the series exists from the
    /// first call, so only with `--web.config.file`.
    pub fn web_config_loaded(&self, ok: bool) {
        // Registering twice is refused; the gauge is the same either way.
        let _ = self
            .registry
            .register(Box::new(self.web_reload_successful.clone()));
        self.web_reload_successful.set(i64::from(ok));
    }

    /// Appends the exposition of every exporter metric to `out`.
    pub fn render(&self, out: &mut String) {
        let mut buf = Vec::new();
        // Encoding our own valid families into memory cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        out.push_str(&String::from_utf8_lossy(&buf));
    }
}

/// `certwatch_log_messages_dropped_total`: the process's count, read at each scrape.
#[derive(Debug)]
struct DroppedLogLines {
    desc: Desc,
}

impl DroppedLogLines {
    fn new() -> Self {
        let desc = Desc::new(
            LOG_MESSAGES_DROPPED.into(),
            "Log lines dropped because stderr was full, closed or failing.".into(),
            Vec::new(),
            Default::default(),
        )
        .expect("valid metric");
        Self { desc }
    }
}

impl Collector for DroppedLogLines {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut counter = Counter::default();
        // Exact up to 2^53 lines.
        counter.set_value(crate::logging::dropped_lines() as f64);
        let mut metric = Metric::default();
        metric.set_counter(counter);
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::COUNTER);
        family.set_metric(vec![metric]);
        vec![family]
    }
}
