//! Certificate facts: x509-parser turns one DER certificate into a [`ParsedCert`].
//!
//! Pure: no I/O and no clock; [`ParsedCert::shared`] keeps one copy of each certificate.
//! A certificate that does not parse is a value (`info: Err(`[`CertError`]`)`), never a
//! panic, so a hostile server cannot stop a probe here.
//!
//! This module also owns how certificate facts are written as text: the serial keeps
//! the sign of its DER INTEGER ([`CertInfo::serial_hex`]), a DNS name in a
//! comma-separated list is escaped by [`list_item`], and the validity dates are read by
//! [`read_time`], which explains a date it cannot represent instead of guessing.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

use crate::shared::Shared;

/// The SANs kept per certificate at most; a hostile certificate may carry thousands.
pub const MAX_SANS: usize = 256;

/// One presented certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCert {
    /// SHA-256 of the DER, lowercase hex: known even when the certificate does not parse.
    pub fingerprint_sha256: String,
    /// What the certificate says, or why it could not be read.
    pub info: Result<CertInfo, CertError>,
}

/// Why a certificate's facts could not be read. Every message starts with
/// `certificate does not parse`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// x509-parser refused the DER; its error says where.
    #[error("certificate does not parse: {0}")]
    Malformed(String),
    /// A validity date is not a time certwatch can represent.
    #[error(
        "certificate does not parse: its {field} {raw:?} ({kind}) is not a valid time: {problem}"
    )]
    Validity {
        /// Which date.
        field: ValidityField,
        /// The encoded time as sent (lossy UTF-8, cut at [`MAX_RAW_TIME`] characters).
        raw: String,
        /// The ASN.1 type it was sent as.
        kind: TimeKind,
        /// What is wrong with it.
        problem: TimeProblem,
    },
}

/// The longest encoded time kept in a [`CertError::Validity`], in characters.
pub const MAX_RAW_TIME: usize = 40;

/// notBefore or notAfter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidityField {
    /// The start of the validity period.
    NotBefore,
    /// The end of the validity period.
    NotAfter,
}

impl fmt::Display for ValidityField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidityField::NotBefore => "notBefore",
            ValidityField::NotAfter => "notAfter",
        })
    }
}

/// The ASN.1 type a validity date was sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeKind {
    /// UTCTime: two-digit year, 50-99 meaning 1950-1999 and 00-49 meaning 2000-2049.
    UtcTime,
    /// GeneralizedTime: four-digit year.
    GeneralizedTime,
    /// Neither: the universal tag number sent.
    Other(u32),
}

impl fmt::Display for TimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeKind::UtcTime => f.write_str("UTCTime"),
            TimeKind::GeneralizedTime => f.write_str("GeneralizedTime"),
            TimeKind::Other(tag) => write!(f, "ASN.1 tag {tag}"),
        }
    }
}

/// What is wrong with an encoded time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeProblem {
    /// Neither UTCTime nor GeneralizedTime.
    NotATime,
    /// Not in the form of its type: a non-digit, a missing or extra character, a
    /// fraction of a second in a UTCTime or of more than three digits, a
    /// GeneralizedTime not ending in `Z`.
    Syntax,
    /// A month outside 1-12.
    Month(u8),
    /// A day the month does not have (e.g. 30 February, 29 February 2001).
    Day(u8),
    /// An hour outside 0-23.
    Hour(u8),
    /// A minute outside 0-59.
    Minute(u8),
    /// A second outside 0-59: a leap second has no Unix time.
    Second(u8),
    /// A UTC offset outside -23:59 to +23:59.
    Offset,
}

