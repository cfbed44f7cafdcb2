//! The write-ahead log: durable grants, revokes, attachments and checkpoints.
//!
//! A log directory holds numbered segment files, at most one snapshot, and a lock file; the
//! byte layout is in [`format`]. [`Wal::open`] replays the snapshot and the segments after it
//! into [`Recovered::records`], and [`Wal::append`] adds records through one writer thread
//! that group-commits concurrent callers.
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
//!   (`Error::Io`) until the log is reopened; the next open then replays whatever reached the
//!   disk, cutting a torn tail.
//! - Records are replayed in log (lsn) order, each exactly once; the records of one append
//!   are contiguous.
//! - `open` cuts a torn tail off the **last** segment (a crash in the middle of a write) and
//!   reports it; damage anywhere else is `Error::Corruption` (or `Error::CorruptSnapshot`)
//!   naming the file and offset, and nothing is loaded: never a silent loss, never a panic.
//! - Compaction ([`Wal::begin_compaction`], then [`Wal::finish_compaction`]) replaces a
//!   prefix of the log by a snapshot without stopping appends; a crash at any of its steps
//!   opens to the same state.
//! - One open log per directory: the lock file is `flock`ed, so a second open, from this
//!   process or another, fails with `Error::LogLocked`.
//!
//! # Ground rules
//!
//! - The writer thread owns the active segment ([`writer`]); callers only send it encoded
//!   records and wait for its answer. `Wal` is `Send + Sync` and shared by reference.
//! - Every file-system call goes through the [`fs::FileSystem`] seam; tests swap in
//!   `fake::MemFs` (crashes) and `fake::FailingFs` (injected failures).
//! - The crate items the log uses are imported here, once, and reached by the submodules as
//!   `super::…` (the benches compile these files outside the crate with their own imports).

// Until the engine writes through the log, only the tests use it.
#![cfg_attr(not(test), allow(dead_code))]

#[cfg(any(test, feature = "test-util"))]
pub(crate) mod fake;
mod format;
mod fs;
mod log;
mod options;
mod reader;
mod record;
mod segment;
mod snapshot;
mod writer;

#[cfg(all(test, not(lessor_loom)))]
mod tests;

pub(crate) use self::fs::{FileSystem, StdFs};
pub(crate) use self::log::Wal;
pub(crate) use self::options::{
    FsyncPolicy, Lsn, Recovered, TruncatedTail, WalOptions, WalStats, DEFAULT_SEGMENT_BYTES,
};
pub(crate) use self::record::Record;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::sync;
