//! The access-token cache of one client.
//!
//! One token per client, refreshed shortly before it expires. Callers queue on a tokio mutex, so when
//! many requests find the token stale at once, the first fetches and the rest reuse its result: one
//! refresh, not one per caller. A caller whose request got 401 passes the rejected token as `stale`,
//! which forces a refresh only if nobody has replaced that token yet.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{BackendError, Secret};

/// A token with its refresh deadline and granted scopes.
#[derive(Clone, Debug)]
pub(crate) struct CachedToken {
    /// The bearer token.
    pub token: Secret,
    /// When to stop using it (before the real expiry, see [`CachedToken::new`]).
    pub refresh_at: Instant,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

impl CachedToken {
    /// Refreshes at 90% of the lifetime, at most 30 s early: long-lived tokens are renewed half a
    /// minute ahead, short-lived (test) tokens still get most of their life.
    pub fn new(token: Secret, lifetime: Duration, scopes: Vec<String>) -> Self {
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Self {
            token,
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            scopes,
        }
    }

    fn usable(&self) -> bool {
        Instant::now() < self.refresh_at
    }
}

/// Single-flight cache of one token.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    slot: tokio::sync::Mutex<Option<CachedToken>>,
}

impl TokenCache {
    /// Returns a usable token, calling `fetch` (while holding the lock) when there is none, it is due
    /// for refresh, or it equals `stale`.
    pub async fn get<F, Fut>(
        &self,
        stale: Option<&Secret>,
        fetch: F,
    ) -> Result<CachedToken, BackendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CachedToken, BackendError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(t) = slot.as_ref() {
            if t.usable() && stale != Some(&t.token) {
                return Ok(t.clone());
            }
        }
        let fresh = fetch().await?;
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch_and_stale_forces_one_more() {
        let cache = Arc::new(TokenCache::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(None, || async {
                        let n = fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(CachedToken::new(
                            Secret::new(format!("t{n}")),
                            Duration::from_secs(60),
                            vec![],
                        ))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert!(t.await.expect("join").is_ok());
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        let stale = Secret::new("t0");
        let t = cache
            .get(Some(&stale), || async {
                Ok(CachedToken::new(
                    Secret::new("t1"),
                    Duration::from_secs(60),
                    vec![],
                ))
            })
            .await
            .expect("refresh");
        assert_eq!(t.token.expose(), "t1");
        // A second caller holding the same stale token reuses the replacement.
        let t = cache
            .get(Some(&stale), || async {
                Err(BackendError::Config("must not fetch".into()))
            })
            .await
            .expect("reuse");
        assert_eq!(t.token.expose(), "t1");
    }

    #[test]
    fn refresh_margin_is_bounded() {
        let t = CachedToken::new(Secret::new("x"), Duration::from_secs(3600), vec![]);
        let left = t.refresh_at.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(3560) && left <= Duration::from_secs(3570));
    }
}
