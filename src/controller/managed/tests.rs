//! Table-driven tests of the planner, with the in-memory fake server: every decision of the
//! managed flow (ownership, recovery, recreate, rename, clash, Block from both sides, deletion,
//! the credentials Secret, error reporting, the client-secret push) without a cluster or HTTP.

// The case tables are tuples on purpose: one line per case reads as a table.
#![allow(clippy::type_complexity)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use super::*;
use crate::api::identity_provider::ConflictPolicy;
use crate::api::IdentityProvider;
use crate::backend::{FlowKind, FlowOption, FlowStep, FlowUpdate, JitChange, LoginFlow};
use crate::controller::application::plan_flow;
use crate::controller::fake::FakeServer;
use crate::controller::identity_provider::{authenticator_push, live_flows, plan_jit};
use crate::controller::kind;
use crate::flow::{Jit, LocalAccountAuthenticators};

const UID: &str = "uid-me";
const OWNER: &str = "team-a/google";

fn found(id: &str, name: &str, description: Option<&str>) -> Found {
    Found {
        id: id.into(),
        name: name.into(),
        description: description.map(Into::into),
    }
}

fn claim(object: &str, display_name: &str, id: Option<&str>, older: bool) -> Claim {
    Claim {
        object: object.into(),
        display_name: display_name.into(),
        id: id.map(Into::into),
        older,
    }
}

/// A short tag of a plan, so the table reads as one line per case.
fn tag(p: &IdentityPlan) -> String {
    match p {
        IdentityPlan::Existing { id, rename } => format!("existing {id} rename={rename}"),
        IdentityPlan::Adopt(f) => format!("adopt {}", f.id),
        IdentityPlan::Recover(f) => format!("recover {}", f.id),
        IdentityPlan::Create { recreate } => format!("create recreate={recreate}"),
        IdentityPlan::Clash {
            reason,
            clear_pending,
            ..
        } => format!("clash {reason} clear={clear_pending}"),
    }
}

