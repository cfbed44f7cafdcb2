//! Promote and demote: becoming primary (leases start to expire) and stepping down.
//!
//! Promote follows etcd's `Promote`: every lease gets `now + extend + (checkpointed remaining
//! TTL, else TTL)`, and when there are at least `revoke_rate` leases, expiries that pile up are
//! spread so that at most 3/4 of the revoke rate fall in any one second ([`spread_expiries`]).
//! No lock is held across the whole pass: each shard is visited under its own lock, and the sort
//! runs with no lock at all.

use std::time::Duration;

use super::{Inner, Lessor};
use crate::clock::ceil_ms;
use crate::lease::{finite_deadline, LeaseId, LeaseRecord, CHECKPOINTED, DEADLINE_MASK, FOREVER};
use crate::radix::radix_sort_by;
use crate::shard::LeaseShard;
use crate::sync::Ordering;

impl Lessor {
    /// Makes this lessor primary: leases start to expire, `extend` later than their TTL (or
    /// checkpointed remaining TTL), with pile-ups spread as etcd does. A lease that was
    /// delivered as expired before a demote starts afresh, as in etcd.
    ///
    /// **Locking:** one shard lock at a time; the sort holds none.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor, ManualClock, Remaining};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lessor = Lessor::builder().clock(clock.clone()).primary(false).build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// lessor.promote(Duration::from_secs(5));
    /// let left = lessor.lookup(LeaseId::new(1)).unwrap().remaining();
    /// assert_eq!(left, Remaining::Left(Duration::from_secs(15)));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn promote(&self, extend: Duration) {
        self.inner.promote(extend);
    }

    /// Steps down: renewals are refused, every lease's deadline becomes "forever" and nothing is
    /// delivered as expired until the next promote.
    ///
    /// **Locking:** one shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor, Remaining};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// lessor.demote();
    /// assert_eq!(lessor.lookup(LeaseId::new(1)).unwrap().remaining(), Remaining::Forever);
    /// assert!(matches!(lessor.renew(LeaseId::new(1)), Err(Error::NotPrimary)));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn demote(&self) {
        self.inner.demote();
    }
}

impl Inner {
    pub(crate) fn promote(&self, extend: Duration) {
        // The flag goes first: a grant that misses the pass below sees it (module docs).
        self.primary.store(true, Ordering::SeqCst);
        let now = self.time.now_ms_ceil();
        let extend_ms = ceil_ms(extend);
        let spread = self.len() >= self.revoke_rate as usize;
        // Pass 1, shard by shard: every lease gets now + extend + (checkpoint or TTL). With
        // spreading, note each lease's remaining TTL and id by its position in the pass, and
        // each shard's first position and version.
        let count = if spread { self.len() } else { 0 };
        let mut pile: Vec<(u64, u32)> = Vec::with_capacity(count);
        let mut ids: Vec<LeaseId> = Vec::with_capacity(count);
        let mut shards: Vec<(usize, u64)> = Vec::with_capacity(self.leases.len() + 1);
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                shards.push((ids.len(), s.version));
                for (id, rec) in s.leases.iter() {
                    let remaining = refresh(s, *id, rec, now, extend_ms).unwrap_or(NOT_LIVE);
                    if spread {
                        pile.push((remaining, ids.len() as u32));
                        ids.push(*id);
                    }
                }
            });
        }
        shards.push((ids.len(), 0));
        if spread && u32::try_from(ids.len()).is_ok() {
            self.spread_pile(pile, &ids, &shards, now, extend_ms);
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Pass 2 of promote: sort by remaining TTL with no lock held (a stable radix sort: ties
    /// keep pass 1's order, which is as arbitrary as etcd's unstable sort), decide who moves
    /// (etcd's rule), then write the new deadlines shard by shard in pass 1's order, so no lease
    /// needs a hash lookup. A shard whose version moved meanwhile falls back to lookups.
    ///
    /// `pile` holds `(remaining, position in pass 1)`; spreading overwrites the remaining TTL of
    /// each lease it moves (always later, so a changed value marks a move). With one TTL for
    /// all, the sort is a no-op and the pile never leaves pass 1's order.
    fn spread_pile(
        &self,
        mut pile: Vec<(u64, u32)>,
        ids: &[LeaseId],
        shards: &[(usize, u64)],
        now: u64,
        extend_ms: u64,
    ) {
        let mut scratch = Vec::new();
        radix_sort_by(&mut pile, &mut scratch, |p| p.0);
        let live = pile.partition_point(|p| p.0 != NOT_LIVE);
        let mut moved = 0usize;
        spread_expiries(
            &mut pile[..live],
            |p| p.0,
            self.revoke_rate,
            |p, new| {
                p.0 = new;
                moved += 1;
            },
        );
        if moved == 0 {
            return;
        }
        if !pile.is_sorted_by_key(|p| p.1) {
            radix_sort_by(&mut pile, &mut scratch, |p| u64::from(p.1));
        }
        drop(scratch);
        let deadline = |ms: u64| finite_deadline(now.saturating_add(ms));
        for (i, pair) in shards.windows(2).enumerate() {
            let ((start, version), (end, _)) = (pair[0], pair[1]);
            let part = &pile[start..end];
            self.leases.read(i, |s| {
                if s.version == version {
                    for ((id, rec), &(new, _)) in s.leases.iter().zip(part) {
                        let old = remaining_of(s, *id, rec).saturating_add(extend_ms);
                        if new != NOT_LIVE && new != old {
                            move_deadline(rec, deadline(old), deadline(new));
                        }
                    }
                    return;
                }
                // Grants or revokes since pass 1: find each lease by its id.
                for &(new, pos) in part.iter().filter(|p| p.0 != NOT_LIVE) {
                    let id = ids[pos as usize];
                    if let Some(rec) = s.get(self.hash_id(id), id) {
                        let old = remaining_of(s, id, rec).saturating_add(extend_ms);
                        if new != old {
                            move_deadline(rec, deadline(old), deadline(new));
                        }
                    }
                }
            });
        }
    }

    pub(crate) fn demote(&self) {
        self.primary.store(false, Ordering::SeqCst);
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                for (_, rec) in s.leases.iter() {
                    let mut cur = rec.load();
                    while cur & crate::lease::SPECIAL == 0 {
                        let new = (cur & CHECKPOINTED) | FOREVER;
                        match rec.state.compare_exchange_weak(
                            cur,
                            new,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => break,
                            Err(actual) => cur = actual,
                        }
                    }
                }
            });
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// Marks a record that was not live in pass 1 (sorts last, never spread).
const NOT_LIVE: u64 = u64::MAX;

/// A lease's remaining TTL as promote counts it: the checkpointed one if any, else the TTL.
fn remaining_of(s: &LeaseShard, id: LeaseId, rec: &LeaseRecord) -> u64 {
    if rec.load() & CHECKPOINTED != 0 {
        s.extras.get(&id).map_or(rec.ttl_ms, |e| e.checkpoint_ms)
    } else {
        rec.ttl_ms
    }
}

/// Sets a lease's promoted deadline; returns its remaining TTL (ms), or `None` if it is not live.
fn refresh(
    s: &LeaseShard,
    id: LeaseId,
    rec: &LeaseRecord,
    now: u64,
    extend_ms: u64,
) -> Option<u64> {
    let remaining = remaining_of(s, id, rec).saturating_add(extend_ms);
    let mut cur = rec.load();
    loop {
        if !LeaseRecord::is_live(cur) {
            return None;
        }
        let new = (cur & CHECKPOINTED) | finite_deadline(now.saturating_add(remaining));
        match rec
            .state
            .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Some(remaining),
            Err(actual) => cur = actual,
        }
    }
}

