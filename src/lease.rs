//! Lease ids, the public [`Lease`] view, and the per-lease record kept in the shard maps.
//!
//! # Ground rules
//!
//! A lease's whole mutable life is one `AtomicU64`, its *state word* ([`LeaseRecord::state`]):
//!
//! ```text
//!  bit 63      bit 62     bit 61         bits 0..=60
//! | special | expired | checkpointed | deadline (engine ms) |
//! ```
//!
//! - `special` set: the whole word is a sentinel, not a deadline; the lease is not visible to
//!   renew, lookup or expiry (reserved for a grant that is not yet durable).
//! - `expired`: the expiry worker has delivered the lease as expired. The deadline bits are kept
//!   so that `remaining` reports how long ago it expired. Never cleared: an expired lease is
//!   never brought back.
//! - `checkpointed`: a remaining TTL was checkpointed for this lease (the value lives beside the
//!   lease's keys); the first renew clears the bit and so the checkpoint.
//! - deadline [`FOREVER`]: the lessor is not primary, so the lease does not expire.
//!
//! Renew is one compare-and-swap on this word under a shared shard lock. Every other writer of
//! the word (grant, revoke, promote, demote, the expiry worker) also uses compare-and-swap or
//! owns the record exclusively, so no update is lost. Orderings: `AcqRel` on successful
//! swaps, `Acquire` loads; nothing else is published through the word.

use std::fmt;
use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};

/// A lease's id: any `i64` but 0, negative ids included (as in etcd).
///
/// # Examples
///
/// ```
/// use lessor::LeaseId;
///
/// let id = LeaseId::new(-42);
/// assert_eq!(id.get(), -42);
/// assert!(LeaseId::NONE.is_none());
/// assert_eq!(format!("{:x}", LeaseId::new(255)), "ff");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LeaseId(i64);

impl LeaseId {
    /// No lease (etcd's `NoLease`, 0).
    pub const NONE: LeaseId = LeaseId(0);

    /// Wraps a raw id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lessor::LeaseId::new(7).get(), 7);
    /// ```
    pub const fn new(id: i64) -> Self {
        LeaseId(id)
    }

    /// The raw id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lessor::LeaseId::new(i64::MAX).get(), i64::MAX);
    /// ```
    pub const fn get(self) -> i64 {
        self.0
    }

    /// True for [`LeaseId::NONE`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(lessor::LeaseId::new(0).is_none());
    /// ```
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseId({})", self.0)
    }
}

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl From<i64> for LeaseId {
    fn from(id: i64) -> Self {
        LeaseId(id)
    }
}

/// The largest TTL a lease may have: 9,000,000,000 seconds (etcd's `MaxLeaseTTL`).
pub const MAX_TTL: Duration = Duration::from_secs(9_000_000_000);

/// How long a lease has left, as seen at one moment.
///
/// # Examples
///
/// ```
/// use lessor::Remaining;
/// use std::time::Duration;
///
/// let r = Remaining::Left(Duration::from_secs(5));
/// assert_eq!(r.as_nanos(), 5_000_000_000);
/// assert_eq!(Remaining::Forever.as_nanos(), i64::MAX);
/// assert_eq!(Remaining::Overdue(Duration::from_millis(2)).as_nanos(), -2_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remaining {
    /// Past its deadline by this much, and not yet revoked.
    Overdue(Duration),
    /// Time left before the deadline.
    Left(Duration),
    /// The lessor is not primary: the lease does not expire.
    Forever,
}

