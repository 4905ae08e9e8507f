//! The managed-resource flow both reconcilers share: **observe** the server into an
//! [`Observation`], **plan** with pure functions ([`plan_identity`], [`plan_cleanup`],
//! [`plan_credentials`], [`error_outcome`]), **act** (the per-kind module runs the operations) and
//! **report** (status, conditions, Events). Modelled on crossplane-runtime's managed reconciler
//! (Observe / Create / Update / Delete with an external-create-pending mark) and the
//! dereference → validate → build → apply → status steps of stackabletech's operators.
//!
//! Only what differs per kind lives in `identity_provider/` / `application/`: how to read,
//! find, create, update and delete on the server ([`Managed`]) and the kind's own plan (JIT under
//! Block, the login flow under Block, the credentials Secret).
//!
//! Ownership is explicit. A server object belongs to a Kubernetes object when its id is in the
//! object's status, or when the object adopted it (`spec.adopt`), or when a create of this very object
//! (its uid in the create-pending mark **and** in the [`owner_marker_of`] written into the
//! description with the POST) made it — and no other object manages it. Ownership is per tenant
//! (the backend's server and organization), not per namespace: the owner marker stays in the
//! description for as long as the object manages the server object, so any operator, after a
//! restart or in another release, sees who does ([`MarkedBy`]). Names compare case-insensitively:
//! the server's database collation may.

mod plan;

pub use super::kind::Found;
pub use super::marker::*;
pub use plan::*;

use kube::api::ObjectMeta;
use kube::runtime::events::EventType;
use std::sync::Arc;

use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use super::conditions::Outcome;
use super::kind;
pub use super::kind::Managed;
use super::{annotate, apply_status, publish, Context, Error};
use crate::api::{BackendRef, DeletionPolicy, IdentityBackend};
use crate::backend::{BackendError, IdentityServer};

/// The finalizer on IdentityProviders and Applications (state outside Kubernetes).
pub const FINALIZER: &str = "identity-operator.io/cleanup";
/// The finalizer on IdentityBackends, held while IdentityProviders or Applications reference it, so
/// that their cleanup still has a backend (and its cached client) when a namespace goes at once.
pub const BACKEND_FINALIZER: &str = "identity-operator.io/backend-in-use";
/// The field manager of every write.
pub const MANAGER: &str = "identity-operator";
/// Marks a create in flight with the object's uid: set before the POST, removed once the id is in
/// status or when the server refused the POST. After a crash in between, a server object found by
/// name is this object's only when it also carries an owner marker ([`marker`]) with this uid.
pub const CREATE_PENDING: &str = "identity-operator.io/create-pending";
/// The resourceVersion of the client Secret last pushed to an IdP, so a Secret edit is pushed even
/// though the server never shows the secret back.
pub const SECRET_VERSION: &str = "identity-operator.io/client-secret-version";
/// The label on Secrets the operator created (with a controller owner reference).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "identity-operator");

/// What a step of an apply returns: `Ok(Err(outcome))` ends the pass with that outcome.
pub type Step<T> = Result<Result<T, Outcome>, Error>;

/// An object from `cache` when `usable` accepts the cached copy, else read fresh from the
/// apiserver (`None` when it does not exist). The trigger that started a reconcile may have come on
/// another watch than the cache's, so the cache can lag behind it by a moment.
pub async fn cached_or_read<K>(
    client: &kube::Client,
    cache: &Store<K>,
    key: &ObjectRef<K>,
    usable: impl Fn(&K) -> bool,
) -> Result<Option<Arc<K>>, Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    if let Some(cached) = cache.get(key).filter(|k| usable(k)) {
        return Ok(Some(cached));
    }
    let ns = key.namespace.as_deref().unwrap_or_default();
    Ok(Api::<K>::namespaced(client.clone(), ns)
        .get_opt(&key.name)
        .await?
        .map(Arc::new))
}

/// The IdentityBackend an object names: from the cache, else read fresh from the apiserver. Right
/// after a backend is created the cache can lag behind the object that names it; reporting
/// `BackendNotFound` ("create it") for a backend that exists would be false, if only for a moment.
pub async fn find_backend(
    ctx: &Context,
    ns: &str,
    name: &str,
) -> Result<Option<Arc<IdentityBackend>>, Error> {
    cached_or_read(
        &ctx.client,
        &ctx.backends,
        &ObjectRef::new(name).within(ns),
        |_| true,
    )
    .await
}

