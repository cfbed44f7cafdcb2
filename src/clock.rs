//! Time: the [`Clock`] trait, the real and the manual clock, and the millisecond time base.
//!
//! # Ground rules
//!
//! `Instant::now()` appears in this file only (clippy's `disallowed-methods` enforces it).
//! Everything else reads time through a [`Clock`], so that tests drive a [`ManualClock`] and
//! never sleep. Inside the engine, time is a `u64` count of milliseconds since the lessor was
//! built ([`TimeBase`]); deadlines round *up* to the next millisecond and "now" rounds *down*,
//! so a lease never expires before its full TTL has passed.

use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU64, Ordering};

/// A source of monotonic time.
///
/// # Examples
///
/// ```
/// use lessor::{Clock, SystemClock};
///
/// let clock = SystemClock;
/// let a = clock.now();
/// assert!(clock.now() >= a);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}

/// The operating system's monotonic clock.
///
/// # Examples
///
/// ```
/// use lessor::{Lessor, SystemClock};
///
/// let lessor = Lessor::builder().clock(SystemClock).build()?;
/// # Ok::<(), lessor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clock
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: tests advance it instead of sleeping.
///
/// Clones share the same time, so a test keeps one handle and gives another to the lessor.
///
/// # Examples
///
/// ```
/// use lessor::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now() - start, Duration::from_millis(1500));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    base: Instant,
    offset_ns: AtomicU64,
}

impl ManualClock {
    /// A manual clock standing at an arbitrary fixed instant.
    #[allow(clippy::disallowed_methods)] // an anchor only; it never moves by itself
    pub fn new() -> Self {
        ManualClock {
            inner: Arc::new(ManualInner {
                base: Instant::now(),
                offset_ns: AtomicU64::new(0),
            }),
        }
    }

    /// Moves the clock forward by `d`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use lessor::{Clock, ManualClock};
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let t0 = clock.now();
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(clock.now() - t0, Duration::from_secs(3));
    /// ```
    pub fn advance(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.offset_ns.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field(
                "offset",
                &Duration::from_nanos(self.inner.offset_ns.load(Ordering::SeqCst)),
            )
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.base + Duration::from_nanos(self.inner.offset_ns.load(Ordering::SeqCst))
    }
}

/// Converts a clock's instants to engine milliseconds (since the lessor was built).
pub(crate) struct TimeBase {
    clock: Arc<dyn Clock>,
    base: Instant,
}

impl TimeBase {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let base = clock.now();
        TimeBase { clock, base }
    }

    /// Milliseconds elapsed, rounded down: "has this deadline passed" compares against this.
    pub(crate) fn now_ms(&self) -> u64 {
        floor_ms(self.clock.now().saturating_duration_since(self.base))
    }

    /// Milliseconds elapsed, rounded up: new deadlines start from this.
    pub(crate) fn now_ms_ceil(&self) -> u64 {
        ceil_ms(self.clock.now().saturating_duration_since(self.base))
    }

    /// Milliseconds elapsed, rounded down and up, from one reading of the clock.
    pub(crate) fn now_ms_both(&self) -> (u64, u64) {
        let d = self.clock.now().saturating_duration_since(self.base);
        (floor_ms(d), ceil_ms(d))
    }
}

impl fmt::Debug for TimeBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeBase").finish_non_exhaustive()
    }
}

/// Whole milliseconds in `d`, rounded down, saturating.
pub(crate) fn floor_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole milliseconds in `d`, rounded up, saturating.
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    let ms = floor_ms(d);
    if d.subsec_nanos() % 1_000_000 == 0 {
        ms
    } else {
        ms.saturating_add(1)
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn rounding() {
        assert_eq!(floor_ms(Duration::from_micros(1999)), 1);
        assert_eq!(ceil_ms(Duration::from_micros(1999)), 2);
        assert_eq!(ceil_ms(Duration::from_millis(2)), 2);
        assert_eq!(ceil_ms(Duration::ZERO), 0);
        assert_eq!(ceil_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn time_base_follows_manual_clock() {
        let clock = ManualClock::new();
        let tb = TimeBase::new(Arc::new(clock.clone()));
        assert_eq!(tb.now_ms(), 0);
        clock.advance(Duration::from_micros(2500));
        assert_eq!(tb.now_ms(), 2);
        assert_eq!(tb.now_ms_ceil(), 3);
    }
}
