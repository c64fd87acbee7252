//! HTTP basic authentication against `basic_auth_users` (user name → bcrypt hash).
//!
//! [`Authenticator::check`] reads the `Authorization` header and answers with the
//! user or why it was denied. The user name is looked up in constant time (every
//! configured name is compared, by SHA-256 digest, without stopping at a match), and an
//! unknown user is checked against a dummy hash of the same cost, so the answer's
//! timing tells nothing about which names exist. bcrypt is deliberately slow (tens of
//! milliseconds at cost 10), so checks run one at a time on the blocking pool: a flood
//! of wrong passwords costs at most one core. Successful checks are remembered for
//! [`CACHE_TTL`], keyed by an HMAC (with a key made at start) of the user, the password
//! and the hash, so that a scraper does not pay bcrypt on every scrape and a changed
//! hash invalidates its entry; failures are never cached. Passwords are never logged
//! or kept beyond the check. Answering 401 and logging are `web::layer`'s.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::deserialize_from_str;

/// How long a successful check is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// The most remembered checks.
pub const CACHE_MAX: usize = 1024;
/// The `WWW-Authenticate` challenge sent with 401.
pub const CHALLENGE: &str = "Basic realm=\"certwatch\"";

/// A bcrypt hash from `basic_auth_users`, checked when the file is read.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    fn cost(&self) -> u32 {
        self.0
            .parse::<bcrypt::HashParts>()
            .map(|p| p.get_cost())
            .unwrap_or(bcrypt::DEFAULT_COST)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

