//! `stripe_events`: the ids of Stripe's webhook events already processed.

use sea_query::{ExprTrait, Iden, OnConflict, Query};
use time::OffsetDateTime;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum StripeEvents {
    Table,
    Id,
    Type,
    Created,
    ReceivedAt,
}

/// Records the event; `false` when it was recorded before (a replay).
pub async fn insert_if_absent(
    ex: impl Into<Exec<'_>>,
    id: &str,
    kind: &str,
    created: i64,
    received_at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(StripeEvents::Table)
        .columns([
            StripeEvents::Id,
            StripeEvents::Type,
            StripeEvents::Created,
            StripeEvents::ReceivedAt,
        ])
        .values_panic([id.into(), kind.into(), created.into(), received_at.into()])
        .on_conflict(OnConflict::column(StripeEvents::Id).do_nothing().to_owned())
        .to_owned();
    Ok(ex.into().execute("stripe_events", &stmt).await? == 1)
}

/// Whether the event was recorded (processed) before.
pub async fn seen(ex: impl Into<Exec<'_>>, id: &str) -> Result<bool, StoreError> {
    let stmt = Query::select()
        .expr_as(sea_query::Expr::val(1i64), "n")
        .from(StripeEvents::Table)
        .and_where(sea_query::Expr::col(StripeEvents::Id).eq(id))
        .limit(1)
        .to_owned();
    Ok(super::number(ex, "stripe_events", &stmt).await? > 0)
}
