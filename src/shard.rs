//! Sharding: which of the configured sources this process observes when several
//! processes share one configuration (`--shard INDEX/COUNT`, or `CERTWATCH_SHARD`).
//!
//! Each source goes to the shard whose weight for the source's name is the highest
//! (rendezvous, or highest-random-weight, hashing), so replicas need no coordinator and
//! agree from the name alone; a change of COUNT from N to N+1 moves only the sources the
//! new shard now wins, about 1/(N+1) of them, all to the new shard (and back, from
//! N+1 to N). The weight is stable across processes, platforms and versions:
//!
//! ```text
//! h        = FNV-1a-64(name as UTF-8 bytes)
//! weight_i = fmix64(h XOR fmix64(i + 0x9E3779B97F4A7C15))      for shard i = 0..COUNT
//! fmix64(x): x ^= x >> 33; x *= 0xFF51AFD7ED558CCD; x ^= x >> 33;
//!            x *= 0xC4CEB93FE1A85EC5; x ^= x >> 33              (wrapping, MurmurHash3)
//! ```
//!
//! and the lower index wins a tie. `INDEX` may be `hostname`: the ordinal at the end of
//! the host name of a StatefulSet pod (`certwatch-2` is 2), from gethostname(), else
//! `$HOSTNAME`. Which sources this is applied to is the app's choice (the configured
//! ones, not certwatch's own certificate); this module only decides ownership.

use std::fmt;
use std::str::FromStr;

/// The most shards accepted: each name is weighed once per shard.
pub const MAX_SHARDS: u32 = 1024;

/// This process's share: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a `--shard` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `INDEX/COUNT`.
    #[error("{given:?} is not INDEX/COUNT: write it like 0/3, or hostname/3 in a StatefulSet")]
    Syntax {
        /// The value given.
        given: String,
    },
    /// COUNT is not a number from 1 to [`MAX_SHARDS`].
    #[error("the shard count {given:?} is not a whole number from 1 to {MAX_SHARDS}")]
    Count {
        /// COUNT as given.
        given: String,
    },
    /// INDEX is neither a number nor `hostname`.
    #[error("the shard index {given:?} is neither a whole number nor `hostname`")]
    Index {
        /// INDEX as given.
        given: String,
    },
    /// INDEX is not below COUNT.
    #[error("the shard index {index} is not below the shard count {count} (indexes count from 0: 0/{count} to {last}/{count})", last = count - 1)]
    OutOfRange {
        /// INDEX.
        index: u32,
        /// COUNT.
        count: u32,
    },
    /// INDEX is `hostname` but no host name was found.
    #[error(
        "the shard index is `hostname`, but gethostname() gave nothing and $HOSTNAME is not set"
    )]
    NoHostname,
    /// INDEX is `hostname` but the host name does not end in `-ORDINAL`.
    #[error("the shard index is `hostname`, but the host name {host:?} does not end in -ORDINAL as a StatefulSet pod's does (like certwatch-2); give the index as a number instead")]
    NoOrdinal {
        /// The host name found.
        host: String,
    },
}

impl Shard {
    /// The whole: one shard that owns every source.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count {
                given: count.to_string(),
            });
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Parses `INDEX/COUNT`; an INDEX of `hostname` takes the ordinal of the host name
    /// that `hostname` gives.
    pub fn parse(
        text: &str,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax {
            given: text.to_owned(),
        };
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let (index, count) = (index.trim(), count.trim());
        if index.is_empty() || count.is_empty() {
            return Err(syntax());
        }
        let count_value = whole(count)
            .filter(|c| (1..=MAX_SHARDS).contains(c))
            .ok_or_else(|| ShardError::Count {
                given: count.to_owned(),
            })?;
        let index_value = if index.eq_ignore_ascii_case("hostname") {
            let host = hostname()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .ok_or(ShardError::NoHostname)?;
            ordinal(&host).ok_or(ShardError::NoOrdinal { host })?
        } else {
            whole(index).ok_or_else(|| ShardError::Index {
                given: index.to_owned(),
            })?
        };
        Shard::new(index_value, count_value)
    }

    /// This shard's index, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards share the configuration.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this shard observes the source named `name`.
    pub fn owns(&self, name: &str) -> bool {
        self.count == 1 || owner(name, self.count) == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// Parses `INDEX/COUNT`, asking the system for the host name when INDEX is
    /// `hostname`.
    fn from_str(text: &str) -> Result<Shard, ShardError> {
        Shard::parse(text, system_hostname)
    }
}

