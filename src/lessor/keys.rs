//! Attach, detach and get_lease: which keys belong to which lease.

use super::{Inner, Lessor};
use crate::error::{Error, Result};
use crate::lease::{LeaseId, LeaseRecord};
use crate::shard::{Assign, Key};
use crate::wal::Record;

impl Lessor {
    /// Attaches `keys` to lease `id`, etcd's `Attach`. A key belongs to at most one lease: a key
    /// attached to another lease moves to this one (etcd would leave the other lease's key set
    /// stale). Attaching a key twice is a no-op.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseNotFound`] (nothing changes), [`Error::EmptyKey`] and
    /// [`Error::KeyTooLarge`] (checked for every key before anything changes),
    /// [`Error::Stopped`].
    ///
    /// **Locking:** the stripes of this lease and of every lease a key moves from (ascending),
    /// then one shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::{LeaseId, Lessor};
    /// use std::time::Duration;
    ///
    /// let lessor = Lessor::builder().build()?;
    /// let (a, b) = (LeaseId::new(1), LeaseId::new(2));
    /// lessor.grant(a, Duration::from_secs(10))?;
    /// lessor.grant(b, Duration::from_secs(10))?;
    /// lessor.attach(a, ["x", "y"])?;
    /// lessor.attach(b, ["y"])?; // moves y from a to b
    /// assert_eq!(lessor.lookup(a).unwrap().keys(), &[b"x".to_vec()]);
    /// assert_eq!(lessor.get_lease(b"y"), b);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn attach<K: AsRef<[u8]>>(
        &self,
        id: LeaseId,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<()> {
        let keys: Vec<K> = keys.into_iter().collect();
        self.inner.attach(id, &keys)
    }

    /// Detaches `keys` from lease `id`, etcd's `Detach`. A key that is not attached to this
    /// lease is left alone.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseNotFound`] (nothing changes), [`Error::EmptyKey`],
    /// [`Error::KeyTooLarge`], [`Error::Stopped`].
    ///
    /// **Locking:** the lease's stripe, then one shard lock at a time.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().build()?;
    /// lessor.grant(LeaseId::new(1), Duration::from_secs(10))?;
    /// lessor.attach(LeaseId::new(1), ["x"])?;
    /// lessor.detach(LeaseId::new(1), ["x", "never-attached"])?;
    /// assert!(lessor.get_lease(b"x").is_none());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn detach<K: AsRef<[u8]>>(
        &self,
        id: LeaseId,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<()> {
        let keys: Vec<K> = keys.into_iter().collect();
        self.inner.detach(id, &keys)
    }

    /// The lease `key` is attached to, or [`LeaseId::NONE`], etcd's `GetLease`.
    ///
    /// **Locking:** one shared shard lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor};
    /// let lessor = Lessor::builder().build()?;
    /// assert_eq!(lessor.get_lease(b"nobody"), LeaseId::NONE);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn get_lease(&self, key: impl AsRef<[u8]>) -> LeaseId {
        self.inner.get_lease(key.as_ref())
    }
}

impl Inner {
    /// Removes each key from the key map if it still belongs to `id`.
    pub(crate) fn release_keys<K: AsRef<[u8]>>(
        &self,
        id: LeaseId,
        keys: impl IntoIterator<Item = K>,
    ) {
        for key in keys {
            let key = key.as_ref();
            let kh = self.hash_key(key);
            self.keys
                .write(self.keys.index(kh), |ks| ks.release(kh, key, id));
        }
    }

    /// True when the lease is in the map and visible (not a grant still being logged).
    pub(crate) fn exists(&self, hash: u64, id: LeaseId) -> bool {
        self.leases.read(self.leases.index(hash), |s| {
            s.get(hash, id)
                .is_some_and(|r| LeaseRecord::is_live(r.load()))
        })
    }

    pub(crate) fn get_lease(&self, key: &[u8]) -> LeaseId {
        let kh = self.hash_key(key);
        self.keys
            .read(self.keys.index(kh), |ks| ks.get(kh, key))
            .unwrap_or(LeaseId::NONE)
    }

