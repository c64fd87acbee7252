//! HTTP basic authentication against `basic_auth_users` (user name → bcrypt hash), and
//! the bounds that keep a flood of wrong passwords from delaying anyone else.
//!
//! [`Authenticator::check`] reads the `Authorization` header and answers with the user
//! or why it was denied.
//!
//! **Timing.** The user name is looked up in constant time (every configured name is
//! compared, by SHA-256 digest, without stopping at a match), and an unknown user is
//! checked against a dummy hash of the same cost, so the answer's timing tells nothing
//! about which names exist. Whether a check may start (below) does not depend on the
//! lookup's result.
//!
//! **Cache.** A successful check is remembered, keyed by an HMAC (with a key made at
//! start) of the user, the password and the hash, so a changed hash invalidates its
//! entry. The entry's expiry slides: each use renews it for [`CACHE_IDLE`], so a scraper
//! that authenticated once never pays bcrypt again while it keeps scraping. At most
//! [`CACHE_MAX`] entries; when full, expired ones go first, then the least recently
//! used. Failures are not cached: a repeated wrong password costs a check like a new
//! one (though identical checks at the same moment share one, below), so that nothing
//! a client without the password sends can fill or evict the cache.
//!
//! **Bounded checks.** bcrypt is deliberately slow (tens of milliseconds at cost 10), so
//! at most a few checks run at once (half the available cores, 1 to [`MAX_SLOTS`]) on
//! the blocking pool, each holding its turn until bcrypt returns even if its client has
//! gone. A request waits for a turn only up to [`WAIT_DEADLINE`] and is otherwise
//! refused ([`Busy`]) without its credentials being checked: at once when
//! [`MAX_WAITING`] requests are already waiting, or when the checks ahead of it
//! (counted, and timed by a moving average of recent checks) could not let it start in
//! time; at once when its client (an IPv4 address or an IPv6 /64) already has its
//! share of checks waiting or running (half the turns, at least one: see
//! [`per_client`]), so that one flooding client can neither take every turn nor line up
//! ahead of others; and at the deadline when no turn came. Requests with the same
//! credentials at the same moment (a Prometheus scraping many `/probe` targets at once
//! after a restart) share one check. Every answer thus comes within [`WAIT_DEADLINE`]
//! plus one check.
//!
//! Passwords are never logged or kept beyond the check. Answering (401, or 429/503 with
//! `Retry-After` for [`Busy`]) and logging are `web::layer`'s; this module decides, and
//! says which busy refusals to log ([`Busy::log`], at most one per [`LOG_EVERY`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::HeaderValue;
use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout_at, Instant};

use crate::config::deserialize_from_str;
use crate::probe_gate::client_key;

/// How long a successful check is remembered after its last use.
pub const CACHE_IDLE: Duration = Duration::from_secs(600);
/// The most remembered checks.
pub const CACHE_MAX: usize = 1024;
/// The most bcrypt checks running at once, whatever the number of cores.
pub const MAX_SLOTS: usize = 4;
/// The longest a request waits for its check to start.
pub const WAIT_DEADLINE: Duration = Duration::from_secs(1);
/// The most requests waiting for a turn.
pub const MAX_WAITING: usize = 64;
/// The `Retry-After` of a [`Busy`] refusal.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often at most a [`Busy`] refusal is logged one by one; the others are counted
/// into the next logged one.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
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
    /// The credentials were not checked: authentication was busy.
    Busy(Busy),
}

impl Denied {
    /// A fixed word for logs.
    pub const fn reason(&self) -> &'static str {
        match self {
            Denied::Missing => "no_credentials",
            Denied::Malformed => "malformed_credentials",
            Denied::UnknownUser(_) => "unknown_user",
            Denied::WrongPassword(_) => "wrong_password",
            Denied::Busy(busy) => busy.reason.as_str(),
        }
    }

    /// The user name given, if any.
    pub fn user(&self) -> &str {
        match self {
            Denied::UnknownUser(u) | Denied::WrongPassword(u) => u,
            Denied::Busy(busy) => &busy.user,
            Denied::Missing | Denied::Malformed => "",
        }
    }
}

