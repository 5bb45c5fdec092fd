//! Carries the matched route template (`/api/v1/users/{id}`, never the raw path) from
//! the router out to the metrics and the access log, which run before routing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

/// The template of the route that answered, in the response's extensions.
#[derive(Clone, Debug)]
pub struct RouteTemplate(pub MatchedPath);

impl RouteTemplate {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Applied with `Router::layer`, so it runs after routing, where `MatchedPath` is known.
#[derive(Clone, Copy, Debug, Default)]
pub struct TagRouteLayer;

impl<S> Layer<S> for TagRouteLayer {
    type Service = TagRoute<S>;

    fn layer(&self, inner: S) -> TagRoute<S> {
        TagRoute(inner)
    }
}

#[derive(Clone, Debug)]
pub struct TagRoute<S>(S);

impl<S> Service<Request> for TagRoute<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tagged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let route = req.extensions().get::<MatchedPath>().cloned();
        Tagged {
            inner: self.0.call(req),
            route,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Tagged<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for Tagged<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.inner.poll(cx))?;
        if let Some(route) = this.route.take() {
            res.extensions_mut().insert(RouteTemplate(route));
        }
        Poll::Ready(Ok(res))
    }
}
