//! What a scenario runs against: the [`Target`] and [`Engine`] traits, the per-thread [`Ops`]
//! handle, the benchmark's keys, and lessor itself as a target ([`LessorTarget`]).
//!
//! Three targets implement [`Target`]: lessor, the etcd-style reference lessor
//! (`baseline::EtcdLessor`) and the hashbrown floor (`floor::Floor`). The two lessors also
//! implement [`Engine`] (promote, expiry delivery), which the floor has no counterpart for.
//! Scenarios are generic over these traits, so every target runs the same code path and the
//! same workload; the calls are monomorphised, with no dynamic dispatch in the timed loops.

use std::time::Duration;

use lessor::{Error, LeaseId, Lessor, Remaining};

use super::args::HeapKind;

/// Bytes in one benchmark key.
pub(crate) const KEY_LEN: usize = 11;

/// A benchmark key: `b'k'`, the lease id (8 bytes, big-endian) and the key's number within its
/// lease (2 bytes). Fixed-size, so making one costs no allocation and no formatting.
pub(crate) type Key = [u8; KEY_LEN];

/// The `j`-th key of lease `id`.
#[inline]
pub(crate) fn key(id: i64, j: usize) -> Key {
    let mut k = [0u8; KEY_LEN];
    k[0] = b'k';
    k[1..9].copy_from_slice(&id.to_be_bytes());
    let j = u16::try_from(j).expect("at most 1024 keys per lease");
    k[9..11].copy_from_slice(&j.to_be_bytes());
    k
}

/// Fills `buf` with the first `n` keys of lease `id`.
#[inline]
pub(crate) fn keys_into(buf: &mut Vec<Key>, id: i64, n: usize) {
    buf.clear();
    buf.extend((0..n).map(|j| key(id, j)));
}

/// What a renew returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewed {
    /// Renewed.
    Ok,
    /// The lease had expired (a lost session).
    Expired,
    /// No such lease.
    Missing,
    /// Any other error (not primary, stopped).
    Other,
}

/// How to build a target for one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TargetConfig {
    /// Worker threads (the floor keeps one map per thread).
    pub(crate) threads: usize,
    /// Start primary (leases expire) or not (nothing expires until a promote).
    pub(crate) primary: bool,
    /// lessor's wheel tick.
    pub(crate) tick: Duration,
    /// The reference lessor's queue.
    pub(crate) heap: HeapKind,
}

/// The per-thread handle through which a worker thread operates on a target.
pub(crate) trait Ops {
    /// Grants lease `id` for `ttl`; true if granted.
    fn grant(&mut self, id: i64, ttl: Duration) -> bool;
    /// Renews lease `id`.
    fn renew(&mut self, id: i64) -> Renewed;
    /// Revokes lease `id`, whose attached keys are `keys` (the lessors know them; the floor,
    /// which has no per-lease key set, is told); true if it existed.
    fn revoke(&mut self, id: i64, keys: &[Key]) -> bool;
    /// Attaches `keys` to lease `id`; true if the lease exists.
    fn attach(&mut self, id: i64, keys: &[Key]) -> bool;
}

/// Something a scenario measures.
pub(crate) trait Target: Sync + Sized {
    /// A worker thread's handle.
    type Worker<'a>: Ops
    where
        Self: 'a;

    /// The name in tables and progress messages.
    const LABEL: &'static str;

    /// An empty target.
    fn build(cfg: &TargetConfig) -> Self;

    /// Worker thread `thread`'s handle. The floor hands each thread its own map, so a thread
    /// must only touch the leases the id layout gives it (see `rng`).
    fn worker(&self, thread: usize) -> Self::Worker<'_>;

    /// The number of leases.
    fn len(&self) -> usize;

    /// The lease `key` is attached to.
    fn owner(&self, key: &Key) -> Option<i64>;

    /// Lets background bookkeeping catch up before memory is measured (lessor files its new
    /// leases in the wheel).
    fn settle(&self) {}

    /// Entries in the expiry queue, where the engine keeps one that can differ from the lease
    /// count (the reference lessor's heap).
    fn queue_len(&self) -> Option<usize> {
        None
    }
}

/// A target with etcd's whole lessor behaviour: promote, demote, expiry delivery.
pub(crate) trait Engine: Target {
    /// Becomes primary; see `Lessor::promote`.
    fn promote(&self, extend: Duration);
    /// Steps down; see `Lessor::demote`.
    fn demote(&self);
    /// The next batch of expired lease ids, waiting at most `timeout`.
    fn recv_expired(&self, timeout: Duration) -> Option<Vec<i64>>;
    /// Revokes one lease from outside a worker (the expiry consumer).
    fn revoke_now(&self, id: i64) -> bool;
    /// True if lease `id` exists and has a finite deadline.
    fn expiring(&self, id: i64) -> bool;
}

