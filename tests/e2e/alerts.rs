//! End to end with the real monitoring stack: a real Prometheus scrapes the real
//! certwatch binary, which probes loopback TLS servers, and evaluates the shipped alert
//! rules (alerts/certwatch.rules.yml) every second; the alerts go to a real Alertmanager
//! running the shipped configuration (alerts/alertmanager.yml). The test asserts,
//! through Prometheus' HTTP API, that exactly the expected alerts fire; through
//! Alertmanager's API, that they arrived (with the shipped inhibition applied); and it
//! runs every query of the shipped dashboard (dashboards/certwatch.json) against
//! Prometheus, asserting that each succeeds and returns the data this scenario implies.
//!
//! The endpoints (one root CA and one intermediate for all of them):
//!
//! | target     | server                                    | alerts                                    |
//! |------------|-------------------------------------------|-------------------------------------------|
//! | `good`     | leaf valid 60 more days                   | none                                      |
//! | `expiring` | leaf valid 3 more days                    | CertificateExpiringSoon (not ...Expiring) |
//! | `expired`  | leaf expired yesterday                    | CertificateExpired, ChainNotVerified{reason="expired"} (inhibited in Alertmanager) |
//! | `mtls`     | requires a client certificate; leaf 25 d  | HandshakeFailing                          |
//! | `refused`  | a closed port                             | HandshakeFailing                          |
//! | `messy`    | leaf (410-day validity, 10 d left) sent with its root | CertificateExpiring, ChainHygiene{issue="root_included"} (info) |
//!
//! And certificate files: `good` has `served_from` a file holding its own chain (so
//! `certwatch_served_cert_current` is 1, no alert), and the `files:` source `disk`
//! (`team: files`) reads that file and one that holds no certificate:
//! CertificateFileUnreadable for the latter.
//!
//! `mtls` fails the handshake after presenting its chain, so its certificates are in
//! the dashboard; its 25-day leaf is outside the 21-day warning band of the rules and
//! the dashboard. `refused` presents nothing: it must not raise ChainNotVerified or an
//! expiry alert. `good`, `expiring` and `expired` carry `team: web`, the others
//! `team: mail`, so that the dashboard's `team` variable has values.
//!
//! THE `for:` DURATIONS ARE SHORTENED: the rules are loaded from a copy of the shipped
//! file in which every alert's `for:` (ChainNotVerified 10m, HandshakeFailing 15m,
//! ConfigReloadFailed 5m) is replaced by [`E2E_FOR`], so that they fire within the
//! test. Nothing else is changed. The real durations are covered by the promtool unit
//! tests in alerts/tests/ (alerts/check.sh). Likewise the Alertmanager configuration is
//! the shipped one with only its receivers replaced by webhooks to a local sink, so that
//! no notification leaves the test; routes, grouping and inhibitions are as shipped.
//!
//! Needs the Debian packages `prometheus` and `prometheus-alertmanager`; without them
//! the test is ignored, and fails under `CI=true` (see `support/tools.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::time::Instant;

use crate::support::exporter::Exporter;
use crate::support::pki::{Ca, Validity};
use crate::support::prometheus::{
    self, encode, Server, WebhookSink, ALERTMANAGER, ALERTMANAGER_NEED, PROMETHEUS, PROMETHEUS_NEED,
};
use crate::support::tls_server::{ClientAuth, ServerSpec, TlsServer};
use crate::support::tools::{trial, Trial};
use crate::support::Harness;

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[PROMETHEUS_NEED, ALERTMANAGER_NEED],
        async prometheus_and_alertmanager_see_exactly_the_expected_alerts_and_every_dashboard_query_has_data
    )]
}

const RULES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/alerts/certwatch.rules.yml"
));
const ALERTMANAGER_CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/alerts/alertmanager.yml"
));
const DASHBOARD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/dashboards/certwatch.json"
));

/// The `for:` of every alert in the e2e copy of the rules (see the module comment).
const E2E_FOR: &str = "2s";

/// The longest wait for Prometheus to show the expected alerts.
const ALERTS_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait for Alertmanager to show them.
const ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(30);

