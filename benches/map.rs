//! Lease-map benches: renew, grant, revoke and attach on the engine, each timed next to a floor
//! (a bare `hashbrown::HashMap` doing the same lookup or insert), and the choice of sharded map.
//!
//! # Conventions
//!
//! - Every group: 10 samples, 1 s warm-up, 2 s measurement. Big maps are built once per group
//!   (per size), never per iteration.
//! - Throughput is in operations. In a multi-thread bench one criterion iteration is one
//!   operation *on every thread* (`Throughput::Elements(T)`), so criterion's elem/s is the total
//!   across threads. Threads start together behind a barrier; the time of a batch is that of
//!   the slowest thread (thread spawn and join are not timed).
//! - Ids are `1..=N`, visited in an order shuffled once (xorshift64, fixed seed) and cycled; with
//!   T threads each thread owns one contiguous slice of that order.
//! - Every bench counts the operations that succeeded and asserts after the timing that all did,
//!   so an error path (expired, not found) is never what gets measured.
//! - Manual timing reads `SystemClock::now()`: `Instant::now` belongs to `src/clock.rs` alone.
//! - Renew runs at 10^3 to 10^7 leases; `LESSOR_BENCH_FULL=1` adds 10^7 to `map/grant` (it
//!   grows to 2 x 10^7). Under `cargo bench -- --test` every group runs once at its smallest
//!   size (`common.rs`).

use std::hash::{BuildHasher, Hash};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use crossbeam_utils::CachePadded;
use dashmap::DashMap;
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use lessor::{LeaseId, Lessor};

use crate::common::{
    cores, fixed_size, id_of, now, run_threads, shuffled_ids, sizes, thread_counts,
};

