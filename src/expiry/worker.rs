//! [`ExpiryWorker`]: one step of expiry, `run_once(now)`.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::delivery::Delivery;
use super::limiter::RateLimiter;
use super::ExpiryMode;
use crate::lease::{deadline_of, remaining_of, Lease, LeaseRecord, EXPIRED, FOREVER};
use crate::lessor::Inner;
use crate::radix::radix_sort_by;
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
    wheel: Wheel<Filing>,
    seen_epoch: u64,
    /// Due leases not yet expired (rate limit or a full channel).
    backlog: VecDeque<Filing>,
    /// Delivered, not yet revoked (notify mode): delivered again at the time given.
    retry: VecDeque<(u64, Filing)>,
    /// Batches the channel had no room for, oldest first.
    outbox: VecDeque<Vec<Lease>>,
    /// What this step expires, cut into batches as it goes.
    out: Delivery,
    tx: Sender<Vec<Lease>>,
    limiter: Option<RateLimiter>,
    /// Reused buffers: fired filings, the same grouped by shard, and decisions of one shard.
    fired: Vec<Filing>,
    groups: Vec<Vec<(Filing, u64)>>,
    decided: Vec<(Filing, Verdict)>,
    delivered: usize,
}

impl std::fmt::Debug for ExpiryWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpiryWorker")
            .field("filed", &self.wheel.len())
            .field("backlog", &self.backlog.len())
            .field("retry", &self.retry.len())
            .finish_non_exhaustive()
    }
}

