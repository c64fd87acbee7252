//! DNS lookups through hickory-resolver: MX and SRV always, A and AAAA when
//! `dns.servers` is set (otherwise `probe::resolve` asks the operating system).
//!
//! A [`Dns`] is built per probe from the target's plain [`DnsSettings`]: it asks the
//! configured servers, or those of the system configuration read with the
//! configuration, always for absolute names (no search list), never from the hosts
//! file, and caches nothing, so every probe sees the zone as it is now, whatever its
//! TTLs. The servers are asked in their order, one at a time, each for at most half of
//! `dns.timeout` (UDP, then TCP when the answer is truncated): a server that does not
//! answer, or answers with an error code (SERVFAIL, REFUSED ...), passes the question
//! to the next one, twice round the list; the first answer, or the first "no such
//! record", ends it. Every lookup ends by `dns.timeout` and by the probe's deadline,
//! whichever comes first; hickory follows at most 8 CNAMEs per lookup. Answers are
//! returned whole (a DNS message is at most 64 KiB): ordering and capping them is the
//! caller's (`probe::discover`). Failures are [`DnsError`]s, classified into the
//! `resolve` reasons.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
    ServerOrderingStrategy,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as Answered, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::time::Instant;

use super::outcome::{Failure, FailureKind, ResolveReason};
use crate::config::{DnsSettings, IpFamily};
use crate::fileread::ReadError;

/// How many times each server is asked, at most, in one lookup.
const ROUNDS: usize = 2;

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
        source: Box<NetError>,
    },
    /// The name does not make a DNS query name.
    #[error("{name:?} is not a name DNS can look up: {detail}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        detail: String,
    },
    /// hickory could not set up a resolver for the servers.
    #[error("cannot set up a DNS resolver for {server}: {source}")]
    Setup {
        /// The server.
        server: SocketAddr,
        /// hickory's error.
        source: Box<NetError>,
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
            | DnsError::Setup { .. }
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
    /// The servers, in the order they are asked.
    servers: Vec<Server>,
    /// `dns.timeout`.
    timeout: Duration,
    /// The longest one server is waited for in one lookup.
    per_try: Duration,
}

