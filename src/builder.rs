//! [`LessorBuilder`]: every option checked before a lessor exists.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::{Clock, SystemClock, TimeBase};
use crate::deleter::RangeDeleter;
use crate::error::{Error, Result};
use crate::expiry::{ExpiryConfig, ExpiryMode};
use crate::lease::MAX_TTL;
use crate::lessor::{Durable, Inner, Lessor, Recovery};
use crate::shard::MAX_SHARDS;
use crate::sync::AtomicU64;
use crate::sync::{self, Arc};
use crate::wal::{FsyncPolicy, Wal, WalOptions, DEFAULT_SEGMENT_BYTES};

/// etcd's request size limit, the default largest key: 1.5 MiB.
pub const DEFAULT_MAX_KEY_SIZE: usize = 1536 * 1024;

/// Builds a [`Lessor`]. Options are checked by [`build`](Self::build), which returns
/// [`Error::InvalidConfig`] instead of panicking.
///
/// # Examples
///
/// ```
/// use lessor::{Error, Lessor, ManualClock};
/// use std::time::Duration;
///
/// let lessor = Lessor::builder()
///     .shards(16)
///     .min_ttl(Duration::from_millis(50))
///     .tick(Duration::from_millis(1))
///     .revoke_rate(1000)
///     .clock(ManualClock::new())
///     .build()?;
///
/// let bad = Lessor::builder().shards(3).build();
/// assert!(matches!(bad, Err(Error::InvalidConfig { field: "shards", .. })));
/// # Ok::<(), lessor::Error>(())
/// ```
#[must_use]
pub struct LessorBuilder {
    shards: usize,
    min_ttl: Duration,
    tick: Duration,
    revoke_rate: u32,
    max_key_size: usize,
    key_value_store: bool,
    primary: bool,
    clock: Arc<dyn Clock>,
    system_clock: bool,
    range_deleter: Option<Arc<dyn RangeDeleter>>,
    expiry_mode: ExpiryMode,
    retry_interval: Duration,
    expiry_rate_limit: Option<u32>,
    channel_capacity: usize,
    batch_max: usize,
    expiry_thread: bool,
    data_dir: Option<PathBuf>,
    fsync: FsyncPolicy,
    segment_bytes: u64,
    compact_min_bytes: u64,
    checkpoint_interval: Option<Duration>,
    checkpoint_rate: u32,
    #[cfg(any(test, feature = "test-util"))]
    fs: Option<Arc<dyn crate::wal::FileSystem>>,
}

impl std::fmt::Debug for LessorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LessorBuilder")
            .field("shards", &self.shards)
            .field("min_ttl", &self.min_ttl)
            .field("tick", &self.tick)
            .field("revoke_rate", &self.revoke_rate)
            .field("max_key_size", &self.max_key_size)
            .field("key_value_store", &self.key_value_store)
            .field("primary", &self.primary)
            .field("range_deleter", &self.range_deleter.is_some())
            .field("expiry_mode", &self.expiry_mode)
            .field("retry_interval", &self.retry_interval)
            .field("expiry_rate_limit", &self.expiry_rate_limit)
            .field("channel_capacity", &self.channel_capacity)
            .field("batch_max", &self.batch_max)
            .field("expiry_thread", &self.expiry_thread)
            .field("data_dir", &self.data_dir)
            .field("fsync", &self.fsync)
            .field("segment_bytes", &self.segment_bytes)
            .field("compact_min_bytes", &self.compact_min_bytes)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("checkpoint_rate", &self.checkpoint_rate)
            .finish_non_exhaustive()
    }
}

