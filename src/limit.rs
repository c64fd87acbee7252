//! A concurrency limit that can be resized while permits are held: the probes in flight
//! at most, shared by the scheduler and `GET /probe`.
//!
//! Growing adds permits at once. Shrinking removes the free permits at once and records
//! the rest as a debt, paid by permits as they are returned: a returned permit is
//! forgotten while a debt is owed. Growing again first cancels the debt. So the number
//! of permits held never exceeds the newest limit once the held ones above it have
//! been returned, and no detached task holds permits on the side.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The largest limit: far below what the semaphore can count.
pub const MAX_LIMIT: usize = 1_000_000;

/// A resizable concurrency limit.
#[derive(Debug, Clone)]
pub struct Limit(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    semaphore: Arc<Semaphore>,
    /// The current limit.
    size: AtomicUsize,
    /// Permits to forget as they are returned.
    debt: AtomicUsize,
}

/// One unit of the limit, returned (or forgotten, to pay a debt) when dropped.
#[derive(Debug)]
pub struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    limit: Arc<Inner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        if take_one(&self.limit.debt) {
            permit.forget();
        }
    }
}

/// Decrements `counter` if it is above zero; whether it did.
fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
        .is_ok()
}

impl Limit {
    /// A limit of `size` (at least 1, at most [`MAX_LIMIT`]).
    pub fn new(size: usize) -> Self {
        let size = size.clamp(1, MAX_LIMIT);
        Self(Arc::new(Inner {
            semaphore: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            debt: AtomicUsize::new(0),
        }))
    }

    /// The current limit.
    pub fn size(&self) -> usize {
        self.0.size.load(Ordering::Acquire)
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.0.semaphore.available_permits()
    }

    /// Changes the limit to `size` (clamped to 1..=[`MAX_LIMIT`]). Resizes must not
    /// race each other (the scheduler owns them); permits may be taken and returned
    /// meanwhile.
    pub fn resize(&self, size: usize) {
        let size = size.clamp(1, MAX_LIMIT);
        let old = self.0.size.swap(size, Ordering::AcqRel);
        if size > old {
            let mut grow = size - old;
            // Cancel the debt first: those permits were never forgotten.
            while grow > 0 && take_one(&self.0.debt) {
                grow -= 1;
            }
            if grow > 0 {
                self.0.semaphore.add_permits(grow);
            }
        } else if size < old {
            let shrink = old - size;
            let forgotten = self.0.semaphore.forget_permits(shrink);
            self.0.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    /// Waits for a permit.
    pub async fn acquire(&self) -> Permit {
        // The semaphore is never closed.
        let permit = self
            .0
            .semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the limit's semaphore is never closed");
        Permit {
            permit: Some(permit),
            limit: self.0.clone(),
        }
    }

    /// Waits for a permit until `deadline`; `None` when none came in time.
    pub async fn acquire_until(&self, deadline: Instant) -> Option<Permit> {
        tokio::time::timeout_at(deadline, self.acquire()).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinking_under_load_takes_effect_as_permits_return() {
        let limit = Limit::new(4);
        let held: Vec<Permit> =
            futures_util::future::join_all((0..4).map(|_| limit.acquire())).await;
        limit.resize(1);
        assert_eq!(limit.available(), 0);
        drop(held);
        assert_eq!(limit.available(), 1, "three returned permits paid the debt");
    }

    #[tokio::test]
    async fn growing_after_shrinking_under_load_restores_the_full_limit() {
        let limit = Limit::new(4);
        let held: Vec<Permit> =
            futures_util::future::join_all((0..4).map(|_| limit.acquire())).await;
        limit.resize(1);
        limit.resize(3);
        drop(held);
        assert_eq!(limit.available(), 3);
        limit.resize(6);
        assert_eq!(limit.available(), 6);
        limit.resize(2);
        assert_eq!(limit.available(), 2, "free permits are removed at once");
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_until_gives_up_at_the_deadline() {
        let limit = Limit::new(1);
        let _held = limit.acquire().await;
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        assert!(limit.acquire_until(deadline).await.is_none());
        assert_eq!(Instant::now(), deadline);
    }
}
