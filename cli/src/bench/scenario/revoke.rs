//! `revoke`: revokes from a target holding N leases, each with K keys.
//!
//! Each round builds a target holding leases `1..=N` with `--keys-per-lease` keys each
//! (untimed), then every thread revokes half of its own leases in a shuffled order, so the
//! target shrinks from N to N/2. Revoking a lease also removes its keys. Floor: a hashbrown
//! remove, plus the removal of the lease's keys from a key map. Checks, per round: the target
//! holds N - the revokes that succeeded, and no key of a revoked lease is still attached.

use std::time::Duration;

use super::common::{shuffled_orders, tally, Ctx, Rebuilt, Round, RoundStats};
use super::driver::{run_threads, Body, Deadline, CHECK_EVERY};
use crate::bench::outcome::Outcome;
use crate::bench::stats::Sampler;
use crate::bench::target::{key, keys_into, Ops, Target};

/// Revoked leases whose keys are checked, per thread and round.
const KEY_CHECKS: usize = 64;

/// One thread's revokes, in the order given.
struct Revokes<'c, 'p> {
    ctx: &'c Ctx<'p>,
    orders: &'c [Vec<i64>],
}

impl Body for Revokes<'_, '_> {
    /// (revokes tried, revokes that found their lease).
    type Out = (u64, u64);

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> (u64, u64) {
        let order = &self.orders[t];
        let mut buf = Vec::with_capacity(self.ctx.keys);
        let (mut done, mut ok) = (0, 0);
        for chunk in order.chunks(CHECK_EVERY as usize) {
            for &id in chunk {
                keys_into(&mut buf, id, self.ctx.keys);
                ok += u64::from(s.op(|| w.revoke(id, &buf)));
            }
            done += chunk.len() as u64;
            if deadline.passed() {
                break;
            }
        }
        (done, ok)
    }
}

/// Each thread's leases, shuffled, the first half of them.
pub(crate) fn half_orders(ctx: &Ctx<'_>, round: u64) -> Vec<Vec<i64>> {
    let mut orders = shuffled_orders(ctx, round, 1000);
    for ids in &mut orders {
        ids.truncate(ids.len().div_ceil(2));
    }
    orders
}

/// A round of `revoke`: every thread revokes half of its leases; the target must then hold
/// N - them, and none of their keys.
#[derive(Debug, Default)]
pub(crate) struct RevokeRound;

impl Round for RevokeRound {
    fn keys(ctx: &Ctx<'_>) -> usize {
        ctx.keys
    }

    fn run<T: Target>(
        &self,
        ctx: &Ctx<'_>,
        target: &T,
        round: u64,
        left: Duration,
        out: &mut Outcome,
    ) -> RoundStats {
        let orders = half_orders(ctx, round);
        let body = Revokes {
            ctx,
            orders: &orders,
        };
        let timed = run_threads(target, ctx.threads, Some(left), &body);
        let (ops, ok, stale) = tally(&orders, &timed.outs, KEY_CHECKS, |id| {
            (0..ctx.keys)
                .filter(|&j| target.owner(&key(id, j)).is_some())
                .count() as u64
        });
        out.check(
            "leases after each round = N - revokes",
            ctx.n - ok,
            target.len() as u64,
        );
        out.check("keys of revoked leases still attached", 0, stale);
        RoundStats::new(ops, ok, timed)
    }
}

/// `revoke` on one target, measured in slices.
pub(crate) type Run<'c, 'p, T> = Rebuilt<'c, 'p, T, RevokeRound>;
