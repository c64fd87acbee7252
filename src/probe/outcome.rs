//! What a probe found: the typed result of one probe of one target.
//!
//! A failure is a `stage` and a `reason` from closed enums, so the metric labels come
//! from an exhaustive `match` and can never carry free text; the free-text detail rides
//! along for logs and the status page. This module does no I/O.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cert::ParsedCert;

/// The phases of a probe, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Name resolution.
    Resolve,
    /// TCP connect.
    Connect,
    /// The plaintext protocol exchange before TLS.
    StartTls,
    /// The TLS handshake.
    Handshake,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 4] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::StartTls,
        Phase::Handshake,
    ];

    /// The `stage` / `phase` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::StartTls => "starttls",
            Phase::Handshake => "handshake",
        }
    }

    /// Position in [`Phase::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_label())
    }
}

/// Why name resolution failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveReason {
    /// The name has no address (of the wanted family).
    NotFound,
    /// The resolver did not answer in time.
    Timeout,
    /// Any other resolver failure.
    Error,
}

/// Why the TCP connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectReason {
    /// Nothing listens on the port.
    Refused,
    /// No route to the address.
    Unreachable,
    /// No answer in time.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The proxy's rules refused the connection (SOCKS "not allowed by ruleset", an
    /// HTTP 403 or 405, ...).
    ProxyRefused,
    /// The proxy asked for credentials, or refused those given.
    ProxyAuthFailed,
    /// The proxy's reply was not SOCKS5 or HTTP, or over its size limit.
    ProxyProtocolError,
}

/// Why the STARTTLS exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartTlsReason {
    /// The greeting or a reply before STARTTLS was not a success.
    ServiceUnavailable,
    /// The server does not advertise STARTTLS.
    NotOffered,
    /// The server refused the STARTTLS command.
    Rejected,
    /// Not the expected protocol, or a line or reply over its size limit.
    ProtocolError,
    /// The server did not answer in time.
    Timeout,
    /// The server closed or reset the connection.
    Reset,
}

/// Why the TLS handshake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeReason {
    /// No TLS version in common.
    ProtocolVersion,
    /// The server aborted with a handshake_failure-class alert (e.g. it requires a client certificate).
    HandshakeFailure,
    /// The server sent another alert.
    TlsAlert,
    /// Not TLS, or malformed.
    ProtocolError,
    /// The server did not answer in time.
    Timeout,
    /// The server closed or reset the connection.
    Reset,
}

/// Where and why a probe stopped before the handshake completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// In name resolution.
    Resolve(ResolveReason),
    /// In TCP connect.
    Connect(ConnectReason),
    /// In the STARTTLS exchange.
    StartTls(StartTlsReason),
    /// In the TLS handshake.
    Handshake(HandshakeReason),
}

impl FailureKind {
    /// The `stage` label value.
    pub const fn stage(self) -> Phase {
        match self {
            FailureKind::Resolve(_) => Phase::Resolve,
            FailureKind::Connect(_) => Phase::Connect,
            FailureKind::StartTls(_) => Phase::StartTls,
            FailureKind::Handshake(_) => Phase::Handshake,
        }
    }

    /// The failure for a timeout in `phase`.
    pub const fn timeout_in(phase: Phase) -> Self {
        match phase {
            Phase::Resolve => FailureKind::Resolve(ResolveReason::Timeout),
            Phase::Connect => FailureKind::Connect(ConnectReason::Timeout),
            Phase::StartTls => FailureKind::StartTls(StartTlsReason::Timeout),
            Phase::Handshake => FailureKind::Handshake(HandshakeReason::Timeout),
        }
    }

