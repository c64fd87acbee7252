//! Which hosts and addresses one probe connects to: the target's own address, or the
//! hosts that an MX or SRV answer names, each with its addresses (or, through a
//! `socks5h` proxy, its name, which the proxy resolves).
//!
//! The answer is looked up again at every probe (`probe::dns` caches nothing), ordered
//! (MX: lowest preference first, then by name; SRV: lowest priority first, then
//! highest weight, name and port), stripped of repeated hosts, and cut to
//! [`MAX_HOSTS`]; each host's addresses are cut to [`resolve::MAX_ADDRESSES`]. What is
//! cut goes into the plan's [`Cut`], which the caller logs and exports. Connecting is
//! `probe`'s; `/probe` checks the plan against `probe.allow` before it connects.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::connect::Dest;
use super::dns::{Dns, MxRecord, SrvRecord};
use super::outcome::{Cut, DiscoveredHost, Failure, FailureKind, ResolveReason};
use super::resolve::{self, Names};
use crate::config::{Discover, Host, TargetSpec, TlsName};

/// The most hosts probed per discovered target.
pub const MAX_HOSTS: usize = 16;

/// The most left-out host names kept for the log.
pub const LOGGED_LEFT_OUT: usize = 8;

/// What one probe will connect to.
#[derive(Debug)]
pub struct Plan {
    /// The hosts, or why none was found (the MX or SRV lookup failed).
    pub hosts: Result<Vec<HostPlan>, Failure>,
    /// How long finding the hosts took (the MX or SRV lookup; zero without one).
    pub took: Duration,
    /// What the caps left out.
    pub cut: Cut,
}

/// One host of a plan.
#[derive(Debug)]
pub struct HostPlan {
    /// For a discovered target, the host's label and name to verify.
    pub host: Option<Arc<DiscoveredHost>>,
    /// The name or address connected to.
    pub name: Host,
    /// The port.
    pub port: u16,
    /// SNI and the name verified.
    pub server_name: TlsName,
    /// The resolve phase of this host: discovery and its own lookup.
    pub took: Duration,
    /// Where its connections go, or why it has none (its name did not resolve).
    pub dests: Result<Vec<Dest>, Failure>,
}

/// A host to resolve: its label (discovered only), name, port and name to verify.
type Wanted = (
    Option<Arc<DiscoveredHost>>,
    Host,
    u16,
    Result<TlsName, Failure>,
);

/// The plan of one probe of `spec`, every lookup done by `deadline`.
pub async fn plan(spec: &TargetSpec, deadline: Instant) -> Plan {
    let started = Instant::now();
    let needs_dns = spec.discover.is_some() || !spec.dns.servers.is_empty();
    let dns = match needs_dns.then(|| Dns::new(&spec.dns)).transpose() {
        Ok(dns) => dns,
        Err(e) => return failed(e.into(), started),
    };
    let names = match (&dns, spec.dns.servers.is_empty()) {
        (Some(dns), false) => Names::Dns(dns),
        _ => Names::System {
            timeout: spec.dns.timeout,
        },
    };
    let mut cut = Cut::default();
    let wanted: Vec<Wanted> = match (&spec.discover, &dns) {
        (None, _) => vec![(
            None,
            spec.address.host.clone(),
            spec.address.port,
            Ok(spec.server_name.clone()),
        )],
        (Some(discover), Some(dns)) => {
            let hosts = match discover {
                Discover::Mx { domain, port, .. } => dns
                    .mx(domain.as_str(), deadline)
                    .await
                    .map(|records| mx_hosts(records, *port)),
                Discover::Srv { name } => dns.srv(name.as_str(), deadline).await.map(srv_hosts),
            };
            let hosts = match hosts {
                Ok(hosts) => hosts,
                Err(e) => return failed(e.into(), started),
            };
            cut.hosts_named = Some(hosts.len());
            cut.hosts_left_out = hosts
                .iter()
                .skip(MAX_HOSTS)
                .take(LOGGED_LEFT_OUT)
                .map(|(host, port)| format!("{host}:{port}"))
                .collect();
            hosts
                .into_iter()
                .take(MAX_HOSTS)
                .map(|(name, port)| {
                    let server_name = match discover {
                        Discover::Mx {
                            server_name: Some(n),
                            ..
                        } => Ok(n.clone()),
                        Discover::Mx { .. } => name.parse::<TlsName>().map_err(|_| {
                            Failure::new(
                                FailureKind::Resolve(ResolveReason::Error),
                                format!(
                                    "the {} answer names {name:?}, which is not a host name",
                                    discover.record()
                                ),
                            )
                        }),
                        Discover::Srv { .. } => Ok(spec.server_name.clone()),
                    };
                    let host = Arc::new(DiscoveredHost {
                        label: format!("{name}:{port}"),
                        server_name: server_name
                            .as_ref()
                            .map_or_else(|_| name.clone(), |n| n.to_string()),
                    });
                    (Some(host), Host::Name(name), port, server_name)
                })
                .collect()
        }
        (Some(_), None) => unreachable!("a discovered target has a resolver"),
    };
    let took = started.elapsed();
    let locally = spec
        .proxy
        .as_ref()
        .is_none_or(|p| p.url.kind.resolves_locally());
    let lookups = wanted
        .into_iter()
        .map(|(host, name, port, server_name)| async move {
            let lookup_started = Instant::now();
            let dests = match (server_name.as_ref(), &name) {
                (Err(failure), _) => Err(failure.clone()),
                (Ok(_), Host::Ip(ip)) => Ok((vec![Dest::Ip(ip.to_owned())], None)),
                (Ok(_), Host::Name(n)) if !locally => Ok((vec![Dest::Name(n.clone())], None)),
                (Ok(_), Host::Name(n)) => {
                    resolve::resolve(&name, spec.ip_family, spec.resolve, names, deadline)
                        .await
                        .map(|resolved| {
                            let left_out =
                                (resolved.cut() > 0).then(|| (n.clone(), resolved.cut()));
                            let dests = resolved.addresses.into_iter().map(Dest::Ip).collect();
                            (dests, left_out)
                        })
                }
            };
            let plan = HostPlan {
                host,
                name,
                port,
                server_name: server_name.unwrap_or_else(|_| spec.server_name.clone()),
                took: took + lookup_started.elapsed(),
                dests: dests.as_ref().map(|(d, _)| d.clone()).map_err(Clone::clone),
            };
            let left_out = dests.ok().and_then(|(_, left_out)| left_out);
            (plan, left_out)
        });
    let mut hosts = Vec::new();
    for (host, left_out) in futures_util::future::join_all(lookups).await {
        if let Some((name, count)) = left_out {
            cut.addresses.push((host.host.clone(), name, count));
        }
        hosts.push(host);
    }
    Plan {
        hosts: Ok(hosts),
        took,
        cut,
    }
}

