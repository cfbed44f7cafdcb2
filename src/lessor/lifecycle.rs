//! Grant, renew, revoke and checkpoint: the life of one lease.

use std::time::Duration;

use super::{Inner, Lessor};
use crate::clock::ceil_ms;
use crate::error::{Error, Result};
use crate::lease::{
    deadline_of, finite_deadline, Lease, LeaseId, LeaseRecord, CHECKPOINTED, EXPIRED, FOREVER,
    MAX_TTL, SPECIAL,
};
use crate::shard::{Filing, Key, LeaseShard};
use crate::store::state::StoreState;
use crate::sync::{Ordering, RwLockWriteGuard};
use crate::wal::Record;

impl Lessor {
    /// Grants lease `id` for `ttl` (raised to the minimum TTL), etcd's `Grant`.
    ///
    /// When primary the lease expires `ttl` from now; when not primary it does not expire until
    /// a promote.
    ///
    /// # Errors
    ///
    /// Checked in etcd's order: [`Error::LeaseNotFound`] for id 0, [`Error::TtlTooLarge`] over
    /// [`MAX_TTL`] (even when the id exists), [`Error::LeaseExists`] (nothing
    /// changes), [`Error::Stopped`].
    ///
    /// **Locking:** one exclusive shard lock; calls out to nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// let lease = lessor.grant(LeaseId::new(-5), Duration::from_secs(1))?;
    /// assert_eq!(lease.ttl(), Duration::from_secs(2)); // raised to the 2 s minimum
    /// let again = lessor.grant(LeaseId::new(-5), Duration::from_secs(9));
    /// assert!(matches!(again, Err(Error::LeaseExists { .. })));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn grant(&self, id: LeaseId, ttl: Duration) -> Result<Lease> {
        self.inner.grant(id, ttl)
    }

    /// [`grant`](Self::grant) with etcd's TTL in whole seconds: 0 and negative TTLs are raised
    /// to the minimum.
    ///
    /// # Errors
    ///
    /// As [`grant`](Self::grant).
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// assert_eq!(lessor.grant_secs(LeaseId::new(1), -3)?.ttl_secs(), 2);
    /// assert!(lessor.grant_secs(LeaseId::new(2), 9_000_000_001).is_err());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn grant_secs(&self, id: LeaseId, ttl_secs: i64) -> Result<Lease> {
        let ttl = Duration::from_secs(u64::try_from(ttl_secs).unwrap_or(0));
        self.inner.grant(id, ttl)
    }

    /// Renews lease `id`: its deadline becomes now + its TTL. Returns the granted TTL (not the
    /// time left), etcd's `Renew`. Clears a checkpointed remaining TTL: the first renew after a
    /// [`checkpoint`](Self::checkpoint) logs the clearing (a checkpoint of 0, as etcd proposes
    /// one) before it returns, so a restart gives the lease its full TTL again. That clearing
    /// is the only thing a renew ever logs.
    ///
    /// # Errors
    ///
    /// [`Error::NotPrimary`] when not primary (even for unknown ids),
    /// [`Error::LeaseNotFound`], [`Error::LeaseExpired`] once the deadline has passed (an
    /// expired lease is never brought back; etcd would block until it is revoked),
    /// [`Error::Stopped`]. With a log, [`Error::Io`] (or [`Error::Stopped`]) when the log
    /// refuses the clearing of a checkpoint: the lease keeps its new deadline, and keeps the
    /// checkpoint too, as the log does, until a later renew clears it.
    ///
    /// **Locking:** one shared shard lock and one compare-and-swap; no allocation, no channel,
    /// no log write. Only the first renew after a checkpoint then takes the lease's stripe and
    /// one exclusive shard lock, and writes the log.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder().clock(clock.clone()).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(lessor.renew(LeaseId::new(1))?, Duration::from_secs(10));
    /// clock.advance(Duration::from_secs(10));
    /// assert!(matches!(lessor.renew(LeaseId::new(1)), Err(Error::LeaseExpired { .. })));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn renew(&self, id: LeaseId) -> Result<Duration> {
        self.inner.renew(id).map(Duration::from_millis)
    }

    /// Revokes lease `id`: deletes its keys through the range deleter (one
    /// `delete_range(key, None)` per key, ascending) and removes the lease, inside one
    /// transaction, etcd's `Revoke`. Works whether primary or not, expired or not. Without a
    /// range deleter the lease is still removed.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseNotFound`], [`Error::Stopped`].
    ///
    /// **Locking:** the lease's stripe for the whole call (the range deleter runs under it),
    /// and one shard lock at a time inside it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// lessor.attach(LeaseId::new(1), [&b"k"[..]])?;
    /// lessor.revoke(LeaseId::new(1))?;
    /// assert!(lessor.get_lease(b"k").is_none());
    /// assert!(lessor.revoke(LeaseId::new(1)).is_err());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn revoke(&self, id: LeaseId) -> Result<()> {
        self.inner.check_running()?;
        self.inner.revoke(id, None).map(drop)
    }

    /// Records that lease `id` has `remaining` left (etcd v3.4's `Checkpoint`): a later promote
    /// (or restart) gives it that much instead of its full TTL. The next renew clears it, in
    /// the log too.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseNotFound`], [`Error::Stopped`].
    ///
    /// **Locking:** the lease's stripe and one exclusive shard lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor, ManualClock, Remaining};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder().clock(clock.clone()).primary(false).build()?;
    /// let id = LeaseId::new(1);
    /// lessor.grant(id, Duration::from_secs(60))?;
    /// lessor.checkpoint(id, Duration::from_secs(5))?;
    /// lessor.promote(Duration::ZERO);
    /// assert_eq!(lessor.lookup(id).unwrap().remaining(), Remaining::Left(Duration::from_secs(5)));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn checkpoint(&self, id: LeaseId, remaining: Duration) -> Result<()> {
        self.inner.checkpoint(id, remaining)
    }
}

