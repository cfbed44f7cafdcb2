//! What every scenario shares: the run context ([`Ctx`]), each lease's TTL, building a target
//! holding N leases while counting its memory ([`build_prefilled`]), the loop control of
//! scenarios that rebuild their target between measured rounds ([`Rounds`], and
//! [`Rebuilt`] around a [`Round`]), and the interleaving of the targets' measurements
//! ([`interleave`]).
//!
//! # Interleaving
//!
//! The map scenarios (and promote) do not measure lessor for the whole duration, then the
//! reference, then the floor: a burst of load from another process would land on one of them
//! and skew the ratio. They take turns instead, [`SLICES`] slices each of duration/SLICES
//! (L B F L B F ...), and each target's figures add up its slices. Load that comes and goes
//! then falls on all of them alike, which is what lets a ratio hold on a busy machine.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::driver::{run_threads, Body, Deadline, Timed};
use crate::bench::alloc;
use crate::bench::args::TtlDist;
use crate::bench::outcome::Outcome;
use crate::bench::progress::Progress;
use crate::bench::rng::{count_of, hash64, id_of, ids_of, Rng};
use crate::bench::stats::{now, Hist, Sampler};
use crate::bench::target::{keys_into, Ops, Target, TargetConfig};

/// At most this many rounds per slice, however small the rounds are.
const MAX_ROUNDS: u64 = 500;

/// Each target's duration is measured in this many interleaved slices.
pub(crate) const SLICES: u32 = 4;

/// One run's parameters, at one lease count.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    /// Leases (sessions).
    pub(crate) n: u64,
    /// Worker threads.
    pub(crate) threads: usize,
    /// Time per measurement.
    pub(crate) duration: Duration,
    /// TTL distribution.
    pub(crate) ttl: TtlDist,
    /// Keys per lease.
    pub(crate) keys: usize,
    /// The seed.
    pub(crate) seed: u64,
    /// mixed: fraction of sessions replaced per TTL.
    pub(crate) churn: f64,
    /// How targets are built (`primary` is set per scenario).
    pub(crate) config: TargetConfig,
    /// The progress bar.
    pub(crate) progress: &'a Progress,
}

impl Ctx<'_> {
    /// The TTL of lease `id`: the same on every target.
    #[inline]
    pub(crate) fn ttl_of(&self, id: i64) -> Duration {
        self.ttl.sample(hash64(self.seed, id as u64))
    }

    /// The target config, primary or not.
    pub(crate) fn config(&self, primary: bool) -> TargetConfig {
        TargetConfig {
            primary,
            ..self.config
        }
    }

    /// Names the current phase on the progress bar.
    pub(crate) fn say(&self, label: &str, what: &str) {
        self.progress
            .say(format!("{label} {what} ({} leases)", self.n));
    }
}

/// A context for unit tests: `n` leases, `threads` threads, `keys` keys each, `duration`;
/// TTL 60 s, seed 1, tick 10 ms.
#[cfg(test)]
pub(crate) fn test_ctx(
    progress: &Progress,
    n: u64,
    threads: usize,
    keys: usize,
    duration: Duration,
) -> Ctx<'_> {
    Ctx {
        n,
        threads,
        duration,
        ttl: TtlDist::Fixed(Duration::from_secs(60)),
        keys,
        seed: 1,
        churn: 0.0,
        config: TargetConfig {
            threads,
            primary: true,
            tick: Duration::from_millis(10),
            heap: crate::bench::args::HeapKind::Fix,
        },
        progress,
    }
}

/// Grants every thread's leases among `0..n`, with `keys` keys each; each thread reports how
/// many of its grants succeeded.
pub(crate) struct Prefill<'c, 'p> {
    /// The run (its `n`, `threads`, TTLs).
    pub(crate) ctx: &'c Ctx<'p>,
    /// Keys attached to each lease.
    pub(crate) keys: usize,
}

impl Body for Prefill<'_, '_> {
    type Out = u64;

    fn run<W: Ops>(&self, t: usize, w: &mut W, _: &mut Sampler, _: Deadline) -> u64 {
        let c = self.ctx;
        let mut buf = Vec::with_capacity(self.keys);
        let mut granted = 0;
        for k in 0..count_of(t, c.threads, 0, c.n) {
            let id = id_of(t, c.threads, 0, k);
            if w.grant(id, c.ttl_of(id)) {
                granted += 1;
                if self.keys > 0 {
                    keys_into(&mut buf, id, self.keys);
                    w.attach(id, &buf);
                }
            }
        }
        granted
    }
}

