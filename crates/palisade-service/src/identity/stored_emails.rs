//! The one-time fix that brings addresses stored before the canonical form existed
//! into it ([`palisade_auth::email`]), so uniqueness holds on the canonical form for
//! every row. Made once per database, in one transaction, recorded in `data_fixes`
//! with its report: the rows changed, and those left as they are because their
//! canonical forms collide or because they are no address at all (named by id, for an
//! operator to settle; none are expected).

use std::collections::BTreeMap;

use palisade_auth::email::Email;
use palisade_auth::ids::UserId;
use palisade_store::repo::{fixes, now, users};
use serde::Serialize;

use super::{Identity, IdentityError};

/// The fix's name in `data_fixes`.
pub const FIX: &str = "canonical_emails";

/// What the fix did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Rows whose address was rewritten in its canonical form.
    pub changed: Vec<UserId>,
    /// Rows whose addresses share one canonical form: each group left unchanged.
    pub collisions: Vec<Vec<UserId>>,
    /// Rows whose address is not one any more: left unchanged.
    pub invalid: Vec<UserId>,
}

impl Identity {
    /// Makes the fix unless it was made (`None` then).
    pub async fn canonicalise_stored_emails(&self) -> Result<Option<Report>, IdentityError> {
        let at = now();
        let mut tx = self.0.db.begin().await?;
        if !fixes::claim(&mut tx, FIX, at).await? {
            return Ok(None);
        }
        let mut report = Report::default();
        let mut by_canonical: BTreeMap<String, Vec<(UserId, String, Email)>> = BTreeMap::new();
        for (id, stored) in users::emails(&mut tx).await? {
            match Email::parse(&stored) {
                Ok(email) => by_canonical
                    .entry(email.as_str().to_owned())
                    .or_default()
                    .push((id, stored, email)),
                Err(_) => report.invalid.push(id),
            }
        }
        for rows in by_canonical.into_values() {
            match rows.as_slice() {
                [(id, stored, email)] if stored != email.as_str() => {
                    users::set_email(&mut tx, *id, email, at).await?;
                    report.changed.push(*id);
                }
                [_] => {}
                many => report
                    .collisions
                    .push(many.iter().map(|(id, _, _)| *id).collect()),
            }
        }
        let text = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
        fixes::report(&mut tx, FIX, &text).await?;
        tx.commit().await?;
        for id in &report.changed {
            self.0.views.forget(id);
        }
        Ok(Some(report))
    }
}
