//! [`State`]: what every service shares — the engine, the member's identity and limits — and
//! the one way services call the engine's blocking operations.
//!
//! # Ground rules
//!
//! - The engine is one `Arc<Lessor>`; every service holds an `Arc<State>` and nothing else.
//! - Calls that write the log (grant, revoke, put, delete) wait for its fsync policy, up to
//!   milliseconds: they go through [`State::blocking`], which runs them on tokio's blocking
//!   pool. Renew and lookups never block (a shard lock and an atomic) and are called inline.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use lessor::{LeaseId, Lessor};
use prost::Message;
use tonic::Status;

use crate::errors::{status_of, status_of_join, REQUEST_TOO_LARGE};
use crate::header::Identity;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::shutdown::StopSignal;

/// How this member describes itself in `MemberList`.
#[derive(Debug, Clone)]
pub(crate) struct MemberInfo {
    pub(crate) name: String,
    pub(crate) peer_urls: Vec<String>,
    pub(crate) client_urls: Vec<String>,
}

/// Shared by every service of one server.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) lessor: Arc<Lessor>,
    pub(crate) identity: Identity,
    pub(crate) member: MemberInfo,
    pub(crate) data_dir: PathBuf,
    pub(crate) max_request_bytes: usize,
    /// Fires when the server shuts down: open keep-alive streams end.
    pub(crate) stop: StopSignal,
    ids: LeaseIds,
}

impl State {
    pub(crate) fn new(
        lessor: Arc<Lessor>,
        identity: Identity,
        member: MemberInfo,
        data_dir: PathBuf,
        max_request_bytes: usize,
        stop: StopSignal,
    ) -> Self {
        State {
            lessor,
            identity,
            member,
            data_dir,
            max_request_bytes,
            stop,
            ids: LeaseIds::seeded(),
        }
    }

    /// A header at the store's current revision.
    pub(crate) fn header(&self) -> ResponseHeader {
        self.identity.header(self.lessor.revision())
    }

    /// A header at `revision` (the one an operation returned).
    pub(crate) fn header_at(&self, revision: i64) -> ResponseHeader {
        self.identity.header(revision)
    }

    /// A fresh positive lease id for a grant that asked for id 0.
    pub(crate) fn next_lease_id(&self) -> LeaseId {
        self.ids.next()
    }

    /// Refuses a request whose encoding is over the request limit, as etcd does before it
    /// proposes a write.
    pub(crate) fn check_size(&self, request: &impl Message) -> Result<(), Status> {
        if request.encoded_len() > self.max_request_bytes {
            return Err(Status::invalid_argument(REQUEST_TOO_LARGE));
        }
        Ok(())
    }

    /// Runs a logged engine call on the blocking pool and maps its error to etcd's status.
    pub(crate) async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> lessor::Result<T> + Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| status_of_join(&e))?
            .map_err(|e| status_of(&e))
    }
}

/// Lease ids for grants that leave the choice to the server: a counter from a time-and-pid
/// seed, each value scrambled by a bijective mixer (so ids look random, as etcd's do) and
/// masked positive. A clash with a live lease is possible but rare; the grant then retries
/// with the next id.
#[derive(Debug)]
struct LeaseIds {
    counter: AtomicU64,
}

impl LeaseIds {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() & u128::from(u64::MAX));
        let seed = u64::try_from(nanos).unwrap_or(0) ^ (u64::from(std::process::id()) << 32);
        LeaseIds {
            counter: AtomicU64::new(seed),
        }
    }

    fn next(&self) -> LeaseId {
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            // The top bit cleared, the value fits an i64 and is not negative.
            if let Ok(id @ 1..) = i64::try_from(splitmix64(n) >> 1) {
                return LeaseId::new(id);
            }
        }
    }
}

/// SplitMix64's finalizer: a bijection on u64 that spreads consecutive inputs.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_positive_and_distinct() {
        let ids = LeaseIds {
            counter: AtomicU64::new(u64::MAX - 500),
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = ids.next().get();
            assert!(id > 0);
            assert!(seen.insert(id));
        }
    }
}
