//! How well one identity server behaves, as its client saw it: a server that times out, sends
//! oversized bodies or pages without end is *degraded*. The controllers read it to give that
//! backend fewer reconcile slots and longer requeues, and the IdentityBackend reports it, so one
//! broken tenant slows only itself (issue 24 item 4). No Kubernetes types here.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a server did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A request got no (complete) answer within the client's timeout.
    Timeout,
    /// A response body, or a list's pages together, exceeded a size cap.
    Oversized,
    /// A list did not end within the page cap.
    TooManyPages,
}

impl Misbehaviour {
    /// The condition reason reported on the IdentityBackend.
    pub fn reason(self) -> &'static str {
        match self {
            Misbehaviour::Timeout => "ServerTimeout",
            Misbehaviour::Oversized => "ResponseTooLarge",
            Misbehaviour::TooManyPages => "TooManyPages",
        }
    }
}

/// The first requeue of an object whose backend is degraded; doubles per further strike.
pub const DEGRADED_BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest such requeue: a backend that recovers is used again within this time.
pub const DEGRADED_BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);

/// The degraded state as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Degraded {
    /// The last misbehaviour.
    pub what: Misbehaviour,
    /// Misbehaviours since the last good answer.
    pub strikes: u32,
    /// What happened last (operation and cap or timeout; never a secret).
    pub detail: String,
    /// How long objects of this backend wait before their next try.
    pub backoff: Duration,
}

#[derive(Debug, Default)]
struct State {
    strikes: u32,
    last: Option<(Misbehaviour, String, Instant)>,
}

/// Shared by a backend's client (which records) and the controllers (which read). Survives client
/// rebuilds (a Secret rotation does not make a tarpit look healthy).
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a misbehaviour.
    pub fn record(&self, what: Misbehaviour, detail: impl Into<String>) {
        let mut s = self.lock();
        s.strikes = s.strikes.saturating_add(1);
        s.last = Some((what, detail.into(), Instant::now()));
    }

    /// Records a complete answer within the limits: the server is usable again.
    pub fn record_ok(&self) {
        let mut s = self.lock();
        if s.strikes != 0 {
            *s = State::default();
        }
    }

    /// `Some` while the server misbehaved and has not answered well since.
    pub fn degraded(&self) -> Option<Degraded> {
        let s = self.lock();
        let (what, detail, _) = s.last.clone()?;
        Some(Degraded {
            what,
            strikes: s.strikes,
            detail,
            backoff: backoff(s.strikes),
        })
    }

    /// True while degraded.
    pub fn is_degraded(&self) -> bool {
        self.lock().strikes > 0
    }
}

/// [`DEGRADED_BACKOFF_BASE`] doubled per strike after the first, capped at
/// [`DEGRADED_BACKOFF_MAX`]. Pure.
pub fn backoff(strikes: u32) -> Duration {
    if strikes == 0 {
        return Duration::ZERO;
    }
    DEGRADED_BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(strikes.saturating_sub(1).min(16)))
        .min(DEGRADED_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strikes_grow_the_backoff_and_a_good_answer_clears_them() {
        let h = Health::default();
        assert_eq!(h.degraded(), None);
        h.record(Misbehaviour::Timeout, "get identity provider timed out");
        let d = h.degraded().expect("degraded");
        assert_eq!(
            (d.what, d.strikes, d.backoff),
            (Misbehaviour::Timeout, 1, DEGRADED_BACKOFF_BASE)
        );
        h.record(Misbehaviour::Oversized, "body over 4 MiB");
        let d = h.degraded().expect("degraded");
        assert_eq!(d.what.reason(), "ResponseTooLarge");
        assert_eq!(d.backoff, DEGRADED_BACKOFF_BASE * 2);
        h.record_ok();
        assert_eq!(h.degraded(), None);
        assert!(!h.is_degraded());
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(40), DEGRADED_BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), DEGRADED_BACKOFF_MAX);
    }
}
