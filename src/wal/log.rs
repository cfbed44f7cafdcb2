//! [`Wal`]: the handle callers share: open (recovery), append, compaction, stats, close.
//!
//! # Ground rules
//!
//! - The handle is `Send + Sync` and every method takes `&self`. Appends and the compaction
//!   boundary go through the writer thread's channel ([`super::writer`]), so they are ordered
//!   with one another; the handle never touches the active segment.
//! - `compaction` (a mutex) serializes `finish_compaction` with itself and with the part of
//!   `close` that releases the lock file, so no snapshot is written by a closed log.
//! - `closed` is set once by `close` (Release) and read (Acquire) by every call first; a
//!   call that races with close and still reaches the channel gets `Error::Stopped` from the
//!   writer (or from its reply channel dropping).

use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::format::{self, LOCK_FILE, MAX_PAYLOAD};
use super::fs::{FileLock, FileSystem};
use super::options::{Lsn, Recovered, TruncatedTail, WalOptions, WalStats};
use super::reader::{self, with_path, Replay, SnapshotFile};
use super::record::{encode_frame, Record};
use super::reply::oneshot;
use super::segment::{self, Active};
use super::snapshot;
use super::sync::{self, Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use super::writer::{LiveSegment, Request, Shared, Writer};
use super::{Error, Result};

/// An open write-ahead log. See the [module docs](super) for the durability contract.
#[derive(Debug)]
pub(crate) struct Wal {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    tx: Sender<Request>,
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    compaction: Mutex<()>,
    lock: Mutex<Option<Box<dyn FileLock>>>,
    closed: AtomicBool,
}

// ===== impl Wal =====

impl Wal {
    /// Opens (creating if needed) the log in `dir` and returns it with what it holds.
    ///
    /// Takes the directory's lock file, reads the snapshot (if any) and every segment after
    /// it, cuts a torn tail off the last segment (reported in
    /// [`Recovered::truncated_tail`]), removes what a crashed compaction left behind, and
    /// starts a new segment for the appends to come (a segment with records is never
    /// appended to again; an empty last one is reused). Then starts the writer thread.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`]: bad options.
    /// - [`Error::LogLocked`]: another open log (this process or another) holds `dir`.
    /// - [`Error::Corruption`] / [`Error::CorruptSnapshot`]: damage that is not a torn tail;
    ///   nothing was changed on disk.
    /// - [`Error::UnsupportedLogVersion`]: a file from a newer lessor.
    /// - [`Error::Io`]: `dir` cannot be created, listed or read, or the repair or the new
    ///   segment cannot be written (a full disk, say); the message names the path.
    pub(crate) fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered)> {
        opts.validate()?;
        let fs = Arc::clone(&opts.fs);
        let lock = lock_dir(&*fs, dir)?;
        let replay = reader::replay(&*fs, dir)?;
        repair(&*fs, dir, &replay)?;
        let (active, segments) = start_segment(&*fs, dir, &replay, opts.segment_bytes)?;
        let shared = Arc::new(Shared {
            segments: Mutex::new(segments),
            snapshot: Mutex::new(replay.snapshot),
            next_lsn: AtomicU64::new(replay.next_lsn),
            ..Shared::default()
        });

        let (tx, rx) = crossbeam_channel::unbounded();
        let writer = Writer::new(
            Arc::clone(&fs),
            dir.to_path_buf(),
            opts.fsync,
            opts.segment_bytes,
            active,
            replay.next_lsn,
            Arc::clone(&shared),
        );
        let handle = std::thread::Builder::new()
            .name("lessor-wal".into())
            .spawn(move || writer.run(&rx))?;

        let recovered = Recovered {
            truncated_tail: replay.torn.filter(|t| t.bytes > 0).map(|t| TruncatedTail {
                segment: t.segment,
                offset: t.offset,
                bytes: t.bytes,
            }),
            snapshot_records: replay.snapshot_records,
            next_lsn: Lsn(replay.next_lsn),
            records: replay.records,
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            fs,
            tx,
            shared,
            writer: Mutex::new(Some(handle)),
            compaction: Mutex::new(()),
            lock: Mutex::new(Some(lock)),
            closed: AtomicBool::new(false),
        };
        Ok((wal, recovered))
    }

    /// Appends `records` as one unit and returns the lsn just past the last of them, once
    /// they are durable per the [`FsyncPolicy`](super::FsyncPolicy).
    ///
    /// Concurrent calls are group-committed: the writer thread gathers every append queued
    /// while it was busy into one write and one fsync. The records are encoded on the
    /// calling thread. The records of one call are contiguous in the log; an empty call
    /// writes nothing and returns the current end.
    ///
    /// # Errors
    ///
    /// - [`Error::Io`]: the write or fsync of this call's group failed. None of the group's
    ///   records will be replayed: the segment was cut back to where the group began. If even
    ///   that failed, this and every later append fail until the log is reopened.
    /// - [`Error::RecordTooLarge`]: a record's payload is over 128 MiB; nothing was written.
    /// - [`Error::Stopped`]: the log was closed.
    pub(crate) fn append(&self, records: &[Record]) -> Result<Lsn> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        let mut bytes = Vec::with_capacity(records.len() * 32);
        for record in records {
            encode_frame(record, &mut bytes).map_err(|e| Error::RecordTooLarge {
                given: e.given,
                limit: MAX_PAYLOAD,
            })?;
        }
        let (reply, answer) = oneshot();
        let count = u64::try_from(records.len()).unwrap_or(u64::MAX);
        self.tx
            .send(Request::Append {
                bytes,
                records: count,
                reply,
            })
            .map_err(|_| Error::Stopped)?;
        answer.wait()
    }

    /// Starts a compaction: seals the active segment (unless it is still empty) and returns
    /// the boundary `upto`: every record appended before this call has an lsn below it, and
    /// every record appended after it has one at or above it.
    ///
    /// The caller then collects a state that reflects **every** record whose `append`
    /// returned an lsn `<= upto` (it may also reflect later ones: records at or above `upto`
    /// are replayed on top of the snapshot after a restart, so replaying a record whose
    /// effect the snapshot already holds must be harmless), and passes it to
    /// [`Wal::finish_compaction`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the new segment cannot be made (nothing changed), [`Error::Stopped`].
    pub(crate) fn begin_compaction(&self) -> Result<Lsn> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        let (reply, answer) = oneshot();
        self.tx
            .send(Request::Rotate { reply })
            .map_err(|_| Error::Stopped)?;
        answer.wait()
    }

    /// Writes `snapshot` (records that rebuild the state at `upto`: grants, attachments,
    /// checkpoints, puts) as the new snapshot, then removes the segments and the older
    /// snapshot it makes redundant. Appends go on meanwhile.
    ///
    /// Steps: temp file written and fsynced; renamed into place; directory fsynced; covered
    /// segments and the old snapshot removed; directory fsynced. A crash at any step leaves a
    /// log that opens to the same state (the next open finishes the clean-up). A call with an
    /// `upto` at or below the current snapshot's does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a step fails (the log as it was stays authoritative, or the new
    /// snapshot is in place and the clean-up is left to the next compaction or open), also
    /// for an `upto` past the end of the log; [`Error::RecordTooLarge`]; [`Error::Stopped`].
    pub(crate) fn finish_compaction(
        &self,
        upto: Lsn,
        snapshot: impl Iterator<Item = Record>,
    ) -> Result<()> {
        let _one_at_a_time = sync::lock(&self.compaction);
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        let end = self.shared.next_lsn.load(Ordering::Relaxed);
        if upto.0 > end {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot snapshot up to lsn {upto}: the log ends at {end}"),
            )));
        }
        let old = *sync::lock(&self.shared.snapshot);
        if old.is_some_and(|s| upto.0 <= s.upto) {
            return Ok(());
        }
        // The first segment holding a record at or past `upto` (or the active one).
        let next_segment = {
            let segs = sync::lock(&self.shared.segments);
            let i = segs
                .windows(2)
                .position(|w| w[1].first_lsn > upto.0)
                .unwrap_or(segs.len().saturating_sub(1));
            segs.get(i).map_or(0, |s| s.number)
        };
        let bytes = snapshot::write(&*self.fs, &self.dir, upto.0, next_segment, snapshot)?;
        *sync::lock(&self.shared.snapshot) = Some(SnapshotFile {
            upto: upto.0,
            next_segment,
            bytes,
        });
        self.remove_covered(next_segment, old)
    }

    /// Removes the segments below `next_segment` (oldest first) and the replaced snapshot.
    fn remove_covered(&self, next_segment: u64, old: Option<SnapshotFile>) -> Result<()> {
        let covered: Vec<u64> = sync::lock(&self.shared.segments)
            .iter()
            .map(|s| s.number)
            .filter(|&n| n < next_segment)
            .collect();
        for number in covered {
            let path = format::segment_path(&self.dir, number);
            self.fs
                .remove(&path)
                .map_err(|e| with_path(e, "cannot remove log segment", &path))?;
            sync::lock(&self.shared.segments).retain(|s| s.number != number);
        }
        if let Some(old) = old {
            let path = format::snapshot_path(&self.dir, old.upto);
            self.fs
                .remove(&path)
                .map_err(|e| with_path(e, "cannot remove the old log snapshot", &path))?;
        }
        self.fs
            .sync_dir(&self.dir)
            .map_err(|e| with_path(e, "cannot fsync the log directory", &self.dir))
    }

    /// Sizes and counters, for deciding when to compact (log bytes against live state).
    pub(crate) fn stats(&self) -> WalStats {
        let (segments, segment_bytes) = {
            let segs = sync::lock(&self.shared.segments);
            let n = u64::try_from(segs.len()).unwrap_or(u64::MAX);
            (n, segs.iter().map(|s| s.bytes).sum())
        };
        let snapshot = *sync::lock(&self.shared.snapshot);
        WalStats {
            segments,
            segment_bytes,
            snapshot_bytes: snapshot.map_or(0, |s| s.bytes),
            snapshot_upto: Lsn(snapshot.map_or(0, |s| s.upto)),
            next_lsn: Lsn(self.shared.next_lsn.load(Ordering::Relaxed)),
            writes: self.shared.writes.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
        }
    }

    /// Fsyncs whatever is pending, stops the writer thread and releases the lock file. Later
    /// appends and compactions fail with [`Error::Stopped`]. Idempotent (a second call
    /// returns `Ok` at once).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the final fsync failed, or the writer had already failed.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, answer) = oneshot();
        let result = match self.tx.send(Request::Close { reply }) {
            Ok(()) => answer.wait(),
            Err(_) => Ok(()),
        };
        if let Some(handle) = sync::lock(&self.writer).take() {
            let _ = handle.join();
        }
        let _no_compaction = sync::lock(&self.compaction);
        drop(sync::lock(&self.lock).take());
        result
    }

    /// Appends waiting in the writer's queue (tests watch group commit with it).
    #[cfg(all(test, not(lessor_loom)))]
    pub(crate) fn queued(&self) -> usize {
        self.tx.len()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Creates `dir` if needed and takes its lock file.
fn lock_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Box<dyn FileLock>> {
    fs.create_dir_all(dir)
        .map_err(|e| with_path(e, "cannot create the log directory", dir))?;
    let path = dir.join(LOCK_FILE);
    fs.lock(&path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            Error::LogLocked {
                dir: dir.to_path_buf(),
            }
        } else {
            with_path(e, "cannot take the log's lock file", &path)
        }
    })
}

