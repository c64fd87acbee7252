//! Servers that misbehave in ways no real server should: each accepts connections on
//! 127.0.0.1:0 and does one bad thing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The misbehaviour.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Accepts and never says anything.
    Silent,
    /// Sends `220-` continuation lines forever.
    EndlessContinuation,
    /// Sends one line that never ends.
    EndlessLine,
    /// Answers the ClientHello with bytes that are not TLS.
    Garbage,
    /// Resets the connection after reading the ClientHello.
    ResetAfterHello,
}

/// A running hostile server; stops when dropped.
pub struct HostileServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// One message per accepted connection.
    pub accepted: std::sync::mpsc::Receiver<()>,
    task: JoinHandle<()>,
}

impl HostileServer {
    /// Starts a server that behaves as `behaviour` on every connection.
    pub async fn start(behaviour: Behaviour) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, accepted) = std::sync::mpsc::channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let _ = tx.send(());
                tokio::spawn(misbehave(tcp, behaviour));
            }
        });
        HostileServer {
            addr,
            accepted,
            task,
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn misbehave(mut tcp: TcpStream, behaviour: Behaviour) {
    match behaviour {
        Behaviour::Silent => {
            let mut sink = Vec::new();
            let _ = tcp.read_to_end(&mut sink).await;
        }
        Behaviour::EndlessContinuation => {
            while tcp.write_all(b"220-still greeting you\r\n").await.is_ok() {}
        }
        Behaviour::EndlessLine => {
            let chunk = [b'a'; 4096];
            while tcp.write_all(&chunk).await.is_ok() {}
        }
        Behaviour::Garbage => {
            let mut hello = [0u8; 512];
            let _ = tcp.read(&mut hello).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut hello)).await;
        }
        Behaviour::ResetAfterHello => {
            let mut hello = [0u8; 512];
            let _ = tcp.read(&mut hello).await;
            // A zero linger turns the close into a RST.
            #[allow(deprecated)]
            let _ = tcp.set_linger(Some(Duration::ZERO));
            drop(tcp);
        }
    }
}
