//! A line reader for plaintext protocol exchanges, bounded in time and size.
//!
//! Every read waits at most until the probe's deadline, and a line longer than
//! [`MAX_LINE`] ends the exchange: a silent or endless server costs one bounded probe.
//! Before the connection is handed to TLS, [`LineIo::into_inner`] refuses bytes the
//! server sent ahead of the TLS handshake (a STARTTLS injection), so nothing read in
//! plaintext can leak into the TLS session. Protocol meaning lives in `probe::starttls`.
//! Every line or message read and written is offered to `probe::transcript`, which
//! keeps it only while a transcript is being recorded.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// The longest line accepted, terminator included. SMTP allows 512 octets per reply
/// line (RFC 5321 4.5.3.1.5); capability lists of other protocols run longer.
pub const MAX_LINE: usize = 8192;

/// Why a line could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The deadline passed.
    #[error("no complete line before the probe timeout")]
    Timeout,
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server reset the connection, or another I/O error.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    /// A line did not end within the limit.
    #[error("a line longer than {limit} bytes")]
    TooLong {
        /// The limit.
        limit: usize,
    },
    /// Bytes arrived after the last expected reply, before TLS started.
    #[error("the server sent {count} unexpected bytes before the TLS handshake")]
    Unexpected {
        /// How many.
        count: usize,
    },
}

/// A stream with a bounded read buffer and a deadline.
#[derive(Debug)]
pub struct LineIo<S> {
    stream: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    deadline: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LineIo<S> {
    /// Wraps `stream`; every read and write must finish by `deadline`.
    pub fn new(stream: S, deadline: Instant) -> Self {
        Self {
            stream,
            buf: vec![0; MAX_LINE].into_boxed_slice(),
            start: 0,
            end: 0,
            deadline,
        }
    }

    /// Reads one line, without its `\r\n` or `\n`. Invalid UTF-8 is replaced.
    pub async fn read_line(&mut self) -> Result<String, LineError> {
        loop {
            if let Some(pos) = self.buf[self.start..self.end]
                .iter()
                .position(|b| *b == b'\n')
            {
                let line = &self.buf[self.start..self.start + pos];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let text = String::from_utf8_lossy(line).into_owned();
                self.start += pos + 1;
                super::transcript::received_line(&text);
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    /// Reads exactly `out.len()` bytes.
    pub async fn read_exact(&mut self, out: &mut [u8]) -> Result<(), LineError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.start == self.end {
                self.fill().await?;
            }
            let n = (self.end - self.start).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            filled += n;
        }
        super::transcript::received_bytes(out);
        Ok(())
    }

    /// Reads what has arrived, through the first `delimiter` if one is buffered.
    ///
    /// For exchanges without lines (XMPP's XML): waits only while nothing is buffered,
    /// then returns the buffered bytes up to and including the first `delimiter`, or all
    /// of them when none is `delimiter`. Bytes after the delimiter stay buffered, so
    /// [`LineIo::into_inner`] still refuses what the server sent ahead of TLS. The caller
    /// bounds the total it accepts; each chunk is at most [`MAX_LINE`] bytes.
    pub async fn read_chunk(&mut self, delimiter: u8) -> Result<Vec<u8>, LineError> {
        if self.start == self.end {
            self.fill().await?;
        }
        let buffered = &self.buf[self.start..self.end];
        let len = buffered
            .iter()
            .position(|b| *b == delimiter)
            .map_or(buffered.len(), |pos| pos + 1);
        let chunk = buffered[..len].to_vec();
        self.start += len;
        super::transcript::received_text(&chunk);
        Ok(chunk)
    }

    /// Reads more bytes into the buffer, compacting it first.
    async fn fill(&mut self) -> Result<(), LineError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(LineError::TooLong { limit: MAX_LINE });
        }
        let read = self.stream.read(&mut self.buf[self.end..]);
        match tokio::time::timeout_at(self.deadline, read).await {
            Err(_) => Err(LineError::Timeout),
            Ok(Ok(0)) => Err(LineError::Closed),
            Ok(Ok(n)) => {
                self.end += n;
                Ok(())
            }
            Ok(Err(e)) => Err(LineError::Io(e)),
        }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> Result<(), LineError> {
        super::transcript::sent(bytes);
        match tokio::time::timeout_at(self.deadline, self.stream.write_all(bytes)).await {
            Err(_) => Err(LineError::Timeout),
            Ok(result) => result.map_err(LineError::Io),
        }
    }

    /// The stream and the bytes read ahead of what was consumed, for a stage after
    /// which the peer may speak at once (a proxy's reply, then the server's banner).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.buf[self.start..self.end].to_vec();
        (self.stream, rest)
    }

    /// The stream, ready for TLS; an error if the server sent bytes not yet consumed.
    pub fn into_inner(self) -> Result<S, LineError> {
        match self.end - self.start {
            0 => Ok(self.stream),
            count => Err(LineError::Unexpected { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::duplex;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn lines_split_on_crlf_and_lf_across_reads() {
        let (client, mut server) = duplex(64);
        let mut io = LineIo::new(client, far());
        server.write_all(b"220 a\r\n250-b").await.unwrap();
        assert_eq!(io.read_line().await.unwrap(), "220 a");
        server.write_all(b"\n").await.unwrap();
        assert_eq!(io.read_line().await.unwrap(), "250-b");
        assert!(io.into_inner().is_ok());
    }

    #[tokio::test]
    async fn a_line_that_never_ends_is_refused_at_the_limit() {
        let (client, mut server) = duplex(MAX_LINE * 2);
        let mut io = LineIo::new(client, far());
        server.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        assert!(matches!(
            io.read_line().await,
            Err(LineError::TooLong { limit: MAX_LINE })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_at_the_deadline() {
        let (client, _server) = duplex(64);
        let mut io = LineIo::new(client, Instant::now() + Duration::from_secs(3));
        assert!(matches!(io.read_line().await, Err(LineError::Timeout)));
    }

    #[tokio::test]
    async fn bytes_left_over_before_tls_are_refused() {
        let (client, mut server) = duplex(64);
        let mut io = LineIo::new(client, far());
        server.write_all(b"220 go\r\n\x16\x03\x01").await.unwrap();
        assert_eq!(io.read_line().await.unwrap(), "220 go");
        assert!(matches!(
            io.into_inner(),
            Err(LineError::Unexpected { count: 3 })
        ));
    }

    #[tokio::test]
    async fn chunks_stop_after_the_delimiter_and_leave_the_rest_buffered() {
        let (client, mut server) = duplex(64);
        let mut io = LineIo::new(client, far());
        server.write_all(b"<a><b").await.unwrap();
        assert_eq!(io.read_chunk(b'>').await.unwrap(), b"<a>");
        assert_eq!(io.read_chunk(b'>').await.unwrap(), b"<b");
        server.write_all(b"/>\x16").await.unwrap();
        assert_eq!(io.read_chunk(b'>').await.unwrap(), b"/>");
        assert!(matches!(
            io.into_inner(),
            Err(LineError::Unexpected { count: 1 })
        ));
    }

    #[tokio::test]
    async fn a_closed_peer_is_reported_as_closed() {
        let (client, server) = duplex(64);
        drop(server);
        let mut io = LineIo::new(client, far());
        assert!(matches!(io.read_line().await, Err(LineError::Closed)));
    }
}
