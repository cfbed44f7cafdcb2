//! Renew: the granted TTL back, the deadline moved to now + TTL, expired leases never revived.

use std::time::Duration;

use lessor::{Error, LeaseId, Remaining};

use crate::support::{builder, id, left, lessor, ms, remaining, secs};

#[test]
fn renew_returns_the_granted_ttl_not_the_time_left() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(secs(7));
    assert_eq!(left(&l, id(1)), secs(3));
    assert_eq!(l.renew(id(1)).unwrap(), secs(10));
    assert_eq!(l.lookup(id(1)).unwrap().ttl(), secs(10));
}

#[test]
fn renew_moves_the_deadline_to_now_plus_ttl() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(secs(7));
    l.renew(id(1)).unwrap();
    assert_eq!(left(&l, id(1)), secs(10));
    clock.advance(secs(9));
    assert_eq!(left(&l, id(1)), secs(1));
    // Still alive 16 s after a 10 s grant: the renew counted.
    l.renew(id(1)).unwrap();
    assert_eq!(left(&l, id(1)), secs(10));
    clock.advance(ms(9_999));
    assert_eq!(left(&l, id(1)), ms(1));
    l.renew(id(1)).unwrap();
    assert_eq!(left(&l, id(1)), secs(10));
}

#[test]
fn renew_returns_the_clamped_ttl() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(1)).unwrap();
    assert_eq!(l.renew(id(1)).unwrap(), secs(2));
    let (_clock, b) = builder();
    let l = b.min_ttl(ms(1)).build().unwrap();
    l.grant(id(1), ms(1500)).unwrap();
    assert_eq!(l.renew(id(1)).unwrap(), ms(1500));
}

#[test]
fn renew_of_an_unknown_lease_is_lease_not_found() {
    let (_clock, l) = lessor();
    for n in [1, 0, -1, i64::MAX] {
        let err = l.renew(id(n)).unwrap_err();
        assert!(
            matches!(err, Error::LeaseNotFound { id } if id.get() == n),
            "{err:?}"
        );
    }
    l.grant(id(1), secs(10)).unwrap();
    l.revoke(id(1)).unwrap();
    let err = l.renew(id(1)).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
}

#[test]
fn renew_when_not_primary_is_not_primary_even_for_unknown_ids() {
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(10)).unwrap();
    for n in [1, 2, 0] {
        let err = l.renew(id(n)).unwrap_err();
        assert!(matches!(err, Error::NotPrimary), "id {n}: {err:?}");
    }
    assert_eq!(remaining(&l, id(1)), Some(Remaining::Forever));

    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.demote();
    for n in [1, 2] {
        let err = l.renew(id(n)).unwrap_err();
        assert!(matches!(err, Error::NotPrimary), "id {n}: {err:?}");
    }
}

#[test]
fn a_lease_past_its_deadline_is_expired_and_never_revived() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(ms(9_999));
    l.renew(id(1)).unwrap(); // deadline now 19.999 s
    clock.advance(secs(10));
    assert_eq!(
        remaining(&l, id(1)),
        Some(Remaining::Overdue(Duration::ZERO))
    );
    let err = l.renew(id(1)).unwrap_err();
    assert!(
        matches!(err, Error::LeaseExpired { id } if id == LeaseId::new(1)),
        "{err:?}"
    );

    clock.advance(secs(3));
    for _ in 0..3 {
        let err = l.renew(id(1)).unwrap_err();
        assert!(matches!(err, Error::LeaseExpired { .. }), "{err:?}");
    }
    // Still there, still overdue: the failed renewals changed nothing.
    let lease = l.lookup(id(1)).unwrap();
    assert_eq!(lease.remaining(), Remaining::Overdue(secs(3)));
    assert_eq!(lease.ttl(), secs(10));
    assert_eq!(l.len(), 1);
    assert_eq!(l.leases()[0].remaining(), Remaining::Overdue(secs(3)));

    l.revoke(id(1)).unwrap();
    assert!(l.lookup(id(1)).is_none());
    let err = l.renew(id(1)).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
}

#[test]
fn an_expired_lease_does_not_stop_others_from_renewing() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(5)).unwrap();
    l.grant(id(2), secs(20)).unwrap();
    clock.advance(secs(6));
    assert!(matches!(l.renew(id(1)), Err(Error::LeaseExpired { .. })));
    assert_eq!(l.renew(id(2)).unwrap(), secs(20));
    assert_eq!(left(&l, id(2)), secs(20));
}

#[test]
fn renew_clears_a_checkpoint() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(60)).unwrap();
    l.grant(id(2), secs(60)).unwrap();
    l.checkpoint(id(1), secs(5)).unwrap();
    l.checkpoint(id(2), secs(5)).unwrap();
    assert_eq!(l.renew(id(1)).unwrap(), secs(60));
    l.demote();
    l.promote(Duration::ZERO);
    // Renewed: the checkpoint is gone, the full TTL is back.
    assert_eq!(left(&l, id(1)), secs(60));
    // Not renewed: the checkpoint is in force.
    assert_eq!(left(&l, id(2)), secs(5));
}

#[test]
fn renew_after_a_checkpoint_uses_the_full_ttl() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(60)).unwrap();
    l.checkpoint(id(1), secs(5)).unwrap();
    clock.advance(secs(1));
    l.renew(id(1)).unwrap();
    assert_eq!(left(&l, id(1)), secs(60));
}

#[test]
fn renew_on_a_stopped_lessor_is_stopped() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.stop();
    assert!(matches!(l.renew(id(1)), Err(Error::Stopped)));
    assert!(matches!(l.renew(id(99)), Err(Error::Stopped)));
}
