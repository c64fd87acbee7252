//! The transcript of one probe, for the person debugging it: `GET /probe?debug=true`
//! and `certwatch check --verbose`.
//!
//! Recording: [`recorded`] runs a probe with a [`Transcript`] in a tokio task-local
//! slot (as `probe::tls` keeps its `HANDSHAKE` slot), and the stages reach it through
//! the free functions of this module, without a parameter threaded through every
//! signature: `probe::line_io` records each line or binary message it reads and writes
//! (a proxy's HTTP CONNECT exchange included), `probe::execute` the plan (the MX or
//! SRV answer, each host's addresses, what the caps left out) and each connect,
//! [`through`] a proxy's tunnel, `probe::tls` the handshake. [`for_address`] gives each
//! connection of a probe a log of its own ([`Place`]: the host and the address), so
//! that the addresses of one name, probed at once, do not interleave. Outside [`recorded`], every
//! recording function is one failed task-local lookup that formats nothing: scheduled
//! probes pay nothing for this module.
//!
//! Stages added by other modules report through [`note`] with their [`Topic`]
//! ([`Topic::Revocation`], [`Topic::Hygiene`], ...); the rendering prints each topic's
//! notes in its own place.
//!
//! Bounds and safety: a log keeps at most [`MAX_LINES`] lines of dialogue (the server's
//! and certwatch's together; the rest are counted, not kept) and [`MAX_NOTES`] notes,
//! and each line's own text is cut at [`MAX_LINE_BYTES`] bytes, so a server that sends
//! an endless banner costs a bounded transcript. Every piece of server text is made
//! printable ([`crate::printable`]) when it is recorded, binary messages are shown as
//! escaped bytes, and what certwatch sends is recorded after [`redact`] has removed
//! anything that could be a credential. Nothing here ever sees a private key: the
//! transcript names the client certificate by its subject only.
//!
//! Rendering: [`Transcript::render`] writes the recorded events together with what the
//! probe's [`ProbeOutcome`] holds (TLS parameters, certificates, verdict, phase times).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::Dest;
use super::outcome::{AddressOutcome, Failure, Phase, ProbeOutcome, Verdict};
use crate::cert::{list_item, rfc3339, ParsedCert, NO_WELL_DEFINED_EXPIRATION};
use crate::config::TargetSpec;
use crate::printable::is_unsafe;
use crate::trust::BaseAnchors;

/// The most lines of dialogue (the server's and certwatch's) one log keeps.
pub const MAX_LINES: usize = 200;
/// The most bytes of one line's own text, cut mark included.
pub const MAX_LINE_BYTES: usize = 512;
/// The most notes one log keeps.
pub const MAX_NOTES: usize = 64;
/// The most bytes of one binary message kept: escaped, each takes at most 4 bytes,
/// and the count in front of them fits in what is left of [`MAX_LINE_BYTES`].
const BYTES_KEPT: usize = 120;
/// Room kept at the end of a cut line for the cut mark.
const CUT_MARK_ROOM: usize = 32;

/// Who said a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaker {
    /// The server probed.
    Server,
    /// certwatch.
    Certwatch,
}

impl Speaker {
    const fn tag(self) -> &'static str {
        match self {
            Speaker::Server => "S:",
            Speaker::Certwatch => "C:",
        }
    }
}

/// What a note is about; each topic has its place in the rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// Name resolution (and, later, DNS discovery).
    Resolve,
    /// Reaching the address: the TCP connect, a proxy.
    Connect,
    /// The TLS handshake (and a legacy ClientHello, when one is tried).
    Tls,
    /// Revocation (OCSP, CRL) findings.
    Revocation,
    /// Chain and key hygiene findings.
    Hygiene,
}

impl Topic {
    const fn label(self) -> &'static str {
        match self {
            Topic::Resolve => "resolve",
            Topic::Connect => "connect",
            Topic::Tls => "tls",
            Topic::Revocation => "revocation",
            Topic::Hygiene => "hygiene",
        }
    }
}

/// One recorded event, stamped with the time since the probe started.
#[derive(Clone, Debug)]
enum Event {
    /// A line of dialogue, printable and cut.
    Line {
        at: Duration,
        speaker: Speaker,
        text: String,
    },
    /// A binary message: its first bytes and how many there were.
    Bytes {
        at: Duration,
        speaker: Speaker,
        kept: Vec<u8>,
        total: usize,
    },
    /// The first line of dialogue not kept.
    Omitted { at: Duration },
    /// What the TLS handshake observed beside its result.
    Tls {
        at: Duration,
        alpn: Option<String>,
        client_auth_requested: bool,
    },
    /// A stage's note, printable and cut.
    Note {
        at: Duration,
        topic: Topic,
        text: String,
    },
}