#[test]
fn identity_plan_table() {
    let marker = Some(owner_marker(UID));
    let other_marker = Some(owner_marker("uid-other"));
    let foreign_owner = Some(format!(
        "Payroll {}",
        owner_marker_of("uid-b", "team-b/google")
    ));
    let predecessor = Some(owner_marker_of("uid-before", OWNER));
    let mine = Some(owner_marker_of(UID, OWNER));
    let cases: Vec<(
        &str,
        ById,
        Option<Found>,
        Option<&str>,
        bool,
        Vec<Claim>,
        &str,
    )> = vec![
        (
            "new object, name free",
            ById::NotRecorded,
            None,
            None,
            false,
            vec![],
            "create recreate=false",
        ),
        (
            "recorded and present",
            ById::Found(found("i1", "Google", None)),
            None,
            None,
            false,
            vec![],
            "existing i1 rename=false",
        ),
        (
            "deleted on the server: recreate",
            ById::Gone("i1".into()),
            None,
            None,
            false,
            vec![],
            "create recreate=true",
        ),
        (
            "name taken, no adopt",
            ById::NotRecorded,
            Some(found("x", "Google", None)),
            None,
            false,
            vec![],
            "clash AlreadyExists clear=false",
        ),
        (
            "name taken, adopt",
            ById::NotRecorded,
            Some(found("x", "Google", None)),
            None,
            true,
            vec![],
            "adopt x",
        ),
        // Defect 2: a pending mark alone proves nothing (a refused POST left it behind).
        (
            "pending, object without our marker",
            ById::NotRecorded,
            Some(found("x", "Google", None)),
            Some(UID),
            false,
            vec![],
            "clash AlreadyExists clear=true",
        ),
        (
            "pending, marker of another object",
            ById::NotRecorded,
            Some(found("x", "Google", other_marker.as_deref())),
            Some(UID),
            false,
            vec![],
            "clash ManagedByAnother clear=true",
        ),
        // Issue 24 item 3: the owner marker on the server stops an adoption even when the owner is
        // in no cache of this process (another namespace, another release).
        (
            "adopt an object another namespace's object manages",
            ById::NotRecorded,
            Some(found("x", "Google", foreign_owner.as_deref())),
            None,
            true,
            vec![],
            "clash ManagedByAnother clear=false",
        ),
        (
            "adopt what an earlier object of this namespace/name managed",
            ById::NotRecorded,
            Some(found("x", "Google", predecessor.as_deref())),
            None,
            true,
            vec![],
            "adopt x",
        ),
        (
            "not adopting what an earlier object of this namespace/name managed",
            ById::NotRecorded,
            Some(found("x", "Google", predecessor.as_deref())),
            None,
            false,
            vec![],
            "clash AlreadyExists clear=false",
        ),
        (
            "an id in status that another object manages on the server",
            ById::Found(found("x", "Google", foreign_owner.as_deref())),
            None,
            None,
            true,
            vec![],
            "clash ManagedByAnother clear=false",
        ),
        (
            "an id in status with our own owner marker",
            ById::Found(found("x", "Google", mine.as_deref())),
            None,
            None,
            false,
            vec![],
            "existing x rename=false",
        ),
        (
            "pending, our new-style marker: recover",
            ById::NotRecorded,
            Some(found("x", "Google", mine.as_deref())),
            Some(UID),
            false,
            vec![],
            "recover x",
        ),
        (
            "pending, our marker: recover",
            ById::NotRecorded,
            Some(found("x", "Google", marker.as_deref())),
            Some(UID),
            false,
            vec![],
            "recover x",
        ),
        (
            "old-style mark (display name) proves nothing",
            ById::NotRecorded,
            Some(found("x", "Google", marker.as_deref())),
            Some("Google"),
            false,
            vec![],
            "clash AlreadyExists clear=true",
        ),
        // Never record an id another object holds, adopt or not.
        (
            "adopt an id another object holds",
            ById::NotRecorded,
            Some(found("x", "Google", None)),
            None,
            true,
            vec![claim("first", "Other", Some("x"), false)],
            "clash NameClash clear=false",
        ),
        // Two objects, one name: the one holding the id wins; with no id yet, the older one.
        (
            "rival holds the name",
            ById::NotRecorded,
            None,
            None,
            false,
            vec![claim("first", "Google", Some("i9"), false)],
            "clash NameClash clear=false",
        ),
        (
            "rival holds it, case differs",
            ById::NotRecorded,
            None,
            None,
            false,
            vec![claim("first", "GOOGLE", Some("i9"), false)],
            "clash NameClash clear=false",
        ),
        (
            "older rival without id yet",
            ById::NotRecorded,
            None,
            None,
            false,
            vec![claim("first", "google", None, true)],
            "clash NameClash clear=false",
        ),
        (
            "younger rival without id: I win",
            ById::NotRecorded,
            None,
            None,
            false,
            vec![claim("second", "Google", None, false)],
            "create recreate=false",
        ),
        (
            "I hold the id, younger rival",
            ById::Found(found("i1", "Google", None)),
            None,
            None,
            false,
            vec![claim("second", "Google", None, false)],
            "existing i1 rename=false",
        ),
        // Defect 7: rename in place; onto a taken name it is a clash, never a second object.
        (
            "rename in place",
            ById::Found(found("i1", "Old", None)),
            None,
            None,
            false,
            vec![],
            "existing i1 rename=true",
        ),
        (
            "rename onto a taken name",
            ById::Found(found("i1", "Old", None)),
            Some(found("i2", "Google", None)),
            None,
            false,
            vec![],
            "clash RenameClash clear=false",
        ),
        (
            "case-only rename is the same object",
            ById::Found(found("i1", "google", None)),
            None,
            None,
            false,
            vec![],
            "existing i1 rename=true",
        ),
        (
            "rename onto a name another object holds",
            ById::Found(found("i1", "Old", None)),
            None,
            None,
            false,
            vec![claim("first", "Google", Some("i2"), true)],
            "clash NameClash clear=false",
        ),
    ];
    for (name, by_id, by_name, pending, adopt, others, want) in cases {
        let me = Identity {
            uid: UID,
            display_name: "Google",
            owner: OWNER,
            adopt,
            pending,
        };
        let seen = Observation { by_id, by_name };
        let got = plan_identity::<IdentityProvider>(&me, &seen, &others);
        assert_eq!(tag(&got), want, "case {name:?}");
        if let IdentityPlan::Clash { message, .. } = &got {
            assert!(message.contains("Google"), "case {name:?}: {message}");
        }
    }
}

