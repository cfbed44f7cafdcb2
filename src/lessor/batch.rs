//! Grants in a batch: one log append (so one fsync with `FsyncPolicy::Always`) for many
//! grants, for callers that gather requests, such as the server.
//!
//! # Ground rules
//!
//! - Each grant in the batch is checked and applied exactly as [`Lessor::grant`] would do it
//!   alone (etcd's order of checks; an id already granted, earlier in the same batch
//!   included, is refused with `LeaseExists`).
//! - With a log, the stripes of every lease in the batch are taken (ascending, each once, as
//!   `lock_stripes` does) for the whole call, the batch's ids are held by not-yet-visible
//!   records while their `Grant` records are appended together, and then published. So the
//!   log still sees every change to a lease under that lease's stripe, and compaction (which
//!   takes every stripe) still finds each grant either logged and applied or not logged.
//! - If the log refuses the append, no lease of the batch is granted, and the call's error
//!   says why; refusals of single grants are per grant.
//! - Revokes in a batch ([`Lessor::revoke_many`]) take the stripes of every lease in the
//!   batch the same way, for the whole call. Under them the live leases without keys (or all
//!   of them, without a key-value store) are logged with one append, then removed one by one
//!   as `revoke` removes a lease, each with its own range-deleter transaction. A lease with
//!   keys in a lessor with a store is revoked alone once the stripes are let go: its keys
//!   leave the store at a revision of their own, under the store lock, as `revoke` does.
//! - Renews in a batch ([`Lessor::renew_many`]) are `renew`'s swap, with the running and
//!   primary checks done once and the clock read once per chunk of [`CHUNK`] renews.
//!   A chunk's renews are sorted by shard (then by their place in the batch), and each
//!   shard's share of the chunk runs under one shared lock of that shard: one shard lock at a
//!   time, as `renew`, held for at most [`CHUNK`] lookups and swaps. Under it every lookup
//!   comes first, then every swap: with no locked instruction between the lookups, their cache
//!   misses overlap. The same id twice is renewed twice. Checkpoints that the swaps cleared
//!   are logged after the last swap, each under its lease's stripe, as `renew` logs one.

use std::time::Duration;

use hashbrown::HashSet;

use super::lifecycle::renew_record;
use super::{Inner, Lessor};
use crate::error::{Error, Result};
use crate::lease::{Lease, LeaseId, LeaseRecord, SPECIAL};
use crate::sync::Ordering;
use crate::wal::Record;

