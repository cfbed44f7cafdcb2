//! [`Grants`]: `LeaseGrant` calls gathered into batches, so that many concurrent grants share
//! one log append and one fsync.
//!
//! # Ground rules
//!
//! - One batcher task per server owns the receiving end of a bounded channel; every grant
//!   call sends its request with a oneshot for the answer and awaits it. The task takes
//!   whatever has queued (up to [`MAX_BATCH`]), grants it with `Lessor::grant_many` on the
//!   blocking pool (one hop for the batch, not one per grant), and answers each call. While a
//!   batch is being made durable the next one queues: group commit at the API.
//! - A grant that asked for id 0 gets a server-chosen id; if that id clashes with a live
//!   lease, it is retried with another, up to [`GRANT_ATTEMPTS`] times, as a single grant
//!   would be.
//! - The task ends when every sender is gone (the service is dropped at shutdown) and then
//!   drops its state; a call whose batcher is gone gets `Unavailable`.

use std::sync::Arc;
use std::time::Duration;

use lessor::{Lease, LeaseId};
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::errors::status_of;
use crate::state::State;

/// At most this many grants in one batch.
pub(crate) const MAX_BATCH: usize = 1024;

/// How many server-chosen ids a grant tries before it gives up on clashes.
pub(crate) const GRANT_ATTEMPTS: usize = 16;

/// One grant call waiting for its batch.
#[derive(Debug)]
struct Ask {
    /// The id asked for; 0: the server picks.
    asked: i64,
    ttl: Duration,
    attempts: usize,
    reply: oneshot::Sender<Result<Lease, Status>>,
}

/// The sending side of the batcher, held by the `Lease` service.
#[derive(Debug, Clone)]
pub(crate) struct Grants {
    tx: mpsc::Sender<Ask>,
}

impl Grants {
    /// Starts the batcher task on the current tokio runtime.
    pub(crate) fn start(state: Arc<State>) -> Grants {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(state, rx));
        Grants { tx }
    }

    /// Grants lease `asked` (0: any free id) with a TTL of `ttl_secs` seconds (etcd's
    /// `LeaseGrant`: negative and zero TTLs are raised to the minimum).
    pub(crate) async fn grant(&self, asked: i64, ttl_secs: i64) -> Result<Lease, Status> {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            asked,
            ttl: Duration::from_secs(u64::try_from(ttl_secs).unwrap_or(0)),
            attempts: 0,
            reply,
        };
        let gone = || Status::unavailable("etcdserver: server stopped");
        self.tx.send(ask).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The batcher: gather, grant, answer, until every sender is gone.
async fn run(state: Arc<State>, mut rx: mpsc::Receiver<Ask>) {
    let mut asks: Vec<Ask> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut asks, MAX_BATCH).await > 0 {
        // Clashes of server-chosen ids go round again, with fresh ids, at once.
        while !asks.is_empty() {
            asks = grant_batch(&state, std::mem::take(&mut asks)).await;
        }
    }
}

/// Grants one batch and answers it; returns the asks to retry with another id.
async fn grant_batch(state: &Arc<State>, asks: Vec<Ask>) -> Vec<Ask> {
    let grants: Vec<(LeaseId, Duration)> = asks
        .iter()
        .map(|a| {
            let id = if a.asked == 0 {
                state.next_lease_id()
            } else {
                LeaseId::new(a.asked)
            };
            (id, a.ttl)
        })
        .collect();
    let results = match state.blocking(move |s| s.lessor.grant_many(&grants)).await {
        Ok(results) => results,
        Err(status) => {
            for ask in asks {
                let _ = ask.reply.send(Err(status.clone()));
            }
            return Vec::new();
        }
    };
    let mut again = Vec::new();
    for (mut ask, result) in asks.into_iter().zip(results) {
        match result {
            Err(lessor::Error::LeaseExists { .. })
                if ask.asked == 0 && ask.attempts + 1 < GRANT_ATTEMPTS =>
            {
                ask.attempts += 1;
                again.push(ask);
            }
            other => {
                // The caller may have gone (its call cancelled): nothing to tell then.
                let _ = ask.reply.send(other.map_err(|e| status_of(&e)));
            }
        }
    }
    again
}
