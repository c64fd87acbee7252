//! When each source is observed: at once when it is added, then once per `interval`,
//! at an offset within the interval derived from its name so that rounds of many
//! sources are spread evenly rather than fired together, and early when the source says
//! it changed.
//!
//! Each source runs in its own task, so a slow or hanging target never delays another;
//! a shared [`Limit`] bounds the runs in flight, and each run holds its permit until it
//! ends. The scheduler knows sources only through the [`Source`] trait: probing is
//! `probe`'s, reading files is theirs; storing the observation is `store`'s.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limit::Limit;
use crate::source::{self, Source};
use crate::store::Store;

/// Runs the schedule of every source.
#[derive(Debug)]
pub struct Scheduler {
    store: Arc<Store>,
    limit: Limit,
    epoch: Instant,
    shutdown: CancellationToken,
    running: HashMap<String, Running>,
}

#[derive(Debug)]
struct Running {
    source: Arc<dyn Source>,
    stop: CancellationToken,
}

/// What [`Scheduler::apply`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sources started.
    pub added: Vec<String>,
    /// Sources stopped.
    pub removed: Vec<String>,
    /// Sources restarted with new settings.
    pub changed: Vec<String>,
    /// Sources left running as they were.
    pub kept: usize,
}

impl Scheduler {
    /// A scheduler with at most `concurrency` runs in flight, recording into `store`,
    /// stopping everything when `shutdown` is cancelled.
    pub fn new(concurrency: usize, store: Arc<Store>, shutdown: CancellationToken) -> Self {
        Self {
            store,
            limit: Limit::new(concurrency),
            epoch: Instant::now(),
            shutdown,
            running: HashMap::new(),
        }
    }

    /// The limit on runs in flight, to share with ad-hoc probes.
    pub fn limit(&self) -> Limit {
        self.limit.clone()
    }

    /// Makes the running schedule match `sources`: unchanged sources keep their
    /// schedule and observation, removed ones stop and lose their observation, new or
    /// changed ones run at once. Names must be unique (the configuration checks it).
    pub fn apply(&mut self, sources: Vec<Arc<dyn Source>>, concurrency: usize) -> Changes {
        self.limit.resize(concurrency);
        let mut changes = Changes::default();
        let wanted: HashSet<String> = sources.iter().map(|s| s.name().to_owned()).collect();
        self.running.retain(|name, running| {
            let keep = wanted.contains(name);
            if !keep {
                running.stop.cancel();
                changes.removed.push(name.clone());
            }
            keep
        });
        for source in sources {
            let name = source.name().to_owned();
            match self.running.get(&name) {
                Some(running) if running.source.same_as(&*source) => changes.kept += 1,
                Some(running) => {
                    running.stop.cancel();
                    changes.changed.push(name);
                    self.start(source);
                }
                None => {
                    changes.added.push(name);
                    self.start(source);
                }
            }
        }
        // Stopped tasks can no longer record (see `Store::record`), so this is final.
        self.store
            .retain(&wanted.iter().map(String::as_str).collect());
        changes
    }