impl Remaining {
    /// etcd's `Remaining()` in nanoseconds: negative when overdue, `i64::MAX` for forever.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(lessor::Remaining::Forever.as_nanos(), i64::MAX);
    /// ```
    pub fn as_nanos(self) -> i64 {
        match self {
            Remaining::Forever => i64::MAX,
            Remaining::Left(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
            Remaining::Overdue(d) => -i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    /// Whole seconds left, rounded up as etcd's `LeaseTimeToLive` reports them; -1 once overdue,
    /// `i64::MAX` for forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use lessor::Remaining;
    /// use std::time::Duration;
    /// assert_eq!(Remaining::Left(Duration::from_millis(1500)).as_secs_ceil(), 2);
    /// assert_eq!(Remaining::Overdue(Duration::from_millis(1)).as_secs_ceil(), -1);
    /// ```
    pub fn as_secs_ceil(self) -> i64 {
        match self {
            Remaining::Forever => i64::MAX,
            Remaining::Left(d) => {
                let s = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
                i64::try_from(s).unwrap_or(i64::MAX)
            }
            Remaining::Overdue(_) => -1,
        }
    }
}

/// A snapshot of one lease, as returned by lookups.
///
/// `ttl` is the TTL granted (after clamping to the minimum), never the time left; `remaining`
/// is the time left when the snapshot was taken.
///
/// # Examples
///
/// ```
/// use lessor::{LeaseId, Lessor, Remaining};
/// use std::time::Duration;
///
/// let lessor = Lessor::builder().build()?;
/// lessor.grant(LeaseId::new(1), Duration::from_secs(60))?;
/// lessor.attach(LeaseId::new(1), [&b"session/a"[..]])?;
/// let lease = lessor.lookup(LeaseId::new(1)).expect("granted above");
/// assert_eq!(lease.ttl(), Duration::from_secs(60));
/// assert_eq!(lease.ttl_secs(), 60);
/// assert!(matches!(lease.remaining(), Remaining::Left(_)));
/// assert_eq!(lease.keys(), &[b"session/a".to_vec()]);
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub(crate) id: LeaseId,
    pub(crate) ttl: Duration,
    pub(crate) remaining: Remaining,
    pub(crate) keys: Vec<Vec<u8>>,
}

impl Lease {
    /// A lease just granted for `ttl_ms`, without keys: its whole TTL left when the lessor is
    /// primary, no expiry otherwise.
    pub(crate) fn granted(id: LeaseId, ttl_ms: u64, primary: bool) -> Lease {
        let ttl = Duration::from_millis(ttl_ms);
        Lease {
            id,
            ttl,
            remaining: if primary {
                Remaining::Left(ttl)
            } else {
                Remaining::Forever
            },
            keys: Vec::new(),
        }
    }

    /// The lease's id.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// # let lessor = Lessor::builder().build()?;
    /// assert_eq!(lessor.grant(LeaseId::new(3), Duration::from_secs(5))?.id(), LeaseId::new(3));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn id(&self) -> LeaseId {
        self.id
    }

    /// The granted TTL (after the minimum was applied).
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// let lessor = Lessor::builder().min_ttl(Duration::from_secs(2)).build()?;
    /// let lease = lessor.grant(LeaseId::new(3), Duration::from_millis(10))?;
    /// assert_eq!(lease.ttl(), Duration::from_secs(2));
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The granted TTL in whole seconds, rounded up (etcd's `TTL()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// # let lessor = Lessor::builder().min_ttl(Duration::from_millis(1)).build()?;
    /// assert_eq!(lessor.grant(LeaseId::new(3), Duration::from_millis(1500))?.ttl_secs(), 2);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn ttl_secs(&self) -> i64 {
        let d = self.ttl;
        let s = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
        i64::try_from(s).unwrap_or(i64::MAX)
    }

    /// Time left when this snapshot was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor, Remaining}; use std::time::Duration;
    /// let lessor = Lessor::builder().primary(false).build()?;
    /// assert_eq!(lessor.grant(LeaseId::new(3), Duration::from_secs(5))?.remaining(), Remaining::Forever);
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn remaining(&self) -> Remaining {
        self.remaining
    }

    /// The keys attached to the lease, in ascending byte order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{LeaseId, Lessor}; use std::time::Duration;
    /// # let lessor = Lessor::builder().build()?;
    /// let lease = lessor.grant(LeaseId::new(3), Duration::from_secs(5))?;
    /// assert!(lease.keys().is_empty());
    /// # Ok::<(), lessor::Error>(())
    /// ```
    pub fn keys(&self) -> &[Vec<u8>] {
        &self.keys
    }
}

// ===== the state word =====

/// Set on sentinels: the rest of the word is not a deadline.
pub(crate) const SPECIAL: u64 = 1 << 63;
/// Delivered as expired by the expiry worker.
pub(crate) const EXPIRED: u64 = 1 << 62;
/// A checkpointed remaining TTL is in force until the next renew.
pub(crate) const CHECKPOINTED: u64 = 1 << 61;
/// The deadline bits.
pub(crate) const DEADLINE_MASK: u64 = CHECKPOINTED - 1;
/// The deadline of a lease on a lessor that is not primary.
pub(crate) const FOREVER: u64 = DEADLINE_MASK;

/// The deadline bits of a state word.
pub(crate) fn deadline_of(word: u64) -> u64 {
    word & DEADLINE_MASK
}

/// A finite deadline, clamped below [`FOREVER`].
pub(crate) fn finite_deadline(ms: u64) -> u64 {
    ms.min(FOREVER - 1)
}

/// What a lookup reports for a state word when "now" is between `floor` and `ceil` (engine ms,
/// rounded down and up): time left is measured from `ceil`, so it never exceeds the TTL; a
/// lease is overdue only once `floor` has reached its deadline.
pub(crate) fn remaining_of(word: u64, floor: u64, ceil: u64) -> Remaining {
    let deadline = deadline_of(word);
    if deadline == FOREVER {
        Remaining::Forever
    } else if deadline > floor {
        Remaining::Left(Duration::from_millis(deadline.saturating_sub(ceil)))
    } else {
        Remaining::Overdue(Duration::from_millis(floor - deadline))
    }
}

/// The per-lease record stored inline in a shard map: 24 bytes plus the 8-byte id key.
#[derive(Debug)]
pub(crate) struct LeaseRecord {
    /// The state word (see the module docs).
    pub(crate) state: AtomicU64,
    /// The granted TTL in milliseconds, after clamping.
    pub(crate) ttl_ms: u64,
    /// Grant sequence number: unique per grant, increasing; orders ties and tells a re-granted id
    /// from its earlier life.
    pub(crate) seq: u64,
}

impl LeaseRecord {
    pub(crate) fn new(state: u64, ttl_ms: u64, seq: u64) -> Self {
        LeaseRecord {
            state: AtomicU64::new(state),
            ttl_ms,
            seq,
        }
    }

