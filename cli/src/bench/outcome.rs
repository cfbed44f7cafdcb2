//! What one scenario measured on one target ([`Outcome`]), its sanity [`Check`], and the three
//! outcomes of one run side by side ([`Comparison`]).

use std::time::Duration;

use super::stats::Hist;

/// A count the harness kept, next to the same count read back from the engine: "ops counted
/// equal ops done". A run whose checks disagree exits with code 1.
#[derive(Debug, Clone, Default)]
pub(crate) struct Check {
    /// What is counted, e.g. "leases after the run".
    pub(crate) what: &'static str,
    /// What the harness's own counts say it should be.
    pub(crate) expected: u64,
    /// What the engine shows.
    pub(crate) observed: u64,
}

impl Check {
    /// True when the two counts agree.
    pub(crate) fn ok(&self) -> bool {
        self.expected == self.observed
    }
}

/// What one scenario measured on one target.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Operations done in the timed phases (for expiry: leases delivered; for promote: leases
    /// promoted).
    pub(crate) ops: u64,
    /// Operations that failed (an expired renew, a missing lease).
    pub(crate) errors: u64,
    /// Time spent in the timed phases (expiry: first deadline to last delivery).
    pub(crate) elapsed: Duration,
    /// Sampled per-operation latencies (expiry: lateness; promote: whole promotes).
    pub(crate) latency: Hist,
    /// Heap bytes of the engine holding N leases, divided by N.
    pub(crate) bytes_per_lease: f64,
    /// How many rebuild-and-measure rounds the timed phase took.
    pub(crate) rounds: u64,
    /// The sanity checks.
    pub(crate) checks: Vec<Check>,
    /// expiry: delivery time minus deadline, per lease (ns).
    pub(crate) lateness: Option<Hist>,
    /// expiry: leases delivered before the wait ran out.
    pub(crate) delivered: Option<u64>,
    /// expiry: leases delivered before their deadline (must be 0).
    pub(crate) early: u64,
    /// expiry: how far before its deadline the earliest of those came.
    pub(crate) early_by: Duration,
    /// mixed: renewals that found their session expired or gone.
    pub(crate) lost: Option<u64>,
    /// mixed: how late each event was issued against its schedule (ns).
    pub(crate) behind: Option<Hist>,
    /// mixed: the operation rate the schedule asks for.
    pub(crate) offered_ops_per_sec: Option<f64>,
    /// promote: the time of the engine's follow-up work, run at once after each promote
    /// (lessor: its expiry worker's wheel rebuild).
    pub(crate) followup: Option<Hist>,
    /// The reference lessor's expiry-queue entries at the end.
    pub(crate) queue_entries: Option<u64>,
}

impl Outcome {
    /// Operations per second over the timed phases.
    pub(crate) fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// Adds to the check named `what` (each round adds its counts), creating it if new.
    pub(crate) fn check(&mut self, what: &'static str, expected: u64, observed: u64) {
        match self.checks.iter_mut().find(|c| c.what == what) {
            Some(c) => {
                c.expected += expected;
                c.observed += observed;
            }
            None => self.checks.push(Check {
                what,
                expected,
                observed,
            }),
        }
    }

    /// True when every check holds and nothing was delivered early.
    pub(crate) fn checks_ok(&self) -> bool {
        self.checks.iter().all(Check::ok) && self.early == 0
    }
}

/// lessor, the reference lessor and (where it applies) the floor on the same workload.
#[derive(Debug)]
pub(crate) struct Comparison {
    /// lessor.
    pub(crate) lessor: Outcome,
    /// The etcd-style reference lessor.
    pub(crate) baseline: Outcome,
    /// The hashbrown floor, for grant, renew, revoke and attach.
    pub(crate) floor: Option<Outcome>,
}
