//! The settings that say how an endpoint is reached (contract section 10): `dns`,
//! `mx`, `srv`, `port`, `proxy` and `proxy_password_file`, as resolved, and every
//! mistake refused at its line and column without repeating a password.

use std::path::Path;
use std::time::Duration;

use certwatch::config::{Config, Discover, ProxyKind, StartTls};

fn load(yaml: &str, dir: &Path) -> Config {
    Config::from_yaml(yaml, "c.yml", dir).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// `yaml` has exactly one problem, at `position`, saying `what`.
fn refused(yaml: &str, position: &str, what: &str) -> String {
    let mut problems = match Config::from_yaml(yaml, "c.yml", Path::new("/nonexistent-dir")) {
        Ok(_) => panic!("accepted:\n{yaml}"),
        Err(e) => e.problems(),
    };
    assert_eq!(problems.len(), 1, "{yaml}: {problems:#?}");
    assert!(
        problems[0].starts_with(&format!("c.yml:{position}: ")) && problems[0].contains(what),
        "{yaml}: expected {what:?} at {position}, got {problems:#?}"
    );
    problems.remove(0)
}

#[test]
fn the_shipped_example_resolves_discovery_proxies_and_the_resolver() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/reach.yml");
    let config = Config::load(&file).expect("valid");
    let [mx, submission, xmpp, bastion, egress, direct] = &config.targets[..] else {
        panic!("six targets: {:#?}", config.targets)
    };
    assert_eq!(
        mx.name, "example.com",
        "an mx target is named after its domain"
    );
    assert_eq!(mx.starttls, StartTls::Smtp, "mx implies starttls smtp");
    assert!(matches!(
        &mx.discover,
        Some(Discover::Mx { domain, port: 25, server_name: None }) if domain.as_str() == "example.com"
    ));
    assert!(matches!(
        submission.discover,
        Some(Discover::Mx { port: 587, .. })
    ));
    assert_eq!(xmpp.starttls, StartTls::Xmpp);
    assert!(
        matches!(&xmpp.discover, Some(Discover::Srv { name }) if name.domain() == "example.com")
    );
    assert_eq!(
        xmpp.server_name.to_string(),
        "example.com",
        "SRV hosts are verified for the service's domain"
    );
    let proxy = bastion.proxy.as_ref().expect("a proxy");
    assert_eq!(proxy.url.kind, ProxyKind::Socks5h);
    assert_eq!(proxy.url.to_string(), "socks5h://bastion.example.com:1080");
    assert_eq!(
        egress.proxy.as_ref().map(|p| p.url.kind),
        Some(ProxyKind::Http),
        "from the module"
    );
    assert!(direct.proxy.is_none(), "proxy: none overrides the module");
    for target in &config.targets {
        assert_eq!(target.dns.timeout, Duration::from_secs(2));
        assert_eq!(
            target.dns.servers,
            [
                "192.0.2.53:53".parse().unwrap(),
                "[2001:db8::53]:5353".parse().unwrap()
            ]
        );
        assert!(
            target.dns.system.is_none(),
            "resolv.conf is not read when servers are set"
        );
    }
}

#[test]
fn a_target_has_exactly_one_of_address_mx_and_srv() {
    refused(
        "targets:\n  - name: x\n",
        "2:5",
        "a target needs one of address (host:port), mx (a domain) or srv",
    );
    refused(
        "targets:\n  - address: a.example:443\n    mx: example.com\n",
        "3:9",
        "exactly one of address, mx and srv, not address and mx",
    );
    refused(
        "targets:\n  - address: a.example:443\n    port: 25\n",
        "3:11",
        "port applies to mx targets only",
    );
    refused(
        "targets:\n  - srv: _x._tcp.example.com\n    port: 25\n",
        "3:11",
        "port applies to mx targets only",
    );
    refused(
        "targets:\n  - mx: example.com\n    port: 0\n",
        "3:11",
        "from 1 to 65535",
    );
    refused(
        "targets:\n  - mx: 192.0.2.1\n",
        "2:9",
        "an IP address has no DNS records",
    );
    refused(
        "targets:\n  - srv: example.com\n",
        "2:10",
        "write _service._proto.domain",
    );
    refused(
        "targets:\n  - mx: example.com\n  - mx: example.com\n",
        "3:9",
        "duplicate target name \"example.com\"",
    );
    refused(
        "targets:\n  - address: a.example:443\n    labels:\n      host: x\n",
        "4:7",
        "label name \"host\" is set by certwatch itself",
    );
}

#[test]
fn server_name_on_an_mx_target_replaces_each_hosts_own() {
    let config = load(
        "targets:\n  - mx: example.com\n    server_name: mail.example.com\n    starttls: none\n",
        Path::new("."),
    );
    let target = &config.targets[0];
    assert_eq!(target.starttls, StartTls::None, "an explicit starttls wins");
    assert!(matches!(
        &target.discover,
        Some(Discover::Mx { server_name: Some(n), .. }) if n.to_string() == "mail.example.com"
    ));
}

#[test]
fn the_proxy_password_comes_from_a_file_and_never_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("proxy.pass"), "hunter2\n").unwrap();
    let config = load(
        "defaults:\n  proxy: socks5://monitor@127.0.0.1:1080\n  proxy_password_file: proxy.pass\ntargets:\n  - address: a.example:443\n",
        dir.path(),
    );
    let proxy = config.targets[0].proxy.as_ref().unwrap();
    assert_eq!(proxy.url.user.as_deref(), Some("monitor"));
    assert_eq!(proxy.password.as_ref().unwrap().expose(), "hunter2");
    let shown = format!("{:?}", config.targets[0]);
    assert!(!shown.contains("hunter2"), "{shown}");

    let message = refused(
        "targets:\n  - address: a.example:443\n    proxy: http://monitor:hunter2@proxy:3128\n",
        "3:12",
        "holds a password: put the password in a file named by proxy_password_file",
    );
    assert!(!message.contains("hunter2"), "{message}");
    refused(
        "targets:\n  - address: a.example:443\n    proxy: socks5h://monitor@proxy:1080\n",
        "3:12",
        "names a user but no password",
    );
    refused(
        "targets:\n  - address: a.example:443\n    proxy: socks5h://proxy:1080\n    proxy_password_file: /nonexistent/p\n",
        "4:26",
        "proxy_password_file: cannot read /nonexistent/p: no such file",
    );
    refused(
        "targets:\n  - address: a.example:443\n    proxy: socks4://proxy:1080\n",
        "3:12",
        "SOCKS4 is not supported",
    );
}

#[test]
fn dns_servers_and_timeout_are_checked() {
    refused(
        "dns:\n  servers: [dns.example.com]\n",
        "2:13",
        "invalid DNS server",
    );
    refused(
        "dns:\n  timeout: 0\n",
        "2:12",
        "timeout must be longer than 0s",
    );
    refused("dns:\n  timeout: 11m\n", "2:12", "too long");
    refused(
        "dns:\n  servers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4, 1.1.1.5, 1.1.1.6, 1.1.1.7, 1.1.1.8, 1.1.1.9]\n",
        "2:12",
        "dns.servers is 9, out of range",
    );
    refused(
        "dns:\n  server: [1.1.1.1]\n",
        "2:3",
        "unknown field `server`",
    );
    let config = load("targets:\n  - address: a.example:443\n", Path::new("."));
    let dns = &config.targets[0].dns;
    assert!(dns.servers.is_empty());
    assert_eq!(dns.timeout, Duration::from_secs(5), "resolv.conf's default");
    assert!(
        dns.system.is_some(),
        "the system configuration is read with the file"
    );
}
