//! What a handler may do to the connection its request arrived on.
//!
//! `web::serve` gives every request of a connection the same [`Connection`] (as an
//! axum extension) and drops the connection at once when a handler aborts it: the way
//! to end a response that a client stopped reading, whether HTTP/1.1 (a write that
//! never completes) or HTTP/2 (a stream whose flow-control window stays shut), since in
//! both cases the response body is no longer polled and cannot end itself.

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// A handle on one client connection.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    abort: CancellationToken,
}

impl Connection {
    /// A handle for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the connection now, with whatever it was sending.
    pub fn abort(&self) {
        self.abort.cancel();
    }

    /// Resolves when a handler aborted the connection.
    pub fn aborted(&self) -> WaitForCancellationFuture<'_> {
        self.abort.cancelled()
    }

    /// Whether a handler aborted the connection.
    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }
}
