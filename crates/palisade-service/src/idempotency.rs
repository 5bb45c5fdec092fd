//! Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a POST that opts in
//! runs once per (user, key), and every retry gets the first answer again.
//!
//! The first request *claims* the key (an insert that fails when the row exists) and
//! holds it for [`LEASE`] while it runs; a request with the same key meanwhile is told
//! the first is in progress. The answer is stored when the run ends and replayed for
//! [`WINDOW`]. A run that died without an answer (its process crashed) leaves a lease
//! that lapses, and the next retry takes the key over.
//!
//! What a run commits it also notes on the claim, in the same transaction
//! ([`Claim::record`]): that write names the holder's lease, so a run whose claim was
//! taken over cannot commit, and the run that took over finds what the first committed
//! ([`Claim::outcome`]) and continues it instead of doing it twice.

use std::time::Duration;

use palisade_auth::ids::UserId;
use palisade_store::repo::idempotency_keys::{self as repo, NewClaim};
use palisade_store::repo::now;
use palisade_store::{Db, StoreError, Tx};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How long a running request holds its key before another may take it over: longer
/// than any request may run.
pub const LEASE: Duration = Duration::from_secs(60);
/// How long an answer is replayed.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// An `Idempotency-Key`: 1 to 255 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<IdempotencyKey, &'static str> {
        if s.is_empty() || s.len() > MAX_KEY_LEN {
            return Err("must be 1 to 255 characters");
        }
        if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
            return Err("must be printable ASCII");
        }
        Ok(IdempotencyKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What identifies a request under its key: its method, path and body, the body in a
/// canonical form (object keys sorted, no insignificant space), so two encodings of
/// one body are the same request.
pub fn fingerprint(method: &str, path: &str, body: &Value) -> [u8; 32] {
    let mut canonical = Vec::new();
    write_canonical(body, &mut canonical);
    let mut h = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), &canonical] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(&Value::String(k.clone()), out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        // Scalars have one serialisation.
        scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
    }
}

/// A stored answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The headers worth replaying (`Location`, `ETag`, `Content-Type`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a request finds under its key.
#[derive(Debug)]
pub enum Claimed {
    /// The key is this request's to run.
    Fresh(Claim),
    /// The first request's answer, to send again.
    Replay(Answer),
    /// The first request is still running.
    InProgress,
    /// The key was used for another request (method, path or body).
    Reused,
}

/// A held key. Hand it to the service so that what it commits is noted on it
/// ([`Claim::record`]); end it with [`Idempotency::finish`] or [`Idempotency::release`].
#[derive(Clone, Debug)]
pub struct Claim {
    user: UserId,
    key: IdempotencyKey,
    token: Uuid,
    outcome: Option<String>,
}

/// The claim was taken over by another request (its lease lapsed): this run must not
/// commit.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency key was taken over by another request")]
pub struct ClaimLost;

impl Claim {
    /// What an earlier run under this key committed (a record's id), which this run
    /// must continue rather than repeat.
    pub fn outcome(&self) -> Option<&str> {
        self.outcome.as_deref()
    }

