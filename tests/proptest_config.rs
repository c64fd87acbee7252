//! Property tests of the configuration parser (issue 7, item 6).
//!
//! Whatever the text, `Config::from_yaml` answers with a configuration or a list of
//! problems, never a panic; when the text is well-formed YAML every problem carries a
//! line and column inside the text. Configurations generated from the schema resolve to
//! exactly what they say (target > module > defaults > built-in), and the single-value
//! parsers (`PromDuration`, `Address`, `LabelName`, `TlsName`, the keywords) accept what
//! they document and print what they parse. The inputs are near-valid on purpose: the
//! shipped configurations and a file using every key, mutated line by line, so the
//! cases reach resolution and `config::locate`, not only the YAML scanner. The same
//! seeds feed the `config_yaml` fuzz target under `fuzz/`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use certwatch::config::{
    Address, Config, ConfigError, Host, IpFamily, LabelName, PromDuration, ResolveMode, StartTls,
    TlsName, Trust, ValueError, XmppDomain,
};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config as Cases;

const ORIGIN: &str = "fuzz.yml";

/// `n` cases, or `PROPTEST_CASES` when set (for a longer run by hand).
fn cases(n: u32) -> Cases {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    Cases {
        // Integration tests have no lib.rs beside them for proptest's regression files;
        // a failure prints its minimal input, to be kept as a named test.
        failure_persistence: None,
        ..Cases::with_cases(n)
    }
}

/// A configuration that sets every key, with PEM files that exist in [`pem_dir`].
const EVERY_KEY: &str = r#"listen: "127.0.0.1:9798"
concurrency: 16
defaults:
  interval: 5m
  timeout: 10s
  trust: none
  starttls: none
  resolve: all
  ip_family: any
  tls:
    ca_file: ca.pem
modules:
  mail:
    starttls: smtp
    timeout: 15s
    tls:
      client_cert_file: client.pem
      client_key_file: client.key
  chat: {starttls: xmpp, xmpp_domain: example.org, resolve: first, ip_family: ipv6}
  ldap:
    starttls: ldap
    trust: webpki
probe:
  allow: ["*.example.com:443", "10.1.0.0/16:*", "[2001:db8::/32]:25"]
  rate_limit: 10/s
  max_in_flight: 4
targets:
  - address: "mail.example.com:587"
    module: mail
    name: "mail submission"
    server_name: mx.example.com
    labels: {team: mail, env: prod}
  - address: "[2001:db8::5]:5222"
    module: chat
    interval: 1h30m
    timeout: 500ms
  - address: 192.0.2.10:389
    module: ldap
    labels:
      tier: "directory"
  - {address: "imap.example.com:143", starttls: imap, trust: none, tls: {ca_file: ca.pem}}
  - address: "db.example.com:5432"
    starttls: postgres
    xmpp_domain: ignored.example
    resolve: first
    ip_family: ipv4
"#;

/// A directory holding `ca.pem`, `client.pem` and `client.key`, made once.
fn pem_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".into()]).expect("ca");
        let client = rcgen::generate_simple_self_signed(vec!["client".into()]).expect("client");
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).expect("write");
        std::fs::write(dir.path().join("client.pem"), client.cert.pem()).expect("write");
        std::fs::write(
            dir.path().join("client.key"),
            client.signing_key.serialize_pem(),
        )
        .expect("write");
        dir
    })
    .path()
}

/// The configurations every mutation starts from: the shipped ones and [`EVERY_KEY`].
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("config/certwatch.yml")];
    for entry in std::fs::read_dir(root.join("tests/configs")).expect("tests/configs") {
        files.push(entry.expect("entry").path());
    }
    files.sort();
    let mut seeds: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        // The shipped file's `trust: system` reads the OS store: slow and machine-bound.
        .map(|text| text.replace("trust: system", "trust: none"))
        .collect();
    seeds.push(EVERY_KEY.to_owned());
    seeds
}

