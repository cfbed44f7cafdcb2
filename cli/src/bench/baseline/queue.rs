//! The reference lessor's expiry queue, in etcd's two historical shapes.
//!
//! - [`Queue::Fix`]: etcd >= 3.4's `LeaseExpiredNotifier`: a binary min-heap of
//!   `LeaseWithTime{id, time, index}` items plus a map from lease id to its item. There is one
//!   item per lease: `RegisterOrUpdate` changes the item's time and calls `heap.Fix` on it, so a
//!   renew costs a map lookup and a sift of O(log n). The Go items are heap-allocated structs
//!   that the heap points at; here they live in a slab ([`Notifier::items`]) and the heap
//!   holds slab indices, which is the same indirection without a garbage collector.
//! - [`Queue::Lazy`]: etcd 3.3's `leaseHeap`: every renew pushes a new `(time, id)` entry and
//!   stale ones are dropped when they reach the top. A push is cheap, but the heap grows with
//!   the renew rate (etcd#9418, #11495: the leak that the notifier fixed).
//!
//! # Ground rules
//!
//! Owned by the reference lessor's state, behind its one mutex; no locking of its own. Times
//! are nanoseconds since the lessor was built.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;

use crate::bench::args::HeapKind;

/// One lease's entry in the notifier (etcd's `LeaseWithTime`).
#[derive(Debug, Clone, Copy)]
struct Item {
    id: i64,
    time: u64,
    /// Where this item sits in the heap.
    index: usize,
}

/// etcd's `LeaseExpiredNotifier`: one heap item per lease, fixed in place on update.
#[derive(Debug, Default)]
pub(crate) struct Notifier {
    /// Lease id -> slot of its item (etcd's `m map[LeaseID]*LeaseWithTime`).
    m: HashMap<i64, u32>,
    /// The items, by slot.
    items: Vec<Item>,
    /// Free slots.
    free: Vec<u32>,
    /// The heap of slots, earliest time first (etcd's `queue LeaseQueue`).
    queue: Vec<u32>,
}

impl Notifier {
    fn time_at(&self, i: usize) -> u64 {
        self.items[self.queue[i] as usize].time
    }

    fn less(&self, i: usize, j: usize) -> bool {
        self.time_at(i) < self.time_at(j)
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.queue.swap(i, j);
        self.items[self.queue[i] as usize].index = i;
        self.items[self.queue[j] as usize].index = j;
    }

    /// Go's `heap.up`.
    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.swap(i, j);
            j = i;
        }
    }

    /// Go's `heap.down`; true if the item moved.
    fn down(&mut self, i0: usize) -> bool {
        let n = self.queue.len();
        let mut i = i0;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let mut j = left;
            if left + 1 < n && self.less(left + 1, left) {
                j = left + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.swap(i, j);
            i = j;
        }
        i > i0
    }

    fn register_or_update(&mut self, id: i64, time: u64) {
        if let Some(&slot) = self.m.get(&id) {
            let item = &mut self.items[slot as usize];
            item.time = time;
            let i = item.index;
            if !self.down(i) {
                self.up(i);
            }
            return;
        }
        let index = self.queue.len();
        let item = Item { id, time, index };
        let slot = match self.free.pop() {
            Some(s) => {
                self.items[s as usize] = item;
                s
            }
            None => {
                self.items.push(item);
                u32::try_from(self.items.len() - 1).expect("fewer than 2^32 leases")
            }
        };
        self.queue.push(slot);
        self.m.insert(id, slot);
        self.up(index);
    }

    fn poll(&self) -> Option<(i64, u64)> {
        let slot = *self.queue.first()?;
        let item = self.items[slot as usize];
        Some((item.id, item.time))
    }

    fn unregister(&mut self) -> Option<(i64, u64)> {
        let last = self.queue.len().checked_sub(1)?;
        self.swap(0, last);
        let slot = self.queue.pop().expect("not empty");
        self.down(0);
        let item = self.items[slot as usize];
        self.m.remove(&item.id);
        self.free.push(slot);
        Some((item.id, item.time))
    }
}

