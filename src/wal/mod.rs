//! The write-ahead log: durable grants, revokes, attachments, checkpoints, and the key-value
//! records of the etcd-compatible server.
//!
//! A log directory holds numbered segment files, at most one snapshot, and a lock file; the
//! byte layout is in [`format`](mod@format). [`Wal::open`] replays the snapshot and the
//! segments after it into [`Recovered::records`](options::Recovered::records), and [`Wal::append`] adds records through one
//! writer thread that group-commits concurrent callers.
//!
//! # Durability contract
//!
//! - `append` returns `Ok(lsn)` only once its records are durable per the [`FsyncPolicy`]:
//!   fsynced (`Always`, the default), written to the OS (`Interval`: fsynced within the
//!   interval; `Never`: fsynced only when a segment is sealed, on compaction and on close).
//!   Under `Always`, an acknowledged record is replayed by every later open, whatever crash
//!   came in between.
//! - `append` returns `Err` and **none** of its records are ever replayed, if its group's write
//!   or fsync failed: the writer cuts the segment back to where the group began and fsyncs the
//!   cut, then goes on. If even that fails, the writer refuses every later append
//!   (`Error::Io`) until the log is reopened; the next open then replays whatever whole
//!   records reached the disk (so a failed append's records *may* come back in that case
//!   only), cutting a torn tail.
//! - Records are replayed in log (lsn) order, each exactly once; the records of one append
//!   are contiguous (a crash in the middle of an unacknowledged append may keep a prefix).
//! - `open` cuts a torn tail off the **last** segment (a crash in the middle of a write) and
//!   reports it; damage anywhere else is `Error::Corruption` (or `Error::CorruptSnapshot`)
//!   naming the file and offset, and nothing is loaded: never a silent loss, never a panic.
//! - Compaction ([`Wal::begin_compaction`], then [`Wal::finish_compaction`]) replaces a
//!   prefix of the log by a snapshot without stopping appends; a crash at any of its steps
//!   opens to the same state. Replay on top of a snapshot must be idempotent (see
//!   `begin_compaction`).
//! - One open log per directory: the lock file is `flock`ed, so a second open, from this
//!   process or another, fails with `Error::LogLocked`.
//!
//! # Ground rules
//!
//! - The writer thread owns the active segment ([`writer`]); callers only send it encoded
//!   records and wait on a one-shot [`reply`] slot. `Wal` is `Send + Sync` and shared by
//!   reference.
//! - Every file-system call goes through the [`fs::FileSystem`] seam; tests swap in
//!   `fake::MemFs` (crashes) and `fake::FailingFs` (injected failures).
//! - The crate items the log uses are imported here, once, and reached by the submodules as
//!   `super::…` (the benches compile these files outside the crate with their own imports).
//!   The tests live in `tests/` for the same reason.

#[cfg(any(test, fuzzing, feature = "test-util"))]
pub(crate) mod fake;
mod format;
mod fs;
mod log;
mod options;
mod reader;
mod record;
mod reply;
mod segment;
mod snapshot;
mod writer;

#[cfg(all(test, not(lessor_loom)))]
mod tests;

#[cfg(any(test, fuzzing))]
pub(crate) use self::fs::shared_fs;
#[cfg(any(test, fuzzing, feature = "test-util"))]
pub(crate) use self::fs::FileSystem;
#[cfg(test)]
pub(crate) use self::fs::StdFs;
pub(crate) use self::log::Wal;
pub use self::options::FsyncPolicy;
#[cfg(test)]
pub(crate) use self::options::{Lsn, Recovered, TruncatedTail, WalStats};
pub(crate) use self::options::{WalOptions, DEFAULT_SEGMENT_BYTES};
pub(crate) use self::record::Record;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::sync;
