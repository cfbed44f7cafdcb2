//! [`Revokes`]: `LeaseRevoke` calls gathered into batches ([`crate::batcher`]), so that many
//! concurrent revokes share one log append and one fsync.
//!
//! # Ground rules
//!
//! - The batcher hands each batch to `Lessor::revoke_many` on the blocking pool (one hop for
//!   the batch, not one per revoke) and answers each call.
//! - Each call gets the answer its own `revoke` would have had: the same id twice in a batch
//!   is revoked once, and the second call gets etcd's "requested lease not found", as if it
//!   had come second. A lease with keys is revoked alone inside the batch call, at a store
//!   revision of its own (see `Lessor::revoke_many`).

use std::sync::Arc;

use lessor::LeaseId;
use tonic::Status;

use crate::batcher::{fail_all, Ask, Batcher};
use crate::errors::status_of;
use crate::state::State;

/// The sending side of the revoke batcher, held by the `Lease` service.
#[derive(Debug, Clone)]
pub(crate) struct Revokes {
    batcher: Batcher<LeaseId, ()>,
}

impl Revokes {
    /// Starts the batcher task on the current tokio runtime.
    pub(crate) fn start(state: Arc<State>) -> Revokes {
        let batcher = Batcher::start(move |asks| revoke_batch(Arc::clone(&state), asks));
        Revokes { batcher }
    }

    /// Revokes lease `id` (etcd's `LeaseRevoke`), deleting its keys.
    pub(crate) async fn revoke(&self, id: LeaseId) -> Result<(), Status> {
        self.batcher.call(id).await
    }
}

/// Revokes one batch and answers it; nothing goes round again.
async fn revoke_batch(state: Arc<State>, asks: Vec<Ask<LeaseId, ()>>) -> Vec<Ask<LeaseId, ()>> {
    let ids: Vec<LeaseId> = asks.iter().map(|a| a.question).collect();
    match state.blocking(move |s| s.lessor.revoke_many(&ids)).await {
        Ok(results) => {
            for (ask, result) in asks.into_iter().zip(results) {
                ask.answer(result.map_err(|e| status_of(&e)));
            }
        }
        Err(status) => fail_all(asks, &status),
    }
    Vec::new()
}
