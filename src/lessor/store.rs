//! The key-value store's operations on the lessor: put, range, delete-range, and the store's
//! share of revoke, replay and compaction.
//!
//! # Ground rules
//!
//! Locks are taken in one order everywhere: the stripes of the leases involved (ascending),
//! then the store lock (`Store::state`), then shard locks one at a time. A change finds the
//! leases it needs optimistically (reading the key map), locks their stripes and the store,
//! and checks again; a key that changed lease meanwhile restarts it with that lease added.
//! Under the stripes no other call can change those leases' keys or revoke them, so the store
//! and the engine's key map change together. See `crate::store` for the rest.

use std::collections::BTreeSet;

use super::{Inner, Lessor};
use crate::error::{Error, Result};
use crate::lease::LeaseId;
use crate::shard::Assign;
use crate::store::state::{Entry, StoreState};
use crate::store::{DeleteOutcome, PutOptions, PutOutcome, RangeOutcome};
use crate::sync::{self, AtomicU64, Ordering, RwLock, RwLockWriteGuard};
use crate::wal::Record;

/// The store and the mirror of its revision (for headers, read without the lock).
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) state: RwLock<StoreState>,
    revision: AtomicU64,
}

impl Store {
    pub(crate) fn new() -> Self {
        let state = StoreState::default();
        let revision = AtomicU64::new(rev_bits(state.revision()));
        Store {
            state: RwLock::new(state),
            revision,
        }
    }

    /// Publishes the state's revision; called with the store lock held exclusively.
    fn publish(&self, state: &StoreState) {
        self.revision
            .store(rev_bits(state.revision()), Ordering::Release);
    }
}

fn rev_bits(rev: i64) -> u64 {
    u64::try_from(rev).unwrap_or(0)
}

impl Lessor {
    /// Puts `key` = `value` in the key-value store, attached to `opts.lease` (etcd's `Put`).
    /// The key moves off any lease it was on. Returns the new revision and, when asked, the
    /// previous entry. Logged (and durable, per the fsync policy) before it returns.
    ///
    /// # Errors
    ///
    /// [`Error::StoreDisabled`] without [`key_value_store`](crate::LessorBuilder::key_value_store);
    /// [`Error::EmptyKey`], [`Error::KeyTooLarge`]; [`Error::LeaseNotFound`] for an unknown
    /// lease (nothing changes); [`Error::KeyNotFound`] when `ignore_value` or `ignore_lease`
    /// is set and the key does not exist; [`Error::Stopped`]; log errors.
    ///
    /// **Locking:** the stripes of the new and the old lease, then the store lock exclusively
    /// (held while the record is made durable).
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Error, LeaseId, Lessor, PutOptions};
    ///
    /// let lessor = Lessor::builder().key_value_store(true).build()?;
    /// let opts = PutOptions { lease: LeaseId::new(9), ..PutOptions::default() };
    /// assert!(matches!(lessor.put(b"k", b"v", opts), Err(Error::LeaseNotFound { .. })));
    /// assert_eq!(lessor.put(b"k", b"v", PutOptions::default())?.revision, 2);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn put(&self, key: &[u8], value: &[u8], opts: PutOptions) -> Result<PutOutcome> {
        self.inner.check_running()?;
        self.inner.put(key, value, opts)
    }

    /// Every key in etcd's range (`range_end` empty: the key alone; `"\0"`: every key from
    /// `key` on; otherwise `[key, range_end)`), ascending, and the store's revision.
    ///
    /// # Errors
    ///
    /// [`Error::StoreDisabled`], [`Error::Stopped`].
    ///
    /// **Locking:** the store lock, shared.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Lessor, PutOptions};
    ///
    /// let lessor = Lessor::builder().key_value_store(true).build()?;
    /// lessor.put(b"a", b"1", PutOptions::default())?;
    /// assert_eq!(lessor.range(b"a", b"")?.kvs.len(), 1);
    /// assert!(lessor.range(b"b", b"\0")?.kvs.is_empty());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn range(&self, key: &[u8], range_end: &[u8]) -> Result<RangeOutcome> {
        self.inner.check_running()?;
        let store = self.inner.store()?;
        let state = sync::read(&store.state);
        Ok(RangeOutcome {
            revision: state.revision(),
            kvs: state
                .range(key, range_end)
                .map(|(k, e)| e.to_kv(k))
                .collect(),
        })
    }

    /// Deletes every key in etcd's range (see [`range`](Self::range)) at one new revision,
    /// detaching each from its lease (etcd's `DeleteRange`). Deleting nothing changes
    /// nothing and logs nothing.
    ///
    /// # Errors
    ///
    /// [`Error::StoreDisabled`], [`Error::Stopped`], log errors (nothing changes).
    ///
    /// **Locking:** the stripes of the keys' leases, then the store lock exclusively.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{Lessor, PutOptions};
    ///
    /// let lessor = Lessor::builder().key_value_store(true).build()?;
    /// lessor.put(b"a", b"1", PutOptions::default())?;
    /// assert_eq!(lessor.delete_range(b"a", b"", false)?.deleted, 1);
    /// assert_eq!(lessor.delete_range(b"a", b"", false)?.deleted, 0);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn delete_range(
        &self,
        key: &[u8],
        range_end: &[u8],
        prev_kv: bool,
    ) -> Result<DeleteOutcome> {
        self.inner.check_running()?;
        self.inner.delete_range(key, range_end, prev_kv)
    }

    /// The store's revision: the revision of its last change (1 when it never changed).
    /// Without a store, 0.
    ///
    /// **Locking:** none (an atomic load).
    ///
    /// # Examples
    ///
    /// ```
    /// let lessor = lessor::Lessor::builder().key_value_store(true).build()?;
    /// assert_eq!(lessor.revision(), 1);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn revision(&self) -> i64 {
        self.inner.store.as_ref().map_or(0, |s| {
            i64::try_from(s.revision.load(Ordering::Acquire)).unwrap_or(i64::MAX)
        })
    }
}

