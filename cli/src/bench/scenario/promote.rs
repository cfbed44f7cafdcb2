//! `promote`: the time to promote N leases, with etcd's spreading of pile-ups.
//!
//! The target is built with leases `1..=N` while not primary (untimed). Each round then times
//! one `promote(0)`: every lease gets now + its TTL, and with at least 1000 leases (etcd's
//! revoke rate) expiries that pile up are spread so that at most 750 fall in any one second.
//! With the default fixed TTL every lease piles up, which is the worst case. Between rounds the
//! target is demoted (untimed). The throughput is leases promoted per second and the latency
//! percentiles are those of whole promotes.
//!
//! lessor's promote returns before its expiry worker has re-filed the leases in its wheel; that
//! follow-up runs on the worker thread without blocking the API. The harness runs it at once,
//! untimed, after each promote and reports its time separately (`followup`). The reference
//! lessor does the equivalent work (its heap) inside the promote, under its one mutex.
//!
//! No floor. Checks: every lease has a finite deadline afterwards, and the target holds N.

use std::time::Duration;

use super::common::{build_prefilled, Ctx, Measurement, Rounds};
use crate::bench::outcome::Outcome;
use crate::bench::stats::{now, Hist};
use crate::bench::target::Engine;

/// `promote` on one engine, measured in slices; the engine is built once.
pub(crate) struct Run<'c, 'p, E> {
    ctx: &'c Ctx<'p>,
    target: E,
    out: Outcome,
    followup: Hist,
}

impl<'c, 'p, E: Engine> Run<'c, 'p, E> {
    /// Builds the engine holding N leases, not primary (and counts its memory).
    pub(crate) fn new(ctx: &'c Ctx<'p>) -> Self {
        let (target, bytes) = build_prefilled::<E>(ctx, false, ctx.keys);
        Run {
            ctx,
            target,
            out: Outcome {
                bytes_per_lease: bytes,
                ..Outcome::default()
            },
            followup: Hist::new(),
        }
    }
}

impl<E: Engine> Measurement for Run<'_, '_, E> {
    fn label(&self) -> &'static str {
        E::LABEL
    }

    fn slice(&mut self, budget: Duration) -> Duration {
        let (ctx, target, out) = (self.ctx, &self.target, &mut self.out);
        let mut rounds = Rounds::new(budget);
        loop {
            if out.rounds > 0 {
                target.demote();
                target.settle();
            }
            let start = now();
            target.promote(Duration::ZERO);
            let took = now() - start;
            let start = now();
            target.settle();
            self.followup.record_duration(now() - start);
            out.latency.record_duration(took);
            out.ops += ctx.n;
            out.elapsed += took;
            out.rounds += 1;
            rounds.record(took);
            if rounds.done() {
                return rounds.timed;
            }
        }
    }

    fn finish(self: Box<Self>) -> Outcome {
        let (n, target) = (self.ctx.n, &self.target);
        let mut out = self.out;
        let expiring = (1..=n as i64).filter(|&id| target.expiring(id)).count() as u64;
        out.check("leases with a deadline after promote = N", n, expiring);
        out.check("leases after = N", n, target.len() as u64);
        out.followup = Some(self.followup);
        out
    }
}
