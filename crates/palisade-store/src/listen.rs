//! Notifications between instances on PostgreSQL (`LISTEN`/`NOTIFY`): one connection
//! per process listens on every channel a part of the application subscribed to, and
//! hands each message to its subscriber.
//!
//! A notification is sent by the transaction of a change and delivered only if it
//! commits. It is not stored: one sent while this process was not listening (before
//! it first connected, while the connection was down) is lost. Every (re)connection is
//! therefore reported as a [`Notice::Gap`], after which a subscriber must assume it
//! missed messages (forget what it cached, read the table again). On SQLite there is
//! one process and nothing to listen to; subscribers rely on what this process does.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::Db;
use crate::background::{Stop, Tasks};
use crate::db::Pool;

/// How long to wait before connecting again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// What a subscriber is told.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice<'a> {
    /// A message on its channel, with its payload.
    Message(&'a str),
    /// The listening (re)started: messages sent before may have been missed.
    Gap,
}

type Handler = Arc<dyn Fn(Notice<'_>) + Send + Sync>;

/// The channels of this process and their subscribers; [`Subscriptions::start`] listens.
#[derive(Default)]
pub struct Subscriptions {
    channels: Vec<(&'static str, Handler)>,
}

impl Subscriptions {
    /// Hands every notice of `channel` to `handler`, which must return quickly.
    pub fn on(
        &mut self,
        channel: &'static str,
        handler: impl Fn(Notice<'_>) + Send + Sync + 'static,
    ) {
        self.channels.push((channel, Arc::new(handler)));
    }

    /// Listens until `tasks` stop, on PostgreSQL; does nothing on SQLite.
    pub fn start(self, db: &Db, tasks: &mut Tasks) {
        let Pool::Postgres(pool) = db.primary() else {
            return;
        };
        if self.channels.is_empty() {
            return;
        }
        let pool = pool.clone();
        tasks.run("notification listener", move |stop| self.listen(pool, stop));
    }

    async fn listen(self, pool: sqlx::PgPool, mut stop: Stop) {
        let names: Vec<&str> = self.channels.iter().map(|(name, _)| *name).collect();
        loop {
            let connected = async {
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen_all(names.iter().copied()).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let listener = tokio::select! {
                biased;
                _ = stop.requested() => return,
                connected = connected => connected,
            };
            match listener {
                Ok(mut listener) => {
                    self.gap();
                    tokio::select! {
                        biased;
                        _ = stop.requested() => return,
                        e = self.pass_on(&mut listener) => {
                            tracing::warn!(error = %e, "listening for notifications failed; connecting again");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for notifications; trying again");
                }
            }
            self.gap();
            tokio::select! {
                _ = stop.requested() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Hands messages to their subscribers until the connection fails for good.
    async fn pass_on(&self, listener: &mut PgListener) -> sqlx::Error {
        loop {
            match listener.try_recv().await {
                Ok(Some(message)) => {
                    for (name, handler) in &self.channels {
                        if *name == message.channel() {
                            handler(Notice::Message(message.payload()));
                        }
                    }
                }
                // The connection was lost and made again: what was sent between is lost.
                Ok(None) => self.gap(),
                Err(e) => return e,
            }
        }
    }

    fn gap(&self) {
        for (_, handler) in &self.channels {
            handler(Notice::Gap);
        }
    }
}
