//! Test helpers that are not specific to one test file, shared by `tests/` (through `tests/common`)
//! and the bench: the one starter of a control plane (`scripts/dev-env`) and polling for a
//! condition.

pub mod controlplane;

pub use controlplane::{parse_exports, ControlPlane, Output};

use std::time::{Duration, Instant};

/// Polls `f` every 200 ms until it returns Some or `timeout` has passed. This is a wait for a
/// condition, not a sleep: it returns as soon as the condition holds.
pub async fn wait_until<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last `n` lines of a text (a log tail for a failure message).
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        for (text, n, want) in [
            ("a\nb\nc", 2, "b\nc"),
            ("a\nb", 5, "a\nb"),
            ("", 3, ""),
            ("a\nb", 0, ""),
        ] {
            assert_eq!(tail(text, n), want, "tail({text:?}, {n})");
        }
    }

    #[tokio::test]
    async fn wait_until_returns_the_first_some_and_none_on_timeout() {
        let mut calls = 0;
        let got = wait_until(Duration::from_secs(5), || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(got, Some(3));
        let never: Option<()> = wait_until(Duration::from_millis(300), || async { None }).await;
        assert_eq!(never, None);
    }
}
