//! Test hooks, behind the `test-util` feature: not part of the stable API.
//!
//! [`MemFs`] is an in-memory file system for a lessor's log
//! ([`LessorBuilder::file_system`](crate::LessorBuilder::file_system)) that can "lose power":
//! [`MemFs::crashed`] keeps only what was synced. The operation-sequence model in
//! `tests/it/model_ops.rs` (and its fuzz target) crashes and reopens lessors on it.
//!
//! # Examples
//!
//! ```
//! use lessor::test_util::MemFs;
//! use lessor::{LeaseId, Lessor};
//! use std::time::Duration;
//!
//! let fs = MemFs::new();
//! let lessor = Lessor::builder().data_dir("/data").file_system(fs.clone()).build()?;
//! lessor.grant(LeaseId::new(1), Duration::from_secs(60))?;
//! lessor.attach(LeaseId::new(1), ["k"])?;
//! let durable = fs.crashed();
//! drop(lessor);
//! let again = Lessor::builder().data_dir("/data").file_system(durable).build()?;
//! assert_eq!(again.get_lease("k"), LeaseId::new(1));
//! # Ok::<(), lessor::Error>(())
//! ```

pub use crate::wal::fake::MemFs;
