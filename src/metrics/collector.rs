//! Per-target series: label sets prepared once per observation, values rendered at
//! scrape time, a chunk at a time.
//!
//! The [`Collector`] owns the prepared series: [`PreparedTarget::new`] escapes every
//! label set of a store entry once and keeps only numbers and static strings beside
//! them, and the collector keeps it until the entry is replaced (by its sequence
//! number). A scrape copies what it renders of every target into one contiguous,
//! self-contained [`Frame`], so that the pass over all targets that each family takes
//! reads memory in order and nothing of the store is held while a client reads. A
//! [`Render`] then writes the families from the frame and a scrape-time `now`, so the
//! expiry gauges are computed from the stored notAfter, never frozen at probe time, in
//! chunks of a size the caller chooses: the body is produced as the client takes it.
//!
//! Endpoints and certificate files go through the same rows: a row is a probed
//! address (`ip`), a file (`path`, and `entry` for a kubeconfig's entries) or a files
//! source as a whole; its [`RowKind`] says which families it takes (a file row takes
//! the per-certificate families, the verdict and its read health; an address row the
//! probe's families and `served_from`'s comparison), so the per-certificate families
//! have one writer for both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::names::*;
use super::text::{push_label, Family, Value};
use crate::cert::ParsedCert;
use crate::config::{FileSpec, TargetSpec};
use crate::files::{FileReport, FilesOutcome, ServedFile};
use crate::probe::outcome::{
    AddressOutcome, ChainIssue, FailureKind, Phase, ProbeOutcome, Verdict, Weakness,
};
use crate::shared::Shared;
use crate::store::{Counts, Entry, Observation};

/// The longest value of a certificate label; longer ones are cut.
pub const MAX_LABEL_VALUE: usize = 256;
/// The longest `dns_names` value; names past it are left out.
pub const MAX_DNS_NAMES_VALUE: usize = 1024;

/// The series of one target, ready to render.
#[derive(Debug, Default)]
pub struct PreparedTarget {
    rows: Vec<Row>,
}

/// One probed address.
#[derive(Debug)]
struct Row {
    /// `target="…",<user labels>[,host="…"],ip="…"`, escaped.
    labels: Box<str>,
    /// Where the target's own labels end in `labels` (before `host` and `ip`).
    base_len: u32,
    /// Where the host's labels end in `labels` (before `ip`).
    host_len: u32,
    /// `version="…",cipher="…"`.
    tls: Option<Box<str>>,
    certs: Box<[Cert]>,
    facts: Facts,
    /// Each certificate checked by each revocation source.
    revocation: Box<[RevocationSample]>,
}

/// The plain values of a row: copied whole into each scrape's [`Frame`].
#[derive(Debug, Clone, Copy)]
struct Facts {
    handshake_ok: bool,
    verified: Option<bool>,
    /// `reason="…"` of a failed verification.
    verify_reason: Option<&'static str>,
    failure: Option<FailureKind>,
    duration: f64,
    phases: [Option<f64>; 4],
    finished_at: f64,
    interval: f64,
    /// The earliest notAfter of the presented chain.
    chain_not_after: Option<i64>,
    verified_path_not_after: Option<i64>,
    successes: u64,
    failures: u64,
    /// `certwatch_legacy_only`: known once the probe reached the handshake.
    legacy_only: Option<bool>,
    /// The chain issues, one bit per [`ChainIssue::ALL`] entry.
    chain_issues: u8,
    /// Whether the handshake carried a stapled OCSP response, when OCSP is on.
    ocsp_stapled: Option<bool>,
    /// On a discovered target's first row: the hosts its answer named.
    hosts_named: Option<u32>,
    /// On the first row of a name that resolved to more addresses than are probed:
    /// how many were left out.
    addresses_left_out: Option<u32>,
    /// What the row is, and so which families it takes.
    kind: RowKind,
    /// A file's read health: whether it was read whole, and the reason if not.
    file_read: Option<(bool, Option<&'static str>)>,
    /// Whether the served leaf is `served_from`'s leaf.
    served_current: Option<bool>,
    /// notAfter of `served_from`'s leaf.
    served_not_after: Option<i64>,
    /// A files source's counts: files matched, and skipped over the bound.
    files_counts: Option<(usize, usize)>,
}

/// What a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// One probed address of an endpoint.
    Address,
    /// One certificate file (or one kubeconfig entry of it).
    File,
    /// A files source as a whole.
    FileSource,
}

impl Facts {
    /// The facts of a row that is not a probed address.
    fn not_probed(kind: RowKind, interval: Duration) -> Facts {
        Facts {
            handshake_ok: false,
            verified: None,
            verify_reason: None,
            failure: None,
            duration: 0.0,
            phases: [None; 4],
            finished_at: 0.0,
            interval: interval.as_secs_f64(),
            chain_not_after: None,
            verified_path_not_after: None,
            successes: 0,
            failures: 0,
            legacy_only: None,
            chain_issues: 0,
            ocsp_stapled: None,
            hosts_named: None,
            addresses_left_out: None,
            kind,
            file_read: None,
            served_current: None,
            served_not_after: None,
            files_counts: None,
        }
    }
}

#[derive(Debug)]
struct Cert {
    /// `depth="N"`.
    depth: &'static str,
    /// `subject_cn="…",…`: the identity labels of `certwatch_cert_info`, shared by
    /// every target that presents the same certificate.
    info: Arc<str>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    /// The weaknesses, one bit per [`Weakness::ALL`] entry.
    weaknesses: u8,
    /// Whether it is on the verified path; `None` when the chain does not verify.
    on_path: Option<bool>,
    must_staple: Option<bool>,
}

/// One certificate checked by one revocation source: plain values, copied whole into
/// each scrape's [`Frame`].
#[derive(Debug, Clone, Copy)]
struct RevocationSample {
    /// `depth="N"`.
    depth: &'static str,
    source: crate::revocation::Source,
    result: Result<(bool, Option<i64>), crate::revocation::Reason>,
}

impl RevocationSample {
    fn new(check: &crate::revocation::Check) -> Option<Self> {
        Some(Self {
            depth: DEPTH_LABELS.get(check.depth)?,
            source: check.source,
            result: match &check.result {
                Ok(status) => Ok((status.revoked.is_some(), status.next_update)),
                Err(failure) => Err(failure.reason),
            },
        })
    }

    /// `source="…"`.
    fn source_label(&self) -> &'static str {
        use crate::revocation::Source;
        match self.source {
            Source::OcspStapled => "source=\"ocsp_stapled\"",
            Source::Ocsp => "source=\"ocsp\"",
            Source::Crl => "source=\"crl\"",
        }
    }
}

/// `depth="N"` for the depths a chain can have.
const DEPTH_LABELS: [&str; crate::probe::tls::MAX_CHAIN_LEN] = [
    "depth=\"0\"",
    "depth=\"1\"",
    "depth=\"2\"",
    "depth=\"3\"",
    "depth=\"4\"",
    "depth=\"5\"",
    "depth=\"6\"",
    "depth=\"7\"",
    "depth=\"8\"",
    "depth=\"9\"",
    "depth=\"10\"",
    "depth=\"11\"",
    "depth=\"12\"",
    "depth=\"13\"",
    "depth=\"14\"",
    "depth=\"15\"",
    "depth=\"16\"",
    "depth=\"17\"",
    "depth=\"18\"",
    "depth=\"19\"",
    "depth=\"20\"",
    "depth=\"21\"",
    "depth=\"22\"",
    "depth=\"23\"",
    "depth=\"24\"",
    "depth=\"25\"",
    "depth=\"26\"",
    "depth=\"27\"",
    "depth=\"28\"",
    "depth=\"29\"",
    "depth=\"30\"",
    "depth=\"31\"",
];
/// `issue="…"`, in [`ChainIssue::ALL`] order.
const ISSUE_LABELS: [&str; 6] = [
    "issue=\"incomplete\"",
    "issue=\"root_included\"",
    "issue=\"out_of_order\"",
    "issue=\"duplicate\"",
    "issue=\"unrelated\"",
    "issue=\"too_long\"",
];
/// `weakness="…"`, in [`Weakness::ALL`] order.
const WEAKNESS_LABELS: [&str; 6] = [
    "weakness=\"rsa_key_under_2048\"",
    "weakness=\"ec_key_under_256\"",
    "weakness=\"sha1_signature\"",
    "weakness=\"md5_signature\"",
    "weakness=\"lifetime_over_398_days\"",
    "weakness=\"no_subject_alt_name\"",
];
/// `depth="N"` for any depth a certificate file can have.
fn depth_label(depth: usize) -> &'static str {
    static MORE: std::sync::OnceLock<Box<[Box<str>]>> = std::sync::OnceLock::new();
    match DEPTH_LABELS.get(depth) {
        Some(label) => label,
        None => MORE
            .get_or_init(|| {
                (0..crate::files::parse::MAX_CERTS_PER_FILE)
                    .map(|d| format!("depth=\"{d}\"").into_boxed_str())
                    .collect()
            })
            .get(depth)
            .map_or("depth=\"\"", |label| label),
    }
}