    pub(crate) fn attach<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K]) -> Result<()> {
        self.check_running()?;
        self.validate_keys(keys)?;
        self.attach_logged(id, keys, true)
    }

    /// Attaches without logging (replay).
    pub(crate) fn attach_applied<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K]) -> Result<()> {
        self.attach_logged(id, keys, false)
    }

    fn attach_logged<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K], log: bool) -> Result<()> {
        let h = self.hash_id(id);
        // The leases whose stripes we need: this one plus every lease a key moves from. Found
        // optimistically; a key claimed meanwhile by a lease outside the set restarts the pass
        // with that lease added (keys already assigned stay assigned, which is harmless).
        let mut held = vec![h];
        'retry: loop {
            let _guards = self.lock_stripes(&held);
            if !self.exists(h, id) {
                return Err(Error::LeaseNotFound { id });
            }
            // Logged again on a retry: replay applies the attaches in log order, and the last
            // one for a key is the one that won in memory (see persist.rs).
            if log {
                self.log(|| vec![record(id, keys, true)])?;
            }
            let mut taken: Vec<Key> = Vec::new();
            for key in keys {
                let key = key.as_ref();
                let kh = self.hash_key(key);
                let outcome = self.keys.write(self.keys.index(kh), |ks| {
                    ks.assign(&self.hasher, kh, key, id, |from| {
                        self.stripe_covered(&held, self.hash_id(from))
                    })
                });
                match outcome {
                    Assign::Already => {}
                    Assign::Taken => taken.push(key.into()),
                    Assign::Moved(from) => {
                        let fh = self.hash_id(from);
                        self.leases.write(self.leases.index(fh), |s| {
                            if let Some(e) = s.extras.get_mut(&from) {
                                e.keys.remove(key);
                            }
                            s.tidy(from);
                        });
                        taken.push(key.into());
                    }
                    Assign::Blocked(owner) => {
                        self.add_keys(h, id, taken);
                        held.push(self.hash_id(owner));
                        continue 'retry;
                    }
                }
            }
            self.add_keys(h, id, taken);
            return Ok(());
        }
    }

    fn add_keys(&self, h: u64, id: LeaseId, taken: Vec<Key>) {
        if taken.is_empty() {
            return;
        }
        self.leases.write(self.leases.index(h), |s| {
            s.extra_mut(id).keys.extend(taken);
        });
    }

    pub(crate) fn detach<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K]) -> Result<()> {
        self.check_running()?;
        self.validate_keys(keys)?;
        self.detach_logged(id, keys, true)
    }

    /// Detaches without logging (replay).
    pub(crate) fn detach_applied<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K]) -> Result<()> {
        self.detach_logged(id, keys, false)
    }

    fn detach_logged<K: AsRef<[u8]>>(&self, id: LeaseId, keys: &[K], log: bool) -> Result<()> {
        let h = self.hash_id(id);
        let _stripe = self.lock_stripe(h);
        if log {
            if !self.exists(h, id) {
                return Err(Error::LeaseNotFound { id });
            }
            self.log(|| vec![record(id, keys, false)])?;
        }
        let removed: Vec<&[u8]> = self.leases.write(self.leases.index(h), |s| {
            s.get(h, id).ok_or(Error::LeaseNotFound { id })?;
            let mut removed = Vec::new();
            if let Some(e) = s.extras.get_mut(&id) {
                for key in keys {
                    if e.keys.remove(key.as_ref()) {
                        removed.push(key.as_ref());
                    }
                }
            }
            s.tidy(id);
            Ok::<_, Error>(removed)
        })?;
        self.release_keys(id, removed);
        Ok(())
    }
}

/// The log record of an attach or a detach.
fn record<K: AsRef<[u8]>>(id: LeaseId, keys: &[K], attach: bool) -> Record {
    let keys = keys.iter().map(|k| k.as_ref().to_vec()).collect();
    if attach {
        Record::Attach { id: id.get(), keys }
    } else {
        Record::Detach { id: id.get(), keys }
    }
}
