//! How an endpoint is reached: through a proxy, by DNS discovery (MX, SRV), with which
//! resolver.
//!
//! The single values are parsed as they are read, like those of `config::types`:
//! [`ProxySetting`] (`socks5://`, `socks5h://`, `http://` or `none`), [`DnsServer`],
//! [`MxDomain`] and [`SrvName`]. The resolved forms are plain data that a
//! [`TargetSpec`](super::TargetSpec) carries: [`Proxy`] (the URL and the password read
//! from `proxy_password_file`), [`DnsSettings`] (`dns.servers`, `dns.timeout`, and the
//! system resolver configuration as read at load) and [`Discover`]. Connecting,
//! resolving and discovering are `probe`'s.
//!
//! A proxy password is a [`Secret`]: it never prints (its `Debug` is redacted and it has
//! no `Display`), and the URL refuses one, so that no log, metric or error can show it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::types::{deserialize_from_str, parse_dns_name, Host, TlsName};
use crate::fileread::{self, ReadError};

/// The built-in `dns.timeout`: the longest one lookup may take (resolv.conf's default).
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// The most `dns.servers`.
pub const MAX_DNS_SERVERS: usize = 8;
/// The built-in port of `mx` targets.
pub const DEFAULT_MX_PORT: u16 = 25;
/// The largest `proxy_password_file` read.
pub const PASSWORD_FILE_LIMIT: u64 = 4096;
/// The longest SOCKS5 user name or password (RFC 1929: one length byte).
pub const MAX_SOCKS_CREDENTIAL: usize = 255;
/// Where the system resolver configuration is read from.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The largest resolver configuration read.
pub const RESOLV_CONF_LIMIT: u64 = 64 * 1024;

/// A value of this module that does not parse. serde_yaml places it at the value's
/// line and column; its text says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachValueError {
    /// Not `scheme://[user@]host:port`.
    #[error("invalid proxy {text:?}: {problem}; write socks5://host:port, socks5h://host:port or http://host:port (a user may go before the host, as in socks5h://monitor@proxy.example.com:1080), or none")]
    Proxy {
        /// As written.
        text: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A password in the proxy URL.
    #[error("the proxy URL {shown:?} holds a password: put the password in a file named by proxy_password_file (the URL shows in logs and errors, a password must not)")]
    ProxyPassword {
        /// The URL with the password cut out.
        shown: String,
    },
    /// Not an IP address with an optional port.
    #[error("invalid DNS server {text:?}: write an IP address, optionally with a port, e.g. \"192.0.2.53\", \"127.0.0.1:5353\" or \"[2001:db8::53]:53\" (a name would need a resolver to find the resolver)")]
    DnsServer {
        /// As written.
        text: String,
    },
    /// Not a domain name.
    #[error("invalid {what} {text:?}: {problem}")]
    Name {
        /// `mx` or `srv`.
        what: &'static str,
        /// As written.
        text: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

macro_rules! keyword {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The keyword as written.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }
    };
}

keyword!(
    /// How a proxy is spoken to.
    ProxyKind {
        /// SOCKS5; certwatch resolves the endpoint's name and sends the address.
        Socks5 = "socks5",
        /// SOCKS5; the proxy resolves the endpoint's name.
        Socks5h = "socks5h",
        /// HTTP CONNECT; certwatch resolves the endpoint's name and sends the address.
        Http = "http",
    }
);

impl ProxyKind {
    /// Whether certwatch resolves the endpoint's name itself (so `ip` is known).
    pub const fn resolves_locally(self) -> bool {
        match self {
            ProxyKind::Socks5 | ProxyKind::Http => true,
            ProxyKind::Socks5h => false,
        }
    }
}

/// A proxy URL: `socks5://`, `socks5h://` or `http://`, an optional user, a host and
/// a port. It holds no password (see [`ReachValueError::ProxyPassword`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProxyUrl {
    /// The protocol.
    pub kind: ProxyKind,
    /// The proxy's host.
    pub host: Host,
    /// The proxy's port.
    pub port: u16,
    /// The user, percent-decoded.
    pub user: Option<String>,
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.kind.as_str())?;
        if let Some(user) = &self.user {
            for b in user.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    write!(f, "{}", b as char)?;
                } else {
                    write!(f, "%{b:02X}")?;
                }
            }
            f.write_str("@")?;
        }
        match self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            ref host => write!(f, "{host}:{}", self.port),
        }
    }
}