/// The events of one address (or of the probe as a whole), bounded.
#[derive(Clone, Debug, Default)]
struct Log {
    events: Vec<Event>,
    lines: usize,
    omitted: usize,
    notes: usize,
    notes_omitted: usize,
}

impl Log {
    fn line(&mut self, at: Duration, speaker: Speaker, text: String) {
        if self.room(at) {
            self.events.push(Event::Line { at, speaker, text });
        }
    }

    /// Whether one more line of dialogue is kept; counts it either way.
    fn room(&mut self, at: Duration) -> bool {
        if self.lines < MAX_LINES {
            self.lines += 1;
            return true;
        }
        if self.omitted == 0 {
            self.events.push(Event::Omitted { at });
        }
        self.omitted += 1;
        false
    }

    /// A binary message, joined to the one before when the same speaker sent both
    /// with nothing in between (a header and its body read one after the other).
    fn bytes(&mut self, at: Duration, speaker: Speaker, bytes: &[u8]) {
        if let Some(Event::Bytes {
            speaker: last,
            kept,
            total,
            ..
        }) = self.events.last_mut()
        {
            if *last == speaker {
                let room = BYTES_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
                *total = total.saturating_add(bytes.len());
                return;
            }
        }
        if self.room(at) {
            self.events.push(Event::Bytes {
                at,
                speaker,
                kept: bytes[..bytes.len().min(BYTES_KEPT)].to_vec(),
                total: bytes.len(),
            });
        }
    }

    fn note(&mut self, event: Event) {
        if self.notes < MAX_NOTES {
            self.notes += 1;
            self.events.push(event);
        } else {
            self.notes_omitted += 1;
        }
    }
}

/// What one probe did, as recorded by [`recorded`].
#[derive(Debug)]
pub struct Transcript {
    origin: Instant,
    /// Events outside any one address (the resolution).
    general: Log,
    /// Each connection's events, in the order their probes finished.
    addresses: Vec<(Place, Log)>,
}

/// Where one connection of a probe went: for a discovered target, the host (its
/// `host` label), and the address connected to (or the name a `socks5h` proxy
/// resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// The `host` label of a discovered target's host.
    pub host: Option<String>,
    /// The address, or the name left to the proxy.
    pub dest: Dest,
}

impl From<IpAddr> for Place {
    fn from(ip: IpAddr) -> Self {
        Place {
            host: None,
            dest: Dest::Ip(ip),
        }
    }
}

impl Place {
    /// Whether `address` is the outcome of the connection made here.
    fn holds(&self, address: &AddressOutcome) -> bool {
        let host = address.host.as_ref().map(|h| h.label.as_str());
        self.host.as_deref() == host
            && match (&self.dest, address.ip) {
                (Dest::Ip(ip), Some(probed)) => *ip == probed,
                // A name left to the proxy: the outcome has no address.
                (Dest::Name(_), None) => true,
                _ => false,
            }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Dest::Ip(ip) => write!(f, "{ip}")?,
            Dest::Name(name) => write!(
                f,
                "{} (resolved by the proxy)",
                crate::printable::printable(name)
            )?,
        }
        match &self.host {
            Some(host) => write!(f, " of {}", crate::printable::printable(host)),
            None => Ok(()),
        }
    }
}

tokio::task_local! {
    /// The transcript being recorded by this task, when one is.
    static RECORDER: RefCell<Transcript>;
}

impl Transcript {
    fn starting_at(origin: Instant) -> Self {
        Transcript {
            origin,
            general: Log::default(),
            addresses: Vec::new(),
        }
    }

    /// How many lines of dialogue were recorded over all addresses (kept or not).
    pub fn dialogue_lines(&self) -> usize {
        self.addresses
            .iter()
            .map(|(_, log)| log.lines + log.omitted)
            .sum()
    }
}

/// Runs `probe` (a `probe::run`) while recording its transcript.
pub async fn recorded<F: Future>(probe: F) -> (F::Output, Transcript) {
    let origin = Instant::now();
    RECORDER
        .scope(RefCell::new(Transcript::starting_at(origin)), async move {
            let output = probe.await;
            let transcript = RECORDER.with(|t| t.replace(Transcript::starting_at(origin)));
            (output, transcript)
        })
        .await
}

/// Whether a transcript is being recorded by this task.
pub fn is_recording() -> bool {
    RECORDER.try_with(|_| ()).is_ok()
}

