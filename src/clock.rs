//! Time: the [`Clock`] trait, the real and the manual clock, and the millisecond time base.
//!
//! # Ground rules
//!
//! `Instant::now()` appears in this file only (clippy's `disallowed-methods` enforces it).
//! Everything else reads time through a [`Clock`], so that tests drive a [`ManualClock`] and
//! never sleep. Inside the engine, time is a `u64` count of milliseconds since the lessor was
//! built ([`TimeBase`]); deadlines round *up* to the next millisecond and "now" rounds *down*,
//! so a lease never expires before its full TTL has passed.
//!
//! Hot paths (grant, renew) read [`Clock::now_coarse`] instead of [`Clock::now`]. On Linux the
//! system clock's coarse reading is the kernel's `CLOCK_MONOTONIC_COARSE`, which costs a few
//! nanoseconds and, unlike the precise clock (`lfence; rdtsc`), does not stop the processor
//! from overlapping one renew's cache misses with the next one's: at a million leases that is
//! the difference between about 60 ns and 300 ns a renew. It may lag the precise clock by up to
//! [`Clock::coarse_lag`] (three kernel ticks plus 5 ms); new deadlines add that margin, so they
//! are not early unless a kernel tick comes later than the margin allows (a lease may live up
//! to that much longer than its TTL, about 17 ms with 250 Hz ticks).

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

    /// A cheaper reading for hot paths: never later than [`now`](Clock::now), and earlier by
    /// at most [`coarse_lag`](Clock::coarse_lag). The default is `now()` itself.
    fn now_coarse(&self) -> Instant {
        self.now()
    }

    /// How far [`now_coarse`](Clock::now_coarse) may lag [`now`](Clock::now). The default is
    /// zero.
    fn coarse_lag(&self) -> Duration {
        Duration::ZERO
    }
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

    #[cfg(target_os = "linux")]
    fn now_coarse(&self) -> Instant {
        coarse::now()
    }

    #[cfg(target_os = "linux")]
    fn coarse_lag(&self) -> Duration {
        coarse::lag()
    }
}

/// `CLOCK_MONOTONIC_COARSE` as an `Instant`. `Instant` is `CLOCK_MONOTONIC` on Linux, the same
/// time base, so one anchor pair taken together converts the coarse reading without a second
/// clock read.
#[cfg(target_os = "linux")]
mod coarse {
    use std::sync::OnceLock; // once per process, outside every loom model
    use std::time::{Duration, Instant};

    use rustix::time::{clock_getres, clock_gettime, ClockId, Timespec};

    struct Anchor {
        instant: Instant,
        nanos: u128,
        lag: Duration,
    }

    static ANCHOR: OnceLock<Anchor> = OnceLock::new();

    fn nanos(t: Timespec) -> u128 {
        let secs = u128::try_from(t.tv_sec).unwrap_or(0);
        let subsec = u128::try_from(t.tv_nsec).unwrap_or(0);
        secs * 1_000_000_000 + subsec
    }

    fn anchor() -> &'static Anchor {
        ANCHOR.get_or_init(|| {
            #[allow(clippy::disallowed_methods)] // the anchor of the coarse clock
            let instant = Instant::now();
            let at = nanos(clock_gettime(ClockId::Monotonic));
            let res = clock_getres(ClockId::MonotonicCoarse);
            let res = Duration::from_nanos(u64::try_from(nanos(res)).unwrap_or(u64::MAX));
            // The kernel updates the coarse clock every tick (its resolution); ticks come late
            // on a loaded machine (seen here: up to 11.7 ms behind with 4 ms ticks on a busy
            // 2-core VM), so the margin is three ticks plus 5 ms.
            Anchor {
                instant,
                nanos: at,
                lag: res * 3 + Duration::from_millis(5),
            }
        })
    }

    pub(super) fn now() -> Instant {
        let a = anchor();
        let now = nanos(clock_gettime(ClockId::MonotonicCoarse));
        if now >= a.nanos {
            a.instant + Duration::from_nanos(u64::try_from(now - a.nanos).unwrap_or(u64::MAX))
        } else {
            let back = u64::try_from(a.nanos - now).unwrap_or(u64::MAX);
            a.instant
                .checked_sub(Duration::from_nanos(back))
                .unwrap_or(a.instant)
        }
    }

    pub(super) fn lag() -> Duration {
        anchor().lag
    }

    /// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a few nanoseconds, no serializing instruction.
    #[inline]
    pub(super) fn coarse_ns() -> u64 {
        u64::try_from(nanos(clock_gettime(ClockId::MonotonicCoarse))).unwrap_or(u64::MAX)
    }

    /// `CLOCK_MONOTONIC` in nanoseconds, the time base of `Instant`.
    pub(super) fn precise_ns() -> u64 {
        u64::try_from(nanos(clock_gettime(ClockId::Monotonic))).unwrap_or(u64::MAX)
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
    lag: Duration,
    /// With the system clock on Linux: `base` in `CLOCK_MONOTONIC` nanoseconds, so that hot
    /// paths read the coarse clock raw, with integer arithmetic only.
    #[cfg(target_os = "linux")]
    base_ns: Option<u64>,
}

