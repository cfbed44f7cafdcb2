//! Expiry: the wheel, the worker step and the expired channel, driven by a manual clock
//! through `run_expiry_once` (the expiry thread is off, nothing sleeps).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lessor::{
    ExpiryMode, Lease, LeaseId, Lessor, LessorBuilder, ManualClock, Remaining, TxnDelete,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A lessor without the expiry thread, on a manual clock, minimum TTL 1 ms, tick 10 ms.
fn manual(tweak: impl FnOnce(LessorBuilder) -> LessorBuilder) -> (ManualClock, Lessor) {
    let clock = ManualClock::new();
    let b = Lessor::builder()
        .clock(clock.clone())
        .min_ttl(ms(1))
        .tick(ms(10))
        .expiry_thread(false);
    (clock, tweak(b).build().expect("valid options"))
}

/// Every lease delivered so far, in delivery order.
fn drain(l: &Lessor) -> Vec<Lease> {
    l.expired_leases().try_iter().flatten().collect()
}

fn ids(batch: &[Lease]) -> Vec<i64> {
    batch.iter().map(|l| l.id().get()).collect()
}

#[test]
fn delivered_on_first_step_at_or_after_deadline_never_before() {
    for ttl in [1000u64, 1001, 1005, 1009, 1010, 7] {
        let (clock, l) = manual(|b| b);
        l.grant(LeaseId::new(1), ms(ttl)).unwrap();
        let mut now = 0;
        let delivered_at = loop {
            l.run_expiry_once().unwrap();
            if !drain(&l).is_empty() {
                break now;
            }
            assert!(now <= ttl + 20, "ttl {ttl}: not delivered by {now} ms");
            clock.advance(ms(1));
            now += 1;
        };
        assert!(
            delivered_at >= ttl,
            "ttl {ttl}: delivered early at {delivered_at} ms"
        );
        assert!(
            delivered_at < ttl + 10,
            "ttl {ttl}: delivered {delivered_at} ms, over a tick late"
        );
    }
}

#[test]
fn a_renewed_lease_is_not_delivered_at_its_old_deadline() {
    let (clock, l) = manual(|b| b);
    let id = LeaseId::new(1);
    l.grant(id, ms(1000)).unwrap();
    l.run_expiry_once().unwrap();
    clock.advance(ms(900));
    l.renew(id).unwrap(); // new deadline: 1900 ms
    clock.advance(ms(150)); // 1050 ms: past the old deadline
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    clock.advance(ms(840)); // 1890 ms
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    clock.advance(ms(10)); // 1900 ms
    l.run_expiry_once().unwrap();
    let got = drain(&l);
    assert_eq!(ids(&got), [1]);
    assert_eq!(got[0].remaining(), Remaining::Overdue(Duration::ZERO));
}

#[test]
fn a_revoked_lease_is_never_delivered_and_a_regrant_is_tracked_afresh() {
    let (clock, l) = manual(|b| b);
    let id = LeaseId::new(9);
    l.grant(id, ms(100)).unwrap();
    l.run_expiry_once().unwrap();
    l.revoke(id).unwrap();
    l.grant(id, ms(500)).unwrap(); // same id, later deadline
    clock.advance(ms(200));
    l.run_expiry_once().unwrap();
    assert!(
        drain(&l).is_empty(),
        "the first grant's filing must not expire the second"
    );
    clock.advance(ms(300));
    l.run_expiry_once().unwrap();
    assert_eq!(ids(&drain(&l)), [9]);
    assert_eq!(
        l.expiry_tracked(),
        1,
        "only the redelivery of the second grant"
    );
}

#[test]
fn notify_mode_redelivers_only_after_the_retry_interval() {
    let (clock, l) = manual(|b| b.retry_interval(Duration::from_secs(3)));
    let id = LeaseId::new(1);
    l.grant(id, ms(100)).unwrap();
    clock.advance(ms(100));
    l.run_expiry_once().unwrap();
    assert_eq!(ids(&drain(&l)), [1]);
    assert!(matches!(
        l.renew(id),
        Err(lessor::Error::LeaseExpired { .. })
    ));
    for _ in 0..299 {
        clock.advance(ms(10));
        l.run_expiry_once().unwrap();
        assert!(drain(&l).is_empty(), "redelivered before 3 s");
    }
    clock.advance(ms(10));
    l.run_expiry_once().unwrap();
    assert_eq!(ids(&drain(&l)), [1], "redelivered at 3 s");
    l.revoke(id).unwrap();
    clock.advance(Duration::from_secs(10));
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty(), "a revoked lease is not redelivered");
    assert_eq!(l.expiry_tracked(), 0);
}

