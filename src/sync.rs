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
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

#[cfg(lessor_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
};

/// Locks a mutex, recovering the guard if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
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
