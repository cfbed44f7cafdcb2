//! Helpers shared by the bench modules: the run's scale (which sizes run), thread counts, a
//! barrier-started multi-thread timer, a fixed-seed shuffle and temporary directories.
//!
//! # Scale
//!
//! - `cargo bench -- --test` (criterion's test mode, what a CI compile-and-run check uses):
//!   [`Scale::Test`]. Each bench runs once, at its smallest size, so that no big state is built
//!   only to be run once.
//! - `cargo bench`: [`Scale::Default`], sized so that `cargo bench --workspace` fits in 15
//!   minutes on two shared cores.
//! - `LESSOR_BENCH_FULL=1 cargo bench`: [`Scale::Full`] adds the sizes that need gigabytes and
//!   long set-ups: 10^7 in `map/grant` (which grows the lessor to 2 x 10^7 leases).
//!
//! Benches build their state (lessors of N leases, maps, logs) on first use, inside the bench
//! closure, so a bench that a filter leaves out, or `--list`, builds nothing.

use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use lessor::{Clock, SystemClock};

/// How much of the suite runs (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scale {
    /// Criterion's `--test`: the smallest sizes only.
    Test,
    /// The default sizes.
    Default,
    /// `LESSOR_BENCH_FULL=1`: every size.
    Full,
}

/// This run's scale, read once from the arguments and the environment.
pub(crate) fn scale() -> Scale {
    static SCALE: OnceLock<Scale> = OnceLock::new();
    *SCALE.get_or_init(|| {
        if std::env::args().any(|a| a == "--test") {
            Scale::Test
        } else if std::env::var("LESSOR_BENCH_FULL").is_ok_and(|v| v == "1") {
            Scale::Full
        } else {
            Scale::Default
        }
    })
}

/// The sizes to run: `default` (only its first in test mode), plus `full` at full scale.
pub(crate) fn sizes(default: &[usize], full: &[usize]) -> Vec<usize> {
    match scale() {
        Scale::Test => default.iter().take(1).copied().collect(),
        Scale::Default => default.to_vec(),
        Scale::Full => default.iter().chain(full).copied().collect(),
    }
}

/// A group's one size: `n`, or at most 10^3 in test mode.
pub(crate) fn fixed_size(n: usize) -> usize {
    if scale() == Scale::Test {
        n.min(1_000)
    } else {
        n
    }
}

/// The time now, for manual timing: `Instant::now` belongs to `src/clock.rs` alone.
pub(crate) fn now() -> Instant {
    SystemClock.now()
}

/// The machine's parallelism.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// 1 and 2 threads, plus the machine's parallelism when that is neither.
pub(crate) fn thread_counts() -> Vec<usize> {
    let mut counts = vec![1, 2];
    if cores() > 2 {
        counts.push(cores());
    }
    counts
}

/// 1 thread and the machine's parallelism (just 1 on one core).
pub(crate) fn one_and_all() -> Vec<usize> {
    let mut counts = vec![1];
    if cores() > 1 {
        counts.push(cores());
    }
    counts
}

/// `n` as `u64` (every count here fits).
pub(crate) fn u64_of(n: usize) -> u64 {
    u64::try_from(n).expect("counts fit in u64")
}

/// `n` as an id (every size here fits).
pub(crate) fn id_of(n: usize) -> i64 {
    i64::try_from(n).expect("sizes fit in i64")
}

/// Marsaglia's xorshift64: enough to shuffle and pick, no extra crate.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    #[inline]
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..bound` (`bound > 0`; modulo bias is irrelevant here).
    #[inline]
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64_of(bound)).expect("below a usize")
    }
}

/// The ids `1..=n` in a fixed shuffled order (Fisher-Yates).
pub(crate) fn shuffled_ids(n: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = (1..=id_of(n)).collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in (1..ids.len()).rev() {
        let j = rng.below(i + 1);
        ids.swap(i, j);
    }
    ids
}

/// Runs `work(state, iters)` once per state, one thread each (the calling thread when there is
/// only one state), all released together by a barrier. Returns the slowest thread's time and
/// the sum of what `work` returned (the operations that succeeded). Spawn and join are not
/// timed.
pub(crate) fn run_threads<S: Send>(
    states: &mut [S],
    iters: u64,
    work: impl Fn(&mut S, u64) -> u64 + Sync,
) -> (Duration, u64) {
    if let [only] = states {
        let start = now();
        let done = work(only, iters);
        return (now() - start, done);
    }
    let barrier = Barrier::new(states.len());
    let (barrier, work) = (&barrier, &work);
    std::thread::scope(|s| {
        let handles: Vec<_> = states
            .iter_mut()
            .map(|state| {
                s.spawn(move || {
                    barrier.wait();
                    let start = now();
                    let done = work(state, iters);
                    (now() - start, done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .fold((Duration::ZERO, 0), |(t, n), (dt, dn)| (t.max(dt), n + dn))
    })
}

/// A fresh temporary directory on the target dir's disk (`/tmp` may be a tmpfs, where an
/// fsync costs nothing), unique to this process and removed on drop.
pub(crate) fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a temporary directory")
}
