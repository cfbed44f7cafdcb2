//! The log's knobs and the small values it hands back: [`WalOptions`], [`FsyncPolicy`],
//! [`Lsn`], [`Recovered`], [`WalStats`].

use std::fmt;
use std::time::Duration;

use super::fs::{shared_fs, FileSystem, StdFs};
use super::record::Record;
use super::sync::Arc;
use super::{Error, Result};

/// When a logged change (grant, revoke, attach, detach, checkpoint) is made durable.
///
/// # Examples
///
/// ```
/// use lessor::{FsyncPolicy, Lessor};
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("lessor-doc-fsync-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let lessor = Lessor::builder()
///     .data_dir(&dir)
///     .fsync(FsyncPolicy::Interval(Duration::from_millis(10)))
///     .build()?;
/// # drop(lessor); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// The log is fsynced before `append` returns (the default). Concurrent appends share one
    /// write and one fsync (group commit).
    #[default]
    Always,
    /// `append` returns once its records are written (to the OS); the log is fsynced at most
    /// this long after a write. A crash may lose that window.
    Interval(Duration),
    /// `append` returns once its records are written; the log is fsynced only when a segment
    /// is sealed, on compaction and on close. A crash may lose any unsynced suffix.
    Never,
}

/// How to open a log.
#[derive(Debug, Clone)]
pub(crate) struct WalOptions {
    /// When appends become durable.
    pub(crate) fsync: FsyncPolicy,
    /// A segment is sealed and a new one started once it reaches this many bytes (it may run
    /// over by one group commit). Default 64 MiB; must be at least 1.
    pub(crate) segment_bytes: u64,
    /// The file system the log lives on.
    pub(crate) fs: Arc<dyn FileSystem>,
}

/// The default segment size: 64 MiB.
pub(crate) const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            fsync: FsyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            fs: shared_fs(StdFs),
        }
    }
}

impl WalOptions {
    /// Checks the options.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero segment size.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_bytes == 0 {
            return Err(Error::InvalidConfig {
                field: "segment_bytes",
                reason: "must be at least 1 byte",
            });
        }
        Ok(())
    }
}

/// A position in the log: the number of records appended before it since the log was made.
///
/// Record `n` (counting from 0) has lsn `n`. `append` returns the position just past its last
/// record, so "this append is covered by a snapshot up to `upto`" is `returned <= upto`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Lsn(pub(crate) u64);

impl fmt::Debug for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lsn({})", self.0)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A torn tail that `open` cut off the last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TruncatedTail {
    /// The segment's number.
    pub(crate) segment: u64,
    /// Where the cut was made (the segment now ends here; 0 when the whole file was removed
    /// because even its header was incomplete).
    pub(crate) offset: u64,
    /// How many bytes were cut.
    pub(crate) bytes: u64,
}

/// What `open` found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// The snapshot's records first, then every later segment record, in log order.
    pub(crate) records: Vec<Record>,
    /// How many of `records` came from the snapshot.
    pub(crate) snapshot_records: usize,
    /// The torn tail cut off the last segment, if there was one.
    pub(crate) truncated_tail: Option<TruncatedTail>,
    /// The lsn the next appended record will get.
    pub(crate) next_lsn: Lsn,
}

/// Sizes and counters of an open log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WalStats {
    /// Live segment files.
    pub(crate) segments: u64,
    /// Bytes in live segment files (headers included).
    pub(crate) segment_bytes: u64,
    /// Bytes in the snapshot file (0 without one).
    pub(crate) snapshot_bytes: u64,
    /// The lsn the next appended record will get.
    pub(crate) next_lsn: Lsn,
    /// The lsn the snapshot covers up to (0 without one).
    pub(crate) snapshot_upto: Lsn,
    /// Group commits written since open (one write call each).
    pub(crate) writes: u64,
    /// Segment fsyncs since open (group commits, seals, close).
    pub(crate) fsyncs: u64,
}
