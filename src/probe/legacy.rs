//! The legacy second hello: the chain of a server that the modern handshake cannot
//! reach, read from the cleartext Certificate message of TLS 1.2 and earlier.
//!
//! rustls speaks TLS 1.2 and 1.3 with modern suites, groups and schemes only, so it
//! finds nothing in common with a TLS 1.0/1.1-only appliance, a CBC-only, RSA- or
//! DHE-only server, a secp521r1-only one or one with an RSA-PSS key. Before TLS 1.3
//! the server's Certificate message travels in the clear, so [`capture`] sends one
//! hand-built ClientHello offering everything such a server may choose (TLS 1.0-1.2,
//! every suite that comes with a certificate, every named group and signature
//! scheme), reads the reply up to the Certificate message, and abandons the
//! handshake: no key is exchanged and nothing is authenticated.
//!
//! This module owns the hello ([`LegacyHello`]), the bounded reader of the server's
//! first flight ([`FlightReader`], pure and fed bytes, so that hostile input can be
//! tested without sockets), the names of what the server chose, and the failure
//! classes ([`LegacyError`], with [`LegacyError::reason`] for the handshake labels).
//! When to send the second hello, parsing and verifying the certificates, and the
//! metrics are left to `probe`, `cert` and `probe::verify`.
//!
//! Every read is bounded by the caller's deadline and by [`MAX_RECORD_LEN`],
//! [`MAX_MESSAGE_LEN`], [`MAX_RECORDS`] and [`MAX_BYTES`]; a chain longer than
//! [`MAX_CERTIFICATES`] or [`MAX_CHAIN_BYTES`] is cut and reported as truncated.

mod tables;

use std::fmt;
use std::io;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::outcome::{Failure, FailureKind, HandshakeReason, TlsParams};
use tables::{Auth, SchemeKey, NAMED_GROUPS, OFFERED_SUITES, SIGNATURE_SCHEMES, SUITES};

/// The most certificates kept from one chain; more are cut and reported.
pub const MAX_CERTIFICATES: usize = 32;

/// The most certificate bytes (DER, summed) kept from one chain; a certificate that
/// would pass this bound is cut with all that follow, and reported.
pub const MAX_CHAIN_BYTES: usize = 256 * 1024;

/// The longest record accepted: 2^14 plaintext bytes plus the 2048 bytes RFC 5246
/// allows a protected record, for servers that round up.
pub const MAX_RECORD_LEN: usize = 16 * 1024 + 2048;

/// The longest handshake message accepted before the Certificate message (a
/// ServerHello with every extension fits; the Certificate message is bounded by
/// [`MAX_CHAIN_BYTES`] instead).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024 + 128;

/// The most records read. A server that sends its chain in 16 KiB records needs about
/// 20 for the largest chain kept; one that trickles tiny records is cut off here.
pub const MAX_RECORDS: usize = 1024;

/// The most bytes read in all: the largest chain kept, the largest ServerHello, the
/// record headers, and room for the last read.
pub const MAX_BYTES: usize = 512 * 1024;

/// The most cipher suites in a hello that must stay under the 128 some servers choke on
/// ([`HelloProfile::Cautious`]), the renegotiation SCSV included.
pub const CAUTIOUS_MAX_SUITES: usize = 128;

/// Which certificate to ask for: a server with an RSA and an ECDSA certificate
/// presents the one that matches the suites and schemes offered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyType {
    /// Offer every suite and scheme.
    #[default]
    Any,
    /// Only suites and schemes for an RSA key (RSA-PSS keys included).
    Rsa,
    /// Only suites and schemes for an EC key (ECDSA, static ECDH, EdDSA).
    Ecdsa,
}

impl KeyType {
    fn offers_suite(self, auth: Auth) -> bool {
        match (self, auth) {
            (_, Auth::NoCertificate) => false,
            (KeyType::Any, _) => true,
            (KeyType::Rsa, auth) => auth == Auth::Rsa,
            (KeyType::Ecdsa, auth) => auth == Auth::Ecdsa,
        }
    }

    fn offers_scheme(self, key: SchemeKey) -> bool {
        match self {
            KeyType::Any => true,
            KeyType::Rsa => key == SchemeKey::Rsa,
            KeyType::Ecdsa => key == SchemeKey::Ecdsa,
        }
    }
}

/// How much the hello dares.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelloProfile {
    /// TLS 1.0-1.2 (`client_version` 0x0303), every suite of the key type, the named
    /// groups, point formats and signature schemes.
    #[default]
    Full,
    /// For servers that break on the full hello: `client_version` 0x0301 (old servers
    /// that close on a TLS 1.2 hello), at most [`CAUTIOUS_MAX_SUITES`] suites, no
    /// extension but SNI (and padding). Worth a try when [`HelloProfile::Full`] met an alert or a
    /// closed connection.
    Cautious,
}

/// What the legacy hello offers and to which name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacyHello {
    /// The SNI name; `None` (or an IP address, which SNI cannot carry) sends none.
    pub server_name: Option<ServerName<'static>>,
    /// Which certificate to ask for.
    pub key_type: KeyType,
    /// The full hello, or the cautious one.
    pub profile: HelloProfile,
}

impl LegacyHello {
    /// A full hello to `server_name` for `key_type`.
    pub fn new(server_name: Option<ServerName<'static>>, key_type: KeyType) -> Self {
        Self {
            server_name,
            key_type,
            profile: HelloProfile::Full,
        }
    }

    /// The same hello, cautious.
    pub fn cautious(self) -> Self {
        Self {
            profile: HelloProfile::Cautious,
            ..self
        }
    }

    /// The cipher suites offered, in order, without the renegotiation SCSV.
    pub fn suites(&self) -> Vec<u16> {
        let all = SUITES[..OFFERED_SUITES]
            .iter()
            .filter(|s| self.key_type.offers_suite(s.auth))
            .map(|s| s.id);
        match self.profile {
            HelloProfile::Full => all.collect(),
            HelloProfile::Cautious => all.take(CAUTIOUS_MAX_SUITES - 1).collect(),
        }
    }

    /// The signature schemes offered (in the full hello), in order.
    pub fn signature_schemes(&self) -> Vec<u16> {
        SIGNATURE_SCHEMES
            .iter()
            .filter(|(_, key)| self.key_type.offers_scheme(*key))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The SNI host name, when one is sent.
    pub fn sni(&self) -> Option<&str> {
        match &self.server_name {
            Some(ServerName::DnsName(name)) => Some(name.as_ref()),
            _ => None,
        }
    }

    /// The ClientHello record, with `random` as the client random.
    pub fn encode(&self, random: [u8; 32]) -> Vec<u8> {
        let full = self.profile == HelloProfile::Full;
        let mut body = Vec::with_capacity(1024);
        body.extend_from_slice(if full { &[3, 3] } else { &[3, 1] });
        body.extend_from_slice(&random);
        body.push(0); // no session to resume
        let mut suites = self.suites();
        suites.push(RENEGOTIATION_INFO_SCSV);
        put_u16_list(&mut body, &suites);
        body.extend_from_slice(&[1, 0]); // compression: null only

        let mut extensions = Vec::new();
        if let Some(name) = self.sni() {
            let name = name.as_bytes();
            let mut list = vec![0]; // host_name
            put_u16(&mut list, name.len());
            list.extend_from_slice(name);
            let mut data = Vec::new();
            put_u16(&mut data, list.len());
            data.extend_from_slice(&list);
            put_extension(&mut extensions, EXT_SERVER_NAME, &data);
        }
        if full {
            let mut groups = Vec::new();
            put_u16_list(&mut groups, &NAMED_GROUPS);
            put_extension(&mut extensions, EXT_SUPPORTED_GROUPS, &groups);
            // uncompressed, ansiX962_compressed_prime, ansiX962_compressed_char2
            put_extension(&mut extensions, EXT_EC_POINT_FORMATS, &[3, 0, 1, 2]);
            let mut schemes = Vec::new();
            put_u16_list(&mut schemes, &self.signature_schemes());
            put_extension(&mut extensions, EXT_SIGNATURE_ALGORITHMS, &schemes);
        }
        // Some servers hang on a hello of 256 to 511 bytes (RFC 7685): pad it to 512.
        let block = match extensions.len() {
            0 => 0,
            n => 2 + n,
        };
        let unpadded = 4 + body.len() + block;
        if (256..512).contains(&unpadded) {
            // The padding extension's header, and the block's if it is the first.
            let added = 4 + if block == 0 { 2 } else { 0 };
            let padding = 512usize.saturating_sub(unpadded + added);
            put_extension(&mut extensions, EXT_PADDING, &vec![0; padding]);
        }
        if !extensions.is_empty() {
            put_u16(&mut body, extensions.len());
            body.extend_from_slice(&extensions);
        }

        let mut record = Vec::with_capacity(body.len() + 9);
        record.extend_from_slice(&[CONTENT_HANDSHAKE, 3, 1]);
        put_u16(&mut record, body.len() + 4);
        record.push(HS_CLIENT_HELLO);
        put_u24(&mut record, body.len());
        record.extend_from_slice(&body);
        record
    }
}

const RENEGOTIATION_INFO_SCSV: u16 = 0x00ff;
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_PADDING: u16 = 21;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const CONTENT_APPLICATION_DATA: u8 = 23;
const CONTENT_HEARTBEAT: u8 = 24;

const HS_HELLO_REQUEST: u8 = 0;
const HS_CLIENT_HELLO: u8 = 1;
const HS_SERVER_HELLO: u8 = 2;
const HS_CERTIFICATE: u8 = 11;
const HS_SERVER_KEY_EXCHANGE: u8 = 12;
const HS_CERTIFICATE_REQUEST: u8 = 13;
const HS_SERVER_HELLO_DONE: u8 = 14;

const ALERT_WARNING: u8 = 1;
const ALERT_CLOSE_NOTIFY: u8 = 0;
const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;
const ALERT_USER_CANCELED: u8 = 90;
const ALERT_NO_RENEGOTIATION: u8 = 100;
const ALERT_UNRECOGNIZED_NAME: u8 = 112;
const ALERT_CERTIFICATE_REQUIRED: u8 = 116;

fn put_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u16).to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
}

