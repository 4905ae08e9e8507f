//! The Block gate, one lock per IdentityProvider.
//!
//! Block needs an IdP's JIT change and a dependent Application's flow push to be decided one after
//! the other (each checks the other's live server state inside the gate), but nothing else needs to
//! wait: a single operator-wide lock serialised every reconcile of both kinds behind each other's
//! server round trips, which at 20 ms per request left a 120-object namespace with a 10 s resync
//! never converging. Locks are taken in sorted order, so two reconciles that need overlapping sets
//! cannot deadlock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// The per-IdP locks, created on first use (one small entry per IdentityProvider ever seen).
#[derive(Default)]
pub struct BlockGate {
    locks: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    /// Per IdP (gate key): its server id and whether JIT is on there, as its last pass in this
    /// process left it, recorded inside its gate. An Application's Block check reads it inside the
    /// same gate instead of asking the server: whichever of the two goes second sees the other.
    jit: Mutex<HashMap<String, (String, bool)>>,
}

/// Held while a Block decision and the change it guards run; dropping it releases every lock.
pub struct Held {
    _guards: Vec<OwnedMutexGuard<()>>,
}

impl BlockGate {
    /// Locks the gates of these IdentityProviders (by `namespace/name`), in sorted order.
    pub async fn lock(&self, idps: impl IntoIterator<Item = String>) -> Held {
        let keys: BTreeSet<String> = idps.into_iter().collect();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            let lock = {
                let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
                locks.entry(key).or_default().clone()
            };
            guards.push(lock.lock_owned().await);
        }
        Held { _guards: guards }
    }
}

impl BlockGate {
    /// Records an IdP's JIT on the server (call inside its gate, after reading or writing it).
    pub fn record_jit(&self, key: &str, id: &str, enabled: bool) {
        let mut jit = self.jit.lock().unwrap_or_else(|e| e.into_inner());
        jit.insert(key.to_string(), (id.to_string(), enabled));
    }

    /// An IdP's JIT on the server as recorded for server id `id`, if this process knows it.
    pub fn recorded_jit(&self, key: &str, id: &str) -> Option<bool> {
        let jit = self.jit.lock().unwrap_or_else(|e| e.into_inner());
        jit.get(key).filter(|(i, _)| i == id).map(|(_, on)| *on)
    }

    /// Forgets an IdP (deleted).
    pub fn forget_jit(&self, key: &str) {
        let mut jit = self.jit.lock().unwrap_or_else(|e| e.into_inner());
        jit.remove(key);
    }
}

/// The gate key of an IdentityProvider.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn recorded_jit_is_per_server_id() {
        let gate = BlockGate::default();
        let k = key(Some("ns"), "google");
        assert_eq!(gate.recorded_jit(&k, "i1"), None);
        gate.record_jit(&k, "i1", false);
        assert_eq!(gate.recorded_jit(&k, "i1"), Some(false));
        assert_eq!(
            gate.recorded_jit(&k, "i2"),
            None,
            "a recreated IdP is not the old one"
        );
        gate.forget_jit(&k);
        assert_eq!(gate.recorded_jit(&k, "i1"), None);
    }

    #[tokio::test]
    async fn disjoint_idps_do_not_wait_for_each_other() {
        let gate = BlockGate::default();
        let _a = gate.lock([key(Some("ns"), "a")]).await;
        let b = gate.lock([key(Some("ns"), "b")]).now_or_never();
        assert!(b.is_some(), "a lock on b must not wait for a");
    }

    #[tokio::test]
    async fn a_shared_idp_serialises_until_released() {
        let gate = BlockGate::default();
        let held = gate
            .lock([key(Some("ns"), "b"), key(Some("ns"), "a")])
            .await;
        let mut waiting = Box::pin(gate.lock([key(Some("ns"), "a")]));
        assert!((&mut waiting).now_or_never().is_none());
        drop(held);
        assert!(waiting.now_or_never().is_some());
    }
}
