//! certwatch's own endpoint secured by `--web.config.file`, through the real binary and
//! real clients: curl with and without a client certificate and credentials for every
//! `client_auth_type`; `openssl s_client` seeing a rotated certificate without a
//! restart, and a broken new file keeping the old one in service; `certwatch-self`
//! reporting the served certificate; and the audit events. (What needs no client, a
//! bad web configuration stopping start-up, is in `tests/web_tls.rs`.)
//!
//! Needs the Debian packages `curl` and `openssl`; without them the tests are ignored,
//! and fail under `CI=true` (see `support/tools.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use certwatch::metrics::names::*;
use tokio::time::Instant;

use crate::support::curl::Curl;
use crate::support::exporter::Exporter;
use crate::support::openssl::s_client;
use crate::support::pki::{Ca, Leaf, Validity};
use crate::support::tools::{trial, Trial, CURL, OPENSSL};
use crate::support::{Harness, Scrape};

pub fn trials() -> Vec<Trial> {
    vec![
        trial!(
            &[CURL],
            each_client_auth_type_admits_exactly_the_clients_it_should_and_basic_auth_applies_after
        ),
        trial!(&[CURL], http2_is_offered_over_tls_unless_switched_off),
        trial!(&[CURL], min_version_and_client_allowed_sans_are_enforced),
        trial!(
            &[CURL, OPENSSL],
            a_rotated_certificate_is_served_without_restart_and_a_broken_one_keeps_the_old
        ),
    ]
}

/// The basic-auth user of every test, and its password.
const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-secret-4711";
const WRONG_PASSWORD: &str = "guess-0815";

/// The longest wait for a rotated certificate to be served.
const ROTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The certificates of a test, written into its directory.
struct Pki {
    h: Harness,
    server_ca: Ca,
}

impl Pki {
    fn new() -> Pki {
        let h = Harness::new();
        let server_ca = Ca::root("certwatch web test server root");
        h.write("ca.pem", &server_ca.pem);
        let leaf = server_ca.leaf(&["localhost"], Validity::days(40));
        write_pair(&h, "server", &leaf);
        let client_ca = Ca::root("certwatch web test client root");
        h.write("client-ca.pem", &client_ca.pem);
        write_pair(&h, "client", &client_ca.client(USER));
        let stranger_ca = Ca::root("somebody else's root");
        write_pair(&h, "stranger", &stranger_ca.client(USER));
        h.write("certwatch.yml", "defaults:\n  interval: 1h\n");
        Pki { h, server_ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.h.path().join(name)
    }

    fn start(&self, web_yml: &str) -> Exporter {
        self.h.write("web.yml", web_yml);
        Exporter::start(
            self.h.path(),
            &["--config", "certwatch.yml", "--web.config.file", "web.yml"],
        )
    }

    fn curl(&self) -> Curl {
        Curl::new(&self.path("ca.pem"))
    }
}

fn write_pair(h: &Harness, name: &str, leaf: &Leaf) {
    h.write(&format!("{name}.pem"), &leaf.cert_pem);
    h.write(&format!("{name}.key"), &leaf.key_pem);
}

/// Replaces `name` in `dir` by an atomic rename, as certbot and cert-manager do.
fn replace_atomically(dir: &Path, name: &str, contents: &str) {
    let next = dir.join(format!(".{name}.new"));
    std::fs::write(&next, contents).expect("write");
    std::fs::rename(&next, dir.join(name)).expect("rename");
}

fn web_yml(client_auth_type: &str) -> String {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let ca = if client_auth_type == "NoClientCert" {
        ""
    } else {
        "  client_ca_file: client-ca.pem\n"
    };
    format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: {client_auth_type}\n{ca}\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
         basic_auth_users:\n  {USER}: \"{hash}\"\n"
    )
}

/// What a client gets through TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tls {
    /// The handshake completes; HTTP (and so basic auth) decides.
    Http,
    /// The handshake is refused: no HTTP answer at all.
    Refused,
}
use Tls::{Http, Refused};

