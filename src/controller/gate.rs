//! The Block gate, one read-write lock per IdentityProvider.
//!
//! Block needs an IdP's JIT change and a dependent Application's flow push to be decided one after
//! the other (each checks the other's live server state inside the gate), but nothing else needs to
//! wait: a single operator-wide lock serialised every reconcile of both kinds behind each other's
//! server round trips, which at 20 ms per request left a 120-object namespace with a 10 s resync
//! never converging. Two Applications never race each other past Block (only an IdP's JIT change
//! and a flow push do), so Applications hold their IdPs' gates shared and an IdP holds its own
//! exclusively: with one exclusive lock per IdP the 1 000 dependents of a hub IdP were created one
//! at a time (BENCHMARKS.md, the hub run). tokio's lock is fair, so a waiting IdP is not starved by
//! a stream of Applications. Locks are taken in sorted order, so two reconciles that need
//! overlapping sets cannot deadlock.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// The per-IdP locks, created on first use (one small entry per IdentityProvider ever seen).
#[derive(Default)]
pub struct BlockGate {
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
    /// Per IdP (gate key): its server id and its JIT there (as the rule sees it), as its last pass in this
    /// process left it, recorded inside its gate. An Application's Block check reads it inside the
    /// same gate instead of asking the server: whichever of the two goes second sees the other.
    jit: Mutex<HashMap<String, (String, crate::flow::Jit)>>,
}

/// Held while a Block decision and the change it guards run; dropping it releases every lock.
pub struct Held {
    _guards: Vec<Guard>,
}

/// One IdP's gate, held shared (an Application) or exclusively (the IdP itself).
enum Guard {
    Shared(#[allow(dead_code)] OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] OwnedRwLockWriteGuard<()>),
}

impl BlockGate {
    /// Locks the gate of an IdentityProvider (by `namespace/name`) exclusively: for its own JIT
    /// decision, which must not overlap any dependent's flow push.
    pub async fn lock(&self, idp: String) -> Held {
        let lock = self.lock_for(idp);
        Held {
            _guards: vec![Guard::Exclusive(lock.write_owned().await)],
        }
    }

    /// Locks the gates of these IdentityProviders shared, in sorted order: for an Application's
    /// flow decision, which must not overlap their JIT changes but may overlap other Applications.
    pub async fn lock_shared(&self, idps: impl IntoIterator<Item = String>) -> Held {
        let keys: BTreeSet<String> = idps.into_iter().collect();
        let mut guards = Vec::with_capacity(keys.len());
        for key in keys {
            guards.push(Guard::Shared(self.lock_for(key).read_owned().await));
        }
        Held { _guards: guards }
    }

    fn lock_for(&self, key: String) -> Arc<RwLock<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key).or_default().clone()
    }
}

impl BlockGate {
    /// Records an IdP's JIT on the server (call inside its gate, after reading or writing it).
    pub fn record_jit(&self, key: &str, id: &str, state: crate::flow::Jit) {
        let mut jit = self.jit.lock().unwrap_or_else(|e| e.into_inner());
        jit.insert(key.to_string(), (id.to_string(), state));
    }

    /// An IdP's JIT on the server as recorded for server id `id`, if this process knows it.
    pub fn recorded_jit(&self, key: &str, id: &str) -> Option<crate::flow::Jit> {
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
        gate.record_jit(&k, "i1", crate::flow::Jit::SkippedOnLookupFailure);
        assert_eq!(
            gate.recorded_jit(&k, "i1"),
            Some(crate::flow::Jit::SkippedOnLookupFailure)
        );
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
        let _a = gate.lock(key(Some("ns"), "a")).await;
        let b = gate.lock(key(Some("ns"), "b")).now_or_never();
        assert!(b.is_some(), "a lock on b must not wait for a");
        let app = gate.lock_shared([key(Some("ns"), "c")]).now_or_never();
        assert!(app.is_some(), "an Application on c must not wait for a");
    }

    #[tokio::test]
    async fn applications_share_an_idp_and_its_jit_change_waits_for_them() {
        let gate = BlockGate::default();
        let (a, b) = (key(Some("ns"), "a"), key(Some("ns"), "b"));
        let app1 = gate.lock_shared([b.clone(), a.clone()]).await;
        let app2 = gate.lock_shared([a.clone()]).now_or_never();
        assert!(app2.is_some(), "two Applications on one IdP do not wait");
        let mut idp = Box::pin(gate.lock(a.clone()));
        assert!((&mut idp).now_or_never().is_none(), "the IdP waits");
        drop(app2);
        assert!((&mut idp).now_or_never().is_none(), "for every Application");
        drop(app1);
        let idp = idp.now_or_never().expect("then it runs");
        let mut app3 = Box::pin(gate.lock_shared([a]));
        assert!(
            (&mut app3).now_or_never().is_none(),
            "a flow push waits for the IdP's JIT change"
        );
        drop(idp);
        assert!(app3.now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_waiting_idp_is_not_starved_by_new_applications() {
        let gate = BlockGate::default();
        let a = key(Some("ns"), "a");
        let app1 = gate.lock_shared([a.clone()]).await;
        let mut idp = Box::pin(gate.lock(a.clone()));
        assert!((&mut idp).now_or_never().is_none());
        let mut app2 = Box::pin(gate.lock_shared([a.clone()]));
        assert!(
            (&mut app2).now_or_never().is_none(),
            "an Application arriving after the IdP queues behind it"
        );
        drop(app1);
        let held = idp.now_or_never().expect("the IdP goes next");
        drop(held);
        assert!(app2.now_or_never().is_some());
    }
}
