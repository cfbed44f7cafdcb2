//! The reference lessor: what a careful port of etcd's own lessor costs on the same workload,
//! in the same process and the same run, so that every figure comes with a ratio that holds on
//! a noisy machine.
//!
//! etcd's design ([`etcd`]): one mutex around a hash map of leases, a key map, and a binary
//! heap of (deadline, id) ([`queue`], in etcd >= 3.4's fix-in-place shape by default or etcd
//! 3.3's push-per-renew shape with `--baseline-heap lazy`), plus a checker thread that scans
//! every 500 ms and hands out at most 1000 expired leases a second.
//!
//! This module holds the [`Target`] and [`Engine`] impls that let scenarios drive it.

mod etcd;
mod queue;

use std::time::Duration;

pub(crate) use self::etcd::EtcdLessor;
use self::etcd::Refused;
use super::target::{Engine, Key, Ops, Renewed, Target, TargetConfig};

/// A worker's handle on the reference lessor: a shared reference.
#[derive(Debug)]
pub(crate) struct EtcdWorker<'a>(&'a EtcdLessor);

impl Ops for EtcdWorker<'_> {
    #[inline]
    fn grant(&mut self, id: i64, ttl: Duration) -> bool {
        self.0.grant(id, ttl).is_ok()
    }

    #[inline]
    fn renew(&mut self, id: i64) -> Renewed {
        match self.0.renew(id) {
            Ok(_) => Renewed::Ok,
            Err(Refused::Expired) => Renewed::Expired,
            Err(Refused::NotFound) => Renewed::Missing,
            Err(_) => Renewed::Other,
        }
    }

    #[inline]
    fn revoke(&mut self, id: i64, _keys: &[Key]) -> bool {
        self.0.revoke(id).is_ok()
    }

    #[inline]
    fn attach(&mut self, id: i64, keys: &[Key]) -> bool {
        let mut refs: [&[u8]; 16] = [&[]; 16];
        if keys.len() <= refs.len() {
            for (r, k) in refs.iter_mut().zip(keys) {
                *r = &k[..];
            }
            return self.0.attach(id, &refs[..keys.len()]).is_ok();
        }
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        self.0.attach(id, &refs).is_ok()
    }
}

impl Target for EtcdLessor {
    type Worker<'a> = EtcdWorker<'a>;

    const LABEL: &'static str = "etcd-style";

    fn build(cfg: &TargetConfig) -> Self {
        EtcdLessor::new(cfg.primary, cfg.heap, Duration::from_millis(1))
    }

    fn worker(&self, _thread: usize) -> EtcdWorker<'_> {
        EtcdWorker(self)
    }

    fn len(&self) -> usize {
        EtcdLessor::len(self)
    }

    fn owner(&self, key: &Key) -> Option<i64> {
        self.get_lease(key)
    }

    fn queue_len(&self) -> Option<usize> {
        Some(EtcdLessor::queue_len(self))
    }
}

impl Engine for EtcdLessor {
    fn promote(&self, extend: Duration) {
        EtcdLessor::promote(self, extend);
    }

    fn demote(&self) {
        EtcdLessor::demote(self);
    }

    fn recv_expired(&self, timeout: Duration) -> Option<Vec<i64>> {
        self.expired_leases().recv_timeout(timeout).ok()
    }

    fn revoke_now(&self, id: i64) -> bool {
        self.revoke(id).is_ok()
    }

    fn expiring(&self, id: i64) -> bool {
        EtcdLessor::expiring(self, id)
    }
}
