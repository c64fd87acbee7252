//! Day-to-day operation through the real binary: reload by SIGHUP and POST, `/probe`,
//! the status page, and shutdown.

mod support;

use certwatch::metrics::names::*;
use support::exporter::Exporter;
use support::hostile::{Behaviour, HostileServer};
use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::{Harness, Scrape};

struct Fixture {
    h: Harness,
    a: TlsServer,
    b: TlsServer,
}

async fn fixture() -> Fixture {
    let root = Ca::root("reload root");
    let inter = root.intermediate("reload intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(60));
    let spec = ServerSpec::new(leaf.chain(&[&inter]), leaf.key());
    let a = TlsServer::start(spec.clone()).await;
    let b = TlsServer::start(spec).await;
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    Fixture { h, a, b }
}

fn config(targets: &[(&str, &TlsServer)]) -> String {
    let mut yaml = String::from(
        "defaults:\n  interval: 1h\n  trust: none\n  tls: {ca_file: root.pem}\nmodules:\n  local:\n    trust: none\n    tls: {ca_file: root.pem}\ntargets:\n",
    );
    for (name, server) in targets {
        yaml.push_str(&format!(
            "  - {{address: \"{}\", name: \"{name}\", server_name: localhost}}\n",
            server.address()
        ));
    }
    yaml
}

fn scrape(exporter: &Exporter) -> Scrape {
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    Scrape::parse(&body)
}

/// Starts the exporter and waits until `count` targets have been probed.
fn start(dir: &std::path::Path, count: usize) -> Exporter {
    let exporter = Exporter::start(dir, &["--config", "certwatch.yml", "--log-level", "debug"]);
    for _ in 0..count {
        exporter.wait_for_log("probe succeeded");
    }
    exporter
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_keeps_unchanged_targets_drops_removed_ones_and_probes_added_ones() {
    let f = fixture().await;
    f.h.write("certwatch.yml", &config(&[("a", &f.a), ("gone", &f.b)]));
    let dir = f.h.path().to_owned();
    let h = &f.h;
    let b_address = f.b.address();
    let a_address = f.a.address();
    let exporter = tokio::task::spawn_blocking(move || start(&dir, 2))
        .await
        .unwrap();
    let before = scrape(&exporter);
    let a_probed_at = before.value(LAST_PROBE_TIMESTAMP, &[("target", "a")]);
    assert!(before.has(HANDSHAKE_SUCCESS, &[("target", "gone")]));

    h.write(
        "certwatch.yml",
        &config(&[("a", &f.a)]).replace(
            "targets:\n",
            &format!(
                "targets:\n  - {{address: \"{b_address}\", name: new, server_name: localhost}}\n"
            ),
        ),
    );
    let exporter = tokio::task::spawn_blocking(move || {
        exporter.signal("HUP");
        exporter.wait_for_logs(&["configuration reloaded", "probe succeeded"]);
        exporter
    })
    .await
    .unwrap();
    let after = scrape(&exporter);
    assert_eq!(
        after.value(LAST_PROBE_TIMESTAMP, &[("target", "a")]),
        a_probed_at,
        "unchanged target not probed again"
    );
    assert_eq!(
        after.value(PROBES_TOTAL, &[("target", "a"), ("result", "success")]),
        1.0
    );
    assert!(
        !after.has(HANDSHAKE_SUCCESS, &[("target", "gone")]),
        "removed target's series are gone"
    );
    assert_eq!(
        after.value(PROBE_SUCCESS, &[("target", "new")]),
        1.0,
        "added target probed at once"
    );
    assert_eq!(after.value(TARGETS, &[]), 2.0);
    assert_eq!(after.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);

    // A bad file keeps the running configuration and says so.
    h.write("certwatch.yml", "targets:\n  - address: nowhere\n");
    let (status, body) = tokio::task::spawn_blocking(move || {
        let answer = exporter.request("POST", "/-/reload");
        let failed = scrape(&exporter);
        assert_eq!(failed.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 0.0);
        assert!(
            failed.has(PROBE_SUCCESS, &[("target", "a")]),
            "old targets keep running"
        );
        assert_eq!(failed.value(TARGETS, &[]), 2.0);
        assert!(exporter.stop().success());
        answer
    })
    .await
    .unwrap();
    assert_eq!(status, 500);
    assert!(
        body.contains("certwatch.yml:2:14: targets[0].address: invalid address \"nowhere\""),
        "{body}"
    );
    let _ = a_address;
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_endpoint_probes_one_target_with_a_module_and_rejects_bad_requests() {
    let f = fixture().await;
    f.h.write(
        "certwatch.yml",
        "modules:\n  local:\n    trust: none\n    tls: {ca_file: root.pem}\nprobe:\n  allow: [\"127.0.0.1:*\"]\n",
    );
    let dir = f.h.path().to_owned();
    let a = f.a.address();
    tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(&dir, &["--config", "certwatch.yml"]);
        let (status, body) = exporter.get(&format!(
            "/probe?target={a}&module=local&server_name=localhost"
        ));
        assert_eq!(status, 200, "{body}");
        let probe = Scrape::parse(&body);
        assert_eq!(
            probe.value(PROBE_SUCCESS, &[("target", a.as_str())]),
            1.0,
            "{body}"
        );
        assert!(!probe.has(BUILD_INFO, &[]), "only the probe's own metrics");
        // Without the module, the default webpki roots do not know the test CA.
        let (_, body) = exporter.get(&format!("/probe?target={a}&server_name=localhost"));
        assert_eq!(
            Scrape::parse(&body).label(VERIFY_ERROR_INFO, &[], "reason"),
            "unknown_issuer"
        );

        let (status, body) = exporter.get("/probe");
        assert_eq!(
            (status, body.contains("`target` parameter is missing")),
            (400, true),
            "{body}"
        );
        let (status, body) = exporter.get("/probe?target=no-port");
        assert_eq!(
            (status, body.contains("the port is missing")),
            (400, true),
            "{body}"
        );
        let (status, body) = exporter.get(&format!("/probe?target={a}&module=nope"));
        assert_eq!(
            (status, body.contains("unknown module")),
            (400, true),
            "{body}"
        );
        let (status, _) = exporter.get("/probe?target=example.com:443");
        assert_eq!(status, 403, "outside probe.allow");
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_endpoint_honours_the_scrape_timeout_header() {
    let silent = HostileServer::start(Behaviour::Silent).await;
    let h = Harness::new();
    let dir = h.path().to_owned();
    let addr = silent.addr.to_string();
    tokio::task::spawn_blocking(move || {
        let exporter = Exporter::start(&dir, &[]);
        let mut stream = std::net::TcpStream::connect(exporter.addr).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET /probe?target={addr} HTTP/1.0\r\nX-Prometheus-Scrape-Timeout-Seconds: 1.5\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let probe = Scrape::parse(body);
        assert_eq!(probe.label(PROBE_FAILURE_INFO, &[], "reason"), "timeout");
        let took = probe.value(PROBE_DURATION, &[]);
        assert!(
            took < 1.5,
            "the probe ended before Prometheus' own timeout: {took}s"
        );
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_page_lists_targets_worst_first_and_escapes_markup() {
    let f = fixture().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let yaml = config(&[("good", &f.a)])
        + &format!("  - {{address: \"{closed_addr}\", name: \"<b>bad</b>\"}}\n");
    f.h.write("certwatch.yml", &yaml);
    let dir = f.h.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter =
            Exporter::start(&dir, &["--config", "certwatch.yml", "--log-level", "debug"]);
        exporter.wait_for_logs(&["probe succeeded", "probe failed"]);
        let (status, page) = exporter.get("/");
        assert_eq!(status, 200);
        assert!(
            !page.contains("<b>bad</b>"),
            "markup from the configuration is escaped"
        );
        let bad = page
            .find("&lt;b&gt;bad&lt;/b&gt;")
            .expect("failing target listed");
        let good = page.find(">good<").expect("good target listed");
        assert!(bad < good, "worst first");
        assert!(page.contains("connect: refused"));
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_uses_the_configured_thresholds() {
    let f = fixture().await;
    // The leaf has 60 days left: a warning under a 90-day warning threshold.
    let yaml = format!(
        "thresholds: {{warning: 90d, critical: 30d}}\n{}",
        config(&[("good", &f.a)])
    );
    f.h.write("certwatch.yml", &yaml);
    let dir = f.h.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter =
            Exporter::start(&dir, &["--config", "certwatch.yml", "--log-level", "debug"]);
        exporter.wait_for_logs(&["probe succeeded"]);
        let (status, page) = exporter.get("/");
        assert_eq!(status, 200);
        assert!(
            page.contains("<td>good</td><td>127.0.0.1</td><td>expiring</td>"),
            "{page}"
        );
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_a_probe_under_way_and_exits_0() {
    let silent = HostileServer::start(Behaviour::Silent).await;
    let h = Harness::new();
    h.write(
        "certwatch.yml",
        "defaults:\n  timeout: 60s\n  interval: 1h\n",
    );
    let dir = h.path().to_owned();
    let addr = silent.addr.to_string();
    tokio::task::spawn_blocking(move || {
        let silent = silent;
        let exporter = Exporter::start(&dir, &["--config", "certwatch.yml"]);
        let client = exporter.addr;
        let probe = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(client).unwrap();
            write!(stream, "GET /probe?target={addr} HTTP/1.0\r\n\r\n").unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        });
        // The silent server holds the probe in its handshake until the 60 s timeout.
        silent_connection_seen(&silent);
        let started = tokio::time::Instant::now();
        let status = exporter.stop();
        assert!(status.success(), "{status:?}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "stopped long before the probe's 60 s timeout"
        );
        let answer = probe.join().unwrap();
        assert!(
            answer.starts_with("HTTP/1.0 503") && answer.ends_with("certwatch is shutting down\n"),
            "the probe under way was cancelled: {answer}"
        );
    })
    .await
    .unwrap();
}

/// Blocks until the silent server has accepted a connection.
fn silent_connection_seen(server: &HostileServer) {
    server
        .accepted
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the probe connected");
}

/// A loopback port with nothing listening (it was free a moment ago).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_limits_answer_403_429_and_503_follow_reloads_and_are_audited() {
    let silent = HostileServer::start(Behaviour::Silent).await;
    let h = Harness::new();
    let limits = |rate: &str, max: usize| {
        format!(
            "defaults:\n  interval: 1h\n  timeout: 20s\nprobe:\n  allow: [\"127.0.0.1:*\"]\n{rate}  max_in_flight: {max}\n"
        )
    };
    h.write("certwatch.yml", &limits("  rate_limit: 1/m\n", 1));
    let dir = h.path().to_owned();
    let silent_addr = silent.addr.to_string();
    tokio::task::spawn_blocking(move || {
        let silent = silent;
        let exporter = Exporter::start(&dir, &["--config", "certwatch.yml"]);
        let is_local = |json: &serde_json::Value| {
            json["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("127.0.0.1:"))
        };

        // Outside probe.allow: 403. This takes the client's one request per minute.
        let (status, body) = exporter.get("/probe?target=example.com:443");
        assert_eq!(status, 403, "{body}");
        let event = exporter.wait_for_audit("probe_refused", |e| e["reason"] == "not_allowed");
        assert_eq!(event["status"], 403);
        assert_eq!(event["probe_target"], "example.com:443");
        assert!(is_local(&event), "{event}");

        // Over probe.rate_limit: 429 with Retry-After, in whole seconds.
        let (status, head, body) =
            exporter.request_with_head("GET", &format!("/probe?target={silent_addr}"));
        assert_eq!(status, 429, "{head}\n{body}");
        assert!(head.contains("\r\nretry-after: 60"), "{head}");
        let event = exporter.wait_for_audit("probe_refused", |e| e["reason"] == "rate_limited");
        assert_eq!(event["status"], 429);
        assert!(is_local(&event), "{event}");

        // A reload lifts the rate limit; max_in_flight stays 1. The reload is audited
        // with who asked.
        h.write("certwatch.yml", &limits("", 1));
        let (status, body) = exporter.request("POST", "/-/reload");
        assert_eq!(status, 200, "{body}");
        let event = exporter.wait_for_audit("config_reload", |e| e["result"] == "success");
        assert!(
            event["who"]
                .as_str()
                .is_some_and(|w| w.starts_with("127.0.0.1:")),
            "{event}"
        );

        // One probe held by a silent server fills max_in_flight: the next gets 503.
        let client = exporter.addr;
        let held_target = silent_addr.clone();
        let held = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(client).unwrap();
            write!(stream, "GET /probe?target={held_target} HTTP/1.0\r\n\r\n").unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        });
        silent_connection_seen(&silent);
        let refused = format!("127.0.0.1:{}", closed_port());
        let (status, body) = exporter.get(&format!("/probe?target={refused}"));
        assert_eq!(status, 503, "{body}");
        let event =
            exporter.wait_for_audit("probe_refused", |e| e["reason"] == "too_many_in_flight");
        assert_eq!(event["probe_target"], refused.as_str());

        // Raising max_in_flight by a reload takes effect at once, the held probe still
        // under way.
        h.write("certwatch.yml", &limits("", 2));
        let (status, body) = exporter.request("POST", "/-/reload");
        assert_eq!(status, 200, "{body}");
        let (status, body) = exporter.get(&format!("/probe?target={refused}"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            Scrape::parse(&body).label(PROBE_FAILURE_INFO, &[], "reason"),
            "refused"
        );
        assert!(exporter.stop().success());
        let answer = held.join().unwrap();
        assert!(answer.starts_with("HTTP/1.0 503"), "{answer}");
    })
    .await
    .unwrap();
}

#[test]
fn a_refused_reload_leaves_reloading_working_and_the_metric_truthful() {
    let h = Harness::new();
    let port = closed_port();
    let valid = |names: &[&str]| {
        let mut yaml = String::from("targets:\n");
        for name in names {
            yaml.push_str(&format!(
                "  - {{address: \"127.0.0.1:{port}\", name: {name}}}\n"
            ));
        }
        yaml
    };
    h.write("certwatch.yml", &valid(&["a"]));
    let exporter = Exporter::start(h.path(), &["--config", "certwatch.yml"]);
    assert_eq!(
        scrape(&exporter).value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        1.0
    );

    // A value that once passed `config check` and then panicked the reload task.
    h.write(
        "certwatch.yml",
        &format!("concurrency: 2305843009213693952\n{}", valid(&["a"])),
    );
    let (status, body) = exporter.request("POST", "/-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("certwatch.yml:1:14"), "{body}");
    assert_eq!(
        scrape(&exporter).value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        0.0
    );
    exporter.signal("HUP");
    exporter.wait_for_audit("config_reload", |e| {
        e["result"] == "failure" && e["who"] == "SIGHUP"
    });
    assert_eq!(
        scrape(&exporter).value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]),
        0.0
    );

    // The next good file loads, by either path.
    h.write("certwatch.yml", &valid(&["a", "b"]));
    let (status, body) = exporter.request("POST", "/-/reload");
    assert_eq!(status, 200, "{body}");
    let after = scrape(&exporter);
    assert_eq!(after.value(CONFIG_LAST_RELOAD_SUCCESSFUL, &[]), 1.0);
    assert_eq!(after.value(TARGETS, &[]), 2.0);
    h.write("certwatch.yml", &valid(&["b"]));
    exporter.signal("HUP");
    exporter.wait_for_audit("config_reload", |e| {
        e["result"] == "success" && e["who"] == "SIGHUP"
    });
    assert_eq!(scrape(&exporter).value(TARGETS, &[]), 1.0);
    assert!(exporter.stop().success());
}