/// `items` behind their length in bytes (two bytes).
fn put_u16_list(out: &mut Vec<u8>, items: &[u16]) {
    put_u16(out, items.len() * 2);
    for item in items {
        out.extend_from_slice(&item.to_be_bytes());
    }
}

fn put_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16(out, data.len());
    out.extend_from_slice(data);
}

/// The protocol version a server chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyVersion {
    /// SSL 3.0: not offered, but a server that speaks nothing newer may still answer with
    /// it, and its Certificate message reads the same.
    Ssl3,
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
}

impl LegacyVersion {
    fn from_wire(version: u16) -> Option<Self> {
        Some(match version {
            0x0300 => LegacyVersion::Ssl3,
            0x0301 => LegacyVersion::Tls10,
            0x0302 => LegacyVersion::Tls11,
            0x0303 => LegacyVersion::Tls12,
            _ => return None,
        })
    }

    /// The `version` label value, as `certwatch_tls_info` spells versions.
    pub const fn as_label(self) -> &'static str {
        match self {
            LegacyVersion::Ssl3 => "SSLv3",
            LegacyVersion::Tls10 => "TLSv1.0",
            LegacyVersion::Tls11 => "TLSv1.1",
            LegacyVersion::Tls12 => "TLSv1.2",
        }
    }
}

impl fmt::Display for LegacyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// A cipher suite the server chose: its code point and IANA name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherSuite {
    /// The code point.
    pub id: u16,
    /// The IANA name, or `unknown` for a code point the registry does not have.
    pub name: &'static str,
}

impl CipherSuite {
    /// The suite with code point `id`.
    pub fn from_id(id: u16) -> Self {
        Self {
            id,
            name: suite_name(id).unwrap_or("unknown"),
        }
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:04x})", self.name, self.id)
    }
}

/// The IANA name of cipher suite `id`, for every suite of the registry (TLS 1.3 ones
/// and the signalling values included) and the OpenSSL 0.9 export1024 suites.
pub fn suite_name(id: u16) -> Option<&'static str> {
    SUITES.iter().find(|s| s.id == id).map(|s| s.name)
}

/// What the server's ServerHello chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerChoice {
    /// The version.
    pub version: LegacyVersion,
    /// The cipher suite.
    pub cipher: CipherSuite,
}

/// Which bound cut a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainLimit {
    /// The chain had more than [`MAX_CERTIFICATES`] certificates.
    Certificates {
        /// How many the server's list still held beyond those kept (bytes).
        remaining_bytes: usize,
    },
    /// The certificates after those kept would have passed [`MAX_CHAIN_BYTES`].
    Bytes {
        /// The size of the first certificate left out.
        next_certificate: usize,
        /// How many bytes the server's list still held beyond those kept.
        remaining_bytes: usize,
    },
}

impl fmt::Display for ChainLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainLimit::Certificates { remaining_bytes } => write!(
                f,
                "the chain has more than {MAX_CERTIFICATES} certificates; \
                 {remaining_bytes} bytes of it were not read"
            ),
            ChainLimit::Bytes {
                next_certificate,
                remaining_bytes,
            } => write!(
                f,
                "the chain passes {MAX_CHAIN_BYTES} bytes: a further certificate of \
                 {next_certificate} bytes and the {remaining_bytes} bytes after those kept \
                 were not read"
            ),
        }
    }
}

/// What the legacy hello read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyCapture {
    /// The version and suite the server chose.
    pub choice: ServerChoice,
    /// The certificates, leaf first, as the server sent them (cut at the bounds).
    pub chain: Vec<CertificateDer<'static>>,
    /// The bound that cut the chain; `None` when the whole chain was read.
    pub truncated: Option<ChainLimit>,
}

impl LegacyCapture {
    /// Whether the chain was cut.
    pub fn is_truncated(&self) -> bool {
        self.truncated.is_some()
    }

    /// The version and cipher for `certwatch_tls_info`.
    pub fn tls_params(&self) -> TlsParams {
        TlsParams {
            version: self.choice.version.as_label(),
            cipher: self.choice.cipher.name,
        }
    }
}

/// How far the server's reply got before it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received.
    pub bytes: usize,
    /// Whole records received.
    pub records: usize,
    /// What the ServerHello chose, once it arrived.
    pub choice: Option<ServerChoice>,
    /// Certificates received, when the Certificate message had begun.
    pub certificates: Option<usize>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.choice, self.certificates) {
            (None, _) if self.bytes == 0 => f.write_str("before any reply"),
            (None, _) => write!(
                f,
                "after {} bytes ({} records), before a complete ServerHello",
                self.bytes, self.records
            ),
            (Some(choice), None) => write!(
                f,
                "after the ServerHello ({}, {})",
                choice.version, choice.cipher.name
            ),
            (Some(choice), Some(n)) => write!(
                f,
                "inside the Certificate message, after {n} certificates ({}, {})",
                choice.version, choice.cipher.name
            ),
        }
    }
}

/// How a server ended the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It closed the connection.
    Closed,
    /// It sent a close_notify alert.
    CloseNotify,
    /// The connection failed (reset, broken pipe...).
    Io(io::ErrorKind),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Closed => f.write_str("it closed the connection"),
            Ending::CloseNotify => f.write_str("it sent close_notify"),
            Ending::Io(kind) => write!(f, "the connection failed: {kind}"),
        }
    }
}

/// Why the legacy hello read no chain. Each variant carries its evidence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// The server answered with a fatal alert (or a warning no client ignores).
    #[error("the server sent the alert {} ({description}, level {level}) {progress}", alert_label(*.description))]
    Alert {
        /// 1 warning, 2 fatal.
        level: u8,
        /// The alert description.
        description: u8,
        /// How far the reply got.
        progress: Progress,
    },
    /// The bytes are not TLS records.
    #[error("not TLS: the server sent {:?} {progress}", received.escape_ascii().to_string())]
    NotTls {
        /// Up to 16 bytes from where the reply stopped being TLS.
        received: Vec<u8>,
        /// How far the TLS part got.
        progress: Progress,
    },
    /// A record declared more than [`MAX_RECORD_LEN`] bytes.
    #[error("a record of {declared} bytes, over the {MAX_RECORD_LEN}-byte limit, {progress}")]
    RecordTooLarge {
        /// The declared length.
        declared: usize,
        /// How far the reply got.
        progress: Progress,
    },
    /// A handshake message before the Certificate declared more than [`MAX_MESSAGE_LEN`].
    #[error("a handshake message of type {msg_type} declared {declared} bytes, over the {MAX_MESSAGE_LEN}-byte limit, {progress}")]
    MessageTooLarge {
        /// The handshake message type.
        msg_type: u8,
        /// The declared length.
        declared: usize,
        /// How far the reply got.
        progress: Progress,
    },
    /// More than [`MAX_RECORDS`] records without a whole Certificate message.
    #[error("more than {MAX_RECORDS} records without a certificate chain {progress}")]
    TooManyRecords {
        /// How far the reply got.
        progress: Progress,
    },
    /// More than [`MAX_BYTES`] without a whole Certificate message.
    #[error("more than {MAX_BYTES} bytes without a certificate chain {progress}")]
    TooMuchData {
        /// How far the reply got.
        progress: Progress,
    },
    /// The server chose TLS 1.3 (not offered) or a version certwatch does not know.
    #[error("the server chose {}, which the legacy hello does not offer, {progress}", version_label(*.version))]
    UnexpectedVersion {
        /// The version it chose.
        version: u16,
        /// How far the reply got.
        progress: Progress,
    },
    /// A record that has no place before the Certificate message.
    #[error("an unexpected {} record {progress}", content_label(*.content_type))]
    UnexpectedRecord {
        /// Its content type.
        content_type: u8,
        /// How far the reply got.
        progress: Progress,
    },
    /// A handshake message out of order.
    #[error("an unexpected handshake message of type {msg_type} {progress}")]
    UnexpectedMessage {
        /// Its type.
        msg_type: u8,
        /// How far the reply got.
        progress: Progress,
    },
    /// The server went on without a Certificate message (it chose a suite without one).
    #[error("the server sent no certificate: the {} came instead, {progress}", message_label(*.msg_type))]
    CertificateSkipped {
        /// The message that came instead.
        msg_type: u8,
        /// How far the reply got.
        progress: Progress,
    },
    /// The Certificate message held no certificate.
    #[error("the server sent an empty certificate list {progress}")]
    EmptyCertificate {
        /// How far the reply got.
        progress: Progress,
    },
    /// A message does not parse.
    #[error("malformed reply: {what} {progress}")]
    Malformed {
        /// Which check failed.
        what: &'static str,
        /// How far the reply got.
        progress: Progress,
    },
    /// The server closed or reset the connection before its Certificate message ended.
    #[error("the server ended the handshake before sending its certificate: {how}, {progress}")]
    Ended {
        /// How.
        how: Ending,
        /// How far the reply got.
        progress: Progress,
    },
    /// The deadline passed first.
    #[error("no certificate before the probe's deadline, {progress}")]
    Timeout {
        /// How far the reply got.
        progress: Progress,
    },
}

