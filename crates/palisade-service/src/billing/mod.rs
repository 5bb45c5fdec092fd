//! Billing (README § Billing): plans from the configuration, each user's subscription
//! in the database, kept in step with Stripe by its webhook events, and the guard a
//! handler declares to need a feature or to stay within a limit.
//!
//! With billing off (`PALISADE_BILLING=off`, the default) every feature is on and no
//! limit applies; plans can still be listed and set by an admin.
//!
//! A user's plan is read on every gated request without a query: each instance trusts
//! what it read for [`MAX_AGE`] (the `/me` view's age), and forgets it at once when it
//! changes the row itself.

pub mod plans;
mod stripe;
pub mod transition;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_auth::ids::UserId;
use palisade_store::fresh::Fresh;
use palisade_store::repo::subscriptions::{self as repo, SubscriptionRow};
use palisade_store::repo::{now, users};
use palisade_store::{Db, StoreError};
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::audit::{self, Action, Entry, Outcome};
use crate::events::{EventLog, EventType};
use crate::identity::Provenance;
use crate::stripe::StripeApi;
pub use plans::{Feature, Limit, Plan, Plans};
use transition::{StripeSubscription, ended, grants};

/// How stale a user's plan may be on an instance that did not change it.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// Writes retried when another wrote the row between read and write.
const CONFLICT_RETRIES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// Billing is off: no checkout, portal or cancel.
    #[error("billing is not enabled")]
    Disabled,
    #[error("no such plan")]
    UnknownPlan,
    /// The plan has no Stripe price: it cannot be bought.
    #[error("the plan cannot be bought")]
    NotForSale,
    /// A live Stripe subscription exists: change it in the portal.
    #[error("already subscribed")]
    AlreadySubscribed,
    /// Nothing to manage or cancel.
    #[error("no subscription")]
    NoSubscription,
    /// The caller's plan lacks a feature; `plan` has it.
    #[error("the plan lacks the feature")]
    FeatureUnavailable {
        feature: &'static str,
        plan: Option<String>,
    },
    /// The caller's plan allows no more; `plan` allows more.
    #[error("the plan's limit is reached")]
    LimitReached {
        limit: &'static str,
        max: i64,
        plan: Option<String>,
    },
    #[error("no such user")]
    NoUser,
    /// The row kept changing under this write: try again.
    #[error("the subscription is being changed")]
    Contended,
    /// Stripe could not be reached: nothing changed, try again.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe refused the call.
    #[error("Stripe refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A user's subscription, as `GET /billing/subscription` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Subscription)]
pub struct SubscriptionView {
    pub plan: String,
    /// `none`, `trialing`, `active`, `past_due` or `canceled`.
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_period_end: Option<OffsetDateTime>,
    pub cancel_at_period_end: bool,
    /// What the caller may use now (with billing off: every feature).
    pub features: Vec<String>,
    /// The bounds that apply now (with billing off: none).
    pub limits: BTreeMap<String, i64>,
}

/// Stripe's status, in the few words clients are promised.
fn shown_status(status: &str) -> &'static str {
    match status {
        "trialing" => "trialing",
        "active" => "active",
        "past_due" => "past_due",
        s if ended(s) || s == "unpaid" || s == "paused" => "canceled",
        _ => "none",
    }
}

#[derive(Clone)]
pub struct BillingSettings {
    pub plans: Plans,
    /// `None`: billing off.
    pub stripe: Option<StripeApi>,
    /// Where Checkout and the portal send the customer back to.
    pub return_url: String,
}

/// The billing service. Cheap to clone.
#[derive(Clone)]
pub struct Billing(Arc<Inner>);

struct Inner {
    db: Db,
    events: EventLog,
    settings: BillingSettings,
    /// Each user's plan id, as last read.
    plans_of: Fresh<UserId, String>,
}

impl Billing {
    pub fn new(db: Db, events: EventLog, settings: BillingSettings) -> Billing {
        Billing(Arc::new(Inner {
            db,
            events,
            settings,
            plans_of: Fresh::new(MAX_AGE),
        }))
    }

    pub fn enabled(&self) -> bool {
        self.0.settings.stripe.is_some()
    }

    pub fn plans(&self) -> &[Plan] {
        self.0.settings.plans.all()
    }

