//! Single-value configuration types, each validated as it is parsed.
//!
//! Every type here is a `FromStr` newtype deserialized with `try_from = "String"`, so a
//! bad value is rejected while the YAML is read and serde_yaml reports it with its line
//! and column. This module knows nothing beyond one value: merging, files and the
//! network belong to `config::resolve` and `probe`.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use rustls_pki_types::ServerName;

/// Implements `Deserialize` through `FromStr`. The error is raised inside the visitor,
/// while serde_yaml still knows the scalar being read, so it carries the value's own
/// line and column (a `try_from` conversion would be placed at the enclosing mapping).
macro_rules! deserialize_from_str {
    ($name:ident, $what:literal) => {
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                struct StrVisitor;
                impl ::serde::de::Visitor<'_> for StrVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: ::serde::de::Error>(
                        self,
                        v: &str,
                    ) -> ::std::result::Result<$name, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(StrVisitor)
            }
        }
    };
}
pub(crate) use deserialize_from_str;

/// A single configuration value that does not parse. serde_yaml places it at the
/// value's line and column; its text says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not Prometheus' duration syntax.
    #[error("invalid duration {text:?}: use Prometheus' syntax, a number and a unit (ms, s, m, h, d, w, y), e.g. \"30s\", \"5m\" or \"1h30m\"")]
    DurationSyntax {
        /// As written.
        text: String,
    },
    /// Units repeated or out of order.
    #[error(
        "invalid duration {text:?}: units must appear once each, largest first (e.g. \"1h30m\")"
    )]
    DurationOrder {
        /// As written.
        text: String,
    },
    /// More milliseconds than 64 bits hold.
    #[error("invalid duration {text:?}: too large")]
    DurationTooLarge {
        /// As written.
        text: String,
    },
    /// Not `host:port`, `ipv4:port` or `[ipv6]:port`.
    #[error("invalid address {text:?}: {problem}; write host:port, ipv4:port or [ipv6]:port, e.g. \"mail.example.com:587\" or \"[2001:db8::1]:443\"")]
    Address {
        /// As written.
        text: String,
        /// What is wrong with it.
        problem: AddressProblem,
    },
    /// Not a DNS name or an IP address.
    #[error("invalid server_name {text:?}: write a DNS name such as \"mail.example.com\" or an IP address")]
    ServerName {
        /// As written.
        text: String,
    },
    /// Not a DNS name.
    #[error(
        "invalid xmpp_domain: {problem}; write the domain the server hosts, e.g. \"example.org\""
    )]
    XmppDomain {
        /// What is wrong with it.
        problem: AddressProblem,
    },
    /// Not `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {text:?}: use letters, digits and underscores, not starting with a digit")]
    LabelSyntax {
        /// As written.
        text: String,
    },
    /// Starts with `__`.
    #[error("invalid label name {text:?}: names starting with \"__\" are reserved by Prometheus")]
    LabelPrometheus {
        /// As written.
        text: String,
    },
    /// One of certwatch's own labels.
    #[error(
        "label name {text:?} is set by certwatch itself; choose another name, e.g. \"{text}_name\""
    )]
    LabelReserved {
        /// As written.
        text: String,
    },
    /// Not one of a keyword's values.
    #[error("invalid {what} {text:?}: expected one of {}", choices.join(", "))]
    Keyword {
        /// The setting.
        what: &'static str,
        /// As written.
        text: String,
        /// Every value accepted.
        choices: &'static [&'static str],
    },
}

/// What is wrong with an address or a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressProblem {
    /// `[v6]` without `:port`, or no closing bracket.
    #[error("an IPv6 address needs brackets and a port")]
    BracketsAndPort,
    /// Inside brackets, not IPv6.
    #[error("not an IPv6 address")]
    NotIpv6,
    /// No `:port`.
    #[error("the port is missing")]
    MissingPort,
    /// An IPv6 address without brackets.
    #[error("an IPv6 address must be written in brackets")]
    Ipv6WithoutBrackets,
    /// Port 0 or not a number.
    #[error("the port must be a number from 1 to 65535")]
    BadPort,
    /// Nothing before the colon.
    #[error("the host is empty")]
    EmptyHost,
    /// Not a DNS name.
    #[error("{host:?} is not a valid host name")]
    BadHostName {
        /// As written.
        host: String,
    },
}

