//! `X-Request-ID`: keep a well-formed incoming id, otherwise mint a UUID; echo it on
//! the response and make it available to every layer and handler behind `observe`.

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served. Kept as the header value it is echoed as:
/// cloning it shares the bytes.
#[derive(Clone, Debug)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only visible ASCII ever gets in (`acceptable`, or a UUID).
        self.0.to_str().unwrap_or_default()
    }
}

tokio::task_local! {
    /// The id of the request being served by the future this thread is polling.
    static CURRENT: RequestId;
}

/// Runs `f` (one poll of a request's future) with `id` as the current request id.
pub fn scope<R>(id: &RequestId, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id.clone(), f)
}

/// The id of the request being served, when called while one is (by a log formatter,
/// for every line logged on its behalf).
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(RequestId::clone).ok()
}

/// An incoming id is kept when it is 1..=128 characters of `[A-Za-z0-9._:-]`: enough
/// for the ids proxies and tracers send, and nothing that could forge a log line.
fn acceptable(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then_some(s)
}

/// Keeps a well-formed incoming id or mints a UUID v7, and records it on the request.
pub fn assign(req: &mut Request) -> RequestId {
    let id = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if acceptable(v).is_some() => RequestId(v.clone()),
        _ => {
            let mut buf = [0; uuid::fmt::Hyphenated::LENGTH];
            uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
            // Owned by one shared allocation: the clones that follow cost a count each.
            let bytes = bytes::Bytes::from_owner(buf);
            RequestId(
                HeaderValue::from_maybe_shared(bytes).unwrap_or(HeaderValue::from_static("-")),
            )
        }
    };
    req.extensions_mut().insert(id.clone());
    id
}

/// Returns the id on the response.
pub fn echo(res: &mut Response, id: &RequestId) {
    res.headers_mut().insert(X_REQUEST_ID.clone(), id.0.clone());
}

#[cfg(test)]
mod tests {
    use super::acceptable;
    use http::HeaderValue;

    #[test]
    fn keeps_only_well_formed_ids() {
        assert_eq!(
            acceptable(&HeaderValue::from_static("abc-123_x.y:z")),
            Some("abc-123_x.y:z")
        );
        assert_eq!(acceptable(&HeaderValue::from_static("")), None);
        assert_eq!(acceptable(&HeaderValue::from_static("a b")), None);
        assert_eq!(acceptable(&HeaderValue::from_static("x\"}")), None);
        assert_eq!(
            acceptable(&HeaderValue::from_str(&"a".repeat(129)).unwrap()),
            None
        );
    }
}
