//! What the soak records: latencies with their percentiles, counts by kind, and the
//! assertions that failed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Durations, summarized by percentiles.
#[derive(Debug, Default)]
pub struct Latencies(Mutex<Vec<Duration>>);

impl Latencies {
    pub fn record(&self, d: Duration) {
        lock(&self.0).push(d);
    }

    pub fn summary(&self) -> Summary {
        let mut all = lock(&self.0).clone();
        all.sort();
        let at = |q: f64| -> Duration {
            if all.is_empty() {
                return Duration::ZERO;
            }
            // Nearest rank.
            let rank = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len());
            all[rank - 1]
        };
        Summary {
            n: all.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: all.last().copied().unwrap_or_default(),
        }
    }
}

/// Count, median, 99th percentile and maximum.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.n == 0 {
            return write!(f, "n=0");
        }
        write!(
            f,
            "n={} p50={} p99={} max={}",
            self.n,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }
}

/// A duration in milliseconds, for the summary.
pub fn ms(d: Duration) -> String {
    if d >= Duration::from_secs(10) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    }
}

/// Counts by kind (an answer's status, an outcome).
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, kind: impl Into<String>) {
        *lock(&self.0).entry(kind.into()).or_default() += 1;
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = lock(&self.0);
        if map.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

/// The assertions that failed: by name, how often, and the first few examples.
#[derive(Debug, Default)]
pub struct Findings(Mutex<BTreeMap<&'static str, (u64, Vec<String>)>>);

/// Examples kept per failed assertion.
const EXAMPLES: usize = 5;

impl Findings {
    /// Records that `assertion` failed, with the evidence.
    pub fn fail(&self, assertion: &'static str, evidence: impl Into<String>) {
        let evidence = evidence.into();
        let mut map = lock(&self.0);
        let entry = map.entry(assertion).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES {
            eprintln!("soak: FAILED {assertion}: {evidence}");
            entry.1.push(evidence);
        }
    }

    /// Records `assertion` as failed unless `holds`.
    pub fn check(&self, holds: bool, assertion: &'static str, evidence: impl FnOnce() -> String) {
        if !holds {
            self.fail(assertion, evidence());
        }
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.0).is_empty()
    }

    /// Every failed assertion, with its count and examples.
    pub fn report(&self) -> String {
        let map = lock(&self.0);
        let mut out = String::new();
        for (assertion, (count, examples)) in map.iter() {
            out.push_str(&format!("FAILED {assertion} ({count} time(s))\n"));
            for e in examples {
                out.push_str(&format!("    {e}\n"));
            }
        }
        out
    }
}
