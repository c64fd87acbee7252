//! Name resolution: the A and AAAA addresses of a target, filtered and capped.

use std::io;
use std::net::IpAddr;

use tokio::time::Instant;

use super::outcome::{Failure, FailureKind, Phase, ResolveReason};
use super::with_deadline;
use crate::config::{Host, IpFamily, ResolveMode};

/// The most addresses probed for one name.
pub const MAX_ADDRESSES: usize = 16;

/// The addresses to probe for `host`, in the resolver's order, without duplicates.
pub async fn resolve(
    host: &Host,
    family: IpFamily,
    mode: ResolveMode,
    deadline: Instant,
) -> Result<Vec<IpAddr>, Failure> {
    let found: Vec<IpAddr> = match host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), 0));
            let addrs = with_deadline(Phase::Resolve, deadline, lookup)
                .await?
                .map_err(|e| classify(name, &e))?;
            addrs.map(|a| a.ip()).collect()
        }
    };
    let limit = match mode {
        ResolveMode::All => MAX_ADDRESSES,
        ResolveMode::First => 1,
    };
    let mut wanted: Vec<IpAddr> = Vec::with_capacity(found.len().min(limit));
    for ip in found.into_iter().filter(|ip| family_allows(family, ip)) {
        if !wanted.contains(&ip) && wanted.len() < limit {
            wanted.push(ip);
        }
    }
    if wanted.is_empty() {
        return Err(Failure::new(
            FailureKind::Resolve(ResolveReason::NotFound),
            format!("{host} has no {} address", family_name(family)),
        ));
    }
    Ok(wanted)
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
    use std::time::Duration;

    #[tokio::test]
    async fn ip_literals_are_not_looked_up_but_filtered_by_family() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let v4 = Host::Ip("127.0.0.1".parse().unwrap());
        assert_eq!(
            resolve(&v4, IpFamily::Any, ResolveMode::All, deadline)
                .await
                .unwrap(),
            vec![IpAddr::from([127, 0, 0, 1])]
        );
        let err = resolve(&v4, IpFamily::Ipv6, ResolveMode::All, deadline)
            .await
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::Resolve(ResolveReason::NotFound));
    }

    #[tokio::test]
    async fn localhost_resolves_from_the_hosts_file_and_respects_first() {
        // /etc/hosts answers for localhost: no query leaves the machine.
        let deadline = Instant::now() + Duration::from_secs(5);
        let host = Host::Name("localhost".into());
        let all = resolve(&host, IpFamily::Ipv4, ResolveMode::All, deadline)
            .await
            .unwrap();
        assert!(
            all.iter().all(IpAddr::is_loopback) && all.iter().all(IpAddr::is_ipv4),
            "{all:?}"
        );
        let first = resolve(&host, IpFamily::Any, ResolveMode::First, deadline)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
    }
}
