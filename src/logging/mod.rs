//! Logging and terminal output: the `tracing` subscriber `main.rs` installs, and
//! writing to stdout and stderr without dying when they are closed.
//!
//! Log lines go to stderr through [`sink::LogSink`], which never blocks a log call and
//! never fails one: a line that cannot be queued or written is dropped and counted
//! ([`dropped_lines`], exported as `certwatch_log_messages_dropped_total`). So a
//! closed stderr (`certwatch 2>&1 | head`, a restarted log collector) or a full one
//! (a collector that stopped reading) costs log lines, never the process: it keeps
//! serving and stops cleanly on SIGTERM. [`LogGuard`] flushes what is queued at exit,
//! for a bounded time.
//!
//! `--log-format text` is `tracing-subscriber`'s format, coloured only when stderr is
//! a terminal and `NO_COLOR` is unset or empty ([`colour`]); `--log-format json` is
//! [`json::JsonLines`]. Command output (`check`, `config check`) goes through
//! [`write_stdout`] and [`write_stderr`], which ignore a closed stream so the exit
//! code still says what happened.
//!
//! What gets logged, and with which fields, is each module's business.

pub mod json;
pub mod sink;

use std::ffi::OsStr;
use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogArgs, LogFormat};
use sink::LogSink;

/// How long the exit waits for queued log lines to be written.
pub const EXIT_FLUSH: Duration = Duration::from_millis(500);

/// The sink [`init`] installed, for [`dropped_lines`].
static INSTALLED: OnceLock<LogSink> = OnceLock::new();

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `--log-level` is not a level or filter.
    #[error("invalid --log-level {level:?}: {source}; use error, warn, info, debug or trace")]
    Level {
        /// What was given.
        level: String,
        /// What the filter parser said.
        source: tracing_subscriber::filter::ParseError,
    },
    /// The writer thread could not be started.
    #[error("cannot start the log writer thread: {0}")]
    Thread(#[source] io::Error),
    /// A global subscriber was already installed (only [`init`] installs one).
    #[error("logging is already initialised: {0}")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber for `args`, writing to stderr through a
/// [`LogSink`]; keep the guard until the end of `main`.
pub fn init(args: &LogArgs) -> Result<LogGuard, LoggingError> {
    let filter = EnvFilter::try_new(&args.log_level).map_err(|source| LoggingError::Level {
        level: args.log_level.clone(),
        source,
    })?;
    let sink = LogSink::start(sink::stderr()).map_err(LoggingError::Thread)?;
    let registry = tracing_subscriber::registry().with(filter);
    // `log_internal_errors(false)`: on a failed format or write, tracing-subscriber
    // would otherwise `eprintln!`, which panics on a closed stderr.
    let installed = match args.log_format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(sink.clone())
                    .with_ansi(colour(
                        io::stderr().is_terminal(),
                        std::env::var_os("NO_COLOR").as_deref(),
                    ))
                    .log_internal_errors(false),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(json::JsonLines)
                    .with_writer(sink.clone())
                    .with_ansi(false)
                    .log_internal_errors(false),
            )
            .try_init(),
    };
    installed.map_err(LoggingError::AlreadyInitialised)?;
    let _ = INSTALLED.set(sink.clone());
    Ok(LogGuard { sink })
}

/// Whether text logs are coloured: only on a terminal, and never when `NO_COLOR` is
/// set to a non-empty value (<https://no-color.org>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Log lines dropped (stderr full) or lost (stderr closed or failing) since start-up;
/// 0 before [`init`].
pub fn dropped_lines() -> u64 {
    INSTALLED.get().map_or(0, LogSink::dropped)
}

/// Keeps the log writer until the end of `main`, and flushes it, for at most
/// [`EXIT_FLUSH`], when dropped.
#[derive(Debug)]
pub struct LogGuard {
    sink: LogSink,
}

impl LogGuard {
    /// Writes `line` (a newline is added) to stderr in order with the log lines and as
    /// they are: lossy, never blocking. For the last words of `serve`, which must not
    /// hang on a full stderr.
    pub fn line(&self, line: &str) {
        self.sink.send(format!("{line}\n").as_bytes());
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.sink.flush(EXIT_FLUSH);
    }
}

/// Writes `text` to stdout as it is. A closed or failing stdout (`certwatch check ... |
/// head -1`) is ignored: the exit code still tells the result.
pub fn write_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes `text` to stderr as it is, ignoring a closed or failing stderr.
pub fn write_stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(true, Some(OsStr::new("0"))), "any non-empty value");
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new(""))));
    }
}
