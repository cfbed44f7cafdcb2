//! [`ShardLock`]: the shards' reader-writer lock, whose readers count themselves on cache
//! lines of their own.
//!
//! # Ground rules
//!
//! - **Why.** Every shared lock of a std `RwLock` writes the lock's one word. Two threads
//!   renewing leases of one map each find that word last written by the other about half the
//!   time, whatever the shard count, and fetch its line from the other core: at a million
//!   leases two threads renewed 6.8-7.5 M/s on one lessor, against about 11 M/s on one lessor
//!   each. Here a reader writes only a counter on a line of its own, for its thread's *slot*
//!   and its shard, and reads (never writes) the shard's state word, so readers on different
//!   cores share no written line. crossbeam's `ShardedLock` has the same reader side, but its
//!   writer takes one `RwLock` per slot: with it grants fell from 3.2-3.3 M/s to 1.9-2.0 and
//!   revokes from 3.5-3.6 to 1.6. This writer takes the state word with one compare-and-swap
//!   and reads the counters.
//! - **Who owns what.** [`ReaderCounts`] belongs to a whole [`Shards`](crate::shard::Shards)
//!   array: one counter per (slot, shard), each on a line of its own, and the one place where
//!   threads waiting for any of the array's writers sleep. A thread's slot is
//!   [`sync::thread_slot`] modulo the slot count, so threads may share a slot (its counter is
//!   an atomic count, not a flag). Each [`ShardLock`] owns its data and its state word:
//!   [`WRITER`] while a writer holds it, [`PARKED`] when someone sleeps waiting for it.
//! - **The handshake** (Dekker's). A reader adds one to its counter, then loads the state: no
//!   writer, it reads; a writer, it takes its one back and waits. A writer sets `WRITER` with
//!   a compare-and-swap, then waits until every slot's counter for its shard is zero. All four
//!   steps are `SeqCst`, so they fall in one total order, and of "announce, then look" on two
//!   threads at least one sees the other: either the reader sees the writer, or the writer
//!   sees the reader's count and waits for it to leave. Leaving is a `Release` decrement the
//!   writer's load reads; the writer's `Release` unlock is what the next reader's load reads.
//!   So reads and writes of the data never overlap, and each sees the last write before it.
//!   loom models `SeqCst` accesses only as `AcqRel`, so under loom a `SeqCst` fence stands
//!   between each announce and look ([`sync::seqcst_fence_for_loom`]); `loom_models` below
//!   checks the lock, and every model in `loom-tests/` runs on it.
//! - **Waiting.** A thread that meets a writer (a reader, or a second writer) spins briefly,
//!   then sleeps on the array's condition variable after setting `PARKED`; an unlock that finds
//!   `PARKED` wakes the sleepers. A writer waits for readers already inside, who hold the lock
//!   only for a lookup or a walk of one shard: it spins briefly, then yields its core.
//! - **Writers come first.** A reader arriving while a writer waits steps aside, so readers
//!   cannot starve a writer. Readers are never starved for long: writers are one insert or
//!   removal each.
//! - **Unsafe.** The data sits in an `UnsafeCell`; the two accesses below and the `Sync` impl
//!   are this module's only unsafe code, each with its `SAFETY` argument (the handshake above).

#![allow(unsafe_code)] // the data's UnsafeCell; see the module docs

use crossbeam_utils::CachePadded;

use crate::sync::{self, AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell};

/// At most this many counters per map (slots x shards), each on a line of its own (128 bytes
/// on x86-64, where crossbeam pads for the adjacent-line prefetcher): a map of many shards
/// gets fewer slots, so that its counters stay within 1 MiB, or, past 8192 shards, take no
/// more room than its shards themselves (one slot).
const MAX_COUNTERS: usize = 1 << 13;

/// The most reader slots a map has.
const MAX_SLOTS: usize = 64;