/// Runs `probe`, the probe of one connection (one address of one host), with a log
/// of its own when a transcript is being recorded.
pub async fn for_address<F: Future>(place: impl Into<Place>, probe: F) -> F::Output {
    let place = place.into();
    let Ok(origin) = RECORDER.try_with(|t| t.borrow().origin) else {
        return probe.await;
    };
    let (output, log) = RECORDER
        .scope(RefCell::new(Transcript::starting_at(origin)), async move {
            let output = probe.await;
            let log = RECORDER.with(|t| std::mem::take(&mut t.borrow_mut().general));
            (output, log)
        })
        .await;
    let _ = RECORDER.try_with(|t| t.borrow_mut().addresses.push((place, log)));
    output
}

/// Records into the current log, when a transcript is being recorded.
fn with_log(record: impl FnOnce(Duration, &mut Log)) {
    let _ = RECORDER.try_with(|t| {
        let mut t = t.borrow_mut();
        let at = t.origin.elapsed();
        record(at, &mut t.general);
    });
}

/// A line the server sent (without its line end).
pub fn received_line(line: &str) {
    with_log(|at, log| log.line(at, Speaker::Server, shown(line)));
}

/// Bytes of a binary message the server sent.
pub fn received_bytes(bytes: &[u8]) {
    with_log(|at, log| log.bytes(at, Speaker::Server, bytes));
}

/// A piece of text the server sent without line ends (an XMPP element).
pub fn received_text(bytes: &[u8]) {
    with_log(|at, log| {
        log.line(at, Speaker::Server, shown(&String::from_utf8_lossy(bytes)));
    });
}

/// What certwatch sent: one line of dialogue per line of text, or one binary message.
pub fn sent(bytes: &[u8]) {
    with_log(|at, log| match text_lines(bytes) {
        Some(lines) => {
            for line in lines {
                log.line(at, Speaker::Certwatch, shown(&redact(line)));
            }
        }
        None => log.bytes(at, Speaker::Certwatch, bytes),
    });
}

/// A note of `topic`; `text` is called only when a transcript is being recorded.
pub fn note(topic: Topic, text: impl FnOnce() -> String) {
    with_log(|at, log| {
        log.note(Event::Note {
            at,
            topic,
            text: shown(&text()),
        });
    });
}

/// What the TLS handshake observed beside its result.
pub fn handshake_observed(alpn: Option<&[u8]>, client_auth_requested: bool) {
    with_log(|at, log| {
        log.note(Event::Tls {
            at,
            alpn: alpn.map(|p| shown(&String::from_utf8_lossy(p))),
            client_auth_requested,
        });
    });
}

/// Runs `connect` (the TCP connect to `addr`), noting its start and its end.
pub async fn connect<F>(addr: SocketAddr, connect: F) -> F::Output
where
    F: Future<Output = Result<TcpStream, Failure>>,
{
    if !is_recording() {
        return connect.await;
    }
    let started = Instant::now();
    note(Topic::Connect, || format!("to {addr}"));
    let result = connect.await;
    note(Topic::Connect, || match &result {
        Ok(stream) => match stream.local_addr() {
            Ok(local) => format!("connected from {local} in {}", millis(started.elapsed())),
            Err(_) => format!("connected in {}", millis(started.elapsed())),
        },
        Err(failure) => format!("failed in {}: {failure}", millis(started.elapsed())),
    });
    result
}

/// Runs `tunnel` (opening a tunnel through the proxy `proxy` to `to`), noting its
/// start and its end. The proxy's own connect is noted by [`connect`], an HTTP CONNECT
/// exchange line by line (credentials redacted).
pub async fn through<T, F>(proxy: &str, to: &str, tunnel: F) -> F::Output
where
    F: Future<Output = Result<T, Failure>>,
{
    if !is_recording() {
        return tunnel.await;
    }
    let started = Instant::now();
    note(Topic::Connect, || {
        format!("through the proxy {proxy} to {to}")
    });
    let result = tunnel.await;
    note(Topic::Connect, || match &result {
        Ok(_) => format!(
            "the proxy opened the tunnel to {to} in {}",
            millis(started.elapsed())
        ),
        Err(failure) => format!(
            "no tunnel through the proxy in {}: {failure}",
            millis(started.elapsed())
        ),
    });
    result
}

/// `bytes` as lines of text, when they are text: UTF-8 with no control character but
/// the line ends and tabs.
fn text_lines(bytes: &[u8]) -> Option<Vec<&str>> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.contains(|c: char| is_unsafe(c) && !matches!(c, '\r' | '\n' | '\t')) {
        return None;
    }
    let text = text.strip_suffix('\n').unwrap_or(text);
    Some(
        text.split('\n')
            .map(|line| line.strip_suffix('\r').unwrap_or(line))
            .collect(),
    )
}

