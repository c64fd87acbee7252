//! The configuration of certificate files: `files:` sources and `served_from`, with
//! their defaults and every mistake placed at its line and column.

use std::path::Path;

use certwatch::config::{Config, FileFormat};

fn problems(yaml: &str, dir: &Path) -> Vec<String> {
    match Config::from_yaml(yaml, "c.yml", dir) {
        Ok(_) => panic!("accepted an invalid configuration:\n{yaml}"),
        Err(e) => e.problems(),
    }
}

fn one_problem(yaml: &str, dir: &Path, at: &str, what: &str) {
    let found = problems(yaml, dir);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with(&format!("c.yml:{at}: ")) && found[0].contains(what),
        "expected {what:?} at {at}: {found:#?}"
    );
}

#[test]
fn a_files_source_resolves_its_paths_interval_trust_and_format() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p12.pass"), "s3cret\n").unwrap();
    let yaml = "defaults:\n  interval: 10m\n  trust: webpki\nfiles:\n  - name: a\n    paths: [\"live/*/fullchain.pem\", /abs/**/*.p12]\n    password_file: p12.pass\n    labels: {team: web}\n  - name: b\n    paths: [one.pem]\n    format: der\n    interval: 1m\n    trust: system\n";
    let config = Config::from_yaml(yaml, "c.yml", dir.path()).expect("valid");
    let a = &config.files[0];
    assert_eq!(
        a.patterns[0].as_str(),
        dir.path().join("live/*/fullchain.pem").to_str().unwrap()
    );
    assert_eq!(a.patterns[1].as_str(), "/abs/**/*.p12");
    assert_eq!(a.interval.as_secs(), 600, "defaults.interval");
    assert!(
        a.trust.is_none(),
        "trust is none for files unless they set it"
    );
    assert_eq!(a.format, FileFormat::Auto);
    assert_eq!(a.password.as_ref().map(|p| p.expose()), Some("s3cret"));
    assert!(
        !format!("{a:?}").contains("s3cret"),
        "the password is never printed"
    );
    let b = &config.files[1];
    assert_eq!((b.format, b.interval.as_secs()), (FileFormat::Der, 60));
    assert!(b.trust.is_some());
}

#[test]
fn names_are_unique_among_targets_and_files() {
    let dir = tempfile::tempdir().unwrap();
    one_problem(
        "targets:\n  - {address: \"127.0.0.1:443\", name: web}\nfiles:\n  - name: web\n    paths: [a.pem]\n",
        dir.path(),
        "4:11",
        "duplicate target name \"web\"",
    );
    one_problem(
        "files:\n  - name: certwatch-self\n    paths: [a.pem]\n",
        dir.path(),
        "2:11",
        "reserved",
    );
}

#[test]
fn bad_globs_keys_and_password_files_are_placed_where_written() {
    let dir = tempfile::tempdir().unwrap();
    one_problem(
        "files:\n  - name: a\n    paths: [\"/etc/[ssl/*.pem\"]\n",
        dir.path(),
        "3:13",
        "has no closing `]`",
    );
    one_problem(
        "files:\n  - name: a\n    paths: [a.pem]\n    password_file: missing.pass\n",
        dir.path(),
        "4:20",
        "password_file: cannot read",
    );
    one_problem(
        "files:\n  - name: a\n    paths: [a.pem]\n    format: jks\n",
        dir.path(),
        "4:13",
        "expected one of auto, pem, der, pkcs12, kubeconfig",
    );
    one_problem(
        "files:\n  - name: a\n    paths: [a.pem]\n    labels: {path: x}\n",
        dir.path(),
        "4:14",
        "is set by certwatch itself",
    );
    one_problem(
        "targets:\n  - address: \"127.0.0.1:443\"\n    served_from: \"live/**x/cert.pem\"\n",
        dir.path(),
        "3:18",
        "`**` must be a whole path component",
    );
}

#[test]
fn served_from_is_part_of_what_makes_a_target_the_same_across_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let with = |file: &str| {
        Config::from_yaml(
            &format!("targets:\n  - address: \"127.0.0.1:443\"\n    served_from: {file}\n"),
            "c.yml",
            dir.path(),
        )
        .expect("valid")
    };
    let (a, b, c) = (with("a.pem"), with("a.pem"), with("b.pem"));
    assert!(a.targets[0].same_probe(&b.targets[0]));
    assert!(!a.targets[0].same_probe(&c.targets[0]));
}
