//! certwatch's own endpoint secured by `--web.config.file`, where no external client is
//! needed: the reserved `certwatch-self` name, and a bad web configuration stopping
//! start-up with its position. The rest, through curl and `openssl s_client`, is in
//! `tests/e2e/web_tls.rs`.

mod support;

use std::process::Command;

use support::Harness;

#[test]
fn a_configured_target_cannot_take_the_reserved_name() {
    let h = Harness::new();
    let path = h.write(
        "certwatch.yml",
        "targets:\n  - address: \"127.0.0.1:443\"\n    name: certwatch-self\n",
    );
    let problems = certwatch::app::check_config(&path).unwrap_err();
    assert!(
        problems[0].contains("certwatch.yml:3:11:") && problems[0].contains("reserved"),
        "{problems:#?}"
    );
}

#[test]
fn serve_refuses_to_start_on_an_invalid_web_configuration() {
    let h = Harness::new();
    h.write("certwatch.yml", "defaults:\n  interval: 1h\n");
    h.write(
        "web.yml",
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n  min_version: TLS10\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .current_dir(h.path())
        .args([
            "--config",
            "certwatch.yml",
            "--web.config.file",
            "web.yml",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run certwatch");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.yml:4:16:") && stderr.contains("TLS10 is not supported"),
        "{stderr}"
    );

    h.write(
        "web.yml",
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certwatch"))
        .current_dir(h.path())
        .args([
            "--config",
            "certwatch.yml",
            "--web.config.file",
            "web.yml",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run certwatch");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.yml:2:14: ")
            && stderr.contains("missing.pem")
            && stderr.contains("web.yml:3:13: "),
        "{stderr}"
    );
}
