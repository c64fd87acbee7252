//! TCP connect, bounded by the probe deadline, with the failure classified; and the
//! [`Connection`] every later stage reads and writes, direct or through a proxy.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::outcome::{ConnectReason, Failure, FailureKind, Phase};
use super::with_deadline;

/// Opens a TCP connection to `addr`.
pub async fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Failure> {
    let stream = with_deadline(Phase::Connect, deadline, TcpStream::connect(addr))
        .await?
        .map_err(|e| {
            Failure::new(
                FailureKind::Connect(classify(&e)),
                format!("connecting to {addr}: {e}"),
            )
        })?;
    // Probes exchange few, small messages: send each at once.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Where one connection of a probe goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// An address certwatch resolved (or an IP literal).
    Ip(IpAddr),
    /// A name a `socks5h` proxy resolves.
    Name(String),
}

/// A connection to the endpoint, direct or through a proxy. The bytes a proxy's reply
/// carried past its own end (the server's first words, when it speaks first) are
/// read before the socket's.
#[derive(Debug)]
pub struct Connection {
    early: Box<[u8]>,
    read: usize,
    tcp: TcpStream,
}

impl Connection {
    /// A connection with nothing read ahead.
    pub fn direct(tcp: TcpStream) -> Self {
        Self::with_early(tcp, Vec::new())
    }

    /// A connection whose first bytes are `early`, then the socket's.
    pub fn with_early(tcp: TcpStream, early: Vec<u8>) -> Self {
        Self {
            early: early.into_boxed_slice(),
            read: 0,
            tcp,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read < this.early.len() {
            let n = (this.early.len() - this.read).min(buf.remaining());
            buf.put_slice(&this.early[this.read..this.read + n]);
            this.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

fn classify(error: &io::Error) -> ConnectReason {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ConnectReason::Refused,
        io::ErrorKind::TimedOut => ConnectReason::Timeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ConnectReason::Reset,
        _ => ConnectReason::Unreachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn early_bytes_are_read_before_the_sockets() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            peer.write_all(b" world").await.unwrap();
            let mut got = [0u8; 4];
            peer.read_exact(&mut got).await.unwrap();
            got
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut connection = Connection::with_early(tcp, b"hello".to_vec());
        let mut text = vec![0u8; 11];
        connection.read_exact(&mut text).await.unwrap();
        assert_eq!(text, b"hello world");
        connection.write_all(b"ping").await.unwrap();
        assert_eq!(&server.await.unwrap(), b"ping");
    }
}
