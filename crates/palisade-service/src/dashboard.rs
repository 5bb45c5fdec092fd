//! The dashboard (README § Dashboard): aggregates of the caller's records (or
//! everyone's), computed in SQL and cached per scope. The cache key carries the scope's
//! version, which every recorded event bumps ([`crate::events`]), so a write shows on
//! this instance's next read and on another's as soon as it hears of it (at worst
//! [`palisade_store::cache::versions::MAX_AGE`] later).

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_auth::ids::UserId;
use palisade_auth::permissions::Permission;
use palisade_store::cache::{Cache, Lookup, ScopeVersions};
use palisade_store::repo::dashboard as repo;
use palisade_store::{Db, StoreError};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;

use crate::events::{ALL_SCOPE, owner_scope};
use crate::identity::Principal;

/// How many days `last_30_days` covers, today included.
const DAYS: i64 = 30;

/// Whose records the dashboard sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = DashboardScope)]
pub enum Scope {
    /// The caller's own.
    #[default]
    Own,
    /// Everyone's (`records:all`).
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// `scope=all` without `records:all`.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardView {
    pub contracts: ContractCounts,
    pub payments: PaymentCounts,
    /// Succeeded payments per UTC day, oldest first, every day of the last 30.
    pub last_30_days: Vec<DayView>,
    /// When these numbers were computed.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ContractCounts {
    pub total: i64,
    pub by_status: ByStatus,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = ContractsByStatus)]
pub struct ByStatus {
    pub draft: i64,
    pub active: i64,
    pub completed: i64,
    pub cancelled: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct PaymentCounts {
    pub succeeded: Succeeded,
    pub failed: Count,
    pub pending: Count,
    /// Refunded of succeeded payments, per currency.
    pub refunded_cents: Vec<Amount>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = SucceededPayments)]
pub struct Succeeded {
    pub count: i64,
    /// Per currency.
    pub amounts: Vec<Amount>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = PaymentCount)]
pub struct Count {
    pub count: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(as = CurrencyAmount)]
pub struct Amount {
    pub currency: String,
    pub amount_cents: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayView {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub count: i64,
    pub amounts: Vec<Amount>,
}

#[derive(Clone)]
pub struct Dashboard {
    db: Db,
    cache: Arc<Cache>,
    versions: Arc<ScopeVersions>,
}

impl Dashboard {
    pub fn new(db: Db, cache: Arc<Cache>, versions: Arc<ScopeVersions>) -> Dashboard {
        Dashboard {
            db,
            cache,
            versions,
        }
    }

    /// The dashboard of `scope` as JSON, and whether it came from the cache.
    pub async fn read(
        &self,
        who: &Principal,
        scope: Scope,
    ) -> Result<(Vec<u8>, Lookup), DashboardError> {
        let (owner, cache_scope) = match scope {
            Scope::Own => (Some(who.user_id), owner_scope(who.user_id)),
            Scope::All if who.can(Permission::RecordsAll) => (None, ALL_SCOPE.to_owned()),
            Scope::All => return Err(DashboardError::Forbidden),
        };
        let version = self.versions.version(&cache_scope).await?;
        let key = format!("dashboard:{cache_scope}:{version}");
        let loaded = self
            .cache
            .get_or_load("dashboard", &key, || async {
                let view = self.compute(owner).await?;
                Ok::<_, StoreError>(serde_json::to_vec(&view).unwrap_or_default())
            })
            .await?;
        Ok(loaded)
    }

    /// The numbers now, from the database.
    pub async fn compute(&self, owner: Option<UserId>) -> Result<DashboardView, StoreError> {
        let now = OffsetDateTime::now_utc();
        let first_day = now.date() - Duration::days(DAYS - 1);
        let since = first_day.midnight().assume_utc();
        let statuses = repo::contracts_by_status(&self.db, owner).await?;
        let payments = repo::payments_by_status(&self.db, owner).await?;
        let days = repo::succeeded_by_day(&self.db, owner, since).await?;

        let mut contracts = ContractCounts::default();
        for s in statuses {
            contracts.total += s.n;
            let slot = match s.status.as_str() {
                "draft" => &mut contracts.by_status.draft,
                "active" => &mut contracts.by_status.active,
                "completed" => &mut contracts.by_status.completed,
                "cancelled" => &mut contracts.by_status.cancelled,
                other => {
                    return Err(StoreError::Corrupt {
                        table: "contracts",
                        what: format!("status `{other}`"),
                    });
                }
            };
            *slot += s.n;
        }
        let mut pay = PaymentCounts::default();
        for p in payments {
            match p.status.as_str() {
                "succeeded" => {
                    pay.succeeded.count += p.n;
                    pay.succeeded
                        .amounts
                        .push(amount(&p.currency, p.amount_cents));
                    if p.refunded_cents > 0 {
                        pay.refunded_cents
                            .push(amount(&p.currency, p.refunded_cents));
                    }
                }
                "failed" => pay.failed.count += p.n,
                "pending" => pay.pending.count += p.n,
                _ => {}
            }
        }
        let mut by_day: BTreeMap<String, DayView> = (0..DAYS)
            .map(|i| {
                let date = crate::contracts::fields::date::format(first_day + Duration::days(i));
                let view = DayView {
                    date: date.clone(),
                    count: 0,
                    amounts: Vec::new(),
                };
                (date, view)
            })
            .collect();
        for d in days {
            if let Some(day) = by_day.get_mut(&d.day) {
                day.count += d.n;
                day.amounts.push(amount(&d.currency, d.amount_cents));
            }
        }
        Ok(DashboardView {
            contracts,
            payments: pay,
            last_30_days: by_day.into_values().collect(),
            generated_at: now,
        })
    }
}

fn amount(currency: &str, amount_cents: i64) -> Amount {
    Amount {
        currency: currency.to_owned(),
        amount_cents,
    }
}