/// A request refused without checking its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Why.
    pub reason: BusyReason,
    /// The user name given.
    pub user: String,
    /// `Some(n)` when this refusal should be logged, with the `n` refusals since the
    /// last logged one; `None` when it is only counted.
    pub log: Option<u64>,
}

/// Why a check could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyReason {
    /// The client already has its share ([`per_client`]) of checks waiting or running.
    ClientLimit,
    /// The queue is full, or too long to start within [`WAIT_DEADLINE`].
    QueueFull,
    /// No turn came within [`WAIT_DEADLINE`].
    WaitDeadline,
}

impl BusyReason {
    /// A fixed word for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            BusyReason::ClientLimit => "client_busy",
            BusyReason::QueueFull => "busy",
            BusyReason::WaitDeadline => "wait_deadline",
        }
    }
}

/// The password check: `bcrypt::verify`, or a stand-in in tests.
type Verify = Box<dyn Fn(&[u8], &str) -> bool + Send + Sync>;

/// Checks credentials; shared by every request.
pub struct Authenticator {
    shared: Arc<Shared>,
}

struct Shared {
    key: hmac::Key,
    cache: Mutex<Cache>,
    /// One permit per check allowed to run at once.
    turns: Arc<Semaphore>,
    slots: usize,
    checks: Mutex<Checks>,
    busy_log: Mutex<LogLimit>,
    verify: Verify,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("slots", &self.shared.slots)
            .finish_non_exhaustive()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

/// Half the available cores, 1 to [`MAX_SLOTS`]: the rest stay free for probes and
/// scrapes during a flood.
fn default_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .clamp(1, MAX_SLOTS)
}