// ===== impl Target for lessor =====

/// lessor as configured by the harness: minimum TTL 1 ms (so that `--ttl` is taken as given),
/// the given tick, etcd's revoke rate (1000/s, for promote's spreading), notify mode, the
/// expiry thread running, default shards.
#[derive(Debug)]
pub(crate) struct LessorTarget(Lessor);

/// A worker's handle on lessor: just a shared reference.
#[derive(Debug)]
pub(crate) struct LessorWorker<'a>(&'a Lessor);

impl Ops for LessorWorker<'_> {
    #[inline]
    fn grant(&mut self, id: i64, ttl: Duration) -> bool {
        self.0.grant(LeaseId::new(id), ttl).is_ok()
    }

    #[inline]
    fn renew(&mut self, id: i64) -> Renewed {
        match self.0.renew(LeaseId::new(id)) {
            Ok(_) => Renewed::Ok,
            Err(Error::LeaseExpired { .. }) => Renewed::Expired,
            Err(Error::LeaseNotFound { .. }) => Renewed::Missing,
            Err(_) => Renewed::Other,
        }
    }

    #[inline]
    fn revoke(&mut self, id: i64, _keys: &[Key]) -> bool {
        self.0.revoke(LeaseId::new(id)).is_ok()
    }

    #[inline]
    fn attach(&mut self, id: i64, keys: &[Key]) -> bool {
        self.0.attach(LeaseId::new(id), keys).is_ok()
    }
}

impl LessorTarget {
    /// A lessor the caller built (a durable one, for recovery and durable-grant), as a target.
    pub(crate) fn from_lessor(lessor: Lessor) -> Self {
        LessorTarget(lessor)
    }

    /// The lessor itself.
    pub(crate) fn lessor(&self) -> &Lessor {
        &self.0
    }
}

impl Target for LessorTarget {
    type Worker<'a> = LessorWorker<'a>;

    const LABEL: &'static str = "lessor";

    fn build(cfg: &TargetConfig) -> Self {
        let lessor = Lessor::builder()
            .min_ttl(Duration::from_millis(1))
            .tick(cfg.tick)
            .primary(cfg.primary)
            .build()
            .expect("the harness's lessor config is valid");
        LessorTarget(lessor)
    }

    fn worker(&self, _thread: usize) -> LessorWorker<'_> {
        LessorWorker(&self.0)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn owner(&self, key: &Key) -> Option<i64> {
        let id = self.0.get_lease(key);
        (!id.is_none()).then(|| id.get())
    }

    fn settle(&self) {
        // Files every new lease in the wheel now rather than at the expiry thread's next tick.
        let _ = self.0.run_expiry_once();
    }
}

impl Engine for LessorTarget {
    fn promote(&self, extend: Duration) {
        self.0.promote(extend);
    }

    fn demote(&self) {
        self.0.demote();
    }

    fn recv_expired(&self, timeout: Duration) -> Option<Vec<i64>> {
        let batch = self.0.expired_leases().recv_timeout(timeout).ok()?;
        Some(batch.iter().map(|l| l.id().get()).collect())
    }

    fn revoke_now(&self, id: i64) -> bool {
        self.0.revoke(LeaseId::new(id)).is_ok()
    }

    fn expiring(&self, id: i64) -> bool {
        self.0
            .lookup(LeaseId::new(id))
            .is_some_and(|l| l.remaining() != Remaining::Forever)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_fixed_size() {
        assert_ne!(key(1, 0), key(1, 1));
        assert_ne!(key(1, 0), key(256, 0));
        assert_eq!(key(-1, 3)[0], b'k');
        let mut buf = Vec::new();
        keys_into(&mut buf, 7, 3);
        assert_eq!(buf, vec![key(7, 0), key(7, 1), key(7, 2)]);
    }

    #[test]
    fn lessor_target_counts_and_finds_keys() {
        let cfg = TargetConfig {
            threads: 1,
            primary: true,
            tick: Duration::from_millis(10),
            heap: HeapKind::Fix,
        };
        let t = LessorTarget::build(&cfg);
        let mut w = t.worker(0);
        assert!(w.grant(5, Duration::from_secs(60)));
        assert!(!w.grant(5, Duration::from_secs(60)));
        assert!(w.attach(5, &[key(5, 0)]));
        assert!(!w.attach(6, &[key(6, 0)]));
        assert_eq!(w.renew(5), Renewed::Ok);
        assert_eq!(w.renew(6), Renewed::Missing);
        assert_eq!(t.owner(&key(5, 0)), Some(5));
        assert_eq!(t.len(), 1);
        assert!(t.expiring(5));
        assert!(w.revoke(5, &[]));
        assert_eq!(t.owner(&key(5, 0)), None);
        assert_eq!(t.len(), 0);
    }
}