const PHASE_LABELS: [&str; 4] = [
    "phase=\"resolve\"",
    "phase=\"connect\"",
    "phase=\"starttls\"",
    "phase=\"handshake\"",
];
const RESULT_SUCCESS: &str = "result=\"success\"";
const RESULT_FAILURE: &str = "result=\"failure\"";

impl PreparedTarget {
    /// Prepares the series of a store entry.
    pub fn new(entry: &Entry) -> Self {
        match &entry.observation {
            Observation::Endpoint {
                spec,
                outcome,
                served,
            } => Self::of_probe(
                spec,
                outcome,
                |i| entry.counts.get(i).copied().unwrap_or_default(),
                served.as_ref(),
            ),
            Observation::Files { spec, outcome } => Self::of_files(spec, outcome),
        }
    }

    fn of_probe(
        spec: &TargetSpec,
        outcome: &ProbeOutcome,
        counts: impl Fn(usize) -> Counts,
        served: Option<&ServedFile>,
    ) -> Self {
        let base = base_labels(&spec.name, &spec.labels);
        let mut rows: Vec<Row> = outcome
            .addresses
            .iter()
            .enumerate()
            .map(|(i, address)| {
                let mut row = Row::new(&base, spec.interval, address, counts(i));
                if let Some(served) = served {
                    row.facts.served_current = served.is_current(address.chain.first());
                    row.facts.served_not_after = served.leaf.as_ref().and_then(|l| l.not_after());
                }
                row
            })
            .collect();
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(first) = rows.first_mut() {
            first.facts.hosts_named = outcome.cut.hosts_named.map(clamp);
        }
        for (host, _, left_out) in &outcome.cut.addresses {
            let label = host.as_ref().map(|h| h.label.as_str());
            let first = outcome
                .addresses
                .iter()
                .position(|a| a.host.as_ref().map(|h| h.label.as_str()) == label);
            if let Some(row) = first.and_then(|i| rows.get_mut(i)) {
                row.facts.addresses_left_out = Some(clamp(*left_out));
            }
        }
        // `served_from`'s read health, as any file's: its certificates are not
        // reported here (they are the target's `served_file_not_after`).
        for file in served.map_or(&[][..], |s| &s.files[..]) {
            rows.push(Row::file_health(&base, spec.interval, file));
        }
        Self { rows }
    }

    fn of_files(spec: &FileSpec, outcome: &FilesOutcome) -> Self {
        let base = base_labels(&spec.name, &spec.labels);
        let mut rows = Vec::with_capacity(1 + outcome.files.len());
        // A source never read yet (its first read overran) has no source row: when
        // it was read is not known, and no timestamp is made up.
        if let Some(finished_at) = outcome.finished_at {
            let mut source = Facts::not_probed(RowKind::FileSource, spec.interval);
            source.finished_at = unix_seconds(finished_at);
            source.files_counts = Some((outcome.matched, outcome.skipped));
            rows.push(Row::not_probed(base.clone(), base.len(), source));
        }
        for file in &outcome.files {
            rows.extend(Row::file(&base, spec.interval, file));
        }
        Self { rows }
    }
}

/// `target="…",<user labels>`, escaped.
fn base_labels(name: &str, labels: &[(crate::config::LabelName, String)]) -> String {
    let mut base = String::with_capacity(64);
    push_label(&mut base, LABEL_TARGET, name);
    for (name, value) in labels {
        push_label(&mut base, name.as_str(), value);
    }
    base
}

/// Prepared series, kept per store entry until it is replaced.
///
/// Keyed by the entry's sequence number, which is unique, hashed by foldhash (a fast
/// hash for integer keys); the map is rebuilt from each scrape's entries, which also
/// forgets the entries replaced or removed since the last one.
#[derive(Debug, Default)]
pub struct Collector {
    prepared: Mutex<HashMap<u64, Arc<PreparedTarget>, foldhash::fast::FixedState>>,
}

impl Collector {
    /// The prepared series of `entries` (a store snapshot): those of entries seen at an
    /// earlier scrape are reused, the others prepared now.
    pub fn prepare(&self, entries: &[Arc<Entry>]) -> Vec<Arc<PreparedTarget>> {
        let mut cache = self
            .prepared
            .lock()
            // Nothing panics while the lock is held; the map stays consistent.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut missed = false;
        let prepared: Vec<Arc<PreparedTarget>> = entries
            .iter()
            .map(|entry| {
                cache.get(&entry.seq).cloned().unwrap_or_else(|| {
                    missed = true;
                    Arc::new(PreparedTarget::new(entry))
                })
            })
            .collect();
        if missed || cache.len() != entries.len() {
            *cache = entries
                .iter()
                .map(|e| e.seq)
                .zip(prepared.iter().cloned())
                .collect();
        }
        prepared
    }

    /// Appends every per-target family of `entries` to `out`, with expiry computed at
    /// `now`, in one go.
    pub fn render(&self, entries: &[Arc<Entry>], now: SystemTime, out: &mut String) {
        let mut render = Render::new(Frame::new(&self.prepare(entries)), now, Scope::Scheduled);
        while render.next_chunk(out, usize::MAX) {}
    }
}

impl Row {
    fn new(base: &str, interval: Duration, address: &AddressOutcome, counts: Counts) -> Self {
        let mut labels = base.to_owned();
        let base_len = labels.len();
        if let Some(host) = &address.host {
            push_label(&mut labels, LABEL_HOST, &host.label);
        }
        let host_len = labels.len();
        let ip = address.ip.map(|ip| ip.to_string()).unwrap_or_default();
        push_label(&mut labels, LABEL_IP, &ip);
        let certs: Box<[Cert]> = address
            .chain
            .iter()
            .zip(DEPTH_LABELS)
            .enumerate()
            .map(|(i, (cert, depth))| {
                let mut cert = Cert::new(depth, cert);
                cert.weaknesses = address
                    .weaknesses
                    .iter()
                    .filter(|(d, _)| *d == i)
                    .fold(0, |bits, (_, w)| bits | weakness_bit(*w));
                cert.on_path = match &address.verdict {
                    Some(Verdict::Verified { path, .. }) => Some(path.contains(&i)),
                    _ => None,
                };
                cert
            })
            .collect();
        let (verified, verify_reason, verified_path_not_after) = match &address.verdict {
            None => (None, None, None),
            Some(Verdict::Verified { path_not_after, .. }) => {
                (Some(true), None, Some(*path_not_after))
            }
            Some(Verdict::Failed { reason, .. }) => (Some(false), Some(reason.as_label()), None),
        };
        let revocation = address
            .revocation
            .iter()
            .flat_map(|r| &r.checks)
            .filter_map(RevocationSample::new)
            .collect();
        let failure = address.handshake.as_ref().err().map(|f| f.kind);
        let legacy_only = match failure {
            None | Some(FailureKind::Handshake(_)) => Some(address.legacy_only()),
            Some(_) => None,
        };
        let tls = address.tls_params().map(|tls| {
            let mut pairs = String::new();
            push_label(&mut pairs, "version", tls.version);
            push_label(&mut pairs, "cipher", tls.cipher);
            pairs.into_boxed_str()
        });
        let facts = Facts {
            handshake_ok: address.handshake_ok(),
            verified,
            verify_reason,
            failure,
            duration: address.duration.as_secs_f64(),
            phases: Phase::ALL.map(|p| address.phases.get(p).map(|d| d.as_secs_f64())),
            finished_at: unix_seconds(address.finished_at),
            interval: interval.as_secs_f64(),
            chain_not_after: certs.iter().filter_map(|c| c.not_after).min(),
            verified_path_not_after,
            successes: counts.successes,
            failures: counts.failures,
            legacy_only,
            chain_issues: address
                .chain_issues
                .iter()
                .fold(0, |bits, issue| bits | issue_bit(*issue)),
            ocsp_stapled: address.revocation.as_ref().and_then(|r| r.stapled),
            hosts_named: None,
            addresses_left_out: None,
            kind: RowKind::Address,
            file_read: None,
            served_current: None,
            served_not_after: None,
            files_counts: None,
        };
        let offset = |n: usize| u32::try_from(n).expect("label sets are far below 4 GiB");
        Self {
            base_len: offset(base_len),
            host_len: offset(host_len),
            labels: labels.into_boxed_str(),
            tls,
            certs,
            facts,
            revocation,
        }
    }

