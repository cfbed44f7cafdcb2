//! etcd's `Watch` service, registered so that a watch fails at once with Unimplemented
//! instead of hanging: the store keeps no event history to watch.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchRequest, WatchResponse};

/// The `Watch` service.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WatchService;

/// A watch response stream (never produced).
type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented(
            "lessor does not implement Watch: poll with Range, or keep leases alive instead",
        ))
    }
}
