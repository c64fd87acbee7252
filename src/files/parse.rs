//! From a file's bytes to its certificates: the format (given, or told by the content),
//! then PEM, DER, PKCS#12 ([`super::pkcs12`]) or a kubeconfig.
//!
//! PEM is scanned here rather than by a general PEM reader, so that a block other than
//! a certificate (a private key above all) is skipped by its BEGIN and END lines
//! without its base64 ever being decoded. A section without its END line is a
//! `parse_error`, the usual sign of a file caught half-written: the reader retries it
//! before saying so (see `files::read`).
//!
//! A kubeconfig's certificates are its clusters' `certificate-authority(-data)` and its
//! users' `client-certificate(-data)`, each an entry (`clusters/NAME`, `users/NAME`);
//! `client-key-data` and tokens are never decoded. A referenced file is read through
//! `crate::fileread` (bounded), relative to the kubeconfig's directory.
//!
//! Pure but for those referenced files; errors are [`FileError`]s with the evidence.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::der::element_len;
use super::outcome::{Bundle, FileError, ReadReason};
use crate::cert::ParsedCert;
use crate::config::FileFormat;

/// The most certificates kept from one file (a bundle of every public root has about
/// 150).
pub const MAX_CERTS_PER_FILE: usize = 1000;

/// Labels of PEM blocks that hold a certificate.
const CERT_LABELS: [&str; 3] = ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];

/// What a file holds: its bundles, and what went wrong if not everything was read.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The certificates, one bundle per kubeconfig entry, else one.
    pub bundles: Vec<Bundle>,
    /// Why the file was not read whole, if it was not.
    pub error: Option<FileError>,
    /// The DER of each bundle's certificates, for verification.
    pub ders: Vec<Vec<Vec<u8>>>,
}

impl Parsed {
    fn failed(error: FileError) -> Self {
        Self {
            error: Some(error),
            ..Parsed::default()
        }
    }

    fn of(entry: Option<String>, ders: Vec<Vec<u8>>) -> Self {
        let mut parsed = Parsed::default();
        parsed.push(entry, ders);
        parsed
    }

    /// Adds a bundle of `ders`; a certificate that does not parse is kept (its
    /// fingerprint is known) and makes the file a `parse_error`.
    fn push(&mut self, entry: Option<String>, ders: Vec<Vec<u8>>) {
        let certs: Vec<Arc<ParsedCert>> = ders.iter().map(|d| ParsedCert::shared(d)).collect();
        if self.error.is_none() {
            if let Some((depth, e)) = certs
                .iter()
                .enumerate()
                .find_map(|(i, c)| c.info.as_ref().err().map(|e| (i, e)))
            {
                let at = match &entry {
                    Some(entry) => format!("{entry}, certificate {depth}"),
                    None => format!("certificate {depth}"),
                };
                self.error = Some(FileError::new(ReadReason::ParseError, format!("{at}: {e}")));
            }
        }
        self.bundles.push(Bundle {
            entry,
            certs,
            verdict: None,
        });
        self.ders.push(ders);
    }

    fn certificate_count(&self) -> usize {
        self.bundles.iter().map(|b| b.certs.len()).sum()
    }
}

/// What `bytes`, read from `path`, hold as `format`, with `password` for PKCS#12.
pub fn parse(path: &Path, bytes: &[u8], format: FileFormat, password: &str) -> Parsed {
    let format = match format {
        FileFormat::Auto => match detect(bytes) {
            Some(format) => format,
            None => return Parsed::failed(unrecognised(bytes)),
        },
        format => format,
    };
    let parsed = match format {
        FileFormat::Pem => pem(bytes).map(|ders| Parsed::of(None, ders)),
        FileFormat::Der => der(bytes).map(|der| Parsed::of(None, vec![der])),
        FileFormat::Pkcs12 => {
            super::pkcs12::certificates(bytes, password).map(|ders| Parsed::of(None, ders))
        }
        FileFormat::Kubeconfig => kubeconfig(path, bytes),
        FileFormat::Auto => unreachable!("decided above"),
    };
    match parsed {
        Ok(parsed) if parsed.certificate_count() == 0 && parsed.error.is_none() => {
            Parsed::failed(FileError::new(
                ReadReason::NoCertificate,
                format!("the file is {} and holds no certificate", describe(format)),
            ))
        }
        Ok(parsed) => parsed,
        Err(e) => Parsed::failed(e),
    }
}

