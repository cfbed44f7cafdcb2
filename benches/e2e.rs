//! End-to-end benches: the public API only, on the real clock, with the lessor's own threads
//! running (the expiry thread; for durable grants also the log's maintenance thread).
//!
//! - `e2e/sessions/{T}t/N`: session tracking with N live sessions, each a lease with one key
//!   (TTL 1 h: none expires on its own). T threads each own N/T of them and repeat a cycle of
//!   ten steps: eight renews of a random own session; one churn (revoke a random own session,
//!   which drops its key, then grant a fresh lease in its place and attach the same key); one
//!   short session (grant a fresh lease with a 100 ms TTL and attach a key of its own; nobody
//!   renews or revokes it). Short sessions expire on the real clock: the expiry thread revokes
//!   them (`ExpiryMode::Revoke`, the embedded session-tracking mode) and delivers them on the
//!   expired channel, which a consumer thread drains for the whole run. After each bench the
//!   consumer is waited for until every short session has been delivered (untimed), so no
//!   bench leaves expiry work behind for the next, and the count is printed.
//! - `e2e/durable_grant/{T}t`: grants of fresh ids through a data directory with
//!   `FsyncPolicy::Always` (fsynced before `grant` returns; concurrent grants share a group
//!   commit), from 1 thread and from as many threads as cores. The log lives under cargo's
//!   `CARGO_TARGET_TMPDIR`, on the target dir's disk.
//!
//! # Conventions
//!
//! - One criterion iteration is one step (sessions) or one grant (durable) *on every thread*
//!   (`Throughput::Elements(T)`), so elem/s is the total across threads. Threads start together
//!   behind a barrier; a batch takes the slowest thread's time (spawn and join untimed).
//! - Every API call's result is checked; the bench asserts after timing that none failed.
//! - Each size's lessor is built on first use (untimed) and shared by its thread counts; ids
//!   granted during a run come from per-thread ranges that never repeat.
//! - 10 samples; sessions 1 s warm-up and 2 s measurement, durable grants 0.5 s and 2 s.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use lessor::{ExpiryMode, FsyncPolicy, LeaseId, Lessor};

use crate::common::{
    id_of, one_and_all, run_threads, scale, sizes, tempdir, thread_counts, u64_of, Scale, XorShift,
};

/// Live session counts, 10^3 to 10^6.
const SESSION_SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// A live session's TTL: longer than any run.
const SESSION_TTL: Duration = Duration::from_secs(3600);
/// A short session's TTL: it expires during the bench.
const SHORT_TTL: Duration = Duration::from_millis(100);
/// Steps in one cycle: `RENEWS` renews, one churn, one short session.
const CYCLE: u64 = 10;
/// Renews in one cycle.
const RENEWS: u64 = 8;
/// Fresh ids of one thread's run: `base..base + ID_RANGE`, a new base per run.
const ID_RANGE: i64 = 1 << 40;
/// How long to wait for the short sessions of a run to be delivered.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// Registers `e2e/sessions` and `e2e/durable_grant`.
pub(crate) fn register_benches(c: &mut Criterion) {
    bench_sessions(c);
    bench_durable_grant(c);
}

/// A key: a tag byte and a number, no allocation.
fn key(tag: u8, n: u64) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&n.to_be_bytes());
    k
}

// ---------------------------------------------------------------------------------------------
// e2e/sessions