impl Inner {
    pub(crate) fn grant(&self, id: LeaseId, ttl: Duration) -> Result<Lease> {
        self.check_running()?;
        let ttl_ms = self.grant_ttl_ms(id, ttl)?;
        let h = self.hash_id(id);
        let primary = if self.durable.is_some() {
            self.grant_logged(id, h, ttl_ms)?
        } else {
            self.grant_in_memory(id, h, ttl_ms)?
        };
        Ok(Lease::granted(id, ttl_ms, primary))
    }

    /// The checks of a grant that need no lock, in etcd's order (id, then TTL); returns the
    /// TTL to grant in ms, raised to the minimum.
    pub(crate) fn grant_ttl_ms(&self, id: LeaseId, ttl: Duration) -> Result<u64> {
        if id.is_none() {
            return Err(Error::LeaseNotFound { id });
        }
        if ttl > MAX_TTL {
            return Err(Error::TtlTooLarge {
                given: ttl,
                max: MAX_TTL,
            });
        }
        Ok(ceil_ms(ttl).max(self.min_ttl_ms))
    }

    /// A grant without a log: one exclusive shard lock and one probe.
    fn grant_in_memory(&self, id: LeaseId, h: u64, ttl_ms: u64) -> Result<bool> {
        let (_, now) = self.time.now_ms_coarse();
        let idx = self.leases.index(h);
        self.leases.prefetch(h);
        self.leases.write(idx, |s| {
            // Read under the shard lock: see the module docs on promote.
            let primary = self.primary.load(Ordering::Acquire);
            let deadline = if primary {
                finite_deadline(now.saturating_add(ttl_ms))
            } else {
                FOREVER
            };
            let mut seq = 0;
            let fresh = s.try_insert(self.insert_ctx(idx), h, id, || {
                seq = self.next_seq();
                LeaseRecord::new(deadline, ttl_ms, seq)
            });
            if !fresh {
                return Err(Error::LeaseExists { id });
            }
            s.intake.push(Filing {
                id,
                seq,
                due: deadline,
            });
            Ok(primary)
        })
    }

