//! `X-Request-ID`: keep a well-formed incoming id, otherwise mint a UUID; echo it on
//! the response and make it available to every layer and handler behind `observe`.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served.
#[derive(Clone, Debug)]
pub struct RequestId(Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
    let id: Arc<str> = match req.headers().get(&X_REQUEST_ID).and_then(acceptable) {
        Some(s) => s.into(),
        None => uuid::Uuid::now_v7().to_string().into(),
    };
    let id = RequestId(id);
    req.extensions_mut().insert(id.clone());
    id
}

/// Returns the id on the response.
pub fn echo(res: &mut Response, id: &RequestId) {
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
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