/// The most checks one client (IPv4 address or IPv6 /64) may have waiting or running
/// with `slots` turns: half of them, at least one. With one turn, a client's next check
/// can queue only after its last one ended, so a check from anyone else waits for at
/// most one of its.
pub fn per_client(slots: usize) -> usize {
    slots.div_ceil(2)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One request's check, as it is identified and bounded.
#[derive(Clone, Copy)]
struct Attempt {
    /// HMAC of user, password and hash.
    key: [u8; 32],
    /// Whether a success may be remembered (the user exists).
    cacheable: bool,
    /// [`client_key`] of the client.
    client: IpAddr,
    /// When the request stops waiting for its check to start.
    deadline: Instant,
}

impl Authenticator {
    /// A new authenticator with an empty cache, a random cache key, and a number of
    /// concurrent checks derived from the available cores.
    pub fn new() -> Self {
        Self::with(
            default_slots(),
            Box::new(|password, hash| bcrypt::verify(password, hash).unwrap_or(false)),
        )
    }

    fn with(slots: usize, verify: Verify) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random generator works");
        Self {
            shared: Arc::new(Shared {
                key,
                cache: Mutex::new(Cache::default()),
                turns: Arc::new(Semaphore::new(slots)),
                slots,
                checks: Mutex::new(Checks::default()),
                busy_log: Mutex::new(LogLimit::default()),
                verify,
            }),
        }
    }

    /// The user `authorization`, sent by `client`, authenticates among `users`, or why
    /// not.
    pub async fn check(
        &self,
        users: &Users,
        authorization: Option<&HeaderValue>,
        client: IpAddr,
    ) -> Result<String, Denied> {
        let header = authorization.ok_or(Denied::Missing)?;
        let (user, password) = parse_basic(header.as_bytes()).ok_or(Denied::Malformed)?;
        let shown = String::from_utf8_lossy(&user).into_owned();
        let found = users.find(&user);
        let Some(hash) = found.map(|u| &u.hash).or(users.dummy.as_ref()) else {
            return Err(Denied::UnknownUser(shown));
        };
        let attempt = Attempt {
            key: self.shared.cache_key(&user, &password, hash),
            cacheable: found.is_some(),
            client: client_key(client),
            deadline: Instant::now() + WAIT_DEADLINE,
        };
        match (found, self.settle(attempt, password, hash).await) {
            (Some(user), Ok(true)) => Ok(user.name.clone()),
            (Some(_), Ok(false)) => Err(Denied::WrongPassword(shown)),
            (None, Ok(_)) => Err(Denied::UnknownUser(shown)),
            (_, Err(reason)) => Err(Denied::Busy(Busy {
                reason,
                user: shown,
                log: lock(&self.shared.busy_log).refused(Instant::now()),
            })),
        }
    }

    /// Whether `password` matches `hash`: from the cache, from an identical check
    /// under way, or from a check of its own.
    async fn settle(
        &self,
        attempt: Attempt,
        password: Vec<u8>,
        hash: &PasswordHash,
    ) -> Result<bool, BusyReason> {
        loop {
            let now = Instant::now();
            if attempt.cacheable && lock(&self.shared.cache).hit(&attempt.key, now) {
                return Ok(true);
            }
            let remaining = attempt.deadline.saturating_duration_since(now);
            match self.shared.join_or_lead(attempt, remaining)? {
                Role::Follow(progress) => match follow(progress, attempt.deadline).await {
                    Followed::Done(matches) => return Ok(matches),
                    Followed::TimedOut => return Err(BusyReason::WaitDeadline),
                    // Given up before it started (its client left, or its deadline
                    // passed): check ourselves, within what is left of our deadline.
                    Followed::Abandoned => continue,
                },
                Role::Lead(ticket, progress) => {
                    return self.lead(ticket, progress, password, hash.0.clone()).await
                }
            }
        }
    }

    /// Waits for a turn until the deadline, then checks on the blocking pool. The turn
    /// and the ticket go with the check, so they are held until bcrypt returns even if
    /// this request is dropped.
    async fn lead(
        &self,
        mut ticket: Ticket,
        progress: watch::Sender<Progress>,
        password: Vec<u8>,
        hash: String,
    ) -> Result<bool, BusyReason> {
        let acquire = self.shared.turns.clone().acquire_owned();
        let Ok(Ok(turn)) = timeout_at(ticket.attempt.deadline, acquire).await else {
            // Timed out (the semaphore is never closed). Dropping the ticket and the
            // sender tells those following it to give up too.
            return Err(BusyReason::WaitDeadline);
        };
        ticket.start();
        progress.send_replace(Progress::Running);
        let shared = self.shared.clone();
        let check = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let matches = (shared.verify)(&password, &hash);
            let finished = Instant::now();
            lock(&shared.checks).timed(finished.saturating_duration_since(started));
            if matches && ticket.attempt.cacheable {
                lock(&shared.cache).remember(ticket.attempt.key, finished);
            }
            progress.send_replace(Progress::Done(matches));
            drop(ticket);
            drop(turn);
            matches
        });
        Ok(check.await.unwrap_or(false))
    }
}

impl Shared {
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

    /// Follows an identical check under way, or takes a place in the queue and leads a
    /// new one, or says why not.
    fn join_or_lead(
        self: &Arc<Self>,
        attempt: Attempt,
        remaining: Duration,
    ) -> Result<Role, BusyReason> {
        let mut checks = lock(&self.checks);
        if let Some(progress) = checks.in_flight.get(&attempt.key) {
            return Ok(Role::Follow(progress.clone()));
        }
        checks.admit(attempt.client, self.slots, remaining)?;
        let (sender, receiver) = watch::channel(Progress::Waiting);
        checks.in_flight.insert(attempt.key, receiver);
        let ticket = Ticket {
            shared: self.clone(),
            attempt,
            running: false,
        };
        Ok(Role::Lead(ticket, sender))
    }
}

