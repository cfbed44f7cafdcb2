//! The KV service through etcd's Rust client: put with a lease, range options, deletes.

use etcd_client::{DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget};
use tonic::Code;

use crate::common::{config, start, status};

fn keys(resp: &etcd_client::GetResponse) -> Vec<String> {
    resp.kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_delete_with_a_lease() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let lease = client.lease_grant(60, None).await.unwrap().id();

    let first = client
        .put("svc/a", "1", Some(PutOptions::new().with_lease(lease)))
        .await
        .unwrap();
    let rev1 = first.header().unwrap().revision();
    assert!(rev1 > 0);
    assert!(first.prev_key().is_none());
    let got = client.get("svc/a", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(
        (kv.key(), kv.value(), kv.lease()),
        (&b"svc/a"[..], &b"1"[..], lease)
    );
    assert_eq!(
        (kv.create_revision(), kv.mod_revision(), kv.version()),
        (rev1, rev1, 1)
    );
    assert_eq!(got.header().unwrap().revision(), rev1);

    let second = client
        .put("svc/a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    let rev2 = second.header().unwrap().revision();
    assert!(rev2 > rev1);
    let prev = second.prev_key().expect("prev_kv was asked for");
    assert_eq!((prev.value(), prev.lease()), (&b"1"[..], lease));
    let kv = client.get("svc/a", None).await.unwrap().kvs()[0].clone();
    assert_eq!((kv.value(), kv.lease(), kv.version()), (&b"2"[..], 0, 2));
    assert_eq!((kv.create_revision(), kv.mod_revision()), (rev1, rev2));

    // ignore_value keeps the value and takes the new lease; ignore_lease the reverse.
    let keep_value = PutOptions::new().with_ignore_value().with_lease(lease);
    client.put("svc/a", "", Some(keep_value)).await.unwrap();
    let kv = client.get("svc/a", None).await.unwrap().kvs()[0].clone();
    assert_eq!((kv.value(), kv.lease()), (&b"2"[..], lease));
    client
        .put("svc/a", "3", Some(PutOptions::new().with_ignore_lease()))
        .await
        .unwrap();
    let kv = client.get("svc/a", None).await.unwrap().kvs()[0].clone();
    assert_eq!((kv.value(), kv.lease()), (&b"3"[..], lease));
    let missing = client
        .put("svc/none", "", Some(PutOptions::new().with_ignore_value()))
        .await
        .unwrap_err();
    assert_eq!(
        status(missing),
        (
            Code::InvalidArgument,
            "etcdserver: key not found".to_owned()
        )
    );

    let deleted = client
        .delete("svc/a", Some(DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 1);
    assert_eq!(deleted.prev_kvs()[0].value(), b"3");
    assert!(client.get("svc/a", None).await.unwrap().kvs().is_empty());
    let lease_keys = client
        .lease_time_to_live(
            lease,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert!(
        lease_keys.keys().is_empty(),
        "a deleted key leaves its lease"
    );
    assert_eq!(client.delete("svc/a", None).await.unwrap().deleted(), 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_follow_etcds_options() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let mut client = server.client().await;
    let mut revs = Vec::new();
    for (k, v) in [
        ("b/2", "x"),
        ("a", "z"),
        ("b/1", "y"),
        ("b/3", "w"),
        ("c", "v"),
    ] {
        let put = client.put(k, v, None).await.unwrap();
        revs.push(put.header().unwrap().revision());
    }
    client.put("b/1", "y2", None).await.unwrap();

    let prefix = client
        .get("b/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(keys(&prefix), ["b/1", "b/2", "b/3"]);
    assert_eq!(prefix.count(), 3);
    assert!(!prefix.more());
    let range = client
        .get("a", Some(GetOptions::new().with_range("b/3")))
        .await
        .unwrap();
    assert_eq!(keys(&range), ["a", "b/1", "b/2"]);
    let from = client
        .get("b/3", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(keys(&from), ["b/3", "c"]);
    let all = client
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(all.count(), 5);

    let limited = client
        .get("b/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(keys(&limited), ["b/1", "b/2"]);
    assert!(limited.more());
    assert_eq!(limited.count(), 3, "count ignores the limit");

    let by_value = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Value, SortOrder::Ascend);
    let sorted = client.get("b/", Some(by_value)).await.unwrap();
    assert_eq!(keys(&sorted), ["b/3", "b/2", "b/1"], "w < x < y2");
    let by_key_down = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Key, SortOrder::Descend);
    let down = client.get("b/", Some(by_key_down)).await.unwrap();
    assert_eq!(keys(&down), ["b/3", "b/2", "b/1"]);
    let by_mod = GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Mod, SortOrder::Ascend);
    assert_eq!(
        keys(&client.get("b/", Some(by_mod)).await.unwrap()),
        ["b/2", "b/3", "b/1"]
    );

    let keys_only = client
        .get("b/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .unwrap();
    assert!(keys_only.kvs().iter().all(|kv| kv.value().is_empty()));
    let count_only = client
        .get(
            "b/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert!(count_only.kvs().is_empty());
    assert_eq!(count_only.count(), 3);

    // b/1 was modified last; b/3 was created at revs[3].
    let modified = GetOptions::new()
        .with_prefix()
        .with_min_mod_revision(revs[4] + 1);
    assert_eq!(
        keys(&client.get("b/", Some(modified)).await.unwrap()),
        ["b/1"]
    );
    let created = GetOptions::new()
        .with_prefix()
        .with_max_create_revision(revs[2]);
    assert_eq!(
        keys(&client.get("b/", Some(created)).await.unwrap()),
        ["b/1", "b/2"]
    );

    let current = all.header().unwrap().revision();
    let at_current = client
        .get("a", Some(GetOptions::new().with_revision(current)))
        .await;
    assert_eq!(at_current.unwrap().kvs().len(), 1);
    let future = client
        .get("a", Some(GetOptions::new().with_revision(current + 10)))
        .await
        .unwrap_err();
    assert_eq!(
        status(future),
        (
            Code::OutOfRange,
            "etcdserver: mvcc: required revision is a future revision".to_owned()
        )
    );
    let old = client
        .get("a", Some(GetOptions::new().with_revision(1)))
        .await
        .unwrap_err();
    assert_eq!(status(old).0, Code::OutOfRange);

    let gone = client
        .delete("b/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(gone.deleted(), 3);
    assert_eq!(
        keys(
            &client
                .get("", Some(GetOptions::new().with_all_keys()))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    server.stop().await;
}
