//! Deleting the server object of an IdentityProvider or Application when its Kubernetes object goes.
//! Never wedges: Orphan keeps it, a missing backend or unusable credentials release the finalizer
//! with a Warning Event, 404 counts as deleted, and a create interrupted by a crash (create-pending
//! mark, no id yet) is found by name and deleted too.

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};

use super::identity_provider::CREATE_PENDING;
use super::{backend_err, publish, Context, Error};
use crate::api::{BackendRef, DeletionPolicy};

/// Which kind of server object.
#[derive(Clone, Copy)]
pub enum ServerKind {
    /// An identity provider.
    IdentityProvider,
    /// An application.
    Application,
}

impl ServerKind {
    fn noun(self) -> &'static str {
        match self {
            ServerKind::IdentityProvider => "identity provider",
            ServerKind::Application => "application",
        }
    }
}

/// What cleanup needs to know about the object.
pub struct Owned<'a> {
    /// The kind on the server.
    pub kind: ServerKind,
    /// Delete or Orphan.
    pub policy: DeletionPolicy,
    /// Its backend.
    pub backend_ref: &'a BackendRef,
    /// Its server name.
    pub display_name: &'a str,
    /// Its server id, if known.
    pub id: Option<String>,
}

/// Deletes (or orphans) the server object of `obj`.
pub async fn release<K>(ctx: &Context, obj: &K, owned: Owned<'_>) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
{
    let noun = owned.kind.noun();
    if owned.policy == DeletionPolicy::Orphan {
        let text = format!("deletionPolicy Orphan: the {noun} stays on the server");
        publish(ctx, obj, EventType::Normal, "Orphaned", "Delete", text).await;
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let Some(backend) = ctx
        .backends
        .get(&ObjectRef::new(&owned.backend_ref.name).within(&ns))
    else {
        let text = format!(
            "IdentityBackend {} is gone: the {noun} is left on the server",
            owned.backend_ref.name
        );
        publish(ctx, obj, EventType::Warning, "BackendGone", "Delete", text).await;
        return Ok(Action::await_change());
    };
    let client = match ctx.registry.client_for(&ctx.client, &backend).await {
        Ok(c) => c,
        Err(e) => {
            let text = format!("{e}: the {noun} is left on the server");
            publish(
                ctx,
                obj,
                EventType::Warning,
                "BackendUnusable",
                "Delete",
                text,
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    let mut id = owned.id;
    if id.is_none()
        && obj.annotations().get(CREATE_PENDING).map(String::as_str) == Some(owned.display_name)
    {
        // A create may have reached the server before a crash: delete what it made.
        let found = match owned.kind {
            ServerKind::IdentityProvider => client
                .find_idp_by_name(owned.display_name)
                .await
                .map(|f| f.map(|s| s.id)),
            ServerKind::Application => client
                .find_application_by_name(owned.display_name)
                .await
                .map(|f| f.map(|s| s.id)),
        };
        id = found.map_err(backend_err(format!("looking up the {noun}")))?;
    }
    if let Some(id) = id {
        let existed = match owned.kind {
            ServerKind::IdentityProvider => client.delete_idp(&id).await,
            ServerKind::Application => client.delete_application(&id).await,
        }
        .map_err(backend_err(format!("deleting {noun} {id}")))?;
        let text = if existed {
            format!("deleted {noun} {id} on the server")
        } else {
            format!("{noun} {id} was already gone")
        };
        publish(ctx, obj, EventType::Normal, "Deleted", "Delete", text).await;
    }
    Ok(Action::await_change())
}
