//! `recovery`: the time to rebuild N leases from the write-ahead log when a lessor restarts.
//!
//! The log is filled once (untimed): leases `1..=N`, `--keys-per-lease` keys each, granted and
//! attached on T threads under `--fsync` (default `never`: the fill's durability does not change
//! what is replayed, and it is what makes a fill of 1e6 quick), then closed. Each round then times
//! one reopen, `Lessor::builder().data_dir(..).build()` from start to a usable lessor: the log
//! read back, every lease and key rebuilt, the promote that gives them deadlines, the threads
//! started. Rounds repeat (the lessor is dropped in between, untimed) until the duration is
//! spent, first with every record in the segments, then again after `compact()` has replaced
//! them by a snapshot.
//!
//! The throughput is leases rebuilt per second; the latency percentiles are those of whole
//! reopens. No baseline: the etcd-style reference keeps no log. Checks: the log holds no
//! snapshot file before the compaction and one after (so each source is what it says), and,
//! per reopen, the library's `recovery()` counts N leases and N x K keys, the lessor holds N
//! leases, and no torn tail was cut.

use std::path::Path;

use lessor::{FsyncPolicy, Recovery};

use super::common::{Ctx, Rounds};
use super::logdir::{fill, open, LogDir};
use crate::bench::alloc;
use crate::bench::outcome::Outcome;
use crate::bench::stats::now;

/// Where a reopen replays from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplayFrom {
    /// Every record in log segments, as written.
    Segments,
    /// A snapshot of the live state, written by `compact()`.
    Snapshot,
}

impl ReplayFrom {
    /// The name in the table and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ReplayFrom::Segments => "segments",
            ReplayFrom::Snapshot => "snapshot",
        }
    }
}

/// What the reopens from one source measured.
#[derive(Debug)]
pub(crate) struct Replay {
    /// Where they replayed from.
    pub(crate) from: ReplayFrom,
    /// Leases rebuilt, reopen times, checks.
    pub(crate) out: Outcome,
    /// Heap bytes of the reopened lessor, per lease.
    pub(crate) bytes_per_lease: f64,
    /// Records read back per reopen.
    pub(crate) records: u64,
    /// Bytes in the data directory.
    pub(crate) log_bytes: u64,
}

/// Fills a log in a temporary directory under `parent` with N leases, then times reopening it
/// from its segments and from a snapshot. `on_each` is called after each source's reopens.
///
/// # Errors
///
/// The library's, from filling, opening or compacting the log.
pub(crate) fn run(
    ctx: &Ctx<'_>,
    parent: &Path,
    fsync: FsyncPolicy,
    mut on_each: impl FnMut(Replay),
) -> lessor::Result<()> {
    let dir = LogDir::new(parent)?;
    let granted = fill(ctx, dir.path(), fsync, ctx.keys)?;
    ctx.progress.step();
    let mut first = reopens(ctx, &dir, fsync, ReplayFrom::Segments)?;
    first
        .out
        .check("grants that filled the log = N", ctx.n, granted);
    on_each(first);
    ctx.progress.step();
    ctx.say("lessor", "compacting the log");
    open(dir.path(), fsync, ctx.config.tick)?.compact()?;
    on_each(reopens(ctx, &dir, fsync, ReplayFrom::Snapshot)?);
    ctx.progress.step();
    Ok(())
}

/// Reopens the log in `dir` round after round until the duration is spent, timing each.
fn reopens(
    ctx: &Ctx<'_>,
    dir: &LogDir,
    fsync: FsyncPolicy,
    from: ReplayFrom,
) -> lessor::Result<Replay> {
    let (n, keys) = (ctx.n, ctx.n * ctx.keys as u64);
    let mut out = Outcome::default();
    let mut bytes_per_lease = 0.0;
    let mut records;
    let snapshots = u64::from(from == ReplayFrom::Snapshot);
    out.check("snapshot files in the log", snapshots, dir.snapshots());
    let mut rounds = Rounds::new(ctx.duration);
    ctx.say("lessor", &format!("reopening from the {}", from.name()));
    loop {
        let before = alloc::live();
        let start = now();
        let lessor = open(dir.path(), fsync, ctx.config.tick)?;
        let took = now() - start;
        if out.rounds == 0 {
            bytes_per_lease = (alloc::live() - before) as f64 / n as f64;
        }
        let found: Recovery = lessor.recovery().cloned().unwrap_or_default();
        out.check("leases rebuilt on each reopen = N", n, found.leases as u64);
        out.check(
            "keys rebuilt on each reopen = N x K",
            keys,
            found.keys as u64,
        );
        out.check("leases in the reopened lessor = N", n, lessor.len() as u64);
        out.check(
            "torn tails cut on reopen",
            0,
            u64::from(found.truncated_tail.is_some()),
        );
        records = found.records as u64;
        out.latency.record_duration(took);
        out.ops += n;
        out.elapsed += took;
        out.rounds += 1;
        rounds.record(took);
        drop(lessor);
        if rounds.done() {
            break;
        }
    }
    Ok(Replay {
        from,
        out,
        bytes_per_lease,
        records,
        log_bytes: dir.bytes(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::progress::Progress;
    use crate::bench::scenario::common::test_ctx;

    #[test]
    fn every_reopen_rebuilds_every_lease_and_key_from_both_sources() {
        let progress = Progress::hidden();
        let ctx = test_ctx(&progress, 500, 2, 2, Duration::from_millis(20));
        let parent = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        run(&ctx, parent.path(), FsyncPolicy::Never, |r| seen.push(r)).unwrap();
        let from: Vec<ReplayFrom> = seen.iter().map(|r| r.from).collect();
        assert_eq!(from, [ReplayFrom::Segments, ReplayFrom::Snapshot]);
        for r in &seen {
            let o = &r.out;
            assert!(o.checks_ok(), "{:?}", o.checks);
            assert!(o.rounds >= 1);
            assert_eq!(o.ops, 500 * o.rounds, "ops are leases rebuilt");
            assert_eq!(o.latency.len(), o.rounds, "every reopen is timed");
            let rebuilt = o
                .checks
                .iter()
                .find(|c| c.what.starts_with("leases rebuilt"));
            assert_eq!(rebuilt.map(|c| c.observed), Some(500 * o.rounds));
            let keys = o.checks.iter().find(|c| c.what.starts_with("keys rebuilt"));
            assert_eq!(keys.map(|c| c.observed), Some(1000 * o.rounds));
            assert!(r.records >= 500 && r.log_bytes > 0, "{r:?}");
            // Not `bytes_per_lease`: the allocator's count is process-wide, and the other
            // tests of this binary allocate and free on their own threads meanwhile.
        }
        let left = std::fs::read_dir(parent.path()).unwrap().count();
        assert_eq!(left, 0, "the temporary log directory is removed");
    }
}
