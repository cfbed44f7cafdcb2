//! Read-only views: lookup, leases, len, and the invariant check used by tests.

use std::time::Duration;

use super::{Inner, Lessor};
use crate::lease::{remaining_of, Lease, LeaseId, LeaseRecord};

impl Lessor {
    /// A snapshot of lease `id` (with its keys), or `None`, etcd's `Lookup`.
    ///
    /// **Locking:** one shared shard lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// assert!(lessor.lookup(LeaseId::new(1)).is_none());
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// assert_eq!(lessor.lookup(LeaseId::new(1)).unwrap().id(), LeaseId::new(1));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn lookup(&self, id: LeaseId) -> Option<Lease> {
        self.inner.lookup(id)
    }

    /// Every lease, ascending by time remaining, ties in grant order, etcd's `Leases`.
    ///
    /// **Locking:** one shared shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(20))?;
    /// lessor.grant(LeaseId::new(2), Duration::from_secs(10))?;
    /// let ids: Vec<_> = lessor.leases().iter().map(|l| l.id().get()).collect();
    /// assert_eq!(ids, [2, 1]);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn leases(&self) -> Vec<Lease> {
        self.inner.leases()
    }

    /// The number of leases.
    ///
    /// **Locking:** one shared shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(20))?;
    /// assert_eq!(lessor.len(), 1);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when there are no leases.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::Lessor::builder().build()?.is_empty());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the engine's internal invariants and describes the first one broken: every key
    /// maps to a live lease whose key set holds it, and every lease's keys map back to it;
    /// with a key-value store, every stored key's lease is the one the key map gives it.
    /// Meant for tests, after concurrent work has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(20))?;
    /// lessor.attach(LeaseId::new(1), ["a"])?;
    /// assert_eq!(lessor.check_invariants(), Ok(()));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    #[cfg(any(test, feature = "test-util"))]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.inner.check_invariants()
    }
}

impl Inner {
    pub(crate) fn lookup(&self, id: LeaseId) -> Option<Lease> {
        let h = self.hash_id(id);
        // Deadlines start from "now" rounded up, so time left is measured from it too: a
        // fresh lease shows exactly its TTL left, never a millisecond more.
        let (floor, ceil) = self.time.now_ms_precise();
        self.leases.read(self.leases.index(h), |s| {
            let rec = s.get(h, id)?;
            let word = rec.load();
            LeaseRecord::is_live(word).then(|| Lease {
                id,
                ttl: Duration::from_millis(rec.ttl_ms),
                remaining: remaining_of(word, floor, ceil),
                keys: s.keys_of(id),
            })
        })
    }

    pub(crate) fn leases(&self) -> Vec<Lease> {
        let (floor, ceil) = self.time.now_ms_precise();
        let mut all: Vec<(u64, u64, Lease)> = Vec::with_capacity(self.len());
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                for (id, rec) in s.leases.iter() {
                    let word = rec.load();
                    if !LeaseRecord::is_live(word) {
                        continue;
                    }
                    let lease = Lease {
                        id: *id,
                        ttl: Duration::from_millis(rec.ttl_ms),
                        remaining: remaining_of(word, floor, ceil),
                        keys: s.keys_of(*id),
                    };
                    all.push((crate::lease::deadline_of(word), rec.seq, lease));
                }
            });
        }
        all.sort_unstable_by_key(|(deadline, seq, _)| (*deadline, *seq));
        all.into_iter().map(|(_, _, l)| l).collect()
    }

    /// Keys attached to any lease.
    pub(crate) fn key_count(&self) -> usize {
        (0..self.leases.len())
            .map(|i| {
                self.leases.read(i, |s| {
                    s.extras.values().map(|e| e.keys.len()).sum::<usize>()
                })
            })
            .sum()
    }

    pub(crate) fn len(&self) -> usize {
        (0..self.leases.len())
            .map(|i| self.leases.read(i, |s| s.len()))
            .sum()
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut key_count = 0usize;
        for i in 0..self.keys.len() {
            // Copy first: never hold a key shard while taking a lease shard.
            let entries: Vec<(Vec<u8>, LeaseId)> = self.keys.read(i, |ks| {
                ks.entries().map(|(k, id)| (k.to_vec(), id)).collect()
            });
            for (key, id) in entries {
                key_count += 1;
                let h = self.hash_id(id);
                let ok = self.leases.read(self.leases.index(h), |s| {
                    s.get(h, id).is_some()
                        && s.extras.get(&id).is_some_and(|e| e.keys.contains(&key[..]))
                });
                if !ok {
                    return Err(format!("key {key:?} maps to lease {id} that lacks it"));
                }
            }
        }
        let mut set_count = 0usize;
        for i in 0..self.leases.len() {
            self.leases.read(i, |s| {
                for (id, e) in &s.extras {
                    if s.get(self.hash_id(*id), *id).is_none() {
                        return Err(format!("extras kept for missing lease {id}"));
                    }
                    set_count += e.keys.len();
                }
                // With no renew in flight, a checkpoint is in force exactly when one is logged
                // (lessor/checkpoint.rs).
                for (id, rec) in s.leases.iter() {
                    let bit = rec.load() & crate::lease::CHECKPOINTED != 0;
                    let logged = s.extras.get(id).map_or(0, |e| e.checkpoint_ms);
                    if bit != (logged != 0) {
                        return Err(format!(
                            "lease {id}: checkpoint bit {bit} but {logged} ms logged"
                        ));
                    }
                }
                Ok(())
            })?;
        }
        if key_count != set_count {
            return Err(format!(
                "{key_count} keys in the key map but {set_count} in lease key sets"
            ));
        }
        self.check_store_invariants()
    }
}
