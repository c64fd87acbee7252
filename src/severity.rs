//! How bad one probed address is: the one classifier behind `certwatch check`'s exit
//! status, the status page's state and the expiry thresholds.
//!
//! [`judge`] takes one [`AddressOutcome`], the [`Thresholds`] and `now`, and gives a
//! [`Judgement`]: a [`Severity`], the [`Reason`] for it, and the [`Limit`]: the
//! certificate whose notAfter comes first among those that count. Which count follows
//! CONTRACT Part II section 8: when the chain verifies, the leaf and the verified path
//! up to and including the trust anchor (the path's earliest notAfter is
//! [`Verdict::Verified::path_not_after`], its presented certificates
//! [`Verdict::Verified::path`], so an extra presented certificate the path does not
//! use, such as an expired cross-signed root, does not page); when it does not, every
//! presented certificate. A legacy-only server (contract section 9) is judged by the
//! chain the legacy hello read, and is at least a warning.
//!
//! Pure: no I/O, `now` is an input. Formatting the judgement for a terminal or a page
//! (escaping the subject it names) is the caller's.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cert::ParsedCert;
use crate::files::ReadReason;
use crate::probe::outcome::{AddressOutcome, FailureKind, Verdict, VerifyReason};

const DAY: u64 = 86_400;

/// When a certificate's remaining time becomes a warning or critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// [`Severity::Warning`] when the limit is less than this away.
    pub warning: Duration,
    /// [`Severity::Critical`] when the limit is less than this away.
    pub critical: Duration,
}

impl Thresholds {
    /// 21 days and 7 days: the configuration's `thresholds:` defaults, `check
    /// --warn/--crit`'s defaults and the shipped rules' numbers.
    pub const DEFAULT: Thresholds = Thresholds {
        warning: Duration::from_secs(21 * DAY),
        critical: Duration::from_secs(7 * DAY),
    };
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How bad an address is, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Nothing to do.
    Ok,
    /// Needs attention, not at night.
    Warning,
    /// Clients fail or will soon.
    Critical,
}

impl Severity {
    /// `ok`, `warning` or `critical`.
    pub const fn as_label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why an address has its severity: the first that applies, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Resolve, connect, STARTTLS or the TLS handshake failed (critical).
    HandshakeFailed(FailureKind),
    /// The presented chain does not verify (critical).
    NotVerified(VerifyReason),
    /// The server presented no certificate (critical).
    NoCertificate,
    /// The certificate at `depth` cannot be read: critical for the leaf, whose expiry
    /// is then unknown; a warning for another, when nothing worse applies.
    Unreadable {
        /// Its position in the presented chain.
        depth: usize,
    },
    /// The limit is past (critical).
    Expired,
    /// The limit is less than [`Thresholds::critical`] away (critical).
    ExpiresWithinCritical,
    /// The limit is less than [`Thresholds::warning`] away (warning).
    ExpiresWithinWarning,
    /// The limit is far enough away, but only the legacy second hello reached the
    /// server: it speaks only TLS 1.0/1.1, or only suites, groups or schemes modern
    /// clients lack (warning).
    LegacyOnly,
    /// The limit is far enough away (ok).
    Valid,
    /// A certificate file could not be read whole (a warning, unless its certificates
    /// that could be read say worse).
    FileNotRead(ReadReason),
}

/// Which certificate sets the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder<'a> {
    /// A presented certificate.
    Presented {
        /// Its position in the presented chain (0 = leaf).
        depth: usize,
        /// Its subject DN, as the server sent it (escape it before showing it).
        subject: &'a str,
    },
    /// The trust anchor that ends the verified path, which the server did not present.
    TrustAnchor,
}

/// The first notAfter among the certificates that count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit<'a> {
    /// Whose notAfter it is.
    pub holder: Holder<'a>,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Seconds from `now` to notAfter; negative once expired.
    pub seconds_left: f64,
}

impl Limit<'_> {
    /// Days from `now` to notAfter; negative once expired.
    pub fn days_left(&self) -> f64 {
        self.seconds_left / DAY as f64
    }
}