/// How many readers hold each shard of one map, counted per slot (see the module docs).
pub(crate) struct ReaderCounts {
    /// Slot `t`'s counter for shard `s` is `counters[t * shards + s]`, each on a line of its
    /// own: a writer reads every slot's counter for its shard, and that must not take from a
    /// reader the line it counts itself on for the other shards.
    counters: Box<[CachePadded<AtomicUsize>]>,
    /// How many shards there are.
    shards: usize,
    /// Slots - 1 (a power of two).
    slot_mask: usize,
    /// Where threads waiting for a writer of any of the map's shards sleep: they set
    /// [`PARKED`] in its state under this mutex, and a writer that finds it set wakes them all
    /// under it. One spot for the whole map keeps each shard's lock, data and table hint
    /// within one 128-byte pair of lines; a wake for another shard's writer only sends a
    /// sleeper round its loop again.
    park: Mutex<()>,
    wake: Condvar,
}

impl ReaderCounts {
    /// Counters for `shards` shards: one slot per core (a power of two, at least two), fewer
    /// for a map of so many shards that the counters would pass [`MAX_COUNTERS`].
    pub(crate) fn new(shards: usize) -> Self {
        Self::with_slots(shards, default_slots())
    }

    /// Counters for `shards` shards and `slots` slots (both at least 1; slots rounded up to a
    /// power of two and capped as in [`new`](Self::new)).
    pub(crate) fn with_slots(shards: usize, slots: usize) -> Self {
        let shards = shards.max(1);
        let mut slots = slots.clamp(1, MAX_SLOTS).next_power_of_two();
        while slots > 1 && slots * shards > MAX_COUNTERS {
            slots /= 2;
        }
        let counters = (0..slots * shards)
            .map(|_| CachePadded::new(AtomicUsize::new(0)))
            .collect();
        ReaderCounts {
            counters,
            shards,
            slot_mask: slots - 1,
            park: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// How many slots there are.
    pub(crate) fn slots(&self) -> usize {
        self.slot_mask + 1
    }

    /// The calling thread's counter for `shard`.
    #[inline]
    fn mine(&self, shard: usize) -> &AtomicUsize {
        self.counter(sync::thread_slot() & self.slot_mask, shard)
    }

    /// Slot `slot`'s counter for `shard`.
    #[inline]
    fn counter(&self, slot: usize, shard: usize) -> &AtomicUsize {
        &self.counters[slot * self.shards + shard]
    }
}

/// One slot per core, at least two (so two threads rarely share one); two under loom.
fn default_slots() -> usize {
    if cfg!(lessor_loom) {
        2
    } else {
        std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .max(2)
    }
}

impl std::fmt::Debug for ReaderCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderCounts")
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

/// A reader-writer lock over `S` whose readers are counted in a [`ReaderCounts`] (see the
/// module docs). The counts are passed to each call, with the shard's index in them.
pub(crate) struct ShardLock<S> {
    /// [`WRITER`] while a writer is in (from before it waits for readers until its write is
    /// done), and [`PARKED`] once a thread has gone to sleep waiting for it
    /// ([`ReaderCounts::park`]).
    state: AtomicUsize,
    data: UnsafeCell<S>,
}

/// [`ShardLock::state`]: a writer holds the lock.
const WRITER: usize = 1;
/// [`ShardLock::state`]: someone sleeps waiting for this lock's writer
/// ([`ReaderCounts::park`]; possibly stale: waking nobody is harmless).
const PARKED: usize = 2;

/// How many rounds a waiting thread spins before it sleeps (on a writer) or yields its core
/// (on readers). Under loom, none: sleeping or yielding at once keeps the exploration small.
const SPINS: u32 = if cfg!(lessor_loom) { 0 } else { 64 };

/// One round of spinning, while `rounds` is under [`SPINS`]: returns whether it spun.
#[inline]
fn spun(rounds: &mut u32) -> bool {
    if *rounds < SPINS {
        *rounds += 1;
        std::hint::spin_loop();
        true
    } else {
        false
    }
}

// SAFETY: the handshake (module docs) lets many threads read the data at once (so `S: Sync`)
// or one thread write it (so `S: Send`), never both; exactly `RwLock<S>`'s bounds.
unsafe impl<S: Send + Sync> Sync for ShardLock<S> {}

impl<S> ShardLock<S> {
    /// A lock over `data`.
    pub(crate) fn new(data: S) -> Self {
        ShardLock {
            state: AtomicUsize::new(0),
            data: UnsafeCell::new(data),
        }
    }

    /// Runs `f` on the data, shared with other readers; `counts` and `shard` say where this
    /// lock's readers are counted.
    #[inline]
    pub(crate) fn read<R>(
        &self,
        counts: &ReaderCounts,
        shard: usize,
        f: impl FnOnce(&S) -> R,
    ) -> R {
        let mine = counts.mine(shard);
        let mut rounds = 0;
        loop {
            mine.fetch_add(1, Ordering::SeqCst);
            sync::seqcst_fence_for_loom();
            if self.state.load(Ordering::SeqCst) & WRITER == 0 {
                break;
            }
            // A writer is in, or waiting for readers to leave: step aside until it is done.
            mine.fetch_sub(1, Ordering::Relaxed);
            self.wait_for_writer(counts, &mut rounds);
        }
        let _leave = Leave(mine);
        // SAFETY: our count went up before we saw no writer, so a writer that comes in waits
        // for our count to drop (module docs), which happens only when `_leave` drops, after
        // `f`; and the last writer's data writes happened before its `Release` unlock, which
        // our `SeqCst` load read.
        self.data.with(|p| f(unsafe { &*p }))
    }

    /// Runs `f` on the data, alone; `counts` and `shard` say where this lock's readers are
    /// counted.
    #[inline]
    pub(crate) fn write<R>(
        &self,
        counts: &ReaderCounts,
        shard: usize,
        f: impl FnOnce(&mut S) -> R,
    ) -> R {
        let mut rounds = 0;
        loop {
            let state = self.state.load(Ordering::Relaxed);
            if state & WRITER == 0
                && self
                    .state
                    .compare_exchange_weak(
                        state,
                        state | WRITER,
                        Ordering::SeqCst,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                break;
            }
            self.wait_for_writer(counts, &mut rounds);
        }
        sync::seqcst_fence_for_loom();
        for slot in 0..counts.slots() {
            let count = counts.counter(slot, shard);
            let mut rounds = 0;
            while count.load(Ordering::SeqCst) != 0 {
                if !spun(&mut rounds) {
                    sync::yield_now();
                }
            }
        }
        let _unlock = Unlock(self, counts);
        // SAFETY: our compare-and-swap made us the one writer; it came before every slot's
        // count for this shard was seen at zero, so every reader either left (its `Release`
        // decrement, read by our load, ordered its reads before us) or sees `WRITER` and
        // waits until `_unlock` drops, after `f`.
        self.data.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// One round of waiting for the writer to leave: a spin for the first [`SPINS`] rounds,
    /// then sleep until a writer's unlock wakes us (or we find no writer).
    #[cold]
    fn wait_for_writer(&self, counts: &ReaderCounts, rounds: &mut u32) {
        if spun(rounds) {
            return;
        }
        let guard = sync::lock(&counts.park);
        // Announce the sleep under `park`: a writer that unlocks after this sees PARKED and
        // takes `park` to wake us, which it cannot do before `wait` has let `park` go.
        if self.state.fetch_or(PARKED, Ordering::SeqCst) & WRITER != 0 {
            drop(sync::wait(&counts.wake, guard));
        }
    }

    /// The writer leaves: clears the state and wakes whoever sleeps.
    #[inline]
    fn unlock(&self, counts: &ReaderCounts) {
        if self.state.swap(0, Ordering::Release) & PARKED != 0 {
            drop(sync::lock(&counts.park));
            counts.wake.notify_all();
        }
    }
}

impl<S> std::fmt::Debug for ShardLock<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLock")
            .field(
                "writing",
                &(self.state.load(Ordering::Relaxed) & WRITER != 0),
            )
            .finish_non_exhaustive()
    }
}

/// A reader leaving: its count goes down when this drops (even if the reader's closure
/// panics).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// A writer leaving, when this drops (even if the writer's closure panics).
struct Unlock<'a, S>(&'a ShardLock<S>, &'a ReaderCounts);

impl<S> Drop for Unlock<'_, S> {
    #[inline]
    fn drop(&mut self) {
        self.0.unlock(self.1);
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_are_a_power_of_two_capped_by_the_counters_budget() {
        assert_eq!(ReaderCounts::with_slots(8, 3).slots(), 4);
        assert_eq!(ReaderCounts::with_slots(8, 1000).slots(), MAX_SLOTS);
        assert_eq!(ReaderCounts::with_slots(4096, 64).slots(), 2);
        assert_eq!(ReaderCounts::with_slots(1 << 16, 64).slots(), 1);
        assert!(ReaderCounts::new(8).slots() >= 2);
    }

    #[test]
    fn every_counter_has_a_line_of_its_own() {
        let counts = ReaderCounts::with_slots(40, 4);
        let mut lines = std::collections::HashSet::new();
        for slot in 0..4 {
            for shard in 0..40 {
                let at = counts.counter(slot, shard) as *const AtomicUsize as usize;
                assert!(
                    lines.insert(at / 128),
                    "slot {slot} shard {shard} shares a line"
                );
            }
        }
    }

    #[test]
    fn a_writer_waits_for_readers_and_readers_see_every_write_whole() {
        // Writers keep two halves equal; readers must never see them differ, and every
        // increment must survive.
        let counts = ReaderCounts::with_slots(1, 2);
        let lock = ShardLock::new((0u64, 0u64));
        let (writers, readers, rounds) = (2, 3, 2_000);
        std::thread::scope(|s| {
            for _ in 0..writers {
                s.spawn(|| {
                    for _ in 0..rounds {
                        lock.write(&counts, 0, |(a, b)| {
                            *a += 1;
                            std::hint::black_box(&*a);
                            *b += 1;
                        });
                    }
                });
            }
            for _ in 0..readers {
                s.spawn(|| {
                    for _ in 0..rounds {
                        lock.read(&counts, 0, |(a, b)| assert_eq!(a, b));
                    }
                });
            }
        });
        assert_eq!(lock.read(&counts, 0, |&(a, _)| a), writers * rounds);
        for slot in 0..counts.slots() {
            assert_eq!(counts.counter(slot, 0).load(Ordering::Relaxed), 0);
        }
    }

    /// Waits (yielding) until a thread has gone to sleep on `lock`'s writer; fails the test
    /// (rather than hanging it) if none has after ten million yields.
    fn until_parked<S>(lock: &ShardLock<S>) {
        for _ in 0..10_000_000 {
            if lock.state.load(Ordering::SeqCst) & PARKED != 0 {
                return;
            }
            std::thread::yield_now();
        }
        panic!("nobody went to sleep on the writer");
    }

    /// Runs `other` on a second thread once `write` holds `lock` (shard 0), and runs `write`
    /// only after `other` has gone to sleep on it; returns what `other` returned.
    fn meet_a_writer<S: Send + Sync, R: Send>(
        counts: &ReaderCounts,
        lock: &ShardLock<S>,
        other: impl FnOnce(&ReaderCounts, &ShardLock<S>) -> R + Send,
        write: impl FnOnce(&mut S),
    ) -> R {
        let (entered, inside) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let second = s.spawn(move || {
                inside.recv().unwrap();
                other(counts, lock)
            });
            lock.write(counts, 0, |v| {
                entered.send(()).unwrap();
                // The other thread cannot get in: it spins, then sleeps.
                until_parked(lock);
                write(v);
            });
            second.join().unwrap()
        })
    }

    #[test]
    fn a_reader_that_meets_a_writer_sleeps_until_the_write_is_done() {
        let counts = ReaderCounts::with_slots(1, 2);
        let lock = ShardLock::new(0u32);
        let seen = meet_a_writer(&counts, &lock, |c, l| l.read(c, 0, |&v| v), |v| *v = 1);
        assert_eq!(seen, 1, "the reader saw the write whole");
    }

    #[test]
    fn a_writer_that_meets_a_writer_sleeps_until_it_is_done() {
        let counts = ReaderCounts::with_slots(1, 2);
        let lock = ShardLock::new(Vec::new());
        meet_a_writer(
            &counts,
            &lock,
            |c, l| l.write(c, 0, |v| v.push(2)),
            |v| v.push(1),
        );
        assert_eq!(lock.read(&counts, 0, Clone::clone), [1, 2]);
        assert_eq!(lock.state.load(Ordering::SeqCst), 0, "nobody left parked");
    }

    #[test]
    fn a_panicking_reader_or_writer_leaves_the_lock_usable() {
        let counts = ReaderCounts::with_slots(2, 2);
        let lock = ShardLock::new(5u32);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lock.read(&counts, 1, |_| panic!("reader"))
        }));
        assert!(r.is_err());
        let w = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lock.write(&counts, 1, |v| {
                *v = 6;
                panic!("writer")
            })
        }));
        assert!(w.is_err());
        lock.write(&counts, 1, |v| *v += 1);
        assert_eq!(lock.read(&counts, 1, |v| *v), 7);
    }
}

