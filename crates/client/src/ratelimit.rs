//! The request budget of one backend (`spec.maxRequestsPerMinute` on IdentityBackend, on by default
//! for Asgardeo): a token bucket every request to the server takes a token from, token endpoint
//! included, and the one place a 429 slows the whole backend down (every request of the backend
//! waits out the server's `Retry-After`, not only the one that got it).
//!
//! Hand-written rather than `governor` (a new dependency for a few dozen lines, and it has no
//! "pause everyone" operation): the bucket's arithmetic takes the instant as an argument, so it is
//! tested with fixed instants, never by sleeping.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;

/// Asgardeo's published limit for `/api/server/*` and `/oauth2/*`: 200 requests per minute per
/// client IP address, on every subscription tier (<https://wso2.com/asgardeo/docs/references/rate-limits/>).
pub const ASGARDEO_QUOTA_PER_MINUTE: u32 = 200;

/// The budget an Asgardeo backend gets when `maxRequestsPerMinute` is not set: three quarters of
/// [`ASGARDEO_QUOTA_PER_MINUTE`]. The quota is per egress IP, so the rest is left to whatever else
/// leaves the cluster by the same address (a second installation, CI scripts), and it absorbs the
/// bucket's burst ([`burst_of`]) when the server counts in a sliding window.
pub const ASGARDEO_DEFAULT_PER_MINUTE: u32 = 150;

/// The share of the budget one round of drift checks may use when `driftCheckBudgetPercent` is not
/// set: half, leaving the other half to changes.
pub const DEFAULT_DRIFT_PERCENT: u32 = 50;

/// How many requests a backend may send, as declared or defaulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No budget (a self-hosted WSO2 IS without `maxRequestsPerMinute`): only a 429 pauses.
    Unlimited,
    /// `maxRequestsPerMinute`, or the Asgardeo default.
    PerMinute(u32),
    /// The deprecated `maxRequestsPerSecond` (kept working: a bucket of one second's worth).
    PerSecond(u32),
}

impl Limit {
    /// Chooses the limit of a backend (pure). The two spec fields are exclusive (CEL); an Asgardeo
    /// host without either gets [`ASGARDEO_DEFAULT_PER_MINUTE`], a self-hosted server none.
    pub fn choose(per_minute: Option<u32>, per_second: Option<u32>, asgardeo_host: bool) -> Self {
        match (per_minute, per_second) {
            (Some(m), _) => Self::PerMinute(m.max(1)),
            (None, Some(s)) => Self::PerSecond(s.max(1)),
            (None, None) if asgardeo_host => Self::PerMinute(ASGARDEO_DEFAULT_PER_MINUTE),
            (None, None) => Self::Unlimited,
        }
    }

    /// The budget in requests per minute, if there is one.
    pub fn per_minute(self) -> Option<u32> {
        match self {
            Self::Unlimited => None,
            Self::PerMinute(m) => Some(m),
            Self::PerSecond(s) => Some(s.saturating_mul(60)),
        }
    }
}

/// The bucket size of a per-minute budget: a twentieth of it (at least 1). A quiet client may send
/// that many at once; any 60 s window then holds at most budget + burst requests, which stays under
/// the server's quota when the budget leaves that much room (150 + 7 < 200 for Asgardeo).
pub fn burst_of(per_minute: u32) -> f64 {
    f64::from((per_minute / 20).max(1))
}

/// The budget metrics of one backend (clones of the families' children, see
/// [`super::metrics::BackendMetrics::budget`]).
#[derive(Clone, Debug, Default)]
pub struct BudgetMetrics {
    /// Requests that took a token.
    pub used: Counter,
    /// Requests waiting for a token (or for a pause to end) right now.
    pub queued: Gauge,
    /// 429 answers that paused the whole backend.
    pub pauses: Counter,
}

/// A backend's request budget: a token bucket refilled at `rate` per second (none: unlimited) plus
/// a pause every request waits out after a 429. Waiters reserve their token before sleeping, so
/// they are served in the order they asked and never all wake up at once.
#[derive(Debug)]
pub struct Budget {
    /// Tokens per second and bucket size.
    rate: Option<(f64, f64)>,
    state: Mutex<Bucket>,
    metrics: BudgetMetrics,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens available at `at`; negative when waiters have reserved future tokens.
    tokens: f64,
    /// The instant `tokens` is counted at; in the future during a pause (nothing refills before).
    at: Instant,
    /// The end of the last pause a 429 asked for.
    paused_until: Option<Instant>,
    /// Pauses so far: a waiter that slept across a new pause reserves again, behind it.
    epoch: u64,
}

