//! Many threads on the same few leases and keys at once. These are correctness tests, not
//! benchmarks: no timing asserts, and every thread's random choices come from a seeded
//! xorshift so a failure can be replayed.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lessor::{Error, LeaseId, Lessor, Remaining};

use crate::support::{assert_consistent, builder, id, secs, CountingDeleter};

/// A tiny seeded xorshift64 generator (no extra crates).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TTL: Duration = Duration::from_secs(60);

fn ids() -> Vec<LeaseId> {
    [1, -1, 2, -2, 3, i64::MAX, i64::MIN, 42]
        .into_iter()
        .map(id)
        .collect()
}

fn keys(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("key/{i:02}").into_bytes()).collect()
}

/// What one thread saw succeed.
#[derive(Debug, Default)]
struct Tally {
    grants: usize,
    revokes: usize,
    ops: usize,
}

/// One thread of random grant/renew/revoke (renews and revokes alone and in batches)/attach/detach/checkpoint/lookup on shared ids and
/// keys. Every answer must be one that the contract allows for some interleaving.
fn random_ops(l: &Lessor, ids: &[LeaseId], keys: &[Vec<u8>], seed: u64, ops: usize) -> Tally {
    let mut rng = XorShift::new(seed);
    let mut tally = Tally::default();
    for _ in 0..ops {
        let lease = ids[rng.below(ids.len())];
        let picked: Vec<&Vec<u8>> = (0..1 + rng.below(3))
            .map(|_| &keys[rng.below(keys.len())])
            .collect();
        match rng.below(100) {
            0..=14 => match l.grant(lease, TTL) {
                Ok(g) => {
                    assert_eq!(g.ttl(), TTL);
                    tally.grants += 1;
                }
                Err(Error::LeaseExists { id }) => assert_eq!(id, lease),
                Err(e) => panic!("grant {lease}: {e:?}"),
            },
            15..=34 => match l.renew(lease) {
                Ok(ttl) => assert_eq!(ttl, TTL),
                Err(Error::LeaseNotFound { id }) => assert_eq!(id, lease),
                Err(e) => panic!("renew {lease}: {e:?}"),
            },
            35..=39 => {
                // A batch of up to four, `lease` perhaps twice.
                let batch: Vec<LeaseId> = std::iter::once(lease)
                    .chain((0..rng.below(4)).map(|_| ids[rng.below(ids.len())]))
                    .collect();
                let done = l.renew_many(&batch).expect("a running primary");
                assert_eq!(done.len(), batch.len());
                for (lease, r) in batch.iter().zip(done) {
                    match r {
                        Ok(ttl) => assert_eq!(ttl, TTL),
                        Err(Error::LeaseNotFound { id }) => assert_eq!(id, *lease),
                        Err(e) => panic!("renew_many {lease}: {e:?}"),
                    }
                }
            }
            40..=45 => match l.revoke(lease) {
                Ok(()) => tally.revokes += 1,
                Err(Error::LeaseNotFound { .. }) => {}
                Err(e) => panic!("revoke {lease}: {e:?}"),
            },
            46..=51 => {
                // A batch of up to four, `lease` perhaps twice.
                let batch: Vec<LeaseId> = std::iter::once(lease)
                    .chain((0..rng.below(4)).map(|_| ids[rng.below(ids.len())]))
                    .collect();
                let done = l.revoke_many(&batch).expect("a running lessor");
                assert_eq!(done.len(), batch.len());
                for (lease, r) in batch.iter().zip(done) {
                    match r {
                        Ok(()) => tally.revokes += 1,
                        Err(Error::LeaseNotFound { id }) => assert_eq!(id, *lease),
                        Err(e) => panic!("revoke_many {lease}: {e:?}"),
                    }
                }
            }
            52..=76 => match l.attach(lease, picked.iter().copied()) {
                Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                Err(e) => panic!("attach {lease}: {e:?}"),
            },
            77..=89 => match l.detach(lease, picked.iter().copied()) {
                Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                Err(e) => panic!("detach {lease}: {e:?}"),
            },
            90..=91 => match l.checkpoint(lease, secs(30)) {
                Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                Err(e) => panic!("checkpoint {lease}: {e:?}"),
            },
            92..=96 => {
                if let Some(found) = l.lookup(lease) {
                    assert_eq!(found.id(), lease);
                    assert_eq!(found.ttl(), TTL);
                    assert!(matches!(found.remaining(), Remaining::Left(d) if d <= TTL));
                    assert!(found.keys().windows(2).all(|w| w[0] < w[1]));
                    assert!(found.keys().iter().all(|k| keys.contains(k)));
                }
            }
            _ => {
                let owner = l.get_lease(picked[0]);
                assert!(owner.is_none() || ids.contains(&owner), "{owner:?}");
            }
        }
        tally.ops += 1;
    }
    tally
}