/// Values a mutation writes where a value was: valid and invalid ones of every type,
/// and YAML that changes the structure.
const VALUES: &[&str] = &[
    "0",
    "0s",
    "500ms",
    "1h30m",
    "30m1h",
    "1y1w1d1h1m1s1ms",
    "18446744073709551615ms",
    "99999999999999999999y",
    "5M",
    "-5s",
    "[::1]:443",
    "\"[2001:db8::1]:0\"",
    "example.com",
    "-bad-.example:1",
    "a..b:1",
    "1.2.3.4:65536",
    "smtp",
    "xmpp_server",
    "SMTP",
    "system",
    "webpki",
    "first",
    "ipv6",
    "__name",
    "target",
    "9lives",
    "ca.pem",
    "client.key",
    "missing.pem",
    "/nonexistent/ca.pem",
    "\"\"",
    "''",
    "~",
    "null",
    "true",
    "-1",
    "18446744073709551616",
    "1e3",
    "0x10",
    ".inf",
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "&anchor 5m",
    "*anchor",
    "!!binary aGVsbG8=",
    "!custom x",
    "|\n  two\n  lines",
    "\"\\u0000\\x85\"",
    "'é ☃ 𝄞'",
    "\"a\\\"b\"",
    "0/s",
    "60/m",
    "10",
    "\"*:*\"",
    "\"10.0.0.0/33:*\"",
];

/// Bytes a mutation inserts: YAML's indicators and the characters scanners trip on.
const FRAGMENTS: &[&str] = &[
    ":",
    ": ",
    "- ",
    "-",
    "{",
    "}",
    "[",
    "]",
    ",",
    "&a ",
    "*a",
    "!!str ",
    "!",
    "\"",
    "'",
    "#",
    "\t",
    "\n",
    "\r\n",
    "\n---\n",
    "\n...\n",
    "<<: *a",
    "? ",
    "|",
    ">",
    "%YAML 1.2\n",
    "\\",
    "\u{feff}",
    "\u{85}",
    "\u{2028}",
    "\0",
    "  ",
    "@",
    "`",
];

/// One edit of a configuration text, positioned by [`Index`] so that it applies to any
/// text the earlier edits left.
#[derive(Clone, Debug)]
enum Mutation {
    /// Replaces what follows a line's first `: ` (or `- `) with a value.
    ReplaceValue(Index, &'static str),
    DeleteLine(Index),
    DuplicateLine(Index),
    /// Sets a line's indentation to this many spaces.
    Reindent(Index, usize),
    /// Inserts a fragment at a character position.
    Insert(Index, &'static str),
    /// Inserts a key no mapping has, at a line's indentation.
    UnknownKey(Index),
    /// Cuts the text at a character position.
    Truncate(Index),
    /// Swaps two lines.
    Swap(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), select(VALUES)).prop_map(|(i, v)| Mutation::ReplaceValue(i, v)),
        1 => any::<Index>().prop_map(Mutation::DeleteLine),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), 0usize..9).prop_map(|(i, n)| Mutation::Reindent(i, n)),
        2 => (any::<Index>(), select(FRAGMENTS)).prop_map(|(i, f)| Mutation::Insert(i, f)),
        1 => any::<Index>().prop_map(Mutation::UnknownKey),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let line = |i: &Index| i.index(lines.len());
    let char_at = |i: &Index| {
        let count = text.chars().count();
        text.char_indices()
            .nth(i.index(count + 1))
            .map_or(text.len(), |(at, _)| at)
    };
    match mutation {
        Mutation::ReplaceValue(i, value) => {
            let n = line(i);
            let old = &lines[n];
            let cut = old
                .find(": ")
                .map(|p| p + 2)
                .or_else(|| old.find("- ").map(|p| p + 2));
            if let Some(cut) = cut {
                lines[n] = format!("{}{value}", &old[..cut]);
            }
        }
        Mutation::DeleteLine(i) => {
            let n = line(i);
            lines.remove(n);
        }
        Mutation::DuplicateLine(i) => {
            let n = line(i);
            let copy = lines[n].clone();
            lines.insert(n, copy);
        }
        Mutation::Reindent(i, spaces) => {
            let n = line(i);
            let content = lines[n].trim_start().to_owned();
            lines[n] = format!("{}{content}", " ".repeat(*spaces));
        }
        Mutation::Insert(i, fragment) => {
            let at = char_at(i);
            return format!("{}{fragment}{}", &text[..at], &text[at..]);
        }
        Mutation::UnknownKey(i) => {
            let n = line(i);
            let indent = lines[n].len() - lines[n].trim_start_matches([' ', '-']).len();
            lines.insert(n, format!("{}certwatch_bogus: 1", " ".repeat(indent)));
        }
        Mutation::Truncate(i) => return text[..char_at(i)].to_owned(),
        Mutation::Swap(a, b) => {
            let (a, b) = (line(a), line(b));
            lines.swap(a, b);
        }
    }
    lines.join("\n")
}

