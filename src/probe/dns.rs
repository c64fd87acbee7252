//! DNS lookups through hickory-resolver: MX and SRV always, A and AAAA when
//! `dns.servers` is set (otherwise `probe::resolve` asks the operating system).
//!
//! A [`Dns`] is built per probe from the target's plain [`DnsSettings`]: it asks the
//! configured servers, or those of the system configuration read with the
//! configuration, always for absolute names (no search list), never from the hosts
//! file, and caches nothing, so every probe sees the zone as it is now, whatever its
//! TTLs. Every lookup ends by `dns.timeout` and by the probe's deadline, whichever
//! comes first; hickory follows at most 8 CNAMEs per lookup. Answers are returned
//! whole (a DNS message is at most 64 KiB): ordering and capping them is the
//! caller's (`probe::discover`). Failures are [`DnsError`]s, classified into the
//! `resolve` reasons.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts, ServerOrderingStrategy,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, TokioResolver};
use tokio::time::Instant;

use super::outcome::{Failure, FailureKind, ResolveReason};
use crate::config::{DnsSettings, IpFamily};
use crate::fileread::ReadError;

/// Why a lookup found nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN, or no record of the type (NODATA).
    #[error("{name} has no {record} record")]
    NotFound {
        /// The name asked.
        name: String,
        /// The record type.
        record: &'static str,
    },
    /// The domain says it accepts no mail (RFC 7505).
    #[error("{domain} has a null MX record: it accepts no mail")]
    NullMx {
        /// The domain.
        domain: String,
    },
    /// The SRV answer says the service is not offered (target `.`, RFC 2782).
    #[error("{name} says the service is not available here (SRV target \".\")")]
    NoService {
        /// The SRV name.
        name: String,
    },
    /// No answer in time.
    #[error("no answer for the {record} record of {name} within {}", crate::config::PromDuration::from_duration(*after))]
    Timeout {
        /// The name asked.
        name: String,
        /// The record type.
        record: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The server answered with an error code (SERVFAIL, REFUSED ...).
    #[error("the DNS server answered {code} for the {record} record of {name}")]
    Refused {
        /// The name asked.
        name: String,
        /// The record type.
        record: &'static str,
        /// The response code.
        code: ResponseCode,
    },
    /// Any other failure (no server reachable, a malformed answer, a CNAME loop ...).
    #[error("looking up the {record} record of {name}: {source}")]
    Failed {
        /// The name asked.
        name: String,
        /// The record type.
        record: &'static str,
        /// hickory's error.
        source: Box<ResolveError>,
    },
    /// The name does not make a DNS query name.
    #[error("{name:?} is not a name DNS can look up: {detail}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// No `dns.servers` and the system configuration could not be read when the
    /// configuration loaded.
    #[error("no DNS server to ask: dns.servers is not set and {source}")]
    NoSystemConfig {
        /// Why the system configuration was not read.
        source: Arc<ReadError>,
    },
    /// No `dns.servers` and the system configuration names no usable server.
    #[error(
        "no DNS server to ask: dns.servers is not set and {} {detail}",
        crate::config::reach::RESOLV_CONF
    )]
    BadSystemConfig {
        /// What is wrong with it.
        detail: String,
    },
}

impl DnsError {
    /// The `resolve` failure reason.
    pub fn reason(&self) -> ResolveReason {
        match self {
            DnsError::NotFound { .. } | DnsError::NullMx { .. } | DnsError::NoService { .. } => {
                ResolveReason::NotFound
            }
            DnsError::Timeout { .. } => ResolveReason::Timeout,
            DnsError::Refused { .. }
            | DnsError::Failed { .. }
            | DnsError::BadName { .. }
            | DnsError::NoSystemConfig { .. }
            | DnsError::BadSystemConfig { .. } => ResolveReason::Error,
        }
    }
}

impl From<DnsError> for Failure {
    fn from(error: DnsError) -> Self {
        Failure::new(FailureKind::Resolve(error.reason()), error.to_string())
    }
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail host, lowercased, without the trailing dot.
    pub host: String,
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Among equal priorities, higher gets more traffic.
    pub weight: u16,
    /// The port of the service on the host.
    pub port: u16,
    /// The host, lowercased, without the trailing dot.
    pub host: String,
}

