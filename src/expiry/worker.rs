//! [`ExpiryWorker`]: one step of expiry, `run_once(now)`.

use std::collections::VecDeque;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

use super::limiter::RateLimiter;
use super::ExpiryMode;
use crate::lease::{deadline_of, remaining_of, Lease, LeaseRecord, EXPIRED, FOREVER};
use crate::lessor::Inner;
use crate::shard::Filing;
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
    /// Renewed: file it again at this tick.
    Refile(u64),
    /// Due, but the worker may not expire anything more this step.
    Hold,
    /// Expired now (state word marked): its deadline and what to deliver.
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
    /// What this step expired, with deadlines; sorted and cut into batches at the end of it.
    batch: Vec<(u64, Lease)>,
    tx: Sender<Vec<Lease>>,
    limiter: Option<RateLimiter>,
    fired: Vec<Filing>,
    spare: Vec<(Filing, u64)>,
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
            // Epoch 0 with a lessor that starts primary needs no rebuild: the wheel is empty.
            seen_epoch: inner.epoch.load(Ordering::SeqCst),
            inner,
            cfg,
            wheel,
            backlog: VecDeque::new(),
            retry: VecDeque::new(),
            outbox: VecDeque::new(),
            batch: Vec::new(),
            tx,
            fired: Vec::new(),
            spare: Vec::new(),
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
        while self.may_expire() {
            let Some(f) = self.backlog.pop_front() else {
                break;
            };
            self.consider(f, now_ms);
        }
        while self.may_expire() {
            match self.retry.front() {
                Some(&(due, f)) if due <= now_ms => {
                    self.retry.pop_front();
                    self.consider(f, now_ms);
                }
                _ => break,
            }
        }
        let mut fired = std::mem::take(&mut self.fired);
        self.wheel.advance(now_ms / self.cfg.tick_ms, &mut fired);
        for f in fired.drain(..) {
            self.consider(f, now_ms);
        }
        self.fired = fired;
        self.send_batches();
        self.delivered
    }

    fn may_expire(&self) -> bool {
        self.outbox.is_empty() && self.limiter.as_ref().is_none_or(RateLimiter::has_token)
    }

    /// Looks at one filing and acts on the verdict.
    fn consider(&mut self, f: Filing, now_ms: u64) {
        let may_expire = self.may_expire();
        match self.examine(f, now_ms, may_expire) {
            Verdict::Drop => {}
            Verdict::Refile(tick) => self.wheel.insert(tick, f),
            Verdict::Hold => self.backlog.push_back(f),
            Verdict::Expired(deadline, mut lease) => {
                if let Some(l) = self.limiter.as_mut() {
                    l.try_take();
                }
                match self.cfg.mode {
                    ExpiryMode::Notify => {
                        self.retry
                            .push_back((now_ms.saturating_add(self.cfg.retry_ms), f));
                    }
                    ExpiryMode::Revoke => match self.inner.revoke(f.id, Some(f.seq)) {
                        Ok(keys) => lease.keys = keys.into_iter().map(Vec::from).collect(),
                        // Revoked by its owner meanwhile: nothing to deliver.
                        Err(_) => return,
                    },
                }
                self.batch.push((deadline, lease));
                self.delivered += 1;
            }
        }
    }

    /// Reads the lease's record under its shard's shared lock and decides.
    fn examine(&self, f: Filing, now_ms: u64, may_expire: bool) -> Verdict {
        let h = self.inner.hash_id(f.id);
        self.inner.leases.read(self.inner.leases.index(h), |s| {
            let Some(rec) = s.get(h, f.id) else {
                return Verdict::Drop;
            };
            if rec.seq != f.seq {
                return Verdict::Drop;
            }
            let mut cur = rec.load();
            loop {
                let deadline = deadline_of(cur);
                if !LeaseRecord::is_live(cur) || deadline == FOREVER {
                    return Verdict::Drop;
                }
                let redelivery = cur & EXPIRED != 0;
                if !redelivery && deadline > now_ms {
                    return Verdict::Refile(self.file_tick(deadline, now_ms, rec.ttl_ms));
                }
                if !may_expire {
                    return Verdict::Hold;
                }
                let lease = |word| Lease {
                    id: f.id,
                    ttl: Duration::from_millis(rec.ttl_ms),
                    remaining: remaining_of(word, now_ms),
                    keys: s.keys_of(f.id),
                };
                if redelivery {
                    return Verdict::Expired(deadline, lease(cur));
                }
                match rec.state.compare_exchange_weak(
                    cur,
                    cur | EXPIRED,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Verdict::Expired(deadline, lease(cur)),
                    Err(actual) => cur = actual,
                }
            }
        })
    }

    /// The tick to file a lease at: its deadline, but never later than `now + ttl`. A renew
    /// sets the deadline to (its own) now + TTL, which may be *earlier* than a deadline that a
    /// promote extended; filing no later than that means the slot always fires at or before the
    /// true deadline, and the lazy re-file then finds it.
    fn file_tick(&self, deadline: u64, now_ms: u64, ttl_ms: u64) -> u64 {
        file_tick(self.cfg.tick_ms, deadline, now_ms, ttl_ms)
    }

    /// Sorts what this step expired by deadline (stable: ties keep their filing order), cuts
    /// it into batches and sends them; what does not fit waits in the outbox.
    fn send_batches(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.batch.sort_by_key(|(deadline, _)| *deadline);
        let batch_max = self.cfg.batch_max;
        let mut leases = self.batch.drain(..).map(|(_, lease)| lease).peekable();
        while leases.peek().is_some() {
            let chunk: Vec<Lease> = leases.by_ref().take(batch_max).collect();
            self.outbox.push_back(chunk);
        }
        drop(leases);
        self.flush_outbox();
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
        let mut taken = std::mem::take(&mut self.spare);
        for i in 0..self.inner.leases.len() {
            self.inner
                .leases
                .write(i, |s| std::mem::swap(&mut s.intake, &mut taken));
            for (f, deadline) in taken.drain(..) {
                if deadline != FOREVER {
                    self.wheel.insert(deadline.div_ceil(self.cfg.tick_ms), f);
                }
            }
        }
        self.spare = taken;
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
        self.batch.clear();
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
                    };
                    if word & EXPIRED != 0 {
                        self.retry.push_back((now_ms, f));
                    } else {
                        let tick = file_tick(self.cfg.tick_ms, deadline, now_ms, rec.ttl_ms);
                        self.wheel.insert(tick, f);
                    }
                }
            });
        }
    }
}

/// See [`ExpiryWorker::file_tick`].
fn file_tick(tick_ms: u64, deadline: u64, now_ms: u64, ttl_ms: u64) -> u64 {
    deadline.min(now_ms.saturating_add(ttl_ms)).div_ceil(tick_ms)
}