/// The shard of `count` that owns the source named `name`.
pub fn owner(name: &str, count: u32) -> u32 {
    let h = fnv1a(name.as_bytes());
    (0..count.max(1))
        // The highest weight wins; on a tie (never seen), the lower index.
        .max_by_key(|i| (weight(h, *i), std::cmp::Reverse(*i)))
        .unwrap_or(0)
}

/// The weight of a name (by its hash `h`) on shard `index`.
fn weight(h: u64, index: u32) -> u64 {
    fmix64(h ^ fmix64(u64::from(index).wrapping_add(0x9E37_79B9_7F4A_7C15)))
}

/// FNV-1a, 64 bits: stable everywhere, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// MurmurHash3's 64-bit finalizer: every input bit flips each output bit with
/// probability about one half.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B93F_E1A8_5EC5);
    x ^ (x >> 33)
}

/// A whole number of decimal digits only (no sign, no spaces inside).
fn whole(text: &str) -> Option<u32> {
    text.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse().ok())
        .flatten()
}

/// The ordinal of a StatefulSet pod's host name: the digits after the last `-` of its
/// first label (`certwatch-2.certwatch.monitoring.svc` is 2).
fn ordinal(host: &str) -> Option<u32> {
    let first = host.split('.').next()?;
    let (_, digits) = first.rsplit_once('-')?;
    if digits.is_empty() {
        return None;
    }
    whole(digits)
}

