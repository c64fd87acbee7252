//! Revocation: is a verified chain's certificate revoked, by OCSP (stapled or fetched)
//! and by CRL.
//!
//! This module owns the whole question after `probe::verify` has vouched for a chain:
//! the settings ([`Settings`]), the answer ([`Revocation`]: one [`Check`] per
//! certificate and source, with where the answer came from), and everything between:
//!
//! - [`ocsp`] builds requests (RFC 6960, SHA-1 CertIDs as RFC 5019 asks) and verifies
//!   responses: signed by the issuer or by a responder the issuer certified for
//!   id-kp-OCSPSigning, for this certificate's serial, `thisUpdate` not in the future
//!   and `nextUpdate` not past;
//! - [`crl`] reads a CRL in one pass without holding its entries (a 32 MiB CRL is
//!   reduced to a compact sorted set of its revoked serials, [`crl::RevokedSerials`]),
//!   and verifies its signature, issuer, scope and dates;
//! - [`fetch`] is the HTTP/1.1 client: only `http://` URLs taken from the
//!   certificates, bounded by the probe's deadline and a size limit, no redirect to
//!   another host, and never to a loopback, private, link-local or unspecified address
//!   ([`address`]) unless `allow_private_addresses` is set: the address checked is the
//!   one connected to, after DNS;
//! - [`cache`] is the one process-wide cache of fetched answers: one fetch per URL
//!   (and CertID) however many targets share it, kept until `nextUpdate` (at most a
//!   day), and a failing responder costs one attempt per back-off period, not one per
//!   target;
//! - [`signature`] checks a signature with the algorithms rustls uses.
//!
//! Probing, verification and metrics are left to `probe`, `probe::verify` and
//! `metrics`; this module never sees a [`crate::config::TargetSpec`].

pub mod address;
pub mod cache;
pub mod crl;
pub mod fetch;
pub mod ocsp;
pub mod signature;

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use tokio::time::Instant;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// Largest OCSP response accepted, stapled or fetched.
pub const MAX_OCSP_BYTES: usize = 64 * 1024;
/// Largest CRL accepted.
pub const MAX_CRL_BYTES: usize = 32 * 1024 * 1024;
/// How far in the future a `thisUpdate` may be before the answer counts as stale: the
/// clocks of certwatch and of a responder that signs "now" differ by a few seconds.
pub const CLOCK_SKEW: i64 = 5 * 60;
/// The longest an answer is reused, whatever its `nextUpdate`: a CA that revokes a
/// certificate updates its responder and CRL at once, but an earlier answer stays
/// valid until its `nextUpdate`, which may be a week away. Asking again at least daily
/// bounds how long a revocation goes unnoticed to a day.
pub const MAX_AGE: i64 = 24 * 60 * 60;

/// `ocsp:`: where OCSP answers come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcspMode {
    /// Read a stapled response; fetch nothing.
    #[default]
    Stapled,
    /// Use a staple when it answers, else ask the responder.
    Fetch,
    /// No OCSP.
    Off,
}

/// `depth:`: which certificates are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// The leaf only.
    #[default]
    Leaf,
    /// Every certificate of the verified path below the trust anchor.
    Chain,
}

/// `crl:`: whether CRLs are fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlMode {
    /// No CRL.
    #[default]
    Off,
    /// Fetch the CRL of each checked certificate's distribution point.
    Fetch,
}

/// A keyword that is not one of a setting's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid value {given:?}: use one of {expected}")]
pub struct KeywordError {
    /// What was given.
    pub given: String,
    /// The values allowed, e.g. `stapled, fetch, off`.
    pub expected: &'static str,
}

macro_rules! keywords {
    ($type:ty, $expected:literal, $($word:literal => $value:expr),+) => {
        impl FromStr for $type {
            type Err = KeywordError;
            fn from_str(text: &str) -> Result<Self, KeywordError> {
                match text {
                    $($word => Ok($value),)+
                    _ => Err(KeywordError { given: text.to_owned(), expected: $expected }),
                }
            }
        }
    };
}
keywords!(OcspMode, "stapled, fetch, off", "stapled" => OcspMode::Stapled, "fetch" => OcspMode::Fetch, "off" => OcspMode::Off);
keywords!(Depth, "leaf, chain", "leaf" => Depth::Leaf, "chain" => Depth::Chain);
keywords!(CrlMode, "off, fetch", "off" => CrlMode::Off, "fetch" => CrlMode::Fetch);

/// A target's `revocation:` settings, resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Settings {
    /// OCSP.
    pub ocsp: OcspMode,
    /// Which certificates.
    pub depth: Depth,
    /// CRLs.
    pub crl: CrlMode,
    /// Fetch from loopback, private, link-local or unspecified addresses too.
    pub allow_private_addresses: bool,
}

