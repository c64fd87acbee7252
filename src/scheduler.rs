//! When each source is observed: at once when it is added, then once per `interval`,
//! at an offset within the interval derived from its name so that rounds of many
//! sources are spread evenly rather than fired together, and early when the source says
//! it changed.
//!
//! One dispatcher task keeps every source's next round in a queue ordered by time,
//! sleeps until the earliest, takes one of the shared [`Limit`]'s permits, and only
//! then starts that run as a task of its own, which holds the permit until it ends; so a
//! slow or hanging target never delays another, the most overdue run always goes first,
//! and the tasks alive are the runs in flight (at most `concurrency`) rather than one
//! per source. An idle source costs a queue entry and a map slot (about a hundred
//! bytes), not a task, a timer and a cancellation token (about a kilobyte): the
//! difference that lets one process hold 100,000 sources. Sources that can signal a
//! change ([`Source::changed`]) get a small watcher task each.
//!
//! The scheduler knows sources only through the [`Source`] trait: probing is
//! `probe`'s, reading files is theirs; storing the observation is `store`'s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::limit::{Limit, Permit};
use crate::source::{self, Source};
use crate::store::Store;

/// Runs the schedule of every source.
#[derive(Debug)]
pub struct Scheduler {
    inner: Arc<Inner>,
    limit: Limit,
    /// Stops the dispatcher, the runs and the watchers when the scheduler is dropped.
    _stop: DropGuard,
}

/// What the dispatcher, the runs and the watchers share with the scheduler.
#[derive(Debug)]
struct Inner {
    store: Arc<Store>,
    epoch: Instant,
    state: Mutex<State>,
    /// Tells the dispatcher that the queue's head may have changed.
    wake: Notify,
    start_delay: OnceLock<prometheus::Histogram>,
}

#[derive(Debug, Default)]
struct State {
    slots: HashMap<Key, Slot>,
    /// Every pending round; an entry is current only while its ticket is its slot's.
    queue: BinaryHeap<Reverse<Due>>,
    /// The last ticket or incarnation number given.
    issued: u64,
}

/// A source in the slot map, found by its name.
#[derive(Debug)]
struct Key(Arc<dyn Source>);

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it.
        self.0.name().hash(state);
    }
}

impl std::borrow::Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.0.name()
    }
}

/// One scheduled source.
#[derive(Debug)]
struct Slot {
    /// Which addition of the source this is: a run of an earlier one (before a change
    /// or a removal) may no longer record.
    incarnation: u64,
    /// The ticket of the source's current queue entry.
    ticket: u64,
    /// Whether a run is under way (from its launch to its end).
    running: bool,
    /// Whether the source said it changed while a run was under way: run again at once.
    rerun: bool,
    run: Option<AbortHandle>,
    watcher: Option<AbortHandle>,
}

impl Slot {
    fn stop(&mut self) {
        for task in [self.run.take(), self.watcher.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

/// A pending round: ordered by time, then by ticket (first queued, first run).
#[derive(Debug)]
struct Due {
    at: Instant,
    ticket: u64,
    source: Arc<dyn Source>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.ticket) == (other.at, other.ticket)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.at, self.ticket).cmp(&(other.at, other.ticket))
    }
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
    /// stopping everything when `shutdown` is cancelled (or the scheduler dropped).
    /// Starts its dispatcher: call it within the runtime.
    pub fn new(concurrency: usize, store: Arc<Store>, shutdown: CancellationToken) -> Self {
        let stop = shutdown.child_token();
        let inner = Arc::new(Inner {
            store,
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            start_delay: OnceLock::new(),
        });
        let limit = Limit::new(concurrency);
        tokio::spawn(inner.clone().dispatch(limit.clone(), stop.clone()));
        Self {
            inner,
            limit,
            _stop: stop.drop_guard(),
        }
    }

