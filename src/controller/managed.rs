//! The managed-resource flow both reconcilers share: **observe** the server into an
//! [`Observation`], **plan** with pure functions ([`plan_identity`], [`plan_cleanup`],
//! [`plan_credentials`], [`error_outcome`]), **act** (the per-kind module runs the operations) and
//! **report** (status, conditions, Events). Modelled on crossplane-runtime's managed reconciler
//! (Observe / Create / Update / Delete with an external-create-pending mark) and the
//! dereference → validate → build → apply → status steps of stackabletech's operators.
//!
//! Only what differs per kind lives in `identity_provider.rs` / `application.rs`: how to read,
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

/// Report: the note of a `DriftCorrected` Event, when a pass of an unchanged spec (`same_spec`:
/// the generation the status last described) that did not create the object had to write
/// something — the server was changed behind the operator's back. Pure.
pub fn drift(created: bool, same_spec: bool, changed: &[&str]) -> Option<String> {
    (!created && same_spec && !changed.is_empty()).then(|| {
        format!(
            "the server differed from the spec in: {}; it was corrected",
            changed.join(", ")
        )
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

/// The legacy proof of a create in flight, `[identity-operator.io/uid=UID]`: what versions before
/// per-tenant ownership wrote with the POST (and what tests write to fake a crashed create). It is
/// still recognised by [`marker`]; new objects carry [`owner_marker_of`].
pub fn owner_marker(uid: &str) -> String {
    format!("[identity-operator.io/uid={uid}]")
}

/// The owner marker kept in a server object's description for as long as an object manages it:
/// `[identity-operator.io/owner=NAMESPACE/NAME uid=UID]`. It is on the server, so it survives a
/// restart, a lost status and an operator that watches other namespaces (another release): any
/// operator that reads the object sees who manages it, and nobody else adopts it. It also proves a
/// create after a crash (the uid, with the create-pending mark).
pub fn owner_marker_of(uid: &str, owner: &str) -> String {
    format!("[identity-operator.io/owner={owner} uid={uid}]")
}

/// The marker for `obj` (its namespace/name and uid).
pub fn marker_for<K: kube::Resource>(obj: &K) -> String {
    owner_marker_of(&obj.uid().unwrap_or_default(), &owner_of(obj))
}

/// `NAMESPACE/NAME` of an object, as markers and messages name it.
pub fn owner_of<K: kube::Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

const MARKER_START: &str = "[identity-operator.io/";

/// An operator marker read from a server description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The uid of the object that wrote it.
    pub uid: String,
    /// Its `NAMESPACE/NAME` (absent in the legacy create marker).
    pub owner: Option<String>,
}

/// The first operator marker in a description, new or legacy form. Pure.
pub fn marker(description: Option<&str>) -> Option<Marker> {
    let d = description?;
    let start = d.find(MARKER_START)? + MARKER_START.len();
    let body = &d[start..start + d[start..].find(']')?];
    let (mut uid, mut owner) = (None, None);
    for field in body.split_whitespace() {
        match field.split_once('=') {
            Some(("uid", v)) => uid = Some(v.to_string()),
            Some(("owner", v)) => owner = Some(v.to_string()),
            _ => {}
        }
    }
    Some(Marker { uid: uid?, owner })
}

/// A description without its operator markers (the user's text). Pure.
pub fn strip_markers(description: &str) -> String {
    let mut rest = description;
    let mut out = String::new();
    while let Some(i) = rest.find(MARKER_START) {
        out.push_str(&rest[..i]);
        match rest[i..].find(']') {
            Some(end) => rest = &rest[i + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// The description the server object carries: the user's text, then the owner marker. Pure.
pub fn with_marker(text: &str, marker: &str) -> String {
    if text.is_empty() {
        marker.to_string()
    } else {
        format!("{text} {marker}")
    }
}

/// The description to write, if the server's differs from what the spec wants: the spec's text
/// (or, with none in the spec, the server's own text) followed by this object's owner `marker`.
/// A stale marker (a crashed create's, or an earlier owner's) is replaced. Pure.
pub fn description_change(
    spec: Option<&str>,
    server: Option<&str>,
    marker: &str,
) -> Option<String> {
    let text = match spec {
        Some(d) => strip_markers(d),
        None => strip_markers(server.unwrap_or_default()),
    };
    let want = with_marker(&text, marker);
    (server != Some(want.as_str())).then_some(want)
}

/// Who manages a server object according to its marker, seen from `me`. Pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkedBy {
    /// No marker: nobody claims it on the server.
    Nobody,
    /// This very object (same uid).
    Me,
    /// An earlier object of the same namespace and name (deleted and created again, or restored
    /// from a backup with a new uid): the same namespace, so the same people; `adopt: true` may
    /// take it over.
    MyPredecessor,
    /// Another object: the text names it.
    Another(String),
}

/// Classifies the marker of `description` for the object `uid` / `owner` (`NAMESPACE/NAME`). Pure.
pub fn marked_by(description: Option<&str>, uid: &str, owner: &str) -> MarkedBy {
    match marker(description) {
        None => MarkedBy::Nobody,
        Some(m) if m.uid == uid => MarkedBy::Me,
        Some(Marker { owner: Some(o), .. }) if o == owner => MarkedBy::MyPredecessor,
        Some(Marker {
            owner: Some(o),
            uid,
        }) => MarkedBy::Another(format!("{o} (uid {uid})")),
        Some(Marker { uid, .. }) => MarkedBy::Another(format!("the object with uid {uid}")),
    }
}

/// The tenant a backend points at, as a key that two backends (of any namespaces) share exactly
/// when they reach the same organization or tenant: the tenant base URL, lower-cased (hosts and
/// WSO2 tenant domains compare case-insensitively; treating two spellings as one tenant can only
/// cause a clash, never a shared object). `None` for an unresolvable backend.
pub fn tenant_key(backend: &IdentityBackend) -> Option<String> {
    super::registry::base_url(backend)
        .ok()
        .map(|u| u.trim_end_matches('/').to_lowercase())
}

/// Server names compare case-insensitively (the server's collation may).
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
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

/// The server object recorded in status, as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ById {
    /// No id recorded.
    NotRecorded,
    /// The recorded object exists.
    Found(Found),
    /// The recorded object was deleted on the server.
    Gone(String),
}

/// What observe learned: the recorded object, and (when it is missing or being renamed) the object
/// that holds the wanted name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// By the id in status.
    pub by_id: ById,
    /// By the spec's displayName.
    pub by_name: Option<Found>,
}

/// Whether observe must look the wanted name up on the server. Pure. A brand-new object (no id
/// recorded, no create pending, no adoption) skips it: its create is sent at once, and a name
/// conflict (409) then means someone holds the name, which is looked up only then.
pub fn lookup_by_name(by_id: &ById, display_name: &str, pending: bool, adopt: bool) -> bool {
    match by_id {
        ById::Found(f) => f.name != display_name,
        ById::Gone(_) => true,
        ById::NotRecorded => pending || adopt,
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

/// Another object of the same kind on the same tenant (of any namespace), as seen in the cluster
/// cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its `NAMESPACE/NAME`.
    pub object: String,
    /// Its displayName.
    pub display_name: String,
    /// The server id in its status.
    pub id: Option<String>,
    /// Created before this object (creationTimestamp, then name): wins a tie of two new objects.
    pub older: bool,
}

/// What a managed object is about the server object it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The object's uid.
    pub uid: &'a str,
    /// The spec's displayName.
    pub display_name: &'a str,
    /// Its `NAMESPACE/NAME`, as owner markers name it.
    pub owner: &'a str,
    /// `spec.adopt`.
    pub adopt: bool,
    /// The create-pending mark, if any.
    pub pending: Option<&'a str>,
}

/// The ownership decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityPlan {
    /// The object in status; `rename` when its name differs from the spec's.
    Existing {
        /// Server id.
        id: String,
        /// Rename it in place (PATCH), never create a second one.
        rename: bool,
    },
    /// Take over an existing object (`spec.adopt`).
    Adopt(Found),
    /// Our own create survived a crash (pending mark and marker both carry our uid).
    Recover(Found),
    /// Create it; `recreate` when the recorded object was deleted on the server.
    Create {
        /// The recorded id was gone.
        recreate: bool,
    },
    /// Someone else holds the name or the id: touch nothing, report it.
    Clash {
        /// Condition reason.
        reason: &'static str,
        /// What and what to do.
        message: String,
        /// Drop the create-pending mark (what it stood for was refused or belongs to another).
        clear_pending: bool,
    },
}

/// Plan: which server object this object stands for, or why none. Pure.
pub fn plan_identity<K: Managed>(
    me: &Identity<'_>,
    seen: &Observation,
    others: &[Claim],
) -> IdentityPlan {
    let noun = K::NOUN;
    let kind = kind::kind_name::<K>();
    let name = me.display_name;
    let mine_pending = me.pending == Some(me.uid);
    let clear_pending = me.pending.is_some();
    // Another object that claims the wanted name: it holds a server id under that name, or it is an
    // older object that will create it.
    let rival = others
        .iter()
        .filter(|o| same_name(&o.display_name, name))
        .find(|o| o.id.is_some() || o.older);
    let holder = |id: &str| others.iter().find(|o| o.id.as_deref() == Some(id));
    let clash_with = |o: &Claim| {
        IdentityPlan::Clash {
        reason: "NameClash",
        message: format!(
            "displayName {name:?} is already claimed by {} {} on the same tenant: exactly one object may manage a server {noun}; choose another displayName",
            kind,
            o.object
        ),
        clear_pending: clear_pending && !mine_pending,
    }
    };
    let managed_by = |f: &Found, who: String, clear_pending: bool| {
        IdentityPlan::Clash {
        reason: "ManagedByAnother",
        message: format!(
            "the {noun} {:?} on the server ({}) is managed by {} {who} (its description carries that object's owner marker): exactly one object may manage a server {noun}, so it was neither adopted nor changed. Choose another displayName; if that object is gone, delete it with deletionPolicy: Orphan (which releases the {noun}) or remove the [identity-operator.io/owner=...] marker from the description on the server",
            f.name,
            f.id,
            kind
        ),
        clear_pending,
    }
    };
    if let ById::Found(f) = &seen.by_id {
        // An id in status is ours unless the server says another object manages it (an id
        // recorded before ownership was per tenant, when another namespace could adopt it).
        if let MarkedBy::Another(who) = marked_by(f.description.as_deref(), me.uid, me.owner) {
            return managed_by(f, who, false);
        }
        if same_name(&f.name, name) {
            return IdentityPlan::Existing {
                id: f.id.clone(),
                rename: f.name != name,
            };
        }
        if let Some(taken) = seen.by_name.as_ref().filter(|t| t.id != f.id) {
            return IdentityPlan::Clash {
                reason: "RenameClash",
                message: format!(
                    "cannot rename {noun} {} to {name:?}: another {noun} on the server has that name ({}); choose another displayName",
                    f.id, taken.id
                ),
                clear_pending: false,
            };
        }
        if let Some(o) = rival.filter(|o| o.id.is_some()) {
            return clash_with(o);
        }
        return IdentityPlan::Existing {
            id: f.id.clone(),
            rename: true,
        };
    }
    if let Some(o) = rival {
        return clash_with(o);
    }
    match &seen.by_name {
        Some(f) => {
            if let Some(o) = holder(&f.id) {
                return clash_with(o);
            }
            let marked = marked_by(f.description.as_deref(), me.uid, me.owner);
            if let MarkedBy::Another(who) = marked {
                return managed_by(f, who, clear_pending);
            }
            if mine_pending && marked == MarkedBy::Me {
                IdentityPlan::Recover(f.clone())
            } else if me.adopt {
                IdentityPlan::Adopt(f.clone())
            } else {
                IdentityPlan::Clash {
                    reason: "AlreadyExists",
                    message: format!(
                        "an {noun} named {name:?} already exists on the server ({}) and this object did not create it; set spec.adopt: true to manage it, or choose another displayName",
                        f.id
                    ),
                    clear_pending,
                }
            }
        }
        None => IdentityPlan::Create {
            recreate: matches!(seen.by_id, ById::Gone(_)),
        },
    }
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

/// Whether the create-pending mark can go: it is set (seen on the object, or set by this very pass,
/// `created`) and the status just written holds the server id. Pure. Until then a crash leaves
/// the mark, and the next pass recovers the object by its uid marker.
pub fn pending_done(pending: Option<&str>, created: bool, id_in_status: Option<&str>) -> bool {
    (pending.is_some() || created) && id_in_status.is_some()
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

/// True when a failed create may still have made the object: the request reached the server and
/// its answer was lost (timeout, cut connection, 5xx) or unusable (no `Location`, an oversized or
/// unreadable body, a redirect). Only a definite refusal (4xx) proves nothing was made. Pure.
pub fn may_have_committed(e: &BackendError) -> bool {
    e.is_retryable() || matches!(e, BackendError::Protocol { .. })
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

/// What the deletion of a managed object does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CleanupPlan {
    /// Release the finalizer now, with this Event reason and note.
    Release(&'static str, String),
    /// Delete this server object, then release.
    Delete(String),
    /// Find the object a crashed create made (by name, proven by the marker), delete it, release.
    DeletePending,
    /// Keep the finalizer and say why on the object.
    Stuck {
        /// Condition reason.
        reason: &'static str,
        /// What happened and how to unblock.
        message: String,
    },
}

/// Plan the deletion. Pure. `client` says whether a client for the backend is at hand (fresh or
/// cached) and, when not, why.
pub fn plan_cleanup<K: Managed>(
    policy: DeletionPolicy,
    id: Option<&str>,
    pending_mine: bool,
    client: Result<(), String>,
) -> CleanupPlan {
    let noun = K::NOUN;
    if policy == DeletionPolicy::Orphan {
        return CleanupPlan::Release(
            "Orphaned",
            format!("deletionPolicy Orphan: the {noun} stays on the server"),
        );
    }
    if id.is_none() && !pending_mine {
        return CleanupPlan::Release(
            "NothingToDelete",
            format!("this object never created a {noun} on the server"),
        );
    }
    if let Err(why) = client {
        return CleanupPlan::Stuck {
            reason: "BackendUnavailable",
            message: format!(
                "cannot delete the {noun} on the server: {why}. Restore the IdentityBackend and its Secret, or set deletionPolicy: Orphan to leave the {noun} on the server"
            ),
        };
    }
    match id {
        Some(id) => CleanupPlan::Delete(id.to_string()),
        None => CleanupPlan::DeletePending,
    }
}

/// The condition a refused server delete puts on the object, with the server's code.
pub fn delete_refused<K: Managed>(id: &str, e: &BackendError) -> (&'static str, String) {
    let noun = K::NOUN;
    let hint = K::DELETE_REFUSED_HINT;
    (
        "DeleteRefused",
        format!(
            "the server refused to delete {noun} {id}: {e}. To unblock: {hint}, or set deletionPolicy: Orphan to leave it on the server"
        ),
    )
}

/// What to do with the credentials Secret an Application names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretPlan {
    /// It does not exist: create it, owned by the Application.
    Create,
    /// It is ours and differs: update it.
    Update,
    /// It is ours and current.
    Unchanged,
    /// Someone else's: never written. The message names it and its owner.
    Foreign(String),
}

/// Plan the credentials Secret. Pure. Only a Secret with this Application as controller owner and
/// the managed-by label is written; any other (a user's, the backend's own, another Application's)
/// is reported, never taken over.
pub fn plan_credentials(
    existing: Option<(&ObjectMeta, bool)>,
    app_uid: &str,
    secret_name: &str,
) -> SecretPlan {
    let Some((meta, same_data)) = existing else {
        return SecretPlan::Create;
    };
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1);
    match controller {
        Some(c) if c.uid == app_uid && labelled => {
            if same_data {
                SecretPlan::Unchanged
            } else {
                SecretPlan::Update
            }
        }
        Some(c) => SecretPlan::Foreign(format!(
            "Secret {secret_name} (credentialsSecret) belongs to {} {}; it was not written. Give this Application its own credentialsSecret name",
            c.kind, c.name
        )),
        None => SecretPlan::Foreign(format!(
            "Secret {secret_name} (credentialsSecret) exists and was not created by this Application; it was not written. Choose another name, or delete that Secret so the operator can create its own"
        )),
    }
}

/// Report: the outcome an error ends in, so every failure reaches the object as `Ready=False` with
/// a reason and the server's code and message (error texts never carry secrets). Pure.
pub fn error_outcome(e: &Error) -> Outcome {
    let message = e.to_string();
    match e {
        Error::Backend { source, .. } => {
            let reason = match source {
                BackendError::NotFound { .. } => "NotFoundOnServer",
                BackendError::AlreadyExists { .. } => "AlreadyExists",
                BackendError::Invalid { .. } => "ServerRejected",
                BackendError::Unauthorized { .. } => "CredentialsRejected",
                BackendError::Forbidden { .. } => "Forbidden",
                BackendError::RateLimited { .. } => "RateLimited",
                BackendError::Transient { .. } => "ServerUnavailable",
                BackendError::Protocol { .. } => "ServerProtocolError",
                BackendError::Config(_) => "InvalidBackendConfig",
            };
            if source.is_retryable() {
                Outcome::progressing(reason, message)
            } else {
                Outcome::stalled(reason, message)
            }
        }
        Error::Kube(_) => Outcome::progressing("KubernetesError", message),
        Error::Blocked { reason, .. } => Outcome::stalled(reason, message),
        Error::Finalizer(_) | Error::Internal(_) => Outcome::progressing("InternalError", message),
        Error::CacheNotReady(_) => Outcome::progressing("Starting", message),
        Error::NoNamespace => Outcome::stalled("InvalidObject", message),
    }
}

#[cfg(test)]
#[path = "managed_tests.rs"]
mod tests;
