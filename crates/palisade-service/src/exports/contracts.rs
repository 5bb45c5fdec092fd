//! The contracts export: the list's filters, every column of a contract.

use std::borrow::Cow;

use palisade_store::repo::contracts::{self as repo, ContractRow};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::{BATCH, Export, ExportError, Exports, Format, IDLE, Record, csv_record, guard};
use crate::contracts::ListQuery;
use crate::contracts::fields::date;
use crate::identity::{Principal, Provenance};

impl Exports {
    /// Starts an export of the contracts `query` selects among those `who` sees.
    pub async fn contracts(
        &self,
        who: &Principal,
        from: &Provenance,
        query: &ListQuery,
        format: Format,
    ) -> Result<Export, ExportError> {
        let filter = self.contracts.filter(who, query)?;
        self.start(who, from, "contracts", format, |db, rows| async move {
            match filter {
                Some(filter) => repo::stream(&db, &filter, &rows, BATCH, IDLE).await,
                // A search without words matches nothing.
                None => Ok((0, true)),
            }
        })
        .await
    }
}

impl Record for ContractRow {
    const HEADER: &'static [&'static str] = &[
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

    fn csv<W: std::io::Write>(&self, w: &mut csv::Writer<W>) {
        csv_line(w, self);
    }

    fn json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &Line::of(self))
    }
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
fn csv_line<W: std::io::Write>(w: &mut csv::Writer<W>, c: &ContractRow) {
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
    csv_record(w, &cells);
}