/// A resolver for one probe.
pub struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.resolver.config().name_servers().len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Dns {
    /// A resolver for `settings`: its servers, or the system configuration's.
    pub fn new(settings: &DnsSettings) -> Result<Dns, DnsError> {
        let servers: Vec<std::net::SocketAddr> = if settings.servers.is_empty() {
            let text = match &settings.system {
                Some(Ok(text)) => text,
                Some(Err(source)) => {
                    return Err(DnsError::NoSystemConfig {
                        source: source.clone(),
                    })
                }
                None => {
                    return Err(DnsError::BadSystemConfig {
                        detail: "was not read".into(),
                    })
                }
            };
            let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes())
                .map_err(|e| DnsError::BadSystemConfig {
                    detail: format!("does not parse: {e}"),
                })?;
            let mut servers: Vec<_> = Vec::new();
            for server in config.name_servers() {
                if !servers.contains(&server.socket_addr) {
                    servers.push(server.socket_addr);
                }
            }
            if servers.is_empty() {
                return Err(DnsError::BadSystemConfig {
                    detail: "names no nameserver".into(),
                });
            }
            servers
        } else {
            settings.servers.clone()
        };
        let mut config = ResolverConfig::new();
        for server in servers {
            config.add_name_server(NameServerConfig::new(server, Protocol::Udp));
            config.add_name_server(NameServerConfig::new(server, Protocol::Tcp));
        }
        let mut options = ResolverOpts::default();
        // Two tries of half the bound each: a lost datagram is retried in time.
        options.timeout = (settings.timeout / 2).max(Duration::from_millis(50));
        options.attempts = 2;
        options.cache_size = 0;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        options.num_concurrent_reqs = 1;
        options.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
        options.try_tcp_on_error = true;
        options.edns0 = true;
        let resolver =
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(options)
                .build();
        Ok(Dns {
            resolver,
            timeout: settings.timeout,
        })
    }

    /// The MX records of `domain`, in the order of the answer. A null MX is
    /// [`DnsError::NullMx`]; an empty answer is [`DnsError::NotFound`].
    pub async fn mx(&self, domain: &str, deadline: Instant) -> Result<Vec<MxRecord>, DnsError> {
        const RECORD: &str = "MX";
        let query = absolute(domain)?;
        let answer = self
            .bounded(domain, RECORD, deadline, self.resolver.mx_lookup(query))
            .await?;
        let records: Vec<MxRecord> = answer
            .iter()
            .map(|mx| MxRecord {
                preference: mx.preference(),
                host: host_text(mx.exchange()),
            })
            .collect();
        let hosts: Vec<MxRecord> = records
            .iter()
            .filter(|r| !r.host.is_empty())
            .cloned()
            .collect();
        match (records.is_empty(), hosts.is_empty()) {
            (true, _) => Err(DnsError::NotFound {
                name: domain.to_owned(),
                record: RECORD,
            }),
            (false, true) => Err(DnsError::NullMx {
                domain: domain.to_owned(),
            }),
            (false, false) => Ok(hosts),
        }
    }

    /// The SRV records of `name`, in the order of the answer. A lone `.` target is
    /// [`DnsError::NoService`]; an empty answer is [`DnsError::NotFound`].
    pub async fn srv(&self, name: &str, deadline: Instant) -> Result<Vec<SrvRecord>, DnsError> {
        const RECORD: &str = "SRV";
        let query = absolute(name)?;
        let answer = self
            .bounded(name, RECORD, deadline, self.resolver.srv_lookup(query))
            .await?;
        let records: Vec<SrvRecord> = answer
            .iter()
            .map(|srv| SrvRecord {
                priority: srv.priority(),
                weight: srv.weight(),
                port: srv.port(),
                host: host_text(srv.target()),
            })
            .collect();
        let hosts: Vec<SrvRecord> = records
            .iter()
            .filter(|r| !r.host.is_empty())
            .cloned()
            .collect();
        match (records.is_empty(), hosts.is_empty()) {
            (true, _) => Err(DnsError::NotFound {
                name: name.to_owned(),
                record: RECORD,
            }),
            (false, true) => Err(DnsError::NoService {
                name: name.to_owned(),
            }),
            (false, false) => Ok(hosts),
        }
    }

    /// The addresses of `name` of `family`: A then AAAA records, in the order of each
    /// answer. Found in one family is enough; when both fail, the more telling error
    /// (a timeout or a server error before "not found") is returned.
    pub async fn addresses(
        &self,
        name: &str,
        family: IpFamily,
        deadline: Instant,
    ) -> Result<Vec<IpAddr>, DnsError> {
        let query = absolute(name)?;
        let v4 = async {
            let answer = self
                .bounded(
                    name,
                    "A",
                    deadline,
                    self.resolver.ipv4_lookup(query.clone()),
                )
                .await?;
            Ok::<Vec<IpAddr>, DnsError>(answer.iter().map(|a| IpAddr::V4(a.0)).collect())
        };
        let v6 = async {
            let answer = self
                .bounded(
                    name,
                    "AAAA",
                    deadline,
                    self.resolver.ipv6_lookup(query.clone()),
                )
                .await?;
            Ok::<Vec<IpAddr>, DnsError>(answer.iter().map(|a| IpAddr::V6(a.0)).collect())
        };
        let not_found = || DnsError::NotFound {
            name: name.to_owned(),
            record: match family {
                IpFamily::Any => "A or AAAA",
                IpFamily::Ipv4 => "A",
                IpFamily::Ipv6 => "AAAA",
            },
        };
        let found = match family {
            IpFamily::Ipv4 => v4.await?,
            IpFamily::Ipv6 => v6.await?,
            IpFamily::Any => match tokio::join!(v4, v6) {
                (Ok(mut a), Ok(aaaa)) => {
                    a.extend(aaaa);
                    a
                }
                (Ok(a), Err(e)) | (Err(e), Ok(a))
                    if !a.is_empty() || e.reason() == ResolveReason::NotFound =>
                {
                    a
                }
                (Ok(_), Err(e)) | (Err(e), Ok(_)) => return Err(e),
                (Err(a), Err(b)) => {
                    return Err(match (a.reason(), b.reason()) {
                        (ResolveReason::NotFound, ResolveReason::NotFound) => not_found(),
                        (ResolveReason::NotFound, _) => b,
                        _ => a,
                    })
                }
            },
        };
        if found.is_empty() {
            return Err(not_found());
        }
        Ok(found)
    }

    /// Awaits `lookup` until `dns.timeout` or `deadline`, whichever is first.
    async fn bounded<T>(
        &self,
        name: &str,
        record: &'static str,
        deadline: Instant,
        lookup: impl std::future::Future<Output = Result<T, ResolveError>>,
    ) -> Result<T, DnsError> {
        let started = Instant::now();
        let until = deadline.min(started + self.timeout);
        match tokio::time::timeout_at(until, lookup).await {
            Err(_) => Err(DnsError::Timeout {
                name: name.to_owned(),
                record,
                after: started.elapsed(),
            }),
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(classify(name, record, error)),
        }
    }
}

