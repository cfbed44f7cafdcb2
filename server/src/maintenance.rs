//! etcd's `Maintenance` service: `Status` answers (so `etcdctl endpoint status` and clients'
//! health checks work); every other rpc answers Unimplemented.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::header::RAFT_TERM;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    AlarmRequest, AlarmResponse, DefragmentRequest, DefragmentResponse, HashKvRequest,
    HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest, MoveLeaderResponse,
    SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use crate::state::State;

/// The version `Status` reports: the etcd API version this server speaks.
pub const ETCD_VERSION: &str = "3.4.0";

/// The `Maintenance` service.
#[derive(Debug, Clone)]
pub(crate) struct MaintenanceService {
    state: Arc<State>,
}

impl MaintenanceService {
    pub(crate) fn new(state: Arc<State>) -> Self {
        MaintenanceService { state }
    }
}

fn unsupported(rpc: &str) -> Status {
    Status::unimplemented(format!("lessor does not implement Maintenance.{rpc}"))
}

/// The bytes of every file under `dir` (the log's segments and snapshot); 0 if unreadable.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// A snapshot stream (never produced: Snapshot is unsupported).
type SnapshotStream = Pin<Box<dyn Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        _request: Request<AlarmRequest>,
    ) -> Result<Response<AlarmResponse>, Status> {
        Err(unsupported("Alarm"))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let state = Arc::clone(&self.state);
        let db_size = tokio::task::spawn_blocking(move || dir_size(&state.data_dir))
            .await
            .map_err(|e| crate::errors::status_of_join(&e))?;
        let db_size = i64::try_from(db_size).unwrap_or(i64::MAX);
        let header = self.state.header();
        let index = u64::try_from(header.revision).unwrap_or(0);
        Ok(Response::new(StatusResponse {
            header: Some(header),
            version: ETCD_VERSION.to_owned(),
            db_size,
            leader: self.state.identity.member_id,
            raft_index: index,
            raft_term: RAFT_TERM,
            raft_applied_index: index,
            errors: Vec::new(),
            db_size_in_use: db_size,
            is_learner: false,
        }))
    }

    async fn defragment(
        &self,
        _request: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        Err(unsupported("Defragment"))
    }

    async fn hash(&self, _request: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(unsupported("Hash"))
    }

    async fn hash_kv(
        &self,
        _request: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        Err(unsupported("HashKV"))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        _request: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        Err(unsupported("Snapshot"))
    }

    async fn move_leader(
        &self,
        _request: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        Err(unsupported("MoveLeader"))
    }
}
