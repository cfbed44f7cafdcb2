//! The floor: what the map operations cost on a bare `hashbrown::HashMap` with nothing else.
//!
//! # Ground rules
//!
//! - One [`Part`] per worker thread, each behind its own mutex that the thread locks once, for
//!   its whole run (so no lock is taken per operation). Thread `t` only touches the leases the
//!   id layout gives it (see `rng`), so with T threads each part holds N/T leases: the floor is
//!   the cost with no sharing at all, the best any concurrent design could hope for.
//! - grant = insert of (id, TTL in ms); renew = lookup and store (a counter, no clock read);
//!   revoke = remove, plus the removal of its keys from the key map; attach = insert of each
//!   key (a boxed byte string, as a real key map holds) into the key map.
//! - The maps use hashbrown's default hasher (foldhash), as lessor's shards do.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use hashbrown::HashMap;

use super::args::millis;
use super::target::{Key, Ops, Renewed, Target, TargetConfig};

/// One thread's maps.
#[derive(Debug, Default)]
pub(crate) struct Part {
    leases: HashMap<i64, u64>,
    keys: HashMap<Box<[u8]>, i64>,
    renewals: u64,
}

/// The floor: one [`Part`] per worker thread.
#[derive(Debug)]
pub(crate) struct Floor {
    parts: Box<[CachePadded<Mutex<Part>>]>,
}

impl Floor {
    fn part(&self, t: usize) -> MutexGuard<'_, Part> {
        self.parts[t % self.parts.len()]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker's exclusive handle on its own part.
#[derive(Debug)]
pub(crate) struct FloorWorker<'a>(MutexGuard<'a, Part>);

impl Ops for FloorWorker<'_> {
    #[inline]
    fn grant(&mut self, id: i64, ttl: Duration) -> bool {
        self.0.leases.insert(id, millis(ttl)).is_none()
    }

    #[inline]
    fn renew(&mut self, id: i64) -> Renewed {
        let part = &mut *self.0;
        part.renewals = part.renewals.wrapping_add(1);
        match part.leases.get_mut(&id) {
            Some(v) => {
                *v = part.renewals;
                Renewed::Ok
            }
            None => Renewed::Missing,
        }
    }

    #[inline]
    fn revoke(&mut self, id: i64, keys: &[Key]) -> bool {
        let part = &mut *self.0;
        let found = part.leases.remove(&id).is_some();
        for k in keys {
            part.keys.remove(&k[..]);
        }
        found
    }

    #[inline]
    fn attach(&mut self, id: i64, keys: &[Key]) -> bool {
        let part = &mut *self.0;
        if !part.leases.contains_key(&id) {
            return false;
        }
        for k in keys {
            part.keys.insert(Box::from(&k[..]), id);
        }
        true
    }
}

impl Target for Floor {
    type Worker<'a> = FloorWorker<'a>;

    const LABEL: &'static str = "floor";

    fn build(cfg: &TargetConfig) -> Self {
        Floor {
            parts: (0..cfg.threads.max(1))
                .map(|_| CachePadded::new(Mutex::new(Part::default())))
                .collect(),
        }
    }

    fn worker(&self, thread: usize) -> FloorWorker<'_> {
        FloorWorker(self.part(thread))
    }

    fn len(&self) -> usize {
        (0..self.parts.len())
            .map(|t| self.part(t).leases.len())
            .sum()
    }

    fn owner(&self, key: &Key) -> Option<i64> {
        (0..self.parts.len()).find_map(|t| self.part(t).keys.get(&key[..]).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::HeapKind;
    use crate::bench::target::key;

    #[test]
    fn floor_does_the_map_operations() {
        let cfg = TargetConfig {
            threads: 2,
            primary: true,
            tick: Duration::from_millis(10),
            heap: HeapKind::Fix,
        };
        let f = Floor::build(&cfg);
        {
            let mut w = f.worker(1);
            assert!(w.grant(2, Duration::from_secs(1)));
            assert!(!w.grant(2, Duration::from_secs(1)));
            assert_eq!(w.renew(2), Renewed::Ok);
            assert_eq!(w.renew(4), Renewed::Missing);
            assert!(w.attach(2, &[key(2, 0)]));
            assert!(!w.attach(4, &[key(4, 0)]));
        }
        assert_eq!(f.len(), 1);
        assert_eq!(f.owner(&key(2, 0)), Some(2));
        assert!(f.worker(1).revoke(2, &[key(2, 0)]));
        assert_eq!(f.owner(&key(2, 0)), None);
        assert_eq!(f.len(), 0);
    }
}
