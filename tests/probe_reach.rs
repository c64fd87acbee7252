//! `GET /probe` and what names resolve to: a CIDR range in `probe.allow` allows a name
//! whose addresses it holds, and refuses one that resolves outside every range, before
//! any connection (contract section 10). Through the real binary; names are `localhost`
//! only, from the hosts file.

mod support;

use certwatch::metrics::names::*;
use support::exporter::Exporter;
use support::pki::{Ca, Validity};
use support::tls_server::{ServerSpec, TlsServer};
use support::{Harness, Scrape};

#[tokio::test(flavor = "multi_thread")]
async fn a_name_is_allowed_or_refused_by_the_ranges_it_resolves_into() {
    let root = Ca::root("allow root");
    let inter = root.intermediate("allow intermediate", Validity::days(365));
    let leaf = inter.leaf(&["localhost"], Validity::days(60));
    let server = TlsServer::start(ServerSpec::new(leaf.chain(&[&inter]), leaf.key())).await;
    let port = server.address().rsplit(':').next().unwrap().to_owned();
    let h = Harness::new();
    h.write("root.pem", &root.pem);
    let module =
        "modules:\n  local:\n    ip_family: ipv4\n    trust: none\n    tls: {ca_file: root.pem}\n";
    let dir = h.path().to_owned();
    let inside = format!("{module}probe:\n  allow: [\"127.0.0.0/8:*\"]\n");
    let outside = format!("{module}probe:\n  allow: [\"10.0.0.0/8:*\", \"*.example.test:*\"]\n");
    tokio::task::spawn_blocking(move || {
        std::fs::write(dir.join("inside.yml"), inside).unwrap();
        std::fs::write(dir.join("outside.yml"), outside).unwrap();
        let path = format!("/probe?target=localhost:{port}&module=local");

        let exporter = Exporter::start(&dir, &["--config", "inside.yml"]);
        let (status, body) = exporter.get(&path);
        assert_eq!(status, 200, "localhost resolves into 127.0.0.0/8: {body}");
        assert_eq!(
            Scrape::parse(&body).value(PROBE_SUCCESS, &[(LABEL_IP, "127.0.0.1")]),
            1.0,
            "{body}"
        );
        assert!(exporter.stop().success());

        let exporter = Exporter::start(&dir, &["--config", "outside.yml"]);
        let (status, body) = exporter.get(&path);
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains(&format!("localhost:{port} (127.0.0.1)")),
            "names what it resolved to: {body}"
        );
        // An IP literal outside the ranges is refused before anything is done.
        let (status, body) = exporter.get("/probe?target=127.0.0.1:1&module=local");
        assert_eq!(status, 403, "an IP literal outside the ranges: {body}");
        assert!(exporter.stop().success());
    })
    .await
    .unwrap();
}
