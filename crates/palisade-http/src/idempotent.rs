//! [`Idempotent<T>`]: the extractor a POST takes its caller and body with to honour an
//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header; the rules live in
//! `palisade_service::idempotency`). It answers before the handler runs when:
//!
//! - the header is missing → 400 `idempotency.key_missing`, or malformed (not 1..255
//!   printable ASCII) → 400 `idempotency.key_invalid`;
//! - the body is bad → the usual 400/413/415/422, and the key is not claimed;
//! - the key was used for another method, path or body → 422 `idempotency.key_reused`;
//! - the key's first request is still running → 409 `idempotency.in_progress`;
//! - the key's first request has answered → that answer again (status, body,
//!   `Location`, `ETag`), with `Idempotent-Replayed: true`.
//!
//! Otherwise the handler runs holding the claim and hands its response to
//! [`Held::finish`], which stores it for replay; a server error is not stored, so the
//! request can be retried. A handler that ends without finishing (a cancelled request)
//! releases the key in the background.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use palisade_service::idempotency::{
    Answer, Claim, Claimed, Idempotency, IdempotencyKey, fingerprint,
};
use palisade_service::identity::Principal;
use serde::de::DeserializeOwned;

use crate::auth::Authed;
use crate::extract::{json_body, parse, parse_value};
use crate::problem::Problem;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The headers of an answer worth replaying.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];
/// The largest answer stored (answers here are one resource's JSON).
const MAX_ANSWER: usize = 1 << 20;

/// The caller, the parsed body, and the held key.
pub struct Idempotent<T> {
    pub who: Principal,
    pub body: T,
    pub held: Held,
}

/// A claimed key, to be ended by [`Held::finish`].
pub struct Held {
    claim: Claim,
    store: Idempotency,
    /// Set once `finish` stores the answer; a `Held` dropped without it releases its
    /// key.
    finished: bool,
}

impl Held {
    /// The claim, for the service to note what it commits on.
    pub fn claim(&self) -> &Claim {
        &self.claim
    }

    /// Stores `response` for replay and returns it. A server error is not stored: the
    /// key is released (on drop), so the request can be retried.
    pub async fn finish(mut self, response: Response) -> Response {
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_ANSWER).await else {
            tracing::error!("an idempotent answer could not be read to be stored");
            return Problem::internal().into_response();
        };
        if !parts.status.is_server_error() {
            self.finished = true;
            let headers = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = parts.headers.get(name)?.to_str().ok()?;
                    Some((name.as_str().to_owned(), value.to_owned()))
                })
                .collect();
            let answer = Answer {
                status: parts.status.as_u16(),
                headers,
                body: bytes.to_vec(),
            };
            if let Err(e) = self.store.finish(&self.claim, &answer).await {
                // The lease lapses and a retry continues what committed.
                tracing::warn!(error = %e, "an idempotent answer could not be stored");
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

impl Drop for Held {
    /// Releases the key in the background (drop cannot wait).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (store, claim) = (self.store.clone(), self.claim.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.release(&claim).await {
                    tracing::warn!(error = %e, "an idempotency key could not be released; its lease will lapse");
                }
            });
        }
    }
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Idempotent<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Authed(who) = Authed::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let key = match parts.headers.get(&IDEMPOTENCY_KEY) {
            None => return Err(key_missing().into_response()),
            Some(v) => v
                .to_str()
                .map_err(|_| "must be printable ASCII")
                .and_then(IdempotencyKey::parse)
                .map_err(|e| key_invalid(e).into_response())?,
        };
        let (method, path) = (parts.method.to_string(), parts.uri.path().to_owned());
        let bytes = json_body(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        // Parsed once, as JSON; the bytes are read again only to describe bad JSON as
        // every other body is described.
        let value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => {
                let problem = parse::<T>(&bytes).err().unwrap_or_else(Problem::internal);
                return Err(problem.into_response());
            }
        };
        let print = fingerprint(&method, &path, &value);
        let parsed: T = parse_value(value).map_err(IntoResponse::into_response)?;
        let claimed = state
            .idempotency
            .claim(who.user_id, key, &print)
            .await
            .map_err(|e| Problem::from(e).into_response())?;
        match claimed {
            Claimed::Fresh(claim) => Ok(Idempotent {
                who,
                body: parsed,
                held: Held {
                    claim,
                    store: state.idempotency.clone(),
                    finished: false,
                },
            }),
            Claimed::Replay(answer) => Err(replay(answer)),
            Claimed::InProgress => Err(in_progress().into_response()),
            Claimed::Reused => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency.key_reused",
                "The Idempotency-Key was used for another request",
            )
            .with_detail(
                "a key names one request (method, path and body); use a new key for a new request",
            )
            .into_response()),
        }
    }
}

fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in &answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

fn key_missing() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "idempotency.key_missing",
        "The Idempotency-Key header is required",
    )
    .with_detail("send a unique key per request, e.g. a UUID, and the same key when retrying it")
}

fn key_invalid(why: &str) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "idempotency.key_invalid",
        "The Idempotency-Key header is malformed",
    )
    .with_detail(format!("the key {why}"))
}

/// 409 `idempotency.in_progress`.
pub fn in_progress() -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency.in_progress",
        "A request with this Idempotency-Key is still running",
    )
    .with_detail("retry once it has answered; the retry gets its answer")
}
