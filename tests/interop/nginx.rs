//! Interoperability with a real HTTPS server: certwatch probes a private nginx
//! (plain TLS, no STARTTLS) and must report what `openssl s_client` reports for the
//! same endpoint: chain length, leaf serial, leaf notAfter and TLS version.
//!
//! The instance is `nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'`,
//! with every path (pid, logs, temporary files) inside its instance directory and one
//! `listen 127.0.0.1:PORT ssl` server; /etc/nginx and the machine's own nginx are
//! never used. Needs the Debian packages `nginx` (which `nginx-light` pulls in) and
//! `openssl`; without them the test is ignored, and fails under `CI=true` (see
//! `support/tools.rs`).

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL};

const NGINX: &str = "/usr/sbin/nginx";

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[NGINX_NEED, OPENSSL],
        async https_chain_matches_openssl_s_client
    )]
}

/// nginx (any flavour; `nginx-light` is the smallest).
const NGINX_NEED: Need = Need {
    name: "nginx",
    remedy: Remedy::Install("nginx-light"),
    check: || daemon::require_program(NGINX, "nginx"),
};

/// A running private nginx; stopped when dropped.
struct Nginx {
    daemon: Daemon,
    port: u16,
}

impl Nginx {
    async fn start(tls: &ServerTls) -> Result<Nginx, String> {
        daemon::start_with_retries("nginx", || Self::try_start(tls)).await
    }

    async fn try_start(tls: &ServerTls) -> Result<Nginx, StartError> {
        let mut instance = Instance::new("nginx")?;
        let port = instance.port()?;
        let files = instance.write_tls("tls", tls, None)?;
        let dir = instance.path().to_owned();
        instance.mkdir("temp", None, 0o777)?;
        let conf = instance.write_config(
            "nginx.conf",
            &format!(
                "# A private instance for certwatch's interoperability tests.\n\
                 worker_processes 1;\n\
                 pid {dir}/nginx.pid;\n\
                 error_log {dir}/error.log info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                 \x20   access_log {dir}/access.log;\n\
                 \x20   client_body_temp_path {dir}/temp/body;\n\
                 \x20   proxy_temp_path {dir}/temp/proxy;\n\
                 \x20   fastcgi_temp_path {dir}/temp/fastcgi;\n\
                 \x20   uwsgi_temp_path {dir}/temp/uwsgi;\n\
                 \x20   scgi_temp_path {dir}/temp/scgi;\n\
                 \x20   server {{\n\
                 \x20       listen 127.0.0.1:{port} ssl;\n\
                 \x20       server_name localhost;\n\
                 \x20       ssl_certificate {chain};\n\
                 \x20       ssl_certificate_key {key};\n\
                 \x20       location / {{ return 200 \"certwatch interop\\n\"; }}\n\
                 \x20   }}\n\
                 }}\n",
                dir = dir.display(),
                chain = files.chain.display(),
                key = files.key.display(),
            ),
        )?;
        instance.log_file("error.log");
        let nginx = Launch::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"]);
        let daemon = instance.spawn(nginx, &[Ready::Port(port)]).await?;
        Ok(Nginx { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn https_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Nginx::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "none", &chain, &|| {
        server.daemon.log()
    })
    .await;
}