/// The host name: gethostname() (the kernel's, through uname), else `$HOSTNAME`.
pub fn system_hostname() -> Option<String> {
    #[cfg(unix)]
    {
        let uname = rustix::system::uname();
        let name = uname.nodename().to_string_lossy().trim().to_owned();
        if !name.is_empty() {
            return Some(name);
        }
    }
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Shard, ShardError> {
        Shard::parse(text, || Some("certwatch-2".to_owned()))
    }

    #[test]
    fn indexes_and_counts_are_whole_numbers_with_the_index_below_the_count() {
        assert_eq!(parse("0/1"), Ok(Shard::ALL));
        assert_eq!(parse("2/3"), Shard::new(2, 3));
        assert_eq!(parse(" 1 / 4 "), Shard::new(1, 4));
        assert_eq!(
            parse("3/3"),
            Err(ShardError::OutOfRange { index: 3, count: 3 })
        );
        for bad in ["", "3", "/3", "1/", "1/3/4", "a/b/c"] {
            assert!(
                matches!(
                    parse(bad),
                    Err(ShardError::Syntax { .. } | ShardError::Count { .. })
                ),
                "{bad:?}: {:?}",
                parse(bad)
            );
        }
        for bad in ["0/0", "0/-1", "0/+2", "0/1025", "0/99999999999", "0/x"] {
            assert!(
                matches!(parse(bad), Err(ShardError::Count { .. })),
                "{bad:?}"
            );
        }
        for bad in ["-1/3", "+1/3", "x/3", "1.0/3"] {
            assert!(
                matches!(parse(bad), Err(ShardError::Index { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(parse("0/1024").map(|s| s.count()), Ok(MAX_SHARDS));
        assert_eq!(parse("1/3").map(|s| s.to_string()).as_deref(), Ok("1/3"));
    }

    #[test]
    fn hostname_takes_the_ordinal_of_a_statefulset_pod() {
        let with = |host: Option<&str>, text: &str| {
            let host = host.map(str::to_owned);
            Shard::parse(text, move || host)
        };
        assert_eq!(with(Some("certwatch-2"), "hostname/3"), Shard::new(2, 3));
        assert_eq!(with(Some("certwatch-0"), "HOSTNAME/1"), Ok(Shard::ALL));
        assert_eq!(
            with(
                Some("cert-watch-11.certwatch.monitoring.svc"),
                "hostname/12"
            ),
            Shard::new(11, 12)
        );
        assert_eq!(
            with(Some("certwatch-3"), "hostname/3"),
            Err(ShardError::OutOfRange { index: 3, count: 3 })
        );
        for host in [
            "certwatch",
            "certwatch-",
            "certwatch-x",
            "web01",
            "certwatch-2a",
        ] {
            assert_eq!(
                with(Some(host), "hostname/3"),
                Err(ShardError::NoOrdinal {
                    host: host.to_owned()
                }),
                "{host}"
            );
        }
        assert_eq!(with(None, "hostname/3"), Err(ShardError::NoHostname));
        assert_eq!(with(Some("  "), "hostname/3"), Err(ShardError::NoHostname));
        // The count is checked first, and the host name is not asked for a number.
        assert!(matches!(
            Shard::parse("hostname/0", || panic!("not asked")),
            Err(ShardError::Count { .. })
        ));
        assert_eq!(
            Shard::parse("1/2", || panic!("not asked")),
            Shard::new(1, 2)
        );
    }

    #[test]
    fn the_weights_are_the_documented_formula() {
        // Fixed values: a change of the hash would silently move every target between
        // replicas running different versions.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fmix64(0), 0);
        let owners: Vec<u32> = ["a", "b", "example.com:443", "t-000001", "t-000002"]
            .iter()
            .map(|n| owner(n, 7))
            .collect();
        assert_eq!(owners, PINNED_OWNERS_OF_7);
    }

    /// `owner(name, 7)` of the names in `the_weights_are_the_documented_formula`,
    /// computed apart from this code by a transcription of the module's formula in
    /// Python.
    const PINNED_OWNERS_OF_7: [u32; 5] = [0, 4, 4, 0, 4];

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("host-{i}.example.com:443"))
            .collect()
    }

    #[test]
    fn every_name_has_exactly_one_owner_and_the_shares_are_even() {
        let names = names(30_000);
        for count in [1u32, 2, 3, 5, 16] {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut share = vec![0usize; count as usize];
            for name in &names {
                let owners: Vec<u32> = shards
                    .iter()
                    .filter(|s| s.owns(name))
                    .map(Shard::index)
                    .collect();
                assert_eq!(owners.len(), 1, "{name} on {count} shards: {owners:?}");
                share[owners[0] as usize] += 1;
            }
            // Each share is Binomial(30,000, 1/count): within 5 standard deviations.
            let p = 1.0 / f64::from(count);
            let mean = names.len() as f64 * p;
            let sd = (names.len() as f64 * p * (1.0 - p)).sqrt();
            for s in &share {
                assert!(
                    (*s as f64 - mean).abs() <= 5.0 * sd + 0.5,
                    "{count} shards: {share:?}"
                );
            }
        }
    }

    #[test]
    fn one_more_shard_moves_about_its_share_and_only_to_itself() {
        let names = names(30_000);
        for count in [1u32, 2, 3, 9] {
            let moved: Vec<(u32, u32)> = names
                .iter()
                .map(|n| (owner(n, count), owner(n, count + 1)))
                .filter(|(a, b)| a != b)
                .collect();
            assert!(
                moved.iter().all(|(_, to)| *to == count),
                "{count}: {moved:?}"
            );
            let p = 1.0 / f64::from(count + 1);
            let mean = names.len() as f64 * p;
            let sd = (names.len() as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (moved.len() as f64 - mean).abs() <= 5.0 * sd,
                "{count} -> {}: {} moved, expected {mean:.0}",
                count + 1,
                moved.len()
            );
        }
    }
}