/// A new target holding leases `1..=n` (each with `keys` keys), and its heap bytes per lease:
/// everything it allocated, from empty, divided by n.
pub(crate) fn build_prefilled<T: Target>(ctx: &Ctx<'_>, primary: bool, keys: usize) -> (T, f64) {
    ctx.say(T::LABEL, "building");
    let before = alloc::live();
    let target = T::build(&ctx.config(primary));
    let body = Prefill { ctx, keys };
    let granted: u64 = run_threads(&target, ctx.threads, None, &body)
        .outs
        .iter()
        .sum();
    assert_eq!(granted, ctx.n, "{}: every prefill grant succeeds", T::LABEL);
    target.settle();
    let bytes = (alloc::live() - before) as f64 / ctx.n as f64;
    (target, bytes)
}

/// Loop control for scenarios that measure in rounds, rebuilding their target in between
/// (untimed): go on until the timed phases add up to the duration, or the whole loop has taken
/// twice the duration plus its first round (small sizes spend most of their time rebuilding),
/// or [`MAX_ROUNDS`] rounds.
#[derive(Debug)]
pub(crate) struct Rounds {
    budget: Duration,
    started: Instant,
    first: Option<Duration>,
    /// Time in timed phases so far.
    pub(crate) timed: Duration,
    /// Rounds done.
    pub(crate) count: u64,
}

impl Rounds {
    /// Starts counting.
    pub(crate) fn new(budget: Duration) -> Self {
        Rounds {
            budget,
            started: now(),
            first: None,
            timed: Duration::ZERO,
            count: 0,
        }
    }

    /// The time the next round's timed phase may take.
    pub(crate) fn left(&self) -> Duration {
        self.budget
            .saturating_sub(self.timed)
            .max(Duration::from_millis(1))
    }

    /// Records a round whose timed phase took `elapsed`.
    pub(crate) fn record(&mut self, elapsed: Duration) {
        self.timed += elapsed;
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(now() - self.started);
        }
    }

    /// True when no further round should run.
    pub(crate) fn done(&self) -> bool {
        let wall = now() - self.started;
        let first = self.first.unwrap_or_default();
        self.count >= 1
            && (self.timed >= self.budget
                || wall >= 2 * self.budget + first
                || self.count >= MAX_ROUNDS)
    }
}

/// What one round's timed phase did, for the bookkeeping every rebuilt scenario shares.
#[derive(Debug)]
pub(crate) struct RoundStats {
    /// Operations tried.
    pub(crate) ops: u64,
    /// Operations that succeeded.
    pub(crate) ok: u64,
    /// The timed phase's length (its longest thread).
    pub(crate) elapsed: Duration,
    /// The sampled latencies of every thread.
    pub(crate) latency: Hist,
}

impl RoundStats {
    /// `ops` tried and `ok` succeeded in the timed run `timed`.
    pub(crate) fn new<O>(ops: u64, ok: u64, timed: Timed<O>) -> Self {
        RoundStats {
            ops,
            ok,
            elapsed: timed.elapsed,
            latency: timed.latency,
        }
    }
}

/// Adds up a round whose threads each walked their order in `orders` and returned `(tried,
/// succeeded)` in `outs`: the operations tried and succeeded over all threads, and `count(id)`
/// summed over the first `tried` ids of each order (at most `cap` of them).
pub(crate) fn tally(
    orders: &[Vec<i64>],
    outs: &[(u64, u64)],
    cap: usize,
    count: impl Fn(i64) -> u64,
) -> (u64, u64, u64) {
    let (mut ops, mut ok, mut counted) = (0, 0, 0);
    for (order, &(done, succeeded)) in orders.iter().zip(outs) {
        ops += done;
        ok += succeeded;
        let walked = usize::try_from(done).unwrap_or(usize::MAX).min(cap);
        counted += order.iter().take(walked).map(|&id| count(id)).sum::<u64>();
    }
    (ops, ok, counted)
}

