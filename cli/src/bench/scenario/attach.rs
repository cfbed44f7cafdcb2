//! `attach`: attaching K fresh keys per call to leases among N.
//!
//! Each round builds a target holding leases `1..=N` without keys (untimed), then every thread
//! walks its own leases in a shuffled order and attaches `--keys-per-lease` (at least 1) fresh
//! keys to each, one call per lease. Floor: one hashbrown insert per key into a key map (the
//! keys are boxed byte strings, as a real key map holds). Check, per round: every key of every
//! attach that succeeded maps back to its lease.

use std::time::Duration;

use super::common::{shuffled_orders, tally, Ctx, Rebuilt, Round, RoundStats};
use super::driver::{run_threads, Body, Deadline, CHECK_EVERY};
use crate::bench::outcome::Outcome;
use crate::bench::stats::Sampler;
use crate::bench::target::{key, keys_into, Ops, Target};

/// One thread's attaches, in the order given.
struct Attaches<'c, 'p> {
    ctx: &'c Ctx<'p>,
    orders: &'c [Vec<i64>],
}

impl Body for Attaches<'_, '_> {
    /// (attaches tried, attaches that found their lease).
    type Out = (u64, u64);

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> (u64, u64) {
        let mut buf = Vec::with_capacity(self.ctx.keys);
        let (mut done, mut ok) = (0, 0);
        for chunk in self.orders[t].chunks(CHECK_EVERY as usize) {
            for &id in chunk {
                keys_into(&mut buf, id, self.ctx.keys);
                ok += u64::from(s.op(|| w.attach(id, &buf)));
            }
            done += chunk.len() as u64;
            if deadline.passed() {
                break;
            }
        }
        (done, ok)
    }
}

/// A round of `attach`: every thread attaches fresh keys to each of its leases, in a shuffled
/// order; every key attached must then map back to its lease.
#[derive(Debug, Default)]
pub(crate) struct AttachRound;

impl Round for AttachRound {
    fn keys(_ctx: &Ctx<'_>) -> usize {
        0
    }

    fn run<T: Target>(
        &self,
        ctx: &Ctx<'_>,
        target: &T,
        round: u64,
        left: Duration,
        out: &mut Outcome,
    ) -> RoundStats {
        let orders = shuffled_orders(ctx, round, 2000);
        let body = Attaches {
            ctx,
            orders: &orders,
        };
        let timed = run_threads(target, ctx.threads, Some(left), &body);
        let (ops, ok, found) = tally(&orders, &timed.outs, usize::MAX, |id| {
            (0..ctx.keys)
                .filter(|&j| target.owner(&key(id, j)) == Some(id))
                .count() as u64
        });
        out.check(
            "keys that map back to their lease = attaches x K",
            ok * ctx.keys as u64,
            found,
        );
        RoundStats::new(ops, ok, timed)
    }
}

/// `attach` on one target, measured in slices.
pub(crate) type Run<'c, 'p, T> = Rebuilt<'c, 'p, T, AttachRound>;