/// An alert as compared: its identifying labels, in a fixed order.
fn alert_key(labels: &Value) -> String {
    let get = |name: &str| labels.get(name).and_then(Value::as_str);
    let mut key = format!(
        "{} target={} team={} ip={} severity={}",
        get("alertname").unwrap_or("?"),
        get("target").unwrap_or("?"),
        get("team").unwrap_or("?"),
        get("ip").unwrap_or("?"),
        get("severity").unwrap_or("?"),
    );
    for extra in ["depth", "reason", "issue"] {
        if let Some(value) = get(extra) {
            key.push_str(&format!(" {extra}={value}"));
        }
    }
    key
}

/// Exactly the alerts that must fire, and why (from alerts/certwatch.rules.yml):
fn expected_alerts() -> Vec<String> {
    let mut expected = vec![
        // Per target (no ip, no depth): the first notAfter of the verified path.
        // 3 days left: 0 < expiry < 7d (critical band) -- and so not CertificateExpiring,
        // whose band is 7d <= expiry < 21d.
        "CertificateExpiringSoon target=expiring team=web ip=? severity=critical",
        // Expired yesterday: expiry <= 0 (the chain does not verify: every presented
        // certificate counts).
        "CertificateExpired target=expired team=web ip=? severity=critical",
        // ... and its chain fails verification with reason "expired".
        "ChainNotVerified target=expired team=web ip=? severity=critical reason=expired",
        // certwatch_handshake_success == 0: the server demands a client certificate.
        // Its chain is fine (25 d, verified), so nothing else.
        "HandshakeFailing target=mtls team=mail ip=? severity=critical",
        // certwatch_handshake_success == 0: connection refused; no certificate, so no
        // ChainNotVerified and no expiry alert.
        "HandshakeFailing target=refused team=mail ip=? severity=critical",
        // `messy`: a leaf with 10 days left (7d..21d), sent with its root.
        "CertificateExpiring target=messy team=web ip=? severity=warning",
        "ChainHygiene target=messy team=web ip=? severity=info issue=root_included",
        // certwatch_file_read_success == 0: certs/empty.pem holds no certificate. The
        // good file's certificate (60 d) raises nothing; neither does served_from, whose
        // file holds what `good` serves.
        "CertificateFileUnreadable target=disk team=files ip=? severity=warning",
        // Not expected: UnusedCertificateExpiring (every presented certificate is
        // on its verified path), LegacyTlsOnly, CertwatchDown,
        // CertificateRenewedNotServed (`good` serves its file's certificate),
        // CertificatePastTwoThirdsLifetime (every short-lived certificate has used
        // under 1/25 of its lifetime, or is under 21 days), ProbesStale (probed every
        // 2s, threshold 3 intervals), ConfigReloadFailed (the configuration loaded).
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    expected.sort();
    expected
}

/// The shipped rules with every `for:` set to [`E2E_FOR`]; also returns which alerts
/// had one, and the number of alerting rules.
fn rules_for_e2e() -> (String, Vec<String>, usize) {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(RULES).expect("rules are YAML");
    let mut shortened = Vec::new();
    let mut alerts = 0;
    for group in doc["groups"].as_sequence_mut().expect("groups") {
        for rule in group["rules"].as_sequence_mut().expect("rules") {
            let rule = rule.as_mapping_mut().expect("rule is a mapping");
            let name = rule
                .get("alert")
                .and_then(|a| a.as_str())
                .map(str::to_owned);
            if name.is_some() {
                alerts += 1;
            }
            if let Some(duration) = rule.get_mut("for") {
                shortened.push(format!(
                    "{} ({} -> {E2E_FOR})",
                    name.clone().unwrap_or_default(),
                    duration.as_str().unwrap_or("?")
                ));
                *duration = E2E_FOR.into();
            }
        }
    }
    (
        serde_yaml::to_string(&doc).expect("serialize"),
        shortened,
        alerts,
    )
}

/// The shipped Alertmanager configuration with every receiver replaced by a webhook to
/// `sink` (same names, so the routes are unchanged).
fn alertmanager_for_e2e(sink: &WebhookSink) -> String {
    let mut doc: serde_yaml::Value =
        serde_yaml::from_str(ALERTMANAGER_CONFIG).expect("alertmanager.yml is YAML");
    for receiver in doc["receivers"].as_sequence_mut().expect("receivers") {
        let name = receiver["name"].as_str().expect("receiver name").to_owned();
        let replacement = format!(
            "name: {name}\nwebhook_configs:\n  - url: http://{}/{name}\n    send_resolved: true\n",
            sink.addr
        );
        *receiver = serde_yaml::from_str(&replacement).expect("receiver");
    }
    serde_yaml::to_string(&doc).expect("serialize")
}

fn prometheus_config(certwatch: &Exporter, alertmanager: &Server) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files: [certwatch.rules.yml]\n\
         alerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: [\"{am}\"]\n\
         scrape_configs:\n  - job_name: certwatch\n    static_configs:\n      - targets: [\"{cw}\"]\n",
        am = alertmanager.addr,
        cw = certwatch.addr,
    )
}

