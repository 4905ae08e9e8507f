//! The shared watches the three controllers are built on: one watch per kind fanned out to every
//! subscriber, objects stripped of what the operator never reads, and the mappers from a watched
//! object to the objects to reconcile.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Stream, TryStreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{predicates, watcher, WatchStreamExt};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

pub(super) fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Watch reconnection backoff: 250 ms doubling to at most 5 s, with jitter, reset after a success.
/// kube's default goes up to 30 s, which after an apiserver restart left the operator blind for up
/// to a minute; a watch retry is cheap for the apiserver.
#[derive(Clone)]
pub(super) struct QuickBackoff {
    next: Duration,
}

impl Default for QuickBackoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(250),
        }
    }
}

impl Iterator for QuickBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        use rand::Rng;
        let base = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 2);
        Some(base + Duration::from_millis(jitter))
    }
}

impl kube::runtime::utils::Backoff for QuickBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The annotation `kubectl apply` (client-side) keeps the whole last applied object in: a second copy
/// of the spec that nothing here reads.
pub(super) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the controllers never read from an object before it is cached or handed on:
/// managedFields (often larger than the spec, one entry per field manager) and the last-applied
/// annotation. This is most of an object's size in the caches.
pub(super) fn strip<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
    if let Some(a) = obj.meta_mut().annotations.as_mut() {
        a.remove(LAST_APPLIED);
    }
}

/// Subscribers of one watch: each gets every object the watch touches (applied or deleted), as one
/// shared `Arc`. Unbounded because every receiver is a controller's trigger input, which the
/// controller drains eagerly into its scheduler (deduplicated there); a bounded channel would only
/// add a way for two controllers to wait on each other.
pub(super) struct FanOut<K> {
    senders: Vec<mpsc::UnboundedSender<Arc<K>>>,
}

impl<K> FanOut<K> {
    pub(super) fn new() -> Self {
        Self {
            senders: Vec::new(),
        }
    }

    /// A new trigger stream fed by this watch.
    pub(super) fn subscribe(&mut self) -> mpsc::UnboundedReceiver<Arc<K>> {
        let (tx, rx) = mpsc::unbounded();
        self.senders.push(tx);
        rx
    }

    fn send(&self, event: &watcher::Event<K>)
    where
        K: Clone,
    {
        let obj = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
                o
            }
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        if self.senders.is_empty() {
            return;
        }
        let obj = Arc::new(obj.clone());
        for tx in &self.senders {
            // A closed receiver is a controller that stopped (shutdown): nothing to tell it.
            let _ = tx.unbounded_send(obj.clone());
        }
    }
}

/// The one watch of kind `K` in a scope: it fills the cache (stripped, see [`strip`]) and feeds the
/// subscribers' triggers. The returned stream must be polled (by the primary controller, or a task).
///
/// kube-runtime's own shared reflector (`store_shared` + `reflect_shared` + `subscribe`) would do
/// the fan-out, but as of kube-runtime 5.0 it forwards only applied objects, never deletions, and
/// these triggers need deletions (a deleted credentials Secret is recreated by its Application; a
/// deleted object leaves its IdPs' dependents).
pub(super) fn shared_watch<K>(
    api: Api<K>,
    fan_out: FanOut<K>,
) -> (
    Store<K>,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default())
        .backoff(QuickBackoff::default())
        .modify(strip::<K>)
        .reflect(writer)
        .inspect_ok(move |event| fan_out.send(event));
    (store, stream)
}

/// The objects of kind `K` in `ns` that `pick` selects, from a cache (no API call).
pub(super) fn select<K>(
    store: &Store<K>,
    ns: Option<String>,
    pick: impl Fn(&K) -> bool,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace() == ns && pick(o))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// A primary controller's input from its kind's shared watch.
pub(super) fn primary<K>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + 'static,
{
    events
        .applied_objects()
        // Status writes do not change the generation: they must not trigger a reconcile of their own
        // object (that is how operators loop). Deletion bumps the generation; finalizer edits count.
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Application;
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Secret as KubeSecret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::api::ObjectMeta;
    use kube::core::PartialObjectMeta;

    fn secret(name: &str) -> PartialObjectMeta<KubeSecret> {
        PartialObjectMeta::<KubeSecret> {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                annotations: Some(
                    [
                        (LAST_APPLIED.to_string(), "{\"big\":true}".to_string()),
                        ("keep".to_string(), "me".to_string()),
                    ]
                    .into(),
                ),
                managed_fields: Some(vec![ManagedFieldsEntry {
                    manager: Some("kubectl".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_secret_watch_asks_for_metadata_only() {
        // What keeps secret values out of the list/watch responses (and the operator's memory): kube
        // sends `Accept: application/json;as=PartialObjectMetadata...` for this type. A kube upgrade
        // that changed it would need `metadata_watcher` back.
        assert!(PartialObjectMeta::<KubeSecret>::metadata_api());
        assert!(!Application::metadata_api());
    }

    #[test]
    fn strip_drops_managed_fields_and_last_applied_only() {
        let mut s = secret("a");
        strip(&mut s);
        assert_eq!(s.metadata.managed_fields, None);
        let annotations = s.metadata.annotations.unwrap_or_default();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations.get("keep").map(String::as_str), Some("me"));
        assert_eq!(s.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn fan_out_hands_applies_and_deletions_to_every_subscriber() {
        let mut fan = FanOut::new();
        let mut first = fan.subscribe();
        let mut second = fan.subscribe();
        fan.send(&watcher::Event::Init);
        fan.send(&watcher::Event::InitApply(secret("a")));
        fan.send(&watcher::Event::InitDone);
        fan.send(&watcher::Event::Apply(secret("b")));
        fan.send(&watcher::Event::Delete(secret("a")));
        drop(fan);
        for rx in [&mut first, &mut second] {
            let names: Vec<_> = futures::executor::block_on(rx.collect::<Vec<_>>())
                .iter()
                .map(|s| s.name_any())
                .collect();
            assert_eq!(names, ["a", "b", "a"]);
        }
    }

    #[test]
    fn a_stopped_subscriber_does_not_stop_the_others() {
        let mut fan = FanOut::new();
        drop(fan.subscribe());
        let mut alive = fan.subscribe();
        fan.send(&watcher::Event::Apply(secret("b")));
        drop(fan);
        let got = futures::executor::block_on(alive.next());
        assert_eq!(got.map(|s| s.name_any()).as_deref(), Some("b"));
    }
}