/// Whether `text` is one well-formed YAML document, so that every problem can be placed.
///
/// serde_yaml (libyaml) places its own errors; `config::locate` places the others with
/// yaml-rust2, which refuses some texts libyaml accepts (a quoted scalar continued on a
/// line not indented past its key: see
/// `a_quoted_value_continued_at_its_key_indentation_keeps_its_position`), and then has
/// no position to give. Such texts are left out here until the two agree.
fn is_one_yaml_document(text: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Value>(text).is_ok()
        && yaml_rust2::YamlLoader::load_from_str(text).is_ok_and(|docs| docs.len() <= 1)
}

/// The checks every answer must pass, whatever the text.
fn check_answer(text: &str, result: Result<Config, ConfigError>) -> Result<(), TestCaseError> {
    match result {
        Ok(config) => {
            prop_assert!(config.concurrency >= 1);
            let mut names = HashSet::new();
            for target in &config.targets {
                prop_assert!(!target.name.trim().is_empty(), "empty name accepted");
                prop_assert!(
                    names.insert(target.name.clone()),
                    "duplicate {}",
                    target.name
                );
                prop_assert!(target.interval >= Duration::from_secs(1));
                prop_assert!(!target.timeout.is_zero());
                prop_assert!(target.timeout <= target.interval);
            }
        }
        Err(ConfigError::Read { .. }) => prop_assert!(false, "from_yaml reads no file"),
        Err(error @ ConfigError::Invalid { .. }) => {
            let ConfigError::Invalid { origin, problems } = &error else {
                unreachable!()
            };
            prop_assert_eq!(origin, ORIGIN);
            prop_assert!(!problems.is_empty(), "an error without problems");
            let listed = error.problems();
            prop_assert_eq!(listed.join("\n"), error.to_string());
            // YAML 1.1 also breaks lines at CR, NEL, LS and PS (libyaml counts them).
            let line_count = 1 + text
                .chars()
                .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
                .count();
            let well_formed = is_one_yaml_document(text);
            for (problem, line) in problems.iter().zip(&listed) {
                prop_assert!(!problem.message.trim().is_empty(), "empty message");
                prop_assert!(line.starts_with(ORIGIN));
                match problem.position {
                    Some(p) => prop_assert!(
                        p.line >= 1 && p.line <= line_count + 1 && p.column >= 1,
                        "{line}: outside the {line_count}-line text"
                    ),
                    None => prop_assert!(
                        !well_formed,
                        "a problem without a position in well-formed YAML: {line}"
                    ),
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn mutated_configurations_are_answered_with_placed_problems(
        seed in select(seeds()),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let text = mutations.iter().fold(seed, |text, m| apply(&text, m));
        let result = Config::from_yaml(&text, ORIGIN, pem_dir());
        check_answer(&text, result)?;
    }

    #[test]
    fn any_text_is_answered_not_panicked(text in any::<String>()) {
        let result = Config::from_yaml(&text, ORIGIN, pem_dir());
        check_answer(&text, result)?;
    }

    #[test]
    fn any_yaml_shaped_text_is_answered_not_panicked(
        text in "([a-z_]{1,12}|[-:{}\\[\\],&*!|>'\" #\n]|  |[0-9]{1,4}[smhdwy]?){0,60}",
    ) {
        let result = Config::from_yaml(&text, ORIGIN, pem_dir());
        check_answer(&text, result)?;
    }
}

/// Found by `mutated_configurations_are_answered_with_placed_problems`: libyaml accepts
/// a double-quoted value continued on a line indented like its key, yaml-rust2 (which
/// `config::locate` uses to place whole-file problems) refuses it, and every problem
/// after that line loses its position; a top-level key (`listen:`) loses it even when
/// it is the quoted value itself.
#[test]
#[ignore = "config::locate: yaml-rust2 refuses what serde_yaml accepts; reported to the lead"]
fn a_quoted_value_continued_at_its_key_indentation_keeps_its_position() {
    let text = "targets:\n  - address: \"a.example:443\"\n    labels:\n      note: \"first line\n      continued\"\n  - address: \"b.example:443\"\n    module: missing\n";
    assert!(serde_yaml::from_str::<serde_yaml::Value>(text).is_ok());
    let error = Config::from_yaml(text, ORIGIN, pem_dir()).expect_err("unknown module");
    assert_eq!(
        error.problems(),
        [format!("{ORIGIN}:7:13: unknown module \"missing\" (none is defined); define it under `modules:`")]
    );
    let error = Config::from_yaml("listen: \"127.0.0.1:\n9798\"\n", ORIGIN, pem_dir())
        .expect_err("a space in the address");
    assert!(
        error.problems()[0].starts_with(&format!("{ORIGIN}:1:")),
        "{:?}",
        error.problems()
    );
}

/// Found while writing the `config_yaml` fuzz target: a `probe.allow` glob is matched
/// by backtracking, in time exponential in its `*`s. Against a 251-character host (what
/// any client of `GET /probe?target=` may send), `*.*.*.*.*.example.com` took 1.5 s and
/// one more `*.` 31 s (release build), on a tokio worker. The fuzz target keeps to
/// rules with at most three `*` until the matcher is linear.
#[test]
fn an_allow_glob_matches_in_time_linear_in_the_host() {
    let yaml = "probe:\n  allow: [\"*.*.*.*.*.example.com:443\"]\n";
    let config = Config::from_yaml(yaml, ORIGIN, pem_dir()).expect("valid");
    let rule = &config.probe_limits.allow.as_ref().expect("allow rules")[0];
    let host: Address = format!("{}example.org:443", "a.".repeat(120))
        .parse()
        .expect("an address");
    let start = tokio::time::Instant::now();
    assert!(!rule.permits(&host));
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "took {:?}",
        start.elapsed()
    );
}

// ---- Generated valid configurations -------------------------------------------------

/// Settings as `defaults`, a module or a target may set them. Intervals are at least a
/// minute and timeouts at most one, so every merge is valid.
#[derive(Clone, Debug, Default)]
struct Settings {
    interval: Option<u64>,
    timeout_ms: Option<u64>,
    trust: Option<Trust>,
    starttls: Option<StartTls>,
    resolve: Option<ResolveMode>,
    ip_family: Option<IpFamily>,
    xmpp_domain: Option<String>,
}

impl Settings {
    fn or(&self, fallback: &Settings) -> Settings {
        Settings {
            interval: self.interval.or(fallback.interval),
            timeout_ms: self.timeout_ms.or(fallback.timeout_ms),
            trust: self.trust.or(fallback.trust),
            starttls: self.starttls.or(fallback.starttls),
            resolve: self.resolve.or(fallback.resolve),
            ip_family: self.ip_family.or(fallback.ip_family),
            xmpp_domain: self.xmpp_domain.clone().or(fallback.xmpp_domain.clone()),
        }
    }

    /// `key: value` lines, in a random order decided by `order`.
    fn lines(&self, order: &[usize]) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(s) = self.interval {
            lines.push(format!(
                "interval: {}",
                PromDuration::from_duration(secs(s))
            ));
        }
        if let Some(ms) = self.timeout_ms {
            lines.push(format!("timeout: {ms}ms"));
        }
        if let Some(v) = self.trust {
            lines.push(format!("trust: {v}"));
        }
        if let Some(v) = self.starttls {
            lines.push(format!("starttls: {v}"));
        }
        if let Some(v) = self.resolve {
            lines.push(format!("resolve: '{v}'"));
        }
        if let Some(v) = self.ip_family {
            lines.push(format!("ip_family: \"{v}\""));
        }
        if let Some(v) = &self.xmpp_domain {
            lines.push(format!("xmpp_domain: {v}"));
        }
        let mut keyed: Vec<(usize, String)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (order.get(i).copied().unwrap_or(i), l))
            .collect();
        keyed.sort();
        keyed.into_iter().map(|(_, l)| l).collect()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settings() -> impl Strategy<Value = Settings> {
    let trust = prop::option::of(select(vec![Trust::Webpki, Trust::None]));
    (
        prop::option::of(60u64..=30 * 86_400),
        prop::option::of(1u64..=60_000),
        trust,
        prop::option::of(select(StartTls::ALL)),
        prop::option::of(select(ResolveMode::ALL)),
        prop::option::of(select(IpFamily::ALL)),
        prop::option::of(dns_name()),
    )
        .prop_map(
            |(interval, timeout_ms, trust, starttls, resolve, ip_family, xmpp_domain)| Settings {
                interval,
                timeout_ms,
                trust,
                starttls,
                resolve,
                ip_family,
                xmpp_domain,
            },
        )
}

/// A DNS name, mixed case, sometimes with a final dot.
fn dns_name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9])?", 1..4),
        "[a-zA-Z]{2,6}",
        any::<bool>(),
    )
        .prop_map(|(labels, tld, dot)| {
            let mut name = labels.join(".");
            name.push('.');
            name.push_str(&tld);
            if dot {
                name.push('.');
            }
            name
        })
}