/// The reference lessor's expiry queue.
#[derive(Debug)]
pub(crate) enum Queue {
    /// etcd >= 3.4: one item per lease, fixed in place.
    Fix(Notifier),
    /// etcd 3.3: a push per update, stale entries dropped lazily.
    Lazy(BinaryHeap<Reverse<(u64, i64)>>),
}

impl Queue {
    /// An empty queue of the given kind.
    pub(crate) fn new(kind: HeapKind) -> Self {
        match kind {
            HeapKind::Fix => Queue::Fix(Notifier::default()),
            HeapKind::Lazy => Queue::Lazy(BinaryHeap::new()),
        }
    }

    /// True for the lazy kind, whose entries may be stale.
    pub(crate) fn is_lazy(&self) -> bool {
        matches!(self, Queue::Lazy(_))
    }

    /// Files lease `id` to fire at `time` (etcd's `RegisterOrUpdate`, or 3.3's `heap.Push`).
    #[inline]
    pub(crate) fn register_or_update(&mut self, id: i64, time: u64) {
        match self {
            Queue::Fix(n) => n.register_or_update(id, time),
            Queue::Lazy(h) => h.push(Reverse((time, id))),
        }
    }

    /// The earliest entry, `(id, time)`.
    pub(crate) fn poll(&self) -> Option<(i64, u64)> {
        match self {
            Queue::Fix(n) => n.poll(),
            Queue::Lazy(h) => h.peek().map(|Reverse((t, id))| (*id, *t)),
        }
    }

    /// Removes and returns the earliest entry.
    pub(crate) fn unregister(&mut self) -> Option<(i64, u64)> {
        match self {
            Queue::Fix(n) => n.unregister(),
            Queue::Lazy(h) => h.pop().map(|Reverse((t, id))| (id, t)),
        }
    }

    /// Empties the queue (etcd's demote clears the notifier).
    pub(crate) fn clear(&mut self) {
        match self {
            Queue::Fix(n) => *n = Notifier::default(),
            Queue::Lazy(h) => *h = BinaryHeap::new(),
        }
    }

    /// Entries held (stale ones included, for the lazy kind).
    pub(crate) fn len(&self) -> usize {
        match self {
            Queue::Fix(n) => n.queue.len(),
            Queue::Lazy(h) => h.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::rng::Rng;
    use std::collections::BTreeMap;

    #[test]
    fn notifier_matches_a_model_under_random_updates_and_pops() {
        let mut q = Queue::new(HeapKind::Fix);
        let mut model: BTreeMap<i64, u64> = BTreeMap::new();
        let mut rng = Rng::new(42, 0);
        for step in 0..20_000 {
            let id = rng.below(300) as i64;
            if rng.below(4) == 0 {
                let got = q.unregister();
                let want = model.iter().map(|(id, t)| (*t, *id)).min();
                match (got, want) {
                    (None, None) => {}
                    (Some((gid, gt)), Some((wt, _))) => {
                        assert_eq!(gt, wt, "step {step}: earliest time");
                        assert_eq!(model.remove(&gid), Some(gt), "step {step}");
                    }
                    other => panic!("step {step}: {other:?}"),
                }
            } else {
                let t = rng.below(1000);
                q.register_or_update(id, t);
                model.insert(id, t);
            }
            assert_eq!(q.len(), model.len());
            if let Some((id, t)) = q.poll() {
                assert_eq!(model.get(&id), Some(&t));
                assert_eq!(Some(t), model.values().min().copied());
            }
        }
    }

    #[test]
    fn lazy_keeps_one_entry_per_update() {
        let mut q = Queue::new(HeapKind::Lazy);
        for t in [30, 10, 20] {
            q.register_or_update(7, t);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.poll(), Some((7, 10)));
        assert_eq!(q.unregister(), Some((7, 10)));
        q.clear();
        assert_eq!(q.len(), 0);
        assert!(q.is_lazy());
    }

    #[test]
    fn notifier_keeps_one_entry_per_lease() {
        let mut q = Queue::new(HeapKind::Fix);
        for t in [30, 10, 20] {
            q.register_or_update(7, t);
        }
        q.register_or_update(8, 15);
        assert_eq!(q.len(), 2);
        assert_eq!(q.unregister(), Some((8, 15)));
        assert_eq!(q.unregister(), Some((7, 20)));
        assert_eq!(q.unregister(), None);
    }
}
