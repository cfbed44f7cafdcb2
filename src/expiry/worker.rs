//! [`ExpiryWorker`]: one step of expiry, `run_once(now)`.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::delivery::Delivery;
use super::limiter::RateLimiter;
use super::ExpiryMode;
use crate::lease::{deadline_of, remaining_of, Lease, LeaseRecord, EXPIRED, FOREVER};
use crate::lessor::Inner;
use crate::radix::{flag_sort_by, FLAG_BITS_MAX};
use crate::shard::{Filing, LeaseShard};
use crate::sync::{Arc, Ordering};
use crate::wheel::Wheel;

/// Settings of the worker, from the builder.
#[derive(Debug, Clone)]
pub(crate) struct ExpiryConfig {
    pub(crate) tick_ms: u64,
    pub(crate) mode: ExpiryMode,
    pub(crate) retry_ms: u64,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) batch_max: usize,
}

/// What the worker decided about one filing.
enum Verdict {
    /// Gone, re-granted, already delivered, or not primary: forget the filing.
    Drop,
    /// Renewed: file it again, due at this deadline (ms).
    Refile(u64),
    /// Due, but the worker may not expire anything more this step.
    Hold,
    /// Expired now (state word marked): its deadline's tick and what to deliver.
    Expired(u64, Lease),
}

/// Owns the wheel and turns passed deadlines into batches of expired leases.
pub(crate) struct ExpiryWorker {
    inner: Arc<Inner>,
    cfg: ExpiryConfig,
    seen_epoch: u64,
    /// The wheel and the queues: everything a decision may change.
    sinks: Sinks,
    tx: Sender<Vec<Lease>>,
    /// Reused buffers: fired filings, and revoke mode's decisions of one chunk.
    fired: Vec<Filing>,
    decided: Vec<(Filing, Verdict)>,
}

/// What the worker owns and decisions change: the wheel, the backlog, the retry queue and the
/// batches on their way out. Kept apart from the worker's shared handles so that a decision is
/// acted on while its shard's read lock is still held: nothing here takes a lock, writes the
/// log or sends on a channel.
struct Sinks {
    tick_ms: u64,
    wheel: Wheel<Filing>,
    /// Due leases not yet expired (rate limit or a full channel).
    backlog: VecDeque<Filing>,
    /// Delivered, not yet revoked (notify mode), in the order they are due again: a filing's
    /// `due` here is when it is delivered again.
    retry: VecDeque<Filing>,
    /// Batches the channel had no room for yet, oldest first.
    outbox: VecDeque<Vec<Lease>>,
    /// What this step expires, cut into batches as it goes.
    out: Delivery,
    limiter: Option<RateLimiter>,
    /// Leases delivered (sent or queued to send) in this step.
    delivered: usize,
}

impl Sinks {
    /// Files a lease in the wheel at its `due` tick.
    fn file(&mut self, f: Filing) {
        self.wheel.insert(f.due.div_ceil(self.tick_ms), f);
    }

    /// How many more leases this step may expire: none while a batch waits for room in the
    /// channel, else what the rate limit allows.
    fn budget(&self) -> usize {
        if !self.outbox.is_empty() {
            return 0;
        }
        self.limiter
            .as_ref()
            .map_or(usize::MAX, RateLimiter::available)
    }

    /// Acts on a verdict that needs no lock: files, holds or forgets the lease, or delivers it
    /// in notify mode (queued for redelivery at `retry_at`).
    fn settle(&mut self, f: Filing, verdict: Verdict, retry_at: u64) {
        match verdict {
            Verdict::Drop => {}
            Verdict::Refile(due) => self.file(Filing { due, ..f }),
            Verdict::Hold => self.backlog.push_back(f),
            Verdict::Expired(tick, lease) => {
                self.retry.push_back(Filing { due: retry_at, ..f });
                self.deliver(tick, lease);
            }
        }
    }

