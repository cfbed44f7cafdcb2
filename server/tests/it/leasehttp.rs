//! leasehttp on the peer listener: `POST /leases` and `/leases/internal` through the client
//! helpers and through raw HTTP requests (for the status codes etcd answers with).

use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use etcd_client::PutOptions;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Bytes, Frame};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lessor::LeaseId;
use lessor_server::proto::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use lessor_server::{
    renew_http, time_to_live_http, Config, HttpUrl, LeaseHttpError, Server, LEASE_HTTP_BODY_LIMIT,
};
use prost::Message;
use tokio::sync::oneshot;

use crate::common::{config, PATIENCE};

/// A server with both its client and its peer listener on 127.0.0.1:0.
struct Peer {
    client_addr: SocketAddr,
    peer_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: Server,
}

impl Peer {
    async fn start(config: Config) -> Peer {
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::start(config, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the server starts");
        assert_eq!(server.peer_addrs().len(), 1, "one peer listener");
        Peer {
            client_addr: server.client_addrs()[0],
            peer_addr: server.peer_addrs()[0],
            stop,
            server,
        }
    }

    /// `http://127.0.0.1:PORT` of the peer listener.
    fn peer_url(&self) -> String {
        HttpUrl::from_addr(self.peer_addr).to_string()
    }

    async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([format!("http://{}", self.client_addr)], None)
            .await
            .expect("etcd-client connects")
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(PATIENCE, self.server.wait())
            .await
            .expect("the server stops within the deadline")
            .expect("the server stops cleanly");
    }
}

/// One raw HTTP request to the peer listener: its status, content type and body.
async fn call(
    peer: &Peer,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Bytes) {
    call_with(peer, method, path, Full::new(Bytes::from(body))).await
}

/// [`call`] with any body: a stream of frames goes out chunked.
async fn call_with<B>(
    peer: &Peer,
    method: Method,
    path: &str,
    body: B,
) -> (StatusCode, String, Bytes)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http::<B>();
    let request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", peer.peer_url()))
        .header(CONTENT_TYPE, "application/protobuf")
        .body(body)
        .expect("a valid request");
    let answer = tokio::time::timeout(PATIENCE, client.request(request))
        .await
        .expect("an answer within the deadline")
        .expect("the request goes through");
    let status = answer.status();
    let content_type = answer
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = answer
        .into_body()
        .collect()
        .await
        .expect("the whole answer")
        .to_bytes();
    (status, content_type, body)
}

