//! A scripted server for the binary STARTTLS dialects (LDAP, PostgreSQL, MySQL): it
//! reads and sends the bytes it is given, step by step, and can then accept a TLS
//! handshake. The protocol knowledge lives in the test's script, not here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::tls_server::serve_until_closed;

/// One step of a script.
#[derive(Clone)]
pub enum Step {
    /// Reads exactly these bytes; anything else closes the connection.
    Expect(Vec<u8>),
    /// Reads `len` bytes and closes the connection unless `check` accepts them.
    ExpectWith(usize, fn(&[u8]) -> bool),
    /// Sends these bytes.
    Send(Vec<u8>),
    /// Accepts a TLS handshake and echoes until the client closes.
    Tls,
    /// Closes the connection.
    Close,
}

/// A running scripted server; stops when dropped.
pub struct BinaryServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl BinaryServer {
    /// Starts a server that plays `script` on every connection, with `tls` for [`Step::Tls`].
    /// After the last step (unless it is `Tls` or `Close`) it holds the connection open
    /// until the client closes it, so the client's own verdict is what a test sees.
    pub async fn start(script: Vec<Step>, tls: Arc<ServerConfig>) -> BinaryServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(play(tcp, script.clone(), TlsAcceptor::from(tls.clone())));
            }
        });
        BinaryServer { addr, task }
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn play(mut tcp: TcpStream, script: Vec<Step>, acceptor: TlsAcceptor) {
    for step in script {
        match step {
            Step::Expect(want) => {
                let mut got = vec![0u8; want.len()];
                if tcp.read_exact(&mut got).await.is_err() || got != want {
                    return;
                }
            }
            Step::ExpectWith(len, check) => {
                let mut got = vec![0u8; len];
                if tcp.read_exact(&mut got).await.is_err() || !check(&got) {
                    return;
                }
            }
            Step::Send(bytes) => {
                if tcp.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Tls => {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_until_closed(tls).await;
                }
                return;
            }
            Step::Close => return,
        }
    }
    let mut sink = [0u8; 1024];
    let hold = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(Duration::from_secs(30), hold).await;
}