#[cfg(all(test, lessor_loom))]
mod loom_models {
    use super::*;
    use crate::sync::Arc;

    /// A lock over `data` with two reader slots, shared.
    fn shared<S>(data: S) -> (Arc<ReaderCounts>, Arc<ShardLock<S>>) {
        (
            Arc::new(ReaderCounts::with_slots(1, 2)),
            Arc::new(ShardLock::new(data)),
        )
    }

    /// Runs `f` on a new loom thread with its own handles to `counts` and `lock`.
    fn spawn<S: Send + Sync + 'static, R: Send + 'static>(
        counts: &Arc<ReaderCounts>,
        lock: &Arc<ShardLock<S>>,
        f: impl FnOnce(&ReaderCounts, &ShardLock<S>) -> R + Send + 'static,
    ) -> loom::thread::JoinHandle<R> {
        let (counts, lock) = (counts.clone(), lock.clone());
        loom::thread::spawn(move || f(&counts, &lock))
    }

    /// A reader racing a writer sees the data before or after the write, whole; loom's
    /// `UnsafeCell` fails the model if the two ever overlap.
    #[test]
    fn a_reader_never_overlaps_a_writer() {
        loom::model(|| {
            let (counts, lock) = shared((0u32, 0u32));
            let writer = spawn(&counts, &lock, |c, l| {
                l.write(c, 0, |(a, b)| {
                    *a = 1;
                    *b = 1;
                });
            });
            let (a, b) = lock.read(&counts, 0, |&v| v);
            assert_eq!(a, b);
            writer.join().unwrap();
            assert_eq!(lock.read(&counts, 0, |&v| v), (1, 1));
        });
    }

    /// Two readers on two slots and a writer: neither reader overlaps the writer.
    #[test]
    fn two_readers_on_two_slots_and_a_writer() {
        loom::model(|| {
            let (counts, lock) = shared(0u32);
            let reader = spawn(&counts, &lock, |c, l| l.read(c, 0, |&v| v));
            let writer = spawn(&counts, &lock, |c, l| l.write(c, 0, |v| *v += 1));
            let here = lock.read(&counts, 0, |&v| v);
            assert!(here <= 1);
            assert!(reader.join().unwrap() <= 1);
            writer.join().unwrap();
        });
    }

    /// Two writers one after the other: the second sees the first's write.
    #[test]
    fn writers_take_turns() {
        loom::model(|| {
            let (counts, lock) = shared(0u32);
            let other = spawn(&counts, &lock, |c, l| l.write(c, 0, |v| *v += 1));
            lock.write(&counts, 0, |v| *v += 1);
            other.join().unwrap();
            assert_eq!(lock.read(&counts, 0, |&v| v), 2);
        });
    }
}