/// The verdict on one address.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement<'a> {
    /// How bad.
    pub severity: Severity,
    /// Why.
    pub reason: Reason,
    /// The certificate that expires first among those that count; `None` when no
    /// certificate that counts could be read.
    pub limit: Option<Limit<'a>>,
}

/// The most characters of a subject a [`Judgement`]'s summary shows.
pub const MAX_SUMMARY_SUBJECT: usize = 160;

impl fmt::Display for Judgement<'_> {
    /// A one-line summary naming the limiting certificate, e.g. `certificate 1
    /// (CN=R3, O=Let's Encrypt) expires in 3.5 days`. The subject is raw: escape the
    /// line for its medium.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time_reason = match self.reason {
            Reason::HandshakeFailed(kind) => {
                write!(f, "{} failed ({})", kind.stage(), kind.reason_label())?;
                false
            }
            Reason::NotVerified(reason) => {
                write!(f, "chain does not verify ({})", reason.as_label())?;
                false
            }
            Reason::NoCertificate => {
                f.write_str("no certificate was presented")?;
                false
            }
            Reason::Unreadable { depth } => {
                write!(f, "certificate {depth} cannot be read")?;
                false
            }
            Reason::FileNotRead(reason) => {
                write!(f, "the file was not read whole ({reason})")?;
                false
            }
            Reason::LegacyOnly => {
                f.write_str("only a legacy TLS hello reaches the server")?;
                false
            }
            Reason::Expired
            | Reason::ExpiresWithinCritical
            | Reason::ExpiresWithinWarning
            | Reason::Valid => true,
        };
        let Some(limit) = &self.limit else {
            return Ok(());
        };
        if !time_reason {
            f.write_str("; ")?;
        }
        match limit.holder {
            Holder::Presented { depth, subject } => {
                write!(f, "certificate {depth}")?;
                let shown: String = subject.chars().take(MAX_SUMMARY_SUBJECT).collect();
                let more = if shown.len() < subject.len() {
                    "…"
                } else {
                    ""
                };
                if !shown.is_empty() {
                    write!(f, " ({shown}{more})")?;
                }
            }
            Holder::TrustAnchor => f.write_str("the trust anchor")?,
        }
        let days = limit.days_left();
        if limit.seconds_left <= 0.0 {
            write!(f, " expired {:.1} days ago", -days)
        } else {
            write!(f, " expires in {days:.1} days")
        }
    }
}

/// Judges one probed address at `now`.
pub fn judge<'a>(
    address: &'a AddressOutcome,
    thresholds: Thresholds,
    now: SystemTime,
) -> Judgement<'a> {
    // A legacy-only server completed no modern handshake, but its chain was read: it
    // is judged by its chain, and is at least a warning.
    let legacy_only = address.legacy_only();
    let failed = match &address.handshake {
        Err(failure) if !legacy_only => Some(Reason::HandshakeFailed(failure.kind)),
        _ => None,
    };
    judge_chain(
        &address.chain,
        address.verdict.as_ref(),
        failed,
        legacy_only,
        thresholds,
        now,
    )
}

/// Judges one certificate file's bundle at `now`: as a chain presented by a server,
/// but a file not read whole (`unread`) is a warning, unless what could be read of it
/// is critical.
pub fn judge_file<'a>(
    certs: &'a [std::sync::Arc<ParsedCert>],
    verdict: Option<&'a Verdict>,
    unread: Option<ReadReason>,
    thresholds: Thresholds,
    now: SystemTime,
) -> Judgement<'a> {
    let chain =
        (!certs.is_empty()).then(|| judge_chain(certs, verdict, None, false, thresholds, now));
    match (unread, chain) {
        (None, Some(judgement)) => judgement,
        (Some(_), Some(judgement)) if judgement.severity == Severity::Critical => judgement,
        (unread, judgement) => Judgement {
            severity: Severity::Warning,
            reason: Reason::FileNotRead(unread.unwrap_or(ReadReason::NoCertificate)),
            limit: judgement.and_then(|j| j.limit),
        },
    }
}

