//! Helpers shared by the loom models in `tests/`.
//!
//! # Ground rules
//!
//! - Every model body runs inside [`model`]: under `--cfg lessor_loom` that is
//!   `loom::model`, which runs the body once per interleaving it explores; otherwise the
//!   body runs [`PLAIN_RUNS`] times on real threads, so `cargo test -p lessor-loom-tests`
//!   without the cfg still exercises every model.
//! - Everything loom tracks (the [`Lessor`], its [`ManualClock`], the `Arc` that shares them)
//!   is created *inside* the body: loom objects must not outlive one execution.
//! - The lessor never runs its expiry thread (real std threads and timeouts, which loom
//!   cannot model): the models call [`Lessor::run_expiry_once`] themselves.
//! - Small state spaces: one or two shards, at most three threads, a few ops each.
//!   `LOOM_MAX_PREEMPTIONS=2` in release keeps every model well under a minute
//!   (`scripts/loom`).
//!
//! Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg lessor_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p lessor-loom-tests --release --target-dir target/loom
//! ```

use std::time::Duration;

use lessor::{Error, LeaseId, Lessor, ManualClock};

/// loom's `Arc` under loom, std's otherwise.
#[cfg(lessor_loom)]
pub use loom::sync::Arc;
/// loom's `Arc` under loom, std's otherwise.
#[cfg(not(lessor_loom))]
pub use std::sync::Arc;

/// loom's threads under loom, std's otherwise.
#[cfg(lessor_loom)]
pub use loom::thread;
/// loom's threads under loom, std's otherwise.
#[cfg(not(lessor_loom))]
pub use std::thread;

/// How many times a model body runs as a plain test (without `--cfg lessor_loom`).
pub const PLAIN_RUNS: usize = 50;

/// Runs `body` under loom (every interleaving up to `LOOM_MAX_PREEMPTIONS`) with
/// `--cfg lessor_loom`, and [`PLAIN_RUNS`] times on real threads otherwise.
pub fn model<F>(body: F)
where
    F: Fn() + Send + Sync + 'static,
{
    model_with_preemptions(0, body);
}

/// [`model`] with at least `min` preemptions explored, whatever `LOOM_MAX_PREEMPTIONS` says:
/// for a race that needs more context switches than the default bound allows (the model's
/// docs say why).
#[allow(unused_variables)] // `min` only matters under loom
pub fn model_with_preemptions<F>(min: usize, body: F)
where
    F: Fn() + Send + Sync + 'static,
{
    #[cfg(lessor_loom)]
    {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(builder.preemption_bound.map_or(min, |b| b.max(min)));
        if builder.preemption_bound == Some(0) {
            builder.preemption_bound = None; // neither set: loom's default (unbounded)
        }
        // Counted outside loom (a std atomic): how many executions the model took, printed
        // for `--nocapture` runs and failures.
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = runs.clone();
        let bound = builder.preemption_bound;
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            body();
        });
        let runs = runs.load(std::sync::atomic::Ordering::Relaxed);
        println!("loom: {runs} executions explored (preemption bound {bound:?})");
    }
    #[cfg(not(lessor_loom))]
    for _ in 0..PLAIN_RUNS {
        body();
    }
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A lease id.
pub fn id(n: i64) -> LeaseId {
    LeaseId::new(n)
}

/// The builder every model starts from: a manual clock, no expiry thread, `shards` shards,
/// 1 ms minimum TTL and tick, and a one-hour retry interval (so an expired lease is delivered
/// once within any model).
pub fn builder(shards: usize) -> (ManualClock, lessor::LessorBuilder) {
    let clock = ManualClock::new();
    let b = Lessor::builder()
        .clock(clock.clone())
        .expiry_thread(false)
        .shards(shards)
        .min_ttl(ms(1))
        .tick(ms(1))
        .retry_interval(Duration::from_secs(3600));
    (clock, b)
}

/// A lessor from [`builder`], in an `Arc` to share with the model's threads.
pub fn lessor(shards: usize) -> (ManualClock, Arc<Lessor>) {
    let (clock, b) = builder(shards);
    (clock, Arc::new(b.build().expect("model options are valid")))
}

/// Every lease delivered on the expired channel so far, in order.
pub fn drain_expired(l: &Lessor) -> Vec<LeaseId> {
    l.expired_leases()
        .try_iter()
        .flatten()
        .map(|lease| lease.id())
        .collect()
}

/// Runs one expiry step, which must succeed (the lessor is not stopped).
pub fn expire(l: &Lessor) -> usize {
    l.run_expiry_once().expect("the lessor is running")
}

/// Asserts the engine's own invariants and that `len()` agrees with `leases()`.
pub fn assert_consistent(l: &Lessor) {
    assert_eq!(l.check_invariants(), Ok(()));
    assert_eq!(l.len(), l.leases().len(), "len() disagrees with leases()");
}

/// Asserts that `key` maps to NONE or to a live lease that lists it; returns the owner.
pub fn owner_of(l: &Lessor, key: &[u8]) -> LeaseId {
    let owner = l.get_lease(key);
    let key = String::from_utf8_lossy(key);
    if !owner.is_none() {
        let lease = l
            .lookup(owner)
            .unwrap_or_else(|| panic!("key {key:?} maps to {owner}, which is gone"));
        assert!(
            lease.keys().iter().any(|k| *k == key.as_bytes()),
            "key {key:?} maps to {owner}, whose keys are {:?}",
            lease.keys()
        );
    }
    owner
}

/// True for `Ok`, false for `Err(Error::Stopped)`; panics on anything else.
pub fn ok_or_stopped<T: std::fmt::Debug>(what: &str, r: &lessor::Result<T>) -> bool {
    match r {
        Ok(_) => true,
        Err(Error::Stopped) => false,
        Err(e) => panic!("{what}: expected Ok or Stopped, got {e:?}"),
    }
}