/// Dereference, the first step of every apply: the IdentityBackend `backend_ref` names and the
/// client for it, or the outcome that says why there is none.
pub async fn backend_client(
    ctx: &Context,
    ns: &str,
    backend_ref: &BackendRef,
) -> Step<(Arc<IdentityBackend>, Arc<dyn IdentityServer>)> {
    let name = &backend_ref.name;
    let Some(backend) = find_backend(ctx, ns, name).await? else {
        let msg = format!("IdentityBackend {name} not found in namespace {ns}: create it");
        return Ok(Err(Outcome::stalled("BackendNotFound", msg)));
    };
    Ok(match ctx.registry.client_for(&ctx.client, &backend).await {
        Ok(client) => Ok((backend, client)),
        Err(e) => Err(Outcome::stalled(
            e.reason(),
            format!("IdentityBackend {name}: {e}"),
        )),
    })
}

/// Report: publishes the [`drift`] Event, if any.
pub async fn report_drift<K: Managed>(
    ctx: &Context,
    obj: &K,
    observed_generation: Option<i64>,
    created: bool,
    changed: &[&str],
) {
    let same_spec = observed_generation == obj.meta().generation;
    if let Some(note) = drift(created, same_spec, changed) {
        publish(
            ctx,
            obj,
            EventType::Normal,
            "DriftCorrected",
            "Update",
            note,
        )
        .await;
    }
}

/// Observe: read by id, and by name when the id is missing or gone or the name changes. Never writes.
pub async fn observe<K: Managed>(
    client: &dyn IdentityServer,
    id: Option<&str>,
    display_name: &str,
) -> Result<Observation, Error> {
    let (seen, _) = observe_read::<K>(client, id, display_name, true).await?;
    Ok(seen)
}

/// [`observe`], keeping the whole object it read (the recorded one, else the one found by name), so
/// that the pass diffs it without reading it again. `not_new`: a create is pending or the object
/// adopts, so a missing id needs the name looked up (see [`lookup_by_name`]).
pub async fn observe_read<K: Managed>(
    client: &dyn IdentityServer,
    id: Option<&str>,
    display_name: &str,
    not_new: bool,
) -> Result<(Observation, Option<K::Server>), Error> {
    let noun = K::NOUN;
    let mut read = None;
    let by_id = match id {
        None => ById::NotRecorded,
        Some(id) => match kind::read::<K>(client, id)
            .await
            .map_err(super::backend_err(format!("reading {noun} {id}")))?
        {
            Some(r) => {
                let f = K::found(&r);
                read = Some(r);
                ById::Found(f)
            }
            None => ById::Gone(id.to_string()),
        },
    };
    let found_by_name = if lookup_by_name(&by_id, display_name, not_new, false) {
        kind::find_read::<K>(client, display_name)
            .await
            .map_err(super::backend_err(format!("looking up the {noun} by name")))?
    } else {
        None
    };
    let by_name = found_by_name.as_ref().map(K::found);
    if read.is_none() {
        read = found_by_name;
    }
    Ok((Observation { by_id, by_name }, read))
}

/// The claims on the server of the other objects of `obj`'s kind in the cluster cache that point at
/// the same tenant as `obj`, whatever their namespace or backend name: ownership is per tenant,
/// since two namespaces with a backend for one tenant reach the same server objects. An object
/// whose backend is not in the cache (or does not resolve) is left out; the owner marker on the
/// server still stops it from sharing an object.
fn tenant_claims<K: Managed>(ctx: &Context, obj: &K) -> Vec<Claim> {
    // Each backend resolved once per pass, however many objects name it.
    let tenants: std::cell::RefCell<std::collections::HashMap<(String, String), Option<String>>> =
        Default::default();
    let tenant_of = |ns: &str, backend: &BackendRef| {
        tenants
            .borrow_mut()
            .entry((ns.to_string(), backend.name.clone()))
            .or_insert_with(|| {
                ctx.backends
                    .get(&ObjectRef::new(&backend.name).within(ns))
                    .and_then(|b| tenant_key(&b))
            })
            .clone()
    };
    let Some(mine) = tenant_of(&obj.namespace().unwrap_or_default(), obj.backend()) else {
        return Vec::new();
    };
    claims(
        obj.meta(),
        K::cache(ctx).state().iter().map(|o| o.as_ref()),
        |o: &K| {
            let ns = o.namespace().unwrap_or_default();
            (tenant_of(&ns, o.backend()).as_deref() == Some(mine.as_str()))
                .then(|| (o.display_name().to_string(), o.recorded_id()))
        },
    )
}