fn each_client_auth_type_admits_exactly_the_clients_it_should_and_basic_auth_applies_after() {
    let pki = Pki::new();
    // client_auth_type: without a certificate, with one from client-ca.pem, with one
    // from another CA.
    let table = [
        ("NoClientCert", Http, Http, Http),
        ("RequestClientCert", Http, Http, Http),
        ("RequireAnyClientCert", Refused, Http, Http),
        ("VerifyClientCertIfGiven", Http, Http, Refused),
        ("RequireAndVerifyClientCert", Refused, Http, Refused),
    ];
    let credentials = [
        (None, 401),
        (Some(PASSWORD), 200),
        (Some(WRONG_PASSWORD), 401),
    ];
    for (auth_type, without, trusted, stranger) in table {
        let exporter = pki.start(&web_yml(auth_type));
        for (certificate, expected) in [
            (None, without),
            (Some("client"), trusted),
            (Some("stranger"), stranger),
        ] {
            for (password, status) in credentials {
                let mut curl = pki.curl();
                if let Some(name) = certificate {
                    curl = curl.client_cert(
                        &pki.path(&format!("{name}.pem")),
                        &pki.path(&format!("{name}.key")),
                    );
                }
                if let Some(password) = password {
                    curl = curl.basic(USER, password);
                }
                let answer = curl.run(exporter.addr, "/metrics");
                let case = format!(
                    "{auth_type}, certificate {certificate:?}, password {password:?}: {answer:#?}"
                );
                match expected {
                    Refused => assert_eq!(answer.status, 0, "refused in the handshake: {case}"),
                    Http => {
                        assert_eq!(answer.status, status, "{case}");
                        assert!(answer.head.contains("x-frame-options: deny"), "{case}");
                        if status == 401 {
                            assert!(
                                answer
                                    .head
                                    .contains("www-authenticate: basic realm=\"certwatch\""),
                                "{case}"
                            );
                        } else {
                            assert!(answer.body.contains(BUILD_INFO), "{case}");
                        }
                    }
                }
            }
        }
        let (status, logs) = exporter.stop_with_logs();
        assert!(status.success(), "{status:?}");
        check_audit(auth_type, &logs, without == Refused, stranger == Refused);
    }
}

/// The audit events of one run of the table: failed logins with the user and never a
/// password; refused client certificates.
fn check_audit(auth_type: &str, logs: &[String], none_refused: bool, stranger_refused: bool) {
    for line in logs {
        assert!(
            !line.contains(PASSWORD) && !line.contains(WRONG_PASSWORD),
            "{auth_type}: a password was logged: {line}"
        );
    }
    let events: Vec<serde_json::Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["audit"] == true && j["module"] == "certwatch::audit")
        .filter(|j| j["event"] == "auth_failure")
        .collect();
    let count = |method: &str, reason: &str| {
        events
            .iter()
            .filter(|e| e["method"] == method && e["reason"] == reason)
            .inspect(|e| {
                assert!(
                    e["client"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("127.0.0.1:")),
                    "{e}"
                );
            })
            .count()
    };
    assert!(
        count("basic", "wrong_password") >= 1,
        "{auth_type}: wrong passwords are audited: {events:#?}"
    );
    assert!(events
        .iter()
        .filter(|e| e["method"] == "basic")
        .all(|e| e["user"] == USER));
    assert_eq!(
        count("client_certificate", "no_client_certificate") > 0,
        none_refused,
        "{auth_type}: {events:#?}"
    );
    assert_eq!(
        count("client_certificate", "client_certificate_rejected") > 0,
        stranger_refused,
        "{auth_type}: {events:#?}"
    );
}

fn http2_is_offered_over_tls_unless_switched_off() {
    let pki = Pki::new();
    let exporter = pki.start(&web_yml("NoClientCert"));
    let answer = pki
        .curl()
        .http2()
        .basic(USER, PASSWORD)
        .run(exporter.addr, "/-/healthy");
    assert!(answer.head.starts_with("http/2 200"), "{answer:#?}");
    drop(exporter);
    let exporter = pki.start(&web_yml("NoClientCert").replace(
        "http_server_config:\n",
        "http_server_config:\n  http2: false\n",
    ));
    let answer = pki
        .curl()
        .http2()
        .basic(USER, PASSWORD)
        .run(exporter.addr, "/-/healthy");
    assert!(answer.head.starts_with("http/1.1 200"), "{answer:#?}");
}