fn alert_label(description: u8) -> &'static str {
    tables::alert_name(description).unwrap_or("unknown")
}

fn version_label(version: u16) -> String {
    match version {
        0x0304 => "TLS 1.3".to_owned(),
        other => format!("version 0x{other:04x}"),
    }
}

fn content_label(content_type: u8) -> &'static str {
    match content_type {
        CONTENT_CHANGE_CIPHER_SPEC => "ChangeCipherSpec",
        CONTENT_APPLICATION_DATA => "application data",
        CONTENT_HEARTBEAT => "heartbeat",
        _ => "other",
    }
}

fn message_label(msg_type: u8) -> &'static str {
    match msg_type {
        HS_SERVER_KEY_EXCHANGE => "ServerKeyExchange",
        HS_CERTIFICATE_REQUEST => "CertificateRequest",
        HS_SERVER_HELLO_DONE => "ServerHelloDone",
        _ => "another message",
    }
}

impl LegacyError {
    /// How far the reply got.
    pub fn progress(&self) -> &Progress {
        match self {
            LegacyError::Alert { progress, .. }
            | LegacyError::NotTls { progress, .. }
            | LegacyError::RecordTooLarge { progress, .. }
            | LegacyError::MessageTooLarge { progress, .. }
            | LegacyError::TooManyRecords { progress }
            | LegacyError::TooMuchData { progress }
            | LegacyError::UnexpectedVersion { progress, .. }
            | LegacyError::UnexpectedRecord { progress, .. }
            | LegacyError::UnexpectedMessage { progress, .. }
            | LegacyError::CertificateSkipped { progress, .. }
            | LegacyError::EmptyCertificate { progress }
            | LegacyError::Malformed { progress, .. }
            | LegacyError::Ended { progress, .. }
            | LegacyError::Timeout { progress } => progress,
        }
    }

    /// The handshake `reason` label of this failure, classed as the modern
    /// handshake's failures are (`probe::tls::classify`).
    pub const fn reason(&self) -> HandshakeReason {
        match self {
            LegacyError::Alert { description, .. } => match *description {
                ALERT_PROTOCOL_VERSION => HandshakeReason::ProtocolVersion,
                ALERT_HANDSHAKE_FAILURE | ALERT_CERTIFICATE_REQUIRED => {
                    HandshakeReason::HandshakeFailure
                }
                _ => HandshakeReason::TlsAlert,
            },
            LegacyError::UnexpectedVersion { .. } => HandshakeReason::ProtocolVersion,
            LegacyError::NotTls { .. }
            | LegacyError::RecordTooLarge { .. }
            | LegacyError::MessageTooLarge { .. }
            | LegacyError::TooManyRecords { .. }
            | LegacyError::TooMuchData { .. }
            | LegacyError::UnexpectedRecord { .. }
            | LegacyError::UnexpectedMessage { .. }
            | LegacyError::CertificateSkipped { .. }
            | LegacyError::EmptyCertificate { .. }
            | LegacyError::Malformed { .. } => HandshakeReason::ProtocolError,
            LegacyError::Ended { .. } => HandshakeReason::Reset,
            LegacyError::Timeout { .. } => HandshakeReason::Timeout,
        }
    }

    /// This failure as a probe failure of the handshake stage, the message as detail.
    pub fn to_failure(&self) -> Failure {
        Failure::new(FailureKind::Handshake(self.reason()), self.to_string())
    }
}

/// Whether a modern handshake that failed with `error` may still have a chain to read
/// with the legacy hello: the server refused the version or found nothing in common
/// (its alert, or rustls finding the server's choice unusable: a TLS 1.2 key exchange
/// signed with a scheme rustls cannot name, as an RSA-PSS key's), or its Certificate
/// message was larger than rustls reads (64 KiB).
///
/// A server that closes or resets the connection on a hello it does not like shows up
/// as an I/O error, not here; whether to try the legacy hello then is the caller's call.
pub fn calls_for_legacy_hello(error: &rustls::Error) -> bool {
    use rustls::{AlertDescription as A, Error as E, InvalidMessage, PeerMisbehaved};
    matches!(
        error,
        E::AlertReceived(
            A::ProtocolVersion
                | A::HandshakeFailure
                | A::InsufficientSecurity
                | A::IllegalParameter
                | A::DecodeError,
        ) | E::PeerIncompatible(_)
            | E::PeerMisbehaved(PeerMisbehaved::SignedKxWithWrongAlgorithm)
            | E::InvalidMessage(InvalidMessage::HandshakePayloadTooLarge)
    )
}

/// Sends the legacy hello over `io` and reads the server's chain, until `deadline`.
///
/// On success the handshake is abandoned: a `user_canceled` alert is sent (best
/// effort) and `io` is dropped. Never panics, whatever the server sends.
pub async fn capture<IO>(
    mut io: IO,
    hello: &LegacyHello,
    deadline: Instant,
) -> Result<LegacyCapture, LegacyError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut reader = FlightReader::new();
    let sent = async {
        io.write_all(&hello.encode(client_random())).await?;
        io.flush().await
    };
    match tokio::time::timeout_at(deadline, sent).await {
        Err(_) => return Err(reader.timed_out()),
        Ok(Err(e)) => return Err(reader.ended(Ending::Io(e.kind()))),
        Ok(Ok(())) => {}
    }
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        let n = match tokio::time::timeout_at(deadline, io.read(&mut buffer)).await {
            Err(_) => return Err(reader.timed_out()),
            Ok(Err(e)) => return Err(reader.ended(Ending::Io(e.kind()))),
            Ok(Ok(0)) => return Err(reader.ended(Ending::Closed)),
            Ok(Ok(n)) => n,
        };
        if let Some(capture) = reader.feed(&buffer[..n])? {
            // Abandon politely; the server's answer does not matter.
            let _ = tokio::time::timeout_at(deadline, io.write_all(&USER_CANCELED)).await;
            return Ok(capture);
        }
    }
}

/// How many certificates of a presented `chain` certwatch keeps, under the bounds the
/// legacy reader applies ([`MAX_CERTIFICATES`], [`MAX_CHAIN_BYTES`]), and the bound
/// that cut it. The modern handshake keeps a chain by this rule too, so both report
/// the same cut. `remaining_bytes` counts each left-out certificate with its 3-byte
/// length, as the TLS 1.2 list does.
pub fn bound_chain<C: AsRef<[u8]>>(chain: &[C]) -> (usize, Option<ChainLimit>) {
    let mut bytes = 0;
    for (i, cert) in chain.iter().enumerate() {
        let len = cert.as_ref().len();
        let remaining_bytes = chain[i..].iter().map(|c| c.as_ref().len() + 3).sum();
        if i == MAX_CERTIFICATES {
            return (i, Some(ChainLimit::Certificates { remaining_bytes }));
        }
        if bytes + len > MAX_CHAIN_BYTES {
            let limit = ChainLimit::Bytes {
                next_certificate: len,
                remaining_bytes,
            };
            return (i, Some(limit));
        }
        bytes += len;
    }
    (chain.len(), None)
}

