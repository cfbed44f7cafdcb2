//! `grant_many`: each grant of a batch answers as `grant` would, and a logged batch is one
//! append that a restart brings back whole.

use std::time::Duration;

use lessor::test_util::MemFs;
use lessor::{Error, LeaseId, Lessor, ManualClock, Remaining, MAX_TTL};

use crate::support::{id, secs};

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