struct Recorder(Arc<Mutex<Vec<String>>>);

impl TxnDelete for Recorder {
    fn delete_range(&mut self, key: &[u8], _end: Option<&[u8]>) -> (i64, i64) {
        self.0
            .lock()
            .unwrap()
            .push(format!("del {}", String::from_utf8_lossy(key)));
        (1, 0)
    }
    fn end(self: Box<Self>) {
        self.0.lock().unwrap().push("end".into());
    }
}

#[test]
fn revoke_mode_revokes_deletes_keys_then_delivers_once() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let (clock, l) = manual(|b| {
        b.expiry_mode(ExpiryMode::Revoke)
            .range_deleter(move || Box::new(Recorder(sink.clone())) as Box<dyn TxnDelete>)
    });
    let id = LeaseId::new(4);
    l.grant(id, ms(50)).unwrap();
    l.attach(id, ["b", "a"]).unwrap();
    clock.advance(ms(50));
    l.run_expiry_once().unwrap();
    let got = drain(&l);
    assert_eq!(ids(&got), [4]);
    assert_eq!(got[0].keys(), &[b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(*log.lock().unwrap(), ["del a", "del b", "end"]);
    assert!(l.lookup(id).is_none());
    assert!(l.get_lease("a").is_none());
    clock.advance(Duration::from_secs(10));
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    assert_eq!(l.expiry_tracked(), 0);
}

/// A tiny deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_leases_renews_and_revokes_match_a_model() {
    const LEASES: i64 = 100_000;
    const TICK: u64 = 10;
    const RETRY: u64 = 3000;
    let (clock, l) = manual(|b| {
        b.revoke_rate(u32::MAX)
            .retry_interval(ms(RETRY))
            .expiry_channel(1 << 20, 4096)
    });
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // The model: every live lease not yet delivered, with its deadline (ms); the TTL of every
    // lease that exists; and when each delivered, unrevoked lease was last delivered.
    let mut pending: BTreeMap<i64, u64> = BTreeMap::new();
    let mut ttl_of: HashMap<i64, u64> = HashMap::new();
    let mut delivered_at: HashMap<i64, u64> = HashMap::new();
    for i in 1..=LEASES {
        let id = if i % 2 == 0 { -i } else { i }; // negative ids too
        let ttl = 1 + rng.below(20_000);
        l.grant(LeaseId::new(id), ms(ttl)).unwrap();
        pending.insert(id, ttl);
        ttl_of.insert(id, ttl);
    }
    let all: Vec<i64> = pending.keys().copied().collect();
    let mut first_deliveries = 0usize;
    let mut redeliveries = 0usize;
    let mut now = 0u64;
    while now <= 30_000 {
        for _ in 0..200 {
            let id = all[rng.below(all.len() as u64) as usize];
            let lease = LeaseId::new(id);
            if rng.below(10) == 0 {
                let revoked = l.revoke(lease).is_ok();
                assert_eq!(revoked, ttl_of.contains_key(&id), "revoke of {id}");
                pending.remove(&id);
                ttl_of.remove(&id);
                delivered_at.remove(&id);
                continue;
            }
            match l.renew(lease) {
                Ok(_) => {
                    let d = pending
                        .get_mut(&id)
                        .expect("renewed a lease the model lacks");
                    assert!(*d > now, "{id} renewed past its deadline");
                    *d = now + ttl_of[&id];
                }
                Err(_) => assert!(
                    pending.get(&id).is_none_or(|d| *d <= now),
                    "renew of live lease {id} failed"
                ),
            }
        }
        let step = 1 + rng.below(3 * TICK);
        now += step;
        clock.advance(ms(step));
        l.run_expiry_once().unwrap();
        let mut last_deadline = 0u64;
        for lease in drain(&l) {
            let id = lease.id().get();
            if let Some(deadline) = pending.remove(&id) {
                assert!(
                    deadline <= now,
                    "{id} delivered before its deadline {deadline} (now {now})"
                );
                assert!(
                    deadline + TICK >= last_deadline,
                    "{id} (deadline {deadline}) out of order after {last_deadline}"
                );
                last_deadline = last_deadline.max(deadline);
                assert_eq!(lease.remaining(), Remaining::Overdue(ms(now - deadline)));
                first_deliveries += 1;
            } else {
                let last = delivered_at
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id} delivered but neither pending nor expired"));
                let since = now - last;
                assert!(
                    (RETRY..RETRY + 3 * TICK).contains(&since),
                    "{id} redelivered {since} ms after the last delivery"
                );
                redeliveries += 1;
            }
            // An owner revokes half of what it is told about; the rest come back.
            if rng.below(2) == 0 {
                l.revoke(lease.id()).unwrap();
                ttl_of.remove(&id);
                delivered_at.remove(&id);
            } else {
                delivered_at.insert(id, now);
            }
        }
        let overdue = pending
            .values()
            .filter(|d| d.div_ceil(TICK) * TICK <= now)
            .count();
        assert_eq!(
            overdue, 0,
            "{overdue} leases whose tick has come not delivered at {now}"
        );
        let late = delivered_at
            .values()
            .filter(|t| now - **t >= RETRY + TICK)
            .count();
        assert_eq!(late, 0, "{late} expired leases not redelivered at {now}");
    }
    assert!(
        first_deliveries > 50_000,
        "only {first_deliveries} expiries"
    );
    assert!(redeliveries > 1_000, "only {redeliveries} redeliveries");
    assert_eq!(l.len(), ttl_of.len());
    // Revoke is lazy: a revoked lease's filing goes when its slot fires. Once every slot of
    // the run has fired, the worker tracks each live lease exactly once.
    clock.advance(ms(25_000));
    l.run_expiry_once().unwrap();
    assert_eq!(l.expiry_tracked(), l.len(), "each live lease tracked once");
}

