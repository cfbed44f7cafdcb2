//! Restarts on the same data directory, shutdown with open streams, and a data directory
//! that is already in use.

use etcd_client::{LeaseTimeToLiveOptions, PutOptions};
use lessor_server::{Server, ServerError};

use crate::common::{config, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_keys_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let lease = client.lease_grant(600, None).await.unwrap().id();
    client
        .put(
            "held",
            "by-lease",
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .unwrap();
    let last = client.put("plain", "value", None).await.unwrap();
    let before = last.header().unwrap().clone();
    let revoked = client.lease_grant(600, None).await.unwrap().id();
    client.lease_revoke(revoked).await.unwrap();
    drop(client);
    server.stop().await;

    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let ttl = client
        .lease_time_to_live(lease, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 600);
    assert!(ttl.ttl() > 0, "the lease is alive after the restart");
    assert_eq!(ttl.keys(), [b"held".to_vec()]);
    let held = client.get("held", None).await.unwrap();
    assert_eq!(held.kvs()[0].value(), b"by-lease");
    assert_eq!(held.kvs()[0].lease(), lease);
    let plain = client.get("plain", None).await.unwrap();
    assert_eq!(plain.kvs()[0].value(), b"value");
    let after = plain.header().unwrap();
    assert_eq!(after.cluster_id(), before.cluster_id());
    assert_eq!(after.member_id(), before.member_id());
    assert!(after.revision() >= before.revision());
    assert_eq!(
        client
            .lease_time_to_live(revoked, None)
            .await
            .unwrap()
            .ttl(),
        -1
    );
    // Keep-alive works on a recovered lease.
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    assert_eq!(answers.message().await.unwrap().unwrap().ttl(), 600);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_keep_alive_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let lease = client.lease_grant(60, None).await.unwrap().id();
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.unwrap();
    keeper.keep_alive().await.unwrap();
    assert!(answers.message().await.unwrap().is_some());
    // `stop` has a deadline: an open stream must not hold the shutdown.
    server.stop().await;
    let ended = answers.message().await;
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_serves_one_server_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let second = Server::start(config(dir.path()), std::future::pending()).await;
    match second {
        Err(ServerError::Lessor { source, .. }) => {
            assert!(
                matches!(source, lessor::Error::LogLocked { .. }),
                "{source}"
            );
        }
        other => panic!("a second server on the same directory started: {other:?}"),
    }
    server.stop().await;
}