#[test]
fn random_ops_on_shared_ids_and_keys_keep_the_maps_consistent() {
    const THREADS: u64 = 4;
    const OPS: usize = 20_000;
    let ids = ids();
    let keys = keys(16);
    let deleter = CountingDeleter::default();
    let (_clock, b) = builder();
    let l = b.shards(4).range_deleter(deleter.clone()).build().unwrap();

    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (l, ids, keys) = (&l, &ids, &keys);
                s.spawn(move || random_ops(l, ids, keys, 0xC0FFEE + t, OPS))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let grants: usize = tallies.iter().map(|t| t.grants).sum();
    let revokes: usize = tallies.iter().map(|t| t.revokes).sum();
    assert_eq!(tallies.iter().map(|t| t.ops).sum::<usize>(), 4 * OPS);
    assert!(
        revokes > 0 && grants > 0,
        "the mix exercised nothing: {tallies:?}"
    );

    // Nothing expires (the clock never moved), so leases come only from grants and go only
    // through revokes.
    let leases = l.leases();
    assert_eq!(grants - revokes, l.len(), "{tallies:?}");
    assert_eq!(l.len(), leases.len());
    let distinct: BTreeSet<LeaseId> = leases.iter().map(|x| x.id()).collect();
    assert_eq!(distinct.len(), leases.len(), "a lease is counted twice");
    assert!(distinct.iter().all(|i| ids.contains(i)));
    for lease in &leases {
        assert_eq!(l.lookup(lease.id()).as_ref(), Some(lease));
    }
    // One transaction per successful revoke, each ended.
    assert_eq!(deleter.begins.load(Ordering::SeqCst), revokes);
    assert_eq!(deleter.ends.load(Ordering::SeqCst), revokes);
    assert_consistent(&l, &keys);
}

#[test]
fn keys_moving_between_two_leases_while_they_are_revoked_and_regranted() {
    const ROUNDS: usize = 20_000;
    let (a, b) = (id(1), id(2));
    let keys = keys(8);
    let deleter = CountingDeleter::default();
    let (_clock, builder) = builder();
    let l = builder.range_deleter(deleter.clone()).build().unwrap();
    l.grant(a, TTL).unwrap();
    l.grant(b, TTL).unwrap();

    let attacher = |lease: LeaseId, reverse: bool| {
        let (l, keys) = (&l, &keys);
        move || {
            for i in 0..ROUNDS {
                let mut batch: Vec<&Vec<u8>> = keys.iter().collect();
                batch.rotate_left(i % keys.len());
                if reverse {
                    batch.reverse();
                }
                match l.attach(lease, batch) {
                    Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                    Err(e) => panic!("attach {lease}: {e:?}"),
                }
            }
        }
    };
    let revokes = std::thread::scope(|s| {
        s.spawn(attacher(a, false));
        s.spawn(attacher(b, true));
        let churn = s.spawn(|| {
            let mut revokes = 0;
            for i in 0..ROUNDS {
                for lease in if i % 2 == 0 { [a, b] } else { [b, a] } {
                    match l.revoke(lease) {
                        Ok(()) => revokes += 1,
                        Err(Error::LeaseNotFound { .. }) => {}
                        Err(e) => panic!("revoke {lease}: {e:?}"),
                    }
                    match l.grant(lease, TTL) {
                        Ok(_) | Err(Error::LeaseExists { .. }) => {}
                        Err(e) => panic!("grant {lease}: {e:?}"),
                    }
                }
            }
            revokes
        });
        churn.join().unwrap()
    });

    assert_eq!(
        revokes,
        2 * ROUNDS,
        "only the churn thread revokes or grants"
    );
    assert_eq!(l.len(), 2);
    assert_eq!(deleter.ends.load(Ordering::SeqCst), revokes);
    for key in &keys {
        let owner = l.get_lease(key);
        assert!(owner.is_none() || owner == a || owner == b, "{owner:?}");
    }
    assert_consistent(&l, &keys);
}

