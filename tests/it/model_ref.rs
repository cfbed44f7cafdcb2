//! The reference model of `model_ops.rs`: what the contract
//! (`shared/reference/lessor-api.md`) and the public docs say a lessor holds after each op,
//! kept in plain `BTreeMap`s.
//!
//! Rules it encodes (each from the contract or a method's docs):
//!
//! - Time is engine milliseconds since the lessor was built. New deadlines start from "now"
//!   rounded *up*; "has this deadline passed" (renew, expiry) compares with "now" rounded
//!   *down*; lookups report the time left from "now" rounded *up*.
//! - Grant checks, in order: stopped, id 0 (not found), TTL over `MAX_TTL`, id taken; TTLs
//!   round up to the millisecond and are raised to the 1 ms minimum. Primary: deadline
//!   now + TTL; otherwise "forever".
//! - Renew: stopped, not primary (even for unknown ids), unknown, expired (delivered, or its
//!   deadline has passed) -- an expired lease is never brought back; else deadline
//!   now + TTL, the checkpoint is cleared, and the answer is the granted TTL.
//! - Revoke removes the lease and its keys in one delete transaction (keys ascending),
//!   whether primary or not, expired or not. Attach moves a key from its old lease; detach of
//!   a key the lease lacks is a no-op; keys are checked (empty, too long) before the lease.
//! - Checkpoint records max(remaining, 1 ms) until the next renew; promote gives each lease
//!   now + extend + (checkpoint or TTL) and forgets deliveries; demote makes every lease
//!   "forever" and forgets deliveries. Neither is refused after stop.
//! - An expiry step delivers each lease whose deadline is at or before "now" (tick 1 ms), once;
//!   in notify mode it stays, and is delivered again every retry interval until revoked; in
//!   revoke mode it is revoked first. Nothing expires while not primary; nothing runs after
//!   stop.
//! - A reopen (crash or clean restart, [`Model::reopen`]) starts a new lessor on the same
//!   clock: engine time starts again at 0, nothing is stopped, and it is primary exactly when
//!   the old one was. Without a log it holds nothing. With one (fsync `Always`), every
//!   acknowledged grant, revoke (by the caller or by revoke-mode expiry), attach, detach and
//!   checkpoint survives, and so does the clearing of a checkpoint by the renew after it (the
//!   only thing a renew logs), so each lease comes back with its last checkpoint, if no renew
//!   followed it. Nothing else survives: a renew's new deadline is not logged. Deliveries are
//!   forgotten: an expired lease that was not revoked comes back live, as the contract's
//!   "rebuilds every lease" says. Then, if primary, it is promoted with no extension: each
//!   lease gets 0 + (checkpoint, else TTL); if not, "forever". Leases come back in grant
//!   order (ties in `leases()`), a compaction of the log in between or not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use lessor::{ExpiryMode, Remaining, MAX_TTL};

/// The longest key the lessor accepts in the model's configuration.
pub(crate) const MAX_KEY: usize = 8;

/// The engine's "forever" deadline, as the model orders it (after every finite deadline).
pub(crate) const FOREVER: u64 = u64::MAX;

/// A key of [`KEYS`]; shown as text in failure traces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(pub(crate) &'static [u8]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.0))
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        self.0
    }
}

/// What the model keeps of one lease.
#[derive(Debug, Clone)]
pub(crate) struct MLease {
    seq: u64,
    ttl_ms: u64,
    /// Engine ms; [`FOREVER`] while not primary.
    pub(crate) deadline: u64,
    keys: BTreeSet<Vec<u8>>,
    /// Delivered as expired (notify mode), not revoked since.
    expired: bool,
    /// Redelivery due at this engine ms (notify mode, once expired).
    retry_due: Option<u64>,
    /// A checkpointed remaining TTL in force (ms).
    checkpoint: Option<u64>,
    /// The last checkpoint in the log (ms). Equal to `checkpoint` after every op (a renew
    /// logs the clearing); kept apart so that the rule "a reopen keeps what was logged" reads
    /// as it is.
    logged_checkpoint: Option<u64>,
}

/// A lease as the public API shows it: id, ttl, remaining, keys.
pub(crate) type View = (i64, Duration, Remaining, Vec<Vec<u8>>);

/// An error as the model predicts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MErr {
    NotFound(i64),
    Expired(i64),
    Exists(i64),
    TtlTooLarge(Duration),
    NotPrimary,
    EmptyKey,
    KeyTooLarge(usize),
    Stopped,
    Other(String),
}

fn floor_ms(ns: u64) -> u64 {
    ns / 1_000_000
}

pub(crate) fn ceil_ms(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if d.subsec_nanos() % 1_000_000 == 0 {
        ms
    } else {
        ms.saturating_add(1)
    }
}

/// The engine clamps finite deadlines below its own "forever" (2^61 - 1 ms).
fn finite(ms: u64) -> u64 {
    ms.min((1 << 61) - 2)
}