    /// The rows of one file: one with its read health and (but for a kubeconfig) its
    /// certificates, and one per kubeconfig entry with that entry's certificates.
    fn file(base: &str, interval: Duration, file: &FileReport) -> Vec<Row> {
        let mut rows = vec![Row::file_health(base, interval, file)];
        for bundle in &file.bundles {
            let (verified, reason, path_not_after) = match &bundle.verdict {
                None => (None, None, None),
                Some(Verdict::Verified { path_not_after, .. }) => {
                    (Some(true), None, Some(*path_not_after))
                }
                Some(Verdict::Failed { reason, .. }) => {
                    (Some(false), Some(reason.as_label()), None)
                }
            };
            let weaknesses = crate::probe::hygiene::file_weaknesses(&bundle.certs);
            let certs: Box<[Cert]> = bundle
                .certs
                .iter()
                .enumerate()
                .map(|(depth, cert)| {
                    let mut cert = Cert::new(depth_label(depth), cert);
                    cert.weaknesses = weaknesses
                        .iter()
                        .filter(|(d, _)| *d == depth)
                        .fold(0, |bits, (_, w)| bits | weakness_bit(*w));
                    cert
                })
                .collect();
            let row = match &bundle.entry {
                None => &mut rows[0],
                Some(entry) => {
                    let mut labels = rows[0].labels.to_string();
                    push_label(&mut labels, LABEL_ENTRY, entry);
                    let facts = Facts::not_probed(RowKind::File, interval);
                    rows.push(Row::not_probed(labels, rows[0].base_len as usize, facts));
                    rows.last_mut().expect("just pushed")
                }
            };
            row.facts.chain_not_after = certs.iter().filter_map(|c| c.not_after).min();
            row.facts.verified_path_not_after = path_not_after;
            row.certs = certs;
            row.facts.verified = verified;
            row.facts.verify_reason = reason;
        }
        rows
    }

    /// A file's read health alone.
    fn file_health(base: &str, interval: Duration, file: &FileReport) -> Row {
        let mut labels = base.to_owned();
        push_label(&mut labels, LABEL_PATH, &file.path.to_string_lossy());
        let mut facts = Facts::not_probed(RowKind::File, interval);
        facts.file_read = Some((
            file.error.is_none(),
            file.error.as_ref().map(|e| e.reason.as_label()),
        ));
        Row::not_probed(labels, base.len(), facts)
    }

    /// A row of no probed address (a file, a files source): `labels` are the target's
    /// up to `base_len`, then the row's own (`path`, `entry`).
    fn not_probed(labels: String, base_len: usize, facts: Facts) -> Row {
        let base_len = u32::try_from(base_len).unwrap_or(u32::MAX);
        Row {
            labels: labels.into_boxed_str(),
            base_len,
            host_len: base_len,
            tls: None,
            certs: Box::default(),
            facts,
            revocation: Box::default(),
        }
    }
}

impl Cert {
    fn new(depth: &'static str, cert: &Arc<ParsedCert>) -> Self {
        let parsed = cert.info.as_ref().ok();
        Self {
            depth,
            info: info_labels(cert),
            not_before: parsed.map(|c| c.not_before),
            not_after: parsed.map(|c| c.not_after),
            weaknesses: 0,
            on_path: None,
            must_staple: parsed.map(|c| c.must_staple),
        }
    }
}

/// The bit of `issue` in [`Facts::chain_issues`].
fn issue_bit(issue: ChainIssue) -> u8 {
    1 << ChainIssue::ALL
        .iter()
        .position(|i| *i == issue)
        .expect("every issue is in ALL")
}

/// The bit of `weakness` in [`Cert::weaknesses`].
fn weakness_bit(weakness: Weakness) -> u8 {
    1 << Weakness::ALL
        .iter()
        .position(|w| *w == weakness)
        .expect("every weakness is in ALL")
}

/// The identity labels of `cert`, built once per distinct certificate.
fn info_labels(cert: &Arc<ParsedCert>) -> Arc<str> {
    static SHARED: Shared<str> = Shared::new();
    SHARED.get_or_insert(&cert.fingerprint_sha256, || {
        let mut info = String::with_capacity(320);
        let parsed = cert.info.as_ref().ok();
        let text = |v: Option<&str>| bounded(v.unwrap_or(""), MAX_LABEL_VALUE);
        push_label(
            &mut info,
            "subject_cn",
            &text(parsed.and_then(|c| c.subject_cn.as_deref())),
        );
        push_label(
            &mut info,
            "issuer_cn",
            &text(parsed.and_then(|c| c.issuer_cn.as_deref())),
        );
        push_label(
            &mut info,
            "serial",
            &text(parsed.map(|c| c.serial_hex.as_str())),
        );
        push_label(&mut info, "fingerprint_sha256", &cert.fingerprint_sha256);
        push_label(
            &mut info,
            "dns_names",
            &parsed
                .map(|c| dns_names_value(&c.dns_names))
                .unwrap_or_default(),
        );
        push_label(
            &mut info,
            "key_algorithm",
            parsed.map_or("", |c| c.key.algorithm),
        );
        let bits = parsed
            .and_then(|c| c.key.bits)
            .map(|b| b.to_string())
            .unwrap_or_default();
        push_label(&mut info, "key_bits", &bits);
        push_label(
            &mut info,
            "signature_algorithm",
            &text(parsed.map(|c| c.signature_algorithm.as_str())),
        );
        Arc::from(info)
    })
}

/// `,a.example,b.example,`, keeping only the names that fit in [`MAX_DNS_NAMES_VALUE`].
/// Each name is a [`list_item`](crate::cert::list_item) (`%` → `%25`, `,` → `%2C`), so
/// a comma is always a separator and `.*,www\.example\.com,.*` matches that one name.
fn dns_names_value(names: &[String]) -> String {
    let mut value = String::from(",");
    for name in names {
        let name = crate::cert::list_item(name);
        if value.len() + name.len() + 1 > MAX_DNS_NAMES_VALUE {
            break;
        }
        value.push_str(&name);
        value.push(',');
    }
    if value.len() == 1 {
        value.clear();
    }
    value
}

fn bounded(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((cut, _)) => value[..cut].to_owned(),
        None => value.to_owned(),
    }
}

