//! How a Stripe subscription's state moves a user's row: the ordering rules, apart
//! from any I/O so they can be tested on their own.
//!
//! Stripe sends events at least once and in no guaranteed order. Each state carries
//! when Stripe produced it (the event's `created`, or the time of a fetch); the row
//! remembers the newest it took (`stripe_version`), and:
//! 1. an older state never replaces a newer one (equal times are taken in arrival
//!    order: Stripe's times are whole seconds);
//! 2. a subscription that ended does not come back (Stripe never revives one);
//! 3. the end of one subscription does not end another the user has since taken.

use palisade_store::repo::subscriptions::SubscriptionRow;
use time::OffsetDateTime;

use super::plans::Plans;

/// A Stripe subscription as its events and Stripe's API show it.
#[derive(Clone, Debug, PartialEq)]
pub struct StripeSubscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    /// The price of its (first) item.
    pub price: Option<String>,
    pub current_period_end: Option<OffsetDateTime>,
    pub cancel_at_period_end: bool,
}

/// Statuses of a subscription that is over.
pub fn ended(status: &str) -> bool {
    matches!(status, "canceled" | "incomplete_expired")
}

/// Statuses under which a subscription's plan is granted: paying, trying out, or
/// within Stripe's retries of a failed renewal.
pub fn grants(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

/// The row after taking `sub`, produced by Stripe at `version` (unix seconds), or
/// `None` when the rules above say to leave it.
pub fn next(
    row: &SubscriptionRow,
    sub: &StripeSubscription,
    version: i64,
    plans: &Plans,
) -> Option<SubscriptionRow> {
    if version < row.stripe_version {
        return None;
    }
    let same = row.stripe_subscription.as_deref() == Some(sub.id.as_str());
    if same && ended(&row.status) {
        return None;
    }
    if !same && row.stripe_subscription.is_some() && ended(&sub.status) && !ended(&row.status) {
        return None;
    }
    let plan = sub
        .price
        .as_deref()
        .and_then(|p| plans.by_price(p))
        .unwrap_or_else(|| plans.default_plan());
    Some(SubscriptionRow {
        plan: plan.id.clone(),
        status: sub.status.clone(),
        stripe_subscription: Some(sub.id.clone()),
        current_period_end: sub.current_period_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        stripe_version: version,
        ..row.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_auth::ids::UserId;

    fn plans() -> Plans {
        Plans::parse(
            r#"[{"id":"free","name":"Free"},{"id":"pro","name":"Pro","features":["exports"],"stripe_price":"price_pro"}]"#,
        )
        .unwrap()
    }

    fn sub(id: &str, status: &str) -> StripeSubscription {
        StripeSubscription {
            id: id.into(),
            customer: "cus_1".into(),
            status: status.into(),
            price: Some("price_pro".into()),
            current_period_end: None,
            cancel_at_period_end: false,
        }
    }

    fn empty() -> SubscriptionRow {
        SubscriptionRow::empty(UserId::generate(), "free", palisade_store::repo::now())
    }

    #[test]
    fn a_new_subscription_sets_plan_status_and_version() {
        let row = next(&empty(), &sub("sub_1", "active"), 100, &plans()).unwrap();
        assert_eq!(
            (row.plan.as_str(), row.status.as_str(), row.stripe_version),
            ("pro", "active", 100)
        );
        assert_eq!(row.stripe_subscription.as_deref(), Some("sub_1"));
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let newer = next(&empty(), &sub("sub_1", "active"), 200, &plans()).unwrap();
        assert!(next(&newer, &sub("sub_1", "past_due"), 199, &plans()).is_none());
        // The same second: taken in arrival order.
        let same = next(&newer, &sub("sub_1", "past_due"), 200, &plans()).unwrap();
        assert_eq!(same.status, "past_due");
    }

    #[test]
    fn an_ended_subscription_does_not_come_back() {
        let active = next(&empty(), &sub("sub_1", "active"), 100, &plans()).unwrap();
        let gone = next(&active, &sub("sub_1", "canceled"), 150, &plans()).unwrap();
        assert!(next(&gone, &sub("sub_1", "active"), 150, &plans()).is_none());
        assert!(next(&gone, &sub("sub_1", "active"), 999, &plans()).is_none());
        // A new subscription after it is taken.
        let again = next(&gone, &sub("sub_2", "active"), 200, &plans()).unwrap();
        assert_eq!(again.status, "active");
    }

    #[test]
    fn the_end_of_an_old_subscription_does_not_end_the_new_one() {
        let first = next(&empty(), &sub("sub_1", "active"), 100, &plans()).unwrap();
        let second = next(&first, &sub("sub_2", "active"), 200, &plans()).unwrap();
        assert!(next(&second, &sub("sub_1", "canceled"), 300, &plans()).is_none());
    }

    #[test]
    fn an_unknown_price_grants_the_default_plan() {
        let mut s = sub("sub_1", "active");
        s.price = Some("price_other".into());
        assert_eq!(next(&empty(), &s, 1, &plans()).unwrap().plan, "free");
    }
}
