//! The latest probe result of every target, replaced whole after each probe.
//!
//! Readers (the metrics collector, the status page) take a snapshot of `Arc`s and never
//! wait on a probe. Formatting and time are the readers' concern.
//!
//! Entries of configured targets are pruned on reload ([`Store::retain`]); pinned
//! entries ([`Store::record_pinned`], certwatch's own serving certificate) are not
//! the configuration's and are never pruned by it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::config::TargetSpec;
use crate::metrics::PreparedTarget;
use crate::probe::outcome::ProbeOutcome;

/// What is kept of a target's last probe.
#[derive(Debug)]
pub struct Entry {
    /// The target as configured when it was probed.
    pub spec: Arc<TargetSpec>,
    /// What the probe found.
    pub outcome: ProbeOutcome,
    /// The metric series, prepared once per probe.
    pub series: PreparedTarget,
}

/// The latest entry per target name.
#[derive(Debug, Default)]
pub struct Store {
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    pinned: RwLock<BTreeMap<String, Arc<Entry>>>,
}

impl Store {
    /// Replaces the entry of `entry.spec.name`, unless `still_wanted` says the target
    /// was removed meanwhile (checked under the lock, so a reload cannot race it).
    /// Returns whether the entry was stored.
    pub fn record(
        &self,
        entry: impl Into<Arc<Entry>>,
        still_wanted: impl FnOnce() -> bool,
    ) -> bool {
        let entry = entry.into();
        let mut entries = self.write();
        let wanted = still_wanted();
        if wanted {
            entries.insert(entry.spec.name.clone(), entry);
        }
        wanted
    }

    /// Replaces the pinned entry of `entry.spec.name`: one that no configuration owns,
    /// so [`Store::retain`] keeps it.
    pub fn record_pinned(&self, entry: impl Into<Arc<Entry>>) {
        let entry = entry.into();
        self.pinned
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(entry.spec.name.clone(), entry);
    }

    /// The entry of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        let configured = self.read().get(name).cloned();
        configured.or_else(|| self.read_pinned().get(name).cloned())
    }

    /// Every entry, by name.
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        let mut all: Vec<Arc<Entry>> = self.read().values().cloned().collect();
        let pinned = self.read_pinned();
        if !pinned.is_empty() {
            all.extend(pinned.values().cloned());
            all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        }
        all
    }

    /// Drops every entry whose name is not in `names`.
    pub fn retain(&self, names: &HashSet<&str>) {
        self.write().retain(|name, _| names.contains(name.as_str()));
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        // A writer cannot panic while holding the lock (inserts and retains only), so
        // a poisoned lock still holds consistent data.
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_pinned(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.pinned
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