/// Lease counts for renew, 10^3 to 10^7 (about 1.5 GB at 10^7, lessor and floor).
const RENEW_SIZES: [usize; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/// Lease counts for grant; `LESSOR_BENCH_FULL=1` adds [`GRANT_FULL`].
const GRANT_SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// Grant at 10^7 grows the lessor to 2 x 10^7 leases and rebuilds it: full runs only.
const GRANT_FULL: [usize; 1] = [10_000_000];
/// Lease counts for revoke.
const REVOKE_SIZES: [usize; 2] = [100_000, 1_000_000];
/// Ids per `renew_many` call in `map/renew`'s `lessor_many`.
const RENEW_BATCH: usize = 256;
/// Lease counts for `map/renew_beside_grants`.
const BESIDE_SIZES: [usize; 2] = [100_000, 1_000_000];
/// Lease count for attach.
const ATTACH_SIZE: usize = 100_000;
/// Entry count for the sharded-map comparison.
const CHOICE_SIZE: usize = 1_000_000;
/// Fresh inserts per thread between two untimed clean-ups in `map/shard_choice`.
const INSERT_CHUNK: u64 = 100_000;
/// Every lease lives an hour: nothing expires during a run.
const TTL: Duration = Duration::from_secs(3600);

/// Registers every `map/*` group. `pub(crate)`, not `pub`: the bench crate exports nothing and
/// `unreachable_pub` is on.
pub(crate) fn register_benches(c: &mut Criterion) {
    bench_renew(c);
    bench_renew_beside_grants(c);
    bench_shard_choice(c);
    bench_grant(c);
    bench_revoke(c);
    bench_attach(c);
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Short groups: the whole `cargo bench` must fit in minutes on two cores.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
}

/// A primary lessor on the system clock holding the leases `1..=n`, TTL one hour.
fn lessor_with(n: usize) -> Lessor {
    let lessor = Lessor::builder()
        .min_ttl(Duration::from_millis(1))
        .build()
        .expect("valid config");
    for id in 1..=id_of(n) {
        lessor.grant(LeaseId::new(id), TTL).expect("fresh id");
    }
    lessor
}

/// The floor's map: the same ids, a `u64` each.
fn floor_map(ids: impl IntoIterator<Item = i64>) -> HashMap<i64, u64> {
    ids.into_iter().map(|id| (id, 0)).collect()
}

/// The floors' stand-in for renew's state-word update: a load, then one compare-and-swap to
/// `to`; whether it landed.
#[inline]
fn swap(word: &AtomicU64, to: u64) -> bool {
    let old = word.load(Ordering::Acquire);
    word.compare_exchange(old, black_box(to), Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

/// One per-thread floor of `map/renew`, named `name/{threads}t`: `build` makes each thread's
/// map over its ids (once, at the first sample) and `renew` does one lookup and update of `id`
/// (to the iteration number) and says whether it landed; `check` is the assertion that all did.
fn floor_bench<M: Send>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (name, check): (&str, &str),
    (n, threads): (usize, usize),
    order: &mut Option<Vec<i64>>,
    build: impl Fn(&[i64]) -> M,
    renew: impl Fn(&mut M, i64, u64) -> bool + Sync,
) {
    let per_iter = u64::try_from(threads).expect("thread count fits");
    let mut floors: Vec<(Cursor, M)> = Vec::new();
    group.bench_function(BenchmarkId::new(format!("{name}/{threads}t"), n), |b| {
        if floors.is_empty() {
            let order = order.get_or_insert_with(|| shuffled_ids(n));
            floors = Cursor::split(order, threads)
                .into_iter()
                .map(|cur| {
                    let map = build(&cur.ids);
                    (cur, map)
                })
                .collect();
        }
        b.iter_custom(|iters| {
            let (time, ok) = run_threads(&mut floors, iters, |(cur, map), iters| {
                let mut ok = 0;
                for i in 0..iters {
                    ok += u64::from(renew(map, cur.next(), i));
                }
                ok
            });
            assert_eq!(ok, iters * per_iter, "{check}");
            time
        });
    });
}

/// One lessor bench of `map/renew`, named `name/{threads}t`: the lessor of `n` leases and the
/// shuffled order are made at the first sample and shared with the group's other benches;
/// `renew` does `iters` renews on one thread's cursor and returns how many succeeded (all must).
fn lessor_bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    (n, threads): (usize, usize),
    (lessor, order): (&mut Option<Lessor>, &mut Option<Vec<i64>>),
    renew: impl Fn(&Lessor, &mut Cursor, u64) -> u64 + Sync,
) {
    let per_iter = u64::try_from(threads).expect("thread count fits");
    let mut cursors = Vec::new();
    group.bench_function(BenchmarkId::new(format!("{name}/{threads}t"), n), |b| {
        let lessor = &*lessor.get_or_insert_with(|| lessor_with(n));
        if cursors.is_empty() {
            let order = order.get_or_insert_with(|| shuffled_ids(n));
            cursors = Cursor::split(order, threads);
        }
        b.iter_custom(|iters| {
            let (time, ok) =
                run_threads(&mut cursors, iters, |cur, iters| renew(lessor, cur, iters));
            assert_eq!(ok, iters * per_iter, "every renew succeeds");
            time
        });
    });
}

/// `iters` renews, one at a time, of the ids `cur` walks; returns how many succeeded.
fn renew_each(lessor: &Lessor, cur: &mut Cursor, iters: u64) -> u64 {
    let mut ok = 0;
    for _ in 0..iters {
        let res = lessor.renew(LeaseId::new(cur.next()));
        ok += u64::from(black_box(res).is_ok());
    }
    ok
}

/// `floor_locked`'s map: lessor's entry size, behind a shared lock.
type LockedFloor = RwLock<HashMap<i64, (AtomicU64, u64, u64)>>;

/// A cyclic walk over one thread's ids (its own copy: the walk is the hot loop).
struct Cursor {
    ids: Vec<i64>,
    at: usize,
}

impl Cursor {
    /// One cursor per thread, each over its own contiguous slice of `order`.
    fn split(order: &[i64], threads: usize) -> Vec<Self> {
        order
            .chunks(order.len().div_ceil(threads))
            .map(|ids| Cursor {
                ids: ids.to_vec(),
                at: 0,
            })
            .collect()
    }

    #[inline]
    fn next(&mut self) -> i64 {
        let id = self.ids[self.at];
        self.at += 1;
        if self.at == self.ids.len() {
            self.at = 0;
        }
        id
    }
}

// ---------------------------------------------------------------------------------------------
// map/renew

/// Renew of random live leases, 1..T threads, against the floor: a bare hashbrown lookup and
/// store of a `u64` over the same ids. With T threads the floor has one map per thread holding
/// that thread's N/T ids (no sharing, no lock: the best any design could do). `floor_cas` is
/// the same with an `AtomicU64` value and a load plus compare-and-swap in place of the store:
/// the least a renew that never revives an expired lease can do. `floor_locked` adds lessor's
/// entry size (32 bytes) and a shared lock around the lookup. `lessor_many` renews the same
/// ids through `renew_many`, [`RENEW_BATCH`] a call.
fn bench_renew(c: &mut Criterion) {
    let mut group = c.benchmark_group("map/renew");
    configure(&mut group);
    for n in sizes(&RENEW_SIZES, &[]) {
        let mut lessor: Option<Lessor> = None;
        let mut order: Option<Vec<i64>> = None;
        for threads in thread_counts() {
            let per_iter = u64::try_from(threads).expect("thread count fits");
            group.throughput(Throughput::Elements(per_iter));

            lessor_bench(
                &mut group,
                "lessor",
                (n, threads),
                (&mut lessor, &mut order),
                renew_each,
            );
            // The same renews through `renew_many`, RENEW_BATCH ids a call.
            lessor_bench(
                &mut group,
                "lessor_many",
                (n, threads),
                (&mut lessor, &mut order),
                |lessor, cur, iters| {
                    let mut ok = 0;
                    let mut batch = Vec::with_capacity(RENEW_BATCH);
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(RENEW_BATCH as u64);
                        batch.clear();
                        batch.extend((0..k).map(|_| LeaseId::new(cur.next())));
                        let done = lessor.renew_many(&batch).expect("primary and running");
                        ok += done.iter().filter(|r| r.is_ok()).count() as u64;
                        left -= k;
                    }
                    ok
                },
            );

            floor_bench(
                &mut group,
                ("floor", "every key is present"),
                (n, threads),
                &mut order,
                |ids| floor_map(ids.iter().copied()),
                |map, id, i| map.get_mut(&id).map(|v| *v = black_box(i)).is_some(),
            );
            // The floor with renew's one compare-and-swap in place of the plain store: what
            // "a lookup plus one compare-and-swap" costs with nothing else around it.
            floor_bench(
                &mut group,
                ("floor_cas", "every key is present, every swap lands"),
                (n, threads),
                &mut order,
                |ids| -> HashMap<i64, AtomicU64> {
                    ids.iter().map(|&id| (id, AtomicU64::new(0))).collect()
                },
                |map, id, i| map.get(&id).is_some_and(|v| swap(v, i)),
            );
            // Closer to lessor's record: 32-byte entries (an atomic word and two more), looked
            // up under a shared lock, then the compare-and-swap.
            floor_bench(
                &mut group,
                ("floor_locked", "every key is present, every swap lands"),
                (n, threads),
                &mut order,
                |ids| -> LockedFloor {
                    RwLock::new(
                        ids.iter()
                            .map(|&id| (id, (AtomicU64::new(0), 0u64, 0u64)))
                            .collect(),
                    )
                },
                |map, id, i| {
                    let g = map.read().unwrap_or_else(PoisonError::into_inner);
                    g.get(&id).is_some_and(|(v, _, _)| swap(v, i))
                },
            );
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// map/renew_beside_grants

/// What `map/renew_beside_grants` keeps between samples: the lessor, the renewing thread's
/// cursor, and the thread granting and revoking beside it with the flag that stops it.
type Beside = (Arc<Lessor>, Cursor, Arc<AtomicBool>, JoinHandle<u64>);

/// Renew of random live leases from one thread while a second thread grants and revokes fresh
/// leases as fast as it can: a session server's mixed load. The grants' shard locks slow the
/// renews down; nothing else should (the grant counter, which every grant bumps, has a cache
/// line of its own). The churn thread starts at the first sample and runs until the bench
/// ends; afterwards it must have made at least one grant and revoke.
fn bench_renew_beside_grants(c: &mut Criterion) {
    let mut group = c.benchmark_group("map/renew_beside_grants");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for n in sizes(&BESIDE_SIZES, &[]) {
        let mut beside: Option<Beside> = None;
        group.bench_function(BenchmarkId::new("lessor/1t", n), |b| {
            let (lessor, cur, _, _) = beside.get_or_insert_with(|| {
                let lessor = Arc::new(lessor_with(n));
                let stop = Arc::new(AtomicBool::new(false));
                let churn = std::thread::spawn({
                    let (lessor, stop) = (Arc::clone(&lessor), Arc::clone(&stop));
                    move || churn(&lessor, id_of(n), &stop)
                });
                let cur = Cursor::split(&shuffled_ids(n), 1).remove(0);
                (lessor, cur, stop, churn)
            });
            b.iter_custom(|iters| {
                let (time, ok) = run_threads(std::slice::from_mut(cur), iters, |cur, iters| {
                    renew_each(lessor, cur, iters)
                });
                assert_eq!(ok, iters, "every renew succeeds");
                time
            });
        });
        if let Some((_, _, stop, churn)) = beside {
            stop.store(true, Ordering::Relaxed);
            let pairs = churn.join().expect("the churn thread does not panic");
            assert!(pairs > 0, "grants and revokes ran beside the renews");
        }
    }
    group.finish();
}

/// Grants and revokes fresh ids above `base`, one after the other, until `stop`; returns how
/// many grant-and-revoke pairs it made.
fn churn(lessor: &Lessor, base: i64, stop: &AtomicBool) -> u64 {
    let mut pairs = 0;
    let mut id = base;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        lessor.grant(LeaseId::new(id), TTL).expect("a fresh id");
        lessor.revoke(LeaseId::new(id)).expect("granted just now");
        pairs += 1;
    }
    pairs
}

// ---------------------------------------------------------------------------------------------
// map/shard_choice

/// One shard of [`ShardedHashbrown`].
type Shard<K, V> = CachePadded<RwLock<HashTable<(K, V)>>>;

/// The engine's design (src/shard.rs) over a plain `(K, V)`: a power-of-two array of
/// cache-padded `std::sync::RwLock`s around hashbrown `HashTable`s, one hasher for all, the
/// shard picked from bits 40..56 of the hash (independent of hashbrown's bucket and tag bits).
struct ShardedHashbrown<K, V> {
    shards: Box<[Shard<K, V>]>,
    mask: usize,
    hasher: DefaultHashBuilder,
}

impl<K: Hash + Eq, V> ShardedHashbrown<K, V> {
    /// `count` shards, a power of two.
    fn new(count: usize) -> Self {
        assert!(count.is_power_of_two());
        ShardedHashbrown {
            shards: (0..count)
                .map(|_| CachePadded::new(RwLock::new(HashTable::new())))
                .collect(),
            mask: count - 1,
            hasher: DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn locate(&self, key: &K) -> (u64, &Shard<K, V>) {
        let hash = self.hasher.hash_one(key);
        (hash, &self.shards[((hash >> 40) as usize) & self.mask])
    }

    /// Runs `f` on the value under the shard's shared lock.
    #[inline]
    fn read<R>(&self, key: &K, f: impl FnOnce(Option<&V>) -> R) -> R {
        let (hash, shard) = self.locate(key);
        let table = shard.read().unwrap_or_else(PoisonError::into_inner);
        f(table.find(hash, |(k, _)| k == key).map(|(_, v)| v))
    }

    /// Inserts when absent; true when inserted.
    fn insert(&self, key: K, value: V) -> bool {
        let (hash, shard) = self.locate(&key);
        let mut table = shard.write().unwrap_or_else(PoisonError::into_inner);
        if table.find(hash, |(k, _)| *k == key).is_some() {
            return false;
        }
        table.insert_unique(hash, (key, value), |(k, _)| self.hasher.hash_one(k));
        true
    }

    /// Inserts when absent in one probe (`HashTable::entry`); true when inserted.
    fn insert_one_probe(&self, key: K, value: V) -> bool {
        let (hash, shard) = self.locate(&key);
        let mut table = shard.write().unwrap_or_else(PoisonError::into_inner);
        let entry = table.entry(hash, |(k, _)| *k == key, |(k, _)| self.hasher.hash_one(k));
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((key, value));
                true
            }
        }
    }

    /// Removes; true when it was there.
    fn remove(&self, key: &K) -> bool {
        let (hash, shard) = self.locate(key);
        let mut table = shard.write().unwrap_or_else(PoisonError::into_inner);
        match table.find_entry(hash, |(k, _)| k == key) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }
}

/// The two operations the lease map needs, on the candidate maps.
trait LeaseMap: Sync {
    /// Renew-like: shared lookup, then an atomic store on the value. True when found.
    fn touch(&self, key: i64, value: u64) -> bool;
    /// Grant-like: insert a key known to be absent. True when inserted.
    fn insert(&self, key: i64) -> bool;
    /// Untimed clean-up. True when removed.
    fn remove(&self, key: i64) -> bool;
}

impl LeaseMap for ShardedHashbrown<i64, AtomicU64> {
    #[inline]
    fn touch(&self, key: i64, value: u64) -> bool {
        self.read(&key, |v| v.map(|v| v.store(value, Ordering::Release)))
            .is_some()
    }

    #[inline]
    fn insert(&self, key: i64) -> bool {
        ShardedHashbrown::insert(self, key, AtomicU64::new(0))
    }

    fn remove(&self, key: i64) -> bool {
        ShardedHashbrown::remove(self, &key)
    }
}

/// [`ShardedHashbrown`] whose insert probes once instead of find-then-insert (as
/// `LeaseShard::insert_new` after `get` does in the engine's grant).
struct OneProbe(ShardedHashbrown<i64, AtomicU64>);

impl LeaseMap for OneProbe {
    #[inline]
    fn touch(&self, key: i64, value: u64) -> bool {
        self.0.touch(key, value)
    }

    #[inline]
    fn insert(&self, key: i64) -> bool {
        self.0.insert_one_probe(key, AtomicU64::new(0))
    }

    fn remove(&self, key: i64) -> bool {
        self.0.remove(&key)
    }
}

impl<S: BuildHasher + Clone + Send + Sync> LeaseMap for DashMap<i64, AtomicU64, S> {
    #[inline]
    fn touch(&self, key: i64, value: u64) -> bool {
        self.get(&key)
            .map(|v| v.store(value, Ordering::Release))
            .is_some()
    }

    #[inline]
    fn insert(&self, key: i64) -> bool {
        DashMap::insert(self, key, AtomicU64::new(0)).is_none()
    }

    fn remove(&self, key: i64) -> bool {
        DashMap::remove(self, &key).is_some()
    }
}

/// The candidates' names for renew, in [`Candidates::renew`] order.
const RENEW_CANDIDATES: [&str; 3] = ["sharded_hashbrown", "dashmap", "dashmap_sip"];
/// The candidates' names for insert, in [`Candidates::insert`] order.
const INSERT_CANDIDATES: [&str; 4] = [
    "sharded_hashbrown",
    "sharded_hashbrown_one_probe",
    "dashmap",
    "dashmap_sip",
];

/// The maps `map/shard_choice` compares, each holding the same ids.
struct Candidates {
    ours: ShardedHashbrown<i64, AtomicU64>,
    ours_one_probe: OneProbe,
    dash: DashMap<i64, AtomicU64, DefaultHashBuilder>,
    dash_sip: DashMap<i64, AtomicU64>,
}

impl Candidates {
    /// Every candidate with the engine's default shard count, holding `ids`.
    fn new(ids: &[i64]) -> Self {
        let shards = (cores() * 4).next_power_of_two();
        let cands = Candidates {
            ours: ShardedHashbrown::new(shards),
            ours_one_probe: OneProbe(ShardedHashbrown::new(shards)),
            dash: DashMap::with_hasher_and_shard_amount(DefaultHashBuilder::default(), shards),
            dash_sip: DashMap::with_hasher_and_shard_amount(Default::default(), shards),
        };
        for &id in ids {
            LeaseMap::insert(&cands.ours, id);
            LeaseMap::insert(&cands.ours_one_probe, id);
            LeaseMap::insert(&cands.dash, id);
            LeaseMap::insert(&cands.dash_sip, id);
        }
        cands
    }

    /// The `k`th of [`RENEW_CANDIDATES`].
    fn renew(&self, k: usize) -> &dyn LeaseMap {
        [&self.ours as &dyn LeaseMap, &self.dash, &self.dash_sip][k]
    }

    /// The `k`th of [`INSERT_CANDIDATES`].
    fn insert(&self, k: usize) -> &dyn LeaseMap {
        let maps: [&dyn LeaseMap; 4] =
            [&self.ours, &self.ours_one_probe, &self.dash, &self.dash_sip];
        maps[k]
    }
}

/// One thread's run of fresh keys for the insert bench: `(thread + 1) << 40` upwards, so
/// threads never collide with each other or with the prefilled `1..=N`.
struct Fresh {
    next: i64,
    since_cleanup: i64,
}

/// Renew-like and insert on 10^6 entries, 1 and 2 threads: ours (`sharded_hashbrown`) against
/// `dashmap` with the same hasher (foldhash) and `dashmap_sip` (dashmap's default SipHash).
/// Insert also runs `sharded_hashbrown_one_probe`, ours with a single-probe insert.
/// Both sharded maps use the engine's default shard count, 4 x cores rounded up to a power of
/// two (also dashmap's default). Inserts are timed in batches of at most 100k per thread; the
/// keys are removed untimed after each batch, so the map stays between N and N + 200k.
fn bench_shard_choice(c: &mut Criterion) {
    let n = fixed_size(CHOICE_SIZE);
    let mut cands: Option<Candidates> = None;
    let mut order: Option<Vec<i64>> = None;

    let mut group = c.benchmark_group("map/shard_choice");
    configure(&mut group);
    for threads in [1, 2] {
        let per_iter = u64::try_from(threads).expect("thread count fits");
        group.throughput(Throughput::Elements(per_iter));
        for (k, name) in RENEW_CANDIDATES.into_iter().enumerate() {
            let mut cursors = Vec::new();
            let id = BenchmarkId::new(format!("renew/{name}/{threads}t"), n);
            group.bench_function(id, |b| {
                let order = order.get_or_insert_with(|| shuffled_ids(n));
                let map = cands.get_or_insert_with(|| Candidates::new(order)).renew(k);
                if cursors.is_empty() {
                    cursors = Cursor::split(order, threads);
                }
                b.iter_custom(|iters| {
                    let (time, ok) = run_threads(&mut cursors, iters, |cur, iters| {
                        let mut ok = 0;
                        for i in 0..iters {
                            ok += u64::from(map.touch(cur.next(), black_box(i)));
                        }
                        ok
                    });
                    assert_eq!(ok, iters * per_iter, "every key is present");
                    time
                });
            });
        }
        for (k, name) in INSERT_CANDIDATES.into_iter().enumerate() {
            let mut fresh: Vec<Fresh> = (1..=threads)
                .map(|t| Fresh {
                    next: id_of(t) << 40,
                    since_cleanup: 0,
                })
                .collect();
            let id = BenchmarkId::new(format!("insert/{name}/{threads}t"), n);
            group.bench_function(id, |b| {
                let order = order.get_or_insert_with(|| shuffled_ids(n));
                let map = cands
                    .get_or_insert_with(|| Candidates::new(order))
                    .insert(k);
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let chunk = left.min(INSERT_CHUNK);
                        let (time, ok) = run_threads(&mut fresh, chunk, |f, iters| {
                            let mut ok = 0;
                            for _ in 0..iters {
                                ok += u64::from(map.insert(black_box(f.next)));
                                f.next += 1;
                            }
                            f.since_cleanup += i64::try_from(iters).expect("fits");
                            ok
                        });
                        assert_eq!(ok, chunk * per_iter, "every insert is fresh");
                        total += time;
                        left -= chunk;
                        for f in &mut fresh {
                            for key in f.next - f.since_cleanup..f.next {
                                map.remove(key);
                            }
                            f.since_cleanup = 0;
                        }
                    }
                    total
                });
            });
        }
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// map/grant

/// A map that a grant bench fills from N towards 2N with fresh ids, then rebuilds untimed.
struct Growing<M> {
    map: M,
    base: usize,
    len: usize,
    next: i64,
}

impl<M> Growing<M> {
    fn new(base: usize, build: impl Fn(usize) -> M) -> Self {
        Growing {
            map: build(base),
            base,
            len: base,
            next: id_of(base) + 1,
        }
    }

    /// Times `iters` inserts of fresh ids through `insert` (true = inserted), in batches that
    /// keep the map within N..=2N; the map is rebuilt untimed (by `build`) when it reaches 2N.
    fn run(
        &mut self,
        iters: u64,
        build: impl Fn(usize) -> M,
        mut insert: impl FnMut(&mut M, i64) -> bool,
    ) -> Duration {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.len >= 2 * self.base {
                self.map = build(self.base);
                self.len = self.base;
                self.next = id_of(self.base) + 1;
            }
            let room = u64::try_from(2 * self.base - self.len).expect("fits");
            let chunk = left.min(room);
            let start = now();
            let mut ok = 0;
            for _ in 0..chunk {
                ok += u64::from(insert(&mut self.map, black_box(self.next)));
                self.next += 1;
            }
            total += now() - start;
            assert_eq!(ok, chunk, "every id is fresh");
            self.len += usize::try_from(chunk).expect("fits");
            left -= chunk;
        }
        total
    }
}