/// A duration in Prometheus' syntax: `500ms`, `30s`, `5m`, `1h`, `7d`, `1w`, `1y`,
/// or several of them in decreasing order, as in `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(Duration);

impl PromDuration {
    /// The duration as a standard library value.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Wraps a standard library duration.
    pub const fn from_duration(d: Duration) -> Self {
        Self(d)
    }
}

impl FromStr for PromDuration {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const UNITS: [(&str, u64); 7] = [
            ("y", 365 * 86_400_000),
            ("w", 7 * 86_400_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        let hint = || ValueError::DurationSyntax { text: s.to_owned() };
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if s.is_empty() {
            return Err(hint());
        }
        let mut rest = s;
        let mut total_ms: u64 = 0;
        let mut last_unit = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(hint());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| hint())?;
            rest = &rest[digits..];
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            let unit = &rest[..letters];
            let position = UNITS
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(hint)?;
            if last_unit.is_some_and(|last| position <= last) {
                return Err(ValueError::DurationOrder { text: s.to_owned() });
            }
            last_unit = Some(position);
            rest = &rest[letters..];
            total_ms = number
                .checked_mul(UNITS[position].1)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(|| ValueError::DurationTooLarge { text: s.to_owned() })?;
        }
        Ok(Self(Duration::from_millis(total_ms)))
    }
}

deserialize_from_str!(PromDuration, "a string");

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// The host part of a target address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, resolved at every probe.
    Name(String),
    /// An IP address literal, probed as it is.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A target address: `host:port`, `ipv4:port` or `[ipv6]:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Name or IP literal.
    pub host: Host,
    /// TCP port.
    pub port: u16,
}

impl FromStr for Address {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = |problem: AddressProblem| ValueError::Address {
            text: s.to_owned(),
            problem,
        };
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (v6, port) = rest
                .split_once("]:")
                .ok_or_else(|| hint(AddressProblem::BracketsAndPort))?;
            let ip: Ipv6Addr = v6.parse().map_err(|_| hint(AddressProblem::NotIpv6))?;
            (Host::Ip(IpAddr::V6(ip)), port)
        } else {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| hint(AddressProblem::MissingPort))?;
            if host.contains(':') {
                return Err(hint(AddressProblem::Ipv6WithoutBrackets));
            }
            let host = match host.parse::<IpAddr>() {
                Ok(ip) => Host::Ip(ip),
                Err(_) => Host::Name(parse_dns_name(host).map_err(hint)?),
            };
            (host, port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| hint(AddressProblem::BadPort))?;
        Ok(Self { host, port })
    }
}

pub(super) fn parse_dns_name(host: &str) -> Result<String, AddressProblem> {
    if host.is_empty() {
        return Err(AddressProblem::EmptyHost);
    }
    let valid = host.len() <= 253
        && host.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(host.to_ascii_lowercase())
    } else {
        Err(AddressProblem::BadHostName {
            host: host.to_owned(),
        })
    }
}

deserialize_from_str!(Address, "a string");

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

/// The name sent as SNI and checked against the certificate: a DNS name or an IP.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsName(ServerName<'static>, String);

impl TlsName {
    /// The rustls form of the name.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.0
    }

    /// The name as text (a DNS name, or an IP address literal).
    pub fn as_str(&self) -> &str {
        &self.1
    }

    /// The name to verify for `host`.
    pub fn for_host(host: &Host) -> Result<Self, ValueError> {
        match host {
            Host::Ip(ip) => Ok(Self(ServerName::IpAddress((*ip).into()), ip.to_string())),
            Host::Name(name) => name.parse(),
        }
    }
}

impl FromStr for TlsName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim_end_matches('.').to_ascii_lowercase();
        ServerName::try_from(text.clone())
            .map(|name| Self(name, text))
            .map_err(|_| ValueError::ServerName { text: s.to_owned() })
    }
}