/// One server, and a hickory resolver that asks only it.
struct Server {
    address: SocketAddr,
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<SocketAddr> = self.servers.iter().map(|s| s.address).collect();
        f.debug_struct("Dns")
            .field("servers", &servers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Dns {
    /// A resolver for `settings`: its servers, or the system configuration's.
    pub fn new(settings: &DnsSettings) -> Result<Dns, DnsError> {
        let addresses = if settings.servers.is_empty() {
            system_servers(settings)?
        } else {
            settings.servers.clone()
        };
        // Half the bound per server: a silent first server leaves the second one the
        // other half, and a single server is asked twice (hickory also resends a
        // lost datagram within one try).
        let per_try = (settings.timeout / 2).max(Duration::from_millis(50));
        let servers = addresses
            .into_iter()
            .map(|address| {
                let resolver =
                    resolver_for(address, per_try).map_err(|source| DnsError::Setup {
                        server: address,
                        source: Box::new(source),
                    })?;
                Ok(Server { address, resolver })
            })
            .collect::<Result<Vec<_>, DnsError>>()?;
        Ok(Dns {
            servers,
            timeout: settings.timeout,
            per_try,
        })
    }

    /// The MX records of `domain`, in the order of the answer. A null MX is
    /// [`DnsError::NullMx`]; an empty answer is [`DnsError::NotFound`].
    pub async fn mx(&self, domain: &str, deadline: Instant) -> Result<Vec<MxRecord>, DnsError> {
        const RECORD: &str = "MX";
        let query = absolute(domain)?;
        let answer = self
            .ask(domain, &query, RecordType::MX, RECORD, deadline)
            .await?;
        let records: Vec<MxRecord> = answer
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    host: host_text(&mx.exchange),
                }),
                _ => None,
            })
            .collect();
        named_hosts(
            records,
            |r| &r.host,
            domain,
            RECORD,
            || DnsError::NullMx {
                domain: domain.to_owned(),
            },
        )
    }

    /// The SRV records of `name`, in the order of the answer. A lone `.` target is
    /// [`DnsError::NoService`]; an empty answer is [`DnsError::NotFound`].
    pub async fn srv(&self, name: &str, deadline: Instant) -> Result<Vec<SrvRecord>, DnsError> {
        const RECORD: &str = "SRV";
        let query = absolute(name)?;
        let answer = self
            .ask(name, &query, RecordType::SRV, RECORD, deadline)
            .await?;
        let records: Vec<SrvRecord> = answer
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvRecord {
                    priority: srv.priority,
                    weight: srv.weight,
                    port: srv.port,
                    host: host_text(&srv.target),
                }),
                _ => None,
            })
            .collect();
        named_hosts(
            records,
            |r| &r.host,
            name,
            RECORD,
            || DnsError::NoService {
                name: name.to_owned(),
            },
        )
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
            let answer = self.ask(name, &query, RecordType::A, "A", deadline).await?;
            Ok::<Vec<IpAddr>, DnsError>(
                answer
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .collect(),
            )
        };
        let v6 = async {
            let answer = self
                .ask(name, &query, RecordType::AAAA, "AAAA", deadline)
                .await?;
            Ok::<Vec<IpAddr>, DnsError>(
                answer
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                        _ => None,
                    })
                    .collect(),
            )
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

    /// Asks the servers in order for the `record_type` records of `query`, until
    /// `dns.timeout` or `deadline`, whichever is first. Each server is given at most
    /// half of `dns.timeout` per try, twice round the list; an answer, or a "no such record"
    /// (NXDOMAIN or NODATA), ends it; a timeout or an error goes to the next server.
    /// When every try failed, the most telling failure is returned: a server's error
    /// code before a failure to talk to one, before a timeout.
    async fn ask(
        &self,
        name: &str,
        query: &Name,
        record_type: RecordType,
        record: &'static str,
        deadline: Instant,
    ) -> Result<Lookup, DnsError> {
        let started = Instant::now();
        let until = deadline.min(started + self.timeout);
        let mut worst: Option<DnsError> = None;
        for server in self
            .servers
            .iter()
            .cycle()
            .take(self.servers.len() * ROUNDS)
        {
            let now = Instant::now();
            if now >= until {
                break;
            }
            let lookup = server.resolver.lookup(query.clone(), record_type);
            let error = match tokio::time::timeout_at(until.min(now + self.per_try), lookup).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(error)) => classify(name, record, error, started.elapsed()),
                Err(_) => DnsError::Timeout {
                    name: name.to_owned(),
                    record,
                    after: started.elapsed(),
                },
            };
            if error.reason() == ResolveReason::NotFound {
                return Err(error);
            }
            worst = Some(match worst {
                Some(worse) if telling(&worse) >= telling(&error) => worse,
                _ => error,
            });
        }
        Err(match worst {
            None | Some(DnsError::Timeout { .. }) => DnsError::Timeout {
                name: name.to_owned(),
                record,
                after: started.elapsed(),
            },
            Some(error) => error,
        })
    }
}

/// The records of `name` that name a host: [`DnsError::NotFound`] for an empty answer,
/// `none_named` for one whose records all name the root (a null MX, an SRV "no such
/// service").
fn named_hosts<R>(
    records: Vec<R>,
    host: impl Fn(&R) -> &str,
    name: &str,
    record: &'static str,
    none_named: impl FnOnce() -> DnsError,
) -> Result<Vec<R>, DnsError> {
    if records.is_empty() {
        return Err(DnsError::NotFound {
            name: name.to_owned(),
            record,
        });
    }
    let hosts: Vec<R> = records
        .into_iter()
        .filter(|r| !host(r).is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(none_named());
    }
    Ok(hosts)
}

