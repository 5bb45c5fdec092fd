//! Exports (README § Exports): every record a list would show (contracts, payments),
//! streamed as CSV or NDJSON while it is read. Rows go from the database's cursor through two bounded
//! channels into the response body, so a slow client slows the reading and memory
//! stays flat whatever the row count; a client that stops reading for [`IDLE`] is
//! dropped. At most [`MAX_RUNNING`] exports of one user run at once, on all instances
//! together ([`Slots`]). Each export is audited (`export.run`) with its row count.

use std::borrow::Cow;
use std::time::Duration;

use std::future::Future;

use palisade_store::slots::Slots;
use palisade_store::{Db, StoreError};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::audit::{Action, Audit, Entry, Outcome};
use crate::contracts::fields::date;
use crate::contracts::{ContractError, Contracts};
use crate::identity::{Principal, Provenance};
use crate::payments::{PaymentError, Payments};

mod contracts;
mod payments;

/// A row an export writes: its columns, named once in [`Record::HEADER`].
pub trait Record: Send + 'static {
    /// The CSV header row (and the order of every line's cells).
    const HEADER: &'static [&'static str];
    /// Writes the row as one CSV line, every text cell through [`guard`].
    fn csv<W: std::io::Write>(&self, w: &mut csv::Writer<W>);
    /// Appends the row as one JSON object (without the newline).
    fn json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
}

/// Exports of one user running at once.
pub const MAX_RUNNING: usize = 2;
/// How long a client may stop reading before the export is dropped.
pub const IDLE: Duration = Duration::from_secs(30);
/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Rows handed from the reading to the encoding at once.
const BATCH: usize = 256;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ExportFormat)]
pub enum Format {
    #[default]
    Csv,
    Ndjson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{MAX_RUNNING} exports are already running")]
    TooManyRunning,
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// A running export: its chunks, in order, as they are produced.
pub struct Export {
    pub chunks: mpsc::Receiver<Vec<u8>>,
    /// `contracts-YYYY-MM-DD.csv`.
    pub filename: String,
}

#[derive(Clone)]
pub struct Exports {
    db: Db,
    contracts: Contracts,
    payments: Payments,
    audit: Audit,
    slots: Slots,
}

/// A cell a spreadsheet would read as a formula (it begins with `=`, `+`, `-`, `@`, a
/// tab or a carriage return) gets a leading `'`, so it is shown as text.
pub fn guard(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

impl Exports {
    pub fn new(
        db: Db,
        contracts: Contracts,
        payments: Payments,
        audit: Audit,
        slots: Slots,
    ) -> Exports {
        Exports {
            db,
            contracts,
            payments,
            audit,
            slots,
        }
    }

    /// Starts an export of the rows `read` sends (`what`: `contracts`, `payments`, for
    /// the file name and the audit entry), once `who` has a free slot.
    async fn start<R, F>(
        &self,
        who: &Principal,
        from: &Provenance,
        what: &'static str,
        format: Format,
        read: impl FnOnce(Db, mpsc::Sender<Vec<R>>) -> F,
    ) -> Result<Export, ExportError>
    where
        R: Record,
        F: Future<Output = Result<(u64, bool), StoreError>> + Send + 'static,
    {
        let slot = self
            .slots
            .take(&format!("exports:{}", who.user_id), MAX_RUNNING)
            .await
            .ok_or(ExportError::TooManyRunning)?;
        let (chunks_tx, chunks) = mpsc::channel::<Vec<u8>>(4);
        let (rows_tx, rows) = mpsc::channel::<Vec<R>>(4);
        let reading = read(self.db.clone(), rows_tx);
        let writing = write(format, rows, chunks_tx);
        let (audit, actor) = (self.audit.clone(), from.actor(Some(who.user_id)));
        let user = who.user_id;
        tokio::spawn(async move {
            let _slot = slot;
            let (read, written) = tokio::join!(reading, writing);
            let (outcome, rows) = match (&read, written) {
                (Ok((rows, true)), true) => (Outcome::Success, *rows),
                (Ok((rows, _)), _) => (Outcome::Failure, *rows),
                (Err(e), _) => {
                    tracing::error!(error = %e, user = %user, what, "export: reading failed");
                    (Outcome::Failure, 0)
                }
            };
            let entry = Entry::new(Action::ExportRun, outcome)
                .target("export", what)
                .detail("rows", rows)
                .detail("format", format.extension());
            audit.record_or_log(&actor, entry).await;
        });
        let today = date::format(time::OffsetDateTime::now_utc().date());
        Ok(Export {
            chunks,
            filename: format!("{what}-{today}.{}", format.extension()),
        })
    }
}

/// Encodes rows into chunks of about [`CHUNK`] bytes and sends them on; `false` when
/// the client went away or stopped reading.
async fn write<R: Record>(
    format: Format,
    rows: mpsc::Receiver<Vec<R>>,
    chunks: mpsc::Sender<Vec<u8>>,
) -> bool {
    let mut rows = Rows {
        batches: rows,
        current: Vec::new().into_iter(),
    };
    let mut header = format == Format::Csv;
    loop {
        let mut buf = Vec::with_capacity(CHUNK + 16 * 1024);
        let more = match format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .terminator(csv::Terminator::CRLF)
                    .from_writer(&mut buf);
                if std::mem::take(&mut header) {
                    csv_record(&mut w, R::HEADER);
                }
                let mut more = true;
                while w.get_ref().len() < CHUNK {
                    match rows.recv().await {
                        Some(row) => row.csv(&mut w),
                        None => {
                            more = false;
                            break;
                        }
                    }
                }
                // Into memory: cannot fail.
                let _ = w.flush();
                more
            }
            Format::Ndjson => {
                let mut more = true;
                while buf.len() < CHUNK {
                    match rows.recv().await {
                        Some(row) => {
                            if row.json(&mut buf).is_err() {
                                return false;
                            }
                            buf.push(b'\n');
                        }
                        None => {
                            more = false;
                            break;
                        }
                    }
                }
                more
            }
        };
        let sent = buf.is_empty()
            || matches!(
                tokio::time::timeout(IDLE, chunks.send(buf)).await,
                Ok(Ok(()))
            );
        if !sent {
            return false;
        }
        if !more {
            return true;
        }
    }
}

/// The rows of the batches, one at a time.
struct Rows<R> {
    batches: mpsc::Receiver<Vec<R>>,
    current: std::vec::IntoIter<R>,
}

impl<R> Rows<R> {
    async fn recv(&mut self) -> Option<R> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            self.current = self.batches.recv().await?.into_iter();
        }
    }
}

/// One RFC 4180 line (CRLF, quoted where needed). Into memory: cannot fail.
fn csv_record<W: std::io::Write, C: AsRef<str>>(w: &mut csv::Writer<W>, cells: &[C]) {
    for c in cells {
        let _ = w.write_field(c.as_ref().as_bytes());
    }
    let _ = w.write_record(None::<&[u8]>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        for cell in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(guard(cell), format!("'{cell}"));
        }
        assert_eq!(guard("plain"), "plain");
        assert_eq!(guard(""), "");
        let mut out = Vec::new();
        {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(&mut out);
            let mut cells: [Cow<'_, str>; 14] = Default::default();
            cells[0] = guard("=HYPERLINK(\"x\")");
            cells[1] = "a,b".into();
            csv_record(&mut w, &cells);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("\"'=HYPERLINK(\"\"x\"\")\",\"a,b\","),
            "{text}"
        );
        assert!(text.ends_with("\r\n"));
    }
}
