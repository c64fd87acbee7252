//! The `process_*` series every Prometheus exporter has (client_golang's process
//! collector): CPU seconds, resident and virtual memory, open and maximum file
//! descriptors, threads and start time, read from `/proc/self` at each scrape.
//!
//! The names, types and units are client_golang's, so the dashboards and alerts written
//! for any exporter work. Linux only: elsewhere nothing is exported, as client_golang
//! does on platforms it cannot read. The `prometheus` crate's own process collector
//! reads the same files through `procfs`, which would bring a second `rustix` and
//! `linux-raw-sys` into the build; these few fields do not need it. `/proc/self` files
//! are the kernel's, read from memory in microseconds and small: each read is bounded
//! all the same.
//!
//! Clock ticks are `USER_HZ`, which Linux fixes at 100 for `/proc` on every
//! architecture (as the `prometheus/procfs` Go library assumes); memory comes from
//! `/proc/self/status` in kB, so no page size is needed.

use std::io::Read;
use std::path::Path;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, Metric, MetricFamily, MetricType};

/// `/proc` clock ticks per second.
const USER_HZ: f64 = 100.0;
/// The most bytes read of one `/proc` file (the largest, `status`, is about 1.5 KiB).
const PROC_LIMIT: u64 = 64 * 1024;

/// The families, in the order they are written: name, help, type.
const FAMILIES: [(&str, &str, MetricType); 8] = [
    (
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        MetricType::COUNTER,
    ),
    (
        "process_open_fds",
        "Number of open file descriptors.",
        MetricType::GAUGE,
    ),
    (
        "process_max_fds",
        "Maximum number of open file descriptors.",
        MetricType::GAUGE,
    ),
    (
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        MetricType::GAUGE,
    ),
    (
        "process_virtual_memory_max_bytes",
        "Maximum amount of virtual memory available in bytes.",
        MetricType::GAUGE,
    ),
    (
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        MetricType::GAUGE,
    ),
    (
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::GAUGE,
    ),
    (
        "process_threads",
        "Number of OS threads in the process.",
        MetricType::GAUGE,
    ),
];

/// Collects the `process_*` series of this process.
#[derive(Debug)]
pub struct ProcessCollector {
    descs: Vec<Desc>,
    /// Where `self` and `stat` are: `/proc` (another root in tests).
    proc: std::path::PathBuf,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::at(Path::new("/proc"))
    }
}

/// What one reading of `/proc` found; `None` where a file could not be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reading {
    /// User plus system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Open descriptors.
    pub open_fds: Option<f64>,
    /// The soft limit on descriptors.
    pub max_fds: Option<f64>,
    /// Virtual memory, bytes.
    pub virtual_bytes: Option<f64>,
    /// The soft limit on address space, bytes; `unlimited` is the largest `uint64`, as
    /// client_golang reports it.
    pub virtual_max_bytes: Option<f64>,
    /// Resident memory, bytes.
    pub resident_bytes: Option<f64>,
    /// Unix seconds at the process's start.
    pub start_time: Option<f64>,
    /// Threads.
    pub threads: Option<f64>,
}

impl ProcessCollector {
    /// A collector reading `proc` (`/proc` but in tests).
    pub fn at(proc: &Path) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, _)| {
                Desc::new(
                    (*name).into(),
                    (*help).into(),
                    Vec::new(),
                    Default::default(),
                )
                .expect("valid metric")
            })
            .collect();
        Self {
            descs,
            proc: proc.to_owned(),
        }
    }

    /// Reads every value now.
    pub fn read(&self) -> Reading {
        let me = self.proc.join("self");
        let stat = read_small(&me.join("stat")).and_then(|s| Stat::parse(&s));
        let status = read_small(&me.join("status"));
        let status_kb = |field: &str| status.as_deref().and_then(|s| status_field(s, field));
        let limits = read_small(&me.join("limits"));
        let limit = |name: &str| limits.as_deref().and_then(|l| soft_limit(l, name));
        let boot = read_small(&self.proc.join("stat")).and_then(|s| boot_time(&s));
        Reading {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / USER_HZ),
            open_fds: std::fs::read_dir(me.join("fd"))
                .ok()
                // The directory's own descriptor, open while it is read, is not
                // counted: client_golang counts the same way.
                .map(|dir| dir.count().saturating_sub(1) as f64),
            max_fds: limit("Max open files"),
            virtual_bytes: status_kb("VmSize:").map(|kb| kb * 1024.0),
            virtual_max_bytes: limit("Max address space"),
            resident_bytes: status_kb("VmRSS:").map(|kb| kb * 1024.0),
            start_time: stat
                .zip(boot)
                .map(|(s, boot)| boot + s.starttime as f64 / USER_HZ),
            threads: status_kb("Threads:"),
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let r = self.read();
        let values = [
            r.cpu_seconds,
            r.open_fds,
            r.max_fds,
            r.virtual_bytes,
            r.virtual_max_bytes,
            r.resident_bytes,
            r.start_time,
            r.threads,
        ];
        FAMILIES
            .iter()
            .zip(values)
            .filter_map(|((name, help, kind), value)| {
                let value = value?;
                let mut metric = Metric::default();
                match kind {
                    MetricType::COUNTER => {
                        let mut counter = Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    }
                    _ => {
                        let mut gauge = Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                }
                let mut family = MetricFamily::default();
                family.set_name((*name).into());
                family.set_help((*help).into());
                family.set_field_type(*kind);
                family.set_metric(vec![metric]);
                Some(family)
            })
            .collect()
    }
}

