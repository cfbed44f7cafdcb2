//! [`TableHint`]: where a shard's hash table lives, published for prefetching before the
//! shard's lock is taken.
//!
//! # Ground rules
//!
//! - **Why.** Renew, grant and revoke each touch two cache lines that are not yet in cache
//!   at a million leases: the bucket's control bytes and the bucket's entry (hashbrown keeps them
//!   apart). Found one after the other under the shard lock, their misses add up; the lock's
//!   atomic instructions keep the next call's misses from starting early. Prefetching both
//!   lines, before the lock, lets the two misses overlap each other and the lock.
//! - **What.** The address of the table's control bytes and its bucket mask, written by the
//!   shard's writer (under its exclusive lock) after each insert, read by anyone without a
//!   lock. Both are plain relaxed atomics: a hint, never used to read or write the table. A
//!   stale or torn pair (the table grew since) only prefetches lines nobody needs. Tables
//!   only grow, and only by inserts, so the hint is right again after the next insert.
//! - **Layout.** hashbrown's layout (entries below the control bytes, entry `i` at
//!   `ctrl - (i + 1) * size_of::<T>()`; a probe starts at `hash & mask`) is read off an entry
//!   whose index and address hashbrown hands out. Were the layout ever to change, the hint
//!   would prefetch the wrong lines: slower, never wrong. The `map/renew`, `map/grant` and
//!   `map/revoke` benches measure it; the tests below pin the layout down.
//! - **Unsafe.** The prefetch intrinsic is this module's only unsafe code (see its `SAFETY`).
//!   Off x86-64 and under loom it does nothing.

#![allow(unsafe_code)] // `prefetch` below
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a shard's table lives (see the module docs). All zero: nothing known yet.
#[derive(Debug, Default)]
pub(crate) struct TableHint {
    /// The address of the table's control bytes; 0 before the first insert.
    ctrl: AtomicUsize,
    /// The table's bucket mask (buckets - 1).
    mask: AtomicUsize,
}

impl TableHint {
    /// Records the table from one of its entries, of type `T`: the one at address `at`, in
    /// bucket `index` of a table of `buckets` buckets. Called by the shard's writer, under its
    /// lock.
    #[inline]
    pub(crate) fn record<T>(&self, buckets: usize, index: usize, at: usize) {
        let ctrl = at.wrapping_add(index.wrapping_add(1).wrapping_mul(size_of::<T>()));
        debug_assert_eq!(entry_below::<T>(ctrl, index), at);
        self.ctrl.store(ctrl, Ordering::Relaxed);
        self.mask.store(buckets.wrapping_sub(1), Ordering::Relaxed);
    }

    /// Where hashbrown keeps the entry of type `T` at bucket `index`, per the hint; `None`
    /// before the first insert. (What the layout tests check the hint against.)
    #[cfg(test)]
    fn entry_addr<T>(&self, index: usize) -> Option<usize> {
        let ctrl = self.ctrl.load(Ordering::Relaxed);
        (ctrl != 0).then(|| entry_below::<T>(ctrl, index))
    }

    /// The first bucket a probe for `hash` looks at: hashbrown starts at the hash's low bits.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        #[allow(clippy::cast_possible_truncation)] // only the low bits are wanted
        let low = hash as usize;
        low & self.mask.load(Ordering::Relaxed)
    }

    /// Prefetches the lines a lookup of `hash` will most likely touch: the control bytes of
    /// its first probe group and the entries of its first four buckets.
    #[inline]
    pub(crate) fn prefetch<T>(&self, hash: u64) {
        let ctrl = self.ctrl.load(Ordering::Relaxed);
        if ctrl == 0 {
            return;
        }
        let pos = self.home(hash);
        let first = entry_below::<T>(ctrl, pos);
        prefetch(ctrl.wrapping_add(pos));
        prefetch(first);
        prefetch(first.wrapping_sub(3 * size_of::<T>()));
    }
}

