//! Shared test support: certificates, servers, and a harness that probes through the
//! library and returns the metrics as a scrape would see them.
#![allow(dead_code)]

pub mod binary_server;
pub mod curl;
pub mod daemon;
pub mod exporter;
pub mod hostile;
pub mod line_server;
pub mod openssl;
pub mod pki;
pub mod postfix;
pub mod prometheus;
pub mod scrape;
pub mod smtp_server;
pub mod tls_server;
pub mod tools;
pub mod transcript;
pub mod web_client;

use std::path::PathBuf;
use std::time::SystemTime;

use certwatch::config::Config;
use certwatch::metrics::Collector;
use certwatch::probe::outcome::ProbeOutcome;
use certwatch::store::{Observation, Store};

pub use scrape::Scrape;

/// A temporary directory for configuration and PEM files.
pub struct Harness {
    dir: tempfile::TempDir,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A new empty directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes `contents` to `name` in the directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Parses `yaml` with relative files taken from the directory.
    pub fn config(&self, yaml: &str) -> Config {
        match Config::from_yaml(yaml, "test.yml", self.dir.path()) {
            Ok(config) => config,
            Err(e) => panic!("invalid test configuration:\n{e}\n---\n{yaml}"),
        }
    }

    /// Probes the first target of `yaml` once, as the scheduler would, and renders
    /// its metrics as `/metrics` would.
    pub async fn probe(&self, yaml: &str) -> (ProbeOutcome, Scrape) {
        let config = self.config(yaml);
        let spec = config.targets.first().expect("a target").clone();
        let outcome = certwatch::probe::run(&spec).await;
        let store = Store::default();
        let observation = Observation::Endpoint {
            spec,
            outcome: outcome.clone(),
            served: None,
        };
        store.record(observation, || true);
        let mut text = String::new();
        Collector::default().render(&store.snapshot(), SystemTime::now(), &mut text);
        (outcome, Scrape::parse(&text))
    }
}

/// Unix seconds now.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}