impl ExpiryWorker {
    pub(crate) fn new(inner: Arc<Inner>, cfg: ExpiryConfig, tx: Sender<Vec<Lease>>) -> Self {
        let now_ms = inner.time.now_ms();
        let mut wheel = Wheel::new();
        wheel.set_elapsed(now_ms / cfg.tick_ms);
        ExpiryWorker {
            limiter: cfg.rate_limit.map(|r| RateLimiter::new(r, now_ms)),
            // A lessor that starts primary needs no rebuild: its wheel is empty.
            seen_epoch: inner.epoch.load(Ordering::SeqCst),
            groups: (0..inner.leases.len()).map(|_| Vec::new()).collect(),
            out: Delivery::new(cfg.batch_max),
            inner,
            cfg,
            wheel,
            backlog: VecDeque::new(),
            retry: VecDeque::new(),
            outbox: VecDeque::new(),
            tx,
            fired: Vec::new(),
            decided: Vec::new(),
            delivered: 0,
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
        self.wheel.len() + self.backlog.len() + self.retry.len()
    }

    /// One step at engine time `now_ms`: take new leases in, fire due slots, expire and deliver.
    /// Returns how many leases were delivered (sent or queued to send) in this step.
    pub(crate) fn run_once(&mut self, now_ms: u64) -> usize {
        self.delivered = 0;
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
        if let Some(l) = self.limiter.as_mut() {
            l.refill(now_ms);
        }
        self.flush_outbox();
        self.drain_intake();
        // Leases that were due before this step go first.
        while self.budget() > 0 {
            let Some(f) = self.backlog.pop_front() else {
                break;
            };
            self.consider_one(f, now_ms, false);
        }
        while self.budget() > 0 {
            match self.retry.front() {
                Some(&(due, f)) if due <= now_ms => {
                    self.retry.pop_front();
                    self.consider_one(f, now_ms, true);
                }
                _ => break,
            }
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(now_ms / self.cfg.tick_ms, &mut fired);
        self.consider_fired(&mut fired, now_ms);
        self.fired = fired;
        self.out.finish(&mut self.outbox);
        self.flush_outbox();
        self.delivered
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

    /// One filing from the backlog or the retry queue.
    fn consider_one(&mut self, f: Filing, now_ms: u64, from_retry: bool) {
        let h = self.inner.hash_id(f.id);
        let may = self.budget() > 0;
        let tick_ms = self.cfg.tick_ms;
        let verdict = self.inner.leases.read(self.inner.leases.index(h), |s| {
            examine(s, f, h, now_ms, may, from_retry, tick_ms)
        });
        self.apply(f, verdict, now_ms);
    }

    /// The filings whose slots fired, grouped by shard so that each shard's lock is taken once.
    fn consider_fired(&mut self, fired: &mut Vec<Filing>, now_ms: u64) {
        let inner = self.inner.clone();
        for f in fired.drain(..) {
            if f.due > now_ms {
                // A candidate from a higher level: cascade it down, no lookup needed.
                self.file(f);
                continue;
            }
            let h = inner.hash_id(f.id);
            self.groups[inner.leases.index(h)].push((f, h));
        }
        let tick_ms = self.cfg.tick_ms;
        for i in 0..self.groups.len() {
            if self.groups[i].is_empty() {
                continue;
            }
            let mut group = std::mem::take(&mut self.groups[i]);
            let mut budget = self.budget();
            let decided = &mut self.decided;
            inner.leases.read(i, |s| {
                if group.len() >= BUCKET_ORDER_MIN {
                    // A burst: visit the table in bucket order, so the lookups walk memory
                    // forwards instead of at random.
                    let mask = bucket_mask(s.leases.capacity());
                    radix_sort_by(&mut group, &mut Vec::new(), |&(_, h)| h & mask);
                }
                for &(f, h) in &group {
                    let verdict = examine(s, f, h, now_ms, budget > 0, false, tick_ms);
                    if matches!(verdict, Verdict::Expired(..)) {
                        budget -= 1;
                    }
                    decided.push((f, verdict));
                }
            });
            group.clear();
            self.groups[i] = group;
            let mut decided = std::mem::take(&mut self.decided);
            for (f, verdict) in decided.drain(..) {
                self.apply(f, verdict, now_ms);
            }
            self.decided = decided;
        }
    }

    /// Acts on a verdict, outside every shard lock.
    fn apply(&mut self, f: Filing, verdict: Verdict, now_ms: u64) {
        match verdict {
            Verdict::Drop => {}
            Verdict::Refile(due) => self.file(Filing { due, ..f }),
            Verdict::Hold => self.backlog.push_back(f),
            Verdict::Expired(tick, mut lease) => {
                if let Some(l) = self.limiter.as_mut() {
                    l.try_take();
                }
                match self.cfg.mode {
                    ExpiryMode::Notify => {
                        let due = now_ms.saturating_add(self.cfg.retry_ms);
                        self.retry.push_back((due, f));
                    }
                    ExpiryMode::Revoke => match self.inner.revoke(f.id, Some(f.seq)) {
                        Ok(keys) => lease.keys = keys.into_iter().map(Vec::from).collect(),
                        // Revoked by its owner meanwhile: nothing to deliver.
                        Err(_) => return,
                    },
                }
                self.delivered += 1;
                if let Some(batch) = self.out.push(tick, lease) {
                    self.outbox.push_back(batch);
                    self.flush_outbox();
                }
            }
        }
    }

    /// Files a lease in the wheel at its `due` tick.
    fn file(&mut self, f: Filing) {
        self.wheel.insert(f.due.div_ceil(self.cfg.tick_ms), f);
    }

    /// Sends waiting batches, oldest first, until the channel is full.
    fn flush_outbox(&mut self) {
        while let Some(batch) = self.outbox.pop_front() {
            match self.tx.try_send(batch) {
                // Nobody listens any more: the batch has nowhere to go.
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(batch)) => {
                    self.outbox.push_front(batch);
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
                    self.file(f);
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
        self.wheel.clear();
        self.wheel.set_elapsed(now_ms / self.cfg.tick_ms);
        self.backlog.clear();
        self.retry.clear();
        self.outbox.clear();
        self.out.clear();
        if !primary {
            self.discard_intake();
            return;
        }
        let tick_ms = self.cfg.tick_ms;
        for i in 0..self.inner.leases.len() {
            let (wheel, retry) = (&mut self.wheel, &mut self.retry);
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
                        retry.push_back((now_ms, f));
                    } else {
                        wheel.insert(f.due.div_ceil(tick_ms), f);
                    }
                }
            });
        }
    }
}

/// Groups at least this large are looked up in bucket order.
const BUCKET_ORDER_MIN: usize = 4096;

/// hashbrown's bucket mask for a table of this capacity (7/8 of a power of two from 8 buckets
/// on). Only the lookup order depends on it: a wrong guess costs speed, never correctness.
fn bucket_mask(capacity: usize) -> u64 {
    let buckets = if capacity < 8 {
        8
    } else {
        (capacity / 7 * 8).next_power_of_two()
    };
    (buckets - 1) as u64
}

/// Reads one lease's record (its shard's lock held by the caller) and decides.
fn examine(
    s: &LeaseShard,
    f: Filing,
    h: u64,
    now_ms: u64,
    may_expire: bool,
    from_retry: bool,
    tick_ms: u64,
) -> Verdict {
    let Some(rec) = s.get(h, f.id) else {
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