/// The bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A warning `user_canceled` alert record.
const USER_CANCELED: [u8; 7] = [
    CONTENT_ALERT,
    3,
    1,
    0,
    2,
    ALERT_WARNING,
    ALERT_USER_CANCELED,
];

fn client_random() -> [u8; 32] {
    let mut random = [0u8; 32];
    // A failing system RNG leaves zeros: harmless for a handshake that is abandoned
    // before any key is agreed.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    random
}

/// The server's first flight, read up to its Certificate message: records are
/// checked and bounded, handshake messages reassembled across records, and the
/// certificate list read entry by entry so that the bounds apply before the bytes
/// are buffered. Pure: it is fed bytes and never does I/O.
#[derive(Debug, Default)]
pub struct FlightReader {
    /// Bytes received so far, records or not.
    bytes: usize,
    /// Whole records received.
    records: usize,
    /// Received bytes not yet forming a whole record.
    pending: Vec<u8>,
    /// Handshake bytes not yet consumed as messages.
    handshake: Vec<u8>,
    /// The ServerHello's choice, once read.
    choice: Option<ServerChoice>,
    /// Inside the Certificate message.
    certificate: Option<CertificateList>,
}

/// The certificate list being read.
#[derive(Debug, Default)]
struct CertificateList {
    /// Bytes of the list still to come.
    remaining: usize,
    chain: Vec<CertificateDer<'static>>,
    chain_bytes: usize,
}

impl FlightReader {
    /// A reader expecting the ServerHello.
    pub fn new() -> Self {
        Self::default()
    }

    /// How far the reply got.
    pub fn progress(&self) -> Progress {
        Progress {
            bytes: self.bytes,
            records: self.records,
            choice: self.choice,
            certificates: self.certificate.as_ref().map(|c| c.chain.len()),
        }
    }

    /// The error for a connection that ended now.
    pub fn ended(&self, how: Ending) -> LegacyError {
        LegacyError::Ended {
            how,
            progress: self.progress(),
        }
    }

    /// The error for a deadline that passed now.
    pub fn timed_out(&self) -> LegacyError {
        LegacyError::Timeout {
            progress: self.progress(),
        }
    }

    /// Takes the next bytes of the reply; the capture once the Certificate message
    /// has been read (or cut at a bound), `None` while more is needed.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<LegacyCapture>, LegacyError> {
        self.bytes = self.bytes.saturating_add(data.len());
        if self.bytes > MAX_BYTES {
            return Err(LegacyError::TooMuchData {
                progress: self.progress(),
            });
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        let result = loop {
            match self.next_record(start) {
                Err(e) => break Err(e),
                Ok(None) => break Ok(None),
                Ok(Some((content_type, range))) => {
                    start = range.end;
                    let payload = self.pending[range].to_vec();
                    match self.record(content_type, &payload) {
                        Ok(None) => {}
                        done => break done,
                    }
                }
            }
        };
        self.pending.drain(..start.min(self.pending.len()));
        result
    }

    /// The next whole record of `pending` from `start`: its type and payload range.
    /// Checks the header as soon as its bytes arrive, so garbage fails at once.
    fn next_record(
        &mut self,
        start: usize,
    ) -> Result<Option<(u8, std::ops::Range<usize>)>, LegacyError> {
        let header = &self.pending[start..];
        let looks_like_tls = header
            .first()
            .is_none_or(|t| (CONTENT_CHANGE_CIPHER_SPEC..=CONTENT_HEARTBEAT).contains(t))
            && header.get(1).is_none_or(|&major| major == 3);
        if !looks_like_tls {
            return Err(LegacyError::NotTls {
                received: header.iter().take(16).copied().collect(),
                progress: self.progress(),
            });
        }
        if header.len() < 5 {
            return Ok(None);
        }
        let content_type = header[0];
        let declared = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let available = header.len() - 5;
        if declared > MAX_RECORD_LEN {
            return Err(LegacyError::RecordTooLarge {
                declared,
                progress: self.progress(),
            });
        }
        if available < declared {
            return Ok(None);
        }
        self.records += 1;
        if self.records > MAX_RECORDS {
            return Err(LegacyError::TooManyRecords {
                progress: self.progress(),
            });
        }
        Ok(Some((content_type, start + 5..start + 5 + declared)))
    }

    fn record(
        &mut self,
        content_type: u8,
        payload: &[u8],
    ) -> Result<Option<LegacyCapture>, LegacyError> {
        match content_type {
            CONTENT_HANDSHAKE => {
                self.handshake.extend_from_slice(payload);
                self.messages()
            }
            CONTENT_ALERT => self.alerts(payload).map(|()| None),
            other => Err(LegacyError::UnexpectedRecord {
                content_type: other,
                progress: self.progress(),
            }),
        }
    }

    fn alerts(&self, payload: &[u8]) -> Result<(), LegacyError> {
        if payload.len() < 2 {
            return Err(self.malformed("an alert record shorter than 2 bytes"));
        }
        for alert in payload.chunks(2) {
            let &[level, description] = alert else {
                return Err(self.malformed("an alert record of odd length"));
            };
            match (level, description) {
                (ALERT_WARNING, ALERT_CLOSE_NOTIFY) => return Err(self.ended(Ending::CloseNotify)),
                // Warnings a client goes on after (a name the server does not know...).
                (
                    ALERT_WARNING,
                    ALERT_UNRECOGNIZED_NAME | ALERT_USER_CANCELED | ALERT_NO_RENEGOTIATION,
                ) => {}
                _ => {
                    return Err(LegacyError::Alert {
                        level,
                        description,
                        progress: self.progress(),
                    })
                }
            }
        }
        Ok(())
    }

    fn malformed(&self, what: &'static str) -> LegacyError {
        LegacyError::Malformed {
            what,
            progress: self.progress(),
        }
    }

    /// Consumes whole handshake messages (and certificate entries) from `handshake`.
    fn messages(&mut self) -> Result<Option<LegacyCapture>, LegacyError> {
        let mut at = 0;
        let result = self.messages_from(&mut at);
        self.handshake.drain(..at.min(self.handshake.len()));
        result
    }

    fn messages_from(&mut self, at: &mut usize) -> Result<Option<LegacyCapture>, LegacyError> {
        loop {
            if self.certificate.is_some() {
                return self.certificates(at);
            }
            let buffered = &self.handshake[*at..];
            if buffered.len() < 4 {
                return Ok(None);
            }
            let msg_type = buffered[0];
            let declared = u24(&buffered[1..4]);
            if msg_type == HS_CERTIFICATE && self.choice.is_some() {
                // Read entry by entry: the bound is on the chain, not the message.
                if buffered.len() < 7 {
                    return Ok(None);
                }
                let list = u24(&buffered[4..7]);
                if declared < 3 || list != declared - 3 {
                    return Err(self.malformed(
                        "the Certificate message's list length disagrees with its length",
                    ));
                }
                if list == 0 {
                    return Err(LegacyError::EmptyCertificate {
                        progress: self.progress(),
                    });
                }
                *at += 7;
                self.certificate = Some(CertificateList {
                    remaining: list,
                    ..CertificateList::default()
                });
                continue;
            }
            if declared > MAX_MESSAGE_LEN {
                return Err(LegacyError::MessageTooLarge {
                    msg_type,
                    declared,
                    progress: self.progress(),
                });
            }
            if buffered.len() < 4 + declared {
                return Ok(None);
            }
            let body = buffered[4..4 + declared].to_vec();
            *at += 4 + declared;
            match (msg_type, self.choice) {
                (HS_HELLO_REQUEST, _) => {}
                (HS_SERVER_HELLO, None) => self.choice = Some(self.server_hello(&body)?),
                (
                    HS_SERVER_KEY_EXCHANGE | HS_CERTIFICATE_REQUEST | HS_SERVER_HELLO_DONE,
                    Some(_),
                ) => {
                    return Err(LegacyError::CertificateSkipped {
                        msg_type,
                        progress: self.progress(),
                    })
                }
                _ => {
                    return Err(LegacyError::UnexpectedMessage {
                        msg_type,
                        progress: self.progress(),
                    })
                }
            }
        }
    }