fn describe(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Auto => "readable",
        FileFormat::Pem => "PEM",
        FileFormat::Der => "DER",
        FileFormat::Pkcs12 => "PKCS#12",
        FileFormat::Kubeconfig => "a kubeconfig",
    }
}

/// The format of `bytes`, by content.
pub fn detect(bytes: &[u8]) -> Option<FileFormat> {
    if find(bytes, b"-----BEGIN ").is_some() {
        return Some(FileFormat::Pem);
    }
    if bytes.first() == Some(&0x30) {
        return Some(if super::pkcs12::looks_like(bytes) {
            FileFormat::Pkcs12
        } else {
            FileFormat::Der
        });
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let is_kubeconfig = text.lines().any(|line| {
        let line = line.trim_end();
        line == "clusters:" || line == "users:" || line == "kind: Config"
    });
    is_kubeconfig.then_some(FileFormat::Kubeconfig)
}

fn unrecognised(bytes: &[u8]) -> FileError {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        FileError::new(ReadReason::NoCertificate, "the file is empty")
    } else if std::str::from_utf8(bytes).is_ok() {
        FileError::new(
            ReadReason::NoCertificate,
            "the file is text without a PEM block (-----BEGIN CERTIFICATE-----) and not a kubeconfig",
        )
    } else {
        FileError::new(
            ReadReason::Unsupported,
            "the file is neither PEM, DER, PKCS#12 nor a kubeconfig; set `format:` if it is one of them",
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The DER of every certificate block of PEM `bytes`; other blocks are skipped by
/// their BEGIN and END lines, their content never decoded.
pub fn pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FileError> {
    let broken = |what: String| FileError::new(ReadReason::ParseError, what);
    let mut certs = Vec::new();
    // (label, line number, base64 collected when it is a certificate)
    let mut open: Option<(String, usize, Option<String>)> = None;
    for (number, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        match &mut open {
            None => {
                let Some(label) = line
                    .strip_prefix("-----BEGIN ")
                    .and_then(|l| l.strip_suffix("-----"))
                else {
                    continue;
                };
                let collect = CERT_LABELS.contains(&label).then(String::new);
                open = Some((label.to_owned(), number + 1, collect));
            }
            Some((label, start, collected)) => {
                let Some(end) = line
                    .strip_prefix("-----END ")
                    .and_then(|l| l.strip_suffix("-----"))
                else {
                    if line.starts_with("-----BEGIN ") {
                        return Err(broken(format!(
                            "the PEM block {label} that starts on line {start} has no END line before the next block"
                        )));
                    }
                    if let Some(collected) = collected {
                        collected.push_str(line);
                    }
                    continue;
                };
                if end != label {
                    return Err(broken(format!(
                        "the PEM block {label} that starts on line {start} ends with END {end}"
                    )));
                }
                if let Some(collected) = collected.take() {
                    if certs.len() >= MAX_CERTS_PER_FILE {
                        return Err(FileError::new(
                            ReadReason::TooLarge,
                            format!("the file holds more than {MAX_CERTS_PER_FILE} certificates"),
                        ));
                    }
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(collected.as_bytes())
                        .map_err(|e| {
                            broken(format!(
                                "the certificate that starts on line {start} is not valid base64: {e}"
                            ))
                        })?;
                    certs.push(first_element(&der).to_vec());
                }
                open = None;
            }
        }
    }
    match open {
        // Never quote a key's content: the label and where it starts only.
        Some((label, start, _)) => Err(broken(format!(
            "the PEM block {label} that starts on line {start} has no END line (is the file being written?)"
        ))),
        None => Ok(certs),
    }
}

/// A DER certificate file: exactly one element.
fn der(bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    match element_len(bytes) {
        Some(len) if len == bytes.len() => Ok(bytes.to_vec()),
        Some(len) if len < bytes.len() => Err(FileError::new(
            ReadReason::ParseError,
            format!(
                "the DER certificate ends at byte {len} and {} bytes follow it",
                bytes.len() - len
            ),
        )),
        _ => Err(FileError::new(
            ReadReason::ParseError,
            format!(
                "the DER certificate is incomplete ({} bytes; is the file being written?)",
                bytes.len()
            ),
        )),
    }
}

/// The first DER element of `bytes` (a `TRUSTED CERTIFICATE` adds trust settings
/// after the certificate), or all of `bytes` when it does not parse as one.
fn first_element(bytes: &[u8]) -> &[u8] {
    match element_len(bytes) {
        Some(len) if len <= bytes.len() => &bytes[..len],
        _ => bytes,
    }
}

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    clusters: Option<Vec<Named<Cluster>>>,
    #[serde(default)]
    users: Option<Vec<Named<User>>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user")]
    #[serde(default = "Option::default")]
    value: Option<T>,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    data: Option<String>,
    #[serde(rename = "certificate-authority")]
    file: Option<String>,
}

#[derive(Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    data: Option<String>,
    #[serde(rename = "client-certificate")]
    file: Option<String>,
}

/// The certificates of a kubeconfig, one bundle per entry that holds some.
fn kubeconfig(path: &Path, bytes: &[u8]) -> Result<Parsed, FileError> {
    let config: Kubeconfig = serde_yaml::from_slice(bytes).map_err(|e| {
        FileError::new(
            ReadReason::ParseError,
            format!("not a valid kubeconfig: {e}"),
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut parsed = Parsed::default();
    let entries = config
        .clusters
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let value = c.value.map(|v| (v.data, v.file)).unwrap_or_default();
            (format!("clusters/{}", c.name), value)
        })
        .chain(config.users.unwrap_or_default().into_iter().map(|u| {
            let value = u.value.map(|v| (v.data, v.file)).unwrap_or_default();
            (format!("users/{}", u.name), value)
        }));
    for (entry, (data, file)) in entries {
        let ders = match (data, file) {
            (Some(data), _) => embedded(&entry, &data),
            (None, Some(file)) => referenced(&entry, &base.join(file)),
            (None, None) => continue,
        };
        match ders {
            Ok(ders) => parsed.push(Some(entry), ders),
            Err(e) => {
                if parsed.error.is_none() {
                    parsed.error = Some(e);
                }
            }
        }
    }
    Ok(parsed)
}

fn embedded(entry: &str, data: &str) -> Result<Vec<Vec<u8>>, FileError> {
    let compact: String = data.split_whitespace().collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            FileError::new(
                ReadReason::ParseError,
                format!("{entry}: the certificate data is not valid base64: {e}"),
            )
        })?;
    certificates_of(entry, &decoded)
}

