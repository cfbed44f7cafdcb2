//! Expiry: the worker that finds expired leases with the timing wheel and delivers them.
//!
//! # Ground rules
//!
//! - The [`ExpiryWorker`] owns the [`Wheel`](crate::wheel::Wheel); no other thread touches it.
//!   It sits behind one mutex that only the expiry thread (or a caller of
//!   `Lessor::run_expiry_once`) takes, so the wheel is never shared.
//! - New leases reach the worker through each lease shard's `intake` vector, pushed under the
//!   shard's exclusive lock by grant and swapped out whole by the worker. That is the only way
//!   in: renew never touches the wheel, and revoke is lazy (a revoked lease is dropped when its
//!   slot fires and the record is gone or belongs to a newer grant).
//! - Each live lease sits in the wheel exactly once (or, once due, in the worker's backlog or
//!   retry queue instead). When a slot fires, the worker reads the lease's state word: a later
//!   deadline (renewed) files it again; a passed deadline expires it.
//! - Due filings are sorted in place by shard and by position in the shard's table, then
//!   decided a chunk (at most 4096) at a time under one shard read lock: every lookup of the
//!   chunk first, so their cache misses overlap, then every decision. In notify mode a
//!   decision is acted on under that lock (it only touches the worker's own wheel and queues);
//!   revoke mode revokes after the lock is let go. Full batches are sent between chunks.
//! - The worker writes only the lease's own state word (setting `EXPIRED` by compare-and-swap)
//!   in notify mode; in revoke mode it also revokes the lease through the same path as
//!   `Lessor::revoke`.
//! - Batches go out on a bounded crossbeam channel with `try_send`. A batch that does not fit
//!   is kept and retried on the next step, and no other lease is expired until it has gone: a
//!   consumer that stops reading stalls expiry but loses nothing, and memory stays bounded.
//! - A promote or demote bumps the lessor's epoch; the worker then rebuilds the wheel from the
//!   lease map (and while not primary keeps it empty and delivers nothing).
//! - The loop in [`runner`] is a thin wrapper around [`ExpiryWorker::run_once`], which tests
//!   call directly with a manual clock.

mod delivery;
mod limiter;
pub(crate) mod runner;
mod worker;

pub(crate) use worker::{ExpiryConfig, ExpiryWorker};

/// What the engine does with a lease whose deadline has passed.
///
/// # Examples
///
/// ```
/// use lessor::{ExpiryMode, Lessor};
///
/// let lessor = Lessor::builder().expiry_mode(ExpiryMode::Revoke).build()?;
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpiryMode {
    /// etcd's way: deliver the lease on the expired channel and leave it in place until its
    /// owner revokes it; deliver it again every retry interval while it is not revoked.
    #[default]
    Notify,
    /// The engine revokes the lease itself (deleting its keys through the range deleter) and
    /// then delivers it: for embedded session tracking where nobody else would revoke.
    Revoke,
}
