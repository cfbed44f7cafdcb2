//! The lessor's side of the write-ahead log: what each change logs, the replay at open, and
//! compaction (checkpoints are in `checkpoint.rs`).
//!
//! # Ground rules
//!
//! - Every change to a lease is logged *before* it is applied, while the stripes of every lease
//!   it touches are held, so the log's order of changes to one lease is the order memory saw.
//!   A grant holds its id in the map as a not-yet-visible record (the state word's `SPECIAL`
//!   bit) while its record is made durable, so a second grant of the id sees it and nothing
//!   else does.
//! - If the log refuses a record (a failed write or fsync, a full disk), the caller gets the
//!   error and memory is left as it was.
//! - Compaction takes every stripe (in order) around `begin_compaction`: once it holds them,
//!   every change logged before the boundary has also been applied, so a snapshot read from
//!   memory afterwards covers everything the segments it replaces held. Changes made after the
//!   boundary may show in the snapshot too; replay is idempotent (a grant of a lease that
//!   exists, a revoke or detach of one that does not, are no-ops), so applying them again from
//!   the newer segment gives the same state.
//! - Renewals are logged only when they clear a checkpoint: the first renew after a checkpoint
//!   logs its clearing (a checkpoint of 0) before it returns, so a restart does not resurrect
//!   a stale one. That is the one change applied before it is logged: the renew's swap clears
//!   the state word's bit at once, and memory keeps the logged value until the clearing is
//!   logged (`checkpoint.rs` has the protocol; the snapshot writes the logged value).
//! - The snapshot lists leases in grant order (each record's `seq`; `snapshot.rs`), and replay
//!   numbers grants in log order, so ties in `leases()` keep their order across a compaction
//!   and a reopen. Leases granted after the boundary are left to the segments after it, which
//!   hold their grants in order. The key-value store's records come after every lease's.

use std::path::PathBuf;
use std::time::Duration;

use super::Inner;
use crate::error::{Error, Result};
use crate::lease::{LeaseId, LeaseRecord, FOREVER};
use crate::sync::{self, AtomicU64, Ordering};
use crate::wal::{Record, Wal};

/// The log and the durability settings of a lessor built with a data directory.
pub(crate) struct Durable {
    pub(crate) wal: Wal,
    pub(crate) dir: PathBuf,
    /// Compact once the segments hold at least this many bytes and twice the live state.
    pub(crate) compact_min_bytes: u64,
    /// Leases with a TTL at least this long get their remaining TTL checkpointed this often;
    /// `None`: no checkpoints.
    pub(crate) checkpoint_interval: Option<Duration>,
    /// At most this many checkpoints a second.
    pub(crate) checkpoint_rate: u32,
    /// When the next checkpoint pass is due (engine ms).
    pub(crate) next_checkpoint_ms: AtomicU64,
    /// Bytes of the last snapshot written, the estimate of the live state.
    pub(crate) live_bytes: AtomicU64,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What opening a data directory found.
///
/// # Examples
///
/// ```
/// use lessor::{LeaseId, Lessor};
/// use std::time::Duration;
///
/// let dir = std::env::temp_dir().join(format!("lessor-doc-recovery-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// {
///     let lessor = Lessor::builder().data_dir(&dir).build()?;
///     lessor.grant(LeaseId::new(-7), Duration::from_secs(60))?;
/// }
/// let lessor = Lessor::builder().data_dir(&dir).build()?;
/// let recovery = lessor.recovery().expect("built with a data directory");
/// assert_eq!(recovery.leases, 1);
/// assert!(lessor.lookup(LeaseId::new(-7)).is_some());
/// # drop(lessor); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records read back from the snapshot and the segments.
    pub records: usize,
    /// Leases rebuilt.
    pub leases: usize,
    /// Keys attached to them.
    pub keys: usize,
    /// Keys in the key-value store (0 without one).
    pub store_keys: usize,
    /// A torn tail cut off the last segment: (segment, offset, bytes cut).
    pub truncated_tail: Option<(u64, u64, u64)>,
}

impl Inner {
    /// Logs `records` if this lessor has a log; the caller holds the stripes of every lease
    /// they name. Without a log this is free: the closure is never called.
    pub(crate) fn log(&self, records: impl FnOnce() -> Vec<Record>) -> Result<()> {
        match &self.durable {
            None => Ok(()),
            Some(d) => d.wal.append(&records()).map(drop),
        }
    }

