//! Fuzzes the configuration parser, `Config::from_yaml`, with any text.
//!
//! Properties: no panic; an error lists at least one problem, each with a message, and
//! with a line and column inside the text whenever the text is one well-formed YAML
//! document (as both YAML libraries in use read it); an accepted configuration keeps
//! the invariants the scheduler relies on; its `probe.allow` rules answer for every
//! target. Relative PEM paths resolve in `fuzz/fixtures`, which holds `ca.pem`,
//! `client.pem` and `client.key`.
//!
//! Skipped inputs: paths into `/dev`, `/proc` and `/sys` (a read of `/dev/zero` or a
//! FIFO never ends: reported, not a parser bug), `trust: system` (reads the operating
//! system's store at each run, a thousand times slower than the rest), and allow rules
//! with more than three `*` (the glob matcher is exponential in them: reported; lift
//! the limit when it is linear).

#![no_main]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use certwatch::config::{Address, Config, ConfigError};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "fuzz.yml";

fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

/// Whether both YAML libraries read `text` as at most one document.
fn well_formed(text: &str) -> bool {
    serde_yaml::from_str::<serde_yaml::Value>(text).is_ok()
        && yaml_rust2::YamlLoader::load_from_str(text).is_ok_and(|docs| docs.len() <= 1)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if ["dev/", "proc/", "sys/", "system"]
        .iter()
        .any(|skip| text.contains(skip))
    {
        return;
    }
    match Config::from_yaml(&text, ORIGIN, fixtures()) {
        Ok(config) => {
            assert!(config.concurrency >= 1);
            let mut names = HashSet::new();
            for target in &config.targets {
                assert!(!target.name.trim().is_empty());
                assert!(
                    names.insert(target.name.as_str()),
                    "duplicate {}",
                    target.name
                );
                assert!(target.interval >= Duration::from_secs(1));
                assert!(!target.timeout.is_zero());
                assert!(target.timeout <= target.interval);
                assert_eq!(
                    target.address.to_string().parse::<Address>().as_ref(),
                    Ok(&target.address)
                );
            }
            if text.matches('*').count() <= 3 {
                let probe: Address = "a.b.c.example.com:443".parse().expect("an address");
                for rule in config.probe_limits.allow.iter().flatten() {
                    let _ = rule.permits(&probe);
                    for target in &config.targets {
                        let _ = rule.permits(&target.address);
                    }
                }
            }
        }
        Err(ConfigError::Read { .. }) => panic!("from_yaml reads no configuration file"),
        Err(error @ ConfigError::Invalid { .. }) => {
            let ConfigError::Invalid { problems, .. } = &error else {
                unreachable!()
            };
            assert!(!problems.is_empty());
            assert_eq!(error.problems().join("\n"), error.to_string());
            // YAML 1.1 also breaks lines at CR, NEL, LS and PS; libyaml places an error
            // at the end of the text on the line after the last.
            let lines = 2 + text
                .chars()
                .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
                .count();
            let placed = well_formed(&text);
            for problem in problems {
                assert!(!problem.message.trim().is_empty());
                match problem.position {
                    Some(p) => assert!(p.line >= 1 && p.line <= lines && p.column >= 1, "{p:?}"),
                    None => assert!(
                        !placed,
                        "no position in well-formed YAML: {}",
                        problem.message
                    ),
                }
            }
        }
    }
});
