//! The Secrets an IdentityBackend's client is built from (credentials and CA bundle) carry the
//! finalizer [`SECRET_FINALIZER`] while the backend exists, so that they outlive the objects
//! whose cleanup needs them (issue 24 item 6).
//!
//! Why: deleting a namespace deletes everything in it at once, Secrets included, and Secrets go
//! at once. The IdentityProviders' and Applications' finalizers then delete their server objects
//! with the client the registry cached, which lives in this process's memory only. A restart in
//! that window left a new process with no Secret to log in with: the objects hung (finalizer
//! kept) or, with the finalizer dropped, their server objects leaked. Held, the Secret stays
//! readable (Terminating) until the backend itself is released, which happens only once nothing
//! uses it. Kubernetes does the same for a PersistentVolumeClaim a Pod uses
//! (`kubernetes.io/pvc-protection`).
//!
//! The hold is placed only once a client was built from the Secret (so the credentials Secret
//! carries its consent label) and only by the operator's existing `patch` right on Secrets; it is
//! released when no IdentityBackend of the namespace needs that Secret any more (the backend is
//! released, or its `credentialsSecretRef` now names another Secret). Deleting a held Secret while
//! its backend still uses it leaves it Terminating until then; rotate credentials by updating the
//! Secret in place, or point the backend at a new Secret.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::{Api, Client, ResourceExt};

use crate::api::IdentityBackend;

/// The finalizer on a Secret a backend's client was built from.
pub const SECRET_FINALIZER: &str = "identity-operator.io/credentials-in-use";

/// One Secret of the namespace as the plan sees it.
#[derive(Debug, Clone)]
pub struct SecretState<'a> {
    /// Its name.
    pub name: &'a str,
    /// Whether it carries [`SECRET_FINALIZER`].
    pub held: bool,
    /// Whether it is being deleted (no finalizer can be added then).
    pub deleting: bool,
}

/// A change to one Secret's finalizers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldChange {
    /// Add [`SECRET_FINALIZER`].
    Hold(String),
    /// Remove [`SECRET_FINALIZER`].
    Release(String),
}

/// What to change, given the Secrets of a namespace, the names some backend still needs and the
/// names to hold now (a subset of `needed`: those a client was just built from). Pure.
pub fn plan(
    secrets: &[SecretState<'_>],
    needed: &BTreeSet<String>,
    hold: &BTreeSet<String>,
) -> Vec<HoldChange> {
    secrets
        .iter()
        .filter_map(|s| {
            if s.held && !needed.contains(s.name) {
                Some(HoldChange::Release(s.name.to_owned()))
            } else if !s.held && !s.deleting && hold.contains(s.name) {
                Some(HoldChange::Hold(s.name.to_owned()))
            } else {
                None
            }
        })
        .collect()
}

/// The Secrets `backend` builds its client from.
pub fn secrets_of(backend: &IdentityBackend) -> BTreeSet<String> {
    let mut names = BTreeSet::from([backend.spec.credentials_secret_ref.name.clone()]);
    if let Some(r) = &backend.spec.ca_bundle_secret_ref {
        names.insert(r.name.clone());
    }
    names
}

/// The Secrets the backends of a namespace still need: those of every backend that is not being
/// deleted, and of one being deleted while objects still use it (`in_use`). `except` is left out
/// (the backend being released).
pub fn needed_by<'a>(
    backends: impl IntoIterator<Item = &'a IdentityBackend>,
    in_use: impl Fn(&IdentityBackend) -> bool,
    except: Option<&str>,
) -> BTreeSet<String> {
    backends
        .into_iter()
        .filter(|b| Some(b.name_any().as_str()) != except)
        .filter(|b| b.metadata.deletion_timestamp.is_none() || in_use(b))
        .flat_map(secrets_of)
        .collect()
}

/// The plan's view of a cached Secret.
pub fn state(secret: &PartialObjectMeta<KubeSecret>) -> SecretState<'_> {
    SecretState {
        name: secret.metadata.name.as_deref().unwrap_or_default(),
        held: secret.finalizers().iter().any(|f| f == SECRET_FINALIZER),
        deleting: secret.metadata.deletion_timestamp.is_some(),
    }
}