/// Judges a chain with its verdict, after a failure that comes first, if any; a chain
/// only the legacy second hello reached (`legacy_only`) is at least a warning.
fn judge_chain<'a>(
    chain: &'a [std::sync::Arc<ParsedCert>],
    verdict: Option<&'a Verdict>,
    failed: Option<Reason>,
    legacy_only: bool,
    thresholds: Thresholds,
    now: SystemTime,
) -> Judgement<'a> {
    let limit = limit(chain, verdict, unix_seconds(now));
    let unreadable = chain.iter().position(|c| c.info.is_err());
    let failure = match (failed, verdict) {
        (Some(reason), _) => Some(reason),
        (None, Some(Verdict::Failed { reason, .. })) => Some(Reason::NotVerified(*reason)),
        (None, _) if chain.is_empty() => Some(Reason::NoCertificate),
        (None, _) if unreadable == Some(0) || limit.is_none() => Some(Reason::Unreadable {
            depth: unreadable.unwrap_or(0),
        }),
        (None, _) => None,
    };
    if let Some(reason) = failure {
        return Judgement {
            severity: Severity::Critical,
            reason,
            limit,
        };
    }
    let (severity, reason) = match &limit {
        Some(l) if l.seconds_left <= 0.0 => (Severity::Critical, Reason::Expired),
        Some(l) if l.seconds_left < thresholds.critical.as_secs_f64() => {
            (Severity::Critical, Reason::ExpiresWithinCritical)
        }
        Some(l) if l.seconds_left < thresholds.warning.as_secs_f64() => {
            (Severity::Warning, Reason::ExpiresWithinWarning)
        }
        _ => match unreadable {
            Some(depth) => (Severity::Warning, Reason::Unreadable { depth }),
            None if legacy_only => (Severity::Warning, Reason::LegacyOnly),
            None => (Severity::Ok, Reason::Valid),
        },
    };
    Judgement {
        severity,
        reason,
        limit,
    }
}

/// The first notAfter among the certificates that count (see the module docs): the
/// verified path's when the chain verifies, else every readable presented one's.
/// Ties go to the certificate nearest the leaf.
fn limit<'a>(
    chain: &'a [std::sync::Arc<ParsedCert>],
    verdict: Option<&Verdict>,
    now: f64,
) -> Option<Limit<'a>> {
    let readable = || {
        chain
            .iter()
            .enumerate()
            .filter_map(|(depth, c): (usize, &std::sync::Arc<ParsedCert>)| {
                c.info.as_ref().ok().map(|info| (depth, info))
            })
    };
    let (holder, not_after) = match verdict {
        Some(Verdict::Verified {
            path_not_after,
            path,
        }) => {
            // The presented certificate of the path with the path's first notAfter;
            // none when the trust anchor (not presented) sets it.
            let holder = readable()
                .filter(|(depth, _)| path.contains(depth))
                .find(|(_, info)| info.not_after == *path_not_after)
                .map_or(Holder::TrustAnchor, |(depth, info)| Holder::Presented {
                    depth,
                    subject: &info.subject,
                });
            (holder, *path_not_after)
        }
        _ => {
            let (depth, info) = readable().min_by_key(|(_, info)| info.not_after)?;
            (
                Holder::Presented {
                    depth,
                    subject: &info.subject,
                },
                info.not_after,
            )
        }
    };
    Some(Limit {
        holder,
        not_after,
        seconds_left: not_after as f64 - now,
    })
}

