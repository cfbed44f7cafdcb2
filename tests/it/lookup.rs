//! Lookup and leases: TTL versus time left, ordering, and `Remaining`'s conversions.

use std::time::Duration;

use lessor::{LeaseId, Remaining};

use crate::support::{builder, id, lease_ids, left, lessor, ms, remaining, secs};

#[test]
fn lookup_of_an_unknown_lease_is_none() {
    let (_clock, l) = lessor();
    assert!(l.lookup(id(1)).is_none());
    assert!(l.lookup(LeaseId::NONE).is_none());
    assert!(l.leases().is_empty());
    assert_eq!(l.len(), 0);
    assert!(l.is_empty());
}

#[test]
fn ttl_is_the_granted_ttl_and_remaining_is_the_time_left() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(1)).unwrap(); // clamped to 2 s
    clock.advance(ms(1500));
    let a = l.lookup(id(1)).unwrap();
    assert_eq!(a.ttl(), secs(10));
    assert_eq!(a.ttl_secs(), 10);
    assert_eq!(a.remaining(), Remaining::Left(ms(8500)));
    assert_eq!(a.remaining().as_secs_ceil(), 9);
    let b = l.lookup(id(2)).unwrap();
    assert_eq!(b.ttl(), secs(2));
    assert_eq!(b.remaining(), Remaining::Left(ms(500)));
    assert_eq!(b.remaining().as_secs_ceil(), 1);
}

#[test]
fn leases_are_ascending_by_time_remaining() {
    let (clock, l) = lessor();
    l.grant(id(30), secs(30)).unwrap();
    l.grant(id(10), secs(10)).unwrap();
    l.grant(id(20), secs(20)).unwrap();
    assert_eq!(lease_ids(&l), [10, 20, 30]);
    clock.advance(secs(5));
    l.renew(id(10)).unwrap(); // deadline 15 s
    assert_eq!(lease_ids(&l), [10, 20, 30]);
    clock.advance(secs(6));
    l.renew(id(10)).unwrap(); // deadline 21 s, after 20's
    assert_eq!(lease_ids(&l), [20, 10, 30]);
    let rem: Vec<Remaining> = l.leases().iter().map(|x| x.remaining()).collect();
    assert_eq!(
        rem,
        [
            Remaining::Left(secs(9)),
            Remaining::Left(secs(10)),
            Remaining::Left(secs(19))
        ]
    );
}

#[test]
fn leases_with_equal_time_left_come_in_grant_order() {
    let (_clock, l) = lessor();
    // A scrambled set of ids, so that no hash or id order can pass for grant order.
    let mut order: Vec<i64> = Vec::new();
    let mut x: i64 = 17;
    for _ in 0..64 {
        x = (x * 37 + 11) % 1009;
        let n = if x % 2 == 0 { x + 1 } else { -x };
        if !order.contains(&n) {
            order.push(n);
        }
    }
    order.extend([i64::MAX, i64::MIN, 1]);
    for &n in &order {
        l.grant(id(n), secs(10)).unwrap();
    }
    assert_eq!(lease_ids(&l), order);
}

#[test]
fn ties_from_different_grant_instants_also_come_in_grant_order() {
    let (clock, l) = lessor();
    l.grant(id(9), secs(12)).unwrap();
    clock.advance(secs(2));
    l.grant(id(3), secs(10)).unwrap(); // same deadline, granted later
    l.grant(id(5), secs(5)).unwrap();
    assert_eq!(lease_ids(&l), [5, 9, 3]);
}

#[test]
fn leases_when_not_primary_come_in_grant_order() {
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    for (n, ttl) in [(4, 50), (-2, 10), (8, 30), (1, 20)] {
        l.grant(id(n), secs(ttl)).unwrap();
    }
    assert_eq!(lease_ids(&l), [4, -2, 8, 1]);
    assert!(l
        .leases()
        .iter()
        .all(|x| x.remaining() == Remaining::Forever));
}

#[test]
fn overdue_leases_come_first_with_negative_nanos() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(20)).unwrap();
    l.grant(id(2), secs(2)).unwrap();
    clock.advance(ms(2500));
    let r = remaining(&l, id(2)).unwrap();
    assert_eq!(r, Remaining::Overdue(ms(500)));
    assert_eq!(r.as_nanos(), -500_000_000);
    assert_eq!(r.as_secs_ceil(), -1);
    assert_eq!(lease_ids(&l), [2, 1]);
    assert_eq!(l.leases()[0].remaining().as_nanos(), -500_000_000);
    assert_eq!(left(&l, id(1)), ms(17_500));
}

