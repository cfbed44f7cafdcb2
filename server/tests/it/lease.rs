//! The Lease service through etcd's Rust client and raw gRPC streams.

use std::collections::HashMap;

use etcd_client::{GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions, PutOptions};
use lessor_server::proto::etcdserverpb::{LeaseKeepAliveRequest, LeaseKeepAliveResponse};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use crate::common::{config, eventually, start, status, PATIENCE};

const KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";

/// Opens a raw keep-alive stream: requests go in through the sender.
async fn keep_alive_stream(
    channel: Channel,
) -> (
    mpsc::Sender<LeaseKeepAliveRequest>,
    Streaming<LeaseKeepAliveResponse>,
) {
    let (tx, rx) = mpsc::channel(16);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let answers = grpc
        .streaming(
            tonic::Request::new(ReceiverStream::new(rx)),
            PathAndQuery::from_static(KEEP_ALIVE),
            tonic_prost::ProstCodec::<LeaseKeepAliveRequest, LeaseKeepAliveResponse>::new(),
        )
        .await
        .expect("the keep-alive stream opens")
        .into_inner();
    (tx, answers)
}

/// Sends one keep-alive request on a raw stream and reads its answer.
async fn keep_alive_once(
    tx: &mpsc::Sender<LeaseKeepAliveRequest>,
    answers: &mut Streaming<LeaseKeepAliveResponse>,
    id: i64,
) -> LeaseKeepAliveResponse {
    tx.send(LeaseKeepAliveRequest { id })
        .await
        .expect("the stream takes a request");
    tokio::time::timeout(PATIENCE, answers.message())
        .await
        .expect("an answer within the deadline")
        .expect("no error on the stream")
        .expect("the stream is still open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_keep_alive_time_to_live_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;

    let granted = client.lease_grant(60, None).await.unwrap();
    assert!(granted.id() > 0, "a server-chosen id is positive");
    assert_eq!(granted.ttl(), 60);
    let header = granted.header().expect("every answer has a header");
    assert_ne!(header.cluster_id(), 0);
    assert_ne!(header.member_id(), 0);
    assert_eq!(header.raft_term(), 1);
    let other = client.lease_grant(60, None).await.unwrap();
    assert_ne!(other.id(), granted.id());

    let chosen = client
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1234)))
        .await
        .unwrap();
    assert_eq!((chosen.id(), chosen.ttl()), (0x1234, 30));
    let clamped = client.lease_grant(0, None).await.unwrap();
    assert_eq!(clamped.ttl(), 1, "raised to the minimum TTL");

    let (mut keeper, mut answers) = client.lease_keep_alive(granted.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let answer = answers.message().await.unwrap().expect("an answer");
    assert_eq!((answer.id(), answer.ttl()), (granted.id(), 60));

    for key in ["k1", "k2"] {
        let lease = PutOptions::new().with_lease(granted.id());
        client.put(key, "v", Some(lease)).await.unwrap();
    }
    let with_keys = LeaseTimeToLiveOptions::new().with_keys();
    let ttl = client
        .lease_time_to_live(granted.id(), Some(with_keys))
        .await
        .unwrap();
    assert_eq!(ttl.id(), granted.id());
    assert_eq!(ttl.granted_ttl(), 60);
    assert!((1..=60).contains(&ttl.ttl()), "ttl {}", ttl.ttl());
    assert_eq!(ttl.keys(), [b"k1".to_vec(), b"k2".to_vec()]);
    let bare = client.lease_time_to_live(granted.id(), None).await.unwrap();
    assert!(bare.keys().is_empty(), "keys only when asked for");

    let mut listed: Vec<i64> = client
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    listed.sort_unstable();
    let mut expected = vec![granted.id(), other.id(), 0x1234, clamped.id()];
    expected.sort_unstable();
    assert_eq!(listed, expected);

    client.lease_revoke(granted.id()).await.unwrap();
    assert!(client.get("k1", None).await.unwrap().kvs().is_empty());
    assert!(client.get("k2", None).await.unwrap().kvs().is_empty());
    let gone = client.lease_time_to_live(granted.id(), None).await.unwrap();
    assert_eq!(
        (gone.id(), gone.ttl(), gone.granted_ttl()),
        (granted.id(), -1, 0)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_answers_ttl_zero_for_a_lease_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let live = client.lease_grant(60, None).await.unwrap().id();

    let (tx, mut answers) = keep_alive_stream(server.channel().await).await;
    let unknown = keep_alive_once(&tx, &mut answers, 777).await;
    assert_eq!((unknown.id, unknown.ttl), (777, 0));
    assert!(unknown.header.is_some());
    let renewed = keep_alive_once(&tx, &mut answers, live).await;
    assert_eq!((renewed.id, renewed.ttl), (live, 60), "the stream goes on");
    client.lease_revoke(live).await.unwrap();
    let revoked = keep_alive_once(&tx, &mut answers, live).await;
    assert_eq!(revoked.ttl, 0);

    // etcd's client turns the TTL 0 into its own error.
    let err = client.lease_keep_alive(777).await.unwrap_err();
    assert!(
        matches!(err, etcd_client::Error::LeaseKeepAliveError(_)),
        "{err:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_revoked_with_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let short = client.lease_grant(1, None).await.unwrap().id();
    let long = client.lease_grant(600, None).await.unwrap().id();
    let opts = |id| Some(PutOptions::new().with_lease(id));
    client.put("session/short", "a", opts(short)).await.unwrap();
    client.put("session/long", "b", opts(long)).await.unwrap();

    eventually("the 1 s lease to expire and its key to go", || {
        let mut client = client.clone();
        async move {
            let gone = client
                .get("session/short", None)
                .await
                .unwrap()
                .kvs()
                .is_empty();
            let ttl = client.lease_time_to_live(short, None).await.unwrap().ttl();
            gone && ttl == -1
        }
    })
    .await;
    let listed = client.leases().await.unwrap();
    assert!(listed.leases().iter().all(|l| l.id() != short));
    assert_eq!(
        client.get("session/long", None).await.unwrap().kvs().len(),
        1
    );
    let (tx, mut answers) = keep_alive_stream(server.channel().await).await;
    assert_eq!(keep_alive_once(&tx, &mut answers, short).await.ttl, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_streams_dropped_by_clients_leave_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let id = client.lease_grant(60, None).await.unwrap().id();
    let channel = server.channel().await;

    for round in 0..200 {
        let (tx, mut answers) = keep_alive_stream(channel.clone()).await;
        if round % 2 == 0 {
            assert_eq!(keep_alive_once(&tx, &mut answers, id).await.ttl, 60);
        } else {
            // Dropped with a request in flight and no answer read.
            tx.send(LeaseKeepAliveRequest { id }).await.unwrap();
        }
    }
    for _ in 0..20 {
        // etcd's client opens a stream and drops its keeper and stream.
        let (keeper, answers) = client.lease_keep_alive(id).await.unwrap();
        drop((keeper, answers));
    }

    let (tx, mut answers) = keep_alive_stream(channel).await;
    assert_eq!(keep_alive_once(&tx, &mut answers, id).await.ttl, 60);
    let fresh = client.lease_grant(60, None).await.unwrap();
    assert_eq!(fresh.ttl(), 60);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revokes_each_get_their_own_answer_and_stay_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let mut ids = Vec::new();
    for n in 0..40 {
        let id = client.lease_grant(600, None).await.unwrap().id();
        if n % 4 == 0 {
            let on = Some(PutOptions::new().with_lease(id));
            client.put(format!("session/{n}"), "v", on).await.unwrap();
        }
        ids.push(id);
    }
    let kept = client.lease_grant(600, None).await.unwrap().id();
    let unknown: Vec<i64> = (1..=10).map(|n| 1_000_000 + n).collect();

    // Every lease twice and ten ids nobody granted, all at once: the server gathers them
    // into batches, and each call must still get the answer of a revoke on its own.
    let mut calls = tokio::task::JoinSet::new();
    for &id in ids.iter().chain(&ids).chain(&unknown) {
        let mut client = client.clone();
        calls.spawn(async move { (id, client.lease_revoke(id).await.map(drop)) });
    }
    let (mut done, mut missing) = (HashMap::new(), HashMap::new());
    while let Some(call) = calls.join_next().await {
        let (id, answer) = call.unwrap();
        match answer {
            Ok(()) => *done.entry(id).or_insert(0) += 1,
            Err(e) => {
                let (code, message) = status(e);
                assert_eq!(code, Code::NotFound);
                assert_eq!(message, "etcdserver: requested lease not found");
                *missing.entry(id).or_insert(0) += 1;
            }
        }
    }
    for id in &ids {
        assert_eq!(
            (done.get(id), missing.get(id)),
            (Some(&1), Some(&1)),
            "{id}"
        );
    }
    for id in &unknown {
        assert_eq!((done.get(id), missing.get(id)), (None, Some(&1)), "{id}");
    }

    let prefix = || Some(GetOptions::new().with_prefix());
    let check = |mut client: etcd_client::Client| async move {
        let keys = client.get("session/", prefix()).await.unwrap();
        assert!(keys.kvs().is_empty(), "every revoked lease's key went");
        let listed = client.leases().await.unwrap();
        let listed: Vec<i64> = listed.leases().iter().map(|l| l.id()).collect();
        assert_eq!(listed, [kept]);
    };
    check(client).await;
    server.stop().await;
    let server = start(config(dir.path())).await;
    check(server.client().await).await;
    server.stop().await;
}
