//! `certwatch check`: the report of one probe, as text or JSON, and its Nagios status.
//!
//! Pure: it formats a [`ProbeOutcome`] at a given `now`; the probe itself is
//! `probe::run`'s. The first text line is a Nagios plugin status line with performance
//! data, so the command works unchanged as a Nagios or Icinga check.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::cert::{rfc3339 as date, ParsedCert};
use crate::config::TargetSpec;
use crate::metrics::collector::unix_seconds;
use crate::probe::outcome::{AddressOutcome, ProbeOutcome, Verdict};

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

/// When a certificate's remaining time becomes a warning or critical.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// WARNING below this.
    pub warn: Duration,
    /// CRITICAL below this.
    pub crit: Duration,
}

/// The verdict on one address, with its reason in words.
fn judge(address: &AddressOutcome, thresholds: Thresholds, now: f64) -> (Status, String) {
    if let Err(failure) = &address.handshake {
        return (
            Status::Critical,
            format!(
                "{} failed ({})",
                failure.kind.stage(),
                failure.kind.reason_label()
            ),
        );
    }
    if let Some(Verdict::Failed { reason, .. }) = &address.verdict {
        return (
            Status::Critical,
            format!("chain does not verify ({})", reason.as_label()),
        );
    }
    let Some(left) = seconds_left(&address.chain, now) else {
        return (Status::Critical, "no readable certificate".into());
    };
    let days = left / 86_400.0;
    if left <= 0.0 {
        (
            Status::Critical,
            format!("a certificate expired {:.1} days ago", -days),
        )
    } else if left < thresholds.crit.as_secs_f64() {
        (
            Status::Critical,
            format!("a certificate expires in {days:.1} days"),
        )
    } else if left < thresholds.warn.as_secs_f64() {
        (
            Status::Warning,
            format!("a certificate expires in {days:.1} days"),
        )
    } else {
        (
            Status::Ok,
            format!("certificate valid for {days:.1} more days"),
        )
    }
}

/// Seconds until the first presented certificate expires.
fn seconds_left(chain: &[Arc<ParsedCert>], now: f64) -> Option<f64> {
    chain
        .iter()
        .filter_map(|c| c.not_after())
        .min()
        .map(|t| t as f64 - now)
}

/// The overall status of `outcome`: the worst over its addresses.
pub fn status(outcome: &ProbeOutcome, thresholds: Thresholds, now: SystemTime) -> Status {
    let now = unix_seconds(now);
    outcome
        .addresses
        .iter()
        .map(|a| judge(a, thresholds, now).0)
        .max()
        .unwrap_or(Status::Unknown)
}

/// The text report.
pub fn text(
    spec: &TargetSpec,
    outcome: &ProbeOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> String {
    let now_s = unix_seconds(now);
    let (worst, summary) = outcome
        .addresses
        .iter()
        .map(|a| judge(a, thresholds, now_s))
        .max_by_key(|(status, _)| *status)
        .unwrap_or((Status::Unknown, "no address was probed".into()));
    let days_left = outcome
        .addresses
        .iter()
        .filter_map(|a| seconds_left(&a.chain, now_s))
        .reduce(f64::min);
    let perf = match days_left {
        Some(left) => format!(
            " | days_left={:.2};{};{}",
            left / 86_400.0,
            thresholds.warn.as_secs() / 86_400,
            thresholds.crit.as_secs() / 86_400
        ),
        None => String::new(),
    };
    let mut out = format!(
        "CERTWATCH {} - {}: {summary}{perf}\n",
        worst.label(),
        spec.name
    );
    for address in &outcome.addresses {
        let _ = writeln!(out);
        address_text(&mut out, spec, address, thresholds, now_s);
    }
    out
}

fn address_text(
    out: &mut String,
    spec: &TargetSpec,
    address: &AddressOutcome,
    thresholds: Thresholds,
    now: f64,
) {
    let ip = address
        .ip
        .map_or_else(|| "(not resolved)".to_owned(), |ip| ip.to_string());
    let (status, why) = judge(address, thresholds, now);
    let _ = writeln!(out, "Address:      {ip} ({}: {why})", status.label());
    let _ = writeln!(out, "Server name:  {}", spec.server_name);
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
                failure.detail
            );
        }
    }
    match &address.verdict {
        Some(Verdict::Verified { .. }) => {
            let _ = writeln!(out, "Verified:     yes");
        }
        Some(Verdict::Failed { reason, detail }) => {
            let _ = writeln!(out, "Verified:     no, {}: {detail}", reason.as_label());
        }
        None => {
            let _ = writeln!(out, "Verified:     no certificate was presented");
        }
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
                let _ = writeln!(out, "  {e}");
            }
            Ok(info) => {
                let sans: Vec<String> = info
                    .dns_names
                    .iter()
                    .map(|n| format!("DNS:{n}"))
                    .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
                    .collect();
                let days = (info.not_after as f64 - now) / 86_400.0;
                let bits = info
                    .key
                    .bits
                    .map(|b| format!(" {b} bits"))
                    .unwrap_or_default();
                let _ = writeln!(out, "  Subject:    {}", info.subject);
                let _ = writeln!(out, "  Issuer:     {}", info.issuer);
                let _ = writeln!(out, "  Serial:     {}", info.serial_hex);
                let _ = writeln!(
                    out,
                    "  SANs:       {}",
                    if sans.is_empty() {
                        "(none)".into()
                    } else {
                        sans.join(", ")
                    }
                );
                let _ = writeln!(
                    out,
                    "  Valid:      {} to {} ({days:.1} days left)",
                    date(info.not_before),
                    date(info.not_after)
                );
                let _ = writeln!(out, "  Key:        {}{bits}", info.key.algorithm);
                let _ = writeln!(out, "  Signature:  {}", info.signature_algorithm);
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
    let now_s = unix_seconds(now);
    let worst = status(outcome, thresholds, now);
    let addresses: Vec<Value> = outcome
        .addresses
        .iter()
        .map(|a| address_json(a, thresholds, now_s))
        .collect();
    json!({
        "status": worst.label(),
        "exit_code": worst.code(),
        "target": spec.name,
        "server_name": spec.server_name.to_string(),
        "addresses": addresses,
    })
}

fn address_json(address: &AddressOutcome, thresholds: Thresholds, now: f64) -> Value {
    let (status, summary) = judge(address, thresholds, now);
    let handshake = match &address.handshake {
        Ok(tls) => json!({ "ok": true, "version": tls.version, "cipher": tls.cipher }),
        Err(f) => {
            json!({ "ok": false, "stage": f.kind.stage().as_label(), "reason": f.kind.reason_label(), "detail": f.detail })
        }
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
                "not_after": date(info.not_after),
                "not_after_unix": info.not_after,
                "days_left": (info.not_after as f64 - now) / 86_400.0,
                "key_algorithm": info.key.algorithm,
                "key_bits": info.key.bits,
                "signature_algorithm": info.signature_algorithm,
                "fingerprint_sha256": cert.fingerprint_sha256,
            }),
            Err(e) => {
                json!({ "depth": depth, "error": e.to_string(), "fingerprint_sha256": cert.fingerprint_sha256 })
            }
        })
        .collect();
    json!({
        "ip": address.ip.map(|ip| ip.to_string()),
        "status": status.label(),
        "summary": summary,
        "handshake": handshake,
        "verification": verification,
        "chain": chain,
    })
}