/// A line certwatch sends, with anything that could be a credential replaced: the
/// value of an `Authorization` or `Proxy-Authorization` header, what follows the
/// mechanism of `AUTH`/`AUTHENTICATE`, the password of `LOGIN`, the argument of
/// `PASS`. certwatch's own dialects send none of these; the rule stands for any
/// stage that ever does (a proxy's `CONNECT`, for one).
pub fn redact(line: &str) -> Cow<'_, str> {
    const REDACTED: &str = "[redacted]";
    for header in ["authorization:", "proxy-authorization:"] {
        if line
            .get(..header.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(header))
        {
            return Cow::Owned(format!("{} {REDACTED}", &line[..header.len()]));
        }
    }
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    // A command is the first word, or the second after an IMAP tag.
    for (i, word) in words.iter().enumerate().take(2) {
        let keep = match word.to_ascii_uppercase().as_str() {
            // The mechanism stays: `AUTH TLS` (FTP) is certwatch's own command.
            "AUTH" | "AUTHENTICATE" => i + 2,
            // The user name stays.
            "LOGIN" => i + 2,
            "PASS" => i + 1,
            _ => continue,
        };
        if words.len() <= keep {
            return Cow::Borrowed(line);
        }
        return Cow::Owned(format!("{} {REDACTED}", words[..keep].join(" ")));
    }
    Cow::Borrowed(line)
}

/// `text` made printable and cut at [`MAX_LINE_BYTES`], never inside an escape.
fn shown(text: &str) -> String {
    let mut out = String::new();
    let mut piece = String::new();
    for (i, c) in text.char_indices() {
        piece.clear();
        if is_unsafe(c) {
            let _ = write!(piece, "{}", c.escape_default());
        } else {
            piece.push(c);
        }
        if out.len() + piece.len() > MAX_LINE_BYTES - CUT_MARK_ROOM
            && out.len() + printable_len(&text[i..]) > MAX_LINE_BYTES
        {
            let _ = write!(out, " … [{} bytes in all]", text.len());
            return out;
        }
        out.push_str(&piece);
    }
    out
}

/// The length of `text` once made printable.
fn printable_len(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if is_unsafe(c) {
                c.escape_default().count()
            } else {
                c.len_utf8()
            }
        })
        .sum()
}

/// A binary message as escaped bytes, with its length.
fn shown_bytes(kept: &[u8], total: usize) -> String {
    let mut out = format!("[{total} bytes] ");
    for byte in kept {
        let _ = write!(out, "{}", byte.escape_ascii());
    }
    if total > kept.len() {
        out.push_str(" …");
    }
    out
}

