//! A token bucket for the optional expiry rate limit.

/// Allows `rate` events a second, with bursts of at most one second's worth.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    tokens: f64,
    last_ms: u64,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32, now_ms: u64) -> Self {
        RateLimiter {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last_ms: now_ms,
        }
    }

    /// Adds the tokens earned since the last refill.
    pub(crate) fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.tokens = (self.tokens + elapsed * self.rate / 1000.0).min(self.rate);
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Takes a token if one is there.
    pub(crate) fn try_take(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whole tokens available now.
    pub(crate) fn available(&self) -> usize {
        self.tokens as usize
    }
}

#[cfg(all(test, not(lessor_loom)))]
mod tests {
    use super::*;

    #[test]
    fn allows_rate_per_second() {
        let mut l = RateLimiter::new(10, 0);
        let first = (0..100).filter(|_| l.try_take()).count();
        assert_eq!(first, 10);
        l.refill(500);
        assert_eq!((0..100).filter(|_| l.try_take()).count(), 5);
        l.refill(10_000);
        assert_eq!((0..100).filter(|_| l.try_take()).count(), 10); // burst capped at 1 s
    }
}