    /// Notes `outcome` on the key inside `tx`, the transaction that commits it.
    pub async fn record(&self, tx: &mut Tx, outcome: &str) -> Result<(), RecordError> {
        let held =
            repo::set_outcome(&mut *tx, self.user, self.key.as_str(), self.token, outcome).await?;
        if held {
            Ok(())
        } else {
            Err(RecordError::Lost(ClaimLost))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Lost(#[from] ClaimLost),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key store. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    db: Db,
}

fn after(d: Duration) -> time::OffsetDateTime {
    now() + time::Duration::try_from(d).unwrap_or(time::Duration::ZERO)
}

impl Idempotency {
    pub fn new(db: Db) -> Idempotency {
        Idempotency { db }
    }

    /// Claims `key` for `user`'s request of `fingerprint`, or says why not.
    pub async fn claim(
        &self,
        user: UserId,
        key: IdempotencyKey,
        fingerprint: &[u8; 32],
    ) -> Result<Claimed, StoreError> {
        let token = Uuid::new_v4();
        let at = now();
        let new = NewClaim {
            user,
            key: key.as_str(),
            fingerprint,
            lease_token: token,
            locked_until: after(LEASE),
            now: at,
            expires_at: after(WINDOW),
        };
        // Two rounds at most: a row that expires between the insert and the read is
        // taken over in the second.
        for _ in 0..2 {
            if repo::insert_if_absent(&self.db, &new).await? {
                return Ok(Claimed::Fresh(Claim {
                    user,
                    key,
                    token,
                    outcome: None,
                }));
            }
            let Some(row) = repo::get(&self.db, user, key.as_str()).await? else {
                continue;
            };
            let expired = row.expires_at <= at;
            if !expired && row.fingerprint != fingerprint.as_slice() {
                return Ok(Claimed::Reused);
            }
            if let (false, Some(status)) = (expired, row.status) {
                return Ok(Claimed::Replay(answer_of(status, row.headers, row.body)));
            }
            let lapsed = row.locked_until.is_none_or(|t| t < at);
            if !expired && !lapsed {
                return Ok(Claimed::InProgress);
            }
            if repo::take_over(&self.db, &new).await? {
                let outcome = if expired { None } else { row.outcome };
                return Ok(Claimed::Fresh(Claim {
                    user,
                    key,
                    token,
                    outcome,
                }));
            }
            return Ok(Claimed::InProgress);
        }
        Ok(Claimed::InProgress)
    }

    /// Stores the answer of `claim`'s run, to be replayed.
    pub async fn finish(&self, claim: &Claim, answer: &Answer) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&answer.headers).unwrap_or_else(|_| "[]".into());
        repo::finish(
            &self.db,
            claim.user,
            claim.key.as_str(),
            claim.token,
            (i32::from(answer.status), &headers, &answer.body),
        )
        .await
        .map(|_| ())
    }

    /// Lets go of `claim` without an answer (the run failed): the key is free again,
    /// or, if the run committed something, free for a retry to continue it.
    pub async fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        repo::release(&self.db, claim.user, claim.key.as_str(), claim.token).await
    }

    /// Deletes keys past their window; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        repo::purge_expired(&self.db, now()).await
    }
}

fn answer_of(status: i32, headers: Option<String>, body: Option<Vec<u8>>) -> Answer {
    let headers = headers
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or_default();
    Answer {
        status: u16::try_from(status).unwrap_or(500),
        headers,
        body: body.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_1_to_255_printable_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("tab\there").is_err());
        assert!(IdempotencyKey::parse("é").is_err());
    }

    #[test]
    fn the_fingerprint_ignores_key_order_and_spacing_only() {
        let a = fingerprint(
            "POST",
            "/p",
            &json!({"a": 1, "b": {"y": [1, 2], "x": null}}),
        );
        let b: Value = serde_json::from_str(r#"{ "b": {"x": null, "y": [1,2]}, "a": 1 }"#).unwrap();
        assert_eq!(a, fingerprint("POST", "/p", &b));
        assert_ne!(a, fingerprint("POST", "/q", &b));
        assert_ne!(a, fingerprint("PUT", "/p", &b));
        assert_ne!(
            a,
            fingerprint(
                "POST",
                "/p",
                &json!({"a": 2, "b": {"y": [1, 2], "x": null}})
            )
        );
        assert_ne!(
            a,
            fingerprint(
                "POST",
                "/p",
                &json!({"a": 1, "b": {"y": [2, 1], "x": null}})
            )
        );
        // Method and path cannot run into each other.
        assert_ne!(
            fingerprint("POS", "T/p", &json!(1)),
            fingerprint("POST", "/p", &json!(1))
        );
    }
}