    /// Rebuilds leases and attachments from the log's records (the lessor is not primary yet:
    /// every lease gets its deadline from the promote that follows). Key-value records go to
    /// the store; a lessor without one refuses a directory that has them.
    pub(crate) fn replay(&self, records: &[Record]) -> Result<()> {
        for record in records {
            match record {
                Record::Grant { id, ttl_ms } => self.replay_grant(LeaseId::new(*id), *ttl_ms),
                Record::Revoke { id } => {
                    let id = LeaseId::new(*id);
                    let h = self.hash_id(id);
                    let removed = self.leases.write(self.leases.index(h), |s| s.remove(h, id));
                    if let Some((_, extra)) = removed {
                        self.release_keys(id, &extra.keys);
                        let keys: Vec<_> = extra.keys.into_iter().collect();
                        if let Some(mut state) = self.store_for_revoke(!keys.is_empty()) {
                            self.store_revoke_keys(&mut state, &keys);
                        }
                    }
                }
                Record::Attach { id, keys } => match self.attach_applied(LeaseId::new(*id), keys) {
                    Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                    Err(e) => return Err(e),
                },
                Record::Detach { id, keys } => match self.detach_applied(LeaseId::new(*id), keys) {
                    Ok(()) | Err(Error::LeaseNotFound { .. }) => {}
                    Err(e) => return Err(e),
                },
                Record::Checkpoint { id, remaining_ms } => {
                    self.apply_checkpoint(LeaseId::new(*id), *remaining_ms);
                }
                Record::Put { .. }
                | Record::DeleteRange { .. }
                | Record::StoreEntry { .. }
                | Record::StoreRevision { .. } => {
                    if self.store.is_none() {
                        return Err(Error::InvalidConfig {
                            field: "key_value_store",
                            reason: "the data directory holds key-value records: open it \
                                     with key_value_store(true) so they are not lost",
                        });
                    }
                    self.replay_store(record)?;
                }
            }
        }
        Ok(())
    }

    fn replay_grant(&self, id: LeaseId, ttl_ms: u64) {
        let h = self.hash_id(id);
        let idx = self.leases.index(h);
        self.leases.write(idx, |s| {
            if s.get(h, id).is_none() {
                let seq = self.next_seq();
                let rec = LeaseRecord {
                    state: AtomicU64::new(FOREVER),
                    ttl_ms,
                    seq,
                };
                s.insert_new(self.insert_ctx(idx), h, id, rec);
            }
        });
    }

    /// Compacts the log if its segments have outgrown the live state. Returns whether it did.
    pub(crate) fn maybe_compact(&self) -> Result<bool> {
        let Some(d) = &self.durable else {
            return Ok(false);
        };
        let stats = d.wal.stats();
        let live = d.live_bytes.load(Ordering::Relaxed).max(
            u64::try_from(self.len())
                .unwrap_or(u64::MAX)
                .saturating_mul(24),
        );
        if stats.segment_bytes < d.compact_min_bytes.max(live.saturating_mul(2)) {
            return Ok(false);
        }
        self.compact().map(|_| true)
    }

