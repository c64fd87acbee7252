//! Name resolution: the A and AAAA addresses of a name, filtered and capped.
//!
//! Names are asked of the operating system's resolver (getaddrinfo: the hosts file,
//! then DNS as `/etc/nsswitch.conf` says), or, when `dns.servers` is set, of those
//! servers through `probe::dns`. Either way the lookup ends by `dns.timeout` and the
//! probe's deadline. What is cut by [`MAX_ADDRESSES`] is counted, not hidden.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::dns::Dns;
use super::outcome::{Failure, FailureKind, Phase, ResolveReason};
use super::with_deadline;
use crate::config::{Host, IpFamily, ResolveMode};

/// The most addresses probed for one name.
pub const MAX_ADDRESSES: usize = 16;

/// Who answers address lookups.
#[derive(Debug, Clone, Copy)]
pub enum Names<'a> {
    /// The operating system's resolver, each lookup bounded by `timeout`.
    System {
        /// `dns.timeout`.
        timeout: Duration,
    },
    /// The servers of `dns.servers`.
    Dns(&'a Dns),
}

/// The addresses of a name that are probed, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// In the resolver's order, without duplicates, at most [`MAX_ADDRESSES`] (one with
    /// `resolve: first`).
    pub addresses: Vec<IpAddr>,
    /// The distinct addresses of the wanted family that the name resolved to: more than
    /// [`MAX_ADDRESSES`] means some were cut.
    pub found: usize,
}

impl Resolved {
    /// How many addresses the cap left out (not those `resolve: first` leaves).
    pub fn cut(&self) -> usize {
        self.found.saturating_sub(MAX_ADDRESSES)
    }
}

/// The addresses to probe for `host`, in the resolver's order, without duplicates.
pub async fn resolve(
    host: &Host,
    family: IpFamily,
    mode: ResolveMode,
    names: Names<'_>,
    deadline: Instant,
) -> Result<Resolved, Failure> {
    let found: Vec<IpAddr> = match (host, names) {
        (Host::Ip(ip), _) => vec![*ip],
        (Host::Name(name), Names::Dns(dns)) => dns.addresses(name, family, deadline).await?,
        (Host::Name(name), Names::System { timeout }) => {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            let until = deadline.min(Instant::now() + timeout);
            let addrs = with_deadline(Phase::Resolve, until, lookup)
                .await?
                .map_err(|e| classify(name, &e))?;
            addrs.map(|a| a.ip()).collect()
        }
    };
    let limit = match mode {
        ResolveMode::All => MAX_ADDRESSES,
        ResolveMode::First => 1,
    };
    let mut distinct: Vec<IpAddr> = Vec::new();
    for ip in found.into_iter().filter(|ip| family_allows(family, ip)) {
        if !distinct.contains(&ip) {
            distinct.push(ip);
        }
    }
    if distinct.is_empty() {
        return Err(Failure::new(
            FailureKind::Resolve(ResolveReason::NotFound),
            format!("{host} has no {} address", family_name(family)),
        ));
    }
    let found = distinct.len();
    distinct.truncate(limit);
    Ok(Resolved {
        addresses: distinct,
        found,
    })
}

fn family_allows(family: IpFamily, ip: &IpAddr) -> bool {
    match family {
        IpFamily::Any => true,
        IpFamily::Ipv4 => ip.is_ipv4(),
        IpFamily::Ipv6 => ip.is_ipv6(),
    }
}

fn family_name(family: IpFamily) -> &'static str {
    match family {
        IpFamily::Any => "IPv4 or IPv6",
        IpFamily::Ipv4 => "IPv4",
        IpFamily::Ipv6 => "IPv6",
    }
}

/// getaddrinfo reports failures only as text (`gai_strerror`); these are its wordings
/// for "no such name" and "no address for the name".
fn classify(name: &str, error: &io::Error) -> Failure {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    let not_found = [
        "not known",
        "no address associated",
        "nodename nor servname",
        "no such host",
        "not found",
    ];
    let reason = if not_found.iter().any(|w| lower.contains(w)) {
        ResolveReason::NotFound
    } else {
        ResolveReason::Error
    };
    Failure::new(
        FailureKind::Resolve(reason),
        format!("resolving {name}: {text}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: Names<'static> = Names::System {
        timeout: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn ip_literals_are_not_looked_up_but_filtered_by_family() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let v4 = Host::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(
            resolve(&v4, IpFamily::Any, ResolveMode::All, SYSTEM, deadline)
                .await
                .unwrap()
                .addresses,
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        let err = resolve(&v4, IpFamily::Ipv6, ResolveMode::All, SYSTEM, deadline)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::Resolve(ResolveReason::NotFound));
    }

    #[tokio::test]
    async fn localhost_resolves_from_the_hosts_file_and_respects_first() {
        // /etc/hosts answers for localhost: no query leaves the machine.
        let deadline = Instant::now() + Duration::from_secs(5);
        let host = Host::Name("localhost".into());
        let all = resolve(&host, IpFamily::Ipv4, ResolveMode::All, SYSTEM, deadline)
            .await
            .unwrap()
            .addresses;
        assert!(
            all.iter().all(IpAddr::is_loopback) && all.iter().all(IpAddr::is_ipv4),
            "{all:?}"
        );
        let first = resolve(&host, IpFamily::Any, ResolveMode::First, SYSTEM, deadline)
            .await
            .unwrap();
        assert_eq!(first.addresses.len(), 1);
        assert!(first.found >= 1 && first.cut() == 0, "{first:?}");
    }
}