fn min_version_and_client_allowed_sans_are_enforced() {
    let pki = Pki::new();
    let tls13 = web_yml("NoClientCert").replace(
        "  client_auth_type: NoClientCert\n",
        "  client_auth_type: NoClientCert\n  min_version: TLS13\n",
    );
    let exporter = pki.start(&tls13);
    let answer = pki
        .curl()
        .basic(USER, PASSWORD)
        .run(exporter.addr, "/-/healthy");
    assert_eq!(answer.status, 200, "{answer:#?}");
    let answer = pki
        .curl()
        .tls_max("1.2")
        .basic(USER, PASSWORD)
        .run(exporter.addr, "/-/healthy");
    assert_eq!(answer.status, 0, "a TLS 1.2 client is refused: {answer:#?}");
    drop(exporter);

    // The client certificate names `prometheus` (a DNS SAN).
    for (allowed, admitted) in [("[prometheus, other]", true), ("[not-prometheus]", false)] {
        let web = web_yml("RequireAndVerifyClientCert").replace(
            "  client_ca_file: client-ca.pem\n",
            &format!("  client_ca_file: client-ca.pem\n  client_allowed_sans: {allowed}\n"),
        );
        let exporter = pki.start(&web);
        let answer = pki
            .curl()
            .client_cert(&pki.path("client.pem"), &pki.path("client.key"))
            .basic(USER, PASSWORD)
            .run(exporter.addr, "/-/healthy");
        let (status, logs) = exporter.stop_with_logs();
        assert!(status.success());
        if admitted {
            assert_eq!(answer.status, 200, "{allowed}: {answer:#?}");
        } else {
            assert_eq!(answer.status, 0, "{allowed}: {answer:#?}");
            assert!(
                logs.iter().any(|l| l.contains("\"event\":\"auth_failure\"")
                    && l.contains("client_certificate_rejected")),
                "{logs:#?}"
            );
        }
    }
}

fn scrape(pki: &Pki, exporter: &Exporter) -> Scrape {
    let answer = pki
        .curl()
        .basic(USER, PASSWORD)
        .run(exporter.addr, "/metrics");
    assert_eq!(answer.status, 200, "{answer:#?}");
    Scrape::parse(&answer.body)
}

const SELF: [(&str, &str); 1] = [("target", SELF_TARGET)];
const SELF_LEAF: [(&str, &str); 2] = [("target", SELF_TARGET), ("depth", "0")];

