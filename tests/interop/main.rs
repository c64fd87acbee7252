//! The interoperability suite: certwatch against real servers from Debian, each started
//! by its test as a private instance on a loopback port (`support/daemon.rs`), and
//! compared with what `openssl s_client` reports for the same endpoint. One module per
//! server.
//!
//! A `harness = false` target (`support/tools.rs`): a test whose server is not
//! installed here is reported as ignored with what to install, and fails under
//! `CI=true`. `cargo test --test interop -- --include-ignored` runs every test and
//! fails those that cannot run.

#[path = "../support/mod.rs"]
mod support;

mod dante;
mod dovecot;
mod files;
mod inn;
mod knot;
mod mariadb;
mod nginx;
mod nginx_edges;
mod postfix;
mod postgres;
mod prosody;
mod revocation;
mod slapd;
mod tinyproxy;
mod vsftpd;

use std::process::ExitCode;

use support::openssl::parse_openssl_date;
use support::tools::{self, trial};

fn main() -> ExitCode {
    let mut trials = vec![trial!(&[], openssl_dates_parse_to_unix_seconds)];
    for server in [
        dante::trials,
        dovecot::trials,
        files::trials,
        inn::trials,
        knot::trials,
        mariadb::trials,
        nginx::trials,
        nginx_edges::trials,
        postfix::trials,
        postgres::trials,
        prosody::trials,
        revocation::trials,
        slapd::trials,
        tinyproxy::trials,
        vsftpd::trials,
    ] {
        trials.extend(server());
    }
    tools::run(trials)
}

/// The reading of `openssl x509 -enddate` every comparison relies on.
fn openssl_dates_parse_to_unix_seconds() {
    assert_eq!(parse_openssl_date("Nov 22 19:40:57 2027 GMT"), 1826912457);
    assert_eq!(parse_openssl_date("Feb  3 00:00:00 2026 GMT"), 1770076800);
}