fn referenced(entry: &str, file: &Path) -> Result<Vec<Vec<u8>>, FileError> {
    let bytes = crate::fileread::read_file(file, crate::fileread::PEM_LIMIT)
        .map_err(|e| FileError::from_read(&e).prefixed(entry))?;
    certificates_of(&format!("{entry} ({})", file.display()), &bytes)
}

/// PEM or DER certificates, as a kubeconfig's data or file holds them.
fn certificates_of(entry: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FileError> {
    let ders = if find(bytes, b"-----BEGIN ").is_some() {
        pem(bytes).map_err(|e| e.prefixed(entry))?
    } else {
        vec![der(bytes).map_err(|e| e.prefixed(entry))?]
    };
    if ders.is_empty() {
        return Err(FileError::new(
            ReadReason::NoCertificate,
            format!("{entry}: holds no certificate"),
        ));
    }
    Ok(ders)
}

impl FileError {
    /// The same error, its detail starting with `what`.
    pub fn prefixed(self, what: &str) -> FileError {
        FileError {
            reason: self.reason,
            detail: format!("{what}: {}", self.detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_pem(cn: &str) -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.example")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn pem_keeps_certificates_in_order_and_never_decodes_a_key() {
        let (a, a_der) = cert_pem("a");
        let (b, b_der) = cert_pem("b");
        // A key whose base64 is not even valid: it is skipped, not decoded.
        let key = "-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----\n";
        let text = format!("{key}{a}junk between blocks\n{b}");
        assert_eq!(pem(text.as_bytes()).unwrap(), [a_der, b_der]);
    }

    #[test]
    fn a_half_written_pem_is_a_parse_error_that_never_quotes_a_key() {
        let (a, _) = cert_pem("a");
        let cut = &a[..a.len() / 2];
        let e = pem(cut.as_bytes()).unwrap_err();
        assert_eq!(e.reason, ReadReason::ParseError);
        assert!(e.detail.contains("no END line"), "{e}");
        let key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n";
        let e = pem(key.as_bytes()).unwrap_err();
        assert!(!e.detail.contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn formats_are_told_by_content() {
        let (a, a_der) = cert_pem("a");
        assert_eq!(detect(a.as_bytes()), Some(FileFormat::Pem));
        assert_eq!(detect(&a_der), Some(FileFormat::Der));
        assert_eq!(
            detect(b"apiVersion: v1\nkind: Config\nclusters:\n"),
            Some(FileFormat::Kubeconfig)
        );
        assert_eq!(detect(b"hello"), None);
        let parsed = parse(Path::new("x"), b"", FileFormat::Auto, "");
        assert_eq!(parsed.error.unwrap().reason, ReadReason::NoCertificate);
        let parsed = parse(Path::new("x"), &[0xff, 0x00, 0x13], FileFormat::Auto, "");
        assert_eq!(parsed.error.unwrap().reason, ReadReason::Unsupported);
    }

    #[test]
    fn a_truncated_der_certificate_is_a_parse_error() {
        let (_, der) = cert_pem("a");
        let parsed = parse(Path::new("x"), &der[..der.len() - 10], FileFormat::Auto, "");
        assert_eq!(parsed.error.unwrap().reason, ReadReason::ParseError);
        let parsed = parse(Path::new("x"), &der, FileFormat::Der, "");
        assert!(parsed.error.is_none());
        assert_eq!(parsed.bundles[0].certs.len(), 1);
    }

    #[test]
    fn a_key_only_pem_holds_no_certificate() {
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let parsed = parse(Path::new("k"), key.as_bytes(), FileFormat::Auto, "");
        assert_eq!(parsed.error.unwrap().reason, ReadReason::NoCertificate);
    }

    #[test]
    fn a_kubeconfig_gives_one_bundle_per_entry_with_embedded_and_referenced_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, ca_der) = cert_pem("cluster-ca");
        let (client, client_der) = cert_pem("admin");
        std::fs::write(dir.path().join("client.crt"), &client).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&ca);
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: {b64}\nusers:\n- name: admin\n  user:\n    client-certificate: client.crt\n    client-key-data: bm90IGEga2V5\n- name: token-only\n  user:\n    token: abc\ncontexts: []\n"
        );
        let path = dir.path().join("config");
        let parsed = parse(&path, yaml.as_bytes(), FileFormat::Auto, "");
        assert!(parsed.error.is_none(), "{:?}", parsed.error);
        let entries: Vec<(Option<&str>, &str)> = parsed
            .bundles
            .iter()
            .map(|b| (b.entry.as_deref(), b.certs[0].fingerprint_sha256.as_str()))
            .collect();
        let fp = |der: &[u8]| ParsedCert::from_der(der).fingerprint_sha256;
        assert_eq!(
            entries,
            [
                (Some("clusters/prod"), fp(&ca_der).as_str()),
                (Some("users/admin"), fp(&client_der).as_str())
            ]
        );
        std::fs::remove_file(dir.path().join("client.crt")).unwrap();
        let parsed = parse(&path, yaml.as_bytes(), FileFormat::Kubeconfig, "");
        let error = parsed.error.unwrap();
        assert_eq!(error.reason, ReadReason::NotFound);
        assert!(error.detail.starts_with("users/admin"), "{error}");
        assert_eq!(
            parsed.bundles.len(),
            1,
            "the cluster's certificate is still read"
        );
    }
}
