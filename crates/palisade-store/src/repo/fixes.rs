//! `data_fixes`: changes to existing rows made once by the application (see the
//! migration that creates the table), each recorded with its report.

use sea_query::{Expr, ExprTrait, Iden, OnConflict, Query};
use time::OffsetDateTime;

use crate::{StoreError, Tx};

#[derive(Iden)]
enum DataFixes {
    Table,
    Name,
    AppliedAt,
    Report,
}

/// Claims fix `name` inside `tx`; returns whether it is this transaction's to make
/// (`false`: it was made, or another instance is making it and this call waited for
/// it). `report` is replaced by [`report`] before `tx` commits.
pub async fn claim(tx: &mut Tx, name: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(DataFixes::Table)
        .columns([DataFixes::Name, DataFixes::AppliedAt, DataFixes::Report])
        .values_panic([name.into(), now.into(), "{}".into()])
        .on_conflict(OnConflict::column(DataFixes::Name).do_nothing().to_owned())
        .to_owned();
    Ok(tx.execute("data_fixes", &stmt).await? == 1)
}

/// Records what fix `name` did.
pub async fn report(tx: &mut Tx, name: &str, report: &str) -> Result<(), StoreError> {
    let stmt = Query::update()
        .table(DataFixes::Table)
        .value(DataFixes::Report, report)
        .and_where(Expr::col(DataFixes::Name).eq(name))
        .to_owned();
    tx.execute("data_fixes", &stmt).await.map(|_| ())
}
