//! One connection, from accept to close, with the deadlines hyper does not keep:
//!
//! - a connection must deliver its first complete request head within the
//!   header-read timeout of its accept (hyper's own timer starts only once it reads a
//!   head, which a silent connection, or an HTTP/2 one silent after its preface, never
//!   lets it do);
//! - a connection with no request in flight, and no answer still being sent, is closed
//!   after the idle timeout (HTTP/2 has no other idle rule; on HTTP/1 hyper's
//!   header-read timeout between requests closes it at the same time).
//!
//! A request counts as in flight until its answer's body is sent, so a streamed answer
//! keeps its connection open however long it lasts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::Entered;
use super::clients::Admitted;
use crate::App;
use crate::watched::{Watch, Watched};

/// The deadlines of [`serve`].
#[derive(Clone, Copy)]
pub struct Deadlines {
    pub first_request: Duration,
    pub idle: Duration,
}

/// Serves `stream` until it closes, a deadline passes, or the drain begins.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    app: App,
    deadlines: Deadlines,
    mut drain: watch::Receiver<bool>,
    _place: Admitted,
    _open: Entered,
) {
    let activity = Arc::new(Activity::new());
    let seen = activity.clone();
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = seen.begin();
        let answer = app.clone().oneshot(req);
        async move {
            let res: Response<Body> = match answer.await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(res.map(|body| Watched::new(body, busy)))
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let deadline = activity.deadline(deadlines);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            // The last request ended: the idle deadline starts now.
            () = activity.went_idle.notified() => continue,
            _ = drain.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until(deadline), if deadline.is_some() && !closing => {
                // A request may have begun meanwhile: only a deadline still passed counts.
                if activity.deadline(deadlines).is_none_or(|d| d > Instant::now()) {
                    continue;
                }
                if activity.served() {
                    metrics::counter!("http_connections_closed_total", "reason" => "idle").increment(1);
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else {
                    // Nothing was ever asked: there is nothing to finish.
                    metrics::counter!("http_connections_closed_total", "reason" => "no_request").increment(1);
                    tracing::debug!(client_ip = %peer.ip(), "closed a connection that sent no request in time");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What the connection is doing: requests in flight, and since when it is idle.
struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `accepted` at which the last request ended; `u64::MAX` before
    /// any began.
    idle_since_ms: AtomicU64,
    /// Told when the last request in flight ends.
    went_idle: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(u64::MAX),
            went_idle: Notify::new(),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn served(&self) -> bool {
        self.idle_since_ms.load(Ordering::SeqCst) != u64::MAX
            || self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// When the connection is to be closed if nothing happens; `None` while busy.
    fn deadline(&self, d: Deadlines) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(match self.idle_since_ms.load(Ordering::SeqCst) {
            u64::MAX => self.accepted + d.first_request,
            ms => self.accepted + Duration::from_millis(ms) + d.idle,
        })
    }
}

/// A request in flight; dropped when its answer is sent (or abandoned).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.accepted.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        a.idle_since_ms.store(ms, Ordering::SeqCst);
        if a.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            a.went_idle.notify_one();
        }
    }
}

/// The request stays in flight until its answer's body is sent (or dropped).
impl Watch for Busy {
    fn polled(&self, _pending: bool) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        first_request: Duration::from_secs(10),
        idle: Duration::from_secs(5),
    };

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_requests() {
        let a = Arc::new(Activity::new());
        assert_eq!(a.deadline(D), Some(a.accepted + D.first_request));
        assert!(!a.served());
        let busy = a.begin();
        assert_eq!(
            a.deadline(D),
            None,
            "no deadline while a request is in flight"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        drop(busy);
        assert!(a.served());
        let idle = a.deadline(D).expect("idle");
        assert_eq!(idle, a.accepted + Duration::from_secs(60) + D.idle);
    }
}
