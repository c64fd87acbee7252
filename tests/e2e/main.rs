//! End to end with programs from Debian: the real binary scraped by a real Prometheus
//! that evaluates the shipped rules for a real Alertmanager (`alerts`), or scrapes it
//! over TLS with a client certificate (`tls_scrape`); its endpoint through curl and
//! `openssl s_client` (`web_tls`); its status page in headless Chromium
//! (`status_page`); and its /metrics through `promtool check metrics` (`promtool`).
//!
//! A `harness = false` target (`support/tools.rs`): a test whose program is not
//! installed here is reported as ignored with what to install, and fails under
//! `CI=true`. `cargo test --test e2e -- --include-ignored` runs every test and fails
//! those that cannot run.

#[path = "../support/mod.rs"]
mod support;

mod alerts;
mod certbot;
mod promtool;
mod status_page;
mod tls_scrape;
mod web_tls;

use std::process::ExitCode;

fn main() -> ExitCode {
    support::tools::run(
        [
            alerts::trials(),
            certbot::trials(),
            promtool::trials(),
            status_page::trials(),
            tls_scrape::trials(),
            web_tls::trials(),
        ]
        .into_iter()
        .flatten()
        .collect(),
    )
}