/// Grant of fresh ids from one thread into a lessor holding N leases, against the floor: a
/// hashbrown insert of fresh keys into a map of N. Both grow to 2N and are then rebuilt
/// untimed; for the lessor the rebuild also resets the expiry intake, which grows by one filing
/// per grant. Table resizes between N and 2N are part of both timings.
fn bench_grant(c: &mut Criterion) {
    let mut group = c.benchmark_group("map/grant");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for n in sizes(&GRANT_SIZES, &GRANT_FULL) {
        let mut state = None;
        group.bench_function(BenchmarkId::new("lessor", n), |b| {
            let state = state.get_or_insert_with(|| Growing::new(n, lessor_with));
            b.iter_custom(|iters| {
                state.run(iters, lessor_with, |l, id| {
                    l.grant(LeaseId::new(id), TTL).is_ok()
                })
            });
        });
        drop(state);

        let build = |n| floor_map(1..=id_of(n));
        let mut state = None;
        group.bench_function(BenchmarkId::new("floor", n), |b| {
            let state = state.get_or_insert_with(|| Growing::new(n, build));
            b.iter_custom(|iters| state.run(iters, build, |m, id| m.insert(id, 0).is_none()));
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// map/revoke

/// Revoke of key-less leases in a lessor holding N, against the floor (hashbrown remove from a
/// map of N). Each batch of at most N/10 fresh ids is granted (inserted) untimed, then revoked
/// (removed) timed, so the map stays within N..=1.1N. The lessor is rebuilt untimed after 4N
/// fresh grants, to bound its expiry intake.
fn bench_revoke(c: &mut Criterion) {
    let mut group = c.benchmark_group("map/revoke");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    for n in sizes(&REVOKE_SIZES, &[]) {
        let batch = u64::try_from(n / 10).expect("fits");

        let mut lessor = None;
        let mut next = id_of(n) + 1;
        group.bench_function(BenchmarkId::new("lessor", n), |b| {
            let lessor = lessor.get_or_insert_with(|| lessor_with(n));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    if next > 5 * id_of(n) {
                        *lessor = lessor_with(n);
                        next = id_of(n) + 1;
                    }
                    let chunk = left.min(batch);
                    let first = next;
                    next += i64::try_from(chunk).expect("fits");
                    for id in first..next {
                        lessor.grant(LeaseId::new(id), TTL).expect("fresh id");
                    }
                    let start = now();
                    let mut ok = 0;
                    for id in first..next {
                        ok += u64::from(lessor.revoke(LeaseId::new(black_box(id))).is_ok());
                    }
                    total += now() - start;
                    assert_eq!(ok, chunk, "every revoke finds its lease");
                    left -= chunk;
                }
                total
            });
        });
        drop(lessor);

        let mut map = None;
        let mut next = id_of(n) + 1;
        group.bench_function(BenchmarkId::new("floor", n), |b| {
            let map = map.get_or_insert_with(|| floor_map(1..=id_of(n)));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(batch);
                    let first = next;
                    next += i64::try_from(chunk).expect("fits");
                    map.extend((first..next).map(|id| (id, 0)));
                    let start = now();
                    let mut ok = 0;
                    for id in first..next {
                        ok += u64::from(map.remove(&black_box(id)).is_some());
                    }
                    total += now() - start;
                    assert_eq!(ok, chunk, "every key is present");
                    left -= chunk;
                }
                total
            });
        });
    }
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// map/attach