/// The fields of `/proc/self/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
}

impl Stat {
    /// Parses `pid (comm) state ...`; the command may hold spaces and parentheses, so
    /// the fields are counted from the last `)`.
    fn parse(text: &str) -> Option<Stat> {
        let (_, rest) = text.rsplit_once(')')?;
        // After ")": state is field 3 of stat(5); utime 14, stime 15, starttime 22.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
        })
    }
}

/// A `Name:   value kB` line of `/proc/self/status`, the number.
fn status_field(status: &str, field: &str) -> Option<f64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit of `name` in `/proc/self/limits`; `unlimited` as client_golang
/// reports it (the largest `uint64`).
fn soft_limit(limits: &str, name: &str) -> Option<f64> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(name))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX as f64),
        soft => soft.parse().ok(),
    }
}

/// `btime` of `/proc/stat`: when the machine booted, Unix seconds.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The text of a small `/proc` file, bounded; `None` when it cannot be read.
fn read_small(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(PROC_LIMIT)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_name_may_hold_spaces_and_parentheses() {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 123456 9999 88 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                utime: 250,
                stime: 75,
                starttime: 123_456
            })
        );
        assert_eq!(Stat::parse("4242 (x) S 1 2"), None);
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn limits_and_status_fields_are_read_as_the_kernel_writes_them() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1048576              1048576              files     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(soft_limit(limits, "Max open files"), Some(1_048_576.0));
        assert_eq!(
            soft_limit(limits, "Max address space"),
            Some(u64::MAX as f64)
        );
        assert_eq!(soft_limit(limits, "Max processes"), None);
        let status = "Name:\tcertwatch\nVmSize:\t  123456 kB\nVmRSS:\t    4096 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(4096.0));
        assert_eq!(status_field(status, "Threads:"), Some(3.0));
        assert_eq!(status_field(status, "VmSwap:"), None);
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\n"), Some(1.7e9));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_read_as_the_kernel_sees_it() {
        let held: Vec<std::fs::File> = (0..8)
            .map(|_| std::fs::File::open("/proc/self/status").expect("open"))
            .collect();
        let r = ProcessCollector::default().read();
        let fds_now = std::fs::read_dir("/proc/self/fd").expect("fd").count() as f64 - 1.0;
        // Other test threads may open or close a few files meanwhile.
        let open = r.open_fds.expect("open fds");
        assert!(
            open >= held.len() as f64 && (open - fds_now).abs() < 16.0,
            "{r:?}"
        );
        let rss = r.resident_bytes.expect("rss");
        assert!(rss > 1e6 && rss < r.virtual_bytes.expect("vsize"), "{r:?}");
        assert!(r.max_fds.expect("max fds") >= open);
        let start = r.start_time.expect("start");
        let now = crate::metrics::collector::unix_seconds(std::time::SystemTime::now());
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start} vs {now}"
        );
        assert!(r.cpu_seconds.expect("cpu") >= 0.0);
        assert!(r.threads.expect("threads") >= 1.0);
        drop(held);
        let families = ProcessCollector::default().collect();
        assert_eq!(families.len(), FAMILIES.len());
    }

    #[test]
    fn a_missing_proc_gives_no_series_instead_of_failing() {
        let collector = ProcessCollector::at(Path::new("/nonexistent-proc"));
        assert_eq!(collector.read(), Reading::default());
        assert!(collector.collect().is_empty());
    }
}
