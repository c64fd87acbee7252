//! The reference client of the interoperability tests: `openssl s_client`.
//!
//! [`s_client`] connects to an endpoint the way certwatch does (same address, same
//! STARTTLS dialect, SNI `localhost`), with stdin closed and a time limit, and reads
//! what it saw: the presented chain, the leaf's serial and notAfter (through
//! `openssl x509`), the TLS version and the verification result.
//! [`assert_certwatch_matches_openssl`] probes an endpoint with certwatch and with
//! openssl and asserts they agree. Starting the servers is `support/daemon.rs`'s.
//!
//! Needs the Debian package `openssl` (3.0 knows `-starttls` smtp, lmtp, pop3, imap,
//! ftp, xmpp, xmpp-server, nntp, sieve, ldap, postgres and mysql).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use certwatch::metrics::names::*;

use super::daemon::Chain;
use super::{Harness, Scrape};

/// How long one openssl command may take.
pub const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

/// What `openssl s_client -showcerts` saw.
#[derive(Debug)]
pub struct SClient {
    /// Its whole output, for failure messages.
    pub text: String,
    /// The presented certificates, PEM, in order.
    pub certificates: Vec<String>,
    /// From `Protocol  : TLSv1.3` (or the `New, TLSv1.3, Cipher is ...` line).
    pub version: Option<String>,
    /// From `Verify return code: 0 (ok)`.
    pub verify_code: Option<u32>,
    /// The first presented certificate's serial and notAfter.
    pub leaf: Option<LeafFacts>,
}

impl SClient {
    /// How many certificates the server presented.
    pub fn chain_length(&self) -> usize {
        self.certificates.len()
    }
}

/// What `openssl x509 -serial -enddate` says of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafFacts {
    /// The serial, hex as openssl prints it (uppercase).
    pub serial: String,
    /// notAfter, Unix seconds.
    pub not_after: i64,
}

/// openssl's `-starttls` name for certwatch's `starttls` value; `None` for plain TLS.
pub fn openssl_starttls(certwatch: &str) -> Option<&'static str> {
    Some(match certwatch {
        "none" => return None,
        "smtp" => "smtp",
        "lmtp" => "lmtp",
        "imap" => "imap",
        "pop3" => "pop3",
        "ftp" => "ftp",
        "ldap" => "ldap",
        "postgres" => "postgres",
        "mysql" => "mysql",
        "xmpp" => "xmpp",
        "xmpp_server" => "xmpp-server",
        "nntp" => "nntp",
        "sieve" => "sieve",
        other => panic!("no openssl -starttls for {other:?}"),
    })
}