/// The TLS servers; they run while this lives.
struct Endpoints {
    h: Harness,
    _servers: Vec<TlsServer>,
}

async fn endpoints() -> Endpoints {
    let root = Ca::root("certwatch e2e root");
    let inter = root.intermediate("certwatch e2e intermediate", Validity::days(365));
    let server = |validity: Validity| {
        let leaf = inter.leaf(&["localhost"], validity);
        ServerSpec::new(leaf.chain(&[&inter]), leaf.key())
    };
    let good_leaf = inter.leaf(&["localhost"], Validity::days(60));
    let good = TlsServer::start(ServerSpec::new(good_leaf.chain(&[&inter]), good_leaf.key())).await;
    let expiring = TlsServer::start(server(Validity::days(3))).await;
    let expired = TlsServer::start(server(Validity::expired())).await;
    // A leaf valid for 410 days with 10 left, sent with the root: a hygiene finding
    // (root_included), a weakness (lifetime_over_398_days) and a warning.
    let now = time::OffsetDateTime::now_utc();
    let messy_leaf = inter.leaf(
        &["localhost"],
        Validity {
            not_before: now - time::Duration::days(400),
            not_after: now + time::Duration::days(10),
        },
    );
    let messy = TlsServer::start(ServerSpec::new(
        messy_leaf.chain(&[&inter, &root]),
        messy_leaf.key(),
    ))
    .await;
    let mut mtls_spec = server(Validity::days(25));
    mtls_spec.client_auth = ClientAuth::Required(Ca::root("certwatch e2e client ca").cert);
    let mtls = TlsServer::start(mtls_spec).await;
    // A port that was just free: nothing listens there.
    let refused = format!("127.0.0.1:{}", prometheus::free_port());

    let h = Harness::new();
    h.write("root.pem", &root.pem);
    std::fs::create_dir(h.path().join("certs")).expect("mkdir");
    h.write("certs/good.pem", &good_leaf.chain_pem(&[&inter]));
    h.write("certs/empty.pem", "no certificate here\n");
    let mut yaml = String::from(
        "# Short interval and timeout: probes stay fresh for ProbesStale (3 intervals).\n\
         defaults:\n  interval: 2s\n  timeout: 1s\n  trust: none\n  tls: {ca_file: root.pem}\ntargets:\n",
    );
    for (name, address, team) in [
        ("good", good.address(), "web"),
        ("expiring", expiring.address(), "web"),
        ("expired", expired.address(), "web"),
        ("mtls", mtls.address(), "mail"),
        ("refused", refused, "mail"),
        ("messy", messy.address(), "web"),
    ] {
        let served = if name == "good" {
            ", served_from: certs/good.pem"
        } else {
            ""
        };
        yaml.push_str(&format!(
            "  - {{address: \"{address}\", name: {name}, server_name: localhost{served}, labels: {{team: {team}}}}}\n"
        ));
    }
    yaml.push_str("files:\n  - {name: disk, paths: [\"certs/*.pem\"], labels: {team: files}}\n");
    h.write("certwatch.yml", &yaml);
    Endpoints {
        h,
        _servers: vec![good, expiring, expired, mtls, messy],
    }
}

