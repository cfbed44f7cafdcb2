//! The writer thread: group commit, fsync policy, rotation, and rolling back a failed group.
//!
//! # Ground rules
//!
//! - The writer thread owns the active segment, the next lsn and the write buffer; no other
//!   thread touches them. Callers encode their records on their own thread and send the bytes
//!   in a [`Request`] over an unbounded channel; each then waits on its own one-shot
//!   [`Reply`] slot. Every request is answered exactly once (a dropped one answers
//!   `Error::Stopped`).
//! - **Group commit.** The writer blocks for one request, then takes every append already
//!   queued (up to [`MAX_GROUP_BYTES`]) without waiting: they go out in one write and, under
//!   [`FsyncPolicy::Always`], one fsync. While that fsync runs, the next group queues up.
//!   Lsns are handed out in queue order, only once a group has succeeded.
//! - **Failure.** If the write or the fsync of a group fails, every caller in it gets
//!   `Error::Io`; the segment is cut back to where the group began and fsynced, so the failed
//!   records never come back on a later open, and the writer goes on. If that rollback fails
//!   too, or an fsync fails that covered writes already acknowledged (`Interval`, `Never`, or a
//!   seal before rotation), the writer is *failed*: every later append gets `Error::Io` until
//!   the log is reopened (whatever reached the disk is then replayed; a torn tail is cut).
//! - **Rotation.** Once the active segment reaches `segment_bytes`, it is cut to its records
//!   (giving back preallocated space it did not use), fsynced (sealed), and the next one is
//!   created (header, preallocation to `segment_bytes`, fsync, directory fsync), so only the
//!   last segment can ever have a torn tail. A failed rotation leaves the writer on the old
//!   segment and is retried after the next group.
//! - [`Shared`] is the writer's window to the handle: `segments` (mutex; the writer pushes the
//!   new active segment and updates its size, compaction removes covered ones from the front),
//!   and counters (relaxed atomics: statistics only, never used to order anything).

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::fs::FileSystem;
use super::options::{FsyncPolicy, Lsn};
use super::reader::SnapshotFile;
use super::reply::Reply;
use super::segment::{self, Active};
use super::sync::{self, Arc, AtomicU64, Mutex, Ordering};
use super::{Clock, Error, Result, SystemClock};

/// The most bytes one group commit gathers (a single larger append still goes alone).
pub(crate) const MAX_GROUP_BYTES: usize = 4 << 20;

/// A message to the writer thread.
#[derive(Debug)]
pub(crate) enum Request {
    /// Append these encoded frames (`records` of them); reply with the lsn past the last.
    Append {
        /// Framed records.
        bytes: Vec<u8>,
        /// How many records `bytes` holds.
        records: u64,
        /// Where the answer goes.
        reply: Reply<Lsn>,
    },
    /// Start a new segment if the active one has records; reply with the boundary lsn.
    Rotate {
        /// Where the answer goes.
        reply: Reply<Lsn>,
    },
    /// Sync what is pending and stop.
    Close {
        /// Where the answer goes.
        reply: Reply<()>,
    },
}

/// A live segment, as the handle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveSegment {
    /// Its number.
    pub(crate) number: u64,
    /// The lsn of its first record.
    pub(crate) first_lsn: u64,
    /// Its size in bytes.
    pub(crate) bytes: u64,
}

/// State the writer shares with the handle and compaction (see the ground rules).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Live segments, oldest first; the last one is the active segment.
    pub(crate) segments: Mutex<Vec<LiveSegment>>,
    /// The snapshot in place, if any.
    pub(crate) snapshot: Mutex<Option<SnapshotFile>>,
    /// The lsn the next record gets.
    pub(crate) next_lsn: AtomicU64,
    /// Group writes since open.
    pub(crate) writes: AtomicU64,
    /// Segment fsyncs since open.
    pub(crate) fsyncs: AtomicU64,
}

/// Why the writer refuses every write.
#[derive(Debug)]
struct Failed {
    kind: io::ErrorKind,
    message: String,
}

impl Failed {
    fn error(&self) -> Error {
        Error::Io(io::Error::new(
            self.kind,
            format!(
                "the log refuses writes after an earlier failure ({}): reopen it",
                self.message
            ),
        ))
    }
}

/// One caller's append inside a group.
#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    records: u64,
    reply: Reply<Lsn>,
}

/// The writer thread's state.
#[derive(Debug)]
pub(crate) struct Writer {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_bytes: u64,
    active: Active,
    next_lsn: u64,
    /// When the oldest write not yet fsynced went out (`Interval` only).
    unsynced_since: Option<Instant>,
    failed: Option<Failed>,
    shared: Arc<Shared>,
    group: Vec<Pending>,
    buf: Vec<u8>,
}