/// The segment the writer starts on, preallocated to `reserve` bytes, and every live segment
/// (it included). The last segment is reused if it holds nothing yet (so that restarts
/// without appends do not pile up empty segments); otherwise a new one is made.
fn start_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    replay: &Replay,
    reserve: u64,
) -> Result<(Active, Vec<LiveSegment>)> {
    let mut segments: Vec<LiveSegment> = replay
        .segments
        .iter()
        .map(|s| LiveSegment {
            number: s.number,
            first_lsn: s.first_lsn,
            bytes: s.bytes,
        })
        .collect();
    let reusable = replay.torn.is_none()
        && segments
            .last()
            .is_some_and(|s| s.bytes == segment::header_len() && s.first_lsn == replay.next_lsn);
    if reusable {
        let number = replay.next_segment - 1;
        let path = format::segment_path(dir, number);
        let active = segment::reopen_empty(fs, dir, number, reserve)
            .map_err(|e| with_path(e, "cannot reopen log segment", &path))?;
        return Ok((active, segments));
    }
    let active = segment::create(fs, dir, replay.next_segment, replay.next_lsn, reserve)
        .map_err(|e| Error::Io(e.error))?;
    segments.push(LiveSegment {
        number: active.number,
        first_lsn: replay.next_lsn,
        bytes: active.len,
    });
    Ok((active, segments))
}