/// How a check under way is doing, as its followers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Waiting,
    Running,
    Done(bool),
}

enum Role {
    /// An identical check is under way: wait for its result.
    Follow(watch::Receiver<Progress>),
    /// Check, holding this place in the queue.
    Lead(Ticket, watch::Sender<Progress>),
}

enum Followed {
    Done(bool),
    /// The check did not start before the deadline.
    TimedOut,
    /// The check was given up before it started.
    Abandoned,
}

/// Waits for an identical check: for its start until `deadline`, then for its result
/// (bounded by bcrypt, as a request's own check is).
async fn follow(mut progress: watch::Receiver<Progress>, deadline: Instant) -> Followed {
    let started = timeout_at(deadline, progress.wait_for(|p| *p != Progress::Waiting)).await;
    match started.map(|seen| seen.map(|p| *p)) {
        Err(_) => return Followed::TimedOut,
        Ok(Err(_)) => return Followed::Abandoned,
        Ok(Ok(Progress::Done(matches))) => return Followed::Done(matches),
        Ok(Ok(Progress::Waiting | Progress::Running)) => {}
    }
    let done = progress
        .wait_for(|p| matches!(p, Progress::Done(_)))
        .await
        .map(|p| *p);
    match done {
        Ok(Progress::Done(matches)) => Followed::Done(matches),
        // A check that panicked (or the runtime shutting down) matches nothing.
        Ok(Progress::Waiting | Progress::Running) | Err(_) => Followed::Done(false),
    }
}

/// The checks waiting and running, by client and by key.
#[derive(Default)]
struct Checks {
    waiting: usize,
    running: usize,
    by_client: HashMap<IpAddr, usize>,
    in_flight: HashMap<[u8; 32], watch::Receiver<Progress>>,
    /// A moving average of how long a check takes; `None` before the first.
    average: Option<Duration>,
}

impl Checks {
    /// Takes a place for `client` if it can start within `remaining`.
    fn admit(
        &mut self,
        client: IpAddr,
        slots: usize,
        remaining: Duration,
    ) -> Result<(), BusyReason> {
        if self.by_client.get(&client).copied().unwrap_or(0) >= per_client(slots) {
            return Err(BusyReason::ClientLimit);
        }
        if self.waiting >= MAX_WAITING || self.expected_wait(slots) > remaining {
            return Err(BusyReason::QueueFull);
        }
        self.waiting += 1;
        *self.by_client.entry(client).or_default() += 1;
        Ok(())
    }

    /// How long a check queued now would wait for a turn: the checks ahead of it,
    /// beyond the free turns, each taking the average, `slots` at a time.
    fn expected_wait(&self, slots: usize) -> Duration {
        let ahead = self.waiting + self.running;
        match self.average {
            Some(average) if ahead >= slots => {
                let rounds = u32::try_from(ahead + 1 - slots).unwrap_or(u32::MAX);
                average.saturating_mul(rounds) / u32::try_from(slots).unwrap_or(1)
            }
            _ => Duration::ZERO,
        }
    }

    /// Counts one check's duration into the average (weight 1/8).
    fn timed(&mut self, took: Duration) {
        self.average = Some(match self.average {
            None => took,
            Some(average) => (average.saturating_mul(7) + took) / 8,
        });
    }
}

/// A place among the checks, given back when dropped: while waiting, then while
/// running. Dropping it also ends the check's entry for followers.
struct Ticket {
    shared: Arc<Shared>,
    attempt: Attempt,
    running: bool,
}

impl Ticket {
    fn start(&mut self) {
        let mut checks = lock(&self.shared.checks);
        checks.waiting -= 1;
        checks.running += 1;
        self.running = true;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut checks = lock(&self.shared.checks);
        if self.running {
            checks.running -= 1;
        } else {
            checks.waiting -= 1;
        }
        if let Some(count) = checks.by_client.get_mut(&self.attempt.client) {
            *count -= 1;
            if *count == 0 {
                checks.by_client.remove(&self.attempt.client);
            }
        }
        checks.in_flight.remove(&self.attempt.key);
    }
}