/// A burst large enough for the worker's table-ordered, chunked path: 100k leases share a
/// deadline, a tenth are renewed, a tenth revoked and a tenth revoked and granted again; one
/// step must deliver exactly the rest, once each, in both modes and with a shard count that
/// takes the worker's other ordering path.
#[test]
fn a_burst_delivers_exactly_the_expired_leases_once_in_both_modes() {
    const LEASES: i64 = 100_000;
    // 8 shards: the one-pass in-place sort; 8192: too many shard bits for it, the fallback.
    for (mode, shards) in [
        (ExpiryMode::Notify, 8),
        (ExpiryMode::Revoke, 8),
        (ExpiryMode::Notify, 8192),
    ] {
        let (clock, l) = manual(|b| {
            b.expiry_mode(mode)
                .shards(shards)
                .revoke_rate(u32::MAX)
                .expiry_channel(1 << 10, 1000)
        });
        for i in 1..=LEASES {
            l.grant(LeaseId::new(i), ms(1000)).unwrap();
            if i % 100 == 0 {
                l.attach(LeaseId::new(i), [format!("k{i}")]).unwrap();
            }
        }
        l.run_expiry_once().unwrap();
        clock.advance(ms(500));
        let mut expect = HashSet::new();
        for i in 1..=LEASES {
            let id = LeaseId::new(i);
            match i % 10 {
                0 => {
                    l.renew(id).unwrap();
                }
                1 => {
                    l.revoke(id).unwrap();
                }
                2 => {
                    l.revoke(id).unwrap();
                    l.grant(id, ms(1000)).unwrap();
                }
                _ => {
                    expect.insert(i);
                }
            }
        }
        clock.advance(ms(500));
        l.run_expiry_once().unwrap();
        let got = drain(&l);
        let ids: HashSet<i64> = ids(&got).into_iter().collect();
        assert_eq!(got.len(), ids.len(), "{mode:?}: a lease delivered twice");
        assert_eq!(ids, expect, "{mode:?}: the wrong leases delivered");
        for lease in &got {
            assert_eq!(lease.remaining(), Remaining::Overdue(Duration::ZERO));
            let i = lease.id().get();
            let keys: Vec<Vec<u8>> = if i % 100 == 0 {
                vec![format!("k{i}").into_bytes()]
            } else {
                Vec::new()
            };
            assert_eq!(lease.keys(), keys.as_slice(), "{mode:?}: keys of {i}");
        }
        // The renewed and the re-granted leases are still tracked, and come due later.
        let left = (LEASES / 10 * 2) as usize;
        match mode {
            ExpiryMode::Revoke => {
                assert_eq!(l.len(), left);
                assert_eq!(l.expiry_tracked(), left);
            }
            ExpiryMode::Notify => {
                assert_eq!(l.len(), left + expect.len());
                assert_eq!(l.expiry_tracked(), left + expect.len());
            }
        }
        clock.advance(ms(500));
        l.run_expiry_once().unwrap();
        let later: HashSet<i64> = ids_of(&drain(&l));
        let due: HashSet<i64> = (1..=LEASES).filter(|i| matches!(i % 10, 0 | 2)).collect();
        assert_eq!(later, due, "{mode:?}: the renewed and re-granted leases");
        // Owners revoke everything: past the retry interval nothing comes back, and the
        // worker, its burst-sized queues now empty, tracks nothing.
        for lease in l.leases() {
            l.revoke(lease.id()).unwrap();
        }
        clock.advance(Duration::from_secs(4));
        l.run_expiry_once().unwrap();
        assert!(drain(&l).is_empty(), "{mode:?}: delivered after revoke");
        assert_eq!(l.expiry_tracked(), 0, "{mode:?}");
    }
}

