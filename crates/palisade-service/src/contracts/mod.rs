//! Contracts (README § Contracts): create, read, list, change and delete, scoped to the
//! caller, with optimistic concurrency (`version`), the status machine, and an audit
//! entry and a domain event in the transaction of every write.
//!
//! Scope: a caller sees their own contracts; one holding `records:all` (managers,
//! admins) sees everyone's. Someone else's contract is `NotFound`, never `Forbidden`,
//! so ids cannot be probed.

pub mod fields;

use std::sync::Arc;

use palisade_auth::ids::{ContractId, UserId};
use palisade_auth::permissions::Permission;
use palisade_store::repo::contracts::{self as repo, ContractRow, Filter};
use palisade_store::repo::now;
use palisade_store::repo::payments::{self, Balance};
use palisade_store::{Db, StoreError};
use serde::Serialize;
use serde_json::json;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use crate::audit::{self, Action, Entry, Outcome};
use crate::events::{EventLog, EventType};
use crate::identity::{Principal, Provenance};
use crate::page::{BadCursor, Cursor, Limit, Page};
use crate::search::{SearchHit, SearchText, SearchType};
use fields::{ContractPatch, Money, NewContract, Problems, Status, Tag};

/// Why a contract operation failed; the HTTP layer maps each to one status and code.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// Not there, or someone else's.
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Problems),
    /// `If-Match` named another version than the stored one.
    #[error("the contract is at version {current}")]
    VersionMismatch { current: i64 },
    /// Other changes kept winning the race for this one; retrying may succeed.
    #[error("the contract is being changed by others")]
    Contended,
    #[error("a contract cannot move from {from} to {to}")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    #[error("the amount and currency are fixed once a contract leaves draft")]
    Locked,
    #[error("only a draft or cancelled contract without payments can be deleted")]
    Undeletable,
    /// `?owner=` of someone else without `records:all`.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    BadCursor(#[from] BadCursor),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A contract as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ContractView {
    #[schema(value_type = String, format = Uuid)]
    pub id: ContractId,
    #[schema(value_type = String, format = Uuid)]
    pub owner_id: UserId,
    pub title: String,
    pub counterparty: String,
    pub amount: Money,
    pub status: Status,
    #[serde(with = "fields::date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub starts_on: Option<Date>,
    #[serde(with = "fields::date::option")]
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<Date>,
    pub description: String,
    pub tags: Vec<String>,
    pub balance: BalanceView,
    /// Counts changes; `ETag: "<version>"`, and what `If-Match` names.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What was paid on a contract: succeeded payments, refunds, and what is left to pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct BalanceView {
    pub paid_cents: i64,
    pub refunded_cents: i64,
    /// The amount less what was paid and not refunded.
    pub outstanding_cents: i64,
}

/// The filters of `GET /api/v1/contracts` (and of the contracts export).
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub tag: Option<Tag>,
    pub q: Option<SearchText>,
    pub owner: Option<UserId>,
    pub created_after: Option<OffsetDateTime>,
    pub created_before: Option<OffsetDateTime>,
}

/// The contracts service. Cheap to clone.
#[derive(Clone)]
pub struct Contracts(Arc<Inner>);

struct Inner {
    db: Db,
    events: EventLog,
}

impl Contracts {
    pub fn new(db: Db, events: EventLog) -> Contracts {
        Contracts(Arc::new(Inner { db, events }))
    }

