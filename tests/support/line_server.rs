//! A scripted server for line-based STARTTLS dialects (IMAP, POP3, FTP, NNTP, ManageSieve,
//! LMTP ...): it sends a greeting, answers each command line with the reply of the first
//! matching command prefix, and when it answers the upgrade command with the success
//! reply, continues with a TLS handshake and echoes until the client closes.
//!
//! The protocol knowledge lives in the script; the server only matches prefixes.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::tls_server::serve_until_closed;

/// What the server says. Replies are CRLF-terminated lines, sent as given.
#[derive(Clone, Debug)]
pub struct LineScript {
    /// Sent on connect.
    pub greeting: String,
    /// `(command prefix, reply)`, matched case-insensitively in order.
    pub replies: Vec<(String, String)>,
    /// The reply to a command no prefix matches.
    pub unknown: String,
    /// The command prefix that asks for TLS.
    pub upgrade: String,
    /// The reply to it after which the server starts TLS.
    pub ready: String,
}

impl LineScript {
    /// A server that greets with `greeting` and answers unknown commands with `unknown`.
    pub fn new(greeting: &str, unknown: &str) -> Self {
        Self {
            greeting: greeting.into(),
            replies: Vec::new(),
            unknown: unknown.into(),
            upgrade: String::new(),
            ready: String::new(),
        }
    }

    /// Answers commands starting with `prefix` with `reply`, replacing an earlier reply
    /// for the same prefix.
    pub fn on(mut self, prefix: &str, reply: &str) -> Self {
        match self
            .replies
            .iter_mut()
            .find(|(p, _)| p.eq_ignore_ascii_case(prefix))
        {
            Some(entry) => entry.1 = reply.into(),
            None => self.replies.push((prefix.into(), reply.into())),
        }
        self
    }

    /// `command` asks for TLS; answering it with `ready` starts the handshake.
    pub fn upgrade(mut self, command: &str, ready: &str) -> Self {
        self.upgrade = command.into();
        self.ready = ready.into();
        self.on(command, ready)
    }

    /// Replaces the greeting.
    pub fn greeting(mut self, greeting: &str) -> Self {
        self.greeting = greeting.into();
        self
    }

    /// The reply to one command line (without its line end).
    fn reply_to(&self, command: &str) -> &str {
        self.replies
            .iter()
            .find(|(prefix, _)| starts_with_ignore_case(command, prefix))
            .map_or(self.unknown.as_str(), |(_, reply)| reply.as_str())
    }

    /// Whether answering `command` with `reply` starts TLS.
    fn starts_tls(&self, command: &str, reply: &str) -> bool {
        !self.upgrade.is_empty()
            && starts_with_ignore_case(command, &self.upgrade)
            && reply == self.ready
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A running scripted server; stops when dropped.
pub struct LineServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LineServer {
    /// Starts the server with `script`, using `tls` after the upgrade.
    pub async fn start(script: LineScript, tls: Arc<ServerConfig>) -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let acceptor = TlsAcceptor::from(tls.clone());
                tokio::spawn(converse(tcp, script, acceptor));
            }
        });
        LineServer { addr, task }
    }
}

/// One connection: greeting, scripted replies, then TLS after the upgrade.
async fn converse(tcp: TcpStream, script: LineScript, acceptor: TlsAcceptor) {
    let mut conn = BufReader::new(tcp);
    if conn.write_all(script.greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let reply = script.reply_to(command);
        if conn.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        if script.starts_tls(command, reply) {
            if let Ok(tls) = acceptor.accept(conn.into_inner()).await {
                serve_until_closed(tls).await;
            }
            return;
        }
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
