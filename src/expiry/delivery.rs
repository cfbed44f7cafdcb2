//! [`Delivery`]: one step's expired leases, cut into batches in deadline order.
//!
//! Leases come out of the wheel slot by slot, so they usually arrive in order of their
//! deadline's tick: each full batch then goes out at once, so a consumer starts on a burst
//! while the worker is still expiring it. When a step spans several ticks (a late wake, a
//! manual clock jump) candidates from higher levels can arrive out of order; from the first
//! such lease on, the step's remaining leases are held, sorted (stably) by tick at the end of
//! the step, and cut into batches. Delivery is thus in deadline order to within a tick when the
//! worker runs every tick, and within the step's span otherwise.

use crate::lease::Lease;

/// The leases one step expires.
#[derive(Debug)]
pub(crate) struct Delivery {
    batch_max: usize,
    chunks: Vec<Vec<Lease>>,
    current: Vec<Lease>,
    /// While out of order: the tick of each lease in `chunks` and `current`, in push order.
    ticks: Vec<u64>,
    /// No lease of this step came before a later one.
    sorted: bool,
    /// The latest tick pushed this step.
    last_tick: u64,
}

impl Delivery {
    pub(crate) fn new(batch_max: usize) -> Self {
        Delivery {
            batch_max,
            chunks: Vec::new(),
            current: Vec::new(),
            ticks: Vec::new(),
            sorted: true,
            last_tick: 0,
        }
    }

    /// Adds a lease; returns a full batch when it may go out at once.
    pub(crate) fn push(&mut self, tick: u64, lease: Lease) -> Option<Vec<Lease>> {
        if tick < self.last_tick {
            self.sorted = false;
        }
        self.last_tick = self.last_tick.max(tick);
        if self.current.capacity() == 0 {
            self.current.reserve_exact(self.batch_max);
        }
        self.current.push(lease);
        self.ticks.push(tick);
        if self.current.len() < self.batch_max {
            return None;
        }
        let full = std::mem::take(&mut self.current);
        if self.sorted {
            // Nothing else is held while in order: the batch's ticks are all of `ticks`.
            self.ticks.clear();
            Some(full)
        } else {
            self.chunks.push(full);
            None
        }
    }

    /// Appends this step's held batches, in deadline order, to `outbox`.
    pub(crate) fn finish(&mut self, outbox: &mut std::collections::VecDeque<Vec<Lease>>) {
        if !self.current.is_empty() {
            self.chunks.push(std::mem::take(&mut self.current));
        }
        if !self.sorted {
            // `ticks` holds the tick of every held lease, in push order.
            let mut all: Vec<(u64, Lease)> = self
                .ticks
                .drain(..)
                .zip(self.chunks.drain(..).flatten())
                .collect();
            all.sort_by_key(|(tick, _)| *tick);
            let mut leases = all.into_iter().map(|(_, l)| l).peekable();
            while leases.peek().is_some() {
                self.chunks
                    .push(leases.by_ref().take(self.batch_max).collect());
            }
        }
        outbox.extend(self.chunks.drain(..));
        self.clear();
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.current.clear();
        self.ticks.clear();
        self.sorted = true;
        self.last_tick = 0;
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;
    use crate::lease::{LeaseId, Remaining};
    use std::collections::VecDeque;
    use std::time::Duration;

    fn lease(id: i64) -> Lease {
        Lease {
            id: LeaseId::new(id),
            ttl: Duration::from_secs(1),
            remaining: Remaining::Overdue(Duration::ZERO),
            keys: Vec::new(),
        }
    }

    fn ids(outbox: &VecDeque<Vec<Lease>>) -> Vec<Vec<i64>> {
        outbox
            .iter()
            .map(|b| b.iter().map(|l| l.id().get()).collect())
            .collect()
    }

    #[test]
    fn in_order_batches_go_out_as_they_fill() {
        let mut d = Delivery::new(2);
        let mut out = VecDeque::new();
        let mut early = Vec::new();
        for (i, tick) in [1, 1, 2, 3, 3].into_iter().enumerate() {
            early.extend(d.push(tick, lease(i as i64)));
        }
        assert_eq!(early.len(), 2, "two full batches went out at once");
        d.finish(&mut out);
        assert_eq!(ids(&out), [vec![4]]);
    }

    #[test]
    fn once_out_of_order_the_rest_is_held_and_sorted_stably() {
        let mut d = Delivery::new(3);
        let mut out = VecDeque::new();
        let mut early = Vec::new();
        for (id, tick) in [(1, 5), (2, 3), (3, 5), (4, 3), (5, 4)] {
            early.extend(d.push(tick, lease(id)));
        }
        assert!(early.is_empty());
        d.finish(&mut out);
        assert_eq!(ids(&out), [vec![2, 4, 5], vec![1, 3]]);
        assert!(d.push(1, lease(9)).is_none());
        d.finish(&mut out);
        assert_eq!(ids(&out)[2], [9]);
    }
}