fn bench_sessions(c: &mut Criterion) {
    let mut group = c.benchmark_group("e2e/sessions");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for n in sizes(&SESSION_SIZES, &[]) {
        let mut world: Option<Sessions> = None;
        for threads in thread_counts() {
            let per_iter = u64_of(threads);
            group.throughput(Throughput::Elements(per_iter));
            let mut workers: Vec<Worker> = Vec::new();
            let id = BenchmarkId::new(format!("{threads}t"), n);
            group.bench_function(id, |b| {
                let world = world.get_or_insert_with(|| Sessions::new(n));
                if workers.is_empty() {
                    workers = world.workers(threads);
                }
                let lessor = &world.lessor;
                b.iter_custom(|iters| {
                    let (time, failed) =
                        run_threads(&mut workers, iters, |w, iters| w.run(lessor, iters));
                    assert_eq!(failed, 0, "every call succeeds");
                    time
                });
            });
            if let Some(world) = world.as_mut().filter(|_| !workers.is_empty()) {
                let expired = world.settle(workers);
                if scale() != Scale::Test {
                    eprintln!(
                        "e2e/sessions/{threads}t/{n}: {expired} short sessions expired, \
                         revoked and delivered"
                    );
                }
            }
        }
    }
    group.finish();
}

/// A lessor holding N live sessions, the id of each slot's session, and the consumer.
struct Sessions {
    lessor: Lessor,
    /// The lease of session slot `i` (its key is `key(b's', i)`).
    slots: Vec<i64>,
    /// The first fresh id of the next worker.
    next_base: i64,
    /// Short sessions granted so far.
    shorts: u64,
    consumer: Consumer,
}

impl Sessions {
    fn new(n: usize) -> Self {
        let lessor = Lessor::builder()
            .min_ttl(Duration::from_millis(1))
            .expiry_mode(ExpiryMode::Revoke)
            .build()
            .expect("valid config");
        let consumer = Consumer::spawn(&lessor);
        let slots: Vec<i64> = (1..=id_of(n)).collect();
        for (slot, &id) in slots.iter().enumerate() {
            let id = LeaseId::new(id);
            lessor.grant(id, SESSION_TTL).expect("fresh id");
            lessor.attach(id, [key(b's', u64_of(slot))]).expect("live");
        }
        Sessions {
            lessor,
            slots,
            next_base: ID_RANGE,
            shorts: 0,
            consumer,
        }
    }

    /// Hands the slots out to `threads` workers, a contiguous run each.
    fn workers(&mut self, threads: usize) -> Vec<Worker> {
        let slots = std::mem::take(&mut self.slots);
        let per = slots.len().div_ceil(threads);
        slots
            .chunks(per)
            .enumerate()
            .map(|(t, chunk)| {
                let next = self.next_base;
                self.next_base += ID_RANGE;
                Worker {
                    slots: chunk.to_vec(),
                    first: u64_of(t * per),
                    next,
                    rng: XorShift(0x2545_f491_4f6c_dd1d ^ u64_of(t + 1)),
                    step: 0,
                    shorts: 0,
                }
            })
            .collect()
    }

    /// Takes the slots back and waits until every short session so far has been delivered.
    /// Returns how many short sessions these workers started.
    fn settle(&mut self, workers: Vec<Worker>) -> u64 {
        let before = self.shorts;
        for w in workers {
            self.slots.extend(w.slots);
            self.shorts += w.shorts;
        }
        let got = self.consumer.wait_for(self.shorts, SETTLE_LIMIT);
        assert_eq!(got, self.shorts, "every short session is delivered once");
        self.shorts - before
    }
}

/// One thread's sessions and its place in the cycle.
struct Worker {
    slots: Vec<i64>,
    /// The slot number of `slots[0]`.
    first: u64,
    /// The next fresh id.
    next: i64,
    rng: XorShift,
    step: u64,
    shorts: u64,
}

impl Worker {
    /// `iters` steps of the cycle; returns how many calls failed.
    fn run(&mut self, lessor: &Lessor, iters: u64) -> u64 {
        let mut failed = 0;
        for _ in 0..iters {
            match self.step % CYCLE {
                s if s < RENEWS => {
                    let i = self.rng.below(self.slots.len());
                    failed += u64::from(lessor.renew(LeaseId::new(self.slots[i])).is_err());
                }
                s if s == RENEWS => {
                    let i = self.rng.below(self.slots.len());
                    failed += u64::from(lessor.revoke(LeaseId::new(self.slots[i])).is_err());
                    let id = self.fresh();
                    failed += u64::from(lessor.grant(id, SESSION_TTL).is_err());
                    let k = key(b's', self.first + u64_of(i));
                    failed += u64::from(lessor.attach(id, [k]).is_err());
                    self.slots[i] = id.get();
                }
                _ => {
                    let id = self.fresh();
                    failed += u64::from(lessor.grant(id, SHORT_TTL).is_err());
                    let k = key(b't', id.get().unsigned_abs());
                    failed += u64::from(lessor.attach(id, [k]).is_err());
                    self.shorts += 1;
                }
            }
            self.step += 1;
        }
        failed
    }

