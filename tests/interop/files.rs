//! Certificate files made by `openssl`, read by the real binary and compared with what
//! `openssl x509` says of the same certificates: PKCS#12 with the right and a wrong
//! password, in OpenSSL 3's encryption (PBES2, AES-256-CBC, PBKDF2, SHA-256 MAC) and the
//! legacy one (`-legacy`: RC2-40 and 3DES, SHA-1 MAC); a DER file; a kubeconfig with an
//! embedded and a referenced certificate; a PEM file with its private key before the
//! certificate; an unreadable file; a 5 MiB file; a 1024-bit RSA certificate signed
//! with SHA-1 (its weaknesses); and a directory symlink loop under `**`.
//!
//! The unreadable file is `chmod 000`. Root reads such a file anyway, so when the tests
//! run as root the exporter is started as `nobody` (through `setpriv`), for whom the
//! mode means what it says; the directory is then opened to it (mode 755, files 644).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use certwatch::metrics::names::*;

use crate::support::exporter::Exporter;
use crate::support::openssl::parse_openssl_date;
use crate::support::tools::{trial, Trial, OPENSSL};
use crate::support::Scrape;

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[OPENSSL],
        files_made_by_openssl_are_read_as_openssl_reads_them
    )]
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl x509`'s SHA-256 fingerprint of `pem`, as certwatch writes it.
fn fingerprint(dir: &Path, pem: &str) -> String {
    let out = openssl(
        dir,
        &["x509", "-in", pem, "-noout", "-fingerprint", "-sha256"],
    );
    out.trim()
        .rsplit('=')
        .next()
        .expect("a fingerprint")
        .replace(':', "")
        .to_ascii_lowercase()
}

fn not_after(dir: &Path, pem: &str) -> i64 {
    let out = openssl(dir, &["x509", "-in", pem, "-noout", "-enddate"]);
    parse_openssl_date(out.trim().trim_start_matches("notAfter="))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The fingerprints of `target`'s certificates in `path` (and `entry`), by depth.
fn fingerprints(s: &Scrape, target: &str, path: &Path, entry: Option<&str>) -> Vec<String> {
    let path = path.display().to_string();
    let mut labels = vec![("target", target), ("path", path.as_str())];
    if let Some(entry) = entry {
        labels.push(("entry", entry));
    }
    let mut found: Vec<(u32, String)> = s
        .find(CERT_INFO, &labels)
        .into_iter()
        .filter(|(l, _)| entry.is_some() || !l.contains_key("entry"))
        .map(|(l, _)| (l["depth"].parse().unwrap(), l["fingerprint_sha256"].clone()))
        .collect();
    found.sort();
    found.into_iter().map(|(_, f)| f).collect()
}

fn read_error(s: &Scrape, target: &str, path: &Path) -> Option<String> {
    let path = path.display().to_string();
    let found = s.find(
        FILE_READ_ERROR_INFO,
        &[("target", target), ("path", path.as_str())],
    );
    found.first().map(|(l, _)| l["reason"].clone())
}

fn files_made_by_openssl_are_read_as_openssl_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = std::path::absolute(tmp.path()).unwrap();
    for sub in ["p12", "misc", "kube", "tree/a"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    // A CA and a leaf, as an operator makes them.
    openssl(
        &d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=interop files CA",
            "-days",
            "30",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=interop files leaf",
        ],
    );
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "20",
        ],
    );
    let (leaf_fp, ca_fp) = (fingerprint(&d, "leaf.pem"), fingerprint(&d, "ca.pem"));
    let leaf_not_after = not_after(&d, "leaf.pem");

    let export = |out: &str, legacy: bool| {
        let mut args = vec![
            "pkcs12",
            "-export",
            "-in",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-certfile",
            "ca.pem",
            "-out",
            out,
            "-passout",
            "pass:s3cret",
        ];
        if legacy {
            args.push("-legacy");
        }
        openssl(&d, &args);
    };
    export("p12/modern.p12", false);
    export("p12/legacy.p12", true);
    std::fs::write(d.join("p12.pass"), "s3cret\n").unwrap();
    std::fs::write(d.join("wrong.pass"), "s3cre7\n").unwrap();

    openssl(
        &d,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-outform",
            "DER",
            "-out",
            "misc/leaf.der",
        ],
    );
    // A weak certificate: a 1024-bit RSA key, signed by the CA with SHA-1.
    openssl(
        &d,
        &[
            "req",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "weak.key",
            "-out",
            "weak.csr",
            "-subj",
            "/CN=interop files weak",
        ],
    );
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "weak.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-sha1",
            "-out",
            "misc/weak.pem",
            "-days",
            "20",
        ],
    );
    let key = std::fs::read_to_string(d.join("leaf.key")).unwrap();
    let leaf_pem = std::fs::read_to_string(d.join("leaf.pem")).unwrap();
    std::fs::write(d.join("misc/key-first.pem"), format!("{key}{leaf_pem}")).unwrap();
    // 5 MiB: a certificate, then comment lines.
    let mut big = leaf_pem.clone();
    while big.len() < 5 * 1024 * 1024 {
        big.push_str(&"# padding ".repeat(100));
        big.push('\n');
    }
    std::fs::write(d.join("misc/big.pem"), big).unwrap();
    std::fs::write(d.join("misc/unreadable.pem"), &leaf_pem).unwrap();

    let ca_pem = std::fs::read_to_string(d.join("ca.pem")).unwrap();
    let ca_data = base64::engine::general_purpose::STANDARD.encode(&ca_pem);
    std::fs::copy(d.join("leaf.pem"), d.join("kube/admin.crt")).unwrap();
    std::fs::write(
        d.join("kube/config"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: {ca_data}\nusers:\n- name: admin\n  user:\n    client-certificate: admin.crt\n    client-key: admin.key\ncontexts:\n- name: prod\n  context: {{cluster: prod, user: admin}}\ncurrent-context: prod\n"
        ),
    )
    .unwrap();

    std::fs::copy(d.join("leaf.pem"), d.join("tree/a/x.pem")).unwrap();
    symlink(d.join("tree"), d.join("tree/a/loop")).unwrap();

    std::fs::write(
        d.join("certwatch.yml"),
        "files:\n  - name: p12\n    paths: [\"p12/*.p12\"]\n    password_file: p12.pass\n  - name: p12-wrong\n    paths: [\"p12/*.p12\"]\n    password_file: wrong.pass\n  - name: misc\n    paths: [\"misc/*\"]\n  - name: kube\n    paths: [kube/config]\n  - name: tree\n    paths: [\"tree/**/*.pem\"]\n",
    )
    .unwrap();

    // Everything readable by everyone but the unreadable file.
    for entry in walk(&d) {
        let mode = if entry.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        d.join("misc/unreadable.pem"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let wrapper: &[&str] = if is_root() {
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ]
    } else {
        &[]
    };
    let exporter = Exporter::start_wrapped(
        wrapper,
        &d,
        &["--config", "certwatch.yml", "--log-level", "debug"],
    );
    // Errors are reported once they have lasted; wait for each, in whatever order.
    let mut waiting: Vec<(&str, &str)> = vec![
        ("certificate file not read", "bad_password"),
        ("certificate file not read", "too_large"),
        ("certificate file not read", "permission_denied"),
        ("files read", "p12"),
        ("files read", "kube"),
        ("files read", "tree"),
    ];
    let started = tokio::time::Instant::now();
    while !waiting.is_empty() {
        let line = exporter
            .logs
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("still waiting for {waiting:?}"));
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        waiting.retain(|(message, what)| {
            !(json["message"] == *message && (json["reason"] == *what || json["target"] == *what))
        });
    }
    eprintln!(
        "every file read and every error reported in {:?}",
        started.elapsed()
    );
    let (status, body) = exporter.get("/metrics");
    assert_eq!(status, 200);
    let s = Scrape::parse(&body);

    for file in ["p12/modern.p12", "p12/legacy.p12"] {
        let path = d.join(file);
        assert_eq!(
            fingerprints(&s, "p12", &path, None),
            [leaf_fp.clone(), ca_fp.clone()],
            "{file}: the leaf then the CA, as openssl reads them:\n{}",
            s.text
        );
        assert_eq!(read_error(&s, "p12", &path), None, "{file}");
        assert_eq!(
            s.value(
                CERT_NOT_AFTER,
                &[
                    ("target", "p12"),
                    ("path", &path.display().to_string()),
                    ("depth", "0")
                ]
            ),
            leaf_not_after as f64
        );
        assert_eq!(
            read_error(&s, "p12-wrong", &path).as_deref(),
            Some("bad_password"),
            "{file}"
        );
        assert!(fingerprints(&s, "p12-wrong", &path, None).is_empty());
    }

    assert_eq!(
        fingerprints(&s, "misc", &d.join("misc/leaf.der"), None),
        std::slice::from_ref(&leaf_fp)
    );
    assert_eq!(
        fingerprints(&s, "misc", &d.join("misc/key-first.pem"), None),
        std::slice::from_ref(&leaf_fp),
        "the key is skipped, the certificate is depth 0"
    );
    assert_eq!(read_error(&s, "misc", &d.join("misc/key-first.pem")), None);
    assert_eq!(
        read_error(&s, "misc", &d.join("misc/big.pem")).as_deref(),
        Some("too_large")
    );
    assert_eq!(
        read_error(&s, "misc", &d.join("misc/unreadable.pem")).as_deref(),
        Some("permission_denied")
    );
    assert_eq!(s.value(FILES_MATCHED, &[("target", "misc")]), 5.0);
    // A file's weak key and SHA-1 signature are findings as a server's would be; the
    // leaf-only rules are not applied to files (no certificate here has a SAN).
    let mut weak: Vec<(String, String)> = s
        .find(CERT_WEAKNESS_INFO, &[("target", "misc")])
        .into_iter()
        .map(|(l, _)| (l["path"].clone(), l["weakness"].clone()))
        .collect();
    weak.sort();
    let weak_path = d.join("misc/weak.pem").display().to_string();
    assert_eq!(
        weak,
        [
            (weak_path.clone(), "rsa_key_under_2048".to_owned()),
            (weak_path, "sha1_signature".to_owned())
        ],
        "{}",
        s.text
    );

    let kube = d.join("kube/config");
    assert_eq!(
        fingerprints(&s, "kube", &kube, Some("clusters/prod")),
        std::slice::from_ref(&ca_fp)
    );
    assert_eq!(
        fingerprints(&s, "kube", &kube, Some("users/admin")),
        std::slice::from_ref(&leaf_fp)
    );
    assert_eq!(read_error(&s, "kube", &kube), None);

    assert_eq!(
        s.value(FILES_MATCHED, &[("target", "tree")]),
        1.0,
        "the loop is not followed: x.pem is found once"
    );
    assert_eq!(
        fingerprints(&s, "tree", &d.join("tree/a/x.pem"), None),
        [leaf_fp]
    );
    // No private key material anywhere in what certwatch says.
    let key_line = key.lines().nth(1).expect("a key line");
    assert!(!body.contains(key_line));
    assert!(!exporter.logs_so_far().iter().any(|l| l.contains(key_line)));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
