//! Who may use `GET /probe`, how often, and how many at once: `probe.allow` (403),
//! `probe.rate_limit` per client address (429 with `Retry-After`) and
//! `probe.max_in_flight` (503).
//!
//! Every limit is read from the running configuration at each request, so a reload
//! changes them at once: the in-flight cap is a counter compared with the current
//! `max_in_flight`, not a semaphore sized at start-up. The rate limit is a token bucket
//! per client, holding one second's worth of requests (at least one) and refilled at
//! the configured rate; clients are told apart by IPv4 address or IPv6 /64 (one host
//! usually has a whole /64). At most [`MAX_CLIENTS`] buckets are kept: when full, idle
//! buckets (full again, so forgetting them changes nothing) are dropped first, then the
//! least recently used. Time comes from the caller. Answering and logging are
//! `http`'s; this module only decides.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Address, Host, ProbeLimits};

/// The most clients whose rate is tracked at once.
pub const MAX_CLIENTS: usize = 4096;

/// How often at most one client's rate-limited requests are logged one by one; the
/// others are counted into the next logged one.
pub const RATE_LOG_EVERY: Duration = Duration::from_secs(10);

/// The `/probe` limits' shared state.
#[derive(Debug, Default)]
pub struct ProbeGate {
    buckets: Mutex<Buckets>,
    in_flight: Arc<AtomicUsize>,
}

/// Over the rate: when to retry, and whether to log this refusal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// When the client will have a request again.
    pub retry_after: Duration,
    /// `Some(n)` when this refusal should be logged, with the `n` refusals since the
    /// last logged one; `None` when it is only counted.
    pub log: Option<u64>,
}

impl Limited {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// A place among the `/probe` requests in flight; freed when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ProbeGate {
    /// Takes one request from `client`'s bucket at `per_second` (no limit when `None`).
    pub fn rate(
        &self,
        client: IpAddr,
        per_second: Option<f64>,
        now: Instant,
    ) -> Result<(), Limited> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(rate) = per_second else {
            buckets.clear(None);
            return Ok(());
        };
        if buckets.rate != Some(rate) {
            // A reload changed the rate: start every client afresh.
            buckets.clear(Some(rate));
        }
        buckets.take(client_key(client), now)
    }

    /// Whether `probe.allow` (when set) permits `address`.
    pub fn allowed(limits: &ProbeLimits, address: &Address) -> bool {
        limits
            .allow
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|rule| rule.permits(address)))
    }

    /// Whether `probe.allow` (when set) could permit `address` once its name is
    /// resolved: it permits the address as written, or the host is a name and a CIDR
    /// range allows its port. A name no rule could permit is refused before any
    /// lookup.
    pub fn may_allow(limits: &ProbeLimits, address: &Address) -> bool {
        Self::allowed(limits, address)
            || matches!(address.host, Host::Name(_))
                && limits
                    .allow
                    .as_ref()
                    .is_some_and(|rules| rules.iter().any(|rule| rule.is_cidr_for(address.port)))
    }

    /// Whether `probe.allow` (when set) permits connecting to `ip` for `host` at
    /// `port`: a glob matching the host, or a CIDR range holding the address that
    /// certwatch resolved. A name a proxy resolves (`ip` is `None`) needs a glob.
    pub fn allowed_at(limits: &ProbeLimits, host: &Host, port: u16, ip: Option<IpAddr>) -> bool {
        limits.allow.as_ref().is_none_or(|rules| {
            rules
                .iter()
                .any(|rule| rule.permits_resolved(host, port, ip))
        })
    }

    /// A place among at most `max` requests in flight, or `None` when all are taken.
    pub fn enter(&self, max: usize) -> Option<InFlight> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let place = InFlight(self.in_flight.clone());
        (before < max).then_some(place)
    }

    /// The `/probe` requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// How clients are told apart: IPv4 addresses as they are (IPv4-mapped IPv6 ones