/// Seconds since the Unix epoch, as Prometheus wants timestamps.
pub fn unix_seconds(time: SystemTime) -> f64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// How a family's samples are drawn from one row, given `now` in whole Unix seconds.
type Samples = fn(&View<'_>, i64, &mut Family<'_>);

/// Which families a render writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every family: the scheduled targets of `/metrics`.
    Scheduled,
    /// Not the families that describe the schedule (`certwatch_probes_total`,
    /// `certwatch_probe_interval_seconds`): one ad-hoc probe, as `/probe` answers.
    AdHoc,
}

/// One scrape's copy of every row, laid out in order in a few contiguous buffers and
/// owning what it holds, so a scrape keeps nothing of the store while its client reads.
///
/// Each family is written by its own pass over every row. The prepared rows sit wherever
/// the heap put them when their probe finished, so reading them in place costs several
/// cache misses per row per pass; copying what rendering reads once per scrape (a few
/// MB at 10,000 targets, freed after) makes every pass a sequential read. At 10,000
/// targets on a heap shaped by re-probes this halves the CPU of a scrape.
#[derive(Debug)]
pub struct Frame {
    /// Every row's label set and TLS labels, back to back.
    text: String,
    certs: Vec<CertView>,
    rows: Vec<RowSpans>,
    revocation: Vec<RevocationSample>,
}

/// Where a row's parts are in its [`Frame`].
#[derive(Debug)]
struct RowSpans {
    labels: std::ops::Range<usize>,
    /// The lengths of the target's own labels and of those with `host`, within `labels`.
    base_len: u32,
    host_len: u32,
    tls: Option<std::ops::Range<usize>>,
    certs: std::ops::Range<usize>,
    facts: Facts,
    revocation: std::ops::Range<usize>,
}

/// A row as one family's pass reads it.
struct View<'a> {
    labels: &'a str,
    /// The target's own labels (no `host`, no `ip`), for per-target families.
    target_labels: &'a str,
    /// The target's and the host's labels (no `ip`), for per-host families.
    host_labels: &'a str,
    tls: Option<&'a str>,
    certs: &'a [CertView],
    facts: &'a Facts,
    revocation: &'a [RevocationSample],
}

impl std::ops::Deref for View<'_> {
    type Target = Facts;

    fn deref(&self) -> &Facts {
        self.facts
    }
}

/// A certificate as one family's pass reads it.
#[derive(Debug)]
struct CertView {
    depth: &'static str,
    info: Arc<str>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    weaknesses: u8,
    on_path: Option<bool>,
    must_staple: Option<bool>,
}

/// The sizes of a frame's buffers.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    rows: usize,
    text: usize,
    certs: usize,
    revocation: usize,
}

impl Sizes {
    fn of(prepared: &[Arc<PreparedTarget>]) -> Self {
        prepared
            .iter()
            .flat_map(|p| p.rows.iter())
            .fold(Sizes::default(), |s, row| Sizes {
                rows: s.rows + 1,
                text: s.text + row.labels.len() + row.tls.as_deref().map_or(0, str::len),
                certs: s.certs + row.certs.len(),
                revocation: s.revocation + row.revocation.len(),
            })
    }

    fn bytes(self) -> usize {
        self.text
            + self.certs * std::mem::size_of::<CertView>()
            + self.rows * std::mem::size_of::<RowSpans>()
            + self.revocation * std::mem::size_of::<RevocationSample>()
    }
}

impl Frame {
    /// The bytes a frame of `prepared` holds, to budget before building it.
    pub fn bytes_for(prepared: &[Arc<PreparedTarget>]) -> usize {
        Sizes::of(prepared).bytes()
    }

    /// Copies every row of `prepared`.
    pub fn new(prepared: &[Arc<PreparedTarget>]) -> Self {
        let sizes = Sizes::of(prepared);
        let mut frame = Frame {
            text: String::with_capacity(sizes.text),
            certs: Vec::with_capacity(sizes.certs),
            rows: Vec::with_capacity(sizes.rows),
            revocation: Vec::with_capacity(sizes.revocation),
        };
        for row in prepared.iter().flat_map(|p| p.rows.iter()) {
            let labels = frame.push_text(&row.labels);
            let tls = row.tls.as_deref().map(|tls| frame.push_text(tls));
            let first_cert = frame.certs.len();
            frame.certs.extend(row.certs.iter().map(|c| CertView {
                depth: c.depth,
                info: c.info.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                weaknesses: c.weaknesses,
                on_path: c.on_path,
                must_staple: c.must_staple,
            }));
            let first_check = frame.revocation.len();
            frame.revocation.extend_from_slice(&row.revocation);
            frame.rows.push(RowSpans {
                labels,
                base_len: row.base_len,
                host_len: row.host_len,
                tls,
                certs: first_cert..frame.certs.len(),
                facts: row.facts,
                revocation: first_check..frame.revocation.len(),
            });
        }
        frame
    }

    /// The bytes this frame holds.
    pub fn bytes(&self) -> usize {
        Sizes {
            rows: self.rows.capacity(),
            text: self.text.capacity(),
            certs: self.certs.capacity(),
            revocation: self.revocation.capacity(),
        }
        .bytes()
    }