/// Seconds since the Unix epoch, negative before it.
fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Outcomes made by hand for the tests of the modules that judge them.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::cert::{CertError, CertInfo, KeyInfo, ParsedCert};
    use crate::probe::outcome::{
        AddressOutcome, ConnectReason, Failure, FailureKind, PhaseTimes, TlsParams, Verdict,
    };

    /// The clock of every fixture: 2030-01-01T00:00:00Z.
    pub const NOW: i64 = 1_893_456_000;

    /// [`NOW`] as a `SystemTime`.
    pub fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW as u64)
    }

    /// A readable certificate with `subject` that expires `days` after [`NOW`].
    pub fn cert(subject: &str, days: f64) -> Arc<ParsedCert> {
        Arc::new(ParsedCert {
            fingerprint_sha256: format!("{:064x}", subject.len()),
            info: Ok(CertInfo {
                subject: subject.to_owned(),
                subject_cn: None,
                issuer: format!("issuer of {subject}"),
                issuer_cn: None,
                serial_hex: "01".into(),
                dns_names: vec!["a.example".into()],
                ip_addresses: vec![],
                not_before: NOW - 86_400,
                not_after: NOW + (days * 86_400.0) as i64,
                key: KeyInfo {
                    algorithm: "ECDSA",
                    bits: Some(256),
                },
                signature_algorithm: "ecdsa-with-SHA256".into(),
                self_issued: false,
                is_ca: false,
                must_staple: false,
            }),
        })
    }

    /// A certificate that did not parse.
    pub fn unreadable() -> Arc<ParsedCert> {
        Arc::new(ParsedCert {
            fingerprint_sha256: "0".repeat(64),
            info: Err(CertError::Malformed("test".into())),
        })
    }

    /// A completed handshake.
    pub fn tls() -> Result<TlsParams, Failure> {
        Ok(TlsParams {
            version: "TLSv1.3",
            cipher: "TLS13_AES_128_GCM_SHA256",
        })
    }

    /// A refused connection with `detail`.
    pub fn refused(detail: &str) -> Result<TlsParams, Failure> {
        Err(Failure::new(
            FailureKind::Connect(ConnectReason::Refused),
            detail,
        ))
    }

    /// The chain verified, its path (the leaf and the next two presented
    /// certificates) ending at `path_days` after [`NOW`].
    pub fn verified(path_days: f64) -> Option<Verdict> {
        Some(Verdict::Verified {
            path_not_after: NOW + (path_days * 86_400.0) as i64,
            path: vec![0, 1, 2],
        })
    }

    /// One probed address.
    pub fn address(
        handshake: Result<TlsParams, Failure>,
        chain: Vec<Arc<ParsedCert>>,
        verdict: Option<Verdict>,
    ) -> AddressOutcome {
        AddressOutcome {
            ip: Some(IpAddr::from([127, 0, 0, 1])),
            finished_at: now(),
            duration: Duration::from_millis(5),
            phases: PhaseTimes::default(),
            handshake,
            chain,
            verdict,
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            weaknesses: Vec::new(),
            revocation: None,
            host: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::probe::outcome::{ConnectReason, Failure, FailureKind, TlsParams};

    const T: Thresholds = Thresholds::DEFAULT;

    fn not_verified(reason: VerifyReason) -> Option<Verdict> {
        Some(Verdict::Failed {
            reason,
            detail: "detail".into(),
        })
    }

    #[test]
    fn the_default_thresholds_are_21_and_7_days() {
        assert_eq!(
            Thresholds::default().warning,
            Duration::from_secs(21 * 86_400)
        );
        assert_eq!(
            Thresholds::default().critical,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn failures_are_critical_in_the_order_they_happen() {
        let a = address(refused("nothing listens"), vec![], None);
        let j = judge(&a, T, now());
        assert_eq!(j.severity, Severity::Critical);
        assert_eq!(
            j.reason,
            Reason::HandshakeFailed(FailureKind::Connect(ConnectReason::Refused))
        );
        assert_eq!(j.limit, None);
        assert_eq!(j.to_string(), "connect failed (refused)");

        // A verification failure names the certificate that expires first.
        let a = address(
            tls(),
            vec![cert("CN=leaf", 60.0), cert("CN=inter", -2.0)],
            not_verified(VerifyReason::Expired),
        );
        let j = judge(&a, T, now());
        assert_eq!(j.severity, Severity::Critical);
        assert_eq!(j.reason, Reason::NotVerified(VerifyReason::Expired));
        assert_eq!(
            j.to_string(),
            "chain does not verify (expired); certificate 1 (CN=inter) expired 2.0 days ago"
        );

        let a = address(tls(), vec![], None);
        let j = judge(&a, T, now());
        assert_eq!(
            (j.severity, j.reason),
            (Severity::Critical, Reason::NoCertificate)
        );
    }

    #[test]
    fn an_unreadable_leaf_is_critical_and_another_unreadable_certificate_a_warning() {
        let a = address(
            tls(),
            vec![unreadable(), cert("CN=inter", 300.0)],
            verified(300.0),
        );
        let j = judge(&a, T, now());
        assert_eq!(
            (j.severity, j.reason),
            (Severity::Critical, Reason::Unreadable { depth: 0 })
        );
        assert!(
            j.to_string().starts_with("certificate 0 cannot be read; "),
            "{j}"
        );

        let a = address(
            tls(),
            vec![cert("CN=leaf", 90.0), unreadable()],
            verified(90.0),
        );
        let j = judge(&a, T, now());
        assert_eq!(
            (j.severity, j.reason),
            (Severity::Warning, Reason::Unreadable { depth: 1 })
        );
        // A nearer expiry says more than the unreadable certificate.
        let a = address(
            tls(),
            vec![cert("CN=leaf", 3.0), unreadable()],
            verified(3.0),
        );
        assert_eq!(judge(&a, T, now()).reason, Reason::ExpiresWithinCritical);
    }

    #[test]
    fn time_bands_match_the_shipped_alerts_at_their_edges() {
        let day = 86_400.0;
        for (days, severity, reason) in [
            (-1.0, Severity::Critical, Reason::Expired),
            (0.0, Severity::Critical, Reason::Expired),
            (1.0 / day, Severity::Critical, Reason::ExpiresWithinCritical),
            (
                7.0 - 1.0 / day,
                Severity::Critical,
                Reason::ExpiresWithinCritical,
            ),
            (7.0, Severity::Warning, Reason::ExpiresWithinWarning),
            (
                21.0 - 1.0 / day,
                Severity::Warning,
                Reason::ExpiresWithinWarning,
            ),
            (21.0, Severity::Ok, Reason::Valid),
            (400.0, Severity::Ok, Reason::Valid),
        ] {
            let a = address(tls(), vec![cert("CN=leaf", days)], None);
            let j = judge(&a, T, now());
            assert_eq!((j.severity, j.reason), (severity, reason), "{days} days");
        }
        let narrow = Thresholds {
            warning: Duration::from_secs(86_400),
            critical: Duration::from_secs(3_600),
        };
        let a = address(tls(), vec![cert("CN=leaf", 5.0)], None);
        assert_eq!(judge(&a, narrow, now()).severity, Severity::Ok);
    }

    #[test]
    fn a_verified_chain_counts_its_path_not_an_unused_extra() {
        // The extra (an expired cross-signed root, say) is presented but not on the
        // path: a hygiene finding, not an expiry.
        let a = address(
            tls(),
            vec![
                cert("CN=leaf", 60.0),
                cert("CN=inter", 300.0),
                cert("CN=old root", -30.0),
            ],
            verified(60.0),
        );
        let j = judge(&a, T, now());
        assert_eq!((j.severity, j.reason), (Severity::Ok, Reason::Valid));
        let limit = j.limit.expect("a limit");
        assert_eq!(
            limit.holder,
            Holder::Presented {
                depth: 0,
                subject: "CN=leaf"
            }
        );
        assert_eq!(
            j.to_string(),
            "certificate 0 (CN=leaf) expires in 60.0 days"
        );

        // An intermediate on the path that expires first sets the limit.
        let a = address(
            tls(),
            vec![cert("CN=leaf", 60.0), cert("CN=inter", 10.0)],
            verified(10.0),
        );
        let j = judge(&a, T, now());
        assert_eq!(j.severity, Severity::Warning);
        assert_eq!(
            j.to_string(),
            "certificate 1 (CN=inter) expires in 10.0 days"
        );

        // The trust anchor, not presented, ends first.
        let a = address(tls(), vec![cert("CN=leaf", 60.0)], verified(5.0));
        let j = judge(&a, T, now());
        assert_eq!(j.severity, Severity::Critical);
        assert_eq!(j.limit.map(|l| l.holder), Some(Holder::TrustAnchor));
        assert_eq!(j.to_string(), "the trust anchor expires in 5.0 days");
    }

    #[test]
    fn the_holder_is_named_from_the_path_not_from_an_unused_certificate_of_the_same_date() {
        // An unused extra at depth 1 expires the same second as the path's
        // intermediate at depth 2: the one on the path is named.
        let mut a = address(
            tls(),
            vec![
                cert("CN=leaf", 60.0),
                cert("CN=stray", 10.0),
                cert("CN=inter on the path", 10.0),
            ],
            None,
        );
        a.verdict = Some(Verdict::Verified {
            path_not_after: NOW + 10 * 86_400,
            path: vec![0, 2],
        });
        let j = judge(&a, T, now());
        assert_eq!(
            j.limit.map(|l| l.holder),
            Some(Holder::Presented {
                depth: 2,
                subject: "CN=inter on the path"
            })
        );
    }

    #[test]
    fn a_legacy_only_server_is_judged_by_its_chain_and_is_at_least_a_warning() {
        use crate::probe::outcome::HandshakeReason;
        let modern = Err(Failure::new(
            FailureKind::Handshake(HandshakeReason::ProtocolVersion),
            "protocol_version alert",
        ));
        let mut a = address(
            modern.clone(),
            vec![cert("CN=idrac", 200.0)],
            verified(200.0),
        );
        a.legacy = Some(TlsParams {
            version: "TLSv1.0",
            cipher: "TLS_RSA_WITH_AES_128_CBC_SHA",
        });
        let j = judge(&a, T, now());
        assert_eq!(
            (j.severity, j.reason),
            (Severity::Warning, Reason::LegacyOnly)
        );
        assert_eq!(
            j.to_string(),
            "only a legacy TLS hello reaches the server; certificate 0 (CN=idrac) expires in 200.0 days"
        );
        // Its expiry still makes it critical.
        let mut soon = address(modern.clone(), vec![cert("CN=idrac", 3.0)], verified(3.0));
        soon.legacy = a.legacy;
        let j = judge(&soon, T, now());
        assert_eq!(
            (j.severity, j.reason),
            (Severity::Critical, Reason::ExpiresWithinCritical)
        );
        // Without the legacy chain, the modern failure is what counts.
        let failed = address(modern, vec![], None);
        assert_eq!(judge(&failed, T, now()).severity, Severity::Critical);
    }

    #[test]
    fn an_unverified_chain_counts_every_presented_certificate_nearest_the_leaf_first() {
        let a = address(
            refused("late"),
            vec![cert("CN=leaf", 60.0), cert("CN=a", 4.0), cert("CN=b", 4.0)],
            None,
        );
        let j = judge(&a, T, now());
        let limit = j.limit.expect("a limit");
        assert_eq!(
            limit.holder,
            Holder::Presented {
                depth: 1,
                subject: "CN=a"
            }
        );
        assert!((limit.days_left() - 4.0).abs() < 1e-9);
        assert_eq!(
            j.to_string(),
            "connect failed (refused); certificate 1 (CN=a) expires in 4.0 days"
        );
    }

    #[test]
    fn a_long_subject_is_cut_in_the_summary() {
        let subject = format!("CN={}", "é".repeat(500));
        let a = address(tls(), vec![cert(&subject, 90.0)], None);
        let summary = judge(&a, T, now()).to_string();
        let shown: String = subject.chars().take(MAX_SUMMARY_SUBJECT).collect();
        assert_eq!(
            summary,
            format!("certificate 0 ({shown}…) expires in 90.0 days")
        );
    }
}