    /// A grant with a log: the id is held by a not-yet-visible record while the grant is made
    /// durable (under the lease's stripe, which compaction waits for), then published.
    fn grant_logged(&self, id: LeaseId, h: u64, ttl_ms: u64) -> Result<bool> {
        let idx = self.leases.index(h);
        self.leases.prefetch(h);
        let _stripe = self.lock_stripe(h);
        let seq = self.leases.write(idx, |s| {
            if s.get(h, id).is_some() {
                return Err(Error::LeaseExists { id });
            }
            let seq = self.next_seq();
            s.insert_new(
                self.insert_ctx(idx),
                h,
                id,
                LeaseRecord::new(SPECIAL, ttl_ms, seq),
            );
            Ok(seq)
        })?;
        let logged = self.log(|| {
            vec![Record::Grant {
                id: id.get(),
                ttl_ms,
            }]
        });
        if let Err(e) = logged {
            self.leases.write(idx, |s| s.remove(h, id));
            return Err(e);
        }
        let (_, now) = self.time.now_ms_coarse();
        Ok(self.leases.write(idx, |s| self.publish(s, h, id, seq, now)))
    }

    /// Makes a granted record visible with its deadline and files it for the expiry worker;
    /// returns whether the lessor was primary. Called under the shard's exclusive lock, which
    /// is where `primary` must be read (see the module docs on promote).
    pub(crate) fn publish(
        &self,
        s: &mut LeaseShard,
        h: u64,
        id: LeaseId,
        seq: u64,
        now: u64,
    ) -> bool {
        let primary = self.primary.load(Ordering::Acquire);
        let mut deadline = FOREVER;
        if let Some(rec) = s.get(h, id) {
            if primary {
                deadline = finite_deadline(now.saturating_add(rec.ttl_ms));
            }
            rec.state.store(deadline, Ordering::Release);
        }
        s.intake.push(Filing {
            id,
            seq,
            due: deadline,
        });
        primary
    }

    /// Renews; returns the granted TTL in ms.
    pub(crate) fn renew(&self, id: LeaseId) -> Result<u64> {
        self.check_running()?;
        if !self.primary.load(Ordering::Acquire) {
            return Err(Error::NotPrimary);
        }
        let h = self.hash_id(id);
        let (ttl_ms, cleared) = self.renew_swap(id, h)?;
        if let Some(seq) = cleared {
            // This swap cleared a checkpoint: log that too (lessor/checkpoint.rs).
            self.clear_renewed_checkpoint(id, h, seq)?;
        }
        Ok(ttl_ms)
    }

    /// Renew's one swap: moves the deadline of live lease `id` (hash `h`) to now + its TTL.
    /// Returns the TTL in ms, and the grant's number when the swap cleared a checkpoint (which
    /// the caller must log).
    ///
    /// With lessor's own system clock, the clock is read under the shard lock, after the
    /// lookup has been issued: the read then overlaps the lookup's cache miss instead of
    /// coming before it. Measured with `map/renew/lessor/{1,2}t/1000000`, ten alternating
    /// pairs of runs on a 2-vCPU Xeon VM: from one thread 4.09-4.80 M/s before, 4.38-5.04
    /// after (faster in all ten pairs); from two 5.01-6.38 before, 5.16-7.14 after (faster in
    /// nine). Any other clock is read before the lock
    /// ([`TimeBase::before_lock`]): the shard rules keep user code out of shard locks.
    ///
    /// Before the lock, the lines the lookup will touch are prefetched ([`TableHint`]), so
    /// that the control bytes' miss and the entry's overlap instead of following each other.
    /// Seven alternating pairs at 1e6 leases: from one thread 4.18-4.99 M/s without and
    /// 5.42-5.98 with (faster in all seven), from two 6.13-7.99 without and 7.01-8.87 with
    /// (faster in all seven).
    ///
    /// [`TimeBase::before_lock`]: crate::clock::TimeBase::before_lock
    /// [`TableHint`]: crate::table_hint::TableHint
    #[inline]
    pub(crate) fn renew_swap(&self, id: LeaseId, h: u64) -> Swapped {
        let early = self.time.before_lock();
        self.leases.prefetch(h);
        self.leases.read(self.leases.index(h), |s| {
            let rec = s.get(h, id);
            let now = early.unwrap_or_else(|| self.time.now_ms_coarse());
            renew_record(rec, id, now)
        })
    }

