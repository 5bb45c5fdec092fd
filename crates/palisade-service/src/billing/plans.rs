//! Plans: what each grants (features by name, limits by name), from the configuration
//! (`PALISADE_BILLING_PLANS`, JSON). The first plan is the one a user without a
//! subscription is on. A plan with a `stripe_price` can be bought through Stripe
//! Checkout; Stripe's subscriptions name that price, which maps them back to the plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The plans when none are configured.
pub const DEFAULT_PLANS: &str = r#"[{"id":"free","name":"Free","features":[],"limits":{"contracts_max":100}},{"id":"pro","name":"Pro","features":["exports"],"limits":{"contracts_max":100000}}]"#;

/// A feature a handler can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `GET /exports/…`.
    Exports,
}

impl Feature {
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Exports => "exports",
        }
    }
}

/// A count a plan bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Contracts a user owns (any status).
    ContractsMax,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::ContractsMax => "contracts_max",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Features by name (`exports`).
    #[serde(default)]
    pub features: Vec<String>,
    /// Upper bounds by name (`contracts_max`); a limit not named is unbounded.
    #[serde(default)]
    pub limits: BTreeMap<String, i64>,
    /// The Stripe price a subscription to this plan is for (not shown to clients).
    #[serde(default, skip_serializing)]
    pub stripe_price: Option<String>,
}

impl Plan {
    pub fn has(&self, feature: Feature) -> bool {
        self.features.iter().any(|f| f == feature.as_str())
    }

    /// The plan's bound on `limit`; `None`: unbounded.
    pub fn limit(&self, limit: Limit) -> Option<i64> {
        self.limits.get(limit.as_str()).copied()
    }
}

/// The configured plans, the default first.
#[derive(Clone, Debug)]
pub struct Plans(Vec<Plan>);

impl Plans {
    /// Parses and checks `PALISADE_BILLING_PLANS`.
    pub fn parse(json: &str) -> Result<Plans, String> {
        let plans: Vec<Plan> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON list of plans: {e}"))?;
        if plans.is_empty() {
            return Err("at least one plan is needed".to_owned());
        }
        for (i, p) in plans.iter().enumerate() {
            let id_ok = !p.id.is_empty()
                && p.id.len() <= 64
                && p.id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !id_ok {
                return Err(format!("plan id `{}`: 1 to 64 of a-z, 0-9, `_`, `-`", p.id));
            }
            if plans[..i].iter().any(|q| q.id == p.id) {
                return Err(format!("plan `{}` is named twice", p.id));
            }
            if let Some((name, _)) = p.limits.iter().find(|(_, v)| **v < 0) {
                return Err(format!("plan `{}`: limit `{name}` is negative", p.id));
            }
            let price = p.stripe_price.as_deref();
            if price.is_some_and(|s| {
                plans[..i]
                    .iter()
                    .any(|q| q.stripe_price.as_deref() == Some(s))
            }) {
                return Err(format!(
                    "plan `{}`: its stripe_price is another plan's",
                    p.id
                ));
            }
        }
        Ok(Plans(plans))
    }

    pub fn all(&self) -> &[Plan] {
        &self.0
    }

    /// The plan of a user without a subscription.
    pub fn default_plan(&self) -> &Plan {
        &self.0[0]
    }

    pub fn get(&self, id: &str) -> Option<&Plan> {
        self.0.iter().find(|p| p.id == id)
    }

    /// The plan a Stripe price is for.
    pub fn by_price(&self, price: &str) -> Option<&Plan> {
        self.0
            .iter()
            .find(|p| p.stripe_price.as_deref() == Some(price))
    }

    /// Whether any plan can be bought through Stripe.
    pub fn any_for_sale(&self) -> bool {
        self.0.iter().any(|p| p.stripe_price.is_some())
    }

    /// The first plan that has `feature`, to name in a refusal.
    pub fn with_feature(&self, feature: Feature) -> Option<&Plan> {
        self.0.iter().find(|p| p.has(feature))
    }

    /// The first plan that allows more than `count` of `limit`.
    pub fn allowing(&self, limit: Limit, count: i64) -> Option<&Plan> {
        self.0
            .iter()
            .find(|p| p.limit(limit).is_none_or(|max| count < max))
    }

    /// Every feature some plan has: what a caller gets with billing off.
    pub fn every_feature(&self) -> Vec<String> {
        let mut all: Vec<String> = self.0.iter().flat_map(|p| p.features.clone()).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plans_parse_and_differ_in_exports() {
        let plans = Plans::parse(DEFAULT_PLANS).unwrap();
        assert_eq!(plans.default_plan().id, "free");
        assert!(!plans.default_plan().has(Feature::Exports));
        assert_eq!(plans.with_feature(Feature::Exports).unwrap().id, "pro");
        assert_eq!(plans.allowing(Limit::ContractsMax, 100).unwrap().id, "pro");
        assert_eq!(plans.allowing(Limit::ContractsMax, 99).unwrap().id, "free");
        assert!(plans.allowing(Limit::ContractsMax, 100_000).is_none());
        assert!(!plans.any_for_sale());
    }

    #[test]
    fn bad_plans_are_refused_with_the_reason() {
        for (json, says) in [
            ("[]", "at least one"),
            ("{}", "JSON list"),
            (r#"[{"id":"Free","name":"F"}]"#, "a-z"),
            (r#"[{"id":"a","name":"A"},{"id":"a","name":"B"}]"#, "twice"),
            (r#"[{"id":"a","name":"A","limits":{"x":-1}}]"#, "negative"),
            (r#"[{"id":"a","name":"A","extra":1}]"#, "unknown field"),
            (
                r#"[{"id":"a","name":"A","stripe_price":"p"},{"id":"b","name":"B","stripe_price":"p"}]"#,
                "another plan's",
            ),
        ] {
            let e = Plans::parse(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn prices_map_back_to_plans_and_are_not_shown() {
        let plans = Plans::parse(
            r#"[{"id":"free","name":"Free"},{"id":"pro","name":"Pro","stripe_price":"price_1"}]"#,
        )
        .unwrap();
        assert_eq!(plans.by_price("price_1").unwrap().id, "pro");
        assert!(plans.by_price("price_2").is_none());
        let shown = serde_json::to_value(plans.get("pro").unwrap()).unwrap();
        assert!(shown.get("stripe_price").is_none(), "{shown}");
    }
}
