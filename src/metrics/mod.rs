//! Metrics: per-target series from the store, exporter series from a registry.
//!
//! [`collector`] prepares each target's label sets once per store entry (it owns that
//! cache) and renders the per-target families at scrape time from the `now` it is
//! given, in chunks, so expiry is always current and a scrape costs little more than
//! copying prepared text. [`exporter`] holds the process-wide series in a `prometheus`
//! registry, with [`process`]'s `process_*` series.

pub mod collector;
pub mod exporter;
pub mod names;
pub mod process;
mod text;

pub use collector::{Collector, PreparedTarget};
pub use exporter::ExporterMetrics;

/// The Content-Type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