impl fmt::Display for TimeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeProblem::NotATime => f.write_str("neither a UTCTime nor a GeneralizedTime"),
            TimeProblem::Syntax => f.write_str("not in the form YYMMDDHHMM[SS]Z (UTCTime) or YYYYMMDDHHMM[SS[.fff]]Z (GeneralizedTime)"),
            TimeProblem::Month(m) => write!(f, "month {m} does not exist"),
            TimeProblem::Day(d) => write!(f, "the month has no day {d}"),
            TimeProblem::Hour(h) => write!(f, "hour {h} does not exist"),
            TimeProblem::Minute(m) => write!(f, "minute {m} does not exist"),
            TimeProblem::Second(s) => write!(f, "second {s} does not exist (a leap second has no Unix time)"),
            TimeProblem::Offset => f.write_str("the UTC offset is out of range"),
        }
    }
}

/// The facts certwatch reports about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject DN, RFC 4514 style.
    pub subject: String,
    /// The subject's first common name.
    pub subject_cn: Option<String>,
    /// The issuer DN.
    pub issuer: String,
    /// The issuer's first common name.
    pub issuer_cn: Option<String>,
    /// The serial number as `openssl x509 -serial` prints it, in lowercase: the hex of
    /// its magnitude in whole bytes without leading zero bytes (`00` for zero), with a
    /// leading `-` when the DER INTEGER is negative (two's complement). Empty when the
    /// INTEGER has no content octets (not DER).
    pub serial_hex: String,
    /// DNS subject alternative names (at most [`MAX_SANS`]).
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<String>,
    /// notBefore, Unix seconds (whole seconds, a fraction dropped), as read by [`read_time`].
    pub not_before: i64,
    /// notAfter, Unix seconds (whole seconds, a fraction dropped), as read by [`read_time`].
    pub not_after: i64,
    /// The public key.
    pub key: KeyInfo,
    /// The signature algorithm name, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// The basic constraints say CA.
    pub is_ca: bool,
    /// The TLS feature extension (RFC 7633) asks for status_request: "must-staple", a
    /// server presenting it must staple an OCSP response.
    pub must_staple: bool,
}

/// The public key type and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `RSA-PSS`, `ECDSA`, `Ed25519`, `Ed448`, `DSA` or `unknown`.
    pub algorithm: &'static str,
    /// The size in bits, when known.
    pub bits: Option<u32>,
}

impl KeyInfo {
    /// Whether this is an RSA key (an RSA-PSS one included).
    pub fn is_rsa(self) -> bool {
        matches!(self.algorithm, "RSA" | "RSA-PSS")
    }

    /// Whether browsers would refuse the key as too weak.
    pub fn is_weak(self) -> bool {
        match (self.algorithm, self.bits) {
            ("RSA" | "RSA-PSS", Some(bits)) => bits < 2048,
            ("ECDSA", Some(bits)) => bits < 224,
            ("DSA", _) => true,
            _ => false,
        }
    }
}

impl ParsedCert {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Self {
        Self::parse(der, fingerprint(der))
    }

    /// The parsed certificate for `der`, shared with every other holder of the same
    /// certificate: a chain's intermediates are parsed and stored once, not per target.
    pub fn shared(der: &[u8]) -> Arc<ParsedCert> {
        static PARSED: Shared<ParsedCert> = Shared::new();
        let fingerprint = fingerprint(der);
        PARSED.get_or_insert(&fingerprint.clone(), || {
            Arc::new(Self::parse(der, fingerprint))
        })
    }

    fn parse(der: &[u8], fingerprint_sha256: String) -> Self {
        let info = match X509Certificate::from_der(der) {
            Ok((_, cert)) => validity(der).and_then(|dates| {
                dates
                    .ok_or_else(|| CertError::Malformed("no validity found".into()))
                    .map(|(not_before, not_after)| describe(&cert, not_before, not_after))
            }),
            // x509-parser says only "InvalidDate": say which date and why.
            Err(x509_parser::nom::Err::Error(X509Error::InvalidDate))
            | Err(x509_parser::nom::Err::Failure(X509Error::InvalidDate)) => match validity(der) {
                Err(e) => Err(e),
                Ok(_) => Err(CertError::Malformed(
                    "a validity date is not a time x509-parser reads".into(),
                )),
            },
            Err(e) => Err(CertError::Malformed(e.to_string())),
        };
        Self {
            fingerprint_sha256,
            info,
        }
    }