fn ids_of(batch: &[Lease]) -> HashSet<i64> {
    batch.iter().map(|l| l.id().get()).collect()
}

#[test]
fn a_consumer_that_stops_reading_loses_nothing() {
    let (clock, l) = manual(|b| b.expiry_channel(1, 10));
    for i in 1..=1000 {
        l.grant(LeaseId::new(i), ms(100)).unwrap();
    }
    clock.advance(ms(100));
    for _ in 0..50 {
        l.run_expiry_once().unwrap();
        clock.advance(ms(10));
    }
    // One batch in the channel, one kept by the worker.
    assert_eq!(l.expired_leases().len(), 1);
    // Delivered leases wait for redelivery; the rest are due: nothing dropped or duplicated.
    assert_eq!(l.expiry_tracked(), 1000);
    let mut seen = HashSet::new();
    for _ in 0..500 {
        for batch in l.expired_leases().try_iter() {
            for lease in batch {
                assert!(seen.insert(lease.id().get()), "delivered twice");
            }
        }
        l.run_expiry_once().unwrap();
    }
    assert_eq!(seen.len(), 1000);
}

#[test]
fn tracked_entries_stay_equal_to_live_leases_after_millions_of_renews() {
    let (clock, l) = manual(|b| b);
    for i in 1..=1000 {
        l.grant(LeaseId::new(i), Duration::from_secs(60)).unwrap();
    }
    l.run_expiry_once().unwrap();
    for round in 0..2000 {
        for i in 1..=1000 {
            l.renew(LeaseId::new(i)).unwrap();
        }
        if round % 100 == 0 {
            clock.advance(Duration::from_secs(30));
            l.run_expiry_once().unwrap();
            assert_eq!(l.expiry_tracked(), 1000);
        }
    }
    assert!(drain(&l).is_empty());
    assert_eq!(l.expiry_tracked(), 1000);
}

#[test]
fn nothing_is_delivered_while_not_primary_and_promote_rearms() {
    let (clock, l) = manual(|b| b);
    l.grant(LeaseId::new(1), ms(100)).unwrap();
    l.run_expiry_once().unwrap();
    l.demote();
    clock.advance(Duration::from_secs(10));
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    assert_eq!(l.expiry_tracked(), 0);
    l.grant(LeaseId::new(2), ms(100)).unwrap();
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    l.promote(ms(50));
    l.run_expiry_once().unwrap();
    assert_eq!(l.expiry_tracked(), 2);
    clock.advance(ms(149));
    l.run_expiry_once().unwrap();
    assert!(drain(&l).is_empty());
    clock.advance(ms(1));
    l.run_expiry_once().unwrap();
    let mut got = ids(&drain(&l));
    got.sort();
    assert_eq!(got, [1, 2]);
}

#[test]
fn the_rate_limit_caps_expiries_per_second() {
    let (clock, l) = manual(|b| b.expiry_rate_limit(Some(10)));
    for i in 1..=45 {
        l.grant(LeaseId::new(i), ms(100)).unwrap();
    }
    clock.advance(ms(100));
    let mut per_second = Vec::new();
    for _ in 0..5 {
        let mut n = 0;
        for _ in 0..100 {
            l.run_expiry_once().unwrap();
            for lease in drain(&l) {
                l.revoke(lease.id()).unwrap(); // as an owner would: no redelivery
                n += 1;
            }
            clock.advance(ms(10));
        }
        per_second.push(n);
    }
    // A full bucket of 10 at once, then 10 a second.
    assert_eq!(per_second, [19, 10, 10, 6, 0]);
}

#[test]
fn the_expiry_thread_delivers_on_the_real_clock_and_stops() {
    let l = Lessor::builder()
        .min_ttl(ms(1))
        .tick(ms(1))
        .build()
        .unwrap();
    l.grant(LeaseId::new(1), ms(20)).unwrap();
    let batch = l
        .expired_leases()
        .recv_timeout(Duration::from_secs(60))
        .expect("the expiry thread delivers within a minute even on a loaded machine");
    assert_eq!(ids(&batch), [1]);
    l.stop();
    assert!(matches!(l.run_expiry_once(), Err(lessor::Error::Stopped)));
}