    fn push_text(&mut self, text: &str) -> std::ops::Range<usize> {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn view<'a>(&'a self, row: &'a RowSpans) -> View<'a> {
        let labels = &self.text[row.labels.clone()];
        View {
            labels,
            target_labels: &labels[..row.base_len as usize],
            host_labels: &labels[..row.host_len as usize],
            tls: row.tls.clone().map(|t| &self.text[t]),
            certs: &self.certs[row.certs.clone()],
            facts: &row.facts,
            revocation: &self.revocation[row.revocation.clone()],
        }
    }
}

fn flag(b: bool) -> Value {
    Value::Int(i64::from(b))
}

/// Every per-target family: name, type, help, and its samples.
const FAMILIES: &[(&str, &str, &str, Samples)] = &[
    (HANDSHAKE_SUCCESS, "gauge", "1 if connect, STARTTLS (when set) and the TLS handshake completed.", |r, _, f| {
        f.sample(r.labels, &[], flag(r.handshake_ok))
    }),
    (CHAIN_VERIFIED, "gauge", "1 if the presented chain verifies for server_name against the trust anchors.", |r, _, f| {
        if let Some(v) = r.verified {
            f.sample(r.labels, &[], flag(v));
        }
    }),
    (PROBE_SUCCESS, "gauge", "1 if the handshake completed and the chain verified.", |r, _, f| {
        f.sample(r.labels, &[], flag(r.handshake_ok && r.verified == Some(true)))
    }),
    (VERIFY_ERROR_INFO, "gauge", "1, with the reason, when the presented chain did not verify.", |r, _, f| {
        if let Some(reason) = r.verify_reason {
            let mut pair = String::new();
            push_label(&mut pair, LABEL_REASON, reason);
            f.sample(r.labels, &[&pair], Value::Int(1));
        }
    }),
    (PROBE_FAILURE_INFO, "gauge", "1, with the stage and reason, when the handshake did not complete.", |r, _, f| {
        if let Some(kind) = r.failure {
            let mut pairs = String::new();
            push_label(&mut pairs, LABEL_STAGE, kind.stage().as_label());
            push_label(&mut pairs, LABEL_REASON, kind.reason_label());
            f.sample(r.labels, &[&pairs], Value::Int(1));
        }
    }),
    (TLS_INFO, "gauge", "1, with the negotiated TLS version and cipher suite.", |r, _, f| {
        if let Some(tls) = r.tls {
            f.sample(r.labels, &[tls], Value::Int(1));
        }
    }),
    (CERT_INFO, "gauge", "1 per presented certificate, with its identity.", |r, _, f| {
        for cert in r.certs {
            f.sample(r.labels, &[cert.depth, &cert.info], Value::Int(1));
        }
    }),
    (CERT_NOT_AFTER, "gauge", "notAfter of the presented certificate at depth, Unix seconds.", |r, _, f| {
        for cert in r.certs {
            if let Some(t) = cert.not_after {
                f.sample(r.labels, &[cert.depth], Value::Int(t));
            }
        }
    }),
    (CERT_NOT_BEFORE, "gauge", "notBefore of the presented certificate at depth, Unix seconds.", |r, _, f| {
        for cert in r.certs {
            if let Some(t) = cert.not_before {
                f.sample(r.labels, &[cert.depth], Value::Int(t));
            }
        }
    }),
    (CERT_EXPIRY, "gauge", "Seconds from now until notAfter of the certificate at depth; negative once expired.", |r, now, f| {
        for cert in r.certs {
            if let Some(t) = cert.not_after {
                f.sample(r.labels, &[cert.depth], Value::Int(t.saturating_sub(now)));
            }
        }
    }),
    (CHAIN_EXPIRY, "gauge", "Seconds from now until the earliest notAfter of the presented chain.", |r, now, f| {
        if let Some(t) = r.chain_not_after {
            f.sample(r.labels, &[], Value::Int(t.saturating_sub(now)));
        }
    }),
    (VERIFIED_CHAIN_EXPIRY, "gauge", "Seconds from now until the earliest notAfter along the verified path, trust anchor included.", |r, now, f| {
        if let Some(t) = r.verified_path_not_after {
            f.sample(r.labels, &[], Value::Int(t.saturating_sub(now)));
        }
    }),
    (PROBE_DURATION, "gauge", "How long the last probe took, in seconds.", |r, _, f| {
        f.sample(r.labels, &[], Value::Float(r.duration))
    }),
    (PROBE_PHASE_DURATION, "gauge", "How long each phase of the last probe took, in seconds.", |r, _, f| {
        for (label, took) in PHASE_LABELS.iter().zip(r.phases) {
            if let Some(took) = took {
                f.sample(r.labels, &[label], Value::Float(took));
            }
        }
    }),
    (LAST_PROBE_TIMESTAMP, "gauge", "When the last probe finished, Unix seconds.", |r, _, f| {
        f.sample(r.labels, &[], Value::Float(r.finished_at))
    }),
    (PROBE_INTERVAL, "gauge", "The configured probe interval of the target, in seconds.", |r, _, f| {
        f.sample(r.labels, &[], Value::Float(r.interval))
    }),
    (PROBES_TOTAL, "counter", "Probes run, by result.", |r, _, f| {
        f.sample(r.labels, &[RESULT_SUCCESS], Value::Int(i64::try_from(r.successes).unwrap_or(i64::MAX)));
        f.sample(r.labels, &[RESULT_FAILURE], Value::Int(i64::try_from(r.failures).unwrap_or(i64::MAX)));
    }),
    // Chain and key hygiene, legacy-only endpoints (contract sections 8 and 9).
    (LEGACY_ONLY, "gauge", "1 if only the legacy second hello (TLS 1.0-1.2, legacy suites, groups or schemes) reached the server.", |r, _, f| {
        if let Some(legacy) = r.legacy_only {
            f.sample(r.labels, &[], flag(legacy));
        }
    }),
    (CHAIN_ISSUE_INFO, "gauge", "1 per issue of the presented chain: incomplete, root_included, out_of_order, duplicate, unrelated, too_long.", |r, _, f| {
        for (i, label) in ISSUE_LABELS.iter().enumerate() {
            if r.chain_issues & (1 << i) != 0 {
                f.sample(r.labels, &[label], Value::Int(1));
            }
        }
    }),
    (CERT_WEAKNESS_INFO, "gauge", "1 per weakness of the presented certificate at depth.", |r, _, f| {
        for cert in r.certs {
            for (i, label) in WEAKNESS_LABELS.iter().enumerate() {
                if cert.weaknesses & (1 << i) != 0 {
                    f.sample(r.labels, &[cert.depth, label], Value::Int(1));
                }
            }
        }
    }),
    (CERT_ON_VERIFIED_PATH, "gauge", "1 if the presented certificate at depth is on the verified path, 0 if the path does not use it; absent when the chain does not verify.", |r, _, f| {
        for cert in r.certs {
            if let Some(on_path) = cert.on_path {
                f.sample(r.labels, &[cert.depth], flag(on_path));
            }
        }
    }),
    // Revocation (CONTRACT section 7).
    (CERT_REVOKED, "gauge", "1 if the certificate at depth is revoked, 0 if the source says it is not; absent when unknown.", |r, _, f| {
        for check in r.revocation {
            if let Ok((revoked, _)) = check.result {
                f.sample(r.labels, &[check.depth, check.source_label()], flag(revoked));
            }
        }
    }),
    (OCSP_STAPLED, "gauge", "1 if the handshake carried a stapled OCSP response, 0 if not.", |r, _, f| {
        if let Some(stapled) = r.ocsp_stapled {
            f.sample(r.labels, &[], flag(stapled));
        }
    }),
    (OCSP_NEXT_UPDATE, "gauge", "nextUpdate of the OCSP response about the certificate at depth, Unix seconds.", |r, _, f| {
        for check in r.revocation {
            if let (crate::revocation::Source::Ocsp | crate::revocation::Source::OcspStapled, Ok((_, Some(next)))) = (check.source, check.result) {
                f.sample(r.labels, &[check.depth, check.source_label()], Value::Int(next));
            }
        }
    }),
    (CRL_NEXT_UPDATE, "gauge", "nextUpdate of the CRL the certificate at depth was looked up in, Unix seconds.", |r, _, f| {
        for check in r.revocation {
            if let (crate::revocation::Source::Crl, Ok((_, Some(next)))) = (check.source, check.result) {
                f.sample(r.labels, &[check.depth], Value::Int(next));
            }
        }
    }),
    (CERT_MUST_STAPLE, "gauge", "1 if the certificate at depth requires a stapled OCSP response (TLS feature status_request), 0 if not.", |r, _, f| {
        for cert in r.certs {
            if let Some(must) = cert.must_staple {
                f.sample(r.labels, &[cert.depth], flag(must));
            }
        }
    }),
    (REVOCATION_CHECK_FAILURE_INFO, "gauge", "1, with the source and reason, when a revocation source gave no answer about the certificate at depth.", |r, _, f| {
        for check in r.revocation {
            if let Err(reason) = check.result {
                let mut pair = String::new();
                push_label(&mut pair, LABEL_REASON, reason.as_label());
                f.sample(r.labels, &[check.depth, check.source_label(), &pair], Value::Int(1));
            }
        }
    }),
    // Discovery (mx, srv) and the caps on hosts and addresses.
    (DISCOVERED_HOSTS, "gauge", "Hosts the last MX or SRV answer named (at most 16 are probed).", |r, _, f| {
        if let Some(n) = r.hosts_named {
            f.sample(r.target_labels, &[], Value::Int(i64::from(n)));
        }
    }),
    (ADDRESSES_SKIPPED, "gauge", "Addresses a name resolved to beyond the 16 probed; present when some were left out.", |r, _, f| {
        if let Some(n) = r.addresses_left_out {
            f.sample(r.host_labels, &[], Value::Int(i64::from(n)));
        }
    }),
    // Certificate files (CONTRACT sections 5 and 6).
    (SERVED_CERT_CURRENT, "gauge", "1 if the leaf the server presents is the leaf of its served_from file, 0 if not.", |r, _, f| {
        if let Some(current) = r.served_current {
            f.sample(r.labels, &[], flag(current));
        }
    }),
    (SERVED_FILE_NOT_AFTER, "gauge", "notAfter of the leaf of the target's served_from file, Unix seconds.", |r, _, f| {
        if let Some(t) = r.served_not_after {
            f.sample(r.labels, &[], Value::Int(t));
        }
    }),
    (FILE_READ_SUCCESS, "gauge", "1 if the certificate file was read and parsed whole.", |r, _, f| {
        if let Some((ok, _)) = r.file_read {
            f.sample(r.labels, &[], flag(ok));
        }
    }),
    (FILE_READ_ERROR_INFO, "gauge", "1, with the reason, when the certificate file was not read whole.", |r, _, f| {
        if let Some((_, Some(reason))) = r.file_read {
            let mut pair = String::new();
            push_label(&mut pair, LABEL_REASON, reason);
            f.sample(r.labels, &[&pair], Value::Int(1));
        }
    }),
    (FILES_MATCHED, "gauge", "Files the source's paths match (a missing literal path is not counted).", |r, _, f| {
        if let Some((matched, _)) = r.files_counts {
            f.sample(r.labels, &[], Value::Int(i64::try_from(matched).unwrap_or(i64::MAX)));
        }
    }),
    (FILES_SKIPPED, "gauge", "Files the source's paths match but that are not read, over the bound of files per source.", |r, _, f| {
        if let Some((_, skipped)) = r.files_counts {
            f.sample(r.labels, &[], Value::Int(i64::try_from(skipped).unwrap_or(i64::MAX)));
        }
    }),
];

/// The families a file row takes: the per-certificate ones (weaknesses included: a
/// weak key on disk matters too), the bundle's earliest notAfter (so the shipped
/// expiry rules cover files), the verdict, read health. Not the chain issues nor the
/// verified path's certificates: those describe what a server presents.
const FILE_ROW_FAMILIES: [&str; 11] = [
    CERT_INFO,
    CERT_NOT_AFTER,
    CERT_NOT_BEFORE,
    CERT_EXPIRY,
    CHAIN_EXPIRY,
    VERIFIED_CHAIN_EXPIRY,
    CHAIN_VERIFIED,
    VERIFY_ERROR_INFO,
    CERT_WEAKNESS_INFO,
    FILE_READ_SUCCESS,
    FILE_READ_ERROR_INFO,
];

/// The families a files source's row takes: its counts, and when it was last read
/// and how often it is (so that the staleness alert covers it).
const FILE_SOURCE_FAMILIES: [&str; 4] = [
    FILES_MATCHED,
    FILES_SKIPPED,
    LAST_PROBE_TIMESTAMP,
    PROBE_INTERVAL,
];

/// Whether rows of `kind` take `family`. Address rows take all (the file families
/// find nothing in them); the others only theirs.
fn takes(family: &str, kind: RowKind) -> bool {
    match kind {
        RowKind::Address => true,
        RowKind::File => FILE_ROW_FAMILIES.contains(&family),
        RowKind::FileSource => FILE_SOURCE_FAMILIES.contains(&family),
    }
}

/// The families that describe the schedule, not the probe: left out of [`Scope::AdHoc`].
const SCHEDULE_FAMILIES: [&str; 2] = [PROBE_INTERVAL, PROBES_TOTAL];

/// Writes the per-target families of a [`Frame`], a chunk at a time.
#[derive(Debug)]
pub struct Render {
    frame: Frame,
    /// Unix seconds at the scrape.
    now: i64,
    scope: Scope,
    /// The family being written, as an index into `FAMILIES`.
    family: usize,
    /// The next row of that family.
    row: usize,
    /// Whether that family's header is written.
    started: bool,
}

impl Render {
    /// A render of `frame` with expiry at `now`.
    pub fn new(frame: Frame, now: SystemTime, scope: Scope) -> Self {
        Self {
            frame,
            now: unix_seconds(now).floor() as i64,
            scope,
            family: 0,
            row: 0,
            started: false,
        }
    }

