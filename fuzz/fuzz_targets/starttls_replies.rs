//! Fuzzes every STARTTLS reader with what a server sends, over a loopback socket.
//!
//! Input: byte 0 picks the dialect (`StartTls::ALL[b % len]`); byte 1 how the server
//! sends and stops (bits 0-1: close, silence, reset, close; bit 2: each step after the
//! client's next command, else all at once; bit 3: an `xmpp_domain` other than the
//! server name); the rest is the server's steps, separated by [`STEP`]. The corpus
//! seeds are real servers' replies in this format.
//!
//! Properties: `probe::starttls::upgrade` returns, by the deadline (on a paused tokio
//! clock, so silence costs no real time), either the stream or a failure of stage
//! `starttls` with evidence. A reader that spins without awaiting is a libFuzzer
//! timeout.
//!
//! The dialects' `negotiate` functions are private and `upgrade` takes a `TcpStream`,
//! so each run makes a loopback connection; an entry point generic over the stream
//! would let this target use `tokio::io::duplex` and run several times faster.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use certwatch::config::StartTls;
use certwatch::probe::outcome::Phase;
use certwatch::probe::starttls::{upgrade, Context};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::time::Instant;

/// Separates the server's steps in the input.
const STEP: &[u8] = b"\xf0STEP";

/// The probe deadline.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Timer granularity past the deadline.
const MARGIN: Duration = Duration::from_millis(5);

fn runtime() -> &'static (Runtime, TcpListener) {
    static RUNTIME: OnceLock<(Runtime, TcpListener)> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback listener");
        (runtime, listener)
    })
}

fn split_steps(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut steps = Vec::new();
    while let Some(at) = data.windows(STEP.len()).position(|w| w == STEP) {
        steps.push(data[..at].to_vec());
        data = &data[at + STEP.len()..];
    }
    steps.push(data.to_vec());
    steps
}

/// Whether the dialect's client speaks first.
fn client_first(protocol: StartTls) -> bool {
    match protocol {
        StartTls::Ldap | StartTls::Postgres | StartTls::Xmpp | StartTls::XmppServer => true,
        StartTls::None
        | StartTls::Smtp
        | StartTls::Lmtp
        | StartTls::Imap
        | StartTls::Pop3
        | StartTls::Ftp
        | StartTls::Mysql
        | StartTls::Nntp
        | StartTls::Sieve => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else {
        return;
    };
    let protocol = StartTls::ALL[usize::from(*pick) % StartTls::ALL.len()];
    let ending = flags & 0b11;
    let lockstep = flags & 0b100 != 0;
    let context = Context {
        server_name: "example.org",
        xmpp_domain: (flags & 0b1000 != 0).then_some("chat.example.org"),
    };
    let steps = split_steps(rest);
    let client_first = client_first(protocol);
    let (runtime, listener) = runtime();

    runtime.block_on(async {
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (mut server, _) = listener.accept().await.expect("accept");
        server.set_nodelay(true).expect("nodelay");
        let server = tokio::spawn(async move {
            let mut commands = [0u8; 4096];
            for (i, step) in steps.iter().enumerate() {
                if lockstep && (i > 0 || client_first) {
                    match server.read(&mut commands).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
                if server.write_all(step).await.is_err() {
                    return;
                }
            }
            match ending {
                1 => {}
                2 => {
                    let _ = server.set_zero_linger();
                    return;
                }
                _ => {
                    let _ = server.shutdown().await;
                }
            }
            while let Ok(1..) = server.read(&mut commands).await {}
        });
        let start = Instant::now();
        let result = upgrade(protocol, client, start + TIMEOUT, context).await;
        let took = start.elapsed();
        assert!(
            took <= TIMEOUT + MARGIN,
            "{protocol}: answered after {took:?}"
        );
        if let Err(failure) = &result {
            assert_eq!(
                failure.kind.stage(),
                Phase::StartTls,
                "{protocol}: {failure:?}"
            );
            assert!(!failure.detail.is_empty(), "{protocol}: no evidence");
        }
        drop(result);
        server.await.expect("the scripted server does not panic");
    });
});
