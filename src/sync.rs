//! The one door to concurrency primitives.
//!
//! # Ground rules
//!
//! Every atomic, lock, `Arc` and thread the engine uses comes from here, so that the models in
//! `loom-tests/` can swap them for loom's by building with `RUSTFLAGS="--cfg lessor_loom"`.
//! We use our own cfg name (not `cfg(loom)`) so that dependencies that read `cfg(loom)` keep
//! their ordinary build. Internal code never names `std::sync` directly.
//!
//! There are two exceptions. The expiry thread's own loop (`expiry/runner.rs`) spawns a real
//! thread and waits with a real timeout, which loom cannot model; the models drive
//! `ExpiryWorker::run_once` directly instead. And the shards' table hints (`table_hint.rs`)
//! are std atomics: a prefetch address, never read to decide anything, so there is nothing
//! for a model to explore (and under loom nothing is prefetched).
//!
//! Poisoning is not part of our protocol: no engine code panics while holding a lock, and a
//! panic in a user callback (the range deleter) must not wedge every later call, so the lock
//! helpers below recover the guard from a poisoned lock.

#[cfg(not(lessor_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

#[cfg(lessor_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// loom's `UnsafeCell` under loom, which checks that no read overlaps a write.
#[cfg(lessor_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure API, so that code using it builds either way.
#[cfg(not(lessor_loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(lessor_loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer to the value, to read it.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer to the value, to write it.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// This thread's slot number: threads are numbered as they first ask, from 0, so threads
/// started together get different numbers (the shard locks' reader counters, `shard_lock.rs`).
#[cfg(not(lessor_loom))]
#[inline]
pub(crate) fn thread_slot() -> usize {
    use std::cell::Cell;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        let mut n = slot.get();
        if n == usize::MAX {
            n = NEXT.fetch_add(1, Ordering::Relaxed) & (usize::MAX >> 1);
            slot.set(n);
        }
        n
    })
}

/// This thread's slot number: threads are numbered as they first ask, from 0, so threads
/// started together get different numbers (the shard locks' reader counters, `shard_lock.rs`).
#[cfg(lessor_loom)]
pub(crate) fn thread_slot() -> usize {
    loom::lazy_static! {
        static ref NEXT: AtomicUsize = AtomicUsize::new(0);
    }
    loom::thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|slot| *slot)
}

/// Yields this thread's core (loom's yield under loom, which its exploration needs to make
/// progress in a wait loop).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(lessor_loom)]
    loom::thread::yield_now();
    #[cfg(not(lessor_loom))]
    std::thread::yield_now();
}

/// Nothing, except under loom, where it is a `SeqCst` fence.
///
/// C++20's (and Rust's) `SeqCst` operations are all in one total order, which Dekker-style
/// handshakes rely on (`shard_lock.rs`): of "I announce, then I look" on two threads, at least
/// one sees the other. loom models `SeqCst` operations as only `AcqRel` (its README's
/// "Unsupported features") but models `SeqCst` fences fully, so a handshake calls this between
/// its announce and its look: loom then explores what the real code guarantees. The real build
/// emits nothing here (a `SeqCst` fence would be an `mfence` on x86-64, on top of the locked
/// instruction that already orders the announce).
#[inline(always)]
pub(crate) fn seqcst_fence_for_loom() {
    #[cfg(lessor_loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Locks a mutex, recovering the guard if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Waits on a condition variable, recovering the guard if a panicking thread poisoned its
/// mutex.
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    match cv.wait(guard) {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Takes a shared lock, recovering the guard if a panicking thread poisoned it.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Takes an exclusive lock, recovering the guard if a panicking thread poisoned it.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    match l.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Puts a std `Arc` (which coerces to `Arc<dyn Trait>`, as loom's cannot) in the shim's `Arc`.
#[cfg(not(lessor_loom))]
pub(crate) fn arc_from_std<T: ?Sized>(a: std::sync::Arc<T>) -> Arc<T> {
    a
}

/// Puts a std `Arc` (which coerces to `Arc<dyn Trait>`, as loom's cannot) in the shim's `Arc`.
#[cfg(lessor_loom)]
pub(crate) fn arc_from_std<T: ?Sized>(a: std::sync::Arc<T>) -> Arc<T> {
    Arc::from_std(a)
}

/// Hashes lease ids and keys (and so picks shards and stripes). Randomly seeded normally;
/// fixed under loom, whose exploration replays each execution and needs every one to take
/// the same shards and stripes, in the same order.
#[cfg(not(lessor_loom))]
pub(crate) type HashBuilder = hashbrown::DefaultHashBuilder;

/// Hashes lease ids and keys (and so picks shards and stripes). Randomly seeded normally;
/// fixed under loom, whose exploration replays each execution and needs every one to take
/// the same shards and stripes, in the same order.
#[cfg(lessor_loom)]
pub(crate) type HashBuilder = std::hash::BuildHasherDefault<std::hash::DefaultHasher>;
