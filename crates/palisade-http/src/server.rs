//! The accept loop: hyper connections with the header-read timeout and header limits
//! axum's `serve` does not expose, and the graceful shutdown sequence:
//!
//! 1. the shutdown future resolves (SIGTERM/SIGINT): `/ready` answers 503 at once;
//! 2. for `shutdown_delay` new connections are still accepted, so load balancers see
//!    the 503 before connections are refused;
//! 3. the listener closes, idle keep-alive connections close, in-flight requests get up
//!    to `shutdown_timeout` to finish; then `serve` returns and the caller closes pools.

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use palisade_service::HealthService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::{App, HttpSettings};

/// A header block of at most this many bytes (hyper's read buffer bounds it; the floor
/// hyper accepts is 8 KiB). The count of headers is bounded at 100 by hyper's default,
/// which is the baseline's limit: setting it explicitly, even to the same number,
/// makes hyper initialise a 100-slot array for every request it parses.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How the drain ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Drain {
    /// Every in-flight request finished.
    Complete,
    /// `shutdown_timeout` passed with requests still running; they were abandoned.
    TimedOut,
}

pub async fn serve(
    listener: TcpListener,
    app: App,
    settings: &HttpSettings,
    health: HealthService,
    shutdown: impl Future<Output = ()>,
) -> Drain {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    let graceful = GracefulShutdown::new();

    tokio::pin!(shutdown);
    let mut drain_at: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let app = app.clone();
                    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        app.clone().oneshot(req)
                    });
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
                // Running out of file descriptors must not spin the loop.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown, if drain_at.is_none() => {
                tracing::info!(delay_ms = settings.shutdown_delay.as_millis() as u64, "shutdown signal received; not ready from now on");
                health.begin_shutdown();
                drain_at = Some(Box::pin(tokio::time::sleep(settings.shutdown_delay)));
            },
            () = async { drain_at.as_mut().expect("guarded").await }, if drain_at.is_some() => break,
        }
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "draining in-flight requests"
    );
    match tokio::time::timeout(settings.shutdown_timeout, graceful.shutdown()).await {
        Ok(()) => Drain::Complete,
        Err(_) => {
            tracing::warn!(
                timeout_s = settings.shutdown_timeout.as_secs(),
                "requests still running at the shutdown timeout"
            );
            Drain::TimedOut
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
