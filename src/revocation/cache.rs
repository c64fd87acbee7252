//! The process-wide cache of fetched revocation answers, with single flight and
//! back-off.
//!
//! One [`Cache`] per kind of answer (OCSP in `ocsp`, CRLs in `crl`), each a `static`:
//! this module is the only owner of fetched answers, and targets only read them.
//!
//! - **Single flight.** The first probe that needs a key starts its fetch in a task of
//!   its own, bounded by that probe's deadline; every probe that needs the same key
//!   meanwhile waits for that one fetch (each until its own deadline) instead of
//!   fetching again. 10,000 targets sharing a CRL cost one download.
//! - **Freshness.** An answer is kept until the time its fetcher gave (the answer's
//!   `nextUpdate`, at most [`super::MAX_AGE`] and at least [`MIN_REUSE`] after the
//!   fetch), then fetched again on next use.
//! - **Back-off.** A failure is kept too, for [`backoff`] of its consecutive count
//!   (1 minute, doubling, at most 15), so a failing responder is asked once per period
//!   however many targets use it. A failure to reach a responder at all (connection,
//!   HTTP error, timeout) also marks its origin (`host:port`) down for the same
//!   period: other keys on that origin (the other serials of an OCSP responder) fail
//!   at once with that failure instead of each trying.
//! - **Memory.** At most `max_entries` entries and `max_weight` bytes of answers
//!   (a CRL weighs its serial set); past either, the entries that expire first go.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Failure, Reason};

/// The shortest time an answer is kept, even when its `nextUpdate` is nearer (or
/// past): a stale CRL must not be downloaded again by every probe.
pub const MIN_REUSE: Duration = Duration::from_secs(60);
/// The first back-off after a failure.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// How long a key (or origin) that failed `failures` times in a row is left alone.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// The memory an answer holds, for the cache's budget.
pub trait Weigh {
    /// Bytes, roughly.
    fn weight(&self) -> usize;
}

/// What a fetch gives: the answer and until when it may be reused.
pub type Fetched<V> = Result<(V, SystemTime), Failure>;

/// What a lookup found.
#[derive(Debug, Clone)]
pub struct Answer<V> {
    /// The answer, or the failure of its fetch.
    pub result: Result<V, Failure>,
    /// When it was fetched; `None` when no fetch was made (an origin that is down).
    pub fetched_at: Option<SystemTime>,
    /// Whether it was already there (fetched earlier, or by another probe).
    pub cached: bool,
}

type Outcome<V> = (Result<V, Failure>, Option<SystemTime>);

enum Step<V> {
    Done(Answer<V>),
    Wait {
        done: watch::Receiver<Option<Outcome<V>>>,
        cached: bool,
    },
}

#[derive(Debug)]
enum Slot<V> {
    /// A fetch is running; its outcome is sent on the channel.
    Pending {
        done: watch::Receiver<Option<Outcome<V>>>,
    },
    Ready {
        value: V,
        fetched_at: SystemTime,
        fresh_until: SystemTime,
        weight: usize,
    },
    Failed {
        failure: Failure,
        fetched_at: SystemTime,
        retry_at: Instant,
        failures: u32,
    },
}

