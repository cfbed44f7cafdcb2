//! Sharded maps: the lease map (id -> record) and the key map (key -> lease id).
//!
//! # Ground rules
//!
//! - A [`Shards<S>`] is a power-of-two array of cache-padded [`ShardLock<S>`] (dashmap's shape,
//!   with our own lock: its readers count themselves on cache lines of their own thread's slot,
//!   in one [`ReaderCounts`] for the array; `shard_lock.rs`). Beside each lock, on the same
//!   128-byte pair of lines, sits a [`TableHint`]: where the lease table lives, written under
//!   the exclusive lock by every insert and read without any lock, only to prefetch
//!   (`table_hint.rs`). A shard is picked from bits 40..56 of the item's 64-bit hash; hashbrown
//!   uses the low bits for the bucket and the top 7 for its tag, so the three do not correlate.
//! - Locks are taken only inside [`Shards::read`] / [`Shards::write`], around a closure: no
//!   guard escapes, and the closure must not take another shard lock of the same `Shards`, call
//!   user code, write the log or send on a channel.
//! - Lock order across the engine: lease stripes (ascending) -> one lease shard -> one key
//!   shard. Nobody holds two shard locks at once except in that order.
//! - The lease record lives inline in its shard ([`LeaseShard::leases`]), so renew is one
//!   shared lock plus one compare-and-swap on the record's state word. Keys and checkpoints,
//!   which most leases lack, live in a side map ([`LeaseShard::extras`]) so they cost nothing
//!   when absent.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use crossbeam_utils::CachePadded;
use hashbrown::hash_table::OccupiedEntry;
use hashbrown::{HashMap, HashTable};

use crate::lease::{LeaseId, LeaseRecord};
use crate::shard_lock::{ReaderCounts, ShardLock};
use crate::sync::HashBuilder;
use crate::table_alloc::TableAlloc;
use crate::table_hint::TableHint;

/// The most shards a map may have (the index comes from 16 bits of the hash).
pub(crate) const MAX_SHARDS: usize = 1 << 16;

/// A power-of-two array of independently locked shards.
pub(crate) struct Shards<S> {
    shards: Box<[CachePadded<Slot<S>>]>,
    mask: usize,
    /// How many readers each shard has, per thread slot (`shard_lock.rs`).
    readers: ReaderCounts,
}

/// One shard: its lock, and beside it (on the same 128-byte pair of lines, which a test
/// checks) where its table lives. Only the lease map records the hint; the key map's stays
/// empty and is never read.
struct Slot<S> {
    lock: ShardLock<S>,
    hint: TableHint,
}

impl<S: Default> Shards<S> {
    /// `count` must be a power of two no larger than [`MAX_SHARDS`] (the builder checks).
    pub(crate) fn new(count: usize) -> Self {
        debug_assert!(count.is_power_of_two() && count <= MAX_SHARDS);
        let shards = (0..count)
            .map(|_| {
                CachePadded::new(Slot {
                    lock: ShardLock::new(S::default()),
                    hint: TableHint::default(),
                })
            })
            .collect();
        Shards {
            shards,
            mask: count - 1,
            readers: ReaderCounts::new(count),
        }
    }
}

impl<S> Shards<S> {
    /// The shard that holds items with this hash.
    #[inline]
    pub(crate) fn index(&self, hash: u64) -> usize {
        // Bits 40..56: independent of hashbrown's bucket (low) and tag (top 7) bits.
        ((hash >> 40) as usize) & self.mask
    }

    /// How many shards there are.
    pub(crate) fn len(&self) -> usize {
        self.shards.len()
    }

    /// Runs `f` under the shard's shared lock.
    #[inline]
    pub(crate) fn read<R>(&self, index: usize, f: impl FnOnce(&S) -> R) -> R {
        self.shards[index].lock.read(&self.readers, index, f)
    }

    /// Runs `f` under the shard's exclusive lock.
    #[inline]
    pub(crate) fn write<R>(&self, index: usize, f: impl FnOnce(&mut S) -> R) -> R {
        self.shards[index].lock.write(&self.readers, index, f)
    }

    /// Where the shard's table lives, for prefetching before its lock ([`TableHint`]).
    #[inline]
    pub(crate) fn hint(&self, index: usize) -> &TableHint {
        &self.shards[index].hint
    }
}

impl Shards<LeaseShard> {
    /// Prefetches the lines a lookup of `hash` will touch in its shard, before its lock is
    /// taken ([`TableHint`]).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        self.hint(self.index(hash)).prefetch::<LeaseEntry>(hash);
    }
}

impl<S> std::fmt::Debug for Shards<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("count", &self.shards.len())
            .finish()
    }
}

/// A key, owned.
pub(crate) type Key = Box<[u8]>;

/// What a lease has beyond its record: attached keys and a checkpointed remaining TTL.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Attached keys, ascending (the order revoke deletes them in).
    pub(crate) keys: BTreeSet<Key>,
    /// The checkpointed remaining TTL in ms; in force only while the record's state word has
    /// the `CHECKPOINTED` bit.
    pub(crate) checkpoint_ms: u64,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.checkpoint_ms == 0
    }
}

/// A lease filed for the expiry worker: the id, the grant it belongs to, and the deadline (engine
/// ms) it was filed for. The lease's true deadline may since have moved later (renewed); the
/// worker reads it from the record when `due` comes, never before, so cascading through the
/// wheel's levels costs no lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filing {
    pub(crate) id: LeaseId,
    pub(crate) seq: u64,
    pub(crate) due: u64,
}

/// A lease-map entry: the id and its record, inline in the table.
pub(crate) type LeaseEntry = (LeaseId, LeaseRecord);