    /// The bytes the frame holds.
    pub fn frame_bytes(&self) -> usize {
        self.frame.bytes()
    }

    /// Appends samples to `out` until it holds at least `limit` bytes or everything is
    /// written; whether more remains.
    pub fn next_chunk(&mut self, out: &mut String, limit: usize) -> bool {
        while let Some((name, kind, help, samples)) = FAMILIES.get(self.family) {
            if self.scope == Scope::AdHoc && SCHEDULE_FAMILIES.contains(name) {
                self.family += 1;
                continue;
            }
            let mut family = Family::resume(out, name, kind, help, self.started);
            let takes = [RowKind::Address, RowKind::File, RowKind::FileSource]
                .map(|kind| takes(name, kind));
            while let Some(row) = self.frame.rows.get(self.row) {
                if takes[row.facts.kind as usize] {
                    samples(&self.frame.view(row), self.now, &mut family);
                }
                self.row += 1;
                if family.out().len() >= limit {
                    self.started = family.started();
                    return true;
                }
            }
            self.family += 1;
            self.row = 0;
            self.started = false;
        }
        false
    }
}

/// Renders one probe outcome alone, as `GET /probe` answers: no schedule families.
pub fn render_outcome(spec: &TargetSpec, outcome: &ProbeOutcome, now: SystemTime) -> String {
    let prepared = Arc::new(PreparedTarget::of_probe(
        spec,
        outcome,
        |_| Counts::default(),
        None,
    ));
    let mut render = Render::new(Frame::new(&[prepared]), now, Scope::AdHoc);
    let mut out = String::new();
    while render.next_chunk(&mut out, usize::MAX) {}
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::probe::outcome::{ConnectReason, Failure, PhaseTimes, TlsParams};
    use std::path::Path;

    fn cert(cn: &str) -> Arc<ParsedCert> {
        let mut params =
            rcgen::CertificateParams::new(vec![format!("{cn}.example")]).expect("a valid name");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().expect("a key");
        let der = params.self_signed(&key).expect("a certificate");
        ParsedCert::shared(der.der())
    }

    fn address(
        chain: Vec<Arc<ParsedCert>>,
        handshake: Result<TlsParams, Failure>,
    ) -> AddressOutcome {
        AddressOutcome {
            ip: Some(std::net::IpAddr::from([127, 0, 0, 1])),
            finished_at: SystemTime::now(),
            duration: Duration::from_millis(5),
            phases: PhaseTimes::default(),
            handshake,
            chain,
            verdict: None,
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            weaknesses: Vec::new(),
            revocation: None,
            host: None,
        }
    }

    /// The label value of `name` in one exposition line.
    fn label<'a>(line: &'a str, name: &str) -> &'a str {
        let start = line.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        &line[start..start + line[start..].find('"').expect("closing quote")]
    }

    #[test]
    fn every_sample_carries_its_own_targets_labels_and_certificates() {
        let yaml = "targets:\n  - {address: \"127.0.0.1:1\", name: two}\n  - {address: \"127.0.0.1:2\", name: failed, labels: {team: x}}\n  - {address: \"127.0.0.1:3\", name: one}\n";
        let config = Config::from_yaml(yaml, "t.yml", Path::new(".")).expect("valid");
        let tls = || {
            Ok(TlsParams {
                version: "TLSv1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
            })
        };
        let outcomes = [
            address(vec![cert("two-leaf"), cert("two-ca")], tls()),
            address(
                vec![],
                Err(Failure::new(
                    FailureKind::Connect(ConnectReason::Refused),
                    "refused",
                )),
            ),
            address(vec![cert("one-leaf")], tls()),
        ];
        let store = crate::store::Store::default();
        for (spec, address) in config.targets.iter().zip(outcomes) {
            let observation = Observation::Endpoint {
                spec: spec.clone(),
                outcome: ProbeOutcome {
                    addresses: vec![address],
                    cut: Default::default(),
                },
                served: None,
            };
            store.record(observation, || true);
        }
        let mut entries = store.snapshot();
        // File order, not the store's name order.
        let order = ["two", "failed", "one"];
        entries.sort_by_key(|e| order.iter().position(|n| *n == e.name()));
        let mut out = String::new();
        let collector = Collector::default();
        collector.render(&entries, SystemTime::now(), &mut out);

        let lines = |family: &str| -> Vec<&str> {
            out.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .collect()
        };
        let infos: Vec<(&str, &str, &str)> = lines(CERT_INFO)
            .iter()
            .map(|l| {
                (
                    label(l, "target"),
                    label(l, "depth"),
                    label(l, "subject_cn"),
                )
            })
            .collect();
        assert_eq!(
            infos,
            [
                ("two", "0", "two-leaf"),
                ("two", "1", "two-ca"),
                ("one", "0", "one-leaf")
            ]
        );
        let expiry_targets: Vec<&str> = lines(CERT_EXPIRY)
            .iter()
            .map(|l| label(l, "target"))
            .collect();
        assert_eq!(expiry_targets, ["two", "two", "one"]);
        let tls_targets: Vec<&str> = lines(TLS_INFO).iter().map(|l| label(l, "target")).collect();
        assert_eq!(tls_targets, ["two", "one"]);
        let failed = lines(PROBE_FAILURE_INFO);
        assert_eq!(failed.len(), 1, "{out}");
        assert_eq!(
            (
                label(failed[0], "target"),
                label(failed[0], "team"),
                label(failed[0], "reason")
            ),
            ("failed", "x", "refused")
        );
        assert!(lines(HANDSHAKE_SUCCESS).iter().all(|l| l.ends_with(
            if label(l, "target") == "failed" {
                " 0"
            } else {
                " 1"
            }
        )));
    }

    fn stored(n: usize) -> Vec<Arc<Entry>> {
        let yaml: String = (0..n)
            .map(|i| format!("  - {{address: \"127.0.0.1:{}\"}}\n", i + 1))
            .collect();
        let config = Config::from_yaml(&format!("targets:\n{yaml}"), "t.yml", Path::new("."))
            .expect("valid");
        let store = crate::store::Store::default();
        for spec in &config.targets {
            let tls = Ok(TlsParams {
                version: "TLSv1.3",
                cipher: "TLS_AES_128_GCM_SHA256",
            });
            store.record(
                Observation::Endpoint {
                    spec: spec.clone(),
                    outcome: ProbeOutcome {
                        addresses: vec![address(vec![cert("leaf"), cert("ca")], tls)],
                        cut: Default::default(),
                    },
                    served: None,
                },
                || true,
            );
        }
        store.snapshot()
    }

    #[test]
    fn rendering_in_chunks_gives_the_same_text_as_in_one_go() {
        let entries = stored(50);
        let collector = Collector::default();
        let now = SystemTime::now();
        let mut whole = String::new();
        collector.render(&entries, now, &mut whole);
        let mut render = Render::new(
            Frame::new(&collector.prepare(&entries)),
            now,
            Scope::Scheduled,
        );
        let (mut pieced, mut chunks) = (String::new(), 0);
        loop {
            let mut chunk = String::new();
            let more = render.next_chunk(&mut chunk, 1000);
            assert!(
                chunk.len() < 1000 + 2048,
                "a chunk stops after the row that reaches its limit: {}",
                chunk.len()
            );
            pieced.push_str(&chunk);
            chunks += 1;
            if !more {
                break;
            }
        }
        assert!(chunks > 10, "{chunks} chunks");
        assert_eq!(pieced, whole);
        assert_eq!(whole.matches("# TYPE certwatch_cert_info gauge").count(), 1);
    }

    #[test]
    fn prepared_series_are_kept_until_their_entry_is_replaced() {
        let entries = stored(3);
        let collector = Collector::default();
        let first = collector.prepare(&entries);
        let again = collector.prepare(&entries);
        assert!(first.iter().zip(&again).all(|(a, b)| Arc::ptr_eq(a, b)));
        let fewer = collector.prepare(&entries[..1]);
        assert_eq!(fewer.len(), 1);
        assert_eq!(
            collector.prepared.lock().unwrap().len(),
            1,
            "removed targets are forgotten"
        );
    }

    #[test]
    fn an_ad_hoc_render_leaves_out_the_schedule_families() {
        let entries = stored(1);
        let Observation::Endpoint { spec, outcome, .. } = &entries[0].observation else {
            panic!("an endpoint");
        };
        let body = render_outcome(spec, outcome, SystemTime::now());
        assert!(body.contains(CERT_EXPIRY));
        assert!(
            !body.contains(PROBES_TOTAL) && !body.contains(PROBE_INTERVAL),
            "{body}"
        );
    }

    #[test]
    fn probe_counters_resume_when_an_address_comes_back() {
        let config = Config::from_yaml(
            "targets:\n  - {address: \"localhost:1\", name: t}\n",
            "t.yml",
            Path::new("."),
        )
        .expect("valid");
        let spec = config.targets[0].clone();
        let refused = || {
            Err(Failure::new(
                FailureKind::Connect(ConnectReason::Refused),
                "refused",
            ))
        };
        let at = |ip: Option<std::net::IpAddr>| {
            let mut a = address(vec![], refused());
            a.ip = ip;
            Observation::Endpoint {
                spec: spec.clone(),
                outcome: ProbeOutcome {
                    addresses: vec![a],
                    cut: Default::default(),
                },
                served: None,
            }
        };
        let store = crate::store::Store::default();
        let collector = Collector::default();
        let ip = Some(std::net::IpAddr::from([127, 0, 0, 1]));
        let failures = |store: &crate::store::Store| {
            let mut out = String::new();
            collector.render(&store.snapshot(), SystemTime::now(), &mut out);
            out.lines()
                .filter(|l| l.starts_with(PROBES_TOTAL) && l.contains("result=\"failure\""))
                .map(|l| {
                    (
                        label(l, "ip").to_owned(),
                        l.rsplit(' ').next().unwrap_or("").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        store.record(at(ip), || true);
        assert_eq!(failures(&store), [("127.0.0.1".to_owned(), "1".to_owned())]);
        store.record(at(None), || true);
        assert_eq!(
            failures(&store),
            [(String::new(), "1".to_owned())],
            "a resolve failure is its own series"
        );
        store.record(at(ip), || true);
        assert_eq!(
            failures(&store),
            [("127.0.0.1".to_owned(), "2".to_owned())],
            "the address's counter resumes, it does not restart"
        );
    }

    #[test]
    fn file_rows_take_the_certificate_families_with_path_and_entry_and_no_probe_families() {
        use crate::files::{Bundle, FileError, FileReport, FilesOutcome, ReadReason};
        let config = Config::from_yaml(
            "files:\n  - {name: disk, paths: [\"/certs/*\"], labels: {team: t}}\n",
            "t.yml",
            Path::new("/"),
        )
        .expect("valid");
        let many: Vec<Arc<ParsedCert>> = (0..20).map(|i| cert(&format!("c{i}"))).collect();
        let bundle = |entry: Option<&str>, certs: Vec<Arc<ParsedCert>>| Bundle {
            entry: entry.map(str::to_owned),
            certs,
            verdict: None,
        };
        let outcome = FilesOutcome {
            files: vec![
                Arc::new(FileReport {
                    path: "/certs/bundle.pem".into(),
                    bundles: vec![bundle(None, many)],
                    error: None,
                }),
                Arc::new(FileReport {
                    path: "/certs/kubeconfig".into(),
                    bundles: vec![
                        bundle(Some("clusters/prod"), vec![cert("ca")]),
                        bundle(Some("users/admin"), vec![cert("admin")]),
                    ],
                    error: None,
                }),
                Arc::new(FileReport::failed(
                    "/certs/broken.p12".into(),
                    FileError::new(ReadReason::BadPassword, "wrong"),
                )),
            ],
            matched: 3,
            skipped: 0,
            finished_at: Some(SystemTime::now()),
            duration: Duration::from_millis(1),
        };
        let store = crate::store::Store::default();
        store.record(
            Observation::Files {
                spec: config.files[0].clone(),
                outcome,
            },
            || true,
        );
        let mut out = String::new();
        Collector::default().render(&store.snapshot(), SystemTime::now(), &mut out);
        let lines = |family: &str| -> Vec<&str> {
            out.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .collect()
        };
        let expiry = lines(CERT_EXPIRY);
        assert_eq!(expiry.len(), 22, "{out}");
        assert!(expiry.iter().all(|l| !l.contains("ip=")));
        assert!(expiry
            .iter()
            .any(|l| label(l, "depth") == "19" && label(l, "path") == "/certs/bundle.pem"));
        let entries: Vec<&str> = lines(CERT_INFO)
            .iter()
            .filter(|l| l.contains("entry="))
            .map(|l| label(l, "entry"))
            .collect();
        assert_eq!(entries, ["clusters/prod", "users/admin"]);
        let health: Vec<(&str, &str)> = lines(FILE_READ_SUCCESS)
            .iter()
            .map(|l| (label(l, "path"), l.rsplit(' ').next().unwrap()))
            .collect();
        assert_eq!(
            health,
            [
                ("/certs/bundle.pem", "1"),
                ("/certs/kubeconfig", "1"),
                ("/certs/broken.p12", "0")
            ],
            "one read health per file, kubeconfig entries included once"
        );
        assert_eq!(lines(FILE_READ_ERROR_INFO).len(), 1);
        assert!(lines(FILE_READ_ERROR_INFO)[0].contains("reason=\"bad_password\""));
        assert_eq!(
            lines(FILES_MATCHED),
            ["certwatch_files_matched{target=\"disk\",team=\"t\"} 3"]
        );
        assert_eq!(lines(PROBE_INTERVAL).len(), 1, "the source's interval");
        // Each bundle's first expiry, for the shipped expiry rules; none for a file
        // read whole into entries, nor for one that was not read.
        let chains: Vec<(&str, &str)> = lines(CHAIN_EXPIRY)
            .iter()
            .map(|l| {
                let entry = if l.contains("entry=") {
                    label(l, "entry")
                } else {
                    ""
                };
                (label(l, "path"), entry)
            })
            .collect();
        assert_eq!(
            chains,
            [
                ("/certs/bundle.pem", ""),
                ("/certs/kubeconfig", "clusters/prod"),
                ("/certs/kubeconfig", "users/admin")
            ]
        );
        // rcgen's certificates are valid from 1975 to 4096: an endpoint's leaf would
        // have lifetime_over_398_days, a file's first certificate has no such finding.
        assert!(lines(CERT_WEAKNESS_INFO).is_empty(), "{out}");
        for endpoint_only in [
            HANDSHAKE_SUCCESS,
            PROBE_SUCCESS,
            PROBE_DURATION,
            PROBES_TOTAL,
            VERIFIED_CHAIN_EXPIRY,
            LEGACY_ONLY,
            CHAIN_ISSUE_INFO,
            CERT_ON_VERIFIED_PATH,
        ] {
            assert!(lines(endpoint_only).is_empty(), "{endpoint_only}: {out}");
        }
        assert!(
            lines(CHAIN_VERIFIED).is_empty(),
            "no verdict with trust: none"
        );
    }

    #[test]
    fn a_legacy_only_probe_reports_its_failure_chain_choice_and_findings() {
        use crate::probe::outcome::{ChainIssue, HandshakeReason, Weakness};
        let config = Config::from_yaml(
            "targets:\n  - {address: \"127.0.0.1:1\", name: idrac}\n",
            "t.yml",
            Path::new("."),
        )
        .expect("valid");
        let mut a = address(
            vec![cert("leaf"), cert("ca"), cert("old root")],
            Err(Failure::new(
                FailureKind::Handshake(HandshakeReason::ProtocolVersion),
                "protocol_version",
            )),
        );
        a.legacy = Some(TlsParams {
            version: "TLSv1.0",
            cipher: "TLS_RSA_WITH_AES_128_CBC_SHA",
        });
        a.verdict = Some(Verdict::Verified {
            path_not_after: 0,
            path: vec![0, 1],
        });
        a.chain_issues = vec![ChainIssue::Unrelated, ChainIssue::TooLong];
        a.weaknesses = vec![(0, Weakness::Sha1Signature), (2, Weakness::RsaKeyUnder2048)];
        let outcome = ProbeOutcome {
            addresses: vec![a],
            cut: Default::default(),
        };
        let body = render_outcome(&config.targets[0], &outcome, SystemTime::now());
        let lines = |family: &str| -> Vec<&str> {
            body.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .collect()
        };
        assert_eq!(
            lines(HANDSHAKE_SUCCESS),
            [format!(
                "{HANDSHAKE_SUCCESS}{{target=\"idrac\",ip=\"127.0.0.1\"}} 0"
            )]
        );
        assert_eq!(
            lines(LEGACY_ONLY),
            [format!(
                "{LEGACY_ONLY}{{target=\"idrac\",ip=\"127.0.0.1\"}} 1"
            )]
        );
        assert_eq!(label(lines(TLS_INFO)[0], "version"), "TLSv1.0");
        assert_eq!(
            label(lines(PROBE_FAILURE_INFO)[0], "reason"),
            "protocol_version"
        );
        let issues: Vec<&str> = lines(CHAIN_ISSUE_INFO)
            .iter()
            .map(|l| label(l, "issue"))
            .collect();
        assert_eq!(issues, ["unrelated", "too_long"]);
        let weak: Vec<(&str, &str)> = lines(CERT_WEAKNESS_INFO)
            .iter()
            .map(|l| (label(l, "depth"), label(l, "weakness")))
            .collect();
        assert_eq!(weak, [("0", "sha1_signature"), ("2", "rsa_key_under_2048")]);
        let on_path: Vec<(&str, &str)> = lines(CERT_ON_VERIFIED_PATH)
            .iter()
            .map(|l| (label(l, "depth"), l.rsplit(' ').next().unwrap_or("")))
            .collect();
        assert_eq!(on_path, [("0", "1"), ("1", "1"), ("2", "0")]);
        // A refused connection: nothing is known of legacy TLS.
        let refused = address(
            vec![],
            Err(Failure::new(
                FailureKind::Connect(ConnectReason::Refused),
                "refused",
            )),
        );
        let body = render_outcome(
            &config.targets[0],
            &ProbeOutcome {
                addresses: vec![refused],
                cut: Default::default(),
            },
            SystemTime::now(),
        );
        assert!(!body.contains(&format!("{LEGACY_ONLY}{{")), "{body}");
    }

    #[test]
    fn every_depth_of_the_longest_chain_kept_has_its_label() {
        assert_eq!(DEPTH_LABELS.len(), crate::probe::legacy::MAX_CERTIFICATES);
        for (depth, label) in DEPTH_LABELS.iter().enumerate() {
            assert_eq!(*label, format!("depth=\"{depth}\""));
        }
        for (issue, label) in ChainIssue::ALL.iter().zip(ISSUE_LABELS) {
            assert_eq!(label, format!("issue=\"{}\"", issue.as_label()));
        }
        for (weakness, label) in Weakness::ALL.iter().zip(WEAKNESS_LABELS) {
            assert_eq!(label, format!("weakness=\"{}\"", weakness.as_label()));
        }
    }

    #[test]
    fn dns_names_are_comma_wrapped_escaped_and_bounded() {
        assert_eq!(
            dns_names_value(&["a.example".into(), "b.example".into()]),
            ",a.example,b.example,"
        );
        // One SAN with a comma is not two SANs; `%` is escaped so `%2C` stays itself.
        let one = dns_names_value(&["a.example,b.example".into()]);
        assert_eq!(one, ",a.example%2Cb.example,");
        assert_ne!(
            one,
            dns_names_value(&["a.example".into(), "b.example".into()])
        );
        assert_eq!(
            dns_names_value(&["100%2C.example".into(), "*.example".into()]),
            ",100%252C.example,*.example,"
        );
        assert_eq!(dns_names_value(&[]), "");
        let many: Vec<String> = (0..500).map(|i| format!("host-{i}.example.com")).collect();
        let value = dns_names_value(&many);
        assert!(
            value.len() <= MAX_DNS_NAMES_VALUE && value.ends_with(','),
            "{}",
            value.len()
        );
        // The bound counts the escaped length.
        let commas = vec![",".repeat(300); 2];
        let value = dns_names_value(&commas);
        assert_eq!(value, format!(",{},", "%2C".repeat(300)));
    }
}
