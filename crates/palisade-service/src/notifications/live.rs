//! Live delivery: a committed notification wakes its user's streams, on this instance
//! at once (an in-process broadcast) and on the others through PostgreSQL's
//! `NOTIFY`. A wake carries no notification: each stream reads what it has not sent
//! from the table, after the last id it sent. A wake that is lost (the listening
//! connection was down: a gap; a stream too slow to take its wakes) is made up by
//! waking every stream, which reads the table again, so nothing is missed.
//!
//! Each user holds at most [`MAX_STREAMS`] streams, counted across instances
//! (concurrency slots in Redis; in the process without it).

use palisade_auth::ids::UserId;
use palisade_store::listen::{Notice, Subscriptions};
use palisade_store::slots::{Slot, Slots};
use palisade_store::{Backend, Exec, StoreError, Tx};
use tokio::sync::broadcast;

/// The PostgreSQL channel of new notifications; the payload is the user's id.
pub const CHANNEL: &str = "palisade_notifications";

/// Streams one user may hold at once.
pub const MAX_STREAMS: usize = 5;

/// Whose streams should read the table again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    User(UserId),
    /// Every stream: wakes may have been missed.
    All,
}

impl Wake {
    pub fn concerns(self, user: UserId) -> bool {
        match self {
            Wake::User(u) => u == user,
            Wake::All => true,
        }
    }
}

/// Cheap to clone.
#[derive(Clone)]
pub struct Live {
    sender: broadcast::Sender<Wake>,
    slots: Slots,
}

impl Live {
    pub fn new(slots: Slots) -> Live {
        let (sender, _) = broadcast::channel(1024);
        Live { sender, slots }
    }

    /// The wakes from now on. A receiver that lags behind should treat it as
    /// [`Wake::All`].
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.sender.subscribe()
    }

    /// A stream's place for `user`: `None` when they hold [`MAX_STREAMS`] already.
    pub async fn open(&self, user: UserId) -> Option<Slot> {
        self.slots
            .take(&format!("streams:{user}"), MAX_STREAMS)
            .await
    }

    /// Wakes `user`'s streams once `tx` commits: here through the broadcast, elsewhere
    /// through `NOTIFY` (sent by the commit).
    pub(crate) async fn announce(&self, tx: &mut Tx, user: UserId) -> Result<(), StoreError> {
        if Exec::from(&mut *tx).backend() == Backend::Postgres {
            palisade_store::repo::notify(&mut *tx, CHANNEL, &user.to_string()).await?;
        }
        let sender = self.sender.clone();
        tx.on_commit(move || {
            let _ = sender.send(Wake::User(user));
        });
        Ok(())
    }

    /// Forwards other instances' notifications (PostgreSQL) to this one's streams; a
    /// gap in listening wakes them all.
    pub fn listen(&self, subscriptions: &mut Subscriptions) {
        let sender = self.sender.clone();
        subscriptions.on(CHANNEL, move |notice| {
            let wake = match notice {
                Notice::Message(user) => match user.parse() {
                    Ok(user) => Wake::User(user),
                    Err(_) => return,
                },
                Notice::Gap => Wake::All,
            };
            let _ = sender.send(wake);
        });
    }
}