/// The claims of `others` on the server, seen from `me` (not `me`; `facts` picks those on the
/// same tenant).
pub fn claims<'a, K>(
    me: &ObjectMeta,
    others: impl IntoIterator<Item = &'a K>,
    facts: impl Fn(&K) -> Option<(String, Option<String>)>,
) -> Vec<Claim>
where
    K: kube::Resource + 'a,
{
    let my_key = (me.creation_timestamp.as_ref().map(|t| t.0), me.name.clone());
    others
        .into_iter()
        .filter(|o| o.meta().uid != me.uid && o.meta().deletion_timestamp.is_none())
        .filter_map(|o| {
            let (display_name, id) = facts(o)?;
            let key = (
                o.meta().creation_timestamp.as_ref().map(|t| t.0),
                o.meta().name.clone(),
            );
            Some(Claim {
                object: owner_of(o),
                display_name,
                id,
                older: key < my_key,
            })
        })
        .collect()
}

/// The result of [`identify`].
pub enum Identified<K: Managed> {
    /// The server object that is ours; `created` when this pass created it.
    Ours {
        /// Server id.
        id: String,
        /// Created by this pass. Its create-pending mark is still set: the kind's report step
        /// clears it once the id is in status ([`pending_done`]).
        created: bool,
        /// The whole object, when observe read it (so the pass need not read it again).
        read: Option<K::Server>,
    },
    /// No server object to work on: report `outcome`, keep `id` in status.
    Stop {
        /// What to report.
        outcome: Outcome,
        /// The id status keeps (none when the recorded one is gone).
        id: Option<String>,
    },
}

/// A brand-new object (no finalizer, no id, no pending mark, not adopting) gets its finalizer and
/// its create-pending mark in one metadata patch (kube's finalizer helper would add the finalizer
/// alone and wait for the next event; the create then set the mark in a second patch). Returns the
/// patched object, which the finalizer helper then applies at once; unchanged when not new, or
/// when the object changed meanwhile (the helper then adds the finalizer as usual).
pub async fn claim<K: Managed>(ctx: &Context, api: &Api<K>, obj: Arc<K>) -> Result<Arc<K>, Error> {
    let uid = obj.uid().unwrap_or_default();
    let new = !obj.finalizers().iter().any(|f| f == FINALIZER)
        && obj.meta().deletion_timestamp.is_none()
        && obj.recorded_id().is_none()
        && !obj.adopt()
        && !obj.annotations().contains_key(CREATE_PENDING)
        && !uid.is_empty();
    if !new {
        return Ok(obj);
    }
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": obj.resource_version(),
        "finalizers": finalizers,
        "annotations": {CREATE_PENDING: uid},
    }});
    let params = kube::api::PatchParams::default();
    match api
        .patch(&obj.name_any(), &params, &kube::api::Patch::Merge(&patch))
        .await
    {
        Ok(patched) => {
            ctx.memo.fresh_pending(&uid);
            Ok(Arc::new(patched))
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(obj),
        Err(e) => Err(e.into()),
    }
}