    /// notAfter, when the certificate parsed.
    pub fn not_after(&self) -> Option<i64> {
        self.info.as_ref().ok().map(|i| i.not_after)
    }
}

fn fingerprint(der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

fn describe(cert: &X509Certificate<'_>, not_before: i64, not_after: i64) -> CertInfo {
    let (dns_names, ip_addresses) = subject_alt_names(cert);
    CertInfo {
        subject: cert.subject().to_string(),
        subject_cn: common_name(cert.subject()),
        issuer: cert.issuer().to_string(),
        issuer_cn: common_name(cert.issuer()),
        serial_hex: serial_hex(cert.raw_serial()),
        dns_names,
        ip_addresses,
        not_before,
        not_after,
        key: key_info(cert),
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: cert.is_ca(),
        must_staple: must_staple(cert),
    }
}

/// id-pe-tlsfeature (RFC 7633).
const TLS_FEATURE: &str = "1.3.6.1.5.5.7.1.24";
/// The TLS extension number of status_request.
const STATUS_REQUEST: u32 = 5;

/// Whether the TLS feature extension lists status_request. An extension that does not
/// parse as a SEQUENCE OF INTEGER lists nothing.
fn must_staple(cert: &X509Certificate<'_>) -> bool {
    cert.extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == TLS_FEATURE)
        .any(|e| {
            <Vec<u32> as der::Decode>::from_der(e.value)
                .is_ok_and(|features| features.contains(&STATUS_REQUEST))
        })
}

fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in san.value.general_names.iter().take(MAX_SANS) {
            match name {
                GeneralName::DNSName(n) => dns.push((*n).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ips.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

fn key_info(cert: &X509Certificate<'_>) -> KeyInfo {
    let spki = cert.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyInfo {
            algorithm: "RSA",
            bits: Some(significant_bits(rsa.modulus)),
        },
        Ok(PublicKey::EC(point)) => KeyInfo {
            algorithm: "ECDSA",
            bits: u32::try_from(point.key_size()).ok().filter(|b| *b > 0),
        },
        Ok(PublicKey::DSA(y)) => KeyInfo {
            algorithm: "DSA",
            bits: Some(significant_bits(y)),
        },
        _ => match spki.algorithm.algorithm.to_id_string().as_str() {
            // RSASSA-PSS (RFC 4055): an RSAPublicKey restricted to PSS signatures.
            "1.2.840.113549.1.1.10" => KeyInfo {
                algorithm: "RSA-PSS",
                bits: x509_parser::public_key::RSAPublicKey::from_der(
                    &spki.subject_public_key.data,
                )
                .ok()
                .map(|(_, rsa)| significant_bits(rsa.modulus)),
            },
            "1.3.101.112" => KeyInfo {
                algorithm: "Ed25519",
                bits: Some(256),
            },
            "1.3.101.113" => KeyInfo {
                algorithm: "Ed448",
                bits: Some(456),
            },
            _ => KeyInfo {
                algorithm: "unknown",
                bits: None,
            },
        },
    }
}

/// The bit length of a big-endian unsigned integer.
fn significant_bits(bytes: &[u8]) -> u32 {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    match bytes[start..] {
        [] => 0,
        [first, ..] => {
            let rest = u32::try_from(bytes.len() - start - 1).unwrap_or(u32::MAX / 16);
            rest.saturating_mul(8)
                .saturating_add(8 - first.leading_zeros())
        }
    }
}

/// The content octets of a DER INTEGER as `openssl x509 -serial` prints them (in
/// lowercase): a two's complement negative number as `-` and the hex of its magnitude.
/// Redundant leading `00` (or, negative, `ff`) octets of a non-minimal encoding go.
fn serial_hex(raw: &[u8]) -> String {
    let Some(first) = raw.first() else {
        return String::new();
    };
    let minimal = |bytes: &[u8]| {
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        hex(&bytes[start..])
    };
    if first & 0x80 == 0 {
        return minimal(raw);
    }
    // The magnitude of a negative number: invert every bit and add one. The carry
    // cannot leave the first octet, whose top bit was set.
    let mut magnitude: Vec<u8> = raw.iter().map(|b| !b).collect();
    for b in magnitude.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            break;
        }
    }
    format!("-{}", minimal(&magnitude))
}