fn millis(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

impl Transcript {
    /// The transcript as text: what `spec` asked for, then per address every recorded
    /// event in order, the certificates, the verdict, the findings, the phase times
    /// and the result, as `outcome` has them. Dates and days left are taken at `now`.
    pub fn render(&self, spec: &TargetSpec, outcome: &ProbeOutcome, now: SystemTime) -> String {
        let mut out = String::new();
        header(&mut out, spec);
        let _ = writeln!(out);
        events(&mut out, &self.general, None);
        let mut logs: Vec<Option<&(Place, Log)>> = self.addresses.iter().map(Some).collect();
        for address in &outcome.addresses {
            // Each log goes with the first outcome of its connection not yet shown.
            let logged = logs
                .iter()
                .position(|l| l.is_some_and(|(place, _)| place.holds(address)))
                .and_then(|at| logs[at].take());
            let _ = writeln!(out);
            let host = address
                .host
                .as_ref()
                .map(|h| format!(" of {}", crate::printable::printable(&h.label)))
                .unwrap_or_default();
            match (logged, address.ip) {
                (Some((place, _)), _) => {
                    let _ = writeln!(out, "address {place}:");
                }
                (None, Some(ip)) => {
                    let _ = writeln!(out, "address {ip}{host}:");
                }
                (None, None) => {
                    let _ = writeln!(out, "address (not resolved){host}:");
                }
            }
            let log = logged.map(|(_, log)| log);
            if let Some(log) = log {
                events(&mut out, log, Some(address));
            }
            address_summary(&mut out, spec, address, log, now);
        }
        out
    }
}

fn header(out: &mut String, spec: &TargetSpec) {
    let printable = |s: &str| crate::printable::printable(s).into_owned();
    let _ = writeln!(
        out,
        "certwatch {} probe of {}",
        env!("CARGO_PKG_VERSION"),
        printable(&spec.name)
    );
    let _ = writeln!(out, "address:      {}", spec.address);
    if let Some(discover) = &spec.discover {
        let _ = writeln!(
            out,
            "discover:     every host of the {} records of {}",
            discover.record(),
            printable(discover.name())
        );
    }
    if let Some(proxy) = &spec.proxy {
        // The URL holds the user, never the password.
        let _ = writeln!(out, "proxy:        {}", printable(&proxy.url.to_string()));
    }
    if !spec.dns.servers.is_empty() {
        let servers: Vec<String> = spec.dns.servers.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "dns servers:  {}", servers.join(", "));
    }
    let _ = writeln!(
        out,
        "server name:  {}",
        printable(&spec.server_name.to_string())
    );
    let _ = writeln!(out, "starttls:     {}", spec.starttls);
    if let Some(domain) = &spec.xmpp_domain {
        let _ = writeln!(out, "xmpp domain:  {}", printable(domain));
    }
    let _ = writeln!(
        out,
        "resolve:      {}, ip_family {}",
        spec.resolve, spec.ip_family
    );
    let _ = writeln!(out, "revocation:   {}", spec.revocation);
    let _ = writeln!(
        out,
        "timeout:      {}",
        crate::config::PromDuration::from_duration(spec.timeout)
    );
    let base = match spec.tls.base() {
        BaseAnchors::Webpki => "webpki (the bundled Mozilla roots)".to_owned(),
        BaseAnchors::System(roots) => format!(
            "system ({} certificates of the operating system's store)",
            roots.certificates().len()
        ),
        BaseAnchors::None => "none".to_owned(),
    };
    let extra = match spec.tls.extra_anchors().len() {
        0 => String::new(),
        n => format!(", and {n} anchor(s) from ca_file"),
    };
    let _ = writeln!(out, "trust:        {base}{extra}");
    // The client certificate by its subject; its key never reaches a transcript.
    let client = spec.tls.client().map_or_else(
        || "none".to_owned(),
        |client| match client
            .chain
            .first()
            .map(|der| ParsedCert::from_der(der).info)
        {
            Some(Ok(info)) => printable(&info.subject),
            _ => "one that does not parse".to_owned(),
        },
    );
    let _ = writeln!(out, "client cert:  {client}");
}

/// The recorded events of `log`; a TLS event is completed by `address`'s result.
fn events(out: &mut String, log: &Log, address: Option<&AddressOutcome>) {
    for event in &log.events {
        match event {
            Event::Line { at, speaker, text } => {
                let _ = writeln!(out, "{:>10} {} {text}", millis(*at), speaker.tag());
            }
            Event::Bytes {
                at,
                speaker,
                kept,
                total,
            } => {
                let _ = writeln!(
                    out,
                    "{:>10} {} {}",
                    millis(*at),
                    speaker.tag(),
                    shown_bytes(kept, *total)
                );
            }
            Event::Omitted { at } => {
                let _ = writeln!(
                    out,
                    "{:>10} … {} more line(s) of dialogue not shown (a transcript keeps {MAX_LINES})",
                    millis(*at),
                    log.omitted
                );
            }
            Event::Tls {
                at,
                alpn,
                client_auth_requested,
            } => {
                let negotiated = match address.map(|a| &a.handshake) {
                    Some(Ok(tls)) => format!("{}, {}", tls.version, tls.cipher),
                    _ => "no session".to_owned(),
                };
                let alpn = alpn.as_deref().unwrap_or("none");
                let asked = if *client_auth_requested { "yes" } else { "no" };
                let _ = writeln!(
                    out,
                    "{:>10} tls: {negotiated}; ALPN {alpn}; client certificate requested: {asked}",
                    millis(*at)
                );
            }
            Event::Note { at, topic, text } => {
                // Findings are printed with the verdict, below.
                if !matches!(topic, Topic::Revocation | Topic::Hygiene) {
                    let _ = writeln!(out, "{:>10} {}: {text}", millis(*at), topic.label());
                }
            }
        }
    }
    if log.notes_omitted > 0 {
        let _ = writeln!(
            out,
            "           … {} more note(s) not shown (a transcript keeps {MAX_NOTES})",
            log.notes_omitted
        );
    }
}

