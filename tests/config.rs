//! The configuration file: every shipped example parses, an unknown key anywhere is
//! rejected at its line, and every kind of error names its line and column.

use std::path::Path;

use certwatch::config::{Config, ConfigError, IpFamily, ResolveMode, StartTls};

fn problems(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml, "c.yml", Path::new("/nonexistent-dir")) {
        Ok(_) => panic!("accepted an invalid configuration:\n{yaml}"),
        Err(e) => e.problems(),
    }
}

fn shipped_configs() -> Vec<std::path::PathBuf> {
    let mut files = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("config/certwatch.yml")];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs");
    for entry in std::fs::read_dir(dir).expect("tests/configs") {
        files.push(entry.expect("entry").path());
    }
    files
}

#[test]
fn every_shipped_configuration_is_valid() {
    for file in shipped_configs() {
        let config = Config::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!config.targets.is_empty(), "{} has targets", file.display());
    }
}

#[test]
fn settings_resolve_target_over_module_over_defaults() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/modules_and_mtls.yml");
    let config = Config::load(&file).expect("valid");
    let [smtp, web, v6] = &config.targets[..] else {
        panic!("three targets")
    };
    assert_eq!(smtp.name, "[2001:db8::25]:25");
    assert_eq!(smtp.starttls, StartTls::Smtp);
    assert_eq!(smtp.timeout.as_secs(), 15, "module over defaults");
    assert_eq!(
        smtp.interval.as_secs(),
        600,
        "defaults when neither sets it"
    );
    assert_eq!(
        smtp.labels
            .iter()
            .map(|(k, v)| format!("{}={v}", k.as_str()))
            .collect::<Vec<_>>(),
        ["env=prod", "team=mail"]
    );
    assert_eq!(web.name, "web-v4");
    assert_eq!(web.server_name.to_string(), "www.example.com");
    assert_eq!(web.starttls, StartTls::None);
    assert_eq!(v6.resolve, ResolveMode::First);
    assert_eq!(v6.ip_family, IpFamily::Ipv6);
    assert_eq!(
        v6.interval.as_secs(),
        3600,
        "target over module and defaults"
    );
    assert_eq!(config.concurrency, 8);
}

/// Inserts `certwatch_bogus: "x"` before every key of every mapping whose keys are
/// fixed (not the names under `labels:` or `modules:`), one at a time, and expects a
/// rejection at the inserted line.
#[test]
fn an_unknown_key_in_any_mapping_is_rejected_at_its_line() {
    for file in shipped_configs() {
        let text = std::fs::read_to_string(&file).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let mut open_maps: Vec<(usize, String)> = Vec::new();
        let mut injected = 0;
        for (i, line) in lines.iter().enumerate() {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let is_item = content.starts_with("- ");
            let key_text = content.strip_prefix("- ").unwrap_or(content);
            let indent = line.len() - key_text.len();
            let Some((key, rest)) = key_text.split_once(':') else {
                continue;
            };
            open_maps.retain(|(level, _)| *level < indent);
            let parent = open_maps.last().map(|(_, k)| k.clone()).unwrap_or_default();
            if rest.split('#').next().unwrap_or("").trim().is_empty() {
                open_maps.push((indent, key.to_owned()));
            }
            if is_item || parent == "labels" || parent == "modules" {
                continue;
            }
            let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            mutated.insert(i, format!("{}certwatch_bogus: \"x\"", " ".repeat(indent)));
            let found = problems(&mutated.join("\n"));
            let at = format!("c.yml:{}:", i + 1);
            assert!(
                found
                    .iter()
                    .any(|p| p.contains("unknown field `certwatch_bogus`")),
                "{}:{}: {found:?}",
                file.display(),
                i + 1
            );
            assert!(
                found[0].starts_with(&at),
                "{}: {found:?} should start with {at}",
                file.display()
            );
            injected += 1;
        }
        assert!(
            injected > 5,
            "{}: only {injected} injections",
            file.display()
        );
    }
}

#[test]
fn value_errors_name_their_line_and_column_and_what_to_write() {
    let cases = [
        (
            "defaults:\n  interval: 5x\n",
            "c.yml:2:",
            "invalid duration \"5x\"",
        ),
        (
            "targets:\n  - address: \"example.com\"\n",
            "c.yml:2:",
            "the port is missing",
        ),
        (
            "targets:\n  - address: \"2001:db8::1:443\"\n",
            "c.yml:2:",
            "brackets",
        ),
        (
            "targets:\n  - address: a.example:443\n    labels:\n      bad-name: x\n",
            "c.yml:4:",
            "invalid label name",
        ),
        (
            "targets:\n  - address: a.example:443\n    starttls: smpt\n",
            "c.yml:3:",
            "expected one of none, smtp",
        ),
        (
            "targets:\n  - address: a.example:443\n    trust: all\n",
            "c.yml:3:",
            "webpki, system, none",
        ),
        ("listen: nowhere\n", "c.yml:1:9:", "invalid listen address"),
        (
            "concurrency: 0\n",
            "c.yml:1:14:",
            "out of range: use 1 to 100000",
        ),
        (
            "targets:\n  - address: a.example:443\n    interval: 10s\n    timeout: 30s\n",
            "c.yml:2:5:",
            "timeout (30s) is longer than interval (10s)",
        ),
    ];
    for (yaml, position, message) in cases {
        let found = problems(yaml);
        assert_eq!(found.len(), 1, "{yaml}: {found:?}");
        assert!(
            found[0].starts_with(position),
            "{yaml}: {found:?} should start with {position}"
        );
        assert!(
            found[0].contains(message),
            "{yaml}: {found:?} should say {message:?}"
        );
    }
}

#[test]
fn every_whole_file_problem_is_listed_at_once_in_file_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").expect("write");
    let yaml = "\
targets:
  - address: a.example:443
    module: smtp
  - address: a.example:443
  - address: b.example:443
    tls:
      ca_file: garbage.pem
  - address: c.example:443
    tls:
      ca_file: missing.pem
  - address: d.example:443
    tls:
      client_cert_file: missing.pem
";
    let found = match Config::from_yaml(yaml, "c.yml", dir.path()) {
        Ok(_) => panic!("accepted"),
        Err(ConfigError::Invalid { problems, .. }) => problems,
        Err(e) => panic!("{e}"),
    };
    let lines: Vec<String> = found
        .iter()
        .map(|p| {
            format!(
                "{}:{} {}",
                p.position.unwrap().line,
                p.position.unwrap().column,
                p.message
            )
        })
        .collect();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert!(
        lines[0].starts_with("3:13 unknown module \"smtp\""),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("4:14 duplicate target name \"a.example:443\""),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("7:16 ") && lines[2].contains("holds no PEM certificate"),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with("10:16 cannot read") && lines[3].contains("missing.pem"),
        "{lines:#?}"
    );
    assert!(
        lines[4].starts_with("13:7 client_cert_file and client_key_file go together"),
        "{lines:#?}"
    );
    assert!(lines[5].starts_with("13:25 cannot read"), "{lines:#?}");
}

#[test]
fn an_empty_file_is_a_valid_configuration_with_no_targets() {
    let config = Config::from_yaml("", "c.yml", Path::new(".")).expect("valid");
    assert!(config.targets.is_empty());
    assert_eq!(config.listen.port(), 9798);
}