/// Observe → plan → act for the identity of a managed object: which server object is ours, creating
/// it (crash-safe: pending mark and uid marker first; the id is persisted right after the create,
/// before the marker is replaced, and the report step then clears the mark) when there is none. A brand-new object is created without a lookup by
/// name first; a name conflict (409) is looked up then. `create` gets the description to send (the
/// ownership marker) and returns the new id.
pub async fn identify<K: Managed>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    client: &dyn IdentityServer,
    create: impl AsyncFnOnce(String) -> Result<String, BackendError>,
) -> Result<Identified<K>, Error> {
    let noun = K::NOUN;
    let uid = obj.uid().unwrap_or_default();
    let recorded = ctx.memo.owned_id(&uid, obj.recorded_id());
    // A mark [`claim`] set in this process for a brand-new object stands for no create yet: the
    // object is planned as new (no lookup by name), and the mark is not set again.
    let fresh = ctx.memo.take_fresh_pending(&uid);
    let pending = obj
        .annotations()
        .get(CREATE_PENDING)
        .map(String::as_str)
        .filter(|_| !fresh);
    let not_new = pending.is_some() || obj.adopt();
    let (seen, read) =
        observe_read::<K>(client, recorded.as_deref(), obj.display_name(), not_new).await?;
    let others = tenant_claims(ctx, obj);
    let owner = owner_of(obj);
    let me = Identity {
        uid: &uid,
        display_name: obj.display_name(),
        owner: &owner,
        adopt: obj.adopt(),
        pending,
    };
    let gone = match &seen.by_id {
        ById::Gone(id) => Some(id.clone()),
        _ => None,
    };
    let read_of = |id: &str| read.clone().filter(|r| K::found(r).id == id);
    match plan_identity::<K>(&me, &seen, &others) {
        IdentityPlan::Existing { id, .. } => {
            ctx.memo.remember_id(&uid, &id);
            let read = read_of(&id);
            Ok(Identified::Ours {
                id,
                created: false,
                read,
            })
        }
        plan @ (IdentityPlan::Adopt(_) | IdentityPlan::Recover(_)) => {
            let (reason, f) = match plan {
                IdentityPlan::Recover(f) => ("Recovered", f),
                IdentityPlan::Adopt(f) => ("Adopted", f),
                _ => return Err(Error::Internal("unreachable identity plan".into())),
            };
            let note = if reason == "Recovered" {
                format!("found {noun} {} created before a restart (it carries this object's uid); taking it over", f.id)
            } else {
                format!("adopted the existing {noun} {} ({})", f.name, f.id)
            };
            let read = read_of(&f.id);
            take_over(
                ctx,
                api,
                obj,
                reason,
                note,
                f.id,
                me.pending.is_some(),
                read,
            )
            .await
        }
        IdentityPlan::Clash {
            reason,
            message,
            clear_pending,
        } => {
            if clear_pending || fresh {
                annotate(api, obj, CREATE_PENDING, None).await?;
            }
            let id = if gone.is_some() { None } else { recorded };
            Ok(Identified::Stop {
                outcome: Outcome::stalled(reason, message),
                id,
            })
        }
        IdentityPlan::Create { recreate } => {
            if let Some(old) = &gone {
                let note = format!("{noun} {old} was deleted on the server behind the operator's back; recreating it");
                publish(
                    ctx,
                    obj,
                    EventType::Warning,
                    "DeletedOnServer",
                    "Observe",
                    note,
                )
                .await;
            }
            if !fresh {
                annotate(api, obj, CREATE_PENDING, Some(uid.as_str())).await?;
            }
            let id = match create(obj.server_description()).await {
                Ok(id) => id,
                Err(e) => {
                    let conflict = matches!(e, BackendError::AlreadyExists { .. });
                    let committed = may_have_committed(&e);
                    // The mark is set (by this pass or by claim): the object the server may hold
                    // under this name is ours if it carries our uid marker. Look before clearing:
                    // a create that committed but whose answer was lost or unusable would
                    // otherwise end AlreadyExists forever, its server object leaked on delete.
                    // Not after no answer at all (a timeout, a cut connection): the lookup would
                    // most likely wait as long again; the mark stays and the next pass looks.
                    let answered = !matches!(e, BackendError::Transient { status: None, .. });
                    if (conflict && seen.by_name.is_none()) || (committed && answered) {
                        let mine = Identity {
                            pending: Some(uid.as_str()),
                            ..me.clone()
                        };
                        match after_failed_create::<K>(client, &mine, &seen, &others).await {
                            Ok(Some(AfterCreate::Recover(f))) => {
                                let note = format!(
                                    "the server kept {noun} {} although its answer to the create was unusable ({e}); it carries this object's uid: taking it over",
                                    f.id
                                );
                                return take_over(
                                    ctx,
                                    api,
                                    obj,
                                    "Recovered",
                                    note,
                                    f.id,
                                    true,
                                    None,
                                )
                                .await;
                            }
                            Ok(Some(AfterCreate::Stop(stop))) => {
                                annotate(api, obj, CREATE_PENDING, None).await?;
                                return Ok(stop);
                            }
                            Ok(None) => {}
                            // The lookup failing too says nothing new: keep the mark, report the
                            // create's error (a later pass looks again).
                            Err(lookup) if committed => {
                                tracing::debug!(error = %lookup, "lookup after a failed create failed");
                            }
                            Err(lookup) => return Err(lookup),
                        }
                    }
                    // A definite refusal made nothing: the mark must not make a later pass
                    // "recover" whatever someone else creates under this name.
                    if !committed {
                        annotate(api, obj, CREATE_PENDING, None).await?;
                    }
                    return Err(super::backend_err(format!("creating the {noun}"))(e));
                }
            };
            // The id reaches status at once: a crash before it would leave only the pending mark
            // and the owner marker (which stays) to recover the object by
            // (tests/faults.rs sigkill_mid_reconcile_leaves_no_duplicates).
            apply_status(api, obj, None, &obj.status_with_id(&id)).await?;
            ctx.memo.remember_id(&uid, &id);
            let verb = if recreate { "recreated" } else { "created" };
            let note = format!("{verb} {noun} {} ({id})", obj.display_name());
            publish(ctx, obj, EventType::Normal, "Created", "Create", note).await;
            Ok(Identified::Ours {
                id,
                created: true,
                read: None,
            })
        }
    }
}

