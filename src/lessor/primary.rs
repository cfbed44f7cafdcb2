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
        // spreading, note each lease's remaining TTL and id by its position in the pass.
        let mut pile: Vec<(u64, u64, u32)> = Vec::new();
        let mut ids: Vec<LeaseId> = Vec::new();
        let mut starts = Vec::with_capacity(self.leases.len() + 1);
        for i in 0..self.leases.len() {
            starts.push(ids.len());
            self.leases.read(i, |s| {
                for (id, rec) in s.leases.iter() {
                    let Some(remaining) = refresh(s, *id, rec, now, extend_ms) else {
                        continue;
                    };
                    if spread {
                        pile.push((remaining, rec.seq, ids.len() as u32));
                        ids.push(*id);
                    }
                }
            });
        }
        starts.push(ids.len());
        if spread && u32::try_from(ids.len()).is_ok() {
            self.spread_pile(pile, &ids, &starts, now);
        }
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Pass 2 of promote: sort by remaining TTL with no lock held, decide who moves (etcd's
    /// rule), then write the new deadlines shard by shard in the order pass 1 visited them, so
    /// that no lease needs a hash lookup; a shard that changed meanwhile falls back to lookups.
    fn spread_pile(
        &self,
        mut pile: Vec<(u64, u64, u32)>,
        ids: &[LeaseId],
        starts: &[usize],
        now: u64,
    ) {
        // By remaining TTL, ties in grant order: two stable passes, the minor key first.
        radix_sort_by(&mut pile, |p| p.1);
        radix_sort_by(&mut pile, |p| p.0);
        let sorted: Vec<u64> = pile.iter().map(|p| p.0).collect();
        let moved = spread_expiries(&sorted, self.revoke_rate);
        if moved.is_empty() {
            return;
        }
        // (expected deadline, new deadline) by position; 0 = stays.
        let mut moves = vec![(0u64, 0u64); ids.len()];
        for (k, new_remaining) in moved {
            let (old, _, pos) = pile[k];
            moves[pos as usize] = (
                finite_deadline(now.saturating_add(old)),
                finite_deadline(now.saturating_add(new_remaining)),
            );
        }
        for (i, window) in starts.windows(2).enumerate() {
            let (start, end) = (window[0], window[1]);
            if moves[start..end].iter().all(|m| m.1 == 0) {
                continue;
            }
            let done = self.leases.read(i, |s| {
                if s.leases.len() != end - start {
                    return false;
                }
                for ((id, rec), pos) in s.leases.iter().zip(start..end) {
                    if *id != ids[pos] {
                        return false;
                    }
                    let (expected, new) = moves[pos];
                    if new != 0 {
                        move_deadline(rec, expected, new);
                    }
                }
                true
            });
            if !done {
                for pos in start..end {
                    let (expected, new) = moves[pos];
                    if new != 0 {
                        self.push_deadline(ids[pos], expected, new);
                    }
                }
            }
        }
    }

    /// Moves a lease's deadline from `expected` to `new`, unless something else (a renew, a
    /// revoke) changed it meanwhile.
    fn push_deadline(&self, id: LeaseId, expected: u64, new: u64) {
        let h = self.hash_id(id);
        self.leases.read(self.leases.index(h), |s| {
            if let Some(rec) = s.get(h, id) {
                move_deadline(rec, expected, new);
            }
        });
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

/// Sets a lease's promoted deadline; returns its remaining TTL (ms), or `None` if it is not live.
fn refresh(
    s: &LeaseShard,
    id: LeaseId,
    rec: &LeaseRecord,
    now: u64,
    extend_ms: u64,
) -> Option<u64> {
    let mut cur = rec.load();
    loop {
        if !LeaseRecord::is_live(cur) {
            return None;
        }
        let base = if cur & CHECKPOINTED != 0 {
            s.extras.get(&id).map_or(rec.ttl_ms, |e| e.checkpoint_ms)
        } else {
            rec.ttl_ms
        };
        let remaining = extend_ms.saturating_add(base);
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
/// `window start + k / target` seconds (and the window grows to that point). Returns
/// `(index, new remaining ms)` for each lease that moves.
///
/// # Examples
///
/// ```ignore
/// // 10 leases at 1 s with rate 4 (target 3): the 4th..10th move to 1 s + k/3 s.
/// ```
pub(crate) fn spread_expiries(sorted_remaining: &[u64], rate: u32) -> Vec<(usize, u64)> {
    const SECOND: f64 = 1000.0;
    let target = (3 * u64::from(rate)) / 4;
    let mut moved = Vec::new();
    let Some(&first) = sorted_remaining.first() else {
        return moved;
    };
    if target == 0 {
        return moved;
    }
    let mut base = first as f64;
    let mut next = base + SECOND;
    let mut expires: u64 = 0;
    for (i, &remaining) in sorted_remaining.iter().enumerate() {
        let remaining = remaining as f64;
        if remaining > next {
            base = remaining;
            next = base + SECOND;
            expires = 1;
            continue;
        }
        expires += 1;
        if expires <= target {
            continue;
        }
        let delay = SECOND * (expires as f64 / target as f64) - (remaining - base);
        next = base + delay;
        moved.push((i, (remaining + delay).round() as u64));
    }
    moved
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn no_pushback_under_target() {
        assert!(spread_expiries(&[1000; 7], 10).is_empty());
        assert!(spread_expiries(&[], 10).is_empty());
    }

    #[test]
    fn kth_lease_past_target_goes_to_base_plus_k_over_target() {
        let moved = spread_expiries(&[10_000; 10], 10); // target 7
        let expect: Vec<(usize, u64)> = (7..10)
            .map(|i| (i, 10_000 + ((i as f64 + 1.0) * 1000.0 / 7.0).round() as u64))
            .collect();
        assert_eq!(moved, expect);
    }

    #[test]
    fn a_later_window_starts_afresh() {
        let mut r = vec![1000; 3];
        r.extend([5000; 3]);
        assert!(spread_expiries(&r, 4).is_empty()); // target 3 per window
    }
}
