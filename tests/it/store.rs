//! The key-value store: etcd's Put, Range and DeleteRange semantics, keys living and dying
//! with leases, revisions that survive a restart and a compaction exactly.

use std::path::Path;
use std::sync::Arc;
use std::thread;

use lessor::{Error, ExpiryMode, KeyValue, Lessor, ManualClock, PutOptions};

use crate::support::{builder, id, secs};

fn store() -> (ManualClock, Lessor) {
    let (clock, b) = builder();
    (clock, b.key_value_store(true).build().expect("valid"))
}

fn on(lease: i64) -> PutOptions {
    PutOptions {
        lease: id(lease),
        ..PutOptions::default()
    }
}

fn plain() -> PutOptions {
    PutOptions::default()
}

/// Every stored key with its lease, value and counters, for comparing two stores.
fn dump(l: &Lessor) -> Vec<KeyValue> {
    l.range(b"\0", b"\0").expect("store").kvs
}

fn open(dir: &Path, clock: &ManualClock) -> Lessor {
    Lessor::builder()
        .clock(clock.clone())
        .expiry_thread(false)
        .key_value_store(true)
        .data_dir(dir)
        .build()
        .expect("open")
}

#[test]
fn put_range_delete_follow_etcd_revisions() {
    let (_, l) = store();
    assert_eq!(l.revision(), 1);
    assert_eq!(l.put(b"a", b"1", plain()).unwrap().revision, 2);
    assert_eq!(l.put(b"b", b"2", plain()).unwrap().revision, 3);
    let again = l
        .put(
            b"a",
            b"3",
            PutOptions {
                prev_kv: true,
                ..plain()
            },
        )
        .unwrap();
    assert_eq!(again.revision, 4);
    assert_eq!(again.prev.unwrap().value, b"1");
    let a = &l.range(b"a", b"").unwrap().kvs[0];
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (2, 4, 2),
        "a put keeps the creation revision and counts versions"
    );
    assert_eq!(l.range(b"a", b"c").unwrap().kvs.len(), 2);
    assert_eq!(l.range(b"b", b"\0").unwrap().kvs.len(), 1);
    let gone = l.delete_range(b"a", b"\0", true).unwrap();
    assert_eq!((gone.revision, gone.deleted, gone.prev.len()), (5, 2, 2));
    let none = l.delete_range(b"a", b"\0", false).unwrap();
    assert_eq!(
        (none.revision, none.deleted),
        (5, 0),
        "deleting nothing keeps the revision"
    );
    let fresh = l.put(b"a", b"x", plain()).unwrap();
    let a = &l.range(b"a", b"").unwrap().kvs[0];
    assert_eq!((a.create_revision, a.version), (fresh.revision, 1));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn bad_puts_change_nothing() {
    let (_, l) = store();
    assert!(matches!(
        l.put(b"k", b"v", on(9)),
        Err(Error::LeaseNotFound { .. })
    ));
    assert!(matches!(l.put(b"", b"v", plain()), Err(Error::EmptyKey)));
    for opts in [
        PutOptions {
            ignore_value: true,
            ..plain()
        },
        PutOptions {
            ignore_lease: true,
            ..plain()
        },
    ] {
        assert!(matches!(l.put(b"k", b"", opts), Err(Error::KeyNotFound)));
    }
    assert_eq!(l.revision(), 1);
    assert!(dump(&l).is_empty());
    let (_, plain_lessor) = crate::support::lessor();
    assert!(matches!(
        plain_lessor.put(b"k", b"v", plain()),
        Err(Error::StoreDisabled)
    ));
    assert_eq!(plain_lessor.revision(), 0);
}