#[test]
fn forever_is_i64_max_nanos() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.demote();
    let r = remaining(&l, id(1)).unwrap();
    assert_eq!(r, Remaining::Forever);
    assert_eq!(r.as_nanos(), i64::MAX);
    assert_eq!(r.as_secs_ceil(), i64::MAX);
}

#[test]
fn remaining_conversions() {
    let cases = [
        (Remaining::Left(ms(1500)), 1_500_000_000, 2),
        (Remaining::Left(secs(2)), 2_000_000_000, 2),
        (Remaining::Left(Duration::from_nanos(1)), 1, 1),
        (Remaining::Left(Duration::ZERO), 0, 0),
        (
            Remaining::Left(secs(9_000_000_000)),
            9_000_000_000_000_000_000,
            9_000_000_000,
        ),
        (Remaining::Overdue(Duration::ZERO), 0, -1),
        (Remaining::Overdue(secs(3)), -3_000_000_000, -1),
        (Remaining::Forever, i64::MAX, i64::MAX),
    ];
    for (r, nanos, secs_ceil) in cases {
        assert_eq!(r.as_nanos(), nanos, "{r:?}");
        assert_eq!(r.as_secs_ceil(), secs_ceil, "{r:?}");
    }
}

#[test]
fn remaining_conversions_saturate_at_the_extremes() {
    assert_eq!(Remaining::Left(Duration::MAX).as_nanos(), i64::MAX);
    assert_eq!(
        Remaining::Left(Duration::from_secs(u64::MAX)).as_secs_ceil(),
        i64::MAX
    );
    assert!(Remaining::Overdue(Duration::MAX).as_nanos() < 0);
    assert_eq!(Remaining::Overdue(Duration::MAX).as_secs_ceil(), -1);
}

#[test]
fn as_secs_ceil_of_the_largest_duration_saturates() {
    // `Remaining` and `FakeLessor::grant` take any `Duration`; rounding up must saturate.
    assert_eq!(Remaining::Left(Duration::MAX).as_secs_ceil(), i64::MAX);
    let lease = lessor::LeaseApi::grant(&lessor::FakeLessor, id(1), Duration::MAX).unwrap();
    assert_eq!(lease.ttl_secs(), i64::MAX);
}

#[test]
fn time_left_of_a_real_lease_rounds_up_to_whole_seconds() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(ms(500));
    let r = remaining(&l, id(1)).unwrap();
    assert_eq!(r.as_nanos(), 9_500_000_000);
    assert_eq!(r.as_secs_ceil(), 10);
    clock.advance(ms(9499));
    assert_eq!(remaining(&l, id(1)).unwrap().as_secs_ceil(), 1);
}

#[test]
fn len_counts_each_lease_once() {
    let (_clock, l) = lessor();
    for n in 1..=10 {
        l.grant(id(n), secs(n as u64 + 2)).unwrap();
    }
    assert_eq!(l.len(), 10);
    l.revoke(id(3)).unwrap();
    l.revoke(id(7)).unwrap();
    assert_eq!(l.len(), 8);
    assert_eq!(lease_ids(&l), [1, 2, 4, 5, 6, 8, 9, 10]);
}

#[test]
fn time_left_never_exceeds_the_ttl_at_sub_millisecond_instants() {
    // The system clock is almost never on a whole millisecond of the lessor's time base.
    let (clock, l) = lessor();
    clock.advance(Duration::from_micros(500));
    let granted = l.grant(id(1), secs(10)).unwrap();
    assert_eq!(granted.remaining(), Remaining::Left(secs(10)));
    let r = remaining(&l, id(1)).unwrap();
    assert!(r <= Remaining::Left(secs(10)), "{r:?} left of a 10 s lease");
    // etcd's LeaseTimeToLive would answer 11 s for a lease granted 10 s.
    assert_eq!(r.as_secs_ceil(), 10);
    clock.advance(secs(3));
    l.renew(id(1)).unwrap();
    let r = remaining(&l, id(1)).unwrap();
    assert!(r <= Remaining::Left(secs(10)), "{r:?} left after a renew");
}
