//! The managed kind: what each of IdentityProvider and Application tells the shared managed flow
//! ([`super::managed`]) and cleanup ([`super::cleanup`]) about itself, in one trait. Its server
//! object is a typed associated type, so the flow hands each kind back its own read object and
//! nothing matches on a kind tag.

use std::future::Future;

use kube::runtime::reflector::Store;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::marker::{marker_for, strip_markers, with_marker};
use super::Context;
use crate::api::BackendRef;
use crate::backend::{BackendError, IdentityServer};

/// A Kubernetes kind that stands for one server object, and how to reach that object.
pub trait Managed:
    kube::Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The server object as read: the whole of it, what the kind's diff needs, so a pass reads it
    /// once.
    type Server: Clone + std::fmt::Debug + Send + Sync;
    /// Its status type.
    type Status: Serialize + PartialEq;
    /// The server object's noun in messages ("identity provider").
    const NOUN: &'static str;
    /// What unblocks a delete the server refused (after "To unblock: ").
    const DELETE_REFUSED_HINT: &'static str;

    /// `spec.displayName`.
    fn display_name(&self) -> &str;
    /// `spec.adopt`.
    fn adopt(&self) -> bool;
    /// `spec.backendRef`.
    fn backend(&self) -> &BackendRef;
    /// The server id in status.
    fn recorded_id(&self) -> Option<String>;
    /// The current status with `id` set (written right after a create or an adoption).
    fn status_with_id(&self, id: &str) -> Self::Status;
    /// The cluster cache of this kind.
    fn cache(ctx: &Context) -> &Store<Self>;
    /// `spec.description`.
    fn description(&self) -> Option<&str>;
    /// The description the server object carries: the spec's, then the owner marker. Sent with
    /// the create, so the marker is there from the first moment and never has to be replaced.
    fn server_description(&self) -> String {
        with_marker(
            &strip_markers(self.description().unwrap_or_default()),
            &marker_for(self),
        )
    }

    /// What the ownership decision needs of a server object.
    fn found(server: &Self::Server) -> Found;
    /// Reads the server object by id (a missing one is the server's not-found error; see [`read`]).
    fn get_server<'a>(
        client: &'a dyn IdentityServer,
        id: &'a str,
    ) -> impl Future<Output = Result<Self::Server, BackendError>> + Send + 'a;
    /// The id of the server object named `name`, if there is one.
    fn find_server_id<'a>(
        client: &'a dyn IdentityServer,
        name: &'a str,
    ) -> impl Future<Output = Result<Option<String>, BackendError>> + Send + 'a;
    /// Replaces the server object's description (the owner marker's release on Orphan).
    fn set_server_description<'a>(
        client: &'a dyn IdentityServer,
        id: &'a str,
        description: String,
    ) -> impl Future<Output = Result<(), BackendError>> + Send + 'a;
    /// Deletes the server object; `Ok(false)` when it was already gone.
    fn delete_server<'a>(
        client: &'a dyn IdentityServer,
        id: &'a str,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send + 'a;
}

/// The `kind` of `K` as Kubernetes names it ("IdentityProvider"), for messages naming an object.
pub fn kind_name<K: Managed>() -> String {
    K::kind(&()).into_owned()
}

/// Reads the server object by id; `None` when the server says it is gone.
pub async fn read<K: Managed>(
    client: &dyn IdentityServer,
    id: &str,
) -> Result<Option<K::Server>, BackendError> {
    match K::get_server(client, id).await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Finds the whole server object by name.
pub async fn find_read<K: Managed>(
    client: &dyn IdentityServer,
    name: &str,
) -> Result<Option<K::Server>, BackendError> {
    match K::find_server_id(client, name).await? {
        Some(id) => read::<K>(client, &id).await,
        None => Ok(None),
    }
}

/// Reads the server object by id, as the ownership decision needs it.
pub async fn get<K: Managed>(
    client: &dyn IdentityServer,
    id: &str,
) -> Result<Option<Found>, BackendError> {
    Ok(read::<K>(client, id).await?.as_ref().map(K::found))
}

/// Finds the server object by name (with its description, the ownership proof).
pub async fn find<K: Managed>(
    client: &dyn IdentityServer,
    name: &str,
) -> Result<Option<Found>, BackendError> {
    Ok(find_read::<K>(client, name).await?.as_ref().map(K::found))
}

/// A server object as the ownership decision needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Server id.
    pub id: String,
    /// Server name.
    pub name: String,
    /// Server description (may carry an owner marker, [`marker`]).
    pub description: Option<String>,
}