/// What a lookup by name after a failed create found.
enum AfterCreate<K: Managed> {
    /// Our own object (it carries our uid marker): the create did commit.
    Recover(Found),
    /// Someone else's: report the clash.
    Stop(Identified<K>),
}

/// A create that failed with a name conflict observe did not look up (a brand-new object), or
/// whose answer was lost or unusable: look the name up now and plan again with our create-pending
/// mark, so that our own object is recovered by its uid marker and anyone else's is reported
/// exactly as if it had been seen first. `None` when nothing of that name is found.
async fn after_failed_create<K: Managed>(
    client: &dyn IdentityServer,
    me: &Identity<'_>,
    seen: &Observation,
    others: &[Claim],
) -> Result<Option<AfterCreate<K>>, Error> {
    let noun = K::NOUN;
    let by_name = kind::find::<K>(client, me.display_name)
        .await
        .map_err(super::backend_err(format!("looking up the {noun} by name")))?;
    if by_name.is_none() {
        return Ok(None);
    }
    let again = Observation {
        by_id: seen.by_id.clone(),
        by_name,
    };
    Ok(match plan_identity::<K>(me, &again, others) {
        IdentityPlan::Recover(f) => Some(AfterCreate::Recover(f)),
        IdentityPlan::Clash {
            reason, message, ..
        } => Some(AfterCreate::Stop(Identified::Stop {
            outcome: Outcome::stalled(reason, message),
            id: None,
        })),
        _ => None,
    })
}

/// Takes a found server object over (adopted, or recovered by its uid marker): Event, id to
/// status, and the create-pending mark (`pending`: it is set) removed once the id is there.
#[allow(clippy::too_many_arguments)]
async fn take_over<K: Managed>(
    ctx: &Context,
    api: &Api<K>,
    obj: &K,
    reason: &'static str,
    note: String,
    id: String,
    pending: bool,
    read: Option<K::Server>,
) -> Result<Identified<K>, Error> {
    let uid = obj.uid().unwrap_or_default();
    publish(ctx, obj, EventType::Normal, reason, "Adopt", note).await;
    apply_status(api, obj, None, &obj.status_with_id(&id)).await?;
    ctx.memo.remember_id(&uid, &id);
    if pending {
        annotate(api, obj, CREATE_PENDING, None).await?;
    }
    Ok(Identified::Ours {
        id,
        created: false,
        read,
    })
}

/// Report: an error ends as `Ready=False` with its reason and message on the object (through the
/// kind's `finish`), and is still returned so that the error policy backs off.
pub async fn report<F>(
    result: Result<Outcome, Error>,
    finish: F,
) -> Result<kube::runtime::controller::Action, Error>
where
    F: AsyncFnOnce(Outcome) -> Result<kube::runtime::controller::Action, Error>,
{
    match result {
        Ok(outcome) => finish(outcome).await,
        Err(e) => {
            if let Err(write) = finish(error_outcome(&e)).await {
                tracing::warn!(error = %write, "could not report the error on the object");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
