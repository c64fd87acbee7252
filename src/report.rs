//! `certwatch check`: the report of one probe, as text or JSON, and its Nagios status.
//!
//! Pure: it formats a [`ProbeOutcome`] at a given `now`; the probe itself is
//! `probe::run`'s. The first text line is a Nagios plugin status line with performance
//! data, so the command works unchanged as a Nagios or Icinga check.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::cert::{list_item, rfc3339 as date, NO_WELL_DEFINED_EXPIRATION};
use crate::config::{PromDuration, TargetSpec};
use crate::metrics::collector::unix_seconds;
use crate::printable::Printable;
use crate::probe::outcome::{AddressOutcome, ProbeOutcome, Verdict};
pub use crate::severity::Thresholds;
use crate::severity::{judge, Holder, Judgement, Limit, Severity};

/// A Nagios plugin status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 1.
    Warning,
    /// Exit 2.
    Critical,
    /// Exit 3: the check itself could not run (bad arguments).
    Unknown,
}

impl Status {
    /// The plugin exit code.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }

    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

impl From<Severity> for Status {
    fn from(severity: Severity) -> Self {
        match severity {
            Severity::Ok => Status::Ok,
            Severity::Warning => Status::Warning,
            Severity::Critical => Status::Critical,
        }
    }
}

/// The worst judgement over `outcome`'s addresses (the first of equals), or `None`
/// when no address was probed.
fn worst<'a>(
    outcome: &'a ProbeOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> Option<Judgement<'a>> {
    outcome
        .addresses
        .iter()
        .map(|a| judge(a, thresholds, now))
        .reduce(|worst, j| {
            if j.severity > worst.severity {
                j
            } else {
                worst
            }
        })
}

/// The overall status of `outcome`: the worst over its addresses.
pub fn status(outcome: &ProbeOutcome, thresholds: Thresholds, now: SystemTime) -> Status {
    worst(outcome, thresholds, now).map_or(Status::Unknown, |j| j.severity.into())
}

/// Days as a Nagios threshold: `21`, `1.5`, `0.25`.
fn days(d: std::time::Duration) -> String {
    let text = format!("{:.2}", d.as_secs_f64() / 86_400.0);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The text report. Every piece of text that a certificate or a server chose is
/// escaped ([`Printable`]), so it cannot drive the terminal or forge a line.
pub fn text(
    spec: &TargetSpec,
    outcome: &ProbeOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> String {
    let (worst, summary) = match worst(outcome, thresholds, now) {
        Some(j) => (Status::from(j.severity), j.to_string()),
        None => (Status::Unknown, "no address was probed".into()),
    };
    // The perf data: the nearest limit over all addresses. `21:` is Nagios' range
    // syntax for "alert below 21".
    let days_left = outcome
        .addresses
        .iter()
        .filter_map(|a| judge(a, thresholds, now).limit)
        .map(|l| l.days_left())
        .reduce(f64::min);
    let perf = match days_left {
        Some(left) => format!(
            " | days_left={left:.2};{}:;{}:",
            days(thresholds.warning),
            days(thresholds.critical)
        ),
        None => String::new(),
    };
    // A `|` would start the performance data early.
    let summary = Printable(&summary).to_string().replace('|', "\\u{7c}");
    let mut out = format!(
        "CERTWATCH {} - {}: {summary}{perf}\n",
        worst.label(),
        Printable(&spec.name).to_string().replace('|', "\\u{7c}"),
    );
    for address in &outcome.addresses {
        let _ = writeln!(out);
        address_text(&mut out, spec, address, thresholds, now);
    }
    out
}

fn address_text(
    out: &mut String,
    spec: &TargetSpec,
    address: &AddressOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) {
    let now_s = unix_seconds(now);
    let ip = address
        .ip
        .map_or_else(|| "(not resolved)".to_owned(), |ip| ip.to_string());
    let judgement = judge(address, thresholds, now);
    if let Some(host) = &address.host {
        let _ = writeln!(out, "Host:         {}", Printable(&host.label));
    }
    let _ = writeln!(
        out,
        "Address:      {ip} ({}: {})",
        Status::from(judgement.severity).label(),
        Printable(&judgement.to_string())
    );
    let server_name = address
        .host
        .as_ref()
        .map_or_else(|| spec.server_name.to_string(), |h| h.server_name.clone());
    let _ = writeln!(out, "Server name:  {}", Printable(&server_name));
    match &address.handshake {
        Ok(tls) => {
            let _ = writeln!(out, "TLS:          {}, {}", tls.version, tls.cipher);
        }
        Err(failure) => {
            let _ = writeln!(
                out,
                "Handshake:    failed in {} ({}): {}",
                failure.kind.stage(),
                failure.kind.reason_label(),
                Printable(&failure.detail)
            );
        }
    }
    if let Some(legacy) = &address.legacy {
        let _ = writeln!(
            out,
            "Legacy TLS:   only a legacy hello reaches it: the server chose {}, {}",
            legacy.version, legacy.cipher
        );
    }
    if let Some(cut) = &address.chain_cut {
        let _ = writeln!(
            out,
            "Chain:        cut after {} certificates: {}",
            cut.kept,
            Printable(&cut.detail)
        );
    }
    if !address.chain_issues.is_empty() {
        let issues: Vec<&str> = address.chain_issues.iter().map(|i| i.as_label()).collect();
        let _ = writeln!(out, "Chain issues: {}", issues.join(", "));
    }
    match &address.verdict {
        Some(Verdict::Verified { .. }) => {
            let _ = writeln!(out, "Verified:     yes");
        }
        Some(Verdict::Failed { reason, detail }) => {
            let _ = writeln!(
                out,
                "Verified:     no, {}: {}",
                reason.as_label(),
                Printable(detail)
            );
        }
        None => {
            let why = match &address.handshake {
                Ok(_) => "the server presented no certificate",
                Err(_) => "no certificate arrived (see the handshake above)",
            };
            let _ = writeln!(out, "Verified:     no, {why}");
        }
    }
    if let Some(revocation) = &address.revocation {
        let stapled = match revocation.stapled {
            Some(true) => "OCSP response stapled",
            Some(false) => "no OCSP response stapled",
            None => "OCSP off",
        };
        let _ = writeln!(out, "Revocation:   {stapled}");
        for check in &revocation.checks {
            let _ = writeln!(out, "  {}", Printable(&check.describe()));
        }
    }
    if let Some(Limit {
        holder: Holder::TrustAnchor,
        not_after,
        ..
    }) = judgement.limit
    {
        let _ = writeln!(out, "Trust anchor: expires {}", date(not_after));
    }
    for (depth, cert) in address.chain.iter().enumerate() {
        let role = if depth == 0 {
            "leaf"
        } else {
            "intermediate or root"
        };
        let _ = writeln!(out, "Certificate {depth} ({role}):");
        match &cert.info {
            Err(e) => {
                let _ = writeln!(out, "  {}", Printable(&e.to_string()));
            }
            Ok(info) => {
                let sans: Vec<String> = info
                    .dns_names
                    .iter()
                    .map(|n| format!("DNS:{}", list_item(n)))
                    .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
                    .collect();
                let days = (info.not_after as f64 - now_s) / 86_400.0;
                let forever = if info.not_after == NO_WELL_DEFINED_EXPIRATION {
                    "; no well-defined expiration date (RFC 5280)"
                } else {
                    ""
                };
                let bits = info
                    .key
                    .bits
                    .map(|b| format!(" {b} bits"))
                    .unwrap_or_default();
                let _ = writeln!(out, "  Subject:    {}", Printable(&info.subject));
                let _ = writeln!(out, "  Issuer:     {}", Printable(&info.issuer));
                let _ = writeln!(
                    out,
                    "  Serial:     {}",
                    if info.serial_hex.is_empty() {
                        "(empty)"
                    } else {
                        &info.serial_hex
                    }
                );
                let _ = writeln!(
                    out,
                    "  SANs:       {}",
                    if sans.is_empty() {
                        "(none)".into()
                    } else {
                        Printable(&sans.join(", ")).to_string()
                    }
                );
                let _ = writeln!(
                    out,
                    "  Valid:      {} to {} ({days:.1} days left{forever})",
                    date(info.not_before),
                    date(info.not_after)
                );
                let _ = writeln!(out, "  Key:        {}{bits}", info.key.algorithm);
                let _ = writeln!(
                    out,
                    "  Signature:  {}",
                    Printable(&info.signature_algorithm)
                );
                let weak: Vec<&str> = address
                    .weaknesses
                    .iter()
                    .filter(|(d, _)| *d == depth)
                    .map(|(_, w)| w.as_label())
                    .collect();
                if !weak.is_empty() {
                    let _ = writeln!(out, "  Weaknesses: {}", weak.join(", "));
                }
                if !address.counts_for_expiry(depth) {
                    let _ = writeln!(out, "  Not on the verified path: its expiry does not count");
                }
            }
        }
        let _ = writeln!(out, "  SHA-256:    {}", cert.fingerprint_sha256);
    }
}

/// The JSON report: the same facts as [`text`], as one document.
pub fn json(
    spec: &TargetSpec,
    outcome: &ProbeOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> Value {
    let worst = status(outcome, thresholds, now);
    let addresses: Vec<Value> = outcome
        .addresses
        .iter()
        .map(|a| address_json(a, thresholds, now))
        .collect();
    json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "status": worst.label(),
        "exit_code": worst.code(),
        "target": spec.name,
        "server_name": spec.server_name.to_string(),
        "checked_at": date(unix_seconds(now).floor() as i64),
        "checked_at_unix": unix_seconds(now).floor() as i64,
        "thresholds": thresholds_json(thresholds),
        "addresses": addresses,
    })
}

/// The version of the `check --json` document. It grows when a key is added and
/// changes when one is removed or changes meaning; 1 is the first versioned document
/// (it added `schema_version`, `checked_at`, `thresholds` and `not_before_unix`); 2
/// added each address's `revocation`.
pub const JSON_SCHEMA_VERSION: u32 = 2;

fn thresholds_json(thresholds: Thresholds) -> Value {
    let duration = |d: std::time::Duration| {
        json!({
            "duration": PromDuration::from_duration(d).to_string(),
            "seconds": d.as_secs_f64(),
            "days": d.as_secs_f64() / 86_400.0,
        })
    };
    json!({
        "warning": duration(thresholds.warning),
        "critical": duration(thresholds.critical),
    })
}

/// The text a Nagios plugin prints when it cannot run: the status line
/// `CERTWATCH UNKNOWN - <problem>`, then `details` as its long output. A `|` would
/// start performance data, so it is escaped.
pub fn unknown_text(problem: &str, details: &[&str]) -> String {
    let mut out = format!(
        "CERTWATCH UNKNOWN - {}\n",
        Printable(problem).to_string().replace('|', "\\u{7c}")
    );
    for line in details {
        let _ = writeln!(
            out,
            "{}",
            Printable(line).to_string().replace('|', "\\u{7c}")
        );
    }
    out
}

/// The JSON document of a check that could not run: status UNKNOWN, exit code 3, and
/// the problem, checked at `now`.
pub fn unknown_json(problem: &str, now: SystemTime) -> Value {
    json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "status": Status::Unknown.label(),
        "exit_code": Status::Unknown.code(),
        "checked_at": date(unix_seconds(now).floor() as i64),
        "checked_at_unix": unix_seconds(now).floor() as i64,
        "error": problem,
    })
}

