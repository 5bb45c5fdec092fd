//! `mail_sent`: the mails sent to each address (by a hash of it), for the hourly cap.

use sea_query::{Expr, ExprTrait, Iden, Query};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Backend, Exec, StoreError};

#[derive(Iden)]
enum MailSent {
    Table,
    Id,
    Recipient,
    Template,
    CreatedAt,
}

/// Takes the lock of `recipient` until the transaction `ex` ends, so that two requests
/// cannot both pass the cap (PostgreSQL: an advisory lock; SQLite's transactions have
/// the one writer lock already).
pub async fn lock(ex: impl Into<Exec<'_>>, recipient: &str) -> Result<(), StoreError> {
    let mut ex = ex.into();
    if ex.backend() != Backend::Postgres {
        return Ok(());
    }
    let stmt = Query::select()
        .expr(Expr::cust_with_values(
            "pg_advisory_xact_lock(hashtext($1))",
            [format!("mail:{recipient}")],
        ))
        .to_owned();
    ex.execute("mail_sent", &stmt).await.map(|_| ())
}

/// How many mails of `templates` went to `recipient` since `since`.
pub async fn count_since(
    ex: impl Into<Exec<'_>>,
    recipient: &str,
    templates: &[&str],
    since: OffsetDateTime,
) -> Result<i64, StoreError> {
    let stmt = Query::select()
        .expr_as(Expr::col(MailSent::Id).count(), "n")
        .from(MailSent::Table)
        .and_where(Expr::col(MailSent::Recipient).eq(recipient))
        .and_where(Expr::col(MailSent::Template).is_in(templates.iter().copied()))
        .and_where(Expr::col(MailSent::CreatedAt).gt(since))
        .to_owned();
    super::number(ex, "mail_sent", &stmt).await
}

pub async fn record(
    ex: impl Into<Exec<'_>>,
    recipient: &str,
    template: &str,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let stmt = Query::insert()
        .into_table(MailSent::Table)
        .columns([
            MailSent::Id,
            MailSent::Recipient,
            MailSent::Template,
            MailSent::CreatedAt,
        ])
        .values_panic([
            Uuid::now_v7().into(),
            recipient.into(),
            template.into(),
            at.into(),
        ])
        .to_owned();
    ex.into().execute("mail_sent", &stmt).await.map(|_| ())
}

/// Deletes what is older than `before` (the cap looks back an hour).
pub async fn purge(ex: impl Into<Exec<'_>>, before: OffsetDateTime) -> Result<u64, StoreError> {
    let stmt = Query::delete()
        .from_table(MailSent::Table)
        .and_where(Expr::col(MailSent::CreatedAt).lt(before))
        .to_owned();
    ex.into().execute("mail_sent", &stmt).await
}
