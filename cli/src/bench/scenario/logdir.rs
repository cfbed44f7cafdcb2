//! What recovery and durable-grant share: a temporary data directory ([`LogDir`]), a durable
//! lessor opened on it ([`open`]), and filling it with N leases through its log ([`fill`]).
//!
//! The lessor is built as the harness builds its in-memory one (minimum TTL 1 ms, the given
//! tick), plus the log. Two of the log's background habits are turned off so that the log
//! holds exactly what the harness wrote: automatic compaction (the harness compacts when it
//! means to, with `Lessor::compact`) and checkpoints.

use std::io;
use std::path::Path;
use std::time::Duration;

use lessor::{FsyncPolicy, Lessor};

use super::common::{Ctx, Prefill};
use super::driver::run_threads;
use crate::bench::target::LessorTarget;

/// The log's segment size: the library's default, 64 MiB.
const SEGMENT_BYTES: u64 = 64 << 20;

/// A temporary data directory, removed (with the log in it) when dropped.
#[derive(Debug)]
pub(crate) struct LogDir(tempfile::TempDir);

impl LogDir {
    /// A fresh, empty directory in `parent`.
    ///
    /// # Errors
    ///
    /// When `parent` is not writable.
    pub(crate) fn new(parent: &Path) -> io::Result<LogDir> {
        let dir = tempfile::Builder::new()
            .prefix("lessor-bench-")
            .tempdir_in(parent)?;
        Ok(LogDir(dir))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    /// The bytes of every file in it (segments, snapshot, lock file).
    pub(crate) fn bytes(&self) -> u64 {
        std::fs::read_dir(self.path())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The suffix of a snapshot file in a data directory (the library's on-disk format,
/// `snapshot-{upto:020}.snap`).
const SNAPSHOT_SUFFIX: &str = ".snap";

impl LogDir {
    /// How many snapshot files it holds: 0 before the first compaction, 1 after.
    pub(crate) fn snapshots(&self) -> u64 {
        std::fs::read_dir(self.path()).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(SNAPSHOT_SUFFIX))
                .count() as u64
        })
    }
}

/// A durable lessor on `dir` (replaying whatever its log holds), with `fsync`, `tick`, no
/// automatic compaction and no checkpoints.
///
/// # Errors
///
/// The library's: a log it cannot read, a directory another lessor holds.
pub(crate) fn open(dir: &Path, fsync: FsyncPolicy, tick: Duration) -> lessor::Result<Lessor> {
    Lessor::builder()
        .data_dir(dir)
        .fsync(fsync)
        .min_ttl(Duration::from_millis(1))
        .tick(tick)
        .log_sizes(SEGMENT_BYTES, u64::MAX)
        .checkpoints(None, 1)
        .build()
}

/// Fills an empty log in `dir` with leases `1..=ctx.n`, `keys` keys each, on `ctx.threads`
/// threads, under `fsync`, and closes it. Returns how many grants succeeded.
///
/// # Errors
///
/// As [`open`].
pub(crate) fn fill(
    ctx: &Ctx<'_>,
    dir: &Path,
    fsync: FsyncPolicy,
    keys: usize,
) -> lessor::Result<u64> {
    ctx.say("lessor", "filling the log");
    let target = LessorTarget::from_lessor(open(dir, fsync, ctx.config.tick)?);
    let body = Prefill { ctx, keys };
    let granted = run_threads(&target, ctx.threads, None, &body)
        .outs
        .iter()
        .sum();
    // Dropping the lessor closes the log: everything written is synced.
    drop(target);
    Ok(granted)
}
