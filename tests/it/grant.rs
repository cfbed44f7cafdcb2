//! Grant: etcd's order of checks, TTL clamping, ids, and the seconds surface.

use std::time::Duration;

use lessor::{Error, LeaseId, Remaining, MAX_TTL};

use crate::support::{builder, bytes, id, keys_of, left, lessor, ms, remaining, secs};

#[test]
fn grant_returns_the_lease_and_lookup_agrees() {
    let (_clock, l) = lessor();
    let lease = l.grant(id(1), secs(10)).unwrap();
    assert_eq!(lease.id(), id(1));
    assert_eq!(lease.ttl(), secs(10));
    assert_eq!(lease.ttl_secs(), 10);
    assert_eq!(lease.remaining(), Remaining::Left(secs(10)));
    assert!(lease.keys().is_empty());
    assert_eq!(l.lookup(id(1)), Some(lease));
    assert_eq!(l.len(), 1);
    assert!(!l.is_empty());
}

#[test]
fn id_zero_is_lease_not_found_before_any_other_check() {
    let (_clock, l) = lessor();
    let err = l.grant(LeaseId::NONE, secs(10)).unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { id } if id == LeaseId::NONE),
        "{err:?}"
    );
    // The id check comes before the TTL check.
    let err = l.grant(LeaseId::NONE, MAX_TTL + secs(1)).unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { id } if id == LeaseId::NONE),
        "{err:?}"
    );
    let err = l.grant_secs(LeaseId::NONE, 5).unwrap_err();
    assert!(matches!(err, Error::LeaseNotFound { .. }), "{err:?}");
    assert!(l.is_empty());
}

#[test]
fn ttl_over_max_is_refused_with_given_and_max() {
    let (_clock, l) = lessor();
    let too_long = MAX_TTL + secs(1);
    let err = l.grant(id(1), too_long).unwrap_err();
    assert!(
        matches!(err, Error::TtlTooLarge { given, max } if given == too_long && max == MAX_TTL),
        "{err:?}"
    );
    let err = l
        .grant(id(1), MAX_TTL + Duration::from_nanos(1))
        .unwrap_err();
    assert!(matches!(err, Error::TtlTooLarge { .. }), "{err:?}");
    assert!(l.lookup(id(1)).is_none());
    assert!(l.is_empty());
}

#[test]
fn ttl_over_max_is_refused_even_when_the_id_exists() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    let err = l.grant(id(1), MAX_TTL + secs(1)).unwrap_err();
    assert!(matches!(err, Error::TtlTooLarge { .. }), "{err:?}");
    let lease = l.lookup(id(1)).unwrap();
    assert_eq!(lease.ttl(), secs(10));
    assert_eq!(l.len(), 1);
}

#[test]
fn ttl_equal_to_max_is_accepted() {
    let (_clock, l) = lessor();
    let lease = l.grant(id(1), MAX_TTL).unwrap();
    assert_eq!(lease.ttl(), MAX_TTL);
    assert_eq!(lease.ttl_secs(), 9_000_000_000);
    assert_eq!(left(&l, id(1)), MAX_TTL);
    assert_eq!(l.renew(id(1)).unwrap(), MAX_TTL);
}

#[test]
fn existing_id_is_lease_exists_and_nothing_changes() {
    let (clock, l) = lessor();
    l.grant(id(7), secs(10)).unwrap();
    l.attach(id(7), ["a", "b"]).unwrap();
    clock.advance(secs(3));
    for ttl in [secs(30), secs(10), ms(1), Duration::ZERO, MAX_TTL] {
        let err = l.grant(id(7), ttl).unwrap_err();
        assert!(
            matches!(err, Error::LeaseExists { id } if id == LeaseId::new(7)),
            "{err:?}"
        );
    }
    let err = l.grant_secs(id(7), 100).unwrap_err();
    assert!(matches!(err, Error::LeaseExists { .. }), "{err:?}");
    let lease = l.lookup(id(7)).unwrap();
    assert_eq!(lease.ttl(), secs(10));
    assert_eq!(lease.remaining(), Remaining::Left(secs(7)));
    assert_eq!(lease.keys(), bytes(&["a", "b"]));
    assert_eq!(l.get_lease("a"), id(7));
    assert_eq!(l.len(), 1);
}

#[test]
fn short_ttls_are_raised_to_the_default_minimum_of_two_seconds() {
    let (_clock, l) = lessor();
    let cases = [
        (1, Duration::ZERO),
        (2, Duration::from_nanos(1)),
        (3, ms(1)),
        (4, ms(1999)),
        (5, secs(1)),
    ];
    for (n, ttl) in cases {
        let lease = l.grant(id(n), ttl).unwrap();
        assert_eq!(lease.ttl(), secs(2), "ttl {ttl:?}");
        assert_eq!(left(&l, id(n)), secs(2), "ttl {ttl:?}");
    }
    assert_eq!(l.grant(id(10), secs(2)).unwrap().ttl(), secs(2));
    assert_eq!(l.grant(id(11), ms(2001)).unwrap().ttl(), ms(2001));
}

#[test]
fn the_builder_minimum_applies() {
    let (_clock, b) = builder();
    let l = b.min_ttl(secs(5)).build().unwrap();
    assert_eq!(l.grant(id(1), secs(3)).unwrap().ttl(), secs(5));
    assert_eq!(l.grant(id(2), secs(7)).unwrap().ttl(), secs(7));
    assert_eq!(l.renew(id(1)).unwrap(), secs(5));
    assert_eq!(l.lookup(id(1)).unwrap().ttl(), secs(5));
}