/// Makes the directory match what `replay` read: the snapshot's name made durable before
/// anything it replaces is removed, the torn tail or the unused preallocated zeros cut (and
/// fsynced), stale files removed.
/// The directory fsync that follows is the new segment's.
fn repair(fs: &dyn FileSystem, dir: &Path, replay: &Replay) -> Result<()> {
    let sync_dir = || {
        fs.sync_dir(dir)
            .map_err(|e| with_path(e, "cannot fsync the log directory", dir))
    };
    if replay.snapshot.is_some() && !replay.stale.is_empty() {
        sync_dir()?;
    }
    if let Some(torn) = replay.torn {
        let path = format::segment_path(dir, torn.segment);
        let cut = if torn.whole_file {
            fs.remove(&path)
        } else {
            fs.open_append(&path).and_then(|mut f| {
                f.truncate(torn.offset)?;
                f.sync()
            })
        };
        cut.map_err(|e| with_path(e, "cannot cut the torn tail of log segment", &path))?;
    }
    // A segment with records is sealed now (the writer starts a new one): give its unused
    // space back, so that zeros stay at the end of the active segment only. A header-only
    // segment is reused, and `segment::reopen_empty` cuts and preallocates it itself.
    if let Some(unused) = replay.unused.filter(|u| u.offset > segment::header_len()) {
        let path = format::segment_path(dir, unused.segment);
        fs.open_append(&path)
            .and_then(|mut f| {
                f.truncate(unused.offset)?;
                f.sync()
            })
            .map_err(|e| with_path(e, "cannot cut the unused space of log segment", &path))?;
    }
    for path in &replay.stale {
        fs.remove(path)
            .map_err(|e| with_path(e, "cannot remove stale log file", path))?;
    }
    Ok(())
}