    /// The plan named `id`.
    pub fn plan(&self, id: &str) -> Result<&Plan, BillingError> {
        self.0
            .settings
            .plans
            .get(id)
            .ok_or(BillingError::UnknownPlan)
    }

    fn stripe(&self) -> Result<&StripeApi, BillingError> {
        self.0
            .settings
            .stripe
            .as_ref()
            .ok_or(BillingError::Disabled)
    }

    /// The plan a row grants.
    fn granted<'p>(&'p self, row: Option<&SubscriptionRow>) -> &'p Plan {
        let plans = &self.0.settings.plans;
        row.filter(|r| grants(&r.status))
            .and_then(|r| plans.get(&r.plan))
            .unwrap_or_else(|| plans.default_plan())
    }

    /// The plan `user` is on now: from this instance's memory when it is recent.
    async fn plan_of(&self, user: UserId) -> Result<&Plan, BillingError> {
        let plans = &self.0.settings.plans;
        if let Some(id) = self.0.plans_of.get(&user) {
            return Ok(plans.get(&id).unwrap_or_else(|| plans.default_plan()));
        }
        let generation = self.0.plans_of.generation();
        let loaded_at = Instant::now();
        let row = repo::by_user(&self.0.db, user).await?;
        let plan = self.granted(row.as_ref());
        self.0
            .plans_of
            .put(user, plan.id.clone(), loaded_at, generation);
        Ok(plan)
    }

    /// The guard of a handler that needs `feature`: refused with the plan that has it.
    pub async fn require(&self, user: UserId, feature: Feature) -> Result<(), BillingError> {
        if !self.enabled() || self.plan_of(user).await?.has(feature) {
            return Ok(());
        }
        Err(BillingError::FeatureUnavailable {
            feature: feature.as_str(),
            plan: self
                .0
                .settings
                .plans
                .with_feature(feature)
                .map(|p| p.id.clone()),
        })
    }

    /// The bound on `limit` that applies to `user` now; `None`: none does (billing
    /// off, or the plan does not bound it). With a bound, the handler counts and asks
    /// [`Billing::check_room`].
    pub async fn bound(&self, user: UserId, limit: Limit) -> Result<Option<i64>, BillingError> {
        if !self.enabled() {
            return Ok(None);
        }
        Ok(self.plan_of(user).await?.limit(limit))
    }

    /// Refuses one more of what `limit` bounds when `count` has reached `max`, naming
    /// the plan that allows more.
    pub fn check_room(&self, limit: Limit, count: i64, max: i64) -> Result<(), BillingError> {
        if count < max {
            return Ok(());
        }
        Err(BillingError::LimitReached {
            limit: limit.as_str(),
            max,
            plan: self
                .0
                .settings
                .plans
                .allowing(limit, count)
                .map(|p| p.id.clone()),
        })
    }

    /// `user`'s subscription.
    pub async fn subscription(&self, user: UserId) -> Result<SubscriptionView, BillingError> {
        let row = repo::by_user(&self.0.db, user).await?;
        Ok(self.view_of(row.as_ref()))
    }

    fn view_of(&self, row: Option<&SubscriptionRow>) -> SubscriptionView {
        let plan = self.granted(row);
        let (features, limits) = if self.enabled() {
            (plan.features.clone(), plan.limits.clone())
        } else {
            (self.0.settings.plans.every_feature(), BTreeMap::new())
        };
        SubscriptionView {
            plan: plan.id.clone(),
            status: row.map_or("none", |r| shown_status(&r.status)),
            current_period_end: row.and_then(|r| r.current_period_end),
            cancel_at_period_end: row.is_some_and(|r| r.cancel_at_period_end),
            features,
            limits,
        }
    }

    /// `user`'s row, made (on the default plan) if they had none.
    async fn row_of(&self, user: UserId) -> Result<SubscriptionRow, BillingError> {
        if let Some(row) = repo::by_user(&self.0.db, user).await? {
            return Ok(row);
        }
        let default = &self.0.settings.plans.default_plan().id;
        repo::insert_if_absent(&self.0.db, &SubscriptionRow::empty(user, default, now())).await?;
        repo::by_user(&self.0.db, user)
            .await?
            .ok_or(BillingError::NoUser)
    }

    /// Applies `change` to `user`'s row until it lands on the row it was computed
    /// from; `change` answers `None` to leave the row. A change of plan or status is
    /// recorded (an event and an audit entry) in the write's transaction.
    async fn modify(
        &self,
        from: &Provenance,
        actor: Option<UserId>,
        user: UserId,
        action: Action,
        mut change: impl FnMut(&SubscriptionRow) -> Option<SubscriptionRow>,
    ) -> Result<SubscriptionRow, BillingError> {
        for _ in 0..CONFLICT_RETRIES {
            let row = self.row_of(user).await?;
            let Some(mut next) = change(&row) else {
                return Ok(row);
            };
            next.updated_at = now();
            let mut tx = self.0.db.begin().await?;
            if !repo::replace(&mut tx, &next).await? {
                continue;
            }
            let moved = (&next.plan, &next.status, next.cancel_at_period_end)
                != (&row.plan, &row.status, row.cancel_at_period_end);
            if moved {
                let data = json!({
                    "plan": next.plan,
                    "status": shown_status(&next.status),
                    "cancel_at_period_end": next.cancel_at_period_end,
                });
                self.0
                    .events
                    .record(
                        &mut tx,
                        EventType::SubscriptionChanged,
                        user,
                        user,
                        actor,
                        data,
                    )
                    .await?;
                let entry = Entry::new(action, Outcome::Success)
                    .target("user", user)
                    .detail("plan", next.plan.clone())
                    .detail("status", next.status.clone());
                audit::append(&mut tx, &from.actor(actor), &entry).await?;
            }
            let this = self.clone();
            tx.on_commit(move || this.0.plans_of.forget(&user));
            tx.commit().await?;
            next.revision += 1;
            return Ok(next);
        }
        Err(BillingError::Contended)
    }

    /// Puts `user` on `plan` (an admin's support action, or the CLI's): it holds
    /// until Stripe next reports on the user's subscription.
    pub async fn set_plan(
        &self,
        from: &Provenance,
        actor: Option<UserId>,
        user: UserId,
        plan: &str,
    ) -> Result<SubscriptionView, BillingError> {
        let plan = self.plan(plan)?.id.clone();
        let status = if plan == self.0.settings.plans.default_plan().id {
            "none"
        } else {
            "active"
        };
        let row = self
            .modify(from, actor, user, Action::PlanSet, |row| {
                Some(SubscriptionRow {
                    plan: plan.clone(),
                    status: status.to_owned(),
                    ..row.clone()
                })
            })
            .await?;
        Ok(self.view_of(Some(&row)))
    }

    /// The Stripe customer of `user`, created on first need.
    async fn customer_of(&self, api: &StripeApi, user: UserId) -> Result<String, BillingError> {
        if let Some(c) = self.row_of(user).await?.stripe_customer {
            return Ok(c);
        }
        let email = users::by_id(&self.0.db, user)
            .await?
            .ok_or(BillingError::NoUser)?
            .email;
        let customer = stripe::create_customer(api, user, &email).await?;
        let from = Provenance::default();
        let row = self
            .modify(
                &from,
                Some(user),
                user,
                Action::SubscriptionChanged,
                |row| {
                    row.stripe_customer.is_none().then(|| SubscriptionRow {
                        stripe_customer: Some(customer.clone()),
                        ..row.clone()
                    })
                },
            )
            .await?;
        row.stripe_customer.ok_or(BillingError::NoUser)
    }

    /// A Stripe Checkout URL subscribing `user` to `plan`.
    pub async fn checkout(&self, user: UserId, plan: &str) -> Result<String, BillingError> {
        let api = self.stripe()?;
        let plan = self.plan(plan)?;
        let price = plan
            .stripe_price
            .as_deref()
            .ok_or(BillingError::NotForSale)?;
        let row = self.row_of(user).await?;
        if row.stripe_subscription.is_some() && !ended(&row.status) && row.status != "incomplete" {
            return Err(BillingError::AlreadySubscribed);
        }
        let customer = self.customer_of(api, user).await?;
        stripe::checkout_session(api, user, &customer, price, &self.0.settings.return_url).await
    }

    /// A Stripe billing-portal URL for `user`.
    pub async fn portal(&self, user: UserId) -> Result<String, BillingError> {
        let api = self.stripe()?;
        let customer = self
            .row_of(user)
            .await?
            .stripe_customer
            .ok_or(BillingError::NoSubscription)?;
        stripe::portal_session(api, &customer, &self.0.settings.return_url).await
    }

    /// Sets `user`'s subscription to end at its period's end.
    pub async fn cancel(
        &self,
        from: &Provenance,
        user: UserId,
    ) -> Result<SubscriptionView, BillingError> {
        let api = self.stripe()?;
        let row = self.row_of(user).await?;
        let subscription = row
            .stripe_subscription
            .filter(|_| !ended(&row.status))
            .ok_or(BillingError::NoSubscription)?;
        let now_unix = now().unix_timestamp();
        let sub = stripe::cancel_at_period_end(api, &subscription).await?;
        let row = self.take(from, Some(user), user, &sub, now_unix).await?;
        Ok(self.view_of(Some(&row)))
    }

    /// Takes `sub`, as Stripe produced it at `version`, into `user`'s row.
    async fn take(
        &self,
        from: &Provenance,
        actor: Option<UserId>,
        user: UserId,
        sub: &StripeSubscription,
        version: i64,
    ) -> Result<SubscriptionRow, BillingError> {
        let plans = &self.0.settings.plans;
        self.modify(from, actor, user, Action::SubscriptionChanged, |row| {
            transition::next(row, sub, version, plans)
        })
        .await
    }

    /// The user whose Stripe customer is `customer`; `None`: not one of ours.
    async fn user_of(&self, customer: &str) -> Result<Option<UserId>, BillingError> {
        Ok(repo::by_customer(&self.0.db, customer)
            .await?
            .map(|r| r.user_id))
    }

    /// `customer.subscription.created|updated|deleted`: the subscription in the
    /// event, produced at the event's `created`. `false`: not a customer of ours.
    pub async fn subscription_event(
        &self,
        from: &Provenance,
        object: &Value,
        created: i64,
    ) -> Result<bool, BillingError> {
        let sub = stripe::subscription_of(object)?;
        let Some(user) = self.user_of(&sub.customer).await? else {
            return Ok(false);
        };
        self.take(from, None, user, &sub, created).await?;
        Ok(true)
    }

    /// `checkout.session.completed`: links the customer to the user the session was
    /// made for, if they had none, then takes the subscription as Stripe holds it now.
    pub async fn checkout_completed(
        &self,
        from: &Provenance,
        object: &Value,
    ) -> Result<bool, BillingError> {
        let user: Option<UserId> = object
            .get("client_reference_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let customer = stripe::customer_of(object)?;
        let Some(user) = user else {
            return Ok(false);
        };
        if users::by_id(&self.0.db, user).await?.is_none() {
            return Ok(false);
        }
        // A customer is one user's: a session naming another user is not taken.
        if self
            .user_of(&customer)
            .await?
            .is_some_and(|owner| owner != user)
        {
            return Ok(false);
        }
        let row = self
            .modify(from, None, user, Action::SubscriptionChanged, |row| {
                row.stripe_customer.is_none().then(|| SubscriptionRow {
                    stripe_customer: Some(customer.clone()),
                    ..row.clone()
                })
            })
            .await?;
        if row.stripe_customer.as_deref() != Some(customer.as_str()) {
            return Ok(false);
        }
        match object.get("subscription").and_then(Value::as_str) {
            Some(sub) => self.refresh(from, user, sub).await.map(|_| true),
            None => Ok(true),
        }
    }

    /// `invoice.payment_succeeded|failed`: the invoice's subscription may have moved
    /// (active again, past due); it is fetched and taken as Stripe holds it now.
    pub async fn invoice_event(
        &self,
        from: &Provenance,
        object: &Value,
    ) -> Result<bool, BillingError> {
        let Some(sub) = object.get("subscription").and_then(Value::as_str) else {
            return Ok(false);
        };
        let customer = stripe::customer_of(object)?;
        let Some(user) = self.user_of(&customer).await? else {
            return Ok(false);
        };
        self.refresh(from, user, sub).await.map(|_| true)
    }

    /// Fetches `subscription` and takes it, produced now.
    async fn refresh(
        &self,
        from: &Provenance,
        user: UserId,
        subscription: &str,
    ) -> Result<SubscriptionRow, BillingError> {
        let api = self.stripe()?;
        let now_unix = now().unix_timestamp();
        let sub = stripe::fetch_subscription(api, subscription).await?;
        self.take(from, None, user, &sub, now_unix).await
    }
}