/// `99991231235959Z`: RFC 5280 (4.1.2.5) gives this notAfter to a certificate that has
/// no well-defined expiration date.
pub const NO_WELL_DEFINED_EXPIRATION: i64 = 253_402_300_799;

/// A Unix time as RFC 3339 in UTC. Every date [`read_time`] gives is representable;
/// a number outside years 0-9999 says so rather than pass for a date.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("Unix time {unix} (outside the years 0000-9999)"))
}

/// `name` as an item of a comma-separated list: `%` becomes `%25` and `,` becomes
/// `%2C`, so a comma in a list is always a separator. Every real DNS name (letters,
/// digits, `-`, `_`, `.`, `*`) comes out unchanged.
pub fn list_item(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', ',']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// notBefore and notAfter of the certificate `der`, each read by [`read_time`].
/// `Ok(None)` when the DER has no validity where RFC 5280 puts it (x509-parser then
/// explains what is wrong instead).
fn validity(der: &[u8]) -> Result<Option<(i64, i64)>, CertError> {
    let Some([not_before, not_after]) = raw_validity(der) else {
        return Ok(None);
    };
    let read = |field: ValidityField, time: &Any<'_>| {
        read_time(time.tag(), time.data).map_err(|(kind, problem)| CertError::Validity {
            field,
            raw: String::from_utf8_lossy(time.data)
                .chars()
                .take(MAX_RAW_TIME)
                .collect(),
            kind,
            problem,
        })
    };
    Ok(Some((
        read(ValidityField::NotBefore, &not_before)?,
        read(ValidityField::NotAfter, &not_after)?,
    )))
}

/// The two times of the validity: Certificate → TBSCertificate → (\[0\] version,)
/// serial, signature, issuer, validity.
fn raw_validity(der: &[u8]) -> Option<[Any<'_>; 2]> {
    let (_, certificate) = Any::from_der(der).ok()?;
    let (_, tbs) = Any::from_der(certificate.data).ok()?;
    let (after_first, first) = Any::from_der(tbs.data).ok()?;
    let mut rest = if first.class() == Class::ContextSpecific && first.tag() == Tag(0) {
        after_first
    } else {
        tbs.data
    };
    for _ in 0..3 {
        rest = Any::from_der(rest).ok()?.0;
    }
    let (_, validity) = Any::from_der(rest).ok()?;
    let (rest, not_before) = Any::from_der(validity.data).ok()?;
    let (_, not_after) = Any::from_der(rest).ok()?;
    Some([not_before, not_after])
}

/// Reads one validity time to Unix seconds, or says why it cannot.
///
/// Accepted: UTCTime `YYMMDDHHMM[SS](Z|±HHMM)` (years 50-99 are 1950-1999, 00-49 are
/// 2000-2049, as RFC 5280 says) and GeneralizedTime `YYYYMMDDHHMM[SS[.f]]Z` with one
/// to three digits of fraction, which is dropped: the forms x509-parser 0.18 accepts,
/// less its mistakes (it reads `-00MM` as `+00:MM` and takes offsets of up to ±25 hours).
/// RFC 5280 itself allows only `YYMMDDHHMMSSZ` and `YYYYMMDDHHMMSSZ`; webpki,
/// which verifies the chain, refuses every other form. Every date accepted lies in
/// the years 0000-9999, which `time` and RFC 3339 represent.
pub fn read_time(tag: Tag, text: &[u8]) -> Result<i64, (TimeKind, TimeProblem)> {
    let kind = match tag {
        Tag::UtcTime => TimeKind::UtcTime,
        Tag::GeneralizedTime => TimeKind::GeneralizedTime,
        Tag(other) => return Err((TimeKind::Other(other), TimeProblem::NotATime)),
    };
    parse_time(kind, text).map_err(|problem| (kind, problem))
}

