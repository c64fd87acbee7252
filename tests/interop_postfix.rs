//! Interoperability with a real SMTP server: certwatch probes a private Postfix instance
//! (started by the test on a loopback port, see `support/postfix.rs`) over STARTTLS,
//! and its metrics must equal what `openssl s_client -starttls smtp` reports for the
//! same endpoint: chain length, leaf serial, leaf notAfter, TLS version and verdict.
//!
//! Needs root and the Debian packages `postfix` and `openssl`. Without them the tests
//! print "skipping: ..." and pass, except under `CI=true`, where they fail.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use certwatch::metrics::names::*;
use support::pki::{Ca, Leaf, Validity};
use support::postfix::{self, Postfix, ServerTls};
use support::{Harness, Scrape};

/// How long one openssl command may take.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

fn t() -> [(&'static str, &'static str); 1] {
    [("target", "t")]
}

fn target_yaml(server: &Postfix) -> String {
    format!(
        "targets:\n  - address: \"{}\"\n    name: t\n    server_name: localhost\n    starttls: smtp\n    timeout: 10s\n    trust: none\n    tls:\n      ca_file: root.pem\n",
        server.address()
    )
}

/// A root, an intermediate and a leaf for `localhost`.
struct Chain {
    root: Ca,
    intermediate: Ca,
    leaf: Leaf,
}

impl Chain {
    fn new() -> Chain {
        let root = Ca::root("certwatch interop root");
        let intermediate = root.intermediate("certwatch interop intermediate", Validity::days(365));
        let leaf = intermediate.leaf(&["localhost"], Validity::days(90));
        Chain {
            root,
            intermediate,
            leaf,
        }
    }

    fn server_tls(&self) -> ServerTls {
        ServerTls {
            chain_pem: self.leaf.chain_pem(&[&self.intermediate]),
            key_pem: self.leaf.key_pem.clone(),
        }
    }
}

/// Runs `command` with stdin closed and its output in `dir/name.out`, for at most
/// [`OPENSSL_TIMEOUT`]; returns its exit success and output.
async fn run_bounded(mut command: Command, dir: &Path, name: &str) -> (bool, String) {
    let path = dir.join(format!("{name}.out"));
    let out = std::fs::File::create(&path).expect("output file");
    let err = out.try_clone().expect("output file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning openssl {name} (Debian package `openssl`): {e}"));
    let deadline = tokio::time::Instant::now() + OPENSSL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name} did not finish within {OPENSSL_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&path).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    (
        status.success(),
        std::fs::read_to_string(&path).expect("read output"),
    )
}

/// What `openssl s_client -starttls smtp -showcerts` saw.
#[derive(Debug)]
struct SClient {
    /// Its whole output, for failure messages.
    text: String,
    /// The presented certificates, PEM, in order.
    certificates: Vec<String>,
    /// From `Protocol  : TLSv1.3` (or the `New, TLSv1.3, Cipher is ...` line).
    version: Option<String>,
    /// From `Verify return code: 0 (ok)`.
    verify_code: Option<u32>,
}

async fn s_client(address: &str, ca_file: &Path, dir: &Path) -> SClient {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            address,
            "-starttls",
            "smtp",
            "-servername",
            "localhost",
        ])
        .args(["-verify_hostname", "localhost", "-showcerts", "-CAfile"])
        .arg(ca_file);
    let (_, text) = run_bounded(command, dir, "s_client").await;
    let mut certificates = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        }
        if let Some(pem) = current.as_mut() {
            pem.push_str(line);
            pem.push('\n');
        }
        if line == "-----END CERTIFICATE-----" {
            certificates.extend(current.take());
        }
    }
    let version = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Protocol")
                .and_then(|r| r.trim().strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        })
        .or_else(|| {
            text.lines().find_map(|l| {
                l.strip_prefix("New, ")
                    .and_then(|r| r.split(',').next())
                    .map(str::to_owned)
            })
        });
    let verify_code = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Verify return code: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|c| c.parse().ok());
    SClient {
        text,
        certificates,
        version,
        verify_code,
    }
}

/// `openssl x509 -noout -serial -enddate` of `pem`: (serial hex, notAfter Unix seconds).
async fn x509_serial_and_not_after(pem: &str, dir: &Path) -> (String, i64) {
    let file = dir.join("presented-leaf.pem");
    std::fs::write(&file, pem).expect("write leaf");
    let mut command = Command::new("openssl");
    command
        .args(["x509", "-noout", "-serial", "-enddate", "-in"])
        .arg(&file);
    let (ok, text) = run_bounded(command, dir, "x509").await;
    assert!(ok, "openssl x509 failed:\n{text}");
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in openssl x509 output:\n{text}"))
            .trim()
            .to_owned()
    };
    let serial = field("serial=");
    let not_after = parse_openssl_date(&field("notAfter="));
    (serial, not_after)
}

/// Parses OpenSSL's `Nov 22 19:40:57 2027 GMT` (day space-padded) into Unix seconds.
fn parse_openssl_date(text: &str) -> i64 {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let bad = || panic!("unexpected openssl date {text:?}");
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [month, day, clock, year, "GMT"] = parts[..] else {
        bad()
    };
    let month = MONTHS
        .iter()
        .position(|m| *m == month)
        .unwrap_or_else(|| bad()) as u8
        + 1;
    let hms: Vec<u8> = clock
        .split(':')
        .map(|p| p.parse().unwrap_or_else(|_| bad()))
        .collect();
    let [hour, minute, second] = hms[..] else {
        bad()
    };
    let date = time::Date::from_calendar_date(
        year.parse().unwrap_or_else(|_| bad()),
        time::Month::try_from(month).unwrap_or_else(|_| bad()),
        day.parse().unwrap_or_else(|_| bad()),
    )
    .unwrap_or_else(|_| bad());
    let clock = time::Time::from_hms(hour, minute, second).unwrap_or_else(|_| bad());
    time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp()
}