fn address_summary(
    out: &mut String,
    spec: &TargetSpec,
    address: &AddressOutcome,
    log: Option<&Log>,
    now: SystemTime,
) {
    for (depth, cert) in address.chain.iter().enumerate() {
        certificate(out, depth, cert, now);
    }
    let printable = |s: &str| crate::printable::printable(s).into_owned();
    let verdict = match &address.verdict {
        Some(Verdict::Verified { path_not_after, .. }) => format!(
            "verified for {}; the verified path holds until {}",
            printable(&spec.server_name.to_string()),
            rfc3339(*path_not_after)
        ),
        Some(Verdict::Failed { reason, detail }) => {
            format!(
                "not verified ({}): {}",
                reason.as_label(),
                printable(detail)
            )
        }
        None if address.handshake.is_ok() => "the server presented no certificate".to_owned(),
        None => "no certificate arrived (see the result below)".to_owned(),
    };
    let _ = writeln!(out, "  verdict:     {verdict}");
    findings(out, "revocation:", revocation_findings(spec, address, log));
    findings(out, "hygiene:", hygiene_findings(address, log));
    let phases: Vec<String> = Phase::ALL
        .iter()
        .filter_map(|p| address.phases.get(*p).map(|d| format!("{p} {}", millis(d))))
        .collect();
    let _ = writeln!(
        out,
        "  phases:      {}; {} in all",
        phases.join(", "),
        millis(address.duration)
    );
    let result = match &address.handshake {
        Err(failure) => format!(
            "failed in {} ({}): {}",
            failure.kind.stage(),
            failure.kind.reason_label(),
            printable(&failure.detail)
        ),
        Ok(_) if address.verified() => "success".to_owned(),
        Ok(_) => "handshake completed, chain not verified".to_owned(),
    };
    let _ = writeln!(out, "  result:      {result}");
}

/// The revocation findings of `address`: whether the handshake carried a staple, then
/// each certificate checked by each source, with its answer and where the answer came
/// from (the staple, or the URL, when it was fetched and whether from the cache), then
/// the notes recorded under [`Topic::Revocation`].
fn revocation_findings(
    spec: &TargetSpec,
    address: &AddressOutcome,
    log: Option<&Log>,
) -> Vec<String> {
    let printable = |s: &str| crate::printable::printable(s).into_owned();
    let mut found = Vec::new();
    if let Some(revocation) = &address.revocation {
        found.push(
            match revocation.stapled {
                Some(true) => "the handshake carried a stapled OCSP response",
                Some(false) => "the handshake carried no stapled OCSP response",
                None if address.legacy.is_some() => {
                    "no staple asked for: the legacy hello does not ask for one"
                }
                None => "no staple looked for (ocsp off)",
            }
            .to_owned(),
        );
        if revocation.checks.is_empty() {
            let verified = matches!(address.verdict, Some(Verdict::Verified { .. }));
            found.push(if verified {
                format!(
                    "no certificate checked: no staple to read and nothing to fetch ({})",
                    spec.revocation
                )
            } else {
                "no certificate checked: only a chain that verifies is checked".to_owned()
            });
        }
        found.extend(revocation.checks.iter().map(|c| printable(&c.describe())));
    } else if !spec.revocation.enabled() && !address.chain.is_empty() {
        found.push(format!("not checked ({})", spec.revocation));
    }
    found.extend(topic_notes(log, Topic::Revocation));
    found
}

/// The chain and key hygiene findings of `address`: the notes recorded under
/// [`Topic::Hygiene`]. The place where findings the outcome carries are added.
fn hygiene_findings(address: &AddressOutcome, log: Option<&Log>) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(legacy) = &address.legacy {
        found.push(format!(
            "legacy TLS only: the legacy hello read the chain; the server chose {}, {}",
            legacy.version, legacy.cipher
        ));
    }
    if let Some(cut) = &address.chain_cut {
        found.push(format!(
            "chain cut after {} certificates: {}",
            cut.kept,
            crate::printable::printable(&cut.detail)
        ));
    }
    found.extend(
        address
            .chain_issues
            .iter()
            .map(|i| format!("chain issue {}", i.as_label())),
    );
    found.extend(
        address
            .weaknesses
            .iter()
            .map(|(depth, w)| format!("certificate {depth}: {}", w.as_label())),
    );
    found.extend(topic_notes(log, Topic::Hygiene));
    found
}

