//! A scripted SMTP server: it sends the replies it is given and, when its STARTTLS
//! reply is 220, continues with a TLS handshake.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::tls_server::serve_until_closed;

/// What the server answers.
#[derive(Clone)]
pub struct SmtpScript {
    /// The greeting, CRLF-terminated lines.
    pub greeting: String,
    /// The reply to EHLO.
    pub ehlo: String,
    /// The reply to STARTTLS.
    pub starttls: String,
}

impl SmtpScript {
    /// A well-behaved server with a multi-line EHLO reply listing STARTTLS last.
    pub fn good() -> Self {
        Self {
            greeting: "220 mail.test ESMTP ready\r\n".into(),
            ehlo: "250-mail.test greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 STARTTLS\r\n".into(),
            starttls: "220 2.0.0 Ready to start TLS\r\n".into(),
        }
    }
}

/// A running scripted server; stops when dropped.
pub struct SmtpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SmtpServer {
    /// Starts the server with `script`, using `tls` after a 220 to STARTTLS.
    pub async fn start(script: SmtpScript, tls: Arc<ServerConfig>) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let script = script.clone();
                let acceptor = TlsAcceptor::from(tls.clone());
                tokio::spawn(async move {
                    let mut conn = BufReader::new(tcp);
                    let mut line = String::new();
                    if conn
                        .get_mut()
                        .write_all(script.greeting.as_bytes())
                        .await
                        .is_err()
                        || !script.greeting.starts_with("220")
                    {
                        return;
                    }
                    loop {
                        line.clear();
                        if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let command = line.trim_end().to_ascii_uppercase();
                        let reply = if command.starts_with("EHLO") {
                            &script.ehlo
                        } else if command == "STARTTLS" {
                            &script.starttls
                        } else {
                            "502 5.5.2 command not recognized\r\n"
                        };
                        if conn.get_mut().write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                        if command == "STARTTLS" && reply.starts_with("220") {
                            if let Ok(tls) = acceptor.accept(conn.into_inner()).await {
                                serve_until_closed(tls).await;
                            }
                            return;
                        }
                    }
                });
            }
        });
        SmtpServer { addr, task }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
