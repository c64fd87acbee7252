//! The log sink: a writer that never blocks, never fails and never grows without bound.
//!
//! A log call hands its formatted line to [`LogSink`], which queues it for a writer
//! thread of its own ([`QUEUE_LINES`] lines at most) and returns at once. When the
//! queue is full (stderr is a pipe nobody reads) the line is dropped; when the write
//! fails (the pipe was closed, a disk is full) the line is lost. Both are counted in
//! [`LogSink::dropped`], which `/metrics` exports as
//! `certwatch_log_messages_dropped_total`. So a broken log sink can cost log lines but
//! never stalls an async worker, never panics, and never keeps the process from
//! exiting: [`LogSink::flush`] waits for the queue only up to the deadline it is given.
//!
//! This is what `tracing-appender`'s lossy `non_blocking` writer does, written here
//! because that crate falls short on exactly the broken sinks this is for: its guard's
//! drop `println!`s when the queue is full (a panic on a closed stdout, a hang on a
//! full one), and it counts only lines dropped at a full queue, not lines its worker
//! failed to write, so a closed pipe would read as "nothing lost".

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Lines queued at most; beyond, a line is dropped and counted. Small on purpose: it
/// bounds memory and the time an exit may spend flushing to a slow reader.
pub const QUEUE_LINES: usize = 512;

/// Where log lines go: cheap to clone, one per log call; see the module docs.
#[derive(Clone, Debug)]
pub struct LogSink {
    queue: SyncSender<Vec<u8>>,
    shared: Arc<Shared>,
}

/// What the callers and the writer thread share.
#[derive(Debug, Default)]
struct Shared {
    /// Lines dropped at a full queue or lost to a failed write.
    dropped: AtomicU64,
    /// Lines accepted into the queue.
    queued: AtomicU64,
    /// Lines the writer thread is done with (written or lost), with a signal for
    /// [`LogSink::flush`].
    done: Mutex<u64>,
    done_changed: Condvar,
}

impl LogSink {
    /// Starts the writer thread, which writes each line to `out` in order. The thread
    /// ends when every clone of the sink is gone.
    pub fn start(out: Box<dyn Write + Send>) -> io::Result<LogSink> {
        let (queue, lines) = sync_channel(QUEUE_LINES);
        let shared = Arc::new(Shared::default());
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("certwatch-log".into())
            .spawn(move || write_lines(lines, out, &worker))?;
        Ok(LogSink { queue, shared })
    }

    /// Queues `line` (which carries its own newline) without waiting; when the queue
    /// is full or the writer thread is gone, the line is dropped and counted.
    pub fn send(&self, line: &[u8]) {
        if line.is_empty() {
            return;
        }
        match self.queue.try_send(line.to_vec()) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Ordering::AcqRel);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped or lost so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every line queued before this call is written (or lost), for at most
    /// `within`; true when it was.
    pub fn flush(&self, within: Duration) -> bool {
        let target = self.shared.queued.load(Ordering::Acquire);
        let done = self
            .shared
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (done, _) = self
            .shared
            .done_changed
            .wait_timeout_while(done, within, |done| *done < target)
            .unwrap_or_else(PoisonError::into_inner);
        *done >= target
    }
}

/// `tracing-subscriber`'s fmt layer writes each event with one `write_all` of the whole
/// formatted line, so one `write` is one line.
impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        self.clone()
    }
}

/// The writer thread: every line in order; a failed write loses that line only.
fn write_lines(lines: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>, shared: &Shared) {
    for line in lines {
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        *shared.done.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        shared.done_changed.notify_all();
    }
}

/// The process's standard error as a writer of its own: a duplicate of the descriptor,
/// so that a write blocked on a full pipe does not hold the lock of [`std::io::stderr`]
/// (which `eprintln!` and the panic message would then wait for).
pub fn stderr() -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    // Closed (EBADF) or not Unix: std's stderr, which treats a closed descriptor as
    // a sink.
    Box::new(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks every write until the test releases it, like a pipe
    /// nobody reads.
    struct Stalled {
        release: Mutex<mpsc::Receiver<()>>,
        written: mpsc::Sender<Vec<u8>>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.release.lock().unwrap().recv();
            let _ = self.written.send(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A writer whose reader has gone: every write fails with EPIPE.
    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_costs_lines_beyond_the_queue_never_a_wait() {
        let (release, release_rx) = mpsc::channel();
        let (written_tx, written) = mpsc::channel();
        let sink = LogSink::start(Box::new(Stalled {
            release: Mutex::new(release_rx),
            written: written_tx,
        }))
        .unwrap();
        let extra = 100;
        // The writer thread takes one line and blocks on it; the queue takes
        // QUEUE_LINES more; the rest are dropped. None of these calls waits.
        for i in 0..(QUEUE_LINES + 1 + extra) {
            sink.send(format!("line {i}\n").as_bytes());
        }
        // The writer may not have taken its first line yet when the queue filled.
        let dropped = sink.dropped();
        assert!(
            (extra as u64..=extra as u64 + 1).contains(&dropped),
            "dropped {dropped}"
        );
        assert!(
            !sink.flush(Duration::from_millis(50)),
            "nothing was written"
        );
        for _ in 0..(QUEUE_LINES + 1 + extra) {
            release.send(()).unwrap();
        }
        assert!(sink.flush(Duration::from_secs(10)));
        let lines: Vec<Vec<u8>> = written.try_iter().collect();
        assert_eq!(
            lines.len() as u64,
            (QUEUE_LINES + 1 + extra) as u64 - dropped
        );
        assert_eq!(lines[0], b"line 0\n", "order kept");
    }

    #[test]
    fn lines_a_closed_writer_loses_are_counted() {
        let mut sink = LogSink::start(Box::new(Closed)).unwrap();
        for _ in 0..3 {
            sink.write_all(b"lost\n").unwrap();
        }
        assert!(sink.flush(Duration::from_secs(10)));
        assert_eq!(sink.dropped(), 3);
    }

    #[test]
    fn flush_waits_for_the_lines_queued_before_it() {
        let (written_tx, written) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let sink = LogSink::start(Box::new(Stalled {
            release: Mutex::new(release_rx),
            written: written_tx,
        }))
        .unwrap();
        sink.send(b"a\n");
        sink.send(b"b\n");
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(sink.flush(Duration::from_secs(10)));
        assert_eq!(written.try_iter().count(), 2);
        assert_eq!(sink.dropped(), 0);
    }
}