fn topic_notes(log: Option<&Log>, wanted: Topic) -> Vec<String> {
    log.map(|log| {
        log.events
            .iter()
            .filter_map(|e| match e {
                Event::Note { topic, text, .. } if *topic == wanted => Some(text.clone()),
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

fn findings(out: &mut String, title: &str, found: Vec<String>) {
    if found.is_empty() {
        let _ = writeln!(out, "  {title:<12} nothing to report");
    }
    for finding in found {
        let _ = writeln!(out, "  {title:<12} {finding}");
    }
}

fn certificate(out: &mut String, depth: usize, cert: &ParsedCert, now: SystemTime) {
    let printable = |s: &str| crate::printable::printable(s).into_owned();
    let role = if depth == 0 { "leaf" } else { "chain" };
    let _ = writeln!(out, "  certificate {depth} ({role}):");
    match &cert.info {
        Err(e) => {
            let _ = writeln!(out, "    {}", printable(&e.to_string()));
        }
        Ok(info) => {
            let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            let sans: Vec<String> = info
                .dns_names
                .iter()
                .map(|n| format!("DNS:{}", list_item(n)))
                .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
                .collect();
            let left = if info.not_after == NO_WELL_DEFINED_EXPIRATION {
                "no well-defined expiration date".to_owned()
            } else {
                format!("{:.1} days left", (info.not_after as f64 - now) / 86_400.0)
            };
            let bits = info
                .key
                .bits
                .map(|b| format!(" {b} bits"))
                .unwrap_or_default();
            let _ = writeln!(out, "    subject:   {}", printable(&info.subject));
            let _ = writeln!(out, "    issuer:    {}", printable(&info.issuer));
            let _ = writeln!(out, "    serial:    {}", info.serial_hex);
            let _ = writeln!(
                out,
                "    sans:      {}",
                if sans.is_empty() {
                    "(none)".to_owned()
                } else {
                    printable(&sans.join(", "))
                }
            );
            let _ = writeln!(
                out,
                "    valid:     {} to {} ({left})",
                rfc3339(info.not_before),
                rfc3339(info.not_after)
            );
            let _ = writeln!(out, "    key:       {}{bits}", info.key.algorithm);
            let _ = writeln!(
                out,
                "    signature: {}",
                printable(&info.signature_algorithm)
            );
        }
    }
    let _ = writeln!(out, "    sha256:    {}", cert.fingerprint_sha256);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_made_printable_and_cut_at_the_limit_never_inside_an_escape() {
        assert_eq!(shown("220 ok\u{1b}[2J"), "220 ok\\u{1b}[2J");
        let long = "x".repeat(10_000);
        let cut = shown(&long);
        assert!(cut.len() <= MAX_LINE_BYTES, "{}", cut.len());
        assert!(cut.ends_with(" … [10000 bytes in all]"), "{cut}");
        let escapes = "\u{7}".repeat(400);
        let cut = shown(&escapes);
        assert!(cut.len() <= MAX_LINE_BYTES);
        let kept = cut.split(" … ").next().unwrap();
        assert_eq!(kept.len() % "\\u{7}".len(), 0, "{kept}");
        // A line that fits after escaping is kept whole.
        let exact = "y".repeat(MAX_LINE_BYTES);
        assert_eq!(shown(&exact), exact);
    }

    #[test]
    fn credentials_certwatch_could_send_are_redacted() {
        assert_eq!(
            redact("Proxy-Authorization: Basic dXNlcjpzZWNyZXQ="),
            "Proxy-Authorization: [redacted]"
        );
        assert_eq!(
            redact("authorization: Bearer abc"),
            "authorization: [redacted]"
        );
        assert_eq!(redact("AUTH PLAIN AGEAc2VjcmV0"), "AUTH PLAIN [redacted]");
        assert_eq!(redact("a1 LOGIN alice secret"), "a1 LOGIN alice [redacted]");
        assert_eq!(redact("PASS secret"), "PASS [redacted]");
        // certwatch's own commands stay as they are.
        for line in [
            "AUTH TLS",
            "a002 STARTTLS",
            "EHLO certwatch.localhost",
            "STLS",
        ] {
            assert_eq!(redact(line), line);
        }
    }

    #[tokio::test]
    async fn nothing_is_recorded_outside_a_transcript() {
        assert!(!is_recording());
        // These are no-ops, and must not panic.
        received_line("220 hello");
        sent(b"EHLO x\r\n");
        note(Topic::Hygiene, || {
            unreachable!("not formatted when not recording")
        });
    }

    #[tokio::test]
    async fn an_endless_dialogue_keeps_the_first_lines_and_counts_the_rest() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let ((), transcript) = recorded(for_address(ip, async {
            for i in 0..10_000 {
                received_line(&format!("220-{i} {}", "z".repeat(2000)));
            }
            sent(b"QUIT\r\n");
        }))
        .await;
        let (_, log) = &transcript.addresses[0];
        let lines = log
            .events
            .iter()
            .filter(|e| matches!(e, Event::Line { .. }))
            .count();
        assert_eq!(lines, MAX_LINES);
        assert_eq!(log.omitted, 10_001 - MAX_LINES);
        assert_eq!(transcript.dialogue_lines(), 10_001);
        for event in &log.events {
            if let Event::Line { text, .. } = event {
                assert!(text.len() <= MAX_LINE_BYTES);
            }
        }
    }

    #[tokio::test]
    async fn addresses_probed_at_once_keep_their_own_logs() {
        let speak = |ip: &'static str| {
            for_address(ip.parse::<IpAddr>().unwrap(), async move {
                for i in 0..3 {
                    received_line(&format!("{ip} {i}"));
                    tokio::task::yield_now().await;
                }
            })
        };
        let ((), transcript) = recorded(async {
            futures_util::future::join(speak("192.0.2.1"), speak("2001:db8::1")).await;
        })
        .await;
        assert_eq!(transcript.addresses.len(), 2);
        for (ip, log) in &transcript.addresses {
            let lines: Vec<&str> = log
                .events
                .iter()
                .map(|e| match e {
                    Event::Line { text, .. } => text.as_str(),
                    other => panic!("{other:?}"),
                })
                .collect();
            let own = |i| format!("{ip} {i}");
            assert_eq!(lines, [own(0), own(1), own(2)], "{ip}");
        }
        assert!(transcript.general.events.is_empty());
    }

    #[tokio::test]
    async fn hosts_sharing_an_address_keep_their_own_logs_and_headings() {
        use crate::probe::outcome::{
            ConnectReason, DiscoveredHost, FailureKind, PhaseTimes, ResolveReason,
        };
        use std::sync::Arc;

        let spec = crate::config::one_off_target(
            "192.0.2.25:25".parse().unwrap(),
            None,
            Default::default(),
        )
        .unwrap();
        let ip: IpAddr = "192.0.2.25".parse().unwrap();
        let place = |host: &str| Place {
            host: Some(host.to_owned()),
            dest: Dest::Ip(ip),
        };
        let ((), transcript) = recorded(async {
            futures_util::future::join(
                for_address(place("mx1.test:25"), async {
                    received_line("220 mx1 here")
                }),
                for_address(place("mx2.test:25"), async {
                    received_line("220 mx2 here")
                }),
            )
            .await;
        })
        .await;
        let outcome = |host: &str, ip: Option<IpAddr>, kind| AddressOutcome {
            ip,
            finished_at: SystemTime::now(),
            duration: Duration::from_millis(1),
            phases: PhaseTimes::default(),
            handshake: Err(Failure::new(kind, "refused")),
            chain: Vec::new(),
            verdict: None,
            legacy: None,
            chain_cut: None,
            chain_issues: Vec::new(),
            weaknesses: Vec::new(),
            revocation: None,
            host: Some(Arc::new(DiscoveredHost {
                label: host.to_owned(),
                server_name: host.split(':').next().unwrap().to_owned(),
            })),
        };
        let refused = FailureKind::Connect(ConnectReason::Refused);
        let probe = ProbeOutcome {
            // Not in the order the logs were recorded: each finds its own by host.
            addresses: vec![
                outcome("mx2.test:25", Some(ip), refused),
                outcome("mx1.test:25", Some(ip), refused),
                outcome(
                    "mx3.test:25",
                    None,
                    FailureKind::Resolve(ResolveReason::NotFound),
                ),
            ],
            cut: Default::default(),
        };
        let text = transcript.render(&spec, &probe, SystemTime::now());
        let order = [
            "address 192.0.2.25 of mx2.test:25:\n",
            "S: 220 mx2 here\n",
            "address 192.0.2.25 of mx1.test:25:\n",
            "S: 220 mx1 here\n",
            "address (not resolved) of mx3.test:25:\n",
        ];
        let mut from = 0;
        for step in order {
            let at = text[from..]
                .find(step)
                .unwrap_or_else(|| panic!("{step:?} missing after byte {from}:\n{text}"));
            from += at + step.len();
        }
        assert_eq!(text.matches("220 mx1 here").count(), 1, "{text}");
    }

    #[tokio::test]
    async fn binary_messages_join_until_the_other_side_speaks() {
        let ((), transcript) = recorded(async {
            sent(&[0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]);
            received_bytes(b"N");
            received_bytes(&[0u8; 500]);
            sent(b"\x00\x01");
        })
        .await;
        let events = &transcript.general.events;
        assert_eq!(events.len(), 3, "{events:?}");
        let Event::Bytes { kept, total, .. } = &events[1] else {
            panic!("{events:?}");
        };
        assert_eq!((*total, kept.len()), (501, BYTES_KEPT));
        let shown = shown_bytes(kept, *total);
        assert!(shown.starts_with("[501 bytes] N\\x00\\x00"), "{shown}");
        assert!(shown.len() <= MAX_LINE_BYTES, "{}", shown.len());
    }
}
