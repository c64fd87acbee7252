//! certwatch: a Prometheus exporter that watches TLS certificates.
//!
//! The data flows through one module per stage:
//!
//! ```text
//! config ──► scheduler ──► sources ─────────────────────────────────► store ──► metrics ──► http
//! (YAML →    (when, how     endpoint: probe (resolve → connect →        (latest    (prepared   (/metrics,
//!  TargetSpec, many at once)  starttls → tls → cert + verify),          observation series,    /probe, /)
//!  FileSpec)                  its served_from read by files              per source) rendered
//!                             files: files (glob → read → parse)                    per chunk)
//!                             certwatch-self: web::self_cert
//! ```
//!
//! - [`config`] reads and validates the file into immutable, plain-data
//!   [`config::TargetSpec`]s and [`config::FileSpec`]s.
//! - [`scheduler`] runs each [`source::Source`] at start and every interval, spread
//!   over the interval, at most `concurrency` at a time ([`limit`]); with
//!   `--shard INDEX/COUNT`, [`shard`] decides which configured sources are this
//!   process's.
//! - [`source`] is what can be observed: a network [`source::Endpoint`] is probed by
//!   [`probe`] ([`probe::discover`] plans the hosts and addresses with
//!   [`probe::dns`] and [`probe::resolve`], [`probe::connect`] or [`probe::proxy`]
//!   opens each connection, then [`probe::starttls`], [`probe::tls`], or
//!   [`probe::legacy`]'s second hello for a server only older TLS reaches, then
//!   [`cert`] parses the chain, [`probe::verify`] judges it and [`probe::hygiene`]
//!   lists its issues, giving a [`probe::outcome::ProbeOutcome`]; with
//!   [`probe::transcript`] recording each step for a person debugging);
//!   [`revocation`] then checks a verified chain by OCSP and CRL through its own
//!   process-wide cache;
//!   a `files:` source ([`source::Files`]) is read by [`files`] (globs expanded, files
//!   read and parsed, changes watched), giving a [`files::FilesOutcome`], and an
//!   endpoint's `served_from` is read by it too; certwatch's own serving certificate is
//!   [`web::self_cert`].
//! - [`store`] keeps the latest observation per source, and the probe counters.
//! - [`metrics`] prepares each entry's series once (the collector owns that cache) and
//!   renders them at scrape time; [`http`] serves them within a memory budget and a
//!   deadline, with [`status`] for the `/` page and [`probe_gate`] admitting
//!   `GET /probe` requests. [`web`] secures certwatch's own endpoint
//!   (`--web.config.file`: TLS, client certificates, basic auth) and serves it.
//!   [`audit`] logs who reloaded, who failed to authenticate and whose `/probe` was
//!   refused. [`app`] wires them together; [`cli`] parses the command line; [`report`]
//!   formats `certwatch check`. [`severity`] judges an address for `check` and the
//!   status page alike; [`printable`] escapes peer text before a person sees it;
//!   [`logging`] writes log lines to stderr without ever blocking or failing on it.
//! - Beneath them: [`fileread`] reads every file a configuration or a `files:` source
//!   names (bounded, never a FIFO or a device) and expands globs (bounded, loop-safe),
//!   and [`trust`] holds the trust anchors and TLS client
//!   material that `config` loads and `probe` uses.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod app;
pub mod audit;
pub mod cert;
pub mod cli;
pub mod config;
pub mod fileread;
pub mod files;
pub mod http;
pub mod limit;
pub mod logging;
pub mod metrics;
pub mod printable;
pub mod probe;
pub mod probe_gate;
pub mod report;
pub mod revocation;
pub mod scheduler;
pub mod severity;
pub mod shard;
pub mod shared;
pub mod source;
pub mod status;
pub mod store;
pub mod trust;
pub mod web;