/// The servers of the system configuration, in its order, each once.
fn system_servers(settings: &DnsSettings) -> Result<Vec<SocketAddr>, DnsError> {
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
    // hickory skips the lines it does not understand (with a warning in the log), as
    // the C library does; it fails when no `nameserver` line is left.
    let (config, _) =
        hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes()).map_err(|e| {
            DnsError::BadSystemConfig {
                detail: format!("is not usable: {e}"),
            }
        })?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for server in config.name_servers() {
        for connection in &server.connections {
            let address = SocketAddr::new(server.ip, connection.port);
            if !servers.contains(&address) {
                servers.push(address);
            }
        }
    }
    if servers.is_empty() {
        return Err(DnsError::BadSystemConfig {
            detail: "names no nameserver".into(),
        });
    }
    Ok(servers)
}

/// A hickory resolver that asks only `server` (UDP, then TCP for a truncated
/// answer), each question once for at most `timeout`, and keeps nothing.
fn resolver_for(server: SocketAddr, timeout: Duration) -> Result<TokioResolver, NetError> {
    let at_port = |mut connection: ConnectionConfig| {
        connection.port = server.port();
        connection
    };
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
        server.ip(),
        true,
        vec![
            at_port(ConnectionConfig::udp()),
            at_port(ConnectionConfig::tcp()),
        ],
    )]);
    let mut options = ResolverOpts::default();
    options.timeout = timeout;
    // No retry inside hickory: `Dns::ask` asks again, of the next server.
    options.attempts = 0;
    options.cache_size = 0;
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    options.use_hosts_file = ResolveHosts::Never;
    options.ndots = 0;
    options.num_concurrent_reqs = 1;
    options.server_ordering_strategy = ServerOrderingStrategy::UserProvidedOrder;
    options.edns0 = true;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
}

