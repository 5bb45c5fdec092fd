//! The payments export: the list's filters, every column of a payment.

use palisade_store::repo::payments::{self as repo, PaymentRow};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::{BATCH, Export, ExportError, Exports, Format, IDLE, Record, csv_record, guard};
use crate::identity::{Principal, Provenance};
use crate::payments::ListQuery;

impl Exports {
    /// Starts an export of the payments `query` selects among those `who` sees.
    pub async fn payments(
        &self,
        who: &Principal,
        from: &Provenance,
        query: &ListQuery,
        format: Format,
    ) -> Result<Export, ExportError> {
        let filter = self.payments.filter(who, query)?;
        self.start(who, from, "payments", format, |db, rows| async move {
            repo::stream(&db, &filter, &rows, BATCH, IDLE).await
        })
        .await
    }
}

/// One exported payment: its columns, in [`Record::HEADER`]'s order.
#[derive(Serialize)]
struct Line<'a> {
    id: uuid::Uuid,
    contract_id: uuid::Uuid,
    payer_id: Option<uuid::Uuid>,
    amount_cents: i64,
    currency: &'a str,
    status: &'a str,
    payment_method: &'a str,
    failure_code: Option<&'a str>,
    refunded_cents: i64,
    provider: &'a str,
    provider_ref: Option<&'a str>,
    description: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
}

impl Record for PaymentRow {
    const HEADER: &'static [&'static str] = &[
        "id",
        "contract_id",
        "payer_id",
        "amount_cents",
        "currency",
        "status",
        "payment_method",
        "failure_code",
        "refunded_cents",
        "provider",
        "provider_ref",
        "description",
        "created_at",
        "updated_at",
    ];

    fn csv<W: std::io::Write>(&self, w: &mut csv::Writer<W>) {
        let time = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let text = |v: &Option<String>| guard(v.as_deref().unwrap_or_default()).into_owned();
        let cells = [
            self.id.to_string(),
            self.contract_id.to_string(),
            self.payer_id.map(|p| p.to_string()).unwrap_or_default(),
            self.amount_cents.to_string(),
            guard(&self.currency).into_owned(),
            guard(&self.status).into_owned(),
            guard(&self.payment_method).into_owned(),
            text(&self.failure_code),
            self.refunded_cents.to_string(),
            guard(&self.provider).into_owned(),
            text(&self.provider_ref),
            text(&self.description),
            time(self.created_at),
            time(self.updated_at),
        ];
        csv_record(w, &cells);
    }

    fn json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let line = Line {
            id: self.id.as_uuid(),
            contract_id: self.contract_id.as_uuid(),
            payer_id: self.payer_id,
            amount_cents: self.amount_cents,
            currency: &self.currency,
            status: &self.status,
            payment_method: &self.payment_method,
            failure_code: self.failure_code.as_deref(),
            refunded_cents: self.refunded_cents,
            provider: &self.provider,
            provider_ref: self.provider_ref.as_deref(),
            description: self.description.as_deref(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        serde_json::to_writer(out, &line)
    }
}