/// included), IPv6 by /64 (one host usually has a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[derive(Debug, Default)]
struct Buckets {
    rate: Option<f64>,
    by_client: HashMap<IpAddr, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    refused: u64,
    logged_at: Option<Instant>,
}

impl Buckets {
    fn clear(&mut self, rate: Option<f64>) {
        self.rate = rate;
        self.by_client.clear();
    }

    fn capacity(&self) -> f64 {
        self.rate.unwrap_or(1.0).max(1.0)
    }

    fn take(&mut self, client: IpAddr, now: Instant) -> Result<(), Limited> {
        let rate = self.rate.unwrap_or(f64::INFINITY);
        let capacity = self.capacity();
        if !self.by_client.contains_key(&client) && self.by_client.len() >= MAX_CLIENTS {
            self.make_room(now);
        }
        let bucket = self.by_client.entry(client).or_insert(Bucket {
            tokens: capacity,
            updated: now,
            refused: 0,
            logged_at: None,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let retry_after = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
        bucket.refused += 1;
        let due = bucket
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= RATE_LOG_EVERY);
        let log = due.then(|| {
            bucket.logged_at = Some(now);
            std::mem::take(&mut bucket.refused) - 1
        });
        Err(Limited { retry_after, log })
    }

    /// Drops idle buckets; if none is idle, the least recently used one.
    fn make_room(&mut self, now: Instant) {
        let rate = self.rate.unwrap_or(f64::INFINITY);
        let capacity = self.capacity();
        self.by_client.retain(|_, b| {
            let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
            b.tokens + elapsed * rate < capacity
        });
        if self.by_client.len() >= MAX_CLIENTS {
            if let Some(oldest) = self
                .by_client
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(ip, _)| *ip)
            {
                self.by_client.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_gets_a_second_of_burst_then_the_rate() {
        let gate = ProbeGate::default();
        let t0 = Instant::now();
        let client = ip("192.0.2.1");
        for _ in 0..2 {
            assert!(gate.rate(client, Some(2.0), t0).is_ok());
        }
        let limited = gate.rate(client, Some(2.0), t0).unwrap_err();
        assert_eq!(limited.retry_after, Duration::from_millis(500));
        assert_eq!(limited.retry_after_seconds(), 1);
        assert_eq!(limited.log, Some(0), "the first refusal is logged");
        // Another client has its own bucket.
        assert!(gate.rate(ip("192.0.2.2"), Some(2.0), t0).is_ok());
        // Half a second later, one request again.
        let t1 = t0 + Duration::from_millis(500);
        assert!(gate.rate(client, Some(2.0), t1).is_ok());
        assert!(gate.rate(client, Some(2.0), t1).is_err());
    }

    #[test]
    fn slow_rates_answer_with_a_long_retry_after() {
        let gate = ProbeGate::default();
        let t0 = Instant::now();
        let client = ip("192.0.2.1");
        let per_minute = Some(1.0 / 60.0);
        assert!(gate.rate(client, per_minute, t0).is_ok());
        let limited = gate.rate(client, per_minute, t0).unwrap_err();
        assert_eq!(limited.retry_after_seconds(), 60);
    }

    #[test]
    fn refusals_are_logged_once_per_period_with_a_count() {
        let gate = ProbeGate::default();
        let t0 = Instant::now();
        let client = ip("192.0.2.1");
        assert!(gate.rate(client, Some(1.0), t0).is_ok());
        assert_eq!(gate.rate(client, Some(1.0), t0).unwrap_err().log, Some(0));
        for _ in 0..5 {
            assert_eq!(gate.rate(client, Some(1.0), t0).unwrap_err().log, None);
        }
        let later = t0 + RATE_LOG_EVERY;
        assert!(gate.rate(client, Some(1.0), later).is_ok());
        assert_eq!(
            gate.rate(client, Some(1.0), later).unwrap_err().log,
            Some(5)
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        assert_eq!(
            client_key(ip("2001:db8::1")),
            client_key(ip("2001:db8::ffff:1"))
        );
        assert_ne!(
            client_key(ip("2001:db8::1")),
            client_key(ip("2001:db8:0:1::1"))
        );
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn a_changed_rate_or_no_rate_starts_afresh() {
        let gate = ProbeGate::default();
        let t0 = Instant::now();
        let client = ip("192.0.2.1");
        assert!(gate.rate(client, Some(1.0), t0).is_ok());
        assert!(gate.rate(client, Some(1.0), t0).is_err());
        assert!(
            gate.rate(client, Some(2.0), t0).is_ok(),
            "new rate, new bucket"
        );
        assert!(gate.rate(client, None, t0).is_ok());
        assert!(gate.rate(client, None, t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_for_many_clients() {
        let gate = ProbeGate::default();
        let t0 = Instant::now();
        for i in 0..(MAX_CLIENTS as u32 * 3) {
            let client = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = gate.rate(client, Some(1.0), t0 + Duration::from_millis(u64::from(i)));
        }
        let buckets = gate.buckets.lock().unwrap();
        assert!(buckets.by_client.len() <= MAX_CLIENTS);
    }

    fn limits(allow: &[&str]) -> ProbeLimits {
        let yaml = format!(
            "probe:\n  allow: [{}]\n",
            allow
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        crate::config::Config::from_yaml(&yaml, "t.yml", std::path::Path::new("."))
            .expect("valid")
            .probe_limits
    }

    #[test]
    fn names_are_judged_by_globs_and_by_what_they_resolve_to() {
        let limits = limits(&["*.example.com:443", "10.1.0.0/16:*", "[2001:db8::/32]:25"]);
        let name = |n: &str| Host::Name(n.into());
        // A glob allows the name, whatever it resolves to.
        assert!(ProbeGate::allowed_at(
            &limits,
            &name("a.example.com"),
            443,
            Some(ip("192.0.2.1"))
        ));
        assert!(ProbeGate::allowed_at(
            &limits,
            &name("a.example.com"),
            443,
            None
        ));
        // Any other name only for addresses in an allowed range, at an allowed port.
        assert!(ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            25,
            Some(ip("10.1.2.3"))
        ));
        assert!(!ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            25,
            Some(ip("10.2.0.1"))
        ));
        assert!(!ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            443,
            Some(ip("127.0.0.1"))
        ));
        assert!(ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            25,
            Some(ip("2001:db8::25"))
        ));
        assert!(!ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            443,
            Some(ip("2001:db8::25"))
        ));
        // A name a proxy resolves cannot be placed in a range.
        assert!(!ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            25,
            None
        ));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(ProbeGate::allowed_at(
            &limits,
            &name("evil.test"),
            25,
            Some(ip("::ffff:10.1.0.9"))
        ));
        // Before resolving: a name may be allowed when a range allows its port.
        assert!(ProbeGate::may_allow(
            &limits,
            &"evil.test:25".parse().unwrap()
        ));
        assert!(!ProbeGate::may_allow(
            &self::limits(&["*.example.com:443", "10.1.0.0/16:25"]),
            &"evil.test:443".parse().unwrap()
        ));
        assert!(!ProbeGate::may_allow(
            &limits,
            &"10.9.9.9:443".parse().unwrap()
        ));
        // An empty list allows nothing; no list at all, everything.
        assert!(!ProbeGate::allowed_at(
            &self::limits(&[]),
            &name("x"),
            1,
            None
        ));
        let open = crate::config::Config::empty().probe_limits;
        assert!(ProbeGate::allowed_at(&open, &name("x"), 1, None));
    }

    #[test]
    fn in_flight_places_follow_the_current_maximum() {
        let gate = ProbeGate::default();
        let first = gate.enter(1).expect("a place");
        assert!(gate.enter(1).is_none(), "the only place is taken");
        assert_eq!(gate.in_flight(), 1, "a refused entry gives its place back");
        let second = gate.enter(2).expect("the maximum was raised by a reload");
        drop(first);
        drop(second);
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.enter(1).is_some());
    }
}