impl Lessor {
    /// Grants every `(id, ttl)` of `grants` with one log append: with a data directory and
    /// `FsyncPolicy::Always`, one fsync for the whole batch instead of one each. Returns each
    /// grant's own outcome, in order, as [`grant`](Self::grant) would have.
    ///
    /// # Errors
    ///
    /// The outer error when nothing could be granted: [`Error::Stopped`], or the log's error
    /// when it refused the batch's records. Inner errors are per grant:
    /// [`Error::LeaseNotFound`] for id 0, [`Error::TtlTooLarge`], [`Error::LeaseExists`].
    ///
    /// **Locking:** the stripes of every lease in the batch (ascending), held while the batch
    /// is made durable; one exclusive shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// let ttl = Duration::from_secs(60);
    /// let done = lessor.grant_many(&[(LeaseId::new(1), ttl), (LeaseId::new(1), ttl), (LeaseId::NONE, ttl)])?;
    /// assert!(done[0].is_ok());
    /// assert!(matches!(done[1], Err(Error::LeaseExists { .. })));
    /// assert!(matches!(done[2], Err(Error::LeaseNotFound { .. })));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn grant_many(&self, grants: &[(LeaseId, Duration)]) -> Result<Vec<Result<Lease>>> {
        self.inner.check_running()?;
        if self.inner.durable.is_none() {
            return Ok(grants
                .iter()
                .map(|&(id, ttl)| self.inner.grant(id, ttl))
                .collect());
        }
        self.inner.grant_many_logged(grants)
    }

    /// Revokes every lease of `ids`, logging those without keys with one append: with a data
    /// directory and `FsyncPolicy::Always`, one fsync for all of them instead of one each.
    /// Returns each revoke's own outcome, in order, as [`revoke`](Self::revoke) would have;
    /// an id that comes twice is revoked once, and the second gets `LeaseNotFound`.
    ///
    /// # Errors
    ///
    /// The outer error when nothing was revoked: [`Error::Stopped`], or the log's error when
    /// it refused the batch's records. Inner errors are per revoke: [`Error::LeaseNotFound`],
    /// or the log's error for a lease with keys, which is revoked alone.
    ///
    /// **Locking:** the stripes of every lease in the batch (ascending) while the leases
    /// without keys are made durable and removed; a lease with keys in a lessor with a
    /// key-value store then takes its stripe and the store lock, as `revoke` does.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// let (a, b) = (LeaseId::new(1), LeaseId::new(2));
    /// lessor.grant(a, Duration::from_secs(60))?;
    /// lessor.grant(b, Duration::from_secs(60))?;
    /// lessor.attach(b, [&b"session/b"[..]])?;
    /// let done = lessor.revoke_many(&[a, b, a, LeaseId::new(3)])?;
    /// assert!(done[0].is_ok() && done[1].is_ok());
    /// assert!(matches!(done[2], Err(Error::LeaseNotFound { .. }))); // a is gone already
    /// assert!(matches!(done[3], Err(Error::LeaseNotFound { .. })));
    /// assert!(lessor.get_lease(b"session/b").is_none());
    /// assert!(lessor.leases().is_empty());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn revoke_many(&self, ids: &[LeaseId]) -> Result<Vec<Result<()>>> {
        self.inner.check_running()?;
        self.inner.revoke_many(ids)
    }

    /// Renews every lease of `ids`, in order. Returns each renew's own outcome, as
    /// [`renew`](Self::renew) would have: the granted TTL, or why not. An id that comes twice
    /// is renewed twice. For callers that renew many sessions at once: the checks that do not
    /// depend on the lease run once, the clock is read once per 256 renews (each deadline
    /// still starts no earlier than its own renew, within the clock's usual margin), and the
    /// renews of one shard among those 256 share one lock and look their leases up together.
    ///
    /// # Errors
    ///
    /// The outer error when nothing could be renewed: [`Error::Stopped`], or
    /// [`Error::NotPrimary`]. Inner errors are per renew, as `renew`'s:
    /// [`Error::LeaseNotFound`], [`Error::LeaseExpired`], [`Error::NotPrimary`] for a lease
    /// granted while not primary and not yet promoted, and the log's error when it refuses the
    /// clearing of a checkpoint.
    ///
    /// **Locking:** one shared shard lock at a time, for that shard's renews among each 256,
    /// and one compare-and-swap per renew; no allocation but the answer, no log write unless
    /// a renew clears a checkpoint.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor, ManualClock, Remaining};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder().clock(clock.clone()).build()?;
    /// let (a, b) = (LeaseId::new(1), LeaseId::new(2));
    /// lessor.grant(a, Duration::from_secs(10))?;
    /// lessor.grant(b, Duration::from_secs(30))?;
    /// clock.advance(Duration::from_secs(8));
    /// let done = lessor.renew_many(&[a, b, LeaseId::new(3)])?;
    /// assert_eq!(done[0].as_ref().ok(), Some(&Duration::from_secs(10)));
    /// assert_eq!(done[1].as_ref().ok(), Some(&Duration::from_secs(30)));
    /// assert!(matches!(done[2], Err(Error::LeaseNotFound { .. })));
    /// assert_eq!(lessor.lookup(a).unwrap().remaining(), Remaining::Left(Duration::from_secs(10)));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn renew_many(&self, ids: &[LeaseId]) -> Result<Vec<Result<Duration>>> {
        self.inner.renew_many(ids)
    }
}

/// How many renews of a batch share one clock reading and one sort by shard. A reading costs
/// a few tens of nanoseconds; 256 renews take about 15 microseconds, far inside the margin the
/// coarse clock's deadlines already carry (see `clock.rs`). At most 256: a renew's place in its
/// chunk is kept in 8 bits.
pub(crate) const CHUNK: usize = 256;
const _: () = assert!(CHUNK <= 256);

/// A grant of the batch that passed the checks that need no lock.
struct Pending {
    at: usize,
    id: LeaseId,
    hash: u64,
    ttl_ms: u64,
    /// The sequence number of its not-yet-visible record, once inserted.
    seq: Option<u64>,
}

