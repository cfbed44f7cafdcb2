//! The snapshot's lease records, in grant order: replay numbers grants in the order it reads
//! them, so a snapshot written in grant order keeps ties in `leases()` in the same order after
//! a compaction and a reopen.
//!
//! # Ground rules
//!
//! - Compaction calls [`Inner::snapshot_leases`] after its boundary, with no lock held. The
//!   leases are gathered shard by shard (one shared lock at a time), in hash order, as
//!   `(grant number, id, TTL)`: 16 bytes a lease in [`Table`], which hands them back in grant
//!   order without a full sort.
//! - A lease with keys or a checkpoint (few, as a rule) is only flagged; its `Attach` and
//!   `Checkpoint` records are read when its `Grant` is written (one shared shard lock and one
//!   lookup), so the keys are never all copied at once. They may be newer than the boundary,
//!   or belong to a later grant of the id: both are records after the boundary, which replay
//!   on top of the snapshot (see `persist.rs`), so the state after replay is the same.
//! - The checkpoint written is the logged one (`Extra::checkpoint_ms`), the state word's bit
//!   notwithstanding (see `checkpoint.rs`).

use std::vec;

use super::Inner;
use crate::lease::{LeaseId, LeaseRecord};
use crate::radix::radix_sort_by;
use crate::wal::Record;

/// Set in a gathered TTL (which needs 44 bits at most) for a lease that had keys or a
/// checkpoint when it was gathered.
const HAS_EXTRAS: u64 = 1 << 63;

impl Inner {
    /// The records that rebuild every live lease granted before grant number `before`, in
    /// grant order. Read lazily: a compaction that turns out to have nothing to do (an `upto`
    /// the current snapshot already covers) never gathers them.
    pub(super) fn snapshot_leases(&self, before: u64) -> impl Iterator<Item = Record> + '_ {
        std::iter::once_with(move || GrantOrder {
            inner: self,
            leases: self.gather_leases(before).into_order(),
            pending: Vec::new(),
        })
        .flatten()
    }

    /// Gathers the live leases granted before `before`, shard by shard.
    fn gather_leases(&self, before: u64) -> Table {
        let mut table = Table::new(before, self.len());
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                let none_has_extras = s.extras.is_empty();
                for (id, rec) in s.leases.iter() {
                    if rec.seq >= before || !LeaseRecord::is_live(rec.load()) {
                        continue;
                    }
                    let extras = !none_has_extras
                        && s.extras
                            .get(id)
                            .is_some_and(|e| !e.keys.is_empty() || e.checkpoint_ms != 0);
                    let flag = if extras { HAS_EXTRAS } else { 0 };
                    table.push(rec.seq, id.get(), rec.ttl_ms | flag);
                }
            });
        }
        table
    }

    /// The `Attach` and `Checkpoint` records of lease `id` as it is now, last one first.
    fn extra_records(&self, id: i64, out: &mut Vec<Record>) {
        let lease = LeaseId::new(id);
        let h = self.hash_id(lease);
        self.leases.read(self.leases.index(h), |s| {
            let Some(e) = s.extras.get(&lease) else {
                return;
            };
            if e.checkpoint_ms != 0 {
                out.push(Record::Checkpoint {
                    id,
                    remaining_ms: e.checkpoint_ms,
                });
            }
            if !e.keys.is_empty() {
                out.push(Record::Attach {
                    id,
                    keys: e.keys.iter().map(|k| k.to_vec()).collect(),
                });
            }
        });
    }
}

/// Leases gathered in any order, handed back in grant order without a full sort.
///
/// Live leases mostly hold the latest grant numbers, so the last `2 × leases` numbers below
/// the boundary index a table directly: `slots[seq - base]` holds `(id, ttl)`, and id 0,
/// which no lease has, marks a hole (16 bytes a slot, in zeroed memory that holes never
/// write). Leases older than that (after much churn) go to `older`, radix-sorted at the end;
/// they all come before the table's.
#[derive(Debug)]
struct Table {
    base: u64,
    slots: Vec<(i64, u64)>,
    older: Vec<(u64, i64, u64)>,
}