    /// The `reason` label value.
    pub const fn reason_label(self) -> &'static str {
        match self {
            FailureKind::Resolve(r) => match r {
                ResolveReason::NotFound => "not_found",
                ResolveReason::Timeout => "timeout",
                ResolveReason::Error => "error",
            },
            FailureKind::Connect(r) => match r {
                ConnectReason::Refused => "refused",
                ConnectReason::Unreachable => "unreachable",
                ConnectReason::Timeout => "timeout",
                ConnectReason::Reset => "reset",
                ConnectReason::ProxyRefused => "proxy_refused",
                ConnectReason::ProxyAuthFailed => "proxy_auth_failed",
                ConnectReason::ProxyProtocolError => "proxy_protocol_error",
            },
            FailureKind::StartTls(r) => match r {
                StartTlsReason::ServiceUnavailable => "service_unavailable",
                StartTlsReason::NotOffered => "starttls_not_offered",
                StartTlsReason::Rejected => "starttls_rejected",
                StartTlsReason::ProtocolError => "protocol_error",
                StartTlsReason::Timeout => "timeout",
                StartTlsReason::Reset => "reset",
            },
            FailureKind::Handshake(r) => match r {
                HandshakeReason::ProtocolVersion => "protocol_version",
                HandshakeReason::HandshakeFailure => "handshake_failure",
                HandshakeReason::TlsAlert => "tls_alert",
                HandshakeReason::ProtocolError => "protocol_error",
                HandshakeReason::Timeout => "timeout",
                HandshakeReason::Reset => "reset",
            },
        }
    }
}

/// A failure with the evidence behind it, for logs and the status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Stage and reason.
    pub kind: FailureKind,
    /// Free text: what happened, never a label.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({}): {}",
            self.kind.stage(),
            self.kind.reason_label(),
            self.detail
        )
    }
}

/// Why a presented chain did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyReason {
    /// A certificate of the path is past its notAfter.
    Expired,
    /// A certificate of the path is before its notBefore.
    NotYetValid,
    /// The leaf is self-signed and not trusted.
    SelfSigned,
    /// No path to a trust anchor.
    UnknownIssuer,
    /// The leaf is not valid for `server_name`.
    NameMismatch,
    /// A signature in the path is wrong.
    BadSignature,
    /// A signature or key algorithm is not supported.
    UnsupportedAlgorithm,
    /// A key of the path is too weak (RSA under 2048 bits, DSA).
    WeakKey,
    /// A certificate is not allowed for TLS server authentication.
    InvalidPurpose,
    /// A certificate is revoked.
    Revoked,
    /// Anything else, e.g. a certificate that does not parse.
    Other,
}

impl VerifyReason {
    /// The `reason` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            VerifyReason::Expired => "expired",
            VerifyReason::NotYetValid => "not_yet_valid",
            VerifyReason::SelfSigned => "self_signed",
            VerifyReason::UnknownIssuer => "unknown_issuer",
            VerifyReason::NameMismatch => "name_mismatch",
            VerifyReason::BadSignature => "bad_signature",
            VerifyReason::UnsupportedAlgorithm => "unsupported_algorithm",
            VerifyReason::WeakKey => "weak_key",
            VerifyReason::InvalidPurpose => "invalid_purpose",
            VerifyReason::Revoked => "revoked",
            VerifyReason::Other => "other",
        }
    }
}

/// The verification verdict for a presented chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chain verifies for the server name.
    Verified {
        /// The earliest notAfter along the verified path, trust anchor included when its
        /// certificate is known (Unix seconds).
        path_not_after: i64,
        /// The depths of the presented certificates on the verified path, in path
        /// order: the leaf (0), the intermediates the path uses, and a presented
        /// self-signed copy of the trust anchor. A presented certificate not listed
        /// here is one no client needs (e.g. an expired cross-signed root).
        path: Vec<usize>,
    },
    /// It does not.
    Failed {
        /// The label reason.
        reason: VerifyReason,
        /// Free text for logs.
        detail: String,
    },
}

/// The negotiated TLS parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsParams {
    /// `TLSv1.2` or `TLSv1.3`; for a legacy hello, also `TLSv1.0`, `TLSv1.1`, `SSLv3`.
    pub version: &'static str,
    /// The IANA cipher suite name.
    pub cipher: &'static str,
}

/// Time spent in each phase.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseTimes([Option<Duration>; 4]);

impl PhaseTimes {
    /// Records the time of `phase`.
    pub fn set(&mut self, phase: Phase, took: Duration) {
        self.0[phase.index()] = Some(took);
    }