impl Inner {
    fn grant_many_logged(&self, grants: &[(LeaseId, Duration)]) -> Result<Vec<Result<Lease>>> {
        let mut out: Vec<Option<Result<Lease>>> = grants.iter().map(|_| None).collect();
        let mut pending = Vec::with_capacity(grants.len());
        for (at, &(id, ttl)) in grants.iter().enumerate() {
            match self.grant_ttl_ms(id, ttl) {
                Err(e) => out[at] = Some(Err(e)),
                Ok(ttl_ms) => pending.push(Pending {
                    at,
                    id,
                    hash: self.hash_id(id),
                    ttl_ms,
                    seq: None,
                }),
            }
        }
        let hashes: Vec<u64> = pending.iter().map(|p| p.hash).collect();
        let _stripes = self.lock_stripes(&hashes);
        for p in &mut pending {
            let idx = self.leases.index(p.hash);
            let inserted = self.leases.write(idx, |s| {
                if s.get(p.hash, p.id).is_some() {
                    return None;
                }
                let seq = self.next_seq();
                let rec = LeaseRecord::new(SPECIAL, p.ttl_ms, seq);
                s.insert_new(self.insert_ctx(idx), p.hash, p.id, rec);
                Some(seq)
            });
            match inserted {
                Some(seq) => p.seq = Some(seq),
                None => out[p.at] = Some(Err(Error::LeaseExists { id: p.id })),
            }
        }
        pending.retain(|p| p.seq.is_some());
        let logged = self.log(|| {
            pending
                .iter()
                .map(|p| Record::Grant {
                    id: p.id.get(),
                    ttl_ms: p.ttl_ms,
                })
                .collect()
        });
        if let Err(e) = logged {
            for p in &pending {
                let idx = self.leases.index(p.hash);
                self.leases.write(idx, |s| s.remove(p.hash, p.id));
            }
            return Err(e);
        }
        let (_, now) = self.time.now_ms_coarse();
        for p in &pending {
            let idx = self.leases.index(p.hash);
            let seq = p.seq.unwrap_or_default();
            let primary = self
                .leases
                .write(idx, |s| self.publish(s, p.hash, p.id, seq, now));
            out[p.at] = Some(Ok(Lease::granted(p.id, p.ttl_ms, primary)));
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Stopped)))
            .collect())
    }

    fn revoke_many(&self, ids: &[LeaseId]) -> Result<Vec<Result<()>>> {
        let mut out: Vec<Option<Result<()>>> = ids.iter().map(|_| None).collect();
        let hashes: Vec<u64> = ids.iter().map(|&id| self.hash_id(id)).collect();
        // Leases with keys in a lessor with a store: revoked alone, after the batch.
        let mut alone = Vec::new();
        {
            let _stripes = self.lock_stripes(&hashes);
            // Under the stripes nobody else changes these leases' keys or lives.
            let mut batch = Vec::with_capacity(ids.len());
            let mut taken = HashSet::with_capacity(ids.len());
            for (at, (&id, &h)) in ids.iter().zip(&hashes).enumerate() {
                // Not live, or revoked earlier in this batch: not found.
                match self.revocable(id, h, None).filter(|_| taken.insert(id)) {
                    None => out[at] = Some(Err(Error::LeaseNotFound { id })),
                    Some(true) => alone.push(at),
                    Some(false) => batch.push(at),
                }
            }
            if !batch.is_empty() {
                self.log(|| {
                    batch
                        .iter()
                        .map(|&at| Record::Revoke { id: ids[at].get() })
                        .collect()
                })?;
                for &at in &batch {
                    self.remove_revoked(ids[at], hashes[at], None);
                    out[at] = Some(Ok(()));
                }
            }
        }
        for at in alone {
            out[at] = Some(self.revoke(ids[at], None).map(drop));
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Err(Error::Stopped)))
            .collect())
    }

    /// [`Lessor::renew_many`]; see the module docs.
    fn renew_many(&self, ids: &[LeaseId]) -> Result<Vec<Result<Duration>>> {
        self.check_running()?;
        if !self.primary.load(Ordering::Acquire) {
            return Err(Error::NotPrimary);
        }
        let mut out = Vec::with_capacity(ids.len());
        // (position, id, hash, grant number) of each renew whose swap cleared a checkpoint.
        let mut cleared = Vec::new();
        let mut hashes = [0u64; CHUNK];
        // A chunk's renews as `shard << 8 | place in the chunk`, sorted: each shard's renews
        // then run under one shared lock, in the order they were asked for.
        let mut order = [0u32; CHUNK];
        for chunk in ids.chunks(CHUNK) {
            let now = self.time.now_ms_coarse();
            for (at, &id) in chunk.iter().enumerate() {
                let h = self.hash_id(id);
                hashes[at] = h;
                // At most 2^16 shards and 256 places: the key fits in 24 bits.
                order[at] = ((self.leases.index(h) as u32) << 8) | at as u32;
            }
            let order = &mut order[..chunk.len()];
            order.sort_unstable();
            let base = out.len();
            out.resize_with(base + chunk.len(), || Err(Error::Stopped));
            for run in order.chunk_by(|a, b| a >> 8 == b >> 8) {
                self.leases.read((run[0] >> 8) as usize, |s| {
                    // Every lookup first, then every swap: with no locked instruction between
                    // them, the lookups' cache misses overlap.
                    let mut found: [Option<&LeaseRecord>; CHUNK] = [None; CHUNK];
                    for (slot, &key) in found.iter_mut().zip(run) {
                        let at = (key & 0xff) as usize;
                        *slot = s.get(hashes[at], chunk[at]);
                    }
                    for (&rec, &key) in found.iter().zip(run) {
                        let at = (key & 0xff) as usize;
                        let (id, h) = (chunk[at], hashes[at]);
                        out[base + at] = renew_record(rec, id, now).map(|(ttl_ms, seq)| {
                            if let Some(seq) = seq {
                                cleared.push((base + at, id, h, seq));
                            }
                            Duration::from_millis(ttl_ms)
                        });
                    }
                });
            }
        }
        for (at, id, h, seq) in cleared {
            if let Err(e) = self.clear_renewed_checkpoint(id, h, seq) {
                out[at] = Err(e);
            }
        }
        Ok(out)
    }
}