#[derive(Clone, Debug)]
enum GenHost {
    Name(String),
    V4([u8; 4]),
    V6([u16; 8]),
}

impl GenHost {
    fn written(&self) -> String {
        match self {
            GenHost::Name(n) => n.clone(),
            GenHost::V4(o) => std::net::Ipv4Addr::from(*o).to_string(),
            GenHost::V6(s) => format!("[{}]", std::net::Ipv6Addr::from(*s)),
        }
    }
}

fn host() -> impl Strategy<Value = GenHost> {
    prop_oneof![
        2 => dns_name().prop_map(GenHost::Name),
        1 => any::<[u8; 4]>().prop_map(GenHost::V4),
        1 => any::<[u16; 8]>().prop_map(GenHost::V6),
    ]
}

/// A label value or target name: printable text of any script, quotes and backslashes
/// included (not YAML's line separators, which a double-quoted scalar folds).
fn free_text() -> impl Strategy<Value = String> {
    "[ -~éß☃漢字😀\t]{0,24}"
}

fn label_name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,10}".prop_filter("a name certwatch accepts", |n| {
        n.parse::<LabelName>().is_ok()
    })
}

#[derive(Clone, Debug)]
struct GenTarget {
    host: GenHost,
    name: Option<String>,
    module: Option<Index>,
    server_name: Option<String>,
    labels: BTreeMap<String, String>,
    settings: Settings,
    flow: bool,
}

