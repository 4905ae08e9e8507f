//! Ownership on the server: the owner marker an object writes into its server object's
//! description (`[identity-operator.io/owner=UID NAMESPACE/NAME]`), how it is read, stripped and
//! compared, and which tenant a backend points at. Pure.

use kube::ResourceExt;

use crate::api::IdentityBackend;

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

pub(super) const MARKER_START: &str = "[identity-operator.io/";

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
    crate::controller::registry::base_url(backend)
        .ok()
        .map(|u| u.trim_end_matches('/').to_lowercase())
}

/// Server names compare case-insensitively (the server's collation may).
pub fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}