impl Inner {
    fn store(&self) -> Result<&Store> {
        self.store.as_ref().ok_or(Error::StoreDisabled)
    }

    fn put(&self, key: &[u8], value: &[u8], opts: PutOptions) -> Result<PutOutcome> {
        let store = self.store()?;
        self.validate_keys(&[key])?;
        // The leases whose stripes we need: the key's current lease and the one it goes to.
        let mut held: Vec<LeaseId> = Vec::new();
        loop {
            let old = self.get_lease(key);
            let target = if opts.ignore_lease {
                sync::read(&store.state)
                    .get(key)
                    .map_or(LeaseId::NONE, |e| e.lease)
            } else {
                opts.lease
            };
            for id in [old, target] {
                if !id.is_none() && !held.contains(&id) {
                    held.push(id);
                }
            }
            let hashes: Vec<u64> = held.iter().map(|id| self.hash_id(*id)).collect();
            let _stripes = self.lock_stripes(&hashes);
            let mut state = sync::write(&store.state);
            // Under the stripes and the store lock, check the guesses.
            let old = self.get_lease(key);
            let current = state.get(key).cloned();
            let target = if opts.ignore_lease {
                current.as_ref().map_or(LeaseId::NONE, |e| e.lease)
            } else {
                opts.lease
            };
            if [old, target]
                .iter()
                .any(|id| !id.is_none() && !held.contains(id))
            {
                continue;
            }
            if (opts.ignore_value || opts.ignore_lease) && current.is_none() {
                return Err(Error::KeyNotFound);
            }
            if !target.is_none() && !self.exists(self.hash_id(target), target) {
                return Err(Error::LeaseNotFound { id: target });
            }
            let value = match (&current, opts.ignore_value) {
                (Some(e), true) => e.value.clone(),
                _ => value.to_vec(),
            };
            let revision = state.revision() + 1;
            self.log(|| {
                vec![Record::Put {
                    key: key.to_vec(),
                    value: value.clone(),
                    lease: target.get(),
                    revision,
                }]
            })?;
            let prev = self.apply_put(&mut state, key, value, target, revision);
            store.publish(&state);
            return Ok(PutOutcome {
                revision,
                prev: prev.filter(|_| opts.prev_kv).map(|e| e.to_kv(key)),
            });
        }
    }

    /// Applies a put whose stripes and store lock the caller holds (or, in replay, which runs
    /// alone): the store entry, then the key's move between leases in the engine.
    fn apply_put(
        &self,
        state: &mut StoreState,
        key: &[u8],
        value: Vec<u8>,
        lease: LeaseId,
        revision: i64,
    ) -> Option<Entry> {
        let lease = self.link_key(key, lease);
        state.put(key, value, lease, revision)
    }