    /// Counts an expired lease against the rate limit and adds it to this step's batches.
    fn deliver(&mut self, tick: u64, lease: Lease) {
        if let Some(l) = self.limiter.as_mut() {
            l.try_take();
        }
        self.delivered += 1;
        if let Some(batch) = self.out.push(tick, lease) {
            self.outbox.push_back(batch);
        }
    }
}

impl std::fmt::Debug for ExpiryWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpiryWorker")
            .field("filed", &self.sinks.wheel.len())
            .field("backlog", &self.sinks.backlog.len())
            .field("retry", &self.sinks.retry.len())
            .finish_non_exhaustive()
    }
}

impl ExpiryWorker {
    pub(crate) fn new(inner: Arc<Inner>, cfg: ExpiryConfig, tx: Sender<Vec<Lease>>) -> Self {
        let now_ms = inner.time.now_ms();
        let mut wheel = Wheel::new();
        wheel.set_elapsed(now_ms / cfg.tick_ms);
        ExpiryWorker {
            sinks: Sinks {
                tick_ms: cfg.tick_ms,
                wheel,
                backlog: VecDeque::new(),
                retry: VecDeque::new(),
                outbox: VecDeque::new(),
                out: Delivery::new(cfg.batch_max),
                limiter: cfg.rate_limit.map(|r| RateLimiter::new(r, now_ms)),
                delivered: 0,
            },
            // A lessor that starts primary needs no rebuild: its wheel is empty.
            seen_epoch: inner.epoch.load(Ordering::SeqCst),
            inner,
            cfg,
            tx,
            fired: Vec::new(),
            decided: Vec::new(),
        }
    }

    /// The wheel's tick.
    pub(crate) fn tick(&self) -> Duration {
        Duration::from_millis(self.cfg.tick_ms)
    }