#[test]
fn ignore_value_and_ignore_lease_keep_what_is_there() {
    let (_, l) = store();
    l.grant(id(1), secs(60)).unwrap();
    l.grant(id(2), secs(60)).unwrap();
    l.put(b"k", b"v1", on(1)).unwrap();
    l.put(
        b"k",
        b"",
        PutOptions {
            lease: id(2),
            ignore_value: true,
            ..plain()
        },
    )
    .unwrap();
    let kv = &dump(&l)[0];
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"v1"[..], id(2)));
    l.put(
        b"k",
        b"v2",
        PutOptions {
            ignore_lease: true,
            ..plain()
        },
    )
    .unwrap();
    let kv = &dump(&l)[0];
    assert_eq!((kv.value.as_slice(), kv.lease), (&b"v2"[..], id(2)));
    assert_eq!(l.get_lease(b"k"), id(2));
    assert!(l.lookup(id(1)).unwrap().keys().is_empty());
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_key_moves_between_leases_and_off_them() {
    let (_, l) = store();
    l.grant(id(1), secs(60)).unwrap();
    l.grant(id(2), secs(60)).unwrap();
    l.put(b"k", b"v", on(1)).unwrap();
    assert_eq!(l.lookup(id(1)).unwrap().keys(), [b"k".to_vec()]);
    l.put(b"k", b"v", on(2)).unwrap();
    assert!(l.lookup(id(1)).unwrap().keys().is_empty());
    assert_eq!(l.lookup(id(2)).unwrap().keys(), [b"k".to_vec()]);
    l.put(b"k", b"v", plain()).unwrap();
    assert!(l.lookup(id(2)).unwrap().keys().is_empty());
    assert!(l.get_lease(b"k").is_none());
    l.put(b"k", b"v", on(2)).unwrap();
    l.delete_range(b"k", b"", false).unwrap();
    assert!(
        l.lookup(id(2)).unwrap().keys().is_empty(),
        "a delete detaches"
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn revoke_deletes_a_leases_keys_at_one_revision() {
    let (_, l) = store();
    l.grant(id(1), secs(60)).unwrap();
    l.grant(id(2), secs(60)).unwrap();
    for k in ["a", "b", "c"] {
        l.put(k.as_bytes(), b"", on(1)).unwrap();
    }
    l.put(b"other", b"", plain()).unwrap();
    let before = l.revision();
    l.revoke(id(2)).unwrap();
    assert_eq!(l.revision(), before, "a lease without keys deletes nothing");
    l.revoke(id(1)).unwrap();
    assert_eq!(l.revision(), before + 1);
    assert_eq!(dump(&l).len(), 1);
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn an_expired_lease_takes_its_keys_in_revoke_mode() {
    let (clock, b) = builder();
    let l = b
        .key_value_store(true)
        .expiry_mode(ExpiryMode::Revoke)
        .build()
        .unwrap();
    l.grant(id(1), secs(5)).unwrap();
    l.put(b"session", b"alive", on(1)).unwrap();
    clock.advance(secs(6));
    l.run_expiry_once().unwrap();
    assert!(l.lookup(id(1)).is_none());
    assert!(dump(&l).is_empty());
    assert_eq!(l.revision(), 3);
}

#[test]
fn a_restart_brings_back_keys_leases_and_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let (want, rev) = {
        let l = open(dir.path(), &clock);
        l.grant(id(-1), secs(60)).unwrap();
        l.grant(id(i64::MAX), secs(60)).unwrap();
        l.put(b"a", b"1", on(-1)).unwrap();
        l.put(b"a", b"2", on(i64::MAX)).unwrap();
        l.put(b"b", b"3", on(-1)).unwrap();
        l.put(b"c", b"4", plain()).unwrap();
        l.delete_range(b"c", b"", false).unwrap();
        l.revoke(id(-1)).unwrap();
        (dump(&l), l.revision())
    };
    let l = open(dir.path(), &clock);
    assert_eq!(dump(&l), want);
    assert_eq!(l.revision(), rev);
    assert_eq!(l.recovery().unwrap().store_keys, 1);
    assert_eq!(l.get_lease(b"a"), id(i64::MAX));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn compaction_keeps_keys_and_the_revision_of_a_last_delete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let (want, rev) = {
        let l = open(dir.path(), &clock);
        l.grant(id(1), secs(60)).unwrap();
        for i in 0..50u32 {
            l.put(format!("k{i}").as_bytes(), b"v", on(1)).unwrap();
        }
        l.put(b"k7", b"again", plain()).unwrap();
        l.compact().unwrap();
        // After the snapshot: more changes land in the new segment.
        l.put(b"late", b"v", on(1)).unwrap();
        l.delete_range(b"k3", b"k4", false).unwrap();
        l.compact().unwrap();
        l.delete_range(b"late", b"", false).unwrap();
        (dump(&l), l.revision())
    };
    let l = open(dir.path(), &clock);
    assert_eq!(dump(&l), want);
    assert_eq!(l.revision(), rev);
    l.compact().unwrap();
    drop(l);
    let l = open(dir.path(), &clock);
    assert_eq!(dump(&l), want, "a snapshot of a snapshot");
    assert_eq!(
        l.revision(),
        rev,
        "the revision of a trailing delete survives"
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_store_directory_is_refused_without_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    open(dir.path(), &clock).put(b"k", b"v", plain()).unwrap();
    let err = Lessor::builder()
        .clock(clock)
        .expiry_thread(false)
        .data_dir(dir.path())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "key_value_store",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_store_and_a_range_deleter_do_not_mix() {
    let (_, b) = builder();
    let err = b
        .key_value_store(true)
        .range_deleter(crate::support::RecordingDeleter::default())
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
}

#[test]
fn puts_deletes_and_revokes_racing_keep_the_store_and_leases_in_step() {
    let (_, l) = store();
    let l = Arc::new(l);
    for n in 1..=4 {
        l.grant(id(n), secs(600)).unwrap();
    }
    let workers: Vec<_> = (0..4i64)
        .map(|t| {
            let l = Arc::clone(&l);
            thread::spawn(move || {
                for i in 0..400i64 {
                    let key = format!("k{}", (i * 7 + t) % 13);
                    match (i + t) % 5 {
                        0 | 1 => {
                            let _ = l.put(key.as_bytes(), b"v", on(1 + (i + t) % 4));
                        }
                        2 => {
                            let _ = l.put(key.as_bytes(), b"v", plain());
                        }
                        3 => {
                            l.delete_range(b"k1", b"k2", false).unwrap();
                        }
                        _ => {
                            let lease = id(1 + (i * 3 + t) % 4);
                            if l.revoke(lease).is_ok() {
                                match l.grant(lease, secs(600)) {
                                    Ok(_) | Err(Error::LeaseExists { .. }) => {}
                                    Err(other) => panic!("{other}"),
                                }
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(l.check_invariants(), Ok(()));
}