impl Table {
    /// Room for about `leases` leases numbered below `before`.
    fn new(before: u64, leases: usize) -> Self {
        let room = leases.saturating_mul(2).max(1);
        let base = before.saturating_sub(u64::try_from(room).unwrap_or(u64::MAX));
        let span = usize::try_from(before - base).unwrap_or(room);
        Table {
            base,
            slots: vec![(0, 0); span],
            older: Vec::new(),
        }
    }

    fn push(&mut self, seq: u64, id: i64, ttl: u64) {
        let at = seq.checked_sub(self.base);
        match at.and_then(|i| self.slots.get_mut(usize::try_from(i).ok()?)) {
            Some(slot) => *slot = (id, ttl),
            None => self.older.push((seq, id, ttl)),
        }
    }

    /// The leases in grant order.
    fn into_order(self) -> InOrder {
        let mut older = self.older;
        radix_sort_by(&mut older, &mut Vec::new(), |e| e.0);
        InOrder {
            older: older.into_iter(),
            next: self.base,
            slots: self.slots.into_iter(),
        }
    }
}

/// A [`Table`]'s leases in grant order, as `(seq, id, ttl)`.
#[derive(Debug)]
struct InOrder {
    older: vec::IntoIter<(u64, i64, u64)>,
    /// The grant number of the next slot.
    next: u64,
    slots: vec::IntoIter<(i64, u64)>,
}

impl Iterator for InOrder {
    type Item = (u64, i64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.older.next() {
            return Some(e);
        }
        loop {
            let (id, ttl) = self.slots.next()?;
            let seq = self.next;
            self.next += 1;
            if id != 0 {
                return Some((seq, id, ttl));
            }
        }
    }
}

/// The snapshot's lease records: each lease's `Grant`, then its `Attach` and `Checkpoint`.
struct GrantOrder<'a> {
    inner: &'a Inner,
    leases: InOrder,
    /// The records still to come of the last lease started, last one first.
    pending: Vec<Record>,
}

impl Iterator for GrantOrder<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if let Some(r) = self.pending.pop() {
            return Some(r);
        }
        let (_, id, ttl) = self.leases.next()?;
        if ttl & HAS_EXTRAS != 0 {
            self.inner.extra_records(id, &mut self.pending);
        }
        Some(Record::Grant {
            id,
            ttl_ms: ttl & !HAS_EXTRAS,
        })
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    //! The table's grant order, as pure data.

    use super::Table;

    fn in_order(before: u64, leases: usize, seqs: &[u64]) -> Vec<u64> {
        let mut table = Table::new(before, leases);
        for &seq in seqs {
            table.push(seq, i64::try_from(seq).unwrap() + 1000, seq * 7);
        }
        table
            .into_order()
            .map(|(seq, id, ttl)| {
                assert_eq!((id, ttl), (i64::try_from(seq).unwrap() + 1000, seq * 7));
                seq
            })
            .collect()
    }

    #[test]
    fn dense_sparse_and_older_leases_come_out_in_grant_order() {
        // Dense: every number in the table.
        assert_eq!(in_order(10, 9, &[5, 1, 9, 3, 2]), [1, 2, 3, 5, 9]);
        // Sparse: most leases older than the table's 2 x 3 numbers below 1000.
        let seqs = [999, 7, 500, 995, 1, 994, 42];
        assert_eq!(in_order(1000, 3, &seqs), [1, 7, 42, 500, 994, 995, 999]);
        // Fewer leases than expected, more than expected, none at all.
        assert_eq!(in_order(100, 50, &[99, 98]), [98, 99]);
        assert_eq!(in_order(100, 1, &[99, 3, 50, 98]), [3, 50, 98, 99]);
        assert!(in_order(100, 0, &[]).is_empty());
        assert_eq!(in_order(1, 0, &[0]), [0]);
    }
}