#[derive(Debug)]
struct Down {
    failure: Failure,
    until: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Inner<V> {
    slots: HashMap<Vec<u8>, Slot<V>>,
    origins: HashMap<String, Down>,
    weight: usize,
    fetches: u64,
}

/// A cache of answers of type `V`, keyed by bytes (URL, and CertID for OCSP).
#[derive(Debug)]
pub struct Cache<V> {
    inner: Mutex<Option<Inner<V>>>,
    max_entries: usize,
    max_weight: usize,
}

impl<V: Clone + Send + Sync + Weigh + 'static> Cache<V> {
    /// An empty cache of at most `max_entries` entries and `max_weight` bytes.
    pub const fn new(max_entries: usize, max_weight: usize) -> Self {
        Self {
            inner: Mutex::new(None),
            max_entries,
            max_weight,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Inner<V>>> {
        // Nothing panics while the lock is held.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fetches started so far, for tests and benchmarks.
    pub fn fetches(&self) -> u64 {
        self.lock().as_ref().map_or(0, |i| i.fetches)
    }

    /// Entries and weight held now.
    pub fn size(&self) -> (usize, usize) {
        self.lock()
            .as_ref()
            .map_or((0, 0), |i| (i.slots.len(), i.weight))
    }

    /// The answer for `key`: from the cache when fresh (or failed and in back-off),
    /// else from the fetch in flight, else from `fetch`, started now in a task bounded
    /// by `deadline`. Waits at most until `deadline`. `origin` is the responder's
    /// `host:port`.
    pub async fn get<F>(
        &'static self,
        key: Vec<u8>,
        origin: &str,
        now: SystemTime,
        deadline: Instant,
        fetch: F,
    ) -> Answer<V>
    where
        F: Future<Output = Fetched<V>> + Send + 'static,
    {
        match self.begin(key, origin, now, deadline, fetch) {
            Step::Done(answer) => answer,
            Step::Wait { done, cached } => wait(done, deadline, cached).await,
        }
    }

    /// Under the lock: answers from the cache, or joins the fetch in flight, or starts
    /// one.
    fn begin<F>(
        &'static self,
        key: Vec<u8>,
        origin: &str,
        now: SystemTime,
        deadline: Instant,
        fetch: F,
    ) -> Step<V>
    where
        F: Future<Output = Fetched<V>> + Send + 'static,
    {
        let mut guard = self.lock();
        let inner = guard.get_or_insert_with(|| Inner {
            slots: HashMap::new(),
            origins: HashMap::new(),
            weight: 0,
            fetches: 0,
        });
        let previous_failures = match inner.slots.get(&key) {
            Some(Slot::Ready {
                value,
                fetched_at,
                fresh_until,
                ..
            }) if now < *fresh_until => {
                return Step::Done(Answer {
                    result: Ok(value.clone()),
                    fetched_at: Some(*fetched_at),
                    cached: true,
                })
            }
            Some(Slot::Failed {
                failure,
                fetched_at,
                retry_at,
                ..
            }) if Instant::now() < *retry_at => {
                return Step::Done(Answer {
                    result: Err(failure.clone()),
                    fetched_at: Some(*fetched_at),
                    cached: true,
                })
            }
            // A fetch whose task is gone (its runtime shut down) is started anew.
            Some(Slot::Pending { done, .. }) if done.has_changed().is_ok() => {
                return Step::Wait {
                    done: done.clone(),
                    cached: true,
                }
            }
            Some(Slot::Failed { failures, .. }) => *failures,
            Some(Slot::Ready { .. } | Slot::Pending { .. }) | None => 0,
        };
        if let Some(down) = inner.origins.get(origin) {
            if Instant::now() < down.until {
                return Step::Done(Answer {
                    result: Err(Failure::new(
                        down.failure.reason,
                        format!(
                            "{} (the responder at {origin} is not asked again for {}s)",
                            down.failure.detail,
                            down.until
                                .saturating_duration_since(Instant::now())
                                .as_secs()
                        ),
                    )),
                    fetched_at: None,
                    cached: true,
                });
            }
        }
        let (tx, rx) = watch::channel(None);
        if let Some(Slot::Ready { weight, .. }) = inner
            .slots
            .insert(key.clone(), Slot::Pending { done: rx.clone() })
        {
            inner.weight -= weight;
        }
        inner.fetches += 1;
        let origin = origin.to_owned();
        // Bounded by the deadline of the probe that started it; waiters with later
        // deadlines are served by it too.
        tokio::spawn(async move {
            let fetched_at = SystemTime::now();
            let result = match tokio::time::timeout_at(deadline, fetch).await {
                Ok(result) => result,
                Err(_) => Err(Failure::new(
                    Reason::Timeout,
                    format!("no answer from {origin} before the probe's deadline"),
                )),
            };
            let outcome = self.settle(key, &origin, fetched_at, previous_failures, result);
            // Waiters that gave up have dropped their receivers; that is fine.
            let _ = tx.send(Some(outcome));
        });
        Step::Wait {
            done: rx,
            cached: false,
        }
    }

    /// Stores the outcome of a fetch of `key` and returns it for the waiters.
    fn settle(
        &self,
        key: Vec<u8>,
        origin: &str,
        fetched_at: SystemTime,
        previous_failures: u32,
        result: Fetched<V>,
    ) -> Outcome<V> {
        let mut guard = self.lock();
        let Some(inner) = guard.as_mut() else {
            return (result.map(|(v, _)| v), Some(fetched_at));
        };
        match result {
            Ok((value, fresh_until)) => {
                inner.origins.remove(origin);
                let fresh_until = fresh_until.clamp(
                    fetched_at + MIN_REUSE,
                    fetched_at + Duration::from_secs(super::MAX_AGE as u64),
                );
                let weight = value.weight();
                inner.weight += weight;
                inner.slots.insert(
                    key,
                    Slot::Ready {
                        value: value.clone(),
                        fetched_at,
                        fresh_until,
                        weight,
                    },
                );
                self.evict(inner, fetched_at);
                (Ok(value), Some(fetched_at))
            }
            Err(failure) => {
                let failures = previous_failures.saturating_add(1);
                let now = Instant::now();
                if matches!(failure.reason, Reason::FetchFailed | Reason::Timeout) {
                    let down = inner.origins.entry(origin.to_owned()).or_insert(Down {
                        failure: failure.clone(),
                        until: now,
                        failures: 0,
                    });
                    down.failures = down.failures.saturating_add(1);
                    down.until = now + backoff(down.failures);
                    down.failure = failure.clone();
                }
                inner.slots.insert(
                    key,
                    Slot::Failed {
                        failure: failure.clone(),
                        fetched_at,
                        retry_at: now + backoff(failures),
                        failures,
                    },
                );
                self.evict(inner, fetched_at);
                (Err(failure), Some(fetched_at))
            }
        }
    }

    /// Drops what has expired, then, while over a limit, what expires first.
    fn evict(&self, inner: &mut Inner<V>, now: SystemTime) {
        if inner.slots.len() <= self.max_entries && inner.weight <= self.max_weight {
            return;
        }
        let instant = Instant::now();
        let mut freed = 0;
        inner.slots.retain(|_, slot| match slot {
            Slot::Ready {
                fresh_until,
                weight,
                ..
            } if *fresh_until <= now => {
                freed += *weight;
                false
            }
            Slot::Failed { retry_at, .. } => *retry_at > instant,
            _ => true,
        });
        inner.weight -= freed;
        inner.origins.retain(|_, down| down.until > instant);
        while inner.slots.len() > self.max_entries || inner.weight > self.max_weight {
            // Failures first, then the answer that expires soonest.
            let victim = inner
                .slots
                .iter()
                .filter_map(|(key, slot)| match slot {
                    Slot::Failed { .. } => Some((SystemTime::UNIX_EPOCH, key)),
                    Slot::Ready { fresh_until, .. } => Some((*fresh_until, key)),
                    Slot::Pending { .. } => None,
                })
                .min_by_key(|(until, _)| *until)
                .map(|(_, key)| key.clone());
            let Some(victim) = victim else { break };
            if let Some(Slot::Ready { weight, .. }) = inner.slots.remove(&victim) {
                inner.weight -= weight;
            }
        }
    }
}

async fn wait<V: Clone>(
    mut done: watch::Receiver<Option<Outcome<V>>>,
    deadline: Instant,
    cached: bool,
) -> Answer<V> {
    let waited = tokio::time::timeout_at(deadline, done.wait_for(Option::is_some)).await;
    match waited {
        Ok(Ok(outcome)) => {
            let (result, fetched_at) = outcome.clone().expect("waited for Some");
            Answer {
                result,
                fetched_at,
                cached,
            }
        }
        // The fetching task ended without an outcome: it panicked.
        Ok(Err(_)) => Answer {
            result: Err(Failure::new(
                Reason::FetchFailed,
                "the fetch ended without an answer",
            )),
            fetched_at: None,
            cached,
        },
        Err(_) => Answer {
            result: Err(Failure::new(
                Reason::Timeout,
                "the fetch did not end before the probe's deadline",
            )),
            fetched_at: None,
            cached,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Clone, Debug, PartialEq)]
    struct Text(&'static str);

    impl Weigh for Text {
        fn weight(&self) -> usize {
            self.0.len()
        }
    }

    fn cache(entries: usize, weight: usize) -> &'static Cache<Text> {
        Box::leak(Box::new(Cache::new(entries, weight)))
    }

    fn in_a_day() -> SystemTime {
        SystemTime::now() + Duration::from_secs(86_400)
    }

    #[tokio::test(start_paused = true)]
    async fn many_waiters_share_one_fetch() {
        let cache = cache(10, 1000);
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        let lookups = (0..100).map(|_| {
            let calls = calls.clone();
            let mut gate = gate.clone();
            cache.get(
                b"k".to_vec(),
                "o:80",
                SystemTime::now(),
                deadline,
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    Ok((Text("crl"), in_a_day()))
                },
            )
        });
        let all = futures_util::future::join_all(lookups);
        let opener = async {
            tokio::task::yield_now().await;
            release.send(true).unwrap();
        };
        let (answers, ()) = futures_util::future::join(all, opener).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.fetches(), 1);
        assert!(answers.iter().all(|a| a.result == Ok(Text("crl"))));
        assert_eq!(
            answers.iter().filter(|a| !a.cached).count(),
            1,
            "one fetched, 99 shared"
        );
        // Later lookups are served from the cache, without a fetch.
        let again = cache
            .get(b"k".to_vec(), "o:80", SystemTime::now(), deadline, async {
                unreachable!("fresh answers are not fetched again")
            })
            .await;
        assert_eq!(again.result, Ok(Text("crl")));
        assert!(again.cached);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_responder_is_asked_once_per_backoff_for_any_key() {
        let cache = cache(10, 1000);
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = |calls: Arc<AtomicUsize>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(Text, SystemTime), _>(Failure::new(Reason::FetchFailed, "refused"))
        };
        let deadline = || Instant::now() + Duration::from_secs(10);
        for serial in 0..50u8 {
            let answer = cache
                .get(
                    vec![serial],
                    "ocsp:80",
                    SystemTime::now(),
                    deadline(),
                    failing(calls.clone()),
                )
                .await;
            assert_eq!(answer.result.unwrap_err().reason, Reason::FetchFailed);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the origin is down after one failure"
        );
        tokio::time::advance(FIRST_BACKOFF + Duration::from_secs(1)).await;
        cache
            .get(
                vec![7],
                "ocsp:80",
                SystemTime::now(),
                deadline(),
                failing(calls.clone()),
            )
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asked again after the back-off"
        );
        // The second failure in a row doubles the back-off.
        tokio::time::advance(FIRST_BACKOFF + Duration::from_secs(1)).await;
        cache
            .get(
                vec![7],
                "ocsp:80",
                SystemTime::now(),
                deadline(),
                failing(calls.clone()),
            )
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "still backing off");
        assert_eq!(backoff(1), FIRST_BACKOFF);
        assert_eq!(backoff(2), FIRST_BACKOFF * 2);
        assert_eq!(backoff(100), MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_at_its_own_deadline() {
        let cache = cache(10, 1000);
        let answer = cache
            .get(
                b"slow".to_vec(),
                "slow:80",
                SystemTime::now(),
                Instant::now() + Duration::from_secs(3),
                std::future::pending(),
            )
            .await;
        assert_eq!(answer.result.unwrap_err().reason, Reason::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn the_answers_that_expire_first_make_room() {
        let cache = cache(2, 1000);
        let deadline = Instant::now() + Duration::from_secs(10);
        let now = SystemTime::now();
        for (key, hours) in [(1u8, 5u64), (2, 1), (3, 9)] {
            let until = now + Duration::from_secs(hours * 3600);
            cache
                .get(vec![key], "o:80", now, deadline, async move {
                    Ok((Text("x"), until))
                })
                .await;
        }
        assert_eq!(cache.size(), (2, 2));
        let fetched_again = cache
            .get(vec![2], "o:80", now, deadline, async move {
                Ok((Text("y"), in_a_day()))
            })
            .await;
        assert!(!fetched_again.cached, "key 2 expired first and was evicted");
    }
}
