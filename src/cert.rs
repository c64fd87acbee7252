//! Certificate facts: x509-parser turns one DER certificate into a [`ParsedCert`].
//!
//! Pure: no I/O and no clock; [`ParsedCert::shared`] keeps one copy of each certificate. A certificate that does not parse is a value
//! (`info: Err(..)`), never a panic, so a hostile server cannot stop a probe here.

use std::sync::Arc;

use x509_parser::certificate::X509Certificate;
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
    pub info: Result<CertInfo, String>,
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
    /// The serial number, lowercase hex without separators.
    pub serial_hex: String,
    /// DNS subject alternative names (at most [`MAX_SANS`]).
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// The public key.
    pub key: KeyInfo,
    /// The signature algorithm name, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// The basic constraints say CA.
    pub is_ca: bool,
}

/// The public key type and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// `RSA`, `ECDSA`, `Ed25519`, `Ed448`, `DSA` or `unknown`.
    pub algorithm: &'static str,
    /// The size in bits, when known.
    pub bits: Option<u32>,
}

impl KeyInfo {
    /// Whether browsers would refuse the key as too weak.
    pub fn is_weak(self) -> bool {
        match (self.algorithm, self.bits) {
            ("RSA", Some(bits)) => bits < 2048,
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
            Ok((_, cert)) => Ok(describe(&cert)),
            Err(e) => Err(format!("certificate does not parse: {e}")),
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

fn describe(cert: &X509Certificate<'_>) -> CertInfo {
    let (dns_names, ip_addresses) = subject_alt_names(cert);
    CertInfo {
        subject: cert.subject().to_string(),
        subject_cn: common_name(cert.subject()),
        issuer: cert.issuer().to_string(),
        issuer_cn: common_name(cert.issuer()),
        serial_hex: serial_hex(cert.raw_serial()),
        dns_names,
        ip_addresses,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key: key_info(cert),
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: cert.is_ca(),
    }
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

fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex(&raw[start..])
}

/// A Unix time as RFC 3339 in UTC, or the plain number when out of range.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
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

    #[test]
    fn serials_drop_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9a01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
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