#[tokio::test]
async fn observe_then_plan_against_the_fake_server() {
    let server = FakeServer::default();
    let ours = server.add_idp("Google", Some(&owner_marker(UID)), true);
    let foreign = server.add_idp("GitHub", None, true);
    let gone = server.add_idp("Gone", None, true);
    server.remove(&gone);
    let recover = format!("recover {ours}");
    let existing = format!("existing {foreign} rename=true");
    // (case, recorded id, displayName, pending mark, want)
    let cases: Vec<(&str, Option<&str>, &str, Option<&str>, &str)> = vec![
        (
            "crash after POST: recovered by marker",
            None,
            "Google",
            Some(UID),
            &recover,
        ),
        (
            "someone else's with our stale mark",
            None,
            "GitHub",
            Some(UID),
            "clash AlreadyExists clear=true",
        ),
        (
            "recorded id deleted on the server",
            Some(&gone),
            "Gone",
            None,
            "create recreate=true",
        ),
        (
            "recorded id, renamed onto a taken name",
            Some(&ours),
            "GitHub",
            None,
            "clash RenameClash clear=false",
        ),
        (
            "recorded id, free new name",
            Some(&foreign),
            "GitHub Enterprise",
            None,
            &existing,
        ),
    ];
    for (name, id, display_name, pending, want) in cases {
        let seen = observe::<IdentityProvider>(&server, id, display_name)
            .await
            .expect("observe");
        let me = Identity {
            uid: UID,
            display_name,
            owner: OWNER,
            adopt: false,
            pending,
        };
        let got = plan_identity::<IdentityProvider>(&me, &seen, &[]);
        assert_eq!(tag(&got), want, "case {name:?}");
    }
}

#[test]
fn description_carries_the_owner_marker() {
    let m = owner_marker_of(UID, OWNER);
    let legacy = owner_marker(UID);
    let other = owner_marker_of("uid-b", "team-b/google");
    let with = |t: &str| format!("{t} {m}");
    let cases = [
        // The spec's text, then the marker; a crashed create's legacy marker is replaced.
        (
            Some("Corp SSO"),
            Some(legacy.clone()),
            Some(with("Corp SSO")),
        ),
        (None, Some(legacy.clone()), Some(m.clone())),
        // No description in the spec: the server's text stays, the marker is added.
        (
            None,
            Some("set in the console".into()),
            Some(with("set in the console")),
        ),
        (None, None, Some(m.clone())),
        (Some("same"), Some(with("same")), None),
        (None, Some(with("kept")), None),
        // Another owner's marker (an adoption refused before; never kept) and a forged one in the
        // spec are replaced by ours.
        (None, Some(format!("text {other}")), Some(with("text"))),
        (Some(&*format!("x {other}")), Some(with("x")), None),
    ];
    for (spec, server, want) in cases {
        assert_eq!(
            description_change(spec, server.as_deref(), &m),
            want,
            "{spec:?} vs {server:?}"
        );
    }
}

#[test]
fn markers_are_read_in_both_forms() {
    let new = format!("Payroll {}", owner_marker_of("u1", "team-a/payroll"));
    assert_eq!(
        marker(Some(&new)),
        Some(Marker {
            uid: "u1".into(),
            owner: Some("team-a/payroll".into())
        })
    );
    assert_eq!(
        marker(Some(&owner_marker("u2"))),
        Some(Marker {
            uid: "u2".into(),
            owner: None
        })
    );
    assert_eq!(marker(Some("[identity-operator.io/owner=a/b]")), None);
    assert_eq!(marker(Some("no marker")), None);
    assert_eq!(marker(Some("[identity-operator.io/uid=unterminated")), None);
    assert_eq!(marked_by(Some(&new), "u1", "x/y"), MarkedBy::Me);
    assert_eq!(
        marked_by(Some(&new), "u9", "team-a/payroll"),
        MarkedBy::MyPredecessor
    );
    assert!(matches!(
        marked_by(Some(&new), "u9", "team-b/payroll"),
        MarkedBy::Another(w) if w.contains("team-a/payroll")
    ));
    assert_eq!(marked_by(None, "u1", "x/y"), MarkedBy::Nobody);
}

