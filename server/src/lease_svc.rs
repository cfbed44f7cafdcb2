//! etcd's `Lease` service over the engine: grant, revoke, keep-alive, time-to-live, list.
//!
//! # Ground rules
//!
//! - Grants and revokes go to their batchers ([`crate::grants`], [`crate::revokes`]), which
//!   handle what has queued with one log append on the blocking pool; keep-alive and the
//!   lookups are a shard lock and an atomic and run inline.
//! - A keep-alive stream is the client's request stream mapped, one answer per request: no
//!   task, no channel. When the client goes away tonic drops the response stream and with it
//!   the request stream, so nothing is left behind; when the server stops, the stream ends
//!   through [`UntilStopped`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lessor::{LeaseId, Remaining};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::grants::Grants;
use crate::proto::etcdserverpb::lease_server::Lease as LeaseRpc;
use crate::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use crate::revokes::Revokes;
use crate::shutdown::UntilStopped;
use crate::state::State;

/// The `Lease` service.
#[derive(Debug, Clone)]
pub(crate) struct LeaseService {
    state: Arc<State>,
    grants: Grants,
    revokes: Revokes,
}

impl LeaseService {
    /// The service, with its grant and revoke batchers started on the current tokio runtime.
    pub(crate) fn new(state: Arc<State>) -> Self {
        LeaseService {
            grants: Grants::start(Arc::clone(&state)),
            revokes: Revokes::start(Arc::clone(&state)),
            state,
        }
    }

    /// One keep-alive answer: the granted TTL, or 0 for a lease that is gone or expired.
    pub(crate) fn keep_alive_once(state: &State, id: i64) -> LeaseKeepAliveResponse {
        let ttl = match state.lessor.renew(LeaseId::new(id)) {
            Ok(ttl) => secs_ceil(ttl),
            Err(e) => {
                tracing::debug!(lease = id, error = %e, "keep-alive refused");
                0
            }
        };
        LeaseKeepAliveResponse {
            header: Some(state.header()),
            id,
            ttl,
        }
    }
}

/// A response stream of keep-alive answers.
type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<LeaseKeepAliveResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl LeaseRpc for LeaseService {
    async fn lease_grant(
        &self,
        request: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        let req = request.into_inner();
        self.state.check_size(&req)?;
        let lease = self.grants.grant(req.id, req.ttl).await?;
        tracing::debug!(lease = lease.id().get(), ttl = lease.ttl_secs(), "granted");
        Ok(Response::new(LeaseGrantResponse {
            header: Some(self.state.header()),
            id: lease.id().get(),
            ttl: lease.ttl_secs(),
            error: String::new(),
        }))
    }

    async fn lease_revoke(
        &self,
        request: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let id = LeaseId::new(request.into_inner().id);
        self.revokes.revoke(id).await?;
        tracing::debug!(lease = id.get(), "revoked");
        Ok(Response::new(LeaseRevokeResponse {
            header: Some(self.state.header()),
        }))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let state = Arc::clone(&self.state);
        let answers = request
            .into_inner()
            .map(move |req| req.map(|req| Self::keep_alive_once(&state, req.id)));
        let stream = UntilStopped::new(answers, self.state.stop.clone());
        Ok(Response::new(Box::pin(stream)))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        let req = request.into_inner();
        Ok(Response::new(time_to_live(&self.state, &req)))
    }

    async fn lease_leases(
        &self,
        _request: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        let leases = self
            .state
            .lessor
            .leases()
            .iter()
            .map(|l| LeaseStatus { id: l.id().get() })
            .collect();
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(self.state.header()),
            leases,
        }))
    }
}

/// etcd's `LeaseTimeToLive`: a lease that is gone (or expired) answers TTL -1, not an error.
/// Also the answer of leasehttp's `/leases/internal`.
pub(crate) fn time_to_live(state: &State, req: &LeaseTimeToLiveRequest) -> LeaseTimeToLiveResponse {
    let header = Some(state.header());
    match state.lessor.lookup(LeaseId::new(req.id)) {
        Some(lease) => LeaseTimeToLiveResponse {
            header,
            id: req.id,
            ttl: remaining_secs(lease.remaining(), lease.ttl_secs()),
            granted_ttl: lease.ttl_secs(),
            keys: if req.keys {
                lease.keys().to_vec()
            } else {
                Vec::new()
            },
        },
        None => LeaseTimeToLiveResponse {
            header,
            id: req.id,
            ttl: -1,
            granted_ttl: 0,
            keys: Vec::new(),
        },
    }
}

/// Whole seconds left as etcd reports them (`int64(Remaining().Seconds())`, truncated); -1
/// once the deadline has passed; the granted TTL while the lessor is not primary (nothing
/// counts down then).
fn remaining_secs(remaining: Remaining, granted: i64) -> i64 {
    match remaining {
        Remaining::Left(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Remaining::Overdue(_) => -1,
        Remaining::Forever => granted,
    }
}

/// A TTL in whole seconds, rounded up, so a sub-second TTL never reads as 0 ("gone").
pub(crate) fn secs_ceil(d: Duration) -> i64 {
    let s = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i64::try_from(s).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_reported_as_etcd_does() {
        assert_eq!(
            remaining_secs(Remaining::Left(Duration::from_millis(59_999)), 60),
            59
        );
        assert_eq!(remaining_secs(Remaining::Left(Duration::ZERO), 60), 0);
        assert_eq!(
            remaining_secs(Remaining::Overdue(Duration::from_millis(1)), 60),
            -1
        );
        assert_eq!(remaining_secs(Remaining::Forever, 60), 60);
        assert_eq!(secs_ceil(Duration::from_millis(500)), 1);
        assert_eq!(secs_ceil(Duration::from_secs(60)), 60);
    }
}
