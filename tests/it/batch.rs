//! `grant_many`, `revoke_many` and `renew_many`: each grant, revoke or renew of a batch answers
//! as `grant`, `revoke` or `renew` would, and a logged batch is one append that a restart
//! brings back whole.

use std::time::Duration;

use lessor::test_util::MemFs;
use lessor::{Error, LeaseId, Lessor, ManualClock, PutOptions, Remaining, MAX_TTL};

use crate::support::{builder, id, ms, revoke_calls, secs, Call, RecordingDeleter};

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

// ---------------------------------------------------------------------------------------------
// renew_many

/// A primary in-memory lessor on a manual clock with `shards` shards.
fn sharded(shards: usize) -> (ManualClock, Lessor) {
    let (clock, b) = builder();
    (clock, b.shards(shards).build().unwrap())
}

fn left(l: &Lessor, n: i64) -> Remaining {
    l.lookup(id(n)).expect("the lease is there").remaining()
}

#[test]
fn each_renew_answers_as_renew_would() {
    let (clock, l) = sharded(4);
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(30)).unwrap();
    l.grant(id(3), secs(5)).unwrap();
    l.grant(id(4), secs(60)).unwrap();
    l.revoke(id(4)).unwrap();
    clock.advance(secs(6)); // lease 3 has expired; 1 and 2 have not
    let done = l
        .renew_many(&[id(1), id(3), id(2), id(4), id(9), LeaseId::NONE, id(1)])
        .unwrap();
    assert_eq!(done.len(), 7);
    assert_eq!(done[0].as_ref().ok(), Some(&secs(10)));
    assert!(matches!(done[1], Err(Error::LeaseExpired { id }) if id == LeaseId::new(3)));
    assert_eq!(done[2].as_ref().ok(), Some(&secs(30)));
    assert!(matches!(done[3], Err(Error::LeaseNotFound { id }) if id == LeaseId::new(4)));
    assert!(matches!(done[4], Err(Error::LeaseNotFound { id }) if id == LeaseId::new(9)));
    assert!(matches!(done[5], Err(Error::LeaseNotFound { .. })));
    assert_eq!(
        done[6].as_ref().ok(),
        Some(&secs(10)),
        "the same id twice: renewed twice"
    );
    // The renewed leases start again from now; the expired one is not brought back.
    assert_eq!(left(&l, 1), Remaining::Left(secs(10)));
    assert_eq!(left(&l, 2), Remaining::Left(secs(30)));
    assert!(matches!(l.renew(id(3)), Err(Error::LeaseExpired { .. })));
    // The same answers, one renew at a time.
    for (n, want) in [(1, &done[0]), (3, &done[1]), (2, &done[2]), (9, &done[4])] {
        assert_eq!(format!("{:?}", l.renew(id(n))), format!("{want:?}"));
    }
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_batch_of_many_chunks_and_shards_keeps_its_order() {
    let (clock, l) = sharded(8);
    for n in 1..=300 {
        l.grant(id(n), secs(n as u64)).unwrap();
    }
    clock.advance(ms(2500)); // leases 1 and 2 (the minimum TTL, 2 s) have expired
                             // Descending, with every tenth id unknown and a few ids twice.
    let mut ids: Vec<LeaseId> = (1..=300)
        .rev()
        .map(|n| if n % 10 == 0 { id(1000 + n) } else { id(n) })
        .collect();
    ids.extend([id(7), id(299), id(7)]);
    let done = l.renew_many(&ids).unwrap();
    assert_eq!(done.len(), ids.len());
    for (asked, outcome) in ids.iter().zip(&done) {
        let n = asked.get();
        match outcome {
            Ok(ttl) => {
                assert!((3..=300).contains(&n), "renewed {n}");
                assert_eq!(*ttl, secs(n as u64), "lease {n} answers its own TTL");
                assert_eq!(left(&l, n), Remaining::Left(secs(n as u64)));
            }
            Err(Error::LeaseExpired { id }) => {
                assert!(n == 1 || n == 2, "{n} had not expired");
                assert_eq!(id.get(), n);
            }
            Err(Error::LeaseNotFound { id }) => {
                assert!(n > 1000, "{n} exists");
                assert_eq!(id.get(), n);
            }
            Err(e) => panic!("lease {n}: {e:?}"),
        }
    }
    assert_eq!(done.iter().filter(|r| r.is_ok()).count(), 300 - 30 - 2 + 3);
}

#[test]
fn a_batch_is_refused_whole_when_not_primary_or_stopped() {
    let (clock, l) = sharded(2);
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(secs(4));
    l.demote();
    assert!(matches!(l.renew_many(&[id(1)]), Err(Error::NotPrimary)));
    l.promote(Duration::ZERO);
    assert_eq!(l.renew_many(&[]).unwrap().len(), 0);
    l.stop();
    assert!(matches!(l.renew_many(&[id(1)]), Err(Error::Stopped)));
}

#[test]
fn a_renew_of_the_batch_clears_a_checkpoint_in_the_log_before_it_returns() {
    let fs = MemFs::new();
    let clock = ManualClock::new();
    let l = open(&fs, &clock);
    for n in [1, 2, 3] {
        l.grant(id(n), secs(600)).unwrap();
        l.checkpoint(id(n), secs(5)).unwrap();
    }
    clock.advance(secs(1));
    let done = l.renew_many(&[id(3), id(1), id(3)]).unwrap();
    assert!(done.iter().all(|r| r.as_ref().ok() == Some(&secs(600))));
    let durable = fs.crashed(); // the power goes out as soon as renew_many returned
    drop(l);
    let l = open(&durable, &clock);
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, 1), Remaining::Left(secs(600)));
    assert_eq!(
        left(&l, 2),
        Remaining::Left(secs(5)),
        "not renewed: keeps its checkpoint"
    );
    assert_eq!(left(&l, 3), Remaining::Left(secs(600)));
    assert_eq!(l.check_invariants(), Ok(()));
}
