//! Logs: one JSON object per line on stdout, filtered by `LOG_LEVEL`.
//!
//! Lines go through a writer on a thread of its own, so a request never waits on a
//! `write` to stdout, and that thread writes them in batches. Should the buffer fill (128 Ki lines), lines are
//! dropped rather than requests stalled; the guard returned by [`init`] flushes what
//! is buffered when the process ends.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

#[must_use = "dropping the guard stops the log writer"]
pub fn init(level: &str) -> WorkerGuard {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // The writer thread drains every queued line, then flushes: buffered, a burst of
    // lines becomes one write(2), and nothing waits in the buffer once the queue is empty.
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking(stdout);
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
    guard
}
