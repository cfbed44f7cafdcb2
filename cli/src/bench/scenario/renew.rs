//! `renew`: renewals of random leases among N.
//!
//! One target holding leases `1..=N` (untimed), then every thread renews leases of its own,
//! picked uniformly at random, for the duration. With TTLs longer than the run (the default,
//! 60 s) every renewal succeeds. Floor: a hashbrown lookup and a store. Checks: every renewal
//! found its lease (answered "renewed" or "expired"), and the target still holds N.

use std::time::Duration;

use super::common::{build_prefilled, Ctx, Measurement};
use super::driver::{run_threads, Body, Deadline, CHECK_EVERY};
use crate::bench::outcome::Outcome;
use crate::bench::rng::{count_of, id_of, Rng};
use crate::bench::stats::Sampler;
use crate::bench::target::{Ops, Renewed, Target};

/// One thread's renewals.
struct Renewals<'c, 'p> {
    ctx: &'c Ctx<'p>,
}

/// One thread's counts.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ops: u64,
    ok: u64,
    expired: u64,
}

impl Body for Renewals<'_, '_> {
    type Out = Counts;

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> Counts {
        let c = self.ctx;
        let mine = count_of(t, c.threads, 0, c.n);
        let mut counts = Counts::default();
        if mine == 0 {
            return counts;
        }
        let mut rng = Rng::new(c.seed, t as u64 + 1);
        loop {
            for _ in 0..CHECK_EVERY {
                let id = id_of(t, c.threads, 0, rng.below(mine));
                match s.op(|| w.renew(id)) {
                    Renewed::Ok => counts.ok += 1,
                    Renewed::Expired => counts.expired += 1,
                    Renewed::Missing | Renewed::Other => {}
                }
            }
            counts.ops += CHECK_EVERY;
            if deadline.passed() {
                return counts;
            }
        }
    }
}

/// `renew` on one target, measured in slices; the target is built once.
pub(crate) struct Run<'c, 'p, T> {
    ctx: &'c Ctx<'p>,
    target: T,
    out: Outcome,
    found: u64,
}

impl<'c, 'p, T: Target> Run<'c, 'p, T> {
    /// Builds the target holding N leases (and counts its memory).
    pub(crate) fn new(ctx: &'c Ctx<'p>) -> Self {
        let (target, bytes) = build_prefilled::<T>(ctx, true, ctx.keys);
        Run {
            ctx,
            target,
            out: Outcome {
                bytes_per_lease: bytes,
                rounds: 1,
                ..Outcome::default()
            },
            found: 0,
        }
    }
}

impl<T: Target> Measurement for Run<'_, '_, T> {
    fn label(&self) -> &'static str {
        T::LABEL
    }

    fn slice(&mut self, budget: Duration) -> Duration {
        let ctx = self.ctx;
        let timed = run_threads(&self.target, ctx.threads, Some(budget), &Renewals { ctx });
        for c in &timed.outs {
            self.out.ops += c.ops;
            self.out.errors += c.ops - c.ok;
            self.found += c.ok + c.expired;
        }
        self.out.latency.merge(&timed.latency);
        self.out.elapsed += timed.elapsed;
        timed.elapsed
    }

    fn finish(self: Box<Self>) -> Outcome {
        let mut out = self.out;
        out.check("renewals that found their lease", out.ops, self.found);
        out.check(
            "leases after the run = N",
            self.ctx.n,
            self.target.len() as u64,
        );
        out.queue_entries = self.target.queue_len().map(|n| n as u64);
        out
    }
}
