//! The [`Lessor`]: etcd's lease semantics on sharded maps.
//!
//! # Ground rules
//!
//! - [`Inner`] is shared (`Arc`) by the public handle and the expiry thread. It owns the lease
//!   map and the key map ([`crate::shard`]); the expiry thread owns the wheel.
//! - **Renew** takes one shared shard lock and does one compare-and-swap on the lease's state
//!   word: no exclusive lock, no allocation, no channel, no log write. Only the renew whose swap
//!   clears a checkpoint then takes the lease's stripe and logs the clearing
//!   (`lessor/checkpoint.rs` has the protocol).
//! - **Grant** takes one exclusive shard lock: the record and its filing for the expiry worker
//!   go in together, so the worker sees every lease exactly once.
//! - **Revoke, attach, detach, checkpoint** first take the lease's *stripe* lock (a small array
//!   of mutexes indexed by the id's hash), which orders every change to one lease's key set and
//!   life. Moving a key between leases takes both stripes, in ascending index order. Under the
//!   stripes they take one shard lock at a time. Revoke calls the range deleter while holding
//!   only the stripe.
//! - Invariant kept by the stripes: `key map[k] == L` exactly when `k` is in `L`'s key set, and
//!   `L` is in the lease map. Every change of `key map[k]` away from `L` happens under `L`'s
//!   stripe.
//! - **Promote/demote** set the `primary` flag first, then visit each shard under its lock, then
//!   bump `epoch`, which tells the expiry worker to rebuild its wheel. A grant reads `primary`
//!   under its shard's exclusive lock, so it either is visited by the pass or sees the new flag.

mod batch;
mod checkpoint;
mod keys;
mod lifecycle;
mod maintenance;
mod persist;
mod primary;
mod query;
mod snapshot;
mod store;

pub(crate) use persist::Durable;
pub use persist::Recovery;
pub(crate) use store::Store;

use std::hash::BuildHasher;
use std::time::Duration;

use crossbeam_channel::Receiver;
use crossbeam_utils::CachePadded;

use crate::builder::LessorBuilder;
use crate::clock::TimeBase;
use crate::deleter::RangeDeleter;
use crate::error::{Error, Result};
use crate::expiry::runner::Runner;
use crate::expiry::{ExpiryConfig, ExpiryWorker};
use crate::lease::{Lease, LeaseId};
use crate::shard::{KeyShard, LeaseShard, Shards};
use crate::sync::{self, Arc, AtomicBool, AtomicU64, HashBuilder, Mutex, MutexGuard, Ordering};
use crate::table_hint::TableHint;

/// The number of stripe locks that order changes to a lease's keys and life.
const STRIPES: usize = 256;

/// A concurrent lease engine with etcd's `Lessor` semantics.
///
/// Share it between threads by reference or in an `Arc`: every method takes `&self`.
///
/// # Examples
///
/// ```
/// use lessor::{LeaseId, Lessor};
/// use std::time::Duration;
///
/// let lessor = Lessor::builder().build()?;
/// let id = LeaseId::new(1);
/// lessor.grant(id, Duration::from_secs(30))?;
/// lessor.attach(id, [&b"session/alice"[..]])?;
/// assert_eq!(lessor.get_lease(b"session/alice"), id);
/// assert_eq!(lessor.renew(id)?, Duration::from_secs(30));
/// lessor.revoke(id)?;
/// assert!(lessor.lookup(id).is_none());
/// # Ok::<(), lessor::Error>(())
/// ```
pub struct Lessor {
    pub(crate) inner: Arc<Inner>,
    expiry: Arc<Mutex<ExpiryWorker>>,
    expired: Receiver<Vec<Lease>>,
    runner: Mutex<Option<Runner>>,
    maintainer: Mutex<Option<maintenance::Maintainer>>,
    recovery: Option<Recovery>,
}

/// The state shared by the handle and the expiry thread.
pub(crate) struct Inner {
    pub(crate) time: TimeBase,
    pub(crate) hasher: HashBuilder,
    pub(crate) leases: Shards<LeaseShard>,
    pub(crate) keys: Shards<KeyShard>,
    stripes: Box<[CachePadded<Mutex<()>>]>,
    /// Primary: leases expire and may be renewed.
    pub(crate) primary: AtomicBool,
    /// Set once by `stop`.
    pub(crate) stopped: AtomicBool,
    /// Bumped by every promote and demote; the expiry worker rebuilds its wheel when it moves.
    pub(crate) epoch: AtomicU64,
    /// The next grant's sequence number, on a cache line of its own: every grant bumps it,
    /// and the fields around it are read by every renew.
    next_seq: CachePadded<AtomicU64>,
    pub(crate) min_ttl_ms: u64,
    pub(crate) max_key_size: usize,
    pub(crate) revoke_rate: u32,
    pub(crate) range_deleter: Option<Arc<dyn RangeDeleter>>,
    /// The log, when built with a data directory.
    pub(crate) durable: Option<Durable>,
    /// The key-value store, when built with one.
    pub(crate) store: Option<store::Store>,
}