/// The `proxy` setting: a URL, or `none` (no proxy, overriding an inherited one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProxySetting {
    /// Connect directly.
    None,
    /// Connect through this proxy.
    Url(ProxyUrl),
}

impl FromStr for ProxySetting {
    type Err = ReachValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(ProxySetting::None);
        }
        let bad = |problem| ReachValueError::Proxy {
            text: s.to_owned(),
            problem,
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("the scheme is missing"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "http" => ProxyKind::Http,
            "https" => return Err(bad("TLS to the proxy (https://) is not supported")),
            "socks4" | "socks4a" => return Err(bad("SOCKS4 is not supported")),
            _ => return Err(bad("unknown scheme")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path, query or fragment"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            None => (None, rest),
            Some((userinfo, hostport)) => {
                if let Some((user, _)) = userinfo.split_once(':') {
                    return Err(ReachValueError::ProxyPassword {
                        shown: format!("{scheme}://{user}:…@{hostport}"),
                    });
                }
                let user = percent_decode(userinfo)
                    .ok_or_else(|| bad("the user is not valid percent-encoded UTF-8"))?;
                if user.is_empty() {
                    return Err(bad("the user is empty"));
                }
                (Some(user), hostport)
            }
        };
        let address: super::Address = hostport
            .parse()
            .map_err(|_| bad("the host and port do not parse (host:port, [ipv6]:port)"))?;
        Ok(ProxySetting::Url(ProxyUrl {
            kind,
            host: address.host,
            port: address.port,
            user,
        }))
    }
}

deserialize_from_str!(ProxySetting, "a string");

/// `%XX` sequences decoded; `None` when one is malformed or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A DNS server: an IP address and a port (53 unless written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsServer(pub SocketAddr);

impl FromStr for DnsServer {
    type Err = ReachValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr = if let Ok(ip) = s.parse::<IpAddr>() {
            SocketAddr::new(ip, 53)
        } else {
            s.parse::<SocketAddr>()
                .map_err(|_| ReachValueError::DnsServer { text: s.to_owned() })?
        };
        if addr.port() == 0 {
            return Err(ReachValueError::DnsServer { text: s.to_owned() });
        }
        Ok(Self(addr))
    }
}

deserialize_from_str!(DnsServer, "a string");

impl fmt::Display for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The domain of an `mx` target: a DNS name, lowercased, without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxDomain(String);

impl MxDomain {
    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MxDomain {
    type Err = ReachValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        domain("mx", s).map(Self)
    }
}

deserialize_from_str!(MxDomain, "a string");

impl fmt::Display for MxDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn domain(what: &'static str, s: &str) -> Result<String, ReachValueError> {
    let bad = |problem| ReachValueError::Name {
        what,
        text: s.to_owned(),
        problem,
    };
    if s.parse::<IpAddr>().is_ok() {
        return Err(bad("an IP address has no DNS records: write a domain name"));
    }
    let name = parse_dns_name(s).map_err(|_| bad("not a valid domain name"))?;
    Ok(name.trim_end_matches('.').to_owned())
}

/// The name of an `srv` target, `_service._proto.domain`, lowercased, without a
/// trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SrvName(String);

impl SrvName {
    /// The whole name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain the service belongs to: the name without `_service._proto.`. It is the
    /// name a client of the service verifies (RFC 6125 6.2.1, RFC 7590, RFC 6186).
    pub fn domain(&self) -> &str {
        self.0
            .splitn(3, '.')
            .nth(2)
            .expect("checked when parsed: three labels at least")
    }
}

impl FromStr for SrvName {
    type Err = ReachValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = domain("srv", s)?;
        let labels: Vec<&str> = name.splitn(3, '.').collect();
        let well_formed = labels.len() == 3
            && labels[0].len() > 1
            && labels[0].starts_with('_')
            && labels[1].len() > 1
            && labels[1].starts_with('_');
        if !well_formed {
            return Err(ReachValueError::Name {
                what: "srv",
                text: s.to_owned(),
                problem: "write _service._proto.domain, e.g. _xmpp-client._tcp.example.com",
            });
        }
        Ok(Self(name))
    }
}