#[test]
fn cleanup_plan_table() {
    use crate::api::DeletionPolicy::{Delete, Orphan};
    let no_client = || Err("Secret asgardeo-m2m not found".to_string());
    let cases: Vec<(
        &str,
        DeletionPolicy,
        Option<&str>,
        bool,
        Result<(), String>,
        &str,
    )> = vec![
        (
            "orphan keeps it",
            Orphan,
            Some("i1"),
            false,
            Ok(()),
            "release Orphaned",
        ),
        (
            "orphan needs no client",
            Orphan,
            Some("i1"),
            false,
            no_client(),
            "release Orphaned",
        ),
        (
            "never created",
            Delete,
            None,
            false,
            no_client(),
            "release NothingToDelete",
        ),
        (
            "delete by id",
            Delete,
            Some("i1"),
            false,
            Ok(()),
            "delete i1",
        ),
        (
            "crashed create: find by marker",
            Delete,
            None,
            true,
            Ok(()),
            "pending",
        ),
        // Defect 4: no client is never a reason to release: the finalizer stays and says why.
        (
            "no client, object exists",
            Delete,
            Some("i1"),
            false,
            no_client(),
            "stuck BackendUnavailable",
        ),
        (
            "no client, crashed create",
            Delete,
            None,
            true,
            no_client(),
            "stuck BackendUnavailable",
        ),
    ];
    for (name, policy, id, pending, client, want) in cases {
        let got = match plan_cleanup::<IdentityProvider>(policy, id, pending, client) {
            CleanupPlan::Release(r, _) => format!("release {r}"),
            CleanupPlan::Delete(id) => format!("delete {id}"),
            CleanupPlan::DeletePending => "pending".into(),
            CleanupPlan::Stuck { reason, message } => {
                assert!(message.contains("Orphan"), "says how to unblock: {message}");
                format!("stuck {reason}")
            }
        };
        assert_eq!(got, want, "case {name:?}");
    }
}

#[tokio::test]
async fn refused_delete_is_reported_with_the_server_code() {
    let server = FakeServer::default();
    let idp = server.add_idp("Google", None, true);
    server.add_app(
        "Payroll",
        vec![FlowStep {
            options: vec![FlowOption::federated("Google", "GoogleOIDCAuthenticator")],
        }],
    );
    let err = IdentityProvider::delete_server(&server, &idp)
        .await
        .expect_err("in use");
    let (reason, message) = delete_refused::<IdentityProvider>(&idp, &err);
    assert_eq!(reason, "DeleteRefused");
    assert!(message.contains("IDP-60005"), "{message}");
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
    assert!(
        kind::get::<IdentityProvider>(&server, &idp)
            .await
            .expect("get")
            .is_some(),
        "still there"
    );
}

fn secret_meta(controller: Option<(&str, &str, &str)>, labelled: bool) -> ObjectMeta {
    ObjectMeta {
        owner_references: controller.map(|(kind, name, uid)| {
            vec![OwnerReference {
                api_version: "identity-operator.io/v1alpha1".into(),
                kind: kind.into(),
                name: name.into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: None,
            }]
        }),
        labels: labelled
            .then(|| BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])),
        ..Default::default()
    }
}