impl Lessor {
    /// A builder with etcd's defaults (minimum TTL 2 s, revoke rate 1000/s) and lessor's own
    /// (10 ms tick, shards from the core count).
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::Lessor;
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder()
    ///     .shards(64)
    ///     .min_ttl(Duration::from_millis(100))
    ///     .build()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn builder() -> LessorBuilder {
        LessorBuilder::new()
    }

    pub(crate) fn start(
        inner: Inner,
        cfg: ExpiryConfig,
        capacity: usize,
        thread: bool,
        recovery: Option<Recovery>,
    ) -> Result<Self> {
        let inner = Arc::new(inner);
        let maintainer = if inner.durable.is_some() && thread {
            Some(maintenance::Maintainer::spawn(inner.clone()).map_err(Error::Io)?)
        } else {
            None
        };
        let (tx, expired) = crossbeam_channel::bounded(capacity);
        let expiry = Arc::new(Mutex::new(ExpiryWorker::new(inner.clone(), cfg, tx)));
        let runner = if thread {
            Some(Runner::spawn(inner.clone(), expiry.clone()).map_err(Error::Io)?)
        } else {
            None
        };
        Ok(Lessor {
            inner,
            expiry,
            expired,
            runner: Mutex::new(runner),
            maintainer: Mutex::new(maintainer),
            recovery,
        })
    }

    /// What opening the data directory found, for a lessor built with one.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().build()?.recovery().is_none());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn recovery(&self) -> Option<&Recovery> {
        self.recovery.as_ref()
    }

    /// Compacts the log now: replaces its segments by a snapshot of the live state. The
    /// background maintenance thread does this by itself once the segments outgrow the live
    /// state; this is for tools and tests. A lessor without a data directory does nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the snapshot cannot be written; the log is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// lessor::Lessor::builder().build()?.compact()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn compact(&self) -> Result<()> {
        self.inner.check_running()?;
        self.inner.compact()
    }

    /// Runs one pass of the log's upkeep now, as the maintenance thread does every second:
    /// logs due checkpoints and compacts the log if it has outgrown the live state. Returns
    /// the number of checkpoints logged.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] from the log; [`Error::Stopped`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lessor::Lessor::builder().build()?.run_maintenance_once()?, 0);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn run_maintenance_once(&self) -> Result<usize> {
        self.inner.check_running()?;
        self.inner.maintain()
    }

    /// The channel on which expired leases arrive, in batches, etcd's `ExpiredLeasesC`. Every
    /// clone of the receiver shares the same stream.
    ///
    /// In [`ExpiryMode::Notify`](crate::ExpiryMode::Notify) a delivered lease stays until it is
    /// revoked and is delivered again every retry interval; in
    /// [`ExpiryMode::Revoke`](crate::ExpiryMode::Revoke) it has already been revoked.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder()
    ///     .clock(clock.clone())
    ///     .expiry_thread(false)
    ///     .build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(5))?;
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(lessor.run_expiry_once()?, 1);
    /// let batch = lessor.expired_leases().try_recv().expect("one batch");
    /// assert_eq!(batch[0].id(), LeaseId::new(1));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn expired_leases(&self) -> Receiver<Vec<Lease>> {
        self.expired.clone()
    }

    /// Runs one expiry step now, on the lessor's clock: files new leases, expires those whose
    /// deadline has passed and delivers them. Returns how many were delivered. This is what the
    /// expiry thread does every tick; with `expiry_thread(false)` the owner calls it instead
    /// (tests with a [`ManualClock`](crate::ManualClock), or an application's own loop).
    ///
    /// # Errors
    ///
    /// [`Error::Stopped`].
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().expiry_thread(false).build()?;
    /// assert_eq!(lessor.run_expiry_once()?, 0);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn run_expiry_once(&self) -> Result<usize> {
        self.inner.check_running()?;
        let now = self.inner.time.now_ms();
        Ok(sync::lock(&self.expiry).run_once(now))
    }

    /// Leases the expiry worker is tracking (in the wheel, due, or awaiting redelivery). Equal
    /// to the number of live leases once the worker has run; it does not grow with renewals.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().expiry_thread(false).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(5))?;
    /// lessor.run_expiry_once()?;
    /// assert_eq!(lessor.expiry_tracked(), 1);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    #[cfg(any(test, feature = "test-util"))]
    pub fn expiry_tracked(&self) -> usize {
        sync::lock(&self.expiry).tracked()
    }

    /// True while this lessor is primary (leases expire and can be renewed).
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().primary(false).build()?;
    /// assert!(!lessor.is_primary());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn is_primary(&self) -> bool {
        self.inner.primary.load(Ordering::Acquire)
    }

    /// Stops the lessor: later grants, renewals, revokes and key changes fail with
    /// [`Error::Stopped`]; lookups still answer. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// lessor.stop();
    /// let err = lessor.grant(LeaseId::new(1), Duration::from_secs(5)).unwrap_err();
    /// assert!(matches!(err, Error::Stopped));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        let maintainer = sync::lock(&self.maintainer).take();
        if let Some(m) = maintainer {
            m.stop();
        }
        let runner = sync::lock(&self.runner).take();
        if let Some(runner) = runner {
            runner.stop();
        }
        if let Some(d) = &self.inner.durable {
            // Everything acknowledged is already durable per the policy; this flushes the rest.
            let _ = d.wal.close();
        }
    }
}

