//! Content-addressed sharing of immutable values.
//!
//! Thousands of targets often present the same intermediate certificates; a
//! [`Shared`] map keeps one copy of each value, by a key that names its content (a
//! SHA-256 fingerprint), for as long as anything holds it. Entries hold `Weak`
//! references, so nothing is kept alive here; dead entries are pruned as the map grows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// One copy per key of values that are the same whenever their keys are.
#[derive(Debug)]
pub struct Shared<T: ?Sized> {
    map: OnceLock<Mutex<Slots<T>>>,
}

#[derive(Debug)]
struct Slots<T: ?Sized> {
    values: HashMap<Box<str>, Weak<T>>,
    prune_at: usize,
}

/// Entries kept before the first pruning of dead ones.
const FIRST_PRUNE: usize = 1024;

impl<T: ?Sized> Shared<T> {
    /// An empty map, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            map: OnceLock::new(),
        }
    }

    /// The live value for `key`, or the one `make` builds (outside the lock).
    pub fn get_or_insert(&self, key: &str, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        if let Some(value) = self.lock().values.get(key).and_then(Weak::upgrade) {
            return value;
        }
        let made = make();
        let mut slots = self.lock();
        if let Some(value) = slots.values.get(key).and_then(Weak::upgrade) {
            return value;
        }
        if slots.values.len() >= slots.prune_at {
            slots.values.retain(|_, value| value.strong_count() > 0);
            slots.prune_at = (slots.values.len() * 2).max(FIRST_PRUNE);
        }
        slots.values.insert(key.into(), Arc::downgrade(&made));
        made
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots<T>> {
        self.map
            .get_or_init(|| {
                Mutex::new(Slots {
                    values: HashMap::new(),
                    prune_at: FIRST_PRUNE,
                })
            })
            .lock()
            // Nothing panics while the lock is held; the map stays consistent.
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_share_one_value_while_it_lives() {
        let shared: Shared<str> = Shared::new();
        let a = shared.get_or_insert("k", || Arc::from("first"));
        let b = shared.get_or_insert("k", || Arc::from("second"));
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        let c = shared.get_or_insert("k", || Arc::from("third"));
        assert_eq!(&*c, "third", "a dropped value is built again");
    }

    #[test]
    fn dead_entries_are_pruned_as_the_map_grows() {
        let shared: Shared<str> = Shared::new();
        for i in 0..(FIRST_PRUNE * 3) {
            let _dropped = shared.get_or_insert(&i.to_string(), || Arc::from("v"));
        }
        assert!(shared.lock().values.len() <= FIRST_PRUNE + 1);
    }
}