fn text(body: &Bytes) -> &str {
    std::str::from_utf8(body).expect("a text body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_over_http_moves_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(config(dir.path())).await;
    let mut client = peer.client().await;
    let id = client.lease_grant(60, None).await.unwrap().id();

    // Let a few seconds run off, so that a renewal shows.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let before = loop {
        let ttl = time_to_live_http(&peer.peer_url(), LeaseId::new(id), false)
            .await
            .unwrap()
            .ttl;
        if ttl <= 56 {
            break ttl;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for the lease to count down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    assert_eq!(
        renew_http(&peer.peer_url(), LeaseId::new(id))
            .await
            .unwrap(),
        60
    );
    let after = time_to_live_http(&peer.peer_url(), LeaseId::new(id), false)
        .await
        .unwrap();
    assert!(
        after.ttl > before,
        "renewed: {} after, {before} before",
        after.ttl
    );
    let over_grpc = client.lease_time_to_live(id, None).await.unwrap().ttl();
    assert!(over_grpc > before, "gRPC sees it too: {over_grpc}");

    // The raw answer: 200, protobuf, a header, the id and the granted TTL.
    let request = LeaseKeepAliveRequest { id }.encode_to_vec();
    let (status, content_type, body) = call(&peer, Method::POST, "/leases", request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/protobuf");
    let answer = LeaseKeepAliveResponse::decode(body).unwrap();
    assert_eq!((answer.id, answer.ttl), (id, 60));
    assert_ne!(answer.header.expect("a header").cluster_id, 0);
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_live_over_http_with_and_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(config(dir.path())).await;
    let mut client = peer.client().await;
    let id = client.lease_grant(60, None).await.unwrap().id();
    let with_lease = || Some(PutOptions::new().with_lease(id));
    client.put("session/b", "2", with_lease()).await.unwrap();
    client.put("session/a", "1", with_lease()).await.unwrap();

    let full = time_to_live_http(&peer.peer_url(), LeaseId::new(id), true)
        .await
        .unwrap();
    assert_eq!(full.id, id);
    assert_eq!(full.granted_ttl, 60);
    assert!((0..=60).contains(&full.ttl), "ttl {}", full.ttl);
    assert_eq!(full.keys, [b"session/a".to_vec(), b"session/b".to_vec()]);
    assert!(full.header.is_some());

    let bare = time_to_live_http(&peer.peer_url(), LeaseId::new(id), false)
        .await
        .unwrap();
    assert_eq!((bare.id, bare.granted_ttl), (id, 60));
    assert!(bare.keys.is_empty());
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_is_gone_is_404_lease_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(config(dir.path())).await;
    let mut client = peer.client().await;
    let revoked = client.lease_grant(60, None).await.unwrap().id();
    client.lease_revoke(revoked).await.unwrap();

    for id in [LeaseId::new(0x5eed), LeaseId::new(revoked)] {
        match renew_http(&peer.peer_url(), id).await {
            Err(LeaseHttpError::LeaseNotFound { id: gone }) => assert_eq!(gone, id),
            other => panic!("renew of {id:x}: expected not found, got {other:?}"),
        }
        match time_to_live_http(&peer.peer_url(), id, true).await {
            Err(LeaseHttpError::LeaseNotFound { id: gone }) => assert_eq!(gone, id),
            other => panic!("time-to-live of {id:x}: expected not found, got {other:?}"),
        }
    }

    let request = LeaseKeepAliveRequest { id: 0x5eed }.encode_to_vec();
    let (status, content_type, body) = call(&peer, Method::POST, "/leases", request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(text(&body), "lease not found\n");
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_etcds_status_codes() {
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::start(config(dir.path())).await;

    for path in ["/leases", "/leases/internal"] {
        let (status, _, body) = call(&peer, Method::GET, path, Vec::new()).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
        assert_eq!(text(&body), "Method Not Allowed\n");

        let garbage = vec![0xff; 3];
        let (status, _, body) = call(&peer, Method::POST, path, garbage).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "garbage to {path}");
        assert_eq!(text(&body), "error unmarshalling request\n");

        // The limit itself is read (and is not a keep-alive request); one byte more is not.
        let at_limit = vec![0; LEASE_HTTP_BODY_LIMIT];
        let (status, _, _) = call(&peer, Method::POST, path, at_limit).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "64 KiB to {path}");
        let over = vec![0; LEASE_HTTP_BODY_LIMIT + 1];
        let (status, _, _) = call(&peer, Method::POST, path, over).await;
        assert_eq!(
            status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "64 KiB + 1 to {path}"
        );
    }

    // A body with no length, chunked, is held to the same limit.
    let chunks = (0..5).map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![0; 16 << 10]))));
    let streamed = StreamBody::new(tokio_stream::iter(chunks));
    let (status, _, body) = call_with(&peer, Method::POST, "/leases", streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "80 KiB, chunked");
    assert_eq!(text(&body), "request body too large\n");

    // The query is not part of the path, as in net/http.
    let request = LeaseKeepAliveRequest { id: 0x5eed }.encode_to_vec();
    let (status, _, body) = call(&peer, Method::POST, "/leases?from=peer", request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(text(&body), "lease not found\n", "routed to /leases");

    // etcd's peer mux: anything but the two exact paths is net/http's 404 page.
    let request = LeaseKeepAliveRequest { id: 1 }.encode_to_vec();
    for path in [
        "/",
        "/leases/",
        "/leases/internal/x",
        "/lease",
        "/v3/lease/keepalive",
    ] {
        let (status, _, body) = call(&peer, Method::POST, path, request.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "POST {path}");
        assert_eq!(text(&body), "404 page not found\n");
    }
    let (status, _, _) = call(&peer, Method::GET, "/nothing", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    peer.stop().await;
}

/// Opens a raw connection to the peer listener and writes `bytes` (blocking I/O on the
/// blocking pool: a few bytes on loopback).
async fn send_raw(addr: SocketAddr, bytes: Vec<u8>) -> std::net::TcpStream {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).expect("connects");
        stream.write_all(&bytes).expect("writes");
        stream
    })
    .await
    .expect("the blocking task runs")
}

/// Writes the rest of a request on a raw connection and reads the answer up to the
/// server's close.
async fn finish_raw(mut stream: std::net::TcpStream, rest: Vec<u8>) -> String {
    tokio::task::spawn_blocking(move || {
        stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
        stream.write_all(&rest).expect("writes the rest");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("reads the answer");
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("the blocking task runs")
}

/// Headers of a `POST /leases` announcing a body of `len` bytes.
fn head(len: usize) -> Vec<u8> {
    format!(
        "POST /leases HTTP/1.1\r\nHost: peer\r\nContent-Type: application/protobuf\r\n\
         Content-Length: {len}\r\n\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_bodies_do_no_harm_and_in_flight_requests_finish_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.shutdown_grace = PATIENCE;
    let peer = Peer::start(config).await;
    let mut client = peer.client().await;
    let id = client.lease_grant(60, None).await.unwrap().id();
    let body = LeaseKeepAliveRequest { id }.encode_to_vec();
    let (first, rest) = body.split_at(1);

    // One client leaves with half a body sent; another stops half-way and stays.
    drop(send_raw(peer.peer_addr, [head(100), first.to_vec()].concat()).await);
    let in_flight = send_raw(peer.peer_addr, [head(body.len()), first.to_vec()].concat()).await;

    assert_eq!(
        renew_http(&peer.peer_url(), LeaseId::new(id))
            .await
            .unwrap(),
        60
    );
    let ttl = time_to_live_http(&peer.peer_url(), LeaseId::new(id), false)
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl, 60);

    // Shut down: the listener closes, and the request in flight is still answered.
    let Peer {
        peer_addr,
        stop,
        server,
        ..
    } = peer;
    let _ = stop.send(());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::task::spawn_blocking(move || std::net::TcpStream::connect(peer_addr))
        .await
        .unwrap()
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for the peer listener to close"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = finish_raw(in_flight, rest.to_vec()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("application/protobuf"), "{answer}");
    tokio::time::timeout(PATIENCE, server.wait())
        .await
        .expect("the server stops within the deadline")
        .expect("the server stops cleanly");
}
