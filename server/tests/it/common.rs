//! Starting and stopping a server, clients for it, and polling helpers.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::{Buf, BufMut};
use etcd_client::Client;
use lessor_server::{Config, Server};
use tokio::sync::oneshot;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A long deadline: this runs on a slow, loaded 2-core machine.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A test configuration: loopback with any free port, a 1 s minimum TTL.
pub(crate) fn config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    config.listen_client_urls = vec!["http://127.0.0.1:0".parse().expect("a valid URL")];
    config.listen_peer_urls = vec!["http://127.0.0.1:0".parse().expect("a valid URL")];
    config.min_ttl = Duration::from_secs(1);
    config
}

/// A server running in this process.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: Server,
}

/// Starts a server; it runs until [`Running::stop`].
pub(crate) async fn start(config: Config) -> Running {
    // Server logs in the test output when RUST_LOG asks for them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = Server::start(config, async move {
        let _ = stopped.await;
    })
    .await
    .expect("the server starts");
    Running {
        addr: server.client_addrs()[0],
        stop,
        server,
    }
}

impl Running {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// etcd's Rust client, connected.
    pub(crate) async fn client(&self) -> Client {
        Client::connect([self.endpoint()], None)
            .await
            .expect("etcd-client connects")
    }

    /// A plain gRPC channel, for raw calls.
    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.endpoint())
            .expect("a valid endpoint")
            .connect()
            .await
            .expect("the channel connects")
    }

    /// Fires the shutdown future and waits for a clean stop.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.server.wait())
            .await
            .expect("the server stops within the deadline")
            .expect("the server stops cleanly");
    }
}

/// The gRPC status in a client error.
pub(crate) fn status(err: etcd_client::Error) -> (Code, String) {
    match err {
        etcd_client::Error::GRpcStatus(s) => (s.code(), s.message().to_owned()),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after [`PATIENCE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One raw unary call: `body` goes out as the message bytes, unchecked.
pub(crate) async fn raw_unary(
    channel: Channel,
    path: &'static str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(body),
        PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

/// A codec that sends and receives message bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}