/// What [`Budget::reserve_at`] tells a caller.
#[derive(Debug, PartialEq)]
enum Reservation {
    /// Sleep this long, then send (unless the epoch moved meanwhile).
    Wait(Duration, u64),
    /// The backend is paused for longer than the caller will wait: fail with this much left.
    Refused(Duration),
}

impl Budget {
    /// A budget for `limit`, starting full.
    pub fn new(limit: Limit, metrics: BudgetMetrics) -> Self {
        let rate = match limit {
            Limit::Unlimited => None,
            Limit::PerMinute(m) => Some((f64::from(m.max(1)) / 60.0, burst_of(m))),
            Limit::PerSecond(s) => Some((f64::from(s.max(1)), f64::from(s.max(1)))),
        };
        Self {
            rate,
            state: Mutex::new(Bucket {
                tokens: rate.map_or(0.0, |(_, burst)| burst),
                at: Instant::now(),
                paused_until: None,
                epoch: 0,
            }),
            metrics,
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // A poisoned lock only means another task panicked between two float updates: the bucket
        // is still a valid bucket, so keep limiting rather than fail every request.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes (reserves) a token for a caller asking at `now` that waits at most `max_pause` for a
    /// pause to end.
    fn reserve_at(&self, now: Instant, max_pause: Duration) -> Reservation {
        let mut b = self.bucket();
        let paused = b
            .paused_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        if paused > max_pause {
            return Reservation::Refused(paused);
        }
        let Some((rate, burst)) = self.rate else {
            return Reservation::Wait(paused, b.epoch);
        };
        // Nothing refills before `at` (a pause moved it forward; a caller whose `now` was taken
        // just before another's counts from the later one).
        let t = now.max(b.at);
        let refill = t.saturating_duration_since(b.at).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(burst) - 1.0;
        b.at = t;
        let debt = Duration::from_secs_f64((-b.tokens).max(0.0) / rate);
        Reservation::Wait(t.saturating_duration_since(now) + debt, b.epoch)
    }

    /// The server answered 429 at `now` and asked for `wait`: every request of this backend waits
    /// until then, including those already holding a reservation (they reserve again), and the
    /// bucket restarts empty, so requests resume at the budget's pace instead of in a burst.
    pub fn pause_at(&self, now: Instant, wait: Duration) {
        let until = now + wait;
        let mut b = self.bucket();
        if b.paused_until.is_none_or(|u| u < until) {
            b.paused_until = Some(until);
        }
        b.at = b.at.max(until);
        b.tokens = 0.0;
        b.epoch += 1;
        self.metrics.pauses.inc();
    }

    /// [`Self::pause_at`] now.
    pub fn pause(&self, wait: Duration) {
        self.pause_at(Instant::now(), wait);
    }

    fn epoch(&self) -> u64 {
        self.bucket().epoch
    }

    /// Waits until the caller may send one request. Fails at once, with the time left, when a 429
    /// paused the backend for longer than `max_pause`: the caller gives up (and requeues) rather
    /// than hold a reconcile slot that long.
    pub async fn acquire(&self, max_pause: Duration) -> Result<(), Duration> {
        loop {
            match self.reserve_at(Instant::now(), max_pause) {
                Reservation::Refused(left) => return Err(left),
                Reservation::Wait(wait, epoch) => {
                    if !wait.is_zero() {
                        // Counted down on drop too: a reconcile cancelled while it waits leaves.
                        let _queued = Queued::enter(&self.metrics.queued);
                        tokio::time::sleep(wait).await;
                    }
                    if self.epoch() == epoch {
                        self.metrics.used.inc();
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// One request in the budget's queue gauge while it lives.
struct Queued<'a>(&'a Gauge);

impl<'a> Queued<'a> {
    fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// How drift checks fit in a backend's budget.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftPlan {
    /// How long one round of drift checks of every object takes at its share of the budget.
    pub round: Duration,
    /// The drift-check interval of the backend's objects: the operator's resync, stretched to
    /// `round` when that is longer.
    pub interval: Duration,
    /// The objects cannot be drift-checked within the operator's resync at that share.
    pub stretched: bool,
}

/// Fits the drift checks of `objects` objects, `reads` requests each, in `percent` % of a budget
/// of `per_minute` requests per minute (pure). No budget: the resync as it is.
pub fn drift_plan(
    objects: usize,
    reads: u32,
    per_minute: Option<u32>,
    percent: u32,
    resync: Duration,
) -> DriftPlan {
    let Some(per_minute) = per_minute else {
        return DriftPlan {
            round: Duration::ZERO,
            interval: resync,
            stretched: false,
        };
    };
    let share = f64::from(per_minute.max(1)) * f64::from(percent.clamp(1, 100)) / 100.0;
    let requests = objects as f64 * f64::from(reads);
    // Whole seconds, rounded up: the round must fit, and the interval is shown to people.
    let round = Duration::from_secs((requests / share * 60.0).ceil() as u64);
    DriftPlan {
        round,
        interval: resync.max(round),
        stretched: round > resync,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }

    const NO_PAUSE: Duration = Duration::from_secs(3600);

    fn wait(r: Reservation) -> Duration {
        match r {
            Reservation::Wait(w, _) => w,
            Reservation::Refused(left) => panic!("refused, {left:?} left"),
        }
    }

    fn budget(limit: Limit) -> Budget {
        Budget::new(limit, BudgetMetrics::default())
    }

    #[test]
    fn the_limit_is_declared_or_the_asgardeo_default() {
        let cases = [
            // (perMinute, perSecond, Asgardeo host, limit, per minute)
            (None, None, true, Limit::PerMinute(150), Some(150)),
            (None, None, false, Limit::Unlimited, None),
            (Some(60), None, true, Limit::PerMinute(60), Some(60)),
            (Some(600), None, false, Limit::PerMinute(600), Some(600)),
            (None, Some(2), false, Limit::PerSecond(2), Some(120)),
            (None, Some(2), true, Limit::PerSecond(2), Some(120)),
            (Some(0), None, false, Limit::PerMinute(1), Some(1)),
        ];
        for (m, s, asgardeo, limit, per_minute) in cases {
            let got = Limit::choose(m, s, asgardeo);
            assert_eq!(got, limit, "{m:?} {s:?} {asgardeo}");
            assert_eq!(got.per_minute(), per_minute, "{limit:?}");
        }
        assert!(
            f64::from(ASGARDEO_DEFAULT_PER_MINUTE) + burst_of(ASGARDEO_DEFAULT_PER_MINUTE)
                < f64::from(ASGARDEO_QUOTA_PER_MINUTE),
            "the default and its burst fit in any 60 s window of the quota"
        );
    }

    #[test]
    fn a_per_minute_budget_allows_a_small_burst_then_paces() {
        // 120/min: 2 per second, a burst of 6.
        let b = budget(Limit::PerMinute(120));
        let t0 = Instant::now();
        for _ in 0..6 {
            assert_eq!(wait(b.reserve_at(t0, NO_PAUSE)), Duration::ZERO);
        }
        for k in 1..=10 {
            let w = wait(b.reserve_at(t0, NO_PAUSE));
            assert!(close(w, ms(500 * k)), "{k}: {w:?}");
        }
    }

    #[test]
    fn any_minute_holds_at_most_budget_plus_burst() {
        // Callers asking as fast as they can for five minutes: count sends per 60 s window.
        let b = budget(Limit::PerMinute(150));
        let t0 = Instant::now();
        let mut sends = Vec::new();
        let mut now = t0;
        while now < t0 + secs(300) {
            let w = wait(b.reserve_at(now, NO_PAUSE));
            now += w;
            sends.push(now);
        }
        let worst = sends
            .iter()
            .map(|s| {
                sends
                    .iter()
                    .filter(|t| **t >= *s && **t < *s + secs(60))
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(worst <= 150 + 7, "{worst} in one minute");
        assert!(worst >= 150, "the budget is used: {worst}");
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let b = budget(Limit::PerSecond(4));
        let t0 = Instant::now();
        for _ in 0..4 {
            b.reserve_at(t0, NO_PAUSE);
        }
        // 500 ms later two tokens are back: two go at once, the third waits 250 ms.
        let t1 = t0 + ms(500);
        assert_eq!(wait(b.reserve_at(t1, NO_PAUSE)), Duration::ZERO);
        assert_eq!(wait(b.reserve_at(t1, NO_PAUSE)), Duration::ZERO);
        assert!(close(wait(b.reserve_at(t1, NO_PAUSE)), ms(250)));
    }

    #[test]
    fn an_idle_bucket_refills_only_up_to_its_burst() {
        let b = budget(Limit::PerSecond(4));
        let t0 = Instant::now();
        for _ in 0..4 {
            b.reserve_at(t0, NO_PAUSE);
        }
        let later = t0 + secs(60);
        for _ in 0..4 {
            assert_eq!(wait(b.reserve_at(later, NO_PAUSE)), Duration::ZERO);
        }
        let w = wait(b.reserve_at(later, NO_PAUSE));
        assert!(close(w, ms(250)), "a minute idle is not 240 tokens: {w:?}");
    }

    #[test]
    fn a_caller_with_an_older_instant_waits_for_the_same_token_as_the_others() {
        let b = budget(Limit::PerSecond(1));
        let t0 = Instant::now() + secs(5);
        assert_eq!(wait(b.reserve_at(t0, NO_PAUSE)), Duration::ZERO);
        // The next token is due at t0 + 1 s, which is 1.5 s after this caller's instant.
        assert!(close(wait(b.reserve_at(t0 - ms(500), NO_PAUSE)), ms(1500)));
    }

    #[test]
    fn a_429_pauses_every_request_of_the_backend_then_resumes_at_the_pace() {
        let b = budget(Limit::PerMinute(120));
        let t0 = Instant::now();
        // A waiter holding a reservation from before the pause...
        let Reservation::Wait(_, before) = b.reserve_at(t0, NO_PAUSE) else {
            panic!("refused")
        };
        b.pause_at(t0, secs(10));
        assert_ne!(b.epoch(), before, "...must reserve again, behind the pause");
        // The bucket restarts empty at the pause's end: one token every 500 ms from there.
        for k in 1..=3 {
            let w = wait(b.reserve_at(t0 + secs(1), NO_PAUSE));
            assert!(close(w, secs(9) + ms(500 * k)), "{k}: {w:?}");
        }
        assert_eq!(b.metrics.pauses.get(), 1);
    }

    #[test]
    fn an_unlimited_backend_still_waits_out_a_429() {
        let b = budget(Limit::Unlimited);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert_eq!(wait(b.reserve_at(t0, NO_PAUSE)), Duration::ZERO);
        }
        b.pause_at(t0, secs(3));
        assert!(close(wait(b.reserve_at(t0 + secs(1), NO_PAUSE)), secs(2)));
        assert_eq!(wait(b.reserve_at(t0 + secs(3), NO_PAUSE)), Duration::ZERO);
    }

    #[test]
    fn a_pause_longer_than_the_caller_waits_is_refused_with_the_time_left() {
        let b = budget(Limit::Unlimited);
        let t0 = Instant::now();
        b.pause_at(t0, secs(120));
        assert_eq!(
            b.reserve_at(t0 + secs(20), secs(30)),
            Reservation::Refused(secs(100))
        );
        // A shorter pause asked later never shortens the longer one.
        b.pause_at(t0 + secs(20), secs(1));
        assert_eq!(
            b.reserve_at(t0 + secs(30), secs(30)),
            Reservation::Refused(secs(90))
        );
    }

    #[tokio::test]
    async fn acquire_waits_only_when_the_bucket_is_empty_and_counts() {
        let b = budget(Limit::PerSecond(1));
        assert_eq!(b.acquire(NO_PAUSE).now_or_never(), Some(Ok(())));
        assert!(
            b.acquire(NO_PAUSE).now_or_never().is_none(),
            "second one must wait for a second"
        );
        assert_eq!(b.metrics.used.get(), 1);
        assert_eq!(
            b.metrics.queued.get(),
            0,
            "a dropped waiter leaves the queue"
        );
        let free = budget(Limit::Unlimited);
        for _ in 0..1000 {
            assert_eq!(free.acquire(NO_PAUSE).now_or_never(), Some(Ok(())));
        }
        free.pause(secs(60));
        assert!(matches!(
            free.acquire(secs(30)).now_or_never(),
            Some(Err(left)) if left > secs(59)
        ));
    }

    #[test]
    fn drift_checks_fit_in_their_share_of_the_budget() {
        let m5 = secs(300);
        let cases = [
            // (objects, reads, per minute, percent, resync) -> (round, interval, stretched)
            (0, 3, Some(150), 50, m5, (secs(0), m5, false)),
            // 100 × 3 = 300 requests at 75/min: 4 minutes, within 5.
            (100, 3, Some(150), 50, m5, (secs(240), m5, false)),
            // 6000 × 3 = 18 000 at 75/min: 240 minutes.
            (
                6000,
                3,
                Some(150),
                50,
                m5,
                (secs(14_400), secs(14_400), true),
            ),
            // The whole budget: half as long.
            (6000, 3, Some(150), 100, m5, (secs(7200), secs(7200), true)),
            // Rounded up to whole seconds: 7 × 1 at 6/min is 70 s.
            (7, 1, Some(12), 50, secs(10), (secs(70), secs(70), true)),
            // No budget (self-hosted): the resync as configured.
            (6000, 3, None, 50, m5, (secs(0), m5, false)),
            // A percent out of range is clamped, never a division by zero.
            (10, 3, Some(60), 0, m5, (secs(3000), secs(3000), true)),
        ];
        for (objects, reads, per_minute, percent, resync, (round, interval, stretched)) in cases {
            let plan = drift_plan(objects, reads, per_minute, percent, resync);
            assert_eq!(
                plan,
                DriftPlan {
                    round,
                    interval,
                    stretched
                },
                "{objects} × {reads} at {per_minute:?}/min, {percent} %"
            );
        }
    }
}
