//! Promote and demote: deadlines reset to extend + TTL (or the checkpoint), and etcd's
//! spreading of piled-up expiries.

use std::collections::BTreeMap;
use std::time::Duration;

use lessor::{Error, LeaseId, Lessor, Remaining};

use crate::support::{builder, id, lease_ids, left, lessor, ms, remaining, secs};

#[test]
fn demote_makes_every_lease_forever_and_refuses_renewals() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(20)).unwrap();
    clock.advance(secs(12)); // 1 is overdue, 2 has 8 s left
    assert!(l.is_primary());
    l.demote();
    assert!(!l.is_primary());
    for n in [1, 2] {
        assert_eq!(remaining(&l, id(n)), Some(Remaining::Forever));
        assert!(matches!(l.renew(id(n)), Err(Error::NotPrimary)));
    }
    clock.advance(secs(1000));
    assert_eq!(remaining(&l, id(1)), Some(Remaining::Forever));
    assert_eq!(l.len(), 2);
    assert_eq!(l.lookup(id(2)).unwrap().ttl(), secs(20));
    // A grant while demoted is forever too.
    assert_eq!(
        l.grant(id(3), secs(5)).unwrap().remaining(),
        Remaining::Forever
    );
}

#[test]
fn promote_gives_extend_plus_ttl() {
    let (clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(10)).unwrap();
    l.grant(id(2), secs(20)).unwrap();
    clock.advance(secs(100));
    assert!(matches!(l.renew(id(1)), Err(Error::NotPrimary)));
    l.promote(secs(5));
    assert!(l.is_primary());
    assert_eq!(left(&l, id(1)), secs(15));
    assert_eq!(left(&l, id(2)), secs(25));
    // Now primary: renewals work and deadlines count from the renew.
    clock.advance(secs(6));
    assert_eq!(l.renew(id(1)).unwrap(), secs(10));
    assert_eq!(left(&l, id(1)), secs(10));
    assert_eq!(left(&l, id(2)), secs(19));
    // And leases expire.
    clock.advance(secs(19));
    assert!(matches!(l.renew(id(2)), Err(Error::LeaseExpired { .. })));
}

#[test]
fn renew_soon_after_promote_sets_now_plus_ttl() {
    // etcd's Renew is `refresh(0)`: expiry = now + TTL, even when a promote's extend (or its
    // spreading) had set a later one. The contract: "the deadline becomes now + ttl".
    let (clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(10)).unwrap();
    l.promote(secs(5)); // deadline 15 s
    clock.advance(secs(3));
    assert_eq!(l.renew(id(1)).unwrap(), secs(10));
    assert_eq!(left(&l, id(1)), secs(10)); // deadline 13 s
}

#[test]
fn promote_with_zero_extend_gives_the_ttl() {
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(7)).unwrap();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), secs(7));
}

#[test]
fn demote_then_promote_resets_to_the_full_ttl() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(secs(8));
    assert_eq!(left(&l, id(1)), secs(2));
    l.demote();
    clock.advance(secs(50));
    l.promote(secs(1));
    assert_eq!(left(&l, id(1)), secs(11));
}

#[test]
fn an_overdue_lease_starts_afresh_after_demote_and_promote() {
    let (clock, l) = lessor();
    l.grant(id(1), secs(10)).unwrap();
    clock.advance(secs(11));
    assert!(matches!(l.renew(id(1)), Err(Error::LeaseExpired { .. })));
    l.demote();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), secs(10));
    assert_eq!(l.renew(id(1)).unwrap(), secs(10));
}

#[test]
fn promote_uses_a_checkpointed_remaining_ttl() {
    let (clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(60)).unwrap();
    l.grant(id(2), secs(60)).unwrap();
    l.checkpoint(id(1), secs(5)).unwrap();
    clock.advance(secs(30));
    l.promote(secs(2));
    assert_eq!(left(&l, id(1)), secs(7));
    assert_eq!(left(&l, id(2)), secs(62));
    assert_eq!(l.lookup(id(1)).unwrap().ttl(), secs(60));
    assert_eq!(lease_ids(&l), [1, 2]);
}

#[test]
fn a_checkpoint_lasts_until_a_renew_across_promotes() {
    let (_clock, l) = lessor();
    l.grant(id(1), secs(60)).unwrap();
    l.checkpoint(id(1), ms(4500)).unwrap();
    l.demote();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), ms(4500));
    l.demote();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), ms(4500));
    l.renew(id(1)).unwrap();
    l.demote();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), secs(60));
}

#[test]
fn a_later_checkpoint_replaces_an_earlier_one() {
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    l.grant(id(1), secs(60)).unwrap();
    l.checkpoint(id(1), secs(30)).unwrap();
    l.checkpoint(id(1), secs(12)).unwrap();
    l.promote(Duration::ZERO);
    assert_eq!(left(&l, id(1)), secs(12));
}

#[test]
fn checkpoint_of_an_unknown_lease_is_lease_not_found() {
    let (_clock, l) = lessor();
    let err = l.checkpoint(id(4), secs(1)).unwrap_err();
    assert!(
        matches!(err, Error::LeaseNotFound { id } if id == LeaseId::new(4)),
        "{err:?}"
    );
}

