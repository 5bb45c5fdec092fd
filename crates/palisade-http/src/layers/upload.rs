//! Whether a request is still waiting on its client's body. A body still arriving when
//! the request timeout passes is the client's slowness, answered 408; a handler still
//! working is the server's, answered 503 ([`super::edge`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::HttpBody;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// Set while the last read of the body waits on the client.
pub type Waiting = Arc<AtomicBool>;

pin_project_lite::pin_project! {
    /// A request body that records whether its reader waits on the client.
    pub struct Upload<B> {
        #[pin]
        inner: B,
        waiting: Waiting,
    }
}

impl<B> Upload<B> {
    pub fn new(inner: B, waiting: Waiting) -> Self {
        Upload { inner, waiting }
    }
}

impl<B> HttpBody for Upload<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        this.waiting.store(polled.is_pending(), Ordering::Relaxed);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether a read of the body was waiting on the client when asked.
pub fn still_sending(waiting: Option<&Waiting>) -> bool {
    waiting.is_some_and(|w| w.load(Ordering::Relaxed))
}