    /// Leases the worker tracks: filed in the wheel, due in the backlog, or awaiting
    /// redelivery.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn tracked(&self) -> usize {
        self.sinks.wheel.len() + self.sinks.backlog.len() + self.sinks.retry.len()
    }

    /// One step at engine time `now_ms`: take new leases in, fire due slots, expire and deliver.
    /// Returns how many leases were delivered (sent or queued to send) in this step.
    pub(crate) fn run_once(&mut self, now_ms: u64) -> usize {
        self.sinks.delivered = 0;
        let epoch = self.inner.epoch.load(Ordering::SeqCst);
        let primary = self.inner.primary.load(Ordering::SeqCst);
        if epoch != self.seen_epoch {
            self.rebuild(primary, now_ms);
            self.seen_epoch = epoch;
        }
        if !primary {
            self.discard_intake();
            return 0;
        }
        if let Some(l) = self.sinks.limiter.as_mut() {
            l.refill(now_ms);
        }
        self.flush_outbox();
        self.drain_intake();
        // Leases that were due before this step go first.
        while self.sinks.budget() > 0 {
            let Some(f) = self.sinks.backlog.pop_front() else {
                break;
            };
            self.consider_one(f, now_ms, false);
        }
        while self.sinks.budget() > 0 {
            match self.sinks.retry.front() {
                Some(&f) if f.due <= now_ms => {
                    self.sinks.retry.pop_front();
                    self.consider_one(f, now_ms, true);
                }
                _ => break,
            }
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.sinks
            .wheel
            .advance(now_ms / self.cfg.tick_ms, &mut fired);
        self.consider_fired(&mut fired, now_ms);
        // Keep the buffer of ordinary steps; let a burst's large one go.
        if fired.capacity() <= KEEP_MAX {
            self.fired = fired;
        }
        self.sinks.out.finish(&mut self.sinks.outbox);
        self.flush_outbox();
        // A burst's room in the retry queue goes once most of it stands empty.
        let retry = &mut self.sinks.retry;
        if retry.capacity() > KEEP_MAX && retry.len() < retry.capacity() / 4 {
            retry.shrink_to(retry.len() * 2);
        }
        self.sinks.delivered
    }

    /// One filing from the backlog or the retry queue.
    fn consider_one(&mut self, f: Filing, now_ms: u64, from_retry: bool) {
        let h = self.inner.hash_id(f.id);
        let may = self.sinks.budget() > 0;
        let tick_ms = self.cfg.tick_ms;
        let verdict = self.inner.leases.read(self.inner.leases.index(h), |s| {
            examine(s, s.get(h, f.id), f, now_ms, may, from_retry, tick_ms)
        });
        self.apply(f, verdict, now_ms);
        self.flush_outbox();
    }

    /// The filings whose slots fired: cascades the candidates that are not due yet, orders the
    /// rest by shard and table position (in place: a burst's million filings need no second
    /// array), and decides on them a chunk at a time, one shard lock each.
    fn consider_fired(&mut self, fired: &mut Vec<Filing>, now_ms: u64) {
        let inner = self.inner.clone();
        let sinks = &mut self.sinks;
        fired.retain(|&f| {
            let due = f.due <= now_ms;
            if !due {
                // A candidate from a higher level: cascade it down, no lookup needed.
                sinks.file(f);
            }
            due
        });
        order_for_lookup(&inner, fired);
        if self.cfg.mode == ExpiryMode::Notify {
            // Room for every lease of a burst at once: one allocation, not a doubling series.
            self.sinks.retry.reserve(fired.len());
        }
        let shard_of = |f: &Filing| inner.leases.index(inner.hash_id(f.id));
        let mut rest = &fired[..];
        while let Some(first) = rest.first() {
            let shard = shard_of(first);
            let len = rest
                .iter()
                .take(CHUNK)
                .position(|f| shard_of(f) != shard)
                .unwrap_or(rest.len().min(CHUNK));
            let (chunk, tail) = rest.split_at(len);
            self.consider_chunk(&inner, shard, chunk, now_ms);
            self.flush_outbox();
            rest = tail;
        }
        fired.clear();
    }

    /// Decides on filings of one shard under one read lock. Every lookup comes first, then
    /// every decision: the lookups' cache misses overlap, where a compare-and-swap after each
    /// lookup would wait for it alone. In notify mode each decision is acted on at once; in
    /// revoke mode the expired ones are revoked after the lock is let go.
    fn consider_chunk(&mut self, inner: &Inner, shard: usize, chunk: &[Filing], now_ms: u64) {
        let (tick_ms, notify) = (self.cfg.tick_ms, self.cfg.mode == ExpiryMode::Notify);
        let retry_at = now_ms.saturating_add(self.cfg.retry_ms);
        let (sinks, decided) = (&mut self.sinks, &mut self.decided);
        inner.leases.read(shard, |s| {
            let records: Vec<Option<&LeaseRecord>> = chunk
                .iter()
                .map(|f| s.get(inner.hash_id(f.id), f.id))
                .collect();
            let mut budget = sinks.budget();
            for (&f, rec) in chunk.iter().zip(records) {
                let verdict = examine(s, rec, f, now_ms, budget > 0, false, tick_ms);
                if matches!(verdict, Verdict::Expired(..)) {
                    budget -= 1;
                    if !notify {
                        decided.push((f, verdict));
                        continue;
                    }
                }
                sinks.settle(f, verdict, retry_at);
            }
        });
        let mut decided = std::mem::take(&mut self.decided);
        for (f, verdict) in decided.drain(..) {
            self.apply(f, verdict, now_ms);
        }
        self.decided = decided;
    }

    /// Acts on a verdict, outside every shard lock: revoke mode revokes an expired lease
    /// before delivering it.
    fn apply(&mut self, f: Filing, verdict: Verdict, now_ms: u64) {
        match verdict {
            Verdict::Expired(tick, mut lease) if self.cfg.mode == ExpiryMode::Revoke => {
                match self.inner.revoke(f.id, Some(f.seq)) {
                    Ok(keys) => lease.keys = keys.into_iter().map(Vec::from).collect(),
                    // Revoked by its owner meanwhile: nothing to deliver.
                    Err(_) => return,
                }
                self.sinks.deliver(tick, lease);
            }
            verdict => self
                .sinks
                .settle(f, verdict, now_ms.saturating_add(self.cfg.retry_ms)),
        }
    }

    /// Sends waiting batches, oldest first, until the channel is full.
    fn flush_outbox(&mut self) {
        while let Some(batch) = self.sinks.outbox.pop_front() {
            match self.tx.try_send(batch) {
                // Nobody listens any more: the batch has nowhere to go.
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(batch)) => {
                    self.sinks.outbox.push_front(batch);
                    return;
                }
            }
        }
    }

    /// Moves every shard's new leases into the wheel.
    fn drain_intake(&mut self) {
        let mut taken = Vec::new();
        for i in 0..self.inner.leases.len() {
            self.inner
                .leases
                .write(i, |s| std::mem::swap(&mut s.intake, &mut taken));
            for f in taken.drain(..) {
                if f.due != FOREVER {
                    self.sinks.file(f);
                }
            }
            // Give small buffers back for reuse; let a burst's large one go.
            if taken.capacity() > 4096 {
                taken = Vec::new();
            }
        }
    }

    fn discard_intake(&mut self) {
        for i in 0..self.inner.leases.len() {
            self.inner.leases.write(i, |s| s.intake = Vec::new());
        }
    }

    /// After a promote or demote: forget everything and, if primary, file every lease again.
    fn rebuild(&mut self, primary: bool, now_ms: u64) {
        let sinks = &mut self.sinks;
        sinks.wheel.clear();
        sinks.wheel.set_elapsed(now_ms / self.cfg.tick_ms);
        sinks.backlog.clear();
        sinks.retry.clear();
        sinks.outbox.clear();
        sinks.out.clear();
        if !primary {
            self.discard_intake();
            return;
        }
        for i in 0..self.inner.leases.len() {
            self.inner.leases.write(i, |s| {
                s.intake = Vec::new();
                for (id, rec) in s.leases.iter() {
                    let word = rec.load();
                    let deadline = deadline_of(word);
                    if !LeaseRecord::is_live(word) || deadline == FOREVER {
                        continue;
                    }
                    let f = Filing {
                        id: *id,
                        seq: rec.seq,
                        due: file_due(deadline, now_ms, rec.ttl_ms),
                    };
                    if word & EXPIRED != 0 {
                        sinks.retry.push_back(Filing { due: now_ms, ..f });
                    } else {
                        sinks.file(f);
                    }
                }
            });
        }
    }
}