impl Drop for Lessor {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Lessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lessor")
            .field("leases", &self.len())
            .field("primary", &self.is_primary())
            .finish_non_exhaustive()
    }
}

impl Inner {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        time: TimeBase,
        shards: usize,
        primary: bool,
        min_ttl: Duration,
        max_key_size: usize,
        revoke_rate: u32,
        range_deleter: Option<Arc<dyn RangeDeleter>>,
    ) -> Self {
        Inner {
            time,
            hasher: HashBuilder::default(),
            leases: Shards::new(shards),
            keys: Shards::new(shards),
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(Mutex::new(())))
                .collect(),
            primary: AtomicBool::new(primary),
            stopped: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            next_seq: CachePadded::new(AtomicU64::new(1)),
            min_ttl_ms: crate::clock::ceil_ms(min_ttl),
            max_key_size,
            revoke_rate,
            range_deleter,
            durable: None,
            store: None,
        }
    }

    #[inline]
    pub(crate) fn hash_id(&self, id: LeaseId) -> u64 {
        self.hasher.hash_one(id)
    }

    #[inline]
    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    pub(crate) fn check_running(&self) -> Result<()> {
        if self.stopped.load(Ordering::Relaxed) {
            Err(Error::Stopped)
        } else {
            Ok(())
        }
    }

    fn stripe_of(&self, hash: u64) -> usize {
        ((hash >> 16) as usize) & (STRIPES - 1)
    }

    /// Locks the stripe of one lease.
    pub(crate) fn lock_stripe(&self, hash: u64) -> MutexGuard<'_, ()> {
        sync::lock(&self.stripes[self.stripe_of(hash)])
    }

    /// Locks the stripes of several leases, each once, in ascending index order.
    pub(crate) fn lock_stripes(&self, hashes: &[u64]) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = hashes.iter().map(|h| self.stripe_of(*h)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| sync::lock(&self.stripes[i]))
            .collect()
    }

    /// Locks every stripe, in order: no change to any lease is in flight while they are held.
    pub(crate) fn lock_all_stripes(&self) -> Vec<MutexGuard<'_, ()>> {
        self.stripes.iter().map(|m| sync::lock(m)).collect()
    }

    /// True when the stripe of `b` is already covered by the stripes of `held`.
    pub(crate) fn stripe_covered(&self, held: &[u64], b: u64) -> bool {
        let s = self.stripe_of(b);
        held.iter().any(|h| self.stripe_of(*h) == s)
    }

    /// What an insert into lease shard `idx` needs beside the shard: the hasher (to rehash
    /// when the table grows) and the shard's table hint (to record where the table now lives).
    #[inline]
    pub(crate) fn insert_ctx(&self, idx: usize) -> (&HashBuilder, &TableHint) {
        (&self.hasher, self.leases.hint(idx))
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks every key before anything changes.
    pub(crate) fn validate_keys<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<()> {
        for k in keys {
            let k = k.as_ref();
            if k.is_empty() {
                return Err(Error::EmptyKey);
            }
            if k.len() > self.max_key_size {
                return Err(Error::KeyTooLarge {
                    given: k.len(),
                    limit: self.max_key_size,
                });
            }
        }
        Ok(())
    }
}