impl TimeBase {
    /// `system` says that `clock` is [`SystemClock`], whose coarse reading has a fast path.
    pub(crate) fn new(clock: Arc<dyn Clock>, system: bool) -> Self {
        let base = clock.now();
        let lag = clock.coarse_lag();
        #[cfg(target_os = "linux")]
        let base_ns = system.then(|| {
            let ns = coarse::precise_ns();
            // `base` was read just before: count from it so the two never disagree by more
            // than the time between the reads, which the coarse lag's spare millisecond covers.
            ns.saturating_sub(
                u64::try_from(clock.now().saturating_duration_since(base).as_nanos()).unwrap_or(0),
            )
        });
        #[cfg(not(target_os = "linux"))]
        let _ = system;
        TimeBase {
            clock,
            base,
            lag,
            #[cfg(target_os = "linux")]
            base_ns,
        }
    }

    /// Milliseconds elapsed, rounded down: "has this deadline passed" compares against this.
    pub(crate) fn now_ms(&self) -> u64 {
        floor_ms(self.clock.now().saturating_duration_since(self.base))
    }

    /// Milliseconds elapsed, rounded up: new deadlines start from this.
    pub(crate) fn now_ms_ceil(&self) -> u64 {
        ceil_ms(self.clock.now().saturating_duration_since(self.base))
    }

    /// Milliseconds elapsed, rounded down and up, from one precise reading.
    pub(crate) fn now_ms_precise(&self) -> (u64, u64) {
        let d = self.clock.now().saturating_duration_since(self.base);
        (floor_ms(d), ceil_ms(d))
    }

    /// For hot paths, from one coarse reading: a time no later than now (ms, rounded down:
    /// "has this deadline passed" compares against it) and one no earlier than now (ms, rounded
    /// up: new deadlines start from it).
    #[inline]
    pub(crate) fn now_ms_coarse(&self) -> (u64, u64) {
        #[cfg(target_os = "linux")]
        if let Some(base_ns) = self.base_ns {
            let d = coarse::coarse_ns().saturating_sub(base_ns);
            let lag = u64::try_from(self.lag.as_nanos()).unwrap_or(u64::MAX);
            return (d / 1_000_000, d.saturating_add(lag).div_ceil(1_000_000));
        }
        let d = self.clock.now_coarse().saturating_duration_since(self.base);
        (floor_ms(d), ceil_ms(d + self.lag))
    }

    /// The reading for a swap about to run under a shard lock, taken now, outside the lock,
    /// when the clock is not lessor's own system clock (user code stays out of shard locks).
    /// `None`: the system clock's fast path, which the caller reads inside the lock instead,
    /// with [`now_ms_coarse`](Self::now_ms_coarse), after its lookup has been issued.
    #[inline]
    pub(crate) fn before_lock(&self) -> Option<(u64, u64)> {
        #[cfg(target_os = "linux")]
        if self.base_ns.is_some() {
            return None;
        }
        Some(self.now_ms_coarse())
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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_coarse_clock_is_never_ahead_and_lags_at_most_its_lag() {
        // Bracketed by precise readings, so a preemption between reads cannot fail it. The
        // coarse clock must never run ahead; its lag is usually within the margin, but a late
        // kernel tick on a loaded machine can exceed it, so only the typical lag is checked.
        let c = SystemClock;
        let mut lags = Vec::new();
        for _ in 0..1000 {
            let before = c.now();
            let coarse = c.now_coarse();
            let after = c.now();
            assert!(coarse <= after + Duration::from_micros(50), "coarse ahead");
            lags.push(before.saturating_duration_since(coarse));
        }
        lags.sort();
        assert!(lags[500] <= c.coarse_lag(), "median lag {:?}", lags[500]);
        assert!(c.coarse_lag() <= Duration::from_millis(40));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_system_fast_path_brackets_the_precise_clock() {
        let tb = TimeBase::new(Arc::new(SystemClock), true);
        let mut early = 0;
        for _ in 0..1000 {
            let before = tb.now_ms();
            let (floor, ceil) = tb.now_ms_coarse();
            let after = tb.now_ms();
            assert!(floor <= after, "coarse floor {floor} after precise {after}");
            early += usize::from(ceil < before);
            assert!(ceil - floor <= 45);
        }
        assert!(
            early < 500,
            "the coarse ceiling was behind the precise clock {early} times"
        );
    }

    #[test]
    fn time_base_follows_manual_clock() {
        let clock = ManualClock::new();
        let tb = TimeBase::new(Arc::new(clock.clone()), false);
        assert_eq!(tb.now_ms(), 0);
        clock.advance(Duration::from_micros(2500));
        assert_eq!(tb.now_ms(), 2);
        assert_eq!(tb.now_ms_ceil(), 3);
    }
}