/// `name` as an absolute query name, so no search list applies.
fn absolute(name: &str) -> Result<Name, DnsError> {
    let text = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&text).map_err(|e| DnsError::BadName {
        name: name.to_owned(),
        detail: e.to_string(),
    })
}

/// A host name of an answer as the `host` label shows it: lowercased, without the
/// trailing dot; empty for the root (`.`).
fn host_text(name: &Name) -> String {
    let text = name.to_ascii().to_ascii_lowercase();
    text.trim_end_matches('.').to_owned()
}

fn classify(name: &str, record: &'static str, error: ResolveError) -> DnsError {
    if let Some(proto) = error.proto() {
        match proto.kind() {
            ProtoErrorKind::NoRecordsFound { response_code, .. } => {
                return match *response_code {
                    ResponseCode::NXDomain | ResponseCode::NoError => DnsError::NotFound {
                        name: name.to_owned(),
                        record,
                    },
                    code => DnsError::Refused {
                        name: name.to_owned(),
                        record,
                        code,
                    },
                };
            }
            ProtoErrorKind::Timeout => {
                return DnsError::Timeout {
                    name: name.to_owned(),
                    record,
                    after: Duration::ZERO,
                }
            }
            _ => {}
        }
    }
    DnsError::Failed {
        name: name.to_owned(),
        record,
        source: Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_absolute_and_answers_lose_the_root_dot() {
        assert_eq!(absolute("example.com").unwrap().to_ascii(), "example.com.");
        assert_eq!(absolute("Example.com.").unwrap().to_ascii(), "Example.com.");
        assert_eq!(
            host_text(&Name::from_ascii("MX1.Example.COM.").unwrap()),
            "mx1.example.com"
        );
        assert_eq!(host_text(&Name::root()), "");
    }

    #[test]
    fn a_missing_system_configuration_is_an_error_of_the_lookup_not_a_panic() {
        let settings = DnsSettings {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            system: Some(Ok(Arc::from("# no nameserver line\n"))),
        };
        let e = Dns::new(&settings).unwrap_err();
        assert!(matches!(e, DnsError::BadSystemConfig { .. }), "{e}");
        assert_eq!(e.reason(), ResolveReason::Error);
        let e = Dns::new(&DnsSettings::default()).unwrap_err();
        assert!(e.to_string().contains("was not read"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out_at_the_dns_timeout() {
        // A UDP socket that never answers, on loopback, and a TCP listener on the same
        // port that never accepts (connections wait in its backlog, unanswered).
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let _also_silent = std::net::TcpListener::bind(silent.local_addr().unwrap());
        let settings = DnsSettings {
            servers: vec![silent.local_addr().unwrap()],
            timeout: Duration::from_secs(2),
            system: None,
        };
        let dns = Dns::new(&settings).unwrap();
        let started = Instant::now();
        let e = dns
            .mx("example.test", started + Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(matches!(e, DnsError::Timeout { .. }), "{e}");
        assert_eq!(e.reason(), ResolveReason::Timeout);
        assert!(
            started.elapsed() <= Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // The probe's deadline, when earlier, ends it first.
        let started = Instant::now();
        let e = dns
            .addresses(
                "example.test",
                IpFamily::Any,
                started + Duration::from_millis(300),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, DnsError::Timeout { .. }), "{e}");
        assert!(started.elapsed() <= Duration::from_millis(300));
    }
}