/// `doc` as `check --json` prints it: pretty JSON in which every character that could
/// drive a terminal ([`crate::printable::is_unsafe`]: serde escapes only C0) is a
/// `\uXXXX` escape, so the document's values are exactly the server's text.
pub fn json_text(doc: &Value) -> String {
    let pretty = format!("{doc:#}");
    let mut out = String::with_capacity(pretty.len());
    // serde escapes C0 inside strings, so a newline is layout; every other unsafe
    // character is inside a string, where `\uXXXX` means the same.
    for c in pretty.chars() {
        if c != '\n' && crate::printable::is_unsafe(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn address_json(address: &AddressOutcome, thresholds: Thresholds, now: SystemTime) -> Value {
    let judgement = judge(address, thresholds, now);
    let now = unix_seconds(now);
    let limit = judgement.limit.map(|l| {
        let (depth, subject) = match l.holder {
            Holder::Presented { depth, subject } => (Some(depth), Some(subject)),
            Holder::TrustAnchor => (None, None),
        };
        json!({
            "depth": depth,
            "subject": subject,
            "trust_anchor": depth.is_none(),
            "not_after": date(l.not_after),
            "not_after_unix": l.not_after,
            "days_left": l.days_left(),
        })
    });
    let handshake = match &address.handshake {
        Ok(tls) => json!({ "ok": true, "version": tls.version, "cipher": tls.cipher }),
        Err(f) => match &address.legacy {
            Some(legacy) => {
                json!({ "ok": false, "stage": f.kind.stage().as_label(), "reason": f.kind.reason_label(), "detail": f.detail,
                    "legacy_only": true, "version": legacy.version, "cipher": legacy.cipher })
            }
            None => {
                json!({ "ok": false, "stage": f.kind.stage().as_label(), "reason": f.kind.reason_label(), "detail": f.detail })
            }
        },
    };
    let verification = match &address.verdict {
        Some(Verdict::Verified { .. }) => json!({ "verified": true }),
        Some(Verdict::Failed { reason, detail }) => {
            json!({ "verified": false, "reason": reason.as_label(), "detail": detail })
        }
        None => Value::Null,
    };
    let chain: Vec<Value> = address
        .chain
        .iter()
        .enumerate()
        .map(|(depth, cert)| match &cert.info {
            Ok(info) => json!({
                "depth": depth,
                "subject": info.subject,
                "subject_cn": info.subject_cn,
                "issuer": info.issuer,
                "issuer_cn": info.issuer_cn,
                "serial": info.serial_hex,
                "dns_names": info.dns_names,
                "ip_addresses": info.ip_addresses,
                "not_before": date(info.not_before),
                "not_before_unix": info.not_before,
                "not_after": date(info.not_after),
                "not_after_unix": info.not_after,
                "days_left": (info.not_after as f64 - now) / 86_400.0,
                "key_algorithm": info.key.algorithm,
                "key_bits": info.key.bits,
                "signature_algorithm": info.signature_algorithm,
                "fingerprint_sha256": cert.fingerprint_sha256,
                "on_verified_path": address.counts_for_expiry(depth) && address.verified(),
                "weaknesses": address.weaknesses.iter().filter(|(d, _)| *d == depth).map(|(_, w)| w.as_label()).collect::<Vec<_>>(),
            }),
            Err(e) => {
                json!({ "depth": depth, "error": e.to_string(), "fingerprint_sha256": cert.fingerprint_sha256 })
            }
        })
        .collect();
    json!({
        "ip": address.ip.map(|ip| ip.to_string()),
        "host": address.host.as_ref().map(|h| h.label.clone()),
        "server_name": address.host.as_ref().map(|h| h.server_name.clone()),
        "status": Status::from(judgement.severity).label(),
        "summary": judgement.to_string(),
        "limit": limit,
        "handshake": handshake,
        "verification": verification,
        "chain_issues": address.chain_issues.iter().map(|i| i.as_label()).collect::<Vec<_>>(),
        "chain_cut": address.chain_cut.as_ref().map(|c| json!({ "kept": c.kept, "detail": c.detail })),
        "chain": chain,
        "revocation": address.revocation.as_ref().map(|r| r.to_json()),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::cert::{CertError, ParsedCert, TimeKind, TimeProblem, ValidityField};
    use crate::config::raw::RawSettings;
    use crate::printable::is_unsafe;
    use crate::probe::outcome::VerifyReason;
    use crate::severity::fixtures::*;

    fn spec() -> TargetSpec {
        crate::config::one_off_target(
            "127.0.0.1:443".parse().expect("address"),
            None,
            RawSettings::default(),
        )
        .expect("spec")
    }

    /// Every kind of text a hostile server chooses, at once.
    const HOSTILE: &str = "x\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}[1;1HCERTWATCH OK - fine\r\n\u{9b}31m\u{202e}moc.\u{2066}|";

    fn hostile_cert(days: f64) -> Arc<ParsedCert> {
        let mut cert = (*cert(&format!("CN={HOSTILE}"), days)).clone();
        let info = cert.info.as_mut().expect("readable");
        info.issuer = format!("CN=issuer {HOSTILE}");
        info.dns_names = vec![HOSTILE.to_owned(), "a.example,b.example".to_owned()];
        Arc::new(cert)
    }

    fn outcome(addresses: Vec<AddressOutcome>) -> ProbeOutcome {
        ProbeOutcome {
            addresses,
            cut: Default::default(),
        }
    }

    #[test]
    fn no_text_a_server_chose_reaches_the_terminal_raw() {
        let bad_date = Arc::new(ParsedCert {
            fingerprint_sha256: "f".repeat(64),
            info: Err(CertError::Validity {
                field: ValidityField::NotAfter,
                raw: HOSTILE.to_owned(),
                kind: TimeKind::UtcTime,
                problem: TimeProblem::Syntax,
            }),
        });
        let o = outcome(vec![
            address(
                tls(),
                vec![hostile_cert(3.0), hostile_cert(40.0), bad_date],
                Some(Verdict::Failed {
                    reason: VerifyReason::UnknownIssuer,
                    detail: format!("issuer {HOSTILE} is unknown"),
                }),
            ),
            address(
                refused(&format!("banner: {HOSTILE}")),
                vec![hostile_cert(3.0)],
                None,
            ),
        ]);
        let report = text(&spec(), &o, Thresholds::DEFAULT, now());
        let lines: Vec<&str> = report.lines().collect();
        for line in &lines {
            assert!(!line.contains(is_unsafe), "{line:?}");
        }
        // One line per fact: no forged line, no line cut in two.
        assert_eq!(
            lines.len(),
            1 + (1 + 4 + 9 + 9 + 3) + (1 + 4 + 9),
            "{report}"
        );
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("CERTWATCH")).count(),
            1
        );
        // The status line names the limiting certificate, and its one `|` starts the
        // performance data.
        assert_eq!(lines[0].matches('|').count(), 1, "{}", lines[0]);
        assert!(
            lines[0].starts_with(
                "CERTWATCH CRITICAL - 127.0.0.1:443: chain does not verify (unknown_issuer); \
                 certificate 0 (CN=x\\u{1b}]0;owned\\u{7}\\u{1b}[2J"
            ),
            "{}",
            lines[0]
        );
        assert!(report.contains("\\u{202e}moc.\\u{2066}"), "{report}");
        assert!(report.contains("banner: x\\u{1b}]0;owned"), "{report}");
        assert!(report.contains("is not a valid time"), "{report}");
    }

    #[test]
    fn json_keeps_the_server_text_exact() {
        let o = outcome(vec![address(
            tls(),
            vec![hostile_cert(30.0)],
            verified(30.0),
        )]);
        let doc = json(&spec(), &o, Thresholds::DEFAULT, now());
        let chain = &doc["addresses"][0]["chain"][0];
        assert_eq!(chain["subject"], format!("CN={HOSTILE}"));
        assert_eq!(chain["dns_names"][1], "a.example,b.example");
        assert_eq!(doc["addresses"][0]["limit"]["depth"], 0);
        assert_eq!(
            doc["addresses"][0]["limit"]["subject"],
            format!("CN={HOSTILE}")
        );
        // Printed, every unsafe character is a JSON escape, and the document the same.
        let printed = json_text(&doc);
        assert!(
            !printed.contains(|c| c != '\n' && is_unsafe(c)),
            "{printed}"
        );
        assert!(printed.contains(r"x\u001b]0;owned\u0007"), "{printed}");
        assert!(printed.contains(r"\u009b31m\u202emoc.\u2066|"), "{printed}");
        assert_eq!(serde_json::from_str::<Value>(&printed).expect("JSON"), doc);
        let tagged = json!({ "s": "a\u{e0041}\u{7f}b\u{1f600}" });
        let printed = json_text(&tagged);
        assert!(printed.contains(r#""a\udb40\udc41\u007fb😀""#), "{printed}");
        assert_eq!(
            serde_json::from_str::<Value>(&printed).expect("JSON"),
            tagged
        );
    }

    #[test]
    fn a_san_with_a_comma_is_one_san() {
        let o = outcome(vec![address(
            tls(),
            vec![hostile_cert(30.0)],
            verified(30.0),
        )]);
        let report = text(&spec(), &o, Thresholds::DEFAULT, now());
        let sans = report
            .lines()
            .find(|l| l.starts_with("  SANs:"))
            .expect("a SAN line");
        assert!(sans.ends_with(", DNS:a.example%2Cb.example"), "{sans}");
        assert_eq!(sans.matches(", ").count(), 1, "{sans}");
    }

    #[test]
    fn the_status_line_names_the_limit_with_nagios_ranges() {
        let o = outcome(vec![
            address(
                tls(),
                vec![cert("CN=leaf", 80.0), cert("CN=inter", 12.5)],
                verified(12.5),
            ),
            address(tls(), vec![cert("CN=other", 90.0)], verified(90.0)),
        ]);
        let report = text(&spec(), &o, Thresholds::DEFAULT, now());
        assert_eq!(
            report.lines().next(),
            Some(
                "CERTWATCH WARNING - 127.0.0.1:443: certificate 1 (CN=inter) expires in 12.5 \
                 days | days_left=12.50;21:;7:"
            )
        );
        assert_eq!(status(&o, Thresholds::DEFAULT, now()), Status::Warning);
        let odd = Thresholds {
            warning: Duration::from_secs(36 * 3600),
            critical: Duration::from_secs(6 * 3600),
        };
        let report = text(&spec(), &o, odd, now());
        assert!(
            report
                .lines()
                .next()
                .unwrap()
                .ends_with("| days_left=12.50;1.5:;0.25:"),
            "{report}"
        );
        assert_eq!(status(&o, odd, now()), Status::Ok);
        assert_eq!(
            status(&outcome(vec![]), Thresholds::DEFAULT, now()),
            Status::Unknown
        );
    }

    #[test]
    fn the_far_future_and_the_trust_anchor_are_said_in_words() {
        let mut forever = (*cert("CN=forever", 1.0)).clone();
        forever.info.as_mut().unwrap().not_after = crate::cert::NO_WELL_DEFINED_EXPIRATION;
        let o = outcome(vec![address(tls(), vec![Arc::new(forever)], verified(5.0))]);
        let report = text(&spec(), &o, Thresholds::DEFAULT, now());
        assert!(
            report.contains("to 9999-12-31T23:59:59Z (")
                && report.contains("; no well-defined expiration date (RFC 5280))"),
            "{report}"
        );
        assert!(
            report.contains("Trust anchor: expires 2030-01-06T00:00:00Z"),
            "{report}"
        );
        assert!(
            report.starts_with(
                "CERTWATCH CRITICAL - 127.0.0.1:443: the trust anchor expires in 5.0 days"
            ),
            "{report}"
        );
    }
}