    /// Puts `key` on `lease` in the engine (off whatever lease it was on; on none for NONE)
    /// and returns the lease it ended on. A lease missing here happens only in replay of a
    /// damaged history: the key stays unleased rather than pointing at nothing.
    fn link_key(&self, key: &[u8], lease: LeaseId) -> LeaseId {
        let old = self.get_lease(key);
        if !lease.is_none() && self.move_key(key, old, lease) {
            lease
        } else {
            self.unlink_key(key, old);
            LeaseId::NONE
        }
    }

    /// Gives `key` to `to` in the engine (moving it off `from`); false if `to` is not there.
    /// The caller holds both stripes.
    fn move_key(&self, key: &[u8], from: LeaseId, to: LeaseId) -> bool {
        let h = self.hash_id(to);
        if !self
            .leases
            .read(self.leases.index(h), |s| s.get(h, to).is_some())
        {
            return false;
        }
        let kh = self.hash_key(key);
        let outcome = self.keys.write(self.keys.index(kh), |ks| {
            ks.assign(&self.hasher, kh, key, to, |_| true)
        });
        match outcome {
            Assign::Already => return true,
            Assign::Moved(prev) => {
                debug_assert_eq!(prev, from);
                self.drop_from_lease(prev, key);
            }
            Assign::Taken | Assign::Blocked(_) => {}
        }
        self.leases.write(self.leases.index(h), |s| {
            s.extra_mut(to).keys.insert(key.into());
        });
        true
    }

    /// Detaches `key` from `from` in the engine (no-op for NONE). The caller holds the stripe.
    fn unlink_key(&self, key: &[u8], from: LeaseId) {
        if from.is_none() {
            return;
        }
        self.drop_from_lease(from, key);
        self.release_keys(from, [key]);
    }

    /// Removes `key` from lease `id`'s key set.
    fn drop_from_lease(&self, id: LeaseId, key: &[u8]) {
        let h = self.hash_id(id);
        self.leases.write(self.leases.index(h), |s| {
            if let Some(e) = s.extras.get_mut(&id) {
                e.keys.remove(key);
            }
            s.tidy(id);
        });
    }

    fn delete_range(&self, key: &[u8], range_end: &[u8], prev_kv: bool) -> Result<DeleteOutcome> {
        let store = self.store()?;
        let mut held: BTreeSet<LeaseId> = BTreeSet::new();
        loop {
            let owners = self.owners_in(&sync::read(&store.state), key, range_end);
            held.extend(owners);
            let hashes: Vec<u64> = held.iter().map(|id| self.hash_id(*id)).collect();
            let _stripes = self.lock_stripes(&hashes);
            let mut state = sync::write(&store.state);
            if !self.owners_in(&state, key, range_end).is_subset(&held) {
                continue;
            }
            let keys: Vec<Vec<u8>> = state
                .range(key, range_end)
                .map(|(k, _)| k.clone())
                .collect();
            if keys.is_empty() {
                return Ok(DeleteOutcome {
                    revision: state.revision(),
                    deleted: 0,
                    prev: Vec::new(),
                });
            }
            let revision = state.revision() + 1;
            self.log(|| {
                vec![Record::DeleteRange {
                    key: key.to_vec(),
                    range_end: range_end.to_vec(),
                    revision,
                }]
            })?;
            let removed = self.apply_delete(&mut state, &keys, revision);
            store.publish(&state);
            return Ok(DeleteOutcome {
                revision,
                deleted: i64::try_from(removed.len()).unwrap_or(i64::MAX),
                prev: if prev_kv {
                    removed.iter().map(|(k, e)| e.to_kv(k)).collect()
                } else {
                    Vec::new()
                },
            });
        }
    }

    /// The leases of the keys in a range, as the engine's key map has them.
    fn owners_in(&self, state: &StoreState, key: &[u8], range_end: &[u8]) -> BTreeSet<LeaseId> {
        state
            .range(key, range_end)
            .map(|(k, _)| self.get_lease(k))
            .filter(|id| !id.is_none())
            .collect()
    }

    /// Removes `keys` from the store at `revision` and detaches them from their leases.
    fn apply_delete(
        &self,
        state: &mut StoreState,
        keys: &[Vec<u8>],
        revision: i64,
    ) -> Vec<(Vec<u8>, Entry)> {
        for k in keys {
            self.unlink_key(k, self.get_lease(k));
        }
        state.remove_keys(keys, revision)
    }