/// The reference model: what the contract says the lessor holds.
#[derive(Debug)]
pub(crate) struct Model {
    /// Notify or revoke mode.
    mode: ExpiryMode,
    /// Redelivery interval (notify mode), ms.
    retry_ms: u64,
    pub(crate) now_ns: u64,
    pub(crate) primary: bool,
    pub(crate) stopped: bool,
    next_seq: u64,
    pub(crate) leases: BTreeMap<i64, MLease>,
    pub(crate) keys: BTreeMap<Vec<u8>, i64>,
    /// Keys each revoke transaction should delete, in order, since the last check.
    pub(crate) txns: Vec<Vec<Vec<u8>>>,
}

impl Model {
    pub(crate) fn new(primary: bool, mode: ExpiryMode, retry_ms: u64) -> Self {
        Model {
            mode,
            retry_ms,
            now_ns: 0,
            primary,
            stopped: false,
            next_seq: 0,
            leases: BTreeMap::new(),
            keys: BTreeMap::new(),
            txns: Vec::new(),
        }
    }

    fn floor(&self) -> u64 {
        floor_ms(self.now_ns)
    }

    fn ceil(&self) -> u64 {
        ceil_ms(Duration::from_nanos(self.now_ns))
    }

    fn running(&self) -> Result<(), MErr> {
        if self.stopped {
            Err(MErr::Stopped)
        } else {
            Ok(())
        }
    }

    /// The engine measures time left from "now" rounded up (so it never exceeds the TTL) and
    /// calls a lease overdue only once "now" rounded down has reached its deadline.
    fn remaining(&self, deadline: u64, floor: u64, ceil: u64) -> Remaining {
        if deadline == FOREVER {
            Remaining::Forever
        } else if deadline > floor {
            Remaining::Left(Duration::from_millis(deadline.saturating_sub(ceil)))
        } else {
            Remaining::Overdue(Duration::from_millis(floor - deadline))
        }
    }

    fn view_at(&self, id: i64, l: &MLease, floor: u64, ceil: u64) -> View {
        (
            id,
            Duration::from_millis(l.ttl_ms),
            self.remaining(l.deadline, floor, ceil),
            l.keys.iter().cloned().collect(),
        )
    }

    pub(crate) fn lookup(&self, id: i64) -> Option<View> {
        let l = self.leases.get(&id)?;
        Some(self.view_at(id, l, self.floor(), self.ceil()))
    }

    pub(crate) fn leases(&self) -> Vec<View> {
        let mut all: Vec<(u64, u64, i64)> = self
            .leases
            .iter()
            .map(|(id, l)| (l.deadline, l.seq, *id))
            .collect();
        all.sort_unstable();
        all.into_iter()
            .filter_map(|(_, _, id)| self.lookup(id))
            .collect()
    }

    pub(crate) fn grant(&mut self, id: i64, ttl: Duration) -> Result<View, MErr> {
        self.running()?;
        if id == 0 {
            return Err(MErr::NotFound(0));
        }
        if ttl > MAX_TTL {
            return Err(MErr::TtlTooLarge(ttl));
        }
        if self.leases.contains_key(&id) {
            return Err(MErr::Exists(id));
        }
        let ttl_ms = ceil_ms(ttl).max(1);
        let deadline = if self.primary {
            finite(self.ceil() + ttl_ms)
        } else {
            FOREVER
        };
        self.next_seq += 1;
        let lease = MLease {
            seq: self.next_seq,
            ttl_ms,
            deadline,
            keys: BTreeSet::new(),
            expired: false,
            retry_due: None,
            checkpoint: None,
            logged_checkpoint: None,
        };
        self.leases.insert(id, lease);
        let remaining = if self.primary {
            Remaining::Left(Duration::from_millis(ttl_ms))
        } else {
            Remaining::Forever
        };
        Ok((id, Duration::from_millis(ttl_ms), remaining, Vec::new()))
    }

    pub(crate) fn renew(&mut self, id: i64) -> Result<Duration, MErr> {
        self.running()?;
        if !self.primary {
            return Err(MErr::NotPrimary);
        }
        let (floor, ceil) = (self.floor(), self.ceil());
        let l = self.leases.get_mut(&id).ok_or(MErr::NotFound(id))?;
        if l.expired || l.deadline <= floor {
            return Err(MErr::Expired(id));
        }
        l.deadline = finite(ceil + l.ttl_ms);
        l.checkpoint = None;
        l.logged_checkpoint = None;
        Ok(Duration::from_millis(l.ttl_ms))
    }

    /// `renew_many`: refused whole when stopped or not primary, else each id as `renew`.
    pub(crate) fn renew_many(&mut self, ids: &[i64]) -> Result<Vec<Result<Duration, MErr>>, MErr> {
        self.running()?;
        if !self.primary {
            return Err(MErr::NotPrimary);
        }
        Ok(ids.iter().map(|&id| self.renew(id)).collect())
    }