fn failed(failure: Failure, started: Instant) -> Plan {
    Plan {
        hosts: Err(failure),
        took: started.elapsed(),
        cut: Cut::default(),
    }
}

/// MX hosts in the order a sender tries them, each once, with `port`.
fn mx_hosts(mut records: Vec<MxRecord>, port: u16) -> Vec<(String, u16)> {
    records.sort_by(|a, b| (a.preference, &a.host).cmp(&(b.preference, &b.host)));
    let mut hosts: Vec<(String, u16)> = Vec::with_capacity(records.len());
    for record in records {
        if !hosts.iter().any(|(h, _)| *h == record.host) {
            hosts.push((record.host, port));
        }
    }
    hosts
}

/// SRV targets by priority, then highest weight, name and port, each once.
fn srv_hosts(mut records: Vec<SrvRecord>) -> Vec<(String, u16)> {
    records.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.weight), &a.host, a.port).cmp(&(
            b.priority,
            std::cmp::Reverse(b.weight),
            &b.host,
            b.port,
        ))
    });
    let mut hosts: Vec<(String, u16)> = Vec::with_capacity(records.len());
    for record in records {
        let key = (record.host, record.port);
        if !hosts.contains(&key) {
            hosts.push(key);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(preference: u16, host: &str) -> MxRecord {
        MxRecord {
            preference,
            host: host.into(),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, host: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            host: host.into(),
        }
    }

    #[test]
    fn mx_hosts_go_by_preference_then_name_each_once() {
        let hosts = mx_hosts(
            vec![
                mx(20, "b.test"),
                mx(10, "z.test"),
                mx(20, "a.test"),
                mx(30, "z.test"),
            ],
            25,
        );
        assert_eq!(
            hosts,
            [
                ("z.test".to_owned(), 25),
                ("a.test".to_owned(), 25),
                ("b.test".to_owned(), 25)
            ]
        );
    }

    #[test]
    fn srv_targets_go_by_priority_then_weight_name_and_port() {
        let hosts = srv_hosts(vec![
            srv(10, 5, 5222, "b.test"),
            srv(10, 60, 5222, "c.test"),
            srv(0, 0, 5223, "z.test"),
            srv(10, 5, 5222, "a.test"),
            srv(10, 5, 5269, "a.test"),
            srv(20, 5, 5222, "a.test"),
        ]);
        let names: Vec<String> = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
        assert_eq!(
            names,
            [
                "z.test:5223",
                "c.test:5222",
                "a.test:5222",
                "a.test:5269",
                "b.test:5222"
            ]
        );
    }
}