fn target() -> impl Strategy<Value = GenTarget> {
    (
        host(),
        prop::option::of(free_text()),
        prop::option::of(any::<Index>()),
        prop::option::of(dns_name()),
        prop::collection::btree_map(label_name(), free_text(), 0..4),
        settings(),
        any::<bool>(),
    )
        .prop_map(
            |(host, name, module, server_name, labels, settings, flow)| GenTarget {
                host,
                name,
                module,
                server_name,
                labels,
                settings,
                flow,
            },
        )
}

#[derive(Clone, Debug)]
struct GenConfig {
    concurrency: Option<usize>,
    defaults: Settings,
    modules: Vec<Settings>,
    targets: Vec<GenTarget>,
    order: Vec<usize>,
    comments: bool,
}

fn config() -> impl Strategy<Value = GenConfig> {
    (
        prop::option::of(1usize..10_000),
        settings(),
        prop::collection::vec(settings(), 0..4),
        prop::collection::vec(target(), 1..6),
        Just((0..8).collect::<Vec<usize>>()).prop_shuffle(),
        any::<bool>(),
    )
        .prop_map(
            |(concurrency, defaults, modules, targets, order, comments)| GenConfig {
                concurrency,
                defaults,
                modules,
                targets,
                order,
                comments,
            },
        )
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

impl GenConfig {
    fn module_of(&self, target: &GenTarget) -> Option<usize> {
        match (&target.module, self.modules.len()) {
            (Some(i), n) if n > 0 => Some(i.index(n)),
            _ => None,
        }
    }

    /// The address of target `i`; its port is unique, so default names are too.
    fn address(&self, i: usize) -> String {
        format!("{}:{}", self.targets[i].host.written(), 1000 + i)
    }

    /// The name target `i` gets: its own (made unique) or its address.
    fn name(&self, i: usize) -> Option<String> {
        self.targets[i].name.as_ref().map(|n| format!("{i}:{n}"))
    }

    /// The YAML text; target `unknown_module` names a module that does not exist.
    fn yaml(&self, unknown_module: Option<usize>) -> String {
        let mut out = Vec::new();
        let comment = |out: &mut Vec<String>, text: &str| {
            if self.comments {
                out.push(format!("# {text}"));
            }
        };
        comment(&mut out, "generated");
        if let Some(c) = self.concurrency {
            out.push(format!("concurrency: {c}"));
        }
        out.push("defaults:".into());
        for line in self.defaults.lines(&self.order) {
            out.push(format!("  {line}"));
        }
        if self.defaults.lines(&self.order).is_empty() {
            out.pop();
            out.push("defaults: {}".into());
        }
        out.push("modules:".into());
        for (i, module) in self.modules.iter().enumerate() {
            comment(&mut out, "a module");
            let lines = module.lines(&self.order);
            if lines.is_empty() {
                out.push(format!("  m{i}: {{}}"));
            } else {
                out.push(format!("  m{i}:"));
                out.extend(lines.into_iter().map(|l| format!("    {l}")));
            }
        }
        if self.modules.is_empty() {
            out.pop();
        }
        out.push("targets:".into());
        for (i, target) in self.targets.iter().enumerate() {
            comment(&mut out, "a target");
            let mut fields = vec![format!("address: {}", quoted(&self.address(i)))];
            if let Some(name) = self.name(i) {
                fields.push(format!("name: {}", quoted(&name)));
            }
            if unknown_module == Some(i) {
                fields.push("module: nowhere".into());
            } else if let Some(m) = self.module_of(target) {
                fields.push(format!("module: m{m}"));
            }
            if let Some(s) = &target.server_name {
                fields.push(format!("server_name: {s}"));
            }
            if !target.labels.is_empty() {
                let labels: Vec<String> = target
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", quoted(v)))
                    .collect();
                fields.push(format!("labels: {{{}}}", labels.join(", ")));
            }
            fields.extend(target.settings.lines(&self.order));
            if target.flow {
                out.push(format!("  - {{{}}}", fields.join(", ")));
            } else {
                out.push(format!("  - {}", fields[0]));
                out.extend(fields[1..].iter().map(|f| format!("    {f}")));
            }
        }
        out.join("\n") + "\n"
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Every setting lands where the resolution order puts it.
    #[test]
    fn generated_configurations_resolve_target_over_module_over_defaults(gen in config()) {
        let text = gen.yaml(None);
        let config = match Config::from_yaml(&text, ORIGIN, pem_dir()) {
            Ok(config) => config,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n---\n{text}"))),
        };
        prop_assert_eq!(config.concurrency, gen.concurrency.unwrap_or(64));
        prop_assert_eq!(config.targets.len(), gen.targets.len());
        for (i, (spec, target)) in config.targets.iter().zip(&gen.targets).enumerate() {
            let module = gen.module_of(target).map(|m| gen.modules[m].clone()).unwrap_or_default();
            let want = target.settings.or(&module).or(&gen.defaults);
            let address: Address = gen.address(i).parse().expect("generated address");
            prop_assert_eq!(&spec.address, &address);
            prop_assert_eq!(&spec.name, &gen.name(i).unwrap_or_else(|| address.to_string()));
            let server_name = match &target.server_name {
                Some(s) => s.parse::<TlsName>().expect("generated name"),
                None => TlsName::for_host(&address.host).expect("generated host"),
            };
            prop_assert_eq!(&spec.server_name, &server_name);
            prop_assert_eq!(spec.interval, want.interval.map_or(Duration::from_secs(300), secs));
            prop_assert_eq!(
                spec.timeout,
                want.timeout_ms.map_or(Duration::from_secs(10), Duration::from_millis)
            );
            prop_assert_eq!(spec.starttls, want.starttls.unwrap_or(StartTls::None));
            prop_assert_eq!(spec.resolve, want.resolve.unwrap_or(ResolveMode::All));
            prop_assert_eq!(spec.ip_family, want.ip_family.unwrap_or(IpFamily::Any));
            let domain = want.xmpp_domain.map(|d| d.parse::<XmppDomain>().expect("generated"));
            prop_assert_eq!(
                spec.xmpp_domain.as_deref(),
                domain.as_ref().map(XmppDomain::as_str)
            );
            let labels: Vec<(String, String)> = spec
                .labels
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            let want_labels: Vec<(String, String)> = target.labels.clone().into_iter().collect();
            prop_assert_eq!(labels, want_labels);
        }
    }

    /// A reference to a module that does not exist is reported at the target's
    /// `module:` value (line and character column), and nothing else is.
    #[test]
    fn an_unknown_module_is_placed_on_its_line(gen in config(), which in any::<Index>()) {
        let text = gen.yaml(Some(which.index(gen.targets.len())));
        let error = match Config::from_yaml(&text, ORIGIN, pem_dir()) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
            Err(e) => e,
        };
        let problems = error.problems();
        prop_assert_eq!(problems.len(), 1, "{:?}\n{}", problems, text);
        let (line, column) = text
            .lines()
            .enumerate()
            .find_map(|(i, l)| {
                let at = l.find("module: nowhere")? + "module: ".len();
                Some((i + 1, l[..at].chars().count() + 1))
            })
            .expect("written");
        let at = format!("{ORIGIN}:{line}:{column}: unknown module \"nowhere\"");
        prop_assert!(problems[0].starts_with(&at), "{:?} should start with {}\n{}", problems, at, text);
    }
}

// ---- Single values -------------------------------------------------------------------

const UNIT_MS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn a_duration_reads_back_what_it_prints(ms in prop_oneof![any::<u64>(), 0u64..10_000_000_000]) {
        let d = PromDuration::from_duration(Duration::from_millis(ms));
        let printed = d.to_string();
        prop_assert_eq!(printed.parse::<PromDuration>(), Ok(d), "{}", printed);
    }

    /// `1h30m` is the sum of its parts; a sum past `u64` milliseconds is "too large".
    #[test]
    fn a_duration_is_the_sum_of_its_units_largest_first(
        parts in prop::collection::btree_map(0usize..7, prop_oneof![0u64..1000, any::<u64>()], 1..7),
    ) {
        let text: String = parts.iter().map(|(u, n)| format!("{n}{}", UNIT_MS[*u].0)).collect();
        let sum = parts
            .iter()
            .try_fold(0u64, |sum, (u, n)| n.checked_mul(UNIT_MS[*u].1)?.checked_add(sum));
        match (text.parse::<PromDuration>(), sum) {
            (Ok(d), Some(ms)) => prop_assert_eq!(d.get(), Duration::from_millis(ms)),
            (Err(e), None) => prop_assert!(matches!(e, ValueError::DurationTooLarge { .. }), "{}", e),
            (got, want) => prop_assert!(false, "{text}: got {got:?}, want {want:?} ms"),
        }
    }

    #[test]
    fn a_duration_accepts_only_its_grammar(text in "[0-9smhdwyM .-]{0,12}") {
        if let Ok(d) = text.parse::<PromDuration>() {
            let mut rest = text.as_str();
            if rest != "0" {
                while !rest.is_empty() {
                    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                    prop_assert!(digits > 0, "{text:?} accepted as {d:?}");
                    rest = &rest[digits..];
                    let unit = UNIT_MS.iter().filter(|(u, _)| rest.starts_with(u)).map(|(u, _)| u.len()).max();
                    prop_assert!(unit.is_some(), "{text:?} accepted as {d:?}");
                    rest = &rest[unit.unwrap_or(0)..];
                }
            }
        }
    }

    #[test]
    fn an_address_reads_back_what_it_prints(host in host(), port in 1u16..) {
        let text = format!("{}:{port}", host.written());
        let address: Address = text.parse().map_err(|e: ValueError| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(address.port, port);
        if let (GenHost::Name(name), Host::Name(parsed)) = (&host, &address.host) {
            prop_assert_eq!(parsed, &name.to_ascii_lowercase());
        }
        prop_assert_eq!(address.to_string().parse::<Address>(), Ok(address.clone()));
    }

    #[test]
    fn any_address_text_is_parsed_or_refused_with_a_hint(
        text in prop_oneof![any::<String>(), "[\\[\\]0-9a-fA-F:.a-z_-]{0,40}"],
    ) {
        match text.parse::<Address>() {
            Ok(address) => {
                prop_assert!(address.port != 0);
                prop_assert_eq!(address.to_string().parse::<Address>(), Ok(address.clone()));
            }
            Err(e) => prop_assert!(e.to_string().contains("host:port"), "{}", e),
        }
    }

    #[test]
    fn a_label_name_is_accepted_exactly_when_prometheus_and_certwatch_allow_it(
        text in prop_oneof!["[a-zA-Z0-9_]{0,6}", "(__|)[a-z_]{1,20}", select(&[
            "target", "ip", "depth", "job", "instance", "team", "a-b", "é",
        ][..]).prop_map(str::to_owned)],
    ) {
        let well_formed = text
            .bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()))
            && !text.is_empty();
        let reserved = ["target", "ip", "depth", "reason", "stage", "phase", "result",
            "version", "cipher", "subject_cn", "issuer_cn", "serial", "fingerprint_sha256",
            "dns_names", "key_algorithm", "key_bits", "signature_algorithm", "rustc", "job",
            "instance"];
        let want = well_formed && !text.starts_with("__") && !reserved.contains(&text.as_str());
        let got = text.parse::<LabelName>();
        prop_assert_eq!(got.is_ok(), want, "{:?}: {:?}", text, got);
        if let Ok(name) = got {
            prop_assert_eq!(name.as_str(), text.as_str());
        }
    }

    #[test]
    fn a_server_name_reads_back_what_it_prints(
        text in prop_oneof![any::<String>(), dns_name(), "[0-9a-fA-F:.]{1,40}"],
    ) {
        if let Ok(name) = text.parse::<TlsName>() {
            prop_assert_eq!(name.as_str(), name.to_string());
            prop_assert_eq!(name.to_string().parse::<TlsName>(), Ok(name.clone()));
        }
    }

    #[test]
    fn a_keyword_is_one_of_its_choices(text in prop_oneof![
        any::<String>(),
        select(StartTls::ALL).prop_map(|k| k.as_str().to_ascii_uppercase()),
        select(StartTls::ALL).prop_map(|k| format!("{k} ")),
    ]) {
        let known = StartTls::ALL.iter().find(|k| k.as_str() == text);
        match (text.parse::<StartTls>(), known) {
            (Ok(k), Some(want)) => prop_assert_eq!(k, *want),
            (Err(e), None) => {
                for k in StartTls::ALL {
                    prop_assert!(e.to_string().contains(k.as_str()), "{} lists {}", e, k);
                }
            }
            (got, want) => prop_assert!(false, "{text:?}: {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn every_keyword_reads_back_what_it_prints() {
    for k in StartTls::ALL {
        assert_eq!(k.to_string().parse::<StartTls>(), Ok(*k));
    }
    for k in Trust::ALL {
        assert_eq!(k.to_string().parse::<Trust>(), Ok(*k));
    }
    for k in ResolveMode::ALL {
        assert_eq!(k.to_string().parse::<ResolveMode>(), Ok(*k));
    }
    for k in IpFamily::ALL {
        assert_eq!(k.to_string().parse::<IpFamily>(), Ok(*k));
    }
}
