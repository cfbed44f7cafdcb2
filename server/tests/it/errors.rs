//! etcd's error statuses and messages, oversized and malformed requests, and the rpcs that
//! answer Unimplemented at once.

use etcd_client::{Compare, CompareOp, LeaseGrantOptions, PutOptions, Txn, TxnOp};
use tonic::Code;

use crate::common::{config, raw_unary, start, status};

const NOT_FOUND: &str = "etcdserver: requested lease not found";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_errors_are_etcds() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;

    let err = client.lease_revoke(0x5eed).await.unwrap_err();
    assert_eq!(status(err), (Code::NotFound, NOT_FOUND.to_owned()));

    let with_id = || Some(LeaseGrantOptions::new().with_id(42));
    client.lease_grant(60, with_id()).await.unwrap();
    let err = client.lease_grant(60, with_id()).await.unwrap_err();
    assert_eq!(
        status(err),
        (
            Code::FailedPrecondition,
            "etcdserver: lease already exists".to_owned()
        )
    );

    let err = client.lease_grant(9_000_000_001, None).await.unwrap_err();
    assert_eq!(
        status(err),
        (
            Code::OutOfRange,
            "etcdserver: too large lease TTL".to_owned()
        )
    );
    let max = client.lease_grant(9_000_000_000, None).await.unwrap();
    assert_eq!(max.ttl(), 9_000_000_000, "the maximum itself is accepted");

    let err = client
        .put("k", "v", Some(PutOptions::new().with_lease(0x5eed)))
        .await
        .unwrap_err();
    assert_eq!(status(err), (Code::NotFound, NOT_FOUND.to_owned()));
    assert!(client.get("k", None).await.unwrap().kvs().is_empty());

    let err = client.put("", "v", None).await.unwrap_err();
    assert_eq!(
        status(err),
        (
            Code::InvalidArgument,
            "etcdserver: key is not provided".to_owned()
        )
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_fail_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;

    // Over etcd's 1.5 MiB request limit, under gRPC's 2 MiB decoding limit.
    let big = vec![b'x'; (3 << 19) + 1024];
    let err = client.put("big", big, None).await.unwrap_err();
    assert_eq!(
        status(err),
        (
            Code::InvalidArgument,
            "etcdserver: request is too large".to_owned()
        )
    );
    // Over the decoding limit: refused before it is decoded.
    let huge = vec![b'x'; 3 << 20];
    let (code, _) = status(client.put("huge", huge, None).await.unwrap_err());
    assert_ne!(code, Code::Ok);
    // Just under the limit goes in.
    client.put("fits", vec![b'x'; 1 << 20], None).await.unwrap();

    // Bytes that are no protobuf at all (a truncated varint, a bad wire type).
    for (path, body) in [
        ("/etcdserverpb.Lease/LeaseGrant", vec![0x08, 0xff, 0xff]),
        ("/etcdserverpb.KV/Put", vec![0x0f, 0x01, 0x02]),
        ("/etcdserverpb.KV/Range", vec![0xff; 16]),
    ] {
        let err = raw_unary(server.channel().await, path, body)
            .await
            .expect_err("a malformed body is refused");
        assert_ne!(err.code(), Code::Ok, "{path}");
        assert_ne!(err.code(), Code::Unimplemented, "{path}: the method exists");
    }

    assert_eq!(client.get("fits", None).await.unwrap().kvs().len(), 1);
    assert!(client.get("big", None).await.unwrap().kvs().is_empty());
    client.lease_grant(60, None).await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_rpcs_answer_unimplemented_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;

    let err = client.watch("k", None).await.unwrap_err();
    assert_eq!(status(err).0, Code::Unimplemented);
    let txn = Txn::new()
        .when([Compare::version("k", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("k", "v", None)]);
    assert_eq!(
        status(client.txn(txn).await.unwrap_err()).0,
        Code::Unimplemented
    );
    assert_eq!(
        status(client.compact(1, None).await.unwrap_err()).0,
        Code::Unimplemented
    );
    assert_eq!(
        status(client.defragment().await.unwrap_err()).0,
        Code::Unimplemented
    );
    assert_eq!(
        status(client.member_remove(1).await.unwrap_err()).0,
        Code::Unimplemented
    );
    // A service the server does not have at all (etcd's Auth).
    let err = raw_unary(
        server.channel().await,
        "/etcdserverpb.Auth/AuthEnable",
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // The ones that answer.
    let st = client.status().await.unwrap();
    assert!(st.version().starts_with("3.4"), "{}", st.version());
    assert_eq!(st.leader(), st.header().unwrap().member_id());
    assert!(st.db_size() > 0, "the log is on disk");
    let members = client.member_list().await.unwrap();
    let me = &members.members()[0];
    assert_eq!(members.members().len(), 1);
    assert_eq!(me.id(), st.leader());
    assert_eq!(me.name(), "default");
    assert_eq!(me.client_urls(), [server.endpoint()]);
    server.stop().await;
}
