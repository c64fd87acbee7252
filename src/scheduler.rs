//! When each target is probed: at once when it is added, then once per `interval`,
//! at an offset within the interval derived from its name so that rounds of many
//! targets are spread evenly rather than fired together.
//!
//! Each target runs in its own task, so a slow or hanging target never delays
//! another; a shared semaphore bounds the probes in flight, and each probe holds its
//! permit until it ends. Probing is `probe::run`'s; storing the outcome, `store`'s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::TargetSpec;
use crate::metrics::PreparedTarget;
use crate::probe;
use crate::probe::outcome::{AddressOutcome, ProbeOutcome, Verdict};
use crate::store::{Entry, Store};

/// Runs the probe schedule of every configured target.
#[derive(Debug)]
pub struct Scheduler {
    store: Arc<Store>,
    permits: Arc<Semaphore>,
    concurrency: usize,
    epoch: Instant,
    shutdown: CancellationToken,
    running: HashMap<String, Running>,
}

#[derive(Debug)]
struct Running {
    spec: Arc<TargetSpec>,
    stop: CancellationToken,
}

/// What [`Scheduler::apply`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Targets started.
    pub added: Vec<String>,
    /// Targets stopped.
    pub removed: Vec<String>,
    /// Targets restarted with new settings.
    pub changed: Vec<String>,
    /// Targets left running as they were.
    pub kept: usize,
}

impl Scheduler {
    /// A scheduler with at most `concurrency` probes in flight, recording into `store`,
    /// stopping everything when `shutdown` is cancelled.
    pub fn new(concurrency: usize, store: Arc<Store>, shutdown: CancellationToken) -> Self {
        Self {
            store,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            epoch: Instant::now(),
            shutdown,
            running: HashMap::new(),
        }
    }

    /// The semaphore that bounds probes in flight, to share with ad-hoc probes.
    pub fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Makes the running schedule match `targets`: unchanged targets keep their
    /// schedule and series, removed ones stop and lose their series, new or changed
    /// ones are probed at once.
    pub fn apply(&mut self, targets: &[Arc<TargetSpec>], concurrency: usize) -> Changes {
        self.resize(concurrency);
        let mut changes = Changes::default();
        let wanted: HashSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        self.running.retain(|name, running| {
            let keep = wanted.contains(name.as_str());
            if !keep {
                running.stop.cancel();
                changes.removed.push(name.clone());
            }
            keep
        });
        for spec in targets {
            match self.running.get(&spec.name) {
                Some(running) if running.spec.same_probe(spec) => changes.kept += 1,
                Some(running) => {
                    running.stop.cancel();
                    changes.changed.push(spec.name.clone());
                    self.start(spec.clone());
                }
                None => {
                    changes.added.push(spec.name.clone());
                    self.start(spec.clone());
                }
            }
        }
        // Stopped tasks can no longer record (see `Store::record`), so this is final.
        self.store.retain(&wanted);
        changes
    }

    fn resize(&mut self, concurrency: usize) {
        if concurrency > self.concurrency {
            self.permits.add_permits(concurrency - self.concurrency);
        } else if concurrency < self.concurrency {
            // Permits in use are not recalled; they are not returned either.
            let forget = self.concurrency - concurrency;
            let permits = self.permits.clone();
            tokio::spawn(async move {
                if let Ok(p) = permits
                    .acquire_many_owned(u32::try_from(forget).unwrap_or(u32::MAX))
                    .await
                {
                    p.forget();
                }
            });
        }
        self.concurrency = concurrency;
    }

    fn start(&mut self, spec: Arc<TargetSpec>) {
        let stop = self.shutdown.child_token();
        let task = TargetTask {
            spec: spec.clone(),
            store: self.store.clone(),
            permits: self.permits.clone(),
            stop: stop.clone(),
            offset: spread_offset(&spec.name, spec.interval),
            epoch: self.epoch,
        };
        tokio::spawn(task.run());
        self.running
            .insert(spec.name.clone(), Running { spec, stop });
    }
}