/// When the log must next be fsynced under `policy`, given when the oldest unsynced write
/// went out. `None`: no timed sync is due.
pub(crate) fn sync_deadline(
    policy: FsyncPolicy,
    unsynced_since: Option<Instant>,
) -> Option<Instant> {
    match (policy, unsynced_since) {
        (FsyncPolicy::Interval(d), Some(t)) => t.checked_add(d),
        _ => None,
    }
}

impl Writer {
    /// A writer appending to `active`, whose next record gets `next_lsn`.
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        policy: FsyncPolicy,
        segment_bytes: u64,
        active: Active,
        next_lsn: u64,
        shared: Arc<Shared>,
    ) -> Self {
        Writer {
            fs,
            dir,
            policy,
            segment_bytes,
            active,
            next_lsn,
            unsynced_since: None,
            failed: None,
            shared,
            group: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The thread's loop: runs until closed or until every sender is gone.
    pub(crate) fn run(mut self, rx: &Receiver<Request>) {
        let mut next = None;
        loop {
            let Some(req) = next.take().or_else(|| self.wait(rx)) else {
                let _ = self.finish();
                return;
            };
            match req {
                Request::Append {
                    bytes,
                    records,
                    reply,
                } => {
                    self.group.push(Pending {
                        bytes,
                        records,
                        reply,
                    });
                    next = self.gather(rx);
                    self.commit();
                }
                Request::Rotate { reply } => reply.send(self.rotate_for_compaction()),
                Request::Close { reply } => {
                    reply.send(self.finish());
                    // Anything still queued came in after close: dropping a request answers
                    // its caller with `Error::Stopped`.
                    while rx.try_recv().is_ok() {}
                    return;
                }
            }
        }
    }

    /// Adds every append already queued to the group, without waiting, up to
    /// [`MAX_GROUP_BYTES`]. Returns the first other request met (it is served next).
    fn gather(&mut self, rx: &Receiver<Request>) -> Option<Request> {
        let mut size: usize = self.group.iter().map(|p| p.bytes.len()).sum();
        while size < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(Request::Append {
                    bytes,
                    records,
                    reply,
                }) => {
                    size += bytes.len();
                    self.group.push(Pending {
                        bytes,
                        records,
                        reply,
                    });
                }
                Ok(other) => return Some(other),
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits for the next request, running timed fsyncs meanwhile. `None` once every sender
    /// is gone.
    fn wait(&mut self, rx: &Receiver<Request>) -> Option<Request> {
        loop {
            let Some(deadline) = sync_deadline(self.policy, self.unsynced_since) else {
                return rx.recv().ok();
            };
            match rx.recv_deadline(deadline) {
                Ok(req) => return Some(req),
                Err(RecvTimeoutError::Timeout) => self.sync_acknowledged(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Writes the gathered group, fsyncs it per the policy and answers every caller in it.
    fn commit(&mut self) {
        if let Some(failed) = &self.failed {
            for p in self.group.drain(..) {
                p.reply.send(Err(failed.error()));
            }
            return;
        }
        let start = self.active.len;
        match self.write_group() {
            Ok(()) => {
                let mut lsn = self.next_lsn;
                let ends: Vec<u64> = self
                    .group
                    .iter()
                    .map(|p| {
                        lsn += p.records;
                        lsn
                    })
                    .collect();
                self.next_lsn = lsn;
                self.publish();
                for (p, end) in self.group.drain(..).zip(ends) {
                    p.reply.send(Ok(Lsn(end)));
                }
                if self.active.len >= self.segment_bytes {
                    // A failure is retried after the next group (or has failed the writer).
                    let _ = self.rotate();
                }
            }
            Err(e) => {
                self.roll_back(start, &e);
                self.publish();
                for p in self.group.drain(..) {
                    p.reply.send(Err(Error::Io(io::Error::new(
                        e.kind(),
                        format!("log write failed: {e}"),
                    ))));
                }
            }
        }
    }

    /// One write of the whole group, then the policy's fsync.
    fn write_group(&mut self) -> io::Result<()> {
        let total: usize = self.group.iter().map(|p| p.bytes.len()).sum();
        if total > 0 {
            let data: &[u8] = if let [one] = self.group.as_slice() {
                &one.bytes
            } else {
                self.buf.clear();
                for p in &self.group {
                    self.buf.extend_from_slice(&p.bytes);
                }
                &self.buf
            };
            self.active.file.append(data)?;
            self.active.len += u64::try_from(total).unwrap_or(u64::MAX);
            self.shared.writes.fetch_add(1, Ordering::Relaxed);
        }
        if self.active.len == self.active.synced {
            return Ok(());
        }
        match self.policy {
            FsyncPolicy::Always => self.sync_active(),
            FsyncPolicy::Interval(d) => {
                let now = SystemClock.now();
                let since = *self.unsynced_since.get_or_insert(now);
                if since.checked_add(d).is_some_and(|due| now >= due) {
                    // Also covers earlier, acknowledged writes: a failure here is fatal.
                    self.sync_acknowledged();
                }
                Ok(())
            }
            FsyncPolicy::Never => Ok(()),
        }
    }

    fn sync_active(&mut self) -> io::Result<()> {
        self.active.file.sync()?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.active.synced = self.active.len;
        self.unsynced_since = None;
        Ok(())
    }

    /// Fsyncs writes whose callers were already answered; a failure fails the writer.
    fn sync_acknowledged(&mut self) {
        if self.active.len == self.active.synced {
            self.unsynced_since = None;
            return;
        }
        if let Err(e) = self.sync_active() {
            self.unsynced_since = None;
            self.fail(&e, "an fsync of acknowledged writes failed");
        }
    }

    /// Cuts the active segment back to `start` after a failed group, and fsyncs the cut.
    fn roll_back(&mut self, start: u64, cause: &io::Error) {
        let undo = self
            .active
            .file
            .truncate(start)
            .and_then(|()| self.active.file.sync());
        match undo {
            Ok(()) => {
                // Everything before `start` is durable now, whatever the policy; the cut gave
                // back the preallocated space too.
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.active.reserved = false;
                self.active.len = start;
                self.active.synced = start;
                self.unsynced_since = None;
            }
            Err(e) => self.fail(&e, &format!("rolling back after `{cause}` failed")),
        }
    }

    fn fail(&mut self, e: &io::Error, what: &str) {
        if self.failed.is_none() {
            self.failed = Some(Failed {
                kind: e.kind(),
                message: format!("{what}: {e}"),
            });
        }
    }

    /// Seals the active segment and starts the next one. On failure the writer stays on the
    /// active segment (and tries again after the next group), unless a half-made file could
    /// not be removed, which fails the writer.
    fn rotate(&mut self) -> io::Result<()> {
        // The unused preallocated zeros would read as the segment's end anyway; cutting them
        // is tidiness, so a failed cut is not a failed seal. The seal's fsync makes it durable.
        let cut = self.active.reserved && self.active.file.truncate(self.active.len).is_ok();
        if cut {
            self.active.reserved = false;
        }
        if cut || self.active.len > self.active.synced {
            if let Err(e) = self.sync_active() {
                self.fail(&e, "sealing a segment failed");
                return Err(e);
            }
        }
        let number = self.active.number + 1;
        match segment::create(
            &*self.fs,
            &self.dir,
            number,
            self.next_lsn,
            self.segment_bytes,
        ) {
            Ok(active) => {
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.active = active;
                sync::lock(&self.shared.segments).push(LiveSegment {
                    number,
                    first_lsn: self.next_lsn,
                    bytes: self.active.len,
                });
                Ok(())
            }
            Err(e) => {
                if !e.cleaned_up {
                    self.fail(&e.error, "a half-made segment could not be removed");
                }
                Err(e.error)
            }
        }
    }

    /// Starts a new segment unless the active one is still empty; returns the boundary: every
    /// record below it is in an older, sealed segment.
    fn rotate_for_compaction(&mut self) -> Result<Lsn> {
        if let Some(failed) = &self.failed {
            return Err(failed.error());
        }
        if self.active.has_records() {
            self.rotate().map_err(Error::Io)?;
        }
        Ok(Lsn(self.next_lsn))
    }

    /// Fsyncs whatever is pending (under every policy) before the thread stops.
    fn finish(&mut self) -> Result<()> {
        if let Some(failed) = &self.failed {
            return Err(failed.error());
        }
        if self.active.len > self.active.synced {
            self.sync_active().map_err(|e| {
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("the final log fsync failed: {e}"),
                ))
            })?;
        }
        Ok(())
    }

    /// Publishes the next lsn and the active segment's size.
    fn publish(&self) {
        self.shared.next_lsn.store(self.next_lsn, Ordering::Relaxed);
        if let Some(last) = sync::lock(&self.shared.segments).last_mut() {
            if last.number == self.active.number {
                last.bytes = self.active.len;
            }
        }
    }
}