#[test]
fn negative_and_extreme_ids_are_ordinary_leases() {
    let (_clock, l) = lessor();
    let ids = [-1, i64::MIN, i64::MAX, 1, -42];
    for (i, &n) in ids.iter().enumerate() {
        let ttl = secs(10 + i as u64);
        assert_eq!(l.grant(id(n), ttl).unwrap().id(), id(n));
        l.attach(id(n), [format!("key{n}")]).unwrap();
    }
    assert_eq!(l.len(), ids.len());
    for (i, &n) in ids.iter().enumerate() {
        let lease = l.lookup(id(n)).unwrap();
        assert_eq!(lease.id().get(), n);
        assert_eq!(lease.ttl(), secs(10 + i as u64));
        assert_eq!(lease.keys(), [format!("key{n}").into_bytes()]);
        assert_eq!(l.get_lease(format!("key{n}")), id(n));
        assert_eq!(l.renew(id(n)).unwrap(), secs(10 + i as u64));
    }
    for &n in &ids {
        let err = l.grant(id(n), secs(1)).unwrap_err();
        assert!(
            matches!(err, Error::LeaseExists { id } if id.get() == n),
            "{err:?}"
        );
    }
    for &n in &ids {
        l.revoke(id(n)).unwrap();
        assert!(l.lookup(id(n)).is_none());
    }
    assert!(l.is_empty());
}

#[test]
fn grant_secs_clamps_zero_and_negative_and_refuses_over_max() {
    let (_clock, l) = lessor();
    assert_eq!(l.grant_secs(id(1), 0).unwrap().ttl(), secs(2));
    assert_eq!(l.grant_secs(id(2), -5).unwrap().ttl(), secs(2));
    assert_eq!(l.grant_secs(id(3), i64::MIN).unwrap().ttl(), secs(2));
    assert_eq!(l.grant_secs(id(4), 60).unwrap().ttl(), secs(60));
    assert_eq!(l.grant_secs(id(5), 9_000_000_000).unwrap().ttl(), MAX_TTL);
    let err = l.grant_secs(id(6), 9_000_000_001).unwrap_err();
    assert!(
        matches!(err, Error::TtlTooLarge { given, max }
            if given == secs(9_000_000_001) && max == MAX_TTL),
        "{err:?}"
    );
    let err = l.grant_secs(id(7), i64::MAX).unwrap_err();
    assert!(matches!(err, Error::TtlTooLarge { .. }), "{err:?}");
    assert_eq!(left(&l, id(2)), secs(2));
    assert_eq!(l.len(), 5);
}

#[test]
fn a_lease_granted_while_not_primary_never_expires() {
    let (clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    let lease = l.grant(id(1), secs(10)).unwrap();
    assert_eq!(lease.remaining(), Remaining::Forever);
    assert_eq!(lease.ttl(), secs(10));
    clock.advance(secs(1_000_000));
    assert_eq!(remaining(&l, id(1)), Some(Remaining::Forever));
    assert_eq!(l.lookup(id(1)).unwrap().ttl(), secs(10));
}

#[test]
fn remaining_counts_from_the_grant_instant() {
    let (clock, l) = lessor();
    clock.advance(secs(100));
    l.grant(id(1), secs(10)).unwrap();
    assert_eq!(left(&l, id(1)), secs(10));
    clock.advance(secs(4));
    assert_eq!(left(&l, id(1)), secs(6));
}

#[test]
fn millisecond_ttls_keep_millisecond_resolution() {
    let (clock, b) = builder();
    let l = b.min_ttl(ms(1)).build().unwrap();
    let lease = l.grant(id(1), ms(1500)).unwrap();
    assert_eq!(lease.ttl(), ms(1500));
    assert_eq!(lease.ttl_secs(), 2);
    assert_eq!(lease.remaining(), Remaining::Left(ms(1500)));
    assert_eq!(left(&l, id(1)), ms(1500));
    clock.advance(ms(1499));
    assert_eq!(left(&l, id(1)), ms(1));
    clock.advance(ms(1));
    assert_eq!(
        remaining(&l, id(1)),
        Some(Remaining::Overdue(Duration::ZERO))
    );

    assert_eq!(l.grant(id(2), ms(1)).unwrap().ttl(), ms(1));
    assert_eq!(l.grant(id(3), Duration::ZERO).unwrap().ttl(), ms(1));
    assert_eq!(l.grant(id(4), ms(250)).unwrap().ttl_secs(), 1);
}

#[test]
fn a_grant_after_promote_does_not_get_the_extend() {
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.promote(secs(5));
    let lease = l.grant(id(1), secs(10)).unwrap();
    assert_eq!(lease.remaining(), Remaining::Left(secs(10)));
    assert_eq!(left(&l, id(1)), secs(10));
}

#[test]
fn a_revoked_id_can_be_granted_again_fresh() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.attach(id(1), ["k"]).unwrap();
    l.revoke(id(1)).unwrap();
    clock.advance(secs(1));
    let lease = l.grant(id(1), secs(30)).unwrap();
    assert_eq!(lease.ttl(), secs(30));
    assert!(keys_of(&l, id(1)).is_empty());
    assert!(l.get_lease("k").is_none());
    assert_eq!(left(&l, id(1)), secs(30));
}