/// The most filings decided under one shard lock: bounds how long a burst keeps the shard's
/// writers waiting, and lets full batches go out between chunks.
const CHUNK: usize = 4096;

/// The largest reused buffer the worker keeps between steps, in filings.
const KEEP_MAX: usize = 1 << 16;

/// Filings at least this many are sorted by table position; fewer, by shard only.
const BUCKET_ORDER_MIN: usize = 4096;

/// The fewest bucket bits the order keeps, whatever the shard count: 16 regions a table.
const MIN_BUCKET_BITS: u32 = 4;

/// Sorts due filings in place so that each shard's filings are contiguous and, past
/// [`BUCKET_ORDER_MIN`] filings, go forwards through the shard's table: a burst's lookups then
/// walk memory instead of jumping at random.
///
/// The order key is the shard index above the top bits of the filing's bucket in hashbrown's
/// table (the hash's low bits, under a mask from the table's capacity), few enough bits for
/// one in-place pass. Only the order depends on the guess of the table's layout: a wrong guess
/// costs speed, never correctness.
fn order_for_lookup(inner: &Inner, fired: &mut [Filing]) {
    let leases = &inner.leases;
    let shard_bits = leases.len().trailing_zeros();
    if fired.len() < BUCKET_ORDER_MIN {
        let shard = |f: &Filing| leases.index(inner.hash_id(f.id));
        if shard_bits <= FLAG_BITS_MAX {
            flag_sort_by(fired, shard_bits, shard);
        } else {
            fired.sort_unstable_by_key(shard);
        }
        return;
    }
    let top_bits = (FLAG_BITS_MAX - 1)
        .saturating_sub(shard_bits)
        .max(MIN_BUCKET_BITS);
    // Per shard: the bucket mask, and the shift that keeps its top `top_bits` bits.
    let layout: Vec<(u64, u32)> = (0..leases.len())
        .map(|i| {
            let mask = leases.read(i, |s| bucket_mask(s.leases.capacity()));
            (
                mask,
                (u64::BITS - mask.leading_zeros()).saturating_sub(top_bits),
            )
        })
        .collect();
    let key = |f: &Filing| {
        let h = inner.hash_id(f.id);
        let shard = leases.index(h);
        let (mask, shift) = layout[shard];
        (shard << top_bits) | ((h & mask) >> shift) as usize
    };
    if shard_bits + top_bits <= FLAG_BITS_MAX {
        flag_sort_by(fired, shard_bits + top_bits, key);
    } else {
        fired.sort_unstable_by_key(key);
    }
}

