//! Whether a request is still waiting on its client's body. A body still arriving when
//! the request timeout passes is the client's slowness, answered 408; a handler still
//! working is the server's, answered 503 ([`super::edge`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::watched::{Watch, Watched};

/// Set while the last read of the body waits on the client.
#[derive(Clone, Default)]
pub struct Waiting(Arc<AtomicBool>);

impl Watch for Waiting {
    fn polled(&self, pending: bool) {
        self.0.store(pending, Ordering::Relaxed);
    }
}

/// A request body that records whether its reader waits on the client.
pub type Upload<B> = Watched<B, Waiting>;

/// Whether a read of the body was waiting on the client when asked.
pub fn still_sending(waiting: Option<&Waiting>) -> bool {
    waiting.is_some_and(|w| w.0.load(Ordering::Relaxed))
}