/// Each thread's own leases (as [`ids_of`] splits `1..=N`), shuffled for round `round` by
/// the random stream `stream + thread`.
pub(crate) fn shuffled_orders(ctx: &Ctx<'_>, round: u64, stream: u64) -> Vec<Vec<i64>> {
    (0..ctx.threads)
        .map(|t| {
            let mut ids = ids_of(t, ctx.threads, 0, ctx.n);
            Rng::new(ctx.seed ^ round, stream + t as u64).shuffle(&mut ids);
            ids
        })
        .collect()
}

/// The timed phase of a scenario that rebuilds its target every round (grant, revoke,
/// attach): [`Rebuilt`] builds the target, this runs on it and checks it.
pub(crate) trait Round: Default {
    /// Keys attached to each lease of the prefilled target.
    fn keys(ctx: &Ctx<'_>) -> usize;

    /// Round number `round`'s timed phase on `target`, for at most `left`; records the round's
    /// checks in `out`.
    fn run<T: Target>(
        &self,
        ctx: &Ctx<'_>,
        target: &T,
        round: u64,
        left: Duration,
        out: &mut Outcome,
    ) -> RoundStats;
}

/// A [`Round`] scenario on one target, measured in slices: each round builds a target holding
/// N leases (untimed; its memory is counted on the first), runs the round's timed phase, adds
/// it up and drops the target, until [`Rounds`] says the slice is done.
pub(crate) struct Rebuilt<'c, 'p, T, R> {
    ctx: &'c Ctx<'p>,
    out: Outcome,
    round: R,
    target: PhantomData<T>,
}

impl<'c, 'p, T: Target, R: Round> Rebuilt<'c, 'p, T, R> {
    /// Nothing is built until the first slice: every round builds its own target.
    pub(crate) fn new(ctx: &'c Ctx<'p>) -> Self {
        Rebuilt {
            ctx,
            out: Outcome::default(),
            round: R::default(),
            target: PhantomData,
        }
    }
}

impl<T: Target, R: Round> Measurement for Rebuilt<'_, '_, T, R> {
    fn label(&self) -> &'static str {
        T::LABEL
    }

    fn slice(&mut self, budget: Duration) -> Duration {
        let (ctx, out) = (self.ctx, &mut self.out);
        let mut rounds = Rounds::new(budget);
        loop {
            let (target, bytes) = build_prefilled::<T>(ctx, true, R::keys(ctx));
            if out.rounds == 0 {
                out.bytes_per_lease = bytes;
            }
            ctx.say(T::LABEL, "measuring");
            let stats = self.round.run(ctx, &target, out.rounds, rounds.left(), out);
            out.ops += stats.ops;
            out.errors += stats.ops - stats.ok;
            out.latency.merge(&stats.latency);
            out.elapsed += stats.elapsed;
            out.rounds += 1;
            rounds.record(stats.elapsed);
            drop(target);
            if rounds.done() {
                return rounds.timed;
            }
        }
    }

    fn finish(self: Box<Self>) -> Outcome {
        self.out
    }
}

/// One target's measurement, taken in slices so that targets can take turns.
pub(crate) trait Measurement {
    /// The target's name.
    fn label(&self) -> &'static str;

    /// Measures for at most about `budget` of timed work; returns the timed work done.
    fn slice(&mut self, budget: Duration) -> Duration;

    /// The outcome, checks included.
    fn finish(self: Box<Self>) -> Outcome;
}

/// Runs the measurements in turns of duration/[`SLICES`] until each has had its duration
/// (or, for rebuild-bound ones that cannot fill their slices, twice as many turns as planned).
pub(crate) fn interleave(ctx: &Ctx<'_>, mut ms: Vec<Box<dyn Measurement + '_>>) -> Vec<Outcome> {
    let slice = ctx.duration / SLICES;
    let mut timed = vec![Duration::ZERO; ms.len()];
    for turn in 1..=2 * SLICES {
        for (m, done) in ms.iter_mut().zip(&mut timed) {
            if *done >= ctx.duration {
                continue;
            }
            ctx.say(m.label(), &format!("measuring, turn {turn} of {SLICES}"));
            let budget = slice
                .min(ctx.duration - *done)
                .max(Duration::from_millis(1));
            *done += m.slice(budget);
            ctx.progress.step();
        }
        if timed.iter().all(|t| *t >= ctx.duration) {
            break;
        }
    }
    ms.into_iter().map(|m| m.finish()).collect()
}