    /// Records into `histogram` how late each run starts after its slot (the round's
    /// time, or the moment the source was added or said it changed). The first call
    /// counts; later ones are ignored.
    pub fn record_start_delays(&mut self, histogram: prometheus::Histogram) {
        let _ = self.inner.start_delay.set(histogram);
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
        {
            let inner = &self.inner;
            let mut state = inner.lock();
            state.slots.retain(|key, slot| {
                let keep = wanted.contains(key.0.name());
                if !keep {
                    slot.stop();
                    changes.removed.push(key.0.name().to_owned());
                }
                keep
            });
            let now = Instant::now();
            for source in sources {
                match state.slots.get_key_value(source.name()) {
                    Some((key, _)) if key.0.same_as(&*source) => changes.kept += 1,
                    Some(_) => {
                        if let Some(mut old) = state.slots.remove(source.name()) {
                            old.stop();
                        }
                        changes.changed.push(source.name().to_owned());
                        inner.add(&mut state, source, now);
                    }
                    None => {
                        changes.added.push(source.name().to_owned());
                        inner.add(&mut state, source, now);
                    }
                }
            }
        }
        self.inner.wake.notify_one();
        // Stopped runs can no longer record (see `Inner::is_current`, checked under
        // the store's lock), so this is final.
        self.inner
            .store
            .retain(&wanted.iter().map(String::as_str).collect());
        changes
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; the state stays consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Schedules a new source to run at `now`, with a watcher if it can say it changed.
    fn add(self: &Arc<Self>, state: &mut State, source: Arc<dyn Source>, now: Instant) {
        state.issued += 1;
        let incarnation = state.issued;
        let watcher = source
            .changed()
            .is_some()
            .then(|| tokio::spawn(self.clone().watch(source.clone(), incarnation)).abort_handle());
        state.slots.insert(
            Key(source.clone()),
            Slot {
                incarnation,
                ticket: 0,
                running: false,
                rerun: false,
                run: None,
                watcher,
            },
        );
        queue(state, source, now);
    }

    /// Whether a run of `name`'s `incarnation` may still record.
    fn is_current(&self, name: &str, incarnation: u64) -> bool {
        self.lock()
            .slots
            .get(name)
            .is_some_and(|slot| slot.incarnation == incarnation)
    }

    /// Until `stop`: waits for the earliest round, then for a permit, then starts it.
    async fn dispatch(self: Arc<Self>, limit: Limit, stop: CancellationToken) {
        loop {
            let next = self.earliest();
            let due = match next {
                Some(at) => at,
                None => {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = self.wake.notified() => continue,
                    }
                }
            };
            if due > Instant::now() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = self.wake.notified() => continue,
                    () = tokio::time::sleep_until(due) => continue,
                }
            }
            let permit = tokio::select! {
                () = stop.cancelled() => return,
                permit = limit.acquire() => permit,
            };
            self.launch(permit, &stop);
        }
    }

    /// The time of the earliest current queue entry, dropping stale ones.
    fn earliest(&self) -> Option<Instant> {
        let mut state = self.lock();
        loop {
            let Reverse(head) = state.queue.peek()?;
            if is_live(&state, head) {
                return Some(head.at);
            }
            state.queue.pop();
        }
    }

    /// Starts the earliest due round with `permit`; if none is due any longer (its
    /// source was removed meanwhile), the permit goes back.
    fn launch(self: &Arc<Self>, permit: Permit, stop: &CancellationToken) {
        let mut state = self.lock();
        let now = Instant::now();
        while let Some(Reverse(head)) = state.queue.peek() {
            if head.at > now {
                return;
            }
            let Some(Reverse(due)) = state.queue.pop() else {
                return;
            };
            if !is_live(&state, &due) {
                continue;
            }
            let Some(slot) = state.slots.get_mut(due.source.name()) else {
                continue;
            };
            slot.running = true;
            let run = Run {
                inner: self.clone(),
                incarnation: slot.incarnation,
                slot_at: due.at,
                source: due.source,
                permit,
                stop: stop.clone(),
            };
            // Spawned under the lock: the run cannot end (and take the lock) before
            // its handle is stored.
            slot.run = Some(tokio::spawn(run.run()).abort_handle());
            return;
        }
    }

    /// A run of `source` ended: schedules its next round.
    fn finished(&self, source: &Arc<dyn Source>, incarnation: u64) {
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(source.name()) else {
            return;
        };
        if slot.incarnation != incarnation {
            return;
        }
        slot.running = false;
        slot.run = None;
        let now = Instant::now();
        let at = if std::mem::take(&mut slot.rerun) {
            now
        } else {
            let interval = source.interval();
            next_round(
                self.epoch,
                spread_offset(source.name(), interval),
                interval,
                now,
            )
        };
        queue(&mut state, source.clone(), at);
        drop(state);
        self.wake.notify_one();
    }

    /// Until aborted: each time `source` says it changed, runs it at once (or right
    /// after the run under way).
    async fn watch(self: Arc<Self>, source: Arc<dyn Source>, incarnation: u64) {
        loop {
            match source.changed() {
                Some(changed) => changed.await,
                None => return,
            }
            let mut state = self.lock();
            let Some(slot) = state.slots.get_mut(source.name()) else {
                return;
            };
            if slot.incarnation != incarnation {
                return;
            }
            if slot.running {
                slot.rerun = true;
                continue;
            }
            queue(&mut state, source.clone(), Instant::now());
            drop(state);
            self.wake.notify_one();
        }
    }
}