/// Waits until `certwatch-self` reports the leaf `not_after`.
fn wait_for_self_not_after(pki: &Pki, exporter: &Exporter, not_after: i64) -> Scrape {
    let deadline = Instant::now() + ROTATION_TIMEOUT;
    loop {
        let scrape = scrape(pki, exporter);
        if scrape.find(CERT_NOT_AFTER, &SELF_LEAF).first().map(|s| s.1) == Some(not_after as f64) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "certwatch-self did not report notAfter {not_after} within {ROTATION_TIMEOUT:?}:\n{}",
            scrape.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The serial of the leaf `openssl s_client` is served, uppercase hex.
fn served_serial(runtime: &tokio::runtime::Runtime, pki: &Pki, exporter: &Exporter) -> String {
    let seen = runtime.block_on(s_client(
        &exporter.addr.to_string(),
        None,
        &pki.path("ca.pem"),
        pki.h.path(),
    ));
    assert_eq!(seen.verify_code, Some(0), "{}", seen.text);
    seen.leaf.expect("a leaf").serial
}

fn a_rotated_certificate_is_served_without_restart_and_a_broken_one_keeps_the_old() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pki = Pki::new();
    let first = pki.server_ca.leaf(&["localhost"], Validity::days(40));
    write_pair(&pki.h, "server", &first);
    let exporter = pki.start(&web_yml("NoClientCert"));
    let dir = pki.h.path();

    // certwatch-self: the served leaf, with the series of any target.
    assert!(served_serial(&runtime, &pki, &exporter).eq_ignore_ascii_case(&first.serial_hex));
    let scrape = wait_for_self_not_after(&pki, &exporter, first.not_after);
    assert_eq!(
        scrape.value(HANDSHAKE_SUCCESS, &SELF),
        1.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.label(CERT_INFO, &SELF_LEAF, "serial"),
        first.serial_hex
    );
    assert_eq!(
        scrape.label(CERT_INFO, &SELF_LEAF, "subject_cn"),
        "localhost"
    );
    assert!(scrape.has(TLS_INFO, &SELF), "{}", scrape.text);
    assert!(
        !scrape.has(CHAIN_VERIFIED, &SELF),
        "no verdict on its own chain"
    );
    assert_eq!(scrape.value(PROBE_INTERVAL, &SELF), 60.0);
    let expiry = scrape.value(CERT_EXPIRY, &SELF_LEAF);
    assert!(
        (39.0 * 86400.0..=40.0 * 86400.0).contains(&expiry),
        "{expiry}"
    );

    // Renewal: key, then certificate, each by an atomic rename; no restart.
    let second = pki.server_ca.leaf(&["localhost"], Validity::days(80));
    replace_atomically(dir, "server.key", &second.key_pem);
    replace_atomically(dir, "server.pem", &second.cert_pem);
    let event = exporter.wait_for_audit("web_config_reload", |e| {
        e["who"] == "file change" && e["result"] == "success" && e["certificate_changed"] == true
    });
    assert_eq!(
        event["certificate"].as_str().map(str::len),
        Some(64),
        "{event}"
    );
    assert!(served_serial(&runtime, &pki, &exporter).eq_ignore_ascii_case(&second.serial_hex));
    wait_for_self_not_after(&pki, &exporter, second.not_after);

    // A broken new certificate is refused and logged; the renewed one stays in service.
    replace_atomically(
        dir,
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    let event = exporter.wait_for_audit("web_config_reload", |e| {
        e["who"] == "file change" && e["result"] == "failure"
    });
    assert!(
        event["problems"]
            .as_str()
            .is_some_and(|p| p.contains("web.yml:2:14:") && p.contains("no end line")),
        "the problem is placed at cert_file: {event}"
    );
    assert!(served_serial(&runtime, &pki, &exporter).eq_ignore_ascii_case(&second.serial_hex));
    // POST /-/reload says so too, and the configuration reload keeps certwatch-self.
    let answer = pki
        .curl()
        .basic(USER, PASSWORD)
        .method("POST")
        .run(exporter.addr, "/-/reload");
    assert_eq!(answer.status, 500, "{answer:#?}");
    assert!(answer.body.contains("server.pem"), "{answer:#?}");
    wait_for_self_not_after(&pki, &exporter, second.not_after);

    // A good certificate again, picked up by SIGHUP as well.
    let third = pki.server_ca.leaf(&["localhost"], Validity::days(120));
    replace_atomically(dir, "server.key", &third.key_pem);
    replace_atomically(dir, "server.pem", &third.cert_pem);
    exporter.signal("HUP");
    // The configuration is reloaded first, then the web configuration.
    exporter.wait_for_audit("config_reload", |e| {
        e["who"] == "SIGHUP" && e["result"] == "success"
    });
    exporter.wait_for_audit("web_config_reload", |e| {
        e["who"] == "SIGHUP" && e["result"] == "success"
    });
    assert!(served_serial(&runtime, &pki, &exporter).eq_ignore_ascii_case(&third.serial_hex));
    let scrape = wait_for_self_not_after(&pki, &exporter, third.not_after);
    assert_eq!(
        scrape.value(TARGETS, &[]),
        0.0,
        "certwatch-self is not a configured target"
    );
    assert!(exporter.stop().success());
}