/// Runs `command` with stdin closed and its output in `dir/name.out`, for at most
/// [`OPENSSL_TIMEOUT`]; returns its exit success and output.
pub async fn run_bounded(mut command: Command, dir: &Path, name: &str) -> (bool, String) {
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

/// `openssl s_client -connect ADDRESS [-starttls PROTO -name localhost]
/// -servername localhost -verify_hostname localhost -CAfile CA -showcerts`, with its
/// files in `dir`. `starttls` is openssl's name (see [`openssl_starttls`]).
pub async fn s_client(
    address: &str,
    starttls: Option<&str>,
    ca_file: &Path,
    dir: &Path,
) -> SClient {
    let mut command = Command::new("openssl");
    command.args(["s_client", "-connect", address]);
    if let Some(proto) = starttls {
        // -name: the EHLO/LHLO name, and the XMPP stream's `to` (the default would be
        // the address's host, 127.0.0.1, which no virtual host answers to).
        command.args(["-starttls", proto, "-name", "localhost"]);
    }
    command
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .args(["-showcerts", "-CAfile"])
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
    let leaf = match certificates.first() {
        Some(pem) => Some(x509_facts(pem, dir).await),
        None => None,
    };
    SClient {
        text,
        certificates,
        version,
        verify_code,
        leaf,
    }
}

/// `openssl x509 -noout -serial -enddate` of `pem`.
pub async fn x509_facts(pem: &str, dir: &Path) -> LeafFacts {
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
    LeafFacts {
        serial: field("serial="),
        not_after: parse_openssl_date(&field("notAfter=")),
    }
}

/// Parses OpenSSL's `Nov 22 19:40:57 2027 GMT` (day space-padded) into Unix seconds.
pub fn parse_openssl_date(text: &str) -> i64 {
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

/// The certwatch configuration probing `address` as target `t`, trusting only the
/// test root (`root.pem`).
pub fn target_yaml(address: &str, starttls: &str) -> String {
    format!(
        "targets:\n  - address: \"{address}\"\n    name: t\n    server_name: localhost\n    starttls: {starttls}\n    timeout: 10s\n    trust: none\n    tls:\n      ca_file: root.pem\n"
    )
}

/// The labels of target `t`.
pub const T: [(&str, &str); 1] = [("target", "t")];

/// The number of certificates certwatch reports for target `t`.
pub fn certwatch_chain_length(scrape: &Scrape) -> usize {
    scrape.find(CERT_INFO, &T).len()
}

/// What both clients saw of one endpoint.
pub struct Compared {
    /// certwatch's metrics for target `t`.
    pub scrape: Scrape,
    /// openssl's view.
    pub openssl: SClient,
}

/// Probes `address` with certwatch (`starttls` is certwatch's name for the dialect)
/// and with `openssl s_client`, both trusting only `chain`'s root, and asserts that the
/// probe succeeded and that both report the same chain length, leaf serial, leaf
/// notAfter and TLS version, which are also `chain`'s. `server_log` is shown on failure.
pub async fn assert_certwatch_matches_openssl(
    address: &str,
    starttls: &str,
    chain: &Chain,
    server_log: &dyn Fn() -> String,
) -> Compared {
    let h = Harness::new();
    let root = h.write("root.pem", &chain.root.pem);
    let (outcome, scrape) = h.probe(&target_yaml(address, starttls)).await;
    let context = || {
        format!(
            "certwatch ({starttls} at {address}):\n{}\n{outcome:#?}\nserver log:\n{}",
            scrape.text,
            server_log()
        )
    };
    assert_eq!(scrape.value(HANDSHAKE_SUCCESS, &T), 1.0, "{}", context());
    assert_eq!(scrape.value(CHAIN_VERIFIED, &T), 1.0, "{}", context());
    assert_eq!(scrape.value(PROBE_SUCCESS, &T), 1.0, "{}", context());
    assert!(!scrape.has(PROBE_FAILURE_INFO, &[]), "{}", context());
    assert!(!scrape.has(VERIFY_ERROR_INFO, &[]), "{}", context());
    if starttls != "none" {
        assert!(
            scrape.has(
                PROBE_PHASE_DURATION,
                &[("target", "t"), ("phase", "starttls")]
            ),
            "{}",
            context()
        );
    }
    assert_eq!(scrape.label(HANDSHAKE_SUCCESS, &T, "ip"), "127.0.0.1");

    let leaf = [("target", "t"), ("depth", "0")];
    let serial = scrape.label(CERT_INFO, &leaf, "serial");
    let not_after = scrape.value(CERT_NOT_AFTER, &leaf);
    assert_eq!(serial, chain.leaf.serial_hex, "{}", context());
    assert_eq!(not_after, chain.leaf.not_after as f64, "{}", context());
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
    let openssl = s_client(address, openssl_starttls(starttls), &root, h.path()).await;
    assert_eq!(
        openssl.verify_code,
        Some(0),
        "openssl verifies the chain too:\n{}",
        openssl.text
    );
    assert_eq!(
        certwatch_chain_length(&scrape),
        openssl.chain_length(),
        "chain length: certwatch vs openssl s_client:\n{}",
        openssl.text
    );
    let facts = openssl.leaf.clone().expect("openssl saw a leaf");
    assert!(
        serial.eq_ignore_ascii_case(&facts.serial),
        "leaf serial: certwatch {serial} vs openssl {}",
        facts.serial
    );
    assert_eq!(
        not_after, facts.not_after as f64,
        "leaf notAfter: certwatch vs openssl"
    );
    assert_eq!(
        Some(scrape.label(TLS_INFO, &T, "version")),
        openssl.version,
        "TLS version: certwatch vs openssl:\n{}",
        openssl.text
    );
    Compared { scrape, openssl }
}