    /// The time of `phase`, if it ran.
    pub fn get(&self, phase: Phase) -> Option<Duration> {
        self.0[phase.index()]
    }
}

/// The result of probing one address of a target (or the name, when it did not resolve).
#[derive(Clone, Debug)]
pub struct AddressOutcome {
    /// The address probed; `None` when the name did not resolve.
    pub ip: Option<IpAddr>,
    /// When the probe finished.
    pub finished_at: SystemTime,
    /// How long it took in all.
    pub duration: Duration,
    /// How long each phase took.
    pub phases: PhaseTimes,
    /// The TLS parameters, or where and why the probe stopped.
    pub handshake: Result<TlsParams, Failure>,
    /// The certificates presented, in order (captured even when the handshake failed later).
    pub chain: Vec<Arc<ParsedCert>>,
    /// The verdict on the chain; `None` when no chain was presented. A certificate
    /// that revocation found revoked makes it `Failed` with [`VerifyReason::Revoked`].
    pub verdict: Option<Verdict>,
    /// What the server chose in answer to the legacy second hello, when the modern
    /// handshake failed and the legacy hello read the chain (`certwatch_legacy_only`).
    /// `handshake` then still holds the modern handshake's failure.
    pub legacy: Option<TlsParams>,
    /// Set when the presented chain was longer than certwatch keeps and was cut.
    pub chain_cut: Option<ChainCut>,
    /// What is wrong with the presented chain as a whole, sorted, each once.
    pub chain_issues: Vec<ChainIssue>,
    /// What is weak in each presented certificate: (depth, weakness), sorted.
    pub weaknesses: Vec<(usize, Weakness)>,
    /// Revocation: the staple, and each certificate checked by OCSP or CRL; `None` when
    /// the target checks nothing (`ocsp: off`, `crl: off`) or no chain was presented.
    pub revocation: Option<crate::revocation::Revocation>,
    /// For a discovered target (`mx`, `srv`), the host this address belongs to.
    pub host: Option<Arc<DiscoveredHost>>,
}

/// A host that an MX or SRV answer named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredHost {
    /// The `host` label: `name:port`, the name lowercased, without the trailing dot.
    pub label: String,
    /// The name sent as SNI and verified: the host's own for MX, the service's domain
    /// for SRV, unless `server_name` is set.
    pub server_name: String,
}

/// A presented chain cut at certwatch's bound (`probe::legacy::MAX_CERTIFICATES`
/// certificates, `probe::legacy::MAX_CHAIN_BYTES` bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCut {
    /// The certificates kept.
    pub kept: usize,
    /// What was left out, for logs and the status page.
    pub detail: String,
}

/// A problem of the presented chain as a whole (contract section 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChainIssue {
    /// The presented certificates do not reach a trust anchor: the leaf's issuer path
    /// ends in a certificate that is neither self-signed nor issued by an anchor.
    Incomplete,
    /// A self-signed certificate was sent after the leaf.
    RootIncluded,
    /// The leaf's issuer path is not presented in order, right after the leaf.
    OutOfOrder,
    /// A certificate was sent twice.
    Duplicate,
    /// A presented certificate that the verified path does not use; for a chain that
    /// does not verify, one not on the leaf's issuer path.
    Unrelated,
    /// The chain exceeded certwatch's bound and was cut.
    TooLong,
}

impl ChainIssue {
    /// Every issue, in label order.
    pub const ALL: [ChainIssue; 6] = [
        ChainIssue::Incomplete,
        ChainIssue::RootIncluded,
        ChainIssue::OutOfOrder,
        ChainIssue::Duplicate,
        ChainIssue::Unrelated,
        ChainIssue::TooLong,
    ];

    /// The `issue` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            ChainIssue::Incomplete => "incomplete",
            ChainIssue::RootIncluded => "root_included",
            ChainIssue::OutOfOrder => "out_of_order",
            ChainIssue::Duplicate => "duplicate",
            ChainIssue::Unrelated => "unrelated",
            ChainIssue::TooLong => "too_long",
        }
    }
}