/// Moves a deadline from `expected` to `new` if it is still `expected`.
fn move_deadline(rec: &LeaseRecord, expected: u64, new: u64) {
    let cur = rec.load();
    if LeaseRecord::is_live(cur) && cur & DEADLINE_MASK == expected {
        let _ = rec.state.compare_exchange(
            cur,
            (cur & CHECKPOINTED) | new,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }
}

/// etcd's "adjust expiries in case of overlap", on remaining TTLs in ms sorted ascending.
///
/// Windows of one second start at the first remaining TTL; once a window holds more than
/// `target = 3 * rate / 4` leases, the k-th lease of the window is pushed to
/// `window start + k / target` seconds (and the window grows to that point). Calls
/// `on_move(item, new remaining ms)` for each lease that moves.
///
/// For example, 10 leases at 1 s with rate 4 (target 3): the 4th..10th move to 1 s + k/3 s.
pub(crate) fn spread_expiries<T>(
    sorted: &mut [T],
    remaining_of: impl Fn(&T) -> u64,
    rate: u32,
    mut on_move: impl FnMut(&mut T, u64),
) {
    const SECOND: f64 = 1000.0;
    let target = (3 * u64::from(rate)) / 4;
    if target == 0 {
        return;
    }
    let mut window: Option<(f64, f64)> = None; // (base, next)
    let mut expires: u64 = 0;
    for item in sorted.iter_mut() {
        let remaining = remaining_of(item) as f64;
        let (base, next) = window.get_or_insert((remaining, remaining + SECOND));
        if remaining > *next {
            *base = remaining;
            *next = remaining + SECOND;
            expires = 1;
            continue;
        }
        expires += 1;
        if expires <= target {
            continue;
        }
        let delay = SECOND * (expires as f64 / target as f64) - (remaining - *base);
        *next = *base + delay;
        // Positive, so adding a half and truncating rounds (without a libm call).
        on_move(item, (remaining + delay + 0.5) as u64);
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    fn moves(sorted: &[u64], rate: u32) -> Vec<(usize, u64)> {
        let mut items: Vec<(usize, u64)> = sorted.iter().copied().enumerate().collect();
        let mut moved = Vec::new();
        spread_expiries(&mut items, |e| e.1, rate, |e, r| moved.push((e.0, r)));
        moved
    }

    #[test]
    fn no_pushback_under_target() {
        assert!(moves(&[1000; 7], 10).is_empty());
        assert!(moves(&[], 10).is_empty());
    }

    #[test]
    fn kth_lease_past_target_goes_to_base_plus_k_over_target() {
        let moved = moves(&[10_000; 10], 10); // target 7
        let expect: Vec<(usize, u64)> = (7..10)
            .map(|i| (i, 10_000 + ((i as f64 + 1.0) * 1000.0 / 7.0).round() as u64))
            .collect();
        assert_eq!(moved, expect);
    }

    #[test]
    fn a_later_window_starts_afresh() {
        let mut r = vec![1000; 3];
        r.extend([5000; 3]);
        assert!(moves(&r, 4).is_empty()); // target 3 per window
    }
}