deserialize_from_str!(TlsName, "a string");

impl fmt::Display for TlsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.1)
    }
}

/// An XMPP domain (the `to` of the stream header): a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XmppDomain(String);

impl XmppDomain {
    /// The domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for XmppDomain {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_dns_name(s)
            .map(Self)
            .map_err(|problem| ValueError::XmppDomain { problem })
    }
}

deserialize_from_str!(XmppDomain, "a string");

/// Label names that certwatch sets itself and a user may not override.
pub const RESERVED_LABELS: [&str; 23] = [
    "target",
    "ip",
    "depth",
    "reason",
    "stage",
    "phase",
    "result",
    "version",
    "cipher",
    "subject_cn",
    "issuer_cn",
    "serial",
    "fingerprint_sha256",
    "dns_names",
    "key_algorithm",
    "key_bits",
    "signature_algorithm",
    "rustc",
    "job",
    "instance",
    "host",
    "path",
    "entry",
];

/// A user label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not reserved by Prometheus (`__`) or
/// by certwatch's own labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelName(String);

impl LabelName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LabelName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = s.bytes();
        let well_formed = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !well_formed {
            return Err(ValueError::LabelSyntax { text: s.to_owned() });
        }
        if s.starts_with("__") {
            return Err(ValueError::LabelPrometheus { text: s.to_owned() });
        }
        if RESERVED_LABELS.contains(&s) {
            return Err(ValueError::LabelReserved { text: s.to_owned() });
        }
        Ok(Self(s.to_owned()))
    }
}

deserialize_from_str!(LabelName, "a string");

/// Declares a closed set of keywords, parsed from and printed as their YAML names.
macro_rules! keyword_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword as written in the configuration.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(ValueError::Keyword {
                        what: $what,
                        text: s.to_owned(),
                        choices: &[$($text),+],
                    }),
                }
            }
        }

        deserialize_from_str!($name, $what);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

keyword_enum!(
    /// Which trust anchors a chain is verified against.
    Trust, "trust" {
        /// The Mozilla root program, bundled at build time.
        Webpki = "webpki",
        /// The operating system's store.
        System = "system",
        /// No anchors but `tls.ca_file`.
        None = "none",
    }
);

keyword_enum!(
    /// Which addresses of a name are probed.
    ResolveMode, "resolve" {
        /// Every A/AAAA address (at most 16).
        All = "all",
        /// The first address only.
        First = "first",
    }
);

keyword_enum!(
    /// Which address families are probed.
    IpFamily, "ip_family" {
        /// IPv4 and IPv6.
        Any = "any",
        /// IPv4 only.
        Ipv4 = "ipv4",
        /// IPv6 only.
        Ipv6 = "ipv6",
    }
);

keyword_enum!(
    /// How the connection is upgraded to TLS.
    StartTls, "starttls" {
        /// TLS from the first byte.
        None = "none",
        /// SMTP STARTTLS (RFC 3207).
        Smtp = "smtp",
        /// LMTP STARTTLS after LHLO (RFC 2033).
        Lmtp = "lmtp",
        /// IMAP STARTTLS (RFC 3501, RFC 9051).
        Imap = "imap",
        /// POP3 STLS (RFC 2595).
        Pop3 = "pop3",
        /// FTP AUTH TLS (RFC 4217).
        Ftp = "ftp",
        /// LDAP StartTLS extended operation (RFC 4511).
        Ldap = "ldap",
        /// PostgreSQL SSLRequest.
        Postgres = "postgres",
        /// MySQL / MariaDB SSL request.
        Mysql = "mysql",
        /// XMPP client-to-server stream (RFC 6120).
        Xmpp = "xmpp",
        /// XMPP server-to-server stream (RFC 6120).
        XmppServer = "xmpp_server",
        /// NNTP STARTTLS (RFC 4642).
        Nntp = "nntp",
        /// ManageSieve STARTTLS (RFC 5804).
        Sieve = "sieve",
    }
);