impl Settings {
    /// Whether anything is checked at all.
    pub fn enabled(&self) -> bool {
        self.ocsp != OcspMode::Off || self.crl != CrlMode::Off
    }
}

/// The settings as the configuration spells them, e.g. `ocsp fetch, depth leaf, crl
/// off`, for transcripts.
impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ocsp = match self.ocsp {
            OcspMode::Stapled => "stapled",
            OcspMode::Fetch => "fetch",
            OcspMode::Off => "off",
        };
        let depth = match self.depth {
            Depth::Leaf => "leaf",
            Depth::Chain => "chain",
        };
        let crl = match self.crl {
            CrlMode::Off => "off",
            CrlMode::Fetch => "fetch",
        };
        write!(f, "ocsp {ocsp}, depth {depth}, crl {crl}")?;
        if self.allow_private_addresses {
            f.write_str(", private addresses allowed")?;
        }
        Ok(())
    }
}

/// Where an answer came from: the `source` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The OCSP response the server stapled to the handshake.
    OcspStapled,
    /// An OCSP response fetched from the certificate's responder.
    Ocsp,
    /// The CRL of the certificate's distribution point.
    Crl,
}

impl Source {
    /// The `source` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            Source::OcspStapled => "ocsp_stapled",
            Source::Ocsp => "ocsp",
            Source::Crl => "crl",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// Why a source gave no answer: the `reason` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The URL is on an address certwatch may not fetch from.
    RefusedAddress,
    /// The name did not resolve, the connection failed, or the server answered with an
    /// error, a redirect to another host, or not HTTP.
    FetchFailed,
    /// No answer before the probe's deadline.
    Timeout,
    /// Larger than the limit (64 KiB for OCSP, 32 MiB for a CRL).
    TooLarge,
    /// Not a well-formed response or CRL, or one for another certificate.
    Malformed,
    /// Not signed by the issuer or a responder it certified.
    BadSignature,
    /// `thisUpdate` in the future or `nextUpdate` past.
    Stale,
    /// The responder does not know the certificate.
    UnknownStatus,
}

impl Reason {
    /// The `reason` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            Reason::RefusedAddress => "refused_address",
            Reason::FetchFailed => "fetch_failed",
            Reason::Timeout => "timeout",
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
            Reason::BadSignature => "bad_signature",
            Reason::Stale => "stale",
            Reason::UnknownStatus => "unknown_status",
        }
    }
}

/// A source that gave no answer, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({detail})", reason.as_label())]
pub struct Failure {
    /// The label.
    pub reason: Reason,
    /// Free text for logs, `check` and the status page; never a label.
    pub detail: String,
}

impl Failure {
    /// A failure for `reason`.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// A revocation, as the CA reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revoked {
    /// When, Unix seconds.
    pub at: i64,
    /// The CRLReason code (RFC 5280 5.3.1), when given.
    pub reason_code: Option<u8>,
}

/// What a source says about a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// `Some` when revoked.
    pub revoked: Option<Revoked>,
    /// The answer's `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// The answer's `nextUpdate`, Unix seconds, when it has one.
    pub next_update: Option<i64>,
}

/// One certificate checked by one source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Its position in the presented chain (0 = leaf).
    pub depth: usize,
    /// Which source.
    pub source: Source,
    /// The answer, or why there is none.
    pub result: Result<Status, Failure>,
    /// Where the answer came from: the URL fetched; `None` for a staple.
    pub url: Option<String>,
    /// When the answer was fetched, or the failed attempt made (a refused address
    /// included), Unix seconds; `None` for a staple, and for a failure given without
    /// an attempt while the responder is backed off.
    pub fetched_at: Option<i64>,
    /// Whether the answer came from the cache (fetched earlier, or for another target)
    /// rather than by a fetch that this probe waited for.
    pub cached: bool,
}

impl Check {
    /// Whether this check found the certificate revoked.
    pub fn revoked(&self) -> Option<Revoked> {
        self.result.as_ref().ok().and_then(|s| s.revoked)
    }
}

/// The revocation facts of one probed address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revocation {
    /// Whether the handshake carried a stapled OCSP response; `None` when `ocsp: off`
    /// or the handshake did not get as far as the server's certificate.
    pub stapled: Option<bool>,
    /// One per certificate and source that was checked, by depth then source.
    pub checks: Vec<Check>,
}

impl Revocation {
    /// The first check that found a certificate revoked.
    pub fn first_revoked(&self) -> Option<(&Check, Revoked)> {
        self.checks.iter().find_map(|c| Some((c, c.revoked()?)))
    }
}