/// The address of entry `index` (of type `T`) of a table whose control bytes are at `ctrl`.
#[inline]
fn entry_below<T>(ctrl: usize, index: usize) -> usize {
    ctrl.wrapping_sub(index.wrapping_add(1).wrapping_mul(size_of::<T>()))
}

/// Asks the processor to bring the line holding `addr` into cache.
#[inline(always)]
fn prefetch(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(lessor_loom)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: (1) `_mm_prefetch` needs SSE, which every x86-64 processor has (it is in the
        // target's baseline); (2) a prefetch is a hint, not a memory access: it never faults
        // and reads nothing the program sees, whatever the address, so a stale or dangling
        // one is harmless.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(addr)) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(lessor_loom))))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::lease::{LeaseId, LeaseRecord};
    use crate::shard::{LeaseEntry as Entry, LeaseShard};
    use crate::sync::HashBuilder;

    fn shard_with(ids: std::ops::RangeInclusive<i64>) -> (LeaseShard, TableHint, HashBuilder) {
        let (mut shard, hint, hasher) = (
            LeaseShard::default(),
            TableHint::default(),
            HashBuilder::default(),
        );
        for id in ids {
            let id = LeaseId::new(id);
            let h = hasher.hash_one(id);
            shard.insert_new((&hasher, &hint), h, id, LeaseRecord::new(0, 1000, 0));
        }
        (shard, hint, hasher)
    }

    #[test]
    fn the_hint_locates_every_entry_as_the_table_grows() {
        // Small tables (under a group), and tables large enough for huge pages (TableAlloc).
        for n in [1, 7, 100, 5_000, 200_000] {
            let (shard, hint, _) = shard_with(1..=n);
            let mut seen = 0;
            for index in shard.leases.iter_buckets() {
                let entry = shard.leases.get_bucket(index).expect("a full bucket");
                assert_eq!(
                    hint.entry_addr::<Entry>(index),
                    Some(std::ptr::from_ref(entry).addr()),
                    "entry at bucket {index} of {} ({n} leases)",
                    shard.leases.num_buckets()
                );
                seen += 1;
            }
            assert_eq!(seen, usize::try_from(n).unwrap());
        }
    }

    #[test]
    fn a_lone_entry_sits_where_the_hint_says_its_probe_starts() {
        // In a table far from full, an entry goes to the first bucket its probe looks at.
        let (mut shard, hint, hasher) = shard_with(1..=1);
        shard.leases.reserve(4096, |(k, _)| hasher.hash_one(k));
        // The table moved: tell the hint, from the one entry there is.
        let one = LeaseId::new(1);
        let index = shard
            .leases
            .find_bucket_index(hasher.hash_one(one), |(k, _)| *k == one);
        let index = index.expect("lease 1 is in");
        let at = std::ptr::from_ref(shard.leases.get_bucket(index).expect("full")).addr();
        hint.record::<Entry>(shard.leases.num_buckets(), index, at);
        let mut checked = 0;
        for id in 2..=40 {
            let id = LeaseId::new(id);
            let h = hasher.hash_one(id);
            if shard.leases.get_bucket(hint.home(h)).is_some() {
                continue; // that bucket was taken by an earlier entry: the probe moves on
            }
            shard.insert_new((&hasher, &hint), h, id, LeaseRecord::new(0, 1000, 0));
            let index = shard.leases.find_bucket_index(h, |(k, _)| *k == id);
            assert_eq!(index, Some(hint.home(h)), "lease {id:?}");
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} homes were free");
    }

    #[test]
    fn prefetching_any_address_is_harmless() {
        let hint = TableHint::default();
        hint.prefetch::<Entry>(42); // nothing recorded: nothing prefetched
        for ctrl in [1, 64, usize::MAX / 2, usize::MAX - 3] {
            hint.record::<Entry>(1 << 20, 0, ctrl);
            for h in [0, 1, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
                hint.prefetch::<Entry>(h);
            }
        }
    }
}