    pub async fn create(
        &self,
        who: &Principal,
        from: &Provenance,
        input: NewContract,
    ) -> Result<ContractView, ContractError> {
        let mut problems = Problems::new();
        fields::check_text("title", &input.title, &mut problems);
        fields::check_text("counterparty", &input.counterparty, &mut problems);
        fields::check_money(&input.amount, &mut problems);
        let description = input.description.unwrap_or_default();
        fields::check_description(&description, &mut problems);
        let tags = fields::tag_column(input.tags.as_deref().unwrap_or_default(), &mut problems);
        fields::check_dates(input.starts_on, input.ends_on, &mut problems);
        if !problems.is_empty() {
            return Err(ContractError::Invalid(problems));
        }
        let at = now();
        let row = ContractRow {
            id: ContractId::generate(),
            owner_id: who.user_id,
            title: input.title,
            counterparty: input.counterparty,
            amount_cents: input.amount.amount_cents,
            currency: input.amount.currency,
            status: Status::Draft.as_str().to_owned(),
            starts_on: input.starts_on,
            ends_on: input.ends_on,
            description,
            tags,
            version: 1,
            created_at: at,
            updated_at: at,
        };
        let view = view_of(&row, Balance::default())?;
        let mut tx = self.0.db.begin().await?;
        repo::insert(&mut tx, &row).await?;
        let data = serde_json::to_value(&view).unwrap_or_default();
        self.0
            .events
            .record(
                &mut tx,
                EventType::ContractCreated,
                row.id,
                row.owner_id,
                Some(who.user_id),
                data,
            )
            .await?;
        let entry =
            Entry::new(Action::ContractCreated, Outcome::Success).target("contract", row.id);
        audit::append(&mut tx, &from.actor(Some(who.user_id)), &entry).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// How many contracts `owner` has (a plan's `contracts_max` bounds it).
    pub async fn count_owned(&self, owner: UserId) -> Result<i64, ContractError> {
        Ok(repo::count_owned(&self.0.db, owner).await?)
    }

    pub async fn get(
        &self,
        who: &Principal,
        id: ContractId,
    ) -> Result<ContractView, ContractError> {
        let row = visible(who, repo::by_id(&self.0.db, id).await?)?;
        let balance = self.balance_of(id).await?;
        Ok(view_of(&row, balance)?)
    }

    /// A page of the contracts `query` selects among those `who` sees, newest first.
    pub async fn list(
        &self,
        who: &Principal,
        query: &ListQuery,
        cursor: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<ContractView>, ContractError> {
        let before = Cursor::start::<uuid::Uuid>(cursor)?.map(ContractId::from);
        let Some(filter) = self.filter(who, query)? else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let rows = repo::page(&self.0.db, &filter, before, limit.fetch()).await?;
        let page = Page::of(rows, limit, |r| r.row.id);
        let items = page
            .items
            .iter()
            .map(|r| {
                let balance = Balance {
                    paid_cents: r.paid_cents,
                    refunded_cents: r.refunded_cents,
                };
                view_of(&r.row, balance)
            })
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// The store filter of `query` for `who`; `None` when it can match nothing (a
    /// search without words).
    pub fn filter(
        &self,
        who: &Principal,
        query: &ListQuery,
    ) -> Result<Option<Filter>, ContractError> {
        let owner = who
            .records_of(query.owner)
            .map_err(|_| ContractError::Forbidden)?;
        let words = match &query.q {
            Some(q) if q.is_empty() => return Ok(None),
            Some(q) => Some(q.words().to_vec()),
            None => None,
        };
        Ok(Some(Filter {
            owner,
            status: query.status.map(Status::as_str),
            tag: query.tag.as_ref().map(|t| t.as_str().to_owned()),
            words,
            created_after: query.created_after,
            created_before: query.created_before,
        }))
    }

    /// Applies `patch`; with `if_match`, only to that version. A patch that changes
    /// nothing writes nothing.
    pub async fn update(
        &self,
        who: &Principal,
        from: &Provenance,
        id: ContractId,
        if_match: Option<&str>,
        patch: ContractPatch,
    ) -> Result<ContractView, ContractError> {
        // Without `If-Match`, a change that lost a race to another is worked out again
        // on the newer version (on SQLite the transaction already serialises them).
        for _ in 0..5 {
            let mut tx = self.0.db.begin().await?;
            let row = visible(who, repo::by_id(&mut tx, id).await?)?;
            if let Some(expected) = if_match
                && !version_matches(expected, row.version)
            {
                return Err(ContractError::VersionMismatch {
                    current: row.version,
                });
            }
            let (next, changed) = apply(&row, &patch)?;
            if changed.is_empty() {
                drop(tx);
                return self.get(who, id).await;
            }
            let next = ContractRow {
                version: row.version + 1,
                updated_at: now(),
                ..next
            };
            if !repo::update(&mut tx, &next).await? {
                if if_match.is_some() {
                    return Err(ContractError::VersionMismatch {
                        current: row.version + 1,
                    });
                }
                continue;
            }
            let data = json!({
                "version": next.version,
                "changed": changed,
                "status": next.status,
                "previous_status": row.status,
            });
            self.0
                .events
                .record(
                    &mut tx,
                    EventType::ContractUpdated,
                    id,
                    row.owner_id,
                    Some(who.user_id),
                    data,
                )
                .await?;
            let entry = Entry::new(Action::ContractUpdated, Outcome::Success)
                .target("contract", id)
                .detail("changed", changed.clone());
            audit::append(&mut tx, &from.actor(Some(who.user_id)), &entry).await?;
            tx.commit().await?;
            let balance = self.balance_of(id).await?;
            return Ok(view_of(&next, balance)?);
        }
        Err(ContractError::Contended)
    }

    /// Deletes a draft or cancelled contract that has no payment.
    pub async fn delete(
        &self,
        who: &Principal,
        from: &Provenance,
        id: ContractId,
    ) -> Result<(), ContractError> {
        let mut tx = self.0.db.begin().await?;
        let row = visible(who, repo::by_id(&mut tx, id).await?)?;
        let deletable = matches!(status_of(&row)?, Status::Draft | Status::Cancelled);
        if !deletable || payments::any_for(&mut tx, id).await? {
            return Err(ContractError::Undeletable);
        }
        repo::delete(&mut tx, id).await?;
        let data = json!({ "owner_id": row.owner_id, "status": row.status });
        self.0
            .events
            .record(
                &mut tx,
                EventType::ContractDeleted,
                id,
                row.owner_id,
                Some(who.user_id),
                data,
            )
            .await?;
        let entry = Entry::new(Action::ContractDeleted, Outcome::Success).target("contract", id);
        audit::append(&mut tx, &from.actor(Some(who.user_id)), &entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The best `limit` contracts for `text` among those `who` sees, best first.
    pub async fn search(
        &self,
        who: &Principal,
        text: &SearchText,
        limit: Limit,
    ) -> Result<Vec<SearchHit>, ContractError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let owner = (!who.can(Permission::RecordsAll)).then_some(who.user_id);
        let hits = repo::search(&self.0.db, owner, text.words(), limit.get()).await?;
        Ok(hits
            .into_iter()
            .map(|h| SearchHit {
                kind: SearchType::Contracts,
                id: h.id.as_uuid(),
                title: h.title,
                snippet: h.snippet,
                score: h.score,
            })
            .collect())
    }

    async fn balance_of(&self, id: ContractId) -> Result<Balance, ContractError> {
        let balances = payments::balances(&self.0.db, &[id]).await?;
        Ok(balances.first().map(|(_, b)| *b).unwrap_or_default())
    }
}

/// `row` when `who` may see it; `NotFound` otherwise.
fn visible(who: &Principal, row: Option<ContractRow>) -> Result<ContractRow, ContractError> {
    row.filter(|r| who.sees(r.owner_id))
        .ok_or(ContractError::NotFound)
}

/// Whether an `If-Match` value names `version`: `*`, or a list of entity tags one of
/// which is `"<version>"` (RFC 9110 §13.1.1; strong comparison, so a weak tag never
/// matches).
pub fn version_matches(if_match: &str, version: i64) -> bool {
    let ours = format!("\"{version}\"");
    if_match.trim() == "*" || if_match.split(',').any(|t| t.trim() == ours)
}

/// `row` with `patch` applied, and the names of the fields that changed; the rules of
/// a change (fields, dates, the status machine, the amount fixed after draft) checked.
fn apply(
    row: &ContractRow,
    patch: &ContractPatch,
) -> Result<(ContractRow, Vec<&'static str>), ContractError> {
    let mut next = row.clone();
    let mut changed = Vec::new();
    let mut problems = Problems::new();
    if let Some(title) = &patch.title {
        fields::check_text("title", title, &mut problems);
        next.title = title.clone();
    }
    if let Some(counterparty) = &patch.counterparty {
        fields::check_text("counterparty", counterparty, &mut problems);
        next.counterparty = counterparty.clone();
    }
    if let Some(description) = &patch.description {
        fields::check_description(description, &mut problems);
        next.description = description.clone();
    }
    if let Some(tags) = &patch.tags {
        next.tags = fields::tag_column(tags, &mut problems);
    }
    if let Some(amount) = &patch.amount {
        fields::check_money(amount, &mut problems);
        next.amount_cents = amount.amount_cents;
        next.currency = amount.currency.clone();
    }
    if let Some(starts_on) = patch.starts_on {
        next.starts_on = starts_on;
    }
    if let Some(ends_on) = patch.ends_on {
        next.ends_on = ends_on;
    }
    fields::check_dates(next.starts_on, next.ends_on, &mut problems);
    if !problems.is_empty() {
        return Err(ContractError::Invalid(problems));
    }
    let current = status_of(row)?;
    if let Some(to) = patch.status
        && to != current
    {
        if !current.may_become(to) {
            return Err(ContractError::InvalidTransition {
                from: current.as_str(),
                to: to.as_str(),
            });
        }
        next.status = to.as_str().to_owned();
    }
    let money_changed = next.amount_cents != row.amount_cents || next.currency != row.currency;
    if money_changed && current != Status::Draft {
        return Err(ContractError::Locked);
    }
    let fields = [
        ("title", next.title != row.title),
        ("counterparty", next.counterparty != row.counterparty),
        ("description", next.description != row.description),
        ("tags", next.tags != row.tags),
        ("amount", money_changed),
        ("starts_on", next.starts_on != row.starts_on),
        ("ends_on", next.ends_on != row.ends_on),
        ("status", next.status != row.status),
    ];
    changed.extend(fields.iter().filter(|(_, c)| *c).map(|(f, _)| *f));
    Ok((next, changed))
}

fn view_of(row: &ContractRow, balance: Balance) -> Result<ContractView, StoreError> {
    let kept = balance.paid_cents - balance.refunded_cents;
    Ok(ContractView {
        id: row.id,
        owner_id: row.owner_id,
        title: row.title.clone(),
        counterparty: row.counterparty.clone(),
        amount: Money {
            amount_cents: row.amount_cents,
            currency: row.currency.clone(),
        },
        status: status_of(row)?,
        starts_on: row.starts_on,
        ends_on: row.ends_on,
        description: row.description.clone(),
        tags: row.tag_list(),
        balance: BalanceView {
            paid_cents: balance.paid_cents,
            refunded_cents: balance.refunded_cents,
            outstanding_cents: row.amount_cents - kept,
        },
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn status_of(row: &ContractRow) -> Result<Status, StoreError> {
    Status::parse(&row.status).ok_or_else(|| StoreError::Corrupt {
        table: "contracts",
        what: format!("contract {}: status `{}`", row.id, row.status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_a_strong_comparison_of_the_version() {
        assert!(version_matches("\"3\"", 3));
        assert!(version_matches("\"1\", \"3\"", 3));
        assert!(version_matches("*", 3));
        assert!(!version_matches("\"2\"", 3));
        assert!(!version_matches("W/\"3\"", 3));
        assert!(!version_matches("3", 3));
        assert!(!version_matches("", 3));
    }

    #[test]
    fn the_status_machine() {
        use Status::*;
        let allowed: Vec<(Status, Status)> = Status::ALL
            .into_iter()
            .flat_map(|a| Status::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.may_become(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Draft, Active),
                (Draft, Cancelled),
                (Active, Completed),
                (Active, Cancelled)
            ]
        );
    }
}