/// How much a failure says about the servers, for [`Dns::ask`] to keep the most
/// telling one: an error code a server answered, then a failure to talk to one (a
/// refused connection, a malformed answer ...), then silence.
fn telling(error: &DnsError) -> u8 {
    match error {
        DnsError::Refused { .. } => 3,
        DnsError::Failed { .. } => 2,
        DnsError::Timeout { .. } => 1,
        DnsError::NotFound { .. }
        | DnsError::NullMx { .. }
        | DnsError::NoService { .. }
        | DnsError::BadName { .. }
        | DnsError::Setup { .. }
        | DnsError::NoSystemConfig { .. }
        | DnsError::BadSystemConfig { .. } => 0,
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

/// hickory's failure of one try, `after` the lookup began.
fn classify(name: &str, record: &'static str, error: NetError, after: Duration) -> DnsError {
    let refused = |code| DnsError::Refused {
        name: name.to_owned(),
        record,
        code,
    };
    match &error {
        NetError::Dns(Answered::NoRecordsFound(NoRecords { response_code, .. })) => {
            match *response_code {
                ResponseCode::NXDomain | ResponseCode::NoError => DnsError::NotFound {
                    name: name.to_owned(),
                    record,
                },
                code => refused(code),
            }
        }
        NetError::Dns(Answered::ResponseCode(code)) => refused(*code),
        NetError::Timeout => DnsError::Timeout {
            name: name.to_owned(),
            record,
            after,
        },
        _ => DnsError::Failed {
            name: name.to_owned(),
            record,
            source: Box::new(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hickory_resolver::proto::op::Message;
    use hickory_resolver::proto::rr::rdata::MX;
    use hickory_resolver::proto::rr::Record;

    use super::*;

    /// What a test server answers to every question.
    #[derive(Clone, Copy)]
    enum Answer {
        /// This response code, no records.
        Code(ResponseCode),
        /// One MX record, preference 10, naming this host.
        Mx(&'static str),
    }

    /// A DNS server on a loopback UDP port that answers every question as `answer`
    /// says, and counts the questions. It stops with the test's runtime.
    async fn server(answer: Answer) -> (SocketAddr, Arc<AtomicUsize>) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let count = asked.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buffer).await {
                let Ok(question) = Message::from_vec(&buffer[..n]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut reply = Message::response(question.metadata.id, question.metadata.op_code);
                reply.metadata.recursion_desired = question.metadata.recursion_desired;
                reply.metadata.recursion_available = true;
                reply.add_queries(question.queries.clone());
                match answer {
                    Answer::Code(code) => reply.metadata.response_code = code,
                    Answer::Mx(host) => {
                        let owner = question.queries[0].name().clone();
                        let exchange = Name::from_ascii(host).unwrap();
                        reply.add_answer(Record::from_rdata(
                            owner,
                            60,
                            RData::MX(MX::new(10, exchange)),
                        ));
                    }
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), peer).await;
            }
        });
        (address, asked)
    }

    fn settings(servers: Vec<SocketAddr>, timeout: Duration) -> DnsSettings {
        DnsSettings {
            servers,
            timeout,
            system: None,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_silent_first_server_passes_the_question_to_the_next() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (answering, asked) = server(Answer::Mx("MX1.example.test.")).await;
        let timeout = Duration::from_millis(800);
        let dns = Dns::new(&settings(
            vec![silent.local_addr().unwrap(), answering],
            timeout,
        ))
        .unwrap();
        let started = Instant::now();
        let records = dns.mx("example.test", far()).await.unwrap();
        assert_eq!(
            records,
            vec![MxRecord {
                preference: 10,
                host: "mx1.example.test".into()
            }]
        );
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // The silent server had its half of the bound, not all of it.
        let took = started.elapsed();
        assert!(took >= timeout / 2 && took < timeout, "{took:?}");
    }

    #[tokio::test]
    async fn a_server_error_passes_the_question_on_and_no_such_name_ends_it() {
        let (failing, failing_asked) = server(Answer::Code(ResponseCode::ServFail)).await;
        let (answering, answering_asked) = server(Answer::Mx("mx1.example.test.")).await;
        let timeout = Duration::from_secs(5);
        let dns = Dns::new(&settings(vec![failing, answering], timeout)).unwrap();
        let records = dns.mx("example.test", far()).await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(failing_asked.load(Ordering::SeqCst), 1);
        assert_eq!(answering_asked.load(Ordering::SeqCst), 1);

        // NXDOMAIN is an answer: the next server is not asked.
        let (missing, missing_asked) = server(Answer::Code(ResponseCode::NXDomain)).await;
        let (answering, answering_asked) = server(Answer::Mx("mx1.example.test.")).await;
        let dns = Dns::new(&settings(vec![missing, answering], timeout)).unwrap();
        let e = dns.mx("example.test", far()).await.unwrap_err();
        assert!(matches!(e, DnsError::NotFound { .. }), "{e}");
        assert_eq!(e.reason(), ResolveReason::NotFound);
        assert_eq!(missing_asked.load(Ordering::SeqCst), 1);
        assert_eq!(answering_asked.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn servers_that_all_refuse_are_asked_twice_each_and_the_code_is_the_error() {
        let (first, first_asked) = server(Answer::Code(ResponseCode::Refused)).await;
        let (second, second_asked) = server(Answer::Code(ResponseCode::ServFail)).await;
        let dns = Dns::new(&settings(vec![first, second], Duration::from_secs(5))).unwrap();
        let started = Instant::now();
        let e = dns
            .addresses("www.example.test", IpFamily::Ipv4, far())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                DnsError::Refused {
                    code: ResponseCode::Refused,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.reason(), ResolveReason::Error);
        assert_eq!(first_asked.load(Ordering::SeqCst), ROUNDS);
        assert_eq!(second_asked.load(Ordering::SeqCst), ROUNDS);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered, not timed out"
        );
    }

    #[test]
    fn the_system_servers_are_its_nameservers_in_order_once_each() {
        let text = "# a comment\nnameserver 127.0.0.53\noptions edns0 trust-ad\n\
                    nameserver ::1\nnameserver 127.0.0.53\nsearch example.test\n";
        let settings = DnsSettings {
            servers: Vec::new(),
            timeout: Duration::from_secs(1),
            system: Some(Ok(Arc::from(text))),
        };
        let dns = Dns::new(&settings).unwrap();
        let servers: Vec<SocketAddr> = dns.servers.iter().map(|s| s.address).collect();
        assert_eq!(
            servers,
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }

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
