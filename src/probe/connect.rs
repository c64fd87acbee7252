//! TCP connect, bounded by the probe deadline, with the failure classified.

use std::io;
use std::net::SocketAddr;

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

fn classify(error: &io::Error) -> ConnectReason {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ConnectReason::Refused,
        io::ErrorKind::TimedOut => ConnectReason::Timeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ConnectReason::Reset,
        _ => ConnectReason::Unreachable,
    }
}
