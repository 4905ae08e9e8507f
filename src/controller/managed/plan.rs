//! The managed flow's decisions, all pure: which server object is ours ([`plan_identity`]), what a
//! deletion does ([`plan_cleanup`]), what to do with a credentials Secret ([`plan_credentials`]),
//! and which condition an error becomes ([`error_outcome`]).

use super::*;

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

/// Whether the create-pending mark can go: it is set (seen on the object, or set by this very pass,
/// `created`) and the status just written holds the server id. Pure. Until then a crash leaves
/// the mark, and the next pass recovers the object by its uid marker.
pub fn pending_done(pending: Option<&str>, created: bool, id_in_status: Option<&str>) -> bool {
    (pending.is_some() || created) && id_in_status.is_some()
}

/// True when a failed create may still have made the object: the request reached the server and
/// its answer was lost (timeout, cut connection, 5xx) or unusable (no `Location`, an oversized or
/// unreadable body, a redirect). Only a definite refusal (4xx) proves nothing was made. Pure.
pub fn may_have_committed(e: &BackendError) -> bool {
    e.is_retryable() || matches!(e, BackendError::Protocol { .. })
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
