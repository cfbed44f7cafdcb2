//! [`Grants`]: `LeaseGrant` calls gathered into batches ([`crate::batcher`]), so that many
//! concurrent grants share one log append and one fsync.
//!
//! # Ground rules
//!
//! - The batcher hands each batch to `Lessor::grant_many` on the blocking pool (one hop for
//!   the batch, not one per grant) and answers each call.
//! - A grant that asked for id 0 gets a server-chosen id; if that id clashes with a live
//!   lease, it is retried with another, up to [`GRANT_ATTEMPTS`] times, as a single grant
//!   would be.

use std::sync::Arc;
use std::time::Duration;

use lessor::{Lease, LeaseId};
use tonic::Status;

use crate::batcher::{fail_all, Ask, Batcher};
use crate::errors::status_of;
use crate::state::State;

/// How many server-chosen ids a grant tries before it gives up on clashes.
pub(crate) const GRANT_ATTEMPTS: usize = 16;

/// What one grant call asks for.
#[derive(Debug)]
struct Wanted {
    /// The id asked for; 0: the server picks.
    asked: i64,
    ttl: Duration,
    attempts: usize,
}

/// The sending side of the grant batcher, held by the `Lease` service.
#[derive(Debug, Clone)]
pub(crate) struct Grants {
    batcher: Batcher<Wanted, Lease>,
}

impl Grants {
    /// Starts the batcher task on the current tokio runtime.
    pub(crate) fn start(state: Arc<State>) -> Grants {
        let batcher = Batcher::start(move |asks| grant_batch(Arc::clone(&state), asks));
        Grants { batcher }
    }

    /// Grants lease `asked` (0: any free id) with a TTL of `ttl_secs` seconds (etcd's
    /// `LeaseGrant`: negative and zero TTLs are raised to the minimum).
    pub(crate) async fn grant(&self, asked: i64, ttl_secs: i64) -> Result<Lease, Status> {
        let ttl = Duration::from_secs(u64::try_from(ttl_secs).unwrap_or(0));
        self.batcher
            .call(Wanted {
                asked,
                ttl,
                attempts: 0,
            })
            .await
    }
}

/// Grants one batch and answers it; returns the asks to retry with another id.
async fn grant_batch(state: Arc<State>, asks: Vec<Ask<Wanted, Lease>>) -> Vec<Ask<Wanted, Lease>> {
    let grants: Vec<(LeaseId, Duration)> = asks
        .iter()
        .map(|a| {
            let id = if a.question.asked == 0 {
                state.next_lease_id()
            } else {
                LeaseId::new(a.question.asked)
            };
            (id, a.question.ttl)
        })
        .collect();
    let results = match state.blocking(move |s| s.lessor.grant_many(&grants)).await {
        Ok(results) => results,
        Err(status) => {
            fail_all(asks, &status);
            return Vec::new();
        }
    };
    let mut again = Vec::new();
    for (mut ask, result) in asks.into_iter().zip(results) {
        let wanted = &mut ask.question;
        match result {
            Err(lessor::Error::LeaseExists { .. })
                if wanted.asked == 0 && wanted.attempts + 1 < GRANT_ATTEMPTS =>
            {
                wanted.attempts += 1;
                again.push(ask);
            }
            other => ask.answer(other.map_err(|e| status_of(&e))),
        }
    }
    again
}