keyword_enum!(
    /// How a certificate file is read (`files:` sources).
    FileFormat, "format" {
        /// Decided by the content: PEM, DER, PKCS#12 or a kubeconfig.
        Auto = "auto",
        /// PEM: every CERTIFICATE block; other blocks (keys) are skipped unread.
        Pem = "pem",
        /// One DER certificate.
        Der = "der",
        /// A PKCS#12 (PFX) file; its certificates, never its keys.
        Pkcs12 = "pkcs12",
        /// A kubeconfig: the certificates of its clusters and users.
        Kubeconfig = "kubeconfig",
    }
);

keyword_enum!(
    /// Which certificate to ask a server for: one with two (RSA and ECDSA) presents
    /// the one that matches the signature schemes and suites offered.
    KeyType, "key_type" {
        /// Every scheme and suite.
        Any = "any",
        /// Only an RSA key's (RSA-PSS included).
        Rsa = "rsa",
        /// Only an EC key's (ECDSA, EdDSA).
        Ecdsa = "ecdsa",
    }
);

keyword_enum!(
    /// Whether the legacy second hello is sent when the modern handshake cannot reach
    /// a TLS 1.0-1.2 server.
    Legacy, "legacy" {
        /// Send it when the modern handshake fails on the version or finds nothing in
        /// common.
        On = "on",
        /// Never.
        Off = "off",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_prometheus_syntax() {
        let ms = |s: &str| s.parse::<PromDuration>().map(|d| d.get().as_millis());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("5m"), Ok(300_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("7d"), Ok(604_800_000));
        assert_eq!(ms("1w"), Ok(604_800_000));
        assert_eq!(ms("1y"), Ok(31_536_000_000));
        assert_eq!(ms("0"), Ok(0));
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "1.5h",
            "30m1h",
            "1m1m",
            "-5s",
            "5M",
            "99999999999999999999y",
        ] {
            assert!(ms(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        for s in ["5m", "1h", "7d", "500ms", "90s"] {
            assert_eq!(s.parse::<PromDuration>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn addresses_accept_names_ipv4_and_bracketed_ipv6() {
        let a: Address = "Mail.Example.com:587".parse().unwrap();
        assert_eq!(a.host, Host::Name("mail.example.com".into()));
        assert_eq!(a.port, 587);
        let a: Address = "192.0.2.7:443".parse().unwrap();
        assert_eq!(a.host, Host::Ip("192.0.2.7".parse().unwrap()));
        let a: Address = "[2001:db8::7]:443".parse().unwrap();
        assert_eq!(a.to_string(), "[2001:db8::7]:443");
        for bad in [
            "example.com",
            "example.com:0",
            "example.com:70000",
            "2001:db8::1:443",
            "[2001:db8::1]",
            ":443",
            "exa mple.com:443",
            "-a.example:1",
            "[::1]443",
        ] {
            assert!(bad.parse::<Address>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn label_names_reject_reserved_and_malformed() {
        assert!("team".parse::<LabelName>().is_ok());
        assert!("_x9".parse::<LabelName>().is_ok());
        for bad in ["", "9a", "a-b", "__name", "target", "ip", "depth"] {
            assert!(
                bad.parse::<LabelName>().is_err(),
                "{bad:?} must be rejected"
            );
        }
    }

    #[test]
    fn keywords_list_the_choices_when_wrong() {
        assert_eq!("smtp".parse::<StartTls>(), Ok(StartTls::Smtp));
        let err = "smpt".parse::<StartTls>().unwrap_err().to_string();
        assert!(err.contains("none, smtp, lmtp, imap"), "{err}");
    }

    #[test]
    fn xmpp_domains_are_dns_names() {
        assert_eq!(
            "Example.ORG".parse::<XmppDomain>().unwrap().as_str(),
            "example.org"
        );
        for bad in ["", "a b", "x'><evil", "a..b"] {
            assert!(bad.parse::<XmppDomain>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn server_names_accept_dns_names_and_ips() {
        assert_eq!(
            "Example.COM.".parse::<TlsName>().unwrap().to_string(),
            "example.com"
        );
        assert_eq!("::1".parse::<TlsName>().unwrap().to_string(), "::1");
        assert!("bad name".parse::<TlsName>().is_err());
    }
}
