//! The binary's global allocator: the system's, counting the bytes live on the heap for
//! "memory per lease" while a benchmark runs.
//!
//! # Ground rules
//!
//! - Every call is forwarded unchanged to the system allocator. (mimalloc was tried for the
//!   server: grants at 64 clients went from 35.9-41.5k/s to 28.9-34.6k/s, in alternating runs.)
//! - Counting is off until [`start_counting`] (the `bench` command calls it first thing):
//!   `lessor serve` allocates from several threads at once and should not share one atomic
//!   for nothing. Once on, the wrapper adds the requested sizes to (and subtracts them from)
//!   one relaxed atomic. It counts requested bytes, not the allocator's rounding or its
//!   metadata, so the figure is what the data structures ask for.
//! - The count is process-wide: a measurement ([`live`] before and after building N leases)
//!   is meaningful only while no other thread allocates much. The harness measures while its
//!   own workers are idle; an engine's background thread (lessor's expiry thread, the
//!   reference lessor's checker) counts as the engine's, which is what we want.
//!
//! This module is the only `unsafe` code in the crate: implementing `GlobalAlloc` requires it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// The counting allocator, installed for the whole `lessor` binary.
#[derive(Debug)]
struct Counting;

/// Whether calls are counted (see [`start_counting`]).
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Bytes requested and not yet freed, since counting started.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts every allocation from now on. Call it before anything whose memory is measured.
pub(crate) fn start_counting() {
    COUNTING.store(true, Ordering::SeqCst);
}

/// Adds `delta` bytes to the count, if counting.
#[inline]
fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `n` as a signed byte delta (no allocation comes near `isize::MAX`: `Layout` forbids it).
#[inline]
fn signed(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

// SAFETY: (1) every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; (2) the only extra work is a relaxed atomic load and add,
// which neither allocate nor panic, so no re-entrancy or unwinding crosses the allocator
// boundary.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: (1) our caller upholds `alloc`'s contract for `layout` (non-zero size), and
        // we pass the same layout on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(signed(layout.size()));
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: (1) as in `alloc`: the caller's layout, passed on unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(signed(layout.size()));
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: (1) `ptr` was returned by this allocator (so by `System`) for `layout`, as
        // our caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: (1) `ptr` came from `System` with `layout` and `new_size` is valid for it,
        // as our caller guarantees; passed on unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(signed(new_size) - signed(layout.size()));
        }
        p
    }
}

/// Heap bytes live right now (requested sizes), process-wide.
pub(crate) fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::{live, start_counting};

    #[test]
    fn counts_a_large_allocation() {
        start_counting();
        // Other tests allocate concurrently: use a size far above their noise.
        let before = live();
        let v: Vec<u8> = vec![1; 256 << 20];
        let during = live();
        assert!(during - before >= (200 << 20), "{before} -> {during}");
        drop(v);
    }
}