#[test]
fn credentials_secret_plan_table() {
    let mine = secret_meta(Some(("Application", "payroll", UID)), true);
    let other_app = secret_meta(Some(("Application", "billing", "uid-billing")), true);
    let unlabelled = secret_meta(Some(("Application", "payroll", UID)), false);
    let users = secret_meta(None, false);
    let cases: Vec<(&str, Option<(&ObjectMeta, bool)>, &str)> = vec![
        ("absent", None, "create"),
        ("ours, current", Some((&mine, true)), "unchanged"),
        ("ours, stale", Some((&mine, false)), "update"),
        // Defect 1: a Secret the operator did not create is never written.
        ("a user's Secret", Some((&users, false)), "foreign"),
        ("the backend's own Secret", Some((&users, true)), "foreign"),
        (
            "owner ref but no managed-by label",
            Some((&unlabelled, false)),
            "foreign",
        ),
        (
            "another Application's",
            Some((&other_app, false)),
            "foreign billing",
        ),
    ];
    for (name, existing, want) in cases {
        let got = match plan_credentials(existing, UID, "payroll-oidc") {
            SecretPlan::Create => "create".to_string(),
            SecretPlan::Update => "update".into(),
            SecretPlan::Unchanged => "unchanged".into(),
            SecretPlan::Foreign(m) => {
                assert!(m.contains("payroll-oidc"), "names the Secret: {m}");
                if m.contains("billing") {
                    "foreign billing".into()
                } else {
                    "foreign".into()
                }
            }
        };
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn every_error_reaches_the_object() {
    use crate::backend::BackendError as B;
    let wrap = |source| Error::Backend {
        context: "updating identity provider i1".into(),
        source,
    };
    let cases: Vec<(Error, &str, bool, &str)> = vec![
        (
            wrap(B::Invalid {
                status: 400,
                code: Some("IDP-60025".into()),
                message: None,
                description: Some("Invalid input".into()),
                trace_id: Some("t-1".into()),
            }),
            "ServerRejected",
            false,
            "IDP-60025",
        ),
        (
            wrap(B::AlreadyExists {
                resource: "identity provider",
                code: Some("IDP-60001".into()),
                description: None,
                trace_id: None,
            }),
            "AlreadyExists",
            false,
            "IDP-60001",
        ),
        (
            wrap(B::Forbidden {
                missing_scope: Some("internal_idp_update".into()),
                code: None,
                trace_id: None,
            }),
            "Forbidden",
            false,
            "internal_idp_update",
        ),
        (
            wrap(B::Transient {
                status: Some(503),
                message: "503".into(),
                attempts: 3,
                code: None,
                trace_id: None,
            }),
            "ServerUnavailable",
            true,
            "3 attempt",
        ),
        (
            Error::Blocked {
                reason: "DeleteRefused",
                message: "refused IDP-60005".into(),
            },
            "DeleteRefused",
            false,
            "IDP-60005",
        ),
    ];
    for (e, reason, progressing, needle) in cases {
        let o = error_outcome(&e);
        let c = &o.conditions()[0];
        assert_eq!(c.type_, crate::api::conditions::READY);
        assert!(!c.status, "{e}");
        assert_eq!(c.reason, reason, "{e}");
        assert!(c.message.contains(needle), "{}", c.message);
        assert_eq!(matches!(o, Outcome::Progressing { .. }), progressing, "{e}");
    }
}

#[test]
fn jit_plan_table() {
    use ConflictPolicy::{Block, Warn};
    let off = JitChange {
        enabled: Some(false),
        ..Default::default()
    };
    let off_and_store = JitChange {
        enabled: Some(false),
        userstore: Some("SECONDARY".into()),
        ..Default::default()
    };
    let store = JitChange {
        userstore: Some("SECONDARY".into()),
        ..Default::default()
    };
    let cases = vec![
        ("nothing differs", None, true, Block, None, false),
        (
            "disable, no dependents",
            Some(off.clone()),
            false,
            Block,
            Some(off.clone()),
            false,
        ),
        (
            "disable under Block",
            Some(off.clone()),
            true,
            Block,
            None,
            true,
        ),
        (
            "disable under Warn",
            Some(off.clone()),
            true,
            Warn,
            Some(off.clone()),
            false,
        ),
        (
            "rest of the spec still goes",
            Some(off_and_store),
            true,
            Block,
            Some(store),
            true,
        ),
    ];
    for (name, diff, conflicts, policy, want, blocked) in cases {
        assert_eq!(
            plan_jit(diff, None, conflicts, policy),
            (want, blocked),
            "case {name:?}"
        );
    }
}

#[test]
fn jit_plan_holds_back_starting_the_lookup_skip_under_block() {
    use crate::backend::{wire, AttributeSyncMethod, Jit as ServerJit, JitScheme};
    use ConflictPolicy::{Block, Warn};
    let mapping = || {
        vec![wire::AccountLookupAttributeMapping {
            local_attribute: Some("http://wso2.org/claims/emailaddress".into()),
            federated_attribute: Some("email".into()),
        }]
    };
    let server = |skip: bool, lookup: bool| ServerJit {
        enabled: true,
        scheme: JitScheme::ProvisionSilently,
        userstore: "PRIMARY".into(),
        associate_local_user: false,
        attribute_sync_method: AttributeSyncMethod::OverrideAll,
        skip_jit_for_lookup_failure: Some(skip),
        idp_group_sync_method: None,
        account_lookup: if lookup { mapping() } else { vec![] },
    };
    let skip_on = JitChange {
        skip_jit_for_lookup_failure: Some(true),
        ..Default::default()
    };
    let skip_and_lookup = JitChange {
        skip_jit_for_lookup_failure: Some(true),
        account_lookup: Some(mapping()),
        userstore: Some("SECONDARY".into()),
        ..Default::default()
    };
    let lookup = JitChange {
        account_lookup: Some(mapping()),
        ..Default::default()
    };
    let lookup_and_store = JitChange {
        account_lookup: Some(mapping()),
        userstore: Some("SECONDARY".into()),
        ..Default::default()
    };
    // (case, diff, server now, conflicts, policy, pushed, blocked)
    let cases = vec![
        (
            "skip on, the server has the lookup: held back",
            skip_on.clone(),
            server(false, true),
            true,
            Block,
            None,
            true,
        ),
        (
            "skip and lookup together: the skip is held back, the rest goes",
            skip_and_lookup,
            server(false, false),
            true,
            Block,
            Some(lookup_and_store),
            true,
        ),
        (
            "lookup added where the server already skips: the lookup is held back",
            lookup.clone(),
            server(true, false),
            true,
            Block,
            None,
            true,
        ),
        (
            "lookup added without a skip: nothing starts, it goes",
            lookup.clone(),
            server(false, false),
            true,
            Block,
            Some(lookup.clone()),
            false,
        ),
        (
            "skip on under Warn: pushed",
            skip_on.clone(),
            server(false, true),
            true,
            Warn,
            Some(skip_on.clone()),
            false,
        ),
        (
            "skip on without dependents: pushed",
            skip_on.clone(),
            server(false, true),
            false,
            Block,
            Some(skip_on.clone()),
            false,
        ),
    ];
    for (name, diff, now, conflicts, policy, want, blocked) in cases {
        assert_eq!(
            plan_jit(Some(diff), Some(&now), conflicts, policy),
            (want, blocked),
            "case {name:?}"
        );
    }
}

#[test]
fn client_secret_push_table() {
    // (created, differs, pushed version, current version, push)
    let cases = [
        (
            "just created: sent with the POST",
            true,
            false,
            None,
            Some("5"),
            false,
        ),
        ("unchanged", false, false, Some("5"), Some("5"), false),
        ("Secret edited", false, false, Some("5"), Some("6"), true),
        // Defect 6: an adopted (or recovered) IdP never had its secret pushed.
        ("adopted, never pushed", false, false, None, Some("5"), true),
        ("settings drifted", false, true, Some("5"), Some("5"), true),
        ("no secret (SAML)", false, false, None, None, false),
    ];
    for (name, created, differs, pushed, current, want) in cases {
        assert_eq!(
            authenticator_push(created, differs, pushed, current),
            want,
            "case {name:?}"
        );
    }
}

fn step(options: &[FlowOption]) -> FlowStep {
    FlowStep {
        options: options.to_vec(),
    }
}

#[test]
fn flow_plan_table_block_from_the_application_side() {
    let google = FlowOption::federated("Google", "GoogleOIDCAuthenticator");
    let basic = FlowOption::local("BasicAuthenticator");
    let totp = FlowOption::local("totp");
    let with_mfa = FlowUpdate {
        steps: vec![
            step(&[basic.clone(), google.clone()]),
            step(std::slice::from_ref(&totp)),
        ],
        ..Default::default()
    };
    let without = FlowUpdate {
        steps: vec![step(&[basic.clone(), google.clone()])],
        ..Default::default()
    };
    let live = |f: &FlowUpdate| LoginFlow {
        kind: FlowKind::UserDefined,
        steps: f.steps.clone(),
        script: None,
        subject_step_id: 1,
        attribute_step_id: 1,
    };
    let needs = LocalAccountAuthenticators::default();
    let jit = |j: Jit| HashMap::from([("Google".to_string(), j)]);
    let block = BTreeSet::from(["Google".to_string()]);
    let warn = BTreeSet::new();
    let cases = vec![
        (
            "JIT on: pushed",
            &with_mfa,
            Some(live(&without)),
            Jit::Enabled,
            &block,
            true,
            0,
        ),
        (
            "JIT off, Block: held back",
            &with_mfa,
            Some(live(&without)),
            Jit::Disabled,
            &block,
            false,
            1,
        ),
        (
            "JIT block missing counts as off",
            &with_mfa,
            Some(live(&without)),
            Jit::Missing,
            &block,
            false,
            1,
        ),
        (
            "JIT skipped on lookup failure, Block: held back like JIT off",
            &with_mfa,
            Some(live(&without)),
            Jit::SkippedOnLookupFailure,
            &block,
            false,
            1,
        ),
        (
            "JIT skipped on lookup failure, Warn: pushed",
            &with_mfa,
            Some(live(&without)),
            Jit::SkippedOnLookupFailure,
            &warn,
            true,
            0,
        ),
        (
            "JIT off, Warn: pushed",
            &with_mfa,
            Some(live(&without)),
            Jit::Disabled,
            &warn,
            true,
            0,
        ),
        (
            "on create, held back",
            &with_mfa,
            None,
            Jit::Disabled,
            &block,
            false,
            1,
        ),
        (
            "removing the MFA step is never held",
            &without,
            Some(live(&with_mfa)),
            Jit::Disabled,
            &block,
            true,
            0,
        ),
        (
            "conflict already live: reported, not blocked",
            &with_mfa,
            Some(LoginFlow {
                steps: vec![
                    step(std::slice::from_ref(&google)),
                    step(&[totp.clone(), basic.clone()]),
                ],
                ..live(&with_mfa)
            }),
            Jit::Disabled,
            &block,
            true,
            0,
        ),
        (
            "no difference: nothing to push",
            &with_mfa,
            Some(live(&with_mfa)),
            Jit::Disabled,
            &block,
            false,
            0,
        ),
    ];
    for (name, desired, server, j, blocking, pushed, held) in cases {
        let (push, conflicts) = plan_flow(
            "Payroll",
            Some(desired),
            server.as_ref(),
            &jit(j),
            blocking,
            &needs,
        );
        assert_eq!(push.is_some(), pushed, "case {name:?}");
        assert_eq!(conflicts.len(), held, "case {name:?}");
    }
}

#[tokio::test]
async fn dependents_come_from_the_servers_live_flows() {
    // Defect 3a: the cluster can no longer resolve Payroll's flow (its other IdP was deleted), but
    // the server still runs it: Google's JIT disable must see it.
    let server = FakeServer::default();
    let google = server.add_idp("Google", None, true);
    server.add_app(
        "Payroll",
        vec![
            step(&[
                FlowOption::federated("Google", "GoogleOIDCAuthenticator"),
                FlowOption::federated("Deleted", "GithubAuthenticator"),
            ]),
            step(&[FlowOption::local("totp")]),
        ],
    );
    server.add_app(
        "Unrelated",
        vec![step(&[FlowOption::local("BasicAuthenticator")])],
    );
    let needs = LocalAccountAuthenticators::default();
    let live = live_flows(&server, &google, &needs).await.expect("live");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].0, "Payroll");
    let flows: Vec<(String, crate::flow::Flow)> = live
        .into_iter()
        .filter_map(|(n, _, f)| f.map(|f| (n, f)))
        .collect();
    let idps = HashMap::from([("Google".to_string(), Jit::Disabled)]);
    let analysis =
        crate::flow::check_all(flows.iter().map(|(n, f)| (n.as_str(), f)), &idps, &needs);
    assert_eq!(analysis.conflicts.len(), 1);
    let off = JitChange {
        enabled: Some(false),
        ..Default::default()
    };
    assert_eq!(
        plan_jit(
            Some(off),
            None,
            !analysis.conflicts.is_empty(),
            ConflictPolicy::Block
        ),
        (None, true)
    );
}

