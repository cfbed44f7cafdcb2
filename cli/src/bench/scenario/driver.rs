//! Running a [`Body`] on T worker threads against one target, and timing it.
//!
//! # Ground rules
//!
//! - Each worker thread takes its handle (`Target::worker`) and a fresh [`Sampler`], then waits
//!   on a barrier so that all threads start together. Thread spawn, handle creation and join
//!   are not timed.
//! - Each thread times its own run (from the barrier to its last operation). The run's elapsed
//!   time is the longest of these, so one slow thread counts in full and the start-up skew of
//!   the threads does not.
//! - A body checks its [`Deadline`] every [`CHECK_EVERY`] operations; the harness never
//!   interrupts a thread.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::bench::stats::{now, Hist, Sampler};
use crate::bench::target::{Ops, Target};

/// Operations between two deadline checks in a timed loop.
pub(crate) const CHECK_EVERY: u64 = 256;

/// When a timed loop stops (never, for an untimed one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// True once the deadline has passed.
    #[inline]
    pub(crate) fn passed(&self) -> bool {
        self.0.is_some_and(|end| now() >= end)
    }
}

/// One worker thread's part of a run.
pub(crate) trait Body: Sync {
    /// What a thread reports back.
    type Out: Send;

    /// One operation in this many is timed.
    const SAMPLE_EVERY: u32 = crate::bench::stats::SAMPLE_EVERY;

    /// Thread `t`'s work: operations through `w`, each wrapped in `sampler.op`, until its share
    /// is done or `deadline` passes.
    fn run<W: Ops>(
        &self,
        t: usize,
        w: &mut W,
        sampler: &mut Sampler,
        deadline: Deadline,
    ) -> Self::Out;
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Timed<O> {
    /// Each thread's report, by thread.
    pub(crate) outs: Vec<O>,
    /// The longest thread's run.
    pub(crate) elapsed: Duration,
    /// The sampled latencies of every thread.
    pub(crate) latency: Hist,
}

/// Runs `body` on `threads` threads against `target`, each for at most `budget` (no limit when
/// `None`).
pub(crate) fn run_threads<T: Target, B: Body>(
    target: &T,
    threads: usize,
    budget: Option<Duration>,
    body: &B,
) -> Timed<B::Out> {
    let barrier = Barrier::new(threads);
    let results: Vec<(Duration, B::Out, Hist)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut w = target.worker(t);
                    let mut sampler = Sampler::new(B::SAMPLE_EVERY);
                    barrier.wait();
                    let start = now();
                    let deadline = Deadline(budget.and_then(|b| start.checked_add(b)));
                    let out = body.run(t, &mut w, &mut sampler, deadline);
                    let took = now() - start;
                    drop(w);
                    (took, out, sampler.hist)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });
    let mut latency = Hist::new();
    let mut elapsed = Duration::ZERO;
    let mut outs = Vec::with_capacity(results.len());
    for (took, out, hist) in results {
        elapsed = elapsed.max(took);
        latency.merge(&hist);
        outs.push(out);
    }
    Timed {
        outs,
        elapsed,
        latency,
    }
}