    fn server_hello(&self, body: &[u8]) -> Result<ServerChoice, LegacyError> {
        let short = || self.malformed("a ServerHello too short for its fields");
        let mut r = Cursor(body);
        let legacy_version = r.u16().ok_or_else(short)?;
        r.take(32).ok_or_else(short)?;
        let session_id_len = usize::from(r.u8().ok_or_else(short)?);
        if session_id_len > 32 {
            return Err(self.malformed("a ServerHello session id over 32 bytes"));
        }
        r.take(session_id_len).ok_or_else(short)?;
        let suite = r.u16().ok_or_else(short)?;
        r.u8().ok_or_else(short)?; // compression method
        let mut version = legacy_version;
        if !r.0.is_empty() {
            let extensions_len = usize::from(r.u16().ok_or_else(short)?);
            let mut extensions = Cursor(r.take(extensions_len).ok_or_else(short)?);
            while !extensions.0.is_empty() {
                let bad = || self.malformed("a ServerHello extension overruns its block");
                let kind = extensions.u16().ok_or_else(bad)?;
                let len = usize::from(extensions.u16().ok_or_else(bad)?);
                let data = extensions.take(len).ok_or_else(bad)?;
                if kind == EXT_SUPPORTED_VERSIONS {
                    // Only a TLS 1.3 server sends it: the version it really chose.
                    version = Cursor(data).u16().ok_or_else(bad)?;
                }
            }
        }
        let version =
            LegacyVersion::from_wire(version).ok_or_else(|| LegacyError::UnexpectedVersion {
                version,
                progress: self.progress(),
            })?;
        Ok(ServerChoice {
            version,
            cipher: CipherSuite::from_id(suite),
        })
    }

    /// Reads certificate entries until the list ends or a bound is reached.
    fn certificates(&mut self, at: &mut usize) -> Result<Option<LegacyCapture>, LegacyError> {
        let (Some(list), Some(choice)) = (self.certificate.as_mut(), self.choice) else {
            return Ok(None);
        };
        let buffered = &self.handshake[*at..];
        let mut used = 0;
        let outcome = loop {
            let rest = &buffered[used..];
            if list.remaining == 0 {
                break Ok(Some(None));
            }
            if list.chain.len() == MAX_CERTIFICATES {
                break Ok(Some(Some(ChainLimit::Certificates {
                    remaining_bytes: list.remaining,
                })));
            }
            if list.remaining < 3 {
                break Err("a certificate entry header overruns the list");
            }
            if rest.len() < 3 {
                break Ok(None);
            }
            let len = u24(&rest[..3]);
            if len == 0 {
                break Err("an empty certificate entry");
            }
            if len > list.remaining - 3 {
                break Err("a certificate entry overruns the list");
            }
            if list.chain_bytes + len > MAX_CHAIN_BYTES {
                break Ok(Some(Some(ChainLimit::Bytes {
                    next_certificate: len,
                    remaining_bytes: list.remaining,
                })));
            }
            if rest.len() < 3 + len {
                break Ok(None);
            }
            list.chain
                .push(CertificateDer::from(rest[3..3 + len].to_vec()));
            list.chain_bytes += len;
            list.remaining -= 3 + len;
            used += 3 + len;
        };
        *at += used;
        match outcome {
            Err(what) => Err(self.malformed(what)),
            Ok(None) => Ok(None),
            Ok(Some(truncated)) => Ok(Some(LegacyCapture {
                choice,
                chain: std::mem::take(&mut list.chain),
                truncated,
            })),
        }
    }
}

fn u24(bytes: &[u8]) -> usize {
    (usize::from(bytes[0]) << 16) | (usize::from(bytes[1]) << 8) | usize::from(bytes[2])
}

