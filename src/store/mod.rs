//! The key-value store: etcd's `KV` data (keys, values, revisions) kept beside the leases, so
//! that keys can live on leases and die with them, and logged through the same write-ahead log.
//!
//! Turned on with [`LessorBuilder::key_value_store`](crate::LessorBuilder::key_value_store);
//! used through [`Lessor::put`](crate::Lessor::put), [`Lessor::range`](crate::Lessor::range),
//! [`Lessor::delete_range`](crate::Lessor::delete_range) and
//! [`Lessor::revision`](crate::Lessor::revision).
//!
//! # Ground rules
//!
//! - The [`StoreState`](state::StoreState) sits behind one `RwLock` in the lessor (the *store
//!   lock*). Every change to it (a put, a delete, the revoke of a lease that has keys) takes the
//!   stripes of every lease it touches first, then the store lock, and logs its record and
//!   applies it under both. So the log's order of store changes is their revision order, and
//!   replay gives every key the revisions it had.
//! - A key's lease in the store and the engine's key map always agree: both change under the
//!   same locks. A revoke deletes the lease's keys at one new revision (none when it had no
//!   keys: such a revoke never takes the store lock).
//! - The revision is mirrored in an atomic for response headers, written under the store lock.
//! - Reads take the store lock shared. A change holds it exclusively while its record is made
//!   durable, so with fsync on, store changes are one fsync each; lease grants and renewals
//!   never take it.

pub(crate) mod state;

use crate::lease::LeaseId;

/// One key as the store holds it: etcd's `mvccpb.KeyValue`.
///
/// # Examples
///
/// ```
/// use lessor::{Lessor, PutOptions};
///
/// let lessor = Lessor::builder().key_value_store(true).build()?;
/// lessor.put(b"k", b"v", PutOptions::default())?;
/// let kv = &lessor.range(b"k", b"")?.kvs[0];
/// assert_eq!((kv.version, kv.value.as_slice()), (1, &b"v"[..]));
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The revision of the put that created the key (since it last did not exist).
    pub create_revision: i64,
    /// The revision of the key's last put.
    pub mod_revision: i64,
    /// How many puts since creation (1 for a new key).
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
    /// The lease the key is attached to, or [`LeaseId::NONE`].
    pub lease: LeaseId,
}

/// How [`Lessor::put`](crate::Lessor::put) treats the key: etcd's `PutRequest` options.
///
/// # Examples
///
/// ```
/// use lessor::{LeaseId, Lessor, PutOptions};
/// use std::time::Duration;
///
/// let lessor = Lessor::builder().key_value_store(true).build()?;
/// lessor.grant(LeaseId::new(5), Duration::from_secs(60))?;
/// let opts = PutOptions { lease: LeaseId::new(5), ..PutOptions::default() };
/// lessor.put(b"session/a", b"up", opts)?;
/// assert_eq!(lessor.get_lease(b"session/a"), LeaseId::new(5));
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Attach the key to this lease ([`LeaseId::NONE`]: to none, detaching it from any).
    pub lease: LeaseId,
    /// Return the key's previous entry.
    pub prev_kv: bool,
    /// Keep the key's current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the key's current lease (the key must exist).
    pub ignore_lease: bool,
}

/// What a put did.
///
/// # Examples
///
/// ```
/// use lessor::{Lessor, PutOptions};
///
/// let lessor = Lessor::builder().key_value_store(true).build()?;
/// let first = lessor.put(b"k", b"1", PutOptions::default())?;
/// let opts = PutOptions { prev_kv: true, ..PutOptions::default() };
/// let second = lessor.put(b"k", b"2", opts)?;
/// assert_eq!(second.revision, first.revision + 1);
/// assert_eq!(second.prev.unwrap().value, b"1");
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    /// The store's revision after the put.
    pub revision: i64,
    /// The previous entry, when asked for and the key existed.
    pub prev: Option<KeyValue>,
}

/// What a range read found.
///
/// # Examples
///
/// ```
/// use lessor::{Lessor, PutOptions};
///
/// let lessor = Lessor::builder().key_value_store(true).build()?;
/// for k in ["a/1", "a/2", "b/1"] {
///     lessor.put(k.as_bytes(), b"", PutOptions::default())?;
/// }
/// let found = lessor.range(b"a/", b"a0")?;
/// assert_eq!(found.kvs.len(), 2);
/// assert_eq!(found.revision, lessor.revision());
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeOutcome {
    /// The store's revision the read saw.
    pub revision: i64,
    /// Every key in the range, ascending.
    pub kvs: Vec<KeyValue>,
}

/// What a range delete did.
///
/// # Examples
///
/// ```
/// use lessor::{Lessor, PutOptions};
///
/// let lessor = Lessor::builder().key_value_store(true).build()?;
/// lessor.put(b"a", b"1", PutOptions::default())?;
/// lessor.put(b"b", b"2", PutOptions::default())?;
/// let gone = lessor.delete_range(b"\0", b"\0", true)?;
/// assert_eq!(gone.deleted, 2);
/// assert_eq!(gone.prev[1].value, b"2");
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The store's revision after the delete (unchanged when nothing was deleted).
    pub revision: i64,
    /// How many keys were deleted.
    pub deleted: i64,
    /// The deleted entries, ascending, when asked for.
    pub prev: Vec<KeyValue>,
}