/// The number of certificates certwatch reports for target `t`.
fn certwatch_chain_length(scrape: &Scrape) -> usize {
    scrape.find(CERT_INFO, &t()).len()
}

#[tokio::test]
async fn postfix_starttls_chain_matches_openssl_s_client() {
    if !postfix::require() {
        return;
    }
    let chain = Chain::new();
    let server = Postfix::start(Some(&chain.server_tls())).await;
    let h = Harness::new();
    let root = h.write("root.pem", &chain.root.pem);

    let (_, scrape) = h.probe(&target_yaml(&server)).await;
    let context = || {
        format!(
            "certwatch:\n{}\npostfix log:\n{}",
            scrape.text,
            server.log()
        )
    };
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 1.0, "{}", context());
    assert_eq!(scrape.value(CHAIN_VERIFIED, &t()), 1.0, "{}", context());
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 1.0, "{}", context());
    assert!(!scrape.has(PROBE_FAILURE_INFO, &[]), "{}", context());
    assert!(!scrape.has(VERIFY_ERROR_INFO, &[]), "{}", context());
    assert!(
        scrape.has(
            PROBE_PHASE_DURATION,
            &[("target", "t"), ("phase", "starttls")]
        ),
        "{}",
        context()
    );
    assert_eq!(scrape.label(HANDSHAKE_SUCCESS, &t(), "ip"), "127.0.0.1");

    let leaf = [("target", "t"), ("depth", "0")];
    let certwatch_serial = scrape.label(CERT_INFO, &leaf, "serial");
    let certwatch_not_after = scrape.value(CERT_NOT_AFTER, &leaf);
    assert_eq!(certwatch_serial, chain.leaf.serial_hex);
    assert_eq!(certwatch_not_after, chain.leaf.not_after as f64);
    assert_eq!(
        certwatch_chain_length(&scrape),
        2,
        "leaf and intermediate:\n{}",
        context()
    );
    assert_eq!(
        scrape.label(CERT_INFO, &[("target", "t"), ("depth", "1")], "subject_cn"),
        "certwatch interop intermediate"
    );

    // The reference client, against the same endpoint.
    let openssl = s_client(&server.address(), &root, server.dir()).await;
    assert_eq!(
        certwatch_chain_length(&scrape),
        openssl.certificates.len(),
        "chain length: certwatch vs openssl s_client:\n{}",
        openssl.text
    );
    let (openssl_serial, openssl_not_after) =
        x509_serial_and_not_after(&openssl.certificates[0], server.dir()).await;
    assert!(
        certwatch_serial.eq_ignore_ascii_case(&openssl_serial),
        "leaf serial: certwatch {certwatch_serial} vs openssl {openssl_serial}"
    );
    assert_eq!(
        certwatch_not_after, openssl_not_after as f64,
        "leaf notAfter: certwatch vs openssl"
    );
    assert_eq!(
        openssl.verify_code,
        Some(0),
        "openssl verifies the chain too:\n{}",
        openssl.text
    );
    assert_eq!(
        Some(scrape.label(TLS_INFO, &t(), "version")),
        openssl.version,
        "TLS version: certwatch vs openssl:\n{}",
        openssl.text
    );
}

#[tokio::test]
async fn postfix_without_tls_reports_starttls_not_offered() {
    if !postfix::require() {
        return;
    }
    let server = Postfix::start(None).await;
    let h = Harness::new();
    let root = h.write("root.pem", &Ca::root("unused root").pem);

    let (_, scrape) = h.probe(&target_yaml(&server)).await;
    let context = || {
        format!(
            "certwatch:\n{}\npostfix log:\n{}",
            scrape.text,
            server.log()
        )
    };
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &t()), 0.0, "{}", context());
    assert_eq!(scrape.value(PROBE_SUCCESS, &t()), 0.0, "{}", context());
    assert_eq!(
        scrape.label(PROBE_FAILURE_INFO, &t(), "stage"),
        "starttls",
        "{}",
        context()
    );
    assert_eq!(
        scrape.label(PROBE_FAILURE_INFO, &t(), "reason"),
        "starttls_not_offered",
        "{}",
        context()
    );
    assert_eq!(certwatch_chain_length(&scrape), 0, "{}", context());

    // openssl agrees: no STARTTLS in the EHLO reply, and no certificate.
    let openssl = s_client(&server.address(), &root, server.dir()).await;
    assert!(
        openssl.text.contains("Didn't find STARTTLS"),
        "openssl s_client:\n{}",
        openssl.text
    );
    assert!(
        openssl.certificates.is_empty(),
        "openssl s_client:\n{}",
        openssl.text
    );
}

#[test]
fn openssl_dates_parse_to_unix_seconds() {
    assert_eq!(parse_openssl_date("Nov 22 19:40:57 2027 GMT"), 1826912457);
    assert_eq!(parse_openssl_date("Feb  3 00:00:00 2026 GMT"), 1770076800);
}