/// The offset of a target's rounds within its interval: a hash of its name, so that
/// targets spread evenly and a target keeps its slot across restarts.
pub fn spread_offset(name: &str, interval: Duration) -> Duration {
    // FNV-1a: stable across processes and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(hash % interval_ms)
}

/// The first round time after `after`: `epoch + offset + k * interval`.
pub fn next_round(epoch: Instant, offset: Duration, interval: Duration, after: Instant) -> Instant {
    let first = epoch + offset;
    if after < first {
        return first;
    }
    let interval_ns = interval.as_nanos().max(1);
    let rounds = (after - first).as_nanos() / interval_ns + 1;
    let since_first = u64::try_from(rounds * interval_ns)
        .map(Duration::from_nanos)
        .unwrap_or(Duration::MAX);
    first.checked_add(since_first).unwrap_or(after + interval)
}

struct TargetTask {
    spec: Arc<TargetSpec>,
    store: Arc<Store>,
    permits: Arc<Semaphore>,
    stop: CancellationToken,
    offset: Duration,
    epoch: Instant,
}

impl TargetTask {
    async fn run(self) {
        let mut due = Instant::now();
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
            }
            let outcome = tokio::select! {
                () = self.stop.cancelled() => return,
                outcome = self.probe_with_permit() => outcome,
            };
            self.record(outcome);
            due = next_round(self.epoch, self.offset, self.spec.interval, Instant::now());
        }
    }

    async fn probe_with_permit(&self) -> ProbeOutcome {
        // The semaphore is never closed.
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the probe semaphore is never closed");
        probe::run(&self.spec).await
    }

    fn record(&self, outcome: ProbeOutcome) {
        let previous = self.store.get(&self.spec.name);
        let series =
            PreparedTarget::new(&self.spec, &outcome, previous.as_deref().map(|e| &e.series));
        let entry = Arc::new(Entry {
            spec: self.spec.clone(),
            outcome,
            series,
        });
        // Logged once stored, so that a reader who saw the line finds the result.
        if self
            .store
            .record(entry.clone(), || !self.stop.is_cancelled())
        {
            for address in &entry.outcome.addresses {
                log_outcome(&self.spec.name, address);
            }
        }
    }
}

/// One log line per failed probe of an address: target, stage, reason and detail.
fn log_outcome(target: &str, address: &AddressOutcome) {
    let ip = address.ip.map(|ip| ip.to_string()).unwrap_or_default();
    match (&address.handshake, &address.verdict) {
        (Err(failure), _) => tracing::warn!(
            target = target,
            ip,
            stage = failure.kind.stage().as_label(),
            reason = failure.kind.reason_label(),
            detail = %failure.detail,
            "probe failed"
        ),
        (Ok(_), Some(Verdict::Failed { reason, detail })) => tracing::warn!(
            target = target,
            ip,
            stage = "verify",
            reason = reason.as_label(),
            detail = %detail,
            "chain does not verify"
        ),
        (Ok(_), _) => tracing::debug!(target = target, ip, "probe succeeded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_within_the_interval_and_spread() {
        let interval = Duration::from_secs(300);
        let offsets: Vec<Duration> = (0..10_000)
            .map(|i| spread_offset(&format!("host-{i}.example:443"), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Ten equal buckets each get close to a tenth of the targets.
        let mut buckets = [0usize; 10];
        for o in &offsets {
            buckets[(o.as_millis() * 10 / interval.as_millis()) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (800..1200).contains(b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn next_round_is_the_first_slot_after_now() {
        let epoch = Instant::now();
        let offset = Duration::from_secs(10);
        let interval = Duration::from_secs(60);
        assert_eq!(next_round(epoch, offset, interval, epoch), epoch + offset);
        assert_eq!(
            next_round(epoch, offset, interval, epoch + offset),
            epoch + Duration::from_secs(70)
        );
        assert_eq!(
            next_round(epoch, offset, interval, epoch + Duration::from_secs(135)),
            epoch + Duration::from_secs(190)
        );
    }
}