deserialize_from_str!(SrvName, "a string");

impl fmt::Display for SrvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret read from a file. It never prints: `Debug` shows `Secret(…)`, and there is
/// no `Display`; [`Secret::expose`] is for the one place that sends it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Box<str>);

impl Secret {
    /// A secret holding `text`.
    pub fn new(text: impl Into<Box<str>>) -> Self {
        Self(text.into())
    }

    /// The secret itself, to send to a proxy.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Reads a password file (at most [`PASSWORD_FILE_LIMIT`] bytes of UTF-8): the whole
/// file, with one trailing newline (`\n` or `\r\n`) removed. Blocking.
pub fn read_password(path: &Path) -> Result<Secret, ReadError> {
    let text = fileread::read_text(path, PASSWORD_FILE_LIMIT)?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(Secret::new(text))
}

/// A proxy as a target uses it: the URL and the password from `proxy_password_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// Where and how.
    pub url: ProxyUrl,
    /// The password, when a file names one.
    pub password: Option<Secret>,
}

/// How names are resolved, as loaded: plain data that `probe` builds its resolver from.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    /// `dns.servers`: when not empty, every name is asked of these servers (the hosts
    /// file is not read); when empty, address lookups go through the operating
    /// system's resolver and MX/SRV lookups to the servers of [`DnsSettings::system`].
    pub servers: Vec<SocketAddr>,
    /// `dns.timeout`: the longest one lookup may take.
    pub timeout: Duration,
    /// The system resolver configuration (`/etc/resolv.conf`) as read when the
    /// configuration loaded; `None` when `servers` is set (or when it was not read,
    /// see [`DnsSettings::default`]). A read error is kept and
    /// reported by the lookups that need it, not at load: a configuration without MX
    /// or SRV targets never needs it.
    pub system: Option<Result<Arc<str>, Arc<ReadError>>>,
}

impl PartialEq for DnsSettings {
    /// Equal when they would resolve alike: the same servers and timeout, and the same
    /// system configuration text (or both unreadable, for the same reason).
    fn eq(&self, other: &Self) -> bool {
        let system = match (&self.system, &other.system) {
            (None, None) => true,
            (Some(Ok(a)), Some(Ok(b))) => a == b,
            (Some(Err(a)), Some(Err(b))) => a.to_string() == b.to_string(),
            _ => false,
        };
        self.servers == other.servers && self.timeout == other.timeout && system
    }
}

impl Eq for DnsSettings {}

impl Default for DnsSettings {
    /// The system's resolver with the built-in timeout, its configuration not read:
    /// for probes that resolve nothing through it (an IP address, a name through
    /// the operating system's resolver).
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            timeout: DEFAULT_DNS_TIMEOUT,
            system: None,
        }
    }
}

impl DnsSettings {
    /// The settings for `servers` and `timeout`, reading the system resolver
    /// configuration when `servers` is empty. Blocking.
    pub fn load(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        let system = servers.is_empty().then(|| {
            fileread::read_text(Path::new(RESOLV_CONF), RESOLV_CONF_LIMIT)
                .map(Arc::from)
                .map_err(Arc::new)
        });
        Self {
            servers,
            timeout,
            system,
        }
    }
}

/// How a discovered target finds its hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discover {
    /// Every MX host of a domain, at one port.
    Mx {
        /// The domain.
        domain: MxDomain,
        /// The port probed on each host.
        port: u16,
        /// The name every host is verified for, when `server_name` is set; otherwise
        /// each host's own name (as DANE and MTA-STS check an MX host).
        server_name: Option<TlsName>,
    },
    /// Every target host and port of an SRV name; each is verified for the
    /// service's domain (or `server_name`).
    Srv {
        /// The SRV name.
        name: SrvName,
    },
}