/// hashbrown's bucket mask for a table of this capacity (7/8 of a power of two from 8 buckets
/// on).
fn bucket_mask(capacity: usize) -> u64 {
    let buckets = if capacity < 8 {
        8
    } else {
        (capacity / 7 * 8).next_power_of_two()
    };
    (buckets - 1) as u64
}

/// Decides on one filing from its lease's record, looked up by the caller in shard `s` (whose
/// lock the caller holds).
fn examine(
    s: &LeaseShard,
    rec: Option<&LeaseRecord>,
    f: Filing,
    now_ms: u64,
    may_expire: bool,
    from_retry: bool,
    tick_ms: u64,
) -> Verdict {
    let Some(rec) = rec else {
        return Verdict::Drop;
    };
    if rec.seq != f.seq {
        return Verdict::Drop;
    }
    let mut cur = rec.load();
    loop {
        let deadline = deadline_of(cur);
        let expired = cur & EXPIRED != 0;
        // A wheel filing of an already delivered lease, or a retry of one that a promote
        // brought back: not ours to act on.
        if !LeaseRecord::is_live(cur) || deadline == FOREVER || expired != from_retry {
            return Verdict::Drop;
        }
        if !expired && deadline > now_ms {
            return Verdict::Refile(file_due(deadline, now_ms, rec.ttl_ms));
        }
        if !may_expire {
            return Verdict::Hold;
        }
        let lease = |word| Lease {
            id: f.id,
            ttl: Duration::from_millis(rec.ttl_ms),
            remaining: remaining_of(word, now_ms, now_ms),
            keys: if s.extras.is_empty() {
                Vec::new()
            } else {
                s.keys_of(f.id)
            },
        };
        let tick = deadline.div_ceil(tick_ms);
        if expired {
            return Verdict::Expired(tick, lease(cur));
        }
        match rec.state.compare_exchange_weak(
            cur,
            cur | EXPIRED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Verdict::Expired(tick, lease(cur)),
            Err(actual) => cur = actual,
        }
    }
}

/// When to look at a lease again: its deadline, but never later than `now + ttl`. A renew sets
/// the deadline to (its own) now + TTL, which may be *earlier* than a deadline that a promote
/// extended; filing no later than that means the slot always fires at or before the true
/// deadline, and the lazy re-file then finds it.
fn file_due(deadline: u64, now_ms: u64, ttl_ms: u64) -> u64 {
    deadline.min(now_ms.saturating_add(ttl_ms))
}
