//! Expiry benches: the expiry worker's cost per lease, in notify and in revoke mode.
//!
//! - `expiry/burst`: N leases share one deadline and one step expires them all (a promote, or
//!   a crowd of sessions opened together; at 16k leases and more the worker examines them on
//!   several threads).
//! - `expiry/stepped`: N leases with deadlines spread evenly over one second (100 ticks of
//!   10 ms), expired by stepping the clock one tick at a time, as the expiry thread does.
//!
//! # How
//!
//! - The lessor has no expiry thread (`expiry_thread(false)`) and a [`ManualClock`]: the bench
//!   advances the clock and calls `Lessor::run_expiry_once()`, and only those calls are timed
//!   (`iter_custom`). Arming the leases, filing them in the wheel (an untimed step before the
//!   clock moves) and draining and dropping the delivered batches are not timed.
//! - `notify/N` (etcd's mode): the worker marks each lease expired and delivers it. The N
//!   leases are granted once per size; each iteration re-arms them with a demote and a promote
//!   (which gives every lease, delivered or not, a fresh deadline) and an untimed step that
//!   rebuilds the wheel.
//! - `revoke/N` (`ExpiryMode::Revoke`): the worker also revokes each lease, so each iteration
//!   grants the N leases afresh (untimed).
//! - Throughput is `Elements(N)`: one iteration expires N leases, so criterion's elem/s is
//!   leases expired per second of worker time. Every iteration asserts that all N were
//!   delivered.
//! - The channel holds 2^16 batches of 4096, so a whole burst fits: no step waits for room.
//! - 10 samples, flat sampling, 0.5 s warm-up, 1 s measurement (of worker time; the untimed
//!   set-up makes the wall time longer, several times so at small N). At 10^6 one iteration
//!   takes 0.1-0.3 s, so criterion warns that 10 samples do not fit in 1 s and runs its
//!   minimum of 10 iterations: that is intended.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use crossbeam_channel::Receiver;
use lessor::{ExpiryMode, Lease, LeaseId, Lessor, ManualClock};

use crate::common::{id_of, now, sizes, u64_of};

/// Lease counts, 10^3 to 10^6, in both modes.
const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// The engine's tick (the builder's default, set here so the bench does not depend on it).
const TICK: Duration = Duration::from_millis(10);
/// The one TTL of `expiry/burst`.
const BURST_TTL: Duration = Duration::from_secs(60);
/// The shortest TTL of `expiry/stepped`; lease `i` lives `i % SPREAD_MS` ms longer.
const STEPPED_TTL: Duration = Duration::from_secs(10);
/// `expiry/stepped` spreads deadlines over this many milliseconds.
const SPREAD_MS: i64 = 1000;
/// More steps than any stepped run needs (about 101): a guard against a lost lease.
const MAX_STEPS: usize = 1000;

/// Registers `expiry/burst` and `expiry/stepped`.
pub(crate) fn register_benches(c: &mut Criterion) {
    for pattern in [Pattern::Burst, Pattern::Stepped] {
        let mut group = c.benchmark_group(pattern.group());
        configure(&mut group);
        for (mode, name) in [
            (ExpiryMode::Notify, "notify"),
            (ExpiryMode::Revoke, "revoke"),
        ] {
            for n in sizes(&SIZES, &[]) {
                group.throughput(Throughput::Elements(u64_of(n)));
                // Built on first use, so a filtered-out bench builds nothing.
                let mut bed = None;
                group.bench_function(BenchmarkId::new(name, n), |b| {
                    let bed = bed.get_or_insert_with(|| Bed::new(n, mode, pattern));
                    b.iter_custom(|iters| (0..iters).map(|_| bed.run()).sum());
                });
            }
        }
        group.finish();
    }
}

/// Short groups, flat sampling: an iteration is one whole expiry of N leases.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
}

/// How the N deadlines fall.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// All at once.
    Burst,
    /// Spread over `SPREAD_MS`, stepped tick by tick.
    Stepped,
}

impl Pattern {
    fn group(self) -> &'static str {
        match self {
            Pattern::Burst => "expiry/burst",
            Pattern::Stepped => "expiry/stepped",
        }
    }

    /// Lease `id`'s TTL.
    fn ttl(self, id: i64) -> Duration {
        match self {
            Pattern::Burst => BURST_TTL,
            Pattern::Stepped => {
                let extra = u64::try_from(id % SPREAD_MS).expect("ids are positive");
                STEPPED_TTL + Duration::from_millis(extra)
            }
        }
    }
}

/// A lessor on a manual clock with N leases `1..=N`, and the receiving end of its channel.
struct Bed {
    lessor: Lessor,
    clock: ManualClock,
    expired: Receiver<Vec<Lease>>,
    n: usize,
    mode: ExpiryMode,
    pattern: Pattern,
}

impl Bed {
    fn new(n: usize, mode: ExpiryMode, pattern: Pattern) -> Self {
        let clock = ManualClock::new();
        let lessor = Lessor::builder()
            .clock(clock.clone())
            .min_ttl(Duration::from_millis(1))
            .tick(TICK)
            .expiry_thread(false)
            .expiry_mode(mode)
            // No spreading of deadlines on promote: the burst stays one burst.
            .revoke_rate(u32::MAX)
            .expiry_channel(1 << 16, 4096)
            .build()
            .expect("valid config");
        let expired = lessor.expired_leases();
        let bed = Bed {
            lessor,
            clock,
            expired,
            n,
            mode,
            pattern,
        };
        if mode == ExpiryMode::Notify {
            bed.grant_all();
        }
        bed
    }

    fn grant_all(&self) {
        for id in 1..=id_of(self.n) {
            let ttl = self.pattern.ttl(id);
            self.lessor.grant(LeaseId::new(id), ttl).expect("fresh id");
        }
    }

    /// Untimed: gives every lease a deadline of now + its TTL and files it in the wheel.
    fn arm(&self) {
        match self.mode {
            ExpiryMode::Notify => {
                // A promote after a demote restarts every lease, delivered ones too.
                self.lessor.demote();
                self.lessor.promote(Duration::ZERO);
            }
            // The last iteration's leases were all revoked by the worker.
            ExpiryMode::Revoke => self.grant_all(),
        }
        let filed = self.lessor.run_expiry_once().expect("running");
        assert_eq!(filed, 0, "nothing is due yet");
    }

    /// One iteration: arms the leases, then moves the clock over every deadline. Returns the
    /// time spent in `run_expiry_once` alone.
    fn run(&self) -> Duration {
        self.arm();
        let mut busy = Duration::ZERO;
        let mut delivered = 0;
        match self.pattern {
            Pattern::Burst => {
                self.clock.advance(BURST_TTL);
                delivered += self.step(&mut busy);
            }
            Pattern::Stepped => {
                self.clock.advance(STEPPED_TTL - TICK);
                let mut steps = 0;
                while delivered < self.n && steps < MAX_STEPS {
                    self.clock.advance(TICK);
                    delivered += self.step(&mut busy);
                    steps += 1;
                }
            }
        }
        assert_eq!(delivered, self.n, "every lease expires");
        busy
    }

    /// One timed worker step; the batches it delivered are dropped untimed.
    fn step(&self, busy: &mut Duration) -> usize {
        let start = now();
        let delivered = self.lessor.run_expiry_once().expect("running");
        *busy += now() - start;
        self.expired.try_iter().for_each(drop);
        delivered
    }
}