/// Applies one change with a merge patch that carries the resourceVersion it was planned from, so
/// a concurrent change to the Secret (another finalizer, say) makes it fail with 409 and the
/// reconcile retry instead of overwriting it. A Secret that is gone needs nothing.
pub async fn apply(
    client: &Client,
    ns: &str,
    secret: &PartialObjectMeta<KubeSecret>,
    change: &HoldChange,
) -> Result<(), kube::Error> {
    let current = secret.finalizers();
    let (name, next): (&str, Vec<&str>) = match change {
        HoldChange::Hold(name) => (
            name,
            current
                .iter()
                .map(String::as_str)
                .chain([SECRET_FINALIZER])
                .collect(),
        ),
        HoldChange::Release(name) => (
            name,
            current
                .iter()
                .map(String::as_str)
                .filter(|f| *f != SECRET_FINALIZER)
                .collect(),
        ),
    };
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": secret.resource_version(), "finalizers": next}
    });
    let api: Api<KubeSecret> = Api::namespaced(client.clone(), ns);
    match api
        .patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn holds_what_a_client_was_built_from_and_releases_what_nobody_needs() {
        let s = |name, held, deleting| SecretState {
            name,
            held,
            deleting,
        };
        // (secrets, needed, hold, expected)
        type Case<'a> = (
            Vec<SecretState<'a>>,
            Vec<&'a str>,
            Vec<&'a str>,
            Vec<HoldChange>,
        );
        let cases: Vec<Case> = vec![
            // A fresh client: its Secret gets the hold.
            (
                vec![s("m2m", false, false)],
                vec!["m2m"],
                vec!["m2m"],
                vec![HoldChange::Hold("m2m".into())],
            ),
            // Already held: nothing to do (no request).
            (
                vec![s("m2m", true, false)],
                vec!["m2m"],
                vec!["m2m"],
                vec![],
            ),
            // Needed by a backend whose client was not (re)built now: kept, never added.
            (vec![s("m2m", false, false)], vec!["m2m"], vec![], vec![]),
            // The backend now names another Secret: the old one is let go, the new one held.
            (
                vec![s("old", true, false), s("new", false, false)],
                vec!["new"],
                vec!["new"],
                vec![
                    HoldChange::Release("old".into()),
                    HoldChange::Hold("new".into()),
                ],
            ),
            // A held Secret being deleted while still needed stays held (Terminating).
            (vec![s("m2m", true, true)], vec!["m2m"], vec![], vec![]),
            // ... and goes once nothing needs it.
            (
                vec![s("m2m", true, true)],
                vec![],
                vec![],
                vec![HoldChange::Release("m2m".into())],
            ),
            // Being deleted and not held: no finalizer may be added to a deleting object.
            (
                vec![s("m2m", false, true)],
                vec!["m2m"],
                vec!["m2m"],
                vec![],
            ),
            // Secrets the operator never held are never touched.
            (vec![s("other", false, false)], vec![], vec![], vec![]),
        ];
        for (i, (secrets, needed, hold, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                plan(&secrets, &names(&needed), &names(&hold)),
                want,
                "case {i}"
            );
        }
    }

    fn backend(name: &str, secret: &str, ca: Option<&str>, deleting: bool) -> IdentityBackend {
        let mut spec = serde_json::json!({
            "asgardeo": {"organization": "acme"},
            "credentialsSecretRef": {"name": secret},
        });
        if let Some(ca) = ca {
            spec["caBundleSecretRef"] = serde_json::json!({"name": ca, "key": "ca.crt"});
        }
        let mut b: IdentityBackend = serde_json::from_value(serde_json::json!({
            "apiVersion": "identity-operator.io/v1alpha1",
            "kind": "IdentityBackend",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": spec,
        }))
        .expect("backend");
        if deleting {
            b.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
            );
        }
        b
    }

    #[test]
    fn a_backend_needs_its_secrets_until_it_is_released() {
        let a = backend("a", "m2m-a", Some("ca"), false);
        let b = backend("b", "m2m-b", None, true);
        let c = backend("c", "m2m-a", None, false);
        let nobody = |_: &IdentityBackend| false;
        let everybody = |_: &IdentityBackend| true;
        assert_eq!(needed_by([&a, &b], nobody, None), names(&["ca", "m2m-a"]));
        // Being deleted but still used by objects whose cleanup needs it.
        assert_eq!(
            needed_by([&a, &b], everybody, None),
            names(&["ca", "m2m-a", "m2m-b"])
        );
        // The backend being released is left out, but a Secret another backend shares stays.
        assert_eq!(needed_by([&a, &c], nobody, Some("a")), names(&["m2m-a"]));
        assert_eq!(needed_by([&a], nobody, Some("a")), names(&[]));
    }
}
