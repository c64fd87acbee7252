//! In-process rustls servers on 127.0.0.1:0, with a certificate that can be swapped
//! between connections, chosen TLS versions and client-certificate policies.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Whether and how the server asks for a client certificate.
#[derive(Clone)]
pub enum ClientAuth {
    /// It does not.
    None,
    /// It asks, and accepts a connection without one.
    Optional(CertificateDer<'static>),
    /// It asks and refuses a connection without one signed by this CA.
    Required(CertificateDer<'static>),
}

/// Server settings.
#[derive(Clone)]
pub struct ServerSpec {
    /// The chain presented, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: Arc<PrivateKeyDer<'static>>,
    /// TLS versions offered.
    pub versions: &'static [&'static SupportedProtocolVersion],
    /// Client certificate policy.
    pub client_auth: ClientAuth,
}

impl ServerSpec {
    /// TLS 1.2 and 1.3, no client certificate.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Self {
        Self {
            chain,
            key: Arc::new(key),
            versions: rustls::ALL_VERSIONS,
            client_auth: ClientAuth::None,
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(self.versions)
            .expect("versions");
        let roots = |ca: &CertificateDer<'static>| {
            let mut roots = RootCertStore::empty();
            roots.add(ca.clone()).expect("ca");
            Arc::new(roots)
        };
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots(ca), provider.clone())
                    .allow_unauthenticated()
                    .build()
                    .expect("verifier"),
            ),
            ClientAuth::Required(ca) => builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(roots(ca), provider.clone())
                    .build()
                    .expect("verifier"),
            ),
        };
        let mut config = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("server cert");
        config.send_tls13_tickets = 0;
        Arc::new(config)
    }
}

/// A running TLS server; stops when dropped.
pub struct TlsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    config: Arc<Mutex<Arc<ServerConfig>>>,
    task: JoinHandle<()>,
}

impl TlsServer {
    /// Starts a server that completes the handshake and then echoes until the client closes.
    pub async fn start(spec: ServerSpec) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = Arc::new(Mutex::new(spec.config()));
        let shared = config.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = TlsAcceptor::from(shared.lock().expect("config").clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_until_closed(tls).await;
                    }
                });
            }
        });
        TlsServer { addr, config, task }
    }

    /// Presents `spec`'s certificate on every later connection.
    pub fn replace(&self, spec: ServerSpec) {
        *self.config.lock().expect("config") = spec.config();
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Echoes what the client sends until it closes: enough for a probe, which closes.
pub async fn serve_until_closed<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}