impl FromStr for PasswordHash {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hint = "write a bcrypt hash, e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`";
        let parts: bcrypt::HashParts = s
            .parse()
            .map_err(|e| format!("not a bcrypt hash ({e}): {hint}"))?;
        if !(4..=31).contains(&parts.get_cost()) {
            return Err(format!(
                "bcrypt cost {} is out of range (4 to 31): {hint}",
                parts.get_cost()
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

deserialize_from_str!(PasswordHash, "a bcrypt hash");

/// The configured users.
#[derive(Debug, Default)]
pub struct Users {
    users: Vec<User>,
    /// Checked for unknown names, at the cost of the configured hashes.
    dummy: Option<PasswordHash>,
}

#[derive(Debug)]
struct User {
    name: String,
    digest: [u8; 32],
    hash: PasswordHash,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Users {
    /// The users of `basic_auth_users`.
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Self {
        let cost = users.values().map(PasswordHash::cost).max();
        let dummy = cost.and_then(|cost| {
            bcrypt::hash("certwatch: no such user", cost)
                .ok()
                .map(PasswordHash)
        });
        Self {
            users: users
                .into_iter()
                .map(|(name, hash)| User {
                    digest: digest(name.as_bytes()),
                    name,
                    hash,
                })
                .collect(),
            dummy,
        }
    }

    /// Whether authentication is off.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// How many users are configured.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// The user named `name`, compared with every configured name in constant time.
    fn find(&self, name: &[u8]) -> Option<&User> {
        let wanted = digest(name);
        let mut found = None;
        for user in &self.users {
            if bool::from(user.digest.ct_eq(&wanted)) {
                found = Some(user);
            }
        }
        found
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// Not `Basic` with base64 `user:password`.
    Malformed,
    /// No such user.
    UnknownUser(String),
    /// The password does not match.
    WrongPassword(String),
}

impl Denied {
    /// A fixed word for logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "no_credentials",
            Denied::Malformed => "malformed_credentials",
            Denied::UnknownUser(_) => "unknown_user",
            Denied::WrongPassword(_) => "wrong_password",
        }
    }

    /// The user name given, if any.
    pub fn user(&self) -> &str {
        match self {
            Denied::UnknownUser(u) | Denied::WrongPassword(u) => u,
            Denied::Missing | Denied::Malformed => "",
        }
    }
}

/// Checks credentials; shared by every request.
pub struct Authenticator {
    key: hmac::Key,
    cache: Mutex<HashMap<[u8; 32], Instant>>,
    bcrypt: Semaphore,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    /// A new authenticator with an empty cache and a random cache key.
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random generator works");
        Self {
            key,
            cache: Mutex::new(HashMap::new()),
            bcrypt: Semaphore::new(1),
        }
    }

    /// The user `authorization` authenticates among `users`, or why not.
    pub async fn check(
        &self,
        users: &Users,
        authorization: Option<&HeaderValue>,
    ) -> Result<String, Denied> {
        let header = authorization.ok_or(Denied::Missing)?;
        let (user, password) = parse_basic(header.as_bytes()).ok_or(Denied::Malformed)?;
        let shown = String::from_utf8_lossy(&user).into_owned();
        let found = users.find(&user);
        let Some(hash) = found.map(|u| &u.hash).or(users.dummy.as_ref()) else {
            return Err(Denied::UnknownUser(shown));
        };
        let key = self.cache_key(&user, &password, hash);
        let now = Instant::now();
        if found.is_some() && self.cached(&key, now) {
            return Ok(shown);
        }
        let matches = self.verify(password, hash.0.clone()).await;
        match (found, matches) {
            (Some(user), true) => {
                self.remember(key, Instant::now());
                Ok(user.name.clone())
            }
            (Some(_), false) => Err(Denied::WrongPassword(shown)),
            (None, _) => Err(Denied::UnknownUser(shown)),
        }
    }

    async fn verify(&self, password: Vec<u8>, hash: String) -> bool {
        // Never closed.
        let Ok(_turn) = self.bcrypt.acquire().await else {
            return false;
        };
        tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false)
    }

    fn cache_key(&self, user: &[u8], password: &[u8], hash: &PasswordHash) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [user, password, hash.0.as_bytes()] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let tag = context.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn cached(&self, key: &[u8; 32], now: Instant) -> bool {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(key).is_some_and(|expires| now < *expires)
    }

    fn remember(&self, key: [u8; 32], now: Instant) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, expires| now < *expires);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, now + CACHE_TTL);
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(pairs: &[(&str, &str)]) -> Users {
        Users::new(
            pairs
                .iter()
                .map(|(u, p)| {
                    (
                        (*u).to_owned(),
                        PasswordHash(bcrypt::hash(p, 4).expect("hash")),
                    )
                })
                .collect(),
        )
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[tokio::test]
    async fn right_wrong_unknown_missing_and_malformed_credentials() {
        let users = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        let auth = Authenticator::new();
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "s3cret"))).await,
            Ok("alice".into())
        );
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "hunter2"))).await,
            Err(Denied::WrongPassword("alice".into()))
        );
        assert_eq!(
            auth.check(&users, Some(&basic("carol", "s3cret"))).await,
            Err(Denied::UnknownUser("carol".into()))
        );
        assert_eq!(auth.check(&users, None).await, Err(Denied::Missing));
        for bad in ["Bearer abc", "Basic !!!", "Basic YWxpY2U="] {
            assert_eq!(
                auth.check(&users, Some(&HeaderValue::from_static(bad)))
                    .await,
                Err(Denied::Malformed),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_password_with_a_colon_and_a_lowercase_scheme_work() {
        let users = users(&[("alice", "a:b:c")]);
        let auth = Authenticator::new();
        let header = basic("alice", "a:b:c");
        let lower =
            HeaderValue::from_str(&header.to_str().unwrap().replace("Basic", "basic")).unwrap();
        assert_eq!(auth.check(&users, Some(&lower)).await, Ok("alice".into()));
    }

    #[tokio::test]
    async fn only_successes_are_cached_and_a_new_hash_invalidates_them() {
        let auth = Authenticator::new();
        let before = users(&[("alice", "old")]);
        assert!(auth
            .check(&before, Some(&basic("alice", "old")))
            .await
            .is_ok());
        assert_eq!(auth.cache.lock().unwrap().len(), 1);
        assert!(auth
            .check(&before, Some(&basic("alice", "bad")))
            .await
            .is_err());
        assert_eq!(
            auth.cache.lock().unwrap().len(),
            1,
            "failures are not cached"
        );
        let after = users(&[("alice", "new")]);
        assert_eq!(
            auth.check(&after, Some(&basic("alice", "old"))).await,
            Err(Denied::WrongPassword("alice".into())),
            "the cached success was for the old hash"
        );
    }

    #[test]
    fn hashes_are_validated_when_read() {
        assert!(
            "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
                .parse::<PasswordHash>()
                .is_ok()
        );
        assert!("plaintext".parse::<PasswordHash>().is_err());
        assert!(
            format!(
                "{:?}",
                "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
                    .parse::<PasswordHash>()
                    .unwrap()
            ) == "PasswordHash(..)"
        );
    }
}
