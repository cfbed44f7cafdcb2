//! `grant_many` and `revoke_many`: each grant or revoke of a batch answers as `grant` or
//! `revoke` would, and a logged batch is one append that a restart brings back whole.

use std::time::Duration;

use lessor::test_util::MemFs;
use lessor::{Error, LeaseId, Lessor, ManualClock, PutOptions, Remaining, MAX_TTL};

use crate::support::{builder, id, revoke_calls, secs, Call, RecordingDeleter};

fn open(fs: &MemFs, clock: &ManualClock) -> Lessor {
    Lessor::builder()
        .clock(clock.clone())
        .expiry_thread(false)
        .data_dir("/data")
        .file_system(fs.clone())
        .build()
        .expect("open")
}

#[test]
fn each_grant_answers_as_grant_would() {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open(&fs, &clock);
    l.grant(id(3), secs(60)).unwrap();
    let done = l
        .grant_many(&[
            (id(1), secs(60)),
            (id(1), secs(60)),
            (LeaseId::NONE, secs(60)),
            (id(2), MAX_TTL + Duration::from_secs(1)),
            (id(3), secs(5)),
            (id(-4), Duration::ZERO),
        ])
        .unwrap();
    assert_eq!(done[0].as_ref().unwrap().ttl(), secs(60));
    assert!(matches!(done[1], Err(Error::LeaseExists { .. })));
    assert!(matches!(done[2], Err(Error::LeaseNotFound { .. })));
    assert!(matches!(done[3], Err(Error::TtlTooLarge { .. })));
    assert!(matches!(done[4], Err(Error::LeaseExists { .. })));
    let short = done[5].as_ref().unwrap();
    assert_eq!(short.ttl(), secs(2), "raised to the minimum TTL");
    assert_eq!(short.remaining(), Remaining::Left(secs(2)));
    assert_eq!(
        l.lookup(id(3)).unwrap().ttl(),
        secs(60),
        "an existing lease is untouched"
    );
    assert_eq!(l.len(), 3);
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_batch_survives_a_crash_whole() {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open(&fs, &clock);
    let batch: Vec<(LeaseId, Duration)> = (1..=100).map(|n| (id(n), secs(30 + n as u64))).collect();
    assert!(l.grant_many(&batch).unwrap().iter().all(Result::is_ok));
    let after = fs.crashed();
    drop(l);
    let l = open(&after, &clock);
    assert_eq!(l.len(), 100);
    for (lease, ttl) in batch {
        assert_eq!(l.lookup(lease).unwrap().ttl(), ttl);
    }
    assert_eq!(l.recovery().unwrap().leases, 100);
}

#[test]
fn a_stopped_lessor_grants_nothing() {
    let (_, l) = crate::support::lessor();
    l.stop();
    assert!(matches!(
        l.grant_many(&[(id(1), secs(5))]),
        Err(Error::Stopped)
    ));
}

#[test]
fn without_a_log_it_is_grant_in_a_loop() {
    let (_, l) = crate::support::lessor();
    let done = l.grant_many(&[(id(1), secs(5)), (id(1), secs(5))]).unwrap();
    assert!(done[0].is_ok());
    assert!(matches!(done[1], Err(Error::LeaseExists { .. })));
}

#[test]
fn each_revoke_answers_as_revoke_would_with_its_own_transaction() {
    let deleter = RecordingDeleter::default();
    let (_clock, b) = builder();
    let l = b.range_deleter(deleter.clone()).build().unwrap();
    for n in 1..=3 {
        l.grant(id(n), secs(60)).unwrap();
    }
    l.attach(id(1), [&b"b"[..], b"a"]).unwrap();
    l.attach(id(3), ["z"]).unwrap();
    let done = l
        .revoke_many(&[id(2), id(1), id(2), id(4), LeaseId::NONE])
        .unwrap();
    assert!(done[0].is_ok() && done[1].is_ok());
    for (at, n) in [(2, 2), (3, 4), (4, 0)] {
        assert!(
            matches!(done[at], Err(Error::LeaseNotFound { id }) if id.get() == n),
            "{:?}",
            done[at]
        );
    }
    // In batch order, one transaction each; the keys in ascending byte order.
    let mut expect = vec![Call::Begin(0), Call::End(0)];
    expect.extend(revoke_calls(1, &[b"a", b"b"]));
    assert_eq!(deleter.calls(), expect);
    assert!(l.get_lease(b"a").is_none() && l.get_lease(b"b").is_none());
    assert_eq!(
        l.get_lease(b"z"),
        id(3),
        "a lease not in the batch keeps its keys"
    );
    assert_eq!(l.len(), 1);
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_revoked_batch_stays_revoked_after_a_crash() {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open(&fs, &clock);
    let batch: Vec<(LeaseId, Duration)> = (1..=100).map(|n| (id(n), secs(60))).collect();
    assert!(l.grant_many(&batch).unwrap().iter().all(Result::is_ok));
    let odd: Vec<LeaseId> = (1..=100).step_by(2).map(id).collect();
    assert!(l.revoke_many(&odd).unwrap().iter().all(Result::is_ok));
    let after = fs.crashed();
    drop(l);
    let l = open(&after, &clock);
    assert_eq!(l.len(), 50);
    assert!((1..=100).all(|n| l.lookup(id(n)).is_some() == (n % 2 == 0)));
}

#[test]
fn leases_with_stored_keys_are_revoked_alone_at_their_own_revision() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let open = || {
        Lessor::builder()
            .clock(clock.clone())
            .expiry_thread(false)
            .key_value_store(true)
            .data_dir(dir.path())
            .build()
            .expect("open")
    };
    let l = open();
    for n in 1..=4 {
        l.grant(id(n), secs(60)).unwrap();
    }
    let on = |n| PutOptions {
        lease: id(n),
        ..PutOptions::default()
    };
    l.put(b"k1", b"v", on(1)).unwrap();
    l.put(b"k3", b"v", on(3)).unwrap();
    l.put(b"plain", b"v", PutOptions::default()).unwrap();
    let before = l.revision();
    let done = l.revoke_many(&[id(1), id(2), id(3), id(4)]).unwrap();
    assert!(done.iter().all(Result::is_ok), "{done:?}");
    // Two leases had keys: two deletions, a revision each; the others change no revision.
    assert_eq!(l.revision(), before + 2);
    let left: Vec<Vec<u8>> = l
        .range(b"\0", b"\0")
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| kv.key)
        .collect();
    assert_eq!(left, [b"plain".to_vec()]);
    assert_eq!(l.len(), 0);
    assert_eq!(l.check_invariants(), Ok(()));
    l.stop();
    drop(l);
    let l = open();
    assert_eq!((l.len(), l.revision()), (0, before + 2));
    assert_eq!(l.range(b"\0", b"\0").unwrap().kvs.len(), 1);
}

#[test]
fn a_stopped_lessor_revokes_nothing() {
    let (_, l) = crate::support::lessor();
    l.grant(id(1), secs(5)).unwrap();
    l.stop();
    assert!(matches!(l.revoke_many(&[id(1)]), Err(Error::Stopped)));
}
