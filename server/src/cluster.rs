//! etcd's `Cluster` service: `MemberList` answers with this one member; membership changes
//! answer Unimplemented (a lessor server is a one-member cluster).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use crate::state::State;

/// The `Cluster` service.
#[derive(Debug, Clone)]
pub(crate) struct ClusterService {
    state: Arc<State>,
}

impl ClusterService {
    pub(crate) fn new(state: Arc<State>) -> Self {
        ClusterService { state }
    }
}

fn unsupported(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "lessor does not implement Cluster.{rpc}: a lessor server is a one-member cluster"
    ))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(unsupported("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(unsupported("MemberRemove"))
    }

    async fn member_update(
        &self,
        _request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(unsupported("MemberUpdate"))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let member = &self.state.member;
        Ok(Response::new(MemberListResponse {
            header: Some(self.state.header()),
            members: vec![Member {
                id: self.state.identity.member_id,
                name: member.name.clone(),
                peer_ur_ls: member.peer_urls.clone(),
                client_ur_ls: member.client_urls.clone(),
                is_learner: false,
            }],
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(unsupported("MemberPromote"))
    }
}