#[test]
fn drift_is_reported_only_for_an_unchanged_spec_that_needed_a_write() {
    let note = drift(false, true, &["login flow", "OIDC settings"]).expect("drift");
    assert!(note.contains("login flow, OIDC settings"), "{note}");
    assert_eq!(drift(true, true, &["JIT"]), None, "a create is not drift");
    assert_eq!(
        drift(false, false, &["JIT"]),
        None,
        "a spec change is not drift"
    );
    assert_eq!(drift(false, true, &[]), None, "nothing written");
}

#[test]
fn only_a_brand_new_object_skips_the_lookup_by_name() {
    let ours = ById::Found(found("i1", "Google", None));
    // (case, by id, displayName, pending, adopt, look up)
    let cases = [
        (
            "new: POST at once",
            ById::NotRecorded,
            "Google",
            false,
            false,
            false,
        ),
        (
            "a create pending: recover needs the name",
            ById::NotRecorded,
            "Google",
            true,
            false,
            true,
        ),
        (
            "adopt needs the name",
            ById::NotRecorded,
            "Google",
            false,
            true,
            true,
        ),
        (
            "recorded, same name",
            ours.clone(),
            "Google",
            false,
            false,
            false,
        ),
        (
            "recorded, rename: is the name taken",
            ours,
            "Google Workspace",
            false,
            false,
            true,
        ),
        (
            "recorded id gone",
            ById::Gone("i1".into()),
            "Google",
            false,
            false,
            true,
        ),
    ];
    for (name, by_id, display_name, pending, adopt, want) in cases {
        assert_eq!(
            lookup_by_name(&by_id, display_name, pending, adopt),
            want,
            "case {name:?}"
        );
    }
}