#[test]
fn keys_cycling_through_three_leases_do_not_deadlock() {
    const ROUNDS: usize = 10_000;
    let leases = [id(10), id(-20), id(i64::MAX)];
    let keys = keys(12);
    let (_clock, b) = builder();
    let l = b.shards(2).build().unwrap();
    for &lease in &leases {
        l.grant(lease, TTL).unwrap();
    }
    std::thread::scope(|s| {
        for (t, &lease) in leases.iter().enumerate() {
            let (l, keys) = (&l, &keys);
            s.spawn(move || {
                let mut rng = XorShift::new(7 + t as u64);
                for _ in 0..ROUNDS {
                    let mut batch: Vec<&Vec<u8>> = keys.iter().collect();
                    for i in (1..batch.len()).rev() {
                        batch.swap(i, rng.below(i + 1));
                    }
                    if rng.below(10) == 0 {
                        l.detach(lease, &batch[..3]).unwrap();
                    } else {
                        l.attach(lease, batch).unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(l.len(), 3);
    let total: usize = leases
        .iter()
        .map(|&x| l.lookup(x).unwrap().keys().len())
        .sum();
    let owned = keys.iter().filter(|k| !l.get_lease(k).is_none()).count();
    assert_eq!(total, owned);
    assert_consistent(&l, &keys);
}

#[test]
fn racing_grants_of_one_id_succeed_exactly_once() {
    const IDS: i64 = 500;
    let (_clock, b) = builder();
    let l = b.build().unwrap();
    let wins: Vec<Vec<i64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let l = &l;
                s.spawn(move || {
                    (1..=IDS)
                        .filter(|&n| match l.grant(id(n), TTL) {
                            Ok(_) => true,
                            Err(Error::LeaseExists { .. }) => false,
                            Err(e) => panic!("grant {n}: {e:?}"),
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = wins.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=IDS).collect::<Vec<_>>());
    assert_eq!(l.len(), IDS as usize);
}

#[test]
fn racing_revokes_of_one_lease_delete_its_keys_exactly_once() {
    const IDS: i64 = 300;
    let deleter = CountingDeleter::default();
    let (_clock, b) = builder();
    let l = b.range_deleter(deleter.clone()).build().unwrap();
    for n in 1..=IDS {
        l.grant(id(n), TTL).unwrap();
        l.attach(id(n), [format!("a/{n}"), format!("b/{n}")])
            .unwrap();
    }
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6u64)
            .map(|t| {
                let l = &l;
                s.spawn(move || {
                    let mut order: Vec<i64> = (1..=IDS).collect();
                    let mut rng = XorShift::new(t + 100);
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.below(i + 1));
                    }
                    order
                        .into_iter()
                        .filter(|&n| match l.revoke(id(n)) {
                            Ok(()) => true,
                            Err(Error::LeaseNotFound { .. }) => false,
                            Err(e) => panic!("revoke {n}: {e:?}"),
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, IDS as usize);
    assert!(l.is_empty());
    assert_eq!(deleter.begins.load(Ordering::SeqCst), IDS as usize);
    assert_eq!(deleter.deletes.load(Ordering::SeqCst), 2 * IDS as usize);
    assert_eq!(deleter.ends.load(Ordering::SeqCst), IDS as usize);
    assert!(l.get_lease("a/1").is_none());
}

#[test]
fn a_grant_racing_a_promote_is_never_left_forever() {
    const IDS: i64 = 4_000;
    let (_clock, b) = builder();
    let l = b.primary(false).revoke_rate(u32::MAX).build().unwrap();
    let promoted = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 1..=IDS {
                l.grant(id(n), TTL).unwrap();
            }
        });
        s.spawn(|| {
            while l.len() < (IDS / 2) as usize {
                std::thread::yield_now();
            }
            l.promote(Duration::ZERO);
            promoted.store(true, Ordering::SeqCst);
        });
    });
    assert!(promoted.load(Ordering::SeqCst));
    for lease in l.leases() {
        assert_eq!(
            lease.remaining(),
            Remaining::Left(TTL),
            "lease {}",
            lease.id()
        );
    }
}

#[test]
fn a_grant_racing_a_demote_never_keeps_a_deadline() {
    const IDS: i64 = 4_000;
    let (_clock, b) = builder();
    let l = b.build().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            for n in 1..=IDS {
                l.grant(id(n), TTL).unwrap();
            }
        });
        s.spawn(|| {
            while l.len() < (IDS / 2) as usize {
                std::thread::yield_now();
            }
            l.demote();
        });
    });
    assert_eq!(l.len(), IDS as usize);
    for lease in l.leases() {
        assert_eq!(
            lease.remaining(),
            Remaining::Forever,
            "lease {}",
            lease.id()
        );
    }
    assert!(matches!(l.renew(id(1)), Err(Error::NotPrimary)));
}