impl Discover {
    /// `mx` or `srv`.
    pub fn record(&self) -> &'static str {
        match self {
            Discover::Mx { .. } => "MX",
            Discover::Srv { .. } => "SRV",
        }
    }

    /// The name looked up.
    pub fn name(&self) -> &str {
        match self {
            Discover::Mx { domain, .. } => domain.as_str(),
            Discover::Srv { name } => name.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> ProxyUrl {
        match s.parse::<ProxySetting>() {
            Ok(ProxySetting::Url(url)) => url,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn proxy_urls_take_a_scheme_an_optional_user_a_host_and_a_port() {
        let u = url("socks5h://monitor@Proxy.Example.com:1080");
        assert_eq!(u.kind, ProxyKind::Socks5h);
        assert_eq!(u.host, Host::Name("proxy.example.com".into()));
        assert_eq!(u.port, 1080);
        assert_eq!(u.user.as_deref(), Some("monitor"));
        assert_eq!(u.to_string(), "socks5h://monitor@proxy.example.com:1080");
        let u = url("http://[2001:db8::1]:3128/");
        assert_eq!(u.kind, ProxyKind::Http);
        assert_eq!(u.to_string(), "http://[2001:db8::1]:3128");
        let u = url("socks5://a%40b%20c@127.0.0.1:1080");
        assert_eq!(u.user.as_deref(), Some("a@b c"));
        assert_eq!(u.to_string(), "socks5://a%40b%20c@127.0.0.1:1080");
        assert_eq!("none".parse::<ProxySetting>(), Ok(ProxySetting::None));
        for bad in [
            "proxy:1080",
            "ftp://proxy:21",
            "https://proxy:443",
            "socks4://proxy:1080",
            "socks5://proxy",
            "socks5://proxy:0",
            "socks5://@proxy:1080",
            "http://proxy:3128/path",
            "http://proxy:3128?x",
            "socks5://%zz@proxy:1080",
            "socks5://[::1:1080",
        ] {
            assert!(bad.parse::<ProxySetting>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        let e = "socks5h://user:hunter2@proxy:1080"
            .parse::<ProxySetting>()
            .unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, ReachValueError::ProxyPassword { .. }));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("proxy_password_file"), "{text}");
    }

    #[test]
    fn dns_servers_are_ip_addresses_with_port_53_unless_written() {
        let s = |t: &str| t.parse::<DnsServer>().map(|s| s.0.to_string());
        assert_eq!(s("192.0.2.53").unwrap(), "192.0.2.53:53");
        assert_eq!(s("127.0.0.1:5353").unwrap(), "127.0.0.1:5353");
        assert_eq!(s("::1").unwrap(), "[::1]:53");
        assert_eq!(s("[2001:db8::53]:5353").unwrap(), "[2001:db8::53]:5353");
        for bad in ["dns.example.com", "127.0.0.1:0", "", "1.2.3.4:99999"] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mx_domains_and_srv_names_are_dns_names() {
        assert_eq!(
            "Example.COM.".parse::<MxDomain>().unwrap().as_str(),
            "example.com"
        );
        assert!("192.0.2.1".parse::<MxDomain>().is_err());
        assert!("a b".parse::<MxDomain>().is_err());
        let srv: SrvName = "_XMPP-client._tcp.Example.com.".parse().unwrap();
        assert_eq!(srv.as_str(), "_xmpp-client._tcp.example.com");
        assert_eq!(srv.domain(), "example.com");
        for bad in [
            "example.com",
            "_x.example.com",
            "_x._tcp",
            "x._tcp.example.com",
            "_._tcp.example.com",
        ] {
            assert!(bad.parse::<SrvName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_secret_never_prints_and_loses_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret\n\n", "s3cret\n"),
            ("s3cret", "s3cret"),
            (" spaced \n", " spaced "),
        ] {
            let path = dir.path().join("p");
            std::fs::write(&path, content).unwrap();
            let secret = read_password(&path).unwrap();
            assert_eq!(secret.expose(), expected);
            assert_eq!(format!("{secret:?}"), "Secret(…)");
        }
        let proxy = Proxy {
            url: url("http://u@p:1"),
            password: Some(Secret::new("hunter2")),
        };
        assert!(!format!("{proxy:?}").contains("hunter2"));
    }
}
