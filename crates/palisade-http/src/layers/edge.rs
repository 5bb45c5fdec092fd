//! The outermost service: what every request goes through before and after the router,
//! in the order the layer documentation ([`super`]) gives.
//!
//! One hand-written tower `Service` with a concrete future, calling one function per
//! concern, instead of a stack of `from_fn` layers and tower-http services: those box
//! their futures, clone their inner services and configuration on every request, and
//! on this path that was most of the cost (docs/ARCHITECTURE.md has the numbers).

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::BoxError;
use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{StatusCode, Uri};
use ipnet::IpNet;
use tower::Service;

use super::body::{self, BodyCheck};
use super::client_ip::{self, ClientIp};
use super::cors::{CorsGrant, CorsPolicy};
use super::metrics::{HttpMetrics, InProgress, MethodLabel};
use super::request_id::{self, RequestId};
use super::route::RouteTemplate;
use super::upload::{self, Upload, Waiting};
use super::{access_log, head, security_headers};
use crate::problem::{self, Problem};

/// What the edge needs from the configuration; shared by every clone of the service.
pub struct EdgeConfig {
    pub trusted_proxies: Vec<IpNet>,
    pub behind_tls: bool,
    pub cors: CorsPolicy,
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub metrics: &'static HttpMetrics,
}

/// The edge around an inner service (the router).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
    cfg: Arc<EdgeConfig>,
}

impl<S> Edge<S> {
    pub fn new(inner: S, cfg: EdgeConfig) -> Self {
        Edge {
            inner,
            cfg: Arc::new(cfg),
        }
    }
}

impl<S, B> Service<Request<B>> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Only a request with a body to come can wait on its client.
        let waiting = (!req.body().is_end_stream()).then(Waiting::default);
        let mut req = match &waiting {
            Some(w) => req.map(|b| Body::new(Upload::new(b, w.clone()))),
            None => req.map(Body::new),
        };
        let cfg = self.cfg.clone();
        let start = Instant::now();
        // On the way in: who is asking, under which id, from which origin.
        let id = request_id::assign(&mut req);
        let client = client_ip::assign(&mut req, &cfg.trusted_proxies);
        let method = MethodLabel::of(req.method());
        let version = req.version();
        let path = req.uri().clone();
        let grant = cfg.cors.grant(req.headers());
        let in_progress = cfg.metrics.start(method);

        let (stage, cors) = if let Some(res) = head::check(version, req.uri(), req.headers()) {
            (Stage::Done { res: Some(res) }, Some(grant))
        } else if let Some(res) = CorsPolicy::preflight(req.method(), req.headers(), &grant) {
            // A preflight's answer carries its own CORS headers.
            (Stage::Done { res: Some(res) }, None)
        } else {
            (request_id::scope(&id, || self.admit(req)), Some(grant))
        };
        EdgeFuture {
            stage,
            timer: None,
            out: Outbound {
                cfg,
                start,
                id,
                client,
                method,
                path,
                cors,
                waiting,
                version,
                _in_progress: in_progress,
            },
        }
    }
}

impl<S> Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    /// The body's declared length, then the inner service; a panic while calling it
    /// is a 500.
    fn admit(&mut self, req: Request) -> Stage<S::Future> {
        match body::check(&req, self.cfg.body_limit) {
            BodyCheck::Pass => match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
                Ok(fut) => Stage::Inner { fut },
                Err(panic) => Stage::Done {
                    res: Some(on_panic(panic)),
                },
            },
            BodyCheck::Refuse(res) => Stage::Done { res: Some(res) },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer in the making, then the bookkeeping on the way out.
    pub struct EdgeFuture<F> {
        #[pin]
        stage: Stage<F>,
        // Created only once the answer is not ready at the first poll: most answers
        // never need a timer.
        timer: Option<Pin<Box<tokio::time::Sleep>>>,
        out: Outbound,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Inner { #[pin] fut: F },
        Done { res: Option<Response> },
    }
}

/// What the way out needs to know about the request.
struct Outbound {
    cfg: Arc<EdgeConfig>,
    start: Instant,
    id: RequestId,
    client: ClientIp,
    method: MethodLabel,
    path: Uri,
    /// `None` for a preflight.
    cors: Option<CorsGrant>,
    /// Whether the body is still arriving; `None` when the request has none.
    waiting: Option<Waiting>,
    version: http::Version,
    _in_progress: InProgress,
}

impl<F> Future for EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Every line logged while polling, the access log's included, carries the id.
        request_id::scope(&this.out.id, || {
            Self::step(this.stage, this.timer, this.out, cx)
        })
    }
}

impl<F> EdgeFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    fn step(
        stage: Pin<&mut Stage<F>>,
        timer: &mut Option<Pin<Box<tokio::time::Sleep>>>,
        out: &Outbound,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response, Infallible>> {
        let polled = match stage.project() {
            StageProj::Inner { fut } => match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
                Ok(Poll::Ready(Ok(res))) => Poll::Ready(res),
                Ok(Poll::Ready(Err(never))) => match never {},
                Ok(Poll::Pending) => Poll::Pending,
                Err(panic) => Poll::Ready(on_panic(panic)),
            },
            StageProj::Done { res } => Poll::Ready(
                res.take()
                    .unwrap_or_else(|| Problem::internal().into_response()),
            ),
        };
        let res = match polled {
            Poll::Ready(res) => res,
            Poll::Pending => {
                let timer = timer.get_or_insert_with(|| {
                    let deadline = out.start + out.cfg.request_timeout;
                    Box::pin(tokio::time::sleep_until(deadline.into()))
                });
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                // Past the request timeout; dropping this future drops the handler's.
                timed_out(out.waiting.as_ref(), out.version)
            }
        };
        Poll::Ready(Ok(out.finish(res)))
    }
}

impl Outbound {
    /// On the way out: every error as problem+json, CORS and security headers, the
    /// request id, metrics and the access-log line.
    fn finish(&self, mut res: Response) -> Response {
        let route = res.extensions_mut().remove::<RouteTemplate>();
        let route = route.as_ref().map_or("unmatched", RouteTemplate::as_str);
        let mut res = problem::finish(res, &self.id);
        if let Some(cors) = &self.cors {
            cors.apply(res.headers_mut());
        }
        security_headers::apply(res.headers_mut(), self.cfg.behind_tls);
        request_id::echo(&mut res, &self.id);
        let elapsed = self.start.elapsed();
        self.cfg
            .metrics
            .record(self.method, route, res.status(), elapsed);
        access_log::record(
            self.method.as_str(),
            self.path.path(),
            route,
            res.status(),
            elapsed,
            self.client,
        );
        res
    }
}

/// The answer when the request timeout passes: 408 while the client is still sending
/// its body (the connection is closed: the rest of the body would be read as the next
/// request), else 503.
fn timed_out(waiting: Option<&Waiting>, version: http::Version) -> Response {
    if !upload::still_sending(waiting) {
        return Problem::from_status(StatusCode::SERVICE_UNAVAILABLE).into_response();
    }
    let mut res = Problem::from_status(StatusCode::REQUEST_TIMEOUT)
        .with_detail("the request body did not arrive within the request timeout")
        .into_response();
    if version <= http::Version::HTTP_11 {
        res.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    res
}

fn on_panic(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    Problem::internal().into_response()
}