/// Queues `source`'s next round at `at`, replacing any entry it had.
fn queue(state: &mut State, source: Arc<dyn Source>, at: Instant) {
    state.issued += 1;
    let ticket = state.issued;
    if let Some(slot) = state.slots.get_mut(source.name()) {
        slot.ticket = ticket;
        state.queue.push(Reverse(Due { at, ticket, source }));
    }
    // Replaced entries (a change, a removal, an early run) wait in the queue until
    // their time, which may be an interval of up to 30 days away, holding their
    // source: once they outnumber the live ones, drop them all (amortized O(1)).
    if state.queue.len() > 2 * state.slots.len() + 64 {
        let State { slots, queue, .. } = state;
        queue.retain(|Reverse(due)| {
            slots
                .get(due.source.name())
                .is_some_and(|slot| slot.ticket == due.ticket && !slot.running)
        });
    }
}

/// Whether `due` is its source's current entry.
fn is_live(state: &State, due: &Due) -> bool {
    state
        .slots
        .get(due.source.name())
        .is_some_and(|slot| slot.ticket == due.ticket && !slot.running)
}

/// One run of a source, holding its permit until it ends.
struct Run {
    inner: Arc<Inner>,
    source: Arc<dyn Source>,
    incarnation: u64,
    /// When the run was due.
    slot_at: Instant,
    permit: Permit,
    stop: CancellationToken,
}