    /// Replaces the log's segments by a snapshot of the live state.
    pub(crate) fn compact(&self) -> Result<()> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        // Lock order: stripes, then the store (lessor/store.rs). The store stays locked
        // (shared) through the snapshot, so its keys and their leases are one consistent cut:
        // no store change is in flight, and none of those that follow shows in it.
        let (upto, granted_before, store) = {
            let _quiet = self.lock_all_stripes();
            let store = self.store.as_ref().map(|s| sync::read(&s.state));
            let upto = d.wal.begin_compaction()?;
            // A logged grant takes its number under its stripe: every grant numbered below
            // this one was logged before the boundary, every later one after it.
            (upto, self.next_seq.load(Ordering::Relaxed), store)
        };
        let leases = self.snapshot_leases(granted_before);
        let store_records = store.as_deref().map(|state| self.snapshot_store(state));
        let records = leases.chain(store_records.into_iter().flatten());
        d.wal.finish_compaction(upto, records)?;
        drop(store);
        d.live_bytes
            .store(d.wal.stats().snapshot_bytes, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    //! The engine over a failing file system: a refused record leaves memory as it was, and
    //! nothing acknowledged is lost.

    use std::path::Path;
    use std::time::Duration;

    use crate::wal::fake::{FailingFs, MemFs, Op};
    use crate::wal::{shared_fs, FileSystem};
    use crate::{Error, LeaseId, Lessor, ManualClock};

    fn open(fs: &FailingFs) -> Lessor {
        Lessor::builder()
            .clock(ManualClock::new())
            .min_ttl(Duration::from_millis(1))
            .expiry_thread(false)
            .data_dir(Path::new("/data"))
            .file_system(shared_fs(fs.clone()))
            .build()
            .expect("opens")
    }

    fn id(n: i64) -> LeaseId {
        LeaseId::new(n)
    }

    #[test]
    fn a_failed_write_or_fsync_fails_the_call_and_changes_nothing() {
        let mem = MemFs::new();
        let fs = FailingFs::new(mem.clone());
        let l = open(&fs);
        l.grant(id(1), Duration::from_secs(10)).unwrap();
        l.attach(id(1), ["a"]).unwrap();

        fs.fail_nth(Op::Write, 1);
        assert!(matches!(
            l.grant(id(2), Duration::from_secs(10)),
            Err(Error::Io(_))
        ));
        assert!(l.lookup(id(2)).is_none(), "a refused grant leaves no lease");
        fs.fail_nth(Op::Sync, 1);
        assert!(matches!(l.revoke(id(1)), Err(Error::Io(_))));
        assert!(
            l.lookup(id(1)).is_some(),
            "a refused revoke leaves the lease"
        );
        fs.fail_nth(Op::Write, 1);
        assert!(matches!(l.attach(id(1), ["b"]), Err(Error::Io(_))));
        assert_eq!(l.get_lease("b"), LeaseId::NONE);
        fs.fail_nth(Op::Write, 1);
        assert!(matches!(l.detach(id(1), ["a"]), Err(Error::Io(_))));
        assert_eq!(l.get_lease("a"), id(1));
        fs.set_disk_full(true);
        assert!(l.grant(id(3), Duration::from_secs(10)).is_err());
        fs.set_disk_full(false);
        l.grant(id(4), Duration::from_secs(10)).unwrap();
        assert_eq!(l.check_invariants(), Ok(()));
        drop(l);

        // Everything acknowledged is there after a crash (only synced bytes survive).
        let after = FailingFs::new(mem.crashed());
        let l = open(&after);
        assert!(l.lookup(id(1)).is_some());
        assert_eq!(l.get_lease("a"), id(1));
        assert_eq!(l.get_lease("b"), LeaseId::NONE);
        assert!(l.lookup(id(2)).is_none());
        assert!(l.lookup(id(3)).is_none());
        assert!(l.lookup(id(4)).is_some());
    }

    #[test]
    fn grants_revokes_and_keys_survive_a_crash_and_compaction() {
        let mem = MemFs::new();
        let fs = FailingFs::new(mem.clone());
        let l = Lessor::builder()
            .clock(ManualClock::new())
            .min_ttl(Duration::from_millis(1))
            .expiry_thread(false)
            .data_dir(Path::new("/data"))
            .log_sizes(4096, 8192)
            .file_system(shared_fs(fs.clone()))
            .build()
            .unwrap();
        for round in 0..40i64 {
            for n in 0..50 {
                let lease = id(round * 50 + n);
                if lease.is_none() {
                    continue;
                }
                l.grant(lease, Duration::from_secs(60)).unwrap();
                l.attach(lease, [format!("k{}", n % 7)]).unwrap();
                if n % 3 != 0 {
                    l.revoke(lease).unwrap();
                }
            }
            l.run_maintenance_once().unwrap();
        }
        let dir = Path::new("/data");
        let bytes: usize = mem
            .list(dir)
            .unwrap()
            .iter()
            .map(|name| mem.read(&dir.join(name)).map_or(0, |b| b.len()))
            .sum();
        let leases: Vec<(LeaseId, Vec<Vec<u8>>)> = l
            .leases()
            .into_iter()
            .map(|x| (x.id(), x.keys().to_vec()))
            .collect();
        drop(l);
        let l = open(&FailingFs::new(mem.crashed()));
        let again: Vec<(LeaseId, Vec<Vec<u8>>)> = l
            .leases()
            .into_iter()
            .map(|x| (x.id(), x.keys().to_vec()))
            .collect();
        let mut a = leases.clone();
        let mut b = again;
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(
            bytes < 200_000,
            "the log stays bounded under churn: {bytes} bytes"
        );
    }
}
