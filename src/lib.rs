//! # lessor
//!
//! A lease engine for high-rate session TTL tracking with the semantics of etcd's `Lessor`:
//! grant a lease with a TTL, attach keys to it, renew it, revoke it, learn when it expires.
//! Leases live in sharded maps; renew is a shared lock plus one compare-and-swap.
//!
//! ## Hello, lease
//!
//! ```
//! use lessor::{LeaseId, Lessor, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let lessor = Lessor::builder().clock(clock.clone()).build()?;
//!
//! let id = LeaseId::new(1);
//! lessor.grant(id, Duration::from_secs(10))?;
//! lessor.attach(id, ["session/alice"])?;
//!
//! clock.advance(Duration::from_secs(8));
//! lessor.renew(id)?; // ten more seconds from now
//!
//! let lease = lessor.lookup(id).expect("still alive");
//! assert_eq!(lease.keys(), &[b"session/alice".to_vec()]);
//! lessor.revoke(id)?;
//! assert!(lessor.get_lease("session/alice").is_none());
//! # Ok::<(), lessor::Error>(())
//! ```
//!
//! Where lessor differs from etcd on purpose, the README's "Differences from etcd" says so.
#![deny(rustdoc::broken_intra_doc_links)]
// Under `--cfg lessor_loom` the library's unit tests build to run only the loom models
// (`scripts/loom`); the other tests' helpers are then compiled but unused, which is expected.
#![cfg_attr(all(test, lessor_loom), allow(dead_code, unused_imports))]

mod api;
mod builder;
mod clock;
mod deleter;
mod error;
mod expiry;
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzz;
mod lease;
mod lessor;
mod radix;
mod shard;
mod shard_lock;
mod store;
mod sync;
mod table_alloc;
mod table_hint;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
mod wal;
mod wheel;

pub use crate::api::{FakeLessor, LeaseApi};
pub use crate::builder::{LessorBuilder, DEFAULT_MAX_KEY_SIZE};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::deleter::{RangeDeleter, TxnDelete};
pub use crate::error::{Error, Result};
pub use crate::expiry::ExpiryMode;
pub use crate::lease::{Lease, LeaseId, Remaining, MAX_TTL};
pub use crate::lessor::{Lessor, Recovery};
pub use crate::store::{DeleteOutcome, KeyValue, PutOptions, PutOutcome, RangeOutcome};
pub use crate::wal::FsyncPolicy;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