    /// Revokes `id` (only the grant numbered `seq`, when given); returns the keys it had.
    pub(crate) fn revoke(&self, id: LeaseId, seq: Option<u64>) -> Result<Vec<Key>> {
        let h = self.hash_id(id);
        self.leases.prefetch(h);
        let _stripe = self.lock_stripe(h);
        // Under the stripe nobody else changes this lease's keys or life.
        let has_keys = self
            .revocable(id, h, seq)
            .ok_or(Error::LeaseNotFound { id })?;
        // A lease with keys in a lessor with a key-value store deletes them at a new store
        // revision: the store lock is held from the log append on, so the log orders it among
        // the store's changes (see lessor/store.rs). A lease without keys never takes it.
        let store = self.store_for_revoke(has_keys);
        self.log(|| vec![Record::Revoke { id: id.get() }])?;
        Ok(self.remove_revoked(id, h, store))
    }

    /// Whether lease `id` (only the grant numbered `seq`, when given) can be revoked, read under
    /// one shared shard lock by a caller holding its stripe: `None` if it is not live; else
    /// whether its revoke deletes keys from the key-value store (a store, and keys on it).
    pub(crate) fn revocable(&self, id: LeaseId, h: u64, seq: Option<u64>) -> Option<bool> {
        self.leases.read(self.leases.index(h), |s| {
            let rec = s.get(h, id)?;
            let live = LeaseRecord::is_live(rec.load()) && seq.is_none_or(|seq| seq == rec.seq);
            live.then(|| {
                self.store.is_some() && s.extras.get(&id).is_some_and(|e| !e.keys.is_empty())
            })
        })
    }

    /// The part of a revoke after its record is logged, under the lease's stripe: the keys
    /// leave the lease, go through one range-deleter transaction and the store (when its lock
    /// is given; it is let go before the transaction ends), and the lease is removed. Returns
    /// the keys it had.
    pub(crate) fn remove_revoked(
        &self,
        id: LeaseId,
        h: u64,
        mut store: Option<RwLockWriteGuard<'_, StoreState>>,
    ) -> Vec<Key> {
        let idx = self.leases.index(h);
        let keys: Vec<Key> = self.leases.write(idx, |s| {
            s.extras
                .get_mut(&id)
                .map(|e| std::mem::take(&mut e.keys).into_iter().collect())
                .unwrap_or_default()
        });
        let mut txn = self.range_deleter.as_ref().map(|rd| rd.begin());
        if let Some(txn) = txn.as_mut() {
            for key in &keys {
                txn.delete_range(key, None);
            }
        }
        self.leases.write(idx, |s| s.remove(h, id));
        self.release_keys(id, &keys);
        if let Some(state) = store.as_mut() {
            self.store_revoke_keys(state, &keys);
        }
        drop(store);
        if let Some(txn) = txn {
            txn.end();
        }
        keys
    }
}

/// What renew's swap answers: the lease's TTL in ms, and its grant number when the swap
/// cleared a checkpoint (which the caller must then log).
pub(crate) type Swapped = Result<(u64, Option<u64>)>;

/// Renew's swap on lease `id`'s record (`None`: not in its shard), found under a shared lock
/// of its shard that the caller still holds.
#[inline]
pub(crate) fn renew_record(
    rec: Option<&LeaseRecord>,
    id: LeaseId,
    (now_floor, now_ceil): (u64, u64),
) -> Swapped {
    let Some(rec) = rec else {
        return Err(Error::LeaseNotFound { id });
    };
    let mut cur = rec.load();
    loop {
        if !LeaseRecord::is_live(cur) {
            return Err(Error::LeaseNotFound { id });
        }
        let deadline = deadline_of(cur);
        if deadline == FOREVER {
            return Err(Error::NotPrimary);
        }
        if cur & EXPIRED != 0 || deadline <= now_floor {
            return Err(Error::LeaseExpired { id });
        }
        // etcd's refresh(0): now + TTL, even when a promote had set a later deadline (the
        // wheel files a lease no later than now + TTL, so it still fires in time). The new
        // word lacks the CHECKPOINTED bit: this swap clears a checkpoint.
        let new = finite_deadline(now_ceil.saturating_add(rec.ttl_ms));
        match rec
            .state
            .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                let cleared = (cur & CHECKPOINTED != 0).then_some(rec.seq);
                return Ok((rec.ttl_ms, cleared));
            }
            Err(actual) => cur = actual,
        }
    }
}
