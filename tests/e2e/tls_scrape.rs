//! End to end with a real Prometheus scraping certwatch the way a secured deployment
//! does: HTTPS with a client certificate (`client_auth_type: RequireAndVerifyClientCert`)
//! and basic authentication, configured by `--web.config.file`. Prometheus must see
//! the target up and store certwatch's own certificate's expiry (`certwatch-self`), so
//! that the shipped alert rules cover it; a second job without a client certificate
//! must be refused.
//!
//! Needs the Debian package `prometheus` (see `support/prometheus.rs`); without it the
//! test is ignored, and fails under `CI=true` (see `support/tools.rs`).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Validity};
use crate::support::prometheus::{self, encode, Server, PROMETHEUS, PROMETHEUS_NEED};
use crate::support::tools::{trial, Trial};
use crate::support::Harness;

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[PROMETHEUS_NEED],
        prometheus_scrapes_certwatch_over_tls_with_a_client_certificate_and_basic_auth
    )]
}

const USER: &str = "prometheus";
const PASSWORD: &str = "e2e-scrape-secret";

/// The longest wait for Prometheus to report both jobs' health.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(60);

fn prometheus_scrapes_certwatch_over_tls_with_a_client_certificate_and_basic_auth() {
    println!("{}", prometheus::version(PROMETHEUS));
    let server_ca = Ca::root("certwatch e2e server root");
    let server = server_ca.leaf(&["localhost"], Validity::days(30));
    let client_ca = Ca::root("certwatch e2e client root");
    let client = client_ca.client("prometheus");

    let h = Harness::new();
    h.write("server.pem", &server.cert_pem);
    h.write("server.key", &server.key_pem);
    h.write("client-ca.pem", &client_ca.pem);
    h.write("certwatch.yml", "defaults:\n  interval: 1h\n");
    h.write(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\nbasic_auth_users:\n  {USER}: \"{}\"\n",
            bcrypt::hash(PASSWORD, 4).expect("bcrypt")
        ),
    );
    let certwatch = Exporter::start(
        h.path(),
        &["--config", "certwatch.yml", "--web.config.file", "web.yml"],
    );

    let job = |name: &str, client_cert: bool| {
        let cert = if client_cert {
            "      cert_file: client.pem\n      key_file: client.key\n"
        } else {
            ""
        };
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: ca.pem\n{cert}      server_name: localhost\n    basic_auth:\n      username: {USER}\n      password: {PASSWORD}\n    static_configs:\n      - targets: [\"{}\"]\n",
            certwatch.addr
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("certwatch", true),
        job("certwatch-without-client-cert", false)
    );
    let prom = Server::prometheus(
        &config,
        &[
            ("ca.pem", &server_ca.pem),
            ("client.pem", &client.cert_pem),
            ("client.key", &client.key_pem),
        ],
    );

    // Both jobs scraped at least once: one up, one refused in the handshake.
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let targets = loop {
        let answer = prom.get_json("/api/v1/targets");
        let active = answer["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let health = |job: &str| {
            active
                .iter()
                .find(|t| t["labels"]["job"] == job)
                .map(|t| t["health"].as_str().unwrap_or("").to_owned())
        };
        if health("certwatch").as_deref() == Some("up")
            && health("certwatch-without-client-cert").as_deref() == Some("down")
        {
            break active;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not see certwatch up (and the job without a client certificate down) within {SCRAPE_TIMEOUT:?}: {answer}\n{}",
            prom.report("")
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let refused = targets
        .iter()
        .find(|t| t["labels"]["job"] == "certwatch-without-client-cert")
        .expect("the job without a client certificate");
    println!("without a client certificate: {}", refused["lastError"]);
    assert!(
        refused["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("certificate") || e.contains("tls")),
        "{refused}"
    );

    // certwatch's own certificate is in Prometheus, as the alert rules will see it.
    let query = |q: &str| -> Value {
        let answer = prom.get_json(&format!("/api/v1/query?query={}", encode(q)));
        assert_eq!(answer["status"], "success", "{answer}");
        answer["data"]["result"].clone()
    };
    let deadline = Instant::now() + SCRAPE_TIMEOUT;
    let expiry = loop {
        let result = query(
            "certwatch_cert_expiry_seconds{job=\"certwatch\",target=\"certwatch-self\",depth=\"0\"}",
        );
        if let Some(value) = result[0]["value"][1].as_str() {
            break value.parse::<f64>().expect("a number");
        }
        assert!(
            Instant::now() < deadline,
            "no certwatch-self series: {result}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        (29.0 * 86400.0..=30.0 * 86400.0).contains(&expiry),
        "the served leaf expires in 30 days: {expiry}"
    );
    let up = query("up{job=\"certwatch\"}");
    assert_eq!(up[0]["value"][1], "1", "{up}");

    // Prometheus authenticated on every scrape: no failed login was audited. The job
    // without a certificate was refused in the handshake, which is audited as such.
    let (status, logs) = certwatch.stop_with_logs();
    assert!(status.success());
    let audited: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|j| j["event"] == "auth_failure")
        .collect();
    assert!(
        audited.iter().all(|e| e["method"] == "client_certificate"),
        "{audited:#?}"
    );
    assert!(!audited.is_empty(), "the refused job is audited");
}