/// A reader over a message body that never reads past its end.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A handshake message of `msg_type` with `body`.
    fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![msg_type];
        put_u24(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }

    fn server_hello_with(version: u16, suite: u16, extensions: Option<&[u8]>) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        if let Some(extensions) = extensions {
            put_u16(&mut body, extensions.len());
            body.extend_from_slice(extensions);
        }
        message(HS_SERVER_HELLO, &body)
    }

    fn server_hello(version: u16, suite: u16) -> Vec<u8> {
        server_hello_with(version, suite, None)
    }

    fn certificate(certs: &[Vec<u8>]) -> Vec<u8> {
        let mut list = Vec::new();
        for cert in certs {
            put_u24(&mut list, cert.len());
            list.extend_from_slice(cert);
        }
        let mut body = Vec::new();
        put_u24(&mut body, list.len());
        body.extend_from_slice(&list);
        message(HS_CERTIFICATE, &body)
    }

    /// `payload` as records of `content_type`, at most `fragment` bytes each.
    fn records(content_type: u8, payload: &[u8], fragment: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in payload.chunks(fragment.max(1)) {
            out.extend_from_slice(&[content_type, 3, 3]);
            put_u16(&mut out, chunk.len());
            out.extend_from_slice(chunk);
        }
        out
    }

    fn fake_cert(n: u8, len: usize) -> Vec<u8> {
        vec![n; len]
    }

    /// ServerHello (TLS 1.0, TLS_RSA_WITH_AES_128_CBC_SHA), Certificate with `certs`,
    /// ServerHelloDone, in records of at most `fragment` bytes.
    fn flight(certs: &[Vec<u8>], fragment: usize) -> Vec<u8> {
        let mut handshake = server_hello(0x0301, 0x002f);
        handshake.extend_from_slice(&certificate(certs));
        handshake.extend_from_slice(&message(HS_SERVER_HELLO_DONE, &[]));
        records(CONTENT_HANDSHAKE, &handshake, fragment)
    }

    fn read_all(bytes: &[u8]) -> Result<Option<LegacyCapture>, LegacyError> {
        FlightReader::new().feed(bytes)
    }

    fn three_certs() -> Vec<Vec<u8>> {
        vec![fake_cert(1, 700), fake_cert(2, 900), fake_cert(3, 1100)]
    }

    #[test]
    fn a_flight_in_one_piece_gives_the_chain_version_and_suite() {
        let capture = read_all(&flight(&three_certs(), 16384))
            .expect("valid")
            .expect("complete");
        assert_eq!(capture.choice.version, LegacyVersion::Tls10);
        assert_eq!(capture.choice.cipher.name, "TLS_RSA_WITH_AES_128_CBC_SHA");
        assert_eq!(capture.choice.cipher.id, 0x002f);
        let chain: Vec<Vec<u8>> = capture.chain.iter().map(|c| c.to_vec()).collect();
        assert_eq!(chain, three_certs());
        assert_eq!(capture.truncated, None);
        assert_eq!(
            capture.tls_params(),
            TlsParams {
                version: "TLSv1.0",
                cipher: "TLS_RSA_WITH_AES_128_CBC_SHA"
            }
        );
    }

    #[test]
    fn every_record_size_and_every_read_size_give_the_same_capture() {
        let whole = read_all(&flight(&three_certs(), 16384)).expect("valid");
        for fragment in [3, 4, 5, 7, 64, 699, 1000] {
            let bytes = flight(&three_certs(), fragment);
            for chunk in [1, 2, 5, 13, 4096] {
                let mut reader = FlightReader::new();
                let mut got = None;
                for piece in bytes.chunks(chunk) {
                    if let Some(capture) = reader.feed(piece).expect("valid") {
                        got = Some(capture);
                        break;
                    }
                }
                assert_eq!(got, whole, "records of {fragment}, reads of {chunk}");
            }
        }
    }

    #[test]
    fn hello_requests_and_ignorable_warnings_are_skipped() {
        let mut bytes = records(CONTENT_HANDSHAKE, &message(HS_HELLO_REQUEST, &[]), 100);
        bytes.extend(records(
            CONTENT_ALERT,
            &[ALERT_WARNING, ALERT_UNRECOGNIZED_NAME],
            2,
        ));
        bytes.extend(flight(&three_certs(), 100));
        let capture = read_all(&bytes).expect("valid").expect("complete");
        assert_eq!(capture.chain.len(), 3);
    }

    #[test]
    fn the_reply_is_complete_once_the_certificate_message_ends() {
        // Nothing after the Certificate message is needed.
        let mut handshake = server_hello(0x0303, 0xc030);
        handshake.extend_from_slice(&certificate(&three_certs()));
        let capture = read_all(&records(CONTENT_HANDSHAKE, &handshake, 16384))
            .expect("valid")
            .expect("complete");
        assert_eq!(capture.choice.version, LegacyVersion::Tls12);
        assert_eq!(
            capture.choice.cipher.name,
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        );
    }

    #[test]
    fn ssl3_is_read_and_named() {
        let mut handshake = server_hello(0x0300, 0x000a);
        handshake.extend_from_slice(&certificate(&three_certs()));
        let capture = read_all(&records(CONTENT_HANDSHAKE, &handshake, 16384))
            .expect("valid")
            .expect("complete");
        assert_eq!(capture.choice.version.as_label(), "SSLv3");
        assert_eq!(capture.choice.cipher.name, "TLS_RSA_WITH_3DES_EDE_CBC_SHA");
    }

    #[test]
    fn thirty_two_certificates_are_kept_whole() {
        let certs: Vec<Vec<u8>> = (0..32).map(|i| fake_cert(i, 100)).collect();
        let capture = read_all(&flight(&certs, 16384))
            .expect("valid")
            .expect("complete");
        assert_eq!(capture.chain.len(), 32);
        assert_eq!(capture.truncated, None);
    }

    #[test]
    fn the_modern_chain_is_cut_by_the_same_rule() {
        let certs: Vec<Vec<u8>> = (0..40).map(|i| fake_cert(i, 100)).collect();
        assert_eq!(bound_chain(&certs[..32]), (32, None));
        let (kept, limit) = bound_chain(&certs);
        assert_eq!(kept, 32);
        assert_eq!(
            limit,
            Some(ChainLimit::Certificates {
                remaining_bytes: 8 * 103
            })
        );
        let big: Vec<Vec<u8>> = (0..5).map(|i| fake_cert(i, 60 * 1024)).collect();
        let (kept, limit) = bound_chain(&big);
        assert_eq!(kept, 4);
        assert_eq!(
            limit,
            Some(ChainLimit::Bytes {
                next_certificate: 60 * 1024,
                remaining_bytes: 60 * 1024 + 3
            })
        );
        // The same cut as the reader of a real flight.
        let got = read_all(&flight(&certs, 16 * 1024)).unwrap().unwrap();
        assert_eq!(got.chain.len(), 32);
        assert_eq!(got.truncated, limit_of(&certs));
    }

    fn limit_of(certs: &[Vec<u8>]) -> Option<ChainLimit> {
        bound_chain(certs).1
    }

    #[test]
    fn a_thirty_third_certificate_cuts_the_chain_and_says_so() {
        let certs: Vec<Vec<u8>> = (0..40).map(|i| fake_cert(i, 100)).collect();
        let capture = read_all(&flight(&certs, 16384))
            .expect("valid")
            .expect("complete");
        assert_eq!(capture.chain.len(), MAX_CERTIFICATES);
        assert_eq!(capture.chain[31].to_vec(), fake_cert(31, 100));
        assert_eq!(
            capture.truncated,
            Some(ChainLimit::Certificates {
                remaining_bytes: 8 * 103
            })
        );
        assert!(capture.is_truncated());
    }

    #[test]
    fn a_chain_over_the_byte_bound_is_cut_before_the_certificate_that_passes_it() {
        let certs: Vec<Vec<u8>> = (0..4).map(|i| fake_cert(i, 100_000)).collect();
        let bytes = flight(&certs, 16384);
        let capture = read_all(&bytes).expect("valid").expect("complete");
        assert_eq!(capture.chain.len(), 2);
        assert_eq!(
            capture.truncated,
            Some(ChainLimit::Bytes {
                next_certificate: 100_000,
                remaining_bytes: 2 * 100_003
            })
        );
        // The rest of the message was never needed.
        let mut reader = FlightReader::new();
        let mut fed = 0;
        for piece in bytes.chunks(1000) {
            fed += piece.len();
            if reader.feed(piece).expect("valid").is_some() {
                break;
            }
        }
        // Two certificates, and at most the record holding the third's header.
        assert!(fed < 2 * 100_003 + 16_384 + 2_000, "read {fed} bytes");
    }

    fn error_of(bytes: &[u8]) -> LegacyError {
        match read_all(bytes) {
            Err(e) => e,
            Ok(other) => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn alerts_are_reported_with_their_description_and_reason() {
        for (description, reason) in [
            (40, HandshakeReason::HandshakeFailure),
            (70, HandshakeReason::ProtocolVersion),
            (116, HandshakeReason::HandshakeFailure),
            (80, HandshakeReason::TlsAlert),
            (71, HandshakeReason::TlsAlert),
        ] {
            let e = error_of(&records(CONTENT_ALERT, &[2, description], 2));
            assert!(
                matches!(e, LegacyError::Alert { level: 2, description: d, .. } if d == description),
                "{e:?}"
            );
            assert_eq!(e.reason(), reason);
        }
        let e = error_of(&records(CONTENT_ALERT, &[2, 40], 2));
        assert_eq!(
            e.to_string(),
            "the server sent the alert handshake_failure (40, level 2) before any reply".replace(
                "before any reply",
                "after 7 bytes (1 records), before a complete ServerHello"
            )
        );
        assert_eq!(e.to_failure().kind.reason_label(), "handshake_failure");
    }

    #[test]
    fn a_warning_handshake_failure_is_still_a_failure() {
        let e = error_of(&records(CONTENT_ALERT, &[1, 40], 2));
        assert!(matches!(
            e,
            LegacyError::Alert {
                level: 1,
                description: 40,
                ..
            }
        ));
    }

    #[test]
    fn close_notify_ends_the_handshake() {
        let mut bytes = records(CONTENT_HANDSHAKE, &server_hello(0x0303, 0x009c), 16384);
        bytes.extend(records(CONTENT_ALERT, &[1, 0], 2));
        let e = error_of(&bytes);
        assert!(
            matches!(
                e,
                LegacyError::Ended {
                    how: Ending::CloseNotify,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("the server ended the handshake before sending its certificate"),
            "{e}"
        );
        assert_eq!(e.reason(), HandshakeReason::Reset);
    }

    #[test]
    fn garbage_is_not_tls_and_shows_what_came() {
        let e = error_of(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert_eq!(
            e,
            LegacyError::NotTls {
                received: b"HTTP/1.1 400 Bad".to_vec(),
                progress: Progress {
                    bytes: 28,
                    ..Progress::default()
                }
            }
        );
        assert!(e.to_string().contains("HTTP/1.1 400 Bad"), "{e}");
        assert_eq!(e.reason(), HandshakeReason::ProtocolError);
        // One byte is enough to tell.
        assert!(matches!(error_of(b"2"), LegacyError::NotTls { .. }));
        // A record type but no TLS version.
        assert!(matches!(error_of(&[22, 9]), LegacyError::NotTls { .. }));
    }

    #[test]
    fn a_huge_record_is_refused_from_its_header() {
        let e = error_of(&[22, 3, 1, 0xff, 0xff]);
        assert!(
            matches!(
                e,
                LegacyError::RecordTooLarge {
                    declared: 65535,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_huge_message_is_refused_from_its_header() {
        let bytes = records(CONTENT_HANDSHAKE, &[HS_SERVER_HELLO, 0x10, 0, 0], 4);
        let e = error_of(&bytes);
        assert!(
            matches!(
                e,
                LegacyError::MessageTooLarge {
                    msg_type: 2,
                    declared: 0x100000,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn endless_tiny_records_stop_at_the_record_bound() {
        // A ServerHello that never ends, one byte per record.
        let bytes = records(CONTENT_HANDSHAKE, &[2, 0, 0xff, 0xff].repeat(400), 1);
        let e = error_of(&bytes);
        assert!(matches!(e, LegacyError::TooManyRecords { .. }), "{e:?}");
        assert_eq!(e.progress().records, MAX_RECORDS + 1);
    }

    #[test]
    fn too_many_bytes_stop_at_the_byte_bound() {
        // Warnings a client ignores, forever.
        let alert = records(
            CONTENT_ALERT,
            &[1, ALERT_UNRECOGNIZED_NAME].repeat(8000),
            16000,
        );
        let mut reader = FlightReader::new();
        let e = loop {
            match reader.feed(&alert) {
                Ok(None) => continue,
                Ok(Some(c)) => panic!("{c:?}"),
                Err(e) => break e,
            }
        };
        assert!(matches!(e, LegacyError::TooMuchData { .. }), "{e:?}");
    }

    #[test]
    fn tls13_and_unknown_versions_are_refused() {
        let tls13 = [0, 43, 0, 2, 3, 4];
        let bytes = records(
            CONTENT_HANDSHAKE,
            &server_hello_with(0x0303, 0x1301, Some(&tls13)),
            16384,
        );
        let e = error_of(&bytes);
        assert!(
            matches!(
                e,
                LegacyError::UnexpectedVersion {
                    version: 0x0304,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("TLS 1.3"), "{e}");
        assert_eq!(e.reason(), HandshakeReason::ProtocolVersion);
        let e = error_of(&records(
            CONTENT_HANDSHAKE,
            &server_hello(0x0305, 0x002f),
            16384,
        ));
        assert!(
            matches!(
                e,
                LegacyError::UnexpectedVersion {
                    version: 0x0305,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_server_that_skips_its_certificate_is_told_apart() {
        let mut handshake = server_hello(0x0303, 0x002f);
        handshake.extend_from_slice(&message(HS_SERVER_HELLO_DONE, &[]));
        let e = error_of(&records(CONTENT_HANDSHAKE, &handshake, 16384));
        assert!(
            matches!(e, LegacyError::CertificateSkipped { msg_type: 14, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("ServerHelloDone"), "{e}");

        let mut handshake = server_hello(0x0303, 0x002f);
        handshake.extend_from_slice(&certificate(&[]));
        let e = error_of(&records(CONTENT_HANDSHAKE, &handshake, 16384));
        assert!(matches!(e, LegacyError::EmptyCertificate { .. }), "{e:?}");
    }

    #[test]
    fn out_of_place_records_and_messages_are_errors() {
        let e = error_of(&records(CONTENT_CHANGE_CIPHER_SPEC, &[1], 1));
        assert!(matches!(
            e,
            LegacyError::UnexpectedRecord {
                content_type: 20,
                ..
            }
        ));
        let e = error_of(&records(
            CONTENT_HANDSHAKE,
            &certificate(&three_certs()),
            16384,
        ));
        assert!(
            matches!(e, LegacyError::UnexpectedMessage { msg_type: 11, .. }),
            "{e:?}"
        );
        let mut handshake = server_hello(0x0303, 0x002f);
        handshake.extend_from_slice(&server_hello(0x0303, 0x002f));
        let e = error_of(&records(CONTENT_HANDSHAKE, &handshake, 16384));
        assert!(
            matches!(e, LegacyError::UnexpectedMessage { msg_type: 2, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn inconsistent_lengths_are_malformed() {
        let mut handshake = server_hello(0x0303, 0x002f);
        // A Certificate message whose list claims more than the message holds.
        handshake.extend_from_slice(&[HS_CERTIFICATE, 0, 0, 10, 0, 0, 20]);
        let e = error_of(&records(CONTENT_HANDSHAKE, &handshake, 16384));
        assert!(matches!(e, LegacyError::Malformed { .. }), "{e:?}");

        let mut handshake = server_hello(0x0303, 0x002f);
        // An entry longer than the list.
        handshake.extend_from_slice(&[HS_CERTIFICATE, 0, 0, 8, 0, 0, 5, 0, 0, 9, 1, 1]);
        let e = error_of(&records(CONTENT_HANDSHAKE, &handshake, 16384));
        assert!(matches!(e, LegacyError::Malformed { .. }), "{e:?}");

        let e = error_of(&records(
            CONTENT_HANDSHAKE,
            &message(HS_SERVER_HELLO, &[3, 3, 1]),
            100,
        ));
        assert!(matches!(e, LegacyError::Malformed { .. }), "{e:?}");
    }

    #[test]
    fn progress_says_how_far_the_server_got() {
        let mut reader = FlightReader::new();
        assert_eq!(
            reader.ended(Ending::Closed).progress().to_string(),
            "before any reply"
        );
        reader
            .feed(&records(
                CONTENT_HANDSHAKE,
                &server_hello(0x0302, 0x0035),
                16384,
            ))
            .expect("valid");
        let e = reader.ended(Ending::Closed);
        assert_eq!(
            e.to_string(),
            "the server ended the handshake before sending its certificate: it closed the \
             connection, after the ServerHello (TLSv1.1, TLS_RSA_WITH_AES_256_CBC_SHA)"
        );
        let mut partial = certificate(&three_certs());
        partial.truncate(800);
        reader
            .feed(&records(CONTENT_HANDSHAKE, &partial, 16384))
            .expect("valid");
        assert_eq!(
            reader.timed_out().progress().to_string(),
            "inside the Certificate message, after 1 certificates (TLSv1.1, \
             TLS_RSA_WITH_AES_256_CBC_SHA)"
        );
    }

    /// A hello parsed back: record version, client_version, suites, extensions.
    type ParsedHello = (u16, u16, Vec<u16>, Vec<(u16, Vec<u8>)>);

    fn parse_hello(bytes: &[u8]) -> ParsedHello {
        assert_eq!(bytes[0], CONTENT_HANDSHAKE);
        let record_version = u16::from_be_bytes([bytes[1], bytes[2]]);
        let record_len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        assert_eq!(record_len, bytes.len() - 5);
        assert_eq!(bytes[5], HS_CLIENT_HELLO);
        assert_eq!(u24(&bytes[6..9]), record_len - 4);
        let mut r = Cursor(&bytes[9..]);
        let client_version = r.u16().unwrap();
        r.take(32).unwrap();
        let sid = r.u8().unwrap();
        r.take(usize::from(sid)).unwrap();
        let suites_len = usize::from(r.u16().unwrap());
        let suites = r
            .take(suites_len)
            .unwrap()
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u8(), Some(0));
        let mut extensions = Vec::new();
        if !r.0.is_empty() {
            let len = usize::from(r.u16().unwrap());
            let mut e = Cursor(r.take(len).unwrap());
            while !e.0.is_empty() {
                let kind = e.u16().unwrap();
                let len = usize::from(e.u16().unwrap());
                extensions.push((kind, e.take(len).unwrap().to_vec()));
            }
        }
        assert!(r.0.is_empty());
        (record_version, client_version, suites, extensions)
    }

    fn name(host: &str) -> Option<ServerName<'static>> {
        Some(ServerName::try_from(host.to_owned()).expect("name"))
    }

    #[test]
    fn the_full_hello_offers_every_suite_with_a_certificate() {
        let hello = LegacyHello::new(name("legacy.example"), KeyType::Any);
        let (record_version, client_version, suites, extensions) =
            parse_hello(&hello.encode([0; 32]));
        assert_eq!(record_version, 0x0301);
        assert_eq!(client_version, 0x0303);
        assert_eq!(suites.len(), OFFERED_SUITES + 1);
        assert_eq!(suites.last(), Some(&RENEGOTIATION_INFO_SCSV));
        for (id, what) in [
            (0x002f, "RSA key exchange, CBC"),
            (0x0033, "DHE-RSA"),
            (0x0032, "DHE-DSS"),
            (0xc02b, "ECDHE-ECDSA GCM"),
            (0xc005, "static ECDH"),
            (0x000a, "3DES"),
            (0x0005, "RC4"),
            (0x0041, "CAMELLIA"),
            (0xc050, "ARIA"),
            (0x0096, "SEED"),
            (0xc09c, "CCM"),
            (0xcca8, "ChaCha20"),
            (0x0003, "export"),
        ] {
            assert!(suites.contains(&id), "{what} (0x{id:04x}) is not offered");
        }
        for (id, what) in [
            (0x0034, "anonymous DH"),
            (0x008c, "PSK"),
            (0xc01d, "SRP"),
            (0x001f, "Kerberos"),
            (0x1301, "TLS 1.3"),
            (0x5600, "TLS_FALLBACK_SCSV"),
            (0x0000, "NULL_WITH_NULL"),
        ] {
            assert!(!suites.contains(&id), "{what} (0x{id:04x}) is offered");
        }
        let kinds: Vec<u16> = extensions.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [
                EXT_SERVER_NAME,
                EXT_SUPPORTED_GROUPS,
                EXT_EC_POINT_FORMATS,
                EXT_SIGNATURE_ALGORITHMS
            ]
        );
        let sni = &extensions[0].1;
        assert_eq!(&sni[5..], b"legacy.example");
        let groups = &extensions[1].1;
        for group in [0x0019u16, 0x001a, 0x001d, 0x001e, 0x0100, 0x0104] {
            assert!(
                groups[2..].chunks(2).any(|c| c == group.to_be_bytes()),
                "group 0x{group:04x}"
            );
        }
        let schemes = &extensions[3].1;
        for scheme in [0x0201u16, 0x0203, 0x0202, 0x0804, 0x0809, 0x0807, 0x0603] {
            assert!(
                schemes[2..].chunks(2).any(|c| c == scheme.to_be_bytes()),
                "scheme 0x{scheme:04x}"
            );
        }
    }

    #[test]
    fn no_sni_for_sni_false_or_an_address() {
        for server_name in [
            None,
            Some(ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]))),
        ] {
            let hello = LegacyHello::new(server_name, KeyType::Any);
            let (_, _, _, extensions) = parse_hello(&hello.encode([0; 32]));
            assert!(extensions.iter().all(|(k, _)| *k != EXT_SERVER_NAME));
        }
    }

    #[test]
    fn the_key_type_filters_suites_and_schemes() {
        let rsa = LegacyHello::new(None, KeyType::Rsa);
        let ecdsa = LegacyHello::new(None, KeyType::Ecdsa);
        let auth = |id: u16| SUITES.iter().find(|s| s.id == id).unwrap().auth;
        assert!(rsa.suites().iter().all(|&id| auth(id) == Auth::Rsa));
        assert!(ecdsa.suites().iter().all(|&id| auth(id) == Auth::Ecdsa));
        assert!(rsa.suites().contains(&0x002f) && !rsa.suites().contains(&0xc02b));
        assert!(ecdsa.suites().contains(&0xc02b) && !ecdsa.suites().contains(&0xc02f));
        assert!(rsa.signature_schemes().contains(&0x0809));
        assert!(!rsa.signature_schemes().contains(&0x0403));
        assert!(ecdsa.signature_schemes().contains(&0x0203));
        assert!(!ecdsa.signature_schemes().contains(&0x0201));
        let any = LegacyHello::new(None, KeyType::Any);
        assert_eq!(any.signature_schemes().len(), SIGNATURE_SCHEMES.len());
    }

    #[test]
    fn no_name_length_puts_a_hello_between_256_and_511_bytes() {
        for len in 1..=253 {
            // Labels of at most 61 letters.
            let host: String = (0..len)
                .map(|i| {
                    if i % 62 == 61 && i + 1 < len {
                        '.'
                    } else {
                        'a'
                    }
                })
                .collect();
            for key_type in [KeyType::Any, KeyType::Rsa, KeyType::Ecdsa] {
                for hello in [
                    LegacyHello::new(name(&host), key_type),
                    LegacyHello::new(name(&host), key_type).cautious(),
                ] {
                    let bytes = hello.encode([0; 32]);
                    let handshake_len = bytes.len() - 5;
                    assert!(
                        !(256..512).contains(&handshake_len),
                        "{len}-byte name, {key_type:?}, {:?}: {handshake_len}",
                        hello.profile
                    );
                    let (_, _, _, extensions) = parse_hello(&bytes);
                    assert_eq!(&extensions[0].1[5..], host.as_bytes());
                }
            }
        }
    }

    #[test]
    fn a_hello_between_256_and_511_bytes_is_padded_to_512() {
        for key_type in [KeyType::Any, KeyType::Rsa, KeyType::Ecdsa] {
            for hello in [
                LegacyHello::new(name("a.example"), key_type),
                LegacyHello::new(None, key_type).cautious(),
            ] {
                let bytes = hello.encode([0; 32]);
                let handshake_len = bytes.len() - 5;
                assert!(
                    !(256..512).contains(&handshake_len),
                    "{key_type:?} {:?}: {handshake_len}",
                    hello.profile
                );
                parse_hello(&bytes);
            }
        }
    }

    #[test]
    fn the_cautious_hello_stays_under_128_suites_and_says_tls_1_0() {
        let hello = LegacyHello::new(name("old.example"), KeyType::Any).cautious();
        let (_, client_version, suites, extensions) = parse_hello(&hello.encode([0; 32]));
        assert_eq!(client_version, 0x0301);
        assert_eq!(suites.len(), CAUTIOUS_MAX_SUITES);
        assert_eq!(
            suites[..127],
            LegacyHello::new(None, KeyType::Any).suites()[..127]
        );
        let kinds: Vec<u16> = extensions.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            kinds,
            [EXT_SERVER_NAME, EXT_PADDING],
            "SNI, and padding to 512 bytes"
        );
    }

    #[test]
    fn the_suite_table_is_consistent_and_agrees_with_rustls_names() {
        let mut ids: Vec<u16> = SUITES.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SUITES.len(), "duplicate code points");
        assert!(SUITES[..OFFERED_SUITES]
            .iter()
            .all(|s| s.auth != Auth::NoCertificate));
        assert!(SUITES[OFFERED_SUITES..]
            .iter()
            .all(|s| s.auth == Auth::NoCertificate));
        for suite in &SUITES {
            assert!(suite.name.starts_with("TLS_"), "{}", suite.name);
            let theirs = rustls::CipherSuite::from(suite.id);
            // rustls gives 0x001e both its Kerberos and its SSL 3.0 Fortezza name.
            if let Some(name) = theirs.as_str().filter(|_| suite.id != 0x001e) {
                let name = name.replace("TLS13_", "TLS_");
                assert_eq!(name, suite.name, "0x{:04x}", suite.id);
            }
        }
        assert_eq!(
            suite_name(0xc02f),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(suite_name(0x1301), Some("TLS_AES_128_GCM_SHA256"));
        assert_eq!(
            suite_name(0xc0b0),
            Some("TLS_ECCPWD_WITH_AES_128_GCM_SHA256")
        );
        assert_eq!(suite_name(0x1234), None);
        assert_eq!(CipherSuite::from_id(0x1234).name, "unknown");
    }

    #[test]
    fn the_rustls_errors_that_call_for_a_legacy_hello() {
        use rustls::{AlertDescription as A, Error as E, InvalidMessage, PeerIncompatible};
        assert!(calls_for_legacy_hello(&E::AlertReceived(
            A::ProtocolVersion
        )));
        assert!(calls_for_legacy_hello(&E::AlertReceived(
            A::HandshakeFailure
        )));
        assert!(calls_for_legacy_hello(&E::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
        )));
        assert!(calls_for_legacy_hello(&E::InvalidMessage(
            InvalidMessage::HandshakePayloadTooLarge
        )));
        assert!(calls_for_legacy_hello(&E::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedKxWithWrongAlgorithm
        )));
        assert!(!calls_for_legacy_hello(&E::AlertReceived(A::UnknownCA)));
        assert!(!calls_for_legacy_hello(&E::InvalidMessage(
            InvalidMessage::InvalidContentType
        )));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out_at_the_deadline() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let probe =
            tokio::spawn(async move { capture(client, &LegacyHello::default(), deadline).await });
        let mut hello = vec![0u8; 5];
        server.read_exact(&mut hello).await.expect("hello");
        let e = probe.await.expect("join").expect_err("timeout");
        assert!(matches!(e, LegacyError::Timeout { .. }), "{e:?}");
        assert_eq!(Instant::now(), deadline);
        drop(server);
    }

    #[tokio::test]
    async fn capture_reads_the_chain_and_cancels_the_handshake() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let hello = LegacyHello::new(name("dual.example"), KeyType::Rsa);
        let expected = hello.encode([0; 32]);
        let probe = tokio::spawn(async move { capture(client, &hello, deadline).await });
        let mut got = vec![0u8; expected.len()];
        server.read_exact(&mut got).await.expect("hello");
        assert_eq!(got[..11], expected[..11], "header and client_version");
        assert_eq!(got[43..], expected[43..], "all but the random");
        server
            .write_all(&flight(&three_certs(), 500))
            .await
            .expect("flight");
        let capture = probe.await.expect("join").expect("capture");
        assert_eq!(capture.chain.len(), 3);
        let mut alert = [0u8; 7];
        server.read_exact(&mut alert).await.expect("alert");
        assert_eq!(alert, USER_CANCELED);
    }

    #[tokio::test]
    async fn a_close_after_the_server_hello_is_not_a_missing_certificate() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        let probe =
            tokio::spawn(async move { capture(client, &LegacyHello::default(), deadline).await });
        let mut header = [0u8; 5];
        server.read_exact(&mut header).await.expect("hello");
        server
            .write_all(&records(
                CONTENT_HANDSHAKE,
                &server_hello(0x0301, 0x0005),
                100,
            ))
            .await
            .expect("hello");
        drop(server);
        let e = probe.await.expect("join").expect_err("ended");
        assert!(
            matches!(
                e,
                LegacyError::Ended {
                    how: Ending::Closed,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.progress().choice.map(|c| c.cipher.name),
            Some("TLS_RSA_WITH_RC4_128_SHA")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(chunks in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let mut reader = FlightReader::new();
            for chunk in &chunks {
                if reader.feed(chunk).is_err() {
                    break;
                }
            }
        }

        #[test]
        fn records_of_random_handshake_bytes_never_panic(
            payload in proptest::collection::vec(any::<u8>(), 0..3000),
            fragment in 1usize..600,
            lead in prop_oneof![Just(vec![]), Just(server_hello(0x0303, 0x002f))],
        ) {
            let mut handshake = lead;
            handshake.extend_from_slice(&payload);
            let _ = read_all(&records(CONTENT_HANDSHAKE, &handshake, fragment));
        }

        #[test]
        fn mutated_flights_never_panic_and_keep_the_bounds(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
            fragment in 1usize..2000,
            chunk in 1usize..5000,
        ) {
            let mut bytes = flight(&three_certs(), fragment);
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let mut reader = FlightReader::new();
            for piece in bytes.chunks(chunk) {
                match reader.feed(piece) {
                    Ok(None) => {}
                    Ok(Some(capture)) => {
                        prop_assert!(capture.chain.len() <= MAX_CERTIFICATES);
                        prop_assert!(capture.chain.iter().map(|c| c.len()).sum::<usize>() <= MAX_CHAIN_BYTES);
                        break;
                    }
                    Err(e) => {
                        // Every error renders and maps to a label.
                        prop_assert!(!e.to_string().is_empty());
                        let _ = e.reason();
                        break;
                    }
                }
            }
        }
    }
}
