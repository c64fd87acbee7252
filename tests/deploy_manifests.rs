//! The Prometheus Operator's PrometheusRule in `deploy/kubernetes/` is generated from
//! `alerts/certwatch.rules.yml` by `deploy/kubernetes/generate-prometheusrule.py`; these
//! tests fail when the checked-in file is not what the script writes, when it carries
//! other rules than the rules file, and prove that the script's `--check` (which
//! `deploy/kubernetes/check.sh` runs in CI) catches an edit of the rules file that was
//! not regenerated. The rest of the manifests is validated by `deploy/kubernetes/check.sh`
//! (schemas, conventions), which needs packages from PyPI.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;
use support::tools::require;

const RULES: &str = "alerts/certwatch.rules.yml";
const GENERATOR: &str = "deploy/kubernetes/generate-prometheusrule.py";
const RULE_OBJECT: &str = "deploy/kubernetes/prometheus-operator/prometheusrule.yaml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generator(root: &Path, mode: &str) -> Output {
    Command::new("python3")
        .arg(root.join(GENERATOR))
        .arg(mode)
        .output()
        .expect("runs python3")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn yaml(path: &Path) -> Value {
    serde_yaml::from_str(&fs::read_to_string(path).expect("readable")).expect("valid YAML")
}

#[test]
fn the_checked_in_prometheusrule_is_what_the_script_generates() {
    if !require(&[("python3", "python3-yaml")]) {
        return;
    }
    let out = generator(&root(), "--stdout");
    assert!(
        out.status.success(),
        "{GENERATOR} failed (python3 needs PyYAML, Debian package python3-yaml): {}",
        text(&out.stderr)
    );
    let checked_in = fs::read_to_string(root().join(RULE_OBJECT)).expect("checked in");
    let generated = text(&out.stdout);
    if checked_in != generated {
        let first = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| checked_in.lines().count().min(generated.lines().count()));
        panic!(
            "{RULE_OBJECT} is not what {GENERATOR} generates from {RULES} (first difference \
             at line {}: checked in {:?}, generated {:?}); run {GENERATOR}",
            first + 1,
            checked_in.lines().nth(first),
            generated.lines().nth(first),
        );
    }
}

/// Independent of the script: the object carries the rules file's groups, unchanged.
#[test]
fn the_prometheusrule_carries_exactly_the_groups_of_the_rules_file() {
    let rules = yaml(&root().join(RULES));
    let object = yaml(&root().join(RULE_OBJECT));
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(object["kind"], "PrometheusRule");
    assert_eq!(object["metadata"]["name"], "certwatch");
    let groups = &rules["groups"];
    assert!(
        groups.as_sequence().is_some_and(|g| !g.is_empty()),
        "{RULES} has groups"
    );
    assert_eq!(
        &object["spec"]["groups"], groups,
        "{RULE_OBJECT} spec.groups differs from {RULES}: run {GENERATOR}"
    );
    let alerts = groups[0]["rules"]
        .as_sequence()
        .expect("rules")
        .iter()
        .filter(|r| r.get("alert").is_some())
        .count();
    assert!(alerts >= 5, "the rules file has its alerts ({alerts})");
}

/// `--check` fails with the diff when the rules file was edited and the object not
/// regenerated, and passes once it is; run on a copy of the three files.
#[test]
fn the_generator_check_catches_a_rules_edit_that_was_not_regenerated() {
    if !require(&[("python3", "python3-yaml")]) {
        return;
    }
    let copy = tempfile::tempdir().expect("tempdir");
    for file in [RULES, GENERATOR, RULE_OBJECT] {
        let to = copy.path().join(file);
        fs::create_dir_all(to.parent().expect("has a parent")).expect("mkdir");
        fs::copy(root().join(file), &to).expect("copy");
    }
    let out = generator(copy.path(), "--check");
    assert!(out.status.success(), "unchanged: {}", text(&out.stdout));

    let rules = copy.path().join(RULES);
    let edited = fs::read_to_string(&rules)
        .expect("rules")
        .replace("vector(21 * 86400)", "vector(14 * 86400)");
    assert!(
        edited.contains("vector(14 * 86400)"),
        "the warning threshold is in the rules"
    );
    fs::write(&rules, edited).expect("write");

    let out = generator(copy.path(), "--check");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a stale object fails: {stdout}");
    let diff_line = |sign: char, expr: &str| {
        stdout
            .lines()
            .any(|l| l.starts_with(sign) && l.trim_start_matches(sign).trim() == expr)
    };
    assert!(diff_line('-', "expr: vector(21 * 86400)"), "{stdout}");
    assert!(diff_line('+', "expr: vector(14 * 86400)"), "{stdout}");
    assert!(stdout.contains("is out of date: run deploy/kubernetes/generate-prometheusrule.py"));

    let out = generator(copy.path(), "--write");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = generator(copy.path(), "--check");
    assert!(out.status.success(), "regenerated: {}", text(&out.stdout));
    let object = yaml(&copy.path().join(RULE_OBJECT));
    assert_eq!(
        object["spec"]["groups"][0]["rules"][0]["expr"],
        "vector(14 * 86400)"
    );
}