/// Publishes in `hint` where the table of the just-inserted entry `e` now lives.
fn record(hint: &TableHint, e: OccupiedEntry<'_, LeaseEntry, TableAlloc>) {
    let (index, at) = (e.bucket_index(), std::ptr::from_ref(e.get()).addr());
    hint.record::<LeaseEntry>(e.into_table().num_buckets(), index, at);
}

/// One shard of the lease map.
#[derive(Default)]
pub(crate) struct LeaseShard {
    /// id -> record, inline.
    pub(crate) leases: HashTable<LeaseEntry, TableAlloc>,
    /// Keys and checkpoints of the leases that have any.
    pub(crate) extras: HashMap<LeaseId, Extra>,
    /// Leases granted since the expiry worker last looked: the intake of the wheel.
    pub(crate) intake: Vec<Filing>,
    /// Bumped by every insert and remove: while it stands still, `leases` iterates in the same
    /// order (promote relies on it to write back without lookups).
    pub(crate) version: u64,
}

impl LeaseShard {
    #[inline]
    pub(crate) fn get(&self, hash: u64, id: LeaseId) -> Option<&LeaseRecord> {
        self.leases.find(hash, |(k, _)| *k == id).map(|(_, r)| r)
    }

    /// Inserts a record for an id that is known to be absent; records where the table now
    /// lives in `hint`.
    pub(crate) fn insert_new(
        &mut self,
        (hasher, hint): (&HashBuilder, &TableHint),
        hash: u64,
        id: LeaseId,
        rec: LeaseRecord,
    ) {
        record(
            hint,
            self.leases
                .insert_unique(hash, (id, rec), |(k, _)| hasher.hash_one(k)),
        );
        self.version += 1;
    }

    /// Inserts a record unless the id is taken, in one probe; returns whether it did. Records
    /// where the table now lives in `hint`.
    pub(crate) fn try_insert(
        &mut self,
        (hasher, hint): (&HashBuilder, &TableHint),
        hash: u64,
        id: LeaseId,
        rec: impl FnOnce() -> LeaseRecord,
    ) -> bool {
        match self
            .leases
            .entry(hash, |(k, _)| *k == id, |(k, _)| hasher.hash_one(k))
        {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                record(hint, v.insert((id, rec())));
                self.version += 1;
                true
            }
        }
    }

    /// Removes the record and its extras; returns the extras.
    pub(crate) fn remove(&mut self, hash: u64, id: LeaseId) -> Option<(LeaseRecord, Extra)> {
        let entry = self.leases.find_entry(hash, |(k, _)| *k == id).ok()?;
        let ((_, rec), _) = entry.remove();
        self.version += 1;
        let extra = self.extras.remove(&id).unwrap_or_default();
        Some((rec, extra))
    }

    /// The extras of a lease, created empty when missing.
    pub(crate) fn extra_mut(&mut self, id: LeaseId) -> &mut Extra {
        self.extras.entry(id).or_default()
    }

    /// Drops an extras entry that has become empty.
    pub(crate) fn tidy(&mut self, id: LeaseId) {
        if self.extras.get(&id).is_some_and(Extra::is_empty) {
            self.extras.remove(&id);
        }
    }

    /// The attached keys of a lease, ascending.
    pub(crate) fn keys_of(&self, id: LeaseId) -> Vec<Vec<u8>> {
        self.extras
            .get(&id)
            .map(|e| e.keys.iter().map(|k| k.to_vec()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.leases.len()
    }
}

/// What happened when a key was assigned to a lease.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assign {
    /// The key was free and now belongs to the lease.
    Taken,
    /// The key already belonged to the lease.
    Already,
    /// The key belonged to this other lease and now belongs to the lease.
    Moved(LeaseId),
    /// The key belongs to this other lease, which the caller may not take from; nothing changed.
    Blocked(LeaseId),
}

/// One shard of the key map.
#[derive(Default)]
pub(crate) struct KeyShard {
    map: HashTable<(Key, LeaseId), TableAlloc>,
}

impl KeyShard {
    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<LeaseId> {
        self.map.find(hash, |(k, _)| &**k == key).map(|(_, id)| *id)
    }

    /// Gives `key` to `id`: a free key is taken; a key of another lease `o` is moved only when
    /// `may_take(o)` (the caller holds `o`'s stripe).
    pub(crate) fn assign(
        &mut self,
        hasher: &HashBuilder,
        hash: u64,
        key: &[u8],
        id: LeaseId,
        may_take: impl FnOnce(LeaseId) -> bool,
    ) -> Assign {
        match self.map.find_mut(hash, |(k, _)| &**k == key) {
            Some((_, owner)) if *owner == id => Assign::Already,
            Some((_, owner)) => {
                let from = *owner;
                if may_take(from) {
                    *owner = id;
                    Assign::Moved(from)
                } else {
                    Assign::Blocked(from)
                }
            }
            None => {
                self.map
                    .insert_unique(hash, (key.into(), id), |(k, _)| hasher.hash_one(&**k));
                Assign::Taken
            }
        }
    }

    /// Removes the key if it belongs to `id`.
    pub(crate) fn release(&mut self, hash: u64, key: &[u8], id: LeaseId) -> bool {
        match self
            .map
            .find_entry(hash, |(k, owner)| &**k == key && *owner == id)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every key in this shard with its lease (for invariant checks).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&[u8], LeaseId)> {
        self.map.iter().map(|(k, id)| (&**k, *id))
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_lease_shard_its_lock_and_its_hint_fit_one_padded_pair_of_lines() {
        // A renew reads the hint, the lock's state and the table's header: one 128-byte pair
        // of lines, which is also what `CachePadded` pads to on x86-64.
        assert!(size_of::<Slot<LeaseShard>>() <= 128);
    }
}