    fn start(&mut self, source: Arc<dyn Source>) {
        let stop = self.shutdown.child_token();
        let task = SourceTask {
            offset: spread_offset(source.name(), source.interval()),
            source: source.clone(),
            store: self.store.clone(),
            limit: self.limit.clone(),
            stop: stop.clone(),
            epoch: self.epoch,
        };
        tokio::spawn(task.run());
        self.running
            .insert(source.name().to_owned(), Running { source, stop });
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
    u64::try_from(rounds * interval_ns)
        .ok()
        .and_then(|ns| first.checked_add(Duration::from_nanos(ns)))
        .or_else(|| after.checked_add(interval))
        // An interval too long to add to the clock: no next round in this process.
        .unwrap_or_else(|| after + FAR_FUTURE)
}

/// A time no process lives to see, for intervals that overflow the clock.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

struct SourceTask {
    source: Arc<dyn Source>,
    store: Arc<Store>,
    limit: Limit,
    stop: CancellationToken,
    offset: Duration,
    epoch: Instant,
}

impl SourceTask {
    async fn run(self) {
        let mut due = Instant::now();
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
                () = self.source.changed() => {}
            }
            let observation = tokio::select! {
                () = self.stop.cancelled() => return,
                observation = self.observe_with_permit() => observation,
            };
            // Logged once stored, so that a reader who saw the line finds the result.
            if let Some(entry) = self.store.record(observation, || !self.stop.is_cancelled()) {
                source::log(&entry.observation);
            }
            due = next_round(
                self.epoch,
                self.offset,
                self.source.interval(),
                Instant::now(),
            );
        }
    }

    async fn observe_with_permit(&self) -> crate::store::Observation {
        let _permit = self.limit.acquire().await;
        self.source.observe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::future::BoxFuture;
    use tokio::sync::{watch, Semaphore};

    use crate::config::{Config, TargetSpec};
    use crate::probe::outcome::ProbeOutcome;
    use crate::store::Observation;

    /// A source whose runs wait until the test releases them, counting how many run.
    #[derive(Debug)]
    struct Held {
        spec: Arc<TargetSpec>,
        release: Arc<Semaphore>,
        running: Arc<watch::Sender<usize>>,
        peak: Arc<AtomicUsize>,
    }

    impl Source for Held {
        fn name(&self) -> &str {
            &self.spec.name
        }
        fn interval(&self) -> Duration {
            self.spec.interval
        }
        fn same_as(&self, other: &dyn Source) -> bool {
            other.name() == self.name()
        }
        fn observe(&self) -> BoxFuture<'_, Observation> {
            Box::pin(async move {
                self.running.send_modify(|n| *n += 1);
                self.peak
                    .fetch_max(*self.running.borrow(), Ordering::SeqCst);
                self.release.acquire().await.expect("open").forget();
                self.running.send_modify(|n| *n -= 1);
                Observation::Endpoint {
                    spec: self.spec.clone(),
                    outcome: ProbeOutcome {
                        addresses: vec![],
                        cut: Default::default(),
                    },
                    served: None,
                }
            })
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    struct Bench {
        sources: Vec<Arc<dyn Source>>,
        release: Arc<Semaphore>,
        running: watch::Receiver<usize>,
        peak: Arc<AtomicUsize>,
    }

    fn held_sources(n: usize) -> Bench {
        let yaml: String = (0..n)
            .map(|i| format!("  - {{address: \"127.0.0.1:{}\", interval: 1h}}\n", i + 1))
            .collect();
        let config = Config::from_yaml(
            &format!("targets:\n{yaml}"),
            "t.yml",
            std::path::Path::new("."),
        )
        .expect("valid");
        let release = Arc::new(Semaphore::new(0));
        let (running, watched) = watch::channel(0usize);
        let running = Arc::new(running);
        let peak = Arc::new(AtomicUsize::new(0));
        let sources = config
            .targets
            .iter()
            .map(|spec| {
                Arc::new(Held {
                    spec: spec.clone(),
                    release: release.clone(),
                    running: running.clone(),
                    peak: peak.clone(),
                }) as Arc<dyn Source>
            })
            .collect();
        Bench {
            sources,
            release,
            running: watched,
            peak,
        }
    }

    async fn until_running(bench: &mut Bench, n: usize) {
        let reached =
            tokio::time::timeout(Duration::from_secs(60), bench.running.wait_for(|r| *r == n))
                .await
                .map(|r| r.is_ok());
        assert_eq!(
            reached,
            Ok(true),
            "never {n} running; now {}",
            *bench.running.borrow()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shrinking_under_load_then_growing_ends_at_the_new_limit() {
        let mut bench = held_sources(8);
        let mut scheduler = Scheduler::new(4, Arc::new(Store::default()), CancellationToken::new());
        scheduler.apply(bench.sources.clone(), 4);
        until_running(&mut bench, 4).await;

        let kept = scheduler.apply(bench.sources.clone(), 1);
        assert_eq!(kept.kept, 8, "a resize keeps every schedule");
        bench.peak.store(0, Ordering::SeqCst);
        bench.release.add_permits(4);
        until_running(&mut bench, 1).await;
        // Let every waiting task try its luck: still one at a time.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*bench.running.borrow(), 1);

        scheduler.apply(bench.sources.clone(), 3);
        until_running(&mut bench, 3).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            *bench.running.borrow(),
            3,
            "the raised limit holds, no permit was swallowed"
        );
        assert!(bench.peak.load(Ordering::SeqCst) <= 3);
    }

    #[tokio::test(start_paused = true)]
    async fn growing_before_held_permits_return_cancels_the_debt() {
        let mut bench = held_sources(8);
        let mut scheduler = Scheduler::new(4, Arc::new(Store::default()), CancellationToken::new());
        scheduler.apply(bench.sources.clone(), 4);
        until_running(&mut bench, 4).await;
        scheduler.apply(bench.sources.clone(), 1);
        scheduler.apply(bench.sources.clone(), 3);
        bench.release.add_permits(4);
        until_running(&mut bench, 3).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(*bench.running.borrow(), 3);
        assert_eq!(scheduler.limit().size(), 3);
    }

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
