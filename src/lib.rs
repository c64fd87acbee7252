//! certwatch: a Prometheus exporter that watches TLS certificates.
//!
//! The data flows through one module per stage:
//!
//! ```text
//! config ──► scheduler ──► probe ──────────────────────────────► store ──► http
//! (YAML →    (when, how     resolve → connect → starttls →       (latest    (/metrics via
//!  TargetSpec) many at once)  tls handshake → cert + verify)       outcome)   metrics::collector)
//! ```
//!
//! - [`config`] reads and validates the file into immutable [`config::TargetSpec`]s.
//! - [`scheduler`] probes each target at start and every interval, spread over the
//!   interval, at most `concurrency` at a time.
//! - [`probe`] runs one probe: [`probe::resolve`], [`probe::connect`],
//!   [`probe::starttls`], [`probe::tls`], then [`cert`] parses the chain and
//!   [`probe::verify`] judges it, giving a [`probe::outcome::ProbeOutcome`].
//! - [`store`] keeps the latest outcome per target with its prepared series.
//! - [`metrics`] renders the store at scrape time; [`http`] serves it, with [`status`]
//!   for the `/` page and [`probe_gate`] admitting `GET /probe` requests. [`web`]
//!   secures certwatch's own endpoint (`--web.config.file`: TLS, client certificates,
//!   basic auth), serves it, and reports its certificate as the target
//!   `certwatch-self`. [`audit`] logs who reloaded, who failed to authenticate and
//!   whose `/probe` was refused. [`app`] wires them together; [`cli`] parses the
//!   command line; [`report`] formats `certwatch check`; [`logging`] writes log lines
//!   to stderr without ever blocking or failing on it.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod app;
pub mod audit;
pub mod cert;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod probe;
pub mod probe_gate;
pub mod report;
pub mod scheduler;
pub mod shared;
pub mod status;
pub mod store;
pub mod web;
