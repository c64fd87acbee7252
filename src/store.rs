//! The latest observation of every source, replaced whole after each run, and the
//! probe counters that outlive observations.
//!
//! Readers (the metrics collector, the status page) take a snapshot of `Arc`s and never
//! wait on a probe. Each entry carries a sequence number, unique and increasing, so a
//! reader that caches something derived from an entry knows when it is stale.
//!
//! `certwatch_probes_total` counts per target and address for as long as the target is
//! configured: the counts live here, beside the entries, so an address that is absent
//! from one probe (a failed resolution, a rotating name) resumes from its previous
//! count when it is seen again, and a counter never goes backwards. Formatting and time
//! are the readers' concern.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::{FileSpec, TargetSpec};
use crate::files::{FilesOutcome, ServedFile};
use crate::probe::outcome::ProbeOutcome;

/// What one run of a source observed.
#[derive(Debug, Clone)]
pub enum Observation {
    /// A probe of a network endpoint (or of certwatch's own serving certificate).
    Endpoint {
        /// The target as configured when it was probed.
        spec: Arc<TargetSpec>,
        /// What the probe found.
        outcome: ProbeOutcome,
        /// What the target's `served_from` held when it was probed.
        served: Option<ServedFile>,
    },
    /// A read of a `files:` source.
    Files {
        /// The source as configured when it was read.
        spec: Arc<FileSpec>,
        /// What the read found.
        outcome: FilesOutcome,
    },
}

impl Observation {
    /// The `target` label: the source's name.
    pub fn name(&self) -> &str {
        match self {
            Observation::Endpoint { spec, .. } => &spec.name,
            Observation::Files { spec, .. } => &spec.name,
        }
    }
}

/// Probes run for one address of a target, by result.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Probes that completed the handshake and verified the chain.
    pub successes: u64,
    /// The others.
    pub failures: u64,
}

/// What is kept of a source's last run.
#[derive(Debug)]
pub struct Entry {
    /// What was observed.
    pub observation: Observation,
    /// Unique and increasing over every entry this store ever held.
    pub seq: u64,
    /// For an endpoint, the counts of each address of the outcome, in its order.
    pub counts: Box<[Counts]>,
}

impl Entry {
    /// The source's name.
    pub fn name(&self) -> &str {
        self.observation.name()
    }
}

/// The most addresses whose counts are kept per target; the longest unseen go first.
/// A discovered target has up to 16 hosts of up to 16 addresses (and a series for each
/// host that did not resolve); a rotating name is still bounded.
pub const MAX_COUNTED_ADDRESSES: usize = 16 * 17;

/// The latest entry per source name.
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: BTreeMap<String, Slot>,
    seq: u64,
}

/// Which series of a target a count belongs to: its `host` label (discovered targets
/// only) and its `ip`.
type SeriesKey = (Option<String>, Option<IpAddr>);

/// A source's latest entry and its counters, kept together under its name.
#[derive(Debug)]
struct Slot {
    entry: Arc<Entry>,
    counters: Counters,
}

/// The counts of one target's addresses, with when each was last seen.
#[derive(Debug, Default)]
struct Counters(Vec<(SeriesKey, Counts, u64)>);

impl Counters {
    /// Counts every probe of `observation`; the counts of each address, in order.
    fn count_all(&mut self, observation: &Observation, seq: u64) -> Box<[Counts]> {
        match observation {
            Observation::Endpoint { outcome, .. } => outcome
                .addresses
                .iter()
                .map(|a| {
                    let host = a.host.as_ref().map(|h| h.label.clone());
                    self.count((host, a.ip), a.success(), seq)
                })
                .collect(),
            // Files are read, not probed: no probe counts.
            Observation::Files { .. } => Box::default(),
        }
    }