/// A certificate's issuer, as the verified path knows it: a presented certificate, or a
/// trust anchor known by name and key only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    /// Its subject Name, DER (tag and length included).
    pub name: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER (tag and length included).
    pub spki: Vec<u8>,
    /// Its certificate, when it is one (not for a trust anchor).
    pub cert: Option<CertificateDer<'static>>,
}

/// A certificate of a verified path with its issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its position in the presented chain.
    pub depth: usize,
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// Who issued it.
    pub issuer: Issuer,
}

/// What a certificate offers to revocation checking.
#[derive(Debug, Default)]
struct Pointers {
    /// The serial's INTEGER content bytes.
    serial: Vec<u8>,
    /// The `http://` OCSP responder URLs of the AIA extension.
    ocsp: Vec<String>,
    /// The `http://` URLs of the distribution points that are not partitioned by reason
    /// and not of another CRL issuer.
    crl: Vec<String>,
    /// Every URI of every distribution point, to match a CRL's scope.
    crl_names: Vec<String>,
    is_ca: bool,
}

fn pointers(der: &[u8]) -> Option<Pointers> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut found = Pointers {
        serial: cert.raw_serial().to_vec(),
        is_ca: cert.is_ca(),
        ..Pointers::default()
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    // id-ad-ocsp
                    if desc.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                        if let GeneralName::URI(uri) = desc.access_location {
                            if is_http(uri) {
                                found.ocsp.push(uri.to_owned());
                            }
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    else {
                        continue;
                    };
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            found.crl_names.push((*uri).to_owned());
                            if is_http(uri) && point.reasons.is_none() && point.crl_issuer.is_none()
                            {
                                found.crl.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(found)
}

fn is_http(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// Checks the certificates of `links` (a verified path; empty when the chain did not
/// verify) as `settings` ask, with `staple` (the OCSP response the handshake carried)
/// for the leaf. Every wait ends by `deadline`; `now` judges the answers' dates.
pub async fn check(
    settings: &Settings,
    links: &[Link],
    staple: Option<&[u8]>,
    deadline: Instant,
    now: SystemTime,
) -> Revocation {
    let mut revocation = Revocation {
        stapled: (settings.ocsp != OcspMode::Off).then_some(staple.is_some()),
        checks: Vec::new(),
    };
    let now_s = unix(now);
    let wanted = links.iter().filter(|link| match settings.depth {
        Depth::Leaf => link.depth == 0,
        Depth::Chain => true,
    });
    let checks = wanted.map(|link| check_one(settings, link, staple, deadline, now, now_s));
    for checks in futures_util::future::join_all(checks).await {
        revocation.checks.extend(checks);
    }
    revocation
}

async fn check_one(
    settings: &Settings,
    link: &Link,
    staple: Option<&[u8]>,
    deadline: Instant,
    now: SystemTime,
    now_s: i64,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(pointers) = pointers(&link.cert) else {
        return checks;
    };
    let depth = link.depth;
    let mut answered = false;
    if settings.ocsp != OcspMode::Off && depth == 0 {
        if let Some(staple) = staple {
            let result = ocsp::verify(staple, &pointers.serial, &link.issuer, now_s)
                .and_then(|answer| answer.judge(now_s));
            answered = result.is_ok();
            checks.push(Check {
                depth,
                source: Source::OcspStapled,
                result,
                url: None,
                fetched_at: None,
                cached: false,
            });
        }
    }
    let ocsp = async {
        match pointers.ocsp.first() {
            Some(url) if settings.ocsp == OcspMode::Fetch && !answered => Some(
                ocsp::fetch(
                    url,
                    &pointers.serial,
                    &link.issuer,
                    settings.allow_private_addresses,
                    deadline,
                    now,
                )
                .await,
            ),
            _ => None,
        }
    };
    let crl = async {
        match pointers.crl.first() {
            Some(url) if settings.crl == CrlMode::Fetch => Some(
                crl::fetch(
                    url,
                    &pointers,
                    &link.issuer,
                    settings.allow_private_addresses,
                    deadline,
                    now,
                )
                .await,
            ),
            _ => None,
        }
    };
    let (ocsp, crl) = futures_util::future::join(ocsp, crl).await;
    for (source, lookup) in [(Source::Ocsp, ocsp), (Source::Crl, crl)] {
        if let Some(lookup) = lookup {
            checks.push(Check {
                depth,
                source,
                result: lookup.result,
                url: Some(lookup.url),
                fetched_at: lookup.fetched_at.map(unix),
                cached: lookup.cached,
            });
        }
    }
    checks
}

/// What a fetched source said, and where it came from.
#[derive(Debug)]
pub struct Lookup {
    /// The answer for the certificate, judged at `now`.
    pub result: Result<Status, Failure>,
    /// The URL.
    pub url: String,
    /// When it was fetched.
    pub fetched_at: Option<SystemTime>,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Unix seconds of `time`.
pub fn unix(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The DER INTEGER content `bytes` in its one canonical (minimal two's complement)
/// form, so that a serial written with a redundant leading byte still matches.
pub fn canonical_integer(bytes: &[u8]) -> &[u8] {
    let mut b = bytes;
    while b.len() > 1 && ((b[0] == 0x00 && b[1] & 0x80 == 0) || (b[0] == 0xff && b[1] & 0x80 != 0))
    {
        b = &b[1..];
    }
    b
}

/// A DER TLV of `tag` around `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The name of a CRLReason code (RFC 5280 5.3.1).
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

impl Check {
    /// One line for people: the source, the answer and where it came from, e.g.
    /// `depth 0, crl: not revoked (thisUpdate …, nextUpdate …) from http://… fetched at
    /// … (cached)`, or `depth 0, ocsp: no answer, timeout: …; tried http://… at …`. URLs and details come from certificates and servers: escape the
    /// line before a terminal or a page shows it.
    pub fn describe(&self) -> String {
        let date = crate::cert::rfc3339;
        let answer = match &self.result {
            Ok(status) => {
                let verdict = match status.revoked {
                    Some(revoked) => format!(
                        "REVOKED at {}{}",
                        date(revoked.at),
                        revoked
                            .reason_code
                            .map(|c| format!(" ({})", reason_name(c)))
                            .unwrap_or_default()
                    ),
                    None => "not revoked".to_owned(),
                };
                let next = status
                    .next_update
                    .map(|n| format!(", nextUpdate {}", date(n)))
                    .unwrap_or_default();
                format!("{verdict} (thisUpdate {}{next})", date(status.this_update))
            }
            Err(failure) => format!(
                "no answer, {}: {}",
                failure.reason.as_label(),
                failure.detail
            ),
        };
        let cached = if self.cached { " (cached)" } else { "" };
        let origin = match (&self.url, self.fetched_at, self.result.is_ok()) {
            (None, ..) => " from the handshake's staple".to_owned(),
            (Some(url), Some(at), true) => format!(" from {url}, fetched at {}{cached}", date(at)),
            (Some(url), Some(at), false) => format!("; tried {url} at {}{cached}", date(at)),
            (Some(url), None, _) => format!("; {url} not tried (backing off){cached}"),
        };
        format!("depth {}, {}: {answer}{origin}", self.depth, self.source)
    }

    /// The check as JSON, for `check --json` and debug transcripts.
    pub fn to_json(&self) -> serde_json::Value {
        let date = crate::cert::rfc3339;
        let mut doc = serde_json::json!({
            "depth": self.depth,
            "source": self.source.as_label(),
            "url": self.url,
            "fetched_at": self.fetched_at.map(date),
            "cached": self.cached,
        });
        match &self.result {
            Ok(status) => {
                doc["revoked"] = serde_json::json!(status.revoked.is_some());
                doc["revoked_at"] = serde_json::json!(status.revoked.map(|r| date(r.at)));
                doc["revocation_reason"] =
                    serde_json::json!(status.revoked.and_then(|r| r.reason_code).map(reason_name));
                doc["this_update"] = serde_json::json!(date(status.this_update));
                doc["next_update"] = serde_json::json!(status.next_update.map(date));
            }
            Err(failure) => {
                doc["failure"] = serde_json::json!({
                    "reason": failure.reason.as_label(),
                    "detail": failure.detail,
                });
            }
        }
        doc
    }
}

impl Revocation {
    /// The revocation facts as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ocsp_stapled": self.stapled,
            "checks": self.checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_compare_in_their_canonical_form() {
        assert_eq!(canonical_integer(&[0x00, 0x12]), &[0x12]);
        assert_eq!(canonical_integer(&[0x00, 0x92]), &[0x00, 0x92]);
        assert_eq!(canonical_integer(&[0xff, 0x92]), &[0x92]);
        assert_eq!(canonical_integer(&[0xff, 0x12]), &[0xff, 0x12]);
        assert_eq!(canonical_integer(&[0x00]), &[0x00]);
        assert_eq!(canonical_integer(&[0x00, 0x00, 0x01]), &[0x01]);
    }

    #[test]
    fn keywords_parse_and_name_the_values_allowed() {
        assert_eq!("fetch".parse::<OcspMode>(), Ok(OcspMode::Fetch));
        assert_eq!("chain".parse::<Depth>(), Ok(Depth::Chain));
        assert_eq!("off".parse::<CrlMode>(), Ok(CrlMode::Off));
        let e = "yes".parse::<CrlMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value \"yes\": use one of off, fetch"
        );
    }
}