/// A weakness of one presented certificate (contract section 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weakness {
    /// An RSA key (RSA-PSS included) under 2048 bits.
    RsaKeyUnder2048,
    /// An EC key under 256 bits.
    EcKeyUnder256,
    /// Signed with SHA-1 (not reported for a self-signed certificate, whose own
    /// signature no client checks).
    Sha1Signature,
    /// Signed with MD5 (or MD2), likewise.
    Md5Signature,
    /// A leaf valid for more than 398 days (the CA/Browser Forum's limit).
    LifetimeOver398Days,
    /// A leaf without a DNS or IP subject alternative name.
    NoSubjectAltName,
}

impl Weakness {
    /// Every weakness, in label order.
    pub const ALL: [Weakness; 6] = [
        Weakness::RsaKeyUnder2048,
        Weakness::EcKeyUnder256,
        Weakness::Sha1Signature,
        Weakness::Md5Signature,
        Weakness::LifetimeOver398Days,
        Weakness::NoSubjectAltName,
    ];

    /// The `weakness` label value.
    pub const fn as_label(self) -> &'static str {
        match self {
            Weakness::RsaKeyUnder2048 => "rsa_key_under_2048",
            Weakness::EcKeyUnder256 => "ec_key_under_256",
            Weakness::Sha1Signature => "sha1_signature",
            Weakness::Md5Signature => "md5_signature",
            Weakness::LifetimeOver398Days => "lifetime_over_398_days",
            Weakness::NoSubjectAltName => "no_subject_alt_name",
        }
    }

    /// Whether it is looked for only in a server's leaf (the CA/Browser Forum's rules
    /// for the certificate a browser checks), not in every certificate.
    pub const fn leaf_only(self) -> bool {
        match self {
            Weakness::RsaKeyUnder2048
            | Weakness::EcKeyUnder256
            | Weakness::Sha1Signature
            | Weakness::Md5Signature => false,
            Weakness::LifetimeOver398Days | Weakness::NoSubjectAltName => true,
        }
    }
}

impl AddressOutcome {
    /// Whether the handshake completed.
    pub fn handshake_ok(&self) -> bool {
        self.handshake.is_ok()
    }

    /// Whether the chain verified.
    pub fn verified(&self) -> bool {
        matches!(self.verdict, Some(Verdict::Verified { .. }))
    }

    /// Whether both the handshake and verification succeeded.
    pub fn success(&self) -> bool {
        self.handshake_ok() && self.verified()
    }

    /// Whether only the legacy second hello reached the server (TLS 1.0/1.1, or
    /// suites, groups or schemes the modern handshake lacks).
    pub fn legacy_only(&self) -> bool {
        self.legacy.is_some()
    }

    /// The version and cipher to report: the modern handshake's, or what the server
    /// chose for the legacy hello.
    pub fn tls_params(&self) -> Option<TlsParams> {
        self.handshake.as_ref().ok().copied().or(self.legacy)
    }

    /// Whether the presented certificate at `depth` counts for expiry: it is on the
    /// verified path, or the chain does not verify (every presented one counts).
    pub fn counts_for_expiry(&self, depth: usize) -> bool {
        match &self.verdict {
            Some(Verdict::Verified { path, .. }) => path.contains(&depth),
            _ => true,
        }
    }
}

/// The result of one probe round of a target: one outcome per address probed.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    /// One per address, in resolution order; a single entry with `ip: None` when the
    /// name did not resolve.
    pub addresses: Vec<AddressOutcome>,
    /// What the caps on hosts and addresses left out.
    pub cut: Cut,
}

/// What a probe did not probe because of the caps: at most 16 hosts per discovered
/// target, at most 16 addresses per name. Logged and exported, never silent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    /// For a discovered target whose lookup succeeded: the distinct hosts its answer
    /// named, the probed ones included.
    pub hosts_named: Option<usize>,
    /// The first few of the hosts named but not probed, for the log.
    pub hosts_left_out: Vec<String>,
    /// Per name that resolved to more addresses than are probed: its host (`None` for
    /// a target's own address), the name, and how many addresses were left out.
    pub addresses: Vec<(Option<Arc<DiscoveredHost>>, String, usize)>,
}
