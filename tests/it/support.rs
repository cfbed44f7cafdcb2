//! Shared helpers: a manual-clock lessor, a recording range deleter, and a public-API
//! consistency check.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lessor::{LeaseId, Lessor, LessorBuilder, ManualClock, RangeDeleter, Remaining, TxnDelete};

/// A lease id.
pub(crate) fn id(n: i64) -> LeaseId {
    LeaseId::new(n)
}

/// Whole seconds.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Milliseconds.
pub(crate) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// Byte strings from string slices, for comparing with `Lease::keys`.
pub(crate) fn bytes(keys: &[&str]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.as_bytes().to_vec()).collect()
}

/// A builder driven by a fresh manual clock, and the clock.
pub(crate) fn builder() -> (ManualClock, LessorBuilder) {
    let clock = ManualClock::new();
    (
        clock.clone(),
        Lessor::builder().clock(clock).expiry_thread(false),
    )
}

/// A primary lessor with the default options on a manual clock.
pub(crate) fn lessor() -> (ManualClock, Lessor) {
    let (clock, b) = builder();
    (clock, b.build().expect("default options are valid"))
}

/// The time left of a live lease; panics if it is unknown, overdue or forever.
pub(crate) fn left(l: &Lessor, id: LeaseId) -> Duration {
    match l.lookup(id).map(|lease| lease.remaining()) {
        Some(Remaining::Left(d)) => d,
        other => panic!("lease {id}: expected time left, got {other:?}"),
    }
}

/// What a lookup says is left, or `None` for an unknown lease.
pub(crate) fn remaining(l: &Lessor, id: LeaseId) -> Option<Remaining> {
    l.lookup(id).map(|lease| lease.remaining())
}

/// The keys of a live lease; panics if it is unknown.
pub(crate) fn keys_of(l: &Lessor, id: LeaseId) -> Vec<Vec<u8>> {
    l.lookup(id)
        .unwrap_or_else(|| panic!("lease {id} should exist"))
        .keys()
        .to_vec()
}

/// The ids of `leases()`, in its order.
pub(crate) fn lease_ids(l: &Lessor) -> Vec<i64> {
    l.leases().iter().map(|lease| lease.id().get()).collect()
}

/// Checks, through the public API only, that the key map and the key sets agree for the given
/// keys and every lease: each key maps to NONE or to a live lease listing it, each lease's keys
/// map back to it, no key is on two leases, and no lease is listed twice. Then runs the
/// engine's own `check_invariants` when the `test-util` feature is on.
pub(crate) fn assert_consistent(l: &Lessor, keys: &[Vec<u8>]) {
    let leases = l.leases();
    let ids: BTreeSet<LeaseId> = leases.iter().map(|lease| lease.id()).collect();
    assert_eq!(ids.len(), leases.len(), "a lease is listed twice");
    assert_eq!(l.len(), leases.len(), "len() disagrees with leases()");
    let mut owned = BTreeSet::new();
    for lease in &leases {
        for key in lease.keys() {
            assert!(owned.insert(key.clone()), "key {key:?} is on two leases");
            assert_eq!(
                l.get_lease(key),
                lease.id(),
                "key {key:?} of {}",
                lease.id()
            );
        }
    }
    for key in keys {
        let owner = l.get_lease(key);
        if owner.is_none() {
            assert!(!owned.contains(key), "key {key:?} listed but maps to NONE");
            continue;
        }
        let lease = l
            .lookup(owner)
            .unwrap_or_else(|| panic!("key {key:?} maps to {owner}, which is gone"));
        assert!(
            lease.keys().contains(key),
            "key {key:?} maps to {owner}, whose keys are {:?}",
            lease.keys()
        );
    }
    #[cfg(feature = "test-util")]
    assert_eq!(l.check_invariants(), Ok(()));
}

// ===== RecordingDeleter =====

/// One call the lessor made on a [`RecordingDeleter`]; `txn` numbers transactions from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Begin(usize),
    Delete {
        txn: usize,
        key: Vec<u8>,
        end: Option<Vec<u8>>,
    },
    End(usize),
    /// A transaction dropped without `end()`.
    Abandoned(usize),
}

/// A range deleter that records every call, in order, across all its transactions.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordingDeleter {
    calls: Arc<Mutex<Vec<Call>>>,
    txns: Arc<AtomicUsize>,
}

impl RecordingDeleter {
    /// Every call so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.log().clone()
    }

    /// Every call so far, clearing the record.
    pub(crate) fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.log())
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RangeDeleter for RecordingDeleter {
    fn begin(&self) -> Box<dyn TxnDelete> {
        let txn = self.txns.fetch_add(1, Ordering::SeqCst);
        self.log().push(Call::Begin(txn));
        Box::new(RecordingTxn {
            txn,
            ended: false,
            owner: self.clone(),
        })
    }
}

struct RecordingTxn {
    txn: usize,
    ended: bool,
    owner: RecordingDeleter,
}

impl TxnDelete for RecordingTxn {
    fn delete_range(&mut self, key: &[u8], end: Option<&[u8]>) -> (i64, i64) {
        self.owner.log().push(Call::Delete {
            txn: self.txn,
            key: key.to_vec(),
            end: end.map(<[u8]>::to_vec),
        });
        (1, 0)
    }

    fn end(mut self: Box<Self>) {
        self.ended = true;
        self.owner.log().push(Call::End(self.txn));
    }
}

impl Drop for RecordingTxn {
    fn drop(&mut self) {
        if !self.ended {
            self.owner.log().push(Call::Abandoned(self.txn));
        }
    }
}

/// The calls one revoke of `keys` (already in the expected order) makes in transaction `txn`.
pub(crate) fn revoke_calls(txn: usize, keys: &[&[u8]]) -> Vec<Call> {
    let mut calls = vec![Call::Begin(txn)];
    calls.extend(keys.iter().map(|k| Call::Delete {
        txn,
        key: k.to_vec(),
        end: None,
    }));
    calls.push(Call::End(txn));
    calls
}

// ===== CountingDeleter =====

/// A range deleter that only counts, cheap enough for the concurrency tests.
#[derive(Debug, Clone, Default)]
pub(crate) struct CountingDeleter {
    pub(crate) begins: Arc<AtomicUsize>,
    pub(crate) deletes: Arc<AtomicUsize>,
    pub(crate) ends: Arc<AtomicUsize>,
}

impl RangeDeleter for CountingDeleter {
    fn begin(&self) -> Box<dyn TxnDelete> {
        self.begins.fetch_add(1, Ordering::SeqCst);
        Box::new(self.clone())
    }
}

impl TxnDelete for CountingDeleter {
    fn delete_range(&mut self, _key: &[u8], end: Option<&[u8]>) -> (i64, i64) {
        assert!(end.is_none(), "revoke deletes single keys");
        self.deletes.fetch_add(1, Ordering::SeqCst);
        (1, 0)
    }

    fn end(self: Box<Self>) {
        self.ends.fetch_add(1, Ordering::SeqCst);
    }
}
