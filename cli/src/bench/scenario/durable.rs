//! `durable-grant`: grants through the write-ahead log, under one fsync policy.
//!
//! The log is filled with leases `1..=N` (untimed, with fsync `never`) and closed, then reopened
//! under the policy measured, so the lessor holds N leases and its log already has their records,
//! as a server's would after a while. Every thread then grants fresh ids of its own, from `N+1`
//! on, until the time is up (the lessor grows by as many as that allows); each grant returns once its record is as durable as the
//! policy says (with `always`, once fsynced: concurrent grants share one write and one fsync).
//! Every grant is timed.
//!
//! No baseline: the etcd-style reference keeps no log. Checks: the lessor holds N + the grants
//! that succeeded, and so does the log: reopened afterwards (untimed), it rebuilds exactly that
//! many leases. The log's fsync count is not reported (`fsyncs` is null): the library keeps one
//! but does not expose it yet.

use std::path::Path;

use lessor::FsyncPolicy;

use super::common::Ctx;
use super::driver::{run_threads, Body, Deadline};
use super::logdir::{fill, open, LogDir};
use crate::bench::alloc;
use crate::bench::outcome::Outcome;
use crate::bench::rng::id_of;
use crate::bench::stats::Sampler;
use crate::bench::target::{LessorTarget, Ops, Target};

/// Grants between two deadline checks: a durable grant takes microseconds to milliseconds, so
/// a run overshoots its duration by little.
const CHECK_EVERY: u64 = 16;

/// One thread's grants of fresh ids, every one timed.
struct Grants<'c, 'p> {
    ctx: &'c Ctx<'p>,
}

impl Body for Grants<'_, '_> {
    /// (grants tried, grants that succeeded).
    type Out = (u64, u64);

    /// A durable grant costs microseconds to milliseconds: two clock reads are noise.
    const SAMPLE_EVERY: u32 = 1;

    fn run<W: Ops>(&self, t: usize, w: &mut W, s: &mut Sampler, deadline: Deadline) -> (u64, u64) {
        let c = self.ctx;
        let (mut k, mut ok) = (0, 0);
        loop {
            let end = k + CHECK_EVERY;
            for kk in k..end {
                let id = id_of(t, c.threads, c.n, kk);
                let ttl = c.ttl_of(id);
                ok += u64::from(s.op(|| w.grant(id, ttl)));
            }
            k = end;
            if deadline.passed() {
                return (k, ok);
            }
        }
    }
}

/// What one durable-grant run measured.
#[derive(Debug)]
pub(crate) struct DurableGrants {
    /// Grants, their latencies, the checks.
    pub(crate) out: Outcome,
    /// Heap bytes of the lessor holding N leases (reopened from its log), per lease.
    pub(crate) bytes_per_lease: f64,
}

/// Runs durable-grant under `fsync` with `ctx.threads` threads, its log in a temporary
/// directory under `parent`.
///
/// # Errors
///
/// The library's, from filling or opening the log.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    parent: &Path,
    fsync: FsyncPolicy,
) -> lessor::Result<DurableGrants> {
    let (n, tick) = (ctx.n, ctx.config.tick);
    let dir = LogDir::new(parent)?;
    let filled = fill(ctx, dir.path(), FsyncPolicy::Never, 0)?;
    let mut out = Outcome::default();
    out.check("grants that filled the log = N", n, filled);

    ctx.say("lessor", "reopening the log");
    let before = alloc::live();
    let target = LessorTarget::from_lessor(open(dir.path(), fsync, tick)?);
    let bytes_per_lease = (alloc::live() - before) as f64 / n as f64;
    let rebuilt = target.lessor().recovery().map_or(0, |r| r.leases);
    out.check("leases rebuilt before the run = N", n, rebuilt as u64);

    ctx.say("lessor", "measuring");
    let timed = run_threads(&target, ctx.threads, Some(ctx.duration), &Grants { ctx });
    let (ops, ok) = timed
        .outs
        .iter()
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    out.ops = ops;
    out.errors = ops - ok;
    out.latency = timed.latency;
    out.elapsed = timed.elapsed;
    out.rounds = 1;
    out.check(
        "leases after the run = N + grants",
        n + ok,
        target.len() as u64,
    );
    drop(target);

    ctx.say("lessor", "reopening to check the log");
    let again = open(dir.path(), FsyncPolicy::Never, tick)?;
    let rebuilt = again.recovery().map_or(0, |r| r.leases);
    out.check(
        "leases rebuilt after the run = N + grants",
        n + ok,
        rebuilt as u64,
    );
    Ok(DurableGrants {
        out,
        bytes_per_lease,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::progress::Progress;
    use crate::bench::scenario::common::test_ctx;

    #[test]
    fn every_acknowledged_grant_is_in_the_engine_and_the_log() {
        let progress = Progress::hidden();
        let parent = tempfile::tempdir().unwrap();
        let ten = FsyncPolicy::Interval(Duration::from_millis(10));
        for fsync in [FsyncPolicy::Always, ten, FsyncPolicy::Never] {
            let ctx = test_ctx(&progress, 200, 2, 0, Duration::from_millis(50));
            let d = run(&ctx, parent.path(), fsync).unwrap();
            let o = &d.out;
            assert!(o.checks_ok(), "{fsync:?}: {:?}", o.checks);
            assert!(o.ops > 0 && o.errors == 0, "{fsync:?}: {o:?}");
            assert_eq!(o.latency.len(), o.ops, "every grant is timed");
            let after = o
                .checks
                .iter()
                .find(|c| c.what.starts_with("leases rebuilt after"));
            assert_eq!(after.map(|c| c.observed), Some(200 + o.ops));
        }
    }
}
