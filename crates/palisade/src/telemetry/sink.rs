//! Where log lines go: appended to a shared buffer that a thread of its own writes out
//! in batches, so a request never waits on a `write(2)`.
//!
//! Appending is a short mutex-guarded copy: no allocation per line and no wake-up of
//! the writer per line (tracing-appender's channel does both; see
//! docs/ARCHITECTURE.md). The writer wakes when the buffer turns non-empty, waits
//! [`BATCH_WINDOW`] for more lines to gather, and writes them in one call. WARN and
//! ERROR lines are written without the wait. When the output cannot keep up and the
//! buffer holds [`MAX_BUFFERED`] bytes, new lines are dropped rather than requests
//! stalled, and the number dropped is reported on stderr. Dropping the [`SinkGuard`]
//! writes whatever is buffered before the process ends.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather before one write.
pub const BATCH_WINDOW: Duration = Duration::from_millis(20);
/// The most bytes held for the writer; beyond this, lines are dropped.
pub const MAX_BUFFERED: usize = 8 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    urgent: bool,
    dropped: u64,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves plain bytes behind, still fit to write.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `MakeWriter` the log formatter writes each line into.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

/// Writes what is buffered and stops the writer thread when dropped.
#[must_use = "dropping the guard stops the log writer"]
pub struct SinkGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogSink {
    /// A sink whose lines a new thread writes to `out`.
    pub fn spawn(out: impl Write + Send + 'static) -> io::Result<(LogSink, SinkGuard)> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || write_batches(&shared, out)
            })?;
        Ok((
            LogSink {
                shared: shared.clone(),
            },
            SinkGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    fn append(&self, line: &[u8], urgent: bool) {
        let mut p = self.shared.lock();
        if p.lines.len() + line.len() > MAX_BUFFERED {
            p.dropped += 1;
            return;
        }
        // The writer sleeps only while the buffer is empty, or during its batch window
        // (where only an urgent line needs to reach it).
        let wake = p.lines.is_empty() || (urgent && !p.urgent);
        p.lines.extend_from_slice(line);
        p.urgent |= urgent;
        drop(p);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    let mut p = shared.lock();
    loop {
        while p.lines.is_empty() && !p.closing {
            p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        if !p.urgent && !p.closing {
            // Let the lines of the next few milliseconds join this write.
            p = shared
                .wake
                .wait_timeout_while(p, BATCH_WINDOW, |p| !p.urgent && !p.closing)
                .map(|(p, _)| p)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::swap(&mut batch, &mut p.lines);
        p.urgent = false;
        let dropped = std::mem::take(&mut p.dropped);
        let closing = p.closing;
        drop(p);

        // Output errors (a closed pipe) cannot be logged anywhere better; the lines are lost.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if dropped > 0 {
            let _ = writeln!(
                io::stderr(),
                "{{\"level\":\"WARN\",\"message\":\"log lines dropped: the output did not keep up\",\"dropped\":{dropped}}}"
            );
        }
        p = shared.lock();
        if closing && p.lines.is_empty() {
            return;
        }
    }
}

impl Drop for SinkGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One line being written; appended to the buffer as a whole when written.
pub struct LineWriter<'a> {
    sink: &'a LogSink,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.sink.append(line, self.urgent);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            sink: self,
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            sink: self,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// An output that records each write it received.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("out").push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Out {
        fn text(&self) -> String {
            let writes = self.0.lock().expect("out");
            writes
                .iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        }
        fn writes(&self) -> usize {
            self.0.lock().expect("out").len()
        }
    }

    fn wait_for(out: &Out, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !out.text().contains(text) {
            assert!(Instant::now() < deadline, "{text:?} never written");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn lines_written_together_leave_in_one_write() {
        let out = Out::default();
        let (sink, _guard) = LogSink::spawn(out.clone()).expect("spawn");
        for i in 0..100 {
            writeln!(sink.make_writer(), "line {i}").expect("write");
        }
        wait_for(&out, "line 99\n");
        assert!(out.writes() <= 2, "{} writes for 100 lines", out.writes());
        let text = out.text();
        assert!(text.starts_with("line 0\nline 1\n"), "in order: {text}");
    }

    #[test]
    fn a_lone_line_is_written_within_the_batch_window() {
        let out = Out::default();
        let (sink, _guard) = LogSink::spawn(out.clone()).expect("spawn");
        let start = Instant::now();
        sink.make_writer().write_all(b"alone\n").expect("write");
        wait_for(&out, "alone\n");
        assert!(start.elapsed() < BATCH_WINDOW * 10, "{:?}", start.elapsed());
    }

    #[test]
    fn dropping_the_guard_writes_everything_buffered() {
        let out = Out::default();
        let (sink, guard) = LogSink::spawn(out.clone()).expect("spawn");
        for i in 0..1000 {
            writeln!(sink.make_writer(), "{i}").expect("write");
        }
        drop(guard);
        assert!(out.text().ends_with("998\n999\n"), "the last lines arrived");
        assert_eq!(out.text().lines().count(), 1000);
    }

    #[test]
    fn a_full_buffer_drops_lines_instead_of_blocking() {
        // An output that blocks until released, as a stalled pipe would.
        struct Stalled(Arc<(Mutex<bool>, Condvar)>, Out);
        impl Write for Stalled {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let (released, cv) = &*self.0;
                let mut r = released.lock().expect("gate");
                while !*r {
                    r = cv.wait(r).expect("gate");
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let out = Out::default();
        let (sink, guard) = LogSink::spawn(Stalled(gate.clone(), out.clone())).expect("spawn");
        let line = vec![b'x'; 1024];
        let start = Instant::now();
        // Twice what the buffer holds, while the output is stalled: none of it blocks.
        for _ in 0..(2 * MAX_BUFFERED / line.len()) {
            sink.make_writer().write_all(&line).expect("write");
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "appending blocked"
        );
        *gate.0.lock().expect("gate") = true;
        gate.1.notify_all();
        drop(guard);
        // The writer held one batch while stalled, and the buffer at most MAX_BUFFERED
        // more: the rest was dropped.
        let written = out.text().len();
        assert!(
            (MAX_BUFFERED..2 * MAX_BUFFERED).contains(&written),
            "{written} bytes written"
        );
    }
}