    /// Removes a lease and its keys, recording the revoke's delete transaction.
    fn remove(&mut self, id: i64) -> Option<MLease> {
        let l = self.leases.remove(&id)?;
        for k in &l.keys {
            self.keys.remove(k);
        }
        self.txns.push(l.keys.iter().cloned().collect());
        Some(l)
    }

    pub(crate) fn revoke(&mut self, id: i64) -> Result<(), MErr> {
        self.running()?;
        self.remove(id).map(drop).ok_or(MErr::NotFound(id))
    }

    fn check_keys(&self, keys: &[Key]) -> Result<(), MErr> {
        self.running()?;
        for Key(k) in keys {
            if k.is_empty() {
                return Err(MErr::EmptyKey);
            }
            if k.len() > MAX_KEY {
                return Err(MErr::KeyTooLarge(k.len()));
            }
        }
        Ok(())
    }

    pub(crate) fn attach(&mut self, id: i64, keys: &[Key]) -> Result<(), MErr> {
        self.check_keys(keys)?;
        if !self.leases.contains_key(&id) {
            return Err(MErr::NotFound(id));
        }
        for Key(k) in keys {
            if let Some(from) = self.keys.insert(k.to_vec(), id) {
                if let Some(old) = self.leases.get_mut(&from) {
                    old.keys.remove(*k);
                }
            }
            self.leases
                .get_mut(&id)
                .expect("checked above")
                .keys
                .insert(k.to_vec());
        }
        Ok(())
    }

    pub(crate) fn detach(&mut self, id: i64, keys: &[Key]) -> Result<(), MErr> {
        self.check_keys(keys)?;
        let l = self.leases.get_mut(&id).ok_or(MErr::NotFound(id))?;
        for Key(k) in keys {
            if l.keys.remove(*k) {
                self.keys.remove(*k);
            }
        }
        Ok(())
    }

    pub(crate) fn checkpoint(&mut self, id: i64, remaining: Duration) -> Result<(), MErr> {
        self.running()?;
        let l = self.leases.get_mut(&id).ok_or(MErr::NotFound(id))?;
        l.checkpoint = Some(ceil_ms(remaining).max(1));
        l.logged_checkpoint = l.checkpoint;
        Ok(())
    }

    /// Compaction rewrites the log; what it holds, and so any later reopen, is unchanged.
    pub(crate) fn compact(&mut self) -> Result<(), MErr> {
        self.running()
    }

    pub(crate) fn promote(&mut self, extend: Duration) {
        self.primary = true;
        let now = self.ceil();
        let extend = ceil_ms(extend);
        for l in self.leases.values_mut() {
            let base = l.checkpoint.unwrap_or(l.ttl_ms);
            l.deadline = finite(now + extend + base);
            l.expired = false;
            l.retry_due = None;
        }
    }

    pub(crate) fn demote(&mut self) {
        self.primary = false;
        for l in self.leases.values_mut() {
            l.deadline = FOREVER;
            l.expired = false;
            l.retry_due = None;
        }
    }

    /// A new lessor after a crash or a clean stop (see the module docs): `durable` when it
    /// replays a log, `primary` as the old one was.
    pub(crate) fn reopen(&mut self, durable: bool, primary: bool) {
        self.now_ns = 0;
        self.stopped = false;
        if !durable {
            self.leases.clear();
            self.keys.clear();
        }
        for l in self.leases.values_mut() {
            l.checkpoint = l.logged_checkpoint;
        }
        // Replay leaves every lease "forever" and undelivered; then the open-time promote.
        self.demote();
        if primary {
            self.promote(Duration::ZERO);
        }
    }

    /// One expiry step: what it delivers (views at delivery), in no particular order.
    pub(crate) fn run_expiry(&mut self) -> Result<Vec<(u64, View)>, MErr> {
        self.running()?;
        if !self.primary {
            return Ok(Vec::new());
        }
        let now = self.floor();
        let mut out = Vec::new();
        let ids: Vec<i64> = self.leases.keys().copied().collect();
        for id in ids {
            let l = &self.leases[&id];
            let redeliver = l.expired && l.retry_due.is_some_and(|due| due <= now);
            let newly = !l.expired && l.deadline != FOREVER && l.deadline <= now;
            if !(redeliver || newly) {
                continue;
            }
            let v = self.view_at(id, l, now, now);
            let deadline = l.deadline;
            match self.mode {
                ExpiryMode::Revoke => {
                    self.remove(id);
                }
                _ => {
                    let l = self.leases.get_mut(&id).expect("listed above");
                    l.expired = true;
                    l.retry_due = Some(now + self.retry_ms);
                }
            }
            out.push((deadline, v));
        }
        Ok(out)
    }
}
