//! `grant`: fresh grants into a target that already holds N leases.
//!
//! Each round builds a target holding leases `1..=N` (untimed), then every thread grants fresh
//! ids `N+1..=2N` of its own until they run out or the time does, so the target grows from N
//! to at most 2N and every table resize on the way is part of the timing, as it would be in
//! service. Floor: a hashbrown insert. Check, per round: the target holds N + the grants that
//! succeeded.

use std::time::Duration;

use super::common::{Ctx, Rebuilt, Round, RoundStats};
use super::driver::{run_threads, Body, Deadline, CHECK_EVERY};
use crate::bench::outcome::Outcome;
use crate::bench::rng::{count_of, id_of};
use crate::bench::stats::Sampler;
use crate::bench::target::{Ops, Target};

/// One thread's grants of fresh ids.
struct Grants<'c, 'p> {
    ctx: &'c Ctx<'p>,
}

impl Body for Grants<'_, '_> {
    /// (grants tried, grants that succeeded).
    type Out = (u64, u64);

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> (u64, u64) {
        let c = self.ctx;
        let total = count_of(t, c.threads, c.n, 2 * c.n);
        let (mut k, mut ok) = (0, 0);
        while k < total {
            let end = (k + CHECK_EVERY).min(total);
            for kk in k..end {
                let id = id_of(t, c.threads, c.n, kk);
                let ttl = c.ttl_of(id);
                ok += u64::from(s.op(|| w.grant(id, ttl)));
            }
            k = end;
            if deadline.passed() {
                break;
            }
        }
        (k, ok)
    }
}

/// A round of `grant`: every thread grants fresh ids; the target must then hold N + them.
#[derive(Debug, Default)]
pub(crate) struct GrantRound;

impl Round for GrantRound {
    fn keys(_ctx: &Ctx<'_>) -> usize {
        0
    }

    fn run<T: Target>(
        &self,
        ctx: &Ctx<'_>,
        target: &T,
        _round: u64,
        left: Duration,
        out: &mut Outcome,
    ) -> RoundStats {
        let timed = run_threads(target, ctx.threads, Some(left), &Grants { ctx });
        let (ops, ok) = timed
            .outs
            .iter()
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
        out.check(
            "leases after each round = N + grants",
            ctx.n + ok,
            target.len() as u64,
        );
        RoundStats::new(ops, ok, timed)
    }
}

/// `grant` on one target, measured in slices.
pub(crate) type Run<'c, 'p, T> = Rebuilt<'c, 'p, T, GrantRound>;
