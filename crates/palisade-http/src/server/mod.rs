//! The accept loop and the connections: limits axum's `serve` does not expose, and the
//! graceful shutdown sequence.
//!
//! Per connection ([`conn`]): the first request head within the header-read timeout
//! of the accept, idle connections closed, at most 100 headers in a block of at most
//! 16 KiB on HTTP/1 and HTTP/2 alike (the count on HTTP/2 is checked by the edge), and
//! HTTP/2 keep-alive pings. Per client address ([`clients`]): a cap on open
//! connections.
//!
//! Shutdown:
//! 1. the shutdown future resolves (SIGTERM/SIGINT): `/ready` answers 503 at once;
//! 2. for `shutdown_delay` new connections are still accepted, so load balancers see
//!    the 503 before connections are refused;
//! 3. the listener closes, idle connections close, in-flight requests get up to
//!    `shutdown_timeout` to finish; then `serve` returns and the caller closes pools.

mod clients;
mod conn;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use palisade_service::HealthService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::{App, HttpSettings};
use clients::Clients;
use conn::Deadlines;

/// A header block of at most this many bytes (hyper's read buffer bounds it on HTTP/1;
/// the floor hyper accepts is 8 KiB). The count of headers is bounded at 100 by hyper's
/// default on HTTP/1, which is the baseline's limit: setting it explicitly, even to the
/// same number, makes hyper initialise a 100-slot array for every request it parses.
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// HTTP/2 pings on a connection quiet this long, and the wait for their answer: a peer
/// that vanished is noticed even while a long answer is being streamed to it.
const H2_PING_EVERY: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

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
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let deadlines = Deadlines {
        first_request: settings.header_read_timeout,
        idle: settings.idle_timeout,
    };
    let clients = Clients::new(
        settings.max_connections_per_client,
        &settings.trusted_proxies,
    );
    let (drain, draining) = watch::channel(false);
    let tracker = Tracker::default();

    tokio::pin!(shutdown);
    let mut drain_at: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(place) = clients.admit(peer.ip()) else {
                        metrics::counter!("http_connections_refused_total", "reason" => "per_client_limit").increment(1);
                        tracing::debug!(client_ip = %peer.ip(), "connection refused: the address holds its connection cap");
                        continue;
                    };
                    tokio::spawn(conn::serve(
                        builder.clone(),
                        stream,
                        peer,
                        app.clone(),
                        deadlines,
                        draining.clone(),
                        place,
                        // Counted before the task runs, so a drain that begins at once
                        // still waits for it.
                        tracker.enter(),
                    ));
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
    tracing::info!(connections = tracker.open(), "draining in-flight requests");
    drain.send_replace(true);
    match tokio::time::timeout(settings.shutdown_timeout, tracker.all_closed()).await {
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

/// The open connections, to wait for them at shutdown.
#[derive(Clone, Default)]
pub struct Tracker(Arc<Open>);

#[derive(Default)]
struct Open {
    count: AtomicUsize,
    none_left: Notify,
}

/// A connection counted as open until dropped.
pub(super) struct Entered(Tracker);

impl Tracker {
    fn enter(&self) -> Entered {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        Entered(self.clone())
    }

    fn open(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.0.none_left.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.0.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.0.none_left.notify_waiters();
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