impl Default for LessorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl LessorBuilder {
    /// The defaults: shards = 4 x cores (a power of two), minimum TTL 2 s (etcd's server),
    /// tick 10 ms, revoke rate 1000/s, keys up to 1.5 MiB, primary, the system clock, no range
    /// deleter.
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::LessorBuilder::new().build()?;
    /// assert!(lessor.is_primary());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        LessorBuilder {
            shards: (cores * 4).next_power_of_two().min(MAX_SHARDS),
            min_ttl: Duration::from_secs(2),
            tick: Duration::from_millis(10),
            revoke_rate: 1000,
            max_key_size: DEFAULT_MAX_KEY_SIZE,
            key_value_store: false,
            primary: true,
            clock: sync::arc_from_std(std::sync::Arc::new(SystemClock)),
            system_clock: true,
            range_deleter: None,
            expiry_mode: ExpiryMode::Notify,
            retry_interval: Duration::from_secs(3),
            expiry_rate_limit: None,
            channel_capacity: 64,
            batch_max: 1024,
            expiry_thread: true,
            data_dir: None,
            fsync: FsyncPolicy::Always,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            compact_min_bytes: DEFAULT_SEGMENT_BYTES,
            checkpoint_interval: Some(Duration::from_secs(300)),
            checkpoint_rate: 1000,
            #[cfg(any(test, feature = "test-util"))]
            fs: None,
        }
    }

    /// The number of lease-map and key-map shards: a power of two from 1 to 65536.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().shards(0).build().is_err());
    /// assert!(lessor::Lessor::builder().shards(1).build().is_ok());
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// The smallest TTL a lease gets: shorter (and zero) TTLs are raised to it. From 1 ms to
    /// [`MAX_TTL`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert!(lessor::Lessor::builder().min_ttl(Duration::ZERO).build().is_err());
    /// ```
    pub fn min_ttl(mut self, ttl: Duration) -> Self {
        self.min_ttl = ttl;
        self
    }

    /// The expiry wheel's tick, from 1 ms to 1 s: expiries are delivered within a tick or two of
    /// their deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// assert!(lessor::Lessor::builder().tick(Duration::from_micros(10)).build().is_err());
    /// ```
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// etcd's revoke rate (leases per second, at least 1): promote spreads pile-ups so that at
    /// most 3/4 of it expire in any one second.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().revoke_rate(0).build().is_err());
    /// ```
    pub fn revoke_rate(mut self, per_second: u32) -> Self {
        self.revoke_rate = per_second;
        self
    }

    /// The longest key accepted, in bytes (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{Error, LeaseId}; use std::time::Duration;
    /// let lessor = lessor::Lessor::builder().max_key_size(4).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(5))?;
    /// assert!(matches!(lessor.attach(LeaseId::new(1), ["12345"]), Err(Error::KeyTooLarge { given: 5, limit: 4 })));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn max_key_size(mut self, bytes: usize) -> Self {
        self.max_key_size = bytes;
        self
    }

    /// Whether the lessor starts primary (default) or not (nothing expires until a promote).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!lessor::Lessor::builder().primary(false).build()?.is_primary());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn primary(mut self, primary: bool) -> Self {
        self.primary = primary;
        self
    }

    /// The clock; tests pass a [`ManualClock`](crate::ManualClock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().clock(lessor::ManualClock::new()).build()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn clock<C: Clock>(mut self, clock: C) -> Self {
        self.system_clock = std::any::TypeId::of::<C>() == std::any::TypeId::of::<SystemClock>();
        self.clock = sync::arc_from_std(std::sync::Arc::new(clock));
        self
    }

    /// How revoke deletes attached keys (see [`RangeDeleter`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Lessor, TxnDelete};
    /// struct Nop;
    /// impl TxnDelete for Nop {
    ///     fn delete_range(&mut self, _: &[u8], _: Option<&[u8]>) -> (i64, i64) { (0, 0) }
    ///     fn end(self: Box<Self>) {}
    /// }
    /// let lessor = Lessor::builder().range_deleter(|| Box::new(Nop) as Box<dyn TxnDelete>).build()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn range_deleter(mut self, deleter: impl RangeDeleter) -> Self {
        self.range_deleter = Some(sync::arc_from_std(std::sync::Arc::new(deleter)));
        self
    }

    /// What happens to an expired lease: [`ExpiryMode::Notify`] (etcd's, the default) or
    /// [`ExpiryMode::Revoke`].
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{ExpiryMode, LeaseId, Lessor, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder()
    ///     .clock(clock.clone())
    ///     .expiry_mode(ExpiryMode::Revoke)
    ///     .expiry_thread(false)
    ///     .build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(2))?;
    /// clock.advance(Duration::from_secs(2));
    /// lessor.run_expiry_once()?;
    /// assert!(lessor.lookup(LeaseId::new(1)).is_none()); // revoked by the engine
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn expiry_mode(mut self, mode: ExpiryMode) -> Self {
        self.expiry_mode = mode;
        self
    }

    /// In notify mode, how long after delivery an expired lease that was not revoked is
    /// delivered again (etcd v3.4: 3 s, the default). From 1 ms to 1 hour.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = lessor::Lessor::builder().retry_interval(Duration::from_secs(1));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// At most this many leases a second are expired (delivered or revoked); `None` (the
    /// default) for no limit. `Some(1000)` mimics etcd.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().expiry_rate_limit(Some(0)).build().is_err());
    /// ```
    pub fn expiry_rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.expiry_rate_limit = per_second;
        self
    }

    /// How many batches the expired channel holds before the worker waits (at least 1; default
    /// 64), and the most leases in one batch (at least 1; default 1024).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().expiry_channel(0, 10).build().is_err());
    /// assert!(lessor::Lessor::builder().expiry_channel(8, 256).build().is_ok());
    /// ```
    pub fn expiry_channel(mut self, capacity: usize, batch_max: usize) -> Self {
        self.channel_capacity = capacity;
        self.batch_max = batch_max;
        self
    }

    /// Whether a background thread runs expiry every tick (the default). With `false`, the
    /// owner calls [`Lessor::run_expiry_once`] instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().expiry_thread(false).build()?;
    /// lessor.run_expiry_once()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn expiry_thread(mut self, run: bool) -> Self {
        self.expiry_thread = run;
        self
    }

    /// Makes the lessor durable: grants, revokes, attachments and checkpoints go to a
    /// write-ahead log in `dir` (created if missing) before they are applied, and a lessor built
    /// on the same directory later rebuilds every lease and attachment from it. Deadlines
    /// restart as etcd's promote gives them: the checkpointed remaining TTL, else the TTL, with
    /// pile-ups spread. Only one lessor may have a directory open at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let dir = std::env::temp_dir().join(format!("lessor-doc-data-dir-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let lessor = Lessor::builder().data_dir(&dir).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(30))?;
    /// lessor.attach(LeaseId::new(1), ["k"])?;
    /// drop(lessor);
    /// let again = Lessor::builder().data_dir(&dir).build()?;
    /// assert_eq!(again.get_lease("k"), LeaseId::new(1));
    /// # drop(again); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// When a logged change is durable: [`FsyncPolicy::Always`] (before the call returns, the
    /// default), at a bounded interval, or never (the OS decides).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = lessor::Lessor::builder().fsync(lessor::FsyncPolicy::Never);
    /// ```
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// The log's segment size (default 64 MiB) and the least segment bytes before compaction
    /// is considered (default 64 MiB; compaction also waits until the segments hold twice the
    /// live state). Small values exercise rotation and compaction in tests.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().log_sizes(0, 1).build().is_err());
    /// ```
    pub fn log_sizes(mut self, segment_bytes: u64, compact_min_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self.compact_min_bytes = compact_min_bytes;
        self
    }

    /// Checkpoints (etcd v3.4): leases whose TTL is at least `interval` have their remaining
    /// TTL logged every `interval` (default 5 minutes), at most `per_second` a second (default
    /// 1000), so a restart resumes near where their TTL stood. `None` turns them off.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = lessor::Lessor::builder().checkpoints(Some(Duration::from_secs(60)), 500);
    /// assert!(lessor::Lessor::builder().checkpoints(None, 0).build().is_err());
    /// ```
    pub fn checkpoints(mut self, interval: Option<Duration>, per_second: u32) -> Self {
        self.checkpoint_interval = interval;
        self.checkpoint_rate = per_second;
        self
    }

    /// The file system the log of [`data_dir`](Self::data_dir) lives on, instead of the disk:
    /// a [`MemFs`](crate::test_util::MemFs), which can crash (feature `test-util`). The
    /// crate's own tests also pass file systems that fail chosen calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::test_util::MemFs;
    /// use lessor::{LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let fs = MemFs::new();
    /// let lessor = Lessor::builder().data_dir("/data").file_system(fs.clone()).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(60))?;
    /// drop(lessor);
    /// let again = Lessor::builder().data_dir("/data").file_system(fs).build()?;
    /// assert_eq!(again.recovery().map(|r| r.leases), Some(1));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    #[cfg(any(test, feature = "test-util"))]
    // The bound names the crate's file-system seam; outside the crate only `MemFs` meets it.
    #[allow(private_bounds)]
    pub fn file_system(mut self, fs: impl Into<Arc<dyn crate::wal::FileSystem>>) -> Self {
        self.fs = Some(fs.into());
        self
    }

    fn validate(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if !self.shards.is_power_of_two() || self.shards > MAX_SHARDS {
            return invalid("shards", "must be a power of two from 1 to 65536");
        }
        if self.min_ttl < Duration::from_millis(1) || self.min_ttl > MAX_TTL {
            return invalid("min_ttl", "must be from 1 ms to 9,000,000,000 s");
        }
        if self.tick < Duration::from_millis(1) || self.tick > Duration::from_secs(1) {
            return invalid("tick", "must be from 1 ms to 1 s");
        }
        if self.revoke_rate == 0 {
            return invalid("revoke_rate", "must be at least 1 lease per second");
        }
        if self.retry_interval < Duration::from_millis(1)
            || self.retry_interval > Duration::from_secs(3600)
        {
            return invalid("retry_interval", "must be from 1 ms to 1 hour");
        }
        if self.expiry_rate_limit == Some(0) {
            return invalid(
                "expiry_rate_limit",
                "must be None or at least 1 lease per second",
            );
        }
        if self.channel_capacity == 0 || self.batch_max == 0 {
            return invalid(
                "expiry_channel",
                "capacity and batch size must be at least 1",
            );
        }
        if self.segment_bytes == 0 || self.compact_min_bytes == 0 {
            return invalid(
                "log_sizes",
                "segment and compaction sizes must be at least 1 byte",
            );
        }
        if self.checkpoint_rate == 0
            || self
                .checkpoint_interval
                .is_some_and(|i| i < Duration::from_millis(1))
        {
            return invalid(
                "checkpoints",
                "the interval must be at least 1 ms and the rate at least 1 a second",
            );
        }
        if self.max_key_size == 0 {
            return invalid("max_key_size", "must be at least 1 byte");
        }
        if self.key_value_store && self.range_deleter.is_some() {
            return invalid(
                "key_value_store",
                "revoke deletes keys from the store: drop the range_deleter or the store",
            );
        }
        Ok(())
    }

    /// Keeps an etcd-style key-value store beside the leases (etcd's `KV`: keys, values,
    /// revisions), logged through the same write-ahead log, so that keys can live on leases
    /// and are deleted when their lease is revoked or expires. Off by default. Replaces a
    /// [`range_deleter`](Self::range_deleter): the store is what revoke deletes from.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor, PutOptions};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().key_value_store(true).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(60))?;
    /// lessor.put(b"k", b"v", PutOptions { lease: LeaseId::new(1), ..Default::default() })?;
    /// lessor.revoke(LeaseId::new(1))?;
    /// assert!(lessor.range(b"k", b"")?.kvs.is_empty());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn key_value_store(mut self, on: bool) -> Self {
        self.key_value_store = on;
        self
    }

    /// Checks every option and builds the lessor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first bad option; [`Error::Io`] if the expiry
    /// thread cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().build()?;
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn build(self) -> Result<Lessor> {
        self.validate()?;
        let durable = self.data_dir.is_some();
        let mut inner = Inner::new(
            TimeBase::new(self.clock, self.system_clock),
            self.shards,
            // A durable lessor replays while not primary, then promotes (below).
            self.primary && !durable,
            self.min_ttl,
            self.max_key_size,
            self.revoke_rate,
            self.range_deleter,
        );
        if self.key_value_store {
            inner.store = Some(crate::lessor::Store::new());
        }
        let mut recovery = None;
        if let Some(dir) = self.data_dir {
            #[cfg_attr(not(any(test, feature = "test-util")), allow(unused_mut))]
            let mut opts = WalOptions {
                fsync: self.fsync,
                segment_bytes: self.segment_bytes,
                ..WalOptions::default()
            };
            #[cfg(any(test, feature = "test-util"))]
            if let Some(fs) = self.fs {
                opts.fs = fs;
            }
            let (wal, recovered) = Wal::open(&dir, opts)?;
            inner.replay(&recovered.records)?;
            recovery = Some(Recovery {
                records: recovered.records.len(),
                leases: inner.len(),
                keys: inner.key_count(),
                store_keys: inner.store_len(),
                truncated_tail: recovered
                    .truncated_tail
                    .map(|t| (t.segment, t.offset, t.bytes)),
            });
            inner.durable = Some(Durable {
                wal,
                dir,
                compact_min_bytes: self.compact_min_bytes,
                checkpoint_interval: self.checkpoint_interval,
                checkpoint_rate: self.checkpoint_rate,
                next_checkpoint_ms: AtomicU64::new(0),
                live_bytes: AtomicU64::new(0),
            });
        }
        let cfg = ExpiryConfig {
            tick_ms: crate::clock::floor_ms(self.tick),
            mode: self.expiry_mode,
            retry_ms: crate::clock::ceil_ms(self.retry_interval),
            rate_limit: self.expiry_rate_limit,
            batch_max: self.batch_max,
        };
        let lessor = Lessor::start(
            inner,
            cfg,
            self.channel_capacity,
            self.expiry_thread,
            recovery,
        )?;
        if durable && self.primary {
            lessor.promote(Duration::ZERO);
        }
        Ok(lessor)
    }
}
