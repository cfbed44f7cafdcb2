//! [`LeaseApi`]: the operations of etcd's `Lessor` interface as a trait, implemented by the
//! real [`Lessor`] and by [`FakeLessor`] for tests of code that uses a lessor.

use std::time::Duration;

use crate::error::Result;
use crate::lease::{Lease, LeaseId, Remaining};
use crate::lessor::Lessor;

/// etcd's `Lessor` interface. Code that takes `&dyn LeaseApi` runs against the real engine or
/// a [`FakeLessor`].
///
/// # Examples
///
/// ```
/// use lessor::{FakeLessor, LeaseApi, LeaseId, Lessor};
/// use std::time::Duration;
///
/// fn keep_alive(l: &dyn LeaseApi, id: LeaseId) -> lessor::Result<Duration> {
///     l.renew(id)
/// }
/// assert_eq!(keep_alive(&FakeLessor, LeaseId::new(1))?, Duration::from_secs(10));
/// let real = Lessor::builder().build()?;
/// real.grant(LeaseId::new(1), Duration::from_secs(5))?;
/// assert_eq!(keep_alive(&real, LeaseId::new(1))?, Duration::from_secs(5));
/// # Ok::<(), lessor::Error>(())
/// ```
pub trait LeaseApi: Send + Sync {
    /// See [`Lessor::grant`].
    fn grant(&self, id: LeaseId, ttl: Duration) -> Result<Lease>;
    /// See [`Lessor::revoke`].
    fn revoke(&self, id: LeaseId) -> Result<()>;
    /// See [`Lessor::attach`].
    fn attach(&self, id: LeaseId, keys: &[&[u8]]) -> Result<()>;
    /// See [`Lessor::detach`].
    fn detach(&self, id: LeaseId, keys: &[&[u8]]) -> Result<()>;
    /// See [`Lessor::get_lease`].
    fn get_lease(&self, key: &[u8]) -> LeaseId;
    /// See [`Lessor::renew`].
    fn renew(&self, id: LeaseId) -> Result<Duration>;
    /// See [`Lessor::lookup`].
    fn lookup(&self, id: LeaseId) -> Option<Lease>;
    /// See [`Lessor::leases`].
    fn leases(&self) -> Vec<Lease>;
    /// See [`Lessor::checkpoint`].
    fn checkpoint(&self, id: LeaseId, remaining: Duration) -> Result<()>;
    /// See [`Lessor::promote`].
    fn promote(&self, extend: Duration);
    /// See [`Lessor::demote`].
    fn demote(&self);
    /// See [`Lessor::stop`].
    fn stop(&self);
}

impl LeaseApi for Lessor {
    fn grant(&self, id: LeaseId, ttl: Duration) -> Result<Lease> {
        Lessor::grant(self, id, ttl)
    }
    fn revoke(&self, id: LeaseId) -> Result<()> {
        Lessor::revoke(self, id)
    }
    fn attach(&self, id: LeaseId, keys: &[&[u8]]) -> Result<()> {
        Lessor::attach(self, id, keys.iter().copied())
    }
    fn detach(&self, id: LeaseId, keys: &[&[u8]]) -> Result<()> {
        Lessor::detach(self, id, keys.iter().copied())
    }
    fn get_lease(&self, key: &[u8]) -> LeaseId {
        Lessor::get_lease(self, key)
    }
    fn renew(&self, id: LeaseId) -> Result<Duration> {
        Lessor::renew(self, id)
    }
    fn lookup(&self, id: LeaseId) -> Option<Lease> {
        Lessor::lookup(self, id)
    }
    fn leases(&self) -> Vec<Lease> {
        Lessor::leases(self)
    }
    fn checkpoint(&self, id: LeaseId, remaining: Duration) -> Result<()> {
        Lessor::checkpoint(self, id, remaining)
    }
    fn promote(&self, extend: Duration) {
        Lessor::promote(self, extend)
    }
    fn demote(&self) {
        Lessor::demote(self)
    }
    fn stop(&self) {
        Lessor::stop(self)
    }
}

/// A lessor that does nothing, etcd's `FakeLessor`: grants store nothing (the returned lease is
/// built from the arguments), renew answers 10 s, lookups find nothing, every call succeeds.
///
/// # Examples
///
/// ```
/// use lessor::{FakeLessor, LeaseApi, LeaseId};
/// use std::time::Duration;
///
/// let fake = FakeLessor;
/// fake.grant(LeaseId::new(1), Duration::from_secs(5))?;
/// assert!(fake.lookup(LeaseId::new(1)).is_none());
/// assert_eq!(fake.renew(LeaseId::new(1))?, Duration::from_secs(10));
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeLessor;

impl LeaseApi for FakeLessor {
    fn grant(&self, id: LeaseId, ttl: Duration) -> Result<Lease> {
        Ok(Lease {
            id,
            ttl,
            remaining: Remaining::Left(ttl),
            keys: Vec::new(),
        })
    }
    fn revoke(&self, _id: LeaseId) -> Result<()> {
        Ok(())
    }
    fn attach(&self, _id: LeaseId, _keys: &[&[u8]]) -> Result<()> {
        Ok(())
    }
    fn detach(&self, _id: LeaseId, _keys: &[&[u8]]) -> Result<()> {
        Ok(())
    }
    fn get_lease(&self, _key: &[u8]) -> LeaseId {
        LeaseId::NONE
    }
    fn renew(&self, _id: LeaseId) -> Result<Duration> {
        Ok(Duration::from_secs(10))
    }
    fn lookup(&self, _id: LeaseId) -> Option<Lease> {
        None
    }
    fn leases(&self) -> Vec<Lease> {
        Vec::new()
    }
    fn checkpoint(&self, _id: LeaseId, _remaining: Duration) -> Result<()> {
        Ok(())
    }
    fn promote(&self, _extend: Duration) {}
    fn demote(&self) {}
    fn stop(&self) {}
}