async fn prometheus_and_alertmanager_see_exactly_the_expected_alerts_and_every_dashboard_query_has_data(
) {
    let endpoints = endpoints().await;
    let dir = endpoints.h.path().to_owned();
    let result = tokio::task::spawn_blocking(move || run(&dir)).await;
    drop(endpoints);
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Everything after the TLS servers; blocking.
fn run(dir: &std::path::Path) {
    let started = Instant::now();
    println!("{}", prometheus::version(PROMETHEUS));
    println!("{}", prometheus::version(ALERTMANAGER));

    let sink = WebhookSink::start();
    let alertmanager = Server::alertmanager(&alertmanager_for_e2e(&sink));
    let certwatch = Exporter::start(dir, &["--config", "certwatch.yml"]);
    let (rules, shortened, alert_rules) = rules_for_e2e();
    println!("e2e copy of the rules: `for:` shortened on {shortened:?}");
    let prom = Server::prometheus(
        &prometheus_config(&certwatch, &alertmanager),
        &[("certwatch.rules.yml", &rules)],
    );
    let stack = Stack {
        prom: &prom,
        alertmanager: &alertmanager,
        certwatch: &certwatch,
    };

    // 1. Prometheus: exactly the expected alerts, all firing.
    let expected = expected_alerts();
    let alerts = stack.wait_for_prometheus_alerts(&expected);
    println!(
        "prometheus: the expected {} alerts fire after {:.1}s",
        expected.len(),
        started.elapsed().as_secs_f64()
    );
    check_annotations(&alerts);
    stack.check_rules_and_targets(alert_rules);

    // 2. Alertmanager: the same alerts arrived, routed and inhibited as configured.
    stack.wait_for_alertmanager_alerts(&expected);
    println!(
        "alertmanager: the same alerts arrived after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // 3. The dashboard's queries.
    stack.check_dashboard();

    // Still exactly those alerts, some evaluations later.
    let (keys, _, answer) = stack.prometheus_alerts();
    assert_eq!(
        keys,
        expected,
        "alerts changed at the end of the test:\n{answer}\n{}",
        stack.diagnostics()
    );
    // Neither server complained (rule evaluation, scraping, notification, config).
    for server in [&prom, &alertmanager] {
        let log = server.log();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
            .collect();
        assert!(
            errors.is_empty(),
            "{} logged errors or warnings:\n{}",
            server.name,
            errors.join("\n")
        );
    }
    println!(
        "done in {:.1}s; webhook requests received: {}",
        started.elapsed().as_secs_f64(),
        sink.requests.lock().expect("requests").len()
    );
}

struct Stack<'a> {
    prom: &'a Server,
    alertmanager: &'a Server,
    certwatch: &'a Exporter,
}

impl Stack<'_> {
    /// Prometheus' alerts: sorted keys (any state), whether all are firing, the answer.
    fn prometheus_alerts(&self) -> (Vec<String>, bool, Value) {
        let answer = self.prom.get_json("/api/v1/alerts");
        assert_eq!(answer["status"], "success", "{answer}");
        let alerts = answer["data"]["alerts"].as_array().expect("alerts");
        let mut keys: Vec<String> = alerts.iter().map(|a| alert_key(&a["labels"])).collect();
        keys.sort();
        let all_firing = alerts.iter().all(|a| a["state"] == "firing");
        (keys, all_firing, answer)
    }

    fn wait_for_prometheus_alerts(&self, expected: &[String]) -> Vec<Value> {
        let deadline = Instant::now() + ALERTS_TIMEOUT;
        loop {
            let (keys, all_firing, answer) = self.prometheus_alerts();
            if keys == expected && all_firing {
                return answer["data"]["alerts"].as_array().expect("alerts").clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "Prometheus did not show exactly the expected alerts, all firing, within {ALERTS_TIMEOUT:?}\n\
                     expected: {expected:#?}\nlast seen (any state): {keys:#?}\nlast answer: {}\n{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default(),
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every rule of the shipped file is loaded and evaluates without error (a join
    /// that matched many-to-many would show here), and certwatch's target is up.
    fn check_rules_and_targets(&self, alert_rules: usize) {
        let answer = self.prom.get_json("/api/v1/rules");
        let mut alerting = 0;
        for group in answer["data"]["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                if rule["type"] == "alerting" {
                    alerting += 1;
                }
                assert_eq!(
                    rule["health"], "ok",
                    "rule {} is not healthy: {}",
                    rule["name"], rule["lastError"]
                );
            }
        }
        assert_eq!(alerting, alert_rules, "alerting rules loaded: {answer}");
        let targets = self.prom.get_json("/api/v1/targets");
        let active = targets["data"]["activeTargets"]
            .as_array()
            .expect("targets");
        assert_eq!(active.len(), 1, "{targets}");
        assert_eq!(active[0]["health"], "up", "{targets}");
    }

    fn wait_for_alertmanager_alerts(&self, expected: &[String]) {
        let deadline = Instant::now() + ALERTMANAGER_TIMEOUT;
        loop {
            let answer = self.alertmanager.get_json("/api/v2/alerts");
            let alerts = answer.as_array().expect("alerts").clone();
            let mut keys: Vec<String> = alerts.iter().map(|a| alert_key(&a["labels"])).collect();
            keys.sort();
            let problems = if keys == expected {
                alertmanager_problems(&alerts)
            } else {
                vec![format!("alerts: {keys:#?}")]
            };
            if problems.is_empty() {
                for a in &alerts {
                    println!(
                        "  alertmanager: {} -> {} ({})",
                        alert_key(&a["labels"]),
                        a["receivers"][0]["name"],
                        a["status"]["state"]
                    );
                }
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "Alertmanager did not show the expected alerts within {ALERTMANAGER_TIMEOUT:?}\n\
                     expected: {expected:#?}\nproblems: {problems:#?}\nlast answer: {}\n{}",
                    serde_json::to_string_pretty(&answer).unwrap_or_default(),
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn check_dashboard(&self) {
        let dashboard: Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");

        // The variables' queries, as Grafana runs label_values(expr, label).
        let mut variable_values = BTreeMap::new();
        for var in dashboard["templating"]["list"]
            .as_array()
            .expect("variables")
        {
            if var["type"] != "query" {
                continue;
            }
            let name = var["name"].as_str().expect("variable name");
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .expect("variable query");
            let (expr, label) = label_values(query)
                .unwrap_or_else(|| panic!("variable {name}: not label_values(...): {query}"));
            let path = format!(
                "/api/v1/label/{label}/values?match[]={}",
                encode(&grafana_substitute(&expr))
            );
            let answer = self.prom.get_json(&path);
            assert_eq!(answer["status"], "success", "variable {name}: {answer}");
            let values: Vec<&str> = answer["data"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_str().expect("string"))
                .collect();
            println!("dashboard variable {name}: {values:?}");
            variable_values.insert(name.to_owned(), values.join(","));
        }
        assert_eq!(
            variable_values.get("team").map(String::as_str),
            Some("files,mail,web"),
            "the files source's team too"
        );
        assert_eq!(
            variable_values.get("target").map(String::as_str),
            Some("disk,expired,expiring,good,messy,mtls,refused"),
            "the files source too"
        );

        // Every panel's queries.
        let mut panels = Vec::new();
        walk(&dashboard["panels"], &mut panels);
        let mut ran = 0;
        let mut failures = Vec::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                let ref_id = target["refId"].as_str().unwrap_or("?");
                let query = grafana_substitute(expr);
                let instant = target["instant"] == true;
                // Grafana runs a range query unless told `instant` only.
                let range = target["range"] == true || !instant;
                let mut kinds = Vec::new();
                if instant {
                    kinds.push("instant");
                }
                if range {
                    kinds.push("range");
                }
                for kind in kinds {
                    ran += 1;
                    let answer = self.query(kind, &query);
                    let result = answer["data"]["result"].as_array();
                    let size = result.map_or(0, Vec::len);
                    let summary = summarize(kind, &answer);
                    println!(
                        "dashboard panel {title:?} {ref_id} ({kind}): {size} series {summary}"
                    );
                    if answer["status"] != "success" {
                        failures.push(format!("{title:?} {ref_id} ({kind}): {answer}"));
                        continue;
                    }
                    if answer.get("warnings").is_some() {
                        failures.push(format!("{title:?} {ref_id} ({kind}) warns: {answer}"));
                    }
                    if size == 0 && !EMPTY_PANELS.contains(&(title, ref_id)) {
                        failures.push(format!("{title:?} {ref_id} ({kind}): no data\n{query}"));
                        continue;
                    }
                    if let Some(problem) = expected_panel_data(title, ref_id, &answer) {
                        failures.push(format!("{title:?} {ref_id} ({kind}): {problem}\n{answer}"));
                    }
                }
            }
        }
        assert!(ran > 0, "no query found in the dashboard");
        assert!(
            failures.is_empty(),
            "dashboard queries failed:\n{}\n{}",
            failures.join("\n\n"),
            self.diagnostics()
        );
        println!("dashboard: {ran} queries answered with data");
    }

    /// `kind` "instant" (`/api/v1/query` now) or "range" (`/api/v1/query_range` over
    /// the last 30 s, step 1 s).
    fn query(&self, kind: &str, query: &str) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let path = match kind {
            "instant" => format!("/api/v1/query?query={}&time={now:.3}", encode(query)),
            _ => format!(
                "/api/v1/query_range?query={}&start={:.3}&end={now:.3}&step=1",
                encode(query),
                now - 30.0
            ),
        };
        match prometheus::get(self.prom.addr, &path) {
            Ok((_, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")),
            Err(e) => panic!("{}", self.prom.report(&format!("GET {path}: {e}"))),
        }
    }

    /// What helps to see why: logs and certwatch's metrics.
    fn diagnostics(&self) -> String {
        let metrics = self.certwatch.get("/metrics").1;
        let metrics: String = metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let targets = prometheus::get(self.prom.addr, "/api/v1/targets")
            .map(|(_, b)| b)
            .unwrap_or_else(|e| e);
        format!(
            "--- prometheus /api/v1/targets\n{targets}\n{}\n{}\n--- certwatch /metrics\n{metrics}",
            self.prom.report("--- prometheus"),
            self.alertmanager.report("--- alertmanager"),
        )
    }
}

/// What is wrong with Alertmanager's alerts (the keys already match): every alert is
/// routed to the receiver of its severity, and ChainNotVerified{reason="expired"} is
/// inhibited by CertificateExpired (the shipped inhibit rule) while the others are active.
fn alertmanager_problems(alerts: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for a in alerts {
        let key = alert_key(&a["labels"]);
        let severity = a["labels"]["severity"].as_str().unwrap_or("?");
        let receivers: Vec<&str> = a["receivers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str())
            .collect();
        // Findings (severity info) fall through to the default receiver.
        let want = match severity {
            "info" => "certwatch-default".to_owned(),
            other => format!("certwatch-{other}"),
        };
        if receivers != [want.as_str()] {
            problems.push(format!("{key}: receivers {receivers:?}, want [{want}]"));
        }
        let inhibited =
            a["labels"]["alertname"] == "ChainNotVerified" && a["labels"]["reason"] == "expired";
        let state = a["status"]["state"].as_str().unwrap_or("?");
        let inhibited_by = a["status"]["inhibitedBy"].as_array().map_or(0, Vec::len);
        if inhibited && (state != "suppressed" || inhibited_by == 0) {
            problems.push(format!(
                "{key}: state {state}, inhibited by {inhibited_by}; want suppressed by CertificateExpired"
            ));
        }
        if !inhibited && state != "active" {
            problems.push(format!("{key}: state {state}, want active"));
        }
    }
    problems
}

/// Prometheus rendered every annotation template without error, and HandshakeFailing
/// looked up the failure's stage and reason.
fn check_annotations(alerts: &[Value]) {
    for a in alerts {
        let key = alert_key(&a["labels"]);
        for (name, text) in a["annotations"].as_object().expect("annotations") {
            let text = text.as_str().unwrap_or_default();
            assert!(
                !text.contains("error expanding template") && !text.contains("<no value>"),
                "{key}: annotation {name}: {text}"
            );
        }
        let description = a["annotations"]["description"].as_str().unwrap_or_default();
        let want = match a["labels"]["target"].as_str() {
            Some("mtls") if a["labels"]["alertname"] == "HandshakeFailing" => {
                Some("127.0.0.1: stage handshake, reason handshake_failure")
            }
            Some("refused") => Some("127.0.0.1: stage connect, reason refused"),
            _ => None,
        };
        if let Some(want) = want {
            assert!(description.contains(want), "{key}: {description}");
        }
    }
}

/// Panels this scenario leaves empty (no server here speaks only legacy TLS).
const EMPTY_PANELS: &[(&str, &str)] = &[("Legacy TLS only", "A")];

/// Per panel (title, refId): what this scenario puts there, checked beyond "has data".
/// Panels not listed here are only checked for data.
fn expected_panel_data(title: &str, ref_id: &str, answer: &Value) -> Option<String> {
    let result = answer["data"]["result"].as_array()?;
    let instant = answer["data"]["resultType"] == "vector";
    // (series, value of the single series in an instant answer)
    let (series, value): (usize, Option<f64>) = match (title, ref_id) {
        // Leaves of `expiring` (3 d) and `expired`, by fingerprint.
        ("Certificates that count, expired or expiring within 7 days", "A") => (1, Some(2.0)),
        // ... and `messy`'s leaf (10 d); not `mtls`' (25 d).
        ("Certificates that count, expired or expiring within 21 days", "A") => (1, Some(3.0)),
        // `mtls` and `refused`.
        ("Failing handshakes", "A") => (1, Some(2.0)),
        // `expired` (`refused` has no certificate).
        ("Invalid chains", "A") => (1, Some(1.0)),
        // Leaf and intermediate of the four servers that presented a chain,
        // `messy`'s leaf, intermediate and root, and the file certs/good.pem's leaf
        // and intermediate.
        ("Certificates", _) => (13, None),
        // certs/empty.pem.
        ("Unreadable certificate files", "A") => (1, Some(1.0)),
        ("Certificate files not read", "A") => (1, None),
        // `good` serves what its served_from file holds.
        ("Renewed on disk, not served", "A") => (1, Some(0.0)),
        ("Served versus on disk", "A") => (1, Some(1.0)),
        ("Served versus on disk", "B") => (1, None),
        ("Handshake success", "A") | ("Probe duration", "A") => (6, None),
        // Only completed handshakes have certwatch_tls_info; rustls negotiates TLS 1.3.
        ("TLS versions in use", "A") => (1, Some(4.0)),
        ("TLS version and cipher", "A") => (4, None),
        // `expired`: reason expired.
        ("Verification errors", "A") => (1, Some(1.0)),
        // `mtls` (handshake/handshake_failure) and `refused` (connect/refused).
        ("Handshake failures", "A") => (2, None),
        // No legacy-only server here (tests/interop/nginx_edges.rs has them).
        ("Legacy TLS only", "A") => (0, None),
        // `messy`: root_included.
        ("Chain issues", "A") => (1, Some(1.0)),
        // `messy`'s leaf: lifetime_over_398_days.
        ("Certificate weaknesses", "A") => (1, Some(1.0)),
        _ => return None,
    };
    if result.len() != series {
        return Some(format!("{} series, want {series}", result.len()));
    }
    if let (true, Some(want)) = (instant, value) {
        let got: f64 = result[0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN);
        if got != want {
            return Some(format!("value {got}, want {want}"));
        }
    }
    None
}

/// A short account of an answer: the single value, or the series count.
fn summarize(kind: &str, answer: &Value) -> String {
    let Some(result) = answer["data"]["result"].as_array() else {
        return format!("(status {})", answer["status"]);
    };
    if kind == "instant" && result.len() == 1 {
        let value = result[0]["value"][1].as_str().unwrap_or("?");
        let labels = result[0]["metric"].to_string();
        return format!("= {value} {labels}");
    }
    String::new()
}

/// Every panel, including those inside rows.
fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
    for panel in panels.as_array().into_iter().flatten() {
        out.push(panel);
        walk(&panel["panels"], out);
    }
}

/// `label_values(EXPR, LABEL)` -> (EXPR, LABEL).
fn label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (expr, label) = inner.rsplit_once(',')?;
    Some((expr.trim().to_owned(), label.trim().to_owned()))
}

/// Grafana's variables replaced as Grafana would for "All": the multi-value label
/// variables (`$team`, `$target`, `${target}`, `${target:regex}`, `[[target]]`) by their
/// `allValue` `.*`, and the built-in intervals by values that suit a 1 s scrape
/// interval and a short history. Panics on a variable it does not know.
fn grafana_substitute(expr: &str) -> String {
    let builtin = |name: &str| -> Option<&'static str> {
        Some(match name {
            "__rate_interval" => "15s",
            "__interval" => "5s",
            "__interval_ms" => "5000",
            "__range" => "30s",
            "__range_s" => "30",
            "__range_ms" => "30000",
            _ => return None,
        })
    };
    let label_variable = |name: &str| matches!(name, "team" | "target");
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (name, len) = if let Some(body) = tail.strip_prefix("${") {
            let end = body.find('}').expect("unclosed ${");
            let name = body[..end].split(':').next().unwrap_or_default();
            (name, end + 3)
        } else if let Some(body) = tail.strip_prefix("[[") {
            match body.find("]]") {
                Some(end) => (&body[..end], end + 4),
                None => ("", 0),
            }
        } else if let Some(body) = tail.strip_prefix('$') {
            let end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            (&body[..end], end + 1)
        } else {
            ("", 0)
        };
        if len == 0 {
            // A plain '[' (a range selector).
            out.push_str(&tail[..1]);
            rest = &tail[1..];
            continue;
        }
        if label_variable(name) {
            out.push_str(".*");
        } else if let Some(value) = builtin(name) {
            out.push_str(value);
        } else {
            panic!("unknown Grafana variable {:?} in {expr}", &tail[..len]);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}