impl Run {
    async fn run(self) {
        if let Some(histogram) = self.inner.start_delay.get() {
            histogram.observe((Instant::now() - self.slot_at).as_secs_f64());
        }
        let observation = tokio::select! {
            () = self.stop.cancelled() => return,
            observation = self.source.observe() => observation,
        };
        let name = self.source.name();
        let inner = &self.inner;
        // Logged once stored, so that a reader who saw the line finds the result.
        if let Some(entry) = inner
            .store
            .record(observation, || inner.is_current(name, self.incarnation))
        {
            source::log(&entry.observation);
        }
        drop(self.permit);
        inner.finished(&self.source, self.incarnation);
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::future::BoxFuture;
    use std::sync::Mutex;
    use tokio::sync::{watch, Notify, Semaphore};

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

    /// A source that records when each run starts, takes `takes` of (paused) time,
    /// and can be told that it changed.
    #[derive(Debug)]
    struct Ticking {
        spec: Arc<TargetSpec>,
        runs: Arc<Mutex<Vec<(String, Instant)>>>,
        takes: Option<Duration>,
        change: Option<Arc<Notify>>,
        /// Sources with another tag are not `same_as`.
        tag: u32,
    }

    impl Source for Ticking {
        fn name(&self) -> &str {
            &self.spec.name
        }
        fn interval(&self) -> Duration {
            self.spec.interval
        }
        fn same_as(&self, other: &dyn Source) -> bool {
            other
                .as_any()
                .downcast_ref::<Ticking>()
                .is_some_and(|o| o.spec.name == self.spec.name && o.tag == self.tag)
        }
        fn observe(&self) -> BoxFuture<'_, Observation> {
            Box::pin(async move {
                lock(&self.runs).push((self.spec.name.clone(), Instant::now()));
                match self.takes {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
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
        fn changed(&self) -> Option<BoxFuture<'_, ()>> {
            self.change
                .as_ref()
                .map(|n| Box::pin(n.notified()) as BoxFuture<'_, ()>)
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().expect("not poisoned")
    }

    type Runs = Arc<Mutex<Vec<(String, Instant)>>>;

    /// Sources named `names`, every `interval`, each run taking `takes` (`None`:
    /// forever).
    fn ticking(names: &[&str], interval: &str, takes: Option<Duration>) -> (Vec<Ticking>, Runs) {
        let yaml: String = names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("  - {{address: \"127.0.0.1:{}\", name: {n}}}\n", i + 1))
            .collect();
        let config = Config::from_yaml(
            &format!("defaults: {{interval: {interval}}}\ntargets:\n{yaml}"),
            "t.yml",
            std::path::Path::new("."),
        )
        .expect("valid");
        let runs: Runs = Arc::default();
        let sources = config
            .targets
            .iter()
            .map(|spec| Ticking {
                spec: spec.clone(),
                runs: runs.clone(),
                takes,
                change: None,
                tag: 0,
            })
            .collect();
        (sources, runs)
    }

    fn dyns(sources: Vec<Ticking>) -> Vec<Arc<dyn Source>> {
        sources
            .into_iter()
            .map(|s| Arc::new(s) as Arc<dyn Source>)
            .collect()
    }

    fn runs_of(runs: &Runs, name: &str) -> Vec<Instant> {
        lock(runs)
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, at)| *at)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn each_source_runs_at_once_then_in_its_own_slot_of_every_interval() {
        let names = ["a", "b", "c", "d"];
        let (sources, runs) = ticking(&names, "1m", Some(Duration::from_millis(250)));
        let store = Arc::new(Store::default());
        let mut scheduler = Scheduler::new(2, store.clone(), CancellationToken::new());
        let epoch = Instant::now();
        scheduler.apply(dyns(sources), 2);
        tokio::time::sleep(Duration::from_secs(200)).await;
        let interval = Duration::from_secs(60);
        for name in names {
            let offset = spread_offset(name, interval);
            // The first two start at once, the others when a permit is back.
            let first = runs_of(&runs, name)[0];
            assert!(first - epoch <= Duration::from_millis(250), "{name}");
            let mut expected = vec![first];
            let mut at = next_round(epoch, offset, interval, first + Duration::from_millis(250));
            while at < epoch + Duration::from_secs(200) {
                expected.push(at);
                at += interval;
            }
            assert_eq!(runs_of(&runs, name), expected, "{name}, offset {offset:?}");
        }
        assert_eq!(store.snapshot().len(), names.len());
    }

    #[tokio::test(start_paused = true)]
    async fn removed_sources_stop_at_once_and_changed_ones_restart() {
        let (sources, runs) = ticking(&["stays", "goes", "hangs", "changes"], "1m", None);
        let mut sources: Vec<Option<Ticking>> = sources.into_iter().map(Some).collect();
        let store = Arc::new(Store::default());
        // One permit, held by the runs that hang: removing them must give it back.
        let mut scheduler = Scheduler::new(1, store.clone(), CancellationToken::new());
        let hangs: Arc<dyn Source> = Arc::new(sources[2].take().expect("hangs"));
        scheduler.apply(vec![hangs.clone()], 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs_of(&runs, "hangs").len(), 1);
        assert_eq!(
            scheduler.limit().available(),
            0,
            "the hanging run holds the permit"
        );

        let stays: Arc<dyn Source> = Arc::new(sources[0].take().expect("stays"));
        let goes: Arc<dyn Source> = Arc::new(sources[1].take().expect("goes"));
        let changes = scheduler.apply(vec![stays.clone(), goes.clone()], 1);
        assert_eq!(changes.removed, ["hangs"]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            runs_of(&runs, "stays").len() + runs_of(&runs, "goes").len(),
            1,
            "the removed run gave its permit back, and the next run holds it"
        );

        let mut changed = sources[3].take().expect("changes");
        changed.tag = 1;
        let first_changed = runs_of(&runs, "stays").len() + runs_of(&runs, "goes").len();
        let changes = scheduler.apply(vec![stays, Arc::new(changed)], 3);
        assert_eq!(
            (changes.removed.len(), changes.added.len(), changes.kept),
            (1, 1, 1)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            runs_of(&runs, "changes").len(),
            1,
            "an added source runs at once"
        );
        assert!(first_changed >= 1);
        let before = lock(&runs).len();
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert!(
            !lock(&runs)[before..]
                .iter()
                .any(|(n, _)| n == "goes" || n == "hangs"),
            "removed sources never run again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_says_it_changed_runs_at_once_and_after_a_run_under_way() {
        let (mut sources, runs) = ticking(&["watched"], "1h", Some(Duration::from_secs(10)));
        let change = Arc::new(Notify::new());
        sources[0].change = Some(change.clone());
        let mut scheduler = Scheduler::new(4, Arc::new(Store::default()), CancellationToken::new());
        let start = Instant::now();
        scheduler.apply(dyns(sources), 4);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs_of(&runs, "watched"), [start]);
        change.notify_one();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs_of(&runs, "watched").len(), 2, "ran at the change");
        // A change while that run is under way: one more run right after it.
        change.notify_one();
        tokio::time::sleep(Duration::from_secs(30)).await;
        let seen = runs_of(&runs, "watched");
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[2] - seen[1], Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_delay_is_the_wait_for_a_permit() {
        let (sources, _runs) = ticking(&["x", "y", "z"], "1h", Some(Duration::from_secs(10)));
        let histogram = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("delay", "d").buckets(vec![1.0, 15.0, 25.0]),
        )
        .expect("histogram");
        let mut scheduler = Scheduler::new(1, Arc::new(Store::default()), CancellationToken::new());
        scheduler.record_start_delays(histogram.clone());
        scheduler.apply(dyns(sources), 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        // One at a time: 0, 10 and 20 seconds late.
        assert_eq!(histogram.get_sample_count(), 3);
        assert_eq!(histogram.get_sample_sum(), 30.0);
    }

    #[tokio::test(start_paused = true)]
    async fn replaced_rounds_do_not_pile_up_in_the_queue() {
        let mut scheduler = Scheduler::new(4, Arc::new(Store::default()), CancellationToken::new());
        for round in 0..50u32 {
            let (mut sources, _runs) =
                ticking(&["m", "n", "o"], "30d", Some(Duration::from_secs(1)));
            for source in &mut sources {
                source.tag = round;
            }
            // Every source changes: three new entries, three stale ones, each due in
            // up to 30 days.
            scheduler.apply(dyns(sources), 4);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let queued = scheduler.inner.lock().queue.len();
        assert!(queued <= 2 * 3 + 64 + 1, "{queued} entries for 3 sources");
        scheduler.apply(Vec::new(), 4);
        let State { slots, .. } = &*scheduler.inner.lock();
        assert!(slots.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_scheduler_stops_its_runs() {
        let (sources, runs) = ticking(&["p", "q"], "1m", Some(Duration::from_secs(1)));
        let mut scheduler = Scheduler::new(4, Arc::new(Store::default()), CancellationToken::new());
        scheduler.apply(dyns(sources), 4);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let limit = scheduler.limit();
        drop(scheduler);
        let seen = lock(&runs).len();
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(lock(&runs).len(), seen);
        assert_eq!(limit.available(), 4, "every permit came back");
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