/// Attach at 10^5 leases, one key `k{id}` per lease (keys formatted once, up front), leases
/// visited in shuffled order.
///
/// - `attach`: timed passes of at most N attaches (each lease gets its key at most once per
///   pass, so every attach takes a free key), each followed by untimed detaches of the same
///   keys; the key map grows from 0 to at most N during a pass.
/// - `attach_detach`: one attach and one detach of the same key per iteration (the key map
///   stays empty); one element = one pair.
fn bench_attach(c: &mut Criterion) {
    let n = fixed_size(ATTACH_SIZE);
    let batch = u64::try_from(n).expect("fits");
    // The lessor, the shuffled ids and their keys, built on first use.
    let mut bed: Option<(Lessor, Vec<i64>, Vec<String>)> = None;
    let build = || {
        let order = shuffled_ids(n);
        let keys = order.iter().map(|id| format!("k{id}")).collect();
        (lessor_with(n), order, keys)
    };

    let mut group = c.benchmark_group("map/attach");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));

    let mut at = 0;
    group.bench_function(BenchmarkId::new("attach", n), |b| {
        let (lessor, order, keys) = bed.get_or_insert_with(build);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let chunk = left.min(batch);
                let first = at;
                let start = now();
                let mut ok = 0;
                for _ in 0..chunk {
                    let id = LeaseId::new(order[at]);
                    ok += u64::from(lessor.attach(id, [keys[at].as_str()]).is_ok());
                    at = if at + 1 == n { 0 } else { at + 1 };
                }
                total += now() - start;
                assert_eq!(ok, chunk, "every attach succeeds");
                at = first;
                for _ in 0..chunk {
                    let id = LeaseId::new(order[at]);
                    lessor.detach(id, [keys[at].as_str()]).expect("attached");
                    at = if at + 1 == n { 0 } else { at + 1 };
                }
                left -= chunk;
            }
            total
        });
    });

    let mut at = 0;
    group.bench_function(BenchmarkId::new("attach_detach", n), |b| {
        let (lessor, order, keys) = bed.get_or_insert_with(build);
        b.iter_custom(|iters| {
            let start = now();
            let mut ok = 0;
            for _ in 0..iters {
                let (id, key) = (LeaseId::new(order[at]), keys[at].as_str());
                ok += u64::from(lessor.attach(id, [key]).is_ok());
                ok += u64::from(lessor.detach(id, [key]).is_ok());
                at = if at + 1 == n { 0 } else { at + 1 };
            }
            let time = now() - start;
            assert_eq!(ok, 2 * iters, "every attach and detach succeeds");
            time
        });
    });
    if let Some((lessor, _, keys)) = &bed {
        assert!(
            lessor.get_lease(keys[0].as_str()).is_none(),
            "no key left behind"
        );
    }
    group.finish();
}
