//! [`LeaseClient`]: etcd's `Lease` service over one HTTP/2 connection, and [`KeepAlive`], one
//! `LeaseKeepAlive` stream used a request at a time.
//!
//! The messages are lessor-server's, generated from etcd's protocol files; the calls are made
//! with tonic's generic [`Grpc`] client and the prost codec, which is all a generated client
//! stub does (lessor-server generates the server side only). The paths are etcd's.
//!
//! Connections are the server's [`Coalesced`] over TCP: the requests of many streams leave in
//! one write, as grpc-go's transport (etcd's own clients) sends them. With tonic's connection
//! as it comes, every request was its own `writev`, and the generator's cost per keep-alive
//! capped what it could measure.

use hyper_util::rt::TokioIo;
use lessor_server::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse,
};
use lessor_server::Coalesced;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status, Streaming};
use tonic_prost::ProstCodec;

/// etcd's `Lease` service paths.
const GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
const REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
const KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
const LEASES: &str = "/etcdserverpb.Lease/LeaseLeases";

/// Requests a keep-alive stream may have queued before the sender waits: one is in flight at a
/// time, so two is room enough.
const KEEP_ALIVE_QUEUE: usize = 2;

/// A client of etcd's `Lease` service. Clones share the connection (HTTP/2 streams on it).
#[derive(Debug, Clone)]
pub(crate) struct LeaseClient {
    grpc: Grpc<Channel>,
}

impl LeaseClient {
    /// Opens one connection to `url` (`http://HOST:PORT`).
    ///
    /// # Errors
    ///
    /// When the URL is invalid or nothing answers there.
    pub(crate) async fn connect(url: &str) -> Result<Self, tonic::transport::Error> {
        let connector = tower::service_fn(|uri: Uri| async move {
            let host = uri.host().unwrap_or("127.0.0.1");
            let port = uri.port_u16().unwrap_or(2379);
            let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port)).await?;
            tcp.set_nodelay(true)?;
            Ok::<_, std::io::Error>(TokioIo::new(Coalesced::new(tcp)))
        });
        let channel = Endpoint::from_shared(url.to_string())?
            .connect_with_connector(connector)
            .await?;
        Ok(LeaseClient {
            grpc: Grpc::new(channel),
        })
    }

    /// One unary call.
    async fn unary<Req, Resp>(&mut self, path: &'static str, req: Req) -> Result<Resp, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
        let codec = ProstCodec::<Req, Resp>::default();
        let path = PathAndQuery::from_static(path);
        Ok(self
            .grpc
            .unary(Request::new(req), path, codec)
            .await?
            .into_inner())
    }

    /// `LeaseGrant` with id 0 (the server picks one) and `ttl_secs`.
    ///
    /// # Errors
    ///
    /// The server's status.
    pub(crate) async fn grant(&mut self, ttl_secs: i64) -> Result<LeaseGrantResponse, Status> {
        let req = LeaseGrantRequest {
            ttl: ttl_secs,
            id: 0,
        };
        self.unary(GRANT, req).await
    }

    /// `LeaseRevoke` of `id`.
    ///
    /// # Errors
    ///
    /// The server's status (etcd: "requested lease not found").
    pub(crate) async fn revoke(&mut self, id: i64) -> Result<LeaseRevokeResponse, Status> {
        self.unary(REVOKE, LeaseRevokeRequest { id }).await
    }

    /// `LeaseLeases`: the ids of every lease the server holds.
    ///
    /// # Errors
    ///
    /// The server's status.
    pub(crate) async fn leases(&mut self) -> Result<Vec<i64>, Status> {
        let resp: LeaseLeasesResponse = self.unary(LEASES, LeaseLeasesRequest {}).await?;
        Ok(resp.leases.into_iter().map(|l| l.id).collect())
    }

    /// Opens a `LeaseKeepAlive` stream and renews `id` once on it (the server may send its
    /// response headers only with its first answer, so the stream opens with a request).
    ///
    /// # Errors
    ///
    /// The server's status, or [`Status::unavailable`] if the stream ends at once.
    pub(crate) async fn keep_alive(
        &mut self,
        id: i64,
    ) -> Result<(KeepAlive, LeaseKeepAliveResponse), Status> {
        let (tx, rx) = mpsc::channel(KEEP_ALIVE_QUEUE);
        tx.send(LeaseKeepAliveRequest { id })
            .await
            .map_err(|_| Status::internal("the request stream closed before it opened"))?;
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
        let codec = ProstCodec::<LeaseKeepAliveRequest, LeaseKeepAliveResponse>::default();
        let path = PathAndQuery::from_static(KEEP_ALIVE);
        let responses = self
            .grpc
            .streaming(Request::new(ReceiverStream::new(rx)), path, codec)
            .await?
            .into_inner();
        let mut stream = KeepAlive { tx, responses };
        let first = stream.next().await?;
        Ok((stream, first))
    }
}

/// One `LeaseKeepAlive` stream: each [`renew`](Self::renew) sends a request and waits for its
/// answer, so one request is in flight at a time.
#[derive(Debug)]
pub(crate) struct KeepAlive {
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

impl KeepAlive {
    /// Renews `id` and returns the answer (TTL 0: the lease is gone).
    ///
    /// # Errors
    ///
    /// The server's status, or [`Status::unavailable`] once the stream has ended.
    pub(crate) async fn renew(&mut self, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
        self.tx
            .send(LeaseKeepAliveRequest { id })
            .await
            .map_err(|_| Status::unavailable("the keep-alive stream has ended"))?;
        self.next().await
    }

    async fn next(&mut self) -> Result<LeaseKeepAliveResponse, Status> {
        self.responses
            .message()
            .await?
            .ok_or_else(|| Status::unavailable("the keep-alive stream has ended"))
    }
}