    /// The store's part of revoking a lease that had `keys`: called by revoke under the
    /// lease's stripe, it takes the store lock (for the caller to hold while it logs and
    /// applies) when the store is on and the lease has keys.
    pub(crate) fn store_for_revoke(
        &self,
        has_keys: bool,
    ) -> Option<RwLockWriteGuard<'_, StoreState>> {
        match &self.store {
            Some(store) if has_keys => Some(sync::write(&store.state)),
            _ => None,
        }
    }

    /// Deletes a revoked lease's keys from the store at one new revision (none if none of
    /// them is stored) and publishes it.
    pub(crate) fn store_revoke_keys<K: AsRef<[u8]>>(&self, state: &mut StoreState, keys: &[K]) {
        let revision = state.revision() + 1;
        state.remove_keys(keys, revision);
        if let Some(store) = &self.store {
            store.publish(state);
        }
    }

    /// Replays one key-value record. Records already in the state (older than its revision:
    /// a snapshot taken after them) are skipped, so replay after compaction is idempotent.
    pub(crate) fn replay_store(&self, record: &Record) -> Result<()> {
        let store = self.store.as_ref().ok_or(Error::StoreDisabled)?;
        let mut state = sync::write(&store.state);
        match record {
            Record::Put {
                key,
                value,
                lease,
                revision,
            } if *revision > state.revision() => {
                self.apply_put(
                    &mut state,
                    key,
                    value.clone(),
                    LeaseId::new(*lease),
                    *revision,
                );
            }
            Record::DeleteRange {
                key,
                range_end,
                revision,
            } if *revision > state.revision() => {
                let keys: Vec<Vec<u8>> = state
                    .range(key, range_end)
                    .map(|(k, _)| k.clone())
                    .collect();
                if keys.is_empty() {
                    state.raise_revision(*revision);
                } else {
                    self.apply_delete(&mut state, &keys, *revision);
                }
            }
            Record::StoreEntry {
                key,
                value,
                lease,
                create_revision,
                mod_revision,
                version,
            } if state
                .get(key)
                .is_none_or(|e| e.mod_revision < *mod_revision) =>
            {
                let lease = self.link_key(key, LeaseId::new(*lease));
                state.restore(
                    key.clone(),
                    Entry {
                        value: value.clone(),
                        lease,
                        create_revision: *create_revision,
                        mod_revision: *mod_revision,
                        version: *version,
                    },
                );
            }
            Record::StoreRevision { revision } => state.raise_revision(*revision),
            _ => {}
        }
        store.publish(&state);
        Ok(())
    }

    /// The records that rebuild the store: each key, then the revision.
    pub(crate) fn snapshot_store(&self, state: &StoreState) -> Vec<Record> {
        let mut out: Vec<Record> = state
            .range(b"\0", b"\0")
            .map(|(k, e)| Record::StoreEntry {
                key: k.clone(),
                value: e.value.clone(),
                lease: e.lease.get(),
                create_revision: e.create_revision,
                mod_revision: e.mod_revision,
                version: e.version,
            })
            .collect();
        out.push(Record::StoreRevision {
            revision: state.revision(),
        });
        out
    }

    /// The number of keys in the store (0 without one).
    pub(crate) fn store_len(&self) -> usize {
        self.store
            .as_ref()
            .map_or(0, |s| sync::read(&s.state).len())
    }

    /// Every stored key's lease exists and the engine's key map agrees; the published
    /// revision is the store's.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn check_store_invariants(&self) -> std::result::Result<(), String> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let state = sync::read(&store.state);
        for (key, e) in state.range(b"\0", b"\0") {
            let mapped = self.get_lease(key);
            if mapped != e.lease {
                return Err(format!(
                    "stored key {key:?} is on lease {} but the key map says {mapped}",
                    e.lease
                ));
            }
            if !e.lease.is_none() && !self.exists(self.hash_id(e.lease), e.lease) {
                return Err(format!(
                    "stored key {key:?} is on missing lease {}",
                    e.lease
                ));
            }
        }
        let published = store.revision.load(Ordering::Acquire);
        if published != rev_bits(state.revision()) {
            return Err(format!(
                "published revision {published} but the store is at {}",
                state.revision()
            ));
        }
        Ok(())
    }
}
