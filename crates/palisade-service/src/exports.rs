//! Exports (README § Exports): every contract a list would show, streamed as CSV or
//! NDJSON while it is read. Rows go from the database's cursor through two bounded
//! channels into the response body, so a slow client slows the reading and memory
//! stays flat whatever the row count; a client that stops reading for [`IDLE`] is
//! dropped. At most [`MAX_RUNNING`] exports of one user run at once, on all instances
//! together ([`Slots`]). Each export is audited (`export.run`) with its row count.

use std::borrow::Cow;
use std::time::Duration;

use palisade_store::Db;
use palisade_store::repo::contracts::{self as repo, ContractRow};
use palisade_store::slots::Slots;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::audit::{Action, Audit, Entry, Outcome};
use crate::contracts::fields::date;
use crate::contracts::{ContractError, Contracts, ListQuery};
use crate::identity::{Principal, Provenance};

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
    audit: Audit,
    slots: Slots,
}

/// One exported contract: its columns, in order.
#[derive(Serialize)]
struct Line<'a> {
    id: uuid::Uuid,
    owner_id: uuid::Uuid,
    title: &'a str,
    counterparty: &'a str,
    amount_cents: i64,
    currency: &'a str,
    status: &'a str,
    starts_on: Option<String>,
    ends_on: Option<String>,
    description: &'a str,
    tags: Vec<&'a str>,
    version: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
}

const HEADER: [&str; 14] = [
    "id",
    "owner_id",
    "title",
    "counterparty",
    "amount_cents",
    "currency",
    "status",
    "starts_on",
    "ends_on",
    "description",
    "tags",
    "version",
    "created_at",
    "updated_at",
];

impl<'a> Line<'a> {
    fn of(c: &'a ContractRow) -> Line<'a> {
        Line {
            id: c.id.as_uuid(),
            owner_id: c.owner_id.as_uuid(),
            title: &c.title,
            counterparty: &c.counterparty,
            amount_cents: c.amount_cents,
            currency: &c.currency,
            status: &c.status,
            starts_on: c.starts_on.map(date::format),
            ends_on: c.ends_on.map(date::format),
            description: &c.description,
            tags: c.tags.split_whitespace().collect(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Writes one contract as a CSV line, formatting into stack buffers where it can.
fn csv_contract<W: std::io::Write>(w: &mut csv::Writer<W>, c: &ContractRow) {
    let mut id = uuid::Uuid::encode_buffer();
    let mut owner = uuid::Uuid::encode_buffer();
    let (mut amount, mut version) = (itoa::Buffer::new(), itoa::Buffer::new());
    let time = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let date = |d: Option<time::Date>| d.map(date::format).unwrap_or_default();
    let cells: [Cow<'_, str>; 14] = [
        Cow::Borrowed(c.id.as_uuid().hyphenated().encode_lower(&mut id)),
        Cow::Borrowed(c.owner_id.as_uuid().hyphenated().encode_lower(&mut owner)),
        guard(&c.title),
        guard(&c.counterparty),
        Cow::Borrowed(amount.format(c.amount_cents)),
        guard(&c.currency),
        guard(&c.status),
        date(c.starts_on).into(),
        date(c.ends_on).into(),
        guard(&c.description),
        guard(&c.tags),
        Cow::Borrowed(version.format(c.version)),
        time(c.created_at).into(),
        time(c.updated_at).into(),
    ];
    csv_record(w, cells);
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
    pub fn new(db: Db, contracts: Contracts, audit: Audit, slots: Slots) -> Exports {
        Exports {
            db,
            contracts,
            audit,
            slots,
        }
    }

    /// Starts an export of the contracts `query` selects among those `who` sees.
    pub async fn contracts(
        &self,
        who: &Principal,
        from: &Provenance,
        query: &ListQuery,
        format: Format,
    ) -> Result<Export, ExportError> {
        let filter = self.contracts.filter(who, query)?;
        let slot = self
            .slots
            .take(&format!("exports:{}", who.user_id), MAX_RUNNING)
            .await
            .ok_or(ExportError::TooManyRunning)?;
        let (chunks_tx, chunks) = mpsc::channel::<Vec<u8>>(4);
        let (rows_tx, rows) = mpsc::channel::<Vec<ContractRow>>(4);
        let db = self.db.clone();
        let reading = async move {
            let Some(filter) = filter else {
                return Ok((0, true));
            };
            repo::stream(&db, &filter, &rows_tx, BATCH, IDLE).await
        };
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
                    tracing::error!(error = %e, user = %user, "export: reading failed");
                    (Outcome::Failure, 0)
                }
            };
            let entry = Entry::new(Action::ExportRun, outcome)
                .target("export", "contracts")
                .detail("rows", rows)
                .detail("format", format.extension());
            audit.record_or_log(&actor, entry).await;
        });
        let today = date::format(time::OffsetDateTime::now_utc().date());
        Ok(Export {
            chunks,
            filename: format!("contracts-{today}.{}", format.extension()),
        })
    }
}

/// Encodes rows into chunks of about [`CHUNK`] bytes and sends them on; `false` when
/// the client went away or stopped reading.
async fn write(
    format: Format,
    rows: mpsc::Receiver<Vec<ContractRow>>,
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
                    csv_record(&mut w, HEADER.map(Cow::Borrowed));
                }
                let mut more = true;
                while w.get_ref().len() < CHUNK {
                    match rows.recv().await {
                        Some(row) => csv_contract(&mut w, &row),
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
                            if serde_json::to_writer(&mut buf, &Line::of(&row)).is_err() {
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
struct Rows {
    batches: mpsc::Receiver<Vec<ContractRow>>,
    current: std::vec::IntoIter<ContractRow>,
}

impl Rows {
    async fn recv(&mut self) -> Option<ContractRow> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            self.current = self.batches.recv().await?.into_iter();
        }
    }
}

/// One RFC 4180 line (CRLF, quoted where needed). Into memory: cannot fail.
fn csv_record<W: std::io::Write>(w: &mut csv::Writer<W>, cells: [Cow<'_, str>; 14]) {
    for c in &cells {
        let _ = w.write_field(c.as_bytes());
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
            csv_record(&mut w, cells);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("\"'=HYPERLINK(\"\"x\"\")\",\"a,b\","),
            "{text}"
        );
        assert!(text.ends_with("\r\n"));
    }
}