    fn count(&mut self, key: SeriesKey, success: bool, seq: u64) -> Counts {
        let index = match self.0.iter().position(|(known, _, _)| *known == key) {
            Some(i) => i,
            None => {
                if self.0.len() >= MAX_COUNTED_ADDRESSES {
                    let oldest = (0..self.0.len())
                        .min_by_key(|i| self.0[*i].2)
                        .expect("the list is full, so not empty");
                    self.0.swap_remove(oldest);
                }
                self.0.push((key, Counts::default(), seq));
                self.0.len() - 1
            }
        };
        let (_, counts, seen) = &mut self.0[index];
        *seen = seq;
        if success {
            counts.successes += 1;
        } else {
            counts.failures += 1;
        }
        *counts
    }
}

impl Store {
    /// Stores `observation` as the latest of its source, counting its probes, unless
    /// `still_wanted` says the source was removed meanwhile (checked under the lock, so
    /// a reload cannot race it). Returns the entry when it was stored.
    pub fn record(
        &self,
        observation: Observation,
        still_wanted: impl FnOnce() -> bool,
    ) -> Option<Arc<Entry>> {
        let mut inner = self.write();
        if !still_wanted() {
            return None;
        }
        inner.seq += 1;
        let seq = inner.seq;
        if let Some(slot) = inner.slots.get_mut(observation.name()) {
            let counts = slot.counters.count_all(&observation, seq);
            slot.entry = Arc::new(Entry {
                observation,
                seq,
                counts,
            });
            return Some(slot.entry.clone());
        }
        let mut counters = Counters::default();
        let counts = counters.count_all(&observation, seq);
        let name = observation.name().to_owned();
        let entry = Arc::new(Entry {
            observation,
            seq,
            counts,
        });
        inner.slots.insert(
            name,
            Slot {
                entry: entry.clone(),
                counters,
            },
        );
        Some(entry)
    }

    /// The entry of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.read().slots.get(name).map(|slot| slot.entry.clone())
    }

    /// Every entry, by name.
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.read()
            .slots
            .values()
            .map(|slot| slot.entry.clone())
            .collect()
    }

    /// Drops the entries and counts of every source whose name is not in `names`.
    pub fn retain(&self, names: &HashSet<&str>) {
        self.write()
            .slots
            .retain(|name, _| names.contains(name.as_str()));
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Writers cannot panic while holding the lock (inserts and retains only), so a
        // poisoned lock still holds consistent data.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_continue_per_address_across_probes_that_miss_it() {
        let mut counters = Counters::default();
        let a = (None, Some(IpAddr::from([192, 0, 2, 1])));
        let b = (None, Some(IpAddr::from([192, 0, 2, 2])));
        assert_eq!(counters.count(a.clone(), true, 1).successes, 1);
        assert_eq!(counters.count((None, None), false, 2).failures, 1);
        assert_eq!(counters.count(b, true, 3).successes, 1);
        // The same address under another host is another series.
        let host = Some("mx1.example.test:25".to_owned());
        assert_eq!(counters.count((host, a.1), true, 4).successes, 1);
        let again = counters.count(a, false, 5);
        assert_eq!(
            again,
            Counts {
                successes: 1,
                failures: 1
            },
            "a resumes from its own counts"
        );
    }

    #[test]
    fn the_longest_unseen_address_is_forgotten_first_when_full() {
        let mut counters = Counters::default();
        let ip = |i: u32| (None, Some(IpAddr::from(std::net::Ipv4Addr::from(i))));
        for i in 0..MAX_COUNTED_ADDRESSES as u32 {
            counters.count(ip(i), true, u64::from(i));
        }
        counters.count(ip(0), true, 1000);
        counters.count(ip(999), true, 1001);
        assert_eq!(counters.0.len(), MAX_COUNTED_ADDRESSES);
        assert!(
            counters.0.iter().any(|(k, _, _)| *k == ip(0)),
            "seen lately"
        );
        assert!(!counters.0.iter().any(|(k, _, _)| *k == ip(1)), "forgotten");
    }
}
