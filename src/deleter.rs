//! The seam through which a revoke deletes a lease's keys from the owner's key-value store.
//!
//! etcd's lessor calls a `RangeDeleter` to open a transaction, deletes each attached key with
//! `DeleteRange(key, nil)` in ascending byte order, removes the lease inside the same
//! transaction and then ends it. lessor does the same through these two traits.

/// One open delete transaction (etcd's `TxnDelete`).
///
/// # Examples
///
/// ```
/// use lessor::TxnDelete;
///
/// struct Log(Vec<Vec<u8>>);
/// impl TxnDelete for Log {
///     fn delete_range(&mut self, key: &[u8], _end: Option<&[u8]>) -> (i64, i64) {
///         self.0.push(key.to_vec());
///         (1, 0)
///     }
///     fn end(self: Box<Self>) {}
/// }
/// let mut txn = Log(Vec::new());
/// assert_eq!(txn.delete_range(b"k", None), (1, 0));
/// ```
pub trait TxnDelete {
    /// Deletes `key` (or the range `[key, end)`), returning (keys deleted, revision).
    fn delete_range(&mut self, key: &[u8], end: Option<&[u8]>) -> (i64, i64);
    /// Commits the transaction.
    fn end(self: Box<Self>);
}

/// Opens delete transactions (etcd's `RangeDeleter`). Any `Fn() -> Box<dyn TxnDelete>` is one.
///
/// The lessor calls it from `revoke` (and from the expiry thread in revoke mode) while it holds
/// the revoked lease's stripe lock: the transaction must not call back into the same lessor for
/// that lease, or it deadlocks.
///
/// # Examples
///
/// ```
/// use lessor::{LeaseId, Lessor, TxnDelete};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// struct Txn(Arc<Mutex<Vec<Vec<u8>>>>);
/// impl TxnDelete for Txn {
///     fn delete_range(&mut self, key: &[u8], _end: Option<&[u8]>) -> (i64, i64) {
///         self.0.lock().unwrap().push(key.to_vec());
///         (1, 0)
///     }
///     fn end(self: Box<Self>) {}
/// }
///
/// let deleted = Arc::new(Mutex::new(Vec::new()));
/// let sink = deleted.clone();
/// let lessor = Lessor::builder()
///     .range_deleter(move || Box::new(Txn(sink.clone())) as Box<dyn TxnDelete>)
///     .build()?;
/// let id = LeaseId::new(1);
/// lessor.grant(id, Duration::from_secs(10))?;
/// lessor.attach(id, [&b"b"[..], &b"a"[..]])?;
/// lessor.revoke(id)?;
/// assert_eq!(*deleted.lock().unwrap(), vec![b"a".to_vec(), b"b".to_vec()]);
/// # Ok::<(), lessor::Error>(())
/// ```
pub trait RangeDeleter: Send + Sync + 'static {
    /// Opens a transaction.
    fn begin(&self) -> Box<dyn TxnDelete>;
}

impl<F> RangeDeleter for F
where
    F: Fn() -> Box<dyn TxnDelete> + Send + Sync + 'static,
{
    fn begin(&self) -> Box<dyn TxnDelete> {
        self()
    }
}