#[test]
fn the_create_pending_mark_goes_only_once_status_holds_the_id() {
    assert!(pending_done(Some(UID), false, Some("i1")));
    assert!(pending_done(None, true, Some("i1")), "set by this pass");
    assert!(
        !pending_done(Some(UID), true, None),
        "a crash now must recover"
    );
    assert!(!pending_done(None, false, Some("i1")), "nothing to clear");
}

#[test]
fn one_tenant_is_one_key_whatever_the_namespace_or_spelling() {
    let backend = |spec: serde_json::Value| -> IdentityBackend {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "identity-operator.io/v1alpha1", "kind": "IdentityBackend",
            "metadata": {"name": "b", "namespace": "team-x"},
            "spec": spec
        }))
        .expect("backend")
    };
    let creds = serde_json::json!({"name": "m2m"});
    let is = |url: &str, tenant: &str| {
        tenant_key(&backend(serde_json::json!({
            "wso2IdentityServer": {"url": url, "tenant": tenant}, "credentialsSecretRef": creds
        })))
    };
    let org = |o: &str| {
        tenant_key(&backend(
            serde_json::json!({"asgardeo": {"organization": o}, "credentialsSecretRef": creds}),
        ))
    };
    assert_eq!(
        is("https://IS.example:9443/", "Carbon.Super"),
        is("https://is.example:9443", "carbon.super")
    );
    assert_ne!(
        is("https://is.example:9443", "carbon.super"),
        is("https://is.example:9443", "other")
    );
    assert_eq!(org("acme"), org("ACME"));
    assert_ne!(org("acme"), org("globex"));
    assert_eq!(
        tenant_key(&backend(serde_json::json!({"credentialsSecretRef": creds}))),
        None,
        "no target, no tenant"
    );
}

