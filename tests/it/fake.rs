//! `LeaseApi` as a trait object: the do-nothing `FakeLessor` and the real `Lessor`.

use std::sync::Arc;
use std::time::Duration;

use lessor::{Error, FakeLessor, LeaseApi, LeaseId, Lessor, ManualClock, Remaining};

use crate::support::{id, secs};

/// Code under test that only knows the trait: renews every id, collecting the answers.
fn keep_alive(api: &dyn LeaseApi, ids: &[LeaseId]) -> Vec<lessor::Result<Duration>> {
    ids.iter().map(|&i| api.renew(i)).collect()
}

#[test]
fn the_fake_renews_for_ten_seconds_finds_nothing_and_never_fails() {
    let fake = FakeLessor;
    let api: &dyn LeaseApi = &fake;
    let lease = api.grant(id(1), secs(5)).unwrap();
    assert_eq!(lease.id(), id(1));
    assert!(
        api.grant(id(1), secs(5)).is_ok(),
        "no lease-exists in the fake"
    );
    assert!(api.grant(LeaseId::NONE, secs(5)).is_ok());
    for n in [1, 2, 0, -7] {
        assert_eq!(api.renew(id(n)).unwrap(), secs(10));
        assert!(api.lookup(id(n)).is_none());
    }
    api.attach(id(1), &[&b"k"[..], &b""[..]]).unwrap();
    assert_eq!(api.get_lease(b"k"), LeaseId::NONE);
    api.detach(id(3), &[&b"k"[..]]).unwrap();
    api.checkpoint(id(3), secs(1)).unwrap();
    assert!(api.leases().is_empty());
    api.revoke(id(1)).unwrap();
    api.revoke(id(1)).unwrap();
    api.demote();
    assert_eq!(api.renew(id(1)).unwrap(), secs(10));
    api.promote(secs(3));
    api.stop();
    assert_eq!(api.renew(id(1)).unwrap(), secs(10));
    assert!(api.grant(id(9), secs(1)).is_ok());
    let all = keep_alive(api, &[id(1), id(2)]);
    assert!(all.iter().all(|r| matches!(r, Ok(d) if *d == secs(10))));
}

#[test]
fn the_real_lessor_behind_the_trait_behaves_as_itself() {
    let clock = ManualClock::new();
    let real = Lessor::builder().clock(clock.clone()).build().unwrap();
    let api: &dyn LeaseApi = &real;

    let err = api.renew(id(1)).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
    assert_eq!(api.grant(id(1), secs(5)).unwrap().ttl(), secs(5));
    assert_eq!(api.grant(id(2), secs(1)).unwrap().ttl(), secs(2));
    assert!(matches!(
        api.grant(id(1), secs(5)),
        Err(Error::LeaseExists { .. })
    ));
    assert!(matches!(
        api.grant(LeaseId::NONE, secs(5)),
        Err(Error::LeaseNotFound { .. })
    ));

    api.attach(id(1), &[&b"k"[..], &b"j"[..]]).unwrap();
    assert!(matches!(
        api.attach(id(1), &[&b""[..]]),
        Err(Error::EmptyKey)
    ));
    assert_eq!(api.get_lease(b"k"), id(1));
    assert_eq!(
        api.lookup(id(1)).unwrap().keys(),
        [b"j".to_vec(), b"k".to_vec()]
    );
    api.detach(id(1), &[&b"j"[..]]).unwrap();
    assert_eq!(api.get_lease(b"j"), LeaseId::NONE);

    clock.advance(secs(1));
    let answers = keep_alive(api, &[id(1), id(2), id(3)]);
    assert!(matches!(answers[0], Ok(d) if d == secs(5)));
    assert!(matches!(answers[1], Ok(d) if d == secs(2)));
    assert!(matches!(answers[2], Err(Error::LeaseNotFound { .. })));
    let ids: Vec<i64> = api.leases().iter().map(|l| l.id().get()).collect();
    assert_eq!(ids, [2, 1]);

    api.checkpoint(id(1), secs(3)).unwrap();
    api.demote();
    assert!(matches!(api.renew(id(1)), Err(Error::NotPrimary)));
    assert_eq!(api.lookup(id(1)).unwrap().remaining(), Remaining::Forever);
    api.promote(secs(1));
    assert_eq!(
        api.lookup(id(1)).unwrap().remaining(),
        Remaining::Left(secs(4))
    );
    assert_eq!(
        api.lookup(id(2)).unwrap().remaining(),
        Remaining::Left(secs(3))
    );

    api.revoke(id(1)).unwrap();
    assert!(api.lookup(id(1)).is_none());
    assert_eq!(api.get_lease(b"k"), LeaseId::NONE);
    assert!(matches!(
        api.revoke(id(1)),
        Err(Error::LeaseNotFound { .. })
    ));
    api.stop();
    assert!(matches!(api.renew(id(2)), Err(Error::Stopped)));
    assert!(api.lookup(id(2)).is_some());
}

#[test]
fn both_can_be_shared_across_threads_as_trait_objects() {
    let real = Lessor::builder().clock(ManualClock::new()).build().unwrap();
    real.grant(id(1), secs(30)).unwrap();
    let apis: Vec<Arc<dyn LeaseApi>> = vec![Arc::new(FakeLessor), Arc::new(real)];
    std::thread::scope(|s| {
        for api in &apis {
            s.spawn(move || {
                for _ in 0..100 {
                    assert!(api.renew(id(1)).is_ok());
                }
            });
        }
    });
    assert_eq!(apis[0].renew(id(1)).unwrap(), secs(10));
    assert_eq!(apis[1].renew(id(1)).unwrap(), secs(30));
}