    pub(crate) fn load(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// True while the lease is visible (not pending, not being revoked).
    pub(crate) fn is_live(word: u64) -> bool {
        word & SPECIAL == 0
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn state_bits_do_not_overlap() {
        assert_eq!(SPECIAL & (EXPIRED | CHECKPOINTED | DEADLINE_MASK), 0);
        assert_eq!(EXPIRED & (CHECKPOINTED | DEADLINE_MASK), 0);
        assert_eq!(CHECKPOINTED & DEADLINE_MASK, 0);
        assert!(!LeaseRecord::is_live(SPECIAL));
        assert!(LeaseRecord::is_live(FOREVER | CHECKPOINTED | EXPIRED));
    }

    #[test]
    fn remaining_reports() {
        assert_eq!(remaining_of(FOREVER, 5, 5), Remaining::Forever);
        // Less than a millisecond before the deadline: not overdue yet.
        assert_eq!(remaining_of(10, 9, 10), Remaining::Left(Duration::ZERO));
        assert_eq!(
            remaining_of(10 | EXPIRED, 15, 15),
            Remaining::Overdue(Duration::from_millis(5))
        );
        assert_eq!(remaining_of(10, 10, 10), Remaining::Overdue(Duration::ZERO));
        assert_eq!(
            remaining_of(10 | CHECKPOINTED, 4, 4),
            Remaining::Left(Duration::from_millis(6))
        );
    }

    #[test]
    fn record_is_small() {
        assert_eq!(std::mem::size_of::<(LeaseId, LeaseRecord)>(), 32);
    }
}
