//! A per-backend request rate limit (`spec.maxRequestsPerSecond` on IdentityBackend): a token
//! bucket every request to the server takes a token from, token endpoint included.
//!
//! Hand-written rather than `governor` (a new dependency for twenty lines): the bucket's arithmetic
//! takes the instant as an argument, so it is tested with fixed instants, never by sleeping.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket holding at most one second's worth of requests (so a quiet client may send a
/// short burst), refilled at `rate` per second. Waiters reserve their token before sleeping, so
/// they are served in the order they asked and never all wake up at once.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `at`; negative when waiters have reserved future tokens.
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// A limiter of `per_second` requests per second (at least 1), starting full.
    pub fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        Self {
            rate,
            burst: rate,
            state: Mutex::new(Bucket {
                tokens: rate,
                at: Instant::now(),
            }),
        }
    }

    /// How long a caller asking at `now` must wait for its token; the token is taken (reserved)
    /// either way.
    fn reserve_at(&self, now: Instant) -> Duration {
        // A poisoned lock only means another task panicked between two float updates: the bucket
        // is still a valid bucket, so keep limiting rather than fail every request.
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + refill).min(self.burst) - 1.0;
        b.at = now;
        if b.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.tokens / self.rate)
        }
    }

    /// Waits until the caller may send one request.
    pub async fn acquire(&self) {
        let wait = self.reserve_at(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Waits for a token of `limit`, if there is a limit.
pub async fn acquire(limit: Option<&RateLimiter>) {
    if let Some(l) = limit {
        l.acquire().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }

    #[test]
    fn a_full_bucket_lets_one_second_through_then_paces() {
        let limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert_eq!(
                limiter.reserve_at(t0),
                Duration::ZERO,
                "the burst does not wait"
            );
        }
        // Asked at the same instant, the next ones are spread 100 ms apart, in order.
        for k in 1..=20 {
            let wait = limiter.reserve_at(t0);
            assert!(close(wait, ms(100 * k)), "{k}: {wait:?}");
        }
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let limiter = RateLimiter::new(4);
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.reserve_at(t0);
        }
        // 500 ms later two tokens are back: two go at once, the third waits 250 ms.
        let t1 = t0 + ms(500);
        assert_eq!(limiter.reserve_at(t1), Duration::ZERO);
        assert_eq!(limiter.reserve_at(t1), Duration::ZERO);
        assert!(close(limiter.reserve_at(t1), ms(250)));
    }

    #[test]
    fn an_idle_bucket_refills_only_up_to_its_burst() {
        let limiter = RateLimiter::new(4);
        let t0 = Instant::now();
        for _ in 0..4 {
            limiter.reserve_at(t0);
        }
        let later = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(limiter.reserve_at(later), Duration::ZERO);
        }
        let wait = limiter.reserve_at(later);
        assert!(
            close(wait, ms(250)),
            "a minute idle is not 240 tokens: {wait:?}"
        );
    }

    #[test]
    fn a_clock_that_goes_backwards_refills_nothing() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now() + Duration::from_secs(5);
        assert_eq!(limiter.reserve_at(t0), Duration::ZERO);
        assert!(close(limiter.reserve_at(t0 - ms(500)), ms(1000)));
    }

    #[tokio::test]
    async fn acquire_waits_only_when_the_bucket_is_empty() {
        let limiter = RateLimiter::new(1);
        assert!(
            limiter.acquire().now_or_never().is_some(),
            "first token at once"
        );
        assert!(
            limiter.acquire().now_or_never().is_none(),
            "second one must wait for a second"
        );
        for _ in 0..1000 {
            assert!(
                acquire(None).now_or_never().is_some(),
                "no limit never waits"
            );
        }
    }
}