#[test]
fn a_secret_is_used_only_with_the_label_of_that_use() {
    use crate::controller::{
        consent_message, consented, USE_BACKEND_CREDENTIALS, USE_IDP_CLIENT_SECRET,
    };
    let secret = |labels: &[(&str, &str)]| k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Default::default()
    };
    let backend = secret(&[("identity-operator.io/use", "backend-credentials")]);
    assert!(consented(&backend, USE_BACKEND_CREDENTIALS));
    assert!(
        !consented(&backend, USE_IDP_CLIENT_SECRET),
        "one use per label"
    );
    assert!(!consented(&secret(&[]), USE_BACKEND_CREDENTIALS));
    assert!(!consented(
        &secret(&[("identity-operator.io/use", "Backend-Credentials")]),
        USE_BACKEND_CREDENTIALS
    ));
    assert!(!consented(
        &k8s_openapi::api::core::v1::Secret::default(),
        USE_IDP_CLIENT_SECRET
    ));
    let m = consent_message("google-oauth", "clientSecretRef", USE_IDP_CLIENT_SECRET);
    assert!(
        m.contains("kubectl label secret google-oauth identity-operator.io/use=identity-provider-client-secret"),
        "{m}"
    );
}

#[test]
fn a_create_whose_answer_was_lost_or_unusable_keeps_its_mark() {
    let transient = BackendError::Transient {
        status: None,
        message: "timed out".into(),
        attempts: 1,
        code: None,
        trace_id: None,
    };
    let no_location = BackendError::Protocol {
        operation: "create_idp",
        message: "no Location header".into(),
    };
    let refused = BackendError::Invalid {
        status: 400,
        code: Some("IDP-60025".into()),
        message: None,
        description: None,
        trace_id: None,
    };
    let conflict = BackendError::AlreadyExists {
        resource: "identity provider",
        code: None,
        description: None,
        trace_id: None,
    };
    let cases = [
        ("timeout or cut connection", transient, true),
        (
            "2xx without Location, oversized, redirect",
            no_location,
            true,
        ),
        ("429", BackendError::RateLimited { retry_after: None }, true),
        ("400: nothing made", refused, false),
        ("409: nothing made by this POST", conflict, false),
        (
            "401",
            BackendError::Unauthorized {
                message: "no".into(),
            },
            false,
        ),
    ];
    for (name, e, want) in cases {
        assert_eq!(may_have_committed(&e), want, "{name}");
    }
}

#[test]
fn after_a_conflict_our_marker_recovers_and_a_foreign_object_clashes() {
    let me = Identity {
        uid: UID,
        display_name: "Google",
        owner: OWNER,
        adopt: false,
        pending: Some(UID),
    };
    let ours = Observation {
        by_id: ById::NotRecorded,
        by_name: Some(found("i1", "Google", Some(&owner_marker(UID)))),
    };
    assert_eq!(
        plan_identity::<IdentityProvider>(&me, &ours, &[]),
        IdentityPlan::Recover(found("i1", "Google", Some(&owner_marker(UID))))
    );
    let foreign = Observation {
        by_id: ById::NotRecorded,
        by_name: Some(found("i2", "Google", Some("someone's"))),
    };
    assert!(matches!(
        plan_identity::<IdentityProvider>(&me, &foreign, &[]),
        IdentityPlan::Clash {
            reason: "AlreadyExists",
            ..
        }
    ));
}