/// Remembered successes: HMAC → when the entry expires unless used again.
#[derive(Default)]
struct Cache {
    expires: HashMap<[u8; 32], Instant>,
}

impl Cache {
    /// Whether `key` is remembered at `now`; renews it if so.
    fn hit(&mut self, key: &[u8; 32], now: Instant) -> bool {
        match self.expires.get_mut(key) {
            Some(expires) if now < *expires => {
                *expires = now + CACHE_IDLE;
                true
            }
            Some(_) => {
                self.expires.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remembers `key` from `now`, making room if full.
    fn remember(&mut self, key: [u8; 32], now: Instant) {
        if !self.expires.contains_key(&key) && self.expires.len() >= CACHE_MAX {
            self.expires.retain(|_, expires| now < *expires);
            if self.expires.len() >= CACHE_MAX {
                let least_recent = self
                    .expires
                    .iter()
                    .min_by_key(|(_, expires)| **expires)
                    .map(|(key, _)| *key);
                if let Some(least_recent) = least_recent {
                    self.expires.remove(&least_recent);
                }
            }
        }
        self.expires.insert(key, now + CACHE_IDLE);
    }
}

/// Which busy refusals are logged: one per [`LOG_EVERY`], counting the rest.
#[derive(Default)]
struct LogLimit {
    refused: u64,
    logged_at: Option<Instant>,
}

impl LogLimit {
    /// A refusal at `now`: `Some(n)` to log it with the `n` not logged since the last.
    fn refused(&mut self, now: Instant) -> Option<u64> {
        self.refused += 1;
        let due = self
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        due.then(|| {
            self.logged_at = Some(now);
            std::mem::take(&mut self.refused) - 1
        })
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const CLIENT: &str = "192.0.2.1";

    /// An authenticator with `slots` turns whose check accepts the password "right"
    /// (whatever the hash) and counts its calls.
    fn counting(slots: usize) -> (Arc<Authenticator>, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let auth = Authenticator::with(
            slots,
            Box::new(move |password, _hash| {
                counted.fetch_add(1, Ordering::SeqCst);
                password == b"right"
            }),
        );
        (Arc::new(auth), calls)
    }

    /// Takes every turn, as running checks would.
    async fn hold_turns(auth: &Authenticator) -> tokio::sync::OwnedSemaphorePermit {
        let slots = u32::try_from(auth.shared.slots).unwrap();
        auth.shared
            .turns
            .clone()
            .acquire_many_owned(slots)
            .await
            .unwrap()
    }

    fn busy(reason: BusyReason, user: &str, log: Option<u64>) -> Result<String, Denied> {
        Err(Denied::Busy(Busy {
            reason,
            user: user.into(),
            log,
        }))
    }

    /// Nothing is left waiting, running, counted or in flight.
    fn assert_idle(auth: &Authenticator) {
        let checks = lock(&auth.shared.checks);
        assert_eq!((checks.waiting, checks.running), (0, 0));
        assert!(checks.by_client.is_empty());
        assert!(checks.in_flight.is_empty());
        assert_eq!(auth.shared.turns.available_permits(), auth.shared.slots);
    }

    /// Lets spawned checks run until each has queued.
    async fn until_waiting(auth: &Authenticator, n: usize) {
        while lock(&auth.shared.checks).waiting < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn right_wrong_unknown_missing_and_malformed_credentials() {
        let users = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        let auth = Authenticator::new();
        let client = ip(CLIENT);
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "s3cret")), client)
                .await,
            Ok("alice".into())
        );
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "hunter2")), client)
                .await,
            Err(Denied::WrongPassword("alice".into()))
        );
        assert_eq!(
            auth.check(&users, Some(&basic("carol", "s3cret")), client)
                .await,
            Err(Denied::UnknownUser("carol".into()))
        );
        assert_eq!(auth.check(&users, None, client).await, Err(Denied::Missing));
        for bad in ["Bearer abc", "Basic !!!", "Basic YWxpY2U="] {
            assert_eq!(
                auth.check(&users, Some(&HeaderValue::from_static(bad)), client)
                    .await,
                Err(Denied::Malformed),
                "{bad}"
            );
        }
        assert_idle(&auth);
    }

    #[tokio::test]
    async fn a_password_with_a_colon_and_a_lowercase_scheme_work() {
        let users = users(&[("alice", "a:b:c")]);
        let auth = Authenticator::new();
        let header = basic("alice", "a:b:c");
        let lower =
            HeaderValue::from_str(&header.to_str().unwrap().replace("Basic", "basic")).unwrap();
        assert_eq!(
            auth.check(&users, Some(&lower), ip(CLIENT)).await,
            Ok("alice".into())
        );
    }

    #[tokio::test]
    async fn only_successes_are_cached_and_a_new_hash_invalidates_them() {
        let auth = Authenticator::new();
        let client = ip(CLIENT);
        let before = users(&[("alice", "old")]);
        assert!(auth
            .check(&before, Some(&basic("alice", "old")), client)
            .await
            .is_ok());
        assert_eq!(lock(&auth.shared.cache).expires.len(), 1);
        assert!(auth
            .check(&before, Some(&basic("alice", "bad")), client)
            .await
            .is_err());
        assert_eq!(
            lock(&auth.shared.cache).expires.len(),
            1,
            "failures are not cached"
        );
        let after = users(&[("alice", "new")]);
        assert_eq!(
            auth.check(&after, Some(&basic("alice", "old")), client)
                .await,
            Err(Denied::WrongPassword("alice".into())),
            "the cached success was for the old hash"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_success_is_renewed_on_use_and_expires_when_idle() {
        let (auth, calls) = counting(1);
        let users = users(&[("alice", "unused")]);
        let right = basic("alice", "right");
        let client = ip(CLIENT);
        assert_eq!(
            auth.check(&users, Some(&right), client).await,
            Ok("alice".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // With every turn taken, only the cache can answer at once.
        let held = hold_turns(&auth).await;
        for _ in 0..3 {
            tokio::time::advance(CACHE_IDLE - Duration::from_secs(1)).await;
            let start = Instant::now();
            assert_eq!(
                auth.check(&users, Some(&right), client).await,
                Ok("alice".into()),
                "each use renews the entry"
            );
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "bcrypt was paid once");
        tokio::time::advance(CACHE_IDLE).await;
        let start = Instant::now();
        assert_eq!(
            auth.check(&users, Some(&right), client).await,
            busy(BusyReason::WaitDeadline, "alice", Some(0)),
            "an idle entry expired: the check needs a turn"
        );
        assert_eq!(start.elapsed(), WAIT_DEADLINE);
        drop(held);
        assert_eq!(
            auth.check(&users, Some(&right), client).await,
            Ok("alice".into())
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_idle(&auth);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_cannot_start_before_the_deadline_is_refused_at_the_deadline() {
        let (auth, calls) = counting(1);
        let users = Arc::new(users(&[("alice", "unused")]));
        let held = hold_turns(&auth).await;
        let start = Instant::now();
        // Two requests with the same credentials share one place in the queue; an
        // unknown user queues like a known one.
        let mut waiting = Vec::new();
        for (user, client) in [
            ("alice", CLIENT),
            ("alice", "192.0.2.2"),
            ("carol", "192.0.2.3"),
        ] {
            let (auth, users) = (auth.clone(), users.clone());
            waiting.push(tokio::spawn(async move {
                let header = basic(user, "right");
                let denied = auth.check(&users, Some(&header), ip(client)).await;
                (denied.unwrap_err().reason(), start.elapsed())
            }));
        }
        until_waiting(&auth, 2).await;
        assert_eq!(lock(&auth.shared.checks).in_flight.len(), 2);
        for request in waiting {
            assert_eq!(
                request.await.unwrap(),
                ("wait_deadline", WAIT_DEADLINE),
                "refused at the deadline, not before or after"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        drop(held);
        assert_idle(&auth);
    }

    #[tokio::test(start_paused = true)]
    async fn each_client_and_the_queue_are_bounded_and_refused_at_once() {
        let (auth, _) = counting(4);
        let per_client = per_client(4);
        assert_eq!(per_client, 2);
        let users = Arc::new(users(&[("alice", "unused")]));
        let held = hold_turns(&auth).await;
        let start = Instant::now();
        let spawn = |client: String, password: String| {
            let (auth, users) = (auth.clone(), users.clone());
            tokio::spawn(async move {
                let header = basic("alice", &password);
                auth.check(&users, Some(&header), ip(&client)).await
            })
        };
        // One IPv6 /64 is one client.
        let mut queued = Vec::new();
        for i in 0..per_client {
            queued.push(spawn(format!("2001:db8::{i}"), format!("guess-{i}")));
        }
        until_waiting(&auth, per_client).await;
        let header = basic("alice", "one-more");
        assert_eq!(
            auth.check(&users, Some(&header), ip("2001:db8::ffff"))
                .await,
            busy(BusyReason::ClientLimit, "alice", Some(0))
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "refused at once");
        // Other clients fill the queue.
        for i in per_client..MAX_WAITING {
            queued.push(spawn(format!("198.51.100.{i}"), format!("guess-{i}")));
        }
        until_waiting(&auth, MAX_WAITING).await;
        assert_eq!(
            auth.check(&users, Some(&header), ip("203.0.113.1")).await,
            busy(BusyReason::QueueFull, "alice", None),
            "the second refusal within LOG_EVERY is only counted"
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "refused at once");
        drop(held);
        for request in queued {
            assert_eq!(
                request.await.unwrap(),
                Err(Denied::WrongPassword("alice".into())),
                "a turn came in time"
            );
        }
        assert_idle(&auth);
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_could_not_start_in_time_is_refused_at_once() {
        let (auth, _) = counting(1);
        let users = Arc::new(users(&[("alice", "unused")]));
        lock(&auth.shared.checks).average = Some(Duration::from_millis(300));
        let held = hold_turns(&auth).await;
        let mut queued = Vec::new();
        // Ahead of the n-th: n-1 checks of 300 ms; the fifth would start after 1.2 s.
        for i in 0..4 {
            let (them, users) = (auth.clone(), users.clone());
            queued.push(tokio::spawn(async move {
                let header = basic("alice", &format!("guess-{i}"));
                them.check(&users, Some(&header), ip(&format!("192.0.2.{i}")))
                    .await
            }));
            until_waiting(&auth, i + 1).await;
        }
        let start = Instant::now();
        let denied = auth
            .check(&users, Some(&basic("alice", "guess-4")), ip("192.0.2.4"))
            .await;
        assert_eq!(denied.unwrap_err().reason(), "busy");
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(held);
        for request in queued {
            assert!(request.await.unwrap().is_err());
        }
        assert_idle(&auth);
    }

    #[tokio::test(start_paused = true)]
    async fn identical_checks_at_once_share_one_bcrypt() {
        let (auth, calls) = counting(1);
        let users = Arc::new(users(&[("alice", "unused")]));
        let held = hold_turns(&auth).await;
        let mut requests = Vec::new();
        for (password, client) in [("right", CLIENT), ("wrong", "192.0.2.2")] {
            for i in 0..10 {
                let (auth, users) = (auth.clone(), users.clone());
                requests.push(tokio::spawn(async move {
                    let header = basic("alice", password);
                    // Sharing a check does not count against the client's bound.
                    let client = ip(client);
                    (i, password, auth.check(&users, Some(&header), client).await)
                }));
            }
        }
        until_waiting(&auth, 2).await;
        drop(held);
        for request in requests {
            let (i, password, answer) = request.await.unwrap();
            match password {
                "right" => assert_eq!(answer, Ok("alice".into()), "{i}"),
                _ => assert_eq!(answer, Err(Denied::WrongPassword("alice".into())), "{i}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one check per password");
        assert_idle(&auth);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_request_keeps_its_turn_until_its_check_ends() {
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        let auth = Arc::new(Authenticator::with(
            1,
            Box::new(move |_password, _hash| {
                started_tx.send(()).unwrap();
                lock(&released).recv().unwrap();
                false
            }),
        ));
        let users = Arc::new(users(&[("alice", "unused")]));
        let request = {
            let (auth, users) = (auth.clone(), users.clone());
            tokio::spawn(async move {
                auth.check(&users, Some(&basic("alice", "guess")), ip(CLIENT))
                    .await
            })
        };
        started.recv().await.unwrap();
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        {
            let checks = lock(&auth.shared.checks);
            assert_eq!(checks.running, 1, "bcrypt is still running");
            assert_eq!(checks.by_client.get(&ip(CLIENT)), Some(&1));
        }
        assert_eq!(auth.shared.turns.available_permits(), 0);
        release.send(()).unwrap();
        // The turn comes back when bcrypt returns.
        drop(auth.shared.turns.acquire().await.unwrap());
        assert_idle(&auth);
    }

    #[test]
    fn busy_refusals_are_logged_once_per_period_with_a_count() {
        let mut limit = LogLimit::default();
        let t0 = Instant::now();
        assert_eq!(limit.refused(t0), Some(0));
        for _ in 0..5 {
            assert_eq!(limit.refused(t0 + Duration::from_secs(1)), None);
        }
        assert_eq!(limit.refused(t0 + LOG_EVERY), Some(5));
        assert_eq!(limit.refused(t0 + LOG_EVERY), None);
    }

    #[test]
    fn the_cache_stays_bounded_and_forgets_the_least_recently_used() {
        let mut cache = Cache::default();
        let t0 = Instant::now();
        let key = |i: usize| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_be_bytes());
            key
        };
        for i in 0..CACHE_MAX {
            cache.remember(key(i), t0 + Duration::from_millis(i as u64));
        }
        let later = t0 + Duration::from_secs(60);
        assert!(cache.hit(&key(0), later), "the oldest entry, used again");
        cache.remember(key(CACHE_MAX), later);
        assert_eq!(cache.expires.len(), CACHE_MAX);
        assert!(cache.hit(&key(0), later), "renewed, so kept");
        assert!(
            !cache.hit(&key(1), later),
            "least recently used, so dropped"
        );
        assert!(cache.hit(&key(CACHE_MAX), later));
        // Expired entries go first.
        let much_later = later + CACHE_IDLE;
        cache.remember(key(CACHE_MAX + 1), much_later);
        assert_eq!(cache.expires.len(), 1);
    }

    #[test]
    fn expected_wait_counts_the_checks_beyond_the_free_turns() {
        let mut checks = Checks::default();
        assert_eq!(checks.expected_wait(2), Duration::ZERO, "no average yet");
        checks.timed(Duration::from_millis(100));
        assert_eq!(checks.expected_wait(2), Duration::ZERO);
        checks.running = 2;
        assert_eq!(checks.expected_wait(2), Duration::from_millis(50));
        checks.waiting = 3;
        assert_eq!(checks.expected_wait(2), Duration::from_millis(200));
        checks.timed(Duration::from_millis(900));
        assert_eq!(checks.average, Some(Duration::from_millis(200)));
    }

    #[test]
    fn slots_leave_half_the_cores_free_and_a_client_half_the_slots() {
        let slots = default_slots();
        assert!((1..=MAX_SLOTS).contains(&slots));
        let shares: Vec<usize> = (1..=4).map(per_client).collect();
        assert_eq!(shares, [1, 1, 2, 2]);
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