fn parse_time(kind: TimeKind, text: &[u8]) -> Result<i64, TimeProblem> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

    let two = |at: usize| -> Result<u8, TimeProblem> {
        match text.get(at..at + 2) {
            Some([hi @ b'0'..=b'9', lo @ b'0'..=b'9']) => Ok((hi - b'0') * 10 + (lo - b'0')),
            _ => Err(TimeProblem::Syntax),
        }
    };
    let (year, at) = match kind {
        TimeKind::UtcTime => {
            let yy = u16::from(two(0)?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        _ => (u16::from(two(0)?) * 100 + u16::from(two(2)?), 4),
    };
    let (month, day, hour, minute) = (two(at)?, two(at + 2)?, two(at + 4)?, two(at + 6)?);
    let mut at = at + 8;
    let seconds_given = text.get(at).is_some_and(u8::is_ascii_digit);
    let second = if seconds_given {
        at += 2;
        two(at - 2)?
    } else {
        0
    };
    if kind == TimeKind::GeneralizedTime && seconds_given && text.get(at) == Some(&b'.') {
        let digits = text[at + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=3).contains(&digits) {
            return Err(TimeProblem::Syntax);
        }
        at += 1 + digits;
    }
    let offset = match (kind, &text[at.min(text.len())..]) {
        (_, b"Z") => (0, 0),
        (TimeKind::UtcTime, [sign @ (b'+' | b'-'), ..]) if text.len() == at + 5 => {
            let (h, m) = (two(at + 1)?, two(at + 3)?);
            if h > 23 || m > 59 {
                return Err(TimeProblem::Offset);
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            (sign * h as i8, sign * m as i8)
        }
        _ => return Err(TimeProblem::Syntax),
    };
    let month = Month::try_from(month).map_err(|_| TimeProblem::Month(month))?;
    let date =
        Date::from_calendar_date(i32::from(year), month, day).map_err(|_| TimeProblem::Day(day))?;
    if hour > 23 {
        return Err(TimeProblem::Hour(hour));
    }
    if minute > 59 {
        return Err(TimeProblem::Minute(minute));
    }
    let time = Time::from_hms(hour, minute, second).map_err(|_| TimeProblem::Second(second))?;
    let offset = UtcOffset::from_hms(offset.0, offset.1, 0).map_err(|_| TimeProblem::Offset)?;
    Ok(PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .unix_timestamp())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn signature_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ed25519",
        "1.3.101.113" => "ed448",
        other => return other.to_owned(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_reported_not_panicked() {
        let parsed = ParsedCert::from_der(b"\x30\x82\xff\xffnot a certificate");
        assert!(parsed.info.is_err());
        assert_eq!(parsed.fingerprint_sha256.len(), 64);
    }

    #[test]
    fn bit_lengths_ignore_leading_zeros() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x7f, 0x00]), 15);
        assert_eq!(significant_bits(&[0x00]), 0);
        assert_eq!(significant_bits(&[]), 0);
    }

    /// DER as rcgen and openssl write it, enough to re-shape a certificate.
    mod der {
        /// One TLV with a definite length.
        pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match content.len() {
                n @ 0..=0x7f => out.push(n as u8),
                n @ 0x80..=0xff => out.extend([0x81, n as u8]),
                n => out.extend([0x82, (n >> 8) as u8, n as u8]),
            }
            out.extend_from_slice(content);
            out
        }

        /// The content of the TLV `whole`.
        pub fn content(whole: &[u8]) -> &[u8] {
            let header = match whole[1] {
                0x81 => 3,
                0x82 => 4,
                _ => 2,
            };
            &whole[header..]
        }

        /// The TLVs that make up `content`, each whole.
        pub fn children(mut content: &[u8]) -> Vec<Vec<u8>> {
            let mut out = Vec::new();
            while !content.is_empty() {
                let (header, len) = match content[1] {
                    0x81 => (3, usize::from(content[2])),
                    0x82 => (4, usize::from(content[2]) << 8 | usize::from(content[3])),
                    n => (2, usize::from(n)),
                };
                out.push(content[..header + len].to_vec());
                content = &content[header + len..];
            }
            out
        }
    }

    const UTC: u8 = 0x17;
    const GENERALIZED: u8 = 0x18;

    /// A self-signed rcgen certificate re-signed with the serial's content octets and
    /// the validity times (tag, text) given: a certificate rcgen itself would not write.
    fn crafted(serial: &[u8], not_before: (u8, &[u8]), not_after: (u8, &[u8])) -> Vec<u8> {
        use der::{children, content, tlv};
        use rcgen::SigningKey as _;
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["crafted.example".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let outer = children(content(cert.der()));
        let mut tbs = children(content(&outer[0]));
        // version, serial, signature, issuer, validity, subject, key, extensions
        assert_eq!(tbs[0][0], 0xa0, "rcgen writes a version");
        tbs[1] = tlv(0x02, serial);
        tbs[4] = tlv(
            0x30,
            &[
                tlv(not_before.0, not_before.1),
                tlv(not_after.0, not_after.1),
            ]
            .concat(),
        );
        let tbs = tlv(0x30, &tbs.concat());
        let mut signature = vec![0u8];
        signature.extend(key.sign(&tbs).expect("signature"));
        tlv(
            0x30,
            &[tbs, outer[1].clone(), tlv(0x03, &signature)].concat(),
        )
    }

    fn with_not_after(tag: u8, text: &str) -> ParsedCert {
        ParsedCert::from_der(&crafted(
            &[0x01],
            (UTC, b"250101000000Z"),
            (tag, text.as_bytes()),
        ))
    }

    fn utc(y: i32, m: u8, d: u8, h: u8, min: u8, s: u8) -> i64 {
        let month = time::Month::try_from(m).expect("month");
        time::Date::from_calendar_date(y, month, d)
            .expect("date")
            .with_hms(h, min, s)
            .expect("time")
            .assume_utc()
            .unix_timestamp()
    }

    #[test]
    fn serials_keep_their_sign_as_openssl_prints_them() {
        // (content octets, as `openssl x509 -serial` prints them, lowercased)
        for (raw, want) in [
            (&[0x00, 0x9a, 0x01][..], "9a01"),
            (&[0x00, 0x80], "80"),
            (&[0x7f], "7f"),
            (&[0x01, 0x00], "0100"),
            (&[0x00], "00"),
            (&[0xff], "-01"),
            (&[0x80], "-80"),
            (&[0xff, 0x7f], "-81"),
            (&[0xff, 0x00], "-0100"),
            (&[0x80, 0x00], "-8000"),
            (&[0xfe, 0xdc, 0xba], "-012346"),
            // Non-minimal encodings (not DER; openssl refuses them) keep their value.
            (&[0x00, 0x00, 0x01], "01"),
            (&[0xff, 0xff], "-01"),
            (&[], ""),
        ] {
            assert_eq!(serial_hex(raw), want, "{raw:02x?}");
            let parsed = ParsedCert::from_der(&crafted(
                raw,
                (UTC, b"250101000000Z"),
                (UTC, b"350101000000Z"),
            ));
            let info = parsed.info.expect("x509-parser reads any INTEGER");
            assert_eq!(info.serial_hex, want, "{raw:02x?}");
        }
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
    }

    #[test]
    fn serials_from_rcgen_round_trip() {
        for bytes in [&[0x00, 0x00, 0x2a][..], &[0x12; 20], &[0x9a, 0x01]] {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(vec!["s.example".into()]).expect("p");
            params.serial_number = Some(rcgen::SerialNumber::from_slice(bytes));
            let cert = params.self_signed(&key).expect("certificate");
            let info = ParsedCert::from_der(cert.der()).info.expect("parses");
            let trimmed = &bytes[bytes.iter().position(|b| *b != 0).unwrap_or(0)..];
            assert_eq!(info.serial_hex, hex(trimmed), "{bytes:02x?}");
        }
    }

    #[test]
    fn extreme_and_boundary_dates_are_read_exactly() {
        for (tag, text, want) in [
            (GENERALIZED, "00000101000000Z", utc(0, 1, 1, 0, 0, 0)),
            (GENERALIZED, "99991231235959Z", NO_WELL_DEFINED_EXPIRATION),
            (GENERALIZED, "19500101000000Z", utc(1950, 1, 1, 0, 0, 0)),
            (GENERALIZED, "20500101000000Z", utc(2050, 1, 1, 0, 0, 0)),
            (UTC, "491231235959Z", utc(2049, 12, 31, 23, 59, 59)),
            (UTC, "500101000000Z", utc(1950, 1, 1, 0, 0, 0)),
            (UTC, "991231235959Z", utc(1999, 12, 31, 23, 59, 59)),
            (UTC, "000229120000Z", utc(2000, 2, 29, 12, 0, 0)),
            (UTC, "700101000000Z", 0),
            // Seconds left out: X.680 allows it, RFC 5280 does not; the value is plain.
            (UTC, "9912312359Z", utc(1999, 12, 31, 23, 59, 0)),
            (GENERALIZED, "205001010000Z", utc(2050, 1, 1, 0, 0, 0)),
            // A fraction of a second is dropped.
            (GENERALIZED, "20500101000000.5Z", utc(2050, 1, 1, 0, 0, 0)),
            (
                GENERALIZED,
                "20491231235959.999Z",
                utc(2049, 12, 31, 23, 59, 59),
            ),
            // UTC offsets, with the sign of a `-00MM` kept (x509-parser drops it).
            (UTC, "991231235959+0100", utc(1999, 12, 31, 22, 59, 59)),
            (UTC, "991231235959-0530", utc(2000, 1, 1, 5, 29, 59)),
            (UTC, "991231235959-0030", utc(2000, 1, 1, 0, 29, 59)),
            (UTC, "991231235959+0030", utc(1999, 12, 31, 23, 29, 59)),
            (UTC, "991231235959+2359", utc(1999, 12, 31, 0, 0, 59)),
        ] {
            let parsed = with_not_after(tag, text);
            let info = parsed
                .info
                .as_ref()
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(info.not_after, want, "{text}");
            assert_eq!(info.not_before, utc(2025, 1, 1, 0, 0, 0));
            assert!(!rfc3339(info.not_after).starts_with("Unix"), "{text}");
        }
        assert_eq!(rfc3339(utc(0, 1, 1, 0, 0, 0)), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(NO_WELL_DEFINED_EXPIRATION), "9999-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(i64::MAX),
            format!("Unix time {} (outside the years 0000-9999)", i64::MAX)
        );
    }

    #[test]
    fn unreadable_dates_say_which_and_why() {
        use TimeProblem::*;
        for (tag, text, problem) in [
            (UTC, "991331235959Z", Month(13)),
            (UTC, "990001000000Z", Month(0)),
            (UTC, "990230000000Z", Day(30)),
            (UTC, "010229000000Z", Day(29)),
            (UTC, "991200000000Z", Day(0)),
            (UTC, "991231240000Z", Hour(24)),
            (UTC, "991231236000Z", Minute(60)),
            (UTC, "991231235960Z", Second(60)),
            (UTC, "991231235959+2400", Offset),
            (UTC, "991231235959+2500", Offset),
            (UTC, "991231235959-0060", Offset),
            (UTC, "991231235959", Syntax),
            (UTC, "991231235959.5Z", Syntax),
            (UTC, "99123123595Z", Syntax),
            (UTC, "ab1231235959Z", Syntax),
            (UTC, "\u{1b}[31m1231235959Z", Syntax),
            (UTC, "", Syntax),
            (GENERALIZED, "20500101000000", Syntax),
            (GENERALIZED, "20500101000000+0100", Syntax),
            (GENERALIZED, "20500101000000,5Z", Syntax),
            (GENERALIZED, "20500101000000.1234Z", Syntax),
            (GENERALIZED, "20500101000000.Z", Syntax),
            (GENERALIZED, "2050010100Z", Syntax),
            (GENERALIZED, "-0010101000000Z", Syntax),
            (0x13, "991231235959Z", NotATime),
        ] {
            let parsed = with_not_after(tag, text);
            let Err(CertError::Validity {
                field,
                raw,
                kind,
                problem: got,
            }) = &parsed.info
            else {
                panic!("{text:?}: {:?}", parsed.info);
            };
            assert_eq!(*field, ValidityField::NotAfter, "{text:?}");
            assert_eq!(raw, text, "{text:?}");
            assert_eq!(*got, problem, "{text:?}");
            let message = parsed.info.as_ref().unwrap_err().to_string();
            assert!(
                message.starts_with("certificate does not parse: its notAfter "),
                "{message}"
            );
            match tag {
                UTC => assert_eq!(*kind, TimeKind::UtcTime),
                GENERALIZED => assert_eq!(*kind, TimeKind::GeneralizedTime),
                other => assert_eq!(*kind, TimeKind::Other(u32::from(other))),
            }
        }
        let parsed = ParsedCert::from_der(&crafted(
            &[0x01],
            (UTC, b"250230000000Z"),
            (UTC, b"350101000000Z"),
        ));
        assert_eq!(
            parsed.info.unwrap_err().to_string(),
            "certificate does not parse: its notBefore \"250230000000Z\" (UTCTime) is not a \
             valid time: the month has no day 30"
        );
        let long = format!("99{}", "1".repeat(200));
        match with_not_after(UTC, &long).info {
            Err(CertError::Validity { raw, .. }) => assert_eq!(raw.chars().count(), MAX_RAW_TIME),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn what_x509_parser_reads_wrong_is_read_right() {
        // x509-parser 0.18 takes `-0030` for `+00:30` and accepts a 25-hour offset:
        // certwatch reads its own dates, and refuses what has no meaning.
        let der = crafted(
            &[0x01],
            (UTC, b"250101000000Z"),
            (UTC, b"991231235959-0030"),
        );
        let (_, x509) = X509Certificate::from_der(&der).expect("x509-parser reads it");
        let theirs = x509.validity().not_after.timestamp();
        let ours = ParsedCert::from_der(&der).not_after().expect("read");
        assert_eq!(ours - theirs, 3600, "theirs is an hour early");
        let der = crafted(
            &[0x01],
            (UTC, b"250101000000Z"),
            (UTC, b"991231235959+2500"),
        );
        assert!(X509Certificate::from_der(&der).is_ok());
        assert!(matches!(
            ParsedCert::from_der(&der).info,
            Err(CertError::Validity {
                problem: TimeProblem::Offset,
                ..
            })
        ));
    }

    #[test]
    fn list_items_escape_only_the_separator_and_the_escape() {
        assert!(matches!(list_item("*.a-b_c.example"), Cow::Borrowed(_)));
        assert_eq!(list_item("a,b"), "a%2Cb");
        assert_eq!(list_item("100%"), "100%25");
        assert_eq!(list_item("%2C"), "%252C");
        assert_ne!(list_item("a%2Cb"), list_item("a,b"));
    }

    #[test]
    fn weak_keys_are_the_ones_browsers_refuse() {
        assert!(KeyInfo {
            algorithm: "RSA",
            bits: Some(1024)
        }
        .is_weak());
        assert!(!KeyInfo {
            algorithm: "RSA",
            bits: Some(2048)
        }
        .is_weak());
        assert!(!KeyInfo {
            algorithm: "ECDSA",
            bits: Some(256)
        }
        .is_weak());
    }
}
