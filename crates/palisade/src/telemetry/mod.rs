//! Logs: one JSON object per line on stdout ([`format`]), filtered by `LOG_LEVEL`,
//! written in batches by a thread of its own ([`sink`]).

mod format;
mod sink;

use tracing_subscriber::EnvFilter;

pub use sink::SinkGuard;

/// Installs the process-wide log subscriber. Keep the guard until the process ends: its
/// drop writes what is still buffered.
pub fn init(level: &str) -> std::io::Result<SinkGuard> {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (sink, guard) = sink::LogSink::spawn(std::io::stdout())?;
    let _ = tracing_subscriber::fmt()
        .event_format(format::JsonLines)
        .fmt_fields(format::JsonFields)
        .with_env_filter(filter)
        .with_writer(sink)
        .try_init();
    Ok(guard)
}