#[test]
fn grants_while_not_primary_then_promote() {
    let (clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    for n in 1..=5 {
        l.grant(id(n), secs(n as u64 * 10)).unwrap();
        clock.advance(secs(3));
    }
    l.promote(secs(1));
    for n in 1..=5 {
        assert_eq!(left(&l, id(n)), secs(n as u64 * 10 + 1));
    }
    assert_eq!(lease_ids(&l), [1, 2, 3, 4, 5]);
}

/// Absolute expiry in ms of every lease, measured at the promote instant (clock not moved).
fn expiries_ms(l: &Lessor) -> Vec<u64> {
    let mut all: Vec<u64> = l
        .leases()
        .iter()
        .map(|lease| match lease.remaining() {
            Remaining::Left(d) => u64::try_from(d.as_millis()).unwrap(),
            other => panic!("lease {}: {other:?} after promote", lease.id()),
        })
        .collect();
    all.sort_unstable();
    all
}

/// The most expiries in any window [t, t + 1 s), over every start t.
fn busiest_second(sorted_ms: &[u64]) -> usize {
    (0..sorted_ms.len())
        .map(|i| {
            sorted_ms[i..]
                .iter()
                .take_while(|&&t| t < sorted_ms[i] + 1000)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn spread_lessor(revoke_rate: u32) -> Lessor {
    let (_clock, b) = builder();
    b.revoke_rate(revoke_rate)
        .primary(false)
        .min_ttl(ms(1))
        .build()
        .unwrap()
}

#[test]
fn promote_spreads_piled_up_expiries() {
    let l = spread_lessor(10);
    for n in 1..=100 {
        l.grant(id(n), secs(10)).unwrap();
    }
    for n in 101..=200 {
        l.grant(id(n), secs(11)).unwrap();
    }
    l.promote(Duration::ZERO);

    let expiries = expiries_ms(&l);
    assert_eq!(expiries.len(), 200);
    let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for &t in &expiries {
        *per_second.entry(t / 1000).or_default() += 1;
    }
    assert!(
        expiries[0] >= 10_000,
        "a lease expires at {} ms",
        expiries[0]
    );
    for s in 10..=29 {
        let n = per_second.get(&s).copied().unwrap_or(0);
        assert!(
            (5..=10).contains(&n),
            "{n} expiries in second {s}: {per_second:?}"
        );
    }
    for (s, n) in &per_second {
        assert!(*n <= 10, "{n} expiries in second {s}: {per_second:?}");
    }
    assert!(busiest_second(&expiries) <= 10, "{per_second:?}");
    assert_eq!(per_second.values().sum::<usize>(), 200);
    // Each lease is still there, with its granted TTL.
    for n in 1..=200 {
        let ttl = l.lookup(id(n)).unwrap().ttl();
        assert_eq!(ttl, if n <= 100 { secs(10) } else { secs(11) });
    }
}

#[test]
fn promote_spreading_keeps_every_second_to_three_quarters_of_the_rate() {
    let l = spread_lessor(10);
    for n in 1..=100 {
        l.grant(id(n), secs(10)).unwrap();
    }
    for n in 101..=200 {
        l.grant(id(n), secs(11)).unwrap();
    }
    l.promote(Duration::ZERO);
    let expiries = expiries_ms(&l);
    // target = 3 * 10 / 4 = 7 a second.
    assert!(
        busiest_second(&expiries) <= 7,
        "busiest second has {}",
        busiest_second(&expiries)
    );
    // Nothing is pushed further than it must be: 200 leases at 7 a second from 10 s.
    let last = *expiries.last().unwrap();
    assert!((38_000..39_000).contains(&last), "last expiry at {last} ms");
}

#[test]
fn spreading_pushes_the_kth_lease_past_the_target_to_base_plus_k_over_target() {
    // Exactly revoke_rate leases: spreading applies. Target 7: leases 8..=10 move to
    // 10 s + k/7 s.
    let l = spread_lessor(10);
    for n in 1..=10 {
        l.grant(id(n), secs(10)).unwrap();
    }
    l.promote(Duration::ZERO);
    let expiries = expiries_ms(&l);
    assert_eq!(&expiries[..7], &[10_000; 7]);
    for (k, &t) in (8u64..=10).zip(&expiries[7..]) {
        let want = 10_000.0 + 1000.0 * k as f64 / 7.0;
        assert!(
            (t as f64 - want).abs() <= 1.0,
            "lease {k}: {t} ms, want {want}"
        );
    }
    // Ties are broken in an unspecified order (etcd's sort is unstable too): any seven of
    // the ten keep their deadline.
    let kept = (1..=10).filter(|&n| left(&l, id(n)) == secs(10)).count();
    assert_eq!(kept, 7);
}

#[test]
fn spreading_counts_the_extend() {
    let l = spread_lessor(10);
    for n in 1..=10 {
        l.grant(id(n), secs(10)).unwrap();
    }
    l.promote(secs(5));
    let expiries = expiries_ms(&l);
    assert_eq!(&expiries[..7], &[15_000; 7]);
    assert!(expiries[7..].iter().all(|&t| t > 15_000 && t < 16_500));
}

#[test]
fn fewer_leases_than_the_revoke_rate_are_not_spread() {
    let l = spread_lessor(10);
    for n in 1..=9 {
        l.grant(id(n), secs(10)).unwrap();
    }
    l.promote(Duration::ZERO);
    assert_eq!(expiries_ms(&l), [10_000; 9]);

    // The default rate (1000/s) with 100 leases: nothing moves either.
    let (_clock, b) = builder();
    let l = b.primary(false).build().unwrap();
    for n in 1..=100 {
        l.grant(id(n), secs(10)).unwrap();
    }
    l.promote(Duration::ZERO);
    assert_eq!(expiries_ms(&l), vec![10_000; 100]);
}

#[test]
fn leases_spread_apart_already_are_left_alone() {
    let l = spread_lessor(4); // target 3 a second
    for n in 1..=12 {
        l.grant(id(n), secs(10 + 2 * ((n as u64 - 1) / 3))).unwrap();
    }
    l.promote(Duration::ZERO);
    let expiries = expiries_ms(&l);
    let want: Vec<u64> = (0..12).map(|i| 10_000 + 2000 * (i / 3)).collect();
    assert_eq!(expiries, want);
}