    fn fresh(&mut self) -> LeaseId {
        self.next += 1;
        LeaseId::new(self.next)
    }
}

/// A thread that drains the expired channel until the lessor is dropped, counting leases.
struct Consumer {
    delivered: Arc<(Mutex<u64>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Consumer {
    fn spawn(lessor: &Lessor) -> Self {
        let expired = lessor.expired_leases();
        let delivered = Arc::new((Mutex::new(0u64), Condvar::new()));
        let shared = delivered.clone();
        let handle = std::thread::spawn(move || {
            // Ends when the lessor, the only sender, is dropped.
            for batch in expired.iter() {
                let (count, changed) = &*shared;
                *count.lock().unwrap_or_else(PoisonError::into_inner) += u64_of(batch.len());
                changed.notify_all();
            }
        });
        Consumer {
            delivered,
            handle: Some(handle),
        }
    }

    /// Waits until at least `count` leases have arrived, or `limit`; returns how many have.
    fn wait_for(&self, count: u64, limit: Duration) -> u64 {
        let (got, changed) = &*self.delivered;
        let got = got.lock().unwrap_or_else(PoisonError::into_inner);
        let (got, _) = changed
            .wait_timeout_while(got, limit, |got| *got < count)
            .unwrap_or_else(PoisonError::into_inner);
        *got
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // `Sessions` drops its lessor (field order) before its consumer: the channel is closed.
        if let Some(handle) = self.handle.take() {
            handle.join().expect("the consumer panicked");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// e2e/durable_grant

/// A durable lessor (the directory outlives it: field order).
struct Durable {
    lessor: Lessor,
    _dir: tempfile::TempDir,
    next_base: i64,
}

impl Durable {
    fn new() -> Self {
        let dir = tempdir("e2e-durable-");
        let lessor = Lessor::builder()
            .min_ttl(Duration::from_millis(1))
            .data_dir(dir.path())
            .fsync(FsyncPolicy::Always)
            .build()
            .expect("the data dir opens");
        Durable {
            lessor,
            _dir: dir,
            next_base: ID_RANGE,
        }
    }

    /// One fresh-id cursor per thread.
    fn cursors(&mut self, threads: usize) -> Vec<i64> {
        (0..threads)
            .map(|_| {
                let base = self.next_base;
                self.next_base += ID_RANGE;
                base
            })
            .collect()
    }
}

fn bench_durable_grant(c: &mut Criterion) {
    let mut group = c.benchmark_group("e2e/durable_grant");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    let mut durable: Option<Durable> = None;
    for threads in one_and_all() {
        let per_iter = u64_of(threads);
        group.throughput(Throughput::Elements(per_iter));
        let mut cursors: Vec<i64> = Vec::new();
        group.bench_function(BenchmarkId::new("always", format!("{threads}t")), |b| {
            let durable = durable.get_or_insert_with(Durable::new);
            if cursors.is_empty() {
                cursors = durable.cursors(threads);
            }
            let lessor = &durable.lessor;
            b.iter_custom(|iters| {
                let (time, ok) = run_threads(&mut cursors, iters, |next, iters| {
                    let mut ok = 0;
                    for _ in 0..iters {
                        *next += 1;
                        ok += u64::from(lessor.grant(LeaseId::new(*next), SESSION_TTL).is_ok());
                    }
                    ok
                });
                assert_eq!(ok, iters * per_iter, "every grant succeeds");
                time
            });
        });
    }
    group.finish();
}
