//! `subscriptions`: each user's plan, their Stripe customer and subscription. Every
//! write after the first is a compare-and-set on `revision`: the service reads a row,
//! decides, and writes only if nobody wrote in between (else it reads again).

use palisade_auth::ids::UserId;
use sea_query::{Expr, ExprTrait, Iden, OnConflict, Query, SimpleExpr};
use time::OffsetDateTime;

use crate::{Exec, StoreError};

#[derive(Iden)]
enum Subscriptions {
    Table,
    UserId,
    Plan,
    Status,
    StripeCustomer,
    StripeSubscription,
    CurrentPeriodEnd,
    CancelAtPeriodEnd,
    StripeVersion,
    Revision,
    UpdatedAt,
}

const COLUMNS: [Subscriptions; 10] = [
    Subscriptions::UserId,
    Subscriptions::Plan,
    Subscriptions::Status,
    Subscriptions::StripeCustomer,
    Subscriptions::StripeSubscription,
    Subscriptions::CurrentPeriodEnd,
    Subscriptions::CancelAtPeriodEnd,
    Subscriptions::StripeVersion,
    Subscriptions::Revision,
    Subscriptions::UpdatedAt,
];

/// A `subscriptions` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    #[sqlx(try_from = "uuid::Uuid")]
    pub user_id: UserId,
    pub plan: String,
    /// Stripe's subscription status (`active`, `past_due`, `canceled`, …), or `none`.
    pub status: String,
    pub stripe_customer: Option<String>,
    pub stripe_subscription: Option<String>,
    pub current_period_end: Option<OffsetDateTime>,
    pub cancel_at_period_end: bool,
    /// When Stripe produced the state this row holds (unix seconds; 0: never).
    pub stripe_version: i64,
    pub revision: i64,
    pub updated_at: OffsetDateTime,
}

impl SubscriptionRow {
    /// The row of a user without a subscription, on `plan`.
    pub fn empty(user_id: UserId, plan: &str, now: OffsetDateTime) -> SubscriptionRow {
        SubscriptionRow {
            user_id,
            plan: plan.to_owned(),
            status: "none".to_owned(),
            stripe_customer: None,
            stripe_subscription: None,
            current_period_end: None,
            cancel_at_period_end: false,
            stripe_version: 0,
            revision: 0,
            updated_at: now,
        }
    }

    fn values(&self) -> [SimpleExpr; 10] {
        [
            self.user_id.as_uuid().into(),
            self.plan.clone().into(),
            self.status.clone().into(),
            self.stripe_customer.clone().into(),
            self.stripe_subscription.clone().into(),
            self.current_period_end.into(),
            self.cancel_at_period_end.into(),
            self.stripe_version.into(),
            self.revision.into(),
            self.updated_at.into(),
        ]
    }
}

/// Stores `row` unless the user has one; `false` when they had.
pub async fn insert_if_absent(
    ex: impl Into<Exec<'_>>,
    row: &SubscriptionRow,
) -> Result<bool, StoreError> {
    let stmt = Query::insert()
        .into_table(Subscriptions::Table)
        .columns(COLUMNS)
        .values_panic(row.values())
        .on_conflict(
            OnConflict::column(Subscriptions::UserId)
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    Ok(ex.into().execute("subscriptions", &stmt).await? == 1)
}

pub async fn by_user(
    ex: impl Into<Exec<'_>>,
    user: UserId,
) -> Result<Option<SubscriptionRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Subscriptions::Table)
        .and_where(Expr::col(Subscriptions::UserId).eq(user.as_uuid()))
        .to_owned();
    ex.into().fetch_optional("subscriptions", &stmt).await
}

/// The row of the user whose Stripe customer is `customer` (its unique index).
pub async fn by_customer(
    ex: impl Into<Exec<'_>>,
    customer: &str,
) -> Result<Option<SubscriptionRow>, StoreError> {
    let stmt = Query::select()
        .columns(COLUMNS)
        .from(Subscriptions::Table)
        .and_where(Expr::col(Subscriptions::StripeCustomer).eq(customer))
        .to_owned();
    ex.into().fetch_optional("subscriptions", &stmt).await
}

/// Writes `row` over the stored one if that is still at `row.revision`, moving it to
/// the next revision; `false` when someone wrote first.
pub async fn replace(ex: impl Into<Exec<'_>>, row: &SubscriptionRow) -> Result<bool, StoreError> {
    let mut values = row.values();
    values[8] = (row.revision + 1).into();
    let stmt = Query::update()
        .table(Subscriptions::Table)
        .values(COLUMNS.into_iter().zip(values).skip(1))
        .and_where(Expr::col(Subscriptions::UserId).eq(row.user_id.as_uuid()))
        .and_where(Expr::col(Subscriptions::Revision).eq(row.revision))
        .to_owned();
    Ok(ex.into().execute("subscriptions", &stmt).await? == 1)
}
