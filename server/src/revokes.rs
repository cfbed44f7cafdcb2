//! [`Revokes`]: `LeaseRevoke` calls gathered into batches, so that many concurrent revokes
//! share one log append and one fsync.
//!
//! # Ground rules
//!
//! - One batcher task per server owns the receiving end of a bounded channel; every revoke
//!   call sends its lease id with a oneshot for the answer and awaits it. The task takes
//!   whatever has queued (up to [`MAX_BATCH`]), revokes it with `Lessor::revoke_many` on the
//!   blocking pool (one hop for the batch, not one per revoke), and answers each call. While
//!   a batch is being made durable the next one queues: group commit at the API, as for
//!   grants ([`crate::grants`]).
//! - Each call gets the answer its own `revoke` would have had: the same id twice in a batch
//!   is revoked once, and the second call gets etcd's "requested lease not found", as if it
//!   had come second. A lease with keys is revoked alone inside the batch call, at a store
//!   revision of its own (see `Lessor::revoke_many`).
//! - The task ends when every sender is gone (the service is dropped at shutdown) and then
//!   drops its state; a call whose batcher is gone gets `Unavailable`.

use std::sync::Arc;

use lessor::LeaseId;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::errors::status_of;
use crate::grants::MAX_BATCH;
use crate::state::State;

/// One revoke call waiting for its batch.
#[derive(Debug)]
struct Ask {
    id: LeaseId,
    reply: oneshot::Sender<Result<(), Status>>,
}

/// The sending side of the batcher, held by the `Lease` service.
#[derive(Debug, Clone)]
pub(crate) struct Revokes {
    tx: mpsc::Sender<Ask>,
}

impl Revokes {
    /// Starts the batcher task on the current tokio runtime.
    pub(crate) fn start(state: Arc<State>) -> Revokes {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(state, rx));
        Revokes { tx }
    }

    /// Revokes lease `id` (etcd's `LeaseRevoke`), deleting its keys.
    pub(crate) async fn revoke(&self, id: LeaseId) -> Result<(), Status> {
        let (reply, answer) = oneshot::channel();
        let gone = || Status::unavailable("etcdserver: server stopped");
        self.tx.send(Ask { id, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The batcher: gather, revoke, answer, until every sender is gone.
async fn run(state: Arc<State>, mut rx: mpsc::Receiver<Ask>) {
    let mut asks: Vec<Ask> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut asks, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut asks);
        let ids: Vec<LeaseId> = batch.iter().map(|a| a.id).collect();
        let outcome = state.blocking(move |s| s.lessor.revoke_many(&ids)).await;
        match outcome {
            Ok(results) => {
                for (ask, result) in batch.into_iter().zip(results) {
                    // The caller may have gone (its call cancelled): nothing to tell then.
                    let _ = ask.reply.send(result.map_err(|e| status_of(&e)));
                }
            }
            Err(status) => {
                for ask in batch {
                    let _ = ask.reply.send(Err(status.clone()));
                }
            }
        }
    }
}
