//! Deleting the server object of an IdentityProvider or Application when its Kubernetes object goes,
//! as planned by [`managed::plan_cleanup`]. The finalizer is released only once the server object
//! is gone (or provably never existed) or the policy is Orphan. When the backend's Secret went
//! first (a namespace delete, a GitOps prune) the client the registry cached is used. When the
//! server refuses, or no client is at hand, the object keeps its finalizer and says why and how to
//! unblock (condition by the caller's report step, Warning Event here).

use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::kind::{self, Managed};
use super::managed::{self, CleanupPlan, CREATE_PENDING};
use super::{publish, Context, Error};
use crate::api::{BackendRef, DeletionPolicy, IdentityBackend};
use crate::backend::IdentityServer;

/// What cleanup needs to know about the object.
pub struct Owned<'a> {
    /// Delete or Orphan.
    pub policy: DeletionPolicy,
    /// Its backend.
    pub backend_ref: &'a BackendRef,
    /// Its server name.
    pub display_name: &'a str,
    /// Its server id, if known.
    pub id: Option<String>,
}

/// The client for a backend: a fresh one when the backend and its Secret are usable, else the one
/// the registry cached before they went. `Err` says why there is none.
pub async fn client_for_cleanup(
    ctx: &Context,
    ns: &str,
    backend_ref: &BackendRef,
) -> Result<Arc<dyn IdentityServer>, String> {
    let key: ObjectRef<IdentityBackend> = ObjectRef::new(&backend_ref.name).within(ns);
    let fresh = match ctx.backends.get(&key) {
        Some(b) => ctx
            .registry
            .client_for(&ctx.client, &b)
            .await
            .map_err(|e| format!("IdentityBackend {}: {e}", backend_ref.name)),
        None => Err(format!("IdentityBackend {} is gone", backend_ref.name)),
    };
    match fresh {
        Ok(c) => Ok(c),
        Err(why) => ctx.registry.cached(&key).await.ok_or(why),
    }
}

/// Deletes (or orphans) the server object of `obj`. `Err(Error::Blocked)` keeps the finalizer.
pub async fn release<K: Managed>(
    ctx: &Context,
    obj: &K,
    owned: Owned<'_>,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let uid = obj.uid().unwrap_or_default();
    let pending_mine = obj.annotations().get(CREATE_PENDING) == Some(&uid);
    let client = if owned.policy == DeletionPolicy::Delete {
        Some(client_for_cleanup(ctx, &ns, owned.backend_ref).await)
    } else {
        None
    };
    let available = match &client {
        Some(Err(why)) => Err(why.clone()),
        _ => Ok(()),
    };
    let plan =
        managed::plan_cleanup::<K>(owned.policy, owned.id.as_deref(), pending_mine, available);
    let noun = K::NOUN;
    let id = match plan {
        CleanupPlan::Release(reason, note) => {
            if owned.policy == DeletionPolicy::Orphan {
                if let Some(id) = &owned.id {
                    release_marker(ctx, obj, &owned, &ns, id, &uid).await;
                }
            }
            publish(ctx, obj, EventType::Normal, reason, "Delete", note).await;
            return Ok(Action::await_change());
        }
        CleanupPlan::Stuck { reason, message } => {
            return Err(stuck(ctx, obj, reason, message).await);
        }
        CleanupPlan::Delete(id) => Some(id),
        CleanupPlan::DeletePending => None,
    };
    let Some(Ok(client)) = client else {
        return Err(Error::Internal(
            "cleanup planned a delete without a client".into(),
        ));
    };
    let id = match id {
        Some(id) => id,
        // A create may have reached the server before a crash: delete what it made, proven ours by
        // the marker; anything else with that name is someone else's.
        None => match kind::find::<K>(client.as_ref(), owned.display_name).await {
            Ok(Some(f))
                if managed::marker(f.description.as_deref()).is_some_and(|m| m.uid == uid) =>
            {
                f.id
            }
            Ok(_) => {
                let note =
                    format!("the interrupted create left no {noun} of this object on the server");
                publish(
                    ctx,
                    obj,
                    EventType::Normal,
                    "NothingToDelete",
                    "Delete",
                    note,
                )
                .await;
                return Ok(Action::await_change());
            }
            Err(e) => {
                let message =
                    format!("looking up the {noun} an interrupted create may have made: {e}");
                return Err(stuck(ctx, obj, "DeleteFailed", message).await);
            }
        },
    };
    match K::delete_server(client.as_ref(), &id).await {
        Ok(existed) => {
            let text = if existed {
                format!("deleted {noun} {id} on the server")
            } else {
                format!("{noun} {id} was already gone")
            };
            publish(ctx, obj, EventType::Normal, "Deleted", "Delete", text).await;
            Ok(Action::await_change())
        }
        Err(e) if e.is_not_found() => Ok(Action::await_change()),
        Err(e) if e.is_retryable() => Err(super::backend_err(format!("deleting {noun} {id}"))(e)),
        Err(e) => {
            let (reason, message) = managed::delete_refused::<K>(&id, &e);
            Err(stuck(ctx, obj, reason, message).await)
        }
    }
}

/// Orphan: the server object stays, and so would this object's owner marker in its description,
/// which makes every other object's adoption of it refused (`ManagedByAnother`). Remove the marker,
/// so that another object (say, in the namespace the application moves to) may adopt it. Best
/// effort: Orphan never blocks a deletion; when the marker cannot be removed a Warning Event says
/// how to remove it by hand. Only our own marker is removed.
async fn release_marker<K: Managed>(
    ctx: &Context,
    obj: &K,
    owned: &Owned<'_>,
    ns: &str,
    id: &str,
    uid: &str,
) {
    let noun = K::NOUN;
    let result = async {
        let client = client_for_cleanup(ctx, ns, owned.backend_ref).await?;
        let found = kind::get::<K>(client.as_ref(), id)
            .await
            .map_err(|e| e.to_string())?;
        let Some(found) = found else {
            return Ok(());
        };
        if managed::marker(found.description.as_deref()).is_none_or(|m| m.uid != uid) {
            return Ok(());
        }
        let text = managed::strip_markers(found.description.as_deref().unwrap_or_default());
        K::set_server_description(client.as_ref(), id, text)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(why) = result {
        let note = format!(
            "the {noun} {id} stays on the server with this object's owner marker ({why}); before another object can adopt it, remove the [identity-operator.io/owner=...] marker from its description on the server"
        );
        publish(
            ctx,
            obj,
            EventType::Warning,
            "OwnerMarkerKept",
            "Delete",
            note,
        )
        .await;
    }
}

/// A Warning Event and the error that keeps the finalizer (its message becomes the condition).
async fn stuck<K>(ctx: &Context, obj: &K, reason: &'static str, message: String) -> Error
where
    K: Resource<DynamicType = ()>,
{
    publish(
        ctx,
        obj,
        EventType::Warning,
        reason,
        "Delete",
        message.clone(),
    )
    .await;
    Error::Blocked { reason, message }
}
